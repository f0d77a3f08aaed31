// medload inspect: summarise a cache (counts per class, site and split, config, statistics,
// rejected files) and, with --verify, check every image against its checksum.

#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>
#include <string>

#include "command.h"
#include "inspect_format.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/cache/inspect.h"

namespace medload::cli {

Runner add_inspect_command(CLI::App& command) {
  struct Args {
    std::string cache;
    bool json = false;
    bool verify = false;
    int threads = 0;
    std::size_t examples = 10;
  };
  auto args = std::make_shared<Args>();
  command.add_option("CACHE", args->cache, "The cache file")->required()->type_name("CACHE.h5");
  command.add_flag("--json", args->json, "Print the summary as JSON");
  command.add_flag(
      "--verify", args->verify,
      "Read every image and compare it with its checksum; exit 1 naming each sample that differs");
  command.add_option("--threads", args->threads, "Threads for --verify (0 = all cores)")
      ->check(CLI::Range(0, 256))
      ->default_val(0);
  command.add_option("--rejected", args->examples, "Rejected files listed by name")->default_val(10);
  command.footer("Exit 0 when the cache is readable (and verified); 1 when it is not or a checksum differs.");

  return [args]() -> int {
    loader::InspectOptions options;
    options.verify = args->verify;
    options.threads = args->threads;
    options.rejected_examples = args->examples;
    loader::check_cache_in_child(args->cache);
    const nlohmann::json summary = loader::inspect_cache(args->cache, options);
    if (args->json) {
      std::cout << json_output(summary) << '\n';
    } else {
      std::cout << format_inspection(summary);
    }
    if (!args->verify) return kExitOk;
    const nlohmann::json& verify = summary["verify"];
    bool failed = false;
    if (verify["failed"].get<std::size_t>() > 0) {
      std::cerr << "medload inspect: " << verify["failed"] << " of " << verify["checked"] << " images of "
                << args->cache << " do not match their checksums\n";
      failed = true;
    }
    if (verify.contains("masks") && verify["masks"]["failed"].get<std::size_t>() > 0) {
      std::cerr << "medload inspect: " << verify["masks"]["failed"] << " of " << verify["masks"]["checked"]
                << " masks of " << args->cache << " do not read\n";
      failed = true;
    }
    return failed ? kExitFailure : kExitOk;
  };
}

}  // namespace medload::cli
