#include "medload/augment/augmenter.h"

#include <opencv2/core.hpp>
#include <opencv2/imgproc.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <string>

#include "detail.h"
#include "medload/core/check_range.h"
#include "medload/core/error.h"
#include "medload/core/hash.h"
#include "medload/core/thread_pool.h"

namespace medload::augment {

using namespace detail;

// ---------------------------------------------------------------------------------------------
// AppliedParams

WarpGeometry::WarpGeometry(const AppliedParams& p) noexcept
    : WarpGeometry(p.horizontal_flip, p.vertical_flip, p.rotation_degrees, p.translate_x, p.translate_y,
                   p.scale) {}

bool AppliedParams::identity_geometry() const noexcept {
  return !horizontal_flip && !vertical_flip && rotation_degrees == 0.0 && translate_x == 0.0 &&
         translate_y == 0.0 && scale == 1.0;
}

nlohmann::json AppliedParams::to_json() const {
  nlohmann::json overrides = nlohmann::json::array();
  if (horizontal_flip_override) overrides.push_back("allow_horizontal_flip");
  if (unsafe_override) overrides.push_back("unsafe_override");
  nlohmann::json j = {{"sample_id", sample_id},
                      {"epoch", epoch},
                      {"horizontal_flip", horizontal_flip},
                      {"vertical_flip", vertical_flip},
                      {"rotation_degrees", rotation_degrees},
                      {"translate_x", translate_x},
                      {"translate_y", translate_y},
                      {"scale", scale},
                      {"downsample_factor", downsample_factor},
                      {"blur_sigma", blur_sigma},
                      {"gamma", gamma},
                      {"brightness", brightness},
                      {"contrast", contrast},
                      {"poisson_photons", poisson_photons},
                      {"gaussian_sigma", gaussian_sigma},
                      {"noise_key", hash_hex(noise_key)},
                      {"overrides", overrides}};
  if (view != 0) j["view"] = view;
  return j;
}

namespace {

// Only what some valid options could have drawn (augment_options.h, `ranges`): a value outside is
// a damaged or hand-edited log, and some would make a kernel huge (a blur sigma of 1e6).
// "Not applied" values (photons 0, blur 0, downsample 1) are inside or checked as such.
void check_drawn_values(const AppliedParams& p) {
  auto within = [](const char* name, double value, double lo, double hi) {
    core::check_range(std::string("applied parameter ") + name, value, lo, hi);
  };
  within("rotation_degrees", p.rotation_degrees, -ranges::kRotationDegrees.max, ranges::kRotationDegrees.max);
  within("translate_x", p.translate_x, -ranges::kTranslationFraction.max, ranges::kTranslationFraction.max);
  within("translate_y", p.translate_y, -ranges::kTranslationFraction.max, ranges::kTranslationFraction.max);
  within("scale", p.scale, ranges::kScale.min, ranges::kScale.max);
  within("downsample_factor", p.downsample_factor, ranges::kDownsampleFactor.min,
         ranges::kDownsampleFactor.max);
  within("blur_sigma", p.blur_sigma, 0.0, ranges::kBlurSigma.max);
  within("gamma", p.gamma, ranges::kGamma.min, ranges::kGamma.max);
  within("brightness", p.brightness, ranges::kBrightness.min, ranges::kBrightness.max);
  within("contrast", p.contrast, ranges::kContrast.min, ranges::kContrast.max);
  if (p.poisson_photons != 0.0) {
    within("poisson_photons", p.poisson_photons, ranges::kPoissonPhotons.min, ranges::kPoissonPhotons.max);
  }
  within("gaussian_sigma", p.gaussian_sigma, ranges::kGaussianSigma.min, ranges::kGaussianSigma.max);
}

}  // namespace

AppliedParams AppliedParams::from_json(const nlohmann::json& j) {
  if (!j.is_object())
    throw ConfigError("applied augmentation parameters must be a JSON object, not " + j.dump());
  auto field = [&](const char* name) -> const nlohmann::json& {
    if (!j.contains(name))
      throw ConfigError("applied augmentation parameters lack \"" + std::string(name) + "\"");
    return j.at(name);
  };
  auto number = [&](const char* name) {
    const auto& v = field(name);
    if (!v.is_number())
      throw ConfigError(std::string("applied parameter ") + name + " must be a number, not " + v.dump());
    return v.get<double>();
  };
  auto integer = [&](const char* name) {
    const auto& v = field(name);
    if (!v.is_number_integer()) {
      throw ConfigError(std::string("applied parameter ") + name + " must be an integer, not " + v.dump());
    }
    return v.get<std::int64_t>();
  };
  auto boolean = [&](const char* name) {
    const auto& v = field(name);
    if (!v.is_boolean())
      throw ConfigError(std::string("applied parameter ") + name + " must be true or false, not " + v.dump());
    return v.get<bool>();
  };
  AppliedParams p;
  p.sample_id = integer("sample_id");
  p.epoch = integer("epoch");
  if (j.contains("view")) {
    const auto& v = j.at("view");
    if (!v.is_number_unsigned() || v.get<std::uint64_t>() > 0xFFFFFFFFULL) {
      throw ConfigError("applied parameter view must be an integer in 0..4294967295, not " + v.dump());
    }
    p.view = static_cast<std::uint32_t>(v.get<std::uint64_t>());
  }
  p.horizontal_flip = boolean("horizontal_flip");
  p.vertical_flip = boolean("vertical_flip");
  p.rotation_degrees = number("rotation_degrees");
  p.translate_x = number("translate_x");
  p.translate_y = number("translate_y");
  p.scale = number("scale");
  p.downsample_factor = number("downsample_factor");
  p.blur_sigma = number("blur_sigma");
  p.gamma = number("gamma");
  p.brightness = number("brightness");
  p.contrast = number("contrast");
  p.poisson_photons = number("poisson_photons");
  p.gaussian_sigma = number("gaussian_sigma");
  const auto& key = field("noise_key");
  if (!key.is_string() || key.get<std::string>().size() != 16 ||
      key.get<std::string>().find_first_not_of("0123456789abcdef") != std::string::npos) {
    throw ConfigError("applied parameter noise_key must be 16 lowercase hex digits, not " + key.dump());
  }
  p.noise_key = std::stoull(key.get<std::string>(), nullptr, 16);
  check_drawn_values(p);
  if (j.contains("overrides")) {
    const auto& overrides = j.at("overrides");
    if (!overrides.is_array()) {
      throw ConfigError("applied parameter overrides must be an array, not " + overrides.dump());
    }
    for (const auto& o : overrides) {
      if (o == "allow_horizontal_flip") {
        p.horizontal_flip_override = true;
      } else if (o == "unsafe_override") {
        p.unsafe_override = true;
      } else {
        throw ConfigError("applied parameter overrides holds " + o.dump() +
                          "; allowed \"allow_horizontal_flip\", \"unsafe_override\"");
      }
    }
  }
  return p;
}

// ---------------------------------------------------------------------------------------------
// The CPU path: one sample, [C,H,W] contiguous, with OpenCV kernels.

namespace {

// Torchvision's grayscale weights, for the mean that contrast blends with on 3-channel images.
constexpr std::array<double, 3> kGrayWeights{0.2989, 0.587, 0.114};

// Warp, down-then-up and blur of one plane, in place. `type` is CV_8U or CV_32F.
void geometry_and_resolution(cv::Mat& plane, cv::Mat& scratch, const AppliedParams& p) {
  const int w = plane.cols, h = plane.rows;
  if (!p.identity_geometry()) {
    const Warp warp = inverse_warp(p, w, h);
    const cv::Mat m(2, 3, CV_64F, const_cast<double*>(warp.m));
    cv::warpAffine(plane, scratch, m, plane.size(), cv::INTER_LINEAR | cv::WARP_INVERSE_MAP,
                   cv::BORDER_CONSTANT, cv::Scalar(0));
    scratch.copyTo(plane);
  }
  if (p.downsample_factor < 1.0) {
    cv::resize(plane, scratch,
               cv::Size(downsampled(w, p.downsample_factor), downsampled(h, p.downsample_factor)), 0, 0,
               cv::INTER_AREA);
    cv::resize(scratch, plane, plane.size(), 0, 0, cv::INTER_LINEAR);
  }
  if (p.blur_sigma > 0.0) {
    const int k = blur_kernel_size(p.blur_sigma);
    cv::GaussianBlur(plane, scratch, cv::Size(k, k), p.blur_sigma, p.blur_sigma, cv::BORDER_REFLECT_101);
    scratch.copyTo(plane);
  }
}

bool has_point_ops(const AppliedParams& p) {
  return p.gamma != 1.0 || p.brightness != 1.0 || p.contrast != 1.0 || p.poisson_photons > 0.0 ||
         p.gaussian_sigma > 0.0;
}

// The mean that contrast blends with, from per-channel means.
double blend_mean(const std::vector<double>& channel_means) {
  if (channel_means.size() == 3) {
    return kGrayWeights[0] * channel_means[0] + kGrayWeights[1] * channel_means[1] +
           kGrayWeights[2] * channel_means[2];
  }
  double sum = 0.0;
  for (double m : channel_means) sum += m;
  return sum / static_cast<double>(channel_means.size());
}

void augment_sample_u8(std::uint8_t* data, int channels, int h, int w, const AppliedParams& p) {
  const std::size_t plane_size = static_cast<std::size_t>(h) * w;
  cv::Mat scratch;
  for (int c = 0; c < channels; ++c) {
    cv::Mat plane(h, w, CV_8U, data + c * plane_size);
    geometry_and_resolution(plane, scratch, p);
  }
  if (!has_point_ops(p)) return;

  // Gamma and brightness as a table over the 256 grey levels; the contrast mean from the
  // histogram, so it is exact without a pass in floating point.
  std::array<double, 256> base{};
  for (int v = 0; v < 256; ++v) base[v] = gamma_brightness(v / 255.0, p);
  double mean = 0.0;
  if (p.contrast != 1.0) {
    std::vector<double> means(channels);
    for (int c = 0; c < channels; ++c) {
      std::array<std::uint64_t, 256> hist{};
      const std::uint8_t* src = data + c * plane_size;
      for (std::size_t i = 0; i < plane_size; ++i) ++hist[src[i]];
      double sum = 0.0;
      for (int v = 0; v < 256; ++v) sum += static_cast<double>(hist[v]) * base[v];
      means[c] = sum / static_cast<double>(plane_size);
    }
    mean = blend_mean(means);
  }
  std::array<float, 256> table{};
  for (int v = 0; v < 256; ++v) table[v] = static_cast<float>(contrast(base[v], mean, p));

  const bool poisson = p.poisson_photons > 0.0, gaussian = p.gaussian_sigma > 0.0;
  if (!poisson && !gaussian) {
    cv::Mat lut(1, 256, CV_8U);
    for (int v = 0; v < 256; ++v)
      lut.at<std::uint8_t>(v) = static_cast<std::uint8_t>(std::nearbyint(table[v] * 255.0f));
    for (int c = 0; c < channels; ++c) {
      cv::Mat plane(h, w, CV_8U, data + c * plane_size);
      cv::LUT(plane, lut, plane);
    }
    return;
  }
  // Poisson and Gaussian noise as one Gaussian: y + sqrt(y / photons + sigma^2) * z, with the
  // standard deviation tabulated per grey level.
  const float inv_photons = poisson ? static_cast<float>(1.0 / p.poisson_photons) : 0.0f;
  const float sigma = static_cast<float>(p.gaussian_sigma), variance = sigma * sigma;
  std::array<float, 256> sd{};
  for (int v = 0; v < 256; ++v) sd[v] = std::sqrt(table[v] * inv_photons + variance);
  const std::uint64_t key = noise_field_key(p.noise_key);
  const std::size_t n = plane_size * channels;
  for (std::size_t i = 0; i < n; ++i) {
    const std::uint8_t v = data[i];
    float y = table[v] + sd[v] * noise_at(key, i);
    y = std::min(std::max(y, 0.0f), 1.0f);
    data[i] = static_cast<std::uint8_t>(std::nearbyint(y * 255.0f));
  }
}

void augment_sample_f32(float* data, int channels, int h, int w, const AppliedParams& p) {
  const std::size_t plane_size = static_cast<std::size_t>(h) * w;
  cv::Mat scratch;
  for (int c = 0; c < channels; ++c) {
    cv::Mat plane(h, w, CV_32F, data + c * plane_size);
    geometry_and_resolution(plane, scratch, p);
  }
  const std::size_t n = plane_size * channels;
  if (!has_point_ops(p)) {
    for (std::size_t i = 0; i < n; ++i) data[i] = std::min(std::max(data[i], 0.0f), 1.0f);
    return;
  }
  if (p.gamma != 1.0 || p.brightness != 1.0) {
    const float g = static_cast<float>(p.gamma), b = static_cast<float>(p.brightness);
    for (std::size_t i = 0; i < n; ++i) {
      float y = std::min(std::max(data[i], 0.0f), 1.0f);
      if (g != 1.0f) y = std::min(std::pow(y, g), 1.0f);
      data[i] = std::min(std::max(y * b, 0.0f), 1.0f);
    }
  }
  if (p.contrast != 1.0) {
    std::vector<double> means(channels);
    for (int c = 0; c < channels; ++c) {
      double sum = 0.0;
      const float* src = data + c * plane_size;
      for (std::size_t i = 0; i < plane_size; ++i) sum += src[i];
      means[c] = sum / static_cast<double>(plane_size);
    }
    const float mean = static_cast<float>(blend_mean(means));
    const float k = static_cast<float>(p.contrast), offset = (1.0f - k) * mean;
    for (std::size_t i = 0; i < n; ++i) data[i] = std::min(std::max(k * data[i] + offset, 0.0f), 1.0f);
  }
  const bool poisson = p.poisson_photons > 0.0, gaussian = p.gaussian_sigma > 0.0;
  if (poisson || gaussian) {
    const float inv_photons = poisson ? static_cast<float>(1.0 / p.poisson_photons) : 0.0f;
    const float sigma = static_cast<float>(p.gaussian_sigma), variance = sigma * sigma;
    const std::uint64_t key = noise_field_key(p.noise_key);
    for (std::size_t i = 0; i < n; ++i) {
      const float y = std::min(std::max(data[i], 0.0f), 1.0f);
      data[i] = std::min(std::max(y + std::sqrt(y * inv_photons + variance) * noise_at(key, i), 0.0f), 1.0f);
    }
  } else {
    for (std::size_t i = 0; i < n; ++i) data[i] = std::min(std::max(data[i], 0.0f), 1.0f);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Augmenter

struct Augmenter::Impl {
  AugmentOptions options;
  Normalization normalization;
  bool unsafe_in_force = false;  // unsafe_override is set and some value relies on it
  std::uint32_t view = 0;
  std::unique_ptr<ThreadPool> pool;  // null with one thread: the caller does the work
};

Augmenter::Augmenter(AugmentOptions options, std::size_t threads, Normalization normalization,
                     std::uint32_t view)
    : impl_(std::make_unique<Impl>()) {
  options.validate();
  if (!(normalization.std > 0.0f) || !std::isfinite(normalization.std) ||
      !std::isfinite(normalization.mean)) {
    throw ConfigError("augmentation normalization is mean " + std::to_string(normalization.mean) + ", std " +
                      std::to_string(normalization.std) + "; std must be > 0 and both finite");
  }
  for (const std::string& line : options.active_overrides()) {
    impl_->unsafe_in_force = impl_->unsafe_in_force || line.rfind("unsafe_override", 0) == 0;
  }
  impl_->options = std::move(options);
  impl_->normalization = normalization;
  impl_->view = view;
  core::check_range("augmentation threads", threads, 0, 1024);
  threads = core::resolve_threads(threads);
  if (threads > 1) impl_->pool = std::make_unique<ThreadPool>(threads - 1);
}

Augmenter::~Augmenter() = default;
Augmenter::Augmenter(Augmenter&&) noexcept = default;
Augmenter& Augmenter::operator=(Augmenter&&) noexcept = default;

const AugmentOptions& Augmenter::options() const noexcept { return impl_->options; }
std::uint32_t Augmenter::view() const noexcept { return impl_->view; }

AppliedParams Augmenter::draw(std::int64_t sample_id, std::int64_t epoch) const {
  const AugmentOptions& o = impl_->options;
  AppliedParams p;
  p.sample_id = sample_id;
  p.epoch = epoch;
  p.view = impl_->view;
  p.horizontal_flip_override = o.allow_horizontal_flip && o.horizontal_flip.probability > 0.0;
  p.unsafe_override = impl_->unsafe_in_force;
  if (!o.enabled) return p;
  const std::uint64_t key = view_key(o.seed, epoch, sample_id, impl_->view);
  // Each operation owns fixed counters (4 per op) so that its draws do not depend on the
  // other operations' settings: switching blur off leaves the rotation of every sample as it was.
  auto u = [&](int op, int k) {
    return unit_double(random_u64(key, static_cast<std::uint64_t>(op * 4 + k)));
  };
  auto on = [&](int op, double probability) { return probability > 0.0 && u(op, 0) < probability; };
  auto uniform = [&](int op, double lo, double hi) { return lo + (hi - lo) * u(op, 1); };
  auto log_uniform = [&](int op, double lo, double hi) {
    return std::exp(uniform(op, std::log(lo), std::log(hi)));
  };

  p.horizontal_flip = on(0, o.horizontal_flip.probability);
  p.vertical_flip = on(1, o.vertical_flip.probability);
  if (on(2, o.rotation.probability))
    p.rotation_degrees = uniform(2, -o.rotation.max_degrees, o.rotation.max_degrees);
  if (on(3, o.translation.probability)) {
    p.translate_x = uniform(3, -o.translation.max_fraction, o.translation.max_fraction);
    p.translate_y = -o.translation.max_fraction + 2.0 * o.translation.max_fraction * u(3, 2);
  }
  if (on(4, o.scale.probability)) p.scale = uniform(4, o.scale.min, o.scale.max);
  if (on(5, o.downsample.probability))
    p.downsample_factor = uniform(5, o.downsample.min_factor, o.downsample.max_factor);
  if (on(6, o.blur.probability)) p.blur_sigma = uniform(6, o.blur.min_sigma, o.blur.max_sigma);
  if (on(7, o.gamma.probability)) p.gamma = log_uniform(7, o.gamma.min, o.gamma.max);
  if (on(8, o.brightness.probability)) p.brightness = uniform(8, o.brightness.min, o.brightness.max);
  if (on(9, o.contrast.probability)) p.contrast = uniform(9, o.contrast.min, o.contrast.max);
  if (on(10, o.poisson_noise.probability)) {
    p.poisson_photons = log_uniform(10, o.poisson_noise.min_photons, o.poisson_noise.max_photons);
  }
  if (on(11, o.gaussian_noise.probability)) p.gaussian_sigma = uniform(11, 0.0, o.gaussian_noise.max_sigma);
  p.noise_key = random_u64(key, 1000);
  return p;
}

namespace {

void check_batch(const torch::Tensor& batch, std::size_t count, const char* what) {
  if (!batch.defined() || batch.dim() != 4) {
    throw ConfigError(
        std::string("augmentation needs a [B,C,H,W] batch; got ") +
        (batch.defined() ? std::to_string(batch.dim()) + " dimensions" : "an undefined tensor"));
  }
  if (batch.scalar_type() != torch::kUInt8 && batch.scalar_type() != torch::kFloat32) {
    throw ConfigError(std::string("augmentation needs a uint8 or float32 batch; got ") +
                      std::string(c10::toString(batch.scalar_type())));
  }
  if (static_cast<std::size_t>(batch.size(0)) != count) {
    throw ConfigError("the batch has " + std::to_string(batch.size(0)) + " samples but " +
                      std::to_string(count) + " " + what);
  }
}

}  // namespace

std::vector<AppliedParams> Augmenter::apply(torch::Tensor& batch, const std::vector<std::int64_t>& sample_ids,
                                            std::int64_t epoch) {
  check_batch(batch, sample_ids.size(), "sample ids");
  std::vector<AppliedParams> params(sample_ids.size());
  for (std::size_t i = 0; i < sample_ids.size(); ++i) params[i] = draw(sample_ids[i], epoch);
  if (impl_->options.enabled) replay(batch, params);
  return params;
}

void Augmenter::replay(torch::Tensor& batch, const std::vector<AppliedParams>& params) {
  check_batch(batch, params.size(), "parameter sets");
  if (params.empty()) return;
  const Normalization& norm = impl_->normalization;
  if (batch.scalar_type() == torch::kFloat32 && (norm.mean != 0.0f || norm.std != 1.0f)) {
    // Augment x in [0, 1], then normalise again.
    batch.mul_(norm.std).add_(norm.mean);
    replay_unnormalized(batch, params);
    batch.sub_(norm.mean).div_(norm.std);
    return;
  }
  replay_unnormalized(batch, params);
}

void Augmenter::replay_unnormalized(torch::Tensor& batch, const std::vector<AppliedParams>& params) {
  if (!batch.device().is_cpu()) {
    apply_tensor_path(batch, params);
    return;
  }
  if (!batch.is_contiguous()) {
    // In place for the caller: augment a contiguous copy, then write it back into the view.
    torch::Tensor work = batch.contiguous();
    replay_unnormalized(work, params);
    batch.copy_(work);
    return;
  }
  const int channels = static_cast<int>(batch.size(1)), h = static_cast<int>(batch.size(2)),
            w = static_cast<int>(batch.size(3));
  const std::size_t sample_size = static_cast<std::size_t>(channels) * h * w;
  const bool u8 = batch.scalar_type() == torch::kUInt8;
  void* base = batch.data_ptr();
  auto one = [&](std::size_t i) {
    try {
      if (u8) {
        augment_sample_u8(static_cast<std::uint8_t*>(base) + i * sample_size, channels, h, w, params[i]);
      } else {
        augment_sample_f32(static_cast<float*>(base) + i * sample_size, channels, h, w, params[i]);
      }
    } catch (const cv::Exception& e) {
      throw WorkerError("augmenting sample " + std::to_string(params[i].sample_id) + " (" +
                        std::to_string(h) + "x" + std::to_string(w) + ") failed in OpenCV: " + e.what());
    }
  };
  if (impl_->pool) {
    impl_->pool->parallel_for(params.size(), one);
  } else {
    for (std::size_t i = 0; i < params.size(); ++i) one(i);
  }
}

nlohmann::json Augmenter::describe() const {
  return {{"options", impl_->options.to_json()},
          {"overrides", impl_->options.active_overrides()},
          {"normalization", {{"mean", impl_->normalization.mean}, {"std", impl_->normalization.std}}}};
}

namespace {

// The loader hook that applies `augmenter` (shared by the hook's copies).
AugmentHook hook_of(std::shared_ptr<Augmenter> augmenter) {
  return
      [augmenter = std::move(augmenter)](torch::Tensor& batch, const std::vector<std::int64_t>& sample_ids,
                                         std::int64_t epoch) { augmenter->apply(batch, sample_ids, epoch); };
}

// An augmenter of one view; a ConfigError of its options names the view.
std::shared_ptr<Augmenter> view_augmenter(AugmentOptions options, std::size_t threads,
                                          Normalization normalization, std::uint32_t view, const char* name) {
  try {
    return std::make_shared<Augmenter>(std::move(options), threads, normalization, view);
  } catch (const ConfigError& e) {
    throw ConfigError(std::string(name) + " view: " + e.what());
  }
}

}  // namespace

AugmentHook make_hook(AugmentOptions options, std::size_t threads, Normalization normalization) {
  return hook_of(std::make_shared<Augmenter>(std::move(options), threads, normalization));
}

TwoViewHooks make_two_view_hooks(AugmentOptions weak, AugmentOptions strong, std::size_t threads,
                                 Normalization normalization) {
  TwoViewHooks hooks;
  hooks.weak = hook_of(view_augmenter(std::move(weak), threads, normalization, 0, "weak"));
  hooks.strong = hook_of(view_augmenter(std::move(strong), threads, normalization, 1, "strong"));
  return hooks;
}

}  // namespace medload::augment
