#include "integer_options.h"

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <limits>
#include <string>
#include <system_error>

#include "medload/core/text.h"

namespace medload::cli {

namespace {

// Refuses anything but decimal digits (and a leading '-' when `is_unsigned` is false) within the
// type's range; drops leading zeros.
CLI::Validator decimal_integer(bool is_unsigned) {
  return CLI::Validator(
      [is_unsigned](std::string& text) -> std::string {
        const bool negative = !text.empty() && text[0] == '-';
        const std::size_t first = negative ? 1 : 0;
        const bool digits =
            text.size() > first && std::all_of(text.begin() + static_cast<std::ptrdiff_t>(first), text.end(),
                                               [](char c) { return c >= '0' && c <= '9'; });
        if (!digits) return "\"" + to_valid_utf8(text) + "\" is not a whole number in decimal digits";
        if (negative && is_unsigned) return text + " is negative; a whole number from 0 is expected";
        const std::size_t lead = std::min(text.find_first_not_of('0', first), text.size() - 1);
        text.erase(first, lead - first);
        const char* const end = text.data() + text.size();
        bool in_range = false;
        if (is_unsigned) {
          std::uint64_t value = 0;
          in_range = std::from_chars(text.data(), end, value).ec == std::errc();
        } else {
          std::int64_t value = 0;
          in_range = std::from_chars(text.data(), end, value).ec == std::errc();
        }
        if (!in_range) {
          return text + " is out of range (" +
                 (is_unsigned ? "at most " + std::to_string(std::numeric_limits<std::uint64_t>::max())
                              : std::to_string(std::numeric_limits<std::int64_t>::min()) + " to " +
                                    std::to_string(std::numeric_limits<std::int64_t>::max())) +
                 ")";
        }
        return {};
      },
      "", "decimal integer");
}

}  // namespace

void require_decimal_integers(CLI::App& app) {
  for (CLI::Option* option : app.get_options()) {
    const std::string type = option->get_type_name();
    if (type.rfind("UINT", 0) == 0) {
      option->transform(decimal_integer(true));
    } else if (type.rfind("INT", 0) == 0) {
      option->transform(decimal_integer(false));
    }
  }
  for (CLI::App* command : app.get_subcommands({})) require_decimal_integers(*command);
}

}  // namespace medload::cli
