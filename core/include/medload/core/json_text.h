#pragma once
/// Parsing JSON text that comes from outside this process: config files, class maps, site maps,
/// the attributes of a cache, applied parameters, checkpoints. Such text may be crafted: nested
/// 100,000 levels deep, it parses, but whatever walks the value recursively afterwards
/// (nlohmann's dump() in an error message, medload's own walkers) overflows the stack. medload's
/// documents nest a few levels; text nested deeper than kMaxJsonDepth is refused before parsing.

#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace medload::core {

/// The deepest nesting of arrays and objects medload accepts in JSON text.
inline constexpr int kMaxJsonDepth = 64;
/// The largest JSON file medload reads whole (a pipeline or augmentation config, a class map, a
/// site map: each a few kilobytes in practice).
inline constexpr std::uint64_t kMaxJsonFileBytes = std::uint64_t{64} << 20;

/// Where `text` first nests deeper than `max_depth` arrays and objects: the problem ("nested
/// deeper than 64 levels at byte 1234"), or nullopt when it does not. Brackets inside strings do
/// not count. One pass, no allocation; says nothing about whether the text is valid JSON.
std::optional<std::string> json_nesting_problem(std::string_view text, int max_depth = kMaxJsonDepth);

/// `text` parsed as JSON, or a discarded value (`is_discarded()`) when it is not valid JSON or
/// nests deeper than kMaxJsonDepth; `*why` (when given) then says what is wrong.
nlohmann::json parse_json(std::string_view text, std::string* why = nullptr);

/// The JSON file `path` (a config, an augmentation config), read as read_regular_file reads it
/// (at most kMaxJsonFileBytes) and parsed with parse_json. Throws IoError when it cannot be read,
/// ConfigError "<what> <path> is not valid JSON: <why>" when it does not parse.
nlohmann::json read_json_file(const std::string& path, const std::string& what);

}  // namespace medload::core
