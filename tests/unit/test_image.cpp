// Tests of dm/image: grid layout and padding, PNG pixel values read back
// with stb_image, and clear errors for bad shapes and unwritable paths.
#include <gtest/gtest.h>

#include "test_dirs.hpp"
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>

#include "dm/base/core.hpp"
#include "dm/app/image.hpp"

// The decoder, for this test file only (static: no symbols leak into the
// test executable, where other files may include stb too).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wall"
#pragma GCC diagnostic ignored "-Wextra"
#pragma GCC diagnostic ignored "-Wpedantic"
#pragma GCC diagnostic ignored "-Wunused-function"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#define STB_IMAGE_STATIC
#define STB_IMAGE_IMPLEMENTATION
#if __has_include(<stb_image.h>)
#include <stb_image.h>
#else
#include <stb/stb_image.h>
#endif
#pragma GCC diagnostic pop

namespace fs = std::filesystem;

namespace {

using dm_test::fresh_dir;

// A decoded PNG: its size, channel count and pixels as a [H, W, C] uint8 tensor.
struct Decoded {
  int width = 0, height = 0, channels = 0;
  torch::Tensor pixels;
};

Decoded decode(const std::string& bytes) {
  Decoded d;
  std::unique_ptr<stbi_uc, void (*)(void*)> data(
      stbi_load_from_memory(reinterpret_cast<const stbi_uc*>(bytes.data()),
                            static_cast<int>(bytes.size()), &d.width, &d.height, &d.channels, 0),
      stbi_image_free);
  if (!data) throw std::runtime_error(std::string("stb_image: ") + stbi_failure_reason());
  d.pixels = torch::from_blob(data.get(), {d.height, d.width, d.channels}, torch::kUInt8).clone();
  return d;
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

TEST(Image, MakeGridShapeAndPadding) {
  // Five 3×4×6 images, image k filled with k + 1; 2 per row → 3 rows, the
  // last cell empty. Each cell is (4 + 2) × (6 + 2), plus 2 closing pixels.
  const auto batch =
      torch::arange(1, 6, torch::kFloat32).reshape({5, 1, 1, 1}).expand({5, 3, 4, 6});
  const auto grid = dm::image::make_grid(batch, 2, 2, 0.5);
  ASSERT_EQ(grid.sizes(), (std::vector<int64_t>{3, 3 * 6 + 2, 2 * 8 + 2}));

  for (int64_t k = 0; k < 5; ++k) {
    const int64_t y = (k / 2) * 6 + 2, x = (k % 2) * 8 + 2;
    EXPECT_TRUE(torch::all(grid.narrow(1, y, 4).narrow(2, x, 6) == k + 1).item<bool>()) << k;
  }
  // Everything outside the five images is padding: 3 channels × (20·18 − 5·4·6) pixels.
  EXPECT_EQ((grid == 0.5).sum().item<int64_t>(), 3 * (20 * 18 - 5 * 4 * 6));
  EXPECT_TRUE(torch::all(grid.select(1, 0) == 0.5).item<bool>());   // top border
  EXPECT_TRUE(torch::all(grid.select(2, 17) == 0.5).item<bool>());  // right border
}

TEST(Image, MakeGridFewerImagesThanARow) {
  const auto grid = dm::image::make_grid(torch::zeros({3, 1, 5, 5}), 8, 1);
  EXPECT_EQ(grid.sizes(), (std::vector<int64_t>{1, 5 + 2, 3 * 6 + 1}));
  EXPECT_EQ(dm::image::make_grid(torch::zeros({4, 3, 2, 2}), 2, 0).sizes(),
            (std::vector<int64_t>{3, 4, 4}));
}

TEST(Image, MakeGridRejectsBadArguments) {
  EXPECT_THROW(dm::image::make_grid(torch::zeros({3, 5, 5})), dm::Error);
  EXPECT_THROW(dm::image::make_grid(torch::zeros({0, 3, 5, 5})), dm::Error);
  EXPECT_THROW(dm::image::make_grid(torch::zeros({2, 3, 5, 5}), 0), dm::Error);
  EXPECT_THROW(dm::image::make_grid(torch::zeros({2, 3, 5, 5}), 2, -1), dm::Error);
}

TEST(Image, SavePngRoundTripsPixelValues) {
  const fs::path dir = fresh_dir("image_png");
  // Values k/255 in [0, 1] come back as exactly k.
  const auto levels =
      torch::arange(0, 3 * 5 * 7, torch::kFloat64).remainder(256).reshape({3, 5, 7});
  dm::image::save_png(levels / 255.0, dir / "sub" / "rgb.png");
  const Decoded d = decode(read_file(dir / "sub" / "rgb.png"));
  EXPECT_EQ(d.width, 7);
  EXPECT_EQ(d.height, 5);
  ASSERT_EQ(d.channels, 3);
  EXPECT_TRUE(torch::equal(d.pixels.permute({2, 0, 1}).to(torch::kFloat64), levels));
  fs::remove_all(dir);
}

TEST(Image, SavePngMapsRangeWithClampingAndRounding) {
  const fs::path dir = fresh_dir("image_range");
  // [H, W] in [−1, 1]: −2 and 2 clamp; 0.3 ↦ 255·1.3/2 = 165.75 → 166 (rounded,
  // not truncated), 0.9 ↦ 242.25 → 242.
  const auto gray = torch::tensor({-2.0, -1.0, 0.3, 0.9, 1.0, 2.0}).reshape({2, 3});
  dm::image::save_png(gray, dir / "gray.png", -1.0, 1.0);
  const Decoded d = decode(read_file(dir / "gray.png"));
  ASSERT_EQ(d.channels, 1);
  EXPECT_TRUE(
      torch::equal(d.pixels.flatten(), torch::tensor({0, 0, 166, 242, 255, 255}, torch::kUInt8)));
  fs::remove_all(dir);
}

TEST(Image, EncodePngMatchesTheFile) {
  const fs::path dir = fresh_dir("image_encode");
  const auto image = torch::rand({1, 9, 4});
  dm::image::save_png(image, dir / "a.png");
  const std::string bytes = dm::image::encode_png(image);
  EXPECT_EQ(bytes, read_file(dir / "a.png"));
  const Decoded d = decode(bytes);
  EXPECT_EQ(d.width, 4);
  EXPECT_EQ(d.height, 9);
  fs::remove_all(dir);
}

TEST(Image, SaveGridPadsWithWhite) {
  const fs::path dir = fresh_dir("image_grid");
  dm::image::save_grid(-torch::ones({3, 3, 4, 4}), dir / "grid.png", 2);
  const Decoded d = decode(read_file(dir / "grid.png"));
  EXPECT_EQ(d.width, 2 * 6 + 2);
  EXPECT_EQ(d.height, 2 * 6 + 2);
  EXPECT_EQ(d.pixels[0][0][0].item<int>(), 255);  // padding at hi = 1 is white
  EXPECT_EQ(d.pixels[2][2][0].item<int>(), 0);    // image value lo = −1 is black
  fs::remove_all(dir);
}

TEST(Image, BadShapeThrows) {
  const fs::path dir = fresh_dir("image_bad");
  EXPECT_THROW(dm::image::save_png(torch::zeros({2, 4, 4}), dir / "x.png"), dm::Error);
  EXPECT_THROW(dm::image::save_png(torch::zeros({4, 4, 4}), dir / "x.png"), dm::Error);
  EXPECT_THROW(dm::image::save_png(torch::zeros({1, 3, 4, 4}), dir / "x.png"), dm::Error);
  EXPECT_THROW(dm::image::save_png(torch::zeros({4}), dir / "x.png"), dm::Error);
  EXPECT_THROW(dm::image::save_png(torch::zeros({4, 4}), dir / "x.png", 1.0, 1.0), dm::Error);
  EXPECT_THROW(dm::image::encode_png(torch::zeros({3, 0, 4})), dm::Error);
  EXPECT_FALSE(fs::exists(dir / "x.png"));
  fs::remove_all(dir);
}

TEST(Image, UnwritablePathThrows) {
  const fs::path dir = fresh_dir("image_unwritable");
  std::ofstream(dir / "a_file") << "not a folder";
  EXPECT_THROW(dm::image::save_png(torch::zeros({4, 4}), dir / "a_file" / "x.png"), dm::Error);
  fs::remove_all(dir);
}
