#include "medload/augment/augment_options.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>

#include "medload/augment/target_warp.h"
#include "medload/core/error.h"
#include "medload/core/json_fields.h"

namespace medload::augment {

namespace {

using medload::detail::check_range;
using medload::detail::format_number;
using medload::detail::ObjectReader;

const std::string kPrefix = "augment";

std::string full_key(const std::string& op, const std::string& field) {
  return kPrefix + "." + op + "." + field;
}

// One medical limit: `value` must not go past `limit` in the direction `above` (true: value <=
// limit is safe). Calls `on_breach` with "<key> is <v>; the medical limit is <limit>".
struct Limit {
  std::string key;
  double value;
  double limit;
  bool above;
  bool breached() const { return above ? value > limit : value < limit; }
  std::string text() const {
    return key + " is " + format_number(value) + "; the medical limit is " + format_number(limit);
  }
};

std::vector<Limit> medical_limits(const AugmentOptions& o) {
  return {
      {full_key("rotation", "max_degrees"), o.rotation.max_degrees, 10.0, true},
      {full_key("translation", "max_fraction"), o.translation.max_fraction, 0.1, true},
      {full_key("scale", "min"), o.scale.min, 0.9, false},
      {full_key("scale", "max"), o.scale.max, 1.1, true},
      {full_key("vertical_flip", "probability"), o.vertical_flip.probability, 0.0, true},
      {full_key("gamma", "min"), o.gamma.min, 0.5, false},
      {full_key("gamma", "max"), o.gamma.max, 2.0, true},
      {full_key("brightness", "min"), o.brightness.min, 0.7, false},
      {full_key("brightness", "max"), o.brightness.max, 1.3, true},
      {full_key("contrast", "min"), o.contrast.min, 0.7, false},
      {full_key("contrast", "max"), o.contrast.max, 1.3, true},
      {full_key("gaussian_noise", "max_sigma"), o.gaussian_noise.max_sigma, 0.05, true},
      {full_key("poisson_noise", "min_photons"), o.poisson_noise.min_photons, 100.0, false},
      {full_key("blur", "max_sigma"), o.blur.max_sigma, 2.0, true},
      {full_key("downsample", "min_factor"), o.downsample.min_factor, 0.25, false},
  };
}

void check_probability(const std::string& op, double p) {
  check_range(full_key(op, "probability"), p, 0.0, 1.0);
}

// range.min <= value <= range.max.
void check_limit(const std::string& key, double value, OptionRange range) {
  check_range(key, value, range.min, range.max);
}

// range.min <= min <= max <= range.max, each named.
void check_pair(const std::string& op, const char* min_name, double min, const char* max_name, double max,
                OptionRange range) {
  check_range(full_key(op, min_name), min, range.min, range.max);
  check_range(full_key(op, max_name), max, range.min, range.max);
  if (min > max) {
    throw ConfigError(full_key(op, min_name) + " is " + format_number(min) + ", above " +
                      full_key(op, max_name) + " (" + format_number(max) + ")");
  }
}

// One class id of augment.laterality: a key ("3": canonical decimal, no sign or leading zero)
// or a value (a whole JSON number), 1..65535.
std::int32_t laterality_key(const std::string& key) {
  const bool digits = !key.empty() && key.size() <= 5 && key[0] != '0' &&
                      std::all_of(key.begin(), key.end(), [](char c) { return c >= '0' && c <= '9'; });
  const long id = digits ? std::stol(key) : 0;
  if (id < 1 || id > 65535) {
    throw ConfigError("augment.laterality has the key " + nlohmann::json(key).dump() +
                      "; keys are class ids 1..65535 written as decimal strings, e.g. {\"3\": 4}");
  }
  return static_cast<std::int32_t>(id);
}

std::int32_t laterality_value(const std::string& key, const nlohmann::json& v) {
  const double d = v.is_number() ? v.get<double>() : 0.0;
  if (!v.is_number() || !(d >= 1.0 && d <= 65535.0) || d != std::trunc(d)) {
    throw ConfigError("augment.laterality." + key + " is " + v.dump() + "; it must be a class id 1..65535");
  }
  return static_cast<std::int32_t>(d);
}

std::map<std::int32_t, std::int32_t> read_laterality(const nlohmann::json& j) {
  if (!j.is_object()) {
    throw ConfigError("augment.laterality must be a JSON object of class id pairs such as {\"3\": 4}, not " +
                      j.dump());
  }
  std::map<std::int32_t, std::int32_t> pairs;
  for (const auto& item : j.items()) {
    pairs.emplace(laterality_key(item.key()), laterality_value(item.key(), item.value()));
  }
  return pairs;
}

}  // namespace

void AugmentOptions::validate() const {
  if (seed > static_cast<std::uint64_t>(INT64_MAX)) {
    throw ConfigError("augment.seed is " + std::to_string(seed) + "; allowed 0..2^63-1");
  }
  check_probability("rotation", rotation.probability);
  check_limit(full_key("rotation", "max_degrees"), rotation.max_degrees, ranges::kRotationDegrees);
  check_probability("translation", translation.probability);
  check_limit(full_key("translation", "max_fraction"), translation.max_fraction,
              ranges::kTranslationFraction);
  check_probability("scale", scale.probability);
  check_pair("scale", "min", scale.min, "max", scale.max, ranges::kScale);
  check_probability("horizontal_flip", horizontal_flip.probability);
  check_probability("vertical_flip", vertical_flip.probability);
  check_probability("gamma", gamma.probability);
  check_pair("gamma", "min", gamma.min, "max", gamma.max, ranges::kGamma);
  check_probability("brightness", brightness.probability);
  check_pair("brightness", "min", brightness.min, "max", brightness.max, ranges::kBrightness);
  check_probability("contrast", contrast.probability);
  check_pair("contrast", "min", contrast.min, "max", contrast.max, ranges::kContrast);
  check_probability("gaussian_noise", gaussian_noise.probability);
  check_limit(full_key("gaussian_noise", "max_sigma"), gaussian_noise.max_sigma, ranges::kGaussianSigma);
  check_probability("poisson_noise", poisson_noise.probability);
  check_pair("poisson_noise", "min_photons", poisson_noise.min_photons, "max_photons",
             poisson_noise.max_photons, ranges::kPoissonPhotons);
  check_probability("blur", blur.probability);
  check_pair("blur", "min_sigma", blur.min_sigma, "max_sigma", blur.max_sigma, ranges::kBlurSigma);
  check_probability("downsample", downsample.probability);
  check_pair("downsample", "min_factor", downsample.min_factor, "max_factor", downsample.max_factor,
             ranges::kDownsampleFactor);

  const Laterality checked(laterality);  // throws ConfigError naming augment.laterality
  if (horizontal_flip.probability > 0.0 && !allow_horizontal_flip) {
    throw ConfigError(full_key("horizontal_flip", "probability") + " is " +
                      format_number(horizontal_flip.probability) +
                      "; horizontal flips are off by default (laterality, dextrocardia): set "
                      "augment.allow_horizontal_flip to allow");
  }
  if (!unsafe_override) {
    for (const Limit& limit : medical_limits(*this)) {
      if (limit.breached()) {
        if (limit.key == full_key("vertical_flip", "probability")) {
          throw ConfigError(limit.key + " is " + format_number(limit.value) +
                            "; a vertical flip is never anatomically valid (the medical limit is 0; set "
                            "augment.unsafe_override to allow)");
        }
        throw ConfigError(limit.text() + " (set augment.unsafe_override to allow)");
      }
    }
  }
}

std::vector<std::string> AugmentOptions::active_overrides() const {
  std::vector<std::string> out;
  if (allow_horizontal_flip && horizontal_flip.probability > 0.0) {
    out.push_back("allow_horizontal_flip: " + full_key("horizontal_flip", "probability") + " is " +
                  format_number(horizontal_flip.probability));
  }
  if (unsafe_override) {
    for (const Limit& limit : medical_limits(*this)) {
      if (limit.breached()) out.push_back("unsafe_override: " + limit.text());
    }
  }
  return out;
}

AugmentOptions AugmentOptions::from_json(const nlohmann::json& j) {
  const ObjectReader top(j, kPrefix,
                         {"enabled", "seed", "allow_horizontal_flip", "unsafe_override", "rotation",
                          "translation", "scale", "horizontal_flip", "vertical_flip", "gamma", "brightness",
                          "contrast", "gaussian_noise", "poisson_noise", "blur", "downsample", "laterality"});
  AugmentOptions o;
  top.read("enabled", o.enabled);
  std::int64_t seed = 0;
  top.read("seed", seed);
  if (seed < 0) throw ConfigError("augment.seed is " + std::to_string(seed) + "; allowed 0..2^63-1");
  o.seed = static_cast<std::uint64_t>(seed);
  top.read("allow_horizontal_flip", o.allow_horizontal_flip);
  top.read("unsafe_override", o.unsafe_override);

  // Each operation: an object whose keys are `fields` (probability first).
  auto op = [&](const char* name, std::initializer_list<std::pair<const char*, double*>> fields) {
    if (!top.has(name)) return;
    std::vector<const char*> names;
    for (const auto& f : fields) names.push_back(f.first);
    const nlohmann::json& object = top.at(name);
    // ObjectReader wants an initializer_list of allowed names; the sets are small and fixed.
    const auto reader = [&]() {
      switch (names.size()) {
        case 2:
          return ObjectReader(object, top.key(name), {names[0], names[1]});
        default:
          return ObjectReader(object, top.key(name), {names[0], names[1], names[2]});
      }
    }();
    for (const auto& f : fields) reader.read(f.first, *f.second);
  };
  op("rotation", {{"probability", &o.rotation.probability}, {"max_degrees", &o.rotation.max_degrees}});
  op("translation",
     {{"probability", &o.translation.probability}, {"max_fraction", &o.translation.max_fraction}});
  op("scale", {{"probability", &o.scale.probability}, {"min", &o.scale.min}, {"max", &o.scale.max}});
  if (top.has("horizontal_flip")) {
    ObjectReader(top.at("horizontal_flip"), top.key("horizontal_flip"), {"probability"})
        .read("probability", o.horizontal_flip.probability);
  }
  if (top.has("vertical_flip")) {
    ObjectReader(top.at("vertical_flip"), top.key("vertical_flip"), {"probability"})
        .read("probability", o.vertical_flip.probability);
  }
  op("gamma", {{"probability", &o.gamma.probability}, {"min", &o.gamma.min}, {"max", &o.gamma.max}});
  op("brightness",
     {{"probability", &o.brightness.probability}, {"min", &o.brightness.min}, {"max", &o.brightness.max}});
  op("contrast",
     {{"probability", &o.contrast.probability}, {"min", &o.contrast.min}, {"max", &o.contrast.max}});
  op("gaussian_noise",
     {{"probability", &o.gaussian_noise.probability}, {"max_sigma", &o.gaussian_noise.max_sigma}});
  op("poisson_noise", {{"probability", &o.poisson_noise.probability},
                       {"min_photons", &o.poisson_noise.min_photons},
                       {"max_photons", &o.poisson_noise.max_photons}});
  op("blur", {{"probability", &o.blur.probability},
              {"min_sigma", &o.blur.min_sigma},
              {"max_sigma", &o.blur.max_sigma}});
  op("downsample", {{"probability", &o.downsample.probability},
                    {"min_factor", &o.downsample.min_factor},
                    {"max_factor", &o.downsample.max_factor}});
  if (top.has("laterality")) o.laterality = read_laterality(top.at("laterality"));
  o.validate();
  return o;
}

nlohmann::json AugmentOptions::to_json() const {
  // Numbers are written as doubles so that the canonical pipeline JSON does not depend on
  // whether a user typed 1 or 1.0.
  nlohmann::json j = {
      {"enabled", enabled},
      {"seed", seed},
      {"allow_horizontal_flip", allow_horizontal_flip},
      {"unsafe_override", unsafe_override},
      {"rotation", {{"probability", rotation.probability}, {"max_degrees", rotation.max_degrees}}},
      {"translation", {{"probability", translation.probability}, {"max_fraction", translation.max_fraction}}},
      {"scale", {{"probability", scale.probability}, {"min", scale.min}, {"max", scale.max}}},
      {"horizontal_flip", {{"probability", horizontal_flip.probability}}},
      {"vertical_flip", {{"probability", vertical_flip.probability}}},
      {"gamma", {{"probability", gamma.probability}, {"min", gamma.min}, {"max", gamma.max}}},
      {"brightness",
       {{"probability", brightness.probability}, {"min", brightness.min}, {"max", brightness.max}}},
      {"contrast", {{"probability", contrast.probability}, {"min", contrast.min}, {"max", contrast.max}}},
      {"gaussian_noise",
       {{"probability", gaussian_noise.probability}, {"max_sigma", gaussian_noise.max_sigma}}},
      {"poisson_noise",
       {{"probability", poisson_noise.probability},
        {"min_photons", poisson_noise.min_photons},
        {"max_photons", poisson_noise.max_photons}}},
      {"blur",
       {{"probability", blur.probability}, {"min_sigma", blur.min_sigma}, {"max_sigma", blur.max_sigma}}},
      {"downsample",
       {{"probability", downsample.probability},
        {"min_factor", downsample.min_factor},
        {"max_factor", downsample.max_factor}}},
  };
  // Only when set, so that configs without it (and their config hash) stay as they were.
  if (!laterality.empty()) {
    nlohmann::json pairs = nlohmann::json::object();
    for (const auto& [a, b] : laterality) pairs[std::to_string(std::min(a, b))] = std::max(a, b);
    j["laterality"] = pairs;
  }
  return j;
}

AugmentOptions AugmentOptions::full_chain() {
  AugmentOptions o;
  o.rotation.probability = o.translation.probability = o.scale.probability = 1.0;
  o.gamma.probability = o.brightness.probability = o.contrast.probability = 1.0;
  o.gaussian_noise.probability = o.poisson_noise.probability = 1.0;
  o.blur.probability = o.downsample.probability = 1.0;
  return o;
}

AugmentOptions AugmentOptions::weak_view() {
  AugmentOptions o;
  o.gamma.probability = o.brightness.probability = o.contrast.probability = 0.0;
  o.gaussian_noise.probability = o.poisson_noise.probability = 0.0;
  o.blur.probability = o.downsample.probability = 0.0;
  return o;
}

AugmentOptions AugmentOptions::strong_view() {
  AugmentOptions o = full_chain();
  o.rotation.max_degrees = 10.0;
  o.translation.max_fraction = 0.1;
  o.scale.min = 0.9;
  o.scale.max = 1.1;
  o.gamma.min = 0.5;
  o.gamma.max = 2.0;
  o.brightness.min = o.contrast.min = 0.7;
  o.brightness.max = o.contrast.max = 1.3;
  o.gaussian_noise.probability = o.poisson_noise.probability = 0.5;
  o.gaussian_noise.max_sigma = 0.05;
  o.poisson_noise.min_photons = 100.0;
  o.blur.probability = o.downsample.probability = 0.5;
  o.blur.max_sigma = 2.0;
  o.downsample.min_factor = 0.25;
  return o;
}

}  // namespace medload::augment
