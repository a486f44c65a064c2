// dm/data/toy.hpp — low-dimensional distributions with exact answers.
//
// Gaussian mixtures are this suite's ground truth. A mixture stays a mixture
// under everything a diffusion model does to it:
//   * VE perturbation   x + σz:        N(μ_k, Σ_k) → N(μ_k, Σ_k + σ²I)
//   * VP perturbation   a·x + s·z:     N(μ_k, Σ_k) → N(aμ_k, a²Σ_k + s²I)
//   * conditioning on a linear observation y = A x + σ_y n (a posterior mixture)
//   * restricting to a class (a group of components)
// so the exact density, score, class posterior and posterior are known at every
// noise level. Tensors are float64 on the CPU unless a device is given.
#pragma once

#include <Eigen/Dense>
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <type_traits>
#include <utility>
#include <vector>

#include "dm/diffusion/model.hpp"
#include "dm/diffusion/process.hpp"

namespace dm::toy {

class GaussianMixture : public Model {
 public:
  // weights [K] (normalised here), means [K, D], covs [K, D, D] (symmetric
  // positive definite). groups[k] = class of component k (default: all 0).
  GaussianMixture(torch::Tensor weights, torch::Tensor means, torch::Tensor covs,
                  std::vector<int64_t> groups = {});
  // Components with covariance std_k² I.
  static GaussianMixture isotropic(const torch::Tensor& weights, const torch::Tensor& means,
                                   const torch::Tensor& stds, std::vector<int64_t> groups = {});

  int64_t dim() const { return means_.size(1); }
  int64_t components() const { return means_.size(0); }
  int64_t classes() const { return classes_; }
  const torch::Tensor& weights() const { return weights_; }
  const torch::Tensor& means() const { return means_; }
  const torch::Tensor& covs() const { return covs_; }
  const std::vector<int64_t>& groups() const { return groups_; }

  // log N_k(x) + log w_k for every component: [N, K].
  torch::Tensor component_log_probs(const torch::Tensor& x) const;
  // log p(x): [N].
  torch::Tensor log_prob(const torch::Tensor& x) const;
  // ∇ₓ log p(x) = Σ_k r_k(x) · (−Σ_k⁻¹ (x − μ_k)), r = responsibilities: [N, D].
  torch::Tensor score(const torch::Tensor& x) const;
  // The same score on rows of an Eigen matrix (no torch); for small-batch hot loops.
  Eigen::MatrixXd score(const Eigen::MatrixXd& x) const;
  // Posterior over components p(k | x): [N, K] (rows sum to 1).
  torch::Tensor responsibilities(const torch::Tensor& x) const;
  // Posterior over classes p(c | x) (components summed by group): [N, classes].
  torch::Tensor class_posterior(const torch::Tensor& x) const;

  // n exact samples [n, D] drawn from `gen`; `components_out`, if given,
  // receives each sample's component.
  torch::Tensor sample(int64_t n, at::Generator& gen,
                       torch::Tensor* components_out = nullptr) const;

  // The distribution of x + σz.
  GaussianMixture perturb_ve(double sigma) const;
  // The distribution of a·x + s·z.
  GaussianMixture perturb_vp(double a, double s) const;
  // The sub-mixture of the components of class `cls` (weights renormalised).
  GaussianMixture conditional(int64_t cls) const;
  // p(x | y) for y = A x + σ_y n, n ~ N(0, I): A [M, D], y [M].
  GaussianMixture posterior(const torch::Tensor& A, const torch::Tensor& y, double sigma_y) const;

  // Model: the score of this mixture (t is ignored); with labels, the score
  // of each row's class-conditional mixture (label -1: unconditional).
  Prediction prediction() const override { return Prediction::score; }
  torch::Tensor predict(const torch::Tensor& x, const torch::Tensor& t,
                        const Condition& c = {}) override;

 private:
  torch::Tensor weights_, means_, covs_;
  torch::Tensor precisions_, log_dets_;  // Σ_k⁻¹ and log det Σ_k
  std::vector<int64_t> groups_;
  int64_t classes_ = 1;
  torch::Tensor group_mask(const torch::Tensor& labels) const;  // [N, K] 0 / -inf
  torch::Tensor score_masked(const torch::Tensor& x, const torch::Tensor& mask) const;
};

// ANCHOR: perturbed_mixture
// The exact model of a mixture pushed through a process, x_t = a(t)·x₀ + s(t)·z,
// at every time t (rows may have different t): the mixture N(a μ_k, a² Σ_k + s² I).
// Predicts the score, ε = −s·score or x̂_0 = (x + s²·score)/a (dm/diffusion/param.hpp).
class PerturbedMixture : public Model {
 public:
  PerturbedMixture(GaussianMixture data, std::shared_ptr<const Process> process,
                   Prediction prediction = Prediction::score);
  // Any process by value (a copy is kept): PerturbedMixture(mixture, schedule, Prediction::eps).
  template <class P, class = std::enable_if_t<std::is_base_of_v<Process, P>>>
  PerturbedMixture(GaussianMixture data, const P& process,
                   Prediction prediction = Prediction::score)
      : PerturbedMixture(std::move(data), std::make_shared<P>(process), prediction) {}
  Prediction prediction() const override { return prediction_; }
  torch::Tensor predict(const torch::Tensor& x, const torch::Tensor& t,
                        const Condition& c = {}) override;
  // The perturbed mixture at time t.
  GaussianMixture at(double t) const;
  const Process& process() const { return *process_; }

 private:
  GaussianMixture data_;
  std::shared_ptr<const Process> process_;
  Prediction prediction_;
};
// ANCHOR_END: perturbed_mixture

// Equal-weight mixture of K isotropic Gaussians (std `std`) at the vertices of
// a regular K-gon of the given radius; component k is class k.
GaussianMixture ring_mixture(int64_t K, double radius, double std);

// The SDE chapters' 2D data (05, 06): three Gaussians with full covariances and
// unequal weights 0.5, 0.3, 0.2, spread over a few units — a score far from linear.
GaussianMixture three_gaussians();

// The 1D double well: density p_τ(x) ∝ exp(V(x)/τ) with
// V(x) = −x²(x−2)(x+2) = −x⁴ + 4x², modes at ±√2, barrier V(√2) − V(0) = 4.
class DoubleWell {
 public:
  explicit DoubleWell(double tau = 1.0);
  double tau() const { return tau_; }
  static torch::Tensor potential(const torch::Tensor& x);       // V(x)
  static torch::Tensor potential_grad(const torch::Tensor& x);  // V'(x) = −4x³ + 8x
  torch::Tensor score(const torch::Tensor& x) const;            // V'(x)/τ
  torch::Tensor log_prob(const torch::Tensor& x) const;         // V(x)/τ − log Z_τ
  torch::Tensor cdf(const torch::Tensor& x) const;              // by quadrature
  double log_normalizer() const { return log_z_; }
  // n exact samples [n, 1] by inverting the CDF on a fine grid, drawn from `gen`.
  torch::Tensor sample(int64_t n, at::Generator& gen) const;

 private:
  double tau_, log_z_;
  torch::Tensor grid_, grid_cdf_;
};

// Samplers for the usual 2D toy data sets (no density): [n, 2] float64, drawn from `gen`.
torch::Tensor moons(int64_t n, at::Generator& gen, double noise = 0.05);
torch::Tensor swiss_roll(int64_t n, at::Generator& gen, double noise = 0.05);
torch::Tensor rings(int64_t n, at::Generator& gen, int64_t count = 2, double noise = 0.05);
torch::Tensor checkerboard(int64_t n, at::Generator& gen, int64_t squares = 4);

}  // namespace dm::toy
