#include "dm/diffusion/model.hpp"

#include "dm/base/core.hpp"

namespace dm {

std::string to_string(Prediction p) {
  switch (p) {
    case Prediction::score: return "score";
    case Prediction::eps: return "eps";
    case Prediction::x0: return "x0";
  }
  return "?";
}

Prediction prediction_from_string(const std::string& name) {
  if (name == "score") return Prediction::score;
  if (name == "eps") return Prediction::eps;
  if (name == "x0") return Prediction::x0;
  throw Error("unknown prediction kind '" + name + "'", "use score, eps or x0");
}

Condition Condition::rows(const torch::Tensor& index) const {
  auto pick = [&](const torch::Tensor& v) {
    return v.defined() ? v.index_select(0, index.to(v.device())) : torch::Tensor();
  };
  Condition out;
  out.labels = pick(labels);
  out.image = pick(image);
  out.image_level = pick(image_level);
  out.mask = pick(mask);
  return out;
}

}  // namespace dm
