// Chapter 06 — Predictor–corrector sampling and the probability-flow ODE
// (Song et al., 2021, §4.2–4.3 and appendices D, G).
//
// Chapter 05 discretised the reverse-time SDE with one kind of step. Two ideas
// of the same paper follow here. A predictor–corrector (PC) sampler adds, at
// every time of the grid, a few steps of Langevin MCMC at the current
// marginal p_t (the corrector) to the predictor's step along the reverse SDE,
// correcting part of its discretisation error. And every SDE has a
// deterministic twin, the probability-flow ODE dx/dt = f − ½ g² ∇log p_t,
// with the same marginals: solved by an adaptive Runge–Kutta method it
// samples with fewer evaluations, it maps data to latents and back (an
// invertible encoding), and by the instantaneous change of variables it gives
// exact log-likelihoods — bits per dimension.
//
// The chapter runs, in order:
//   1. the paper's sampler table (Table 1) on a 2D mixture with its exact score:
//      predictors ancestral / reverse diffusion / probability flow, columns
//      P N, P 2N, C 2N, PC N, for VE and VP, energy distance over its noise floor;
//   2. the same table on Fashion-MNIST with the shipped models (DDPM as a VP
//      SDE, NCSN as a VE SDE) at sizes a CPU affords, by the suite's KID;
//   3. likelihoods: the ODE's log-likelihood with the exact score against the
//      mixture's density (VE, VP, sub-VP), Hutchinson's spread against the
//      number of probes, bits/dim of Fashion-MNIST test images;
//   4. encodings: the round trip's error against the tolerance, two
//      independently trained score models give the same latents, spherical
//      interpolation and temperature in the VP model's latent space;
//   5. quality against cost: adaptive Dormand–Prince against fixed-step Euler,
//      Heun and the predictor-only and PC samplers, on the 2D mixture and images.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dm/app/cli.hpp"
#include "dm/app/image.hpp"
#include "dm/app/image_chapter.hpp"
#include "dm/app/metrics_file.hpp"
#include "dm/app/plot.hpp"
#include "dm/base/progress.hpp"
#include "dm/base/rng.hpp"
#include "dm/data/fashion.hpp"
#include "dm/data/metrics.hpp"
#include "dm/data/quality.hpp"
#include "dm/data/toy.hpp"
#include "dm/diffusion/param.hpp"
#include "dm/diffusion/sde.hpp"
#include "dm/methods/pc.hpp"
#include "dm/methods/probability_flow.hpp"
#include "dm/methods/reverse_sde.hpp"
#include "dm/nn/net_model.hpp"
#include "dm/nn/networks.hpp"
#include "dm/nn/train.hpp"

namespace fs = std::filesystem;
namespace sde = dm::sde;
namespace pc = dm::pc;
namespace flow = dm::flow;
using dm::plot::Vec;
using nlohmann::json;
using torch::Tensor;

namespace {

// The chapter's random numbers: torch's default CPU generator, seeded by --seed.
at::Generator& rng() {
  static at::Generator gen = dm::default_generator();
  return gen;
}
uint64_t g_seed = 0;
// A generator of its own for stream k of this run (the same k: the same draws).
at::Generator stream(uint64_t k) { return dm::make_generator(dm::stream_seed(g_seed, k)); }

struct Options {
  int64_t samples = 0;      // images per cell of the image table (0: default)
  int64_t image_steps = 0;  // N of the image table (0: default)
  double snr_ve = 0.16, snr_vp = 0.01;
  fs::path ddpm_checkpoint, ncsn_checkpoint;
};

struct Sizes {
  int64_t toy_n;                    // 2D samples per table cell
  int seeds;                        // seeds per 2D cell
  int64_t toy_N;                    // the 2D table's N: P N, P 2N, C 2N, PC N
  int64_t coarse_N;                 // the same table with few steps
  int64_t image_n;                  // images per image-table cell
  int64_t image_N;                  // the image table's N
  int64_t lik_2d_n;                 // points of the exact 2D likelihood check
  int64_t hutch_n;                  // points of the Hutchinson study
  int64_t lik_images;               // test images whose bits/dim are computed
  double lik_tol;                   // dopri5 rtol = atol of the image likelihoods
  int64_t enc_n;                    // 2D points encoded
  int64_t train_steps;              // steps of each of the two 2D score MLPs
  int64_t enc_images;               // test images encoded and decoded
  double image_tol;                 // dopri5 tolerance of image encodings and decodings
  int interp_frames;                // frames of the interpolation strip
  int temp_rows;                    // latents of the temperature strip
  int64_t cost_images;              // images per point of the image quality-vs-cost curve
  int cost_seeds;                   // seeds per point of the 2D quality-vs-cost curves
  std::vector<int64_t> cost_steps;  // their fixed step budgets (NFE)
};
Sizes sizes_for(bool quick) {
  Sizes s;
  s.toy_n = quick ? 500 : 2000;
  s.seeds = quick ? 3 : 5;
  s.toy_N = quick ? 100 : 1000;
  s.coarse_N = quick ? 10 : 20;
  s.image_n = quick ? 8 : 64;
  s.image_N = quick ? 10 : 100;
  s.lik_2d_n = quick ? 200 : 1000;
  s.hutch_n = quick ? 200 : 400;
  s.lik_images = quick ? 2 : 8;
  s.lik_tol = quick ? 1e-3 : 1e-5;
  s.enc_n = quick ? 400 : 1000;
  s.train_steps = quick ? 400 : 6000;
  s.enc_images = quick ? 2 : 4;
  s.image_tol = quick ? 1e-3 : 1e-5;
  s.interp_frames = quick ? 5 : 9;
  s.temp_rows = quick ? 1 : 4;
  s.cost_images = quick ? 8 : 64;
  s.cost_seeds = quick ? 2 : 5;
  s.cost_steps = {2, 5, 10, 20, 50, 100, 200};
  if (!quick) s.cost_steps.push_back(500);
  return s;
}

std::string fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// Writes a text file the book includes (a Markdown table).
void write_text(const fs::path& path, const std::string& text) {
  std::ofstream f(path);
  f << text;
  if (!f) throw dm::Error("cannot write " + path.string());
}

// The roughness of images [N, 1, H, W]: the mean |difference| of horizontally
// adjacent pixels (clamped to [−1, 1]), per image. Noise left in an image raises it.
Tensor roughness(const Tensor& x) {
  const auto c = x.clamp(-1, 1);
  const int64_t w = c.size(3);
  return (c.narrow(3, 1, w - 1) - c.narrow(3, 0, w - 1)).abs().flatten(1).mean(1);
}

// A model that forwards to another and shows how far an ODE solve has got:
// the share of [from, to] its evaluations have reached, and their count.
class ShowProgress : public dm::Model {
 public:
  ShowProgress(dm::Model& inner, const std::string& label, double from, double to)
      : inner_(inner), progress_(label, 1000), from_(from), to_(to) {}
  dm::Prediction prediction() const override { return inner_.prediction(); }
  Tensor predict(const Tensor& x, const Tensor& t, const dm::Condition& c = {}) override {
    const double tt = t.dim() == 0 ? t.item<double>() : t.flatten()[0].item<double>();
    const auto done =
        std::clamp<int64_t>(int64_t(std::lround(1000.0 * (tt - from_) / (to_ - from_))), 0, 1000);
    ++calls_;
    if (done > done_) {
      progress_.tick(done - done_, std::to_string(calls_) + " evaluations");
      done_ = done;
    }
    return inner_.predict(x, t, c);
  }
  void finish() {
    progress_.tick(1000 - done_, std::to_string(calls_) + " evaluations");
    done_ = 1000;
    progress_.finish();
  }

 private:
  dm::Model& inner_;
  dm::Progress progress_;
  double from_, to_;
  int64_t done_ = 0, calls_ = 0;
};

// ---------------------------------------------------------------------------
// The sampler table: rows are predictors, columns the budgets of Song et al.'s Table 1
// ---------------------------------------------------------------------------
const std::vector<pc::Predictor> kRows = {
    pc::Predictor::ancestral, pc::Predictor::reverse_diffusion, pc::Predictor::probability_flow};
std::string row_title(pc::Predictor p) {
  switch (p) {
    case pc::Predictor::ancestral: return "ancestral sampling";
    case pc::Predictor::reverse_diffusion: return "reverse diffusion";
    case pc::Predictor::probability_flow: return "probability flow";
    case pc::Predictor::euler_maruyama: return "Euler–Maruyama";
    default: return pc::to_string(p);
  }
}
// P N: predictor only, N steps; P 2N: predictor only, 2N steps; C 2N: corrector
// only (Langevin), 2N steps; PC N: N steps of predictor + one corrector step.
enum class Column { p_n, p_2n, c_2n, pc_n };
const std::vector<Column> kColumns = {Column::p_n, Column::p_2n, Column::c_2n, Column::pc_n};
std::string column_key(Column c) {
  switch (c) {
    case Column::p_n: return "P_N";
    case Column::p_2n: return "P_2N";
    case Column::c_2n: return "C_2N";
    case Column::pc_n: return "PC_N";
  }
  return "?";
}
std::string column_title(Column c, int64_t N) {
  switch (c) {
    case Column::p_n: return "P" + std::to_string(N);
    case Column::p_2n: return "P" + std::to_string(2 * N);
    case Column::c_2n: return "C" + std::to_string(2 * N);
    case Column::pc_n: return "PC" + std::to_string(N);
  }
  return "?";
}
// Song et al. (2021), Table 1: CIFAR-10 FID (P1000, P2000, C2000, PC1000), "–" where not run.
std::string paper_cells(const std::string& sde_key, pc::Predictor p) {
  static const std::map<std::string, std::string> t = {
      {"ve ancestral", "4.98 / 4.88 / – / 3.62"},
      {"ve reverse_diffusion", "4.79 / 4.74 / 20.43 / 3.60"},
      {"ve probability_flow", "15.41 / 10.54 / – / 3.51"},
      {"vp ancestral", "3.24 / 3.24 / – / 3.21"},
      {"vp reverse_diffusion", "3.21 / 3.19 / 19.06 / 3.18"},
      {"vp probability_flow", "3.59 / 3.23 / – / 3.06"}};
  return t.at(sde_key + " " + pc::to_string(p));
}

// ANCHOR: table_cell
// The sampler of one cell. The corrector runs before the predictor at each
// time (the reference code's loop); the corrector-only column has the same
// sampler in every row, so it is run once (shown in the reverse-diffusion row,
// as in the paper).
pc::SampleOptions table_cell(pc::Predictor row, Column col, int64_t N, double snr) {
  pc::SampleOptions o;
  o.order = pc::Order::corrector_then_predictor;
  o.corrector_options.snr = snr;  // ε = 2α (r ‖z‖ / ‖s‖)², one step per time
  o.corrector_options.steps = 1;
  o.predictor = col == Column::c_2n ? pc::Predictor::none : row;
  o.corrector =
      (col == Column::c_2n || col == Column::pc_n) ? pc::Corrector::langevin : pc::Corrector::none;
  o.steps = (col == Column::p_2n || col == Column::c_2n) ? 2 * N : N;
  return o;
}
// ANCHOR_END: table_cell
int64_t cell_nfe(Column col, int64_t N) { return col == Column::p_n ? N : 2 * N; }

struct Summary {
  double mean = 0, std = 0;
};
Summary summarise(const Vec& v) {
  Summary s;
  for (double x : v) s.mean += x / double(v.size());
  for (double x : v)
    s.std += (x - s.mean) * (x - s.mean) / double(std::max<size_t>(v.size() - 1, 1));
  s.std = std::sqrt(s.std);
  return s;
}

// ---------------------------------------------------------------------------
// 1. The sampler table on the 2D mixture, exact score
// ---------------------------------------------------------------------------
std::vector<std::shared_ptr<const sde::SDE>> table_sdes() {
  return {std::make_shared<sde::VE>(0.01, 10.0), std::make_shared<sde::VP>()};
}
double snr_for(const sde::SDE& s, const Options& o) {
  return sde::key_of(s) == "ve" ? o.snr_ve : o.snr_vp;
}

// One table (N steps) into metrics[key] and <out>/<key>.md.
void toy_table(const dm::Chapter& ch, const Options& opt, const Sizes& sz, int64_t N,
               const std::string& key, const dm::metrics::NoiseFloor& floor,
               dm::MetricsFile& metrics) {
  const auto gm = dm::toy::three_gaussians();
  const int64_t n = sz.toy_n;
  auto& m = metrics[key];
  m["N"] = N;
  m["n"] = n;
  m["seeds"] = sz.seeds;
  m["floor"] = {{"mean", floor.mean}, {"std", floor.std}, {"repeats", floor.repeats}};
  m["order"] = "corrector_then_predictor";
  m["corrector_steps"] = 1;
  m["snr"] = {{"ve", opt.snr_ve}, {"vp", opt.snr_vp}};
  // ED / floor of one sampler over the seeds (seed k: the generator of stream k).
  // (seed 0's samples of every cell are kept for the figure)
  auto measure = [&](dm::Model& model, std::shared_ptr<const sde::SDE> s,
                     const pc::SampleOptions& o, Tensor& first) {
    Vec ratios;
    for (int k = 0; k < sz.seeds; ++k) {
      auto gen = stream(100 + uint64_t(k));
      const auto x = pc::sample(model, s, {n, 2}, gen, o);
      ratios.push_back(dm::metrics::energy_distance(x, gm.sample(n, rng())) / floor.mean);
      if (k == 0) first = x;
    }
    return ratios;
  };
  std::map<std::string, Tensor> samples;  // "<sde> <row> <column>" → seed 0's samples
  dm::Progress progress("table N = " + std::to_string(N), 2 * 10);
  std::string md = "| SDE | predictor |";
  for (auto c : kColumns) md += " " + column_title(c, N) + " |";
  md += " Song et al. Table 1, CIFAR-10 FID (P1000 / P2000 / C2000 / PC1000) |\n|---|---|";
  for (size_t i = 0; i < kColumns.size(); ++i) md += "---|";
  md += "---|\n";
  std::string printed;
  for (const auto& s : table_sdes()) {
    dm::toy::PerturbedMixture exact(gm, s);  // ∇log p_t at every t
    const auto sk = sde::key_of(*s);
    for (auto row : kRows) {
      md += "| " + s->name() + " | " + row_title(row) + " |";
      char head[64];
      std::snprintf(head, sizeof head, "  %-4s%-20s", s->name().c_str(), row_title(row).c_str());
      printed += head;
      for (auto col : kColumns) {
        if (col == Column::c_2n && row != pc::Predictor::reverse_diffusion) {
          md += " – |";
          printed += "               –";  // a dash in the 16 columns of a cell
          continue;
        }
        auto& kept = samples[sk + " " + pc::to_string(row) + " " + column_key(col)];
        const auto ratios = measure(exact, s, table_cell(row, col, N, snr_for(*s, opt)), kept);
        progress.tick();
        const auto sum = summarise(ratios);
        m[sk][pc::to_string(row)][column_key(col)] = {
            {"mean", sum.mean}, {"std", sum.std}, {"values", ratios}, {"nfe", cell_nfe(col, N)}};
        const std::string cell = fmt("%.2f", sum.mean) + " ± " + fmt("%.2f", sum.std);
        md += " " + cell + " |";
        char buf[64];
        std::snprintf(buf, sizeof buf, "  %15s", cell.c_str());  // "±" is two bytes
        printed += buf;
      }
      md += " " + paper_cells(sk, row) + " |\n";
      printed += "\n";
    }
  }
  progress.finish();
  std::printf("  %-24s", "ED / floor, mean ± std");
  for (auto c : kColumns) std::printf("  %14s", column_title(c, N).c_str());
  std::printf("\n%s", printed.c_str());
  md += "\nEnergy distance to a fresh exact sample divided by its noise floor (" +
        fmt("%.3g", floor.mean) + ", the same statistic between two exact samples, mean of " +
        std::to_string(floor.repeats) + " pairs), n = " + std::to_string(n) +
        " samples per run, mean ± std over " + std::to_string(sz.seeds) +
        " seeds; exact score of the mixture; Langevin corrector before the predictor at each "
        "time (the reference code's order), one corrector step, snr r = " +
        fmt("%.2g", opt.snr_ve) + " (VE), " + fmt("%.2g", opt.snr_vp) +
        " (VP); network evaluations: P N = N, every other column 2N. 1 = as good as exact "
        "samples.\n";
  write_text(ch.out(key + ".md"), md);
  metrics["tables"].push_back(key + ".md");

  // Samples of five cells per SDE (seed 0).
  const std::vector<std::pair<pc::Predictor, Column>> shown = {
      {pc::Predictor::ancestral, Column::p_n},
      {pc::Predictor::reverse_diffusion, Column::p_n},
      {pc::Predictor::probability_flow, Column::p_n},
      {pc::Predictor::reverse_diffusion, Column::pc_n},
      {pc::Predictor::reverse_diffusion, Column::c_2n}};
  dm::plot::Figure fig(2, 5, 1750, 720);
  int panel = 0;
  for (const auto& s : table_sdes()) {
    for (const auto& [row, col] : shown) {
      const auto sk = sde::key_of(*s);
      const auto& x = samples.at(sk + " " + pc::to_string(row) + " " + column_key(col));
      const double r = m[sk][pc::to_string(row)][column_key(col)]["mean"];
      const std::string what = col == Column::c_2n ? "corrector only" : row_title(row);
      fig.ax(panel)
          .title(s->name() + ", " + what + ", " + column_title(col, N) + ": " + fmt("%.1f", r) +
                 "× floor")
          .equal_aspect()
          .xrange(-4.5, 4.5)
          .yrange(-4.5, 4.5)
          .points(dm::plot::to_vec(x.select(1, 0)), dm::plot::to_vec(x.select(1, 1)), "",
                  {dm::plot::color(panel % 5), 1, 0.3, 0.5});
      ++panel;
    }
  }
  fig.save(ch.out(key + "_samples"));
  metrics.figure(key + "_samples.svg");
}

void toy_tables(const dm::Chapter& ch, const Options& opt, const Sizes& sz,
                dm::MetricsFile& metrics) {
  std::cout << "\n[1/5] the sampler table on a 2D mixture with its exact score (Song et al., "
               "Table 1)\n";
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);  // small 2D batches: one thread is fastest
  const auto gm = dm::toy::three_gaussians();
  const int64_t n = sz.toy_n;
  const auto floor = dm::metrics::noise_floor([&](int64_t m) { return gm.sample(m, rng()); }, n,
                                              dm::metrics::energy_distance, 10);
  std::printf(
      "  energy distance to a fresh exact sample, n = %lld, over its noise floor %.3g ± %.2g "
      "(10 pairs of exact samples); %d seeds per cell\n"
      "  order: the corrector runs before the predictor at each time (the reference code's "
      "loop; the paper's Algorithms 2–3 run it after); snr r = %.2g (VE), %.2g (VP)\n"
      "  probability flow = the PF ODE discretised as reverse diffusion, x' = x − f_i + ½ G_i² s\n",
      (long long)n, floor.mean, floor.std, sz.seeds, opt.snr_ve, opt.snr_vp);
  for (auto [N, key] : {std::pair<int64_t, std::string>{sz.toy_N, "table_2d"},
                        std::pair<int64_t, std::string>{sz.coarse_N, "table_2d_coarse"}}) {
    std::printf("  -- N = %lld\n", (long long)N);
    toy_table(ch, opt, sz, N, key, floor, metrics);
  }
  // The other order for one cell: VE, reverse diffusion, PC N.
  {
    auto s = table_sdes()[0];
    dm::toy::PerturbedMixture exact(gm, s);
    auto o = table_cell(pc::Predictor::reverse_diffusion, Column::pc_n, sz.coarse_N, opt.snr_ve);
    auto& m = metrics["other_order"];
    m["sde"] = "ve";
    m["row"] = "reverse_diffusion";
    m["column"] = "PC_N";
    m["N"] = sz.coarse_N;
    for (auto order : {pc::Order::corrector_then_predictor, pc::Order::predictor_then_corrector}) {
      o.order = order;
      Vec ratios;
      for (int k = 0; k < sz.seeds; ++k) {
        auto gen = stream(100 + uint64_t(k));
        const auto x = pc::sample(exact, s, {n, 2}, gen, o);
        ratios.push_back(dm::metrics::energy_distance(x, gm.sample(n, rng())) / floor.mean);
      }
      const auto sum = summarise(ratios);
      const std::string name = order == pc::Order::corrector_then_predictor
                                   ? "corrector_then_predictor"
                                   : "predictor_then_corrector";
      m[name] = {{"mean", sum.mean}, {"std", sum.std}, {"values", ratios}};
      std::printf("  VE, reverse diffusion, PC%lld, %s: ED / floor %.2f ± %.2f\n",
                  (long long)sz.coarse_N,
                  order == pc::Order::corrector_then_predictor ? "corrector first (C then P)"
                                                               : "predictor first (P then C)",
                  sum.mean, sum.std);
    }
  }
  torch::set_num_threads(threads);
}

// ---------------------------------------------------------------------------
// The shipped image models as SDE models (chapter 05 shows the mapping)
// ---------------------------------------------------------------------------
struct ImageSde {
  std::string key, title;
  std::shared_ptr<const sde::SDE> sde;
  std::unique_ptr<dm::nn::NetModel> model;
  double t_end = -1;     // where sampling stops
  bool tweedie = false;  // end with Tweedie's denoising step (one more evaluation)
  double snr = 0.16;
  // The final denoising step, if any (x̂_0 at t_end).
  Tensor finish(const Tensor& x) const {
    if (!tweedie) return x;
    c10::InferenceMode inference;
    return dm::predict_as(dm::Prediction::x0, *model, *sde, x, t_end);
  }
};

struct ImageModels {
  dm::app::ShippedUNet ddpm, ncsn;
  ImageSde vp, ve;
};

ImageModels load_image_models(const Options& o, const torch::Device& dev) {
  ImageModels im;
  im.ddpm = dm::app::load_unet(o.ddpm_checkpoint, dev);
  im.ncsn = dm::app::load_unet(o.ncsn_checkpoint, dev);
  // DDPM (chapter 04): the VP SDE with DDPM's β range; the network sees DDPM's
  // index i − 1 at t = i/1000.
  {
    auto vp = std::make_shared<sde::VP>();
    dm::nn::NetSpec spec = im.ddpm.spec;
    spec.time = {dm::nn::TimeLabel::Kind::affine, 1000.0, -1.0};
    im.vp.key = "vp";
    im.vp.title = "DDPM as a VP SDE";
    im.vp.sde = vp;
    im.vp.model = std::make_unique<dm::nn::NetModel>(im.ddpm.net, spec, vp);
    im.vp.t_end = vp->sampling_eps();  // 10⁻³: label 0
    im.vp.snr = o.snr_vp;
  }
  // NCSN (chapter 03): the VE SDE over its σ range; sampling stops where
  // s(t) = σ_min, the smallest level it was trained on, then Tweedie.
  {
    const double sigma_max = im.ncsn.description.value("sigma_max", 50.0),
                 sigma_min = im.ncsn.description.value("sigma_min", 0.01);
    auto ve = std::make_shared<sde::VE>(sigma_min, sigma_max);
    im.ve.key = "ve";
    im.ve.title = "NCSN as a VE SDE";
    im.ve.sde = ve;
    im.ve.model = std::make_unique<dm::nn::NetModel>(im.ncsn.net, im.ncsn.spec, ve);
    im.ve.t_end = ve->time_of_std(sigma_min);
    im.ve.tweedie = true;
    im.ve.snr = o.snr_ve;
  }
  return im;
}

// n images from a PC sampler, in batches, clamped to [−1, 1].
Tensor pc_images(const ImageSde& m, pc::SampleOptions o, int64_t n, at::Generator& gen,
                 const torch::Device& dev, const std::string& label) {
  o.t_end = m.t_end;
  o.run.progress_label = label;
  const auto options = torch::TensorOptions().device(dev);
  return dm::app::sample_in_batches(
             n, 64,
             [&](int64_t b, int64_t) {
               return m.finish(pc::sample(*m.model, m.sde, {b, 1, 32, 32}, gen, o, options));
             })
      .clamp(-1, 1);
}

// ---------------------------------------------------------------------------
// 2. The sampler table on Fashion-MNIST
// ---------------------------------------------------------------------------
void image_table(const dm::Chapter& ch, const Sizes& sz, ImageModels& im,
                 const dm::data::Dataset& train_set, const dm::data::Dataset& test_set,
                 dm::MetricsFile& metrics) {
  const auto& opt = ch.options();
  const int64_t n = sz.image_n, N = sz.image_N;
  std::printf(
      "\n[2/5] the sampler table on Fashion-MNIST with the shipped models: N = %lld (the paper: "
      "1000), %lld images per cell (the paper: 50 000), one seed; quality by KID ± its standard "
      "error in the suite's classifier features\n",
      (long long)N, (long long)n);
  auto& m = metrics["table_images"];
  m["N"] = N;
  m["n"] = n;
  m["order"] = "corrector_then_predictor";
  std::string md = "| model | predictor |";
  for (auto c : kColumns) md += " " + column_title(c, N) + " |";
  md += "\n|---|---|";
  for (size_t i = 0; i < kColumns.size(); ++i) md += "---|";
  md += "\n";
  json floor;
  // Samples rougher than twice the test images' mean roughness: noise left in them.
  const double data_rough = roughness(test_set.images.slice(0, 0, 256)).mean().item<double>();
  for (ImageSde* s : {&im.ve, &im.vp}) {
    std::printf("  %s: snr r = %.2g, sampling down to t = %.3g%s\n", s->title.c_str(), s->snr,
                s->t_end, s->tweedie ? ", then Tweedie's denoising step (+1 evaluation)" : "");
    std::vector<Tensor> shown;
    std::vector<std::string> shown_rows;
    auto gen = dm::default_generator(opt.device);
    for (auto row : kRows) {
      md += "| " + s->title + " | " + row_title(row) + " |";
      for (auto col : kColumns) {
        if (col == Column::c_2n && row != pc::Predictor::reverse_diffusion) {
          md += " – |";
          continue;
        }
        const std::string label = s->key + " " + pc::to_string(row) + " " + column_title(col, N);
        const auto x =
            pc_images(*s, table_cell(row, col, N, s->snr), n, gen, opt.device, "  " + label);
        std::printf("  -- %s, %s, %s\n", s->title.c_str(), row_title(row).c_str(),
                    column_title(col, N).c_str());
        const auto report =
            dm::quality::report_samples(x, train_set.images, test_set.images, opt.device);
        auto cell = report.to_json();
        cell["nfe"] = cell_nfe(col, N) + (s->tweedie ? 1 : 0);
        cell["noisy_share"] =
            (roughness(x) > 2 * data_rough).to(torch::kFloat64).mean().item<double>();
        m[s->key][pc::to_string(row)][column_key(col)] = cell;
        floor = cell["kid_floor_train_vs_test"];
        md += " " + fmt("%.3f", report.kid.value) + " ± " + fmt("%.3f", report.kid.se) + " |";
        shown.push_back(x.slice(0, 0, std::min<int64_t>(n, 8)));
        shown_rows.push_back(row_title(row) + ", " + column_title(col, N));
      }
      md += "\n";
    }
    // One row of samples per cell, in the order of the table.
    const auto grid = torch::cat(shown);
    dm::image::save_grid(dm::app::enlarge(grid, 2), ch.out("table_images_" + s->key + ".png"),
                         int(std::min<int64_t>(n, 8)));
    metrics.figure("table_images_" + s->key + ".png");
    m[s->key]["grid_rows"] = shown_rows;
  }
  md +=
      "\nKID (unbiased MMD² in the suite's Fashion-MNIST classifier features, not Inception) "
      "± its standard error over " +
      std::to_string(floor.value("blocks", 0)) + " blocks, n = " + std::to_string(n) +
      " samples against " + std::to_string(n) +
      " test images; real-vs-real (train vs test) at this n: " +
      fmt("%.3f", floor.value("value", 0.0)) + " ± " + fmt("%.3f", floor.value("se", 0.0)) +
      ". One seed. Corrector before predictor, one step, snr " + fmt("%.2g", im.ve.snr) +
      " (VE), " + fmt("%.2g", im.vp.snr) +
      " (VP). NCSN stops at σ = σ_min and adds Tweedie's denoising step (+1 evaluation).\n";
  write_text(ch.out("table_images.md"), md);
  metrics["tables"].push_back("table_images.md");
}

// ---------------------------------------------------------------------------
// 3. Likelihoods
// ---------------------------------------------------------------------------
void likelihoods(const dm::Chapter& ch, const Sizes& sz, ImageModels& im,
                 const dm::data::Dataset& test_set, dm::MetricsFile& metrics) {
  std::cout << "\n[3/5] likelihoods by the probability-flow ODE\n";
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  const auto gm = dm::toy::three_gaussians();
  auto& m = metrics["likelihood"];

  // (a) The exact check: log p_ε(x) from the ODE with the exact score against
  // the mixture blurred to t = ε, for all three SDEs; the prior term first
  // exact (p_T of the blurred mixture), then the SDE's N(0, σ_T² I).
  std::printf(
      "  (a) the ODE's log p_ε(x) with the exact score against the mixture's own log density at "
      "t = ε, %lld data points, exact divergence (2 vector–Jacobian products per evaluation)\n",
      (long long)sz.lik_2d_n);
  const auto x = gm.sample(sz.lik_2d_n, rng());
  m["check_n"] = sz.lik_2d_n;
  const std::vector<std::shared_ptr<const sde::SDE>> three = {std::make_shared<sde::VE>(0.01, 10.0),
                                                              std::make_shared<sde::VP>(),
                                                              std::make_shared<sde::SubVP>()};
  for (const auto& s : three) {
    dm::toy::PerturbedMixture exact(gm, s);
    const auto truth = exact.at(s->sampling_eps()).log_prob(x);
    for (double tol : {1e-3, 1e-5, 1e-7}) {
      // ANCHOR: exact_likelihood
      flow::LikelihoodOptions o;
      o.divergence = flow::Divergence::exact;
      o.ode.rtol = o.ode.atol = tol;
      o.prior_log_prob = [&](const Tensor& z) { return exact.at(s->t_max()).log_prob(z); };
      const auto r = flow::log_likelihood(exact, s, x, rng(), o);
      const double err = (r.log_prob - truth).abs().max().item<double>();
      // ANCHOR_END: exact_likelihood
      o.prior_log_prob = nullptr;  // the SDE's Gaussian prior: its mismatch adds to the error
      const auto g = flow::log_likelihood(exact, s, x, rng(), o);
      const double gap = (g.log_prob - truth).abs().max().item<double>();
      const auto tk = fmt("%.0e", tol);
      m["check"][sde::key_of(*s)][tk] = {
          {"max_abs_error", err},
          {"mean_abs_error", (r.log_prob - truth).abs().mean().item<double>()},
          {"max_abs_error_gaussian_prior", gap},
          {"nfe", r.stats.nfe},
          {"rejected", r.stats.rejected}};
      std::printf(
          "    %-6s rtol = atol = %.0e: max |Δ log p| = %.2e (exact p_T), %.2e with the prior N(0, "
          "%.3g² I); %lld evaluations (%lld steps rejected)\n",
          s->name().c_str(), tol, err, gap, s->prior_std(), (long long)r.stats.nfe,
          (long long)r.stats.rejected);
    }
  }

  // (b) Hutchinson's estimate: its spread over points against the number of probes.
  {
    auto s = std::make_shared<sde::VP>();
    dm::toy::PerturbedMixture exact(gm, s);
    const auto xh = gm.sample(sz.hutch_n, rng());
    flow::LikelihoodOptions o;
    o.prior_log_prob = [&](const Tensor& z) { return exact.at(s->t_max()).log_prob(z); };
    const auto reference = flow::log_likelihood(exact, s, xh, rng(), o).log_prob;
    const Vec probes = {1, 2, 4, 8, 16};
    std::printf(
        "  (b) Hutchinson's divergence (VP, %lld points): the spread of log p around the exact "
        "divergence's, against the probes K per point (fixed along each solve)\n",
        (long long)sz.hutch_n);
    dm::plot::Figure fig(1, 1, 760, 460);
    fig.ax()
        .title("Hutchinson: spread of the log-likelihood (VP, 2D, n = " +
               std::to_string(sz.hutch_n) + ")")
        .xlabel("probes K per point")
        .ylabel("std of log p (Hutchinson) − log p (exact divergence), nats")
        .logx()
        .logy();
    auto& mh = m["hutchinson"];
    mh["n"] = sz.hutch_n;
    mh["probes"] = probes;
    int c = 0;
    Vec first;
    for (auto kind :
         {flow::Divergence::hutchinson_rademacher, flow::Divergence::hutchinson_gaussian}) {
      const std::string name =
          kind == flow::Divergence::hutchinson_rademacher ? "rademacher" : "gaussian";
      Vec sds, means;
      for (double K : probes) {
        o.divergence = kind;
        o.probes = int64_t(K);
        const auto err = flow::log_likelihood(exact, s, xh, rng(), o).log_prob - reference;
        sds.push_back(err.std().item<double>());
        means.push_back(err.mean().item<double>());
      }
      mh[name] = {{"std", sds}, {"mean", means}};
      std::printf("    %-10s", name.c_str());
      for (size_t i = 0; i < probes.size(); ++i)
        std::printf(" K=%g: %.3f (mean %+.3f)", probes[i], sds[i], means[i]);
      std::printf("\n");
      fig.ax().linepoints(probes, sds, name + " probes", {dm::plot::color(c++)});
      if (first.empty()) first = sds;
    }
    Vec ref;
    for (double K : probes) ref.push_back(first[0] / std::sqrt(K));
    fig.ax().line(probes, ref, "1/√K", {"#777777", 1.5, 0.4, 1.0, true});
    fig.save(ch.out("hutchinson"));
    metrics.figure("hutchinson.svg");
    std::printf(
        "    the spread falls as 1/√K; Rademacher probes (±1) give less than Gaussian ones: for "
        "vᵀAv the variance is 2 Σ_{i≠j} A_ij² against 2 Σ_ij A_ij²\n");
  }
  torch::set_num_threads(threads);

  // (c) Bits/dim of Fashion-MNIST test images, dequantised.
  const int64_t k = sz.lik_images, D = 32 * 32;
  std::printf(
      "  (c) bits/dim of %lld Fashion-MNIST test images (dequantised: x = 2(p + u)/256 − 1, "
      "u ~ U(0, 1); D = %lld, the 28×28 images padded to 32×32), dopri5 rtol = atol = %.0e, "
      "Hutchinson with 1 Rademacher probe per image, fixed along the solve (the reference's "
      "choice)\n",
      (long long)k, (long long)D, sz.lik_tol);
  const auto& opt = ch.options();
  auto gen = stream(300);
  const auto images =
      flow::dequantize(test_set.images.slice(0, 0, k), gen).to(opt.device, torch::kFloat64);
  for (ImageSde* s : {&im.vp, &im.ve}) {
    ShowProgress shown(*s->model, "  " + s->key + " likelihood", s->t_end, s->sde->t_max());
    flow::LikelihoodOptions o;
    o.divergence = flow::Divergence::hutchinson_rademacher;
    o.probes = 1;
    o.ode.rtol = o.ode.atol = sz.lik_tol;
    o.t_end = s->t_end;
    dm::Timer timer;
    // ANCHOR: bits_per_dim
    const auto r = flow::log_likelihood(shown, s->sde, images, gen, o);
    const auto bpd = flow::bits_per_dim(r.log_prob.cpu(), D);  // + 7 bits: 256 levels on [−1, 1]
    // ANCHOR_END: bits_per_dim
    shown.finish();
    const double mean = bpd.mean().item<double>(), sd = k > 1 ? bpd.std().item<double>() : 0.0;
    const auto prior_bpd = flow::bits_per_dim(r.prior.cpu(), D) - 7.0;
    m["images"][s->key] = {{"bits_per_dim", dm::plot::to_vec(bpd)},
                           {"mean", mean},
                           {"std", sd},
                           {"se", sd / std::sqrt(double(k))},
                           {"images", k},
                           {"nfe", r.stats.nfe},
                           {"rejected", r.stats.rejected},
                           {"tolerance", sz.lik_tol},
                           {"probes", 1},
                           {"t_end", s->t_end},
                           {"dims", D},
                           {"seconds", timer.seconds()},
                           {"prior_term_bits_per_dim", prior_bpd.mean().item<double>()}};
    std::printf(
        "    %-17s %.3f ± %.3f bits/dim (mean ± std over %lld images; s.e. %.3f; range %.3f … "
        "%.3f), data at t = %.3g, %lld evaluations (%lld rejected), %.0f s\n",
        s->title.c_str(), mean, sd, (long long)k, sd / std::sqrt(double(k)),
        bpd.min().item<double>(), bpd.max().item<double>(), s->t_end, (long long)r.stats.nfe,
        (long long)r.stats.rejected, timer.seconds());
  }
  m["images"]["ddpm_elbo"] = nullptr;
  std::printf(
      "    (DDPM's variational bound in bits/dim, Ho et al.'s L_vlb, is not in the library yet: "
      "not shown beside; the ODE's value is an exact likelihood of the model's ODE, not a "
      "bound)\n");
}

// ---------------------------------------------------------------------------
// 4. Encodings
// ---------------------------------------------------------------------------
// Continuous DSM on the VP SDE, as chapter 05 trains it: a small ε-MLP.
struct TrainedMlp {
  dm::nn::ScoreMLP net{nullptr};
  std::unique_ptr<dm::nn::NetModel> model;
  std::unique_ptr<dm::train::Trainer> trainer;
  double loss_first = 0, loss_last = 0;
};
TrainedMlp train_mlp(const dm::toy::GaussianMixture& gm, std::shared_ptr<const sde::SDE> s,
                     int64_t hidden, int64_t layers, uint64_t stream_id, int64_t steps) {
  TrainedMlp t;
  torch::manual_seed(dm::stream_seed(g_seed, stream_id));  // its own initial weights
  auto gen = stream(stream_id);                            // and its own data and noise
  dm::nn::MLPConfig mc;
  mc.hidden = hidden;
  mc.layers = layers;
  t.net = dm::nn::ScoreMLP(mc);
  dm::nn::NetSpec spec;
  spec.prediction = dm::Prediction::eps;
  spec.time = {dm::nn::TimeLabel::Kind::affine, 999.0, 0.0};
  spec.input = dm::nn::InputScaling::unit_variance;
  t.model = std::make_unique<dm::nn::NetModel>(t.net, spec, s);
  dm::train::TrainConfig tc;
  tc.steps = steps;
  tc.lr = 2e-3;
  tc.warmup = 100;
  tc.ema_decay = 0.995;
  tc.log_every = 50;
  tc.checkpoint_every = tc.steps;
  t.trainer =
      std::make_unique<dm::train::Trainer>(t.net.ptr(), dm::nn::to_json(mc), tc, torch::kCPU);
  const auto result = t.trainer->run(
      [&](int64_t) {
        const auto x0 = gm.sample(512, gen).to(torch::kFloat32);
        return sde::loss(*t.model, *s, x0, gen);  // t ~ U(ε, 1), λ = s(t)²
      },
      /*checkpoint=*/{}, false, {},
      "train MLP " + std::to_string(hidden) + "×" + std::to_string(layers));
  t.loss_first = result.losses.front();
  t.loss_last = result.losses.back();
  return t;
}

void encodings(const dm::Chapter& ch, const Sizes& sz, ImageModels& im,
               const dm::data::Dataset& test_set, dm::MetricsFile& metrics) {
  std::cout << "\n[4/5] encodings: the probability-flow ODE as an invertible map to latents\n";
  const auto& opt = ch.options();
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  const auto gm = dm::toy::three_gaussians();
  auto vp = std::make_shared<sde::VP>();
  dm::toy::PerturbedMixture exact(gm, vp);
  auto& m = metrics["encodings"];

  // (a) The round trip x → z → x' against the tolerance, with the error norm
  // over the whole batch (scipy's, the reference's) and per row.
  torch::Tensor components;
  const auto x = gm.sample(sz.enc_n, rng(), &components);
  const Vec tols = {1e-2, 1e-3, 1e-4, 1e-5, 1e-6, 1e-7};
  std::printf(
      "  (a) encode then decode %lld points of the mixture (VP, exact score): ‖x − x'‖ against "
      "the dopri5 tolerance (rtol = atol)\n",
      (long long)sz.enc_n);
  dm::plot::Figure fig(1, 2, 1400, 460);
  fig.ax(0)
      .title("round trip x → z → x' (VP, exact score, n = " + std::to_string(sz.enc_n) + ")")
      .xlabel("rtol = atol")
      .ylabel("‖x − x'‖")
      .logx()
      .logy();
  fig.ax(1)
      .title("evaluations of encode + decode")
      .xlabel("rtol = atol")
      .ylabel("NFE")
      .logx()
      .logy();
  int c = 0;
  for (bool per_row : {false, true}) {
    Vec med, mx, nfe;
    const std::string name = per_row ? "per_row" : "batch_rms";
    for (double tol : tols) {
      // ANCHOR: round_trip
      flow::SolveOptions o;
      o.ode.rtol = o.ode.atol = tol;
      o.ode.per_row = per_row;  // every row meets the tolerance, not only their RMS
      const auto z = flow::encode(exact, vp, x, o);
      const auto back = flow::decode(exact, vp, z.x, o);
      const auto err = (back.x - x).norm(2, 1);
      // ANCHOR_END: round_trip
      med.push_back(err.median().item<double>());
      mx.push_back(err.max().item<double>());
      nfe.push_back(double(z.stats.nfe + back.stats.nfe));
    }
    m["round_trip_2d"][name] = {{"tolerance", tols}, {"median", med}, {"max", mx}, {"nfe", nfe}};
    std::printf("    %-9s", name.c_str());
    for (size_t i = 0; i < tols.size(); ++i)
      std::printf(" %.0e: %.1e/%.1e (%g)", tols[i], med[i], mx[i], nfe[i]);
    std::printf("   [median/max error (NFE)]\n");
    const std::string label = per_row ? "per-row norm" : "batch-RMS norm";
    fig.ax(0)
        .linepoints(tols, med, "median, " + label, {dm::plot::color(c)})
        .linepoints(tols, mx, "max, " + label, {dm::plot::color(c), 2.0, 0.6, 1.0, true});
    fig.ax(1).linepoints(tols, nfe, label, {dm::plot::color(c)});
    ++c;
  }
  fig.ax(0).line(tols, tols, "error = tolerance", {"#777777", 1.5, 0.4, 1.0, true});
  m["round_trip_2d"]["n"] = sz.enc_n;
  fig.save(ch.out("round_trip"));
  metrics.figure("round_trip.svg");
  std::printf(
      "    the batch-RMS norm lets a few rows (near the saddles between modes, where the flow "
      "separates) end far off; the per-row norm holds every row to the tolerance, at more "
      "evaluations\n");

  // (b) Two score models trained independently (other seeds, other widths):
  // the ODE's latents of the same points nearly agree — the encoding belongs
  // to the data distribution, not to the network (Song et al., §4.3).
  std::printf(
      "  (b) two score MLPs trained independently by continuous DSM on the VP SDE (%lld steps "
      "each): A 128 wide × 3 layers (seed stream 1), B 96 wide × 4 layers (seed stream 2)\n",
      (long long)sz.train_steps);
  auto A = train_mlp(gm, vp, 128, 3, 1, sz.train_steps);
  auto B = train_mlp(gm, vp, 96, 4, 2, sz.train_steps);
  dm::nn::UseEmaWeights ema_a(A.trainer->ema(), *A.net), ema_b(B.trainer->ema(), *B.net);
  A.net->eval();
  B.net->eval();
  flow::SolveOptions o;
  o.ode.rtol = o.ode.atol = 1e-5;
  o.ode.per_row = true;
  const auto x32 = x.to(torch::kFloat32);
  const auto zA = flow::encode(*A.model, vp, x32, o).x.to(torch::kFloat64);
  const auto zB = flow::encode(*B.model, vp, x32, o).x.to(torch::kFloat64);
  const auto zE = flow::encode(exact, vp, x, o).x;
  auto mean_dist = [](const Tensor& a, const Tensor& b) {
    return (a - b).norm(2, 1).mean().item<double>();
  };
  const auto perm = torch::randperm(sz.enc_n, rng(), torch::kLong);
  const double ab = mean_dist(zA, zB), ae = mean_dist(zA, zE), be = mean_dist(zB, zE),
               unrelated = mean_dist(zA, zA.index_select(0, perm));
  m["two_models"] = {{"n", sz.enc_n},
                     {"train_steps", sz.train_steps},
                     {"loss_last", {A.loss_last, B.loss_last}},
                     {"mean_distance_a_b", ab},
                     {"mean_distance_a_exact", ae},
                     {"mean_distance_b_exact", be},
                     {"mean_distance_unrelated", unrelated}};
  std::printf(
      "    mean ‖z_A − z_B‖ = %.3f, ‖z_A − z_exact‖ = %.3f, ‖z_B − z_exact‖ = %.3f; between "
      "the latents of unrelated points: %.3f (final losses %.3f, %.3f)\n",
      ab, ae, be, unrelated, A.loss_last, B.loss_last);
  {
    dm::plot::Figure f(1, 3, 1500, 480);
    f.ax(0).title("data x (coloured by component)").equal_aspect();
    f.ax(1).title("latents z = x(1) under model A").equal_aspect();
    for (int64_t k = 0; k < gm.components(); ++k) {
      const auto idx = (components == k).nonzero().flatten();
      const auto xs = x.index_select(0, idx), zs = zA.index_select(0, idx);
      const dm::plot::Style st{dm::plot::color(int(k)), 1, 0.4, 0.6};
      f.ax(0).points(dm::plot::to_vec(xs.select(1, 0)), dm::plot::to_vec(xs.select(1, 1)), "", st);
      f.ax(1).points(dm::plot::to_vec(zs.select(1, 0)), dm::plot::to_vec(zs.select(1, 1)), "", st);
    }
    f.ax(2)
        .title("the same points' latents: model B against model A")
        .xlabel("z under A")
        .ylabel("z under B")
        .equal_aspect()
        .points(dm::plot::to_vec(zA.select(1, 0)), dm::plot::to_vec(zB.select(1, 0)), "z_1",
                {dm::plot::color(0), 1, 0.4, 0.6})
        .points(dm::plot::to_vec(zA.select(1, 1)), dm::plot::to_vec(zB.select(1, 1)), "z_2",
                {dm::plot::color(1), 1, 0.4, 0.6})
        .line({-3.5, 3.5}, {-3.5, 3.5}, "z_B = z_A", {"#777777", 1.5, 0.4, 1.0, true});
    f.save(ch.out("two_models_latents"));
    metrics.figure("two_models_latents.svg");
  }
  torch::set_num_threads(threads);

  // (c) Images: the round trip of a few test images with the VP model.
  ImageSde& s = im.vp;
  const int64_t k = sz.enc_images, D = 32 * 32;
  const auto images = test_set.images.slice(0, 0, k).to(opt.device, torch::kFloat64);
  std::vector<double> image_tols = {1e-3};
  if (sz.image_tol < 1e-3) image_tols.push_back(sz.image_tol);
  flow::SolveOptions io;
  io.t_end = s.t_end;
  Tensor latents;
  for (double tol : image_tols) {
    io.ode.rtol = io.ode.atol = tol;
    const auto z = flow::encode(*s.model, s.sde, images, io);
    const auto back = flow::decode(*s.model, s.sde, z.x, io);
    const auto rms = (back.x - images).pow(2).flatten(1).mean(1).sqrt().cpu();
    const double worst = (back.x - images).abs().max().item<double>();
    m["round_trip_images"][fmt("%.0e", tol)] = {{"rms_per_image", dm::plot::to_vec(rms)},
                                                {"max_abs", worst},
                                                {"nfe_encode", z.stats.nfe},
                                                {"nfe_decode", back.stats.nfe},
                                                {"images", k}};
    std::printf(
        "  (c) %lld test images through the VP model, rtol = atol = %.0e: RMS pixel error %.1e "
        "… %.1e, max |Δ| %.1e (pixels in [−1, 1]; one grey level = 2/255 = 7.8e-3); %lld + %lld "
        "evaluations; ‖z‖/√D = %.3f (the prior's: 1)\n",
        (long long)k, tol, rms.min().item<double>(), rms.max().item<double>(), worst,
        (long long)z.stats.nfe, (long long)back.stats.nfe,
        z.x.flatten(1).norm(2, 1).mean().item<double>() / std::sqrt(double(D)));
    latents = z.x;
  }
  io.ode.rtol = io.ode.atol = sz.image_tol;

  // (d) Interpolation between two test images' latents: along the arc (slerp)
  // and, for contrast, the straight line.
  {
    const int F = sz.interp_frames;
    const auto z0 = latents.slice(0, 0, 1), z1 = latents.slice(0, 1, 2);
    std::vector<Tensor> arc, straight;
    Vec norms_arc, norms_line;
    for (int j = 0; j < F; ++j) {
      const double w = double(j) / (F - 1);
      // ANCHOR: slerp
      arc.push_back(flow::slerp(z0, z1, w));
      straight.push_back((1 - w) * z0 + w * z1);
      // ANCHOR_END: slerp
      norms_arc.push_back(arc.back().norm().item<double>() / std::sqrt(double(D)));
      norms_line.push_back(straight.back().norm().item<double>() / std::sqrt(double(D)));
    }
    const auto zs = torch::cat({torch::cat(arc), torch::cat(straight)});
    ShowProgress shown(*s.model, "  decode interpolation", s.sde->t_max(), s.t_end);
    const auto decoded = flow::decode(shown, s.sde, zs, io);
    shown.finish();
    dm::image::save_grid(dm::app::enlarge(decoded.x.clamp(-1, 1).to(torch::kFloat32).cpu(), 2),
                         ch.out("interpolation.png"), F);
    metrics.figure("interpolation.png");
    m["interpolation"] = {{"frames", F},
                          {"norm_over_sqrt_d_slerp", norms_arc},
                          {"norm_over_sqrt_d_linear", norms_line},
                          {"nfe", decoded.stats.nfe},
                          {"tolerance", sz.image_tol}};
    std::printf(
        "  (d) interpolation between test images 0 and 1 (%d frames; top row slerp, bottom row "
        "straight line): ‖z‖/√D at the middle %.3f (slerp) against %.3f (straight); decoded at "
        "rtol = atol = %.0e, %lld evaluations\n",
        F, norms_arc[F / 2], norms_line[F / 2], sz.image_tol, (long long)decoded.stats.nfe);
  }

  // (e) Temperature: prior latents z ~ N(0, I) scaled by τ and decoded.
  {
    const Vec taus = {0.6, 0.8, 0.9, 1.0, 1.1, 1.2};
    auto gen = stream(400);
    const auto z = dm::randn({sz.temp_rows, 1, 32, 32}, gen,
                             torch::TensorOptions().device(opt.device).dtype(torch::kFloat64));
    std::vector<Tensor> rows;
    for (int64_t r = 0; r < sz.temp_rows; ++r)
      for (double tau : taus) rows.push_back(tau * z.slice(0, r, r + 1));
    ShowProgress shown(*s.model, "  decode temperatures", s.sde->t_max(), s.t_end);
    const auto decoded = flow::decode(shown, s.sde, torch::cat(rows), io);
    shown.finish();
    dm::image::save_grid(dm::app::enlarge(decoded.x.clamp(-1, 1).to(torch::kFloat32).cpu(), 2),
                         ch.out("temperature.png"), int(taus.size()));
    metrics.figure("temperature.png");
    // How rough each column is, against the test images (noise left in an image raises it).
    const auto rough = roughness(decoded.x.cpu()).reshape({sz.temp_rows, int64_t(taus.size())});
    const Vec per_tau = dm::plot::to_vec(rough.mean(0));
    const double data_rough = roughness(test_set.images.slice(0, 0, 256)).mean().item<double>();
    m["temperature"] = {{"taus", taus},
                        {"rows", sz.temp_rows},
                        {"nfe", decoded.stats.nfe},
                        {"roughness", per_tau},
                        {"roughness_test_images", data_rough}};
    std::printf(
        "  (e) temperature: %lld prior latents scaled by τ and decoded (rows: latents, columns: "
        "τ); %lld evaluations; roughness (mean |Δ| of adjacent pixels; test images %.3f):",
        (long long)sz.temp_rows, (long long)decoded.stats.nfe, data_rough);
    for (size_t i = 0; i < taus.size(); ++i) std::printf(" τ = %.1f: %.3f", taus[i], per_tau[i]);
    std::printf("\n");
  }
}

// ---------------------------------------------------------------------------
// 5. Quality against cost
// ---------------------------------------------------------------------------
void quality_vs_cost(const dm::Chapter& ch, const Options& opts, const Sizes& sz, ImageModels& im,
                     const dm::data::Dataset& train_set, const dm::data::Dataset& test_set,
                     dm::MetricsFile& metrics) {
  std::cout << "\n[5/5] quality against network evaluations: adaptive ODE, fixed-step ODE, SDE "
               "and PC samplers\n";
  const auto& opt = ch.options();
  const int threads = torch::get_num_threads();
  torch::set_num_threads(1);
  const auto gm = dm::toy::three_gaussians();
  const int64_t n = sz.toy_n;
  // The table's floor (the same n): one floor for every ratio of the chapter.
  const auto& f = metrics["table_2d"]["floor"];
  const dm::metrics::NoiseFloor floor{f["mean"].get<double>(), f["std"].get<double>(),
                                      f["repeats"].get<int>()};
  auto& m = metrics["cost"];
  m["n"] = n;
  m["floor"] = {{"mean", floor.mean}, {"std", floor.std}, {"repeats", floor.repeats}};
  m["seeds"] = sz.cost_seeds;
  const Vec tols = {1e-1, 1e-2, 1e-3, 1e-4, 1e-5};
  dm::plot::Figure fig(1, 3, 1650, 480);
  int panel = 0;
  dm::Progress progress("quality vs cost, 2D", 2 * int64_t(tols.size() + 6 * sz.cost_steps.size()));
  for (const auto& s : table_sdes()) {
    dm::toy::PerturbedMixture exact(gm, s);
    const auto sk = sde::key_of(*s);
    // ED / floor averaged over the seeds, and the evaluations of one run.
    using Draw = std::function<std::pair<Tensor, int64_t>(at::Generator&)>;
    auto measure = [&](const Draw& draw) {
      double ratio = 0;
      int64_t nfe = 0;
      for (int k = 0; k < sz.cost_seeds; ++k) {
        auto gen = stream(500 + uint64_t(k));
        const auto [x, used] = draw(gen);
        ratio += dm::metrics::energy_distance(x, gm.sample(n, rng())) / floor.mean / sz.cost_seeds;
        nfe = std::max(nfe, used);
      }
      progress.tick();
      return std::pair<double, int64_t>{ratio, nfe};
    };
    auto& ax = fig.ax(panel++)
                   .title(s->name() + ", exact score (n = " + std::to_string(n) + ", mean of " +
                          std::to_string(sz.cost_seeds) + " seeds)")
                   .xlabel("network evaluations")
                   .ylabel("energy distance / noise floor")
                   .logx()
                   .logy()
                   .yrange(0.3, 1e6)  // room for the legend above the curves
                   .hline(1.0, "noise floor", {"#777777", 1.5, 0.4, 1.0, true});
    std::map<std::string, std::pair<Vec, Vec>> curves;  // name → (NFE, ED / floor)
    auto add = [&](const std::string& name, std::pair<double, int64_t> r) {
      curves[name].first.push_back(double(r.second));
      curves[name].second.push_back(r.first);
    };
    // ANCHOR: cost_samplers
    // dopri5 on the PF ODE at each tolerance: its evaluations are what it needed
    for (double tol : tols)
      add("ODE, dopri5", measure([&](at::Generator& gen) {
            flow::SolveOptions o;
            o.ode.rtol = o.ode.atol = tol;
            const auto r = flow::sample(exact, s, {n, 2}, gen, o);
            return std::pair<Tensor, int64_t>{r.x, r.stats.nfe};
          }));
    // fixed budgets of N evaluations: Euler (N steps) and Heun (N/2 steps) on the
    // PF ODE; the reverse SDE's predictors alone (N steps); PC (N/2 steps of P + C)
    for (int64_t N : sz.cost_steps) {
      for (auto solver : {flow::Solver::euler, flow::Solver::heun})
        add("ODE, " + flow::to_string(solver), measure([&](at::Generator& gen) {
              flow::SolveOptions o;
              o.solver = solver;
              o.steps = solver == flow::Solver::heun ? std::max<int64_t>(N / 2, 1) : N;
              const auto r = flow::sample(exact, s, {n, 2}, gen, o);
              return std::pair<Tensor, int64_t>{r.x, r.stats.nfe};
            }));
      for (auto [p, corrector] : {std::pair{pc::Predictor::euler_maruyama, false},
                                  std::pair{pc::Predictor::reverse_diffusion, false},
                                  std::pair{pc::Predictor::probability_flow, false},
                                  std::pair{pc::Predictor::reverse_diffusion, true}})
        add(std::string(corrector ? "PC, " : "P only, ") + row_title(p),
            measure([&, p = p, corrector = corrector](at::Generator& gen) {
              pc::SampleOptions o;
              o.predictor = p;
              o.corrector = corrector ? pc::Corrector::langevin : pc::Corrector::none;
              o.corrector_options.snr = snr_for(*s, opts);
              o.steps = corrector ? std::max<int64_t>(N / 2, 1) : N;
              return std::pair<Tensor, int64_t>{pc::sample(exact, s, {n, 2}, gen, o),
                                                o.steps * (corrector ? 2 : 1)};
            }));
    }
    // ANCHOR_END: cost_samplers
    int c = 0;
    std::printf("  %s (NFE: ED / floor)\n", s->name().c_str());
    for (const auto& [name, xy] : curves) {
      m[sk][name] = {{"nfe", xy.first}, {"ratio", xy.second}};
      if (name == "ODE, dopri5") m[sk][name]["tolerance"] = tols;
      ax.linepoints(xy.first, xy.second, name,
                    {dm::plot::color(c++), name == "ODE, dopri5" ? 3.0 : 2.0});
      std::printf("    %-26s", name.c_str());
      for (size_t i = 0; i < xy.first.size(); ++i)
        std::printf(" %g: %.2f", xy.first[i], xy.second[i]);
      std::printf("\n");
    }
  }
  progress.finish();
  std::printf("    [NFE: energy distance / floor; floor %.3g at n = %lld]\n", floor.mean,
              (long long)n);
  torch::set_num_threads(threads);

  // Images: the VP model's quality by KID against evaluations — dopri5 on the
  // ODE at two tolerances, and the table's predictor-only and PC cells.
  ImageSde& s = im.vp;
  const int64_t ni = sz.cost_images;
  auto& mi = m["images"];
  mi["n"] = ni;
  Vec xd, yd, ed, kid_shown;  // KID is unbiased, so it can be < 0: drawn at ≥ 10⁻³ on the log axis
  auto gen = dm::default_generator(opt.device);
  for (double tol : {1e-2, 1e-3}) {
    flow::SolveOptions o;
    o.ode.rtol = o.ode.atol = tol;
    o.t_end = s.t_end;
    int64_t nfe = 0;
    ShowProgress shown(*s.model, "  VP dopri5 tol " + fmt("%.0e", tol), s.sde->t_max(), s.t_end);
    const auto x = dm::app::sample_in_batches(ni, 64, [&](int64_t b, int64_t) {
                     const auto r = flow::sample(shown, s.sde, {b, 1, 32, 32}, gen, o,
                                                 torch::TensorOptions().device(opt.device));
                     nfe = std::max(nfe, r.stats.nfe);
                     return r.x;
                   }).clamp(-1, 1);
    shown.finish();
    // The share of samples left noisy: rougher than twice the test images' mean.
    const double data_rough = roughness(test_set.images.slice(0, 0, 256)).mean().item<double>();
    const double noisy = (roughness(x) > 2 * data_rough).to(torch::kFloat64).mean().item<double>();
    std::printf(
        "  -- VP, probability-flow ODE, dopri5 rtol = atol = %.0e: %lld evaluations; %.0f%% of "
        "the samples rougher than twice the test images' mean roughness (noise the ODE kept)\n",
        tol, (long long)nfe, 100 * noisy);
    const auto report =
        dm::quality::report_samples(x, train_set.images, test_set.images, opt.device);
    mi["dopri5"][fmt("%.0e", tol)] = report.to_json();
    mi["dopri5"][fmt("%.0e", tol)]["nfe"] = nfe;
    mi["dopri5"][fmt("%.0e", tol)]["noisy_share"] = noisy;
    xd.push_back(double(nfe));
    yd.push_back(report.kid.value);
    ed.push_back(report.kid.se);
    kid_shown.push_back(std::max(report.kid.value, 1e-3));
    if (tol == 1e-3) {
      dm::image::save_grid(dm::app::enlarge(x.slice(0, 0, std::min<int64_t>(ni, 32)), 2),
                           ch.out("samples_vp_dopri5.png"), 8);
      metrics.figure("samples_vp_dopri5.png");
    }
  }
  auto& ax =
      fig.ax(2)
          .title("DDPM as VP, Fashion-MNIST (n = " + std::to_string(ni) + "): KID against cost")
          .yrange(1e-3, 1e5)
          .xlabel("network evaluations")
          .ylabel("KID (classifier features; < 10⁻³ drawn at 10⁻³)")
          .logx()
          .logy();
  ax.linepoints(xd, kid_shown, "ODE, dopri5 (tol 10⁻², 10⁻³)", {dm::plot::color(0), 3.0});
  const auto& t = metrics["table_images"]["vp"];
  int c = 1;
  for (auto row : kRows) {
    Vec xs, ys;
    for (auto col : {Column::p_n, Column::p_2n}) {
      const auto& cell = t[pc::to_string(row)][column_key(col)];
      xs.push_back(cell["nfe"].get<double>());
      ys.push_back(std::max(cell["kid"]["value"].get<double>(), 1e-3));
    }
    ax.linepoints(xs, ys, row_title(row) + " (P N, P 2N)", {dm::plot::color(c++)});
    const auto& pcc = t[pc::to_string(row)][column_key(Column::pc_n)];
    ax.points({pcc["nfe"].get<double>()}, {std::max(pcc["kid"]["value"].get<double>(), 1e-3)},
              row_title(row) + ", PC N", {dm::plot::color(c - 1), 2.0, 1.5});
  }
  const auto& real = t["reverse_diffusion"]["P_N"]["kid_floor_train_vs_test"];
  ax.hline(std::max(real["value"].get<double>(), 1e-3),
           "real vs real: " + fmt("%.3f", real["value"].get<double>()) + " ± " +
               fmt("%.3f", real["se"].get<double>()),
           {"#777777", 1.5, 0.4, 1.0, true});
  mi["dopri5_nfe"] = xd;
  mi["dopri5_kid"] = yd;
  mi["dopri5_kid_se"] = ed;
  fig.save(ch.out("quality_vs_cost"));
  metrics.figure("quality_vs_cost.svg");
}

}  // namespace

int main(int argc, char** argv) {
  return dm::run_main([&] {
    dm::Chapter chapter("06_pc_ode",
                        "Chapter 06: predictor–corrector sampling, the probability-flow ODE with "
                        "an adaptive solver, exact likelihoods in bits/dim, encodings and "
                        "interpolation. Measured on one CPU thread: --quick 50 s; the default run "
                        "26 min of CPU time (31 min 47 s wall with builds beside it).",
                        2);
    Options o;
    auto& app = chapter.app();
    app.add_option("--samples", o.samples,
                   "images per cell of the image sampler table (default 64; --quick 8)")
        ->check(dm::whole_number(2, 100000));
    app.add_option("--image-steps", o.image_steps,
                   "N of the image table: P N, P 2N, C 2N, PC N (default 100; --quick 10)")
        ->check(dm::whole_number(2, 100000));
    app.add_option("--snr-ve", o.snr_ve, "the Langevin corrector's target snr r on VE (0.16)")
        ->check(CLI::Range(1e-6, 10.0));
    app.add_option("--snr-vp", o.snr_vp, "the Langevin corrector's target snr r on VP (0.01)")
        ->check(CLI::Range(1e-6, 10.0));
    o.ddpm_checkpoint = dm::train::checkpoints_dir() / "ddpm_fashion.pt";
    o.ncsn_checkpoint = dm::train::checkpoints_dir() / "ncsn_fashion.pt";
    app.add_option("--ddpm-checkpoint", o.ddpm_checkpoint, "chapter 04's weights (the VP model)");
    app.add_option("--ncsn-checkpoint", o.ncsn_checkpoint, "chapter 03's weights (the VE model)");
    const auto& opt = chapter.parse(argc, argv);
    g_seed = opt.seed;
    dm::plot::require_gnuplot();
    Sizes sz = sizes_for(opt.quick);
    if (o.samples > 0) sz.image_n = o.samples;
    if (o.image_steps > 0) sz.image_N = o.image_steps;
    dm::MetricsFile metrics(chapter);
    metrics["tables"] = json::array();

    // Fail fast: the dataset, both checkpoints and the classifier before any work.
    const int64_t need = std::max<int64_t>({sz.image_n, sz.cost_images, 1000});
    const auto train_set =
        dm::data::load_fashion_mnist(dm::data::Split::train, opt.data, opt.quick ? need : -1);
    const auto test_set =
        dm::data::load_fashion_mnist(dm::data::Split::test, opt.data, opt.quick ? need : -1);
    auto models = load_image_models(o, opt.device);
    dm::quality::load_classifier(dm::train::checkpoints_dir() / "fashion_classifier.pt",
                                 torch::kCPU);
    chapter.begin_work();  // the checks passed: an earlier run's results move aside

    // Each part's wall time, printed and kept (what the default run costs, where).
    auto timed = [&](const std::string& key, const std::function<void()>& part) {
      dm::Timer timer;
      part();
      metrics["seconds"][key] = timer.seconds();
      std::printf("  (%.0f s)\n", timer.seconds());
    };
    timed("table_2d", [&] { toy_tables(chapter, o, sz, metrics); });
    timed("table_images", [&] { image_table(chapter, sz, models, train_set, test_set, metrics); });
    timed("likelihood", [&] { likelihoods(chapter, sz, models, test_set, metrics); });
    timed("encodings", [&] { encodings(chapter, sz, models, test_set, metrics); });
    timed("cost", [&] { quality_vs_cost(chapter, o, sz, models, train_set, test_set, metrics); });

    const auto path = metrics.write();
    std::cout << "\nfigures, tables and metrics written to " << opt.out.string() << "/ ("
              << path.filename().string() << ", " << metrics.data()["figures"].size()
              << " figures, " << metrics.data()["tables"].size() << " tables)\n";
  });
}
