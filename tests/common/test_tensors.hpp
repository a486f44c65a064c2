// Small tensor helpers shared by the unit tests.
#pragma once

#include <vector>

#include "dm/base/core.hpp"
#include "dm/base/rng.hpp"

namespace dm_test {

constexpr double kPi = 3.14159265358979323846;

// A float64 tensor of the given shape from a flat list of values.
inline torch::Tensor tensor(const std::vector<double>& v, const std::vector<int64_t>& shape) {
  return torch::tensor(v, dm::f64()).reshape(shape);
}

// max |a − b| over all entries.
inline double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a - b).abs().max().item<double>();
}

// A CPU generator with its own seed: a test's draws do not depend on what ran before.
inline at::Generator generator(uint64_t seed) { return dm::make_generator(seed); }

}  // namespace dm_test
