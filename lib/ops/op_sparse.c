/* Sparsemax over the last dim: the Euclidean projection of each row onto the
 * probability simplex (Martins & Astudillo 2016).
 * src, dst: (..., D), rows = n / D.
 * Derivations: docs/autograd.md#sparsemax. */
#include <string.h>

#include "ops/ops.h"

/* Sorts v[0..n) in descending order in place. Insertion sort for the short
 * rows sparsemax usually sees (a gate over a few domains); heapsort above
 * that, so there is no recursion and no allocation (libc qsort may allocate). */
static void sort_desc(double *v, int64_t n)
{
    if (n <= 32) {
        for (int64_t i = 1; i < n; i++) {
            double x = v[i];
            int64_t j = i;
            for (; j > 0 && v[j - 1] < x; j--)
                v[j] = v[j - 1];
            v[j] = x;
        }
        return;
    }
    /* Min-heap, so repeatedly moving the root to the end leaves v descending. */
    for (int64_t start = n / 2 - 1;; start--) {
        int64_t root = start;
        for (int64_t child; (child = 2 * root + 1) < n; root = child) {
            if (child + 1 < n && v[child + 1] < v[child])
                child++;
            if (!(v[child] < v[root]))
                break;
            double t = v[root];
            v[root] = v[child];
            v[child] = t;
        }
        if (start == 0)
            break;
    }
    for (int64_t end = n - 1; end > 0; end--) {
        double t = v[0];
        v[0] = v[end];
        v[end] = t;
        int64_t root = 0;
        for (int64_t child; (child = 2 * root + 1) < end; root = child) {
            if (child + 1 < end && v[child + 1] < v[child])
                child++;
            if (!(v[child] < v[root]))
                break;
            t = v[root];
            v[root] = v[child];
            v[child] = t;
        }
    }
}

/* One row: dst = max(src - tau, 0) with sum(dst) = 1. Works on the row shifted
 * by its maximum (sparsemax is shift invariant), in double: then the first
 * sorted element is 0, k = 1 always satisfies 1 + k y_(k) > S_k, and huge
 * inputs neither lose the 1 nor divide by k = 0. tmp: d doubles. */
static void sparsemax_row(const float *src, float *dst, int64_t d, double *tmp)
{
    double mx = src[0];
    for (int64_t i = 1; i < d; i++)
        if (src[i] > mx)
            mx = src[i];
    for (int64_t i = 0; i < d; i++)
        tmp[i] = (double)src[i] - mx;
    sort_desc(tmp, d);
    /* Support size k(z) = max{k : 1 + k y_(k) > sum_{j<=k} y_(j)}. */
    double cs = 0.0, cs_k = tmp[0];
    int64_t k = 1;
    for (int64_t j = 0; j < d; j++) {
        cs += tmp[j];
        if (1.0 + (double)(j + 1) * tmp[j] > cs) {
            k = j + 1;
            cs_k = cs;
        }
    }
    double tau = (cs_k - 1.0) / (double)k;
    for (int64_t i = 0; i < d; i++) {
        double p = ((double)src[i] - mx) - tau;
        dst[i] = p > 0.0 ? (float)p : 0.0f;
    }
}

/* With S = {i : p_i > 0}: dz_i += [i in S] (g_i - mean_{j in S} g_j). The
 * support is read back from the saved output. */
static gtl_status sparsemax_backward(gtl__tape *tape, gtl__node *node)
{
    gtl__tensor *src = node->src[0], *dst = node->dst;
    int64_t d = node->ip[0];
    int64_t rows = d > 0 ? src->n / d : 0;
    float *gz;
    gtl_status st = gtl__tape_grad(tape, src, &gz);
    if (st != GTL_STATUS_OK)
        return st;
    for (int64_t r = 0; r < rows; r++) {
        const float *p = dst->data + r * d;
        const float *g = dst->grad + r * d;
        float *dz = gz + r * d;
        double sum = 0.0;
        int64_t k = 0;
        for (int64_t i = 0; i < d; i++)
            if (p[i] > 0.0f) {
                sum += g[i];
                k++;
            }
        if (k == 0)
            continue;
        double mean = sum / (double)k;
        for (int64_t i = 0; i < d; i++)
            if (p[i] > 0.0f)
                dz[i] += (float)((double)g[i] - mean);
    }
    return GTL_STATUS_OK;
}

gtl_status gtl__op_sparsemax(gtl__tape *tape, gtl__tensor *src, gtl__tensor **out)
{
    *out = NULL;
    if (tape == NULL || src == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "sparsemax: NULL %s",
                          tape == NULL ? "tape" : "tensor");
    if (src->nd < 1)
        return gtl__error(GTL_STATUS_INVALID_ARG, "sparsemax: needs at least 1 dim (got 0)");
    int64_t d = src->ne[src->nd - 1];
    if (d < 1)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "sparsemax: the last dim must be >= 1 (the simplex of an empty row "
                          "is empty)");
    int64_t rows = src->n / d;
    gtl__tensor *dst;
    gtl_status st = gtl__tape_output(tape, src->nd, src->ne, &src, 1, &dst);
    if (st != GTL_STATUS_OK)
        return st;
    if (rows > 0) {
        /* One scratch row for the whole call: no allocation per row. */
        double *tmp = gtl__tape_alloc(tape, (size_t)d * sizeof(double));
        if (tmp == NULL)
            return GTL_STATUS_OUT_OF_MEMORY;
        for (int64_t r = 0; r < rows; r++)
            sparsemax_row(src->data + r * d, dst->data + r * d, d, tmp);
    }
    if (gtl__requires_grad(dst)) {
        gtl__node *node;
        st = gtl__tape_record(tape, "sparsemax", sparsemax_backward, dst, &src, 1, &node);
        if (st != GTL_STATUS_OK)
            return st;
        node->ip[0] = d;
    }
    *out = dst;
    return GTL_STATUS_OK;
}
