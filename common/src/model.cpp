#include "dm/model.hpp"

#include "dm/core.hpp"

namespace dm {

namespace {
// Reshape a per-row std [N] so it broadcasts against x [N, ...].
torch::Tensor broadcastable(const torch::Tensor& std, const torch::Tensor& like) {
  if (std.dim() == 0 || std.dim() == like.dim()) return std;
  std::vector<int64_t> shape(like.dim(), 1);
  shape[0] = std.size(0);
  return std.reshape(shape);
}
}  // namespace

// ANCHOR: score_eps_impl
torch::Tensor score_from_eps(const torch::Tensor& eps, const torch::Tensor& std) {
  return -eps / broadcastable(std, eps);
}

torch::Tensor eps_from_score(const torch::Tensor& score, const torch::Tensor& std) {
  return -score * broadcastable(std, score);
}
// ANCHOR_END: score_eps_impl

torch::Tensor model_score(Model& model, const torch::Tensor& x, const torch::Tensor& t,
                          const torch::Tensor& labels,
                          const std::function<torch::Tensor(const torch::Tensor&)>& std_of_t) {
  auto out = model.predict(x, t, labels);
  if (model.prediction() == Prediction::score) return out;
  if (!std_of_t) throw Error("model_score: an ε-model needs std_of_t to give a score");
  return score_from_eps(out, std_of_t(t));
}

}  // namespace dm
