// fuzz_split: the split store from arbitrary bytes: every split listed in the file is read and
// turned into its report JSON. medload::Error (ConfigError, FormatError, HdfError) is the expected
// answer to a damaged file; a crash, a hang, a memory error or any other exception is a bug.
// Seeds are small caches with a train/val/test split and k folds stored in them.
#include <cstddef>
#include <cstdint>
#include <string>

#include "cache_check.h"
#include "fuzz_support.h"
#include "medload/core/error.h"
#include "medload/loader/cache/cache_reader.h"
#include "medload/loader/serve/split_store.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static medload::fuzz::TempFile file(".h5");
  const std::string& path = file.write(data, size);
  if (!medload::fuzz::checked_in_child(path)) return 0;
  try {
    for (const auto& name : medload::loader::list_splits(path)) {
      try {
        const medload::loader::StoredSplit split = medload::loader::read_split(path, name);
        for (std::size_t p = 0; p < split.parts; ++p) (void)split.part_label(p);
        (void)split.to_json();
      } catch (const medload::Error&) {
      }
    }
  } catch (const medload::Error&) {
  }
  return 0;
}
