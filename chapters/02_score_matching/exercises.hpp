// Chapter 02 exercises — the score-matching losses, by hand.
//
// Write these four functions in chapters/02_score_matching/exercises.cpp; the
// reference answers are in solutions.cpp and the tests that check them in
// tests/exercises/test_02_score_matching.cpp. Each is a few lines of LibTorch:
// no `dm` library calls needed (these are the pieces dm::losses is made of).
//
// A "field" is a function from a batch x [N, D] to a batch [N, D]: a score
// network s_θ(x), or a noise-predicting network ε_θ(x). Losses are means over
// the N rows of a per-row value (no factor ½) and must stay differentiable in
// the network's parameters: the tests call backward() on them.
#pragma once

#include <torch/torch.h>

#include <functional>

namespace ex02 {

using Field = std::function<torch::Tensor(const torch::Tensor& x)>;

// ANCHOR: ex_explicit_sm
// Exercise 2.1 — explicit score matching, the yardstick:
//   L = (1/N) Σ_n ‖s(x_n) − ∇log p(x_n)‖²,
// with the exact scores ∇log p(x_n) given as `target` [N, D].
torch::Tensor explicit_sm(const Field& score, const torch::Tensor& x, const torch::Tensor& target);
// ANCHOR_END: ex_explicit_sm

// ANCHOR: ex_directional_derivative
// Exercise 2.2 — the derivative along a probe ν, per row:
//   d_n = d/dh [ν_nᵀ s(x_n + h ν_n)] at h = 0   (= ν_nᵀ J_s(x_n) ν_n),
// taken by autograd, not by finite differences. `nu` is shaped like x; the
// result is [N]. It must stay differentiable in θ: SSM trains through it.
torch::Tensor directional_derivative(const Field& score, const torch::Tensor& x,
                                     const torch::Tensor& nu);
// ANCHOR_END: ex_directional_derivative

// ANCHOR: ex_sliced_sm
// Exercise 2.3 — sliced score matching with given probes ν [N, D] (E[ννᵀ] = I):
//   L = (1/N) Σ_n [ ‖s(x_n)‖² + 2 d/dh ν_nᵀ s(x_n + h ν_n)|_{h=0} ].
torch::Tensor sliced_sm(const Field& score, const torch::Tensor& x, const torch::Tensor& nu);
// ANCHOR_END: ex_sliced_sm

// ANCHOR: ex_denoising_eps
// Exercise 2.4 — denoising score matching in the noise-prediction form:
//   x̃_n = x_n + σ ε_n,   L = (1/N) Σ_n ‖ε_θ(x̃_n) − ε_n‖²,
// with the noise ε [N, D] given. (The score is then s_θ = −ε_θ/σ.)
torch::Tensor denoising_eps(const Field& eps_net, const torch::Tensor& x, double sigma,
                            const torch::Tensor& eps);
// ANCHOR_END: ex_denoising_eps

}  // namespace ex02
