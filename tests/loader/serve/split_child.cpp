// A child process for the split tests that fill the disk: stores a split of CACHE.
//   medload_split_child CACHE SEED [--walk-writes]
// Makes the default train/val/test split with SEED and writes it with write_split; with
// --walk-writes (under LD_PRELOAD=libmedload_fail_writes.so) once for every write it makes, the
// disk filling at that write (medload_test/walk_writes.h). Exit 0, or 1 with the error.

#include <iostream>
#include <string>

#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/serve/split_store.h"
#include "medload_test/walk_writes.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::cerr << "usage: medload_split_child CACHE SEED [--walk-writes]\n";
    return 2;
  }
  const std::string path = argv[1];
  medload::loader::SplitOptions options;
  options.seed = std::stoull(argv[2]);
  try {
    const medload::loader::StoredSplit split =
        medload::loader::make_split(medload::loader::CacheReader(path), options, 1);
    if (argc > 3 && std::string(argv[3]) == "--walk-writes") {
      return medload::test::walk_writes(path, [&] { medload::loader::write_split(path, split); });
    }
    medload::loader::write_split(path, split);
    return 0;
  } catch (const std::exception& e) {
    std::cerr << "error: " << e.what() << std::endl;
    return 1;
  }
}
