#pragma once
/// The one range check behind every options struct's validate(), so that every out-of-range
/// setting is reported the same way: "<key> is <value>; allowed <lo>..<hi>". `key` names the
/// setting as the user wrote it: the dotted config key where the struct is read from a config
/// ("validate.threads", "augment.rotation.probability"), "<Struct>.<field>" otherwise
/// ("LoaderOptions.threads").

#include <limits>
#include <sstream>
#include <string>
#include <type_traits>

#include "medload/core/error.h"

namespace medload::core {

/// Formats a number for messages the way a user typed it (2 not 2.000000).
template <class T>
std::string format_number(T value) {
  if constexpr (std::is_integral_v<T>) {
    return std::to_string(value);
  } else {
    std::ostringstream out;
    out << value;
    return out.str();
  }
}

namespace detail {

// a < b for any two integers, signed or not (std::cmp_less before C++20).
template <class A, class B>
constexpr bool int_less(A a, B b) noexcept {
  if constexpr (std::is_signed_v<A> == std::is_signed_v<B>) {
    return a < b;
  } else if constexpr (std::is_signed_v<A>) {
    return a < 0 || static_cast<std::make_unsigned_t<A>>(a) < b;
  } else {
    return b >= 0 && a < static_cast<std::make_unsigned_t<B>>(b);
  }
}

}  // namespace detail

/// Whether lo <= value <= hi. Integers compare exactly whatever their types; when any of the
/// three is floating point all compare as double, and NaN is outside every range.
template <class V, class L, class H>
constexpr bool in_range(V value, L lo, H hi) noexcept {
  if constexpr (std::is_integral_v<V> && std::is_integral_v<L> && std::is_integral_v<H>) {
    return !detail::int_less(value, lo) && !detail::int_less(hi, value);
  } else {
    const double v = static_cast<double>(value);
    return v >= static_cast<double>(lo) && v <= static_cast<double>(hi);
  }
}

/// Throws ConfigError "<key> is <value>; allowed <lo>..<hi>" unless lo <= value <= hi.
template <class V, class L, class H>
void check_range(const std::string& key, V value, L lo, H hi) {
  static_assert(std::is_arithmetic_v<V> && std::is_arithmetic_v<L> && std::is_arithmetic_v<H>);
  if (!in_range(value, lo, hi)) {
    throw ConfigError(key + " is " + format_number(value) + "; allowed " + format_number(lo) + ".." +
                      format_number(hi));
  }
}

}  // namespace medload::core
