// dm/app/image_chapter.hpp — what every image chapter does around its U-Net:
// load the shipped weights or train (with resume, a loss curve and sample grids
// along the way), fail fast on a missing or wrong checkpoint, draw samples in
// batches, show small images larger, and report their quality.
//
// The chapters keep what differs — the process, the loss, the sampler — and
// hand it in as functions; the rest is here once.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <string>

#include "dm/app/cli.hpp"
#include "dm/app/metrics_file.hpp"
#include "dm/data/fashion.hpp"
#include "dm/data/quality.hpp"
#include "dm/diffusion/model.hpp"
#include "dm/diffusion/process.hpp"
#include "dm/nn/net_model.hpp"
#include "dm/nn/networks.hpp"
#include "dm/nn/train.hpp"

namespace dm::app {

// 32×32 images are tiny on screen: figures show them `factor` times larger (nearest neighbour).
torch::Tensor enlarge(const torch::Tensor& images, int64_t factor = 3);

// n samples drawn in batches of at most `batch` (larger ones are slower per image
// on a CPU): draw(b, first) returns b samples; the result is on the CPU.
torch::Tensor sample_in_batches(int64_t n, int64_t batch,
                                const std::function<torch::Tensor(int64_t b, int64_t first)>& draw);

// The fail-fast check before any work: unless the run trains, the shipped
// checkpoint must exist and be for `model_json` (dm::Error with a hint
// otherwise). --quick samples it too, with fewer samples or steps.
void require_checkpoint(const std::filesystem::path& checkpoint, const nlohmann::json& model_json,
                        bool train);

// The fail-fast check of a training run's folder, before any work: --resume
// needs the checkpoint it continues; a new run (neither --resume nor
// --overwrite) refuses to replace one, so that nothing trained is lost
// silently. dm::Error naming the file and the ways on otherwise.
void require_training_folder(const std::filesystem::path& checkpoint, bool train, bool resume,
                             bool overwrite);

// Loads exported weights into `model` (refusing another configuration), draws
// the training loss its manifest carries to ch.out("loss") (y-axis `loss_label`)
// and returns the manifest (empty if the file has none).
nlohmann::json load_shipped(torch::nn::Module& model, const nlohmann::json& model_config,
                            const std::filesystem::path& path, const Chapter& ch,
                            MetricsFile& metrics, const std::string& loss_label);

// A shipped U-Net built from the description stored in its own file (its
// UNetConfig, and the NetSpec that says how it sees t), with its weights, in
// eval mode on `device`: what a chapter needs to sample a model another
// chapter trained. dm::Error if the file is missing or not a U-Net's.
struct ShippedUNet {
  nn::UNet net{nullptr};
  nlohmann::json description;
  nn::NetSpec spec;
  nlohmann::json manifest;
};
ShippedUNet load_unet(const std::filesystem::path& path, const torch::Device& device);

// After Trainer::run: prints the summary line, records metrics["training"],
// draws the loss curve, copies the EMA weights into `model` and, unless the run
// is --quick, exports them (float16) to ch.out(export_name). Returns the manifest
// (with the fields of `extra` added, e.g. where the training started from).
nlohmann::json finish_training(train::Trainer& trainer, torch::nn::Module& model,
                               const nlohmann::json& model_config, const train::TrainResult& result,
                               int64_t batch, const Chapter& ch, MetricsFile& metrics,
                               const std::string& export_name, const std::string& loss_label,
                               const nlohmann::json& extra = nlohmann::json::object());

// What differs between the image chapters' U-Nets.
struct ImageModel {
  nn::UNetConfig config;
  nlohmann::json description;              // stored with the weights (config + process + "net")
  nn::NetSpec spec;                        // how the U-Net is wrapped as a model
  std::shared_ptr<const Process> process;  // the process the spec and loss refer to
  std::filesystem::path checkpoint;        // the shipped weights
  std::string export_name;                 // e.g. "ddpm_fashion.pt"
  std::string loss_label = "mean ε-loss";  // the loss curve's y-axis
  std::string training_title;              // printed when training starts
};

// What a GPU run can use (all three ignored, with a note, on the CPU):
//   --cuda-graphs    sampling replays the U-Net from CUDA graphs (nn::NetModel::use_cuda_graphs)
//   --bf16           training under bf16 autocast (train::TrainConfig::bf16)
//   --channels-last  training with channels-last weights (train::TrainConfig::channels_last)
struct GpuOptions {
  bool cuda_graphs = false, bf16 = false, channels_last = false;
};
void add_gpu_flags(CLI::App& app, GpuOptions& gpu);

// How to train when the shipped weights are not used.
struct ImageTraining {
  bool train = false, resume = false;  // --train, --resume
  bool overwrite = false;              // --overwrite: a new run may replace the checkpoint
  // --init FILE: start from these weights (e.g. the shipped ones) with a fresh
  // optimizer, to train a model further; the manifest records the file and its
  // steps. Ignored when --resume finds a checkpoint (that one wins).
  std::filesystem::path init;
  int64_t steps = 0;  // --steps (0: default_steps)
  int64_t default_steps = 20000, batch = 64, checkpoint_every = 1000, grid_every = 0;
  // The loss of one batch x0 [B, 1, 32, 32] for the model (differentiable).
  std::function<torch::Tensor(Model& model, const torch::Tensor& x0)> loss;
  // 16 samples from the current EMA weights, for a grid during training (may be empty).
  std::function<torch::Tensor(Model& model)> preview;
  GpuOptions gpu;  // --cuda-graphs (sampling), --bf16, --channels-last (training)
};

// The flags every image chapter shares, and what they mean:
//   --train          train the U-Net here instead of sampling the shipped checkpoint
//   --resume         with --train: continue <out>/unet_checkpoint.pt
//   --overwrite      with --train: start over, replacing that checkpoint
//   --init FILE      with --train: start from these weights, with a fresh optimizer
//   --steps N        with --train: training steps
//   --checkpoint F   the shipped weights to sample (not with --train)
//   and the GPU flags above.
struct TrainingFlags {
  bool train = false, resume = false, overwrite = false;
  std::filesystem::path init, checkpoint;
  int64_t steps = 0;  // 0: the run size's default
  GpuOptions gpu;
};
// Adds them to `app`; --checkpoint defaults to train::checkpoints_dir()/shipped.
void add_training_flags(CLI::App& app, TrainingFlags& flags, const std::string& shipped);

// The fail-fast checks of both, before any work: the shipped checkpoint when
// sampling it (require_checkpoint), the training folder when training
// (require_training_folder, on ch.out("unet_checkpoint.pt")).
void require_before_work(const Chapter& ch, const TrainingFlags& flags,
                         const nlohmann::json& model_json);

// The training settings from the flags.
ImageTraining image_training(const TrainingFlags& flags, int64_t default_steps, int64_t batch);

struct TrainedImageModel {
  nn::UNet net{nullptr};
  std::unique_ptr<nn::NetModel> model;  // the net behind the seam
  std::string source;                   // "checkpoint <file>" or "trained here"
  nlohmann::json manifest;
};

// The shipped weights (unless --train; --quick too), or training with the shared
// Trainer (Adam, warmup, EMA, checkpoints and resume in ch.out("unet_checkpoint.pt")).
// The model it returns replays CUDA graphs when t.gpu.cuda_graphs says so.
TrainedImageModel load_or_train(const Chapter& ch, const ImageModel& m, const ImageTraining& t,
                                const data::Dataset& train_set, MetricsFile& metrics);

// The class-fraction figure, saved as stem.svg and stem.png.
void plot_class_fractions(const quality::SampleReport& report, const std::filesystem::path& stem);

}  // namespace dm::app
