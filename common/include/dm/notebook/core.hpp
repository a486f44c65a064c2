// dm/notebook/core.hpp — what every notebook needs, in plain C++ types: points
// as Eigen matrices, a random generator, Gaussian mixtures with their exact
// scores, distances between samples, images and their display.
//
// No LibTorch header is reachable from here (a C++ interpreter cannot compile
// LibTorch's headers; see notebooks/README.md). The library's own tensors stay
// inside libdm: these functions convert at the boundary.
//
//   dm::nb::Generator gen(1);
//   const auto p = dm::nb::Mixture::isotropic({0.5, 0.5}, points({{-1, 0}, {1, 0}}), {0.3, 0.3});
//   const dm::nb::Points x = p.sample(1000, gen);          // [1000, 2], one point per row
//   const dm::nb::Points s = p.score(x);                    // ∇ log p at every row
#pragma once

#include <Eigen/Dense>

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "dm/app/figure.hpp"

namespace dm::nb {

using Vec = std::vector<double>;
// A batch of points, one per row: [N, D].
using Points = Eigen::MatrixXd;

// Points from a braced list of rows: points({{-1, 0}, {1, 0}}) is [2, 2].
Points points(std::initializer_list<std::initializer_list<double>> rows);
// Column j of a batch, as a vector for plotting.
Vec column(const Points& x, int j);
// n evenly spaced values from lo to hi (both included).
Vec linspace(double lo, double hi, int n);
// The n × n grid of points over [lo, hi]², x_1 fastest ([n·n, 2]), and the
// values f at those points back as rows along x_2 (for Axes::heatmap).
Points grid(double lo, double hi, int n);
std::vector<Vec> grid_rows(const Vec& values, int n);

// ---------------------------------------------------------------- randomness

// A random stream. Copies share their state, as LibTorch's generators do: a
// function that takes a Generator& advances the one the notebook holds.
class Generator {
 public:
  explicit Generator(uint64_t seed);
  // The library's default generator (the one seed_everything seeds).
  static Generator global();

  struct Impl;
  std::shared_ptr<Impl> impl;
};

// Seeds every generator the library draws from (CPU and CUDA, LibTorch's and
// the standard library's), so that a notebook gives the same numbers each run.
void seed_everything(uint64_t seed);
// Threads LibTorch uses inside one operation (1 is fastest for 2D toys).
void set_threads(int threads);

// Standard normal draws [n, d] and uniform draws on [0, 1) [n, d].
Points randn(int64_t n, int64_t d, Generator& gen);
Points rand(int64_t n, int64_t d, Generator& gen);

// A score (or any vector field) on batches: x [N, D] → [N, D]. A notebook
// writes one in Eigen, or takes a mixture's exact score or a trained network's.
// (A lambda defined at the top level of a cell cannot capture: it is at file
// scope. Capture-free lambdas, or variables read directly, work.)
using ScoreFn = std::function<Points(const Points&)>;

// ---------------------------------------------------------------- mixtures

// A Gaussian mixture Σ_k w_k N(μ_k, Σ_k): exact density, score and samples.
// Blurring it by Gaussian noise gives a mixture again, so the exact score of
// the data seen through any noise level is known too.
class Mixture {
 public:
  // weights [K] (normalised here), means [K, D], one covariance [D, D] per component.
  Mixture(const Vec& weights, const Points& means, const std::vector<Eigen::MatrixXd>& covariances);
  // Components N(μ_k, std_k² I).
  static Mixture isotropic(const Vec& weights, const Points& means, const Vec& stds);

  int dim() const;
  int components() const;
  Vec weights() const;
  Points means() const;
  std::vector<Eigen::MatrixXd> covariances() const;

  Points sample(int64_t n, Generator& gen) const;
  // ∇ₓ log p(x) at every row of x.
  Points score(const Points& x) const;
  // log p(x) at every row of x.
  Vec log_prob(const Points& x) const;
  // The law of x + σz (z ~ N(0, I)): every covariance grows by σ²I.
  Mixture perturb_ve(double sigma) const;
  // The law of a·x + s·z: means a·μ_k, covariances a²Σ_k + s²I.
  Mixture perturb_vp(double a, double s) const;

  struct Impl;
  std::shared_ptr<const Impl> impl;
  explicit Mixture(std::shared_ptr<const Impl> impl);  // for the library's side
};

// The exact score of p as a ScoreFn.
ScoreFn score_of(const Mixture& p);

// ---------------------------------------------------------------- networks

// A small MLP s_θ: R^D → R^D (optionally with a time input t): the network
// the 2D chapters train. Copies share the weights (LibTorch's modules do).
struct MLPOptions {
  int dim = 2;       // data dimension (input = output)
  int hidden = 128;  // width of every hidden layer
  int layers = 3;    // hidden layers (SiLU after each)
  int time_dim = 0;  // sinusoidal embedding size of t; 0 = no time input
};

class MLP {
 public:
  explicit MLP(const MLPOptions& options = {});
  // The output at x [N, D] (time_dim = 0), or at (x, t) with one t per row.
  Points operator()(const Points& x) const;
  Points operator()(const Points& x, const Vec& t) const;
  // Layers and parameter count.
  std::string describe() const;
  int64_t parameters() const;

  struct Impl;
  std::shared_ptr<Impl> impl;
};

// ---------------------------------------------------------------- distances

// The squared energy distance 2E‖X−Y‖ − E‖X−X'‖ − E‖Y−Y'‖ between two samples
// (rows), as a V-statistic: ≥ 0, zero iff the laws agree, with a small positive
// floor at finite n (two exact samples of 1000 score about 0.003; compare a
// sampler with that floor).
double energy_distance(const Points& x, const Points& y);

// The energy distance between two independent exact samples of p of size n,
// over `repeats` pairs (dm::metrics::noise_floor): what a perfect sampler would
// score, its mean and spread.
struct NoiseFloor {
  double mean = 0, std = 0;
  int repeats = 0;
};
NoiseFloor energy_floor(const Mixture& p, int64_t n, Generator& gen, int repeats = 10);

// ---------------------------------------------------------------- images

// A batch of images [N, C, H, W], values row-major in that order; the data's
// range is [−1, 1].
struct Images {
  int64_t count = 0, channels = 1, height = 0, width = 0;
  std::vector<float> values;

  float& at(int64_t n, int64_t c, int64_t h, int64_t w) {
    return values[static_cast<size_t>(((n * channels + c) * height + h) * width + w)];
  }
  float at(int64_t n, int64_t c, int64_t h, int64_t w) const {
    return values[static_cast<size_t>(((n * channels + c) * height + h) * width + w)];
  }
  int64_t pixels() const { return channels * height * width; }
};

// The first n test (or training) images of Fashion-MNIST in [−1, 1], with
// their labels; `classes` names the ten labels.
struct Dataset {
  Images images;
  std::vector<int64_t> labels;
};
Dataset fashion_mnist(bool train, int64_t n);
const std::vector<std::string>& fashion_classes();

// A picture ready to show: a PNG file in memory.
struct Picture {
  std::string png;
  std::string png_base64() const;
};
// A batch tiled `nrow` per row (white padding), each image enlarged `zoom`
// times; values in [lo, hi] map to black..white.
Picture show(const Images& images, int nrow = 8, double lo = -1.0, double hi = 1.0, int zoom = 1);
// One grey image from a matrix (row 0 at the top), each entry zoom × zoom pixels.
Picture show_matrix(const Eigen::MatrixXd& values, int zoom = 1, double lo = 0.0, double hi = 1.0);

// Where xcpp::display goes when no Jupyter kernel is there (clang-repl in the
// tests): checks that `data` is a file of this mime type, writes it as
// display_NNN.svg / .png in the working directory and prints
// "[display] display_NNN.svg (N bytes)".
void write_display(const std::string& mime, const std::string& data);

}  // namespace dm::nb
