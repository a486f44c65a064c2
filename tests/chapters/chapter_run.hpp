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

// The standard error of a fraction estimated from n independent draws.
inline double fraction_se(double p, double n) { return std::sqrt(p * (1 - p) / n); }

}  // namespace dm_test
