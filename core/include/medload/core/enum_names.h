#pragma once
/// Names of an enum's values, kept in one table per enum so that to_string and from_string cannot
/// drift apart, and an unknown name is answered with the names that are allowed:
///
///   constexpr auto kPartNames = core::enum_names<SplitPart>(
///       {{SplitPart::kTrain, "train"}, {SplitPart::kVal, "val"}, {SplitPart::kTest, "test"}});
///   kPartNames.name(SplitPart::kVal)                   -> "val"
///   kPartNames.value("tset", "DatasetOptions.part")   -> throws ConfigError
///       DatasetOptions.part is "tset"; allowed train, val, test

#include <array>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "medload/core/error.h"

namespace medload::core {

/// One value and its name.
template <class Enum>
struct EnumName {
  Enum value;
  std::string_view name;
};

template <class Enum, std::size_t N>
struct EnumNames {
  /// Each value with its name, in the order names are listed in messages.
  std::array<EnumName<Enum>, N> entries;

  /// The name of `value`; `fallback` for a value not in the table (a cast from a bad integer).
  constexpr std::string_view name(Enum value, std::string_view fallback = "?") const noexcept {
    for (const auto& entry : entries) {
      if (entry.value == value) return entry.name;
    }
    return fallback;
  }

  /// The value named `text`, or nullopt when no value has that name (names match exactly).
  constexpr std::optional<Enum> find(std::string_view text) const noexcept {
    for (const auto& entry : entries) {
      if (entry.name == text) return entry.value;
    }
    return std::nullopt;
  }

  /// The value named `text`. Throws ConfigError "<key> is "<text>"; allowed a, b, c" otherwise,
  /// `key` naming the setting ("DatasetOptions.part", "--impute").
  Enum value(std::string_view text, std::string_view key) const {
    if (const auto found = find(text)) return *found;
    throw ConfigError(std::string(key) + " is \"" + std::string(text) + "\"; allowed " + list());
  }

  /// Every name, comma-separated, in table order ("train, val, test").
  std::string list() const {
    std::string out;
    for (const auto& entry : entries) {
      if (!out.empty()) out += ", ";
      out += entry.name;
    }
    return out;
  }
};

namespace detail {
template <class Enum, std::size_t N, std::size_t... I>
constexpr EnumNames<Enum, N> enum_names(const EnumName<Enum> (&entries)[N], std::index_sequence<I...>) {
  return {{{entries[I]...}}};
}
}  // namespace detail

/// The table of `entries`, the enum named and the count deduced:
/// `enum_names<Mode>({{Mode::kA, "a"}, {Mode::kB, "b"}})`.
template <class Enum, std::size_t N>
constexpr EnumNames<Enum, N> enum_names(const EnumName<Enum> (&entries)[N]) {
  return detail::enum_names(entries, std::make_index_sequence<N>{});
}

}  // namespace medload::core
