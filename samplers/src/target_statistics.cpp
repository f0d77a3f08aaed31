#include "medload/samplers/target_statistics.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <string>

#include "medload/core/error.h"
#include "medload/core/thread_pool.h"

namespace medload::samplers {

namespace {

// Masks per parallel_for item: enough to amortise the buffers, small enough to balance threads.
constexpr std::size_t kMasksPerChunk = 16;

std::vector<std::size_t> checked_rows(const std::vector<std::int64_t>& rows, std::size_t size) {
  std::vector<std::size_t> checked(rows.size());
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (rows[i] < 0 || static_cast<std::uint64_t>(rows[i]) >= size) {
      throw ConfigError("target_statistics: rows[" + std::to_string(i) + "] = " + std::to_string(rows[i]) +
                        " is outside the cache's rows [0, " + std::to_string(size) + ")");
    }
    checked[i] = static_cast<std::size_t>(rows[i]);
  }
  return checked;
}

// Distinct labels, ascending; each must name a foreground class.
std::vector<std::int32_t> distinct_labels(std::vector<std::int32_t> labels, std::size_t classes,
                                          std::size_t row, const char* kind) {
  for (std::int32_t label : labels) {
    if (label < 1 || static_cast<std::size_t>(label) >= classes) {
      throw FormatError("target_statistics: row " + std::to_string(row) + ": " + kind + " label " +
                        std::to_string(label) + " is not a foreground target class [1, " +
                        std::to_string(classes) + ")");
    }
  }
  std::sort(labels.begin(), labels.end());
  labels.erase(std::unique(labels.begin(), labels.end()), labels.end());
  return labels;
}

// Pixels per class of one mask; `histogram` is K zeros on entry and on return. Counted by runs of
// equal ids (masks are mostly long runs), which also checks each run's id once.
std::vector<ClassPixels> count_pixels(const std::uint16_t* mask, std::size_t pixels,
                                      std::vector<std::int64_t>& histogram, std::size_t row) {
  std::size_t highest = 0;
  for (std::size_t p = 0; p < pixels;) {
    const std::uint16_t id = mask[p];
    std::size_t end = p + 1;
    while (end < pixels && mask[end] == id) ++end;
    if (id >= histogram.size()) {
      throw FormatError("target_statistics: row " + std::to_string(row) + ": mask value " +
                        std::to_string(id) + " is not a target class (the cache names " +
                        std::to_string(histogram.size()) + ")");
    }
    histogram[id] += static_cast<std::int64_t>(end - p);
    highest = std::max<std::size_t>(highest, id);
    p = end;
  }
  std::vector<ClassPixels> counts;
  for (std::size_t c = 0; c <= highest && c < histogram.size(); ++c) {
    if (histogram[c] == 0) continue;
    counts.push_back({static_cast<std::int32_t>(c), histogram[c]});
    histogram[c] = 0;
  }
  return counts;
}

// The states and labels of boxes and landmarks (in-memory tables: read on the calling thread).
void read_labels(const TargetReader& reader, const std::vector<std::size_t>& rows, TargetStatistics& stats) {
  const std::size_t classes = stats.class_names.size();
  for (std::size_t i = 0; i < rows.size(); ++i) {
    ImageTargets& image = stats.images[i];
    image.mask_valid = reader.mask_valid(rows[i]);
    if (image.mask_valid && stats.mask_pixels == 0) {
      throw FormatError("target_statistics: row " + std::to_string(rows[i]) +
                        " has a valid mask but the cache holds no masks");
    }
    if (std::optional<std::vector<std::int32_t>> boxes = reader.box_labels(rows[i])) {
      image.boxes_valid = true;
      image.box_classes = distinct_labels(std::move(*boxes), classes, rows[i], "box");
    }
    if (std::optional<std::vector<std::int32_t>> landmarks = reader.landmark_labels(rows[i])) {
      image.landmarks_valid = true;
      image.landmark_classes = distinct_labels(std::move(*landmarks), classes, rows[i], "landmark");
    }
  }
}

// Reads every valid mask once, `threads` at a time (the calling thread among them).
void read_mask_pixels(const TargetReader& reader, const std::vector<std::size_t>& rows,
                      const TargetStatisticsOptions& options, TargetStatistics& stats) {
  std::vector<std::size_t> masked;
  for (std::size_t i = 0; i < rows.size(); ++i) {
    if (stats.images[i].mask_valid) masked.push_back(i);
  }
  if (masked.empty()) return;
  Progress progress("target statistics", masked.size(), "masks", options.progress);
  const auto chunk = [&](std::size_t k) {
    std::vector<std::uint16_t> mask(stats.mask_pixels);
    std::vector<std::int64_t> histogram(stats.class_names.size(), 0);
    const std::size_t end = std::min(masked.size(), (k + 1) * kMasksPerChunk);
    for (std::size_t m = k * kMasksPerChunk; m < end; ++m) {
      const std::size_t i = masked[m];
      reader.read_mask(rows[i], mask.data());
      stats.images[i].mask_pixels = count_pixels(mask.data(), mask.size(), histogram, rows[i]);
      progress.advance();
    }
  };
  const std::size_t chunks = (masked.size() + kMasksPerChunk - 1) / kMasksPerChunk;
  const std::size_t threads = std::min(core::resolve_threads(options.threads), chunks);
  if (threads <= 1) {
    for (std::size_t k = 0; k < chunks; ++k) chunk(k);
  } else {
    ThreadPool pool(threads - 1);  // parallel_for runs on the calling thread too
    pool.parallel_for(chunks, chunk);
  }
  progress.finish();
}

void sum_classes(TargetStatistics& stats) {
  stats.class_pixels.assign(stats.class_names.size(), 0);
  stats.class_mask_images.assign(stats.class_names.size(), 0);
  for (const ImageTargets& image : stats.images) {
    stats.valid_masks += image.mask_valid;
    stats.valid_boxes += image.boxes_valid;
    stats.valid_landmarks += image.landmarks_valid;
    for (const ClassPixels& count : image.mask_pixels) {
      stats.class_pixels[static_cast<std::size_t>(count.class_id)] += count.pixels;
      ++stats.class_mask_images[static_cast<std::size_t>(count.class_id)];
    }
  }
}

}  // namespace

void TargetStatisticsOptions::validate() const {
  if (threads > core::kMaxAutoThreads) {
    throw ConfigError("TargetStatisticsOptions.threads = " + std::to_string(threads) + ": at most " +
                      std::to_string(core::kMaxAutoThreads));
  }
}

TargetStatistics target_statistics(const TargetReader& reader, const std::vector<std::int64_t>& rows,
                                   TargetStatisticsOptions options) {
  options.validate();
  const std::vector<std::size_t> checked = checked_rows(rows, reader.size());
  TargetStatistics stats;
  stats.class_names = reader.class_names();
  stats.mask_pixels = reader.mask_pixels();
  stats.rows = rows;
  stats.images.resize(rows.size());
  read_labels(reader, checked, stats);
  read_mask_pixels(reader, checked, options, stats);
  sum_classes(stats);
  return stats;
}

TargetStatistics target_statistics(const TargetReader& reader) {
  std::vector<std::int64_t> rows(reader.size());
  for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<std::int64_t>(i);
  return target_statistics(reader, rows);
}

}  // namespace medload::samplers
