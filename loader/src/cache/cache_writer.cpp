#include "cache_writer.h"

#include <zlib.h>

#include <stdexcept>

#include "medload/core/error.h"

namespace medload::loader::detail {

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
  images_ = schema::create_images(file_.id(), header);
  if (header.masks) {
    mask_bytes_ = static_cast<std::size_t>(header.height) * static_cast<std::size_t>(header.width) * 2;
    masks_ = schema::create_masks(file_.id(), header);
    mask_written_.assign(header.count, false);
  }
}

int CacheWriter::mask_deflate() const noexcept { return schema::mask_deflate_level(header_); }

void CacheWriter::write_mask(std::size_t index, const void* data, std::size_t size) {
  if (!masks_.valid()) throw std::logic_error("write_mask on " + file_.path() + ", created without masks");
  if (index >= header_.count) {
    throw std::out_of_range("mask " + std::to_string(index) + " of a cache of " +
                            std::to_string(header_.count));
  }
  const hsize_t offset[3] = {static_cast<hsize_t>(index), 0, 0};
  h5::silence_errors();
  h5::check_status(H5Dwrite_chunk(masks_.id(), H5P_DEFAULT, 0, offset, size, data), "write",
                   "mask " + std::to_string(index) + " of the dataset \"" + schema::kMasks + "\"",
                   H5I_INVALID_HID, file_.path());
  mask_written_[index] = true;
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
                   "image " + std::to_string(index) + " of the dataset \"" + schema::kImages + "\"",
                   H5I_INVALID_HID, file_.path());
}

void CacheWriter::finish(const CacheColumns& columns, const std::vector<RejectedRecord>& rejected,
                         const std::vector<std::string>& class_names, const std::string& config_json,
                         const std::string& config_hash, const schema::BuildRecord& record) {
  write_contents(columns, rejected, class_names, config_json, config_hash);
  schema::write_build_record(file_.id(), record);
  close();
}

void CacheWriter::finish(const CacheColumns& columns, const std::vector<RejectedRecord>& rejected,
                         const std::vector<std::string>& class_names, const std::string& config_json,
                         const std::string& config_hash, const nlohmann::json& attributes) {
  write_contents(columns, rejected, class_names, config_json, config_hash);
  schema::write_json_attributes(file_.id(), attributes);
  close();
}

void CacheWriter::write_contents(const CacheColumns& columns, const std::vector<RejectedRecord>& rejected,
                                 const std::vector<std::string>& class_names, const std::string& config_json,
                                 const std::string& config_hash) {
  const hid_t f = file_.id();
  schema::write_columns(f, columns, header_.count, class_names.size());
  if (header_.masks || columns.targets.any()) write_targets(columns.targets);
  schema::write_rejected(f, rejected);
  schema::write_root_attributes(f, schema::schema_version_for(columns), class_names, config_json, config_hash,
                                header_.count, rejected.size());
}

void CacheWriter::write_targets(const TargetColumns& targets) {
  for (std::size_t i = 0; i < mask_written_.size(); ++i) {
    const bool valid = i < targets.mask_states.size() &&
                       targets.mask_states[i] == static_cast<std::uint8_t>(TargetState::kValid);
    if (valid != mask_written_[i]) {
      throw FormatError("cannot write " + file_.path() + ": image " + std::to_string(i) + "'s mask is " +
                        (valid ? "marked valid but was not written" : "written but not marked valid") +
                        " (/" + schema::kMaskState + ")");
    }
  }
  schema::write_targets(file_.id(), targets, header_.count, header_.height, header_.width, masks_.valid());
}

void CacheWriter::close() {
  masks_.reset();
  images_.reset();
  file_.flush();
  file_.close();
}

}  // namespace medload::loader::detail
