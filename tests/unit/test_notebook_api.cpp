// The notebook API (dm/notebook.hpp) compiled as a Jupyter kernel compiles it
// (tests/unit/kernel_stub stands in for the kernel's <xcpp/xdisplay.hpp>): the
// mime bundles a notebook displays, and the boundary's conversions — among them
// the regression of a one-row or one-column batch that was handed to LibTorch
// as a view of memory about to be freed.
#include <gtest/gtest.h>

#include <string>

#include "dm/base/core.hpp"  // dm::Error
#include "dm/notebook.hpp"  // not with dm/app/display.hpp: each defines the Figure's mime_bundle_repr

namespace {

// The PNG signature 89 50 4E 47 0D 0A 1A 0A, base64-encoded, begins every PNG bundle.
const std::string kPngSignatureBase64 = "iVBORw0KGgo";

}  // namespace

TEST(NotebookApi, FiguresAndPicturesBecomeMimeBundlesInAKernel) {
  dm::plot::require_gnuplot();
  dm::plot::Figure fig(1, 1, 300, 200);
  fig.ax().line({0, 1, 2}, {0, 1, 4}, "x²");
  const auto svg = dm::plot::mime_bundle_repr(fig);
  ASSERT_TRUE(svg.contains("image/svg+xml"));
  EXPECT_NE(svg["image/svg+xml"].get<std::string>().find("</svg>"), std::string::npos);

  dm::nb::Images images;
  images.count = 2;
  images.height = images.width = 4;
  images.values.assign(32, 0.5f);
  const auto png = dm::nb::mime_bundle_repr(dm::nb::show(images, 2));
  ASSERT_TRUE(png.contains("image/png"));
  EXPECT_EQ(png["image/png"].get<std::string>().substr(0, kPngSignatureBase64.size()),
            kPngSignatureBase64);
}

// A mixture built from a temporary one-row means matrix keeps its means.
TEST(NotebookApi, OneRowAndOneColumnBatchesAreCopiedAcrossTheBoundary) {
  const auto p = dm::nb::Mixture::isotropic({1.0}, dm::nb::points({{0.5, -0.25}}), {0.1});
  const auto means = p.means();
  EXPECT_DOUBLE_EQ(means(0, 0), 0.5);
  EXPECT_DOUBLE_EQ(means(0, 1), -0.25);
  // A score that returns a temporary [N, 1] batch, through ULA: one step by hand
  // with the same noise, x' = x + (Δt/2)(−x) + √Δt z.
  const dm::nb::ScoreFn pull = [](const dm::nb::Points& x) -> dm::nb::Points { return -x; };
  auto x0 = dm::nb::points({{1.0}, {-2.0}, {0.5}});
  dm::nb::Generator a(7), b(7);
  const auto x1 = dm::nb::ula(pull, x0, 0.1, 1, a);
  const auto z = dm::nb::randn(3, 1, b);
  const dm::nb::Points expected = x0 + 0.05 * (-x0) + std::sqrt(0.1) * z;
  EXPECT_LT((x1 - expected).cwiseAbs().maxCoeff(), 1e-12);
}

TEST(NotebookApi, BadInputIsRefusedWithAReason) {
  EXPECT_THROW(dm::nb::points({{1.0, 2.0}, {3.0}}), dm::Error);
  EXPECT_THROW(dm::nb::column(dm::nb::points({{1.0}}), 1), dm::Error);
  EXPECT_THROW(dm::nb::Mixture({0.5, 0.5}, dm::nb::points({{0.0, 0.0}}), {}), dm::Error);
  const dm::nb::ScoreFn wrong = [](const dm::nb::Points& x) -> dm::nb::Points {
    return x.leftCols(1);
  };
  dm::nb::Generator gen(1);
  EXPECT_THROW(dm::nb::ula(wrong, dm::nb::points({{1.0, 2.0}}), 0.1, 1, gen), dm::Error);
}
