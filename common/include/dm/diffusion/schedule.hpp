// dm/diffusion/schedule.hpp — the discrete noise schedule of DDPM.
//
// The forward process adds Gaussian noise in T small steps,
//   q(x_t | x_{t−1}) = N(√(1−β_t) x_{t−1}, β_t I),   t = 1, …, T,
// and everything else follows from the β's:
//   α_t = 1 − β_t,   ᾱ_t = Π_{s≤t} α_s,   q(x_t | x_0) = N(√ᾱ_t x_0, (1−ᾱ_t) I),
//   q(x_{t−1} | x_t, x_0) = N(μ̃_t, β̃_t I) with
//     μ̃_t = β_t √ᾱ_{t−1}/(1−ᾱ_t) · x_0 + (1−ᾱ_{t−1}) √α_t/(1−ᾱ_t) · x_t,
//     β̃_t = β_t (1−ᾱ_{t−1})/(1−ᾱ_t).
//
// Time and indexing. As a process (dm/diffusion/process.hpp) the schedule's
// time is DDPM's own step t ∈ [0, T], data at t = 0: a(t) = √ᾱ_t, s(t) = √(1−ᾱ_t),
// with ᾱ_0 = 1. Between integers ᾱ is interpolated linearly in log ᾱ, so a
// respaced or continuous grid can ask for any t. The tables below have T
// entries, and entry i = 0, …, T−1 belongs to step t = i + 1 (the indexing of
// the DDPM reference code, whose networks see i as their time label): so
// betas[0] = β_1, alpha_bar[i] = ᾱ_{i+1}, alpha_bar_prev[0] = ᾱ_0 = 1.
//
// All tables are float64 (round-off in ᾱ_t and 1/√ᾱ_t matters near t = T);
// cast the gathered coefficients to the data's dtype (extract_like does).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "dm/diffusion/process.hpp"

namespace dm::schedule {

struct Schedule : public Process {
  torch::Tensor betas;                     // β_t
  torch::Tensor alphas;                    // α_t = 1 − β_t
  torch::Tensor alpha_bar;                 // ᾱ_t = Π_{s≤t} α_s
  torch::Tensor alpha_bar_prev;            // ᾱ_{t−1} (ᾱ_0 = 1)
  torch::Tensor sqrt_alpha_bar;            // √ᾱ_t: the signal scale of x_t
  torch::Tensor sqrt_one_minus_alpha_bar;  // √(1−ᾱ_t): the noise std of x_t
  torch::Tensor posterior_variance;  // β̃_t = β_t (1−ᾱ_{t−1})/(1−ᾱ_t); β̃_1 = 0
  torch::Tensor posterior_log_variance_clipped;  // log β̃_t, with log β̃_2 at t = 1
  torch::Tensor posterior_mean_coef1;  // β_t √ᾱ_{t−1}/(1−ᾱ_t)    (multiplies x_0)
  torch::Tensor posterior_mean_coef2;  // (1−ᾱ_{t−1}) √α_t/(1−ᾱ_t) (multiplies x_t)
  int64_t T = 0;
  std::string label;  // "linear", "cosine", …: names figures and checkpoints

  // Every table derived from the β's [T] (0 < β < 1, T ≥ 2); `name` labels figures.
  static Schedule from_betas(const torch::Tensor& betas, std::string name);

  // The same schedule with its tables on `device` (still float64).
  Schedule to(const torch::Device& device) const;

  // ---- The schedule as a process: time t ∈ [0, T], data at 0 ----
  std::string name() const override { return label; }
  double t_min() const override { return 0.0; }
  double t_max() const override { return double(T); }
  Coefficients at(double t) const override;  // (√ᾱ_t, √(1−ᾱ_t)); dm::Error outside [0, T]
  // Per row, t [N] in [0, T] (not checked: that would synchronise with a GPU;
  // at() checks the times a sampler's grid uses), on t's device. An integer t
  // (the training loss's step indices) is one gather from the tables; a
  // floating t interpolates between steps. The tables are copied to a device
  // once, on first use there, and reused.
  torch::Tensor a(const torch::Tensor& t) const override;
  torch::Tensor s(const torch::Tensor& t) const override;
  // Between neighbouring steps (t_next = t − 1) the tables above, exactly;
  // between any other two times (a respaced grid) the general formula.
  Posterior posterior(double t, double t_next) const override;

 private:
  // Host copies of the tables, so that a sampler's per-step lookups never
  // touch a device (no synchronisation when the tables live on a GPU).
  std::vector<double> h_betas_, h_sqrt_ab_, h_sqrt_1m_ab_, h_log_ab_, h_coef1_, h_coef2_,
      h_post_var_, h_post_log_var_, h_large_log_var_;
  void fill_host_tables();
  // [T + 1] tables with the t = 0 entry in front: √ᾱ, √(1−ᾱ), log ᾱ (CPU,
  // float64), and their copies on the last other device asked for.
  struct LookupTables {
    torch::Tensor a, s, log_ab;
  };
  struct DeviceCache {
    std::mutex mutex;
    LookupTables tables;
  };
  LookupTables cpu_tables_;
  std::shared_ptr<DeviceCache> device_cache_ = std::make_shared<DeviceCache>();
  LookupTables tables_on(const torch::Device& device) const;
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
torch::Tensor extract_like(const torch::Tensor& coef, const torch::Tensor& t,
                           const torch::Tensor& x);

}  // namespace dm::schedule
