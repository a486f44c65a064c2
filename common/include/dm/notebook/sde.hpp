// dm/notebook/sde.hpp — chapter 05 (score-based SDEs) for notebooks: the
// forward SDEs VE, VP and sub-VP with their closed-form kernels, Euler–Maruyama
// forwards, the reverse SDE sampled with a mixture's exact score, and the
// continuous-time loss, in plain types. The names mirror the library's
// dm::sde (dm/diffusion/sde.hpp, dm/methods/reverse_sde.hpp).
//
//   dm::nb::sde::VP vp;                                   // β_min = 0.1, β_max = 20
//   const auto c = vp.at(0.5);                            // x_t = c.a·x_0 + c.s·ε
//   dm::nb::sde::SampleOptions o;
//   o.steps = 100;
//   auto x = dm::nb::sde::reverse_sample(p, vp, 2000, gen, o);   // exact score of p along vp
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dm/notebook/core.hpp"

namespace dm::nb::sde {

// x_t = a·x_0 + s·ε: the kernel p_0t(x_t | x_0) = N(a·x_0, s² I). Also the
// forward step from t to t' > t, x_t' = a·x_t + s·z (SDE::transition).
struct Coefficients {
  double a = 1, s = 0;
};

// A forward SDE dx = φ(t)·x dt + g(t) dw on [0, t_max], data at t = 0. Made
// as one of VE, VP, SubVP below; a copy (also into a std::vector<SDE>) is the
// same SDE, and still answers everything here.
class SDE {
 public:
  std::string name() const;  // "VE", "VP", "sub-VP"
  double t_max() const;      // the horizon T (1 unless said otherwise)
  // (a(t), s(t)) of the kernel p_0t in closed form.
  Coefficients at(double t) const;
  // The forward kernel from t to t_next > t: x_{t_next} = a·x_t + s·z.
  Coefficients transition(double t, double t_next) const;
  // φ(t), the drift's coefficient (f(x, t) = φ(t)·x), and g(t), the diffusion.
  double drift_coef(double t) const;
  double diffusion(double t) const;
  // The prior N(0, prior_std² I) the reverse SDE starts from (VP: 1, VE: σ_max).
  double prior_std() const;
  // Where the reverse samplers stop short of t = 0 (10⁻³ VP, sub-VP; 10⁻⁵ VE).
  double sampling_eps() const;

  struct Impl;
  std::shared_ptr<const Impl> impl;

 protected:
  SDE() = default;
};

// Variance exploding: dx = √(dσ²/dt) dw, σ(t) = σ_min (σ_max/σ_min)^t (NCSN's
// noise levels in continuous time).
class VE : public SDE {
 public:
  explicit VE(double sigma_min = 0.01, double sigma_max = 50.0);
  double sigma(double t) const;
  double sigma_min() const;
  double sigma_max() const;
  // The discrete form: N geometric levels σ_min … σ_max, increasing.
  Vec discrete_sigmas(int64_t N) const;
};

// Variance preserving: dx = −½β(t)x dt + √β(t) dw, β(t) linear from β_min to
// β_max (DDPM's process in continuous time).
class VP : public SDE {
 public:
  explicit VP(double beta_min = 0.1, double beta_max = 20.0, double horizon = 1.0);
  double beta(double t) const;
  double integrated_beta(double t) const;  // B(t) = ∫_0^t β
  double beta_min() const;
  double beta_max() const;
  // The discrete form with N steps: β_i = β(t_i)·T/N at t_i = (i − 1)/(N − 1)·T,
  // linspace(β_min T/N, β_max T/N, N).
  Vec discrete_betas(int64_t N) const;
};

// Sub-VP: VP's drift with g(t) = √(β(t)(1 − e^{−2B(t)})), so s_subVP = s_VP².
class SubVP : public VP {
 public:
  explicit SubVP(double beta_min = 0.1, double beta_max = 20.0, double horizon = 1.0);
};

// ---------------------------------------------------------------- forwards

// Euler–Maruyama of the forward SDE from x0 (the state at grid.front()) over
// an increasing time grid, x ← x + φ(t)·x Δt + g(t) √Δt z: the state at every
// grid time (front = x0), z drawn from `gen`.
std::vector<Points> simulate_forward(const SDE& sde, const Points& x0, const Vec& grid,
                                     Generator& gen);

// ---------------------------------------------------------------- exact score along the process

// p_t, the law of x_t when x_0 ~ p: the mixture N(a·μ_k, a²Σ_k + s²I) at (a, s) = sde.at(t).
Mixture marginal(const Mixture& p, const SDE& sde, double t);
// The reverse SDE's drift f(x, t) − g(t)² ∇ log p_t(x) at the rows of x, with
// the exact score of p_t.
Points reverse_drift(const Mixture& p, const SDE& sde, const Points& x, double t);

// ---------------------------------------------------------------- reverse sampling

enum class Predictor {
  euler_maruyama,    // x' = x − [f − g² s] Δt + g √Δt z
  reverse_diffusion  // x' = x − f_i(x) + G_i² s + G_i z (Song et al., eq. 46)
};
// "Euler–Maruyama", "reverse diffusion".
std::string display_name(Predictor predictor);

struct SampleOptions {
  Predictor predictor = Predictor::euler_maruyama;
  int64_t steps = 1000;  // N: a uniform grid from t_max down to t_end
  double t_end = -1;     // where to stop (< 0: the SDE's sampling_eps())
  bool denoise = true;   // the last step returns its mean, without its noise
};

// n samples [n, D] of the reverse SDE, from its prior N(0, prior_std² I), with
// the exact score of p pushed through the SDE (the marginals above).
Points reverse_sample(const Mixture& p, const SDE& sde, int64_t n, Generator& gen,
                      const SampleOptions& options = {});
// The same from given points x at t_max (one per row).
Points reverse_sample_from(const Mixture& p, const SDE& sde, const Points& x, Generator& gen,
                           const SampleOptions& options = {});

// ---------------------------------------------------------------- continuous-time loss

// λ(t) of the loss: s(t)² (the ε-loss) or g(t)² (the likelihood weighting).
enum class Weighting { sigma_squared, likelihood };

// E λ(t) ‖s_θ(x_t, t) + ε/s(t)‖² with x_t = a(t)·x_0 + s(t)·ε, one t per row of
// x0 and ε given (mean over rows and dimensions), for a model that is the same
// at every t (a ScoreFn, e.g. zero) …
double loss_at(const ScoreFn& score, const SDE& sde, const Points& x0, const Vec& t,
               const Points& eps, Weighting weighting = Weighting::sigma_squared);
// … or for the exact ε of p along the process (the lowest loss any model reaches).
double loss_at(const Mixture& p, const SDE& sde, const Points& x0, const Vec& t, const Points& eps,
               Weighting weighting = Weighting::sigma_squared);
// The same with t ~ U(t_min, t_max) per row and ε ~ N(0, I) drawn from `gen`
// (t_min < 0: the SDE's sampling_eps()): one minibatch's estimate of the loss.
double loss(const ScoreFn& score, const SDE& sde, const Points& x0, Generator& gen,
            Weighting weighting = Weighting::sigma_squared, double t_min = -1);

}  // namespace dm::nb::sde
