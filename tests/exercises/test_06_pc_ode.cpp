// tests/exercises/test_06_pc_ode.cpp — chapter 06's exercises (exercises.hpp)
// against the library (dm::pc::snr_step_size, dm::pc::langevin_corrector,
// dm::flow::divergence_hutchinson, dm::flow::bits_per_dim) and values worked
// out by hand. Built against solutions.cpp (must pass), against the stubs
// (every test must fail: cmake/DmExercises.cmake) and, with -DDM_EXERCISES=mine,
// against the learner's answers. Both sides evaluate the same float64
// expressions: 1e-12 relative is round-off with a wide margin.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <memory>

#include "dm/base/rng.hpp"
#include "dm/data/toy.hpp"
#include "dm/diffusion/sde.hpp"
#include "dm/methods/pc.hpp"
#include "dm/methods/probability_flow.hpp"
#include "exercises.hpp"

namespace {

torch::Tensor batch(int64_t n, int64_t d, uint64_t seed) {
  auto gen = dm::make_generator(seed);
  return dm::randn({n, d}, gen, torch::kFloat64);
}

}  // namespace

// Catches: norms summed instead of averaged (the batch size would matter), the
// missing square, the missing factor 2α.
TEST(Exercise06_1, MatchesTheLibrary) {
  for (int64_t n : {1, 7, 50}) {
    const auto s = 3.0 * batch(n, 4, 1), z = batch(n, 4, 2);
    for (double alpha : {1.0, 0.98}) {
      const double want = dm::pc::snr_step_size(s, z, 0.16, alpha);
      EXPECT_NEAR(ex06::snr_step_size(s, z, 0.16, alpha), want, 1e-12 * want) << n << " rows";
    }
  }
}

TEST(Exercise06_1, HandComputed) {
  // ‖s‖ = 5 (the 3-4-5 row), ‖z‖ = 1: ε = 2 · 1 · (0.1 · 1 / 5)² = 8e-4.
  const auto s = torch::tensor({{3.0, 4.0}}, torch::kFloat64),
             z = torch::tensor({{0.0, 1.0}}, torch::kFloat64);
  EXPECT_NEAR(ex06::snr_step_size(s, z, 0.1, 1.0), 8e-4, 1e-15);
  EXPECT_EQ(ex06::snr_step_size(torch::zeros({2, 2}, torch::kFloat64), z.expand({2, 2}), 0.1, 1.0),
            0.0);
}

// The library's corrector on a VE SDE (α = 1) with the exact score of a
// mixture, from the same generator: the library draws the noise after the score.
TEST(Exercise06_2, MatchesTheLibrarysCorrector) {
  const auto data =
      dm::toy::GaussianMixture::isotropic(torch::tensor({0.5, 0.5}, torch::kFloat64),
                                          torch::tensor({{-1.0, 0.0}, {1.0, 0.5}}, torch::kFloat64),
                                          torch::full({2}, 0.3, torch::kFloat64));
  auto sde = std::make_shared<dm::sde::VE>(0.01, 5.0);
  dm::toy::PerturbedMixture model(data, sde, dm::Prediction::score);
  const double t = 0.4, t_next = 0.39;
  auto gen = dm::make_generator(3);
  const auto x = model.at(t).sample(200, gen);
  auto g_lib = dm::make_generator(11), g_mine = dm::make_generator(11);
  const auto lib = dm::pc::langevin_corrector(sde, {0.16, 1})(model, x, t, t_next, {}, g_lib);
  const auto score = model.at(t).score(x);
  const auto z = dm::randn_like(x, g_mine);
  const auto mine = ex06::corrector_step(x, score, z, 0.16, 1.0);
  EXPECT_LT((mine - lib.x).abs().max().item<double>(), 1e-10);
  // A step without the √2 on the noise is rejected by this tolerance.
  const double eps = dm::pc::snr_step_size(score, z, 0.16, 1.0);
  EXPECT_GT((x + eps * score + std::sqrt(eps) * z - lib.x).abs().max().item<double>(), 1e-3);
}

// Against the library's Hutchinson divergence of the linear field x ↦ A x (its
// divergence is tr A), with the same probes; the basis vectors, scaled to
// E[v vᵀ] = I, give the trace exactly.
TEST(Exercise06_3, MatchesTheLibraryAndTheTrace) {
  const auto A = batch(5, 5, 4);
  auto gen = dm::make_generator(5);
  const auto probes = dm::randn({64, 5}, gen, torch::kFloat64).sign();  // Rademacher
  const auto F = [&](const torch::Tensor& x) { return torch::matmul(x, A.t()); };
  const double lib =
      dm::flow::divergence_hutchinson(F, torch::zeros({1, 5}, torch::kFloat64), probes.unsqueeze(1))
          .item<double>();
  EXPECT_NEAR(ex06::hutchinson_trace(A, probes), lib, 1e-12 * (1 + std::abs(lib)));
  const auto basis = std::sqrt(5.0) * torch::eye(5, torch::kFloat64);
  EXPECT_NEAR(ex06::hutchinson_trace(A, basis), A.trace().item<double>(), 1e-12);
}

// Catches the offset 8 (data in [0, 1]) in place of 7 and log instead of log₂.
TEST(Exercise06_4, MatchesTheLibraryAndTheUniformDensity) {
  const auto logp = torch::tensor({-2000.0, -3500.5, -100.0}, torch::kFloat64);
  EXPECT_TRUE(torch::allclose(ex06::bits_per_dim(logp, 1024), dm::flow::bits_per_dim(logp, 1024),
                              1e-12, 0));
  // Uniform on [−1, 1]^D: p = 2^{−D}, 8 bits per dimension after dequantisation.
  const auto uniform = torch::full({1}, -784.0 * std::log(2.0), torch::kFloat64);
  EXPECT_NEAR(ex06::bits_per_dim(uniform, 784).item<double>(), 8.0, 1e-12);
}
