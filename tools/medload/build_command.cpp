// medload build: decode, validate and preprocess images into a versioned HDF5 cache, atomically,
// resumably and incrementally; --shard I/N builds one block of the inputs for `medload merge`.

#include <CLI/CLI.hpp>

#include <charconv>
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "command.h"
#include "medload/core/error.h"
#include "medload/core/text.h"
#include "medload/loader/cache/build.h"
#include "medload/loader/cache/privacy.h"
#include "target_options.h"

namespace medload::cli {

namespace {

// The command line as given; CLI11 writes into it while it parses.
struct BuildArgs {
  std::string root;
  std::string manifest;
  std::string annotations;
  std::string target_classes;
  std::string output;
  std::string config;
  int size = 0;
  int threads = 0;
  std::string shard;
  int deflate = 0;
  std::string missing_labels = "unlabeled";
  std::string impute = "class_median";
  bool in_process = false;
  bool quiet = false;
  bool json = false;
  std::string key_file;
  bool share = false;
  std::string site_map;
  std::vector<std::string> keep_meta;
  // Whether --pseudonymize and --site-map were given (even as "", which is then an error).
  const CLI::Option* pseudonymize_option = nullptr;
  const CLI::Option* site_map_option = nullptr;
};

// What is read and what is written: ROOT, --manifest, -o, --config, --size.
void add_input_output_options(CLI::App& command, BuildArgs& args) {
  command
      .add_option("ROOT", args.root,
                  "Folder of images (first-level folders are the classes) or, with --manifest, the folder "
                  "its paths are relative to")
      ->required();
  command.add_option("--manifest", args.manifest, "CSV manifest: path,label,patient_id[,metadata...]")
      ->type_name("M.csv");
  add_target_input_options(command, args.annotations, args.target_classes);
  command.add_option("-o,--output", args.output, "The cache to write (its folder must exist)")
      ->required()
      ->type_name("CACHE.h5");
  command.add_option("--config", args.config, "Pipeline config (see `medload config --print-default`)")
      ->type_name("pipeline.json");
  command.add_option("--size", args.size, "Output side in pixels (overrides preprocess.letterbox.size)")
      ->check(CLI::Range(16, 4096));
}

// How the work is divided and stored: --threads, --shard, --deflate.
void add_work_options(CLI::App& command, BuildArgs& args) {
  command.add_option("--threads", args.threads, "Decoding and preprocessing threads (0 = all cores)")
      ->check(CLI::Range(0, 256))
      ->default_val(0);
  command
      .add_option("--shard", args.shard,
                  "Build only shard I of N (0-based; a contiguous block of the sorted inputs); join the "
                  "shards with `medload merge`")
      ->type_name("I/N");
  command.add_option("--deflate", args.deflate, "zlib level of the image chunks (0 = none: fastest reads)")
      ->check(CLI::Range(0, 9))
      ->default_val(0);
}

// What becomes of missing labels and metadata: --missing-labels, --impute.
void add_missing_value_options(CLI::App& command, BuildArgs& args) {
  command
      .add_option("--missing-labels", args.missing_labels, "Unlabeled samples: keep them as -1 or drop them")
      ->check(CLI::IsMember({"unlabeled", "drop"}))
      ->default_val("unlabeled");
  command
      .add_option("--impute", args.impute,
                  "Missing metadata: class_median, class_mean, median, mean (numbers; text takes the "
                  "most frequent value) or none; filled values are flagged")
      ->check(CLI::IsMember({"class_median", "class_mean", "median", "mean", "none"}))
      ->default_val("class_median");
}

// How identifying fields are stored (docs/privacy.md): --pseudonymize, --share, --site-map, --keep-meta.
void add_privacy_options(CLI::App& command, BuildArgs& args) {
  args.pseudonymize_option =
      command
          .add_option(
              "--pseudonymize", args.key_file,
              "Store every patient id as a keyed pseudonym (HMAC-SHA-256, 32 hex digits); the same key "
              "gives the same pseudonyms in every build, shard and rebuild. KEYFILE: mode 0600, from "
              "`medload keygen`. See docs/privacy.md")
          ->type_name("KEYFILE");
  command.add_flag("--share", args.share,
                   "A cache to send outside the institution: pseudonyms only (needs --pseudonymize), source "
                   "paths as keyed tokens, institution names only as --site-map codes, metadata limited to "
                   "age (capped at 90), sex, modality, view (and --keep-meta); the report is scrubbed too");
  args.site_map_option =
      command
          .add_option(
              "--site-map", args.site_map,
              "JSON {\"institution name\": \"SITE_CODE\"}: store site codes instead of institution names")
          ->type_name("sites.json");
  command
      .add_option("--keep-meta", args.keep_meta,
                  "With --share: further metadata columns to keep (you vouch that they identify nobody)")
      ->delimiter(',')
      ->type_name("NAME,...");
}

// How it runs and what it prints: --in-process, -q, --json, and the footer.
void add_run_options(CLI::App& command, BuildArgs& args) {
  command.add_flag(
      "--in-process", args.in_process,
      "Decode in this process instead of forked workers (faster start; a decoder crash ends the build)");
  command.add_flag("-q,--quiet", args.quiet, "No progress display");
  command.add_flag("--json", args.json,
                   "Print the build's figures as JSON (the report's build and timings parts)");
  command.footer(
      "Atomic: work goes to CACHE.h5.partial/ and CACHE.h5.tmp, then is renamed over CACHE.h5; a build\n"
      "killed at any moment leaves CACHE.h5 absent or the previous cache. Run the same command again to\n"
      "resume; after adding files it processes only the new ones. The report is CACHE.report.json.\n"
      "Exit 0 when the cache was written; 1 on failure; 2 on a usage error. See docs/cache.md.");
}

// --shard I/N into options.shard_index and shard_count (build_cache checks their range).
void parse_shard(const std::string& shard, loader::BuildOptions& options) {
  const std::string expected =
      "--shard is \"" + to_valid_utf8(shard) + "\"; expected I/N in decimal digits, e.g. 0/4";
  // Each part whole, in decimal digits and within int: 4294967296 is refused, not wrapped to 0.
  const auto whole = [&](std::string_view text) {
    int value = 0;
    const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (text.empty() || error != std::errc() || end != text.data() + text.size()) throw ConfigError(expected);
    return value;
  };
  const std::size_t slash = shard.find('/');
  if (slash == std::string::npos) throw ConfigError(expected);
  options.shard_index = whole(std::string_view(shard).substr(0, slash));
  options.shard_count = whole(std::string_view(shard).substr(slash + 1));
}

void set_privacy_options(const BuildArgs& args, loader::BuildOptions& options) {
  // Given, even as "": an empty name is an error, never a silent build with verbatim ids.
  if (args.pseudonymize_option->count() > 0)
    options.privacy.key = loader::PseudonymKey::load(args.key_file, "--pseudonymize");
  options.privacy.share = args.share;
  if (args.site_map_option->count() > 0)
    options.privacy.site_map = loader::load_site_map(args.site_map, "--site-map");
  options.privacy.keep_metadata = args.keep_meta;
}

loader::BuildOptions build_options(const BuildArgs& args) {
  loader::BuildOptions options;
  options.root = args.root;
  options.manifest = optional_path(args.manifest);
  options.annotations = optional_path(args.annotations);
  options.target_classes = optional_path(args.target_classes);
  options.output = args.output;
  if (!args.config.empty()) options.config = loader::load_pipeline_config(args.config);
  if (args.size > 0) options.config.preprocess.letterbox.size = args.size;
  options.threads = args.threads;
  if (!args.shard.empty()) parse_shard(args.shard, options);
  options.deflate = args.deflate;
  options.missing_labels = args.missing_labels == "drop" ? loader::MissingLabelPolicy::kDrop
                                                         : loader::MissingLabelPolicy::kKeepUnlabeled;
  options.impute = loader::impute_policy_from_string(args.impute, "--impute");
  options.config.validate.isolation =
      args.in_process ? loader::Isolation::kInProcess : loader::Isolation::kProcess;
  options.progress = args.quiet ? ProgressStyle::kQuiet : ProgressStyle::kAuto;
  set_privacy_options(args, options);
  return options;
}

// --json: the report's build figures, counts and timings, and where the report is.
void print_result_json(const loader::BuildResult& result) {
  nlohmann::json summary{{"build", result.report["build"]},
                         {"counts", result.report["counts"]},
                         {"timings", result.report["timings"]},
                         {"stage_cost_ns", result.report["stage_cost_ns"]},
                         {"report", result.report_path}};
  for (const char* part : {"targets", "annotations"}) {
    if (result.report.contains(part)) summary[part] = result.report[part];
  }
  std::cout << json_output(summary) << '\n';
}

// "  masks: 38 valid, 2 invalid (see the report), 0 none"; boxes and landmarks likewise.
void print_targets(const loader::TargetSummary& t) {
  const auto line = [](const char* kind, const std::array<std::size_t, 3>& n, const std::string& extra) {
    if (n[1] + n[2] == 0) return;
    std::cout << "  " << kind << ": " << n[1] << " images valid, " << n[2] << " invalid"
              << (n[2] ? " (see the report)" : "") << ", " << n[0] << " without" << extra << '\n';
  };
  line("masks", t.masks, "");
  line("boxes", t.boxes,
       "; " + std::to_string(t.box_count) + " boxes, " + std::to_string(t.boxes_dropped) +
           " dropped by the crop");
  line("landmarks", t.landmarks,
       "; " + std::to_string(t.landmark_count) + " points, " + std::to_string(t.landmarks_dropped) +
           " outside the crop");
}

void print_result_text(const loader::BuildResult& result) {
  if (result.annotations.rows + result.annotations.unmatched_rows > 0) {
    print_annotations_summary(result.annotations, std::cout);
  }
  std::cout << "built " << result.output << ": " << result.images << " images from " << result.ok_files
            << " of " << result.sources << " files (" << result.rejected_files << " rejected)\n"
            << "  decoded " << result.decoded_files << ", reused " << result.reused_files
            << " from the previous cache, " << result.resumed_files << " from an interrupted build\n";
  if (result.unlabeled > 0 || result.dropped_unlabeled > 0) {
    std::cout << "  unlabeled: " << result.unlabeled << " kept as -1, " << result.dropped_unlabeled
              << " dropped\n";
  }
  if (result.unknown_label_entries > 0) {
    std::cout << "  unknown labels: " << result.unknown_label_entries << " entries in "
              << result.samples_with_unknown_labels << " samples (-1 in /label_matrix)\n";
  }
  for (const auto& [name, n] : result.imputed) {
    if (n > 0) std::cout << "  imputed " << name << ": " << n << " values\n";
  }
  if (result.has_targets) print_targets(result.targets);
  std::printf("  %.2f s (%.1f images/s; scan %.2f s, write %.2f s)\n", result.seconds,
              result.seconds > 0 ? static_cast<double>(result.images) / result.seconds : 0.0,
              result.scan_seconds, result.assemble_seconds);
  std::cout << "report: " << result.report_path << '\n';
}

}  // namespace

Runner add_build_command(CLI::App& command) {
  auto args = std::make_shared<BuildArgs>();
  // In the order --help lists them.
  add_input_output_options(command, *args);
  add_work_options(command, *args);
  add_missing_value_options(command, *args);
  add_privacy_options(command, *args);
  add_run_options(command, *args);

  return [args]() -> int {
    const loader::BuildResult result = loader::build_cache(build_options(*args));
    if (args->json) {
      print_result_json(result);
    } else {
      print_result_text(result);
    }
    return kExitOk;
  };
}

}  // namespace medload::cli
