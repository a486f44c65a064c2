// Chapter 03 — Noise-conditional score networks (NCSN) and annealed Langevin dynamics.
//
// Chapter 02 ended with three reasons why "learn the score, run Langevin"
// fails: data on a manifold, modes that Langevin cannot cross, and a learned
// score that is wrong where data is rare. One idea fixes all three: blur the
// data with Gaussian noise at many levels σ_1 > … > σ_L, learn the score of
// every blurred density with one network s_θ(x, σ), and run Langevin from
// the blurriest level down to the sharpest (Song & Ermon, 2019).
//
// The chapter runs, in order:
//   1. 2D: the ch02 two-mode mixture (weights 0.8/0.2, far apart) sampled by
//      annealed Langevin with the exact blurred score (the sampler's floor),
//      with a learned s_θ(x, σ), and by single-σ Langevin: mode weights;
//   2. NCSN's noising as a Markov chain (a discretised VE SDE): the chain
//      x_k = x_{k−1} + √(σ_k² − σ_{k−1}²) z has the marginals x_0 + σ_k z;
//   3. Fashion-MNIST: the largest distance between images (which sets σ_1)
//      and one image at the noise levels;
//   4. the U-Net as s_θ(x, σ): loaded from the shipped checkpoint (or trained:
//      --train; a tiny one with --quick);
//   5. annealed Langevin on images: samples along the annealing and a grid;
//   6. quality: the Fréchet distance in a classifier's feature space against
//      its floor, and the class histogram (the image version of mode weights).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "dm/app/cli.hpp"
#include "dm/app/image_chapter.hpp"
#include "dm/base/rng.hpp"
#include "dm/data/fashion.hpp"
#include "dm/app/image.hpp"
#include "dm/app/metrics_file.hpp"
#include "dm/methods/langevin.hpp"
#include "dm/data/metrics.hpp"
#include "dm/methods/ncsn.hpp"
#include "dm/diffusion/param.hpp"
#include "dm/diffusion/process.hpp"
#include "dm/nn/net_model.hpp"
#include "dm/nn/networks.hpp"
#include "dm/app/plot.hpp"
#include "dm/data/quality.hpp"
#include "dm/data/toy.hpp"
#include "dm/nn/train.hpp"

namespace fs = std::filesystem;
using dm::plot::Vec;
using torch::Tensor;

namespace {

// The chapter's random numbers: torch's default CPU generator, seeded by
// --seed, handed explicitly to every library function that draws.
at::Generator& rng() {
  static at::Generator gen = dm::default_generator();
  return gen;
}

struct Options {
  dm::app::TrainingFlags training;                 // --train, --resume, --steps, --checkpoint, …
  int64_t samples = 0;                             // samples for the Fréchet distance (0: default)
  int64_t sample_levels = 0, steps_per_level = 0;  // the image sampler (0: defaults)
  double step_lr = 0;                              // ε (0: chosen by the variance rule)
};

struct Sizes {
  int64_t toy_chains, toy_train_steps, image_train_steps, batch, fid_samples, sample_levels,
      steps_per_level, distance_images;
};
Sizes sizes_for(bool quick) {
  if (quick) return {1000, 1500, 300, 16, 64, 20, 5, 300};
  return {4000, 6000, 20000, 64, 128, 100, 10, 2000};
}

// The image model's noise levels: σ_1 = 50 (at least the largest distance
// between two training images, measured in part 3), σ_L = 0.01, and 100
// levels, so that neighbouring levels overlap in 1024 dimensions (see the book).
constexpr double kImageSigmaMax = 50.0, kImageSigmaMin = 0.01;
constexpr int kImageLevels = 100;

using dm::app::enlarge;

Vec col(const Tensor& x, int64_t j) { return dm::plot::to_vec(x.select(1, j).to(torch::kFloat64)); }

// ---------------------------------------------------------------------------
// 1. Two dimensions: annealing fixes the mode weights
// ---------------------------------------------------------------------------
// The mixture of chapter 02's slow-mixing experiment: weight 0.8 at (−3, 0),
// 0.2 at (3, 0), std 0.5. Plain Langevin kept the 50/50 split it started with.
dm::toy::GaussianMixture two_modes() {
  return dm::toy::GaussianMixture::isotropic(
      torch::tensor({0.8, 0.2}, torch::kFloat64),
      torch::tensor({-3.0, 0.0, 3.0, 0.0}, torch::kFloat64).reshape({2, 2}),
      torch::full({2}, 0.5, torch::kFloat64));
}

double left_fraction(const Tensor& x) {
  return x.select(1, 0).lt(0).to(torch::kFloat64).mean().item<double>();
}

void toy_2d(const dm::Chapter& ch, const Sizes& sz, dm::MetricsFile& metrics) {
  std::cout << "\n[1/6] 2D: annealed Langevin on two far-apart modes (weights 0.8 / 0.2)\n";
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);  // tiny 2D batches: one thread is fastest
  const auto mixture = two_modes();
  const int64_t n = sz.toy_chains;
  // ANCHOR: toy_sigmas
  // NCSN v1's recipe, sized to this mixture: σ_1 = 6 is the distance between
  // the modes, σ_L = 0.1 is small next to their width; 10 levels, T = 100.
  const auto sigmas = dm::ncsn::geometric(6.0, 0.1, 10);
  dm::ncsn::AnnealedOptions ao;
  ao.steps_per_level = 100;
  ao.step_lr = 0.01;  // α_L = 0.01 at σ_L = 0.1; α_1 = 36 at σ_1 = 6
  // ANCHOR_END: toy_sigmas
  const double target =
      0.8;  // the exact mass left of x_1 = 0 (to 1e-9: the modes are 6 std from 0)
  const double floor =
      std::sqrt(0.8 * 0.2 / double(n));  // binomial std of the fraction at n chains
  auto& m = metrics["toy_2d"];
  m["chains"] = n;
  m["sigmas"] = sigmas.values;
  m["steps_per_level"] = ao.steps_per_level;
  m["step_lr"] = ao.step_lr;
  m["exact_left_weight"] = target;
  m["weight_error_floor"] = floor;
  // The process: VE with time σ (a = 1, s = σ), so the levels are the sampler's times.
  const auto ve = dm::ncsn::process(sigmas);
  auto exact_pm = dm::toy::PerturbedMixture(mixture, ve, dm::Prediction::score);
  // Energy distance to the blurred target p_{σ_L} (what the sampler aims at).
  const auto target_pl = exact_pm.at(sigmas.min());
  const auto ed_floor =
      dm::metrics::noise_floor([&](int64_t k) { return target_pl.sample(k, rng()); },
                               std::min<int64_t>(n, 2000), dm::metrics::energy_distance);
  m["energy_distance_noise_floor"] = {{"mean", ed_floor.mean}, {"std", ed_floor.std}};

  // The weight left of 0 after each level, for the figure.
  Vec level_axis;
  for (int i = 1; i <= sigmas.levels(); ++i) level_axis.push_back(double(i));
  struct Run {
    std::string name;
    Tensor x;
    Vec weight_by_level;
  };
  std::vector<Run> runs;
  auto annealed = [&](dm::Model& model, const std::string& name) {
    Run r{name, {}, {}};
    dm::RunOptions ro;
    ro.progress_label = name;
    ro.callback = [&](const dm::StepEvent& e) {
      r.weight_by_level.push_back(left_fraction(e.result.x));
    };
    // ANCHOR: toy_annealed
    // Start from the blurriest density, ≈ N(0, σ_1² I), and walk down the levels.
    auto x0 = sigmas.max() * torch::randn({n, 2}, torch::kFloat64);
    r.x = dm::ncsn::annealed_langevin(model, x0, sigmas, rng(), ao, ro);
    // ANCHOR_END: toy_annealed
    runs.push_back(r);
  };
  annealed(exact_pm, "annealed, exact score");

  // A learned s_θ(x, σ): a small MLP with a σ input, trained with the NCSN loss on fresh samples.
  dm::nn::MLPConfig mc;
  mc.hidden = 128;
  mc.layers = 3;
  mc.time_dim = 32;
  dm::nn::ScoreMLP net(mc);
  std::cout << "  " << dm::nn::describe(net) << "\n";
  dm::train::TrainConfig tc;
  tc.steps = sz.toy_train_steps;
  tc.lr = 2e-3;
  tc.warmup = 100;
  tc.ema_decay = 0.995;
  tc.log_every = 50;
  tc.checkpoint_every = tc.steps;
  nlohmann::json toy_json = dm::nn::to_json(mc);
  toy_json["sigmas"] = sigmas.values;
  const auto spec = dm::nn::NetSpec::ncsn(sigmas.max(), sigmas.min());
  toy_json["net"] = spec.to_json();
  dm::train::Trainer trainer(net.ptr(), toy_json, tc, torch::kCPU);
  // ANCHOR: train_toy
  // s_θ(x, σ) = −ε_θ(x, σ)/σ: the net predicts ε from x/√(1+σ²) and a log-σ label (NetSpec::ncsn).
  dm::nn::NetModel learned(net, spec, ve);
  auto result = trainer.run(
      [&](int64_t) {
        auto x0 = mixture.sample(512, rng()).to(torch::kFloat32);
        return dm::ncsn::loss(learned, sigmas, x0,
                              rng());  // a random level per row: ‖ε_θ(x + σ_i ε, σ_i) − ε‖²
      },
      /*checkpoint=*/{}, false, {}, "train s_θ(x, σ)");
  // ANCHOR_END: train_toy
  {
    dm::nn::UseEmaWeights ema(trainer.ema(), *net);
    net->eval();
    annealed(learned, "annealed, learned score");
  }

  // Single-σ Langevin: the score of p_{σ_L} only, as many steps in all, with the
  // smallest step α_L and with 0.25 (the modes' variance: about the largest stable step).
  const double alpha_l = dm::ncsn::step_size(sigmas, sigmas.levels() - 1, ao.step_lr);
  for (double dt : {alpha_l, 0.25}) {
    Run r{dt == alpha_l ? "single σ = σ_L, step α_L" : "single σ = σ_L, step 0.25", {}, {}};
    auto p_sl = target_pl;
    r.x = dm::langevin::ula(
        p_sl, sigmas.max() * torch::randn({n, 2}, torch::kFloat64), dt,
        sigmas.levels() * ao.steps_per_level, rng(), 1.0,
        [&](int64_t k, const Tensor& x) {
          if (k % ao.steps_per_level == 0) r.weight_by_level.push_back(left_fraction(x));
        },
        r.name);
    runs.push_back(r);
  }

  const std::vector<std::string> keys = {"annealed_exact", "annealed_learned", "single_sigma",
                                         "single_sigma_big_step"};
  for (size_t i = 0; i < runs.size(); ++i) {
    const double w = left_fraction(runs[i].x);
    const double ed = dm::metrics::energy_distance(runs[i].x, target_pl.sample(n, rng()));
    std::printf(
        "  %-32s weight left %.4f (exact 0.8, floor ±%.4f), error %.4f; energy distance %.4f "
        "(floor %.4f)\n",
        runs[i].name.c_str(), w, floor, std::abs(w - target), ed, ed_floor.mean);
    m[keys[i]] = {{"left_weight", w},
                  {"weight_error", std::abs(w - target)},
                  {"energy_distance", ed},
                  {"weight_by_level", runs[i].weight_by_level}};
  }
  m["learned_loss_first"] = result.losses.front();
  m["learned_loss_last"] = result.losses.back();

  dm::plot::Figure fig(1, 4, 1800, 430);
  auto scatter = [&](int i, const std::string& title, const Tensor& x) {
    fig.ax(i).title(title).equal_aspect().xrange(-5.5, 5.5).yrange(-5.5, 5.5).points(
        col(x, 0), col(x, 1), "", {dm::plot::color(i), 1, 0.3, 0.6});
  };
  scatter(0, "exact samples (0.8 left, 0.2 right)", mixture.sample(n, rng()));
  scatter(1, "annealed Langevin, exact score", runs[0].x);
  scatter(2, "annealed Langevin, learned s_θ(x, σ)", runs[1].x);
  scatter(3, "single-σ Langevin (σ_L), same steps", runs[2].x);
  fig.save(ch.out("toy_samples"));
  metrics.figure("toy_samples.svg");

  // The annealed sampler's own error: more steps per level, closer to the exact weight.
  Vec Ts = {3, 10, 30, 100, 300}, sweep_error;
  for (double T : Ts) {
    auto o = ao;
    o.steps_per_level = int64_t(T);
    auto x = dm::ncsn::annealed_langevin(
        exact_pm, sigmas.max() * torch::randn({n, 2}, torch::kFloat64), sigmas, rng(), o);
    sweep_error.push_back(std::abs(left_fraction(x) - target));
    std::printf("  exact score, T = %3d: weight error %.4f\n", int(T), sweep_error.back());
  }
  m["exact_T_sweep"] = {{"T", Ts}, {"weight_error", sweep_error}};

  dm::plot::Figure wfig(1, 2, 1600, 440);
  wfig.ax(1)
      .title("annealed Langevin, exact score: weight error vs steps per level")
      .xlabel("T (Langevin steps at each of the 10 levels)")
      .ylabel("|weight left − 0.8|")
      .logx()
      .logy()
      .linepoints(Ts, sweep_error, "weight error")
      .hline(floor, "binomial floor", {"#777777", 1.5, 0.4, 1.0, true});
  auto& ax = wfig.ax(0)
                 .title("weight of the left mode after each block of 100 steps")
                 .xlabel("level i (annealed) / steps ÷ 100 (single σ)")
                 .ylabel("fraction of chains with x_1 < 0")
                 .yrange(0.4, 0.9);
  for (size_t i = 0; i < runs.size(); ++i)
    ax.linepoints(level_axis, runs[i].weight_by_level, runs[i].name, {dm::plot::color(int(i))});
  ax.hline(target, "exact 0.8", {"#777777", 1.5, 0.4, 1.0, true});
  wfig.save(ch.out("toy_weights"));
  metrics.figure("toy_weights.svg");
  torch::set_num_threads(threads);
}

// ---------------------------------------------------------------------------
// 2. The noising chain: a discretised VE SDE
// ---------------------------------------------------------------------------
void ve_chain_check(const dm::Chapter& ch, const Sizes& sz, dm::MetricsFile& metrics) {
  std::cout << "\n[2/6] NCSN's noising as a Markov chain (a forward look at chapter 05)\n";
  const auto mixture = two_modes();
  const int64_t n = sz.toy_chains;
  auto sigmas = dm::ncsn::geometric(6.0, 0.1, 10).values;
  std::reverse(sigmas.begin(), sigmas.end());  // ascending: σ_L, …, σ_1
  const auto x0 = mixture.sample(n, rng());
  // ANCHOR: ve_chain_use
  // The forward kernel of VE between neighbouring levels: x_k = x_{k−1} + √(σ_k² − σ_{k−1}²) z_k.
  const dm::SigmaVE ve(sigmas.back());
  std::vector<Tensor> chain = {x0};
  double previous = 0.0;
  for (double sigma : sigmas) {
    chain.push_back(dm::forward_kernel(ve, chain.back(), previous, sigma, rng()));
    previous = sigma;
  }
  // ANCHOR_END: ve_chain_use
  Vec std_x, std_y, ed, ed_floor;
  auto& m = metrics["ve_chain"];
  std::printf("  %8s %12s %12s %14s %14s\n", "σ_k", "std(x_k−x_0)", "", "energy dist.", "floor");
  for (size_t k = 0; k < sigmas.size(); ++k) {
    const auto diff = chain[k + 1] - x0;  // should be σ_k z, z ~ N(0, I), for each coordinate
    std_x.push_back(diff.select(1, 0).std().item<double>());
    std_y.push_back(diff.select(1, 1).std().item<double>());
    // Against independent draws of x_0 + σ_k z (the closed-form marginal):
    const auto direct =
        mixture.sample(n, rng()) + sigmas[k] * torch::randn({n, 2}, torch::kFloat64);
    ed.push_back(dm::metrics::energy_distance(chain[k + 1], direct));
    auto fl = dm::metrics::noise_floor(
        [&](int64_t j) {
          return mixture.sample(j, rng()) + sigmas[k] * torch::randn({j, 2}, torch::kFloat64);
        },
        n, dm::metrics::energy_distance, 5);
    ed_floor.push_back(fl.mean + 3 * fl.std);
    std::printf("  %8.3f %12.4f %12.4f %14.5f %14.5f\n", sigmas[k], std_x.back(), std_y.back(),
                ed.back(), ed_floor.back());
  }
  m["sigmas"] = sigmas;
  m["std_x"] = std_x;
  m["std_y"] = std_y;
  m["energy_distance"] = ed;
  m["energy_distance_floor_mean_plus_3std"] = ed_floor;
  dm::plot::Figure fig(1, 2, 1400, 440);
  fig.ax(0)
      .title("std of x_k − x_0 along the chain vs σ_k")
      .xlabel("σ_k")
      .ylabel("std")
      .logx()
      .logy()
      .line(sigmas, sigmas, "σ_k (the closed form)", {"#777777", 1.5, 0.4, 1.0, true})
      .points(sigmas, std_x, "coordinate 1", {dm::plot::color(0), 2, 1.0, 1.0})
      .points(sigmas, std_y, "coordinate 2", {dm::plot::color(1), 2, 1.0, 1.0});
  fig.ax(1)
      .title("energy distance: chain vs x_0 + σ_k z")
      .xlabel("σ_k")
      .logx()
      .linepoints(sigmas, ed, "chain vs closed form")
      .line(sigmas, ed_floor, "noise floor (mean + 3 std)", {"#777777", 1.5, 0.4, 1.0, true});
  fig.save(ch.out("ve_chain"));
  metrics.figure("ve_chain.svg");
}

// ---------------------------------------------------------------------------
// 3. Images: how far apart are they, and what do the levels look like?
// ---------------------------------------------------------------------------
void image_levels(const dm::Chapter& ch, const Sizes& sz, const dm::data::Dataset& data,
                  const dm::ncsn::Sigmas& sigmas, dm::MetricsFile& metrics) {
  std::cout << "\n[3/6] Fashion-MNIST: distances between images and the noise levels\n";
  const int64_t n = std::min<int64_t>(sz.distance_images, data.images.size(0));
  // ANCHOR: pairwise
  const auto flat = data.images.slice(0, 0, n).reshape({n, -1}).to(torch::kFloat64);
  const auto d = torch::cdist(flat, flat);  // ‖x_i − x_j‖ for all pairs
  const double largest = d.max().item<double>();
  // ANCHOR_END: pairwise
  const double median = d.flatten().median().item<double>();
  std::printf(
      "  %lld images (%lld dimensions): largest pairwise distance %.1f, median %.1f; σ_1 = %.0f\n",
      (long long)n, (long long)flat.size(1), largest, median, sigmas.max());
  metrics["images"] = {{"distance_images", n},
                       {"largest_pairwise_distance", largest},
                       {"median_pairwise_distance", median},
                       {"sigma_max", sigmas.max()},
                       {"sigma_min", sigmas.min()},
                       {"levels", sigmas.levels()},
                       {"gamma", sigmas.levels() > 1 ? sigmas.values[0] / sigmas.values[1] : 1.0}};
  // One image at ten of the levels (the same z throughout), shown clipped to [−1, 1].
  const auto x0 = data.images.slice(0, 0, 1).to(torch::kFloat64);
  const auto z = torch::randn_like(x0);
  std::vector<Tensor> frames = {x0};
  Vec shown;
  for (int j = 0; j < 9; ++j) {
    const int i = sigmas.levels() - 1 - int(double(j) * double(sigmas.levels() - 1) / 8.0);
    shown.push_back(sigmas.values[i]);
    frames.push_back(x0 + sigmas.values[i] * z);
  }
  dm::image::save_grid(enlarge(torch::cat(frames).clamp(-1, 1)), ch.out("noise_levels.png"),
                       int(frames.size()));
  metrics.figure("noise_levels.png");
  metrics["images"]["strip_sigmas"] = shown;
}

// ---------------------------------------------------------------------------
// 4. The U-Net as s_θ(x, σ)
// ---------------------------------------------------------------------------
dm::nn::UNetConfig unet_config(bool tiny) {
  dm::nn::UNetConfig c;  // the default of chapter 04: base 16, mults 1-2-4-4, attention at 8×8
  if (tiny) {            // --quick --train
    c.channel_mults = {1, 2};
    c.attention_resolutions = {};
  }
  return c;
}

nlohmann::json image_model_json(const dm::nn::UNetConfig& config, const dm::ncsn::Sigmas& sigmas) {
  nlohmann::json j = dm::nn::to_json(config);
  j["model"] = "ncsn";
  j["sigma_max"] = sigmas.max();
  j["sigma_min"] = sigmas.min();
  j["levels"] = sigmas.levels();
  j["input_scaling"] = "1/sqrt(1+sigma^2)";
  j["net"] = dm::nn::NetSpec::ncsn(sigmas.max(), sigmas.min()).to_json();
  return j;
}

// ANCHOR: get_unet
dm::app::TrainedImageModel get_unet(const dm::Chapter& ch, const Options& o, const Sizes& sz,
                                    const dm::data::Dataset& train_set,
                                    const dm::ncsn::Sigmas& sigmas, dm::MetricsFile& metrics) {
  const auto& opt = ch.options();
  dm::app::ImageModel m;
  m.config = unet_config(opt.quick && o.training.train);
  m.description = image_model_json(m.config, sigmas);
  // ε_θ(x̃, σ) from x̃/√(1+σ²) (variance ≈ 1 at every level: a VE sample rescaled
  // to a VP one, EDM's c_in) and the label log σ spread over 0…999.
  m.spec = dm::nn::NetSpec::ncsn(sigmas.max(), sigmas.min());
  m.process = std::make_shared<dm::SigmaVE>(dm::ncsn::process(sigmas));
  m.checkpoint = o.training.checkpoint;
  m.export_name = "ncsn_fashion.pt";
  m.training_title = "training the U-Net as s_θ(x, σ) (σ²-weighted denoising score matching)";
  auto t = dm::app::image_training(o.training, sz.image_train_steps, sz.batch);
  t.checkpoint_every = 250;
  t.grid_every = opt.quick ? 0 : 2000;
  auto gen = dm::default_generator(opt.device);
  t.loss = [sigmas, gen](dm::Model& model, const Tensor& x0) mutable {
    return dm::ncsn::loss(model, sigmas, x0, gen);  // ‖ε_θ(x + σ_i ε, σ_i) − ε‖², i ~ Uniform{1…L}
  };
  // A look during training: 16 samples from the EMA weights. Early on they lag
  // behind the raw weights: after k steps the EMA still holds e^{−k/1000} of
  // the initial net, whose zero last layer predicts ε̂ = 0 — a score too weak
  // to pull the chains in, so they end noisy.
  t.preview = [&](dm::Model& model) {
    dm::ncsn::AnnealedOptions ao;
    ao.steps_per_level = sz.steps_per_level;
    ao.step_lr = dm::ncsn::step_lr_for(sigmas, ao.steps_per_level);
    ao.denoise = true;
    auto g = dm::make_generator(1234);
    auto x0 = sigmas.max() * torch::randn({16, 1, 32, 32}, g).to(opt.device);
    return dm::ncsn::annealed_langevin(model, x0, sigmas, g, ao);
  };
  std::cout << "\n[4/6] the U-Net as s_θ(x, σ): "
            << (o.training.train ? "training" : "shipped weights") << "\n";
  return dm::app::load_or_train(ch, m, t, train_set, metrics);
}
// ANCHOR_END: get_unet

// ---------------------------------------------------------------------------
// 5. Annealed Langevin on images and 6. quality
// ---------------------------------------------------------------------------
void sample_and_measure(const dm::Chapter& ch, const Options& o, const Sizes& sz,
                        dm::app::TrainedImageModel& unet, const dm::data::Dataset& train_set,
                        const dm::data::Dataset& test_set, const dm::ncsn::Sigmas& train_sigmas,
                        dm::MetricsFile& metrics) {
  const auto& opt = ch.options();
  // The sampler's levels: the training range, with as many levels as asked for.
  const int levels = int(o.sample_levels > 0 ? o.sample_levels : sz.sample_levels);
  const auto sigmas = dm::ncsn::geometric(train_sigmas.max(), train_sigmas.min(), levels);
  dm::ncsn::AnnealedOptions ao;
  ao.steps_per_level = o.steps_per_level > 0 ? o.steps_per_level : sz.steps_per_level;
  ao.step_lr = o.step_lr > 0 ? o.step_lr : dm::ncsn::step_lr_for(sigmas, ao.steps_per_level);
  ao.denoise = true;
  const double gamma = levels > 1 ? sigmas.values[0] / sigmas.values[1] : 1.0;
  const double ratio = dm::ncsn::variance_ratio_after(ao.step_lr / (sigmas.min() * sigmas.min()),
                                                      gamma, ao.steps_per_level);
  std::printf(
      "\n[5/6] annealed Langevin: %d levels × T = %lld steps, ε = %.3g (γ = %.3f: each level ends "
      "at "
      "variance %.3f σ_i² for one data point)\n",
      levels, (long long)ao.steps_per_level, ao.step_lr, gamma, ratio);
  dm::Model& model = *unet.model;  // trained on train_sigmas; any σ in their range works
  const dm::SigmaVE ve = dm::ncsn::process(train_sigmas);
  // ANCHOR: sample_images
  // Snapshots of 8 chains at the end of 9 levels spread over the schedule.
  std::vector<int> shown;
  for (int j = 0; j < 9; ++j) shown.push_back(int(double(j) * double(levels - 1) / 8.0));
  std::vector<Tensor> strip;
  dm::RunOptions ro;
  ro.progress_label = "annealed Langevin";
  ro.callback = [&](const dm::StepEvent& e) {  // after level e.index
    if (std::find(shown.begin(), shown.end(), int(e.index)) != shown.end())
      strip.push_back(e.result.x.slice(0, 0, 8).to(torch::kCPU));
  };
  auto langevin_only = ao;
  langevin_only.denoise = false;  // the last level's state goes into the strip, then Tweedie below
  const int64_t n = std::max<int64_t>(sz.fid_samples, 64);
  auto gen = dm::default_generator(opt.device);
  const auto samples =
      dm::app::sample_in_batches(n, 128, [&](int64_t b, int64_t first) {
        if (first > 0) ro.callback = nullptr;  // the strip comes from the first batch
        auto x0 =
            sigmas.max() * torch::randn({b, 1, 32, 32}, torch::TensorOptions().device(opt.device));
        auto x = dm::ncsn::annealed_langevin(model, x0, sigmas, gen, langevin_only, ro);
        // The final denoising step: Tweedie's E[x_0 | x̃] = x̃ + σ_L² ∇log p_{σ_L}(x̃), the model's x̂_0.
        c10::InferenceMode inference;
        return dm::predict_as(dm::Prediction::x0, model, ve, x, sigmas.min());
      }).clamp(-1, 1);
  // ANCHOR_END: sample_images
  dm::image::save_grid(enlarge(samples.slice(0, 0, 64), 2), ch.out("samples.png"), 8);
  metrics.figure("samples.png");
  if (!strip.empty()) {
    strip.push_back(samples.slice(0, 0, 8));  // and after the final denoising step
    auto rows = torch::stack(strip, 1).reshape({-1, 1, 32, 32});
    dm::image::save_grid(enlarge(rows.clamp(-1, 1)), ch.out("annealing_strip.png"),
                         int(strip.size()));
    metrics.figure("annealing_strip.png");
  }
  Vec strip_sigmas;
  for (int i : shown) strip_sigmas.push_back(sigmas.values[i]);

  std::cout << "\n[6/6] quality: Fréchet distance in a Fashion-MNIST classifier's feature space\n";
  const auto report =
      dm::quality::report_samples(samples, train_set.images, test_set.images, opt.device);
  dm::app::plot_class_fractions(report, ch.out("class_histogram"));
  metrics.figure("class_histogram.svg");
  metrics["sampler"] = {{"levels", levels},
                        {"steps_per_level", ao.steps_per_level},
                        {"step_lr", ao.step_lr},
                        {"gamma", gamma},
                        {"variance_ratio_single_point", ratio},
                        {"denoise", ao.denoise},
                        {"strip_sigmas", strip_sigmas}};
  metrics["quality"] = report.to_json();
  metrics["quality"]["network_evaluations"] = levels * ao.steps_per_level + 1;
  metrics["quality"]["model"] = unet.source;
}

}  // namespace

int main(int argc, char** argv) {
  return dm::run_main([&] {
    dm::Chapter chapter(
        "03_ncsn", "Chapter 03: NCSN — noise-conditional scores and annealed Langevin dynamics", 2);
    Options o;
    auto& app = chapter.app();
    dm::app::add_training_flags(app, o.training, "ncsn_fashion.pt");
    app.add_option("--samples", o.samples,
                   "samples drawn for the grid and the quality report (default 128; --quick 64)")
        ->check(dm::whole_number(2, 1000000));
    app.add_option("--levels", o.sample_levels,
                   "noise levels of the image sampler (default 100; --quick 20)")
        ->check(dm::whole_number(1, 100000));
    app.add_option("--steps-per-level", o.steps_per_level,
                   "Langevin steps T at each level (default 10; --quick 5)")
        ->check(dm::whole_number(1, 100000));
    app.add_option("--step-lr", o.step_lr,
                   "ε, the step at the last level (default: the variance rule of the book)")
        ->check(CLI::PositiveNumber);
    const auto& opt = chapter.parse(argc, argv);
    dm::plot::require_gnuplot();
    Sizes sz = sizes_for(opt.quick);
    if (o.samples > 0) sz.fid_samples = o.samples;
    dm::MetricsFile metrics(chapter);

    // Fail fast: the dataset and a shipped checkpoint are checked before any work.
    const auto train_set =
        dm::data::load_fashion_mnist(dm::data::Split::train, opt.data, opt.quick ? 2000 : -1);
    const auto test_set =
        dm::data::load_fashion_mnist(dm::data::Split::test, opt.data, opt.quick ? 1000 : -1);
    const auto sigmas = dm::ncsn::geometric(kImageSigmaMax, kImageSigmaMin, kImageLevels);
    dm::app::require_before_work(chapter, o.training, image_model_json(unet_config(false), sigmas));
    dm::quality::load_classifier(dm::train::checkpoints_dir() / "fashion_classifier.pt",
                                 torch::kCPU);
    chapter.begin_work();  // the checks passed: an earlier run's results move aside

    toy_2d(chapter, sz, metrics);
    ve_chain_check(chapter, sz, metrics);
    image_levels(chapter, sz, train_set, sigmas, metrics);
    auto unet = get_unet(chapter, o, sz, train_set, sigmas, metrics);
    sample_and_measure(chapter, o, sz, unet, train_set, test_set, sigmas, metrics);

    const auto path = metrics.write();
    std::cout << "\nfigures and metrics written to " << opt.out.string() << "/ ("
              << path.filename().string() << ", " << metrics.data()["figures"].size()
              << " figures)\n";
  });
}
