#include "dm/schedule.hpp"

#include <cmath>
#include <vector>

#include "dm/core.hpp"

namespace dm::schedule {

namespace {
constexpr double kPi = 3.14159265358979323846;

torch::TensorOptions f64_cpu() { return torch::TensorOptions().dtype(torch::kFloat64); }
}  // namespace

// ANCHOR: schedule_tables
Schedule Schedule::from_betas(const torch::Tensor& betas_in, std::string name) {
  auto betas = betas_in.to(torch::kCPU, torch::kFloat64).reshape({-1}).contiguous();
  const int64_t T = betas.size(0);
  if (T < 2) throw Error("Schedule: need at least 2 steps (T >= 2)");
  if ((betas <= 0).any().item<bool>() || (betas >= 1).any().item<bool>())
    throw Error("Schedule: every beta must lie in (0, 1)",
                "for a short linear chain use linear_rescaled(T) with T > 20, or lower beta_end");
  using torch::indexing::Slice;
  Schedule s;
  s.T = T;
  s.name = std::move(name);
  s.betas = betas;
  // α_t = 1 − β_t,  ᾱ_t = Π_{s≤t} α_s
  s.alphas = 1.0 - betas;
  s.alpha_bar = torch::cumprod(s.alphas, 0);
  // ᾱ_{t−1}, with ᾱ_0 = 1 in front (index 0 is step t = 1)
  s.alpha_bar_prev = torch::cat({torch::ones({1}, f64_cpu()), s.alpha_bar.index({Slice(0, T - 1)})});
  // q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I)
  s.sqrt_alpha_bar = s.alpha_bar.sqrt();
  s.sqrt_one_minus_alpha_bar = (1.0 - s.alpha_bar).sqrt();
  // β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t); β̃_1 = 0 (x_0 is known given x_1 and x_0)
  s.posterior_variance = betas * (1.0 - s.alpha_bar_prev) / (1.0 - s.alpha_bar);
  // log β̃_t with β̃_1 = 0 replaced by β̃_2, as in the DDPM code (log 0 = −∞ otherwise)
  s.posterior_log_variance_clipped =
      torch::cat({s.posterior_variance.index({Slice(1, 2)}), s.posterior_variance.index({Slice(1, T)})})
          .log();
  // μ̃_t = [β_t √ᾱ_{t−1} / (1 − ᾱ_t)] x_0 + [(1 − ᾱ_{t−1}) √α_t / (1 − ᾱ_t)] x_t
  s.posterior_mean_coef1 = betas * s.alpha_bar_prev.sqrt() / (1.0 - s.alpha_bar);
  s.posterior_mean_coef2 = (1.0 - s.alpha_bar_prev) * s.alphas.sqrt() / (1.0 - s.alpha_bar);
  return s;
}
// ANCHOR_END: schedule_tables

// ANCHOR: schedule_linear
Schedule linear(int64_t T, double beta_start, double beta_end) {
  if (T < 2) throw Error("linear schedule: need T >= 2");
  // β_t evenly spaced from β_1 = beta_start to β_T = beta_end
  return Schedule::from_betas(torch::linspace(beta_start, beta_end, T, f64_cpu()), "linear");
}

Schedule linear_rescaled(int64_t T) {
  if (T <= 20) throw Error("linear_rescaled: need T > 20 (beta_T = 0.02 * 1000 / T must stay below 1)");
  // Scale DDPM's endpoints by 1000/T: Σβ stays ≈ 10, so ᾱ_T stays ≈ e^{−10} or smaller.
  const double scale = 1000.0 / double(T);
  return Schedule::from_betas(torch::linspace(scale * 1e-4, scale * 0.02, T, f64_cpu()), "linear_rescaled");
}
// ANCHOR_END: schedule_linear

// ANCHOR: schedule_cosine
Schedule cosine(int64_t T, double s, double max_beta) {
  if (T < 2) throw Error("cosine schedule: need T >= 2");
  if (s < 0 || max_beta <= 0 || max_beta >= 1)
    throw Error("cosine schedule: need s >= 0 and 0 < max_beta < 1");
  auto t = torch::arange(T + 1, f64_cpu());
  // f(t) = cos²(((t/T + s)/(1 + s)) · π/2); ᾱ(t) = f(t)/f(0)
  auto f = torch::cos((t / double(T) + s) / (1.0 + s) * (kPi / 2)).pow(2);
  using torch::indexing::Slice;
  // β_t = 1 − ᾱ(t)/ᾱ(t−1), clipped at max_beta (f(T) = 0 would give β_T = 1)
  auto betas = (1.0 - f.index({Slice(1, T + 1)}) / f.index({Slice(0, T)})).clamp_max(max_beta);
  return Schedule::from_betas(betas, "cosine");
}
// ANCHOR_END: schedule_cosine

Schedule Schedule::to(const torch::Device& device) const {
  Schedule s = *this;
  for (auto* table : {&s.betas, &s.alphas, &s.alpha_bar, &s.alpha_bar_prev, &s.sqrt_alpha_bar,
                      &s.sqrt_one_minus_alpha_bar, &s.posterior_variance, &s.posterior_log_variance_clipped,
                      &s.posterior_mean_coef1, &s.posterior_mean_coef2})
    *table = table->to(device);
  return s;
}

std::pair<double, double> Schedule::mean_std(double t) const {
  const double i = std::round(t);
  if (std::abs(t - i) > 1e-6 || i < 0 || i > double(T - 1))
    throw Error("Schedule::mean_std: t = " + std::to_string(t) + " is not a step index in [0, " +
                std::to_string(T - 1) + "]");
  const auto k = static_cast<int64_t>(i);
  return {sqrt_alpha_bar[k].item<double>(), sqrt_one_minus_alpha_bar[k].item<double>()};
}

std::function<std::pair<double, double>(double)> Schedule::mean_std_fn() const {
  return [s = to(torch::kCPU)](double t) { return s.mean_std(t); };
}

// ANCHOR: extract
torch::Tensor extract(const torch::Tensor& coef, const torch::Tensor& t, int64_t ndim) {
  if (ndim < 1) throw Error("extract: ndim must be >= 1");
  auto idx = t.reshape({-1});
  std::vector<int64_t> shape(ndim, 1);
  shape[0] = idx.size(0);
  // coef[t_n] for each row n, shaped [N, 1, …, 1] to broadcast over x [N, …]
  return coef.to(t.device()).index_select(0, idx.to(torch::kLong)).reshape(shape);
}
// ANCHOR_END: extract

torch::Tensor extract_like(const torch::Tensor& coef, const torch::Tensor& t, const torch::Tensor& x) {
  if (t.numel() != x.size(0)) throw Error("extract: t must have one step index per row of x");
  return extract(coef, t.to(x.device()), x.dim()).to(x.dtype());
}

}  // namespace dm::schedule
