#include "dm/methods/losses.hpp"

#include "dm/base/core.hpp"
#include "dm/base/rng.hpp"
#include "dm/diffusion/param.hpp"

namespace dm::losses {

namespace {

void check_batch(const torch::Tensor& x, const char* who) {
  if (!x.defined() || x.dim() < 2 || !x.is_floating_point())
    throw Error(std::string(who) + ": x must be a floating batch [N, ...]",
                "pass the samples as a float32/float64 tensor with the batch first");
}

torch::Tensor row_sq_norm(const torch::Tensor& v) { return v.pow(2).flatten(1).sum(1); }

torch::Tensor draw_noise(const torch::Tensor& x, at::Generator& gen) {
  return dm::randn_like(x, gen);
}

}  // namespace

// ANCHOR: esm_impl
torch::Tensor explicit_sm(const Field& score, const torch::Tensor& x, const torch::Tensor& target) {
  check_batch(x, "explicit_sm");
  return row_sq_norm(score(x) - target).mean();
}
// ANCHOR_END: esm_impl

// ANCHOR: directional_derivative
namespace {
// s(x) and d/dh νᵀ s(x + hν) at h = 0, per row, from one forward pass.
std::pair<torch::Tensor, torch::Tensor> score_and_derivative(const Field& score,
                                                             const torch::Tensor& x,
                                                             const torch::Tensor& nu) {
  torch::AutoGradMode grad_on(true);
  // One dummy step size h per row, all zero: x + h·ν = x, but autograd sees
  // how νᵀ s changes as h moves, which is νᵀ J_s(x) ν.
  auto h = torch::zeros({x.size(0)}, x.options()).requires_grad_(true);
  std::vector<int64_t> shape(x.dim(), 1);
  shape[0] = x.size(0);
  const auto s = score(x.detach() + h.view(shape) * nu);
  const auto f = (nu * s).sum();  // Σ_n ν_nᵀ s(x_n + h_n ν_n): row n depends on h_n only
  // create_graph: the result is itself differentiated with respect to θ by the optimiser.
  auto dh = torch::autograd::grad({f}, {h}, {}, /*retain_graph=*/true, /*create_graph=*/true)[0];
  return {s, dh};
}
}  // namespace

torch::Tensor directional_derivative(const Field& score, const torch::Tensor& x,
                                     const torch::Tensor& nu) {
  return score_and_derivative(score, x, nu).second;
}
// ANCHOR_END: directional_derivative

// ANCHOR: ssm
torch::Tensor sliced_sm(const Field& score, const torch::Tensor& x, at::Generator& generator,
                        Projection projection, int64_t projections) {
  check_batch(x, "sliced_sm");
  if (projections < 1) throw Error("sliced_sm: projections must be ≥ 1");
  torch::Tensor s, trace;
  for (int64_t p = 0; p < projections; ++p) {
    // ν with E[ννᵀ] = I: random signs (Rademacher) or standard normal.
    auto nu = draw_noise(x, generator);
    if (projection == Projection::rademacher) nu = nu.sign();
    auto [s_p, d_p] =
        score_and_derivative(score, x, nu);  // νᵀJν: an unbiased estimate of tr J_s(x)
    if (p == 0) {
      s = s_p;
      trace = d_p;
    } else {
      trace = trace + d_p;
    }
  }
  return (row_sq_norm(s) + 2.0 * trace / double(projections)).mean();
}
// ANCHOR_END: ssm

// ANCHOR: dsm
torch::Tensor denoising_sm(const Field& score, const torch::Tensor& x, double sigma,
                           at::Generator& gen) {
  check_batch(x, "denoising_sm");
  return denoising_sm(score, x, sigma, draw_noise(x, gen));
}

torch::Tensor denoising_sm(const Field& score, const torch::Tensor& x, double sigma,
                           const torch::Tensor& e) {
  check_batch(x, "denoising_sm");
  if (!(sigma > 0)) throw Error("denoising_sm: σ must be > 0");
  const auto x_noisy = x + sigma * e;
  // ∇ log N(x̃; x, σ²I) = −(x̃ − x)/σ² = −ε/σ: the target is known in closed form.
  return row_sq_norm(score(x_noisy) + e / sigma).mean();
}

torch::Tensor denoising_eps(const Field& eps_net, const torch::Tensor& x, double sigma,
                            at::Generator& gen) {
  check_batch(x, "denoising_eps");
  return denoising_eps(eps_net, x, sigma, draw_noise(x, gen));
}

torch::Tensor denoising_eps(const Field& eps_net, const torch::Tensor& x, double sigma,
                            const torch::Tensor& e) {
  check_batch(x, "denoising_eps");
  if (!(sigma > 0)) throw Error("denoising_eps: σ must be > 0");
  return row_sq_norm(eps_net(x + sigma * e) - e).mean();
}
// ANCHOR_END: dsm

double relative_score_error(const Field& score, const torch::Tensor& x,
                            const torch::Tensor& target) {
  torch::NoGradGuard no_grad;
  const auto err = row_sq_norm(score(x).to(target.dtype()) - target).mean();
  return (err / row_sq_norm(target).mean()).item<double>();
}

// ANCHOR: eps_matching_impl
torch::Tensor eps_matching_loss(Model& model, const Process& process, const torch::Tensor& x0,
                                const torch::Tensor& t, const torch::Tensor& eps,
                                const Condition& c, const torch::Tensor& weights) {
  check_batch(x0, "eps_matching_loss");
  const auto xt = marginal_sample(process, x0, t, eps);  // x_t = a(t) x_0 + s(t) ε
  // ‖ε_θ(x_t, t) − ε‖², averaged over the batch and the dimensions
  const auto err = (predict_as(Prediction::eps, model, process, xt, t, c) - eps).pow(2);
  if (!weights.defined()) return err.mean();
  return (per_row(weights, err) * err).mean();
}
// ANCHOR_END: eps_matching_impl

}  // namespace dm::losses
