// dm/methods/reverse_sde.hpp — simulating SDEs forwards and backwards, and
// training a score network in continuous time (Song et al., 2021).
//
// Anderson (1982): the forward SDE dx = f dt + g dw run backwards in time is
// again an SDE, driven by the score of its own marginals,
//     dx = [f(x, t) − g(t)² ∇ₓ log p_t(x)] dt + g(t) dw̄      (t from T down to 0),
// and the probability-flow ODE dx = [f − ½ g² ∇ₓ log p_t] dt has the same
// marginals with no noise at all (chapter 06 solves it). A model of the score
// at every t is all the reverse process needs; a network learns it with
// denoising score matching at t ~ U(ε, T):
//     L(θ) = E_t λ(t) E ‖s_θ(x_t, t) − ∇ log p_0t(x_t | x_0)‖²,   ∇ log p_0t = −ε/s(t).
// With λ = s(t)² this is the ε-loss ‖ε_θ − ε‖² of DDPM and NCSN, in continuous t.
//
// Two predictors discretise the reverse SDE on a time grid 1 = t_0 > … > t_N = ε:
//   Euler–Maruyama    x' = x − [f(x, t) − g(t)² s_θ(x, t)] Δt + g(t) √Δt z
//   reverse diffusion x' = x − f_i(x) + G_i² s_θ(x, t) + G_i z      (Song et al., eq. 46)
// where (f_i, G_i) is the forward process's own step from t' to t:
//   x_t = a_{t|t'} x_{t'} + s_{t|t'} z, i.e. f_i(x) = (a_{t|t'} − 1) x, G_i = s_{t|t'}.
// For DDPM's schedule that is (√(1−β_i) − 1) x and √β_i (Song's Algorithm 3 for
// VP), for NCSN's levels 0 and √(σ_i² − σ_{i−1}²) (Algorithm 2 for VE) — so
// reverse diffusion needs only a dm::Process, Euler–Maruyama the SDE's f and g.
#pragma once

#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "dm/diffusion/model.hpp"
#include "dm/diffusion/process.hpp"
#include "dm/diffusion/sde.hpp"
#include "dm/diffusion/step.hpp"

namespace dm::sde {

// ANCHOR: drifts
// The model's score at (x, t), whatever it predicts (converted with the process's a, s).
torch::Tensor score(Model& model, const Process& process, const torch::Tensor& x, double t,
                    const Condition& c = {});
// f(x, t) − g(t)² s_θ(x, t): the drift of the reverse-time SDE.
torch::Tensor reverse_drift(const SDE& sde, Model& model, const torch::Tensor& x, double t,
                            const Condition& c = {});
// f(x, t) − ½ g(t)² s_θ(x, t): the drift of the probability-flow ODE.
torch::Tensor probability_flow_drift(const SDE& sde, Model& model, const torch::Tensor& x, double t,
                                     const Condition& c = {});
// ANCHOR_END: drifts

// ---- Forward simulation ---------------------------------------------------------
// Euler–Maruyama of the forward SDE from x0 (the state at grid.front()) over an
// increasing time grid: x ← x + f(x, t) Δt + g(t) √Δt z. Returns the state at
// every grid point (front = x0), z drawn from `gen`.
std::vector<torch::Tensor> simulate_forward(const SDE& sde, const torch::Tensor& x0,
                                            const std::vector<double>& grid, at::Generator& gen);

// ---- Reverse predictors (steps of dm::run) ---------------------------------------
// ANCHOR: predictors
// One Euler–Maruyama step of the reverse SDE from t to t_next < t.
Step euler_maruyama(std::shared_ptr<const SDE> sde);
// One reverse-diffusion step from t to t_next < t, with the forward step of
// `process` from t_next to t (above). Works on any process: an SDE, DDPM's
// schedule, NCSN's σ levels.
Step reverse_diffusion(std::shared_ptr<const Process> process);
// ANCHOR_END: predictors
// ANCHOR: probability_flow_step
// The probability-flow ODE discretised as reverse diffusion is (Song et al.,
// eq. 50), one step from t to t_next < t with the same (f_i, G_i):
//     x' = x − f_i(x) + ½ G_i² s_θ(x, t)          (no noise; nothing drawn)
// score_sde's ReverseDiffusionPredictor with probability_flow=True, the
// "probability flow" row of the paper's Table 1. One evaluation per step.
Step probability_flow_step(std::shared_ptr<const Process> process);
// ANCHOR_END: probability_flow_step
template <class S, class = std::enable_if_t<std::is_base_of_v<SDE, S>>>
Step euler_maruyama(const S& sde) {
  return euler_maruyama(std::static_pointer_cast<const SDE>(std::make_shared<S>(sde)));
}
template <class P, class = std::enable_if_t<std::is_base_of_v<Process, P>>>
Step reverse_diffusion(const P& process) {
  return reverse_diffusion(std::static_pointer_cast<const Process>(std::make_shared<P>(process)));
}

enum class Predictor { euler_maruyama, reverse_diffusion };
std::string to_string(Predictor p);     // "euler_maruyama", "reverse_diffusion" (metrics keys)
std::string display_name(Predictor p);  // "Euler–Maruyama", "reverse diffusion" (titles)
Predictor predictor_from_string(const std::string& name);  // "em" / "euler_maruyama", "rd" / …

struct SampleOptions {
  Predictor predictor = Predictor::euler_maruyama;
  int64_t steps = 1000;  // N: the grid t_max = t_0 > … > t_N = t_end, uniform in t
  double t_end = -1;     // where to stop (< 0: the SDE's sampling_eps())
  // Return the last step's mean, without its noise (score_sde's "noise
  // removal"; that noise, g √Δt at t = ε, is below what images can show).
  bool denoise = true;
  RunOptions run;  // callback, progress bar
};

// ANCHOR: sample
// Samples from the prior N(0, prior_std² I) of `shape`, run through the reverse
// SDE with the chosen predictor. NFE = steps.
torch::Tensor sample(Model& model, std::shared_ptr<const SDE> sde, at::IntArrayRef shape,
                     at::Generator& gen, const SampleOptions& options = {},
                     const torch::TensorOptions& tensor_options = torch::kFloat64,
                     const Condition& c = {});
// The same from a given x at sde.t_max().
torch::Tensor sample_from(Model& model, std::shared_ptr<const SDE> sde, torch::Tensor x,
                          at::Generator& gen, const SampleOptions& options = {},
                          const Condition& c = {});
// ANCHOR_END: sample

// ---- Exact moments of a sampler on Gaussian data ---------------------------------
// ANCHOR: propagate_gaussian
// On one-dimensional Gaussian data the exact score of every marginal is linear
// in x, so each step above is affine, x' = c·x + b + σ·z, and a Gaussian stays
// Gaussian. This runs `step` over `grid` on the moments instead of on samples:
// (c, b, σ) of each step are read off the step itself (applied to x = 0 and
// x = 1, with the same z drawn again from a copy of the generator), and
//     mean ← c·mean + b,   var ← c²·var + σ².
// With `last_mean`, the last step's noise is left out (SampleOptions::denoise).
// No Monte Carlo error: the discretisation error of a sampler, exactly.
struct Moments {
  double mean = 0, var = 1;
};
Moments propagate_gaussian(Model& model, const Step& step, const std::vector<double>& grid,
                           Moments start, bool last_mean = true);
// ANCHOR_END: propagate_gaussian

// ---- Continuous-time denoising score matching -------------------------------------
// ANCHOR: loss
// λ(t) of the loss: s(t)² (the ε-loss; Song et al.'s default) or g(t)² (the
// "likelihood weighting" of Song, Durkan et al. 2021, which makes the loss a
// bound on the KL divergence).
enum class Weighting { sigma_squared, likelihood };
// E_t λ(t) ‖s_θ(x_t, t) + ε/s(t)‖² = E_t (λ(t)/s(t)²) ‖ε_θ(x_t, t) − ε‖² with
// t [N] and ε given (mean over rows and dimensions, as losses::eps_matching_loss) …
torch::Tensor loss_at(Model& model, const SDE& sde, const torch::Tensor& x0, const torch::Tensor& t,
                      const torch::Tensor& eps, Weighting weighting = Weighting::sigma_squared);
// … or t ~ U(t_min, T) per row and then ε ~ N(0, I), drawn from `gen` (t_min < 0:
// the SDE's sampling_eps()).
torch::Tensor loss(Model& model, const SDE& sde, const torch::Tensor& x0, at::Generator& gen,
                   Weighting weighting = Weighting::sigma_squared, double t_min = -1);
// ANCHOR_END: loss

}  // namespace dm::sde
