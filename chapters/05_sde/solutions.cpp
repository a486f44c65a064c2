// Chapter 05 exercises — reference solutions.
//
// Try exercises.cpp first. These answers are written out from the formulas in
// exercises.hpp, not by calling dm::sde, so they can be read on their own; the
// tests compare them with the library.
#include "exercises.hpp"

#include <cmath>

namespace ex05 {

namespace {
// ∫_0^t β(u) du for β(u) = β_min + u (β_max − β_min)
double integrated_beta(double t, double beta_min, double beta_max) {
  return beta_min * t + 0.5 * t * t * (beta_max - beta_min);
}
}  // namespace

Marginal vp_marginal(double t, double beta_min, double beta_max) {
  const double B = integrated_beta(t, beta_min, beta_max);
  // a = e^{−½∫β},  s = √(1 − e^{−∫β}); −expm1(−B) is 1 − e^{−B} without the
  // cancellation at small B
  return {std::exp(-0.5 * B), std::sqrt(-std::expm1(-B))};
}

double subvp_std(double t, double beta_min, double beta_max) {
  // s = 1 − e^{−∫β}: VP's variance, as a standard deviation
  return -std::expm1(-integrated_beta(t, beta_min, beta_max));
}

double ve_diffusion(double t, double sigma_min, double sigma_max) {
  // σ(t)² = σ_min² e^{2t ln(σ_max/σ_min)}, so dσ²/dt = σ(t)² · 2 ln(σ_max/σ_min)
  // and g = √(dσ²/dt) = σ(t) √(2 ln(σ_max/σ_min))
  const double sigma = sigma_min * std::pow(sigma_max / sigma_min, t);
  return sigma * std::sqrt(2.0 * std::log(sigma_max / sigma_min));
}

torch::Tensor euler_maruyama_step_forward(const torch::Tensor& x, const torch::Tensor& drift,
                                          double g, double dt, const torch::Tensor& z) {
  // x' = x + f dt + g √dt z
  return x + drift * dt + (g * std::sqrt(dt)) * z;
}

torch::Tensor reverse_em_step(const torch::Tensor& x, const torch::Tensor& f, double g,
                              const torch::Tensor& score, double dt, const torch::Tensor& z) {
  // the reverse drift f − g² s, followed backwards for dt: x' = x − (f − g² s) dt + g √dt z
  const auto reverse_drift = f - (g * g) * score;
  return x - reverse_drift * dt + (g * std::sqrt(dt)) * z;
}

}  // namespace ex05
