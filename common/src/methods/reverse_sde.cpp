#include "dm/methods/reverse_sde.hpp"

#include <cmath>

#include "dm/base/core.hpp"
#include "dm/base/rng.hpp"
#include "dm/diffusion/param.hpp"
#include "dm/methods/losses.hpp"

namespace dm::sde {

// ANCHOR: drifts_impl
torch::Tensor score(Model& model, const Process& process, const torch::Tensor& x, double t,
                    const Condition& c) {
  return predict_as(Prediction::score, model, process, x, t, c);
}

torch::Tensor reverse_drift(const SDE& sde, Model& model, const torch::Tensor& x, double t,
                            const Condition& c) {
  const double g = sde.diffusion(t);
  return torch::add(sde.drift(x, t), score(model, sde, x, t, c), -g * g);  // f − g² s
}

torch::Tensor probability_flow_drift(const SDE& sde, Model& model, const torch::Tensor& x, double t,
                                     const Condition& c) {
  const double g = sde.diffusion(t);
  return torch::add(sde.drift(x, t), score(model, sde, x, t, c), -0.5 * g * g);  // f − ½g² s
}
// ANCHOR_END: drifts_impl

std::vector<torch::Tensor> simulate_forward(const SDE& sde, const torch::Tensor& x0,
                                            const std::vector<double>& grid, at::Generator& gen) {
  if (grid.size() < 2) throw Error("simulate_forward: the grid needs at least two times");
  std::vector<torch::Tensor> states{x0};
  auto x = x0;
  for (size_t i = 0; i + 1 < grid.size(); ++i) {
    const double t = grid[i], dt = grid[i + 1] - t;
    if (!(dt > 0)) throw Error("simulate_forward: the grid must increase");
    // x ← x + f(x, t) Δt + g(t) √Δt z
    x = x + sde.drift(x, t) * dt + sde.diffusion(t) * std::sqrt(dt) * randn_like(x, gen);
    states.push_back(x);
  }
  return states;
}

// ANCHOR: predictors_impl
Step euler_maruyama(std::shared_ptr<const SDE> sde) {
  return [sde](Model& model, const torch::Tensor& x, double t, double t_next, const Condition& c,
               at::Generator& gen) {
    if (!(t_next < t)) throw Error("sde::euler_maruyama: a reverse step needs t_next < t");
    const double dt = t - t_next;  // > 0: the step backwards in time
    StepResult r;
    // x' = x − [f − g² s] Δt + g √Δt z
    r.mean = torch::add(x, reverse_drift(*sde, model, x, t, c), -dt);
    r.nfe = 1;
    r.x = torch::add(r.mean, randn_like(x, gen), sde->diffusion(t) * std::sqrt(dt));
    return r;
  };
}

Step reverse_diffusion(std::shared_ptr<const Process> process) {
  return [process](Model& model, const torch::Tensor& x, double t, double t_next,
                   const Condition& c, at::Generator& gen) {
    if (!(t_next < t)) throw Error("sde::reverse_diffusion: a reverse step needs t_next < t");
    // The forward step t_next → t: x_t = a x_{t_next} + G z, i.e. f_i(x) = (a − 1) x.
    const Kernel k = process->transition(t_next, t);
    StepResult r;
    // x' = x − f_i(x) + G² s_θ(x, t) + G z
    r.mean = torch::add(x * (2.0 - k.a), score(model, *process, x, t, c), k.s * k.s);
    r.nfe = 1;
    r.x = torch::add(r.mean, randn_like(x, gen), k.s);
    return r;
  };
}
// ANCHOR_END: predictors_impl

// ANCHOR: probability_flow_step_impl
Step probability_flow_step(std::shared_ptr<const Process> process) {
  return [process](Model& model, const torch::Tensor& x, double t, double t_next,
                   const Condition& c, at::Generator&) {
    if (!(t_next < t)) throw Error("sde::probability_flow_step: a reverse step needs t_next < t");
    const Kernel k = process->transition(t_next, t);  // x_t = a x_{t_next} + G z
    StepResult r;
    // x' = x − f_i(x) + ½ G² s_θ(x, t),  f_i(x) = (a − 1) x
    r.x = r.mean = torch::add(x * (2.0 - k.a), score(model, *process, x, t, c), 0.5 * k.s * k.s);
    r.nfe = 1;
    return r;
  };
}
// ANCHOR_END: probability_flow_step_impl

std::string to_string(Predictor p) {
  return p == Predictor::euler_maruyama ? "euler_maruyama" : "reverse_diffusion";
}

std::string display_name(Predictor p) {
  return p == Predictor::euler_maruyama ? "Euler–Maruyama" : "reverse diffusion";
}

Predictor predictor_from_string(const std::string& name) {
  if (name == "em" || name == "euler_maruyama") return Predictor::euler_maruyama;
  if (name == "rd" || name == "reverse_diffusion") return Predictor::reverse_diffusion;
  throw Error("unknown predictor '" + name + "'",
              "use em (Euler–Maruyama) or rd (reverse diffusion)");
}

torch::Tensor sample_from(Model& model, std::shared_ptr<const SDE> sde, torch::Tensor x,
                          at::Generator& gen, const SampleOptions& o, const Condition& c) {
  if (o.steps < 1) throw Error("sde::sample: need at least one step");
  const double t_end = o.t_end < 0 ? sde->sampling_eps() : o.t_end;
  if (!(t_end >= sde->t_min() && t_end < sde->t_max()))
    throw Error("sde::sample: t_end = " + std::to_string(t_end) + " is outside [t_min, t_max)");
  const Step step = o.predictor == Predictor::euler_maruyama
                        ? euler_maruyama(sde)
                        : reverse_diffusion(std::static_pointer_cast<const Process>(sde));
  auto ro = o.run;
  ro.return_mean = o.denoise;
  return run(model, step, std::move(x), uniform_grid(sde->t_max(), t_end, o.steps), gen, c, ro).x;
}

torch::Tensor sample(Model& model, std::shared_ptr<const SDE> sde, at::IntArrayRef shape,
                     at::Generator& gen, const SampleOptions& o,
                     const torch::TensorOptions& tensor_options, const Condition& c) {
  return sample_from(model, sde, sde->prior_sample(shape, gen, tensor_options), gen, o, c);
}

Moments propagate_gaussian(Model& model, const Step& step, const std::vector<double>& grid,
                           Moments m, bool last_mean) {
  if (grid.size() < 2) throw Error("propagate_gaussian: the grid needs at least two times");
  const auto x = torch::tensor({{0.0}, {1.0}}, torch::kFloat64);
  auto gen = make_generator(0);
  c10::InferenceMode inference;
  for (size_t i = 0; i + 1 < grid.size(); ++i) {
    auto copy = gen.clone();  // the same draws the step will make
    const StepResult r = step(model, x, grid[i], grid[i + 1], {}, gen);
    const auto z = randn_like(x, copy);
    const double b = r.mean[0][0].item<double>(), c = r.mean[1][0].item<double>() - b;
    // σ from the row whose z is larger (both rows carry the same σ)
    const int row = std::abs(z[0][0].item<double>()) > std::abs(z[1][0].item<double>()) ? 0 : 1;
    const double sigma =
        (r.x[row][0].item<double>() - r.mean[row][0].item<double>()) / z[row][0].item<double>();
    m.mean = c * m.mean + b;
    m.var = c * c * m.var;
    if (!(last_mean && i + 2 == grid.size())) m.var += sigma * sigma;
  }
  return m;
}

// ANCHOR: loss_impl
torch::Tensor loss_at(Model& model, const SDE& sde, const torch::Tensor& x0, const torch::Tensor& t,
                      const torch::Tensor& eps, Weighting weighting) {
  if (weighting == Weighting::sigma_squared)  // λ = s²: the plain ε-loss
    return losses::eps_matching_loss(model, sde, x0, t, eps);
  // λ = g²: per-row weights g(t)²/s(t)² on the ε-loss
  const auto tc = t.to(torch::kCPU, torch::kFloat64).contiguous();
  auto w = torch::empty_like(tc);
  const double* ti = tc.data_ptr<double>();
  double* wi = w.data_ptr<double>();
  for (int64_t i = 0; i < tc.numel(); ++i) {
    const double g = sde.diffusion(ti[i]), s = sde.at(ti[i]).s;
    wi[i] = g * g / (s * s);
  }
  return losses::eps_matching_loss(model, sde, x0, t, eps, {}, w.to(x0.device()));
}

torch::Tensor loss(Model& model, const SDE& sde, const torch::Tensor& x0, at::Generator& gen,
                   Weighting weighting, double t_min) {
  const double lo = t_min < 0 ? sde.sampling_eps() : t_min, hi = sde.t_max();
  // t ~ U(lo, T), then ε ~ N(0, I)
  const auto u = rand({x0.size(0)}, gen, x0.options());
  const auto t = lo + (hi - lo) * u;
  const auto eps = randn(x0.sizes(), gen, x0.options());
  return loss_at(model, sde, x0, t, eps, weighting);
}
// ANCHOR_END: loss_impl

}  // namespace dm::sde
