// dm/app/image.hpp — images and image grids as PNG files (for the image chapters).
#pragma once

#include <torch/torch.h>

#include <filesystem>

namespace dm::image {

// Tiles a batch [N, C, H, W] into one image [C, H', W'] with `nrow` images per
// row and `padding` pixels of `pad_value` between them (like torchvision's make_grid).
torch::Tensor make_grid(const torch::Tensor& batch, int nrow = 8, int padding = 2,
                        double pad_value = 1.0);

// Writes an image [C, H, W] or [H, W] (C = 1 or 3) to PNG. Values are mapped
// from [lo, hi] to 0..255 and clamped: pass lo = -1 for data scaled to [-1, 1].
void save_png(const torch::Tensor& image, const std::filesystem::path& path, double lo = 0.0,
              double hi = 1.0);

// Encodes the same as save_png into PNG bytes in memory (for notebooks).
std::string encode_png(const torch::Tensor& image, double lo = 0.0, double hi = 1.0);

// make_grid + save_png in one call.
void save_grid(const torch::Tensor& batch, const std::filesystem::path& path, int nrow = 8,
               double lo = -1.0, double hi = 1.0);

}  // namespace dm::image
