// dm/methods/probability_flow.hpp — the probability-flow ODE of an SDE model:
// sampling, encoding, and exact log-likelihoods (Song et al., 2021, §4.3 and
// appendix D).
//
// Every forward SDE dx = f dt + g dw has a deterministic twin with the same
// marginals p_t at every t,
//     dx/dt = f̃(x, t) = f(x, t) − ½ g(t)² ∇ₓ log p_t(x),
// so solving it from x(T) ~ p_T down to t = ε samples p_ε, solving it up from
// a data point gives its latent x(T) (an invertible map: the same ODE back
// returns the point), and the instantaneous change of variables (Chen et al.
// 2018) turns it into a likelihood:
//     d log p_t(x(t)) / dt = −∇ₓ · f̃(x(t), t)
//  ⇒  log p_ε(x(ε)) = log p_T(x(T)) + ∫_ε^T ∇ₓ · f̃(x(t), t) dt,
// integrated jointly with x(t) by one ODE solve. The divergence is exact
// (D vector–Jacobian products; for 2D) or Hutchinson's unbiased estimate
// E_v[vᵀ (∂f̃/∂x) v] with E[v vᵀ] = I (one product per probe; for images), the
// probes v drawn once per solve and held fixed along it, so that the ODE the
// solver sees is smooth.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "dm/base/ode.hpp"
#include "dm/diffusion/model.hpp"
#include "dm/diffusion/sde.hpp"

namespace dm::flow {

// f̃(x, t) = f − ½ g² s_θ as an ODE field (model evaluated under no-grad).
ode::Field drift_field(Model& model, std::shared_ptr<const sde::SDE> sde, const Condition& c = {});

enum class Solver { dopri5, euler, heun };
std::string to_string(Solver s);
Solver solver_from_string(const std::string& name);  // "dopri5" / "rk45", "euler", "heun"

struct SolveOptions {
  Solver solver = Solver::dopri5;
  ode::Options ode;     // tolerances (dopri5)
  int64_t steps = 100;  // fixed-step solvers: uniform steps in t
  double t_end = -1;    // the data end (< 0: the SDE's sampling_eps())
};

struct Solution {
  torch::Tensor x;
  ode::Stats stats;  // nfe = model evaluations (one per field evaluation)
};

// From x at `from` to `to` along the ODE (either direction).
Solution solve(Model& model, std::shared_ptr<const sde::SDE> sde, const torch::Tensor& x,
               double from, double to, const SolveOptions& options = {}, const Condition& c = {});
// Samples: x(T) ~ N(0, prior_std² I) of `shape`, solved down to t_end.
Solution sample(Model& model, std::shared_ptr<const sde::SDE> sde, at::IntArrayRef shape,
                at::Generator& gen, const SolveOptions& options = {},
                const torch::TensorOptions& tensor_options = torch::kFloat64,
                const Condition& c = {});
// The latent x(T) of data x(t_end), and back.
Solution encode(Model& model, std::shared_ptr<const sde::SDE> sde, const torch::Tensor& x0,
                const SolveOptions& options = {}, const Condition& c = {});
Solution decode(Model& model, std::shared_ptr<const sde::SDE> sde, const torch::Tensor& latent,
                const SolveOptions& options = {}, const Condition& c = {});

// ---- Likelihood ------------------------------------------------------------------
enum class Divergence { exact, hutchinson_gaussian, hutchinson_rademacher };

struct LikelihoodOptions {
  Divergence divergence = Divergence::exact;
  int64_t probes = 1;  // Hutchinson: probes per row, averaged
  ode::Options ode;    // dopri5 tolerances (score_sde: 1e-5, 1e-5)
  double t_end = -1;   // where the data sit (< 0: the SDE's sampling_eps())
  // log p_T of the latents [N, …] → [N]; empty: the SDE's prior N(0, prior_std² I),
  // which p_T only approximates (a test passes the exact p_T of a mixture).
  std::function<torch::Tensor(const torch::Tensor&)> prior_log_prob;
};

struct Likelihood {
  torch::Tensor log_prob;  // [N] log p_{t_end}(x) in nats, float64
  torch::Tensor prior;     // [N] log p_T(x(T)) (the prior term)
  torch::Tensor latent;    // x(T)
  ode::Stats stats;        // nfe counts field evaluations (each: 1 model call + the divergence)
};

// log p_{t_end}(x) for every row of x, by one joint ODE solve from t_end to T.
// The model must allow gradients (a network not under inference mode, or an
// analytic model written in torch operations).
Likelihood log_likelihood(Model& model, std::shared_ptr<const sde::SDE> sde, const torch::Tensor& x,
                          at::Generator& gen, const LikelihoodOptions& options = {},
                          const Condition& c = {});

// ∇ₓ · F(x) per row for a field F of a batch [N, …] → [N, …]: exact (one
// vector–Jacobian product per dimension) or with the probes v [K, N, …]
// (Hutchinson: mean over k of v_kᵀ ∂F/∂x v_k). Float64 [N].
torch::Tensor divergence_exact(const std::function<torch::Tensor(const torch::Tensor&)>& F,
                               const torch::Tensor& x);
torch::Tensor divergence_hutchinson(const std::function<torch::Tensor(const torch::Tensor&)>& F,
                                    const torch::Tensor& x, const torch::Tensor& probes);

// Bits per dimension of data quantised to 256 levels and scaled to [−1, 1]
// (x = 2(k + u)/256 − 1, u ~ U(0, 1) the dequantisation noise): the density of
// the levels k is 256/2 times that of x in each of the D dimensions, so
//     bpd = −log p(x) / (D ln 2) + log₂(256/2) = −log p(x) / (D ln 2) + 7.
torch::Tensor bits_per_dim(const torch::Tensor& log_prob, int64_t dims, double levels = 256,
                           double range = 2);

// The dequantised data the bits/dim above refer to: images x in [−1, 1] that
// hold `levels` equally spaced values k/(levels − 1) mapped to [−1, 1] (the
// suite's x = p/127.5 − 1 for bytes p) become x' = 2(k + u)/levels − 1 with
// u ~ U(0, 1) drawn from `gen`, a density on [−1, 1] whose mass in each bin
// is the probability of its level (Theis et al. 2016; Ho et al. 2019).
torch::Tensor dequantize(const torch::Tensor& x, at::Generator& gen, double levels = 256);

// ---- Latents ---------------------------------------------------------------------
// Spherical interpolation between latents, row by row (rows = the first
// dimension): with θ the angle between z0 and z1,
//     slerp(z0, z1, w) = sin((1 − w)θ)/sin θ · z0 + sin(wθ)/sin θ · z1.
// A latent of the prior N(0, σ² I) in D dimensions has ‖z‖ ≈ σ√D; the straight
// line between two of them passes through ‖z‖ ≈ σ√(D/2) at its middle, far from
// where the prior puts its mass, the arc does not. (Rows that are parallel
// fall back to the straight line.)
torch::Tensor slerp(const torch::Tensor& z0, const torch::Tensor& z1, double w);

}  // namespace dm::flow
