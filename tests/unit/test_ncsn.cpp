// tests/unit/test_ncsn.cpp — dm/methods/ncsn.hpp against exact answers.
//
//   * the geometric schedule, the network label (nn::TimeLabel::log_sigma),
//     the loss and annealed Langevin equal their formulas written out here
//     with the same noise;
//   * the loss of the exact ε of a perturbed mixture is lower than that of a
//     wrong one, and its ε-form equals σ² times the score form;
//   * annealed Langevin driven by the exact perturbed-mixture score reaches the
//     mixture — mode weights included — within the noise floor, where plain
//     Langevin from the same start with the same number of steps does not;
//   * the VE chain x_k = x_{k−1} + √(σ_k² − σ_{k−1}²) z (SigmaVE's forward
//     kernel) has the marginals x_0 + σ_k z (variances within 4 standard errors).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <utility>
#include <vector>

#include "dm/base/core.hpp"
#include "dm/base/rng.hpp"
#include "dm/data/metrics.hpp"
#include "dm/data/toy.hpp"
#include "dm/diffusion/param.hpp"
#include "dm/diffusion/process.hpp"
#include "dm/diffusion/step.hpp"
#include "dm/methods/langevin.hpp"
#include "dm/methods/ncsn.hpp"
#include "dm/nn/net_model.hpp"
#include "test_tensors.hpp"

namespace {

using dm::toy::GaussianMixture;
using dm::toy::PerturbedMixture;
using dm_test::tensor;

using dm_test::generator;

// The exact model of a mixture blurred by N(0, σ²I) at every σ: t = σ (SigmaVE).
PerturbedMixture ve_model(const GaussianMixture& p, dm::Prediction prediction,
                          double sigma_max = 10.0) {
  return PerturbedMixture(p, dm::SigmaVE(sigma_max), prediction);
}

// 0.8 at x_1 = −3, 0.2 at +3, std 0.5: separated modes with unequal weights.
GaussianMixture unequal_modes() {
  return GaussianMixture::isotropic(tensor({0.8, 0.2}, {2}), tensor({-3, 0, 3, 0}, {2, 2}),
                                    torch::full({2}, 0.5, torch::kFloat64));
}

double left_fraction(const torch::Tensor& x) {
  return x.select(1, 0).lt(0).to(torch::kFloat64).mean().item<double>();
}

TEST(Ncsn, GeometricSchedule) {
  const auto s = dm::ncsn::geometric(10.0, 0.01, 4);
  ASSERT_EQ(s.levels(), 4);
  EXPECT_DOUBLE_EQ(s.max(), 10.0);
  EXPECT_DOUBLE_EQ(s.min(), 0.01);
  for (int i = 1; i < 4; ++i) EXPECT_NEAR(s.values[i] / s.values[i - 1], 0.1, 1e-12);
  EXPECT_EQ(dm::ncsn::geometric(2.0, 2.0, 1).values, std::vector<double>{2.0});
  EXPECT_THROW(dm::ncsn::geometric(1.0, 0.0, 10), dm::Error);
  EXPECT_THROW(dm::ncsn::geometric(0.1, 1.0, 10), dm::Error);
  EXPECT_THROW(dm::ncsn::geometric(1.0, 0.1, 0), dm::Error);
}

TEST(Ncsn, NetLabelSpansTheEmbeddingRange) {
  const auto s = dm::ncsn::geometric(50.0, 0.01, 10);
  const auto process = dm::ncsn::process(s);
  const auto labels =
      dm::nn::TimeLabel::log_sigma(s.max(), s.min())(s.tensor(), &process, dm::f64());
  EXPECT_NEAR(labels[0].item<double>(), 0.0, 1e-9);
  EXPECT_NEAR(labels[9].item<double>(), 999.0, 1e-9);
  for (int i = 1; i < 10; ++i) EXPECT_NEAR((labels[i] - labels[i - 1]).item<double>(), 111.0, 1e-9);
}

TEST(Ncsn, StepSizeIsEpsTimesSigmaRatioSquared) {
  const auto s = dm::ncsn::geometric(1.0, 0.01, 3);
  EXPECT_NEAR(dm::ncsn::step_size(s, 0, 2e-5), 2e-5 * 1e4, 1e-12);
  EXPECT_NEAR(dm::ncsn::step_size(s, 1, 2e-5), 2e-5 * 1e2, 1e-12);
  EXPECT_NEAR(dm::ncsn::step_size(s, 2, 2e-5), 2e-5, 1e-15);
}

// The loss written out: x̃ = x + σ_i ε, mean of (ε_θ(x̃) − ε)²; and σ² times
// the score form ‖s + ε/σ‖² with s = −ε_θ/σ, per row.
TEST(Ncsn, LossIsTheSigmaWeightedDsmLoss) {
  auto p = unequal_modes();
  auto exact = ve_model(p, dm::Prediction::eps);
  const auto sigmas = dm::ncsn::geometric(5.0, 0.1, 8);
  auto gen = generator(2);
  const auto x0 = p.sample(64, gen);
  const auto sigma = torch::linspace(0.1, 3.0, 64, torch::kFloat64);
  const auto eps = dm::randn({64, 2}, gen, torch::kFloat64);
  const auto x_noisy = x0 + sigma.unsqueeze(1) * eps;
  const auto by_hand = (exact.predict(x_noisy, sigma) - eps).pow(2).mean();
  EXPECT_NEAR(dm::ncsn::loss_at(exact, sigmas, x0, sigma, eps).item<double>(),
              by_hand.item<double>(), 1e-12);
  const auto score = exact.predict(x_noisy, sigma) / -sigma.unsqueeze(1);
  const auto score_form =
      (sigma.pow(2) * (score + eps / sigma.unsqueeze(1)).pow(2).sum(1)).mean() / 2.0;
  EXPECT_NEAR(score_form.item<double>(), by_hand.item<double>(), 1e-10);

  // The random-level version draws i, then ε, from the generator, reproducibly.
  auto g1 = generator(3), g2 = generator(3), g3 = generator(3);
  EXPECT_EQ(dm::ncsn::loss(exact, sigmas, x0, g1).item<double>(),
            dm::ncsn::loss(exact, sigmas, x0, g2).item<double>());
  const auto index = dm::randint(sigmas.levels(), {64}, g3, torch::kLong);
  const auto level = sigmas.tensor().index_select(0, index);
  const auto eps3 = dm::randn({64, 2}, g3, torch::kFloat64);
  auto g4 = generator(3);
  EXPECT_NEAR(dm::ncsn::loss(exact, sigmas, x0, g4).item<double>(),
              dm::ncsn::loss_at(exact, sigmas, x0, level, eps3).item<double>(), 1e-15);
}

// The exact ε minimises the expected loss: a slightly wrong one (the ε of the
// mixture blurred at the wrong σ) scores higher, by many standard errors.
TEST(Ncsn, ExactEpsHasTheLowestLoss) {
  auto p = unequal_modes();
  auto exact = ve_model(p, dm::Prediction::eps);
  const int64_t n = 20000;
  auto gen = generator(4);
  const auto x0 = p.sample(n, gen);
  const auto sigma = torch::full({n}, 1.0, torch::kFloat64);
  const auto eps = dm::randn({n, 2}, gen, torch::kFloat64);
  const auto x_noisy = x0 + eps;
  const auto right = (exact.predict(x_noisy, sigma) - eps).pow(2).sum(1);
  const auto wrong = (exact.predict(x_noisy, 1.5 * sigma) - eps).pow(2).sum(1);
  const auto diff = wrong - right;
  const double se = diff.std().item<double>() / std::sqrt(double(n));
  EXPECT_GT(diff.mean().item<double>(), 6 * se);
}

// Annealed Langevin equals the update x + (α_i/2) s(x, σ_i) + √α_i z written
// out with the same z, the final Tweedie step included. One step of the run
// per level (σ_1, σ_2, σ_3, then the data end 0), 4 evaluations each, + 1 for
// the denoising step.
TEST(Ncsn, AnnealedLangevinIsTheFormula) {
  auto p = unequal_modes();
  auto exact = ve_model(p, dm::Prediction::eps);
  const auto sigmas = dm::ncsn::geometric(2.0, 0.2, 3);
  auto g0 = generator(6);
  const auto x0 = dm::randn({16, 2}, g0, torch::kFloat64);
  dm::ncsn::AnnealedOptions o;
  o.steps_per_level = 4;
  o.step_lr = 0.01;
  o.denoise = true;
  int calls = 0;
  int64_t nfe = 0;
  std::vector<double> levels;
  dm::RunOptions ro;
  ro.callback = [&](const dm::StepEvent& e) {
    ++calls;
    nfe = e.nfe;
    levels.push_back(e.t);
  };
  auto g7 = generator(7);
  const auto x = dm::ncsn::annealed_langevin(exact, x0, sigmas, g7, o, ro);
  EXPECT_EQ(calls, 3);
  EXPECT_EQ(levels, sigmas.values);
  EXPECT_EQ(nfe, 13);

  auto gen = generator(7);
  auto score_model = ve_model(p, dm::Prediction::score);
  auto y = x0.clone();
  for (int i = 0; i < 3; ++i) {
    const double alpha = 0.01 * std::pow(sigmas.values[i] / 0.2, 2);
    for (int k = 0; k < 4; ++k) {
      const auto z = dm::randn({16, 2}, gen, torch::kFloat64);
      y = y +
          alpha / 2 * score_model.predict(y, torch::full({16}, sigmas.values[i], torch::kFloat64)) +
          std::sqrt(alpha) * z;
    }
  }
  y = y + 0.04 * score_model.predict(y, torch::full({16}, 0.2, torch::kFloat64));
  EXPECT_LT((x - y).abs().max().item<double>(), 1e-10);

  o.steps_per_level = 0;
  auto g8 = generator(8);
  EXPECT_THROW(dm::ncsn::annealed_langevin(exact, x0, sigmas, g8, o), dm::Error);
}

// The fix for slow mixing, measured. Both samplers start from N(0, σ_1²I) and
// take 1000 steps with the exact score. Annealed: 10 levels σ = 6 … 0.1, 100
// steps each, ε = 0.01 (α_i = σ_i²·ε/σ_L² = σ_i²: large, mixing steps at large
// σ, α_L = 0.01 at the end). Plain: Langevin on p_{σ_L} with Δt = 0.05.
// Tolerances: the left-mode weight within 4 binomial standard errors; the
// energy distance to exact samples within the floor's mean + 4 std.
TEST(Ncsn, AnnealingGetsTheModeWeightsRightPlainLangevinDoesNot) {
  auto gen = generator(11);
  auto p = unequal_modes();
  auto exact = ve_model(p, dm::Prediction::score);
  const auto sigmas = dm::ncsn::geometric(6.0, 0.1, 10);
  const auto target = p.perturb_ve(0.1);
  const double exact_left = left_fraction(target.sample(200000, gen));
  const int64_t n = 2000;
  const auto x0 = sigmas.max() * dm::randn({n, 2}, gen, torch::kFloat64);
  dm::ncsn::AnnealedOptions o;
  o.steps_per_level = 100;
  o.step_lr = 0.01;
  const auto annealed = dm::ncsn::annealed_langevin(exact, x0, sigmas, gen, o);
  auto last_level = target;
  const auto plain = dm::langevin::ula(last_level, x0, 0.05, 1000, gen);

  const double se = std::sqrt(exact_left * (1 - exact_left) / double(n));
  EXPECT_NEAR(left_fraction(annealed), exact_left, 4 * se);
  EXPECT_GT(std::abs(left_fraction(plain) - exact_left), 10 * se);
  const auto floor = dm::metrics::noise_floor([&](int64_t m) { return target.sample(m, gen); }, n,
                                              dm::metrics::energy_distance);
  EXPECT_LT(dm::metrics::energy_distance(annealed, target.sample(n, gen)),
            floor.mean + 4 * floor.std);
  EXPECT_GT(dm::metrics::energy_distance(plain, target.sample(n, gen)),
            floor.mean + 10 * floor.std);
}

// NCSN's noising as a Markov chain (SigmaVE's forward kernel between ascending
// levels, from t = 0) reproduces the marginals x_0 + σ_k z: from x_0 = 0 the
// variance at level k is σ_k² (standard error σ_k²·√(2/n)), and the increments
// are uncorrelated with the past.
TEST(Ncsn, VeChainHasTheMarginalsOfOneShotNoising) {
  const int64_t n = 40000;
  const std::vector<double> levels = {0.1, 0.5, 1.0, 3.0};
  const dm::SigmaVE ve(3.0);
  auto gen = generator(5);
  std::vector<torch::Tensor> xs = {torch::zeros({n, 1}, torch::kFloat64)};
  double previous = 0.0;
  for (double sigma : levels) {
    xs.push_back(dm::forward_kernel(ve, xs.back(), previous, sigma, gen));
    previous = sigma;
  }
  ASSERT_EQ(xs.size(), 5u);
  for (size_t k = 0; k < levels.size(); ++k) {
    const double var = xs[k + 1].var().item<double>(), s2 = levels[k] * levels[k];
    EXPECT_NEAR(var, s2, 4 * s2 * std::sqrt(2.0 / double(n))) << "level " << k;
  }
  const auto increment = xs[4] - xs[3];
  const double corr = (increment * xs[3]).mean().item<double>() /
                      (increment.std().item<double>() * xs[3].std().item<double>());
  EXPECT_LT(std::abs(corr), 4 / std::sqrt(double(n)));
  EXPECT_THROW(dm::forward_kernel(ve, torch::zeros({2, 1}), 1.0, 0.5, gen),
               dm::Error);  // levels must ascend
}

TEST(Ncsn, PredictAsConvertsEpsModels) {
  auto p = unequal_modes();
  auto eps_model = ve_model(p, dm::Prediction::eps);
  auto score_model = ve_model(p, dm::Prediction::score);
  auto gen = generator(9);
  const auto x = dm::randn({32, 2}, gen, torch::kFloat64);
  const dm::SigmaVE ve(10.0);
  const auto score_of = [&](dm::Model& m) {
    return dm::predict_as(dm::Prediction::score, m, ve, x, 0.7);
  };
  EXPECT_LT((score_of(eps_model) - score_of(score_model)).abs().max().item<double>(), 1e-12);
  EXPECT_LT((score_of(score_model) - p.perturb_ve(0.7).score(x)).abs().max().item<double>(), 1e-12);
}

}  // namespace

// The step rule: the recursion has the closed form r_T = (1 − a/2)^{2T}(γ² − r*) + r*,
// r* = 1/(1 − a/4); the chosen a minimises |r_T − 1| (no better value 2% either
// side, i.e. beyond the 1% grid); and for large T it approaches ln(4T(γ² − 1))/T,
// the minimiser of the small-a approximation e^{−aT}(γ² − 1) + a/4.
TEST(Ncsn, StepRuleMinimisesTheEndOfLevelVarianceError) {
  for (double a : {0.05, 0.2, 0.7})
    for (int64_t T : {1, 10, 100}) {
      const double fixed = 1 / (1 - a / 4);
      EXPECT_NEAR(dm::ncsn::variance_ratio_after(a, 1.09, T),
                  std::pow(1 - a / 2, 2 * T) * (1.09 * 1.09 - fixed) + fixed, 1e-12);
    }
  for (auto [gamma, T] : {std::pair{1.09, int64_t(10)}, std::pair{1.566, int64_t(5)},
                          std::pair{1.09, int64_t(200)}}) {
    const double a = dm::ncsn::step_ratio_for(gamma, T);
    const double err = std::abs(dm::ncsn::variance_ratio_after(a, gamma, T) - 1);
    EXPECT_LE(err, std::abs(dm::ncsn::variance_ratio_after(a * 1.02, gamma, T) - 1))
        << gamma << " " << T;
    EXPECT_LE(err, std::abs(dm::ncsn::variance_ratio_after(a / 1.02, gamma, T) - 1))
        << gamma << " " << T;
  }
  const double a200 = dm::ncsn::step_ratio_for(1.09, 200);
  EXPECT_NEAR(a200, std::log(4 * 200 * (1.09 * 1.09 - 1)) / 200, 0.1 * a200);
  const auto sigmas = dm::ncsn::geometric(50, 0.01, 100);
  EXPECT_DOUBLE_EQ(dm::ncsn::step_lr_for(sigmas, 10),
                   dm::ncsn::step_ratio_for(sigmas.values[0] / sigmas.values[1], 10) * 1e-4);
}
