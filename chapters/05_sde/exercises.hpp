// Chapter 05 exercises — the SDE formulas, by hand.
//
// Write these five functions in chapters/05_sde/exercises.cpp; the reference
// answers are in solutions.cpp and the tests that check them in
// tests/exercises/test_05_sde.cpp. Each function is a few lines of C++ or
// tensor code: no `dm` library calls needed (that is the point: these are the
// pieces dm::sde is made of).
//
// Notation (Song et al., 2021): a forward SDE on t ∈ [0, 1], data at t = 0,
//   dx = f(x, t) dt + g(t) dw,   f(x, t) = φ(t)·x,
// whose marginal from a data point x_0 is x_t = a(t)·x_0 + s(t)·ε, ε ~ N(0, I).
// VP and sub-VP have β(t) = β_min + t (β_max − β_min) and
//   ∫_0^t β(u) du = β_min t + ½ t² (β_max − β_min);
// VE has σ(t) = σ_min (σ_max/σ_min)^t.
// Times, coefficients and step sizes are doubles; x, the drift f(x, t), the
// score and the noise z are a batch [N, …] of float64, all shaped alike.
#pragma once

#include <torch/torch.h>

namespace ex05 {

// ANCHOR: ex_vp_marginal
// Exercise 5.1 — the marginal of the VP SDE dx = −½β(t) x dt + √β(t) dw:
//   a(t) = exp(−½ ∫_0^t β),   s(t) = √(1 − exp(−∫_0^t β)),
// so that a² + s² = 1 at every t (variance preserving). At t = 0, a = 1 and s = 0.
struct Marginal {
  double a;  // the signal coefficient a(t)
  double s;  // the noise standard deviation s(t)
};
Marginal vp_marginal(double t, double beta_min, double beta_max);
// ANCHOR_END: ex_vp_marginal

// ANCHOR: ex_subvp_std
// Exercise 5.2 — the noise std of the sub-VP SDE
//   dx = −½β(t) x dt + √(β(t)(1 − exp(−2∫_0^t β))) dw,
// whose a(t) is VP's and whose std is VP's variance:
//   s(t) = 1 − exp(−∫_0^t β)   (no square root: s_subVP = s_VP² ≤ s_VP).
double subvp_std(double t, double beta_min, double beta_max);
// ANCHOR_END: ex_subvp_std

// ANCHOR: ex_ve_diffusion
// Exercise 5.3 — the diffusion coefficient of the VE SDE dx = g(t) dw, the one
// whose variance grows like σ(t)²: g(t)² = dσ²/dt, i.e.
//   g(t) = √(dσ(t)²/dt) = σ(t) √(2 ln(σ_max/σ_min)),   σ(t) = σ_min (σ_max/σ_min)^t.
// (g is a standard deviation per √time: the square root of dσ²/dt, not dσ²/dt.)
double ve_diffusion(double t, double sigma_min, double sigma_max);
// ANCHOR_END: ex_ve_diffusion

// ANCHOR: ex_euler_maruyama_step_forward
// Exercise 5.4 — one Euler–Maruyama step of the forward SDE from t to t + dt:
//   x' = x + f(x, t) dt + g(t) √dt z,   z ~ N(0, I) given (shaped like x),
// with `drift` = f(x, t) already evaluated (shaped like x), g = g(t) and dt > 0.
// The Brownian increment w(t + dt) − w(t) has std √dt, not dt.
torch::Tensor euler_maruyama_step_forward(const torch::Tensor& x, const torch::Tensor& drift,
                                          double g, double dt, const torch::Tensor& z);
// ANCHOR_END: ex_euler_maruyama_step_forward

// ANCHOR: ex_reverse_em_step
// Exercise 5.5 — one Euler–Maruyama step of the reverse-time SDE (Anderson, 1982)
//   dx = [f(x, t) − g(t)² ∇ₓ log p_t(x)] dt + g(t) dw̄,   t running from 1 down to 0,
// from t to t − dt (dt > 0 is the size of the step backwards):
//   x' = x − [f(x, t) − g(t)² score] dt + g(t) √dt z,
// with `f` = f(x, t) and `score` = ∇ₓ log p_t(x) evaluated at (x, t) (both
// shaped like x), g = g(t) and z ~ N(0, I) given (shaped like x).
torch::Tensor reverse_em_step(const torch::Tensor& x, const torch::Tensor& f, double g,
                              const torch::Tensor& score, double dt, const torch::Tensor& z);
// ANCHOR_END: ex_reverse_em_step

}  // namespace ex05
