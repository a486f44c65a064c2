// dm/notebook/sde.hpp — (to be written) the notebook API of this chapter.
#pragma once

#include "dm/notebook/core.hpp"
