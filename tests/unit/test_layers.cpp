// The library's layers: common/include/dm/<layer>/ and common/src/<layer>/, in
// the order
//   base → diffusion → nn → data → methods → app → notebook,
// and a file of one layer includes "dm/<layer>/..." headers of its own layer
// or of earlier ones only. Nor does it include a header directly under dm/
// (such as the umbrella dm/dm.hpp, which is for users of the library). The
// test reads the source tree, found from this file's path
// (<root>/tests/unit/test_layers.cpp) or from $DM_SOURCE_DIR.
#include <gtest/gtest.h>

#include "test_dirs.hpp"

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

const std::vector<std::string> kLayers = {"base",    "diffusion", "nn",      "data",
                                          "methods", "app",       "notebook"};
const std::string kOrder = "base → diffusion → nn → data → methods → app → notebook";

// The position of `layer` in kLayers, or -1.
int layer_rank(const std::string& layer) {
  const auto it = std::find(kLayers.begin(), kLayers.end(), layer);
  return it == kLayers.end() ? -1 : int(it - kLayers.begin());
}

fs::path source_root() {
  if (const char* env = std::getenv("DM_SOURCE_DIR")) return fs::path(env);
  return fs::absolute(fs::path(__FILE__)).parent_path().parent_path().parent_path();
}

// Every include under root/common/{include/dm,src}/<layer>/ that breaks the
// layering, one message each: "file:line: ...", the file relative to root.
std::vector<std::string> layer_violations(const fs::path& root) {
  static const std::regex include_re(R"(^\s*#\s*include\s*["<]dm/([^">]*)[">])");
  std::vector<std::string> found;
  for (const fs::path& top : {root / "common" / "include" / "dm", root / "common" / "src"}) {
    if (!fs::is_directory(top)) continue;
    std::vector<fs::path> layer_dirs;  // sorted, so the messages come in a fixed order
    for (const auto& entry : fs::directory_iterator(top)) {
      if (entry.is_directory()) layer_dirs.push_back(entry.path());
    }
    std::sort(layer_dirs.begin(), layer_dirs.end());
    for (const auto& layer_dir : layer_dirs) {
      const std::string layer = layer_dir.filename().string();
      const int rank = layer_rank(layer);
      std::vector<fs::path> files;
      for (const auto& entry : fs::recursive_directory_iterator(layer_dir)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
      }
      std::sort(files.begin(), files.end());
      for (const auto& file : files) {
        const std::string name = fs::relative(file, root).generic_string();
        if (rank < 0) {
          found.push_back(name + ": in the folder `" + layer + "`, which is not a layer (" +
                          kOrder + ")");
          continue;
        }
        std::ifstream in(file);
        std::string line;
        for (int number = 1; std::getline(in, line); ++number) {
          std::smatch m;
          if (!std::regex_search(line, m, include_re)) continue;
          const std::string target = m[1].str();  // e.g. "app/cli.hpp"
          const std::string where = name + ":" + std::to_string(number) + ": ";
          const auto slash = target.find('/');
          if (slash == std::string::npos) {
            found.push_back(where + "layer `" + layer + "` includes \"dm/" + target +
                            "\", a header outside the layers (include the layer's header instead)");
            continue;
          }
          const std::string other = target.substr(0, slash);
          const int other_rank = layer_rank(other);
          if (other_rank < 0) {
            found.push_back(where + "layer `" + layer + "` includes \"dm/" + target + "\": `" +
                            other + "` is not a layer");
          } else if (other_rank > rank) {
            found.push_back(where + "layer `" + layer + "` includes \"dm/" + target +
                            "\" of layer `" + other + "`, which comes later (" + kOrder + ")");
          }
        }
      }
    }
  }
  return found;
}

// Whether one of `found` contains `part`.
bool reported(const std::vector<std::string>& found, const std::string& part) {
  return std::any_of(found.begin(), found.end(),
                     [&](const std::string& v) { return v.find(part) != std::string::npos; });
}

}  // namespace

TEST(Layers, IncludesPointDownTheLayers) {
  const fs::path root = source_root();
  ASSERT_TRUE(fs::is_directory(root / "common" / "include" / "dm"))
      << "no source tree at " << root << " (set DM_SOURCE_DIR)";
  for (const auto& v : layer_violations(root)) ADD_FAILURE() << v;
}

// The check can fail: a planted wrong-way include, a flat include and a folder
// that is no layer are each reported; right-way includes are not.
TEST(Layers, ReportsAPlantedWrongWayInclude) {
  const fs::path root = dm_test::fresh_dir("layers");
  auto write = [&](const fs::path& rel, const std::string& text) {
    fs::create_directories((root / rel).parent_path());
    std::ofstream(root / rel) << text;
  };
  write("common/include/dm/base/bad.hpp", R"(#pragma once
#include <vector>
#include "dm/base/core.hpp"
#include "dm/app/cli.hpp"
)");
  write("common/src/methods/good.cpp", R"(#include "dm/methods/ddpm.hpp"
#include "dm/data/toy.hpp"
#include "dm/base/io.hpp"
)");
  write("common/src/nn/flat.cpp", "#include <torch/torch.h>\n  #include \"dm/dm.hpp\"\n");
  write("common/src/extras/x.cpp", "\n");
  write("common/include/dm/dm.hpp", "#include \"dm/app/cli.hpp\"\n");  // the umbrella may

  const auto found = layer_violations(root);
  EXPECT_EQ(found.size(), 3u) << ::testing::PrintToString(found);
  EXPECT_TRUE(reported(found,
                       "common/include/dm/base/bad.hpp:4: layer `base` includes "
                       "\"dm/app/cli.hpp\" of layer `app`, which comes later"))
      << ::testing::PrintToString(found);
  EXPECT_TRUE(reported(found, "common/src/nn/flat.cpp:2: layer `nn` includes \"dm/dm.hpp\""))
      << ::testing::PrintToString(found);
  EXPECT_TRUE(
      reported(found, "common/src/extras/x.cpp: in the folder `extras`, which is not a layer"))
      << ::testing::PrintToString(found);
  fs::remove_all(root);
}

namespace {

// The chain of "dm/..." includes from `header` (relative to common/include) to
// a LibTorch header (<torch/...>, <ATen/...>, <c10/...>), or empty if there is
// none: what a C++ interpreter would have to compile.
std::vector<std::string> chain_to_libtorch(const fs::path& include_root, const std::string& header,
                                           std::vector<std::string>& seen) {
  if (std::find(seen.begin(), seen.end(), header) != seen.end()) return {};
  seen.push_back(header);
  std::ifstream in(include_root / header);
  const std::regex include_line(R"(^\s*#\s*include\s*([<"])([^>"]+)[>"])");
  std::string line;
  std::smatch m;
  while (std::getline(in, line)) {
    if (!std::regex_search(line, m, include_line)) continue;
    const std::string target = m[2];
    if (target.rfind("torch/", 0) == 0 || target.rfind("ATen/", 0) == 0 ||
        target.rfind("c10/", 0) == 0)
      return {header, target};
    if (m[1] == "\"" && target.rfind("dm/", 0) == 0) {
      auto rest = chain_to_libtorch(include_root, target, seen);
      if (!rest.empty()) {
        rest.insert(rest.begin(), header);
        return rest;
      }
    }
  }
  return {};
}

std::vector<std::string> chain_to_libtorch(const fs::path& include_root,
                                           const std::string& header) {
  std::vector<std::string> seen;
  return chain_to_libtorch(include_root, header, seen);
}

}  // namespace

// The notebook API (dm/notebook.hpp and everything it includes) reaches no
// LibTorch header: notebooks run in interpreters that cannot compile them.
TEST(Layers, TheNotebookHeadersReachNoLibTorchHeader) {
  const fs::path include_root = source_root() / "common" / "include";
  ASSERT_TRUE(fs::exists(include_root / "dm" / "notebook.hpp")) << include_root;
  std::vector<std::string> headers = {"dm/notebook.hpp"};
  for (const auto& entry : fs::directory_iterator(include_root / "dm" / "notebook"))
    headers.push_back("dm/notebook/" + entry.path().filename().string());
  for (const auto& header : headers) {
    const auto chain = chain_to_libtorch(include_root, header);
    std::string text;
    for (const auto& link : chain) text += (text.empty() ? "" : " → ") + link;
    EXPECT_TRUE(chain.empty()) << "a LibTorch header is reachable: " << text;
  }
  // The check can fail: the library's umbrella header reaches LibTorch.
  EXPECT_FALSE(chain_to_libtorch(include_root, "dm/dm.hpp").empty());
}
