#include "dm/nn/net_model.hpp"

#include <cmath>

#include "dm/base/core.hpp"
#include "dm/diffusion/process.hpp"

namespace dm::nn {

// ANCHOR: time_label_impl
torch::Tensor TimeLabel::operator()(const torch::Tensor& t, const Process* process,
                                    const torch::TensorOptions& net) const {
  if (kind == Kind::affine) {
    const auto tt = t.to(net);
    if (scale == 1.0) return shift == 0.0 ? tt : tt + shift;
    return tt * scale + shift;
  }
  if (!process) throw Error("TimeLabel: a log-σ label needs the process (for σ = s(t))");
  const auto sigma = process->s(t).to(net);
  const double span = std::log(sigma_max / sigma_min);
  if (span <= 0) return torch::zeros_like(sigma);
  return scale * (std::log(sigma_max) - sigma.log()) / span;
}
// ANCHOR_END: time_label_impl

NetSpec NetSpec::ddpm() { return {Prediction::eps, TimeLabel::ddpm_index(), InputScaling::none}; }

NetSpec NetSpec::ncsn(double sigma_max, double sigma_min) {
  return {Prediction::eps, TimeLabel::log_sigma(sigma_max, sigma_min), InputScaling::unit_variance};
}

nlohmann::json NetSpec::to_json() const {
  nlohmann::json label;
  if (time.kind == TimeLabel::Kind::affine)
    label = {{"kind", "affine"}, {"scale", time.scale}, {"shift", time.shift}};
  else
    label = {{"kind", "log_sigma"},
             {"scale", time.scale},
             {"sigma_max", time.sigma_max},
             {"sigma_min", time.sigma_min}};
  return {{"prediction", dm::to_string(prediction)},
          {"time_label", label},
          {"input_scaling", input == InputScaling::none ? "none" : "unit_variance"}};
}

NetSpec NetSpec::from_json(const nlohmann::json& j) {
  NetSpec s;
  try {
    s.prediction = prediction_from_string(j.at("prediction").get<std::string>());
    const auto& l = j.at("time_label");
    const auto kind = l.at("kind").get<std::string>();
    if (kind == "affine") {
      s.time = {TimeLabel::Kind::affine, l.at("scale").get<double>(), l.at("shift").get<double>(),
                1.0, 1.0};
    } else if (kind == "log_sigma") {
      s.time = TimeLabel::log_sigma(l.at("sigma_max").get<double>(),
                                    l.at("sigma_min").get<double>(), l.at("scale").get<double>());
    } else {
      throw Error("unknown time label kind '" + kind + "'");
    }
    const auto scaling = j.at("input_scaling").get<std::string>();
    if (scaling == "none")
      s.input = InputScaling::none;
    else if (scaling == "unit_variance")
      s.input = InputScaling::unit_variance;
    else
      throw Error("unknown input scaling '" + scaling + "'");
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("a network's \"net\" description is malformed: ") + e.what());
  }
  return s;
}

bool operator==(const NetSpec& a, const NetSpec& b) { return a.to_json() == b.to_json(); }

NetSpec net_spec_of(const nlohmann::json& d) {
  if (d.contains("net")) return NetSpec::from_json(d["net"]);
  // Descriptions from before the "net" key: the shipped checkpoints of chapters 03 and 04.
  if (d.value("model", "") == "ncsn")
    return NetSpec::ncsn(d.at("sigma_max").get<double>(), d.at("sigma_min").get<double>());
  if (d.contains("schedule")) return NetSpec::ddpm();
  throw Error("a network description says neither its \"net\" spec nor which model it is",
              "add \"net\": NetSpec::to_json() to the description");
}

nlohmann::json with_net_spec(nlohmann::json d) {
  if (!d.is_object() || d.contains("net")) return d;
  if (d.value("model", "") != "ncsn" && !d.contains("schedule"))
    return d;  // not a diffusion network
  d["net"] = net_spec_of(d).to_json();
  return d;
}

// ANCHOR: net_model_impl
NetModel::NetModel(FromFunction, Forward forward, NetSpec spec,
                   std::shared_ptr<const Process> process)
    : forward_(std::move(forward)), spec_(spec), process_(std::move(process)) {
  if (!forward_) throw Error("NetModel: empty forward function");
  const bool needs_process =
      spec_.input == InputScaling::unit_variance || spec_.time.kind == TimeLabel::Kind::log_sigma;
  if (needs_process && !process_)
    throw Error("NetModel: this network's spec needs the process it was trained on");
}

namespace {
// The net's dtype and device, read from its first parameter. The handle is
// taken once (parameters() walks every submodule): Module::to() changes a
// parameter's data in place, so the handle follows the net to a new device.
template <typename Net>
std::function<torch::TensorOptions()> options_of(const Net& net) {
  const auto first = net->parameters().front();
  return [first] { return first.options(); };
}
torch::Tensor on(const torch::Tensor& v, const torch::TensorOptions& o) {
  return v.defined() ? v.to(o.device()) : v;
}
}  // namespace

NetModel::NetModel(UNet net, NetSpec spec, std::shared_ptr<const Process> process)
    : NetModel(
          FromFunction{},
          [net, options = options_of(net)](const torch::Tensor& x, const torch::Tensor& label,
                                           const Condition& c) mutable {
            const auto o = options();
            const auto cond = c.image.defined() ? c.image.to(o) : torch::Tensor();
            return net->forward(x, label, on(c.labels, o), cond);
          },
          spec, std::move(process)) {
  options_ = options_of(net);
}

NetModel::NetModel(ScoreMLP net, NetSpec spec, std::shared_ptr<const Process> process)
    : NetModel(
          FromFunction{},
          [net, options = options_of(net)](const torch::Tensor& x, const torch::Tensor& label,
                                           const Condition& c) mutable {
            return net->forward(x, label, on(c.labels, options()));
          },
          spec, std::move(process)) {
  options_ = options_of(net);
}

torch::Tensor NetModel::predict(const torch::Tensor& x, const torch::Tensor& t,
                                const Condition& c) {
  // The network's own dtype and device (its first parameter's); the caller's when unknown.
  const torch::TensorOptions o = options_ ? options_() : x.options();
  auto xin = x.to(o);
  if (spec_.input == InputScaling::unit_variance) {
    // x / √(a² + s²): unit variance at every t for unit-scale data
    const auto a = process_->a(t).to(o), s = process_->s(t).to(o);
    xin = xin * per_row((a * a + s * s).rsqrt(), xin);
  }
  const auto label = spec_.time(t, process_.get(), o);
  return (graphed_ ? (*graphed_)(xin, label, c) : forward_(xin, label, c)).to(x.options());
}

void NetModel::use_cuda_graphs(bool on) {
  graphed_ = on ? std::make_shared<GraphedForward>(forward_) : nullptr;
}

GraphedForward::Stats NetModel::graph_stats() const {
  return graphed_ ? graphed_->stats() : GraphedForward::Stats{};
}
// ANCHOR_END: net_model_impl

}  // namespace dm::nn
