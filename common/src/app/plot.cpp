// plot.cpp — figures drawn by gnuplot.
//
// Each Axes turns into a block of gnuplot commands that carries its own data
// inline (`$s0 << EOD … EOD` datablocks), a Figure wraps the blocks in one
// `set multiplot layout`, and save() runs gnuplot once on a temporary script
// that draws the figure twice: on the svg terminal, then on pngcairo. Nothing
// but the two images is left on disk.
#include "dm/app/plot.hpp"

#include "dm/base/core.hpp"

#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <limits>
#include <map>
#include <sstream>

namespace dm::plot {

namespace fs = std::filesystem;

namespace {

// Default panel size in pixels; a Figure's default size is this times its grid.
constexpr int kPanelWidth = 640;
constexpr int kPanelHeight = 460;

// Okabe & Ito (2008), "Color universal design": eight colours that remain
// distinct under the common forms of colour blindness.
constexpr std::array<const char*, 8> kCycle = {"#0072B2", "#D55E00", "#009E73", "#CC79A7",
                                               "#E69F00", "#56B4E9", "#F0E442", "#000000"};

// Heatmap palettes as gnuplot `set palette defined` stops. gnuplot 5.4 has no
// viridis/magma built in; these are 11 evenly spaced samples of matplotlib's
// maps, which gnuplot interpolates linearly in RGB.
const std::map<std::string, std::string>& palettes() {
  static const std::map<std::string, std::string> table = {
      {"viridis",
       "(0 '#440154', 1 '#482475', 2 '#414487', 3 '#355f8d', 4 '#2a788e', 5 '#21918c', "
       "6 '#22a884', 7 '#44bf70', 8 '#7ad151', 9 '#bddf26', 10 '#fde725')"},
      {"magma",
       "(0 '#000004', 1 '#140e36', 2 '#3b0f70', 3 '#641a80', 4 '#8c2981', 5 '#b73779', "
       "6 '#de4968', 7 '#f7705c', 8 '#fe9f6d', 9 '#fecf92', 10 '#fcfdbf')"},
      // Diverging, for signed quantities (a score component, an error).
      {"coolwarm", "(0 '#3b4cc0', 1 '#8db0fe', 2 '#dddddd', 3 '#f49a7b', 4 '#b40426')"},
      {"gray", "(0 '#000000', 1 '#ffffff')"},
  };
  return table;
}

// Numbers go into the script with 10 significant digits: far below a pixel.
// Non-finite values become NaN, which gnuplot skips.
std::string num(double v) {
  if (!std::isfinite(v)) return "NaN";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}

// A gnuplot string literal. Single quotes keep backslashes literal (so the
// enhanced-text escapes a caller writes reach gnuplot unchanged); a quote is
// doubled, and a newline is spliced in as "\n" by string concatenation.
std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "''";
    else if (c == '\n')
      out += "'.\"\\n\".'";
    else
      out += c;
  }
  return out + "'";
}

// A POSIX shell word: single quotes, with ' written as '\''.
std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// "#rrggbb" plus an opacity → gnuplot's "#AARRGGBB", where AA counts
// transparency: 00 is opaque and FF invisible, so AA = round(255·(1 − alpha)).
std::string rgb(const std::string& color, double alpha = 1.0) {
  const bool ok = color.size() == 7 && color[0] == '#' &&
                  std::all_of(color.begin() + 1, color.end(),
                              [](char c) { return std::isxdigit(static_cast<unsigned char>(c)); });
  if (!ok) throw Error("plot: colour '" + color + "' is not of the form #rrggbb");
  if (!(alpha >= 0.0 && alpha <= 1.0))
    throw Error("plot: alpha " + num(alpha) + " is outside 0..1");
  const int transparency = static_cast<int>(std::lround(255.0 * (1.0 - alpha)));
  char aa[3];
  std::snprintf(aa, sizeof aa, "%02X", transparency);
  return "'#" + std::string(aa) + color.substr(1) + "'";
}

// One datablock: a row per point, the columns side by side.
std::string datablock(const std::string& name, const std::vector<Vec>& columns) {
  std::string out = name + " << EOD\n";
  for (size_t i = 0; i < columns.front().size(); ++i) {
    for (size_t c = 0; c < columns.size(); ++c) out += (c ? " " : "") + num(columns[c][i]);
    out += '\n';
  }
  return out + "EOD\n";
}

void check_same_size(const char* what, const std::vector<const Vec*>& columns) {
  const size_t n = columns.front()->size();
  if (n == 0) throw Error(std::string("plot::") + what + ": no points to draw");
  for (const Vec* c : columns)
    if (c->size() != n)
      throw Error(std::string("plot::") + what + ": columns have different lengths (" +
                  std::to_string(n) + " and " + std::to_string(c->size()) + ")");
}

// A file in the temporary directory with a unique name (mkstemps), removed
// when it goes out of scope.
class TempFile {
 public:
  explicit TempFile(const std::string& suffix) {
    std::string name = (fs::temp_directory_path() / ("dm_plot_XXXXXX" + suffix)).string();
    const int fd = mkstemps(name.data(), static_cast<int>(suffix.size()));
    if (fd < 0)
      throw Error("plot: cannot create a temporary file in " + fs::temp_directory_path().string(),
                  "set TMPDIR to a writable folder");
    close(fd);
    path_ = name;
  }
  ~TempFile() {
    std::error_code ignored;
    fs::remove(path_, ignored);
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

// Runs gnuplot on `script`; on failure throws with gnuplot's last message
// (the error itself) as the one-line what() and its whole output as the hint.
void run_gnuplot(const std::string& script, const std::string& target) {
  require_gnuplot();
  TempFile file(".gp");
  {
    std::ofstream out(file.path());
    out << script;
    if (!out) throw Error("plot: cannot write the gnuplot script " + file.path().string());
  }
  const std::string command = "gnuplot " + shell_quote(file.path().string()) + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (!pipe)
    throw Error("plot: cannot start gnuplot", "install gnuplot-nox (bash tools/install-deps.sh)");
  std::string output;
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, pipe)) > 0;) output.append(buf, n);
  const int status = pclose(pipe);
  if (status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0) return;

  std::string last, line;
  std::istringstream lines(output);
  while (std::getline(lines, line))
    if (line.find_first_not_of(" \t^") != std::string::npos) last = line;
  throw Error("plot: gnuplot failed to draw " + target + ": " +
                  (last.empty() ? "exit status " + std::to_string(status) : last),
              "gnuplot said:\n" + output);
}

// The figure-wide look: a light grid behind the data, only the left and
// bottom spines, tics pointing outwards, dark grey text.
constexpr const char* kPreamble = R"(set encoding utf8
set border 3 front lc rgb '#404040' lw 1
set tics out nomirror scale 0.7 textcolor rgb '#303030'
set grid xtics ytics back lt 1 lc rgb '#e4e4e4' lw 1
set xlabel textcolor rgb '#202020'
set ylabel textcolor rgb '#202020'
set title textcolor rgb '#000000'
)";

}  // namespace

Vec to_vec(const torch::Tensor& t) {
  if (!t.defined()) throw Error("plot::to_vec: the tensor is undefined");
  const torch::Tensor flat = t.detach().to(torch::kCPU, torch::kFloat64).contiguous().reshape(-1);
  const double* data = flat.data_ptr<double>();
  return Vec(data, data + flat.numel());
}

std::string color(int index) {
  const int n = static_cast<int>(kCycle.size());
  return kCycle[static_cast<size_t>(((index % n) + n) % n)];
}

Vec histogram_density(const Vec& values, int bins, double lo, double hi) {
  if (bins < 1)
    throw Error("plot::histogram: bins must be at least 1, got " + std::to_string(bins));
  if (!(lo < hi)) throw Error("plot::histogram: empty range [" + num(lo) + ", " + num(hi) + "]");
  Vec count(static_cast<size_t>(bins), 0.0);
  double inside = 0.0;
  for (double v : values) {
    if (!(v >= lo && v <= hi)) continue;  // outside, or NaN
    // Bin k holds [lo + kΔ, lo + (k+1)Δ); the last bin also holds v = hi.
    const int k = std::min(bins - 1, static_cast<int>((v - lo) / (hi - lo) * bins));
    count[static_cast<size_t>(k)] += 1.0;
    inside += 1.0;
  }
  // density_k = count_k / (n Δ), so that Σ_k density_k Δ = 1.
  const double width = (hi - lo) / bins;
  for (double& c : count) c = inside > 0.0 ? c / (inside * width) : 0.0;
  return count;
}

// --- Axes --------------------------------------------------------------------

Axes& Axes::title(const std::string& t) {
  title_ = t;
  return *this;
}
Axes& Axes::xlabel(const std::string& t) {
  xlabel_ = t;
  return *this;
}
Axes& Axes::ylabel(const std::string& t) {
  ylabel_ = t;
  return *this;
}
Axes& Axes::logx(bool on) {
  logx_ = on;
  return *this;
}
Axes& Axes::logy(bool on) {
  logy_ = on;
  return *this;
}
Axes& Axes::equal_aspect(bool on) {
  equal_ = on;
  return *this;
}
Axes& Axes::legend(bool on) {
  legend_ = on;
  return *this;
}

Axes& Axes::xrange(double lo, double hi) {
  if (!(lo < hi)) throw Error("plot::xrange: need lo < hi, got [" + num(lo) + ", " + num(hi) + "]");
  xrange_ = {lo, hi};
  return *this;
}

Axes& Axes::yrange(double lo, double hi) {
  if (!(lo < hi)) throw Error("plot::yrange: need lo < hi, got [" + num(lo) + ", " + num(hi) + "]");
  yrange_ = {lo, hi};
  return *this;
}

Style Axes::styled(Style s) {
  if (s.color.empty()) s.color = color(next_color_++);
  rgb(s.color, s.alpha);  // validates now, where the caller can see which call was wrong
  return s;
}

Axes& Axes::line(const Vec& x, const Vec& y, const std::string& label, Style s) {
  check_same_size("line", {&x, &y});
  series_.push_back({"line", label, styled(s), {x, y}});
  return *this;
}

Axes& Axes::points(const Vec& x, const Vec& y, const std::string& label, Style s) {
  check_same_size("points", {&x, &y});
  series_.push_back({"points", label, styled(s), {x, y}});
  return *this;
}

Axes& Axes::linepoints(const Vec& x, const Vec& y, const std::string& label, Style s) {
  check_same_size("linepoints", {&x, &y});
  series_.push_back({"linepoints", label, styled(s), {x, y}});
  return *this;
}

Axes& Axes::hline(double y, const std::string& label, Style s) {
  series_.push_back({"hline", label, styled(s), {{y}}});
  return *this;
}

Axes& Axes::histogram(const Vec& values, int bins, const std::string& label, Style s,
                      std::optional<std::pair<double, double>> range) {
  if (!range) {
    double lo = std::numeric_limits<double>::infinity(), hi = -lo;
    for (double v : values)
      if (std::isfinite(v)) lo = std::min(lo, v), hi = std::max(hi, v);
    if (!(lo <= hi)) throw Error("plot::histogram: no finite values to count");
    // All values equal: a unit-wide range around them, as numpy.histogram does.
    if (lo == hi) lo -= 0.5, hi += 0.5;
    range = {lo, hi};
  }
  const auto [lo, hi] = *range;
  Vec density = histogram_density(values, bins, lo, hi);
  const double width = (hi - lo) / bins;
  Vec centers(density.size()), widths(density.size(), width);
  for (size_t k = 0; k < centers.size(); ++k)
    centers[k] = lo + (static_cast<double>(k) + 0.5) * width;
  series_.push_back({"histogram", label, styled(s), {centers, density, widths}});
  return *this;
}

Axes& Axes::heatmap(const std::vector<Vec>& z, double x_lo, double x_hi, double y_lo, double y_hi,
                    int levels, const std::string& palette) {
  if (z.size() < 2 || z.front().size() < 2)
    throw Error("plot::heatmap: the grid needs at least 2×2 values");
  for (const Vec& row : z)
    if (row.size() != z.front().size())
      throw Error("plot::heatmap: rows of z have different lengths");
  if (!(x_lo < x_hi && y_lo < y_hi)) throw Error("plot::heatmap: empty x or y extent");
  if (!palettes().count(palette)) {
    std::string known;
    for (const auto& [name, stops] : palettes()) known += (known.empty() ? "" : ", ") + name;
    throw Error("plot::heatmap: unknown palette '" + palette + "'", "use one of: " + known);
  }
  palette_ = palette;
  contour_levels_ = levels;
  // The extent travels as the first column; the rows of z follow.
  std::vector<Vec> columns{{x_lo, x_hi, y_lo, y_hi}};
  columns.insert(columns.end(), z.begin(), z.end());
  series_.push_back({"heatmap", {}, Style{}, std::move(columns)});
  return *this;
}

Axes& Axes::vectors(const Vec& x, const Vec& y, const Vec& u, const Vec& v, double max_len,
                    const std::string& label, Style s) {
  check_same_size("vectors", {&x, &y, &u, &v});
  if (!(max_len > 0.0)) throw Error("plot::vectors: max_len must be positive");
  double longest = 0.0;
  for (size_t i = 0; i < u.size(); ++i) {
    const double len = std::hypot(u[i], v[i]);
    if (std::isfinite(len)) longest = std::max(longest, len);
  }
  // One common factor keeps the relative lengths: the longest arrow gets max_len.
  const double scale = longest > 0.0 ? max_len / longest : 0.0;
  Vec su(u.size()), sv(v.size());
  for (size_t i = 0; i < u.size(); ++i) su[i] = scale * u[i], sv[i] = scale * v[i];
  series_.push_back({"vectors", label, styled(s), {x, y, su, sv}});
  return *this;
}

std::string Axes::script() const {
  if (series_.empty()) return {};
  std::ostringstream out;
  out << (title_.empty() ? "unset title\n" : "set title " + quote(title_) + " font ',13'\n");
  out << (xlabel_.empty() ? "unset xlabel\n" : "set xlabel " + quote(xlabel_) + "\n");
  out << (ylabel_.empty() ? "unset ylabel\n" : "set ylabel " + quote(ylabel_) + "\n");

  const auto heat = std::find_if(series_.begin(), series_.end(),
                                 [](const Series& s) { return s.kind == "heatmap"; });
  // A heatmap fills its grid exactly, unless the caller asked for other ranges.
  auto x_range = xrange_, y_range = yrange_;
  if (heat != series_.end()) {
    const Vec& extent = heat->columns.front();
    if (!x_range) x_range = {extent[0], extent[1]};
    if (!y_range) y_range = {extent[2], extent[3]};
  }
  const auto range = [](const std::optional<std::pair<double, double>>& r) {
    return r ? "[" + num(r->first) + ":" + num(r->second) + "]" : std::string("[*:*]");
  };
  // Log scales before ranges: gnuplot adjusts a range set while the previous
  // panel's log scale is still on (a lower limit of 0 silently becomes 0.1).
  out << "unset logscale\n"
      << (logx_ ? "set logscale x\n" : "") << (logy_ ? "set logscale y\n" : "");
  // Log axes label the decades as 10^k instead of 100.000000.
  out << (logx_ ? "set format x \"10^{%L}\"\n" : "set format x \"% h\"\n")
      << (logy_ ? "set format y \"10^{%L}\"\n" : "set format y \"% h\"\n");
  out << "set xrange " << range(x_range) << "\nset yrange " << range(y_range) << "\n";
  out << (equal_ ? "set size ratio -1\n" : "set size noratio\n");

  const bool any_label =
      std::any_of(series_.begin(), series_.end(), [](const Series& s) { return !s.label.empty(); });
  out << (legend_ && any_label
              // Left reverse: sample first, then left-aligned text, as a reader scans.
              ? "set key top right Left reverse opaque box lc rgb '#c8c8c8' lw 1 samplen 2.5 "
                "spacing 1.15 width 1 height 0.4\n"
              : "unset key\n");

  std::vector<std::string> clauses;
  if (heat != series_.end()) {
    out << "set palette defined " << palettes().at(palette_) << "\nset colorbox\n";
    // Grid format (one row of z per block, blank line between blocks) is what
    // both `with image` and gnuplot's contouring expect.
    out << "$heat << EOD\n";
    const Vec& extent = heat->columns.front();
    const size_t ny = heat->columns.size() - 1, nx = heat->columns[1].size();
    const double dx = (extent[1] - extent[0]) / static_cast<double>(nx - 1);
    const double dy = (extent[3] - extent[2]) / static_cast<double>(ny - 1);
    for (size_t i = 0; i < ny; ++i) {
      for (size_t j = 0; j < nx; ++j)
        out << num(extent[0] + static_cast<double>(j) * dx) << ' '
            << num(extent[2] + static_cast<double>(i) * dy) << ' ' << num(heat->columns[i + 1][j])
            << '\n';
      out << '\n';
    }
    out << "EOD\n";
    clauses.push_back("$heat using 1:2:3 with image notitle");
    if (contour_levels_ > 0) {
      // gnuplot contours only in 3D: splot the grid into a table (which does
      // not advance the multiplot layout) and draw the table as 2D lines.
      out << "set contour base\nset cntrparam linear levels auto " << contour_levels_
          << "\nunset surface\nset table $contours\nsplot $heat using 1:2:3 with lines\n"
             "unset table\nunset contour\nset surface\n";
      clauses.push_back("$contours using 1:2 with lines lw 1 lc rgb '#4DFFFFFF' notitle");
    }
  } else {
    out << "unset colorbox\n";
  }

  for (size_t k = 0; k < series_.size(); ++k) {
    const Series& s = series_[k];
    if (s.kind == "heatmap") continue;
    const Style& st = s.style;
    const std::string name = "$s" + std::to_string(k);
    const std::string title = s.label.empty() ? " notitle" : " title " + quote(s.label);
    const std::string dash = st.dashed ? " dt 2" : " dt solid";
    const std::string lw = " lw " + num(st.width);
    std::string clause;
    if (s.kind == "hline") {
      // A constant function spans whatever x range the other series set.
      clause = num(s.columns[0][0]) + " with lines" + lw + dash + " lc rgb " + rgb(st.color);
    } else {
      out << datablock(name, s.columns);
      if (s.kind == "line")
        clause = name + " using 1:2 with lines" + lw + dash + " lc rgb " + rgb(st.color, st.alpha);
      else if (s.kind == "points") {
        clause = name + " using 1:2 with points pt 7 ps " + num(st.point_size) + " lc rgb " +
                 rgb(st.color, st.alpha);
        // Small faint markers make an unreadable key sample, so a labelled
        // scatter gets its key entry separately, with an opaque unit marker.
        if (!s.label.empty()) {
          clauses.push_back(clause + " notitle");
          clause = "keyentry with points pt 7 ps 1 lc rgb " + rgb(st.color);
        }
      } else if (s.kind == "linepoints")
        // Markers on a line must stand out from its width: 2.5× the scatter
        // size, so the default 0.4 gives gnuplot's unit marker.
        clause = name + " using 1:2 with linespoints pt 7 ps " + num(2.5 * st.point_size) + lw +
                 dash + " lc rgb " + rgb(st.color, st.alpha);
      else if (s.kind == "histogram")
        // Half the requested opacity: a density curve drawn over the bars stays visible.
        clause = name + " using 1:2:3 with boxes fs transparent solid " + num(0.5 * st.alpha) +
                 " noborder lc rgb " + rgb(st.color);
      else  // vectors
        clause = name + " using 1:2:3:4 with vectors head filled size screen 0.008,20" + lw +
                 " lc rgb " + rgb(st.color, st.alpha);
    }
    clauses.push_back(clause + title);
  }

  out << "plot ";
  for (size_t i = 0; i < clauses.size(); ++i) out << (i ? ", \\\n     " : "") << clauses[i];
  out << "\n";
  return out.str();
}

// --- Figure ------------------------------------------------------------------

Figure::Figure(int rows, int cols, int width, int height)
    : rows_(rows), cols_(cols), width_(width), height_(height) {
  if (rows < 1 || cols < 1)
    throw Error("plot::Figure: needs at least one row and one column, got " + std::to_string(rows) +
                "×" + std::to_string(cols));
  if (width_ <= 0) width_ = kPanelWidth * cols;
  if (height_ <= 0) height_ = kPanelHeight * rows;
  axes_.resize(static_cast<size_t>(rows * cols));
}

Axes& Figure::ax(int index) {
  if (index < 0 || index >= static_cast<int>(axes_.size()))
    throw Error("plot::Figure::ax: index " + std::to_string(index) + " outside 0.." +
                std::to_string(axes_.size() - 1));
  return axes_[static_cast<size_t>(index)];
}

Figure& Figure::suptitle(const std::string& t) {
  suptitle_ = t;
  return *this;
}

std::string Figure::script() const {
  std::string out = kPreamble;
  // Always a multiplot, even for one panel: one code path, and the layout's
  // title is the suptitle.
  out += "set multiplot layout " + std::to_string(rows_) + "," + std::to_string(cols_);
  if (!suptitle_.empty()) out += " title " + quote(suptitle_) + " font ',15'";
  out += "\n";
  for (const Axes& a : axes_) {
    const std::string block = a.script();
    // An empty panel is skipped, leaving a blank cell in the grid.
    out += block.empty() ? "set multiplot next\n" : block;
  }
  return out + "unset multiplot\n";
}

namespace {
// Browsers refuse an SVG that is not valid UTF-8 (the figure shows as broken).
// gnuplot writes such bytes for octal escapes like {/Symbol \\326}: write the
// character itself (τ, Δ, √, ∇, →) in the label instead.
bool valid_utf8(const std::string& s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    const int extra = c < 0x80           ? 0
                      : (c >> 5) == 0x6  ? 1
                      : (c >> 4) == 0xE  ? 2
                      : (c >> 3) == 0x1E ? 3
                                         : -1;
    if (extra < 0 || i + extra >= s.size()) return false;
    for (int k = 1; k <= extra; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    i += extra + 1;
  }
  return true;
}

void check_svg_text(const std::string& svg, const std::string& target) {
  if (!valid_utf8(svg))
    throw Error(
        "plot: the SVG for " + target + " is not valid UTF-8, browsers will not show it",
        "write symbols as UTF-8 characters (τ, Δ, √, →) instead of {/Symbol \\ooo} escapes");
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}
}  // namespace

fs::path Figure::save(const fs::path& stem) const {
  // Appending (not replace_extension) keeps stems such as "step_0.5" intact.
  const fs::path svg_path = stem.string() + ".svg", png_path = stem.string() + ".png";
  if (stem.has_parent_path()) {
    std::error_code ec;
    fs::create_directories(stem.parent_path(), ec);
    if (ec)
      throw Error("plot: cannot create the folder " + stem.parent_path().string() + ": " +
                  ec.message());
  }
  const std::string size = " size " + std::to_string(width_) + "," + std::to_string(height_) + "\n";
  const std::string body = script();
  const std::string full = "set terminal svg enhanced background rgb 'white' font 'Helvetica,12'" +
                           size + "set output " + quote(svg_path.string()) + "\n" + body +
                           "unset output\n" + "set terminal pngcairo enhanced font 'Helvetica,11'" +
                           size + "set output " + quote(png_path.string()) + "\n" + body +
                           "unset output\n";
  run_gnuplot(full, stem.string());
  for (const fs::path& p : {svg_path, png_path})
    if (!fs::exists(p)) throw Error("plot: gnuplot did not write " + p.string());
  check_svg_text(read_file(svg_path), svg_path.string());
  return svg_path;
}

std::string Figure::svg() const {
  TempFile file(".svg");
  run_gnuplot("set terminal svg enhanced background rgb 'white' font 'Helvetica,12' size " +
                  std::to_string(width_) + "," + std::to_string(height_) + "\nset output " +
                  quote(file.path().string()) + "\n" + script() + "unset output\n",
              "an SVG string");
  auto svg = read_file(file.path());
  check_svg_text(svg, "an SVG string");
  return svg;
}

void require_gnuplot() {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path ? path : "");
  for (std::string dir; std::getline(dirs, dir, ':');) {
    const fs::path candidate = fs::path(dir.empty() ? "." : dir) / "gnuplot";
    if (access(candidate.c_str(), X_OK) == 0) return;
  }
  throw Error("gnuplot is not installed (or not on PATH); figures need it",
              "install gnuplot-nox (bash tools/install-deps.sh)");
}

}  // namespace dm::plot
