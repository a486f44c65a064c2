#include "dm/nn/networks.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "dm/base/core.hpp"

namespace dm::nn {

namespace F = torch::nn::functional;

namespace {

std::string shape_of(const torch::Tensor& t) {
  std::ostringstream s;
  s << t.sizes();
  return s.str();
}

std::string join(const std::vector<int64_t>& v, const char* sep) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) out += (i ? sep : "") + std::to_string(v[i]);
  return out;
}

// "1.03M", "41.2k", "512".
std::string format_count(int64_t n) {
  char buf[32];
  if (n >= 1000000)
    std::snprintf(buf, sizeof buf, "%.2fM", double(n) / 1e6);
  else if (n >= 1000)
    std::snprintf(buf, sizeof buf, "%.1fk", double(n) / 1e3);
  else
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(n));
  return buf;
}

// t [N] (or a single value, broadcast over the batch) as a float vector of length n.
torch::Tensor batch_labels(const torch::Tensor& t, int64_t n, const char* who) {
  if (!t.defined()) throw Error(std::string(who) + ": the noise label t is missing");
  if (t.numel() == 1) return t.reshape({1}).expand({n});
  if (t.dim() != 1 || t.size(0) != n)
    throw Error(std::string(who) + ": t must be [N] = [" + std::to_string(n) +
                "] (one label per row), got " + shape_of(t));
  return t;
}

// The frequencies for labels like `label`, computed again only when the
// label's dtype or device changes. Created outside inference mode, so that a
// net that sampled can train afterwards.
const torch::Tensor& frequencies_for(torch::Tensor& cache, const torch::Tensor& label,
                                     int64_t dim) {
  if (!cache.defined() || cache.device() != label.device() ||
      cache.scalar_type() != label.scalar_type()) {
    c10::InferenceMode normal_tensors(false);
    cache = sinusoidal_frequencies(dim, 10000.0, label.options());
  }
  return cache;
}

// Class labels → embedding rows: 0…K−1 stay, −1 (or no labels at all) → K, the null class.
torch::Tensor class_rows(const torch::Tensor& labels, int64_t num_classes, int64_t n,
                         const torch::Device& device, const char* who) {
  if (!labels.defined())
    return torch::full({n}, num_classes, torch::dtype(torch::kLong).device(device));
  if (labels.dim() != 1 || labels.size(0) != n)
    throw Error(std::string(who) + ": labels must be [N] = [" + std::to_string(n) + "], got " +
                shape_of(labels));
  if (labels.scalar_type() != torch::kLong)
    throw Error(std::string(who) + ": labels must be int64 (torch::kLong)");
  // The range check reads the values back; only on the CPU, where that costs no sync.
  if (labels.device().is_cpu() && n > 0) {
    const int64_t lo = labels.min().item<int64_t>(), hi = labels.max().item<int64_t>();
    if (lo < -1 || hi >= num_classes)
      throw Error(std::string(who) + ": labels must lie in 0…" + std::to_string(num_classes - 1) +
                  " or be −1 (no class); got values in " + std::to_string(lo) + "…" +
                  std::to_string(hi));
  }
  return torch::where(labels < 0, torch::full_like(labels, num_classes), labels).to(device);
}

// JSON readers that turn nlohmann's type errors into one clear dm::Error.
void check_keys(const nlohmann::json& j, const std::vector<std::string>& known, const char* who) {
  if (!j.is_object()) throw Error(std::string(who) + ": expected a JSON object");
  for (const auto& item : j.items())
    if (std::find(known.begin(), known.end(), item.key()) == known.end())
      throw Error(std::string(who) + ": unknown key \"" + item.key() + "\"");
}

void read_int(const nlohmann::json& j, const char* key, int64_t& out, const char* who) {
  if (!j.contains(key)) return;
  if (!j.at(key).is_number_integer())
    throw Error(std::string(who) + ": \"" + key + "\" must be an integer");
  out = j.at(key).get<int64_t>();
}

void read_ints(const nlohmann::json& j, const char* key, std::vector<int64_t>& out,
               const char* who) {
  if (!j.contains(key)) return;
  const auto& v = j.at(key);
  if (!v.is_array())
    throw Error(std::string(who) + ": \"" + key + "\" must be an array of integers");
  out.clear();
  for (const auto& x : v) {
    if (!x.is_number_integer())
      throw Error(std::string(who) + ": \"" + key + "\" must be an array of integers");
    out.push_back(x.get<int64_t>());
  }
}

}  // namespace

// ---------------------------------------------------------------------------
// Time embedding

// ANCHOR: sinusoidal_embedding_impl
torch::Tensor sinusoidal_frequencies(int64_t dim, double max_period,
                                     const torch::TensorOptions& options) {
  if (dim < 2)
    throw Error("sinusoidal_embedding: dim must be at least 2, got " + std::to_string(dim));
  const int64_t half = dim / 2;
  // ω_i = exp(−ln(max_period)·i/(h−1)), i = 0…h−1  (h = 1: ω_0 = 1)
  const double step = half > 1 ? std::log(max_period) / double(half - 1) : 0.0;
  return torch::exp(-step * torch::arange(half, options));
}

torch::Tensor sinusoidal_embedding(const torch::Tensor& t, const torch::Tensor& omega,
                                   int64_t dim) {
  if (t.dim() != 1) throw Error("sinusoidal_embedding: t must be [N], got " + shape_of(t));
  const auto angle = t.unsqueeze(1) * omega.unsqueeze(0);  // [N, h]
  auto emb = torch::cat({torch::sin(angle), torch::cos(angle)}, 1);
  if (dim % 2 == 1) emb = F::pad(emb, F::PadFuncOptions({0, 1}));
  return emb;
}

torch::Tensor sinusoidal_embedding(const torch::Tensor& t_in, int64_t dim, double max_period) {
  const auto t = t_in.is_floating_point() ? t_in : t_in.to(torch::kFloat32);
  return sinusoidal_embedding(t, sinusoidal_frequencies(dim, max_period, t.options()), dim);
}
// ANCHOR_END: sinusoidal_embedding_impl

// ---------------------------------------------------------------------------
// UNetConfig

bool operator==(const UNetConfig& a, const UNetConfig& b) {
  return a.in_channels == b.in_channels && a.out_channels == b.out_channels &&
         a.base_channels == b.base_channels && a.channel_mults == b.channel_mults &&
         a.res_blocks == b.res_blocks && a.attention_resolutions == b.attention_resolutions &&
         a.dropout == b.dropout && a.num_classes == b.num_classes &&
         a.cond_channels == b.cond_channels && a.groups == b.groups && a.image_size == b.image_size;
}

void validate(const UNetConfig& c) {
  auto fail = [](const std::string& what) { throw Error("UNetConfig: " + what); };
  if (c.in_channels < 1 || c.out_channels < 1) fail("in_channels and out_channels must be >= 1");
  if (c.base_channels < 1) fail("base_channels must be >= 1");
  if (c.channel_mults.empty()) fail("channel_mults must name at least one level");
  if (c.res_blocks < 1) fail("res_blocks must be >= 1");
  if (c.dropout < 0 || c.dropout >= 1) fail("dropout must lie in [0, 1)");
  if (c.num_classes < 0 || c.cond_channels < 0) fail("num_classes and cond_channels must be >= 0");
  if (c.groups < 1) fail("groups must be >= 1");
  // Every channel count is base·mult or a sum of such counts (the skip
  // concatenations), so groups | base is exactly what GroupNorm needs.
  if (c.base_channels % c.groups != 0)
    fail("groups = " + std::to_string(c.groups) +
         " does not divide base_channels = " + std::to_string(c.base_channels) +
         " (GroupNorm needs every channel count divisible by groups)");
  for (int64_t mult : c.channel_mults)
    if (mult < 1) fail("channel_mults must be >= 1");
  const int64_t factor = int64_t(1) << (c.channel_mults.size() - 1);
  if (c.image_size < 1 || c.image_size % factor != 0)
    fail("image_size = " + std::to_string(c.image_size) + " is not divisible by " +
         std::to_string(factor) + " = 2^(levels−1)");
  std::vector<int64_t> sizes;
  for (size_t i = 0; i < c.channel_mults.size(); ++i) sizes.push_back(c.image_size >> i);
  for (int64_t r : c.attention_resolutions)
    if (std::find(sizes.begin(), sizes.end(), r) == sizes.end())
      fail("attention resolution " + std::to_string(r) + " is none of the levels' sizes " +
           join(sizes, ", "));
}

nlohmann::json to_json(const UNetConfig& c) {
  return {{"model", "unet"},
          {"in_channels", c.in_channels},
          {"out_channels", c.out_channels},
          {"base_channels", c.base_channels},
          {"channel_mults", c.channel_mults},
          {"res_blocks", c.res_blocks},
          {"attention_resolutions", c.attention_resolutions},
          {"dropout", c.dropout},
          {"num_classes", c.num_classes},
          {"cond_channels", c.cond_channels},
          {"groups", c.groups},
          {"image_size", c.image_size}};
}

UNetConfig unet_config_from_json(const nlohmann::json& j) {
  const char* who = "unet_config_from_json";
  check_keys(
      j,
      {"model", "in_channels", "out_channels", "base_channels", "channel_mults", "res_blocks",
       "attention_resolutions", "dropout", "num_classes", "cond_channels", "groups", "image_size"},
      who);
  if (j.contains("model") && j.at("model") != "unet")
    throw Error(std::string(who) + ": this is the configuration of a \"" + j.at("model").dump() +
                "\" model, not a U-Net");
  UNetConfig c;
  read_int(j, "in_channels", c.in_channels, who);
  read_int(j, "out_channels", c.out_channels, who);
  read_int(j, "base_channels", c.base_channels, who);
  read_ints(j, "channel_mults", c.channel_mults, who);
  read_int(j, "res_blocks", c.res_blocks, who);
  read_ints(j, "attention_resolutions", c.attention_resolutions, who);
  if (j.contains("dropout")) {
    if (!j.at("dropout").is_number())
      throw Error(std::string(who) + ": \"dropout\" must be a number");
    c.dropout = j.at("dropout").get<double>();
  }
  read_int(j, "num_classes", c.num_classes, who);
  read_int(j, "cond_channels", c.cond_channels, who);
  read_int(j, "groups", c.groups, who);
  read_int(j, "image_size", c.image_size, who);
  validate(c);
  return c;
}

// ---------------------------------------------------------------------------
// Blocks

ResBlockImpl::ResBlockImpl(int64_t in_channels, int64_t out_channels, int64_t temb_dim,
                           int64_t groups, double dropout) {
  using namespace torch::nn;
  norm1_ = register_module("norm1", GroupNorm(GroupNormOptions(groups, in_channels)));
  conv1_ = register_module("conv1", Conv2d(Conv2dOptions(in_channels, out_channels, 3).padding(1)));
  temb_proj_ = register_module("temb_proj", Linear(temb_dim, out_channels));
  norm2_ = register_module("norm2", GroupNorm(GroupNormOptions(groups, out_channels)));
  dropout_ = register_module("dropout", Dropout(DropoutOptions(dropout)));
  conv2_ =
      register_module("conv2", Conv2d(Conv2dOptions(out_channels, out_channels, 3).padding(1)));
  if (in_channels != out_channels)
    skip_ = register_module("skip", Conv2d(Conv2dOptions(in_channels, out_channels, 1)));
}

// ANCHOR: resblock
torch::Tensor ResBlockImpl::forward(const torch::Tensor& x, const torch::Tensor& temb) {
  auto h = conv1_(torch::silu(norm1_(x)));
  // The time (and class) embedding shifts every channel: + Linear(SiLU(temb))[n, c, ·, ·].
  h = h + temb_proj_(torch::silu(temb)).unsqueeze(-1).unsqueeze(-1);
  h = conv2_(dropout_(torch::silu(norm2_(h))));
  return (skip_ ? skip_(x) : x) + h;
}
// ANCHOR_END: resblock

AttentionBlockImpl::AttentionBlockImpl(int64_t channels, int64_t groups) {
  using namespace torch::nn;
  norm_ = register_module("norm", GroupNorm(GroupNormOptions(groups, channels)));
  qkv_ = register_module("qkv", Conv2d(Conv2dOptions(channels, 3 * channels, 1)));
  proj_ = register_module("proj", Conv2d(Conv2dOptions(channels, channels, 1)));
}

// ANCHOR: attention
torch::Tensor AttentionBlockImpl::forward(const torch::Tensor& x) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  const auto qkv = qkv_(norm_(x)).reshape({N, 3, C, H * W});
  const auto q = qkv.select(1, 0), k = qkv.select(1, 1), v = qkv.select(1, 2);  // [N, C, HW]
  // A = softmax(QᵀK/√C) over the keys: row i says where position i looks.
  const auto attn =
      torch::softmax(torch::bmm(q.transpose(1, 2), k) / std::sqrt(double(C)), -1);  // [N, HW, HW]
  // out[:, :, i] = Σ_j A[i, j] v[:, :, j]
  const auto out = torch::bmm(v, attn.transpose(1, 2)).reshape({N, C, H, W});
  return x + proj_(out);
}
// ANCHOR_END: attention

// ---------------------------------------------------------------------------
// UNet

UNetImpl::UNetImpl(UNetConfig config) : config_(std::move(config)) {
  using namespace torch::nn;
  validate(config_);
  const auto& c = config_;
  const int64_t temb_dim = 4 * c.base_channels;
  const int64_t levels = int64_t(c.channel_mults.size());
  auto has_attention = [&](int64_t size) {
    return std::find(c.attention_resolutions.begin(), c.attention_resolutions.end(), size) !=
           c.attention_resolutions.end();
  };

  time_fc1_ = register_module("time_fc1", Linear(c.base_channels, temb_dim));
  time_fc2_ = register_module("time_fc2", Linear(temb_dim, temb_dim));
  if (c.num_classes > 0)
    class_embedding_ = register_module("class_embedding", Embedding(c.num_classes + 1, temb_dim));
  conv_in_ = register_module(
      "conv_in",
      Conv2d(Conv2dOptions(c.in_channels + c.cond_channels, c.base_channels, 3).padding(1)));

  // Down: remember the channel count of every tensor pushed onto the skip stack.
  std::vector<int64_t> skip_channels = {c.base_channels};
  int64_t ch = c.base_channels, size = c.image_size;
  for (int64_t i = 0; i < levels; ++i) {
    Level level;
    const int64_t out = c.base_channels * c.channel_mults[i];
    const std::string prefix = "down" + std::to_string(i) + "_";
    for (int64_t r = 0; r < c.res_blocks; ++r) {
      level.res.push_back(register_module(prefix + "res" + std::to_string(r),
                                          ResBlock(ch, out, temb_dim, c.groups, c.dropout)));
      ch = out;
      level.attn.push_back(
          has_attention(size)
              ? register_module(prefix + "attn" + std::to_string(r), AttentionBlock(ch, c.groups))
              : AttentionBlock(nullptr));
      skip_channels.push_back(ch);
    }
    if (i + 1 < levels) {
      level.resample = register_module(prefix + "downsample",
                                       Conv2d(Conv2dOptions(ch, ch, 3).stride(2).padding(1)));
      skip_channels.push_back(ch);
      size /= 2;
    }
    down_.push_back(std::move(level));
  }

  mid_res1_ = register_module("mid_res1", ResBlock(ch, ch, temb_dim, c.groups, c.dropout));
  mid_attn_ = register_module("mid_attn", AttentionBlock(ch, c.groups));
  mid_res2_ = register_module("mid_res2", ResBlock(ch, ch, temb_dim, c.groups, c.dropout));

  // Up: one more ResBlock per level than on the way down, each eating one skip.
  for (int64_t i = levels - 1; i >= 0; --i) {
    Level level;
    const int64_t out = c.base_channels * c.channel_mults[i];
    const std::string prefix = "up" + std::to_string(i) + "_";
    for (int64_t r = 0; r <= c.res_blocks; ++r) {
      const int64_t skip = skip_channels.back();
      skip_channels.pop_back();
      level.res.push_back(register_module(prefix + "res" + std::to_string(r),
                                          ResBlock(ch + skip, out, temb_dim, c.groups, c.dropout)));
      ch = out;
      level.attn.push_back(
          has_attention(size)
              ? register_module(prefix + "attn" + std::to_string(r), AttentionBlock(ch, c.groups))
              : AttentionBlock(nullptr));
    }
    if (i > 0) {
      level.resample =
          register_module(prefix + "upsample", Conv2d(Conv2dOptions(ch, ch, 3).padding(1)));
      size *= 2;
    }
    up_.push_back(std::move(level));
  }

  norm_out_ = register_module("norm_out", GroupNorm(GroupNormOptions(c.groups, ch)));
  conv_out_ = register_module("conv_out", Conv2d(Conv2dOptions(ch, c.out_channels, 3).padding(1)));
  // ANCHOR: zero_init
  // The last conv starts at zero, so the untrained net predicts ε̂ = 0 (score 0):
  // the best constant guess, with the loss starting at E‖ε‖² instead of at a
  // random network's much larger error. DDPM (init scale 1e-10) and
  // guided-diffusion (zero_module) do the same. Its gradient is not zero, so
  // every other layer receives gradient from the first update on.
  torch::NoGradGuard no_grad;
  conv_out_->weight.zero_();
  conv_out_->bias.zero_();
  // ANCHOR_END: zero_init
}

void UNetImpl::check_inputs(const torch::Tensor& x, const torch::Tensor& labels,
                            const torch::Tensor& cond) const {
  const auto& c = config_;
  if (!x.defined() || x.dim() != 4)
    throw Error("UNet: x must be [N, C, H, W], got " + (x.defined() ? shape_of(x) : "nothing"));
  if (x.size(1) != c.in_channels)
    throw Error("UNet: x has " + std::to_string(x.size(1)) +
                " channels, the net expects in_channels = " + std::to_string(c.in_channels));
  const int64_t factor = int64_t(1) << (c.channel_mults.size() - 1);
  if (x.size(2) % factor != 0 || x.size(3) % factor != 0)
    throw Error("UNet: image size " + std::to_string(x.size(2)) + "×" + std::to_string(x.size(3)) +
                " is not divisible by " + std::to_string(factor) + " = 2^(levels−1) for " +
                std::to_string(c.channel_mults.size()) + " levels");
  if (labels.defined() && c.num_classes == 0)
    throw Error("UNet: labels given to an unconditional net (num_classes = 0)",
                "build the net with UNetConfig::num_classes > 0 to condition on a class");
  if (c.cond_channels > 0) {
    if (!cond.defined())
      throw Error("UNet: the net expects a conditioning input cond [N, " +
                  std::to_string(c.cond_channels) +
                  ", H, W] (cond_channels = " + std::to_string(c.cond_channels) + ")");
    if (cond.dim() != 4 || cond.size(0) != x.size(0) || cond.size(1) != c.cond_channels ||
        cond.size(2) != x.size(2) || cond.size(3) != x.size(3))
      throw Error("UNet: cond must be [N, cond_channels, H, W] = [" + std::to_string(x.size(0)) +
                  ", " + std::to_string(c.cond_channels) + ", " + std::to_string(x.size(2)) + ", " +
                  std::to_string(x.size(3)) + "], got " + shape_of(cond));
  } else if (cond.defined()) {
    throw Error("UNet: cond given to a net without a conditioning input (cond_channels = 0)");
  }
}

torch::Tensor UNetImpl::time_embedding(const torch::Tensor& t, const torch::Tensor& labels,
                                       int64_t n) {
  const auto label = batch_labels(t, n, "UNet").to(time_fc1_->weight.options());
  // temb = W₂ SiLU(W₁ e(t) + b₁) + b₂  (+ the class's embedding)
  const int64_t dim = config_.base_channels;
  auto temb = time_fc2_(torch::silu(
      time_fc1_(sinusoidal_embedding(label, frequencies_for(omega_, label, dim), dim))));
  if (config_.num_classes > 0)
    temb =
        temb + class_embedding_(class_rows(labels, config_.num_classes, n, temb.device(), "UNet"));
  return temb;
}

// ANCHOR: unet_forward
torch::Tensor UNetImpl::forward(const torch::Tensor& x, const torch::Tensor& t,
                                const torch::Tensor& labels, const torch::Tensor& cond) {
  check_inputs(x, labels, cond);  // t is checked where it is embedded
  const auto temb = time_embedding(t, labels, x.size(0));

  auto h = conv_in_(config_.cond_channels > 0 ? torch::cat({x, cond}, 1) : x);
  std::vector<torch::Tensor> skips = {h};
  for (auto& level : down_) {
    for (size_t r = 0; r < level.res.size(); ++r) {
      h = level.res[r](h, temb);
      if (level.attn[r]) h = level.attn[r](h);
      skips.push_back(h);
    }
    if (level.resample) {
      h = level.resample(h);  // ↓2: 3×3 conv with stride 2
      skips.push_back(h);
    }
  }

  h = mid_res2_(mid_attn_(mid_res1_(h, temb)), temb);

  for (auto& level : up_) {
    for (size_t r = 0; r < level.res.size(); ++r) {
      h = level.res[r](torch::cat({h, skips.back()}, 1), temb);
      skips.pop_back();
      if (level.attn[r]) h = level.attn[r](h);
    }
    if (level.resample) {
      // ↑2: nearest-neighbour upsampling, then a 3×3 conv
      h = F::interpolate(h, F::InterpolateFuncOptions()
                                .size(std::vector<int64_t>{2 * h.size(2), 2 * h.size(3)})
                                .mode(torch::kNearest));
      h = level.resample(h);
    }
  }
  return conv_out_(torch::silu(norm_out_(h)));
}
// ANCHOR_END: unet_forward

// ---------------------------------------------------------------------------
// MLPConfig and ScoreMLP

bool operator==(const MLPConfig& a, const MLPConfig& b) {
  return a.dim == b.dim && a.hidden == b.hidden && a.layers == b.layers &&
         a.time_dim == b.time_dim && a.num_classes == b.num_classes;
}

void validate(const MLPConfig& c) {
  auto fail = [](const std::string& what) { throw Error("MLPConfig: " + what); };
  if (c.dim < 1 || c.hidden < 1 || c.layers < 1) fail("dim, hidden and layers must be >= 1");
  if (c.time_dim == 1 || c.time_dim < 0) fail("time_dim must be 0 (no time input) or >= 2");
  if (c.num_classes < 0) fail("num_classes must be >= 0");
}

nlohmann::json to_json(const MLPConfig& c) {
  return {{"model", "score_mlp"}, {"dim", c.dim},           {"hidden", c.hidden},
          {"layers", c.layers},   {"time_dim", c.time_dim}, {"num_classes", c.num_classes}};
}

MLPConfig mlp_config_from_json(const nlohmann::json& j) {
  const char* who = "mlp_config_from_json";
  check_keys(j, {"model", "dim", "hidden", "layers", "time_dim", "num_classes"}, who);
  if (j.contains("model") && j.at("model") != "score_mlp")
    throw Error(std::string(who) + ": this is the configuration of a \"" + j.at("model").dump() +
                "\" model, not a score MLP");
  MLPConfig c;
  read_int(j, "dim", c.dim, who);
  read_int(j, "hidden", c.hidden, who);
  read_int(j, "layers", c.layers, who);
  read_int(j, "time_dim", c.time_dim, who);
  read_int(j, "num_classes", c.num_classes, who);
  validate(c);
  return c;
}

ScoreMLPImpl::ScoreMLPImpl(MLPConfig config) : config_(std::move(config)) {
  using namespace torch::nn;
  validate(config_);
  const auto& c = config_;
  const bool conditioned = c.time_dim > 0 || c.num_classes > 0;
  if (c.time_dim > 0) time_fc_ = register_module("time_fc", Linear(c.time_dim, c.hidden));
  if (c.num_classes > 0)
    class_embedding_ = register_module("class_embedding", Embedding(c.num_classes + 1, c.hidden));
  for (int64_t l = 0; l < c.layers; ++l) {
    hidden_.push_back(
        register_module("hidden" + std::to_string(l), Linear(l == 0 ? c.dim : c.hidden, c.hidden)));
    if (conditioned)
      cond_proj_.push_back(
          register_module("cond_proj" + std::to_string(l), Linear(c.hidden, c.hidden)));
  }
  out_ = register_module("out", Linear(c.hidden, c.dim));
}

// ANCHOR: score_mlp_forward
torch::Tensor ScoreMLPImpl::forward(const torch::Tensor& x, const torch::Tensor& t,
                                    const torch::Tensor& labels) {
  const auto& c = config_;
  if (!x.defined() || x.dim() != 2 || x.size(1) != c.dim)
    throw Error("ScoreMLP: x must be [N, dim] = [N, " + std::to_string(c.dim) + "], got " +
                (x.defined() ? shape_of(x) : "nothing"));
  if (labels.defined() && c.num_classes == 0)
    throw Error("ScoreMLP: labels given to an unconditional net (num_classes = 0)");
  const int64_t n = x.size(0);
  // e = SiLU(W e(t) + b) (+ class embedding): the conditioning every layer sees.
  torch::Tensor e;
  if (c.time_dim > 0) {
    const auto label = batch_labels(t, n, "ScoreMLP").to(time_fc_->weight.options());
    e = torch::silu(time_fc_(
        sinusoidal_embedding(label, frequencies_for(omega_, label, c.time_dim), c.time_dim)));
  }
  if (c.num_classes > 0) {
    const auto y = class_embedding_(class_rows(labels, c.num_classes, n, x.device(), "ScoreMLP"));
    e = e.defined() ? e + y : y;
  }
  auto h = x;
  for (size_t l = 0; l < hidden_.size(); ++l) {
    auto pre = hidden_[l](h);
    if (e.defined()) pre = pre + cond_proj_[l](e);
    h = torch::silu(pre);
  }
  return out_(h);
}
// ANCHOR_END: score_mlp_forward

// ---------------------------------------------------------------------------
// Size and description

int64_t parameter_count(const torch::nn::Module& module) {
  int64_t n = 0;
  for (const auto& p : module.parameters(/*recurse=*/true)) n += p.numel();
  return n;
}

std::string describe(const UNetImpl& net) {
  const auto& c = net.config();
  std::string s = "U-Net " + format_count(parameter_count(net)) + " parameters (base " +
                  std::to_string(c.base_channels) + ", mults " + join(c.channel_mults, "-");
  if (c.res_blocks != 1) s += ", " + std::to_string(c.res_blocks) + " res blocks per level";
  s += c.attention_resolutions.empty() ? ", attention in the middle only"
                                       : ", attention at " + join(c.attention_resolutions, ",");
  if (c.in_channels != 1 || c.out_channels != 1)
    s += ", " + std::to_string(c.in_channels) + "→" + std::to_string(c.out_channels) + " channels";
  if (c.num_classes > 0) s += ", " + std::to_string(c.num_classes) + " classes + null";
  if (c.cond_channels > 0) s += ", " + std::to_string(c.cond_channels) + " conditioning channels";
  if (c.dropout > 0) s += ", dropout " + std::to_string(c.dropout).substr(0, 4);
  return s + ")";
}

std::string describe(const ScoreMLPImpl& net) {
  const auto& c = net.config();
  std::string s = "Score MLP " + format_count(parameter_count(net)) + " parameters (dim " +
                  std::to_string(c.dim) + ", hidden " + std::to_string(c.hidden) + ", " +
                  std::to_string(c.layers) + " layers";
  s += c.time_dim > 0 ? ", time embedding " + std::to_string(c.time_dim) : ", no time input";
  if (c.num_classes > 0) s += ", " + std::to_string(c.num_classes) + " classes + null";
  return s + ")";
}

// ---------------------------------------------------------------------------
// EMA

namespace {
// The model's parameters then buffers, in registration order.
std::vector<std::pair<std::string, torch::Tensor>> named_state(const torch::nn::Module& model,
                                                               size_t* num_params = nullptr) {
  std::vector<std::pair<std::string, torch::Tensor>> out;
  for (const auto& item : model.named_parameters(true)) out.emplace_back(item.key(), item.value());
  if (num_params) *num_params = out.size();
  for (const auto& item : model.named_buffers(true)) out.emplace_back(item.key(), item.value());
  return out;
}

// Checks that `state` has the names (and shapes) of `ref`.
void check_same(const std::vector<std::pair<std::string, torch::Tensor>>& ref,
                const std::vector<std::pair<std::string, torch::Tensor>>& state, const char* who) {
  if (ref.size() != state.size())
    throw Error(std::string(who) + ": the model has " + std::to_string(state.size()) +
                " parameters and buffers, the EMA " + std::to_string(ref.size()) +
                " — not the same model");
  for (size_t i = 0; i < ref.size(); ++i)
    if (ref[i].first != state[i].first || ref[i].second.sizes() != state[i].second.sizes())
      throw Error(std::string(who) + ": \"" + state[i].first + "\" " + shape_of(state[i].second) +
                  " does not match the EMA's \"" + ref[i].first + "\" " + shape_of(ref[i].second) +
                  " — not the same model");
}

void copy_state(const std::vector<std::pair<std::string, torch::Tensor>>& from,
                const std::vector<std::pair<std::string, torch::Tensor>>& to) {
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < from.size(); ++i) to[i].second.copy_(from[i].second);
}
}  // namespace

EMA::EMA(const torch::nn::Module& model, double decay, bool warmup)
    : decay_(decay), warmup_(warmup) {
  if (!(decay >= 0 && decay <= 1))
    throw Error("EMA: decay must lie in [0, 1], got " + std::to_string(decay));
  torch::NoGradGuard no_grad;
  shadow_ = named_state(model, &num_params_);
  for (auto& item : shadow_) item.second = item.second.detach().clone();
}

double EMA::decay_at(int64_t n) const {
  return warmup_ ? std::min(decay_, (1.0 + double(n)) / (10.0 + double(n))) : decay_;
}

// ANCHOR: ema_update
void EMA::update(const torch::nn::Module& model) {
  const auto state = named_state(model);
  check_same(shadow_, state, "EMA::update");
  torch::NoGradGuard no_grad;
  const double d = decay_at(++updates_);
  for (size_t i = 0; i < shadow_.size(); ++i) {
    auto& shadow = shadow_[i].second;
    const auto& value = state[i].second;
    if (shadow.device() != value.device())
      shadow = shadow.to(value.device());  // follow model.to(device)
    if (i < num_params_)
      shadow.mul_(d).add_(value, 1.0 - d);  // shadow ← d·shadow + (1 − d)·param
    else
      shadow.copy_(value);  // buffers (e.g. running statistics) are copied
  }
}
// ANCHOR_END: ema_update

void EMA::copy_to(torch::nn::Module& model) const {
  const auto state = named_state(model);
  check_same(shadow_, state, "EMA::copy_to");
  copy_state(shadow_, state);
}

void EMA::store(const torch::nn::Module& model) {
  auto state = named_state(model);
  check_same(shadow_, state, "EMA::store");
  torch::NoGradGuard no_grad;
  for (auto& item : state) item.second = item.second.detach().clone();
  stored_ = std::move(state);
}

void EMA::restore(torch::nn::Module& model) {
  if (stored_.empty()) throw Error("EMA::restore: nothing stored (call store() first)");
  const auto state = named_state(model);
  check_same(stored_, state, "EMA::restore");
  copy_state(stored_, state);
  stored_.clear();
}

void EMA::load_shadow(const std::vector<std::pair<std::string, torch::Tensor>>& named,
                      int64_t updates) {
  check_same(shadow_, named, "EMA::load_shadow");
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < shadow_.size(); ++i)
    shadow_[i].second = named[i].second.detach().to(shadow_[i].second.options()).clone();
  updates_ = updates;
}

UseEmaWeights::UseEmaWeights(EMA& ema, torch::nn::Module& model) : ema_(ema), model_(model) {
  ema_.store(model_);
  ema_.copy_to(model_);
}

UseEmaWeights::~UseEmaWeights() { ema_.restore(model_); }

}  // namespace dm::nn
