#include "medload/loader/ingest/inputs.h"

namespace medload::loader {

Inputs read_inputs(const InputOptions& options) {
  Inputs inputs;
  inputs.sources = list_sources(options.root, options.manifest);
  if (options.annotations) inputs.annotations = read_annotations(*options.annotations, inputs.sources);
  std::optional<TargetClasses> map;
  if (options.class_map) map = read_target_classes(*options.class_map);
  inputs.target_classes = resolve_target_classes(inputs.sources, map);
  for (const SourceFile& source : inputs.sources) {
    inputs.has_targets = inputs.has_targets || source.targets.any();
    inputs.has_masks =
        inputs.has_masks || !source.targets.mask_path.empty() || !source.targets.mask_problem.empty();
  }
  return inputs;
}

}  // namespace medload::loader
