// Chapter 04 exercises — the DDPM formulas, by hand.
//
// Write these four functions in chapters/04_ddpm/exercises.cpp; the reference
// answers are in solutions.cpp and the tests that check them in
// tests/exercises/test_04_ddpm.cpp. Each function is a few lines of tensor
// code: no `dm` library calls needed (that is the point: these are the pieces
// dm::schedule and dm::ddpm are made of).
//
// Notation (DDPM, 1-based steps t = 1, …, T): β_t the noise added at step t,
//   α_t = 1 − β_t,   ᾱ_t = Π_{s≤t} α_s,   ᾱ_0 = 1.
// The functions take the numbers of one step directly (β_t, ᾱ_t, ᾱ_{t−1} as
// doubles, or ᾱ_t as one value per row), so no Schedule struct is needed.
// Shapes: x0, xt, ε, z are a batch [N, …] (points [N, D] or images
// [N, C, H, W]); everything is float64.
#pragma once

#include <torch/torch.h>

namespace ex04 {

// ANCHOR: ex_alpha_bar
// Exercise 4.1 — the cumulative signal fraction of the forward process:
//   ᾱ_t = Π_{s≤t} (1 − β_s),   t = 1, …, T.
// `betas` [T] holds β_1 … β_T (entry i is step t = i + 1); the result is [T]
// with entry i = ᾱ_{i+1}, so the first entry is 1 − β_1 (not ᾱ_0 = 1).
torch::Tensor alpha_bar(const torch::Tensor& betas);
// ANCHOR_END: ex_alpha_bar

// ANCHOR: ex_q_sample
// Exercise 4.2 — a draw from q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I) in one shot:
//   x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε,   ε ~ N(0, I) given (shaped like x0).
// Each row has its own step: `alpha_bar_t` [N] holds ᾱ_t of row n, and must
// multiply every entry of that row, whatever the shape of x0 ([N, D] or
// [N, C, H, W]). Returns a tensor shaped like x0.
torch::Tensor q_sample(const torch::Tensor& x0, const torch::Tensor& alpha_bar_t,
                       const torch::Tensor& eps);
// ANCHOR_END: ex_q_sample

// ANCHOR: ex_posterior_mean_variance
// Exercise 4.3 — the forward process run backwards when x_0 is known:
//   q(x_{t−1} | x_t, x_0) = N(μ̃_t, β̃_t I),
//   μ̃_t = β_t √ᾱ_{t−1}/(1 − ᾱ_t) · x_0 + (1 − ᾱ_{t−1}) √α_t/(1 − ᾱ_t) · x_t,
//   β̃_t = β_t (1 − ᾱ_{t−1})/(1 − ᾱ_t),
// with α_t = 1 − β_t. One step t for the whole batch: β_t, ᾱ_t and ᾱ_{t−1}
// are numbers (ᾱ_{t−1} = 1 at t = 1); x0 and xt are shaped alike. The mean is
// shaped like xt, the variance (the same for every entry) is a number.
struct Posterior {
  torch::Tensor mean;  // μ̃_t
  double variance;     // β̃_t
};
Posterior posterior_mean_variance(const torch::Tensor& x0, const torch::Tensor& xt, double beta_t,
                                  double alpha_bar_t, double alpha_bar_prev);
// ANCHOR_END: ex_posterior_mean_variance

// ANCHOR: ex_ancestral_step
// Exercise 4.4 — one step of ancestral sampling (DDPM's Algorithm 2, line 4):
//   x_{t−1} = (x_t − β_t/√(1 − ᾱ_t) · ε̂) / √α_t + σ_t z,   α_t = 1 − β_t,
// where ε̂ = ε_θ(x_t, t) is the model's noise prediction (shaped like xt), z
// the standard normal noise (shaped like xt), and σ_t the standard deviation
// of the step (σ_t = √β_t or √β̃_t; 0 at the last step t = 1, which adds no noise).
torch::Tensor ancestral_step(const torch::Tensor& xt, const torch::Tensor& eps_pred, double beta_t,
                             double alpha_bar_t, double sigma_t, const torch::Tensor& z);
// ANCHOR_END: ex_ancestral_step

}  // namespace ex04
