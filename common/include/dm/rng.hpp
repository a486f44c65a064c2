// dm/rng.hpp — random draws with an optional generator.
//
// Library functions that draw noise take `std::optional<at::Generator>`: none
// means torch's global generator (seeded by dm::seed_everything), a given one
// makes a test's draws independent of everything else that ran before.
#pragma once

#include <torch/torch.h>

#include <optional>

namespace dm {

inline torch::Tensor randn(at::IntArrayRef shape, const std::optional<at::Generator>& gen,
                           const torch::TensorOptions& options) {
  return gen ? torch::randn(shape, *gen, options) : torch::randn(shape, options);
}

inline torch::Tensor randint(int64_t high, at::IntArrayRef shape, const std::optional<at::Generator>& gen,
                             const torch::TensorOptions& options) {
  return gen ? torch::randint(high, shape, *gen, options) : torch::randint(high, shape, options);
}

}  // namespace dm
