#include "dm/langevin.hpp"

#include <cmath>

#include "dm/core.hpp"
#include "dm/progress.hpp"

namespace dm::langevin {

namespace {
torch::Tensor no_label_t(const torch::Tensor& x) { return torch::zeros({x.size(0)}, x.options()); }

// Langevin needs the score itself; an ε-model has no noise level here to convert with.
torch::Tensor score_of(Model& model, const torch::Tensor& x) {
  if (model.prediction() != Prediction::score)
    throw Error("Langevin needs a score model; this model predicts eps",
                "wrap it so that it returns score = -eps / std at its noise level");
  return model.predict(x, no_label_t(x));
}
}  // namespace

// ANCHOR: ula_step
torch::Tensor ula_step(Model& model, const torch::Tensor& x, double dt, double tau) {
  auto score = score_of(model, x);
  auto z = torch::randn_like(x);
  // X_{k+1} = X_k + (Δt / 2τ) ∇log p(X_k) + √Δt Z_k
  return x + (dt / (2.0 * tau)) * score + std::sqrt(dt) * z;
}
// ANCHOR_END: ula_step

torch::Tensor ula(Model& model, torch::Tensor x0, double dt, int64_t steps, double tau,
                  const StepCallback& on_step, const std::string& progress_label) {
  torch::NoGradGuard no_grad;
  std::unique_ptr<Progress> bar;
  if (!progress_label.empty()) bar = std::make_unique<Progress>(progress_label, steps);
  auto x = std::move(x0);
  for (int64_t k = 1; k <= steps; ++k) {
    x = ula_step(model, x, dt, tau);
    if (on_step) on_step(k, x);
    if (bar) bar->tick();
  }
  return x;
}

// ANCHOR: mala_log_accept
torch::Tensor mala_log_accept(const std::function<torch::Tensor(const torch::Tensor&)>& log_prob,
                              Model& model, const torch::Tensor& x, const torch::Tensor& x_new,
                              double dt, double tau) {
  // log q(b | a) = −‖b − a − (Δt/2τ) s(a)‖² / (2Δt) + const  (the const cancels)
  auto log_q = [&](const torch::Tensor& b, const torch::Tensor& a) {
    auto mean = a + (dt / (2.0 * tau)) * score_of(model, a);
    return -(b - mean).pow(2).reshape({b.size(0), -1}).sum(1) / (2.0 * dt);
  };
  // log α = [log p(x') − log p(x)]/τ + log q(x | x') − log q(x' | x)
  return (log_prob(x_new) - log_prob(x)) / tau + log_q(x, x_new) - log_q(x_new, x);
}
// ANCHOR_END: mala_log_accept

MalaResult mala(const std::function<torch::Tensor(const torch::Tensor&)>& log_prob, Model& model,
                torch::Tensor x0, double dt, int64_t steps, double tau,
                const StepCallback& on_step, const std::string& progress_label) {
  torch::NoGradGuard no_grad;
  std::unique_ptr<Progress> bar;
  if (!progress_label.empty()) bar = std::make_unique<Progress>(progress_label, steps);
  auto x = std::move(x0);
  auto accepted = torch::zeros({}, x.options().dtype(torch::kFloat64));
  for (int64_t k = 1; k <= steps; ++k) {
    // ANCHOR: mala_step
    auto proposal = ula_step(model, x, dt, tau);
    auto log_alpha = mala_log_accept(log_prob, model, x, proposal, dt, tau);
    // Accept where log U < log α, U ~ Uniform(0, 1).
    auto accept = torch::rand_like(log_alpha).log() < log_alpha;
    std::vector<int64_t> shape(x.dim(), 1);
    shape[0] = x.size(0);
    x = torch::where(accept.reshape(shape), proposal, x);
    // ANCHOR_END: mala_step
    accepted += accept.to(torch::kFloat64).mean();
    if (on_step) on_step(k, x);
    if (bar) bar->tick();
  }
  return {x, steps > 0 ? accepted.item<double>() / double(steps) : 0.0};
}

// ANCHOR: annealed
torch::Tensor annealed(Model& model, torch::Tensor x0, const std::vector<double>& taus,
                       int64_t steps_per_level, double dt, const StepCallback& on_step,
                       const std::string& progress_label) {
  torch::NoGradGuard no_grad;
  std::unique_ptr<Progress> bar;
  const int64_t total = int64_t(taus.size()) * steps_per_level;
  if (!progress_label.empty()) bar = std::make_unique<Progress>(progress_label, total);
  auto x = std::move(x0);
  int64_t k = 0;
  for (double tau : taus) {  // τ_1 > τ_2 > … → 1
    for (int64_t i = 0; i < steps_per_level; ++i) {
      x = ula_step(model, x, dt, tau);  // X_K ≈ p_τ after K steps at this level
      if (on_step) on_step(++k, x);
      if (bar) bar->tick();
    }
  }
  return x;
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
