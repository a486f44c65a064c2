// dm/nn/cuda_graph.hpp — a network's forward pass captured in a CUDA graph
// once per input shape and replayed afterwards.
//
// A sampling step of a small U-Net on a GPU launches a few hundred kernels,
// each too short to hide the CPU's cost of launching it: the GPU waits for the
// host. A CUDA graph records those launches once and replays them as one. The
// network sees the time only through its label tensor, so one graph per batch
// shape serves every step of a chain: the inputs are copied into the graph's
// own tensors, the graph is replayed, its output is copied out.
//
//   dm::nn::NetModel model(net, spec, schedule);
//   model.use_cuda_graphs();   // sampling on CUDA now replays graphs
//
// Graphs are used only where they can be: a CUDA build, inputs on a GPU, no
// autograd (sampling runs under inference mode), and only the labels and the
// image of the Condition (what the networks read). Everywhere else — the CPU,
// training, a capture that fails — the eager forward runs, with the same
// result; stats() says which path ran.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <memory>

#include "dm/diffusion/model.hpp"

namespace dm::nn {

// The network on its own inputs: (scaled x, time label, condition) → output.
using NetForward = std::function<torch::Tensor(const torch::Tensor& x, const torch::Tensor& label,
                                               const Condition& c)>;

class GraphedForward {
 public:
  struct Stats {
    int64_t captures = 0;  // graphs recorded (one per input shape)
    int64_t replays = 0;   // calls answered by a graph
    int64_t eager = 0;     // calls that ran the forward eagerly
  };
  // `warmup` eager calls on a side stream precede each capture (cuDNN picks
  // its algorithms and allocates its workspaces outside the graph).
  explicit GraphedForward(NetForward forward, int warmup = 3);
  torch::Tensor operator()(const torch::Tensor& x, const torch::Tensor& label, const Condition& c);
  Stats stats() const;
  // Compiled with CUDA and a GPU present.
  static bool available();

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace dm::nn
