#pragma once
// Whether a JPEG or PNG that ends without its end marker still holds all of its image data.
//
// A missing trailer alone does not make an image unusable: a copy cut just after its last row, or
// an exporter that drops the trailer, still holds every row. What decides is whether the image
// data itself is complete, judged from what a decoder consumes (JPEG: libjpeg-turbo; PNG: zlib
// over the IDAT stream), not from the last bytes. (A file with bytes after its marker has it:
// has_end_marker walks the chunks or segments to find it.)

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "medload/loader/ingest/scan_report.h"

namespace medload::loader::detail {

/// The verdict on a file without its end marker.
struct EndCheck {
  /// True when every row's data is there: the file is usable as it is.
  bool complete = false;
  /// When not complete: kTruncated (the data ends early) or kUnreadable (it is malformed).
  Reason reason = Reason::kTruncated;
  /// When not complete: for a person, where the data ran out or what is wrong.
  std::string detail;
};

/// Judges a JPEG (`data`, `size` bytes, without FF D9 at its end) by reading all of its
/// entropy-coded data with libjpeg-turbo: complete unless the decoder had to invent data
/// (a scan's data ran into the end of the file or into a marker), a progressive file stops
/// before its last refinement, or reading fails after the end of the data. Arithmetic-coded
/// files cannot be judged this way (their decoder pads silently) and stay truncated.
/// Never throws and never exits; libjpeg's messages are kept, not printed.
EndCheck check_jpeg_end(const std::uint8_t* data, std::size_t size);

/// Where decode_jpeg_without_end writes: rows of `width` x `channels` bytes, no padding.
struct JpegTarget {
  std::uint8_t* pixels = nullptr;  ///< height * width * channels bytes
  int height = 0;
  int width = 0;
  int channels = 1;  ///< 1: gray; 3: B,G,R
};

/// check_jpeg_end and the decode in one pass of libjpeg-turbo: judges the file as check_jpeg_end
/// does while decoding it into `target`, exactly as OpenCV's imdecode would (gray, or B,G,R).
/// `handled` is false, and nothing is judged, for a file this does not decode as OpenCV would
/// (a colour space other than gray, YCbCr or RGB; a size other than the target's): those go
/// through check_jpeg_end and OpenCV. The pixels are only meaningful when the verdict is complete.
EndCheck decode_jpeg_without_end(const std::uint8_t* data, std::size_t size, const JpegTarget& target,
                                 bool& handled);

/// A JPEG's bytes with FF D9 appended: what OpenCV decodes exactly as it would the intact file.
std::vector<std::uint8_t> restore_jpeg_end(const std::uint8_t* data, std::size_t size);

/// Judges a PNG (`data`, `size` bytes, without its IEND chunk) by inflating its IDAT stream:
/// complete when the zlib stream ends properly (Adler-32 checked) after at least the bytes that
/// IHDR's size, colour type, bit depth and interlacing call for.
EndCheck check_png_end(const std::uint8_t* data, std::size_t size);

/// A PNG's bytes up to its last whole chunk (a cut IDAT kept, re-framed with its own length and
/// CRC), then IEND: what OpenCV decodes exactly as it would the intact file when every row is
/// there, and fails to decode ("Not enough image data") when not. Empty when the file holds no
/// IDAT chunk at all (OpenCV's header reader would fail on it in a way imdecode does not report
/// for a destination it was given).
std::vector<std::uint8_t> restore_png_end(const std::uint8_t* data, std::size_t size);

}  // namespace medload::loader::detail
