/* tape: the append-only autograd tape.
 *
 * Ops append one node per differentiable result: {op name, backward fn, dst,
 * src[], saved state}. Backward walks the nodes in reverse and calls each
 * node's backward, which ACCUMULATES (+=) into the gradients of the sources
 * that require one. A node is recorded only when grad mode is on and some
 * source requires a gradient, so frozen parameters and inputs cost neither a
 * node nor saved activations, and no-grad mode (inference) records nothing.
 *
 * Memory: every tensor, gradient and saved buffer of a step comes from the
 * tape's arena, released at once by gtl__tape_reset(). Parameter gradients
 * live in their paramset's gradient blob and accumulate across steps until
 * the owner zeroes them. */
#ifndef GTL__TAPE_H
#define GTL__TAPE_H

#include "core/rng.h"
#include "dnnl/ctx.h"
#include "tensor/tensor.h"

typedef struct gtl__tape gtl__tape;
typedef struct gtl__node gtl__node;

typedef gtl_status (*gtl__backward_fn)(gtl__tape *tape, gtl__node *node);

#define GTL__NODE_MAX_SRC 6

struct gtl__node {
    const char *name;                   /* op name (static) */
    gtl__backward_fn backward;
    gtl__tensor *dst;
    gtl__tensor *src[GTL__NODE_MAX_SRC];
    int32_t n_src;
    void *saved;                        /* op-private state, arena memory */
    int64_t ip[8];                      /* op integer parameters */
    float fp[8];                        /* op float parameters */
};

struct gtl__tape {
    gtl__ctx *ctx;                      /* borrowed */
    gtl__rng *rng;                      /* borrowed; dropout and sampling draw from it */
    gtl__arena arena;
    gtl__node *nodes;
    int64_t n_nodes;
    int64_t cap_nodes;
    bool grad_enabled;                  /* false: inference, nothing is recorded */
    bool training;                      /* dropout active, batchnorm uses batch stats */
    bool backward_done;
};

gtl_status gtl__tape_create(gtl__ctx *ctx, gtl__rng *rng, gtl__tape **out_tape);
void gtl__tape_destroy(gtl__tape *tape);
/* Forgets all nodes and releases the arena for the next step. */
void gtl__tape_reset(gtl__tape *tape);

/* ---- For ops ---- */

/* Arena memory for the step; NULL with an OUT_OF_MEMORY message. */
void *gtl__tape_alloc(gtl__tape *tape, size_t bytes);
/* A new uninitialised tensor from the arena; no grad flags. */
gtl_status gtl__tape_tensor(gtl__tape *tape, int32_t nd, const int64_t *ne,
                            gtl__tensor **out_tensor);
/* A leaf copied from data (or zeroed when data is NULL). */
gtl_status gtl__tape_leaf(gtl__tape *tape, int32_t nd, const int64_t *ne, const float *data,
                          bool requires_grad, gtl__tensor **out_tensor);
/* True when an op on these sources must record a node. */
bool gtl__tape_needs_node(const gtl__tape *tape, gtl__tensor *const *src, int32_t n_src);
/* The output tensor of an op: REQUIRES_GRAD when a node will be recorded. */
gtl_status gtl__tape_output(gtl__tape *tape, int32_t nd, const int64_t *ne,
                            gtl__tensor *const *src, int32_t n_src, gtl__tensor **out_tensor);
/* Appends a node for dst (which must require grad). */
gtl_status gtl__tape_record(gtl__tape *tape, const char *name, gtl__backward_fn backward,
                            gtl__tensor *dst, gtl__tensor *const *src, int32_t n_src,
                            gtl__node **out_node);
/* The gradient buffer of t, created zeroed on first use. Backward functions
 * call it for each source that requires a gradient, then add into it. */
gtl_status gtl__tape_grad(gtl__tape *tape, gtl__tensor *t, float **out_grad);

/* ---- Backward ---- */

/* Backward from a scalar loss (seed 1). Parameter gradients must have their
 * blob allocated (gtl__paramset_alloc_grad). BAD_STATE if run twice. */
gtl_status gtl__tape_backward(gtl__tape *tape, gtl__tensor *loss);
/* Backward from any tensor with a given output gradient (same size). */
gtl_status gtl__tape_backward_seed(gtl__tape *tape, gtl__tensor *out, const float *seed_grad);

#endif /* GTL__TAPE_H */
