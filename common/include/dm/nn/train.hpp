// dm/nn/train.hpp — the training loop every learned model in the suite shares:
// Adam with a linear learning-rate warmup and gradient-norm clipping, an EMA of
// the weights, checkpoints written atomically and resumable, Ctrl-C that saves
// and stops cleanly, and a NaN loss that stops training without overwriting
// the last good checkpoint.
//
//   dm::train::Trainer trainer(net, net_config_json, cfg, device);
//   trainer.run([&](int64_t step) { return loss_on_a_fresh_batch(); }, out / "model.pt");
//
// A checkpoint holds: the model's parameters and buffers, the EMA shadow, the
// optimizer state, the step, the loss history (with the unfinished log window)
// and a JSON description {"model": <the network's configuration>, "train":
// <TrainConfig>, "checksum": ...}. Loading a checkpoint whose "model" differs
// from the network's configuration is refused with a message naming the
// differing fields; one whose tensors do not match their checksum
// (dm/base/checksum.hpp) is refused as damaged.
//
// Exact resume: with reseed_each_step, step k draws its randomness from the
// default generators seeded with stream_seed(seed, k), and the data order is
// the caller's function of (seed, step) (data::BatchSampler), so a run
// interrupted and resumed is bit for bit the run that never stopped (on the
// CPU, at the same thread count).
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dm/nn/networks.hpp"

namespace dm::train {

using json = nlohmann::json;

struct TrainConfig {
  int64_t steps = 10000;     // total optimizer steps (resume continues up to this)
  double lr = 2e-4;          // peak learning rate (DDPM used 2e-4 on CIFAR-10)
  int64_t warmup = 500;      // linear warmup from 0 to lr over this many steps
  double grad_clip = 1.0;    // max global gradient norm (≤ 0: no clipping)
  double ema_decay = 0.999;  // EMA of the weights used for sampling
  // Warm the EMA up: the n-th update uses decay min(ema_decay, (1 + n) / (10 + n)),
  // so early on the average follows the weights closely instead of holding on
  // to the random initialisation for ~1/(1 − ema_decay) steps.
  bool ema_warmup = true;
  int64_t checkpoint_every = 1000;  // also at the end and on Ctrl-C
  int64_t log_every = 100;          // running-mean loss recorded (and shown) this often
  // Read the loss back to the host every this many steps (0: every step on
  // the CPU, once per log window on a GPU, where each read waits for the device).
  int64_t read_loss_every = 0;
  // CUDA only (ignored, with a note, elsewhere): the forward pass and the loss
  // under bf16 autocast (backward and Adam stay float32), and the 4-D weights
  // (convolutions) in channels-last memory, which cuDNN's fastest kernels use.
  bool bf16 = false;
  bool channels_last = false;
  // Before step k, seed torch's default generators (CPU and CUDA: those a
  // loss drawing from dm::default_generator and LibTorch's dropout use) with
  // stream_seed(seed, k): a step's draws depend on (seed, k) alone, which is
  // what makes --resume exact. Off by default: a caller with its own generator
  // (the 2D toys) keeps drawing from it undisturbed.
  bool reseed_each_step = false;
  uint64_t seed = 0;
};
json to_json(const TrainConfig& c);

// The learning rate at (1-based) step k: lr · min(1, k / warmup).
double learning_rate(const TrainConfig& c, int64_t step);

// Thrown by Trainer::run when Ctrl-C stopped training (after the checkpoint was saved).
class Interrupted : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct TrainResult {
  int64_t step = 0;                // the step reached
  int64_t resumed_from = 0;        // 0 when training started fresh
  std::vector<double> loss_steps;  // steps at which `losses` was recorded
  std::vector<double> losses;      // running mean of the loss over the last log_every steps
  double seconds = 0;              // wall time of this run (not of earlier resumed runs)
};

class Trainer {
 public:
  // `model_config` describes the network (e.g. nn::to_json(UNetConfig)); it is
  // stored in checkpoints and compared on resume.
  Trainer(std::shared_ptr<torch::nn::Module> model, json model_config, TrainConfig config,
          torch::Device device);

  // Runs `loss_fn(step)` → scalar loss for steps (resumed step + 1) .. config.steps.
  // With `resume` and an existing checkpoint at `checkpoint`, continues from it.
  // An empty `checkpoint` path: nothing is saved (a model small enough to
  // retrain in seconds); Ctrl-C then stops with a message saying so.
  // `on_log(step, mean_loss)` is called every log_every steps (e.g. to draw
  // samples during training). Throws dm::Error on a NaN/inf loss (the last
  // checkpoint is left as it was) and Interrupted on Ctrl-C (after saving).
  TrainResult run(const std::function<torch::Tensor(int64_t step)>& loss_fn,
                  const std::filesystem::path& checkpoint, bool resume = false,
                  const std::function<void(int64_t step, double loss)>& on_log = {},
                  const std::string& progress_label = "train");

  // One optimisation step, the body of run()'s loop: the learning rate of
  // step() + 1, gradients cleared, `loss_fn` → backward, the gradient norm
  // clipped, Adam, the EMA. Returns the loss (detached) without reading it back,
  // so a GPU never waits for the host; run() checks it is finite. For
  // benchmarks and custom loops; it writes no checkpoint.
  torch::Tensor train_step(const std::function<torch::Tensor(int64_t step)>& loss_fn);

  nn::EMA& ema() { return *ema_; }
  torch::optim::Adam& optimizer() { return *optimizer_; }
  int64_t step() const { return step_; }

  // Atomic save (temp file + rename) of everything listed at the top.
  void save(const std::filesystem::path& path) const;
  // Loads a checkpoint into the model, EMA and optimizer; refuses one for a
  // different model configuration; a truncated or corrupt file is a dm::Error.
  void load(const std::filesystem::path& path);

 private:
  std::shared_ptr<torch::nn::Module> model_;
  json model_config_;
  TrainConfig config_;
  torch::Device device_;
  bool bf16_ = false, channels_last_ = false;  // as configured, where the device allows
  std::vector<torch::Tensor> params_;          // model_->parameters(), gathered once
  std::unique_ptr<torch::optim::Adam> optimizer_;
  std::unique_ptr<nn::EMA> ema_;
  int64_t step_ = 0;
  std::vector<double> loss_steps_, losses_;
  double window_sum_ = 0;  // the losses of the log window not yet recorded, and their count
  int64_t window_n_ = 0;
};

// Scales the gradients of `parameters` so that their global 2-norm is at most
// max_norm (gradients without a value are skipped), and returns that norm
// before clipping as a 0-dim tensor on the gradients' device. Unlike
// torch::nn::utils::clip_grad_norm_, which returns a double, nothing is read
// back to the host: the step stays asynchronous on a GPU.
torch::Tensor clip_grad_norm(const std::vector<torch::Tensor>& parameters, double max_norm);

// Puts the module's 4-D parameters (convolution weights) in channels-last
// (NHWC) memory; the values are unchanged.
void to_channels_last(torch::nn::Module& module);

// Clears every gradient (sets it to an undefined tensor, as PyTorch's
// zero_grad(set_to_none=True)): no zero-filling kernels, and the next backward
// writes fresh gradients instead of accumulating into zeros.
void clear_grads(const std::vector<torch::Tensor>& parameters);

// Reads only the JSON description of a checkpoint ({"model", "train", "step"}),
// e.g. to build the right network before loading it. dm::Error if unreadable.
json read_checkpoint_info(const std::filesystem::path& path);

// Checks, without loading weights, that a checkpoint is readable and was made
// for `model_config`; throws the same dm::Error load_weights() would. Lets a
// program fail on a bad --checkpoint before it does any work.
void check_compatible(const std::filesystem::path& path, const json& model_config);

// Loads the weights of a checkpoint into `model` — the EMA weights by default
// (what sampling uses) — refusing a different model configuration.
void load_weights(torch::nn::Module& model, const json& model_config,
                  const std::filesystem::path& path, bool use_ema = true);

// Writes only the weights a sampler needs — the EMA weights (or the model's
// own) — optionally in float16, with the model configuration and a manifest
// (command, seed, device, steps, wall time, metrics). This is the small file
// shipped in data/checkpoints/; load_weights() reads it like a checkpoint.
void export_weights(torch::nn::Module& model, const json& model_config,
                    const std::filesystem::path& path, const json& manifest, bool half = true);

// What a file of this suite stores, checked without building its network:
// {"path", "format" ("weights", "training checkpoint" or "classifier"),
//  "description": its JSON description, "parts": [{"part", "tensors",
//  "stored", "computed", "ok"}]} — one part for exported weights and the
// classifier, "model" and "ema" for a training checkpoint (its optimizer
// state is checked when --resume loads it). `stored` is empty for a file
// written before checksums existed. dm::Error if the file cannot be read.
json verify_file(const std::filesystem::path& path);

// Adds the checksum to exported weights written before checksums existed
// (rewritten atomically, tensors and description otherwise unchanged); a file
// that has one is checked and left alone. Returns the checksum.
std::string seal_weights(const std::filesystem::path& path);

// Where shipped checkpoints live: $DM_CHECKPOINTS if set, else the source
// tree's data/checkpoints.
std::filesystem::path checkpoints_dir();

// The fields where two configurations differ, as "key: a vs b" (empty if equal).
std::vector<std::string> config_differences(const json& expected, const json& found);

}  // namespace dm::train
