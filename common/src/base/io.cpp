#include "dm/base/io.hpp"

#include <unistd.h>

#include <fstream>
#include <iostream>

#include "dm/base/core.hpp"

namespace dm {

void write_file_atomic(const std::filesystem::path& path, const std::string& contents) {
  if (path.has_parent_path()) std::filesystem::create_directories(path.parent_path());
  auto tmp = path;
  tmp += ".tmp." + std::to_string(::getpid());
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw Error("cannot write '" + tmp.string() + "'", "check that the folder is writable");
    f << contents;
    f.flush();
    if (!f) throw Error("write to '" + tmp.string() + "' failed", "is the disk full?");
  }
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp);
    throw Error("cannot rename '" + tmp.string() + "' to '" + path.string() + "': " + ec.message());
  }
}

}  // namespace dm
