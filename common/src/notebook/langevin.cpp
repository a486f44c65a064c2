// langevin.cpp — chapter 01 for notebooks: dm::toy::DoubleWell, dm::langevin's
// samplers and dm::metrics' KS statistic behind plain types.
#include "dm/notebook/langevin.hpp"

#include "dm/base/core.hpp"
#include "dm/data/metrics.hpp"
#include "dm/methods/langevin.hpp"
#include "internal.hpp"

namespace dm::nb {

using namespace detail;

// ---------------------------------------------------------------- the double well

struct DoubleWell::Impl {
  dm::toy::DoubleWell well;
};

namespace {

const dm::toy::DoubleWell& well_of(const DoubleWell& p) { return p.impl->well; }

// Chains [N, 1] of a 1D target: anything else is a mistake in the notebook.
void check_chains(const Points& x, const char* who) {
  if (x.cols() != 1)
    throw Error(std::string("notebook::") + who +
                ": the double well is 1D, expected points [N, 1], got [" +
                std::to_string(x.rows()) + ", " + std::to_string(x.cols()) + "]");
}

}  // namespace

DoubleWell::DoubleWell(double tau)
    : impl(std::make_shared<const Impl>(Impl{dm::toy::DoubleWell(tau)})) {}

double DoubleWell::tau() const { return well_of(*this).tau(); }
double DoubleWell::log_normalizer() const { return well_of(*this).log_normalizer(); }

Vec DoubleWell::potential(const Vec& x) {
  return to_vec(dm::toy::DoubleWell::potential(to_tensor(x)));
}
Vec DoubleWell::potential_grad(const Vec& x) {
  return to_vec(dm::toy::DoubleWell::potential_grad(to_tensor(x)));
}

Points DoubleWell::score(const Points& x) const {
  check_chains(x, "DoubleWell::score");
  return to_points(well_of(*this).score(to_tensor(x)));
}

Vec DoubleWell::log_prob(const Points& x) const {
  check_chains(x, "DoubleWell::log_prob");
  return to_vec(well_of(*this).log_prob(to_tensor(x)));
}

Vec DoubleWell::density(const Vec& x) const {
  return to_vec(well_of(*this).log_prob(to_tensor(x)).exp());
}
Vec DoubleWell::cdf(const Vec& x) const { return to_vec(well_of(*this).cdf(to_tensor(x))); }

Points DoubleWell::sample(int64_t n, Generator& gen) const {
  return to_points(well_of(*this).sample(n, detail::unwrap(gen)));
}

// ---------------------------------------------------------------- samplers

Points ula(const ScoreFn& score, const Points& x0, double dt, int64_t steps, Generator& gen,
           double tau) {
  auto model = to_model(score);
  return to_points(dm::langevin::ula(model, to_tensor(x0), dt, steps, detail::unwrap(gen), tau));
}

Points ula(const Mixture& p, const Points& x0, double dt, int64_t steps, Generator& gen,
           double tau) {
  auto model = detail::unwrap(p);  // a GaussianMixture is a dm::Model (its exact score)
  return to_points(dm::langevin::ula(model, to_tensor(x0), dt, steps, detail::unwrap(gen), tau));
}

MalaResult mala(const LogProbFn& log_prob, const ScoreFn& score, const Points& x0, double dt,
                int64_t steps, Generator& gen, double tau) {
  auto model = to_model(score);
  auto log_p = [&log_prob](const torch::Tensor& x) {
    const Vec values = log_prob(to_points(x));
    if (static_cast<int64_t>(values.size()) != x.size(0))
      throw Error("notebook::mala: log_prob gave " + std::to_string(values.size()) +
                  " values for " + std::to_string(x.size(0)) + " chains (one per row)");
    return to_tensor(values).to(x.dtype());
  };
  auto result =
      dm::langevin::mala(log_p, model, to_tensor(x0), dt, steps, detail::unwrap(gen), tau);
  return {to_points(result.x), result.acceptance};
}

MalaResult mala(const Mixture& p, const Points& x0, double dt, int64_t steps, Generator& gen,
                double tau) {
  auto model = detail::unwrap(p);
  auto log_p = [&model](const torch::Tensor& x) { return model.log_prob(x); };
  auto result =
      dm::langevin::mala(log_p, model, to_tensor(x0), dt, steps, detail::unwrap(gen), tau);
  return {to_points(result.x), result.acceptance};
}

Points annealed(const ScoreFn& score, const Points& x0, const Vec& taus, int64_t steps_per_level,
                double dt, Generator& gen) {
  if (taus.empty()) throw Error("notebook::annealed: the temperature schedule is empty");
  auto model = to_model(score);
  return to_points(
      dm::langevin::annealed(model, to_tensor(x0), taus, steps_per_level, dt, detail::unwrap(gen)));
}

Vec geometric_schedule(double tau_max, double tau_min, int levels) {
  return dm::langevin::geometric_schedule(tau_max, tau_min, levels);
}

// ---------------------------------------------------------------- distances

double ks_statistic(const Points& x, const std::function<Vec(const Vec&)>& cdf) {
  if (x.size() == 0) throw Error("notebook::ks_statistic: the sample is empty");
  return dm::metrics::ks_statistic(to_tensor(x), [&cdf](const torch::Tensor& v) {
    const Vec values = cdf(to_vec(v));
    if (static_cast<int64_t>(values.size()) != v.numel())
      throw Error("notebook::ks_statistic: the CDF gave " + std::to_string(values.size()) +
                  " values for " + std::to_string(v.numel()) + " points");
    return to_tensor(values);
  });
}

double ks_statistic(const Points& x, const DoubleWell& p) {
  check_chains(x, "ks_statistic");
  if (x.rows() == 0) throw Error("notebook::ks_statistic: the sample is empty");
  auto xs = to_tensor(x);
  // Non-finite chains (ULA past its stability limit) sit at +∞: F = 1 there.
  xs = torch::where(xs.isfinite(), xs, torch::full_like(xs, 1e300));
  const auto& well = well_of(p);
  return dm::metrics::ks_statistic(xs, [&well](const torch::Tensor& v) { return well.cdf(v); });
}

// ---------------------------------------------------------------- pictures

Eigen::MatrixXd histogram_2d(const Points& x, double lo, double hi, int bins) {
  if (x.cols() != 2)
    throw Error("notebook::histogram_2d: expected points [N, 2], got [" + std::to_string(x.rows()) +
                ", " + std::to_string(x.cols()) + "]");
  if (bins < 1 || !(hi > lo))
    throw Error(
        "notebook::histogram_2d: need bins >= 1 and lo < hi, got bins = " + std::to_string(bins) +
        ", [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  if (!x.allFinite()) throw Error("notebook::histogram_2d: some points are not finite");
  const auto cell =
      ((to_tensor(x) - lo) / (hi - lo) * bins).floor().clamp(0, bins - 1).to(torch::kLong);
  const auto index =
      cell.select(1, 1) * bins + cell.select(1, 0);  // x_2 bin major: one row per x_2 bin
  const auto counts =
      torch::bincount(index, {}, int64_t(bins) * bins).to(torch::kFloat64).reshape({bins, bins});
  return to_points(counts.flip({0}));  // row 0 = the highest x_2 bin, as an image
}

}  // namespace dm::nb
