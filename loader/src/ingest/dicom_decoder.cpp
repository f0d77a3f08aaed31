// DICOM decoding with DICOM pixel semantics. DCMTK parses every file and decodes every transfer
// syntax it has a codec for (uncompressed, deflate, JPEG baseline/extended/lossless, JPEG-LS,
// RLE); JPEG 2000, which DCMTK 3.6.7 cannot decode, goes through GDCM. The Modality LUT
// (rescale), MONOCHROME1 inversion and the window are applied here, on the stored values, so
// both decoders give the same semantics. A header attribute that only says how to interpret the
// pixels (BitsStored, HighBit, PixelRepresentation, PhotometricInterpretation, the rescale) and
// is missing, invalid or inconsistent is repaired in memory, with a warning, when one reading is
// safe (repair_pixel_header). GDCM asserts on some malformed input: it only ever runs inside a
// crash-contained worker.

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdict.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dcrledrg.h>
#include <dcmtk/dcmdata/dctk.h>
#include <dcmtk/dcmimage/diregist.h>  // colour (RGB, YBR, palette) support for DicomImage
#include <dcmtk/dcmimgle/dcmimage.h>
#include <dcmtk/dcmjpeg/djdecode.h>
#include <dcmtk/dcmjpls/djdecode.h>
#include <dcmtk/oflog/oflog.h>

#include <gdcmImage.h>
#include <gdcmImageReader.h>
#include <gdcmPixelFormat.h>
#include <gdcmTrace.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>
#include <optional>

#include "decoders.h"
#include "encapsulated_frames.h"
#include "medload/core/text.h"
#include "medload/loader/ingest/source.h"

namespace medload::loader::detail {

namespace {

// The stored values of all frames, as the decoder gave them.
enum class Scalar { kU8, kS8, kU16, kS16, kU32, kS32 };

// A decoder's raw sample i, widened.
std::int64_t raw_sample(const void* data, Scalar scalar, std::size_t i) {
  switch (scalar) {
    case Scalar::kU8:
      return static_cast<const std::uint8_t*>(data)[i];
    case Scalar::kS8:
      return static_cast<const std::int8_t*>(data)[i];
    case Scalar::kU16:
      return static_cast<const std::uint16_t*>(data)[i];
    case Scalar::kS16:
      return static_cast<const std::int16_t*>(data)[i];
    case Scalar::kU32:
      return static_cast<const std::uint32_t*>(data)[i];
    case Scalar::kS32:
      return static_cast<const std::int32_t*>(data)[i];
  }
  return 0;
}

// The stored value as PS3.5 8.1.1 defines it: the low BitsStored bits of the sample, two's
// complement when PixelRepresentation is 1. Every decoder path goes through here, so a JPEG 2000
// codestream coded unsigned (GDCM returns its samples as they are) and DCMTK's samples (already
// masked and sign-extended) give the same values.
class StoredValues {
 public:
  StoredValues(const void* data, Scalar scalar, int bits_stored, bool is_signed)
      : data_(data),
        scalar_(scalar),
        mask_(bits_stored >= 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << bits_stored) - 1),
        sign_bit_(is_signed ? std::uint64_t{1} << (bits_stored - 1) : 0) {}

  std::int64_t operator[](std::size_t i) const {
    const std::uint64_t bits = static_cast<std::uint64_t>(raw_sample(data_, scalar_, i)) & mask_;
    if (bits & sign_bit_) return static_cast<std::int64_t>(bits) - static_cast<std::int64_t>(2 * sign_bit_);
    return static_cast<std::int64_t>(bits);
  }

 private:
  const void* data_;
  Scalar scalar_;
  std::uint64_t mask_;
  std::uint64_t sign_bit_;
};

// What the header says about the pixels.
struct PixelHeader {
  Uint16 rows = 0;
  Uint16 columns = 0;
  Uint16 samples_per_pixel = 1;
  Uint16 bits_allocated = 0;
  Uint16 bits_stored = 0;
  Uint16 pixel_representation = 0;
  long frames = 1;
  std::string photometric;
  bool has_rescale = false;
  double slope = 1.0;
  double intercept = 0.0;
  bool has_modality_lut_sequence = false;
  std::optional<VoiTransform> voi;
};

// The value of `tag` as valid UTF-8. Text that is not UTF-8 after decode_dicom's character set
// conversion (no SpecificCharacterSet, or one DCMTK could not convert) is read as Windows-1252,
// the usual reality of "ISO_IR 6" headers, and `outcome` gets "text_converted:<field>".
std::string text(DcmDataset& ds, const DcmTagKey& tag, FileOutcome* outcome = nullptr,
                 const char* field = "") {
  OFString value;
  if (!ds.findAndGetOFString(tag, value).good()) return {};
  bool converted = false;
  std::string utf8 = to_valid_utf8(std::string_view(value.c_str(), value.length()), &converted);
  if (converted && outcome != nullptr) outcome->warnings.push_back(std::string("text_converted:") + field);
  return utf8;
}

// Without DICOM's padding (trailing spaces, NUL after a UID) and other surrounding whitespace.
std::string trimmed(std::string s) {
  const char* const kSpace = " \t\r\n";
  const auto first = s.find_first_not_of(kSpace);
  if (first == std::string::npos || s[first] == '\0') return {};
  s = s.substr(first, s.find_last_not_of(kSpace) - first + 1);
  while (!s.empty() && (s.back() == '\0' || s.back() == ' ')) s.pop_back();
  return s;
}

// The first item of the VOI LUT Sequence (PS3.3 C.11.2.1.1), when it is well formed. The LUT
// Descriptor's first mapped value is signed when the Modality LUT's output can be negative.
std::optional<VoiTransform> read_voi_lut(DcmDataset& ds, bool signed_output) {
  DcmItem* item = nullptr;
  if (ds.findAndGetSequenceItem(DCM_VOILUTSequence, item, 0).bad() || item == nullptr) return std::nullopt;
  Uint16 descriptor[3] = {0, 0, 0};
  for (unsigned long i = 0; i < 3; ++i) {
    if (item->findAndGetUint16(DCM_LUTDescriptor, descriptor[i], i).bad()) return std::nullopt;
  }
  const std::size_t entries = descriptor[0] == 0 ? 65536 : descriptor[0];
  const int bits = descriptor[2];
  if (bits < 1 || bits > 16) return std::nullopt;
  const Uint16* data = nullptr;
  unsigned long count = 0;
  if (item->findAndGetUint16Array(DCM_LUTData, data, &count).bad() || data == nullptr) return std::nullopt;
  VoiTransform voi;
  voi.function = VoiTransform::Function::kTable;
  voi.first_mapped = signed_output ? static_cast<Sint16>(descriptor[1]) : descriptor[1];
  voi.table_bits = bits;
  if (count >= entries) {
    voi.table.assign(data, data + entries);
  } else if (bits <= 8 && 2 * count >= entries) {
    // 8-bit entries packed two to a 16-bit word, low byte first.
    for (std::size_t i = 0; i < entries; ++i) voi.table.push_back((data[i / 2] >> (8 * (i % 2))) & 0xFF);
  } else {
    return std::nullopt;
  }
  return voi;
}

// The first WindowCenter/WindowWidth with the VOI LUT Function (PS3.3 C.11.2.1.2-3).
std::optional<VoiTransform> read_window(DcmDataset& ds) {
  VoiTransform voi;
  if (ds.findAndGetFloat64(DCM_WindowCenter, voi.center, 0).bad() ||
      ds.findAndGetFloat64(DCM_WindowWidth, voi.width, 0).bad() || !std::isfinite(voi.center) ||
      !std::isfinite(voi.width) || voi.width <= 0) {
    return std::nullopt;
  }
  OFString function;
  ds.findAndGetOFString(DCM_VOILUTFunction, function);
  const std::string name = trimmed(function.c_str());
  if (name == "LINEAR_EXACT") {
    voi.function = VoiTransform::Function::kLinearExact;
  } else if (name == "SIGMOID") {
    voi.function = VoiTransform::Function::kSigmoid;
  } else if (voi.width < 1) {
    return std::nullopt;  // LINEAR (the default) needs a width of at least 1
  }
  return voi;
}

// The header's description of the pixels as it is written; repair_pixel_header makes it usable.
PixelHeader read_pixel_header(DcmDataset& ds) {
  PixelHeader h;
  ds.findAndGetUint16(DCM_Rows, h.rows);
  ds.findAndGetUint16(DCM_Columns, h.columns);
  ds.findAndGetUint16(DCM_SamplesPerPixel, h.samples_per_pixel);
  ds.findAndGetUint16(DCM_BitsAllocated, h.bits_allocated);
  if (ds.findAndGetUint16(DCM_BitsStored, h.bits_stored).bad()) h.bits_stored = h.bits_allocated;
  ds.findAndGetUint16(DCM_PixelRepresentation, h.pixel_representation);
  Sint32 frames = 1;
  if (ds.findAndGetSint32(DCM_NumberOfFrames, frames).good() && frames > 0) h.frames = frames;
  h.photometric = trimmed(text(ds, DCM_PhotometricInterpretation));
  h.has_modality_lut_sequence = ds.tagExists(DCM_ModalityLUTSequence);
  return h;
}

// Whether the header describes pixel data medload may hand to a decoder: sides and bits present,
// SamplesPerPixel and BitsAllocated in the standard's ranges, and at most validate.max_pixels
// pixels in all frames. The decoders size their buffers from these fields before reading any
// pixel (DCMTK: rows x columns x samples x bits allocated per frame), so a header declaring 65,027
// samples a pixel would cost gigabytes for a 256 x 256 image. Rejects the file otherwise.
bool pixel_header_is_decodable(const PixelHeader& h, const ValidationOptions& options, FileOutcome& outcome) {
  if (h.rows == 0 || h.columns == 0 || h.bits_allocated == 0) {
    reject(outcome, Reason::kUnreadable,
           "the header declares " + std::to_string(h.columns) + "x" + std::to_string(h.rows) + " pixels of " +
               std::to_string(h.bits_allocated) + " bits allocated");
    return false;
  }
  if (h.samples_per_pixel != 1 && h.samples_per_pixel != 3 && h.samples_per_pixel != 4) {
    reject(outcome, Reason::kUnreadable,
           "the header declares " + std::to_string(h.samples_per_pixel) +
               " samples per pixel (SamplesPerPixel); a DICOM image has 1, 3 or (retired) 4");
    return false;
  }
  if (h.bits_allocated > 32) {
    reject(outcome, Reason::kUnreadable,
           "the header declares " + std::to_string(h.bits_allocated) +
               " bits allocated per sample (BitsAllocated); DICOM pixel data has at most 32");
    return false;
  }
  const std::int64_t pixels = static_cast<std::int64_t>(h.rows) * h.columns * h.frames;
  if (pixels > options.max_pixels) {
    reject(outcome, Reason::kTooLarge,
           "the header declares " + std::to_string(h.columns) + "x" + std::to_string(h.rows) + " x " +
               std::to_string(h.frames) + " frames = " + std::to_string(pixels) + " pixels; the limit is " +
               std::to_string(options.max_pixels) + " (validate.max_pixels)");
    return false;
  }
  return true;
}

// Bytes the uncompressed pixel data of one whole file needs. YBR_FULL_422 and YBR_PARTIAL_422
// store two samples per pixel (Y Y Cb Cr for each pair), YBR_PARTIAL_420 one and a half
// (PS3.3 C.7.6.3.1.2).
std::uint64_t expected_pixel_bytes(const PixelHeader& h) {
  const std::uint64_t pixels =
      static_cast<std::uint64_t>(h.rows) * h.columns * static_cast<std::uint64_t>(h.frames);
  std::uint64_t samples = pixels * h.samples_per_pixel;
  if (h.samples_per_pixel == 3 && (h.photometric == "YBR_FULL_422" || h.photometric == "YBR_PARTIAL_422")) {
    samples = 2 * pixels;
  } else if (h.samples_per_pixel == 3 && h.photometric == "YBR_PARTIAL_420") {
    samples = pixels * 3 / 2;
  }
  return (samples * h.bits_allocated + 7) / 8;
}

// The lowest and highest stored value a sample can hold (PS3.5 8.1.1): BitsStored bits, two's
// complement when PixelRepresentation is 1.
void stored_range(const PixelHeader& h, int& bits, double& low, double& high) {
  const bool is_signed = h.pixel_representation == 1;
  bits = std::clamp<int>(h.bits_stored > 0 ? h.bits_stored : 16, 1, 32);
  low = is_signed ? -std::ldexp(1.0, bits - 1) : 0.0;
  high = is_signed ? std::ldexp(1.0, bits - 1) - 1 : std::ldexp(1.0, bits) - 1;
}

// Notes on the outcome, once, that the header attribute `keyword` (its DICOM keyword) was
// repaired: the warning "dicom_header_repaired:<keyword>".
void note_repair(FileOutcome& outcome, const char* keyword) {
  const std::string code = std::string("dicom_header_repaired:") + keyword;
  if (std::find(outcome.warnings.begin(), outcome.warnings.end(), code) == outcome.warnings.end())
    outcome.warnings.push_back(code);
}

// BitsStored, HighBit and PixelRepresentation (PS3.3 C.7.6.3, PS3.5 8.1.1): BitsStored missing, 0 or above
// BitsAllocated is read as BitsAllocated (every bit of the sample); a HighBit outside
// BitsStored - 1 .. BitsAllocated - 1 (or missing) as BitsStored - 1, as DCMTK reads a missing
// one and as pydicom always does; a PixelRepresentation missing or other than 0 and 1 as 0
// (unsigned), as DCMTK reads one other than 0 and 1. BitsAllocated, which says where each sample
// is, is never changed, so nothing is read or allocated past what it and the sizes declare.
void repair_bits(DcmDataset& ds, PixelHeader& h, FileOutcome& outcome) {
  Uint16 stored = 0;
  if (ds.findAndGetUint16(DCM_BitsStored, stored).bad() || stored == 0 || stored > h.bits_allocated) {
    h.bits_stored = h.bits_allocated;
    ds.putAndInsertUint16(DCM_BitsStored, h.bits_stored);
    note_repair(outcome, "BitsStored");
  }
  Uint16 high = 0;
  if (ds.findAndGetUint16(DCM_HighBit, high).bad() || high + 1 < h.bits_stored || high >= h.bits_allocated) {
    ds.putAndInsertUint16(DCM_HighBit, static_cast<Uint16>(h.bits_stored - 1));
    note_repair(outcome, "HighBit");
  }
  Uint16 representation = 0;
  if (ds.findAndGetUint16(DCM_PixelRepresentation, representation).bad() || representation > 1) {
    h.pixel_representation = 0;
    ds.putAndInsertUint16(DCM_PixelRepresentation, 0);
    note_repair(outcome, "PixelRepresentation");
  }
}

// The Photometric Interpretation defined terms (PS3.3 C.7.6.3.1.2, retired ones included) and
// the samples per pixel each has.
struct PhotometricTerm {
  const char* name;
  int samples;
};
constexpr PhotometricTerm kPhotometricTerms[] = {{"MONOCHROME1", 1},
                                                 {"MONOCHROME2", 1},
                                                 {"PALETTE COLOR", 1},
                                                 {"RGB", 3},
                                                 {"YBR_FULL", 3},
                                                 {"YBR_FULL_422", 3},
                                                 {"YBR_PARTIAL_422", 3},
                                                 {"YBR_PARTIAL_420", 3},
                                                 {"YBR_ICT", 3},
                                                 {"YBR_RCT", 3},
                                                 {"HSV", 3},
                                                 {"ARGB", 4},
                                                 {"CMYK", 4}};

// Letters, upper-cased, and digits: DCMTK matches a photometric interpretation this way, so to it
// "monochrome1" and "MONOCHROME 1" are MONOCHROME1.
std::string letters_and_digits(const std::string& s) {
  std::string out;
  for (const char c : s) {
    if (std::isalpha(static_cast<unsigned char>(c)))
      out.push_back(static_cast<char>(std::toupper(static_cast<unsigned char>(c))));
    else if (std::isdigit(static_cast<unsigned char>(c)))
      out.push_back(c);
  }
  return out;
}

// The defined term `value` is, as DCMTK reads it; nullptr for none.
const PhotometricTerm* photometric_term(const std::string& value) {
  const std::string key = letters_and_digits(value);
  if (key.empty()) return nullptr;
  for (const PhotometricTerm& term : kPhotometricTerms) {
    if (letters_and_digits(term.name) == key) return &term;
  }
  return nullptr;
}

// Whether the three Palette Color Lookup Tables (PS3.3 C.7.6.3.1.5-6) are there: each with its
// descriptor and its data (plain or segmented).
bool has_palette(DcmDataset& ds) {
  const DcmTagKey tables[3][3] = {
      {DCM_RedPaletteColorLookupTableDescriptor, DCM_RedPaletteColorLookupTableData,
       DCM_SegmentedRedPaletteColorLookupTableData},
      {DCM_GreenPaletteColorLookupTableDescriptor, DCM_GreenPaletteColorLookupTableData,
       DCM_SegmentedGreenPaletteColorLookupTableData},
      {DCM_BluePaletteColorLookupTableDescriptor, DCM_BluePaletteColorLookupTableData,
       DCM_SegmentedBluePaletteColorLookupTableData}};
  for (const auto& table : tables) {
    if (!ds.tagExists(table[0]) || !(ds.tagExists(table[1]) || ds.tagExists(table[2]))) return false;
  }
  return true;
}

// PhotometricInterpretation (PS3.3 C.7.6.3.1.2): written otherwise than its defined term
// ("monochrome1"), it becomes that term, so medload inverts what DCMTK reads as MONOCHROME1.
// Missing or unknown, it is MONOCHROME2 with one sample a pixel and RGB with three (four stays
// unreadable: ARGB and CMYK differ). PALETTE COLOR without its palettes is MONOCHROME2: the
// indices are all there is. A term for another number of samples than SamplesPerPixel is
// corrected only where native pixel data shows which of the two is right: three samples with a
// one-sample term become RGB (the length check holds them to three samples); one sample with a
// colour term becomes MONOCHROME2 when the data is too short for the colour term's samples.
void repair_photometric(DcmDataset& ds, const std::optional<std::uint64_t>& native_length, PixelHeader& h,
                        FileOutcome& outcome) {
  const PhotometricTerm* term = photometric_term(h.photometric);
  std::string repaired = term != nullptr ? term->name : "";
  if (term == nullptr) {
    if (h.samples_per_pixel == 1) repaired = "MONOCHROME2";
    if (h.samples_per_pixel == 3) repaired = "RGB";
  } else if (term->samples == 1 && h.samples_per_pixel == 1 &&
             std::strcmp(term->name, "PALETTE COLOR") == 0) {
    if (!has_palette(ds)) repaired = "MONOCHROME2";
  } else if (term->samples != h.samples_per_pixel && native_length) {
    if (h.samples_per_pixel == 3 && term->samples == 1) {
      repaired = "RGB";
    } else if (h.samples_per_pixel == 1 && term->samples > 1) {
      PixelHeader as_written = h;
      as_written.samples_per_pixel = static_cast<Uint16>(term->samples);
      as_written.photometric = term->name;
      if (*native_length < expected_pixel_bytes(as_written)) repaired = "MONOCHROME2";
    }
  }
  if (repaired.empty() || repaired == h.photometric) return;
  h.photometric = repaired;
  ds.putAndInsertString(DCM_PhotometricInterpretation, repaired.c_str());
  note_repair(outcome, "PhotometricInterpretation");
}

// A decimal string attribute: absent (no value), a finite number, or anything else (NaN, inf,
// text that is no number).
enum class Number { kAbsent, kFinite, kInvalid };

Number read_number(DcmDataset& ds, const DcmTagKey& tag, double& value) {
  OFString written;
  if (ds.findAndGetOFString(tag, written).bad() || trimmed(written.c_str()).empty()) return Number::kAbsent;
  Float64 number = 0;
  if (ds.findAndGetFloat64(tag, number).bad() || !std::isfinite(number)) return Number::kInvalid;
  value = number;
  return Number::kFinite;
}

// The rescale (PS3.3 C.11.1) of a one-sample image. A RescaleSlope that is 0 or not a finite
// number is read as absent (1), a RescaleIntercept that is not a finite number as absent (0); a
// rescale whose output over the stored range is not a finite float32 (slope 1e308, intercept
// -1e308) is ignored as a whole. Returns whether anything was repaired. With a Modality LUT
// Sequence, which DCMTK applies instead of the rescale, a rescale that is not finite is only
// removed from the dataset, so that DCMTK never falls back on it.
bool repair_rescale(DcmDataset& ds, PixelHeader& h, FileOutcome& outcome) {
  double slope = 1.0;
  double intercept = 0.0;
  const Number slope_read = read_number(ds, DCM_RescaleSlope, slope);
  const Number intercept_read = read_number(ds, DCM_RescaleIntercept, intercept);
  if (h.has_modality_lut_sequence) {
    if (slope_read == Number::kInvalid) delete ds.remove(DCM_RescaleSlope);
    if (intercept_read == Number::kInvalid) delete ds.remove(DCM_RescaleIntercept);
  }
  bool repaired_slope = false;
  bool repaired_intercept = false;
  if (slope_read == Number::kFinite && slope != 0) {
    h.slope = slope;
    h.has_rescale = true;
  } else if (slope_read != Number::kAbsent) {
    repaired_slope = true;
  }
  if (intercept_read == Number::kFinite) {
    h.intercept = intercept;
    h.has_rescale = true;
  } else if (intercept_read == Number::kInvalid) {
    repaired_intercept = true;
  }
  int bits = 0;
  double low = 0, high = 0;
  stored_range(h, bits, low, high);
  const auto fits = [&](double v) {
    return std::fabs(v * h.slope + h.intercept) <= std::numeric_limits<float>::max();
  };
  if (!h.has_modality_lut_sequence && !(fits(low) && fits(high))) {
    repaired_slope = repaired_slope || h.slope != 1.0;
    repaired_intercept = repaired_intercept || h.intercept != 0.0;
    h.slope = 1.0;
    h.intercept = 0.0;
    h.has_rescale = false;
  }
  if (h.has_modality_lut_sequence) return false;  // the rescale is not what gives the pixels
  if (repaired_slope) note_repair(outcome, "RescaleSlope");
  if (repaired_intercept) note_repair(outcome, "RescaleIntercept");
  return repaired_slope || repaired_intercept;
}

// Repairs, in `h` and in the dataset in memory (the file is never written), the header attributes
// that only say how to interpret pixel data that is there, where they are missing, invalid or
// contradict each other and one reading is safe (repair_bits, repair_photometric,
// repair_rescale); each repaired attribute gives the warning "dicom_header_repaired:<keyword>".
// The sizes, SamplesPerPixel, BitsAllocated and the pixel data itself are never changed: what
// pixel_header_is_decodable refused stays refused. Then reads the VOI, which is defined on the
// Modality LUT's output: after a repaired rescale its units are not known, and it is left out.
void repair_pixel_header(DcmDataset& ds, const std::optional<std::uint64_t>& native_length, PixelHeader& h,
                         FileOutcome& outcome) {
  repair_bits(ds, h, outcome);
  repair_photometric(ds, native_length, h, outcome);
  const bool rescale_repaired = h.samples_per_pixel == 1 && repair_rescale(ds, h, outcome);
  if (rescale_repaired) return;
  const bool signed_output = h.pixel_representation == 1 || h.intercept < 0 || h.slope < 0;
  h.voi = read_voi_lut(ds, signed_output);
  if (!h.voi) h.voi = read_window(ds);
}

// DCMTK keeps big-endian OW pixel data as 16-bit words in host order, so each 32-bit sample
// comes out with its two halves swapped (1,249,000 read as 250,085,390). Swaps them back, in
// the dataset in memory (the file is never written).
void restore_big_endian_32bit_samples(DcmDataset& ds, E_TransferSyntax xfer, const PixelHeader& h) {
  if (xfer != EXS_BigEndianExplicit || h.bits_allocated != 32) return;
  DcmElement* element = nullptr;
  Uint16* words = nullptr;
  if (ds.findAndGetElement(DCM_PixelData, element).bad() || element == nullptr ||
      element->getVR() != EVR_OW || element->getUint16Array(words).bad() || words == nullptr) {
    return;
  }
  const std::size_t count = element->getLength() / 2;
  for (std::size_t i = 0; i + 1 < count; i += 2) std::swap(words[i], words[i + 1]);
}

// Whether the meta header names another transfer syntax than the one the dataset is encoded in
// (detected by DCMTK, see prepare_dicom).
bool declared_transfer_syntax_differs(DcmFileFormat& file, E_TransferSyntax actual) {
  OFString uid;
  if (file.getMetaInfo()->findAndGetOFString(DCM_TransferSyntaxUID, uid).bad() || uid.empty()) return false;
  const DcmXfer declared(uid.c_str());
  return declared.getXfer() != EXS_Unknown && declared.getXfer() != actual;
}

bool is_jpeg2000(E_TransferSyntax xfer) {
  return xfer == EXS_JPEG2000LosslessOnly || xfer == EXS_JPEG2000 ||
         xfer == EXS_JPEG2000MulticomponentLosslessOnly || xfer == EXS_JPEG2000Multicomponent;
}

// The transfer syntaxes DCMTK's JPEG codec (dcmjpeg) decodes.
bool is_dcmtk_jpeg(E_TransferSyntax xfer) {
  return xfer == EXS_JPEGProcess1 || xfer == EXS_JPEGProcess2_4 || xfer == EXS_JPEGProcess6_8 ||
         xfer == EXS_JPEGProcess10_12 || xfer == EXS_JPEGProcess14 || xfer == EXS_JPEGProcess14SV1;
}

// Calls visit(item, head) for the fragments that begin a frame, as a decoder finds them: the
// first one (item 1, after the offset table) and each later one for which starts_frame(head)
// holds; stops when visit returns false. `head` is the fragment's first `head_bytes` bytes (fewer
// when it is shorter), read without loading the whole fragment: DCMTK leaves values over 4 KB in
// the file until they are asked for, and a visitor that needs only a header (or GDCM, which reads
// the file again itself) should not cost a copy of the compressed image.
template <class StartsFrame, class Visit>
void for_each_frame_fragment(DcmDataset& ds, E_TransferSyntax xfer, std::size_t head_bytes,
                             StartsFrame starts_frame, Visit visit) {
  DcmElement* element = nullptr;
  if (ds.findAndGetElement(DCM_PixelData, element).bad() || element == nullptr ||
      element->ident() != EVR_PixelData) {
    return;
  }
  DcmPixelSequence* sequence = nullptr;
  if (static_cast<DcmPixelData*>(element)->getEncapsulatedRepresentation(xfer, nullptr, sequence).bad() ||
      sequence == nullptr) {
    return;
  }
  std::vector<Uint8> head;
  for (unsigned long i = 1; i < sequence->card(); ++i) {
    DcmPixelItem* item = nullptr;
    if (sequence->getItem(item, i).bad() || item->getLength() == 0) continue;
    head.resize(std::min<std::size_t>(item->getLength(), head_bytes));
    if (item->getPartialValue(head.data(), 0, static_cast<Uint32>(head.size())).bad()) continue;
    if ((i == 1 || starts_frame(head)) && !visit(*item, head)) return;
  }
}

// Rejects the file when a frame's own header declares another size than the DICOM header.
bool frame_size_agrees(const std::optional<FrameSize>& frame, const char* codec, const PixelHeader& h,
                       FileOutcome& outcome) {
  if (!frame || (frame->width == h.columns && frame->height == h.rows)) return true;
  reject(outcome, Reason::kUnreadable,
         std::string("the ") + codec + " data declares a " + std::to_string(frame->width) + "x" +
             std::to_string(frame->height) + " frame; the header declares " + std::to_string(h.columns) +
             "x" + std::to_string(h.rows));
  return false;
}

// Removes, in memory, the TEM markers on which DCMTK's JPEG codec would spin forever from a
// fragment it walks (warning `jpeg_tem_marker_removed` once; the pixels are unchanged by it).
bool remove_tem_markers(DcmPixelItem& item, Uint8*& data, std::size_t& length, FileOutcome& outcome) {
  if (dcmtk_walk_stall(data, length) == length) return true;
  std::vector<std::uint8_t> fragment(data, data + length);
  remove_stalling_tem_markers(fragment);
  if (item.putUint8Array(fragment.data(), static_cast<unsigned long>(fragment.size())).bad() ||
      item.getUint8Array(data).bad() || data == nullptr) {
    reject(outcome, Reason::kUnreadable, "DCMTK could not take the JPEG data without its TEM markers");
    return false;
  }
  length = item.getLength();
  if (std::find(outcome.warnings.begin(), outcome.warnings.end(), "jpeg_tem_marker_removed") ==
      outcome.warnings.end()) {
    outcome.warnings.emplace_back("jpeg_tem_marker_removed");
  }
  return true;
}

// Makes compressed frames safe to hand to their decoder (encapsulated_frames.h): JPEG frames for
// DCMTK lose the TEM markers its walk would spin on, and every JPEG or JPEG 2000 frame must
// declare the header's size. Returns false, the file rejected, otherwise. Other transfer
// syntaxes pass.
bool guard_encapsulated_frames(DcmDataset& ds, E_TransferSyntax xfer, const PixelHeader& h,
                               FileOutcome& outcome) {
  bool usable = true;
  if (is_dcmtk_jpeg(xfer)) {
    // SOI (FF D8) starts a frame; the TEM walk and DCMTK's decode need the whole fragment.
    const auto starts_with_soi = [](const std::vector<Uint8>& head) {
      return head.size() >= 2 && head[0] == 0xFF && head[1] == 0xD8;
    };
    for_each_frame_fragment(ds, xfer, 2, starts_with_soi, [&](DcmPixelItem& item, const std::vector<Uint8>&) {
      Uint8* data = nullptr;
      if (item.getUint8Array(data).bad() || data == nullptr) return true;  // DCMTK will say what is wrong
      std::size_t length = item.getLength();
      return usable = remove_tem_markers(item, data, length, outcome) &&
                      frame_size_agrees(dcmtk_frame_size(data, length), "JPEG", h, outcome);
    });
  } else if (is_jpeg2000(xfer)) {
    // A codestream (SOC, FF 4F) or a JP2 wrapper ('jP' box) starts a frame. SIZ follows SOC at
    // once, so the first 4 KiB hold it unless a wrapper puts more before the codestream: only
    // then is the whole fragment read.
    const auto starts_codestream = [](const std::vector<Uint8>& head) {
      return (head.size() >= 2 && head[0] == 0xFF && head[1] == 0x4F) ||
             (head.size() >= 8 && head[4] == 'j' && head[5] == 'P');
    };
    for_each_frame_fragment(
        ds, xfer, 4096, starts_codestream, [&](DcmPixelItem& item, const std::vector<Uint8>& head) {
          std::optional<FrameSize> frame = j2k_frame_size(head.data(), head.size());
          Uint8* data = nullptr;
          if (!frame && item.getLength() > head.size() && item.getUint8Array(data).good() && data != nullptr)
            frame = j2k_frame_size(data, item.getLength());
          return usable = frame_size_agrees(frame, "JPEG 2000", h, outcome);
        });
  }
  return usable;
}

// Turns a decoder's gray samples into frames: stored values (BitsStored, signedness), the
// MONOCHROME1 inversion over the BitsStored range, the Modality LUT (rescale), and the VOI
// transformation carried along.
void monochrome_frames(const PixelHeader& h, const void* data, Scalar scalar, bool rescale,
                       std::vector<DecodedImage>& frames) {
  const bool is_signed = h.pixel_representation == 1;
  int bits = 0;
  double low = 0, high = 0;
  stored_range(h, bits, low, high);
  const StoredValues stored(data, scalar, bits, is_signed);
  const bool invert = h.photometric == "MONOCHROME1";
  const double slope = rescale ? h.slope : 1.0;
  const double intercept = rescale ? h.intercept : 0.0;
  const bool identity = slope == 1.0 && intercept == 0.0;
  PixelType type = PixelType::kFloat32;
  if (identity && bits <= 16) {
    type = is_signed ? PixelType::kInt16 : (bits <= 8 ? PixelType::kUInt8 : PixelType::kUInt16);
  }
  const std::size_t plane = static_cast<std::size_t>(h.rows) * h.columns;
  for (long f = 0; f < h.frames; ++f) {
    DecodedImage image;
    image.height = h.rows;
    image.width = h.columns;
    image.channels = 1;
    image.type = type;
    image.bits_stored = bits;
    image.frame_index = static_cast<int>(f);
    image.frame_count = static_cast<int>(h.frames);
    image.format = "dicom";
    image.was_monochrome1 = invert;
    // The Modality LUT's output v and the inverted pixel v' add up to M = slope (low + high) + 2 intercept.
    if (invert) image.monochrome1_mirror = slope * (low + high) + 2 * intercept;
    image.voi = h.voi;
    image.pixels.resize(plane * static_cast<std::size_t>(bytes_per_element(type)));
    const std::size_t base = static_cast<std::size_t>(f) * plane;
    for (std::size_t i = 0; i < plane; ++i) {
      double s = static_cast<double>(stored[base + i]);
      if (invert) s = low + high - s;
      switch (type) {
        case PixelType::kUInt8:
          image.pixels[i] = static_cast<std::uint8_t>(s);
          break;
        case PixelType::kUInt16: {
          const auto v = static_cast<std::uint16_t>(s);
          std::memcpy(&image.pixels[2 * i], &v, 2);
          break;
        }
        case PixelType::kInt16: {
          const auto v = static_cast<std::int16_t>(s);
          std::memcpy(&image.pixels[2 * i], &v, 2);
          break;
        }
        case PixelType::kFloat32: {
          const auto v = static_cast<float>(s * slope + intercept);
          std::memcpy(&image.pixels[4 * i], &v, 4);
          break;
        }
      }
    }
    frames.push_back(std::move(image));
  }
}

// YBR_FULL to RGB for 8-bit samples: the inverse of PS3.3 C.7.6.3.1.2's equations (BT.601, full
// range, chroma zero at 128), rounded to nearest as libjpeg does for JPEG files. DCMTK's own
// conversion uses 127.5 as the chroma zero and truncates, up to 2 grey levels off.
std::array<std::uint8_t, 3> ybr_full_to_rgb(int y, int cb, int cr) {
  const double b_ = cb - 128.0;
  const double r_ = cr - 128.0;
  const auto channel = [](double v) {
    return static_cast<std::uint8_t>(std::clamp(std::floor(v + 0.5), 0.0, 255.0));
  };
  return {channel(y + 1.402 * r_), channel(y - 0.114 * 1.772 / 0.587 * b_ - 0.299 * 1.402 / 0.587 * r_),
          channel(y + 1.772 * b_)};
}

// One 8-bit colour frame from interleaved RGB samples, or YBR_FULL samples when `ybr_full`.
void colour_frame(const PixelHeader& h, const std::uint8_t* rgb, long frame, bool ybr_full,
                  std::vector<DecodedImage>& frames) {
  DecodedImage image;
  image.height = h.rows;
  image.width = h.columns;
  image.channels = 3;
  image.type = PixelType::kUInt8;
  image.bits_stored = 8;
  image.frame_index = static_cast<int>(frame);
  image.frame_count = static_cast<int>(h.frames);
  image.format = "dicom";
  const std::size_t plane = static_cast<std::size_t>(h.rows) * h.columns;
  image.pixels.resize(plane * 3);
  for (std::size_t i = 0; i < plane; ++i) {  // RGB -> B,G,R as OpenCV and the rest of medload use
    const std::uint8_t* p = rgb + 3 * i;
    const std::array<std::uint8_t, 3> v =
        ybr_full ? ybr_full_to_rgb(p[0], p[1], p[2]) : std::array<std::uint8_t, 3>{p[0], p[1], p[2]};
    image.pixels[3 * i] = v[2];
    image.pixels[3 * i + 1] = v[1];
    image.pixels[3 * i + 2] = v[0];
  }
  frames.push_back(std::move(image));
}

bool decode_with_dcmtk(DcmFileFormat& file, E_TransferSyntax xfer, const PixelHeader& h, FileOutcome& outcome,
                       std::vector<DecodedImage>& frames) {
  // The Modality LUT is applied below (exactly, in float); only a LUT sequence is left to DCMTK.
  // YBR_FULL(_422) samples are kept as they are and converted below, exactly.
  const unsigned long flags = (h.bits_stored <= 8 ? CIF_KeepYCbCrColorModel : 0) |
                              (h.has_modality_lut_sequence ? 0 : CIF_IgnoreModalityTransformation);
  DicomImage image(&file, xfer, flags, 0, 0);
  if (image.getStatus() != EIS_Normal) {
    reject(outcome, Reason::kUnreadable,
           std::string("DCMTK could not decode the pixel data: ") + DicomImage::getString(image.getStatus()));
    return false;
  }
  const long frame_count = static_cast<long>(image.getFrameCount());
  if (frame_count < h.frames) {
    reject(outcome, Reason::kTruncated,
           "the pixel data holds " + std::to_string(frame_count) + " frames, the header declares " +
               std::to_string(h.frames));
    return false;
  }
  if (image.isMonochrome()) {
    const DiPixel* inter = image.getInterData();
    if (inter == nullptr || inter->getData() == nullptr) {
      reject(outcome, Reason::kUnreadable, "DCMTK decoded no pixel values");
      return false;
    }
    Scalar scalar;
    switch (inter->getRepresentation()) {
      case EPR_Uint8:
        scalar = Scalar::kU8;
        break;
      case EPR_Sint8:
        scalar = Scalar::kS8;
        break;
      case EPR_Uint16:
        scalar = Scalar::kU16;
        break;
      case EPR_Sint16:
        scalar = Scalar::kS16;
        break;
      case EPR_Uint32:
        scalar = Scalar::kU32;
        break;
      default:
        scalar = Scalar::kS32;
        break;
    }
    const std::size_t needed =
        static_cast<std::size_t>(h.rows) * h.columns * static_cast<std::size_t>(h.frames);
    if (inter->getCount() < needed) {
      reject(outcome, Reason::kTruncated,
             "the pixel data decodes to " + std::to_string(inter->getCount()) +
                 " values, the header declares " + std::to_string(needed));
      return false;
    }
    monochrome_frames(h, inter->getData(), scalar, !h.has_modality_lut_sequence, frames);
    return true;
  }
  // A JPEG codec converts YBR to RGB itself (and says so in the photometric interpretation);
  // what is still YBR_FULL here is uncompressed, RLE or deflated data.
  const EP_Interpretation colour_model = image.getPhotometricInterpretation();
  const bool ybr_full = colour_model == EPI_YBR_Full || colour_model == EPI_YBR_Full_422;
  for (long f = 0; f < h.frames; ++f) {
    const void* rgb = image.getOutputData(8, static_cast<unsigned long>(f), 0);
    if (rgb == nullptr) {
      reject(outcome, Reason::kUnreadable, "DCMTK could not render colour frame " + std::to_string(f));
      return false;
    }
    colour_frame(h, static_cast<const std::uint8_t*>(rgb), f, ybr_full, frames);
  }
  return true;
}

bool decode_with_gdcm(const std::string& path, const PixelHeader& h, FileOutcome& outcome,
                      std::vector<DecodedImage>& frames) {
  gdcm::ImageReader reader;
  reader.SetFileName(path.c_str());
  if (!reader.Read()) {
    reject(outcome, Reason::kUnreadable, "GDCM could not read the JPEG 2000 pixel data");
    return false;
  }
  const gdcm::Image& image = reader.GetImage();
  std::vector<char> buffer(image.GetBufferLength());
  if (buffer.empty() || !image.GetBuffer(buffer.data())) {
    reject(outcome, Reason::kUnreadable, "GDCM could not decode the JPEG 2000 pixel data");
    return false;
  }
  const gdcm::PixelFormat format = image.GetPixelFormat();
  const std::size_t plane = static_cast<std::size_t>(h.rows) * h.columns;
  if (format.GetSamplesPerPixel() == 3) {
    if (buffer.size() < plane * 3 * static_cast<std::size_t>(h.frames) || format.GetBitsAllocated() != 8) {
      reject(outcome, Reason::kUnsupported, "JPEG 2000 colour other than 8-bit RGB is not supported");
      return false;
    }
    for (long f = 0; f < h.frames; ++f) {
      colour_frame(h, reinterpret_cast<const std::uint8_t*>(buffer.data()) + plane * 3 * f, f, false, frames);
    }
    return true;
  }
  Scalar scalar;
  std::size_t bytes = 2;
  switch (format.GetScalarType()) {
    case gdcm::PixelFormat::UINT8:
      scalar = Scalar::kU8;
      bytes = 1;
      break;
    case gdcm::PixelFormat::INT8:
      scalar = Scalar::kS8;
      bytes = 1;
      break;
    case gdcm::PixelFormat::UINT16:
      scalar = Scalar::kU16;
      break;
    case gdcm::PixelFormat::INT16:
      scalar = Scalar::kS16;
      break;
    case gdcm::PixelFormat::UINT32:
      scalar = Scalar::kU32;
      bytes = 4;
      break;
    case gdcm::PixelFormat::INT32:
      scalar = Scalar::kS32;
      bytes = 4;
      break;
    default:
      reject(outcome, Reason::kUnsupported,
             "JPEG 2000 pixel format " + std::string(format.GetScalarTypeAsString()));
      return false;
  }
  const std::size_t needed = plane * static_cast<std::size_t>(h.frames) * bytes;
  if (buffer.size() < needed) {
    reject(outcome, Reason::kTruncated,
           "the JPEG 2000 pixel data decodes to " + std::to_string(buffer.size()) +
               " bytes, the header declares " + std::to_string(needed));
    return false;
  }
  monochrome_frames(h, buffer.data(), scalar, true, frames);
  return true;
}

}  // namespace

void prepare_dicom() {
  static std::once_flag once;
  std::call_once(once, [] {
    // DCMTK logs warnings about malformed files to stderr; the report says what matters.
    OFLog::configure(OFLogger::FATAL_LOG_LEVEL);
    gdcm::Trace::SetWarning(false);
    gdcm::Trace::SetError(false);
    gdcm::Trace::SetDebug(false);
    DJDecoderRegistration::registerCodecs();
    DJLSDecoderRegistration::registerCodecs();
    DcmRLEDecoderRegistration::registerCodecs();
    // Real files say "explicit VR" in their meta header and hold an implicit VR dataset (or the
    // reverse); DCMTK then detects the dataset's own encoding, as pydicom does.
    dcmAutoDetectDatasetXfer.set(OFTrue);
    // The same for encapsulated syntaxes, which must be explicit VR: files whose dataset is
    // implicit VR (highdicom 0.1.0 wrote such JPEG files) are read as such instead of failing.
    dcmAcceptUnexpectedImplicitEncoding.set(OFTrue);
    (void)dcmDataDict.isDictionaryLoaded();
  });
}

void decode_dicom(const std::string& path, const std::uint8_t* /*data*/, std::size_t size,
                  const ValidationOptions& options, FileOutcome& outcome, std::vector<DecodedImage>& frames,
                  SampleInfo& info) {
  prepare_dicom();
  outcome.format = "dicom";
  DcmFileFormat file;
  const OFCondition loaded =
      file.loadFile(path.c_str(), EXS_Unknown, EGL_noChange, DCM_MaxReadLength, ERM_autoDetect);
  if (loaded.bad()) {
    const std::string why = loaded.text();
    const bool cut = why.find("premature") != std::string::npos ||
                     why.find("end of stream") != std::string::npos ||
                     why.find("Premature") != std::string::npos;
    reject(outcome, cut ? Reason::kTruncated : Reason::kUnreadable,
           (cut ? "the DICOM data ends early (" : "DCMTK cannot parse the DICOM file (") + why + ", " +
               std::to_string(size) + " bytes)");
    return;
  }
  DcmDataset& ds = *file.getDataset();
  // Text in the character set SpecificCharacterSet (0008,0005) names becomes UTF-8; without one,
  // text() reads what is not UTF-8 as Windows-1252.
  if (!trimmed(text(ds, DCM_SpecificCharacterSet)).empty() && ds.convertToUTF8().bad())
    outcome.warnings.emplace_back("dicom_charset_not_converted");
  info.patient_id = normalize_patient_id(text(ds, DCM_PatientID, &outcome, "patient_id"));
  info.modality = trimmed(text(ds, DCM_Modality, &outcome, "modality"));
  info.series_uid = trimmed(text(ds, DCM_SeriesInstanceUID, &outcome, "series_uid"));
  info.view = trimmed(text(ds, DCM_ViewPosition, &outcome, "view"));
  info.site = trimmed(text(ds, DCM_InstitutionName, &outcome, "site"));

  if (!ds.tagExists(DCM_PixelData)) {
    std::string sop = trimmed(text(ds, DCM_SOPClassUID));
    if (sop.empty()) {
      OFString media;
      if (file.getMetaInfo()->findAndGetOFString(DCM_MediaStorageSOPClassUID, media).good())
        sop = media.c_str();
    }
    const char* name = sop.empty() ? nullptr : dcmFindNameOfUID(sop.c_str());
    reject(outcome, Reason::kUnsupported,
           "a DICOM file without pixel data (" +
               (sop.empty() ? std::string("no SOP class") : (name ? std::string(name) : "SOP class " + sop)) +
               (info.modality.empty() ? std::string() : ", modality " + info.modality) + ")");
    return;
  }
  PixelHeader h = read_pixel_header(ds);
  outcome.width = h.columns;
  outcome.height = h.rows;
  outcome.bits_stored = h.bits_stored;
  if (!pixel_header_is_decodable(h, options, outcome)) return;
  const E_TransferSyntax xfer = ds.getOriginalXfer();
  if (declared_transfer_syntax_differs(file, xfer)) outcome.warnings.emplace_back("transfer_syntax_mismatch");
  // The length of native (uncompressed) pixel data, which must hold what the header declares.
  std::optional<std::uint64_t> native_length;
  if (!DcmXfer(xfer).isEncapsulated()) {
    DcmElement* element = nullptr;
    if (ds.findAndGetElement(DCM_PixelData, element).good() && element != nullptr)
      native_length = element->getLength();
  }
  repair_pixel_header(ds, native_length, h, outcome);
  outcome.bits_stored = h.bits_stored;
  // GDCM pads short pixel data silently and DCMTK may too: compare the length ourselves.
  if (native_length && *native_length < expected_pixel_bytes(h)) {
    reject(outcome, Reason::kTruncated,
           "pixel data is " + std::to_string(*native_length) + " bytes, the header declares " +
               std::to_string(expected_pixel_bytes(h)) + " (" + std::to_string(h.columns) + "x" +
               std::to_string(h.rows) + " x " + std::to_string(h.frames) + " frames, " + h.photometric +
               " x " + std::to_string(h.bits_allocated) + " bits)");
    return;
  }
  restore_big_endian_32bit_samples(ds, xfer, h);
  if (!guard_encapsulated_frames(ds, xfer, h, outcome)) return;
  const bool ok = is_jpeg2000(xfer) ? decode_with_gdcm(path, h, outcome, frames)
                                    : decode_with_dcmtk(file, xfer, h, outcome, frames);
  if (!ok) {
    frames.clear();
    return;
  }
  for (auto& frame : frames) frame.info = info;
  outcome.ok = true;
  outcome.frames = static_cast<int>(frames.size());
}

}  // namespace medload::loader::detail
