// dm/notebook/score_matching.hpp — chapter 02 (score matching) for notebooks:
// the three losses of dm/methods/losses.hpp evaluated on a batch, a trainer
// that fits an MLP with any of them on fresh batches, and the relative score
// error, all in plain types.
//
//   namespace sm = dm::nb::score_matching;
//   dm::nb::MLP net;                                        // s_θ: R² → R²
//   auto curve = sm::train(net, sm::from_mixture(p, gen), sm::ssm_loss(gen));
//   double err = sm::relative_score_error(net, x, p.score(x));
//
// The losses are the library's (means over the batch, no ½); nothing here
// computes one of its own.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "dm/notebook/core.hpp"

namespace dm::nb::score_matching {

// The random directions ν of sliced score matching (E[ννᵀ] = I either way):
// random signs, or standard normal draws.
enum class Projection { rademacher, gaussian };

// ---------------------------------------------------------------- one batch

// Explicit score matching: mean over rows of ‖s(x) − target‖², target = ∇log p(x).
// Any field works (a network, score_of(net, −1/σ) for an ε-net, an exact score).
double explicit_sm(const ScoreFn& score, const Points& x, const Points& target);
// Sliced score matching of the network's output s_θ: mean over rows of
// ‖s_θ(x)‖² + 2 νᵀ ∇s_θ(x) ν, `projections` directions ν per row drawn from gen.
double sliced_sm(const MLP& net, const Points& x, Generator& gen,
                 Projection projection = Projection::rademacher, int projections = 1);
// Denoising score matching in ε form for a network that predicts the noise:
// mean over rows of ‖ε_θ(x + σε) − ε‖², with ε given [N, D] or drawn from gen.
double denoising_eps(const MLP& eps_net, const Points& x, double sigma, const Points& eps);
double denoising_eps(const MLP& eps_net, const Points& x, double sigma, Generator& gen);

// E‖s(x) − target‖² / E‖target‖² over the rows of x (0 = exact, 1 = as bad as s ≡ 0).
double relative_score_error(const ScoreFn& score, const Points& x, const Points& target);

// The network as a score: x ↦ scale · net(x) (scale −1/σ for a network that
// predicts the noise ε at level σ: s = −ε_θ/σ).
ScoreFn score_of(const MLP& net, double scale = 1.0);

// ---------------------------------------------------------------- training

// Where training batches come from: n ↦ a fresh batch [n, D]. A notebook can
// write one (a capture-free lambda), or take one of these two.
using Sampler = std::function<Points(int64_t n)>;
// Fresh samples of a mixture at every call (unlimited data).
Sampler from_mixture(const Mixture& p, Generator& gen);
// Rows drawn with replacement from a fixed set (a data set: many epochs over
// the same points).
Sampler from_fixed_set(const Points& data, Generator& gen);

// The loss train() minimises, with what it needs. Generators are kept (a copy
// shares its state with the notebook's).
struct ScoreLoss {
  std::string name;  // "ESM", "SSM", "DSM (σ = 0.1)": the label of the progress line
  struct Impl;
  std::shared_ptr<const Impl> impl;
};
// ESM against p's exact score (only a toy has it): the net's output is s_θ.
ScoreLoss esm_loss(const Mixture& p);
// SSM from samples alone: the net's output is s_θ.
ScoreLoss ssm_loss(Generator& gen, Projection projection = Projection::rademacher,
                   int projections = 1);
// DSM in ε form at noise level σ: the net's output is ε_θ, its score −ε_θ/σ
// (that of the blurred law p_σ).
ScoreLoss dsm_loss(double sigma, Generator& gen);

struct TrainOptions {
  int64_t steps = 600;     // Adam steps, one fresh batch each
  int64_t batch = 256;     // rows per batch
  double lr = 2e-3;        // Adam's learning rate (constant: no warmup, no clipping)
  int64_t log_every = 50;  // the running mean of the loss is recorded this often
};

// The loss along training: its running mean over each log window, at the
// window's last step.
struct LossCurve {
  Vec steps, losses;
  double seconds = 0;  // wall time of the training
};

// Fits `net` (its weights change in place) with Adam on `loss`, a fresh batch
// from `data` at every step, through the library's trainer (dm::train::Trainer).
LossCurve train(MLP& net, const Sampler& data, const ScoreLoss& loss,
                const TrainOptions& options = {});

}  // namespace dm::nb::score_matching
