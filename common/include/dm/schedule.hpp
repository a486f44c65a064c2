// dm/schedule.hpp — the discrete noise schedule of DDPM.
//
// The forward process adds Gaussian noise in T small steps,
//   q(x_t | x_{t−1}) = N(√(1−β_t) x_{t−1}, β_t I),   t = 1, …, T,
// and everything else follows from the β's:
//   α_t = 1 − β_t,   ᾱ_t = Π_{s≤t} α_s,   q(x_t | x_0) = N(√ᾱ_t x_0, (1−ᾱ_t) I),
//   q(x_{t−1} | x_t, x_0) = N(μ̃_t, β̃_t I) with
//     μ̃_t = β_t √ᾱ_{t−1}/(1−ᾱ_t) · x_0 + (1−ᾱ_{t−1}) √α_t/(1−ᾱ_t) · x_t,
//     β̃_t = β_t (1−ᾱ_{t−1})/(1−ᾱ_t).
//
// Indexing convention (the one the DDPM reference code uses, and the one
// networks see as their time label): every table below has T entries, and
// entry i = 0, …, T−1 belongs to DDPM step t = i + 1. So betas[0] = β_1,
// alpha_bar[i] = ᾱ_{i+1}, and alpha_bar_prev[i] = ᾱ_i with ᾱ_0 = 1, i.e.
// alpha_bar_prev[0] = 1. "The step with index i" maps x_{i+1} to x_i; index 0
// is the last reverse step, the one that produces data.
//
// All tables are float64 (round-off in ᾱ_t and 1/√ᾱ_t matters near t = T);
// cast the gathered coefficients to the data's dtype (extract_like does).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <utility>

namespace dm::schedule {

struct Schedule {
  torch::Tensor betas;                           // β_t
  torch::Tensor alphas;                          // α_t = 1 − β_t
  torch::Tensor alpha_bar;                       // ᾱ_t = Π_{s≤t} α_s
  torch::Tensor alpha_bar_prev;                  // ᾱ_{t−1} (ᾱ_0 = 1)
  torch::Tensor sqrt_alpha_bar;                  // √ᾱ_t: the signal scale of x_t
  torch::Tensor sqrt_one_minus_alpha_bar;        // √(1−ᾱ_t): the noise std of x_t
  torch::Tensor posterior_variance;              // β̃_t = β_t (1−ᾱ_{t−1})/(1−ᾱ_t); β̃_1 = 0
  torch::Tensor posterior_log_variance_clipped;  // log β̃_t, with log β̃_2 at t = 1
  torch::Tensor posterior_mean_coef1;            // β_t √ᾱ_{t−1}/(1−ᾱ_t)    (multiplies x_0)
  torch::Tensor posterior_mean_coef2;            // (1−ᾱ_{t−1}) √α_t/(1−ᾱ_t) (multiplies x_t)
  int64_t T = 0;
  std::string name;

  // Every table derived from the β's [T] (0 < β < 1, T ≥ 2); `name` labels figures.
  static Schedule from_betas(const torch::Tensor& betas, std::string name);

  // The same schedule with its tables on `device` (still float64).
  Schedule to(const torch::Device& device) const;

  // (√ᾱ, √(1−ᾱ)) at the network time label t (the 0-based index i, given as a
  // number): the (a, s) of x_t = a·x_0 + s·z, as toy::PerturbedMixture takes
  // it. t must be an integer in [0, T−1] (dm::Error otherwise).
  std::pair<double, double> mean_std(double t) const;
  // mean_std as a function that owns a copy of the schedule.
  std::function<std::pair<double, double>(double)> mean_std_fn() const;
};

// Linear β from beta_start to beta_end (DDPM: 1e-4 → 0.02 over T = 1000).
Schedule linear(int64_t T = 1000, double beta_start = 1e-4, double beta_end = 0.02);

// Linear β for a short chain: DDPM's endpoints scaled by 1000/T (the
// "linear" schedule of improved-diffusion / guided-diffusion), so that Σβ and
// hence ᾱ_T stay about as small as with T = 1000 (T = 50: β from 0.002 to 0.4,
// ᾱ_T ≈ 7.7e-6). Needs T > 20, where β_T = 0.02·1000/T < 1.
Schedule linear_rescaled(int64_t T);

// Cosine schedule (Nichol & Dhariwal): ᾱ(t) = f(t)/f(0),
// f(t) = cos²(((t/T + s)/(1 + s))·π/2), with β_t = min(1 − ᾱ(t)/ᾱ(t−1), max_beta).
Schedule cosine(int64_t T = 1000, double s = 0.008, double max_beta = 0.999);

// The per-row coefficient coef[t_n] of a table coef [T] for t [N] (long),
// shaped [N, 1, …, 1] with `ndim` dims so it broadcasts against a batch x
// [N, …] (ndim = x.dim()). On t's device, in coef's dtype.
torch::Tensor extract(const torch::Tensor& coef, const torch::Tensor& t, int64_t ndim);
// The same, shaped for and cast to the dtype and device of x.
torch::Tensor extract_like(const torch::Tensor& coef, const torch::Tensor& t, const torch::Tensor& x);

}  // namespace dm::schedule
