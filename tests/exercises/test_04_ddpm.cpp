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

#include "dm/core.hpp"
#include "dm/ddpm.hpp"
#include "dm/model.hpp"
#include "dm/schedule.hpp"
#include "dm/toy.hpp"
#include "exercises.hpp"
#include "test_tensors.hpp"

namespace {

namespace dd = dm::ddpm;
namespace sc = dm::schedule;
using dm::toy::GaussianMixture;
using dm::toy::PerturbedMixture;
using dm_test::tensor;

double at(const torch::Tensor& v, int64_t i) { return v[i].item<double>(); }
double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}
at::Generator generator(uint64_t seed) { return at::detail::createCPUGenerator(seed); }
torch::Tensor steps(int64_t n, int64_t index) { return torch::full({n}, index, torch::kLong); }

// Three 2D components with unequal weights: its exact ε is far from linear in x.
GaussianMixture mixture() {
  return GaussianMixture(tensor({0.5, 0.3, 0.2}, {3}), tensor({-2.5, 0.0, 1.5, 2.0, 1.5, -2.0}, {3, 2}),
                         tensor({0.30, 0.10, 0.10, 0.20,    //
                                 0.25, -0.10, -0.10, 0.35,  //
                                 0.15, 0.00, 0.00, 0.15},
                                {3, 2, 2}));
}

// ---------------------------------------------------------------------------
// Exercise 4.1 — alpha_bar: ᾱ_t = Π_{s≤t} (1 − β_s).

// Against the tables of dm::schedule: DDPM's linear schedule (T = 1000, where
// ᾱ_T ≈ 4e-5), the 50-step rescaled one (β up to 0.4) and the cosine schedule.
// Catches: Π β_s instead of Π (1 − β_s), a sum instead of a product, the
// exclusive product (ᾱ_{t−1}: starting at 1), the wrong dimension or length.
TEST(Exercise04_1, MatchesTheScheduleTables) {
  for (const auto& s : {sc::linear(), sc::linear_rescaled(50), sc::cosine(100), sc::cosine()}) {
    const auto got = ex04::alpha_bar(s.betas);
    ASSERT_EQ(got.sizes(), s.alpha_bar.sizes()) << s.name << " T = " << s.T;
    EXPECT_LT(max_abs_diff(got, s.alpha_bar), 1e-12) << s.name << " T = " << s.T;
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

// Against dm::ddpm::q_sample with the same ε, every row at its own step
// (indices 0 … T−1, both ends included), on points [N, 2].
// Catches: a missing square root, ᾱ and 1 − ᾱ swapped, one ᾱ for all rows.
TEST(Exercise04_2, MatchesTheLibraryOnPoints) {
  const auto s = sc::linear();
  torch::manual_seed(4);
  const int64_t n = 64;
  auto t = torch::randint(s.T, {n}, torch::kLong);
  t[0] = 0;
  t[1] = s.T - 1;
  const auto x0 = 2.0 * torch::randn({n, 2}, dm::f64());
  const auto eps = torch::randn({n, 2}, dm::f64());
  const auto got = ex04::q_sample(x0, s.alpha_bar.index_select(0, t), eps);
  ASSERT_EQ(got.sizes(), x0.sizes());
  EXPECT_LT(max_abs_diff(got, dd::q_sample(s, x0, t, eps)), 1e-12);
}

// The same on images [N, 1, 4, 4] (cosine schedule): ᾱ_t must be reshaped to
// [N, 1, 1, 1], not just given one trailing dimension. N = 6, so a [N, 1]
// coefficient cannot broadcast against the 4 × 4 trailing dims by accident.
// Catches: unsqueeze(1) only (right for points, wrong here), a coefficient
// that mixes rows.
TEST(Exercise04_2, MatchesTheLibraryOnImages) {
  const auto s = sc::cosine(100);
  torch::manual_seed(5);
  const auto t = torch::tensor(std::vector<int64_t>{0, 3, 17, 50, 80, 99}, torch::kLong);
  const auto x0 = torch::rand({6, 1, 4, 4}, dm::f64()) * 2.0 - 1.0;
  const auto eps = torch::randn({6, 1, 4, 4}, dm::f64());
  const auto got = ex04::q_sample(x0, s.alpha_bar.index_select(0, t), eps);
  ASSERT_EQ(got.sizes(), x0.sizes());
  EXPECT_LT(max_abs_diff(got, dd::q_sample(s, x0, t, eps)), 1e-12);
}

// ᾱ = 0.64: x_t = 0.8 x_0 + 0.6 ε; ᾱ = 1: x_t = x_0 (no noise yet); ᾱ = 0:
// x_t = ε (pure noise). Rows of [3, 2].
TEST(Exercise04_2, HandComputedRows) {
  const auto x0 = tensor({1.0, -2.0, 3.0, 0.5, 4.0, -1.0}, {3, 2});
  const auto eps = tensor({0.5, 1.0, -1.5, 2.0, 0.25, -0.75}, {3, 2});
  const auto got = ex04::q_sample(x0, tensor({0.64, 1.0, 0.0}, {3}), eps);
  ASSERT_EQ(got.sizes(), x0.sizes());
  const auto want = tensor({0.8 * 1.0 + 0.6 * 0.5, 0.8 * -2.0 + 0.6 * 1.0,  //
                            3.0, 0.5,                                      //
                            0.25, -0.75},
                           {3, 2});
  EXPECT_LT(max_abs_diff(got, want), 1e-14);
}

// ---------------------------------------------------------------------------
// Exercise 4.3 — posterior_mean_variance: q(x_{t−1} | x_t, x_0) = N(μ̃_t, β̃_t I).

// Against dm::ddpm::posterior_mean_variance at the first step (t = 1, where
// μ̃ = x_0 and β̃ = 0), early, middle and last steps, on points and images.
// Catches: ᾱ_t in place of ᾱ_{t−1}, √α_t or √ᾱ_{t−1} without the root, the
// two coefficients swapped, β_t as the variance.
TEST(Exercise04_3, MatchesTheLibrary) {
  torch::manual_seed(6);
  for (const auto& s : {sc::linear(), sc::cosine(100)}) {
    for (const std::vector<int64_t>& shape : {std::vector<int64_t>{8, 2}, std::vector<int64_t>{3, 1, 4, 4}}) {
      const auto x0 = torch::randn(shape, dm::f64());
      const auto xt = 1.5 * torch::randn(shape, dm::f64());
      for (int64_t i : {int64_t{0}, int64_t{1}, int64_t{10}, s.T / 2, s.T - 1}) {
        const auto want = dd::posterior_mean_variance(s, x0, xt, steps(shape[0], i));
        const auto got =
            ex04::posterior_mean_variance(x0, xt, at(s.betas, i), at(s.alpha_bar, i), at(s.alpha_bar_prev, i));
        ASSERT_EQ(got.mean.sizes(), xt.sizes());
        EXPECT_LT(max_abs_diff(got.mean, want.mean), 1e-12) << s.name << " index " << i;
        EXPECT_NEAR(got.variance, want.variance.max().item<double>(), 1e-14) << s.name << " index " << i;
        EXPECT_NEAR(got.variance, want.variance.min().item<double>(), 1e-14) << s.name << " index " << i;
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

// Against dm::ddpm::p_sample_step driven by the exact ε of a mixture on the
// 50-step schedule, with both choices of σ_t (σ_t² = β_t or β̃_t). The library
// forms its mean as the posterior mean at x̂_0 (not Algorithm 2's form) and
// draws z = randn(x.sizes(), generator): the same generator seed gives the same z.
// Catches: a wrong sign on ε̂, β_t/(1 − ᾱ_t) without the root, dividing by α_t
// or √ᾱ_t instead of √α_t, σ_t² z instead of σ_t z.
TEST(Exercise04_4, MatchesTheLibrarySampler) {
  const auto s = sc::linear_rescaled(50);
  PerturbedMixture model(mixture(), s.mean_std_fn(), dm::Prediction::eps);
  torch::manual_seed(7);
  const auto x = 2.0 * torch::randn({64, 2}, dm::f64());
  for (auto variance : {dd::Variance::fixedlarge, dd::Variance::fixedsmall}) {
    for (int64_t i : {1, 5, 25, 49}) {
      dd::SampleOptions opt;
      opt.variance = variance;
      opt.generator = generator(100 + i);
      const auto want = dd::p_sample_step(model, s, x, i, {}, opt);

      const auto eps = model.predict(x, torch::full({64}, double(i), dm::f64()));
      auto g = generator(100 + i);
      const auto z = torch::randn(x.sizes(), g, x.options());
      const double sigma = std::sqrt(variance == dd::Variance::fixedlarge ? at(s.betas, i)
                                                                           : at(s.posterior_variance, i));
      const auto got = ex04::ancestral_step(x, eps, at(s.betas, i), at(s.alpha_bar, i), sigma, z);
      ASSERT_EQ(got.sizes(), x.sizes());
      EXPECT_LT(max_abs_diff(got, want), 1e-10)
          << (variance == dd::Variance::fixedlarge ? "fixedlarge" : "fixedsmall") << ", index " << i;
    }
  }
}

// The last step (t = 1, index 0) adds no noise: with σ_1 = 0 the step is
// p_sample_step's output there, which is x̂_0 = (x_1 − √(1 − ᾱ_1) ε̂)/√ᾱ_1
// (ᾱ_1 = α_1 = 1 − β_1, so Algorithm 2's mean is exactly x̂_0). z is far from
// zero, so noise added regardless of σ_t shows.
// Catches: β_t/(1 − ᾱ_t) without the root (1 instead of √β_1 here), a wrong
// sign, noise added as z or √β_t z whatever σ_t is.
TEST(Exercise04_4, LastStepAddsNoNoise) {
  const auto s = sc::linear_rescaled(50);
  PerturbedMixture model(mixture(), s.mean_std_fn(), dm::Prediction::eps);
  torch::manual_seed(8);
  const auto x = 0.5 * torch::randn({64, 2}, dm::f64());
  const auto z = 3.0 * torch::ones({64, 2}, dm::f64());
  const auto eps = model.predict(x, torch::zeros({64}, dm::f64()));
  const auto got = ex04::ancestral_step(x, eps, at(s.betas, 0), at(s.alpha_bar, 0), 0.0, z);
  ASSERT_EQ(got.sizes(), x.sizes());
  EXPECT_LT(max_abs_diff(got, dd::p_sample_step(model, s, x, 0)), 1e-10);
  EXPECT_LT(max_abs_diff(got, dd::predict_x0_from_eps(s, x, steps(64, 0), eps)), 1e-10);
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
