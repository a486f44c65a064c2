// Chapter 02 exercises — reference solutions (see exercises.hpp).
#include "exercises.hpp"

namespace ex02 {

// ANCHOR: sol_explicit_sm
torch::Tensor explicit_sm(const Field& score, const torch::Tensor& x, const torch::Tensor& target) {
  return (score(x) - target).pow(2).sum(1).mean();
}
// ANCHOR_END: sol_explicit_sm

// ANCHOR: sol_directional_derivative
torch::Tensor directional_derivative(const Field& score, const torch::Tensor& x,
                                     const torch::Tensor& nu) {
  torch::AutoGradMode grad_on(true);
  auto h = torch::zeros({x.size(0), 1}, x.options()).requires_grad_(true);
  const auto f = (nu * score(x.detach() + h * nu)).sum();  // row n depends on h_n only
  return torch::autograd::grad({f}, {h}, {}, /*retain_graph=*/true, /*create_graph=*/true)[0]
      .squeeze(1);
}
// ANCHOR_END: sol_directional_derivative

// ANCHOR: sol_sliced_sm
torch::Tensor sliced_sm(const Field& score, const torch::Tensor& x, const torch::Tensor& nu) {
  return (score(x).pow(2).sum(1) + 2 * directional_derivative(score, x, nu)).mean();
}
// ANCHOR_END: sol_sliced_sm

// ANCHOR: sol_denoising_eps
torch::Tensor denoising_eps(const Field& eps_net, const torch::Tensor& x, double sigma,
                            const torch::Tensor& eps) {
  return (eps_net(x + sigma * eps) - eps).pow(2).sum(1).mean();
}
// ANCHOR_END: sol_denoising_eps

}  // namespace ex02
