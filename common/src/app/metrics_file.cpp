#include "dm/app/metrics_file.hpp"

#include "dm/base/io.hpp"

namespace dm {

MetricsFile::MetricsFile(const Chapter& chapter) : chapter_(chapter) {}

void MetricsFile::figure(const std::string& file) { data_["figures"].push_back(file); }

std::filesystem::path MetricsFile::write() {
  const auto& o = chapter_.options();
  data_["run"] = {{"chapter", chapter_.name()},
                  {"quick", o.quick},
                  {"seed", o.seed},
                  {"device", device_name(o.device)},
                  {"threads", torch::get_num_threads()},
                  {"wall_seconds", timer_.seconds()}};
  const auto path = chapter_.out("metrics.json");
  write_file_atomic(path, data_.dump(2) + "\n");
  return path;
}

}  // namespace dm
