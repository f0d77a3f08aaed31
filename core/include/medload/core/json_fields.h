#pragma once
// Reading one JSON object of a config strictly: every key is known, every value has the right
// JSON type and lies in its range, and every error names the full key ("preprocess.clahe.x").

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "medload/core/check_range.h"
#include "medload/core/error.h"

namespace medload::detail {

using core::format_number;

class ObjectReader {
 public:
  /// `prefix` is the dotted path of `object` ("preprocess.clahe", "" for the top level);
  /// `allowed` its known keys.
  ObjectReader(const nlohmann::json& object, std::string prefix, std::initializer_list<const char*> allowed)
      : object_(object), prefix_(std::move(prefix)) {
    if (!object_.is_object()) {
      throw ConfigError((prefix_.empty() ? std::string("the pipeline config") : prefix_) +
                        " must be a JSON object, not " + object_.dump());
    }
    for (const auto& item : object_.items()) {
      bool known = false;
      std::string names;
      for (const char* name : allowed) {
        known = known || item.key() == name;
        names += names.empty() ? name : std::string(", ") + name;
      }
      if (!known) {
        throw ConfigError("unknown key " + key(item.key()) + "; allowed keys: " + names);
      }
    }
  }

  /// The full dotted key of `name` (the top level has an empty prefix).
  std::string key(const std::string& name) const { return prefix_.empty() ? name : prefix_ + "." + name; }

  bool has(const char* name) const { return object_.contains(name); }
  const nlohmann::json& at(const char* name) const { return object_.at(name); }

  void read(const char* name, bool& value) const {
    if (!has(name)) return;
    const auto& v = object_.at(name);
    if (!v.is_boolean()) throw ConfigError(key(name) + " must be true or false, not " + v.dump());
    value = v.get<bool>();
  }
  void read(const char* name, int& value) const {
    if (!has(name)) return;
    const std::int64_t wide = integer(name);
    if (wide < -2147483648LL || wide > 2147483647LL) {
      throw ConfigError(key(name) + " is " + object_.at(name).dump() + "; out of the integer range");
    }
    value = static_cast<int>(wide);
  }
  void read(const char* name, std::int64_t& value) const {
    if (has(name)) value = integer(name);
  }
  void read(const char* name, std::uint64_t& value) const {
    if (!has(name)) return;
    const std::int64_t wide = integer(name);
    if (wide < 0) throw ConfigError(key(name) + " is " + object_.at(name).dump() + "; it cannot be negative");
    value = static_cast<std::uint64_t>(wide);
  }
  void read(const char* name, double& value) const {
    if (!has(name)) return;
    const auto& v = object_.at(name);
    if (!v.is_number()) throw ConfigError(key(name) + " must be a number, not " + v.dump());
    value = v.get<double>();
  }
  void read(const char* name, std::string& value) const {
    if (!has(name)) return;
    const auto& v = object_.at(name);
    if (!v.is_string()) throw ConfigError(key(name) + " must be a string, not " + v.dump());
    value = v.get<std::string>();
  }

 private:
  // A whole number within 64 bits: 8 and 8.0 are the same setting; 8.5, 1e300 and "8" are not.
  std::int64_t integer(const char* name) const {
    const auto& v = object_.at(name);
    if (v.is_number_integer()) {
      if (v.is_number_unsigned() && v.get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX)) {
        throw ConfigError(key(name) + " is " + v.dump() + "; out of the integer range");
      }
      return v.get<std::int64_t>();
    }
    if (v.is_number_float()) {
      const double d = v.get<double>();
      // Compared before the cast: casting a double outside the range of the integer is undefined.
      if (!(d >= -9.2e18 && d <= 9.2e18)) throw ConfigError(key(name) + " is " + v.dump() + "; out of the integer range");
      if (d == std::trunc(d)) return static_cast<std::int64_t>(d);
    }
    throw ConfigError(key(name) + " must be an integer, not " + v.dump());
  }

  const nlohmann::json& object_;
  std::string prefix_;
};

/// Config readers check ranges with the one check every options struct uses (core/check_range.h).
using core::check_range;

}  // namespace medload::detail
