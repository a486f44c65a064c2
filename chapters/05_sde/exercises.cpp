// Chapter 05 exercises — your answers go here.
//
// Each function below only throws "not implemented yet". Replace the `throw`
// with your code; exercises.hpp gives the formula each one implements. Then
// build the tests against this file instead of the reference solutions:
//
//   cmake -S . -B build -DDM_EXERCISES=mine
//   cmake --build build --target exercises_05_sde
//   ctest --test-dir build -L exercises -R Exercise05 --output-on-failure
//
// (use `-R Exercise05_2` to run the tests of one exercise only). An exercise
// you have not done yet fails with its "not implemented yet" message; a wrong
// answer fails with the expected and actual values. Switch back to the
// reference answers with -DDM_EXERCISES=solutions.
#include "exercises.hpp"

#include <cmath>

#include "dm/base/core.hpp"

namespace ex05 {

Marginal vp_marginal(double t, double beta_min, double beta_max) {
  throw dm::Error(
      "not implemented yet: exercise 5.1 — first B = ∫_0^t β = β_min t + ½ t² (β_max − β_min), "
      "then a = e^{−B/2} and s = √(1 − e^{−B}) (std::expm1 keeps s accurate at small t)");
}

double subvp_std(double t, double beta_min, double beta_max) {
  throw dm::Error(
      "not implemented yet: exercise 5.2 — the same B = ∫_0^t β as VP's, then s = 1 − e^{−B}: "
      "VP's variance, used as a standard deviation (no square root)");
}

double ve_diffusion(double t, double sigma_min, double sigma_max) {
  throw dm::Error(
      "not implemented yet: exercise 5.3 — differentiate σ(t)² = σ_min² (σ_max/σ_min)^{2t} "
      "in t, then take the square root: g = √(dσ²/dt)");
}

torch::Tensor euler_maruyama_step_forward(const torch::Tensor& x, const torch::Tensor& drift,
                                          double g, double dt, const torch::Tensor& z) {
  throw dm::Error(
      "not implemented yet: exercise 5.4 — the drift moves x by f·dt, the noise by g·√dt·z "
      "(a Brownian increment over dt has variance dt)");
}

torch::Tensor reverse_em_step(const torch::Tensor& x, const torch::Tensor& f, double g,
                              const torch::Tensor& score, double dt, const torch::Tensor& z) {
  throw dm::Error(
      "not implemented yet: exercise 5.5 — the reverse drift is f − g² score; a step backwards "
      "in time subtracts it times dt, then adds g √dt z");
}

}  // namespace ex05
