// langevin.cpp — chapter 01's samplers for notebooks: dm::langevin behind plain types.
#include "dm/notebook/langevin.hpp"

#include "dm/methods/langevin.hpp"
#include "internal.hpp"

namespace dm::nb {

using namespace detail;

Points ula(const ScoreFn& score, const Points& x0, double dt, int64_t steps, Generator& gen, double tau) {
  auto model = to_model(score);
  return to_points(dm::langevin::ula(model, to_tensor(x0), dt, steps, unwrap(gen), tau));
}

Points ula(const Mixture& p, const Points& x0, double dt, int64_t steps, Generator& gen, double tau) {
  auto model = unwrap(p);  // a GaussianMixture is a dm::Model (its exact score)
  return to_points(dm::langevin::ula(model, to_tensor(x0), dt, steps, unwrap(gen), tau));
}

}  // namespace dm::nb
