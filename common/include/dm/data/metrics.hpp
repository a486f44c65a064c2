// dm/data/metrics.hpp — how close is a sample to a distribution?
//
// Every statistic here is reported beside its noise floor: the same statistic
// between two independent exact samples of the same size. A sampler is "good"
// when its statistic is within a small factor of the floor — a number a finite
// sample cannot beat, however exact the sampler.
#pragma once

#include <torch/torch.h>

#include <functional>
#include <vector>

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

// Least-squares slope of y against x (at least two distinct x). The observed
// order of a solver is −slope(log N, log error); a rate e^{−rT} is
// −slope(T, log error): `log_slope` takes the logs of whichever axes are
// logarithmic (every value on a logarithmic axis must be positive).
double slope(const std::vector<double>& x, const std::vector<double>& y);
double log_slope(const std::vector<double>& x, const std::vector<double>& y, bool log_x = true,
                 bool log_y = true);

// ---------------------------------------------------------------------------
// Feature-space statistics of image samples (the features come from a trained
// network, e.g. the classifier of dm/data/quality.hpp).

// ANCHOR: kid
// Kernel Inception Distance (Bińkowski et al. 2018): the unbiased estimate of
// MMD² with the cubic polynomial kernel k(a, b) = (aᵀb/d + 1)³ between the
// feature sets x [N, d] and y [M, d],
//   MMD²_u = Σ_{i≠j} k(x_i, x_j)/(n(n−1)) + Σ_{i≠j} k(y_i, y_j)/(m(m−1)) − 2 Σ k(x_i, y_j)/(nm).
// Unbiased: its mean is exactly MMD² ≥ 0 (0 iff the distributions agree up to
// third moments), so a single value may be negative. Both sets are cut into
// `blocks` disjoint blocks (block b of x against block b of y); `value` is the
// mean of the block estimates and `se` their standard deviation / √blocks.
struct Kid {
  double value = 0, se = 0;
  int64_t n = 0, m = 0;  // the feature rows used (a remainder that fills no block is left out)
  int blocks = 0;
};
Kid kid(const torch::Tensor& x, const torch::Tensor& y, int blocks = 10);
// ANCHOR_END: kid

// ANCHOR: precision_recall
// Improved precision and recall (Kynkäänniemi et al. 2019). Each point of a
// set owns the ball reaching to its k-th nearest neighbour in that set; the
// union of the balls estimates the set's manifold. precision = the fraction of
// `fake` points inside the real manifold (are the samples realistic?),
// recall = the fraction of `real` points inside the fake manifold (is the data
// covered?). Sharp but collapsed samples: high precision, low recall; diverse
// but blurry ones: the reverse. Distances are Euclidean in feature space.
struct PrecisionRecall {
  double precision = 0, recall = 0;
  int64_t n_real = 0, n_fake = 0;
  int k = 0;
};
PrecisionRecall precision_recall(const torch::Tensor& real, const torch::Tensor& fake, int k = 3);
// ANCHOR_END: precision_recall

}  // namespace dm::metrics
