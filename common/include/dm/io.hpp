// dm/io.hpp — files a chapter writes: metrics.json and atomic writes.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

#include "dm/cli.hpp"

namespace dm {

using json = nlohmann::json;

// Writes `contents` to `path` atomically: a temporary file in the same folder,
// then rename(), so a crash never leaves a half-written file behind.
void write_file_atomic(const std::filesystem::path& path, const std::string& contents);

// Collects a chapter's figures of merit and how they were obtained, and writes
// them to <out>/metrics.json. `run` holds chapter, seed, device, threads,
// quick, wall time (filled by write()); the chapter adds its numbers under
// any keys it likes: `metrics["ula"]["ks"] = 0.01`.
class Metrics {
 public:
  explicit Metrics(const Chapter& chapter);
  json& operator[](const std::string& key) { return data_[key]; }
  const json& data() const { return data_; }
  // Records a figure file (relative to --out) so tests and the book can find it.
  void figure(const std::string& file);
  // Writes metrics.json; returns its path.
  std::filesystem::path write();

 private:
  const Chapter& chapter_;
  json data_;
  Timer timer_;
};

}  // namespace dm
