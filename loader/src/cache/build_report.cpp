// build_cache's report (docs/cache.md): every file's entry, the counts, what the build did and
// what each stage cost. Written beside the cache before it is published.

#include "build_steps.h"
#include "medload/core/text.h"
#include "medload/core/version.h"

namespace medload::loader::detail {

namespace {

// Files per warning code over the report entries.
std::map<std::string, std::size_t> count_warnings(const nlohmann::json& files) {
  std::map<std::string, std::size_t> counts;
  for (const auto& file : files) {
    if (!file.contains("warnings") || !file["warnings"].is_array()) continue;
    for (const auto& w : file["warnings"]) {
      if (w.is_string()) ++counts[w.get<std::string>()];
    }
  }
  return counts;
}

}  // namespace

nlohmann::json build_report(const BuildOptions& options, const std::string& config_hash,
                            const BuildResult& result, ReportRows&& rows, const BuildCosts& costs) {
  nlohmann::json counts{{"total", result.sources},
                        {"ok", result.ok_files},
                        {"rejected", result.rejected_files},
                        {"by_reason", rows.by_reason},
                        {"warnings", count_warnings(rows.files)}};
  const char* missing_labels = options.missing_labels == MissingLabelPolicy::kDrop ? "drop" : "unlabeled";
  nlohmann::json report = {
      {"files", std::move(rows.files)},
      {"counts", counts},
      {"build",
       {{"output", to_valid_utf8(options.output)},
        {"config_hash", config_hash},
        {"library_version", kVersion},
        {"shard", std::to_string(options.shard_index) + "/" + std::to_string(options.shard_count)},
        {"threads", options.threads},
        {"images", result.images},
        {"decoded_files", result.decoded_files},
        {"reused_files", result.reused_files},
        {"resumed_files", result.resumed_files},
        {"unlabeled", result.unlabeled},
        {"dropped_unlabeled", result.dropped_unlabeled},
        {"unknown_label_entries", result.unknown_label_entries},
        {"samples_with_unknown_labels", result.samples_with_unknown_labels},
        {"missing_labels", missing_labels},
        {"impute", to_string(options.impute)},
        {"imputed", result.imputed}}},
      {"timings",
       {{"total_s", result.seconds},
        {"scan_s", result.scan_seconds},
        {"assemble_s", result.assemble_seconds},
        {"images_per_second",
         result.seconds > 0 ? static_cast<double>(result.images) / result.seconds : 0.0}}},
      {"stage_cost_ns",
       {{"preprocess", costs.preprocess.to_json()},
        {"hash_sources_for_reuse", costs.reuse_hash_ns},
        {"write_work_batches", costs.write_batches_ns},
        {"assemble_read", costs.assemble_read_ns},
        {"assemble_compress", costs.assemble_compress_ns},
        {"assemble_write", costs.assemble_write_ns}}},
  };
  if (result.has_targets) report["targets"] = result.targets.to_json();
  if (options.annotations) {
    report["annotations"] = {{"rows", result.annotations.rows},
                             {"boxes", result.annotations.boxes},
                             {"unmatched_rows", result.annotations.unmatched_rows},
                             {"unmatched_paths", result.annotations.unmatched_paths}};
  }
  return report;
}

std::string report_text(const nlohmann::json& report) {
  return report.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
}

}  // namespace medload::loader::detail
