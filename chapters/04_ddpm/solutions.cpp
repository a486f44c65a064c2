// Chapter 04 exercises — reference solutions.
//
// Try exercises.cpp first. These answers are written out from the formulas in
// exercises.hpp, not by calling dm::schedule or dm::ddpm, so they can be read
// on their own; the tests compare them with the library.
#include "exercises.hpp"

#include <cmath>
#include <vector>

namespace ex04 {

torch::Tensor alpha_bar(const torch::Tensor& betas) {
  // ᾱ_t = Π_{s≤t} α_s with α_s = 1 − β_s: a running (inclusive) product
  return torch::cumprod(1.0 - betas, 0);
}

torch::Tensor q_sample(const torch::Tensor& x0, const torch::Tensor& alpha_bar_t,
                       const torch::Tensor& eps) {
  // ᾱ_t [N] → [N, 1, …, 1]: one coefficient per row, broadcast over the rest
  std::vector<int64_t> shape(x0.dim(), 1);
  shape[0] = alpha_bar_t.numel();
  const auto ab = alpha_bar_t.reshape(shape);
  // x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε
  return ab.sqrt() * x0 + (1.0 - ab).sqrt() * eps;
}

Posterior posterior_mean_variance(const torch::Tensor& x0, const torch::Tensor& xt, double beta_t,
                                  double alpha_bar_t, double alpha_bar_prev) {
  const double alpha_t = 1.0 - beta_t;
  // μ̃_t = [β_t √ᾱ_{t−1}/(1 − ᾱ_t)] x_0 + [(1 − ᾱ_{t−1}) √α_t/(1 − ᾱ_t)] x_t
  const double coef_x0 = beta_t * std::sqrt(alpha_bar_prev) / (1.0 - alpha_bar_t);
  const double coef_xt = (1.0 - alpha_bar_prev) * std::sqrt(alpha_t) / (1.0 - alpha_bar_t);
  // β̃_t = β_t (1 − ᾱ_{t−1})/(1 − ᾱ_t): 0 at t = 1, where x_0 is x_{t−1} itself
  const double variance = beta_t * (1.0 - alpha_bar_prev) / (1.0 - alpha_bar_t);
  return {coef_x0 * x0 + coef_xt * xt, variance};
}

torch::Tensor ancestral_step(const torch::Tensor& xt, const torch::Tensor& eps_pred, double beta_t,
                             double alpha_bar_t, double sigma_t, const torch::Tensor& z) {
  // μ_θ = (x_t − β_t/√(1 − ᾱ_t) ε̂) / √α_t,  α_t = 1 − β_t
  const auto mean =
      (xt - (beta_t / std::sqrt(1.0 - alpha_bar_t)) * eps_pred) / std::sqrt(1.0 - beta_t);
  // x_{t−1} = μ_θ + σ_t z
  return mean + sigma_t * z;
}

}  // namespace ex04
