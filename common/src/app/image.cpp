// image.cpp — image grids and PNG files, written with stb_image_write.
#include "dm/app/image.hpp"

#include "dm/base/core.hpp"

// stb is C written for every compiler at once; its warnings are not ours.
// STB_IMAGE_WRITE_STATIC keeps its symbols out of libdm's exported interface.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wconversion"
#define STB_IMAGE_WRITE_STATIC
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>
#pragma GCC diagnostic pop

#include <cstdint>
#include <string>

namespace dm::image {

namespace fs = std::filesystem;

namespace {

std::string shape_of(const torch::Tensor& t) {
  std::string s = "[";
  for (int64_t d = 0; d < t.dim(); ++d) s += (d ? ", " : "") + std::to_string(t.size(d));
  return s + "]";
}

// The image as 8-bit pixels in row-major [H, W, C] order (what PNG stores):
// v ↦ round(255·(v − lo)/(hi − lo)), clamped to 0..255; NaN becomes 0.
torch::Tensor to_pixels(const torch::Tensor& image, double lo, double hi) {
  if (!image.defined()) throw Error("image: the tensor is undefined");
  if (!(lo < hi))
    throw Error("image: need lo < hi, got lo = " + std::to_string(lo) +
                ", hi = " + std::to_string(hi));
  torch::Tensor chw = image.detach();
  if (chw.dim() == 2) chw = chw.unsqueeze(0);
  if (chw.dim() != 3 || (chw.size(0) != 1 && chw.size(0) != 3))
    throw Error("image: expected [C, H, W] with C = 1 or 3, or [H, W]; got " + shape_of(image));
  if (chw.size(1) == 0 || chw.size(2) == 0)
    throw Error("image: the image is empty " + shape_of(image));
  const torch::Tensor scaled = ((chw.to(torch::kCPU, torch::kFloat64) - lo) * (255.0 / (hi - lo)))
                                   .round()
                                   .clamp(0.0, 255.0)
                                   .nan_to_num(0.0);
  return scaled.to(torch::kUInt8).permute({1, 2, 0}).contiguous();
}

}  // namespace

torch::Tensor make_grid(const torch::Tensor& batch, int nrow, int padding, double pad_value) {
  if (!batch.defined() || batch.dim() != 4 || batch.size(0) == 0)
    throw Error("image::make_grid: expected a non-empty batch [N, C, H, W], got " +
                (batch.defined() ? shape_of(batch) : std::string("an undefined tensor")));
  if (nrow < 1 || padding < 0)
    throw Error("image::make_grid: need nrow ≥ 1 and padding ≥ 0, got nrow = " +
                std::to_string(nrow) + ", padding = " + std::to_string(padding));
  const int64_t n = batch.size(0), c = batch.size(1), h = batch.size(2), w = batch.size(3);
  // As torchvision: `cols` images a row, as many rows as needed; every image
  // sits in a (h + p) × (w + p) cell and one more p closes the bottom/right.
  const int64_t cols = std::min<int64_t>(nrow, n), rows = (n + cols - 1) / cols;
  const int64_t cell_h = h + padding, cell_w = w + padding;
  torch::Tensor grid = torch::full({c, rows * cell_h + padding, cols * cell_w + padding}, pad_value,
                                   batch.options());
  for (int64_t k = 0; k < n; ++k) {
    const int64_t y = (k / cols) * cell_h + padding, x = (k % cols) * cell_w + padding;
    grid.narrow(1, y, h).narrow(2, x, w).copy_(batch[k]);
  }
  return grid;
}

void save_png(const torch::Tensor& image, const fs::path& path, double lo, double hi) {
  const torch::Tensor pixels = to_pixels(image, lo, hi);
  if (path.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(path.parent_path(), ec);
    if (ec)
      throw Error("image: cannot create the folder " + path.parent_path().string() + ": " +
                  ec.message());
  }
  const int h = static_cast<int>(pixels.size(0)), w = static_cast<int>(pixels.size(1)),
            c = static_cast<int>(pixels.size(2));
  if (!stbi_write_png(path.c_str(), w, h, c, pixels.data_ptr<uint8_t>(), w * c))
    throw Error("image: cannot write " + path.string(), "check that the folder is writable");
}

std::string encode_png(const torch::Tensor& image, double lo, double hi) {
  const torch::Tensor pixels = to_pixels(image, lo, hi);
  const int h = static_cast<int>(pixels.size(0)), w = static_cast<int>(pixels.size(1)),
            c = static_cast<int>(pixels.size(2));
  std::string bytes;
  // stb hands the encoded file over in chunks; append each to `bytes`.
  const auto append = [](void* context, void* data, int size) {
    static_cast<std::string*>(context)->append(static_cast<const char*>(data),
                                               static_cast<size_t>(size));
  };
  if (!stbi_write_png_to_func(append, &bytes, w, h, c, pixels.data_ptr<uint8_t>(), w * c))
    throw Error("image: PNG encoding failed for an image " + shape_of(image));
  return bytes;
}

void save_grid(const torch::Tensor& batch, const fs::path& path, int nrow, double lo, double hi) {
  // Padding at `hi` shows as white between the images.
  save_png(make_grid(batch, nrow, 2, hi), path, lo, hi);
}

}  // namespace dm::image
