// dm/app/cli.hpp — the command-line options every chapter shares, parsed with CLI11.
//
//   --quick          CI-sized run (well under a minute on 2 CPU cores)
//   --device D       auto | cpu | cuda            (default auto)
//   --seed N         random seed                  (default 0)
//   --out DIR        output folder                (default runs/<chapter>)
//   --threads N      torch intra-op threads       (default: the chapter's choice)
//   --data DIR       dataset folder               (default $DM_DATA_DIR, then Debian's)
//   --help
//
// A chapter adds its own flags to `app()` before calling `parse()`. Any error
// (unknown flag, bad value, unwritable --out, CUDA asked for but absent) prints
// one line to stderr and exits non-zero.
#pragma once

#include <CLI/CLI.hpp>

#include <filesystem>
#include <functional>
#include <string>

#include "dm/base/core.hpp"

namespace dm {

struct ChapterOptions {
  bool quick = false;
  std::string device_flag = "auto";
  uint64_t seed = 0;  // --seed: 0 … 2⁶⁴ − 1, refused outside
  std::filesystem::path out;
  int threads = 0;
  std::filesystem::path data;

  // Resolved by Chapter::parse().
  torch::Device device = torch::kCPU;
};

class Chapter {
 public:
  // `name` is the folder name ("01_langevin"); `description` is shown by --help.
  Chapter(std::string name, std::string description, int default_threads = 0);

  CLI::App& app() { return app_; }

  // Parses argv, resolves the device, creates --out, seeds, sets threads and
  // prints a one-line banner. On bad input prints the error and exits(2);
  // on --help prints the help and exits(0).
  const ChapterOptions& parse(int argc, char** argv);

  // Called once the run's checks have passed, before it writes anything: what
  // an earlier run left in --out is moved aside (move_earlier_results), with
  // a line saying where. A run refused by a check so leaves the folder as it was.
  void begin_work();

  const ChapterOptions& options() const { return options_; }
  const std::string& name() const { return name_; }
  // out/<file>, for the files a chapter writes.
  std::filesystem::path out(const std::string& file) const { return options_.out / file; }

 private:
  std::string name_;
  CLI::App app_;
  ChapterOptions options_;
  std::string seed_text_ = "0";  // --seed as typed; parse() converts it
  int default_threads_;
  bool begun_ = false;
};

// A CLI11 check for whole-number options: the value must be an integer (no
// sign unless lo < 0, no fraction or exponent, no trailing text) from lo to
// hi, else the option is refused with one line saying so ("--steps: expects a
// whole number from 1 to 100000000, got '-5'").
CLI::Validator whole_number(int64_t lo, int64_t hi);

// The largest --threads this machine can use (its hardware threads, at least 1).
int max_threads();

// Runs `body` and turns a dm::Error or any other exception into one line on
// stderr (plus the hint) and exit code 1: `int main(int c, char** v) { return
// dm::run_main([&] { ... }); }`.
int run_main(const std::function<void()>& body);

// Moves what an earlier run left in `dir` — every file and folder except the
// model files (*.pt: training checkpoints, which --resume/--overwrite guard,
// and exported weights) — into a new sibling folder <dir>.earlier-N (the
// first N free) and returns it; empty when there was nothing to move. So a
// run's folder never mixes its results with stale ones, and nothing is
// deleted. Chapter::parse calls it and says so.
std::filesystem::path move_earlier_results(const std::filesystem::path& dir);

// Creates `dir` (and parents) and checks it is writable; throws dm::Error.
void ensure_writable_dir(const std::filesystem::path& dir);

}  // namespace dm
