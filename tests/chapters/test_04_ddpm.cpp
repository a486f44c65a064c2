// Chapter 04 end to end: the --quick run (schedules, 2D with the exact and a
// learned ε, a tiny U-Net trained for a few hundred steps, sampling, the
// Fréchet distance) succeeds, writes every figure, and its metrics show what
// the chapter claims; bad input fails fast with one clear line.
#include <cmath>

#include "chapter_run.hpp"

namespace fs = std::filesystem;

struct Ch04 {
  static constexpr const char* name = "04_ddpm";
};
using Chapter04 = dm_test::QuickRun<Ch04>;

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

// ε̂ = 0 (the zero-initialised output layer) has loss E‖ε‖²/D = 1; a few
// hundred steps must bring it far below.
TEST_F(Chapter04, TinyUNetLossFalls) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto t = metrics()["training"];
  EXPECT_EQ(t["steps"], 300);
  EXPECT_NEAR(t["losses"][0].get<double>(), 1.0, 0.1) << "the first window starts near E‖ε‖² = 1";
  EXPECT_LT(t["loss_last"].get<double>(), 0.25 * t["loss_first"].get<double>());
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

// The quick run's own checkpoint is for the tiny U-Net: sampling the default
// model from it must be refused, naming what differs.
TEST_F(Chapter04, CheckpointForAnotherModelIsRefused) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto dir = dm_test::fresh_dir("04_other_ckpt");
  auto r = dm_test::run("04_ddpm", "--checkpoint " + (*out_ / "unet_checkpoint.pt").string() +
                                       " --out " + (dir / "out").string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("different model"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("channel_mults"), std::string::npos) << r.output;
  fs::remove_all(dir);
}
