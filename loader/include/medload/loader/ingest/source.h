#pragma once
/// What to read: the input files of a scan or build, from a folder tree (class = first-level
/// folder, the ImageFolder convention) or a CSV manifest (`path,label,patient_id` plus optional
/// metadata columns).

#include <optional>
#include <string>
#include <vector>

#include "medload/loader/ingest/decoded_image.h"

namespace medload::loader {

/// One input file and what the folder tree or manifest says about it.
struct SourceFile {
  std::string path;         ///< the file to read (the root or manifest folder joined with the entry)
  std::string report_path;  ///< as shown in reports and stored in the cache: relative to the root
  SampleInfo info;          ///< labels, patient id, site and metadata columns; DICOM headers fill the rest
};

/// Lists the inputs under `root`.
///
/// Without a manifest: every regular file below `root` (hidden files and folders skipped,
/// symlinks followed), sorted by path; a file inside a first-level folder gets that folder's
/// name as its label, a file directly in `root` is unlabeled.
///
/// With a manifest (a CSV file with a header line naming at least `path`; `label` and
/// `patient_id` are optional, other columns become metadata): one entry per line, in file order;
/// paths are relative to the manifest's folder unless absolute; an empty label is unlabeled,
/// `a|b` is multi-label; fields may be double-quoted ("" is a quote). A manifest entry whose file
/// is missing still yields a SourceFile: the scan reports it `unreadable`.
///
/// Throws IoError when `root` or the manifest cannot be read, FormatError naming the manifest and
/// line for a malformed line (wrong number of fields, unterminated quote, no `path` column).
std::vector<SourceFile> list_sources(const std::string& root,
                                     const std::optional<std::string>& manifest = std::nullopt);

/// Parses one CSV line into fields (RFC 4180 quoting). Throws FormatError on an unterminated
/// quote; `where` names the file and line in that message.
std::vector<std::string> parse_csv_line(const std::string& line, const std::string& where);

}  // namespace medload::loader
