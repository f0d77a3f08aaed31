#pragma once
/// A real 2D segmentation set from Debian's mricron-data: axial slices of the Colin27 T1 MR
/// template `ch2.nii.gz`, each with a coarse label map derived from the AAL atlas `aal.nii.gz`
/// (registered to ch2, same grid) and the brain mask `ch2bet.nii.gz`, and boxes around the
/// connected components of the cerebellum. Written as PNGs with a manifest that `medload build`
/// (and build_cache) reads: `path,label,patient_id,mask,boxes`, plus a class map for the targets.
///
/// The coarse classes (coarse_class_names()): 0 background, 1 left cerebrum, 2 right cerebrum,
/// 3 cerebellum. AAL's 116 regions are mapped by their names in the package's `aal.nii.txt`
/// (`Cerebelum_*` and `Vermis_*` are the cerebellum; other names end in `_L` or `_R`), never by
/// the parity of their ids. AAL labels grey matter; the brain's other voxels (ch2bet > 0: white
/// matter, ventricles, brainstem) take the coarse class of the nearest AAL voxel, nearest along
/// 6-connected paths inside the brain (a multi-source breadth-first search), so a hemisphere
/// label covers the whole hemisphere. No torch here: the data preparation builds and runs alone.

#include <cstddef>
#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nifti.h"

namespace medload::examples {

/// Coarse class ids, as the label PNGs and the class map hold them.
enum CoarseClass : std::uint8_t {
  kBackground = 0,
  kLeftCerebrum = 1,
  kRightCerebrum = 2,
  kCerebellum = 3,
};
/// Number of coarse classes, background included.
inline constexpr std::size_t kCoarseClasses = 4;
/// {"background", "left_cerebrum", "right_cerebrum", "cerebellum"}, indexed by CoarseClass.
const std::vector<std::string>& coarse_class_names();

/// The coarse class of every AAL id, from the atlas's label text: one region per line,
/// "<id> <name> <code>" (ids 1..255). Index = AAL id; ids the text does not name map to
/// kBackground. Throws FormatError naming `name` and the line for a line that is not
/// "<id> <name> ...", an id outside 1..255 or given twice, or a name that is neither cerebellar
/// nor ends in _L / _R (the side cannot be told).
std::vector<std::uint8_t> coarse_classes_from_aal_text(std::istream& in, const std::string& name);

/// The coarse label volume ([nz, ny, nx] as `atlas`, uint8 CoarseClass): atlas voxels take their
/// id's class; voxels of `brain` (> 0) the atlas leaves unlabelled take the class of the nearest
/// labelled voxel through the brain (see the file comment); the rest are background. Throws
/// ConfigError when the grids differ (same_grid) or an atlas value is not a whole id in
/// 0..id_to_class.size()-1.
std::vector<std::uint8_t> coarse_label_volume(const NiftiVolume& atlas,
                                              const std::vector<std::uint8_t>& id_to_class,
                                              const NiftiVolume& brain);

/// A box in continuous pixel coordinates (pixel (x, y) covers [x, x+1) x [y, y+1)).
struct PixelBox {
  int x0 = 0, y0 = 0, x1 = 0, y1 = 0;
  bool operator==(const PixelBox& o) const { return x0 == o.x0 && y0 == o.y0 && x1 == o.x1 && y1 == o.y1; }
};

/// Bounding boxes of the 8-connected components of the pixels equal to `value` in a row-major
/// `height` x `width` label image, components smaller than `min_area` pixels left out; sorted by
/// (y0, x0, y1, x1). Throws ConfigError when labels.size() != width * height.
std::vector<PixelBox> component_boxes(const std::vector<std::uint8_t>& labels, int width, int height,
                                      std::uint8_t value, std::size_t min_area);

/// Options of prepare_segmentation_data.
struct SegmentationDataOptions {
  /// Folder holding ch2.nii.gz, ch2bet.nii.gz, aal.nii.gz and aal.nii.txt (mricron-data's).
  std::string templates = "/usr/share/mricron/templates";
  /// Folder to write (created; images/, masks/, manifest.csv, classes.json, dataset.json).
  std::string output;
  /// A slice is kept when at least this share of its pixels is brain (a coarse class > 0). 0..1.
  double min_brain_fraction = 0.05;
  /// Contiguous kept slices grouped into one "patient", so that a patient-level split never puts
  /// a slice in val whose direct neighbours are in train (except at a block's edge). >= 1.
  int block = 8;
  /// Components of the cerebellum smaller than this (pixels) get no box. >= 1.
  std::size_t min_box_area = 20;
  /// Throws ConfigError naming the field.
  void validate() const;
};

/// What prepare_segmentation_data wrote.
struct SegmentationDataResult {
  std::string manifest;      ///< output/manifest.csv
  std::string class_map;     ///< output/classes.json ({"0": "background", "1": "left_cerebrum", ...})
  std::size_t slices = 0;    ///< images written
  std::size_t patients = 0;  ///< blocks of slices
  std::size_t boxes = 0;     ///< cerebellum boxes in all
  /// Pixels per coarse class over the written label images [kCoarseClasses].
  std::vector<std::int64_t> class_pixels;
  /// Everything above and the sources, as written to output/dataset.json.
  nlohmann::json summary;
};

/// Reads the volumes, derives the coarse labels and writes the slice set (see the file comment):
/// images/z<k>.png (8-bit MR, intensities stretched so the 99.5th percentile of the brain is
/// 255), masks/z<k>.png (8-bit class ids, the same size), one manifest row per slice with the
/// label "with_cerebellum" or "without_cerebellum" (what a stratified split balances), the block
/// as patient_id, and the cerebellum's boxes as inline JSON [[x0,y0,x1,y1,3],...] ([] when the
/// slice shows none). Slices are written with the first voxel axis as columns and the second,
/// reversed, as rows (ch2: the subject's left on the image's left, anterior at the top).
/// Throws IoError / FormatError for unreadable inputs (naming the file), ConfigError for options
/// or volumes whose grids differ.
SegmentationDataResult prepare_segmentation_data(const SegmentationDataOptions& options);

}  // namespace medload::examples
