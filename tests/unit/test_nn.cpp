// tests/unit/test_nn.cpp — dm/nn/networks.hpp and dm/nn/net_model.hpp: embeddings,
// U-Net, score MLP, EMA, NetModel (time labels, input scaling, NetSpec JSON).
//
// The embedding is checked against values worked out by hand; the networks on
// shapes, on what their output must depend on (t, the class, the null class),
// on clear refusals of bad input, and on gradients reaching every parameter;
// the EMA against its update formula exactly. Nets are tiny (8×8 images) so the
// whole file runs in a few seconds on a CPU.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <string>

#include "dm/base/core.hpp"
#include "dm/diffusion/model.hpp"
#include "dm/diffusion/param.hpp"
#include "dm/diffusion/process.hpp"
#include "dm/diffusion/schedule.hpp"
#include "dm/nn/net_model.hpp"
#include "dm/nn/networks.hpp"

#include "test_tensors.hpp"

namespace {

using dm::nn::EMA;
using dm::nn::MLPConfig;
using dm::nn::NetModel;
using dm::nn::NetSpec;
using dm::nn::ScoreMLP;
using dm::nn::TimeLabel;
using dm::nn::UNet;
using dm::nn::UNetConfig;

// Runs `f` and checks that it throws dm::Error whose message contains `part`.
template <typename F>
void expect_error(F&& f, const std::string& part) {
  try {
    f();
    ADD_FAILURE() << "expected dm::Error containing \"" << part << "\"";
  } catch (const dm::Error& e) {
    EXPECT_NE(std::string(e.what()).find(part), std::string::npos) << "message: " << e.what();
  }
}

// Two levels (8×8, 4×4), 16 and 32 channels, attention at 4×4: ~0.2M parameters.
UNetConfig small_unet() {
  UNetConfig c;
  c.base_channels = 16;
  c.channel_mults = {1, 2};
  c.attention_resolutions = {4};
  c.image_size = 8;
  return c;
}

// The last conv starts at zero (by design); give it random weights so the
// output shows what the rest of the net computes.
template <typename Net>
void perturb_output_layer(Net& net) {
  torch::NoGradGuard no_grad;
  for (auto& item : net->named_parameters())
    if (item.key().rfind("conv_out.", 0) == 0) item.value().normal_(0, 0.1);
}

using dm_test::max_abs_diff;

// ---------------------------------------------------------------------------
// Sinusoidal embedding

TEST(NnEmbedding, HandComputedValues) {
  // dim 6: h = 3, ω = exp(−ln(10⁴)·i/2) = {1, 10⁻², 10⁻⁴}.
  const auto t = torch::tensor({0.0, 2.5, 1000.0}, dm::f64());
  const auto e = dm::nn::sinusoidal_embedding(t, 6);
  ASSERT_EQ(e.sizes(), (std::vector<int64_t>{3, 6}));
  EXPECT_EQ(e.scalar_type(), torch::kFloat64);
  const double want[3][6] = {
      {0, 0, 0, 1, 1, 1},
      // sin(2.5), sin(0.025), sin(0.00025), cos(2.5), cos(0.025), cos(0.00025)
      {0.5984721441039565, 0.024997395914712332, 0.00024999999739583334, -0.8011436155469337,
       0.9996875162757026, 0.9999999687500002},
      // sin(1000), sin(10), sin(0.1), cos(1000), cos(10), cos(0.1)
      {0.8268795405320025, -0.5440211108893698, 0.09983341664682815, 0.5623790762907029,
       -0.8390715290764524, 0.9950041652780258}};
  for (int i = 0; i < 3; ++i)
    for (int j = 0; j < 6; ++j)
      EXPECT_NEAR(e[i][j].item<double>(), want[i][j], 1e-12) << i << "," << j;
}

TEST(NnEmbedding, OddDimSmallDimAndIntegerLabels) {
  const auto t = torch::tensor({3.0}, dm::f64());
  const auto odd = dm::nn::sinusoidal_embedding(t, 7);  // h = 3 and a zero last column
  ASSERT_EQ(odd.size(1), 7);
  EXPECT_EQ(odd[0][6].item<double>(), 0.0);
  EXPECT_NEAR(odd[0][0].item<double>(), std::sin(3.0), 1e-12);
  const auto two = dm::nn::sinusoidal_embedding(t, 2);  // h = 1: ω = 1
  EXPECT_NEAR(two[0][0].item<double>(), std::sin(3.0), 1e-12);
  EXPECT_NEAR(two[0][1].item<double>(), std::cos(3.0), 1e-12);
  const auto steps =
      dm::nn::sinusoidal_embedding(torch::tensor({int64_t(3)}), 6);  // DDPM step indices
  EXPECT_EQ(steps.scalar_type(), torch::kFloat32);
  EXPECT_NEAR(steps[0][0].item<double>(), std::sin(3.0), 1e-6);
}

TEST(NnEmbedding, RefusesBadInput) {
  expect_error([] { dm::nn::sinusoidal_embedding(torch::zeros({2}), 1); },
               "dim must be at least 2");
  expect_error([] { dm::nn::sinusoidal_embedding(torch::zeros({2, 1}), 8); }, "t must be [N]");
}

// ---------------------------------------------------------------------------
// U-Net: shapes and configuration

TEST(NnUNet, OutputShapes) {
  torch::manual_seed(0);
  {  // one channel, 2 levels, and a non-square image
    UNet net(small_unet());
    EXPECT_EQ(net->forward(torch::randn({2, 1, 8, 8}), torch::tensor({1.f, 500.f})).sizes(),
              (std::vector<int64_t>{2, 1, 8, 8}));
    EXPECT_EQ(net->forward(torch::randn({1, 1, 8, 16}), torch::tensor({3.f})).sizes(),
              (std::vector<int64_t>{1, 1, 8, 16}));
  }
  {  // RGB, three levels 16 → 8 → 4, attention at 8 and 4, two ResBlocks per level
    auto c = small_unet();
    c.in_channels = c.out_channels = 3;
    c.channel_mults = {1, 2, 2};
    c.res_blocks = 2;
    c.attention_resolutions = {8, 4};
    c.image_size = 16;
    UNet net(c);
    EXPECT_EQ(net->forward(torch::randn({2, 3, 16, 16}), torch::tensor({1.f, 2.f})).sizes(),
              (std::vector<int64_t>{2, 3, 16, 16}));
  }
  {  // a conditioning image and a different number of output channels
    auto c = small_unet();
    c.cond_channels = 2;
    c.out_channels = 2;
    UNet net(c);
    EXPECT_EQ(net->forward(torch::randn({3, 1, 8, 8}), torch::tensor({7.f}), {},
                           torch::randn({3, 2, 8, 8}))
                  .sizes(),
              (std::vector<int64_t>{3, 2, 8, 8}));
  }
  {  // class-conditional
    auto c = small_unet();
    c.num_classes = 10;
    UNet net(c);
    const auto labels = torch::tensor({int64_t(3), int64_t(-1)});
    EXPECT_EQ(net->forward(torch::randn({2, 1, 8, 8}), torch::tensor({1.f, 2.f}), labels).sizes(),
              (std::vector<int64_t>{2, 1, 8, 8}));
  }
}

TEST(NnUNet, ZeroInitialisedOutputLayer) {
  torch::manual_seed(1);
  UNet net(small_unet());
  // The untrained net predicts exactly zero: the best constant guess of ε.
  EXPECT_EQ(net->forward(torch::randn({2, 1, 8, 8}), torch::tensor({5.f, 50.f}))
                .abs()
                .max()
                .item<float>(),
            0.f);
}

TEST(NnUNet, OutputDependsOnTime) {
  torch::manual_seed(2);
  UNet net(small_unet());
  perturb_output_layer(net);
  const auto x = torch::randn({1, 1, 8, 8}).expand({2, 1, 8, 8}).contiguous();
  const auto out = net->forward(x, torch::tensor({10.f, 500.f}));
  EXPECT_GT(max_abs_diff(out[0], out[1]), 1e-3);
  // One t for the whole batch is the same as that t in every row.
  const auto t = torch::tensor({42.f});
  EXPECT_LT(max_abs_diff(net->forward(x, t), net->forward(x, t.expand({2}))), 1e-6);
}

TEST(NnUNet, OutputDependsOnClassAndMinusOneIsTheNullClass) {
  torch::manual_seed(3);
  auto c = small_unet();
  c.num_classes = 3;
  UNet net(c);
  perturb_output_layer(net);
  const auto x = torch::randn({1, 1, 8, 8}).expand({4, 1, 8, 8}).contiguous();
  const auto t = torch::tensor({100.f});
  const auto out =
      net->forward(x, t, torch::tensor({int64_t(0), int64_t(1), int64_t(2), int64_t(-1)}));
  for (int i = 0; i < 4; ++i)
    for (int j = i + 1; j < 4; ++j)
      EXPECT_GT(max_abs_diff(out[i], out[j]), 1e-4) << i << " vs " << j;
  // No labels at all = every row in the null class (−1).
  const auto unlabelled = net->forward(x, t);
  EXPECT_LT(max_abs_diff(unlabelled[0], out[3]), 1e-6);
  // ... which is the embedding's last row (index num_classes), not class 0.
  torch::NoGradGuard no_grad;
  for (auto& item : net->named_parameters())
    if (item.key() == "class_embedding.weight") item.value()[3].zero_();
  const auto changed = net->forward(x.slice(0, 0, 2), t, torch::tensor({int64_t(0), int64_t(-1)}));
  // Class 0 untouched. A batch of 2 instead of 4 may take other convolution
  // kernels: float32 rounding (~1e-7 per operation, over a few hundred terms) differs.
  EXPECT_LT(max_abs_diff(changed[0], out[0]), 1e-5);
  EXPECT_GT(max_abs_diff(changed[1], out[3]), 1e-4);  // the null class moved
}

TEST(NnUNet, ClearErrors) {
  auto cond_config = small_unet();
  cond_config.cond_channels = 1;
  UNet net(small_unet()), cond_net(cond_config);
  const auto t = torch::tensor({1.f});
  expect_error(
      [&] {
        net->forward(torch::randn({1, 1, 8, 8}), t, torch::tensor({int64_t(0)}));
      },
      "labels given to an unconditional net");
  expect_error(
      [&] {
        net->forward(torch::randn({1, 3, 8, 8}), t);
      },
      "x has 3 channels, the net expects in_channels = 1");
  auto three_levels = small_unet();
  three_levels.channel_mults = {1, 2, 2};
  expect_error(
      [&] {
        UNet(three_levels)->forward(torch::randn({1, 1, 10, 10}), t);
      },
      "image size 10×10 is not divisible by 4 = 2^(levels−1) for 3 levels");
  expect_error([&] { net->forward(torch::randn({1, 8, 8}), t); }, "x must be [N, C, H, W]");
  expect_error(
      [&] {
        net->forward(torch::randn({2, 1, 8, 8}), torch::ones({3}));
      },
      "t must be [N] = [2]");
  expect_error(
      [&] {
        net->forward(torch::randn({1, 1, 8, 8}), t, {}, torch::randn({1, 1, 8, 8}));
      },
      "cond given to a net without a conditioning input");
  expect_error(
      [&] {
        cond_net->forward(torch::randn({1, 1, 8, 8}), t);
      },
      "expects a conditioning input cond");
  expect_error(
      [&] {
        cond_net->forward(torch::randn({1, 1, 8, 8}), t, {}, torch::randn({1, 1, 4, 4}));
      },
      "cond must be [N, cond_channels, H, W] = [1, 1, 8, 8]");

  auto classes = small_unet();
  classes.num_classes = 3;
  UNet class_net(classes);
  expect_error(
      [&] {
        class_net->forward(torch::randn({1, 1, 8, 8}), t, torch::tensor({int64_t(3)}));
      },
      "labels must lie in 0…2 or be −1");
  expect_error(
      [&] {
        class_net->forward(torch::randn({1, 1, 8, 8}), t, torch::tensor({1.f}));
      },
      "labels must be int64");
}

TEST(NnUNet, ConfigValidation) {
  auto c = small_unet();
  c.base_channels = 12;  // 12 % 8 ≠ 0
  expect_error([&] { UNet{c}; }, "groups = 8 does not divide base_channels = 12");
  c = small_unet();
  c.channel_mults = {1, 0};
  expect_error([&] { UNet{c}; }, "channel_mults must be >= 1");
  c = small_unet();
  c.attention_resolutions = {5};
  expect_error([&] { UNet{c}; }, "attention resolution 5 is none of the levels' sizes 8, 4");
  c = small_unet();
  c.image_size = 7;
  expect_error([&] { UNet{c}; }, "image_size = 7 is not divisible by 2");
  c = small_unet();
  c.dropout = 1.0;
  expect_error([&] { UNet{c}; }, "dropout");
}

TEST(NnUNet, ConfigJsonRoundTripAndInequality) {
  UNetConfig c;
  c.in_channels = 3;
  c.out_channels = 6;
  c.base_channels = 64;
  c.channel_mults = {1, 2, 4, 4};
  c.res_blocks = 2;
  c.attention_resolutions = {16, 8};
  c.dropout = 0.1;
  c.num_classes = 10;
  c.cond_channels = 3;
  c.groups = 32;
  c.image_size = 64;
  const auto j = dm::nn::to_json(c);
  EXPECT_EQ(j.at("model"), "unet");
  EXPECT_EQ(dm::nn::unet_config_from_json(j), c);
  EXPECT_EQ(dm::nn::unet_config_from_json(nlohmann::json::parse(j.dump())), c);      // through text
  EXPECT_EQ(dm::nn::unet_config_from_json(nlohmann::json::object()), UNetConfig{});  // defaults
  EXPECT_EQ(dm::nn::unet_config_from_json(dm::nn::to_json(UNetConfig{})), UNetConfig{});

  auto other = c;
  other.channel_mults = {1, 2, 4, 8};
  EXPECT_NE(other, c);
  other = c;
  other.dropout = 0.2;
  EXPECT_NE(other, c);
  other = c;
  other.num_classes = 0;
  EXPECT_NE(other, c);

  auto typo = j;
  typo["base_chanels"] = 32;
  expect_error([&] { dm::nn::unet_config_from_json(typo); }, "unknown key \"base_chanels\"");
  auto wrong_type = j;
  wrong_type["groups"] = "eight";
  expect_error([&] { dm::nn::unet_config_from_json(wrong_type); }, "\"groups\" must be an integer");
  expect_error([&] { dm::nn::unet_config_from_json(dm::nn::to_json(MLPConfig{})); }, "unknown key");
  auto invalid = j;
  invalid["groups"] = 7;
  expect_error([&] { dm::nn::unet_config_from_json(invalid); }, "groups = 7 does not divide");
}

TEST(NnUNet, GradientsReachEveryParameter) {
  torch::manual_seed(4);
  auto c = small_unet();
  c.num_classes = 3;
  c.cond_channels = 1;
  UNet net(c);
  const auto x = torch::randn({4, 1, 8, 8}), cond = torch::randn({4, 1, 8, 8});
  const auto t = torch::tensor({1.f, 10.f, 100.f, 900.f});
  const auto labels = torch::tensor({int64_t(0), int64_t(1), int64_t(2), int64_t(-1)});
  const auto target = torch::randn({4, 1, 8, 8});
  auto loss = [&] { return (net->forward(x, t, labels, cond) - target).pow(2).mean(); };

  // At initialisation only the zero last layer gets gradient (nothing flows
  // back through a zero weight) — by design; it is nonzero after one step.
  loss().backward();
  for (const auto& item : net->named_parameters()) {
    const auto& g = item.value().grad();
    ASSERT_TRUE(g.defined()) << item.key();
    if (item.key().rfind("conv_out.", 0) == 0)
      EXPECT_GT(g.abs().sum().item<double>(), 0) << item.key();
    else
      EXPECT_EQ(g.abs().sum().item<double>(), 0) << item.key();
  }

  net->zero_grad();
  perturb_output_layer(net);
  loss().backward();
  for (const auto& item : net->named_parameters()) {
    const auto& g = item.value().grad();
    ASSERT_TRUE(g.defined()) << item.key();
    EXPECT_GT(g.abs().sum().item<double>(), 0) << item.key();
    EXPECT_TRUE(torch::isfinite(g).all().item<bool>()) << item.key();
  }
}

TEST(NnUNet, ParameterCountAndDescription) {
  UNet small(small_unet());
  int64_t sum = 0;
  for (const auto& p : small->parameters()) sum += p.numel();
  EXPECT_EQ(dm::nn::parameter_count(*small), sum);

  // The default net is the CPU-sized one the header documents (~1M parameters).
  UNet net;
  const int64_t n = dm::nn::parameter_count(*net);
  EXPECT_GT(n, 800000);
  EXPECT_LT(n, 2000000);
  const auto line = dm::nn::describe(net);
  EXPECT_EQ(line.rfind("U-Net 1.", 0), 0u) << line;
  EXPECT_NE(line.find("M parameters (base 16, mults 1-2-4-4, attention at 8)"), std::string::npos)
      << line;

  auto c = small_unet();
  c.num_classes = 10;
  c.cond_channels = 1;
  const auto cond_line = dm::nn::describe(UNet(c));
  EXPECT_NE(cond_line.find("10 classes + null"), std::string::npos) << cond_line;
  EXPECT_NE(cond_line.find("1 conditioning channels"), std::string::npos) << cond_line;
}

TEST(NnUNet, RunsOnCudaWhenAvailable) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  torch::manual_seed(5);
  auto c = small_unet();
  c.num_classes = 3;
  UNet net(c);
  perturb_output_layer(net);
  const auto x = torch::randn({2, 1, 8, 8});
  const auto t = torch::tensor({3.f, 300.f});
  const auto labels = torch::tensor({int64_t(1), int64_t(-1)});
  const auto cpu = net->forward(x, t, labels);
  net->to(torch::kCUDA);
  const auto gpu = net->forward(x.cuda(), t.cuda(), labels.cuda());
  EXPECT_TRUE(gpu.is_cuda());
  EXPECT_LT(max_abs_diff(gpu.cpu(), cpu), 1e-3);
}

// ---------------------------------------------------------------------------
// Score MLP

TEST(NnScoreMLP, ShapesAndTimeDependence) {
  torch::manual_seed(6);
  ScoreMLP net;  // dim 2, hidden 128, 3 layers, time 32
  const auto x = torch::randn({1, 2}).expand({2, 2}).contiguous();
  const auto out = net->forward(x, torch::tensor({1.f, 2.f}));
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{2, 2}));
  EXPECT_GT(max_abs_diff(out[0], out[1]), 1e-5);

  MLPConfig c;
  c.dim = 5;
  c.time_dim = 0;  // no time input: t is ignored and may be left out
  ScoreMLP plain(c);
  const auto y = torch::randn({3, 5});
  EXPECT_EQ(plain->forward(y).sizes(), (std::vector<int64_t>{3, 5}));
  EXPECT_EQ(
      max_abs_diff(plain->forward(y, torch::zeros({3})), plain->forward(y, torch::ones({3}) * 7)),
      0.0);
}

TEST(NnScoreMLP, ClassesNullClassAndErrors) {
  torch::manual_seed(7);
  MLPConfig c;
  c.num_classes = 2;
  ScoreMLP net(c);
  const auto x = torch::randn({1, 2}).expand({3, 2}).contiguous();
  const auto t = torch::tensor({5.f});
  const auto out = net->forward(x, t, torch::tensor({int64_t(0), int64_t(1), int64_t(-1)}));
  EXPECT_GT(max_abs_diff(out[0], out[1]), 1e-5);
  EXPECT_GT(max_abs_diff(out[0], out[2]), 1e-5);
  EXPECT_LT(max_abs_diff(net->forward(x, t)[0], out[2]), 1e-6);  // no labels = null class

  ScoreMLP plain;
  expect_error(
      [&] {
        plain->forward(x, t, torch::tensor({int64_t(0), int64_t(0), int64_t(0)}));
      },
      "labels given to an unconditional net");
  expect_error([&] { plain->forward(torch::randn({3, 3}), t); }, "x must be [N, dim] = [N, 2]");
  expect_error([&] { plain->forward(x); }, "the noise label t is missing");
}

TEST(NnScoreMLP, ConfigJsonParameterCountAndDescription) {
  MLPConfig c;
  c.dim = 3;
  c.hidden = 64;
  c.layers = 4;
  c.time_dim = 16;
  c.num_classes = 5;
  EXPECT_EQ(dm::nn::mlp_config_from_json(dm::nn::to_json(c)), c);
  auto other = c;
  other.layers = 3;
  EXPECT_NE(other, c);
  expect_error([&] { dm::nn::mlp_config_from_json(dm::nn::to_json(UNetConfig{})); }, "unknown key");
  c.time_dim = 1;
  expect_error([&] { ScoreMLP{c}; }, "time_dim must be 0");

  ScoreMLP net;
  // time_fc 32·128+128, hidden 2·128+128 + 2·(128·128+128), cond_proj 3·(128·128+128), out 128·2+2
  const int64_t want = (32 * 128 + 128) + (2 * 128 + 128) + 2 * (128 * 128 + 128) +
                       3 * (128 * 128 + 128) + (128 * 2 + 2);
  EXPECT_EQ(dm::nn::parameter_count(*net), want);
  EXPECT_EQ(dm::nn::describe(net),
            "Score MLP 87.4k parameters (dim 2, hidden 128, 3 layers, time embedding 32)");
}

// ---------------------------------------------------------------------------
// EMA

// A small double-precision module with a buffer: exact arithmetic checks.
struct Toy : torch::nn::Module {
  Toy() {
    linear = register_module("linear", torch::nn::Linear(3, 2));
    norm = register_module("norm", torch::nn::BatchNorm1d(2));
    to(torch::kFloat64);
  }
  torch::nn::Linear linear{nullptr};
  torch::nn::BatchNorm1d norm{nullptr};
};

void fill(torch::nn::Module& m, double value) {
  torch::NoGradGuard no_grad;
  for (auto& p : m.parameters()) p.fill_(value);
}

TEST(NnEma, UpdateIsTheExactFormula) {
  torch::manual_seed(8);
  Toy model;
  EMA ema(model, 0.9);
  std::vector<torch::Tensor> shadow;
  for (const auto& p : model.parameters()) shadow.push_back(p.detach().clone());
  for (int step = 0; step < 3; ++step) {
    {
      torch::NoGradGuard no_grad;
      for (auto& p : model.parameters()) p.normal_();
    }
    ema.update(model);
    const auto params = model.parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      shadow[i] = 0.9 * shadow[i] + 0.1 * params[i].detach();  // d·s + (1 − d)·p
      EXPECT_LT(max_abs_diff(ema.named_shadow()[i].second, shadow[i]), 1e-15);
    }
  }
  EXPECT_EQ(ema.updates(), 3);
  EXPECT_FALSE(ema.named_shadow()[0].second.requires_grad());
}

TEST(NnEma, WarmupDecay) {
  Toy model;
  EMA plain(model, 0.999), warm(model, 0.999, /*warmup=*/true);
  EXPECT_EQ(plain.decay_at(1), 0.999);
  EXPECT_DOUBLE_EQ(warm.decay_at(1), 2.0 / 11.0);
  EXPECT_DOUBLE_EQ(warm.decay_at(100), 101.0 / 110.0);
  EXPECT_DOUBLE_EQ(warm.decay_at(100000), 0.999);
  // The first warm update moves the shadow 9/11 of the way to the parameters.
  fill(model, 0.0);
  EMA ema(model, 0.999, true);
  fill(model, 11.0);
  ema.update(model);
  EXPECT_NEAR(ema.named_shadow()[0].second.max().item<double>(), 9.0, 1e-12);
}

TEST(NnEma, ConvergesToAConstantParameter) {
  Toy model;
  fill(model, 1.0);
  EMA ema(model, 0.95);
  fill(model, 3.0);
  // s_n = c + dⁿ(s₀ − c)
  for (int n = 1; n <= 400; ++n) {
    ema.update(model);
    if (n == 10) {
      EXPECT_NEAR(ema.named_shadow()[0].second[0][0].item<double>(), 3.0 - 2.0 * std::pow(0.95, 10),
                  1e-12);
    }
  }
  for (size_t i = 0; i < 4; ++i)
    EXPECT_NEAR(ema.named_shadow()[i].second.max().item<double>(), 3.0, 1e-8);
}

TEST(NnEma, CopyToStoreRestoreAndScopedSwap) {
  torch::manual_seed(9);
  Toy model;
  EMA ema(model, 0.5);
  fill(model, 2.0);
  ema.update(model);  // shadow = (initial + 2)/2
  std::vector<torch::Tensor> trained, averaged;
  for (const auto& p : model.parameters()) trained.push_back(p.detach().clone());
  for (size_t i = 0; i < trained.size(); ++i)
    averaged.push_back(ema.named_shadow()[i].second.clone());

  ema.store(model);
  ema.copy_to(model);
  for (size_t i = 0; i < trained.size(); ++i)
    EXPECT_EQ(max_abs_diff(model.parameters()[i], averaged[i]), 0.0);
  ema.restore(model);
  for (size_t i = 0; i < trained.size(); ++i)
    EXPECT_EQ(max_abs_diff(model.parameters()[i], trained[i]), 0.0);
  expect_error([&] { ema.restore(model); }, "nothing stored");

  {
    dm::nn::UseEmaWeights scope(ema, model);
    for (size_t i = 0; i < trained.size(); ++i)
      EXPECT_EQ(max_abs_diff(model.parameters()[i], averaged[i]), 0.0);
  }
  for (size_t i = 0; i < trained.size(); ++i)
    EXPECT_EQ(max_abs_diff(model.parameters()[i], trained[i]), 0.0);
}

TEST(NnEma, BuffersAreCopiedAndShadowIsNamed) {
  torch::manual_seed(10);
  Toy model;
  EMA ema(model, 0.9);
  model.norm->forward(torch::randn({16, 2}, dm::f64()) + 5.0);  // training mode: running stats move
  ema.update(model);
  const auto& shadow = ema.named_shadow();
  std::vector<std::string> names;
  for (const auto& item : model.named_parameters()) names.push_back(item.key());
  for (const auto& item : model.named_buffers()) names.push_back(item.key());
  ASSERT_EQ(shadow.size(), names.size());
  for (size_t i = 0; i < names.size(); ++i) EXPECT_EQ(shadow[i].first, names[i]);
  for (const auto& item : model.named_buffers()) {
    auto it = std::find_if(shadow.begin(), shadow.end(),
                           [&](const auto& s) { return s.first == item.key(); });
    ASSERT_NE(it, shadow.end());
    EXPECT_EQ(max_abs_diff(it->second.to(torch::kFloat64), item.value().to(torch::kFloat64)), 0.0)
        << item.key();
  }

  // Checkpoint round trip: a fresh EMA loads the saved shadow.
  EMA loaded(model, 0.9);
  loaded.load_shadow(shadow, ema.updates());
  EXPECT_EQ(loaded.updates(), 1);
  for (size_t i = 0; i < shadow.size(); ++i)
    EXPECT_EQ(max_abs_diff(loaded.named_shadow()[i].second.to(torch::kFloat64),
                           shadow[i].second.to(torch::kFloat64)),
              0.0);

  // Another model is refused.
  torch::nn::Linear other(3, 2);
  expect_error([&] { ema.update(*other); }, "not the same model");
  expect_error([&] { ema.copy_to(*other); }, "not the same model");
}

// ---------------------------------------------------------------------------
// NetModel: a network behind the sampler seam

// An ε-net whose label is the process time itself (identity), unscaled input.
NetSpec identity_eps() {
  return {dm::Prediction::eps, TimeLabel::identity(), dm::nn::InputScaling::none};
}

TEST(NnNetModel, RunsTheNetInTheCallersDtype) {
  torch::manual_seed(11);
  ScoreMLP net;
  const dm::SigmaVE ve(10.0);
  NetModel model(net, identity_eps(), ve);
  EXPECT_EQ(model.prediction(), dm::Prediction::eps);
  const auto x = torch::randn({4, 2}, dm::f64());
  const auto t = torch::tensor({1.0, 2.0, 3.0, 4.0}, dm::f64());
  const auto out = model.predict(x, t);
  EXPECT_EQ(out.scalar_type(), torch::kFloat64);
  EXPECT_LT(
      max_abs_diff(out,
                   net->forward(x.to(torch::kFloat32), t.to(torch::kFloat32)).to(torch::kFloat64)),
      1e-6);
  // predict() leaves grad mode alone: a loss differentiates through it, a sampler
  // (dm::run, under inference mode) does not build a graph.
  EXPECT_TRUE(out.requires_grad());
  {
    c10::InferenceMode inference;
    EXPECT_FALSE(model.predict(x, t).requires_grad());
  }

  // An affine label: the sampler's continuous t becomes the net's label 999·t.
  NetSpec scaled_spec = identity_eps();
  scaled_spec.time = {TimeLabel::Kind::affine, 999.0, 0.0, 1.0, 1.0};
  NetModel scaled(net, scaled_spec, ve);
  const auto u = torch::tensor({0.5, 0.25, 0.125, 0.0625}, dm::f64());
  EXPECT_LT(max_abs_diff(scaled.predict(x, u), model.predict(x, 999.0 * u)), 1e-6);

  // Through the seam: an ε-model's score is −ε/s_t (here s = 0.5 at every t).
  const dm::FunctionProcess half("s = 0.5", 0.0, 10.0, [](double) {
    return dm::Coefficients{1.0, 0.5};
  });
  const auto score = dm::predict_as(dm::Prediction::score, model, half, x, t);
  EXPECT_LT(max_abs_diff(score, -out / 0.5), 1e-12);
}

TEST(NnNetModel, WrapsAUNetWithLabelsAndAPlainCallable) {
  torch::manual_seed(12);
  auto c = small_unet();
  c.num_classes = 3;
  UNet net(c);
  perturb_output_layer(net);
  NetSpec spec = identity_eps();
  spec.prediction = dm::Prediction::score;
  NetModel model(net, spec,
                 std::shared_ptr<const dm::Process>());  // no process needed for this spec
  EXPECT_EQ(model.prediction(), dm::Prediction::score);
  const auto x = torch::randn({2, 1, 8, 8});
  const auto t = torch::tensor({4.f, 40.f});
  const auto labels = torch::tensor({int64_t(2), int64_t(-1)});
  EXPECT_LT(max_abs_diff(model.predict(x, t, labels), net->forward(x, t, labels)), 1e-6);

  bool grad_mode_seen = false;
  torch::Tensor label_seen;
  NetModel callable(
      NetModel::FromFunction{},
      [&](const torch::Tensor& xs, const torch::Tensor& label, const dm::Condition& cond) {
        grad_mode_seen = torch::GradMode::is_enabled();
        label_seen = label;
        return net->forward(xs, label, cond.labels);
      },
      NetSpec::ddpm(), std::shared_ptr<const dm::Process>());
  EXPECT_LT(max_abs_diff(callable.predict(x, t + 1, labels), net->forward(x, t, labels)), 1e-6);
  EXPECT_TRUE(grad_mode_seen);                   // predict() does not switch gradients off …
  EXPECT_LT(max_abs_diff(label_seen, t), 1e-6);  // … and DDPM's label is t − 1
  {
    c10::InferenceMode inference;  // … the sampler loop does
    callable.predict(x, t, labels);
  }
  EXPECT_FALSE(grad_mode_seen);
  // A spec that needs the process refuses to be built without one.
  EXPECT_THROW((void)NetModel(net, NetSpec::ncsn(50.0, 0.01), std::shared_ptr<const dm::Process>()),
               dm::Error);
}

// NetSpec::ddpm: label t − 1 (the DDPM code's 0-based index), input unscaled.
// NetSpec::ncsn(σ_max, σ_min) on SigmaVE: label 999·(log σ_max − log σ)/(log σ_max − log σ_min)
// (0 at σ_max, 999 at σ_min), input x/√(a² + s²) = x/√(1 + σ²). Checked by a
// function-network that returns what it was given.
TEST(NnNetModel, SpecsApplyTheirLabelAndInputScaling) {
  torch::Tensor label_seen;
  const auto echo = [&](const torch::Tensor& x, const torch::Tensor& label, const dm::Condition&) {
    label_seen = label;
    return x;
  };
  const auto x = torch::randn({3, 2}, dm::f64());

  const auto sched = dm::schedule::linear(100);
  NetModel ddpm(NetModel::FromFunction{}, echo, NetSpec::ddpm(),
                std::make_shared<dm::schedule::Schedule>(sched));
  const auto steps = torch::tensor({1.0, 50.0, 100.0}, dm::f64());
  EXPECT_EQ(max_abs_diff(ddpm.predict(x, steps), x), 0.0);
  EXPECT_EQ(max_abs_diff(label_seen, steps - 1), 0.0);

  const double smax = 50.0, smin = 0.01;
  NetModel ncsn(NetModel::FromFunction{}, echo, NetSpec::ncsn(smax, smin),
                std::make_shared<dm::SigmaVE>(smax));
  const auto sigma = torch::tensor({50.0, 1.0, 0.01}, dm::f64());
  const auto out = ncsn.predict(x, sigma);
  const double span = std::log(smax / smin);
  for (int64_t i = 0; i < 3; ++i) {
    const double s = sigma[i].item<double>();
    EXPECT_NEAR(label_seen[i].item<double>(), 999.0 * (std::log(smax) - std::log(s)) / span, 1e-9)
        << "row " << i;
    EXPECT_LT(max_abs_diff(out[i], x[i] / std::sqrt(1 + s * s)), 1e-14) << "row " << i;
  }
  EXPECT_NEAR(label_seen[0].item<double>(), 0.0, 1e-9);
  EXPECT_NEAR(label_seen[2].item<double>(), 999.0, 1e-9);
}

// The spec travels with the weights as JSON and comes back equal; unknown
// values are refused. Descriptions written before the "net" key (the shipped
// checkpoints) are read from their other fields.
TEST(NnNetSpec, JsonRoundTripAndLegacyDescriptions) {
  for (const auto& spec :
       {NetSpec::ddpm(), NetSpec::ncsn(50.0, 0.01), identity_eps(),
        NetSpec{dm::Prediction::x0, TimeLabel{TimeLabel::Kind::affine, 999.0, 0.5, 1.0, 1.0},
                dm::nn::InputScaling::unit_variance},
        NetSpec{dm::Prediction::score, TimeLabel::log_sigma(20.0, 0.1, 1.0),
                dm::nn::InputScaling::none}}) {
    const auto j = spec.to_json();
    SCOPED_TRACE(j.dump());
    const auto back = NetSpec::from_json(nlohmann::json::parse(j.dump()));
    EXPECT_TRUE(back == spec);
    EXPECT_EQ(back.prediction, spec.prediction);
    EXPECT_EQ(back.time.kind, spec.time.kind);
    EXPECT_EQ(back.time.scale, spec.time.scale);
    EXPECT_EQ(back.input, spec.input);
    if (spec.time.kind == TimeLabel::Kind::affine) {
      EXPECT_EQ(back.time.shift, spec.time.shift);
    } else {
      EXPECT_EQ(back.time.sigma_max, spec.time.sigma_max);
      EXPECT_EQ(back.time.sigma_min, spec.time.sigma_min);
    }
  }
  EXPECT_FALSE(NetSpec::ddpm() == NetSpec::ncsn(50.0, 0.01));
  auto bad = NetSpec::ddpm().to_json();
  bad["prediction"] = "velocity";
  EXPECT_THROW(NetSpec::from_json(bad), dm::Error);
  bad = NetSpec::ddpm().to_json();
  bad["time_label"]["kind"] = "cosine";
  EXPECT_THROW(NetSpec::from_json(bad), dm::Error);
  bad = NetSpec::ddpm().to_json();
  bad["input_scaling"] = "halve";
  EXPECT_THROW(NetSpec::from_json(bad), dm::Error);
  EXPECT_THROW(NetSpec::from_json(nlohmann::json::object()), dm::Error);

  // Legacy descriptions: the U-Net's configuration plus chapter 03's or 04's fields.
  auto ncsn_legacy = dm::nn::to_json(small_unet());
  ncsn_legacy["model"] = "ncsn";
  ncsn_legacy["sigma_max"] = 50.0;
  ncsn_legacy["sigma_min"] = 0.01;
  ncsn_legacy["levels"] = 232;
  auto ddpm_legacy = dm::nn::to_json(small_unet());
  ddpm_legacy["schedule"] = "linear";
  ddpm_legacy["T"] = 1000;
  EXPECT_TRUE(dm::nn::net_spec_of(ncsn_legacy) == NetSpec::ncsn(50.0, 0.01));
  EXPECT_TRUE(dm::nn::net_spec_of(ddpm_legacy) == NetSpec::ddpm());
  const auto ncsn_filled = dm::nn::with_net_spec(ncsn_legacy);
  const auto ddpm_filled = dm::nn::with_net_spec(ddpm_legacy);
  ASSERT_TRUE(ncsn_filled.contains("net"));
  ASSERT_TRUE(ddpm_filled.contains("net"));
  EXPECT_TRUE(NetSpec::from_json(ncsn_filled["net"]) == NetSpec::ncsn(50.0, 0.01));
  EXPECT_TRUE(NetSpec::from_json(ddpm_filled["net"]) == NetSpec::ddpm());
  // Nothing else changes, and a description that has "net" is left as it is.
  auto without_net = ncsn_filled;
  without_net.erase("net");
  EXPECT_EQ(without_net, ncsn_legacy);
  auto explicit_net = ddpm_legacy;
  explicit_net["net"] = identity_eps().to_json();
  EXPECT_EQ(dm::nn::with_net_spec(explicit_net), explicit_net);
  EXPECT_TRUE(dm::nn::net_spec_of(explicit_net) == identity_eps());
  // Not a diffusion network (e.g. the classifier): unchanged; no spec to infer.
  const nlohmann::json classifier = {{"width", 32}};
  EXPECT_EQ(dm::nn::with_net_spec(classifier), classifier);
  EXPECT_THROW(dm::nn::net_spec_of(classifier), dm::Error);
}

}  // namespace
