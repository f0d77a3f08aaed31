#pragma once
// Reading one JSON object of a config strictly: every key is known, every value has the right
// JSON type and lies in its range, and every error names the full key ("preprocess.clahe.x").

#include <nlohmann/json.hpp>

#include <cstdint>
#include <initializer_list>
#include <sstream>
#include <string>

#include "medload/core/error.h"

namespace medload::detail {

/// Formats a number for messages the way a user typed it (2 not 2.000000).
inline std::string format_number(double value) {
  std::ostringstream out;
  out << value;
  return out.str();
}

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
    const auto& v = object_.at(name);
    // 8 and 8.0 are the same setting; 8.5 is not an integer.
    if (!v.is_number() || (v.is_number_float() &&
                           v.get<double>() != static_cast<double>(static_cast<long long>(v.get<double>())))) {
      throw ConfigError(key(name) + " must be an integer, not " + v.dump());
    }
    const double d = v.get<double>();
    if (d < -2147483648.0 || d > 2147483647.0) {
      throw ConfigError(key(name) + " is " + v.dump() + "; out of the integer range");
    }
    value = static_cast<int>(d);
  }
  void read(const char* name, std::int64_t& value) const {
    if (!has(name)) return;
    const auto& v = object_.at(name);
    if (!v.is_number_integer() &&
        !(v.is_number_float() &&
          v.get<double>() == static_cast<double>(static_cast<long long>(v.get<double>())))) {
      throw ConfigError(key(name) + " must be an integer, not " + v.dump());
    }
    value = v.is_number_float() ? static_cast<std::int64_t>(v.get<double>()) : v.get<std::int64_t>();
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
  const nlohmann::json& object_;
  std::string prefix_;
};

/// Throws "<key> is <value>; allowed <lo>..<hi>" unless lo <= value <= hi (NaN is outside).
inline void check_range(const std::string& key, double value, double lo, double hi) {
  if (!(value >= lo && value <= hi)) {
    throw ConfigError(key + " is " + format_number(value) + "; allowed " + format_number(lo) + ".." +
                      format_number(hi));
  }
}

}  // namespace medload::detail
