// tests/unit/test_quality.cpp — the image-quality measurements (dm/quality.hpp).
//
//   * the Fréchet distance between Gaussians against closed forms: 1D
//     (μ_a − μ_b)² + (σ_a − σ_b)²; commuting covariances Σ(√a_i − √b_i)²; a
//     rotated (non-commuting) pair against the general formula evaluated with a
//     different square root (Denman–Beavers iteration on Σ_a Σ_b);
//   * from samples it converges to the exact value (error within 4 standard
//     errors measured over repeats), is ~0 for the same law and symmetric;
//   * the classifier: shapes, save/load round trip (same outputs), corrupt file
//     → clear error; training on an easy synthetic task reaches high accuracy;
//     the class histogram counts predictions.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "dm/base/core.hpp"
#include "dm/data/fashion.hpp"
#include "dm/data/metrics.hpp"
#include "dm/data/quality.hpp"
#include "dm/nn/train.hpp"
#include "test_dirs.hpp"

namespace fs = std::filesystem;
namespace q = dm::quality;

namespace {

Eigen::MatrixXd rotation(double angle) {
  Eigen::MatrixXd r(2, 2);
  r << std::cos(angle), -std::sin(angle), std::sin(angle), std::cos(angle);
  return r;
}

// Square root of a matrix with positive real eigenvalues by the Denman–Beavers
// iteration (independent of the eigendecomposition route in the library).
Eigen::MatrixXd sqrtm_db(const Eigen::MatrixXd& a) {
  Eigen::MatrixXd y = a, z = Eigen::MatrixXd::Identity(a.rows(), a.cols());
  for (int i = 0; i < 60; ++i) {
    const Eigen::MatrixXd y_next = 0.5 * (y + z.inverse());
    z = 0.5 * (z + y.inverse());
    y = y_next;
  }
  return y;
}

}  // namespace

TEST(Frechet, OneDimensionalClosedForm) {
  Eigen::VectorXd mu_a(1), mu_b(1);
  Eigen::MatrixXd va(1, 1), vb(1, 1);
  mu_a << 0.5;
  mu_b << -1.0;
  va << 4.0;
  vb << 0.25;
  // (0.5 + 1)² + (2 − 0.5)² = 2.25 + 2.25
  EXPECT_NEAR(q::frechet_distance(mu_a, va, mu_b, vb), 4.5, 1e-12);
}

TEST(Frechet, CommutingCovariances) {
  Eigen::VectorXd mu = Eigen::VectorXd::Zero(3);
  Eigen::MatrixXd a = Eigen::Vector3d(1.0, 4.0, 9.0).asDiagonal();
  Eigen::MatrixXd b = Eigen::Vector3d(4.0, 4.0, 1.0).asDiagonal();
  // Σ (√a − √b)² = 1 + 0 + 4
  EXPECT_NEAR(q::frechet_distance(mu, a, mu, b), 5.0, 1e-12);
  EXPECT_NEAR(q::frechet_distance(mu, a, mu, a), 0.0, 1e-12);
}

TEST(Frechet, NonCommutingCovariancesMatchTheGeneralFormula) {
  const Eigen::MatrixXd a =
      rotation(0.3) * Eigen::Vector2d(3.0, 0.2).asDiagonal() * rotation(0.3).transpose();
  const Eigen::MatrixXd b =
      rotation(1.1) * Eigen::Vector2d(0.5, 2.0).asDiagonal() * rotation(1.1).transpose();
  Eigen::VectorXd mu_a(2), mu_b(2);
  mu_a << 1, 2;
  mu_b << -1, 0.5;
  const double expected =
      (mu_a - mu_b).squaredNorm() + a.trace() + b.trace() - 2 * sqrtm_db(a * b).trace();
  EXPECT_NEAR(q::frechet_distance(mu_a, a, mu_b, b), expected, 1e-9);
  EXPECT_NEAR(q::frechet_distance(mu_a, a, mu_b, b), q::frechet_distance(mu_b, b, mu_a, a), 1e-9);
}

TEST(Frechet, SqrtPsdSquaresBack) {
  const Eigen::MatrixXd a =
      rotation(0.7) * Eigen::Vector2d(5.0, 0.0).asDiagonal() * rotation(0.7).transpose();
  const Eigen::MatrixXd r = q::sqrt_psd(a);
  EXPECT_LT((r * r - a).norm(), 1e-12);
  EXPECT_LT((r - r.transpose()).norm(), 1e-14);
}

// Sample estimates: N(0, I) vs N(m, 4I) in F = 4 dimensions; exact
// d² = F·m² + F·(2 − 1)². Over 20 repeats the mean must be within 4 standard
// errors of the exact value, plus the estimator's own positive bias, which is
// O(F/N) (plug-in covariances); we allow 2·F·(1 + 4)/N = 0.01 for it.
TEST(Frechet, FromSamplesConvergesToTheExactValue) {
  torch::manual_seed(5);
  const int64_t n = 4000, F = 4;
  const double m = 0.5, exact = F * m * m + F * 1.0;
  std::vector<double> values;
  for (int r = 0; r < 20; ++r) {
    auto a = torch::randn({n, F}, dm::f64());
    auto b = m + 2.0 * torch::randn({n, F}, dm::f64());
    values.push_back(q::frechet_distance(a, b));
  }
  auto v = torch::tensor(values, dm::f64());
  const double mean = v.mean().item<double>(), se = v.std().item<double>() / std::sqrt(20.0);
  const double bias_bound = 2.0 * F * (1.0 + 4.0) / double(n);
  EXPECT_NEAR(mean, exact, 4 * se + bias_bound) << "se " << se;
  // Same law: close to zero (only the O(F/N) bias), far below the distance above.
  const double same =
      q::frechet_distance(torch::randn({n, F}, dm::f64()), torch::randn({n, F}, dm::f64()));
  EXPECT_LT(same, 0.02);
  EXPECT_GE(same, -1e-12);
}

TEST(Frechet, RejectsMismatchedWidths) {
  EXPECT_THROW(q::frechet_distance(torch::randn({10, 3}), torch::randn({10, 4})), dm::Error);
  EXPECT_THROW(q::frechet_distance(torch::randn({1, 3}), torch::randn({10, 3})), dm::Error);
}

TEST(Classifier, ShapesAndSaveLoadRoundTrip) {
  torch::manual_seed(0);
  q::ClassifierConfig c;
  c.width = 8;
  q::Classifier net(c);
  net->eval();
  auto x = torch::randn({5, 1, 32, 32});
  EXPECT_EQ(net->forward(x).sizes(), (std::vector<int64_t>{5, 10}));
  EXPECT_EQ(q::features(net, x).sizes(), (std::vector<int64_t>{5, 32}));
  EXPECT_THROW(net->forward(torch::randn({5, 3, 32, 32})), dm::Error);

  const auto dir = dm_test::fresh_dir("quality_classifier");
  q::save_classifier(net, dir / "c.pt", {{"test_accuracy", 0.5}});
  auto loaded = q::load_classifier(dir / "c.pt", torch::kCPU);
  EXPECT_EQ(loaded->config(), c);
  EXPECT_TRUE(torch::allclose(loaded->forward(x), net->forward(x)));
  std::ofstream(dir / "bad.pt") << "not a checkpoint";
  EXPECT_THROW(q::load_classifier(dir / "bad.pt", torch::kCPU), dm::Error);
  EXPECT_THROW(q::load_classifier(dir / "missing.pt", torch::kCPU), dm::Error);
  fs::remove_all(dir);
}

// Three classes that differ in where the bright square is: a network that
// learns anything must separate them almost perfectly.
TEST(Classifier, LearnsAnEasySyntheticTask) {
  torch::manual_seed(1);
  const int64_t n = 600;
  auto labels = torch::randint(0, 3, {n}, torch::kLong);
  auto images = -torch::ones({n, 1, 32, 32}) + 0.3 * torch::randn({n, 1, 32, 32});
  for (int64_t i = 0; i < n; ++i) {
    const int64_t k = labels[i].item<int64_t>();
    images[i][0].slice(0, 4 + 8 * k, 12 + 8 * k).slice(1, 10, 22) += 2.0;
  }
  q::ClassifierConfig c;
  c.width = 8;
  c.num_classes = 3;
  q::Classifier net(c);
  q::ClassifierTraining t;
  t.epochs = 3;
  t.batch_size = 50;
  t.lr = 5e-3;
  q::train_classifier(net, images.slice(0, 0, 450), labels.slice(0, 0, 450), t, torch::kCPU);
  EXPECT_GT(q::accuracy(net, images.slice(0, 450), labels.slice(0, 450)), 0.95);
  const auto hist = q::class_histogram(net, images);
  EXPECT_EQ(hist.size(0), 3);
  EXPECT_EQ(hist.sum().item<int64_t>(), n);
}

// ---------------------------------------------------------------------------
// The protocol's pieces on the shipped classifier and real Fashion-MNIST.

TEST(Classifier, FeaturesLeaveTheBatchNormStatisticsAlone) {
  torch::manual_seed(2);
  q::ClassifierConfig c;
  c.width = 8;
  q::Classifier net(c);
  net->train();  // as after training: features() must switch to eval mode itself
  std::vector<torch::Tensor> before;
  for (const auto& b : net->buffers()) before.push_back(b.clone());
  q::features(net, torch::randn({40, 1, 32, 32}) * 3 + 1);  // far from the running statistics
  const auto after = net->buffers();
  ASSERT_EQ(after.size(), before.size());
  for (size_t i = 0; i < after.size(); ++i)
    EXPECT_TRUE(torch::equal(after[i], before[i])) << "buffer " << i << " changed";
}

// Held-out real images score within noise of zero; the same images made
// worse score worse, step by step; dropping modes costs recall.
TEST(QualityLadder, KidAndRecallOrderCorruptedImages) {
  const auto path = dm::train::checkpoints_dir() / "fashion_classifier.pt";
  if (!fs::exists(path)) GTEST_SKIP() << "no shipped classifier at " << path;
  const auto test = dm::data::load_fashion_mnist(dm::data::Split::test, {}, 1000);
  const auto train = dm::data::load_fashion_mnist(dm::data::Split::train, {}, 6000);
  auto classifier = q::load_classifier(path, torch::kCPU);
  const int64_t n = 500;
  const auto ref = test.images.slice(0, 0, n), held_out = test.images.slice(0, n, 2 * n);
  const auto f_ref = q::features(classifier, ref);
  auto score = [&](const torch::Tensor& images) {
    const auto f = q::features(classifier, images);
    return std::make_pair(dm::metrics::kid(f, f_ref, 10), dm::metrics::precision_recall(f_ref, f));
  };
  auto gen = at::detail::createCPUGenerator(5);
  auto noised = [&](double sigma) {
    return (held_out + sigma * at::randn(held_out.sizes(), gen)).clamp(-1, 1);
  };
  const auto [real, real_pr] = score(held_out);
  auto show = [](const char* what, const dm::metrics::Kid& k) {
    std::printf("  ladder: %-22s KID %.5f ± %.5f\n", what, k.value, k.se);
  };
  show("held-out real", real);
  EXPECT_LT(std::abs(real.value), 3 * real.se + 1e-12) << real.value << " ± " << real.se;
  // Noise of growing strength: KID grows, each step beyond both standard errors.
  double last = real.value, last_se = real.se;
  for (double sigma : {0.1, 0.3, 0.6}) {
    const auto k = score(noised(sigma)).first;
    show(("noise σ = " + std::to_string(sigma).substr(0, 3)).c_str(), k);
    EXPECT_GT(k.value - last, 2 * std::hypot(k.se, last_se)) << "noise σ = " << sigma;
    last = k.value;
    last_se = k.se;
  }
  // A 3×3 box blur and a fixed shuffle of the pixels: both far from the data.
  namespace F = torch::nn::functional;
  const auto blurred = F::avg_pool2d(
      held_out, F::AvgPool2dFuncOptions(3).stride(1).padding(1).count_include_pad(false));
  const auto perm = at::randperm(32 * 32, gen);
  const auto shuffled =
      held_out.reshape({n, 1, 32 * 32}).index_select(2, perm).reshape({n, 1, 32, 32});
  const auto blur = score(blurred).first, shuffle = score(shuffled).first;
  show("3×3 blur", blur);
  show("pixels shuffled", shuffle);
  EXPECT_GT(blur.value - real.value, 3 * std::hypot(blur.se, real.se));
  EXPECT_GT(shuffle.value, blur.value);
  // Mode dropping: 500 training images of one class only (T-shirts). What is
  // drawn is real, but most of the data is never drawn: recall collapses.
  const auto one_class =
      train.images.index_select(0, torch::nonzero(train.labels == 0).squeeze(1)).slice(0, 0, n);
  ASSERT_EQ(one_class.size(0), n);
  const auto [dropped, dropped_pr] = score(one_class);
  show("one class only", dropped);
  std::printf("  ladder: recall %.3f (real) vs %.3f (one class); precision %.3f vs %.3f\n",
              real_pr.recall, dropped_pr.recall, real_pr.precision, dropped_pr.precision);
  EXPECT_GT(dropped.value - real.value, 3 * std::hypot(dropped.se, real.se));
  EXPECT_LT(dropped_pr.recall, real_pr.recall - 0.3)
      << "recall " << dropped_pr.recall << " vs " << real_pr.recall << " for real images";
  EXPECT_GT(real_pr.precision, 0.5);
  EXPECT_GT(real_pr.recall, 0.5);
}

// report_samples, the one function the chapters call: it checks what it is
// given, and its reference features (cached per process) follow the images:
// a second call with other test images is not served the first call's cache.
TEST(ReportSamples, ChecksItsInputAndDoesNotReuseStaleReferences) {
  const auto path = dm::train::checkpoints_dir() / "fashion_classifier.pt";
  if (!fs::exists(path)) GTEST_SKIP() << "no shipped classifier at " << path;
  const auto test = dm::data::load_fashion_mnist(dm::data::Split::test, {}, 200);
  const auto train = dm::data::load_fashion_mnist(dm::data::Split::train, {}, 200);
  const int64_t n = 64;
  const auto samples = train.images.slice(0, 100, 100 + n);
  EXPECT_THROW(
      q::report_samples(samples.reshape({n, 32, 32}), train.images, test.images, torch::kCPU),
      dm::Error);
  auto bad = samples.clone();
  bad[3][0][5][5] = std::nan("");
  EXPECT_THROW(q::report_samples(bad, train.images, test.images, torch::kCPU), dm::Error);
  EXPECT_THROW(
      q::report_samples(samples, train.images.slice(0, 0, n - 1), test.images, torch::kCPU),
      dm::Error);

  const auto a = q::report_samples(samples, train.images, test.images, torch::kCPU);
  const auto again = q::report_samples(samples, train.images, test.images, torch::kCPU);
  EXPECT_EQ(a.kid.value, again.kid.value);  // cached references: the same numbers
  EXPECT_EQ(a.frechet_floor, again.frechet_floor);
  EXPECT_EQ(a.samples, n);
  EXPECT_EQ(a.kid.n, n);
  // Other test images (the second 64, a different tensor): other references.
  const auto other_test = test.images.slice(0, n, 2 * n).clone();
  const auto b = q::report_samples(samples, train.images, other_test, torch::kCPU);
  EXPECT_NE(a.frechet_floor, b.frechet_floor);
  EXPECT_NE(a.kid.value, b.kid.value);
  // The same values in a new tensor: the same features, recomputed or not.
  const auto copy =
      q::report_samples(samples, train.images.clone(), test.images.clone(), torch::kCPU);
  EXPECT_NEAR(copy.kid.value, a.kid.value, 1e-9);
}
