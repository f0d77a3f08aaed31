// Raster decoding. OpenCV stays inside this file; pixel conversions after decoding are plain
// loops, because this code runs in forked workers where OpenCV's thread pool must not be used.

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <cstring>

#include "decoders.h"

namespace medload::loader::detail {

namespace {

// Copies `mat` into `image`, dropping an alpha channel.
bool copy_pixels(const cv::Mat& mat, DecodedImage& image) {
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
  const std::size_t elem = static_cast<std::size_t>(bytes_per_element(image.type));
  const std::size_t out_pixel = elem * static_cast<std::size_t>(image.channels);
  const std::size_t in_pixel = elem * static_cast<std::size_t>(in_channels);
  image.bits_stored = depth == CV_8U ? 8 : depth == CV_32F ? 32 : 16;
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
  cv::Mat mat;
  try {
    const cv::Mat buffer(1, static_cast<int>(size), CV_8U, const_cast<std::uint8_t*>(data));
    mat = cv::imdecode(buffer, cv::IMREAD_UNCHANGED | cv::IMREAD_ANYDEPTH);
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
  DecodedImage image;
  if (!copy_pixels(mat, image)) {
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
