// tests/bench/pytorch/vs_pytorch.cpp — the C++ side of the C++-vs-PyTorch
// benchmark. tests/bench/pytorch/baseline.py is the Python side: the same four
// cases written as a PyTorch user would write them, with the same networks
// (parameter names and shapes checked equal, and the same weights giving the
// same outputs: --export here, baseline.py --verify there). The driver,
// tools/bench_vs_pytorch.sh, runs the two interleaved and prints the ratios.
//
// The cases, at chapter 04's sizes (this program calls the library exactly as
// chapter 04 does):
//   unet_train   one training step of the U-Net (1.09M parameters) at batch 64:
//                Trainer::train_step with the ε-loss (t ~ U{1…1000}, linear
//                schedule), backward, gradient norm clipped to 1, Adam (lr
//                2e-4), EMA 0.999. The batch is a fixed tensor (data loading
//                is not timed).
//   unet_sample  one ancestral step (t = 500 → 499, fixedlarge variance, x̂₀
//                clipped to [−1, 1]) at batch 128, chapter 04's sampling batch
//   mlp_train    one training step of the 2D ε-MLP (hidden 128, 3 layers) at
//                batch 512, lr 2e-3 (warmup 100), EMA 0.995
//   mlp_sample   the whole 1000-step ancestral chain of 2000 2D samples with
//                the MLP (fixedlarge, no clipping); one iteration = one chain
// --cuda-graphs: the sampling cases replay the network from CUDA graphs
// (NetModel::use_cuda_graphs; on the CPU it changes nothing).
// --batch N changes a case's batch (e.g. mlp_sample at 64: where the cost of
// each operation's dispatch, not its arithmetic, dominates).
//
//   dm_vs_pytorch --case unet_train [--batch 64] [--iters 20] [--warmup 3] [--threads 1] [--device cpu]
//   dm_vs_pytorch --export DIR       # weights, inputs and outputs for baseline.py --verify
//
// Prints one JSON line: {"impl": "c++", "case", "torch", "device", "threads",
// "params", "iters", "times_ms": [...], "median_ms"}.
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "dm/base/core.hpp"
#include "dm/base/rng.hpp"
#include "dm/diffusion/schedule.hpp"
#include "dm/diffusion/step.hpp"
#include "dm/methods/ddpm.hpp"
#include "dm/nn/net_model.hpp"
#include "dm/nn/networks.hpp"
#include "dm/nn/train.hpp"

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

struct Args {
  std::string which;
  int64_t iters = 0, warmup = -1, batch = 0;
  int threads = 1;
  std::string device = "cpu";
  uint64_t seed = 0;
  bool cuda_graphs = false;
  fs::path export_dir;
};

[[noreturn]] void usage(const std::string& why) {
  std::cerr << "dm_vs_pytorch: " << why
            << "\nusage: dm_vs_pytorch --case unet_train|unet_sample|mlp_train|mlp_sample"
               " [--batch N] [--iters N] [--warmup N] [--threads N]\n"
               "       [--device cpu|cuda] [--cuda-graphs] [--seed N]\n"
               "       dm_vs_pytorch --export DIR\n";
  std::exit(2);
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(k + " needs a value");
      return argv[++i];
    };
    if (k == "--case")
      a.which = value();
    else if (k == "--iters")
      a.iters = std::stoll(value());
    else if (k == "--batch")
      a.batch = std::stoll(value());
    else if (k == "--warmup")
      a.warmup = std::stoll(value());
    else if (k == "--threads")
      a.threads = std::stoi(value());
    else if (k == "--device")
      a.device = value();
    else if (k == "--seed")
      a.seed = std::stoull(value());
    else if (k == "--cuda-graphs")
      a.cuda_graphs = true;
    else if (k == "--export")
      a.export_dir = value();
    else
      usage("unknown option " + k);
  }
  if (a.export_dir.empty() && a.which.empty()) usage("say --case or --export");
  return a;
}

// Chapter 04's networks.
dm::nn::MLPConfig mlp_config() {
  dm::nn::MLPConfig c;
  c.hidden = 128;
  c.layers = 3;
  return c;
}

void sync(const torch::Device& d) {
  if (d.is_cuda()) torch::cuda::synchronize();
}

// Runs `body` warmup + iters times; the times of the last iters, in ms.
template <typename F>
std::vector<double> time_it(int64_t warmup, int64_t iters, const torch::Device& device, F body) {
  std::vector<double> ms;
  for (int64_t i = 0; i < warmup + iters; ++i) {
    const auto start = std::chrono::steady_clock::now();
    body();
    sync(device);
    const auto stop = std::chrono::steady_clock::now();
    if (i >= warmup) ms.push_back(std::chrono::duration<double, std::milli>(stop - start).count());
  }
  return ms;
}

std::string torch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR) + "." +
         std::to_string(TORCH_VERSION_PATCH);
}

json run_case(const Args& a) {
  const torch::Device device(a.device);
  torch::set_num_threads(a.threads);
  torch::manual_seed(a.seed);  // the networks' initial weights
  auto gen = dm::make_generator(a.seed, device);
  const auto f32 = torch::TensorOptions().device(device);
  const auto schedule = dm::schedule::linear(1000);
  std::vector<double> times;
  int64_t params = 0, iters = a.iters, warmup = a.warmup, batch = a.batch;
  auto batch_or = [&](int64_t chapter) { return batch = batch > 0 ? batch : chapter; };

  if (a.which == "unet_train" || a.which == "unet_sample") {
    dm::nn::UNet net;
    params = dm::nn::parameter_count(*net);
    dm::nn::NetModel model(net, dm::nn::NetSpec::ddpm(), schedule);
    if (a.which == "unet_train") {
      if (iters <= 0) iters = 20;
      if (warmup < 0) warmup = 3;
      dm::train::TrainConfig tc;  // chapter 04: lr 2e-4, warmup 500, clip 1, EMA 0.999
      dm::train::Trainer trainer(net.ptr(), dm::nn::to_json(net->config()), tc, device);
      net->train();
      const auto x0 = dm::rand({batch_or(64), 1, 32, 32}, gen, f32) * 2 - 1;
      times = time_it(warmup, iters, device, [&] {
        trainer.train_step([&](int64_t) { return dm::ddpm::loss_eps(model, schedule, x0, gen); });
      });
    } else {
      if (iters <= 0) iters = 20;
      if (warmup < 0) warmup = 3;
      net->to(device);
      net->eval();
      model.use_cuda_graphs(a.cuda_graphs);
      c10::InferenceMode inference;  // as dm::run samples
      dm::ddpm::AncestralOptions o;
      o.clip_x0 = true;
      const auto step = dm::ddpm::ancestral(schedule, o);
      const auto x = dm::randn({batch_or(128), 1, 32, 32}, gen, f32);
      times = time_it(warmup, iters, device, [&] { step(model, x, 500.0, 499.0, {}, gen); });
    }
  } else if (a.which == "mlp_train" || a.which == "mlp_sample") {
    dm::nn::ScoreMLP net(mlp_config());
    params = dm::nn::parameter_count(*net);
    dm::nn::NetModel model(net, dm::nn::NetSpec::ddpm(), schedule);
    if (a.which == "mlp_train") {
      if (iters <= 0) iters = 300;
      if (warmup < 0) warmup = 30;
      dm::train::TrainConfig tc;  // chapter 04's 2D training
      tc.lr = 2e-3;
      tc.warmup = 100;
      tc.ema_decay = 0.995;
      dm::train::Trainer trainer(net.ptr(), dm::nn::to_json(net->config()), tc, device);
      net->train();
      const auto x0 = dm::randn({batch_or(512), 2}, gen, f32);
      times = time_it(warmup, iters, device, [&] {
        trainer.train_step([&](int64_t) { return dm::ddpm::loss_eps(model, schedule, x0, gen); });
      });
    } else {
      if (iters <= 0) iters = 5;
      if (warmup < 0) warmup = 1;
      net->to(device);
      net->eval();
      model.use_cuda_graphs(a.cuda_graphs);
      dm::ddpm::SampleOptions o;  // chapter 04: fixedlarge, no clipping, T = 1000 steps
      const int64_t n = batch_or(2000);
      times = time_it(warmup, iters, device, [&] {
        dm::ddpm::sample(model, schedule, {n, 2}, gen, o, f32);
      });
    }
  } else {
    usage("unknown case '" + a.which + "'");
  }
  auto sorted = times;
  std::sort(sorted.begin(), sorted.end());
  return {{"impl", "c++"},
          {"case", a.which},
          {"torch", torch_version()},
          {"device", a.device},
          {"threads", torch::get_num_threads()},
          {"params", params},
          {"batch", batch},
          {"cuda_graphs", a.cuda_graphs},
          {"iters", iters},
          {"times_ms", times},
          {"median_ms", sorted[sorted.size() / 2]}};
}

// ---------------------------------------------------------------------------
// --export: the networks' parameters (names, shapes, float32 values), a fixed
// input and the C++ forward output, for baseline.py --verify.

void write_floats(const fs::path& path, const torch::Tensor& t) {
  const auto c = t.detach().to(torch::kCPU, torch::kFloat32).contiguous();
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(c.data_ptr<float>()), c.numel() * sizeof(float));
  if (!f) throw dm::Error("cannot write " + path.string());
}

void export_net(const fs::path& dir, const std::string& name, torch::nn::Module& net,
                const torch::Tensor& x, const torch::Tensor& t, const torch::Tensor& out) {
  json names = json::array(), shapes = json::array();
  std::vector<torch::Tensor> flat;
  for (const auto& p : net.named_parameters()) {
    names.push_back(p.key());
    shapes.push_back(p.value().sizes().vec());
    flat.push_back(p.value().detach().reshape({-1}));
  }
  write_floats(dir / (name + "_weights.bin"), torch::cat(flat));
  write_floats(dir / (name + "_x.bin"), x);
  write_floats(dir / (name + "_t.bin"), t);
  write_floats(dir / (name + "_out.bin"), out);
  json j = {{"names", names},
            {"shapes", shapes},
            {"params", dm::nn::parameter_count(net)},
            {"x_shape", x.sizes().vec()}};
  std::ofstream(dir / (name + ".json")) << j.dump(1) << "\n";
}

void export_all(const fs::path& dir) {
  fs::create_directories(dir);
  torch::manual_seed(1);
  torch::NoGradGuard no_grad;
  {
    dm::nn::UNet net;
    // The zero-initialised last conv would make every output 0: give it weights.
    for (auto& p : net->named_parameters())
      if (p.key().rfind("conv_out.", 0) == 0) p.value().normal_(0, 0.05);
    net->eval();
    const auto x =
        torch::sin(0.37 * torch::arange(4 * 32 * 32, torch::kFloat32)).reshape({4, 1, 32, 32});
    const auto t = torch::tensor({0.f, 17.f, 499.f, 999.f});
    export_net(dir, "unet", *net, x, t, net->forward(x, t));
  }
  {
    dm::nn::ScoreMLP net(mlp_config());
    net->eval();
    const auto x = torch::cos(0.11 * torch::arange(64 * 2, torch::kFloat32)).reshape({64, 2});
    const auto t = torch::linspace(0, 999, 64, torch::kFloat32);
    export_net(dir, "mlp", *net, x, t, net->forward(x, t));
  }
  std::cout << "dm_vs_pytorch: wrote the U-Net and the MLP to " << dir.string() << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const auto args = parse(argc, argv);
    if (!args.export_dir.empty()) {
      export_all(args.export_dir);
      return 0;
    }
    std::cout << run_case(args).dump() << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "dm_vs_pytorch: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
