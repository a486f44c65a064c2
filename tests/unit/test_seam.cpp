// tests/unit/test_seam.cpp — the sampler seam: processes, parameterisations,
// the step contract and its loop, against the algorithms as they were written
// before the seam existed.
//
//   * forward_kernel reproduces the old ddpm::q_step (one-step kernels of the
//     schedule: coefficients √(1−β_t), √β_t to 1e-12; iterated, the marginals
//     of marginal_sample within Monte-Carlo error) and the old ncsn::ve_chain
//     (SigmaVE between ascending σ's: a = 1, s = √(σ_k² − σ_{k−1}²); marginals
//     x_0 + σ_k z);
//   * annealed Langevin through annealed_langevin / run equals the old
//     ncsn::annealed_langevin written out here (z drawn first, then the score),
//     bit for bit;
//   * DDPM ancestral sampling through sample_from equals Algorithm 2 written
//     out with σ_t = exp(½ log σ_t²) (the DDPM code's form), to 1e-10;
//   * every step reports the evaluations it used and run() sums them, counted
//     by a wrapper model;
//   * convert() round-trips score ↔ ε ↔ x̂_0 on random (a, s);
//   * Schedule::at is the tables at integers and lies between neighbours in
//     between; Schedule::posterior(t, t − 1) is the general Process formula;
//     a respaced posterior is a valid Gaussian.
// Tolerances are derived next to each test.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "dm/base/core.hpp"
#include "dm/base/rng.hpp"
#include "dm/data/toy.hpp"
#include "dm/diffusion/model.hpp"
#include "dm/diffusion/param.hpp"
#include "dm/diffusion/process.hpp"
#include "dm/diffusion/schedule.hpp"
#include "dm/diffusion/step.hpp"
#include "dm/methods/ddpm.hpp"
#include "dm/methods/langevin.hpp"
#include "dm/methods/ncsn.hpp"
#include "test_models.hpp"
#include "test_tensors.hpp"

namespace {

namespace dd = dm::ddpm;
namespace sc = dm::schedule;
using dm::toy::GaussianMixture;
using dm::toy::PerturbedMixture;
using dm_test::CountingModel;
using dm_test::tensor;

using dm_test::generator;
double at(const torch::Tensor& v, int64_t i) { return v[i].item<double>(); }
using dm_test::max_abs_diff;
std::string sci(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

// Two separated 2D components, unequal weights (as in test_ncsn.cpp).
GaussianMixture two_modes() {
  return GaussianMixture::isotropic(tensor({0.8, 0.2}, {2}), tensor({-3, 0, 3, 0}, {2, 2}),
                                    torch::full({2}, 0.5, torch::kFloat64));
}

// Three 2D components with full covariances (as in test_ddpm.cpp).
GaussianMixture three_modes() { return dm_test::three_mode_mixture(); }

// ---------------------------------------------------------------------------
// (a) The forward kernel: the old q_step and ve_chain.

// The one-step kernel of the schedule from t − 1 to t is q(x_t | x_{t−1}) =
// N(√(1−β_t) x_{t−1}, β_t I), the old q_step. Its coefficients come through
// the general formula from (a, s) = (√ᾱ, √(1−ᾱ)): a = √ᾱ_t/√ᾱ_{t−1} (round-off
// ~1e-16) and s = √(s_t² − a² s_{t−1}²), a difference of O(1) numbers whose
// absolute round-off ~4e-16 becomes ~4e-16/(2√β_t) ≤ 3e-14 in s (β ≥ 4e-5 here).
// So 1e-12 holds with a wide margin.
TEST(SeamForwardKernel, DdpmOneStepKernelIsTheOldQStep) {
  for (const auto& s : {sc::linear(), sc::cosine(), sc::linear_rescaled(50)}) {
    SCOPED_TRACE(s.label);
    double worst_a = 0, worst_s = 0;
    for (int64_t t = 1; t <= s.T; ++t) {
      const auto k = s.transition(double(t - 1), double(t));
      const double beta = at(s.betas, t - 1);
      worst_a = std::max(worst_a, std::abs(k.a - std::sqrt(1 - beta)));
      worst_s = std::max(worst_s, std::abs(k.s - std::sqrt(beta)));
    }
    EXPECT_LT(worst_a, 1e-12);
    EXPECT_LT(worst_s, 1e-12);
    RecordProperty("worst_s_" + s.label, sci(worst_s));
  }
  // forward_kernel draws z = randn_like(x, gen) and returns a·x + s·z.
  const auto s = sc::linear();
  auto g = generator(1), g_ref = generator(1);
  const auto x = tensor({1.5, -0.7, 0.2, 3.0}, {2, 2});
  const auto got = dm::forward_kernel(s, x, 9.0, 10.0, g);
  const auto k = s.transition(9.0, 10.0);
  EXPECT_TRUE(torch::equal(got, k.a * x + k.s * dm::randn_like(x, g_ref)));
  // From t to t it is the identity (s = 0), and it never goes back in time.
  auto g2 = generator(2);
  EXPECT_LT(max_abs_diff(dm::forward_kernel(s, x, 5.0, 5.0, g2), x), 1e-15);
  EXPECT_THROW(dm::forward_kernel(s, x, 5.0, 4.0, g2), dm::Error);
}

// Iterates forward_kernel over `times` (ascending, from the data end) from a
// fixed x_0 in n = 20000 chains, and checks at every time the per-coordinate
// mean and variance against marginal_sample's closed form a(t)·x_0, s(t)²:
// mean within 5 SE = 5√(v/n), variance within 5 SE = 5·sd((x − m)²)/√n
// (two-sided p ≈ 6e-7 per check).
void expect_chain_has_the_marginals(const dm::Process& process, const std::vector<double>& times,
                                    at::Generator& gen) {
  const int64_t n = 20000;
  const auto x0 = tensor({1.5, -0.7}, {1, 2}).expand({n, 2});
  auto x = x0.clone();
  double previous = times.front();
  for (size_t i = 1; i < times.size(); ++i) {
    const double t = times[i];
    x = dm::forward_kernel(process, x, previous, t, gen);
    previous = t;
    const auto tt = torch::full({1}, t, dm::f64());
    const double a = process.a(tt).item<double>(), s = process.s(tt).item<double>();
    // The closed form is marginal_sample's: x_t = a x_0 + s ε.
    const auto eps = tensor({0.3, -1.1}, {1, 2});
    EXPECT_LT(max_abs_diff(dm::marginal_sample(process, x0.slice(0, 0, 1), tt, eps),
                           a * x0.slice(0, 0, 1) + s * eps),
              1e-15);
    const auto m = x.mean(0);
    const auto sq = (x - m).pow(2);
    for (int d = 0; d < 2; ++d) {
      const double var = sq.select(1, d).mean().item<double>();
      EXPECT_NEAR(m[d].item<double>(), a * x0[0][d].item<double>(), 5 * std::sqrt(var / n))
          << process.name() << ": mean at t = " << t << ", dim " << d;
      EXPECT_NEAR(var, s * s, 5 * sq.select(1, d).std().item<double>() / std::sqrt(double(n)))
          << process.name() << ": variance at t = " << t << ", dim " << d;
    }
  }
}

TEST(SeamForwardKernel, IteratedDdpmKernelsHaveTheMarginals) {
  auto gen = generator(3);
  // Every step of a 50-step chain (variance from β_1 = 0.002 to ≈ 1) …
  const auto s = sc::linear_rescaled(50);
  std::vector<double> steps;
  for (int64_t t = 0; t <= 50; ++t) steps.push_back(double(t));
  expect_chain_has_the_marginals(s, steps, gen);
  // … and a respaced chain of T = 1000 (kernels over 100 steps, the general formula).
  expect_chain_has_the_marginals(sc::linear(), {0, 1, 100, 200, 500, 1000}, gen);
}

// SigmaVE between ascending levels: a = 1, s = √(σ_k² − σ_{k−1}²) (the old
// ve_chain's increment), exactly up to the round-off of one sqrt.
TEST(SeamForwardKernel, SigmaVeKernelIsTheOldVeChain) {
  const dm::SigmaVE ve(3.0);
  EXPECT_EQ(ve.t_min(), 0.0);
  EXPECT_EQ(ve.t_max(), 3.0);
  const std::vector<double> levels = {0.0, 0.1, 0.5, 1.0, 3.0};
  for (size_t k = 1; k < levels.size(); ++k) {
    const auto kernel = ve.transition(levels[k - 1], levels[k]);
    EXPECT_EQ(kernel.a, 1.0);
    EXPECT_NEAR(kernel.s, std::sqrt(levels[k] * levels[k] - levels[k - 1] * levels[k - 1]), 1e-12)
        << "level " << k;
  }
  // Iterated from x_0: x_0 + σ_k z at every level.
  auto gen = generator(4);
  expect_chain_has_the_marginals(ve, levels, gen);
}

// ---------------------------------------------------------------------------
// (b) Annealed Langevin: the old algorithm, written out.

// ncsn::annealed_langevin before the seam: for each level i, α = ε σ_i²/σ_L²;
// T times: z = randn(gen) first, then x ← x + ½α·score(x, σ_i) + √α·z; and
// optionally a final x + σ_L²·score(x, σ_L).
torch::Tensor old_annealed_langevin(dm::Model& score_model, torch::Tensor x,
                                    const dm::ncsn::Sigmas& sigmas, int64_t T, double step_lr,
                                    bool denoise, at::Generator& gen) {
  const int64_t n = x.size(0);
  const double smin = sigmas.min();
  for (int i = 0; i < sigmas.levels(); ++i) {
    const double r = sigmas.values[i] / smin;
    const double alpha = step_lr * r * r;
    for (int64_t k = 1; k <= T; ++k) {
      const auto z = torch::randn(x.sizes(), gen, x.options());
      x = x +
          0.5 * alpha * score_model.predict(x, torch::full({n}, sigmas.values[i], x.options())) +
          std::sqrt(alpha) * z;
    }
  }
  if (denoise) x = x + smin * smin * score_model.predict(x, torch::full({n}, smin, x.options()));
  return x;
}

TEST(SeamAnnealedLangevin, EqualsTheOldAlgorithmBitForBit) {
  const auto sigmas = dm::ncsn::geometric(3.0, 0.1, 5);
  auto score_model =
      PerturbedMixture(two_modes(), dm::ncsn::process(sigmas), dm::Prediction::score);
  for (bool denoise : {false, true}) {
    SCOPED_TRACE(denoise ? "denoise" : "no denoise");
    auto g0 = generator(5);
    const auto x0 = sigmas.max() * dm::randn({64, 2}, g0, dm::f64());
    dm::ncsn::AnnealedOptions o;
    o.steps_per_level = 7;
    o.step_lr = 0.02;
    o.denoise = denoise;
    auto g = generator(6), g_run = generator(6), g_ref = generator(6);
    const auto got = dm::ncsn::annealed_langevin(score_model, x0, sigmas, g, o);
    // The same step driven by dm::run over σ_1 … σ_L, 0.
    const auto step = dm::ncsn::annealed_langevin_step(std::make_shared<dm::SigmaVE>(sigmas.max()),
                                                       sigmas.min(), o);
    const auto run = dm::run(score_model, step, x0, dm::append(sigmas.values, 0.0), g_run);
    const auto want = old_annealed_langevin(score_model, x0, sigmas, 7, 0.02, denoise, g_ref);
    EXPECT_LT(max_abs_diff(got, want), 1e-12);
    EXPECT_TRUE(torch::equal(got, want)) << "max diff " << max_abs_diff(got, want);
    EXPECT_TRUE(torch::equal(run.x, got));
    EXPECT_EQ(run.steps, sigmas.levels());
    EXPECT_EQ(run.nfe, 7 * sigmas.levels() + (denoise ? 1 : 0));
    // Both generators are left where the old loop left its own: 7·L draws.
    EXPECT_TRUE(torch::equal(dm::randn({2}, g, dm::f64()), dm::randn({2}, g_ref, dm::f64())));
  }
}

// An ε-model drives it through convert(): score = −ε/σ. Same draws, so the only
// difference is the round-off of that conversion (values O(1–100), 1e-12).
TEST(SeamAnnealedLangevin, AnEpsModelGivesTheSameChain) {
  const auto sigmas = dm::ncsn::geometric(3.0, 0.1, 4);
  auto score_model =
      PerturbedMixture(two_modes(), dm::ncsn::process(sigmas), dm::Prediction::score);
  auto eps_model = PerturbedMixture(two_modes(), dm::ncsn::process(sigmas), dm::Prediction::eps);
  auto g0 = generator(7);
  const auto x0 = sigmas.max() * dm::randn({32, 2}, g0, dm::f64());
  dm::ncsn::AnnealedOptions o;
  o.steps_per_level = 5;
  o.step_lr = 0.02;
  o.denoise = true;
  auto g = generator(8), g_ref = generator(8);
  const auto got = dm::ncsn::annealed_langevin(eps_model, x0, sigmas, g, o);
  const auto want = old_annealed_langevin(score_model, x0, sigmas, 5, 0.02, true, g_ref);
  EXPECT_LT(max_abs_diff(got, want), 1e-12);
}

// ---------------------------------------------------------------------------
// (c) DDPM ancestral sampling: Algorithm 2, written out.

// x_{t−1} = (x_t − β_t/√(1−ᾱ_t)·ε̂)/√α_t + σ_t z, z = randn(gen) drawn after
// the model call, σ_t = exp(½ log σ_t²) with log σ_t² = log β_t (fixedlarge) or
// the clipped log β̃_t (fixedsmall); no noise at t = 1. The library forms the
// mean as μ̃(x_t, x̂_0) instead — the same number up to round-off (see
// test_ddpm.cpp); x̂_0 = x_t/√ᾱ_T amplifies round-off by 1/√ᾱ_T ≈ 360 (T = 50)
// and ≈ 2000 (cosine, T = 100), still ≲ 1e-12 on these O(1) values; so 1e-10.
torch::Tensor algorithm2(dm::Model& eps_model, const sc::Schedule& s, torch::Tensor x,
                         dd::Variance variance, at::Generator& gen) {
  const int64_t n = x.size(0);
  for (int64_t t = s.T; t >= 1; --t) {
    const double beta = at(s.betas, t - 1), ab = at(s.alpha_bar, t - 1);
    const auto eps = eps_model.predict(x, torch::full({n}, double(t), x.options()));
    x = (x - beta / std::sqrt(1 - ab) * eps) / std::sqrt(1 - beta);
    if (t > 1) {
      const double log_var = variance == dd::Variance::fixedlarge
                                 ? std::log(beta)
                                 : at(s.posterior_log_variance_clipped, t - 1);
      x = x + std::exp(0.5 * log_var) * torch::randn(x.sizes(), gen, x.options());
    }
  }
  return x;
}

TEST(SeamDdpm, SampleFromEqualsAlgorithmTwo) {
  for (const auto& s : {sc::linear_rescaled(50), sc::cosine(100)}) {
    SCOPED_TRACE(s.label);
    auto model = PerturbedMixture(three_modes(), s, dm::Prediction::eps);
    for (auto variance : {dd::Variance::fixedlarge, dd::Variance::fixedsmall}) {
      SCOPED_TRACE(variance == dd::Variance::fixedlarge ? "fixedlarge" : "fixedsmall");
      auto g0 = generator(9);
      const auto x_T = dm::randn({64, 2}, g0, dm::f64());
      dd::SampleOptions o;
      o.variance = variance;
      auto g = generator(10), g_ref = generator(10);
      const auto got = dd::sample_from(model, s, x_T, g, o);
      const auto want = algorithm2(model, s, x_T, variance, g_ref);
      EXPECT_EQ(got.scalar_type(), torch::kFloat64);
      EXPECT_LT(max_abs_diff(got, want), 1e-10);
      // T − 1 draws on each side (none at t = 1).
      EXPECT_TRUE(torch::equal(dm::randn({2}, g, dm::f64()), dm::randn({2}, g_ref, dm::f64())));
    }
  }
}

// A respaced grid T = τ_0 > τ_1 > … > 0 takes the posterior q(x_{τ'} | x_τ, x̂_0)
// of the general formula, with fixedlarge's σ² = its kernel variance
// 1 − ᾱ_τ/ᾱ_{τ'} (improved DDPM's respacing), written out here from ᾱ.
TEST(SeamDdpm, RespacedSamplingIsThePosteriorOfTheGrid) {
  const auto s = sc::linear();
  auto model = PerturbedMixture(three_modes(), s, dm::Prediction::eps);
  const auto grid = dm::respaced_grid(s.T, 10);
  ASSERT_EQ(grid, (std::vector<double>{1000, 900, 800, 700, 600, 500, 400, 300, 200, 100, 0}));
  auto g0 = generator(11);
  const auto x_T = dm::randn({32, 2}, g0, dm::f64());
  dd::SampleOptions o;
  o.grid = grid;
  auto g = generator(12), g_ref = generator(12);
  const auto got = dd::sample_from(model, s, x_T, g, o);
  auto x = x_T;
  for (size_t i = 0; i + 1 < grid.size(); ++i) {
    const double t = grid[i], tn = grid[i + 1];
    const double ab = at(s.alpha_bar, int64_t(t) - 1),
                 ab_n = tn == 0 ? 1.0 : at(s.alpha_bar, int64_t(tn) - 1);
    const auto eps = model.predict(x, torch::full({32}, t, dm::f64()));
    const auto x0 = (x - std::sqrt(1 - ab) * eps) / std::sqrt(ab);
    const double kernel = 1 - ab / ab_n;  // s²_{t|t'}
    const auto mean =
        std::sqrt(ab_n) * kernel / (1 - ab) * x0 + std::sqrt(ab / ab_n) * (1 - ab_n) / (1 - ab) * x;
    x = tn == 0 ? mean : mean + std::sqrt(kernel) * torch::randn({32, 2}, g_ref, dm::f64());
  }
  // Round-off of 1 − ᾱ (≈ 1e-16 on O(1) values), amplified by x̂_0's 1/√ᾱ_T ≈ 157.
  EXPECT_LT(max_abs_diff(got, x), 1e-10);
}

// ---------------------------------------------------------------------------
// (d) Every step reports the evaluations it used; run() sums them.

struct NfeLog {
  std::vector<int64_t> per_step, running;
  dm::RunOptions options() {
    dm::RunOptions o;
    o.callback = [this](const dm::StepEvent& e) {
      per_step.push_back(e.result.nfe);
      running.push_back(e.nfe);
    };
    return o;
  }
  int64_t sum() const {
    int64_t total = 0;
    for (auto v : per_step) total += v;
    return total;
  }
};

TEST(SeamNfe, EveryStepReportsItsEvaluationsAndRunSumsThem) {
  const auto x = tensor({0.5, -0.2, 1.0, 2.0}, {2, 2});
  // DDPM ancestral: one per step.
  {
    const auto s = sc::linear_rescaled(30);
    auto exact = PerturbedMixture(three_modes(), s, dm::Prediction::eps);
    CountingModel model(exact);
    NfeLog log;
    auto gen = generator(13);
    const auto r =
        dm::run(model, dd::ancestral(s), x, dm::integer_grid(s.T), gen, {}, log.options());
    EXPECT_EQ(r.steps, 30);
    EXPECT_EQ(log.per_step, std::vector<int64_t>(30, 1));
    EXPECT_EQ(r.nfe, 30);
    EXPECT_EQ(r.nfe, log.sum());
    EXPECT_EQ(r.nfe, model.calls);
    EXPECT_EQ(log.running.back(), r.nfe);
    for (size_t i = 0; i < log.running.size(); ++i) EXPECT_EQ(log.running[i], int64_t(i + 1));
  }
  // Annealed Langevin: T per level, + 1 at the last level for the denoising step.
  for (bool denoise : {false, true}) {
    const auto sigmas = dm::ncsn::geometric(3.0, 0.1, 4);
    auto exact = PerturbedMixture(two_modes(), dm::ncsn::process(sigmas), dm::Prediction::score);
    CountingModel model(exact);
    NfeLog log;
    dm::ncsn::AnnealedOptions o;
    o.steps_per_level = 6;
    o.step_lr = 0.01;
    o.denoise = denoise;
    auto gen = generator(14);
    const auto step =
        dm::ncsn::annealed_langevin_step(std::make_shared<dm::SigmaVE>(3.0), sigmas.min(), o);
    const auto r = dm::run(model, step, x, dm::append(sigmas.values, 0.0), gen, {}, log.options());
    EXPECT_EQ(log.per_step, (std::vector<int64_t>{6, 6, 6, denoise ? 7 : 6}));
    EXPECT_EQ(r.nfe, log.sum());
    EXPECT_EQ(r.nfe, model.calls);
  }
  // ULA: one per step; MALA: three (the proposal's score, and log α's two, uncached).
  {
    auto gm = two_modes();
    CountingModel model(gm);
    NfeLog log;
    auto gen = generator(15);
    const auto r = dm::run(model, dm::langevin::make_ula_step(0.01), x, dm::uniform_grid(0, 5, 5),
                           gen, {}, log.options());
    EXPECT_EQ(log.per_step, std::vector<int64_t>(5, 1));
    EXPECT_EQ(r.nfe, 5);
    EXPECT_EQ(model.calls, 5);
  }
  {
    auto gm = two_modes();
    CountingModel model(gm);
    NfeLog log;
    auto gen = generator(16);
    auto accepted = std::make_shared<torch::Tensor>();
    const auto step = dm::langevin::make_mala_step(
        [&](const torch::Tensor& v) { return gm.log_prob(v); }, 0.05, 1.0, accepted);
    const auto r = dm::run(model, step, x, dm::uniform_grid(0, 4, 4), gen, {}, log.options());
    EXPECT_EQ(log.per_step, std::vector<int64_t>(4, 3));
    EXPECT_EQ(r.nfe, 12);
    EXPECT_EQ(model.calls, 12);
    ASSERT_TRUE(accepted->defined());
    const double rate = accepted->item<double>() / 4;
    EXPECT_GE(rate, 0.0);
    EXPECT_LE(rate, 1.0);
  }
}

// ---------------------------------------------------------------------------
// (e) The parameterisations round-trip on random (a, s).

// Per row a ∈ [0.1, 2], s ∈ [0.05, 3]: the conversions are exact rational
// functions of (out, x, a, s), each division by a or s at most amplifying
// round-off by 1/0.05 = 20 per step. Values are O(1–100): 1e-11 is round-off.
TEST(SeamParam, ConvertRoundTripsScoreEpsAndX0) {
  auto gen = generator(17);
  const int64_t n = 64;
  const auto x = 2.0 * dm::randn({n, 3}, gen, dm::f64());
  const auto out = dm::randn({n, 3}, gen, dm::f64());
  const auto a = dm::per_row(0.1 + 1.9 * dm::rand({n}, gen, dm::f64()), x);
  const auto s = dm::per_row(0.05 + 2.95 * dm::rand({n}, gen, dm::f64()), x);
  using P = dm::Prediction;
  const std::vector<P> kinds = {P::score, P::eps, P::x0};
  for (auto from : kinds) {
    for (auto to : kinds) {
      const auto there = dm::convert(out, from, to, x, a, s);
      const auto back = dm::convert(there, to, from, x, a, s);
      EXPECT_LT(max_abs_diff(back, out), 1e-11)
          << dm::to_string(from) << " → " << dm::to_string(to);
      // Through the third kind and back gives the same.
      for (auto via : kinds) {
        const auto chain = dm::convert(dm::convert(there, to, via, x, a, s), via, from, x, a, s);
        EXPECT_LT(max_abs_diff(chain, out), 1e-11)
            << dm::to_string(from) << " → " << dm::to_string(to) << " → " << dm::to_string(via);
      }
    }
  }
  // The formulas themselves (Tweedie).
  const auto eps = out;
  EXPECT_LT(max_abs_diff(dm::convert(eps, P::eps, P::score, x, a, s), -eps / s), 1e-15);
  EXPECT_LT(max_abs_diff(dm::convert(eps, P::eps, P::x0, x, a, s), (x - s * eps) / a), 1e-13);
  EXPECT_LT(max_abs_diff(dm::convert(out, P::x0, P::eps, x, a, s), (x - a * out) / s), 1e-12);
  EXPECT_LT(max_abs_diff(dm::convert(out, P::score, P::x0, x, a, s), (x + s * s * out) / a), 1e-12);
  // Numbers (Coefficients) and 0-dim tensors give the same as per-row tensors.
  const dm::Coefficients c{0.7, 0.4};
  EXPECT_LT(max_abs_diff(dm::convert(out, P::score, P::x0, x, c),
                         dm::convert(out, P::score, P::x0, x, torch::full_like(a, 0.7),
                                     torch::full_like(s, 0.4))),
            1e-15);
  EXPECT_TRUE(torch::equal(dm::convert(out, P::eps, P::eps, x, c), out));
  EXPECT_EQ(dm::prediction_from_string(dm::to_string(P::x0)), P::x0);
  EXPECT_THROW(dm::prediction_from_string("velocity"), dm::Error);
}

// predict_as with a time per row converts with the process's per-row (a, s);
// with one time, with at(t). time_like is [N] of t in x's dtype.
TEST(SeamParam, PredictAsUsesTheProcessCoefficients) {
  const auto s = sc::cosine(200);
  auto eps_model = PerturbedMixture(three_modes(), s, dm::Prediction::eps);
  auto x0_model = PerturbedMixture(three_modes(), s, dm::Prediction::x0);
  auto gen = generator(18);
  const auto x = dm::randn({6, 2}, gen, dm::f64());
  const auto t = torch::tensor({1.0, 2.5, 17.0, 100.0, 150.5, 199.0}, dm::f64());
  const auto eps = eps_model.predict(x, t);
  const auto a = dm::per_row(s.a(t), x), sd = dm::per_row(s.s(t), x);
  // x̂_0-model → ε, and ε-model → x̂_0: both the convert() of the other's answer.
  EXPECT_LT(max_abs_diff(dm::predict_as(dm::Prediction::eps, x0_model, s, x, t), eps), 1e-10);
  EXPECT_LT(
      max_abs_diff(dm::predict_as(dm::Prediction::x0, eps_model, s, x, t), (x - sd * eps) / a),
      1e-12);
  EXPECT_LT(max_abs_diff(dm::predict_as(dm::Prediction::score, eps_model, s, x, 17.0),
                         -eps_model.predict(x, torch::full({6}, 17.0, dm::f64())) / s.at(17.0).s),
            1e-12);
  const auto tl = dm::time_like(3.0, x.to(torch::kFloat32));
  EXPECT_EQ(tl.scalar_type(), torch::kFloat32);
  EXPECT_EQ(tl.sizes(), (std::vector<int64_t>{6}));
  EXPECT_EQ(tl[5].item<float>(), 3.0f);
  // A timeless score needs a score model.
  dm::ScoreFunction score([](const torch::Tensor& v) { return -v; });
  EXPECT_TRUE(torch::equal(dm::timeless_score(score, x), -x));
  EXPECT_THROW(dm::timeless_score(eps_model, x), dm::Error);
}

// ---------------------------------------------------------------------------
// (f) The schedule as a process.

// At t = k the tables; between k and k + 1 log ᾱ is linear (so a = √ᾱ and
// s = √(1 − ᾱ) lie between their neighbours' values, and a² + s² = 1).
TEST(SeamSchedule, AtIsTheTablesAndInterpolatesLogAlphaBar) {
  for (const auto& s : {sc::linear(), sc::cosine(), sc::linear_rescaled(50)}) {
    SCOPED_TRACE(s.label);
    for (int64_t k = 1; k <= s.T; ++k) {
      const auto c = s.at(double(k));
      ASSERT_EQ(c.a, at(s.sqrt_alpha_bar, k - 1)) << k;
      ASSERT_EQ(c.s, at(s.sqrt_one_minus_alpha_bar, k - 1)) << k;
    }
    for (int64_t k : {int64_t(0), int64_t(1), int64_t(7), s.T / 2, s.T - 1}) {
      const auto lo = s.at(double(k)), hi = s.at(double(k + 1));
      const double log_lo = k == 0 ? 0.0 : std::log(at(s.alpha_bar, k - 1)),
                   log_hi = std::log(at(s.alpha_bar, k));
      for (double w : {0.25, 0.5, 0.9}) {
        const auto c = s.at(double(k) + w);
        EXPECT_LT(c.a, lo.a) << k << " + " << w;
        EXPECT_GT(c.a, hi.a) << k << " + " << w;
        EXPECT_GT(c.s, lo.s) << k << " + " << w;
        EXPECT_LT(c.s, hi.s) << k << " + " << w;
        EXPECT_NEAR(c.a * c.a + c.s * c.s, 1.0, 1e-15);
        EXPECT_NEAR(std::log(c.a * c.a), (1 - w) * log_lo + w * log_hi, 1e-12) << k << " + " << w;
      }
    }
  }
}

// Schedule::posterior(t, t − 1) reads the tables; the general Process formula
// computes the same from (a, s) = (√ᾱ, √(1−ᾱ)). Both hold 1 − ᾱ with an
// absolute round-off ≈ 2e-16, i.e. a relative one ≈ 2e-16/(1 − ᾱ_t), largest
// at the first steps of the cosine schedule (1 − ᾱ_1 = 4.1e-5), and the
// coefficients are O(1) ratios of such differences. Measured worst difference
// over every step of the three schedules: 6.3e-13 (cosine, early steps), so
// 1e-12 holds — deterministically (no random numbers enter). At t = 1
// (ᾱ_0 = 1) both give x̂_0 itself: c_x0 = 1, c_xt = 0, variance 0; only the log
// variance differs — the table's is clipped to log β̃_2, the formula's is −∞.
TEST(SeamSchedule, PosteriorIsTheGeneralFormula) {
  for (const auto& s : {sc::linear(), sc::cosine(), sc::linear_rescaled(50)}) {
    SCOPED_TRACE(s.label);
    double worst = 0;
    for (int64_t t = 1; t <= s.T; ++t) {
      const auto table = s.posterior(double(t), double(t - 1));
      const auto general = s.dm::Process::posterior(double(t), double(t - 1));
      const double err =
          std::max({std::abs(table.c_x0 - general.c_x0), std::abs(table.c_xt - general.c_xt),
                    std::abs(table.variance - general.variance),
                    std::abs(table.kernel_variance - general.kernel_variance)});
      worst = std::max(worst, err);
      ASSERT_LT(err, 1e-12) << "t = " << t;
      if (t >= 2) {
        ASSERT_NEAR(table.log_variance, general.log_variance, 1e-10) << "t = " << t;
        ASSERT_NEAR(table.log_kernel_variance, general.log_kernel_variance, 1e-10) << "t = " << t;
      }
    }
    RecordProperty("worst_" + s.label, sci(worst));
    const auto first = s.posterior(1.0, 0.0);
    EXPECT_NEAR(first.c_x0, 1.0, 1e-12);
    EXPECT_EQ(first.c_xt, 0.0);
    EXPECT_EQ(first.variance, 0.0);
    EXPECT_NEAR(first.log_variance, std::log(at(s.posterior_variance, 1)), 1e-12);
    EXPECT_NEAR(first.kernel_variance, at(s.betas, 0), 1e-15);
  }
}

// A respaced posterior q(x_{t'} | x_t, x_0), t' = t − k, is a valid Gaussian:
// 0 ≤ variance ≤ kernel_variance (conditioning on x_0 only shrinks it), both
// coefficients positive, and the two moment identities of any such
// conditional hold: E: c_x0 + c_xt·a(t) = a(t'), and the law of total variance
// s(t')² = c_xt²·s(t)² + variance (both sides O(1); 1e-12).
TEST(SeamSchedule, RespacedPosteriorIsAValidGaussian) {
  for (const auto& s : {sc::linear(), sc::cosine()}) {
    SCOPED_TRACE(s.label);
    for (double t : {1000.0, 800.0, 500.0, 101.0, 20.0, 5.0}) {
      for (double k : {2.0, 10.0, 100.0, 0.5}) {
        const double tn = t - k;
        if (tn < 0) continue;
        const auto p = s.posterior(t, tn);
        const auto now = s.at(t), next = s.at(tn);
        EXPECT_GE(p.variance, 0.0) << t << " → " << tn;
        EXPECT_LE(p.variance, p.kernel_variance) << t << " → " << tn;
        EXPECT_GT(p.c_x0, 0.0) << t << " → " << tn;
        EXPECT_GT(p.c_xt, 0.0) << t << " → " << tn;
        EXPECT_NEAR(p.c_x0 + p.c_xt * now.a, next.a, 1e-12) << t << " → " << tn;
        EXPECT_NEAR(p.c_xt * p.c_xt * now.s * now.s + p.variance, next.s * next.s, 1e-12)
            << t << " → " << tn;
        // The kernel variance is the forward kernel's from t' to t.
        const auto kernel = s.transition(tn, t);
        EXPECT_NEAR(p.kernel_variance, kernel.s * kernel.s, 1e-12) << t << " → " << tn;
        EXPECT_NEAR(p.log_variance, std::log(p.variance), 1e-12);
      }
    }
  }
}

// ---------------------------------------------------------------------------
// The loop and its grids.

TEST(SeamRun, GridsAndTheLoop) {
  EXPECT_EQ(dm::integer_grid(3), (std::vector<double>{3, 2, 1, 0}));
  EXPECT_EQ(dm::respaced_grid(10, 4),
            (std::vector<double>{10, 8, 5, 3, 0}));  // rounded, from T down to 0
  EXPECT_EQ(dm::respaced_grid(5, 5), dm::integer_grid(5));
  EXPECT_EQ(dm::uniform_grid(1.0, 0.0, 4), (std::vector<double>{1.0, 0.75, 0.5, 0.25, 0.0}));
  EXPECT_EQ(dm::append({3.0, 2.0}, 0.0), (std::vector<double>{3.0, 2.0, 0.0}));
  EXPECT_THROW(dm::integer_grid(0), dm::Error);
  EXPECT_THROW(dm::respaced_grid(10, 11), dm::Error);
  EXPECT_THROW(dm::uniform_grid(0, 1, 0), dm::Error);

  // A step that adds t to x and reports x + 100 as its mean: run() applies it over
  // consecutive pairs, calls back once per step, and with return_mean ends on the mean.
  dm::Step step = [](dm::Model&, const torch::Tensor& x, double t, double t_next,
                     const dm::Condition& c, at::Generator&) {
    dm::StepResult r;
    r.x = x + t + (c.labels.defined() ? 1000.0 : 0.0);
    r.mean = r.x + 100.0;
    r.nfe = t_next == 0 ? 2 : 1;
    return r;
  };
  dm::ScoreFunction model([](const torch::Tensor& v) { return v; });
  auto gen = generator(0);
  std::vector<double> ts, tns;
  std::vector<int64_t> idx;
  dm::RunOptions o;
  o.callback = [&](const dm::StepEvent& e) {
    ts.push_back(e.t);
    tns.push_back(e.t_next);
    idx.push_back(e.index);
    EXPECT_EQ(e.steps, 3);
  };
  const auto x = torch::zeros({2, 1}, dm::f64());
  const auto r = dm::run(model, step, x, dm::integer_grid(3), gen, {}, o);
  EXPECT_EQ(ts, (std::vector<double>{3, 2, 1}));
  EXPECT_EQ(tns, (std::vector<double>{2, 1, 0}));
  EXPECT_EQ(idx, (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(r.steps, 3);
  EXPECT_EQ(r.nfe, 4);
  EXPECT_EQ(r.x[0][0].item<double>(), 6.0);
  EXPECT_FALSE(r.x.requires_grad());
  o.return_mean = true;
  o.callback = {};
  EXPECT_EQ(dm::run(model, step, x, dm::integer_grid(3), gen, {}, o).x[0][0].item<double>(), 106.0);
  // The condition reaches the step.
  const dm::Condition labels = torch::tensor({int64_t(1), int64_t(0)});
  EXPECT_EQ(dm::run(model, step, x, {1.0, 0.0}, gen, labels).x[1][0].item<double>(), 1001.0);
  EXPECT_THROW(dm::run(model, step, x, {1.0}, gen), dm::Error);
}

// Condition::rows picks the rows of every field that is present.
TEST(SeamCondition, RowsSelectsEveryPresentField) {
  dm::Condition c;
  EXPECT_TRUE(c.empty());
  c.labels = torch::tensor({int64_t(3), int64_t(4), int64_t(5)});
  c.mask = torch::arange(6, dm::f64()).reshape({3, 2});
  EXPECT_FALSE(c.empty());
  const auto r = c.rows(torch::tensor({int64_t(2), int64_t(0)}));
  EXPECT_TRUE(torch::equal(r.labels, torch::tensor({int64_t(5), int64_t(3)})));
  EXPECT_TRUE(torch::equal(r.mask, tensor({4, 5, 0, 1}, {2, 2})));
  EXPECT_FALSE(r.image.defined());
  EXPECT_FALSE(r.image_level.defined());
}

}  // namespace
