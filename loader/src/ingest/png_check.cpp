// restore_png_end and check_png_end: a PNG without IEND, given back its trailer, and judged by
// inflating its IDAT stream against what IHDR calls for.
//
// The decoder's own run is the cheap verdict: OpenCV decodes the restored bytes through libpng,
// which fails ("Not enough image data") unless every row inflates and the zlib stream ends, so a
// usable file costs one decode plus a copy, and its pixels are those of the intact file by
// construction (OpenCV rejects a PNG without IEND outright, so the copy is needed anyway).
// check_png_end runs only after such a failure, to say why: zlib answers exactly whether the
// compressed data is all there (the stream's end, its Adler-32) and where it stops, without
// unfiltering a pixel.

#include <zlib.h>

#include <algorithm>
#include <cstring>

#include "end_check.h"

namespace medload::loader::detail {

namespace {

std::uint32_t be32(const std::uint8_t* p) {
  return (std::uint32_t(p[0]) << 24) | (std::uint32_t(p[1]) << 16) | (std::uint32_t(p[2]) << 8) | p[3];
}

void put_be32(std::vector<std::uint8_t>& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<std::uint8_t>(v >> shift));
}

// One chunk as far as the file holds it.
struct Chunk {
  std::size_t at = 0;        // offset of its length field
  std::uint32_t length = 0;  // declared data length
  const std::uint8_t* data = nullptr;
  std::size_t available = 0;  // data bytes present (less than `length` when cut)
  bool whole = false;         // data and CRC all present
  bool idat = false;
};

// The chunks after the signature; the last may be cut (a few bytes of a chunk header are ignored).
std::vector<Chunk> list_chunks(const std::uint8_t* d, std::size_t n) {
  std::vector<Chunk> chunks;
  std::size_t at = 8;
  while (at + 8 <= n) {
    Chunk c;
    c.at = at;
    c.length = be32(d + at);
    c.idat = std::memcmp(d + at + 4, "IDAT", 4) == 0;
    c.data = d + at + 8;
    const std::size_t room = n - (at + 8);
    c.available = std::min<std::size_t>(c.length, room);
    c.whole = room >= std::size_t{c.length} + 4;
    chunks.push_back(c);
    if (!c.whole) break;
    at += 12 + std::size_t{c.length};
  }
  return chunks;
}

// Samples per pixel for a PNG colour type; 0 for an invalid one.
int samples_of(int colour_type) {
  switch (colour_type) {
    case 0:
      return 1;  // gray
    case 2:
      return 3;  // RGB
    case 3:
      return 1;  // palette index
    case 4:
      return 2;  // gray + alpha
    case 6:
      return 4;  // RGB + alpha
    default:
      return 0;
  }
}

// Bytes of filtered scanlines (a filter byte per row) for an image, or for each Adam7 pass.
std::uint64_t filtered_size(std::uint64_t width, std::uint64_t height, std::uint64_t bits_per_pixel,
                            bool interlaced) {
  auto rows = [&](std::uint64_t w, std::uint64_t h) {
    return w == 0 || h == 0 ? 0 : h * (1 + (w * bits_per_pixel + 7) / 8);
  };
  if (!interlaced) return rows(width, height);
  constexpr std::uint64_t kPass[7][4] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4},
                                         {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};  // x0, y0, dx, dy
  std::uint64_t total = 0;
  for (const auto& p : kPass) {
    const std::uint64_t w = width > p[0] ? (width - p[0] + p[2] - 1) / p[2] : 0;
    const std::uint64_t h = height > p[1] ? (height - p[1] + p[3] - 1) / p[3] : 0;
    total += rows(w, h);
  }
  return total;
}

// What inflating the IDAT data gave.
struct Inflated {
  int status = Z_OK;        // Z_STREAM_END when the stream ended properly
  std::uint64_t bytes = 0;  // filtered scanline bytes produced (counting stops past `expected`)
  std::string message;      // zlib's, on an error
};

Inflated inflate_idat(const std::vector<Chunk>& chunks, std::uint64_t expected) {
  Inflated result;
  z_stream z{};
  if (inflateInit(&z) != Z_OK) {
    result.status = Z_MEM_ERROR;
    return result;
  }
  std::vector<std::uint8_t> scratch(std::size_t{1} << 16);
  for (const Chunk& c : chunks) {
    if (!c.idat) continue;
    z.next_in = const_cast<Bytef*>(c.data);
    z.avail_in = static_cast<uInt>(c.available);
    while (result.status == Z_OK && z.avail_in > 0 && result.bytes <= expected) {
      z.next_out = scratch.data();
      z.avail_out = static_cast<uInt>(scratch.size());
      result.status = inflate(&z, Z_NO_FLUSH);
      result.bytes += scratch.size() - z.avail_out;
      if (result.status == Z_BUF_ERROR) result.status = Z_OK;  // no progress possible: needs input
    }
    if (result.status != Z_OK || result.bytes > expected) break;
  }
  if (result.status != Z_OK && result.status != Z_STREAM_END) result.message = z.msg ? z.msg : "error";
  inflateEnd(&z);
  return result;
}

EndCheck incomplete(Reason reason, std::string detail) {
  EndCheck check;
  check.reason = reason;
  check.detail = std::move(detail);
  return check;
}

}  // namespace

std::vector<std::uint8_t> restore_png_end(const std::uint8_t* d, std::size_t n) {
  const std::vector<Chunk> chunks = list_chunks(d, n);
  if (std::none_of(chunks.begin(), chunks.end(), [](const Chunk& c) { return c.idat; })) return {};
  std::size_t keep = 8;
  for (const Chunk& c : chunks) {
    if (c.whole) keep = c.at + 12 + c.length;
  }
  const bool cut_idat = !chunks.empty() && !chunks.back().whole && chunks.back().idat;
  std::vector<std::uint8_t> out;
  out.reserve(keep + (cut_idat ? 12 + chunks.back().available : 0) + 12);  // one allocation
  out.assign(d, d + keep);
  if (cut_idat) {
    const Chunk& cut = chunks.back();
    put_be32(out, static_cast<std::uint32_t>(cut.available));
    out.insert(out.end(), d + cut.at + 4, d + cut.at + 8);
    out.insert(out.end(), cut.data, cut.data + cut.available);
    uLong crc = crc32(0, d + cut.at + 4, 4);
    crc = crc32(crc, cut.data, static_cast<uInt>(cut.available));
    put_be32(out, static_cast<std::uint32_t>(crc));
  }
  constexpr std::uint8_t kIend[12] = {0, 0, 0, 0, 'I', 'E', 'N', 'D', 0xAE, 0x42, 0x60, 0x82};
  out.insert(out.end(), kIend, kIend + 12);
  return out;
}

EndCheck check_png_end(const std::uint8_t* d, std::size_t n) {
  const std::string ending = "the PNG ends without its IEND chunk and ";
  // read_raster_header has checked that IHDR is there.
  const std::uint64_t width = be32(d + 16);
  const std::uint64_t height = be32(d + 20);
  const int bit_depth = d[24];
  const int samples = samples_of(d[25]);
  const bool interlaced = d[28] == 1;
  if (samples == 0 ||
      (bit_depth != 1 && bit_depth != 2 && bit_depth != 4 && bit_depth != 8 && bit_depth != 16)) {
    return incomplete(Reason::kUnreadable, "the PNG header declares colour type " + std::to_string(d[25]) +
                                               " with bit depth " + std::to_string(bit_depth));
  }
  const std::uint64_t expected =
      filtered_size(width, height, static_cast<std::uint64_t>(samples) * bit_depth, interlaced);
  const std::vector<Chunk> chunks = list_chunks(d, n);
  const Inflated inflated = inflate_idat(chunks, expected);
  if (inflated.status != Z_OK && inflated.status != Z_STREAM_END) {
    return incomplete(Reason::kUnreadable, "the PNG's compressed image data is corrupt after " +
                                               std::to_string(inflated.bytes) +
                                               " bytes (zlib: " + inflated.message + ")");
  }
  // More bytes than the rows need: every row is there (libpng ignores the excess).
  const bool rows_complete = inflated.bytes >= expected;
  if (!rows_complete || (inflated.status != Z_STREAM_END && inflated.bytes == expected)) {
    const std::uint64_t row_bytes = 1 + (width * samples * bit_depth + 7) / 8;
    std::string where = std::to_string(inflated.bytes) + " of " + std::to_string(expected) + " bytes";
    if (!interlaced && rows_complete) {
      where += ", every row but the zlib stream's end";
    } else if (!interlaced) {
      where += ", in row " + std::to_string(inflated.bytes / row_bytes + 1) + " of " + std::to_string(height);
    } else {
      where += " of the interlaced passes";
    }
    const bool stream_ended = inflated.status == Z_STREAM_END;
    return incomplete(Reason::kTruncated, ending +
                                              (stream_ended ? "its compressed image data ends after "
                                                            : "its image data (IDAT) is cut off after ") +
                                              where);
  }
  EndCheck check;
  check.complete = true;
  return check;
}

}  // namespace medload::loader::detail
