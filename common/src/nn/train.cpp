#include "dm/nn/train.hpp"

#include <ATen/autocast_mode.h>
#include <torch/version.h>

#include "dm/nn/net_model.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <iostream>
#include <sstream>

#include "dm/base/checksum.hpp"
#include "dm/base/core.hpp"
#include "dm/base/io.hpp"
#include "dm/base/progress.hpp"
#include "dm/base/rng.hpp"

namespace fs = std::filesystem;

namespace dm::train {

json to_json(const TrainConfig& c) {
  return {{"steps", c.steps},
          {"lr", c.lr},
          {"warmup", c.warmup},
          {"grad_clip", c.grad_clip},
          {"ema_decay", c.ema_decay},
          {"ema_warmup", c.ema_warmup},
          {"checkpoint_every", c.checkpoint_every},
          {"log_every", c.log_every},
          {"bf16", c.bf16},
          {"channels_last", c.channels_last},
          {"reseed_each_step", c.reseed_each_step},
          {"seed", c.seed}};
}

// ANCHOR: learning_rate
double learning_rate(const TrainConfig& c, int64_t step) {
  // Linear warmup: Adam's first steps use poorly estimated second moments, so
  // the rate ramps up from 0 (DDPM warmed up over 5000 steps).
  if (c.warmup <= 0) return c.lr;
  return c.lr * std::min(1.0, double(step) / double(c.warmup));
}
// ANCHOR_END: learning_rate

std::vector<std::string> config_differences(const json& expected, const json& found) {
  std::vector<std::string> out;
  if (!expected.is_object() || !found.is_object()) {
    if (expected != found)
      out.push_back("configuration: " + expected.dump() + " vs " + found.dump());
    return out;
  }
  for (const auto& [key, value] : expected.items()) {
    if (!found.contains(key))
      out.push_back(key + ": " + value.dump() + " vs (absent)");
    else if (found.at(key) != value)
      out.push_back(key + ": " + value.dump() + " vs " + found.at(key).dump());
  }
  for (const auto& [key, value] : found.items())
    if (!expected.contains(key)) out.push_back(key + ": (absent) vs " + value.dump());
  return out;
}

namespace {

std::atomic<bool> g_interrupted{false};
extern "C" void on_sigint(int) { g_interrupted = true; }

// Installs the Ctrl-C handler for the lifetime of a training run.
class SigintGuard {
 public:
  SigintGuard() {
    g_interrupted = false;
    previous_ = std::signal(SIGINT, on_sigint);
  }
  ~SigintGuard() { std::signal(SIGINT, previous_); }

 private:
  void (*previous_)(int);
};

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string s;
  for (size_t i = 0; i < parts.size(); ++i) s += (i ? sep : "") + parts[i];
  return s;
}

// Opens a checkpoint, turning torch's low-level errors into one clear line.
torch::serialize::InputArchive open_checkpoint(const fs::path& path, const torch::Device& device) {
  if (!fs::exists(path)) throw Error("checkpoint " + path.string() + " does not exist");
  torch::serialize::InputArchive archive;
  try {
    archive.load_from(path.string(), device);
  } catch (const c10::Error& e) {
    throw Error("checkpoint " + path.string() + " is truncated or corrupt (cannot be read)",
                "delete it and train again, or restore it from the repository (git checkout)");
  }
  return archive;
}

json read_info(torch::serialize::InputArchive& archive, const fs::path& path) {
  c10::IValue info;
  try {
    archive.read("info", info);
    return json::parse(info.toStringRef());
  } catch (const std::exception&) {
    throw Error("checkpoint " + path.string() +
                " has no readable description (not written by this suite?)");
  }
}

void check_config(const json& expected, const json& info, const fs::path& path) {
  // Descriptions from before the "net" entry existed are compared with the
  // entry they imply (nn::with_net_spec), so the shipped checkpoints still load.
  const auto diffs = config_differences(nn::with_net_spec(expected),
                                        nn::with_net_spec(info.value("model", json())));
  if (!diffs.empty())
    throw Error(
        "checkpoint " + path.string() + " is for a different model (" + join(diffs, "; ") +
            "; this program vs the checkpoint)",
        "use the options the checkpoint was trained with, or retrain (--train) into another --out");
}

// Loads a module from a sub-archive, naming the checkpoint if a tensor is missing or misshaped.
void load_module(torch::nn::Module& module, torch::serialize::InputArchive& archive,
                 const std::string& key, const fs::path& path) {
  torch::serialize::InputArchive sub;
  try {
    archive.read(key, sub);
    module.load(sub);
  } catch (const c10::Error& e) {
    throw Error("checkpoint " + path.string() + ": its '" + key +
                "' weights do not fit this network (" +
                std::string(e.what_without_backtrace()).substr(0, 160) + ")");
  }
}

// Module::save() as written by LibTorch, but with cloned tensors: an archive
// keeps references until it is written, and the EMA weights are swapped out of
// the model again before that.
void save_cloned(const torch::nn::Module& m, torch::serialize::OutputArchive& archive) {
  for (const auto& p : m.named_parameters(/*recurse=*/false))
    archive.write(p.key(), p.value().detach().clone());
  for (const auto& b : m.named_buffers(/*recurse=*/false))
    archive.write(b.key(), b.value().detach().clone(), /*is_buffer=*/true);
  for (const auto& child : m.named_children()) {
    torch::serialize::OutputArchive child_archive(archive.compilation_unit());
    save_cloned(*child.value(), child_archive);
    archive.write(child.key(), child_archive);
  }
}

}  // namespace

json read_checkpoint_info(const fs::path& path) {
  auto archive = open_checkpoint(path, torch::kCPU);
  return read_info(archive, path);
}

namespace {
// Exported weights are stored flat ("down.0.conv.weight" → "down__0__conv__weight":
// archive keys may not contain dots) and converted to the model's dtype on load.
std::string flat_key(std::string name) {
  std::string out;
  for (char c : name) out += (c == '.') ? std::string("__") : std::string(1, c);
  return out;
}

// The optimizer's state entry of a parameter: LibTorch 1.13 keys the map by
// the text of the tensor's impl pointer, 2.x by the pointer itself.
template <class Map>
auto find_state(Map& map, c10::TensorImpl* impl) {
  using Key = typename std::decay_t<Map>::key_type;
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream key;
    key << impl;
    return map.find(key.str());
  } else {
    return map.find(impl);
  }
}

// Adam's state, one entry per parameter in the order of the parameters.
NamedTensors adam_state(torch::optim::Adam& optimizer, const std::vector<torch::Tensor>& params) {
  NamedTensors out;
  auto& state = optimizer.state();
  for (size_t i = 0; i < params.size(); ++i) {
    const auto it = find_state(state, params[i].unsafeGetTensorImpl());
    if (it == state.end()) continue;
    const auto& s = static_cast<const torch::optim::AdamParamState&>(*it->second);
    const std::string k = std::to_string(i);
    out.emplace_back(k + ".step", torch::tensor(int64_t(s.step())));
    out.emplace_back(k + ".exp_avg", s.exp_avg());
    out.emplace_back(k + ".exp_avg_sq", s.exp_avg_sq());
    if (s.max_exp_avg_sq().defined()) out.emplace_back(k + ".max_exp_avg_sq", s.max_exp_avg_sq());
  }
  return out;
}
}  // namespace

void export_weights(torch::nn::Module& model, const json& model_config, const fs::path& path,
                    const json& manifest, bool half) {
  torch::serialize::OutputArchive archive;
  NamedTensors stored;
  for (auto& [name, tensor] : named_state(model)) {
    auto t = tensor.detach().to(torch::kCPU);
    stored.emplace_back(flat_key(name), half && t.is_floating_point() ? t.to(torch::kFloat16) : t);
    archive.write(stored.back().first, stored.back().second);
  }
  json info = {{"format", "weights"},
               {"model", model_config},
               {"manifest", manifest},
               {"dtype", half ? "float16" : "float32"},
               {"checksum", tensors_checksum(stored)}};
  archive.write("info", c10::IValue(info.dump()));
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  const fs::path tmp = path.string() + ".tmp";
  archive.save_to(tmp.string());
  fs::rename(tmp, path);
}

namespace {
// Every tensor of an archive and its sub-archives, named as Module::named_parameters
// names them ("down.0.conv.weight"); the description ("info") is skipped.
void collect_tensors(torch::serialize::InputArchive& archive, const std::string& prefix,
                     NamedTensors& out) {
  for (const auto& key : archive.keys()) {
    if (prefix.empty() && key == "info") continue;
    torch::Tensor t;
    if (archive.try_read(key, t)) {
      out.emplace_back(prefix + key, t);
      continue;
    }
    torch::serialize::InputArchive sub;
    if (archive.try_read(key, sub)) collect_tensors(sub, prefix + key + ".", out);
  }
}

// The checksum a description stores for one part ("model", "ema", "optimizer"
// of a training checkpoint; the whole "checksum" of exported weights).
std::string stored_checksum(const json& info, const std::string& part = {}) {
  if (!info.contains("checksum")) return {};
  const auto& c = info.at("checksum");
  if (part.empty()) return c.is_string() ? c.get<std::string>() : std::string();
  return c.is_object() ? c.value(part, std::string()) : std::string();
}
}  // namespace

json verify_file(const fs::path& path) {
  auto archive = open_checkpoint(path, torch::kCPU);
  const json info = read_info(archive, path);
  json parts = json::array();
  auto part = [&](const std::string& name, const std::string& key, const std::string& stored) {
    NamedTensors tensors;
    if (key.empty()) {
      collect_tensors(archive, "", tensors);
    } else {
      torch::serialize::InputArchive sub;
      if (!archive.try_read(key, sub))
        throw Error("checkpoint " + path.string() + " has no '" + key + "' part (corrupt?)");
      collect_tensors(sub, "", tensors);
    }
    const std::string computed = tensors_checksum(tensors);
    parts.push_back({{"part", name},
                     {"tensors", tensors.size()},
                     {"stored", stored},
                     {"computed", computed},
                     {"ok", stored.empty() || stored == computed}});
  };
  std::string format;
  if (info.value("format", "") == "weights") {
    format = "weights";
    part("weights", "", stored_checksum(info));
  } else if (info.contains("model") && info["model"].is_object() &&
             info["model"].value("kind", "") == "fashion_classifier") {
    format = "classifier";
    part("weights", "weights", info.value("checksum", std::string()));
  } else {
    format = "training checkpoint";
    part("model", "model", stored_checksum(info, "model"));
    part("ema", "ema", stored_checksum(info, "ema"));
  }
  return {{"path", path.string()}, {"format", format}, {"description", info}, {"parts", parts}};
}

std::string seal_weights(const fs::path& path) {
  auto archive = open_checkpoint(path, torch::kCPU);
  json info = read_info(archive, path);
  if (info.value("format", "") != "weights")
    throw Error(path.string() + " is not exported weights (only those can be sealed here)",
                "training checkpoints and the classifier get their checksum when written");
  NamedTensors tensors;
  collect_tensors(archive, "", tensors);
  const std::string computed = tensors_checksum(tensors);
  const std::string stored = stored_checksum(info);
  verify_checksum(stored, computed, path);
  if (!stored.empty()) return stored;
  torch::serialize::OutputArchive out;
  for (const auto& [name, t] : tensors) out.write(name, t);
  info["checksum"] = computed;
  out.write("info", c10::IValue(info.dump()));
  const fs::path tmp = path.string() + ".tmp";
  out.save_to(tmp.string());
  fs::rename(tmp, path);
  return computed;
}

fs::path checkpoints_dir() {
  if (const char* env = std::getenv("DM_CHECKPOINTS"); env && *env) return env;
  return fs::path(DM_SOURCE_DIR) / "data" / "checkpoints";
}

void check_compatible(const fs::path& path, const json& model_config) {
  auto archive = open_checkpoint(path, torch::kCPU);
  check_config(model_config, read_info(archive, path), path);
}

void load_weights(torch::nn::Module& model, const json& model_config, const fs::path& path,
                  bool use_ema) {
  const auto device =
      model.parameters().empty() ? torch::Device(torch::kCPU) : model.parameters()[0].device();
  auto archive = open_checkpoint(path, device);
  const json info = read_info(archive, path);
  check_config(model_config, info, path);
  if (info.value("format", "") != "weights") {
    const std::string part = use_ema ? "ema" : "model";
    load_module(model, archive, part, path);
    verify_checksum(stored_checksum(info, part), tensors_checksum(named_state(model)), path,
                    part + " weights");
    return;
  }
  torch::NoGradGuard no_grad;
  NamedTensors read;
  for (auto& [name, tensor] : named_state(model)) {
    torch::Tensor stored;
    try {
      archive.read(flat_key(name), stored);
    } catch (const c10::Error&) {
      throw Error("checkpoint " + path.string() + " has no tensor '" + name + "' (corrupt?)");
    }
    if (stored.sizes() != tensor.sizes())
      throw Error("checkpoint " + path.string() + ": tensor '" + name + "' has the wrong shape");
    read.emplace_back(flat_key(name), stored);
  }
  // Checked before any weight is copied: a damaged file leaves the model as it was.
  verify_checksum(stored_checksum(info), tensors_checksum(read), path);
  auto tensors = named_state(model);
  for (size_t i = 0; i < tensors.size(); ++i)
    tensors[i].second.copy_(
        read[i].second.to(tensors[i].second.device(), tensors[i].second.scalar_type()));
}

Trainer::Trainer(std::shared_ptr<torch::nn::Module> model, json model_config, TrainConfig config,
                 torch::Device device)
    : model_(std::move(model)),
      model_config_(std::move(model_config)),
      config_(config),
      device_(device) {
  if (config_.steps < 1) throw Error("training needs at least one step");
  if (config_.log_every < 1 || config_.checkpoint_every < 1)
    throw Error("log_every and checkpoint_every must be >= 1");
  model_->to(device_);
  if ((config_.bf16 || config_.channels_last) && !device_.is_cuda())
    std::cout << "train: bf16 autocast and channels-last apply on CUDA only; training on "
              << device_.str() << " in float32\n";
  bf16_ = config_.bf16 && device_.is_cuda();
  channels_last_ = config_.channels_last && device_.is_cuda();
  if (channels_last_) to_channels_last(*model_);
  params_ = model_->parameters();
  optimizer_ = std::make_unique<torch::optim::Adam>(params_, torch::optim::AdamOptions(config_.lr));
  ema_ = std::make_unique<nn::EMA>(*model_, config_.ema_decay, config_.ema_warmup);
}

// ANCHOR: checkpoint_save
void Trainer::save(const fs::path& path) const {
  torch::serialize::OutputArchive archive, model_archive, ema_archive, optim_archive;
  model_->save(model_archive);
  // The EMA weights are stored as a whole module (swapped in for the save), so
  // load_weights() reads either set the same way.
  const std::string model_sum = tensors_checksum(named_state(*model_));
  ema_->store(*model_);
  ema_->copy_to(*model_);
  save_cloned(*model_, ema_archive);
  const std::string ema_sum = tensors_checksum(named_state(*model_));
  ema_->restore(*model_);
  optimizer_->save(optim_archive);
  archive.write("model", model_archive);
  archive.write("ema", ema_archive);
  archive.write("optimizer", optim_archive);
  json info = {{"model", model_config_},
               {"train", to_json(config_)},
               {"step", step_},
               {"ema_updates", ema_->updates()},
               {"loss_steps", loss_steps_},
               {"losses", losses_},
               {"loss_window", {{"sum", window_sum_}, {"count", window_n_}}},
               {"checksum",
                {{"model", model_sum},
                 {"ema", ema_sum},
                 {"optimizer", tensors_checksum(adam_state(*optimizer_, params_))}}}};
  archive.write("info", c10::IValue(info.dump()));
  // Atomic: a crash or Ctrl-C mid-write leaves the previous checkpoint intact.
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  const fs::path tmp = path.string() + ".tmp";
  archive.save_to(tmp.string());
  fs::rename(tmp, path);
}
// ANCHOR_END: checkpoint_save

void Trainer::load(const fs::path& path) {
  auto archive = open_checkpoint(path, device_);
  const json info = read_info(archive, path);
  check_config(model_config_, info, path);
  // The EMA weights first (they seed a fresh EMA), then the trained weights.
  load_module(*model_, archive, "ema", path);
  verify_checksum(stored_checksum(info, "ema"), tensors_checksum(named_state(*model_)), path,
                  "EMA weights");
  ema_ = std::make_unique<nn::EMA>(*model_, config_.ema_decay, config_.ema_warmup);
  const auto shadow = ema_->named_shadow();  // a copy: keep the update count for the decay warmup
  ema_->load_shadow(shadow, info.value("ema_updates", int64_t(0)));
  load_module(*model_, archive, "model", path);
  verify_checksum(stored_checksum(info, "model"), tensors_checksum(named_state(*model_)), path);
  torch::serialize::InputArchive optim_archive;
  try {
    archive.read("optimizer", optim_archive);
    optimizer_->load(optim_archive);
  } catch (const c10::Error&) {
    throw Error("checkpoint " + path.string() + ": the optimizer state does not fit this network");
  }
  verify_checksum(stored_checksum(info, "optimizer"),
                  tensors_checksum(adam_state(*optimizer_, params_)), path, "optimizer state");
  if (channels_last_) to_channels_last(*model_);
  step_ = info.value("step", int64_t(0));
  loss_steps_ = info.value("loss_steps", std::vector<double>{});
  losses_ = info.value("losses", std::vector<double>{});
  const json window = info.value("loss_window", json::object());
  window_sum_ = window.value("sum", 0.0);
  window_n_ = window.value("count", int64_t(0));
}

// ANCHOR: mixed_precision
namespace {
// Autocast to bf16 on CUDA for one scope: matmuls and convolutions run in
// bf16, reductions and the loss in float32. bf16 has float32's range, so
// unlike float16 it needs no loss scaling.
class CudaBf16Autocast {
 public:
  explicit CudaBf16Autocast(bool on) : on_(on) {
    if (!on_) return;
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    was_enabled_ = at::autocast::is_autocast_enabled(at::kCUDA);
    was_dtype_ = at::autocast::get_autocast_dtype(at::kCUDA);
    at::autocast::set_autocast_enabled(at::kCUDA, true);
    at::autocast::set_autocast_dtype(at::kCUDA, at::kBFloat16);
#else
    was_enabled_ = at::autocast::is_enabled();
    was_dtype_ = at::autocast::get_autocast_gpu_dtype();
    at::autocast::set_enabled(true);
    at::autocast::set_autocast_gpu_dtype(at::kBFloat16);
#endif
    at::autocast::increment_nesting();
  }
  ~CudaBf16Autocast() {
    if (!on_) return;
    if (at::autocast::decrement_nesting() == 0) at::autocast::clear_cache();
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 4)
    at::autocast::set_autocast_enabled(at::kCUDA, was_enabled_);
    at::autocast::set_autocast_dtype(at::kCUDA, was_dtype_);
#else
    at::autocast::set_enabled(was_enabled_);
    at::autocast::set_autocast_gpu_dtype(was_dtype_);
#endif
  }
  CudaBf16Autocast(const CudaBf16Autocast&) = delete;
  CudaBf16Autocast& operator=(const CudaBf16Autocast&) = delete;

 private:
  bool on_, was_enabled_ = false;
  at::ScalarType was_dtype_ = at::kBFloat16;
};
}  // namespace

void to_channels_last(torch::nn::Module& module) {
  torch::NoGradGuard no_grad;
  for (auto& p : module.parameters())
    if (p.dim() == 4) p.set_data(p.data().contiguous(at::MemoryFormat::ChannelsLast));
}
// ANCHOR_END: mixed_precision

// ANCHOR: clip_grad_norm
torch::Tensor clip_grad_norm(const std::vector<torch::Tensor>& parameters, double max_norm) {
  std::vector<torch::Tensor> grads;
  for (const auto& p : parameters)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (grads.empty()) return torch::zeros({});
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> norms;
  norms.reserve(grads.size());
  for (const auto& g : grads) norms.push_back(g.norm());
  const auto total = torch::stack(norms).norm();  // ‖g‖ = √Σ‖g_i‖²
  // g ← g · min(1, max_norm / (‖g‖ + 10⁻⁶)), as torch.nn.utils.clip_grad_norm_
  const auto coef = (max_norm / (total + 1e-6)).clamp_max(1.0);
  for (auto& g : grads) g.mul_(coef);
  return total;
}
// ANCHOR_END: clip_grad_norm

void clear_grads(const std::vector<torch::Tensor>& parameters) {
  for (const auto& p : parameters) {
    auto& g = const_cast<torch::Tensor&>(p).mutable_grad();
    if (g.defined()) g = torch::Tensor();
  }
}

// ANCHOR: train_step
torch::Tensor Trainer::train_step(const std::function<torch::Tensor(int64_t)>& loss_fn) {
  const int64_t step = step_ + 1;
  if (config_.reseed_each_step) torch::manual_seed(stream_seed(config_.seed, uint64_t(step)));
  for (auto& group : optimizer_->param_groups())
    static_cast<torch::optim::AdamOptions&>(group.options()).lr(learning_rate(config_, step));
  clear_grads(params_);
  torch::Tensor loss;
  {
    CudaBf16Autocast autocast(bf16_);  // the forward pass and the loss only
    loss = loss_fn(step);
  }
  loss.backward();
  if (config_.grad_clip > 0) clip_grad_norm(params_, config_.grad_clip);
  optimizer_->step();
  ema_->update(*model_);  // θ_EMA ← d·θ_EMA + (1 − d)·θ
  step_ = step;
  return loss.detach();
}
// ANCHOR_END: train_step

// ANCHOR: train_loop
TrainResult Trainer::run(const std::function<torch::Tensor(int64_t)>& loss_fn,
                         const fs::path& checkpoint, bool resume,
                         const std::function<void(int64_t, double)>& on_log,
                         const std::string& progress_label) {
  TrainResult result;
  const bool saving = !checkpoint.empty();
  if (saving && resume && fs::exists(checkpoint)) {
    load(checkpoint);
    result.resumed_from = step_;
    std::printf("resuming from %s at step %lld\n", checkpoint.string().c_str(), (long long)step_);
  }
  model_->train();
  SigintGuard sigint;
  Timer timer;
  Progress bar(progress_label, config_.steps - step_);
  // Reading a loss back makes the host wait for the device. On the CPU that
  // costs nothing and every loss is read as it comes; on a GPU the losses are
  // summed on the device and read every read_loss_every steps (default: once
  // per log window) — and always before a checkpoint is written, so a
  // non-finite loss never reaches a file.
  const int64_t read_every = config_.read_loss_every > 0 ? config_.read_loss_every
                             : device_.is_cpu()          ? 1
                                                         : config_.log_every;
  torch::Tensor unread;  // the device-side sum of the losses not read yet
  int64_t unread_n = 0;
  char status[48] = "";
  auto read_losses = [&] {  // one sync
    if (!unread.defined()) return;
    const double sum = unread.item<double>();
    if (!std::isfinite(sum)) {
      const int64_t from = step_ - unread_n + 1;
      const std::string when =
          unread_n == 1 ? "at step " + std::to_string(step_)
                        : "between steps " + std::to_string(from) + " and " + std::to_string(step_);
      throw Error("the loss became " + std::string(std::isnan(sum) ? "NaN" : "infinite") + " " +
                      when + "; training stopped",
                  saving && fs::exists(checkpoint)
                      ? "the last good checkpoint is " + checkpoint.string() +
                            " (unchanged); try a lower learning rate, then --resume"
                      : "no checkpoint was written yet; try a lower learning rate");
    }
    std::snprintf(status, sizeof status, "loss %.4f", sum / double(unread_n));
    window_sum_ += sum;
    window_n_ += unread_n;
    unread = torch::Tensor();
    unread_n = 0;
  };
  while (step_ < config_.steps) {
    const auto loss = train_step(loss_fn).to(torch::kFloat64);
    const int64_t step = step_;
    unread = unread.defined() ? unread + loss : loss;
    ++unread_n;
    const bool log_now = step % config_.log_every == 0 || step == config_.steps;
    const bool save_now =
        saving && (step % config_.checkpoint_every == 0 || step == config_.steps || g_interrupted);
    if (step % read_every == 0 || log_now || save_now) read_losses();
    if (log_now) {
      const double mean = window_sum_ / double(window_n_);
      loss_steps_.push_back(double(step));
      losses_.push_back(mean);
      window_sum_ = 0;
      window_n_ = 0;
      if (on_log) on_log(step, mean);
    }
    bar.tick(1, status);
    if (save_now) save(checkpoint);
    if (g_interrupted) {
      bar.finish();
      if (!saving)
        throw Interrupted("interrupted at step " + std::to_string(step) + " of " +
                          std::to_string(config_.steps) + " of " + progress_label +
                          "; this small model is not saved: the next run trains it again from "
                          "the start");
      throw Interrupted("interrupted at step " + std::to_string(step) + "; checkpoint saved to " +
                        checkpoint.string() + " (rerun with --resume to continue from step " +
                        std::to_string(step) +
                        (config_.reseed_each_step ? ", exactly as if it had not stopped)" : ")"));
    }
  }
  bar.finish();
  model_->eval();
  result.step = step_;
  result.loss_steps = loss_steps_;
  result.losses = losses_;
  result.seconds = timer.seconds();
  return result;
}
// ANCHOR_END: train_loop

}  // namespace dm::train
