#include "dm/data/fashion.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <zlib.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <sstream>

#include "dm/base/core.hpp"
#include "dm/base/rng.hpp"

namespace dm::data {

namespace fs = std::filesystem;

namespace {

constexpr const char* kDebianDir = "/usr/share/datasets/fashion-mnist";
constexpr const char* kMissingHint =
    "install dataset-fashion-mnist (bash tools/install-deps.sh) or pass --data DIR / set "
    "DM_DATA_DIR";
constexpr const char* kCorruptHint =
    "the file is damaged: reinstall it (apt-get install --reinstall dataset-fashion-mnist) or "
    "point --data DIR / DM_DATA_DIR at a good copy";
constexpr uint8_t kIdxUnsignedByte = 0x08;
constexpr int64_t kSide = 28;  // Fashion-MNIST images are 28×28 ...
constexpr int64_t kPad = 2;    // ... padded to 32×32.
constexpr int64_t kClasses = 10;
constexpr double kPi = 3.14159265358979323846;

std::string hex32(uint32_t v) {
  std::ostringstream s;
  s << "0x" << std::hex;
  s.width(8);
  s.fill('0');
  s << v;
  return s.str();
}

uint32_t big_endian32(const uint8_t* p) {
  return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | uint32_t(p[3]);
}

std::vector<uint8_t> read_file(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw Error("cannot open " + file.string(), kMissingHint);
  std::error_code ec;
  const auto size = fs::file_size(file, ec);
  if (ec) throw Error("cannot read " + file.string() + ": " + ec.message(), kCorruptHint);
  std::vector<uint8_t> bytes(size);
  in.read(reinterpret_cast<char*>(bytes.data()), std::streamsize(size));
  if (!in) throw Error("cannot read " + file.string(), kCorruptHint);
  return bytes;
}

bool is_gzip(const std::vector<uint8_t>& bytes) {
  return bytes.size() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b;
}

// The whole gzip stream (one or more concatenated members) decoded in memory.
std::vector<uint8_t> gunzip(const std::vector<uint8_t>& in, const fs::path& file) {
  // The last 4 bytes of a gzip member hold its decoded size mod 2³²: a good
  // first guess for the output buffer (capped: a corrupt trailer may claim 4 GB;
  // deflate cannot expand by more than ~1032×).
  size_t guess = in.size() * 4;
  if (in.size() >= 18) {
    const uint8_t* t = in.data() + in.size() - 4;
    guess = size_t(t[0]) | size_t(t[1]) << 8 | size_t(t[2]) << 16 | size_t(t[3]) << 24;
    guess = std::min(guess, in.size() * 1032) + 1;
  }
  std::vector<uint8_t> out(std::max<size_t>(guess, 64));

  if (in.size() > UINT_MAX) throw Error(file.string() + ": too large for an IDX file");
  z_stream z{};
  // 16 + MAX_WBITS: gzip wrapper (header, CRC-32 and size checked by zlib).
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) throw Error("zlib: inflateInit2 failed");
  std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&z, inflateEnd);
  z.next_in = const_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  size_t produced = 0;
  for (;;) {
    if (produced == out.size()) out.resize(out.size() * 2);
    z.next_out = out.data() + produced;
    z.avail_out = static_cast<uInt>(std::min<size_t>(out.size() - produced, UINT32_MAX));
    const uInt room = z.avail_out;
    const int rc = inflate(&z, Z_NO_FLUSH);
    produced += room - z.avail_out;
    if (rc == Z_STREAM_END) {
      if (z.avail_in == 0) break;
      inflateReset(&z);  // another gzip member follows
      continue;
    }
    if (rc == Z_OK) continue;
    // No progress although there is room for output: the input ran out mid-stream.
    if (rc == Z_BUF_ERROR)
      throw Error(file.string() + ": gzip data ends early (truncated file)", kCorruptHint);
    throw Error(file.string() + ": corrupt gzip data (zlib: " + (z.msg ? z.msg : zError(rc)) + ")",
                kCorruptHint);
  }
  out.resize(produced);
  return out;
}

// Which of <dir>/<name>.gz and <dir>/<name> exists (the .gz first); empty if neither.
fs::path find_file(const fs::path& dir, const std::string& name) {
  for (const auto& candidate : {dir / (name + ".gz"), dir / name})
    if (fs::is_regular_file(candidate)) return candidate;
  return {};
}

// Where the folder came from, for error messages.
std::string dir_source(const fs::path& flag_dir) {
  if (!flag_dir.empty()) return "from --data";
  const char* env = std::getenv("DM_DATA_DIR");
  if (env && *env) return "from $DM_DATA_DIR";
  return "the dataset-fashion-mnist package's folder";
}

}  // namespace

fs::path fashion_mnist_dir(const fs::path& flag_dir) {
  if (!flag_dir.empty()) return flag_dir;
  const char* env = std::getenv("DM_DATA_DIR");
  if (env && *env) return fs::path(env);
  return fs::path(kDebianDir);
}

const std::vector<std::string>& fashion_mnist_classes() {
  static const std::vector<std::string> names = {"T-shirt/top", "Trouser",   "Pullover", "Dress",
                                                 "Coat",        "Sandal",    "Shirt",    "Sneaker",
                                                 "Bag",         "Ankle boot"};
  return names;
}

// ANCHOR: read_idx
torch::Tensor read_idx(const fs::path& file, int expected_dims) {
  auto raw = read_file(file);
  auto bytes =
      std::make_shared<std::vector<uint8_t>>(is_gzip(raw) ? gunzip(raw, file) : std::move(raw));
  const std::string name = file.string();
  if (bytes->size() < 4)
    throw Error(name + ": too short for an IDX file (" + std::to_string(bytes->size()) + " bytes)",
                kCorruptHint);
  // Magic number: 0x00 0x00, element type, number of dimensions (big-endian).
  const uint32_t magic = big_endian32(bytes->data());
  const int dims = (*bytes)[3];
  const uint32_t wanted =
      (uint32_t(kIdxUnsignedByte) << 8) | uint32_t(expected_dims > 0 ? expected_dims : dims);
  if ((magic >> 16) != 0 || (*bytes)[2] != kIdxUnsignedByte || magic != wanted)
    throw Error(name + ": magic number " + hex32(magic) + ", expected " + hex32(wanted) +
                    " (IDX file of unsigned bytes with " + std::to_string(wanted & 0xff) +
                    " dimensions)",
                kCorruptHint);
  const size_t header = 4 + 4 * size_t(dims);
  if (bytes->size() < header)
    throw Error(
        name + ": file ends inside the IDX header (" + std::to_string(bytes->size()) + " bytes)",
        kCorruptHint);
  std::vector<int64_t> sizes(dims);
  size_t count = 1;  // saturates: a corrupt header may promise more than 2⁶⁴ bytes
  for (int d = 0; d < dims; ++d) {
    sizes[d] = big_endian32(bytes->data() + 4 + 4 * d);
    count =
        sizes[d] != 0 && count > SIZE_MAX / size_t(sizes[d]) ? SIZE_MAX : count * size_t(sizes[d]);
  }
  // The data must be exactly what the header promises: a short file is a
  // truncated download, a long one is not the file we think it is.
  if (bytes->size() - header != count) {
    std::string shape;
    for (auto s : sizes) shape += (shape.empty() ? "" : "×") + std::to_string(s);
    throw Error(name + ": expected " + std::to_string(count) + " data bytes for " + shape +
                    ", found " + std::to_string(bytes->size() - header) +
                    (bytes->size() - header < count ? " (truncated file)" : " (trailing bytes)"),
                kCorruptHint);
  }
  // Hand the decoded buffer to the tensor without copying it.
  uint8_t* start = bytes->data() + header;
  return torch::from_blob(
      start, sizes, [bytes](void*) mutable { bytes.reset(); }, torch::kUInt8);
}
// ANCHOR_END: read_idx

void write_idx(const fs::path& file, const torch::Tensor& tensor) {
  if (tensor.scalar_type() != torch::kUInt8 || tensor.dim() < 1 || tensor.dim() > 255)
    throw Error("write_idx: expected a uint8 tensor with 1 to 255 dimensions, got " +
                std::string(c10::toString(tensor.scalar_type())) + " with " +
                std::to_string(tensor.dim()));
  std::vector<uint8_t> bytes = {0, 0, kIdxUnsignedByte, uint8_t(tensor.dim())};
  for (auto s : tensor.sizes())
    for (int shift = 24; shift >= 0; shift -= 8) bytes.push_back(uint8_t(uint64_t(s) >> shift));
  const auto data = tensor.contiguous().cpu();
  bytes.insert(bytes.end(), data.data_ptr<uint8_t>(), data.data_ptr<uint8_t>() + data.numel());

  if (file.extension() == ".gz") {
    gzFile gz = gzopen(file.c_str(), "wb");
    if (!gz) throw Error("cannot write " + file.string());
    const int written = gzwrite(gz, bytes.data(), static_cast<unsigned>(bytes.size()));
    if (gzclose(gz) != Z_OK || written != int(bytes.size()))
      throw Error("cannot write " + file.string());
  } else {
    std::ofstream out(file, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
    if (!out) throw Error("cannot write " + file.string());
  }
}

// ANCHOR: load_fashion_mnist
Dataset load_fashion_mnist(Split split, const fs::path& data_dir, int64_t limit) {
  const fs::path dir = fashion_mnist_dir(data_dir);
  const std::string prefix = split == Split::train ? "train" : "t10k";
  const std::string images_name = prefix + "-images-idx3-ubyte",
                    labels_name = prefix + "-labels-idx1-ubyte";
  const fs::path images_file = find_file(dir, images_name),
                 labels_file = find_file(dir, labels_name);
  if (images_file.empty() || labels_file.empty())
    throw Error("Fashion-MNIST not found: looked for " + images_name + ".gz and " + labels_name +
                    ".gz (or the uncompressed files) in " + dir.string() + " (" +
                    dir_source(data_dir) + ")" +
                    (fs::is_directory(dir) ? "" : ", which is not a folder"),
                kMissingHint);

  const auto pixels = read_idx(images_file, 3);  // uint8 [N, 28, 28]
  const auto labels = read_idx(labels_file, 1);  // uint8 [N]
  if (pixels.size(1) != kSide || pixels.size(2) != kSide)
    throw Error(images_file.string() + ": images are " + std::to_string(pixels.size(1)) + "×" +
                    std::to_string(pixels.size(2)) + ", expected 28×28",
                kCorruptHint);
  if (pixels.size(0) != labels.size(0))
    throw Error(images_file.string() + " holds " + std::to_string(pixels.size(0)) + " images but " +
                    labels_file.string() + " holds " + std::to_string(labels.size(0)) + " labels",
                kCorruptHint);
  if (labels.numel() > 0 && labels.max().item<int64_t>() >= kClasses)
    throw Error(labels_file.string() + ": label " + std::to_string(labels.max().item<int64_t>()) +
                    " is not a class (0–9)",
                kCorruptHint);

  const int64_t n = limit >= 0 ? std::min(limit, pixels.size(0)) : pixels.size(0);
  Dataset out;
  const int64_t side = kSide + 2 * kPad;
  out.images = torch::empty({n, 1, side, side}, torch::kFloat32);
  // The 2-pixel border is −1, the background value after scaling, so that the
  // padding looks like more background.
  for (int64_t dim : {2, 3}) {
    out.images.narrow(dim, 0, kPad).fill_(-1.0);
    out.images.narrow(dim, side - kPad, kPad).fill_(-1.0);
  }
  // x = p/127.5 − 1 maps the bytes 0…255 onto [−1, 1], computed as (p − 127.5)/127.5:
  // the subtraction is exact in float32, so each value is rounded once (0 → −1, 255 → 1).
  auto inner = out.images.narrow(2, kPad, kSide).narrow(3, kPad, kSide);
  inner.copy_(pixels.narrow(0, 0, n).unsqueeze(1));
  inner.sub_(127.5).div_(127.5);
  out.labels = labels.narrow(0, 0, n).to(torch::kInt64);
  return out;
}
// ANCHOR_END: load_fashion_mnist

torch::Tensor item_hues(int64_t n, int64_t first) {
  auto hues = torch::empty({n}, torch::kFloat64);
  auto* h = hues.data_ptr<double>();
  for (int64_t i = 0; i < n; ++i) {
    // The top 53 bits of the item index's hash as a number in [0, 1), times 2π.
    h[i] = 2.0 * kPi * double(mix64(uint64_t(first + i)) >> 11) * 0x1.0p-53;
  }
  return hues;
}

// ANCHOR: colorize
Dataset colorize(const Dataset& gray, double saturation) {
  if (gray.images.dim() != 4 || gray.images.size(1) != 1)
    throw Error("colorize: expected gray images [N, 1, H, W]");
  if (!(saturation >= 0.0 && saturation <= 1.0))
    throw Error("colorize: saturation must be in [0, 1]");
  const int64_t n = gray.images.size(0);
  // Chroma direction d_i = (cos θ, cos(θ − 2π/3), cos(θ + 2π/3)), Σ_c d_ic = 0.
  const auto theta = item_hues(n).unsqueeze(1);
  const auto phase = torch::tensor({0.0, 2.0 * kPi / 3.0, -2.0 * kPi / 3.0}, torch::kFloat64);
  auto d = torch::cos(theta - phase);
  d = d - d.mean(1, true);  // removes the ~1e-16 rounding of the exact zero sum
  const auto d_max = std::get<0>(d.max(1, true));
  const auto opts = gray.images.options();
  d = d.to(opts).view({n, 3, 1, 1});
  const auto d_max4 = d_max.to(opts).view({n, 1, 1, 1});

  // In [0, 1] space, with g = (x + 1)/2: rgb_c = g (1 + a d_c), a = min(s, (1 − g)/(g max_c d_c)).
  // The same in [−1, 1] space, x_c = 2 rgb_c − 1, without dividing by g:
  //   x_c = x + b d_c,   b = 2 g a = min(s (x + 1), (1 − x)/max_c d_c).
  // x_c ≤ x + (1 − x) = 1, and x_c ≥ x − s (x + 1) ≥ −1 since d_c ≥ −1 and s ≤ 1;
  // the clamp only removes float rounding. Σ_c d_c = 0 makes the mean over c exactly x.
  const auto& x = gray.images;
  const auto b = torch::minimum(saturation * (x + 1.0), (1.0 - x) / d_max4);
  auto colored = torch::addcmul(x, b, d).clamp_(-1.0, 1.0);
  return Dataset{colored, gray.labels};
}
// ANCHOR_END: colorize

// ---------------------------------------------------------------------------

BatchSampler::BatchSampler(Dataset data, int64_t batch_size, uint64_t seed, torch::Device device,
                           bool drop_last, bool shuffle)
    : data_(std::move(data)),
      batch_size_(batch_size),
      seed_(seed),
      drop_last_(drop_last),
      shuffle_(shuffle) {
  if (batch_size <= 0) throw Error("BatchSampler: batch size must be positive");
  if (!data_.images.defined() || !data_.labels.defined() ||
      data_.images.size(0) != data_.labels.size(0))
    throw Error("BatchSampler: images and labels must hold the same number of items");
  data_.images = data_.images.to(device);
  data_.labels = data_.labels.to(device);
}

int64_t BatchSampler::batches_per_epoch() const {
  const int64_t n = data_.size();
  return drop_last_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
}

torch::Tensor BatchSampler::order(int64_t epoch) const {
  const int64_t n = data_.size();
  if (!shuffle_) return torch::arange(n, torch::kInt64);
  // One generator per (seed, epoch): epochs are independent of each other and
  // of any other use of torch's global generator.
  auto gen = at::make_generator<at::CPUGeneratorImpl>(stream_seed(seed_, uint64_t(epoch)));
  return torch::randperm(n, gen, torch::kInt64);
}

Batch BatchSampler::batch(const torch::Tensor& order, int64_t b) const {
  if (b < 0 || b >= batches_per_epoch()) throw Error("BatchSampler: batch index out of range");
  const int64_t start = b * batch_size_;
  const auto idx =
      order.narrow(0, start, std::min(batch_size_, data_.size() - start)).to(data_.images.device());
  return Batch{data_.images.index_select(0, idx), data_.labels.index_select(0, idx)};
}

BatchSampler::Epoch::iterator::iterator(const Epoch* epoch, int64_t b) : epoch_(epoch), b_(b) {
  load();
}

BatchSampler::Epoch::iterator& BatchSampler::Epoch::iterator::operator++() {
  ++b_;
  load();
  return *this;
}

void BatchSampler::Epoch::iterator::load() {
  if (b_ < epoch_->size()) current_ = epoch_->sampler_->batch(epoch_->order_, b_);
}

}  // namespace dm::data
