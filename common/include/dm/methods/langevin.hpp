// dm/methods/langevin.hpp — Langevin MCMC: unadjusted (ULA), Metropolis-adjusted
// (MALA), tempered and annealed. These samplers consume the model seam
// (dm::Model) with a score model, so the same code runs with an exact score or
// a learned one; each is a step on the step contract (dm/diffusion/step.hpp),
// driven by dm::run over a grid of step numbers 0, 1, …, K (Langevin has no
// diffusion time: the model receives t = 0).
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "dm/diffusion/model.hpp"
#include "dm/diffusion/step.hpp"

namespace dm::langevin {

// Called after step k (1-based) with the current batch; e.g. to record a
// trajectory or count mode crossings.
using StepCallback = std::function<void(int64_t k, const torch::Tensor& x)>;
using LogProb = std::function<torch::Tensor(const torch::Tensor&)>;

// One ULA step at temperature τ:  x + (Δt / 2τ) s(x) + √Δt z,  z from `gen`.
torch::Tensor ula_step(Model& model, const torch::Tensor& x, double dt, at::Generator& gen,
                       double tau = 1.0);

// The same as a Step; `tau_of_step(k)` gives τ at the k-th step (0-based), constant when empty.
Step make_ula_step(double dt, std::function<double(int64_t)> tau_of_step = {});

// `steps` ULA steps from x0 (a batch of independent chains).
torch::Tensor ula(Model& model, torch::Tensor x0, double dt, int64_t steps, at::Generator& gen,
                  double tau = 1.0, const StepCallback& on_step = {},
                  const std::string& progress_label = {});

// log α(x → x') of MALA's Metropolis–Hastings correction for target p_τ:
//   log p(x')/τ − log p(x)/τ + log q(x | x') − log q(x' | x),
// q(· | x) = N(x + (Δt/2τ) s(x), Δt I). Per chain: [N].
torch::Tensor mala_log_accept(const LogProb& log_prob, Model& model, const torch::Tensor& x,
                              const torch::Tensor& x_new, double dt, double tau = 1.0);

// MALA as a Step: a ULA proposal accepted with probability min(1, α); the
// fraction of accepted proposals is added to *accepted (a float64 scalar tensor
// on the data's device, summed over steps; undefined at first). Three model
// evaluations a step: the proposal's score at x, and the two in log α (at x
// again and at x'; the first is not cached).
Step make_mala_step(LogProb log_prob, double dt, double tau,
                    std::shared_ptr<torch::Tensor> accepted);

struct MalaResult {
  torch::Tensor x;
  double acceptance = 0;  // fraction of accepted proposals over all chains and steps
};

// MALA: `log_prob` may be unnormalised (constants cancel).
MalaResult mala(const LogProb& log_prob, Model& model, torch::Tensor x0, double dt, int64_t steps,
                at::Generator& gen, double tau = 1.0, const StepCallback& on_step = {},
                const std::string& progress_label = {});

// Annealed Langevin: `steps_per_level` ULA steps at each temperature of the
// decreasing schedule `taus` (ending at 1 to sample p itself).
torch::Tensor annealed(Model& model, torch::Tensor x0, const std::vector<double>& taus,
                       int64_t steps_per_level, double dt, at::Generator& gen,
                       const StepCallback& on_step = {}, const std::string& progress_label = {});

// A geometric temperature schedule from tau_max down to tau_min (inclusive).
std::vector<double> geometric_schedule(double tau_max, double tau_min, int levels);

}  // namespace dm::langevin
