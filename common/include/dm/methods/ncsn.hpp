// dm/methods/ncsn.hpp — noise-conditional score networks (Song & Ermon, 2019).
//
// One network learns the score of the data blurred at every level of a
// geometric noise schedule σ_1 > σ_2 > … > σ_L,
//     p_σ(x̃) = ∫ N(x̃; x, σ²I) p(x) dx,
// with denoising score matching weighted by λ(σ) = σ²:
//     σ² ‖s_θ(x̃, σ) + ε/σ‖² = ‖ε_θ(x̃, σ) − ε‖²   when s_θ = −ε_θ/σ,
// so the loss is plain noise prediction at a random level. Sampling is
// annealed Langevin dynamics: T Langevin steps at each level, from the
// largest σ to the smallest, with step α_i = ε·σ_i²/σ_L².
//
// Process: dm::SigmaVE, whose time is σ itself (a = 1, s = σ), so the levels
// are the sampler's time grid and the model seam receives t = σ. A network
// sees its own label instead (log σ spread over 0…999, and the input scaled
// by 1/√(1+σ²)); its wrapper applies both (nn::NetSpec::ncsn).
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>
#include <vector>

#include "dm/diffusion/model.hpp"
#include "dm/diffusion/process.hpp"
#include "dm/diffusion/step.hpp"

namespace dm::ncsn {

// ANCHOR: sigmas
// σ_1 > … > σ_L, geometric: σ_i = σ_max (σ_min/σ_max)^{(i−1)/(L−1)}.
struct Sigmas {
  std::vector<double> values;  // descending
  int levels() const { return int(values.size()); }
  double max() const { return values.front(); }
  double min() const { return values.back(); }
  torch::Tensor tensor(const torch::TensorOptions& options = torch::kFloat64) const;
};
Sigmas geometric(double sigma_max, double sigma_min, int levels);
// ANCHOR_END: sigmas

// The process whose times are these levels: SigmaVE(σ_1).
inline SigmaVE process(const Sigmas& sigmas) { return SigmaVE(sigmas.max()); }

// ANCHOR: loss_decl
// The training loss at given levels σ [N] (one per row, as times of SigmaVE)
// and noise ε: x̃ = x + σ ε, mean over the batch and dimensions of
// ‖ε_θ(x̃, σ) − ε‖² (losses::eps_matching_loss on SigmaVE).
torch::Tensor loss_at(Model& model, const Sigmas& sigmas, const torch::Tensor& x0,
                      const torch::Tensor& sigma, const torch::Tensor& eps);
// The same with i ~ Uniform{1…L} per row, then ε ~ N(0, I), drawn from `gen` in that order.
torch::Tensor loss(Model& model, const Sigmas& sigmas, const torch::Tensor& x0, at::Generator& gen);
// ANCHOR_END: loss_decl

// Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1).
struct AnnealedOptions {
  int64_t steps_per_level = 100;  // T
  double step_lr = 2e-5;          // ε: the step at the last level is α_L = ε
  // A final denoising step x + σ_L² s(x, σ_L) (Tweedie's formula; the NCSN v2
  // and score-SDE code do this): removes the last level's σ_L of noise. It is
  // taken by the step whose t_next is the data end (0), and costs one evaluation.
  bool denoise = false;
};
// ANCHOR: step_size
// α_i = ε·σ_i²/σ_L²: the step shrinks with the noise so that the ratio of
// signal to noise in each Langevin step is the same at every level.
inline double step_size(const Sigmas& sigmas, int level, double step_lr) {
  const double r = sigmas.values[level] / sigmas.min();
  return step_lr * r * r;
}
// ANCHOR_END: step_size
// ANCHOR: step_rule
// How large should ε be for T steps per level? At level i the sampler starts
// from samples of p_{σ_{i−1}} and should end, after T steps, at p_{σ_i}. For a
// single data point the step is linear, x ← (1 − a/2) x + √(a σ_i²) z with
// a = α_i/σ_i² = ε/σ_L² (the same at every level), so the variance ratio
// r_k = Var(x_k)/σ_i² obeys r_{k+1} = (1 − a/2)² r_k + a from r_0 = γ²
// (γ = σ_{i−1}/σ_i). Its fixed point 1/(1 − a/4) is above 1, so r_T ≈ 1 is the
// best we can do: choose a to minimise |r_T − 1| (NCSN v2's technique 3, here
// in the paper's step form).
double variance_ratio_after(double a, double gamma, int64_t T);
double step_ratio_for(double gamma, int64_t T);       // the a minimising |r_T − 1|
double step_lr_for(const Sigmas& sigmas, int64_t T);  // ε = a σ_L², γ = σ_1/σ_2
// ANCHOR_END: step_rule

// ANCHOR: annealed_step
// Annealed Langevin as a corrector-only step on the seam: at time t (the level
// σ_i = s(t)), T Langevin steps
//   x ← x + (α_i/2) s_θ(x, σ_i) + √α_i z,   α_i = ε·σ_i²/σ_L²,
// where σ_L = `sigma_min`; t_next only says whether this was the last level
// (t_next = 0: the data end, where `denoise` applies Tweedie's formula).
// The step's x̂_0 is Tweedie's x + σ_i² s_θ at its last evaluation; its NFE is T
// (+1 for the denoising step).
Step annealed_langevin_step(std::shared_ptr<const Process> process, double sigma_min,
                            const AnnealedOptions& options);
// ANCHOR_END: annealed_step

// Annealed Langevin dynamics (Algorithm 1) from x0 over the levels: the grid
// σ_1, …, σ_L, 0 on SigmaVE, driven by dm::run.
torch::Tensor annealed_langevin(Model& model, torch::Tensor x0, const Sigmas& sigmas,
                                at::Generator& gen, const AnnealedOptions& options = {},
                                const RunOptions& run_options = {});

}  // namespace dm::ncsn
