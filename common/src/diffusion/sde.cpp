#include "dm/diffusion/sde.hpp"

#include <cmath>
#include <string>

#include "dm/base/core.hpp"
#include "dm/base/rng.hpp"

namespace dm::sde {

torch::Tensor SDE::prior_sample(at::IntArrayRef shape, at::Generator& gen,
                                const torch::TensorOptions& options) const {
  return prior_std() * randn(shape, gen, options);
}

torch::Tensor SDE::prior_log_prob(const torch::Tensor& x) const {
  const auto flat = x.to(torch::kFloat64).flatten(1);
  const double D = double(flat.size(1)), v = prior_std() * prior_std();
  // log N(x; 0, v I) = −D/2 log(2π v) − ‖x‖²/(2v)
  return -0.5 * D * std::log(2.0 * M_PI * v) - flat.pow(2).sum(1) / (2.0 * v);
}

std::string key_of(const SDE& sde) {
  return sde.name() == "sub-VP" ? "subvp" : (sde.name() == "VP" ? "vp" : "ve");
}

// ---- VP ------------------------------------------------------------------------

VP::VP(double beta_min, double beta_max, double horizon)
    : SDE(horizon), beta_min_(beta_min), beta_max_(beta_max) {
  if (!(beta_min > 0) || !(beta_max >= beta_min) || !(horizon > 0))
    throw Error("VP: need 0 < β_min ≤ β_max and a positive horizon, got β_min = " +
                std::to_string(beta_min) + ", β_max = " + std::to_string(beta_max) +
                ", T = " + std::to_string(horizon));
}

// ANCHOR: vp_impl
double VP::beta(double t) const { return beta_min_ + (t / horizon_) * (beta_max_ - beta_min_); }

double VP::integrated_beta(double t) const {
  return beta_min_ * t + 0.5 * t * t / horizon_ * (beta_max_ - beta_min_);
}

Coefficients VP::at(double t) const {
  const double B = integrated_beta(t);
  return {std::exp(-0.5 * B), std::sqrt(-std::expm1(-B))};  // e^{−½∫β}, √(1 − e^{−∫β})
}

double VP::diffusion(double t) const { return std::sqrt(beta(t)); }
// ANCHOR_END: vp_impl

torch::Tensor VP::a(const torch::Tensor& t) const {
  const auto td = t.to(torch::kFloat64);
  const auto B = beta_min_ * td + 0.5 / horizon_ * (beta_max_ - beta_min_) * td * td;
  return torch::exp(-0.5 * B);
}

torch::Tensor VP::s(const torch::Tensor& t) const {
  const auto td = t.to(torch::kFloat64);
  const auto B = beta_min_ * td + 0.5 / horizon_ * (beta_max_ - beta_min_) * td * td;
  return torch::sqrt(-torch::expm1(-B));
}

torch::Tensor VP::discrete_betas(int64_t N) const {
  if (N < 2) throw Error("VP::discrete_betas: need N ≥ 2 steps");
  return torch::linspace(beta_min_ * horizon_ / double(N), beta_max_ * horizon_ / double(N), N,
                         torch::kFloat64);
}

schedule::Schedule VP::discretise(int64_t N) const {
  return schedule::Schedule::from_betas(discrete_betas(N), "VP, N = " + std::to_string(N));
}

// ---- sub-VP --------------------------------------------------------------------

// ANCHOR: subvp_impl
Coefficients SubVP::at(double t) const {
  const double B = integrated_beta(t);
  return {std::exp(-0.5 * B), -std::expm1(-B)};  // s = 1 − e^{−∫β}
}

double SubVP::diffusion(double t) const {
  return std::sqrt(beta(t) * -std::expm1(-2.0 * integrated_beta(t)));  // √(β (1 − e^{−2∫β}))
}
// ANCHOR_END: subvp_impl

torch::Tensor SubVP::s(const torch::Tensor& t) const {
  const auto td = t.to(torch::kFloat64);
  const auto B = beta_min_ * td + 0.5 / horizon_ * (beta_max_ - beta_min_) * td * td;
  return -torch::expm1(-B);
}

// ---- VE ------------------------------------------------------------------------

VE::VE(double sigma_min, double sigma_max)
    : SDE(1.0), sigma_min_(sigma_min), sigma_max_(sigma_max) {
  if (!(sigma_min > 0) || !(sigma_max > sigma_min))
    throw Error("VE: need 0 < σ_min < σ_max, got σ_min = " + std::to_string(sigma_min) +
                ", σ_max = " + std::to_string(sigma_max));
}

// ANCHOR: ve_impl
double VE::sigma(double t) const { return sigma_min_ * std::pow(sigma_max_ / sigma_min_, t); }

Coefficients VE::at(double t) const {
  const double sig = sigma(t);
  return {1.0, std::sqrt(std::max(sig * sig - sigma_min_ * sigma_min_, 0.0))};  // √(σ(t)² − σ(0)²)
}

double VE::diffusion(double t) const {
  return sigma(t) * std::sqrt(2.0 * std::log(sigma_max_ / sigma_min_));  // √(dσ²/dt)
}
// ANCHOR_END: ve_impl

torch::Tensor VE::a(const torch::Tensor& t) const {
  return torch::ones_like(t, t.options().dtype(torch::kFloat64));
}

torch::Tensor VE::s(const torch::Tensor& t) const {
  const auto sig = sigma_min_ * torch::pow(sigma_max_ / sigma_min_, t.to(torch::kFloat64));
  return torch::sqrt((sig * sig - sigma_min_ * sigma_min_).clamp_min(0.0));
}

double VE::time_of_std(double std) const {
  if (!(std > 0)) throw Error("VE::time_of_std: need a positive std");
  return std::log(std::sqrt(std * std + sigma_min_ * sigma_min_) / sigma_min_) /
         std::log(sigma_max_ / sigma_min_);
}

std::vector<double> VE::discrete_sigmas(int64_t N) const {
  if (N < 2) throw Error("VE::discrete_sigmas: need N ≥ 2 steps");
  std::vector<double> out;
  for (int64_t i = 0; i < N; ++i) out.push_back(sigma(double(i) / double(N - 1)));
  return out;
}

}  // namespace dm::sde
