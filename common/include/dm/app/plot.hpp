// dm/app/plot.hpp — the figures of dm/app/figure.hpp, plus tensors as data:
//
//   fig.ax().line(dm::plot::to_vec(xs), dm::plot::to_vec(density), "exact");
#pragma once

#include <torch/torch.h>

#include "dm/app/figure.hpp"

namespace dm::plot {

Vec to_vec(const torch::Tensor& t);  // flattens, moves to CPU, converts to double

}  // namespace dm::plot
