// dm/notebook/score_matching.hpp — (to be written) the notebook API of this chapter.
#pragma once

#include "dm/notebook/core.hpp"
