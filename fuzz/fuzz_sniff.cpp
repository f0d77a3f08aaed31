// fuzz_sniff: format sniffing and the raster header readers on arbitrary bytes.
// Any input must give an answer, never a read outside [data, data + size): the readers run on
// untrusted files before anything is decoded.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "format.h"

using medload::loader::detail::Format;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace d = medload::loader::detail;
  const Format sniffed = d::sniff_format(data, size);
  (void)d::format_name(sniffed);
  // Every header reader on every input, whatever was sniffed: a file that claims one format by
  // extension may hold another's bytes.
  for (Format format : {Format::kPng, Format::kJpeg, Format::kTiff, Format::kBmp}) {
    const d::RasterHeader header = d::read_raster_header(format, data, size);
    // Sizes are never negative (the pixel-count limit multiplies them). A zero side with `ok` is
    // let through: a JPEG SOF may say height 0 (a DNL marker gives it later) and the decoder
    // rejects what it cannot read; docs/fuzzing.md records it.
    if (header.ok && (header.width < 0 || header.height < 0)) {
      std::fprintf(stderr, "%s header: ok with size %lldx%lld\n", std::string(d::format_name(format)).c_str(),
                   static_cast<long long>(header.width), static_cast<long long>(header.height));
      std::abort();
    }
    (void)d::has_end_marker(format, data, size);
  }
  return 0;
}
