// internal.hpp — the notebook API's side of the boundary (inside libdm only):
// its plain types to and from the library's tensors, models and generators.
// Every common/src/notebook/*.cpp uses these; no notebook ever sees them.
#pragma once

#include <torch/torch.h>

#include "dm/data/toy.hpp"
#include "dm/diffusion/model.hpp"
#include "dm/nn/networks.hpp"
#include "dm/notebook/core.hpp"

namespace dm::nb {

struct Generator::Impl {
  at::Generator gen;
};

struct Mixture::Impl {
  dm::toy::GaussianMixture mixture;
};

struct MLP::Impl {
  dm::nn::ScoreMLP net;
};

namespace detail {

// Points [N, D] → float64 tensor [N, D] (a copy) and back.
torch::Tensor to_tensor(const Points& x);
Points to_points(const torch::Tensor& x);
torch::Tensor to_tensor(const Vec& v);  // [n] float64
Vec to_vec(const torch::Tensor& t);     // flattened, as double

// Images [N, C, H, W] ↔ float32 tensors.
torch::Tensor to_tensor(const Images& images);
Images to_images(const torch::Tensor& batch);

inline at::Generator& unwrap(Generator& gen) { return gen.impl->gen; }
inline const dm::toy::GaussianMixture& unwrap(const Mixture& p) { return p.impl->mixture; }
Mixture wrap(dm::toy::GaussianMixture mixture);
inline dm::nn::ScoreMLP& unwrap(const MLP& net) { return net.impl->net; }

// A ScoreFn behind the library's dm::Model seam (dm::ScoreFunction): float64
// tensors in and out, no gradients.
dm::ScoreFunction to_model(const ScoreFn& score);

}  // namespace detail
}  // namespace dm::nb
