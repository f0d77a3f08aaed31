// DICOM decoding on real files (pydicom's test files, committed as fixtures).

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dctk.h>
#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <random>

#include "medload/loader/ingest/scanner.h"
#include "test_util.h"

namespace medload::loader {
namespace {

using test::decode_path;
using test::fixture;
using test::TempDir;

FileOutcome decode_fixture(const std::string& name, std::vector<DecodedImage>& frames, int min_side = 1) {
  SourceFile source;
  source.path = fixture("dicom/" + name);
  source.report_path = name;
  ValidationOptions options;
  options.min_side = min_side;
  return decode_file(source, options, frames);
}

template <typename T>
T at(const DecodedImage& image, int row, int col) {
  T v;
  std::memcpy(&v, image.pixels.data() + (static_cast<std::size_t>(row) * image.width + col) * sizeof(T),
              sizeof(T));
  return v;
}

TEST(DicomDecoder, SixTransferSyntaxesOfMrSmallDecodeToIdenticalPixels) {
  const std::vector<std::string> files = {
      "MR_small.dcm",     "MR_small_implicit.dcm",     "MR_small_bigendian.dcm",
      "MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm"};
  std::vector<DecodedImage> reference;
  ASSERT_TRUE(decode_fixture(files[0], reference).ok);
  ASSERT_EQ(reference.size(), 1u);
  EXPECT_EQ(reference[0].height, 64);
  EXPECT_EQ(reference[0].width, 64);
  EXPECT_EQ(reference[0].type, PixelType::kInt16);       // signed, no rescale
  EXPECT_EQ(at<std::int16_t>(reference[0], 0, 0), 905);  // pydicom's pixel_array[0, 0]
  for (std::size_t i = 1; i < files.size(); ++i) {
    std::vector<DecodedImage> frames;
    const FileOutcome o = decode_fixture(files[i], frames);
    ASSERT_TRUE(o.ok) << files[i] << ": " << o.detail;
    ASSERT_EQ(frames.size(), 1u) << files[i];
    EXPECT_EQ(frames[0].type, reference[0].type) << files[i];
    EXPECT_EQ(frames[0].pixels, reference[0].pixels) << files[i];
    EXPECT_EQ(o.pixel_hash, decode_fixture(files[0], reference).pixel_hash) << files[i];
  }
}

TEST(DicomDecoder, RescaleSlopeAndInterceptAreApplied) {
  std::vector<DecodedImage> frames;
  const FileOutcome o = decode_fixture("CT_small.dcm", frames);
  ASSERT_TRUE(o.ok) << o.detail;
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].type, PixelType::kFloat32);
  // Stored 175 and 1928 (pydicom), intercept -1024: Hounsfield units.
  EXPECT_FLOAT_EQ(at<float>(frames[0], 0, 0), 175.0f - 1024.0f);
  EXPECT_FLOAT_EQ(at<float>(frames[0], 64, 64), 1928.0f - 1024.0f);
  EXPECT_EQ(frames[0].info.modality, "CT");
  EXPECT_FALSE(frames[0].info.patient_id.empty());
}

TEST(DicomDecoder, Monochrome1IsInvertedBeforeTheRescale) {
  std::vector<DecodedImage> frames;
  const FileOutcome o = decode_fixture("CR_monochrome1.dcm", frames);
  ASSERT_TRUE(o.ok) << o.detail;
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_TRUE(frames[0].was_monochrome1);
  EXPECT_EQ(frames[0].bits_stored, 12);
  // Stored 1994 at (0,0) and 2515 at (8,8) in a 12-bit MONOCHROME1 image; slope 0.684,
  // intercept 200: bright = dense after (4095 - stored) * slope + intercept.
  EXPECT_NEAR(at<float>(frames[0], 0, 0), (4095 - 1994) * 0.684 + 200, 1e-3);
  EXPECT_NEAR(at<float>(frames[0], 8, 8), (4095 - 2515) * 0.684 + 200, 1e-3);
  // The window stays in the Modality LUT's units (centre 1600), and the mirror takes a pixel
  // back to them: v = M - pixel with M = 0.684 * 4095 + 2 * 200.
  ASSERT_TRUE(frames[0].voi.has_value());
  EXPECT_EQ(frames[0].voi->function, VoiTransform::Function::kLinear);
  EXPECT_DOUBLE_EQ(frames[0].voi->center, 1600);
  EXPECT_NEAR(frames[0].monochrome1_mirror, 0.684 * 4095 + 400, 1e-9);
  EXPECT_NEAR(frames[0].monochrome1_mirror - at<float>(frames[0], 0, 0), 1994 * 0.684 + 200, 1e-3);
}

TEST(DicomDecoder, MultiFrameFileReportsItsFramesAsOneEntry) {
  std::vector<DecodedImage> frames;
  const FileOutcome o = decode_fixture("SC_rgb_rle_2frame.dcm", frames);
  ASSERT_TRUE(o.ok) << o.detail;
  EXPECT_EQ(o.frames, 2);
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].frame_index, 0);
  EXPECT_EQ(frames[1].frame_index, 1);
  EXPECT_EQ(frames[1].frame_count, 2);
  EXPECT_EQ(frames[0].channels, 3);
  EXPECT_NE(frames[0].pixels, frames[1].pixels);
}

// Loads a DICOM file's dataset (to read its raw pixel bytes, or to change it and write it again).
void load(const std::string& path, DcmFileFormat& file) {
  ASSERT_TRUE(file.loadFile(path.c_str()).good()) << path;
}

// The uncompressed pixel data of a DICOM file, as stored.
std::vector<Uint8> raw_pixel_bytes(const std::string& path) {
  DcmFileFormat file;
  load(path, file);
  const Uint8* data = nullptr;
  unsigned long count = 0;
  EXPECT_TRUE(file.getDataset()->findAndGetUint8Array(DCM_PixelData, data, &count).good());
  return std::vector<Uint8>(data, data + count);
}

// A secondary-capture image DICOM with the attributes `fill` puts in, written in `xfer`.
void write_dicom(const std::string& path, E_TransferSyntax xfer, const std::function<void(DcmDataset&)>& fill) {
  DcmFileFormat file;
  DcmDataset& ds = *file.getDataset();
  ds.putAndInsertString(DCM_SOPClassUID, UID_SecondaryCaptureImageStorage);
  ds.putAndInsertString(DCM_SOPInstanceUID, "1.2.826.0.1.3680043.2.1125.1");
  ds.putAndInsertString(DCM_PatientID, "P1");
  fill(ds);
  const OFCondition saved = file.saveFile(path.c_str(), xfer);
  ASSERT_TRUE(saved.good()) << path << ": " << saved.text();
}

void put_pixel_module(DcmDataset& ds, int rows, int cols, int samples, const char* photometric) {
  ds.putAndInsertUint16(DCM_Rows, static_cast<Uint16>(rows));
  ds.putAndInsertUint16(DCM_Columns, static_cast<Uint16>(cols));
  ds.putAndInsertUint16(DCM_SamplesPerPixel, static_cast<Uint16>(samples));
  ds.putAndInsertString(DCM_PhotometricInterpretation, photometric);
  if (samples == 3) ds.putAndInsertUint16(DCM_PlanarConfiguration, 0);
  ds.putAndInsertUint16(DCM_BitsAllocated, 8);
  ds.putAndInsertUint16(DCM_BitsStored, 8);
  ds.putAndInsertUint16(DCM_HighBit, 7);
  ds.putAndInsertUint16(DCM_PixelRepresentation, 0);
}

// PS3.3 C.7.6.3.1.2's YBR_FULL equations inverted, rounded to nearest: written out here
// independently of the decoder.
std::array<int, 3> expected_rgb(int y, int cb, int cr) {
  const auto round = [](double v) { return static_cast<int>(std::clamp(std::floor(v + 0.5), 0.0, 255.0)); };
  return {round(y + 1.402 * (cr - 128)), round(y - 0.344136 * (cb - 128) - 0.714136 * (cr - 128)),
          round(y + 1.772 * (cb - 128))};
}

// Each pixel of `image` (B,G,R) against expected_rgb of the YBR triple `ybr(i)`; counts mismatches.
int count_colour_mismatches(const DecodedImage& image, const std::function<std::array<int, 3>(std::size_t)>& ybr) {
  int wrong = 0;
  const std::size_t pixels = static_cast<std::size_t>(image.height) * image.width;
  for (std::size_t i = 0; i < pixels; ++i) {
    const std::array<int, 3> t = ybr(i);
    const std::array<int, 3> rgb = expected_rgb(t[0], t[1], t[2]);
    const std::uint8_t* p = image.pixels.data() + 3 * i;
    // 0.344136 and 0.714136 are the standard's 0.114 * 1.772 / 0.587 and 0.299 * 1.402 / 0.587
    // to six places: allow the rounding that a seventh place can flip, nothing more.
    if (std::abs(p[2] - rgb[0]) + std::abs(p[1] - rgb[1]) + std::abs(p[0] - rgb[2]) > 1) ++wrong;
  }
  return wrong;
}

TEST(DicomDecoder, TruncatedPixelDataIsTruncatedWithTheByteCounts) {
  TempDir dir("dicom_cut");
  std::vector<Uint8> pixels(100 * 100);
  write_dicom(dir / "short.dcm", EXS_LittleEndianExplicit, [&](DcmDataset& ds) {
    put_pixel_module(ds, 100, 100, 1, "MONOCHROME2");
    ds.putAndInsertUint8Array(DCM_PixelData, pixels.data(), 6000);
  });
  std::vector<DecodedImage> frames;
  FileOutcome o = decode_path(dir / "short.dcm", frames);
  EXPECT_FALSE(o.ok);
  ASSERT_TRUE(o.reason);
  EXPECT_EQ(*o.reason, Reason::kTruncated);
  EXPECT_NE(o.detail.find("pixel data is 6000 bytes, the header declares 10000"), std::string::npos) << o.detail;
  o = decode_fixture("MR_truncated.dcm", frames);
  ASSERT_TRUE(o.reason);
  EXPECT_EQ(*o.reason, Reason::kTruncated) << o.detail;
  EXPECT_TRUE(frames.empty());
}

TEST(DicomDecoder, UncompressedYbrFull422HoldsTwoSamplesAPixelAndDecodesExactly) {
  // Y0 Y1 Cb Cr for each pair of pixels: 100 x 100 pixels in 20000 bytes, not 30000.
  std::vector<DecodedImage> frames;
  const FileOutcome o = decode_fixture("SC_ybr_full_422_uncompressed.dcm", frames);
  ASSERT_TRUE(o.ok) << o.detail;
  ASSERT_EQ(frames.size(), 1u);
  ASSERT_EQ(frames[0].channels, 3);
  const std::vector<Uint8> raw = raw_pixel_bytes(fixture("dicom/SC_ybr_full_422_uncompressed.dcm"));
  ASSERT_EQ(raw.size(), 20000u);
  EXPECT_EQ(count_colour_mismatches(frames[0], [&](std::size_t i) {
              const Uint8* pair = raw.data() + 4 * (i / 2);
              return std::array<int, 3>{pair[i % 2], pair[2], pair[3]};
            }),
            0);
}

TEST(DicomDecoder, UncompressedYbrFullUsesTheStandardsEquationsRounded) {
  // DCMTK's own conversion (127.5 as the chroma zero, truncation) is up to 2 grey levels off in
  // about half of all samples.
  TempDir dir("ybr_full");
  const int rows = 40, cols = 48;
  std::vector<Uint8> ybr(static_cast<std::size_t>(rows) * cols * 3);
  std::mt19937 rng(11);
  for (auto& v : ybr) v = static_cast<Uint8>(rng() & 0xFF);
  write_dicom(dir / "ybr.dcm", EXS_LittleEndianExplicit, [&](DcmDataset& ds) {
    put_pixel_module(ds, rows, cols, 3, "YBR_FULL");
    ds.putAndInsertUint8Array(DCM_PixelData, ybr.data(), ybr.size());
  });
  std::vector<DecodedImage> frames;
  const FileOutcome o = decode_path(dir / "ybr.dcm", frames);
  ASSERT_TRUE(o.ok) << o.detail;
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(count_colour_mismatches(frames[0], [&](std::size_t i) {
              return std::array<int, 3>{ybr[3 * i], ybr[3 * i + 1], ybr[3 * i + 2]};
            }),
            0);
}

TEST(DicomDecoder, BigEndian32BitSamplesComeOutAsTheLittleEndianFilesDo) {
  // The same RT dose grid in implicit little endian and explicit big endian (pydicom's files).
  std::vector<DecodedImage> little, big;
  ASSERT_TRUE(decode_fixture("rtdose_1frame.dcm", little).ok);
  const FileOutcome o = decode_fixture("rtdose_expb_1frame.dcm", big);
  ASSERT_TRUE(o.ok) << o.detail;
  ASSERT_EQ(big.size(), 1u);
  ASSERT_EQ(big[0].type, PixelType::kFloat32);  // 32 bits stored: above what uint16 holds
  EXPECT_EQ(at<float>(big[0], 0, 0), 1249000.0f);  // pydicom's pixel_array[0, 0]
  EXPECT_EQ(at<float>(big[0], 5, 7), 986000.0f);
  EXPECT_EQ(big[0].pixels, little[0].pixels);
}

TEST(DicomDecoder, JpegTwoThousandStoredValuesAreMaskedAndSignExtendedAsOnEveryPath) {
  // A CT whose header says PixelRepresentation 1 and BitsStored 13, and whose JPEG 2000
  // codestream is coded unsigned (13-bit two's complement as they are): air outside the field of
  // view is -2000, not 6192 (pydicom agrees).
  std::vector<DecodedImage> frames;
  const FileOutcome o = decode_fixture("J2K_pixelrep_mismatch.dcm", frames);
  ASSERT_TRUE(o.ok) << o.detail;
  ASSERT_EQ(frames.size(), 1u);
  ASSERT_EQ(frames[0].type, PixelType::kInt16);
  EXPECT_EQ(at<std::int16_t>(frames[0], 0, 0), -2000);
  EXPECT_EQ(at<std::int16_t>(frames[0], 256, 256), 27);
  int negative = 0;
  for (int r = 0; r < frames[0].height; ++r)
    for (int c = 0; c < frames[0].width; ++c) negative += at<std::int16_t>(frames[0], r, c) < 0;
  EXPECT_EQ(negative, 163095);
}

TEST(DicomDecoder, AnImplicitVrDatasetUnderAnExplicitVrMetaHeaderDecodesWithAWarning) {
  TempDir dir("xfer_mismatch");
  DcmFileFormat file;
  load(fixture("dicom/MR_small_implicit.dcm"), file);
  file.getMetaInfo()->putAndInsertString(DCM_TransferSyntaxUID, UID_LittleEndianExplicitTransferSyntax);
  const std::string path = dir / "mismatch.dcm";
  ASSERT_TRUE(file.saveFile(path.c_str(), EXS_LittleEndianImplicit, EET_UndefinedLength, EGL_recalcGL,
                            EPD_noChange, 0, 0, EWM_dontUpdateMeta)
                  .good());
  std::vector<DecodedImage> reference, frames;
  ASSERT_TRUE(decode_fixture("MR_small.dcm", reference).ok);
  const FileOutcome o = decode_path(path, frames);
  ASSERT_TRUE(o.ok) << o.detail;
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].pixels, reference[0].pixels);
  EXPECT_NE(std::find(o.warnings.begin(), o.warnings.end(), "transfer_syntax_mismatch"), o.warnings.end());
}

TEST(DicomDecoder, TheVoiLutFunctionAndTheVoiLutSequenceAreCarried) {
  TempDir dir("voi");
  DcmFileFormat file;
  load(fixture("dicom/MR_small.dcm"), file);
  DcmDataset& ds = *file.getDataset();
  ds.putAndInsertString(DCM_WindowCenter, "600\\700");
  ds.putAndInsertString(DCM_WindowWidth, "1600\\800");
  ds.putAndInsertString(DCM_VOILUTFunction, "SIGMOID");
  ASSERT_TRUE(file.saveFile((dir / "sigmoid.dcm").c_str(), EXS_LittleEndianExplicit).good());
  std::vector<DecodedImage> frames;
  ASSERT_TRUE(decode_path(dir / "sigmoid.dcm", frames).ok);
  ASSERT_TRUE(frames[0].voi.has_value());
  EXPECT_EQ(frames[0].voi->function, VoiTransform::Function::kSigmoid);
  EXPECT_DOUBLE_EQ(frames[0].voi->center, 600);  // the first window
  EXPECT_DOUBLE_EQ(frames[0].voi->width, 1600);

  // A VOI LUT Sequence is preferred to the window: 4 entries of 12 bits from stored value 100.
  DcmItem* item = nullptr;
  ASSERT_TRUE(ds.findOrCreateSequenceItem(DCM_VOILUTSequence, item, -2).good());
  const Uint16 descriptor[3] = {4, 100, 12};
  const Uint16 table[4] = {0, 1000, 3000, 4095};
  item->putAndInsertUint16Array(DCM_LUTDescriptor, descriptor, 3);
  item->putAndInsertUint16Array(DCM_LUTData, table, 4);
  ASSERT_TRUE(file.saveFile((dir / "lut.dcm").c_str(), EXS_LittleEndianExplicit).good());
  frames.clear();
  ASSERT_TRUE(decode_path(dir / "lut.dcm", frames).ok);
  ASSERT_TRUE(frames[0].voi.has_value());
  EXPECT_EQ(frames[0].voi->function, VoiTransform::Function::kTable);
  EXPECT_DOUBLE_EQ(frames[0].voi->first_mapped, 100);
  EXPECT_EQ(frames[0].voi->table_bits, 12);
  EXPECT_EQ(frames[0].voi->table, (std::vector<std::uint16_t>{0, 1000, 3000, 4095}));
}

TEST(DicomDecoder, NonImageDicomIsUnsupported) {
  std::vector<DecodedImage> frames;
  const FileOutcome o = decode_fixture("test-SR.dcm", frames);
  ASSERT_TRUE(o.reason);
  EXPECT_EQ(*o.reason, Reason::kUnsupported) << o.detail;
  EXPECT_NE(o.detail.find("without pixel data"), std::string::npos) << o.detail;
}

TEST(DicomDecoder, ManifestFieldsWinOverTheHeader) {
  SourceFile source;
  source.path = fixture("dicom/CT_small.dcm");
  source.report_path = "CT_small.dcm";
  source.info.patient_id = "from-manifest";
  source.info.labels = {"ct"};
  std::vector<DecodedImage> frames;
  ASSERT_TRUE(decode_file(source, {}, frames).ok);
  EXPECT_EQ(frames[0].info.patient_id, "from-manifest");
  EXPECT_EQ(frames[0].info.modality, "CT");  // the header fills what the manifest left empty
  EXPECT_EQ(frames[0].info.labels, std::vector<std::string>{"ct"});
  EXPECT_EQ(frames[0].source_path, "CT_small.dcm");
}

}  // namespace
}  // namespace medload::loader
