#pragma once
/// The samplers' counter-based generator: medload's one (medload/core/counter_rng.h), under
/// medload::samplers where the samplers and their users name it.

#include "medload/core/counter_rng.h"

namespace medload::samplers {

using medload::bounded;
using medload::CounterRng;
using medload::kGoldenGamma;
using medload::mix64;
using medload::random_u64;
using medload::shuffle;
using medload::stream_key;
using medload::unit_double;

}  // namespace medload::samplers
