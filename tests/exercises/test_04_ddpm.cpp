// tests/exercises/test_04_ddpm.cpp — chapter 04's exercises (exercises.hpp)
// against exact answers: the dm library's own schedule tables and DDPM
// functions, values worked out by hand, and Gaussian conditioning done from
// scratch.
//
// The same file is built against solutions.cpp (must pass), against the stubs
// in exercises.cpp (every test must fail; see cmake/DmExercises.cmake) and, with
// -DDM_EXERCISES=mine, against the learner's answers. Each test can also fail
// on a plausible wrong answer: the comments name the mistakes it catches.
// Tolerances: both sides evaluate the same float64 expressions of O(1) values
// (1e-12); where x̂_0 = x_t/√ᾱ_t is involved it is amplified by up to
// 1/√ᾱ_T ≈ 360 (the 50-step schedule), so 1e-10 is round-off with a wide margin.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "dm/base/core.hpp"
#include "dm/base/rng.hpp"
#include "dm/data/toy.hpp"
#include "dm/diffusion/model.hpp"
#include "dm/diffusion/param.hpp"
#include "dm/diffusion/process.hpp"
#include "dm/diffusion/schedule.hpp"
#include "dm/methods/ddpm.hpp"
#include "exercises.hpp"
#include "test_models.hpp"
#include "test_tensors.hpp"

namespace {

namespace dd = dm::ddpm;
namespace sc = dm::schedule;
using dm::toy::GaussianMixture;
using dm::toy::PerturbedMixture;
using dm_test::tensor;

double at(const torch::Tensor& v, int64_t i) { return v[i].item<double>(); }
using dm_test::generator;
using dm_test::max_abs_diff;
// DDPM's step t (1…T) for every row, as the model seam takes it.
torch::Tensor step_times(int64_t n, int64_t t) { return torch::full({n}, double(t), dm::f64()); }

// Three 2D components with unequal weights: its exact ε is far from linear in x.
GaussianMixture mixture() { return dm_test::three_mode_mixture(); }

// ---------------------------------------------------------------------------
// Exercise 4.1 — alpha_bar: ᾱ_t = Π_{s≤t} (1 − β_s).

// Against the tables of dm::schedule: DDPM's linear schedule (T = 1000, where
// ᾱ_T ≈ 4e-5), the 50-step rescaled one (β up to 0.4) and the cosine schedule.
// Catches: Π β_s instead of Π (1 − β_s), a sum instead of a product, the
// exclusive product (ᾱ_{t−1}: starting at 1), the wrong dimension or length.
TEST(Exercise04_1, MatchesTheScheduleTables) {
  for (const auto& s : {sc::linear(), sc::linear_rescaled(50), sc::cosine(100), sc::cosine()}) {
    const auto got = ex04::alpha_bar(s.betas);
    ASSERT_EQ(got.sizes(), s.alpha_bar.sizes()) << s.label << " T = " << s.T;
    EXPECT_LT(max_abs_diff(got, s.alpha_bar), 1e-12) << s.label << " T = " << s.T;
  }
}

// β = (0.1, 0.2, 0.5): α = (0.9, 0.8, 0.5), so ᾱ = (0.9, 0.72, 0.36).
TEST(Exercise04_1, HandComputedThreeSteps) {
  const auto got = ex04::alpha_bar(tensor({0.1, 0.2, 0.5}, {3}));
  ASSERT_EQ(got.sizes(), (std::vector<int64_t>{3}));
  const std::vector<double> want = {0.9, 0.72, 0.36};
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(at(got, i), want[i], 1e-14) << "step " << i + 1;
}

// ---------------------------------------------------------------------------
// Exercise 4.2 — q_sample: √ᾱ_t x_0 + √(1 − ᾱ_t) ε, one ᾱ_t per row.

// Against dm::marginal_sample on the schedule with the same ε, every row at
// its own step (indices 0 … T−1, both ends included, i.e. steps t = index + 1),
// on points [N, 2].
// Catches: a missing square root, ᾱ and 1 − ᾱ swapped, one ᾱ for all rows.
TEST(Exercise04_2, MatchesTheLibraryOnPoints) {
  const auto s = sc::linear();
  auto gen = generator(4);
  const int64_t n = 64;
  auto t = dm::randint(s.T, {n}, gen, torch::kLong);
  t[0] = 0;
  t[1] = s.T - 1;
  const auto x0 = 2.0 * dm::randn({n, 2}, gen, dm::f64());
  const auto eps = dm::randn({n, 2}, gen, dm::f64());
  const auto got = ex04::q_sample(x0, s.alpha_bar.index_select(0, t), eps);
  ASSERT_EQ(got.sizes(), x0.sizes());
  EXPECT_LT(max_abs_diff(got, dm::marginal_sample(s, x0, t + 1, eps)), 1e-12);
}

// The same on images [N, 1, 4, 4] (cosine schedule): ᾱ_t must be reshaped to
// [N, 1, 1, 1], not just given one trailing dimension. N = 6, so a [N, 1]
// coefficient cannot broadcast against the 4 × 4 trailing dims by accident.
// Catches: unsqueeze(1) only (right for points, wrong here), a coefficient
// that mixes rows.
TEST(Exercise04_2, MatchesTheLibraryOnImages) {
  const auto s = sc::cosine(100);
  auto gen = generator(5);
  const auto t = torch::tensor(std::vector<int64_t>{0, 3, 17, 50, 80, 99}, torch::kLong);
  const auto x0 = dm::rand({6, 1, 4, 4}, gen, dm::f64()) * 2.0 - 1.0;
  const auto eps = dm::randn({6, 1, 4, 4}, gen, dm::f64());
  const auto got = ex04::q_sample(x0, s.alpha_bar.index_select(0, t), eps);
  ASSERT_EQ(got.sizes(), x0.sizes());
  EXPECT_LT(max_abs_diff(got, dm::marginal_sample(s, x0, t + 1, eps)), 1e-12);
}

// ᾱ = 0.64: x_t = 0.8 x_0 + 0.6 ε; ᾱ = 1: x_t = x_0 (no noise yet); ᾱ = 0:
// x_t = ε (pure noise). Rows of [3, 2].
TEST(Exercise04_2, HandComputedRows) {
  const auto x0 = tensor({1.0, -2.0, 3.0, 0.5, 4.0, -1.0}, {3, 2});
  const auto eps = tensor({0.5, 1.0, -1.5, 2.0, 0.25, -0.75}, {3, 2});
  const auto got = ex04::q_sample(x0, tensor({0.64, 1.0, 0.0}, {3}), eps);
  ASSERT_EQ(got.sizes(), x0.sizes());
  const auto want = tensor({0.8 * 1.0 + 0.6 * 0.5, 0.8 * -2.0 + 0.6 * 1.0,  //
                            3.0, 0.5,                                       //
                            0.25, -0.75},
                           {3, 2});
  EXPECT_LT(max_abs_diff(got, want), 1e-14);
}

// ---------------------------------------------------------------------------
// Exercise 4.3 — posterior_mean_variance: q(x_{t−1} | x_t, x_0) = N(μ̃_t, β̃_t I).

// Against the schedule's posterior q(x_{t−1} | x_t, x_0) (Schedule::posterior(t,
// t − 1): μ̃ = c_x0·x_0 + c_xt·x_t, variance β̃_t) at the first step (t = 1,
// where μ̃ = x_0 and β̃ = 0), early, middle and last steps, on points and images.
// Catches: ᾱ_t in place of ᾱ_{t−1}, √α_t or √ᾱ_{t−1} without the root, the
// two coefficients swapped, β_t as the variance.
TEST(Exercise04_3, MatchesTheLibrary) {
  auto gen = generator(6);
  for (const auto& s : {sc::linear(), sc::cosine(100)}) {
    for (const std::vector<int64_t>& shape :
         {std::vector<int64_t>{8, 2}, std::vector<int64_t>{3, 1, 4, 4}}) {
      const auto x0 = dm::randn(shape, gen, dm::f64());
      const auto xt = 1.5 * dm::randn(shape, gen, dm::f64());
      for (int64_t i : {int64_t{0}, int64_t{1}, int64_t{10}, s.T / 2, s.T - 1}) {
        const double t = double(i + 1);  // index i is step t = i + 1
        const auto q = s.posterior(t, t - 1);
        const auto want_mean = q.c_x0 * x0 + q.c_xt * xt;
        const auto got = ex04::posterior_mean_variance(x0, xt, at(s.betas, i), at(s.alpha_bar, i),
                                                       at(s.alpha_bar_prev, i));
        ASSERT_EQ(got.mean.sizes(), xt.sizes());
        EXPECT_LT(max_abs_diff(got.mean, want_mean), 1e-12) << s.label << " index " << i;
        EXPECT_NEAR(got.variance, q.variance, 1e-14) << s.label << " index " << i;
      }
    }
  }
}

// From scratch: given x_0, run the forward chain one step at a time, keeping
// the mean m and variance v of x_{t−1} (m = x_0, v = 0 at t = 1). The next
// state x_t = √α_t x_{t−1} + √β_t ε makes (x_{t−1}, x_t) jointly Gaussian with
//   E x_t = √α_t m,   Var x_t = α_t v + β_t,   Cov(x_{t−1}, x_t) = √α_t v,
// and conditioning a 2D Gaussian on its second coordinate gives
//   E[x_{t−1} | x_t] = m + Cov/Var x_t · (x_t − E x_t),
//   Var[x_{t−1} | x_t] = v − Cov²/Var x_t.
// No closed form of the posterior is used, and ᾱ is the running product.
// Catches: the same mistakes as above on a short schedule with large β's.
TEST(Exercise04_3, IsGaussianConditioning) {
  const std::vector<double> betas = {0.05, 0.1, 0.2, 0.3, 0.15, 0.4};
  const auto x0 = tensor({-1.5, -0.2, 0.0, 0.7, 2.0}, {5, 1});
  const auto xt = tensor({0.3, -1.1, 0.8, 2.5, -0.4}, {5, 1});
  auto m = x0.clone();  // E[x_{t−1} | x_0] per row
  double v = 0.0;       // Var[x_{t−1} | x_0]
  double ab_prev = 1.0;
  for (size_t k = 0; k < betas.size(); ++k) {
    const double b = betas[k], a = 1.0 - b, ab = ab_prev * a;
    const auto mean_t = std::sqrt(a) * m;
    const double var_t = a * v + b, cov = std::sqrt(a) * v;
    const auto want_mean = m + (cov / var_t) * (xt - mean_t);
    const double want_var = v - cov * cov / var_t;

    const auto got = ex04::posterior_mean_variance(x0, xt, b, ab, ab_prev);
    ASSERT_EQ(got.mean.sizes(), xt.sizes());
    EXPECT_LT(max_abs_diff(got.mean, want_mean), 1e-12) << "t = " << k + 1;
    EXPECT_NEAR(got.variance, want_var, 1e-12) << "t = " << k + 1;

    m = mean_t;
    v = var_t;
    ab_prev = ab;
  }
  EXPECT_NEAR(v, 1.0 - ab_prev, 1e-12);  // the chain itself: Var[x_T | x_0] = 1 − ᾱ_T
}

// ---------------------------------------------------------------------------
// Exercise 4.4 — ancestral_step: (x_t − β_t/√(1 − ᾱ_t) ε̂)/√α_t + σ_t z.

// Against the library's ancestral step (dm::ddpm::ancestral from step t to
// t − 1) driven by the exact ε of a mixture on the 50-step schedule, with both
// choices of σ_t (σ_t² = β_t or β̃_t). The library forms its mean as the
// posterior mean at x̂_0 (not Algorithm 2's form) and draws z = randn_like(x, gen):
// the same generator seed gives the same z.
// Catches: a wrong sign on ε̂, β_t/(1 − ᾱ_t) without the root, dividing by α_t
// or √ᾱ_t instead of √α_t, σ_t² z instead of σ_t z.
TEST(Exercise04_4, MatchesTheLibrarySampler) {
  const auto s = sc::linear_rescaled(50);
  PerturbedMixture model(mixture(), s, dm::Prediction::eps);
  auto x_gen = generator(7);
  const auto x = 2.0 * dm::randn({64, 2}, x_gen, dm::f64());
  for (auto variance : {dd::Variance::fixedlarge, dd::Variance::fixedsmall}) {
    for (int64_t i : {1, 5, 25, 49}) {  // index i is step t = i + 1
      dd::AncestralOptions opt;
      opt.variance = variance;
      const auto step = dd::ancestral(s, opt);
      auto library_gen = generator(100 + i);
      const auto want = step(model, x, double(i + 1), double(i), {}, library_gen).x;

      const auto eps = model.predict(x, step_times(64, i + 1));
      auto g = generator(100 + i);
      const auto z = dm::randn_like(x, g);
      const double sigma = std::sqrt(
          variance == dd::Variance::fixedlarge ? at(s.betas, i) : at(s.posterior_variance, i));
      const auto got = ex04::ancestral_step(x, eps, at(s.betas, i), at(s.alpha_bar, i), sigma, z);
      ASSERT_EQ(got.sizes(), x.sizes());
      EXPECT_LT(max_abs_diff(got, want), 1e-10)
          << (variance == dd::Variance::fixedlarge ? "fixedlarge" : "fixedsmall") << ", index "
          << i;
    }
  }
}

// The last step (t = 1, index 0) adds no noise: with σ_1 = 0 the step is the
// library's ancestral step from t = 1 to 0, which is x̂_0 = (x_1 − √(1 − ᾱ_1) ε̂)/√ᾱ_1
// (ᾱ_1 = α_1 = 1 − β_1, so Algorithm 2's mean is exactly x̂_0). z is far from
// zero, so noise added regardless of σ_t shows.
// Catches: β_t/(1 − ᾱ_t) without the root (1 instead of √β_1 here), a wrong
// sign, noise added as z or √β_t z whatever σ_t is.
TEST(Exercise04_4, LastStepAddsNoNoise) {
  const auto s = sc::linear_rescaled(50);
  PerturbedMixture model(mixture(), s, dm::Prediction::eps);
  auto gen = generator(8);
  const auto x = 0.5 * dm::randn({64, 2}, gen, dm::f64());
  const auto z = 3.0 * torch::ones({64, 2}, dm::f64());
  const auto eps = model.predict(x, step_times(64, 1));
  const auto got = ex04::ancestral_step(x, eps, at(s.betas, 0), at(s.alpha_bar, 0), 0.0, z);
  ASSERT_EQ(got.sizes(), x.sizes());
  const auto last = dd::ancestral(s)(model, x, 1.0, 0.0, {}, gen);
  EXPECT_LT(max_abs_diff(got, last.x), 1e-10);
  EXPECT_LT(
      max_abs_diff(got, dm::convert(eps, dm::Prediction::eps, dm::Prediction::x0, x, s.at(1.0))),
      1e-10);
}

// β_t = 0.19 (√α_t = 0.9), ᾱ_t = 0.64 (√(1 − ᾱ_t) = 0.6), σ_t = 0.5:
//   x_t = 1,    ε̂ = 0.6, z = −2:  (1 − 0.19/0.6 · 0.6)/0.9 + 0.5·(−2) = 0.9 − 1 = −0.1
//   x_t = −0.9, ε̂ = 0,   z = 0.4: −0.9/0.9 + 0.5·0.4 = −1 + 0.2 = −0.8
//   x_t = 0.9,  ε̂ = −1.2, z = 0:  (0.9 + 0.19/0.6 · 1.2)/0.9 = (0.9 + 0.38)/0.9 = 1.28/0.9
TEST(Exercise04_4, HandComputedStep) {
  const auto xt = tensor({1.0, -0.9, 0.9}, {3, 1});
  const auto eps = tensor({0.6, 0.0, -1.2}, {3, 1});
  const auto z = tensor({-2.0, 0.4, 0.0}, {3, 1});
  const auto got = ex04::ancestral_step(xt, eps, 0.19, 0.64, 0.5, z);
  ASSERT_EQ(got.sizes(), xt.sizes());
  EXPECT_NEAR(got[0][0].item<double>(), -0.1, 1e-12);
  EXPECT_NEAR(got[1][0].item<double>(), -0.8, 1e-12);
  EXPECT_NEAR(got[2][0].item<double>(), 1.28 / 0.9, 1e-12);
}

}  // namespace
