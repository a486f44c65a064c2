// dm/nn/net_model.hpp — a trained network behind the dm::Model seam.
//
// Samplers speak the process's time t (dm/diffusion/model.hpp). A network was
// trained on its own inputs: a time label in the range its embedding separates
// (DDPM's 0-based step index, NCSN's log σ spread over 0…999) and perhaps a
// rescaled input. That map belongs to the network, so it is stored with its
// weights (the "net" entry of its JSON description) and applied here, where
// the network is wrapped as a model — never in a sampler.
//
//   NetSpec   what the network predicts, its time label, its input scaling
//   NetModel  network + NetSpec + the process whose (a, s) the spec refers to
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <memory>
#include <type_traits>

#include "dm/diffusion/model.hpp"
#include "dm/diffusion/process.hpp"
#include "dm/nn/cuda_graph.hpp"
#include "dm/nn/networks.hpp"

namespace dm::nn {

// ANCHOR: time_label
// The network's time input, from the process time t:
//   affine     label = scale·t + shift   (identity; DDPM's index t − 1; 999·t for VP SDEs)
//   log_sigma  label = scale·(log σ_max − log σ)/(log σ_max − log σ_min), σ = s(t):
//              0 at σ_max, `scale` at σ_min (NCSN's label, oriented as it was trained)
struct TimeLabel {
  enum class Kind { affine, log_sigma };
  Kind kind = Kind::affine;
  double scale = 1.0, shift = 0.0;
  double sigma_max = 1.0, sigma_min = 1.0;

  static TimeLabel identity() { return {}; }
  static TimeLabel ddpm_index() { return {Kind::affine, 1.0, -1.0, 1.0, 1.0}; }
  static TimeLabel log_sigma(double sigma_max, double sigma_min, double scale = 999.0) {
    return {Kind::log_sigma, scale, 0.0, sigma_max, sigma_min};
  }
  // t [N] → label [N] in `net` options; `process` gives s(t) for log_sigma.
  torch::Tensor operator()(const torch::Tensor& t, const Process* process,
                           const torch::TensorOptions& net) const;
};
// ANCHOR_END: time_label

// none: the network sees x_t. unit_variance: x_t / √(a(t)² + s(t)²), whose
// variance is about 1 at every t for data of unit scale (EDM's c_in; for VE,
// a VE sample rescaled to a VP one — what the NCSN U-Net was trained on).
enum class InputScaling { none, unit_variance };

struct NetSpec {
  Prediction prediction = Prediction::eps;
  TimeLabel time;
  InputScaling input = InputScaling::none;

  // An ε-network trained with DDPM's 0-based index as its label.
  static NetSpec ddpm();
  // NCSN's ε-network: log-σ label, unit-variance input.
  static NetSpec ncsn(double sigma_max, double sigma_min);
  nlohmann::json to_json() const;
  static NetSpec from_json(const nlohmann::json& j);  // dm::Error on an unknown field value
};
bool operator==(const NetSpec& a, const NetSpec& b);

// The spec recorded in a network's JSON description (key "net"). Descriptions
// written before that key existed (the shipped checkpoints) are read from
// their other fields: "model": "ncsn" with sigma_max / sigma_min → ncsn();
// a DDPM "schedule" → ddpm().
NetSpec net_spec_of(const nlohmann::json& description);
// The description with its "net" entry filled in from net_spec_of.
nlohmann::json with_net_spec(nlohmann::json description);

// ANCHOR: net_model
// predict() runs the network in its own dtype and device and hands the result
// back in x's; it does not change grad mode (dm::run samples under inference
// mode, a training loss differentiates through it) nor the net's train/eval
// mode: call net->eval() before sampling when it has dropout.
class NetModel : public Model {
 public:
  // The network on its own inputs: (scaled x, time label, condition) → output.
  using Forward = NetForward;

  struct FromFunction {};  // tag: the network is a plain function
  NetModel(FromFunction, Forward forward, NetSpec spec, std::shared_ptr<const Process> process);
  // Shares the net (not a copy). The U-Net gets c.labels and c.image (its
  // `cond` input); the MLP c.labels.
  NetModel(UNet net, NetSpec spec, std::shared_ptr<const Process> process);
  NetModel(ScoreMLP net, NetSpec spec, std::shared_ptr<const Process> process);
  // Any process by value (a copy is kept).
  template <class Net, class P, class = std::enable_if_t<std::is_base_of_v<Process, P>>>
  NetModel(Net net, NetSpec spec, const P& process)
      : NetModel(std::move(net), spec,
                 std::static_pointer_cast<const Process>(std::make_shared<P>(process))) {}

  Prediction prediction() const override { return spec_.prediction; }
  torch::Tensor predict(const torch::Tensor& x, const torch::Tensor& t,
                        const Condition& c = {}) override;
  const NetSpec& spec() const { return spec_; }

  // Replay the forward pass from CUDA graphs where it can (dm/nn/cuda_graph.hpp):
  // on a GPU, under inference mode; elsewhere the eager forward runs, with the
  // same result. Off again with use_cuda_graphs(false).
  void use_cuda_graphs(bool on = true);
  // Which path the calls took since use_cuda_graphs(); zeros when graphs are off.
  GraphedForward::Stats graph_stats() const;

 private:
  Forward forward_;
  std::shared_ptr<GraphedForward> graphed_;
  NetSpec spec_;
  std::shared_ptr<const Process> process_;
  std::function<torch::TensorOptions()> options_;  // the network's dtype and device
};
// ANCHOR_END: net_model

}  // namespace dm::nn
