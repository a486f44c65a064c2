// Helpers for chapter tests: run a chapter executable, capture its output and
// exit code, read its metrics.json.
#pragma once

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "test_dirs.hpp"

namespace dm_test {

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together
};

// The folder of the chapter executables: $DM_BIN_DIR (set by ctest), else ./bin.
inline std::filesystem::path bin_dir() {
  const char* env = std::getenv("DM_BIN_DIR");
  return env ? std::filesystem::path(env) : std::filesystem::path("bin");
}

// Where a chapter's --quick run writes: $DM_QUICK_RUNS/<chapter> when set (ctest
// sets it: the book's test build reads those figures and metrics afterwards,
// so the folder is kept), else a scratch folder removed after the tests.
inline std::filesystem::path quick_run_dir(const std::string& chapter) {
  const char* env = std::getenv("DM_QUICK_RUNS");
  if (!env) return fresh_dir(chapter);
  auto dir = std::filesystem::path(env) / chapter;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}
inline bool keep_quick_runs() { return std::getenv("DM_QUICK_RUNS") != nullptr; }

inline RunResult run(const std::string& chapter, const std::string& args) {
  const auto cmd = (bin_dir() / chapter).string() + " " + args + " 2>&1";
  RunResult r;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  if (!pipe) return r;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) r.output.append(buf, n);
  const int status = ::pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

inline nlohmann::json read_json(const std::filesystem::path& path) {
  std::ifstream f(path);
  return nlohmann::json::parse(f);
}

// A fixture that runs `<chapter> --quick --seed 0 --threads 1` once for all
// tests of the suite; the tests read its exit code, output and metrics.json.
// One thread: ctest runs two chapters at once on CI's two cores, and two
// LibTorch processes with two OpenMP threads each on two cores spin against
// each other (measured: a 80 s quick run took over 600 s that way).
//   struct Ch01 { static constexpr const char* name = "01_langevin"; };
//   using Chapter01 = dm_test::QuickRun<Ch01>;
//   TEST_F(Chapter01, ...) { ASSERT_EQ(result_->exit_code, 0); metrics()... }
//
// QuickRun<Chapter, true> runs `--quick --train --steps Chapter::train_steps`
// instead (the image chapters' tiny U-Net, trained here: their plain --quick
// run samples the shipped checkpoint) in a scratch folder of its own.
template <class Chapter, bool Train = false>
class QuickRun : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    std::string args = "--quick --seed 0 --threads 1";
    if constexpr (Train) {
      out_ = new std::filesystem::path(fresh_dir(std::string(Chapter::name) + "_train"));
      args += " --train --steps " + std::to_string(Chapter::train_steps);
    } else {
      out_ = new std::filesystem::path(quick_run_dir(Chapter::name));
    }
    result_ = new RunResult(run(Chapter::name, args + " --out " + out_->string()));
  }
  static void TearDownTestSuite() {
    if (Train || !keep_quick_runs()) std::filesystem::remove_all(*out_);
    delete out_;
    delete result_;
    out_ = nullptr;
    result_ = nullptr;
  }
  nlohmann::json metrics() const { return read_json(*out_ / "metrics.json"); }
  // Every figure metrics.json lists exists as SVG and PNG (more than 1 kB each),
  // at least `min_count` of them, and the run was the --quick one.
  void expect_figures_as_svg_and_png(size_t min_count) const {
    const auto m = metrics();
    ASSERT_GE(m["figures"].size(), min_count);
    for (const auto& f : m["figures"]) {
      std::filesystem::path svg = *out_ / f.template get<std::string>();
      std::filesystem::path png = svg;
      png.replace_extension(".png");
      EXPECT_TRUE(std::filesystem::exists(svg) && std::filesystem::file_size(svg) > 1000) << svg;
      EXPECT_TRUE(std::filesystem::exists(png) && std::filesystem::file_size(png) > 1000) << png;
    }
    EXPECT_EQ(m["run"]["quick"], true);
  }
  static inline std::filesystem::path* out_ = nullptr;
  static inline RunResult* result_ = nullptr;
};

// The standard error of a fraction estimated from n independent draws.
inline double fraction_se(double p, double n) { return std::sqrt(p * (1 - p) / n); }

}  // namespace dm_test
