#include "dm/data/metrics.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <cmath>

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

}  // namespace dm::metrics
