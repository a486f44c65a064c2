// dm/notebook.hpp — the library as a notebook sees it: every chapter's
// mixtures, samplers, trainers, shipped models and figures in plain C++ types
// (std::vector, small structs, Eigen matrices), with no LibTorch header
// reachable. The C++ interpreters under the Jupyter kernels (cling, clang-repl)
// cannot compile LibTorch's headers; they run these declarations, and
// LibTorch's own code runs natively inside libdm.
//
// Show a figure or images with xcpp::display(x):
//   in a kernel (xeus-cling, xeus-cpp)  mime_bundle_repr below sends an SVG / a PNG;
//   anywhere else (clang-repl in the     xcpp::display writes display_NNN.svg /
//   tests, tools/run_notebook.py)        .png in the working directory.
#pragma once

#include "dm/notebook/core.hpp"
#include "dm/notebook/ddpm.hpp"
#include "dm/notebook/langevin.hpp"
#include "dm/notebook/ncsn.hpp"
#include "dm/notebook/score_matching.hpp"
#include "dm/notebook/sde.hpp"

#if __has_include(<xcpp/xdisplay.hpp>)

// A Jupyter kernel: its own nlohmann::json (the one xeus was built with).
#include <nlohmann/json.hpp>

namespace dm::plot {
inline nlohmann::json mime_bundle_repr(const Figure& fig) {
  return nlohmann::json{{"image/svg+xml", fig.svg()}};
}
}  // namespace dm::plot

namespace dm::nb {
inline nlohmann::json mime_bundle_repr(const Picture& picture) {
  return nlohmann::json{{"image/png", picture.png_base64()}};
}
}  // namespace dm::nb

#else

namespace xcpp {
inline void display(const dm::plot::Figure& fig) {
  dm::nb::write_display("image/svg+xml", fig.svg());
}
inline void display(const dm::nb::Picture& picture) {
  dm::nb::write_display("image/png", picture.png);
}
}  // namespace xcpp

#endif
