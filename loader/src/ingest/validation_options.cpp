#include "medload/loader/ingest/validation_options.h"

#include "medload/core/error.h"
#include "medload/core/json_fields.h"

namespace medload::loader {

using medload::detail::check_range;

void ValidationOptions::validate() const {
  check_range("validate.max_pixels", static_cast<double>(max_pixels), 1, 4e9);
  check_range("validate.min_side", min_side, 1, 65535);
  check_range("validate.blank_std_fraction", blank_std_fraction, 0, 0.5);
  check_range("validate.file_timeout_s", file_timeout_s, 1, 3600);
  check_range("validate.threads", threads, 0, 256);
}

ValidationOptions ValidationOptions::from_json(const nlohmann::json& j) {
  const medload::detail::ObjectReader in(
      j, "validate", {"max_pixels", "min_side", "blank_std_fraction", "reject_duplicates"});
  ValidationOptions o;
  in.read("max_pixels", o.max_pixels);
  in.read("min_side", o.min_side);
  in.read("blank_std_fraction", o.blank_std_fraction);
  in.read("reject_duplicates", o.reject_duplicates);
  o.validate();
  return o;
}

nlohmann::json ValidationOptions::to_json() const {
  return {{"max_pixels", max_pixels},
          {"min_side", min_side},
          {"blank_std_fraction", blank_std_fraction},
          {"reject_duplicates", reject_duplicates}};
}

}  // namespace medload::loader
