#pragma once
// What medload reads from the compressed frames of a DICOM file before a decoder sees them.
//
// DCMTK's JPEG codec (DJCodecDecoder; 3.6.7 in Debian 12, and DCMTK's current source) reads the
// sample precision from a frame's first fragment by walking it from marker to marker
// (scanJpegDataForBitDepth), skipping each segment by its length until a start-of-frame marker.
// That walk never moves past a TEM marker (FF 01): on a fragment where it lands on one, the
// decoding process spins forever. TEM is a parameterless marker that JPEG allows between segments
// and that every JPEG decoder, DCMTK's own included, skips; so medload removes exactly the TEM
// markers that walk would land on, in memory (never in the source file), before DCMTK decodes,
// and the pixels are those the file holds.
//
// Decoders size their buffers from the frame's own header: the JPEG start of frame (a progressive
// frame keeps all coefficients of the image) or the JPEG 2000 SIZ segment (OpenJPEG, through
// GDCM, allocates the whole image). A JPEG declaring 60000 x 60000 inside a 64 x 48 DICOM cost
// 7 GB before DCMTK failed; a JPEG 2000 codestream declaring it inside a 256 x 1024 one cost 14 GB
// and 44 s, and came out `ok`. So medload reads those sizes first and refuses a frame whose size
// is not the DICOM header's.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace medload::loader::detail {

/// The size a compressed frame's own header declares.
struct FrameSize {
  std::int64_t width = 0;   ///< columns (JPEG X; JPEG 2000 Xsiz - XOsiz)
  std::int64_t height = 0;  ///< rows (JPEG Y, 0 when a DNL segment gives it later; JPEG 2000 Ysiz - YOsiz)
  int components = 0;       ///< JPEG Nf; JPEG 2000 Csiz
};

/// The start-of-frame segment DCMTK's walk over `data` ends at, when it ends at one whose first
/// six bytes after the length are there.
std::optional<FrameSize> dcmtk_frame_size(const std::uint8_t* data, std::size_t size);

/// The image size of the first JPEG 2000 codestream in `data` (SOC FF 4F then SIZ FF 51, at the
/// start, or inside a JP2 wrapper some writers add), when its SIZ segment is there whole enough
/// to say. An offset beyond the reference grid gives a side of 0.
std::optional<FrameSize> j2k_frame_size(const std::uint8_t* data, std::size_t size);

/// The offset of the TEM marker DCMTK's bit-depth walk over `data` (`size` bytes) would land on
/// and never leave, or `size` when the walk ends: at a start-of-frame marker, at bytes that are
/// not a marker, or at the end of the data.
std::size_t dcmtk_walk_stall(const std::uint8_t* data, std::size_t size);

/// Removes from `fragment` every TEM marker that walk would land on (after removing one, the walk
/// goes on from the same place); returns how many were removed. Anything else is left as it is.
int remove_stalling_tem_markers(std::vector<std::uint8_t>& fragment);

}  // namespace medload::loader::detail
