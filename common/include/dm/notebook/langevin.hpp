// dm/notebook/langevin.hpp — chapter 01 (Langevin MCMC) for notebooks, in plain
// types: the double well p_τ ∝ exp(V/τ) with its exact density, CDF and
// samples; the unadjusted (ULA), Metropolis-adjusted (MALA), tempered and
// annealed Langevin samplers on any score; the KS distance to an exact CDF;
// a 2D histogram to show chains as an image.
//
//   dm::nb::DoubleWell well(1.0);
//   dm::nb::Generator gen(1);
//   dm::nb::Points x0 = well.sample(2000, gen);                   // [2000, 1], exact
//   dm::nb::Points x = dm::nb::ula(well_score, x0, 0.1, 300, gen);
//   double ks = dm::nb::ks_statistic(x, well);                     // sup |F_n − F|
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "dm/notebook/core.hpp"

namespace dm::nb {

// ---------------------------------------------------------------- the double well

// p_τ(x) = exp(V(x)/τ) / Z_τ with V(x) = −x²(x−2)(x+2) = −x⁴ + 4x²: modes at
// ±√2, a barrier V(√2) − V(0) = 4 between them. Z_τ and the CDF come from
// quadrature on a fine grid (done once, here).
class DoubleWell {
 public:
  explicit DoubleWell(double tau = 1.0);
  double tau() const;
  // log Z_τ = log ∫ exp(V/τ) dx.
  double log_normalizer() const;

  // V(x) and V'(x) = −4x³ + 8x at every value.
  static Vec potential(const Vec& x);
  static Vec potential_grad(const Vec& x);
  // ∇ log p_τ = V'(x)/τ at every row of x [N, 1].
  Points score(const Points& x) const;
  // log p_τ (normalised) at every row of x [N, 1].
  Vec log_prob(const Points& x) const;
  // p_τ(x) and the CDF F_τ(x) at every value (for drawing over histograms).
  Vec density(const Vec& x) const;
  Vec cdf(const Vec& x) const;
  // n exact samples [n, 1] (the CDF inverted on the grid).
  Points sample(int64_t n, Generator& gen) const;

  struct Impl;
  std::shared_ptr<const Impl> impl;
};

// ---------------------------------------------------------------- samplers

// `steps` steps of ULA from the chains x0 (one per row), at temperature τ
// (τ = 1: the target itself):  x ← x + (Δt / 2τ)·s(x) + √Δt·z,  z ~ N(0, I).
Points ula(const ScoreFn& score, const Points& x0, double dt, int64_t steps, Generator& gen,
           double tau = 1.0);
// The same with a mixture's exact score, without leaving the library (faster).
Points ula(const Mixture& p, const Points& x0, double dt, int64_t steps, Generator& gen,
           double tau = 1.0);

// log p at every row of x [N, D] → [N]; MALA only needs it up to a constant.
using LogProbFn = std::function<Vec(const Points&)>;

struct MalaResult {
  Points x;               // the chains after the last step
  double acceptance = 0;  // fraction of accepted proposals, over all chains and steps
};

// `steps` steps of MALA for p_τ ∝ p^{1/τ}: the ULA step proposes x', accepted
// with probability min(1, α), α = p(x')^{1/τ} q(x | x') / (p(x)^{1/τ} q(x' | x)).
MalaResult mala(const LogProbFn& log_prob, const ScoreFn& score, const Points& x0, double dt,
                int64_t steps, Generator& gen, double tau = 1.0);
// The same with a mixture's exact log p and score, without leaving the library.
MalaResult mala(const Mixture& p, const Points& x0, double dt, int64_t steps, Generator& gen,
                double tau = 1.0);

// Annealed Langevin: `steps_per_level` ULA steps at each temperature of the
// decreasing schedule `taus` (ending at 1 to sample p itself).
Points annealed(const ScoreFn& score, const Points& x0, const Vec& taus, int64_t steps_per_level,
                double dt, Generator& gen);
// `levels` temperatures from tau_max down to tau_min (both included), evenly
// spaced in log τ: τ_i = τ_max (τ_min/τ_max)^{i/(levels−1)}.
Vec geometric_schedule(double tau_max, double tau_min, int levels);

// ---------------------------------------------------------------- distances

// The Kolmogorov–Smirnov statistic sup_x |F_n(x) − F(x)| of a 1D sample (the
// values of x, any shape) against an exact CDF F (values → values).
double ks_statistic(const Points& x, const std::function<Vec(const Vec&)>& cdf);
// ... against the double well's exact CDF. Chains that blew up (not finite)
// count as mass at +∞, i.e. in the wrong place.
double ks_statistic(const Points& x, const DoubleWell& p);

// ---------------------------------------------------------------- pictures

// The counts of points [N, 2] in a bins × bins grid over [lo, hi]², as an
// image: entry (i, j) holds x_1 bin j and x_2 bin bins − 1 − i (row 0 at the
// top, x_2 upwards). Points outside the square go to the nearest edge bin.
Eigen::MatrixXd histogram_2d(const Points& x, double lo, double hi, int bins);

}  // namespace dm::nb
