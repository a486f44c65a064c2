#include "dm/diffusion/param.hpp"

#include "dm/base/core.hpp"

namespace dm {

namespace {
// ANCHOR: convert_impl
// a, s are per-row tensors, or plain numbers when one time serves the whole
// batch (then no 0-dim tensors are made: fewer operations per sampling step).
template <class Scale>
torch::Tensor through_eps(const torch::Tensor& out, Prediction from, Prediction to,
                          const torch::Tensor& x, const Scale& a, const Scale& s) {
  if (from == to) return out;
  // Everything through ε:  ε = −s·score = (x − a·x̂_0)/s
  torch::Tensor eps;
  switch (from) {
    case Prediction::eps: eps = out; break;
    case Prediction::score: eps = -out * s; break;
    case Prediction::x0: eps = (x - a * out) / s; break;
  }
  switch (to) {
    case Prediction::eps: return eps;
    case Prediction::score: return -eps / s;        // score = −ε/s
    case Prediction::x0: return (x - s * eps) / a;  // x̂_0 = (x − s·ε)/a
  }
  return eps;
}
// ANCHOR_END: convert_impl
}  // namespace

torch::Tensor convert(const torch::Tensor& out, Prediction from, Prediction to,
                      const torch::Tensor& x, const torch::Tensor& a, const torch::Tensor& s) {
  return through_eps(out, from, to, x, a, s);
}

torch::Tensor convert(const torch::Tensor& out, Prediction from, Prediction to,
                      const torch::Tensor& x, Coefficients c) {
  return through_eps(out, from, to, x, c.a, c.s);
}

torch::Tensor time_like(double t, const torch::Tensor& x) {
  return torch::full({x.size(0)}, t,
                     x.options().dtype(x.is_floating_point() ? x.scalar_type() : torch::kFloat32));
}

torch::Tensor predict_as(Prediction kind, Model& model, const Process& process,
                         const torch::Tensor& x, double t, const Condition& c) {
  auto out = model.predict(x, time_like(t, x), c);
  if (model.prediction() == kind) return out;
  return convert(out, model.prediction(), kind, x, process.at(t));
}

torch::Tensor predict_as(Prediction kind, Model& model, const Process& process,
                         const torch::Tensor& x, const torch::Tensor& t, const Condition& c) {
  auto out = model.predict(x, t.to(x.options()), c);
  if (model.prediction() == kind) return out;
  return convert(out, model.prediction(), kind, x, per_row(process.a(t), x),
                 per_row(process.s(t), x));
}

torch::Tensor timeless_score(Model& model, const torch::Tensor& x, const Condition& c) {
  if (model.prediction() != Prediction::score)
    throw Error(
        "Langevin needs a score model; this model predicts " + to_string(model.prediction()),
        "wrap it with its process: predict_as(Prediction::score, model, process, x, t)");
  return model.predict(x, torch::zeros({x.size(0)}, x.options()), c);
}

}  // namespace dm
