// ncsn.cpp — chapter 03 for notebooks: dm::ncsn (levels, annealed Langevin,
// the loss, the step rule), dm::nn::NetModel with NCSN's spec and the library's
// training loop (dm::train::Trainer), behind plain types.
#include "dm/notebook/ncsn.hpp"

#include <string>

#include "dm/base/core.hpp"
#include "dm/diffusion/param.hpp"
#include "dm/methods/ncsn.hpp"
#include "dm/nn/net_model.hpp"
#include "dm/nn/train.hpp"
#include "internal.hpp"

namespace dm::nb::ncsn {

using namespace dm::nb::detail;

struct ScoreNet::Impl {
  MLP net;
  ::dm::ncsn::Sigmas sigmas;
  ::dm::nn::NetModel model;  // the net behind the dm::Model seam, time t = σ
};

namespace {

// The library's levels, after checking that they are levels.
::dm::ncsn::Sigmas to_library(const Sigmas& sigmas) {
  if (sigmas.values.empty()) throw Error("ncsn: no noise levels given (Sigmas::values is empty)");
  for (size_t i = 0; i < sigmas.values.size(); ++i) {
    if (!(sigmas.values[i] > 0))
      throw Error("ncsn: noise level " + std::to_string(i + 1) + " is " +
                  std::to_string(sigmas.values[i]) + "; every σ must be > 0");
    if (i > 0 && sigmas.values[i] > sigmas.values[i - 1])
      throw Error("ncsn: the noise levels must not increase (σ_1 ≥ σ_2 ≥ …), but σ_" +
                  std::to_string(i + 1) + " = " + std::to_string(sigmas.values[i]) + " follows σ_" +
                  std::to_string(i) + " = " + std::to_string(sigmas.values[i - 1]));
  }
  return ::dm::ncsn::Sigmas{sigmas.values};
}

::dm::ncsn::AnnealedOptions to_library(const AnnealedOptions& o) {
  ::dm::ncsn::AnnealedOptions out;
  out.steps_per_level = o.steps_per_level;
  out.step_lr = o.step_lr;
  out.denoise = o.denoise;
  return out;
}

void check_chains(const Points& x, int dim, const char* what) {
  if (x.cols() != dim)
    throw Error(std::string(what) + ": the chains have " + std::to_string(x.cols()) +
                " columns, the model is " + std::to_string(dim) + "-dimensional");
}

// The sampler on the seam, with the chains kept after every level.
AnnealedRun run_annealed(Model& model, const Points& x0, const Sigmas& sigmas, Generator& gen,
                         const AnnealedOptions& options) {
  AnnealedRun out;
  RunOptions record;
  record.callback = [&out](const StepEvent& e) {
    out.levels.push_back(to_points(e.result.x));
    out.nfe = e.nfe;
  };
  out.x = to_points(::dm::ncsn::annealed_langevin(model, to_tensor(x0), to_library(sigmas),
                                                  unwrap(gen), to_library(options), record));
  return out;
}

// One σ per row, as the seam's t [N] (for SigmaVE, t = σ).
torch::Tensor per_row(const Vec& sigma, const Points& x) {
  if (static_cast<Eigen::Index>(sigma.size()) != x.rows())
    throw Error("ncsn: " + std::to_string(sigma.size()) + " noise levels for " +
                std::to_string(x.rows()) + " points: give one σ per row");
  return to_tensor(sigma);
}

}  // namespace

Sigmas geometric(double sigma_max, double sigma_min, int levels) {
  return Sigmas{::dm::ncsn::geometric(sigma_max, sigma_min, levels).values};
}

double step_size(const Sigmas& sigmas, int level, double step_lr) {
  if (level < 0 || level >= sigmas.levels())
    throw Error("ncsn::step_size: level " + std::to_string(level) + " of " +
                std::to_string(sigmas.levels()) + " (levels are 0-based)");
  return ::dm::ncsn::step_size(to_library(sigmas), level, step_lr);
}

AnnealedRun annealed_langevin(const Mixture& p, const Points& x0, const Sigmas& sigmas,
                              Generator& gen, const AnnealedOptions& options) {
  check_chains(x0, p.dim(), "ncsn::annealed_langevin");
  // The exact score of p_σ at the seam's time t = σ (NCSN's process, SigmaVE).
  ::dm::toy::PerturbedMixture exact(unwrap(p), ::dm::ncsn::process(to_library(sigmas)),
                                    Prediction::score);
  return run_annealed(exact, x0, sigmas, gen, options);
}

// ---------------------------------------------------------------- ScoreNet

ScoreNet::ScoreNet(const MLP& net, const Sigmas& sigmas, bool unit_variance_input) {
  const auto& config = unwrap(net)->config();
  if (config.time_dim <= 0)
    throw Error(
        "ncsn::ScoreNet: the network has no noise input; make it with MLPOptions::time_dim > 0");
  auto levels = to_library(sigmas);
  auto spec = ::dm::nn::NetSpec::ncsn(levels.max(), levels.min());
  if (!unit_variance_input) spec.input = ::dm::nn::InputScaling::none;
  impl = std::make_shared<Impl>(
      Impl{net, levels, ::dm::nn::NetModel(unwrap(net), spec, ::dm::ncsn::process(levels))});
}

Points ScoreNet::eps(const Points& x, const Vec& sigma) const {
  check_chains(x, unwrap(impl->net)->config().dim, "ncsn::ScoreNet::eps");
  torch::NoGradGuard no_grad;
  return to_points(impl->model.predict(to_tensor(x), per_row(sigma, x)));
}

Points ScoreNet::eps(const Points& x, double sigma) const {
  return eps(x, Vec(static_cast<size_t>(x.rows()), sigma));
}

Points ScoreNet::score(const Points& x, const Vec& sigma) const {
  check_chains(x, unwrap(impl->net)->config().dim, "ncsn::ScoreNet::score");
  torch::NoGradGuard no_grad;
  // s_θ = −ε_θ/σ: the library's conversion between predictions (a = 1, s = σ)
  return to_points(predict_as(Prediction::score, impl->model, ::dm::ncsn::process(impl->sigmas),
                              to_tensor(x), per_row(sigma, x)));
}

Points ScoreNet::score(const Points& x, double sigma) const {
  return score(x, Vec(static_cast<size_t>(x.rows()), sigma));
}

MLP ScoreNet::net() const { return impl->net; }
Sigmas ScoreNet::sigmas() const { return Sigmas{impl->sigmas.values}; }

// ---------------------------------------------------------------- loss and training

double loss(const ScoreNet& model, const Points& x0, Generator& gen) {
  check_chains(x0, unwrap(model.impl->net)->config().dim, "ncsn::loss");
  torch::NoGradGuard no_grad;
  return ::dm::ncsn::loss(model.impl->model, model.impl->sigmas, to_tensor(x0), unwrap(gen))
      .item<double>();
}

double loss_at(const ScoreNet& model, const Points& x0, const Vec& sigma, const Points& eps) {
  check_chains(x0, unwrap(model.impl->net)->config().dim, "ncsn::loss_at");
  if (eps.rows() != x0.rows() || eps.cols() != x0.cols())
    throw Error("ncsn::loss_at: ε is [" + std::to_string(eps.rows()) + ", " +
                std::to_string(eps.cols()) + "], the data [" + std::to_string(x0.rows()) + ", " +
                std::to_string(x0.cols()) + "]");
  torch::NoGradGuard no_grad;
  return ::dm::ncsn::loss_at(model.impl->model, model.impl->sigmas, to_tensor(x0),
                             per_row(sigma, x0), to_tensor(eps))
      .item<double>();
}

TrainLog train(ScoreNet& model, const Mixture& p, Generator& gen, const TrainOptions& o) {
  if (o.steps < 1 || o.batch < 1 || o.log_every < 1)
    throw Error("ncsn::train: steps, batch and log_every must be ≥ 1, got " +
                std::to_string(o.steps) + ", " + std::to_string(o.batch) + ", " +
                std::to_string(o.log_every));
  if (p.dim() != unwrap(model.impl->net)->config().dim)
    throw Error("ncsn::train: the data is " + std::to_string(p.dim()) +
                "-dimensional, the network " +
                std::to_string(unwrap(model.impl->net)->config().dim) + "-dimensional");
  auto& net = unwrap(model.impl->net);
  ::dm::train::TrainConfig config;
  config.steps = o.steps;
  config.lr = o.lr;
  config.warmup = o.warmup;
  config.ema_decay = o.ema_decay;
  config.log_every = o.log_every;
  config.checkpoint_every = o.steps;
  // What the trainer records about the model (nothing is saved: no checkpoint path).
  auto description = ::dm::nn::to_json(net->config());
  description["sigmas"] = model.impl->sigmas.values;
  description["net"] = model.impl->model.spec().to_json();
  ::dm::train::Trainer trainer(net.ptr(), description, config, torch::kCPU);
  auto& data = unwrap(p);
  auto& g = unwrap(gen);
  const auto result = trainer.run(
      [&](int64_t) {
        const auto x0 = data.sample(o.batch, g).to(torch::kFloat32);
        return ::dm::ncsn::loss(model.impl->model, model.impl->sigmas, x0,
                                g);  // ‖ε_θ(x + σ_i ε, σ_i) − ε‖²
      },
      /*checkpoint=*/{}, false, {}, "train s_θ(x, σ)");
  trainer.ema().copy_to(*net);
  net->eval();
  return TrainLog{result.loss_steps, result.losses, result.seconds};
}

AnnealedRun annealed_langevin(const ScoreNet& model, const Points& x0, const Sigmas& sigmas,
                              Generator& gen, const AnnealedOptions& options) {
  check_chains(x0, unwrap(model.impl->net)->config().dim, "ncsn::annealed_langevin");
  const auto& trained = model.impl->sigmas;
  const auto levels = to_library(sigmas);
  if (levels.max() > trained.max() * (1 + 1e-12) || levels.min() < trained.min() * (1 - 1e-12))
    throw Error("ncsn::annealed_langevin: the levels " + std::to_string(levels.max()) + " … " +
                std::to_string(levels.min()) + " leave the range the network was trained on, " +
                std::to_string(trained.max()) + " … " + std::to_string(trained.min()));
  return run_annealed(model.impl->model, x0, sigmas, gen, options);
}

// ---------------------------------------------------------------- the step-size rule

double variance_ratio_after(double a, double gamma, int64_t T) {
  return ::dm::ncsn::variance_ratio_after(a, gamma, T);
}

double step_ratio_for(double gamma, int64_t T) { return ::dm::ncsn::step_ratio_for(gamma, T); }

double step_lr_for(const Sigmas& sigmas, int64_t T) {
  return ::dm::ncsn::step_lr_for(to_library(sigmas), T);
}

}  // namespace dm::nb::ncsn
