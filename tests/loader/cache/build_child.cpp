// A child process for the cache tests that must kill or limit a build: runs build_cache once.
//   medload_cache_build_child ROOT OUTPUT [--batch N] [--size S] [--shard I/N] [--fsize BYTES]
//                             [--threads T] [--manifest M] [--walk-writes 1]
//   medload_cache_build_child --merge OUTPUT SHARD... [--walk-writes]   (merge_caches instead)
// --fsize sets RLIMIT_FSIZE with SIGXFSZ ignored, so writes past it fail with EFBIG (a full disk).
// Prints "decoded=<n> resumed=<n> reused=<n> images=<n>"; exit 0, or 1 with the error on stderr.

#include <sys/resource.h>

#include <csignal>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>

#include "medload/loader/cache/build.h"
#include "medload/loader/cache/merge.h"
#include "medload_test/walk_writes.h"

namespace {

// --merge OUTPUT SHARD... [--walk-writes]
int merge(int argc, char** argv) {
  medload::loader::MergeOptions options;
  options.output = argv[2];
  options.progress = medload::ProgressStyle::kQuiet;
  bool walk = false;
  for (int i = 3; i < argc; ++i) {
    if (std::string(argv[i]) == "--walk-writes") {
      walk = true;
    } else {
      options.inputs.push_back(argv[i]);
    }
  }
  if (walk) return medload::test::walk_writes(options.output, [&] { medload::loader::merge_caches(options); });
  try {
    medload::loader::merge_caches(options);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc >= 3 && std::string(argv[1]) == "--merge") return merge(argc, argv);
  if (argc < 3) {
    std::cerr << "usage: medload_cache_build_child ROOT OUTPUT [options]\n";
    return 2;
  }
  medload::loader::BuildOptions options;
  options.root = argv[1];
  options.output = argv[2];
  options.progress = medload::ProgressStyle::kLines;
  options.config.preprocess.letterbox.size = 64;
  options.config.validate.isolation = medload::loader::Isolation::kInProcess;
  options.threads = 2;
  bool walk = false;
  for (int i = 3; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const std::string value = argv[i + 1];
    if (flag == "--batch") {
      options.batch_files = std::stoi(value);
    } else if (flag == "--size") {
      options.config.preprocess.letterbox.size = std::stoi(value);
    } else if (flag == "--threads") {
      options.threads = std::stoi(value);
    } else if (flag == "--manifest") {
      options.manifest = value;
    } else if (flag == "--shard") {
      options.shard_index = std::stoi(value.substr(0, value.find('/')));
      options.shard_count = std::stoi(value.substr(value.find('/') + 1));
    } else if (flag == "--walk-writes") {
      walk = value == "1";
    } else if (flag == "--fsize") {
      std::signal(SIGXFSZ, SIG_IGN);
      rlimit limit{};
      limit.rlim_cur = limit.rlim_max = std::stoull(value);
      setrlimit(RLIMIT_FSIZE, &limit);
    } else {
      std::cerr << "unknown option " << flag << "\n";
      return 2;
    }
  }
  if (walk) return medload::test::walk_writes(options.output, [&] { medload::loader::build_cache(options); });
  try {
    const auto result = medload::loader::build_cache(options);
    std::cout << "decoded=" << result.decoded_files << " resumed=" << result.resumed_files
              << " reused=" << result.reused_files << " images=" << result.images << std::endl;
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return 1;
  }
}
