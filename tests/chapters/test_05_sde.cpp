// Chapter 05 end to end: the --quick run (kernels, forward simulation, the
// discrete forms, the reverse SDE with the exact score, continuous DSM on 2D,
// the shipped DDPM and NCSN sampled as VP and VE SDE models, the convergence
// bound) succeeds, writes every figure, and its metrics show what the chapter
// claims; bad input fails fast with one clear line.
#include <algorithm>
#include <cmath>
#include <fstream>

#include "chapter_run.hpp"
#include "floor_factor.hpp"

namespace fs = std::filesystem;

struct Ch05 {
  static constexpr const char* name = "05_sde";
};
using Chapter05 = dm_test::QuickRun<Ch05>;

// The 99% same-law bound on ED / floor (tests/common/floor_factor.hpp) for
// this chapter's floors, means of 10 repeats: 10.04.
const double kFloorFactor = dm_test::floor_factor(10);

TEST_F(Chapter05, QuickRunSucceeds) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  EXPECT_NE(result_->output.find("[7/7]"), std::string::npos);
}

TEST_F(Chapter05, WritesEveryFigure) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto m = metrics();
  for (const char* f :
       {"kernels.svg", "forward_trajectories.svg", "ddpm_vs_vp.svg", "exact_reverse.svg",
        "exact_samples.svg", "reverse_trajectories.svg", "learned_scores.svg", "convergence.svg",
        "samples_vp_euler_maruyama.png", "samples_vp_reverse_diffusion.png",
        "samples_ddpm_ancestral.png", "samples_ve_euler_maruyama.png",
        "samples_ve_reverse_diffusion.png", "samples_ncsn_annealed.png"}) {
    EXPECT_NE(std::find(m["figures"].begin(), m["figures"].end(), f), m["figures"].end()) << f;
    EXPECT_TRUE(fs::exists(*out_ / f) && fs::file_size(*out_ / f) > 500) << f;
  }
}

// The simulated marginals match the closed forms (|z| of 2 × 2 means and 3 × 4
// covariance entries at three times: 18 z-scores, so 4.5 is a loose 99.9% bound).
TEST_F(Chapter05, ForwardSimulationMatchesTheKernels) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto f = metrics()["forward"];
  for (const char* k : {"ve", "vp", "subvp"}) EXPECT_LT(f[k]["worst_z"].get<double>(), 4.5) << k;
  const auto d = metrics()["discrete"];
  EXPECT_LT(d["vp_beta_max_abs_gap"].get<double>(), 1e-15);
  EXPECT_LT(d["ve_sigma_max_rel_gap"].get<double>(), 1e-12);
  EXPECT_LT(d["vp_log_a_max_gap"].get<double>(), 0.035);
}

// With the exact score and 100 steps every SDE and predictor reaches the
// mixture: the energy distance within kFloorFactor × its floor, and at
// 10 steps the VE Euler–Maruyama sampler is visibly worse than at 100.
TEST_F(Chapter05, ExactScoreReachesTheMixture) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto e = metrics()["exact_reverse"];
  const double floor = e["floor"]["mean"];
  for (const char* k : {"ve", "vp", "subvp"})
    for (const char* p : {"euler_maruyama", "reverse_diffusion"})
      EXPECT_LT(e[k][p]["100"].get<double>(), kFloorFactor * floor) << k << " " << p;
  EXPECT_GT(e["ve"]["euler_maruyama"]["10"].get<double>(),
            e["ve"]["euler_maruyama"]["100"].get<double>());
  // Both predictors are first-order schemes: the exact variance error on
  // Gaussian data falls like 1/N (VE Euler–Maruyama faster: its leading terms
  // nearly cancel for a Gaussian).
  for (const char* k : {"ve", "vp", "subvp"})
    for (const char* p : {"euler_maruyama", "reverse_diffusion"}) {
      const double order = e[k][p]["observed_order"];
      EXPECT_GT(order, 0.9) << k << " " << p;
      EXPECT_LT(order, 2.5) << k << " " << p;
    }
  EXPECT_NEAR(e["vp"]["euler_maruyama"]["observed_order"].get<double>(), 1.0, 0.1);
}

TEST_F(Chapter05, LearnedScoresSampleTheMixture) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto l = metrics()["learned"];
  const double floor = l["floor"];
  for (const char* k : {"ve", "vp", "subvp"}) {
    EXPECT_LT(l[k]["loss_last"].get<double>(), l[k]["loss_first"].get<double>()) << k;
    EXPECT_LT(l[k]["energy_distance"].get<double>(), kFloorFactor * floor) << k;
  }
}

// Each image sampler reports its quality with n, the real-vs-real values and
// its network evaluations; the samples come from the shipped checkpoints.
TEST_F(Chapter05, ShippedModelsAreSampledAsSdeModels) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto im = metrics()["images"];
  EXPECT_EQ(im["samples"], 16);
  for (const char* k : {"vp_euler_maruyama", "vp_reverse_diffusion", "ddpm_ancestral",
                        "ve_euler_maruyama", "ve_reverse_diffusion", "ncsn_annealed"}) {
    EXPECT_EQ(im[k]["samples"], 16) << k;
    EXPECT_TRUE(im[k].contains("kid_floor_train_vs_test")) << k;
    EXPECT_GE(im[k]["network_evaluations"].get<int64_t>(), 100) << k;
    EXPECT_LE(im[k]["network_evaluations"].get<int64_t>(), 101) << k;
  }
  // DDPM's network as a VP SDE model samples as well as DDPM's own sampler at
  // equal evaluations: the two precisions agree within 4 standard errors of a
  // difference of two proportions at n = 16 each (the real-image manifold is
  // shared, so the draws are not quite independent; 4 s.e. leaves room). A
  // broken mapping of t to the network's label gives noise, precision 0
  // against DDPM's ≈ 0.9: 0.9 > 4 · 0.18, so this can fail.
  const double pa = im["vp_reverse_diffusion"]["precision"], pb = im["ddpm_ancestral"]["precision"];
  const double pbar = 0.5 * (pa + pb), n = im["samples"].get<double>();
  const double se = std::sqrt(std::max(pbar * (1 - pbar), 0.05 * 0.95) * 2.0 / n);
  EXPECT_LT(std::abs(pa - pb), 4 * se) << "precision " << pa << " vs " << pb;
  EXPECT_GT(pb, 4 * se) << "DDPM's own samples are resolved from noise (precision 0)";
}

// The three terms of the bound move the distance as they must: the
// long-horizon, exact-score run is within kFloorFactor × the floor, a short horizon (T = 0.25) and a large score error (M = 1.6) are resolved
// beyond it, and the distance grows with M.
TEST_F(Chapter05, ConvergenceTermsShowUp) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto c = metrics()["convergence"];
  const double bound = kFloorFactor * c["floor"].get<double>();
  const auto T = c["ed_vs_T"], M = c["ed_vs_M"];
  EXPECT_GT(T[0].get<double>(), bound);
  EXPECT_LT(T[T.size() - 1].get<double>(), bound);
  EXPECT_LT(M[0].get<double>(), bound);
  EXPECT_GT(M[M.size() - 1].get<double>(), bound);
  EXPECT_GT(M[M.size() - 1].get<double>(), M[M.size() - 2].get<double>());
}

// ---- bad input: one clear line (plus its hint), non-zero exit, before any work ----

TEST(Chapter05BadInput, UnknownWeighting) {
  auto r = dm_test::run("05_sde", "--quick --weighting uniform");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--weighting"), std::string::npos) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}

TEST(Chapter05BadInput, MissingCheckpointIsNamedBeforeAnyWork) {
  const auto dir = dm_test::fresh_dir("05_no_ckpt");
  auto r = dm_test::run("05_sde", "--quick --ncsn-checkpoint " + (dir / "none.pt").string() +
                                      " --out " + (dir / "out").string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("none.pt"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("[2/7]"), std::string::npos) << "must fail before doing any work";
  fs::remove_all(dir);
}
