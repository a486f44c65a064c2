// dm/nn/networks.hpp — the networks: time embeddings, the U-Net of the image chapters,
// the score MLP of the 2D toys, an exponential moving average of the weights,
// and the adapter that lets a trained network drive every sampler.
//
// Every network here answers the same question as the exact mixtures of
// dm/data/toy.hpp: given a noisy x and its noise label (and maybe a class), what
// is ε (or the score)? `NetModel` (dm/nn/net_model.hpp) wraps a network in the
// `dm::Model` seam, so a sampler that was tested against a mixture runs a
// trained net unchanged.
//
// The noise label t
//   Networks see t only through the sinusoidal embedding below, whose
//   frequencies run from 1 down to 1/10000: it separates labels spread over
//   O(1)…O(1000). Feed the DDPM step index (0…999), 999·t for continuous VP
//   time, or a scaled log σ for VE/NCSN models — not σ ∈ [0.01, 1] raw, which
//   the embedding can barely tell apart. The map from the process's time to
//   this label belongs to the network (nn::TimeLabel, stored with its weights).
//
// The U-Net (DDPM's architecture, Ho et al. 2020, at a CPU-friendly size)
//   t ─ sinusoidal(base) ─ Linear ─ SiLU ─ Linear ─(+ class embedding)─ temb
//   x ⊕ cond ─ conv3×3 ─┬─ [ResBlock (+Attention)]×res_blocks ─ ↓2 ─ … (each level)
//                       │      every output is kept as a skip ─────────┐
//                       └─ middle: ResBlock ─ Attention ─ ResBlock     │
//                          up: [concat skip ─ ResBlock (+Attention)]×(res_blocks+1) ─ ↑2 ─ …
//                          ─ GroupNorm ─ SiLU ─ conv3×3 (zero-initialised) ─ out
//   ResBlock: GroupNorm─SiLU─conv3×3, + Linear(SiLU(temb)) per channel,
//             GroupNorm─SiLU─dropout─conv3×3, + skip (1×1 conv when channels change).
//   Attention: single-head self-attention over the H·W positions, residual.
//
// Default UNetConfig: base 16, mults 1-2-4-4 (16, 32, 64, 64 channels at 32,
// 16, 8, 4 pixels), one ResBlock per level, attention at 8×8 and in the
// middle: 1.09M parameters, ≈ 96M multiply-adds per 32×32 image. It was chosen
// for CPU training: the wider base 32, mults 1-2-2 net (1.11M parameters) does
// 2.6× the arithmetic, most of it at 32×32. Measured with tests/bench/bench_nn.cpp
// (Debian LibTorch 1.13 + OpenBLAS/oneDNN, AMD EPYC, 1 torch thread, the
// machine shared with other jobs): a training step (forward + backward + Adam)
// at batch 64 ≈ 0.55 s (the base 32 net: 1.24 s); a sampling forward (no grad)
// at batch 64 ≈ 0.19 s, at batch 256 ≈ 1.3 s (0.8 s with glibc's mmap
// threshold raised: the large activations are otherwise unmapped and
// page-faulted back on every call). A second thread on an idle machine speeds
// convolutions up ≈ 1.9× (CONVENTIONS.md), so ≈ 0.3 s per step on 2 cores; on
// busy cores it is many times slower than one thread.
#pragma once

#include <torch/torch.h>

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <utility>
#include <vector>

namespace dm::nn {

// ---------------------------------------------------------------------------
// Time embedding.

// ANCHOR: sinusoidal_embedding
// The Transformer/DDPM position embedding of a noise label t [N] → [N, dim]:
//   e(t) = [sin(t·ω_0), …, sin(t·ω_{h−1}), cos(t·ω_0), …, cos(t·ω_{h−1})],
//   h = ⌊dim/2⌋,  ω_i = exp(−ln(max_period) · i/(h−1))   (DDPM's form;
// guided-diffusion divides by h instead and puts cos first). ω runs from 1 to
// 1/max_period. An odd dim gets a zero last column. dim ≥ 2. The result has t's
// floating dtype (float32 for an integer t).
torch::Tensor sinusoidal_embedding(const torch::Tensor& t, int64_t dim,
                                   double max_period = 10000.0);
// ANCHOR_END: sinusoidal_embedding

// The same embedding with the frequencies ω given ([⌊dim/2⌋], t's dtype and
// device; from sinusoidal_frequencies): the networks compute ω once, not at
// every call.
torch::Tensor sinusoidal_embedding(const torch::Tensor& t, const torch::Tensor& omega, int64_t dim);
torch::Tensor sinusoidal_frequencies(int64_t dim, double max_period,
                                     const torch::TensorOptions& options);

// ---------------------------------------------------------------------------
// The U-Net.

// ANCHOR: unet_config
struct UNetConfig {
  int64_t in_channels = 1;
  int64_t out_channels = 1;
  int64_t base_channels = 16;
  // One level each; level i has base·mult_i channels.
  std::vector<int64_t> channel_mults = {1, 2, 4, 4};
  int64_t res_blocks = 1;  // ResBlocks per level on the way down (+1 up)
  // Self-attention at these H (the middle always has it).
  std::vector<int64_t> attention_resolutions = {8};
  double dropout = 0.0;
  // 0: unconditional; else num_classes+1 embeddings, the last = null (label −1).
  int64_t num_classes = 0;
  int64_t cond_channels = 0;  // extra input channels concatenated to x (e.g. a low-res image)
  int64_t groups = 8;         // GroupNorm groups; must divide every channel count
  int64_t image_size = 32;    // H = W the attention resolutions refer to
};
// ANCHOR_END: unet_config

bool operator==(const UNetConfig& a, const UNetConfig& b);
inline bool operator!=(const UNetConfig& a, const UNetConfig& b) { return !(a == b); }
// Throws dm::Error saying which field is wrong and why.
void validate(const UNetConfig& config);
nlohmann::json to_json(const UNetConfig& config);
// Missing keys keep their defaults; an unknown key, a wrong type or an
// invalid configuration throws dm::Error.
UNetConfig unet_config_from_json(const nlohmann::json& j);

// A residual block with the time embedding added between its two convolutions.
class ResBlockImpl : public torch::nn::Module {
 public:
  ResBlockImpl(int64_t in_channels, int64_t out_channels, int64_t temb_dim, int64_t groups,
               double dropout);
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& temb);

 private:
  torch::nn::GroupNorm norm1_{nullptr}, norm2_{nullptr};
  torch::nn::Conv2d conv1_{nullptr}, conv2_{nullptr}, skip_{nullptr};
  torch::nn::Linear temb_proj_{nullptr};
  torch::nn::Dropout dropout_{nullptr};
};
TORCH_MODULE(ResBlock);

// Single-head self-attention over the H·W positions, with a residual connection.
class AttentionBlockImpl : public torch::nn::Module {
 public:
  AttentionBlockImpl(int64_t channels, int64_t groups);
  torch::Tensor forward(const torch::Tensor& x);

 private:
  torch::nn::GroupNorm norm_{nullptr};
  torch::nn::Conv2d qkv_{nullptr}, proj_{nullptr};
};
TORCH_MODULE(AttentionBlock);

class UNetImpl : public torch::nn::Module {
 public:
  explicit UNetImpl(UNetConfig config = {});
  // x [N, in_channels, H, W] (H, W divisible by 2^(levels−1)); t [N] float
  // (or one value for the whole batch); labels [N] int64 in 0…num_classes−1 or
  // −1 for the null class, undefined = all null (only when num_classes > 0;
  // the range is checked for CPU labels — on a GPU that would cost a sync);
  // cond [N, cond_channels, H, W], required iff cond_channels > 0.
  // Returns [N, out_channels, H, W]. Bad shapes throw dm::Error.
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t,
                        const torch::Tensor& labels = {}, const torch::Tensor& cond = {});
  const UNetConfig& config() const { return config_; }

 private:
  struct Level {
    std::vector<ResBlock> res;
    std::vector<AttentionBlock> attn;  // one per ResBlock; null where there is none
    // ↓2 (strided conv) or the conv after ↑2; null at the ends.
    torch::nn::Conv2d resample{nullptr};
  };
  torch::Tensor time_embedding(const torch::Tensor& t, const torch::Tensor& labels, int64_t n);
  void check_inputs(const torch::Tensor& x, const torch::Tensor& labels,
                    const torch::Tensor& cond) const;

  UNetConfig config_;
  torch::Tensor omega_;  // the time embedding's frequencies, in the last label's dtype and device
  torch::nn::Linear time_fc1_{nullptr}, time_fc2_{nullptr};
  torch::nn::Embedding class_embedding_{nullptr};
  torch::nn::Conv2d conv_in_{nullptr}, conv_out_{nullptr};
  std::vector<Level> down_, up_;  // up_[0] is the lowest resolution
  ResBlock mid_res1_{nullptr}, mid_res2_{nullptr};
  AttentionBlock mid_attn_{nullptr};
  torch::nn::GroupNorm norm_out_{nullptr};
};
TORCH_MODULE(UNet);

// ---------------------------------------------------------------------------
// The score MLP of the 2D toys.

// ANCHOR: mlp_config
struct MLPConfig {
  int64_t dim = 2;          // data dimension (input = output)
  int64_t hidden = 128;     // width of every hidden layer
  int64_t layers = 3;       // hidden layers (SiLU after each)
  int64_t time_dim = 32;    // sinusoidal embedding size of t; 0 = no time input (t ignored)
  int64_t num_classes = 0;  // 0: unconditional; else num_classes+1 embeddings, the last = null
};
// ANCHOR_END: mlp_config

bool operator==(const MLPConfig& a, const MLPConfig& b);
inline bool operator!=(const MLPConfig& a, const MLPConfig& b) { return !(a == b); }
void validate(const MLPConfig& config);
nlohmann::json to_json(const MLPConfig& config);
MLPConfig mlp_config_from_json(const nlohmann::json& j);

// h₀ = x;  h_l = SiLU(W_l h_{l−1} + b_l + P_l e) for l = 1…layers;  out = W_out h_L.
// e = SiLU(Linear(sinusoidal(t))) (+ class embedding): each layer gets its own
// projection P_l of the conditioning, as each ResBlock of the U-Net does.
class ScoreMLPImpl : public torch::nn::Module {
 public:
  explicit ScoreMLPImpl(MLPConfig config = {});
  // x [N, dim]; t [N] (or one value; ignored and may be undefined when
  // time_dim = 0); labels [N] int64 as for the U-Net. Returns [N, dim].
  torch::Tensor forward(const torch::Tensor& x, const torch::Tensor& t = {},
                        const torch::Tensor& labels = {});
  const MLPConfig& config() const { return config_; }

 private:
  MLPConfig config_;
  torch::Tensor omega_;  // the time embedding's frequencies, in the last label's dtype and device
  torch::nn::Linear time_fc_{nullptr}, out_{nullptr};
  torch::nn::Embedding class_embedding_{nullptr};
  std::vector<torch::nn::Linear> hidden_, cond_proj_;
};
TORCH_MODULE(ScoreMLP);

// ---------------------------------------------------------------------------
// Size and description.

// Σ numel over all parameters (trainable or not).
int64_t parameter_count(const torch::nn::Module& module);
// One line for a chapter to print: "U-Net 1.03M parameters (base 32, mults 1-2-2, attention at 8)".
std::string describe(const UNetImpl& net);
std::string describe(const ScoreMLPImpl& net);
inline std::string describe(const UNet& net) { return describe(*net); }
inline std::string describe(const ScoreMLP& net) { return describe(*net); }

// ---------------------------------------------------------------------------
// Exponential moving average of the weights.

// ANCHOR: ema
// shadow ← d·shadow + (1 − d)·param after every optimiser step; the buffers
// (e.g. BatchNorm statistics) are copied, not averaged. With warmup the n-th
// update uses d_n = min(d, (1 + n)/(10 + n)), n = 1, 2, … — TensorFlow's
// ExponentialMovingAverage with num_updates, as copied by score_sde_pytorch
// (its default); DDPM's own code uses a fixed d = 0.9999.
class EMA {
 public:
  EMA(const torch::nn::Module& model, double decay, bool warmup = false);
  void update(const torch::nn::Module& model);
  double decay() const { return decay_; }
  bool warmup() const { return warmup_; }
  int64_t updates() const { return updates_; }
  // The decay the n-th update uses (n ≥ 1).
  double decay_at(int64_t n) const;

  // Writes the averages into the model's parameters (and buffers).
  void copy_to(torch::nn::Module& model) const;
  // Saves the model's current weights / puts them back (evaluate with the EMA
  // weights in between). restore() throws if nothing was stored.
  void store(const torch::nn::Module& model);
  void restore(torch::nn::Module& model);

  // Parameters first, then buffers, named as in the model. For checkpoints.
  const std::vector<std::pair<std::string, torch::Tensor>>& named_shadow() const { return shadow_; }
  // Loads averages saved from named_shadow(): same names and shapes, or dm::Error.
  void load_shadow(const std::vector<std::pair<std::string, torch::Tensor>>& named,
                   int64_t updates);

 private:
  double decay_;
  bool warmup_;
  int64_t updates_ = 0;
  size_t num_params_ = 0;  // shadow_[0, num_params_) are parameters, the rest buffers
  std::vector<std::pair<std::string, torch::Tensor>> shadow_, stored_;
};
// ANCHOR_END: ema

// Evaluate with the EMA weights for the lifetime of this object:
//   { dm::nn::UseEmaWeights ema_scope(ema, *net); sample(...); }  // weights restored here
class UseEmaWeights {
 public:
  UseEmaWeights(EMA& ema, torch::nn::Module& model);
  ~UseEmaWeights();
  UseEmaWeights(const UseEmaWeights&) = delete;
  UseEmaWeights& operator=(const UseEmaWeights&) = delete;

 private:
  EMA& ema_;
  torch::nn::Module& model_;
};

}  // namespace dm::nn
