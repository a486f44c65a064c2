// tests/unit/test_train.cpp — the shared training loop (dm/nn/train.hpp) on a
// problem with a known answer: linear regression y = W x + b with noiseless
// targets, where the loss must go to ~0 and the weights to W, b.
//
//   * warmup schedule values; config differences are named;
//   * training converges; the loss history is recorded every log_every steps;
//   * resume: 30 steps + 30 resumed steps give bit-identical weights to 60
//     steps straight (model, Adam state and step all round-trip);
//   * checkpoints: truncated → clear error; another configuration → refused,
//     naming the field; EMA weights are what load_weights() reads by default;
//   * a NaN loss stops training with a clear error and leaves the last
//     checkpoint byte-for-byte unchanged; Ctrl-C (SIGINT) saves and stops.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <csignal>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>

#include "dm/app/cli.hpp"
#include "dm/app/image_chapter.hpp"
#include "dm/app/metrics_file.hpp"
#include "dm/diffusion/schedule.hpp"
#include "dm/base/core.hpp"
#include "dm/base/rng.hpp"
#include "dm/data/fashion.hpp"
#include "dm/methods/ddpm.hpp"
#include "dm/nn/train.hpp"
#include "test_dirs.hpp"

namespace fs = std::filesystem;
using dm::train::TrainConfig;
using dm::train::Trainer;

namespace {

const torch::Tensor& true_w() {
  static const auto w = torch::tensor({{1.5, -2.0, 0.5}});
  return w;
}

struct Regression {
  std::shared_ptr<torch::nn::LinearImpl> net;
  nlohmann::json config = {{"kind", "linear"}, {"in", 3}, {"out", 1}};
  explicit Regression(uint64_t seed = 0) {
    torch::manual_seed(seed);
    net = std::make_shared<torch::nn::LinearImpl>(3, 1);
  }
  // The batch depends only on the step, so two runs see the same data.
  torch::Tensor loss(int64_t step) const {
    auto gen = at::detail::createCPUGenerator(1000 + step);
    auto x = at::randn({32, 3}, gen);
    auto y = x.mm(true_w().t()) + 0.25;
    return (net->forward(x) - y).pow(2).mean();
  }
};

TrainConfig small_config(int64_t steps) {
  TrainConfig c;
  c.steps = steps;
  c.lr = 0.05;
  c.warmup = 5;
  c.ema_decay = 0.9;
  c.checkpoint_every = 10;
  c.log_every = 10;
  return c;
}

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool same_weights(torch::nn::Module& a, torch::nn::Module& b) {
  auto pa = a.parameters(), pb = b.parameters();
  for (size_t i = 0; i < pa.size(); ++i)
    if (!torch::equal(pa[i], pb[i])) return false;
  return true;
}

// A chapter parsed from `--quick --out <out> --threads 1`, as a chapter's main makes it.
std::unique_ptr<dm::Chapter> quick_chapter(const std::string& out, const std::string& what) {
  std::vector<std::string> args = {"test", "--quick", "--out", out, "--threads", "1"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  auto ch = std::make_unique<dm::Chapter>("00_test", what);
  ch->parse(int(argv.size()), argv.data());
  return ch;
}

// A tiny DDPM U-Net (base 8, one resolution) as an image chapter describes its model.
dm::app::ImageModel tiny_image_model() {
  dm::app::ImageModel m;
  m.config.base_channels = 8;
  m.config.channel_mults = {1};
  m.config.attention_resolutions = {};
  m.config.groups = 4;
  m.description = dm::nn::to_json(m.config);
  m.spec = dm::nn::NetSpec::ddpm();
  m.process = std::make_shared<dm::schedule::Schedule>(dm::schedule::linear(100));
  m.export_name = "w.pt";
  return m;
}

}  // namespace

TEST(Train, WarmupIsLinearThenConstant) {
  TrainConfig c;
  c.lr = 1e-3;
  c.warmup = 100;
  EXPECT_DOUBLE_EQ(dm::train::learning_rate(c, 1), 1e-5);
  EXPECT_DOUBLE_EQ(dm::train::learning_rate(c, 50), 5e-4);
  EXPECT_DOUBLE_EQ(dm::train::learning_rate(c, 100), 1e-3);
  EXPECT_DOUBLE_EQ(dm::train::learning_rate(c, 5000), 1e-3);
  c.warmup = 0;
  EXPECT_DOUBLE_EQ(dm::train::learning_rate(c, 1), 1e-3);
}

TEST(Train, ConfigDifferencesNameTheFields) {
  nlohmann::json a = {{"base", 32}, {"mults", {1, 2}}},
                 b = {{"base", 64}, {"mults", {1, 2}}, {"extra", 1}};
  const auto d = dm::train::config_differences(a, b);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_EQ(d[0], "base: 32 vs 64");
  EXPECT_EQ(d[1], "extra: (absent) vs 1");
  EXPECT_TRUE(dm::train::config_differences(a, a).empty());
}

TEST(Train, LinearRegressionConverges) {
  const auto dir = dm_test::fresh_dir("train_converge");
  Regression r;
  Trainer trainer(r.net, r.config, small_config(300), torch::kCPU);
  std::vector<int64_t> logged;
  const auto res = trainer.run([&](int64_t s) { return r.loss(s); }, dir / "ckpt.pt", false,
                               [&](int64_t step, double) { logged.push_back(step); });
  EXPECT_EQ(res.step, 300);
  ASSERT_EQ(res.losses.size(), 30u);
  EXPECT_EQ(logged.front(), 10);
  EXPECT_EQ(logged.back(), 300);
  EXPECT_LT(res.losses.back(), 1e-4 * res.losses.front());
  EXPECT_TRUE(torch::allclose(r.net->weight, true_w(), 1e-3, 1e-3)) << r.net->weight;
  EXPECT_NEAR(r.net->bias.item<double>(), 0.25, 1e-3);
  EXPECT_TRUE(fs::exists(dir / "ckpt.pt"));
  EXPECT_FALSE(fs::exists(dir / "ckpt.pt.tmp"));
  const auto info = dm::train::read_checkpoint_info(dir / "ckpt.pt");
  EXPECT_EQ(info["step"], 300);
  EXPECT_EQ(info["model"], r.config);
  EXPECT_EQ(info["train"]["lr"], 0.05);
  fs::remove_all(dir);
}

// Adam's moments, the step counter and the weights all come back from the
// checkpoint: the resumed run is the straight run, bit for bit.
TEST(Train, ResumeIsBitIdenticalToAStraightRun) {
  const auto dir = dm_test::fresh_dir("train_resume");
  Regression straight(7);
  Trainer(straight.net, straight.config, small_config(60), torch::kCPU)
      .run([&](int64_t s) { return straight.loss(s); }, dir / "straight.pt");

  Regression first(7);
  Trainer(first.net, first.config, small_config(30), torch::kCPU)
      .run([&](int64_t s) { return first.loss(s); }, dir / "split.pt");
  Regression second(99);  // different initial weights: all must come from the checkpoint
  Trainer resumed(second.net, second.config, small_config(60), torch::kCPU);
  const auto res = resumed.run([&](int64_t s) { return second.loss(s); }, dir / "split.pt", true);
  EXPECT_EQ(res.resumed_from, 30);
  EXPECT_EQ(res.step, 60);
  EXPECT_EQ(res.losses.size(), 6u) << "the loss history continues across the resume";
  EXPECT_TRUE(same_weights(*straight.net, *second.net));
  fs::remove_all(dir);
}

TEST(Train, TruncatedCheckpointIsAClearError) {
  const auto dir = dm_test::fresh_dir("train_truncated");
  Regression r;
  Trainer trainer(r.net, r.config, small_config(10), torch::kCPU);
  trainer.run([&](int64_t s) { return r.loss(s); }, dir / "c.pt");
  const auto bytes = read_bytes(dir / "c.pt");
  std::ofstream(dir / "c.pt", std::ios::binary) << bytes.substr(0, bytes.size() / 2);
  try {
    trainer.load(dir / "c.pt");
    ADD_FAILURE() << "a truncated checkpoint must not load";
  } catch (const dm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("truncated or corrupt"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("c.pt"), std::string::npos) << e.what();
  }
  EXPECT_THROW(dm::train::read_checkpoint_info(dir / "missing.pt"), dm::Error);
  fs::remove_all(dir);
}

TEST(Train, CheckpointOfAnotherConfigurationIsRefused) {
  const auto dir = dm_test::fresh_dir("train_config");
  Regression r;
  Trainer(r.net, r.config, small_config(10), torch::kCPU)
      .run([&](int64_t s) { return r.loss(s); }, dir / "c.pt");
  Regression other;
  other.config["in"] = 4;
  Trainer trainer(other.net, other.config, small_config(10), torch::kCPU);
  try {
    trainer.load(dir / "c.pt");
    ADD_FAILURE() << "another configuration must be refused";
  } catch (const dm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("different model"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("in: 4 vs 3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(dm::train::load_weights(*other.net, other.config, dir / "c.pt"), dm::Error);
  fs::remove_all(dir);
}

// With decay 0.9 the EMA lags the trained weights: load_weights() reads the
// EMA by default and the raw weights on request.
TEST(Train, LoadWeightsReadsTheEmaByDefault) {
  const auto dir = dm_test::fresh_dir("train_ema");
  Regression r;
  Trainer trainer(r.net, r.config, small_config(20), torch::kCPU);
  trainer.run([&](int64_t s) { return r.loss(s); }, dir / "c.pt");
  Regression ema_copy(1), raw_copy(2), expected(3);
  trainer.ema().copy_to(*expected.net);
  dm::train::load_weights(*ema_copy.net, r.config, dir / "c.pt");
  dm::train::load_weights(*raw_copy.net, r.config, dir / "c.pt", false);
  EXPECT_TRUE(same_weights(*ema_copy.net, *expected.net));
  EXPECT_TRUE(same_weights(*raw_copy.net, *r.net));
  EXPECT_FALSE(same_weights(*ema_copy.net, *raw_copy.net));
  fs::remove_all(dir);
}

// The EMA warm-up (decay min(d, (1 + n)/(10 + n)) at update n): with d = 0.999
// and 200 steps, a plain EMA still holds 0.999²⁰⁰ ≈ 82% of the random
// initialisation, while the warmed-up one averages over the last few steps
// and lands next to the trained weights. Both are read back from the
// checkpoint, so a resumed run keeps the warm-up (its update count is stored).
TEST(Train, EmaWarmupFollowsTheWeightsEarly) {
  const auto dir = dm_test::fresh_dir("train_ema_warmup");
  auto ema_loss = [&](bool warmup) {
    Regression r;
    auto c = small_config(200);
    c.ema_decay = 0.999;
    c.ema_warmup = warmup;
    Trainer trainer(r.net, r.config, c, torch::kCPU);
    trainer.run([&](int64_t s) { return r.loss(s); }, dir / "c.pt");
    const double raw = r.loss(99999).item<double>();
    Regression ema(1);
    dm::train::load_weights(*ema.net, r.config, dir / "c.pt");
    return std::pair{raw, ema.loss(99999).item<double>()};
  };
  const auto [raw_w, with_warmup] = ema_loss(true);
  const auto [raw_p, plain] = ema_loss(false);
  EXPECT_DOUBLE_EQ(raw_w, raw_p);  // the warm-up changes the average, not the training
  EXPECT_LT(raw_w, 0.01);          // trained: the loss of a random init is ≈ 5
  std::printf("  loss: raw %.2e, EMA with warm-up %.2e, plain EMA %.2e\n", raw_w, with_warmup,
              plain);
  EXPECT_GT(plain, 1.0);  // the plain EMA is still near the init
  EXPECT_LT(with_warmup, 0.1 * plain);
  fs::remove_all(dir);
}

TEST(Train, NanLossStopsAndKeepsTheLastCheckpoint) {
  const auto dir = dm_test::fresh_dir("train_nan");
  Regression r;
  Trainer trainer(r.net, r.config, small_config(50), torch::kCPU);
  const auto ckpt = dir / "c.pt";
  std::string saved;
  try {
    trainer.run(
        [&](int64_t s) {
          if (s == 15) saved = read_bytes(ckpt);  // the step-10 checkpoint
          return s == 15 ? r.loss(s) * std::nan("") : r.loss(s);
        },
        ckpt);
    ADD_FAILURE() << "a NaN loss must stop training";
  } catch (const dm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("NaN at step 15"), std::string::npos) << e.what();
    EXPECT_NE(e.hint().find("c.pt"), std::string::npos) << e.hint();
  }
  EXPECT_FALSE(saved.empty());
  EXPECT_EQ(read_bytes(ckpt), saved) << "the last good checkpoint must be untouched";
  EXPECT_EQ(dm::train::read_checkpoint_info(ckpt)["step"], 10);
  fs::remove_all(dir);
}

TEST(Train, CtrlCSavesAndStops) {
  const auto dir = dm_test::fresh_dir("train_sigint");
  Regression r;
  Trainer trainer(r.net, r.config, small_config(50), torch::kCPU);
  EXPECT_THROW(trainer.run(
                   [&](int64_t s) {
                     if (s == 13) std::raise(SIGINT);
                     return r.loss(s);
                   },
                   dir / "c.pt"),
               dm::train::Interrupted);
  EXPECT_EQ(dm::train::read_checkpoint_info(dir / "c.pt")["step"], 13);
  // The handler is removed after the run: SIGINT's previous disposition is back.
  auto previous = std::signal(SIGINT, SIG_DFL);
  EXPECT_EQ(previous, SIG_DFL);
  fs::remove_all(dir);
}

// The shipped format: EMA weights only, float16 or float32, read back by
// load_weights() like a full checkpoint (and refused for another configuration).
TEST(Train, ExportedWeightsLoadBack) {
  const auto dir = dm_test::fresh_dir("train_export");
  Regression r;
  Trainer trainer(r.net, r.config, small_config(20), torch::kCPU);
  trainer.run([&](int64_t s) { return r.loss(s); }, dir / "c.pt");
  dm::train::export_weights(*r.net, r.config, dir / "w16.pt", {{"steps", 20}});
  dm::train::export_weights(*r.net, r.config, dir / "w32.pt", {{"steps", 20}}, false);
  Regression half(5), full(6);
  dm::train::load_weights(*half.net, r.config, dir / "w16.pt");
  dm::train::load_weights(*full.net, r.config, dir / "w32.pt");
  EXPECT_TRUE(same_weights(*full.net, *r.net));
  EXPECT_FALSE(same_weights(*half.net, *r.net)) << "float16 rounds";
  EXPECT_TRUE(torch::allclose(half.net->weight, r.net->weight, 1e-3, 1e-3));
  EXPECT_EQ(half.net->weight.scalar_type(), torch::kFloat32);
  EXPECT_EQ(dm::train::read_checkpoint_info(dir / "w16.pt")["manifest"]["steps"], 20);
  Regression other;
  other.config["out"] = 2;
  EXPECT_THROW(dm::train::load_weights(*other.net, other.config, dir / "w16.pt"), dm::Error);
  fs::remove_all(dir);
}

// The image chapters' two ends of a shipped model: finish_training (after a
// run: metrics, loss figure, EMA weights into the net, float16 export) and
// load_shipped (weights back, the manifest's loss curve drawn).
TEST(Train, FinishTrainingExportsWhatLoadShippedReadsBack) {
  const auto dir = dm_test::fresh_dir("train_finish");
  const std::string out = (dir / "run").string();
  std::vector<std::string> args = {"test", "--out", out, "--threads", "1"};
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  dm::Chapter ch("00_test", "finish_training test");
  ch.parse(int(argv.size()), argv.data());
  dm::MetricsFile metrics(ch);
  Regression r;
  Trainer trainer(r.net, r.config, small_config(20), torch::kCPU);
  const auto result = trainer.run([&](int64_t s) { return r.loss(s); }, dir / "c.pt");
  const auto manifest = dm::app::finish_training(trainer, *r.net, r.config, result, 32, ch, metrics,
                                                 "w.pt", "mean squared error");
  // The net now holds the EMA weights, as load_weights reads them from the checkpoint.
  Regression ema(7);
  dm::train::load_weights(*ema.net, r.config, dir / "c.pt");
  EXPECT_TRUE(same_weights(*ema.net, *r.net));
  EXPECT_EQ(metrics["training"]["steps"], 20);
  EXPECT_EQ(manifest["loss_steps"].size(), 2u);  // logged every 10 steps
  EXPECT_TRUE(fs::exists(ch.out("loss.svg")));
  ASSERT_TRUE(fs::exists(ch.out("w.pt")));
  fs::remove(ch.out("loss.svg"));

  Regression back(8);
  const auto read =
      dm::app::load_shipped(*back.net, r.config, ch.out("w.pt"), ch, metrics, "mean squared error");
  EXPECT_TRUE(torch::allclose(back.net->weight, r.net->weight, 1e-3, 1e-3));  // float16 in the file
  EXPECT_EQ(read["steps"], 20);
  EXPECT_TRUE(fs::exists(ch.out("loss.svg"))) << "the manifest's loss curve is drawn again";
  EXPECT_FALSE(back.net->is_training());
  fs::remove_all(dir);
}

// ---------------------------------------------------------------------------
// The pieces of one step, and the loss read back less often than every step
// (what a GPU does, here forced on the CPU).

TEST(Train, ClipGradNormMatchesTorchAndStaysOnTheDevice) {
  for (double max_norm : {0.1, 1e6}) {  // clipped, and left alone
    Regression a(3), b(3);
    a.loss(1).backward();
    b.loss(1).backward();
    const double expected = torch::nn::utils::clip_grad_norm_(a.net->parameters(), max_norm);
    const auto norm = dm::train::clip_grad_norm(b.net->parameters(), max_norm);
    EXPECT_EQ(norm.dim(), 0);
    EXPECT_NEAR(norm.item<double>(), expected, 1e-6 * expected);
    auto pa = a.net->parameters(), pb = b.net->parameters();
    for (size_t i = 0; i < pa.size(); ++i)
      EXPECT_TRUE(torch::allclose(pa[i].grad(), pb[i].grad(), 1e-6, 1e-9))
          << "max_norm " << max_norm;
  }
}

TEST(Train, ClearGradsLeavesNoGradient) {
  Regression r;
  r.loss(1).backward();
  ASSERT_TRUE(r.net->weight.grad().defined());
  dm::train::clear_grads(r.net->parameters());
  for (const auto& p : r.net->parameters()) EXPECT_FALSE(p.grad().defined());
}

TEST(Train, TrainStepIsOneStepOfRun) {
  const auto dir = dm_test::fresh_dir("train_step");
  Regression a, b;
  Trainer ta(a.net, a.config, small_config(12), torch::kCPU);
  ta.run([&](int64_t s) { return a.loss(s); }, dir / "a.pt");
  Trainer tb(b.net, b.config, small_config(12), torch::kCPU);
  for (int i = 0; i < 12; ++i) tb.train_step([&](int64_t s) { return b.loss(s); });
  EXPECT_EQ(tb.step(), 12);
  EXPECT_TRUE(same_weights(*a.net, *b.net));
  fs::remove_all(dir);
}

TEST(Train, LossesReadPerWindowGiveTheSameHistory) {
  const auto dir = dm_test::fresh_dir("train_read_every");
  Regression a, b;
  auto every = small_config(30), deferred = small_config(30);
  deferred.read_loss_every = 7;  // not a divisor of log_every: reads also at the log steps
  Trainer ta(a.net, a.config, every, torch::kCPU), tb(b.net, b.config, deferred, torch::kCPU);
  const auto ra = ta.run([&](int64_t s) { return a.loss(s); }, dir / "a.pt");
  const auto rb = tb.run([&](int64_t s) { return b.loss(s); }, dir / "b.pt");
  ASSERT_EQ(ra.losses.size(), 3u);
  ASSERT_EQ(rb.losses.size(), ra.losses.size());
  for (size_t i = 0; i < ra.losses.size(); ++i)
    EXPECT_NEAR(rb.losses[i], ra.losses[i], 1e-12 * ra.losses[i]) << "window " << i;
  fs::remove_all(dir);
}

TEST(Train, DeferredReadsStillStopANanBeforeTheNextCheckpoint) {
  const auto dir = dm_test::fresh_dir("train_nan_deferred");
  Regression r;
  auto c = small_config(50);
  c.read_loss_every = 10;  // as on a GPU: the NaN of step 15 is seen at step 20
  Trainer trainer(r.net, r.config, c, torch::kCPU);
  const auto ckpt = dir / "c.pt";
  std::string saved;
  try {
    trainer.run(
        [&](int64_t s) {
          if (s == 15) saved = read_bytes(ckpt);
          return s == 15 ? r.loss(s) * std::nan("") : r.loss(s);
        },
        ckpt);
    ADD_FAILURE() << "a NaN loss must stop training";
  } catch (const dm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("NaN between steps 11 and 20"), std::string::npos)
        << e.what();
  }
  EXPECT_EQ(read_bytes(ckpt), saved) << "the step-20 checkpoint must not be written";
  EXPECT_EQ(dm::train::read_checkpoint_info(ckpt)["step"], 10);
  fs::remove_all(dir);
}

TEST(Train, Bf16AndChannelsLastAreCudaOnlyAndIgnoredOnTheCpu) {
  const auto dir = dm_test::fresh_dir("train_bf16_cpu");
  Regression a, b;
  auto plain = small_config(10), mixed = small_config(10);
  mixed.bf16 = mixed.channels_last = true;
  Trainer ta(a.net, a.config, plain, torch::kCPU), tb(b.net, b.config, mixed, torch::kCPU);
  ta.run([&](int64_t s) { return a.loss(s); }, dir / "a.pt");
  tb.run([&](int64_t s) { return b.loss(s); }, dir / "b.pt");
  EXPECT_TRUE(same_weights(*a.net, *b.net)) << "on the CPU the options change nothing";
  EXPECT_EQ(dm::train::to_json(mixed)["bf16"], true);
  fs::remove_all(dir);
}

TEST(Train, ToChannelsLastKeepsTheValues) {
  torch::manual_seed(0);
  torch::nn::Conv2d conv(torch::nn::Conv2dOptions(3, 4, 3));
  const auto before = conv->weight.clone();
  dm::train::to_channels_last(*conv);
  EXPECT_TRUE(conv->weight.is_contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_TRUE(torch::equal(conv->weight, before));
  EXPECT_TRUE(conv->bias.is_contiguous());  // 1-D: untouched
}

TEST(Train, Bf16AutocastAndChannelsLastTrainOnCuda) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  const auto dir = dm_test::fresh_dir("train_bf16_cuda");
  torch::manual_seed(0);
  auto conv = std::make_shared<torch::nn::Conv2dImpl>(torch::nn::Conv2dOptions(1, 1, 3).padding(1));
  auto c = small_config(200);
  c.bf16 = c.channels_last = true;
  Trainer trainer(conv, {{"kind", "conv"}}, c, torch::kCUDA);
  EXPECT_TRUE(conv->weight.is_contiguous(at::MemoryFormat::ChannelsLast));
  // Learn a 3×3 blur: the exact answer is reachable, so the loss must fall far.
  const auto kernel = torch::full({1, 1, 3, 3}, 1.0 / 9.0, torch::kCUDA);
  auto loss = [&](int64_t step) {
    auto gen = at::detail::createCPUGenerator(step);
    const auto x = at::randn({16, 1, 16, 16}, gen).to(torch::kCUDA);
    const auto y = torch::conv2d(x, kernel, {}, 1, 1);
    const auto out = conv->forward(x);
    EXPECT_EQ(out.scalar_type(), torch::kBFloat16) << "the forward runs under bf16 autocast";
    return (out.to(torch::kFloat32) - y).pow(2).mean();
  };
  const auto r = trainer.run(loss, dir / "c.pt");
  EXPECT_LT(r.losses.back(), 0.05 * r.losses.front());
  EXPECT_EQ(conv->weight.scalar_type(), torch::kFloat32) << "the weights stay float32";
  fs::remove_all(dir);
}

// --init: an image chapter trains further from saved weights. With a loss
// whose gradient is zero, Adam does not move the weights, so what the run
// ends with is exactly what it started from — the file's weights, not a fresh
// initialisation; the manifest records the file and the steps before.
TEST(Train, LoadOrTrainStartsFromInitWeights) {
  const auto dir = dm_test::fresh_dir("train_init");
  const auto chapter = quick_chapter((dir / "run").string(), "--init test");
  const auto& ch = *chapter;
  dm::MetricsFile metrics(ch);

  const auto m = tiny_image_model();
  torch::manual_seed(11);
  dm::nn::UNet saved(m.config);
  {
    torch::NoGradGuard no_grad;  // a last layer that is not zero, so the weights are distinct
    for (auto& p : saved->parameters()) p.normal_(0, 0.05);
  }
  dm::train::export_weights(*saved, m.description, dir / "init.pt", {{"steps", 7}}, false);

  dm::data::Dataset data{torch::zeros({8, 1, 32, 32}), torch::zeros({8}, torch::kLong)};
  dm::app::TrainingFlags flags;
  flags.train = true;
  flags.steps = 3;
  flags.init = dir / "init.pt";
  auto t = dm::app::image_training(flags, 3, 4);
  t.loss = [](dm::Model& model, const torch::Tensor& x0) {
    const auto t_ = torch::ones({x0.size(0)}, x0.options());
    return model.predict(x0, t_).sum() * 0.0 + 1.0;  // gradient zero: the weights stay put
  };
  const auto trained = dm::app::load_or_train(ch, m, t, data, metrics);
  // The same up to the EMA's rounding (d·θ + (1 − d)·θ in float32).
  const auto a = trained.net->parameters(), b = saved->parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::allclose(a[i], b[i], 1e-5, 1e-7));
  EXPECT_EQ(trained.manifest["initialized_from"], "init.pt");
  EXPECT_EQ(trained.manifest["steps_before"], 7);
  EXPECT_EQ(trained.manifest["steps_total"], 10);
  EXPECT_EQ(metrics["training"]["steps_total"], 10);

  t.init = dir / "missing.pt";
  EXPECT_THROW(dm::app::load_or_train(ch, m, t, data, metrics), dm::Error);
  fs::remove_all(dir);
}

// ---------------------------------------------------------------------------
// Exact resume of an image chapter's training (issue: "resume is not exact").
// load_or_train with chapter 04's loss, which draws t and ε from the default
// generator: 6 steps straight, against 3 steps stopped by Ctrl-C and resumed
// to 6 in a process whose generator was seeded differently. The checkpoint
// and the data order alone must carry the run: the weights, the EMA, Adam's
// state and the loss history come out bit for bit the same. Without the
// per-step reseeding (TrainConfig::reseed_each_step) the same split diverges:
// the control at the end shows the comparison can fail.
namespace {
struct TinyImageRun {
  fs::path dir;
  dm::app::ImageModel m;
  dm::data::Dataset data;
  explicit TinyImageRun(const fs::path& d) : dir(d), m(tiny_image_model()) {
    auto gen = dm::make_generator(5);
    data = {dm::randn({16, 1, 32, 32}, gen, torch::kFloat32).clamp(-1, 1),
            torch::zeros({16}, torch::kLong)};
  }
  // One run of `steps` into <dir>/<name>; `stop_at` > 0 raises SIGINT in that step.
  dm::app::TrainedImageModel train(const std::string& name, int64_t steps, bool resume,
                                   int64_t stop_at = 0) {
    const auto chapter = quick_chapter((dir / name).string(), "resume test");
    const auto& ch = *chapter;
    dm::MetricsFile metrics(ch);
    dm::app::TrainingFlags flags;
    flags.train = true;
    flags.resume = resume;
    flags.steps = steps;
    auto t = dm::app::image_training(flags, steps, 4);
    const auto sched = dm::schedule::linear(100);
    auto gen = dm::default_generator();
    auto calls = std::make_shared<int64_t>(0);
    t.loss = [sched, gen, stop_at, calls](dm::Model& model, const torch::Tensor& x0) mutable {
      if (stop_at > 0 && ++*calls == stop_at) std::raise(SIGINT);
      return dm::ddpm::loss_eps(model, sched, x0, gen);
    };
    return dm::app::load_or_train(ch, m, t, data, metrics);
  }
};
}  // namespace

TEST(Train, InterruptedImageTrainingResumesBitForBit) {
  const auto dir = dm_test::fresh_dir("train_exact_resume");
  TinyImageRun run(dir);
  torch::manual_seed(0);
  const auto straight = run.train("straight", 6, false);

  torch::manual_seed(0);
  EXPECT_THROW(run.train("split", 6, false, /*stop_at=*/3), dm::train::Interrupted);
  EXPECT_EQ(dm::train::read_checkpoint_info(dir / "split" / "unet_checkpoint.pt")["step"], 3);
  torch::manual_seed(12345);  // another process, another state of the generator
  const auto resumed = run.train("split", 6, true);

  const auto a = straight.net->parameters(), b = resumed.net->parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "tensor " << i;
  EXPECT_EQ(straight.manifest["losses"], resumed.manifest["losses"]);
  // The raw weights and Adam's state too: the two training checkpoints' checksums agree.
  const auto ca = dm::train::read_checkpoint_info(dir / "straight" / "unet_checkpoint.pt"),
             cb = dm::train::read_checkpoint_info(dir / "split" / "unet_checkpoint.pt");
  EXPECT_EQ(ca["checksum"], cb["checksum"]);
  EXPECT_EQ(ca["loss_window"], cb["loss_window"]);

  // Control: the same split with the generator left alone between steps.
  auto no_reseed = [&](const std::string& name, int64_t stop, uint64_t seed_at_resume) {
    Regression r(7);
    const auto ckpt = dir / (name + ".pt");
    auto cfg = small_config(20);
    auto loss = [&](int64_t) {  // draws from the global generator, as the image losses do
      auto x = torch::randn({32, 3});
      return (r.net->forward(x) - x.mm(true_w().t())).pow(2).mean();
    };
    torch::manual_seed(0);
    if (stop > 0) {
      cfg.steps = stop;
      Trainer(r.net, r.config, cfg, torch::kCPU).run(loss, ckpt);
      cfg.steps = 20;
      torch::manual_seed(seed_at_resume);
    }
    Trainer(r.net, r.config, cfg, torch::kCPU).run(loss, ckpt, true);
    return r.net->weight.clone();
  };
  EXPECT_FALSE(torch::equal(no_reseed("plain_straight", 0, 0), no_reseed("plain_split", 10, 99)))
      << "without reseeding, a resumed run must draw differently (else the check above proves "
         "nothing)";
  fs::remove_all(dir);
}

// Interrupt messages say what a rerun will do: a checkpointed run continues
// from the step it stopped at; a model trained without a checkpoint (the 2D
// toys, seconds to train) is not saved, and the message says it is trained
// again — no "--resume" that would silently start from zero.
TEST(Train, InterruptMessagesSayWhatARerunDoes) {
  const auto dir = dm_test::fresh_dir("train_sigint_messages");
  auto message = [&](const fs::path& ckpt) {
    Regression r;
    Trainer trainer(r.net, r.config, small_config(50), torch::kCPU);
    try {
      trainer.run(
          [&](int64_t s) {
            if (s == 7) std::raise(SIGINT);
            return r.loss(s);
          },
          ckpt, false, {}, "the 2D MLP");
    } catch (const dm::train::Interrupted& e) {
      return std::string(e.what());
    }
    return std::string("not interrupted");
  };
  const auto saved = message(dir / "c.pt");
  EXPECT_NE(saved.find("--resume to continue from step 7"), std::string::npos) << saved;
  const auto unsaved = message({});
  EXPECT_NE(unsaved.find("not saved"), std::string::npos) << unsaved;
  EXPECT_NE(unsaved.find("trains it again"), std::string::npos) << unsaved;
  EXPECT_EQ(unsaved.find("--resume"), std::string::npos) << unsaved;
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1)
      << "only the checkpointed run wrote a file";
  fs::remove_all(dir);
}
