// Chapter 03 exercises — reference solutions (see exercises.hpp).
#include "exercises.hpp"

#include <cmath>

namespace ex03 {

// ANCHOR: sol_ncsn_loss
torch::Tensor ncsn_loss(const EpsNet& eps_net, const torch::Tensor& x, const torch::Tensor& sigma,
                        const torch::Tensor& eps) {
  const auto x_noisy = x + sigma.view({-1, 1}) * eps;
  return (eps_net(x_noisy, sigma) - eps).pow(2).mean();
}
// ANCHOR_END: sol_ncsn_loss

// ANCHOR: sol_annealed_level
torch::Tensor annealed_level(const Score& score, torch::Tensor x, double sigma, double alpha,
                             const torch::Tensor& z) {
  for (int64_t k = 0; k < z.size(0); ++k)
    x = x + 0.5 * alpha * score(x, sigma) + std::sqrt(alpha) * z[k];
  return x;
}
// ANCHOR_END: sol_annealed_level

// ANCHOR: sol_variance_ratio
double variance_ratio_after(double a, double gamma, int T) {
  double r = gamma * gamma;
  for (int k = 0; k < T; ++k) r = (1 - a / 2) * (1 - a / 2) * r + a;
  return r;
}
// ANCHOR_END: sol_variance_ratio

// ANCHOR: sol_ve_chain
std::vector<torch::Tensor> ve_chain(const torch::Tensor& x0, const std::vector<double>& ascending,
                                    const torch::Tensor& z) {
  std::vector<torch::Tensor> xs;
  auto x = x0;
  double previous = 0;
  for (size_t k = 0; k < ascending.size(); ++k) {
    x = x + std::sqrt(ascending[k] * ascending[k] - previous * previous) * z[int64_t(k)];
    xs.push_back(x);
    previous = ascending[k];
  }
  return xs;
}
// ANCHOR_END: sol_ve_chain

}  // namespace ex03
