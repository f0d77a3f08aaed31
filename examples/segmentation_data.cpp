// segmentation_data: write the real 2D segmentation set of mricron-data (Debian) as PNGs with a
// manifest and a class map, for `medload build` or any other reader.
//
//   segmentation_data -o out/seg                 # ~2 s: 138 axial MR slices + label maps
//   medload build out/seg --manifest out/seg/manifest.csv
//                 --target-classes out/seg/classes.json -o out/seg.h5 --size 64
//
// Images: axial slices of the Colin27 T1 template (ch2.nii.gz); masks: 0 background, 1 left
// cerebrum, 2 right cerebrum, 3 cerebellum, derived from the AAL atlas and the brain mask
// (segmentation_data.h says how); boxes: the cerebellum's connected components; patient_id:
// blocks of contiguous slices, so a patient-level split keeps neighbouring slices together.
#include <CLI/CLI.hpp>

#include <iostream>

#include "integer_options.h"
#include "medload/core/error.h"
#include "segmentation_data.h"

int main(int argc, char** argv) {
  CLI::App app{
      "Write axial MR slices of mricron-data with coarse atlas label maps, a manifest and a class map"};
  medload::examples::SegmentationDataOptions options;
  app.add_option("-o,--output", options.output,
                 "folder to write (images/, masks/, manifest.csv, classes.json)")
      ->required();
  app.add_option("--templates", options.templates, "mricron-data's templates folder")->capture_default_str();
  app.add_option("--block", options.block, "contiguous slices per patient id")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000));
  app.add_option("--min-brain", options.min_brain_fraction,
                 "keep slices with at least this share of brain pixels")
      ->capture_default_str()
      ->check(CLI::Range(0.0, 1.0));
  app.add_option("--min-box-area", options.min_box_area,
                 "smallest cerebellum component (pixels) that gets a box")
      ->capture_default_str()
      ->check(CLI::Range(1, 1000000));
  try {
    medload::cli::require_decimal_integers(app);
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    const auto result = medload::examples::prepare_segmentation_data(options);
    std::cout << result.summary.dump(2) << "\n";
    return 0;
  } catch (const medload::ConfigError& e) {
    std::cerr << "segmentation_data: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "segmentation_data: " << e.what() << "\n";
    return 1;
  }
}
