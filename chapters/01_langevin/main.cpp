// Chapter 01 — Langevin MCMC.
//
// If we know the score ∇log p of a density p = e^V / Z (not Z itself), the
// Langevin SDE  dX = ½∇log p(X) dt + dW  has p as its stationary distribution.
// Discretised with step Δt it becomes the unadjusted Langevin algorithm (ULA)
//
//     X_{k+1} = X_k + (Δt/2) ∇log p(X_k) + √Δt Z_k,        Z_k ~ N(0, I),
//
// the sampler every later chapter builds on. This chapter runs it on densities
// we know exactly — the 1D double well p_τ ∝ exp(V/τ), V(x) = −x²(x−2)(x+2),
// and a 2D Gaussian mixture — and measures four things against exact answers:
//
//   1. the bias ULA pays for a finite Δt, and MALA's Metropolis correction
//      that removes it;
//   2. temperature: p_τ at τ = 5 is easy to sample, at τ = 1 it is not;
//   3. mixing: how many chains cross the barrier between the two wells after k
//      steps, plain Langevin at τ = 1 versus annealed Langevin (τ: 5 → 1);
//   4. Langevin on a 2D mixture: from a broad start to the exact distribution.
//
// Every figure lands in --out (default runs/01_langevin) with metrics.json.
#include <cmath>
#include <iostream>

#include "dm/app/cli.hpp"
#include "dm/base/rng.hpp"
#include "dm/app/metrics_file.hpp"
#include "dm/methods/langevin.hpp"
#include "dm/data/metrics.hpp"
#include "dm/app/plot.hpp"
#include "dm/data/toy.hpp"

namespace {

// The chapter's random numbers: torch's default CPU generator, seeded by
// --seed, handed explicitly to every library function that draws.
at::Generator& rng() {
  static at::Generator gen = dm::default_generator();
  return gen;
}

using dm::plot::Vec;
using torch::Tensor;

// Sizes: the defaults make the book's figures; --quick is the CI size.
struct Sizes {
  int64_t chains_1d, steps_bias, chains_mixing, steps_mixing, chains_2d, steps_2d;
  std::vector<double> dts;
};

Sizes sizes_for(bool quick) {
  if (quick) return {4000, 300, 2000, 3000, 1000, 2000, {0.005, 0.02, 0.05, 0.1}};
  return {50000, 1000, 4000, 4000, 3000, 2000, {0.0025, 0.005, 0.01, 0.02, 0.04, 0.07, 0.1}};
}

const double kWell = std::sqrt(2.0);  // the two modes of V sit at ±√2

Vec linspace(double lo, double hi, int n) {
  return dm::plot::to_vec(torch::linspace(lo, hi, n, torch::kFloat64));
}

// exp(log p) of the double well on a grid, for drawing over histograms.
Vec density_curve(const dm::toy::DoubleWell& well, const Vec& xs) {
  auto x = torch::tensor(xs, torch::kFloat64);
  return dm::plot::to_vec(well.log_prob(x).exp());
}

// The KS statistic of chains [N, 1] against the exact CDF of p_τ. Chains that
// blew up (non-finite) count as mass that is not where it should be.
double ks_to_exact(const Tensor& x, const dm::toy::DoubleWell& well) {
  auto finite = x.isfinite();
  auto xs = torch::where(finite, x, torch::full_like(x, 1e300));
  return dm::metrics::ks_statistic(xs, [&](const Tensor& v) { return well.cdf(v); });
}

// ---------------------------------------------------------------------------
// 1. The double well, and how tempering flattens it
// ---------------------------------------------------------------------------
void plot_double_well(const dm::Chapter& ch, dm::MetricsFile& metrics) {
  const Vec xs = linspace(-3, 3, 601);
  auto x = torch::tensor(xs, torch::kFloat64);
  dm::plot::Figure fig(1, 2);
  fig.ax(0)
      .title("potential V(x) = -x^2(x-2)(x+2)")
      .xlabel("x")
      .ylabel("V(x)")
      .yrange(-6, 5)
      .line(xs, dm::plot::to_vec(dm::toy::DoubleWell::potential(x)), "V(x)");
  auto& dens = fig.ax(1).title("p_τ(x) = exp(V(x)/τ) / Z_τ").xlabel("x").ylabel("density");
  for (double tau : {1.0, 2.0, 5.0}) {
    dens.line(xs, density_curve(dm::toy::DoubleWell(tau), xs), "τ = " + std::to_string(int(tau)));
  }
  fig.save(ch.out("double_well"));
  metrics.figure("double_well.svg");
  for (double tau : {1.0, 5.0}) {
    metrics["double_well"]["log_Z_tau" + std::to_string(int(tau))] =
        dm::toy::DoubleWell(tau).log_normalizer();
  }
}

// ---------------------------------------------------------------------------
// 2. Step-size bias: ULA's stationary law is not p; MALA's is.
// ---------------------------------------------------------------------------
// Chains start at exact samples of p, so any distance to p after K steps is
// the bias of the discretisation, not a lack of mixing.
void step_size_bias(const dm::Chapter& ch, const Sizes& sz, dm::MetricsFile& metrics) {
  std::cout << "\n[1/4] step-size bias of ULA and the MALA correction (double well, tau = 1)\n";
  const dm::toy::DoubleWell well(1.0);
  // ANCHOR: double_well_model
  dm::ScoreFunction score([&](const Tensor& x) { return well.score(x); });
  auto log_prob = [&](const Tensor& x) { return well.log_prob(x); };
  // ANCHOR_END: double_well_model

  // What a perfect sampler scores at this many chains.
  auto floor = dm::metrics::noise_floor(
      [&](int64_t n) { return well.sample(n, rng()); }, sz.chains_1d,
      [&](const Tensor& a, const Tensor&) { return ks_to_exact(a, well); });
  Vec ula_ks, mala_ks, acceptance;
  Tensor ula_big, mala_big;  // samples at the largest Δt, for the histograms
  for (double dt : sz.dts) {
    auto x0 = well.sample(sz.chains_1d, rng());
    auto x_ula = dm::langevin::ula(score, x0, dt, sz.steps_bias, rng(), 1.0, {},
                                   "ULA  dt=" + std::to_string(dt).substr(0, 6));
    auto res = dm::langevin::mala(log_prob, score, x0, dt, sz.steps_bias, rng(), 1.0, {},
                                  "MALA dt=" + std::to_string(dt).substr(0, 6));
    ula_ks.push_back(ks_to_exact(x_ula, well));
    mala_ks.push_back(ks_to_exact(res.x, well));
    acceptance.push_back(res.acceptance);
    std::printf(
        "  dt = %-6g  KS(ULA) = %.4f  KS(MALA) = %.4f  MALA acceptance = %.3f  (floor %.4f)\n", dt,
        ula_ks.back(), mala_ks.back(), res.acceptance, floor.mean);
    ula_big = x_ula;
    mala_big = res.x;
  }
  const double dt_big = sz.dts.back();

  const Vec xs = linspace(-3, 3, 601);
  const Vec exact = density_curve(well, xs);
  dm::plot::Figure hist(1, 2);
  hist.ax(0)
      .title("ULA, Δt = " + std::to_string(dt_big).substr(0, 4))
      .xlabel("x")
      .ylabel("density")
      .histogram(dm::plot::to_vec(ula_big), 120, "ULA chains", {}, std::make_pair(-3.0, 3.0))
      .line(xs, exact, "exact p(x)", {"#000000"});
  hist.ax(1)
      .title("MALA, Δt = " + std::to_string(dt_big).substr(0, 4))
      .xlabel("x")
      .ylabel("density")
      .histogram(dm::plot::to_vec(mala_big), 120, "MALA chains", {}, std::make_pair(-3.0, 3.0))
      .line(xs, exact, "exact p(x)", {"#000000"});
  hist.save(ch.out("ula_vs_mala_hist"));
  metrics.figure("ula_vs_mala_hist.svg");

  dm::plot::Figure bias;
  bias.ax()
      .title("distance to p after " + std::to_string(sz.steps_bias) + " steps from exact samples")
      .xlabel("step size Δt")
      .ylabel("KS statistic to the exact CDF")
      .logx()
      .logy()
      .xrange(0.8 * sz.dts.front(), 1.25 * sz.dts.back())
      .yrange(1e-3, 0.5)
      .linepoints(sz.dts, ula_ks, "ULA")
      .linepoints(sz.dts, mala_ks, "MALA")
      .hline(floor.mean, "noise floor (" + std::to_string(sz.chains_1d) + " exact samples)",
             {"#777777", 1.5, 0.4, 1.0, true});
  bias.save(ch.out("bias_vs_dt"));
  metrics.figure("bias_vs_dt.svg");

  auto& m = metrics["step_size_bias"];
  m["target"] = "double well, tau = 1";
  m["chains"] = sz.chains_1d;
  m["steps"] = sz.steps_bias;
  m["dt"] = sz.dts;
  m["ks_ula"] = ula_ks;
  m["ks_mala"] = mala_ks;
  m["mala_acceptance"] = acceptance;
  m["ks_noise_floor"] = {{"mean", floor.mean}, {"std", floor.std}, {"repeats", floor.repeats}};
}

// ---------------------------------------------------------------------------
// 3. Temperature: p_τ ∝ exp(V/τ) — flat at τ = 5, two sharp wells at τ = 1
// ---------------------------------------------------------------------------
// All chains start in the left well. At τ = 5 the barrier costs e^{-4/5}, at
// τ = 1 it costs e^{-4}: the same number of steps mixes one and not the other.
void temperature(const dm::Chapter& ch, const Sizes& sz, dm::MetricsFile& metrics) {
  std::cout << "\n[2/4] temperature: Langevin at tau = 5 and tau = 1 from the left well\n";
  const double dt = 0.01;
  const Vec xs = linspace(-3.5, 3.5, 701);
  dm::plot::Figure fig(1, 2);
  int panel = 0;
  for (double tau : {5.0, 1.0}) {
    const dm::toy::DoubleWell well(tau);
    // ANCHOR: tempered
    // Tempered Langevin: X + (Δt/2τ) ∇log p(X) + √Δt Z has stationary law p_τ ∝ p^{1/τ}.
    const dm::toy::DoubleWell target(1.0);
    dm::ScoreFunction score([&](const Tensor& x) { return target.score(x); });
    auto x0 = torch::full({sz.chains_mixing, 1}, -kWell, torch::kFloat64);
    auto x = dm::langevin::ula(score, x0, dt, sz.steps_mixing, rng(), tau, {},
                               "tau=" + std::to_string(int(tau)));
    // ANCHOR_END: tempered
    const double ks = ks_to_exact(x, well);
    const double right = (x > 0).to(torch::kFloat64).mean().item<double>();
    std::printf("  tau = %g: KS to p_tau = %.4f, fraction in the right well = %.3f (exact 0.5)\n",
                tau, ks, right);
    const std::string key = "tau" + std::to_string(int(tau));
    metrics["temperature"][key] = {{"ks", ks}, {"right_fraction", right}};
    fig.ax(panel++)
        .title("τ = " + std::to_string(int(tau)) + ": " + std::to_string(sz.steps_mixing) +
               " steps from x = -√2")
        .xlabel("x")
        .ylabel("density")
        .histogram(dm::plot::to_vec(x), 100, "Langevin chains", {}, std::make_pair(-3.5, 3.5))
        .line(xs, density_curve(well, xs), "exact p_τ", {"#000000"});
  }
  metrics["temperature"]["dt"] = dt;
  metrics["temperature"]["steps"] = sz.steps_mixing;
  metrics["temperature"]["chains"] = sz.chains_mixing;
  fig.save(ch.out("temperature"));
  metrics.figure("temperature.svg");
}

// ---------------------------------------------------------------------------
// 4. Mixing: plain Langevin at τ = 1 versus annealed Langevin τ: 5 → 1
// ---------------------------------------------------------------------------
struct MixingTrace {
  Vec right_fraction, ever_crossed, one_chain;
};

// Records, after every step, the fraction of chains in the right well, the
// fraction that have ever been there, and the position of chain 0.
dm::langevin::StepCallback record(MixingTrace& trace, Tensor& visited) {
  return [&trace, &visited](int64_t, const Tensor& x) {
    auto right = (x.select(1, 0) > 0);
    visited = visited | right;
    trace.right_fraction.push_back(right.to(torch::kFloat64).mean().item<double>());
    trace.ever_crossed.push_back(visited.to(torch::kFloat64).mean().item<double>());
    trace.one_chain.push_back(x[0][0].item<double>());
  };
}

void mixing(const dm::Chapter& ch, const Sizes& sz, dm::MetricsFile& metrics) {
  std::cout << "\n[3/4] mixing: plain Langevin (tau = 1) vs annealed Langevin (tau: 5 -> 1)\n";
  const dm::toy::DoubleWell well(1.0);
  dm::ScoreFunction score([&](const Tensor& x) { return well.score(x); });
  const double dt = 0.01;
  const int levels = 10;
  const int64_t per_level = sz.steps_mixing / levels;
  const int64_t steps = per_level * levels;  // the same budget for both

  auto x0 = torch::full({sz.chains_mixing, 1}, -kWell, torch::kFloat64);
  MixingTrace plain, annealed;
  auto visited = torch::zeros({sz.chains_mixing}, torch::kBool);
  auto x_plain =
      dm::langevin::ula(score, x0, dt, steps, rng(), 1.0, record(plain, visited), "plain   ");
  visited = torch::zeros({sz.chains_mixing}, torch::kBool);
  // ANCHOR: annealed_run
  const auto taus = dm::langevin::geometric_schedule(5.0, 1.0, levels);  // τ_1 = 5 > … > τ_L = 1
  auto x_annealed = dm::langevin::annealed(score, x0, taus, per_level, dt, rng(),
                                           record(annealed, visited), "annealed");
  // ANCHOR_END: annealed_run

  const double ks_plain = ks_to_exact(x_plain, well), ks_annealed = ks_to_exact(x_annealed, well);
  std::printf("  after %lld steps: right-well fraction plain = %.3f, annealed = %.3f (exact 0.5)\n",
              (long long)steps, plain.right_fraction.back(), annealed.right_fraction.back());
  std::printf(
      "  chains that ever crossed: plain = %.3f, annealed = %.3f;  KS to p: plain = %.4f, annealed "
      "= %.4f\n",
      plain.ever_crossed.back(), annealed.ever_crossed.back(), ks_plain, ks_annealed);

  Vec k(steps);
  for (int64_t i = 0; i < steps; ++i) k[i] = double(i + 1);
  dm::plot::Figure fig(1, 2);
  fig.ax(0)
      .title("chains in the right well (all start in the left)")
      .xlabel("step k")
      .ylabel("fraction")
      .yrange(0, 1.02)
      .line(k, plain.right_fraction, "plain, τ = 1", {dm::plot::color(0)})
      .line(k, annealed.right_fraction, "annealed, τ: 5 → 1", {dm::plot::color(1)})
      .line(k, plain.ever_crossed, "plain: ever crossed", {dm::plot::color(0), 1.5, 0.4, 1.0, true})
      .line(k, annealed.ever_crossed, "annealed: ever crossed",
            {dm::plot::color(1), 1.5, 0.4, 1.0, true})
      .hline(0.5, "exact", {"#000000", 1.0});
  fig.ax(1)
      .title("one chain's trajectory")
      .xlabel("step k")
      .ylabel("x_k")
      .yrange(-3, 3)
      .line(k, plain.one_chain, "plain", {dm::plot::color(0), 1.0})
      .line(k, annealed.one_chain, "annealed", {dm::plot::color(1), 1.0});
  fig.save(ch.out("mixing"));
  metrics.figure("mixing.svg");

  auto& m = metrics["mixing"];
  m["dt"] = dt;
  m["steps"] = steps;
  m["chains"] = sz.chains_mixing;
  m["taus"] = taus;
  m["plain"] = {{"right_fraction", plain.right_fraction.back()},
                {"ever_crossed", plain.ever_crossed.back()},
                {"ks", ks_plain}};
  m["annealed"] = {{"right_fraction", annealed.right_fraction.back()},
                   {"ever_crossed", annealed.ever_crossed.back()},
                   {"ks", ks_annealed}};
}

// ---------------------------------------------------------------------------
// 5. A 2D Gaussian mixture: exact score, Langevin from a broad start
// ---------------------------------------------------------------------------
dm::toy::GaussianMixture example_mixture() {
  auto weights = torch::tensor({0.5, 0.3, 0.2}, torch::kFloat64);
  auto means = torch::tensor({{-1.0, 0.2}, {1.0, 0.8}, {0.6, -1.0}}, torch::kFloat64);
  auto covs = torch::tensor(
      {{{0.35, 0.15}, {0.15, 0.25}}, {{0.20, -0.08}, {-0.08, 0.30}}, {{0.12, 0.0}, {0.0, 0.12}}},
      torch::kFloat64);
  return dm::toy::GaussianMixture(weights, means, covs);
}

void mixture_2d(const dm::Chapter& ch, const Sizes& sz, dm::MetricsFile& metrics) {
  std::cout << "\n[4/4] Langevin on a 2D Gaussian mixture\n";
  auto mixture = example_mixture();
  const double dt = 0.01;
  const int64_t n = sz.chains_2d;
  // ANCHOR: mixture_run
  // The mixture is a dm::Model: its exact score drives the same sampler code.
  auto x0 = 3.0 * torch::randn({n, 2}, torch::kFloat64);  // a broad start, far from p
  Vec checkpoints, ed_ula;
  const int64_t every = std::max<int64_t>(1, sz.steps_2d / 20);
  auto reference = mixture.sample(n, rng());
  auto x_ula = dm::langevin::ula(
      mixture, x0, dt, sz.steps_2d, rng(), 1.0,
      [&](int64_t k, const Tensor& x) {
        if (k % every == 0) {
          checkpoints.push_back(double(k));
          ed_ula.push_back(dm::metrics::energy_distance(x, reference));
        }
      },
      "ULA 2D  ");
  auto mala = dm::langevin::mala([&](const Tensor& x) { return mixture.log_prob(x); }, mixture, x0,
                                 dt, sz.steps_2d, rng(), 1.0, {}, "MALA 2D ");
  // ANCHOR_END: mixture_run
  auto floor = dm::metrics::noise_floor([&](int64_t m) { return mixture.sample(m, rng()); }, n,
                                        dm::metrics::energy_distance);
  const double ed_final = dm::metrics::energy_distance(x_ula, mixture.sample(n, rng()));
  const double ed_mala = dm::metrics::energy_distance(mala.x, mixture.sample(n, rng()));
  std::printf(
      "  energy distance to exact samples: ULA %.5f, MALA %.5f (acceptance %.3f); noise floor %.5f "
      "+- %.5f\n",
      ed_final, ed_mala, mala.acceptance, floor.mean, floor.std);

  // Density heatmap with contours, the score field, and the chains on top.
  const int grid = 120;
  const double lo = -3.5, hi = 3.5;
  auto g = torch::linspace(lo, hi, grid, torch::kFloat64);
  auto mesh = torch::meshgrid({g, g}, "xy");
  auto pts = torch::stack({mesh[0].reshape(-1), mesh[1].reshape(-1)}, 1);
  auto dens = mixture.log_prob(pts).exp().reshape({grid, grid});
  std::vector<Vec> z(grid);
  for (int i = 0; i < grid; ++i) z[i] = dm::plot::to_vec(dens[i]);

  auto coarse = torch::linspace(lo + 0.25, hi - 0.25, 19, torch::kFloat64);
  auto cm = torch::meshgrid({coarse, coarse}, "xy");
  auto cpts = torch::stack({cm[0].reshape(-1), cm[1].reshape(-1)}, 1);
  // Score arrows point uphill in log-density; show direction with a length ∝ log(1 + |s|).
  auto s = mixture.score(cpts);
  auto norm = s.norm(2, 1, true);
  auto shown = s / norm.clamp_min(1e-12) * torch::log1p(norm);

  dm::plot::Figure fig(1, 2, 1200, 560);
  fig.ax(0)
      .title("exact density and score field ∇ log p")
      .xlabel("x_1")
      .ylabel("x_2")
      .equal_aspect()
      .xrange(lo, hi)
      .yrange(lo, hi)
      .heatmap(z, lo, hi, lo, hi, 8)
      .vectors(dm::plot::to_vec(cpts.select(1, 0)), dm::plot::to_vec(cpts.select(1, 1)),
               dm::plot::to_vec(shown.select(1, 0)), dm::plot::to_vec(shown.select(1, 1)), 0.32,
               "score", {"#ffffff", 1.2});
  fig.ax(1)
      .title("ULA chains after " + std::to_string(sz.steps_2d) + " steps (Δt = 0.01)")
      .xlabel("x_1")
      .ylabel("x_2")
      .equal_aspect()
      .xrange(lo, hi)
      .yrange(lo, hi)
      .heatmap(z, lo, hi, lo, hi, 8)
      .points(dm::plot::to_vec(x_ula.select(1, 0)), dm::plot::to_vec(x_ula.select(1, 1)), "chains",
              {"#ffffff", 1, 0.35, 0.7});
  fig.save(ch.out("mixture_2d"));
  metrics.figure("mixture_2d.svg");

  dm::plot::Figure conv;
  conv.ax()
      .title("2D mixture: convergence from N(0, 9I)")
      .xlabel("step k")
      .ylabel("energy distance to exact samples")
      .logy()
      .linepoints(checkpoints, ed_ula, "ULA, Δt = 0.01")
      .hline(floor.mean, "noise floor (" + std::to_string(n) + " samples)",
             {"#777777", 1.5, 0.4, 1.0, true});
  conv.save(ch.out("mixture_2d_convergence"));
  metrics.figure("mixture_2d_convergence.svg");

  auto& m = metrics["mixture_2d"];
  m["dt"] = dt;
  m["steps"] = sz.steps_2d;
  m["chains"] = n;
  m["energy_distance_ula"] = ed_final;
  m["energy_distance_mala"] = ed_mala;
  m["mala_acceptance"] = mala.acceptance;
  m["energy_distance_noise_floor"] = {
      {"mean", floor.mean}, {"std", floor.std}, {"repeats", floor.repeats}};
}

}  // namespace

int main(int argc, char** argv) {
  return dm::run_main([&] {
    // Small 1D/2D batches: one thread is fastest (measured; see the book).
    dm::Chapter chapter("01_langevin",
                        "Chapter 01: Langevin MCMC on the double well and a 2D mixture", 1);
    const auto& opt = chapter.parse(argc, argv);
    dm::plot::require_gnuplot();
    if (opt.device.is_cuda())
      std::cout << "note: this chapter's 1D/2D chains are tiny; they run on the CPU in float64\n";
    const Sizes sz = sizes_for(opt.quick);
    dm::MetricsFile metrics(chapter);
    chapter.begin_work();  // an earlier run's results in --out move aside

    plot_double_well(chapter, metrics);
    step_size_bias(chapter, sz, metrics);
    temperature(chapter, sz, metrics);
    mixing(chapter, sz, metrics);
    mixture_2d(chapter, sz, metrics);

    const auto path = metrics.write();
    std::cout << "\nfigures and metrics written to " << opt.out.string() << "/ ("
              << path.filename().string() << ", " << metrics.data()["figures"].size()
              << " figures)\n";
  });
}
