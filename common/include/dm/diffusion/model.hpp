// dm/diffusion/model.hpp — the seam between models and samplers.
//
// Every sampler in this suite (Langevin, annealed Langevin, DDPM, reverse SDEs,
// ODEs, DDIM, guidance, inverse problems) needs one thing from a model: at a
// point x and a time t of the forward process, the score ∇ₓ log p_t(x), the
// noise ε that was added, or the clean x̂_0. A trained network and an analytic
// Gaussian mixture both implement this interface, so every sampler is first
// tested against the exact answer on a mixture, separately from how well a
// network has learned.
//
// Conventions
//   x  [N, ...]  a batch of points (2D toys: [N, D]; images: [N, C, H, W])
//   t  [N]       the forward process's own time for each row, in x's dtype:
//                DDPM's step t = 1…T (0 = data), NCSN's σ, an SDE's t ∈ [0, 1].
//                The data end is always the small end. What a network wants as
//                its time input is the network wrapper's business
//                (dm/nn/net_model.hpp), never the sampler's.
//   c            the condition (below); every field may be absent
//   returns      a tensor shaped like x
//
// The conversions between the three predictions need the process's (a, s) at t:
// dm/diffusion/param.hpp.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <string>

namespace dm {

enum class Prediction { score, eps, x0 };
std::string to_string(Prediction p);
// "score", "eps" or "x0"; anything else throws dm::Error.
Prediction prediction_from_string(const std::string& name);

// ANCHOR: condition
// What a sample is conditioned on. Undefined tensors mean "absent".
struct Condition {
  torch::Tensor labels;       // [N] int64 class labels; −1 in a row = the null class (CFG)
  torch::Tensor image;        // [N, C, H, W] a conditioning image (a cascade's low-res input)
  torch::Tensor image_level;  // [N] the noise level the conditioning image was augmented with
  torch::Tensor mask;         // shaped like x: 1 where x is observed (inverse problems)

  Condition() = default;
  // A class-label condition; a tensor converts to one, so `predict(x, t, labels)` reads naturally.
  Condition(torch::Tensor class_labels)
      : labels(std::move(class_labels)) {}  // NOLINT: implicit on purpose

  bool empty() const {
    return !labels.defined() && !image.defined() && !image_level.defined() && !mask.defined();
  }
  // The condition of the rows `index` [M] (int64) of the batch.
  Condition rows(const torch::Tensor& index) const;
};
// ANCHOR_END: condition

// ANCHOR: model
class Model {
 public:
  virtual ~Model() = default;
  virtual Prediction prediction() const = 0;
  virtual torch::Tensor predict(const torch::Tensor& x, const torch::Tensor& t,
                                const Condition& c = {}) = 0;
};
// ANCHOR_END: model

// A model made from a plain function of x (no time, no condition): the score
// of a known density, e.g. the double well. Handy for Langevin.
class ScoreFunction : public Model {
 public:
  explicit ScoreFunction(std::function<torch::Tensor(const torch::Tensor&)> score)
      : score_(std::move(score)) {}
  Prediction prediction() const override { return Prediction::score; }
  torch::Tensor predict(const torch::Tensor& x, const torch::Tensor&,
                        const Condition& = {}) override {
    return score_(x);
  }

 private:
  std::function<torch::Tensor(const torch::Tensor&)> score_;
};

}  // namespace dm
