// DICOM files whose pixel data is fine but whose header has one missing, invalid or inconsistent
// attribute that only says how to interpret the pixels: decoded with the safe reading and the
// warning "dicom_header_repaired:<keyword>" (docs/ingest.md), never rejected. Each file is a copy
// of a committed fixture with one attribute damaged by DCMTK, compared with the undamaged file.

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <random>

#include "medload/loader/ingest/scanner.h"
#include "test_util.h"

namespace medload::loader {
namespace {

using test::decode_path;
using test::fixture;
using test::has_warning;
using test::TempDir;

std::string repaired(const std::string& keyword) { return "dicom_header_repaired:" + keyword; }

// A copy of the fixture `name` as dir/out, with `change` made to its dataset, in the fixture's own
// transfer syntax.
std::string changed_copy(const TempDir& dir, const std::string& name, const std::string& out,
                         const std::function<void(DcmDataset&)>& change) {
  DcmFileFormat file;
  const std::string source = fixture("dicom/" + name);
  EXPECT_TRUE(file.loadFile(source.c_str()).good()) << source;
  DcmDataset& ds = *file.getDataset();
  change(ds);
  const std::string path = dir / out;
  const OFCondition saved = file.saveFile(path.c_str(), ds.getOriginalXfer());
  EXPECT_TRUE(saved.good()) << path << ": " << saved.text();
  return path;
}

// Decodes `path`, which must be ok with the warning `code` and the frames of `reference`.
void expect_repaired_like(const std::string& path, const std::string& code, const std::string& reference) {
  std::vector<DecodedImage> frames, expected;
  const FileOutcome o = decode_path(path, frames);
  ASSERT_TRUE(o.ok) << path << ": " << o.detail;
  EXPECT_TRUE(has_warning(o, code)) << path;
  const FileOutcome r = decode_path(reference, expected);
  ASSERT_TRUE(r.ok) << reference << ": " << r.detail;
  EXPECT_FALSE(has_warning(r, code)) << reference;
  ASSERT_EQ(frames.size(), expected.size()) << path;
  for (std::size_t i = 0; i < frames.size(); ++i) {
    EXPECT_EQ(frames[i].type, expected[i].type) << path;
    EXPECT_EQ(frames[i].channels, expected[i].channels) << path;
    EXPECT_EQ(frames[i].bits_stored, expected[i].bits_stored) << path;
    EXPECT_EQ(frames[i].was_monochrome1, expected[i].was_monochrome1) << path;
    EXPECT_EQ(frames[i].pixels, expected[i].pixels) << path;
  }
  EXPECT_EQ(o.pixel_hash, r.pixel_hash) << path;
  EXPECT_EQ(o.bits_stored, r.bits_stored) << path;
}

TEST(DicomHeaderRepair, ARescaleSlopeThatIsNoFiniteNumberIsReadAsOne) {
  // CT_small: slope 1, intercept -1024. A slope that is not a finite number (or 0) is read as an
  // absent one (1); the intercept still applies, so the image is the fixture's, in HU.
  TempDir dir("repair_slope");
  const std::string reference = fixture("dicom/CT_small.dcm");
  for (const char* slope : {"NaN", "inf", "-inf", "0", "not-a-number"}) {
    const std::string path =
        changed_copy(dir, "CT_small.dcm", std::string("slope_") + slope + ".dcm",
                     [&](DcmDataset& ds) { ds.putAndInsertString(DCM_RescaleSlope, slope); });
    SCOPED_TRACE(slope);
    expect_repaired_like(path, repaired("RescaleSlope"), reference);
  }
}

TEST(DicomHeaderRepair, ARescaleInterceptThatIsNoFiniteNumberIsReadAsZero) {
  TempDir dir("repair_intercept");
  const std::string reference = changed_copy(dir, "CT_small.dcm", "no_intercept.dcm",
                                             [](DcmDataset& ds) { delete ds.remove(DCM_RescaleIntercept); });
  for (const char* intercept : {"NaN", "inf", "-inf"}) {
    const std::string path =
        changed_copy(dir, "CT_small.dcm", std::string("intercept_") + intercept + ".dcm",
                     [&](DcmDataset& ds) { ds.putAndInsertString(DCM_RescaleIntercept, intercept); });
    SCOPED_TRACE(intercept);
    expect_repaired_like(path, repaired("RescaleIntercept"), reference);
  }
}

TEST(DicomHeaderRepair, ARescaleWhoseOutputIsNoFiniteFloatIsIgnored) {
  // Each value is finite, but slope * stored + intercept over the 16-bit signed range is not a
  // finite float32 (the type the rescaled pixels have): the stored values are kept, as without a
  // rescale.
  TempDir dir("repair_overflow");
  const std::string reference = changed_copy(dir, "CT_small.dcm", "no_rescale.dcm", [](DcmDataset& ds) {
    delete ds.remove(DCM_RescaleSlope);
    delete ds.remove(DCM_RescaleIntercept);
  });
  const std::string huge = changed_copy(dir, "CT_small.dcm", "huge.dcm", [](DcmDataset& ds) {
    ds.putAndInsertString(DCM_RescaleSlope, "1e308");
    ds.putAndInsertString(DCM_RescaleIntercept, "-1e308");
  });
  expect_repaired_like(huge, repaired("RescaleSlope"), reference);
  expect_repaired_like(huge, repaired("RescaleIntercept"), reference);
  const std::string past_float = changed_copy(dir, "CT_small.dcm", "past_float.dcm", [](DcmDataset& ds) {
    ds.putAndInsertString(DCM_RescaleSlope, "1e38");  // 32767e38 is finite in double only
  });
  expect_repaired_like(past_float, repaired("RescaleSlope"), reference);

  std::vector<DecodedImage> frames;
  ASSERT_TRUE(decode_path(huge, frames).ok);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].type, PixelType::kInt16);  // no rescale: the signed stored values as they are
}

TEST(DicomHeaderRepair, AfterARescaleRepairTheWindowIsLeftOut) {
  // The window is defined on the rescale's output: once the rescale is guessed, its units are not
  // known, and preprocessing takes the percentile path instead of a window that may be misplaced.
  TempDir dir("repair_window");
  const auto add_window = [](DcmDataset& ds) {
    ds.putAndInsertString(DCM_WindowCenter, "40");
    ds.putAndInsertString(DCM_WindowWidth, "400");
  };
  const std::string windowed = changed_copy(dir, "CT_small.dcm", "windowed.dcm", add_window);
  const std::string nan_slope = changed_copy(dir, "CT_small.dcm", "nan_slope.dcm", [&](DcmDataset& ds) {
    add_window(ds);
    ds.putAndInsertString(DCM_RescaleSlope, "NaN");
  });
  std::vector<DecodedImage> frames;
  ASSERT_TRUE(decode_path(windowed, frames).ok);
  ASSERT_TRUE(frames[0].voi.has_value());
  frames.clear();
  const FileOutcome o = decode_path(nan_slope, frames);
  ASSERT_TRUE(o.ok) << o.detail;
  EXPECT_TRUE(has_warning(o, repaired("RescaleSlope")));
  EXPECT_FALSE(frames[0].voi.has_value());
}

TEST(DicomHeaderRepair, BitsStoredMissingZeroOrAboveBitsAllocatedIsBitsAllocated) {
  TempDir dir("repair_bits_stored");
  const std::string reference = fixture("dicom/CT_small.dcm");  // BitsStored 16 of 16
  const std::vector<std::pair<std::string, std::function<void(DcmDataset&)>>> damages = {
      {"40", [](DcmDataset& ds) { ds.putAndInsertUint16(DCM_BitsStored, 40); }},
      {"17", [](DcmDataset& ds) { ds.putAndInsertUint16(DCM_BitsStored, 17); }},
      {"0", [](DcmDataset& ds) { ds.putAndInsertUint16(DCM_BitsStored, 0); }},
      {"missing", [](DcmDataset& ds) { delete ds.remove(DCM_BitsStored); }}};
  for (const auto& [name, damage] : damages) {
    SCOPED_TRACE(name);
    expect_repaired_like(changed_copy(dir, "CT_small.dcm", "bits_stored_" + name + ".dcm", damage),
                         repaired("BitsStored"), reference);
  }
}

TEST(DicomHeaderRepair, AHighBitOutsideItsRangeIsBitsStoredMinusOne) {
  TempDir dir("repair_high_bit");
  const std::string reference = fixture("dicom/CT_small.dcm");  // HighBit 15
  const std::vector<std::pair<std::string, std::function<void(DcmDataset&)>>> damages = {
      {"31", [](DcmDataset& ds) { ds.putAndInsertUint16(DCM_HighBit, 31); }},
      {"16", [](DcmDataset& ds) { ds.putAndInsertUint16(DCM_HighBit, 16); }},
      {"5", [](DcmDataset& ds) { ds.putAndInsertUint16(DCM_HighBit, 5); }},
      {"missing", [](DcmDataset& ds) { delete ds.remove(DCM_HighBit); }}};
  for (const auto& [name, damage] : damages) {
    SCOPED_TRACE(name);
    expect_repaired_like(changed_copy(dir, "CT_small.dcm", "high_bit_" + name + ".dcm", damage),
                         repaired("HighBit"), reference);
  }
}

TEST(DicomHeaderRepair, BitsAreRepairedOnTheJpegLsAndJpeg2000PathsToo) {
  // DCMTK's JPEG-LS codec reads the dataset repaired in memory; GDCM reads the file itself, and
  // medload masks its samples with the repaired BitsStored.
  TempDir dir("repair_codecs");
  for (const char* name : {"MR_small_jpeg_ls_lossless.dcm", "MR_small_jp2klossless.dcm"}) {
    SCOPED_TRACE(name);
    const std::string reference = fixture(std::string("dicom/") + name);
    expect_repaired_like(changed_copy(dir, name, std::string("bs40_") + name,
                                      [](DcmDataset& ds) { ds.putAndInsertUint16(DCM_BitsStored, 40); }),
                         repaired("BitsStored"), reference);
    expect_repaired_like(changed_copy(dir, name, std::string("hb31_") + name,
                                      [](DcmDataset& ds) { ds.putAndInsertUint16(DCM_HighBit, 31); }),
                         repaired("HighBit"), reference);
  }
}

TEST(DicomHeaderRepair, APixelRepresentationMissingOrNotZeroOrOneIsUnsigned) {
  TempDir dir("repair_representation");
  const std::string unsigned_copy = changed_copy(dir, "CT_small.dcm", "unsigned.dcm", [](DcmDataset& ds) {
    ds.putAndInsertUint16(DCM_PixelRepresentation, 0);
  });
  expect_repaired_like(changed_copy(dir, "CT_small.dcm", "missing.dcm",
                                    [](DcmDataset& ds) { delete ds.remove(DCM_PixelRepresentation); }),
                       repaired("PixelRepresentation"), unsigned_copy);
  expect_repaired_like(
      changed_copy(dir, "CT_small.dcm", "two.dcm",
                   [](DcmDataset& ds) { ds.putAndInsertUint16(DCM_PixelRepresentation, 2); }),
      repaired("PixelRepresentation"), unsigned_copy);
}

TEST(DicomHeaderRepair, AGreyImageWithoutAUsablePhotometricInterpretationIsMonochrome2) {
  TempDir dir("repair_photometric_grey");
  const std::string reference = fixture("dicom/CT_small.dcm");
  const std::vector<std::pair<std::string, std::function<void(DcmDataset&)>>> damages = {
      {"xyz", [](DcmDataset& ds) { ds.putAndInsertString(DCM_PhotometricInterpretation, "XYZ"); }},
      {"missing", [](DcmDataset& ds) { delete ds.remove(DCM_PhotometricInterpretation); }},
      {"lower_case",
       [](DcmDataset& ds) { ds.putAndInsertString(DCM_PhotometricInterpretation, "monochrome2"); }},
      // A colour term, but the data holds one sample a pixel, not three.
      {"rgb",
       [](DcmDataset& ds) {
         ds.putAndInsertString(DCM_PhotometricInterpretation, "RGB");
         ds.putAndInsertUint16(DCM_PlanarConfiguration, 0);
       }},
      // Palette colour without its palettes: the indices are all there is.
      {"palette",
       [](DcmDataset& ds) { ds.putAndInsertString(DCM_PhotometricInterpretation, "PALETTE COLOR"); }}};
  for (const auto& [name, damage] : damages) {
    SCOPED_TRACE(name);
    expect_repaired_like(changed_copy(dir, "CT_small.dcm", "photometric_" + name + ".dcm", damage),
                         repaired("PhotometricInterpretation"), reference);
  }
}

TEST(DicomHeaderRepair, MonochromeOneWrittenInLowerCaseIsStillInverted) {
  // DCMTK reads "monochrome1" as MONOCHROME1; medload inverts it as such, as it does the defined term.
  TempDir dir("repair_monochrome1");
  const std::string reference = changed_copy(dir, "CT_small.dcm", "mono1.dcm", [](DcmDataset& ds) {
    ds.putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME1");
  });
  const std::string lower = changed_copy(dir, "CT_small.dcm", "lower.dcm", [](DcmDataset& ds) {
    ds.putAndInsertString(DCM_PhotometricInterpretation, "monochrome1");
  });
  expect_repaired_like(lower, repaired("PhotometricInterpretation"), reference);
  std::vector<DecodedImage> frames;
  ASSERT_TRUE(decode_path(lower, frames).ok);
  EXPECT_TRUE(frames[0].was_monochrome1);
}

TEST(DicomHeaderRepair, ThreeSamplesWithoutAUsablePhotometricInterpretationAreRgb) {
  TempDir dir("repair_photometric_rgb");
  const int rows = 40, cols = 48;
  std::vector<Uint8> rgb(static_cast<std::size_t>(rows) * cols * 3);
  std::mt19937 rng(5);
  for (auto& v : rgb) v = static_cast<Uint8>(rng() & 0xFF);
  const auto write = [&](const std::string& name, const char* photometric) {
    DcmFileFormat file;
    DcmDataset& ds = *file.getDataset();
    ds.putAndInsertString(DCM_SOPClassUID, UID_SecondaryCaptureImageStorage);
    ds.putAndInsertString(DCM_SOPInstanceUID, "1.2.826.0.1.3680043.2.1125.2");
    ds.putAndInsertUint16(DCM_Rows, rows);
    ds.putAndInsertUint16(DCM_Columns, cols);
    ds.putAndInsertUint16(DCM_SamplesPerPixel, 3);
    if (photometric != nullptr) ds.putAndInsertString(DCM_PhotometricInterpretation, photometric);
    ds.putAndInsertUint16(DCM_PlanarConfiguration, 0);
    ds.putAndInsertUint16(DCM_BitsAllocated, 8);
    ds.putAndInsertUint16(DCM_BitsStored, 8);
    ds.putAndInsertUint16(DCM_HighBit, 7);
    ds.putAndInsertUint16(DCM_PixelRepresentation, 0);
    ds.putAndInsertUint8Array(DCM_PixelData, rgb.data(), rgb.size());
    const std::string path = dir / name;
    EXPECT_TRUE(file.saveFile(path.c_str(), EXS_LittleEndianExplicit).good()) << path;
    return path;
  };
  const std::string reference = write("rgb.dcm", "RGB");
  expect_repaired_like(write("xyz.dcm", "XYZ"), repaired("PhotometricInterpretation"), reference);
  expect_repaired_like(write("missing.dcm", nullptr), repaired("PhotometricInterpretation"), reference);
  // A grey term on three interleaved samples a pixel: read as grey, the image was a third of the
  // data, scrambled.
  expect_repaired_like(write("mono2.dcm", "MONOCHROME2"), repaired("PhotometricInterpretation"), reference);
}

TEST(DicomHeaderRepair, AValidHeaderGetsNoRepairWarning) {
  for (const char* name : {"CT_small.dcm", "MR_small.dcm", "CR_monochrome1.dcm", "SC_rgb_rle_2frame.dcm",
                           "MR_small_jp2klossless.dcm", "rtdose_1frame.dcm"}) {
    std::vector<DecodedImage> frames;
    const FileOutcome o = decode_path(fixture(std::string("dicom/") + name), frames);
    ASSERT_TRUE(o.ok) << name << ": " << o.detail;
    for (const std::string& warning : o.warnings)
      EXPECT_EQ(warning.rfind("dicom_header_repaired:", 0), std::string::npos) << name << ": " << warning;
  }
}

TEST(DicomHeaderRepair, AHeaderWithoutASafeReadingStaysRejected) {
  TempDir dir("repair_negative");
  const std::vector<std::tuple<std::string, std::function<void(DcmDataset&)>, Reason>> cases = {
      // Four samples (the data holds 32 x 128 of them), photometric unknown: ARGB and CMYK read
      // the same samples differently.
      {"four_samples_unknown",
       [](DcmDataset& ds) {
         ds.putAndInsertUint16(DCM_Rows, 32);
         ds.putAndInsertUint16(DCM_SamplesPerPixel, 4);
         ds.putAndInsertUint16(DCM_PlanarConfiguration, 0);
         ds.putAndInsertString(DCM_PhotometricInterpretation, "XYZ");
       },
       Reason::kUnreadable},
      {"no_rows", [](DcmDataset& ds) { ds.putAndInsertUint16(DCM_Rows, 0); }, Reason::kUnreadable},
      // BitsStored is repaired from BitsAllocated, never the reverse: 40 bits allocated stay refused.
      {"bits_allocated_40",
       [](DcmDataset& ds) {
         ds.putAndInsertUint16(DCM_BitsAllocated, 40);
         ds.putAndInsertUint16(DCM_BitsStored, 40);
       },
       Reason::kUnreadable},
      {"samples_2", [](DcmDataset& ds) { ds.putAndInsertUint16(DCM_SamplesPerPixel, 2); },
       Reason::kUnreadable},
      // A repaired header is held to the length check: a repair never hides short pixel data.
      {"short_and_bits_stored_40",
       [](DcmDataset& ds) {
         ds.putAndInsertUint16(DCM_BitsStored, 40);
         ds.putAndInsertUint16(DCM_Rows, 256);
       },
       Reason::kTruncated}};
  for (const auto& [name, damage, reason] : cases) {
    SCOPED_TRACE(name);
    std::vector<DecodedImage> frames;
    const FileOutcome o = decode_path(changed_copy(dir, "CT_small.dcm", name + ".dcm", damage), frames);
    EXPECT_FALSE(o.ok);
    ASSERT_TRUE(o.reason) << o.detail;
    EXPECT_EQ(*o.reason, reason) << o.detail;
    EXPECT_TRUE(frames.empty());
  }
}

}  // namespace
}  // namespace medload::loader
