/* Reductions: sum and mean over one axis or over everything.
 * Derivations: docs/autograd.md#reductions. */
#include "ops/ops.h"

static void geometry(const gtl__tensor *src, int32_t axis, int64_t *outer, int64_t *len,
                     int64_t *inner)
{
    *outer = 1;
    *inner = 1;
    *len = src->ne[axis];
    for (int32_t i = 0; i < axis; i++)
        *outer *= src->ne[i];
    for (int32_t i = axis + 1; i < src->nd; i++)
        *inner *= src->ne[i];
}

static gtl_status reduce_backward(gtl__tape *tape, gtl__node *node)
{
    gtl__tensor *src = node->src[0], *dst = node->dst;
    float scale = node->fp[0];
    float *g;
    gtl_status st = gtl__tape_grad(tape, src, &g);
    if (st != GTL_STATUS_OK)
        return st;
    if (node->ip[0] < 0) {
        float v = dst->grad[0] * scale;
        for (int64_t i = 0; i < src->n; i++)
            g[i] += v;
        return GTL_STATUS_OK;
    }
    int64_t outer, len, inner;
    geometry(src, (int32_t)node->ip[0], &outer, &len, &inner);
    for (int64_t o = 0; o < outer; o++)
        for (int64_t l = 0; l < len; l++) {
            float *gr = g + (o * len + l) * inner;
            const float *dg = dst->grad + o * inner;
            for (int64_t i = 0; i < inner; i++)
                gr[i] += dg[i] * scale;
        }
    return GTL_STATUS_OK;
}

static gtl_status reduce(gtl__tape *tape, gtl__tensor *src, int32_t axis, bool keepdim,
                         bool mean, gtl__tensor **out)
{
    const char *name = mean ? "mean" : "sum";
    *out = NULL;
    if (src == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: NULL tensor", name);
    if (axis < -1 || axis >= src->nd)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: axis %d out of range for %d dims", name,
                          (int)axis, (int)src->nd);
    int64_t ne[GTL__MAX_DIMS] = {0};
    int32_t nd = 0;
    float scale = 1.0f;
    if (axis < 0) {
        if (mean && src->n == 0)
            return gtl__error(GTL_STATUS_INVALID_ARG, "mean: empty tensor");
        scale = mean ? 1.0f / (float)src->n : 1.0f;
        if (keepdim)
            for (nd = 0; nd < src->nd; nd++)
                ne[nd] = 1;
    } else {
        if (mean && src->ne[axis] == 0)
            return gtl__error(GTL_STATUS_INVALID_ARG, "mean: empty axis");
        scale = mean ? 1.0f / (float)src->ne[axis] : 1.0f;
        for (int32_t i = 0; i < src->nd; i++) {
            if (i == axis && !keepdim)
                continue;
            ne[nd++] = i == axis ? 1 : src->ne[i];
        }
    }
    gtl__tensor *dst;
    gtl_status st = gtl__tape_output(tape, nd, ne, &src, 1, &dst);
    if (st != GTL_STATUS_OK)
        return st;
    /* Both paths accumulate in double, so a long axis is as accurate as the
     * whole-tensor sum, and divide by the count in double for the mean. */
    if (axis < 0) {
        double s = 0.0;
        for (int64_t i = 0; i < src->n; i++)
            s += src->data[i];
        dst->data[0] = (float)(mean ? s / (double)src->n : s);
    } else {
        int64_t outer, len, inner;
        geometry(src, axis, &outer, &len, &inner);
        double *acc = gtl__tape_alloc(tape, (size_t)(inner > 0 ? inner : 1) * sizeof(double));
        if (acc == NULL)
            return GTL_STATUS_OUT_OF_MEMORY;
        for (int64_t o = 0; o < outer; o++) {
            for (int64_t i = 0; i < inner; i++)
                acc[i] = 0.0;
            for (int64_t l = 0; l < len; l++) {
                const float *s = src->data + (o * len + l) * inner;
                for (int64_t i = 0; i < inner; i++)
                    acc[i] += s[i];
            }
            float *d = dst->data + o * inner;
            for (int64_t i = 0; i < inner; i++)
                d[i] = (float)(mean ? acc[i] / (double)len : acc[i]);
        }
    }
    if (gtl__requires_grad(dst)) {
        gtl__node *node;
        st = gtl__tape_record(tape, name, reduce_backward, dst, &src, 1, &node);
        if (st != GTL_STATUS_OK)
            return st;
        node->ip[0] = axis;
        node->fp[0] = scale;
    }
    *out = dst;
    return GTL_STATUS_OK;
}

gtl_status gtl__op_sum(gtl__tape *tape, gtl__tensor *src, int32_t axis, bool keepdim,
                       gtl__tensor **out)
{
    return reduce(tape, src, axis, keepdim, false, out);
}

gtl_status gtl__op_mean(gtl__tape *tape, gtl__tensor *src, int32_t axis, bool keepdim,
                        gtl__tensor **out)
{
    return reduce(tape, src, axis, keepdim, true, out);
}
