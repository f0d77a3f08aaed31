#pragma once
/// The inputs of a scan or build with their targets, read in the order the pieces need: the files
/// (list_sources: a folder tree or a manifest, with its mask, boxes and landmarks columns), the
/// boxes of an annotations CSV (read_annotations), then the class map and the class ids of labels
/// given as names (read_target_classes, resolve_target_classes). docs/targets.md has the formats.

#include <optional>
#include <string>
#include <vector>

#include "medload/loader/ingest/annotation.h"
#include "medload/loader/ingest/source.h"

namespace medload::loader {

/// Where the inputs are: the arguments of `medload scan` and `medload build`.
struct InputOptions {
  std::string root;                        ///< input folder, or the manifest's root
  std::optional<std::string> manifest;     ///< CSV manifest; nullopt = the folder tree
  std::optional<std::string> annotations;  ///< annotations CSV (`path,x,y,width,height,label`)
  std::optional<std::string> class_map;    ///< target class map JSON ({"1": "liver", ...})
};

/// The inputs and what their targets need beside them.
struct Inputs {
  std::vector<SourceFile> sources;
  /// Names of the target classes by id (the class map's, or the ids and names the inputs use).
  TargetClasses target_classes;
  /// What the annotations CSV held; all zero without one.
  AnnotationsSummary annotations;
  /// True when any input has a mask, boxes or landmarks (or a problem with them).
  bool has_targets = false;
  /// True when any input has a mask column value.
  bool has_masks = false;
};

/// Reads the inputs. Throws what list_sources, read_annotations and read_target_classes throw
/// (IoError, FormatError naming the file); bad target text is a problem of its input, not an
/// error.
Inputs read_inputs(const InputOptions& options);

}  // namespace medload::loader
