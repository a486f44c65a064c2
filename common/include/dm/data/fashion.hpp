// dm/data/fashion.hpp — Fashion-MNIST for the image chapters: the IDX reader, the
// dataset as tensors a diffusion model wants, a colored variant, and batches.
//
// Fashion-MNIST (Xiao, Rasul & Vollgraf 2017) is 70 000 grayscale 28×28 images
// of clothing in 10 balanced classes: 60 000 for training, 10 000 for testing.
// The files come from Debian's `dataset-fashion-mnist` in the IDX format of the
// original MNIST: a big-endian header
//
//   bytes 0–1  zero        byte 2  element type (0x08 = unsigned byte)
//   byte  3    number of dimensions d          then d × uint32 sizes
//
// followed by the elements in row-major order, the whole file gzip-compressed.
// So the images file starts with the magic number 0x00000803 (bytes, 3 dims:
// N × 28 × 28) and the labels file with 0x00000801 (bytes, 1 dim: N).
//
// Where the files are looked for, first match wins:
//   1. the chapter's `--data DIR` (the `data_dir` argument below), if non-empty;
//   2. the environment variable DM_DATA_DIR, if set and non-empty;
//   3. /usr/share/datasets/fashion-mnist (the Debian package).
// In that folder `<name>.gz` is read, or the uncompressed `<name>` if there is
// no `.gz`.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <filesystem>
#include <iterator>
#include <string>
#include <vector>

namespace dm::data {

// Images and their class labels, item i = (images[i], labels[i]).
struct Dataset {
  torch::Tensor images;  // float32 [N, C, H, W] in [−1, 1]
  torch::Tensor labels;  // int64 [N]
  int64_t size() const { return labels.defined() ? labels.size(0) : 0; }
};

enum class Split { train, test };

// The folder Fashion-MNIST is read from: `flag_dir` if non-empty, else
// $DM_DATA_DIR if set and non-empty, else the Debian package's folder. Only
// resolves the name; load_fashion_mnist() checks that the files are there.
std::filesystem::path fashion_mnist_dir(const std::filesystem::path& flag_dir = {});

// The 10 class names, indexed by label.
const std::vector<std::string>& fashion_mnist_classes();

// Reads one IDX file of unsigned bytes (gzip-compressed or not: told apart by
// the gzip magic bytes 1f 8b, not by the name) into a uint8 tensor with the
// dimensions the header gives. Throws dm::Error naming the file when it cannot
// be read, is not valid gzip, is not an unsigned-byte IDX file, has a number of
// dimensions other than `expected_dims` (when > 0), or holds more or fewer
// bytes than its header promises.
torch::Tensor read_idx(const std::filesystem::path& file, int expected_dims = 0);

// Writes a uint8 tensor as an IDX file, gzip-compressed when the name ends in
// ".gz". For test fixtures and small custom datasets.
void write_idx(const std::filesystem::path& file, const torch::Tensor& bytes);

// Loads one split of Fashion-MNIST (see the top of this file for where from):
//   images float32 [N, 1, 32, 32] in [−1, 1]: each 28×28 image scaled by
//          x = p/127.5 − 1 (0 → −1, 255 → 1) and padded with 2 pixels of −1 on
//          every side, so that a U-Net can halve the size three times;
//   labels int64 [N] in 0..9 (see fashion_mnist_classes()).
// `limit` ≥ 0 keeps only the first `limit` items (for --quick runs).
// A missing dataset, a corrupt file, wrong sizes or counts → dm::Error with a hint.
Dataset load_fashion_mnist(Split split, const std::filesystem::path& data_dir = {},
                           int64_t limit = -1);

// ---------------------------------------------------------------------------
// The colored variant, for the colorization chapters.
//
// Item i gets a hue θ_i fixed by its index (a hash, so neighbours differ and
// the same item always has the same color) and the zero-mean chroma direction
//
//   d_i = (cos θ_i, cos(θ_i − 2π/3), cos(θ_i + 2π/3)) − mean,   Σ_c d_ic = 0.
//
// With g ∈ [0, 1] the gray intensity (g = (x + 1)/2) of a pixel, its color is
// the multiplicative tint
//
//   rgb_c = g · (1 + a · d_ic),   a = min(saturation, (1 − g)/(g · max_c d_ic)),
//
// rescaled to [−1, 1] by 2·rgb − 1 — in that space, for x = 2g − 1,
//
//   x_c = x + d_ic · min(saturation · (x + 1), (1 − x)/max_c d_ic).
//
// Dark and mid-gray pixels get the full tint
// (a = saturation); a bright pixel's tint is reduced just enough that no channel
// exceeds 1, so highlights fade to white instead of being clipped.
//
// What holds exactly (up to float32 rounding, ~1e-7): the mean over the three
// channels equals the grayscale image, in [0, 1] and in [−1, 1] space, because
// Σ_c d_ic = 0 — so "gray = mean of RGB", the observation of the colorization
// chapters (H = [⅓, ⅓, ⅓] per pixel), returns the original Fashion-MNIST image.
// Every channel stays in [−1, 1]; black (background) stays black.
// `saturation` ∈ [0, 1]; 0 gives three copies of the gray image.
Dataset colorize(const Dataset& gray, double saturation = 0.8);

// The hue θ_i ∈ [0, 2π) of items first … first + n − 1, float64 [n] on the CPU.
torch::Tensor item_hues(int64_t n, int64_t first = 0);

// ---------------------------------------------------------------------------
// Batches: shuffled mini-batches, one pass over the data per epoch.

struct Batch {
  torch::Tensor images;  // [B, C, H, W]
  torch::Tensor labels;  // [B]
};

// Epoch e visits the items in the order of a random permutation drawn from a
// generator seeded by (seed, e): the same seed gives the same batches, and any
// epoch can be reproduced on its own (a resumed run continues exactly).
// The data are moved to `device` once, at construction (the Fashion-MNIST train
// set is 246 MB as float32), and batches are gathered there.
//
//   dm::data::BatchSampler batches(train, 128, seed, device);
//   for (int64_t epoch = 0; epoch < epochs; ++epoch)
//     for (const auto& batch : batches.epoch(epoch)) train_step(batch.images, batch.labels);
class BatchSampler {
 public:
  // `drop_last`: skip the last, smaller batch of an epoch.
  // `shuffle` false: the items in dataset order every epoch.
  BatchSampler(Dataset data, int64_t batch_size, uint64_t seed, torch::Device device = torch::kCPU,
               bool drop_last = false, bool shuffle = true);

  int64_t batch_size() const { return batch_size_; }
  int64_t batches_per_epoch() const;
  const Dataset& data() const { return data_; }

  // The order epoch `epoch` visits the items in: int64 [N] on the CPU.
  torch::Tensor order(int64_t epoch) const;
  // Batch `b` (0 ≤ b < batches_per_epoch()) of a visiting order.
  Batch batch(const torch::Tensor& order, int64_t b) const;

  // The batches of one epoch, for a range-for loop.
  class Epoch {
   public:
    class iterator {
     public:
      using iterator_category = std::input_iterator_tag;
      using value_type = Batch;
      using difference_type = std::ptrdiff_t;
      using pointer = const Batch*;
      using reference = const Batch&;

      iterator(const Epoch* epoch, int64_t b);
      const Batch& operator*() const { return current_; }
      const Batch* operator->() const { return &current_; }
      iterator& operator++();
      bool operator==(const iterator& other) const { return b_ == other.b_; }
      bool operator!=(const iterator& other) const { return b_ != other.b_; }

     private:
      void load();
      const Epoch* epoch_;
      int64_t b_;
      Batch current_;
    };

    Epoch(const BatchSampler* sampler, torch::Tensor order)
        : sampler_(sampler), order_(std::move(order)) {}
    iterator begin() const { return iterator(this, 0); }
    iterator end() const { return iterator(this, sampler_->batches_per_epoch()); }
    int64_t size() const { return sampler_->batches_per_epoch(); }

   private:
    const BatchSampler* sampler_;
    torch::Tensor order_;
  };

  // Keep the sampler alive while iterating over the epoch.
  Epoch epoch(int64_t epoch) const { return Epoch(this, order(epoch)); }

 private:
  Dataset data_;
  int64_t batch_size_;
  uint64_t seed_;
  bool drop_last_, shuffle_;
};

}  // namespace dm::data
