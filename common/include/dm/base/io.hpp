// dm/base/io.hpp — files written atomically (a crash never leaves half a file).
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>

namespace dm {

using json = nlohmann::json;

// Writes `contents` to `path` atomically: a temporary file in the same folder,
// then rename(), so a crash never leaves a half-written file behind.
void write_file_atomic(const std::filesystem::path& path, const std::string& contents);

}  // namespace dm
