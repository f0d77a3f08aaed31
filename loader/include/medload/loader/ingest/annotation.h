#pragma once
/// Targets beside an image's class labels: a label mask (a class id per pixel), boxes and
/// landmarks. Three stages carry them, with one type each:
///   - TargetSources (on SourceFile): what the manifest entry or the annotations CSV says, before
///     any file is read (list_sources, read_annotations);
///   - FrameTargets (on DecodedImage): the targets decoded and checked against their frame, in the
///     frame's original pixel coordinates (in the decoder worker, check_targets);
///   - FrameTargets (on StagedFrame): the same moved onto the preprocessed output grid with the
///     frame's Geometry (medload/loader/preprocess/targets.h), what the cache stores.
///
/// Coordinates are continuous pixel coordinates: pixel (i, j) covers [i, i+1) x [j, j+1), as for
/// Geometry. Class ids are 0..65535 and shared by masks and boxes: 0 is the background (a mask's
/// unlabelled pixels; never a box's label), the others are named by TargetClasses.
///
/// The rule for bad targets (docs/targets.md): a usable image is never rejected for its
/// annotation. A kind of target (mask, boxes, landmarks) with any problem is left out whole for
/// that image and marked TargetState::kInvalid, with the problem in the file's report entry, so
/// that a loss can skip it; the image itself is kept. A box partly outside the image is clipped
/// to it (counted, "boxes_clipped"); clipping is not a problem.

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace medload::loader {

/// A label map: one class id per pixel, row-major; 0 is the background.
struct LabelMask {
  int height = 0;
  int width = 0;
  std::vector<std::uint16_t> labels;  ///< height * width class ids
};

/// An axis-aligned box, x0 < x1 and y0 < y1 (continuous coordinates), and its class id (>= 1).
struct Box {
  double x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  std::int32_t label = 0;
};

/// A point and its class id (which landmark it is, >= 1).
struct Landmark {
  double x = 0, y = 0;
  std::int32_t label = 0;
};

/// The largest class id (mask values are uint16).
inline constexpr std::int32_t kMaxTargetClass = 65535;

/// Names of the target classes, index = class id. names[0] is the background ("background" unless
/// the map names it). Without a class map, the ids a dataset uses name themselves ("1", "2", ...)
/// and box or landmark labels given as names get ids 1..K in sorted name order.
struct TargetClasses {
  std::vector<std::string> names;

  /// The id of `label`: a name in `names`, or a decimal id 0..names.size()-1. nullopt otherwise.
  std::optional<std::int32_t> find(std::string_view label) const;
  /// True when `id` is 0..names.size()-1.
  bool contains(std::int64_t id) const { return id >= 0 && id < static_cast<std::int64_t>(names.size()); }
};

/// Reads a class map: a JSON object of id -> name, {"1": "liver", "2": "tumour"} (ids decimal,
/// 0..65535; "0" may name the background; ids need not be contiguous: unnamed ids in between are
/// named by their number). Names must be distinct, non-empty UTF-8. Throws IoError when the file
/// cannot be read, FormatError naming the file and the entry otherwise.
TargetClasses read_target_classes(const std::string& path);

/// Limits on target input. Beyond them a kind is a problem of its image (or, for the class map and
/// the annotations CSV, a FormatError), never an allocation the input chose.
inline constexpr std::size_t kMaxTargetsPerImage = 100000;       ///< boxes (landmarks) per image
inline constexpr std::uintmax_t kMaxTargetCsvBytes = 64u << 20;  ///< a manifest's boxes/landmarks CSV file
inline constexpr std::uintmax_t kMaxClassMapBytes = 16u << 20;   ///< read_target_classes
inline constexpr std::uintmax_t kMaxAnnotationsBytes = std::uintmax_t{1} << 30;  ///< read_annotations

/// Whether one kind of target (mask, boxes, landmarks) is known for an image.
enum class TargetState : std::uint8_t {
  kNone = 0,     ///< not given (a loss must not treat the image as having none)
  kValid = 1,    ///< given and checked; for boxes and landmarks, zero of them is a negative image
  kInvalid = 2,  ///< given but unusable (the report says why): left out, like kNone
};

/// "none", "valid", "invalid".
std::string_view to_string(TargetState state);

/// A box or landmark label written as a class name, kept until resolve_target_classes gives it an
/// id: the target at `index` (in its kind's vector) carries label 0 until then.
struct NamedLabel {
  std::size_t index = 0;
  std::string name;  ///< valid UTF-8, not empty, not a number
};

/// What a manifest entry and the annotations CSV say about one input file's targets, before any
/// file is read. Text that cannot be read as targets sets the kind's problem (and the kind becomes
/// TargetState::kInvalid when the file is decoded); the manifest itself stays readable.
struct TargetSources {
  /// The label image of the `mask` column, as a path to read (raw bytes, resolved against the
  /// manifest's folder like `path`); "" = no mask.
  std::string mask_path;
  /// The mask's path as the report shows it (valid UTF-8).
  std::string mask_report_path;
  /// A boxes value was given (inline JSON, a CSV file, or the annotations CSV is in use: an image
  /// with no row there is a negative, with zero boxes).
  bool boxes_given = false;
  std::vector<Box> boxes;  ///< original pixel coordinates, not yet checked against the image
  bool landmarks_given = false;
  std::vector<Landmark> landmarks;
  /// Why the kind's text could not be read ("" = no problem), e.g. "boxes: row 3: 4 numbers and a
  /// label expected, got 3".
  std::string mask_problem, boxes_problem, landmarks_problem;
  /// Labels given as names, until resolve_target_classes turns them into ids and empties these
  /// (a kind with a problem holds none).
  std::vector<NamedLabel> box_names, landmark_names;
  /// Class ids the targets may use are 0..class_count-1 (the class map's); 0 = any id up to
  /// kMaxTargetClass (no class map). Checked when the file is decoded.
  std::int32_t class_count = 0;

  /// True when any kind was given.
  bool any() const noexcept {
    return !mask_path.empty() || boxes_given || landmarks_given || !mask_problem.empty() ||
           !boxes_problem.empty() || !landmarks_problem.empty();
  }
};

/// One frame's targets: in original pixel coordinates on DecodedImage, on the output grid on
/// StagedFrame. A kind that is not kValid holds nothing.
struct FrameTargets {
  TargetState mask_state = TargetState::kNone;
  LabelMask mask;
  TargetState boxes_state = TargetState::kNone;
  std::vector<Box> boxes;
  TargetState landmarks_state = TargetState::kNone;
  std::vector<Landmark> landmarks;
  /// Boxes (landmarks) preprocessing dropped: less than the minimum visible area inside the crop
  /// box (outside it). 0 on DecodedImage.
  std::size_t boxes_dropped = 0;
  std::size_t landmarks_dropped = 0;

  bool any() const noexcept {
    return mask_state != TargetState::kNone || boxes_state != TargetState::kNone ||
           landmarks_state != TargetState::kNone;
  }
};

/// Box and landmark text, as the manifest's `boxes` and `landmarks` columns hold it. Each sets
/// the kind's `*_given`, appends its targets (a label written as a decimal number is an id,
/// 1..65535; any other label is a class name, kept in `box_names` / `landmark_names`), and on the
/// first problem sets the kind's problem text, naming the row, and empties the kind. Bad text
/// never throws. At most kMaxTargetsPerImage targets.
///
/// JSON: `[[x0, y0, x1, y1, label], ...]` (boxes), `[[x, y, label], ...]` (landmarks); numbers in
/// original pixel coordinates, the label a number or a string; `[]` is zero targets (a negative
/// image). Rows are counted from 1 ("boxes: row 2: x1 (4) is not greater than x0 (9)").
void parse_boxes_json(std::string_view json, TargetSources& targets);
void parse_landmarks_json(std::string_view json, TargetSources& targets);

/// CSV: a header naming `x0,y0,x1,y1,label` (boxes) or `x,y,label` (landmarks) in any order
/// (other columns are ignored), then one target per line; a header alone is zero targets. `name`
/// (UTF-8) names the file in problems, with the line ("boxes: a.csv line 3: ..."). Text that is
/// not UTF-8 is read as Windows-1252.
void parse_boxes_csv(std::istream& in, std::string_view name, TargetSources& targets);
void parse_landmarks_csv(std::istream& in, std::string_view name, TargetSources& targets);

struct SourceFile;  // medload/loader/ingest/source.h

/// What read_annotations found, for the command's summary.
struct AnnotationsSummary {
  static constexpr std::size_t kMaxUnmatchedPaths = 100;
  std::size_t rows = 0;   ///< data rows read
  std::size_t boxes = 0;  ///< boxes added, on inputs whose boxes have no problem
  /// Rows whose path names no input file ("N annotation rows name no input file").
  std::size_t unmatched_rows = 0;
  /// The first kMaxUnmatchedPaths distinct paths of those rows, as UTF-8, in file order.
  std::vector<std::string> unmatched_paths;
};

/// Reads an annotations CSV (the layout of public detection sets: several rows per image) into
/// `sources`, as list_sources listed them. The header names `path,x,y,width,height,label` in any
/// order (other columns are ignored); each row adds the box {x, y, x + width, y + height, label}
/// to the inputs its path names. A row whose x, y, width, height and label are all empty names an
/// image without adding a box.
///
/// Every input gets `boxes_given`: an input no row names is a negative image (zero boxes), so the
/// CSV must cover the whole dataset. An input whose manifest already gave boxes keeps them when no
/// row names it; a row naming it is a problem of its boxes (two sources for one image's boxes).
/// Call it once, after list_sources and before resolve_target_classes.
///
/// A row's path names the inputs (all of them, when the manifest lists one file twice) whose
///   1. `path` equals the row's path joined to the CSV's folder (unless absolute), both made
///      absolute against the working folder and lexically normal (`a/./b` and `a/x/../b` are
///      `a/b`; links are not followed), comparing raw bytes; or, when none does, whose
///   2. `report_path` (relative to the input root or the manifest's folder) equals the row's path
///      read as UTF-8, both lexically normal: a CSV kept elsewhere may name images as the input
///      tree does.
/// A row naming no input is counted (AnnotationsSummary), not an error.
///
/// A bad row (a number that is not finite, width or height not positive, a label that is 0,
/// negative, above 65535 or empty) sets the boxes problem of the inputs it names, naming the CSV
/// and line; labels are ids or names as for parse_boxes_csv. Throws IoError when the file cannot
/// be read, FormatError naming the file (and line) when it is not such a CSV: no header, a
/// required column missing or named twice, a row with more or fewer fields than the header, an
/// unterminated quote, or a file larger than kMaxAnnotationsBytes.
AnnotationsSummary read_annotations(const std::string& csv_path, std::vector<SourceFile>& sources);

/// Gives every box and landmark label written as a name its id, checks the ids against the
/// classes, sets every input's `targets.class_count`, and returns the classes: the last step of
/// reading targets (list_sources, then read_annotations when there is an annotations CSV, then
/// this). A kind with a label it cannot place gets a problem ("boxes: box 3: the label 'polyp' is
/// not in the class map") and is emptied.
///
/// With a class map (`map`, read_target_classes): a name must be one of its names, an id one of
/// its ids; class_count is the map's size, and the map is returned. Without one (class_count 0):
/// when the dataset's box and landmark labels are all ids, the ids name themselves ("1", "2", ...
/// up to the largest used; names[0] is "background"); when any label is a name, the distinct
/// names get ids 1..K in sorted (byte) order, and a kind that also uses an id is a problem (which
/// name an id means is for a class map to say). A name that would be id 0 (the map's name for 0,
/// or "background" without a map) is a problem: no box or landmark is background. Mask ids are
/// known only when masks are decoded: the names returned without a map may stop short of them.
TargetClasses resolve_target_classes(std::vector<SourceFile>& sources,
                                     const std::optional<TargetClasses>& map);

/// What checking one file's targets found: the "targets" object of its report entry.
struct TargetReport {
  TargetState mask = TargetState::kNone;
  TargetState boxes = TargetState::kNone;
  TargetState landmarks = TargetState::kNone;
  std::string mask_problem, boxes_problem, landmarks_problem;  ///< why a kind is kInvalid
  std::size_t box_count = 0;                                   ///< boxes kept (per frame)
  std::size_t boxes_clipped = 0;   ///< boxes partly outside the image, clipped to it
  std::size_t landmark_count = 0;  ///< landmarks kept

  /// {"mask": "valid"|"invalid"|"none", "mask_problem": ... (when invalid), "boxes": ...,
  ///  "box_count": n, "boxes_clipped": n, "landmarks": ..., "landmark_count": n}.
  nlohmann::json to_json() const;
};

}  // namespace medload::loader
