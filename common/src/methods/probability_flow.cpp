// probability_flow.cpp — the probability-flow ODE: solve, sample, encode, and
// the likelihood by the instantaneous change of variables.
#include "dm/methods/probability_flow.hpp"

#include <cmath>

#include "dm/base/core.hpp"
#include "dm/base/rng.hpp"
#include "dm/methods/reverse_sde.hpp"

namespace dm::flow {

namespace {

double data_end(const sde::SDE& sde, double t_end) {
  const double t = t_end < 0 ? sde.sampling_eps() : t_end;
  if (!(t >= sde.t_min() && t < sde.t_max()))
    throw Error("flow: t_end = " + std::to_string(t) + " is outside [" +
                std::to_string(sde.t_min()) + ", " + std::to_string(sde.t_max()) + ")");
  return t;
}

}  // namespace

ode::Field drift_field(Model& model, std::shared_ptr<const sde::SDE> sde, const Condition& c) {
  return [&model, sde, c](double t, const torch::Tensor& x) {
    torch::NoGradGuard no_grad;
    return sde::probability_flow_drift(*sde, model, x, t, c);
  };
}

std::string to_string(Solver s) {
  switch (s) {
    case Solver::dopri5: return "dopri5";
    case Solver::euler: return "euler";
    case Solver::heun: return "heun";
  }
  return "?";
}

Solver solver_from_string(const std::string& name) {
  if (name == "dopri5" || name == "rk45") return Solver::dopri5;
  if (name == "euler") return Solver::euler;
  if (name == "heun") return Solver::heun;
  throw Error("unknown ODE solver '" + name + "'",
              "use dopri5 (adaptive), euler or heun (fixed steps)");
}

Solution solve(Model& model, std::shared_ptr<const sde::SDE> sde, const torch::Tensor& x,
               double from, double to, const SolveOptions& o, const Condition& c) {
  const auto field = drift_field(model, sde, c);
  ode::Result r;
  switch (o.solver) {
    case Solver::dopri5: r = ode::dopri5(field, x, from, to, o.ode); break;
    case Solver::euler: r = ode::euler(field, x, ode::uniform_grid(from, to, o.steps)); break;
    case Solver::heun: r = ode::heun(field, x, ode::uniform_grid(from, to, o.steps)); break;
  }
  return {r.x, r.stats};
}

Solution sample(Model& model, std::shared_ptr<const sde::SDE> sde, at::IntArrayRef shape,
                at::Generator& gen, const SolveOptions& o,
                const torch::TensorOptions& tensor_options, const Condition& c) {
  return solve(model, sde, sde->prior_sample(shape, gen, tensor_options), sde->t_max(),
               data_end(*sde, o.t_end), o, c);
}

Solution encode(Model& model, std::shared_ptr<const sde::SDE> sde, const torch::Tensor& x0,
                const SolveOptions& o, const Condition& c) {
  return solve(model, sde, x0, data_end(*sde, o.t_end), sde->t_max(), o, c);
}

Solution decode(Model& model, std::shared_ptr<const sde::SDE> sde, const torch::Tensor& latent,
                const SolveOptions& o, const Condition& c) {
  return solve(model, sde, latent, sde->t_max(), data_end(*sde, o.t_end), o, c);
}

// ---- Divergence --------------------------------------------------------------------

namespace {

// F(x) and ∇·F(x) per row [N] (float64), from one evaluation of F: exact (one
// vector–Jacobian product per dimension) when `probes` is undefined, else
// Hutchinson's mean over the probes v_k of v_kᵀ (∂F/∂x) v_k.
std::pair<torch::Tensor, torch::Tensor> drift_and_divergence(
    const std::function<torch::Tensor(const torch::Tensor&)>& F, const torch::Tensor& x,
    const torch::Tensor& probes) {
  torch::AutoGradMode grad(true);
  const auto xg = x.detach().requires_grad_(true);
  const auto y = F(xg);
  auto div = torch::zeros({x.size(0)}, x.options().dtype(torch::kFloat64));
  if (!probes.defined()) {
    const auto flat = y.flatten(1);
    const int64_t D = flat.size(1);
    for (int64_t j = 0; j < D; ++j) {
      // ∂F_j/∂x_j for every row: the j-th entry of the gradient of Σ_rows F_j
      const auto g =
          torch::autograd::grad({flat.select(1, j).sum()}, {xg}, {}, /*retain_graph=*/j + 1 < D)[0];
      div = div + g.flatten(1).select(1, j).to(torch::kFloat64);
    }
  } else {
    const int64_t K = probes.size(0);
    for (int64_t k = 0; k < K; ++k) {
      const auto v = probes[k];
      // vᵀ (∂F/∂x) v = (∇ₓ (F · v)) · v
      const auto g =
          torch::autograd::grad({(y * v).sum()}, {xg}, {}, /*retain_graph=*/k + 1 < K)[0];
      div = div + (g * v).flatten(1).sum(1).to(torch::kFloat64);
    }
    div = div / double(K);
  }
  return {y.detach(), div};
}

}  // namespace

torch::Tensor divergence_exact(const std::function<torch::Tensor(const torch::Tensor&)>& F,
                               const torch::Tensor& x) {
  return drift_and_divergence(F, x, {}).second;
}

torch::Tensor divergence_hutchinson(const std::function<torch::Tensor(const torch::Tensor&)>& F,
                                    const torch::Tensor& x, const torch::Tensor& probes) {
  if (!probes.defined() || probes.dim() != x.dim() + 1 || probes.sizes().slice(1) != x.sizes())
    throw Error("flow::divergence_hutchinson: probes must be [K, " + std::to_string(x.size(0)) +
                ", …], like x");
  return drift_and_divergence(F, x, probes).second;
}

// ---- Likelihood --------------------------------------------------------------------

Likelihood log_likelihood(Model& model, std::shared_ptr<const sde::SDE> sde, const torch::Tensor& x,
                          at::Generator& gen, const LikelihoodOptions& o, const Condition& c) {
  if (o.probes < 1)
    throw Error("flow::log_likelihood: need at least one probe, got " + std::to_string(o.probes));
  if (c10::InferenceMode::is_enabled())
    throw Error(
        "flow::log_likelihood: called under inference mode, where no gradient (and so no "
        "divergence) "
        "can be taken");
  const double t0 = data_end(*sde, o.t_end), T = sde->t_max();
  const auto shape = x.sizes().vec();
  const int64_t N = x.size(0), D = x.numel() / N;
  // The probes, fixed for the whole solve.
  torch::Tensor probes;
  if (o.divergence != Divergence::exact) {
    std::vector<int64_t> probe_shape = {o.probes};
    probe_shape.insert(probe_shape.end(), shape.begin(), shape.end());
    probes = randn(probe_shape, gen, x.options());
    if (o.divergence == Divergence::hutchinson_rademacher) probes = probes.sign();
  }
  // The joint state [N, D + 1]: x flattened, then the integral of the divergence so far.
  const ode::Field joint = [&](double t, const torch::Tensor& state) {
    const auto F = [&](const torch::Tensor& v) {
      return sde::probability_flow_drift(*sde, model, v, t, c);
    };
    const auto [drift, div] = drift_and_divergence(F, state.slice(1, 0, D).reshape(shape), probes);
    return torch::cat({drift.flatten(1).to(state.dtype()), div.to(state.dtype()).unsqueeze(1)}, 1);
  };
  const auto start = torch::cat({x.detach().flatten(1), torch::zeros({N, 1}, x.options())}, 1);
  const auto r = ode::dopri5(joint, start, t0, T, o.ode);
  Likelihood out;
  out.latent = r.x.slice(1, 0, D).reshape(shape);
  out.prior = (o.prior_log_prob ? o.prior_log_prob(out.latent) : sde->prior_log_prob(out.latent))
                  .to(torch::kFloat64);
  // log p_{t0}(x) = log p_T(x(T)) + ∫_{t0}^T ∇·f̃ dt
  out.log_prob = out.prior + r.x.select(1, D).to(torch::kFloat64);
  out.stats = r.stats;
  return out;
}

torch::Tensor bits_per_dim(const torch::Tensor& log_prob, int64_t dims, double levels,
                           double range) {
  if (dims < 1)
    throw Error("flow::bits_per_dim: dims must be positive, got " + std::to_string(dims));
  return -log_prob.to(torch::kFloat64) / (double(dims) * std::log(2.0)) + std::log2(levels / range);
}

torch::Tensor dequantize(const torch::Tensor& x, at::Generator& gen, double levels) {
  if (!(levels >= 2)) throw Error("flow::dequantize: need at least two levels");
  // k = the level of each value, then x' = 2(k + u)/levels − 1
  const auto k = ((x.to(torch::kFloat64) + 1.0) * (0.5 * (levels - 1))).round();
  const auto u = rand(x.sizes(), gen, x.options().dtype(torch::kFloat64));
  return ((k + u) * (2.0 / levels) - 1.0).to(x.dtype());
}

torch::Tensor slerp(const torch::Tensor& z0, const torch::Tensor& z1, double w) {
  if (z0.sizes() != z1.sizes()) throw Error("flow::slerp: the two latents differ in shape");
  const auto a = z0.flatten(1), b = z1.flatten(1);
  const auto cos = ((a * b).sum(1) / (a.norm(2, 1) * b.norm(2, 1))).clamp(-1.0, 1.0);
  const auto theta = torch::acos(cos).unsqueeze(1);
  const auto sin = torch::sin(theta);
  const auto parallel = sin.abs() < 1e-7;
  const auto safe = torch::where(parallel, torch::ones_like(sin), sin);
  const auto c0 =
      torch::where(parallel, torch::full_like(sin, 1.0 - w), torch::sin((1.0 - w) * theta) / safe);
  const auto c1 = torch::where(parallel, torch::full_like(sin, w), torch::sin(w * theta) / safe);
  return (c0 * a + c1 * b).reshape(z0.sizes());
}

}  // namespace dm::flow
