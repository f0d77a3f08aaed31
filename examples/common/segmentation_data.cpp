#include "segmentation_data.h"

#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <istream>
#include <limits>
#include <sstream>
#include <tuple>

#include "medload/core/error.h"

namespace medload::examples {
namespace {

namespace fs = std::filesystem;

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}
bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// The coarse class an AAL region's name says; throws when the name does not say.
std::uint8_t class_of_region(const std::string& region, const std::string& where) {
  if (starts_with(region, "Cerebelum_") || starts_with(region, "Vermis_")) return kCerebellum;
  if (ends_with(region, "_L")) return kLeftCerebrum;
  if (ends_with(region, "_R")) return kRightCerebrum;
  throw FormatError(where + ": the region \"" + region +
                    "\" is neither cerebellar (Cerebelum_*, Vermis_*) nor ends in _L or _R");
}

// ---- the volumes ------------------------------------------------------------------------------

struct Volumes {
  NiftiVolume mr, brain, atlas;
  std::vector<std::uint8_t> id_to_class;
};

Volumes read_volumes(const std::string& templates) {
  const fs::path dir(templates);
  if (!fs::exists(dir / "ch2.nii.gz")) {
    throw IoError(templates +
                  " holds no ch2.nii.gz: install Debian's mricron-data (scripts/setup.sh does), which " +
                  "puts it in /usr/share/mricron/templates");
  }
  Volumes v;
  v.mr = read_nifti((dir / "ch2.nii.gz").string());
  v.brain = read_nifti((dir / "ch2bet.nii.gz").string());
  v.atlas = read_nifti((dir / "aal.nii.gz").string());
  const std::string text = (dir / "aal.nii.txt").string();
  std::ifstream in(text);
  if (!in) throw IoError(text + ": cannot open (the AAL label list of mricron-data)");
  v.id_to_class = coarse_classes_from_aal_text(in, text);
  if (!v.mr.same_grid(v.brain) || !v.mr.same_grid(v.atlas)) {
    // The package's atlases share ch2's 1 mm grid; another grid would need resampling, which this
    // example does not do rather than do silently.
    throw ConfigError(templates + ": ch2, ch2bet and aal are not on the same voxel grid (dims and sform)");
  }
  return v;
}

// The 99.5th percentile of the MR inside the brain: the value stretched to 255.
float brain_white_point(const NiftiVolume& mr, const std::vector<std::uint8_t>& labels) {
  std::vector<float> values;
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] != kBackground) values.push_back(mr.voxels[i]);
  }
  if (values.empty()) throw ConfigError("the coarse label volume holds no brain voxel");
  const auto nth =
      values.begin() + static_cast<std::ptrdiff_t>(0.995 * static_cast<double>(values.size() - 1));
  std::nth_element(values.begin(), nth, values.end());
  return std::max(*nth, 1e-6f);
}

// ---- one slice --------------------------------------------------------------------------------

// Axial slice k of a volume as an image: column = i, row = ny - 1 - j.
template <class T, class F>
std::vector<T> axial_slice(const NiftiVolume& grid, std::int64_t k, F value_at) {
  const auto w = grid.nx, h = grid.ny;
  std::vector<T> out(static_cast<std::size_t>(w * h));
  for (std::int64_t j = 0; j < h; ++j) {
    for (std::int64_t i = 0; i < w; ++i) {
      out[static_cast<std::size_t>((h - 1 - j) * w + i)] =
          value_at(static_cast<std::size_t>(i + w * (j + h * k)));
    }
  }
  return out;
}

void write_png(const fs::path& path, const std::vector<std::uint8_t>& pixels, int width, int height) {
  const cv::Mat image(height, width, CV_8UC1, const_cast<std::uint8_t*>(pixels.data()));
  if (!cv::imwrite(path.string(), image)) throw IoError(path.string() + ": cannot write");
}

std::string boxes_json(const std::vector<PixelBox>& boxes) {
  std::string s = "[";
  for (std::size_t b = 0; b < boxes.size(); ++b) {
    const auto& x = boxes[b];
    s += (b ? ",[" : "[") + std::to_string(x.x0) + "," + std::to_string(x.y0) + "," + std::to_string(x.x1) +
         "," + std::to_string(x.y1) + "," + std::to_string(int{kCerebellum}) + "]";
  }
  return s + "]";
}

// Writes the class map: {"0": "background", "1": "left_cerebrum", ...}.
void write_class_map(const fs::path& path) {
  nlohmann::json j = nlohmann::json::object();
  const auto& names = coarse_class_names();
  for (std::size_t c = 0; c < names.size(); ++c) j[std::to_string(c)] = names[c];
  std::ofstream out(path);
  out << j.dump(2) << "\n";
  if (!out) throw IoError(path.string() + ": cannot write");
}

// Writes the kept slices and the manifest; fills the result's counts.
void write_slices(const SegmentationDataOptions& o, const Volumes& v, const std::vector<std::uint8_t>& labels,
                  SegmentationDataResult& r) {
  const fs::path out(o.output);
  fs::create_directories(out / "images");
  fs::create_directories(out / "masks");
  const int w = static_cast<int>(v.mr.nx), h = static_cast<int>(v.mr.ny);
  const float white = brain_white_point(v.mr, labels);
  std::ofstream manifest(out / "manifest.csv");
  manifest << "path,label,patient_id,mask,boxes\n";
  r.class_pixels.assign(kCoarseClasses, 0);
  std::size_t kept = 0;
  for (std::int64_t k = 0; k < v.mr.nz; ++k) {
    auto mask = axial_slice<std::uint8_t>(v.mr, k, [&](std::size_t i) { return labels[i]; });
    const auto brain =
        std::count_if(mask.begin(), mask.end(), [](std::uint8_t c) { return c != kBackground; });
    if (static_cast<double>(brain) < o.min_brain_fraction * static_cast<double>(mask.size())) continue;
    auto image = axial_slice<std::uint8_t>(v.mr, k, [&](std::size_t i) {
      return static_cast<std::uint8_t>(
          std::lround(std::clamp(v.mr.voxels[i] / white * 255.0f, 0.0f, 255.0f)));
    });
    char stem[16];
    std::snprintf(stem, sizeof stem, "z%03d", static_cast<int>(k));
    write_png(out / "images" / (std::string(stem) + ".png"), image, w, h);
    write_png(out / "masks" / (std::string(stem) + ".png"), mask, w, h);
    const auto boxes = component_boxes(mask, w, h, kCerebellum, o.min_box_area);
    for (auto c : mask) ++r.class_pixels[c];
    char patient[24];
    std::snprintf(patient, sizeof patient, "ch2_block%02d",
                  static_cast<int>(kept / static_cast<std::size_t>(o.block)));
    manifest << "images/" << stem << ".png," << (boxes.empty() ? "without_cerebellum" : "with_cerebellum")
             << "," << patient << ",masks/" << stem << ".png,\"" << boxes_json(boxes) << "\"\n";
    r.boxes += boxes.size();
    ++kept;
  }
  if (!manifest) throw IoError((out / "manifest.csv").string() + ": cannot write");
  r.slices = kept;
  r.patients = (kept + static_cast<std::size_t>(o.block) - 1) / static_cast<std::size_t>(o.block);
}

}  // namespace

const std::vector<std::string>& coarse_class_names() {
  static const std::vector<std::string> names{"background", "left_cerebrum", "right_cerebrum", "cerebellum"};
  return names;
}

std::vector<std::uint8_t> coarse_classes_from_aal_text(std::istream& in, const std::string& name) {
  std::vector<std::uint8_t> classes(256, kBackground);
  std::vector<bool> seen(256, false);
  std::string line;
  std::size_t number = 0, regions = 0;
  while (std::getline(in, line)) {
    ++number;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = name + " line " + std::to_string(number);
    std::istringstream fields(line);
    long id = 0;
    std::string region;
    if (!(fields >> id >> region))
      throw FormatError(where + ": expected \"<id> <name> <code>\", got \"" + line + "\"");
    if (id < 1 || id > 255) throw FormatError(where + ": id " + std::to_string(id) + " is outside 1..255");
    const auto slot = static_cast<std::size_t>(id);
    if (seen[slot]) throw FormatError(where + ": id " + std::to_string(id) + " is named twice");
    seen[slot] = true;
    classes[slot] = class_of_region(region, where);
    ++regions;
  }
  if (regions == 0) throw FormatError(name + ": no region is listed");
  return classes;
}

std::vector<std::uint8_t> coarse_label_volume(const NiftiVolume& atlas,
                                              const std::vector<std::uint8_t>& id_to_class,
                                              const NiftiVolume& brain) {
  if (!atlas.same_grid(brain))
    throw ConfigError("coarse_label_volume: the atlas and the brain mask differ in grid");
  const std::size_t n = atlas.size();
  std::vector<std::uint8_t> labels(n, kBackground);
  std::vector<std::uint32_t> frontier;
  for (std::size_t i = 0; i < n; ++i) {
    const float a = atlas.voxels[i];
    if (!(a >= 0.0f) || a != std::floor(a) || a >= static_cast<float>(id_to_class.size())) {
      throw ConfigError("coarse_label_volume: atlas voxel " + std::to_string(i) + " holds " +
                        std::to_string(a) + "; ids are whole numbers 0.." +
                        std::to_string(id_to_class.size() - 1));
    }
    labels[i] = id_to_class[static_cast<std::size_t>(a)];
    if (labels[i] != kBackground) frontier.push_back(static_cast<std::uint32_t>(i));
  }
  // Breadth-first from every labelled voxel at once: an unlabelled brain voxel takes the class of
  // the first wave that reaches it, i.e. of its nearest labelled voxel along 6-connected brain paths
  // (ties go to the wave queued first, in voxel order: deterministic).
  const std::int64_t nx = atlas.nx, ny = atlas.ny, nz = atlas.nz;
  for (std::size_t head = 0; head < frontier.size(); ++head) {
    const std::size_t v = frontier[head];
    const auto i = static_cast<std::int64_t>(v) % nx, j = (static_cast<std::int64_t>(v) / nx) % ny,
               k = static_cast<std::int64_t>(v) / (nx * ny);
    const std::int64_t step[6][3] = {{-1, 0, 0}, {1, 0, 0}, {0, -1, 0}, {0, 1, 0}, {0, 0, -1}, {0, 0, 1}};
    for (const auto& s : step) {
      const std::int64_t a = i + s[0], b = j + s[1], c = k + s[2];
      if (a < 0 || b < 0 || c < 0 || a >= nx || b >= ny || c >= nz) continue;
      const auto u = static_cast<std::size_t>(a + nx * (b + ny * c));
      if (labels[u] != kBackground || !(brain.voxels[u] > 0.0f)) continue;
      labels[u] = labels[v];
      frontier.push_back(static_cast<std::uint32_t>(u));
    }
  }
  return labels;
}

std::vector<PixelBox> component_boxes(const std::vector<std::uint8_t>& labels, int width, int height,
                                      std::uint8_t value, std::size_t min_area) {
  if (width < 0 || height < 0 ||
      labels.size() != static_cast<std::size_t>(width) * static_cast<std::size_t>(height)) {
    throw ConfigError("component_boxes: " + std::to_string(labels.size()) + " labels for " +
                      std::to_string(width) + "x" + std::to_string(height) + " pixels");
  }
  std::vector<bool> visited(labels.size(), false);
  std::vector<PixelBox> boxes;
  std::vector<std::size_t> stack;
  for (std::size_t start = 0; start < labels.size(); ++start) {
    if (labels[start] != value || visited[start]) continue;
    PixelBox box{width, height, 0, 0};
    std::size_t area = 0;
    visited[start] = true;
    stack.assign(1, start);
    while (!stack.empty()) {
      const std::size_t p = stack.back();
      stack.pop_back();
      ++area;
      const int x = static_cast<int>(p % static_cast<std::size_t>(width)),
                y = static_cast<int>(p / static_cast<std::size_t>(width));
      box.x0 = std::min(box.x0, x);
      box.y0 = std::min(box.y0, y);
      box.x1 = std::max(box.x1, x + 1);
      box.y1 = std::max(box.y1, y + 1);
      for (int dy = -1; dy <= 1; ++dy) {
        for (int dx = -1; dx <= 1; ++dx) {
          const int a = x + dx, b = y + dy;
          if (a < 0 || b < 0 || a >= width || b >= height) continue;
          const std::size_t q =
              static_cast<std::size_t>(b) * static_cast<std::size_t>(width) + static_cast<std::size_t>(a);
          if (labels[q] != value || visited[q]) continue;
          visited[q] = true;
          stack.push_back(q);
        }
      }
    }
    if (area >= min_area) boxes.push_back(box);
  }
  std::sort(boxes.begin(), boxes.end(), [](const PixelBox& a, const PixelBox& b) {
    return std::tie(a.y0, a.x0, a.y1, a.x1) < std::tie(b.y0, b.x0, b.y1, b.x1);
  });
  return boxes;
}

void SegmentationDataOptions::validate() const {
  if (output.empty()) throw ConfigError("SegmentationDataOptions: output is empty");
  if (!(min_brain_fraction >= 0.0 && min_brain_fraction <= 1.0)) {
    throw ConfigError("SegmentationDataOptions: min_brain_fraction is " + std::to_string(min_brain_fraction) +
                      "; it must be in [0, 1]");
  }
  if (block < 1)
    throw ConfigError("SegmentationDataOptions: block is " + std::to_string(block) + "; it must be >= 1");
  if (min_box_area < 1) throw ConfigError("SegmentationDataOptions: min_box_area is 0; it must be >= 1");
}

SegmentationDataResult prepare_segmentation_data(const SegmentationDataOptions& options) {
  options.validate();
  const Volumes v = read_volumes(options.templates);
  const auto labels = coarse_label_volume(v.atlas, v.id_to_class, v.brain);
  SegmentationDataResult r;
  write_slices(options, v, labels, r);
  const fs::path out(options.output);
  write_class_map(out / "classes.json");
  r.manifest = (out / "manifest.csv").string();
  r.class_map = (out / "classes.json").string();
  nlohmann::json pixels = nlohmann::json::object();
  for (std::size_t c = 0; c < kCoarseClasses; ++c) pixels[coarse_class_names()[c]] = r.class_pixels[c];
  r.summary = {{"sources",
                {{"image", (fs::path(options.templates) / "ch2.nii.gz").string()},
                 {"atlas", (fs::path(options.templates) / "aal.nii.gz").string()},
                 {"atlas_labels", (fs::path(options.templates) / "aal.nii.txt").string()},
                 {"brain_mask", (fs::path(options.templates) / "ch2bet.nii.gz").string()}}},
               {"classes", coarse_class_names()},
               {"slices", r.slices},
               {"patients", r.patients},
               {"block", options.block},
               {"boxes", r.boxes},
               {"class_pixels", pixels},
               {"width", v.mr.nx},
               {"height", v.mr.ny}};
  std::ofstream summary(out / "dataset.json");
  summary << r.summary.dump(2) << "\n";
  if (!summary) throw IoError((out / "dataset.json").string() + ": cannot write");
  return r;
}

}  // namespace medload::examples
