// DICOM decoding with DICOM pixel semantics. DCMTK parses every file and decodes every transfer
// syntax it has a codec for (uncompressed, deflate, JPEG baseline/extended/lossless, JPEG-LS,
// RLE); JPEG 2000, which DCMTK 3.6.7 cannot decode, goes through GDCM. The Modality LUT
// (rescale), MONOCHROME1 inversion and the window are applied here, on the stored values, so
// both decoders give the same semantics. GDCM asserts on some malformed input: it only ever
// runs inside a crash-contained worker.

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcdict.h>
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

#include <cmath>
#include <cstring>
#include <mutex>

#include "decoders.h"

namespace medload::loader::detail {

namespace {

// The stored values of all frames, as the decoder gave them.
enum class Scalar { kU8, kS8, kU16, kS16, kU32, kS32 };

double stored_value(const void* data, Scalar scalar, std::size_t i) {
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
  std::optional<double> window_center;
  std::optional<double> window_width;
};

std::string text(DcmDataset& ds, const DcmTagKey& tag) {
  OFString value;
  if (ds.findAndGetOFString(tag, value).good()) return std::string(value.c_str());
  return {};
}

std::string trimmed(std::string s) {
  const auto first = s.find_first_not_of(" \t\r\n");
  if (first == std::string::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t\r\n") - first + 1);
}

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
  Float64 value = 0;
  if (ds.findAndGetFloat64(DCM_RescaleSlope, value).good() && value != 0) {
    h.slope = value;
    h.has_rescale = true;
  }
  if (ds.findAndGetFloat64(DCM_RescaleIntercept, value).good()) {
    h.intercept = value;
    h.has_rescale = true;
  }
  h.has_modality_lut_sequence = ds.tagExists(DCM_ModalityLUTSequence);
  if (ds.findAndGetFloat64(DCM_WindowCenter, value, 0).good()) h.window_center = value;
  if (ds.findAndGetFloat64(DCM_WindowWidth, value, 0).good() && value > 0) h.window_width = value;
  return h;
}

bool is_jpeg2000(E_TransferSyntax xfer) {
  return xfer == EXS_JPEG2000LosslessOnly || xfer == EXS_JPEG2000 ||
         xfer == EXS_JPEG2000MulticomponentLosslessOnly || xfer == EXS_JPEG2000Multicomponent;
}

// Turns stored gray values into frames: Modality LUT (rescale), MONOCHROME1 inversion,
// signedness and BitsStored kept.
void monochrome_frames(const PixelHeader& h, const void* data, Scalar scalar, bool rescale,
                       std::vector<DecodedImage>& frames) {
  const bool is_signed = h.pixel_representation == 1;
  const int bits = h.bits_stored > 0 ? h.bits_stored : 16;
  const double low = is_signed ? -std::ldexp(1.0, bits - 1) : 0.0;
  const double high = is_signed ? std::ldexp(1.0, bits - 1) - 1 : std::ldexp(1.0, bits) - 1;
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
    image.pixels.resize(plane * static_cast<std::size_t>(bytes_per_element(type)));
    const std::size_t base = static_cast<std::size_t>(f) * plane;
    for (std::size_t i = 0; i < plane; ++i) {
      double s = stored_value(data, scalar, base + i);
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
    if (h.window_center && h.window_width) {
      // The window is given in output units; after the inversion the same tissue sits at the
      // mirrored value: v' = slope * (low + high) + 2 * intercept - v.
      image.window_center =
          invert ? slope * (low + high) + 2 * intercept - *h.window_center : *h.window_center;
      image.window_width = h.window_width;
    }
    frames.push_back(std::move(image));
  }
}

void colour_frame(const PixelHeader& h, const std::uint8_t* rgb, long frame,
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
    image.pixels[3 * i] = rgb[3 * i + 2];
    image.pixels[3 * i + 1] = rgb[3 * i + 1];
    image.pixels[3 * i + 2] = rgb[3 * i];
  }
  frames.push_back(std::move(image));
}

bool decode_with_dcmtk(DcmFileFormat& file, E_TransferSyntax xfer, const PixelHeader& h, FileOutcome& outcome,
                       std::vector<DecodedImage>& frames) {
  // The Modality LUT is applied below (exactly, in float); only a LUT sequence is left to DCMTK.
  const unsigned long flags = h.has_modality_lut_sequence ? 0 : CIF_IgnoreModalityTransformation;
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
  for (long f = 0; f < h.frames; ++f) {
    const void* rgb = image.getOutputData(8, static_cast<unsigned long>(f), 0);
    if (rgb == nullptr) {
      reject(outcome, Reason::kUnreadable, "DCMTK could not render colour frame " + std::to_string(f));
      return false;
    }
    colour_frame(h, static_cast<const std::uint8_t*>(rgb), f, frames);
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
      colour_frame(h, reinterpret_cast<const std::uint8_t*>(buffer.data()) + plane * 3 * f, f, frames);
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
  info.patient_id = trimmed(text(ds, DCM_PatientID));
  info.modality = trimmed(text(ds, DCM_Modality));
  info.series_uid = trimmed(text(ds, DCM_SeriesInstanceUID));
  info.view = trimmed(text(ds, DCM_ViewPosition));
  info.site = trimmed(text(ds, DCM_InstitutionName));

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
  const PixelHeader h = read_pixel_header(ds);
  outcome.width = h.columns;
  outcome.height = h.rows;
  outcome.bits_stored = h.bits_stored;
  if (h.rows == 0 || h.columns == 0 || h.bits_allocated == 0) {
    reject(outcome, Reason::kUnreadable,
           "the header declares " + std::to_string(h.columns) + "x" + std::to_string(h.rows) + " pixels of " +
               std::to_string(h.bits_allocated) + " bits allocated");
    return;
  }
  const std::int64_t pixels = static_cast<std::int64_t>(h.rows) * h.columns * h.frames;
  if (pixels > options.max_pixels) {
    reject(outcome, Reason::kTooLarge,
           "the header declares " + std::to_string(h.columns) + "x" + std::to_string(h.rows) + " x " +
               std::to_string(h.frames) + " frames = " + std::to_string(pixels) + " pixels; the limit is " +
               std::to_string(options.max_pixels) + " (validate.max_pixels)");
    return;
  }
  const E_TransferSyntax xfer = ds.getOriginalXfer();
  if (!DcmXfer(xfer).isEncapsulated()) {
    // GDCM pads short pixel data silently and DCMTK may too: compare the length ourselves.
    DcmElement* element = nullptr;
    if (ds.findAndGetElement(DCM_PixelData, element).good() && element != nullptr) {
      const std::uint64_t length = element->getLength();
      const std::uint64_t expected =
          (static_cast<std::uint64_t>(pixels) * h.samples_per_pixel * h.bits_allocated + 7) / 8;
      if (length < expected) {
        reject(outcome, Reason::kTruncated,
               "pixel data is " + std::to_string(length) + " bytes, the header declares " +
                   std::to_string(expected) + " (" + std::to_string(h.columns) + "x" +
                   std::to_string(h.rows) + " x " + std::to_string(h.frames) + " frames x " +
                   std::to_string(h.samples_per_pixel) + " samples x " + std::to_string(h.bits_allocated) +
                   " bits)");
        return;
      }
    }
  }
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
