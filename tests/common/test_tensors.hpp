// Small tensor helpers shared by the unit tests.
#pragma once

#include <vector>

#include "dm/base/core.hpp"

namespace dm_test {

constexpr double kPi = 3.14159265358979323846;

// A float64 tensor of the given shape from a flat list of values.
inline torch::Tensor tensor(const std::vector<double>& v, const std::vector<int64_t>& shape) {
  return torch::tensor(v, dm::f64()).reshape(shape);
}

}  // namespace dm_test
