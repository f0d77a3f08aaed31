// medload merge: join the caches of a sharded build (`medload build --shard I/N`) into one cache,
// equal in content and order to a single build.

#include <CLI/CLI.hpp>

#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "command.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/cache/merge.h"

namespace medload::cli {

Runner add_merge_command(CLI::App& command) {
  struct Args {
    std::vector<std::string> inputs;
    std::string output;
    int deflate = 0;
    bool quiet = false;
  };
  auto args = std::make_shared<Args>();
  command.add_option("-o,--output", args->output, "The merged cache to write")
      ->required()
      ->type_name("CACHE.h5");
  command.add_option("SHARDS", args->inputs, "The shard caches, in any order")
      ->required()
      ->type_name("SHARD.h5...");
  command.add_option("--deflate", args->deflate, "zlib level of the merged image chunks (0 = none)")
      ->check(CLI::Range(0, 9))
      ->default_val(0);
  command.add_flag("-q,--quiet", args->quiet, "No progress display");
  command.footer(
      "Every shard of the build must be given once; all must share config, library version and classes.\n"
      "Duplicates across shards are dropped from the later shard and listed as rejected, as one build\n"
      "would; metadata is imputed again over all samples. The output is written atomically.");

  return [args]() -> int {
    loader::MergeOptions options;
    options.inputs = args->inputs;
    options.output = args->output;
    options.deflate = args->deflate;
    options.progress = args->quiet ? ProgressStyle::kQuiet : ProgressStyle::kAuto;
    for (const std::string& input : options.inputs) loader::check_cache_in_child(input);
    const loader::MergeResult result = loader::merge_caches(options);
    std::cout << "merged " << result.shards << " caches into " << args->output << ": " << result.images
              << " images, " << result.rejected << " rejected files";
    if (result.duplicates > 0) std::cout << " (" << result.duplicates << " duplicates across shards dropped)";
    std::cout << '\n';
    return kExitOk;
  };
}

}  // namespace medload::cli
