// A cache built from the real corpus (scripts/fetch_corpus.sh): every kept image verifies, labels
// are the manifest's modalities, rejected files carry reason codes, and a rebuild decodes only
// what it could not reuse. Skipped when the corpus is missing, unless MEDLOAD_REQUIRE_CORPUS=1.

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <set>

#include "medload/loader/cache/build.h"
#include "medload/loader/cache/cache_reader.h"
#include "test_util.h"

TEST(CorpusBuild, RealImagesBuildVerifyAndRebuildIncrementally) {
  const std::string corpus = MEDLOAD_CORPUS_DIR;
  if (!std::filesystem::exists(corpus + "/manifest.csv")) {
    const char* require = std::getenv("MEDLOAD_REQUIRE_CORPUS");
    if (require != nullptr && std::string(require) == "1") FAIL() << "the corpus is missing: " << corpus;
    GTEST_SKIP() << "the corpus is missing (run scripts/fetch_corpus.sh): " << corpus;
  }
  medload::loader::test::TempDir dir;
  medload::loader::BuildOptions options;
  options.root = corpus;
  options.manifest = corpus + "/manifest.csv";
  options.output = dir.path("corpus.h5");
  options.threads = 2;
  options.progress = medload::ProgressStyle::kQuiet;
  options.config.preprocess.letterbox.size = 64;  // decoders stay in forked workers: some files abort GDCM
  const auto first = medload::loader::build_cache(options);
  EXPECT_GT(first.images, 300u);
  EXPECT_GT(first.rejected_files, 0u);
  EXPECT_EQ(first.ok_files + first.rejected_files, first.sources);

  const medload::loader::CacheReader reader(options.output);
  EXPECT_EQ(reader.size(), first.images);
  const std::set<std::string> classes(reader.class_names().begin(), reader.class_names().end());
  EXPECT_TRUE(classes.count("CT") && classes.count("MR") && classes.count("XA"));
  for (std::size_t i = 0; i < reader.size(); ++i) ASSERT_TRUE(reader.verify(i)) << reader.source_paths()[i];
  std::set<std::string> reasons;
  for (const auto& r : reader.rejected()) reasons.insert(r.reason);
  EXPECT_TRUE(reasons.count("blank")) << "the corpus has all-black MR slices";
  EXPECT_TRUE(reasons.count("duplicate"));

  const auto second = medload::loader::build_cache(options);
  EXPECT_EQ(second.images, first.images);
  EXPECT_EQ(second.reused_files, first.ok_files);
  EXPECT_LT(second.decoded_files, first.sources / 4);
}
