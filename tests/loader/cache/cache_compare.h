#pragma once
// Comparing two caches' content: the same images (bytes), labels, paths, frames and order.

#include <gtest/gtest.h>

#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include "medload/loader/cache/cache_reader.h"

namespace medload::loader::test {

/// A whole file's bytes.
inline std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

/// Expects `a` and `b` to hold the same samples in the same order (every table and image).
inline void expect_same_content(const std::string& a, const std::string& b) {
  const CacheReader x(a);
  const CacheReader y(b);
  ASSERT_EQ(x.size(), y.size()) << a << " vs " << b;
  EXPECT_EQ(x.height(), y.height());
  EXPECT_EQ(x.channels(), y.channels());
  EXPECT_EQ(x.class_names(), y.class_names());
  EXPECT_EQ(x.labels(), y.labels());
  EXPECT_EQ(x.label_matrix(), y.label_matrix());
  EXPECT_EQ(x.source_paths(), y.source_paths());
  EXPECT_EQ(x.source_hashes(), y.source_hashes());
  EXPECT_EQ(x.patient_ids(), y.patient_ids());
  EXPECT_EQ(x.sites(), y.sites());
  EXPECT_EQ(x.frame_indices(), y.frame_indices());
  EXPECT_EQ(x.checksums(), y.checksums());
  EXPECT_EQ(x.config_hash(), y.config_hash());
  EXPECT_EQ(x.meta_names(), y.meta_names());
  for (const auto& name : x.meta_names()) {
    const auto mx = x.meta(name);
    const auto my = y.meta(name);
    EXPECT_EQ(mx.text, my.text) << name;
    EXPECT_EQ(mx.imputed, my.imputed) << name;
    ASSERT_EQ(mx.values.size(), my.values.size()) << name;
    for (std::size_t i = 0; i < mx.values.size(); ++i) {
      EXPECT_TRUE(mx.values[i] == my.values[i] ||
                  (mx.values[i] != mx.values[i] && my.values[i] != my.values[i]))
          << name << "[" << i << "]";
    }
  }
  const auto rx = x.rejected();
  const auto ry = y.rejected();
  ASSERT_EQ(rx.size(), ry.size());
  for (std::size_t i = 0; i < rx.size(); ++i) {
    EXPECT_EQ(rx[i].path, ry[i].path);
    EXPECT_EQ(rx[i].reason, ry[i].reason);
  }
  std::vector<std::uint8_t> ix(x.image_bytes()), iy(y.image_bytes());
  for (std::size_t i = 0; i < x.size(); ++i) {
    x.read_image(i, ix.data());
    y.read_image(i, iy.data());
    EXPECT_EQ(ix, iy) << "image " << i;
    const auto gx = x.geometry(i);
    const auto gy = y.geometry(i);
    EXPECT_EQ(gx.crop_w, gy.crop_w);
    EXPECT_EQ(gx.pad_top, gy.pad_top);
    EXPECT_DOUBLE_EQ(gx.scale, gy.scale);
  }
}

}  // namespace medload::loader::test
