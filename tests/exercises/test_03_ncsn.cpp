// tests/exercises/test_03_ncsn.cpp — chapter 03's exercises (exercises.hpp)
// against exact answers: the dm::ncsn functions run with the same random
// numbers, values worked out by hand, and closed forms of linear recursions.
//
// The same file is built against solutions.cpp (must pass), against the stubs
// in exercises.cpp (every test must fail; see cmake/DmExercises.cmake) and, with
// -DDM_EXERCISES=mine, against the learner's answers. The comments name the
// mistakes each test catches. Tolerances: float64 sums of O(1) terms (1e-12).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <memory>
#include <vector>

#include "dm/base/rng.hpp"
#include "dm/data/toy.hpp"
#include "dm/diffusion/param.hpp"
#include "dm/diffusion/process.hpp"
#include "dm/methods/ncsn.hpp"
#include "dm/nn/net_model.hpp"
#include "exercises.hpp"
#include "test_tensors.hpp"

namespace {

using dm_test::tensor;
using torch::Tensor;

double value(const Tensor& t) { return t.item<double>(); }
using dm_test::generator;
using dm_test::max_abs_diff;

// ε_θ(x̃, σ) = x̃ ⊙ w + σ c: depends on both inputs, differentiable in w.
struct Net {
  Tensor w = tensor({0.7, -0.4}, {2});
  Tensor c = tensor({0.3, 1.1}, {2});
  Tensor operator()(const Tensor& x, const Tensor& sigma) const {
    return x * w + sigma.view({-1, 1}) * c;
  }
};

// The library's loss takes a model: the same net behind the seam, as an ε-model
// whose time is σ itself (identity label, no input scaling) on NCSN's process.
TEST(Exercise03_1, MatchesTheLibrary) {
  Net net;
  auto g = generator(1);
  const auto x = dm::randn({6, 2}, g, torch::kFloat64), eps = dm::randn({6, 2}, g, torch::kFloat64);
  // A different level on every row.
  const auto sigma = tensor({0.01, 0.1, 0.5, 1.0, 3.0, 50.0}, {6});
  const auto got =
      ex03::ncsn_loss([&](const Tensor& a, const Tensor& s) { return net(a, s); }, x, sigma, eps);
  const auto sigmas = dm::ncsn::geometric(50.0, 0.01, 6);
  dm::nn::NetSpec spec;  // ε, label = t = σ, input as it is
  dm::nn::NetModel model(
      dm::nn::NetModel::FromFunction{},
      [&](const Tensor& a, const Tensor& label, const dm::Condition&) { return net(a, label); },
      spec, std::make_shared<dm::SigmaVE>(dm::ncsn::process(sigmas)));
  const auto want = dm::ncsn::loss_at(model, sigmas, x, sigma, eps);
  EXPECT_NEAR(value(got), value(want), 1e-12);
}

TEST(Exercise03_1, HandComputedPerRowLevels) {
  // ε_θ(x̃, σ) = x̃/σ: then ε_θ − ε = x/σ row by row. x = [(1, 2), (3, −1)],
  // σ = (1, 2): (1 + 4 + 2.25 + 0.25)/4 = 1.875. Scaling the columns by σ
  // instead of the rows gives 1.398; summing over dimensions gives 3.75.
  const auto x = tensor({1.0, 2.0, 3.0, -1.0}, {2, 2}), sigma = tensor({1.0, 2.0}, {2});
  const auto eps = tensor({0.3, -0.2, 0.9, 0.5}, {2, 2});
  auto net = [](const Tensor& xn, const Tensor& s) {
    EXPECT_EQ(s.sizes(), (std::vector<int64_t>{2}));  // the net gets the level of each row
    return xn / s.view({-1, 1});
  };
  EXPECT_NEAR(value(ex03::ncsn_loss(net, x, sigma, eps)), 1.875, 1e-12);
}

TEST(Exercise03_1, GradientInTheParameters) {
  // ε_θ(x̃) = w x̃ with a scalar w: dL/dw = mean(2 (w x̃ − ε) x̃).
  auto w = torch::tensor(0.6, torch::kFloat64).requires_grad_(true);
  const auto x = tensor({1.0, -2.0, 0.5, 0.25}, {2, 2}),
             eps = tensor({0.1, 0.2, -0.3, 0.4}, {2, 2});
  const auto sigma = tensor({0.5, 2.0}, {2});
  ex03::ncsn_loss([&](const Tensor& xn, const Tensor&) { return w * xn; }, x, sigma, eps)
      .backward();
  ASSERT_TRUE(w.grad().defined()) << "the loss must stay differentiable in θ";
  const auto xt = x + sigma.view({-1, 1}) * eps;
  EXPECT_NEAR(value(w.grad()), value((2 * (0.6 * xt - eps) * xt).mean()), 1e-12);
}

TEST(Exercise03_2, MatchesTheLibraryWithTheSameNoise) {
  // One level of dm::ncsn::annealed_langevin (α = ε when there is one level),
  // the exact score of a mixture blurred by σ, the same random numbers.
  auto mixture = dm::toy::GaussianMixture::isotropic(
      tensor({0.8, 0.2}, {2}), tensor({-3.0, 0.0, 3.0, 0.0}, {2, 2}), tensor({0.5, 0.5}, {2}));
  const double sigma = 0.7, alpha = 0.05;
  const dm::SigmaVE ve(sigma);  // x + σ z: NCSN's process, time = σ
  dm::toy::PerturbedMixture model(mixture, ve, dm::Prediction::score);
  const int64_t T = 7;
  auto g2 = generator(2);
  auto x0 = dm::randn({5, 2}, g2, torch::kFloat64);
  dm::ncsn::AnnealedOptions o;
  o.steps_per_level = T;
  o.step_lr = alpha;
  auto library_gen = generator(3);
  const auto want =
      dm::ncsn::annealed_langevin(model, x0, dm::ncsn::geometric(sigma, sigma, 1), library_gen, o);
  auto g = generator(3);
  std::vector<Tensor> zs;
  for (int64_t k = 0; k < T; ++k) zs.push_back(dm::randn({5, 2}, g, torch::kFloat64));
  const auto got = ex03::annealed_level(
      [&](const Tensor& x, double s) {
        return dm::predict_as(dm::Prediction::score, model, ve, x, s);
      },
      x0, sigma, alpha, torch::stack(zs));
  EXPECT_LT(max_abs_diff(got, want), 1e-12);
}

TEST(Exercise03_2, HandComputedDriftAndNoise) {
  const auto x0 = tensor({1.0, -2.0}, {1, 2});
  const double sigma = 0.5, alpha = 0.1;
  // No noise, score −x/σ²: each step multiplies by 1 − α/(2σ²) = 0.8 (forgetting ½ gives 0.6).
  auto linear = [](const Tensor& x, double s) { return -x / (s * s); };
  EXPECT_LT(max_abs_diff(ex03::annealed_level(linear, x0, sigma, alpha,
                                              torch::zeros({3, 1, 2}, torch::kFloat64)),
                         x0 * std::pow(0.8, 3)),
            1e-12);
  // No score, unit noise: each step adds √α (not α, not √(2α)); all T noises are used.
  auto zero = [](const Tensor& x, double) { return torch::zeros_like(x); };
  EXPECT_LT(max_abs_diff(ex03::annealed_level(zero, x0, sigma, alpha,
                                              torch::ones({4, 1, 2}, torch::kFloat64)),
                         x0 + 4 * std::sqrt(alpha)),
            1e-12);
}

TEST(Exercise03_3, HandComputedAndClosedForm) {
  // No steps: where the level starts.
  EXPECT_NEAR(ex03::variance_ratio_after(0.5, 1.2, 0), 1.44, 1e-12);
  EXPECT_NEAR(ex03::variance_ratio_after(0.5, 1.2, 1), 0.75 * 0.75 * 1.44 + 0.5, 1e-12);
  // Closed form of the linear recursion: r_T = (1 − a/2)^{2T} (γ² − r*) + r*, r* = 1/(1 − a/4).
  const double a = 0.2, gamma = 1.09, fixed = 1 / (1 - a / 4);
  for (int T : {2, 10, 57}) {
    EXPECT_NEAR(ex03::variance_ratio_after(a, gamma, T),
                std::pow(1 - a / 2, 2 * T) * (gamma * gamma - fixed) + fixed, 1e-12)
        << "T = " << T;
    EXPECT_NEAR(ex03::variance_ratio_after(a, gamma, T),
                dm::ncsn::variance_ratio_after(a, gamma, T), 1e-12);
  }
}

TEST(Exercise03_3, AgreesWithSimulatedChains) {
  // Exercise 3.2's sampler on N(0, γ²σ²) chains with the score −x/σ²: the
  // sample variance after T steps is r_T σ² within its standard error.
  const double sigma = 0.3, gamma = 1.2, a = 0.3;
  const int T = 6;
  const int64_t n = 200000;
  auto g = generator(4);
  auto x = gamma * sigma * dm::randn({n, 1}, g, torch::kFloat64);
  auto z = dm::randn({T, n, 1}, g, torch::kFloat64);
  x = ex03::annealed_level([](const Tensor& v, double s) { return -v / (s * s); }, x, sigma,
                           a * sigma * sigma, z);
  const double r = ex03::variance_ratio_after(a, gamma, T);
  const double se = r * std::sqrt(2.0 / double(n));  // std of a Gaussian sample variance, relative
  EXPECT_NEAR(x.var().item<double>() / (sigma * sigma), r, 4 * se);
}

// The library's chain: dm::forward_kernel on SigmaVE from σ_{k−1} to σ_k
// (σ_0 = 0), which draws one z shaped like x per step.
TEST(Exercise03_4, MatchesTheLibraryWithTheSameNoise) {
  const std::vector<double> levels = {0.1, 0.4, 1.5, 6.0};
  auto g5 = generator(5);
  const auto x0 = dm::randn({5, 3}, g5, torch::kFloat64);
  const dm::SigmaVE ve(levels.back());
  auto library_gen = generator(6);
  std::vector<Tensor> want = {x0};  // [x0, x1, …, xK]
  double previous = 0.0;
  for (double level : levels) {
    want.push_back(dm::forward_kernel(ve, want.back(), previous, level, library_gen));
    previous = level;
  }
  auto g = generator(6);
  std::vector<Tensor> zs;
  for (size_t k = 0; k < levels.size(); ++k) zs.push_back(dm::randn({5, 3}, g, torch::kFloat64));
  const auto got = ex03::ve_chain(x0, levels, torch::stack(zs));
  ASSERT_EQ(got.size(), levels.size());
  for (size_t k = 0; k < levels.size(); ++k)
    EXPECT_LT(max_abs_diff(got[k], want[k + 1]), 1e-12) << "level " << k;
}

TEST(Exercise03_4, HandComputed) {
  // x_0 = 0, z = 1: x_1 = √(3² − 0) = 3, x_2 = 3 + √(5² − 3²) = 7 (not 3 + 5 = 8, not 3 + √(5 − 3)).
  const auto got = ex03::ve_chain(torch::zeros({1, 1}, torch::kFloat64), {3.0, 5.0},
                                  torch::ones({2, 1, 1}, torch::kFloat64));
  ASSERT_EQ(got.size(), 2u);
  EXPECT_NEAR(value(got[0].squeeze()), 3.0, 1e-12);
  EXPECT_NEAR(value(got[1].squeeze()), 7.0, 1e-12);
}

}  // namespace
