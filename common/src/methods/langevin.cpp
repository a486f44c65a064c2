#include "dm/methods/langevin.hpp"

#include <cmath>

#include "dm/base/core.hpp"
#include "dm/base/rng.hpp"
#include "dm/diffusion/param.hpp"

namespace dm::langevin {

// ANCHOR: ula_step
torch::Tensor ula_step(Model& model, const torch::Tensor& x, double dt, at::Generator& gen,
                       double tau) {
  auto score = timeless_score(model, x);
  auto z = randn_like(x, gen);
  // X_{k+1} = X_k + (Δt / 2τ) ∇log p(X_k) + √Δt Z_k
  return x + (dt / (2.0 * tau)) * score + std::sqrt(dt) * z;
}
// ANCHOR_END: ula_step

namespace {
// Step k of a Langevin run is the grid pair (k, k + 1).
std::vector<double> step_numbers(int64_t steps) {
  std::vector<double> g;
  for (int64_t k = 0; k <= steps; ++k) g.push_back(double(k));
  return g;
}

RunOptions run_options(const StepCallback& on_step, const std::string& label) {
  RunOptions o;
  o.progress_label = label;
  if (on_step) o.callback = [on_step](const StepEvent& e) { on_step(e.index + 1, e.result.x); };
  return o;
}

torch::Tensor run_steps(Model& model, const Step& step, torch::Tensor x0, int64_t steps,
                        at::Generator& gen, const StepCallback& on_step, const std::string& label) {
  if (steps < 0) throw Error("Langevin: the number of steps must be ≥ 0");
  if (steps == 0) return x0;
  return run(model, step, std::move(x0), step_numbers(steps), gen, {}, run_options(on_step, label))
      .x;
}
}  // namespace

Step make_ula_step(double dt, std::function<double(int64_t)> tau_of_step) {
  if (!(dt > 0)) throw Error("ULA: the step Δt must be > 0");
  return [dt, tau_of_step](Model& model, const torch::Tensor& x, double t, double, const Condition&,
                           at::Generator& gen) {
    const double tau = tau_of_step ? tau_of_step(int64_t(t)) : 1.0;
    StepResult r;
    r.x = ula_step(model, x, dt, gen, tau);
    r.nfe = 1;
    return r;
  };
}

torch::Tensor ula(Model& model, torch::Tensor x0, double dt, int64_t steps, at::Generator& gen,
                  double tau, const StepCallback& on_step, const std::string& progress_label) {
  return run_steps(model, make_ula_step(dt, [tau](int64_t) { return tau; }), std::move(x0), steps,
                   gen, on_step, progress_label);
}

// ANCHOR: mala_log_accept
torch::Tensor mala_log_accept(const LogProb& log_prob, Model& model, const torch::Tensor& x,
                              const torch::Tensor& x_new, double dt, double tau) {
  // log q(b | a) = −‖b − a − (Δt/2τ) s(a)‖² / (2Δt) + const  (the const cancels)
  auto log_q = [&](const torch::Tensor& b, const torch::Tensor& a) {
    auto mean = a + (dt / (2.0 * tau)) * timeless_score(model, a);
    return -(b - mean).pow(2).reshape({b.size(0), -1}).sum(1) / (2.0 * dt);
  };
  // log α = [log p(x') − log p(x)]/τ + log q(x | x') − log q(x' | x)
  return (log_prob(x_new) - log_prob(x)) / tau + log_q(x, x_new) - log_q(x_new, x);
}
// ANCHOR_END: mala_log_accept

Step make_mala_step(LogProb log_prob, double dt, double tau,
                    std::shared_ptr<torch::Tensor> accepted) {
  if (!(dt > 0)) throw Error("MALA: the step Δt must be > 0");
  return [log_prob, dt, tau, accepted](Model& model, const torch::Tensor& x, double, double,
                                       const Condition&, at::Generator& gen) {
    // ANCHOR: mala_step
    auto proposal = ula_step(model, x, dt, gen, tau);
    auto log_alpha = mala_log_accept(log_prob, model, x, proposal, dt, tau);
    // Accept where log U < log α, U ~ Uniform(0, 1).
    auto accept = rand_like(log_alpha, gen).log() < log_alpha;
    std::vector<int64_t> shape(x.dim(), 1);
    shape[0] = x.size(0);
    StepResult r;
    r.x = torch::where(accept.reshape(shape), proposal, x);
    // ANCHOR_END: mala_step
    if (accepted) {  // a device tensor: no host synchronisation inside the loop
      const auto rate = accept.to(torch::kFloat64).mean();
      *accepted = accepted->defined() ? *accepted + rate : rate;
    }
    r.nfe = 3;
    return r;
  };
}

MalaResult mala(const LogProb& log_prob, Model& model, torch::Tensor x0, double dt, int64_t steps,
                at::Generator& gen, double tau, const StepCallback& on_step,
                const std::string& progress_label) {
  auto accepted = std::make_shared<torch::Tensor>();
  auto x = run_steps(model, make_mala_step(log_prob, dt, tau, accepted), std::move(x0), steps, gen,
                     on_step, progress_label);
  return {x, steps > 0 ? accepted->item<double>() / double(steps) : 0.0};
}

// ANCHOR: annealed
torch::Tensor annealed(Model& model, torch::Tensor x0, const std::vector<double>& taus,
                       int64_t steps_per_level, double dt, at::Generator& gen,
                       const StepCallback& on_step, const std::string& progress_label) {
  if (steps_per_level < 1) throw Error("annealed Langevin: steps_per_level must be ≥ 1");
  // τ_1 > τ_2 > … → 1; step k runs at τ of level ⌊k / steps_per_level⌋ (X_K ≈ p_τ after K steps there)
  auto tau_of_step = [taus, steps_per_level](int64_t k) {
    return taus[size_t(k / steps_per_level)];
  };
  return run_steps(model, make_ula_step(dt, tau_of_step), std::move(x0),
                   int64_t(taus.size()) * steps_per_level, gen, on_step, progress_label);
}
// ANCHOR_END: annealed

std::vector<double> geometric_schedule(double tau_max, double tau_min, int levels) {
  if (levels < 1 || tau_max <= 0 || tau_min <= 0)
    throw Error("geometric_schedule: need levels >= 1 and positive temperatures");
  std::vector<double> taus(levels);
  for (int i = 0; i < levels; ++i) {
    const double f = levels == 1 ? 1.0 : double(i) / double(levels - 1);
    taus[i] = tau_max * std::pow(tau_min / tau_max, f);
  }
  taus.back() = tau_min;
  return taus;
}

}  // namespace dm::langevin
