// tests/exercises/test_05_sde.cpp — chapter 05's exercises (exercises.hpp)
// against exact answers: the dm library's SDEs (dm::sde::VP, SubVP, VE) and
// its simulators (dm::sde::simulate_forward, dm::sde::euler_maruyama), values
// worked out by hand, the kernels' defining integrals done by quadrature, and
// the moments of an Ornstein–Uhlenbeck process and of a Gaussian sampled back.
//
// The same file is built against solutions.cpp (must pass), against the stubs
// in exercises.cpp (every test must fail; see cmake/DmExercises.cmake) and, with
// -DDM_EXERCISES=mine, against the learner's answers. Each test can also fail
// on a plausible wrong answer: the comments name the mistakes it catches, and
// where a mistake is easy to make (a missing square root, a missing √dt, the
// sign of g² s) the test also checks, on the mistaken formula written out,
// that its own tolerance rejects it.
// Tolerances: both sides evaluate the same float64 expressions, so 1e-12
// relative to the size of the values is round-off with a wide margin; the
// quadratures and finite differences are given their own error bounds, the
// Monte Carlo checks 4 standard errors plus the scheme's bias.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <vector>

#include "dm/base/core.hpp"
#include "dm/base/rng.hpp"
#include "dm/data/toy.hpp"
#include "dm/diffusion/param.hpp"
#include "dm/diffusion/sde.hpp"
#include "dm/diffusion/step.hpp"
#include "dm/methods/reverse_sde.hpp"
#include "exercises.hpp"
#include "test_models.hpp"
#include "test_tensors.hpp"

namespace {

namespace sde = dm::sde;
using dm::toy::PerturbedMixture;
using dm_test::generator;
using dm_test::max_abs_diff;
using dm_test::tensor;

// |got − want| relative to the size of want (1 for values below 1).
double rel_diff(const torch::Tensor& got, const torch::Tensor& want) {
  return max_abs_diff(got, want) / std::max(1.0, want.abs().max().item<double>());
}
double rel_diff(double got, double want) {
  return std::abs(got - want) / std::max(1.0, std::abs(want));
}

// ∫_0^t f by Simpson's rule on n (even) intervals.
double simpson(const std::function<double(double)>& f, double t, int n = 20000) {
  const double h = t / n;
  double sum = f(0.0) + f(t);
  for (int i = 1; i < n; ++i) sum += (i % 2 ? 4.0 : 2.0) * f(i * h);
  return sum * h / 3.0;
}

// ∫_0^t β for β(u) = β_min + u (β_max − β_min), written out (horizon T = 1).
double int_beta(double t, double beta_min, double beta_max) {
  return beta_min * t + 0.5 * t * t * (beta_max - beta_min);
}

// (β_min, β_max): score_sde's VP, a gentler one, and the constant β = 2 (the
// Ornstein–Uhlenbeck process dx = −x dt + √2 dw).
const std::vector<std::pair<double, double>> kBetas = {{0.1, 20.0}, {0.1, 5.0}, {2.0, 2.0}};
// Times from 0 to the horizon, sampling_eps (10⁻³) included.
const std::vector<double> kTimes = {0.0, 1e-3, 0.05, 0.25, 0.5, 0.8, 1.0};

// The three SDEs as the chapter uses them on 2D toys.
std::vector<std::shared_ptr<const sde::SDE>> all_sdes() {
  return {std::make_shared<sde::VE>(0.01, 10.0), std::make_shared<sde::VP>(),
          std::make_shared<sde::SubVP>()};
}

// ---------------------------------------------------------------------------
// Exercise 5.1 — vp_marginal: a = e^{−½∫β}, s = √(1 − e^{−∫β}).

// Against dm::sde::VP::at at every time of kTimes, for three (β_min, β_max).
// Catches: s without the square root (sub-VP's std), a without the ½ (a² in
// place of a), β(t)·t in place of ∫_0^t β, a and s swapped.
TEST(Exercise05_1, MatchesTheLibrary) {
  for (const auto& [bmin, bmax] : kBetas) {
    const sde::VP vp(bmin, bmax);
    for (double t : kTimes) {
      const auto want = vp.at(t);
      const auto got = ex05::vp_marginal(t, bmin, bmax);
      EXPECT_NEAR(got.a, want.a, 1e-12) << "β = " << bmin << "…" << bmax << ", t = " << t;
      EXPECT_NEAR(got.s, want.s, 1e-12) << "β = " << bmin << "…" << bmax << ", t = " << t;
      EXPECT_NEAR(got.a * got.a + got.s * got.s, 1.0, 1e-12) << "t = " << t;  // VP: a² + s² = 1
    }
  }
  // The tolerance rejects the typical mistake s = 1 − e^{−∫β} (no root) by far.
  const double no_root = -std::expm1(-int_beta(0.25, 0.1, 20.0));
  EXPECT_GT(std::abs(no_root - sde::VP().at(0.25).s), 1e-2);
}

// β = 2 (Ornstein–Uhlenbeck): ∫β = 2t, so a = e^{−t} and s = √(1 − e^{−2t}); at
// t = ln 2, a = ½ and s = √3/2. score_sde's VP at t = 1: ∫β = 0.1 + 19.9/2 = 10.05.
TEST(Exercise05_1, HandComputed) {
  const auto ou = ex05::vp_marginal(std::log(2.0), 2.0, 2.0);
  EXPECT_NEAR(ou.a, 0.5, 1e-14);
  EXPECT_NEAR(ou.s, std::sqrt(3.0) / 2.0, 1e-14);
  const auto end = ex05::vp_marginal(1.0, 0.1, 20.0);
  EXPECT_NEAR(end.a, std::exp(-5.025), 1e-14);
  EXPECT_NEAR(end.s, std::sqrt(1.0 - std::exp(-10.05)), 1e-14);
  const auto start = ex05::vp_marginal(0.0, 0.1, 20.0);  // no noise yet
  EXPECT_NEAR(start.a, 1.0, 1e-15);
  EXPECT_NEAR(start.s, 0.0, 1e-15);
}

// ---------------------------------------------------------------------------
// Exercise 5.2 — subvp_std: s = 1 − e^{−∫β}.

// Against dm::sde::SubVP::at, and below VP's std (s_subVP = s_VP² ≤ s_VP).
// Catches: a square root (VP's std), e^{−2∫β} or e^{−½∫β} in place of e^{−∫β}.
TEST(Exercise05_2, MatchesTheLibrary) {
  for (const auto& [bmin, bmax] : kBetas) {
    const sde::SubVP subvp(bmin, bmax);
    const sde::VP vp(bmin, bmax);
    for (double t : kTimes) {
      const double got = ex05::subvp_std(t, bmin, bmax);
      EXPECT_NEAR(got, subvp.at(t).s, 1e-12) << "β = " << bmin << "…" << bmax << ", t = " << t;
      EXPECT_NEAR(got, vp.at(t).s * vp.at(t).s, 1e-12) << "t = " << t;
      EXPECT_LE(got, vp.at(t).s + 1e-15) << "t = " << t;
    }
  }
  // The tolerance rejects the typical mistake: VP's std √(1 − e^{−∫β}).
  EXPECT_GT(std::abs(sde::VP().at(0.05).s - sde::SubVP().at(0.05).s), 1e-2);
}

// From the SDE itself: s(t)² = ∫_0^t (a(t)/a(u))² g(u)² du with the sub-VP
// diffusion g(u)² = β(u)(1 − e^{−2∫_0^u β}) and (a(t)/a(u))² = e^{−(∫_0^t β − ∫_0^u β)},
// by Simpson's rule on 20 000 intervals (its error is far below the 10⁻⁹
// allowed). No closed form of s is used.
// Catches: any std that is not the solution of the sub-VP SDE (VP's among them).
TEST(Exercise05_2, IsTheSolutionOfItsSde) {
  for (const auto& [bmin, bmax] : kBetas) {
    for (double t : {0.05, 0.3, 0.7, 1.0}) {
      const double Bt = int_beta(t, bmin, bmax);
      const double var = simpson(
          [&](double u) {
            const double Bu = int_beta(u, bmin, bmax), beta = bmin + u * (bmax - bmin);
            return std::exp(-(Bt - Bu)) * beta * -std::expm1(-2.0 * Bu);
          },
          t);
      const double got = ex05::subvp_std(t, bmin, bmax);
      EXPECT_NEAR(got * got, var, 1e-9) << "β = " << bmin << "…" << bmax << ", t = " << t;
    }
  }
}

// ---------------------------------------------------------------------------
// Exercise 5.3 — ve_diffusion: g = σ(t) √(2 ln(σ_max/σ_min)).

// Against dm::sde::VE::diffusion for score_sde's σ range (0.01 … 50), the
// chapter's 2D one (0.01 … 10) and a narrow one (0.5 … 2).
// Catches: dσ²/dt without the square root, ln(σ_max/σ_min) without the 2,
// σ_max/σ_min in place of its logarithm, σ_min or σ_max in place of σ(t).
TEST(Exercise05_3, MatchesTheLibrary) {
  for (const auto& [smin, smax] :
       std::vector<std::pair<double, double>>{{0.01, 50.0}, {0.01, 10.0}, {0.5, 2.0}}) {
    const sde::VE ve(smin, smax);
    for (double t : kTimes) {
      EXPECT_LT(rel_diff(ex05::ve_diffusion(t, smin, smax), ve.diffusion(t)), 1e-12)
          << "σ = " << smin << "…" << smax << ", t = " << t;
    }
  }
}

// g² is the rate at which the variance grows: g(t)² = dσ²/dt (a central
// difference of σ(t)² = σ_min² (σ_max/σ_min)^{2t}, relative error < 10⁻⁸), and
// so ∫_0^t g² = σ(t)² − σ_min², the VE kernel's variance (dm::sde::VE::at;
// Simpson, relative error < 10⁻¹⁰).
// Catches: the seed's mistake g = dσ²/dt (no square root), which the check
// below also rejects on the mistaken formula itself.
TEST(Exercise05_3, SquareIsTheVarianceRate) {
  const double smin = 0.01, smax = 50.0, h = 1e-5;
  const sde::VE ve(smin, smax);
  const auto sigma2 = [&](double t) { return std::pow(smin * std::pow(smax / smin, t), 2); };
  for (double t : {0.1, 0.4, 0.75, 0.9}) {
    const double rate = (sigma2(t + h) - sigma2(t - h)) / (2 * h);  // dσ²/dt
    const double g = ex05::ve_diffusion(t, smin, smax);
    EXPECT_LT(std::abs(g * g - rate) / rate, 1e-6) << "t = " << t;
    // The mistake g = dσ²/dt squares to (dσ²/dt)², far from dσ²/dt here.
    EXPECT_GT(std::abs(rate * rate - rate) / rate, 1e-2) << "t = " << t;
    const double integral =
        simpson([&](double u) { return std::pow(ex05::ve_diffusion(u, smin, smax), 2); }, t, 2000);
    const double var = ve.at(t).s * ve.at(t).s;
    EXPECT_LT(std::abs(integral - var) / var, 1e-9) << "t = " << t;
  }
}

// σ_min = 1, σ_max = e²: σ(t) = e^{2t}, 2 ln(σ_max/σ_min) = 4, so g = 2 e^{2t}
// (the mistake dσ²/dt = 4 e^{4t} gives 4 at t = 0, not 2).
TEST(Exercise05_3, HandComputed) {
  const double e2 = std::exp(2.0);
  EXPECT_NEAR(ex05::ve_diffusion(0.0, 1.0, e2), 2.0, 1e-14);
  EXPECT_NEAR(ex05::ve_diffusion(0.5, 1.0, e2), 2.0 * std::exp(1.0), 1e-13);
  EXPECT_NEAR(ex05::ve_diffusion(1.0, 1.0, e2), 2.0 * e2, 1e-13);
}

// ---------------------------------------------------------------------------
// Exercise 5.4 — euler_maruyama_step_forward: x + f dt + g √dt z.

// Against dm::sde::simulate_forward over 50 steps of [0, 1] for VE, VP and
// sub-VP, with the same z (simulate_forward draws z = randn_like(x, gen) each
// step: the same seed gives the same draws). Every state of the path must agree.
// Catches: g dt z (the missing √dt: the noise √dt ≈ 0.14 times too small),
// g² in place of g, a wrong sign on the drift, the drift not multiplied by dt.
TEST(Exercise05_4, MatchesTheLibrarysSimulation) {
  const auto grid = dm::uniform_grid(0.0, 1.0, 50);
  for (const auto& s : all_sdes()) {
    SCOPED_TRACE(s->name());
    auto data_gen = generator(3);
    const auto x0 = dm_test::three_mode_mixture().sample(64, data_gen);
    auto library_gen = generator(21);
    const auto want = sde::simulate_forward(*s, x0, grid, library_gen);
    auto gen = generator(21);
    auto x = x0;
    for (size_t i = 0; i + 1 < grid.size(); ++i) {
      const double t = grid[i], dt = grid[i + 1] - t;
      const auto z = dm::randn_like(x, gen);
      const auto next =
          ex05::euler_maruyama_step_forward(x, s->drift(x, t), s->diffusion(t), dt, z);
      ASSERT_EQ(next.sizes(), x.sizes());
      EXPECT_LT(rel_diff(next, want[i + 1]), 1e-12) << "step " << i << ", t = " << t;
      if (i == 25) {  // the tolerance rejects the step without √dt (at t = 0.5)
        const auto no_sqrt = x + s->drift(x, t) * dt + s->diffusion(t) * dt * z;
        EXPECT_GT(rel_diff(no_sqrt, want[i + 1]), 1e-6);
      }
      x = want[i + 1];  // go on from the library's state: one mistake, one failure per step
    }
  }
}

// The Ornstein–Uhlenbeck process dx = −x dt + √2 dw from x_0 = 1.5, 200 steps
// of your scheme to t = 1 on 40 000 paths: its mean is 1.5 e^{−t} and its
// variance 1 − e^{−2t} (exact). Tolerance: 4 standard errors plus the scheme's
// O(dt) bias (1% of the std allowed; the scheme's own mean and variance
// recursion gives 0.15% and 0.16% at dt = 0.005).
// Catches: the missing √dt (std ≈ √dt of the right one), the noise as g² z.
TEST(Exercise05_4, OrnsteinUhlenbeckHasTheExactMoments) {
  const int64_t n = 40000, steps = 200;
  const double dt = 1.0 / steps;
  auto gen = generator(22);
  auto x = torch::full({n, 1}, 1.5, dm::f64());
  for (int64_t i = 0; i < steps; ++i) {
    x = ex05::euler_maruyama_step_forward(x, -x, std::sqrt(2.0), dt, dm::randn_like(x, gen));
    ASSERT_EQ(x.sizes(), (std::vector<int64_t>{n, 1}));
  }
  const double mean = 1.5 * std::exp(-1.0), std = std::sqrt(1.0 - std::exp(-2.0));
  const double se_mean = std / std::sqrt(double(n)), se_std = std / std::sqrt(2.0 * n);
  EXPECT_NEAR(x.mean().item<double>(), mean, 4 * se_mean + 0.01 * std);
  EXPECT_NEAR(x.std().item<double>(), std, 4 * se_std + 0.01 * std);
}

// x = 1, f = −0.5, g = 2, dt = 0.04 (√dt = 0.2), z = 1.5: 1 − 0.02 + 0.6 = 1.58
// (without √dt: 1 − 0.02 + 0.12 = 1.1); z = 0 leaves the drift alone: 0.98.
TEST(Exercise05_4, HandComputedStep) {
  const auto x = tensor({1.0, 1.0}, {2, 1});
  const auto got = ex05::euler_maruyama_step_forward(x, tensor({-0.5, -0.5}, {2, 1}), 2.0, 0.04,
                                                     tensor({1.5, 0.0}, {2, 1}));
  ASSERT_EQ(got.sizes(), x.sizes());
  EXPECT_NEAR(got[0][0].item<double>(), 1.58, 1e-14);
  EXPECT_NEAR(got[1][0].item<double>(), 0.98, 1e-14);
}

// ---------------------------------------------------------------------------
// Exercise 5.5 — reverse_em_step: x − (f − g² score) dt + g √dt z.

// Against the library's predictor (dm::sde::euler_maruyama from t to t − dt)
// driven by the exact score of a 2D mixture under VE, VP and sub-VP, its state
// (same seed, same z) and its mean (z = 0), at early, middle and late times.
// Catches: + g² s (the sign of the score term), ½ g² s (the probability-flow
// drift), the step taken forwards (x + (f − g² s) dt), the missing √dt.
TEST(Exercise05_5, MatchesTheLibrarysPredictor) {
  const auto gm = dm_test::three_mode_mixture();
  for (const auto& s : all_sdes()) {
    SCOPED_TRACE(s->name());
    PerturbedMixture exact(gm, s, dm::Prediction::eps);  // an ε-model: the score is converted
    const auto step = sde::euler_maruyama(s);
    auto x_gen = generator(31);
    const auto x = 2.0 * dm::randn({32, 2}, x_gen, dm::f64());
    for (double t : {1.0, 0.6, 0.2, 0.05}) {
      for (double dt : {0.01, 0.04}) {
        auto library_gen = generator(40), gen = generator(40);
        const auto want = step(exact, x, t, t - dt, {}, library_gen);
        const auto z = dm::randn_like(x, gen);
        const auto f = s->drift(x, t);
        const double g = s->diffusion(t);
        const auto score = dm::predict_as(dm::Prediction::score, exact, *s, x, t);
        const auto got = ex05::reverse_em_step(x, f, g, score, dt, z);
        ASSERT_EQ(got.sizes(), x.sizes());
        EXPECT_LT(rel_diff(got, want.x), 1e-12) << "t = " << t << ", dt = " << dt;
        const auto mean = ex05::reverse_em_step(x, f, g, score, dt, torch::zeros_like(x));
        EXPECT_LT(rel_diff(mean, want.mean), 1e-12) << "t = " << t << ", dt = " << dt;
        // The tolerance rejects the wrong sign of g² s.
        const auto wrong_sign = x - (f + g * g * score) * dt + g * std::sqrt(dt) * z;
        EXPECT_GT(rel_diff(wrong_sign, want.x), 1e-6) << "t = " << t << ", dt = " << dt;
      }
    }
  }
}

// Sampling a 1D Gaussian N(1.5, 0.5²) back with your step: under the VP SDE its
// marginal is N(a μ, a² σ₀² + s²), whose score −(x − a μ)/(a² σ₀² + s²) is
// exact. 20 000 chains from the prior N(0, 1) at t = 1, 500 steps down to
// t = 10⁻³: the mean and std must be the data's, within 4 standard errors plus
// 1.5% of σ₀ for the discretisation's bias (the scheme's mean and variance
// recursion, which is linear here, gives 0.34% and 0.16% of σ₀).
// Catches: every wrong drift (+ g² s runs away from the data), the missing √dt
// (the chains collapse onto the mean).
TEST(Exercise05_5, SamplesAGaussianBack) {
  const double mu = 1.5, sigma0 = 0.5, t_end = 1e-3;
  const int64_t n = 20000, steps = 500;
  const sde::VP vp;
  auto gen = generator(41);
  auto x = dm::randn({n, 1}, gen, dm::f64());
  const auto grid = dm::uniform_grid(1.0, t_end, steps);
  for (int64_t i = 0; i < steps; ++i) {
    const double t = grid[i], dt = t - grid[i + 1];
    const auto c = vp.at(t);
    const auto score = -(x - c.a * mu) / (c.a * c.a * sigma0 * sigma0 + c.s * c.s);
    x = ex05::reverse_em_step(x, vp.drift(x, t), vp.diffusion(t), score, dt,
                              dm::randn_like(x, gen));
    ASSERT_EQ(x.sizes(), (std::vector<int64_t>{n, 1}));
  }
  const double se_mean = sigma0 / std::sqrt(double(n)), se_std = sigma0 / std::sqrt(2.0 * n);
  EXPECT_NEAR(x.mean().item<double>(), mu, 4 * se_mean + 0.015 * sigma0);
  EXPECT_NEAR(x.std().item<double>(), sigma0, 4 * se_std + 0.015 * sigma0);
}

// Data N(0, 1) under the Ornstein–Uhlenbeck process (β = 2: f = −x, g = √2)
// stays N(0, 1), so score = −x and the reverse drift is f − g² s = −x + 2x = x:
//   x' = x − x dt + √2 √dt z = 0.98 x + 0.2 z   at dt = 0.02.
// x = (2, −1, 0.5), z = (0.5, 0, −1): (2.06, −0.98, 0.29). The wrong sign gives
// 1.06 x + 0.2 z, the step forwards 1.02 x + 0.2 z.
TEST(Exercise05_5, HandComputedStep) {
  const auto x = tensor({2.0, -1.0, 0.5}, {3, 1});
  const auto z = tensor({0.5, 0.0, -1.0}, {3, 1});
  const auto got = ex05::reverse_em_step(x, -x, std::sqrt(2.0), -x, 0.02, z);
  ASSERT_EQ(got.sizes(), x.sizes());
  EXPECT_NEAR(got[0][0].item<double>(), 2.06, 1e-14);
  EXPECT_NEAR(got[1][0].item<double>(), -0.98, 1e-14);
  EXPECT_NEAR(got[2][0].item<double>(), 0.29, 1e-14);
}

}  // namespace
