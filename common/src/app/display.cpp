// dm/display — base64 for the notebook's mime bundles, and image display.
#include "dm/app/display.hpp"

#include <algorithm>
#include <array>
#include <cstdint>

#include "dm/base/core.hpp"

namespace dm {

namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// The value 0..63 of each alphabet character; -1 for every other byte.
std::array<int, 256> decoding_table() {
  std::array<int, 256> table{};
  table.fill(-1);
  for (int i = 0; i < 64; ++i) table[static_cast<unsigned char>(kAlphabet[i])] = i;
  return table;
}

}  // namespace

std::string base64_encode(const std::string& bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  // Every 3 bytes (24 bits) become 4 characters of 6 bits each.
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t n = std::min<size_t>(3, bytes.size() - i);
    uint32_t group = 0;
    for (size_t k = 0; k < 3; ++k)
      group = (group << 8) | (k < n ? static_cast<unsigned char>(bytes[i + k]) : 0u);
    for (size_t k = 0; k < 4; ++k) out += k <= n ? kAlphabet[(group >> (18 - 6 * k)) & 63] : '=';
  }
  return out;
}

std::string base64_decode(const std::string& text) {
  static const std::array<int, 256> table = decoding_table();
  if (text.size() % 4 != 0)
    throw Error("base64: length " + std::to_string(text.size()) + " is not a multiple of 4");
  std::string out;
  out.reserve(text.size() / 4 * 3);
  for (size_t i = 0; i < text.size(); i += 4) {
    // '=' may only pad the last group, as its last one or two characters.
    const bool last = i + 4 == text.size();
    const int pad = last ? (text[i + 3] == '=') + (text[i + 2] == '=' && text[i + 3] == '=') : 0;
    uint32_t group = 0;
    for (size_t k = 0; k < 4; ++k) {
      const int value = k < 4u - pad ? table[static_cast<unsigned char>(text[i + k])] : 0;
      if (value < 0) throw Error("base64: invalid character at position " + std::to_string(i + k));
      group = (group << 6) | static_cast<uint32_t>(value);
    }
    for (int k = 0; k < 3 - pad; ++k) out += static_cast<char>((group >> (16 - 8 * k)) & 255);
  }
  return out;
}

}  // namespace dm

namespace dm::image {

Image show(const torch::Tensor& batch_or_image, int nrow, double lo, double hi) {
  const auto dims = batch_or_image.dim();
  if (dims < 2 || dims > 4)
    throw Error("image::show: expected [H, W], [C, H, W] or a batch [N, C, H, W], got " +
                std::to_string(dims) + " dimensions");
  torch::Tensor pixels = batch_or_image.detach().to(torch::kCPU);
  // A batch becomes one grid; padding at `hi` shows as white between images.
  if (dims == 4) pixels = make_grid(pixels, nrow, 2, hi);
  return Image{pixels, lo, hi};
}

}  // namespace dm::image
