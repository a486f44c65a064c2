// dm/base/core.hpp — the few things every chapter needs before it does anything:
// where tensors live (CPU or CUDA), reproducible random numbers, the number of
// CPU threads, errors that tell the user what to do, and a wall-clock timer.
#pragma once

#include <torch/torch.h>

#include <chrono>
#include <stdexcept>
#include <string>

namespace dm {

// An error meant for the person running the program: `what()` is one line that
// says what went wrong; `hint()` (may be empty) says how to fix it.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what, std::string hint = {})
      : std::runtime_error(what), hint_(std::move(hint)) {}
  const std::string& hint() const { return hint_; }

 private:
  std::string hint_;
};

// "auto" picks CUDA when LibTorch sees a GPU, else the CPU. "cuda" without a
// GPU throws dm::Error with a hint instead of failing deep inside torch.
torch::Device choose_device(const std::string& name);
std::string device_name(const torch::Device& device);

// Seeds torch's CPU and CUDA generators. Same seed, same device, same thread
// count → the same numbers on CPU.
void seed_everything(uint64_t seed);

// Sets torch's intra-op thread count; 0 keeps torch's default.
void set_threads(int threads);

// The default floating-point options used by the 2D/1D toy code: double
// precision so that exact checks are not limited by float round-off.
inline torch::TensorOptions f64(const torch::Device& device = torch::kCPU) {
  return torch::TensorOptions().dtype(torch::kFloat64).device(device);
}

// Seconds since construction (or the last reset()).
class Timer {
 public:
  Timer() : start_(std::chrono::steady_clock::now()) {}
  void reset() { start_ = std::chrono::steady_clock::now(); }
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

}  // namespace dm
