/* Distributions and reconstruction: the reparameterised Gaussian sample, the
 * closed-form KL to N(0, I), and the mean squared error.
 * mu, logvar, z: (..., D); rows = n / D. kl_normal and mse return a 0-d scalar.
 * Derivations: docs/autograd.md#distributions. */
#include <math.h>
#include <string.h>

#include "ops/ops.h"

/* ---- reparam: z = mu + exp(logvar / 2) * eps ----------------------------- */

/* dmu += g; dlogvar += g * eps * exp(logvar / 2) / 2. eps is the saved draw. */
static gtl_status reparam_backward(gtl__tape *tape, gtl__node *node)
{
    gtl__tensor *mu = node->src[0], *logvar = node->src[1], *dst = node->dst;
    const float *eps = node->saved;
    const float *g = dst->grad;
    gtl_status st;
    if (gtl__requires_grad(mu)) {
        float *gm;
        st = gtl__tape_grad(tape, mu, &gm);
        if (st != GTL_STATUS_OK)
            return st;
        for (int64_t i = 0; i < dst->n; i++)
            gm[i] += g[i];
    }
    if (gtl__requires_grad(logvar)) {
        float *gl;
        st = gtl__tape_grad(tape, logvar, &gl);
        if (st != GTL_STATUS_OK)
            return st;
        for (int64_t i = 0; i < dst->n; i++)
            gl[i] += 0.5f * g[i] * eps[i] * expf(0.5f * logvar->data[i]);
    }
    return GTL_STATUS_OK;
}

gtl_status gtl__op_reparam(gtl__tape *tape, gtl__tensor *mu, gtl__tensor *logvar,
                           const float *eps_in, gtl__tensor **out)
{
    *out = NULL;
    if (tape == NULL || mu == NULL || logvar == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "reparam: NULL %s",
                          tape == NULL ? "tape" : "tensor");
    if (!gtl__same_shape(mu, logvar)) {
        char a[64], b[64];
        return gtl__error(GTL_STATUS_INVALID_ARG, "reparam: mu %s and logvar %s differ",
                          gtl__shape_str(mu, a, sizeof a), gtl__shape_str(logvar, b, sizeof b));
    }
    if (eps_in == NULL && tape->rng == NULL && mu->n > 0)
        return gtl__error(GTL_STATUS_BAD_STATE, "reparam: no eps given and the tape has no RNG");
    gtl__tensor *src[2] = {mu, logvar};
    gtl__tensor *dst;
    gtl_status st = gtl__tape_output(tape, mu->nd, mu->ne, src, 2, &dst);
    if (st != GTL_STATUS_OK)
        return st;
    bool node = gtl__requires_grad(dst);
    /* The noise is kept (arena copy, even of eps_in, which the caller may
     * reuse) only when backward will need it. */
    float *eps = NULL;
    if (node) {
        eps = gtl__tape_alloc(tape, (size_t)(mu->n ? mu->n : 1) * sizeof(float));
        if (eps == NULL)
            return GTL_STATUS_OUT_OF_MEMORY;
    }
    for (int64_t i = 0; i < mu->n; i++) {
        float e = eps_in != NULL ? eps_in[i] : gtl__rng_normal(tape->rng);
        if (eps != NULL)
            eps[i] = e;
        dst->data[i] = mu->data[i] + expf(0.5f * logvar->data[i]) * e;
    }
    if (node) {
        gtl__node *nd;
        st = gtl__tape_record(tape, "reparam", reparam_backward, dst, src, 2, &nd);
        if (st != GTL_STATUS_OK)
            return st;
        nd->saved = eps;
    }
    *out = dst;
    return GTL_STATUS_OK;
}

/* ---- kl_normal ------------------------------------------------------------ */

/* L = (1/R) sum -0.5 (1 + lv - mu^2 - e^lv):
 * dmu += g mu / R; dlv += g (e^lv - 1) / (2R). ip[0] = R. */
static gtl_status kl_backward(gtl__tape *tape, gtl__node *node)
{
    gtl__tensor *mu = node->src[0], *logvar = node->src[1];
    double s = (double)node->dst->grad[0] / (double)node->ip[0];
    gtl_status st;
    if (gtl__requires_grad(mu)) {
        float *gm;
        st = gtl__tape_grad(tape, mu, &gm);
        if (st != GTL_STATUS_OK)
            return st;
        for (int64_t i = 0; i < mu->n; i++)
            gm[i] += (float)(s * mu->data[i]);
    }
    if (gtl__requires_grad(logvar)) {
        float *gl;
        st = gtl__tape_grad(tape, logvar, &gl);
        if (st != GTL_STATUS_OK)
            return st;
        for (int64_t i = 0; i < logvar->n; i++)
            gl[i] += (float)(0.5 * s * expm1((double)logvar->data[i]));
    }
    return GTL_STATUS_OK;
}

gtl_status gtl__op_kl_normal(gtl__tape *tape, gtl__tensor *mu, gtl__tensor *logvar,
                             gtl__tensor **out)
{
    *out = NULL;
    if (tape == NULL || mu == NULL || logvar == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "kl_normal: NULL %s",
                          tape == NULL ? "tape" : "tensor");
    if (!gtl__same_shape(mu, logvar)) {
        char a[64], b[64];
        return gtl__error(GTL_STATUS_INVALID_ARG, "kl_normal: mu %s and logvar %s differ",
                          gtl__shape_str(mu, a, sizeof a), gtl__shape_str(logvar, b, sizeof b));
    }
    if (mu->nd < 1 || mu->n == 0)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "kl_normal: needs a non-empty tensor with at least 1 dim");
    int64_t rows = mu->n / mu->ne[mu->nd - 1];
    gtl__tensor *src[2] = {mu, logvar};
    gtl__tensor *dst;
    gtl_status st = gtl__tape_output(tape, 0, NULL, src, 2, &dst);
    if (st != GTL_STATUS_OK)
        return st;
    /* -0.5 (1 + lv - mu^2 - e^lv) = 0.5 (mu^2 + (e^lv - 1) - lv); expm1 keeps
     * the small-lv terms that 1 + lv - e^lv would cancel away. */
    double sum = 0.0;
    for (int64_t i = 0; i < mu->n; i++) {
        double m = mu->data[i], lv = logvar->data[i];
        sum += 0.5 * (m * m + (expm1(lv) - lv));
    }
    dst->data[0] = (float)(sum / (double)rows);
    if (gtl__requires_grad(dst)) {
        gtl__node *node;
        st = gtl__tape_record(tape, "kl_normal", kl_backward, dst, src, 2, &node);
        if (st != GTL_STATUS_OK)
            return st;
        node->ip[0] = rows;
    }
    *out = dst;
    return GTL_STATUS_OK;
}

/* ---- mse ------------------------------------------------------------------ */

/* L = (1/n) sum (a - b)^2: da += 2 g (a - b) / n; db -= the same. When a and b
 * are the same tensor both terms land in one buffer and cancel, as they must. */
static gtl_status mse_backward(gtl__tape *tape, gtl__node *node)
{
    gtl__tensor *a = node->src[0], *b = node->src[1];
    float s = (float)(2.0 * (double)node->dst->grad[0] / (double)a->n);
    gtl_status st;
    if (gtl__requires_grad(a)) {
        float *ga;
        st = gtl__tape_grad(tape, a, &ga);
        if (st != GTL_STATUS_OK)
            return st;
        for (int64_t i = 0; i < a->n; i++)
            ga[i] += s * (a->data[i] - b->data[i]);
    }
    if (gtl__requires_grad(b)) {
        float *gb;
        st = gtl__tape_grad(tape, b, &gb);
        if (st != GTL_STATUS_OK)
            return st;
        for (int64_t i = 0; i < b->n; i++)
            gb[i] -= s * (a->data[i] - b->data[i]);
    }
    return GTL_STATUS_OK;
}

gtl_status gtl__op_mse(gtl__tape *tape, gtl__tensor *a, gtl__tensor *b, gtl__tensor **out)
{
    *out = NULL;
    if (tape == NULL || a == NULL || b == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "mse: NULL %s",
                          tape == NULL ? "tape" : "tensor");
    if (!gtl__same_shape(a, b)) {
        char sa[64], sb[64];
        return gtl__error(GTL_STATUS_INVALID_ARG, "mse: shapes %s and %s differ",
                          gtl__shape_str(a, sa, sizeof sa), gtl__shape_str(b, sb, sizeof sb));
    }
    if (a->n == 0)
        return gtl__error(GTL_STATUS_INVALID_ARG, "mse: empty tensors (the mean is undefined)");
    gtl__tensor *src[2] = {a, b};
    gtl__tensor *dst;
    gtl_status st = gtl__tape_output(tape, 0, NULL, src, 2, &dst);
    if (st != GTL_STATUS_OK)
        return st;
    double sum = 0.0;
    for (int64_t i = 0; i < a->n; i++) {
        double d = (double)a->data[i] - (double)b->data[i];
        sum += d * d;
    }
    dst->data[0] = (float)(sum / (double)a->n);
    if (gtl__requires_grad(dst)) {
        gtl__node *node;
        st = gtl__tape_record(tape, "mse", mse_backward, dst, src, 2, &node);
        if (st != GTL_STATUS_OK)
            return st;
    }
    *out = dst;
    return GTL_STATUS_OK;
}
