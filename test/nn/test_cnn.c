/* nn/cnn: the residual CNN backbone.
 *
 * - config, presets, parameter names and counts (resnet_small: 2,795,040);
 * - initialisation statistics (Kaiming-normal fan_out, BN 1 / 0, stats 0 / 1);
 * - the forward in training and evaluation mode against a plain C reference
 *   of the whole network (naive convolution, batch norm with batch or running
 *   statistics), including the running-statistic update;
 * - finite differences through the whole network (training-mode BN) on
 *   coordinates of several parameters and of the input;
 * - freezing: frozen stages record nothing, keep their running statistics and
 *   get no gradient; the rest trains;
 * - the supervised head: loss and accuracy, a few SGD steps lower the loss;
 * - bad arguments (INVALID_ARG, message, nothing recorded);
 * - the oneDNN implementations picked at the default size (printed; the
 *   fixture fails on a hot ref: kernel). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gtl_test.h"
#include "nn/cnn.h"

/* A model with its parameter set, made from a preset and seeded weights. */
typedef struct model {
    gtl__paramset ps;
    gtl__cnn cnn;
} model;

static void model_make(model *m, const gtl__cnn_config *cfg, uint64_t seed)
{
    gtl__rng rng;
    gtl__paramset_init(&m->ps);
    assert_int_equal(gtl__cnn_init(&m->cnn, cfg, &m->ps, NULL), GTL_STATUS_OK);
    assert_int_equal(gtl__paramset_finalize(&m->ps), GTL_STATUS_OK);
    assert_int_equal(gtl__paramset_alloc_grad(&m->ps), GTL_STATUS_OK);
    gtl__rng_seed(&rng, seed);
    assert_int_equal(gtl__cnn_init_weights(&m->cnn, &rng), GTL_STATUS_OK);
}

/* Moves BN parameters and running statistics away from 1 / 0 so that a test
 * notices when one is ignored. */
static void model_perturb(model *m, gt_env *env)
{
    for (int64_t i = 0; i < m->ps.n_params; i++) {
        gtl__tensor *t = &m->ps.params[i];
        if (t->nd == 1)
            for (int64_t k = 0; k < t->n; k++)
                t->data[k] += 0.4f * ((float)gt_randint(env, 0, 1000) / 1000.0f - 0.5f);
    }
    for (int64_t i = 0; i < m->cnn.buffers.n_params; i++) {
        gtl__tensor *t = &m->cnn.buffers.params[i];
        for (int64_t k = 0; k < t->n; k++)
            t->data[k] = (i % 2 == 0) ? 0.3f * ((float)gt_randint(env, 0, 1000) / 500.0f - 1.0f)
                                      : 0.5f + (float)gt_randint(env, 0, 1000) / 1000.0f;
    }
}

static void model_free(model *m)
{
    gtl__cnn_fini(&m->cnn);
    gtl__paramset_fini(&m->ps);
}

static gtl__tensor *PT(model *m, const char *name)
{
    int64_t i = gtl__paramset_find(&m->ps, name);
    if (i < 0)
        fail_msg("no parameter %s", name);
    return &m->ps.params[i];
}

static float *BUF(model *m, const char *name)
{
    int64_t i = gtl__paramset_find(&m->cnn.buffers, name);
    if (i < 0)
        fail_msg("no buffer %s", name);
    return m->cnn.buffers.params[i].data;
}

/* ---- plain C reference ------------------------------------------------------- */

typedef struct ref_t {
    int64_t n, c, h, w;
    double *d; /* (N, C, H, W) */
} ref_t;

static ref_t ref_new(int64_t n, int64_t c, int64_t h, int64_t w)
{
    ref_t t = {n, c, h, w, calloc((size_t)(n * c * h * w), sizeof(double))};
    return t;
}

static ref_t ref_conv(ref_t x, const gtl__tensor *wt, int64_t stride)
{
    int64_t o = wt->ne[0], k = wt->ne[2], pad = k / 2;
    int64_t oh = (x.h + 2 * pad - k) / stride + 1, ow = (x.w + 2 * pad - k) / stride + 1;
    ref_t y = ref_new(x.n, o, oh, ow);
    for (int64_t b = 0; b < x.n; b++)
        for (int64_t oc = 0; oc < o; oc++)
            for (int64_t i = 0; i < oh; i++)
                for (int64_t j = 0; j < ow; j++) {
                    double s = 0.0;
                    for (int64_t c = 0; c < x.c; c++)
                        for (int64_t u = 0; u < k; u++)
                            for (int64_t v = 0; v < k; v++) {
                                int64_t yy = i * stride - pad + u, xx = j * stride - pad + v;
                                if (yy < 0 || yy >= x.h || xx < 0 || xx >= x.w)
                                    continue;
                                s += x.d[((b * x.c + c) * x.h + yy) * x.w + xx] *
                                     wt->data[((oc * x.c + c) * k + u) * k + v];
                            }
                    y.d[((b * o + oc) * oh + i) * ow + j] = s;
                }
    return y;
}

/* In place; training: batch statistics, running ones updated (float, as the
 * library keeps them); else running statistics. */
static void ref_bn(ref_t x, const gtl__tensor *g, const gtl__tensor *bt, float *rm, float *rv,
                   bool training)
{
    int64_t hw = x.h * x.w, m = x.n * hw;
    for (int64_t c = 0; c < x.c; c++) {
        double mean = 0.0, var = 0.0;
        if (training) {
            for (int64_t b = 0; b < x.n; b++)
                for (int64_t i = 0; i < hw; i++)
                    mean += x.d[(b * x.c + c) * hw + i];
            mean /= (double)m;
            for (int64_t b = 0; b < x.n; b++)
                for (int64_t i = 0; i < hw; i++) {
                    double d = x.d[(b * x.c + c) * hw + i] - mean;
                    var += d * d;
                }
            var /= (double)m;
            rm[c] = (float)(0.9 * rm[c] + 0.1 * mean);
            rv[c] = (float)(0.9 * rv[c] + 0.1 * var * (double)m / (double)(m - 1));
        } else {
            mean = rm[c];
            var = rv[c];
        }
        double inv = 1.0 / sqrt(var + 1e-5);
        for (int64_t b = 0; b < x.n; b++)
            for (int64_t i = 0; i < hw; i++) {
                double *p = &x.d[(b * x.c + c) * hw + i];
                *p = (*p - mean) * inv * g->data[c] + bt->data[c];
            }
    }
}

static void ref_relu(ref_t x)
{
    for (int64_t i = 0; i < x.n * x.c * x.h * x.w; i++)
        x.d[i] = x.d[i] > 0.0 ? x.d[i] : 0.0;
}

/* conv -> BN (-> ReLU) into a new tensor. */
static ref_t ref_conv_bn(model *m, ref_t x, const char *layer, const char *bn, int64_t stride,
                         bool relu, bool training)
{
    char n1[128], n2[128], n3[128], n4[128], n5[128];
    snprintf(n1, sizeof n1, "%s.weight", layer);
    snprintf(n2, sizeof n2, "%s.weight", bn);
    snprintf(n3, sizeof n3, "%s.bias", bn);
    snprintf(n4, sizeof n4, "%s.running_mean", bn);
    snprintf(n5, sizeof n5, "%s.running_var", bn);
    ref_t y = ref_conv(x, PT(m, n1), stride);
    ref_bn(y, PT(m, n2), PT(m, n3), BUF(m, n4), BUF(m, n5), training);
    if (relu)
        ref_relu(y);
    return y;
}

/* The whole network; running statistics of m are updated in training mode.
 * out (N, F) in double. */
static void ref_forward(model *m, const float *img, int64_t nb, bool training, double *out)
{
    const gtl__cnn_config *c = &m->cnn.cfg;
    ref_t x = ref_new(nb, 3, c->image_size, c->image_size);
    for (int64_t i = 0; i < nb * 3 * c->image_size * c->image_size; i++)
        x.d[i] = img[i];
    ref_t y = ref_conv_bn(m, x, "stem.conv", "stem.bn", 1, true,
                          training && m->cnn.n_frozen == 0);
    free(x.d);
    x = y;
    for (int64_t s = 0; s < c->stages; s++)
        for (int64_t j = 0; j < c->blocks; j++) {
            char p[64], a[96], b[96];
            bool tr = training && s >= m->cnn.n_frozen;
            int64_t stride = (s > 0 && j == 0) ? 2 : 1;
            snprintf(p, sizeof p, "stages.%lld.%lld.", (long long)s, (long long)j);
            snprintf(a, sizeof a, "%sconv1", p);
            snprintf(b, sizeof b, "%sbn1", p);
            ref_t h = ref_conv_bn(m, x, a, b, stride, true, tr);
            snprintf(a, sizeof a, "%sconv2", p);
            snprintf(b, sizeof b, "%sbn2", p);
            ref_t h2 = ref_conv_bn(m, h, a, b, 1, false, tr);
            free(h.d);
            ref_t sc = x;
            snprintf(a, sizeof a, "%sshortcut.conv.weight", p);
            if (gtl__paramset_find(&m->ps, a) >= 0) {
                snprintf(a, sizeof a, "%sshortcut.conv", p);
                snprintf(b, sizeof b, "%sshortcut.bn", p);
                sc = ref_conv_bn(m, x, a, b, stride, false, tr);
            }
            for (int64_t i = 0; i < h2.n * h2.c * h2.h * h2.w; i++) {
                double v = h2.d[i] + sc.d[i];
                h2.d[i] = v > 0.0 ? v : 0.0;
            }
            if (sc.d != x.d)
                free(sc.d);
            free(x.d);
            x = h2;
        }
    for (int64_t b = 0; b < nb; b++)
        for (int64_t ch = 0; ch < x.c; ch++) {
            double s = 0.0;
            for (int64_t i = 0; i < x.h * x.w; i++)
                s += x.d[(b * x.c + ch) * x.h * x.w + i];
            out[b * x.c + ch] = s / (double)(x.h * x.w);
        }
    free(x.d);
}

/* ---- helpers ------------------------------------------------------------------ */

static float *random_images(gt_env *env, int64_t nb, int64_t s)
{
    float *x = malloc((size_t)(nb * 3 * s * s) * sizeof(float));
    gt_fill(env, x, nb * 3 * s * s, -1.5f, 1.5f);
    return x;
}

/* Runs the forward on the env's tape; returns the features (arena memory). */
static gtl__tensor *run_forward(gt_env *env, model *m, const float *img, int64_t nb,
                                bool training, bool grad, bool input_grad)
{
    int64_t s = m->cnn.cfg.image_size, ne[4] = {nb, 3, s, s};
    gtl__tensor *x, *y;
    gtl__tape_reset(env->tape);
    env->tape->training = training;
    env->tape->grad_enabled = grad;
    assert_int_equal(gtl__tape_leaf(env->tape, 4, ne, img, input_grad, &x), GTL_STATUS_OK);
    if (gtl__cnn_forward(&m->cnn, env->tape, x, &y) != GTL_STATUS_OK)
        fail_msg("cnn forward: %s", gtl_last_error());
    assert_int_equal(env->tape->training, training);
    return y;
}

static void copy_buffers(model *m, float *dst, bool restore)
{
    size_t n = (size_t)m->cnn.buffers.n_total * sizeof(float);
    if (restore)
        memcpy(m->cnn.buffers.data, dst, n);
    else
        memcpy(dst, m->cnn.buffers.data, n);
}

/* ---- tests ------------------------------------------------------------------- */

static void test_config_and_names(void **state)
{
    gt_env *env = *state;
    (void)env;
    gtl__cnn_config c;
    gtl__cnn_config_default(&c);
    assert_int_equal(c.image_size, 64);
    assert_int_equal(c.width, 32);
    assert_int_equal(c.stages, 4);
    assert_int_equal(c.blocks, 2);
    assert_int_equal(gtl__cnn_feature_dim(&c), 256);
    assert_int_equal(gtl__cnn_stage_side(&c, 3), 8);
    gtl__cnn_config t;
    assert_int_equal(gtl__cnn_preset("resnet_small", &t), GTL_STATUS_OK);
    assert_memory_equal(&t, &c, sizeof c);
    assert_int_equal(gtl__cnn_preset("resnet_huge", &t), GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "resnet_huge"));

    model m;
    gtl__paramset_init(&m.ps);
    assert_int_equal(gtl__cnn_init(&m.cnn, &c, &m.ps, "backbone."), GTL_STATUS_OK);
    assert_int_equal(gtl__paramset_finalize(&m.ps), GTL_STATUS_OK);
    /* 3 stem + 8 blocks * 6 + 3 projection shortcuts * 3. */
    assert_int_equal(gtl__cnn_num_params(&m.cnn), 3 + 8 * 6 + 3 * 3);
    assert_int_equal(m.ps.n_params, gtl__cnn_num_params(&m.cnn));
    int64_t nw = gtl__cnn_num_weights(&m.cnn);
    printf("# resnet_small: %lld parameter tensors, %lld weights, %lld running-stat tensors\n",
           (long long)m.ps.n_params, (long long)nw, (long long)m.cnn.buffers.n_params);
    assert_int_equal(nw, 2795040);
    const char *names[] = {"backbone.stem.conv.weight", "backbone.stem.bn.weight",
                           "backbone.stages.0.0.conv1.weight", "backbone.stages.0.1.bn2.bias",
                           "backbone.stages.1.0.shortcut.conv.weight",
                           "backbone.stages.3.1.conv2.weight"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (gtl__paramset_find(&m.ps, names[i]) < 0)
            fail_msg("missing %s", names[i]);
    assert_true(gtl__paramset_find(&m.ps, "backbone.stages.0.0.shortcut.conv.weight") < 0);
    int64_t i = gtl__paramset_find(&m.ps, "backbone.stages.3.0.conv1.weight");
    assert_int_equal(m.ps.params[i].ne[0], 256);
    assert_int_equal(m.ps.params[i].ne[1], 128);
    assert_true(gtl__paramset_find(&m.cnn.buffers, "backbone.stages.2.0.shortcut.bn.running_var")
                >= 0);
    /* 1 stem BN + 8 blocks * 2 + 3 shortcut BNs, mean and var each. */
    assert_int_equal(m.cnn.buffers.n_params, 2 * (1 + 16 + 3));
    int64_t idx[64];
    gtl__cnn_param_indices(&m.cnn, idx);
    for (int64_t k = 0; k < m.ps.n_params; k++)
        assert_int_equal(idx[k], k); /* an empty set: indices 0..n-1 in order */
    model_free(&m);
}

static void test_init_weights(void **state)
{
    gt_env *env = *state;
    (void)env;
    gtl__cnn_config c;
    gtl__cnn_config_default(&c);
    model m;
    model_make(&m, &c, 11);
    /* stages.3.1.conv2: 589,824 weights, std sqrt(2 / (256 * 9)). */
    gtl__tensor *w = PT(&m, "stages.3.1.conv2.weight");
    double s = 0.0, s2 = 0.0;
    for (int64_t i = 0; i < w->n; i++) {
        s += w->data[i];
        s2 += (double)w->data[i] * w->data[i];
    }
    double mean = s / (double)w->n, sd = sqrt(s2 / (double)w->n - mean * mean);
    double want = sqrt(2.0 / (256.0 * 9.0));
    printf("# conv2 init: mean %.2e, std %.5f (want %.5f)\n", mean, sd, want);
    assert_true(fabs(mean) < 3e-4);
    assert_true(fabs(sd / want - 1.0) < 0.01);
    gtl__tensor *sc = PT(&m, "stages.1.0.shortcut.conv.weight");
    double sc2 = 0.0;
    for (int64_t i = 0; i < sc->n; i++)
        sc2 += (double)sc->data[i] * sc->data[i];
    assert_true(fabs(sqrt(sc2 / (double)sc->n) / sqrt(2.0 / 64.0) - 1.0) < 0.05);
    gtl__tensor *g = PT(&m, "stages.2.1.bn1.weight"), *b = PT(&m, "stages.2.1.bn1.bias");
    for (int64_t i = 0; i < g->n; i++) {
        assert_true(g->data[i] == 1.0f);
        assert_true(b->data[i] == 0.0f);
        assert_true(BUF(&m, "stages.2.1.bn1.running_mean")[i] == 0.0f);
        assert_true(BUF(&m, "stages.2.1.bn1.running_var")[i] == 1.0f);
    }
    /* Same seed, same weights. */
    model m2;
    model_make(&m2, &c, 11);
    assert_memory_equal(m.ps.data, m2.ps.data, (size_t)m.ps.n_total * sizeof(float));
    model_free(&m2);
    model_free(&m);
}

/* The forward (training and evaluation) against the plain reference. */
static void test_forward_reference(void **state)
{
    gt_env *env = *state;
    gtl__cnn_config c = {12, 3, 3, 2, 1};
    int64_t nb = 3, f = gtl__cnn_feature_dim(&c);
    model m;
    model_make(&m, &c, 3);
    model_perturb(&m, env);
    float *img = random_images(env, nb, c.image_size);
    float *stats0 = malloc((size_t)m.cnn.buffers.n_total * sizeof(float));
    float *stats_ref = malloc((size_t)m.cnn.buffers.n_total * sizeof(float));
    double *want = malloc((size_t)(nb * f) * sizeof(double));
    float *wantf = malloc((size_t)(nb * f) * sizeof(float));
    copy_buffers(&m, stats0, false);

    for (int mode = 0; mode < 2; mode++) {
        bool training = mode == 1;
        copy_buffers(&m, stats0, true);
        ref_forward(&m, img, nb, training, want);
        copy_buffers(&m, stats_ref, false);
        copy_buffers(&m, stats0, true);
        gtl__tensor *y = run_forward(env, &m, img, nb, training, true, false);
        assert_int_equal(y->nd, 2);
        assert_int_equal(y->ne[0], nb);
        assert_int_equal(y->ne[1], f);
        for (int64_t i = 0; i < nb * f; i++)
            wantf[i] = (float)want[i];
        gt_assert_close(y->data, wantf, nb * f, 2e-4, 1e-3,
                        training ? "train-mode features" : "eval-mode features");
        /* Running statistics: updated in training mode only. */
        gt_assert_close(m.cnn.buffers.data, stats_ref, m.cnn.buffers.n_total, 1e-5, 1e-4,
                        "running statistics");
        if (!training)
            assert_memory_equal(m.cnn.buffers.data, stats0,
                                (size_t)m.cnn.buffers.n_total * sizeof(float));
        else
            assert_memory_not_equal(m.cnn.buffers.data, stats0,
                                    (size_t)m.cnn.buffers.n_total * sizeof(float));
    }
    /* Evaluation mode: an image's feature does not depend on its batch. */
    copy_buffers(&m, stats0, true);
    gtl__tensor *all = run_forward(env, &m, img, nb, false, false, false);
    float *row = malloc((size_t)f * sizeof(float));
    memcpy(row, all->data + f, (size_t)f * sizeof(float));
    gtl__tensor *one = run_forward(env, &m, img + 3 * c.image_size * c.image_size, 1, false,
                                   false, false);
    gt_assert_close(one->data, row, f, 1e-5, 1e-5, "eval feature alone vs in a batch");
    gtl__tape_reset(env->tape);
    env->tape->grad_enabled = true;
    free(row);
    free(wantf);
    free(want);
    free(stats_ref);
    free(stats0);
    free(img);
    model_free(&m);
}

/* sum(feat * r) through the plain double-precision reference (so the
 * differences measure the derivative, not float rounding), running
 * statistics restored. */
static double fd_loss(model *m, const float *img, int64_t nb, const float *r, bool training,
                      float *stats)
{
    int64_t f = gtl__cnn_feature_dim(&m->cnn.cfg);
    double *y = malloc((size_t)(nb * f) * sizeof(double));
    copy_buffers(m, stats, false);
    ref_forward(m, img, nb, training, y);
    copy_buffers(m, stats, true);
    double l = 0.0;
    for (int64_t i = 0; i < nb * f; i++)
        l += y[i] * r[i];
    free(y);
    return l;
}

/* Central differences on n_check coordinates of data (length n) against
 * grad; returns the worst error |fd - an| / (floor + max(|fd|, |an|)). */
static double fd_check(gt_env *env, model *m, float *img, int64_t nb, const float *r,
                       bool training, float *data, const float *grad, int64_t n, int n_check,
                       const char *what, float *stats)
{
    const float eps = 1e-5f; /* small: ReLU kinks are everywhere in a deep net */
    double amax = 0.0;
    for (int64_t i = 0; i < n; i++)
        amax = fmax(amax, fabs((double)grad[i]));
    double floor = 0.01 * amax + 1e-5, worst = 0.0;
    for (int k = 0; k < n_check; k++) {
        int64_t i = k == 0 ? 0 : gt_randint(env, 0, n - 1);
        float keep = data[i];
        data[i] = keep + eps;
        double dp = (double)data[i] - keep; /* the step float storage really took */
        double lp = fd_loss(m, img, nb, r, training, stats);
        data[i] = keep - eps;
        double dm = (double)keep - data[i];
        double lm = fd_loss(m, img, nb, r, training, stats);
        data[i] = keep;
        double fd = (lp - lm) / (dp + dm), an = grad[i];
        double err = fabs(fd - an) / (floor + fmax(fabs(fd), fabs(an)));
        if (err > worst)
            worst = err;
        if (err > 1e-2)
            printf("# %s[%lld]: fd %.6g analytic %.6g err %.3g\n", what, (long long)i, fd, an,
                   err);
    }
    printf("# gradcheck %-36s |grad|max %.3g worst err %.3g\n", what, amax, worst);
    return worst;
}

static void gradcheck(gt_env *env, bool training)
{
    gtl__cnn_config c;
    assert_int_equal(gtl__cnn_preset("tiny", &c), GTL_STATUS_OK);
    int64_t nb = 3, f = gtl__cnn_feature_dim(&c), s = c.image_size;
    model m;
    model_make(&m, &c, 5);
    model_perturb(&m, env);
    float *img = random_images(env, nb, s);
    float *r = malloc((size_t)(nb * f) * sizeof(float));
    float *stats = malloc((size_t)m.cnn.buffers.n_total * sizeof(float));
    gt_fill(env, r, nb * f, -1.0f, 1.0f);

    /* Analytic gradients. */
    float *keep = malloc((size_t)m.cnn.buffers.n_total * sizeof(float));
    copy_buffers(&m, keep, false);
    gtl__paramset_zero_grad(&m.ps);
    gtl__tensor *y = run_forward(env, &m, img, nb, training, true, true);
    gtl__tensor *x = env->tape->nodes[0].src[0]; /* the input leaf of the stem conv */
    assert_int_equal(gtl__tape_backward_seed(env->tape, y, r), GTL_STATUS_OK);
    assert_non_null(x->grad);
    float *gx = malloc((size_t)x->n * sizeof(float));
    memcpy(gx, x->grad, (size_t)x->n * sizeof(float));
    float *gp = malloc((size_t)m.ps.n_total * sizeof(float));
    memcpy(gp, m.ps.grad, (size_t)m.ps.n_total * sizeof(float));
    copy_buffers(&m, keep, true);

    const char *params[] = {"stem.conv.weight", "stem.bn.weight", "stages.0.0.conv1.weight",
                            "stages.0.1.bn2.bias", "stages.1.0.conv2.weight",
                            "stages.1.0.shortcut.conv.weight", "stages.1.0.shortcut.bn.weight",
                            "stages.1.1.bn1.weight", "stages.1.1.conv2.weight"};
    double worst = 0.0;
    char what[96];
    for (size_t p = 0; p < sizeof params / sizeof params[0]; p++) {
        int64_t i = gtl__paramset_find(&m.ps, params[p]);
        gtl__tensor *t = &m.ps.params[i];
        snprintf(what, sizeof what, "%s %s", training ? "train" : "eval", params[p]);
        double e = fd_check(env, &m, img, nb, r, training, t->data, gp + m.ps.offsets[i], t->n,
                            6, what, stats);
        worst = fmax(worst, e);
    }
    snprintf(what, sizeof what, "%s input", training ? "train" : "eval");
    worst = fmax(worst, fd_check(env, &m, img, nb, r, training, img, gx, x->n, 12, what, stats));
    gtl__tape_reset(env->tape);
    env->tape->grad_enabled = true;
    env->tape->training = false;
    if (worst > 1e-2)
        fail_msg("gradient check: worst error %.3g > 1e-2", worst);
    free(gp);
    free(gx);
    free(keep);
    free(stats);
    free(r);
    free(img);
    model_free(&m);
}

static void test_gradcheck_train(void **state)
{
    gradcheck(*state, true);
}

static void test_gradcheck_eval(void **state)
{
    gradcheck(*state, false);
}

/* Frozen stages: nothing recorded, no gradient, running statistics kept,
 * evaluation-mode BN; the trainable part matches the reference. */
static void test_freeze(void **state)
{
    gt_env *env = *state;
    gtl__cnn_config c = {12, 3, 3, 2, 1};
    int64_t nb = 3, f = gtl__cnn_feature_dim(&c);
    model m;
    model_make(&m, &c, 9);
    model_perturb(&m, env);
    float *img = random_images(env, nb, c.image_size);

    /* Everything frozen: no node at all, output needs no gradient. */
    assert_int_equal(gtl__cnn_freeze_first(&m.cnn, 3), GTL_STATUS_OK);
    gtl__tensor *y = run_forward(env, &m, img, nb, true, true, false);
    assert_int_equal(env->tape->n_nodes, 0);
    assert_false(gtl__requires_grad(y));

    /* Stem and stages 0, 1 frozen: only stage 2 records. Stage 2 has two
     * blocks: 9 nodes with a projection shortcut, 7 without, then the pool. */
    assert_int_equal(gtl__cnn_freeze_first(&m.cnn, 2), GTL_STATUS_OK);
    float *stats0 = malloc((size_t)m.cnn.buffers.n_total * sizeof(float));
    copy_buffers(&m, stats0, false);
    double *want = malloc((size_t)(nb * f) * sizeof(double));
    float *wantf = malloc((size_t)(nb * f) * sizeof(float));
    ref_forward(&m, img, nb, true, want); /* uses n_frozen: eval BN in frozen stages */
    float *stats_ref = malloc((size_t)m.cnn.buffers.n_total * sizeof(float));
    copy_buffers(&m, stats_ref, false);
    copy_buffers(&m, stats0, true);
    gtl__paramset_zero_grad(&m.ps);
    y = run_forward(env, &m, img, nb, true, true, false);
    assert_int_equal(env->tape->n_nodes, 9 + 7 + 1);
    for (int64_t i = 0; i < env->tape->n_nodes; i++)
        if (strcmp(env->tape->nodes[i].name, "conv2d") == 0)
            assert_int_equal(env->tape->nodes[i].src[1]->ne[0], 12); /* stage 2 width */
    for (int64_t i = 0; i < nb * f; i++)
        wantf[i] = (float)want[i];
    gt_assert_close(y->data, wantf, nb * f, 2e-4, 1e-3, "partly frozen, training mode");
    gt_assert_close(m.cnn.buffers.data, stats_ref, m.cnn.buffers.n_total, 1e-5, 1e-4,
                    "running statistics");
    float *r = malloc((size_t)(nb * f) * sizeof(float));
    gt_fill(env, r, nb * f, -1.0f, 1.0f);
    assert_int_equal(gtl__tape_backward_seed(env->tape, y, r), GTL_STATUS_OK);
    for (int64_t i = 0; i < m.ps.n_params; i++) {
        const char *name = m.ps.names[i];
        bool frozen = strncmp(name, "stages.2.", 9) != 0;
        assert_int_equal(m.ps.frozen[i], frozen);
        const gtl__tensor *t = &m.ps.params[i];
        double s = 0.0;
        for (int64_t k = 0; k < t->n; k++)
            s += fabs(m.ps.grad[m.ps.offsets[i] + k]);
        if (frozen && s != 0.0)
            fail_msg("frozen %s has a gradient", name);
        if (!frozen && !(s > 0.0))
            fail_msg("trainable %s has no gradient", name);
        /* Running statistics of frozen BN layers did not move. */
    }
    for (int64_t i = 0; i < m.cnn.buffers.n_params; i++) {
        const char *name = m.cnn.buffers.names[i];
        bool frozen = strncmp(name, "stages.2.", 9) != 0;
        const gtl__tensor *t = &m.cnn.buffers.params[i];
        int64_t off = m.cnn.buffers.offsets[i];
        bool same = memcmp(t->data, stats0 + off, (size_t)t->n * sizeof(float)) == 0;
        if (frozen != same)
            fail_msg("running statistic %s %s", name, frozen ? "moved" : "did not move");
    }
    /* Unfreezing restores full training. */
    assert_int_equal(gtl__cnn_freeze_first(&m.cnn, 0), GTL_STATUS_OK);
    for (int64_t i = 0; i < m.ps.n_params; i++)
        assert_false(m.ps.frozen[i]);
    gtl__tape_reset(env->tape);
    env->tape->training = false;
    free(r);
    free(stats_ref);
    free(wantf);
    free(want);
    free(stats0);
    free(img);
    model_free(&m);
}

/* The supervised head: loss value, accuracy count, and a few SGD steps on
 * a tiny problem lower the loss. */
static void test_supervised(void **state)
{
    gt_env *env = *state;
    gtl__cnn_config c;
    assert_int_equal(gtl__cnn_preset("tiny", &c), GTL_STATUS_OK);
    int64_t nb = 8, nc = 4, f = gtl__cnn_feature_dim(&c);
    model m;
    model_make(&m, &c, 21);
    gtl__paramset hps;
    gtl__cnn_head head;
    gtl__paramset_init(&hps);
    assert_int_equal(gtl__cnn_head_init(&head, &hps, NULL, f, 1), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__cnn_head_init(&head, &hps, NULL, f, nc), GTL_STATUS_OK);
    assert_true(gtl__paramset_find(&hps, "head.weight") >= 0);
    assert_int_equal(gtl__paramset_finalize(&hps), GTL_STATUS_OK);
    assert_int_equal(gtl__paramset_alloc_grad(&hps), GTL_STATUS_OK);
    gtl__rng rng;
    gtl__rng_seed(&rng, 4);
    assert_int_equal(gtl__cnn_head_init_weights(&head, &rng), GTL_STATUS_OK);
    float *img = random_images(env, nb, c.image_size);
    int64_t labels[8] = {0, 1, 2, 3, 0, 1, 2, 3};
    int64_t bad[8] = {0, 1, 2, 3, 0, 1, 2, 4};

    int64_t ne[4] = {nb, 3, c.image_size, c.image_size};
    gtl__tensor *x, *loss;
    int64_t correct = -1;
    gtl__tape_reset(env->tape);
    env->tape->training = true;
    assert_int_equal(gtl__tape_leaf(env->tape, 4, ne, img, false, &x), GTL_STATUS_OK);
    assert_int_equal(gtl__cnn_supervised_loss(&m.cnn, &head, env->tape, x, bad, &loss,
                                              &correct), GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "label 4"));
    assert_null(loss);
    assert_int_equal(env->tape->n_nodes, 0);

    double first = 0.0, last = 0.0;
    for (int step = 0; step < 30; step++) {
        gtl__tape_reset(env->tape);
        env->tape->training = true;
        gtl__paramset_zero_grad(&m.ps);
        gtl__paramset_zero_grad(&hps);
        assert_int_equal(gtl__tape_leaf(env->tape, 4, ne, img, false, &x), GTL_STATUS_OK);
        if (gtl__cnn_supervised_loss(&m.cnn, &head, env->tape, x, labels, &loss, &correct) !=
            GTL_STATUS_OK)
            fail_msg("supervised loss: %s", gtl_last_error());
        assert_true(correct >= 0 && correct <= nb);
        if (step == 0) {
            first = loss->data[0];
            /* A fresh head: the loss is near log(C). */
            assert_true(fabs(first - log((double)nc)) < 1.0);
        }
        last = loss->data[0];
        assert_int_equal(gtl__tape_backward(env->tape, loss), GTL_STATUS_OK);
        gtl__paramset *sets[2] = {&m.ps, &hps};
        for (int k = 0; k < 2; k++)
            for (int64_t i = 0; i < sets[k]->n_total; i++)
                sets[k]->data[i] -= 0.2f * sets[k]->grad[i];
    }
    printf("# supervised: loss %.4f -> %.4f, %lld / %lld correct at the last step\n", first,
           last, (long long)correct, (long long)nb);
    assert_true(last < 0.5 * first);
    gtl__tape_reset(env->tape);
    env->tape->training = false;
    free(img);
    gtl__paramset_fini(&hps);
    model_free(&m);
}

static void test_bad_args(void **state)
{
    gt_env *env = *state;
    gtl__cnn_config c;
    assert_int_equal(gtl__cnn_preset("tiny", &c), GTL_STATUS_OK);
    gtl__cnn_config bad = c;
    bad.stages = 0;
    assert_int_equal(gtl__cnn_config_check(&bad), GTL_STATUS_INVALID_ARG);
    bad = c;
    bad.width = 0;
    assert_int_equal(gtl__cnn_config_check(&bad), GTL_STATUS_INVALID_ARG);
    bad = c;
    bad.blocks = 0;
    assert_int_equal(gtl__cnn_config_check(&bad), GTL_STATUS_INVALID_ARG);
    bad = c;
    bad.image_size = 1;
    assert_int_equal(gtl__cnn_config_check(&bad), GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "image size"));

    model m;
    gtl__paramset_init(&m.ps);
    assert_int_equal(gtl__cnn_init(&m.cnn, &bad, &m.ps, NULL), GTL_STATUS_INVALID_ARG);
    assert_int_equal(m.ps.n_params, 0);
    gtl__cnn_fini(&m.cnn);
    gtl__paramset_fini(&m.ps);

    model_make(&m, &c, 1);
    assert_int_equal(gtl__cnn_freeze_first(&m.cnn, 3), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__cnn_freeze_first(&m.cnn, -1), GTL_STATUS_INVALID_ARG);
    gtl__tensor *x, *y = (gtl__tensor *)1;
    int64_t ne[4] = {2, 3, 15, 16};
    gtl__tape_reset(env->tape);
    assert_int_equal(gtl__tape_leaf(env->tape, 4, ne, NULL, true, &x), GTL_STATUS_OK);
    assert_int_equal(gtl__cnn_forward(&m.cnn, env->tape, x, &y), GTL_STATUS_INVALID_ARG);
    assert_null(y);
    assert_non_null(strstr(gtl_last_error(), "(2, 3, 15, 16)"));
    assert_int_equal(gtl__cnn_forward(&m.cnn, env->tape, NULL, &y), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__cnn_forward(NULL, env->tape, x, &y), GTL_STATUS_INVALID_ARG);
    /* Training mode needs B >= 2. */
    int64_t ne1[4] = {1, 3, 16, 16};
    assert_int_equal(gtl__tape_leaf(env->tape, 4, ne1, NULL, true, &x), GTL_STATUS_OK);
    env->tape->training = true;
    assert_int_equal(gtl__cnn_forward(&m.cnn, env->tape, x, &y), GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "at least 2"));
    assert_int_equal(env->tape->n_nodes, 0);
    /* ... but a fully frozen network runs in evaluation mode. */
    assert_int_equal(gtl__cnn_freeze_first(&m.cnn, 2), GTL_STATUS_OK);
    assert_int_equal(gtl__cnn_forward(&m.cnn, env->tape, x, &y), GTL_STATUS_OK);
    assert_true(env->tape->training);
    env->tape->training = false;
    gtl__tape_reset(env->tape);
    model_free(&m);
}

/* resnet_small at its real size (B = 2): forward and backward, with the
 * oneDNN implementations printed. */
static void test_prims_default(void **state)
{
    gt_env *env = *state;
    gtl__cnn_config c;
    gtl__cnn_config_default(&c);
    model m;
    model_make(&m, &c, 2);
    float *img = random_images(env, 2, c.image_size);
    gtl__tensor *y = run_forward(env, &m, img, 2, true, true, true);
    float *r = malloc((size_t)y->n * sizeof(float));
    gt_fill(env, r, y->n, -1.0f, 1.0f);
    assert_int_equal(gtl__tape_backward_seed(env->tape, y, r), GTL_STATUS_OK);
    y = run_forward(env, &m, img, 2, false, false, false);
    /* One line per (op, implementation), with the number of primitives. */
    int64_t np = gtl__ctx_num_prims(env->ctx);
    for (int64_t i = 0; i < np; i++) {
        const char *op, *impl, *op2, *impl2;
        bool hot, seen = false;
        int count = 0;
        gtl__ctx_prim_info(env->ctx, i, &op, &impl, &hot, NULL);
        for (int64_t k = 0; k < np && !seen; k++) {
            gtl__ctx_prim_info(env->ctx, k, &op2, &impl2, NULL, NULL);
            if (strcmp(op, op2) == 0 && strcmp(impl, impl2) == 0) {
                seen = k < i;
                count++;
            }
        }
        if (!seen)
            printf("# prim %-20s %-24s hot %d (%d primitives)\n", op, impl, hot, count);
    }
    assert_int_equal(gtl__ctx_num_hot_ref(env->ctx), 0);
    gtl__tape_reset(env->tape);
    env->tape->training = false;
    free(r);
    free(img);
    model_free(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_config_and_names, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_init_weights, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_forward_reference, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_gradcheck_train, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_gradcheck_eval, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_freeze, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_supervised, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_bad_args, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_prims_default, gt_setup, gt_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
