// build_cache's scan: the sources left after reuse planning are decoded, validated and
// preprocessed on the scanner's threads, and each finished file is written to the work folder in
// small batches (work_area.h) so that a killed build resumes from them. Then duplicates are
// rejected across everything the build holds.

#include <algorithm>
#include <cstring>
#include <mutex>

#include "build_steps.h"
#include "medload/core/error.h"
#include "medload/core/hash.h"
#include "medload/loader/ingest/scanner.h"
#include "medload/loader/preprocess/targets.h"

namespace medload::loader::detail {

namespace {

// Interleaved [H,W,C] -> planar [C,H,W] (the cache layout); 1 channel is both.
std::vector<std::uint8_t> to_planar(PreprocessedImage&& image) {
  if (image.channels == 1) return std::move(image.pixels);
  const std::size_t element = static_cast<std::size_t>(bytes_per_element(image.type));
  const std::size_t plane = static_cast<std::size_t>(image.height) * image.width;
  const std::size_t c = static_cast<std::size_t>(image.channels);
  std::vector<std::uint8_t> out(image.pixels.size());
  for (std::size_t p = 0; p < plane; ++p) {
    for (std::size_t k = 0; k < c; ++k) {
      std::memcpy(out.data() + (k * plane + p) * element, image.pixels.data() + (p * c + k) * element,
                  element);
    }
  }
  return out;
}

// The build's work on each decoded frame, run where the frame was decoded (in its decoder
// worker, see FrameStage): preprocessing, the cache's planar layout and the hashes, so that only
// the small preprocessed image travels back. The description carries what the Collector needs.
StagedFrame preprocess_stage(const DecodedImage& frame, const PreprocessOptions& options) {
  StagedFrame out;
  PreprocessedImage image = preprocess(frame, options, &out.times);
  out.height = image.height;
  out.width = image.width;
  out.channels = image.channels;
  out.type = image.type;
  out.geometry = image.geometry;
  // Duplicate detection across resumed and reused files uses the decoded pixels.
  out.decoded_hash =
      hash64(frame.pixels.data(), frame.pixels.size(),
             static_cast<std::uint64_t>(frame.height) * 1000003u + static_cast<std::uint64_t>(frame.width));
  out.bytes = to_planar(std::move(image));
  out.checksum = hash64(out.bytes.data(), out.bytes.size());
  if (frame.targets.any()) out.targets = targets_to_output(frame.targets, out.geometry, kMinVisibleBoxArea);
  return out;
}

// Files being assembled from their frames while the scan runs, and batches waiting to be written.
class Collector {
 public:
  Collector(const std::string& folder, const std::string& key, int batch_files)
      : folder_(folder), key_(key), batch_files_(static_cast<std::size_t>(batch_files)) {}

  // Adds frame `decoded` (its description; its pixels stayed in the worker) of file `file_index`
  // with what preprocess_stage made of it.
  void add(std::size_t file_index, const DecodedImage& decoded, StagedFrame&& staged) {
    FrameRecord frame;
    frame.frame_index = decoded.frame_index;
    frame.patient_id = decoded.info.patient_id;
    frame.site = decoded.info.site;
    frame.meta = raw_meta(decoded.info);
    frame.geometry = staged.geometry;
    frame.height = staged.height;
    frame.width = staged.width;
    frame.channels = staged.channels;
    frame.type = staged.type;
    frame.pixels = std::move(staged.bytes);
    frame.checksum = staged.checksum;
    frame.targets = std::move(staged.targets);
    const std::vector<std::uint16_t>& labels = frame.targets.mask.labels;
    if (!labels.empty()) {
      frame.mask_checksum = hash64(labels.data(), labels.size() * sizeof labels[0]);
      frame.mask_max = *std::max_element(labels.begin(), labels.end());
    }
    const auto decoded_hash = staged.decoded_hash;

    std::vector<std::pair<std::size_t, FileRecord>> batch;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      Pending& pending = pending_[file_index];
      pending.file.format = decoded.format;
      pending.file.source_hash = hash_hex(decoded.source_hash);
      pending.file.frame_count = decoded.frame_count;
      pending.file.frames.push_back(std::move(frame));
      pending.frame_hashes[decoded.frame_index] = decoded_hash;
      if (static_cast<int>(pending.file.frames.size()) < decoded.frame_count) return;
      FileRecord file = std::move(pending.file);
      std::vector<std::uint64_t> hashes;
      for (const auto& [index, hash] : pending.frame_hashes) hashes.push_back(hash);
      pending_.erase(file_index);
      std::sort(file.frames.begin(), file.frames.end(),
                [](const FrameRecord& a, const FrameRecord& b) { return a.frame_index < b.frame_index; });
      file.pixel_hash = hash64(hashes.data(), hashes.size() * sizeof(std::uint64_t));
      waiting_.emplace_back(file_index, std::move(file));
      if (waiting_.size() < batch_files_) return;
      batch = take_locked();
    }
    write(std::move(batch));
  }

  // Writes whatever is waiting (at the end of the scan).
  void flush() {
    std::vector<std::pair<std::size_t, FileRecord>> batch;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      batch = take_locked();
    }
    write(std::move(batch));
  }

  std::map<std::size_t, FileRecord>& done() { return done_; }
  std::int64_t write_ns() const { return write_ns_; }

 private:
  struct Pending {
    FileRecord file;
    std::map<int, std::uint64_t> frame_hashes;
  };

  std::vector<std::pair<std::size_t, FileRecord>> take_locked() {
    std::vector<std::pair<std::size_t, FileRecord>> batch;
    batch.swap(waiting_);
    return batch;
  }

  void write(std::vector<std::pair<std::size_t, FileRecord>> taken) {
    if (taken.empty()) return;
    std::vector<std::size_t> indices;
    std::vector<FileRecord> batch;
    for (auto& [index, file] : taken) {
      indices.push_back(index);
      batch.push_back(std::move(file));
    }
    const auto start = Clock::now();
    detail::write_batch(folder_, key_, batch);
    const std::int64_t written = ns_since(start);
    std::lock_guard<std::mutex> lock(mutex_);
    write_ns_ += written;
    for (std::size_t k = 0; k < batch.size(); ++k) done_[indices[k]] = std::move(batch[k]);
  }

  std::string folder_;
  std::string key_;
  std::size_t batch_files_;
  std::mutex mutex_;
  std::map<std::size_t, Pending> pending_;
  std::vector<std::pair<std::size_t, FileRecord>> waiting_;
  std::map<std::size_t, FileRecord> done_;
  std::int64_t write_ns_ = 0;
};

}  // namespace

std::map<std::string, std::string> raw_meta(const SampleInfo& info) {
  std::map<std::string, std::string> meta;
  for (const auto& [name, value] : info.metadata) {
    if (!value.empty()) meta[name] = value;
  }
  if (!info.modality.empty() && !meta.count("modality")) meta["modality"] = info.modality;
  if (!info.view.empty() && !meta.count("view")) meta["view"] = info.view;
  return meta;
}

ScanCost scan_remaining(const BuildOptions& options, const std::string& work, const std::string& key,
                        std::size_t source_count, BuildFiles& files) {
  Progress progress("build", source_count, "files", options.progress);
  progress.advance(source_count - files.to_scan.size());
  Collector collector(work, key, options.batch_files);
  std::mutex times_mutex;
  ScanCost cost;
  const auto scan_start = Clock::now();
  const Scanner scanner(options.config.validate);
  const PreprocessOptions& preprocess_options = options.config.preprocess;
  ScanReport report = scanner.scan_with_stage(
      files.to_scan,
      [&preprocess_options](const DecodedImage& frame) {
        return preprocess_stage(frame, preprocess_options);
      },
      [&](std::size_t index, DecodedImage&& frame, StagedFrame&& staged) {
        const StageTimes own = staged.times;
        collector.add(index, frame, std::move(staged));
        std::lock_guard<std::mutex> lock(times_mutex);
        cost.preprocess += own;
      },
      &progress);
  collector.flush();
  progress.finish();
  cost.seconds = seconds_since(scan_start);
  cost.write_batches_ns = collector.write_ns();
  for (std::size_t k = 0; k < report.files.size(); ++k) {
    const std::size_t i = files.scan_index[k];
    const FileOutcome& outcome = report.files[k];
    files.outcomes[i] = outcome.to_json();
    if (outcome.ok) {
      auto it = collector.done().find(k);
      if (it == collector.done().end()) {
        throw WorkerError("the scan reported " + outcome.path + " ok but delivered no image for it");
      }
      files.records[i] = std::move(it->second);
    }
  }
  return cost;
}

void reject_duplicates(const std::vector<SourceFile>& sources, BuildFiles& files) {
  std::map<std::uint64_t, std::size_t> first_with;
  for (auto it = files.records.begin(); it != files.records.end();) {
    auto [seen, inserted] = first_with.emplace(it->second.pixel_hash, it->first);
    if (inserted) {
      ++it;
      continue;
    }
    const std::string& original = sources[seen->second].report_path;
    nlohmann::json& outcome = files.outcomes[it->first];
    outcome["status"] = "rejected";
    outcome["reason"] = "duplicate";
    outcome["detail"] = "the same decoded pixels as " + original;
    outcome["duplicate_of"] = original;
    it = files.records.erase(it);
  }
}

}  // namespace medload::loader::detail
