// tests/exercises/test_02_score_matching.cpp — chapter 02's exercises
// (exercises.hpp) against exact answers: the dm::losses functions, values
// worked out by hand on fields whose Jacobians are known, and gradients in θ
// computed on paper.
//
// The same file is built against solutions.cpp (must pass), against the stubs
// in exercises.cpp (every test must fail; see cmake/DmExercises.cmake) and, with
// -DDM_EXERCISES=mine, against the learner's answers. The comments name the
// mistakes each test catches. Tolerances: float64 sums of O(1) terms (1e-12).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "dm/base/rng.hpp"
#include "dm/methods/losses.hpp"
#include "exercises.hpp"
#include "test_tensors.hpp"

namespace {

using dm_test::tensor;
using torch::Tensor;

double value(const Tensor& t) { return t.item<double>(); }

// s(x) = A x + tanh(x) ⊙ c: a non-symmetric Jacobian A + diag(c ⊙ (1 − tanh² x)).
struct Field {
  Tensor A = tensor({0.5, -1.0, 2.0, 0.3}, {2, 2});
  Tensor c = tensor({1.5, -0.5}, {2});
  Tensor operator()(const Tensor& x) const { return x.matmul(A.t()) + torch::tanh(x) * c; }
  Tensor nu_J_nu(const Tensor& x, const Tensor& nu) const {  // νᵀ J ν per row, by hand
    const auto jd = c * (1 - torch::tanh(x).pow(2));
    return (nu.matmul(A.t()) * nu).sum(1) + (jd * nu * nu).sum(1);
  }
};

Tensor points(int64_t n, uint64_t seed) {
  auto g = dm::make_generator(seed);
  return dm::randn({n, 2}, g, torch::kFloat64);
}

TEST(Exercise02_1, MatchesTheLibraryAndTheFormula) {
  Field f;
  const auto x = points(7, 1), target = points(7, 2);
  const auto got = ex02::explicit_sm([&](const Tensor& v) { return f(v); }, x, target);
  EXPECT_NEAR(value(got),
              value(dm::losses::explicit_sm([&](const Tensor& v) { return f(v); }, x, target)),
              1e-12);
  // Sum over dimensions, mean over rows — not the mean over every entry (half as big).
  EXPECT_NEAR(value(got), value((f(x) - target).pow(2).sum() / 7), 1e-12);
}

TEST(Exercise02_1, HandComputed) {
  // s(x) = x; two rows: ‖(1,2) − (0,0)‖² = 5, ‖(3,−1) − (1,1)‖² = 8 → mean 6.5.
  const auto x = tensor({1, 2, 3, -1}, {2, 2}), target = tensor({0, 0, 1, 1}, {2, 2});
  EXPECT_NEAR(value(ex02::explicit_sm([](const Tensor& v) { return v; }, x, target)), 6.5, 1e-12);
}

TEST(Exercise02_2, IsTheQuadraticFormOfTheJacobian) {
  Field f;
  const auto x = points(9, 3), nu = points(9, 4);
  const auto got = ex02::directional_derivative([&](const Tensor& v) { return f(v); }, x, nu);
  ASSERT_EQ(got.sizes(), torch::IntArrayRef({9})) << "one number per row";
  // A transposed Jacobian would give the same νᵀJν — but not for a per-row sum
  // mixed across rows, or a gradient taken with respect to x instead of h.
  EXPECT_LT((got - f.nu_J_nu(x, nu)).abs().max().item<double>(), 1e-12);
}

TEST(Exercise02_2, StaysDifferentiableInTheParameters) {
  // s_w(x) = w · x², elementwise: νᵀJν = 2w Σ_i x_i ν_i², so d/dw of the mean is 2 mean_n Σ_i x_i ν_i².
  auto w = torch::tensor(1.7, torch::kFloat64).requires_grad_(true);
  const auto x = points(6, 5), nu = points(6, 6);
  const auto d = ex02::directional_derivative([&](const Tensor& v) { return w * v.pow(2); }, x, nu);
  ASSERT_TRUE(d.requires_grad()) << "create_graph = true: the optimiser differentiates through it";
  d.mean().backward();
  EXPECT_NEAR(value(w.grad()), value(2 * (x * nu * nu).sum(1).mean()), 1e-12);
}

TEST(Exercise02_3, MatchesTheFormulaAndTheLibrary) {
  Field f;
  const auto x = points(11, 7);
  const auto nu = points(11, 8).sign();  // Rademacher probes
  const auto got = ex02::sliced_sm([&](const Tensor& v) { return f(v); }, x, nu);
  const auto expected = (f(x).pow(2).sum(1) + 2 * f.nu_J_nu(x, nu)).mean();
  EXPECT_NEAR(value(got), value(expected), 1e-12)
      << "‖s‖² + 2 νᵀJν (a missing factor 2 fails here)";
  // The library's own SSM with Rademacher probes equals it for a diagonal Jacobian, whatever ν.
  auto diag = [](const Tensor& v) { return torch::sin(v); };
  auto gen = dm::make_generator(15);  // the library draws its own probes
  EXPECT_NEAR(value(ex02::sliced_sm(diag, x, nu)), value(dm::losses::sliced_sm(diag, x, gen)),
              1e-12);
}

TEST(Exercise02_3, GradientInTheParametersIsRight) {
  // s_w(x) = −w x: ‖s‖² = w²‖x‖², νᵀJν = −w‖ν‖². L(w) = w² mean‖x‖² − 2w mean‖ν‖²,
  // dL/dw = 2w mean‖x‖² − 2 mean‖ν‖² (zero at the true score of N(0, I) when ν is Rademacher).
  auto w = torch::tensor(0.6, torch::kFloat64).requires_grad_(true);
  const auto x = points(8, 9), nu = points(8, 10);
  ex02::sliced_sm([&](const Tensor& v) { return -w * v; }, x, nu).backward();
  const double expected =
      2 * 0.6 * value(x.pow(2).sum(1).mean()) - 2 * value(nu.pow(2).sum(1).mean());
  ASSERT_TRUE(w.grad().defined());
  EXPECT_NEAR(value(w.grad()), expected, 1e-12);
}

TEST(Exercise02_4, MatchesTheLibraryAndTheFormula) {
  Field f;
  const double sigma = 0.3;
  const auto x = points(10, 11), eps = points(10, 12);
  auto net = [&](const Tensor& v) { return f(v); };
  const auto got = ex02::denoising_eps(net, x, sigma, eps);
  EXPECT_NEAR(value(got), value(dm::losses::denoising_eps(net, x, sigma, eps)), 1e-12);
  EXPECT_NEAR(value(got), value((f(x + sigma * eps) - eps).pow(2).sum(1).mean()), 1e-12);
}

TEST(Exercise02_4, PerfectNoisePredictorScoresZero) {
  // ε_θ(x̃) = (x̃ − x)/σ recovers ε exactly when x is known: the loss must be 0
  // (it is not if x̃ = x + ε, x + σ²ε, or the target is −ε/σ).
  const double sigma = 0.25;
  const auto x = points(5, 13), eps = points(5, 14);
  auto oracle = [&](const Tensor& v) { return (v - x) / sigma; };
  EXPECT_NEAR(value(ex02::denoising_eps(oracle, x, sigma, eps)), 0.0, 1e-12);
}

}  // namespace
