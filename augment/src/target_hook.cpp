// Targets that follow a batch's augmentation: the serving layout's tensors (padded boxes and
// landmarks, [B,1,H,W] masks) checked once per batch, then each sample warped by the pure
// functions of target_warp.h on the caller's thread or a pool.

#include "medload/augment/target_hook.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <functional>
#include <string>
#include <utility>

#include "medload/core/check_range.h"
#include "medload/core/error.h"
#include "medload/core/thread_pool.h"

namespace medload::augment {

void TargetWarpOptions::validate() const {
  if (!(min_box_visible >= 0.0 && min_box_visible <= 1.0)) {
    throw ConfigError("TargetWarpOptions.min_box_visible is " + std::to_string(min_box_visible) +
                      "; allowed 0..1");
  }
}

namespace {

std::string dtype_name(const torch::Tensor& t) { return std::string(c10::toString(t.scalar_type())); }

// Throws ConfigError unless `t` is `type`, of rank `dims`, with `batch` rows.
void check(const torch::Tensor& t, const char* name, torch::ScalarType type, std::int64_t dims,
           std::int64_t batch) {
  if (t.scalar_type() != type || t.dim() != dims || t.size(0) != batch) {
    throw ConfigError(std::string("targets: ") + name + " must be " + std::string(c10::toString(type)) +
                      " of rank " + std::to_string(dims) + " with " + std::to_string(batch) + " rows; got " +
                      dtype_name(t) + " of rank " + std::to_string(t.dim()) +
                      (t.dim() > 0 ? " with " + std::to_string(t.size(0)) + " rows" : ""));
  }
}

// A host (CPU, contiguous) tensor with the values of `t`; finish() writes it back into `t` when it
// is a copy (a CUDA or non-contiguous tensor).
class HostCopy {
 public:
  HostCopy() = default;
  explicit HostCopy(const torch::Tensor& t)
      : original_(t), work_(t.device().is_cpu() && t.is_contiguous() ? t : t.to(torch::kCPU).contiguous()) {}
  torch::Tensor& operator*() { return work_; }
  void finish() {
    if (original_.defined() && !work_.is_same(original_)) original_.copy_(work_);
  }

 private:
  torch::Tensor original_, work_;
};

// One kind of padded point targets: rows float32 [B,M,D+1] (D coordinates, then the label),
// counts int64 [B].
struct Padded {
  HostCopy rows, counts;
  std::int64_t size = 0;   // M
  std::int64_t width = 0;  // D + 1

  Padded() = default;
  Padded(const torch::Tensor& r, const torch::Tensor& n, std::int64_t batch, std::int64_t dims,
         const char* names[2]) {
    if (!r.defined() || !n.defined()) {
      throw ConfigError(std::string("targets: ") + names[0] + " and " + names[1] +
                        " come together; one is undefined");
    }
    check(r, names[0], torch::kFloat32, 3, batch);
    check(n, names[1], torch::kInt64, 1, batch);
    if (r.size(2) != dims + 1) {
      throw ConfigError(std::string("targets: ") + names[0] + " must be [B,M," + std::to_string(dims + 1) +
                        "] (" + std::to_string(dims) + " coordinates, then the label); got " +
                        std::to_string(r.size(2)) + " values per row");
    }
    rows = HostCopy(r);
    counts = HostCopy(n);
    size = r.size(1);
    width = dims + 1;
  }
  // Sample i's first row.
  float* of(std::size_t i) { return (*rows).data_ptr<float>() + static_cast<std::int64_t>(i) * size * width; }
  void finish() {
    rows.finish();
    counts.finish();
  }
};

// The class id in a row's label column; FormatError unless it is an integer (int32).
std::int64_t label_of(float value, const char* kind, std::int64_t k) {
  if (!(value == std::trunc(value) && std::fabs(value) < 2147483648.0f)) {
    throw FormatError(std::string(kind) + " " + std::to_string(k) + " has label " + std::to_string(value) +
                      ", not a class id");
  }
  return static_cast<std::int64_t>(value);
}

// What warp_boxes and warp_landmarks take.
struct BoxRow {
  double x0, y0, x1, y1;
  std::int64_t label;
};
struct PointRow {
  double x, y;
  std::int64_t label;
};

// The batch's targets on the host, checked once; warp(i) moves sample i's (thread-safe across
// samples: each writes its own rows).
class TargetBatch {
 public:
  TargetBatch(const TargetTensors& t, std::size_t count, int width, int height, const Laterality& laterality)
      : width_(width), height_(height) {
    const auto b = static_cast<std::int64_t>(count);
    if (t.masks.defined()) {
      const bool u8 = t.masks.scalar_type() == torch::kUInt8;
      if ((!u8 && t.masks.scalar_type() != torch::kInt64) || (t.masks.dim() != 4 && t.masks.dim() != 3) ||
          t.masks.size(0) != b || (t.masks.dim() == 4 && t.masks.size(1) != 1) || t.masks.size(-1) != width ||
          t.masks.size(-2) != height) {
        throw ConfigError("targets: masks must be int64 or uint8 [" + std::to_string(b) + ",1," +
                          std::to_string(height) + "," + std::to_string(width) +
                          "] (the images' size); got " + dtype_name(t.masks) + " " +
                          c10::str(t.masks.sizes()));
      }
      if (u8 && !laterality.empty()) laterality.check_uint8();
      masks_ = HostCopy(t.masks);
      masks_u8_ = u8;
      if (t.mask_valid.defined()) {
        check(t.mask_valid, "mask_valid", torch::kBool, 1, b);
        mask_valid_ = HostCopy(t.mask_valid);
      }
    }
    if (t.boxes.defined() || t.box_counts.defined()) {
      const char* names[2] = {"boxes", "box_counts"};
      boxes_ = Padded(t.boxes, t.box_counts, b, 4, names);
    }
    if (t.landmarks.defined() || t.landmark_counts.defined()) {
      const char* names[2] = {"landmarks", "landmark_counts"};
      landmarks_ = Padded(t.landmarks, t.landmark_counts, b, 2, names);
    }
  }

  void warp(std::size_t i, const AppliedParams& p, const Laterality& laterality,
            const TargetWarpOptions& options) {
    if (p.identity_geometry()) return;
    const WarpGeometry g(p);
    try {
      if ((*masks_).defined()) warp_mask_of(i, g, laterality, p.sample_id);
      if (boxes_.size > 0) warp_boxes_of(i, g, laterality, options.min_box_visible);
      if (landmarks_.size > 0) warp_landmarks_of(i, g, laterality);
    } catch (const FormatError& e) {
      throw FormatError("the targets of sample " + std::to_string(p.sample_id) + ": " + e.what());
    }
  }

  void finish() {
    masks_.finish();  // mask_valid is only read
    boxes_.finish();
    landmarks_.finish();
  }

 private:
  void warp_mask_of(std::size_t i, const WarpGeometry& g, const Laterality& laterality, std::int64_t id) {
    if ((*mask_valid_).defined() && !(*mask_valid_).data_ptr<bool>()[i]) return;
    const std::size_t area = static_cast<std::size_t>(width_) * static_cast<std::size_t>(height_);
    if (masks_u8_) {
      std::uint8_t* m = (*masks_).data_ptr<std::uint8_t>() + i * area;
      warp_mask(m, m, width_, height_, g, laterality);
      return;
    }
    // int64 through uint16, warp_mask's type: two linear passes beside the warp's gather.
    std::int64_t* m = (*masks_).data_ptr<std::int64_t>() + i * area;
    thread_local std::vector<std::uint16_t> scratch;
    scratch.resize(area);
    std::uint16_t* ids = scratch.data();
    std::uint64_t high = 0;
    for (std::size_t k = 0; k < area; ++k) {
      high |= static_cast<std::uint64_t>(m[k]) >> 16;  // nonzero for ids above 65535 and negative ids
      ids[k] = static_cast<std::uint16_t>(m[k]);
    }
    if (high != 0) {
      const std::int64_t* bad = std::find_if(m, m + area, [](std::int64_t v) { return v < 0 || v > 65535; });
      throw FormatError("its mask has class id " + std::to_string(*bad) + " at pixel " +
                        std::to_string(bad - m) + " (sample " + std::to_string(id) + "); ids are 0..65535");
    }
    warp_mask(ids, ids, width_, height_, g, laterality);
    for (std::size_t k = 0; k < area; ++k) m[k] = ids[k];
  }

  // Sample i's first `n` rows (n = its count, checked against M).
  static std::int64_t count_of(Padded& kind, std::size_t i, const char* name) {
    const std::int64_t n = (*kind.counts).data_ptr<std::int64_t>()[i];
    if (n < 0 || n > kind.size) {
      throw ConfigError(std::string("targets: ") + name + "[" + std::to_string(i) + "] is " +
                        std::to_string(n) + "; allowed 0.." + std::to_string(kind.size));
    }
    return n;
  }

  // Writes `out` into sample i's rows of `kind` (`write` the coordinates, then the label), padding
  // the rows it no longer fills with (0, ..., 0, -1).
  template <class Row, class Write>
  static void store(Padded& kind, std::size_t i, const std::vector<Row>& out, Write write) {
    float* row = kind.of(i);
    const std::int64_t old = (*kind.counts).data_ptr<std::int64_t>()[i];
    const std::int64_t label = kind.width - 1;
    for (std::size_t k = 0; k < out.size(); ++k, row += kind.width) {
      write(out[k], row);
      row[label] = static_cast<float>(out[k].label);
    }
    for (auto k = static_cast<std::int64_t>(out.size()); k < old; ++k, row += kind.width) {
      std::fill_n(row, label, 0.0f);
      row[label] = -1.0f;
    }
    (*kind.counts).data_ptr<std::int64_t>()[i] = static_cast<std::int64_t>(out.size());
  }

  void warp_boxes_of(std::size_t i, const WarpGeometry& g, const Laterality& laterality, double min_visible) {
    const std::int64_t n = count_of(boxes_, i, "box_counts");
    if (n == 0) return;
    const float* b = boxes_.of(i);
    std::vector<BoxRow> in(static_cast<std::size_t>(n));
    for (std::int64_t k = 0; k < n; ++k, b += 5) in[k] = {b[0], b[1], b[2], b[3], label_of(b[4], "box", k)};
    store(boxes_, i, warp_boxes(in, g, width_, height_, min_visible, laterality),
          [](const BoxRow& r, float* out) {
            out[0] = static_cast<float>(r.x0);
            out[1] = static_cast<float>(r.y0);
            out[2] = static_cast<float>(r.x1);
            out[3] = static_cast<float>(r.y1);
          });
  }

  void warp_landmarks_of(std::size_t i, const WarpGeometry& g, const Laterality& laterality) {
    const std::int64_t n = count_of(landmarks_, i, "landmark_counts");
    if (n == 0) return;
    const float* p = landmarks_.of(i);
    std::vector<PointRow> in(static_cast<std::size_t>(n));
    for (std::int64_t k = 0; k < n; ++k, p += 3) in[k] = {p[0], p[1], label_of(p[2], "landmark", k)};
    store(landmarks_, i, warp_landmarks(in, g, width_, height_, laterality),
          [](const PointRow& r, float* out) {
            out[0] = static_cast<float>(r.x);
            out[1] = static_cast<float>(r.y);
          });
  }

  int width_, height_;
  HostCopy masks_, mask_valid_;
  bool masks_u8_ = false;
  Padded boxes_, landmarks_;
};

// warp_targets on `pool` (the caller's thread alone when null).
void warp_batch(TargetTensors& targets, const std::vector<AppliedParams>& params, int width, int height,
                const Laterality& laterality, const TargetWarpOptions& options, ThreadPool* pool) {
  TargetBatch batch(targets, params.size(), width, height, laterality);
  const auto one = [&](std::size_t i) { batch.warp(i, params[i], laterality, options); };
  const bool any = std::any_of(params.begin(), params.end(),
                               [](const AppliedParams& p) { return !p.identity_geometry(); });
  if (!any) return;
  if (pool != nullptr) {
    pool->parallel_for(params.size(), one);
  } else {
    for (std::size_t i = 0; i < params.size(); ++i) one(i);
  }
  batch.finish();
}

}  // namespace

void warp_targets(TargetTensors& targets, const std::vector<AppliedParams>& params, int width, int height,
                  const Laterality& laterality, const TargetWarpOptions& options) {
  options.validate();
  warp_batch(targets, params, width, height, laterality, options, nullptr);
}

// ---------------------------------------------------------------------------------------------
// TargetAugmenter

struct TargetAugmenter::Impl {
  Augmenter augmenter;
  Laterality laterality;
  TargetWarpOptions options;
  std::unique_ptr<ThreadPool> pool;  // null with one thread

  Impl(AugmentOptions o, std::size_t threads, Normalization normalization, TargetWarpOptions t)
      : augmenter(o, threads, normalization), laterality(o.laterality), options(t) {}
};

TargetAugmenter::TargetAugmenter(AugmentOptions options, std::size_t threads, Normalization normalization,
                                 TargetWarpOptions targets) {
  targets.validate();
  impl_ = std::make_unique<Impl>(std::move(options), threads, normalization, targets);
  threads = core::resolve_threads(threads);  // the Augmenter checked the range
  if (threads > 1) impl_->pool = std::make_unique<ThreadPool>(threads - 1);
}

TargetAugmenter::~TargetAugmenter() = default;
TargetAugmenter::TargetAugmenter(TargetAugmenter&&) noexcept = default;
TargetAugmenter& TargetAugmenter::operator=(TargetAugmenter&&) noexcept = default;

Augmenter& TargetAugmenter::augmenter() noexcept { return impl_->augmenter; }
const Laterality& TargetAugmenter::laterality() const noexcept { return impl_->laterality; }

std::vector<AppliedParams> TargetAugmenter::apply(torch::Tensor& images, TargetTensors& targets,
                                                  const std::vector<std::int64_t>& sample_ids,
                                                  std::int64_t epoch) {
  std::vector<AppliedParams> params = impl_->augmenter.apply(images, sample_ids, epoch);
  warp(targets, params, static_cast<int>(images.size(3)), static_cast<int>(images.size(2)));
  return params;
}

void TargetAugmenter::replay(torch::Tensor& images, TargetTensors& targets,
                             const std::vector<AppliedParams>& params) {
  impl_->augmenter.replay(images, params);
  warp(targets, params, static_cast<int>(images.size(3)), static_cast<int>(images.size(2)));
}

void TargetAugmenter::warp(TargetTensors& targets, const std::vector<AppliedParams>& params, int width,
                           int height) {
  warp_batch(targets, params, width, height, impl_->laterality, impl_->options, impl_->pool.get());
}

std::vector<std::int64_t> TargetHook::ids_of(const torch::Tensor& sample_ids) {
  if (!sample_ids.defined() || sample_ids.scalar_type() != torch::kInt64 || sample_ids.dim() != 1) {
    throw ConfigError("the target hook needs int64 [B] sample ids");
  }
  const torch::Tensor ids = sample_ids.to(torch::kCPU).contiguous();
  const std::int64_t* p = ids.data_ptr<std::int64_t>();
  return {p, p + ids.numel()};
}

TargetHook make_target_hook(AugmentOptions options, std::size_t threads, Normalization normalization,
                            TargetWarpOptions targets) {
  return TargetHook(std::make_shared<TargetAugmenter>(std::move(options), threads, normalization, targets));
}

}  // namespace medload::augment
