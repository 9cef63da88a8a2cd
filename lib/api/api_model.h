/* The struct behind the public gtl_model handle, shared by the model,
 * training and checkpoint entry points. */
#ifndef GTL__API_MODEL_H
#define GTL__API_MODEL_H

#include "data/data.h"
#include "gtl/model.h"
#include "gtl/train.h"
#include "head/head.h"
#include "optim/optim.h"

#define GTL__MODEL_NKEYS 32

struct gtl_model {
    int64_t iv[GTL__MODEL_NKEYS];  /* i64 parameters by key */
    float fv[GTL__MODEL_NKEYS];    /* f32 parameters by key */
    bool initialized;
    gtl__head head;
    gtl__rng rng;                  /* sampling noise, dropout, batch sampling */
    gtl__ctx *ctx;
    gtl__tape *tape;
    int32_t stage;                 /* gtl_stage, or -1 before the first set_stage */
    int64_t stage_step;            /* completed steps of the current stage (t of C_t) */
    bool grads_pending;
    gtl__paramset *active;         /* the parameter set the stage trains */
    int64_t *frozen_idx;           /* optimizer group: parameters the optimizer skips */
    int64_t n_frozen_idx;
    float *bn_backup;              /* batch-norm statistics saved before a step */
    int64_t n_bn_backup;
    bool rep_cls;                  /* B1/N1 with the classification term: the classifier
                                      (without its centers) trains beside the body */
    gtl_optimizer *rep_opt;        /* the classifier's optimizer in such a stage (created
                                      on first use, settings copied from the host's) */
};

gtl_status gtl__model_ensure_init(gtl_model *model, const char *fn);
/* The name of parameter key (NULL if unused) and whether it is an integer. */
const char *gtl__model_key_name(int key, bool *out_is_int);
bool gtl__model_key_in_bounds(int key, double v);
/* Freezes the modules a stage does not train and binds its gradients,
 * without touching the classifier or the counters (used by set_stage and by
 * checkpoint loading). */
gtl_status gtl__model_configure_stage(gtl_model *model, gtl_stage stage);

#endif /* GTL__API_MODEL_H */
