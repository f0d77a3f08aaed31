#include "medload/core/json_text.h"

#include "medload/core/error.h"
#include "medload/core/regular_file.h"

namespace medload::core {

std::optional<std::string> json_nesting_problem(std::string_view text, int max_depth) {
  int depth = 0;
  bool in_string = false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character, whatever it is
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > max_depth) {
        return "nested deeper than " + std::to_string(max_depth) + " levels at byte " + std::to_string(i);
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return std::nullopt;
}

nlohmann::json parse_json(std::string_view text, std::string* why) {
  if (auto problem = json_nesting_problem(text)) {
    if (why != nullptr) *why = *std::move(problem);
    return nlohmann::json(nlohmann::json::value_t::discarded);
  }
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    if (why != nullptr) *why = e.what();
    return nlohmann::json(nlohmann::json::value_t::discarded);
  }
}

nlohmann::json read_json_file(const std::string& path, const std::string& what) {
  std::string why;
  nlohmann::json j = parse_json(read_regular_file(path, what, kMaxJsonFileBytes), &why);
  if (j.is_discarded()) throw ConfigError(what + " " + path + " is not valid JSON: " + why);
  return j;
}

}  // namespace medload::core
