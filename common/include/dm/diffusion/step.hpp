// dm/diffusion/step.hpp — one step contract and one driver loop for every sampler.
//
// A sampler is a step applied over a time grid. The step maps the state x at
// time t to the state at t_next (for a corrector, t_next only says where the
// walk goes next), and reports what it saw on the way:
//
//     (model, x, t, t_next, condition, generator) → {x_next, mean, x̂_0, NFE}
//
// `run` applies a step over consecutive pairs of a grid (t_0, t_1), (t_1, t_2),
// …, under inference mode, with a progress bar, one callback record per step and
// the count of model evaluations. The grid is data — a vector of times — so a
// respaced DDPM, a Karras grid or RePaint's jumps up and down are only other
// grids. DDPM ancestral sampling (dm/methods/ddpm.hpp), NCSN's annealed Langevin
// (a corrector-only sampler, dm/methods/ncsn.hpp) and ULA / MALA / tempered
// Langevin (dm/methods/langevin.hpp) are steps driven by this loop.
//
// Randomness: a step draws only from the generator it is given; so does
// everything below a chapter's main (same seed, device and threads → same numbers).
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "dm/diffusion/model.hpp"

namespace dm {

// ANCHOR: step_contract
struct StepResult {
  torch::Tensor x;     // the state at t_next
  torch::Tensor mean;  // x before the step's last noise was added (= x if it adds none)
  torch::Tensor x0;    // the x̂_0 predicted on the way (undefined if the step has none)
  int64_t nfe = 0;     // model evaluations this step used
};

using Step = std::function<StepResult(Model& model, const torch::Tensor& x, double t, double t_next,
                                      const Condition& c, at::Generator& gen)>;

// What the callback sees after every step.
struct StepEvent {
  int64_t index = 0;  // 0-based step number
  int64_t steps = 0;  // steps in the run (grid size − 1)
  double t = 0, t_next = 0;
  const StepResult& result;
  int64_t nfe = 0;  // model evaluations so far, this step's included
};

struct RunOptions {
  // Finish with the last step's mean instead of its state (score-SDE's "noise
  // removal": the last step's noise is not worth adding).
  bool return_mean = false;
  std::function<void(const StepEvent&)> callback;
  std::string progress_label;  // non-empty: a progress bar over the steps
};

struct RunResult {
  torch::Tensor x;
  int64_t nfe = 0;
  int64_t steps = 0;
};

// Applies `step` over the grid from x (the state at grid.front()).
RunResult run(Model& model, const Step& step, torch::Tensor x, const std::vector<double>& grid,
              at::Generator& gen, const Condition& c = {}, const RunOptions& options = {});
// ANCHOR_END: step_contract

// ---- Time grids -------------------------------------------------------------
// ANCHOR: grids
// T, T−1, …, 1, 0: every step of a discrete chain (DDPM's Algorithm 2).
std::vector<double> integer_grid(int64_t T);
// `steps` + 1 integers evenly spaced from T down to 0 (DDPM respaced; steps ≤ T).
std::vector<double> respaced_grid(int64_t T, int64_t steps);
// `steps` + 1 times evenly spaced from `from` to `to` (either direction).
std::vector<double> uniform_grid(double from, double to, int64_t steps);
// `values` followed by `end`: e.g. NCSN's levels σ_1 … σ_L then 0 (the data end).
std::vector<double> append(std::vector<double> values, double end);
// ANCHOR_END: grids

}  // namespace dm
