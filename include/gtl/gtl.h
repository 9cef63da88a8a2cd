/**
 * @file gtl.h
 * @brief The umbrella header: include this one.
 *
 * libgtl implements GTL, the Generative Transfer Learning framework for
 * cross-modal few-shot learning (arXiv 2410.10663): learn to recognise new
 * classes from a few labelled images in several modalities (photo, sketch,
 * infrared, depth).
 *
 * Conventions that hold for every function:
 *  - every fallible call returns ::gtl_status (0 = OK); details are in
 *    gtl_last_error();
 *  - results come back through trailing `out_*` parameters, which are zeroed
 *    on failure;
 *  - the library copies its inputs, writes outputs into caller buffers and
 *    owns nothing the caller allocated; handles belong to the caller until
 *    their `_destroy`, which accepts NULL;
 *  - no struct crosses the ABI by value.
 */
#ifndef GTL_GTL_H
#define GTL_GTL_H

#include "gtl/export.h"
#include "gtl/version.h"
#include "gtl/status.h"
#include "gtl/runtime.h"
#include "gtl/dataset.h"
#include "gtl/model.h"
#include "gtl/optim.h"
#include "gtl/train.h"
#include "gtl/eval.h"
#include "gtl/backbone.h"

#endif /* GTL_GTL_H */
