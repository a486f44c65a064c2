// Chapter 04 exercises — your answers go here.
//
// Each function below only throws "not implemented yet". Replace the `throw`
// with your code; exercises.hpp gives the formula each one implements. Then
// build the tests against this file instead of the reference solutions:
//
//   cmake -S . -B build -DDM_EXERCISES=mine
//   cmake --build build --target exercises_04_ddpm
//   ctest --test-dir build -L exercises -R Exercise04 --output-on-failure
//
// (use `-R Exercise04_2` to run the tests of one exercise only). An exercise
// you have not done yet fails with its "not implemented yet" message; a wrong
// answer fails with the expected and actual values. Switch back to the
// reference answers with -DDM_EXERCISES=solutions.
#include "exercises.hpp"

#include <cmath>

#include "dm/base/core.hpp"

namespace ex04 {

torch::Tensor alpha_bar(const torch::Tensor& betas) {
  throw dm::Error(
      "not implemented yet: exercise 4.1 — α_t = 1 − β_t, then a running product "
      "along dimension 0 (torch::cumprod)");
}

torch::Tensor q_sample(const torch::Tensor& x0, const torch::Tensor& alpha_bar_t,
                       const torch::Tensor& eps) {
  throw dm::Error(
      "not implemented yet: exercise 4.2 — reshape ᾱ_t [N] to [N, 1, …, 1] (x0.dim() dims) "
      "so it broadcasts over each row, then √ᾱ_t x0 + √(1 − ᾱ_t) ε");
}

Posterior posterior_mean_variance(const torch::Tensor& x0, const torch::Tensor& xt, double beta_t,
                                  double alpha_bar_t, double alpha_bar_prev) {
  throw dm::Error(
      "not implemented yet: exercise 4.3 — two coefficients with the same denominator 1 − ᾱ_t; "
      "mind ᾱ_{t−1} (not ᾱ_t) in the numerators and α_t = 1 − β_t");
}

torch::Tensor ancestral_step(const torch::Tensor& xt, const torch::Tensor& eps_pred, double beta_t,
                             double alpha_bar_t, double sigma_t, const torch::Tensor& z) {
  throw dm::Error(
      "not implemented yet: exercise 4.4 — subtract β_t/√(1 − ᾱ_t) · ε̂, divide by √(1 − β_t), "
      "then add σ_t z (σ_t is a standard deviation, not a variance)");
}

}  // namespace ex04
