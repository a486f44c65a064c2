// Chapter 06 exercises — the pieces of PC sampling and ODE likelihoods, by hand.
//
// Write these four functions in chapters/06_pc_ode/exercises.cpp; the reference
// answers are in solutions.cpp and the tests in tests/exercises/test_06_pc_ode.cpp.
// Each is a few lines of tensor code with no `dm` call: the tests compare them
// with dm::pc and dm::flow. Batches are float64 [N, …]; "per-row norm" is the
// L2 norm of each row flattened.
#pragma once

#include <torch/torch.h>

namespace ex06 {

// ANCHOR: ex_snr_step_size
// Exercise 6.1 — the Langevin corrector's step size for a target signal-to-noise
// ratio r (Song et al., 2021, Algorithms 4–5):
//   ε = 2α (r ‖z‖ / ‖s‖)²,
// where ‖s‖ and ‖z‖ are the per-row norms of the score and of the noise,
// each averaged over the batch. Return 0 when the averaged ‖s‖ is 0.
double snr_step_size(const torch::Tensor& score, const torch::Tensor& noise, double snr,
                     double alpha);
// ANCHOR_END: ex_snr_step_size

// ANCHOR: ex_corrector_step
// Exercise 6.2 — one Langevin corrector step with that ε:
//   x' = x + ε s + √(2ε) z,
// with `score` = s_θ(x, t) and the noise z given (both shaped like x).
torch::Tensor corrector_step(const torch::Tensor& x, const torch::Tensor& score,
                             const torch::Tensor& noise, double snr, double alpha);
// ANCHOR_END: ex_corrector_step

// ANCHOR: ex_hutchinson
// Exercise 6.3 — Hutchinson's estimate of the trace of a matrix A [D, D] from
// probes v [K, D] with E[v vᵀ] = I:  (1/K) Σ_k v_kᵀ A v_k.
double hutchinson_trace(const torch::Tensor& A, const torch::Tensor& probes);
// ANCHOR_END: ex_hutchinson

// ANCHOR: ex_bits_per_dim
// Exercise 6.4 — bits per dimension of 8-bit data scaled to [−1, 1] from
// log p(x) in nats (per row [N]) and the number of dimensions D:
//   bpd = −log p(x) / (D ln 2) + log₂(256 / 2).
torch::Tensor bits_per_dim(const torch::Tensor& log_prob, int64_t dims);
// ANCHOR_END: ex_bits_per_dim

}  // namespace ex06
