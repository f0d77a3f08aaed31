#include "medload/augment/augmenter.h"

#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "augment_test_util.h"
#include "medload/core/error.h"

using namespace medload::augment;
using namespace medload::augment::test;

namespace {

std::vector<std::int64_t> ids(std::initializer_list<std::int64_t> v) { return v; }

AugmentOptions full(std::uint64_t seed = 7) {
  AugmentOptions o = AugmentOptions::full_chain();
  o.seed = seed;
  return o;
}

}  // namespace

TEST(Augmenter, SameOutputWithOneTwoAndFourThreads) {
  for (const auto dtype : {torch::kUInt8, torch::kFloat32}) {
    const torch::Tensor input =
        dtype == torch::kUInt8 ? synthetic_u8(12, 1, 48, 40) : synthetic_float(12, 1, 48, 40);
    const std::vector<std::int64_t> sample_ids{3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8};
    torch::Tensor reference;
    for (std::size_t threads : {1, 2, 4}) {
      Augmenter augmenter(full(), threads);
      torch::Tensor batch = input.clone();
      augmenter.apply(batch, sample_ids, 2);
      EXPECT_FALSE(same(batch, input));
      if (!reference.defined()) {
        reference = batch;
      } else {
        EXPECT_TRUE(same(batch, reference)) << "threads " << threads << ", dtype " << dtype;
      }
    }
  }
}

TEST(Augmenter, SampleIsAugmentedTheSameWhicheverBatchItLandsIn) {
  Augmenter augmenter(full(), 2);
  const torch::Tensor images = synthetic_u8(4, 1, 32, 32);  // image k is sample id 10 + k
  torch::Tensor a = torch::stack({images[2], images[0], images[1]});
  torch::Tensor b = torch::stack({images[3], images[2]});
  const auto pa = augmenter.apply(a, ids({12, 10, 11}), 5);
  const auto pb = augmenter.apply(b, ids({13, 12}), 5);
  EXPECT_TRUE(same(a[0], b[1]));
  EXPECT_EQ(pa[0].to_json(), pb[1].to_json());
  // A batch of one, on the float path, too.
  torch::Tensor one = images[2].unsqueeze(0).clone();
  augmenter.apply(one, ids({12}), 5);
  EXPECT_TRUE(same(one[0], a[0]));
}

TEST(Augmenter, DiffersAcrossEpochsAndSamples) {
  Augmenter augmenter(full(), 1);
  const torch::Tensor image = synthetic_u8(1, 1, 32, 32);
  torch::Tensor e0 = image.clone(), e1 = image.clone(), other = image.clone();
  const auto p0 = augmenter.apply(e0, ids({7}), 0);
  const auto p1 = augmenter.apply(e1, ids({7}), 1);
  const auto p2 = augmenter.apply(other, ids({8}), 0);
  EXPECT_FALSE(same(e0, e1));
  EXPECT_FALSE(same(e0, other));
  EXPECT_NE(p0[0].rotation_degrees, p1[0].rotation_degrees);
  EXPECT_NE(p0[0].noise_key, p1[0].noise_key);
  EXPECT_NE(p0[0].rotation_degrees, p2[0].rotation_degrees);
  // ... and a different seed gives different parameters.
  Augmenter reseeded(full(8), 1);
  EXPECT_NE(reseeded.draw(7, 0).rotation_degrees, p0[0].rotation_degrees);
  // The same (seed, epoch, id) always gives the same parameters.
  EXPECT_EQ(augmenter.draw(7, 1).to_json(), p1[0].to_json());
}

TEST(Augmenter, ReplayOfLoggedParametersReproducesTheOutputExactly) {
  for (const auto dtype : {torch::kUInt8, torch::kFloat32}) {
    Augmenter augmenter(full(), 2);
    const torch::Tensor input =
        dtype == torch::kUInt8 ? synthetic_u8(6, 3, 24, 30) : synthetic_float(6, 3, 24, 30);
    torch::Tensor out = input.clone();
    const auto params = augmenter.apply(out, ids({0, 1, 2, 3, 4, 5}), 3);
    // Through JSON text, as a training log would keep them.
    std::vector<AppliedParams> logged;
    for (const auto& p : params)
      logged.push_back(AppliedParams::from_json(nlohmann::json::parse(p.to_json().dump())));
    Augmenter other(AugmentOptions(), 1);  // replay does not depend on the options
    torch::Tensor again = input.clone();
    other.replay(again, logged);
    EXPECT_TRUE(same(again, out)) << dtype;
  }
}

TEST(Augmenter, DisabledIsTheIdentity) {
  AugmentOptions o = full();
  o.enabled = false;
  Augmenter augmenter(o, 2);
  const torch::Tensor input = synthetic_u8(3, 1, 16, 16);
  torch::Tensor batch = input.clone();
  const auto params = augmenter.apply(batch, ids({1, 2, 3}), 0);
  EXPECT_TRUE(same(batch, input));
  EXPECT_TRUE(params[0].identity_geometry());
  EXPECT_EQ(params[0].gamma, 1.0);
}

TEST(Augmenter, DrawnParametersStayInTheirRangesWithTheirProbabilities) {
  AugmentOptions o;  // defaults: geometric and point ops at 0.5, noise 0.25, blur/downsample 0.1
  Augmenter augmenter(o, 1);
  const int n = 20000;
  int rotated = 0, noisy = 0, blurred = 0;
  double log_gamma_sum = 0.0;
  int gamma_count = 0;
  for (int i = 0; i < n; ++i) {
    const AppliedParams p = augmenter.draw(i, 4);
    ASSERT_LE(std::abs(p.rotation_degrees), 7.0);
    ASSERT_LE(std::abs(p.translate_x), 0.05);
    ASSERT_LE(std::abs(p.translate_y), 0.05);
    ASSERT_GE(p.scale, 0.95);
    ASSERT_LE(p.scale, 1.05);
    ASSERT_GE(p.gamma, 0.7 - 1e-12);
    ASSERT_LE(p.gamma, 1.5 + 1e-12);
    ASSERT_FALSE(p.horizontal_flip || p.vertical_flip);
    ASSERT_LE(p.gaussian_sigma, 0.02);
    rotated += p.rotation_degrees != 0.0;
    noisy += p.gaussian_sigma > 0.0;
    blurred += p.blur_sigma > 0.0;
    if (p.gamma != 1.0) {
      log_gamma_sum += std::log(p.gamma);
      ++gamma_count;
    }
  }
  // Binomial counts within 5 standard deviations (a false alarm rate below 1e-6 per check).
  auto within = [&](int count, double prob) {
    return std::abs(count - n * prob) < 5.0 * std::sqrt(n * prob * (1 - prob));
  };
  EXPECT_TRUE(within(rotated, 0.5)) << rotated;
  EXPECT_TRUE(within(noisy, 0.25)) << noisy;
  EXPECT_TRUE(within(blurred, 0.1)) << blurred;
  // Log-uniform gamma: log(gamma) is uniform on [log 0.7, log 1.5]; its mean is the midpoint.
  const double lo = std::log(0.7), hi = std::log(1.5);
  const double sd_of_mean = (hi - lo) / std::sqrt(12.0 * gamma_count);
  EXPECT_NEAR(log_gamma_sum / gamma_count, 0.5 * (lo + hi), 5.0 * sd_of_mean);
}

TEST(Augmenter, SwitchingAnOperationOffLeavesTheOthersDrawsAlone) {
  AugmentOptions with_blur = full();
  AugmentOptions without_blur = full();
  without_blur.blur.probability = 0.0;
  const AppliedParams a = Augmenter(with_blur).draw(11, 2), b = Augmenter(without_blur).draw(11, 2);
  EXPECT_GT(a.blur_sigma, 0.0);
  EXPECT_EQ(b.blur_sigma, 0.0);
  EXPECT_EQ(a.rotation_degrees, b.rotation_degrees);
  EXPECT_EQ(a.gamma, b.gamma);
  EXPECT_EQ(a.noise_key, b.noise_key);
}

TEST(Augmenter, OverridesAreRecordedInTheAppliedParameters) {
  AugmentOptions o;
  o.allow_horizontal_flip = true;
  o.horizontal_flip.probability = 1.0;
  Augmenter augmenter(o);
  const AppliedParams p = augmenter.draw(1, 0);
  EXPECT_TRUE(p.horizontal_flip);
  EXPECT_TRUE(p.horizontal_flip_override);
  EXPECT_EQ(p.to_json()["overrides"], nlohmann::json::array({"allow_horizontal_flip"}));
  EXPECT_EQ(augmenter.describe()["overrides"].size(), 1u);
  EXPECT_TRUE(Augmenter(AugmentOptions()).draw(1, 0).to_json()["overrides"].empty());
}

TEST(Augmenter, RejectsBadBatches) {
  Augmenter augmenter(full());
  torch::Tensor three_d = torch::zeros({2, 8, 8}, torch::kUInt8);
  EXPECT_THROW(augmenter.apply(three_d, ids({1, 2}), 0), medload::ConfigError);
  torch::Tensor doubles = torch::zeros({2, 1, 8, 8}, torch::kFloat64);
  EXPECT_THROW(augmenter.apply(doubles, ids({1, 2}), 0), medload::ConfigError);
  torch::Tensor ok = torch::zeros({2, 1, 8, 8}, torch::kUInt8);
  try {
    augmenter.apply(ok, ids({1}), 0);
    FAIL() << "a batch of 2 with 1 id was accepted";
  } catch (const medload::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("2 samples but 1 sample ids"), std::string::npos) << e.what();
  }
  AugmentOptions bad;
  bad.rotation.max_degrees = 12;
  EXPECT_THROW(Augmenter{bad}, medload::ConfigError);
}

TEST(Augmenter, NonContiguousBatchesAreAugmentedLikeContiguousOnes) {
  Augmenter augmenter(full(), 2);
  const torch::Tensor base = synthetic_u8(3, 1, 20, 20);
  torch::Tensor strided = base.transpose(2, 3);  // a view, not contiguous
  torch::Tensor contiguous = strided.contiguous();
  augmenter.apply(strided, ids({1, 2, 3}), 0);
  augmenter.apply(contiguous, ids({1, 2, 3}), 0);
  EXPECT_TRUE(same(strided, contiguous));
}

TEST(Augmenter, HookAugmentsInPlace) {
  AugmentHook hook = make_hook(full(), 2);
  const torch::Tensor input = synthetic_u8(2, 1, 16, 16);
  torch::Tensor batch = input.clone();
  hook(batch, ids({4, 5}), 1);
  torch::Tensor expected = input.clone();
  Augmenter(full(), 1).apply(expected, ids({4, 5}), 1);
  EXPECT_TRUE(same(batch, expected));
}

TEST(AppliedParams, FromJsonNamesWhatIsMissing) {
  nlohmann::json j = identity_params().to_json();
  j.erase("gamma");
  try {
    AppliedParams::from_json(j);
    FAIL();
  } catch (const medload::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("\"gamma\""), std::string::npos) << e.what();
  }
  j = identity_params().to_json();
  j["noise_key"] = "xyz";
  EXPECT_THROW(AppliedParams::from_json(j), medload::ConfigError);
}

// The message of the ConfigError that AppliedParams::from_json(j) throws ("" when it does not).
std::string applied_params_error(const nlohmann::json& j) {
  try {
    AppliedParams::from_json(j);
  } catch (const medload::ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(AppliedParams, FromJsonRefusesValuesNoValidOptionsDraw) {
  // A replayed log is input: a blur sigma of 1e6 would build a kernel of millions of taps, a
  // rotation of 1e300 overflowed the warp's integer arithmetic.
  const std::vector<std::pair<const char*, double>> outside = {
      {"blur_sigma", 1e6},       {"blur_sigma", 10.5},      {"rotation_degrees", 1e300},
      {"rotation_degrees", -181}, {"translate_x", 0.6},      {"translate_y", -1e9},
      {"scale", 1e-300},         {"scale", 2.5},            {"downsample_factor", 0.01},
      {"gamma", 0.0},            {"gamma", 11},             {"brightness", -1},
      {"contrast", 1e308},       {"poisson_photons", 0.5},  {"poisson_photons", 1e10},
      {"gaussian_sigma", 1.5}};
  for (const auto& [name, value] : outside) {
    nlohmann::json j = identity_params().to_json();
    j[name] = value;
    const std::string message = applied_params_error(j);
    EXPECT_NE(message.find(std::string("applied parameter ") + name + " is "), std::string::npos)
        << name << " = " << value << ": " << message;
    EXPECT_NE(message.find("; allowed "), std::string::npos) << message;
  }
  // The edges of each range, and the values that mean "not applied", are accepted.
  const std::vector<std::pair<const char*, double>> inside = {
      {"blur_sigma", 10},       {"blur_sigma", 0},        {"rotation_degrees", -180},
      {"translate_x", 0.5},     {"scale", 0.5},           {"downsample_factor", 0.05},
      {"poisson_photons", 0},   {"poisson_photons", 1},   {"gaussian_sigma", 1}};
  for (const auto& [name, value] : inside) {
    nlohmann::json j = identity_params().to_json();
    j[name] = value;
    EXPECT_EQ(applied_params_error(j), "") << name << " = " << value;
  }
}

TEST(AppliedParams, FromJsonReadsOnlyTheOverridesToJsonWrites) {
  nlohmann::json j = identity_params().to_json();
  j["overrides"] = {"unsafe_override", "allow_horizontal_flip"};
  const AppliedParams p = AppliedParams::from_json(j);
  EXPECT_TRUE(p.unsafe_override);
  EXPECT_TRUE(p.horizontal_flip_override);
  j["overrides"] = 5;
  EXPECT_NE(applied_params_error(j).find("overrides must be an array"), std::string::npos);
  j["overrides"] = nlohmann::json::array();
  j["overrides"].push_back(nlohmann::json{{"a", "unsafe_override"}});
  EXPECT_NE(applied_params_error(j).find("overrides holds"), std::string::npos);
  j["overrides"] = {"unsafe"};
  EXPECT_NE(applied_params_error(j).find("overrides holds \"unsafe\""), std::string::npos);
}

TEST(Augmenter, ConcurrentCallersOnOneAugmenterGetTheirOwnResults) {
  // The loader calls its hook from several reader threads at once.
  Augmenter augmenter(full(), 2);
  const torch::Tensor input = synthetic_u8(8, 1, 24, 24);
  torch::Tensor expected[3];
  for (int e = 0; e < 3; ++e) {
    expected[e] = input.clone();
    Augmenter(full(), 1).apply(expected[e], ids({0, 1, 2, 3, 4, 5, 6, 7}), e);
  }
  torch::Tensor got[3];
  std::vector<std::thread> callers;
  for (int e = 0; e < 3; ++e) {
    callers.emplace_back([&, e] {
      for (int repeat = 0; repeat < 5; ++repeat) {
        torch::Tensor batch = input.clone();
        augmenter.apply(batch, ids({0, 1, 2, 3, 4, 5, 6, 7}), e);
        got[e] = batch;
      }
    });
  }
  for (auto& t : callers) t.join();
  for (int e = 0; e < 3; ++e) EXPECT_TRUE(same(got[e], expected[e])) << "epoch " << e;
}

TEST(Augmenter, NormalisedFloatBatchesAreAugmentedInPixelSpace) {
  const Normalization norm{0.45f, 0.22f};
  const torch::Tensor x = synthetic_float(4, 1, 32, 32);
  torch::Tensor plain = x.clone();
  Augmenter(full(), 1).apply(plain, ids({1, 2, 3, 4}), 2);
  torch::Tensor normalised = x.sub(norm.mean).div(norm.std);
  Augmenter(full(), 2, norm).apply(normalised, ids({1, 2, 3, 4}), 2);
  // Same augmentation as on x, expressed in the normalised space (float rounding of the
  // round trip only).
  EXPECT_LT(max_abs_diff(normalised, plain.sub(norm.mean).div(norm.std)), 1e-4);
  // uint8 batches ignore it; bad values are refused.
  EXPECT_THROW(Augmenter(full(), 1, Normalization{0.5f, 0.0f}), medload::ConfigError);
}

TEST(Augmenter, UnsafeOverrideIsRecordedOnlyWhenSomethingReliesOnIt) {
  AugmentOptions idle;
  idle.unsafe_override = true;  // set, but every value is inside the limits
  EXPECT_FALSE(Augmenter(idle).draw(3, 0).unsafe_override);
  AugmentOptions used = idle;
  used.rotation.max_degrees = 12;
  const AppliedParams p = Augmenter(used).draw(3, 0);
  EXPECT_TRUE(p.unsafe_override);
  EXPECT_EQ(p.to_json()["overrides"], nlohmann::json::array({"unsafe_override"}));
}
