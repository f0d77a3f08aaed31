// JSON from outside the process is refused when it nests deeper than kMaxJsonDepth: parsed, such
// text crashed whatever walked it recursively afterwards (nlohmann's dump in an error message).

#include <gtest/gtest.h>

#include <string>

#include "medload/core/json_text.h"

namespace {

using medload::core::json_nesting_problem;
using medload::core::kMaxJsonDepth;
using medload::core::parse_json;

std::string nested(int depth) { return std::string(depth, '[') + std::string(depth, ']'); }

TEST(JsonText, NestingUpToTheLimitParsesOneDeeperIsRefused) {
  EXPECT_FALSE(json_nesting_problem(nested(kMaxJsonDepth)));
  EXPECT_FALSE(parse_json(nested(kMaxJsonDepth)).is_discarded());
  const auto problem = json_nesting_problem(nested(kMaxJsonDepth + 1));
  ASSERT_TRUE(problem);
  EXPECT_EQ(*problem, "nested deeper than 64 levels at byte 64");
  std::string why;
  EXPECT_TRUE(parse_json(nested(kMaxJsonDepth + 1), &why).is_discarded());
  EXPECT_EQ(why, "nested deeper than 64 levels at byte 64");
  // Objects count as arrays do.
  std::string objects;
  for (int i = 0; i <= kMaxJsonDepth; ++i) objects += "{\"a\":";
  objects += "1" + std::string(kMaxJsonDepth + 1, '}');
  EXPECT_TRUE(parse_json(objects).is_discarded());
}

TEST(JsonText, AMillionLevelsAreRefusedWithoutParsing) {
  std::string why;
  EXPECT_TRUE(parse_json(nested(1000000), &why).is_discarded());
  EXPECT_NE(why.find("nested deeper than 64 levels"), std::string::npos);
}

TEST(JsonText, BracketsInsideStringsDoNotCount) {
  const std::string text = "{\"a\": \"" + std::string(200, '[') + "\\\"" + std::string(200, '{') + "\"}";
  EXPECT_FALSE(json_nesting_problem(text));
  const auto j = parse_json(text);
  ASSERT_TRUE(j.is_object());
  EXPECT_EQ(j.at("a").get<std::string>().size(), 401u);
  // An escaped backslash before the closing quote ends the string: the brackets after it count.
  EXPECT_TRUE(json_nesting_problem("[\"\\\\\"" + nested(kMaxJsonDepth) + "]"));
}

TEST(JsonText, InvalidJsonIsDiscardedWithTheParsersReason) {
  std::string why;
  EXPECT_TRUE(parse_json("{\"a\": ", &why).is_discarded());
  EXPECT_NE(why.find("parse error"), std::string::npos) << why;
  EXPECT_TRUE(parse_json("\xff", &why).is_discarded());
  EXPECT_TRUE(parse_json("", &why).is_discarded());
  EXPECT_EQ(parse_json("{\"a\": [1, 2]}").at("a").size(), 2u);
}

}  // namespace
