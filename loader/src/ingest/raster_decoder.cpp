// Raster decoding. OpenCV stays inside this file; pixel conversions after decoding are plain
// loops, because this code runs in forked workers where OpenCV's thread pool must not be used.

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <cstring>
#include <limits>

#include "decoders.h"

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

}  // namespace

void decode_raster(Format format, const std::uint8_t* data, std::size_t size,
                   const ValidationOptions& options, FileOutcome& outcome,
                   std::vector<DecodedImage>& frames) {
  const RasterHeader header = read_raster_header(format, data, size);
  const std::string name(format_name(format));
  if (!header.ok) {
    reject(outcome, Reason::kTruncated, header.detail);
    return;
  }
  outcome.width = static_cast<int>(header.width);
  outcome.height = static_cast<int>(header.height);
  outcome.bits_stored = header.bit_depth;
  const std::int64_t pixels = header.width * header.height;
  if (pixels > options.max_pixels) {
    reject(outcome, Reason::kTooLarge,
           "the " + name + " header declares " + std::to_string(header.width) + "x" +
               std::to_string(header.height) + " = " + std::to_string(pixels) + " pixels; the limit is " +
               std::to_string(options.max_pixels) + " (validate.max_pixels)");
    return;
  }
  if (!has_end_marker(format, data, size)) {
    reject(outcome, Reason::kTruncated,
           "the " + name + " data ends after " + std::to_string(size) + " bytes without its end marker (" +
               (format == Format::kPng ? std::string("IEND chunk") : std::string("end-of-image FF D9")) +
               ")");
    return;
  }
  // Where the header promises a layout DecodedImage stores as it is, the decoder writes straight
  // into the image's buffer: no copy of the decoded image, and no second buffer of its size to
  // fault in. imdecode keeps a destination whose size and type match, and allocates its own
  // otherwise (then the pixels are copied below).
  DecodedImage image;
  cv::Mat mat;
  if (const int type = direct_type(format, header); type >= 0) {
    image.pixels.resize(static_cast<std::size_t>(pixels) * CV_ELEM_SIZE(type));
    mat = cv::Mat(static_cast<int>(header.height), static_cast<int>(header.width), type, image.pixels.data());
  }
  try {
    const cv::Mat buffer(1, static_cast<int>(size), CV_8U, const_cast<std::uint8_t*>(data));
    cv::imdecode(buffer, cv::IMREAD_UNCHANGED | cv::IMREAD_ANYDEPTH, &mat);
  } catch (const cv::Exception& e) {
    reject(outcome, Reason::kUnreadable, "the " + name + " decoder failed: " + e.err);
    return;
  }
  if (mat.empty()) {
    reject(outcome, Reason::kUnreadable,
           "the " + name + " decoder could not decode the pixel data (" + std::to_string(size) + " bytes, " +
               std::to_string(header.width) + "x" + std::to_string(header.height) + " declared)");
    return;
  }
  const bool in_place = !image.pixels.empty() && mat.data == image.pixels.data();
  if (in_place) {
    describe(mat, image);
  } else if (!copy_pixels(mat, image)) {
    reject(outcome, Reason::kUnsupported,
           "the " + name + " has " + std::to_string(mat.channels()) + " channels of OpenCV depth " +
               std::to_string(mat.depth()) + "; medload reads 8/16-bit gray, colour or colour+alpha");
    return;
  }
  image.format = name;
  outcome.ok = true;
  outcome.frames = 1;
  outcome.height = image.height;
  outcome.width = image.width;
  outcome.bits_stored = image.bits_stored;
  frames.push_back(std::move(image));
}

}  // namespace medload::loader::detail
