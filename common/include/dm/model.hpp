// dm/model.hpp — the seam between models and samplers.
//
// Every sampler in this suite (Langevin, annealed Langevin, DDPM, reverse SDEs,
// ODEs, DDIM, guidance, inverse problems) needs one thing from a model: at a
// point x and a noise level t, either the score ∇ₓ log p_t(x) or the noise ε
// that was added. A trained network and an analytic Gaussian mixture both
// implement this interface, so every sampler is first tested against the exact
// answer on a mixture, separately from how well a network has learned.
//
// Conventions
//   x       [N, ...]  a batch of points (2D toys: [N, D]; images: [N, C, H, W])
//   t       [N]       the noise label of each row, in the model's own units
//                     (σ for VE/NCSN models, continuous time or the DDPM step
//                     index for VP models; a model without noise ignores it)
//   labels  [N] long  class labels, or an undefined tensor for unconditional;
//                     label -1 in a row means "no class" (the null class of CFG)
//   returns a tensor shaped like x
//
// The two parameterisations are related through the std s_t of the noise:
//   ε = −s_t · score    and    score = −ε / s_t.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <memory>

namespace dm {

enum class Prediction { score, eps };

class Model {
 public:
  virtual ~Model() = default;
  virtual Prediction prediction() const = 0;
  virtual torch::Tensor predict(const torch::Tensor& x, const torch::Tensor& t,
                                const torch::Tensor& labels = {}) = 0;
};

// ANCHOR: score_eps
// score = −ε / s_t and ε = −s_t · score; `std` broadcasts over the batch ([N] or scalar).
torch::Tensor score_from_eps(const torch::Tensor& eps, const torch::Tensor& std);
torch::Tensor eps_from_score(const torch::Tensor& score, const torch::Tensor& std);
// ANCHOR_END: score_eps

// The score at (x, t) from any model; `std_of_t` gives s_t when the model
// predicts ε (unused for score models).
torch::Tensor model_score(Model& model, const torch::Tensor& x, const torch::Tensor& t,
                          const torch::Tensor& labels = {},
                          const std::function<torch::Tensor(const torch::Tensor&)>& std_of_t = {});

// A model made from a plain function of x (no noise level, no class): the
// score of a known density, e.g. the double well. Handy for Langevin.
class ScoreFunction : public Model {
 public:
  explicit ScoreFunction(std::function<torch::Tensor(const torch::Tensor&)> score)
      : score_(std::move(score)) {}
  Prediction prediction() const override { return Prediction::score; }
  torch::Tensor predict(const torch::Tensor& x, const torch::Tensor&,
                        const torch::Tensor& = {}) override {
    return score_(x);
  }

 private:
  std::function<torch::Tensor(const torch::Tensor&)> score_;
};

}  // namespace dm
