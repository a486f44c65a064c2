// Chapter 06 exercises — reference solutions.
//
// Try exercises.cpp first. These answers are written out from the formulas in
// exercises.hpp, not by calling dm::pc or dm::flow; the tests compare them with
// the library.
#include "exercises.hpp"

#include <cmath>

namespace ex06 {

double snr_step_size(const torch::Tensor& score, const torch::Tensor& noise, double snr,
                     double alpha) {
  const double s = score.flatten(1).norm(2, 1).mean().item<double>();
  const double z = noise.flatten(1).norm(2, 1).mean().item<double>();
  if (s == 0.0) return 0.0;
  return 2.0 * alpha * std::pow(snr * z / s, 2);
}

torch::Tensor corrector_step(const torch::Tensor& x, const torch::Tensor& score,
                             const torch::Tensor& noise, double snr, double alpha) {
  const double eps = snr_step_size(score, noise, snr, alpha);
  return x + eps * score + std::sqrt(2.0 * eps) * noise;
}

double hutchinson_trace(const torch::Tensor& A, const torch::Tensor& probes) {
  // v_kᵀ A v_k for every probe (row k), then the mean
  return (torch::matmul(probes, A) * probes).sum(1).mean().item<double>();
}

torch::Tensor bits_per_dim(const torch::Tensor& log_prob, int64_t dims) {
  return -log_prob / (double(dims) * std::log(2.0)) + std::log2(256.0 / 2.0);
}

}  // namespace ex06
