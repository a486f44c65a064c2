// dm/notebook/langevin.hpp — chapter 01 (Langevin MCMC) for notebooks: the
// unadjusted Langevin algorithm on any score, in plain types.
#pragma once

#include "dm/notebook/core.hpp"

namespace dm::nb {

// `steps` steps of ULA from the chains x0 (one per row), at temperature τ
// (τ = 1: the target itself):  x ← x + (Δt / 2τ)·s(x) + √Δt·z,  z ~ N(0, I).
Points ula(const ScoreFn& score, const Points& x0, double dt, int64_t steps, Generator& gen, double tau = 1.0);
// The same with a mixture's exact score, without leaving the library (faster).
Points ula(const Mixture& p, const Points& x0, double dt, int64_t steps, Generator& gen, double tau = 1.0);

}  // namespace dm::nb
