#include "dm/data/quality.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <mutex>

#include "dm/base/checksum.hpp"
#include "dm/base/core.hpp"
#include "dm/data/fashion.hpp"
#include "dm/base/progress.hpp"
#include "dm/nn/train.hpp"

namespace fs = std::filesystem;
using torch::Tensor;

namespace dm::quality {

nlohmann::json to_json(const ClassifierConfig& c) {
  return {{"kind", "fashion_classifier"},
          {"in_channels", c.in_channels},
          {"width", c.width},
          {"num_classes", c.num_classes},
          {"image_size", c.image_size}};
}

ClassifierImpl::ClassifierImpl(ClassifierConfig config) : config_(config) {
  const int64_t w = config.width;
  torch::nn::Sequential body;
  int64_t in = config.in_channels;
  for (int64_t out : {w, 2 * w, 4 * w}) {  // conv 3×3 → BatchNorm → ReLU → 2×2 max-pool
    body->push_back(torch::nn::Conv2d(torch::nn::Conv2dOptions(in, out, 3).padding(1).bias(false)));
    body->push_back(torch::nn::BatchNorm2d(out));
    body->push_back(torch::nn::ReLU());
    body->push_back(torch::nn::MaxPool2d(2));
    in = out;
  }
  body->push_back(torch::nn::AdaptiveAvgPool2d(1));
  body->push_back(torch::nn::Flatten());
  body_ = register_module("body", body);
  head_ = register_module("head", torch::nn::Linear(4 * w, config.num_classes));
}

Tensor ClassifierImpl::features(const Tensor& x) {
  if (x.dim() != 4 || x.size(1) != config_.in_channels)
    throw Error("classifier: expected images [N, " + std::to_string(config_.in_channels) +
                ", H, W], got " + std::to_string(x.dim()) + " dims");
  return body_->forward(x);
}

Tensor ClassifierImpl::forward(const Tensor& x) { return head_->forward(features(x)); }

double train_classifier(Classifier& model, const Tensor& images, const Tensor& labels,
                        const ClassifierTraining& o, const torch::Device& device) {
  model->to(device);
  model->train();
  torch::optim::Adam opt(model->parameters(), torch::optim::AdamOptions(o.lr));
  const int64_t n = images.size(0), per_epoch = n / o.batch_size, total = per_epoch * o.epochs;
  auto gen = at::detail::createCPUGenerator(o.seed);
  Progress bar("classifier", total);
  double last_mean = 0;
  int64_t step = 0;
  for (int64_t epoch = 0; epoch < o.epochs; ++epoch) {
    const auto perm = torch::randperm(n, gen);
    double sum = 0;
    for (int64_t b = 0; b < per_epoch; ++b, ++step) {
      // Cosine decay of the learning rate over the whole run.
      const double lr = 0.5 * o.lr * (1 + std::cos(M_PI * double(step) / double(total)));
      for (auto& g : opt.param_groups())
        static_cast<torch::optim::AdamOptions&>(g.options()).lr(lr);
      const auto idx = perm.slice(0, b * o.batch_size, (b + 1) * o.batch_size);
      auto x = images.index_select(0, idx).to(device), y = labels.index_select(0, idx).to(device);
      // Light augmentation: random horizontal flips (Fashion-MNIST items are roughly symmetric).
      const auto flip = torch::rand({x.size(0)}, gen).lt(0.5).to(device).view({-1, 1, 1, 1});
      x = torch::where(flip, x.flip({3}), x);
      opt.zero_grad();
      auto loss = torch::nn::functional::cross_entropy(model->forward(x), y);
      loss.backward();
      opt.step();
      const double v = loss.item<double>();
      sum += v;
      char status[32];
      std::snprintf(status, sizeof status, "loss %.3f", v);
      bar.tick(1, status);
    }
    last_mean = sum / double(per_epoch);
  }
  bar.finish();
  model->eval();
  return last_mean;
}

namespace {
// Runs `fn` over batches in eval mode without gradients; concatenates the results on the CPU.
template <class Fn>
Tensor batched(Classifier& model, const Tensor& images, int64_t batch_size, Fn fn) {
  torch::NoGradGuard no_grad;
  model->eval();
  const auto device = model->parameters().front().device();
  std::vector<Tensor> parts;
  for (int64_t i = 0; i < images.size(0); i += batch_size) {
    auto x =
        images.slice(0, i, std::min(images.size(0), i + batch_size)).to(device, torch::kFloat32);
    parts.push_back(fn(x).to(torch::kCPU));
  }
  return torch::cat(parts);
}
}  // namespace

Tensor predict_classes(Classifier& model, const Tensor& images, int64_t batch_size) {
  return batched(model, images, batch_size,
                 [&](const Tensor& x) { return model->forward(x).argmax(1); });
}

double accuracy(Classifier& model, const Tensor& images, const Tensor& labels, int64_t batch_size) {
  const auto pred = predict_classes(model, images, batch_size);
  return pred.eq(labels.to(torch::kCPU)).to(torch::kFloat64).mean().item<double>();
}

Tensor features(Classifier& model, const Tensor& images, int64_t batch_size) {
  return batched(model, images, batch_size, [&](const Tensor& x) { return model->features(x); })
      .to(torch::kFloat64);
}

Tensor class_histogram(Classifier& model, const Tensor& images) {
  return torch::bincount(predict_classes(model, images), {}, model->config().num_classes);
}

void save_classifier(Classifier& model, const fs::path& path, const nlohmann::json& extra) {
  torch::serialize::OutputArchive archive, weights;
  model->save(weights);
  archive.write("weights", weights);
  nlohmann::json info = {{"model", to_json(model->config())},
                         {"extra", extra},
                         {"checksum", tensors_checksum(named_state(*model))}};
  archive.write("info", c10::IValue(info.dump()));
  if (path.has_parent_path()) fs::create_directories(path.parent_path());
  const fs::path tmp = path.string() + ".tmp";
  archive.save_to(tmp.string());
  fs::rename(tmp, path);
}

Classifier load_classifier(const fs::path& path, const torch::Device& device) {
  if (!fs::exists(path))
    throw Error("classifier checkpoint " + path.string() + " not found",
                "it ships in data/checkpoints/; retrain with build/bin/train_classifier");
  torch::serialize::InputArchive archive;
  nlohmann::json info;
  try {
    archive.load_from(path.string(), device);
    c10::IValue v;
    archive.read("info", v);
    info = nlohmann::json::parse(v.toStringRef());
  } catch (const std::exception&) {
    throw Error("classifier checkpoint " + path.string() + " is truncated or corrupt");
  }
  const auto& m = info.at("model");
  if (m.value("kind", "") != "fashion_classifier")
    throw Error("checkpoint " + path.string() + " is not a Fashion-MNIST classifier");
  ClassifierConfig c;
  c.in_channels = m.at("in_channels");
  c.width = m.at("width");
  c.num_classes = m.at("num_classes");
  c.image_size = m.at("image_size");
  Classifier model(c);
  torch::serialize::InputArchive weights;
  try {
    archive.read("weights", weights);
    model->load(weights);
  } catch (const c10::Error&) {
    throw Error("classifier checkpoint " + path.string() +
                " does not fit its own configuration (corrupt?)");
  }
  verify_checksum(info.value("checksum", std::string()), tensors_checksum(named_state(*model)),
                  path);
  model->to(device);
  model->eval();
  return model;
}

// ---- Fréchet distance ---------------------------------------------------------------

Eigen::MatrixXd sqrt_psd(const Eigen::MatrixXd& m) {
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(0.5 * (m + m.transpose()));
  const Eigen::VectorXd root = eig.eigenvalues().cwiseMax(0.0).cwiseSqrt();
  return eig.eigenvectors() * root.asDiagonal() * eig.eigenvectors().transpose();
}

// ANCHOR: frechet
double frechet_distance(const Eigen::VectorXd& mu_a, const Eigen::MatrixXd& cov_a,
                        const Eigen::VectorXd& mu_b, const Eigen::MatrixXd& cov_b) {
  // Tr((Σ_a Σ_b)^{1/2}) = Tr((Σ_a^{1/2} Σ_b Σ_a^{1/2})^{1/2}): the second matrix is
  // symmetric PSD, so its square root is an eigendecomposition away (stable,
  // unlike a general matrix square root of the non-symmetric Σ_a Σ_b).
  const Eigen::MatrixXd root_a = sqrt_psd(cov_a);
  const Eigen::MatrixXd middle = root_a * cov_b * root_a;
  Eigen::SelfAdjointEigenSolver<Eigen::MatrixXd> eig(0.5 * (middle + middle.transpose()),
                                                     Eigen::EigenvaluesOnly);
  const double tr_sqrt = eig.eigenvalues().cwiseMax(0.0).cwiseSqrt().sum();
  // d² = ‖μ_a − μ_b‖² + Tr Σ_a + Tr Σ_b − 2 Tr((Σ_a Σ_b)^{1/2})
  return (mu_a - mu_b).squaredNorm() + cov_a.trace() + cov_b.trace() - 2.0 * tr_sqrt;
}
// ANCHOR_END: frechet

namespace {
std::pair<Eigen::VectorXd, Eigen::MatrixXd> moments(const Tensor& f_in) {
  const auto f = f_in.to(torch::kCPU, torch::kFloat64).contiguous();
  if (f.dim() != 2 || f.size(0) < 2) throw Error("frechet_distance: need features [N >= 2, F]");
  Eigen::Map<const Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>> x(
      f.data_ptr<double>(), f.size(0), f.size(1));
  const Eigen::VectorXd mu = x.colwise().mean();
  const Eigen::MatrixXd centered = x.rowwise() - mu.transpose();
  const Eigen::MatrixXd cov = centered.transpose() * centered / double(f.size(0) - 1);
  return {mu, cov};
}
}  // namespace

double frechet_distance(const Tensor& features_a, const Tensor& features_b) {
  if (features_a.size(1) != features_b.size(1))
    throw Error("frechet_distance: feature sets have different widths");
  const auto [mu_a, cov_a] = moments(features_a);
  const auto [mu_b, cov_b] = moments(features_b);
  return frechet_distance(mu_a, cov_a, mu_b, cov_b);
}

nlohmann::json SampleReport::to_json() const {
  return {{"samples", samples},
          {"frechet_distance", frechet_distance},
          {"frechet_floor_train_vs_test", frechet_floor},
          {"kid", {{"value", kid.value}, {"se", kid.se}, {"n", kid.n}, {"blocks", kid.blocks}}},
          {"kid_floor_train_vs_test",
           {{"value", kid_floor.value},
            {"se", kid_floor.se},
            {"n", kid_floor.n},
            {"blocks", kid_floor.blocks}}},
          {"kid_resolvable_difference", kid_resolvable},
          {"precision", pr.precision},
          {"recall", pr.recall},
          {"precision_recall_k", pr.k},
          {"precision_recall_floor_train_vs_test",
           {{"precision", pr_floor.precision}, {"recall", pr_floor.recall}}},
          {"class_fractions", class_fractions},
          {"largest_class_fraction_error", largest_class_fraction_error},
          {"classifier_test_accuracy", classifier_test_accuracy}};
}

namespace {
// The classifier file's bytes, hashed: the key that ties cached features to
// the network that computed them.
std::string file_key(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  return std::to_string(std::hash<std::string>{}(bytes)) + ":" + std::to_string(bytes.size());
}

// The features of the first n images of a real split, computed once per
// process for each (classifier file, images, n, device): a chapter that
// compares several samplers pays for the reference sets once.
Tensor reference_features(Classifier& classifier, const std::string& classifier_key,
                          const Tensor& images, int64_t n, const torch::Device& device) {
  static std::mutex mutex;
  static std::map<std::string, Tensor> cache;
  const auto first = images.slice(0, 0, n).contiguous();
  // The images' identity: their storage, shape and a checksum of the values.
  const std::string key = classifier_key + "|" +
                          std::to_string(reinterpret_cast<uintptr_t>(first.data_ptr())) + "|" +
                          std::to_string(n) + "|" + device.str() + "|" +
                          std::to_string(first.to(torch::kFloat64).sum().item<double>());
  std::lock_guard<std::mutex> lock(mutex);
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, features(classifier, first)).first;
  return it->second;
}
}  // namespace

SampleReport report_samples(const torch::Tensor& samples, const torch::Tensor& train_images,
                            const torch::Tensor& test_images, const torch::Device& device) {
  const int64_t n = samples.dim() == 4 ? samples.size(0) : 0;
  if (samples.dim() != 4 || samples.size(1) != 1 || samples.size(2) != 32 || samples.size(3) != 32)
    throw Error("report_samples: samples must be [n, 1, 32, 32], got " + c10::str(samples.sizes()));
  if (n < 2) throw Error("report_samples: need at least 2 samples, got " + std::to_string(n));
  if (!torch::isfinite(samples).all().item<bool>())
    throw Error("report_samples: the samples hold NaN or inf values (a diverged sampler?)");
  if (train_images.size(0) < n || test_images.size(0) < n)
    throw Error(
        "report_samples: " + std::to_string(n) + " samples need as many training and test images",
        "draw fewer samples");
  const auto path = dm::train::checkpoints_dir() / "fashion_classifier.pt";
  auto classifier = load_classifier(path, device);
  const auto key = file_key(path);
  SampleReport r;
  r.samples = n;
  // ANCHOR: frechet_floor
  const auto f_test = reference_features(classifier, key, test_images, n, device);
  const auto f_samples = features(classifier, samples);
  const auto f_train =
      reference_features(classifier, key, train_images, n, device);  // real vs real
  // Exactly n of each: the statistics below are biased by sample size, so
  // every comparison (and its floor) uses the same n.
  if (f_test.size(0) != n || f_train.size(0) != n || f_samples.size(0) != n)
    throw Error("report_samples: feature sets of unequal size");
  r.frechet_distance = frechet_distance(f_samples, f_test);
  r.frechet_floor = frechet_distance(f_train, f_test);
  // ANCHOR_END: frechet_floor
  const int blocks = static_cast<int>(std::clamp<int64_t>(n / 32, 2, 10));
  r.kid = metrics::kid(f_samples, f_test, blocks);
  r.kid_floor = metrics::kid(f_train, f_test, blocks);
  // Two sample sets of this size can be told apart by KID when their values
  // differ by more than about twice the standard error of the difference.
  r.kid_resolvable = 2.0 * std::hypot(r.kid.se, r.kid_floor.se);
  r.pr = metrics::precision_recall(f_test, f_samples, 3);
  r.pr_floor = metrics::precision_recall(f_test, f_train, 3);
  const auto hist = class_histogram(classifier, samples);
  for (int64_t k = 0; k < hist.size(0); ++k) {
    r.class_fractions.push_back(hist[k].item<double>() / double(n));
    r.largest_class_fraction_error =
        std::max(r.largest_class_fraction_error, std::abs(r.class_fractions.back() - 0.1));
  }
  r.classifier_test_accuracy = dm::train::read_checkpoint_info(path)
                                   .value("extra", nlohmann::json())
                                   .value("test_accuracy", -1.0);
  std::printf(
      "  Fréchet distance (%lld samples vs %lld test images): %.2f; floor (train vs test): %.2f\n",
      (long long)n, (long long)n, r.frechet_distance, r.frechet_floor);
  std::printf(
      "  KID: %.4f ± %.4f; floor (train vs test): %.4f ± %.4f (%d blocks); at n = %lld, KIDs "
      "closer than ≈ %.4f are not told apart\n",
      r.kid.value, r.kid.se, r.kid_floor.value, r.kid_floor.se, blocks, (long long)n,
      r.kid_resolvable);
  std::printf("  precision %.3f, recall %.3f (k = 3); train vs test: %.3f, %.3f\n", r.pr.precision,
              r.pr.recall, r.pr_floor.precision, r.pr_floor.recall);
  std::printf("  class fractions %.3f … %.3f (0.1 each in the data)\n",
              *std::min_element(r.class_fractions.begin(), r.class_fractions.end()),
              *std::max_element(r.class_fractions.begin(), r.class_fractions.end()));
  return r;
}

}  // namespace dm::quality
