#include "dm/base/progress.hpp"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <iostream>
#include <optional>
#include <sstream>

namespace dm {

namespace {
std::optional<bool> forced_plain;

bool plain_output() {
  if (forced_plain) return *forced_plain;
  return !isatty(fileno(stdout));
}

std::string format_seconds(double s) {
  char buf[32];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%.1fs", s);
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%dm%02ds", int(s) / 60, int(s) % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%dh%02dm", int(s) / 3600, (int(s) % 3600) / 60);
  }
  return buf;
}
}  // namespace

void Progress::set_plain(bool plain) { forced_plain = plain; }

Progress::Progress(std::string label, int64_t total) : label_(std::move(label)), total_(total) {}

Progress::~Progress() { finish(); }

void Progress::tick(int64_t n, const std::string& status) {
  done_ += n;
  if (!status.empty()) status_ = status;
  draw(false);
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  draw(true);
}

void Progress::draw(bool final) {
  const double now = timer_.seconds();
  const double frac = total_ > 0 ? std::min(1.0, double(done_) / double(total_)) : 1.0;
  const double rate = now > 0 ? double(done_) / now : 0.0;
  const double eta = rate > 0 ? double(total_ - done_) / rate : 0.0;
  std::ostringstream tail;
  tail << done_ << "/" << total_ << " " << format_seconds(now);
  if (!final && done_ < total_) tail << " eta " << format_seconds(eta);
  if (rate > 0)
    tail << " " << (rate >= 100 ? std::to_string(int64_t(rate)) : std::to_string(rate).substr(0, 4))
         << "/s";
  if (!status_.empty()) tail << " | " << status_;

  if (plain_output()) {
    // Logs stay short: a line per 10% (at most one each 5 s, none in the
    // first 5 s, so quick loops print only their final line), a heartbeat at
    // least once a minute for long loops, plus the final line.
    const int64_t decile = int64_t(std::floor(frac * 10));
    const bool heartbeat = now - last_draw_ >= 60.0;
    if (!final &&
        (now < 5.0 || (decile == last_reported_decile_ && !heartbeat) || now - last_draw_ < 5.0))
      return;
    if (final && last_reported_decile_ == 10) return;
    last_reported_decile_ = final ? 10 : decile;
    last_draw_ = now;
    std::cout << "  " << label_ << " " << int(frac * 100) << "% " << tail.str() << std::endl;
    return;
  }
  if (!final && now - last_draw_ < 0.1) return;  // redraw at most 10x a second
  last_draw_ = now;
  const int width = 28;
  const int filled = int(frac * width);
  std::string bar(filled, '#');
  bar += std::string(width - filled, '.');
  std::cout << "\r\033[2K  " << label_ << " [" << bar << "] " << int(frac * 100) << "% "
            << tail.str() << std::flush;
  if (final) std::cout << std::endl;
}

}  // namespace dm
