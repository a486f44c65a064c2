// tests/bench/bench_toy.cpp — speed of the exact toy models and what consumes them.
//
//   BM_MixtureScoreTorch/N   GaussianMixture::score on N 2D points (torch)
//   BM_MixtureScoreEigen/N   the same score through the Eigen overload
//   BM_UlaStep/N             one ULA step on N chains (items = chain steps)
//   BM_EnergyDistance/N      energy distance between two 2D samples of size N
//
// Run: build/bin/dm_bench --benchmark_min_time=0.2
// Compare torch vs Eigen as a ratio within one run (same machine, same load).
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "dm/base/core.hpp"
#include "dm/methods/langevin.hpp"
#include "dm/data/metrics.hpp"
#include "dm/data/toy.hpp"

namespace {

// Eight components on a ring, full (rotated, anisotropic) covariances — the
// kind of 2D target chapters 1–3 use.
dm::toy::GaussianMixture bench_mixture() {
  const int64_t K = 8;
  auto ring = dm::toy::ring_mixture(K, 3.0, 0.3);
  auto covs = torch::empty({K, 2, 2}, dm::f64());
  for (int64_t k = 0; k < K; ++k) {
    const double a = 2 * 3.14159265358979323846 * static_cast<double>(k) / K;
    const auto R = torch::tensor({std::cos(a), -std::sin(a), std::sin(a), std::cos(a)}, dm::f64()).view({2, 2});
    const auto D = torch::diag(torch::tensor({0.2, 0.02}, dm::f64()));
    covs[k] = R.mm(D).mm(R.t());
  }
  return dm::toy::GaussianMixture(ring.weights(), ring.means(), covs);
}

void BM_MixtureScoreTorch(benchmark::State& state) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  const auto gm = bench_mixture();
  const auto x = 3.0 * torch::randn({state.range(0), 2}, dm::f64());
  for (auto _ : state) {
    auto s = gm.score(x);
    benchmark::DoNotOptimize(s.data_ptr<double>());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_MixtureScoreTorch)->Arg(64)->Arg(1024)->Arg(16384)->Unit(benchmark::kMicrosecond);

void BM_MixtureScoreEigen(benchmark::State& state) {
  torch::manual_seed(0);
  const auto gm = bench_mixture();
  const int64_t n = state.range(0);
  const Eigen::MatrixXd x = 3.0 * Eigen::MatrixXd::Random(n, 2);
  for (auto _ : state) {
    Eigen::MatrixXd s = gm.score(x);
    benchmark::DoNotOptimize(s.data());
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_MixtureScoreEigen)->Arg(64)->Arg(1024)->Arg(16384)->Unit(benchmark::kMicrosecond);

void BM_UlaStep(benchmark::State& state) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  auto gm = bench_mixture();
  auto x = gm.sample(state.range(0));
  for (auto _ : state) {
    x = dm::langevin::ula_step(gm, x, 1e-3);
    benchmark::DoNotOptimize(x.data_ptr<double>());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));  // chain steps
  state.counters["chain_steps_per_s"] =
      benchmark::Counter(static_cast<double>(state.iterations() * state.range(0)), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_UlaStep)->Arg(1024)->Arg(16384)->Unit(benchmark::kMicrosecond);

void BM_EnergyDistance(benchmark::State& state) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  const auto gm = bench_mixture();
  const auto x = gm.sample(state.range(0)), y = gm.sample(state.range(0));
  for (auto _ : state) benchmark::DoNotOptimize(dm::metrics::energy_distance(x, y));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_EnergyDistance)->Arg(1000)->Arg(4000)->Unit(benchmark::kMillisecond);

}  // namespace
