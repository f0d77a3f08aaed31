#pragma once
// A guard in front of DCMTK's JPEG decoder.
//
// Before DCMTK's JPEG codec (DJCodecDecoder; 3.6.7 in Debian 12, and DCMTK's current source)
// decodes a JPEG-compressed DICOM, it reads the sample precision from the frame's first fragment
// by walking it from marker to marker (scanJpegDataForBitDepth), skipping each segment by its
// length until a start-of-frame marker. That walk never moves past a TEM marker (FF 01): on a
// fragment where it lands on one, the decoding process spins forever. TEM is a parameterless
// marker that JPEG allows between segments and that every JPEG decoder, DCMTK's own included,
// skips; so medload removes exactly the TEM markers that walk would land on, in memory (never in
// the source file), before DCMTK decodes, and the pixels are those the file holds.
//
// The start of frame that walk finds is also where DCMTK's decoder learns the frame's size, and
// it sizes its buffers from it (a progressive frame keeps all coefficients of the image): a JPEG
// declaring 60000 x 60000 inside a 64 x 48 DICOM cost 7 GB and 26 s before DCMTK gave up. So
// medload reads that size first and refuses a frame whose size is not the DICOM header's.

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace medload::loader::detail {

/// The size a JPEG's start-of-frame segment declares.
struct JpegFrameSize {
  int width = 0;       ///< samples per line (X)
  int height = 0;      ///< lines (Y; 0 when a DNL segment gives it later)
  int components = 0;  ///< Nf
  int precision = 0;   ///< P, bits per sample
};

/// The start-of-frame segment DCMTK's walk over `data` ends at, when it ends at one whose first
/// six bytes after the length are there.
std::optional<JpegFrameSize> dcmtk_frame_size(const std::uint8_t* data, std::size_t size);

/// The offset of the TEM marker DCMTK's bit-depth walk over `data` (`size` bytes) would land on
/// and never leave, or `size` when the walk ends: at a start-of-frame marker, at bytes that are
/// not a marker, or at the end of the data.
std::size_t dcmtk_walk_stall(const std::uint8_t* data, std::size_t size);

/// Removes from `fragment` every TEM marker that walk would land on (after removing one, the walk
/// goes on from the same place); returns how many were removed. Anything else is left as it is.
int remove_stalling_tem_markers(std::vector<std::uint8_t>& fragment);

}  // namespace medload::loader::detail
