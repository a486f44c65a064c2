// Chapter 01 end to end: the --quick run succeeds, writes every figure and a
// metrics.json whose numbers show what the chapter claims; bad input fails
// with one clear line.
#include <cmath>

#include "chapter_run.hpp"

namespace fs = std::filesystem;
using dm_test::fraction_se;

struct Ch01 {
  static constexpr const char* name = "01_langevin";
};
using Chapter01 = dm_test::QuickRun<Ch01>;

TEST_F(Chapter01, QuickRunSucceeds) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  EXPECT_NE(result_->output.find("[4/4]"), std::string::npos);
}

TEST_F(Chapter01, WritesEveryFigureAsSvgAndPng) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  expect_figures_as_svg_and_png(7);
  EXPECT_EQ(metrics()["run"]["seed"], 0);
}

// Tolerances: a statistic is "at the floor" when it is within 4 standard
// deviations of the noise floor measured by the chapter (10 pairs of exact
// samples); a fraction is right within 4 binomial standard errors.
TEST_F(Chapter01, UlaIsBiasedAtLargeStepAndMalaIsNot) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto m = metrics()["step_size_bias"];
  const double floor = m["ks_noise_floor"]["mean"], floor_std = m["ks_noise_floor"]["std"];
  const double at_floor = floor + 4 * floor_std;
  const auto ks_ula = m["ks_ula"].get<std::vector<double>>();
  const auto ks_mala = m["ks_mala"].get<std::vector<double>>();
  EXPECT_GT(ks_ula.back(), at_floor) << "ULA's bias at the largest dt must show";
  for (double ks : ks_mala) EXPECT_LT(ks, at_floor) << "MALA must be exact at every dt";
  EXPECT_LT(ks_ula.front(), at_floor * 2) << "ULA with a small dt is nearly exact";
  const auto acc = m["mala_acceptance"].get<std::vector<double>>();
  for (size_t i = 1; i < acc.size(); ++i)
    EXPECT_LT(acc[i], acc[i - 1]) << "acceptance falls with dt";
  EXPECT_GT(acc.back(), 0.5);
}

TEST_F(Chapter01, HighTemperatureMixesLowDoesNot) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto m = metrics()["temperature"];
  const double n = m["chains"], se = fraction_se(0.5, n);
  EXPECT_NEAR(m["tau5"]["right_fraction"].get<double>(), 0.5, 4 * se);
  EXPECT_LT(m["tau1"]["right_fraction"].get<double>(), 0.5 - 4 * se);
  EXPECT_LT(m["tau5"]["ks"].get<double>(), m["tau1"]["ks"].get<double>());
}

TEST_F(Chapter01, AnnealingFixesMixing) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto m = metrics()["mixing"];
  const double n = m["chains"], se = fraction_se(0.5, n);
  const double plain = m["plain"]["right_fraction"], annealed = m["annealed"]["right_fraction"];
  EXPECT_NEAR(annealed, 0.5, 4 * se);
  EXPECT_LT(plain, annealed - 4 * se);
  EXPECT_GT(m["annealed"]["ever_crossed"].get<double>(), m["plain"]["ever_crossed"].get<double>());
  EXPECT_DOUBLE_EQ(m["taus"].back().get<double>(), 1.0);
}

TEST_F(Chapter01, Mixture2dReachesTheNoiseFloor) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto m = metrics()["mixture_2d"];
  const double at_floor = m["energy_distance_noise_floor"]["mean"].get<double>() +
                          4 * m["energy_distance_noise_floor"]["std"].get<double>();
  EXPECT_LT(m["energy_distance_ula"].get<double>(), at_floor);
  EXPECT_LT(m["energy_distance_mala"].get<double>(), at_floor);
}

// ---- bad input: one clear line, non-zero exit --------------------------------

TEST(Chapter01BadInput, UnknownFlag) {
  auto r = dm_test::run("01_langevin", "--no-such-flag");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("error"), std::string::npos) << r.output;
  EXPECT_NE(r.output.find("--no-such-flag"), std::string::npos) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}

TEST(Chapter01BadInput, OutNotWritable) {
  // A folder below a regular file can never be created (even by root).
  auto dir = dm_test::fresh_dir("01_bad_out");
  fs::create_directories(dir);
  std::ofstream(dir / "file") << "x";
  auto r = dm_test::run("01_langevin", "--quick --out " + (dir / "file" / "sub").string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--out"), std::string::npos) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
  fs::remove_all(dir);
}

TEST(Chapter01BadInput, CudaWithoutGpu) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "this machine has CUDA";
  auto r = dm_test::run("01_langevin",
                        "--quick --device cuda --out " + dm_test::fresh_dir("01_cuda").string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--device cpu"), std::string::npos) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}

TEST(Chapter01BadInput, BadValue) {
  auto r = dm_test::run("01_langevin", "--seed banana");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("error"), std::string::npos) << r.output;
}

// A run into a folder that holds an earlier run's results moves them aside
// into <out>.earlier-N first (the first free N) and says so: the new results
// are never mixed with stale ones, nothing is deleted, and model files (.pt)
// stay where they are.
TEST(Chapter01Rerun, MovesTheEarlierResultsAsideAndKeepsModelFiles) {
  const auto dir = dm_test::fresh_dir("01_rerun");
  const auto out = dir / "out";
  const std::string args = "--quick --seed 0 --threads 1 --out " + out.string();
  ASSERT_EQ(dm_test::run("01_langevin", args).exit_code, 0);
  std::ofstream(out / "stale.txt") << "left by an earlier run";
  std::ofstream(out / "model.pt") << "weights";
  fs::create_directories(dir / "out.earlier-1");  // taken: the next free number is used
  const auto r = dm_test::run("01_langevin", args);
  ASSERT_EQ(r.exit_code, 0) << r.output;
  const auto aside = dir / "out.earlier-2";
  EXPECT_NE(r.output.find(aside.string()), std::string::npos) << r.output;
  EXPECT_TRUE(fs::exists(aside / "stale.txt"));
  EXPECT_TRUE(fs::exists(aside / "metrics.json"));
  EXPECT_FALSE(fs::exists(out / "stale.txt"));
  EXPECT_TRUE(fs::exists(out / "metrics.json"));
  EXPECT_TRUE(fs::exists(out / "model.pt")) << "model files stay";
  EXPECT_FALSE(fs::exists(aside / "model.pt"));
  fs::remove_all(dir);
}
