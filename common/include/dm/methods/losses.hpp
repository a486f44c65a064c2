// dm/methods/losses.hpp — score matching: three ways to fit s_θ(x) ≈ ∇ₓ log p(x).
//
// All three minimise the same Fisher divergence E_p‖s_θ(X) − ∇log p(X)‖², up
// to a constant that does not depend on θ — so their gradients agree, and
// only the first one needs the score it is fitting:
//
//   explicit (ESM)   E‖s_θ(X) − ∇log p(X)‖²                         needs ∇log p
//   sliced   (SSM)   E[‖s_θ(X)‖² + 2 d/dh νᵀ s_θ(X + hν)|_{h=0}]     = ESM − E‖∇log p‖²
//   denoising (DSM)  E‖s_θ(X̃) + (X̃ − X)/σ²‖²,  X̃ = X + σε          = ESM of p_σ + C_σ
//
// SSM: integrating by parts, E[−2 s_θᵀ∇log p] = E[2 tr ∇s_θ] (Hyvärinen 2005),
// and tr J = E_ν[νᵀ J ν] for any ν with E[ννᵀ] = I (Song et al. 2019, the
// "variance-reduced" form with ‖s‖² in place of (νᵀs)²); νᵀJν is the
// derivative along ν, taken here by autograd through a dummy step h.
// DSM: the score of the Gaussian kernel is ∇ log p(x̃|x) = −(x̃ − x)/σ² = −ε/σ,
// and regressing onto it fits the score of the perturbed density p_σ
// (Vincent 2011). With s_θ = −ε_θ/σ it becomes ‖ε_θ(X̃) − ε‖²/σ².
//
// Losses are means over the batch (no ½), differentiable in θ.
#pragma once

#include <torch/torch.h>

#include <functional>

#include "dm/diffusion/model.hpp"
#include "dm/diffusion/process.hpp"

namespace dm::losses {

// A score (or ε) network seen as a function of the batch x [N, D] → [N, D].
using Field = std::function<torch::Tensor(const torch::Tensor& x)>;

// ANCHOR: esm
// Explicit score matching: mean over rows of ‖s(x) − target‖², target = ∇log p(x).
torch::Tensor explicit_sm(const Field& score, const torch::Tensor& x, const torch::Tensor& target);
// ANCHOR_END: esm

enum class Projection { rademacher, gaussian };

// Sliced score matching: mean over rows of ‖s(x)‖² + 2 νᵀ J_s(x) ν, one ν per
// row (`projections` of them averaged per row), drawn from `gen`. Needs x
// with a floating dtype; works under torch::NoGradGuard too (it enables grad
// locally for the derivative).
torch::Tensor sliced_sm(const Field& score, const torch::Tensor& x, at::Generator& gen,
                        Projection projection = Projection::rademacher, int64_t projections = 1);
// The directional-derivative term for given probes ν [N, D]: d/dh νᵀ s(x + hν)
// at h = 0, per row [N]; keeps the graph (differentiable in θ).
torch::Tensor directional_derivative(const Field& score, const torch::Tensor& x,
                                     const torch::Tensor& nu);

// Denoising score matching, score form: mean ‖s(x̃) + (x̃ − x)/σ²‖² with
// x̃ = x + σε; `eps` given (for tests) or drawn from `gen`.
torch::Tensor denoising_sm(const Field& score, const torch::Tensor& x, double sigma,
                           const torch::Tensor& eps);
torch::Tensor denoising_sm(const Field& score, const torch::Tensor& x, double sigma,
                           at::Generator& gen);
// ... and ε form: mean ‖ε_θ(x + σε) − ε‖² (= σ² × the score form for s = −ε_θ/σ).
torch::Tensor denoising_eps(const Field& eps_net, const torch::Tensor& x, double sigma,
                            const torch::Tensor& eps);
torch::Tensor denoising_eps(const Field& eps_net, const torch::Tensor& x, double sigma,
                            at::Generator& gen);

// ANCHOR: eps_matching
// DSM in ε form on any process, with a time per row — the loss of DDPM
// (Algorithm 1) and of NCSN (σ²-weighted DSM) alike:
//   x_t = a(t)·x_0 + s(t)·ε,   L = mean over all entries of (ε_θ(x_t, t) − ε)²,
// where ε_θ is the model's prediction converted to ε (dm/diffusion/param.hpp).
// t [N] are process times, ε is shaped like x0. Differentiable in θ. With
// `weights` [N], row n's squared errors count weights[n] times (a time
// weighting λ(t)/s(t)², e.g. continuous-time DSM's likelihood weighting).
torch::Tensor eps_matching_loss(Model& model, const Process& process, const torch::Tensor& x0,
                                const torch::Tensor& t, const torch::Tensor& eps,
                                const Condition& c = {}, const torch::Tensor& weights = {});
// ANCHOR_END: eps_matching

// The score error of a fitted field against the exact one, weighted by where
// the samples x lie: E‖s(x) − target‖² / E‖target‖² (0 = exact, 1 = as bad as s ≡ 0).
double relative_score_error(const Field& score, const torch::Tensor& x,
                            const torch::Tensor& target);

}  // namespace dm::losses
