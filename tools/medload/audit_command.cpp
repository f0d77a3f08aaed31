// medload audit: check a cache's stored splits for leakage between their parts (the same patient,
// identical pixels, near-duplicate images). Exit 3 when anything leaks.

#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "command.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/core/error.h"
#include "medload/loader/serve/audit.h"
#include "medload/loader/serve/split_store.h"

namespace medload::cli {

Runner add_audit_command(CLI::App& command) {
  struct Args {
    std::string cache;
    std::vector<std::string> splits;
    loader::AuditOptions options;
    bool json = false;
  };
  auto args = std::make_shared<Args>();
  command.add_option("CACHE", args->cache, "The cache file")->required()->type_name("CACHE.h5");
  command.add_option("--split", args->splits, "Split(s) to audit (default: every stored split)");
  command
      .add_option("--distance", args->options.near_duplicate_distance,
                  "Near-duplicates: maximum perceptual-hash distance in bits (0..32)")
      ->default_val(args->options.near_duplicate_distance);
  command
      .add_option("--min-correlation", args->options.min_correlation,
                  "Near-duplicates: minimum correlation of the 32x32 thumbnails (0..1)")
      ->default_val(args->options.min_correlation);
  command.add_option("--threads", args->options.threads, "Threads for reading and hashing; 0 = all cores")
      ->check(CLI::Range(0, 256))
      ->default_val(0);
  command.add_option("--max-listed", args->options.max_listed, "Findings listed per kind (all are counted)")
      ->default_val(args->options.max_listed);
  command.add_flag("--json", args->json, "Print the reports as JSON");
  command.footer("Exit 0: no leakage; 3: leakage found (listed with the sample paths); 1: the audit failed.");

  return [args]() -> int {
    args->options.validate();
    std::vector<std::string> names = args->splits;
    loader::check_cache_in_child(args->cache);
    if (names.empty()) names = loader::list_splits(args->cache);
    if (names.empty()) {
      throw Error("the cache " + args->cache + " has no stored split to audit; run `medload split " +
                  args->cache + "` first");
    }
    bool leaked = false;
    nlohmann::json reports = nlohmann::json::array();
    for (const std::string& name : names) {
      const loader::AuditReport report = loader::audit_cache(args->cache, name, args->options);
      leaked = leaked || report.leaked();
      if (args->json) {
        reports.push_back(report.to_json());
      } else {
        std::cout << report.to_text();
      }
    }
    if (args->json) std::cout << json_output(reports) << '\n';
    return leaked ? kExitLeakage : kExitOk;
  };
}

}  // namespace medload::cli
