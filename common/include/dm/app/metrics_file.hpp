// dm/app/metrics_file.hpp — a chapter's metrics.json: its figures of merit and
// how they were obtained. (The statistics themselves live in dm::metrics,
// dm/data/metrics.hpp; this class only records and writes them.)
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

#include "dm/app/cli.hpp"
#include "dm/base/core.hpp"

namespace dm {

// Collects a chapter's numbers and writes them to <out>/metrics.json. `run`
// holds chapter, seed, device, threads, quick, wall time (filled by write());
// the chapter adds its numbers under any keys it likes:
// `metrics["ula"]["ks"] = 0.01`.
class MetricsFile {
 public:
  explicit MetricsFile(const Chapter& chapter);
  nlohmann::json& operator[](const std::string& key) { return data_[key]; }
  const nlohmann::json& data() const { return data_; }
  // Records a figure file (relative to --out) so tests and the book can find it.
  void figure(const std::string& file);
  // Writes metrics.json; returns its path.
  std::filesystem::path write();

 private:
  const Chapter& chapter_;
  nlohmann::json data_;
  Timer timer_;
};

}  // namespace dm
