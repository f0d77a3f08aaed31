#pragma once
/// The options of per-batch augmentation (DESIGN.md §7): one struct per operation, each with a
/// probability and a range, plus the safety policy. Every field has a default inside medical
/// limits; `AugmentOptions::from_json` fills missing keys with the defaults and rejects unknown
/// keys, values outside their allowed range, and values past a medical limit with a ConfigError
/// naming the key and the limit, e.g.
///   "augment.rotation.max_degrees is 15; the medical limit is 10 (set augment.unsafe_override to allow)".
///
/// Intensities are relative to the full range of the tensor: 255 for uint8, 1.0 for float32
/// (float32 batches are augmented before mean/std normalisation, with values in [0, 1]).

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace medload::augment {

/// The widest range of one option, whatever the safety policy.
struct OptionRange {
  double min;
  double max;
};

/// Every option's widest range: AugmentOptions::validate refuses options outside them, and
/// AppliedParams::from_json refuses drawn values that no valid options could have drawn
/// (rotation and translation are drawn in [-max, max]).
namespace ranges {
inline constexpr OptionRange kRotationDegrees{0.0, 180.0};
inline constexpr OptionRange kTranslationFraction{0.0, 0.5};
inline constexpr OptionRange kScale{0.5, 2.0};
inline constexpr OptionRange kGamma{0.1, 10.0};
inline constexpr OptionRange kBrightness{0.0, 10.0};
inline constexpr OptionRange kContrast{0.0, 10.0};
inline constexpr OptionRange kGaussianSigma{0.0, 1.0};
inline constexpr OptionRange kPoissonPhotons{1.0, 1e9};
inline constexpr OptionRange kBlurSigma{0.0, 10.0};
inline constexpr OptionRange kDownsampleFactor{0.05, 1.0};
}  // namespace ranges

/// Rotation about the image centre, degrees uniform in [-max_degrees, max_degrees]; positive is
/// clockwise on screen (torchvision's convention).
struct RotationOptions {
  double probability = 0.5;  ///< chance the sample is rotated. Range 0..1.
  double max_degrees = 7.0;  ///< range 0..180; medical limit 10 (above needs unsafe_override).
};

/// Translation, each axis uniform in [-max_fraction, max_fraction] of the image width / height.
struct TranslationOptions {
  double probability = 0.5;    ///< Range 0..1.
  double max_fraction = 0.05;  ///< range 0..0.5; medical limit 0.1.
};

/// Isotropic scale about the centre, uniform in [min, max] (> 1 zooms in).
struct ScaleOptions {
  double probability = 0.5;  ///< Range 0..1.
  double min = 0.95;         ///< range 0.5..2, <= max; medical limit 0.9.
  double max = 1.05;         ///< range 0.5..2, >= min; medical limit 1.1.
};

/// Mirror left-right. Off by default (laterality, dextrocardia): a probability above 0 needs
/// AugmentOptions::allow_horizontal_flip, and the override is recorded in every AppliedParams.
struct HorizontalFlipOptions {
  double probability = 0.0;  ///< Range 0..1.
};

/// Mirror top-bottom. Never medically valid for radiographs: a probability above 0 needs
/// AugmentOptions::unsafe_override (recorded).
struct VerticalFlipOptions {
  double probability = 0.0;  ///< Range 0..1.
};

/// Gamma (x -> x^gamma on [0, 1]), log-uniform in [min, max] (1 is the identity).
struct GammaOptions {
  double probability = 0.5;  ///< Range 0..1.
  double min = 0.7;          ///< range 0.1..10, <= max; medical limit 0.5.
  double max = 1.5;          ///< range 0.1..10, >= min; medical limit 2.
};

/// Brightness as torchvision's adjust_brightness: x -> factor * x, factor uniform in [min, max].
struct BrightnessOptions {
  double probability = 0.5;  ///< Range 0..1.
  double min = 0.9;          ///< range 0..10, <= max; medical limit 0.7.
  double max = 1.1;          ///< range 0..10, >= min; medical limit 1.3.
};

/// Contrast as torchvision's adjust_contrast: x -> factor * x + (1 - factor) * mean, where mean
/// is the mean of the (grayscale of a 3-channel) sample after the previous steps; factor
/// uniform in [min, max].
struct ContrastOptions {
  double probability = 0.5;  ///< Range 0..1.
  double min = 0.9;          ///< range 0..10, <= max; medical limit 0.7.
  double max = 1.1;          ///< range 0..10, >= min; medical limit 1.3.
};

/// Additive Gaussian (electronic) noise, sigma uniform in [0, max_sigma] of the full range.
struct GaussianNoiseOptions {
  double probability = 0.25;  ///< Range 0..1.
  double max_sigma = 0.02;    ///< range 0..1; medical limit 0.05.
};

/// Signal-dependent Poisson (quantum) noise: a pixel at relative intensity x in [0, 1] becomes
/// a count of mean and variance x * photons, then is scaled back. photons is log-uniform in
/// [min_photons, max_photons] per sample: fewer photons, more noise.
struct PoissonNoiseOptions {
  double probability = 0.25;  ///< Range 0..1.
  double min_photons = 500;   ///< range 1..1e9, <= max_photons; medical limit 100 (noisier below).
  double max_photons = 5000;  ///< range 1..1e9, >= min_photons.
};

/// Mild detector blur: Gaussian, sigma uniform in [min_sigma, max_sigma] pixels.
struct BlurOptions {
  double probability = 0.1;  ///< Range 0..1.
  double min_sigma = 0.3;    ///< range 0..10, <= max_sigma.
  double max_sigma = 1.0;    ///< range 0..10, >= min_sigma; medical limit 2.
};

/// Lower resolution: resize down by a factor uniform in [min_factor, max_factor] (area), then
/// back up to the original size (linear).
struct DownsampleOptions {
  double probability = 0.1;  ///< Range 0..1.
  double min_factor = 0.5;   ///< range 0.05..1, <= max_factor; medical limit 0.25.
  double max_factor = 0.9;   ///< range 0.05..1, >= min_factor.
};

/// Every augmentation option. Order of application per sample: one affine warp (flips,
/// rotation, translation, scale), down-then-up sampling, blur, gamma, brightness, contrast,
/// noise (Poisson and Gaussian together, as one Gaussian of the summed variance), then clamping
/// to the full range (and rounding for uint8).
struct AugmentOptions {
  /// false: augmentation is the identity (the loader's hook does nothing).
  bool enabled = true;
  /// The key of all randomness: a sample's parameters are a pure function of
  /// (seed, epoch, sample id).
  std::uint64_t seed = 0;
  /// Allows horizontal_flip.probability > 0. Recorded in every AppliedParams.
  bool allow_horizontal_flip = false;
  /// Allows values past a medical limit and vertical flips. Recorded in every AppliedParams.
  bool unsafe_override = false;

  RotationOptions rotation;
  TranslationOptions translation;
  ScaleOptions scale;
  HorizontalFlipOptions horizontal_flip;
  VerticalFlipOptions vertical_flip;
  GammaOptions gamma;
  BrightnessOptions brightness;
  ContrastOptions contrast;
  GaussianNoiseOptions gaussian_noise;
  PoissonNoiseOptions poisson_noise;
  BlurOptions blur;
  DownsampleOptions downsample;

  /// Class ids that swap sides when the warp mirrors the image (a horizontal flip), in label
  /// masks, boxes and landmarks (medload/augment/target_warp.h): {3: 4} swaps "left lung" 3 and
  /// "right lung" 4 both ways. Ids 1..65535; a class in at most one pair, never with itself.
  /// Empty by default. JSON: {"3": 4}; to_json writes it only when not empty (smaller id first).
  std::map<std::int32_t, std::int32_t> laterality;

  /// Checks every range and the safety policy; throws medload::ConfigError naming the full key
  /// ("augment.rotation.max_degrees"), its value and the range or medical limit.
  void validate() const;

  /// The options in `j` (the "augment" object of a pipeline config), defaults for missing keys,
  /// then validate(). Throws ConfigError on unknown keys, wrong JSON types, bad values.
  static AugmentOptions from_json(const nlohmann::json& j);

  /// Every field, defaults included, as the JSON object from_json reads.
  nlohmann::json to_json() const;

  /// The overrides this config relies on, as human-readable lines (empty when none): e.g.
  /// "allow_horizontal_flip: horizontal_flip.probability is 0.5", "unsafe_override:
  /// rotation.max_degrees is 15; the medical limit is 10".
  std::vector<std::string> active_overrides() const;

  /// The defaults with every operation at probability 1 (flips stay off): the "full chain"
  /// used by benchmarks, the preview and tests.
  static AugmentOptions full_chain();

  /// The weak view of consistency training: the default geometry (rotation, translation,
  /// scale at their default ranges and probabilities), no intensity or noise change.
  static AugmentOptions weak_view();
  /// The strong view of consistency training: every operation at probability 1 (noise, blur and
  /// down-sampling at 0.5) with ranges at the medical limits (rotation 10 degrees, translation
  /// 0.1, scale 0.9-1.1, gamma 0.5-2, brightness and contrast 0.7-1.3, Gaussian noise up to
  /// 0.05, 100-5000 photons, blur up to 2 px, down-sampling to 0.25): the strongest device
  /// simulation that passes validate() without an override. Flips stay off.
  static AugmentOptions strong_view();
};

}  // namespace medload::augment
