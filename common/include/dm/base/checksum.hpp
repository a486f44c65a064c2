// dm/base/checksum.hpp — checksums of the tensors a file stores, so a changed
// or damaged weight is an error at load instead of a silently different model.
//
// Every file the suite writes with weights (training checkpoints, exported
// weights, the classifier) records tensors_checksum(...) of what it stores in
// its JSON description under "checksum"; the loaders recompute it over what
// they read and throw dm::Error on a mismatch. The checksum is CRC-32 (zlib)
// over each tensor's name, dtype, shape and bytes, in the order of the names,
// written "crc32:1a2b3c4d"; build/bin/checkpoint_info prints and checks it.
#pragma once

#include <torch/torch.h>

#include <filesystem>
#include <string>
#include <utility>
#include <vector>

namespace dm {

using NamedTensors = std::vector<std::pair<std::string, torch::Tensor>>;

// A module's parameters and buffers, recursively, in registration order.
NamedTensors named_state(const torch::nn::Module& module);

// The checksum of `tensors`, taken in the order of their names (unique), each
// read as a contiguous CPU copy, so device and memory format do not change it.
std::string tensors_checksum(const NamedTensors& tensors);

// Throws dm::Error naming `path` and `part` when `stored` (a description's
// "checksum" entry; empty for files written before checksums existed, which
// are accepted) differs from `computed`.
void verify_checksum(const std::string& stored, const std::string& computed,
                     const std::filesystem::path& path, const std::string& part = "weights");

}  // namespace dm
