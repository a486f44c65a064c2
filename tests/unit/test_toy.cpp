// tests/unit/test_toy.cpp — dm/data/toy.hpp against exact answers.
//
// Gaussian mixtures are the suite's ground truth, so they are checked against
// things that do not depend on the library's own algebra:
//   * densities integrate to 1 (quadrature on a grid),
//   * the score equals autograd's gradient of log_prob,
//   * log densities, responsibilities, class posteriors and the posterior given
//     y = A x + σ_y n equal formulas written out here by hand,
//   * perturbed mixtures equal what Monte Carlo does to samples (moments within
//     standard errors, energy distance within a small factor of its noise floor).
// Statistical checks use fixed seeds; every tolerance is derived in a comment.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "floor_factor.hpp"
#include "dm/base/core.hpp"
#include "dm/base/rng.hpp"
#include "dm/data/metrics.hpp"
#include "dm/data/toy.hpp"
#include "dm/diffusion/process.hpp"
#include "dm/diffusion/schedule.hpp"
#include "test_tensors.hpp"

namespace {

using dm::toy::DoubleWell;
using dm::toy::GaussianMixture;
using dm::toy::PerturbedMixture;
using torch::indexing::Slice;

using dm_test::kPi;
using dm_test::tensor;

using dm_test::generator;

using dm_test::max_abs_diff;

// 1D mixture, unnormalised weights (the constructor must normalise them).
GaussianMixture mixture_1d() {
  return GaussianMixture::isotropic(tensor({1, 2, 3}, {3}), tensor({-2, 0, 3}, {3, 1}),
                                    tensor({0.5, 1.0, 0.3}, {3}));
}

// 2D mixture with full, non-isotropic covariances; eigenvalues in [0.1, 1.4].
GaussianMixture mixture_2d(std::vector<int64_t> groups = {}) {
  return GaussianMixture(tensor({0.5, 0.3, 0.2}, {3}), tensor({-2, 0, 1, 1.5, 2, -1}, {3, 2}),
                         tensor({1.0, 0.6, 0.6, 0.5,    //
                                 0.3, -0.2, -0.2, 0.8,  //
                                 0.6, 0.0, 0.0, 0.1},
                                {3, 2, 2}),
                         std::move(groups));
}

// 3D mixture with full covariances (both positive definite: leading minors > 0).
GaussianMixture mixture_3d() {
  return GaussianMixture(tensor({0.4, 0.6}, {2}), tensor({-1, 0.5, 0, 1, -0.5, 1}, {2, 3}),
                         tensor({1.0, 0.3, 0.2, 0.3, 0.8, -0.1, 0.2, -0.1, 0.5,  //
                                 0.5, -0.2, 0.0, -0.2, 0.6, 0.25, 0.0, 0.25, 0.9},
                                {2, 3, 3}));
}

// log N(x; μ, Σ) for rows x [N, D], written out with torch's generic linear algebra.
torch::Tensor gaussian_log_pdf(const torch::Tensor& x, const torch::Tensor& mu,
                               const torch::Tensor& cov) {
  const auto d = x - mu;
  const auto maha = (d.mm(torch::inverse(cov)) * d).sum(1);
  const double D = static_cast<double>(x.size(1));
  return -0.5 * (maha + torch::logdet(cov) + D * std::log(2 * kPi));
}

// log w_k + log N_k(x) by hand: [N, K].
torch::Tensor hand_component_log_probs(const torch::Tensor& w, const torch::Tensor& mu,
                                       const torch::Tensor& cov, const torch::Tensor& x) {
  std::vector<torch::Tensor> cols;
  for (int64_t k = 0; k < w.size(0); ++k)
    cols.push_back(std::log(w[k].item<double>()) + gaussian_log_pdf(x, mu[k], cov[k]));
  return torch::stack(cols, 1);
}

// The exact mean and covariance of a mixture: E x = Σ w_k μ_k,
// Cov x = Σ w_k (Σ_k + μ_k μ_kᵀ) − E x E xᵀ.
std::pair<torch::Tensor, torch::Tensor> mixture_moments(const GaussianMixture& gm) {
  const auto w = gm.weights(), mu = gm.means(), cov = gm.covs();
  const auto mean = (w.unsqueeze(1) * mu).sum(0);
  const auto second = (w.view({-1, 1, 1}) * (cov + mu.unsqueeze(2) * mu.unsqueeze(1))).sum(0);
  return {mean, second - mean.unsqueeze(1) * mean.unsqueeze(0)};
}

// Sample mean and covariance of x [n, D] agree with (mean, cov) within `k`
// standard errors. SE of mean_i = sqrt(C_ii / n); SE of C_ij = sd of the
// products (x_i − m_i)(x_j − m_j) / sqrt(n) (both estimated from the sample).
void expect_moments_match(const torch::Tensor& x, const torch::Tensor& mean,
                          const torch::Tensor& cov, double k) {
  const int64_t n = x.size(0), D = x.size(1);
  const auto m = x.mean(0);
  const auto xc = x - m;
  const auto c = xc.t().mm(xc) / static_cast<double>(n - 1);
  for (int64_t i = 0; i < D; ++i) {
    const double se = std::sqrt(c[i][i].item<double>() / n);
    EXPECT_NEAR(m[i].item<double>(), mean[i].item<double>(), k * se) << "mean[" << i << "]";
    for (int64_t j = i; j < D; ++j) {
      const auto prod = xc.index({Slice(), i}) * xc.index({Slice(), j});
      const double se_c = prod.std().item<double>() / std::sqrt(static_cast<double>(n));
      EXPECT_NEAR(c[i][j].item<double>(), cov[i][j].item<double>(), k * se_c)
          << "cov[" << i << "][" << j << "]";
    }
  }
}

// A square grid of points [G², 2] with spacing h on [−L, L]².
torch::Tensor grid_2d(double L, double h) {
  const auto g = torch::arange(-L, L + h / 2, h, dm::f64());
  auto mesh = torch::meshgrid({g, g}, "ij");
  return torch::stack({mesh[0].reshape(-1), mesh[1].reshape(-1)}, 1);
}

// Trapezoid rule on a uniform 1D grid.
double trapezoid(const torch::Tensor& f, double h) {
  return h * (f.sum().item<double>() - 0.5 * (f[0].item<double>() + f[-1].item<double>()));
}

// ---------------------------------------------------------------------------
// Densities integrate to one.
//
// Tolerance: for a smooth density decaying to ~0 at the ends, the trapezoid
// rule on a uniform grid is spectrally accurate (Poisson summation): for a
// Gaussian with smallest variance λ the aliasing error is ~exp(−λ(2π/h)²/2),
// i.e. exp(−2π²·0.09/1e-4) for the 1D grid (h = 0.01, λ = 0.09) and
// exp(−0.1·(2π/0.1)²/2) ≈ e^−197 in 2D (h = 0.1, λ_min = 0.1). What is left
// is the tail outside the box: ≥ 7 standard deviations from every mean, < 1e-11.
// So 1e-9 is loose by orders of magnitude, yet a wrong normalising constant
// (log det, 2π power, unnormalised weights) is off by far more.

TEST(ToyGaussianMixture, WeightsAreNormalised) {
  const auto gm = mixture_1d();
  EXPECT_LT(max_abs_diff(gm.weights(), tensor({1.0 / 6, 2.0 / 6, 3.0 / 6}, {3})), 1e-15);
  EXPECT_EQ(gm.dim(), 1);
  EXPECT_EQ(gm.components(), 3);
  EXPECT_EQ(gm.classes(), 1);
}

TEST(ToyGaussianMixture, Density1DIntegratesToOne) {
  const double h = 0.01;
  const auto x = torch::arange(-12.0, 12.0 + h / 2, h, dm::f64()).unsqueeze(1);
  const auto gm = mixture_1d();
  EXPECT_NEAR(trapezoid(gm.log_prob(x).exp(), h), 1.0, 1e-9);
  EXPECT_NEAR(trapezoid(gm.perturb_ve(0.7).log_prob(x).exp(), h), 1.0, 1e-9);
  EXPECT_NEAR(trapezoid(gm.perturb_vp(0.8, 0.6).log_prob(x).exp(), h), 1.0, 1e-9);
}

TEST(ToyGaussianMixture, Density2DIntegratesToOne) {
  const double h = 0.1;
  const auto x = grid_2d(12.0, h);
  const auto gm = mixture_2d();
  // Largest std along any direction: sqrt(1.4 + 0.49) ≈ 1.37 (VE), means within
  // 2.5 of the origin: the box edge is ≥ 6.9 std away (tail mass < 1e-10).
  EXPECT_NEAR(gm.log_prob(x).exp().sum().item<double>() * h * h, 1.0, 1e-9);
  EXPECT_NEAR(gm.perturb_ve(0.7).log_prob(x).exp().sum().item<double>() * h * h, 1.0, 1e-9);
  EXPECT_NEAR(gm.perturb_vp(0.8, 0.6).log_prob(x).exp().sum().item<double>() * h * h, 1.0, 1e-9);
}

// ---------------------------------------------------------------------------
// Log densities, responsibilities and the score against hand formulas / autograd.
// Tolerances: both sides are float64 evaluations of the same closed form in a
// different order; values are O(1–100), so round-off is ~1e-13. 1e-10 leaves room.

TEST(ToyGaussianMixture, LogProbMatchesHandFormula) {
  auto gen = generator(1);
  for (const auto& gm : {mixture_2d(), mixture_3d()}) {
    const auto x = 2.0 * dm::randn({40, gm.dim()}, gen, dm::f64());
    const auto hand = hand_component_log_probs(gm.weights(), gm.means(), gm.covs(), x);
    EXPECT_LT(max_abs_diff(gm.component_log_probs(x), hand), 1e-10);
    EXPECT_LT(max_abs_diff(gm.log_prob(x), torch::logsumexp(hand, 1)), 1e-10);
    const auto resp = gm.responsibilities(x);
    EXPECT_LT(max_abs_diff(resp, torch::softmax(hand, 1)), 1e-12);
    EXPECT_LT(max_abs_diff(resp.sum(1), torch::ones({40}, dm::f64())), 1e-12);
  }
}

void expect_score_is_autograd(const GaussianMixture& gm, const torch::Tensor& x) {
  auto xg = x.clone().requires_grad_(true);
  gm.log_prob(xg).sum().backward();
  ASSERT_TRUE(xg.grad().defined()) << "log_prob is not differentiable by autograd";
  const auto score = gm.score(x);
  ASSERT_EQ(score.sizes(), x.sizes());
  // Scores here are O(1–30); relative round-off ~1e-14.
  EXPECT_LT(max_abs_diff(score, xg.grad()), 1e-10);
}

TEST(ToyGaussianMixture, ScoreEqualsAutogradOfLogProb2D) {
  auto gen = generator(2);
  expect_score_is_autograd(mixture_2d(), 2.0 * dm::randn({64, 2}, gen, dm::f64()));
}

TEST(ToyGaussianMixture, ScoreEqualsAutogradOfLogProb3D) {
  auto gen = generator(3);
  expect_score_is_autograd(mixture_3d(), 2.0 * dm::randn({64, 3}, gen, dm::f64()));
}

TEST(ToyGaussianMixture, ScoreEqualsAutogradFarInTheTails) {
  // Far from every mean the responsibilities underflow unless computed in log
  // space; the score must still be the exact gradient (it is ~linear there).
  const auto gm = mixture_2d();
  expect_score_is_autograd(gm, tensor({30, 0, -25, 10, 0, -40, 15, 15}, {4, 2}));
  EXPECT_TRUE(torch::isfinite(gm.score(tensor({200, -150}, {1, 2}))).all().item<bool>());
}

TEST(ToyGaussianMixture, EigenScoreEqualsTorchScore) {
  auto gen = generator(4);
  for (const auto& gm : {mixture_2d(), mixture_3d()}) {
    const int64_t N = 50, D = gm.dim();
    const auto x = 2.0 * dm::randn({N, D}, gen, dm::f64());
    Eigen::MatrixXd xe(N, D);
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = 0; j < D; ++j) xe(i, j) = x[i][j].item<double>();
    const Eigen::MatrixXd se = gm.score(xe);
    const auto st = gm.score(x);
    ASSERT_EQ(se.rows(), N);
    ASSERT_EQ(se.cols(), D);
    double err = 0;
    for (int64_t i = 0; i < N; ++i)
      for (int64_t j = 0; j < D; ++j)
        err = std::max(err, std::abs(se(i, j) - st[i][j].item<double>()));
    EXPECT_LT(err, 1e-10);
  }
}

// ---------------------------------------------------------------------------
// Perturbation: the components transform exactly as the header says, and the
// result is what happens to samples.

TEST(ToyGaussianMixture, PerturbationTransformsComponentsExactly) {
  const auto gm = mixture_2d();
  const auto I = torch::eye(2, dm::f64());
  const auto ve = gm.perturb_ve(0.7);
  EXPECT_LT(max_abs_diff(ve.weights(), gm.weights()), 1e-15);
  EXPECT_LT(max_abs_diff(ve.means(), gm.means()), 1e-15);
  EXPECT_LT(max_abs_diff(ve.covs(), gm.covs() + 0.49 * I), 1e-14);
  const auto vp = gm.perturb_vp(0.8, 0.6);
  EXPECT_LT(max_abs_diff(vp.weights(), gm.weights()), 1e-15);
  EXPECT_LT(max_abs_diff(vp.means(), 0.8 * gm.means()), 1e-14);
  EXPECT_LT(max_abs_diff(vp.covs(), 0.64 * gm.covs() + 0.36 * I), 1e-14);
}

// Moments: n = 4000 samples; mixture moments are exact, tolerances are 5 standard
// errors (two-sided p ≈ 6e-7 per check under a correct implementation), while a
// missing σ²I (0.49 here) is > 10 standard errors of the covariance (SE ≈ 0.03–0.05).
TEST(ToyGaussianMixture, PerturbVeMomentsMatchMonteCarlo) {
  auto gen = generator(10);
  const auto gm = mixture_2d();
  const double sigma = 0.7;
  const auto x = gm.sample(4000, gen) + sigma * dm::randn({4000, 2}, gen, dm::f64());
  const auto [mean, cov] = mixture_moments(gm.perturb_ve(sigma));
  expect_moments_match(x, mean, cov, 5.0);
}

TEST(ToyGaussianMixture, PerturbVpMomentsMatchMonteCarlo) {
  auto gen = generator(11);
  const auto gm = mixture_2d();
  const double a = 0.8, s = 0.6;
  const auto x = a * gm.sample(4000, gen) + s * dm::randn({4000, 2}, gen, dm::f64());
  const auto [mean, cov] = mixture_moments(gm.perturb_vp(a, s));
  expect_moments_match(x, mean, cov, 5.0);
}

// Energy distance between an MC-perturbed sample and an exact sample of the
// perturbed mixture (n = 1000 each), against the noise floor: the same statistic
// between two independent exact samples, mean of R = 16 repeats.
//
// Threshold, kFloorFactor = 8.5: under "same law", n·ED is a quadratic form
// Σ λ_j Z_j² in Gaussians (V-statistic), and by Székely & Bakirov (2003)
// P(Q ≥ x·E Q) ≤ P(χ²₁ ≥ x) for x ≳ 1.5 — the single-term case is the heaviest
// tail. Mixtures come close to it (the random share of each mode dominates:
// floor sd/mean ≈ 0.5–0.8 for these perturbed mixtures, 1.2 for two far-apart
// modes, √2 for χ²₁), and the floor's mean is itself a 16-sample average, so in
// the worst case ED / floor.mean ~ F(1, 16), whose 99th percentile is 8.53. A
// "3×" rule would fail up to ~10% of seeds (P(F(1,16) > 3) ≈ 0.10; in 60
// exact-vs-exact repeats the max was 3.5–5× the mean).
// Can fail: the same threshold rejects a wrong noise level. Measured expected
// ratios (10 repeats each): VE with 3σ instead of σ: ≈ 57×; VP leaving the
// data unperturbed ((a, s) = (1, 0) instead of (0.6, 0.8)): ≈ 33×.
constexpr int kFloorRepeats = 16;
const double kFloorFactor = dm_test::floor_factor(kFloorRepeats);  // 8.53

TEST(ToyGaussianMixture, PerturbVeMatchesMonteCarloInEnergyDistance) {
  auto gen = generator(12);
  const auto gm = mixture_2d();
  const int64_t n = 1000;
  const double sigma = 1.0;
  const auto exact = gm.perturb_ve(sigma);
  const auto floor = dm::metrics::noise_floor([&](int64_t m) { return exact.sample(m, gen); }, n,
                                              dm::metrics::energy_distance, kFloorRepeats);
  ASSERT_GT(floor.mean, 0.0);
  const auto mc = gm.sample(n, gen) + sigma * dm::randn({n, 2}, gen, dm::f64());
  const double ed = dm::metrics::energy_distance(mc, exact.sample(n, gen));
  EXPECT_LT(ed, kFloorFactor * floor.mean) << "floor " << floor.mean << " ± " << floor.std;
  // Wrong σ: the MC sample against the mixture perturbed with 3σ.
  const double ed_wrong = dm::metrics::energy_distance(mc, gm.perturb_ve(3 * sigma).sample(n, gen));
  EXPECT_GT(ed_wrong, kFloorFactor * floor.mean) << "floor " << floor.mean;
}

TEST(ToyGaussianMixture, PerturbVpMatchesMonteCarloInEnergyDistance) {
  auto gen = generator(13);
  const auto gm = mixture_2d();
  const int64_t n = 1000;
  const double a = 0.6, s = 0.8;
  const auto exact = gm.perturb_vp(a, s);
  const auto floor = dm::metrics::noise_floor([&](int64_t m) { return exact.sample(m, gen); }, n,
                                              dm::metrics::energy_distance, kFloorRepeats);
  ASSERT_GT(floor.mean, 0.0);
  const auto mc = a * gm.sample(n, gen) + s * dm::randn({n, 2}, gen, dm::f64());
  const double ed = dm::metrics::energy_distance(mc, exact.sample(n, gen));
  EXPECT_LT(ed, kFloorFactor * floor.mean) << "floor " << floor.mean << " ± " << floor.std;
  // Wrong: the data left unperturbed, (a, s) = (1, 0).
  const double ed_wrong = dm::metrics::energy_distance(mc, gm.perturb_vp(1.0, 0.0).sample(n, gen));
  EXPECT_GT(ed_wrong, kFloorFactor * floor.mean) << "floor " << floor.mean;
}

// ---------------------------------------------------------------------------
// Sampling: component frequencies and per-component means.

TEST(ToyGaussianMixture, SampleFrequenciesMatchWeights) {
  auto gen = generator(20);
  const auto gm = mixture_2d();
  const int64_t n = 20000;
  torch::Tensor comp;
  const auto x = gm.sample(n, gen, &comp);
  ASSERT_EQ(x.sizes(), (std::vector<int64_t>{n, 2}));
  ASSERT_EQ(x.scalar_type(), torch::kFloat64);
  ASSERT_TRUE(comp.defined());
  ASSERT_EQ(comp.numel(), n);
  for (int64_t k = 0; k < gm.components(); ++k) {
    const auto mask = comp.reshape(-1) == k;
    const int64_t nk = mask.sum().item<int64_t>();
    const double w = gm.weights()[k].item<double>();
    // Binomial: SE of the frequency = sqrt(w(1−w)/n) (≈ 0.0035 for w = 0.5);
    // 4.5 SE: two-sided p ≈ 7e-6 per component.
    EXPECT_NEAR(static_cast<double>(nk) / n, w, 4.5 * std::sqrt(w * (1 - w) / n)) << "k=" << k;
    // Each sample's reported component is the one it came from: its mean is μ_k
    // within 5 SE (SE = sqrt(Σ_k,ii / n_k)); components are ≥ 3 apart.
    const auto xk = x.index({mask});
    for (int64_t i = 0; i < 2; ++i) {
      const double se = std::sqrt(gm.covs()[k][i][i].item<double>() / nk);
      EXPECT_NEAR(xk.index({Slice(), i}).mean().item<double>(), gm.means()[k][i].item<double>(),
                  5 * se);
    }
  }
}

TEST(ToyGaussianMixture, SampleMomentsMatchMixtureMoments) {
  auto gen = generator(21);
  const auto gm = mixture_3d();
  const auto [mean, cov] = mixture_moments(gm);
  expect_moments_match(gm.sample(4000, gen), mean, cov, 5.0);  // 5 SE, see expect_moments_match
}

// ---------------------------------------------------------------------------
// Classes.

TEST(ToyGaussianMixture, ClassPosteriorIsBayesRule) {
  // Component 0 is class 0; components 1 and 2 are class 1.
  const auto gm = mixture_2d({0, 1, 1});
  EXPECT_EQ(gm.classes(), 2);
  const auto x = tensor({0, 0, -2, 0.5, 1.5, 1, 3, -2, -0.5, 0.7}, {5, 2});
  const auto post = gm.class_posterior(x);
  ASSERT_EQ(post.sizes(), (std::vector<int64_t>{5, 2}));
  // Bayes by hand: p(c|x) = Σ_{k∈c} w_k N_k(x) / Σ_k w_k N_k(x), with the
  // Gaussian densities written out for 2×2 covariances.
  const double w[3] = {0.5, 0.3, 0.2};
  const double mu[3][2] = {{-2, 0}, {1, 1.5}, {2, -1}};
  const double S[3][3] = {{1.0, 0.6, 0.5}, {0.3, -0.2, 0.8}, {0.6, 0.0, 0.1}};  // (s11, s12, s22)
  for (int64_t i = 0; i < 5; ++i) {
    const double x0 = x[i][0].item<double>(), x1 = x[i][1].item<double>();
    double joint[3];
    for (int k = 0; k < 3; ++k) {
      const double det = S[k][0] * S[k][2] - S[k][1] * S[k][1];
      const double d0 = x0 - mu[k][0], d1 = x1 - mu[k][1];
      const double maha = (S[k][2] * d0 * d0 - 2 * S[k][1] * d0 * d1 + S[k][0] * d1 * d1) / det;
      joint[k] = w[k] * std::exp(-0.5 * maha) / (2 * kPi * std::sqrt(det));
    }
    const double total = joint[0] + joint[1] + joint[2];
    EXPECT_NEAR(post[i][0].item<double>(), joint[0] / total, 1e-12) << "point " << i;
    EXPECT_NEAR(post[i][1].item<double>(), (joint[1] + joint[2]) / total, 1e-12) << "point " << i;
  }
  auto gen = generator(30);
  const auto xr = 3.0 * dm::randn({100, 2}, gen, dm::f64());
  EXPECT_LT(max_abs_diff(gm.class_posterior(xr).sum(1), torch::ones({100}, dm::f64())), 1e-12);
}

TEST(ToyGaussianMixture, ConditionalKeepsTheClassComponents) {
  const auto gm = mixture_2d({0, 1, 1});
  const auto c0 = gm.conditional(0);
  ASSERT_EQ(c0.components(), 1);
  EXPECT_NEAR(c0.weights()[0].item<double>(), 1.0, 1e-15);
  EXPECT_LT(max_abs_diff(c0.means(), gm.means().index({Slice(0, 1)})), 1e-15);
  EXPECT_LT(max_abs_diff(c0.covs(), gm.covs().index({Slice(0, 1)})), 1e-15);
  const auto c1 = gm.conditional(1);
  ASSERT_EQ(c1.components(), 2);
  EXPECT_LT(max_abs_diff(c1.weights(), tensor({0.6, 0.4}, {2})), 1e-15);  // 0.3, 0.2 renormalised
  EXPECT_LT(max_abs_diff(c1.means(), gm.means().index({Slice(1, 3)})), 1e-15);
  EXPECT_LT(max_abs_diff(c1.covs(), gm.covs().index({Slice(1, 3)})), 1e-15);
}

TEST(ToyGaussianMixture, PredictWithLabelsIsTheClassConditionalScore) {
  auto gm = mixture_2d({0, 1, 1});
  EXPECT_EQ(gm.prediction(), dm::Prediction::score);
  auto gen = generator(31);
  const auto x = 2.0 * dm::randn({6, 2}, gen, dm::f64());
  const auto t = torch::zeros({6}, dm::f64());
  const auto labels = torch::tensor({0, 1, -1, 1, 0, -1}, torch::kLong);
  const auto out = gm.predict(x, t, labels);
  ASSERT_EQ(out.sizes(), x.sizes());
  const auto s0 = gm.conditional(0).score(x), s1 = gm.conditional(1).score(x), s = gm.score(x);
  for (int64_t i = 0; i < 6; ++i) {
    const int64_t l = labels[i].item<int64_t>();
    const auto& want = l == 0 ? s0 : (l == 1 ? s1 : s);
    EXPECT_LT(max_abs_diff(out[i], want[i]), 1e-10) << "row " << i << " label " << l;
  }
  // Without labels: the unconditional score.
  EXPECT_LT(max_abs_diff(gm.predict(x, t), s), 1e-12);
}

// ---------------------------------------------------------------------------
// Posterior given y = A x + σ_y n.

TEST(ToyGaussianMixture, PosteriorOfOneGaussianIsTheClosedForm) {
  // A = I, one component: Σ_post = (Σ⁻¹ + I/σ_y²)⁻¹, μ_post = Σ_post (Σ⁻¹ μ + y/σ_y²).
  const auto mu = tensor({0.5, -1.0}, {1, 2});
  const auto cov = tensor({1.0, 0.4, 0.4, 0.6}, {1, 2, 2});
  const GaussianMixture gm(tensor({1.0}, {1}), mu, cov);
  const auto y = tensor({1.2, 0.3}, {2});
  const double sy = 0.5;
  const auto post = gm.posterior(torch::eye(2, dm::f64()), y, sy);
  ASSERT_EQ(post.components(), 1);
  const auto P = torch::inverse(cov[0]);
  const auto cov_post = torch::inverse(P + torch::eye(2, dm::f64()) / (sy * sy));
  const auto mu_post = cov_post.mv(P.mv(mu[0]) + y / (sy * sy));
  EXPECT_NEAR(post.weights()[0].item<double>(), 1.0, 1e-14);
  EXPECT_LT(max_abs_diff(post.means()[0], mu_post), 1e-12);
  EXPECT_LT(max_abs_diff(post.covs()[0], cov_post), 1e-12);
}

TEST(ToyGaussianMixture, PosteriorDensityIsBayesRule) {
  // log p(x | y) = log p(x) + log N(y; A x, σ_y² I) − log p(y), with
  // p(y) = Σ_k w_k N(y; A μ_k, A Σ_k Aᵀ + σ_y² I): exact, order-independent.
  const auto gm = mixture_2d();
  const auto A = tensor({1.0, 0.5}, {1, 2});
  const auto y = tensor({0.7}, {1});
  const double sy = 0.4;
  const auto post = gm.posterior(A, y, sy);
  auto gen = generator(40);
  const auto x = 2.0 * dm::randn({50, 2}, gen, dm::f64());
  const auto log_prior =
      torch::logsumexp(hand_component_log_probs(gm.weights(), gm.means(), gm.covs(), x), 1);
  const auto Ax = x.mm(A.t());  // [50, 1]
  const auto log_lik =
      -0.5 * (Ax - y).pow(2).sum(1) / (sy * sy) - 0.5 * std::log(2 * kPi * sy * sy);
  std::vector<torch::Tensor> terms;
  for (int64_t k = 0; k < 3; ++k) {
    const auto m = A.mm(gm.means()[k].unsqueeze(1)).reshape({1, 1});
    const auto c = A.mm(gm.covs()[k]).mm(A.t()) + sy * sy;
    terms.push_back(std::log(gm.weights()[k].item<double>()) +
                    gaussian_log_pdf(y.view({1, 1}), m, c));
  }
  const double log_py = torch::logsumexp(torch::cat(terms), 0).item<double>();
  EXPECT_LT(max_abs_diff(post.log_prob(x), log_prior + log_lik - log_py), 1e-10);
}

TEST(ToyGaussianMixture, PosteriorMomentsMatchImportanceSampling) {
  // Self-normalised importance sampling: prior samples x_i weighted by
  // w_i ∝ N(y; A x_i, σ_y²). Delta-method SE of Σ w̄_i f_i is
  // sqrt(Σ w̄_i² (f_i − f̂)²); tolerance 5 SE.
  auto gen = generator(41);
  const auto gm = mixture_2d();
  const auto A = tensor({1.0, 0.5}, {1, 2});
  const auto y = tensor({0.7}, {1});
  const double sy = 0.4;
  const auto [mean, cov] = mixture_moments(gm.posterior(A, y, sy));
  const int64_t n = 40000;
  const auto x = gm.sample(n, gen);
  const auto logw = -0.5 * (x.mm(A.t()) - y).pow(2).sum(1) / (sy * sy);
  const auto w = torch::softmax(logw, 0);
  const double ess = 1.0 / w.pow(2).sum().item<double>();
  ASSERT_GT(ess, 2000.0) << "importance sampler degenerate; choose another y";
  const auto m = (w.unsqueeze(1) * x).sum(0);
  const auto xc = x - m;
  for (int64_t i = 0; i < 2; ++i) {
    const auto f = xc.index({Slice(), i});
    const double se = std::sqrt((w.pow(2) * f.pow(2)).sum().item<double>());
    EXPECT_NEAR(m[i].item<double>(), mean[i].item<double>(), 5 * se) << "mean[" << i << "]";
    for (int64_t j = i; j < 2; ++j) {
      const auto g = f * xc.index({Slice(), j});
      const double c = (w * g).sum().item<double>();
      const double se_c = std::sqrt((w.pow(2) * (g - c).pow(2)).sum().item<double>());
      EXPECT_NEAR(c, cov[i][j].item<double>(), 5 * se_c) << "cov[" << i << "][" << j << "]";
    }
  }
}

// ---------------------------------------------------------------------------
// PerturbedMixture: rows with different t, VE and VP, score, ε and x̂_0.

// ᾱ(t) = e^{−2t}: a = e^{−t}, s = sqrt(1 − e^{−2t}).
dm::FunctionProcess vp_process() {
  return dm::FunctionProcess("VP e^{-t}", 0.0, 5.0, [](double t) {
    return dm::Coefficients{std::exp(-t), std::sqrt(1 - std::exp(-2 * t))};
  });
}

TEST(ToyPerturbedMixture, VeScoreRowsEqualPerturbVe) {
  PerturbedMixture model(mixture_2d(), dm::SigmaVE(10.0));
  EXPECT_EQ(model.prediction(), dm::Prediction::score);
  auto gen = generator(50);
  const auto x = 2.0 * dm::randn({5, 2}, gen, dm::f64());
  const auto t = tensor({0.1, 0.5, 1.0, 2.0, 0.3}, {5});
  const auto out = model.predict(x, t);
  ASSERT_EQ(out.sizes(), x.sizes());
  const auto gm = mixture_2d();
  for (int64_t i = 0; i < 5; ++i) {
    const double ti = t[i].item<double>();
    const auto want = gm.perturb_ve(ti).score(x.index({Slice(i, i + 1)}));
    EXPECT_LT(max_abs_diff(out.index({Slice(i, i + 1)}), want), 1e-12) << "row " << i;
  }
  const auto at = model.at(0.5), ref = gm.perturb_ve(0.5);
  EXPECT_LT(max_abs_diff(at.means(), ref.means()), 1e-14);
  EXPECT_LT(max_abs_diff(at.covs(), ref.covs()), 1e-14);
  EXPECT_LT(max_abs_diff(at.weights(), ref.weights()), 1e-14);
}

TEST(ToyPerturbedMixture, VpScoreEpsAndX0RowsEqualPerturbVp) {
  const auto vp = vp_process();
  PerturbedMixture score_model(mixture_2d(), vp);
  PerturbedMixture eps_model(mixture_2d(), vp, dm::Prediction::eps);
  PerturbedMixture x0_model(mixture_2d(), vp, dm::Prediction::x0);
  EXPECT_EQ(eps_model.prediction(), dm::Prediction::eps);
  EXPECT_EQ(x0_model.prediction(), dm::Prediction::x0);
  auto gen = generator(51);
  const auto x = 2.0 * dm::randn({5, 2}, gen, dm::f64());
  const auto t = tensor({0.05, 0.4, 1.0, 3.0, 0.2}, {5});
  const auto score = score_model.predict(x, t);
  const auto eps = eps_model.predict(x, t);
  const auto x0 = x0_model.predict(x, t);
  const auto gm = mixture_2d();
  for (int64_t i = 0; i < 5; ++i) {
    const auto c = vp.at(t[i].item<double>());
    const double a = c.a, s = c.s;
    const auto xi = x.index({Slice(i, i + 1)});
    const auto want = gm.perturb_vp(a, s).score(xi);
    EXPECT_LT(max_abs_diff(score.index({Slice(i, i + 1)}), want), 1e-12) << "row " << i;
    // ε = −s · score
    EXPECT_LT(max_abs_diff(eps.index({Slice(i, i + 1)}), -s * want), 1e-12) << "row " << i;
    // x̂_0 = (x + s² · score)/a (Tweedie); a ≥ e^{−3}, so 1e-12 · 20.
    EXPECT_LT(max_abs_diff(x0.index({Slice(i, i + 1)}), (xi + s * s * want) / a), 2e-11)
        << "row " << i;
  }
  // The same model through a shared process pointer.
  PerturbedMixture shared(mixture_2d(), std::make_shared<const dm::FunctionProcess>(vp),
                          dm::Prediction::eps);
  EXPECT_LT(max_abs_diff(shared.predict(x, t), eps), 1e-15);
  EXPECT_THROW(PerturbedMixture(mixture_2d(), std::shared_ptr<const dm::Process>()), dm::Error);
}

TEST(ToyPerturbedMixture, LabelsGiveTheClassConditionalPerturbedScore) {
  // Perturbation acts per component, so conditioning and perturbing commute:
  // the class-c score of p_t is the score of conditional(c) perturbed.
  const auto vp = vp_process();
  const auto gm = mixture_2d({0, 1, 1});
  PerturbedMixture model(gm, vp);
  auto gen = generator(52);
  const auto x = 2.0 * dm::randn({4, 2}, gen, dm::f64());
  const auto t = tensor({0.1, 0.5, 1.0, 0.3}, {4});
  const auto labels = torch::tensor({0, 1, -1, 1}, torch::kLong);
  const auto out = model.predict(x, t, labels);
  for (int64_t i = 0; i < 4; ++i) {
    const auto c = vp.at(t[i].item<double>());
    const double a = c.a, s = c.s;
    const int64_t l = labels[i].item<int64_t>();
    const auto base = l < 0 ? gm : gm.conditional(l);
    const auto want = base.perturb_vp(a, s).score(x.index({Slice(i, i + 1)}));
    EXPECT_LT(max_abs_diff(out.index({Slice(i, i + 1)}), want), 1e-12) << "row " << i;
  }
}

// ---------------------------------------------------------------------------
// ring_mixture and the sample-only toys.

TEST(ToyRingMixture, VerticesOfARegularPolygon) {
  const int64_t K = 5;
  const auto gm = dm::toy::ring_mixture(K, 2.0, 0.3);
  ASSERT_EQ(gm.components(), K);
  ASSERT_EQ(gm.dim(), 2);
  EXPECT_EQ(gm.classes(), K);
  EXPECT_LT(max_abs_diff(gm.weights(), torch::full({K}, 1.0 / K, dm::f64())), 1e-15);
  EXPECT_LT(max_abs_diff(gm.means().norm(2, 1), torch::full({K}, 2.0, dm::f64())), 1e-12);
  EXPECT_LT(max_abs_diff(gm.covs(), 0.09 * torch::eye(2, dm::f64()).expand({K, 2, 2})), 1e-15);
  for (int64_t k = 0; k < K; ++k) EXPECT_EQ(gm.groups()[k], k);
  // Neighbouring vertices are 2π/K apart: chord 2R sin(π/K).
  const auto m = gm.means();
  const auto chord = (m - m.roll(1, 0)).norm(2, 1);
  EXPECT_LT(max_abs_diff(chord, torch::full({K}, 2 * 2.0 * std::sin(kPi / K), dm::f64())), 1e-12);
}

TEST(ToyDatasets, ShapesAndFiniteness) {
  auto gen = generator(60);
  for (const auto& x : {dm::toy::moons(300, gen), dm::toy::swiss_roll(300, gen),
                        dm::toy::rings(300, gen), dm::toy::checkerboard(300, gen)}) {
    ASSERT_EQ(x.sizes(), (std::vector<int64_t>{300, 2}));
    EXPECT_EQ(x.scalar_type(), torch::kFloat64);
    EXPECT_TRUE(torch::isfinite(x).all().item<bool>());
    EXPECT_GT(x.std(0).min().item<double>(), 0.0);
  }
}

// Noise-free rings lie on `count` concentric circles with radii r, 2r, …, count·r.
TEST(ToyDatasets, RingsWithoutNoiseLieOnEquallySpacedCircles) {
  auto gen = generator(61);
  const auto x = dm::toy::rings(600, gen, 3, 0.0);
  const auto r = x.norm(2, 1);
  const double r1 = r.min().item<double>();
  ASSERT_GT(r1, 0.0);
  const auto k = (r / r1).round();
  EXPECT_LT(max_abs_diff(r, k * r1), 1e-12);
  EXPECT_EQ(k.max().item<double>(), 3.0);
}

// Checkerboard: uniform on the "black" squares of a squares×squares board on
// [−2, 2]² — cell (i, j) (column i = ⌊(x+2)/c⌋, row j = ⌊(y+2)/c⌋, c = 4/squares) with
// i + j even, each with probability 1/#black. Frequencies within 4.5 binomial SE.
void expect_checkerboard(int64_t squares) {
  auto gen = generator(62);
  const int64_t n = 12000;
  const auto x = dm::toy::checkerboard(n, gen, squares);
  ASSERT_EQ(x.sizes(), (std::vector<int64_t>{n, 2}));
  EXPECT_GE(x.min().item<double>(), -2.0);
  EXPECT_LE(x.max().item<double>(), 2.0);
  const double c = 4.0 / static_cast<double>(squares);
  const auto cell =
      ((x + 2.0) / c).floor().clamp(0, static_cast<double>(squares - 1)).to(torch::kLong);
  const auto i = cell.select(1, 0), j = cell.select(1, 1);
  EXPECT_EQ(((i + j).remainder(2) != 0).sum().item<int64_t>(), 0) << "samples on white squares";
  const int64_t black = (squares * squares + 1) / 2;
  const double p = 1.0 / static_cast<double>(black);
  const double se = std::sqrt(p * (1 - p) / n);
  for (int64_t a = 0; a < squares; ++a)
    for (int64_t b = (a % 2); b < squares; b += 2) {
      const double f = ((i == a) & (j == b)).sum().item<double>() / n;
      EXPECT_NEAR(f, p, 4.5 * se) << "square (" << a << ", " << b << ") of " << squares;
    }
}

TEST(ToyDatasets, CheckerboardIsUniformOnBlackSquares) { expect_checkerboard(4); }
TEST(ToyDatasets, CheckerboardOddBoardIsUniformOnBlackSquares) { expect_checkerboard(3); }

// ---------------------------------------------------------------------------
// The double well p_τ(x) ∝ exp(V(x)/τ), V(x) = −x⁴ + 4x².

TEST(ToyDoubleWell, PotentialAndGradientExactValues) {
  const auto x = tensor({0, 1, std::sqrt(2.0), 2, -1}, {5, 1});
  EXPECT_LT(max_abs_diff(DoubleWell::potential(x), tensor({0, 3, 4, 0, 3}, {5, 1})), 1e-12);
  EXPECT_LT(max_abs_diff(DoubleWell::potential_grad(x), tensor({0, 4, 0, -16, -4}, {5, 1})), 1e-12);
}

TEST(ToyDoubleWell, ScoreEqualsAutogradOfLogProb) {
  for (double tau : {1.0, 5.0}) {
    const DoubleWell dw(tau);
    const auto x = torch::linspace(-2.5, 2.5, 41, dm::f64()).unsqueeze(1);
    auto xg = x.clone().requires_grad_(true);
    dw.log_prob(xg).sum().backward();
    ASSERT_TRUE(xg.grad().defined());
    const auto score = dw.score(x);
    EXPECT_LT(max_abs_diff(score.reshape(-1), xg.grad().reshape(-1)), 1e-10) << "tau " << tau;
    EXPECT_LT(max_abs_diff(score, DoubleWell::potential_grad(x) / tau), 1e-12) << "tau " << tau;
  }
}

// exp(log_prob) integrates to 1 and log Z_τ = log ∫ exp(V/τ): trapezoid on
// [−5, 5] with h = 1e-3; the density is entire and ~e^{−400/τ} at the ends, so
// the rule is spectrally accurate (error ≪ 1e-12). The library's log Z is itself a
// quadrature; 1e-8 is far below any formula error (e.g. a missing τ).
TEST(ToyDoubleWell, DensityIntegratesToOne) {
  const double h = 1e-3;
  const auto x = torch::arange(-5.0, 5.0 + h / 2, h, dm::f64()).unsqueeze(1);
  for (double tau : {1.0, 5.0}) {
    const DoubleWell dw(tau);
    EXPECT_DOUBLE_EQ(dw.tau(), tau);
    EXPECT_NEAR(trapezoid(dw.log_prob(x).exp().reshape(-1), h), 1.0, 1e-8) << "tau " << tau;
    const double log_z = std::log(trapezoid((DoubleWell::potential(x) / tau).exp().reshape(-1), h));
    EXPECT_NEAR(dw.log_normalizer(), log_z, 1e-8) << "tau " << tau;
  }
}

// The CDF goes 0 → 1, is symmetric (F(−x) = 1 − F(x), F(0) = ½) and equals the
// running integral of the density. Our running integral is the cumulative
// trapezoid with h = 1e-3: error ≤ h²/12 · ∫|p''| ≈ 1e-7·(∫|p''| ≲ 30) ≈ 3e-6
// at τ = 1. The library's CDF is a quadrature too (a grid, interpolated); we
// allow 1e-5 — still ~1000× below an error of one grid cell of a coarse grid or
// a wrong τ.
TEST(ToyDoubleWell, CdfIsTheRunningIntegral) {
  const double h = 1e-3;
  const auto x = torch::arange(-5.0, 5.0 + h / 2, h, dm::f64()).unsqueeze(1);
  for (double tau : {1.0, 5.0}) {
    const DoubleWell dw(tau);
    const auto p = dw.log_prob(x).exp().reshape(-1);
    const auto running =
        torch::cat({torch::zeros({1}, dm::f64()),
                    torch::cumsum(0.5 * h * (p.slice(0, 1) + p.slice(0, 0, -1)), 0)});
    const auto F = dw.cdf(x).reshape(-1);
    EXPECT_NEAR(F[0].item<double>(), 0.0, 1e-10) << "tau " << tau;
    EXPECT_NEAR(F[-1].item<double>(), 1.0, 1e-10) << "tau " << tau;
    EXPECT_GE((F.slice(0, 1) - F.slice(0, 0, -1)).min().item<double>(), 0.0) << "not monotone";
    EXPECT_LT(max_abs_diff(F, running), 1e-5) << "tau " << tau;
    EXPECT_NEAR(dw.cdf(tensor({0.0}, {1, 1})).item<double>(), 0.5, 1e-6) << "tau " << tau;
    EXPECT_LT(max_abs_diff(F + F.flip(0), torch::ones_like(F)), 1e-5) << "tau " << tau;
  }
}

// Exact samples: one-sample KS against the exact CDF. Under H0, √n·D follows
// Kolmogorov's law: P(√n D > 1.95) ≈ 0.001, so the threshold is 1.95/√n. Against
// the other temperature's CDF, |D − sup|F₁ − F₅|| ≤ sup|F_n − F₁| < 1.95/√n (same
// bound, triangle inequality), where sup|F₁ − F₅| is computed from the CDFs.
TEST(ToyDoubleWell, SamplesPassKolmogorovSmirnov) {
  auto gen = generator(70);
  const int64_t n = 4000;
  const double crit = 1.95 / std::sqrt(static_cast<double>(n));
  const DoubleWell dw1(1.0), dw5(5.0);
  const auto x1 = dw1.sample(n, gen);
  ASSERT_EQ(x1.sizes(), (std::vector<int64_t>{n, 1}));
  auto cdf1 = [&](const torch::Tensor& v) {
    return dw1.cdf(v.reshape({-1, 1})).reshape(v.sizes());
  };
  auto cdf5 = [&](const torch::Tensor& v) {
    return dw5.cdf(v.reshape({-1, 1})).reshape(v.sizes());
  };
  EXPECT_LT(dm::metrics::ks_statistic(x1.reshape(-1), cdf1), crit);
  EXPECT_LT(dm::metrics::ks_statistic(dw5.sample(n, gen).reshape(-1), cdf5), crit);
  const auto grid = torch::linspace(-4, 4, 8001, dm::f64());
  const double d_pop = (cdf1(grid) - cdf5(grid)).abs().max().item<double>();  // ≈ 0.12
  ASSERT_GT(d_pop, 2 * crit);  // so D ≥ d_pop − crit > crit: the wrong τ is rejected
  const double d_wrong = dm::metrics::ks_statistic(x1.reshape(-1), cdf5);
  EXPECT_NEAR(d_wrong, d_pop, crit);
  EXPECT_GT(d_wrong, crit);
}

}  // namespace
