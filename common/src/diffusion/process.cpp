#include "dm/diffusion/process.hpp"

#include <cmath>
#include <string>

#include "dm/base/core.hpp"
#include "dm/base/rng.hpp"

namespace dm {

// ANCHOR: kernel_posterior
Kernel Process::transition(double t, double t_next) const {
  const auto from = at(t), to = at(t_next);
  const double ratio = to.a / from.a;  // a_{t'|t}
  // s²_{t'|t} = s(t')² − a²_{t'|t} s(t)²  (variances of independent Gaussians add)
  const double var = to.s * to.s - ratio * ratio * from.s * from.s;
  return {ratio, std::sqrt(std::max(var, 0.0))};
}

Posterior Process::posterior(double t, double t_next) const {
  const auto now = at(t), next = at(t_next);
  const double ratio = now.a / next.a;                                // a_{t|t'}
  const double s2 = now.s * now.s;                                    // s(t)²
  const double s2_next = next.s * next.s;                             // s(t')²
  const double kernel = std::max(s2 - ratio * ratio * s2_next, 0.0);  // s²_{t|t'}
  Posterior p;
  p.c_x0 = next.a * kernel / s2;
  p.c_xt = ratio * s2_next / s2;
  p.variance = kernel * s2_next / s2;
  p.kernel_variance = kernel;
  p.log_variance = std::log(p.variance);
  p.log_kernel_variance = std::log(kernel);
  return p;
}
// ANCHOR_END: kernel_posterior

torch::Tensor per_row(const torch::Tensor& c, const torch::Tensor& like) {
  auto out = c.to(like.options());
  if (out.dim() == 0 || out.dim() == like.dim()) return out;
  std::vector<int64_t> shape(like.dim(), 1);
  shape[0] = out.size(0);
  return out.reshape(shape);
}

// ANCHOR: marginal_and_kernel_impl
torch::Tensor marginal_sample(const Process& process, const torch::Tensor& x0,
                              const torch::Tensor& t, const torch::Tensor& eps) {
  // x_t = a(t) x_0 + s(t) ε
  return per_row(process.a(t), x0) * x0 + per_row(process.s(t), x0) * eps;
}

torch::Tensor forward_kernel(const Process& process, const torch::Tensor& x, double t,
                             double t_next, at::Generator& gen) {
  if (t_next < t)
    throw Error("forward_kernel: t_next = " + std::to_string(t_next) + " is before t = " +
                std::to_string(t) + " (the forward process only moves towards noise)");
  const auto k = process.transition(t, t_next);
  // x_{t'} = a_{t'|t} x_t + s_{t'|t} z
  return k.a * x + k.s * randn_like(x, gen);
}
// ANCHOR_END: marginal_and_kernel_impl

torch::Tensor SigmaVE::a(const torch::Tensor& t) const {
  return torch::ones_like(t, t.options().dtype(torch::kFloat64));
}
torch::Tensor SigmaVE::s(const torch::Tensor& t) const { return t.to(torch::kFloat64); }

namespace {
torch::Tensor map_rows(const torch::Tensor& t, const std::function<double(double)>& f) {
  const auto tc = t.to(torch::kCPU, torch::kFloat64).contiguous();
  auto out = torch::empty_like(tc);
  const double* in = tc.data_ptr<double>();
  double* o = out.data_ptr<double>();
  for (int64_t i = 0; i < tc.numel(); ++i) o[i] = f(in[i]);
  return out.to(t.device());
}
}  // namespace

torch::Tensor FunctionProcess::a(const torch::Tensor& t) const {
  return map_rows(t, [this](double x) { return fn_(x).a; });
}
torch::Tensor FunctionProcess::s(const torch::Tensor& t) const {
  return map_rows(t, [this](double x) { return fn_(x).s; });
}

}  // namespace dm
