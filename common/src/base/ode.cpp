// ode.cpp — Dormand–Prince 5(4) with step control, Euler and Heun.
#include "dm/base/ode.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>

#include "dm/base/core.hpp"

namespace dm::ode {

namespace {

// The Dormand–Prince tableau (Hairer, Nørsett & Wanner, Table II.5.2).
constexpr std::array<double, 7> kC = {0.0, 1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1.0, 1.0};
constexpr double kA[7][6] = {
    {},
    {1.0 / 5},
    {3.0 / 40, 9.0 / 40},
    {44.0 / 45, -56.0 / 15, 32.0 / 9},
    {19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729},
    {9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656},
    {35.0 / 384, 0.0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84},
};
// The 5th-order weights are the last row of kA (so stage 7 is f at the new
// point); these are 5th minus 4th order weights, for the error estimate.
constexpr std::array<double, 7> kE = {71.0 / 57600,      0.0,        -71.0 / 16695, 71.0 / 1920,
                                      -17253.0 / 339200, 22.0 / 525, -1.0 / 40};

double rms(const torch::Tensor& t) { return t.pow(2).mean().sqrt().item<double>(); }

void check(const torch::Tensor& x0, double t0, double t1, const char* who) {
  if (!x0.defined() || x0.numel() == 0)
    throw Error(std::string(who) + ": the initial state is empty");
  if (!std::isfinite(t0) || !std::isfinite(t1))
    throw Error(std::string(who) + ": the times must be finite, got " + std::to_string(t0) + " → " +
                std::to_string(t1));
}

// Hairer's starting step (scipy's select_initial_step), for an order-4 error estimate.
double initial_step(const Field& f, const torch::Tensor& x0, const torch::Tensor& f0, double t0,
                    double direction, double span, const Options& o, Stats& stats) {
  const auto scale = o.atol + x0.abs() * o.rtol;
  const double d0 = rms(x0 / scale), d1 = rms(f0 / scale);
  const double h0 = (d0 < 1e-5 || d1 < 1e-5) ? 1e-6 : 0.01 * d0 / d1;
  const auto x1 = x0 + direction * h0 * f0;
  const auto f1 = f(t0 + direction * h0, x1);
  ++stats.nfe;
  const double d2 = rms((f1 - f0) / scale) / h0;
  const double h1 = (d1 <= 1e-15 && d2 <= 1e-15) ? std::max(1e-6, h0 * 1e-3)
                                                 : std::pow(0.01 / std::max(d1, d2), 1.0 / 5.0);
  return std::min({100 * h0, h1, span});
}

// One trial step of size dt (signed) from (t, x) with k1 = f(t, x): the
// 5th-order solution, f there (the next step's k1) and the scaled error.
struct Trial {
  torch::Tensor x, k_last;
  double err;
};

Trial dopri5_trial(const Field& f, const torch::Tensor& x, const torch::Tensor& k1, double t,
                   double dt, const Options& o) {
  std::array<torch::Tensor, 7> k;
  k[0] = k1;
  torch::Tensor xs;
  for (size_t s = 1; s < 7; ++s) {
    xs = x;
    for (size_t j = 0; j < s; ++j)
      if (kA[s][j] != 0.0) xs = xs + (dt * kA[s][j]) * k[j];
    k[s] = f(t + kC[s] * dt, xs);  // stage 7: f at the new point xs
  }
  torch::Tensor error = torch::zeros_like(x);
  for (size_t j = 0; j < 7; ++j)
    if (kE[j] != 0.0) error = error + (dt * kE[j]) * k[j];
  const auto scale = o.atol + o.rtol * torch::maximum(x.abs(), xs.abs());
  const auto ratio = error / scale;
  const double err = o.per_row && ratio.dim() > 1
                         ? ratio.pow(2).flatten(1).mean(1).sqrt().max().item<double>()
                         : rms(ratio);
  return {xs, k[6], err};
}

}  // namespace

Result dopri5(const Field& f, const torch::Tensor& x0, double t0, double t1, const Options& o) {
  check(x0, t0, t1, "ode::dopri5");
  if (!(o.rtol > 0) || !(o.atol > 0))
    throw Error("ode::dopri5: rtol and atol must be positive, got " + std::to_string(o.rtol) +
                " and " + std::to_string(o.atol));
  Result result;
  Stats& stats = result.stats;
  result.x = x0;
  if (t1 == t0) return result;
  const double direction = t1 > t0 ? 1.0 : -1.0;
  torch::Tensor k1 = f(t0, x0);
  ++stats.nfe;
  double h = o.first_step > 0 ? std::min(o.first_step, std::abs(t1 - t0))
                              : initial_step(f, x0, k1, t0, direction, std::abs(t1 - t0), o, stats);
  double t = t0;
  bool rejected_last = false;  // no growth right after a rejection
  while (direction * (t1 - t) > 0) {
    if (stats.accepted + stats.rejected >= o.max_steps)
      throw Error("ode::dopri5: " + std::to_string(o.max_steps) +
                  " steps without reaching t = " + std::to_string(t1) +
                  " (at t = " + std::to_string(t) + ", h = " + std::to_string(h) +
                  "): the ODE is too stiff for this tolerance, or its field is not finite");
    const double remaining = std::abs(t1 - t);
    const bool last = h >= remaining;  // the last step lands on t1 exactly
    const double step = last ? remaining : h;
    const Trial trial = dopri5_trial(f, result.x, k1, t, direction * step, o);
    stats.nfe += 6;
    if (!std::isfinite(trial.err))
      throw Error("ode::dopri5: the error estimate is not finite at t = " + std::to_string(t) +
                  " (the field returned NaN or inf)");
    const double grow =
        trial.err == 0.0 ? 10.0 : std::clamp(0.9 * std::pow(trial.err, -0.2), 0.2, 10.0);
    if (trial.err <= 1.0) {
      ++stats.accepted;
      result.x = trial.x;
      k1 = trial.k_last;  // first same as last
      t = last ? t1 : t + direction * step;
      h = step * (rejected_last ? std::min(1.0, grow) : grow);
      rejected_last = false;
    } else {
      ++stats.rejected;
      h = step * grow;
      rejected_last = true;
    }
  }
  return result;
}

std::vector<double> uniform_grid(double t0, double t1, int64_t n) {
  if (n < 1) throw Error("ode::uniform_grid: need at least one step, got " + std::to_string(n));
  std::vector<double> grid(static_cast<size_t>(n + 1));
  for (int64_t i = 0; i <= n; ++i)
    grid[static_cast<size_t>(i)] = t0 + (t1 - t0) * double(i) / double(n);
  grid.back() = t1;
  return grid;
}

Result euler(const Field& f, const torch::Tensor& x0, const std::vector<double>& grid) {
  if (grid.size() < 2) throw Error("ode::euler: the grid needs at least two times");
  check(x0, grid.front(), grid.back(), "ode::euler");
  Result result;
  torch::Tensor x = x0;
  for (size_t i = 0; i + 1 < grid.size(); ++i) {
    x = x + (grid[i + 1] - grid[i]) * f(grid[i], x);
    ++result.stats.nfe;
    ++result.stats.accepted;
  }
  result.x = x;
  return result;
}

Result heun(const Field& f, const torch::Tensor& x0, const std::vector<double>& grid) {
  if (grid.size() < 2) throw Error("ode::heun: the grid needs at least two times");
  check(x0, grid.front(), grid.back(), "ode::heun");
  Result result;
  torch::Tensor x = x0;
  for (size_t i = 0; i + 1 < grid.size(); ++i) {
    const double dt = grid[i + 1] - grid[i];
    const auto k1 = f(grid[i], x);
    const auto k2 = f(grid[i + 1], x + dt * k1);
    x = x + 0.5 * dt * (k1 + k2);
    result.stats.nfe += 2;
    ++result.stats.accepted;
  }
  result.x = x;
  return result;
}

}  // namespace dm::ode
