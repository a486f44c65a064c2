// dm/notebook/ncsn.hpp — chapter 03 (NCSN) for notebooks: geometric noise
// levels, annealed Langevin dynamics with the chains recorded after every
// level, a noise-conditional network s_θ(x, σ) with its loss and trainer, and
// the rule that chooses the step size, in plain types. The names mirror the
// library's dm::ncsn (dm/methods/ncsn.hpp).
//
//   auto sigmas = dm::nb::ncsn::geometric(6.0, 0.1, 10);          // σ_1 = 6 > … > σ_10 = 0.1
//   dm::nb::ncsn::AnnealedOptions o;                                // T = 100 steps a level
//   o.step_lr = 0.01;                                               // ε
//   auto run = dm::nb::ncsn::annealed_langevin(p, 6.0 * dm::nb::randn(2000, 2, gen), sigmas, gen, o);
//   run.x;          // the samples
//   run.levels[i];  // the chains at the end of level i + 1
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "dm/notebook/core.hpp"

namespace dm::nb::ncsn {

// ---------------------------------------------------------------- levels

// The noise levels σ_1 > σ_2 > … > σ_L.
struct Sigmas {
  Vec values;  // descending
  int levels() const { return static_cast<int>(values.size()); }
  double max() const { return values.front(); }
  double min() const { return values.back(); }
};

// Geometric levels σ_i = σ_max (σ_min/σ_max)^{(i−1)/(L−1)}: neighbours have
// the constant ratio γ = (σ_max/σ_min)^{1/(L−1)}.
Sigmas geometric(double sigma_max, double sigma_min, int levels);

// The Langevin step at level `level` (0-based): α_i = ε·σ_i²/σ_L², ε = step_lr.
double step_size(const Sigmas& sigmas, int level, double step_lr);

// ---------------------------------------------------------------- annealed Langevin

struct AnnealedOptions {
  int64_t steps_per_level = 100;  // T
  double step_lr = 2e-5;          // ε: the step at the last level is α_L = ε
  // A final denoising step x + σ_L² s(x, σ_L) (Tweedie's formula): removes the
  // last level's σ_L of noise, for one more score evaluation.
  bool denoise = false;
};

struct AnnealedRun {
  Points x;                    // the samples
  std::vector<Points> levels;  // the chains at the end of each level (levels.back() is x)
  int64_t nfe = 0;             // score evaluations
};

// Annealed Langevin dynamics (Song & Ermon 2019, Algorithm 1) from the chains
// x0 (one per row): T steps x ← x + (α_i/2)·s(x, σ_i) + √α_i·z at each level,
// from σ_1 down to σ_L. Each step draws z ~ N(0, I) shaped like x from `gen`
// before it evaluates the score, as dm::nb::randn(N, D, gen) would.
// Here s is the exact score of p blurred to each level, p_σ = p ∗ N(0, σ²I).
AnnealedRun annealed_langevin(const Mixture& p, const Points& x0, const Sigmas& sigmas,
                              Generator& gen, const AnnealedOptions& options = {});

// ---------------------------------------------------------------- a learned s_θ(x, σ)

// A noise-conditional network for the levels `sigmas`: an MLP with a time
// input (MLPOptions::time_dim > 0) used as NCSN's ε-network. Behind NCSN's
// wrapper (dm::nn::NetSpec::ncsn) it sees x/√(1 + σ²), whose variance is of
// order one at every level (or x itself, unit_variance_input = false), and the
// label 999·(log σ_1 − log σ)/(log σ_1 − log σ_L); it predicts ε, and
// s_θ(x, σ) = −ε_θ(x, σ)/σ. Copies share the network.
class ScoreNet {
 public:
  ScoreNet(const MLP& net, const Sigmas& sigmas, bool unit_variance_input = true);

  // ε_θ(x, σ) at every row of x, with one σ per row or one for all.
  Points eps(const Points& x, const Vec& sigma) const;
  Points eps(const Points& x, double sigma) const;
  // s_θ(x, σ) = −ε_θ(x, σ)/σ.
  Points score(const Points& x, const Vec& sigma) const;
  Points score(const Points& x, double sigma) const;

  MLP net() const;        // the network (shared)
  Sigmas sigmas() const;  // the levels it is trained on

  struct Impl;
  std::shared_ptr<Impl> impl;
};

// The NCSN loss on a batch: x̃ = x + σ ε, the mean over rows and dimensions of
// ‖ε_θ(x̃, σ) − ε‖² (= σ²‖s_θ(x̃, σ) + ε/σ‖², the σ²-weighted denoising score
// matching loss), with a level σ_i, i ~ U{1, …, L}, then ε ~ N(0, I) drawn per
// row from `gen`, in that order. ε_θ = 0 scores exactly 1.
double loss(const ScoreNet& model, const Points& x0, Generator& gen);
// The same at given levels (one σ per row) and noise ε (shaped like x0).
double loss_at(const ScoreNet& model, const Points& x0, const Vec& sigma, const Points& eps);

struct TrainOptions {
  int64_t steps = 1000;      // Adam steps, each on a fresh batch of the data
  int64_t batch = 512;       // points a batch
  double lr = 2e-3;          // peak learning rate (after the warmup)
  int64_t warmup = 100;      // linear warmup of the learning rate, in steps
  double ema_decay = 0.995;  // EMA of the weights (what sampling uses)
  int64_t log_every = 50;    // the mean loss is recorded this often
};

struct TrainLog {
  Vec steps;   // steps at which a mean loss was recorded
  Vec losses;  // the mean loss over the log_every steps before each
  double seconds = 0;
};

// Trains the model's network on fresh batches of p with the loss above, the
// library's training loop (dm::train::Trainer: Adam with warmup and gradient
// clipping, an EMA of the weights), batches and the loss's draws from `gen`.
// On return the network holds the EMA weights, in eval mode, ready to sample;
// a second call trains on from them (with a fresh Adam).
TrainLog train(ScoreNet& model, const Mixture& p, Generator& gen, const TrainOptions& options = {});

// Annealed Langevin as above with the learned score s_θ(x, σ_i) (any levels
// inside the range it was trained on).
AnnealedRun annealed_langevin(const ScoreNet& model, const Points& x0, const Sigmas& sigmas,
                              Generator& gen, const AnnealedOptions& options = {});

// ---------------------------------------------------------------- the step-size rule

// For a single data point the step is linear, x ← (1 − a/2)·x + σ_i√a·z with
// a = α_i/σ_i² = ε/σ_L², and the ratio r_k = Var(x_k)/σ_i² obeys
// r_{k+1} = (1 − a/2)² r_k + a from r_0 = γ². r_T for a given a:
double variance_ratio_after(double a, double gamma, int64_t T);
// The a (on a 1% grid) that brings r_T closest to 1 (NCSN v2's technique 3).
double step_ratio_for(double gamma, int64_t T);
// ε = a·σ_L² with γ = σ_1/σ_2 of these levels.
double step_lr_for(const Sigmas& sigmas, int64_t T);

}  // namespace dm::nb::ncsn
