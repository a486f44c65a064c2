#include "dm/nn/cuda_graph.hpp"

#include <iostream>
#include <map>
#include <sstream>
#include <string>

#include <torch/version.h>

// CUDA graphs through the C++ API of LibTorch 2.x (the CUDA builds this
// project tests); elsewhere every call runs eagerly.
#if defined(DM_WITH_CUDA) && TORCH_VERSION_MAJOR >= 2
#define DM_CUDA_GRAPHS 1
#include <c10/cuda/CUDAEvent.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

#include "dm/base/core.hpp"

namespace dm::nn {

#ifdef DM_CUDA_GRAPHS
namespace {
// Same shapes, dtypes and device, or no graph can serve.
std::string key_of(const torch::Tensor& x, const torch::Tensor& label, const Condition& c) {
  std::ostringstream k;
  auto add = [&](const char* name, const torch::Tensor& t) {
    k << name << ':';
    if (t.defined()) k << t.sizes() << t.scalar_type() << t.device();
    k << ';';
  };
  add("x", x);
  add("label", label);
  add("labels", c.labels);
  add("image", c.image);
  return k.str();
}
}  // namespace
#endif

struct GraphedForward::State {
  NetForward forward;
  int warmup;
  Stats stats;
#ifdef DM_CUDA_GRAPHS
  struct Entry {
    std::unique_ptr<at::cuda::CUDAGraph> graph;  // null: capture failed, run eagerly
    torch::Tensor x, label, labels, image, out;
  };
  std::map<std::string, Entry> graphs;
  decltype(at::cuda::graph_pool_handle()) pool =
      at::cuda::graph_pool_handle();  // shared by this forward's graphs
  bool warned = false;

  // `waiter` does not run ahead of what `done` has queued so far.
  static void wait(const c10::cuda::CUDAStream& waiter, const c10::cuda::CUDAStream& done) {
    c10::cuda::CUDAEvent event;
    event.record(done);
    event.block(waiter);
  }

  Entry capture(const torch::Tensor& x, const torch::Tensor& label, const Condition& c) {
    Entry e;
    auto device_copy = [&](const torch::Tensor& t) {
      return t.defined() ? t.to(x.device()).clone() : torch::Tensor();
    };
    e.x = x.clone();
    e.label = device_copy(label);
    e.labels = device_copy(c.labels);
    e.image = device_copy(c.image);
    Condition sc;
    sc.labels = e.labels;
    sc.image = e.image;
    auto graph = std::make_unique<at::cuda::CUDAGraph>();
    const auto index = x.device().index();
    const auto main = c10::cuda::getCurrentCUDAStream(index);
    const auto side = c10::cuda::getStreamFromPool(false, index);
    wait(side, main);  // the copies above are done before the side stream reads them
    {
      c10::cuda::CUDAStreamGuard on_side(side);
      for (int i = 0; i < warmup; ++i) forward(e.x, e.label, sc);
      graph->capture_begin(pool);
      e.out = forward(e.x, e.label, sc);
      graph->capture_end();
    }
    wait(main, side);
    e.graph = std::move(graph);
    return e;
  }
#endif
};

GraphedForward::GraphedForward(NetForward forward, int warmup) : state_(std::make_shared<State>()) {
  if (!forward) throw Error("GraphedForward: empty forward function");
  state_->forward = std::move(forward);
  state_->warmup = warmup;
}

bool GraphedForward::available() {
#ifdef DM_CUDA_GRAPHS
  return torch::cuda::is_available();
#else
  return false;
#endif
}

GraphedForward::Stats GraphedForward::stats() const { return state_->stats; }

torch::Tensor GraphedForward::operator()(const torch::Tensor& x, const torch::Tensor& label,
                                         const Condition& c) {
  auto& s = *state_;
#ifdef DM_CUDA_GRAPHS
  const bool eligible = x.defined() && x.is_cuda() && !at::GradMode::is_enabled() &&
                        !c.mask.defined() && !c.image_level.defined();
  if (eligible) {
    const auto key = key_of(x, label, c);
    auto it = s.graphs.find(key);
    if (it == s.graphs.end()) {
      State::Entry e;
      try {
        e = s.capture(x, label, c);
        ++s.stats.captures;
      } catch (const std::exception& err) {
        if (!s.warned)
          std::cerr << "dm: CUDA graph capture failed (" << err.what()
                    << "); this forward runs eagerly\n";
        s.warned = true;
        e = State::Entry{};
      }
      it = s.graphs.emplace(key, std::move(e)).first;
    }
    auto& e = it->second;
    if (e.graph) {
      e.x.copy_(x);
      if (e.label.defined()) e.label.copy_(label);
      if (e.labels.defined()) e.labels.copy_(c.labels);
      if (e.image.defined()) e.image.copy_(c.image);
      e.graph->replay();
      ++s.stats.replays;
      return e.out.clone();  // the next replay overwrites e.out
    }
  }
#endif
  ++s.stats.eager;
  return s.forward(x, label, c);
}

}  // namespace dm::nn
