// sde.cpp — chapter 05's SDEs, samplers and loss for notebooks: dm::sde and
// dm::toy::PerturbedMixture behind plain types.
#include "dm/notebook/sde.hpp"

#include "dm/base/core.hpp"
#include "dm/data/toy.hpp"
#include "dm/diffusion/sde.hpp"
#include "dm/methods/reverse_sde.hpp"
#include "internal.hpp"

namespace dm::nb::sde {

using namespace dm::nb::detail;

struct SDE::Impl {
  std::shared_ptr<const dm::sde::SDE> sde;
};

namespace {

const std::shared_ptr<const dm::sde::SDE>& shared(const SDE& sde) {
  if (!sde.impl) throw Error("notebook::sde: this SDE was never made (use VE, VP or SubVP)");
  return sde.impl->sde;
}

const dm::sde::SDE& unwrap(const SDE& sde) { return *shared(sde); }

std::shared_ptr<const SDE::Impl> make(std::shared_ptr<const dm::sde::SDE> sde) {
  return std::make_shared<const SDE::Impl>(SDE::Impl{std::move(sde)});
}

// The library's VE / VP behind an SDE made as one (SubVP is a VP).
template <class S>
const S& as(const SDE& sde, const char* what) {
  const auto* s = dynamic_cast<const S*>(&unwrap(sde));
  if (!s)
    throw Error(std::string("notebook::sde: ") + what + " of a " + unwrap(sde).name() + " SDE");
  return *s;
}

dm::sde::Predictor unwrap(Predictor p) {
  return p == Predictor::euler_maruyama ? dm::sde::Predictor::euler_maruyama
                                        : dm::sde::Predictor::reverse_diffusion;
}

dm::sde::Weighting unwrap(Weighting w) {
  return w == Weighting::sigma_squared ? dm::sde::Weighting::sigma_squared
                                       : dm::sde::Weighting::likelihood;
}

dm::sde::SampleOptions unwrap(const SampleOptions& o) {
  dm::sde::SampleOptions out;
  out.predictor = unwrap(o.predictor);
  out.steps = o.steps;
  out.t_end = o.t_end;
  out.denoise = o.denoise;
  return out;
}

// The rows of x0 and ε, and one t per row: checked before the library sees them.
void check_loss_inputs(const Points& x0, const Vec& t, const Points& eps) {
  if (static_cast<Eigen::Index>(t.size()) != x0.rows())
    throw Error("notebook::sde::loss_at: " + std::to_string(t.size()) + " times for " +
                std::to_string(x0.rows()) + " rows of x0");
  if (eps.rows() != x0.rows() || eps.cols() != x0.cols())
    throw Error("notebook::sde::loss_at: eps is [" + std::to_string(eps.rows()) + ", " +
                std::to_string(eps.cols()) + "], x0 is [" + std::to_string(x0.rows()) + ", " +
                std::to_string(x0.cols()) + "]");
}

}  // namespace

// ---------------------------------------------------------------- the SDEs

std::string SDE::name() const { return unwrap(*this).name(); }
double SDE::t_max() const { return unwrap(*this).t_max(); }
Coefficients SDE::at(double t) const {
  const auto c = unwrap(*this).at(t);
  return {c.a, c.s};
}
Coefficients SDE::transition(double t, double t_next) const {
  const auto k = unwrap(*this).transition(t, t_next);
  return {k.a, k.s};
}
double SDE::drift_coef(double t) const { return unwrap(*this).drift_coef(t); }
double SDE::diffusion(double t) const { return unwrap(*this).diffusion(t); }
double SDE::prior_std() const { return unwrap(*this).prior_std(); }
double SDE::sampling_eps() const { return unwrap(*this).sampling_eps(); }

VE::VE(double sigma_min, double sigma_max) {
  impl = make(std::make_shared<const dm::sde::VE>(sigma_min, sigma_max));
}
double VE::sigma(double t) const { return as<dm::sde::VE>(*this, "sigma").sigma(t); }
double VE::sigma_min() const { return as<dm::sde::VE>(*this, "sigma_min").sigma_min(); }
double VE::sigma_max() const { return as<dm::sde::VE>(*this, "sigma_max").sigma_max(); }
Vec VE::discrete_sigmas(int64_t N) const {
  return as<dm::sde::VE>(*this, "discrete_sigmas").discrete_sigmas(N);
}

VP::VP(double beta_min, double beta_max, double horizon) {
  impl = make(std::make_shared<const dm::sde::VP>(beta_min, beta_max, horizon));
}
double VP::beta(double t) const { return as<dm::sde::VP>(*this, "beta").beta(t); }
double VP::integrated_beta(double t) const {
  return as<dm::sde::VP>(*this, "integrated_beta").integrated_beta(t);
}
double VP::beta_min() const { return as<dm::sde::VP>(*this, "beta_min").beta_min(); }
double VP::beta_max() const { return as<dm::sde::VP>(*this, "beta_max").beta_max(); }
Vec VP::discrete_betas(int64_t N) const {
  return to_vec(as<dm::sde::VP>(*this, "discrete_betas").discrete_betas(N));
}

SubVP::SubVP(double beta_min, double beta_max, double horizon) : VP(beta_min, beta_max, horizon) {
  impl = make(std::make_shared<const dm::sde::SubVP>(beta_min, beta_max, horizon));
}

// ---------------------------------------------------------------- forwards

std::vector<Points> simulate_forward(const SDE& sde, const Points& x0, const Vec& grid,
                                     Generator& gen) {
  std::vector<Points> out;
  for (const auto& x :
       dm::sde::simulate_forward(unwrap(sde), to_tensor(x0), grid, detail::unwrap(gen)))
    out.push_back(to_points(x));
  return out;
}

// ---------------------------------------------------------------- exact score along the process

Mixture marginal(const Mixture& p, const SDE& sde, double t) {
  return wrap(dm::toy::PerturbedMixture(detail::unwrap(p), shared(sde)).at(t));
}

Points reverse_drift(const Mixture& p, const SDE& sde, const Points& x, double t) {
  dm::toy::PerturbedMixture exact(detail::unwrap(p), shared(sde));
  return to_points(dm::sde::reverse_drift(unwrap(sde), exact, to_tensor(x), t));
}

// ---------------------------------------------------------------- reverse sampling

std::string display_name(Predictor predictor) { return dm::sde::display_name(unwrap(predictor)); }

Points reverse_sample(const Mixture& p, const SDE& sde, int64_t n, Generator& gen,
                      const SampleOptions& options) {
  dm::toy::PerturbedMixture exact(detail::unwrap(p), shared(sde));
  return to_points(
      dm::sde::sample(exact, shared(sde), {n, p.dim()}, detail::unwrap(gen), unwrap(options)));
}

Points reverse_sample_from(const Mixture& p, const SDE& sde, const Points& x, Generator& gen,
                           const SampleOptions& options) {
  if (x.cols() != p.dim())
    throw Error("notebook::sde::reverse_sample_from: points of dimension " +
                std::to_string(x.cols()) + " for a " + std::to_string(p.dim()) +
                "-dimensional mixture");
  dm::toy::PerturbedMixture exact(detail::unwrap(p), shared(sde));
  return to_points(
      dm::sde::sample_from(exact, shared(sde), to_tensor(x), detail::unwrap(gen), unwrap(options)));
}

// ---------------------------------------------------------------- continuous-time loss

double loss_at(const ScoreFn& score, const SDE& sde, const Points& x0, const Vec& t,
               const Points& eps, Weighting weighting) {
  check_loss_inputs(x0, t, eps);
  auto model = to_model(score);
  return dm::sde::loss_at(model, unwrap(sde), to_tensor(x0), to_tensor(t), to_tensor(eps),
                          unwrap(weighting))
      .item<double>();
}

double loss_at(const Mixture& p, const SDE& sde, const Points& x0, const Vec& t, const Points& eps,
               Weighting weighting) {
  check_loss_inputs(x0, t, eps);
  dm::toy::PerturbedMixture exact_eps(detail::unwrap(p), shared(sde), dm::Prediction::eps);
  return dm::sde::loss_at(exact_eps, unwrap(sde), to_tensor(x0), to_tensor(t), to_tensor(eps),
                          unwrap(weighting))
      .item<double>();
}

double loss(const ScoreFn& score, const SDE& sde, const Points& x0, Generator& gen,
            Weighting weighting, double t_min) {
  auto model = to_model(score);
  return dm::sde::loss(model, unwrap(sde), to_tensor(x0), detail::unwrap(gen), unwrap(weighting),
                       t_min)
      .item<double>();
}

}  // namespace dm::nb::sde
