// core.cpp — the notebook API's plain types, converted at the boundary to the
// library's tensors (internal.hpp) and handed to the algorithms that live in
// the other layers. Nothing here is an algorithm of its own.
#include <torch/torch.h>

#include <cstdio>
#include <fstream>
#include <iostream>

#include "dm/app/display.hpp"
#include "dm/app/image.hpp"
#include "dm/base/core.hpp"
#include "dm/base/rng.hpp"
#include "dm/data/fashion.hpp"
#include "dm/data/metrics.hpp"
#include "dm/nn/networks.hpp"
#include "internal.hpp"

namespace dm::nb {

namespace detail {

torch::Tensor to_tensor(const Points& x) {
  // Eigen stores columns contiguously: view it as [D, N], transpose, copy. (A
  // copy always: for one column or one row the transposed view is already
  // contiguous, and contiguous() would hand back a view of x's memory.)
  const auto cols =
      torch::from_blob(const_cast<double*>(x.data()), {x.cols(), x.rows()}, torch::kFloat64);
  return cols.t().clone(at::MemoryFormat::Contiguous);
}

Points to_points(const torch::Tensor& x) {
  if (x.dim() != 2)
    throw Error("notebook: expected a batch of points [N, D], got " + std::to_string(x.dim()) +
                " dimensions");
  const auto cols = x.detach().to(torch::kCPU, torch::kFloat64).t().contiguous();
  Points out(x.size(0), x.size(1));
  std::copy(cols.data_ptr<double>(), cols.data_ptr<double>() + cols.numel(), out.data());
  return out;
}

torch::Tensor to_tensor(const Vec& v) { return torch::tensor(v, torch::kFloat64); }

Vec to_vec(const torch::Tensor& t) {
  const auto flat = t.detach().to(torch::kCPU, torch::kFloat64).contiguous().reshape(-1);
  return Vec(flat.data_ptr<double>(), flat.data_ptr<double>() + flat.numel());
}

torch::Tensor to_tensor(const Images& images) {
  const int64_t expected = images.count * images.pixels();
  if (static_cast<int64_t>(images.values.size()) != expected)
    throw Error("notebook: Images holds " + std::to_string(images.values.size()) +
                " values, its shape [" + std::to_string(images.count) + ", " +
                std::to_string(images.channels) + ", " + std::to_string(images.height) + ", " +
                std::to_string(images.width) + "] needs " + std::to_string(expected));
  return torch::tensor(images.values, torch::kFloat32)
      .reshape({images.count, images.channels, images.height, images.width});
}

Images to_images(const torch::Tensor& batch) {
  if (batch.dim() != 4)
    throw Error("notebook: expected images [N, C, H, W], got " + std::to_string(batch.dim()) +
                " dimensions");
  const auto flat = batch.detach().to(torch::kCPU, torch::kFloat32).contiguous().reshape(-1);
  Images out;
  out.count = batch.size(0);
  out.channels = batch.size(1);
  out.height = batch.size(2);
  out.width = batch.size(3);
  out.values.assign(flat.data_ptr<float>(), flat.data_ptr<float>() + flat.numel());
  return out;
}

Mixture wrap(dm::toy::GaussianMixture mixture) {
  return Mixture(std::make_shared<const Mixture::Impl>(Mixture::Impl{std::move(mixture)}));
}

dm::ScoreFunction to_model(const ScoreFn& score) {
  return dm::ScoreFunction([score](const torch::Tensor& x) {
    const Points s = score(to_points(x));
    if (s.rows() != x.size(0) || s.cols() != x.size(1))
      throw Error("notebook: the score gave [" + std::to_string(s.rows()) + ", " +
                  std::to_string(s.cols()) + "] for points [" + std::to_string(x.size(0)) + ", " +
                  std::to_string(x.size(1)) + "]: one score per point, of the point's dimension");
    return to_tensor(s).to(x.dtype());
  });
}

}  // namespace detail

using namespace detail;

Points points(std::initializer_list<std::initializer_list<double>> rows) {
  const auto n = static_cast<Eigen::Index>(rows.size());
  const auto d = n ? static_cast<Eigen::Index>(rows.begin()->size()) : 0;
  Points out(n, d);
  Eigen::Index i = 0;
  for (const auto& row : rows) {
    if (static_cast<Eigen::Index>(row.size()) != d)
      throw Error("notebook::points: row " + std::to_string(i) + " has " +
                  std::to_string(row.size()) + " values, the first has " + std::to_string(d));
    Eigen::Index j = 0;
    for (double v : row) out(i, j++) = v;
    ++i;
  }
  return out;
}

Vec column(const Points& x, int j) {
  if (j < 0 || j >= x.cols())
    throw Error("notebook::column: column " + std::to_string(j) + " of points with " +
                std::to_string(x.cols()) + " columns");
  return Vec(x.col(j).data(), x.col(j).data() + x.rows());
}

Vec linspace(double lo, double hi, int n) {
  Vec out(static_cast<size_t>(std::max(n, 0)));
  for (int i = 0; i < n; ++i)
    out[static_cast<size_t>(i)] = n == 1 ? lo : lo + (hi - lo) * i / (n - 1);
  return out;
}

Points grid(double lo, double hi, int n) {
  const auto g = linspace(lo, hi, n);
  Points out(static_cast<Eigen::Index>(n) * n, 2);
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j)
      out.row(i * n + j) << g[static_cast<size_t>(j)], g[static_cast<size_t>(i)];
  return out;
}

std::vector<Vec> grid_rows(const Vec& values, int n) {
  if (static_cast<int64_t>(values.size()) != int64_t(n) * n)
    throw Error("notebook::grid_rows: " + std::to_string(values.size()) + " values for an " +
                std::to_string(n) + " × " + std::to_string(n) + " grid");
  std::vector<Vec> rows;
  for (int i = 0; i < n; ++i)
    rows.emplace_back(values.begin() + i * n, values.begin() + (i + 1) * n);
  return rows;
}

// ---------------------------------------------------------------- randomness

Generator::Generator(uint64_t seed)
    : impl(std::make_shared<Impl>(Impl{dm::make_generator(seed)})) {}

Generator Generator::global() {
  Generator g(0);
  g.impl->gen = dm::default_generator();
  return g;
}

void seed_everything(uint64_t seed) { dm::seed_everything(seed); }
void set_threads(int threads) { dm::set_threads(threads); }

Points randn(int64_t n, int64_t d, Generator& gen) {
  return to_points(dm::randn({n, d}, unwrap(gen), dm::f64()));
}
Points rand(int64_t n, int64_t d, Generator& gen) {
  return to_points(dm::rand({n, d}, unwrap(gen), dm::f64()));
}

// ---------------------------------------------------------------- mixtures

Mixture::Mixture(const Vec& weights, const Points& means,
                 const std::vector<Eigen::MatrixXd>& covariances) {
  if (covariances.size() != weights.size() ||
      means.rows() != static_cast<Eigen::Index>(weights.size()))
    throw Error("notebook::Mixture: " + std::to_string(weights.size()) + " weights, " +
                std::to_string(means.rows()) + " means and " + std::to_string(covariances.size()) +
                " covariances: one of each per component");
  std::vector<torch::Tensor> covs;
  for (const auto& c : covariances) covs.push_back(to_tensor(Points(c)));
  impl = std::make_shared<const Impl>(
      Impl{dm::toy::GaussianMixture(to_tensor(weights), to_tensor(means), torch::stack(covs))});
}

Mixture::Mixture(std::shared_ptr<const Impl> impl) : impl(std::move(impl)) {}

Mixture Mixture::isotropic(const Vec& weights, const Points& means, const Vec& stds) {
  return wrap(
      dm::toy::GaussianMixture::isotropic(to_tensor(weights), to_tensor(means), to_tensor(stds)));
}

int Mixture::dim() const { return static_cast<int>(unwrap(*this).dim()); }
int Mixture::components() const { return static_cast<int>(unwrap(*this).components()); }
Vec Mixture::weights() const { return to_vec(unwrap(*this).weights()); }
Points Mixture::means() const { return to_points(unwrap(*this).means()); }
std::vector<Eigen::MatrixXd> Mixture::covariances() const {
  std::vector<Eigen::MatrixXd> out;
  const auto& covs = unwrap(*this).covs();
  for (int64_t k = 0; k < covs.size(0); ++k) out.push_back(to_points(covs[k]));
  return out;
}

Points Mixture::sample(int64_t n, Generator& gen) const {
  return to_points(unwrap(*this).sample(n, unwrap(gen)));
}
Points Mixture::score(const Points& x) const { return unwrap(*this).score(x); }
Vec Mixture::log_prob(const Points& x) const {
  return to_vec(unwrap(*this).log_prob(to_tensor(x)));
}
Mixture Mixture::perturb_ve(double sigma) const { return wrap(unwrap(*this).perturb_ve(sigma)); }
Mixture Mixture::perturb_vp(double a, double s) const {
  return wrap(unwrap(*this).perturb_vp(a, s));
}

ScoreFn score_of(const Mixture& p) {
  return [p](const Points& x) { return p.score(x); };
}

// ---------------------------------------------------------------- networks

MLP::MLP(const MLPOptions& options) {
  dm::nn::MLPConfig config;
  config.dim = options.dim;
  config.hidden = options.hidden;
  config.layers = options.layers;
  config.time_dim = options.time_dim;
  impl = std::make_shared<Impl>(Impl{dm::nn::ScoreMLP(config)});
}

Points MLP::operator()(const Points& x) const {
  if (unwrap(*this)->config().time_dim > 0)
    throw Error("notebook::MLP: this network takes a time input: call net(x, t)");
  torch::NoGradGuard no_grad;
  return to_points(unwrap(*this)->forward(to_tensor(x).to(torch::kFloat32)));
}

Points MLP::operator()(const Points& x, const Vec& t) const {
  if (static_cast<Eigen::Index>(t.size()) != x.rows())
    throw Error("notebook::MLP: " + std::to_string(t.size()) + " times for " +
                std::to_string(x.rows()) + " points");
  torch::NoGradGuard no_grad;
  return to_points(
      unwrap(*this)->forward(to_tensor(x).to(torch::kFloat32), to_tensor(t).to(torch::kFloat32)));
}

std::string MLP::describe() const { return dm::nn::describe(unwrap(*this)); }

int64_t MLP::parameters() const {
  int64_t n = 0;
  for (const auto& p : unwrap(*this)->parameters()) n += p.numel();
  return n;
}

// ---------------------------------------------------------------- distances

double energy_distance(const Points& x, const Points& y) {
  return dm::metrics::energy_distance(to_tensor(x), to_tensor(y));
}

NoiseFloor energy_floor(const Mixture& p, int64_t n, Generator& gen, int repeats) {
  const auto& mixture = unwrap(p);
  auto& g = unwrap(gen);
  const auto floor = dm::metrics::noise_floor([&](int64_t m) { return mixture.sample(m, g); }, n,
                                              dm::metrics::energy_distance, repeats);
  return {floor.mean, floor.std, floor.repeats};
}

// ---------------------------------------------------------------- images

Dataset fashion_mnist(bool train, int64_t n) {
  const auto data =
      dm::data::load_fashion_mnist(train ? dm::data::Split::train : dm::data::Split::test, {}, n);
  Dataset out;
  out.images = to_images(data.images);
  const auto labels = data.labels.contiguous();
  out.labels.assign(labels.data_ptr<int64_t>(), labels.data_ptr<int64_t>() + labels.numel());
  return out;
}

const std::vector<std::string>& fashion_classes() { return dm::data::fashion_mnist_classes(); }

std::string Picture::png_base64() const { return dm::base64_encode(png); }

Picture show(const Images& images, int nrow, double lo, double hi, int zoom) {
  if (zoom < 1) throw Error("notebook::show: zoom must be at least 1, got " + std::to_string(zoom));
  auto batch = to_tensor(images);
  if (zoom > 1) batch = batch.repeat_interleave(zoom, 2).repeat_interleave(zoom, 3);
  const auto shown = dm::image::show(batch, nrow, lo, hi);
  return Picture{dm::image::encode_png(shown.pixels, shown.lo, shown.hi)};
}

Picture show_matrix(const Eigen::MatrixXd& values, int zoom, double lo, double hi) {
  if (zoom < 1)
    throw Error("notebook::show_matrix: zoom must be at least 1, got " + std::to_string(zoom));
  auto pixels = to_tensor(Points(values));
  if (zoom > 1) pixels = pixels.repeat_interleave(zoom, 0).repeat_interleave(zoom, 1);
  return Picture{dm::image::encode_png(pixels, lo, hi)};
}

void write_display(const std::string& mime, const std::string& data) {
  static int count = 0;
  std::string ext;
  bool ok = true;
  if (mime == "image/svg+xml") {
    ext = "svg";
    ok = data.find("<svg") != std::string::npos && data.find("</svg>") != std::string::npos;
  } else if (mime == "image/png") {
    ext = "png";
    ok = data.compare(0, 8, std::string("\x89PNG\r\n\x1a\n", 8)) == 0;
  } else {
    throw Error("xcpp::display: no file type for the mime type " + mime);
  }
  if (!ok) throw Error("xcpp::display: the " + mime + " data is not a valid file");
  char name[32];
  std::snprintf(name, sizeof name, "display_%03d.%s", ++count, ext.c_str());
  std::ofstream file(name, std::ios::binary);
  file << data;
  if (!file) throw Error(std::string("xcpp::display: cannot write ") + name);
  std::cout << "[display] " << name << " (" << data.size() << " bytes)" << std::endl;
}

}  // namespace dm::nb
