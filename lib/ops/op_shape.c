/* Layout ops: concat, slice, reshape, transpose. Plain loops that move
 * contiguous runs with memcpy; every result except reshape's is a new
 * contiguous tensor. Derivations: docs/autograd.md#layout.
 *
 * Geometry: an axis splits a row-major tensor into (O, L, I): O the product of
 * the dims before it, L its length, I the product of the dims after it. A
 * slab of the axis is then O runs of (length * I) contiguous elements. */
#include <stdio.h>
#include <string.h>

#include "ops/ops.h"

static void split_axis(const gtl__tensor *t, int32_t axis, int64_t *outer, int64_t *inner)
{
    *outer = 1;
    *inner = 1;
    for (int32_t i = 0; i < axis; i++)
        *outer *= t->ne[i];
    for (int32_t i = axis + 1; i < t->nd; i++)
        *inner *= t->ne[i];
}

/* ---- concat --------------------------------------------------------------- */

/* dst (O, sum_k L_k, I); src k is (O, L_k, I) at offset off_k along the axis. */
static gtl_status concat_backward(gtl__tape *tape, gtl__node *node)
{
    gtl__tensor *dst = node->dst;
    int32_t axis = (int32_t)node->ip[0];
    int64_t outer, inner, off = 0;
    split_axis(dst, axis, &outer, &inner);
    int64_t row = dst->ne[axis] * inner;
    for (int32_t k = 0; k < node->n_src; k++) {
        gtl__tensor *src = node->src[k];
        int64_t run = src->ne[axis] * inner;
        if (gtl__requires_grad(src)) {
            float *g;
            gtl_status st = gtl__tape_grad(tape, src, &g);
            if (st != GTL_STATUS_OK)
                return st;
            for (int64_t o = 0; o < outer; o++) {
                float *gr = g + o * run;
                const float *dr = dst->grad + o * row + off;
                for (int64_t i = 0; i < run; i++)
                    gr[i] += dr[i];
            }
        }
        off += run;
    }
    return GTL_STATUS_OK;
}

gtl_status gtl__op_concat(gtl__tape *tape, gtl__tensor *const *src, int32_t n, int32_t axis,
                          gtl__tensor **out)
{
    char s1[64], s2[64];
    *out = NULL;
    if (src == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "concat: NULL source list");
    if (n < 1 || n > GTL__NODE_MAX_SRC)
        return gtl__error(GTL_STATUS_INVALID_ARG, "concat: %d tensors (want 1..%d)", (int)n,
                          GTL__NODE_MAX_SRC);
    for (int32_t k = 0; k < n; k++)
        if (src[k] == NULL)
            return gtl__error(GTL_STATUS_INVALID_ARG, "concat: tensor %d is NULL", (int)k);
    const gtl__tensor *s0 = src[0];
    if (axis < 0 || axis >= s0->nd)
        return gtl__error(GTL_STATUS_INVALID_ARG, "concat: axis %d out of range for %d dims",
                          (int)axis, (int)s0->nd);
    int64_t ne[GTL__MAX_DIMS];
    for (int32_t i = 0; i < s0->nd; i++)
        ne[i] = s0->ne[i];
    for (int32_t k = 1; k < n; k++) {
        bool ok = src[k]->nd == s0->nd;
        for (int32_t i = 0; ok && i < s0->nd; i++)
            ok = i == axis || src[k]->ne[i] == s0->ne[i];
        if (!ok)
            return gtl__error(GTL_STATUS_INVALID_ARG,
                              "concat: tensor %d %s does not match tensor 0 %s outside axis %d",
                              (int)k, gtl__shape_str(src[k], s2, sizeof s2),
                              gtl__shape_str(s0, s1, sizeof s1), (int)axis);
        if (src[k]->ne[axis] > INT64_MAX / 4 - ne[axis])
            return gtl__error(GTL_STATUS_INVALID_ARG, "concat: result too large");
        ne[axis] += src[k]->ne[axis];
    }
    gtl__tensor *dst;
    gtl_status st = gtl__tape_output(tape, s0->nd, ne, src, n, &dst);
    if (st != GTL_STATUS_OK)
        return st;
    int64_t outer, inner, off = 0;
    split_axis(dst, axis, &outer, &inner);
    int64_t row = dst->ne[axis] * inner;
    for (int32_t k = 0; k < n; k++) {
        int64_t run = src[k]->ne[axis] * inner;
        if (run > 0)
            for (int64_t o = 0; o < outer; o++)
                memcpy(dst->data + o * row + off, src[k]->data + o * run,
                       (size_t)run * sizeof(float));
        off += run;
    }
    if (gtl__requires_grad(dst)) {
        gtl__node *node;
        st = gtl__tape_record(tape, "concat", concat_backward, dst, src, n, &node);
        if (st != GTL_STATUS_OK)
            return st;
        node->ip[0] = axis;
    }
    *out = dst;
    return GTL_STATUS_OK;
}

/* ---- slice ---------------------------------------------------------------- */

/* src (O, L, I), dst (O, len, I) = src[:, start:start+len, :]. */
static gtl_status slice_backward(gtl__tape *tape, gtl__node *node)
{
    gtl__tensor *src = node->src[0], *dst = node->dst;
    int32_t axis = (int32_t)node->ip[0];
    int64_t start = node->ip[1], outer, inner;
    split_axis(src, axis, &outer, &inner);
    int64_t row = src->ne[axis] * inner, run = dst->ne[axis] * inner;
    float *g;
    gtl_status st = gtl__tape_grad(tape, src, &g);
    if (st != GTL_STATUS_OK)
        return st;
    for (int64_t o = 0; o < outer; o++) {
        float *gr = g + o * row + start * inner;
        const float *dr = dst->grad + o * run;
        for (int64_t i = 0; i < run; i++)
            gr[i] += dr[i];
    }
    return GTL_STATUS_OK;
}

gtl_status gtl__op_slice(gtl__tape *tape, gtl__tensor *src, int32_t axis, int64_t start,
                         int64_t len, gtl__tensor **out)
{
    *out = NULL;
    if (src == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "slice: NULL tensor");
    if (axis < 0 || axis >= src->nd)
        return gtl__error(GTL_STATUS_INVALID_ARG, "slice: axis %d out of range for %d dims",
                          (int)axis, (int)src->nd);
    if (start < 0 || len < 0 || start > src->ne[axis] - len)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "slice: [%lld, %lld + %lld) is outside axis %d of length %lld",
                          (long long)start, (long long)start, (long long)len, (int)axis,
                          (long long)src->ne[axis]);
    int64_t ne[GTL__MAX_DIMS];
    for (int32_t i = 0; i < src->nd; i++)
        ne[i] = src->ne[i];
    ne[axis] = len;
    gtl__tensor *dst;
    gtl_status st = gtl__tape_output(tape, src->nd, ne, &src, 1, &dst);
    if (st != GTL_STATUS_OK)
        return st;
    int64_t outer, inner;
    split_axis(src, axis, &outer, &inner);
    int64_t row = src->ne[axis] * inner, run = len * inner;
    if (run > 0)
        for (int64_t o = 0; o < outer; o++)
            memcpy(dst->data + o * run, src->data + o * row + start * inner,
                   (size_t)run * sizeof(float));
    if (gtl__requires_grad(dst)) {
        gtl__node *node;
        st = gtl__tape_record(tape, "slice", slice_backward, dst, &src, 1, &node);
        if (st != GTL_STATUS_OK)
            return st;
        node->ip[0] = axis;
        node->ip[1] = start;
    }
    *out = dst;
    return GTL_STATUS_OK;
}

/* ---- reshape -------------------------------------------------------------- */

/* The result shares src's data but has its own gradient buffer: the same
 * elements in the same order, so diff_src += diff_dst elementwise. */
static gtl_status reshape_backward(gtl__tape *tape, gtl__node *node)
{
    gtl__tensor *src = node->src[0], *dst = node->dst;
    float *g;
    gtl_status st = gtl__tape_grad(tape, src, &g);
    if (st != GTL_STATUS_OK)
        return st;
    for (int64_t i = 0; i < src->n; i++)
        g[i] += dst->grad[i];
    return GTL_STATUS_OK;
}

gtl_status gtl__op_reshape(gtl__tape *tape, gtl__tensor *src, int32_t nd, const int64_t *ne,
                           gtl__tensor **out)
{
    char s1[64];
    *out = NULL;
    if (src == NULL || (ne == NULL && nd > 0))
        return gtl__error(GTL_STATUS_INVALID_ARG, "reshape: NULL argument");
    if (nd < 0 || nd > GTL__MAX_DIMS)
        return gtl__error(GTL_STATUS_INVALID_ARG, "reshape: %d dims (want 0..%d)", (int)nd,
                          GTL__MAX_DIMS);
    gtl__tensor *dst = gtl__tape_alloc(tape, sizeof *dst);
    if (dst == NULL)
        return GTL_STATUS_OUT_OF_MEMORY;
    memset(dst, 0, sizeof *dst);
    if (!gtl__tensor_set_shape(dst, nd, ne) || dst->n != src->n) {
        /* The message lists the requested dims without trusting them. */
        char want[96];
        size_t off = 0;
        for (int32_t i = 0; i < nd && off < sizeof want; i++)
            off += (size_t)snprintf(want + off, sizeof want - off, i ? ", %lld" : "%lld",
                                    (long long)ne[i]);
        if (nd == 0)
            want[0] = '\0';
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "reshape: cannot view %s (%lld elements) as (%s)",
                          gtl__shape_str(src, s1, sizeof s1), (long long)src->n, want);
    }
    dst->data = src->data; /* an alias: no op writes into its inputs */
    if (gtl__tape_needs_node(tape, &src, 1))
        dst->flags |= GTL__TF_REQUIRES_GRAD;
    if (gtl__requires_grad(dst)) {
        gtl__node *node;
        gtl_status st = gtl__tape_record(tape, "reshape", reshape_backward, dst, &src, 1, &node);
        if (st != GTL_STATUS_OK)
            return st;
    }
    *out = dst;
    return GTL_STATUS_OK;
}

/* ---- transpose ------------------------------------------------------------ */

/* Swapping axes p < q views src as (A, P, B, Q, C) and dst as (A, Q, B, P, C):
 * dst[a, j, b, i, c] = src[a, i, b, j, c]. Runs of C elements are contiguous on
 * both sides. With add, the same walk accumulates diff_dst into diff_src. */
typedef struct tr_geom {
    int64_t a, p, b, q, c;
} tr_geom;

static tr_geom tr_geometry(const gtl__tensor *src, int32_t p, int32_t q)
{
    if (p == q) {
        /* swapping an axis with itself is a plain copy: one run of everything */
        tr_geom id = {1, 1, 1, 1, src->n};
        return id;
    }
    tr_geom g = {1, src->ne[p], 1, src->ne[q], 1};
    for (int32_t i = 0; i < p; i++)
        g.a *= src->ne[i];
    for (int32_t i = p + 1; i < q; i++)
        g.b *= src->ne[i];
    for (int32_t i = q + 1; i < src->nd; i++)
        g.c *= src->ne[i];
    return g;
}

/* to (A, Q, B, P, C) <- from (A, P, B, Q, C), copied or added. */
static void tr_walk(const tr_geom *g, const float *from, float *to, bool add)
{
    for (int64_t a = 0; a < g->a; a++)
        for (int64_t i = 0; i < g->p; i++)
            for (int64_t b = 0; b < g->b; b++)
                for (int64_t j = 0; j < g->q; j++) {
                    const float *f = from + (((a * g->p + i) * g->b + b) * g->q + j) * g->c;
                    float *t = to + (((a * g->q + j) * g->b + b) * g->p + i) * g->c;
                    if (add)
                        for (int64_t c = 0; c < g->c; c++)
                            t[c] += f[c];
                    else if (g->c == 1)
                        t[0] = f[0];
                    else
                        memcpy(t, f, (size_t)g->c * sizeof(float));
                }
}

static gtl_status transpose_backward(gtl__tape *tape, gtl__node *node)
{
    gtl__tensor *src = node->src[0], *dst = node->dst;
    float *g;
    gtl_status st = gtl__tape_grad(tape, src, &g);
    if (st != GTL_STATUS_OK)
        return st;
    /* dst is (A, Q, B, P, C): walking it with the roles of P and Q swapped
     * lands each gradient on its source element. */
    tr_geom geo = tr_geometry(dst, (int32_t)node->ip[0], (int32_t)node->ip[1]);
    tr_walk(&geo, dst->grad, g, true);
    return GTL_STATUS_OK;
}

gtl_status gtl__op_transpose(gtl__tape *tape, gtl__tensor *src, int32_t axis0, int32_t axis1,
                             gtl__tensor **out)
{
    *out = NULL;
    if (src == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "transpose: NULL tensor");
    if (axis0 < 0 || axis0 >= src->nd || axis1 < 0 || axis1 >= src->nd)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "transpose: axes %d and %d out of range for %d dims", (int)axis0,
                          (int)axis1, (int)src->nd);
    int32_t p = axis0 < axis1 ? axis0 : axis1, q = axis0 < axis1 ? axis1 : axis0;
    int64_t ne[GTL__MAX_DIMS];
    for (int32_t i = 0; i < src->nd; i++)
        ne[i] = src->ne[i];
    ne[p] = src->ne[q];
    ne[q] = src->ne[p];
    gtl__tensor *dst;
    gtl_status st = gtl__tape_output(tape, src->nd, ne, &src, 1, &dst);
    if (st != GTL_STATUS_OK)
        return st;
    tr_geom geo = tr_geometry(src, p, q);
    tr_walk(&geo, src->data, dst->data, false);
    if (gtl__requires_grad(dst)) {
        gtl__node *node;
        st = gtl__tape_record(tape, "transpose", transpose_backward, dst, &src, 1, &node);
        if (st != GTL_STATUS_OK)
            return st;
        node->ip[0] = p;
        node->ip[1] = q;
    }
    *out = dst;
    return GTL_STATUS_OK;
}
