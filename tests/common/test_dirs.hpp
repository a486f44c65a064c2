// A fresh, empty scratch folder for a test: <tmp>/dm_test_<name>_<pid>.
#pragma once

#include <unistd.h>

#include <filesystem>
#include <string>

namespace dm_test {

inline std::filesystem::path fresh_dir(const std::string& name) {
  auto dir = std::filesystem::temp_directory_path() /
             ("dm_test_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

}  // namespace dm_test
