/* Model copies: gtl_model_clone() and the state copy the evaluation runner
 * uses to reset a working model to a pretrained one before every episode. */
#ifndef GTL__API_CLONE_H
#define GTL__API_CLONE_H

#include "gtl/model.h"

/* Makes dst a copy of src: settings, weights, batch-norm statistics, the
 * classifier, the random state, the stage and its step counter. src must be
 * initialised with no gradients pending (BAD_STATE); dst either
 * uninitialised or initialised with the same structural settings
 * (INVALID_ARG otherwise). Reusing one dst keeps its compute context and
 * primitive cache warm. On failure dst may be partly overwritten but stays
 * a valid model. */
gtl_status gtl__model_copy_state(gtl_model *dst, const gtl_model *src, const char *fn);

#endif /* GTL__API_CLONE_H */
