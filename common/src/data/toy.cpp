#include "dm/data/toy.hpp"

#include <cmath>

#include "dm/base/core.hpp"
#include "dm/base/rng.hpp"
#include "dm/diffusion/param.hpp"

namespace dm::toy {

namespace {
constexpr double kLog2Pi = 1.8378770664093453;  // log(2π)

torch::Tensor eye_like(int64_t d, const torch::Tensor& like) {
  return torch::eye(d, like.options());
}
}  // namespace

// ---------------------------------------------------------------------------
// GaussianMixture
// ---------------------------------------------------------------------------

GaussianMixture::GaussianMixture(torch::Tensor weights, torch::Tensor means, torch::Tensor covs,
                                 std::vector<int64_t> groups)
    : groups_(std::move(groups)) {
  if (means.dim() != 2) throw Error("GaussianMixture: means must be [K, D]");
  const int64_t K = means.size(0), D = means.size(1);
  if (weights.dim() != 1 || weights.size(0) != K)
    throw Error("GaussianMixture: weights must be [K] with K = means.size(0)");
  if (covs.dim() != 3 || covs.size(0) != K || covs.size(1) != D || covs.size(2) != D)
    throw Error("GaussianMixture: covs must be [K, D, D]");
  if ((weights < 0).any().item<bool>() || weights.sum().item<double>() <= 0)
    throw Error("GaussianMixture: weights must be non-negative and not all zero");
  weights_ = weights.to(torch::kCPU, torch::kFloat64);
  weights_ = weights_ / weights_.sum();
  means_ = means.to(torch::kCPU, torch::kFloat64).contiguous();
  covs_ = covs.to(torch::kCPU, torch::kFloat64);
  covs_ = (0.5 * (covs_ + covs_.transpose(1, 2))).contiguous();  // exact symmetry

  // Σ_k = L_k L_kᵀ; Σ_k⁻¹ and log det Σ_k = 2 Σ_i log L_k,ii from the Cholesky factor.
  torch::Tensor chol;
  try {
    chol = at::linalg_cholesky(covs_);
  } catch (const c10::Error&) {
    throw Error("GaussianMixture: a covariance is not positive definite");
  }
  precisions_ = torch::cholesky_inverse(chol);
  log_dets_ = 2.0 * chol.diagonal(0, 1, 2).log().sum(1);

  if (groups_.empty()) groups_.assign(K, 0);
  if (int64_t(groups_.size()) != K) throw Error("GaussianMixture: groups must have K entries");
  classes_ = 0;
  for (auto g : groups_) {
    if (g < 0) throw Error("GaussianMixture: group ids must be >= 0");
    classes_ = std::max(classes_, g + 1);
  }
}

GaussianMixture GaussianMixture::isotropic(const torch::Tensor& weights, const torch::Tensor& means,
                                           const torch::Tensor& stds, std::vector<int64_t> groups) {
  const int64_t D = means.size(1);
  auto var = stds.to(torch::kFloat64).pow(2).reshape({-1, 1, 1});
  auto covs = var * torch::eye(D, torch::kFloat64).unsqueeze(0);
  return GaussianMixture(weights, means, covs, std::move(groups));
}

// ANCHOR: mixture_log_prob
torch::Tensor GaussianMixture::component_log_probs(const torch::Tensor& x) const {
  const auto dev = x.device();
  // diff[n, k] = x_n − μ_k
  auto diff = x.to(torch::kFloat64).unsqueeze(1) - means_.to(dev).unsqueeze(0);
  // Mahalanobis distance (x − μ_k)ᵀ Σ_k⁻¹ (x − μ_k)
  auto maha = torch::einsum("nkd,kde,nke->nk", {diff, precisions_.to(dev), diff});
  // log w_k + log N(x; μ_k, Σ_k)
  return weights_.to(dev).log().unsqueeze(0) -
         0.5 * (maha + log_dets_.to(dev).unsqueeze(0) + double(dim()) * kLog2Pi);
}

torch::Tensor GaussianMixture::log_prob(const torch::Tensor& x) const {
  return torch::logsumexp(component_log_probs(x), 1);
}
// ANCHOR_END: mixture_log_prob

torch::Tensor GaussianMixture::responsibilities(const torch::Tensor& x) const {
  return torch::softmax(component_log_probs(x), 1);
}

// ANCHOR: mixture_score
torch::Tensor GaussianMixture::score_masked(const torch::Tensor& x,
                                            const torch::Tensor& mask) const {
  const auto dev = x.device();
  auto logits = component_log_probs(x);
  if (mask.defined()) logits = logits + mask;
  auto resp = torch::softmax(logits, 1);  // r_k(x) = p(k | x)
  auto diff = x.to(torch::kFloat64).unsqueeze(1) - means_.to(dev).unsqueeze(0);
  // ∇ₓ log N(x; μ_k, Σ_k) = −Σ_k⁻¹ (x − μ_k)
  auto grads = -torch::einsum("kde,nke->nkd", {precisions_.to(dev), diff});
  // ∇ₓ log p(x) = Σ_k r_k(x) ∇ₓ log N(x; μ_k, Σ_k)
  return (resp.unsqueeze(2) * grads).sum(1).to(x.dtype());
}
// ANCHOR_END: mixture_score

torch::Tensor GaussianMixture::score(const torch::Tensor& x) const { return score_masked(x, {}); }

Eigen::MatrixXd GaussianMixture::score(const Eigen::MatrixXd& x) const {
  const int64_t K = components(), D = dim();
  if (x.cols() != D) throw Error("GaussianMixture::score: x must have D columns");
  // Copy the parameters out of torch once per call (cheap for small K, D).
  auto mu = means_.contiguous();
  auto prec = precisions_.contiguous();
  std::vector<Eigen::VectorXd> means(K);
  std::vector<Eigen::MatrixXd> precs(K);
  Eigen::VectorXd log_norm(K);
  for (int64_t k = 0; k < K; ++k) {
    means[k] = Eigen::Map<const Eigen::VectorXd>(mu[k].data_ptr<double>(), D);
    // Row-major torch storage of a symmetric matrix reads the same column-major.
    precs[k] = Eigen::Map<const Eigen::MatrixXd>(prec[k].data_ptr<double>(), D, D);
    log_norm[k] = std::log(weights_[k].item<double>()) -
                  0.5 * (log_dets_[k].item<double>() + double(D) * kLog2Pi);
  }
  Eigen::MatrixXd out(x.rows(), D);
  Eigen::VectorXd logits(K);
  std::vector<Eigen::VectorXd> grads(K);
  for (Eigen::Index n = 0; n < x.rows(); ++n) {
    const Eigen::VectorXd xn = x.row(n).transpose();
    for (int64_t k = 0; k < K; ++k) {
      const Eigen::VectorXd diff = xn - means[k];
      grads[k] = -(precs[k] * diff);
      logits[k] = log_norm[k] + 0.5 * diff.dot(grads[k]);
    }
    const double m = logits.maxCoeff();
    const Eigen::VectorXd r = (logits.array() - m).exp().matrix();
    Eigen::VectorXd s = Eigen::VectorXd::Zero(D);
    for (int64_t k = 0; k < K; ++k) s += r[k] * grads[k];
    out.row(n) = (s / r.sum()).transpose();
  }
  return out;
}

torch::Tensor GaussianMixture::class_posterior(const torch::Tensor& x) const {
  auto resp = responsibilities(x);
  auto index = torch::tensor(groups_, torch::kLong).to(resp.device());
  return torch::zeros({resp.size(0), classes_}, resp.options()).index_add_(1, index, resp);
}

torch::Tensor GaussianMixture::sample(int64_t n, at::Generator& gen,
                                      torch::Tensor* components_out) const {
  auto comp = torch::multinomial(weights_, n, /*replacement=*/true, gen);
  auto chol = at::linalg_cholesky(covs_);
  auto z = torch::randn({n, dim(), 1}, gen, torch::kFloat64);
  // x = μ_c + L_c z, z ~ N(0, I)  ⇒  x ~ N(μ_c, L_c L_cᵀ)
  auto x = means_.index_select(0, comp) + torch::matmul(chol.index_select(0, comp), z).squeeze(2);
  if (components_out) *components_out = comp;
  return x;
}

// ANCHOR: mixture_perturb
GaussianMixture GaussianMixture::perturb_ve(double sigma) const { return perturb_vp(1.0, sigma); }

GaussianMixture GaussianMixture::perturb_vp(double a, double s) const {
  // a·X + s·Z with X ~ N(μ_k, Σ_k):  N(a μ_k, a² Σ_k + s² I)
  auto covs = a * a * covs_ + s * s * eye_like(dim(), covs_).unsqueeze(0);
  return GaussianMixture(weights_, a * means_, covs, groups_);
}
// ANCHOR_END: mixture_perturb

GaussianMixture GaussianMixture::conditional(int64_t cls) const {
  std::vector<int64_t> keep;
  for (int64_t k = 0; k < components(); ++k)
    if (groups_[k] == cls) keep.push_back(k);
  if (keep.empty())
    throw Error("GaussianMixture::conditional: no component has class " + std::to_string(cls));
  auto idx = torch::tensor(keep, torch::kLong);
  return GaussianMixture(weights_.index_select(0, idx), means_.index_select(0, idx),
                         covs_.index_select(0, idx));
}

// ANCHOR: mixture_posterior
GaussianMixture GaussianMixture::posterior(const torch::Tensor& A_in, const torch::Tensor& y_in,
                                           double sigma_y) const {
  if (sigma_y <= 0) throw Error("GaussianMixture::posterior: sigma_y must be > 0");
  auto A = A_in.to(torch::kCPU, torch::kFloat64);
  auto y = y_in.to(torch::kCPU, torch::kFloat64).reshape({-1});
  if (A.dim() != 2 || A.size(1) != dim() || A.size(0) != y.size(0))
    throw Error("GaussianMixture::posterior: A must be [M, D] and y [M]");
  const int64_t M = A.size(0);
  const double inv_var = 1.0 / (sigma_y * sigma_y);
  auto At = A.t();
  // Per component: C_k = (Σ_k⁻¹ + AᵀA/σ_y²)⁻¹,  m_k = C_k (Σ_k⁻¹ μ_k + Aᵀy/σ_y²)
  auto post_prec = precisions_ + inv_var * torch::matmul(At, A).unsqueeze(0);
  auto post_cov = at::linalg_inv(post_prec);
  auto rhs =
      torch::matmul(precisions_, means_.unsqueeze(2)).squeeze(2) + inv_var * torch::matmul(At, y);
  auto post_mean = torch::matmul(post_cov, rhs.unsqueeze(2)).squeeze(2);
  // New weights ∝ w_k N(y; A μ_k, A Σ_k Aᵀ + σ_y² I)  (the evidence of component k)
  auto pred_mean = torch::matmul(means_, At);  // [K, M]
  auto pred_cov = torch::matmul(torch::matmul(A, covs_), At) +
                  (sigma_y * sigma_y) * torch::eye(M, torch::kFloat64);  // [K, M, M]
  GaussianMixture evidence(weights_, pred_mean, pred_cov);
  auto log_w = evidence.component_log_probs(y.unsqueeze(0)).squeeze(0);
  auto w = torch::softmax(log_w, 0);
  return GaussianMixture(w, post_mean, post_cov, groups_);
}
// ANCHOR_END: mixture_posterior

torch::Tensor GaussianMixture::group_mask(const torch::Tensor& labels) const {
  // mask[n, k] = 0 where component k belongs to row n's class (or label −1), −∞ elsewhere.
  auto groups = torch::tensor(groups_, torch::kLong).to(labels.device());
  auto lab = labels.to(torch::kLong).reshape({-1, 1});
  auto allowed = (groups.unsqueeze(0) == lab) | (lab == -1);
  if (!allowed.any(1).all().item<bool>())
    throw Error("GaussianMixture: a label names no class of this mixture");
  return torch::zeros(allowed.sizes(),
                      torch::TensorOptions().dtype(torch::kFloat64).device(labels.device()))
      .masked_fill(allowed.logical_not(), -std::numeric_limits<double>::infinity());
}

torch::Tensor GaussianMixture::predict(const torch::Tensor& x, const torch::Tensor&,
                                       const Condition& c) {
  if (!c.labels.defined()) return score(x);
  return score_masked(x, group_mask(c.labels.to(x.device())));
}

// ---------------------------------------------------------------------------
// PerturbedMixture
// ---------------------------------------------------------------------------

PerturbedMixture::PerturbedMixture(GaussianMixture data, std::shared_ptr<const Process> process,
                                   Prediction prediction)
    : data_(std::move(data)), process_(std::move(process)), prediction_(prediction) {
  if (!process_) throw Error("PerturbedMixture: no process given");
}

GaussianMixture PerturbedMixture::at(double t) const {
  const auto c = process_->at(t);
  return data_.perturb_vp(c.a, c.s);
}

torch::Tensor PerturbedMixture::predict(const torch::Tensor& x, const torch::Tensor& t,
                                        const Condition& c) {
  const int64_t N = x.size(0);
  auto t_cpu = t.to(torch::kCPU, torch::kFloat64).reshape({-1});
  if (t_cpu.numel() == 1) t_cpu = t_cpu.expand({N});
  if (t_cpu.numel() != N) throw Error("PerturbedMixture: t must have one entry per row (or one)");
  auto out = torch::empty_like(x);
  // Samplers usually pass one t for the whole batch: evaluate each distinct t once.
  auto unique = std::get<0>(torch::_unique(t_cpu));
  for (int64_t i = 0; i < unique.size(0); ++i) {
    const double ti = unique[i].item<double>();
    auto mixture = at(ti);
    const auto co = process_->at(ti);
    torch::Tensor xr = x, score;
    torch::Tensor rows;
    if (unique.size(0) == 1) {
      score = mixture.predict(x, {}, c);
    } else {
      rows = (t_cpu == ti).nonzero().squeeze(1).to(x.device());
      xr = x.index_select(0, rows);
      score = mixture.predict(xr, {}, c.rows(rows));
    }
    // score → the asked-for kind: ε = −s·score, x̂_0 = (x + s²·score)/a
    auto pred = convert(score, Prediction::score, prediction_, xr, co).to(x.dtype());
    if (unique.size(0) == 1) return pred;
    out.index_copy_(0, rows, pred);
  }
  return out;
}

GaussianMixture three_gaussians() {
  const auto w = torch::tensor({0.5, 0.3, 0.2}, torch::kFloat64);
  const auto means =
      torch::tensor({-2.5, 0.0, 1.5, 2.0, 1.5, -2.0}, torch::kFloat64).reshape({3, 2});
  const auto covs =
      torch::tensor({0.30, 0.10, 0.10, 0.20, 0.25, -0.10, -0.10, 0.35, 0.15, 0.0, 0.0, 0.15},
                    torch::kFloat64)
          .reshape({3, 2, 2});
  return GaussianMixture(w, means, covs);
}

GaussianMixture ring_mixture(int64_t K, double radius, double std) {
  auto angle = torch::arange(K, torch::kFloat64) * (2.0 * M_PI / double(K));
  auto means = torch::stack({radius * angle.cos(), radius * angle.sin()}, 1);
  std::vector<int64_t> groups(K);
  for (int64_t k = 0; k < K; ++k) groups[k] = k;
  return GaussianMixture::isotropic(torch::ones({K}, torch::kFloat64), means,
                                    torch::full({K}, std, torch::kFloat64), groups);
}

// ---------------------------------------------------------------------------
// DoubleWell
// ---------------------------------------------------------------------------

// ANCHOR: double_well
torch::Tensor DoubleWell::potential(const torch::Tensor& x) {
  // V(x) = −x²(x − 2)(x + 2) = −x⁴ + 4x²
  auto x2 = x * x;
  return -x2 * x2 + 4.0 * x2;
}

torch::Tensor DoubleWell::potential_grad(const torch::Tensor& x) {
  // V'(x) = −4x³ + 8x
  return -4.0 * x * x * x + 8.0 * x;
}

torch::Tensor DoubleWell::score(const torch::Tensor& x) const {
  // ∇ log p_τ = ∇ (V/τ) = V'(x)/τ
  return potential_grad(x) / tau_;
}
// ANCHOR_END: double_well

DoubleWell::DoubleWell(double tau) : tau_(tau) {
  if (!(tau > 0)) throw Error("DoubleWell: tau must be > 0");
  // Integrate e^{V/τ} on a grid wide enough that the tails are below e^{-60}.
  const double half_width = std::pow(60.0 * tau, 0.25) + 1.5;
  const int64_t points = 40001;
  grid_ = torch::linspace(-half_width, half_width, points, torch::kFloat64);
  auto log_density = potential(grid_) / tau_;
  const double shift = log_density.max().item<double>();
  auto density = (log_density - shift).exp();
  // Cumulative trapezoid rule.
  const double h = 2.0 * half_width / double(points - 1);
  auto area = 0.5 * h * (density.slice(0, 1) + density.slice(0, 0, -1));
  auto cum = torch::cat({torch::zeros({1}, torch::kFloat64), area.cumsum(0)});
  const double total = cum[-1].item<double>();
  log_z_ = std::log(total) + shift;
  grid_cdf_ = cum / total;
}

torch::Tensor DoubleWell::log_prob(const torch::Tensor& x) const {
  auto lp = potential(x) / tau_ - log_z_;
  return x.dim() == 2 ? lp.sum(1) : lp;
}

torch::Tensor DoubleWell::cdf(const torch::Tensor& x) const {
  // Linear interpolation of the tabulated CDF.
  auto xc = x.to(torch::kCPU, torch::kFloat64).contiguous();
  auto flat = xc.reshape({-1});
  const double lo = grid_[0].item<double>(), hi = grid_[-1].item<double>();
  const double h = (hi - lo) / double(grid_.size(0) - 1);
  auto pos = ((flat.clamp(lo, hi) - lo) / h);
  auto i0 = pos.floor().clamp(0, double(grid_.size(0) - 2)).to(torch::kLong);
  auto frac = pos - i0.to(torch::kFloat64);
  auto c0 = grid_cdf_.index_select(0, i0), c1 = grid_cdf_.index_select(0, i0 + 1);
  return (c0 + frac * (c1 - c0)).reshape(xc.sizes()).to(x.device());
}

torch::Tensor DoubleWell::sample(int64_t n, at::Generator& gen) const {
  // Inverse-CDF sampling: u ~ U(0,1), x = F⁻¹(u) by linear interpolation.
  auto u = torch::rand({n}, gen, torch::kFloat64);
  auto hi = torch::searchsorted(grid_cdf_, u).clamp(1, grid_.size(0) - 1);
  auto lo = hi - 1;
  auto c0 = grid_cdf_.index_select(0, lo), c1 = grid_cdf_.index_select(0, hi);
  auto x0 = grid_.index_select(0, lo), x1 = grid_.index_select(0, hi);
  auto frac = ((u - c0) / (c1 - c0).clamp_min(1e-300)).clamp(0, 1);
  return (x0 + frac * (x1 - x0)).unsqueeze(1);
}

// ---------------------------------------------------------------------------
// 2D data sets without a density
// ---------------------------------------------------------------------------

torch::Tensor moons(int64_t n, at::Generator& gen, double noise) {
  const int64_t n_outer = n / 2, n_inner = n - n_outer;
  auto t_out = torch::rand({n_outer}, gen, torch::kFloat64) * M_PI;
  auto t_in = torch::rand({n_inner}, gen, torch::kFloat64) * M_PI;
  auto outer = torch::stack({t_out.cos(), t_out.sin()}, 1);
  auto inner = torch::stack({1.0 - t_in.cos(), 0.5 - t_in.sin()}, 1);
  auto x = torch::cat({outer, inner}) - torch::tensor({0.5, 0.25}, torch::kFloat64);
  return x + noise * dm::randn_like(x, gen);
}

torch::Tensor swiss_roll(int64_t n, at::Generator& gen, double noise) {
  auto t = 1.5 * M_PI * (1.0 + 2.0 * torch::rand({n}, gen, torch::kFloat64));
  auto x = torch::stack({t * t.cos(), t * t.sin()}, 1) / 5.0;
  return x + noise * dm::randn_like(x, gen);
}

torch::Tensor rings(int64_t n, at::Generator& gen, int64_t count, double noise) {
  auto ring = torch::randint(1, count + 1, {n}, gen, torch::kLong).to(torch::kFloat64);
  auto angle = torch::rand({n}, gen, torch::kFloat64) * (2.0 * M_PI);
  auto x = torch::stack({ring * angle.cos(), ring * angle.sin()}, 1) * (2.0 / double(count));
  return x + noise * dm::randn_like(x, gen);
}

torch::Tensor checkerboard(int64_t n, at::Generator& gen, int64_t squares) {
  // Uniform on the "black" cells (i + j even) of a squares×squares board on [−2, 2]².
  if (squares < 1) throw Error("checkerboard: squares must be >= 1");
  std::vector<int64_t> cells;
  for (int64_t i = 0; i < squares; ++i)
    for (int64_t j = 0; j < squares; ++j)
      if ((i + j) % 2 == 0) cells.push_back(i * squares + j);
  auto pick =
      torch::tensor(cells, torch::kLong)
          .index_select(0, torch::randint(0, int64_t(cells.size()), {n}, gen, torch::kLong));
  auto u = torch::rand({n, 2}, gen, torch::kFloat64);
  auto col = pick.div(squares, "floor").to(torch::kFloat64) + u.select(1, 0);
  auto row = pick.remainder(squares).to(torch::kFloat64) + u.select(1, 1);
  return torch::stack({col, row}, 1) * (4.0 / double(squares)) - 2.0;
}

}  // namespace dm::toy
