#include "nifti.h"

#include <zlib.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <memory>

#include "medload/core/error.h"

namespace medload::examples {
namespace {

constexpr std::int32_t kHeaderSize = 348;
constexpr std::int64_t kMinVoxOffset = 352;  // the header and the 4-byte extension flag

// A gzFile, closed when it goes away. zlib reads uncompressed files through the same calls.
struct GzCloser {
  void operator()(gzFile_s* f) const { gzclose(f); }
};
using GzFile = std::unique_ptr<gzFile_s, GzCloser>;

// Reads up to `n` bytes; returns how many came (fewer only at the end of the data). Throws
// IoError (or FormatError for a corrupt gzip stream) naming the file.
std::size_t read_up_to(gzFile file, const std::string& path, void* out, std::size_t n) {
  std::size_t done = 0;
  auto* bytes = static_cast<unsigned char*>(out);
  while (done < n) {
    const auto chunk = static_cast<unsigned>(std::min<std::size_t>(n - done, 1u << 30));
    const int got = gzread(file, bytes + done, chunk);
    if (got < 0) {
      int code = 0;
      const char* message = gzerror(file, &code);
      const std::string why = message != nullptr ? message : "unknown error";
      if (code == Z_DATA_ERROR) throw FormatError(path + ": the gzip stream is corrupt (" + why + ")");
      throw IoError(path + ": cannot read (" + why + ")");
    }
    if (got == 0) break;
    done += static_cast<std::size_t>(got);
  }
  return done;
}

template <class T>
T field(const unsigned char* header, std::size_t offset) {
  T value;
  std::memcpy(&value, header + offset, sizeof(T));
  return value;
}

// The header fields the reader uses, at their NIfTI-1 offsets.
struct Header {
  std::int32_t sizeof_hdr = 0;
  std::array<std::int16_t, 8> dim{};
  std::int16_t datatype = 0, bitpix = 0;
  std::array<float, 8> pixdim{};
  float vox_offset = 0, scl_slope = 0, scl_inter = 0;
  std::int16_t sform_code = 0;
  std::array<std::array<float, 4>, 3> srow{};
  char magic[4] = {};
};

Header parse_header(const unsigned char* h) {
  Header r;
  r.sizeof_hdr = field<std::int32_t>(h, 0);
  for (int d = 0; d < 8; ++d) r.dim[static_cast<std::size_t>(d)] = field<std::int16_t>(h, 40 + 2 * d);
  r.datatype = field<std::int16_t>(h, 70);
  r.bitpix = field<std::int16_t>(h, 72);
  for (int d = 0; d < 8; ++d) r.pixdim[static_cast<std::size_t>(d)] = field<float>(h, 76 + 4 * d);
  r.vox_offset = field<float>(h, 108);
  r.scl_slope = field<float>(h, 112);
  r.scl_inter = field<float>(h, 116);
  r.sform_code = field<std::int16_t>(h, 254);
  for (int row = 0; row < 3; ++row) {
    for (int c = 0; c < 4; ++c) {
      r.srow[static_cast<std::size_t>(row)][static_cast<std::size_t>(c)] =
          field<float>(h, 280 + 16 * static_cast<std::size_t>(row) + 4 * static_cast<std::size_t>(c));
    }
  }
  std::memcpy(r.magic, h + 344, 4);
  return r;
}

// Bits per voxel of the accepted datatypes; 0 for any other.
int bits_of(std::int16_t datatype) {
  switch (datatype) {
    case 2:  // DT_UINT8
      return 8;
    case 4:    // DT_INT16
    case 512:  // DT_UINT16
      return 16;
    case 16:  // DT_FLOAT32
      return 32;
    default:
      return 0;
  }
}

void check_identity(const Header& h, const std::string& path) {
  if (h.sizeof_hdr != kHeaderSize) {
    const auto* b = reinterpret_cast<const unsigned char*>(&h.sizeof_hdr);
    const std::uint32_t swapped = (std::uint32_t{b[0]} << 24) | (std::uint32_t{b[1]} << 16) |
                                  (std::uint32_t{b[2]} << 8) | std::uint32_t{b[3]};
    throw FormatError(
        path + ": sizeof_hdr is " + std::to_string(h.sizeof_hdr) + "; a NIfTI-1 header has 348" +
        (swapped == std::uint32_t{kHeaderSize} ? " (this file is big-endian, which this reader does not read)"
                                               : ""));
  }
  if (std::memcmp(h.magic, "ni1\0", 4) == 0) {
    throw FormatError(path +
                      ": magic is \"ni1\" (a .hdr/.img pair); only single-file \"n+1\" volumes are read");
  }
  if (std::memcmp(h.magic, "n+1\0", 4) != 0) {
    throw FormatError(path + ": magic is not \"n+1\" (not a NIfTI-1 single-file volume)");
  }
}

void check_dims(const Header& h, const std::string& path, const NiftiLimits& limits) {
  const int rank = h.dim[0];
  if (rank < 3 || rank > 7) {
    throw FormatError(path + ": dim[0] is " + std::to_string(rank) +
                      "; a 3D volume has 3 (or up to 7 with sides of 1)");
  }
  for (int d = 4; d <= rank; ++d) {
    if (h.dim[static_cast<std::size_t>(d)] != 1) {
      throw FormatError(path + ": dim[" + std::to_string(d) + "] is " +
                        std::to_string(h.dim[static_cast<std::size_t>(d)]) +
                        "; only 3D volumes are read (extra dimensions must be 1)");
    }
  }
  std::int64_t voxels = 1;
  for (int d = 1; d <= 3; ++d) {
    const std::int64_t side = h.dim[static_cast<std::size_t>(d)];
    if (side < 1 || side > limits.max_side) {
      throw FormatError(path + ": dim[" + std::to_string(d) + "] is " + std::to_string(side) +
                        "; it must be 1.." + std::to_string(limits.max_side));
    }
    voxels *= side;  // at most 4096^3 < 2^63
  }
  if (voxels > limits.max_voxels) {
    throw FormatError(path + ": " + std::to_string(voxels) + " voxels; the limit is " +
                      std::to_string(limits.max_voxels));
  }
  for (int d = 1; d <= 3; ++d) {
    const float p = h.pixdim[static_cast<std::size_t>(d)];
    if (!std::isfinite(p) || p <= 0.0f) {
      throw FormatError(path + ": pixdim[" + std::to_string(d) + "] is " + std::to_string(p) +
                        "; a voxel size must be finite and > 0");
    }
  }
}

void check_type_and_offset(const Header& h, const std::string& path, const NiftiLimits& limits) {
  const int bits = bits_of(h.datatype);
  if (bits == 0) {
    throw FormatError(path + ": datatype is " + std::to_string(h.datatype) +
                      "; this reader takes 2 (uint8), 4 (int16), 512 (uint16) and 16 (float32)");
  }
  if (h.bitpix != bits) {
    throw FormatError(path + ": bitpix is " + std::to_string(h.bitpix) + " but datatype " +
                      std::to_string(h.datatype) + " has " + std::to_string(bits) + " bits");
  }
  const float v = h.vox_offset;
  if (!std::isfinite(v) || v < static_cast<float>(kMinVoxOffset) ||
      v > static_cast<float>(limits.max_vox_offset) || v != std::floor(v)) {
    throw FormatError(path + ": vox_offset is " + std::to_string(v) +
                      "; it must be a whole number of bytes in " + std::to_string(kMinVoxOffset) + ".." +
                      std::to_string(limits.max_vox_offset));
  }
}

// The stored values of `datatype` in `raw`, as float32.
void convert(std::int16_t datatype, const std::vector<unsigned char>& raw, std::vector<float>& out) {
  const std::size_t n = out.size();
  auto each = [&](auto tag) {
    using T = decltype(tag);
    for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<float>(field<T>(raw.data(), i * sizeof(T)));
  };
  switch (datatype) {
    case 2:
      each(std::uint8_t{});
      break;
    case 4:
      each(std::int16_t{});
      break;
    case 512:
      each(std::uint16_t{});
      break;
    default:
      each(float{});
      break;
  }
}

}  // namespace

bool NiftiVolume::same_grid(const NiftiVolume& other) const {
  if (nx != other.nx || ny != other.ny || nz != other.nz) return false;
  for (std::size_t r = 0; r < 3; ++r) {
    for (std::size_t c = 0; c < 4; ++c) {
      if (std::fabs(sform[r][c] - other.sform[r][c]) > 1e-4f) return false;
    }
  }
  return true;
}

NiftiVolume read_nifti(const std::string& path, const NiftiLimits& limits) {
  GzFile file(gzopen(path.c_str(), "rb"));
  if (!file) throw IoError(path + ": cannot open");
  unsigned char raw_header[kHeaderSize];
  if (read_up_to(file.get(), path, raw_header, kHeaderSize) != static_cast<std::size_t>(kHeaderSize)) {
    throw FormatError(path + ": shorter than a NIfTI-1 header (348 bytes)");
  }
  const Header h = parse_header(raw_header);
  check_identity(h, path);
  check_dims(h, path, limits);
  check_type_and_offset(h, path, limits);

  NiftiVolume v;
  v.nx = h.dim[1];
  v.ny = h.dim[2];
  v.nz = h.dim[3];
  v.spacing = {h.pixdim[1], h.pixdim[2], h.pixdim[3]};
  v.datatype = h.datatype;
  v.sform_code = h.sform_code;
  v.sform = h.srow;
  v.scl_slope = h.scl_slope;
  v.scl_inter = h.scl_inter;

  // Skip to vox_offset, then read exactly the voxels the header declares: never more.
  const auto gap = static_cast<std::size_t>(h.vox_offset) - kHeaderSize;
  std::vector<unsigned char> skip(gap);
  if (read_up_to(file.get(), path, skip.data(), gap) != gap) {
    throw FormatError(path + ": the file ends before vox_offset " +
                      std::to_string(static_cast<std::int64_t>(h.vox_offset)));
  }
  const std::size_t bytes = v.size() * static_cast<std::size_t>(h.bitpix / 8);
  std::vector<unsigned char> raw(bytes);
  const std::size_t got = read_up_to(file.get(), path, raw.data(), bytes);
  if (got != bytes) {
    throw FormatError(path + ": the voxel data is truncated: " + std::to_string(got) + " of " +
                      std::to_string(bytes) + " bytes (" + std::to_string(v.nx) + "x" + std::to_string(v.ny) +
                      "x" + std::to_string(v.nz) + ", " + std::to_string(h.bitpix) + " bits)");
  }
  v.voxels.resize(v.size());
  convert(h.datatype, raw, v.voxels);
  return v;
}

}  // namespace medload::examples
