#pragma once
/// A minimal, hardened NIfTI-1 reader for the segmentation example's real data (Debian's
/// mricron-data templates and atlases): single-file `.nii` or `.nii.gz`, little-endian, a 3D
/// volume of uint8, int16, uint16 or float32. Everything it reads is checked before it is used
/// (header size, magic, dimensions and their product, data type against bitpix, vox_offset, the
/// data's length), and it never decompresses more than the header says the volume holds, so a
/// crafted file gets a FormatError naming the file and the field, not an allocation it chose.

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace medload::examples {

/// Limits on what read_nifti accepts.
struct NiftiLimits {
  /// Largest side along any axis, in voxels.
  std::int64_t max_side = 4096;
  /// Largest number of voxels (the volume is held as float32: 4 bytes each).
  std::int64_t max_voxels = std::int64_t{1} << 26;
  /// Largest vox_offset (the header plus its extensions), in bytes.
  std::int64_t max_vox_offset = std::int64_t{1} << 20;
};

/// A 3D volume as stored: voxel (i, j, k) at index i + nx * (j + ny * k) of `voxels` (i fastest).
struct NiftiVolume {
  /// Voxels along the first, second and third axis (each >= 1).
  std::int64_t nx = 0, ny = 0, nz = 0;
  /// Voxel size along the three axes (pixdim[1..3], in the file's units, usually mm), each > 0.
  std::array<float, 3> spacing{1.0f, 1.0f, 1.0f};
  /// NIfTI datatype code of the stored values: 2 (uint8), 4 (int16), 512 (uint16), 16 (float32).
  std::int16_t datatype = 0;
  /// sform_code and the sform rows (srow_x, srow_y, srow_z: voxel (i, j, k, 1) -> world mm).
  std::int16_t sform_code = 0;
  std::array<std::array<float, 4>, 3> sform{};
  /// scl_slope and scl_inter as stored: NOT applied to `voxels` (label maps must keep their ids).
  float scl_slope = 0.0f, scl_inter = 0.0f;
  /// The stored values converted to float32 (exact for the integer types), [nz, ny, nx].
  std::vector<float> voxels;

  /// nx * ny * nz.
  std::size_t size() const { return static_cast<std::size_t>(nx * ny * nz); }
  /// The voxel (i, j, k); no bounds check.
  float at(std::int64_t i, std::int64_t j, std::int64_t k) const {
    return voxels[static_cast<std::size_t>(i + nx * (j + ny * k))];
  }
  /// True when `other` has the same dimensions and the same sform (within 1e-4 mm): the two
  /// volumes' voxels are the same places.
  bool same_grid(const NiftiVolume& other) const;
};

/// Reads `path` (gzip-compressed or not; zlib reads both). Throws IoError when the file cannot be
/// opened or read, FormatError naming the file and the field when it is not a volume this reader
/// accepts: sizeof_hdr is not 348 (a big-endian file says so), the magic is not "n+1" (a
/// two-file .hdr/.img pair is refused), dim[0] is not 3 (or 4..7 with the extra dims 1), a side
/// is < 1 or above the limit, too many voxels, a datatype other than the four above or a bitpix
/// that disagrees with it, pixdim[1..3] not finite and > 0, vox_offset below 352, fractional or
/// above the limit, or the data shorter than the header says.
NiftiVolume read_nifti(const std::string& path, const NiftiLimits& limits = {});

}  // namespace medload::examples
