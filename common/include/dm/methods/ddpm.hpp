// dm/methods/ddpm.hpp — Denoising Diffusion Probabilistic Models (Ho, Jain & Abbeel 2020).
//
// Forward process (fixed, no parameters), for a schedule β_1 … β_T — a
// dm::Process whose time is the step t ∈ [0, T] (dm/diffusion/schedule.hpp):
//   q(x_t | x_{t−1}) = N(√(1−β_t) x_{t−1}, β_t I)        dm::forward_kernel
//   q(x_t | x_0)     = N(√ᾱ_t x_0, (1−ᾱ_t) I)             dm::marginal_sample
//   q(x_{t−1} | x_t, x_0) = N(μ̃_t(x_t, x_0), β̃_t I)       Process::posterior
// Reverse process (learned): p_θ(x_{t−1} | x_t) = N(μ_θ(x_t, t), σ_t² I), with
// the mean written through the model's x̂_0 (dm/diffusion/param.hpp converts
// an ε- or score-model's answer):
//   x̂_0 = (x_t − √(1−ᾱ_t) ε_θ) / √ᾱ_t,   μ_θ = μ̃_t(x_t, x̂_0)
//       = (x_t − β_t/√(1−ᾱ_t) ε_θ) / √α_t            (Algorithm 2's form; equal
//                                                     to the line above unless x̂_0 is clipped)
// Training (Algorithm 1): minimise E_{t, x_0, ε} ‖ε − ε_θ(√ᾱ_t x_0 + √(1−ᾱ_t) ε, t)‖².
//
// The model seam receives DDPM's own step t (1…T) as its time; a network
// trained with the DDPM code's 0-based index sees t − 1 through its wrapper
// (nn::TimeLabel::ddpm_index), never through the sampler.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "dm/base/core.hpp"
#include "dm/diffusion/model.hpp"
#include "dm/diffusion/schedule.hpp"
#include "dm/diffusion/step.hpp"

namespace dm::ddpm {

using schedule::Schedule;

// σ_t² of p_θ(x_{t−1} | x_t): the two fixed choices of the DDPM paper, both
// "equally good" there for sample quality:
//   fixedlarge  σ_t² = β_t  (optimal for x_0 ~ N(0, I)); the DDPM CIFAR-10 config
//   fixedsmall  σ_t² = β̃_t  (optimal for x_0 a single point)
// On a respaced grid t → t' these are the forward kernel's variance
// 1 − ᾱ_t/ᾱ_{t'} and the posterior's (improved DDPM's respacing).
enum class Variance { fixedlarge, fixedsmall };

struct AncestralOptions {
  // Default fixedlarge, as DDPM's CIFAR-10 run (run_cifar.py).
  Variance variance = Variance::fixedlarge;
  // Clip x̂_0 to [−1, 1] before forming the mean: the DDPM code does (images in
  // [−1, 1]); the paper's Algorithm 2 does not. Off by default (toy data are unbounded).
  bool clip_x0 = false;
};

// ANCHOR: ancestral
// The ancestral step from t to t' < t on any process (Algorithm 2, lines 3–4):
//   x̂_0 = the model's x̂_0 at (x_t, t),   μ = c_x0·x̂_0 + c_xt·x_t  (q(x_{t'} | x_t, x̂_0)),
//   x_{t'} = μ + σ z,   σ² from `variance`;  no noise (and no draw) at t' = 0.
// One model evaluation per step. The step keeps its own reference to the process.
Step ancestral(std::shared_ptr<const Process> process, AncestralOptions options = {});
// ANCHOR_END: ancestral
template <class P, class = std::enable_if_t<std::is_base_of_v<Process, P>>>
Step ancestral(const P& process, AncestralOptions options = {}) {
  return ancestral(std::static_pointer_cast<const Process>(std::make_shared<P>(process)), options);
}

struct SampleOptions {
  Variance variance = Variance::fixedlarge;
  bool clip_x0 = false;
  std::vector<double> grid;  // empty: every step, T, T−1, …, 0 (dm::integer_grid)
  RunOptions run;            // callback, progress bar
};

// ANCHOR: sample
// The reverse chain from the given x_T over the grid (default every step).
torch::Tensor sample_from(Model& model, const Schedule& s, torch::Tensor x_T, at::Generator& gen,
                          const SampleOptions& options = {}, const Condition& c = {});
// The same from x_T ~ N(0, I) of the given shape, drawn from `gen`.
torch::Tensor sample(Model& model, const Schedule& s, at::IntArrayRef shape, at::Generator& gen,
                     const SampleOptions& options = {},
                     const torch::TensorOptions& tensor_options = f64(), const Condition& c = {});
// ANCHOR_END: sample

// ANCHOR: loss_eps
// Algorithm 1 at given steps t [N] (1…T) and noise ε: mean over all elements of
// (ε − ε_θ(√ᾱ_t x_0 + √(1−ᾱ_t) ε, t))². Differentiable in the model's parameters.
torch::Tensor loss_eps_at(Model& model, const Schedule& s, const torch::Tensor& x0,
                          const torch::Tensor& t, const torch::Tensor& eps,
                          const Condition& c = {});
// The same with t ~ Uniform{1, …, T} per row, then ε ~ N(0, I), drawn from `gen` in that order.
torch::Tensor loss_eps(Model& model, const Schedule& s, const torch::Tensor& x0, at::Generator& gen,
                       const Condition& c = {});
// ANCHOR_END: loss_eps

}  // namespace dm::ddpm
