#pragma once
// The decoders behind decode_file. Each fills `outcome` (format, frames, size, or a rejection)
// and appends frames; none throws for bad input.

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "format.h"
#include "medload/loader/ingest/decoded_image.h"
#include "medload/loader/ingest/scan_report.h"
#include "medload/loader/ingest/validation_options.h"

namespace medload::loader::detail {

/// Marks `outcome` rejected for `reason` with a detail for a person.
inline void reject(FileOutcome& outcome, Reason reason, std::string detail) {
  outcome.ok = false;
  outcome.reason = reason;
  outcome.detail = std::move(detail);
}

/// PNG, JPEG, TIFF, BMP through OpenCV's imdecode (a JPEG or PNG without its end marker is judged
/// by what libjpeg-turbo or zlib consumed, see end_check.h), after the header's size is checked against
/// the limits. 8/16-bit, gray or colour (alpha dropped, B,G,R order).
void decode_raster(Format format, const std::uint8_t* data, std::size_t size,
                   const ValidationOptions& options, FileOutcome& outcome, std::vector<DecodedImage>& frames);

/// DICOM through DCMTK (JPEG 2000 through GDCM), with DICOM pixel semantics: Modality LUT,
/// MONOCHROME1 inversion, signed pixels, BitsStored; header fields into `info`.
void decode_dicom(const std::string& path, const std::uint8_t* data, std::size_t size,
                  const ValidationOptions& options, FileOutcome& outcome, std::vector<DecodedImage>& frames,
                  SampleInfo& info);

/// The decoder for `format` (not kUnknown): decode_dicom, which fills `info` from the header, or
/// decode_raster. decode_file's dispatch, and a mask's (targets_check.cpp).
inline void decode_format(Format format, const std::string& path, const std::uint8_t* data, std::size_t size,
                          const ValidationOptions& options, FileOutcome& outcome,
                          std::vector<DecodedImage>& frames, SampleInfo& info) {
  if (format == Format::kDicom) {
    decode_dicom(path, data, size, options, outcome, frames, info);
  } else {
    decode_raster(format, data, size, options, outcome, frames);
  }
}

/// Registers DCMTK's codecs and loads its data dictionary; idempotent. Called before worker
/// processes are forked so that each starts ready.
void prepare_dicom();

}  // namespace medload::loader::detail
