// Chapter 04 — Denoising diffusion probabilistic models (DDPM).
//
// A fixed forward process adds a little Gaussian noise at each of T steps,
//     q(x_t | x_{t−1}) = N(√(1−β_t) x_{t−1}, β_t I),
// so that x_T is (almost) pure noise; its marginals have a closed form
//     q(x_t | x_0) = N(√ᾱ_t x_0, (1−ᾱ_t) I),   ᾱ_t = Π_{s≤t} (1−β_s).
// A network ε_θ(x_t, t) learns the noise that was added (Algorithm 1); the
// reverse chain then walks from noise back to data one Gaussian step at a
// time using the posterior q(x_{t−1} | x_t, x_0) with x_0 estimated from ε_θ
// (Algorithm 2, ancestral sampling).
//
// The chapter runs, in order:
//   1. the schedules: β_t and ᾱ_t, linear and cosine;
//   2. 2D: the sampler driven by the exact ε of a Gaussian mixture (its floor:
//      T = 1000 and a short schedule), then by a small MLP trained on samples;
//   3. Fashion-MNIST: one image noised over t;
//   4. the U-Net: loaded from the shipped checkpoint (or trained: --train; a
//      tiny one with --quick), the loss curve, sample grids during training;
//   5. sampling: a grid of samples and the denoising strip;
//   6. quality: the Fréchet distance in a Fashion-MNIST classifier's feature
//      space against its floor, and the class histogram of the samples.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>

#include "dm/app/cli.hpp"
#include "dm/app/image_chapter.hpp"
#include "dm/base/rng.hpp"
#include "dm/data/fashion.hpp"
#include "dm/methods/ddpm.hpp"
#include "dm/app/image.hpp"
#include "dm/app/metrics_file.hpp"
#include "dm/data/metrics.hpp"
#include "dm/nn/net_model.hpp"
#include "dm/nn/networks.hpp"
#include "dm/app/plot.hpp"
#include "dm/data/quality.hpp"
#include "dm/diffusion/schedule.hpp"
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
  dm::app::TrainingFlags training;  // --train, --resume, --steps, --checkpoint, …
  bool clip = false;
  int64_t samples = 0;       // samples for the Fréchet distance (0: default)
  int64_t sample_steps = 0;  // ancestral steps on a respaced grid (0: the run size's default)
  std::string schedule = "linear", variance = "fixedlarge";
};

// Sizes: the defaults make the book's figures; --quick is the CI size. A quick
// run samples the shipped model with fewer steps (100 of its 1000, respaced)
// and draws fewer samples; only --quick --train trains a tiny U-Net on a
// T = 100 schedule. sample_steps 0: every step of the schedule.
struct Sizes {
  int64_t toy_samples, toy_train_steps, image_train_steps, batch, fid_samples, T, sample_steps;
};
Sizes sizes_for(bool quick, bool train) {
  if (quick && train) return {1000, 1500, 300, 16, 64, 100, 0};
  if (quick) return {1000, 1500, 300, 16, 64, 1000, 100};
  return {2000, 6000, 20000, 64, 128, 1000, 0};
}

dm::schedule::Schedule make_schedule(const std::string& name, int64_t T) {
  if (name == "cosine") return dm::schedule::cosine(T);
  return T == 1000 ? dm::schedule::linear(T) : dm::schedule::linear_rescaled(T);
}

// The ancestral sampler's options; `steps` < T respaces the grid (improved
// DDPM's respacing: the variances follow the grid, dm/methods/ddpm.hpp).
dm::ddpm::SampleOptions sample_options(const Options& o, const std::string& label, int64_t T = 0,
                                       int64_t steps = 0) {
  dm::ddpm::SampleOptions s;
  s.variance =
      o.variance == "fixedsmall" ? dm::ddpm::Variance::fixedsmall : dm::ddpm::Variance::fixedlarge;
  s.clip_x0 = o.clip;
  if (steps > 0 && steps < T) s.grid = dm::respaced_grid(T, steps);
  s.run.progress_label = label;
  return s;
}

using dm::app::enlarge;

// ---------------------------------------------------------------------------
// 1. The schedules
// ---------------------------------------------------------------------------
void plot_schedules(const dm::Chapter& ch, dm::MetricsFile& metrics) {
  std::cout << "\n[1/6] noise schedules (T = 1000)\n";
  const auto lin = dm::schedule::linear(1000), cos = dm::schedule::cosine(1000);
  Vec t(1000);
  for (int i = 0; i < 1000; ++i) t[i] = i + 1;
  dm::plot::Figure fig(1, 3, 1500, 420);
  fig.ax(0)
      .title("β_t")
      .xlabel("step t")
      .logy()
      .line(t, dm::plot::to_vec(lin.betas), "linear")
      .line(t, dm::plot::to_vec(cos.betas), "cosine");
  fig.ax(1)
      .title("ᾱ_t: the signal variance left in x_t")
      .xlabel("step t")
      .yrange(0, 1)
      .line(t, dm::plot::to_vec(lin.alpha_bar), "linear")
      .line(t, dm::plot::to_vec(cos.alpha_bar), "cosine");
  auto snr = [](const dm::schedule::Schedule& s) {
    return dm::plot::to_vec(s.alpha_bar / (1 - s.alpha_bar));
  };
  fig.ax(2)
      .title("signal-to-noise ratio ᾱ_t / (1 − ᾱ_t)")
      .xlabel("step t")
      .logy()
      .line(t, snr(lin), "linear")
      .line(t, snr(cos), "cosine");
  fig.save(ch.out("schedules"));
  metrics.figure("schedules.svg");
  metrics["schedules"] = {{"linear_alpha_bar_T", lin.alpha_bar[-1].item<double>()},
                          {"cosine_alpha_bar_T", cos.alpha_bar[-1].item<double>()}};
  std::printf("  ᾱ_T: linear %.2e, cosine %.2e\n", lin.alpha_bar[-1].item<double>(),
              cos.alpha_bar[-1].item<double>());
}

// ---------------------------------------------------------------------------
// 2. Two dimensions: the exact ε first, then a learned one
// ---------------------------------------------------------------------------
dm::toy::GaussianMixture toy_mixture() {
  // Six modes on a ring plus one in the centre, unequal weights: the sampler must get them right.
  auto ring = dm::toy::ring_mixture(6, 2.0, 0.25);
  auto means = torch::cat({ring.means(), torch::zeros({1, 2}, torch::kFloat64)});
  auto covs = torch::cat({ring.covs(), 0.05 * torch::eye(2, torch::kFloat64).unsqueeze(0)});
  auto w = torch::tensor({0.2, 0.1, 0.2, 0.1, 0.2, 0.1, 0.1}, torch::kFloat64);
  return dm::toy::GaussianMixture(w, means, covs);
}

void toy_2d(const dm::Chapter& ch, const Options& o, const Sizes& sz, dm::MetricsFile& metrics) {
  std::cout << "\n[2/6] 2D: DDPM with the exact ε of a mixture, then with a learned ε\n";
  // Tiny 2D batches: one thread is fastest (a second one only adds synchronisation).
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  auto mixture = toy_mixture();
  const int64_t n = sz.toy_samples;
  auto floor = dm::metrics::noise_floor([&](int64_t m) { return mixture.sample(m, rng()); }, n,
                                        dm::metrics::energy_distance);
  auto& m = metrics["toy_2d"];
  m["samples"] = n;
  m["energy_distance_noise_floor"] = {
      {"mean", floor.mean}, {"std", floor.std}, {"repeats", floor.repeats}};

  // ANCHOR: exact_eps
  // The mixture pushed through q(x_t | x_0) is still a mixture, so its exact ε at
  // every step is known: the sampler's own error, separate from any network's.
  std::map<std::string, Tensor> shown;
  for (int64_t T : {int64_t(1000), int64_t(100)}) {
    const auto sched = make_schedule(o.schedule, T);
    dm::toy::PerturbedMixture exact(mixture, sched, dm::Prediction::eps);
    auto x = dm::ddpm::sample(exact, sched, {n, 2}, rng(),
                              sample_options(o, "exact ε, T=" + std::to_string(T)));
    // ANCHOR_END: exact_eps
    const double ed = dm::metrics::energy_distance(x, mixture.sample(n, rng()));
    std::printf("  exact ε, T = %4lld: energy distance %.5f (floor %.5f ± %.5f)\n", (long long)T,
                ed, floor.mean, floor.std);
    m["exact_eps_T" + std::to_string(T)] = ed;
    shown["exact, T = " + std::to_string(T)] = x;
  }

  // A small MLP learns ε from fresh mixture samples at every step (infinite data).
  const auto sched = make_schedule(o.schedule, 1000);
  dm::nn::MLPConfig mc;
  mc.hidden = 128;
  mc.layers = 3;
  dm::nn::ScoreMLP net(mc);
  std::cout << "  " << dm::nn::describe(net) << "\n";
  dm::train::TrainConfig tc;
  tc.steps = sz.toy_train_steps;
  tc.lr = 2e-3;
  tc.warmup = 100;
  tc.ema_decay = 0.995;
  tc.log_every = 50;
  tc.checkpoint_every = tc.steps;
  dm::train::Trainer trainer(net.ptr(), dm::nn::to_json(mc), tc, torch::kCPU);
  // ANCHOR: train_toy
  // The MLP behind the seam: it predicts ε and sees DDPM's 0-based index t − 1 as its label.
  dm::nn::NetModel learned(net, dm::nn::NetSpec::ddpm(), sched);
  auto result = trainer.run(
      [&](int64_t) {
        auto x0 = mixture.sample(512, rng()).to(torch::kFloat32);
        return dm::ddpm::loss_eps(learned, sched, x0,
                                  rng());  // Algorithm 1: ‖ε − ε_θ(√ᾱ_t x0 + √(1−ᾱ_t) ε, t)‖²
      },
      /*checkpoint=*/{}, false, {}, "train MLP");
  // ANCHOR_END: train_toy
  net->eval();
  // The raw weights of the last step, then their EMA (warmed up: see TrainConfig::ema_warmup).
  auto x_raw = dm::ddpm::sample(learned, sched, {n, 2}, rng(), sample_options(o, "learned ε, raw"),
                                torch::kFloat32);
  const double ed_raw =
      dm::metrics::energy_distance(x_raw.to(torch::kFloat64), mixture.sample(n, rng()));
  dm::nn::UseEmaWeights ema(trainer.ema(), *net);
  auto x_learned = dm::ddpm::sample(learned, sched, {n, 2}, rng(), sample_options(o, "learned ε"),
                                    torch::kFloat32);
  const double ed_learned =
      dm::metrics::energy_distance(x_learned.to(torch::kFloat64), mixture.sample(n, rng()));
  std::printf(
      "  learned ε (%lld steps): energy distance %.5f with the EMA weights, %.5f with the raw "
      "weights (floor %.5f ± %.5f)\n",
      (long long)tc.steps, ed_learned, ed_raw, floor.mean, floor.std);
  m["learned_eps"] = ed_learned;
  m["learned_eps_raw_weights"] = ed_raw;
  m["ema_decay"] = tc.ema_decay;
  m["ema_warmup"] = tc.ema_warmup;
  m["train_steps"] = tc.steps;
  m["loss_first"] = result.losses.front();
  m["loss_last"] = result.losses.back();

  dm::plot::Figure fig(1, 4, 1600, 430);
  auto scatter = [&](int i, const std::string& title, const Tensor& x) {
    auto xd = x.to(torch::kFloat64);
    fig.ax(i).title(title).equal_aspect().xrange(-3.2, 3.2).yrange(-3.2, 3.2).points(
        dm::plot::to_vec(xd.select(1, 0)), dm::plot::to_vec(xd.select(1, 1)), "",
        {dm::plot::color(i), 1, 0.3, 0.6});
  };
  scatter(0, "exact samples", mixture.sample(n, rng()));
  scatter(1, "DDPM, exact ε, T = 1000", shown["exact, T = 1000"]);
  scatter(2, "DDPM, exact ε, T = 100", shown["exact, T = 100"]);
  scatter(3, "DDPM, learned ε (MLP)", x_learned);
  fig.save(ch.out("toy_samples"));
  metrics.figure("toy_samples.svg");
  torch::set_num_threads(threads);
}

// ---------------------------------------------------------------------------
// 3. One image through the forward process
// ---------------------------------------------------------------------------
void forward_strip(const dm::Chapter& ch, const dm::data::Dataset& data,
                   const dm::schedule::Schedule& sched, dm::MetricsFile& metrics) {
  std::cout << "\n[3/6] the forward process on one image\n";
  const auto x0 = data.images.slice(0, 0, 1).to(torch::kFloat64);
  std::vector<int64_t> steps;
  for (double f : {0.0, 0.02, 0.05, 0.1, 0.2, 0.35, 0.5, 0.7, 0.85, 1.0})
    steps.push_back(std::min<int64_t>(sched.T - 1, int64_t(f * double(sched.T - 1))));
  std::vector<Tensor> frames;
  auto eps = torch::randn_like(x0);
  for (int64_t s :
       steps)  // x_t = √ᾱ_t x_0 + √(1−ᾱ_t) ε at step t = s + 1, one ε for the whole strip
    frames.push_back(
        dm::marginal_sample(sched, x0, torch::full({1}, double(s + 1), torch::kFloat64), eps));
  dm::image::save_grid(enlarge(torch::cat(frames).clamp(-1, 1)), ch.out("forward_strip.png"),
                       int(frames.size()));
  metrics.figure("forward_strip.png");
  metrics["forward_strip_steps"] = steps;
}

// ---------------------------------------------------------------------------
// 4. The U-Net: shipped weights, or training
// ---------------------------------------------------------------------------
dm::nn::UNetConfig unet_config(bool tiny) {
  dm::nn::UNetConfig c;  // the default: base 16, mults 1-2-4-4, attention at 8×8
  if (tiny) {            // --quick --train
    c.base_channels = 16;
    c.channel_mults = {1, 2};
    c.attention_resolutions = {};
  }
  return c;
}

// The description stored with the weights: the network and the schedule it was trained for.
nlohmann::json image_model_json(const dm::nn::UNetConfig& config,
                                const dm::schedule::Schedule& sched) {
  nlohmann::json j = dm::nn::to_json(config);
  j["schedule"] = sched.label;
  j["T"] = sched.T;
  j["net"] = dm::nn::NetSpec::ddpm().to_json();  // how the net sees t (its label t − 1)
  return j;
}

// ANCHOR: get_unet
dm::app::TrainedImageModel get_unet(const dm::Chapter& ch, const Options& o, const Sizes& sz,
                                    const dm::data::Dataset& train_set,
                                    const dm::schedule::Schedule& sched, dm::MetricsFile& metrics) {
  const auto& opt = ch.options();
  dm::app::ImageModel m;
  m.config = unet_config(opt.quick && o.training.train);
  m.description = image_model_json(m.config, sched);
  m.spec = dm::nn::NetSpec::ddpm();  // ε-prediction, label t − 1 (the DDPM code's index)
  m.process = std::make_shared<dm::schedule::Schedule>(sched);
  m.checkpoint = o.training.checkpoint;
  m.export_name = "ddpm_fashion.pt";
  m.training_title = "training the U-Net (ε-prediction, Algorithm 1)";
  auto t = dm::app::image_training(o.training, sz.image_train_steps, sz.batch);
  t.checkpoint_every = 1000;
  t.grid_every = opt.quick
                     ? 0
                     : std::max<int64_t>(
                           (o.training.steps > 0 ? o.training.steps : sz.image_train_steps) / 5, 1);
  auto gen = dm::default_generator(opt.device);
  t.loss = [sched, gen](dm::Model& model, const Tensor& x0) mutable {
    return dm::ddpm::loss_eps(model, sched, x0, gen);  // ‖ε − ε_θ(√ᾱ_t x0 + √(1−ᾱ_t) ε, t)‖²
  };
  t.preview = [&](dm::Model& model) {  // the same 16 chains at every look: their own generator
    auto g = dm::make_generator(1234, opt.device);
    return dm::ddpm::sample(model, sched, {16, 1, 32, 32}, g, sample_options(o, ""),
                            torch::TensorOptions().device(opt.device));
  };
  std::cout << "\n[4/6] the U-Net: " << (o.training.train ? "training" : "shipped weights") << "\n";
  return dm::app::load_or_train(ch, m, t, train_set, metrics);
}
// ANCHOR_END: get_unet

// ---------------------------------------------------------------------------
// 5. Sampling and 6. quality
// ---------------------------------------------------------------------------
void sample_and_measure(const dm::Chapter& ch, const Options& o, const Sizes& sz,
                        dm::app::TrainedImageModel& unet, const dm::data::Dataset& train_set,
                        const dm::data::Dataset& test_set, const dm::schedule::Schedule& sched,
                        dm::MetricsFile& metrics) {
  const auto& opt = ch.options();
  const int64_t steps = o.sample_steps > 0
                            ? std::min(o.sample_steps, sched.T)
                            : (sz.sample_steps > 0 ? std::min(sz.sample_steps, sched.T) : sched.T);
  std::cout << "\n[5/6] ancestral sampling (Algorithm 2), " << steps << " steps"
            << (steps < sched.T ? " respaced over T = " + std::to_string(sched.T) : "") << "\n";
  dm::Model& model = *unet.model;
  const auto dev = torch::TensorOptions().device(opt.device);
  // The denoising strip: x_t and the network's x̂₀ after a few of the steps,
  // for 8 samples (on the full grid: at t = f·(T − 1) for these fractions f).
  std::vector<int64_t> shown_steps;
  for (double f : {1.0, 0.8, 0.6, 0.4, 0.3, 0.2, 0.1, 0.05, 0.0})
    shown_steps.push_back(steps - 1 - int64_t(f * double(steps - 1)));
  std::vector<Tensor> strip_x, strip_x0;
  // ANCHOR: sample_images
  auto options = sample_options(o, "sampling", sched.T, steps);
  options.run.callback = [&](const dm::StepEvent& e) {  // after step e.index (0-based)
    if (std::find(shown_steps.begin(), shown_steps.end(), e.index) != shown_steps.end()) {
      strip_x.push_back(e.result.x.slice(0, 0, 8).to(torch::kCPU));
      strip_x0.push_back(e.result.x0.slice(0, 0, 8).to(torch::kCPU));
    }
  };
  const int64_t n = std::max<int64_t>(sz.fid_samples, 64);
  auto gen = dm::default_generator(opt.device);
  // Batches of ≤ 128 (larger ones are slower per image on a CPU); the strip comes from the first.
  const auto samples = dm::app::sample_in_batches(n, 128, [&](int64_t b, int64_t first) {
                         if (first > 0) options.run.callback = nullptr;
                         return dm::ddpm::sample(model, sched, {b, 1, 32, 32}, gen, options, dev);
                       }).clamp(-1, 1);
  // ANCHOR_END: sample_images
  dm::image::save_grid(enlarge(samples.slice(0, 0, 64), 2), ch.out("samples.png"), 8);
  metrics.figure("samples.png");
  // Rows: the 8 samples; columns: x_t from t = T−1 (left) to 0, then the same for x̂₀.
  auto rows = [](const std::vector<Tensor>& frames) {
    return torch::stack(frames, 1).reshape({-1, 1, 32, 32});
  };
  if (!strip_x.empty()) {
    dm::image::save_grid(enlarge(rows(strip_x).clamp(-1, 1)), ch.out("denoising_strip.png"),
                         int(strip_x.size()));
    dm::image::save_grid(enlarge(rows(strip_x0).clamp(-1, 1)), ch.out("denoising_x0.png"),
                         int(strip_x0.size()));
    metrics.figure("denoising_strip.png");
    metrics.figure("denoising_x0.png");
  }

  std::cout << "\n[6/6] quality: Fréchet distance in a Fashion-MNIST classifier's feature space\n";
  const auto report =
      dm::quality::report_samples(samples, train_set.images, test_set.images, opt.device);
  dm::app::plot_class_fractions(report, ch.out("class_histogram"));
  metrics.figure("class_histogram.svg");
  metrics["quality"] = report.to_json();
  metrics["quality"]["steps"] = steps;
  metrics["quality"]["network_evaluations"] = steps;
  metrics["quality"]["schedule_T"] = sched.T;
  metrics["quality"]["model"] = unet.source;
}

}  // namespace

int main(int argc, char** argv) {
  return dm::run_main([&] {
    dm::Chapter chapter("04_ddpm",
                        "Chapter 04: DDPM — forward process, ε-prediction, ancestral sampling", 2);
    Options o;
    auto& app = chapter.app();
    dm::app::add_training_flags(app, o.training, "ddpm_fashion.pt");
    app.add_option("--samples", o.samples,
                   "samples drawn for the grid and the quality report (default 128; --quick 64)")
        ->check(dm::whole_number(2, 1000000));
    app.add_option("--sample-steps", o.sample_steps,
                   "ancestral steps, respaced over the schedule's T (default all T; --quick 100)")
        ->check(dm::whole_number(1, 100000));
    app.add_option("--schedule", o.schedule, "noise schedule")
        ->check(CLI::IsMember({"linear", "cosine"}));
    app.add_option("--variance", o.variance,
                   "reverse-step variance: β_t (fixedlarge) or β̃_t (fixedsmall)")
        ->check(CLI::IsMember({"fixedlarge", "fixedsmall"}));
    app.add_flag("--clip", o.clip,
                 "clip the predicted x̂₀ to [−1, 1] at every step (as the DDPM code does)");
    const auto& opt = chapter.parse(argc, argv);
    dm::plot::require_gnuplot();
    Sizes sz = sizes_for(opt.quick, o.training.train);
    if (o.samples > 0) sz.fid_samples = o.samples;
    dm::MetricsFile metrics(chapter);

    // Fail fast: the dataset and a shipped checkpoint are checked before any work.
    const auto train_set =
        dm::data::load_fashion_mnist(dm::data::Split::train, opt.data, opt.quick ? 2000 : -1);
    const auto test_set =
        dm::data::load_fashion_mnist(dm::data::Split::test, opt.data, opt.quick ? 1000 : -1);
    const auto sched = make_schedule(o.schedule, sz.T);
    dm::app::require_before_work(chapter, o.training, image_model_json(unet_config(false), sched));
    dm::quality::load_classifier(dm::train::checkpoints_dir() / "fashion_classifier.pt",
                                 torch::kCPU);
    chapter.begin_work();  // the checks passed: an earlier run's results move aside

    plot_schedules(chapter, metrics);
    toy_2d(chapter, o, sz, metrics);
    forward_strip(chapter, test_set, sched, metrics);
    const auto sched_on_device = sched.to(opt.device);
    auto unet = get_unet(chapter, o, sz, train_set, sched_on_device, metrics);
    sample_and_measure(chapter, o, sz, unet, train_set, test_set, sched_on_device, metrics);

    const auto path = metrics.write();
    std::cout << "\nfigures and metrics written to " << opt.out.string() << "/ ("
              << path.filename().string() << ", " << metrics.data()["figures"].size()
              << " figures)\n";
  });
}
