#include "dm/ddpm.hpp"

#include <memory>

#include "dm/progress.hpp"
#include "dm/rng.hpp"

namespace dm::ddpm {

using schedule::extract_like;

namespace {
// fixedlarge's log σ²: log β_t, with log β̃_2 in front as in the DDPM code.
torch::Tensor fixedlarge_log_variance(const Schedule& s) {
  using torch::indexing::Slice;
  return torch::cat({s.posterior_variance.index({Slice(1, 2)}), s.betas.index({Slice(1, s.T)})}).log();
}
}  // namespace

// ANCHOR: q_sample
torch::Tensor q_sample(const Schedule& s, const torch::Tensor& x0, const torch::Tensor& t,
                       const torch::Tensor& eps) {
  // x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε
  return extract_like(s.sqrt_alpha_bar, t, x0) * x0 + extract_like(s.sqrt_one_minus_alpha_bar, t, x0) * eps;
}
// ANCHOR_END: q_sample

// ANCHOR: q_step
torch::Tensor q_step(const Schedule& s, const torch::Tensor& x_prev, const torch::Tensor& t,
                     const torch::Tensor& z) {
  // x_t = √(1 − β_t) x_{t−1} + √β_t z
  const auto beta = extract_like(s.betas, t, x_prev);
  return (1.0 - beta).sqrt() * x_prev + beta.sqrt() * z;
}
// ANCHOR_END: q_step

// ANCHOR: posterior
Gaussian posterior_mean_variance(const Schedule& s, const torch::Tensor& x0, const torch::Tensor& xt,
                                 const torch::Tensor& t) {
  // μ̃_t = [β_t √ᾱ_{t−1}/(1 − ᾱ_t)] x_0 + [(1 − ᾱ_{t−1}) √α_t/(1 − ᾱ_t)] x_t
  auto mean =
      extract_like(s.posterior_mean_coef1, t, xt) * x0 + extract_like(s.posterior_mean_coef2, t, xt) * xt;
  // β̃_t = β_t (1 − ᾱ_{t−1})/(1 − ᾱ_t)
  return {mean, extract_like(s.posterior_variance, t, xt),
          extract_like(s.posterior_log_variance_clipped, t, xt)};
}

torch::Tensor predict_x0_from_eps(const Schedule& s, const torch::Tensor& xt, const torch::Tensor& t,
                                  const torch::Tensor& eps) {
  // x̂_0 = (x_t − √(1 − ᾱ_t) ε) / √ᾱ_t   (q_sample solved for x_0)
  return (xt - extract_like(s.sqrt_one_minus_alpha_bar, t, xt) * eps) / extract_like(s.sqrt_alpha_bar, t, xt);
}
// ANCHOR_END: posterior

// ANCHOR: mean_from_eps
torch::Tensor mean_from_eps(const Schedule& s, const torch::Tensor& xt, const torch::Tensor& t,
                            const torch::Tensor& eps) {
  // μ_θ = (x_t − β_t/√(1 − ᾱ_t) ε) / √α_t
  const auto beta = extract_like(s.betas, t, xt);
  return (xt - beta / extract_like(s.sqrt_one_minus_alpha_bar, t, xt) * eps) /
         extract_like(s.alphas, t, xt).sqrt();
}
// ANCHOR_END: mean_from_eps

// ANCHOR: model_eps
torch::Tensor model_eps(Model& model, const Schedule& s, const torch::Tensor& x, const torch::Tensor& t,
                        const torch::Tensor& labels) {
  // The network's time label: the step index as a number, in x's dtype.
  auto out = model.predict(x, t.to(x.options()), labels);
  if (model.prediction() == Prediction::eps) return out;
  // ε = −√(1 − ᾱ_t) · ∇log q(x_t): the score of x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε
  return eps_from_score(out, extract_like(s.sqrt_one_minus_alpha_bar, t, x));
}
// ANCHOR_END: model_eps

// ANCHOR: p_mean_variance
ReverseStep p_mean_variance(Model& model, const Schedule& s, const torch::Tensor& x, const torch::Tensor& t,
                            const torch::Tensor& labels, Variance variance, bool clip_x0) {
  ReverseStep out;
  out.eps = model_eps(model, s, x, t, labels);  // ε_θ(x_t, t)
  out.x0_pred = predict_x0_from_eps(s, x, t, out.eps);
  if (clip_x0) out.x0_pred = out.x0_pred.clamp(-1.0, 1.0);  // the DDPM code's clip_denoised
  // μ_θ(x_t, t) = μ̃_t(x_t, x̂_0): the true posterior mean with x̂_0 in place of x_0
  auto posterior = posterior_mean_variance(s, out.x0_pred, x, t);
  out.mean = posterior.mean;
  if (variance == Variance::fixedsmall) {  // σ_t² = β̃_t
    out.variance = posterior.variance;
    out.log_variance = posterior.log_variance;
  } else {  // σ_t² = β_t
    out.variance = extract_like(s.betas, t, x);
    out.log_variance = extract_like(fixedlarge_log_variance(s), t, x);
  }
  return out;
}
// ANCHOR_END: p_mean_variance

// ANCHOR: p_sample_step
torch::Tensor p_sample_step(Model& model, const Schedule& s, const torch::Tensor& x, int64_t t_index,
                            const torch::Tensor& labels, const SampleOptions& options,
                            torch::Tensor* x0_pred) {
  if (t_index < 0 || t_index >= s.T)
    throw Error("ddpm::p_sample_step: step index " + std::to_string(t_index) + " is outside [0, " +
                std::to_string(s.T - 1) + "]");
  const auto t = torch::full({x.size(0)}, t_index, torch::TensorOptions(torch::kLong).device(x.device()));
  auto step = p_mean_variance(model, s, x, t, labels, options.variance, options.clip_x0);
  if (x0_pred) *x0_pred = step.x0_pred;
  // t = 1 (index 0): return the mean, x̂_0 itself (μ̃_1 = x̂_0 since ᾱ_0 = 1)
  if (t_index == 0) return step.mean;
  // x_{t−1} = μ_θ(x_t, t) + σ_t z,  z ~ N(0, I);  σ_t = exp(½ log σ_t²) as in the DDPM code
  const auto z = dm::randn(x.sizes(), options.generator, x.options());
  return step.mean + (0.5 * step.log_variance).exp() * z;
}
// ANCHOR_END: p_sample_step

// ANCHOR: sample
torch::Tensor sample_from(Model& model, const Schedule& s, torch::Tensor x_T, const torch::Tensor& labels,
                          const SampleOptions& options) {
  torch::NoGradGuard no_grad;
  std::unique_ptr<Progress> bar;
  if (!options.progress_label.empty()) bar = std::make_unique<Progress>(options.progress_label, s.T);
  auto x = std::move(x_T);
  torch::Tensor x0_pred;
  // Algorithm 2: for t = T, …, 1 (indices T−1, …, 0)
  for (int64_t i = s.T - 1; i >= 0; --i) {
    x = p_sample_step(model, s, x, i, labels, options, options.callback ? &x0_pred : nullptr);
    if (options.callback) options.callback(i, x, x0_pred);
    if (bar) bar->tick();
  }
  return x;
}

torch::Tensor sample(Model& model, const Schedule& s, at::IntArrayRef shape, const torch::Tensor& labels,
                     const SampleOptions& options, const torch::TensorOptions& tensor_options) {
  // x_T ~ N(0, I)
  return sample_from(model, s, dm::randn(shape, options.generator, tensor_options), labels, options);
}
// ANCHOR_END: sample

// ANCHOR: loss_eps
torch::Tensor loss_eps_at(const EpsFn& eps_fn, const Schedule& s, const torch::Tensor& x0,
                          const torch::Tensor& t, const torch::Tensor& eps, const torch::Tensor& labels) {
  // x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε
  const auto xt = q_sample(s, x0, t, eps);
  // L_simple = ‖ε − ε_θ(x_t, t)‖², averaged over the batch and the dimensions
  return (eps - eps_fn(xt, t.to(x0.options()), labels)).pow(2).mean();
}

torch::Tensor loss_eps(const EpsFn& eps_fn, const Schedule& s, const torch::Tensor& x0,
                       const torch::Tensor& labels, std::optional<at::Generator> generator) {
  // t ~ Uniform{1, …, T} (indices 0 … T−1), ε ~ N(0, I)
  const auto t =
      dm::randint(s.T, {x0.size(0)}, generator, torch::TensorOptions(torch::kLong).device(x0.device()));
  const auto eps = dm::randn(x0.sizes(), generator, x0.options());
  return loss_eps_at(eps_fn, s, x0, t, eps, labels);
}
// ANCHOR_END: loss_eps

}  // namespace dm::ddpm
