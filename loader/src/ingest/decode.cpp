// decode_file: one file from bytes to validated frames. Used in-process and inside the forked
// workers of the Scanner.

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>
#include <type_traits>

#include "decoders.h"
#include "medload/core/hash.h"
#include "medload/loader/ingest/scanner.h"
#include "scan_internal.h"

namespace medload::loader {

namespace detail {

namespace {

// Sum and sum of squares of integer pixel values, exactly. 8-bit values are summed in 32-bit
// lanes over blocks small enough not to overflow, which the compiler vectorises; a double
// accumulator (each addition waiting for the one before) took 10 % of a 2048 px JPEG build.
template <typename T>
void integer_moments(const T* p, std::size_t count, __int128& sum, unsigned __int128& sum_sq) {
  // 65536 values of at most 255^2 sum to less than 2^32.
  constexpr std::size_t kBlock = sizeof(T) == 1 ? std::size_t{1} << 16 : std::size_t{1} << 30;
  // Values widen to Value (signed for int16), their squares to Square.
  using Square = std::conditional_t<sizeof(T) == 1, std::uint32_t, std::uint64_t>;
  using Value = std::conditional_t<sizeof(T) == 1, std::uint32_t, std::int64_t>;
  for (std::size_t start = 0; start < count; start += kBlock) {
    const std::size_t end = std::min(count, start + kBlock);
    Value s = 0;
    Square q = 0;
    for (std::size_t i = start; i < end; ++i) {
      const Value v = static_cast<Value>(p[i]);
      s += v;
      q += static_cast<Square>(v * v);
    }
    sum += s;
    sum_sq += q;
  }
}

// Standard deviation of a frame's values over all channels. Integer frames are summed exactly;
// float frames in a fixed order, so the result (and the blank decision) is the same on every run.
double pixel_std(const DecodedImage& image) {
  const std::size_t count = static_cast<std::size_t>(image.height) * image.width * image.channels;
  if (count == 0) return 0;
  const std::uint8_t* const bytes = image.pixels.data();
  if (image.type == PixelType::kFloat32) {
    const float* p = reinterpret_cast<const float*>(bytes);
    double sum = 0, sum_sq = 0;
    for (std::size_t i = 0; i < count; ++i) {
      const double v = p[i];
      sum += v;
      sum_sq += v * v;
    }
    const double mean = sum / static_cast<double>(count);
    return std::sqrt(std::max(0.0, sum_sq / static_cast<double>(count) - mean * mean));
  }
  __int128 sum = 0;
  unsigned __int128 sum_sq = 0;
  switch (image.type) {
    case PixelType::kUInt8:
      integer_moments(bytes, count, sum, sum_sq);
      break;
    case PixelType::kUInt16:
      integer_moments(reinterpret_cast<const std::uint16_t*>(bytes), count, sum, sum_sq);
      break;
    case PixelType::kInt16:
      integer_moments(reinterpret_cast<const std::int16_t*>(bytes), count, sum, sum_sq);
      break;
    case PixelType::kFloat32:
      break;
  }
  // count^2 * variance = count * sum_sq - sum^2, exact in 128 bits for up to 2^32 16-bit values.
  const unsigned __int128 n = count;
  const auto magnitude = static_cast<unsigned __int128>(sum < 0 ? -sum : sum);
  const unsigned __int128 scaled = n * sum_sq - magnitude * magnitude;
  return std::sqrt(static_cast<double>(scaled)) / static_cast<double>(count);
}

std::string format_double(double v) {
  std::ostringstream out;
  out.precision(3);
  out << v;
  return out.str();
}

void fill_missing(std::string& field, const std::string& from_header) {
  if (field.empty()) field = from_header;
}

}  // namespace

bool read_file_bytes(const std::string& path, std::vector<std::uint8_t>& bytes, std::string& error) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) {
    error = std::strerror(errno);
    return false;
  }
  const std::streamoff size = in.tellg();
  if (size < 0) {
    error = "cannot tell its size";
    return false;
  }
  bytes.resize(static_cast<std::size_t>(size));
  in.seekg(0);
  if (size > 0 && !in.read(reinterpret_cast<char*>(bytes.data()), size)) {
    error = "read failed after " + std::to_string(in.gcount()) + " bytes";
    return false;
  }
  return true;
}

void validate_frames(const ValidationOptions& options, FileOutcome& outcome,
                     std::vector<DecodedImage>& frames) {
  if (!outcome.ok || frames.empty()) return;
  const DecodedImage& first = frames.front();
  if (std::min(first.height, first.width) < options.min_side) {
    reject(outcome, Reason::kTooSmall,
           std::to_string(first.width) + "x" + std::to_string(first.height) +
               " pixels; the smallest side must be at least " + std::to_string(options.min_side) +
               " (validate.min_side)");
    frames.clear();
    return;
  }
  // Blank: every frame constant or nearly so, relative to the value range of its bit depth.
  double largest_fraction = 0;
  for (const auto& frame : frames) {
    const int bits = std::clamp(frame.bits_stored, 1, 32);
    const double range = std::ldexp(1.0, bits) - 1;
    largest_fraction = std::max(largest_fraction, pixel_std(frame) / range);
    if (largest_fraction > options.blank_std_fraction) break;
  }
  if (largest_fraction <= options.blank_std_fraction) {
    reject(outcome, Reason::kBlank,
           (frames.size() > 1 ? "every frame is" : std::string("the image is")) +
               std::string(" constant or nearly so: pixel standard deviation ") +
               format_double(largest_fraction * 100) + "% of the " + std::to_string(first.bits_stored) +
               "-bit range (limit " + format_double(options.blank_std_fraction * 100) +
               "%, validate.blank_std_fraction)");
    frames.clear();
    return;
  }
  std::uint64_t h = 0;
  for (const auto& frame : frames) {
    const std::uint64_t shape[] = {
        static_cast<std::uint64_t>(frame.height), static_cast<std::uint64_t>(frame.width),
        static_cast<std::uint64_t>(frame.channels), static_cast<std::uint64_t>(frame.type)};
    h = hash64(shape, sizeof shape, h);
    h = hash64(frame.pixels.data(), frame.pixels.size(), h);
  }
  outcome.pixel_hash = h;
}

}  // namespace detail

FileOutcome decode_file(const SourceFile& source, const ValidationOptions& options,
                        std::vector<DecodedImage>& frames) {
  using detail::Format;
  FileOutcome outcome;
  outcome.path = source.report_path;
  std::vector<std::uint8_t> bytes;
  std::string error;
  if (!detail::read_file_bytes(source.path, bytes, error)) {
    detail::reject(outcome, Reason::kUnreadable, "cannot read the file: " + error);
    return outcome;
  }
  if (bytes.empty()) {
    detail::reject(outcome, Reason::kEmptyFile, "the file has 0 bytes");
    return outcome;
  }
  outcome.content_hash = hash64(bytes.data(), bytes.size(), 0);
  const Format format = detail::sniff_format(bytes.data(), bytes.size());
  if (format == Format::kUnknown) {
    std::ostringstream first;
    for (std::size_t i = 0; i < std::min<std::size_t>(8, bytes.size()); ++i) {
      first << (i ? " " : "") << std::hex << (bytes[i] >> 4) << (bytes[i] & 15);
    }
    detail::reject(outcome, Reason::kUnreadable,
                   "not an image format medload reads (PNG, JPEG, TIFF, BMP, DICOM); the file starts with " +
                       first.str());
    return outcome;
  }
  outcome.format = std::string(detail::format_name(format));
  const Format promised = detail::format_from_extension(source.path);
  if (promised != Format::kUnknown && promised != format) outcome.warnings.emplace_back("extension_mismatch");

  SampleInfo info = source.info;
  std::vector<DecodedImage> decoded;
  if (format == Format::kDicom) {
    SampleInfo header;
    detail::decode_dicom(source.path, bytes.data(), bytes.size(), options, outcome, decoded, header);
    // The manifest wins; the header fills what it leaves empty.
    detail::fill_missing(info.patient_id, header.patient_id);
    detail::fill_missing(info.modality, header.modality);
    detail::fill_missing(info.series_uid, header.series_uid);
    detail::fill_missing(info.view, header.view);
    detail::fill_missing(info.site, header.site);
  } else {
    detail::decode_raster(format, bytes.data(), bytes.size(), options, outcome, decoded);
  }
  detail::validate_frames(options, outcome, decoded);
  for (auto& frame : decoded) {
    frame.source_path = source.report_path;
    frame.source_hash = outcome.content_hash;
    frame.info = info;
    frames.push_back(std::move(frame));
  }
  return outcome;
}

}  // namespace medload::loader
