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
