// tests/bench/bench_data.cpp — speed of the Fashion-MNIST pipeline.
//
//   BM_LoadFashionMnistTrain   read_idx (gzip decode) + pad/scale of the 60 000
//                              training images (skipped when the Debian
//                              package is not installed); items = images
//   BM_ReadIdxTrainImages      the gzip decode + IDX checks alone
//   BM_Colorize                the colored variant of 10 000 images
//   BM_BatchIteration/B        one shuffled epoch of 60 000 items in batches of B
//                              (synthetic data of Fashion-MNIST's shape)
//
// Run: build/bin/dm_bench --benchmark_filter=Fashion\|Idx\|Colorize\|Batch
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <filesystem>

#include "dm/data/fashion.hpp"

namespace {

const std::filesystem::path kDebian = "/usr/share/datasets/fashion-mnist";

bool have_dataset(benchmark::State& state) {
  if (std::filesystem::exists(kDebian / "train-images-idx3-ubyte.gz")) return true;
  state.SkipWithError("dataset-fashion-mnist is not installed");
  return false;
}

void BM_LoadFashionMnistTrain(benchmark::State& state) {
  if (!have_dataset(state)) return;
  for (auto _ : state) {
    auto train = dm::data::load_fashion_mnist(dm::data::Split::train, kDebian);
    benchmark::DoNotOptimize(train.images.data_ptr<float>());
  }
  state.SetItemsProcessed(state.iterations() * 60000);
}
BENCHMARK(BM_LoadFashionMnistTrain)->Unit(benchmark::kMillisecond);

void BM_ReadIdxTrainImages(benchmark::State& state) {
  if (!have_dataset(state)) return;
  for (auto _ : state) {
    auto bytes = dm::data::read_idx(kDebian / "train-images-idx3-ubyte.gz", 3);
    benchmark::DoNotOptimize(bytes.data_ptr<uint8_t>());
  }
  state.SetItemsProcessed(state.iterations() * 60000);
}
BENCHMARK(BM_ReadIdxTrainImages)->Unit(benchmark::kMillisecond);

// Synthetic images with Fashion-MNIST's shape and range.
dm::data::Dataset synthetic(int64_t n) {
  torch::manual_seed(0);
  return {torch::rand({n, 1, 32, 32}) * 2 - 1, torch::randint(10, {n}, torch::kInt64)};
}

void BM_Colorize(benchmark::State& state) {
  torch::NoGradGuard no_grad;
  const auto gray = synthetic(10000);
  for (auto _ : state) {
    auto color = dm::data::colorize(gray);
    benchmark::DoNotOptimize(color.images.data_ptr<float>());
  }
  state.SetItemsProcessed(state.iterations() * 10000);
}
BENCHMARK(BM_Colorize)->Unit(benchmark::kMillisecond);

void BM_BatchIteration(benchmark::State& state) {
  torch::NoGradGuard no_grad;
  const dm::data::BatchSampler batches(synthetic(60000), state.range(0), /*seed=*/0);
  int64_t epoch = 0, items = 0;
  for (auto _ : state) {
    for (const auto& batch : batches.epoch(epoch++)) {
      benchmark::DoNotOptimize(batch.images.data_ptr<float>());
      items += batch.labels.size(0);
    }
  }
  state.SetItemsProcessed(items);
}
BENCHMARK(BM_BatchIteration)->Arg(128)->Unit(benchmark::kMillisecond);

}  // namespace
