// tests/unit/test_data.cpp — dm/data.hpp: the IDX reader, Fashion-MNIST
// loading, the colored variant and the batch sampler.
//
// Small IDX files are generated in a scratch folder (gzip'd and plain), so the
// exact pixel values, and every kind of damage a real download can suffer, are
// checked without the real dataset. One test loads the real Debian dataset
// when it is installed.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "dm/base/core.hpp"
#include "dm/data/fashion.hpp"
#include "test_dirs.hpp"

namespace {

namespace fs = std::filesystem;
using dm::data::Dataset;
using dm::data::Split;

const std::string kMissingHint =
    "install dataset-fashion-mnist (bash tools/install-deps.sh) or pass --data DIR / set "
    "DM_DATA_DIR";

// The dm::Error `body` throws (a test failure if it throws none).
dm::Error error_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const dm::Error& e) {
    return e;
  }
  ADD_FAILURE() << "expected a dm::Error";
  return dm::Error("");
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}
#define EXPECT_CONTAINS(text, part) \
  EXPECT_TRUE(contains(text, part)) << "'" << (text) << "' lacks '" << (part) << "'"

std::vector<uint8_t> read_bytes(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const fs::path& file, const std::vector<uint8_t>& bytes) {
  std::ofstream out(file, std::ios::binary);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

// n images whose pixel (r, c) of image i is (i·31 + r·28 + c) mod 256 — every
// byte value from 0 to 255 appears — and labels i mod 10.
torch::Tensor test_pixels(int64_t n, int64_t h = 28, int64_t w = 28) {
  return (torch::arange(n).view({n, 1, 1}) * 31 + torch::arange(h).view({1, h, 1}) * 28 +
          torch::arange(w).view({1, 1, w}))
      .remainder(256)
      .to(torch::kUInt8);
}
torch::Tensor test_labels(int64_t n) { return torch::arange(n).remainder(10).to(torch::kUInt8); }

// A split in `dir` in the layout of the Debian package (".gz" or plain names).
void write_split(const fs::path& dir, const std::string& prefix, const torch::Tensor& pixels,
                 const torch::Tensor& labels, bool gzip = true) {
  const std::string ext = gzip ? ".gz" : "";
  dm::data::write_idx(dir / (prefix + "-images-idx3-ubyte" + ext), pixels);
  dm::data::write_idx(dir / (prefix + "-labels-idx1-ubyte" + ext), labels);
}

// Sets (or unsets, with nullopt) DM_DATA_DIR for one scope.
class ScopedDataEnv {
 public:
  explicit ScopedDataEnv(const std::optional<std::string>& value) {
    if (const char* old = std::getenv("DM_DATA_DIR")) old_ = old;
    if (value)
      ::setenv("DM_DATA_DIR", value->c_str(), 1);
    else
      ::unsetenv("DM_DATA_DIR");
  }
  ~ScopedDataEnv() {
    if (old_)
      ::setenv("DM_DATA_DIR", old_->c_str(), 1);
    else
      ::unsetenv("DM_DATA_DIR");
  }

 private:
  std::optional<std::string> old_;
};

// ---------------------------------------------------------------------------
// The IDX format.

TEST(DataIdx, WritesTheDocumentedBytes) {
  const auto dir = dm_test::fresh_dir("data_idx_bytes");
  dm::data::write_idx(dir / "x", torch::tensor({7, 8, 9, 10, 11, 12}, torch::kUInt8).view({2, 3}));
  // Magic 00 00 08 02 (unsigned bytes, 2 dims), sizes 2 and 3 big-endian, data.
  EXPECT_EQ(read_bytes(dir / "x"),
            (std::vector<uint8_t>{0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 7, 8, 9, 10, 11, 12}));
  dm::data::write_idx(dir / "x.gz", torch::zeros({4}, torch::kUInt8));
  const auto gz = read_bytes(dir / "x.gz");
  ASSERT_GE(gz.size(), 2u);
  EXPECT_EQ(gz[0], 0x1f);  // the gzip magic bytes
  EXPECT_EQ(gz[1], 0x8b);
}

TEST(DataIdx, ReadsGzipAndPlainAlike) {
  const auto dir = dm_test::fresh_dir("data_idx_read");
  const auto pixels = test_pixels(5);
  dm::data::write_idx(dir / "a.gz", pixels);
  dm::data::write_idx(dir / "a", pixels);
  for (const auto* name : {"a.gz", "a"}) {
    const auto back = dm::data::read_idx(dir / name);
    EXPECT_EQ(back.scalar_type(), torch::kUInt8);
    EXPECT_EQ(back.sizes(), pixels.sizes());
    EXPECT_TRUE(torch::equal(back, pixels)) << name;
  }
  // gzip is recognised by its magic bytes, not by the file name.
  fs::copy_file(dir / "a.gz", dir / "b");
  EXPECT_TRUE(torch::equal(dm::data::read_idx(dir / "b", 3), pixels));
}

TEST(DataIdx, DecodesEveryMemberOfAConcatenatedGzip) {
  // `cat a.gz b.gz` is valid gzip: it decodes to a's content then b's. Two
  // copies of a 1-D IDX file with 5 data bytes decode to 2·(8 + 5) bytes, i.e.
  // 5 + 13 = 18 bytes after the first header: both members were decoded.
  const auto dir = dm_test::fresh_dir("data_idx_members");
  dm::data::write_idx(dir / "one.gz", test_labels(5));
  auto bytes = read_bytes(dir / "one.gz");
  const auto one = bytes;
  bytes.insert(bytes.end(), one.begin(), one.end());
  write_bytes(dir / "two.gz", bytes);
  const std::string what = error_of([&] { dm::data::read_idx(dir / "two.gz"); }).what();
  EXPECT_CONTAINS(what, "expected 5 data bytes");
  EXPECT_CONTAINS(what, "found 18 (trailing bytes)");
}

// ---------------------------------------------------------------------------
// Loading Fashion-MNIST: padding, scaling, labels, limit, location.

TEST(DataLoad, PadsWithMinusOneAndScalesExactly) {
  const auto dir = dm_test::fresh_dir("data_load");
  const auto pixels = test_pixels(4);
  write_split(dir, "train", pixels, test_labels(4));
  const Dataset data = dm::data::load_fashion_mnist(Split::train, dir);

  ASSERT_EQ(data.size(), 4);
  EXPECT_EQ(data.images.sizes(), (std::vector<int64_t>{4, 1, 32, 32}));
  EXPECT_EQ(data.images.scalar_type(), torch::kFloat32);
  EXPECT_EQ(data.labels.scalar_type(), torch::kInt64);
  EXPECT_TRUE(torch::equal(data.labels, torch::tensor({0, 1, 2, 3}, torch::kInt64)));

  // Interior: x = p/127.5 − 1, computed here in double: the float32 values are its roundings.
  const auto inner = data.images.narrow(2, 2, 28).narrow(3, 2, 28).squeeze(1);
  const auto want = pixels.to(torch::kFloat64) / 127.5 - 1.0;
  EXPECT_TRUE(torch::equal(inner, want.to(torch::kFloat32)));
  // The ends of the range are exact: byte 0 → −1, byte 255 → 1.
  EXPECT_EQ(data.images.min().item<float>(), -1.0f);
  EXPECT_EQ(data.images.max().item<float>(), 1.0f);
  EXPECT_GT((pixels == 0).sum().item<int64_t>(), 0);
  EXPECT_GT((pixels == 255).sum().item<int64_t>(), 0);
  EXPECT_TRUE(torch::all(inner.masked_select(pixels == 0) == -1.0f).item<bool>());
  EXPECT_TRUE(torch::all(inner.masked_select(pixels == 255) == 1.0f).item<bool>());

  // Border: 2 pixels of −1 on every side.
  auto border = torch::ones({32, 32}, torch::kBool);
  border.narrow(0, 2, 28).narrow(1, 2, 28).fill_(false);
  for (int64_t i = 0; i < 4; ++i) {
    const auto values = data.images[i][0].masked_select(border);
    EXPECT_EQ(values.numel(), 32 * 32 - 28 * 28);
    EXPECT_TRUE(torch::all(values == -1.0f).item<bool>());
  }
}

TEST(DataLoad, PlainFilesTestSplitAndLimit) {
  const auto dir = dm_test::fresh_dir("data_load_plain");
  const auto pixels = test_pixels(7);
  write_split(dir, "t10k", pixels, test_labels(7), /*gzip=*/false);
  const auto all = dm::data::load_fashion_mnist(Split::test, dir);
  EXPECT_EQ(all.size(), 7);
  const auto first3 = dm::data::load_fashion_mnist(Split::test, dir, 3);
  ASSERT_EQ(first3.size(), 3);
  EXPECT_TRUE(torch::equal(first3.images, all.images.narrow(0, 0, 3)));
  EXPECT_TRUE(torch::equal(first3.labels, all.labels.narrow(0, 0, 3)));
  EXPECT_EQ(dm::data::load_fashion_mnist(Split::test, dir, 100).size(), 7);  // limit above N: all
  EXPECT_EQ(dm::data::load_fashion_mnist(Split::test, dir, 0).size(), 0);
  // The train split is not there: the t10k files do not stand in for it.
  EXPECT_THROW(dm::data::load_fashion_mnist(Split::train, dir), dm::Error);
}

TEST(DataLoad, GzipPreferredOverPlain) {
  const auto dir = dm_test::fresh_dir("data_load_prefer");
  write_split(dir, "train", test_pixels(2), test_labels(2), /*gzip=*/true);
  write_split(dir, "train", test_pixels(3), test_labels(3), /*gzip=*/false);
  EXPECT_EQ(dm::data::load_fashion_mnist(Split::train, dir).size(), 2);
}

TEST(DataLoad, LocationFlagThenEnvThenDebian) {
  const auto env_dir = dm_test::fresh_dir("data_env");
  const auto flag_dir = dm_test::fresh_dir("data_flag");
  write_split(env_dir, "train", test_pixels(2), test_labels(2));
  write_split(flag_dir, "train", test_pixels(5), test_labels(5));
  {
    ScopedDataEnv env(std::nullopt);
    EXPECT_EQ(dm::data::fashion_mnist_dir(), fs::path("/usr/share/datasets/fashion-mnist"));
    EXPECT_EQ(dm::data::fashion_mnist_dir(flag_dir), flag_dir);
  }
  {
    ScopedDataEnv env(std::string{});  // set but empty: ignored
    EXPECT_EQ(dm::data::fashion_mnist_dir(), fs::path("/usr/share/datasets/fashion-mnist"));
  }
  {
    ScopedDataEnv env(env_dir.string());
    EXPECT_EQ(dm::data::fashion_mnist_dir(), env_dir);
    EXPECT_EQ(dm::data::fashion_mnist_dir(flag_dir), flag_dir);       // the flag wins
    EXPECT_EQ(dm::data::load_fashion_mnist(Split::train).size(), 2);  // env honoured
    EXPECT_EQ(dm::data::load_fashion_mnist(Split::train, flag_dir).size(), 5);
  }
}

TEST(DataLoad, ClassNames) {
  const auto& names = dm::data::fashion_mnist_classes();
  ASSERT_EQ(names.size(), 10u);
  EXPECT_EQ(names[0], "T-shirt/top");
  EXPECT_EQ(names[5], "Sandal");
  EXPECT_EQ(names[9], "Ankle boot");
}

// ---------------------------------------------------------------------------
// Damaged or missing files: one clear error naming the file.

TEST(DataErrors, MissingFilesNameTheFolderAndTheFix) {
  const auto dir = dm_test::fresh_dir("data_missing");
  auto e = error_of([&] { dm::data::load_fashion_mnist(Split::train, dir); });
  const std::string what = e.what();
  EXPECT_CONTAINS(what, dir.string());
  EXPECT_CONTAINS(what, "train-images-idx3-ubyte.gz");
  EXPECT_CONTAINS(what, "train-labels-idx1-ubyte.gz");
  EXPECT_CONTAINS(what, "--data");
  EXPECT_EQ(e.hint(), kMissingHint);

  // Only the labels missing: still the same error.
  dm::data::write_idx(dir / "train-images-idx3-ubyte.gz", test_pixels(2));
  EXPECT_EQ(error_of([&] { dm::data::load_fashion_mnist(Split::train, dir); }).hint(),
            kMissingHint);

  // A folder that does not exist, reached through DM_DATA_DIR.
  ScopedDataEnv env((dir / "nowhere").string());
  e = error_of([&] { dm::data::load_fashion_mnist(Split::test); });
  EXPECT_CONTAINS(std::string(e.what()), (dir / "nowhere").string());
  EXPECT_CONTAINS(std::string(e.what()), "DM_DATA_DIR");
  EXPECT_CONTAINS(std::string(e.what()), "t10k-images-idx3-ubyte.gz");
  EXPECT_EQ(e.hint(), kMissingHint);
}

TEST(DataErrors, WrongMagicNumber) {
  const auto dir = dm_test::fresh_dir("data_magic");
  // A labels file (magic 0x00000801) where the images belong.
  dm::data::write_idx(dir / "train-images-idx3-ubyte.gz", test_labels(3));
  dm::data::write_idx(dir / "train-labels-idx1-ubyte.gz", test_labels(3));
  auto e = error_of([&] { dm::data::load_fashion_mnist(Split::train, dir); });
  EXPECT_CONTAINS(std::string(e.what()), "train-images-idx3-ubyte.gz");
  EXPECT_CONTAINS(std::string(e.what()), "0x00000801");
  EXPECT_CONTAINS(std::string(e.what()), "expected 0x00000803");
  EXPECT_FALSE(e.hint().empty());

  // Not an IDX file at all (plain text), and another element type (0x0d = float).
  write_bytes(dir / "text", {'h', 'e', 'l', 'l', 'o', '\n'});
  e = error_of([&] { dm::data::read_idx(dir / "text"); });
  EXPECT_CONTAINS(std::string(e.what()), (dir / "text").string());
  EXPECT_CONTAINS(std::string(e.what()), "magic number");
  write_bytes(dir / "floats", {0, 0, 0x0d, 1, 0, 0, 0, 1, 0, 0, 0, 0});
  e = error_of([&] { dm::data::read_idx(dir / "floats"); });
  EXPECT_CONTAINS(std::string(e.what()), "0x00000d01");
  // Too short to hold even the magic number.
  write_bytes(dir / "short", {0, 0});
  EXPECT_CONTAINS(std::string(error_of([&] { dm::data::read_idx(dir / "short"); }).what()),
                  "too short");
}

TEST(DataErrors, WrongImageSize) {
  const auto dir = dm_test::fresh_dir("data_dims");
  write_split(dir, "train", test_pixels(2, 27, 28), test_labels(2));
  const auto e = error_of([&] { dm::data::load_fashion_mnist(Split::train, dir); });
  EXPECT_CONTAINS(std::string(e.what()), "train-images-idx3-ubyte.gz");
  EXPECT_CONTAINS(std::string(e.what()), "27×28");
  EXPECT_CONTAINS(std::string(e.what()), "expected 28×28");
}

TEST(DataErrors, TruncatedData) {
  const auto dir = dm_test::fresh_dir("data_truncated");
  write_split(dir, "train", test_pixels(3), test_labels(3), /*gzip=*/false);
  // Cut the last 10 bytes of the plain images file: 3·784 = 2352 promised, 2342 there.
  auto bytes = read_bytes(dir / "train-images-idx3-ubyte");
  bytes.resize(bytes.size() - 10);
  write_bytes(dir / "train-images-idx3-ubyte", bytes);
  auto e = error_of([&] { dm::data::load_fashion_mnist(Split::train, dir); });
  std::string what = e.what();
  EXPECT_CONTAINS(what, "train-images-idx3-ubyte");
  EXPECT_CONTAINS(what, "expected 2352");
  EXPECT_CONTAINS(what, "found 2342");
  EXPECT_CONTAINS(what, "truncated");

  // Extra bytes are as wrong as missing ones.
  bytes.resize(bytes.size() + 20, 0);
  write_bytes(dir / "train-images-idx3-ubyte", bytes);
  what = error_of([&] { dm::data::load_fashion_mnist(Split::train, dir); }).what();
  EXPECT_CONTAINS(what, "found 2362");

  // A cut inside the header.
  write_bytes(dir / "header", {0, 0, 8, 3, 0, 0, 0, 1});
  what = error_of([&] { dm::data::read_idx(dir / "header"); }).what();
  EXPECT_CONTAINS(what, "header");

  // A gzip file cut short: the stream ends before its end marker.
  dm::data::write_idx(dir / "cut.gz", test_pixels(3));
  auto gz = read_bytes(dir / "cut.gz");
  gz.resize(gz.size() / 2);
  write_bytes(dir / "cut.gz", gz);
  what = error_of([&] { dm::data::read_idx(dir / "cut.gz"); }).what();
  EXPECT_CONTAINS(what, (dir / "cut.gz").string());
  EXPECT_CONTAINS(what, "truncated");
}

TEST(DataErrors, ImageAndLabelCountsDisagree) {
  const auto dir = dm_test::fresh_dir("data_counts");
  write_split(dir, "train", test_pixels(3), test_labels(2));
  const std::string what =
      error_of([&] { dm::data::load_fashion_mnist(Split::train, dir); }).what();
  EXPECT_CONTAINS(what, "train-images-idx3-ubyte.gz holds 3 images");
  EXPECT_CONTAINS(what, "train-labels-idx1-ubyte.gz holds 2 labels");
}

TEST(DataErrors, LabelOutsideTheTenClasses) {
  const auto dir = dm_test::fresh_dir("data_labels");
  write_split(dir, "train", test_pixels(3), torch::tensor({1, 12, 3}, torch::kUInt8));
  const std::string what =
      error_of([&] { dm::data::load_fashion_mnist(Split::train, dir); }).what();
  EXPECT_CONTAINS(what, "train-labels-idx1-ubyte.gz");
  EXPECT_CONTAINS(what, "12");
}

TEST(DataErrors, CorruptGzip) {
  const auto dir = dm_test::fresh_dir("data_gzip");
  write_split(dir, "train", test_pixels(3), test_labels(3));
  const auto file = dir / "train-images-idx3-ubyte.gz";
  // Flip bits in the middle of the compressed data (the CRC-32 catches any change
  // the deflate decoder does not).
  auto gz = read_bytes(file);
  for (size_t i = gz.size() / 3; i < gz.size() / 3 + 8; ++i) gz[i] ^= 0x5a;
  write_bytes(file, gz);
  auto e = error_of([&] { dm::data::load_fashion_mnist(Split::train, dir); });
  EXPECT_CONTAINS(std::string(e.what()), file.string());
  EXPECT_CONTAINS(std::string(e.what()), "gzip");
  EXPECT_FALSE(e.hint().empty());

  // The gzip magic bytes followed by garbage.
  write_bytes(file, {0x1f, 0x8b, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18});
  e = error_of([&] { dm::data::load_fashion_mnist(Split::train, dir); });
  EXPECT_CONTAINS(std::string(e.what()), file.string());
  EXPECT_CONTAINS(std::string(e.what()), "corrupt gzip");
}

// ---------------------------------------------------------------------------
// The colored variant.

Dataset small_gray(int64_t n) {
  const auto dir = dm_test::fresh_dir("data_gray");
  write_split(dir, "train", test_pixels(n), test_labels(n));
  return dm::data::load_fashion_mnist(Split::train, dir);
}

TEST(DataColorize, MeanOverChannelsIsTheGrayImage) {
  const auto gray = small_gray(40);
  const auto color = dm::data::colorize(gray);
  ASSERT_EQ(color.images.sizes(), (std::vector<int64_t>{40, 3, 32, 32}));
  EXPECT_EQ(color.images.scalar_type(), torch::kFloat32);
  EXPECT_TRUE(torch::equal(color.labels, gray.labels));
  // Exact up to float32 rounding: Σ_c d_c = 0.
  const double err = (color.images.mean(1, true) - gray.images).abs().max().item<double>();
  EXPECT_LT(err, 1e-6);
  // In range, and the background (−1) stays exactly −1 in every channel.
  EXPECT_GE(color.images.min().item<float>(), -1.0f);
  EXPECT_LE(color.images.max().item<float>(), 1.0f);
  EXPECT_TRUE(torch::all(color.images.narrow(2, 0, 2) == -1.0f).item<bool>());
  // A white pixel (byte 255) stays white: no room for a tint.
  const auto white = (gray.images == 1.0f).expand_as(color.images);
  EXPECT_TRUE(torch::all(color.images.masked_select(white) == 1.0f).item<bool>());
  // It is colored: the channels differ somewhere by a visible amount.
  EXPECT_GT((color.images - gray.images).abs().max().item<double>(), 0.2);
}

TEST(DataColorize, FollowsTheDocumentedFormula) {
  const auto gray = small_gray(6);
  const double s = 0.8;
  const auto color = dm::data::colorize(gray, s);
  const auto hues = dm::data::item_hues(6);
  for (int64_t i = 0; i < 6; ++i) {
    const double th = hues[i].item<double>();
    const double pi = 3.14159265358979323846;
    const double d[3] = {std::cos(th), std::cos(th - 2 * pi / 3), std::cos(th + 2 * pi / 3)};
    const double d_max = std::max({d[0], d[1], d[2]});
    for (int64_t r : {2, 10, 20}) {
      for (int64_t c : {3, 17, 29}) {
        const double g = (gray.images[i][0][r][c].item<double>() + 1) / 2;
        const double a = g == 0 ? s : std::min(s, (1 - g) / (g * d_max));
        for (int64_t ch = 0; ch < 3; ++ch)
          EXPECT_NEAR(color.images[i][ch][r][c].item<double>(), 2 * g * (1 + a * d[ch]) - 1, 2e-6)
              << "item " << i << " pixel " << r << "," << c << " channel " << ch;
      }
    }
  }
}

TEST(DataColorize, DeterministicPerItemIndex) {
  const auto gray = small_gray(12);
  const auto a = dm::data::colorize(gray), b = dm::data::colorize(gray);
  EXPECT_TRUE(torch::equal(a.images, b.images));
  // The first 5 items get the same colors when only they are colorized.
  const Dataset first5{gray.images.narrow(0, 0, 5), gray.labels.narrow(0, 0, 5)};
  EXPECT_TRUE(torch::equal(dm::data::colorize(first5).images, a.images.narrow(0, 0, 5)));
  // Hues are a fixed function of the index, in [0, 2π), and not all alike.
  const auto hues = dm::data::item_hues(1000);
  EXPECT_TRUE(torch::equal(dm::data::item_hues(10, 990), hues.narrow(0, 990, 10)));
  EXPECT_GE(hues.min().item<double>(), 0.0);
  EXPECT_LT(hues.max().item<double>(), 2 * 3.14159265358979323846);
  // Roughly uniform: each sixth of the circle gets 1000/6 ± a few standard deviations.
  const auto counts = torch::histc(hues, 6, 0, 2 * 3.14159265358979323846);
  EXPECT_GT(counts.min().item<double>(), 120);
  EXPECT_LT(counts.max().item<double>(), 215);
}

TEST(DataColorize, ZeroSaturationCopiesTheGrayImage) {
  const auto gray = small_gray(3);
  const auto color = dm::data::colorize(gray, 0.0);
  EXPECT_TRUE(torch::allclose(color.images, gray.images.expand({3, 3, 32, 32}), 0, 1e-6));
  EXPECT_THROW(dm::data::colorize(gray, 1.5), dm::Error);
  EXPECT_THROW(dm::data::colorize(color), dm::Error);  // already RGB
}

// ---------------------------------------------------------------------------
// Batches.

// N items whose image is filled with its index and whose label is its index.
Dataset indexed(int64_t n) {
  return Dataset{
      torch::arange(n, torch::kFloat32).view({n, 1, 1, 1}).expand({n, 1, 2, 2}).contiguous(),
      torch::arange(n, torch::kInt64)};
}

TEST(DataBatches, EveryItemOncePerEpoch) {
  const auto data = indexed(103);
  dm::data::BatchSampler batches(data, 10, /*seed=*/7);
  EXPECT_EQ(batches.batches_per_epoch(), 11);
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    std::vector<torch::Tensor> seen;
    int64_t count = 0;
    for (const auto& batch : batches.epoch(epoch)) {
      EXPECT_EQ(batch.labels.size(0), count < 10 ? 10 : 3);
      EXPECT_EQ(batch.images.sizes(), (std::vector<int64_t>{batch.labels.size(0), 1, 2, 2}));
      // Images travel with their labels.
      EXPECT_TRUE(torch::equal(batch.images.select(3, 1).select(2, 0).squeeze(1),
                               batch.labels.to(torch::kFloat32)));
      seen.push_back(batch.labels);
      ++count;
    }
    EXPECT_EQ(count, 11);
    const auto all = std::get<0>(torch::cat(seen).sort());
    EXPECT_TRUE(torch::equal(all, torch::arange(103, torch::kInt64))) << "epoch " << epoch;
  }
  // drop_last: 10 full batches, 3 items left out.
  dm::data::BatchSampler full(data, 10, 7, torch::kCPU, /*drop_last=*/true);
  EXPECT_EQ(full.batches_per_epoch(), 10);
  int64_t items = 0;
  for (const auto& batch : full.epoch(0)) items += batch.labels.size(0);
  EXPECT_EQ(items, 100);
}

TEST(DataBatches, DeterministicBySeedAndEpoch) {
  const auto data = indexed(50);
  dm::data::BatchSampler a(data, 8, 1), b(data, 8, 1), c(data, 8, 2);
  EXPECT_TRUE(torch::equal(a.order(0), b.order(0)));
  EXPECT_TRUE(torch::equal(a.order(3), b.order(3)));
  EXPECT_FALSE(torch::equal(a.order(0), a.order(1)));  // a new order each epoch
  EXPECT_FALSE(torch::equal(a.order(0), c.order(0)));  // and for each seed
  EXPECT_FALSE(torch::equal(a.order(0), torch::arange(50, torch::kInt64)));
  // Independent of torch's global generator.
  torch::manual_seed(0);
  const auto before = a.order(2);
  torch::manual_seed(99);
  (void)torch::rand({10});
  EXPECT_TRUE(torch::equal(a.order(2), before));
  // Iterating gives the batches of order(epoch) in sequence.
  int64_t b_index = 0;
  const auto order = a.order(4);
  for (const auto& batch : a.epoch(4)) {
    EXPECT_TRUE(torch::equal(batch.labels, order.narrow(0, 8 * b_index, batch.labels.size(0))));
    ++b_index;
  }
  EXPECT_EQ(b_index, 7);
}

TEST(DataBatches, UnshuffledAndBadArguments) {
  const auto data = indexed(5);
  dm::data::BatchSampler in_order(data, 2, 0, torch::kCPU, false, /*shuffle=*/false);
  std::vector<int64_t> labels;
  for (const auto& batch : in_order.epoch(1))
    for (int64_t i = 0; i < batch.labels.size(0); ++i)
      labels.push_back(batch.labels[i].item<int64_t>());
  EXPECT_EQ(labels, (std::vector<int64_t>{0, 1, 2, 3, 4}));
  EXPECT_THROW(dm::data::BatchSampler(data, 0, 0), dm::Error);
  EXPECT_THROW(dm::data::BatchSampler(Dataset{data.images, data.labels.narrow(0, 0, 4)}, 2, 0),
               dm::Error);
  EXPECT_THROW(in_order.batch(in_order.order(0), 3), dm::Error);
}

TEST(DataBatches, MovesBatchesToTheDevice) {
  if (!torch::cuda::is_available()) GTEST_SKIP() << "no CUDA device";
  dm::data::BatchSampler batches(indexed(20), 8, 0, torch::Device(torch::kCUDA));
  for (const auto& batch : batches.epoch(0)) {
    EXPECT_TRUE(batch.images.is_cuda());
    EXPECT_TRUE(batch.labels.is_cuda());
  }
}

// ---------------------------------------------------------------------------
// The real dataset, when the Debian package is installed.

TEST(DataFashionMnist, RealDatasetWhenInstalled) {
  const fs::path debian = "/usr/share/datasets/fashion-mnist";
  if (!fs::exists(debian / "train-images-idx3-ubyte.gz"))
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  const auto train = dm::data::load_fashion_mnist(Split::train, debian);
  const auto test = dm::data::load_fashion_mnist(Split::test, debian);
  ASSERT_EQ(train.size(), 60000);
  ASSERT_EQ(test.size(), 10000);
  EXPECT_EQ(train.images.sizes(), (std::vector<int64_t>{60000, 1, 32, 32}));
  for (const auto* d : {&train, &test}) {
    EXPECT_EQ(d->images.min().item<float>(), -1.0f);  // background
    EXPECT_EQ(d->images.max().item<float>(), 1.0f);   // some pixels saturate at 255
    EXPECT_TRUE(torch::all(d->images.narrow(3, 0, 2) == -1.0f).item<bool>());  // padding
  }
  // Balanced classes: 6000 of each in train, 1000 in test.
  EXPECT_TRUE(
      torch::equal(torch::bincount(train.labels, {}, 10), torch::full({10}, 6000, torch::kInt64)));
  EXPECT_TRUE(
      torch::equal(torch::bincount(test.labels, {}, 10), torch::full({10}, 1000, torch::kInt64)));
  // Mean intensity of Fashion-MNIST is ≈ 0.286 in [0, 1] over the 28×28 pixels.
  const double mean01 =
      ((train.images.narrow(2, 2, 28).narrow(3, 2, 28) + 1) / 2).mean().item<double>();
  EXPECT_NEAR(mean01, 0.286, 0.005);
}

}  // namespace
