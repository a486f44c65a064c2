// dm/diffusion/sde.hpp — the forward processes of Song et al. (2021) as SDEs.
//
// A forward SDE on t ∈ [0, T] (T = 1 unless said otherwise), data at t = 0:
//     dx = f(x, t) dt + g(t) dw.
// For the three SDEs here the drift is linear, f(x, t) = φ(t)·x, so each
// marginal is Gaussian around a multiple of x_0 — the form every process of
// the suite has (dm/diffusion/process.hpp):
//     x_t = a(t)·x_0 + s(t)·ε,    a(t) = exp(∫_0^t φ),
//     s(t)² = ∫_0^t a(t)²/a(u)² g(u)² du.
// Solving that integral for each gives the closed-form kernels p_0t:
//   VE     dx = √(dσ²/dt) dw,               σ(t) = σ_min (σ_max/σ_min)^t
//          a = 1,                            s² = σ(t)² − σ(0)²
//   VP     dx = −½β(t) x dt + √β(t) dw,     β(t) = β_min + t (β_max − β_min)
//          a = e^{−½∫β},                     s² = 1 − e^{−∫β}
//   sub-VP dx = −½β(t) x dt + √(β(t)(1 − e^{−2∫β})) dw
//          a = e^{−½∫β},                     s = 1 − e^{−∫β}   (no square root)
// with ∫_0^t β = β_min t + ½ t² (β_max − β_min). Each also has a discrete form
// with N steps, x_{i} = x_{i−1} + f_i(x_{i−1}) + G_i z: VP's gives back DDPM's
// β table, VE's NCSN's noising chain (discrete_betas, discrete_sigmas).
//
// The VE kernel here is the exact one from a data point, σ(t)² − σ(0)²; the
// score_sde code uses σ(t) as the std (the data taken as already blurred by
// σ_min). The two differ by σ_min² = 10⁻⁴ in variance.
#pragma once

#include <torch/torch.h>

#include <string>

#include "dm/diffusion/process.hpp"
#include "dm/diffusion/schedule.hpp"

namespace dm::sde {

// ANCHOR: sde
class SDE : public Process {
 public:
  double t_min() const override { return 0.0; }
  double t_max() const override { return horizon_; }
  // f(x, t) = φ(t)·x: the drift's coefficient φ(t) and the drift itself.
  virtual double drift_coef(double t) const = 0;
  torch::Tensor drift(const torch::Tensor& x, double t) const { return drift_coef(t) * x; }
  // g(t), the diffusion coefficient.
  virtual double diffusion(double t) const = 0;
  // The prior the reverse process starts from: N(0, prior_std² I), which the
  // marginal at t_max approaches (VP: 1, VE: σ_max).
  virtual double prior_std() const = 0;
  torch::Tensor prior_sample(at::IntArrayRef shape, at::Generator& gen,
                             const torch::TensorOptions& options = torch::kFloat64) const;
  // log N(x; 0, prior_std² I) per row: x [N, …] → [N], float64.
  torch::Tensor prior_log_prob(const torch::Tensor& x) const;
  // Where samplers stop short of t = 0 (score_sde's ε: 10⁻³ for VP and
  // sub-VP, 10⁻⁵ for VE), since an ε-network's score −ε/s blows up as s → 0.
  virtual double sampling_eps() const = 0;

 protected:
  explicit SDE(double horizon) : horizon_(horizon) {}
  double horizon_;
};
// ANCHOR_END: sde

// "ve", "vp" or "subvp": the SDE's name as a metrics key.
std::string key_of(const SDE& sde);

// ANCHOR: vp
// Variance preserving: DDPM's process in continuous time. β(t) rises linearly
// over [0, T]: β(t) = β_min + (t/T)(β_max − β_min). With β_min = β_max = 2 and
// horizon T it is the Ornstein–Uhlenbeck process dx = −x dt + √2 dw.
class VP : public SDE {
 public:
  explicit VP(double beta_min = 0.1, double beta_max = 20.0, double horizon = 1.0);
  std::string name() const override { return "VP"; }
  double beta(double t) const;
  double integrated_beta(double t) const;  // ∫_0^t β(u) du
  Coefficients at(double t) const override;
  torch::Tensor a(const torch::Tensor& t) const override;
  torch::Tensor s(const torch::Tensor& t) const override;
  double drift_coef(double t) const override { return -0.5 * beta(t); }
  double diffusion(double t) const override;
  double prior_std() const override { return 1.0; }
  double sampling_eps() const override { return 1e-3; }
  double beta_min() const { return beta_min_; }
  double beta_max() const { return beta_max_; }

  // The discrete form with N steps: β_i = β(t_i)·T/N at t_i = (i − 1)/(N − 1)·T,
  // i.e. linspace(β_min T/N, β_max T/N, N) — for T = 1, N = 1000 DDPM's
  // table 10⁻⁴ … 0.02 (Ho et al.'s linear schedule).
  torch::Tensor discrete_betas(int64_t N) const;
  schedule::Schedule discretise(int64_t N) const;

 protected:
  double beta_min_, beta_max_;
};
// ANCHOR_END: vp

// ANCHOR: subvp
// Sub-VP: the VP drift with a smaller diffusion, so that its variance stays
// below VP's at every t (s_subVP = s_VP²).
class SubVP : public VP {
 public:
  using VP::VP;
  std::string name() const override { return "sub-VP"; }
  Coefficients at(double t) const override;
  torch::Tensor s(const torch::Tensor& t) const override;
  double diffusion(double t) const override;
};
// ANCHOR_END: subvp

// ANCHOR: ve
// Variance exploding: NCSN's process in continuous time. σ(t) is geometric in t,
// g(t) = √(dσ²/dt) = σ(t)·√(2 ln(σ_max/σ_min)).
class VE : public SDE {
 public:
  explicit VE(double sigma_min = 0.01, double sigma_max = 50.0);
  std::string name() const override { return "VE"; }
  double sigma(double t) const;  // σ(t) = σ_min (σ_max/σ_min)^t
  Coefficients at(double t) const override;
  torch::Tensor a(const torch::Tensor& t) const override;
  torch::Tensor s(const torch::Tensor& t) const override;
  double drift_coef(double) const override { return 0.0; }
  double diffusion(double t) const override;
  double prior_std() const override { return sigma_max_; }
  double sampling_eps() const override { return 1e-5; }
  double sigma_min() const { return sigma_min_; }
  double sigma_max() const { return sigma_max_; }
  // The time at which the marginal's std s(t) equals `std` (> 0).
  double time_of_std(double std) const;

  // The discrete form with N steps: σ_i = σ(t_i) at t_i = (i − 1)/(N − 1), the
  // geometric levels σ_min … σ_max (NCSN's σ list, in increasing order), and
  // the chain x_i = x_{i−1} + √(σ_i² − σ_{i−1}²) z.
  std::vector<double> discrete_sigmas(int64_t N) const;

 private:
  double sigma_min_, sigma_max_;
};
// ANCHOR_END: ve

}  // namespace dm::sde
