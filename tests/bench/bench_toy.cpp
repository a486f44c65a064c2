// tests/bench/bench_toy.cpp — speed of the exact toy models and what consumes them.
//
//   BM_MixtureScoreTorch/N   GaussianMixture::score on N 2D points (torch)
//   BM_MixtureScoreEigen/N   the same score through the Eigen overload
//   BM_UlaStep/N             one ULA step on N chains (items = chain steps)
//   BM_Ancestral2D/batch:N/mlp:M
//                            one DDPM ancestral step (t → t − 1, linear schedule,
//                            T = 1000) of N 2D chains in float32, driven by the
//                            exact ε of the mixture (M = 0) or by a small ScoreMLP
//                            behind the model seam (M = 1, untrained: only its
//                            speed matters); items = chain steps
//   BM_EnergyDistance/N      energy distance between two 2D samples of size N
//
// Run: build/bin/dm_bench --benchmark_min_time=0.2
// Compare torch vs Eigen as a ratio within one run (same machine, same load).
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <memory>

#include "dm/base/core.hpp"
#include "dm/base/rng.hpp"
#include "dm/data/metrics.hpp"
#include "dm/data/toy.hpp"
#include "dm/diffusion/model.hpp"
#include "dm/diffusion/schedule.hpp"
#include "dm/diffusion/step.hpp"
#include "dm/methods/ddpm.hpp"
#include "dm/methods/langevin.hpp"
#include "dm/nn/net_model.hpp"
#include "dm/nn/networks.hpp"

namespace {

// Eight components on a ring, full (rotated, anisotropic) covariances — the
// kind of 2D target chapters 1–3 use.
dm::toy::GaussianMixture bench_mixture() {
  const int64_t K = 8;
  auto ring = dm::toy::ring_mixture(K, 3.0, 0.3);
  auto covs = torch::empty({K, 2, 2}, dm::f64());
  for (int64_t k = 0; k < K; ++k) {
    const double a = 2 * 3.14159265358979323846 * static_cast<double>(k) / K;
    const auto R = torch::tensor({std::cos(a), -std::sin(a), std::sin(a), std::cos(a)}, dm::f64())
                       .view({2, 2});
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
  auto gen = dm::make_generator(0);
  auto gm = bench_mixture();
  auto x = gm.sample(state.range(0), gen);
  for (auto _ : state) {
    x = dm::langevin::ula_step(gm, x, 1e-3, gen);
    benchmark::DoNotOptimize(x.data_ptr<double>());
  }
  state.SetItemsProcessed(state.iterations() * state.range(0));  // chain steps
  state.counters["chain_steps_per_s"] = benchmark::Counter(
      static_cast<double>(state.iterations() * state.range(0)), benchmark::Counter::kIsRate);
}
BENCHMARK(BM_UlaStep)->Arg(1024)->Arg(16384)->Unit(benchmark::kMicrosecond);

void BM_Ancestral2D(benchmark::State& state) {
  c10::InferenceMode inference;  // as dm::run samples
  const int64_t n = state.range(0);
  const auto schedule = dm::schedule::linear(1000);
  std::unique_ptr<dm::Model> model;
  if (state.range(1) == 0) {
    model =
        std::make_unique<dm::toy::PerturbedMixture>(bench_mixture(), schedule, dm::Prediction::eps);
  } else {
    torch::manual_seed(0);  // the MLP's initial weights
    dm::nn::ScoreMLP net(dm::nn::MLPConfig{});
    net->eval();
    model = std::make_unique<dm::nn::NetModel>(net, dm::nn::NetSpec::ddpm(), schedule);
  }
  const auto step = dm::ddpm::ancestral(schedule);
  auto gen = dm::make_generator(0);
  auto x = dm::randn({n, 2}, gen, torch::kFloat32);  // x_T ~ N(0, I)
  // Every step of the chain in turn, T → T − 1 down to 1 → 0, then again from
  // where the chain ended (the state's values do not change the cost).
  int64_t t = schedule.T;
  for (auto _ : state) {
    x = step(*model, x, double(t), double(t - 1), {}, gen).x;
    benchmark::DoNotOptimize(x.data_ptr<float>());
    if (--t == 0) t = schedule.T;
  }
  state.SetItemsProcessed(state.iterations() * n);  // chain steps
}
BENCHMARK(BM_Ancestral2D)
    ->ArgsProduct({{2000}, {0, 1}})
    ->ArgNames({"batch", "mlp"})
    ->Unit(benchmark::kMicrosecond);

void BM_EnergyDistance(benchmark::State& state) {
  torch::NoGradGuard no_grad;
  auto gen = dm::make_generator(0);
  const auto gm = bench_mixture();
  const auto x = gm.sample(state.range(0), gen), y = gm.sample(state.range(0), gen);
  for (auto _ : state) benchmark::DoNotOptimize(dm::metrics::energy_distance(x, y));
  state.SetItemsProcessed(state.iterations() * state.range(0));
}
BENCHMARK(BM_EnergyDistance)->Arg(1000)->Arg(4000)->Unit(benchmark::kMillisecond);

}  // namespace
