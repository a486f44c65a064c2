// Tests of dm/plot: the colour cycle, tensor conversion, histogram
// normalisation, the generated gnuplot script, and the files gnuplot writes
// (both formats, the requested size, no temporary files left behind).
#include <gtest/gtest.h>

#include "test_dirs.hpp"
#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <optional>
#include <random>

#include "dm/base/core.hpp"
#include "dm/app/plot.hpp"

namespace fs = std::filesystem;
using dm::plot::Vec;

namespace {

using dm_test::fresh_dir;

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// A PNG's width and height from its IHDR chunk (bytes 16..23, big-endian),
// after checking the 8-byte signature.
std::pair<uint32_t, uint32_t> png_size(const std::string& bytes) {
  EXPECT_GE(bytes.size(), 24u);
  EXPECT_EQ(bytes.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  EXPECT_EQ(bytes.substr(12, 4), "IHDR");
  const auto be32 = [&](size_t at) {
    uint32_t v = 0;
    for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[at + i]);
    return v;
  };
  return {be32(16), be32(20)};
}

// Sets an environment variable for the lifetime of the object.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~ScopedEnv() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// A figure that uses every kind of series once.
dm::plot::Figure every_series() {
  Vec x, y;
  for (int i = 0; i <= 50; ++i)
    x.push_back(-2.0 + 0.08 * i), y.push_back(std::exp(-x.back() * x.back()));
  std::vector<Vec> z(20, Vec(30));
  for (size_t i = 0; i < z.size(); ++i)
    for (size_t j = 0; j < z[i].size(); ++j)
      z[i][j] = std::sin(0.3 * double(i)) * std::cos(0.2 * double(j));

  dm::plot::Figure fig(2, 2, 700, 300);
  fig.suptitle("all series");
  fig.ax(0)
      .title("lines")
      .line(x, y, "gauss curve")
      .hline(0.5, "half level")
      .linepoints(x, y, "marked");
  fig.ax(1)
      .histogram(x, 10, "uniform bars")
      .points(x, y, "scatter dots", {"#123456", 1.0, 0.4, 0.3});
  fig.ax(2).heatmap(z, -1, 1, 0, 2, 5, "magma").equal_aspect();
  fig.ax(3).vectors(x, y, y, x, 0.2, "arrows").logy();
  return fig;
}

}  // namespace

TEST(Plot, ColorCycleIsOkabeIto) {
  EXPECT_EQ(dm::plot::color(0), "#0072B2");
  EXPECT_EQ(dm::plot::color(1), "#D55E00");
  EXPECT_EQ(dm::plot::color(8), dm::plot::color(0));
  EXPECT_EQ(dm::plot::color(-1), "#000000");
}

TEST(Plot, ToVecFlattensAnyTensor) {
  const auto t = torch::arange(6, torch::kFloat32).reshape({2, 3});
  EXPECT_EQ(dm::plot::to_vec(t), (Vec{0, 1, 2, 3, 4, 5}));
  // A transposed (non-contiguous) view flattens in its logical order.
  EXPECT_EQ(dm::plot::to_vec(t.t()), (Vec{0, 3, 1, 4, 2, 5}));
  EXPECT_EQ(dm::plot::to_vec(torch::tensor({7}, torch::kInt64)), (Vec{7}));
  EXPECT_THROW(dm::plot::to_vec(torch::Tensor()), dm::Error);
}

TEST(Plot, HistogramDensityCountsPerBinWidth) {
  // Bins [0,1) and [1,2]; 5 and −1 are outside and not counted, NaN neither.
  const Vec values{0.0, 0.5, 1.0, 1.5, 2.0, 5.0, -1.0, std::nan("")};
  const Vec d = dm::plot::histogram_density(values, 2, 0.0, 2.0);
  ASSERT_EQ(d.size(), 2u);
  EXPECT_DOUBLE_EQ(d[0], 2.0 / 5.0);  // 2 of 5 values, bin width 1
  EXPECT_DOUBLE_EQ(d[1], 3.0 / 5.0);  // the right edge belongs to the last bin
}

TEST(Plot, HistogramDensityHasUnitArea) {
  std::mt19937 rng(7);
  std::normal_distribution<double> normal(1.0, 2.0);
  Vec values(10000);
  for (double& v : values) v = normal(rng);
  const int bins = 37;
  const double lo = -3.0, hi = 4.5;
  const Vec d = dm::plot::histogram_density(values, bins, lo, hi);
  double area = 0.0;
  for (double h : d) area += h * (hi - lo) / bins;
  EXPECT_NEAR(area, 1.0, 1e-12);
}

TEST(Plot, HistogramRejectsBadArguments) {
  EXPECT_THROW(dm::plot::histogram_density({1.0}, 0, 0.0, 1.0), dm::Error);
  EXPECT_THROW(dm::plot::histogram_density({1.0}, 5, 1.0, 1.0), dm::Error);
  dm::plot::Axes ax;
  EXPECT_THROW(ax.histogram({std::nan("")}, 5), dm::Error);
}

TEST(Plot, ScriptCarriesDataAndEscapedText) {
  dm::plot::Figure fig(1, 2);
  fig.suptitle("it's a test");
  fig.ax(0).title("first").line({0, 1}, {2, 3}, "l");
  fig.ax(1).xlabel("x").logx().points({1, 10}, {1, 2});
  const std::string s = fig.script();
  EXPECT_TRUE(contains(s, "set multiplot layout 1,2 title 'it''s a test'"));
  EXPECT_TRUE(contains(s, "$s0 << EOD\n0 2\n1 3\nEOD\n"));
  EXPECT_TRUE(contains(s, "set logscale x"));
  EXPECT_TRUE(contains(s, "lc rgb '#000072B2'"));  // first colour of the cycle, opaque
  EXPECT_TRUE(contains(s, "unset multiplot"));
}

TEST(Plot, BadInputThrows) {
  dm::plot::Figure fig(1, 2);
  EXPECT_THROW(fig.ax(2), dm::Error);
  EXPECT_THROW(fig.ax(0).line({1, 2, 3}, {1, 2}), dm::Error);
  EXPECT_THROW(fig.ax(0).points({}, {}), dm::Error);
  EXPECT_THROW(fig.ax(0).line({1, 2}, {1, 2}, "", {"red"}), dm::Error);
  EXPECT_THROW(fig.ax(0).heatmap({{1, 2}, {3}}, 0, 1, 0, 1), dm::Error);
  EXPECT_THROW(fig.ax(0).heatmap({{1, 2}, {3, 4}}, 0, 1, 0, 1, 0, "jet"), dm::Error);
  EXPECT_THROW(fig.ax(0).xrange(1, 1), dm::Error);
  EXPECT_THROW(dm::plot::Figure(0, 1), dm::Error);
}

TEST(Plot, MissingGnuplotGivesInstallHint) {
  const fs::path empty = fresh_dir("plot_empty_path");
  {
    const ScopedEnv no_path("PATH", empty.string());
    try {
      dm::plot::require_gnuplot();
      ADD_FAILURE() << "require_gnuplot must throw when gnuplot is not on PATH";
    } catch (const dm::Error& e) {
      EXPECT_EQ(e.hint(), "install gnuplot-nox (bash tools/install-deps.sh)");
    }
  }
  fs::remove_all(empty);
}

TEST(Plot, SaveWritesSvgAndPngOfRequestedSize) {
  const fs::path dir = fresh_dir("plot_save");
  const fs::path svg = every_series().save(dir / "nested" / "fig");
  EXPECT_EQ(svg, dir / "nested" / "fig.svg");

  const std::string text = read_file(dir / "nested" / "fig.svg");
  EXPECT_TRUE(contains(text, "<svg"));
  EXPECT_TRUE(contains(text, "width=\"700\""));
  for (const char* label : {"gauss curve", "half level", "marked", "uniform bars", "scatter dots",
                            "arrows", "all series"})
    EXPECT_TRUE(contains(text, label)) << label;

  const auto [w, h] = png_size(read_file(dir / "nested" / "fig.png"));
  EXPECT_EQ(w, 700u);
  EXPECT_EQ(h, 300u);
  fs::remove_all(dir);
}

// Browsers show an SVG only if it is valid UTF-8: symbols written as UTF-8
// arrive intact; a gnuplot octal escape (which writes a raw Latin-1 byte) is
// refused with a hint instead of producing a figure that will not display.
TEST(Plot, SvgIsValidUtf8AndSymbolEscapesAreRefused) {
  const fs::path dir = fresh_dir("plot_utf8");
  dm::plot::Figure good;
  good.ax().title("τ = 5, Δt → 0, √2, ∇ log p").line({0, 1}, {0, 1}, "p_τ");
  const std::string text = read_file(good.save(dir / "good"));
  EXPECT_TRUE(contains(text, "τ = 5")) << "UTF-8 text must reach the SVG unchanged";
  EXPECT_TRUE(contains(text, "∇"));
  EXPECT_TRUE(contains(good.svg(), "√2"));

  dm::plot::Figure bad;
  bad.ax().title("x = -{/Symbol \326}2").line({0, 1}, {0, 1});
  try {
    bad.save(dir / "bad");
    ADD_FAILURE() << "an SVG with invalid UTF-8 must be refused";
  } catch (const dm::Error& e) {
    EXPECT_TRUE(contains(e.what(), "not valid UTF-8")) << e.what();
    EXPECT_TRUE(contains(e.hint(), "UTF-8 characters")) << e.hint();
  }
  EXPECT_THROW(bad.svg(), dm::Error);
  fs::remove_all(dir);
}

// gnuplot adjusts a range set while a log scale is on (0 becomes 0.1), so each
// panel must reset the log scales before it sets its ranges; log axes get
// 10^k labels.
TEST(Plot, LogScaleIsSetBeforeTheRanges) {
  dm::plot::Figure fig(1, 2);
  fig.ax(0).logy().line({1, 2}, {1, 100});
  fig.ax(1).yrange(0, 1).line({1, 2}, {0, 1});
  const std::string script = fig.script();
  const auto second = script.find("unset logscale", script.find("unset logscale") + 1);
  ASSERT_NE(second, std::string::npos);
  const auto range = script.find("set yrange [0:1]");
  ASSERT_NE(range, std::string::npos) << script;
  EXPECT_LT(second, range) << script;
  EXPECT_TRUE(contains(script, "set format y \"10^{%L}\"")) << script;
}

TEST(Plot, DefaultSizeScalesWithTheGrid) {
  const fs::path dir = fresh_dir("plot_default_size");
  dm::plot::Figure fig(2, 3);
  fig.ax(4).line({0, 1}, {0, 1});  // the other panels stay empty
  fig.save(dir / "grid");
  const auto [w, h] = png_size(read_file(dir / "grid.png"));
  EXPECT_EQ(w, 3u * 640u);
  EXPECT_EQ(h, 2u * 460u);
  fs::remove_all(dir);
}

TEST(Plot, LeavesNoTemporaryFiles) {
  const fs::path dir = fresh_dir("plot_tmp");
  const ScopedEnv tmp("TMPDIR", (dir / "tmp").string());
  fs::create_directories(dir / "tmp");
  dm::plot::Figure fig;
  fig.ax().line({0, 1}, {1, 0}, "falling");
  fig.save(dir / "out" / "line");
  EXPECT_TRUE(contains(fig.svg(), "falling"));
  EXPECT_TRUE(fs::is_empty(dir / "tmp"));
  EXPECT_TRUE(fs::exists(dir / "out" / "line.svg"));
  EXPECT_TRUE(fs::exists(dir / "out" / "line.png"));
  fs::remove_all(dir);
}

TEST(Plot, GnuplotFailureIsOneLineError) {
  // On a log axis no point of y ≤ 0 is valid: gnuplot stops with an error.
  dm::plot::Figure fig;
  fig.ax().logy().line({1, 2}, {-1, -2});
  try {
    fig.svg();
    FAIL() << "gnuplot should have failed";
  } catch (const dm::Error& e) {
    const std::string what = e.what();
    EXPECT_TRUE(contains(what, "gnuplot failed"));
    EXPECT_FALSE(contains(what, "\n"));
    EXPECT_FALSE(e.hint().empty());
  }
}
