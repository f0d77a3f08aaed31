// DICOM decoding on real files (pydicom's test files, committed as fixtures).

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "medload/loader/ingest/scanner.h"
#include "test_util.h"

namespace medload::loader {
namespace {

using test::fixture;

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
  ASSERT_TRUE(frames[0].window_center.has_value());
  // The window follows the inversion: centre 1600 maps to 0.684 * 4095 + 2 * 200 - 1600.
  EXPECT_NEAR(*frames[0].window_center, 0.684 * 4095 + 400 - 1600, 1e-6);
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

TEST(DicomDecoder, TruncatedPixelDataIsTruncatedWithTheByteCounts) {
  std::vector<DecodedImage> frames;
  FileOutcome o = decode_fixture("SC_ybr_full_422_uncompressed.dcm", frames);
  EXPECT_FALSE(o.ok);
  ASSERT_TRUE(o.reason);
  EXPECT_EQ(*o.reason, Reason::kTruncated);
  EXPECT_NE(o.detail.find("pixel data is 20000 bytes, the header declares 30000"), std::string::npos)
      << o.detail;
  o = decode_fixture("MR_truncated.dcm", frames);
  ASSERT_TRUE(o.reason);
  EXPECT_EQ(*o.reason, Reason::kTruncated) << o.detail;
  EXPECT_TRUE(frames.empty());
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
