// tests/bench/bench_nn.cpp — speed of the default U-Net (dm/nn/networks.hpp), 32×32, 1 channel.
//
//   BM_UNetTrainStep/B/D      forward + ε-MSE + backward + Adam step at batch B
//   BM_UNetSampleForward/B/D  one sampling step's forward under NoGradGuard
//   BM_UNetTrainStepWide/B/D  the train step of the wider base 32, mults 1-2-2
//                             net: the baseline the default was chosen against
//   BM_AncestralUNetStep/B/D  one DDPM ancestral sampling step (t = 500 → 499,
//                             linear schedule, T = 1000, x̂_0 clipped) with the
//                             U-Net behind the model seam (dm::nn::NetModel):
//                             the forward above plus the sampler's arithmetic
//   D = 0: CPU, D = 1: CUDA (skipped when no GPU). items/s = images/s.
//
// CPU runs use DM_BENCH_THREADS torch threads (default 2, the CI machine's
// cores) and restore the previous count afterwards. On a machine whose cores
// are busy with other work use DM_BENCH_THREADS=1: every parallel region then
// waits for a descheduled thread (measured: 2 threads 60× slower than 1 under
// a load of 5 on 2 cores).
// Run: build/bin/dm_bench --benchmark_filter=UNet --benchmark_min_time=1
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <cstdlib>

#include "dm/base/rng.hpp"
#include "dm/diffusion/schedule.hpp"
#include "dm/diffusion/step.hpp"
#include "dm/methods/ddpm.hpp"
#include "dm/nn/net_model.hpp"
#include "dm/nn/networks.hpp"

namespace {

// Sets torch's CPU thread count for one benchmark, puts it back afterwards.
class BenchThreads {
 public:
  BenchThreads() : previous_(torch::get_num_threads()) {
    const char* env = std::getenv("DM_BENCH_THREADS");
    torch::set_num_threads(env ? std::atoi(env) : 2);
  }
  ~BenchThreads() { torch::set_num_threads(previous_); }

 private:
  int previous_;
};

// The device of argument 1; false (and the benchmark marked skipped) without a GPU.
bool pick_device(benchmark::State& state, torch::Device& device) {
  if (state.range(1) == 0) {
    device = torch::kCPU;
    return true;
  }
  if (!torch::cuda::is_available()) {
    state.SkipWithError("skipped: no CUDA device");
    return false;
  }
  device = torch::kCUDA;
  return true;
}

void sync(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize();
}

void report(benchmark::State& state, const dm::nn::UNet& net, const torch::Device& device) {
  state.SetItemsProcessed(state.iterations() * state.range(0));
  state.counters["params"] = double(dm::nn::parameter_count(*net));
  state.counters["threads"] = device.is_cpu() ? torch::get_num_threads() : 0;
  state.SetLabel(device.is_cpu() ? "cpu" : "cuda");
}

void train_step(benchmark::State& state, const dm::nn::UNetConfig& config) {
  BenchThreads threads;
  torch::Device device = torch::kCPU;
  if (!pick_device(state, device)) return;
  torch::manual_seed(0);
  const int64_t batch = state.range(0);
  dm::nn::UNet net(config);
  net->to(device);
  net->train();
  torch::optim::Adam optimizer(net->parameters(), torch::optim::AdamOptions(2e-4));
  const auto opts = torch::TensorOptions().device(device);
  const auto x = torch::randn({batch, 1, 32, 32}, opts);
  const auto t = torch::randint(0, 1000, {batch}, opts);
  const auto eps = torch::randn({batch, 1, 32, 32}, opts);
  auto step = [&] {
    optimizer.zero_grad();
    auto loss = torch::mse_loss(net->forward(x, t), eps);
    loss.backward();
    optimizer.step();
  };
  step();  // allocations and Adam state outside the timing
  sync(device);
  for (auto _ : state) {
    step();
    sync(device);
  }
  report(state, net, device);
}

void BM_UNetTrainStep(benchmark::State& state) { train_step(state, dm::nn::UNetConfig{}); }
BENCHMARK(BM_UNetTrainStep)
    ->ArgsProduct({{16, 64, 128}, {0, 1}})
    ->ArgNames({"batch", "cuda"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_UNetTrainStepWide(benchmark::State& state) {
  dm::nn::UNetConfig wide;
  wide.base_channels = 32;
  wide.channel_mults = {1, 2, 2};
  train_step(state, wide);
}
BENCHMARK(BM_UNetTrainStepWide)
    ->ArgsProduct({{64}, {0, 1}})
    ->ArgNames({"batch", "cuda"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_UNetSampleForward(benchmark::State& state) {
  BenchThreads threads;
  torch::Device device = torch::kCPU;
  if (!pick_device(state, device)) return;
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  const int64_t batch = state.range(0);
  dm::nn::UNet net;
  net->to(device);
  net->eval();
  const auto opts = torch::TensorOptions().device(device);
  const auto x = torch::randn({batch, 1, 32, 32}, opts);
  const auto t = torch::full({batch}, 500.0, opts);
  net->forward(x, t);
  sync(device);
  for (auto _ : state) {
    auto out = net->forward(x, t);
    sync(device);
    benchmark::DoNotOptimize(out.data_ptr());
  }
  report(state, net, device);
}
BENCHMARK(BM_UNetSampleForward)
    ->ArgsProduct({{64, 256}, {0, 1}})
    ->ArgNames({"batch", "cuda"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

void BM_AncestralUNetStep(benchmark::State& state) {
  BenchThreads threads;
  torch::Device device = torch::kCPU;
  if (!pick_device(state, device)) return;
  // As dm::run samples: no autograd graph, no version counters.
  c10::InferenceMode inference;
  torch::manual_seed(0);  // the U-Net's initial weights
  const int64_t batch = state.range(0);
  dm::nn::UNet net;
  net->to(device);
  net->eval();
  const auto schedule = dm::schedule::linear(1000);
  dm::nn::NetModel model(net, dm::nn::NetSpec::ddpm(), schedule);
  dm::ddpm::AncestralOptions options;
  options.clip_x0 = true;  // images in [−1, 1], as the image chapters sample
  const auto step = dm::ddpm::ancestral(schedule, options);
  auto gen = dm::make_generator(0, device);
  const auto x = dm::randn({batch, 1, 32, 32}, gen, torch::TensorOptions().device(device));
  step(model, x, 500.0, 499.0, {}, gen);
  sync(device);
  for (auto _ : state) {
    auto out = step(model, x, 500.0, 499.0, {}, gen).x;
    sync(device);
    benchmark::DoNotOptimize(out.data_ptr());
  }
  report(state, net, device);
}
BENCHMARK(BM_AncestralUNetStep)
    ->ArgsProduct({{64}, {0, 1}})
    ->ArgNames({"batch", "cuda"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
