#include "cache_writer.h"

#include <zlib.h>

#include <chrono>
#include <ctime>

#include "medload/core/error.h"
#include "medload/core/version.h"

namespace medload::loader::detail {

std::string json_text(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

std::vector<std::uint8_t> deflate_chunk(const void* data, std::size_t size, int level) {
  uLongf bound = compressBound(static_cast<uLong>(size));
  std::vector<std::uint8_t> out(bound);
  const int status =
      compress2(out.data(), &bound, static_cast<const Bytef*>(data), static_cast<uLong>(size), level);
  if (status != Z_OK)
    throw IoError("zlib could not compress an image chunk (status " + std::to_string(status) + ")");
  out.resize(bound);
  return out;
}

CacheWriter::CacheWriter(const std::string& path, const CacheHeader& header) : header_(header) {
  if (header.channels != 1 && header.channels != 3) {
    throw FormatError("cannot write " + path + ": images have " + std::to_string(header.channels) +
                      " channels (1 or 3 allowed)");
  }
  if (header.dtype != PixelType::kUInt8 && header.dtype != PixelType::kUInt16) {
    throw FormatError("cannot write " + path + ": the cache stores uint8 or uint16 images");
  }
  image_bytes_ = static_cast<std::size_t>(header.channels) * header.height * header.width *
                 bytes_per_element(header.dtype);
  file_ = h5::File::create(path);
  std::vector<hsize_t> dims{static_cast<hsize_t>(header.count)};
  if (header.channels != 1) dims.push_back(static_cast<hsize_t>(header.channels));
  dims.push_back(static_cast<hsize_t>(header.height));
  dims.push_back(static_cast<hsize_t>(header.width));
  h5::DatasetLayout layout;
  if (header.deflate > 0) {
    layout.chunk = dims;
    layout.chunk[0] = 1;  // one image per chunk: a random read inflates exactly one image
    layout.deflate = header.deflate;
    if (header.count == 0) {
      // HDF5 refuses a chunk dimension larger than a fixed-size zero extent; let it grow instead.
      layout.max_dims = dims;
      layout.max_dims[0] = H5S_UNLIMITED;
    }
  }
  // Uncompressed images are stored contiguously: image i is one byte range at a single offset, so
  // readers locate every image at once (per-chunk lookups cost O(N) each in HDF5 1.10.8).
  images_ = h5::create_dataset(
      file_.id(), "images", header.dtype == PixelType::kUInt8 ? H5T_STD_U8LE : H5T_STD_U16LE, dims, layout);
}

void CacheWriter::write_image(std::size_t index, const void* data, std::size_t size) {
  if (index >= header_.count) {
    throw std::out_of_range("image " + std::to_string(index) + " of a cache of " +
                            std::to_string(header_.count));
  }
  if (header_.deflate == 0 && size != image_bytes_) {
    throw FormatError("image " + std::to_string(index) + " for " + file_.path() + " has " +
                      std::to_string(size) + " bytes, not " + std::to_string(image_bytes_));
  }
  if (header_.deflate == 0) {
    h5::write_rows(images_, index, 1,
                   header_.dtype == PixelType::kUInt8 ? H5T_NATIVE_UINT8 : H5T_NATIVE_UINT16, data);
    return;
  }
  std::vector<hsize_t> offset(header_.channels == 1 ? 3 : 4, 0);
  offset[0] = static_cast<hsize_t>(index);
  h5::silence_errors();
  h5::check_status(H5Dwrite_chunk(images_.id(), H5P_DEFAULT, 0, offset.data(), size, data), "write",
                   "image " + std::to_string(index) + " of the dataset \"images\"", H5I_INVALID_HID,
                   file_.path());
}

namespace {

std::string utc_now() {
  const std::time_t now = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm parts{};
  gmtime_r(&now, &parts);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%SZ", &parts);
  return text;
}

void write_geometry(hid_t file, const std::vector<Geometry>& geometry) {
  const std::size_t n = geometry.size();
  auto column = [&](const char* name, auto field) {
    std::vector<std::int32_t> values(n);
    for (std::size_t i = 0; i < n; ++i) values[i] = geometry[i].*field;
    h5::write_vector(file, std::string("geometry/") + name, values);
  };
  column("original_height", &Geometry::original_height);
  column("original_width", &Geometry::original_width);
  column("crop_x", &Geometry::crop_x);
  column("crop_y", &Geometry::crop_y);
  column("crop_w", &Geometry::crop_w);
  column("crop_h", &Geometry::crop_h);
  column("pad_top", &Geometry::pad_top);
  column("pad_left", &Geometry::pad_left);
  column("pad_bottom", &Geometry::pad_bottom);
  column("pad_right", &Geometry::pad_right);
  std::vector<double> scale(n);
  for (std::size_t i = 0; i < n; ++i) scale[i] = geometry[i].scale;
  h5::write_vector(file, "geometry/scale", scale);
}

}  // namespace

void CacheWriter::finish(const CacheColumns& columns, const std::vector<RejectedRecord>& rejected,
                         const std::vector<std::string>& class_names, const std::string& config_json,
                         const std::string& config_hash, const nlohmann::json& attributes) {
  const hid_t f = file_.id();
  const std::size_t n = header_.count;
  auto check_size = [&](std::size_t size, const char* name) {
    if (size != n) {
      throw FormatError("cannot write " + file_.path() + ": column " + name + " has " + std::to_string(size) +
                        " entries for " + std::to_string(n) + " images");
    }
  };
  check_size(columns.labels.size(), "labels");
  check_size(columns.patient_ids.size(), "patient_id");
  check_size(columns.source_paths.size(), "source_path");
  check_size(columns.source_hashes.size(), "source_hash");
  check_size(columns.sites.size(), "site");
  check_size(columns.frame_indices.size(), "frame_index");
  check_size(columns.source_indices.size(), "source_index");
  check_size(columns.pixel_hashes.size(), "pixel_hash");
  check_size(columns.checksums.size(), "checksum");
  check_size(columns.geometry.size(), "geometry");

  h5::write_vector(f, "labels", columns.labels);
  if (columns.multi_label) {
    h5::write_vector(f, "label_matrix", columns.label_matrix, {static_cast<hsize_t>(n), class_names.size()});
  }
  h5::write_strings(f, "patient_id", columns.patient_ids);
  h5::write_strings(f, "source_path", columns.source_paths);
  h5::write_strings(f, "source_hash", columns.source_hashes);
  h5::write_strings(f, "site", columns.sites);
  h5::write_vector(f, "frame_index", columns.frame_indices);
  h5::write_vector(f, "source_index", columns.source_indices);
  h5::write_vector(f, "pixel_hash", columns.pixel_hashes);
  h5::write_vector(f, "checksum", columns.checksums);
  write_geometry(f, columns.geometry);
  h5::Group meta = h5::create_group(f, "meta");
  for (const MetaColumn& column : columns.meta) {
    if (column.numeric) {
      check_size(column.values.size(), column.name.c_str());
      h5::write_vector(meta.id(), column.name, column.values);
    } else {
      check_size(column.text.size(), column.name.c_str());
      h5::write_strings(meta.id(), column.name, column.text);
    }
    check_size(column.imputed.size(), column.name.c_str());
    h5::write_vector(meta.id(), column.name + "_imputed", column.imputed);
  }

  h5::Group group = h5::create_group(f, "rejected");
  std::vector<std::string> paths, reasons, details, hashes, outcomes;
  std::vector<std::int64_t> indices;
  for (const RejectedRecord& r : rejected) {
    paths.push_back(r.path);
    reasons.push_back(r.reason);
    details.push_back(r.detail);
    hashes.push_back(r.source_hash);
    outcomes.push_back(r.outcome);
    indices.push_back(r.source_index);
  }
  h5::write_strings(group.id(), "path", paths);
  h5::write_strings(group.id(), "reason", reasons);
  h5::write_strings(group.id(), "detail", details);
  h5::write_strings(group.id(), "source_hash", hashes);
  h5::write_strings(group.id(), "outcome", outcomes);
  h5::write_vector(group.id(), "source_index", indices);

  h5::write_attribute(f, "schema_version", kCacheSchemaVersion);
  h5::write_attribute(f, "library_version", std::string(kVersion));
  h5::write_attribute(f, "config", config_json);
  h5::write_attribute(f, "config_hash", config_hash);
  h5::write_attribute(f, "class_names", json_text(class_names));
  h5::write_attribute(f, "count_images", static_cast<std::int64_t>(n));
  h5::write_attribute(f, "count_rejected", static_cast<std::int64_t>(rejected.size()));
  h5::write_attribute(f, "build_time", utc_now());
  for (const auto& item : attributes.items()) {
    const auto& v = item.value();
    if (v.is_number_integer()) {
      h5::write_attribute(f, item.key(), v.get<std::int64_t>());
    } else if (v.is_number()) {
      h5::write_attribute(f, item.key(), v.get<double>());
    } else if (v.is_string()) {
      h5::write_attribute(f, item.key(), v.get<std::string>());
    } else {
      h5::write_attribute(f, item.key(), json_text(v));
    }
  }
  meta.reset();
  group.reset();
  images_.reset();
  file_.flush();
  file_.close();
}

}  // namespace medload::loader::detail
