// Small dm::Model adapters shared by the unit tests.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <utility>
#include <vector>

#include "dm/data/toy.hpp"
#include "dm/diffusion/model.hpp"
#include "test_tensors.hpp"

namespace dm_test {

// Three 2D components with full covariances and unequal weights: its exact ε
// is far from linear in x. `groups` as in GaussianMixture (default: one class).
inline dm::toy::GaussianMixture three_mode_mixture(std::vector<int64_t> groups = {}) {
  return dm::toy::GaussianMixture(tensor({0.5, 0.3, 0.2}, {3}),
                                  tensor({-2.5, 0.0, 1.5, 2.0, 1.5, -2.0}, {3, 2}),
                                  tensor({0.30, 0.10, 0.10, 0.20,    //
                                          0.25, -0.10, -0.10, 0.35,  //
                                          0.15, 0.00, 0.00, 0.15},
                                         {3, 2, 2}),
                                  std::move(groups));
}

// A model made from a function (x, t, c) → prediction of the given kind: a
// network stand-in (torch::nn::Linear …), a scaled exact model, a probe that
// checks what the seam passes in.
class FunctionModel : public dm::Model {
 public:
  using Fn = std::function<torch::Tensor(const torch::Tensor& x, const torch::Tensor& t,
                                         const dm::Condition& c)>;
  FunctionModel(dm::Prediction prediction, Fn fn) : prediction_(prediction), fn_(std::move(fn)) {}
  dm::Prediction prediction() const override { return prediction_; }
  torch::Tensor predict(const torch::Tensor& x, const torch::Tensor& t,
                        const dm::Condition& c = {}) override {
    return fn_(x, t, c);
  }

 private:
  dm::Prediction prediction_;
  Fn fn_;
};

// Forwards to another model and counts the evaluations (calls of predict).
class CountingModel : public dm::Model {
 public:
  explicit CountingModel(dm::Model& inner) : inner_(inner) {}
  dm::Prediction prediction() const override { return inner_.prediction(); }
  torch::Tensor predict(const torch::Tensor& x, const torch::Tensor& t,
                        const dm::Condition& c = {}) override {
    ++calls;
    return inner_.predict(x, t, c);
  }
  int64_t calls = 0;

 private:
  dm::Model& inner_;
};

}  // namespace dm_test
