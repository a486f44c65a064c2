#include "dm/methods/ddpm.hpp"

#include <cmath>

#include "dm/base/rng.hpp"
#include "dm/diffusion/param.hpp"
#include "dm/methods/losses.hpp"

namespace dm::ddpm {

// ANCHOR: ancestral_impl
Step ancestral(std::shared_ptr<const Process> process, AncestralOptions o) {
  return [process, o](Model& model, const torch::Tensor& x, double t, double t_next,
                      const Condition& c, at::Generator& gen) {
    if (!(t_next < t)) throw Error("ddpm::ancestral: a reverse step needs t_next < t");
    StepResult r;
    r.x0 = predict_as(Prediction::x0, model, *process, x, t, c);  // x̂_0(x_t, t)
    r.nfe = 1;
    if (o.clip_x0) r.x0 = r.x0.clamp(-1.0, 1.0);  // the DDPM code's clip_denoised
    // μ_θ(x_t, t) = μ̃(x_t, x̂_0): the true posterior mean with x̂_0 in place of x_0
    const auto q = process->posterior(t, t_next);
    r.mean = torch::add(r.x0 * q.c_x0, x, q.c_xt);
    // At the data end the step adds no noise: x_0 = μ (= x̂_0 for DDPM, since ᾱ_0 = 1).
    if (t_next <= process->t_min()) {
      r.x = r.mean;
      return r;
    }
    // x_{t'} = μ + σ z with σ = exp(½ log σ²), as in the DDPM code
    const double log_var =
        o.variance == Variance::fixedsmall ? q.log_variance : q.log_kernel_variance;
    r.x = torch::add(r.mean, randn_like(x, gen), std::exp(0.5 * log_var));
    return r;
  };
}
// ANCHOR_END: ancestral_impl

torch::Tensor sample_from(Model& model, const Schedule& s, torch::Tensor x_T, at::Generator& gen,
                          const SampleOptions& options, const Condition& c) {
  const auto step = ancestral(s, {options.variance, options.clip_x0});
  const auto grid = options.grid.empty() ? integer_grid(s.T) : options.grid;
  return run(model, step, std::move(x_T), grid, gen, c, options.run).x;
}

torch::Tensor sample(Model& model, const Schedule& s, at::IntArrayRef shape, at::Generator& gen,
                     const SampleOptions& options, const torch::TensorOptions& tensor_options,
                     const Condition& c) {
  // x_T ~ N(0, I)
  return sample_from(model, s, randn(shape, gen, tensor_options), gen, options, c);
}

// ANCHOR: loss_eps_impl
torch::Tensor loss_eps_at(Model& model, const Schedule& s, const torch::Tensor& x0,
                          const torch::Tensor& t, const torch::Tensor& eps, const Condition& c) {
  // Integer steps stay integers: the schedule gathers its tables at them exactly
  // (predict_as hands the network t in x0's dtype).
  return losses::eps_matching_loss(model, s, x0, t.to(x0.device()), eps, c);
}

torch::Tensor loss_eps(Model& model, const Schedule& s, const torch::Tensor& x0, at::Generator& gen,
                       const Condition& c) {
  // t ~ Uniform{1, …, T}, then ε ~ N(0, I)
  const auto t =
      randint(s.T, {x0.size(0)}, gen, torch::TensorOptions(torch::kLong).device(x0.device())) + 1;
  const auto eps = randn(x0.sizes(), gen, x0.options());
  return loss_eps_at(model, s, x0, t, eps, c);
}
// ANCHOR_END: loss_eps_impl

}  // namespace dm::ddpm
