// dm/data/quality.hpp — measuring generated images: a small Fashion-MNIST
// classifier the suite trains itself, the Fréchet distance between two sample
// sets in its feature space, and the class histogram of generated samples.
//
// This is *not* the Inception FID of the papers (no ImageNet network here); it
// is the same statistic in the feature space of a network that knows
// Fashion-MNIST. Numbers are comparable within this suite only, and always
// reported beside their floor: the same distance between the training and test
// sets at the same sample count.
#pragma once

#include <torch/torch.h>

#include <Eigen/Dense>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

#include "dm/data/metrics.hpp"

namespace dm::quality {

struct ClassifierConfig {
  int64_t in_channels = 1;
  int64_t width = 32;  // channels of the first conv; doubled after each pooling
  int64_t num_classes = 10;
  int64_t image_size = 32;
  bool operator==(const ClassifierConfig& o) const {
    return in_channels == o.in_channels && width == o.width && num_classes == o.num_classes &&
           image_size == o.image_size;
  }
};
nlohmann::json to_json(const ClassifierConfig& c);

// conv(w)→pool→conv(2w)→pool→conv(4w)→pool→global average → features [N, 4w]
// → linear → logits [N, classes]. Each conv: 3×3, BatchNorm, ReLU.
class ClassifierImpl : public torch::nn::Module {
 public:
  explicit ClassifierImpl(ClassifierConfig config = {});
  torch::Tensor forward(const torch::Tensor& x);   // logits
  torch::Tensor features(const torch::Tensor& x);  // the penultimate layer
  const ClassifierConfig& config() const { return config_; }

 private:
  ClassifierConfig config_;
  torch::nn::Sequential body_{nullptr};
  torch::nn::Linear head_{nullptr};
};
TORCH_MODULE(Classifier);

struct ClassifierTraining {
  int64_t epochs = 3, batch_size = 128;
  double lr = 2e-3;
  uint64_t seed = 0;
};

// Trains on (images [N,C,H,W] in [−1, 1], labels [N]) with Adam and a cosine
// learning-rate decay, with a progress bar; returns the final mean training loss.
double train_classifier(Classifier& model, const torch::Tensor& images, const torch::Tensor& labels,
                        const ClassifierTraining& options, const torch::Device& device);

// Evaluated in eval mode, in batches, on `model`'s device; inputs may live anywhere.
double accuracy(Classifier& model, const torch::Tensor& images, const torch::Tensor& labels,
                int64_t batch_size = 500);
torch::Tensor features(Classifier& model, const torch::Tensor& images,
                       int64_t batch_size = 500);  // [N, F] float64 CPU
torch::Tensor predict_classes(Classifier& model, const torch::Tensor& images,
                              int64_t batch_size = 500);  // [N] long CPU
// Counts of predicted classes, [num_classes] long.
torch::Tensor class_histogram(Classifier& model, const torch::Tensor& images);

// Saves/loads the classifier with its configuration; loading a file for a
// different configuration or a corrupt file is a dm::Error.
void save_classifier(Classifier& model, const std::filesystem::path& path,
                     const nlohmann::json& extra = {});
Classifier load_classifier(const std::filesystem::path& path, const torch::Device& device);

// ---- Fréchet distance ----------------------------------------------------------
// d² = ‖μ_a − μ_b‖² + Tr(Σ_a + Σ_b − 2 (Σ_a^{1/2} Σ_b Σ_a^{1/2})^{1/2})
// between Gaussians, and between the Gaussians fitted to two feature sets [N, F].
double frechet_distance(const Eigen::VectorXd& mu_a, const Eigen::MatrixXd& cov_a,
                        const Eigen::VectorXd& mu_b, const Eigen::MatrixXd& cov_b);
double frechet_distance(const torch::Tensor& features_a, const torch::Tensor& features_b);

// The symmetric PSD square root by eigendecomposition (negative round-off
// eigenvalues clamped to 0).
Eigen::MatrixXd sqrt_psd(const Eigen::MatrixXd& m);

// ---- What the image chapters report about their samples ------------------------
struct SampleReport {
  int64_t samples = 0;
  double frechet_distance = 0;  // samples vs the first n test images
  double frechet_floor = 0;     // the first n training images vs the same test images
  metrics::Kid kid, kid_floor;  // the same two comparisons by KID (± its standard error)
  double kid_resolvable = 0;    // 2·√(se² + se_floor²): smaller KID gaps are noise at this n
  metrics::PrecisionRecall pr, pr_floor;  // and by precision/recall (k = 3)
  std::vector<double> class_fractions;    // by the classifier; the data has 0.1 of each
  double largest_class_fraction_error = 0;
  double classifier_test_accuracy = -1;  // from the classifier file, −1 if it does not say
  // {samples, frechet_distance, frechet_floor_train_vs_test, kid {value, se, n,
  //  blocks}, kid_floor_train_vs_test, kid_resolvable_difference, precision, recall, precision_recall_k,
  //  precision_recall_floor_train_vs_test {precision, recall}, class_fractions,
  //  largest_class_fraction_error, classifier_test_accuracy}
  nlohmann::json to_json() const;
};
// Measures n generated images [n, 1, 32, 32] in [−1, 1] with the shipped
// classifier (checkpoints_dir()/fashion_classifier.pt) against the first n
// images of each split, and prints the lines the chapters show. Every
// statistic comes with its real-vs-real value at the same n (train vs test
// images); KID with its standard error from clamp(n/32, 2, 10) blocks.
SampleReport report_samples(const torch::Tensor& samples, const torch::Tensor& train_images,
                            const torch::Tensor& test_images, const torch::Device& device);

}  // namespace dm::quality
