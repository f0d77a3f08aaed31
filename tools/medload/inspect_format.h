#pragma once
// What `medload inspect` prints without --json: the summary of loader::inspect_cache as text.

#include <string>

#include <nlohmann/json_fwd.hpp>

namespace medload::cli {

/// The summary from loader::inspect_cache (inspect.h documents its fields) as text for a person:
/// the images and their build, then classes, sites, patients, metadata, splits, rejected files,
/// identifying fields, the preprocessing config and (with --verify) each checksum mismatch.
/// `summary` has the fields inspect_cache writes; "multi_label", "privacy" and "verify" are optional.
std::string format_inspection(const nlohmann::json& summary);

}  // namespace medload::cli
