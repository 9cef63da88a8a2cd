/* The autograd tape: node recording and the reverse walk. */
#include <string.h>

#include "tape/tape.h"

gtl_status gtl__tape_create(gtl__ctx *ctx, gtl__rng *rng, gtl__tape **out_tape)
{
    *out_tape = NULL;
    gtl__tape *t = gtl__calloc(1, sizeof *t);
    if (t == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "tape: out of memory");
    t->ctx = ctx;
    t->rng = rng;
    gtl__arena_init(&t->arena);
    t->grad_enabled = true;
    t->training = true;
    *out_tape = t;
    return GTL_STATUS_OK;
}

void gtl__tape_destroy(gtl__tape *tape)
{
    if (tape == NULL)
        return;
    gtl__arena_fini(&tape->arena);
    gtl__free(tape->nodes);
    gtl__free(tape);
}

void gtl__tape_reset(gtl__tape *tape)
{
    tape->n_nodes = 0;
    tape->backward_done = false;
    gtl__arena_reset(&tape->arena);
}

void *gtl__tape_alloc(gtl__tape *tape, size_t bytes)
{
    void *p = gtl__arena_alloc(&tape->arena, bytes);
    if (p == NULL)
        gtl__error(GTL_STATUS_OUT_OF_MEMORY, "step arena: out of memory (%zu bytes)", bytes);
    return p;
}

gtl_status gtl__tape_tensor(gtl__tape *tape, int32_t nd, const int64_t *ne,
                            gtl__tensor **out_tensor)
{
    *out_tensor = NULL;
    gtl__tensor *t = gtl__tape_alloc(tape, sizeof *t);
    if (t == NULL)
        return GTL_STATUS_OUT_OF_MEMORY;
    memset(t, 0, sizeof *t);
    if (!gtl__tensor_set_shape(t, nd, ne))
        return gtl__error(GTL_STATUS_INVALID_ARG, "tensor: invalid shape");
    size_t bytes;
    if (!gtl__mul_size((size_t)t->n, sizeof(float), &bytes))
        return gtl__error(GTL_STATUS_INVALID_ARG, "tensor: too large");
    t->data = gtl__tape_alloc(tape, bytes);
    if (t->data == NULL)
        return GTL_STATUS_OUT_OF_MEMORY;
    *out_tensor = t;
    return GTL_STATUS_OK;
}

gtl_status gtl__tape_leaf(gtl__tape *tape, int32_t nd, const int64_t *ne, const float *data,
                          bool requires_grad, gtl__tensor **out_tensor)
{
    gtl__tensor *t;
    gtl_status st = gtl__tape_tensor(tape, nd, ne, &t);
    if (st != GTL_STATUS_OK) {
        *out_tensor = NULL;
        return st;
    }
    if (data != NULL)
        memcpy(t->data, data, (size_t)t->n * sizeof(float));
    else
        memset(t->data, 0, (size_t)t->n * sizeof(float));
    t->flags = GTL__TF_LEAF | (requires_grad ? GTL__TF_REQUIRES_GRAD : 0);
    *out_tensor = t;
    return GTL_STATUS_OK;
}

bool gtl__tape_needs_node(const gtl__tape *tape, gtl__tensor *const *src, int32_t n_src)
{
    if (!tape->grad_enabled)
        return false;
    for (int32_t i = 0; i < n_src; i++)
        if (gtl__requires_grad(src[i]))
            return true;
    return false;
}

gtl_status gtl__tape_output(gtl__tape *tape, int32_t nd, const int64_t *ne,
                            gtl__tensor *const *src, int32_t n_src, gtl__tensor **out_tensor)
{
    gtl_status st = gtl__tape_tensor(tape, nd, ne, out_tensor);
    if (st != GTL_STATUS_OK)
        return st;
    if (gtl__tape_needs_node(tape, src, n_src))
        (*out_tensor)->flags |= GTL__TF_REQUIRES_GRAD;
    return GTL_STATUS_OK;
}

gtl_status gtl__tape_record(gtl__tape *tape, const char *name, gtl__backward_fn backward,
                            gtl__tensor *dst, gtl__tensor *const *src, int32_t n_src,
                            gtl__node **out_node)
{
    *out_node = NULL;
    GTL_ASSERT(n_src <= GTL__NODE_MAX_SRC);
    GTL_ASSERT(gtl__requires_grad(dst));
    if (tape->backward_done)
        return gtl__error(GTL_STATUS_BAD_STATE,
                          "%s: the tape already ran backward; reset it for a new step", name);
    if (tape->n_nodes == tape->cap_nodes) {
        int64_t cap = tape->cap_nodes ? 2 * tape->cap_nodes : 256;
        gtl__node *n = gtl__realloc(tape->nodes, (size_t)cap * sizeof *n);
        if (n == NULL)
            return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "tape: out of memory");
        tape->nodes = n;
        tape->cap_nodes = cap;
    }
    gtl__node *node = &tape->nodes[tape->n_nodes++];
    memset(node, 0, sizeof *node);
    node->name = name;
    node->backward = backward;
    node->dst = dst;
    node->n_src = n_src;
    for (int32_t i = 0; i < n_src; i++)
        node->src[i] = src[i];
    *out_node = node;
    return GTL_STATUS_OK;
}

gtl_status gtl__tape_grad(gtl__tape *tape, gtl__tensor *t, float **out_grad)
{
    *out_grad = NULL;
    if (t->grad == NULL) {
        if (t->flags & GTL__TF_PARAM)
            return gtl__error(GTL_STATUS_BAD_STATE, "parameter %s has no gradient buffer",
                              t->name ? t->name : "?");
        float *g = gtl__tape_alloc(tape, (size_t)t->n * sizeof(float));
        if (g == NULL)
            return GTL_STATUS_OUT_OF_MEMORY;
        memset(g, 0, (size_t)t->n * sizeof(float));
        t->grad = g;
    }
    *out_grad = t->grad;
    return GTL_STATUS_OK;
}

static gtl_status walk(gtl__tape *tape)
{
    for (int64_t i = tape->n_nodes - 1; i >= 0; i--) {
        gtl__node *node = &tape->nodes[i];
        if (node->dst->grad == NULL)
            continue; /* nothing flowed into this result */
        gtl_status st = node->backward(tape, node);
        if (st != GTL_STATUS_OK)
            return st;
    }
    return GTL_STATUS_OK;
}

gtl_status gtl__tape_backward_seed(gtl__tape *tape, gtl__tensor *out, const float *seed_grad)
{
    if (tape->backward_done)
        return gtl__error(GTL_STATUS_BAD_STATE, "backward: already run on this tape");
    if (!gtl__requires_grad(out))
        return gtl__error(GTL_STATUS_BAD_STATE,
                          "backward: the output does not depend on anything that requires a "
                          "gradient (grad mode off, or every input frozen)");
    float *g;
    gtl_status st = gtl__tape_grad(tape, out, &g);
    if (st != GTL_STATUS_OK)
        return st;
    for (int64_t i = 0; i < out->n; i++)
        g[i] += seed_grad[i];
    tape->backward_done = true;
    return walk(tape);
}

gtl_status gtl__tape_backward(gtl__tape *tape, gtl__tensor *loss)
{
    if (loss->n != 1)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "backward: the loss must be a scalar (has %lld elements)",
                          (long long)loss->n);
    const float one = 1.0f;
    return gtl__tape_backward_seed(tape, loss, &one);
}
