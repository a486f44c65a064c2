// dm/methods/pc.hpp — predictor–corrector sampling (Song et al., 2021, §4.2 and
// Algorithms 2–3): at each time of the grid, a predictor moves the samples one
// step along the reverse SDE, and a corrector — a few steps of Langevin MCMC
// at the new time's marginal p_t — pulls them back towards p_t, fixing part of
// the predictor's discretisation error before it propagates.
//
// The Langevin corrector with a target signal-to-noise ratio r: with the score
// s = s_θ(x, t) and fresh noise z,
//     ε = 2α (r ‖z‖ / ‖s‖)²,      x ← x + ε s + √(2ε) z,
// where ‖·‖ is the per-sample L2 norm averaged over the batch (as the
// reference code averages it, so one ε serves the whole batch), α = 1 for VE
// and α = 1 − β_i (the VP step's a²) for VP. The ratio of the step's drift to
// its noise is then ‖ε s‖ / ‖√(2ε) z‖ = √α · r. NCSN's annealed Langevin is the
// same corrector with its own step rule α_i = ε σ_i²/σ_L²
// (dm::ncsn::annealed_langevin_step), so a corrector-only sampler with that
// rule is chapter 03's sampler.
//
// Predictors: reverse diffusion and Euler–Maruyama (dm/methods/reverse_sde.hpp)
// and ancestral sampling, the DDPM step on the process's own posterior
// (dm::ddpm::ancestral): for VP with σ² = β (the reference's choice), for VE
// with the posterior variance σ_{i−1}²(σ_i² − σ_{i−1}²)/σ_i² — for VE, ancestral
// sampling is defined here (and by the reference) as that posterior step.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <memory>
#include <string>

#include "dm/diffusion/model.hpp"
#include "dm/diffusion/process.hpp"
#include "dm/diffusion/sde.hpp"
#include "dm/diffusion/step.hpp"

namespace dm::pc {

// ε = 2α (r ‖z‖/‖s‖)² for a batch of scores and noises (norms per row, averaged).
double snr_step_size(const torch::Tensor& score, const torch::Tensor& noise, double snr,
                     double alpha);

struct CorrectorOptions {
  double snr = 0.16;  // r (the reference's CIFAR-10 VE setting; 0.01 for its VP runs)
  int64_t steps = 1;  // Langevin steps per time (M)
};

// The Langevin corrector at time t (the grid's next time t_next sets α through
// the forward kernel between them: α = a_{t|t_next}²). x̂_0 is Tweedie's at the
// last evaluation. NFE = steps.
Step langevin_corrector(std::shared_ptr<const Process> process, CorrectorOptions options = {});

// A predictor step t → t_next and a corrector step, in one step of the grid:
//   predictor_then_corrector   P(t → t_next), then C at t_next   (the paper's Algorithms 2–3)
//   corrector_then_predictor   C at t, then P(t → t_next)        (the reference code's loop)
// The composed step's mean is the last sub-step's; its NFE the sum.
enum class Order { predictor_then_corrector, corrector_then_predictor };
Step compose(Step predictor, Step corrector, Order order);

// probability_flow: the PF ODE discretised as reverse diffusion (sde::probability_flow_step).
enum class Predictor { none, ancestral, reverse_diffusion, euler_maruyama, probability_flow };
enum class Corrector { none, langevin };
std::string to_string(Predictor p);
std::string to_string(Corrector c);

// The predictor step of that kind on an SDE (none: x unchanged, no evaluation).
Step predictor_step(Predictor p, std::shared_ptr<const sde::SDE> sde);

struct SampleOptions {
  Predictor predictor = Predictor::reverse_diffusion;
  Corrector corrector = Corrector::langevin;
  CorrectorOptions corrector_options;
  Order order = Order::corrector_then_predictor;
  int64_t steps = 1000;  // N: the grid t_max = t_0 > … > t_N = t_end, uniform in t
  double t_end = -1;     // < 0: the SDE's sampling_eps()
  bool denoise = true;   // return the last step's mean (no final noise)
  RunOptions run;
};

// From the prior of `shape` through the PC sampler; NFE = steps · (1 [P] + M [C]).
torch::Tensor sample(Model& model, std::shared_ptr<const sde::SDE> sde, at::IntArrayRef shape,
                     at::Generator& gen, const SampleOptions& options = {},
                     const torch::TensorOptions& tensor_options = torch::kFloat64,
                     const Condition& c = {});
RunResult sample_from(Model& model, std::shared_ptr<const sde::SDE> sde, torch::Tensor x,
                      at::Generator& gen, const SampleOptions& options = {},
                      const Condition& c = {});

}  // namespace dm::pc
