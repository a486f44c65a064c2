// tests/exercises/test_01_langevin.cpp — chapter 01's exercises (exercises.hpp)
// against exact answers: the dm library's own implementation, values worked
// out by hand, autograd, and identities the correct formula must satisfy.
//
// The same file is built against solutions.cpp (must pass), against the stubs
// in exercises.cpp (every test must fail; see cmake/DmExercises.cmake) and, with
// -DDM_EXERCISES=mine, against the learner's answers. Each test can also fail
// on a plausible wrong answer: the comments name the mistakes it catches.
// Tolerances: both sides evaluate float64 expressions of O(1–100) values, so
// 1e-10 is round-off with a wide margin.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "dm/base/core.hpp"
#include "dm/base/rng.hpp"
#include "dm/data/toy.hpp"
#include "dm/diffusion/model.hpp"
#include "dm/methods/langevin.hpp"
#include "exercises.hpp"
#include "test_tensors.hpp"

namespace {

using dm::toy::DoubleWell;
using dm::toy::GaussianMixture;
using dm_test::tensor;
namespace lv = dm::langevin;

using dm_test::max_abs_diff;

// Draws of this file come from their own generators, not torch's global one.
torch::Tensor normal(std::vector<int64_t> shape, uint64_t seed) {
  auto gen = dm::make_generator(seed);
  return dm::randn(shape, gen, dm::f64());
}

// Three anisotropic components in 2D: a score that is far from linear.
GaussianMixture mixture_2d() {
  return GaussianMixture(tensor({0.5, 0.3, 0.2}, {3}), tensor({-2, 0, 1, 1.5, 2, -1}, {3, 2}),
                         tensor({1.0, 0.6, 0.6, 0.5,    //
                                 0.3, -0.2, -0.2, 0.8,  //
                                 0.6, 0.0, 0.0, 0.1},
                                {3, 2, 2}));
}

// ---------------------------------------------------------------------------
// Exercise 1.1 — ula_step: x + (Δt/2) s + √Δt z.

// dm::langevin::ula_step draws its noise from the generator it is given,
// z = randn_like(x, gen), after computing the score (which uses no random
// numbers). A second generator with the same seed, drawing z the same way,
// gives the exact z the library used.
// Catches: a missing ½ in the drift, Δt instead of √Δt on the noise.
TEST(Exercise01_1, MatchesTheLibraryStep) {
  auto gm = mixture_2d();
  const auto x = 2.0 * normal({64, 2}, 1);
  for (double dt : {0.05, 0.5}) {
    auto library_gen = dm::make_generator(123);
    const auto want = lv::ula_step(gm, x, dt, library_gen);
    auto gen = dm::make_generator(123);
    const auto z = dm::randn_like(x, gen);
    const auto got = ex01::ula_step(x, gm.score(x), dt, z);
    ASSERT_EQ(got.sizes(), x.sizes());
    EXPECT_LT(max_abs_diff(got, want), 1e-10) << "dt " << dt;
  }
}

// Δt = 0.04: drift factor Δt/2 = 0.02, noise factor √Δt = 0.2.
//   1 + 0.02·(−1) + 0.2·0.5    =  1.08
//  −2 + 0.02·4    + 0.2·(−1)   = −2.12
TEST(Exercise01_1, HandComputedStep) {
  const auto x = tensor({1.0, -2.0}, {2, 1});
  const auto score = tensor({-1.0, 4.0}, {2, 1});
  const auto z = tensor({0.5, -1.0}, {2, 1});
  const auto got = ex01::ula_step(x, score, 0.04, z);
  ASSERT_EQ(got.sizes(), x.sizes());
  EXPECT_NEAR(got[0][0].item<double>(), 1.08, 1e-12);
  EXPECT_NEAR(got[1][0].item<double>(), -2.12, 1e-12);
}

// ---------------------------------------------------------------------------
// Exercise 1.2 — mala_log_accept.

// Against dm::langevin::mala_log_accept (at τ = 1) on a 2D mixture and on the
// double well, for ULA proposals and for arbitrary far moves.
// Catches: a missing ½ in the proposal mean, 1/2 instead of 1/(2Δt), the score
// at the wrong end of a move, the ratio upside down, not summing over D.
TEST(Exercise01_2, MatchesTheLibrary) {
  const double dt = 0.3;
  auto gm = mixture_2d();
  auto gm_log_prob = [&](const torch::Tensor& v) { return gm.log_prob(v); };
  auto gm_score = [&](const torch::Tensor& v) { return gm.score(v); };
  auto gen = dm::make_generator(2);
  const auto x = 2.0 * dm::randn({64, 2}, gen, dm::f64());
  for (const auto& x_new :
       {lv::ula_step(gm, x, dt, gen), 2.0 * dm::randn({64, 2}, gen, dm::f64())}) {
    const auto want = lv::mala_log_accept(gm_log_prob, gm, x, x_new, dt);
    const auto got = ex01::mala_log_accept(gm_log_prob, gm_score, x, x_new, dt);
    ASSERT_EQ(got.sizes(), (std::vector<int64_t>{64}));
    EXPECT_LT(max_abs_diff(got, want), 1e-10) << "mixture";
  }

  const DoubleWell well;
  auto dw_log_prob = [&](const torch::Tensor& v) { return well.log_prob(v); };
  auto dw_score = [&](const torch::Tensor& v) { return well.score(v); };
  dm::ScoreFunction dw_model(dw_score);
  const auto y = torch::linspace(-2.0, 2.0, 33, dm::f64()).reshape({-1, 1});
  const auto y_new = lv::ula_step(dw_model, y, dt, gen);
  const auto want = lv::mala_log_accept(dw_log_prob, dw_model, y, y_new, dt);
  const auto got = ex01::mala_log_accept(dw_log_prob, dw_score, y, y_new, dt);
  ASSERT_EQ(got.sizes(), (std::vector<int64_t>{33}));
  EXPECT_LT(max_abs_diff(got, want), 1e-10) << "double well";
}

// For p = N(0, I): log p(x) = −‖x‖²/2 (+ any constant), s(x) = −x, and the
// proposal mean is c·x with c = 1 − Δt/2. Then
//   log q(x | x') − log q(x' | x) = [‖x' − c x‖² − ‖x − c x'‖²] / (2Δt)
//                                 = (‖x'‖² − ‖x‖²)(1 − c²) / (2Δt),
// and 1 − c² = Δt − Δt²/4, so log α = (Δt/8)(‖x‖² − ‖x'‖²).
// At Δt = 0.5 that is (‖x‖² − ‖x'‖²)/16.
TEST(Exercise01_2, HandComputedGaussian) {
  const double dt = 0.5;
  auto log_prob = [](const torch::Tensor& v) { return -0.5 * v.pow(2).sum(1) + 3.0; };
  auto score = [](const torch::Tensor& v) { return -v; };
  const auto x = tensor({1, 0, 1, 1, 2, -1, 0, 0}, {4, 2});
  const auto x_new = tensor({0, 0, 0, 0, 0.5, 0.5, 1, 0}, {4, 2});
  const auto got = ex01::mala_log_accept(log_prob, score, x, x_new, dt);
  ASSERT_EQ(got.sizes(), (std::vector<int64_t>{4}));
  const std::vector<double> want = {1.0 / 16, 2.0 / 16, 4.5 / 16, -1.0 / 16};
  for (int i = 0; i < 4; ++i) EXPECT_NEAR(got[i].item<double>(), want[i], 1e-12) << "chain " << i;
}

// Identities of any Metropolis–Hastings ratio: staying put is always accepted,
// log α(x → x) = 0, and reversing a move negates it, log α(x' → x) = −log α(x → x').
// Catches: the score at the starting point x used in both proposal densities
// (breaks the symmetry), a per-coordinate result instead of one value per chain.
TEST(Exercise01_2, ZeroForNoMoveAndAntisymmetric) {
  const double dt = 0.4;
  auto gm = mixture_2d();
  auto log_prob = [&](const torch::Tensor& v) { return gm.log_prob(v); };
  auto score = [&](const torch::Tensor& v) { return gm.score(v); };
  const auto x = 2.0 * normal({32, 2}, 3);
  const auto x_new = 2.0 * normal({32, 2}, 4);
  const auto stay = ex01::mala_log_accept(log_prob, score, x, x, dt);
  ASSERT_EQ(stay.sizes(), (std::vector<int64_t>{32}));
  EXPECT_LT(stay.abs().max().item<double>(), 1e-12);
  const auto forward = ex01::mala_log_accept(log_prob, score, x, x_new, dt);
  const auto backward = ex01::mala_log_accept(log_prob, score, x_new, x, dt);
  EXPECT_LT(max_abs_diff(forward, -backward), 1e-10);
  EXPECT_GT(forward.abs().max().item<double>(), 0.1);  // the moves are not trivial
}

// ---------------------------------------------------------------------------
// Exercise 1.3 — double_well_tempered_score: V'(x)/τ.

// V' by autograd through dm::toy::DoubleWell::potential, divided by τ, and the
// library's tempered model DoubleWell(τ).score, on a grid over both wells.
// Catches: a wrong derivative, τ forgotten or multiplied instead of divided.
TEST(Exercise01_3, IsTheDerivativeOfVOverTau) {
  const auto x = torch::linspace(-2.5, 2.5, 41, dm::f64()).reshape({-1, 1});
  const auto xg = x.clone().requires_grad_(true);
  const auto v_prime = torch::autograd::grad({DoubleWell::potential(xg).sum()}, {xg})[0];
  for (double tau : {1.0, 0.5, 5.0}) {
    const auto got = ex01::double_well_tempered_score(x, tau);
    ASSERT_EQ(got.sizes(), x.sizes());
    EXPECT_LT(max_abs_diff(got, v_prime / tau), 1e-10) << "tau " << tau;
    EXPECT_LT(max_abs_diff(got, DoubleWell(tau).score(x)), 1e-10) << "tau " << tau;
  }
}

// V'(x) = −4x³ + 8x = −4x(x² − 2): zero at the barrier top 0 and at the modes
// ±√2 for every τ; V'(1)/2 = 4/2 = 2 and V'(2)/4 = (−32 + 16)/4 = −4.
TEST(Exercise01_3, HandComputedValues) {
  const double r2 = std::sqrt(2.0);
  const auto zeros = ex01::double_well_tempered_score(tensor({-r2, 0.0, r2}, {3}), 3.0);
  ASSERT_EQ(zeros.sizes(), (std::vector<int64_t>{3}));
  EXPECT_LT(zeros.abs().max().item<double>(), 1e-12);
  const auto at_1 = ex01::double_well_tempered_score(tensor({1.0}, {1}), 2.0);
  const auto at_2 = ex01::double_well_tempered_score(tensor({2.0}, {1}), 4.0);
  EXPECT_NEAR(at_1.item<double>(), 2.0, 1e-12);
  EXPECT_NEAR(at_2.item<double>(), -4.0, 1e-12);
}

// ---------------------------------------------------------------------------
// Exercise 1.4 — geometric_schedule: τ_i = τ_max (τ_min/τ_max)^{i/(L−1)}.

// Against dm::langevin::geometric_schedule, including one and two levels.
// Catches: an excluded endpoint (i/L instead of i/(L−1)), NaN at L = 1,
// a linear or increasing schedule.
TEST(Exercise01_4, MatchesTheLibrary) {
  struct Case {
    double tau_max, tau_min;
    int levels;
  };
  for (const Case& c : {Case{10.0, 0.1, 5}, Case{5.0, 1.0, 4}, Case{100.0, 1.0, 10},
                        Case{2.0, 1.0, 2}, Case{3.0, 1.0, 1}, Case{1.0, 1.0, 3}}) {
    const auto want = lv::geometric_schedule(c.tau_max, c.tau_min, c.levels);
    const auto got = ex01::geometric_schedule(c.tau_max, c.tau_min, c.levels);
    ASSERT_EQ(got.size(), want.size()) << c.tau_max << " → " << c.tau_min << ", " << c.levels;
    for (size_t i = 0; i < want.size(); ++i)
      EXPECT_NEAR(got[i], want[i], 1e-12 * want[i])
          << c.tau_max << " → " << c.tau_min << ", " << c.levels << " levels, level " << i;
  }
}

// 8 → 1 in 4 levels halves each time: {8, 4, 2, 1}. 10 → 0.1 in 5 levels has
// the ratio (0.01)^{1/4} throughout and ends exactly at 0.1. One level: {τ_min}.
TEST(Exercise01_4, EndpointsAndConstantRatio) {
  const auto halves = ex01::geometric_schedule(8.0, 1.0, 4);
  ASSERT_EQ(halves.size(), 4u);
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(halves[i], 8.0 / std::pow(2.0, double(i)), 1e-12);

  const auto taus = ex01::geometric_schedule(10.0, 0.1, 5);
  ASSERT_EQ(taus.size(), 5u);
  EXPECT_NEAR(taus.front(), 10.0, 1e-12);
  EXPECT_NEAR(taus.back(), 0.1, 1e-14);
  for (size_t i = 1; i < taus.size(); ++i)
    EXPECT_NEAR(taus[i] / taus[i - 1], std::pow(0.01, 0.25), 1e-12) << "level " << i;

  const auto single = ex01::geometric_schedule(5.0, 1.0, 1);
  ASSERT_EQ(single.size(), 1u);
  EXPECT_NEAR(single[0], 1.0, 1e-14);
}

}  // namespace
