// dm/base/ode.hpp — ordinary differential equations dx/dt = f(t, x) on tensors:
// the adaptive Dormand–Prince 5(4) pair, and fixed-step Euler and Heun for
// comparison. Chapter 06 solves the probability-flow ODE with them.
//
// Dormand–Prince (Dormand & Prince 1980; Hairer, Nørsett & Wanner, "Solving
// Ordinary Differential Equations I", §II.4–5) takes a step h with seven stages,
// the last evaluated at the new point (so it is the next step's first: "first
// same as last", six evaluations per step). Two solutions come out of the same
// stages, of order 5 (kept) and 4; their difference estimates the local error,
// measured against the tolerance element by element,
//     err = RMS_i [ (x5 − x4)_i / (atol + rtol · max(|x_i|, |x5_i|)) ],
// over every element of the state (the whole batch, as scipy's RK45, which the
// score-SDE code calls) or, with Options::per_row, the worst row's. A step is accepted when err ≤ 1, and the next step is
//     h ← h · clamp(0.9 · err^{−1/5}, 0.2, 10)     (no growth right after a rejection).
// The first step is chosen as scipy and Hairer do (from f at the start and one
// trial Euler step).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <vector>

namespace dm::ode {

// The right-hand side f(t, x).
using Field = std::function<torch::Tensor(double t, const torch::Tensor& x)>;

struct Options {
  double rtol = 1e-5, atol = 1e-5;  // the score-SDE code's tolerances
  double first_step = 0.0;          // 0: chosen from f (Hairer's rule)
  int64_t max_steps = 100000;       // accepted + rejected; more → dm::Error
  // The error norm: false = RMS over every element (scipy, score_sde: a few
  // hard rows of a batch can then end far off); true = the largest per-row RMS
  // (rows = the first dimension; every row meets the tolerance).
  bool per_row = false;
};

struct Stats {
  int64_t nfe = 0;       // evaluations of f
  int64_t accepted = 0;  // steps kept
  int64_t rejected = 0;  // steps retried with a smaller h
};

struct Result {
  torch::Tensor x;  // the state at t1
  Stats stats;
};

// Integrates from (t0, x0) to t1 (t1 < t0 runs backwards in time).
Result dopri5(const Field& f, const torch::Tensor& x0, double t0, double t1,
              const Options& options = {});

// Fixed steps over a grid t_0, t_1, … (increasing or decreasing); NFE = steps
// (Euler) or 2 · steps (Heun, the explicit trapezoid rule).
Result euler(const Field& f, const torch::Tensor& x0, const std::vector<double>& grid);
Result heun(const Field& f, const torch::Tensor& x0, const std::vector<double>& grid);

// n + 1 evenly spaced times from t0 to t1.
std::vector<double> uniform_grid(double t0, double t1, int64_t n);

}  // namespace dm::ode
