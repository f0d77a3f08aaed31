#include "medload/samplers/weighted_random_sampler.h"

#include "medload/core/hash.h"
#include "medload/samplers/counter_rng.h"

namespace medload::samplers {
namespace {

class WeightedStream final : public detail::Stream {
 public:
  WeightedStream(std::shared_ptr<const AliasTable> table, std::size_t num_samples, std::uint64_t fingerprint)
      : table_(std::move(table)), num_samples_(num_samples), fingerprint_(fingerprint) {}

  void prepare(std::uint64_t seed, std::uint64_t epoch) override { key_ = stream_key(seed, epoch); }
  std::size_t length() const override { return num_samples_; }
  std::size_t dataset_size() const override { return static_cast<std::size_t>(table_->size()); }
  std::string kind() const override { return "weighted"; }
  std::uint64_t fingerprint() const override { return fingerprint_; }
  bool balances_classes() const override { return true; }

  void fill(std::size_t begin, std::size_t count, std::size_t* out) const override {
    fill_strided(begin, 1, count, out);
  }

  void fill_strided(std::size_t begin, std::size_t stride, std::size_t count,
                    std::size_t* out) const override {
    table_->draw_stream(key_, begin, stride, count, out);
  }

 private:
  std::shared_ptr<const AliasTable> table_;
  std::size_t num_samples_;
  std::uint64_t fingerprint_;
  std::uint64_t key_ = 0;
};

}  // namespace

WeightedRandomSampler::WeightedRandomSampler(const std::vector<double>& weights,
                                             WeightedRandomSamplerOptions options)
    : WeightedRandomSampler(std::make_shared<const AliasTable>(weights), weights, options) {}

WeightedRandomSampler::WeightedRandomSampler(std::shared_ptr<const AliasTable> table,
                                             const std::vector<double>& weights,
                                             const WeightedRandomSamplerOptions& options)
    : StreamSampler(std::make_shared<WeightedStream>(
                        table, options.num_samples == 0 ? weights.size() : options.num_samples,
                        hash64(weights.data(), weights.size() * sizeof(double),
                               options.num_samples == 0 ? weights.size() : options.num_samples)),
                    options.seed),
      table_(std::move(table)) {}

}  // namespace medload::samplers
