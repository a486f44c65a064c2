// Chapter 05 — Score-based generative modelling with SDEs (Song et al., 2021).
//
// Chapters 03 and 04 built two discrete models: NCSN's noise levels and DDPM's
// Markov chain. Both are discretisations of a forward stochastic differential
// equation dx = f(x, t) dt + g(t) dw that turns data into noise as t runs
// from 0 to 1, and each such SDE has a reverse-time SDE driven by the score of
// its marginals, dx = [f − g² ∇log p_t] dt + g dw̄. One network trained in
// continuous time (denoising score matching at t ~ U(ε, 1)) serves any
// discretisation of the reverse SDE.
//
// The chapter runs, in order:
//   1. the three SDEs (VE, VP, sub-VP): their kernels p_0t — mean coefficient,
//      std, diffusion — against t;
//   2. forward simulation: Euler–Maruyama trajectories from a 1D mixture, and
//      the simulated marginals of a 2D mixture against the closed forms;
//   3. the discrete forms: VP's β_i are DDPM's table, VE's σ_i NCSN's levels;
//   4. reverse sampling with the exact score of the mixture: both predictors
//      (Euler–Maruyama, reverse diffusion) for all three SDEs, the distance to
//      the data against the number of steps, and the observed order;
//   5. continuous-time DSM: a small MLP per SDE, its score error against t and
//      its samples against the noise floor;
//   6. the shipped Fashion-MNIST models as SDE models: DDPM as a VP SDE, NCSN
//      as a VE SDE, each sampled by both predictors and by its own chapter's
//      sampler at the same number of network evaluations;
//   7. the convergence bound of De Bortoli et al. (2021) on the
//      Ornstein–Uhlenbeck process: the distance against the horizon T, the
//      step γ and a deliberate score error M.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dm/app/cli.hpp"
#include "dm/app/image.hpp"
#include "dm/app/image_chapter.hpp"
#include "dm/app/metrics_file.hpp"
#include "dm/app/plot.hpp"
#include "dm/base/rng.hpp"
#include "dm/data/fashion.hpp"
#include "dm/data/metrics.hpp"
#include "dm/data/quality.hpp"
#include "dm/data/toy.hpp"
#include "dm/diffusion/param.hpp"
#include "dm/diffusion/schedule.hpp"
#include "dm/diffusion/sde.hpp"
#include "dm/methods/ddpm.hpp"
#include "dm/methods/losses.hpp"
#include "dm/methods/ncsn.hpp"
#include "dm/methods/reverse_sde.hpp"
#include "dm/nn/net_model.hpp"
#include "dm/nn/networks.hpp"
#include "dm/nn/train.hpp"

namespace fs = std::filesystem;
namespace sde = dm::sde;
using dm::plot::Vec;
using torch::Tensor;

namespace {

// The chapter's random numbers: torch's default CPU generator, seeded by --seed.
at::Generator& rng() {
  static at::Generator gen = dm::default_generator();
  return gen;
}

struct Options {
  int64_t samples = 0;      // image samples per sampler (0: default)
  int64_t image_steps = 0;  // reverse-SDE steps on images (0: default)
  std::string weighting = "sigma_squared";
  fs::path ddpm_checkpoint, ncsn_checkpoint;
};

struct Sizes {
  int64_t toy_n;                   // 2D samples per comparison
  std::vector<int64_t> toy_steps;  // step counts of the exact-score study
  int64_t train_steps;             // MLP training steps per SDE
  int64_t image_samples, image_steps;
  int64_t ou_n;
};
Sizes sizes_for(bool quick) {
  if (quick) return {500, {10, 30, 100}, 600, 16, 100, 1000};
  return {4000, {10, 20, 50, 100, 200, 500, 1000}, 6000, 128, 1000, 4000};
}

// The three SDEs of the chapter on toy data. VE's σ_max is a little above the
// largest distance between two points of the mixture (≈ 7), the rule of
// Song & Ermon (2020) — the NCSN chapter measured the same for images.
std::vector<std::shared_ptr<const sde::SDE>> toy_sdes() {
  return {std::make_shared<sde::VE>(0.01, 10.0), std::make_shared<sde::VP>(),
          std::make_shared<sde::SubVP>()};
}

// ---------------------------------------------------------------------------
// 1. The three SDEs and their kernels
// ---------------------------------------------------------------------------
void kernels(const dm::Chapter& ch, dm::MetricsFile& metrics) {
  std::cout << "\n[1/7] the three SDEs: VE, VP, sub-VP and their kernels p_0t\n";
  const auto sdes = toy_sdes();
  Vec t;
  for (int i = 0; i <= 200; ++i) t.push_back(i / 200.0);
  dm::plot::Figure fig(1, 3, 1500, 420);
  fig.ax(0).title("mean coefficient a(t): x_t = a(t) x_0 + s(t) ε").xlabel("t").yrange(0, 1.05);
  fig.ax(1).title("std s(t) of the kernel").xlabel("t").logy();
  fig.ax(2).title("diffusion g(t)").xlabel("t").logy();
  auto& m = metrics["kernels"];
  for (size_t k = 0; k < sdes.size(); ++k) {
    const auto& s = *sdes[k];
    Vec a, sd, g;
    for (double ti : t) {
      a.push_back(s.at(ti).a);
      sd.push_back(std::max(s.at(ti).s, 1e-4));
      g.push_back(s.diffusion(ti));
    }
    const dm::plot::Style style{dm::plot::color(int(k))};
    fig.ax(0).line(t, a, s.name(), style);
    fig.ax(1).line(t, sd, s.name(), style);
    fig.ax(2).line(t, g, s.name(), style);
    m[sde::key_of(s)] = {
        {"a_at_1", s.at(1.0).a}, {"s_at_1", s.at(1.0).s}, {"prior_std", s.prior_std()}};
    std::printf("  %-6s a(1) = %.2e, s(1) = %.4g, prior N(0, %.4g² I); s(0.5) = %.4f\n",
                s.name().c_str(), s.at(1.0).a, s.at(1.0).s, s.prior_std(), s.at(0.5).s);
  }
  fig.save(ch.out("kernels"));
  metrics.figure("kernels.svg");
}

// ---------------------------------------------------------------------------
// 2. Forward simulation
// ---------------------------------------------------------------------------
// The exact marginal moments of x_t = a x_0 + s ε for x_0 from the mixture:
// mean a·μ, covariance a²·Σ_data + s² I.
std::pair<Tensor, Tensor> marginal_moments(const dm::toy::GaussianMixture& gm, dm::Coefficients c) {
  const auto w = gm.weights().reshape({-1, 1});
  const auto mu = (w * gm.means()).sum(0);
  const auto centred = gm.means() - mu;
  auto cov =
      (gm.weights().reshape({-1, 1, 1}) * (gm.covs() + centred.unsqueeze(2) * centred.unsqueeze(1)))
          .sum(0);
  return {c.a * mu, c.a * c.a * cov + c.s * c.s * torch::eye(2, torch::kFloat64)};
}

void forward_simulation(const dm::Chapter& ch, const Sizes& sz, dm::MetricsFile& metrics) {
  std::cout << "\n[2/7] forward simulation (Euler–Maruyama) against the closed-form kernels\n";
  const auto sdes = toy_sdes();
  // (a) Trajectories from a 1D two-mode mixture: 24 paths per SDE.
  const auto grid = dm::uniform_grid(0.0, 1.0, 500);
  const auto x0 = torch::cat(
      {torch::full({12, 1}, -1.5, torch::kFloat64), torch::full({12, 1}, 1.5, torch::kFloat64)});
  dm::plot::Figure fig(1, 3, 1500, 420);
  for (size_t k = 0; k < sdes.size(); ++k) {
    const auto& s = *sdes[k];
    const auto states = sde::simulate_forward(s, x0, grid, rng());
    auto& ax = fig.ax(int(k))
                   .title(s.name() + ": x(t) from x(0) = ±1.5, and ±2 s(t) around a(t)·1.5")
                   .xlabel("t");
    for (int64_t p = 0; p < x0.size(0); ++p) {
      Vec y;
      for (const auto& st : states) y.push_back(st[p][0].item<double>());
      ax.line(grid, y, "", {p < 12 ? "#0072B2" : "#D55E00", 0.8, 0.4, 0.5});
    }
    Vec hi, lo;
    for (double ti : grid) {
      const auto c = s.at(ti);
      hi.push_back(1.5 * c.a + 2 * c.s);
      lo.push_back(1.5 * c.a - 2 * c.s);
    }
    ax.line(grid, hi, "kernel ±2 s(t)", {"#000000", 1.5, 0.4, 1.0, true})
        .line(grid, lo, "", {"#000000", 1.5, 0.4, 1.0, true});
  }
  fig.save(ch.out("forward_trajectories"));
  metrics.figure("forward_trajectories.svg");

  // (b) The simulated marginals of the 2D mixture: mean and covariance at
  // t = 0.25, 0.5, 1 against a·μ and a²Σ + s²I (z-scores of every entry).
  const auto gm = dm::toy::three_gaussians();
  const int64_t n = sz.toy_n * 5;
  const auto fine = dm::uniform_grid(0.0, 1.0, 1000);
  auto& m = metrics["forward"];
  m["paths"] = n;
  m["steps"] = 1000;
  for (const auto& sp : sdes) {
    const auto& s = *sp;
    const auto states = sde::simulate_forward(s, gm.sample(n, rng()), fine, rng());
    double worst = 0;
    for (int64_t i : {250, 500, 1000}) {
      const auto [mean, cov] = marginal_moments(gm, s.at(fine[i]));
      const auto x = states[i];
      const auto emp_mean = x.mean(0);
      const auto xc = x - emp_mean;
      const auto emp_cov = xc.t().mm(xc) / double(n - 1);
      // standard errors: √(Σ_jj/n) for the mean, √((Σ_ij² + Σ_ii Σ_jj)/n) for the covariance
      const auto se_mean = (cov.diagonal() / double(n)).sqrt();
      const auto se_cov =
          ((cov.pow(2) + cov.diagonal().unsqueeze(1) * cov.diagonal().unsqueeze(0)) / double(n))
              .sqrt();
      worst = std::max({worst, ((emp_mean - mean) / se_mean).abs().max().item<double>(),
                        ((emp_cov - cov) / se_cov).abs().max().item<double>()});
    }
    m[sde::key_of(s)] = {{"worst_z", worst}};
    std::printf(
        "  %-6s simulated vs closed-form mean and covariance at t = 0.25, 0.5, 1 (%lld paths, "
        "1000 steps): worst |z| = %.2f\n",
        s.name().c_str(), (long long)n, worst);
  }
}

// ---------------------------------------------------------------------------
// 3. The discrete forms: DDPM = discretised VP, NCSN = discretised VE
// ---------------------------------------------------------------------------
void discrete_forms(const dm::Chapter& ch, dm::MetricsFile& metrics) {
  std::cout << "\n[3/7] DDPM is a discretised VP SDE, NCSN a discretised VE SDE\n";
  // ANCHOR: discrete_forms
  sde::VP vp;  // β_min = 0.1, β_max = 20
  const auto ddpm = dm::schedule::linear(1000);
  const double beta_gap = (vp.discrete_betas(1000) - ddpm.betas).abs().max().item<double>();
  // The continuous VP at t = i/N against DDPM's chain at step i.
  double log_a_gap = 0, s_gap = 0;
  Vec steps, a_vp, a_ddpm;
  for (int64_t i = 1; i <= 1000; ++i) {
    const auto c = vp.at(double(i) / 1000.0), d = ddpm.at(double(i));
    log_a_gap = std::max(log_a_gap, std::abs(std::log(c.a / d.a)));
    s_gap = std::max(s_gap, std::abs(c.s - d.s));
    steps.push_back(double(i));
    a_vp.push_back(c.a);
    a_ddpm.push_back(d.a);
  }
  sde::VE ve(0.01, 50.0);
  const auto sig = ve.discrete_sigmas(100);
  const auto levels = dm::ncsn::geometric(50.0, 0.01, 100).values;  // σ_1 > … > σ_L
  double sigma_gap = 0;
  for (size_t i = 0; i < sig.size(); ++i)
    sigma_gap = std::max(sigma_gap, std::abs(sig[i] / levels[levels.size() - 1 - i] - 1.0));
  // ANCHOR_END: discrete_forms
  std::printf(
      "  VP, N = 1000: β_i = linspace(β_min/N, β_max/N, N) vs DDPM's table: max |Δβ| = %.1e\n"
      "  the continuous VP at t = i/N vs DDPM at step i: max |Δ log a| = %.4f (Π(1 − β) vs "
      "e^{−∫β}), max |Δs| = %.1e\n"
      "  VE, N = 100: σ_i = σ(t_i) vs NCSN's levels: max relative gap %.1e\n",
      beta_gap, log_a_gap, s_gap, sigma_gap);
  metrics["discrete"] = {{"vp_beta_max_abs_gap", beta_gap},
                         {"vp_log_a_max_gap", log_a_gap},
                         {"vp_s_max_gap", s_gap},
                         {"ve_sigma_max_rel_gap", sigma_gap}};
  dm::plot::Figure fig(1, 1, 800, 420);
  fig.ax()
      .title("signal coefficient: DDPM's √ᾱ_i and the VP SDE's a(i/N), N = 1000")
      .xlabel("step i")
      .logy()
      .line(steps, a_ddpm, "DDPM √ᾱ_i")
      .line(steps, a_vp, "VP SDE a(i/1000)", {"", 2.0, 0.4, 1.0, true});
  fig.save(ch.out("ddpm_vs_vp"));
  metrics.figure("ddpm_vs_vp.svg");
}

// ---------------------------------------------------------------------------
// 4. Reverse sampling with the exact score
// ---------------------------------------------------------------------------
void exact_reverse(const dm::Chapter& ch, const Sizes& sz, dm::MetricsFile& metrics) {
  std::cout << "\n[4/7] the reverse-time SDE with the exact score of the mixture\n";
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);  // small 2D batches: one thread is fastest
  const auto gm = dm::toy::three_gaussians();
  const int64_t n = sz.toy_n;
  const auto floor = dm::metrics::noise_floor([&](int64_t m) { return gm.sample(m, rng()); }, n,
                                              dm::metrics::energy_distance, 10);
  std::printf("  energy distance to a fresh exact sample, n = %lld; noise floor %.5f ± %.5f\n",
              (long long)n, floor.mean, floor.std);
  auto& m = metrics["exact_reverse"];
  m["n"] = n;
  m["floor"] = {{"mean", floor.mean}, {"std", floor.std}, {"repeats", floor.repeats}};
  dm::plot::Figure fig(1, 2, 1400, 460);
  fig.ax(0)
      .title("distance to the data, exact score (n = " + std::to_string(n) + ")")
      .xlabel("steps N (= network evaluations)")
      .ylabel("energy distance")
      .logx()
      .logy()
      .hline(floor.mean, "noise floor", {"#777777", 1.5, 0.4, 1.0, true});
  std::map<std::string, Tensor> shown;
  int curve = 0;
  for (const auto& s : toy_sdes()) {
    dm::toy::PerturbedMixture exact(gm, s);  // ∇log p_t at every t: the score is not the question
    for (auto p : {sde::Predictor::euler_maruyama, sde::Predictor::reverse_diffusion}) {
      const std::string label = s->name() + ", " + sde::display_name(p);
      Vec xs, eds;
      for (int64_t steps : sz.toy_steps) {
        // ANCHOR: exact_reverse
        sde::SampleOptions o;
        o.predictor = p;
        o.steps = steps;  // t from 1 down to ε (10⁻⁵ VE, 10⁻³ VP), uniform
        const auto x = sde::sample(exact, s, {n, 2}, rng(), o);
        const double ed = dm::metrics::energy_distance(x, gm.sample(n, rng()));
        // ANCHOR_END: exact_reverse
        xs.push_back(double(steps));
        eds.push_back(ed);
        m[sde::key_of(*s)][sde::to_string(p)][std::to_string(steps)] = ed;
        if (steps == sz.toy_steps.back() && p == sde::Predictor::euler_maruyama)
          shown[s->name()] = x;
      }
      std::printf("  %-34s", label.c_str());
      for (size_t i = 0; i < xs.size(); ++i) std::printf(" N=%lld: %.4f", (long long)xs[i], eds[i]);
      std::printf("\n");
      fig.ax(0).linepoints(xs, eds, label,
                           {dm::plot::color(curve / 2), 2.0, 0.6, 1.0, curve % 2 == 1});
      ++curve;
    }
  }
  // The order. The energy distance's noise hides the discretisation error
  // beyond a few tens of steps; on Gaussian data the sampler's output is
  // Gaussian and its moments can be propagated exactly through the same steps
  // (no samples): the error of the variance against the exact marginal at the
  // end time, started from the exact marginal at t = 1 (no prior error).
  std::printf("  order of the discretisation error: data N(1, 0.5²), moments propagated exactly\n");
  const auto gauss = dm::toy::GaussianMixture::isotropic(torch::ones({1}, torch::kFloat64),
                                                         torch::ones({1, 1}, torch::kFloat64),
                                                         torch::full({1}, 0.5, torch::kFloat64));
  const Vec order_steps = {10, 20, 50, 100, 200, 500, 1000, 2000, 5000};
  fig.ax(1)
      .title("variance error on Gaussian data (exact moments, no sampling noise)")
      .xlabel("steps N")
      .ylabel("|Var − Var_exact| / Var_exact")
      .logx()
      .logy();
  curve = 0;
  for (const auto& s : toy_sdes()) {
    dm::toy::PerturbedMixture exact(gauss, s);
    const auto start = s->at(s->t_max()), end = s->at(s->sampling_eps());
    const double exact_var = end.a * end.a * 0.25 + end.s * end.s;
    for (auto p : {sde::Predictor::euler_maruyama, sde::Predictor::reverse_diffusion}) {
      // ANCHOR: order
      const auto step =
          p == sde::Predictor::euler_maruyama
              ? sde::euler_maruyama(s)
              : sde::reverse_diffusion(std::static_pointer_cast<const dm::Process>(s));
      Vec errs;
      for (double N : order_steps) {
        const auto out = sde::propagate_gaussian(
            exact, step, dm::uniform_grid(s->t_max(), s->sampling_eps(), int64_t(N)),
            {start.a, start.a * start.a * 0.25 + start.s * start.s}, false);
        errs.push_back(std::abs(out.var - exact_var) / exact_var);
      }
      // ANCHOR_END: order
      // The slope over N = 20 … 500: past the first coarse grid, and before
      // VE's Euler–Maruyama error levels off at ~3·10⁻⁶ (N ≥ 1000).
      const Vec fx(order_steps.begin() + 1, order_steps.begin() + 6),
          fy(errs.begin() + 1, errs.begin() + 6);
      const double order = -dm::metrics::log_slope(fx, fy);
      const std::string label = s->name() + ", " + sde::display_name(p);
      m[sde::key_of(*s)][sde::to_string(p)]["observed_order"] = order;
      m[sde::key_of(*s)][sde::to_string(p)]["gaussian_variance_error"] = errs;
      std::printf(
          "  %-34s variance error %.2e (N = 10), %.2e (N = 100), %.2e (N = 1000): order %.2f\n",
          label.c_str(), errs[0], errs[3], errs[6], order);
      fig.ax(1).linepoints(order_steps, errs, label,
                           {dm::plot::color(curve / 2), 2.0, 0.6, 1.0, curve % 2 == 1});
      ++curve;
    }
  }
  m["order_steps"] = order_steps;
  fig.save(ch.out("exact_reverse"));
  metrics.figure("exact_reverse.svg");

  dm::plot::Figure sc(1, 3, 1500, 460);
  int panel = 0;
  for (const auto& s : toy_sdes()) {
    const auto& x = shown[s->name()];
    sc.ax(panel)
        .title(s->name() + ", Euler–Maruyama, N = " + std::to_string(sz.toy_steps.back()) +
               ", exact score")
        .equal_aspect()
        .xrange(-4.5, 4.5)
        .yrange(-4.5, 4.5)
        .points(dm::plot::to_vec(x.select(1, 0)), dm::plot::to_vec(x.select(1, 1)), "",
                {dm::plot::color(panel), 1, 0.3, 0.5});
    ++panel;
  }
  sc.save(ch.out("exact_samples"));
  metrics.figure("exact_samples.svg");

  // The reverse process in 1D: trajectories from the prior to the two modes.
  const auto gm1 = dm::toy::GaussianMixture::isotropic(
      torch::tensor({0.5, 0.5}, torch::kFloat64), torch::tensor({{-1.5}, {1.5}}, torch::kFloat64),
      torch::full({2}, 0.2, torch::kFloat64));
  dm::plot::Figure traj(1, 3, 1500, 420);
  int k = 0;
  for (const auto& s : toy_sdes()) {
    dm::toy::PerturbedMixture exact(gm1, s);
    std::vector<Tensor> states;
    sde::SampleOptions o;
    o.steps = 500;
    o.run.callback = [&](const dm::StepEvent& e) { states.push_back(e.result.x); };
    const auto x1 = s->prior_sample({24, 1}, rng());
    sde::sample_from(exact, s, x1, rng(), o);
    const auto grid = dm::uniform_grid(1.0, s->sampling_eps(), 500);
    auto& ax =
        traj.ax(k++).title(s->name() + ": the reverse SDE from the prior, exact score").xlabel("t");
    if (s->name() == "VE") ax.yrange(-12, 12);
    for (int64_t p = 0; p < 24; ++p) {
      Vec y{x1[p][0].item<double>()};
      for (const auto& st : states) y.push_back(st[p][0].item<double>());
      ax.line(grid, y, "", {p % 2 ? "#0072B2" : "#D55E00", 0.8, 0.4, 0.5});
    }
  }
  traj.save(ch.out("reverse_trajectories"));
  metrics.figure("reverse_trajectories.svg");
  torch::set_num_threads(threads);
}

// ---------------------------------------------------------------------------
// 5. Continuous-time denoising score matching
// ---------------------------------------------------------------------------
void learned_scores(const dm::Chapter& ch, const Options& o, const Sizes& sz,
                    dm::MetricsFile& metrics) {
  std::cout << "\n[5/7] continuous-time DSM: a small MLP per SDE, t ~ U(ε, 1), λ(t) = "
            << (o.weighting == "likelihood" ? "g(t)²" : "s(t)²") << "\n";
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  const auto gm = dm::toy::three_gaussians();
  const int64_t n = sz.toy_n;
  const auto weighting =
      o.weighting == "likelihood" ? sde::Weighting::likelihood : sde::Weighting::sigma_squared;
  const auto floor = dm::metrics::noise_floor([&](int64_t m) { return gm.sample(m, rng()); }, n,
                                              dm::metrics::energy_distance, 10);
  auto& m = metrics["learned"];
  m["train_steps"] = sz.train_steps;
  m["weighting"] = o.weighting;
  m["n"] = n;
  m["floor"] = floor.mean;
  const Vec ts = {0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0};
  dm::plot::Figure fig(1, 2, 1400, 460);
  fig.ax(0)
      .title("relative score error E‖s_θ − ∇log p_t‖² / E‖∇log p_t‖² on samples of p_t")
      .xlabel("t")
      .logx()
      .logy();
  int k = 0;
  for (const auto& s : toy_sdes()) {
    dm::nn::MLPConfig mc;
    mc.hidden = 128;
    mc.layers = 3;
    dm::nn::ScoreMLP net(mc);
    // ε-prediction; the label 999·t; the input scaled to unit variance (VE's
    // x_t has std up to σ_max = 10; VP's stays near 1 and is barely touched).
    // ANCHOR: continuous_net
    dm::nn::NetSpec spec;
    spec.prediction = dm::Prediction::eps;
    spec.time = {dm::nn::TimeLabel::Kind::affine, 999.0, 0.0};
    spec.input = dm::nn::InputScaling::unit_variance;
    dm::nn::NetModel model(net, spec, s);
    // ANCHOR_END: continuous_net
    dm::train::TrainConfig tc;
    tc.steps = sz.train_steps;
    tc.lr = 2e-3;
    tc.warmup = 100;
    tc.ema_decay = 0.995;
    tc.log_every = 50;
    tc.checkpoint_every = tc.steps;
    dm::train::Trainer trainer(net.ptr(), dm::nn::to_json(mc), tc, torch::kCPU);
    // ANCHOR: train_continuous
    const auto result = trainer.run(
        [&](int64_t) {
          const auto x0 = gm.sample(512, rng()).to(torch::kFloat32);
          return sde::loss(model, *s, x0, rng(), weighting);  // t ~ U(ε, 1), x_t = a x0 + s ε
        },
        /*checkpoint=*/{}, false, {}, "train " + s->name());  // seconds to retrain: not saved
    // ANCHOR_END: train_continuous
    dm::nn::UseEmaWeights ema(trainer.ema(), *net);
    net->eval();
    dm::toy::PerturbedMixture exact(gm, s);
    Vec errs;
    for (double t : ts) {
      const auto pt = exact.at(t);
      const auto x = pt.sample(2000, rng());
      const auto target = pt.score(x);
      torch::NoGradGuard no_grad;
      const auto learned =
          dm::predict_as(dm::Prediction::score, model, *s, x.to(torch::kFloat32), t)
              .to(torch::kFloat64);
      errs.push_back((learned - target).pow(2).sum(1).mean().item<double>() /
                     target.pow(2).sum(1).mean().item<double>());
    }
    fig.ax(0).linepoints(ts, errs, s->name(), {dm::plot::color(k)});
    sde::SampleOptions so;
    so.predictor = sde::Predictor::reverse_diffusion;
    so.steps = 1000;
    const auto x = sde::sample(model, s, {n, 2}, rng(), so, torch::kFloat32).to(torch::kFloat64);
    const double ed = dm::metrics::energy_distance(x, gm.sample(n, rng()));
    const auto key = sde::key_of(*s);
    m[key] = {{"loss_first", result.losses.front()},
              {"loss_last", result.losses.back()},
              {"energy_distance", ed},
              {"relative_score_error", errs},
              {"times", ts}};
    std::printf(
        "  %-6s loss %.3f → %.3f; score error (relative) %.3f at t = 0.01, %.3f at t = 0.5; "
        "reverse diffusion, 1000 steps: energy distance %.5f (floor %.5f ± %.5f)\n",
        s->name().c_str(), result.losses.front(), result.losses.back(), errs[2], errs[8], ed,
        floor.mean, floor.std);
    if (k == 1)
      fig.ax(1)
          .title("learned VP score, reverse diffusion, 1000 steps (n = " + std::to_string(n) + ")")
          .equal_aspect()
          .points(dm::plot::to_vec(x.select(1, 0)), dm::plot::to_vec(x.select(1, 1)), "",
                  {dm::plot::color(1), 1, 0.3, 0.5});
    ++k;
  }
  fig.save(ch.out("learned_scores"));
  metrics.figure("learned_scores.svg");
  torch::set_num_threads(threads);
}

// ---------------------------------------------------------------------------
// 6. The shipped image models as SDE models
// ---------------------------------------------------------------------------
struct ImageRun {
  std::string key, title;
  Tensor samples;
  int64_t nfe = 0;
};

void image_models(const dm::Chapter& ch, const Options& o, const Sizes& sz,
                  const dm::data::Dataset& train_set, const dm::data::Dataset& test_set,
                  dm::MetricsFile& metrics) {
  const auto& opt = ch.options();
  const int64_t n = sz.image_samples, N = sz.image_steps;
  std::printf(
      "\n[6/7] the shipped models as SDE models: %lld samples per sampler, %lld network "
      "evaluations each\n",
      (long long)n, (long long)N);
  const auto dev = torch::TensorOptions().device(opt.device);
  std::vector<ImageRun> runs;
  auto draw = [&](const std::string& key, const std::string& title, int64_t nfe,
                  const std::function<Tensor(int64_t)>& one_batch) {
    std::cout << "  " << title << " (" << nfe << " evaluations)\n";
    auto x = dm::app::sample_in_batches(n, 128, [&](int64_t b, int64_t) { return one_batch(b); });
    runs.push_back({key, title, x.clamp(-1, 1), nfe});
  };

  // DDPM (chapter 04) — its network sees DDPM's index i − 1; on the VP SDE the
  // step i sits at t = i/N, so the label is 1000·t − 1 (exact on DDPM's grid).
  {
    auto ddpm = dm::app::load_unet(o.ddpm_checkpoint, opt.device);
    // ANCHOR: ddpm_as_vp
    auto vp = std::make_shared<sde::VP>();  // β_min = 0.1, β_max = 20: DDPM's table for N = 1000
    dm::nn::NetSpec spec = ddpm.spec;       // ε-prediction
    spec.time = {dm::nn::TimeLabel::Kind::affine, 1000.0, -1.0};  // t = i/1000 ↦ index i − 1
    dm::nn::NetModel as_vp(ddpm.net, spec, vp);
    // ANCHOR_END: ddpm_as_vp
    const auto sched = dm::schedule::linear(1000).to(opt.device);
    dm::nn::NetModel own(ddpm.net, ddpm.spec, sched);
    auto gen = dm::default_generator(opt.device);
    for (auto p : {sde::Predictor::euler_maruyama, sde::Predictor::reverse_diffusion}) {
      sde::SampleOptions so;
      so.predictor = p;
      so.steps = N;
      so.run.progress_label = "VP " + sde::to_string(p);
      draw("vp_" + sde::to_string(p), "DDPM as a VP SDE, " + sde::display_name(p), N,
           [&](int64_t b) {
             return sde::sample(as_vp, vp, {b, 1, 32, 32}, gen, so, dev);
           });
    }
    dm::ddpm::SampleOptions ao;
    ao.grid = dm::respaced_grid(1000, N);
    ao.run.progress_label = "DDPM ancestral";
    draw("ddpm_ancestral", "DDPM, its own ancestral sampler (chapter 04)", N, [&](int64_t b) {
      return dm::ddpm::sample(own, sched, {b, 1, 32, 32}, gen, ao, dev);
    });
  }
  // NCSN (chapter 03) — its network already speaks σ (label log σ, input x/√(1+σ²)):
  // on the VE SDE σ = s(t). Sampling stops where s(t) = σ_min = 0.01, the
  // smallest level it was trained on, and ends with Tweedie's denoising step.
  {
    auto ncsn = dm::app::load_unet(o.ncsn_checkpoint, opt.device);
    const double sigma_max = ncsn.description.value("sigma_max", 50.0),
                 sigma_min = ncsn.description.value("sigma_min", 0.01);
    // ANCHOR: ncsn_as_ve
    auto ve = std::make_shared<sde::VE>(sigma_min, sigma_max);
    dm::nn::NetModel as_ve(ncsn.net, ncsn.spec, ve);
    const double t_end = ve->time_of_std(sigma_min);  // s(t_end) = σ_min
    // ANCHOR_END: ncsn_as_ve
    auto gen = dm::default_generator(opt.device);
    for (auto p : {sde::Predictor::euler_maruyama, sde::Predictor::reverse_diffusion}) {
      sde::SampleOptions so;
      so.predictor = p;
      so.steps = N - 1;  // and one evaluation for the denoising step
      so.t_end = t_end;
      so.run.progress_label = "VE " + sde::to_string(p);
      draw("ve_" + sde::to_string(p), "NCSN as a VE SDE, " + sde::display_name(p), N,
           [&](int64_t b) {
             auto x = sde::sample(as_ve, ve, {b, 1, 32, 32}, gen, so, dev);
             c10::InferenceMode inference;
             return dm::predict_as(dm::Prediction::x0, as_ve, *ve, x, t_end);  // Tweedie
           });
    }
    // Annealed Langevin as chapter 03 runs it, with the same evaluations:
    // N/10 levels × 10 steps (the last level's last step replaced by the denoising step).
    const int levels = int(std::max<int64_t>(N / 10, 2));
    const auto sigmas = dm::ncsn::geometric(sigma_max, sigma_min, levels);
    dm::ncsn::AnnealedOptions ao;
    ao.steps_per_level = std::max<int64_t>(N / levels, 1);
    ao.step_lr = dm::ncsn::step_lr_for(sigmas, ao.steps_per_level);
    ao.denoise = true;
    const dm::SigmaVE sigma_ve = dm::ncsn::process(sigmas);
    dm::nn::NetModel own(ncsn.net, ncsn.spec, sigma_ve);
    dm::RunOptions ro;
    ro.progress_label = "NCSN annealed Langevin";
    draw("ncsn_annealed", "NCSN, its own annealed Langevin sampler (chapter 03)",
         levels * ao.steps_per_level + 1, [&](int64_t b) {
           auto x0 = sigma_max * dm::randn({b, 1, 32, 32}, gen, dev);
           return dm::ncsn::annealed_langevin(own, x0, sigmas, gen, ao, ro);
         });
  }

  std::cout << "  quality (the suite's classifier features; every number with its n and "
               "real-vs-real value):\n";
  auto& m = metrics["images"];
  m["samples"] = n;
  m["network_evaluations"] = N;
  for (const auto& r : runs) {
    std::cout << "  -- " << r.title << "\n";
    const auto report =
        dm::quality::report_samples(r.samples, train_set.images, test_set.images, opt.device);
    m[r.key] = report.to_json();
    m[r.key]["title"] = r.title;
    m[r.key]["network_evaluations"] = r.nfe;
    dm::image::save_grid(dm::app::enlarge(r.samples.slice(0, 0, std::min<int64_t>(n, 32)), 2),
                         ch.out("samples_" + r.key + ".png"), 8);
    metrics.figure("samples_" + r.key + ".png");
  }
}

// ---------------------------------------------------------------------------
// 7. The convergence bound on the Ornstein–Uhlenbeck process
// ---------------------------------------------------------------------------
// A score model with a known error: the inner model's score plus a fixed
// vector `error` (‖error‖ = M everywhere).
class ScoreWithError : public dm::Model {
 public:
  ScoreWithError(dm::Model& inner, Tensor error) : inner_(inner), error_(std::move(error)) {}
  dm::Prediction prediction() const override { return dm::Prediction::score; }
  Tensor predict(const Tensor& x, const Tensor& t, const dm::Condition& c = {}) override {
    return inner_.predict(x, t, c) + error_.to(x.options());
  }

 private:
  dm::Model& inner_;
  Tensor error_;
};

// ---------------------------------------------------------------------------
// 7. (continued)
// ---------------------------------------------------------------------------
// De Bortoli et al. (2021): if ‖s_θ − ∇log p_t‖ ≤ M, the reverse chain Y_N with
// step γ and horizon T = Nγ satisfies ‖L(Y_N) − π‖_TV ≤ B e^{−T} + C(M + √γ) e^{DT}.
// The three terms one at a time, with the exact score of the OU marginals
// (f = −x, g = √2, stationary N(0, I)) and a deliberate error M·u added to it.
void convergence_bound(const dm::Chapter& ch, const Sizes& sz, dm::MetricsFile& metrics) {
  std::cout << "\n[7/7] the convergence bound on the Ornstein–Uhlenbeck process (exact score)\n";
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  const auto gm = dm::toy::three_gaussians();
  const int64_t n = sz.ou_n;
  const auto floor = dm::metrics::noise_floor([&](int64_t m) { return gm.sample(m, rng()); }, n,
                                              dm::metrics::energy_distance, 10);
  // ANCHOR: ou
  // One run: horizon T, step γ, score error M in the direction (1, 1)/√2.
  auto distance = [&](double T, double gamma, double M) {
    auto ou = std::make_shared<sde::VP>(2.0, 2.0, T);  // β ≡ 2: dx = −x dt + √2 dw on [0, T]
    dm::toy::PerturbedMixture exact(gm, ou);
    const auto u = torch::full({1, 2}, M / std::sqrt(2.0), torch::kFloat64);
    ScoreWithError model(exact, u);  // exact: a score model (the default prediction)
    sde::SampleOptions o;            // Euler–Maruyama: X ← X + γ (X + 2 s(X)) + √(2γ) Z
    o.steps = std::max<int64_t>(1, int64_t(std::lround(T / gamma)));
    o.t_end = 0.0;
    const auto x = sde::sample(model, ou, {n, 2}, rng(), o);  // from the prior N(0, I)
    return dm::metrics::energy_distance(x, gm.sample(n, rng()));
  };
  // ANCHOR_END: ou
  const Vec Ts = {0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0}, gammas = {0.4, 0.2, 0.1, 0.05, 0.02, 0.01},
            Ms = {0.0, 0.1, 0.2, 0.4, 0.8, 1.6};
  const double T_fixed = 5.0, gamma_fixed = 0.01;
  Vec dT, dg, dM;
  for (double T : Ts) dT.push_back(distance(T, gamma_fixed, 0.0));
  for (double g : gammas) dg.push_back(distance(T_fixed, g, 0.0));
  for (double M : Ms) dM.push_back(distance(T_fixed, gamma_fixed, M));
  // e^{−T}: the slope of log ED against T over T ≤ 1, where the prior's error
  // dominates (ED is quadratic in a small difference of laws: rate ≈ 2).
  const Vec fx(Ts.begin(), Ts.begin() + 3);
  Vec fy;
  for (size_t i = 0; i < 3; ++i) fy.push_back(dT[i]);
  const double rate = -dm::metrics::log_slope(fx, fy, /*log_x=*/false);
  std::printf("  n = %lld, noise floor %.5f ± %.5f\n", (long long)n, floor.mean, floor.std);
  std::printf("  horizon T (γ = %.2f):", gamma_fixed);
  for (size_t i = 0; i < Ts.size(); ++i) std::printf(" %.2g: %.4f", Ts[i], dT[i]);
  std::printf(
      "\n    ED ∝ e^{−%.2f T} for T ≤ 1 (the prior's error is e^{−T}; ED is quadratic in it: 2)\n",
      rate);
  std::printf("  step γ (T = %.0f):", T_fixed);
  for (size_t i = 0; i < gammas.size(); ++i) std::printf(" %.2g: %.4f", gammas[i], dg[i]);
  std::printf("\n  score error M (T = %.0f, γ = %.2f):", T_fixed, gamma_fixed);
  for (size_t i = 0; i < Ms.size(); ++i) std::printf(" %.2g: %.4f", Ms[i], dM[i]);
  std::printf("\n");
  metrics["convergence"] = {
      {"n", n},        {"floor", floor.mean}, {"floor_std", floor.std},     {"T", Ts},
      {"ed_vs_T", dT}, {"gamma", gammas},     {"ed_vs_gamma", dg},          {"M", Ms},
      {"ed_vs_M", dM}, {"T_fixed", T_fixed},  {"gamma_fixed", gamma_fixed}, {"rate_in_T", rate}};
  dm::plot::Figure fig(1, 3, 1500, 420);
  const dm::plot::Style fl{"#777777", 1.5, 0.4, 1.0, true};
  fig.ax(0)
      .title("horizon T (γ = 0.01, M = 0): the e^{−T} term")
      .xlabel("T")
      .logy()
      .linepoints(Ts, dT, "energy distance")
      .hline(floor.mean, "noise floor", fl);
  fig.ax(1)
      .title("step γ (T = 5, M = 0): the √γ term")
      .xlabel("γ")
      .logx()
      .logy()
      .linepoints(gammas, dg, "energy distance")
      .hline(floor.mean, "noise floor", fl);
  fig.ax(2)
      .title("score error M (T = 5, γ = 0.01)")
      .xlabel("M")
      .logy()
      .linepoints(Ms, dM, "energy distance")
      .hline(floor.mean, "noise floor", fl);
  fig.save(ch.out("convergence"));
  metrics.figure("convergence.svg");
  torch::set_num_threads(threads);
}

}  // namespace

int main(int argc, char** argv) {
  return dm::run_main([&] {
    dm::Chapter chapter("05_sde",
                        "Chapter 05: SDEs — VE, VP and sub-VP, the reverse-time SDE, continuous "
                        "DSM; DDPM and NCSN as discretisations",
                        2);
    Options o;
    auto& app = chapter.app();
    app.add_option("--samples", o.samples, "image samples per sampler (default 128; --quick 16)")
        ->check(dm::whole_number(2, 100000));
    app.add_option("--image-steps", o.image_steps,
                   "network evaluations per image sample (default 1000; --quick 100)")
        ->check(dm::whole_number(10, 100000));
    app.add_option(
           "--weighting", o.weighting,
           "λ(t) of continuous DSM: sigma_squared (s(t)², the ε-loss) or likelihood (g(t)²)")
        ->check(CLI::IsMember({"sigma_squared", "likelihood"}));
    o.ddpm_checkpoint = dm::train::checkpoints_dir() / "ddpm_fashion.pt";
    o.ncsn_checkpoint = dm::train::checkpoints_dir() / "ncsn_fashion.pt";
    app.add_option("--ddpm-checkpoint", o.ddpm_checkpoint, "chapter 04's weights (the VP model)");
    app.add_option("--ncsn-checkpoint", o.ncsn_checkpoint, "chapter 03's weights (the VE model)");
    const auto& opt = chapter.parse(argc, argv);
    dm::plot::require_gnuplot();
    Sizes sz = sizes_for(opt.quick);
    if (o.samples > 0) sz.image_samples = o.samples;
    if (o.image_steps > 0) sz.image_steps = o.image_steps;
    dm::MetricsFile metrics(chapter);

    // Fail fast: the dataset, both checkpoints and the classifier before any work.
    const int64_t need = std::max<int64_t>(sz.image_samples, 1000);
    const auto train_set =
        dm::data::load_fashion_mnist(dm::data::Split::train, opt.data, opt.quick ? need : -1);
    const auto test_set =
        dm::data::load_fashion_mnist(dm::data::Split::test, opt.data, opt.quick ? need : -1);
    dm::app::load_unet(o.ddpm_checkpoint, torch::kCPU);
    dm::app::load_unet(o.ncsn_checkpoint, torch::kCPU);
    dm::quality::load_classifier(dm::train::checkpoints_dir() / "fashion_classifier.pt",
                                 torch::kCPU);
    chapter.begin_work();  // the checks passed: an earlier run's results move aside

    kernels(chapter, metrics);
    forward_simulation(chapter, sz, metrics);
    discrete_forms(chapter, metrics);
    exact_reverse(chapter, sz, metrics);
    learned_scores(chapter, o, sz, metrics);
    image_models(chapter, o, sz, train_set, test_set, metrics);
    convergence_bound(chapter, sz, metrics);

    const auto path = metrics.write();
    std::cout << "\nfigures and metrics written to " << opt.out.string() << "/ ("
              << path.filename().string() << ", " << metrics.data()["figures"].size()
              << " figures)\n";
  });
}
