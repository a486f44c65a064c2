// tests/unit/test_cuda_graph.cpp — the network forward replayed from CUDA
// graphs (dm/nn/cuda_graph.hpp, NetModel::use_cuda_graphs):
//
//   * everywhere: with graphs asked for where they cannot be used (the CPU,
//     autograd on), the eager forward runs and gives the same numbers;
//   * on a GPU (skipped without one): the replayed forward equals the eager
//     one at several times and two batch shapes (one capture per shape), a
//     whole ancestral chain with graphs equals the chain without (same
//     generator seed), and a call with autograd on still runs eagerly.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include "dm/base/rng.hpp"
#include "dm/diffusion/schedule.hpp"
#include "dm/diffusion/step.hpp"
#include "dm/methods/ddpm.hpp"
#include "dm/nn/cuda_graph.hpp"
#include "dm/nn/net_model.hpp"
#include "dm/nn/networks.hpp"
#include "test_tensors.hpp"

namespace {

using dm_test::max_abs_diff;

// A small U-Net with a non-zero last layer (the default one starts at zero).
dm::nn::UNet small_unet(const torch::Device& device) {
  torch::manual_seed(3);
  dm::nn::UNetConfig c;
  c.base_channels = 8;
  c.channel_mults = {1, 2};
  c.attention_resolutions = {4};
  c.image_size = 8;
  c.num_classes = 3;
  dm::nn::UNet net(c);
  torch::NoGradGuard no_grad;
  for (auto& p : net->named_parameters())
    if (p.key().rfind("conv_out.", 0) == 0) p.value().normal_(0, 0.1);
  net->to(device);
  net->eval();
  return net;
}

// One small U-Net behind the seam twice: eagerly, and asking for CUDA graphs.
struct TwoModels {
  dm::schedule::Schedule schedule;
  dm::nn::UNet net;
  dm::nn::NetModel eager, graphed;
  TwoModels(const torch::Device& device, int64_t T)
      : schedule(dm::schedule::linear(T)),
        net(small_unet(device)),
        eager(net, dm::nn::NetSpec::ddpm(), schedule),
        graphed(net, dm::nn::NetSpec::ddpm(), schedule) {
    graphed.use_cuda_graphs();
  }
};

TEST(CudaGraph, FallsBackToTheEagerForwardOnTheCpu) {
  TwoModels m(torch::kCPU, 100);
  auto &eager = m.eager, &graphed = m.graphed;
  auto gen = dm_test::generator(0);
  const auto x = dm::randn({4, 1, 8, 8}, gen, torch::TensorOptions(torch::kFloat32));
  const auto labels = torch::tensor({0, 1, 2, -1}, torch::kLong);
  c10::InferenceMode inference;
  for (double t : {1.0, 50.0, 100.0}) {
    const auto tt = torch::full({4}, t);
    EXPECT_TRUE(torch::equal(graphed.predict(x, tt, labels), eager.predict(x, tt, labels)));
  }
  const auto stats = graphed.graph_stats();
  EXPECT_EQ(stats.captures, 0);
  EXPECT_EQ(stats.replays, 0);
  EXPECT_EQ(stats.eager, 3);
  graphed.use_cuda_graphs(false);
  EXPECT_EQ(graphed.graph_stats().eager, 0);
#ifndef DM_WITH_CUDA
  EXPECT_FALSE(dm::nn::GraphedForward::available()) << "a CPU build has no CUDA graphs";
#endif
}

TEST(CudaGraph, ReplayEqualsTheEagerForwardOnAGpu) {
  if (!dm::nn::GraphedForward::available()) GTEST_SKIP() << "no CUDA device (or a CPU build)";
  const torch::Device cuda(torch::kCUDA);
  TwoModels m(cuda, 100);
  auto &eager = m.eager, &graphed = m.graphed;
  auto gen = dm::make_generator(0, cuda);
  const auto opts = torch::TensorOptions().device(cuda);
  c10::InferenceMode inference;
  int64_t calls = 0;
  for (int64_t batch : {4, 6}) {  // two shapes: two captures
    const auto x = dm::randn({batch, 1, 8, 8}, gen, opts);
    const auto labels = torch::arange(batch, opts.dtype(torch::kLong)) % 4 - 1;  // −1 = null class
    for (double t : {1.0, 37.0, 100.0}) {  // one graph serves every time
      const auto tt = torch::full({batch}, t, opts);
      const auto want = eager.predict(x, tt, labels);
      const auto got = graphed.predict(x, tt, labels);
      ++calls;
      EXPECT_LE(max_abs_diff(got, want), 1e-5 * (1.0 + want.abs().max().item<double>()))
          << "batch " << batch << ", t = " << t;
    }
  }
  const auto stats = graphed.graph_stats();
  EXPECT_EQ(stats.captures, 2);
  EXPECT_EQ(stats.replays, calls);
  EXPECT_EQ(stats.eager, 0);
}

TEST(CudaGraph, AGraphedChainEqualsTheEagerChain) {
  if (!dm::nn::GraphedForward::available()) GTEST_SKIP() << "no CUDA device (or a CPU build)";
  const torch::Device cuda(torch::kCUDA);
  TwoModels m(cuda, 30);
  auto &eager = m.eager, &graphed = m.graphed;
  dm::ddpm::SampleOptions o;
  o.clip_x0 = true;
  const auto opts = torch::TensorOptions().device(cuda);
  const dm::Condition c(torch::tensor({0, 1, 2, -1}, opts.dtype(torch::kLong)));
  auto g1 = dm::make_generator(7, cuda), g2 = dm::make_generator(7, cuda);
  const auto a = dm::ddpm::sample(eager, m.schedule, {4, 1, 8, 8}, g1, o, opts, c);
  const auto b = dm::ddpm::sample(graphed, m.schedule, {4, 1, 8, 8}, g2, o, opts, c);
  EXPECT_LE(max_abs_diff(a, b), 1e-4);
  EXPECT_EQ(graphed.graph_stats().captures, 1);
  EXPECT_EQ(graphed.graph_stats().replays, 30);
}

TEST(CudaGraph, AutogradCallsRunEagerly) {
  if (!dm::nn::GraphedForward::available()) GTEST_SKIP() << "no CUDA device (or a CPU build)";
  const torch::Device cuda(torch::kCUDA);
  TwoModels m(cuda, 100);
  auto& graphed = m.graphed;
  const auto x = torch::randn({2, 1, 8, 8}, torch::TensorOptions().device(cuda));
  const auto out = graphed.predict(x, torch::full({2}, 10.0, x.options()));
  EXPECT_TRUE(out.requires_grad());  // differentiable: it ran eagerly
  EXPECT_EQ(graphed.graph_stats().eager, 1);
  EXPECT_EQ(graphed.graph_stats().captures, 0);
}

}  // namespace
