// ddpm.cpp — chapter 04 for notebooks: dm::schedule, dm::ddpm, the exact model
// dm::toy::PerturbedMixture, dm::nn::UNet with dm::train::Trainer and the
// shipped export behind plain types. Every algorithm stays in those layers.
#include "dm/notebook/ddpm.hpp"

#include <torch/torch.h>

#include <algorithm>
#include <filesystem>

#include "dm/app/image_chapter.hpp"
#include "dm/base/core.hpp"
#include "dm/data/fashion.hpp"
#include "dm/diffusion/schedule.hpp"
#include "dm/diffusion/step.hpp"
#include "dm/methods/ddpm.hpp"
#include "dm/nn/net_model.hpp"
#include "dm/nn/networks.hpp"
#include "dm/nn/train.hpp"
#include "internal.hpp"

namespace dm::nb::ddpm {

using namespace dm::nb::detail;
namespace lib = ::dm::ddpm;

struct Schedule::Impl {
  std::shared_ptr<const dm::schedule::Schedule> schedule;
  Vec betas, alphas, alpha_bar, alpha_bar_prev, posterior_variance;
};

struct UNet::Impl {
  dm::nn::UNet net{nullptr};
  dm::nn::UNetConfig config;
  dm::nn::NetSpec spec = dm::nn::NetSpec::ddpm();  // ε-prediction, label t − 1
};

namespace {

Schedule wrap(dm::schedule::Schedule s) {
  auto impl = std::make_shared<Schedule::Impl>();
  impl->betas = to_vec(s.betas);
  impl->alphas = to_vec(s.alphas);
  impl->alpha_bar = to_vec(s.alpha_bar);
  impl->alpha_bar_prev = to_vec(s.alpha_bar_prev);
  impl->posterior_variance = to_vec(s.posterior_variance);
  impl->schedule = std::make_shared<const dm::schedule::Schedule>(std::move(s));
  return Schedule(std::move(impl));
}

const dm::schedule::Schedule& unwrap(const Schedule& s) { return *s.impl->schedule; }
std::shared_ptr<const Process> process_of(const Schedule& s) { return s.impl->schedule; }

lib::Variance to_library(Variance v) {
  return v == Variance::fixedsmall ? lib::Variance::fixedsmall : lib::Variance::fixedlarge;
}

// The library's options; `steps` < T respaces the grid (dm::respaced_grid).
lib::SampleOptions to_library(const SampleOptions& o, int64_t T) {
  if (o.steps < 0 || o.steps > T)
    throw Error("ddpm::sample: steps = " + std::to_string(o.steps) +
                ", but the schedule has T = " + std::to_string(T) + " (0 means all of them)");
  lib::SampleOptions out;
  out.variance = to_library(o.variance);
  out.clip_x0 = o.clip_x0;
  if (o.steps > 0 && o.steps < T) out.grid = dm::respaced_grid(T, o.steps);
  return out;
}

torch::Tensor steps_tensor(const Schedule& s, const std::vector<int64_t>& t, int64_t rows) {
  if (static_cast<int64_t>(t.size()) != rows)
    throw Error("ddpm::q_sample: " + std::to_string(t.size()) + " steps for " +
                std::to_string(rows) + " rows: one step per row");
  for (int64_t v : t)
    if (v < 0 || v > s.T())
      throw Error("ddpm::q_sample: step " + std::to_string(v) +
                  " outside 0 … T = " + std::to_string(s.T()));
  return torch::tensor(t, torch::kLong);
}

dm::toy::PerturbedMixture exact_model(const Mixture& p, const Schedule& s) {
  return dm::toy::PerturbedMixture(dm::nb::detail::unwrap(p), process_of(s), Prediction::eps);
}

void check_points(const Mixture& p, const Points& x, const char* who) {
  if (x.cols() != p.dim())
    throw Error(std::string(who) + ": points of dimension " + std::to_string(x.cols()) +
                " for a mixture in " + std::to_string(p.dim()) + " dimensions");
}

dm::nn::NetModel model_of(const UNet& net, const Schedule& s) {
  return dm::nn::NetModel(net.impl->net, net.impl->spec, process_of(s));
}

}  // namespace

// ---------------------------------------------------------------- schedule

Schedule::Schedule(std::shared_ptr<const Impl> impl) : impl(std::move(impl)) {}

Schedule Schedule::linear(int64_t T, double beta_start, double beta_end) {
  return wrap(dm::schedule::linear(T, beta_start, beta_end));
}
Schedule Schedule::linear_rescaled(int64_t T) { return wrap(dm::schedule::linear_rescaled(T)); }
Schedule Schedule::cosine(int64_t T, double s, double max_beta) {
  return wrap(dm::schedule::cosine(T, s, max_beta));
}
Schedule Schedule::from_betas(const Vec& betas, const std::string& label) {
  return wrap(dm::schedule::Schedule::from_betas(to_tensor(betas), label));
}

int64_t Schedule::T() const { return impl->schedule->T; }
std::string Schedule::label() const { return impl->schedule->label; }
const Vec& Schedule::betas() const { return impl->betas; }
const Vec& Schedule::alphas() const { return impl->alphas; }
const Vec& Schedule::alpha_bar() const { return impl->alpha_bar; }
const Vec& Schedule::alpha_bar_prev() const { return impl->alpha_bar_prev; }
const Vec& Schedule::posterior_variance() const { return impl->posterior_variance; }

// ---------------------------------------------------------------- forward process

Points q_sample(const Schedule& s, const Points& x0, const std::vector<int64_t>& t,
                const Points& eps) {
  if (eps.rows() != x0.rows() || eps.cols() != x0.cols())
    throw Error("ddpm::q_sample: ε is [" + std::to_string(eps.rows()) + ", " +
                std::to_string(eps.cols()) + "], x0 is [" + std::to_string(x0.rows()) + ", " +
                std::to_string(x0.cols()) + "]");
  return to_points(
      dm::marginal_sample(unwrap(s), to_tensor(x0), steps_tensor(s, t, x0.rows()), to_tensor(eps)));
}

Images q_sample(const Schedule& s, const Images& x0, const std::vector<int64_t>& t,
                const Images& eps) {
  if (eps.count != x0.count || eps.pixels() != x0.pixels())
    throw Error("ddpm::q_sample: ε holds " + std::to_string(eps.count) + " images of " +
                std::to_string(eps.pixels()) + " values, x0 " + std::to_string(x0.count) + " of " +
                std::to_string(x0.pixels()));
  return to_images(
      dm::marginal_sample(unwrap(s), to_tensor(x0), steps_tensor(s, t, x0.count), to_tensor(eps)));
}

// ---------------------------------------------------------------- the reverse chain

Points exact_eps(const Mixture& p, const Schedule& s, const Points& x, double t) {
  check_points(p, x, "ddpm::exact_eps");
  if (!(t > 0 && t <= double(s.T())))
    throw Error("ddpm::exact_eps: step t = " + std::to_string(t) +
                " outside (0, T = " + std::to_string(s.T()) + "]");
  auto model = exact_model(p, s);
  return to_points(model.predict(to_tensor(x), torch::full({x.rows()}, t, torch::kFloat64)));
}

StepResult step(const Mixture& p, const Schedule& s, const Points& x, double t, double t_next,
                Generator& gen, Variance variance) {
  check_points(p, x, "ddpm::step");
  auto model = exact_model(p, s);
  const auto ancestral = lib::ancestral(process_of(s), {to_library(variance), false});
  torch::NoGradGuard no_grad;
  const auto r = ancestral(model, to_tensor(x), t, t_next, {}, dm::nb::detail::unwrap(gen));
  return {to_points(r.x), to_points(r.mean), to_points(r.x0)};
}

Points sample(const Mixture& p, const Schedule& s, int64_t n, Generator& gen,
              const SampleOptions& options) {
  if (n < 1) throw Error("ddpm::sample: need at least one sample, got n = " + std::to_string(n));
  auto model = exact_model(p, s);
  return to_points(lib::sample(model, unwrap(s), {n, int64_t(p.dim())}, dm::nb::detail::unwrap(gen),
                               to_library(options, s.T())));
}

// ---------------------------------------------------------------- the U-Net

UNet::UNet(const UNetOptions& options) : impl(std::make_shared<Impl>()) {
  auto& c = impl->config;
  c.base_channels = options.base_channels;
  c.channel_mults.assign(options.channel_mults.begin(), options.channel_mults.end());
  c.attention_resolutions.assign(options.attention_resolutions.begin(),
                                 options.attention_resolutions.end());
  c.res_blocks = options.res_blocks;
  dm::nn::validate(c);  // dm::Error naming the field that is wrong
  impl->net = dm::nn::UNet(c);
}

UNet::UNet(std::shared_ptr<Impl> impl) : impl(std::move(impl)) {}

std::string UNet::describe() const { return dm::nn::describe(impl->net); }

int64_t UNet::parameters() const {
  int64_t n = 0;
  for (const auto& p : impl->net->parameters()) n += p.numel();
  return n;
}

double loss_eps(const UNet& net, const Schedule& s, const Images& x0, Generator& gen) {
  if (x0.count < 1) throw Error("ddpm::loss_eps: no images");
  auto model = model_of(net, s);
  net.impl->net->eval();
  torch::NoGradGuard no_grad;
  return lib::loss_eps(model, unwrap(s), to_tensor(x0), dm::nb::detail::unwrap(gen)).item<double>();
}

TrainResult train(UNet& net, const Schedule& s, const Images& data, Generator& gen,
                  const TrainOptions& options) {
  if (options.batch < 1 || data.count < options.batch)
    throw Error("ddpm::train: batches of " + std::to_string(options.batch) + " from " +
                std::to_string(data.count) + " images: need 1 ≤ batch ≤ the number of images");
  if (options.steps < 1 || options.log_every < 1)
    throw Error("ddpm::train: need steps ≥ 1 and log_every ≥ 1");
  dm::train::TrainConfig tc;
  tc.steps = options.steps;
  tc.lr = options.lr;
  tc.warmup = options.warmup;
  tc.ema_decay = options.ema_decay;
  tc.log_every = options.log_every;
  tc.checkpoint_every = options.steps;
  auto& unet = net.impl->net;
  dm::train::Trainer trainer(unet.ptr(), dm::nn::to_json(net.impl->config), tc, torch::kCPU);
  // Batch b of epoch e is a function of (seed, e, b): the images reshuffled every epoch.
  dm::data::Dataset set{to_tensor(data), torch::zeros({data.count}, torch::kLong)};
  dm::data::BatchSampler batches(set, options.batch, options.seed, torch::kCPU, true);
  auto model = model_of(net, s);
  auto& g = dm::nb::detail::unwrap(gen);
  int64_t epoch = -1;
  torch::Tensor order;
  const auto result = trainer.run(
      [&](int64_t k) {
        const int64_t e = (k - 1) / batches.batches_per_epoch(),
                      b = (k - 1) % batches.batches_per_epoch();
        if (e != epoch) order = batches.order(epoch = e);
        return lib::loss_eps(model, unwrap(s), batches.batch(order, b).images, g);  // Algorithm 1
      },
      /*checkpoint=*/{}, false, {}, "train U-Net");
  trainer.ema().copy_to(*unet);  // sample with the EMA weights
  unet->eval();
  return {result.loss_steps, result.losses, result.seconds};
}

ImageSamples sample(const UNet& net, const Schedule& s, int64_t n, Generator& gen,
                    const SampleOptions& options, const std::vector<int64_t>& keep) {
  if (n < 1) throw Error("ddpm::sample: need at least one image, got n = " + std::to_string(n));
  auto o = to_library(options, s.T());
  const int64_t steps = o.grid.empty() ? s.T() : int64_t(o.grid.size()) - 1;
  for (int64_t k : keep)
    if (k < 0 || k >= steps)
      throw Error("ddpm::sample: keep asks for step " + std::to_string(k) + " of a chain of " +
                  std::to_string(steps) + " steps (0 … " + std::to_string(steps - 1) + ")");
  ImageSamples out;
  std::vector<torch::Tensor> frames, x0_frames;
  o.run.callback = [&](const dm::StepEvent& e) {  // after step e.index (0-based)
    if (std::find(keep.begin(), keep.end(), e.index) == keep.end()) return;
    frames.push_back(e.result.x.clone());
    x0_frames.push_back(e.result.x0.clone());
    out.t.push_back(e.t_next);
  };
  auto model = model_of(net, s);
  const auto& c = net.impl->config;
  out.x = to_images(lib::sample(model, unwrap(s), {n, c.in_channels, c.image_size, c.image_size},
                                dm::nb::detail::unwrap(gen), o, torch::kFloat32));
  if (!frames.empty()) {
    // [n, k, C, H, W] → [n·k, C, H, W]: sample i's frames in a row.
    auto rows = [](const std::vector<torch::Tensor>& f) {
      const auto x = torch::stack(f, 1);
      return to_images(x.reshape({-1, x.size(2), x.size(3), x.size(4)}));
    };
    out.frames = rows(frames);
    out.x0_frames = rows(x0_frames);
  }
  return out;
}

// ---------------------------------------------------------------- the shipped model

Shipped load_shipped(const std::string& path) {
  const std::filesystem::path file =
      path.empty() ? dm::train::checkpoints_dir() / "ddpm_fashion.pt" : std::filesystem::path(path);
  auto loaded = dm::app::load_unet(file, torch::kCPU);  // builds the U-Net its description names
  const auto& d = loaded.description;
  if (!d.contains("schedule") || !d.contains("T"))
    throw Error("ddpm::load_shipped: " + file.string() +
                " is not a DDPM model (its description names no schedule)");
  const auto name = d["schedule"].get<std::string>();
  const auto T = d["T"].get<int64_t>();
  // The schedule the chapter trained with, by the label it stored.
  Schedule schedule = name == "linear"            ? Schedule::linear(T)
                      : name == "linear_rescaled" ? Schedule::linear_rescaled(T)
                      : name == "cosine"          ? Schedule::cosine(T)
                                         : throw Error("ddpm::load_shipped: unknown schedule \"" +
                                                       name + "\" in " + file.string());
  auto impl = std::make_shared<UNet::Impl>();
  impl->net = loaded.net;
  impl->config = loaded.net->config();
  impl->spec = loaded.spec;
  Shipped out{UNet(std::move(impl)), schedule, file.string(), 0, {}, {}};
  const auto& m = loaded.manifest;
  out.train_steps = m.value("steps", int64_t(0));
  if (m.contains("loss_steps") && m.contains("losses")) {
    out.loss_steps = m["loss_steps"].get<Vec>();
    out.losses = m["losses"].get<Vec>();
  }
  return out;
}

}  // namespace dm::nb::ddpm
