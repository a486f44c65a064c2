// Chapter 03 exercises — the pieces of NCSN, by hand.
//
// Write these four functions in chapters/03_ncsn/exercises.cpp; the reference
// answers are in solutions.cpp and the tests that check them in
// tests/exercises/test_03_ncsn.cpp. Each is a few lines of LibTorch (or plain
// C++); no `dm` library calls needed — they are what dm::ncsn is made of.
//
// Shapes: a batch x is [N, D]; a noise level per row is sigma [N]. Random
// numbers are passed in, so every answer is a fixed function of its inputs.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

namespace ex03 {

// ε_θ(x̃, σ): a noise-predicting network with a noise level per row.
using EpsNet =
    std::function<torch::Tensor(const torch::Tensor& x_noisy, const torch::Tensor& sigma)>;
// s(x, σ): a score with one noise level for the whole batch.
using Score = std::function<torch::Tensor(const torch::Tensor& x, double sigma)>;

// ANCHOR: ex_ncsn_loss
// Exercise 3.1 — the NCSN loss (σ²-weighted denoising score matching) with
// a level σ_n and a noise ε_n given per row:
//   x̃_n = x_n + σ_n ε_n,   L = (1/(N·D)) Σ_n ‖ε_θ(x̃_n, σ_n) − ε_n‖²
// (the mean over every entry, as dm::ncsn::loss_at). It must stay
// differentiable in the network's parameters.
torch::Tensor ncsn_loss(const EpsNet& eps_net, const torch::Tensor& x, const torch::Tensor& sigma,
                        const torch::Tensor& eps);
// ANCHOR_END: ex_ncsn_loss

// ANCHOR: ex_annealed_level
// Exercise 3.2 — one level of annealed Langevin dynamics: T = z.size(0) steps
//   x ← x + (α/2) s(x, σ) + √α z_k,   k = 0, …, T−1,
// with the step α and the noises z [T, N, D] given. Returns the final x.
torch::Tensor annealed_level(const Score& score, torch::Tensor x, double sigma, double alpha,
                             const torch::Tensor& z);
// ANCHOR_END: ex_annealed_level

// ANCHOR: ex_variance_ratio
// Exercise 3.3 — the step rule. With one data point at 0, the score at level σ
// is −x/σ², and a step with α = a σ² maps x ↦ (1 − a/2) x + √a σ z. Starting
// from variance γ² σ² (the previous level, σ_{i−1} = γ σ_i), return
// Var(x_T)/σ² after T steps: the recursion r_{k+1} = (1 − a/2)² r_k + a, r_0 = γ².
double variance_ratio_after(double a, double gamma, int T);
// ANCHOR_END: ex_variance_ratio

// ANCHOR: ex_ve_chain
// Exercise 3.4 — NCSN's noising as a Markov chain with given noises
// z [K, N, D]: from x_0 and ascending levels σ_1 < … < σ_K (σ_0 = 0),
//   x_k = x_{k−1} + √(σ_k² − σ_{k−1}²) z_{k−1}.
// Returns [x_1, …, x_K] (K tensors; x_0 is not included).
std::vector<torch::Tensor> ve_chain(const torch::Tensor& x0, const std::vector<double>& ascending,
                                    const torch::Tensor& z);
// ANCHOR_END: ex_ve_chain

}  // namespace ex03
