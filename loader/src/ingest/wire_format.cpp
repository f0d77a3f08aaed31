#include "wire_format.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <nlohmann/json.hpp>

#include "medload/core/enum_names.h"
#include "medload/core/text.h"

namespace medload::loader::detail::wire {

namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------------------------
// The fields of each message

json info_to_json(const SampleInfo& info) {
  return {{"labels", info.labels},
          {"unknown_labels", info.unknown_labels},
          {"patient_id", info.patient_id},
          {"modality", info.modality},
          {"series_uid", info.series_uid},
          {"view", info.view},
          {"site", info.site},
          {"metadata", info.metadata}};
}

SampleInfo info_from_json(const json& j) {
  SampleInfo info;
  info.labels = j.at("labels").get<std::vector<std::string>>();
  info.unknown_labels = j.at("unknown_labels").get<std::vector<std::string>>();
  info.patient_id = j.at("patient_id").get<std::string>();
  info.modality = j.at("modality").get<std::string>();
  info.series_uid = j.at("series_uid").get<std::string>();
  info.view = j.at("view").get<std::string>();
  info.site = j.at("site").get<std::string>();
  info.metadata = j.at("metadata").get<std::map<std::string, std::string>>();
  return info;
}

// A request's targets travel as given: the worker checks them (check_targets).
json sources_to_json(const TargetSources& t) {
  return {{"mask_path", percent_escape_non_utf8(t.mask_path)},
          {"mask_report_path", t.mask_report_path},
          {"boxes_given", t.boxes_given},
          {"boxes", box_rows(t.boxes)},
          {"landmarks_given", t.landmarks_given},
          {"landmarks", landmark_rows(t.landmarks)},
          {"mask_problem", t.mask_problem},
          {"boxes_problem", t.boxes_problem},
          {"landmarks_problem", t.landmarks_problem},
          {"class_count", t.class_count}};
}

TargetSources sources_from_json(const json& j) {
  TargetSources t;
  t.mask_path = percent_unescape(j.at("mask_path").get<std::string>());
  t.mask_report_path = j.at("mask_report_path").get<std::string>();
  t.boxes_given = j.at("boxes_given").get<bool>();
  for (const json& r : j.at("boxes")) {
    t.boxes.push_back({r.at(0).get<double>(), r.at(1).get<double>(), r.at(2).get<double>(),
                       r.at(3).get<double>(), r.at(4).get<std::int32_t>()});
  }
  t.landmarks_given = j.at("landmarks_given").get<bool>();
  for (const json& r : j.at("landmarks")) {
    t.landmarks.push_back({r.at(0).get<double>(), r.at(1).get<double>(), r.at(2).get<std::int32_t>()});
  }
  t.mask_problem = j.at("mask_problem").get<std::string>();
  t.boxes_problem = j.at("boxes_problem").get<std::string>();
  t.landmarks_problem = j.at("landmarks_problem").get<std::string>();
  t.class_count = j.at("class_count").get<std::int32_t>();
  return t;
}

// An enum's value, which must be at most `last`.
template <typename Enum>
Enum enum_from_json(const json& j, const char* field, Enum last) {
  const int value = j.at(field).get<int>();
  if (value < 0 || value > static_cast<int>(last)) {
    throw WireError("a decoder worker's reply has " + std::string(field) + " " + std::to_string(value) +
                    ", past the last known value " + std::to_string(static_cast<int>(last)));
  }
  return static_cast<Enum>(value);
}

json report_to_json(const TargetReport& r);

json outcome_to_json(const FileOutcome& o) {
  json j = {{"path", o.path},
            {"ok", o.ok},
            {"reason", o.reason ? static_cast<int>(*o.reason) : -1},
            {"detail", o.detail},
            {"warnings", o.warnings},
            {"frames", o.frames},
            {"height", o.height},
            {"width", o.width},
            {"bits_stored", o.bits_stored},
            {"format", o.format},
            {"content_hash", o.content_hash},
            {"pixel_hash", o.pixel_hash}};
  if (o.targets) j["targets"] = report_to_json(*o.targets);
  return j;
}

json report_to_json(const TargetReport& r) {
  return {{"mask", static_cast<int>(r.mask)},
          {"boxes", static_cast<int>(r.boxes)},
          {"landmarks", static_cast<int>(r.landmarks)},
          {"mask_problem", r.mask_problem},
          {"boxes_problem", r.boxes_problem},
          {"landmarks_problem", r.landmarks_problem},
          {"box_count", r.box_count},
          {"boxes_clipped", r.boxes_clipped},
          {"landmark_count", r.landmark_count}};
}

TargetReport report_from_json(const json& j) {
  TargetReport r;
  r.mask = enum_from_json(j, "mask", TargetState::kInvalid);
  r.boxes = enum_from_json(j, "boxes", TargetState::kInvalid);
  r.landmarks = enum_from_json(j, "landmarks", TargetState::kInvalid);
  r.mask_problem = j.at("mask_problem").get<std::string>();
  r.boxes_problem = j.at("boxes_problem").get<std::string>();
  r.landmarks_problem = j.at("landmarks_problem").get<std::string>();
  r.box_count = j.at("box_count").get<std::size_t>();
  r.boxes_clipped = j.at("boxes_clipped").get<std::size_t>();
  r.landmark_count = j.at("landmark_count").get<std::size_t>();
  return r;
}

FileOutcome outcome_from_json(const json& j) {
  FileOutcome o;
  o.path = j.at("path").get<std::string>();
  o.ok = j.at("ok").get<bool>();
  if (j.at("reason").get<int>() >= 0) o.reason = enum_from_json(j, "reason", Reason::kOutsideRoot);
  o.detail = j.at("detail").get<std::string>();
  o.warnings = j.at("warnings").get<std::vector<std::string>>();
  o.frames = j.at("frames").get<int>();
  o.height = j.at("height").get<int>();
  o.width = j.at("width").get<int>();
  o.bits_stored = j.at("bits_stored").get<int>();
  o.format = j.at("format").get<std::string>();
  o.content_hash = j.at("content_hash").get<std::uint64_t>();
  o.pixel_hash = j.at("pixel_hash").get<std::uint64_t>();
  if (j.contains("targets")) o.targets = report_from_json(j.at("targets"));
  return o;
}

json voi_to_json(const VoiTransform& v) {
  return {{"function", static_cast<int>(v.function)}, {"center", v.center},         {"width", v.width},
          {"first_mapped", v.first_mapped},           {"table_bits", v.table_bits}, {"table", v.table}};
}

VoiTransform voi_from_json(const json& j) {
  VoiTransform voi;
  voi.function = enum_from_json(j, "function", VoiTransform::Function::kTable);
  voi.center = j.at("center").get<double>();
  voi.width = j.at("width").get<double>();
  voi.first_mapped = j.at("first_mapped").get<double>();
  voi.table_bits = j.at("table_bits").get<int>();
  voi.table = j.at("table").get<std::vector<std::uint16_t>>();
  return voi;
}

json frame_to_json(const DecodedImage& f) {
  json j = {{"height", f.height},           {"width", f.width},
            {"channels", f.channels},       {"type", static_cast<int>(f.type)},
            {"bits_stored", f.bits_stored}, {"was_monochrome1", f.was_monochrome1},
            {"source_path", f.source_path}, {"source_hash", f.source_hash},
            {"frame_index", f.frame_index}, {"frame_count", f.frame_count},
            {"format", f.format},           {"info", info_to_json(f.info)}};
  if (f.was_monochrome1) j["monochrome1_mirror"] = f.monochrome1_mirror;
  if (f.voi) j["voi"] = voi_to_json(*f.voi);
  return j;
}

DecodedImage frame_from_json(const json& j) {
  DecodedImage f;
  f.height = j.at("height").get<int>();
  f.width = j.at("width").get<int>();
  f.channels = j.at("channels").get<int>();
  f.type = enum_from_json(j, "type", PixelType::kFloat32);
  f.bits_stored = j.at("bits_stored").get<int>();
  f.was_monochrome1 = j.at("was_monochrome1").get<bool>();
  f.source_path = j.at("source_path").get<std::string>();
  f.source_hash = j.at("source_hash").get<std::uint64_t>();
  f.frame_index = j.at("frame_index").get<int>();
  f.frame_count = j.at("frame_count").get<int>();
  f.format = j.at("format").get<std::string>();
  f.info = info_from_json(j.at("info"));
  if (j.contains("monochrome1_mirror")) f.monochrome1_mirror = j.at("monochrome1_mirror").get<double>();
  if (j.contains("voi")) f.voi = voi_from_json(j.at("voi"));
  return f;
}

json staged_to_json(const StagedFrame& s) {
  return {{"height", s.height},
          {"width", s.width},
          {"channels", s.channels},
          {"type", static_cast<int>(s.type)},
          {"geometry", s.geometry.to_json()},
          {"times", s.times.to_json()},
          {"checksum", s.checksum},
          {"decoded_hash", s.decoded_hash},
          {"targets", targets_to_json(s.targets)}};
}

StagedFrame staged_from_json(const json& j) {
  StagedFrame s;
  s.height = j.at("height").get<int>();
  s.width = j.at("width").get<int>();
  s.channels = j.at("channels").get<int>();
  s.type = enum_from_json(j, "type", PixelType::kFloat32);
  s.geometry = Geometry::from_json(j.at("geometry"));
  s.times = StageTimes::from_json(j.at("times"));
  s.checksum = j.at("checksum").get<std::uint64_t>();
  s.decoded_hash = j.at("decoded_hash").get<std::uint64_t>();
  try {
    s.targets = targets_from_json(j.at("targets"));
  } catch (const FormatError& e) {
    throw WireError(std::string("a decoder worker's reply: ") + e.what());
  }
  return s;
}

constexpr auto kKindNames = core::enum_names<StageFailure::Kind>({{StageFailure::Kind::kConfig, "config"},
                                                                  {StageFailure::Kind::kFormat, "format"},
                                                                  {StageFailure::Kind::kIo, "io"},
                                                                  {StageFailure::Kind::kOther, "other"}});

std::string kind_name(StageFailure::Kind kind) { return std::string(kKindNames.name(kind, "other")); }

// A kind this build does not know (a newer worker) is "other", not an error.
StageFailure::Kind kind_from_name(const std::string& name) {
  return kKindNames.find(name).value_or(StageFailure::Kind::kOther);
}

// ---------------------------------------------------------------------------------------------
// What a reply may say

std::string frame_name(std::size_t k) { return "a decoder worker's reply: frame " + std::to_string(k); }

// A decoded frame's payload is its pixels: a shape within the limits, and exactly its bytes.
void check_decoded_frame(const FrameHeader& h, std::size_t k, const ValidationOptions& options) {
  const DecodedImage& f = h.frame;
  if (f.height <= 0 || f.width <= 0 || f.channels < 1 || f.channels > 4 ||
      std::int64_t{f.height} * f.width > options.max_pixels) {
    throw WireError(frame_name(k) + " has the shape " + std::to_string(f.height) + "x" +
                    std::to_string(f.width) + "x" + std::to_string(f.channels) +
                    ", outside validate.max_pixels " + std::to_string(options.max_pixels) +
                    " or 1..4 channels");
  }
  const std::uint64_t expected = std::uint64_t(f.height) * std::uint64_t(f.width) *
                                 std::uint64_t(f.channels) * std::uint64_t(bytes_per_element(f.type));
  if (h.bytes != expected) {
    throw WireError(frame_name(k) + " announces " + std::to_string(h.bytes) +
                    " pixel bytes; its shape needs " + std::to_string(expected));
  }
}

// A stage output's mask travels after its image in the same payload: it must be the output's size
// and fit the payload.
void check_staged_mask(const StagedFrame& s, std::uint64_t bytes, std::size_t k) {
  const LabelMask& mask = s.targets.mask;
  if (s.targets.mask_state != TargetState::kValid) return;
  if (mask.height != s.height || mask.width != s.width) {
    throw WireError(frame_name(k) + " has a " + std::to_string(mask.width) + "x" +
                    std::to_string(mask.height) + " mask for a " + std::to_string(s.width) + "x" +
                    std::to_string(s.height) + " output");
  }
  if (bytes < mask_payload_bytes(s)) {
    throw WireError(frame_name(k) + " announces " + std::to_string(bytes) +
                    " payload bytes, fewer than its mask's " + std::to_string(mask_payload_bytes(s)));
  }
}

void check_reply(const Reply& reply, const ValidationOptions& options) {
  if (reply.stage_failure && !reply.frames.empty()) {
    throw WireError("a decoder worker's reply has both a stage error and frames");
  }
  std::uint64_t total = 0;
  for (std::size_t k = 0; k < reply.frames.size(); ++k) {
    const FrameHeader& h = reply.frames[k];
    if (h.staged) {
      check_staged_mask(*h.staged, h.bytes, k);
      if (h.bytes > kMaxStagedBytes) {
        throw WireError(frame_name(k) + " announces a stage output of " + std::to_string(h.bytes) +
                        " bytes, more than " + std::to_string(kMaxStagedBytes));
      }
    } else {
      check_decoded_frame(h, k, options);
    }
    total += h.bytes;
  }
  if (reply.shared && total > kSlotBytes) {
    throw WireError("a decoder worker's reply does not fit its shared memory slot (" + std::to_string(total) +
                    " bytes, the slot holds " + std::to_string(kSlotBytes) + ")");
  }
}

// ---------------------------------------------------------------------------------------------
// Framing

bool send_all(int fd, const void* data, std::size_t size) {
  const auto* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::send(fd, p, size, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return true;
}

// Waits until `fd` is readable or `deadline` passes.
ReadStatus wait_readable(int fd, Deadline deadline) {
  if (deadline == kNoDeadline) return ReadStatus::kOk;
  for (;;) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return ReadStatus::kTimedOut;
    pollfd pfd{fd, POLLIN, 0};
    const int ready = ::poll(&pfd, 1, static_cast<int>(std::min<std::int64_t>(left.count(), 1 << 30)));
    if (ready < 0 && errno == EINTR) continue;
    if (ready == 0) return ReadStatus::kTimedOut;
    return ready < 0 ? ReadStatus::kClosed : ReadStatus::kOk;
  }
}

// Reads exactly `size` bytes, waiting at most until `deadline`.
ReadStatus read_all(int fd, void* data, std::size_t size, Deadline deadline) {
  auto* p = static_cast<char*>(data);
  while (size > 0) {
    if (const ReadStatus s = wait_readable(fd, deadline); s != ReadStatus::kOk) return s;
    const ssize_t n = ::recv(fd, p, size, 0);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return ReadStatus::kClosed;
    p += n;
    size -= static_cast<std::size_t>(n);
  }
  return ReadStatus::kOk;
}

}  // namespace

std::uint64_t mask_payload_bytes(const StagedFrame& staged) {
  if (staged.targets.mask_state != TargetState::kValid) return 0;
  return std::uint64_t(std::max(staged.targets.mask.height, 0)) *
         std::uint64_t(std::max(staged.targets.mask.width, 0)) * sizeof(std::uint16_t);
}

void append_mask_payload(StagedFrame& staged) {
  const std::uint64_t n = mask_payload_bytes(staged);
  if (n == 0) return;
  const std::size_t at = staged.bytes.size();
  staged.bytes.resize(at + n);
  std::memcpy(staged.bytes.data() + at, staged.targets.mask.labels.data(), n);
  staged.targets.mask.labels = {};
}

void take_mask_payload(StagedFrame& staged) {
  const std::uint64_t n = mask_payload_bytes(staged);
  if (n == 0) return;
  const std::size_t at = staged.bytes.size() - n;  // check_reply: the payload holds the mask
  staged.targets.mask.labels.resize(n / sizeof(std::uint16_t));
  std::memcpy(staged.targets.mask.labels.data(), staged.bytes.data() + at, n);
  staged.bytes.resize(at);
}

StageFailure StageFailure::from(const std::exception& e) {
  const Kind kind = dynamic_cast<const ConfigError*>(&e)   ? Kind::kConfig
                    : dynamic_cast<const FormatError*>(&e) ? Kind::kFormat
                    : dynamic_cast<const IoError*>(&e)     ? Kind::kIo
                                                           : Kind::kOther;
  return {kind, e.what()};
}

void StageFailure::rethrow() const {
  switch (kind) {
    case Kind::kConfig:
      throw ConfigError(what);
    case Kind::kFormat:
      throw FormatError(what);
    case Kind::kIo:
      throw IoError(what);
    case Kind::kOther:
      break;
  }
  throw WorkerError(what);
}

std::string encode(const Request& request) {
  const SourceFile& source = request.source;
  // JSON carries only UTF-8: a file name that is not travels percent-escaped.
  const json j = {{"path", percent_escape_non_utf8(source.path)},
                  {"report_path", source.report_path},
                  {"info", info_to_json(source.info)},
                  {"outside_root", source.outside_root},
                  {"targets", sources_to_json(source.targets)},
                  {"slot", request.slot}};
  return j.dump();
}

Request decode_request(const std::vector<char>& message) {
  const json j = json::parse(message.begin(), message.end());
  Request request;
  request.source.path = percent_unescape(j.at("path").get<std::string>());
  request.source.report_path = j.at("report_path").get<std::string>();
  request.source.info = info_from_json(j.at("info"));
  request.source.outside_root = j.at("outside_root").get<bool>();
  request.source.targets = sources_from_json(j.at("targets"));
  request.slot = j.at("slot").get<std::size_t>() % kSlots;
  return request;
}

std::string encode(const Reply& reply) {
  json frames = json::array();
  for (const FrameHeader& h : reply.frames) {
    json header = frame_to_json(h.frame);
    header["bytes"] = h.bytes;
    if (h.staged) header["stage"] = staged_to_json(*h.staged);
    frames.push_back(std::move(header));
  }
  json j = {
      {"outcome", outcome_to_json(reply.outcome)}, {"frames", std::move(frames)}, {"shared", reply.shared}};
  if (const auto& f = reply.stage_failure)
    j["stage_error"] = {{"kind", kind_name(f->kind)}, {"what", f->what}};
  // Text that reached an outcome is valid UTF-8; replacement keeps a reply whatever a decoder says.
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

Reply decode_reply(const std::vector<char>& message, const ValidationOptions& options) {
  Reply reply;
  try {
    const json j = json::parse(message.begin(), message.end());
    reply.outcome = outcome_from_json(j.at("outcome"));
    reply.shared = j.at("shared").get<bool>();
    for (const json& header : j.at("frames")) {
      FrameHeader h;
      h.frame = frame_from_json(header);
      h.bytes = header.at("bytes").get<std::uint64_t>();
      if (header.contains("stage")) h.staged = staged_from_json(header.at("stage"));
      reply.frames.push_back(std::move(h));
    }
    if (j.contains("stage_error")) {
      const json& e = j.at("stage_error");
      reply.stage_failure =
          StageFailure{kind_from_name(e.at("kind").get<std::string>()), e.at("what").get<std::string>()};
    }
  } catch (const json::exception& e) {
    throw WireError(std::string("a decoder worker's reply is malformed: ") + e.what());
  }
  check_reply(reply, options);
  return reply;
}

bool send_message(int fd, const void* data, std::size_t size) {
  const std::uint64_t length = size;
  return send_all(fd, &length, sizeof length) && send_all(fd, data, size);
}

ReadStatus read_header(int fd, std::vector<char>& out, Deadline deadline) {
  std::uint64_t length = 0;
  if (const auto s = read_all(fd, &length, sizeof length, deadline); s != ReadStatus::kOk) return s;
  if (length > kMaxHeaderBytes) {
    throw WireError("a decoder worker's message announces " + std::to_string(length) + " bytes, more than " +
                    std::to_string(kMaxHeaderBytes));
  }
  out.resize(length);
  return read_all(fd, out.data(), length, deadline);
}

ReadStatus read_payload(int fd, std::vector<std::uint8_t>& out, std::uint64_t expected, Deadline deadline) {
  std::uint64_t length = 0;
  if (const auto s = read_all(fd, &length, sizeof length, deadline); s != ReadStatus::kOk) return s;
  if (length != expected) {
    throw WireError("a decoder worker's payload message announces " + std::to_string(length) +
                    " bytes; its frame header said " + std::to_string(expected));
  }
  out.resize(length);
  return read_all(fd, out.data(), length, deadline);
}

}  // namespace medload::loader::detail::wire
