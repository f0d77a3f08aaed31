// medload scan: decode and validate every input file, write the JSON report, print a summary.

#include <sys/stat.h>

#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "command.h"
#include "medload/core/atomic_file.h"
#include "medload/core/error.h"
#include "medload/core/progress.h"
#include "medload/loader/ingest/inputs.h"
#include "medload/loader/ingest/scanner.h"
#include "target_options.h"

namespace medload::cli {

namespace {

// The scan never writes over what it reads: `--report` naming an input image, a mask, the
// manifest, the annotations CSV or the class map is refused before anything is read. Files are
// compared by identity, so another spelling of the same path (or a link to it) is caught too.
void refuse_report_over_an_input(const std::string& report, const loader::InputOptions& inputs,
                                 const std::vector<loader::SourceFile>& sources) {
  struct stat target {};
  if (::stat(report.c_str(), &target) != 0) return;  // a new file cannot be an input
  const auto same = [&](const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && st.st_dev == target.st_dev && st.st_ino == target.st_ino;
  };
  const std::pair<const std::optional<std::string>&, const char*> side_files[] = {
      {inputs.manifest, "the manifest"},
      {inputs.annotations, "the annotations CSV"},
      {inputs.class_map, "the class map"}};
  for (const auto& [path, what] : side_files) {
    if (path && same(*path))
      throw ConfigError("--report " + report + " is " + what + "; write the report elsewhere");
  }
  for (const auto& source : sources) {
    if (!source.targets.mask_path.empty() && same(source.targets.mask_path)) {
      throw ConfigError("--report " + report + " is the mask of " + source.report_path +
                        "; the scan never writes over its sources: write the report elsewhere");
    }
    if (same(source.path)) {
      throw ConfigError("--report " + report + " is one of the inputs (" + source.report_path +
                        "); the scan never writes over its sources: write the report elsewhere");
    }
  }
}

}  // namespace

Runner add_scan_command(CLI::App& command) {
  struct Args {
    std::string root;
    std::string manifest;
    std::string annotations;
    std::string target_classes;
    std::string report;
    int threads = 0;
    std::int64_t max_pixels = loader::ValidationOptions{}.max_pixels;
    int min_side = loader::ValidationOptions{}.min_side;
    bool in_process = false;
    bool allow_outside_root = false;
    bool quiet = false;
  };
  auto args = std::make_shared<Args>();
  command
      .add_option("ROOT", args->root,
                  "Folder of images (first-level folders are the classes) or, "
                  "with --manifest, the folder its paths are relative to")
      ->required();
  command
      .add_option("--manifest", args->manifest,
                  "CSV manifest: path,label,patient_id[,metadata...]; an empty label is unlabeled, a|b "
                  "is multi-label; paths relative to the manifest's folder")
      ->type_name("M.csv");
  add_target_input_options(command, args->annotations, args->target_classes);
  command
      .add_option("--report", args->report,
                  "Write the JSON report here (one entry per file, counts by reason)")
      ->type_name("scan.json");
  command.add_option("--threads", args->threads, "Decoding threads and worker processes (0 = all cores)")
      ->check(CLI::Range(0, 256))
      ->default_val(0);
  command
      .add_option("--max-pixels", args->max_pixels,
                  "Reject images with more pixels than this as too_large, from the header, before decoding")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{4'000'000'000}))
      ->default_val(args->max_pixels);
  command
      .add_option("--min-side", args->min_side, "Reject images with a side shorter than this as too_small")
      ->check(CLI::Range(1, 65535))
      ->default_val(args->min_side);
  command.add_flag("--in-process", args->in_process,
                   "Decode in this process instead of forked workers (faster start; a decoder crash "
                   "ends the scan)");
  command.add_flag("--allow-outside-root", args->allow_outside_root,
                   "Read manifest paths that leave the manifest's folder (by default they are "
                   "outside_root and never opened)");
  command.add_flag("-q,--quiet", args->quiet, "No progress display");
  command.footer(
      "Every file gets one outcome: ok, or rejected with a reason (empty_file, unreadable, truncated,\n"
      "unsupported, blank, too_small, too_large, duplicate, decoder_crash, outside_root). Files are\n"
      "never modified, and --report never names an input.\n"
      "Exit 0 when the scan ran, whatever it found; 2 on a usage error. See docs/ingest.md.");

  return [args]() -> int {
    loader::ValidationOptions options;
    options.threads = args->threads;
    options.max_pixels = args->max_pixels;
    options.min_side = args->min_side;
    options.isolation = args->in_process ? loader::Isolation::kInProcess : loader::Isolation::kProcess;
    options.allow_outside_root = args->allow_outside_root;
    const loader::Scanner scanner(options);
    const loader::InputOptions input_options{args->root, optional_path(args->manifest),
                                             optional_path(args->annotations),
                                             optional_path(args->target_classes)};
    const loader::Inputs inputs = loader::read_inputs(input_options);
    const auto& sources = inputs.sources;
    if (!args->report.empty()) {
      refuse_report_over_an_input(args->report, input_options, sources);
      require_replaceable(args->report);  // a device or a FIFO: refused before the scan, not after
    }
    if (input_options.annotations) print_annotations_summary(inputs.annotations, std::cerr);
    Progress progress("scan", sources.size(), "files",
                      args->quiet ? ProgressStyle::kQuiet : ProgressStyle::kAuto);
    const loader::ScanReport report = scanner.scan(sources, {}, &progress);
    progress.finish();
    if (!args->report.empty()) write_file_atomically(args->report, json_output(report.to_json()) + "\n");
    std::cout << report.summary();
    if (!args->report.empty()) std::cout << "report: " << args->report << '\n';
    return kExitOk;
  };
}

}  // namespace medload::cli
