// dm/dm.hpp — the whole library in one include (for notebooks and quick experiments).
// Chapters include what they use, layer by layer; the layers, lowest first: base, diffusion, nn, data, methods, app.
// The chapter-program headers of dm/app (cli, metrics_file, image_chapter) are
// left out: they need CLI11 and only make sense in a chapter's main.
#pragma once

#include "dm/base/alloc.hpp"
#include "dm/base/checksum.hpp"
#include "dm/base/core.hpp"
#include "dm/base/io.hpp"
#include "dm/base/progress.hpp"
#include "dm/base/rng.hpp"
#include "dm/diffusion/model.hpp"
#include "dm/diffusion/param.hpp"
#include "dm/diffusion/process.hpp"
#include "dm/diffusion/schedule.hpp"
#include "dm/diffusion/sde.hpp"
#include "dm/diffusion/step.hpp"
#include "dm/nn/net_model.hpp"
#include "dm/nn/networks.hpp"
#include "dm/nn/train.hpp"
#include "dm/data/fashion.hpp"
#include "dm/data/metrics.hpp"
#include "dm/data/quality.hpp"
#include "dm/data/toy.hpp"
#include "dm/methods/ddpm.hpp"
#include "dm/methods/langevin.hpp"
#include "dm/methods/losses.hpp"
#include "dm/methods/ncsn.hpp"
#include "dm/methods/reverse_sde.hpp"
#include "dm/app/display.hpp"
#include "dm/app/image.hpp"
#include "dm/app/plot.hpp"
