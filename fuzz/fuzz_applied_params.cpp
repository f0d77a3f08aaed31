// fuzz_applied_params: the applied-parameter JSON a run logs for every augmented sample
// (AppliedParams::to_json) and that Augmenter::replay applies again. Arbitrary bytes are parsed as
// JSON and, when they are JSON, as AppliedParams; a ConfigError naming the field is the expected
// answer to bad parameters. Parameters that parse must round-trip through to_json, and replaying
// them on a small uint8 and float32 batch must give a batch of the same shape (a WorkerError
// naming the sample is an acceptable answer; a crash, a hang, a huge allocation is a bug).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include <nlohmann/json.hpp>
#include <torch/types.h>

#include "medload/augment/augmenter.h"
#include "medload/core/error.h"

namespace {

// A mean-and-stripes test image: every kernel has structure to work on.
torch::Tensor test_batch(torch::ScalarType type) {
  torch::Tensor batch = torch::arange(2 * 24 * 20, torch::kFloat32).reshape({2, 1, 24, 20});
  batch = batch.remainder(7.0f).div(7.0f);
  return type == torch::kUInt8 ? batch.mul(255.0f).to(torch::kUInt8) : batch;
}

void replay(medload::augment::Augmenter& augmenter, const medload::augment::AppliedParams& params,
            torch::ScalarType type) {
  torch::Tensor batch = test_batch(type);
  const auto sizes = batch.sizes().vec();
  try {
    augmenter.replay(batch, {params, params});
  } catch (const medload::Error&) {
    return;
  }
  if (batch.sizes().vec() != sizes || batch.scalar_type() != type) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using medload::augment::AppliedParams;
  static medload::augment::Augmenter augmenter{medload::augment::AugmentOptions{}, 1};
  const nlohmann::json j = nlohmann::json::parse(data, data + size, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  AppliedParams params;
  try {
    params = AppliedParams::from_json(j);
  } catch (const medload::Error&) {
    return 0;
  }
  // What to_json writes, from_json reads back to the same parameters.
  const nlohmann::json written = params.to_json();
  AppliedParams again;
  try {
    again = AppliedParams::from_json(written);
  } catch (const std::exception&) {
    std::abort();
  }
  if (again.to_json() != written) std::abort();
  replay(augmenter, params, torch::kUInt8);
  replay(augmenter, params, torch::kFloat32);
  return 0;
}
