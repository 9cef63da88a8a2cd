/* nn/vit: the CLIP-layout ViT.
 * - presets, parameter names (with and without a prefix), bad arguments;
 * - the tape forward against a naive double-precision ViT written here;
 * - finite differences through the whole tiny model (input, embeddings,
 *   LayerNorms, attention, MLP, head) for QuickGELU and GELU;
 * - freezing the first k blocks: no nodes for them, same gradients for the rest;
 * - the inference path against the tape path (B = 1 and 3, every feature
 *   selection), no allocation on repeated calls, refresh after a weight change,
 *   the oneDNN kernels picked (printed; the fixture fails on hot ref: kernels);
 * - bf16: on a CPU without native bf16 the request falls back to fp32 and a
 *   warning is logged; the forced bf16 path is exercised where oneDNN allows. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gtl/runtime.h"
#include "gtl_test.h"
#include "nn/vit.h"

/* ---- a model for tests ------------------------------------------------------ */

typedef struct tmodel {
    gtl__paramset ps;
    gtl__vit vit;
} tmodel;

/* CLIP initialisation, then every LayerNorm and bias perturbed (so a dropped
 * one shows). */
static void tmodel_make(gt_env *env, tmodel *m, const gtl__vit_config *cfg, const char *prefix)
{
    gtl__paramset_init(&m->ps);
    assert_int_equal(gtl__vit_init(&m->vit, cfg, &m->ps, prefix), GTL_STATUS_OK);
    assert_int_equal(gtl__paramset_finalize(&m->ps), GTL_STATUS_OK);
    gtl__rng rng;
    gtl__rng_seed(&rng, env->seed ^ 0x7617);
    assert_int_equal(gtl__vit_init_weights(&m->vit, &rng), GTL_STATUS_OK);
    for (int64_t i = 0; i < m->ps.n_params; i++) {
        gtl__tensor *t = gtl__paramset_get(&m->ps, i);
        if (strstr(m->ps.names[i], "ln_") != NULL || strstr(m->ps.names[i], "bias") != NULL)
            for (int64_t j = 0; j < t->n; j++)
                t->data[j] += 0.2f * (gtl__rng_uniform(&env->data) - 0.5f);
    }
}

static void tmodel_free(tmodel *m)
{
    gtl__vit_fini(&m->vit);
    gtl__paramset_fini(&m->ps);
}

static const float *pdata(tmodel *m, const char *name)
{
    int64_t i = gtl__paramset_find(&m->ps, name);
    assert_true(i >= 0);
    return gtl__paramset_get(&m->ps, i)->data;
}

/* ---- naive reference (double) --------------------------------------------- */

static void ref_ln(const double *x, double *y, int64_t rows, int64_t c, const float *g,
                   const float *b)
{
    for (int64_t r = 0; r < rows; r++) {
        const double *xr = x + r * c;
        double mu = 0.0, var = 0.0;
        for (int64_t i = 0; i < c; i++)
            mu += xr[i];
        mu /= (double)c;
        for (int64_t i = 0; i < c; i++)
            var += (xr[i] - mu) * (xr[i] - mu);
        var /= (double)c;
        double inv = 1.0 / sqrt(var + 1e-5);
        for (int64_t i = 0; i < c; i++)
            y[r * c + i] = (xr[i] - mu) * inv * g[i] + b[i];
    }
}

/* y (rows, n) = x (rows, k) @ w(n, k)^T + b */
static void ref_linear(const double *x, double *y, int64_t rows, int64_t k, int64_t n,
                       const float *w, const float *b)
{
    for (int64_t r = 0; r < rows; r++)
        for (int64_t j = 0; j < n; j++) {
            double s = b ? b[j] : 0.0;
            for (int64_t i = 0; i < k; i++)
                s += x[r * k + i] * w[j * k + i];
            y[r * n + j] = s;
        }
}

static void ref_forward(tmodel *m, const float *img, int64_t nb, double *feat)
{
    const gtl__vit_config *c = &m->vit.cfg;
    int64_t w = c->width, t = gtl__vit_tokens(c), p = c->patch, s = c->image_size, g = s / p;
    int64_t hid = c->mlp_ratio * w, hd = w / c->heads, rows = nb * t;
    double *x = calloc((size_t)(rows * w), sizeof(double));
    double *h = calloc((size_t)(rows * w), sizeof(double));
    double *qkv = calloc((size_t)(rows * 3 * w), sizeof(double));
    double *a = calloc((size_t)(rows * w), sizeof(double));
    double *f = calloc((size_t)(rows * hid), sizeof(double));
    double *sc = calloc((size_t)t, sizeof(double));
    const float *cw = pdata(m, "conv1.weight"), *ce = pdata(m, "class_embedding");
    const float *pe = pdata(m, "positional_embedding");
    char nm[128];

    for (int64_t b = 0; b < nb; b++)
        for (int64_t tok = 0; tok < t; tok++)
            for (int64_t o = 0; o < w; o++) {
                double v;
                if (tok == 0) {
                    v = ce[o];
                } else {
                    int64_t gy = (tok - 1) / g, gx = (tok - 1) % g;
                    v = 0.0;
                    for (int64_t ch = 0; ch < 3; ch++)
                        for (int64_t py = 0; py < p; py++)
                            for (int64_t px = 0; px < p; px++)
                                v += (double)cw[((o * 3 + ch) * p + py) * p + px] *
                                     img[((b * 3 + ch) * s + gy * p + py) * s + gx * p + px];
                }
                h[(b * t + tok) * w + o] = v + pe[tok * w + o];
            }
    ref_ln(h, x, rows, w, pdata(m, "ln_pre.weight"), pdata(m, "ln_pre.bias"));
    for (int64_t l = 0; l < c->layers; l++) {
#define BP(suffix) (snprintf(nm, sizeof nm, "transformer.resblocks.%lld.%s", (long long)l, \
                             suffix), pdata(m, nm))
        ref_ln(x, h, rows, w, BP("ln_1.weight"), BP("ln_1.bias"));
        ref_linear(h, qkv, rows, w, 3 * w, BP("attn.in_proj_weight"), BP("attn.in_proj_bias"));
        for (int64_t b = 0; b < nb; b++)
            for (int64_t hh = 0; hh < c->heads; hh++)
                for (int64_t i = 0; i < t; i++) {
                    const double *q = qkv + (b * t + i) * 3 * w + hh * hd;
                    double mx = -INFINITY, sum = 0.0;
                    for (int64_t j = 0; j < t; j++) {
                        const double *k = qkv + (b * t + j) * 3 * w + w + hh * hd;
                        double v = 0.0;
                        for (int64_t e = 0; e < hd; e++)
                            v += q[e] * k[e];
                        sc[j] = v / sqrt((double)hd);
                        mx = fmax(mx, sc[j]);
                    }
                    for (int64_t j = 0; j < t; j++) {
                        sc[j] = exp(sc[j] - mx);
                        sum += sc[j];
                    }
                    for (int64_t e = 0; e < hd; e++) {
                        double o = 0.0;
                        for (int64_t j = 0; j < t; j++)
                            o += sc[j] / sum * qkv[(b * t + j) * 3 * w + 2 * w + hh * hd + e];
                        a[(b * t + i) * w + hh * hd + e] = o;
                    }
                }
        ref_linear(a, h, rows, w, w, BP("attn.out_proj.weight"), BP("attn.out_proj.bias"));
        for (int64_t i = 0; i < rows * w; i++)
            x[i] += h[i];
        ref_ln(x, h, rows, w, BP("ln_2.weight"), BP("ln_2.bias"));
        ref_linear(h, f, rows, w, hid, BP("mlp.c_fc.weight"), BP("mlp.c_fc.bias"));
        for (int64_t i = 0; i < rows * hid; i++)
            f[i] = c->act == GTL__ACT_GELU ? 0.5 * f[i] * (1.0 + erf(f[i] / sqrt(2.0)))
                                            : f[i] / (1.0 + exp(-1.702 * f[i]));
        ref_linear(f, h, rows, hid, w, BP("mlp.c_proj.weight"), BP("mlp.c_proj.bias"));
        for (int64_t i = 0; i < rows * w; i++)
            x[i] += h[i];
#undef BP
    }
    const float *pj = pdata(m, "proj");
    int64_t fd = w + c->out_dim;
    for (int64_t b = 0; b < nb; b++) {
        double *cls = feat + b * fd;
        ref_ln(x + b * t * w, cls, 1, w, pdata(m, "ln_post.weight"), pdata(m, "ln_post.bias"));
        for (int64_t j = 0; j < c->out_dim; j++) {
            double v = 0.0;
            for (int64_t i = 0; i < w; i++)
                v += cls[i] * pj[i * c->out_dim + j];
            cls[w + j] = v;
        }
    }
    free(x);
    free(h);
    free(qkv);
    free(a);
    free(f);
    free(sc);
}

static float *random_images(gt_env *env, const gtl__vit_config *c, int64_t nb)
{
    int64_t n = nb * 3 * c->image_size * c->image_size;
    float *img = malloc((size_t)n * sizeof(float));
    gt_fill(env, img, n, -1.5f, 1.5f);
    return img;
}

/* Tape forward in no-grad mode into a malloc'd copy. */
static float *tape_features(gt_env *env, tmodel *m, const float *img, int64_t nb, int which)
{
    const gtl__vit_config *c = &m->vit.cfg;
    int64_t ne[4] = {nb, 3, c->image_size, c->image_size};
    gtl__tape_reset(env->tape);
    env->tape->grad_enabled = false;
    gtl__tensor *x, *y;
    assert_int_equal(gtl__tape_leaf(env->tape, 4, ne, img, false, &x), GTL_STATUS_OK);
    gtl_status st = gtl__vit_forward(&m->vit, env->tape, x, which, &y);
    if (st != GTL_STATUS_OK)
        fail_msg("vit forward: %s", gtl_last_error());
    assert_int_equal(y->nd, 2);
    assert_int_equal(y->ne[0], nb);
    assert_int_equal(y->ne[1], gtl__vit_feature_dim(c, which));
    assert_int_equal(env->tape->n_nodes, 0);
    float *out = malloc((size_t)y->n * sizeof(float));
    memcpy(out, y->data, (size_t)y->n * sizeof(float));
    env->tape->grad_enabled = true;
    gtl__tape_reset(env->tape);
    return out;
}

/* ---- tests ------------------------------------------------------------------ */

static void test_presets_and_names(void **state)
{
    gt_env *env = *state;
    gtl__vit_config c;
    assert_int_equal(gtl__vit_preset("ViT-B/16", &c), GTL_STATUS_OK);
    assert_int_equal(c.image_size, 224);
    assert_int_equal(c.patch, 16);
    assert_int_equal(c.width, 768);
    assert_int_equal(c.layers, 12);
    assert_int_equal(c.heads, 12);
    assert_int_equal(c.mlp_ratio, 4);
    assert_int_equal(c.out_dim, 512);
    assert_int_equal(c.act, GTL__ACT_QUICK_GELU);
    assert_int_equal(gtl__vit_tokens(&c), 197);
    assert_int_equal(gtl__vit_feature_dim(&c, GTL__VIT_FEAT_BOTH), 1280);
    assert_int_equal(gtl__vit_feature_dim(&c, GTL__VIT_FEAT_CLS), 768);
    assert_int_equal(gtl__vit_feature_dim(&c, GTL__VIT_FEAT_PROJ), 512);
    assert_int_equal(gtl__vit_feature_dim(&c, 0), 0);
    assert_int_equal(gtl__vit_preset("ViT-B/32", &c), GTL_STATUS_OK);
    assert_int_equal(gtl__vit_tokens(&c), 50);
    assert_int_equal(gtl__vit_preset("ViT-L/14", &c), GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "ViT-L/14"));

    /* Names as OpenAI's checkpoint has them (under "visual."). */
    assert_int_equal(gtl__vit_preset("tiny", &c), GTL_STATUS_OK);
    gtl__paramset ps;
    gtl__vit vit;
    gtl__paramset_init(&ps);
    assert_int_equal(gtl__vit_init(&vit, &c, &ps, "visual."), GTL_STATUS_OK);
    const char *names[] = {"visual.conv1.weight", "visual.class_embedding",
                           "visual.positional_embedding", "visual.ln_pre.weight",
                           "visual.ln_pre.bias",
                           "visual.transformer.resblocks.1.ln_1.weight",
                           "visual.transformer.resblocks.1.attn.in_proj_weight",
                           "visual.transformer.resblocks.1.attn.in_proj_bias",
                           "visual.transformer.resblocks.1.attn.out_proj.weight",
                           "visual.transformer.resblocks.1.attn.out_proj.bias",
                           "visual.transformer.resblocks.1.ln_2.bias",
                           "visual.transformer.resblocks.1.mlp.c_fc.weight",
                           "visual.transformer.resblocks.1.mlp.c_fc.bias",
                           "visual.transformer.resblocks.1.mlp.c_proj.weight",
                           "visual.transformer.resblocks.1.mlp.c_proj.bias",
                           "visual.ln_post.weight", "visual.ln_post.bias", "visual.proj"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (gtl__paramset_find(&ps, names[i]) < 0)
            fail_msg("parameter %s missing", names[i]);
    /* 5 stem + 12 per block + 3 head. */
    assert_int_equal(ps.n_params, 5 + 12 * c.layers + 3);
    gtl__tensor *t = gtl__paramset_get(&ps, gtl__paramset_find(&ps, "visual.proj"));
    assert_int_equal(t->ne[0], c.width);
    assert_int_equal(t->ne[1], c.out_dim);
    t = gtl__paramset_get(&ps, gtl__paramset_find(&ps, "visual.conv1.weight"));
    assert_int_equal(t->nd, 4);
    assert_int_equal(t->ne[1], 3);
    gtl__vit_fini(&vit);
    gtl__paramset_fini(&ps);
    (void)env;
}

static void test_bad_args(void **state)
{
    gt_env *env = *state;
    gtl__vit_config c;
    assert_int_equal(gtl__vit_preset("tiny", &c), GTL_STATUS_OK);
    gtl__paramset ps;
    gtl__vit vit;
    gtl__paramset_init(&ps);
    gtl__vit_config bad = c;
    bad.heads = 3;
    assert_int_equal(gtl__vit_init(&vit, &bad, &ps, NULL), GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "heads"));
    bad = c;
    bad.patch = 3;
    assert_int_equal(gtl__vit_init(&vit, &bad, &ps, NULL), GTL_STATUS_INVALID_ARG);
    bad = c;
    bad.act = GTL__ACT_RELU;
    assert_int_equal(gtl__vit_init(&vit, &bad, &ps, NULL), GTL_STATUS_INVALID_ARG);
    assert_int_equal(ps.n_params, 0);
    gtl__paramset_fini(&ps);

    tmodel m;
    tmodel_make(env, &m, &c, NULL);
    int64_t ne_bad[4] = {1, 3, c.image_size, c.image_size + 4};
    gtl__tensor *x = gt_leaf(env, 4, ne_bad, NULL, true), *y = (gtl__tensor *)1;
    int64_t n0 = env->tape->n_nodes;
    assert_int_equal(gtl__vit_forward(&m.vit, env->tape, x, GTL__VIT_FEAT_BOTH, &y),
                     GTL_STATUS_INVALID_ARG);
    assert_null(y);
    assert_non_null(strstr(gtl_last_error(), "vit forward"));
    assert_int_equal(env->tape->n_nodes, n0);
    int64_t ne[4] = {1, 3, c.image_size, c.image_size};
    x = gt_leaf(env, 4, ne, NULL, true);
    assert_int_equal(gtl__vit_forward(&m.vit, env->tape, x, 7, &y), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__vit_forward(NULL, env->tape, x, 3, &y), GTL_STATUS_INVALID_ARG);
    assert_int_equal(env->tape->n_nodes, n0);
    assert_int_equal(gtl__vit_freeze_first(&m.vit, c.layers + 2), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__vit_freeze_first(&m.vit, -1), GTL_STATUS_INVALID_ARG);

    gtl__vit_infer *inf = (gtl__vit_infer *)1;
    assert_int_equal(gtl__vit_infer_create(NULL, env->ctx, false, &inf), GTL_STATUS_INVALID_ARG);
    assert_null(inf);
    assert_int_equal(gtl__vit_infer_create(&m.vit, env->ctx, false, &inf), GTL_STATUS_OK);
    float img[3 * 8 * 8] = {0}, out[64];
    assert_int_equal(gtl__vit_infer_run(inf, img, 0, 3, out), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__vit_infer_run(inf, img, 1, 0, out), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__vit_infer_run(inf, NULL, 1, 3, out), GTL_STATUS_INVALID_ARG);
    gtl__vit_infer_destroy(inf);
    gtl__vit_infer_destroy(NULL);
    tmodel_free(&m);
}

static void check_forward_vs_naive(gt_env *env, const char *preset, gtl__act act, int64_t nb)
{
    gtl__vit_config c;
    assert_int_equal(gtl__vit_preset(preset, &c), GTL_STATUS_OK);
    c.act = act;
    tmodel m;
    tmodel_make(env, &m, &c, NULL);
    float *img = random_images(env, &c, nb);
    int64_t fd = gtl__vit_feature_dim(&c, GTL__VIT_FEAT_BOTH);
    double *ref = malloc((size_t)(nb * fd) * sizeof(double));
    float *reff = malloc((size_t)(nb * fd) * sizeof(float));
    ref_forward(&m, img, nb, ref);
    for (int64_t i = 0; i < nb * fd; i++)
        reff[i] = (float)ref[i];
    float *y = tape_features(env, &m, img, nb, GTL__VIT_FEAT_BOTH);
    char what[96];
    snprintf(what, sizeof what, "tape vs naive %s act %d B=%lld", preset, (int)act,
             (long long)nb);
    gt_assert_close(y, reff, nb * fd, 2e-5, 2e-5, what);
    /* The parts alone are the same numbers. */
    float *yc = tape_features(env, &m, img, nb, GTL__VIT_FEAT_CLS);
    float *yp = tape_features(env, &m, img, nb, GTL__VIT_FEAT_PROJ);
    for (int64_t b = 0; b < nb; b++) {
        assert_memory_equal(yc + b * c.width, y + b * fd, (size_t)c.width * sizeof(float));
        assert_memory_equal(yp + b * c.out_dim, y + b * fd + c.width,
                            (size_t)c.out_dim * sizeof(float));
    }
    free(yc);
    free(yp);
    free(y);
    free(ref);
    free(reff);
    free(img);
    tmodel_free(&m);
}

static void test_forward_vs_naive(void **state)
{
    gt_env *env = *state;
    check_forward_vs_naive(env, "tiny", GTL__ACT_QUICK_GELU, 1);
    check_forward_vs_naive(env, "tiny", GTL__ACT_GELU, 3);
    check_forward_vs_naive(env, "small", GTL__ACT_QUICK_GELU, 2);
}

/* ---- gradients through the whole model -------------------------------------- */

/* sum(out * r) in double, in no-grad mode. */
static double loss_at(gt_env *env, tmodel *m, const float *img, int64_t nb, const float *r)
{
    const gtl__vit_config *c = &m->vit.cfg;
    int64_t ne[4] = {nb, 3, c->image_size, c->image_size};
    gtl__tape_reset(env->tape);
    env->tape->grad_enabled = false;
    gtl__tensor *x, *y;
    assert_int_equal(gtl__tape_leaf(env->tape, 4, ne, img, false, &x), GTL_STATUS_OK);
    assert_int_equal(gtl__vit_forward(&m->vit, env->tape, x, GTL__VIT_FEAT_BOTH, &y),
                     GTL_STATUS_OK);
    double l = 0.0;
    for (int64_t i = 0; i < y->n; i++)
        l += (double)y->data[i] * r[i];
    env->tape->grad_enabled = true;
    return l;
}

/* Analytic gradients: parameters into m->ps.grad (zeroed first), the image's
 * into img_grad (when not NULL). Returns the number of tape nodes. */
static int64_t backward_at(gt_env *env, tmodel *m, const float *img, int64_t nb, const float *r,
                           float *img_grad)
{
    const gtl__vit_config *c = &m->vit.cfg;
    int64_t ne[4] = {nb, 3, c->image_size, c->image_size};
    assert_int_equal(gtl__paramset_alloc_grad(&m->ps), GTL_STATUS_OK);
    gtl__paramset_zero_grad(&m->ps);
    gtl__tape_reset(env->tape);
    env->tape->grad_enabled = true;
    gtl__tensor *x, *y;
    assert_int_equal(gtl__tape_leaf(env->tape, 4, ne, img, img_grad != NULL, &x),
                     GTL_STATUS_OK);
    assert_int_equal(gtl__vit_forward(&m->vit, env->tape, x, GTL__VIT_FEAT_BOTH, &y),
                     GTL_STATUS_OK);
    int64_t n_nodes = env->tape->n_nodes;
    if (gtl__requires_grad(y)) {
        gtl_status st = gtl__tape_backward_seed(env->tape, y, r);
        if (st != GTL_STATUS_OK)
            fail_msg("backward: %s", gtl_last_error());
    }
    if (img_grad != NULL) {
        assert_non_null(x->grad);
        memcpy(img_grad, x->grad, (size_t)x->n * sizeof(float));
    }
    return n_nodes;
}

static double fd_check(const char *what, double ana, double num, double *worst)
{
    double err = fabs(num - ana) / (1e-2 + fmax(fabs(num), fabs(ana)));
    if (!(err <= 3e-2))
        fprintf(stderr, "%s: analytic %.6g numeric %.6g (err %.3g)\n", what, ana, num, err);
    if (!(err <= *worst))
        *worst = isnan(err) ? INFINITY : err;
    return err;
}

static void gradcheck_model(gt_env *env, gtl__act act)
{
    gtl__vit_config c;
    assert_int_equal(gtl__vit_preset("tiny", &c), GTL_STATUS_OK);
    c.act = act;
    tmodel m;
    tmodel_make(env, &m, &c, NULL);
    int64_t nb = 2, fd = gtl__vit_feature_dim(&c, GTL__VIT_FEAT_BOTH);
    int64_t n_img = nb * 3 * c.image_size * c.image_size;
    float *img = random_images(env, &c, nb);
    float *r = malloc((size_t)(nb * fd) * sizeof(float));
    gt_fill(env, r, nb * fd, -1.0f, 1.0f);
    float *gimg = malloc((size_t)n_img * sizeof(float));
    backward_at(env, &m, img, nb, r, gimg);
    float *gpar = malloc((size_t)m.ps.n_total * sizeof(float));
    memcpy(gpar, m.ps.grad, (size_t)m.ps.n_total * sizeof(float));

    const double eps = 5e-3;
    double worst = 0.0;
    int64_t n_checked = 0;
    char what[160];
    /* The input. */
    for (int k = 0; k < 6; k++) {
        int64_t j = gt_randint(env, 0, n_img - 1);
        float x0 = img[j];
        img[j] = (float)(x0 + eps);
        double lp = loss_at(env, &m, img, nb, r);
        img[j] = (float)(x0 - eps);
        double lm = loss_at(env, &m, img, nb, r);
        img[j] = x0;
        snprintf(what, sizeof what, "act %d input[%lld]", (int)act, (long long)j);
        fd_check(what, gimg[j], (lp - lm) / (2 * eps), &worst);
        n_checked++;
    }
    /* A few coordinates of parameters all along the model. */
    const char *names[] = {"conv1.weight", "class_embedding", "positional_embedding",
                           "ln_pre.weight", "ln_pre.bias",
                           "transformer.resblocks.0.ln_1.weight",
                           "transformer.resblocks.0.attn.in_proj_weight",
                           "transformer.resblocks.0.attn.in_proj_bias",
                           "transformer.resblocks.0.attn.out_proj.weight",
                           "transformer.resblocks.0.mlp.c_fc.weight",
                           "transformer.resblocks.1.ln_2.bias",
                           "transformer.resblocks.1.mlp.c_fc.bias",
                           "transformer.resblocks.1.mlp.c_proj.weight",
                           "transformer.resblocks.1.attn.out_proj.bias",
                           "ln_post.weight", "ln_post.bias", "proj"};
    for (size_t q = 0; q < sizeof names / sizeof names[0]; q++) {
        int64_t pi = gtl__paramset_find(&m.ps, names[q]);
        assert_true(pi >= 0);
        gtl__tensor *t = gtl__paramset_get(&m.ps, pi);
        for (int k = 0; k < 4; k++) {
            int64_t j = gt_randint(env, 0, t->n - 1);
            float x0 = t->data[j];
            t->data[j] = (float)(x0 + eps);
            double lp = loss_at(env, &m, img, nb, r);
            t->data[j] = (float)(x0 - eps);
            double lm = loss_at(env, &m, img, nb, r);
            t->data[j] = x0;
            snprintf(what, sizeof what, "act %d %s[%lld]", (int)act, names[q], (long long)j);
            fd_check(what, gpar[m.ps.offsets[pi] + j], (lp - lm) / (2 * eps), &worst);
            n_checked++;
        }
    }
    printf("# vit gradcheck act %d seed %llu: %lld coords, max rel err %.3g\n", (int)act,
           (unsigned long long)env->seed, (long long)n_checked, worst);
    if (!(worst <= 3e-2))
        fail_msg("vit gradient check failed (max rel err %.3g)", worst);
    free(gpar);
    free(gimg);
    free(r);
    free(img);
    tmodel_free(&m);
    gtl__tape_reset(env->tape);
}

static void test_gradcheck_quick_gelu(void **state)
{
    gradcheck_model(*state, GTL__ACT_QUICK_GELU);
}

static void test_gradcheck_gelu(void **state)
{
    gradcheck_model(*state, GTL__ACT_GELU);
}

/* Freezing the stem and block 0 of 2: fewer nodes, no gradient for frozen
 * parameters, identical gradients for the trainable ones. */
static void test_freeze(void **state)
{
    gt_env *env = *state;
    gtl__vit_config c;
    assert_int_equal(gtl__vit_preset("tiny", &c), GTL_STATUS_OK);
    tmodel m;
    tmodel_make(env, &m, &c, NULL);
    int64_t nb = 2, fd = gtl__vit_feature_dim(&c, GTL__VIT_FEAT_BOTH);
    float *img = random_images(env, &c, nb);
    float *r = malloc((size_t)(nb * fd) * sizeof(float));
    gt_fill(env, r, nb * fd, -1.0f, 1.0f);

    int64_t n_all = backward_at(env, &m, img, nb, r, NULL);
    float *g_all = malloc((size_t)m.ps.n_total * sizeof(float));
    memcpy(g_all, m.ps.grad, (size_t)m.ps.n_total * sizeof(float));

    assert_int_equal(gtl__vit_freeze_first(&m.vit, 1), GTL_STATUS_OK);
    int64_t n_frozen = backward_at(env, &m, img, nb, r, NULL);
    printf("# freeze: %lld nodes with everything trainable, %lld with stem + block 0 frozen\n",
           (long long)n_all, (long long)n_frozen);
    /* Block 1 + head only: 13 nodes per block, 4 in the head (slice, reshape,
     * ln_post, matmul, concat: the slice starts the chain at block 1's output). */
    assert_true(n_frozen < n_all);
    assert_true(n_frozen <= 13 + 6);
    for (int64_t i = 0; i < m.ps.n_params; i++) {
        const char *name = m.ps.names[i];
        bool frozen = strstr(name, "resblocks.0.") != NULL || strncmp(name, "conv1", 5) == 0 ||
                      strstr(name, "embedding") != NULL || strncmp(name, "ln_pre", 6) == 0;
        assert_int_equal(m.ps.frozen[i], frozen);
        gtl__tensor *t = gtl__paramset_get(&m.ps, i);
        const float *g = m.ps.grad + m.ps.offsets[i];
        if (frozen) {
            assert_null(t->grad);
            for (int64_t j = 0; j < t->n; j++)
                assert_true(g[j] == 0.0f);
        } else {
            gt_assert_close(g, g_all + m.ps.offsets[i], t->n, 1e-6, 1e-5, name);
        }
    }
    /* Everything frozen: nothing recorded at all. */
    assert_int_equal(gtl__vit_freeze_first(&m.vit, c.layers + 1), GTL_STATUS_OK);
    assert_int_equal(backward_at(env, &m, img, nb, r, NULL), 0);
    assert_int_equal(gtl__vit_freeze_first(&m.vit, 0), GTL_STATUS_OK);
    assert_int_equal(backward_at(env, &m, img, nb, r, NULL), n_all);
    free(g_all);
    free(r);
    free(img);
    tmodel_free(&m);
    gtl__tape_reset(env->tape);
}

/* ---- inference path ---------------------------------------------------------- */

static void print_prims(gt_env *env, const char *filter)
{
    for (int64_t i = 0; i < gtl__ctx_num_prims(env->ctx); i++) {
        const char *op, *impl;
        bool hot;
        uint64_t n;
        gtl__ctx_prim_info(env->ctx, i, &op, &impl, &hot, &n);
        if (filter == NULL || strncmp(op, filter, strlen(filter)) == 0)
            printf("#   %-20s %-28s hot=%d runs=%llu\n", op, impl, hot, (unsigned long long)n);
    }
}

static void check_infer(gt_env *env, const char *preset, gtl__act act)
{
    gtl__vit_config c;
    assert_int_equal(gtl__vit_preset(preset, &c), GTL_STATUS_OK);
    c.act = act;
    tmodel m;
    tmodel_make(env, &m, &c, NULL);
    gtl__vit_infer *inf;
    assert_int_equal(gtl__vit_infer_create(&m.vit, env->ctx, false, &inf), GTL_STATUS_OK);
    assert_false(gtl__vit_infer_uses_bf16(inf));
    int64_t nbs[3] = {1, 3, 1};
    for (int q = 0; q < 3; q++) {
        int64_t nb = nbs[q];
        float *img = random_images(env, &c, nb);
        for (int which = 1; which <= 3; which++) {
            int64_t fd = gtl__vit_feature_dim(&c, which);
            float *want = tape_features(env, &m, img, nb, which);
            float *got = malloc((size_t)(nb * fd) * sizeof(float));
            assert_int_equal(gtl__vit_infer_run(inf, img, nb, which, got), GTL_STATUS_OK);
            /* Again: the same result, and nothing allocated. */
            uint64_t a0 = gtl__alloc_count();
            memset(got, 0, (size_t)(nb * fd) * sizeof(float));
            assert_int_equal(gtl__vit_infer_run(inf, img, nb, which, got), GTL_STATUS_OK);
            assert_int_equal(gtl__alloc_count() - a0, 0);
            char what[96];
            snprintf(what, sizeof what, "infer vs tape %s act %d B=%lld which %d", preset,
                     (int)act, (long long)nb, which);
            gt_assert_close(got, want, nb * fd, 1e-5, 1e-5, what);
            free(got);
            free(want);
        }
        free(img);
    }
    /* A weight change shows after refresh. */
    int64_t nb = 2, fd = gtl__vit_feature_dim(&c, GTL__VIT_FEAT_BOTH);
    float *img = random_images(env, &c, nb);
    float *got = malloc((size_t)(nb * fd) * sizeof(float));
    const char *changed[] = {"transformer.resblocks.0.attn.in_proj_weight",
                             "transformer.resblocks.0.mlp.c_fc.weight", "conv1.weight", "proj",
                             "class_embedding"};
    for (size_t q = 0; q < sizeof changed / sizeof changed[0]; q++) {
        gtl__tensor *t = gtl__paramset_get(&m.ps, gtl__paramset_find(&m.ps, changed[q]));
        for (int64_t j = 0; j < t->n; j++)
            t->data[j] *= 1.25f;
    }
    assert_int_equal(gtl__vit_infer_refresh(inf), GTL_STATUS_OK);
    float *want = tape_features(env, &m, img, nb, GTL__VIT_FEAT_BOTH);
    assert_int_equal(gtl__vit_infer_run(inf, img, nb, GTL__VIT_FEAT_BOTH, got), GTL_STATUS_OK);
    gt_assert_close(got, want, nb * fd, 1e-5, 1e-5, "infer after refresh");
    free(want);
    free(got);
    free(img);
    gtl__vit_infer_destroy(inf);
    tmodel_free(&m);
}

static void test_infer_matches_tape(void **state)
{
    gt_env *env = *state;
    check_infer(env, "tiny", GTL__ACT_QUICK_GELU);
    check_infer(env, "small", GTL__ACT_QUICK_GELU);
    check_infer(env, "small", GTL__ACT_GELU);
    printf("# oneDNN %s, inference primitives:\n", gtl__dnnl_isa_name());
    print_prims(env, "vit");
}

/* The kernels the inference path gets at ViT-B/16 shapes (B = 1), without
 * running the network: creating the engine and one batch of primitives. */
static void test_infer_b16_kernels(void **state)
{
    gt_env *env = *state;
    gtl__vit_config c;
    assert_int_equal(gtl__vit_preset("ViT-B/16", &c), GTL_STATUS_OK);
    c.layers = 1; /* the shapes of every block are the same */
    tmodel m;
    tmodel_make(env, &m, &c, NULL);
    gtl__vit_infer *inf;
    assert_int_equal(gtl__vit_infer_create(&m.vit, env->ctx, false, &inf), GTL_STATUS_OK);
    float *img = random_images(env, &c, 1);
    float out[1280];
    assert_int_equal(gtl__vit_infer_run(inf, img, 1, GTL__VIT_FEAT_BOTH, out), GTL_STATUS_OK);
    for (int i = 0; i < 1280; i++)
        assert_true(isfinite(out[i]));
    printf("# ViT-B/16 shapes (1 block, B = 1), ISA %s:\n", gtl__dnnl_isa_name());
    print_prims(env, NULL);
    assert_int_equal(gtl__ctx_num_hot_ref(env->ctx), 0);
    free(img);
    gtl__vit_infer_destroy(inf);
    tmodel_free(&m);
}

typedef struct log_capture {
    int n_warn;
    char last[512];
} log_capture;

static void on_log(void *ud, gtl_log_level level, const char *msg)
{
    log_capture *lc = ud;
    if (level == GTL_LOG_WARN) {
        lc->n_warn++;
        snprintf(lc->last, sizeof lc->last, "%s", msg);
    }
}

static void test_infer_bf16(void **state)
{
    gt_env *env = *state;
    gtl__vit_config c;
    assert_int_equal(gtl__vit_preset("small", &c), GTL_STATUS_OK);
    tmodel m;
    tmodel_make(env, &m, &c, NULL);
    int64_t nb = 2, fd = gtl__vit_feature_dim(&c, GTL__VIT_FEAT_BOTH);
    float *img = random_images(env, &c, nb);
    float *f32 = malloc((size_t)(nb * fd) * sizeof(float));
    float *got = malloc((size_t)(nb * fd) * sizeof(float));
    gtl__vit_infer *inf;
    assert_int_equal(gtl__vit_infer_create(&m.vit, env->ctx, false, &inf), GTL_STATUS_OK);
    assert_int_equal(gtl__vit_infer_run(inf, img, nb, GTL__VIT_FEAT_BOTH, f32), GTL_STATUS_OK);
    gtl__vit_infer_destroy(inf);

    log_capture lc;
    memset(&lc, 0, sizeof lc);
    assert_int_equal(gtl_set_log_callback(on_log, &lc, GTL_LOG_WARN), GTL_STATUS_OK);
    assert_int_equal(gtl__vit_infer_create(&m.vit, env->ctx, true, &inf), GTL_STATUS_OK);
    gtl_set_log_callback(NULL, NULL, GTL_LOG_WARN);
    assert_int_equal(gtl__vit_infer_run(inf, img, nb, GTL__VIT_FEAT_BOTH, got), GTL_STATUS_OK);
    if (!gtl__dnnl_has_bf16()) {
        printf("# no native bf16 (ISA %s): fallback logged: \"%s\"\n", gtl__dnnl_isa_name(),
               lc.last);
        assert_false(gtl__vit_infer_uses_bf16(inf));
        assert_int_equal(lc.n_warn, 1);
        assert_non_null(strstr(lc.last, "bf16"));
        assert_non_null(strstr(lc.last, "fp32"));
        assert_memory_equal(got, f32, (size_t)(nb * fd) * sizeof(float));
    } else {
        assert_true(gtl__vit_infer_uses_bf16(inf));
        assert_int_equal(lc.n_warn, 0);
        gt_assert_close(got, f32, nb * fd, 5e-2, 5e-2, "bf16 vs fp32");
    }
    gtl__vit_infer_destroy(inf);

    /* The bf16 code path itself, forced. oneDNN 2.6 has no bf16 matmul at all
     * (not even a reference one) without avx512_core: then UNSUPPORTED. */
    gtl__ctx *ctx2;
    assert_int_equal(gtl__ctx_create(&ctx2), GTL_STATUS_OK);
    gtl_status st = gtl__vit_infer_create_forced_bf16(&m.vit, ctx2, &inf);
    if (st == GTL_STATUS_OK) {
        assert_true(gtl__vit_infer_uses_bf16(inf));
        st = gtl__vit_infer_run(inf, img, nb, GTL__VIT_FEAT_BOTH, got);
    }
    if (st == GTL_STATUS_OK) {
        double md = 0.0;
        for (int64_t i = 0; i < nb * fd; i++)
            md = fmax(md, fabs((double)got[i] - f32[i]));
        printf("# forced bf16 path ran: max |bf16 - fp32| = %.3g\n", md);
        gt_assert_close(got, f32, nb * fd, 5e-2, 5e-2, "forced bf16 vs fp32");
    } else {
        printf("# forced bf16 path: %s (%s)\n", gtl_strerror(st), gtl_last_error());
        assert_false(gtl__dnnl_has_bf16());
        assert_int_equal(st, GTL_STATUS_UNSUPPORTED);
    }
    gtl__vit_infer_destroy(inf);
    gtl__ctx_destroy(ctx2);
    free(got);
    free(f32);
    free(img);
    tmodel_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_presets_and_names, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_bad_args, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_forward_vs_naive, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_gradcheck_quick_gelu, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_gradcheck_gelu, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_freeze, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_infer_matches_tape, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_infer_b16_kernels, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_infer_bf16, gt_setup, gt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
