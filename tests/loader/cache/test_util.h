#pragma once
// Helpers shared by the cache tests: temporary folders, generated images and trees.

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "medload_test/temp_dir.h"

namespace medload::loader::test {

using medload::test::TempDir;

/// Writes a distinct, non-blank grayscale PNG (random blobs on noise, fixed by `seed`), creating
/// its folder. 16-bit when `sixteen_bit`.
inline void write_png(const std::string& path, int seed, int width = 96, int height = 80,
                      bool sixteen_bit = false) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  cv::RNG rng(static_cast<std::uint64_t>(seed) * 7919u + 17u);
  cv::Mat image(height, width, sixteen_bit ? CV_16UC1 : CV_8UC1);
  rng.fill(image, cv::RNG::UNIFORM, 0, sixteen_bit ? 4096 : 256);
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

}  // namespace medload::loader::test
