// Every reason code on generated files, the limits, and ValidationOptions' JSON.

#include <gtest/gtest.h>
#include <zlib.h>

#include <cmath>
#include <cstring>
#include <random>

#include "medload/core/error.h"
#include "medload/loader/ingest/scanner.h"
#include "test_util.h"

namespace medload::loader {
namespace {

using test::TempDir;
using test::textured;
using test::write_bytes;
using test::write_image;

FileOutcome decode_one(const std::string& path, std::vector<DecodedImage>& frames,
                       ValidationOptions options = {}) {
  SourceFile source;
  source.path = path;
  source.report_path = std::filesystem::path(path).filename().string();
  return decode_file(source, options, frames);
}

FileOutcome decode_one(const std::string& path, ValidationOptions options = {}) {
  std::vector<DecodedImage> frames;
  return decode_one(path, frames, options);
}

void expect_reason(const FileOutcome& o, Reason reason) {
  EXPECT_FALSE(o.ok) << o.path;
  ASSERT_TRUE(o.reason.has_value()) << o.path;
  EXPECT_EQ(reason_code(*o.reason), reason_code(reason)) << o.path << ": " << o.detail;
  EXPECT_FALSE(o.detail.empty());
}

// Writes a gray 8-bit PNG of zeros of any size, streaming the deflate so nothing large is held.
std::string be32(std::uint32_t v) {
  std::string s(4, '\0');
  for (int i = 0; i < 4; ++i) s[i] = static_cast<char>(v >> (24 - 8 * i));
  return s;
}

std::string png_chunk(const std::string& type, const std::string& data) {
  uLong crc = crc32(0, reinterpret_cast<const Bytef*>(type.data()), 4);
  crc = crc32(crc, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size()));
  return be32(static_cast<std::uint32_t>(data.size())) + type + data + be32(static_cast<std::uint32_t>(crc));
}

void write_zero_png(const std::string& path, std::uint32_t width, std::uint32_t height) {
  std::string ihdr = be32(width) + be32(height) + std::string("\x08\x00\x00\x00\x00", 5);
  std::string idat;
  z_stream z{};
  deflateInit(&z, Z_BEST_SPEED);
  std::vector<unsigned char> row(width + 1, 0), out(1 << 20);
  for (std::uint32_t r = 0; r < height; ++r) {
    z.next_in = row.data();
    z.avail_in = static_cast<uInt>(row.size());
    do {
      z.next_out = out.data();
      z.avail_out = static_cast<uInt>(out.size());
      deflate(&z, r + 1 == height ? Z_FINISH : Z_NO_FLUSH);
      idat.append(reinterpret_cast<char*>(out.data()), out.size() - z.avail_out);
    } while (z.avail_out == 0 || (r + 1 == height && z.avail_in > 0));
  }
  deflateEnd(&z);
  write_bytes(path, std::string("\x89PNG\r\n\x1a\n", 8) + png_chunk("IHDR", ihdr) + png_chunk("IDAT", idat) +
                        png_chunk("IEND", ""));
}

TEST(Validation, ZeroByteFileIsEmptyFile) {
  TempDir dir("empty");
  write_bytes(dir / "empty.png", "");
  expect_reason(decode_one(dir / "empty.png"), Reason::kEmptyFile);
}

TEST(Validation, TextFileNamedPngIsUnreadable) {
  TempDir dir("text");
  write_bytes(dir / "notes.png", "patient notes, not an image\n");
  const FileOutcome o = decode_one(dir / "notes.png");
  expect_reason(o, Reason::kUnreadable);
  EXPECT_NE(o.detail.find("not an image format"), std::string::npos) << o.detail;
}

TEST(Validation, AFileThatIsNoImageIsNamedByItsKindAndNoneOfItsBytesAreCopied) {
  // A hostile manifest may list /etc/passwd: its content must not reach a report or a cache.
  TempDir dir("secret");
  write_bytes(dir / "passwd", "root:x:0:0:root:/root:/bin/bash\n");
  write_bytes(dir / "archive.png", std::string("PK\x03\x04secret-name.txt", 19));
  write_bytes(dir / "blob.png", std::string("\x01\x02\x03\xfe\xffsecret", 11));
  const struct {
    const char* name;
    const char* kind;
  } cases[] = {{"passwd", "text"}, {"archive.png", "a ZIP archive"}, {"blob.png", "binary data"}};
  for (const auto& c : cases) {
    const FileOutcome o = decode_one(dir / c.name);
    expect_reason(o, Reason::kUnreadable);
    EXPECT_NE(o.detail.find(c.kind), std::string::npos) << o.detail;
    for (const char* leaked : {"root", "secret", "72 6f", "50 4b", "01 02"}) {
      EXPECT_EQ(o.detail.find(leaked), std::string::npos) << c.name << ": " << o.detail;
    }
  }
}

TEST(Validation, MissingFileIsUnreadable) {
  expect_reason(decode_one("/nonexistent/medload.png"), Reason::kUnreadable);
}

TEST(Validation, DecompressionBombIsTooLargeFromTheHeaderWithoutDecoding) {
  TempDir dir("bomb");
  write_zero_png(dir / "bomb.png", 50000, 50000);  // 2.5 gigapixels of zeros, a few MB on disk
  const FileOutcome o = decode_one(dir / "bomb.png");
  expect_reason(o, Reason::kTooLarge);
  EXPECT_NE(o.detail.find("50000x50000"), std::string::npos) << o.detail;
  EXPECT_NE(o.detail.find("validate.max_pixels"), std::string::npos) << o.detail;
  // In a child process, so its peak memory is its own: the 2.5 GB image is never allocated.
  const pid_t pid = ::fork();
  if (pid == 0) {
    std::vector<DecodedImage> frames;
    const FileOutcome again = decode_one(dir / "bomb.png", frames);
    ::_exit(again.reason == Reason::kTooLarge ? 0 : 1);
  }
  int status = 0;
  rusage usage{};
  ASSERT_EQ(::wait4(pid, &status, 0, &usage), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_LT(usage.ru_maxrss, 512L * 1024) << "peak memory of the decoding process, KiB";
}

TEST(Validation, SidesWhoseProductOverflowsAreTooLargeNotUnreadable) {
  // 0xFFFFFFFF x 0xFFFFFFFF: the product overflows 64 bits and used to slip under max_pixels.
  TempDir dir("overflow");
  const std::uint32_t side = 0xFFFFFFFFu;
  write_bytes(dir / "huge.png", std::string("\x89PNG\r\n\x1a\n", 8) +
                                    png_chunk("IHDR", be32(side) + be32(side) + std::string("\x08\x00\x00\x00\x00", 5)) +
                                    png_chunk("IDAT", "") + png_chunk("IEND", ""));
  // A little-endian TIFF whose one directory gives ImageWidth and ImageLength as LONG 0xFFFFFFFF.
  std::string tiff("II*\0\x08\0\0\0\x02\0", 10);
  for (const std::uint16_t tag : {256, 257}) {
    const char entry[12] = {static_cast<char>(tag & 0xFF), static_cast<char>(tag >> 8), 4, 0, 1, 0, 0, 0,
                            '\xff', '\xff', '\xff', '\xff'};
    tiff.append(entry, 12);
  }
  tiff.append(4, '\0');
  write_bytes(dir / "huge.tif", tiff);
  for (const char* name : {"huge.png", "huge.tif"}) {
    const FileOutcome o = decode_one(dir / name);
    expect_reason(o, Reason::kTooLarge);
    EXPECT_NE(o.detail.find("4294967295x4294967295"), std::string::npos) << name << ": " << o.detail;
  }
}

TEST(Validation, AHeaderWithASideOfZeroIsUnreadableNotADivisionByZero) {
  // Found by fuzz_decode: a 33-byte PNG whose IHDR says height 0 stopped an in-process scan with
  // SIGFPE (fuzz/regressions/fuzz_decode/png_ihdr_height_0.png).
  TempDir dir("zero_side");
  write_bytes(dir / "flat.png", std::string("\x89PNG\r\n\x1a\n", 8) +
                                    png_chunk("IHDR", be32(64) + be32(0) + std::string("\x08\x00\x00\x00\x00", 5)) +
                                    png_chunk("IEND", ""));
  const FileOutcome o = decode_one(dir / "flat.png");
  expect_reason(o, Reason::kUnreadable);
  EXPECT_NE(o.detail.find("64x0"), std::string::npos) << o.detail;
}

TEST(Validation, BlankImageIsBlankAndANoisyDarkImageIsNot) {
  TempDir dir("blank");
  write_image(dir / "black.png", cv::Mat(64, 64, CV_8UC1, cv::Scalar(0)));
  write_image(dir / "gray16.png", cv::Mat(64, 64, CV_16UC1, cv::Scalar(1000)));
  cv::Mat dark = textured(64, 64, CV_8UC1, 3) / 8;  // dim, but an image
  write_image(dir / "dark.png", dark);
  expect_reason(decode_one(dir / "black.png"), Reason::kBlank);
  expect_reason(decode_one(dir / "gray16.png"), Reason::kBlank);
  EXPECT_TRUE(decode_one(dir / "dark.png").ok);
}

// A gray 16-bit image: `level` plus Gaussian noise of `sigma` plus, when `structure` > 0, a disc
// of that height (Poisson-like counts, as in a nuclear-medicine image).
cv::Mat noisy_field(int side, double level, double sigma, double structure, unsigned seed) {
  cv::Mat image(side, side, CV_16UC1);
  std::mt19937 rng(seed);
  std::normal_distribution<double> noise(0.0, sigma);
  for (int r = 0; r < side; ++r) {
    for (int c = 0; c < side; ++c) {
      const double dr = r - side / 2.0, dc = c - side / 3.0;
      const bool inside = dr * dr + dc * dc < side * side / 16.0;
      double v = level + (inside ? structure : 0.0);
      if (structure > 0) {
        std::poisson_distribution<int> counts(v);
        v = counts(rng);
      }
      image.at<std::uint16_t>(r, c) = cv::saturate_cast<std::uint16_t>(v + noise(rng));
    }
  }
  return image;
}

TEST(Validation, BlankMeansNoContentAboveTheNoiseWhateverTheBitDepthUsed) {
  TempDir dir("blank_noise");
  // Sensor noise of any amplitude around one level is blank: 200 grey levels of noise (0.3 % of
  // the 16-bit range, which the old fraction-of-range rule kept) and 2 levels (which it also
  // called blank).
  write_image(dir / "flat_noisy.png", noisy_field(256, 30000, 200, 0, 1));
  write_image(dir / "flat_quiet.png", noisy_field(256, 1000, 2, 0, 2));
  expect_reason(decode_one(dir / "flat_noisy.png"), Reason::kBlank);
  expect_reason(decode_one(dir / "flat_quiet.png"), Reason::kBlank);
  // The air-only CT slice at the end of a volume, stored as HU + 1024: air at -1000 HU with 12 HU
  // of noise.
  write_image(dir / "air_slice.png", noisy_field(256, 24, 12, 0, 4));
  expect_reason(decode_one(dir / "air_slice.png"), Reason::kBlank);
  // A low-count image: a few hundred counts of a 16-bit range with clear structure is content
  // (the old rule called it blank: its standard deviation is 0.1 % of the range).
  write_image(dir / "low_count.png", noisy_field(256, 20, 0, 120, 3));
  const FileOutcome low = decode_one(dir / "low_count.png");
  EXPECT_TRUE(low.ok) << low.detail;
}

TEST(Validation, ARealLowCountNuclearMedicineImageIsNotBlank) {
  // pydicom's JPEG2000.dcm: NM, int16, values -30..245 (274 distinct), standard deviation 21:
  // 0.03 % of its 16-bit range.
  SourceFile source;
  source.path = test::fixture("dicom/JPEG2000.dcm");
  source.report_path = "JPEG2000.dcm";
  std::vector<DecodedImage> frames;
  const FileOutcome o = decode_file(source, ValidationOptions{}, frames);
  EXPECT_TRUE(o.ok) << o.detail;
}

TEST(Validation, TheBlankLimitIsTheContentToNoiseRatio) {
  // Two halves 3 grey levels apart, noise-free: the block means spread over 3, the noise is the
  // integer floor of a quarter grey level, so the ratio is exactly 12.
  TempDir dir("blank_limit");
  cv::Mat image(128, 128, CV_16UC1, cv::Scalar(1000));
  image.rowRange(0, 64).setTo(cv::Scalar(1003));
  write_image(dir / "step.png", image);
  ValidationOptions options;
  options.blank_contrast_to_noise = 12 * 1.000001;
  const FileOutcome blank = decode_one(dir / "step.png", options);
  expect_reason(blank, Reason::kBlank);
  EXPECT_NE(blank.detail.find("validate.blank_contrast_to_noise"), std::string::npos) << blank.detail;
  options.blank_contrast_to_noise = 12 * 0.999999;
  const FileOutcome o = decode_one(dir / "step.png", options);
  EXPECT_TRUE(o.ok) << o.detail;
}

TEST(Validation, StripesAndBinaryMasksAreContentNotNoise) {
  TempDir dir("blank_structure");
  // One-pixel stripes: every vertical neighbour differs, no horizontal one does.
  cv::Mat stripes(64, 64, CV_8UC1, cv::Scalar(128));
  for (int r = 16; r < 64; r += 2) stripes.row(r).setTo(cv::Scalar(0));
  for (int r = 17; r < 64; r += 2) stripes.row(r).setTo(cv::Scalar(255));
  write_image(dir / "stripes.png", stripes);
  // A label map of 0 and 1: two grey levels one apart.
  cv::Mat mask(128, 128, CV_8UC1, cv::Scalar(0));
  mask(cv::Rect(30, 40, 50, 40)).setTo(cv::Scalar(1));
  write_image(dir / "mask.png", mask);
  for (const char* name : {"stripes.png", "mask.png"}) {
    const FileOutcome o = decode_one(dir / name);
    EXPECT_TRUE(o.ok) << name << ": " << o.detail;
  }
}

TEST(Validation, AFlatColourImageIsBlankAndAColourPhotographIsNot) {
  TempDir dir("blank_colour");
  write_image(dir / "flat.png", cv::Mat(96, 96, CV_8UC3, cv::Scalar(40, 60, 200)));
  expect_reason(decode_one(dir / "flat.png"), Reason::kBlank);
  // Strongly coloured structure: the channels' differences are not noise.
  cv::Mat photo(96, 96, CV_8UC3, cv::Scalar(20, 40, 180));
  for (int r = 0; r < 96; ++r)
    for (int c = 0; c < 96; ++c)
      if ((r - 48) * (r - 48) + (c - 48) * (c - 48) < 900) photo.at<cv::Vec3b>(r, c) = cv::Vec3b(30, 120, 230);
  write_image(dir / "photo.png", photo);
  EXPECT_TRUE(decode_one(dir / "photo.png").ok);
}

TEST(Validation, TinyImageIsTooSmallAndTheLimitIsConfigurable) {
  TempDir dir("tiny");
  write_image(dir / "tiny.png", textured(20, 40, CV_8UC1, 1));
  const FileOutcome o = decode_one(dir / "tiny.png");
  expect_reason(o, Reason::kTooSmall);
  EXPECT_NE(o.detail.find("40x20"), std::string::npos) << o.detail;
  ValidationOptions relaxed;
  relaxed.min_side = 16;
  EXPECT_TRUE(decode_one(dir / "tiny.png", relaxed).ok);
}

TEST(Validation, PngNamedJpgDecodesByContentWithAWarning) {
  TempDir dir("mismatch");
  write_image(dir / "scan.jpg", textured(48, 48, CV_8UC1, 2), ".png");
  std::vector<DecodedImage> frames;
  const FileOutcome o = decode_one(dir / "scan.jpg", frames);
  EXPECT_TRUE(o.ok) << o.detail;
  EXPECT_EQ(o.format, "png");
  EXPECT_EQ(o.warnings, std::vector<std::string>{"extension_mismatch"});
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].format, "png");
}

TEST(Validation, RasterFormatsDecodeIn8And16BitGrayAndColour) {
  TempDir dir("raster");
  struct Case {
    std::string name;
    int type;
    PixelType expected;
    int channels;
  };
  const std::vector<Case> cases = {
      {"g8.png", CV_8UC1, PixelType::kUInt8, 1}, {"g16.png", CV_16UC1, PixelType::kUInt16, 1},
      {"c8.png", CV_8UC3, PixelType::kUInt8, 3}, {"c16.png", CV_16UC3, PixelType::kUInt16, 3},
      {"g8.tif", CV_8UC1, PixelType::kUInt8, 1}, {"g16.tif", CV_16UC1, PixelType::kUInt16, 1},
      {"c8.bmp", CV_8UC3, PixelType::kUInt8, 3}, {"g8.jpg", CV_8UC1, PixelType::kUInt8, 1},
      {"c8.jpg", CV_8UC3, PixelType::kUInt8, 3}, {"ca8.png", CV_8UC4, PixelType::kUInt8, 3}};
  // PNG and JPEG whose header promises gray or colour are decoded straight into the frame's
  // buffer, the rest (16-bit colour, alpha, TIFF, BMP) through OpenCV's own and a copy: the same
  // pixels either way.
  for (const auto& c : cases) {
    const cv::Mat m = textured(40, 56, c.type, 7);
    write_image(dir / c.name, m, c.name.substr(c.name.find('.')));
    std::vector<DecodedImage> frames;
    const FileOutcome o = decode_one(dir / c.name, frames);
    ASSERT_TRUE(o.ok) << c.name << ": " << o.detail;
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].type, c.expected) << c.name;
    EXPECT_EQ(frames[0].channels, c.channels) << c.name;
    EXPECT_EQ(frames[0].height, 40);
    EXPECT_EQ(frames[0].width, 56);
    EXPECT_EQ(frames[0].bits_stored, CV_MAT_DEPTH(c.type) == CV_16U ? 16 : 8);
    cv::Mat expected = m;
    if (c.name.find(".jpg") != std::string::npos) {  // lossy: what OpenCV's decoder gives
      expected = cv::imread(dir / c.name, cv::IMREAD_UNCHANGED);
    } else if (m.channels() == 4) {  // the alpha channel is dropped
      expected.create(m.size(), CV_8UC3);
      const int from_to[] = {0, 0, 1, 1, 2, 2};
      cv::mixChannels(&m, 1, &expected, 1, from_to, 3);
    }
    ASSERT_EQ(frames[0].pixels.size(), expected.total() * expected.elemSize()) << c.name;
    EXPECT_EQ(std::memcmp(frames[0].pixels.data(), expected.data, frames[0].pixels.size()), 0) << c.name;
  }
}

TEST(Validation, TruncatedPngAndJpegAreTruncated) {
  TempDir dir("trunc");
  std::vector<std::uint8_t> png, jpg;
  cv::imencode(".png", textured(64, 64, CV_8UC1, 4), png);
  cv::imencode(".jpg", textured(64, 64, CV_8UC1, 4), jpg);
  write_bytes(dir / "cut.png", std::string(png.begin(), png.begin() + static_cast<long>(png.size() / 2)));
  write_bytes(dir / "cut.jpg", std::string(jpg.begin(), jpg.begin() + static_cast<long>(jpg.size() / 2)));
  write_bytes(dir / "header.png", std::string(png.begin(), png.begin() + 20));
  expect_reason(decode_one(dir / "cut.png"), Reason::kTruncated);
  expect_reason(decode_one(dir / "cut.jpg"), Reason::kTruncated);
  expect_reason(decode_one(dir / "header.png"), Reason::kTruncated);
}

TEST(Validation, DuplicatePixelsAreRejectedNamingTheFirstCopy) {
  TempDir dir("dup");
  const cv::Mat m = textured(48, 48, CV_8UC1, 5);
  write_image(dir / "a/first.png", m);
  write_image(dir / "b/copy.png", m);
  write_image(dir / "b/copy.tif", m, ".tif");  // same pixels, another container
  write_image(dir / "c/other.png", textured(48, 48, CV_8UC1, 6));
  ValidationOptions options;
  options.isolation = Isolation::kInProcess;
  options.threads = 2;
  const ScanReport report = Scanner(options).scan(list_sources(dir.path().string()));
  ASSERT_EQ(report.files.size(), 4u);
  EXPECT_TRUE(report.files[0].ok);
  expect_reason(report.files[1], Reason::kDuplicate);
  EXPECT_EQ(report.files[1].duplicate_of, "a/first.png");
  expect_reason(report.files[2], Reason::kDuplicate);
  EXPECT_EQ(report.files[2].duplicate_of, "a/first.png");
  EXPECT_TRUE(report.files[3].ok);
}

TEST(ValidationOptions, JsonRoundTripAndErrorsNameTheKeyAndRange) {
  ValidationOptions o;
  o.min_side = 64;
  EXPECT_EQ(ValidationOptions::from_json(o.to_json()).min_side, 64);
  try {
    ValidationOptions::from_json({{"min_side", 0}});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("validate.min_side is 0; allowed 1..65535"), std::string::npos)
        << e.what();
  }
  try {
    ValidationOptions::from_json({{"max_pixel", 5}});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown key validate.max_pixel"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ValidationOptions::from_json({{"blank_contrast_to_noise", 1001}}), ConfigError);
  try {  // the old key's meaning rejected low-count images: say what replaced it
    ValidationOptions::from_json({{"blank_std_fraction", 0.001}});
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("validate.blank_contrast_to_noise"), std::string::npos) << e.what();
  }
  EXPECT_THROW(ValidationOptions::from_json({{"reject_duplicates", "yes"}}), ConfigError);
}

TEST(ScanReport, JsonHasOneEntryPerFileAndCountsByReason) {
  TempDir dir("report");
  write_image(dir / "ok.png", textured(48, 48, CV_8UC1, 8));
  write_bytes(dir / "empty.png", "");
  write_bytes(dir / "text.png", "hello");
  ValidationOptions options;
  options.isolation = Isolation::kInProcess;
  const ScanReport report = Scanner(options).scan(list_sources(dir.path().string()));
  const auto j = report.to_json();
  ASSERT_EQ(j.at("files").size(), 3u);
  EXPECT_EQ(j.at("counts").at("total"), 3);
  EXPECT_EQ(j.at("counts").at("ok"), 1);
  EXPECT_EQ(j.at("counts").at("rejected"), 2);
  EXPECT_EQ(j.at("counts").at("by_reason").at("empty_file"), 1);
  EXPECT_EQ(j.at("counts").at("by_reason").at("unreadable"), 1);
  const auto& first = j.at("files")[0];  // sorted: empty.png, ok.png, text.png
  EXPECT_EQ(first.at("path"), "empty.png");
  EXPECT_EQ(first.at("status"), "rejected");
  EXPECT_EQ(first.at("reason"), "empty_file");
  EXPECT_TRUE(j.at("files")[1].at("reason").is_null());
  EXPECT_EQ(j.at("files")[1].at("status"), "ok");
}

}  // namespace
}  // namespace medload::loader
