// tests/unit/test_checkpoint_integrity.cpp — every file with weights that the
// suite writes carries a checksum of its tensors (dm/base/checksum.hpp),
// verified at load (issue: "400 flipped bytes inside a weight tensor of a
// checkpoint loaded silently"):
//
//   * the checksum changes with a tensor's value, name, dtype and shape, not
//     with its device or memory layout or the order tensors are listed in;
//   * exported weights, a training checkpoint and the classifier with 400
//     bytes flipped inside a weight tensor are refused at load with one clear
//     message; the untouched files load;
//   * verify_file / seal_weights (build/bin/checkpoint_info) report the same;
//   * the shipped checkpoints in data/checkpoints/ all carry a checksum and
//     match it.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "dm/base/checksum.hpp"
#include "dm/base/core.hpp"
#include "dm/data/quality.hpp"
#include "dm/nn/train.hpp"
#include "test_dirs.hpp"

namespace fs = std::filesystem;

namespace {

std::string read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// Flips `n` bytes in the middle of `tensor`'s data where it lies in the file
// (archives store tensor data uncompressed); fails the test if it is not found.
void flip_inside(const fs::path& file, const torch::Tensor& tensor, size_t n = 400) {
  const auto t = tensor.detach().to(torch::kCPU).contiguous();
  const std::string data(static_cast<const char*>(t.data_ptr()), t.nbytes());
  ASSERT_GT(data.size(), n + 64);
  std::string bytes = read_bytes(file);
  const auto at = bytes.find(data.substr(0, 64));
  ASSERT_NE(at, std::string::npos) << "tensor data not found in " << file;
  const size_t start = at + (data.size() - n) / 2;
  for (size_t i = 0; i < n; ++i) bytes[start + i] = char(~bytes[start + i]);
  std::ofstream(file, std::ios::binary | std::ios::trunc) << bytes;
}

void expect_damaged(const std::function<void()>& load, const std::string& what) {
  try {
    load();
    ADD_FAILURE() << what << ": a damaged file must not load";
  } catch (const dm::Error& e) {
    EXPECT_NE(std::string(e.what()).find("do not match the checksum"), std::string::npos)
        << what << ": " << e.what();
  }
}

struct Net : torch::nn::Module {
  torch::nn::Linear a{nullptr}, b{nullptr};
  Net() {
    a = register_module("a", torch::nn::Linear(64, 64));
    b = register_module("b", torch::nn::Linear(64, 8));
  }
};
const nlohmann::json kConfig = {{"kind", "test_net"}};

}  // namespace

TEST(Checksum, SeesValuesNamesDtypesAndShapesButNotLayoutOrOrder) {
  const auto x = torch::arange(12, torch::kFloat32).reshape({3, 4});
  const auto y = torch::ones({5}, torch::kFloat64);
  const auto base = dm::tensors_checksum({{"x", x}, {"y", y}});
  EXPECT_EQ(base.rfind("crc32:", 0), 0u) << base;
  EXPECT_EQ(base, dm::tensors_checksum({{"y", y}, {"x", x}}));                       // order
  EXPECT_EQ(base, dm::tensors_checksum({{"x", x.t().contiguous().t()}, {"y", y}}));  // layout
  EXPECT_NE(base, dm::tensors_checksum({{"x", x + 1e-6}, {"y", y}}));
  EXPECT_NE(base, dm::tensors_checksum({{"z", x}, {"y", y}}));
  EXPECT_NE(base, dm::tensors_checksum({{"x", x.to(torch::kFloat64)}, {"y", y}}));
  EXPECT_NE(base, dm::tensors_checksum({{"x", x.reshape({4, 3})}, {"y", y}}));
}

TEST(Checksum, ADamagedExportIsRefusedAndAnIntactOneLoads) {
  const auto dir = dm_test::fresh_dir("checksum_export");
  torch::manual_seed(0);
  Net net;
  dm::train::export_weights(net, kConfig, dir / "w.pt", {{"steps", 1}}, /*half=*/false);
  Net back;
  dm::train::load_weights(back, kConfig, dir / "w.pt");
  EXPECT_TRUE(torch::equal(back.a->weight, net.a->weight));
  const auto report = dm::train::verify_file(dir / "w.pt");
  EXPECT_EQ(report["format"], "weights");
  EXPECT_TRUE(report["parts"][0]["ok"].get<bool>());
  EXPECT_FALSE(report["parts"][0]["stored"].get<std::string>().empty());

  flip_inside(dir / "w.pt", net.a->weight);
  Net victim;
  const auto before = victim.a->weight.clone();
  expect_damaged([&] { dm::train::load_weights(victim, kConfig, dir / "w.pt"); }, "export");
  EXPECT_TRUE(torch::equal(victim.a->weight, before)) << "nothing is copied from a damaged file";
  EXPECT_FALSE(dm::train::verify_file(dir / "w.pt")["parts"][0]["ok"].get<bool>());
  EXPECT_THROW(dm::train::seal_weights(dir / "w.pt"), dm::Error) << "sealing cannot bless damage";
  fs::remove_all(dir);
}

TEST(Checksum, ADamagedTrainingCheckpointIsRefusedOnResumeAndOnLoad) {
  const auto dir = dm_test::fresh_dir("checksum_train");
  torch::manual_seed(0);
  auto net = std::make_shared<Net>();
  dm::train::TrainConfig c;
  c.steps = 3;
  auto loss = [&](int64_t) { return net->b->forward(net->a->forward(torch::ones({2, 64}))).sum(); };
  dm::train::Trainer(net, kConfig, c, torch::kCPU).run(loss, dir / "c.pt");
  const auto report = dm::train::verify_file(dir / "c.pt");
  EXPECT_EQ(report["format"], "training checkpoint");
  ASSERT_EQ(report["parts"].size(), 2u);  // model, ema
  for (const auto& p : report["parts"]) EXPECT_TRUE(p["ok"].get<bool>()) << p.dump();
  const auto good = read_bytes(dir / "c.pt");

  flip_inside(dir / "c.pt", net->a->weight);  // the raw weights (the EMA lags them)
  auto other = std::make_shared<Net>();
  dm::train::TrainConfig c6 = c;
  c6.steps = 6;
  dm::train::Trainer resumed(other, kConfig, c6, torch::kCPU);
  expect_damaged([&] { resumed.run(loss, dir / "c.pt", /*resume=*/true); }, "resume");
  expect_damaged([&] { dm::train::load_weights(*other, kConfig, dir / "c.pt", false); },
                 "raw weights");

  std::ofstream(dir / "c.pt", std::ios::binary | std::ios::trunc) << good;
  dm::train::load_weights(*other, kConfig, dir / "c.pt", false);
  EXPECT_TRUE(torch::equal(other->a->weight, net->a->weight));
  fs::remove_all(dir);
}

TEST(Checksum, ADamagedClassifierIsRefused) {
  namespace q = dm::quality;
  const auto dir = dm_test::fresh_dir("checksum_classifier");
  torch::manual_seed(0);
  q::Classifier net{q::ClassifierConfig{}};
  q::save_classifier(net, dir / "c.pt", {});
  EXPECT_NO_THROW(q::load_classifier(dir / "c.pt", torch::kCPU));
  EXPECT_TRUE(dm::train::verify_file(dir / "c.pt")["parts"][0]["ok"].get<bool>());
  // The largest weight: the last convolution.
  torch::Tensor largest;
  for (const auto& p : net->parameters())
    if (!largest.defined() || p.numel() > largest.numel()) largest = p;
  flip_inside(dir / "c.pt", largest);
  expect_damaged([&] { q::load_classifier(dir / "c.pt", torch::kCPU); }, "classifier");
  fs::remove_all(dir);
}

// Exported weights from before checksums load as they did, and seal_weights
// adds the checksum without changing a tensor.
TEST(Checksum, SealingAnOldExportAddsTheChecksumOnly) {
  const auto dir = dm_test::fresh_dir("checksum_seal");
  torch::manual_seed(0);
  Net net;
  {  // an export as the suite wrote it before checksums: no "checksum" in the description
    torch::serialize::OutputArchive archive;
    for (auto& [name, t] : dm::named_state(net)) {
      std::string key;
      for (char ch : name) key += ch == '.' ? std::string("__") : std::string(1, ch);
      archive.write(key, t.detach().to(torch::kFloat16));
    }
    const nlohmann::json info = {
        {"format", "weights"}, {"model", kConfig}, {"manifest", {}}, {"dtype", "float16"}};
    archive.write("info", c10::IValue(info.dump()));
    archive.save_to((dir / "old.pt").string());
  }
  Net a, b;
  dm::train::load_weights(a, kConfig, dir / "old.pt");
  EXPECT_TRUE(
      dm::train::verify_file(dir / "old.pt")["parts"][0]["stored"].get<std::string>().empty());
  const auto sum = dm::train::seal_weights(dir / "old.pt");
  EXPECT_EQ(dm::train::read_checkpoint_info(dir / "old.pt")["checksum"], sum);
  EXPECT_EQ(dm::train::seal_weights(dir / "old.pt"), sum) << "sealing twice changes nothing";
  dm::train::load_weights(b, kConfig, dir / "old.pt");
  EXPECT_TRUE(torch::equal(a.a->weight, b.a->weight));
  EXPECT_TRUE(torch::equal(a.b->bias, b.b->bias));
  fs::remove_all(dir);
}

// What ships is sealed: every .pt in data/checkpoints/ has a checksum and matches it.
TEST(Checksum, ShippedCheckpointsCarryAndMatchTheirChecksums) {
  int files = 0;
  for (const auto& e : fs::directory_iterator(dm::train::checkpoints_dir())) {
    if (e.path().extension() != ".pt") continue;
    ++files;
    const auto r = dm::train::verify_file(e.path());
    for (const auto& p : r["parts"]) {
      EXPECT_FALSE(p["stored"].get<std::string>().empty()) << e.path() << " has no checksum";
      EXPECT_TRUE(p["ok"].get<bool>()) << e.path() << ": " << p.dump();
    }
  }
  EXPECT_GE(files, 3);
}
