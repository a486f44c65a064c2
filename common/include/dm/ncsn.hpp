// dm/ncsn.hpp — noise-conditional score networks (Song & Ermon, 2019).
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
// Model seam: NCSN models take t = σ itself (dm/model.hpp); a network sees the
// label `net_label(σ)` instead (log σ spread over 0…999, for its embedding).
#pragma once

#include <torch/torch.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "dm/model.hpp"

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

// The network's noise label for σ: 0 at σ_max, 999 at σ_min, linear in log σ.
torch::Tensor net_label(const Sigmas& sigmas, const torch::Tensor& sigma);

// ε_θ(x̃, σ): the network as a noise predictor; sigma is [N] (one level per row).
using EpsFn = std::function<torch::Tensor(const torch::Tensor& x_noisy, const torch::Tensor& sigma)>;

// The training loss at given levels and noise (for tests): x̃ = x + σ_i ε,
// mean over the batch and dimensions of ‖ε_θ(x̃, σ_i) − ε‖².
torch::Tensor loss_at(const EpsFn& eps_fn, const torch::Tensor& x0, const torch::Tensor& sigma,
                      const torch::Tensor& eps);
// The same with i ~ Uniform{1…L} per row and ε ~ N(0, I).
torch::Tensor loss(const EpsFn& eps_fn, const Sigmas& sigmas, const torch::Tensor& x0,
                   std::optional<at::Generator> generator = std::nullopt);

// Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1).
struct AnnealedOptions {
  int64_t steps_per_level = 100;  // T
  double step_lr = 2e-5;          // ε: the step at the last level is α_L = ε
  // A final denoising step x + σ_L² s(x, σ_L) (Tweedie's formula; the NCSN v2
  // and score-SDE code do this): removes the last level's σ_L of noise.
  bool denoise = false;
  // Called after every step with (level i, 0-based; step k within it, 1-based; x).
  std::function<void(int, int64_t, const torch::Tensor&)> on_step;
  std::string progress_label;
  std::optional<at::Generator> generator;
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
double step_ratio_for(double gamma, int64_t T);                // the a minimising |r_T − 1|
double step_lr_for(const Sigmas& sigmas, int64_t T);           // ε = a σ_L², γ = σ_1/σ_2
// ANCHOR_END: step_rule

// The model answers predict(x, t = σ_i) with the score or with ε (std σ_i).
torch::Tensor annealed_langevin(Model& model, torch::Tensor x0, const Sigmas& sigmas,
                                const AnnealedOptions& options = {});

// The score of a model at noise level σ for a batch, whichever it predicts.
torch::Tensor score_at(Model& model, const torch::Tensor& x, double sigma);

// NCSN's noising as a Markov chain (a discretised VE SDE): from x_0, add
// √(σ_{k}² − σ_{k−1}²) z_k at each of the ascending levels `ascending`
// (σ_0 = 0). Returns x at every level [K+1 tensors, the first = x0]; each is
// distributed as x_0 + σ_k z.
std::vector<torch::Tensor> ve_chain(const torch::Tensor& x0, const std::vector<double>& ascending,
                                    std::optional<at::Generator> generator = std::nullopt);

}  // namespace dm::ncsn
