#include "medload/samplers/distributed_sampler.h"

namespace medload::samplers {

DistributedSampler::DistributedSampler(const StreamSampler& inner, DistributedOptions options)
    : StreamSampler(inner, options.world_size, options.rank, options.drop_last) {}

}  // namespace medload::samplers
