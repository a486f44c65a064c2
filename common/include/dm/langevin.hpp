// dm/langevin.hpp — Langevin MCMC: unadjusted (ULA), Metropolis-adjusted
// (MALA), tempered and annealed. These samplers consume the model seam
// (dm::Model), so the same code runs with an exact score or a learned one.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

#include "dm/model.hpp"

namespace dm::langevin {

// Called after step k (1-based) with the current batch; e.g. to record a
// trajectory or count mode crossings.
using StepCallback = std::function<void(int64_t k, const torch::Tensor& x)>;

// One ULA step at temperature τ:  x + (Δt / 2τ) s(x) + √Δt z.
torch::Tensor ula_step(Model& model, const torch::Tensor& x, double dt, double tau = 1.0);

// `steps` ULA steps from x0 (a batch of independent chains).
torch::Tensor ula(Model& model, torch::Tensor x0, double dt, int64_t steps, double tau = 1.0,
                  const StepCallback& on_step = {}, const std::string& progress_label = {});

// log α(x → x') of MALA's Metropolis–Hastings correction for target p_τ:
//   log p(x')/τ − log p(x)/τ + log q(x | x') − log q(x' | x),
// q(· | x) = N(x + (Δt/2τ) s(x), Δt I). Per chain: [N].
torch::Tensor mala_log_accept(const std::function<torch::Tensor(const torch::Tensor&)>& log_prob,
                              Model& model, const torch::Tensor& x, const torch::Tensor& x_new,
                              double dt, double tau = 1.0);

struct MalaResult {
  torch::Tensor x;
  double acceptance = 0;  // fraction of accepted proposals over all chains and steps
};

// MALA: a ULA proposal accepted with probability min(1, α). `log_prob` may be
// unnormalised (constants cancel).
MalaResult mala(const std::function<torch::Tensor(const torch::Tensor&)>& log_prob, Model& model,
                torch::Tensor x0, double dt, int64_t steps, double tau = 1.0,
                const StepCallback& on_step = {}, const std::string& progress_label = {});

// Annealed Langevin: `steps_per_level` ULA steps at each temperature of the
// decreasing schedule `taus` (ending at 1 to sample p itself).
torch::Tensor annealed(Model& model, torch::Tensor x0, const std::vector<double>& taus,
                       int64_t steps_per_level, double dt, const StepCallback& on_step = {},
                       const std::string& progress_label = {});

// A geometric temperature schedule from tau_max down to tau_min (inclusive).
std::vector<double> geometric_schedule(double tau_max, double tau_min, int levels);

}  // namespace dm::langevin
