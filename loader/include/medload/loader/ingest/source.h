#pragma once
/// What to read: the input files of a scan or build, from a folder tree (class = first-level
/// folder, the ImageFolder convention) or a CSV manifest (`path,label,patient_id` plus optional
/// target and metadata columns). File names and manifest text need not be UTF-8: see SourceFile.
///
/// Reading the inputs and their targets (medload/loader/ingest/annotation.h, docs/targets.md):
///   auto sources = list_sources(root, manifest);            // + mask, boxes, landmarks columns
///   if (annotations) read_annotations(*annotations, sources);  // boxes from a detection CSV
///   std::optional<TargetClasses> map;
///   if (class_map) map = read_target_classes(*class_map);
///   const TargetClasses classes = resolve_target_classes(sources, map);  // label names -> ids
/// Bad target text never throws: it becomes a problem of that kind of target on its input.

#include <cstddef>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "medload/loader/ingest/annotation.h"
#include "medload/loader/ingest/decoded_image.h"
#include "medload/loader/ingest/scan_report.h"

namespace medload::loader {

/// One input file and what the folder tree or manifest says about it. Every text field except
/// `path` is valid UTF-8 (medload/core/text.h): bytes that are not are read as Windows-1252.
struct SourceFile {
  std::string path;  ///< the file to read, as raw bytes (the root or manifest folder joined with the entry)
  std::string report_path;  ///< as shown in reports: relative to the root, valid UTF-8
  /// Set only when the name is not valid UTF-8: the name with every byte that is not UTF-8, and
  /// every '%', percent-escaped (lossless; percent_unescape gives the bytes back). The report's
  /// "path_bytes"; the cache stores it as the source path (see cache_path()).
  std::string path_bytes;
  SampleInfo info;  ///< labels, patient id, site and metadata columns; DICOM headers fill the rest
  /// Warnings about the entry itself, copied into its FileOutcome: "path_not_utf8",
  /// "text_converted:<column>" (a manifest field that was not UTF-8, read as Windows-1252),
  /// "label_conflict" (a class named in both `label` and `unknown_labels`: it is unknown).
  std::vector<std::string> warnings;
  /// A manifest entry whose path leaves the manifest's folder (an absolute path elsewhere, or
  /// `..` past it): not read unless ValidationOptions::allow_outside_root; the outcome is
  /// `outside_root`.
  bool outside_root = false;
  /// The entry's mask, boxes and landmarks (manifest columns `mask`, `boxes`, `landmarks`, and
  /// read_annotations): checked against the image when the file is decoded.
  TargetSources targets;

  /// The name stored in the cache (source_path, rejected/path): `path_bytes` when set, else
  /// `report_path`, so that two names differing only in bytes that are not UTF-8 stay apart.
  const std::string& cache_path() const { return path_bytes.empty() ? report_path : path_bytes; }
};

/// A patient id as medload stores and compares it: surrounding whitespace removed (spaces, tabs,
/// line breaks, NUL as DICOM pads, U+00A0 no-break space); case and inner whitespace kept, so
/// "P001 " and "P001" are one patient while "ab12" and "AB12" stay two (the leakage audit warns
/// about ids that differ only by case or inner whitespace). Used for manifest and DICOM ids alike.
std::string normalize_patient_id(std::string_view id);

/// The form under which patient ids that may be one patient compare equal: normalize_patient_id,
/// then ASCII letters lower-cased and all inner whitespace removed ("AB 12" and "ab12" match).
std::string loose_patient_id(std::string_view id);

/// Copies what `source` says about its own entry into `outcome`: the report path, the lossless
/// `path_bytes` and the source's warnings (placed before the decoder's own).
void note_source(const SourceFile& source, FileOutcome& outcome);

/// Lists the inputs under `root`.
///
/// Without a manifest: every regular file below `root` (hidden files and folders skipped),
/// sorted by path; a file inside a first-level folder gets that folder's name as its label, a
/// file directly in `root` is unlabeled. Symbolic links are followed, to files and to folders
/// (inside `root` or not), but no folder is entered twice: a link loop ends where it closes, and
/// a folder reached by two paths is listed once, under the first path in sorted order. FIFOs,
/// sockets and devices are listed (the scan reports them `unreadable` without reading them).
///
/// With a manifest (a CSV file with a header line naming at least `path`; `label`,
/// `unknown_labels`, `patient_id`, `site`, `modality`, `view`, `mask`, `boxes` and `landmarks` are
/// optional, other columns become metadata): one entry per line, in file order;
/// paths are relative to the manifest's folder unless absolute; an empty label is unlabeled,
/// `a|b` is multi-label; `unknown_labels` (split as `label` is: `|`, surrounding spaces and tabs
/// removed) names the classes whose value is not known for that image (SampleInfo::unknown_labels);
/// a class named in both columns stays in unknown_labels only, and the entry gets the warning
/// "label_conflict"; fields may be double-quoted ("" is a quote). A manifest entry whose file
/// is missing still yields a SourceFile: the scan reports it `unreadable`. A manifest field that
/// is not valid UTF-8 is read as Windows-1252 (a spreadsheet export) and the entry gets the
/// warning "text_converted:<column>"; a path field that is not UTF-8 names the file by its raw
/// bytes, or by its UTF-8 reading when only that file exists. Patient ids go through
/// normalize_patient_id. A path that leaves the manifest's folder (absolute elsewhere, or `..`
/// past it, judged on the text) marks the entry `outside_root`.
///
/// Targets (SourceFile::targets; an empty cell gives none): `mask` is the path of a label image,
/// resolved as `path` is (a name that is not UTF-8 adds the warning "mask_path_not_utf8", and
/// "text_converted:mask" when its UTF-8 reading names the file); a mask path leaving the
/// manifest's folder is a mask problem. `boxes` and `landmarks` are JSON when the cell starts with
/// `[` (parse_boxes_json, parse_landmarks_json; quote the cell: `"[[1,2,30,40,""liver""]]"`),
/// else the path of a CSV file (parse_boxes_csv, parse_landmarks_csv; resolved as `path` is, at
/// most kMaxTargetCsvBytes, not outside the manifest's folder). Whatever these cannot read is a
/// problem of that kind (TargetSources), never an error of the manifest. Labels written as names
/// wait for resolve_target_classes.
///
/// Throws IoError when `root` or the manifest cannot be read, FormatError naming the manifest and
/// line for a malformed line (wrong number of fields, unterminated quote, no `path` column, a
/// column named twice).
std::vector<SourceFile> list_sources(const std::string& root,
                                     const std::optional<std::string>& manifest = std::nullopt);

/// Reads the next CSV record from `in` into `record`: one line without its line break ("\n" or
/// "\r\n"), or several joined by "\n" while a quoted field is open (until the input ends).
/// `line_number` counts the lines read, so it is the record's last line. False at the end.
bool read_csv_record(std::istream& in, std::string& record, std::size_t& line_number);

/// Parses one CSV line into fields (RFC 4180 quoting). Throws FormatError on an unterminated
/// quote; `where` names the file and line in that message.
std::vector<std::string> parse_csv_line(const std::string& line, const std::string& where);

}  // namespace medload::loader
