#include "format.h"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace medload::loader::detail {

namespace {

std::uint32_t be16(const std::uint8_t* p) { return (std::uint32_t(p[0]) << 8) | p[1]; }
std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
}
std::uint32_t le16(const std::uint8_t* p) { return p[0] | (std::uint32_t(p[1]) << 8); }
std::uint32_t le32(const std::uint8_t* p) {
  return p[0] | (std::uint32_t(p[1]) << 8) | (std::uint32_t(p[2]) << 16) | (std::uint32_t(p[3]) << 24);
}

RasterHeader fail(std::string detail) {
  RasterHeader h;
  h.detail = std::move(detail);
  return h;
}

RasterHeader png_header(const std::uint8_t* d, std::size_t n) {
  if (n < 33 || std::memcmp(d + 12, "IHDR", 4) != 0)
    return fail("the PNG header (IHDR) is missing or cut short");
  RasterHeader h;
  h.width = be32(d + 16);
  h.height = be32(d + 20);
  h.bit_depth = d[24];
  // By colour type: 0 gray, 2 RGB, 3 palette (decoded to colour), 4 gray + alpha, 6 RGB + alpha.
  constexpr int kChannels[7] = {1, 0, 3, 3, 2, 0, 4};
  if (d[25] < 7) h.channels = kChannels[d[25]];
  h.ok = true;
  return h;
}

RasterHeader jpeg_header(const std::uint8_t* d, std::size_t n) {
  std::size_t i = 2;
  while (i + 4 <= n) {
    if (d[i] != 0xFF) return fail("malformed JPEG marker at byte " + std::to_string(i));
    const std::uint8_t marker = d[i + 1];
    if (marker == 0xFF) {  // fill byte
      ++i;
      continue;
    }
    if (marker == 0xD8 || (marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) {
      i += 2;
      continue;
    }
    const std::uint32_t length = be16(d + i + 2);
    const bool sof = marker >= 0xC0 && marker <= 0xCF && marker != 0xC4 && marker != 0xC8 && marker != 0xCC;
    if (sof) {
      if (i + 9 > n) break;
      RasterHeader h;
      h.bit_depth = d[i + 4];
      h.height = be16(d + i + 5);
      h.width = be16(d + i + 7);
      if (i + 10 <= n) h.channels = d[i + 9];
      h.ok = true;
      return h;
    }
    if (marker == 0xDA || marker == 0xD9)
      return fail("the JPEG has no frame header (SOF) before its scan data");
    i += 2 + length;
  }
  return fail("the JPEG header ends before its frame header (SOF)");
}

RasterHeader tiff_header(const std::uint8_t* d, std::size_t n) {
  if (n < 8) return fail("the TIFF header is cut short");
  const bool little = d[0] == 'I';
  auto u16 = [&](std::size_t at) { return little ? le16(d + at) : be16(d + at); };
  auto u32 = [&](std::size_t at) { return little ? le32(d + at) : be32(d + at); };
  const std::size_t ifd = u32(4);
  if (ifd + 2 > n)
    return fail("the TIFF directory offset " + std::to_string(ifd) + " is past the end of the file");
  const std::size_t entries = u16(ifd);
  RasterHeader h;
  for (std::size_t e = 0; e < entries; ++e) {
    const std::size_t at = ifd + 2 + e * 12;
    if (at + 12 > n) return fail("the TIFF directory is cut short");
    const std::uint32_t tag = u16(at);
    const std::uint32_t type = u16(at + 2);
    const std::uint32_t value = type == 3 ? u16(at + 8) : u32(at + 8);
    if (tag == 256) h.width = value;
    if (tag == 257) h.height = value;
    if (tag == 258) h.bit_depth = static_cast<int>(type == 3 ? value : 0);
  }
  if (h.width <= 0 || h.height <= 0) return fail("the TIFF directory has no image width or length");
  h.ok = true;
  return h;
}

RasterHeader bmp_header(const std::uint8_t* d, std::size_t n) {
  if (n < 30) return fail("the BMP header is cut short");
  RasterHeader h;
  const std::uint32_t header_size = le32(d + 14);
  if (header_size == 12) {  // OS/2 BITMAPCOREHEADER
    h.width = le16(d + 18);
    h.height = le16(d + 20);
    h.bit_depth = static_cast<int>(le16(d + 24));
  } else {
    h.width = static_cast<std::int32_t>(le32(d + 18));
    h.height = static_cast<std::int32_t>(le32(d + 22));
    if (h.height < 0) h.height = -h.height;  // top-down bitmap
    h.bit_depth = static_cast<int>(le16(d + 28));
  }
  h.ok = h.width > 0 && h.height > 0;
  if (!h.ok) h.detail = "the BMP header declares a non-positive size";
  return h;
}

}  // namespace

std::string_view format_name(Format format) {
  switch (format) {
    case Format::kPng:
      return "png";
    case Format::kJpeg:
      return "jpeg";
    case Format::kTiff:
      return "tiff";
    case Format::kBmp:
      return "bmp";
    case Format::kDicom:
      return "dicom";
    case Format::kUnknown:
      break;
  }
  return "";
}

Format sniff_format(const std::uint8_t* d, std::size_t n) {
  if (n >= 132 && std::memcmp(d + 128, "DICM", 4) == 0) return Format::kDicom;
  if (n >= 8 && std::memcmp(d, "\x89PNG\r\n\x1a\n", 8) == 0) return Format::kPng;
  if (n >= 3 && d[0] == 0xFF && d[1] == 0xD8 && d[2] == 0xFF) return Format::kJpeg;
  if (n >= 4 && (std::memcmp(d, "II*\0", 4) == 0 || std::memcmp(d, "MM\0*", 4) == 0)) return Format::kTiff;
  if (n >= 26 && d[0] == 'B' && d[1] == 'M') return Format::kBmp;
  // A DICOM dataset without preamble and meta header (older files): it starts with a tag of
  // group 0002 or 0008 (little or big endian), then a two-letter VR or a 4-byte length.
  if (n >= 8) {
    const std::uint32_t group_le = le16(d);
    const std::uint32_t group_be = be16(d);
    const bool group = group_le == 0x0002 || group_le == 0x0008 || group_be == 0x0002 || group_be == 0x0008;
    const bool vr = std::isupper(d[4]) && std::isupper(d[5]);
    const std::uint32_t implicit_length = le32(d + 4);
    if (group && (vr || implicit_length < 0x10000)) return Format::kDicom;
  }
  return Format::kUnknown;
}

Format format_from_extension(const std::string& path) {
  const auto dot = path.find_last_of('.');
  const auto slash = path.find_last_of('/');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash)) return Format::kUnknown;
  std::string ext = path.substr(dot + 1);
  std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
  if (ext == "png") return Format::kPng;
  if (ext == "jpg" || ext == "jpeg" || ext == "jpe") return Format::kJpeg;
  if (ext == "tif" || ext == "tiff") return Format::kTiff;
  if (ext == "bmp" || ext == "dib") return Format::kBmp;
  if (ext == "dcm" || ext == "dicom" || ext == "dic") return Format::kDicom;
  return Format::kUnknown;
}

RasterHeader read_raster_header(Format format, const std::uint8_t* data, std::size_t size) {
  switch (format) {
    case Format::kPng:
      return png_header(data, size);
    case Format::kJpeg:
      return jpeg_header(data, size);
    case Format::kTiff:
      return tiff_header(data, size);
    case Format::kBmp:
      return bmp_header(data, size);
    default:
      return fail("not a raster format");
  }
}

namespace {

std::uint64_t big_endian(const std::uint8_t* p, int bytes) {
  std::uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value = (value << 8) | p[i];
  return value;
}

// Whether the PNG's chunks, walked by their lengths from the signature, reach IEND inside the
// file (whatever follows it: some exporters pad files).
bool png_chunks_reach_iend(const std::uint8_t* d, std::size_t n) {
  std::uint64_t at = 8;
  while (at + 8 <= n) {
    if (std::memcmp(d + at + 4, "IEND", 4) == 0) return true;
    at += 12 + big_endian(d + at, 4);  // length, type, data, CRC
  }
  return false;
}

// Whether the JPEG's segments, walked by their lengths (entropy-coded data up to its next
// marker), reach an end-of-image marker inside the file (whatever follows it).
bool jpeg_segments_reach_eoi(const std::uint8_t* d, std::size_t n) {
  std::size_t at = 2;  // after SOI
  while (at + 1 < n) {
    if (d[at] != 0xFF) return false;
    const std::uint8_t marker = d[at + 1];
    if (marker == 0xFF) {  // fill byte
      ++at;
      continue;
    }
    if (marker == 0xD9) return true;
    if ((marker >= 0xD0 && marker <= 0xD7) || marker == 0x01) {  // standalone: RSTn, TEM
      at += 2;
      continue;
    }
    if (at + 4 > n) return false;
    at += 2 + static_cast<std::size_t>(big_endian(d + at + 2, 2));
    if (marker != 0xDA) continue;
    // Scan data: an FF there is followed by 00 (a stuffed byte) or a restart marker.
    while (at + 1 < n && !(d[at] == 0xFF && d[at + 1] != 0x00 && !(d[at + 1] >= 0xD0 && d[at + 1] <= 0xD7)))
      ++at;
  }
  return false;
}

}  // namespace

bool has_end_marker(Format format, const std::uint8_t* d, std::size_t n) {
  if (format == Format::kPng) {
    // The IEND chunk: length 0, "IEND", CRC; near the end, or wherever the chunks lead.
    const std::uint8_t iend[] = {'I', 'E', 'N', 'D'};
    const std::size_t from = n > 64 ? n - 64 : 0;
    return std::search(d + from, d + n, iend, iend + 4) != d + n || png_chunks_reach_iend(d, n);
  }
  if (format == Format::kJpeg) {
    std::size_t end = n;
    while (end > 2 &&
           (d[end - 1] == 0x00 || d[end - 1] == 0xFF || d[end - 1] == 0x0A || d[end - 1] == 0x0D)) {
      if (d[end - 2] == 0xFF && d[end - 1] == 0xD9) break;
      --end;
    }
    return (end >= 2 && d[end - 2] == 0xFF && d[end - 1] == 0xD9) || jpeg_segments_reach_eoi(d, n);
  }
  return true;
}

}  // namespace medload::loader::detail
