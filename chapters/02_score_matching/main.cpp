// Chapter 02 — Score matching, and why naive Langevin fails.
//
// Chapter 01 sampled with Langevin from a score we knew. For data we only have
// samples, so the score must be learned: fit a network s_θ(x) ≈ ∇log p(x) by
// minimising the Fisher divergence E_p‖s_θ − ∇log p‖². Three losses do it:
//
//   explicit (ESM)   needs ∇log p itself — only possible on toys, our yardstick;
//   sliced (SSM)     ‖s_θ(X)‖² + 2 d/dh νᵀ s_θ(X + hν)|_{h=0}, from samples alone;
//   denoising (DSM)  ‖ε_θ(X + σε) − ε‖², s_θ = −ε_θ/σ: the score of the data
//                    blurred by N(0, σ²I), from samples alone, no derivatives.
//
// Then "learn the score, run Langevin" — and the three reasons it fails:
//
//   1. manifold data: points on a circle have no density in 2D; SSM on them is
//      ill-posed (its loss falls without bound) and Langevin with the result
//      is useless; adding a little noise (σ) makes the problem well-posed;
//   2. slow mixing: even with the exact score, Langevin started broadly gets
//      the weights of separated modes wrong for a very long time;
//   3. low density: a score learned from samples is wrong where samples are
//      rare — exactly the regions Langevin must cross between modes.
//
// Chapter 03 fixes all three with noise-conditional scores and annealing.
// Every figure lands in --out (default runs/02_score_matching) with metrics.json.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "dm/app/cli.hpp"
#include "dm/base/rng.hpp"
#include "dm/app/metrics_file.hpp"
#include "dm/methods/langevin.hpp"
#include "dm/methods/losses.hpp"
#include "dm/data/metrics.hpp"
#include "dm/nn/networks.hpp"
#include "dm/app/plot.hpp"
#include "dm/base/progress.hpp"
#include "dm/data/toy.hpp"

namespace {

// The chapter's random numbers: torch's default CPU generator, seeded by
// --seed, handed explicitly to every library function that draws.
at::Generator& rng() {
  static at::Generator gen = dm::default_generator();
  return gen;
}

using dm::losses::Field;
using dm::plot::Vec;
using torch::Tensor;

// Sizes: the defaults make the book's figures; --quick is the CI size.
struct Sizes {
  int64_t train_steps, batch, manifold_steps, chains, langevin_steps, mixing_chains, mixing_steps;
  int grid;
};
Sizes sizes_for(bool quick) {
  if (quick) return {800, 256, 600, 1000, 1000, 1000, 3000, 61};
  return {4000, 512, 3000, 2000, 2000, 4000, 10000, 101};
}

Vec col(const Tensor& x, int64_t j) { return dm::plot::to_vec(x.select(1, j)); }

// A grid of points covering [lo, hi]², row-major with x varying fastest.
Tensor grid_points(double lo, double hi, int n) {
  auto g = torch::linspace(lo, hi, n, torch::kFloat64);
  auto mesh = torch::meshgrid({g, g}, "xy");
  return torch::stack({mesh[0].reshape(-1), mesh[1].reshape(-1)}, 1);
}
std::vector<Vec> as_rows(const Tensor& v, int n) {
  auto m = v.reshape({n, n});
  std::vector<Vec> z(n);
  for (int i = 0; i < n; ++i) z[i] = dm::plot::to_vec(m[i]);
  return z;
}

// ---------------------------------------------------------------------------
// Training a score network with any of the losses
// ---------------------------------------------------------------------------
// The network is an MLP without time input: s_θ: R² → R². For DSM it predicts
// ε and the score is −ε_θ/σ; `score` is the field the samplers use either way.
struct Fit {
  std::string id, name;  // a key for metrics.json, and the label of figures and logs
  dm::nn::ScoreMLP net{nullptr};
  Field score;                // x (float64 or float32) → s_θ(x), same dtype as x
  Vec steps, losses, errors;  // running-mean loss and the exact score error along training
  double seconds = 0;
};

dm::nn::ScoreMLP make_net() {
  dm::nn::MLPConfig mc;
  mc.time_dim = 0;  // s_θ(x): one noise level (or none)
  mc.hidden = 128;
  mc.layers = 3;
  return dm::nn::ScoreMLP(mc);
}

// loss(net_output_fn, batch) → scalar; `sample(n)` draws training data;
// `output_to_score` turns the net's output into the score (identity, or −·/σ);
// `error(score)` is the exact relative score error, logged along the way.
Fit train(const std::string& id, const std::string& name, int64_t steps,
          const std::function<Tensor(int64_t)>& sample, int64_t batch,
          const std::function<Tensor(const Field& net, const Tensor& x)>& loss, double output_scale,
          const std::function<double(const Field& score)>& error = {}) {
  Fit fit;
  fit.id = id;
  fit.name = name;
  fit.net = make_net();
  auto net = fit.net;
  Field raw = [net](const Tensor& x) mutable { return net->forward(x); };
  fit.score = [net, output_scale](const Tensor& x) mutable {
    return (output_scale * net->forward(x.to(torch::kFloat32))).to(x.dtype());
  };
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(2e-3));
  const int64_t log_every = std::max<int64_t>(steps / 40, 10);
  dm::Progress progress("train " + name, steps);
  dm::Timer timer;
  double running = 0;
  for (int64_t step = 1; step <= steps; ++step) {
    const auto x = sample(batch).to(torch::kFloat32);
    auto l = loss(raw, x);
    opt.zero_grad();
    l.backward();
    opt.step();
    running += l.item<double>();
    if (step % log_every == 0) {
      fit.steps.push_back(double(step));
      fit.losses.push_back(running / double(log_every));
      if (error) fit.errors.push_back(error(fit.score));
      running = 0;
      char status[64];
      std::snprintf(status, sizeof status, "loss %.4g", fit.losses.back());
      progress.tick(log_every, status);
    }
  }
  progress.finish();
  fit.seconds = timer.seconds();
  return fit;
}

// A learned field behind the dm::Model seam, for the Langevin samplers.
dm::ScoreFunction as_model(const Field& score) {
  return dm::ScoreFunction([score](const Tensor& x) {
    torch::NoGradGuard no_grad;
    return score(x);
  });
}

// ---------------------------------------------------------------------------
// 1. Three losses, one mixture
// ---------------------------------------------------------------------------
dm::toy::GaussianMixture three_modes() {
  return dm::toy::GaussianMixture::isotropic(
      torch::tensor({0.5, 0.3, 0.2}, torch::kFloat64),
      torch::tensor({-2.0, -1.0, 2.0, -1.0, 0.0, 2.2}, torch::kFloat64).reshape({3, 2}),
      torch::full({3}, 0.45, torch::kFloat64));
}
constexpr double kDsmSigma = 0.1;  // DSM learns the score of p blurred by N(0, σ²I)

std::vector<Fit> three_losses(const dm::Chapter& ch, const Sizes& sz, dm::MetricsFile& metrics) {
  std::cout << "\n[1/4] explicit, sliced and denoising score matching on a 2D mixture\n";
  const auto p = three_modes();
  const auto p_sigma = p.perturb_ve(kDsmSigma);
  auto sample = [&](int64_t n) { return p.sample(n, rng()); };
  // The yardstick: E_p‖s_θ − ∇log p‖² / E_p‖∇log p‖², on fixed samples.
  const auto x_eval = p.sample(2000, rng()), xs_eval = p_sigma.sample(2000, rng());
  auto error_p = [&](const Field& s) {
    return dm::losses::relative_score_error(s, x_eval, p.score(x_eval));
  };
  auto error_ps = [&](const Field& s) {
    return dm::losses::relative_score_error(s, xs_eval, p_sigma.score(xs_eval));
  };

  std::vector<Fit> fits;
  // ANCHOR: three_losses
  // Explicit: regress onto the exact score (only a toy lets us).
  fits.push_back(train(
      "esm", "ESM", sz.train_steps, sample, sz.batch,
      [&](const Field& s, const Tensor& x) {
        return dm::losses::explicit_sm(s, x, p.score(x.to(torch::kFloat64)).to(x.dtype()));
      },
      1.0, error_p));
  // Sliced: samples only; ν Rademacher or Gaussian, E[ννᵀ] = I.
  for (auto [id, name, proj] :
       {std::tuple{"ssm_rademacher", "SSM (Rademacher ν)", dm::losses::Projection::rademacher},
        std::tuple{"ssm_gaussian", "SSM (Gaussian ν)", dm::losses::Projection::gaussian}}) {
    fits.push_back(train(
        id, name, sz.train_steps, sample, sz.batch,
        [proj = proj](const Field& s, const Tensor& x) {
          return dm::losses::sliced_sm(s, x, rng(), proj);
        },
        1.0, error_p));
  }
  // Denoising: the net predicts the noise ε; the score of p_σ is −ε_θ/σ.
  fits.push_back(train(
      "dsm", "DSM (σ = 0.1)", sz.train_steps, sample, sz.batch,
      [](const Field& eps_net, const Tensor& x) {
        return dm::losses::denoising_eps(eps_net, x, kDsmSigma, rng());
      },
      -1.0 / kDsmSigma, error_ps));
  // ANCHOR_END: three_losses

  // Each loss differs from the Fisher divergence by a constant; shift them onto it:
  //   SSM + E_p‖∇log p‖²,   DSM_ε/σ² − (d/σ² − E_{p_σ}‖∇log p_σ‖²).
  const double c_p = p.score(x_eval).pow(2).sum(1).mean().item<double>();
  const double c_ps = p_sigma.score(xs_eval).pow(2).sum(1).mean().item<double>();
  auto& m = metrics["three_losses"];
  m["train_steps"] = sz.train_steps;
  m["batch"] = sz.batch;
  m["dsm_sigma"] = kDsmSigma;
  m["fisher_constant_p"] = c_p;
  dm::plot::Figure fig(1, 2, 1400, 480);
  auto& ax_err = fig.ax(0)
                     .title("score error E‖s_θ − ∇log p‖² / E‖∇log p‖² (DSM: against p_σ)")
                     .xlabel("training step")
                     .ylabel("relative score error")
                     .logy();
  auto& ax_loss = fig.ax(1)
                      .title("the losses, shifted by their θ-free constants")
                      .xlabel("training step")
                      .ylabel("loss + constant ≈ E‖s_θ − ∇log p‖²")
                      .yrange(-1, 8);
  for (size_t i = 0; i < fits.size(); ++i) {
    auto& f = fits[i];
    Vec shifted = f.losses;
    for (auto& v : shifted) {
      if (f.name.rfind("SSM", 0) == 0) v += c_p;
      if (f.name.rfind("DSM", 0) == 0)
        v = v / (kDsmSigma * kDsmSigma) - (2.0 / (kDsmSigma * kDsmSigma) - c_ps);
    }
    ax_err.line(f.steps, f.errors, f.name);
    ax_loss.line(f.steps, shifted, f.name);
    const double err_p = error_p(f.score);
    std::printf("  %-20s %5.1f s   relative score error vs p: %.4f%s\n", f.name.c_str(), f.seconds,
                err_p,
                f.name.rfind("DSM", 0) == 0
                    ? ("   (vs p_σ: " + std::to_string(f.errors.back()).substr(0, 6) + ")").c_str()
                    : "");
    m["fits"][f.id] = {{"relative_error_vs_p", err_p},
                       {"relative_error_final", f.errors.back()},
                       {"seconds", f.seconds},
                       {"loss_last", f.losses.back()}};
  }
  std::printf("  E_p‖∇log p‖² = %.3f (the SSM constant)\n", c_p);
  fig.save(ch.out("three_losses"));
  metrics.figure("three_losses.svg");
  return fits;
}

// ---------------------------------------------------------------------------
// 2. Problem 1: data on a manifold
// ---------------------------------------------------------------------------
// Points on the unit circle: a 1D set in 2D, log p = −∞ off it. The exact
// perturbed density p_σ (angle uniform, plus N(0, σ²I)) is easy to sample.
Tensor circle(int64_t n, double sigma = 0.0) {
  auto theta = torch::rand({n}, torch::kFloat64) * 2 * M_PI;
  auto x = torch::stack({torch::cos(theta), torch::sin(theta)}, 1);
  return sigma > 0 ? x + sigma * torch::randn_like(x) : x;
}
constexpr double kManifoldSigma = 0.1;

void manifold(const dm::Chapter& ch, const Sizes& sz, dm::MetricsFile& metrics) {
  std::cout << "\n[2/4] problem 1: data on a manifold (the unit circle)\n";
  const double sigma = kManifoldSigma;
  // ANCHOR: manifold_fits
  // v.1: SSM on the raw points. v.2: SSM or DSM on points blurred by σ.
  auto v1 = train(
      "ssm_raw", "SSM on the circle", sz.manifold_steps, [](int64_t n) { return circle(n); },
      sz.batch, [](const Field& s, const Tensor& x) { return dm::losses::sliced_sm(s, x, rng()); },
      1.0);
  auto v2_ssm = train(
      "ssm_sigma", "SSM, σ = 0.1", sz.manifold_steps, [&](int64_t n) { return circle(n, sigma); },
      sz.batch, [](const Field& s, const Tensor& x) { return dm::losses::sliced_sm(s, x, rng()); },
      1.0);
  auto v2_dsm = train(
      "dsm_sigma", "DSM, σ = 0.1", sz.manifold_steps, [](int64_t n) { return circle(n); }, sz.batch,
      [&](const Field& e, const Tensor& x) {
        return dm::losses::denoising_eps(e, x, sigma, rng());
      },
      -1.0 / sigma);
  // ANCHOR_END: manifold_fits

  // Langevin with each learned score from N(0, I). Δt is small enough for the
  // exact p_σ (whose radial curvature is 1/σ²).
  const double dt = sigma * sigma / 5;
  const int64_t n = sz.chains;
  const auto floor = dm::metrics::noise_floor([&](int64_t k) { return circle(k, sigma); }, n,
                                              dm::metrics::energy_distance);
  auto& m = metrics["manifold"];
  m["sigma"] = sigma;
  m["dt"] = dt;
  m["langevin_steps"] = sz.langevin_steps;
  m["chains"] = n;
  m["energy_distance_noise_floor"] = {{"mean", floor.mean}, {"std", floor.std}};
  std::vector<std::pair<std::string, Tensor>> shown = {{"data: the unit circle", circle(n)}};
  for (auto* f : {&v1, &v2_ssm, &v2_dsm}) {
    auto model = as_model(f->score);
    auto x = dm::langevin::ula(model, torch::randn({n, 2}, torch::kFloat64), dt, sz.langevin_steps,
                               rng(), 1.0, {}, "Langevin, " + f->name);
    const auto finite = x.isfinite().all(1);
    const double diverged = 1.0 - finite.to(torch::kFloat64).mean().item<double>();
    const auto xf = x.index({finite});
    const auto r = xf.norm(2, 1);
    const double near =
        xf.size(0)
            ? (r - 1).abs().lt(2 * sigma).to(torch::kFloat64).sum().item<double>() / double(n)
            : 0.0;
    const double ed =
        xf.size(0) == n ? dm::metrics::energy_distance(x, circle(n, sigma)) : INFINITY;
    // The size of the learned score on the data: SSM v.1 drives it up without bound.
    const double score_norm = f->score(circle(1000)).norm(2, 1).mean().item<double>();
    std::printf(
        "  %-18s final loss %10.4g | Langevin: %5.1f%% diverged, %5.1f%% within 2σ of the circle,"
        " energy distance to p_σ %.4f (floor %.4f) | mean ‖s‖ on the circle %.3g\n",
        f->name.c_str(), f->losses.back(), 100 * diverged, 100 * near, ed, floor.mean, score_norm);
    m["fits"][f->id] = {
        {"loss_last", f->losses.back()},
        {"diverged_fraction", diverged},
        {"within_2sigma_fraction", near},
        {"energy_distance", std::isfinite(ed) ? nlohmann::json(ed) : nlohmann::json(nullptr)},
        {"mean_score_norm_on_circle", score_norm}};
    shown.push_back({"Langevin, " + f->name, xf});
  }

  dm::plot::Figure fig(1, 4, 1700, 450);
  for (int i = 0; i < 4; ++i) {
    const auto& [title, x] = shown[i];
    auto& ax = fig.ax(i).title(title).equal_aspect().xrange(-2, 2).yrange(-2, 2);
    if (x.size(0)) ax.points(col(x, 0), col(x, 1), "", {dm::plot::color(i), 1, 0.3, 0.6});
  }
  fig.save(ch.out("manifold_samples"));
  metrics.figure("manifold_samples.svg");

  dm::plot::Figure loss(1, 1, 900, 420);
  loss.ax()
      .title("SSM loss on the circle falls without bound; blurred by σ it settles")
      .xlabel("training step")
      .ylabel("loss (running mean)")
      .line(v1.steps, v1.losses, "SSM on the circle (v.1)")
      .line(v2_ssm.steps, v2_ssm.losses, "SSM, σ = 0.1 (v.2)");
  loss.save(ch.out("manifold_loss"));
  metrics.figure("manifold_loss.svg");
}

// ---------------------------------------------------------------------------
// 3. Problem 2: slow mixing, even with the exact score
// ---------------------------------------------------------------------------
// Weight 0.8 on the left mode, 0.2 on the right, modes ±d apart in x_1. The
// exact mass left of x_1 = 0 is Σ_k w_k Φ(−μ_k / std).
double left_mass(const dm::toy::GaussianMixture& p, double std) {
  double mass = 0;
  for (int64_t k = 0; k < p.components(); ++k)
    mass += p.weights()[k].item<double>() * 0.5 *
            std::erfc(p.means()[k][0].item<double>() / (std * std::sqrt(2.0)));
  return mass;
}

void slow_mixing(const dm::Chapter& ch, const Sizes& sz, dm::MetricsFile& metrics) {
  std::cout << "\n[3/4] problem 2: slow mixing between separated modes (exact score)\n";
  const double std = 0.5, dt = 0.05;
  const int64_t n = sz.mixing_chains;
  Vec ks;
  for (int64_t k = 10; k <= sz.mixing_steps; k = int64_t(double(k) * 1.5)) ks.push_back(double(k));
  ks.push_back(double(sz.mixing_steps));
  const double floor =
      std::sqrt(0.8 * 0.2 / double(n));  // the binomial std of a fraction at n chains
  auto& m = metrics["slow_mixing"];
  m["dt"] = dt;
  m["chains"] = n;
  m["steps"] = sz.mixing_steps;
  m["weight_error_floor"] = floor;
  dm::plot::Figure fig(1, 2, 1400, 460);
  auto& ax = fig.ax(0)
                 .title("mode weight error |P̂(x_1 < 0) − P(x_1 < 0)| of Langevin, exact score")
                 .xlabel("Langevin step k (Δt = 0.05)")
                 .ylabel("weight error")
                 .logx()
                 .logy();
  Tensor far_chains;
  int i = 0;
  for (double half_gap : {1.25, 3.0}) {
    auto p = dm::toy::GaussianMixture::isotropic(
        torch::tensor({0.8, 0.2}, torch::kFloat64),
        torch::tensor({-half_gap, 0.0, half_gap, 0.0}, torch::kFloat64).reshape({2, 2}),
        torch::full({2}, std, torch::kFloat64));
    const double exact = left_mass(p, std);
    Vec err;
    // ANCHOR: slow_mixing
    // Chains start broad, N(0, 2²I): about half fall into each basin, and must
    // then cross the low-density gap to correct the 50/50 split to 80/20.
    auto x0 = 2.0 * torch::randn({n, 2}, torch::kFloat64);
    auto x = dm::langevin::ula(
        p, x0, dt, sz.mixing_steps, rng(), 1.0,
        [&](int64_t k, const Tensor& xk) {
          if (std::find(ks.begin(), ks.end(), double(k)) != ks.end())
            err.push_back(
                std::abs(xk.select(1, 0).lt(0).to(torch::kFloat64).mean().item<double>() - exact));
        },
        "Langevin, modes ±" + std::to_string(half_gap).substr(0, 4));
    // ANCHOR_END: slow_mixing
    const std::string key = half_gap < 2 ? "near_modes" : "far_modes";
    std::printf(
        "  modes at ±%.2f: weight error after %lld steps %.4f (after %lld: %.4f); binomial floor "
        "%.4f\n",
        half_gap, (long long)ks.front(), err.front(), (long long)ks.back(), err.back(), floor);
    m[key] = {
        {"half_gap", half_gap}, {"exact_left_mass", exact}, {"steps", ks}, {"weight_error", err}};
    ax.linepoints(ks, err, "modes at ±" + std::to_string(half_gap).substr(0, 4),
                  {dm::plot::color(i++)});
    if (half_gap > 2) far_chains = x;
  }
  ax.hline(floor, "binomial floor", {"#777777", 1.5, 0.4, 1.0, true});
  fig.ax(1)
      .title("modes at ±3: where the chains are after " + std::to_string(sz.mixing_steps) +
             " steps")
      .xlabel("x_1")
      .ylabel("density")
      .histogram(col(far_chains, 0), 80, "chains", {}, std::pair{-5.0, 5.0})
      .line(
          dm::plot::to_vec(torch::linspace(-5, 5, 401, torch::kFloat64)),
          [&] {
            auto xs = torch::linspace(-5, 5, 401, torch::kFloat64);
            auto dens = 0.8 * torch::exp(-(xs + 3).pow(2) / (2 * std * std)) +
                        0.2 * torch::exp(-(xs - 3).pow(2) / (2 * std * std));
            return dm::plot::to_vec(dens / (std * std::sqrt(2 * M_PI)));
          }(),
          "exact marginal");
  fig.save(ch.out("slow_mixing"));
  metrics.figure("slow_mixing.svg");
}

// ---------------------------------------------------------------------------
// 4. Problem 3: the learned score is wrong where data is rare
// ---------------------------------------------------------------------------
void low_density(const dm::Chapter& ch, const Sizes& sz, const std::vector<Fit>& fits,
                 dm::MetricsFile& metrics) {
  std::cout << "\n[4/4] problem 3: score error against the density\n";
  const auto p = three_modes();
  const double lo = -5, hi = 5;
  const int n = sz.grid;
  const auto pts = grid_points(lo, hi, n);
  const auto logp = p.log_prob(pts);
  const double max_logp = logp.max().item<double>();
  const auto rel_logp = logp - max_logp;
  const auto exact = p.score(pts);
  // Bins of log p relative to its maximum, 2 nats wide, from 0 down to −30.
  Vec centres;
  for (double b = -1; b > -30; b -= 2) centres.push_back(b);
  dm::plot::Figure fig(1, 3, 1800, 520);
  auto& ax = fig.ax(2)
                 .title("score error against density (median over grid points)")
                 .xlabel("log p(x) − max log p  (nats; left = rare)")
                 .ylabel("‖s_θ − ∇log p‖ / ‖∇log p‖")
                 .logy();
  auto& m = metrics["low_density"];
  m["grid"] = n;
  m["bins_log_p"] = centres;
  // ANCHOR: finite_data
  // Real data is a finite set: train on 500 fixed samples (minibatches drawn
  // from them, many epochs), as one would with a data set.
  const auto data = p.sample(500, rng());
  auto from_data = [&](int64_t b) {
    return data.index({torch::randint(data.size(0), {b}, torch::kLong)});
  };
  std::vector<Fit> finite;
  finite.push_back(train(
      "esm_500", "ESM, 500 samples", sz.train_steps, from_data, sz.batch,
      [&](const Field& s, const Tensor& x) {
        return dm::losses::explicit_sm(s, x, p.score(x.to(torch::kFloat64)).to(x.dtype()));
      },
      1.0));
  finite.push_back(train(
      "dsm_500", "DSM, 500 samples", sz.train_steps, from_data, sz.batch,
      [](const Field& e, const Tensor& x) {
        return dm::losses::denoising_eps(e, x, kDsmSigma, rng());
      },
      -1.0 / kDsmSigma));
  // ANCHOR_END: finite_data
  std::vector<const Fit*> all = {&fits[0], &fits[1], &fits[3], &finite[0], &finite[1]};
  Tensor shown_err;
  int c = 0;
  for (const Fit* fp : all) {
    const Fit& f = *fp;
    // ANCHOR: low_density
    // Relative error at every grid point, then its median within each density bin.
    const auto target = f.name.rfind("DSM", 0) == 0 ? p.perturb_ve(kDsmSigma).score(pts) : exact;
    Tensor err;
    {
      torch::NoGradGuard no_grad;
      err = (f.score(pts) - target).norm(2, 1) / target.norm(2, 1).clamp_min(1e-12);
    }
    Vec med, xs;
    for (double centre : centres) {
      const auto in_bin = rel_logp.gt(centre - 1) & rel_logp.le(centre + 1);
      if (in_bin.sum().item<int64_t>() < 5) continue;
      xs.push_back(centre);
      med.push_back(err.index({in_bin}).median().item<double>());
    }
    // ANCHOR_END: low_density
    ax.linepoints(xs, med, f.name, {dm::plot::color(c++)});
    const double high = med.front(), low = med.back();
    std::printf(
        "  %-20s median relative error: %.3f where log p is within 2 nats of its max, %.3f at %.0f "
        "nats below\n",
        f.name.c_str(), high, low, -xs.back());
    m["fits"][f.id] = {{"bins", xs},
                       {"median_relative_error", med},
                       {"dense", high},
                       {"rare", low},
                       {"rare_log_p", xs.back()}};
    if (f.id == "dsm_500") shown_err = err;
  }

  // The exact and learned (ESM) fields over the density, and the error map.
  const auto coarse = grid_points(lo + 0.3, hi - 0.3, 17);
  auto arrows = [](const Tensor& s) {  // direction, length ∝ log(1 + |s|)
    auto norm = s.norm(2, 1, true);
    return s / norm.clamp_min(1e-12) * torch::log1p(norm);
  };
  Tensor learned;
  {
    torch::NoGradGuard no_grad;
    learned = arrows(finite[1].score(coarse));
  }
  const auto exact_arrows = arrows(p.score(coarse));
  fig.ax(0)
      .title("density, exact score (white), DSM on 500 samples (orange)")
      .xlabel("x_1")
      .ylabel("x_2")
      .equal_aspect()
      .xrange(lo, hi)
      .yrange(lo, hi)
      .heatmap(as_rows(logp.exp(), n), lo, hi, lo, hi, 6)
      .vectors(col(coarse, 0), col(coarse, 1), col(exact_arrows, 0), col(exact_arrows, 1), 0.45,
               "exact", {"#ffffff", 1.2})
      .vectors(col(coarse, 0), col(coarse, 1), col(learned, 0), col(learned, 1), 0.45, "learned",
               {"#E69F00", 1.2});
  fig.ax(1)
      .title("log_{10} relative error, DSM on 500 samples")
      .xlabel("x_1")
      .ylabel("x_2")
      .equal_aspect()
      .xrange(lo, hi)
      .yrange(lo, hi)
      .heatmap(as_rows(shown_err.clamp_min(1e-4).log10(), n), lo, hi, lo, hi, 6);
  fig.save(ch.out("low_density"));
  metrics.figure("low_density.svg");
}

}  // namespace

int main(int argc, char** argv) {
  return dm::run_main([&] {
    // Small MLPs on 2D batches: one thread is fastest (a second only adds synchronisation).
    dm::Chapter chapter("02_score_matching",
                        "Chapter 02: score matching (ESM, SSM, DSM) and why naive Langevin fails",
                        1);
    const auto& opt = chapter.parse(argc, argv);
    dm::plot::require_gnuplot();
    const Sizes sz = sizes_for(opt.quick);
    dm::MetricsFile metrics(chapter);
    chapter.begin_work();  // an earlier run's results in --out move aside

    const auto fits = three_losses(chapter, sz, metrics);
    manifold(chapter, sz, metrics);
    slow_mixing(chapter, sz, metrics);
    low_density(chapter, sz, fits, metrics);

    const auto path = metrics.write();
    std::cout << "\nfigures and metrics written to " << opt.out.string() << "/ ("
              << path.filename().string() << ", " << metrics.data()["figures"].size()
              << " figures)\n";
  });
}
