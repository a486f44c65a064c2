// Chapter 03 exercises — your answers go here.
//
// Each function below only throws "not implemented yet". Replace the `throw`
// with your code; exercises.hpp gives the formula each one implements. Then
// build the tests against this file instead of the reference solutions:
//
//   cmake -S . -B build -DDM_EXERCISES=mine
//   cmake --build build --target exercises_03_ncsn
//   ctest --test-dir build -L exercises -R Exercise03 --output-on-failure
//
// (use `-R Exercise03_2` to run the tests of one exercise only). Switch back to
// the reference answers with -DDM_EXERCISES=solutions.
#include "exercises.hpp"

#include "dm/base/core.hpp"

namespace ex03 {

torch::Tensor ncsn_loss(const EpsNet& eps_net, const torch::Tensor& x, const torch::Tensor& sigma,
                        const torch::Tensor& eps) {
  throw dm::Error(
      "not implemented yet: exercise 3.1 — σ is [N]: view it as [N, 1] to scale the rows of ε, "
      "then x̃ = x + σ ε and the mean of (ε_θ(x̃, σ) − ε)² over every entry");
}

torch::Tensor annealed_level(const Score& score, torch::Tensor x, double sigma, double alpha,
                             const torch::Tensor& z) {
  throw dm::Error(
      "not implemented yet: exercise 3.2 — loop k over z.size(0): x = x + α/2 · score(x, σ) + √α · "
      "z[k]");
}

double variance_ratio_after(double a, double gamma, int T) {
  throw dm::Error(
      "not implemented yet: exercise 3.3 — start r = γ², then T times r = (1 − a/2)² r + a "
      "(the variance of (1 − a/2) x + √a σ z, divided by σ²)");
}

std::vector<torch::Tensor> ve_chain(const torch::Tensor& x0, const std::vector<double>& ascending,
                                    const torch::Tensor& z) {
  throw dm::Error(
      "not implemented yet: exercise 3.4 — keep the previous σ (0 at first); each level adds "
      "√(σ_k² − σ_prev²) z[k] to the previous x");
}

}  // namespace ex03
