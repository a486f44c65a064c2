#include "dm/base/rng.hpp"

#include <ATen/CPUGeneratorImpl.h>

#ifdef DM_WITH_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGeneratorImpl.h>
#endif

#include "dm/base/core.hpp"

namespace dm {

uint64_t mix64(uint64_t z) {
  z += 0x9e3779b97f4a7c15ULL;
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

uint64_t stream_seed(uint64_t seed, uint64_t stream) { return mix64(seed ^ mix64(stream)); }

at::Generator make_generator(uint64_t seed, const torch::Device& device) {
  if (device.is_cpu()) return at::make_generator<at::CPUGeneratorImpl>(seed);
#ifdef DM_WITH_CUDA
  auto gen = at::make_generator<at::CUDAGeneratorImpl>(device.has_index() ? device.index() : 0);
  gen.set_current_seed(seed);
  return gen;
#else
  // Without CUDA code compiled in, a CUDA device's generator is its default one, reseeded.
  auto gen = at::globalContext().defaultGenerator(device);
  gen.set_current_seed(seed);
  return gen;
#endif
}

at::Generator default_generator(const torch::Device& device) {
  return at::globalContext().defaultGenerator(device);
}

namespace {
bool same_device(const at::Generator& gen, const torch::TensorOptions& options) {
  return gen.device().type() == options.device().type();
}
}  // namespace

torch::Tensor randn(at::IntArrayRef shape, at::Generator& gen,
                    const torch::TensorOptions& options) {
  if (same_device(gen, options)) return torch::randn(shape, gen, options);
  return torch::randn(shape, gen, options.device(gen.device())).to(options.device());
}

torch::Tensor randn_like(const torch::Tensor& x, at::Generator& gen) {
  return randn(x.sizes(), gen, x.options());
}

torch::Tensor rand(at::IntArrayRef shape, at::Generator& gen, const torch::TensorOptions& options) {
  if (same_device(gen, options)) return torch::rand(shape, gen, options);
  return torch::rand(shape, gen, options.device(gen.device())).to(options.device());
}

torch::Tensor rand_like(const torch::Tensor& x, at::Generator& gen) {
  return rand(x.sizes(), gen, x.options());
}

torch::Tensor randint(int64_t high, at::IntArrayRef shape, at::Generator& gen,
                      const torch::TensorOptions& options) {
  if (same_device(gen, options)) return torch::randint(high, shape, gen, options);
  return torch::randint(high, shape, gen, options.device(gen.device())).to(options.device());
}

}  // namespace dm
