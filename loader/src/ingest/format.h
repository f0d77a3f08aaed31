#pragma once
// What a file is, from its first bytes, and the image size its header declares, read without
// decoding a pixel (so the pixel-count limit is checked before anything large is allocated).

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace medload::loader::detail {

enum class Format { kUnknown, kPng, kJpeg, kTiff, kBmp, kDicom };

/// "png", "jpeg", "tiff", "bmp", "dicom", or "" for kUnknown.
std::string_view format_name(Format format);

/// The format of `data` by content: DICOM (a "DICM" prefix at 128, or a dataset without a
/// preamble that starts with a group 0002/0008 tag), PNG, JPEG, TIFF or BMP magic bytes.
/// DICOM is tested first: some DICOM preambles look like a TIFF header.
Format sniff_format(const std::uint8_t* data, std::size_t size);

/// The format a file name's extension promises (kUnknown for none or an unknown extension).
Format format_from_extension(const std::string& path);

/// Size declared by a raster header. `ok` is false when the header is cut short or malformed;
/// `detail` then says what is wrong.
struct RasterHeader {
  bool ok = false;
  std::int64_t width = 0;
  std::int64_t height = 0;
  int bit_depth = 0;
  /// Samples per pixel as the file stores them (PNG: from its colour type, 3 for a palette;
  /// JPEG: its components); 0 when the header does not say (TIFF, BMP).
  int channels = 0;
  std::string detail;
};

/// Reads the declared size of a PNG (IHDR), JPEG (first SOFn marker), TIFF (first IFD) or BMP
/// (info header) without decoding.
RasterHeader read_raster_header(Format format, const std::uint8_t* data, std::size_t size);

/// Whether a file of `format` holds its end as a complete one does: PNG with its IEND chunk, JPEG
/// with an end-of-image marker (FF D9), at the end or where the chunks or segments, walked by
/// their lengths, lead (bytes after the end, which some exporters add, do not matter). Always
/// true for other formats.
/// Such a file is taken as complete; one without is not yet truncated: its image data decides
/// (end_check.h).
bool has_end_marker(Format format, const std::uint8_t* data, std::size_t size);

}  // namespace medload::loader::detail
