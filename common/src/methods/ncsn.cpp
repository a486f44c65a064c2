#include "dm/methods/ncsn.hpp"

#include <cmath>
#include <memory>

#include "dm/base/core.hpp"
#include "dm/base/rng.hpp"
#include "dm/diffusion/param.hpp"
#include "dm/methods/losses.hpp"

namespace dm::ncsn {

torch::Tensor Sigmas::tensor(const torch::TensorOptions& options) const {
  return torch::tensor(values, torch::kFloat64).to(options);
}

Sigmas geometric(double sigma_max, double sigma_min, int levels) {
  if (levels < 1)
    throw Error("ncsn::geometric: need at least one level, got " + std::to_string(levels));
  if (!(sigma_min > 0) || !(sigma_max >= sigma_min))
    throw Error("ncsn::geometric: need σ_max ≥ σ_min > 0, got σ_max = " +
                std::to_string(sigma_max) + ", σ_min = " + std::to_string(sigma_min));
  Sigmas s;
  s.values.resize(levels);
  for (int i = 0; i < levels; ++i) {
    const double f = levels == 1 ? 1.0 : double(i) / double(levels - 1);
    s.values[i] = sigma_max * std::pow(sigma_min / sigma_max, f);
  }
  s.values.back() = sigma_min;
  return s;
}

// ANCHOR: loss
torch::Tensor loss_at(Model& model, const Sigmas& sigmas, const torch::Tensor& x0,
                      const torch::Tensor& sigma, const torch::Tensor& eps) {
  // σ² · ‖s_θ(x̃, σ) + ε/σ‖² = ‖ε_θ(x̃, σ) − ε‖², x̃ = x + σ ε: the σ²-weighted DSM loss
  return losses::eps_matching_loss(model, process(sigmas), x0, sigma.to(x0.options()), eps);
}

torch::Tensor loss(Model& model, const Sigmas& sigmas, const torch::Tensor& x0,
                   at::Generator& gen) {
  const auto index = randint(sigmas.levels(), {x0.size(0)}, gen,
                             torch::TensorOptions(torch::kLong).device(x0.device()));
  const auto sigma = sigmas.tensor(x0.options()).index_select(0, index);  // i ~ Uniform{1, …, L}
  return loss_at(model, sigmas, x0, sigma, randn(x0.sizes(), gen, x0.options()));
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

// ANCHOR: annealed_langevin
Step annealed_langevin_step(std::shared_ptr<const Process> process, double sigma_min,
                            const AnnealedOptions& o) {
  if (o.steps_per_level < 1) throw Error("annealed_langevin: steps_per_level must be ≥ 1");
  if (!(o.step_lr > 0)) throw Error("annealed_langevin: step_lr (ε) must be > 0");
  if (!(sigma_min > 0)) throw Error("annealed_langevin: σ_L must be > 0");
  return [process, sigma_min, o](Model& model, const torch::Tensor& x_in, double t, double t_next,
                                 const Condition& c, at::Generator& gen) {
    const double sigma = process->at(t).s;
    const double r = sigma / sigma_min;
    const double alpha = o.step_lr * r * r;  // α_i = ε σ_i²/σ_L²
    StepResult out;
    auto x = x_in;
    torch::Tensor score;
    for (int64_t k = 1; k <= o.steps_per_level; ++k) {
      const auto z = randn_like(x, gen);
      score = predict_as(Prediction::score, model, *process, x, t, c);
      // x ← x + (α_i/2) s_θ(x, σ_i) + √α_i z   (the paper's form; see the book)
      out.mean = x + 0.5 * alpha * score;
      if (k == o.steps_per_level)
        out.x0 = x + sigma * sigma * score;  // Tweedie at the last evaluation
      x = out.mean + std::sqrt(alpha) * z;
    }
    out.nfe = o.steps_per_level;
    // Tweedie: E[x_0 | x̃] = x̃ + σ² ∇log p_σ(x̃), at the last level only.
    if (o.denoise && t_next <= process->t_min()) {
      x = x + sigma * sigma * predict_as(Prediction::score, model, *process, x, t, c);
      out.mean = out.x0 = x;
      out.nfe += 1;
    }
    out.x = x;
    return out;
  };
}

torch::Tensor annealed_langevin(Model& model, torch::Tensor x0, const Sigmas& sigmas,
                                at::Generator& gen, const AnnealedOptions& o,
                                const RunOptions& run_options) {
  const auto ve = std::make_shared<SigmaVE>(process(sigmas));
  const auto step = annealed_langevin_step(ve, sigmas.min(), o);
  // The grid: σ_1 > σ_2 > … > σ_L, then the data end.
  return run(model, step, std::move(x0), append(sigmas.values, 0.0), gen, {}, run_options).x;
}
// ANCHOR_END: annealed_langevin

}  // namespace dm::ncsn
