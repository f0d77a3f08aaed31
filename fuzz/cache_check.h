#pragma once
// What fuzz_cache and fuzz_split share: the checking child, as the medload command runs it.

#include <string>

#include "h5.h"
#include "medload/core/error.h"
#include "medload/loader/cache/cache_reader.h"

namespace medload::fuzz {

// A file with variable-length strings is read in a checking child before the reader touches it
// (schema::contain_variable_length_strings), with a limit of 120 s. The harness runs that check
// itself with a 10 s limit, so an input that hangs libhdf5 costs a FormatError well inside
// libFuzzer's -timeout; the reader then skips the checked file. False: the input was refused.
inline bool checked_in_child(const std::string& path) {
  try {
    bool variable_length = false;
    {
      const medload::loader::h5::File file = medload::loader::h5::File::open(path);
      variable_length = !medload::loader::h5::variable_length_strings(file.id()).empty();
    }
    if (variable_length) medload::loader::check_cache_in_child(path, 10);
  } catch (const medload::Error&) {
    return false;
  }
  return true;
}

}  // namespace medload::fuzz
