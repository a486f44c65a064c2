// The threshold every energy-distance test uses: how far above its noise
// floor a statistic may lie and still be "the same law" at the 99% level.
//
// Under "same law", n·ED is a quadratic form Σ λ_j Z_j² in Gaussians
// (V-statistic), and by Székely & Bakirov (2003) P(Q ≥ x·E Q) ≤ P(χ²₁ ≥ x)
// for x ≳ 1.5: the single-term case is the heaviest tail. The floor is itself
// a mean of R repeats, so in the worst case ED / floor ~ F(1, R), whose 99th
// percentile is t²_{R, 0.995}. Below the factor: consistent with the target;
// above it: resolved as different (derivation and measurements in
// tests/unit/test_toy.cpp).
#pragma once

#include <stdexcept>
#include <string>

namespace dm_test {

// The 99th percentile of F(1, R) for the repeat counts the tests use.
inline double floor_factor(int repeats) {
  switch (repeats) {
    case 10: return 10.04;  // t_{10, 0.995} = 3.169
    case 16: return 8.53;   // t_{16, 0.995} = 2.921
    case 20: return 8.10;   // t_{20, 0.995} = 2.845
    default:
      throw std::invalid_argument("floor_factor: no F(1, R) percentile tabulated for R = " +
                                  std::to_string(repeats));
  }
}

}  // namespace dm_test
