// Compressed DICOM frames read before their decoder sees them (encapsulated_frames.h): a TEM
// marker (FF 01) where DCMTK's bit-depth walk lands made it spin forever, and frame headers that
// declare another size than the DICOM header made the decoders allocate gigabytes.

#include <dcmtk/config/osconfig.h>
#include <dcmtk/dcmdata/dcpixseq.h>
#include <dcmtk/dcmdata/dcpxitem.h>
#include <dcmtk/dcmdata/dctk.h>
#include <gtest/gtest.h>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "encapsulated_frames.h"
#include "medload/loader/ingest/scanner.h"
#include "test_util.h"

namespace medload::loader {
namespace {

using detail::dcmtk_frame_size;
using detail::dcmtk_walk_stall;
using detail::j2k_frame_size;
using detail::remove_stalling_tem_markers;
using test::TempDir;
using Bytes = std::vector<std::uint8_t>;

TEST(DcmtkJpegWalk, StallsOnATemMarkerItLandsOn) {
  // SOI, TEM, then a start of frame: the walk lands on TEM at offset 2.
  const Bytes tem_first = {0xFF, 0xD8, 0xFF, 0x01, 0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x10};
  EXPECT_EQ(dcmtk_walk_stall(tem_first.data(), tem_first.size()), 2u);
  // SOI, an APP0 segment of length 6 (its payload holds FF 01, which the walk skips), TEM.
  const Bytes after_segment = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x06, 0xFF, 0x01, 0xFF,
                               0x01, 0xFF, 0x01, 0xFF, 0xC0, 0x00, 0x0B, 0x08};
  EXPECT_EQ(dcmtk_walk_stall(after_segment.data(), after_segment.size()), 10u);
  // Fill bytes move the walk one byte at a time: FF FF FF 01 lands on the TEM at offset 3.
  const Bytes fill = {0xFF, 0xD8, 0xFF, 0xFF, 0x01, 0x00, 0x00, 0x00};
  EXPECT_EQ(dcmtk_walk_stall(fill.data(), fill.size()), 3u);
}

TEST(DcmtkJpegWalk, EndsAtAStartOfFrameAnInvalidMarkerOrTheEnd) {
  const Bytes sof_first = {0xFF, 0xD8, 0xFF, 0xC0, 0x00, 0x0B, 0xFF, 0x01, 0xFF, 0x01};
  EXPECT_EQ(dcmtk_walk_stall(sof_first.data(), sof_first.size()), sof_first.size());
  const Bytes not_a_marker = {0xFF, 0xD8, 0x12, 0x34, 0xFF, 0x01, 0x00, 0x00};
  EXPECT_EQ(dcmtk_walk_stall(not_a_marker.data(), not_a_marker.size()), not_a_marker.size());
  // The walk stops when 4 or fewer bytes are left: a TEM that close to the end is never reached.
  const Bytes short_tail = {0xFF, 0xD8, 0xFF, 0x01, 0x00, 0x00, 0x00};
  EXPECT_EQ(dcmtk_walk_stall(short_tail.data(), 6), 6u);
  EXPECT_EQ(dcmtk_walk_stall(short_tail.data(), short_tail.size()), 2u);
  EXPECT_EQ(dcmtk_walk_stall(nullptr, 0), 0u);
}

TEST(DcmtkJpegWalk, RemovesOnlyTheMarkersTheWalkLandsOn) {
  Bytes data = {0xFF, 0xD8, 0xFF, 0x01, 0xFF, 0x01, 0xFF, 0xE0, 0x00, 0x04, 0xFF,
                0x01, 0xFF, 0x01, 0xFF, 0xC0, 0x00, 0x0B, 0xFF, 0x01, 0x00};
  EXPECT_EQ(remove_stalling_tem_markers(data), 3);
  // The two after SOI and the one after APP0 are gone; APP0's payload and what follows SOF stay.
  const Bytes expected = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0xFF, 0x01,
                          0xFF, 0xC0, 0x00, 0x0B, 0xFF, 0x01, 0x00};
  EXPECT_EQ(data, expected);
  EXPECT_EQ(dcmtk_walk_stall(data.data(), data.size()), data.size());
  EXPECT_EQ(remove_stalling_tem_markers(data), 0);
}

TEST(DcmtkJpegWalk, ReadsTheFrameSizeWhereTheWalkFindsTheStartOfFrame) {
  // SOI, APP0 (length 4), SOF2: P 12, Y 0x0130 = 304, X 0x0200 = 512, Nf 1.
  const Bytes data = {0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x04, 0xC0, 0x00, 0xFF, 0xC2, 0x00,
                      0x0B, 0x0C, 0x01, 0x30, 0x02, 0x00, 0x01, 0x01, 0x11, 0x00};
  const auto frame = dcmtk_frame_size(data.data(), data.size());
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->height, 304);
  EXPECT_EQ(frame->width, 512);
  EXPECT_EQ(frame->components, 1);
  // Cut inside the segment, or a walk that stalls or fails first: no size.
  EXPECT_FALSE(dcmtk_frame_size(data.data(), 17).has_value());
  const Bytes stalls = {0xFF, 0xD8, 0xFF, 0x01, 0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x10, 0x00, 0x10, 0x01};
  EXPECT_FALSE(dcmtk_frame_size(stalls.data(), stalls.size()).has_value());
  const Bytes invalid = {0xFF, 0xD8, 0xFF, 0x00, 0xFF, 0xC0, 0x00, 0x0B, 0x08, 0x00, 0x10, 0x00, 0x10, 0x01};
  EXPECT_FALSE(dcmtk_frame_size(invalid.data(), invalid.size()).has_value());
}

TEST(EncapsulatedFrames, ReadsTheJpeg2000ImageSizeFromSiz) {
  // SOC, SIZ: Lsiz 41, Rsiz 0, Xsiz 300, Ysiz 200, XOsiz 20, YOsiz 0, tiles..., Csiz 3.
  Bytes data = {0xFF, 0x4F, 0xFF, 0x51, 0x00, 0x29, 0x00, 0x00, 0, 0, 0x01, 0x2C, 0,    0,
                0x00, 0xC8, 0,    0,    0,    20,   0,    0,    0, 0, 0,    0,    0x01, 0x2C,
                0,    0,    0x00, 0xC8, 0,    0,    0,    0,    0, 0, 0,    0,    0,    3};
  auto frame = j2k_frame_size(data.data(), data.size());
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->width, 280);
  EXPECT_EQ(frame->height, 200);
  EXPECT_EQ(frame->components, 3);
  EXPECT_FALSE(j2k_frame_size(data.data(), data.size() - 1).has_value());  // Csiz cut off
  // Inside a JP2 wrapper: found after the boxes that precede the codestream.
  Bytes wrapped = {0x00, 0x00, 0x00, 0x0C, 'j', 'P', ' ', ' ', 0x0D, 0x0A, 0x87, 0x0A};
  wrapped.insert(wrapped.end(), data.begin(), data.end());
  frame = j2k_frame_size(wrapped.data(), wrapped.size());
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->width, 280);
  // An image offset past the grid's end declares a side of 0.
  data[19] = 0xFF;
  data[18] = 0x01;
  frame = j2k_frame_size(data.data(), data.size());
  ASSERT_TRUE(frame.has_value());
  EXPECT_EQ(frame->width, 0);
}

// A 64x48 gray gradient as a baseline (or progressive) JPEG (OpenCV, libjpeg-turbo).
Bytes gray_jpeg(bool progressive = false) {
  cv::Mat image(48, 64, CV_8UC1);
  for (int r = 0; r < image.rows; ++r)
    for (int c = 0; c < image.cols; ++c) image.at<std::uint8_t>(r, c) = static_cast<std::uint8_t>(3 * c + r);
  Bytes jpeg;
  EXPECT_TRUE(cv::imencode(".jpg", image, jpeg,
                           {cv::IMWRITE_JPEG_QUALITY, 95, cv::IMWRITE_JPEG_PROGRESSIVE, progressive}));
  return jpeg;
}

// `jpeg` with its start-of-frame segment declaring width x height (segments followed by length).
Bytes with_frame_size(Bytes jpeg, int width, int height) {
  std::size_t at = 2;
  while (at + 9 < jpeg.size() && !(jpeg[at + 1] >= 0xC0 && jpeg[at + 1] <= 0xC2))
    at += 2 + ((std::size_t{jpeg[at + 2]} << 8) | jpeg[at + 3]);
  EXPECT_LT(at + 9, jpeg.size());
  jpeg[at + 5] = static_cast<std::uint8_t>(height >> 8);
  jpeg[at + 6] = static_cast<std::uint8_t>(height & 0xFF);
  jpeg[at + 7] = static_cast<std::uint8_t>(width >> 8);
  jpeg[at + 8] = static_cast<std::uint8_t>(width & 0xFF);
  return jpeg;
}

// A secondary-capture DICOM holding `jpeg` as its one frame, JPEG baseline transfer syntax.
void write_jpeg_dicom(const std::string& path, const Bytes& jpeg, Uint16 samples_per_pixel = 1) {
  DcmFileFormat file;
  DcmDataset& ds = *file.getDataset();
  ds.putAndInsertString(DCM_SOPClassUID, UID_SecondaryCaptureImageStorage);
  ds.putAndInsertString(DCM_SOPInstanceUID, "1.2.826.0.1.3680043.2.1125.2");
  ds.putAndInsertString(DCM_PatientID, "P1");
  ds.putAndInsertUint16(DCM_Rows, 48);
  ds.putAndInsertUint16(DCM_Columns, 64);
  ds.putAndInsertUint16(DCM_SamplesPerPixel, samples_per_pixel);
  ds.putAndInsertString(DCM_PhotometricInterpretation, "MONOCHROME2");
  ds.putAndInsertUint16(DCM_BitsAllocated, 8);
  ds.putAndInsertUint16(DCM_BitsStored, 8);
  ds.putAndInsertUint16(DCM_HighBit, 7);
  ds.putAndInsertUint16(DCM_PixelRepresentation, 0);
  auto* sequence = new DcmPixelSequence(DCM_PixelSequenceTag);
  sequence->insert(new DcmPixelItem(DCM_PixelItemTag));  // the (empty) offset table
  DcmOffsetList offsets;
  Bytes even = jpeg;
  if (even.size() % 2 != 0) even.push_back(0);
  ASSERT_TRUE(
      sequence->storeCompressedFrame(offsets, even.data(), static_cast<Uint32>(even.size()), 0).good());
  auto* pixel_data = new DcmPixelData(DCM_PixelData);
  pixel_data->putOriginalRepresentation(EXS_JPEGProcess1, nullptr, sequence);
  ds.insert(pixel_data);
  const OFCondition saved = file.saveFile(path.c_str(), EXS_JPEGProcess1);
  ASSERT_TRUE(saved.good()) << saved.text();
}

// Ends the test process with SIGALRM if it is still running after a minute: a decoder that spins
// fails its test quickly instead of at ctest's timeout.
struct Deadline {
  Deadline() { alarm(60); }
  ~Deadline() { alarm(0); }
  Deadline(const Deadline&) = delete;
  Deadline& operator=(const Deadline&) = delete;
};

FileOutcome decode_in_process(const std::string& path, std::vector<DecodedImage>& frames) {
  SourceFile source;
  source.path = path;
  source.report_path = path;
  ValidationOptions options;
  options.min_side = 1;
  return decode_file(source, options, frames);
}

TEST(DicomJpeg, TemMarkersWhereDcmtkWouldSpinAreRemovedAndThePixelsAreThoseOfTheImage) {
  const Deadline deadline;
  TempDir dir("dicom_tem");
  const Bytes jpeg = gray_jpeg();
  ASSERT_GT(jpeg.size(), 20u);
  ASSERT_EQ(jpeg[2], 0xFF);
  ASSERT_EQ(jpeg[3], 0xE0);  // OpenCV writes a JFIF APP0 segment after SOI
  const std::size_t after_app0 = 4 + ((std::size_t{jpeg[4]} << 8) | jpeg[5]);
  // TEM after SOI, twice, and once after APP0: all places a JPEG may hold one.
  Bytes with_tem(jpeg.begin(), jpeg.begin() + 2);
  with_tem.insert(with_tem.end(), {0xFF, 0x01, 0xFF, 0x01});
  with_tem.insert(with_tem.end(), jpeg.begin() + 2, jpeg.begin() + static_cast<std::ptrdiff_t>(after_app0));
  with_tem.insert(with_tem.end(), {0xFF, 0x01});
  with_tem.insert(with_tem.end(), jpeg.begin() + static_cast<std::ptrdiff_t>(after_app0), jpeg.end());
  ASSERT_LT(dcmtk_walk_stall(with_tem.data(), with_tem.size()), with_tem.size());
  write_jpeg_dicom(dir / "plain.dcm", jpeg);
  write_jpeg_dicom(dir / "tem.dcm", with_tem);

  std::vector<DecodedImage> plain;
  const FileOutcome plain_outcome = decode_in_process(dir / "plain.dcm", plain);
  ASSERT_TRUE(plain_outcome.ok) << plain_outcome.detail;
  EXPECT_TRUE(plain_outcome.warnings.empty());
  std::vector<DecodedImage> frames;
  const FileOutcome o = decode_in_process(dir / "tem.dcm", frames);
  ASSERT_TRUE(o.ok) << o.detail;
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].pixels, plain[0].pixels);
  EXPECT_EQ(o.pixel_hash, plain_outcome.pixel_hash);
  EXPECT_NE(std::find(o.warnings.begin(), o.warnings.end(), "jpeg_tem_marker_removed"), o.warnings.end());
  // The JPEG's own decode agrees (DCMTK's libijg8 and libjpeg-turbo: the same baseline decode).
  const cv::Mat reference = cv::imdecode(jpeg, cv::IMREAD_UNCHANGED);
  ASSERT_EQ(reference.total(), frames[0].pixels.size());
  int off_by_more_than_one = 0;
  for (std::size_t i = 0; i < reference.total(); ++i)
    off_by_more_than_one += std::abs(int{reference.data[i]} - int{frames[0].pixels[i]}) > 1;
  EXPECT_EQ(off_by_more_than_one, 0);
}

TEST(DicomJpeg, AFrameWhoseJpegDataDeclaresAnotherSizeIsRefusedBeforeDcmtkSizesItsBuffers) {
  // A progressive JPEG declaring 60000 x 60000 inside a 64 x 48 DICOM: DCMTK would first keep the
  // coefficients of a 3.6-gigapixel image (7 GB here) before failing.
  const Deadline deadline;
  TempDir dir("dicom_sof");
  for (const bool progressive : {false, true}) {
    const std::string path = dir / (progressive ? "progressive.dcm" : "baseline.dcm");
    write_jpeg_dicom(path, with_frame_size(gray_jpeg(progressive), 60000, 60000));
    std::vector<DecodedImage> frames;
    const FileOutcome o = decode_in_process(path, frames);
    ASSERT_TRUE(o.reason) << path;
    EXPECT_EQ(*o.reason, Reason::kUnreadable);
    EXPECT_EQ(o.detail, "the JPEG data declares a 60000x60000 frame; the header declares 64x48");
    // The same JPEG with its own size decodes.
    write_jpeg_dicom(path, gray_jpeg(progressive));
    EXPECT_TRUE(decode_in_process(path, frames).ok) << path;
  }
}

TEST(DicomJpeg, AJpeg2000CodestreamDeclaringAnotherSizeIsRefusedBeforeGdcmDecodesIt) {
  // The 256 x 1024 JPEG 2000 fixture with its SIZ segment declaring 60000 x 60000: GDCM
  // (OpenJPEG) decoded it at that size, 14 GB and 44 s, and the file came out `ok`.
  const Deadline deadline;
  std::ifstream in(test::fixture("dicom/JPEG2000.dcm"), std::ios::binary);
  Bytes file((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const Bytes siz = {0xFF, 0x4F, 0xFF, 0x51};
  const auto at = std::search(file.begin(), file.end(), siz.begin(), siz.end());
  ASSERT_NE(at, file.end());
  for (const int offset : {8, 12}) {  // Xsiz, Ysiz
    at[offset] = 0x00;
    at[offset + 1] = 0x00;
    at[offset + 2] = 0xEA;  // 60000
    at[offset + 3] = 0x60;
  }
  TempDir dir("dicom_siz");
  std::ofstream(dir / "big.dcm", std::ios::binary)
      .write(reinterpret_cast<const char*>(file.data()), static_cast<std::streamsize>(file.size()));
  std::vector<DecodedImage> frames;
  const FileOutcome o = decode_in_process(dir / "big.dcm", frames);
  ASSERT_TRUE(o.reason);
  EXPECT_EQ(*o.reason, Reason::kUnreadable);
  EXPECT_EQ(o.detail, "the JPEG 2000 data declares a 60000x60000 frame; the header declares 256x1024");
  EXPECT_TRUE(decode_in_process(test::fixture("dicom/JPEG2000.dcm"), frames).ok);
}

TEST(DicomJpeg, AbsurdSamplesPerPixelOrBitsAllocatedAreRefusedBeforeDecoding) {
  // fuzz_decode: a 256 x 256 JPEG DICOM declaring 65,027 samples a pixel made DCMTK allocate a
  // 4.3 GB frame (8.4 GB of RSS, 40 s) and came out `ok`.
  const Deadline deadline;
  std::vector<DecodedImage> frames;
  FileOutcome o = decode_in_process(
      std::string(MEDLOAD_SOURCE_DIR) + "/fuzz/regressions/fuzz_decode/dicom_samples_per_pixel_65027.dcm",
      frames);
  ASSERT_TRUE(o.reason);
  EXPECT_EQ(*o.reason, Reason::kUnreadable);
  EXPECT_NE(o.detail.find("65027 samples per pixel (SamplesPerPixel)"), std::string::npos) << o.detail;
  TempDir dir("dicom_header");
  write_jpeg_dicom(dir / "two.dcm", gray_jpeg(), 2);
  o = decode_in_process(dir / "two.dcm", frames);
  ASSERT_TRUE(o.reason);
  EXPECT_NE(o.detail.find("2 samples per pixel"), std::string::npos) << o.detail;
  DcmFileFormat file;
  ASSERT_TRUE(file.loadFile((dir / "two.dcm").c_str()).good());
  file.getDataset()->putAndInsertUint16(DCM_SamplesPerPixel, 1);
  file.getDataset()->putAndInsertUint16(DCM_BitsAllocated, 64);
  ASSERT_TRUE(file.saveFile((dir / "bits.dcm").c_str(), EXS_JPEGProcess1).good());
  o = decode_in_process(dir / "bits.dcm", frames);
  ASSERT_TRUE(o.reason);
  EXPECT_NE(o.detail.find("64 bits allocated per sample (BitsAllocated)"), std::string::npos) << o.detail;
}

TEST(DicomJpeg, TheFuzzedFileOnWhichDcmtkSpunGetsAnOutcome) {
  // fuzz_decode found it: DCMTK 3.6.7 never returned from it (decoded in this process here, so a
  // regression would spin here until the deadline).
  const Deadline deadline;
  std::vector<DecodedImage> frames;
  const FileOutcome o = decode_in_process(
      std::string(MEDLOAD_SOURCE_DIR) + "/fuzz/regressions/fuzz_decode/dcmtk_jpeg_scan_bit_depth_loop.dcm",
      frames);
  EXPECT_EQ(o.format, "dicom");
  EXPECT_NE(std::find(o.warnings.begin(), o.warnings.end(), "jpeg_tem_marker_removed"), o.warnings.end());
  if (!o.ok) {
    ASSERT_TRUE(o.reason);
    EXPECT_FALSE(o.detail.empty());
  }
}

}  // namespace
}  // namespace medload::loader
