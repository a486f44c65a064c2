// The ODE solvers against closed-form solutions: the observed orders of Euler
// (1), Heun (2) and Dormand–Prince (5, fixed steps), the adaptive solver's
// tolerance honoured, its step counts, backward integration, bad input.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "dm/base/core.hpp"
#include "dm/base/ode.hpp"

namespace {

// dx/dt = λ x (λ [N]): x(t) = x0 e^{λ t}, one decay rate per row.
dm::ode::Field linear(const torch::Tensor& lambda) {
  return [lambda](double, const torch::Tensor& x) { return lambda.unsqueeze(1) * x; };
}

// The harmonic oscillator (x, v)' = (v, −x): a rotation by t.
torch::Tensor oscillator(double, const torch::Tensor& z) {
  return torch::stack({z.select(1, 1), -z.select(1, 0)}, 1);
}

double max_error_oscillator(const torch::Tensor& z, double t) {
  const auto exact = torch::tensor({{std::cos(t), -std::sin(t)}}, torch::kFloat64);  // from (1, 0)
  return (z - exact).abs().max().item<double>();
}

// log2 of the error ratio between n and 2n steps: the observed order.
double observed_order(const std::function<dm::ode::Result(const std::vector<double>&)>& solve,
                      int64_t n, double t1) {
  const double e1 = max_error_oscillator(solve(dm::ode::uniform_grid(0, t1, n)).x, t1);
  const double e2 = max_error_oscillator(solve(dm::ode::uniform_grid(0, t1, 2 * n)).x, t1);
  return std::log2(e1 / e2);
}

const torch::Tensor kStart = torch::tensor({{1.0, 0.0}}, torch::kFloat64);

}  // namespace

TEST(Ode, EulerAndHeunConvergeAtOrdersOneAndTwo) {
  const auto euler = [](const std::vector<double>& g) {
    return dm::ode::euler(oscillator, kStart, g);
  };
  const auto heun = [](const std::vector<double>& g) {
    return dm::ode::heun(oscillator, kStart, g);
  };
  EXPECT_NEAR(observed_order(euler, 200, 2.0), 1.0, 0.05);
  EXPECT_NEAR(observed_order(heun, 100, 2.0), 2.0, 0.05);
  EXPECT_EQ(dm::ode::heun(oscillator, kStart, dm::ode::uniform_grid(0, 1, 10)).stats.nfe, 20);
}

// With a fixed step (tolerances so loose that no step is rejected or resized
// before the end), Dormand–Prince's kept solution is of order 5.
TEST(Ode, DormandPrinceIsFifthOrder) {
  auto fixed = [](int64_t n) {
    dm::ode::Options o;
    o.rtol = o.atol = 1e3;  // accept everything …
    o.first_step = 2.0 / double(n);
    // … but the step would grow: cap it by integrating piece by piece.
    torch::Tensor z = kStart;
    for (int64_t i = 0; i < n; ++i)
      z = dm::ode::dopri5(oscillator, z, 2.0 * i / n, 2.0 * (i + 1) / n, o).x;
    return max_error_oscillator(z, 2.0);
  };
  EXPECT_NEAR(std::log2(fixed(10) / fixed(20)), 5.0, 0.3);
}

// The global error follows the tolerance: smaller tolerance, smaller error,
// within a modest factor of the tolerance itself, and more work.
TEST(Ode, DormandPrinceHonoursTheTolerance) {
  const auto lambda = torch::tensor({-1.0, -0.3, 0.5, 2.0}, torch::kFloat64);
  const auto x0 = torch::ones({4, 3}, torch::kFloat64);
  int64_t previous_nfe = 0;
  for (double tol : {1e-3, 1e-5, 1e-7, 1e-9}) {
    dm::ode::Options o;
    o.rtol = o.atol = tol;
    const auto r = dm::ode::dopri5(linear(lambda), x0, 0.0, 2.0, o);
    const auto exact = (lambda * 2.0).exp().unsqueeze(1).expand({4, 3});
    const double rel = ((r.x - exact).abs() / exact).max().item<double>();
    EXPECT_LT(rel, 30 * tol) << "tolerance " << tol;
    EXPECT_GT(r.stats.nfe, previous_nfe) << "tolerance " << tol;
    EXPECT_EQ(r.stats.nfe, 2 + 6 * (r.stats.accepted + r.stats.rejected))
        << "FSAL: six evaluations a step";
    previous_nfe = r.stats.nfe;
  }
}

// A stiff start forces rejections; the solution is still right.
TEST(Ode, DormandPrinceRejectsStepsThatAreTooLongAndRecovers) {
  dm::ode::Options o;
  o.first_step = 1.0;  // far too long for λ = −50
  const auto lambda = torch::tensor({-50.0}, torch::kFloat64);
  const auto r = dm::ode::dopri5(linear(lambda), torch::ones({1, 1}, torch::kFloat64), 0.0, 0.2, o);
  EXPECT_GT(r.stats.rejected, 0);
  EXPECT_NEAR(r.x.item<double>(), std::exp(-10.0),
              o.atol);  // e^{−10} is below atol: absolute error counts
}

// Backwards in time, and there and back again.
TEST(Ode, DormandPrinceRunsBackwardsAndReturns) {
  dm::ode::Options o;
  o.rtol = o.atol = 1e-9;
  const auto there = dm::ode::dopri5(oscillator, kStart, 0.0, 3.0, o);
  const auto back = dm::ode::dopri5(oscillator, there.x, 3.0, 0.0, o);
  EXPECT_LT(max_error_oscillator(there.x, 3.0), 1e-7);
  EXPECT_LT((back.x - kStart).abs().max().item<double>(), 1e-7);
}

TEST(Ode, BadInputIsRefusedWithAReason) {
  dm::ode::Options o;
  o.rtol = 0;
  EXPECT_THROW(dm::ode::dopri5(oscillator, kStart, 0, 1, o), dm::Error);
  EXPECT_THROW(dm::ode::euler(oscillator, kStart, {0.0}), dm::Error);
  EXPECT_THROW(dm::ode::uniform_grid(0, 1, 0), dm::Error);
  const dm::ode::Field nan_field = [](double, const torch::Tensor& x) { return x * NAN; };
  try {
    dm::ode::dopri5(nan_field, kStart, 0, 1);
    FAIL() << "a NaN field was integrated";
  } catch (const dm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("not finite"), std::string::npos) << e.what();
  }
}
