// dm/app/display.hpp — figures and images shown inline in a Jupyter notebook.
//
// The C++ kernels (xeus-cling, xeus-cpp) show a value with xcpp::display(x),
// which finds `mime_bundle_repr(x)` by argument-dependent lookup and sends the
// JSON object it returns, {mime type: data}, to the notebook:
//
//   dm::plot::Figure fig;
//   fig.ax().line(xs, ys, "p(x)");
//   xcpp::display(fig);                                // an SVG drawn by gnuplot
//   xcpp::display(dm::image::show(samples, 8));        // a PNG grid of a batch
//
// Binary data (PNG) travels base64-encoded (RFC 4648), as Jupyter expects.
//
// The two mime_bundle_repr are defined here, inline, on purpose: the JSON type
// they return is then the one of the translation unit that calls them (the
// kernel ships its own nlohmann::json, possibly another version than the one
// libdm was built with). Everything they call crosses into libdm as a
// std::string.
#pragma once

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <string>

#include "dm/app/image.hpp"
#include "dm/app/plot.hpp"

namespace dm {

// Base64 with the standard alphabet and '=' padding (RFC 4648, section 4).
std::string base64_encode(const std::string& bytes);
// The inverse; throws dm::Error on a character outside the alphabet or a
// length that is not a multiple of 4.
std::string base64_decode(const std::string& text);

}  // namespace dm

namespace dm::plot {

// {"image/svg+xml": the figure rendered by gnuplot}.
inline nlohmann::json mime_bundle_repr(const Figure& fig) {
  return nlohmann::json{{"image/svg+xml", fig.svg()}};
}

}  // namespace dm::plot

namespace dm::image {

// An image ready to display: pixels [C, H, W] or [H, W] (C = 1 or 3) whose
// values in [lo, hi] map to black..white.
struct Image {
  torch::Tensor pixels;
  double lo = 0.0, hi = 1.0;
};

// One image [C, H, W] / [H, W], or a batch [N, C, H, W] tiled `nrow` per row
// (make_grid, white padding). Values default to the [-1, 1] of the data.
Image show(const torch::Tensor& batch_or_image, int nrow = 8, double lo = -1.0, double hi = 1.0);

// {"image/png": base64 of the PNG file}.
inline nlohmann::json mime_bundle_repr(const Image& image) {
  return nlohmann::json{{"image/png", base64_encode(encode_png(image.pixels, image.lo, image.hi))}};
}

}  // namespace dm::image
