// Chapter 01 exercises — Langevin MCMC, by hand.
//
// Write these four functions in chapters/01_langevin/exercises.cpp; the
// reference answers are in solutions.cpp and the tests that check them in
// tests/exercises/test_01_langevin.cpp. Each function is a few lines of tensor
// code: no `dm` library calls needed (that is the point: these are the pieces
// dm::langevin is made of).
//
// Shapes: x is a batch of N independent chains, [N, D] (D = 1 for the double
// well); scores are shaped like x; a log density is one number per chain, [N].
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

namespace ex01 {

// A function of a batch x [N, D]: log p(x) → [N], or the score ∇log p(x) → [N, D].
using Fn = std::function<torch::Tensor(const torch::Tensor&)>;

// ANCHOR: ex_ula_step
// Exercise 1.1 — one step of the unadjusted Langevin algorithm (ULA):
//   X_{k+1} = X_k + (Δt/2) s(X_k) + √Δt Z_k,   Z_k ~ N(0, I).
// `score` is s(x) = ∇log p(x) already evaluated at x, and `z` the standard
// normal noise (both shaped like x), so the step is a deterministic formula.
torch::Tensor ula_step(const torch::Tensor& x, const torch::Tensor& score, double dt,
                       const torch::Tensor& z);
// ANCHOR_END: ex_ula_step

// ANCHOR: ex_mala_log_accept
// Exercise 1.2 — MALA's Metropolis–Hastings log ratio for a move x → x':
//   log α(x → x') = log p(x') − log p(x) + log q(x | x') − log q(x' | x),
// where q is the ULA proposal density
//   q(b | a) = N(b; a + (Δt/2) s(a), Δt I),
//   log q(b | a) = −‖b − a − (Δt/2) s(a)‖² / (2Δt) + const  (the const cancels).
// `log_prob` may be unnormalised; `score` is its gradient. One value per chain: [N].
// (The proposal is accepted with probability min(1, exp log α).)
torch::Tensor mala_log_accept(const Fn& log_prob, const Fn& score, const torch::Tensor& x,
                              const torch::Tensor& x_new, double dt);
// ANCHOR_END: ex_mala_log_accept

// ANCHOR: ex_double_well_tempered_score
// Exercise 1.3 — the score of the tempered double well
//   p_τ(x) ∝ exp(V(x)/τ) = p(x)^{1/τ},   V(x) = −x²(x − 2)(x + 2) = −x⁴ + 4x²,
// is ∇log p_τ(x) = V'(x)/τ (the normaliser does not depend on x).
// Differentiate V yourself. Elementwise: returns a tensor shaped like x.
torch::Tensor double_well_tempered_score(const torch::Tensor& x, double tau);
// ANCHOR_END: ex_double_well_tempered_score

// ANCHOR: ex_geometric_schedule
// Exercise 1.4 — the temperatures of annealed Langevin: `levels` values from
// τ_max down to τ_min, both included, with a constant ratio between neighbours:
//   τ_i = τ_max (τ_min/τ_max)^{i/(L−1)},   i = 0, …, L − 1.
// A single level (L = 1) is just {τ_min}: the temperature we want to sample at.
// Assumes levels ≥ 1 and τ_max, τ_min > 0.
std::vector<double> geometric_schedule(double tau_max, double tau_min, int levels);
// ANCHOR_END: ex_geometric_schedule

}  // namespace ex01
