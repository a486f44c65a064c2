// score_matching.cpp — chapter 02's losses and trainer for notebooks:
// dm::losses and dm::train::Trainer behind plain types.
#include "dm/notebook/score_matching.hpp"

#include <cstdio>

#include "dm/base/core.hpp"
#include "dm/base/rng.hpp"
#include "dm/methods/losses.hpp"
#include "dm/nn/train.hpp"
#include "internal.hpp"

namespace dm::nb::score_matching {

using namespace detail;
using dm::losses::Field;

struct ScoreLoss::Impl {
  // loss(the network's raw output as a field, a float32 batch) → scalar, differentiable in θ.
  std::function<torch::Tensor(const Field&, const torch::Tensor&)> loss;
  int dim = 0;  // the data dimension the loss needs (0: any)
};

namespace {

// The network's output as a differentiable field, in the dtype of its input.
Field field_of(const MLP& net) {
  auto module = unwrap(net);
  if (module->config().time_dim > 0)
    throw Error(
        "notebook: score matching here fits s_θ(x) without a time input; this MLP has time_dim = " +
        std::to_string(module->config().time_dim) + " (make it with time_dim = 0 in MLPOptions)");
  return [module](const torch::Tensor& x) mutable {
    return module->forward(x.to(torch::kFloat32)).to(x.dtype());
  };
}

// Any ScoreFn as a field (values only, no gradient).
Field field_of(const ScoreFn& score) {
  return [score](const torch::Tensor& x) { return to_tensor(score(to_points(x))).to(x.dtype()); };
}

void check_rows(const char* who, const Points& x, const Points& other, const char* what) {
  if (x.rows() == 0) throw Error(std::string(who) + ": the batch x is empty");
  if (other.rows() != x.rows() || other.cols() != x.cols())
    throw Error(std::string(who) + ": " + what + " is [" + std::to_string(other.rows()) + ", " +
                std::to_string(other.cols()) + "], x is [" + std::to_string(x.rows()) + ", " +
                std::to_string(x.cols()) + "]: they must have the same shape");
}

void check_net_dim(const char* who, const MLP& net, const Points& x) {
  if (x.rows() == 0) throw Error(std::string(who) + ": the batch x is empty");
  const auto dim = unwrap(net)->config().dim;
  if (x.cols() != dim)
    throw Error(std::string(who) + ": x has " + std::to_string(x.cols()) +
                " columns, the network takes " + std::to_string(dim));
}

void check_sigma(const char* who, double sigma) {
  if (!(sigma > 0)) throw Error(std::string(who) + ": σ must be > 0, got " + std::to_string(sigma));
}

dm::losses::Projection library_projection(Projection projection) {
  return projection == Projection::gaussian ? dm::losses::Projection::gaussian
                                            : dm::losses::Projection::rademacher;
}

void check_projections(const char* who, int projections) {
  if (projections < 1)
    throw Error(std::string(who) + ": projections must be ≥ 1, got " + std::to_string(projections));
}

}  // namespace

// ---------------------------------------------------------------- one batch

double explicit_sm(const ScoreFn& score, const Points& x, const Points& target) {
  check_rows("explicit_sm", x, target, "target");
  torch::NoGradGuard no_grad;
  return dm::losses::explicit_sm(field_of(score), to_tensor(x), to_tensor(target)).item<double>();
}

double sliced_sm(const MLP& net, const Points& x, Generator& gen, Projection projection,
                 int projections) {
  check_net_dim("sliced_sm", net, x);
  check_projections("sliced_sm", projections);
  return dm::losses::sliced_sm(field_of(net), to_tensor(x), unwrap(gen),
                               library_projection(projection), projections)
      .item<double>();
}

double denoising_eps(const MLP& eps_net, const Points& x, double sigma, const Points& eps) {
  check_net_dim("denoising_eps", eps_net, x);
  check_rows("denoising_eps", x, eps, "eps");
  check_sigma("denoising_eps", sigma);
  torch::NoGradGuard no_grad;
  return dm::losses::denoising_eps(field_of(eps_net), to_tensor(x), sigma, to_tensor(eps))
      .item<double>();
}

double denoising_eps(const MLP& eps_net, const Points& x, double sigma, Generator& gen) {
  check_net_dim("denoising_eps", eps_net, x);
  check_sigma("denoising_eps", sigma);
  torch::NoGradGuard no_grad;
  return dm::losses::denoising_eps(field_of(eps_net), to_tensor(x), sigma, unwrap(gen))
      .item<double>();
}

double relative_score_error(const ScoreFn& score, const Points& x, const Points& target) {
  check_rows("relative_score_error", x, target, "target");
  torch::NoGradGuard no_grad;
  return dm::losses::relative_score_error(field_of(score), to_tensor(x), to_tensor(target));
}

ScoreFn score_of(const MLP& net, double scale) {
  return [net, scale](const Points& x) -> Points { return scale * net(x); };
}

// ---------------------------------------------------------------- training

Sampler from_mixture(const Mixture& p, Generator& gen) {
  return [p, gen](int64_t n) mutable { return p.sample(n, gen); };
}

Sampler from_fixed_set(const Points& data, Generator& gen) {
  if (data.rows() == 0) throw Error("from_fixed_set: the data set is empty");
  auto rows = to_tensor(data);
  return [rows, gen](int64_t n) mutable {
    return to_points(rows.index({dm::randint(rows.size(0), {n}, unwrap(gen), torch::kLong)}));
  };
}

ScoreLoss esm_loss(const Mixture& p) {
  auto mixture = unwrap(p);
  auto loss = [mixture](const Field& s, const torch::Tensor& x) {
    return dm::losses::explicit_sm(s, x, mixture.score(x.to(torch::kFloat64)).to(x.dtype()));
  };
  return ScoreLoss{"ESM", std::make_shared<const ScoreLoss::Impl>(ScoreLoss::Impl{loss, p.dim()})};
}

ScoreLoss ssm_loss(Generator& gen, Projection projection, int projections) {
  check_projections("ssm_loss", projections);
  auto loss = [gen, projection, projections](const Field& s, const torch::Tensor& x) mutable {
    return dm::losses::sliced_sm(s, x, unwrap(gen), library_projection(projection), projections);
  };
  return ScoreLoss{"SSM", std::make_shared<const ScoreLoss::Impl>(ScoreLoss::Impl{loss, 0})};
}

ScoreLoss dsm_loss(double sigma, Generator& gen) {
  check_sigma("dsm_loss", sigma);
  auto loss = [sigma, gen](const Field& eps_net, const torch::Tensor& x) mutable {
    return dm::losses::denoising_eps(eps_net, x, sigma, unwrap(gen));
  };
  char name[48];
  std::snprintf(name, sizeof name, "DSM (σ = %g)", sigma);
  return ScoreLoss{name, std::make_shared<const ScoreLoss::Impl>(ScoreLoss::Impl{loss, 0})};
}

LossCurve train(MLP& net, const Sampler& data, const ScoreLoss& loss, const TrainOptions& options) {
  if (!loss.impl)
    throw Error("train: the loss is empty (make it with esm_loss, ssm_loss or dsm_loss)");
  if (!data) throw Error("train: the data sampler is empty");
  if (options.steps < 1 || options.batch < 1 || options.log_every < 1)
    throw Error("train: steps, batch and log_every must be ≥ 1, got " +
                std::to_string(options.steps) + ", " + std::to_string(options.batch) + ", " +
                std::to_string(options.log_every));
  if (!(options.lr > 0))
    throw Error("train: the learning rate must be > 0, got " + std::to_string(options.lr));
  const Field raw = field_of(net);
  auto& module = unwrap(net);
  const int64_t dim = module->config().dim;
  if (loss.impl->dim && loss.impl->dim != dim)
    throw Error("train: " + loss.name + " is for " + std::to_string(loss.impl->dim) +
                "-dimensional data, the network takes " + std::to_string(dim));

  // Chapter 02's loop: plain Adam at a constant rate on raw weights (the EMA
  // the trainer keeps is not used).
  dm::train::TrainConfig config;
  config.steps = options.steps;
  config.lr = options.lr;
  config.warmup = 0;
  config.grad_clip = 0;
  config.log_every = options.log_every;
  config.checkpoint_every = options.steps;
  dm::train::Trainer trainer(module.ptr(), dm::nn::to_json(module->config()), config, torch::kCPU);
  const auto result = trainer.run(
      [&](int64_t step) {
        const Points x = data(options.batch);
        if (x.rows() != options.batch || x.cols() != dim)
          throw Error("train: the data sampler returned [" + std::to_string(x.rows()) + ", " +
                      std::to_string(x.cols()) + "] at step " + std::to_string(step) +
                      " for a batch of " + std::to_string(options.batch) + " rows of dimension " +
                      std::to_string(dim));
        return loss.impl->loss(raw, to_tensor(x).to(torch::kFloat32));
      },
      /*checkpoint=*/{}, false, {}, "train " + loss.name);
  return LossCurve{result.loss_steps, result.losses, result.seconds};
}

}  // namespace dm::nb::score_matching
