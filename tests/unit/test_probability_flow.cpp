// The probability-flow ODE with the exact score of a Gaussian mixture: its
// log-likelihood equals the mixture's own (perturbed) log density for VE, VP and
// sub-VP, exactly (divergence by autograd) and in expectation (Hutchinson); the
// encode/decode round trip; the bits/dim conversion and the dequantisation it
// refers to; spherical interpolation of latents.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <memory>

#include "dm/base/core.hpp"
#include "dm/base/rng.hpp"
#include "dm/data/toy.hpp"
#include "dm/diffusion/sde.hpp"
#include "dm/methods/probability_flow.hpp"

namespace {

dm::toy::GaussianMixture two_d_mixture() {
  return dm::toy::GaussianMixture(
      torch::tensor({0.6, 0.4}, torch::kFloat64),
      torch::tensor({{-1.0, 0.5}, {1.2, -0.4}}, torch::kFloat64),
      torch::tensor({{{0.30, 0.10}, {0.10, 0.20}}, {{0.15, -0.05}, {-0.05, 0.25}}},
                    torch::kFloat64));
}

std::vector<std::shared_ptr<const dm::sde::SDE>> the_three_sdes() {
  return {std::make_shared<dm::sde::VE>(0.01, 5.0), std::make_shared<dm::sde::VP>(),
          std::make_shared<dm::sde::SubVP>()};
}

}  // namespace

// log p_ε(x) from the ODE = the mixture blurred to t = ε, at every point, to the
// solver's tolerance, when the prior term is the exact p_T.
TEST(ProbabilityFlow, LikelihoodEqualsTheMixtureDensityForAllThreeSDEs) {
  const auto data = two_d_mixture();
  auto gen = dm::make_generator(3);
  const auto x = data.sample(64, gen);
  for (const auto& sde : the_three_sdes()) {
    dm::toy::PerturbedMixture model(data, sde, dm::Prediction::score);
    dm::flow::LikelihoodOptions o;
    o.ode.rtol = o.ode.atol = 1e-7;
    o.prior_log_prob = [&](const torch::Tensor& z) { return model.at(sde->t_max()).log_prob(z); };
    const auto r = dm::flow::log_likelihood(model, sde, x, gen, o);
    const auto exact = model.at(sde->sampling_eps()).log_prob(x);
    const double err = (r.log_prob - exact).abs().max().item<double>();
    EXPECT_LT(err, 1e-4) << sde->name() << ": NFE " << r.stats.nfe;
    // With the SDE's own N(0, prior_std² I) as the prior instead, the gap is the
    // prior's mismatch alone: small for these horizons, and not zero.
    dm::flow::LikelihoodOptions plain = o;
    plain.prior_log_prob = nullptr;
    const auto approx = dm::flow::log_likelihood(model, sde, x, gen, plain);
    const auto mismatch = (approx.prior - r.prior).abs().max().item<double>();
    EXPECT_NEAR((approx.log_prob - exact).abs().max().item<double>(), mismatch, 1e-4)
        << sde->name();
  }
}

// Hutchinson's estimate is unbiased: the mean error over rows is within four
// standard errors of zero, and its spread falls as 1/√probes.
TEST(ProbabilityFlow, HutchinsonLikelihoodIsUnbiasedAndItsSpreadFallsWithProbes) {
  const auto data = two_d_mixture();
  auto sde = std::make_shared<dm::sde::VP>();
  dm::toy::PerturbedMixture model(data, sde, dm::Prediction::score);
  auto gen = dm::make_generator(5);
  const auto x = data.sample(400, gen);
  const auto exact = model.at(sde->sampling_eps()).log_prob(x);
  double spread[2];
  int i = 0;
  for (int64_t probes : {1, 4}) {
    dm::flow::LikelihoodOptions o;
    o.divergence = dm::flow::Divergence::hutchinson_rademacher;
    o.probes = probes;
    o.prior_log_prob = [&](const torch::Tensor& z) { return model.at(sde->t_max()).log_prob(z); };
    const auto err = dm::flow::log_likelihood(model, sde, x, gen, o).log_prob - exact;
    const double mean = err.mean().item<double>(), sd = err.std().item<double>();
    EXPECT_LT(std::abs(mean), 4 * sd / std::sqrt(400.0)) << probes << " probes";
    spread[i++] = sd;
  }
  // sd ∝ 1/√K: 4 probes halve it (±25% for the sampling error of two sd's of 400 rows).
  EXPECT_NEAR(spread[0] / spread[1], 2.0, 0.5);
}

TEST(ProbabilityFlow, ExactDivergenceOfALinearFieldIsItsTrace) {
  const auto A =
      torch::tensor({{1.0, 2.0, 0.0}, {0.5, -3.0, 1.0}, {0.0, 0.0, 0.25}}, torch::kFloat64);
  const auto F = [&](const torch::Tensor& x) { return torch::matmul(x, A.t()); };
  const auto x = torch::randn({5, 3}, torch::kFloat64);
  EXPECT_TRUE(
      torch::allclose(dm::flow::divergence_exact(F, x), torch::full({5}, -1.75, torch::kFloat64)));
  // Hutchinson with the basis vectors as probes is exact too (Σ_j e_jᵀ A e_j = tr A).
  auto probes = torch::zeros({3, 5, 3}, torch::kFloat64);
  for (int j = 0; j < 3; ++j) probes[j].select(1, j).fill_(std::sqrt(3.0));
  EXPECT_TRUE(torch::allclose(dm::flow::divergence_hutchinson(F, x, probes),
                              torch::full({5}, -1.75, torch::kFloat64)));
}

// Encoding then decoding returns the data within the tolerance; the latent of
// the VP flow is close to N(0, I).
TEST(ProbabilityFlow, EncodeThenDecodeReturnsTheDataWithinTheTolerance) {
  const auto data = two_d_mixture();
  auto sde = std::make_shared<dm::sde::VP>();
  dm::toy::PerturbedMixture model(data, sde, dm::Prediction::score);
  auto gen = dm::make_generator(7);
  const auto x = data.sample(2000, gen);
  for (double tol : {1e-3, 1e-6}) {
    dm::flow::SolveOptions o;
    o.ode.rtol = o.ode.atol = tol;
    const auto z = dm::flow::encode(model, sde, x, o);
    const auto back = dm::flow::decode(model, sde, z.x, o);
    const auto err = (back.x - x).norm(2, 1);
    EXPECT_LT(err.median().item<double>(), 10 * tol) << "tolerance " << tol;
    // The tolerance bounds the RMS error over the whole batch: a few rows (near
    // the saddle between the modes, where the flow separates) end much further
    // off. Holding every row to it (per_row) takes more steps and fixes that.
    if (tol == 1e-3) {
      EXPECT_GT(err.max().item<double>(), 1000 * tol);
      o.ode.per_row = true;
      const auto z_row = dm::flow::encode(model, sde, x, o);
      const auto back_row = dm::flow::decode(model, sde, z_row.x, o);
      EXPECT_LT((back_row.x - x).norm(2, 1).max().item<double>(), 100 * tol);
      EXPECT_GT(z_row.stats.nfe, z.stats.nfe);
    }
    if (tol == 1e-6) {
      EXPECT_NEAR(z.x.mean().item<double>(), 0.0, 0.05);
      EXPECT_NEAR(z.x.std().item<double>(), 1.0, 0.05);
    }
  }
}

TEST(ProbabilityFlow, BitsPerDimHasTheOffsetOfSevenBitsForDataInMinusOneToOne) {
  // A uniform density on [−1, 1]^D, p = 2^{−D}: the dequantised 8-bit data then
  // carry exactly 8 bits per dimension.
  const int64_t D = 3072;
  const auto logp = torch::full({2}, -double(D) * std::log(2.0), torch::kFloat64);
  EXPECT_TRUE(
      torch::allclose(dm::flow::bits_per_dim(logp, D), torch::full({2}, 8.0, torch::kFloat64)));
  EXPECT_THROW(dm::flow::bits_per_dim(logp, 0), dm::Error);
}

// Each dequantised value lies in its own level's bin [2k/256 − 1, 2(k + 1)/256 − 1),
// and within the bin it is uniform (mean offset ½ bin, variance 1/12 bin²).
TEST(ProbabilityFlow, DequantisedDataFillTheirLevelsBins) {
  auto gen = dm::make_generator(11);
  const auto bytes = dm::randint(256, {20000}, gen, torch::kFloat64);
  const auto x = bytes / 127.5 - 1.0;  // the suite's images: p/127.5 − 1
  const auto y = dm::flow::dequantize(x, gen);
  const auto pos = (y + 1.0) * 128.0 - bytes;  // the offset inside the bin, in bins
  EXPECT_GE(pos.min().item<double>(), 0.0);
  EXPECT_LT(pos.max().item<double>(), 1.0);
  // 4 standard errors: √(1/12)/√n ≈ 0.002 for the mean
  EXPECT_NEAR(pos.mean().item<double>(), 0.5, 4 * std::sqrt(1.0 / 12 / 20000));
  EXPECT_NEAR(pos.var().item<double>(), 1.0 / 12, 0.004);
  EXPECT_GE(y.min().item<double>(), -1.0);
  EXPECT_LE(y.max().item<double>(), 1.0);
}

// slerp returns the endpoints at w = 0 and 1, keeps the norm of latents of
// equal norm, and between orthogonal unit vectors passes through (a + b)/√2;
// parallel rows fall back to the straight line.
TEST(ProbabilityFlow, SlerpFollowsTheArcBetweenTheLatents) {
  auto gen = dm::make_generator(12);
  auto a = dm::randn({5, 3, 4}, gen, torch::kFloat64),
       b = dm::randn({5, 3, 4}, gen, torch::kFloat64);
  b = b / b.flatten(1).norm(2, 1).reshape({5, 1, 1}) * a.flatten(1).norm(2, 1).reshape({5, 1, 1});
  EXPECT_TRUE(torch::allclose(dm::flow::slerp(a, b, 0.0), a, 1e-12, 1e-12));
  EXPECT_TRUE(torch::allclose(dm::flow::slerp(a, b, 1.0), b, 1e-10, 1e-10));
  for (double w : {0.25, 0.5, 0.8})
    EXPECT_TRUE(torch::allclose(dm::flow::slerp(a, b, w).flatten(1).norm(2, 1),
                                a.flatten(1).norm(2, 1), 1e-10, 1e-10))
        << w;
  const auto e1 = torch::tensor({{1.0, 0.0}}, torch::kFloat64),
             e2 = torch::tensor({{0.0, 1.0}}, torch::kFloat64);
  EXPECT_TRUE(torch::allclose(dm::flow::slerp(e1, e2, 0.5), (e1 + e2) / std::sqrt(2.0)));
  EXPECT_TRUE(torch::allclose(dm::flow::slerp(e1, 3.0 * e1, 0.5), 2.0 * e1));
}
