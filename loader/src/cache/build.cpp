#include "medload/loader/cache/build.h"

#include <filesystem>
#include <set>

#include "build_steps.h"
#include "cache_assembly.h"
#include "h5.h"
#include "medload/core/atomic_file.h"
#include "medload/core/check_range.h"
#include "medload/core/enum_names.h"
#include "medload/core/error.h"
#include "medload/core/hash.h"
#include "medload/core/version.h"
#include "medload/loader/ingest/inputs.h"
#include "privacy_filter.h"
#include "schema.h"

namespace medload::loader {

namespace fs = std::filesystem;

namespace detail {

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::int64_t ns_since(Clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now() - start).count();
}

std::size_t build_pool_threads(int threads) { return threads == 0 ? 0 : static_cast<std::size_t>(threads); }

}  // namespace detail

// The steps (build_steps.h) and their types are read by build_cache below.
using namespace detail;

namespace {
constexpr auto kImputeNames = core::enum_names<ImputePolicy>({{ImputePolicy::kClassMedian, "class_median"},
                                                              {ImputePolicy::kClassMean, "class_mean"},
                                                              {ImputePolicy::kMedian, "median"},
                                                              {ImputePolicy::kMean, "mean"},
                                                              {ImputePolicy::kNone, "none"}});
}  // namespace

ImputePolicy impute_policy_from_string(const std::string& text, const std::string& key) {
  return kImputeNames.value(text, key);
}

std::string to_string(ImputePolicy policy) { return std::string(kImputeNames.name(policy)); }

void BuildOptions::validate() const {
  if (root.empty()) throw ConfigError("root is empty; give the folder of the input images");
  if (output.empty()) throw ConfigError("output is empty; give the cache file to write (e.g. cache.h5)");
  core::check_range("threads", threads, 0, 256);
  core::check_range("shard_count", shard_count, 1, 65536);
  if (shard_index < 0 || shard_index >= shard_count) {
    throw ConfigError("shard_index is " + std::to_string(shard_index) + "; allowed 0.." +
                      std::to_string(shard_count - 1) + " for " + std::to_string(shard_count) + " shards");
  }
  core::check_range("deflate", deflate, 0, 9);
  core::check_range("batch_files", batch_files, 1, 4096);
  config.validate.validate();
  privacy.validate();
}

std::string report_path_for(const std::string& output) {
  const std::string suffix = ".h5";
  if (output.size() > suffix.size() &&
      output.compare(output.size() - suffix.size(), suffix.size(), suffix) == 0) {
    return output.substr(0, output.size() - suffix.size()) + ".report.json";
  }
  return output + ".report.json";
}

nlohmann::json TargetSummary::to_json() const {
  const auto states = [](const std::array<std::size_t, 3>& n) {
    return nlohmann::json{{"none", n[0]}, {"valid", n[1]}, {"invalid", n[2]}};
  };
  return {{"masks", states(masks)},
          {"boxes", states(boxes)},
          {"landmarks", states(landmarks)},
          {"box_count", box_count},
          {"boxes_dropped", boxes_dropped},
          {"landmark_count", landmark_count},
          {"landmarks_dropped", landmarks_dropped},
          {"classes", classes}};
}

namespace {

// Most entries of /label_matrix a build writes (N x K; 1 GiB of int8).
constexpr std::uint64_t kMaxLabelMatrixEntries = std::uint64_t{1} << 30;

// Refuses, before anything is decoded, a label space no reader would open (more than
// schema::kMaxClasses classes) or a label matrix past kMaxLabelMatrixEntries: a manifest naming
// a new class in every row's unknown_labels would otherwise cost N x K bytes.
void check_label_space(const BuildInputs& inputs, const BuildOptions& options) {
  const std::string where = options.manifest.value_or(options.root);
  if (inputs.class_names.size() > schema::kMaxClasses) {
    throw ConfigError(where + " names " + std::to_string(inputs.class_names.size()) +
                      " classes (label and unknown_labels); a cache holds at most " +
                      std::to_string(schema::kMaxClasses));
  }
  const std::uint64_t entries = static_cast<std::uint64_t>(inputs.total) * inputs.class_names.size();
  if (inputs.multi_label && entries > kMaxLabelMatrixEntries) {
    throw ConfigError(where + ": " + std::to_string(inputs.total) + " inputs x " +
                      std::to_string(inputs.class_names.size()) + " classes make a label matrix of " +
                      std::to_string(entries) + " entries; at most " +
                      std::to_string(kMaxLabelMatrixEntries) +
                      " (fewer classes, or one cache per group of classes)");
  }
}

// Inputs first: a missing root fails before anything is written. Class names and the
// multi-label flag come from every input, so shards agree on them.
BuildInputs list_inputs(const BuildOptions& options) {
  Inputs read = read_inputs({options.root, options.manifest, options.annotations, options.target_classes});
  std::vector<SourceFile>& all_sources = read.sources;
  BuildInputs inputs;
  inputs.target_classes = std::move(read.target_classes);
  inputs.class_map = options.target_classes.has_value();
  inputs.has_targets = read.has_targets;
  inputs.has_masks = read.has_masks;
  inputs.annotations = std::move(read.annotations);
  // Without a class map, a shard's classes run to the largest id it stores: shards would disagree.
  if (inputs.has_masks && !inputs.class_map && options.shard_count > 1) {
    throw ConfigError(
        "a sharded build with masks needs a class map (target_classes, --target-classes): "
        "without one each shard names the mask ids it happens to hold, and merge refuses "
        "shards whose classes differ");
  }
  inputs.total = all_sources.size();
  inputs.first = inputs.total * static_cast<std::size_t>(options.shard_index) / options.shard_count;
  const std::size_t last =
      inputs.total * static_cast<std::size_t>(options.shard_index + 1) / options.shard_count;
  std::set<std::string> class_set;
  for (const SourceFile& source : all_sources) {
    const SampleInfo& info = source.info;
    class_set.insert(info.labels.begin(), info.labels.end());
    class_set.insert(info.unknown_labels.begin(), info.unknown_labels.end());
    inputs.multi_label = inputs.multi_label || info.labels.size() > 1 || !info.unknown_labels.empty();
  }
  inputs.class_names.assign(class_set.begin(), class_set.end());
  check_label_space(inputs, options);
  inputs.sources.assign(
      std::make_move_iterator(all_sources.begin() + static_cast<std::ptrdiff_t>(inputs.first)),
      std::make_move_iterator(all_sources.begin() + static_cast<std::ptrdiff_t>(last)));
  return inputs;
}

// Counted after the duplicate check: a reused file that turned out a duplicate is not in the cache.
void count_reused(const BuildFiles& files, BuildResult& result) {
  for (const auto& [i, record] : files.records) {
    const auto it = files.origin.find(i);
    if (it == files.origin.end()) continue;
    ++(it->second == ReuseOrigin::kWorkFolder ? result.resumed_files : result.reused_files);
  }
}

// Writes the cache's images from the work batches and the previous cache, then its tables and
// attributes, to `temporary`.
AssemblyCost assemble(const std::string& temporary, const BuildOptions& options, const BuildInputs& inputs,
                      const CacheHeader& header, const std::vector<Sample>& samples,
                      const PreviousCache& previous, const CacheColumns& columns,
                      const std::vector<RejectedRecord>& rejected, const PrivacyFilter& privacy,
                      const BuildResult& result) {
  const auto read = [&](std::size_t index, std::uint8_t* out, std::size_t size) {
    const Sample& s = samples[index];
    const FrameRecord& f = *s.frame;
    if (f.cache_index >= 0) {
      previous.reader->read_image(static_cast<std::size_t>(f.cache_index), out);
    } else {
      read_batch_pixels(f.batch_path, f.offset, out, size);
    }
    if (hash64(out, size) != f.checksum) {
      throw FormatError("the stored pixels of " + inputs.sources[s.source].report_path + " (frame " +
                        std::to_string(f.frame_index) + ") do not match their checksum (" +
                        (f.cache_index >= 0 ? options.output : f.batch_path) + ")");
    }
  };
  const auto finish = [&](CacheWriter& writer) {
    schema::BuildRecord record;
    record.shard.sources = static_cast<std::int64_t>(inputs.sources.size());
    record.shard.ok_files = static_cast<std::int64_t>(result.ok_files);
    record.shard.sources_total = static_cast<std::int64_t>(inputs.total);
    record.shard.index = options.shard_index;
    record.shard.count = options.shard_count;
    record.multi_label = inputs.multi_label;
    record.missing_labels = options.missing_labels == MissingLabelPolicy::kDrop ? "drop" : "unlabeled";
    record.impute = to_string(options.impute);
    record.privacy = privacy.record();
    writer.finish(columns, rejected, inputs.class_names, options.config.canonical_json(),
                  options.config.config_hash(), record);
  };
  const auto read_mask = [&](std::size_t index, std::uint16_t* out) {
    const FrameRecord& f = *samples[index].frame;
    if (f.targets.mask_state != TargetState::kValid) return false;
    const std::size_t size = std::size_t(header.height) * std::size_t(header.width) * sizeof *out;
    read_batch_pixels(f.batch_path, f.mask_offset, out, size);
    if (hash64(out, size) != f.mask_checksum) {
      throw FormatError("the stored mask of " + inputs.sources[samples[index].source].report_path +
                        " (frame " + std::to_string(f.frame_index) + ") does not match its checksum (" +
                        f.batch_path + ")");
    }
    return true;
  };
  return assemble_cache(temporary, header, {"write", options.progress, build_pool_threads(options.threads)},
                        read, finish, header.masks ? ReadMask(read_mask) : ReadMask());
}

}  // namespace

BuildResult build_cache(const BuildOptions& options_in) {
  const auto build_start = Clock::now();
  BuildOptions options = options_in;
  options.validate();
  options.config.validate.threads = options.threads;
  h5::silence_errors();

  BuildResult result;
  result.output = options.output;
  result.report_path = report_path_for(options.output);
  const std::string config_hash = options.config.config_hash();
  const std::string key = config_hash + "/" + kVersion;

  const BuildInputs inputs = list_inputs(options);
  result.sources = inputs.sources.size();
  result.has_targets = inputs.has_targets;
  result.annotations = inputs.annotations;
  check_output(options.output, result.report_path);
  PrivacyFilter privacy(options.privacy, options.root, options.manifest, inputs.sources);
  PreviousCache previous = open_previous(options.output, config_hash, privacy);
  const std::string work = create_work_folder(options.output);
  FolderLock lock(work);
  TemporaryFile temp_output(options.output + ".tmp");
  std::error_code error;
  fs::remove(temp_output.path(), error);  // left by a build killed while assembling

  BuildFiles files = plan_reuse(inputs.sources, load_batches(work, key), previous, options.threads);
  const ScanCost scan = scan_remaining(options, work, key, inputs.sources.size(), files);
  result.scan_seconds = scan.seconds;
  result.decoded_files = files.to_scan.size();
  result.preprocess = scan.preprocess;
  if (options.config.validate.reject_duplicates) reject_duplicates(inputs.sources, files);
  count_reused(files, result);

  ReportRows rows = build_report_rows(inputs, files, privacy, result);
  const std::vector<Sample> samples = select_samples(options, inputs.sources, files.records, result);
  CacheHeader header = cache_header(options, inputs.sources, samples);
  header.masks = inputs.has_masks;
  const CacheColumns columns = build_columns(options, inputs, files.records, samples, privacy, result);

  const auto assemble_start = Clock::now();
  const AssemblyCost assembly = assemble(temp_output.path(), options, inputs, header, samples, previous,
                                         columns, rows.rejected, privacy, result);
  previous.reader.reset();
  result.assemble_seconds = seconds_since(assemble_start);
  result.seconds = seconds_since(build_start);

  const BuildCosts costs{scan.preprocess,  files.reuse_hash_ns,  scan.write_batches_ns,
                         assembly.read_ns, assembly.compress_ns, assembly.write_ns};
  result.report = build_report(options, config_hash, result, std::move(rows), costs);
  // Everything is written before anything is published: a report that cannot be written fails
  // the build with the previous cache and report in place and the work folder kept for a resume.
  privacy.finish_report(result.report);
  TemporaryFile temp_report(result.report_path + ".tmp");
  write_file_atomically(temp_report.path(), report_text(result.report));
  publish_build(temp_output, options.output, temp_report, result.report_path, work);
  return result;
}

}  // namespace medload::loader
