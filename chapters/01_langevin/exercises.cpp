// Chapter 01 exercises — your answers go here.
//
// Each function below only throws "not implemented yet". Replace the `throw`
// with your code; exercises.hpp gives the formula each one implements. Then
// build the tests against this file instead of the reference solutions:
//
//   cmake -S . -B build -DDM_EXERCISES=mine
//   cmake --build build --target exercises_01_langevin
//   ctest --test-dir build -L exercises --output-on-failure
//
// (add `-R Exercise01_2` to run the tests of one exercise only). An exercise
// you have not done yet fails with its "not implemented yet" message; a wrong
// answer fails with the expected and actual values. Switch back to the
// reference answers with -DDM_EXERCISES=solutions.
#include "exercises.hpp"

#include <cmath>

#include "dm/base/core.hpp"

namespace ex01 {

torch::Tensor ula_step(const torch::Tensor& x, const torch::Tensor& score, double dt,
                       const torch::Tensor& z) {
  throw dm::Error(
      "not implemented yet: exercise 1.1 — Euler–Maruyama for dX = ½ s(X) dt + dW: "
      "drift (Δt/2)·score, noise √Δt·z");
}

torch::Tensor mala_log_accept(const Fn& log_prob, const Fn& score, const torch::Tensor& x,
                              const torch::Tensor& x_new, double dt) {
  throw dm::Error(
      "not implemented yet: exercise 1.2 — write log q(b | a) as a lambda that sums the "
      "squares over dimension 1, then combine the four terms");
}

torch::Tensor double_well_tempered_score(const torch::Tensor& x, double tau) {
  throw dm::Error(
      "not implemented yet: exercise 1.3 — differentiate V(x) = −x⁴ + 4x², then divide by τ");
}

std::vector<double> geometric_schedule(double tau_max, double tau_min, int levels) {
  throw dm::Error(
      "not implemented yet: exercise 1.4 — τ_i = τ_max (τ_min/τ_max)^{i/(L−1)}; "
      "mind L = 1 (no division by zero)");
}

}  // namespace ex01
