#include "medload/loader/preprocess/preprocess_options.h"

#include "medload/core/json_fields.h"
#include "medload/core/error.h"

namespace medload::loader {

using medload::detail::check_range;
using medload::detail::ObjectReader;

namespace {

const char* dtype_name(PixelType type) { return type == PixelType::kUInt16 ? "uint16" : "uint8"; }

}  // namespace

void PreprocessOptions::validate() const {
  const std::string p = "preprocess.";
  check_range(p + "intensity.low_percentile", intensity.low_percentile, 0.0, 50.0);
  check_range(p + "intensity.high_percentile", intensity.high_percentile, 50.0, 100.0);
  if (!(intensity.low_percentile < intensity.high_percentile)) {
    throw ConfigError(p + "intensity.low_percentile (" + medload::detail::format_number(intensity.low_percentile) +
                      ") must be below preprocess.intensity.high_percentile (" +
                      medload::detail::format_number(intensity.high_percentile) + ")");
  }
  check_range(p + "roi_crop.threshold", roi_crop.threshold, 0.0, 0.9);
  check_range(p + "roi_crop.margin", roi_crop.margin, 0, 1024);
  check_range(p + "roi_crop.max_text_band_fraction", roi_crop.max_text_band_fraction, 0.01, 0.5);
  check_range(p + "roi_crop.max_crop_fraction", roi_crop.max_crop_fraction, 0.0, 0.99);
  check_range(p + "letterbox.size", letterbox.size, 16, 4096);
  if (letterbox.interpolation != "area" && letterbox.interpolation != "area_fast" &&
      letterbox.interpolation != "linear" && letterbox.interpolation != "cubic") {
    throw ConfigError(p + "letterbox.interpolation is \"" + letterbox.interpolation +
                      "\"; allowed \"area\", \"area_fast\", \"linear\", \"cubic\"");
  }
  check_range(p + "clahe.clip_limit", clahe.clip_limit, 0.1, 100.0);
  check_range(p + "clahe.tile_grid", clahe.tile_grid, 1, 64);
  check_range(p + "bilateral.diameter", bilateral.diameter, 1, 15);
  check_range(p + "bilateral.sigma_color", bilateral.sigma_color, 0.1, 255.0);
  check_range(p + "bilateral.sigma_space", bilateral.sigma_space, 0.1, 50.0);
  if (output_dtype != PixelType::kUInt8 && output_dtype != PixelType::kUInt16) {
    throw ConfigError(p + "output_dtype must be uint8 or uint16");
  }
}

PreprocessOptions PreprocessOptions::from_json(const nlohmann::json& j) {
  PreprocessOptions o;
  const ObjectReader top(
      j, "preprocess",
      {"grayscale", "intensity", "roi_crop", "letterbox", "clahe", "bilateral", "output_dtype"});
  if (top.has("grayscale")) {
    const ObjectReader r(top.at("grayscale"), top.key("grayscale"), {"enabled"});
    r.read("enabled", o.grayscale.enabled);
  }
  if (top.has("intensity")) {
    const ObjectReader r(
        top.at("intensity"), top.key("intensity"),
        {"enabled", "use_dicom_window", "percentile_clip", "low_percentile", "high_percentile"});
    r.read("enabled", o.intensity.enabled);
    r.read("use_dicom_window", o.intensity.use_dicom_window);
    r.read("percentile_clip", o.intensity.percentile_clip);
    r.read("low_percentile", o.intensity.low_percentile);
    r.read("high_percentile", o.intensity.high_percentile);
  }
  if (top.has("roi_crop")) {
    const ObjectReader r(top.at("roi_crop"), top.key("roi_crop"),
                         {"enabled", "threshold", "margin", "remove_text_bands", "max_text_band_fraction",
                          "max_crop_fraction"});
    r.read("enabled", o.roi_crop.enabled);
    r.read("threshold", o.roi_crop.threshold);
    r.read("margin", o.roi_crop.margin);
    r.read("remove_text_bands", o.roi_crop.remove_text_bands);
    r.read("max_text_band_fraction", o.roi_crop.max_text_band_fraction);
    r.read("max_crop_fraction", o.roi_crop.max_crop_fraction);
  }
  if (top.has("letterbox")) {
    const ObjectReader r(top.at("letterbox"), top.key("letterbox"), {"enabled", "size", "interpolation"});
    r.read("enabled", o.letterbox.enabled);
    r.read("size", o.letterbox.size);
    r.read("interpolation", o.letterbox.interpolation);
  }
  if (top.has("clahe")) {
    const ObjectReader r(top.at("clahe"), top.key("clahe"), {"enabled", "clip_limit", "tile_grid"});
    r.read("enabled", o.clahe.enabled);
    r.read("clip_limit", o.clahe.clip_limit);
    r.read("tile_grid", o.clahe.tile_grid);
  }
  if (top.has("bilateral")) {
    const ObjectReader r(top.at("bilateral"), top.key("bilateral"),
                         {"enabled", "diameter", "sigma_color", "sigma_space"});
    r.read("enabled", o.bilateral.enabled);
    r.read("diameter", o.bilateral.diameter);
    r.read("sigma_color", o.bilateral.sigma_color);
    r.read("sigma_space", o.bilateral.sigma_space);
  }
  if (top.has("output_dtype")) {
    std::string dtype;
    top.read("output_dtype", dtype);
    if (dtype == "uint8") {
      o.output_dtype = PixelType::kUInt8;
    } else if (dtype == "uint16") {
      o.output_dtype = PixelType::kUInt16;
    } else {
      throw ConfigError("preprocess.output_dtype is \"" + dtype + "\"; allowed \"uint8\", \"uint16\"");
    }
  }
  o.validate();
  return o;
}

nlohmann::json PreprocessOptions::to_json() const {
  // Doubles stay doubles (2.0, not 2) so the canonical form does not depend on how a file
  // spelled the number.
  return {
      {"grayscale", {{"enabled", grayscale.enabled}}},
      {"intensity",
       {{"enabled", intensity.enabled},
        {"use_dicom_window", intensity.use_dicom_window},
        {"percentile_clip", intensity.percentile_clip},
        {"low_percentile", intensity.low_percentile},
        {"high_percentile", intensity.high_percentile}}},
      {"roi_crop",
       {{"enabled", roi_crop.enabled},
        {"threshold", roi_crop.threshold},
        {"margin", roi_crop.margin},
        {"remove_text_bands", roi_crop.remove_text_bands},
        {"max_text_band_fraction", roi_crop.max_text_band_fraction},
        {"max_crop_fraction", roi_crop.max_crop_fraction}}},
      {"letterbox",
       {{"enabled", letterbox.enabled},
        {"size", letterbox.size},
        {"interpolation", letterbox.interpolation}}},
      {"clahe",
       {{"enabled", clahe.enabled}, {"clip_limit", clahe.clip_limit}, {"tile_grid", clahe.tile_grid}}},
      {"bilateral",
       {{"enabled", bilateral.enabled},
        {"diameter", bilateral.diameter},
        {"sigma_color", bilateral.sigma_color},
        {"sigma_space", bilateral.sigma_space}}},
      {"output_dtype", dtype_name(output_dtype)},
  };
}

}  // namespace medload::loader
