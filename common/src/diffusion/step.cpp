#include "dm/diffusion/step.hpp"

#include <cmath>
#include <memory>

#include "dm/base/core.hpp"
#include "dm/base/progress.hpp"

namespace dm {

// ANCHOR: run
RunResult run(Model& model, const Step& step, torch::Tensor x, const std::vector<double>& grid,
              at::Generator& gen, const Condition& c, const RunOptions& options) {
  if (grid.size() < 2)
    throw Error("run: a time grid needs at least two times, got " + std::to_string(grid.size()));
  c10::InferenceMode inference;  // no autograd graph, no version counters: sampling only
  const int64_t steps = int64_t(grid.size()) - 1;
  std::unique_ptr<Progress> bar;
  if (!options.progress_label.empty())
    bar = std::make_unique<Progress>(options.progress_label, steps);
  RunResult out;
  StepResult last;
  for (int64_t i = 0; i < steps; ++i) {
    last = step(model, x, grid[i], grid[i + 1], c, gen);
    x = last.x;
    out.nfe += last.nfe;
    if (options.callback)
      options.callback(StepEvent{i, steps, grid[i], grid[i + 1], last, out.nfe});
    if (bar) bar->tick();
  }
  out.x = options.return_mean && last.mean.defined() ? last.mean : x;
  out.steps = steps;
  return out;
}
// ANCHOR_END: run

std::vector<double> integer_grid(int64_t T) {
  if (T < 1) throw Error("integer_grid: need T ≥ 1");
  std::vector<double> g;
  for (int64_t t = T; t >= 0; --t) g.push_back(double(t));
  return g;
}

std::vector<double> respaced_grid(int64_t T, int64_t steps) {
  if (steps < 1 || steps > T)
    throw Error("respaced_grid: need 1 ≤ steps ≤ T, got steps = " + std::to_string(steps) +
                ", T = " + std::to_string(T));
  std::vector<double> g;
  for (int64_t i = 0; i <= steps; ++i)
    g.push_back(std::round(double(T) * double(steps - i) / double(steps)));
  return g;
}

std::vector<double> uniform_grid(double from, double to, int64_t steps) {
  if (steps < 1) throw Error("uniform_grid: need steps ≥ 1");
  std::vector<double> g;
  for (int64_t i = 0; i <= steps; ++i) g.push_back(from + (to - from) * double(i) / double(steps));
  g.back() = to;
  return g;
}

std::vector<double> append(std::vector<double> values, double end) {
  values.push_back(end);
  return values;
}

}  // namespace dm
