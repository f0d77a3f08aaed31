#include "training.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <set>
#include <sstream>

#include "medload/core/error.h"
#include "synthetic.h"

namespace fs = std::filesystem;
using namespace medload::examples;

namespace {

fs::path fresh_dir(const std::string& name) {
  const auto dir =
      fs::temp_directory_path() / ("medload_examples_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// The learning check's data: 400 images of 32 px, a nodule in 10%, split by patient.
TrainingData nodule_data() {
  SyntheticOptions so;
  so.count = 400;
  so.size = 32;
  so.seed = 3;
  return synthetic_training_data(so);
}

TrainOptions quiet_options() {
  TrainOptions o;
  o.quiet = true;
  o.threads = 2;
  o.seed = 1;
  return o;
}

}  // namespace

TEST(SyntheticNoduleSource, PlantsTheStatedPrevalenceDeterministically) {
  SyntheticOptions so;
  so.count = 200;
  so.size = 24;
  so.seed = 9;
  SyntheticNoduleSource a(so), b(so);
  const auto labels = a.labels();
  EXPECT_EQ(std::count(labels.begin(), labels.end(), 1), 20);  // exactly 10%
  std::vector<std::uint8_t> pa(24 * 24), pb(24 * 24);
  for (std::size_t i : {0u, 57u, 199u}) {
    a.read(i, pa.data());
    b.read(i, pb.data());
    EXPECT_EQ(pa, pb) << "image " << i;
  }
  // A nodule is a bright spot: the brightest pixel of a positive image stands out more than
  // that of the negatives on average.
  double pos_peak = 0, neg_peak = 0;
  for (std::size_t i = 0; i < a.size(); ++i) {
    a.read(i, pa.data());
    const double peak = *std::max_element(pa.begin(), pa.end());
    (labels[i] == 1 ? pos_peak : neg_peak) += peak / (labels[i] == 1 ? 20.0 : 180.0);
  }
  EXPECT_GT(pos_peak, neg_peak + 20.0);
}

TEST(SyntheticTrainingData, SplitsByPatient) {
  const auto data = nodule_data();
  std::set<std::string> train(data.train_patient_ids.begin(), data.train_patient_ids.end());
  const auto& val_source = dynamic_cast<const SyntheticNoduleSource&>(*data.val);
  for (const auto& p : val_source.patient_ids()) EXPECT_EQ(train.count(p), 0u) << p << " is in both parts";
  EXPECT_EQ(data.train->size() + data.val->size(), 400u);
  EXPECT_GT(data.val->size(), 60u);
}

TEST(Train, LearnsThePlantedNoduleWithTheBalancedSampler) {
  auto o = quiet_options();
  o.epochs = 8;  // at most 8 x 10 steps of 32
  o.sampler = SamplerChoice::kBalanced;
  const auto r = train(nodule_data(), o);
  ASSERT_EQ(r.epochs.size(), 8u);
  EXPECT_GE(r.epochs.back().val.roc_auc, 0.9) << r.to_json({"normal", "nodule"}).dump();
  EXPECT_LE(r.steps, 80u);
}

TEST(Train, LearnsThePlantedNoduleWithTheWeightedLoss) {
  auto o = quiet_options();
  o.epochs = 8;
  o.sampler = SamplerChoice::kNone;
  o.weighted_loss = true;
  const auto r = train(nodule_data(), o);
  EXPECT_GE(r.epochs.back().val.roc_auc, 0.9) << r.to_json({"normal", "nodule"}).dump();
  EXPECT_LE(r.steps, 80u);
}

TEST(Train, ResumesExactlyFromAMidEpochCheckpoint) {
  SyntheticOptions so;
  so.count = 96;
  so.size = 24;
  so.seed = 5;
  const auto data = synthetic_training_data(so);
  auto o = quiet_options();
  o.epochs = 2;
  o.batch_size = 16;
  o.sampler = SamplerChoice::kWeighted;

  o.checkpoint_dir = fresh_dir("straight").string();
  const auto straight = train(data, o);

  o.checkpoint_dir = fresh_dir("resumed").string();
  o.checkpoint_every = 3;
  o.stop_after_steps = 7;  // inside epoch 2: the last checkpoint is at step 6
  const auto first = train(data, o);
  ASSERT_TRUE(first.interrupted);
  ASSERT_EQ(first.epochs.size(), 1u);
  o.stop_after_steps = 0;
  o.resume = true;
  const auto second = train(data, o);
  ASSERT_TRUE(second.resumed_from.has_value());
  EXPECT_EQ(second.resumed_from->first, 1u);   // epoch 2 (0-based 1)
  EXPECT_GT(second.resumed_from->second, 0u);  // mid-epoch

  EXPECT_FALSE(second.interrupted);
  EXPECT_EQ(second.steps, straight.steps);
  EXPECT_EQ(second.param_checksum, straight.param_checksum);
  EXPECT_TRUE(torch::equal(second.parameters, straight.parameters));
  ASSERT_EQ(second.epochs.size(), straight.epochs.size());
  for (std::size_t e = 0; e < straight.epochs.size(); ++e) {
    EXPECT_EQ(second.epochs[e].train_loss, straight.epochs[e].train_loss) << "epoch " << e + 1;
    EXPECT_EQ(second.epochs[e].val.roc_auc, straight.epochs[e].val.roc_auc) << "epoch " << e + 1;
  }
  fs::remove_all(o.checkpoint_dir);
}

TEST(Train, RefusesACheckpointOfAnotherRun) {
  SyntheticOptions so;
  so.count = 48;
  so.size = 16;
  const auto data = synthetic_training_data(so);
  auto o = quiet_options();
  o.epochs = 1;
  o.batch_size = 16;
  o.checkpoint_dir = fresh_dir("other").string();
  train(data, o);
  o.seed = 2;
  o.resume = true;
  try {
    train(data, o);
    FAIL() << "a checkpoint of another seed was accepted";
  } catch (const medload::FormatError& e) {
    EXPECT_NE(std::string(e.what()).find("seed"), std::string::npos) << e.what();
  }
  fs::remove_all(o.checkpoint_dir);
}

TEST(TrainOptions, RejectsBadValuesNamingTheField) {
  TrainOptions o;
  o.world_size = 2;  // without allreduce_sum
  try {
    o.validate();
    FAIL();
  } catch (const medload::ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("allreduce_sum"), std::string::npos);
  }
  o = TrainOptions{};
  o.resume = true;
  EXPECT_THROW(o.validate(), medload::ConfigError);
  EXPECT_THROW(sampler_choice_from_string("random"), medload::ConfigError);
}
