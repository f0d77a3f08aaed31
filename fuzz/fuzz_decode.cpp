// fuzz_decode: one whole file decoded and validated in process, from arbitrary bytes: format
// sniffing, the raster decoders (OpenCV, with the libjpeg-turbo and zlib completeness checks),
// DICOM through DCMTK, blank detection and the frame checks. decode_file never throws for bad
// input: every input must end as an outcome, without a crash or a memory error.
//
// JPEG 2000 DICOM is skipped: medload hands it to GDCM, and Debian's GDCM is built with
// assertions that abort() on some malformed codestreams. Production contains that abort in a
// forked worker (the file is `decoder_crash`; tests/loader cover it); here it would stop every
// campaign at the first such input, so GDCM is covered by crash containment, not by this target.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <vector>

#include "format.h"
#include "fuzz_support.h"
#include "medload/loader/ingest/scanner.h"

namespace {

/// True when the bytes name a JPEG 2000 transfer syntax (1.2.840.10008.1.2.4.90 to .93; JPIP .94
/// and .95 as well): DCMTK can only learn the transfer syntax from these bytes, so an input
/// without them never reaches GDCM.
bool names_jpeg2000(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  return bytes.find("1.2.840.10008.1.2.4.9") != std::string_view::npos;
}

medload::loader::ValidationOptions options() {
  medload::loader::ValidationOptions o;
  o.isolation = medload::loader::Isolation::kInProcess;
  o.max_pixels = 4'000'000;  // keeps each input fast; the limit itself is checked from the header
  o.max_file_bytes = 1u << 24;
  o.min_side = 1;            // let tiny images reach the decoders and the blank check
  o.reject_duplicates = false;
  o.threads = 1;
  o.validate();
  return o;
}

double number_at(const std::uint8_t* data, std::size_t size, std::size_t k) {
  double v = 0;
  if (size >= (k + 1) * sizeof v) std::memcpy(&v, data + k * sizeof v, sizeof v);
  return v;
}

void add_targets(medload::loader::SourceFile& source, const std::uint8_t* data, std::size_t size) {
  medload::loader::TargetSources& t = source.targets;
  t.mask_path = source.path;
  t.mask_report_path = "fuzz.img";
  t.class_count = 7;
  t.boxes_given = true;
  t.boxes = {{number_at(data, size, 0), number_at(data, size, 1), number_at(data, size, 2),
              number_at(data, size, 3), static_cast<std::int32_t>(size % 9)}};
  t.landmarks_given = true;
  t.landmarks = {{number_at(data, size, 4), number_at(data, size, 5), 1}};
}

// A frame's valid targets are what check_targets promises: a mask of the frame's size, boxes
// with an area inside the frame, landmarks inside it.
void check_targets(const medload::loader::DecodedImage& f) {
  using medload::loader::TargetState;
  const medload::loader::FrameTargets& t = f.targets;
  if (t.mask_state == TargetState::kValid &&
      (t.mask.height != f.height || t.mask.width != f.width ||
       t.mask.labels.size() != static_cast<std::size_t>(f.height) * static_cast<std::size_t>(f.width))) {
    std::abort();
  }
  for (const auto& b : t.boxes) {
    if (!(b.x0 >= 0 && b.y0 >= 0 && b.x1 <= f.width && b.y1 <= f.height && b.x0 < b.x1 && b.y0 < b.y1))
      std::abort();
  }
  for (const auto& p : t.landmarks) {
    if (!(p.x >= 0 && p.y >= 0 && p.x < f.width && p.y < f.height)) std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (names_jpeg2000(data, size)) return 0;
  static medload::fuzz::TempFile file(".img");
  static const medload::loader::ValidationOptions kOptions = options();
  medload::loader::SourceFile source;
  source.path = file.write(data, size);
  source.report_path = "fuzz.img";
  // Every other input is also its own mask, with boxes and a landmark from its first bytes: the
  // targets' checks (a mask decoded as a label map, its ids against a class map, boxes clipped or
  // refused) run on what the decoders made of it. Targets never reject their image.
  if (size > 0 && (data[size - 1] & 1) != 0) add_targets(source, data, size);
  std::vector<medload::loader::DecodedImage> frames;
  const medload::loader::FileOutcome outcome = medload::loader::decode_file(source, kOptions, frames);
  if (outcome.ok && source.targets.any() && !outcome.targets) std::abort();
  // A rejected file has no frames; an ok file's frames hold exactly the pixels they describe.
  if (!outcome.ok && !frames.empty()) std::abort();
  for (const auto& f : frames) {
    const auto expected = static_cast<std::size_t>(f.height) * static_cast<std::size_t>(f.width) *
                          static_cast<std::size_t>(f.channels) *
                          static_cast<std::size_t>(medload::loader::bytes_per_element(f.type));
    if (f.height <= 0 || f.width <= 0 || f.pixels.size() != expected) std::abort();
    check_targets(f);
  }
  return 0;
}
