// Chapter 03 end to end: the --quick run succeeds, writes every figure and a
// metrics.json whose numbers show annealed Langevin recovering the mode
// weights that single-σ Langevin gets wrong, the noising chain matching its
// closed-form marginals, and the image pipeline (levels, the shipped U-Net
// sampled with fewer levels, quality) running through; --quick --train trains
// a tiny U-Net whose loss falls.
#include <algorithm>
#include <cmath>
#include <numeric>

#include "chapter_run.hpp"

struct Ch03 {
  static constexpr const char* name = "03_ncsn";
  static constexpr int train_steps = 300;
};
using Chapter03 = dm_test::QuickRun<Ch03>;
using Chapter03Train = dm_test::QuickRun<Ch03, true>;

TEST_F(Chapter03, QuickRunSucceeds) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  EXPECT_NE(result_->output.find("[6/6]"), std::string::npos);
}

TEST_F(Chapter03, WritesEveryFigureAsSvgAndPng) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  expect_figures_as_svg_and_png(8);
}

// Weights 0.8/0.2 of two modes 6 std apart. With the exact score, annealing
// (10 levels × T = 100) lands within a few binomial standard errors — at
// T = 100 it is itself a little biased: 0.014 and 0.034 in two default runs of
// 4000 chains, 0.024 in the quick run of 1000, whose s.e. is 0.0126, so the
// bound 4 s.e. = 0.05 sits ≈ 2 s.e. above bias + noise; the T sweep below
// shows the bias fall with T) — and a learned s_θ(x, σ) close
// to it; single-σ Langevin keeps the 50/50 split it started from (error ≈ 0.3).
TEST_F(Chapter03, AnnealingRecoversTheModeWeights) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto m = metrics()["toy_2d"];
  const double floor = m["weight_error_floor"];
  EXPECT_LT(m["annealed_exact"]["weight_error"].get<double>(), 4 * floor);
  EXPECT_LT(m["annealed_learned"]["weight_error"].get<double>(), 0.1);
  for (const char* key : {"single_sigma", "single_sigma_big_step"}) {
    EXPECT_GT(m[key]["weight_error"].get<double>(), 0.15) << key;
    EXPECT_GT(m[key]["weight_error"].get<double>(), 10 * floor) << key;
  }
  // And the whole distribution: far closer than single-σ Langevin.
  EXPECT_LT(m["annealed_exact"]["energy_distance"].get<double>(),
            0.05 * m["single_sigma"]["energy_distance"].get<double>());
}

// More steps per level: the exact-score sampler's weight error falls from the
// short-chain bias towards the floor.
TEST_F(Chapter03, MoreStepsPerLevelShrinkTheWeightError) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto m = metrics()["toy_2d"];
  const auto err = m["exact_T_sweep"]["weight_error"].get<std::vector<double>>();
  ASSERT_GE(err.size(), 3u);
  EXPECT_LT(err.back(), 0.5 * err.front());
  EXPECT_LT(err.back(), 4 * m["weight_error_floor"].get<double>());
}

// x_k = x_{k−1} + √(σ_k² − σ_{k−1}²) z: x_k − x_0 has std σ_k per coordinate
// (relative s.e. of a sample std at n = 1000 is 1/√(2n) ≈ 0.022; bound 5 s.e.),
// and the chain's x_k is indistinguishable from x_0 + σ_k z (energy distance
// under its noise floor, mean + 3 std, with a factor 2 for the one-run floor).
TEST_F(Chapter03, NoisingChainHasTheClosedFormMarginals) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto m = metrics()["ve_chain"];
  const auto sigmas = m["sigmas"].get<std::vector<double>>();
  const double n = metrics()["toy_2d"]["chains"].get<double>();
  for (const char* key : {"std_x", "std_y"}) {
    const auto s = m[key].get<std::vector<double>>();
    ASSERT_EQ(s.size(), sigmas.size());
    for (size_t k = 0; k < s.size(); ++k)
      EXPECT_NEAR(s[k] / sigmas[k], 1.0, 5 / std::sqrt(2 * n)) << key << " " << k;
  }
  const auto ed = m["energy_distance"].get<std::vector<double>>();
  const auto fl = m["energy_distance_floor_mean_plus_3std"].get<std::vector<double>>();
  for (size_t k = 0; k < ed.size(); ++k) EXPECT_LT(ed[k], 2 * fl[k]) << "level " << k;
}

TEST_F(Chapter03, ImageLevelsAndSampler) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto im = metrics()["images"];
  // σ_1 at least the largest distance between two training images (NCSN v2, technique 1).
  EXPECT_LE(im["largest_pairwise_distance"].get<double>(), im["sigma_max"].get<double>());
  EXPECT_GT(im["largest_pairwise_distance"].get<double>(),
            im["median_pairwise_distance"].get<double>());
  // The step rule lands each level near variance σ_i² (its fixed point 1/(1 − a/4) is above 1).
  const double r = metrics()["sampler"]["variance_ratio_single_point"];
  EXPECT_GT(r, 1.0);
  EXPECT_LT(r, 1.5);
}

// The tiny model of --quick --train trains: ε̂ = 0 (the zero-initialised
// output layer) has loss 1, and 300 steps must halve it.
TEST_F(Chapter03Train, TinyUNetLossFalls) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto t = metrics()["training"];
  EXPECT_EQ(t["steps"], 300);
  EXPECT_LT(t["loss_last"].get<double>(), 0.5 * t["loss_first"].get<double>());
  EXPECT_NE(result_->output.find("[4/6] the U-Net as s_θ(x, σ): training"), std::string::npos);
}

// The plain quick run samples the shipped model (fewer levels and samples)
// and measures the samples; image quality itself is in the model's manifest.
TEST_F(Chapter03, SamplesTheShippedModelAndMeasuresThem) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  EXPECT_FALSE(metrics().contains("training"));
  const auto q = metrics()["quality"];
  EXPECT_EQ(q["model"], "checkpoint ncsn_fashion.pt");
  EXPECT_EQ(q["samples"], 64);
  EXPECT_GT(q["frechet_distance"].get<double>(), 0.0);
  EXPECT_GT(q["frechet_floor_train_vs_test"].get<double>(), 0.0);
  const auto frac = q["class_fractions"].get<std::vector<double>>();
  ASSERT_EQ(frac.size(), 10u);
  EXPECT_NEAR(std::accumulate(frac.begin(), frac.end(), 0.0), 1.0, 1e-9);
}
