#include <gtest/gtest.h>

#include <sstream>
#include <string>

#include "medload/core/progress.h"

namespace {

TEST(Progress, PlainLinesNameTheWorkAndTheCount) {
  std::ostringstream out;
  {
    medload::Progress progress("scan", 10, "files", medload::ProgressStyle::kLines, &out);
    for (int i = 0; i < 10; ++i) progress.advance();
    progress.finish();
  }
  const std::string text = out.str();
  EXPECT_NE(text.find("scan: 10/10 files (100%)"), std::string::npos) << text;
  EXPECT_EQ(text.find('\r'), std::string::npos) << "plain lines never redraw";
  // The 100% line is printed once, by finish(), with the elapsed time.
  const auto first = text.find("10/10");
  EXPECT_EQ(text.find("10/10", first + 1), std::string::npos) << text;
  EXPECT_NE(text.find(" s\n", first), std::string::npos) << text;
}

TEST(Progress, QuietPrintsNothing) {
  std::ostringstream out;
  medload::Progress progress("build", 3, "images", medload::ProgressStyle::kQuiet, &out);
  progress.advance(3);
  progress.finish();
  EXPECT_EQ(progress.done(), 3u);
  EXPECT_TRUE(out.str().empty());
}

TEST(Progress, BarRedrawsInPlace) {
  std::ostringstream out;
  medload::Progress progress("build", 4, "images", medload::ProgressStyle::kBar, &out);
  progress.advance(4);
  progress.finish();
  EXPECT_NE(out.str().find("\rbuild ["), std::string::npos);
  EXPECT_NE(out.str().find("4/4 images"), std::string::npos);
}

}  // namespace
