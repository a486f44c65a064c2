// dm/notebook/ddpm.hpp — chapter 04 (DDPM) for notebooks, in plain types: the
// noise schedule's tables, the forward process q(x_t | x_0), the ancestral
// sampler (Algorithm 2) driven by a mixture's exact ε or by a U-Net, the
// training loss (Algorithm 1) with the library's trainer, and the shipped model.
//
//   auto s = dm::nb::ddpm::Schedule::linear(1000);
//   const auto& alpha_bar = s.alpha_bar();                    // entry i is step t = i + 1
//   dm::nb::Points x = dm::nb::ddpm::sample(mixture, s, 1000, gen);   // exact ε, T steps
//   auto shipped = dm::nb::ddpm::load_shipped();              // data/checkpoints/ddpm_fashion.pt
//
// Steps are DDPM's own t = 1 … T (t = 0 is the data); the tables have T
// entries, entry i = t − 1, as in the DDPM code and dm/diffusion/schedule.hpp.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "dm/notebook/core.hpp"

namespace dm::nb::ddpm {

// ---------------------------------------------------------------- schedule

// β_1 … β_T and the tables that follow from them (float64, entry i = step i + 1).
class Schedule {
 public:
  // Linear β from beta_start to beta_end (DDPM: 1e-4 → 0.02 over T = 1000).
  static Schedule linear(int64_t T = 1000, double beta_start = 1e-4, double beta_end = 0.02);
  // Linear β with DDPM's endpoints scaled by 1000/T, for a short chain (T > 20).
  static Schedule linear_rescaled(int64_t T);
  // Nichol & Dhariwal's cosine schedule: ᾱ_t = f(t)/f(0), f(t) = cos²(((t/T + s)/(1 + s))·π/2).
  static Schedule cosine(int64_t T = 1000, double s = 0.008, double max_beta = 0.999);
  // Any β's (0 < β < 1, at least 2 of them); `label` names it.
  static Schedule from_betas(const Vec& betas, const std::string& label);

  int64_t T() const;
  std::string label() const;
  const Vec& betas() const;               // β_t
  const Vec& alphas() const;              // α_t = 1 − β_t
  const Vec& alpha_bar() const;           // ᾱ_t = Π_{s≤t} α_s
  const Vec& alpha_bar_prev() const;      // ᾱ_{t−1} (ᾱ_0 = 1)
  const Vec& posterior_variance() const;  // β̃_t = β_t (1 − ᾱ_{t−1})/(1 − ᾱ_t)

  struct Impl;
  std::shared_ptr<const Impl> impl;
  explicit Schedule(std::shared_ptr<const Impl> impl);  // for the library's side
};

// ---------------------------------------------------------------- forward process

// x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) ε with one step t (0 … T; 0 gives x_0) per row
// of x0 / per image, and ε shaped like x0.
Points q_sample(const Schedule& s, const Points& x0, const std::vector<int64_t>& t,
                const Points& eps);
Images q_sample(const Schedule& s, const Images& x0, const std::vector<int64_t>& t,
                const Images& eps);

// ---------------------------------------------------------------- the reverse chain

// σ_t² of the reverse step: β_t (fixedlarge) or β̃_t (fixedsmall).
enum class Variance { fixedlarge, fixedsmall };

struct SampleOptions {
  Variance variance = Variance::fixedlarge;
  bool clip_x0 = false;  // clip x̂_0 to [−1, 1] at every step (the DDPM code does for images)
  int64_t steps = 0;     // 0: all T steps; else this many, respaced evenly over T (improved DDPM)
};

// One reverse step from t to t_next < t: its new state x_{t_next} = μ + σz, the
// mean μ before the noise, and the x̂_0 it used (one row each per input row).
struct StepResult {
  Points x, mean, x0;
};

// The exact ε*(x_t, t) = −√(1 − ᾱ_t) ∇ log q_t(x_t) of the mixture p pushed
// through the schedule, at step t (may be fractional) for every row of x.
Points exact_eps(const Mixture& p, const Schedule& s, const Points& x, double t);
// The library's ancestral step on the exact ε from the state x at t to t_next,
// with z ~ N(0, I) [N, D] drawn from gen (none when t_next = 0).
StepResult step(const Mixture& p, const Schedule& s, const Points& x, double t, double t_next,
                Generator& gen, Variance variance = Variance::fixedlarge);
// Ancestral sampling (Algorithm 2) with the exact ε: n chains from x_T ~ N(0, I).
Points sample(const Mixture& p, const Schedule& s, int64_t n, Generator& gen,
              const SampleOptions& options = {});

// ---------------------------------------------------------------- the U-Net

// The ε-network of the image chapters (dm::nn::UNet), for 1 × 32 × 32 images;
// it sees DDPM's 0-based index t − 1 as its time label. Copies share the weights.
struct UNetOptions {
  // Channels at the first level (a multiple of 8, GroupNorm's group count).
  int base_channels = 16;
  // One level each, with base·mult channels.
  std::vector<int> channel_mults = {1, 2, 4, 4};
  // Self-attention at these image sizes (the middle always has it).
  std::vector<int> attention_resolutions = {8};
  // Residual blocks per level.
  int res_blocks = 1;
};

class UNet {
 public:
  explicit UNet(const UNetOptions& options = {});
  // Layers and parameter count.
  std::string describe() const;
  int64_t parameters() const;

  struct Impl;
  std::shared_ptr<Impl> impl;
  explicit UNet(std::shared_ptr<Impl> impl);  // for the library's side
};

// Algorithm 1's loss L_simple = mean ‖ε − ε_θ(√ᾱ_t x_0 + √(1 − ᾱ_t) ε, t)‖² on
// the images x0, with t ~ U{1 … T} per image and ε ~ N(0, I) drawn from gen;
// evaluated without gradients.
double loss_eps(const UNet& net, const Schedule& s, const Images& x0, Generator& gen);

struct TrainOptions {
  int64_t steps = 300;  // optimizer steps
  int64_t batch = 16;   // images per step
  double lr = 2e-3;     // peak learning rate (Adam)
  int64_t warmup = 50;  // linear warmup to lr over this many steps
  double ema_decay = 0.999;
  int64_t log_every = 20;  // the loss curve's running-mean window
  uint64_t seed = 0;       // the data order (shuffled every epoch)
};

struct TrainResult {
  Vec steps, losses;  // the running mean of the loss, every log_every steps
  double seconds = 0;
};

// Trains the net on the images with Algorithm 1 through the library's trainer
// (Adam with warmup, gradient clipping at norm 1, an EMA of the weights); t and ε
// are drawn from gen. Afterwards the net holds the EMA weights, in eval mode.
TrainResult train(UNet& net, const Schedule& s, const Images& data, Generator& gen,
                  const TrainOptions& options = {});

// The U-Net's samples, and frames of the chain: x_t and x̂_0 after the given
// 0-based steps (`keep`), sample-major (sample i's frames are rows
// i·k … i·k + k − 1 with k = keep.size(): show them with nrow = k).
struct ImageSamples {
  Images x;               // the samples x_0 (not clipped)
  std::vector<double> t;  // the time each frame was kept at (the step's t_next)
  Images frames, x0_frames;
};

// Ancestral sampling (Algorithm 2) with the U-Net's ε: n images from x_T ~ N(0, I).
ImageSamples sample(const UNet& net, const Schedule& s, int64_t n, Generator& gen,
                    const SampleOptions& options = {}, const std::vector<int64_t>& keep = {});

// ---------------------------------------------------------------- the shipped model

// A trained model as shipped: the U-Net (its EMA weights, in eval mode), the
// schedule it was trained with and, from the file's manifest, its training
// loss curve and steps.
struct Shipped {
  UNet net;
  Schedule schedule;
  std::string file;
  int64_t train_steps = 0;
  Vec loss_steps, losses;
};

// Loads a DDPM U-Net exported by chapters/04_ddpm (default: ddpm_fashion.pt in
// the shipped checkpoints folder, $DM_CHECKPOINTS or data/checkpoints).
Shipped load_shipped(const std::string& path = "");

}  // namespace dm::nb::ddpm
