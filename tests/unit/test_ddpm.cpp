// tests/unit/test_ddpm.cpp — dm/methods/ddpm.hpp (and the schedule as a process) against exact answers.
//
//   * marginal_sample, the forward kernel and the ε → x̂_0 conversion are their
//     formulas; iterating the one-step kernel k times has the moments of
//     q(x_k | x_0) (5 standard errors);
//   * the posterior q(x_{t−1} | x_t, x_0) equals brute-force Gaussian
//     conditioning of the joint of (x_{t−1}, x_t) given x_0 (to round-off);
//   * one ancestral step with the exact ε of a mixture: the x̂_0 + posterior-mean
//     form equals Algorithm 2's form (1e-10), the noise is σ_t z with σ_t² = β_t
//     or β̃_t as chosen, none at the last step, x̂_0 clipping is a flag, and a
//     score model gives the same step as an ε-model;
//   * the full ancestral chain equals Algorithm 2 written out by hand, and driven
//     by the exact ε it reaches the exact mixture (energy distance vs its noise
//     floor, mode weights vs binomial standard errors, moments) for T = 1000
//     and for a 50-step schedule; on Gaussian data the output variance of the
//     chain, discretisation error included, is the closed-form prediction;
//   * the ε-loss is Algorithm 1's formula; for the exact ε it equals the
//     irreducible variance 1 − E‖ε*‖²/D, below any wrong model's; its gradient
//     reaches the parameters of a torch::nn::Linear.
// Time: the model seam and the schedule-as-process speak DDPM's step t = 1…T
// (data at 0); table entry i belongs to step t = i + 1.
// Exact comparisons: both sides are the same float64 expressions of O(1–300)
// numbers (x̂_0 = x/√ᾱ_T amplifies by 1/0.0064 ≈ 157), so 1e-10 is round-off
// with a wide margin. Statistical thresholds are derived next to each test.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "floor_factor.hpp"
#include "dm/base/core.hpp"
#include "dm/base/rng.hpp"
#include "dm/data/metrics.hpp"
#include "dm/data/toy.hpp"
#include "dm/diffusion/model.hpp"
#include "dm/diffusion/param.hpp"
#include "dm/diffusion/process.hpp"
#include "dm/diffusion/schedule.hpp"
#include "dm/diffusion/step.hpp"
#include "dm/methods/ddpm.hpp"
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
// DDPM's step t (1…T) for every row, as the seam takes it (float64).
torch::Tensor steps(int64_t n, int64_t t) { return torch::full({n}, double(t), dm::f64()); }

// Three well-separated 2D components with unequal weights (0.5, 0.3, 0.2), one
// class each: the sampler must get the weights right, not just the shapes.
// Means ≥ 4 apart against stds ≤ 0.6 (≥ 3.4 std to a decision boundary), so a
// point is assigned to the wrong component with probability ≲ 3e-4 — far below
// the binomial SE of a weight (≈ 0.01 at n = 2000).
GaussianMixture mixture() { return dm_test::three_mode_mixture({0, 1, 2}); }

// The exact ε-model of the mixture under the schedule: ε*(x, t) = −√(1−ᾱ_t) ∇log q_t(x).
PerturbedMixture exact_eps(const GaussianMixture& gm, const sc::Schedule& s,
                           dm::Prediction prediction = dm::Prediction::eps) {
  return PerturbedMixture(gm, s, prediction);
}

// One ancestral step t → t − 1 (the old p_sample_step at index t − 1).
dm::StepResult reverse_step(dm::Model& model, const sc::Schedule& s, const torch::Tensor& x,
                            int64_t t, at::Generator& gen, dd::AncestralOptions options = {}) {
  return dd::ancestral(s, options)(model, x, double(t), double(t - 1), {}, gen);
}

// ---------------------------------------------------------------------------
// The forward process.

TEST(Ddpm, MarginalAndKernelAreTheirFormulas) {
  const auto s = sc::linear();
  auto gen = generator(1);
  const auto x0 = dm::randn({4, 3}, gen, dm::f64()), eps = dm::randn({4, 3}, gen, dm::f64());
  const std::vector<int64_t> idx = {0, 7, 500, 999};  // table entries: steps t = idx + 1
  const auto t = torch::tensor(idx, dm::f64()) + 1.0;
  const auto xt = dm::marginal_sample(s, x0, t, eps);
  const auto x0_back = dm::convert(eps, dm::Prediction::eps, dm::Prediction::x0, xt,
                                   dm::per_row(s.a(t), xt), dm::per_row(s.s(t), xt));
  for (int n = 0; n < 4; ++n) {
    const double ab = at(s.alpha_bar, idx[n]), b = at(s.betas, idx[n]);
    const double step = double(idx[n] + 1);
    // x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε
    EXPECT_LT(max_abs_diff(xt[n], std::sqrt(ab) * x0[n] + std::sqrt(1 - ab) * eps[n]), 1e-14);
    // x_t = √(1−β_t) x_{t−1} + √β_t z: the kernel from t − 1 to t, with z from the generator.
    auto g = generator(100 + n), g_ref = generator(100 + n);
    const auto xs = dm::forward_kernel(s, x0[n], step - 1, step, g);
    const auto z = dm::randn_like(x0[n], g_ref);
    // Its coefficients come from the tables through a(t), s(t) (√ᾱ_t/√ᾱ_{t−1} and
    // √((1−ᾱ_t) − (ᾱ_t/ᾱ_{t−1})(1−ᾱ_{t−1}))), equal to √(1−β_t), √β_t up to
    // round-off ε/√β_1 ≈ 1e-14 (see test_seam.cpp).
    EXPECT_LT(max_abs_diff(xs, std::sqrt(1 - b) * x0[n] + std::sqrt(b) * z), 1e-12);
  }
  // x̂_0 inverts the marginal given the true ε (× 1/√ᾱ_T ≈ 157 at the last step).
  EXPECT_LT(max_abs_diff(x0_back, x0), 1e-10);
}

// Iterating x_k = √(1−β_k) x_{k−1} + √β_k z (forward_kernel from k − 1 to k)
// from a fixed x_0 gives q(x_k | x_0) = N(√ᾱ_k x_0, (1−ᾱ_k) I) — the closed form
// marginal_sample draws from. n = 20000 chains (2D); per coordinate
// the sample mean is within 5 SE = 5√(v/n) of √ᾱ_k x_0 and the sample variance
// within 5 SE of 1 − ᾱ_k, SE = sd((x − m)²)/√n (both SEs from the sample;
// two-sided p ≈ 6e-7 per check). At k = 1 the variance is β_1 = 1e-4, so a
// scale error in either term would show up at once.
TEST(Ddpm, IteratedForwardKernelHasTheClosedFormMarginal) {
  const auto s = sc::linear();
  auto gen = generator(2);
  const int64_t n = 20000;
  const auto x0 = tensor({1.5, -0.7}, {1, 2}).expand({n, 2});
  auto x = x0.clone();
  int64_t done = 0;
  for (int64_t k : {1, 10, 100, 1000}) {
    for (; done < k; ++done) x = dm::forward_kernel(s, x, double(done), double(done + 1), gen);
    const double ab = at(s.alpha_bar, k - 1);  // k steps taken: entry k − 1
    const auto c = s.at(double(k));            // the closed form: a = √ᾱ_k, s = √(1−ᾱ_k)
    EXPECT_NEAR(c.a, std::sqrt(ab), 1e-15);
    EXPECT_NEAR(c.s * c.s, 1 - ab, 1e-15);
    const auto m = x.mean(0);
    const auto sq = (x - m).pow(2);
    for (int d = 0; d < 2; ++d) {
      const double var = sq.select(1, d).mean().item<double>();
      EXPECT_NEAR(m[d].item<double>(), std::sqrt(ab) * x0[0][d].item<double>(),
                  5 * std::sqrt(var / n))
          << "mean, k = " << k << ", dim " << d;
      EXPECT_NEAR(var, 1 - ab, 5 * sq.select(1, d).std().item<double>() / std::sqrt(double(n)))
          << "variance, k = " << k << ", dim " << d;
    }
  }
}

// q(x_{t−1} | x_t, x_0) by conditioning a 2D Gaussian (1D data). Given x_0:
//   x_{t−1} ~ N(m, v),  m = √ᾱ_{t−1} x_0,  v = 1 − ᾱ_{t−1}
//   x_t = √α_t x_{t−1} + √β_t z  ⇒  E x_t = √α_t m,  Var x_t = α_t v + β_t,
//                                   Cov(x_{t−1}, x_t) = √α_t v
// and for a jointly Gaussian pair
//   E[x_{t−1} | x_t] = m + Cov/Var x_t · (x_t − E x_t),  Var[x_{t−1} | x_t] = v − Cov²/Var x_t.
// This uses nothing of the closed form (no β̃, no coefficients) and is
// evaluated in long double from the β's. Step t = 1 (entry 0): v = 0, the posterior
// is x_0 itself. Tolerance: the library's tables hold 1 − ᾱ_t in float64, a
// difference of two O(1) numbers, so its relative round-off is ≈ ε/(1 − ᾱ_t)
// — up to 3e-12 at the first steps of the cosine schedule (1 − ᾱ_1 = 4.1e-5);
// hence 1e-13 + 1e-15/(1 − ᾱ_t) on these O(1) values (measured worst ≈ 1e-16/(1 − ᾱ_t)).
// The log-variance: the same relative error of β̃ (≤ 3e-12), so 1e-10.
TEST(Ddpm, PosteriorIsGaussianConditioning) {
  for (const auto& s : {sc::linear(), sc::cosine()}) {
    SCOPED_TRACE(s.label);
    std::vector<long double> alpha_bar_prev(s.T);
    long double prod = 1.0L;
    for (int64_t i = 0; i < s.T; ++i) {
      alpha_bar_prev[i] = prod;
      prod *= 1.0L - at(s.betas, i);
    }
    const std::vector<int64_t> idx = {0, 1, 10, 500, 998, 999};
    for (double x0v : {-1.3, 0.4, 2.0}) {
      for (double xtv : {-0.5, 1.7}) {
        for (const int64_t i : idx) {
          const auto post =
              s.posterior(double(i + 1), double(i));  // q(x_{t−1} | x_t, x_0), t = i + 1
          const double mean = post.c_x0 * x0v + post.c_xt * xtv;
          const long double beta = at(s.betas, i), alpha = 1.0L - beta, ab_prev = alpha_bar_prev[i];
          const long double m = std::sqrt(ab_prev) * x0v, v = 1.0L - ab_prev;
          const long double mean_t = std::sqrt(alpha) * m, var_t = alpha * v + beta,
                            cov = std::sqrt(alpha) * v;
          const auto want_mean = static_cast<double>(m + cov / var_t * (xtv - mean_t));
          const auto want_var = static_cast<double>(v - cov * cov / var_t);
          const double tol = 1e-13 + 1e-15 / static_cast<double>(var_t);  // var_t = 1 − ᾱ_t
          EXPECT_NEAR(mean, want_mean, tol) << "index " << i;
          EXPECT_NEAR(post.variance, want_var, tol) << "index " << i;
          const double want_log =
              i == 0 ? std::log(at(s.posterior_variance, 1)) : std::log(want_var);
          EXPECT_NEAR(post.log_variance, want_log, 1e-10) << "index " << i;
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------
// One reverse step with the exact ε of the mixture.

// Algorithm 2, line 4, written out at step t: (x_t − β_t/√(1−ᾱ_t) ε) / √α_t.
torch::Tensor algorithm2_mean(const sc::Schedule& s, const torch::Tensor& x, int64_t t,
                              const torch::Tensor& eps) {
  const double b = at(s.betas, t - 1), ab = at(s.alpha_bar, t - 1);
  return (x - b / std::sqrt(1 - ab) * eps) / std::sqrt(1 - b);
}

// The x̂_0 + posterior-mean form μ̃_t(x_t, x̂_0) and Algorithm 2's form are the
// same function of ε: substituting x̂_0 = (x_t − √(1−ᾱ_t) ε)/√ᾱ_t into μ̃_t
// gives coefficient of x_t  [β_t + (1−ᾱ_{t−1}) α_t]/(√α_t (1−ᾱ_t)) = 1/√α_t
// and of ε  −β_t/(√α_t √(1−ᾱ_t)). With clipping they differ, by design.
TEST(Ddpm, ReverseMeanFormsAgreeWithoutClipping) {
  const auto s = sc::linear();
  const auto gm = mixture();
  auto model = exact_eps(gm, s);
  auto gen = generator(3);
  const int64_t n = 64;
  for (int64_t t : {1000, 501, 11, 2, 1}) {
    const auto x =
        dm::marginal_sample(s, gm.sample(n, gen), steps(n, t), dm::randn({n, 2}, gen, dm::f64()));
    auto g = generator(0);
    const auto step = reverse_step(model, s, x, t, g);
    const auto eps = model.predict(x, steps(n, t));
    EXPECT_EQ(step.nfe, 1);
    // x̂_0 = (x_t − √(1−ᾱ_t) ε)/√ᾱ_t from the model's ε.
    const double ab = at(s.alpha_bar, t - 1);
    EXPECT_LT(max_abs_diff(step.x0, (x - std::sqrt(1 - ab) * eps) / std::sqrt(ab)), 1e-12)
        << "step " << t;
    EXPECT_LT(max_abs_diff(step.mean, algorithm2_mean(s, x, t, eps)), 1e-10) << "step " << t;
    // Clipped: x̂_0 ∈ [−1, 1] and the mean is the posterior mean at the clipped x̂_0.
    const auto clipped = reverse_step(model, s, x, t, g, {dd::Variance::fixedlarge, true});
    EXPECT_LE(clipped.x0.abs().max().item<double>(), 1.0);
    const auto q = s.posterior(double(t), double(t - 1));
    const auto want = q.c_x0 * step.x0.clamp(-1, 1) + q.c_xt * x;
    EXPECT_LT(max_abs_diff(clipped.mean, want), 1e-12) << "step " << t;
    // The data reach |x_0| ≈ 3.5, so clipping visibly moves the mean where the
    // x̂_0 coefficient β_t√ᾱ_{t−1}/(1−ᾱ_t) is not tiny (0.17 at step 11).
    if (t == 11 || t == 2) {
      EXPECT_GT(max_abs_diff(clipped.mean, step.mean), 0.1) << "step " << t;
    }
  }
}

// x_{t−1} = μ + σ_t z with z = randn(x.sizes(), generator) and σ_t² = β_t
// (fixedlarge) or β̃_t (fixedsmall); at t = 1 no noise is added (and none is
// drawn): the result is μ̃_1 = x̂_0, the same for both variances.
TEST(Ddpm, AncestralStepAddsTheChosenNoise) {
  const auto s = sc::linear();
  const auto gm = mixture();
  auto model = exact_eps(gm, s);
  auto gen = generator(4);
  const int64_t n = 32;
  for (auto variance : {dd::Variance::fixedlarge, dd::Variance::fixedsmall}) {
    for (int64_t t : {1000, 501, 2, 1}) {
      SCOPED_TRACE("step " + std::to_string(t));
      const auto x =
          dm::marginal_sample(s, gm.sample(n, gen), steps(n, t), dm::randn({n, 2}, gen, dm::f64()));
      auto g = generator(77);
      const auto got = reverse_step(model, s, x, t, g, {variance, false});
      const auto eps = model.predict(x, steps(n, t));
      const auto mean = algorithm2_mean(s, x, t, eps);
      const double ab = at(s.alpha_bar, t - 1);
      EXPECT_LT(max_abs_diff(got.x0, (x - std::sqrt(1 - ab) * eps) / std::sqrt(ab)), 1e-12);
      EXPECT_LT(max_abs_diff(got.mean, mean), 1e-10);
      if (t == 1) {
        EXPECT_LT(max_abs_diff(got.x, mean), 1e-10);
        EXPECT_LT(max_abs_diff(got.x, got.x0), 1e-12);
        // Nothing was drawn: the generator is where a fresh one starts.
        auto fresh = generator(77);
        EXPECT_TRUE(torch::equal(dm::randn({3}, g, dm::f64()), dm::randn({3}, fresh, dm::f64())));
        continue;
      }
      auto g_ref = generator(77);
      const auto z = dm::randn(x.sizes(), g_ref, x.options());
      const double sigma2 = variance == dd::Variance::fixedlarge ? at(s.betas, t - 1)
                                                                 : at(s.posterior_variance, t - 1);
      EXPECT_LT(max_abs_diff(got.x, mean + std::sqrt(sigma2) * z), 1e-10);
    }
  }
  auto g = generator(0);
  const auto x = torch::zeros({2, 2}, dm::f64());
  EXPECT_THROW(reverse_step(model, s, x, 1001, g), dm::Error);           // beyond T
  EXPECT_THROW(reverse_step(model, s, x, 0, g), dm::Error);              // below the data end
  EXPECT_THROW(dd::ancestral(s)(model, x, 5.0, 6.0, {}, g), dm::Error);  // not a reverse step
}

// A score model is converted with ε = −√(1−ᾱ_t)·score, so the exact score of
// the perturbed mixture steps exactly like its exact ε.
TEST(Ddpm, ScoreModelStepsLikeTheEpsModel) {
  const auto s = sc::cosine(200);
  const auto gm = mixture();
  auto eps_model = exact_eps(gm, s);
  auto score_model = exact_eps(gm, s, dm::Prediction::score);
  auto gen = generator(5);
  const auto x = dm::randn({16, 2}, gen, dm::f64());
  for (int64_t t : {200, 51, 4}) {
    auto a = generator(9), b = generator(9);
    EXPECT_LT(max_abs_diff(reverse_step(eps_model, s, x, t, a).x,
                           reverse_step(score_model, s, x, t, b).x),
              1e-10)
        << "step " << t;
  }
}

// ---------------------------------------------------------------------------
// The ancestral chain.

// sample_from is Algorithm 2 written out: x_{t−1} = (x_t − β_t/√(1−ᾱ_t) ε)/√α_t
// + √β_t z for t = T … 2, no z at t = 1; callbacks at every step T → T−1, …, 1 → 0.
TEST(Ddpm, SampleIsAlgorithmTwo) {
  const auto s = sc::linear(8, 0.01, 0.3);
  const auto gm = mixture();
  auto model = exact_eps(gm, s);
  auto gen = generator(6);
  const auto x_T = dm::randn({10, 2}, gen, dm::f64());
  std::vector<double> seen, seen_next;
  torch::Tensor last_x0;
  dd::SampleOptions opt;
  opt.run.callback = [&](const dm::StepEvent& e) {
    seen.push_back(e.t);
    seen_next.push_back(e.t_next);
    last_x0 = e.result.x0;
  };
  auto g11 = generator(11);
  const auto got = dd::sample_from(model, s, x_T, g11, opt);
  EXPECT_EQ(seen, (std::vector<double>{8, 7, 6, 5, 4, 3, 2, 1}));
  EXPECT_EQ(seen_next, (std::vector<double>{7, 6, 5, 4, 3, 2, 1, 0}));
  EXPECT_LT(max_abs_diff(got, last_x0), 1e-12);  // the last step returns x̂_0
  EXPECT_FALSE(got.requires_grad());

  auto g = generator(11);
  auto x = x_T;
  for (int64_t t = s.T; t >= 1; --t) {
    const auto eps = model.predict(x, steps(10, t));
    x = algorithm2_mean(s, x, t, eps);
    if (t > 1) x = x + std::sqrt(at(s.betas, t - 1)) * dm::randn({10, 2}, g, dm::f64());
  }
  EXPECT_LT(max_abs_diff(got, x), 1e-10);

  // sample(shape) starts from randn(shape, generator): the same chain; float32 works.
  auto g1 = generator(12), g2 = generator(12);
  const auto start = dm::randn({10, 2}, g2, dm::f64());
  EXPECT_LT(max_abs_diff(dd::sample(model, s, {10, 2}, g1), dd::sample_from(model, s, start, g2)),
            1e-12);
  auto g3 = generator(13);
  const auto x32 = dd::sample(model, s, {4, 2}, g3, {}, torch::kFloat32);
  EXPECT_EQ(x32.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::isfinite(x32).all().item<bool>());
}

// Exact mean and covariance of a mixture: E x = Σ w_k μ_k,
// Cov x = Σ w_k (Σ_k + μ_k μ_kᵀ) − E x E xᵀ.
std::pair<torch::Tensor, torch::Tensor> mixture_moments(const GaussianMixture& gm) {
  const auto w = gm.weights(), mu = gm.means(), cov = gm.covs();
  const auto mean = (w.unsqueeze(1) * mu).sum(0);
  const auto second = (w.view({-1, 1, 1}) * (cov + mu.unsqueeze(2) * mu.unsqueeze(1))).sum(0);
  return {mean, second - mean.unsqueeze(1) * mean.unsqueeze(0)};
}

// max over components of |share_k − w_k| / SE_k, SE_k = √(w_k(1−w_k)/n): the
// binomial z-score of each mode's share (component = most probable one).
double worst_share_z(const GaussianMixture& gm, const torch::Tensor& x) {
  const auto cls = gm.class_posterior(x).argmax(1);
  const double n = double(x.size(0));
  double worst = 0;
  for (int64_t k = 0; k < gm.components(); ++k) {
    const double share = (cls == k).sum().item<double>() / n, w = at(gm.weights(), k);
    worst = std::max(worst, std::abs(share - w) / std::sqrt(w * (1 - w) / n));
  }
  return worst;
}

// Mean within 5 SE (SE² = C_ii/n) and covariance within 5 SE (SE = sd of the
// centred products/√n), as in test_langevin.cpp.
void expect_moments_match(const torch::Tensor& x, const torch::Tensor& mean,
                          const torch::Tensor& cov) {
  const int64_t n = x.size(0), D = x.size(1);
  const auto m = x.mean(0);
  const auto xc = x - m;
  const auto c = xc.t().mm(xc) / static_cast<double>(n - 1);
  for (int64_t i = 0; i < D; ++i) {
    EXPECT_NEAR(m[i].item<double>(), mean[i].item<double>(),
                5 * std::sqrt(c[i][i].item<double>() / n))
        << "mean[" << i << "]";
    for (int64_t j = i; j < D; ++j) {
      const auto prod = xc.select(1, i) * xc.select(1, j);
      EXPECT_NEAR(c[i][j].item<double>(), cov[i][j].item<double>(),
                  5 * prod.std().item<double>() / std::sqrt(static_cast<double>(n)))
          << "cov[" << i << "][" << j << "]";
    }
  }
}

// Energy distance threshold, as derived in test_langevin.cpp: under "same law"
// n·ED is a Gaussian quadratic form whose tail is at most χ²₁-like (Székely &
// Bakirov 2003); for a mixture the random share of each mode dominates it, and
// the floor is a mean of R = 16 repeats, so ED/floor ~ F(1, 16) in the worst
// case: 99th percentile 8.53. (A "2–3×" rule would fail an exact sampler on
// ~10% of seeds.) The sharper checks are the mode shares (5 binomial SE each)
// and the moments (5 SE): a sampler that got the weights wrong by 0.05, or the
// spread by a few percent, fails those first.
const double kFloorFactor = dm_test::floor_factor(16);  // 8.53

struct ChainResult {
  double ed = 0, floor = 0, share_z = 0;
};

// n = 2000 chains through the whole schedule driven by the exact ε of `model_of`,
// compared with a fresh exact sample of the data mixture.
ChainResult run_chain(const GaussianMixture& data, const GaussianMixture& model_of,
                      const sc::Schedule& s, dd::Variance variance, uint64_t seed) {
  auto gen = generator(seed);
  const int64_t n = 2000;
  auto model = exact_eps(model_of, s);
  dd::SampleOptions opt;
  opt.variance = variance;
  const auto x = dd::sample(model, s, {n, 2}, gen, opt);
  ChainResult r;
  r.floor = dm::metrics::noise_floor([&](int64_t m) { return data.sample(m, gen); }, n,
                                     dm::metrics::energy_distance, 16)
                .mean;
  r.ed = dm::metrics::energy_distance(x, data.sample(n, gen));
  r.share_z = worst_share_z(data, x);
  EXPECT_TRUE(torch::isfinite(x).all().item<bool>());
  const auto [mean, cov] = mixture_moments(data);
  expect_moments_match(x, mean, cov);
  return r;
}

// T = 1000, linear β. With the exact ε the reverse mean E[x_{t−1} | x_t] is
// exact (μ̃ is linear in x_0 and x̂_0 = E[x_0 | x_t]); only the Gaussian shape
// and the fixed variance of each reverse kernel are approximations, of order
// β_t ≤ 0.02 — invisible at n = 2000 for either variance choice (the recursion
// of the Gaussian test below gives −1.5% / +0.3% on a component's variance for
// β̃ / β at T = 1000).
// Measured over 10 seeds (floor 2.7e-3 from 64 repeats): ED/floor mean 1.6,
// max 5.8, both choices; moments ≤ 2.7 SE; mode shares ≤ 2.3 SE.
TEST(Ddpm, AncestralSamplingReachesTheMixture) {
  const auto gm = mixture();
  const auto s = sc::linear();
  for (auto [variance, seed] :
       {std::pair{dd::Variance::fixedlarge, 30}, std::pair{dd::Variance::fixedsmall, 31}}) {
    SCOPED_TRACE(variance == dd::Variance::fixedlarge ? "fixedlarge" : "fixedsmall");
    const auto r = run_chain(gm, gm, s, variance, seed);
    EXPECT_LT(r.ed, kFloorFactor * r.floor) << "floor " << r.floor;
    EXPECT_LT(r.share_z, 5.0);
    RecordProperty(
        variance == dd::Variance::fixedlarge ? "ed_over_floor_large" : "ed_over_floor_small",
        std::to_string(r.ed / r.floor));
  }
}

// A 50-step chain: linear_rescaled(50), β from 0.002 to 0.4 (DDPM's endpoints ×
// 1000/T, ᾱ_T = 7.7e-6). The reverse kernels are now far from their small-β
// limit; with σ² = β the chain still reaches the mixture at n = 2000 (each
// component comes out ≈ 7% too wide — see the Gaussian test below — which
// moves the covariance by ≈ 0.4 SE here). Measured over 10 seeds: ED/floor
// mean 1.5, max 3.5; moments ≤ 2.9 SE; shares ≤ 2.1 SE. fixedsmall is not
// asserted here: its components come out ≈ 20% too narrow, and the moments
// reached 4.8 SE in 10 seeds (covariance −0.12 at n = 1e5) — a real bias of
// the 50-step chain, pinned down exactly in the Gaussian test below.
// Can fail: the exact ε of the same mixture with equal weights (1/3 each)
// produces equal mode shares, |0.33 − 0.5|/SE ≈ 15 ≫ 5.
TEST(Ddpm, ShortScheduleReachesTheMixture) {
  const auto gm = mixture();
  const auto s = sc::linear_rescaled(50);
  const auto r = run_chain(gm, gm, s, dd::Variance::fixedlarge, 40);
  EXPECT_LT(r.ed, kFloorFactor * r.floor) << "floor " << r.floor;
  EXPECT_LT(r.share_z, 5.0);
  RecordProperty("ed_over_floor_large", std::to_string(r.ed / r.floor));

  const auto equal =
      GaussianMixture(torch::ones({3}, dm::f64()), gm.means(), gm.covs(), gm.groups());
  auto gen = generator(42);
  auto wrong = exact_eps(equal, s);
  const auto x = dd::sample(wrong, s, {2000, 2}, gen);
  EXPECT_GT(worst_share_z(gm, x), 5.0);
}

// On Gaussian data x_0 ~ N(0, v_0) the exact ε is linear,
//   ε*(x_t) = √(1−ᾱ_t) x_t / v_t,  v_t = ᾱ_t v_0 + 1 − ᾱ_t  (the variance of x_t),
// so each ancestral step is x_{t−1} = a_t x_t + σ_t z with
//   a_t = (1 − β_t/v_t)/√α_t   (Algorithm 2's mean with ε*),
// and the chain's output variance follows the recursion
//   V_T = 1,  V_{t−1} = a_t² V_t + σ_t²  (σ_1 = 0)
// — a closed-form prediction of what the sampler produces, including its
// discretisation error. For v_0 = 0.25 (std 0.5, like a mixture component)
// and the 50-step schedule: σ² = β gives V_0 = 0.2662 (+6.5%), σ² = β̃ gives
// 0.1966 (−21%). n = 40000 chains: the sample variance is within 5 SE of the
// prediction (SE = sd((x − m)²)/√n ≈ 0.0018), and both are > 5 SE from v_0
// itself (9 and 30 SE), so the check sees the difference between the two
// variance choices, and the 1e-3-level size of any error in the step.
TEST(Ddpm, ShortScheduleOutputVarianceIsTheGaussianPrediction) {
  const auto s = sc::linear_rescaled(50);
  const double v0 = 0.25;
  const auto gaussian =
      GaussianMixture(tensor({1.0}, {1}), tensor({0.0}, {1, 1}), tensor({v0}, {1, 1, 1}));
  auto model = exact_eps(gaussian, s);
  const int64_t n = 40000;
  for (auto [variance, seed] :
       {std::pair{dd::Variance::fixedlarge, 50}, std::pair{dd::Variance::fixedsmall, 51}}) {
    SCOPED_TRACE(variance == dd::Variance::fixedlarge ? "fixedlarge" : "fixedsmall");
    long double V = 1.0L;
    for (int64_t i = s.T - 1; i >= 0; --i) {
      const long double ab = at(s.alpha_bar, i), beta = at(s.betas, i);
      const long double vt = ab * v0 + 1.0L - ab;
      const long double a = (1.0L - beta / vt) / std::sqrt(1.0L - beta);
      const long double sigma2 =
          i == 0 ? 0.0L
                 : (variance == dd::Variance::fixedlarge ? beta : at(s.posterior_variance, i));
      V = a * a * V + sigma2;
    }
    auto gen = generator(seed);
    dd::SampleOptions opt;
    opt.variance = variance;
    const auto x = dd::sample(model, s, {n, 1}, gen, opt).squeeze(1);
    const auto sq = (x - x.mean()).pow(2);
    const double var = sq.mean().item<double>(),
                 se = sq.std().item<double>() / std::sqrt(double(n));
    EXPECT_NEAR(var, static_cast<double>(V), 5 * se) << "predicted " << static_cast<double>(V);
    EXPECT_GT(std::abs(static_cast<double>(V) - v0), 5 * se);
    EXPECT_NEAR(x.mean().item<double>(), 0.0, 5 * std::sqrt(var / n));
    RecordProperty(variance == dd::Variance::fixedlarge ? "var_large" : "var_small",
                   std::to_string(var));
  }
}

// ---------------------------------------------------------------------------
// The ε-loss (Algorithm 1).

TEST(Ddpm, LossEpsIsAlgorithmOne) {
  const auto s = sc::linear();
  const auto gm = mixture();
  auto model = exact_eps(gm, s);
  auto gen = generator(7);
  const int64_t n = 256;
  const auto x0 = gm.sample(n, gen);
  // Drawn as documented: t = randint(T, {N}, g) + 1 (steps 1…T), then ε = randn(x0.sizes(), g).
  auto g = generator(21);
  const auto t = torch::randint(s.T, {n}, g, torch::kLong) + 1;
  const auto eps = torch::randn(x0.sizes(), g, dm::f64());
  const auto xt = torch::sqrt(s.alpha_bar.index_select(0, t - 1)).unsqueeze(1) * x0 +
                  torch::sqrt(1 - s.alpha_bar.index_select(0, t - 1)).unsqueeze(1) * eps;
  const double want = (eps - model.predict(xt, t.to(torch::kFloat64))).pow(2).mean().item<double>();
  EXPECT_NEAR(dd::loss_eps_at(model, s, x0, t, eps).item<double>(), want, 1e-12);
  auto g21 = generator(21);
  EXPECT_NEAR(dd::loss_eps(model, s, x0, g21).item<double>(), want, 1e-12);
  // The time the model sees is the step (1…T) as a float tensor.
  dm_test::FunctionModel check_t(
      dm::Prediction::eps,
      [&](const torch::Tensor& xt_, const torch::Tensor& t_, const dm::Condition&) {
        EXPECT_EQ(t_.scalar_type(), torch::kFloat64);
        EXPECT_TRUE(torch::equal(t_, t.to(torch::kFloat64)));
        return torch::zeros_like(xt_);
      });
  dd::loss_eps_at(check_t, s, x0, t, eps);
}

// The exact ε* = E[ε | x_t] does not reach zero loss: by the tower property
// E[ε·ε*] = E‖ε*‖², so E‖ε − ε*‖² = E‖ε‖² − E‖ε*‖² = D − E‖ε*‖² — the
// irreducible variance of ε given x_t. Per row r_n = ‖ε − ε*‖²/D + ‖ε*‖²/D − 1
// has mean 0; the check is |mean r| < 5 SE (SE = sd(r)/√n, p ≈ 6e-7).
// Any other model pays (1/D)E‖ε* − f‖² on top: ε ≡ 0 gives ≈ 1 (5 SE of
// E ε² = 1, SE = sd/√(nD) of the squares), and cε* for c = 0.8, 1.2 gives
// (1 − c)²E‖ε*‖²/D ≈ 0.04·(1 − L*) ≈ 0.03 more than ε* — checked on the same
// draws, > 5 SE of the per-row paired difference (measured: L* ≈ 0.27, gaps
// 0.028 and 0.031).
TEST(Ddpm, LossOfTheExactModelIsTheIrreducibleVariance) {
  const auto s = sc::linear();
  const auto gm = mixture();
  auto model = exact_eps(gm, s);
  auto gen = generator(8);
  const int64_t n = 20000, D = 2;
  const auto x0 = gm.sample(n, gen);
  // The loss of c·ε*, each on the draws of generator(5).
  auto loss_of = [&](double c) {
    dm_test::FunctionModel scaled(
        dm::Prediction::eps,
        [&model, c](const torch::Tensor& xt, const torch::Tensor& t, const dm::Condition& cond) {
          return c * model.predict(xt, t, cond);
        });
    auto g = generator(5);
    return dd::loss_eps(scaled, s, x0, g).item<double>();
  };
  const double loss_exact = loss_of(1.0);
  const double loss_zero = loss_of(0.0);
  const double loss_small = loss_of(0.8);
  const double loss_large = loss_of(1.2);

  auto g = generator(5);
  const auto t = (torch::randint(s.T, {n}, g, torch::kLong) + 1).to(torch::kFloat64);
  const auto eps = torch::randn(x0.sizes(), g, dm::f64());
  const auto eps_star = model.predict(dm::marginal_sample(s, x0, t, eps), t);
  const auto r = ((eps - eps_star).pow(2).sum(1) + eps_star.pow(2).sum(1)) / D - 1.0;
  const double se = r.std().item<double>() / std::sqrt(double(n));
  EXPECT_NEAR(loss_exact - (1.0 - eps_star.pow(2).sum(1).mean().item<double>() / D), 0.0, 5 * se);
  EXPECT_NEAR(loss_exact, (eps - eps_star).pow(2).mean().item<double>(), 1e-12);
  EXPECT_LT(loss_exact, 0.5);  // ε* explains much of ε on these narrow components

  EXPECT_NEAR(loss_zero, 1.0, 5 * eps.pow(2).std().item<double>() / std::sqrt(double(n * D)));
  EXPECT_LT(loss_exact, loss_zero);
  const auto row_loss = [&](double c) { return (eps - c * eps_star).pow(2).sum(1) / D; };
  for (auto [c, loss_c] : {std::pair{0.8, loss_small}, std::pair{1.2, loss_large}}) {
    const auto diff = row_loss(c) - row_loss(1.0);
    EXPECT_GT(loss_c - loss_exact, 5 * diff.std().item<double>() / std::sqrt(double(n)))
        << "c = " << c;
  }
  RecordProperty("loss_exact", std::to_string(loss_exact));
}

// The loss backpropagates into a network: for ε_θ = W u + b with
// u = (x_t, t/T), L = (1/ND) Σ ‖ε − ε_θ‖², so
//   ∂L/∂b_j = −(2/ND) Σ_n (ε − ε_θ)_nj,   ∂L/∂W_jk = −(2/ND) Σ_n (ε − ε_θ)_nj u_nk.
// One small gradient step on the same draws lowers the loss (lr 0.01 is far
// below 2/λ_max of this quadratic, λ_max ≈ 2·E‖u‖²/D ≈ 5).
TEST(Ddpm, LossGradientReachesALinearModel) {
  const auto s = sc::linear();
  const auto gm = mixture();
  torch::manual_seed(9);
  torch::nn::Linear lin(3, 2);
  lin->to(torch::kFloat64);
  dm_test::FunctionModel net(
      dm::Prediction::eps,
      [&](const torch::Tensor& xt, const torch::Tensor& t, const dm::Condition&) {
        return lin(torch::cat({xt, (t / double(s.T)).unsqueeze(1)}, 1));
      });
  const int64_t n = 128, D = 2;
  auto gen = generator(9);
  const auto x0 = gm.sample(n, gen);
  auto g = generator(3);
  const auto t = torch::randint(s.T, {n}, g, torch::kLong) + 1;  // steps 1…T
  const auto eps = torch::randn(x0.sizes(), g, dm::f64());
  auto loss = dd::loss_eps_at(net, s, x0, t, eps);
  loss.backward();

  torch::Tensor resid, u;
  {
    torch::NoGradGuard no_grad;
    const auto tf = t.to(torch::kFloat64);
    u = torch::cat({dm::marginal_sample(s, x0, tf, eps), (tf / double(s.T)).unsqueeze(1)}, 1);
    resid = eps - lin(u);
  }
  const double scale = -2.0 / double(n * D);
  EXPECT_LT(max_abs_diff(lin->bias.grad(), scale * resid.sum(0)), 1e-12);
  EXPECT_LT(max_abs_diff(lin->weight.grad(), scale * resid.t().mm(u)), 1e-12);

  {
    torch::NoGradGuard no_grad;
    for (auto& p : lin->parameters()) p -= 0.01 * p.grad();
  }
  EXPECT_LT(dd::loss_eps_at(net, s, x0, t, eps).item<double>(), loss.item<double>());

  // The random-draw version backpropagates too.
  lin->zero_grad();
  auto g4 = generator(4);
  dd::loss_eps(net, s, x0, g4).backward();
  EXPECT_GT(lin->weight.grad().abs().sum().item<double>(), 0.0);
  EXPECT_TRUE(torch::isfinite(lin->weight.grad()).all().item<bool>());
}

}  // namespace
