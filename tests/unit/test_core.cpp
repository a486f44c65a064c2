// Tests of dm/core, dm/cli, dm/io, dm/model: devices, seeding, atomic files,
// the ε ↔ score conversion of the model seam.
#include <gtest/gtest.h>

#include "test_dirs.hpp"

#include <filesystem>
#include <fstream>

#include "dm/app/cli.hpp"
#include "dm/base/core.hpp"
#include "dm/base/io.hpp"
#include "dm/base/progress.hpp"
#include "dm/base/rng.hpp"
#include "dm/diffusion/model.hpp"
#include "dm/diffusion/param.hpp"
#include "dm/diffusion/process.hpp"

namespace fs = std::filesystem;

namespace {
using dm_test::fresh_dir;
}  // namespace

TEST(Core, DeviceChoice) {
  EXPECT_EQ(dm::choose_device("cpu"), torch::Device(torch::kCPU));
  EXPECT_THROW(dm::choose_device("tpu"), dm::Error);
  if (!torch::cuda::is_available()) {
    EXPECT_EQ(dm::choose_device("auto"), torch::Device(torch::kCPU));
    try {
      dm::choose_device("cuda");
      FAIL() << "cuda without a GPU must throw";
    } catch (const dm::Error& e) {
      EXPECT_NE(std::string(e.hint()).find("--device cpu"), std::string::npos);
    }
  }
}

TEST(Core, SeedingIsReproducible) {
  dm::seed_everything(123);
  auto a = torch::randn({5});
  dm::seed_everything(123);
  auto b = torch::randn({5});
  dm::seed_everything(124);
  auto c = torch::randn({5});
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
}

TEST(Core, EnsureWritableDir) {
  auto dir = fresh_dir("writable");
  EXPECT_NO_THROW(dm::ensure_writable_dir(dir / "a" / "b"));
  EXPECT_TRUE(fs::is_directory(dir / "a" / "b"));
  // A path below a regular file can never be created.
  std::ofstream(dir / "file") << "x";
  EXPECT_THROW(dm::ensure_writable_dir(dir / "file" / "sub"), dm::Error);
  fs::remove_all(dir);
}

TEST(Io, WriteFileAtomicReplacesWholeFile) {
  auto dir = fresh_dir("atomic");
  auto path = dir / "m.json";
  dm::write_file_atomic(path, "first version, longer\n");
  dm::write_file_atomic(path, "second\n");
  std::ifstream f(path);
  std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(s, "second\n");
  // No temporary file is left behind.
  int files = 0;
  for (auto& e : fs::directory_iterator(dir)) files += e.is_regular_file();
  EXPECT_EQ(files, 1);
  fs::remove_all(dir);
}

TEST(Model, ScoreEpsRoundTrip) {
  auto gen = dm::make_generator(0);
  auto eps = dm::randn({4, 3}, gen, dm::f64());
  auto x = dm::randn({4, 3}, gen, dm::f64());
  auto std = torch::tensor({0.1, 0.5, 1.0, 2.0}, torch::kFloat64);
  auto s = dm::per_row(std, eps);
  auto a = torch::ones_like(s);
  auto score = dm::convert(eps, dm::Prediction::eps, dm::Prediction::score, x, a, s);
  // score = −ε/s row by row
  for (int i = 0; i < 4; ++i)
    EXPECT_TRUE(torch::allclose(score[i], -eps[i] / std[i].item<double>()));
  EXPECT_TRUE(torch::allclose(
      dm::convert(score, dm::Prediction::score, dm::Prediction::eps, x, a, s), eps));
}

TEST(Model, PredictAsConvertsEpsModels) {
  struct ConstEps : dm::Model {
    dm::Prediction prediction() const override { return dm::Prediction::eps; }
    torch::Tensor predict(const torch::Tensor& x, const torch::Tensor&,
                          const dm::Condition&) override {
      return torch::ones_like(x);
    }
  } model;
  auto x = torch::zeros({2, 2}, torch::kFloat64);
  auto t = torch::tensor({1.0, 2.0}, torch::kFloat64);
  // An ε-model has no time-free score.
  EXPECT_THROW(dm::timeless_score(model, x), dm::Error);
  // With a process whose noise scale is s(t) = 2t: score = −ε/s.
  dm::FunctionProcess process("s = 2t", 0.0, 2.0, [](double tt) {
    return dm::Coefficients{1.0, 2.0 * tt};
  });
  auto s = dm::predict_as(dm::Prediction::score, model, process, x, t);
  EXPECT_TRUE(torch::allclose(s, torch::tensor({{-0.5, -0.5}, {-0.25, -0.25}}, torch::kFloat64)));
}

TEST(Progress, PlainModeCompletes) {
  dm::Progress::set_plain(true);
  testing::internal::CaptureStdout();
  {
    dm::Progress bar("work", 20);
    for (int i = 0; i < 20; ++i) bar.tick(1, "loss 0.5");
  }
  auto out = testing::internal::GetCapturedStdout();
  EXPECT_NE(out.find("work 100%"), std::string::npos) << out;
  EXPECT_NE(out.find("loss 0.5"), std::string::npos) << out;
  EXPECT_EQ(out.find('\r'), std::string::npos) << "plain mode must not redraw in place";
}
