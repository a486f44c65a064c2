#include "dm/ncsn.hpp"

#include <cmath>
#include <memory>

#include "dm/core.hpp"
#include "dm/progress.hpp"
#include "dm/rng.hpp"

namespace dm::ncsn {

torch::Tensor Sigmas::tensor(const torch::TensorOptions& options) const {
  return torch::tensor(values, torch::kFloat64).to(options);
}

Sigmas geometric(double sigma_max, double sigma_min, int levels) {
  if (levels < 1) throw Error("ncsn::geometric: need at least one level, got " + std::to_string(levels));
  if (!(sigma_min > 0) || !(sigma_max >= sigma_min))
    throw Error("ncsn::geometric: need σ_max ≥ σ_min > 0, got σ_max = " + std::to_string(sigma_max) +
                ", σ_min = " + std::to_string(sigma_min));
  Sigmas s;
  s.values.resize(levels);
  for (int i = 0; i < levels; ++i) {
    const double f = levels == 1 ? 1.0 : double(i) / double(levels - 1);
    s.values[i] = sigma_max * std::pow(sigma_min / sigma_max, f);
  }
  s.values.back() = sigma_min;
  return s;
}

torch::Tensor net_label(const Sigmas& sigmas, const torch::Tensor& sigma) {
  const double span = std::log(sigmas.max() / sigmas.min());
  if (span <= 0) return torch::zeros_like(sigma);
  return 999.0 * (std::log(sigmas.max()) - sigma.log()) / span;
}

// ANCHOR: loss
torch::Tensor loss_at(const EpsFn& eps_fn, const torch::Tensor& x0, const torch::Tensor& sigma,
                      const torch::Tensor& eps) {
  std::vector<int64_t> shape(x0.dim(), 1);
  shape[0] = x0.size(0);
  const auto x_noisy = x0 + sigma.view(shape) * eps;  // x̃ = x + σ_i ε
  // σ² · ‖s_θ(x̃, σ) + ε/σ‖² = ‖ε_θ(x̃, σ) − ε‖²: the σ²-weighted DSM loss
  return (eps_fn(x_noisy, sigma) - eps).pow(2).mean();
}

torch::Tensor loss(const EpsFn& eps_fn, const Sigmas& sigmas, const torch::Tensor& x0,
                   std::optional<at::Generator> generator) {
  const auto index = dm::randint(sigmas.levels(), {x0.size(0)}, generator,
                                 torch::TensorOptions(torch::kLong).device(x0.device()));
  const auto sigma = sigmas.tensor(x0.options()).index_select(0, index);  // i ~ Uniform{1, …, L}
  return loss_at(eps_fn, x0, sigma, dm::randn(x0.sizes(), generator, x0.options()));
}
// ANCHOR_END: loss

// ANCHOR: step_rule_impl
double variance_ratio_after(double a, double gamma, int64_t T) {
  double r = gamma * gamma;
  for (int64_t k = 0; k < T; ++k) r = (1 - a / 2) * (1 - a / 2) * r + a;
  return r;
}

double step_ratio_for(double gamma, int64_t T) {
  if (T < 1) throw Error("ncsn::step_ratio_for: need T ≥ 1 steps per level");
  double best_a = 1e-6, best = 1e300;
  for (double a = 1e-6; a < 1.0; a *= 1.01) {  // a 1% grid is enough: |r_T − 1| is smooth in a
    const double err = std::abs(variance_ratio_after(a, gamma, T) - 1);
    if (err < best) best = err, best_a = a;
  }
  return best_a;
}

double step_lr_for(const Sigmas& sigmas, int64_t T) {
  const double gamma = sigmas.levels() > 1 ? sigmas.values[0] / sigmas.values[1] : 1.0;
  return step_ratio_for(gamma, T) * sigmas.min() * sigmas.min();
}
// ANCHOR_END: step_rule_impl

torch::Tensor score_at(Model& model, const torch::Tensor& x, double sigma) {
  const auto t = torch::full({x.size(0)}, sigma, x.options());
  auto out = model.predict(x, t);
  return model.prediction() == Prediction::eps ? out / -sigma : out;
}

// ANCHOR: annealed_langevin
torch::Tensor annealed_langevin(Model& model, torch::Tensor x0, const Sigmas& sigmas,
                                const AnnealedOptions& o) {
  if (o.steps_per_level < 1) throw Error("annealed_langevin: steps_per_level must be ≥ 1");
  if (!(o.step_lr > 0)) throw Error("annealed_langevin: step_lr (ε) must be > 0");
  torch::NoGradGuard no_grad;
  std::unique_ptr<Progress> bar;
  if (!o.progress_label.empty())
    bar = std::make_unique<Progress>(o.progress_label, sigmas.levels() * o.steps_per_level);
  auto x = std::move(x0);
  for (int i = 0; i < sigmas.levels(); ++i) {  // σ_1 > σ_2 > … > σ_L
    const double alpha = step_size(sigmas, i, o.step_lr);
    for (int64_t k = 1; k <= o.steps_per_level; ++k) {
      const auto z = dm::randn(x.sizes(), o.generator, x.options());
      // x ← x + (α_i/2) s_θ(x, σ_i) + √α_i z   (the paper's form; see the book)
      x = x + 0.5 * alpha * score_at(model, x, sigmas.values[i]) + std::sqrt(alpha) * z;
      if (o.on_step) o.on_step(i, k, x);
      if (bar) bar->tick();
    }
  }
  // Tweedie: E[x_0 | x̃] = x̃ + σ² ∇log p_σ(x̃).
  if (o.denoise) x = x + sigmas.min() * sigmas.min() * score_at(model, x, sigmas.min());
  return x;
}
// ANCHOR_END: annealed_langevin

// ANCHOR: ve_chain
std::vector<torch::Tensor> ve_chain(const torch::Tensor& x0, const std::vector<double>& ascending,
                                    std::optional<at::Generator> generator) {
  std::vector<torch::Tensor> xs = {x0};
  double previous = 0.0;
  for (double sigma : ascending) {
    if (sigma < previous) throw Error("ve_chain: the levels must ascend");
    // x_k = x_{k−1} + √(σ_k² − σ_{k−1}²) z_k  ⇒  x_k ~ x_0 + σ_k z (independent Gaussians add variances)
    const auto z = dm::randn(x0.sizes(), generator, x0.options());
    xs.push_back(xs.back() + std::sqrt(sigma * sigma - previous * previous) * z);
    previous = sigma;
  }
  return xs;
}
// ANCHOR_END: ve_chain

}  // namespace dm::ncsn
