#pragma once
// Helpers shared by the cache tests: temporary folders, generated images and trees, build options.

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "medload/loader/cache/build.h"
#include "medload_test/temp_dir.h"

namespace medload::loader::test {

using medload::test::TempDir;

/// Writes a distinct, non-blank grayscale PNG (a gradient and a disc placed by `seed`, under
/// noise), creating its folder. 16-bit when `sixteen_bit`.
inline void write_png(const std::string& path, int seed, int width = 96, int height = 80,
                      bool sixteen_bit = false) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  // Structure (a gradient and a disc that follow the seed) under noise: pure noise is `blank`.
  cv::RNG rng(static_cast<std::uint64_t>(seed) * 7919u + 17u);
  const double top = sixteen_bit ? 4095 : 255;
  cv::Mat noise(height, width, CV_64FC1);
  rng.fill(noise, cv::RNG::UNIFORM, 0, top / 8);
  const double angle = seed * 0.7;
  cv::Mat image(height, width, sixteen_bit ? CV_16UC1 : CV_8UC1);
  for (int r = 0; r < height; ++r) {
    for (int c = 0; c < width; ++c) {
      const double t = (std::cos(angle) * c / width + std::sin(angle) * r / height + 1.5) / 3.0;
      const int dr = r - (seed * 53) % height, dc = c - (seed * 37) % width, radius = 8 + (seed * 13) % 15;
      const double disc = dr * dr + dc * dc < radius * radius ? top / 4 : 0.0;
      const double v = 0.6 * top * t + disc + noise.at<double>(r, c);
      if (sixteen_bit) {
        image.at<std::uint16_t>(r, c) = cv::saturate_cast<std::uint16_t>(v);
      } else {
        image.at<std::uint8_t>(r, c) = cv::saturate_cast<std::uint8_t>(v);
      }
    }
  }
  if (!cv::imwrite(path, image)) throw std::runtime_error("cannot write " + path);
}

/// Writes a file with the given bytes.
inline void write_bytes(const std::string& path, const std::string& bytes) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << bytes;
}

/// A folder tree of `per_class` images in each class folder, seeds starting at `seed`.
inline void write_tree(const std::string& root, const std::vector<std::string>& classes, int per_class,
                       int seed = 0) {
  for (const auto& name : classes) {
    for (int i = 0; i < per_class; ++i) {
      write_png(root + "/" + name + "/img" + std::to_string(seed) + ".png", seed);
      ++seed;
    }
  }
}

/// Options of a small, quiet test build of `root` into `output`: two threads, decoding in
/// process, images letterboxed to `size` pixels. Callers add a manifest, batch sizes, ...
inline BuildOptions quiet_build_options(const std::string& root, const std::string& output, int size) {
  BuildOptions options;
  options.root = root;
  options.output = output;
  options.threads = 2;
  options.progress = ProgressStyle::kQuiet;
  options.config.preprocess.letterbox.size = size;
  options.config.validate.isolation = Isolation::kInProcess;
  return options;
}

}  // namespace medload::loader::test
