// dm/app/figure.hpp — figures drawn by gnuplot (a real plotting engine), saved as
// SVG and PNG, with no LibTorch in sight: the notebook API (dm/notebook.hpp)
// uses it as it is. A Figure holds one or more Axes in a grid; each Axes
// collects series (lines, scatter, histogram with a density curve over it, a
// 2D heatmap with contours, a vector field) and is rendered in one gnuplot call.
//
//   dm::plot::Figure fig(1, 2, 1000, 420);
//   fig.ax(0).title("ULA").histogram(samples, 80).line(xs, density, "exact");
//   fig.ax(1).title("MALA").logy().points(x, y, "chains");
//   fig.save(out / "bias");            // writes bias.svg and bias.png
//
// Numbers are passed as std::vector<double> (dm/app/plot.hpp adds to_vec for
// tensors). Text (titles, labels) uses gnuplot's enhanced syntax: x^2,
// σ_{min}; write \\_ in a C++ literal for a literal underscore.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace dm::plot {

using Vec = std::vector<double>;

// A colour cycle that stays readable for colour-blind readers (Okabe–Ito).
std::string color(int index);

struct Style {
  std::string color;        // "#rrggbb"; empty = next in the cycle
  double width = 2.0;       // line width
  double point_size = 0.4;  // scatter marker size
  double alpha = 1.0;       // 0..1 opacity (scatter/histogram fill)
  bool dashed = false;
};

class Axes {
 public:
  Axes& title(const std::string& t);
  Axes& xlabel(const std::string& t);
  Axes& ylabel(const std::string& t);
  Axes& xrange(double lo, double hi);
  Axes& yrange(double lo, double hi);
  Axes& logx(bool on = true);
  Axes& logy(bool on = true);
  Axes& equal_aspect(bool on = true);
  Axes& legend(bool on = true);

  Axes& line(const Vec& x, const Vec& y, const std::string& label = {}, Style s = {});
  Axes& points(const Vec& x, const Vec& y, const std::string& label = {}, Style s = {});
  // Line with point markers (for a few measured values, e.g. error vs step).
  Axes& linepoints(const Vec& x, const Vec& y, const std::string& label = {}, Style s = {});
  // Horizontal reference line across the x range.
  Axes& hline(double y, const std::string& label = {}, Style s = {});
  // Histogram normalised to a density (area 1) so an exact density can be
  // drawn over it with line(). Range defaults to the data's min..max.
  Axes& histogram(const Vec& values, int bins, const std::string& label = {}, Style s = {},
                  std::optional<std::pair<double, double>> range = std::nullopt);
  // z[i][j] = value at (x_lo + j·dx, y_lo + i·dy): a heatmap, with `levels`
  // contour lines over it when levels > 0.
  Axes& heatmap(const std::vector<Vec>& z, double x_lo, double x_hi, double y_lo, double y_hi,
                int levels = 0, const std::string& palette = "viridis");
  // Arrows (u, v) at (x, y); scaled so the longest arrow has length `max_len`.
  Axes& vectors(const Vec& x, const Vec& y, const Vec& u, const Vec& v, double max_len,
                const std::string& label = {}, Style s = {});

  // The gnuplot commands for this axes (data inline). Used by Figure.
  std::string script() const;

 private:
  struct Series {
    std::string kind, label;
    Style style;
    std::vector<Vec> columns;
  };
  std::string title_, xlabel_, ylabel_;
  std::optional<std::pair<double, double>> xrange_, yrange_;
  bool logx_ = false, logy_ = false, equal_ = false, legend_ = true;
  std::vector<Series> series_;
  std::string palette_;
  int contour_levels_ = 0;
  int next_color_ = 0;
  Style styled(Style s);
};

class Figure {
 public:
  Figure(int rows = 1, int cols = 1, int width = 0, int height = 0);
  Axes& ax(int index = 0);
  // Full gnuplot script that draws the figure on the current terminal.
  std::string script() const;
  // Writes <stem>.svg and <stem>.png (stem has no extension); returns the SVG path.
  std::filesystem::path save(const std::filesystem::path& stem) const;
  // Renders to an SVG string (used for inline display in notebooks).
  std::string svg() const;
  const std::string& suptitle() const { return suptitle_; }
  Figure& suptitle(const std::string& t);

 private:
  int rows_, cols_, width_, height_;
  std::vector<Axes> axes_;
  std::string suptitle_;
};

// The bar heights of histogram(): `bins` equal bins on [lo, hi], height
// count_k / (n·Δ) with Δ = (hi − lo)/bins and n the values inside [lo, hi]
// (as numpy.histogram(density=True)), so that Σ_k height_k·Δ = 1.
Vec histogram_density(const Vec& values, int bins, double lo, double hi);

// Throws dm::Error with an install hint when gnuplot is not on PATH.
void require_gnuplot();

}  // namespace dm::plot
