#include "dm/diffusion/schedule.hpp"

#include <cmath>
#include <vector>

#include "dm/base/core.hpp"

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
  s.label = std::move(name);
  s.betas = betas;
  // α_t = 1 − β_t,  ᾱ_t = Π_{s≤t} α_s
  s.alphas = 1.0 - betas;
  s.alpha_bar = torch::cumprod(s.alphas, 0);
  // ᾱ_{t−1}, with ᾱ_0 = 1 in front (index 0 is step t = 1)
  s.alpha_bar_prev =
      torch::cat({torch::ones({1}, f64_cpu()), s.alpha_bar.index({Slice(0, T - 1)})});
  // q(x_t | x_0) = N(√ᾱ_t x_0, (1 − ᾱ_t) I)
  s.sqrt_alpha_bar = s.alpha_bar.sqrt();
  s.sqrt_one_minus_alpha_bar = (1.0 - s.alpha_bar).sqrt();
  // β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t); β̃_1 = 0 (x_0 is known given x_1 and x_0)
  s.posterior_variance = betas * (1.0 - s.alpha_bar_prev) / (1.0 - s.alpha_bar);
  // log β̃_t with β̃_1 = 0 replaced by β̃_2, as in the DDPM code (log 0 = −∞ otherwise)
  s.posterior_log_variance_clipped = torch::cat({s.posterior_variance.index({Slice(1, 2)}),
                                                 s.posterior_variance.index({Slice(1, T)})})
                                         .log();
  // μ̃_t = [β_t √ᾱ_{t−1} / (1 − ᾱ_t)] x_0 + [(1 − ᾱ_{t−1}) √α_t / (1 − ᾱ_t)] x_t
  s.posterior_mean_coef1 = betas * s.alpha_bar_prev.sqrt() / (1.0 - s.alpha_bar);
  s.posterior_mean_coef2 = (1.0 - s.alpha_bar_prev) * s.alphas.sqrt() / (1.0 - s.alpha_bar);
  s.fill_host_tables();
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
  if (T <= 20)
    throw Error("linear_rescaled: need T > 20 (beta_T = 0.02 * 1000 / T must stay below 1)");
  // Scale DDPM's endpoints by 1000/T: Σβ stays ≈ 10, so ᾱ_T stays ≈ e^{−10} or smaller.
  const double scale = 1000.0 / double(T);
  return Schedule::from_betas(torch::linspace(scale * 1e-4, scale * 0.02, T, f64_cpu()),
                              "linear_rescaled");
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
  for (auto* table :
       {&s.betas, &s.alphas, &s.alpha_bar, &s.alpha_bar_prev, &s.sqrt_alpha_bar,
        &s.sqrt_one_minus_alpha_bar, &s.posterior_variance, &s.posterior_log_variance_clipped,
        &s.posterior_mean_coef1, &s.posterior_mean_coef2})
    *table = table->to(device);
  return s;
}

namespace {
std::vector<double> host(const torch::Tensor& t) {
  const auto c = t.to(torch::kCPU, torch::kFloat64).contiguous();
  return std::vector<double>(c.data_ptr<double>(), c.data_ptr<double>() + c.numel());
}
}  // namespace

void Schedule::fill_host_tables() {
  h_betas_ = host(betas);
  h_sqrt_ab_ = host(sqrt_alpha_bar);
  h_sqrt_1m_ab_ = host(sqrt_one_minus_alpha_bar);
  h_log_ab_ = host(alpha_bar.log());
  h_coef1_ = host(posterior_mean_coef1);
  h_coef2_ = host(posterior_mean_coef2);
  h_post_var_ = host(posterior_variance);
  h_post_log_var_ = host(posterior_log_variance_clipped);
  using torch::indexing::
      Slice;  // fixedlarge's log σ²: log β_t, with log β̃_2 at t = 1 (the DDPM code)
  h_large_log_var_ =
      host(torch::cat({posterior_variance.index({Slice(1, 2)}), betas.index({Slice(1, T)})}).log());
  const auto cpu = torch::TensorOptions(torch::kFloat64);
  auto with_zero = [&](const torch::Tensor& table, double at_zero) {
    return torch::cat({torch::full({1}, at_zero, cpu), table.to(torch::kCPU, torch::kFloat64)});
  };
  cpu_tables_ = {with_zero(sqrt_alpha_bar, 1.0), with_zero(sqrt_one_minus_alpha_bar, 0.0),
                 with_zero(alpha_bar.log(), 0.0)};
  device_cache_ = std::make_shared<DeviceCache>();
}

Schedule::LookupTables Schedule::tables_on(const torch::Device& device) const {
  if (device.is_cpu()) return cpu_tables_;
  std::lock_guard<std::mutex> lock(device_cache_->mutex);
  auto& cached = device_cache_->tables;
  if (!cached.a.defined() || cached.a.device() != device)
    cached = {cpu_tables_.a.to(device), cpu_tables_.s.to(device), cpu_tables_.log_ab.to(device)};
  return cached;
}

// ANCHOR: schedule_process
Coefficients Schedule::at(double t) const {
  if (!(t >= 0 && t <= double(T)))
    throw Error("Schedule: t = " + std::to_string(t) + " is outside [0, " + std::to_string(T) +
                "]");
  const double i = std::floor(t);
  const auto k = static_cast<int64_t>(i);
  if (t == i) {  // a step of the chain: the tables themselves (ᾱ_0 = 1 at t = 0)
    if (k == 0) return {1.0, 0.0};
    return {h_sqrt_ab_[k - 1], h_sqrt_1m_ab_[k - 1]};
  }
  // Between steps k and k + 1: log ᾱ linear in t.
  const double w = t - i;
  const double log_lo = k == 0 ? 0.0 : h_log_ab_[k - 1];
  const double ab = std::exp((1 - w) * log_lo + w * h_log_ab_[k]);
  return {std::sqrt(ab), std::sqrt(1 - ab)};
}

namespace {
// The table ([T + 1], the t = 0 entry in front, on t's device) gathered at t:
// exactly for integer steps, log-linear in ᾱ in between.
torch::Tensor lookup(const torch::Tensor& full, const torch::Tensor& full_log,
                     const torch::Tensor& t, bool is_std) {
  if (!t.is_floating_point()) return full.index_select(0, t.reshape({-1})).reshape(t.sizes());
  const auto tt = t.to(torch::kFloat64).reshape({-1});
  const int64_t T = full.size(0) - 1;
  const auto lo = tt.floor().clamp(0, double(T));
  const auto w = tt - lo;
  const auto i0 = lo.to(torch::kLong), i1 = (i0 + 1).clamp_max(T);
  const auto ab = ((1 - w) * full_log.index_select(0, i0) + w * full_log.index_select(0, i1)).exp();
  const auto between = is_std ? (1 - ab).sqrt() : ab.sqrt();
  return torch::where(w == 0, full.index_select(0, i0), between).reshape(t.sizes());
}
}  // namespace

torch::Tensor Schedule::a(const torch::Tensor& t) const {
  const auto tables = tables_on(t.device());
  return lookup(tables.a, tables.log_ab, t, false);
}

torch::Tensor Schedule::s(const torch::Tensor& t) const {
  const auto tables = tables_on(t.device());
  return lookup(tables.s, tables.log_ab, t, true);
}

Posterior Schedule::posterior(double t, double t_next) const {
  const auto k = static_cast<int64_t>(t);
  if (double(k) != t || t_next != t - 1 || k < 1 || k > T) return Process::posterior(t, t_next);
  // q(x_{t−1} | x_t, x_0) from the tables (index k − 1 is step t = k)
  Posterior p;
  p.c_x0 = h_coef1_[k - 1];
  p.c_xt = h_coef2_[k - 1];
  p.variance = h_post_var_[k - 1];
  p.log_variance = h_post_log_var_[k - 1];
  p.kernel_variance = h_betas_[k - 1];
  p.log_kernel_variance = h_large_log_var_[k - 1];
  return p;
}
// ANCHOR_END: schedule_process

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

torch::Tensor extract_like(const torch::Tensor& coef, const torch::Tensor& t,
                           const torch::Tensor& x) {
  if (t.numel() != x.size(0)) throw Error("extract: t must have one step index per row of x");
  return extract(coef, t.to(x.device()), x.dim()).to(x.dtype());
}

}  // namespace dm::schedule
