// Chapter 01 exercises — reference solutions.
//
// Try exercises.cpp first. These answers are written out from the formulas in
// exercises.hpp, not by calling dm::langevin, so they can be read on their own;
// the tests compare them with the library.
#include "exercises.hpp"

#include <cmath>

namespace ex01 {

torch::Tensor ula_step(const torch::Tensor& x, const torch::Tensor& score, double dt,
                       const torch::Tensor& z) {
  // X_{k+1} = X_k + (Δt/2) s(X_k) + √Δt Z_k
  return x + (dt / 2.0) * score + std::sqrt(dt) * z;
}

torch::Tensor mala_log_accept(const Fn& log_prob, const Fn& score, const torch::Tensor& x,
                              const torch::Tensor& x_new, double dt) {
  // log q(b | a) = −‖b − a − (Δt/2) s(a)‖² / (2Δt), one value per chain: the
  // mean of the proposal from a uses the score at a (not at b).
  auto log_q = [&](const torch::Tensor& b, const torch::Tensor& a) {
    auto mean = a + (dt / 2.0) * score(a);
    return -(b - mean).pow(2).sum(1) / (2.0 * dt);
  };
  // log α = log p(x') − log p(x) + log q(x | x') − log q(x' | x)
  return log_prob(x_new) - log_prob(x) + log_q(x, x_new) - log_q(x_new, x);
}

torch::Tensor double_well_tempered_score(const torch::Tensor& x, double tau) {
  // V(x) = −x⁴ + 4x²  ⇒  V'(x) = −4x³ + 8x;  ∇log p_τ = V'(x)/τ
  return (-4.0 * x.pow(3) + 8.0 * x) / tau;
}

std::vector<double> geometric_schedule(double tau_max, double tau_min, int levels) {
  if (levels == 1) return {tau_min};  // i/(L−1) is 0/0 here; one level means "sample at τ_min"
  std::vector<double> taus(levels);
  for (int i = 0; i < levels; ++i) {
    // τ_i = τ_max (τ_min/τ_max)^{i/(L−1)}: ratio (τ_min/τ_max)^{1/(L−1)} between neighbours
    taus[i] = tau_max * std::pow(tau_min / tau_max, double(i) / double(levels - 1));
  }
  return taus;
}

}  // namespace ex01
