// The default chain on the real images of the corpus (scripts/fetch_corpus.sh): every readable
// raster image gives a well-formed output whose geometry stays inside the original. Skipped when
// the corpus is absent, unless MEDLOAD_REQUIRE_CORPUS=1. MEDLOAD_CORPUS_DIR in the environment
// points the test at another folder.

#include <gtest/gtest.h>
#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <set>
#include <string>
#include <vector>

#include "medload/loader/preprocess/preprocess.h"

namespace medload::loader {
namespace {

namespace fs = std::filesystem;

std::string corpus_dir() {
  const char* env = std::getenv("MEDLOAD_CORPUS_DIR");
  return env && *env ? env : MEDLOAD_CORPUS_DIR;
}

bool corpus_required() {
  const char* env = std::getenv("MEDLOAD_REQUIRE_CORPUS");
  return env && std::string(env) == "1";
}

std::vector<fs::path> raster_files(std::size_t limit) {
  std::vector<fs::path> files;
  std::error_code ec;
  if (!fs::is_directory(corpus_dir(), ec)) return files;
  for (const auto& entry : fs::recursive_directory_iterator(corpus_dir(), ec)) {
    if (!entry.is_regular_file()) continue;
    std::string ext = entry.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    if (ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".tif" || ext == ".tiff") {
      files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  // An even spread over the sorted list, so every source of the corpus is sampled.
  if (files.size() > limit) {
    std::vector<fs::path> spread;
    for (std::size_t i = 0; i < limit; ++i) spread.push_back(files[i * files.size() / limit]);
    files = spread;
  }
  return files;
}

// Reads an 8/16-bit gray or colour raster as a DecodedImage; false when OpenCV cannot.
bool read_raster(const fs::path& path, DecodedImage& img) {
  const cv::Mat m = cv::imread(path.string(), cv::IMREAD_UNCHANGED);
  if (m.empty() || (m.channels() != 1 && m.channels() != 3)) return false;
  if (m.depth() != CV_8U && m.depth() != CV_16U) return false;
  img.height = m.rows;
  img.width = m.cols;
  img.channels = m.channels();
  img.type = m.depth() == CV_8U ? PixelType::kUInt8 : PixelType::kUInt16;
  img.bits_stored = m.depth() == CV_8U ? 8 : 16;
  img.source_path = path.string();
  const std::size_t row = m.cols * m.elemSize();
  img.pixels.resize(row * m.rows);
  for (int r = 0; r < m.rows; ++r) std::memcpy(img.pixels.data() + row * r, m.ptr(r), row);
  return true;
}

TEST(PreprocessCorpus, DefaultChainGivesWellFormedOutputOnRealImages) {
  const auto files = raster_files(40);
  if (files.empty()) {
    if (corpus_required()) FAIL() << "no raster images under " << corpus_dir();
    GTEST_SKIP() << "no corpus under " << corpus_dir() << " (scripts/fetch_corpus.sh fetches it)";
  }
  PreprocessOptions o8;
  PreprocessOptions o16;
  o16.output_dtype = PixelType::kUInt16;
  int processed = 0;
  for (const auto& path : files) {
    DecodedImage img;
    if (!read_raster(path, img)) continue;  // the corpus holds deliberately broken files too
    ++processed;
    for (const auto* o : {&o8, &o16}) {
      const auto out = preprocess(img, *o);
      SCOPED_TRACE(path.string());
      EXPECT_EQ(out.height, 256);
      EXPECT_EQ(out.width, 256);
      EXPECT_EQ(out.channels, 1);
      EXPECT_EQ(out.pixels.size(),
                256u * 256u * static_cast<std::size_t>(bytes_per_element(o->output_dtype)));
      const auto& g = out.geometry;
      EXPECT_GE(g.crop_x, 0);
      EXPECT_GE(g.crop_y, 0);
      EXPECT_LE(g.crop_x + g.crop_w, img.width);
      EXPECT_LE(g.crop_y + g.crop_h, img.height);
      EXPECT_EQ(g.pad_left + g.pad_right == 0 || g.pad_top + g.pad_bottom == 0, true);
      // The far corner of the content maps inside the crop box.
      double x = 0, y = 0;
      g.map_to_original(256 - g.pad_right, 256 - g.pad_bottom, x, y);
      EXPECT_NEAR(x, g.crop_x + g.crop_w, 0.5 / g.scale + 1e-9);
      EXPECT_NEAR(y, g.crop_y + g.crop_h, 0.5 / g.scale + 1e-9);
      // Deterministic.
      EXPECT_EQ(preprocess(img, *o).pixels, out.pixels);
    }
  }
  if (processed == 0 && corpus_required()) FAIL() << "no readable raster image under " << corpus_dir();
  RecordProperty("images", processed);
}

TEST(PreprocessCorpus, CropsTheBlackSurroundOfAFundusPhoto) {
  // skimage's retina.jpg: a real fundus photograph (1411 x 1411, colour), a round field of view
  // on black. The crop must keep the whole field and cut the black.
  fs::path retina;
  std::error_code ec;
  if (fs::is_directory(corpus_dir(), ec)) {
    for (const auto& entry : fs::recursive_directory_iterator(corpus_dir(), ec)) {
      if (entry.path().filename() == "retina.jpg") retina = entry.path();
    }
  }
  DecodedImage img;
  if (retina.empty() || !read_raster(retina, img)) {
    if (corpus_required()) FAIL() << "retina.jpg is missing from " << corpus_dir();
    GTEST_SKIP() << "retina.jpg not in the corpus";
  }
  PreprocessOptions o;
  o.roi_crop.margin = 0;
  const auto out = preprocess(img, o);
  const auto& g = out.geometry;
  EXPECT_FALSE(out.roi_fallback);
  RecordProperty("crop", g.to_json().dump());
  // The field of view is a disc; the box is its bounding square, so nearly square, and smaller
  // than the frame.
  EXPECT_LT(g.crop_w * g.crop_h, img.width * img.height);
  EXPECT_NEAR(static_cast<double>(g.crop_w) / g.crop_h, 1.0, 0.1);
}

}  // namespace
}  // namespace medload::loader
