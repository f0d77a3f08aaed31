// Raster decoding. OpenCV stays inside this file; pixel conversions after decoding are plain
// loops, because this code runs in forked workers where OpenCV's thread pool must not be used.
// A JPEG or PNG without its end marker is judged by its image data first (end_check.h).

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <cstring>
#include <limits>
#include <sstream>

#include "decoders.h"
#include "end_check.h"

namespace medload::loader::detail {

namespace {

// Sets `image`'s size, type and depth from `mat` (an alpha channel is dropped); false for a
// layout medload does not read.
bool describe(const cv::Mat& mat, DecodedImage& image) {
  const int depth = mat.depth();
  const int in_channels = mat.channels();
  if (depth == CV_8U) {
    image.type = PixelType::kUInt8;
  } else if (depth == CV_16U) {
    image.type = PixelType::kUInt16;
  } else if (depth == CV_16S) {
    image.type = PixelType::kInt16;
  } else if (depth == CV_32F) {
    image.type = PixelType::kFloat32;
  } else {
    return false;
  }
  if (in_channels != 1 && in_channels != 3 && in_channels != 4) return false;
  image.height = mat.rows;
  image.width = mat.cols;
  image.channels = in_channels == 1 ? 1 : 3;
  image.bits_stored = depth == CV_8U ? 8 : depth == CV_32F ? 32 : 16;
  return true;
}

// Copies `mat` into `image`, dropping an alpha channel.
bool copy_pixels(const cv::Mat& mat, DecodedImage& image) {
  if (!describe(mat, image)) return false;
  const int in_channels = mat.channels();
  const std::size_t elem = static_cast<std::size_t>(bytes_per_element(image.type));
  const std::size_t out_pixel = elem * static_cast<std::size_t>(image.channels);
  const std::size_t in_pixel = elem * static_cast<std::size_t>(in_channels);
  const std::size_t bytes = static_cast<std::size_t>(mat.rows) * mat.cols * out_pixel;
  if (in_pixel == out_pixel && mat.isContinuous()) {
    // One copy, without first zero-filling the vector (a 2048 px image is 4-8 MB).
    image.pixels.assign(mat.data, mat.data + bytes);
    return true;
  }
  image.pixels.resize(bytes);
  for (int r = 0; r < mat.rows; ++r) {
    const std::uint8_t* src = mat.ptr<std::uint8_t>(r);
    std::uint8_t* dst = image.pixels.data() + static_cast<std::size_t>(r) * mat.cols * out_pixel;
    if (in_pixel == out_pixel) {
      std::memcpy(dst, src, static_cast<std::size_t>(mat.cols) * out_pixel);
    } else {
      for (int c = 0; c < mat.cols; ++c) std::memcpy(dst + c * out_pixel, src + c * in_pixel, out_pixel);
    }
  }
  return true;
}

// The OpenCV type imdecode (IMREAD_UNCHANGED) gives a file with `header` when it is a layout
// DecodedImage stores as it is (8-bit gray or colour, 16-bit gray), else -1.
int direct_type(Format format, const RasterHeader& header) {
  const std::int64_t side_limit = std::numeric_limits<int>::max();
  if (header.width <= 0 || header.height <= 0 || header.width > side_limit || header.height > side_limit) {
    return -1;
  }
  if (format == Format::kPng) {
    if (header.channels == 1 && header.bit_depth == 16) return CV_16UC1;
    if (header.channels == 1 && header.bit_depth == 8) return CV_8UC1;
    if (header.channels == 3 && header.bit_depth == 8) return CV_8UC3;
    return -1;
  }
  if (format == Format::kJpeg && header.bit_depth == 8) {
    if (header.channels == 1) return CV_8UC1;
    if (header.channels == 3) return CV_8UC3;
  }
  return -1;
}

// Notes the header's size in `outcome`; false (and rejected) when the header is cut short or
// declares more pixels than the limit, so nothing large is allocated for it.
bool check_header(Format format, const RasterHeader& header, const ValidationOptions& options,
                  FileOutcome& outcome) {
  if (!header.ok) {
    reject(outcome, Reason::kTruncated, header.detail);
    return false;
  }
  outcome.bits_stored = header.bit_depth;
  if (header.width <= 0 || header.height <= 0) {  // (the division below needs a non-zero side)
    reject(outcome, Reason::kUnreadable,
           "the " + std::string(format_name(format)) + " header declares " + std::to_string(header.width) + "x" +
               std::to_string(header.height) + " pixels: an image needs both sides");
    return false;
  }
  // Sides are up to 2^32 - 1 in a PNG or TIFF header: their product can overflow 64 bits, so
  // the limit is checked by division before anything is multiplied.
  const std::int64_t limit = options.max_pixels;
  if (header.width > limit || header.height > limit || header.width > limit / header.height) {
    const double pixels = static_cast<double>(header.width) * static_cast<double>(header.height);
    std::ostringstream declared;
    declared << pixels;
    reject(outcome, Reason::kTooLarge,
           "the " + std::string(format_name(format)) + " header declares " + std::to_string(header.width) +
               "x" + std::to_string(header.height) + " = " + declared.str() + " pixels; the limit is " +
               std::to_string(options.max_pixels) + " (validate.max_pixels)");
    return false;
  }
  outcome.width = static_cast<int>(header.width);
  outcome.height = static_cast<int>(header.height);
  return true;
}

// The bytes OpenCV is to decode for a file without its end marker, with the marker restored;
// false (and rejected) when the image data is not all there. A JPEG is judged first (libjpeg
// pads missing scan data grey without failing); a PNG is judged by the decode itself, which
// libpng fails unless every row is there (explain_png_failure then says why), so a usable PNG
// costs no second pass.
bool restore_end(Format format, const std::uint8_t* data, std::size_t size,
                 std::vector<std::uint8_t>& restored, FileOutcome& outcome) {
  if (format == Format::kPng) {
    restored = restore_png_end(data, size);
    if (restored.empty()) {  // cut before its image data: OpenCV would fail without saying so
      EndCheck check = check_png_end(data, size);
      reject(outcome, check.reason, std::move(check.detail));
      return false;
    }
    return true;
  }
  EndCheck check = check_jpeg_end(data, size);
  if (!check.complete) {
    reject(outcome, check.reason, std::move(check.detail));
    return false;
  }
  restored = restore_jpeg_end(data, size);
  return true;
}

// After OpenCV failed on a PNG whose IEND was restored: truncated, saying where the data ends,
// when the IDAT stream is short; otherwise OpenCV's rejection stands.
void explain_png_failure(const std::uint8_t* data, std::size_t size, FileOutcome& outcome) {
  EndCheck check = check_png_end(data, size);
  if (!check.complete) reject(outcome, check.reason, std::move(check.detail));
}

// Decodes the pixels through OpenCV into `image`; false (and rejected) when OpenCV cannot, or
// gives a layout medload does not read.
// Eight bytes at each end of a destination buffer, to tell whether a decoder wrote into it.
constexpr std::uint8_t kCanary[8] = {0xA5, 0x3C, 0x5A, 0xC3, 0x96, 0x69, 0x0F, 0xF0};

void mark_canary(std::vector<std::uint8_t>& pixels) {
  if (pixels.size() < 2 * sizeof kCanary) return;
  std::memcpy(pixels.data(), kCanary, sizeof kCanary);
  std::memcpy(pixels.data() + pixels.size() - sizeof kCanary, kCanary, sizeof kCanary);
}

bool has_canary(const std::vector<std::uint8_t>& pixels) {
  return pixels.size() >= 2 * sizeof kCanary && std::memcmp(pixels.data(), kCanary, sizeof kCanary) == 0 &&
         std::memcmp(pixels.data() + pixels.size() - sizeof kCanary, kCanary, sizeof kCanary) == 0;
}

bool decode_pixels(Format format, const RasterHeader& header, const std::uint8_t* data, std::size_t size,
                   FileOutcome& outcome, DecodedImage& image) {
  const std::string name(format_name(format));
  // Where the header promises a layout DecodedImage stores as it is, the decoder writes straight
  // into the image's buffer: no copy of the decoded image, and no second buffer of its size to
  // fault in. imdecode keeps a destination whose size and type match, and allocates its own
  // otherwise (then the pixels are copied below).
  cv::Mat mat;
  if (const int type = direct_type(format, header); type >= 0) {
    image.pixels.resize(static_cast<std::size_t>(header.width * header.height) * CV_ELEM_SIZE(type));
    mat = cv::Mat(static_cast<int>(header.height), static_cast<int>(header.width), type, image.pixels.data());
    mark_canary(image.pixels);
  }
  try {
    const cv::Mat buffer(1, static_cast<int>(size), CV_8U, const_cast<std::uint8_t*>(data));
    cv::imdecode(buffer, cv::IMREAD_UNCHANGED | cv::IMREAD_ANYDEPTH, &mat);
    // imdecode leaves a destination untouched when its decoder refuses the header (a corrupt
    // IHDR CRC, say): a buffer that still carries the canary was most likely never written.
    // Decoding once more into OpenCV's own buffer tells for sure (an image whose first and last
    // bytes happen to equal the canary decodes again, at the cost of one copy).
    if (!mat.empty() && mat.data == image.pixels.data() && has_canary(image.pixels)) {
      mat = cv::imdecode(buffer, cv::IMREAD_UNCHANGED | cv::IMREAD_ANYDEPTH);
    }
  } catch (const cv::Exception& e) {
    reject(outcome, Reason::kUnreadable, "the " + name + " decoder failed: " + e.err);
    return false;
  }
  if (mat.empty()) {
    reject(outcome, Reason::kUnreadable,
           "the " + name + " decoder could not decode the pixel data (" + std::to_string(size) + " bytes, " +
               std::to_string(header.width) + "x" + std::to_string(header.height) + " declared)");
    return false;
  }
  const bool in_place = !image.pixels.empty() && mat.data == image.pixels.data();
  if (in_place) {
    describe(mat, image);
  } else if (!copy_pixels(mat, image)) {
    reject(outcome, Reason::kUnsupported,
           "the " + name + " has " + std::to_string(mat.channels()) + " channels of OpenCV depth " +
               std::to_string(mat.depth()) + "; medload reads 8/16-bit gray, colour or colour+alpha");
    return false;
  }
  image.format = name;
  return true;
}

enum class Pass { kDecoded, kRejected, kNotHandled };

// A JPEG without FF D9 in one pass of libjpeg-turbo (decode_jpeg_without_end), straight into
// the image's buffer, where the header promises a layout that pass decodes as OpenCV would.
Pass decode_jpeg_in_one_pass(const RasterHeader& header, const std::uint8_t* data, std::size_t size,
                             FileOutcome& outcome, DecodedImage& image) {
  const int type = direct_type(Format::kJpeg, header);
  if (type < 0) return Pass::kNotHandled;
  image.pixels.resize(static_cast<std::size_t>(header.width * header.height) * CV_ELEM_SIZE(type));
  const JpegTarget target{image.pixels.data(), static_cast<int>(header.height),
                          static_cast<int>(header.width), CV_MAT_CN(type)};
  bool handled = false;
  EndCheck check = decode_jpeg_without_end(data, size, target, handled);
  if (!handled) return Pass::kNotHandled;
  if (!check.complete) {
    reject(outcome, check.reason, std::move(check.detail));
    return Pass::kRejected;
  }
  describe(cv::Mat(target.height, target.width, type, image.pixels.data()), image);
  image.format = std::string(format_name(Format::kJpeg));
  return Pass::kDecoded;
}

// A file without its end marker (XA frames exported from a DICOM, a cut download): decoded, and
// warned `missing_end_marker`, when all of its image data is there; rejected otherwise.
bool decode_without_end(Format format, const RasterHeader& header, const std::uint8_t* data, std::size_t size,
                        FileOutcome& outcome, DecodedImage& image) {
  const Pass pass = format == Format::kJpeg ? decode_jpeg_in_one_pass(header, data, size, outcome, image)
                                            : Pass::kNotHandled;
  if (pass == Pass::kRejected) return false;
  if (pass == Pass::kNotHandled) {
    std::vector<std::uint8_t> restored;
    if (!restore_end(format, data, size, restored, outcome)) return false;
    if (!decode_pixels(format, header, restored.data(), restored.size(), outcome, image)) {
      if (format == Format::kPng) explain_png_failure(data, size, outcome);
      return false;
    }
  }
  outcome.warnings.emplace_back("missing_end_marker");
  return true;
}

}  // namespace

void decode_raster(Format format, const std::uint8_t* data, std::size_t size,
                   const ValidationOptions& options, FileOutcome& outcome,
                   std::vector<DecodedImage>& frames) {
  const RasterHeader header = read_raster_header(format, data, size);
  if (!check_header(format, header, options, outcome)) return;
  // A file that ends with its end marker is taken as complete: checking costs nothing, so the
  // common case decodes straight from its bytes at full speed.
  DecodedImage image;
  const bool decoded = has_end_marker(format, data, size)
                           ? decode_pixels(format, header, data, size, outcome, image)
                           : decode_without_end(format, header, data, size, outcome, image);
  if (!decoded) return;
  outcome.ok = true;
  outcome.frames = 1;
  outcome.height = image.height;
  outcome.width = image.width;
  outcome.bits_stored = image.bits_stored;
  frames.push_back(std::move(image));
}

}  // namespace medload::loader::detail
