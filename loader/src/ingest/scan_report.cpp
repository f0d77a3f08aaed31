#include "medload/loader/ingest/scan_report.h"

#include <array>
#include <sstream>

#include "medload/core/hash.h"

namespace medload::loader {

namespace {
constexpr std::array<std::string_view, 10> kCodes = {"empty_file",  "unreadable",   "truncated",
                                                     "unsupported", "blank",        "too_small",
                                                     "too_large",   "duplicate",    "decoder_crash",
                                                     "outside_root"};
}

std::string_view reason_code(Reason reason) { return kCodes[static_cast<std::size_t>(reason)]; }

std::optional<Reason> reason_from_code(std::string_view code) {
  for (std::size_t i = 0; i < kCodes.size(); ++i) {
    if (kCodes[i] == code) return static_cast<Reason>(i);
  }
  return std::nullopt;
}

nlohmann::json FileOutcome::to_json() const {
  nlohmann::json j = {
      {"path", path},
      {"status", ok ? "ok" : "rejected"},
      {"reason", reason ? nlohmann::json(std::string(reason_code(*reason))) : nlohmann::json()},
      {"detail", detail},
      {"frames", frames},
      {"format", format}};
  if (!path_bytes.empty()) j["path_bytes"] = path_bytes;
  if (height > 0) {
    j["height"] = height;
    j["width"] = width;
    j["bits_stored"] = bits_stored;
  }
  if (!warnings.empty()) j["warnings"] = warnings;
  if (targets) j["targets"] = targets->to_json();
  if (!duplicate_of.empty()) j["duplicate_of"] = duplicate_of;
  if (content_hash != 0) j["content_hash"] = hash_hex(content_hash);
  return j;
}

std::size_t ScanReport::ok_count() const {
  std::size_t n = 0;
  for (const auto& f : files) n += f.ok ? 1 : 0;
  return n;
}

std::size_t ScanReport::rejected_count() const { return files.size() - ok_count(); }

std::map<std::string, std::size_t> ScanReport::count_by_reason() const {
  std::map<std::string, std::size_t> counts;
  for (const auto& f : files) {
    if (f.reason) ++counts[std::string(reason_code(*f.reason))];
  }
  return counts;
}

std::map<std::string, std::size_t> ScanReport::count_by_warning() const {
  std::map<std::string, std::size_t> counts;
  for (const auto& f : files) {
    for (const auto& w : f.warnings) ++counts[w];
  }
  return counts;
}

nlohmann::json ScanReport::to_json() const {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& f : files) list.push_back(f.to_json());
  nlohmann::json by_reason = nlohmann::json::object();
  for (const auto& [code, n] : count_by_reason()) by_reason[code] = n;
  nlohmann::json warnings = nlohmann::json::object();
  for (const auto& [code, n] : count_by_warning()) warnings[code] = n;
  return {{"files", std::move(list)},
          {"counts",
           {{"total", files.size()},
            {"ok", ok_count()},
            {"rejected", rejected_count()},
            {"by_reason", std::move(by_reason)},
            {"warnings", std::move(warnings)}}},
          {"seconds", seconds}};
}

std::string ScanReport::summary(std::size_t examples) const {
  std::ostringstream out;
  std::size_t frames = 0;
  for (const auto& f : files) frames += f.ok ? static_cast<std::size_t>(f.frames) : 0;
  out << files.size() << " files: " << ok_count() << " ok (" << frames << " images), " << rejected_count()
      << " rejected";
  if (seconds > 0) out << ", in " << static_cast<int>(seconds * 10 + 0.5) / 10.0 << " s";
  out << '\n';
  for (const auto& [code, n] : count_by_reason()) out << "  " << code << ": " << n << '\n';
  for (const auto& [code, n] : count_by_warning()) out << "  warning " << code << ": " << n << '\n';
  std::size_t shown = 0;
  for (const auto& f : files) {
    if (f.ok || shown == examples) continue;
    if (shown++ == 0) out << "rejected, for example:\n";
    out << "  " << f.path << ": " << reason_code(*f.reason) << " (" << f.detail << ")\n";
  }
  return out.str();
}

}  // namespace medload::loader
