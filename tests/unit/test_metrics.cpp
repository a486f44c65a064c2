// tests/unit/test_metrics.cpp — dm/metrics.hpp against exact answers.
//
// Each statistic is checked on tiny samples where its value is worked out by
// hand, on identities it must satisfy exactly (zero on identical samples,
// symmetry), and on random samples against its population value with a
// tolerance derived from its sampling distribution.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <vector>

#include "dm/base/core.hpp"
#include "test_tensors.hpp"
#include "dm/data/metrics.hpp"

namespace {

using dm::metrics::energy_distance;
using dm::metrics::ks_statistic;
using dm::metrics::sliced_wasserstein;

using dm_test::kPi;
using dm_test::tensor;

torch::Tensor normal_cdf(const torch::Tensor& x) {
  return 0.5 * (1 + torch::erf(x / std::sqrt(2.0)));
}

// ---------------------------------------------------------------------------
// Energy distance (V-statistic).

TEST(MetricsEnergyDistance, HandWorkedExamples) {
  // 1D: x = {0, 1}, y = {3}: E|X−Y| = (3 + 2)/2 = 2.5; E|X−X'| = (0+1+1+0)/4 = 0.5;
  // E|Y−Y'| = 0 → 2·2.5 − 0.5 − 0 = 4.5.
  EXPECT_NEAR(energy_distance(tensor({0, 1}, {2, 1}), tensor({3}, {1, 1})), 4.5, 1e-12);
  // 2D: x = {(0,0), (3,4)}, y = {(0,0)}: E|X−Y| = (0 + 5)/2; E|X−X'| = (5+5)/4 → 5 − 2.5 = 2.5.
  EXPECT_NEAR(energy_distance(tensor({0, 0, 3, 4}, {2, 2}), tensor({0, 0}, {1, 2})), 2.5, 1e-12);
}

TEST(MetricsEnergyDistance, EqualsExplicitDoubleSum) {
  torch::manual_seed(1);
  const auto x = torch::randn({50, 3}, dm::f64());
  const auto y = torch::randn({70, 3}, dm::f64()) + 0.3;
  auto mean_dist = [](const torch::Tensor& a, const torch::Tensor& b) {
    double s = 0;
    for (int64_t i = 0; i < a.size(0); ++i)
      for (int64_t j = 0; j < b.size(0); ++j) s += (a[i] - b[j]).norm().item<double>();
    return s / (a.size(0) * b.size(0));
  };
  const double want = 2 * mean_dist(x, y) - mean_dist(x, x) - mean_dist(y, y);
  // Tolerance: torch::cdist (matrix-product path for > 25 rows) forms
  // ‖a‖² + ‖b‖² − 2a·b, so a zero distance (the diagonal of the within-sample
  // sums) comes out as sqrt(O(ε‖x‖²)) ≈ 1e-8 instead of 0; the n such terms add
  // ≈ 1e-8/n ≈ 2e-10 to each within-sample mean. 1e-8 covers that and is still
  // 10⁶× below a formula error (U- instead of V-statistic: ≈ E‖X−X'‖/n ≈ 0.04).
  EXPECT_NEAR(energy_distance(x, y), want, 1e-8);
}

TEST(MetricsEnergyDistance, ZeroForIdenticalSamplesAndSymmetric) {
  torch::manual_seed(2);
  const auto x = torch::randn({500, 2}, dm::f64());
  const auto y = torch::randn({300, 2}, dm::f64()) * 1.5;
  // Exactly 0 in exact arithmetic; the three means of ~2.5e5 O(1) distances
  // agree to round-off (~1e-14).
  EXPECT_NEAR(energy_distance(x, x), 0.0, 1e-12);
  EXPECT_NEAR(energy_distance(x, y), energy_distance(y, x), 1e-12);
  EXPECT_GT(energy_distance(x, y), 0.0);
}

// 1D normals N(0,1) vs N(δ,1), n = m = 500, R = 20 independent repeats.
// Exact expectation of the V-statistic (the diagonal zeros of the within-sample
// sums give the factor (1 − 1/n)):
//   E[ED] = 2E|X−Y| − 2(1 − 1/n)E|X−X'|,  E|X−X'| = 2/√π,
//   E|X−Y| = E|N(δ, 2)| = (2/√π) e^{−δ²/4} + δ erf(δ/2).
// The mean of R repeats is compared with it within 5 standard errors
// (SE = sample sd / √R; t with 19 dof: two-sided p ≈ 1e-4). For δ > 0 the
// statistic is non-degenerate (≈ normal); at δ = 0 it is χ²-like and skewed, so
// 20 repeats are too few for a t-bound — δ = 0 is checked with 100 repeats in
// MetricsNoiseFloor.EnergyDistanceFloorIsPositiveAndMatchesTheory, and here
// only as the bottom of the monotone sequence: E[ED | δ = 0] = (2/n)(2/√π).
TEST(MetricsEnergyDistance, MatchesPopulationValueAndGrowsWithShift) {
  torch::manual_seed(3);
  const int64_t n = 500, R = 20;
  double previous = 2.0 / n * 2 / std::sqrt(kPi);
  for (double delta : {0.25, 0.5, 1.0, 2.0}) {
    std::vector<double> v;
    for (int64_t r = 0; r < R; ++r)
      v.push_back(energy_distance(torch::randn({n, 1}, dm::f64()),
                                  torch::randn({n, 1}, dm::f64()) + delta));
    double mean = 0, var = 0;
    for (double e : v) mean += e / R;
    for (double e : v) var += (e - mean) * (e - mean) / (R - 1);
    const double exy =
        2 / std::sqrt(kPi) * std::exp(-delta * delta / 4) + delta * std::erf(delta / 2);
    const double want = 2 * exy - 2 * (1 - 1.0 / n) * 2 / std::sqrt(kPi);
    EXPECT_NEAR(mean, want, 5 * std::sqrt(var / R)) << "delta " << delta;
    EXPECT_GT(mean, previous) << "delta " << delta;
    previous = mean;
  }
}

// ---------------------------------------------------------------------------
// Kolmogorov–Smirnov.

TEST(MetricsKs, TwoSampleHandWorkedExamples) {
  // x = 0..9, y = x + 2.5: F_x − F_y peaks at 3/10 (for t ∈ [2, 2.5)).
  const auto x = torch::arange(0, 10, dm::f64());
  EXPECT_NEAR(ks_statistic(x, x + 2.5), 0.3, 1e-12);
  EXPECT_NEAR(ks_statistic(x + 2.5, x), 0.3, 1e-12);
  // Unequal sizes: x = {0,1,2,3}, y = {2.5, 3.5}: at t = 2, F_x = 3/4, F_y = 0.
  EXPECT_NEAR(ks_statistic(tensor({3, 1, 0, 2}, {4}), tensor({3.5, 2.5}, {2})), 0.75, 1e-12);
  // Disjoint supports: 1.
  EXPECT_NEAR(ks_statistic(x, x + 100), 1.0, 1e-12);
  // Ties across samples: x = {0, 1}, y = {1, 2}: F_x(0) − F_y(0) = ½, and at t = 1
  // both ECDFs jump together (1 vs ½): D = ½, not 1.
  EXPECT_NEAR(ks_statistic(tensor({0, 1}, {2}), tensor({1, 2}, {2})), 0.5, 1e-12);
}

TEST(MetricsKs, SampleAgainstItselfIsZero) {
  torch::manual_seed(4);
  const auto x = torch::randn({1000}, dm::f64());
  EXPECT_NEAR(ks_statistic(x, x), 0.0, 1e-15);
  // Heavy ties: a sample against a permutation of itself.
  const auto r = torch::randint(0, 5, {200}, dm::f64());
  EXPECT_NEAR(ks_statistic(r, r.flip(0)), 0.0, 1e-15);
}

TEST(MetricsKs, AgainstCdfHandWorkedExamples) {
  auto uniform = [](const torch::Tensor& t) { return t.clamp(0, 1); };
  // One point at ½ against U(0,1): max(1 − ½, ½ − 0) = ½.
  EXPECT_NEAR(ks_statistic(tensor({0.5}, {1}), uniform), 0.5, 1e-12);
  // {0.1, 0.4, 0.7}: D+ = max(1/3−0.1, 2/3−0.4, 1−0.7) = 0.3, D− = max(0.1, 0.4−1/3, 0.7−2/3) = 0.1.
  EXPECT_NEAR(ks_statistic(tensor({0.7, 0.1, 0.4}, {3}), uniform), 0.3, 1e-12);
}

// Normal samples against Φ (via erf). Under H0, √n·D follows Kolmogorov's law:
// P(√n D > 1.95) ≈ 0.001. For a sample of N(δ, 1), the triangle inequality gives
// |D − sup|Φ(·−δ) − Φ|| ≤ sup|F_n − Φ(·−δ)| < 1.95/√n, with the population value
// sup_x |Φ(x − δ) − Φ(x)| = 2Φ(δ/2) − 1 (attained at x = δ/2). Two-sample:
// the same bound per sample, so 2 · 1.95/√n.
TEST(MetricsKs, NormalSamplesAgreeWithKnownValues) {
  torch::manual_seed(5);
  const int64_t n = 2000;
  const double crit = 1.95 / std::sqrt(static_cast<double>(n));
  const auto z = torch::randn({n}, dm::f64());
  EXPECT_LT(ks_statistic(z, normal_cdf), crit);
  const double delta = 0.5;
  const double d_pop = 2 * 0.5 * (1 + std::erf(delta / 2 / std::sqrt(2.0))) - 1;  // ≈ 0.1974
  EXPECT_NEAR(ks_statistic(z + delta, normal_cdf), d_pop, crit);
  const auto z2 = torch::randn({n}, dm::f64());
  EXPECT_LT(ks_statistic(z, z2), 2 * crit);
  EXPECT_NEAR(ks_statistic(z, z2 + delta), d_pop, 2 * crit);
}

// ---------------------------------------------------------------------------
// Sliced Wasserstein.

TEST(MetricsSlicedWasserstein, OneDimensionIsExactW1) {
  // In 1D every direction is ±1, so SW₁ = W₁ = mean |x_(i) − y_(i)| of the sorted
  // samples: {0,1,2} vs {1,3,5} → (1 + 2 + 3)/3 = 2.
  EXPECT_NEAR(sliced_wasserstein(tensor({2, 0, 1}, {3, 1}), tensor({5, 1, 3}, {3, 1}), 16), 2.0,
              1e-12);
}

// y = x + v: along θ the projected samples differ by the constant ⟨v,θ⟩, so the
// 1D W₁ is |⟨v,θ⟩| exactly and SW = mean over directions of |⟨v,θ⟩|.
// For θ uniform on the circle: E|⟨v,θ⟩| = 2|v|/π, sd = |v|·sqrt(½ − 4/π²) ≈ 0.308|v|;
// on the sphere S²: E = |v|/2, sd = |v|/√12. With P = 2048 directions the
// Monte Carlo SE is sd/√P; tolerance 5 SE. Always SW ≤ |v| (exact bound).
// The identity holds for any sample, so a small one (n = 100) suffices.
TEST(MetricsSlicedWasserstein, TranslateApproachesMeanProjectedShift) {
  torch::manual_seed(6);
  const int P = 2048;
  {
    const auto x = torch::randn({100, 2}, dm::f64());
    const auto v = tensor({3, 4}, {1, 2});  // |v| = 5
    const double sw = sliced_wasserstein(x, x + v, P, 11);
    const double se = 5 * std::sqrt(0.5 - 4 / (kPi * kPi)) / std::sqrt(static_cast<double>(P));
    EXPECT_NEAR(sw, 2 * 5 / kPi, 5 * se);
    EXPECT_LE(sw, 5.0 + 1e-12);
  }
  {
    const auto x = torch::randn({100, 3}, dm::f64());
    const auto v = tensor({1, 2, 2}, {1, 3});  // |v| = 3
    const double sw = sliced_wasserstein(x, x + v, P, 12);
    const double se = 3 / std::sqrt(12.0) / std::sqrt(static_cast<double>(P));
    EXPECT_NEAR(sw, 3 / 2.0, 5 * se);
    EXPECT_LE(sw, 3.0 + 1e-12);
  }
}

TEST(MetricsSlicedWasserstein, ZeroOnItselfAndDeterministicInSeed) {
  torch::manual_seed(7);
  const auto x = torch::randn({300, 2}, dm::f64());
  const auto y = torch::randn({300, 2}, dm::f64()) + 0.5;
  EXPECT_NEAR(sliced_wasserstein(x, x), 0.0, 1e-14);
  const double a = sliced_wasserstein(x, y, 32, 5);
  torch::randn({10});  // the global generator moves; the seeded directions must not
  const double b = sliced_wasserstein(x, y, 32, 5);
  EXPECT_EQ(a, b);
  EXPECT_GT(a, 0.0);
}

// ---------------------------------------------------------------------------
// Noise floor.

TEST(MetricsNoiseFloor, CallsSamplerAndStatisticAsDocumented) {
  // A statistic returning 1, 2, …, R in turn: mean (R+1)/2 exactly, and its
  // spread is the sd of 1..R (sample or population convention).
  const int R = 7;
  const int64_t n = 33;
  int64_t sampled_rows = 0, stat_calls = 0;
  bool sizes_ok = true, distinct = true;
  auto sampler = [&](int64_t m) {
    sampled_rows += m;
    return torch::randn({m, 2}, dm::f64());
  };
  auto stat = [&](const torch::Tensor& a, const torch::Tensor& b) {
    sizes_ok = sizes_ok && a.size(0) == n && b.size(0) == n;
    distinct = distinct && !torch::equal(a, b);
    return static_cast<double>(++stat_calls);
  };
  torch::manual_seed(8);
  const auto nf = dm::metrics::noise_floor(sampler, n, stat, R);
  EXPECT_EQ(nf.repeats, R);
  EXPECT_EQ(stat_calls, R);
  EXPECT_EQ(sampled_rows, 2 * R * n);  // two independent samples of size n per repeat
  EXPECT_TRUE(sizes_ok);
  EXPECT_TRUE(distinct);
  EXPECT_NEAR(nf.mean, (R + 1) / 2.0, 1e-12);
  const double var_pop = (R * R - 1) / 12.0;  // variance of 1..R
  const double sd_pop = std::sqrt(var_pop), sd_sample = std::sqrt(var_pop * R / (R - 1));
  EXPECT_TRUE(std::abs(nf.std - sd_pop) < 1e-12 || std::abs(nf.std - sd_sample) < 1e-12)
      << "std " << nf.std << " is neither " << sd_pop << " nor " << sd_sample;
}

TEST(MetricsNoiseFloor, EnergyDistanceFloorIsPositiveAndMatchesTheory) {
  // For two exact samples of size n, E[ED] = 2E|X−X'|/n (the V-statistic
  // expectation above with δ = 0); in 1D standard normal: (2/n)(2/√π).
  // n·ED is χ²-like (sd ≈ mean, skewed), so the mean of few repeats is
  // unreliable and so is its estimated SE; with R = 100 repeats the mean is close
  // to normal (skewness ≈ 2.8/√100) and 5 SE (floor.std/√R) is a safe bound.
  torch::manual_seed(9);
  const int64_t n = 200;
  const int R = 100;
  const auto nf = dm::metrics::noise_floor(
      [](int64_t m) {
        return torch::randn({m, 1}, dm::f64());
      },
      n, energy_distance, R);
  EXPECT_EQ(nf.repeats, R);
  EXPECT_GT(nf.mean, 0.0);
  EXPECT_GT(nf.std, 0.0);
  EXPECT_NEAR(nf.mean, 2.0 / n * 2 / std::sqrt(kPi),
              5 * nf.std / std::sqrt(static_cast<double>(R)));
}

}  // namespace

// ---------------------------------------------------------------------------
// KID and precision/recall on Gaussian "features", where the answers are known.

namespace {

// x ~ N(μ, I_d): KID's population value against N(0, I_d) in closed form.
// With the kernel's feature map, MMD² = Σ_k C(3,k) d^−k ‖E x^⊗k − E y^⊗k‖²; for
// m = ‖μ‖²: ‖Ex − Ey‖² = m, ‖E xxᵀ − E yyᵀ‖² = m², ‖E x^⊗3‖² = m³ + 6m² + 3dm + 6m.
double kid_of_a_shift(double m, double d) {
  return 3 * m / d + 3 * m * m / (d * d) +
         (m * m * m + 6 * m * m + 3 * d * m + 6 * m) / (d * d * d);
}

}  // namespace

TEST(MetricsKid, IsUnbiasedBetweenTwoSamplesOfOneDistribution) {
  // Over many pairs of independent samples of N(0, I_8), the mean KID is 0
  // within its standard error (a biased estimator would sit above it).
  auto gen = dm_test::generator(11);
  const int pairs = 40;
  std::vector<double> v;
  for (int p = 0; p < pairs; ++p) {
    const auto x = torch::randn({400, 8}, gen, dm::f64()),
               y = torch::randn({400, 8}, gen, dm::f64());
    v.push_back(dm::metrics::kid(x, y, 4).value);
  }
  double mean = 0, var = 0;
  for (double e : v) mean += e / pairs;
  for (double e : v) var += (e - mean) * (e - mean) / (pairs - 1);
  const double se = std::sqrt(var / pairs);
  EXPECT_GT(se, 0);
  EXPECT_LT(std::abs(mean), 4 * se) << "mean " << mean << " ± " << se;
}

TEST(MetricsKid, MatchesTheClosedFormForAShiftedGaussian) {
  auto gen = dm_test::generator(12);
  const int64_t d = 8, n = 2000;
  const auto shift = torch::full({d}, 0.5, dm::f64());  // m = ‖μ‖² = 2
  const auto x = torch::randn({n, d}, gen, dm::f64()) + shift;
  const auto y = torch::randn({n, d}, gen, dm::f64());
  const auto r = dm::metrics::kid(x, y, 10);
  const double expected = kid_of_a_shift(2.0, double(d));  // ≈ 1.117
  EXPECT_EQ(r.n, n);
  EXPECT_EQ(r.blocks, 10);
  EXPECT_GT(r.se, 0);
  EXPECT_LT(std::abs(r.value - expected), 4 * r.se)
      << r.value << " ± " << r.se << " vs closed form " << expected;
  EXPECT_LT(r.se, 0.2 * expected) << "the estimate must resolve a shift this large";
  // A smaller shift scores less, with the same sign of difference as the closed form.
  const auto half = dm::metrics::kid(torch::randn({n, d}, gen, dm::f64()) + 0.5 * shift, y, 10);
  EXPECT_LT(half.value, r.value - 3 * std::hypot(half.se, r.se));
}

TEST(MetricsKid, RefusesBadInput) {
  const auto x = torch::zeros({20, 4}, dm::f64());
  EXPECT_THROW(dm::metrics::kid(x, torch::zeros({20, 3}, dm::f64())), dm::Error);
  EXPECT_THROW(dm::metrics::kid(x, x, 1), dm::Error);  // no standard error
  EXPECT_THROW(dm::metrics::kid(x, torch::zeros({5, 4}, dm::f64())), dm::Error);  // blocks of 0
  EXPECT_THROW(dm::metrics::kid(torch::zeros({20}), x), dm::Error);
}

TEST(MetricsPrecisionRecall, MoveTheWayTheyMustOnGaussians) {
  auto gen = dm_test::generator(13);
  const int64_t d = 16, n = 1000;
  const auto real = torch::randn({n, d}, gen, dm::f64());
  auto pr = [&](const torch::Tensor& fake) { return dm::metrics::precision_recall(real, fake, 3); };
  const auto same = pr(torch::randn({n, d}, gen, dm::f64()));
  const auto shifted = pr(torch::randn({n, d}, gen, dm::f64()) + 1.0);
  const auto shrunk = pr(0.5 * torch::randn({n, d}, gen, dm::f64()));  // sharp but collapsed
  const auto spread = pr(2.0 * torch::randn({n, d}, gen, dm::f64()));  // diverse but off
  EXPECT_EQ(same.k, 3);
  EXPECT_EQ(same.n_fake, n);
  // Same distribution: both high and about equal (the roles are symmetric).
  EXPECT_GT(same.precision, 0.6);
  EXPECT_GT(same.recall, 0.6);
  EXPECT_NEAR(same.precision, same.recall, 0.1);
  // A shift loses both.
  EXPECT_LT(shifted.precision, same.precision - 0.2);
  EXPECT_LT(shifted.recall, same.recall - 0.2);
  // Collapsed samples stay inside the data (precision up) but miss most of it.
  EXPECT_GT(shrunk.precision, same.precision);
  EXPECT_LT(shrunk.recall, same.recall - 0.3);
  // Spread-out samples cover the data but are mostly off it.
  EXPECT_LT(spread.precision, same.precision - 0.3);
  EXPECT_GT(spread.recall, same.recall);
}

TEST(MetricsPrecisionRecall, ADroppedModeHalvesTheRecallOnly) {
  auto gen = dm_test::generator(14);
  const int64_t d = 8, n = 800;
  auto two_modes = [&](int64_t count) {  // ±3 along the first axis, equal weights
    auto x = torch::randn({count, d}, gen, dm::f64());
    x.select(1, 0).add_((torch::arange(count, dm::f64()).remainder(2) * 2 - 1) * 3.0);
    return x;
  };
  const auto real = two_modes(n);
  auto one_mode = torch::randn({n, d}, gen, dm::f64());
  one_mode.select(1, 0).add_(3.0);
  const auto both = dm::metrics::precision_recall(real, two_modes(n));
  const auto dropped = dm::metrics::precision_recall(real, one_mode);
  EXPECT_GT(dropped.precision, 0.8 * both.precision);   // what it draws is real
  EXPECT_NEAR(dropped.recall, 0.5 * both.recall, 0.1);  // half the data is never drawn
}

// The observed order and rate fits: exact on exact power laws and exponentials,
// the least-squares line through noisy points, and clear errors on bad input.
TEST(MetricsSlope, RecoversPowerLawsRatesAndTheLeastSquaresLine) {
  const std::vector<double> n = {10, 20, 50, 100, 500};
  std::vector<double> e1, e2, ex;
  for (double v : n) e1.push_back(3.0 / v), e2.push_back(0.7 / (v * v));
  EXPECT_NEAR(dm::metrics::log_slope(n, e1), -1.0, 1e-12);
  EXPECT_NEAR(dm::metrics::log_slope(n, e2), -2.0, 1e-12);
  const std::vector<double> T = {0.25, 0.5, 1.0};
  for (double t : T) ex.push_back(5.0 * std::exp(-2.0 * t));
  EXPECT_NEAR(dm::metrics::log_slope(T, ex, /*log_x=*/false), -2.0, 1e-12);
  // Points (0, 0), (1, 1), (2, 1): the least-squares slope is 1/2.
  EXPECT_NEAR(dm::metrics::slope({0, 1, 2}, {0, 1, 1}), 0.5, 1e-15);
  EXPECT_THROW(dm::metrics::slope({1}, {1}), dm::Error);
  EXPECT_THROW(dm::metrics::slope({1, 1}, {1, 2}), dm::Error);
  EXPECT_THROW(dm::metrics::slope({1, 2}, {1}), dm::Error);
  EXPECT_THROW(dm::metrics::log_slope({1, 2}, {1, 0}), dm::Error);
}
