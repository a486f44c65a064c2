#include "dm/data/metrics.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "dm/base/core.hpp"

namespace dm::metrics {

namespace {
torch::Tensor as_2d(const torch::Tensor& x) {
  auto y = x.to(torch::kFloat64);
  return y.dim() == 1 ? y.unsqueeze(1) : y.reshape({y.size(0), -1});
}
}  // namespace

// ANCHOR: energy_distance
double energy_distance(const torch::Tensor& x_in, const torch::Tensor& y_in) {
  auto x = as_2d(x_in), y = as_2d(y_in.to(x_in.device()));
  if (x.size(1) != y.size(1)) throw Error("energy_distance: samples have different dimensions");
  // D² = 2 E‖X − Y‖ − E‖X − X'‖ − E‖Y − Y'‖
  const double xy = torch::cdist(x, y).mean().item<double>();
  const double xx = torch::cdist(x, x).mean().item<double>();
  const double yy = torch::cdist(y, y).mean().item<double>();
  return 2.0 * xy - xx - yy;
}
// ANCHOR_END: energy_distance

double sliced_wasserstein(const torch::Tensor& x_in, const torch::Tensor& y_in, int projections,
                          uint64_t seed) {
  auto x = as_2d(x_in).cpu(), y = as_2d(y_in).cpu();
  if (x.sizes() != y.sizes()) throw Error("sliced_wasserstein: samples must have the same shape");
  auto gen = at::make_generator<at::CPUGeneratorImpl>(seed);
  auto theta = torch::randn({x.size(1), projections}, gen, torch::kFloat64);
  theta = theta / theta.norm(2, 0, true);  // unit directions
  // W1 in 1D between equal-size samples = mean |sorted(a) − sorted(b)|.
  auto px = std::get<0>(torch::matmul(x, theta).sort(0));
  auto py = std::get<0>(torch::matmul(y, theta).sort(0));
  return (px - py).abs().mean().item<double>();
}

double ks_statistic(const torch::Tensor& x_in, const torch::Tensor& y_in) {
  auto xs = std::get<0>(x_in.to(torch::kCPU, torch::kFloat64).reshape({-1}).sort());
  auto ys = std::get<0>(y_in.to(torch::kCPU, torch::kFloat64).reshape({-1}).sort());
  auto all = torch::cat({xs, ys});
  // Empirical CDFs at every sample point: F(v) = #{x ≤ v} / n.
  auto fx = torch::searchsorted(xs, all, /*out_int32=*/false, /*right=*/true).to(torch::kFloat64) /
            double(xs.size(0));
  auto fy = torch::searchsorted(ys, all, false, true).to(torch::kFloat64) / double(ys.size(0));
  return (fx - fy).abs().max().item<double>();
}

double ks_statistic(const torch::Tensor& x_in,
                    const std::function<torch::Tensor(const torch::Tensor&)>& cdf) {
  auto xs = std::get<0>(x_in.to(torch::kCPU, torch::kFloat64).reshape({-1}).sort());
  const double n = double(xs.size(0));
  auto f = cdf(xs).to(torch::kCPU, torch::kFloat64).reshape({-1});
  auto i = torch::arange(1, xs.size(0) + 1, torch::kFloat64);
  // sup |F_n − F| is reached just before or at a sample point.
  auto above = (i / n - f).max().item<double>();
  auto below = (f - (i - 1.0) / n).max().item<double>();
  return std::max(above, below);
}

NoiseFloor noise_floor(
    const std::function<torch::Tensor(int64_t)>& sample_exact, int64_t n,
    const std::function<double(const torch::Tensor&, const torch::Tensor&)>& stat, int repeats) {
  std::vector<double> values;
  for (int r = 0; r < repeats; ++r) values.push_back(stat(sample_exact(n), sample_exact(n)));
  NoiseFloor floor;
  floor.repeats = repeats;
  for (double v : values) floor.mean += v / repeats;
  for (double v : values)
    floor.std += (v - floor.mean) * (v - floor.mean) / std::max(1, repeats - 1);
  floor.std = std::sqrt(floor.std);
  return floor;
}

double slope(const std::vector<double>& x, const std::vector<double>& y) {
  if (x.size() != y.size() || x.size() < 2)
    throw Error("slope: need x and y of the same length, at least 2 points (got " +
                std::to_string(x.size()) + " and " + std::to_string(y.size()) + ")");
  const double n = double(x.size());
  double mx = 0, my = 0;
  for (size_t i = 0; i < x.size(); ++i) mx += x[i] / n, my += y[i] / n;
  double sxy = 0, sxx = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
  }
  if (!(sxx > 0)) throw Error("slope: all x are equal, the slope is undefined");
  return sxy / sxx;
}

double log_slope(const std::vector<double>& x, const std::vector<double>& y, bool log_x,
                 bool log_y) {
  auto logs = [](const std::vector<double>& v, const char* axis) {
    std::vector<double> out;
    for (double e : v) {
      if (!(e > 0))
        throw Error(std::string("log_slope: ") + axis + " holds " + std::to_string(e) +
                    ", which has no logarithm");
      out.push_back(std::log(e));
    }
    return out;
  };
  return slope(log_x ? logs(x, "x") : x, log_y ? logs(y, "y") : y);
}

// ---------------------------------------------------------------------------
// KID, precision and recall

namespace {

void check_features(const torch::Tensor& x, const char* name, const char* who) {
  if (!x.defined() || x.dim() != 2)
    throw Error(std::string(who) + ": " + name + " must be a [N, d] feature matrix");
}

// Unbiased MMD² with the cubic kernel between two blocks (float64).
double mmd2_unbiased(const torch::Tensor& x, const torch::Tensor& y) {
  const double d = double(x.size(1)), n = double(x.size(0)), m = double(y.size(0));
  auto kernel = [&](const torch::Tensor& a, const torch::Tensor& b) {
    return (a.mm(b.t()) / d + 1).pow(3);
  };
  const auto kxx = kernel(x, x), kyy = kernel(y, y), kxy = kernel(x, y);
  const double sxx = (kxx.sum() - kxx.diagonal().sum()).item<double>();
  const double syy = (kyy.sum() - kyy.diagonal().sum()).item<double>();
  return sxx / (n * (n - 1)) + syy / (m * (m - 1)) - 2 * kxy.sum().item<double>() / (n * m);
}

// The distance of every row of `points` to its k-th nearest neighbour among
// the other rows (in chunks of rows, so n² distances never live at once).
torch::Tensor kth_neighbour_radius(const torch::Tensor& points, int k) {
  const int64_t n = points.size(0), chunk = 1024;
  std::vector<torch::Tensor> radii;
  for (int64_t i = 0; i < n; i += chunk) {
    const auto d = torch::cdist(points.slice(0, i, std::min(i + chunk, n)), points);
    // The smallest distance of a row is to itself (0): the k-th neighbour is the (k+1)-th smallest.
    radii.push_back(std::get<0>(d.topk(k + 1, 1, /*largest=*/false)).select(1, k));
  }
  return torch::cat(radii);
}

// The fraction of `query` rows inside some ball (centre `centres` row, radius `radius`).
double fraction_inside(const torch::Tensor& query, const torch::Tensor& centres,
                       const torch::Tensor& radius) {
  const int64_t n = query.size(0), chunk = 1024;
  int64_t inside = 0;
  for (int64_t i = 0; i < n; i += chunk) {
    const auto d = torch::cdist(query.slice(0, i, std::min(i + chunk, n)), centres);
    inside += (d <= radius.unsqueeze(0)).any(1).sum().item<int64_t>();
  }
  return double(inside) / double(n);
}

}  // namespace

// ANCHOR: kid_impl
Kid kid(const torch::Tensor& x_in, const torch::Tensor& y_in, int blocks) {
  check_features(x_in, "x", "kid");
  check_features(y_in, "y", "kid");
  if (x_in.size(1) != y_in.size(1))
    throw Error("kid: x and y have different feature sizes (" + std::to_string(x_in.size(1)) +
                " vs " + std::to_string(y_in.size(1)) + ")");
  if (blocks < 2) throw Error("kid: need at least 2 blocks for a standard error");
  const int64_t bx = x_in.size(0) / blocks, by = y_in.size(0) / blocks;
  if (bx < 2 || by < 2)
    throw Error("kid: " + std::to_string(blocks) + " blocks need at least " +
                std::to_string(2 * blocks) + " rows in each set, got " +
                std::to_string(x_in.size(0)) + " and " + std::to_string(y_in.size(0)));
  const auto x = x_in.to(torch::kCPU, torch::kFloat64), y = y_in.to(torch::kCPU, torch::kFloat64);
  std::vector<double> est;
  for (int b = 0; b < blocks; ++b)
    est.push_back(
        mmd2_unbiased(x.slice(0, b * bx, (b + 1) * bx), y.slice(0, b * by, (b + 1) * by)));
  double mean = 0, var = 0;
  for (double e : est) mean += e / blocks;
  for (double e : est) var += (e - mean) * (e - mean) / (blocks - 1);
  return {mean, std::sqrt(var / blocks), bx * blocks, by * blocks, blocks};
}
// ANCHOR_END: kid_impl

// ANCHOR: precision_recall_impl
PrecisionRecall precision_recall(const torch::Tensor& real_in, const torch::Tensor& fake_in,
                                 int k) {
  check_features(real_in, "real", "precision_recall");
  check_features(fake_in, "fake", "precision_recall");
  if (real_in.size(1) != fake_in.size(1))
    throw Error("precision_recall: real and fake have different feature sizes");
  if (k < 1 || real_in.size(0) <= k || fake_in.size(0) <= k)
    throw Error("precision_recall: each set needs more than k = " + std::to_string(k) + " rows");
  const auto real = real_in.to(torch::kCPU, torch::kFloat64);
  const auto fake = fake_in.to(torch::kCPU, torch::kFloat64);
  const auto real_radius = kth_neighbour_radius(real, k);
  const auto fake_radius = kth_neighbour_radius(fake, k);
  return {fraction_inside(fake, real, real_radius), fraction_inside(real, fake, fake_radius),
          real.size(0), fake.size(0), k};
}
// ANCHOR_END: precision_recall_impl

}  // namespace dm::metrics
