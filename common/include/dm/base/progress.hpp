// dm/base/progress.hpp — a progress bar for loops longer than a few seconds.
// On a terminal it redraws one line in place (bar, count, rate, ETA, and a
// status such as the current loss); when stdout is a file or pipe (CI, logs)
// it prints a plain line every 10% (at most one per 5 s) and at least one per
// minute on long loops.
#pragma once

#include <cstdint>
#include <string>

#include "dm/base/core.hpp"

namespace dm {

class Progress {
 public:
  Progress(std::string label, int64_t total);
  ~Progress();
  // Advance by `n` and optionally set a short status shown after the bar.
  void tick(int64_t n = 1, const std::string& status = {});
  // Print the final line (called by the destructor if not called before).
  void finish();

  // Force the plain (non-TTY) style, e.g. in tests; default: isatty(stdout).
  static void set_plain(bool plain);

 private:
  void draw(bool final);
  std::string label_;
  int64_t total_, done_ = 0;
  std::string status_;
  Timer timer_;
  double last_draw_ = -1.0;
  int64_t last_reported_decile_ = -1;
  bool finished_ = false;
};

}  // namespace dm
