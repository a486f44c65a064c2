// Chapter 06 exercises — your answers go here.
//
// Each function below only throws "not implemented yet". Replace the `throw`
// with your code; exercises.hpp gives the formula each one implements. Then:
//
//   cmake -S . -B build -DDM_EXERCISES=mine
//   cmake --build build --target exercises_06_pc_ode
//   ctest --test-dir build -L exercises -R Exercise06 --output-on-failure
//
// Switch back to the reference answers with -DDM_EXERCISES=solutions.
#include "exercises.hpp"

#include "dm/base/core.hpp"

namespace ex06 {

double snr_step_size(const torch::Tensor&, const torch::Tensor&, double, double) {
  throw dm::Error(
      "not implemented yet: exercise 6.1 — per-row norms with x.flatten(1).norm(2, 1), their "
      "means, then ε = 2α (r·mean‖z‖ / mean‖s‖)²");
}

torch::Tensor corrector_step(const torch::Tensor&, const torch::Tensor&, const torch::Tensor&,
                             double, double) {
  throw dm::Error(
      "not implemented yet: exercise 6.2 — ε from exercise 6.1, then x + ε·score + √(2ε)·noise");
}

double hutchinson_trace(const torch::Tensor&, const torch::Tensor&) {
  throw dm::Error(
      "not implemented yet: exercise 6.3 — (v A) · v summed over D for each probe (a row of "
      "probes), then the mean over the K probes");
}

torch::Tensor bits_per_dim(const torch::Tensor&, int64_t) {
  throw dm::Error(
      "not implemented yet: exercise 6.4 — −log p / (D ln 2) + 7: the 7 is log₂ of 256 levels over "
      "a range of width 2");
}

}  // namespace ex06
