// pc.cpp — the Langevin corrector, the PC composition and the PC sampler.
#include "dm/methods/pc.hpp"

#include <cmath>

#include "dm/base/core.hpp"
#include "dm/base/rng.hpp"
#include "dm/diffusion/param.hpp"
#include "dm/methods/ddpm.hpp"
#include "dm/methods/reverse_sde.hpp"

namespace dm::pc {

double snr_step_size(const torch::Tensor& score, const torch::Tensor& noise, double snr,
                     double alpha) {
  const double score_norm = score.flatten(1).norm(2, 1).mean().item<double>();
  const double noise_norm = noise.flatten(1).norm(2, 1).mean().item<double>();
  if (!(score_norm > 0)) return 0.0;  // a zero score: nothing to correct
  const double ratio = snr * noise_norm / score_norm;
  return 2.0 * alpha * ratio * ratio;
}

Step langevin_corrector(std::shared_ptr<const Process> process, CorrectorOptions o) {
  if (o.steps < 1)
    throw Error("pc::langevin_corrector: steps must be ≥ 1, got " + std::to_string(o.steps));
  if (!(o.snr > 0))
    throw Error("pc::langevin_corrector: the target snr must be > 0, got " + std::to_string(o.snr));
  return [process, o](Model& model, const torch::Tensor& x_in, double t, double t_next,
                      const Condition& c, at::Generator& gen) {
    // α = a² of the forward kernel over this grid step (VP: 1 − β_i; VE: 1).
    const double lo = std::min(t, t_next), hi = std::max(t, t_next);
    const double alpha = lo < hi ? std::pow(process->transition(lo, hi).a, 2) : 1.0;
    const double s = process->at(t).s;
    StepResult out;
    auto x = x_in;
    for (int64_t k = 0; k < o.steps; ++k) {
      const auto score = predict_as(Prediction::score, model, *process, x, t, c);
      const auto z = randn_like(x, gen);
      const double eps = snr_step_size(score, z, o.snr, alpha);
      out.mean = torch::add(x, score, eps);                        // x + ε s
      if (k + 1 == o.steps) out.x0 = torch::add(x, score, s * s);  // Tweedie at the last evaluation
      x = torch::add(out.mean, z, std::sqrt(2.0 * eps));
    }
    out.x = x;
    out.nfe = o.steps;
    return out;
  };
}

Step compose(Step predictor, Step corrector, Order order) {
  return [predictor, corrector, order](Model& model, const torch::Tensor& x, double t,
                                       double t_next, const Condition& c, at::Generator& gen) {
    StepResult first, second;
    if (order == Order::predictor_then_corrector) {
      first = predictor(model, x, t, t_next, c, gen);
      // The corrector at the new time; its α from the same grid step.
      second = corrector(model, first.x, t_next, t, c, gen);
    } else {
      first = corrector(model, x, t, t_next, c, gen);
      second = predictor(model, first.x, t, t_next, c, gen);
    }
    second.nfe += first.nfe;
    if (!second.x0.defined()) second.x0 = first.x0;
    return second;
  };
}

std::string to_string(Predictor p) {
  switch (p) {
    case Predictor::none: return "none";
    case Predictor::ancestral: return "ancestral";
    case Predictor::reverse_diffusion: return "reverse_diffusion";
    case Predictor::euler_maruyama: return "euler_maruyama";
    case Predictor::probability_flow: return "probability_flow";
  }
  return "?";
}

std::string to_string(Corrector c) { return c == Corrector::none ? "none" : "langevin"; }

Step predictor_step(Predictor p, std::shared_ptr<const sde::SDE> sde) {
  const auto process = std::static_pointer_cast<const Process>(sde);
  switch (p) {
    case Predictor::none:
      return [](Model&, const torch::Tensor& x, double, double, const Condition&, at::Generator&) {
        StepResult r;
        r.x = r.mean = x;
        return r;
      };
    case Predictor::ancestral: {
      // VE: the posterior variance (reference: SMLD ancestral); VP, sub-VP: σ² = β.
      ddpm::AncestralOptions o;
      o.variance = dynamic_cast<const sde::VE*>(sde.get()) ? ddpm::Variance::fixedsmall
                                                           : ddpm::Variance::fixedlarge;
      return ddpm::ancestral(process, o);
    }
    case Predictor::reverse_diffusion: return sde::reverse_diffusion(process);
    case Predictor::euler_maruyama: return sde::euler_maruyama(sde);
    case Predictor::probability_flow: return sde::probability_flow_step(process);
  }
  throw Error("pc::predictor_step: unknown predictor");
}

RunResult sample_from(Model& model, std::shared_ptr<const sde::SDE> sde, torch::Tensor x,
                      at::Generator& gen, const SampleOptions& o, const Condition& c) {
  if (o.steps < 1)
    throw Error("pc::sample: need at least one step, got " + std::to_string(o.steps));
  if (o.predictor == Predictor::none && o.corrector == Corrector::none)
    throw Error("pc::sample: neither a predictor nor a corrector: nothing would move");
  const double t_end = o.t_end < 0 ? sde->sampling_eps() : o.t_end;
  if (!(t_end >= sde->t_min() && t_end < sde->t_max()))
    throw Error("pc::sample: t_end = " + std::to_string(t_end) + " is outside [t_min, t_max)");
  Step step = predictor_step(o.predictor, sde);
  if (o.corrector == Corrector::langevin)
    step = compose(step, langevin_corrector(sde, o.corrector_options), o.order);
  auto ro = o.run;
  ro.return_mean = o.denoise;
  return run(model, step, std::move(x), uniform_grid(sde->t_max(), t_end, o.steps), gen, c, ro);
}

torch::Tensor sample(Model& model, std::shared_ptr<const sde::SDE> sde, at::IntArrayRef shape,
                     at::Generator& gen, const SampleOptions& o,
                     const torch::TensorOptions& tensor_options, const Condition& c) {
  return sample_from(model, sde, sde->prior_sample(shape, gen, tensor_options), gen, o, c).x;
}

}  // namespace dm::pc
