// Predictor–corrector sampling with the exact score of a Gaussian mixture: the
// corrector's achieved signal-to-noise ratio, both orders, corrector-only PC =
// NCSN's annealed Langevin; the probability-flow predictor.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <memory>

#include "dm/base/core.hpp"
#include "dm/base/rng.hpp"
#include "dm/data/metrics.hpp"
#include "dm/data/toy.hpp"
#include "dm/diffusion/process.hpp"
#include "dm/diffusion/sde.hpp"
#include "dm/methods/ncsn.hpp"
#include "dm/methods/pc.hpp"

namespace {

dm::toy::GaussianMixture mixture() {
  return dm::toy::GaussianMixture::isotropic(
      torch::tensor({0.5, 0.3, 0.2}, torch::kFloat64),
      torch::tensor({{-2.0, -1.0}, {2.0, -1.0}, {0.0, 2.2}}, torch::kFloat64),
      torch::full({3}, 0.45, torch::kFloat64));
}

// mean_rows ‖drift‖ / mean_rows ‖noise‖ of one step: (mean − x) against (x' − mean).
double achieved_ratio(const dm::StepResult& r, const torch::Tensor& x) {
  return (r.mean - x).norm(2, 1).mean().item<double>() /
         (r.x - r.mean).norm(2, 1).mean().item<double>();
}

}  // namespace

// ‖ε s‖/‖√(2ε) z‖ = √α · r: r itself for VE (α = 1), √(1 − β) r for VP.
TEST(PC, TheCorrectorAchievesTheTargetSignalToNoiseRatio) {
  const auto data = mixture();
  auto gen = dm::make_generator(1);
  for (std::shared_ptr<const dm::sde::SDE> sde :
       {std::shared_ptr<const dm::sde::SDE>(std::make_shared<dm::sde::VE>(0.01, 10.0)),
        std::shared_ptr<const dm::sde::SDE>(std::make_shared<dm::sde::VP>())}) {
    dm::toy::PerturbedMixture model(data, sde, dm::Prediction::score);
    const double t = 0.5, t_next = 0.49;
    const auto x = model.at(t).sample(500, gen);
    const auto corrector = dm::pc::langevin_corrector(sde, {0.16, 1});
    const auto r = corrector(model, x, t, t_next, {}, gen);
    const double alpha = std::pow(sde->transition(t_next, t).a, 2);
    EXPECT_NEAR(achieved_ratio(r, x), 0.16 * std::sqrt(alpha), 1e-9) << sde->name();
    EXPECT_EQ(r.nfe, 1);
  }
}

// Corrector-only PC with NCSN's step rule, driven by the PC composition, is
// chapter 03's annealed Langevin: the same numbers from the same generator.
TEST(PC, CorrectorOnlyWithNcsnsRuleIsAnnealedLangevin) {
  const auto data = mixture();
  const auto sigmas = dm::ncsn::geometric(6.0, 0.1, 8);
  const auto ve = std::make_shared<dm::SigmaVE>(dm::ncsn::process(sigmas));
  dm::toy::PerturbedMixture model(data, ve, dm::Prediction::score);
  dm::ncsn::AnnealedOptions ao;
  ao.steps_per_level = 5;
  ao.step_lr = 2e-4;
  ao.denoise = true;
  auto gen_a = dm::make_generator(9), gen_b = dm::make_generator(9);
  const auto x0 = 6.0 * torch::randn({300, 2}, torch::kFloat64);
  const auto reference = dm::ncsn::annealed_langevin(model, x0, sigmas, gen_a, ao);
  const auto pc_step = dm::pc::compose(dm::pc::predictor_step(dm::pc::Predictor::none, nullptr),
                                       dm::ncsn::annealed_langevin_step(ve, sigmas.min(), ao),
                                       dm::pc::Order::corrector_then_predictor);
  const auto mine = dm::run(model, pc_step, x0, dm::append(sigmas.values, 0.0), gen_b);
  EXPECT_TRUE(torch::equal(mine.x, reference));
  EXPECT_EQ(mine.nfe, 8 * 5 + 1);
}

// With the exact score, both orders sample the mixture; they are different samplers.
TEST(PC, BothOrdersSampleTheMixture) {
  const auto data = mixture();
  auto sde = std::make_shared<dm::sde::VE>(0.01, 10.0);
  dm::toy::PerturbedMixture model(data, sde, dm::Prediction::score);
  auto gen = dm::make_generator(2);
  const auto exact = [&](int64_t n) { return data.sample(n, gen); };
  const auto floor = dm::metrics::noise_floor(exact, 1000, dm::metrics::energy_distance, 10);
  torch::Tensor first;
  for (auto order :
       {dm::pc::Order::predictor_then_corrector, dm::pc::Order::corrector_then_predictor}) {
    dm::pc::SampleOptions o;
    o.steps = 100;
    o.order = order;
    auto g = dm::make_generator(4);
    const auto x = dm::pc::sample(model, sde, {1000, 2}, g, o);
    const double ed = dm::metrics::energy_distance(x, data.sample(1000, gen));
    EXPECT_LT(ed, floor.mean + 4 * floor.std + 0.01)
        << (order == dm::pc::Order::predictor_then_corrector ? "P then C" : "C then P");
    if (!first.defined())
      first = x;
    else
      EXPECT_FALSE(torch::allclose(first, x));
  }
}

// The probability-flow predictor is reverse diffusion at half the score and
// with no noise: its step is the midpoint of x − f_i(x) and reverse
// diffusion's mean, and it draws nothing from the generator.
TEST(PC, ProbabilityFlowPredictorIsReverseDiffusionAtHalfTheScoreWithoutNoise) {
  const auto data = mixture();
  auto sde = std::make_shared<dm::sde::VP>();
  dm::toy::PerturbedMixture model(data, sde, dm::Prediction::score);
  auto gen = dm::make_generator(6);
  const auto x = model.at(0.4).sample(200, gen);
  const double t = 0.4, t_next = 0.39;
  const auto pf = dm::pc::predictor_step(dm::pc::Predictor::probability_flow, sde);
  const auto rd = dm::pc::predictor_step(dm::pc::Predictor::reverse_diffusion, sde);
  auto g1 = dm::make_generator(1), g2 = dm::make_generator(2);
  const auto a = pf(model, x, t, t_next, {}, g1), b = pf(model, x, t, t_next, {}, g2);
  EXPECT_TRUE(torch::equal(a.x, b.x));
  EXPECT_TRUE(torch::equal(a.x, a.mean));
  EXPECT_EQ(a.nfe, 1);
  const double k_a = sde->transition(t_next, t).a;
  const auto r = rd(model, x, t, t_next, {}, g1);
  EXPECT_TRUE(torch::allclose(a.x, 0.5 * (x * (2.0 - k_a) + r.mean), 1e-12, 1e-12));
  // The generator is untouched: its next draw is a fresh generator's first.
  auto fresh = dm::make_generator(2);
  EXPECT_TRUE(
      torch::equal(dm::randn({4}, g2, torch::kFloat64), dm::randn({4}, fresh, torch::kFloat64)));
}

// Predictor-only PC with it samples the mixture with the exact score (VE and
// VP), within four standard deviations of the floor's mean (plus 0.01 slack
// for the residual discretisation error at 200 steps).
TEST(PC, ProbabilityFlowPredictorSamplesTheMixture) {
  const auto data = mixture();
  auto gen = dm::make_generator(8);
  const auto exact = [&](int64_t n) { return data.sample(n, gen); };
  const auto floor = dm::metrics::noise_floor(exact, 1000, dm::metrics::energy_distance, 10);
  for (std::shared_ptr<const dm::sde::SDE> sde :
       {std::shared_ptr<const dm::sde::SDE>(std::make_shared<dm::sde::VE>(0.01, 10.0)),
        std::shared_ptr<const dm::sde::SDE>(std::make_shared<dm::sde::VP>())}) {
    dm::toy::PerturbedMixture model(data, sde, dm::Prediction::score);
    dm::pc::SampleOptions o;
    o.predictor = dm::pc::Predictor::probability_flow;
    o.corrector = dm::pc::Corrector::none;
    o.steps = 200;
    auto g = dm::make_generator(3);
    const auto x = dm::pc::sample(model, sde, {1000, 2}, g, o);
    EXPECT_LT(dm::metrics::energy_distance(x, data.sample(1000, gen)),
              floor.mean + 4 * floor.std + 0.01)
        << sde->name();
    // With 2 steps it is far off (so the check above can fail).
    o.steps = 2;
    auto g2 = dm::make_generator(3);
    const auto coarse = dm::pc::sample(model, sde, {1000, 2}, g2, o);
    EXPECT_GT(dm::metrics::energy_distance(coarse, data.sample(1000, gen)),
              floor.mean + 4 * floor.std + 0.01)
        << sde->name();
  }
}
