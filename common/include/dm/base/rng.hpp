// dm/base/rng.hpp — random draws from an explicit generator.
//
// Every library function that draws takes the generator it draws from; none
// uses torch's global one. A chapter's main passes down
// dm::default_generator() (seeded by dm::seed_everything), so the same seed,
// device and thread count give the same numbers; a test passes its own
// generator, so its draws do not depend on what ran before. (LibTorch's own
// modules draw from the global generator where they cannot be told otherwise:
// weight initialisation and dropout; dm::seed_everything seeds it.)
#pragma once

#include <torch/torch.h>

#include <cstdint>

namespace dm {

// splitmix64 (Steele, Lea & Flood 2014): a fixed, well-mixed 64-bit hash.
uint64_t mix64(uint64_t z);
// A seed for stream `stream` (an epoch, a training step) of a run seeded with
// `seed`: mix64(seed ^ mix64(stream)), so nearby streams are unrelated.
uint64_t stream_seed(uint64_t seed, uint64_t stream);

// A new generator on `device` seeded with `seed`.
at::Generator make_generator(uint64_t seed, const torch::Device& device = torch::kCPU);
// The default generator of `device` (the one dm::seed_everything seeds).
at::Generator default_generator(const torch::Device& device = torch::kCPU);

// Draws from `gen`. Where `gen` lives on another device than `options` asks
// for, the draw is made on gen's device and moved (the same numbers on every
// device, at the price of a copy: give a CUDA generator for CUDA data).
torch::Tensor randn(at::IntArrayRef shape, at::Generator& gen, const torch::TensorOptions& options);
torch::Tensor randn_like(const torch::Tensor& x, at::Generator& gen);
torch::Tensor rand(at::IntArrayRef shape, at::Generator& gen, const torch::TensorOptions& options);
torch::Tensor rand_like(const torch::Tensor& x, at::Generator& gen);
// Integers in [0, high).
torch::Tensor randint(int64_t high, at::IntArrayRef shape, at::Generator& gen,
                      const torch::TensorOptions& options);

}  // namespace dm
