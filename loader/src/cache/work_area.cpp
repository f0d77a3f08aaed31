#include "work_area.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include <nlohmann/json.hpp>

#include "medload/core/error.h"
#include "medload/core/json_text.h"
#include "medload/core/regular_file.h"

namespace medload::loader::detail {

namespace fs = std::filesystem;

namespace {

constexpr char kMagic[8] = {'M', 'L', 'B', 'A', 'T', 'C', 'H', '1'};

std::string system_reason() { return std::strerror(errno); }

void write_all(int fd, const void* data, std::size_t size, const std::string& path) {
  const auto* bytes = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t done = ::write(fd, bytes, size);
    if (done < 0) {
      if (errno == EINTR) continue;
      throw IoError("cannot write " + path + ": " + system_reason());
    }
    bytes += done;
    size -= static_cast<std::size_t>(done);
  }
}

const char* dtype_name(PixelType type) { return type == PixelType::kUInt16 ? "uint16" : "uint8"; }

// Bytes of the frame's mask labels in its batch (0 without a valid mask).
std::uint64_t mask_bytes(const FrameRecord& frame) {
  if (frame.targets.mask_state != TargetState::kValid) return 0;
  return std::uint64_t(frame.targets.mask.height) * std::uint64_t(frame.targets.mask.width) *
         sizeof(std::uint16_t);
}

}  // namespace

Geometry geometry_from_json(const nlohmann::json& j) { return Geometry::from_json(j); }

void write_batch(const std::string& folder, const std::string& key, std::vector<FileRecord>& files) {
  static std::atomic<unsigned> sequence{0};
  const std::string name = "batch-" + std::to_string(::getpid()) + "-" + std::to_string(sequence++);
  const std::string final_path = (fs::path(folder) / (name + ".bin")).string();
  const std::string temp_path = (fs::path(folder) / (name + ".tmp")).string();

  nlohmann::json header{{"key", key}, {"files", nlohmann::json::array()}};
  std::uint64_t offset = 0;
  for (const FileRecord& file : files) {
    nlohmann::json frames = nlohmann::json::array();
    for (const FrameRecord& frame : file.frames) {
      frames.push_back({{"frame_index", frame.frame_index},
                        {"patient_id", frame.patient_id},
                        {"site", frame.site},
                        {"meta", frame.meta},
                        {"geometry", frame.geometry.to_json()},
                        {"checksum", frame.checksum},
                        {"height", frame.height},
                        {"width", frame.width},
                        {"channels", frame.channels},
                        {"dtype", dtype_name(frame.type)},
                        {"offset", offset},
                        {"bytes", frame.pixels.size()},
                        {"targets", targets_to_json(frame.targets)},
                        {"mask_offset", offset + frame.pixels.size()},
                        {"mask_checksum", frame.mask_checksum},
                        {"mask_max", frame.mask_max}});
      offset += frame.pixels.size() + mask_bytes(frame);
    }
    header["files"].push_back({{"source_hash", file.source_hash},
                               {"pixel_hash", file.pixel_hash},
                               {"format", file.format},
                               {"frame_count", file.frame_count},
                               {"frames", std::move(frames)}});
  }
  const std::string text = header.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  const std::uint64_t length = text.size();
  const std::uint64_t data_start = sizeof kMagic + sizeof length + length;

  const int fd = ::open(temp_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError("cannot create " + temp_path + ": " + system_reason());
  try {
    write_all(fd, kMagic, sizeof kMagic, temp_path);
    write_all(fd, &length, sizeof length, temp_path);
    write_all(fd, text.data(), text.size(), temp_path);
    for (const FileRecord& file : files) {
      for (const FrameRecord& frame : file.frames) {
        write_all(fd, frame.pixels.data(), frame.pixels.size(), temp_path);
        write_all(fd, frame.targets.mask.labels.data(), mask_bytes(frame), temp_path);
      }
    }
  } catch (...) {
    ::close(fd);
    ::unlink(temp_path.c_str());
    throw;
  }
  if (::close(fd) != 0) {
    ::unlink(temp_path.c_str());
    throw IoError("cannot write " + temp_path + ": " + system_reason());
  }
  // A kill before this rename leaves only a temporary, which the next run deletes.
  if (::rename(temp_path.c_str(), final_path.c_str()) != 0) {
    ::unlink(temp_path.c_str());
    throw IoError("cannot rename " + temp_path + " to " + final_path + ": " + system_reason());
  }
  std::uint64_t position = data_start;
  for (FileRecord& file : files) {
    for (FrameRecord& frame : file.frames) {
      frame.batch_path = final_path;
      frame.offset = position;
      frame.mask_offset = position + frame.pixels.size();
      position += frame.pixels.size() + mask_bytes(frame);
      std::vector<std::uint8_t>().swap(frame.pixels);
      std::vector<std::uint16_t>().swap(frame.targets.mask.labels);
    }
  }
}

std::map<std::string, FileRecord> load_batches(const std::string& folder, const std::string& key) {
  std::map<std::string, FileRecord> files;
  std::error_code error;
  if (!fs::is_directory(folder, error)) return files;
  std::vector<fs::path> entries;
  for (const auto& entry : fs::directory_iterator(folder, error)) entries.push_back(entry.path());
  std::sort(entries.begin(), entries.end());
  for (const fs::path& path : entries) {
    const std::string name = path.filename().string();
    if (name.rfind("batch-", 0) != 0) continue;
    if (path.extension() != ".bin" || fs::is_symlink(path, error)) {  // only our own files are read
      fs::remove(path, error);  // a temporary left by a killed run, or a link (removed, not followed)
      continue;
    }
    bool usable = false;
    try {
      core::RegularFileStream in(path.string(), "the work batch");  // a FIFO left here is not opened
      char magic[8] = {};
      std::uint64_t length = 0;
      in.read(magic, sizeof magic);
      in.read(reinterpret_cast<char*>(&length), sizeof length);
      const std::uint64_t file_size = in.size_bytes();
      if (in && std::memcmp(magic, kMagic, sizeof kMagic) == 0 && length < file_size) {
        std::string text(length, '\0');
        in.read(text.data(), static_cast<std::streamsize>(length));
        const nlohmann::json header = core::parse_json(text);
        const std::uint64_t data_start = sizeof kMagic + sizeof length + length;
        if (in && header.at("key") == key) {
          std::map<std::string, FileRecord> found;
          bool complete = true;
          for (const auto& f : header.at("files")) {
            FileRecord file;
            file.source_hash = f.at("source_hash").get<std::string>();
            file.pixel_hash = f.at("pixel_hash").get<std::uint64_t>();
            file.format = f.at("format").get<std::string>();
            file.frame_count = f.at("frame_count").get<int>();
            for (const auto& fr : f.at("frames")) {
              FrameRecord frame;
              frame.frame_index = fr.at("frame_index").get<int>();
              frame.patient_id = fr.at("patient_id").get<std::string>();
              frame.site = fr.at("site").get<std::string>();
              frame.meta = fr.at("meta").get<std::map<std::string, std::string>>();
              frame.geometry = geometry_from_json(fr.at("geometry"));
              frame.checksum = fr.at("checksum").get<std::uint64_t>();
              frame.height = fr.at("height").get<int>();
              frame.width = fr.at("width").get<int>();
              frame.channels = fr.at("channels").get<int>();
              frame.type =
                  fr.at("dtype").get<std::string>() == "uint16" ? PixelType::kUInt16 : PixelType::kUInt8;
              frame.batch_path = path.string();
              frame.offset = data_start + fr.at("offset").get<std::uint64_t>();
              complete = complete && frame.offset + fr.at("bytes").get<std::uint64_t>() <= file_size;
              frame.targets = targets_from_json(fr.at("targets"));
              frame.mask_offset = data_start + fr.at("mask_offset").get<std::uint64_t>();
              frame.mask_checksum = fr.at("mask_checksum").get<std::uint64_t>();
              frame.mask_max = fr.at("mask_max").get<std::uint16_t>();
              complete = complete && frame.mask_offset + mask_bytes(frame) <= file_size;
              file.frames.push_back(std::move(frame));
            }
            found[file.source_hash] = std::move(file);
          }
          if (complete) {
            for (auto& [hash, file] : found) files[hash] = std::move(file);
            usable = true;
          }
        }
      }
    } catch (const std::exception&) {
      usable = false;
    }
    if (!usable) fs::remove(path, error);
  }
  return files;
}

void read_batch_pixels(const std::string& path, std::uint64_t offset, void* out, std::size_t size) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError("cannot open " + path + ": " + system_reason());
  auto* bytes = static_cast<char*>(out);
  std::size_t done = 0;
  while (done < size) {
    const ssize_t got = ::pread(fd, bytes + done, size - done, static_cast<off_t>(offset + done));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) {
      const std::string reason = got < 0 ? system_reason() : "the file is shorter than its header says";
      ::close(fd);
      throw IoError("cannot read " + path + ": " + reason);
    }
    done += static_cast<std::size_t>(got);
  }
  ::close(fd);
}

}  // namespace medload::loader::detail
