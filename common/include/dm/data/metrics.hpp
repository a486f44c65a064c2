// dm/data/metrics.hpp — how close is a sample to a distribution?
//
// Every statistic here is reported beside its noise floor: the same statistic
// between two independent exact samples of the same size. A sampler is "good"
// when its statistic is within a small factor of the floor — a number a finite
// sample cannot beat, however exact the sampler.
#pragma once

#include <torch/torch.h>

#include <functional>

namespace dm::metrics {

// Squared energy distance 2E‖X−Y‖ − E‖X−X'‖ − E‖Y−Y'‖ (V-statistic) between
// samples x [N, D] and y [M, D]. Zero iff the distributions agree.
double energy_distance(const torch::Tensor& x, const torch::Tensor& y);

// Sliced 1-Wasserstein: the mean over `projections` random directions of the
// 1D Wasserstein-1 distance of the projected samples (equal sizes N = M).
double sliced_wasserstein(const torch::Tensor& x, const torch::Tensor& y, int projections = 128,
                          uint64_t seed = 0);

// Kolmogorov–Smirnov statistic sup |F_x − F_y| of two 1D samples.
double ks_statistic(const torch::Tensor& x, const torch::Tensor& y);
// ... and of a 1D sample against an exact CDF.
double ks_statistic(const torch::Tensor& x,
                    const std::function<torch::Tensor(const torch::Tensor&)>& cdf);

struct NoiseFloor {
  double mean = 0, std = 0;
  int repeats = 0;
};

// The statistic between two independent exact samples of size n, over
// `repeats` pairs: what a perfect sampler would score at this sample size.
NoiseFloor noise_floor(
    const std::function<torch::Tensor(int64_t)>& sample_exact, int64_t n,
    const std::function<double(const torch::Tensor&, const torch::Tensor&)>& stat,
    int repeats = 10);

}  // namespace dm::metrics
