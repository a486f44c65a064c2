// Chapter 04 end to end: the --quick run (schedules, 2D with the exact and a
// learned ε, the shipped U-Net sampled with 100 respaced steps, the quality
// report) succeeds, writes every figure, and its metrics show what the chapter
// claims; --quick --train trains a tiny U-Net whose loss falls; bad input fails
// fast with one clear line.
#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "chapter_run.hpp"

namespace fs = std::filesystem;

struct Ch04 {
  static constexpr const char* name = "04_ddpm";
  static constexpr int train_steps = 300;
};
using Chapter04 = dm_test::QuickRun<Ch04>;
using Chapter04Train = dm_test::QuickRun<Ch04, true>;

TEST_F(Chapter04, QuickRunSucceeds) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  EXPECT_NE(result_->output.find("[6/6]"), std::string::npos);
}

TEST_F(Chapter04, WritesEveryFigure) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto m = metrics();
  for (const char* f :
       {"schedules.svg", "toy_samples.svg", "forward_strip.png", "loss.svg", "samples.png",
        "denoising_strip.png", "denoising_x0.png", "class_histogram.svg"}) {
    EXPECT_NE(std::find(m["figures"].begin(), m["figures"].end(), f), m["figures"].end()) << f;
    EXPECT_TRUE(fs::exists(*out_ / f) && fs::file_size(*out_ / f) > 500) << f;
  }
}

// The ratio of an energy distance between independent samples to its floor
// (the mean over repeats) is, under "same law", at most ≈ 8.5 with
// probability 0.99 (see tests/unit/test_ddpm.cpp for the derivation: the
// worst case of the ratio is F(1, 16)). The exact ε must be within it at
// T = 1000 and T = 100; the MLP trained on the mixture too.
TEST_F(Chapter04, ExactAndLearnedEpsReachTheMixture) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto m = metrics()["toy_2d"];
  const double floor = m["energy_distance_noise_floor"]["mean"];
  EXPECT_LT(m["exact_eps_T1000"].get<double>(), 8.5 * floor);
  EXPECT_LT(m["exact_eps_T100"].get<double>(), 8.5 * floor);
  EXPECT_LT(m["learned_eps"].get<double>(), 8.5 * floor);
  EXPECT_LT(m["loss_last"].get<double>(), m["loss_first"].get<double>());
}

// ε̂ = 0 (the zero-initialised output layer) has loss E‖ε‖²/D = 1; the tiny
// U-Net of --quick --train must bring it far below in its 300 steps.
TEST_F(Chapter04Train, TinyUNetLossFalls) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto t = metrics()["training"];
  EXPECT_EQ(t["steps"], 300);
  EXPECT_NEAR(t["losses"][0].get<double>(), 1.0, 0.1) << "the first window starts near E‖ε‖² = 1";
  EXPECT_LT(t["loss_last"].get<double>(), 0.25 * t["loss_first"].get<double>());
  EXPECT_NE(result_->output.find("[4/6] the U-Net: training"), std::string::npos);
}

// The plain quick run samples the shipped model, 100 respaced steps.
TEST_F(Chapter04, QuickRunSamplesTheShippedModel) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto q = metrics()["quality"];
  EXPECT_EQ(q["model"], "checkpoint ddpm_fashion.pt");
  EXPECT_EQ(q["steps"], 100);
  EXPECT_EQ(q["schedule_T"], 1000);
  EXPECT_FALSE(metrics().contains("training"));
}

TEST_F(Chapter04, QualityNumbersAreReportedWithTheirFloor) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto q = metrics()["quality"];
  EXPECT_EQ(q["samples"], 64);
  EXPECT_GT(q["frechet_distance"].get<double>(), 0.0);
  EXPECT_GT(q["frechet_floor_train_vs_test"].get<double>(), 0.0);
  EXPECT_GT(q["classifier_test_accuracy"].get<double>(), 0.9);
  double sum = 0;
  for (const auto& f : q["class_fractions"]) sum += f.get<double>();
  EXPECT_NEAR(sum, 1.0, 1e-12);
}

// ---- bad input: one clear line (plus its hint), non-zero exit, before any work ----

TEST(Chapter04BadInput, UnknownSchedule) {
  auto r = dm_test::run("04_ddpm", "--quick --schedule quadratic");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--schedule"), std::string::npos) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}

TEST(Chapter04BadInput, MissingDatasetSaysHowToFixIt) {
  const auto empty = dm_test::fresh_dir("04_no_data");
  auto r = dm_test::run("04_ddpm",
                        "--quick --data " + empty.string() + " --out " + (empty / "out").string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("dataset-fashion-mnist"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("[2/6]"), std::string::npos) << "must fail before doing any work";
  fs::remove_all(empty);
}

TEST(Chapter04BadInput, CorruptCheckpointIsRefused) {
  const auto dir = dm_test::fresh_dir("04_bad_ckpt");
  std::ofstream(dir / "bad.pt") << "definitely not a checkpoint";
  auto r = dm_test::run(
      "04_ddpm", "--checkpoint " + (dir / "bad.pt").string() + " --out " + (dir / "out").string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("truncated or corrupt"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("[2/6]"), std::string::npos) << "must fail before doing any work";
  fs::remove_all(dir);
}

// The --quick --train run's own checkpoint is for the tiny U-Net: sampling the
// default model from it must be refused, naming what differs.
TEST_F(Chapter04Train, CheckpointForAnotherModelIsRefused) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto dir = dm_test::fresh_dir("04_other_ckpt");
  auto r = dm_test::run("04_ddpm", "--checkpoint " + (*out_ / "unet_checkpoint.pt").string() +
                                       " --out " + (dir / "out").string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("different model"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("channel_mults"), std::string::npos) << r.output;
  fs::remove_all(dir);
}

// Every option either takes effect or is refused: bad values, and options that
// mean nothing without --train, fail with one line naming the option, before
// any work (the shared options come from dm::Chapter, the same in every chapter).
TEST(Chapter04BadInput, EveryBadOptionIsRefusedInOneLine) {
  const auto dir = dm_test::fresh_dir("04_bad_options");
  const std::vector<std::pair<std::string, std::string>> table = {
      {"--threads 100000", "--threads: expects a whole number from 0 to"},
      {"--threads -3", "--threads: expects a whole number from 0 to"},
      {"--threads two", "--threads: expects a whole number from 0 to"},
      {"--seed -1", "--seed: expects a whole number from 0 to 18446744073709551615, got '-1'"},
      {"--seed 99999999999999999999", "--seed: expects a whole number"},
      {"--seed 1.5", "--seed: expects a whole number"},
      {"--train --steps -5", "--steps: expects a whole number from 1 to"},
      {"--samples -3", "--samples: expects a whole number from 2 to"},
      {"--sample-steps 0", "--sample-steps: expects a whole number from 1 to"},
      {"--resume", "--resume requires --train"},
      {"--steps 100", "--steps requires --train"},
      {"--train --checkpoint x.pt", "excludes"},
      {"--overwrite", "--overwrite requires --train"},
      {"--train --resume", "--resume: there is no training run to continue at"},
      {"--train --resume --overwrite", "--resume excludes --overwrite"},
  };
  for (const auto& [args, message] : table) {
    auto r = dm_test::run("04_ddpm", "--quick " + args + " --out " + (dir / "out").string());
    EXPECT_NE(r.exit_code, 0) << args;
    EXPECT_NE(r.output.find(message), std::string::npos) << args << " →\n" << r.output;
    // One line: the error (checks made after parsing follow the run's banner line).
    const bool banner = r.output.rfind("== 04_ddpm", 0) == 0;
    EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), banner ? 2 : 1) << args << " →\n"
                                                                                  << r.output;
  }
  fs::remove_all(dir);
}

// A finished training run is never replaced silently: a new --train into its
// folder is refused before any work, naming the step it holds and the ways on.
TEST_F(Chapter04Train, ANewRunDoesNotReplaceAnEarlierOne) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto ckpt = *out_ / "unet_checkpoint.pt";
  ASSERT_TRUE(fs::exists(ckpt));
  const auto before = fs::last_write_time(ckpt);
  auto r = dm_test::run("04_ddpm", "--quick --train --steps 20 --out " + out_->string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("holds a training run (step 300)"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--resume"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--overwrite"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("[2/6]"), std::string::npos) << "must fail before doing any work";
  EXPECT_EQ(fs::last_write_time(ckpt), before);
  EXPECT_TRUE(fs::exists(*out_ / "metrics.json")) << "a refused run leaves the folder as it was";
  EXPECT_FALSE(fs::exists(out_->string() + ".earlier-1"));
}
