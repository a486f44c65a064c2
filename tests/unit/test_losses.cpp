// Score-matching losses against exact answers: the directional derivative of
// known fields, the identities ESM = SSM + E‖∇log p‖² and DSM = ESM(p_σ) + C
// on a Gaussian mixture (checked per sample, with tolerances from the sample's
// own standard error), and short trainings that must reach a score-error bound.
#include <gtest/gtest.h>

#include <cmath>

#include "dm/base/rng.hpp"
#include "dm/data/toy.hpp"
#include "dm/diffusion/model.hpp"
#include "dm/diffusion/process.hpp"
#include "dm/methods/losses.hpp"
#include "dm/nn/networks.hpp"
#include "test_tensors.hpp"

namespace {

using dm::losses::Field;
using torch::Tensor;

using dm_test::generator;

dm::toy::GaussianMixture two_modes() {
  return dm::toy::GaussianMixture::isotropic(torch::tensor({0.7, 0.3}, torch::kFloat64),
                                             dm_test::tensor({-1.5, 0.0, 1.5, 0.5}, {2, 2}),
                                             torch::tensor({0.5, 0.8}, torch::kFloat64));
}

// A fixed smooth nonlinear field with a non-symmetric Jacobian: s(x) = tanh(W x + b) C + A x.
struct TestField {
  Tensor W = dm_test::tensor({0.8, -0.3, 0.5, 1.1}, {2, 2});
  Tensor b = torch::tensor({0.2, -0.4}, torch::kFloat64);
  Tensor C = dm_test::tensor({1.0, 0.4, -0.6, 0.9}, {2, 2});
  Tensor A = dm_test::tensor({-0.5, 0.2, 0.1, -0.3}, {2, 2});
  double scale = 1.0;
  Tensor operator()(const Tensor& x) const {
    return scale * (torch::tanh(x.matmul(W.t()) + b).matmul(C) + x.matmul(A.t()));
  }
};

// mean ± k standard errors contains zero.
void expect_zero_mean(const Tensor& d, double k = 4.0) {
  const double mean = d.mean().item<double>(),
               se = d.std().item<double>() / std::sqrt(double(d.size(0)));
  EXPECT_LT(std::abs(mean), k * se + 1e-12) << "mean " << mean << ", standard error " << se;
}

TEST(Losses, DirectionalDerivativeOfALinearFieldIsTheQuadraticForm) {
  const auto A = dm_test::tensor({1.0, 2.0, -3.0, 0.5}, {2, 2});
  Field s = [&](const Tensor& x) { return x.matmul(A.t()); };  // J = A everywhere
  auto gen = generator(1);
  const auto x = dm::randn({5, 2}, gen, torch::kFloat64),
             nu = dm::randn({5, 2}, gen, torch::kFloat64);
  const auto d = dm::losses::directional_derivative(s, x, nu);
  const auto expected = (nu.matmul(A.t()) * nu).sum(1);  // νᵀ A ν
  EXPECT_TRUE(torch::allclose(d, expected, 1e-12, 1e-12));
}

TEST(Losses, DirectionalDerivativeMatchesFiniteDifferences) {
  TestField f;
  Field s = [&](const Tensor& x) { return f(x); };
  auto gen = generator(2);
  const auto x = dm::randn({8, 2}, gen, torch::kFloat64),
             nu = dm::randn({8, 2}, gen, torch::kFloat64);
  const double h = 1e-6;
  const auto fd = ((nu * (f(x + h * nu) - f(x - h * nu))).sum(1)) / (2 * h);
  EXPECT_TRUE(torch::allclose(dm::losses::directional_derivative(s, x, nu), fd, 1e-7, 1e-7));
}

TEST(Losses, RademacherProbesAreExactForADiagonalJacobian) {
  // ν_i² = 1, so νᵀ diag(a) ν = Σ a_i = tr J for every draw: the loss is
  // ‖s‖² + 2 tr J exactly, whatever the seed.
  Field s = [](const Tensor& x) { return torch::sin(x); };  // J = diag(cos x)
  auto gen = generator(3);
  const auto x = dm::randn({64, 3}, gen, torch::kFloat64);
  const auto exact = (torch::sin(x).pow(2).sum(1) + 2 * torch::cos(x).sum(1)).mean();
  const auto ssm = dm::losses::sliced_sm(s, x, gen, dm::losses::Projection::rademacher);
  EXPECT_NEAR(ssm.item<double>(), exact.item<double>(), 1e-12);
  // Gaussian probes are unbiased but not exact.
  const auto gauss = dm::losses::sliced_sm(s, x, gen, dm::losses::Projection::gaussian);
  EXPECT_GT(std::abs(gauss.item<double>() - exact.item<double>()), 1e-6);
}

// Per sample, ESM − SSM − ‖∇log p‖² = −2 sᵀ∇log p − 2 νᵀJν, whose mean is 0 by
// integration by parts (Hyvärinen) and E[ννᵀ] = I. A sign error in either term
// would make the mean many standard errors from 0 (checked below).
TEST(Losses, SlicedEqualsExplicitMinusAConstant) {
  const auto gm = two_modes();
  TestField f;
  Field s = [&](const Tensor& x) { return f(x); };
  auto gen = generator(3);
  const int64_t n = 200000;
  const auto x = gm.sample(n, gen);
  const auto target = gm.score(x);
  for (auto proj : {dm::losses::Projection::rademacher, dm::losses::Projection::gaussian}) {
    auto nu = dm::randn({n, 2}, gen, torch::kFloat64);
    if (proj == dm::losses::Projection::rademacher) nu = nu.sign();
    const auto sx = f(x);
    const auto esm_n = (sx - target).pow(2).sum(1);
    const auto ssm_n = sx.pow(2).sum(1) + 2 * dm::losses::directional_derivative(s, x, nu).detach();
    expect_zero_mean(esm_n - ssm_n - target.pow(2).sum(1));
    // The test can fail: dropping the factor 2 on the derivative term leaves a clear bias.
    const auto wrong = sx.pow(2).sum(1) + dm::losses::directional_derivative(s, x, nu).detach();
    const auto d = esm_n - wrong - target.pow(2).sum(1);
    EXPECT_GT(std::abs(d.mean().item<double>()),
              10 * d.std().item<double>() / std::sqrt(double(n)));
  }
  // And the batched losses agree with the per-sample algebra.
  auto gen4 = generator(4);
  const auto xs = gm.sample(100000, gen4);
  const double esm = dm::losses::explicit_sm(s, xs, gm.score(xs)).item<double>();
  const double ssm = dm::losses::sliced_sm(s, xs, gen4).item<double>();
  const double c = gm.score(xs).pow(2).sum(1).mean().item<double>();
  EXPECT_NEAR(esm, ssm + c, 0.05 * esm);
}

// Per sample, DSM(s₁) − DSM(s₂) − [ESM_σ(s₁) − ESM_σ(s₂)] = 2(s₁ − s₂)ᵀ(ε/σ + ∇log p_σ(x̃)),
// mean 0 because E[−ε/σ | x̃] = ∇log p_σ(x̃) (Vincent). So DSM − ESM_σ does not depend on s.
TEST(Losses, DenoisingEqualsExplicitOnThePerturbedDensityPlusAConstant) {
  const auto gm = two_modes();
  const double sigma = 0.3;
  const auto perturbed = gm.perturb_ve(sigma);
  TestField f1, f2;
  f2.scale = -0.7;
  auto gen = generator(5);
  const int64_t n = 200000;
  const auto x = gm.sample(n, gen), eps = dm::randn({n, 2}, gen, torch::kFloat64);
  const auto xt = x + sigma * eps;
  const auto target = perturbed.score(xt);
  auto dsm_n = [&](const TestField& f) { return (f(xt) + eps / sigma).pow(2).sum(1); };
  auto esm_n = [&](const TestField& f) { return (f(xt) - target).pow(2).sum(1); };
  expect_zero_mean((dsm_n(f1) - dsm_n(f2)) - (esm_n(f1) - esm_n(f2)));
  // ... while against the unperturbed score the same difference is biased: the
  // target of DSM is p_σ, not p.
  const auto wrong_target = gm.score(xt);
  auto esm_p = [&](const TestField& f) { return (f(xt) - wrong_target).pow(2).sum(1); };
  const auto d = (dsm_n(f1) - dsm_n(f2)) - (esm_p(f1) - esm_p(f2));
  EXPECT_GT(std::abs(d.mean().item<double>()), 6 * d.std().item<double>() / std::sqrt(double(n)));
  // The library function with the same ε is exactly the per-sample mean.
  Field s1 = [&](const Tensor& v) { return f1(v); };
  EXPECT_NEAR(dm::losses::denoising_sm(s1, x, sigma, eps).item<double>(),
              dsm_n(f1).mean().item<double>(), 1e-9);
}

TEST(Losses, EpsFormIsSigmaSquaredTimesScoreForm) {
  TestField f;
  const double sigma = 0.25;
  Field eps_net = [&](const Tensor& x) { return f(x); };
  Field score = [&](const Tensor& x) { return -f(x) / sigma; };
  auto gen = generator(6);
  const auto x = dm::randn({50, 2}, gen, torch::kFloat64),
             eps = dm::randn({50, 2}, gen, torch::kFloat64);
  EXPECT_NEAR(dm::losses::denoising_eps(eps_net, x, sigma, eps).item<double>(),
              sigma * sigma * dm::losses::denoising_sm(score, x, sigma, eps).item<double>(), 1e-10);
  // With a generator: ε = randn_like(x, gen), the same numbers.
  auto g1 = generator(7), g2 = generator(7);
  const auto eps7 = dm::randn_like(x, g2);
  EXPECT_EQ(dm::losses::denoising_eps(eps_net, x, sigma, g1).item<double>(),
            dm::losses::denoising_eps(eps_net, x, sigma, eps7).item<double>());
}

TEST(Losses, BadInputIsRefused) {
  Field s = [](const Tensor& x) { return x; };
  auto gen = generator(0);
  EXPECT_THROW(dm::losses::sliced_sm(s, torch::zeros({4}, torch::kFloat64), gen), dm::Error);
  EXPECT_THROW(dm::losses::sliced_sm(s, torch::zeros({4, 2}, torch::kLong), gen), dm::Error);
  EXPECT_THROW(
      dm::losses::sliced_sm(s, torch::zeros({4, 2}), gen, dm::losses::Projection::gaussian, 0),
      dm::Error);
  EXPECT_THROW(dm::losses::denoising_sm(s, torch::zeros({4, 2}), 0.0, gen), dm::Error);
  EXPECT_THROW(dm::losses::denoising_eps(s, torch::zeros({4, 2}), -1.0, gen), dm::Error);
}

// A short training with each loss on the two-mode mixture must bring the MLP's
// score within a stated error of the exact one (relative, weighted by p). The
// bounds leave room for the optimiser's noise; an untrained net scores ≈ 1.
class LossTraining : public ::testing::TestWithParam<std::string> {};

TEST_P(LossTraining, ReachesTheExactScore) {
  const std::string loss = GetParam();
  torch::manual_seed(11);
  const auto gm = two_modes();
  const double sigma = 0.3;  // DSM fits p_σ: compare with its exact score
  const auto target_model = loss == "dsm" ? gm.perturb_ve(sigma) : gm;
  dm::nn::MLPConfig mc;
  mc.time_dim = 0;
  mc.hidden = 64;
  mc.layers = 2;
  dm::nn::ScoreMLP net(mc);
  Field s = [&](const Tensor& x) { return net->forward(x); };
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(3e-3));
  auto gen = generator(11);
  const auto x_eval = target_model.sample(4000, gen).to(torch::kFloat32);
  const auto target_eval = target_model.score(x_eval.to(torch::kFloat64)).to(torch::kFloat32);
  const double before = dm::losses::relative_score_error(s, x_eval, target_eval);
  for (int step = 0; step < 1200; ++step) {
    const auto x = gm.sample(256, gen).to(torch::kFloat32);
    Tensor l;
    if (loss == "esm")
      l = dm::losses::explicit_sm(s, x, gm.score(x.to(torch::kFloat64)).to(torch::kFloat32));
    if (loss == "ssm") l = dm::losses::sliced_sm(s, x, gen);
    if (loss == "dsm") l = dm::losses::denoising_sm(s, x, sigma, gen);
    opt.zero_grad();
    l.backward();
    opt.step();
  }
  const double after = dm::losses::relative_score_error(s, x_eval, target_eval);
  EXPECT_GT(before, 0.5);
  EXPECT_LT(after, loss == "esm" ? 0.05 : 0.15) << loss << ": relative score error " << after;
}

INSTANTIATE_TEST_SUITE_P(EachLoss, LossTraining, ::testing::Values("esm", "ssm", "dsm"));

}  // namespace

namespace {

// eps_matching_loss on any process: x_t = a(t) x_0 + s(t) ε, and the model's
// prediction converted to ε. With the exact score of a Gaussian N(0, v I)
// pushed through the process, ε_θ = −s·score = s·x_t/(a² v + s²): the loss
// is written out here per row with a time per row.
TEST(Losses, EpsMatchingLossIsItsFormulaOnAnyProcess) {
  const double v = 0.5;
  dm::FunctionProcess process("a = cos, s = sin", 0.0, 1.5, [](double t) {
    return dm::Coefficients{std::cos(t), std::sin(t)};
  });
  // The exact score of p_t = N(0, (a² v + s²) I), a score model.
  struct GaussianScore : dm::Model {
    const dm::Process* p;
    double v;
    dm::Prediction prediction() const override { return dm::Prediction::score; }
    Tensor predict(const Tensor& x, const Tensor& t, const dm::Condition&) override {
      const auto a = dm::per_row(p->a(t), x), s = dm::per_row(p->s(t), x);
      return -x / (a * a * v + s * s);
    }
  } model;
  model.p = &process;
  model.v = v;
  auto gen = generator(8);
  const int64_t n = 32;
  const auto x0 = std::sqrt(v) * dm::randn({n, 3}, gen, torch::kFloat64);
  const auto eps = dm::randn({n, 3}, gen, torch::kFloat64);
  const auto t = torch::linspace(0.05, 1.45, n, torch::kFloat64);
  const auto got = dm::losses::eps_matching_loss(model, process, x0, t, eps).item<double>();
  double want = 0;
  for (int64_t i = 0; i < n; ++i) {
    const double ti = t[i].item<double>(), a = std::cos(ti), s = std::sin(ti);
    const auto xt = a * x0[i] + s * eps[i];
    const auto eps_hat = s * xt / (a * a * v + s * s);  // ε = −s·score
    want += (eps_hat - eps[i]).pow(2).sum().item<double>();
  }
  want /= double(n * 3);
  EXPECT_NEAR(got, want, 1e-12);
  // It differentiates into whatever the model depends on.
  auto scale = torch::ones({1}, torch::kFloat64).requires_grad_(true);
  struct Scaled : dm::Model {
    dm::Model* inner;
    Tensor* c;
    dm::Prediction prediction() const override { return dm::Prediction::score; }
    Tensor predict(const Tensor& x, const Tensor& t, const dm::Condition& cond) override {
      return *c * inner->predict(x, t, cond);
    }
  } scaled;
  scaled.inner = &model;
  scaled.c = &scale;
  dm::losses::eps_matching_loss(scaled, process, x0, t, eps).backward();
  ASSERT_TRUE(scale.grad().defined());
  EXPECT_TRUE(torch::isfinite(scale.grad()).all().item<bool>());
  EXPECT_NE(scale.grad().item<double>(), 0.0);
}

}  // namespace
