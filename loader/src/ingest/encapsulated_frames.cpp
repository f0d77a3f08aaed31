// Frame headers of encapsulated pixel data (encapsulated_frames.h). The JPEG walk is DCMTK's
// scanJpegDataForBitDepth (dcmjpeg/libsrc/djcodecd.cc) step for step, so that it ends, or
// stalls, exactly where DCMTK's would.

#include "encapsulated_frames.h"

#include <algorithm>
#include <array>

namespace medload::loader::detail {

namespace {

enum class Step { kStartOfFrame, kError, kStall, kSkipSegment, kSkip2, kSkip1 };

// What DCMTK's walk does at a marker FF `code`.
Step step_at(std::uint8_t code) {
  if (code == 0x01) return Step::kStall;                                        // TEM: the walk stays
  if (code == 0xFF) return Step::kSkip1;                                        // a fill byte
  if (code == 0xC4 || code == 0xC8 || code == 0xCC) return Step::kSkipSegment;  // DHT, JPG, DAC
  if (code >= 0xC0 && code <= 0xCF) return Step::kStartOfFrame;                 // SOF_n: the goal
  if (code >= 0xD0 && code <= 0xD9) return Step::kSkip2;                        // RSTn, SOI, EOI
  if (code >= 0xDA) return Step::kSkipSegment;                                  // SOS .. COM (FE)
  if (code > 0x02 && code <= 0xBF) return Step::kSkip2;                         // reserved markers
  return Step::kError;                                                          // 00, 02
}

// Where DCMTK's walk ends: at a start-of-frame or a TEM marker (at `offset`), or elsewhere (an
// invalid marker, bytes that are not a marker, the end of the data).
struct WalkEnd {
  Step step = Step::kError;  // kStartOfFrame, kStall or kError
  std::size_t offset = 0;
};

WalkEnd walk(const std::uint8_t* data, std::size_t size) {
  std::size_t offset = 0;
  while (offset + 4 < size) {
    if (data[offset] != 0xFF) break;  // not a marker: DCMTK reports an error and stops
    const Step step = step_at(data[offset + 1]);
    switch (step) {
      case Step::kStartOfFrame:
      case Step::kError:
      case Step::kStall:
        return {step, offset};
      case Step::kSkipSegment:
        offset += ((std::size_t{data[offset + 2]} << 8) | data[offset + 3]) + 2;
        break;
      case Step::kSkip2:
        offset += 2;
        break;
      case Step::kSkip1:
        offset += 1;
        break;
    }
  }
  return {Step::kError, offset};
}

}  // namespace

std::optional<FrameSize> dcmtk_frame_size(const std::uint8_t* data, std::size_t size) {
  const WalkEnd end = walk(data, size);
  // FF Cn, length (2 bytes), P, Y (2), X (2), Nf
  if (end.step != Step::kStartOfFrame || end.offset + 10 > size) return std::nullopt;
  const std::uint8_t* sof = data + end.offset;
  FrameSize frame;
  frame.height = (sof[5] << 8) | sof[6];
  frame.width = (sof[7] << 8) | sof[8];
  frame.components = sof[9];
  return frame;
}

std::optional<FrameSize> j2k_frame_size(const std::uint8_t* data, std::size_t size) {
  static constexpr std::array<std::uint8_t, 4> kStart = {0xFF, 0x4F, 0xFF, 0x51};  // SOC, SIZ
  const std::uint8_t* codestream = std::search(data, data + size, kStart.begin(), kStart.end());
  // SOC (2), SIZ marker (2), Lsiz, Rsiz, then Xsiz, Ysiz, XOsiz, YOsiz, XTsiz, YTsiz, XTOsiz,
  // YTOsiz (4 bytes each), Csiz (2).
  const std::size_t at = static_cast<std::size_t>(codestream - data);
  if (at == size || size - at < 42) return std::nullopt;
  const auto u32 = [&](std::size_t offset) {
    const std::uint8_t* p = codestream + offset;
    return (std::int64_t{p[0]} << 24) | (std::int64_t{p[1]} << 16) | (std::int64_t{p[2]} << 8) | p[3];
  };
  FrameSize frame;
  frame.width = std::max<std::int64_t>(0, u32(8) - u32(16));
  frame.height = std::max<std::int64_t>(0, u32(12) - u32(20));
  frame.components = (codestream[40] << 8) | codestream[41];
  return frame;
}

std::size_t dcmtk_walk_stall(const std::uint8_t* data, std::size_t size) {
  const WalkEnd end = walk(data, size);
  return end.step == Step::kStall ? end.offset : size;
}

int remove_stalling_tem_markers(std::vector<std::uint8_t>& fragment) {
  int removed = 0;
  // Each pass removes two bytes, so this ends.
  for (std::size_t at = dcmtk_walk_stall(fragment.data(), fragment.size()); at < fragment.size();
       at = dcmtk_walk_stall(fragment.data(), fragment.size())) {
    fragment.erase(fragment.begin() + static_cast<std::ptrdiff_t>(at),
                   fragment.begin() + static_cast<std::ptrdiff_t>(at) + 2);
    ++removed;
  }
  return removed;
}

}  // namespace medload::loader::detail
