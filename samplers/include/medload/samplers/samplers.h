#pragma once
/// Everything in medload::samplers: weighted, class-balanced, P x K, semi-supervised and
/// distributed samplers, class weights and composition reports (see docs/samplers.md).

#include "medload/samplers/alias_table.h"
#include "medload/samplers/balanced_batch_sampler.h"
#include "medload/samplers/class_balanced_sampler.h"
#include "medload/samplers/class_weights.h"
#include "medload/samplers/composition_report.h"
#include "medload/samplers/counter_rng.h"
#include "medload/samplers/distributed_sampler.h"
#include "medload/samplers/semi_supervised_sampler.h"
#include "medload/samplers/stream_sampler.h"
#include "medload/samplers/weighted_random_sampler.h"
