#include "dm/base/checksum.hpp"

#include <zlib.h>

#include <algorithm>
#include <cstdio>

#include "dm/base/core.hpp"

namespace dm {

NamedTensors named_state(const torch::nn::Module& module) {
  NamedTensors out;
  for (const auto& p : module.named_parameters()) out.emplace_back(p.key(), p.value());
  for (const auto& b : module.named_buffers()) out.emplace_back(b.key(), b.value());
  return out;
}

namespace {
uLong crc_bytes(uLong crc, const void* data, size_t n) {
  const auto* p = static_cast<const Bytef*>(data);
  while (n > 0) {  // zlib takes at most 4 GiB per call
    const auto chunk = static_cast<uInt>(std::min<size_t>(n, size_t(1) << 30));
    crc = crc32(crc, p, chunk);
    p += chunk;
    n -= chunk;
  }
  return crc;
}
uLong crc_text(uLong crc, const std::string& s) { return crc_bytes(crc, s.data(), s.size()); }
}  // namespace

std::string tensors_checksum(const NamedTensors& tensors) {
  std::vector<const std::pair<std::string, torch::Tensor>*> sorted;
  for (const auto& t : tensors) sorted.push_back(&t);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });
  uLong crc = crc32(0L, Z_NULL, 0);
  for (const auto* entry : sorted) {
    const auto& [name, tensor] = *entry;
    crc = crc_text(crc, name);
    if (!tensor.defined()) {
      crc = crc_text(crc, "undefined");
      continue;
    }
    const auto t = tensor.detach().to(torch::kCPU).contiguous();
    crc = crc_text(crc, std::string(c10::toString(t.scalar_type())));
    for (const auto d : t.sizes()) crc = crc_text(crc, std::to_string(d) + ",");
    crc = crc_bytes(crc, t.data_ptr(), t.nbytes());
  }
  char out[16];
  std::snprintf(out, sizeof out, "%08lx", static_cast<unsigned long>(crc & 0xffffffffUL));
  return std::string("crc32:") + out;
}

void verify_checksum(const std::string& stored, const std::string& computed,
                     const std::filesystem::path& path, const std::string& part) {
  if (stored.empty() || stored == computed) return;
  throw Error("checkpoint " + path.string() + ": its " + part +
                  " do not match the checksum stored with them (" + stored + ", read " + computed +
                  "): the file was changed or damaged after it was written",
              "restore it (git checkout -- data/checkpoints/ for a shipped file) or train again");
}

}  // namespace dm
