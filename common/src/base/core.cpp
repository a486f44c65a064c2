#include "dm/base/core.hpp"

namespace dm {

torch::Device choose_device(const std::string& name) {
  if (name == "cpu") return torch::kCPU;
  if (name == "cuda" || name == "auto") {
    if (torch::cuda::is_available()) return torch::Device(torch::kCUDA, 0);
    if (name == "auto") return torch::kCPU;
    throw Error("--device cuda was requested but LibTorch sees no CUDA device",
                "use --device cpu (or auto), or build against a CUDA LibTorch on a GPU machine");
  }
  throw Error("unknown device '" + name + "'", "choose one of: auto, cpu, cuda");
}

std::string device_name(const torch::Device& device) { return device.str(); }

void seed_everything(uint64_t seed) {
  torch::manual_seed(seed);
  if (torch::cuda::is_available()) torch::cuda::manual_seed_all(seed);
}

void set_threads(int threads) {
  if (threads > 0) torch::set_num_threads(threads);
}

}  // namespace dm
