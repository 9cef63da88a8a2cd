/* Elementwise arithmetic: add, sub, mul with a broadcast second operand,
 * scale (alpha x + beta), abs and exp.
 * Derivations: docs/autograd.md#elementwise.
 *
 * Broadcast model: a is viewed as (O, I) with I = b->n and O = a->n / I, and
 * b as (I), so b[i % I] pairs with a[i]. That one view covers the three
 * shapes ops.h allows: b of a's shape (O = 1), b of a's trailing dims (a bias
 * row: O = product of a's leading dims), and a one-element b (I = 1).
 *
 * add/sub/mul run forward on oneDNN's binary primitive when a has at least
 * BINARY_MIN_ELEMS elements (below that a primitive call costs more than the
 * loop) and on a plain loop otherwise. The primitive sees src0 and dst as
 * (O, I) and src1 as (1, I), which oneDNN treats as a per-channel (or, for
 * I = 1, scalar) broadcast and serves with its jit:uni binary kernel; it is
 * marked hot. Backward passes are loops: the broadcast gradient of b is the
 * column sum over the O rows. */
#include <math.h>
#include <string.h>

#include "dnnl/dnnl_ctx.h"
#include "ops/ops.h"

#define BINARY_MIN_ELEMS 4096

enum { BIN_ADD = 0, BIN_SUB = 1, BIN_MUL = 2 };

static const char *bin_name(int op)
{
    switch (op) {
    case BIN_ADD: return "add";
    case BIN_SUB: return "sub";
    default: return "mul";
    }
}

static dnnl_alg_kind_t bin_alg(int op)
{
    switch (op) {
    case BIN_ADD: return dnnl_binary_add;
    case BIN_SUB: return dnnl_binary_sub;
    default: return dnnl_binary_mul;
    }
}

/* The cached binary primitive for dst (O, I) = src0 (O, I) op src1 (1, I). */
static gtl_status binary_prim(gtl__ctx *ctx, int op, int64_t n_outer, int64_t n_inner,
                              gtl__prim **out)
{
    int64_t key[4] = {0x62696e, op, n_outer, n_inner}; /* "bin" */
    *out = gtl__prim_lookup(ctx, key, 4);
    if (*out != NULL)
        return GTL_STATUS_OK;
    dnnl_engine_t eng;
    gtl_status st = gtl__dnnl_engine(&eng);
    if (st != GTL_STATUS_OK)
        return st;
    int64_t d0[2] = {n_outer, n_inner}, d1[2] = {1, n_inner};
    dnnl_memory_desc_t md0, md1;
    st = gtl__md_plain(&md0, 2, d0, dnnl_f32);
    if (st == GTL_STATUS_OK)
        st = gtl__md_plain(&md1, 2, d1, dnnl_f32);
    if (st != GTL_STATUS_OK)
        return st;
    dnnl_binary_desc_t bd;
    dnnl_status_t s = dnnl_binary_desc_init(&bd, bin_alg(op), &md0, &md1, &md0);
    if (s != dnnl_success)
        return gtl__dnnl_error(s, "binary descriptor");
    dnnl_primitive_attr_t attr;
    st = gtl__dnnl_attr_create(&attr);
    if (st != GTL_STATUS_OK)
        return st;
    dnnl_primitive_desc_t pd = NULL;
    s = dnnl_primitive_desc_create(&pd, &bd, attr, eng, NULL);
    if (s != dnnl_success) {
        st = gtl__dnnl_error(s, "binary primitive descriptor");
        goto out_destroy_attr;
    }
    int args[3] = {DNNL_ARG_SRC_0, DNNL_ARG_SRC_1, DNNL_ARG_DST};
    st = gtl__prim_create(ctx, bin_name(op), GTL__PRIM_HOT, key, 4, pd, args, 3, out);
out_destroy_attr:
    dnnl_primitive_attr_destroy(attr);
    return st;
}

/* ---- add, sub, mul -------------------------------------------------------- */

/* a (O, I), b (I), dst (O, I). */
static gtl_status binary_backward(gtl__tape *tape, gtl__node *node)
{
    gtl__tensor *a = node->src[0], *b = node->src[1], *dst = node->dst;
    int op = (int)node->ip[0];
    int64_t n_inner = b->n, n_outer = n_inner > 0 ? a->n / n_inner : 0;
    const float *dg = dst->grad;
    float *g;
    gtl_status st;

    if (gtl__requires_grad(a)) {
        /* d/da: 1 for add and sub, b for mul */
        st = gtl__tape_grad(tape, a, &g);
        if (st != GTL_STATUS_OK)
            return st;
        for (int64_t o = 0; o < n_outer; o++) {
            float *gr = g + o * n_inner;
            const float *dr = dg + o * n_inner;
            if (op == BIN_MUL)
                for (int64_t i = 0; i < n_inner; i++)
                    gr[i] += dr[i] * b->data[i];
            else
                for (int64_t i = 0; i < n_inner; i++)
                    gr[i] += dr[i];
        }
    }
    if (gtl__requires_grad(b)) {
        /* d/db: 1, -1 or a, summed over the broadcast rows */
        st = gtl__tape_grad(tape, b, &g);
        if (st != GTL_STATUS_OK)
            return st;
        for (int64_t o = 0; o < n_outer; o++) {
            const float *dr = dg + o * n_inner;
            const float *ar = a->data + o * n_inner;
            if (op == BIN_MUL)
                for (int64_t i = 0; i < n_inner; i++)
                    g[i] += dr[i] * ar[i];
            else if (op == BIN_SUB)
                for (int64_t i = 0; i < n_inner; i++)
                    g[i] -= dr[i];
            else
                for (int64_t i = 0; i < n_inner; i++)
                    g[i] += dr[i];
        }
    }
    return GTL_STATUS_OK;
}

/* True when b broadcasts over a as ops.h allows: same shape, a's trailing
 * dims, or one element. */
static bool broadcastable(const gtl__tensor *a, const gtl__tensor *b)
{
    if (b->n == 1)
        return true;
    if (b->nd > a->nd)
        return false;
    for (int32_t i = 0; i < b->nd; i++)
        if (b->ne[i] != a->ne[a->nd - b->nd + i])
            return false;
    return true;
}

static gtl_status binary(gtl__tape *tape, gtl__tensor *a, gtl__tensor *b, int op,
                         gtl__tensor **out)
{
    const char *name = bin_name(op);
    char s1[64], s2[64];
    *out = NULL;
    if (a == NULL || b == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: NULL tensor", name);
    if (!broadcastable(a, b))
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "%s: b %s does not broadcast over a %s (want a's shape, a's "
                          "trailing dims, or one element)",
                          name, gtl__shape_str(b, s2, sizeof s2), gtl__shape_str(a, s1, sizeof s1));
    gtl__tensor *srcs[2] = {a, b};
    gtl__tensor *dst;
    gtl_status st = gtl__tape_output(tape, a->nd, a->ne, srcs, 2, &dst);
    if (st != GTL_STATUS_OK)
        return st;
    int64_t n_inner = b->n, n_outer = n_inner > 0 ? a->n / n_inner : 0;
    if (a->n >= BINARY_MIN_ELEMS) {
        gtl__prim *p;
        st = binary_prim(tape->ctx, op, n_outer, n_inner, &p);
        if (st != GTL_STATUS_OK)
            return st;
        void *ptrs[3] = {a->data, b->data, dst->data};
        st = gtl__prim_exec(tape->ctx, p, ptrs);
        if (st != GTL_STATUS_OK)
            return st;
    } else {
        for (int64_t o = 0; o < n_outer; o++) {
            const float *ar = a->data + o * n_inner;
            float *dr = dst->data + o * n_inner;
            if (op == BIN_ADD)
                for (int64_t i = 0; i < n_inner; i++)
                    dr[i] = ar[i] + b->data[i];
            else if (op == BIN_SUB)
                for (int64_t i = 0; i < n_inner; i++)
                    dr[i] = ar[i] - b->data[i];
            else
                for (int64_t i = 0; i < n_inner; i++)
                    dr[i] = ar[i] * b->data[i];
        }
    }
    if (gtl__requires_grad(dst)) {
        gtl__node *node;
        st = gtl__tape_record(tape, name, binary_backward, dst, srcs, 2, &node);
        if (st != GTL_STATUS_OK)
            return st;
        node->ip[0] = op;
    }
    *out = dst;
    return GTL_STATUS_OK;
}

gtl_status gtl__op_add(gtl__tape *tape, gtl__tensor *a, gtl__tensor *b, gtl__tensor **out)
{
    return binary(tape, a, b, BIN_ADD, out);
}

gtl_status gtl__op_sub(gtl__tape *tape, gtl__tensor *a, gtl__tensor *b, gtl__tensor **out)
{
    return binary(tape, a, b, BIN_SUB, out);
}

gtl_status gtl__op_mul(gtl__tape *tape, gtl__tensor *a, gtl__tensor *b, gtl__tensor **out)
{
    return binary(tape, a, b, BIN_MUL, out);
}

/* ---- unary: scale, abs, exp ---------------------------------------------- */

enum { UN_SCALE = 0, UN_ABS = 1, UN_EXP = 2 };

/* diff_src += diff_dst * f'(src): alpha, sign(src) (0 at 0), or exp(src) = dst. */
static gtl_status unary_backward(gtl__tape *tape, gtl__node *node)
{
    gtl__tensor *src = node->src[0], *dst = node->dst;
    const float *dg = dst->grad;
    float *g;
    gtl_status st = gtl__tape_grad(tape, src, &g);
    if (st != GTL_STATUS_OK)
        return st;
    switch ((int)node->ip[0]) {
    case UN_SCALE: {
        float alpha = node->fp[0];
        for (int64_t i = 0; i < src->n; i++)
            g[i] += alpha * dg[i];
        break;
    }
    case UN_ABS:
        for (int64_t i = 0; i < src->n; i++) {
            float x = src->data[i];
            g[i] += x > 0.0f ? dg[i] : (x < 0.0f ? -dg[i] : 0.0f);
        }
        break;
    default:
        for (int64_t i = 0; i < src->n; i++)
            g[i] += dg[i] * dst->data[i];
        break;
    }
    return GTL_STATUS_OK;
}

static gtl_status unary(gtl__tape *tape, gtl__tensor *src, int op, float alpha, float beta,
                        const char *name, gtl__tensor **out)
{
    *out = NULL;
    if (src == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: NULL tensor", name);
    gtl__tensor *dst;
    gtl_status st = gtl__tape_output(tape, src->nd, src->ne, &src, 1, &dst);
    if (st != GTL_STATUS_OK)
        return st;
    const float *x = src->data;
    float *y = dst->data;
    switch (op) {
    case UN_SCALE:
        for (int64_t i = 0; i < src->n; i++)
            y[i] = alpha * x[i] + beta;
        break;
    case UN_ABS:
        for (int64_t i = 0; i < src->n; i++)
            y[i] = fabsf(x[i]);
        break;
    default:
        for (int64_t i = 0; i < src->n; i++)
            y[i] = expf(x[i]);
        break;
    }
    if (gtl__requires_grad(dst)) {
        gtl__node *node;
        st = gtl__tape_record(tape, name, unary_backward, dst, &src, 1, &node);
        if (st != GTL_STATUS_OK)
            return st;
        node->ip[0] = op;
        node->fp[0] = alpha;
    }
    *out = dst;
    return GTL_STATUS_OK;
}

gtl_status gtl__op_scale(gtl__tape *tape, gtl__tensor *src, float alpha, float beta,
                         gtl__tensor **out)
{
    return unary(tape, src, UN_SCALE, alpha, beta, "scale", out);
}

gtl_status gtl__op_abs(gtl__tape *tape, gtl__tensor *src, gtl__tensor **out)
{
    return unary(tape, src, UN_ABS, 1.0f, 0.0f, "abs", out);
}

gtl_status gtl__op_exp(gtl__tape *tape, gtl__tensor *src, gtl__tensor **out)
{
    return unary(tape, src, UN_EXP, 1.0f, 0.0f, "exp", out);
}
