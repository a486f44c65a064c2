// Tests of dm/display: base64 against the RFC 4648 vectors, and the mime
// bundles a notebook receives — an SVG that is a whole document, a PNG that
// decodes back to the bytes encode_png wrote.
#include <gtest/gtest.h>

#include <string>

#include "dm/base/core.hpp"
#include "dm/app/display.hpp"

namespace {

const std::string kPngSignature("\x89PNG\r\n\x1a\n", 8);

}  // namespace

TEST(Display, Base64MatchesRfc4648Vectors) {
  // RFC 4648, section 10.
  const std::pair<std::string, std::string> vectors[] = {{"", ""},
                                                         {"f", "Zg=="},
                                                         {"fo", "Zm8="},
                                                         {"foo", "Zm9v"},
                                                         {"foob", "Zm9vYg=="},
                                                         {"fooba", "Zm9vYmE="},
                                                         {"foobar", "Zm9vYmFy"}};
  for (const auto& [plain, encoded] : vectors) {
    EXPECT_EQ(dm::base64_encode(plain), encoded) << plain;
    EXPECT_EQ(dm::base64_decode(encoded), plain) << encoded;
  }
}

TEST(Display, Base64RoundTripsEveryByte) {
  // All 256 byte values (NUL and the high half included), at every length mod 3.
  std::string bytes;
  for (int i = 0; i < 256; ++i) bytes += static_cast<char>(i);
  for (size_t n : {size_t(254), size_t(255), size_t(256)}) {
    const std::string prefix = bytes.substr(0, n);
    const std::string encoded = dm::base64_encode(prefix);
    EXPECT_EQ(encoded.size(), (n + 2) / 3 * 4);
    EXPECT_EQ(encoded.find_first_not_of(
                  "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="),
              std::string::npos);
    EXPECT_EQ(dm::base64_decode(encoded), prefix) << n;
  }
  // 0xfb 0xff encodes to the two last letters of the alphabet.
  EXPECT_EQ(dm::base64_encode("\xfb\xff"), "+/8=");
}

TEST(Display, Base64RejectsMalformedText) {
  EXPECT_THROW(dm::base64_decode("Zm9"), dm::Error);       // length not a multiple of 4
  EXPECT_THROW(dm::base64_decode("Zm9v!A=="), dm::Error);  // '!' is not in the alphabet
  EXPECT_THROW(dm::base64_decode("Zg==Zm9v"), dm::Error);  // padding before the end
  EXPECT_THROW(dm::base64_decode("Z=9v"), dm::Error);      // '=' inside a group
}

TEST(Display, FigureBundleIsOneSvgDocument) {
  dm::plot::require_gnuplot();
  dm::plot::Figure fig;
  fig.ax().title("display test").line({0.0, 1.0, 2.0}, {0.0, 1.0, 4.0}, "y = x^2");
  const nlohmann::json bundle = mime_bundle_repr(fig);  // found by ADL, as xeus does
  ASSERT_TRUE(bundle.is_object());
  ASSERT_EQ(bundle.size(), 1u);
  ASSERT_TRUE(bundle.contains("image/svg+xml"));
  const std::string svg = bundle["image/svg+xml"].get<std::string>();
  const auto open = svg.find("<svg"), close = svg.rfind("</svg>");
  ASSERT_NE(open, std::string::npos);
  ASSERT_NE(close, std::string::npos);
  EXPECT_LT(open, close);
  EXPECT_EQ(svg.find_first_not_of(" \t\r\n", close + 6), std::string::npos);  // nothing after it
  EXPECT_NE(svg.find("display test"), std::string::npos);                     // the title is drawn
}

TEST(Display, ImageBundleDecodesToThePng) {
  // A [C, H, W] image in [0, 1] shown with lo = 0, hi = 1: the bundle carries
  // exactly the bytes encode_png writes.
  const auto image = torch::rand({3, 5, 7}, torch::kFloat64);
  const nlohmann::json bundle = mime_bundle_repr(dm::image::show(image, 8, 0.0, 1.0));
  ASSERT_EQ(bundle.size(), 1u);
  ASSERT_TRUE(bundle.contains("image/png"));
  const std::string png = dm::base64_decode(bundle["image/png"].get<std::string>());
  EXPECT_EQ(png.substr(0, 8), kPngSignature);
  EXPECT_EQ(png, dm::image::encode_png(image, 0.0, 1.0));
}

TEST(Display, ShowTilesABatchIntoAGrid) {
  // Six 1×4×4 images, 3 per row, padding 2: 2 rows → (2·6 + 2) × (3·6 + 2).
  const auto shown = dm::image::show(torch::zeros({6, 1, 4, 4}), 3);
  EXPECT_EQ(shown.pixels.sizes(), (std::vector<int64_t>{1, 14, 20}));
  EXPECT_EQ(shown.lo, -1.0);
  EXPECT_EQ(shown.hi, 1.0);
  EXPECT_EQ(shown.pixels[0][0][0].item<double>(), 1.0);  // padding at hi: white
  const std::string png =
      dm::base64_decode(mime_bundle_repr(shown)["image/png"].get<std::string>());
  EXPECT_EQ(png.substr(0, 8), kPngSignature);
  // A 2D image passes through unchanged.
  EXPECT_EQ(dm::image::show(torch::zeros({4, 6})).pixels.sizes(), (std::vector<int64_t>{4, 6}));
}

TEST(Display, ShowRejectsWrongShapes) {
  EXPECT_THROW(dm::image::show(torch::zeros({5})), dm::Error);
  EXPECT_THROW(dm::image::show(torch::zeros({1, 1, 1, 4, 4})), dm::Error);
}
