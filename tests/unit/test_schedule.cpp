// tests/unit/test_schedule.cpp — dm/schedule.hpp against exact answers.
//
//   * the linear schedule has the published endpoints and even spacing; its ᾱ_T
//     is the number DDPM's table gives (computed independently, stated below);
//   * every table equals its defining formula, evaluated here element by element
//     in long double (ᾱ = running product of 1 − β, β̃, the posterior coefficients,
//     the clipped log-variance);
//   * the cosine schedule's ᾱ equals its closed form f(t)/f(0) wherever β was
//     not clipped, and only the very last β is clipped;
//   * extract / extract_like / at(t) gather the right rows, in the right shape.
// Tolerances: the tables are float64 products of ≤ 1000 factors, each rounded
// once (relative error ≲ 1000 · 1.1e-16 ≈ 1e-13), so 1e-12 relative is round-off
// with room; stated numbers are compared to the digits stated.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "dm/base/core.hpp"
#include "dm/diffusion/schedule.hpp"
#include "test_tensors.hpp"

namespace {

namespace sc = dm::schedule;
using dm_test::kPi;

double at(const torch::Tensor& v, int64_t i) { return v[i].item<double>(); }

// |got − want| ≤ rel · |want| for every entry (want computed in long double).
void expect_rel(const torch::Tensor& got, const std::vector<long double>& want, double rel,
                const char* what) {
  ASSERT_EQ(got.numel(), static_cast<int64_t>(want.size())) << what;
  for (size_t i = 0; i < want.size(); ++i) {
    const double w = static_cast<double>(want[i]);
    ASSERT_NEAR(at(got, i), w, rel * std::abs(w) + 1e-300) << what << "[" << i << "]";
  }
}

// The tables of a schedule written out from the definitions, entry i = step i + 1.
struct Reference {
  std::vector<long double> alpha_bar, alpha_bar_prev, post_var, coef1, coef2;
};
Reference reference(const sc::Schedule& s) {
  Reference r;
  long double prod = 1.0L;
  for (int64_t i = 0; i < s.T; ++i) {
    const long double beta = at(s.betas, i), alpha = 1.0L - beta;
    r.alpha_bar_prev.push_back(prod);  // ᾱ_{t−1}, ᾱ_0 = 1
    prod *= alpha;                     // ᾱ_t = Π_{s≤t} (1 − β_s)
    r.alpha_bar.push_back(prod);
    // β̃_t = β_t (1 − ᾱ_{t−1})/(1 − ᾱ_t)
    r.post_var.push_back(beta * (1.0L - r.alpha_bar_prev.back()) / (1.0L - prod));
    // μ̃_t = β_t √ᾱ_{t−1}/(1 − ᾱ_t) x_0 + (1 − ᾱ_{t−1}) √α_t/(1 − ᾱ_t) x_t
    r.coef1.push_back(beta * std::sqrt(r.alpha_bar_prev.back()) / (1.0L - prod));
    r.coef2.push_back((1.0L - r.alpha_bar_prev.back()) * std::sqrt(alpha) / (1.0L - prod));
  }
  return r;
}

TEST(Schedule, LinearHasTheDdpmEndpointsAndEvenSpacing) {
  const auto s = sc::linear();
  EXPECT_EQ(s.T, 1000);
  EXPECT_EQ(s.label, "linear");
  EXPECT_EQ(s.name(), "linear");
  for (const auto* table :
       {&s.betas, &s.alphas, &s.alpha_bar, &s.alpha_bar_prev, &s.sqrt_alpha_bar,
        &s.sqrt_one_minus_alpha_bar, &s.posterior_variance, &s.posterior_log_variance_clipped,
        &s.posterior_mean_coef1, &s.posterior_mean_coef2}) {
    EXPECT_EQ(table->sizes(), (std::vector<int64_t>{1000}));
    EXPECT_EQ(table->scalar_type(), torch::kFloat64);
  }
  EXPECT_NEAR(at(s.betas, 0), 1e-4, 1e-18);
  EXPECT_NEAR(at(s.betas, 999), 0.02, 1e-16);
  // β_{t+1} − β_t = (0.02 − 1e-4)/999 for every t: strictly increasing, evenly spaced.
  const auto diff = s.betas.slice(0, 1) - s.betas.slice(0, 0, 999);
  EXPECT_LT((diff - (0.02 - 1e-4) / 999).abs().max().item<double>(), 1e-15);
  EXPECT_GT(diff.min().item<double>(), 0.0);
}

// The numbers a reader can check against any DDPM implementation (each computed
// independently with a plain Python float loop over linspace(1e-4, 0.02, 1000)):
//   ᾱ_T   = 4.0358297653756754e-05  (so √ᾱ_T = 6.3528e-3: x_T keeps 0.6% of x_0)
//   ᾱ_500 = 0.07858724288177821     (half-way, 8% of the signal power is left)
// The 1e-12 relative tolerance is round-off (see the file header); a schedule
// off by one step would miss by β ≈ 2% relative.
TEST(Schedule, LinearReproducesThePublishedAlphaBar) {
  const auto s = sc::linear();
  EXPECT_NEAR(at(s.alpha_bar, 999), 4.0358297653756754e-05, 4.04e-5 * 1e-12);
  EXPECT_NEAR(at(s.sqrt_alpha_bar, 999), 6.3528e-3, 1e-7);
  EXPECT_NEAR(at(s.alpha_bar, 499), 0.07858724288177821, 0.0786 * 1e-12);
}

TEST(Schedule, TablesFollowFromTheBetas) {
  for (const auto& s :
       {sc::linear(), sc::cosine(), sc::linear_rescaled(50), sc::linear(7, 0.05, 0.6)}) {
    SCOPED_TRACE(s.label + " T=" + std::to_string(s.T));
    const auto r = reference(s);
    EXPECT_LT((s.alphas - (1.0 - s.betas)).abs().max().item<double>(), 1e-16);
    expect_rel(s.alpha_bar, r.alpha_bar, 1e-12, "alpha_bar");
    expect_rel(s.alpha_bar_prev, r.alpha_bar_prev, 1e-12, "alpha_bar_prev");
    EXPECT_EQ(at(s.alpha_bar_prev, 0), 1.0);  // ᾱ_0 = 1 exactly
    EXPECT_LT((s.sqrt_alpha_bar.pow(2) - s.alpha_bar).abs().max().item<double>(), 1e-15);
    EXPECT_LT((s.sqrt_one_minus_alpha_bar.pow(2) + s.alpha_bar - 1.0).abs().max().item<double>(),
              1e-15);
    expect_rel(s.posterior_variance, r.post_var, 1e-12, "posterior_variance");
    expect_rel(s.posterior_mean_coef1, r.coef1, 1e-12, "posterior_mean_coef1");
    expect_rel(s.posterior_mean_coef2, r.coef2, 1e-12, "posterior_mean_coef2");
    // ᾱ strictly decreasing and positive.
    EXPECT_GT(s.alpha_bar.min().item<double>(), 0.0);
    EXPECT_GT((s.alpha_bar_prev - s.alpha_bar).min().item<double>(), 0.0);
  }
}

// β̃_1 = 0 (given x_1 and x_0, x_0 is known), so the DDPM code clips the log:
// log β̃ with entry 0 replaced by log β̃_2. The first posterior step is x_0
// itself: coef1 = β_1·1/(1 − ᾱ_1) = 1 and coef2 = 0 (ᾱ_0 = 1).
TEST(Schedule, PosteriorVarianceIsClippedAtTheFirstStep) {
  for (const auto& s : {sc::linear(), sc::cosine()}) {
    SCOPED_TRACE(s.label);
    EXPECT_EQ(at(s.posterior_variance, 0), 0.0);
    EXPECT_NEAR(at(s.posterior_log_variance_clipped, 0), std::log(at(s.posterior_variance, 1)),
                1e-12);
    const auto rest = s.posterior_log_variance_clipped.slice(0, 1);
    EXPECT_LT((rest - s.posterior_variance.slice(0, 1).log()).abs().max().item<double>(), 1e-12);
    // 0 < β̃_t < β_t for t ≥ 2: (1 − ᾱ_{t−1})/(1 − ᾱ_t) < 1.
    EXPECT_GT(s.posterior_variance.slice(0, 1).min().item<double>(), 0.0);
    EXPECT_LT((s.posterior_variance - s.betas).max().item<double>(), 0.0);
    EXPECT_NEAR(at(s.posterior_mean_coef1, 0), 1.0, 1e-12);
    EXPECT_EQ(at(s.posterior_mean_coef2, 0), 0.0);
  }
}

// ᾱ(t) = f(t)/f(0), f(t) = cos²(((t/T + s)/(1 + s))·π/2), and ᾱ_t = Π(1 − β) with
// β_t = min(1 − ᾱ(t)/ᾱ(t−1), 0.999): the product telescopes back to f(t)/f(0)
// wherever no β was clipped. Only β_T is (f(T) = cos²(π/2) = 0 would make it
// 1); β_{T−1} = 1 − f(T−1)/f(T−2) ≈ 0.75. So ᾱ_t is the closed form for t < T,
// and ᾱ_T = 0.001·ᾱ_{T−1} ≈ 2.43e-9 instead of 0. The closed form is
// evaluated in long double; relative error of the product ≲ Σ_t ε/α_t ≈ 1e-13.
TEST(Schedule, CosineMatchesTheClosedForm) {
  const int64_t T = 1000;
  const long double s = 0.008L;
  const auto sched = sc::cosine(T, 0.008, 0.999);
  EXPECT_EQ(sched.label, "cosine");
  auto f = [&](long double t) {
    const long double c = std::cos((t / T + s) / (1.0L + s) * static_cast<long double>(kPi) / 2.0L);
    return c * c;
  };
  for (int64_t i = 0; i < T - 1; ++i) {
    const double want = static_cast<double>(f(i + 1) / f(0));
    ASSERT_NEAR(at(sched.alpha_bar, i), want, 1e-12 * want) << "index " << i;
  }
  EXPECT_EQ((sched.betas >= 0.999).sum().item<int64_t>(), 1);
  EXPECT_EQ(at(sched.betas, T - 1), 0.999);
  EXPECT_NEAR(at(sched.betas, T - 2), 0.75, 1e-5);
  EXPECT_NEAR(at(sched.alpha_bar, T - 1), 0.001 * at(sched.alpha_bar, T - 2), 1e-12 * 2.43e-9);
  EXPECT_NEAR(at(sched.alpha_bar, T - 1), 2.4287669e-9, 1e-15);
  // The first β is tiny: 1 − f(1)/f(0) = 4.1284e-5, smaller than linear's 1e-4.
  EXPECT_NEAR(at(sched.betas, 0), 4.1284225e-5, 1e-12);
}

// Short chains: DDPM's endpoints × 1000/T keep Σβ ≈ 10. T = 50: β from 0.002
// to 0.4 and ᾱ_T = 7.74476569922673e-06 (Python float loop), comparable with
// T = 1000's 4.04e-5, so x_T ~ N(0, I) is still a good start. At T = 1000 it
// is the linear schedule itself.
TEST(Schedule, LinearRescaledKeepsTheFinalSignalSmall) {
  const auto s = sc::linear_rescaled(50);
  EXPECT_EQ(s.T, 50);
  EXPECT_NEAR(at(s.betas, 0), 0.002, 1e-16);
  EXPECT_NEAR(at(s.betas, 49), 0.4, 1e-15);
  EXPECT_NEAR(at(s.alpha_bar, 49), 7.74476569922673e-06, 7.74e-6 * 1e-12);
  EXPECT_LT((sc::linear_rescaled(1000).betas - sc::linear().betas).abs().max().item<double>(),
            1e-16);
  EXPECT_THROW(sc::linear_rescaled(20), dm::Error);  // β_T would be 1
}

TEST(Schedule, RejectsInvalidSchedules) {
  EXPECT_THROW(sc::linear(1), dm::Error);
  EXPECT_THROW(sc::linear(10, 0.5, 1.0), dm::Error);  // β = 1: ᾱ_T = 0, x̂_0 undefined
  EXPECT_THROW(sc::linear(10, 0.0, 0.1), dm::Error);  // β = 0
  EXPECT_THROW(sc::cosine(10, 0.008, 1.0), dm::Error);
  EXPECT_THROW(sc::Schedule::from_betas(torch::tensor({0.1, -0.1}, dm::f64()), "bad"), dm::Error);
}

TEST(Schedule, ExtractGathersRowsShapedForBroadcasting) {
  const auto s = sc::linear();
  const auto t = torch::tensor({0, 999, 5}, torch::kLong);
  const auto c = sc::extract(s.alpha_bar, t, 4);
  EXPECT_EQ(c.sizes(), (std::vector<int64_t>{3, 1, 1, 1}));
  EXPECT_EQ(c.scalar_type(), torch::kFloat64);
  EXPECT_EQ(c[0].item<double>(), at(s.alpha_bar, 0));
  EXPECT_EQ(c[1].item<double>(), at(s.alpha_bar, 999));
  EXPECT_EQ(c[2].item<double>(), at(s.alpha_bar, 5));
  // extract_like: shaped for x and in x's dtype (float32 networks).
  const auto x = torch::zeros({3, 2}, torch::kFloat32);
  const auto cl = sc::extract_like(s.betas, t, x);
  EXPECT_EQ(cl.sizes(), (std::vector<int64_t>{3, 1}));
  EXPECT_EQ(cl.scalar_type(), torch::kFloat32);
  EXPECT_FLOAT_EQ(cl[1][0].item<float>(), 0.02f);
  EXPECT_THROW(sc::extract_like(s.betas, t, torch::zeros({4, 2})), dm::Error);
}

// (a, s) of the schedule as a process, x_t = √ᾱ_t x_0 + √(1 − ᾱ_t) z, a² + s² = 1.
// Time is DDPM's step t (table entry i = t − 1); the old mean_std(i) is at(i + 1).
TEST(Schedule, AtTheStepIsTheTableEntry) {
  const auto s = sc::linear();
  for (int64_t i : {0, 1, 500, 999}) {
    const auto c = s.at(static_cast<double>(i + 1));
    EXPECT_EQ(c.a, at(s.sqrt_alpha_bar, i));
    EXPECT_EQ(c.s, at(s.sqrt_one_minus_alpha_bar, i));
    EXPECT_NEAR(c.a * c.a + c.s * c.s, 1.0, 1e-15);
  }
  // t = 0 is the data: ᾱ_0 = 1.
  EXPECT_EQ(s.at(0.0).a, 1.0);
  EXPECT_EQ(s.at(0.0).s, 0.0);
  EXPECT_EQ(s.t_min(), 0.0);
  EXPECT_EQ(s.t_max(), 1000.0);
  EXPECT_THROW(s.at(1001), dm::Error);
  EXPECT_THROW(s.at(1000.5), dm::Error);
  EXPECT_THROW(s.at(-1), dm::Error);
  // The per-row versions agree with at() (integers and in between).
  const auto t = torch::tensor({0.0, 1.0, 2.5, 500.0, 999.25, 1000.0}, dm::f64());
  const auto a = s.a(t), sd = s.s(t);
  ASSERT_EQ(a.sizes(), t.sizes());
  for (int64_t n = 0; n < t.size(0); ++n) {
    const auto c = s.at(at(t, n));
    EXPECT_NEAR(at(a, n), c.a, 1e-15) << "t = " << at(t, n);
    EXPECT_NEAR(at(sd, n), c.s, 1e-15) << "t = " << at(t, n);
  }
}

// The training loss hands the schedule integer steps: one gather, exactly the
// tables (t = 0 the data), the same as the floating path and at().
TEST(Schedule, IntegerStepsAreGatheredExactly) {
  const auto s = sc::linear();
  const auto t = torch::tensor({0, 1, 2, 500, 999, 1000}, torch::kLong);
  const auto a = s.a(t), sd = s.s(t);
  const auto af = s.a(t.to(torch::kFloat64)), sf = s.s(t.to(torch::kFloat64));
  EXPECT_EQ(a.scalar_type(), torch::kFloat64);
  for (int64_t n = 0; n < t.size(0); ++n) {
    const auto c = s.at(double(t[n].item<int64_t>()));
    EXPECT_EQ(at(a, n), c.a);
    EXPECT_EQ(at(sd, n), c.s);
    EXPECT_EQ(at(af, n), c.a);
    EXPECT_EQ(at(sf, n), c.s);
  }
  // Any shape of t; a copy of the schedule answers the same.
  const auto grid = torch::tensor({{1, 2}, {3, 4}}, torch::kLong);
  const auto copy = s;
  EXPECT_EQ(copy.a(grid).sizes(), grid.sizes());
  EXPECT_TRUE(torch::equal(copy.a(grid).reshape({-1}), s.a(grid.reshape({-1}))));
}

TEST(Schedule, IntegerStepsOnAGpuUseTheTablesCopiedThere) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const auto s = sc::linear();
  const auto t = torch::tensor({0, 1, 2, 500, 999, 1000}, torch::kLong);
  const auto a = s.a(t), sd = s.s(t);
  const auto tc = t.to(torch::kCUDA);
  EXPECT_TRUE(torch::equal(s.a(tc).cpu(), a));  // the tables copied to the GPU once
  EXPECT_TRUE(torch::equal(s.s(tc.to(torch::kFloat32)).cpu(), sd));
}

TEST(Schedule, MovesToADevice) {
  const auto s = sc::cosine(100);
  const auto c = s.to(torch::kCPU);
  EXPECT_TRUE(torch::equal(c.posterior_mean_coef2, s.posterior_mean_coef2));
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const torch::Device cuda(torch::kCUDA);
  const auto g = s.to(cuda);
  EXPECT_EQ(g.alpha_bar.device(), cuda);
  EXPECT_EQ(g.T, 100);
  const auto t = torch::tensor({3, 99}, torch::TensorOptions(torch::kLong).device(cuda));
  const auto x = torch::zeros({2, 1, 4, 4}, torch::TensorOptions(torch::kFloat32).device(cuda));
  const auto coef = sc::extract_like(g.sqrt_alpha_bar, t, x);
  EXPECT_EQ(coef.device(), cuda);
  EXPECT_FLOAT_EQ(coef.cpu()[1][0][0][0].item<float>(),
                  static_cast<float>(at(s.sqrt_alpha_bar, 99)));
  EXPECT_EQ(g.at(4).a, at(s.sqrt_alpha_bar, 3));
}

}  // namespace
