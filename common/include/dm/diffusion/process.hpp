// dm/diffusion/process.hpp — the forward processes, through one small interface.
//
// Every process of the suite — DDPM's discrete schedule, NCSN's σ levels, and
// the VE / VP / sub-VP SDEs of chapter 05 — has Gaussian marginals of one form,
//     x_t = a(t)·x_0 + s(t)·ε,    ε ~ N(0, I),
// so a process is the pair of functions (a, s) on its time interval
// [t_min, t_max], with the data at t_min (a ≈ 1, s ≈ 0). Two Gaussian facts
// follow for any such process (with a_{t'|t} = a(t')/a(t), t' > t):
//   the forward kernel  x_{t'} | x_t = a_{t'|t}·x_t + s_{t'|t}·z,
//                       s²_{t'|t} = s(t')² − a²_{t'|t}·s(t)²;
//   the posterior       q(x_{t'} | x_t, x_0) for t' < t (Bayes on the two Gaussians),
//                       mean = a(t')·s²_{t|t'}/s(t)² · x_0 + a_{t|t'}·s(t')²/s(t)² · x_t,
//                       variance = s²_{t|t'}·s(t')²/s(t)².
// DDPM's q(x_t | x_{t−1}) and NCSN's noising chain are the first; DDPM's
// q(x_{t−1} | x_t, x_0), respaced DDPM and VE ancestral sampling are the second.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>

namespace dm {

// x_t = a·x_0 + s·ε
struct Coefficients {
  double a = 1, s = 0;
};

// x_{t'} | x_t = a·x_t + s·z  (t' > t)
struct Kernel {
  double a = 1, s = 0;
};

// q(x_{t'} | x_t, x_0) = N(c_x0·x_0 + c_xt·x_t, variance) for t' < t, with
// kernel_variance = s²_{t|t'} (the forward kernel's variance: DDPM's β_t,
// the "fixedlarge" choice of a reverse step). Logs are kept so that samplers
// can use exp(½ log σ²) as the DDPM code does.
struct Posterior {
  double c_x0 = 0, c_xt = 0;
  double variance = 0, log_variance = 0;
  double kernel_variance = 0, log_kernel_variance = 0;
};

// ANCHOR: process
class Process {
 public:
  virtual ~Process() = default;
  virtual std::string name() const = 0;
  virtual double t_min() const = 0;  // the data end
  virtual double t_max() const = 0;  // the prior end, where sampling starts
  // (a(t), s(t)) at one time.
  virtual Coefficients at(double t) const = 0;
  // The same per row: t [N] → a(t), s(t) [N], float64 on t's device.
  virtual torch::Tensor a(const torch::Tensor& t) const = 0;
  virtual torch::Tensor s(const torch::Tensor& t) const = 0;
  // The forward kernel from t to t_next > t (the general formula above).
  virtual Kernel transition(double t, double t_next) const;
  // q(x_{t_next} | x_t, x_0) for t_next < t (the general formula above).
  virtual Posterior posterior(double t, double t_next) const;
};
// ANCHOR_END: process

// ANCHOR: marginal_and_kernel
// x_t = a(t)·x_0 + s(t)·ε with a time per row (t [N]); ε shaped like x0.
torch::Tensor marginal_sample(const Process& process, const torch::Tensor& x0,
                              const torch::Tensor& t, const torch::Tensor& eps);
// A draw of x_{t_next} | x_t for t_next ≥ t: a_{t'|t}·x + s_{t'|t}·z, z from `gen`.
torch::Tensor forward_kernel(const Process& process, const torch::Tensor& x, double t,
                             double t_next, at::Generator& gen);
// ANCHOR_END: marginal_and_kernel

// A per-row coefficient c [N] shaped [N, 1, …, 1] for x [N, …], in x's dtype
// and on its device (a 0-dim c is only cast).
torch::Tensor per_row(const torch::Tensor& c, const torch::Tensor& like);

// ANCHOR: sigma_ve
// NCSN's process: variance exploding, with time measured in σ itself
// (a = 1, s = t; EDM's convention). Its times are NCSN's noise levels, so an
// annealed sampler's time grid is the list σ_1 > … > σ_L.
class SigmaVE : public Process {
 public:
  explicit SigmaVE(double sigma_max) : sigma_max_(sigma_max) {}
  std::string name() const override { return "VE (t = σ)"; }
  double t_min() const override { return 0.0; }
  double t_max() const override { return sigma_max_; }
  Coefficients at(double t) const override { return {1.0, t}; }
  torch::Tensor a(const torch::Tensor& t) const override;
  torch::Tensor s(const torch::Tensor& t) const override;

 private:
  double sigma_max_;
};
// ANCHOR_END: sigma_ve

// A process given by a function t ↦ (a(t), s(t)) on [t_min, t_max]: for
// tests, notebooks and quick experiments. Its per-row versions evaluate the
// function on the host, one row at a time (fine for small batches).
class FunctionProcess : public Process {
 public:
  FunctionProcess(std::string name, double t_min, double t_max,
                  std::function<Coefficients(double)> fn)
      : name_(std::move(name)), t_min_(t_min), t_max_(t_max), fn_(std::move(fn)) {}
  std::string name() const override { return name_; }
  double t_min() const override { return t_min_; }
  double t_max() const override { return t_max_; }
  Coefficients at(double t) const override { return fn_(t); }
  torch::Tensor a(const torch::Tensor& t) const override;
  torch::Tensor s(const torch::Tensor& t) const override;

 private:
  std::string name_;
  double t_min_, t_max_;
  std::function<Coefficients(double)> fn_;
};

}  // namespace dm
