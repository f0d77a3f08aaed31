#include "medload/loader/ingest/validation_options.h"

#include <cmath>

#include "medload/core/error.h"
#include "medload/core/json_fields.h"

namespace medload::loader {

using medload::detail::check_range;

void ValidationOptions::validate() const {
  check_range("validate.max_pixels", static_cast<double>(max_pixels), 1, 4e9);
  check_range("validate.max_file_bytes", static_cast<double>(max_file_bytes), 1, std::ldexp(1.0, 44));
  check_range("validate.min_side", min_side, 1, 65535);
  check_range("validate.blank_contrast_to_noise", blank_contrast_to_noise, 0, 1000);
  check_range("validate.file_timeout_s", file_timeout_s, 1, 3600);
  check_range("validate.threads", threads, 0, 256);
  check_range("validate.worker_memory_mb", static_cast<double>(worker_memory_mb), 0, std::ldexp(1.0, 24));
  check_range("validate.worker_cpu_s", worker_cpu_s, 0, 86400);
}

ValidationOptions ValidationOptions::from_json(const nlohmann::json& j) {
  if (j.is_object() && j.contains("blank_std_fraction")) {
    // Its meaning (a fraction of the bit depth's range) rejected low-count NM and PET images.
    throw ConfigError(
        "validate.blank_std_fraction is no longer read: the blank check compares content with noise, "
        "validate.blank_contrast_to_noise (default 3; see docs/ingest.md)");
  }
  const medload::detail::ObjectReader in(
      j, "validate", {"max_pixels", "max_file_bytes", "min_side", "blank_contrast_to_noise", "reject_duplicates",
                   "allow_outside_root"});
  ValidationOptions o;
  in.read("max_pixels", o.max_pixels);
  in.read("max_file_bytes", o.max_file_bytes);
  in.read("min_side", o.min_side);
  in.read("blank_contrast_to_noise", o.blank_contrast_to_noise);
  in.read("reject_duplicates", o.reject_duplicates);
  in.read("allow_outside_root", o.allow_outside_root);
  o.validate();
  return o;
}

nlohmann::json ValidationOptions::to_json() const {
  return {{"max_pixels", max_pixels},
          {"max_file_bytes", max_file_bytes},
          {"min_side", min_side},
          {"blank_contrast_to_noise", blank_contrast_to_noise},
          {"reject_duplicates", reject_duplicates},
          {"allow_outside_root", allow_outside_root}};
}

}  // namespace medload::loader
