// fuzz_manifest: the CSV manifest parser. parse_csv_line on the first line, then the whole input
// as a manifest through list_sources (the files it names need not exist: a missing file is still
// an entry). medload::Error (FormatError for a malformed line) is the expected answer to bad
// input; anything else escaping, or a memory error, is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "fuzz_support.h"
#include "medload/core/error.h"
#include "medload/loader/ingest/source.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  static medload::fuzz::TempFile manifest(".csv");
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    (void)medload::loader::parse_csv_line(text.substr(0, text.find('\n')), "fuzz:1");
  } catch (const medload::Error&) {
  }
  const std::string& path = manifest.write(data, size);
  try {
    const auto sources = medload::loader::list_sources("/nonexistent-medload-fuzz-root", path);
    for (const auto& s : sources) {
      (void)s.cache_path();
      (void)medload::loader::loose_patient_id(s.info.patient_id);
    }
  } catch (const medload::Error&) {
  }
  return 0;
}
