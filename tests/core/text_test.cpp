#include <gtest/gtest.h>

#include <string>

#include "medload/core/text.h"

namespace {

TEST(Utf8Text, ValidatesWellFormedUtf8Only) {
  EXPECT_TRUE(medload::is_valid_utf8(""));
  EXPECT_TRUE(medload::is_valid_utf8("H\xC3\xB4pital"));                 // Hôpital
  EXPECT_TRUE(medload::is_valid_utf8("\xE2\x82\xAC \xF0\x9F\x98\x80"));  // € and an emoji
  EXPECT_FALSE(medload::is_valid_utf8("H\xF4pital"));                    // Latin-1 ô
  EXPECT_FALSE(medload::is_valid_utf8("\xC0\xAF"));                      // overlong '/'
  EXPECT_FALSE(medload::is_valid_utf8("\xED\xA0\x80"));                  // a surrogate
  EXPECT_FALSE(medload::is_valid_utf8("\xF4\x90\x80\x80"));              // above U+10FFFF
  EXPECT_FALSE(medload::is_valid_utf8("\xE2\x82"));                      // cut short
}

TEST(Utf8Text, DecodesWindows1252IncludingItsHighControlsRange) {
  EXPECT_EQ(medload::utf8_from_windows1252("H\xF4pital"), "H\xC3\xB4pital");
  EXPECT_EQ(medload::utf8_from_windows1252("\x80"), "\xE2\x82\xAC");  // €
  EXPECT_EQ(medload::utf8_from_windows1252("\x93x\x94"), "\xE2\x80\x9Cx\xE2\x80\x9D");
  EXPECT_EQ(medload::utf8_from_windows1252("\x81"), "\xC2\x81");  // undefined in CP1252: Latin-1
  EXPECT_EQ(medload::utf8_from_windows1252("M\xFCller"), "M\xC3\xBCller");
}

TEST(Utf8Text, RepairsOnlyTheBytesThatAreNotUtf8) {
  bool converted = true;
  EXPECT_EQ(medload::to_valid_utf8("Z\xC3\xBCrich", &converted), "Z\xC3\xBCrich");
  EXPECT_FALSE(converted);
  EXPECT_EQ(medload::to_valid_utf8("Z\xC3\xBCrich/M\xFCller", &converted), "Z\xC3\xBCrich/M\xC3\xBCller");
  EXPECT_TRUE(converted);
  EXPECT_TRUE(medload::is_valid_utf8(medload::to_valid_utf8("\xFF\xFE\xE2\x82")));
}

TEST(Utf8Text, PercentEscapeIsLosslessAndAsciiSafe) {
  const std::string raw = "Z\xC3\xBCrich/M\xFCller 100%.png";
  const std::string escaped = medload::percent_escape_non_utf8(raw);
  EXPECT_EQ(escaped, "Z\xC3\xBCrich/M%FCller 100%25.png");
  EXPECT_TRUE(medload::is_valid_utf8(escaped));
  EXPECT_EQ(medload::percent_unescape(escaped), raw);
  EXPECT_EQ(medload::percent_unescape("%fc%zz%4"), "\xFC%zz%4");
}

}  // namespace
