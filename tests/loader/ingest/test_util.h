#pragma once
// Helpers for the ingest tests: temporary folders, generated files, running the medload command.

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include "medload/loader/ingest/scanner.h"
#include "medload_test/command.h"
#include "medload_test/temp_dir.h"

namespace medload::test {

namespace fs = std::filesystem;

inline void write_bytes(const std::string& path, const std::string& bytes) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

/// A gray image with structure (a gradient plus noise), different for each seed.
inline cv::Mat textured(int rows, int cols, int type, unsigned seed) {
  cv::Mat m(rows, cols, type);
  std::mt19937 rng(seed);
  const double top = CV_MAT_DEPTH(type) == CV_16U ? 4095 : 255;
  std::uniform_real_distribution<double> noise(0, top / 8);
  for (int r = 0; r < rows; ++r) {
    for (int c = 0; c < cols; ++c) {
      const double v = top * 0.7 * (r + c) / (rows + cols) + noise(rng);
      for (int ch = 0; ch < m.channels(); ++ch) {
        if (CV_MAT_DEPTH(type) == CV_16U) {
          m.ptr<std::uint16_t>(r)[c * m.channels() + ch] = static_cast<std::uint16_t>(v);
        } else {
          m.ptr<std::uint8_t>(r)[c * m.channels() + ch] = static_cast<std::uint8_t>(v);
        }
      }
    }
  }
  return m;
}

inline void write_image(const std::string& path, const cv::Mat& m, const std::string& ext = ".png") {
  fs::create_directories(fs::path(path).parent_path());
  std::vector<std::uint8_t> buffer;
  cv::imencode(ext, m, buffer);
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(buffer.data()), static_cast<std::streamsize>(buffer.size()));
}

inline std::string fixture(const std::string& name) { return std::string(MEDLOAD_FIXTURES_DIR) + "/" + name; }

/// Whether the outcome carries the warning `code`.
inline bool has_warning(const loader::FileOutcome& o, const std::string& code) {
  return std::find(o.warnings.begin(), o.warnings.end(), code) != o.warnings.end();
}

/// Decodes `path` in process for tests about pixel values: any side allowed, and only a constant
/// image is blank.
inline loader::FileOutcome decode_path(const std::string& path, std::vector<loader::DecodedImage>& frames) {
  loader::SourceFile source;
  source.path = path;
  source.report_path = path;
  loader::ValidationOptions options;
  options.min_side = 1;
  options.blank_contrast_to_noise = 0;
  return loader::decode_file(source, options, frames);
}

}  // namespace medload::test
