// Chapter 06 end to end: the --quick run (the PC sampler table on the 2D
// mixture and on Fashion-MNIST, likelihoods by the probability-flow ODE,
// encodings, quality against cost) succeeds, writes every figure and table,
// and its metrics show what the chapter claims; bad input fails fast with one
// clear line.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "chapter_run.hpp"
#include "floor_factor.hpp"

namespace fs = std::filesystem;

struct Ch06 {
  static constexpr const char* name = "06_pc_ode";
};
using Chapter06 = dm_test::QuickRun<Ch06>;

// The 99% same-law bound on ED / floor (tests/common/floor_factor.hpp) for
// the chapter's floors, means of 10 repeats: 10.04.
const double kFloorFactor = dm_test::floor_factor(10);

const char* const kSdes[] = {"ve", "vp"};
const char* const kRows[] = {"ancestral", "reverse_diffusion", "probability_flow"};

TEST_F(Chapter06, QuickRunSucceeds) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  EXPECT_NE(result_->output.find("[5/5]"), std::string::npos);
  // The order of the PC loop is said, and the missing DDPM bound is named.
  EXPECT_NE(result_->output.find("corrector runs before the predictor"), std::string::npos);
  EXPECT_NE(result_->output.find("not in the library yet"), std::string::npos);
}

TEST_F(Chapter06, WritesEveryFigureAndTable) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto m = metrics();
  for (const char* f :
       {"table_2d_samples.svg", "table_2d_coarse_samples.svg", "table_images_ve.png",
        "table_images_vp.png", "hutchinson.svg", "round_trip.svg", "two_models_latents.svg",
        "interpolation.png", "temperature.png", "samples_vp_dopri5.png", "quality_vs_cost.svg"}) {
    EXPECT_NE(std::find(m["figures"].begin(), m["figures"].end(), f), m["figures"].end()) << f;
    EXPECT_TRUE(fs::exists(*out_ / f) && fs::file_size(*out_ / f) > 1000) << f;
  }
  expect_figures_as_svg_and_png(11);
  // The Markdown tables the book includes: one row per SDE and predictor.
  for (const char* t : {"table_2d.md", "table_2d_coarse.md", "table_images.md"}) {
    EXPECT_NE(std::find(m["tables"].begin(), m["tables"].end(), t), m["tables"].end()) << t;
    std::ifstream f(*out_ / t);
    std::stringstream text;
    text << f.rdbuf();
    const std::string table = text.str();  // one string: str() returns a new copy each call
    EXPECT_NE(table.find("| probability flow |"), std::string::npos) << t;
    EXPECT_EQ(std::count(table.begin(), table.end(), '\n'), 2 + 6 + 2) << t;
  }
}

// With the exact score and N = 100 (quick), every predictor, alone or with
// the corrector, reaches the mixture: ED / floor within kFloorFactor. The
// corrector alone does not (its steps, ε = 2α(r‖z‖/‖s‖)², are far too short
// in 2D), and with N = 10 the probability-flow discretisation is resolved
// above the floor — so these checks can fail.
TEST_F(Chapter06, ToyTableReachesTheFloorExceptWhereItShouldNot) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto m = metrics();
  for (const char* key : {"table_2d", "table_2d_coarse"}) {
    const auto t = m[key];
    EXPECT_EQ(t["order"], "corrector_then_predictor");
    EXPECT_EQ(t["seeds"], 3);
    for (const char* s : kSdes)
      for (const char* r : kRows)
        for (const char* c : {"P_N", "P_2N", "PC_N"}) {
          const double v = t[s][r][c]["mean"];
          EXPECT_TRUE(std::isfinite(v) && v > 0) << key << " " << s << " " << r << " " << c;
          EXPECT_EQ(t[s][r][c]["values"].size(), 3u);
          if (std::string(key) == "table_2d") {
            EXPECT_LT(v, kFloorFactor) << s << " " << r << " " << c;
          }
        }
    EXPECT_EQ(t["N"], std::string(key) == "table_2d" ? 100 : 10);
    for (const char* s : kSdes) {
      EXPECT_GT(t[s]["reverse_diffusion"]["C_2N"]["mean"].get<double>(), kFloorFactor) << s;
      EXPECT_FALSE(t[s]["ancestral"].contains("C_2N"));
    }
  }
  EXPECT_GT(m["table_2d_coarse"]["vp"]["probability_flow"]["P_N"]["mean"].get<double>(),
            kFloorFactor);
  EXPECT_EQ(m["table_2d"]["vp"]["reverse_diffusion"]["PC_N"]["nfe"], 200);
  // The other order was measured for one cell.
  const auto o = m["other_order"];
  for (const char* k : {"corrector_then_predictor", "predictor_then_corrector"})
    EXPECT_TRUE(std::isfinite(o[k]["mean"].get<double>())) << k;
}

// Every image cell reports KID with its standard error at n = 8 and its
// network evaluations; the samples are the shipped models': ancestral
// sampling with 20 steps is resolved better than the probability-flow
// discretisation with 10 (their KIDs 4 standard errors apart).
TEST_F(Chapter06, ImageTableReportsKidWithItsError) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto t = metrics()["table_images"];
  EXPECT_EQ(t["n"], 8);
  EXPECT_EQ(t["N"], 10);
  for (const char* s : kSdes) {
    const int extra = std::string(s) == "ve" ? 1 : 0;  // NCSN's final Tweedie step
    for (const char* r : kRows)
      for (const char* c : {"P_N", "P_2N", "PC_N"}) {
        const auto cell = t[s][r][c];
        EXPECT_EQ(cell["samples"], 8) << s << r << c;
        EXPECT_TRUE(std::isfinite(cell["kid"]["value"].get<double>())) << s << r << c;
        EXPECT_GE(cell["kid"]["se"].get<double>(), 0.0) << s << r << c;
        EXPECT_EQ(cell["nfe"], (std::string(c) == "P_N" ? 10 : 20) + extra) << s << r << c;
      }
    EXPECT_EQ(t[s]["reverse_diffusion"]["C_2N"]["nfe"], 20 + extra);
  }
  const auto good = t["vp"]["ancestral"]["P_2N"]["kid"],
             bad = t["vp"]["probability_flow"]["P_N"]["kid"];
  const double se = std::hypot(good["se"].get<double>(), bad["se"].get<double>());
  EXPECT_GT(bad["value"].get<double>() - good["value"].get<double>(), 4 * se);
}

// The ODE's log-likelihood with the exact score is the mixture's own density
// at t = ε, to the solver's tolerance, for VE, VP and sub-VP: at 10⁻⁷ within
// 10⁻⁴ nats (what the unit test holds at that tolerance), shrinking with the
// tolerance. With the SDE's Gaussian prior in place of the exact p_T, VE's
// error is the prior's mismatch (σ_max = 10 is not ≫ the data's spread).
TEST_F(Chapter06, OdeLikelihoodMatchesTheMixtureDensity) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto c = metrics()["likelihood"]["check"];
  for (const char* s : {"ve", "vp", "subvp"}) {
    const double e3 = c[s]["1e-03"]["max_abs_error"], e5 = c[s]["1e-05"]["max_abs_error"],
                 e7 = c[s]["1e-07"]["max_abs_error"];
    EXPECT_LT(e7, 1e-4) << s;
    EXPECT_LT(e7, e5) << s;
    EXPECT_LT(e5, e3) << s;
    EXPECT_GT(c[s]["1e-07"]["nfe"].get<int64_t>(), c[s]["1e-03"]["nfe"].get<int64_t>()) << s;
  }
  EXPECT_GT(c["ve"]["1e-07"]["max_abs_error_gaussian_prior"].get<double>(),
            100 * c["ve"]["1e-07"]["max_abs_error"].get<double>());
}

// Hutchinson's estimate: unbiased (its mean error within 4 standard errors
// of 0), and its spread falls as 1/√K — from K = 1 to 16 by 4 (between 2
// and 8: the spreads are themselves estimates from 200 points of a
// heavy-tailed error); Rademacher probes spread less than Gaussian ones.
TEST_F(Chapter06, HutchinsonSpreadFallsWithProbes) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto h = metrics()["likelihood"]["hutchinson"];
  const double n = h["n"];
  for (const char* kind : {"rademacher", "gaussian"}) {
    const auto sd = h[kind]["std"], mean = h[kind]["mean"];
    for (size_t i = 0; i < sd.size(); ++i)
      EXPECT_LT(std::abs(mean[i].get<double>()), 4 * sd[i].get<double>() / std::sqrt(n))
          << kind << " K index " << i;
    const double ratio = sd[0].get<double>() / sd[4].get<double>();
    EXPECT_GT(ratio, 2.0) << kind;
    EXPECT_LT(ratio, 8.0) << kind;
  }
  EXPECT_LT(h["rademacher"]["std"][0].get<double>(), h["gaussian"]["std"][0].get<double>());
}

// Bits/dim of test images: finite, below the 8 bits of a uniform density on
// [−1, 1] (the models know the data), for both models, with the settings said.
TEST_F(Chapter06, BitsPerDimOfTestImages) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto im = metrics()["likelihood"]["images"];
  for (const char* s : kSdes) {
    EXPECT_EQ(im[s]["images"], 2) << s;
    EXPECT_EQ(im[s]["dims"], 1024) << s;
    EXPECT_EQ(im[s]["probes"], 1) << s;
    EXPECT_GT(im[s]["nfe"].get<int64_t>(), 10) << s;
    for (const auto& b : im[s]["bits_per_dim"]) {
      EXPECT_GT(b.get<double>(), 0.0) << s;
      EXPECT_LT(b.get<double>(), 8.0) << s;
    }
  }
  EXPECT_TRUE(im["ddpm_elbo"].is_null());
}

// The round trip x → z → x' returns the data: with the per-row norm every
// point within 100 × the tolerance, with the batch-RMS norm the median within
// 10 × (the unit test's bounds) while some point at 10⁻³ ends over 1000 ×
// off; images within 50 × the tolerance (RMS over pixels).
TEST_F(Chapter06, EncodeDecodeReturnsTheData) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto e = metrics()["encodings"];
  const auto rt = e["round_trip_2d"];
  const auto tols = rt["per_row"]["tolerance"];
  for (size_t i = 0; i < tols.size(); ++i) {
    const double tol = tols[i];
    EXPECT_LT(rt["per_row"]["max"][i].get<double>(), 100 * tol) << tol;
    EXPECT_LT(rt["batch_rms"]["median"][i].get<double>(), 10 * tol) << tol;
    if (tol == 1e-3) {
      EXPECT_GT(rt["batch_rms"]["max"][i].get<double>(), 1000 * tol);
    }
  }
  const auto img = e["round_trip_images"]["1e-03"];
  for (const auto& r : img["rms_per_image"]) EXPECT_LT(r.get<double>(), 50 * 1e-3);
  // Two independently trained models give nearly the same latents: their
  // mean distance is a small part of the distance between unrelated latents
  // (≈ √π = 1.77 for two independent N(0, I) points in 2D).
  const auto two = e["two_models"];
  EXPECT_LT(two["mean_distance_a_b"].get<double>(),
            0.25 * two["mean_distance_unrelated"].get<double>());
  EXPECT_GT(two["mean_distance_unrelated"].get<double>(), 1.2);
  // slerp stays at the prior's radius ‖z‖ ≈ √D; the straight line dips to ≈ √(D/2).
  const auto in = e["interpolation"];
  for (const auto& r : in["norm_over_sqrt_d_slerp"]) EXPECT_NEAR(r.get<double>(), 1.0, 0.05);
  const auto line = in["norm_over_sqrt_d_linear"];
  EXPECT_LT(line[line.size() / 2].get<double>(), 0.8);
}

// dopri5 spends more evaluations at tighter tolerances and reaches the floor
// at 10⁻⁵; two Euler steps on the ODE do not.
TEST_F(Chapter06, QualityAgainstCost) {
  ASSERT_EQ(result_->exit_code, 0) << result_->output;
  const auto c = metrics()["cost"];
  for (const char* s : kSdes) {
    const auto nfe = c[s]["ODE, dopri5"]["nfe"], r = c[s]["ODE, dopri5"]["ratio"];
    for (size_t i = 1; i < nfe.size(); ++i)
      EXPECT_GE(nfe[i].get<double>(), nfe[i - 1].get<double>()) << s;
    EXPECT_LT(r[r.size() - 1].get<double>(), kFloorFactor) << s;
    EXPECT_GT(c[s]["ODE, euler"]["ratio"][0].get<double>(), kFloorFactor) << s;
  }
  EXPECT_EQ(c["images"]["dopri5_kid"].size(), 2u);
}

// ---- bad input: one clear line (plus its hint), non-zero exit, before any work ----

TEST(Chapter06BadInput, ImageStepsOutOfRange) {
  auto r = dm_test::run("06_pc_ode", "--quick --image-steps 1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("--image-steps"), std::string::npos) << r.output;
  EXPECT_EQ(std::count(r.output.begin(), r.output.end(), '\n'), 1) << r.output;
}

TEST(Chapter06BadInput, MissingCheckpointIsNamedBeforeAnyWork) {
  const auto dir = dm_test::fresh_dir("06_no_ckpt");
  auto r = dm_test::run("06_pc_ode", "--quick --ddpm-checkpoint " + (dir / "none.pt").string() +
                                         " --out " + (dir / "out").string());
  EXPECT_NE(r.exit_code, 0);
  EXPECT_NE(r.output.find("none.pt"), std::string::npos) << r.output;
  EXPECT_EQ(r.output.find("[1/5]"), std::string::npos) << "must fail before doing any work";
  fs::remove_all(dir);
}
