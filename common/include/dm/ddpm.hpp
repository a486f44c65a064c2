// dm/ddpm.hpp — Denoising Diffusion Probabilistic Models (Ho, Jain & Abbeel 2020).
//
// Forward process (fixed, no parameters), for a schedule β_1 … β_T:
//   q(x_t | x_{t−1}) = N(√(1−β_t) x_{t−1}, β_t I)
//   q(x_t | x_0)     = N(√ᾱ_t x_0, (1−ᾱ_t) I)      ⇒  x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε
//   q(x_{t−1} | x_t, x_0) = N(μ̃_t(x_t, x_0), β̃_t I)   (see dm/schedule.hpp)
// Reverse process (learned): p_θ(x_{t−1} | x_t) = N(μ_θ(x_t, t), σ_t² I), with
// the mean written through a noise prediction ε_θ(x_t, t):
//   x̂_0 = (x_t − √(1−ᾱ_t) ε_θ) / √ᾱ_t,   μ_θ = μ̃_t(x_t, x̂_0)
//       = (x_t − β_t/√(1−ᾱ_t) ε_θ) / √α_t            (Algorithm 2's form; equal
//                                                     to the line above unless x̂_0 is clipped)
// Training (Algorithm 1): minimise E_{t, x_0, ε} ‖ε − ε_θ(√ᾱ_t x_0 + √(1−ᾱ_t) ε, t)‖².
//
// Step indices follow dm/schedule.hpp: a long tensor t [N] (or an int t_index)
// holds the 0-based index i = 0 … T−1 of DDPM step i + 1. The model seam
// (dm::Model) receives the same index as a floating tensor [N] in x's dtype:
// that is the network's time label. An ε-model is used as is; a score model
// is converted with ε = −√(1−ᾱ_t) · score (the std of x_t given x_0), so the
// exact mixture can be plugged in either way.
//
// Random numbers: every function that draws takes an optional generator (it
// must live on the data's device); without one, torch's default generator.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "dm/core.hpp"
#include "dm/model.hpp"
#include "dm/schedule.hpp"

namespace dm::ddpm {

using schedule::Schedule;

// ---------------------------------------------------------------------------
// The forward process and its closed forms. x [N, …]; t [N] long step indices.

// x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε: a draw from q(x_t | x_0) in one shot.
torch::Tensor q_sample(const Schedule& s, const torch::Tensor& x0, const torch::Tensor& t,
                       const torch::Tensor& eps);

// One forward step with index t (DDPM step t + 1): x_prev is the state before
// it, and the result √(1−β) x_prev + √β z is a draw from q(x_{t+1} | x_t) in
// 0-based terms. Iterating indices 0, 1, …, k−1 from x_0 gives q_sample at k−1.
torch::Tensor q_step(const Schedule& s, const torch::Tensor& x_prev, const torch::Tensor& t,
                     const torch::Tensor& z);

// A diagonal Gaussian: mean [N, …]; variance and log_variance broadcastable [N, 1, …].
struct Gaussian {
  torch::Tensor mean, variance, log_variance;
};

// q(x_{t−1} | x_t, x_0) = N(μ̃_t, β̃_t I); log_variance is the clipped log β̃_t.
Gaussian posterior_mean_variance(const Schedule& s, const torch::Tensor& x0, const torch::Tensor& xt,
                                 const torch::Tensor& t);

// x̂_0 = (x_t − √(1−ᾱ_t) ε) / √ᾱ_t: the x_0 that ε explains.
torch::Tensor predict_x0_from_eps(const Schedule& s, const torch::Tensor& xt, const torch::Tensor& t,
                                  const torch::Tensor& eps);

// Algorithm 2's mean (x_t − β_t/√(1−ᾱ_t) ε) / √α_t.
torch::Tensor mean_from_eps(const Schedule& s, const torch::Tensor& xt, const torch::Tensor& t,
                            const torch::Tensor& eps);

// ---------------------------------------------------------------------------
// The reverse process.

// σ_t² of p_θ(x_{t−1} | x_t): the two fixed choices of the DDPM paper, both
// "equally good" there for sample quality:
//   fixedlarge  σ_t² = β_t  (optimal for x_0 ~ N(0, I)); the DDPM CIFAR-10 config
//   fixedsmall  σ_t² = β̃_t  (optimal for x_0 a single point)
// fixedlarge's log-variance at the first step is log β̃_2, as in the DDPM code
// (it only matters for the decoder's likelihood: the last sampling step adds no noise).
enum class Variance { fixedlarge, fixedsmall };

// Called after each reverse step with the index i just taken (T−1 down to 0),
// the new state (x_i in the paper's 1-based notation, i.e. data when i = 0)
// and the x̂_0 predicted on the way: for trajectories and x̂_0 strips.
using StepCallback =
    std::function<void(int64_t t_index, const torch::Tensor& x, const torch::Tensor& x0_pred)>;

struct SampleOptions {
  // Default fixedlarge, as DDPM's CIFAR-10 run (run_cifar.py).
  Variance variance = Variance::fixedlarge;
  // Clip x̂_0 to [−1, 1] before forming the mean: the DDPM code does (images in
  // [−1, 1]); the paper's Algorithm 2 does not. Off by default (toy data are unbounded).
  bool clip_x0 = false;
  StepCallback callback;
  std::string progress_label;  // non-empty: show a progress bar
  // Draws x_T and every z (must be on the data's device); default: torch's global one.
  std::optional<at::Generator> generator;
};

// ε_θ(x, t) from any model (score models converted, see above); t [N] long.
torch::Tensor model_eps(Model& model, const Schedule& s, const torch::Tensor& x, const torch::Tensor& t,
                        const torch::Tensor& labels = {});

// The reverse kernel p_θ(x_{t−1} | x_t) = N(mean, variance) and the x̂_0, ε_θ behind it.
struct ReverseStep {
  torch::Tensor mean, variance, log_variance, x0_pred, eps;
};
ReverseStep p_mean_variance(Model& model, const Schedule& s, const torch::Tensor& x, const torch::Tensor& t,
                            const torch::Tensor& labels = {}, Variance variance = Variance::fixedlarge,
                            bool clip_x0 = false);

// One ancestral step from x at index t_index (Algorithm 2, lines 3–4):
//   x_{t−1} = μ_θ(x_t, t) + σ_t z,  z = torch::randn(x.sizes(), generator, x.options()),
// no noise (and no draw) at t_index = 0, where the result is x̂_0 itself.
// `x0_pred`, if given, receives x̂_0.
torch::Tensor p_sample_step(Model& model, const Schedule& s, const torch::Tensor& x, int64_t t_index,
                            const torch::Tensor& labels = {}, const SampleOptions& options = {},
                            torch::Tensor* x0_pred = nullptr);

// The full ancestral chain x_T → x_{T−1} → … → x_0 from the given x_T.
torch::Tensor sample_from(Model& model, const Schedule& s, torch::Tensor x_T,
                          const torch::Tensor& labels = {}, const SampleOptions& options = {});

// The same from x_T = torch::randn(shape, generator, tensor_options) ~ N(0, I).
torch::Tensor sample(Model& model, const Schedule& s, at::IntArrayRef shape, const torch::Tensor& labels = {},
                     const SampleOptions& options = {}, const torch::TensorOptions& tensor_options = f64());

// ---------------------------------------------------------------------------
// Training: the simple ε-prediction loss (Algorithm 1).

// ε_θ as the training loop sees it: (x_t, t as floating step index [N], labels) → ε̂.
using EpsFn = std::function<torch::Tensor(const torch::Tensor& xt, const torch::Tensor& t,
                                          const torch::Tensor& labels)>;

// mean over all elements of (ε − ε_θ(q_sample(x_0, t, ε), t))², at the given
// t [N] long and ε (shaped like x_0): a scalar that backpropagates into ε_θ.
torch::Tensor loss_eps_at(const EpsFn& eps_fn, const Schedule& s, const torch::Tensor& x0,
                          const torch::Tensor& t, const torch::Tensor& eps, const torch::Tensor& labels = {});

// The same with t ~ Uniform{0, …, T−1} per row, then ε ~ N(0, I), drawn in
// that order: t = torch::randint(T, {N}, generator, long), ε = torch::randn(x0.sizes(), generator,
// x0.options()).
torch::Tensor loss_eps(const EpsFn& eps_fn, const Schedule& s, const torch::Tensor& x0,
                       const torch::Tensor& labels = {},
                       std::optional<at::Generator> generator = std::nullopt);

}  // namespace dm::ddpm
