// Chapter 02 exercises — your answers go here.
//
// Each function below only throws "not implemented yet". Replace the `throw`
// with your code; exercises.hpp gives the formula each one implements. Then
// build the tests against this file instead of the reference solutions:
//
//   cmake -S . -B build -DDM_EXERCISES=mine
//   cmake --build build --target exercises_02_score_matching
//   ctest --test-dir build -L exercises -R Exercise02 --output-on-failure
//
// (use `-R Exercise02_3` to run the tests of one exercise only). Switch back to
// the reference answers with -DDM_EXERCISES=solutions.
#include "exercises.hpp"

#include "dm/base/core.hpp"

namespace ex02 {

torch::Tensor explicit_sm(const Field& score, const torch::Tensor& x, const torch::Tensor& target) {
  throw dm::Error(
      "not implemented yet: exercise 2.1 — square the difference, sum over dimension 1 "
      "(one number per row), then take the mean over rows");
}

torch::Tensor directional_derivative(const Field& score, const torch::Tensor& x,
                                     const torch::Tensor& nu) {
  throw dm::Error(
      "not implemented yet: exercise 2.2 — make h = zeros [N, 1] with requires_grad, evaluate "
      "f = Σ_n ν_nᵀ s(x_n + h_n ν_n), then torch::autograd::grad({f}, {h}, {}, true, true): "
      "create_graph = true keeps it differentiable in θ");
}

torch::Tensor sliced_sm(const Field& score, const torch::Tensor& x, const torch::Tensor& nu) {
  throw dm::Error(
      "not implemented yet: exercise 2.3 — ‖s(x)‖² per row plus twice your directional_derivative, "
      "averaged over rows");
}

torch::Tensor denoising_eps(const Field& eps_net, const torch::Tensor& x, double sigma,
                            const torch::Tensor& eps) {
  throw dm::Error(
      "not implemented yet: exercise 2.4 — x̃ = x + σ ε, then the mean over rows of ‖ε_θ(x̃) − ε‖² "
      "(the target is the noise, not the score)");
}

}  // namespace ex02
