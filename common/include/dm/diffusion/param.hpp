// dm/diffusion/param.hpp — the three parameterisations, converted in one place.
//
// With x_t = a·x_0 + s·ε and the Gaussian conditional, Tweedie's formula makes
// the three predictions one:
//     score = −ε / s,     ε = −s · score,
//     x̂_0  = (x_t − s·ε) / a = (x_t + s²·score) / a,
//     ε     = (x_t − a·x̂_0) / s.
// Every sampler asks for the prediction it needs through these functions, so a
// score model, an ε-model and an x̂_0-model drive it alike.
#pragma once

#include <torch/torch.h>

#include "dm/diffusion/model.hpp"
#include "dm/diffusion/process.hpp"

namespace dm {

// ANCHOR: convert
// `out` is a prediction of kind `from` at x_t; returns the prediction of kind
// `to`. a and s are numbers or per-row [N, 1, …] tensors (see per_row).
torch::Tensor convert(const torch::Tensor& out, Prediction from, Prediction to,
                      const torch::Tensor& x, const torch::Tensor& a, const torch::Tensor& s);
torch::Tensor convert(const torch::Tensor& out, Prediction from, Prediction to,
                      const torch::Tensor& x, Coefficients c);
// ANCHOR_END: convert

// ANCHOR: predict_as
// The model's prediction at (x, t), converted to `kind` with the process's (a, s).
// `t` is one time for the whole batch (the samplers' case) …
torch::Tensor predict_as(Prediction kind, Model& model, const Process& process,
                         const torch::Tensor& x, double t, const Condition& c = {});
// … or one per row, t [N] (training losses, tests).
torch::Tensor predict_as(Prediction kind, Model& model, const Process& process,
                         const torch::Tensor& x, const torch::Tensor& t, const Condition& c = {});
// ANCHOR_END: predict_as

// The score of a model that has no time (Langevin on a fixed density): the
// model must predict the score itself (dm::Error otherwise); t = 0 is passed.
torch::Tensor timeless_score(Model& model, const torch::Tensor& x, const Condition& c = {});

// t as the model seam takes it: [N] of the value t, in x's dtype and on its device.
torch::Tensor time_like(double t, const torch::Tensor& x);

}  // namespace dm
