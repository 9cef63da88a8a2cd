/* The public backbone API (lib/api/api_backbone*.c) on the tiny ViT:
 * settings, inference against the tape forward, supervised training steps
 * (frozen blocks untouched, NaN -> NUMERIC with nothing changed), bitwise
 * checkpoint round trips, safetensors import in Hugging Face and OpenAI
 * namings written here from the backbone's own weights (shape and name
 * errors), file embedding with bad files, and the feature cache (hits,
 * corrupt entries, invalidation by training), the residual CNN behind the
 * same API (frozen stages and their statistics untouched by training,
 * NaN rollback of the running statistics, round trip), and the image
 * functions (augmentation replay). SHA-256 against FIPS 180-2 vectors. The
 * PyTorch parity of the import is test_backbone_hf. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <dirent.h>
#include <zlib.h>

#include "api/api_backbone.h"
#include "gtl/gtl.h"
#include "gtl_test.h"
#include "io/image.h"

static char tmpdir[256];

static void path_in(char *out, size_t cap, const char *name)
{
    snprintf(out, cap, "%s/%s", tmpdir, name);
}

#define OK(call) assert_int_equal((call), GTL_STATUS_OK)

/* A tiny-ViT backbone, its image side and feature size. */
static gtl_backbone *tiny(int64_t *s, int64_t *f)
{
    gtl_backbone *bb = NULL;
    OK(gtl_backbone_create(GTL_BACKBONE_VIT_TINY, &bb));
    OK(gtl_backbone_get_i64(bb, GTL_BACKBONE_IMAGE_SIZE, s));
    OK(gtl_backbone_get_i64(bb, GTL_BACKBONE_FEATURE_DIM, f));
    return bb;
}

static float *random_images(gt_env *env, int64_t n, int64_t s)
{
    float *x = malloc((size_t)(n * 3 * s * s) * sizeof(float));
    gt_fill(env, x, n * 3 * s * s, -2.0f, 2.0f);
    return x;
}

/* ---- SHA-256 ------------------------------------------------------------------ */

static void check_digest(const void *data, size_t n, const char *want)
{
    uint8_t d[32];
    char h[65];
    gtl__sha256_digest(data, n, d);
    for (int i = 0; i < 32; i++)
        snprintf(h + 2 * i, 3, "%02x", d[i]);
    assert_string_equal(h, want);
}

static void test_sha256(void **state)
{
    (void)state;
    check_digest("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    check_digest("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    check_digest(m, strlen(m), "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    /* A million 'a', fed in odd pieces through the incremental interface. */
    char *a = malloc(1000000);
    memset(a, 'a', 1000000);
    gtl__sha256 s;
    uint8_t d[32], e[32];
    gtl__sha256_init(&s);
    for (size_t off = 0, k = 1; off < 1000000; off += k, k = k * 7 % 1000 + 1)
        gtl__sha256_update(&s, a + off, off + k > 1000000 ? 1000000 - off : k);
    gtl__sha256_final(&s, d);
    gtl__sha256_digest(a, 1000000, e);
    assert_memory_equal(d, e, 32);
    check_digest(a, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    free(a);
}

/* ---- settings ------------------------------------------------------------------- */

static void test_settings(void **state)
{
    (void)state;
    int64_t s, f, v;
    gtl_backbone *bb = tiny(&s, &f);
    assert_int_equal(s, 64);
    assert_int_equal(f, 64 + 32);
    OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_FEATURE_PARTS, 1));
    OK(gtl_backbone_get_i64(bb, GTL_BACKBONE_FEATURE_DIM, &v));
    assert_int_equal(v, 64);
    OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_FEATURE_PARTS, 2));
    OK(gtl_backbone_get_i64(bb, GTL_BACKBONE_FEATURE_DIM, &v));
    assert_int_equal(v, 32);
    assert_int_equal(gtl_backbone_set_i64(bb, GTL_BACKBONE_FEATURE_PARTS, 4),
                     GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "FEATURE_PARTS"));
    assert_int_equal(gtl_backbone_set_i64(bb, GTL_BACKBONE_IMAGE_SIZE, 32),
                     GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "read-only"));
    assert_int_equal(gtl_backbone_set_i64(bb, GTL_BACKBONE_FEATURE_DIM, 32),
                     GTL_STATUS_INVALID_ARG);
    OK(gtl_backbone_get_i64(bb, GTL_BACKBONE_TRAINABLE_BLOCKS, &v));
    assert_int_equal(v, 0);
    OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_TRAINABLE_BLOCKS, 2));
    assert_int_equal(gtl_backbone_set_i64(bb, GTL_BACKBONE_TRAINABLE_BLOCKS, 3),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_backbone_set_i64(bb, GTL_BACKBONE_NUM_CLASSES, 1),
                     GTL_STATUS_INVALID_ARG);
    OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_NUM_CLASSES, 5));
    OK(gtl_backbone_get_i64(bb, GTL_BACKBONE_NUM_CLASSES, &v));
    assert_int_equal(v, 5);
    /* The head follows F when FEATURE_PARTS changes. */
    assert_int_equal(bb->ps->params[bb->head_w].ne[1], 32);
    OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_FEATURE_PARTS, 3));
    assert_int_equal(bb->ps->params[bb->head_w].ne[1], 96);
    /* The rebuild kept the trainable setting. */
    assert_false(bb->ps->frozen[bb->n_net_params - 1]);
    OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_NUM_CLASSES, 0));
    assert_int_equal(bb->head_w, -1);
    OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_BF16, 1));
    assert_int_equal(gtl_backbone_set_i64(bb, GTL_BACKBONE_BATCH_SIZE, 0),
                     GTL_STATUS_INVALID_ARG);
    OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_BATCH_SIZE, 3));
    assert_int_equal(gtl_backbone_set_i64(bb, (gtl_backbone_param)99, 1),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_backbone_get_i64(bb, (gtl_backbone_param)-1, &v),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_backbone_get_i64(NULL, GTL_BACKBONE_SEED, &v), GTL_STATUS_INVALID_ARG);
    assert_int_equal(v, 0);
    assert_int_equal(gtl_backbone_get_i64(bb, GTL_BACKBONE_SEED, NULL), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_backbone_set_i64(NULL, GTL_BACKBONE_SEED, 1), GTL_STATUS_INVALID_ARG);
    gtl_backbone_destroy(bb);
    assert_int_equal(gtl_backbone_create((gtl_backbone_preset)9, &bb), GTL_STATUS_INVALID_ARG);
    assert_null(bb);
    assert_int_equal(gtl_backbone_create(GTL_BACKBONE_VIT_TINY, NULL), GTL_STATUS_INVALID_ARG);
    gtl_backbone_destroy(NULL);
}

/* SEED on a fresh backbone re-initialises it: create + SEED s is a function of s. */
static void test_seed(void **state)
{
    gt_env *env = *state;
    int64_t s, f;
    gtl_backbone *a = tiny(&s, &f), *b = tiny(&s, &f), *c = tiny(&s, &f);
    OK(gtl_backbone_set_i64(a, GTL_BACKBONE_SEED, 5));
    OK(gtl_backbone_set_i64(b, GTL_BACKBONE_SEED, 5));
    float *x = random_images(env, 1, s);
    float *fa = malloc((size_t)f * sizeof(float)), *fb = malloc((size_t)f * sizeof(float));
    float *fc = malloc((size_t)f * sizeof(float));
    OK(gtl_backbone_embed(a, x, 1, fa, (size_t)f));
    OK(gtl_backbone_embed(b, x, 1, fb, (size_t)f));
    OK(gtl_backbone_embed(c, x, 1, fc, (size_t)f));
    assert_memory_equal(fa, fb, (size_t)f * sizeof(float));
    assert_memory_not_equal(fa, fc, (size_t)f * sizeof(float));
    free(x);
    free(fa);
    free(fb);
    free(fc);
    gtl_backbone_destroy(a);
    gtl_backbone_destroy(b);
    gtl_backbone_destroy(c);
}

/* ---- inference ------------------------------------------------------------------- */

static void test_embed(void **state)
{
    gt_env *env = *state;
    int64_t s, f, n = 5;
    gtl_backbone *bb = tiny(&s, &f);
    OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_BATCH_SIZE, 2));
    float *x = random_images(env, n, s);
    float *got = malloc((size_t)(n * f) * sizeof(float));
    OK(gtl_backbone_embed(bb, x, n, got, (size_t)(n * f)));
    /* The tape forward of the same network, all at once. */
    gtl__tape *t = bb->tape;
    gtl__tape_reset(t);
    t->grad_enabled = false;
    gtl__tensor *xt, *y;
    int64_t ne[4] = {n, 3, s, s};
    OK(gtl__tape_leaf(t, 4, ne, x, false, &xt));
    OK(bb->arch->forward(bb, xt, &y));
    gt_assert_close(got, y->data, n * f, 1e-4, 1e-4, "embed vs tape forward");
    gtl__tape_reset(t);
    /* One image alone gives its row of the batch. */
    float *one = malloc((size_t)f * sizeof(float));
    OK(gtl_backbone_embed(bb, x + 4 * 3 * s * s, 1, one, (size_t)f));
    gt_assert_close(one, got + 4 * f, f, 1e-5, 1e-5, "single image");
    /* Bad arguments write nothing. */
    memset(one, 0x7f, (size_t)f * sizeof(float));
    assert_int_equal(gtl_backbone_embed(bb, x, 1, one, (size_t)f - 1), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_backbone_embed(bb, x, 0, one, (size_t)f), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_backbone_embed(bb, NULL, 1, one, (size_t)f), GTL_STATUS_INVALID_ARG);
    x[7] = NAN;
    assert_int_equal(gtl_backbone_embed(bb, x, 1, one, (size_t)f), GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "not finite"));
    for (int64_t i = 0; i < f; i++)
        assert_true(one[i] != one[i] || one[i] > 1e30f);
    free(one);
    free(x);
    free(got);
    gtl_backbone_destroy(bb);
}

/* ---- training -------------------------------------------------------------------- */

static void test_train_step(void **state)
{
    gt_env *env = *state;
    int64_t s, f, n = 4;
    gtl_backbone *bb = tiny(&s, &f);
    gtl_optimizer *opt = NULL;
    OK(gtl_optimizer_create(GTL_OPTIM_ADAM, &opt));
    OK(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_LR, 1e-3f));
    float *x = random_images(env, n, s);
    int64_t labels[4] = {0, 1, 2, 1};
    float stats[4];
    assert_int_equal(gtl_backbone_train_step(bb, opt, x, n, labels, stats, 4),
                     GTL_STATUS_BAD_STATE);
    assert_non_null(strstr(gtl_last_error(), "NUM_CLASSES"));
    OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_NUM_CLASSES, 3));
    assert_int_equal(gtl_backbone_train_step(bb, opt, x, n, labels, stats, 4),
                     GTL_STATUS_BAD_STATE);
    assert_non_null(strstr(gtl_last_error(), "nothing trainable"));
    OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_TRAINABLE_BLOCKS, 1));
    int64_t bad[4] = {0, 1, 3, 1};
    assert_int_equal(gtl_backbone_train_step(bb, opt, x, n, bad, stats, 4),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_backbone_train_step(bb, opt, x, 1, labels, stats, 4),
                     GTL_STATUS_INVALID_ARG);

    gtl__paramset *ps = bb->ps;
    float *before = malloc((size_t)ps->n_total * sizeof(float));
    memcpy(before, ps->data, (size_t)ps->n_total * sizeof(float));
    float first = 0.0f, last = 0.0f;
    for (int i = 0; i < 8; i++) {
        OK(gtl_backbone_train_step(bb, opt, x, n, labels, stats, 4));
        if (i == 0)
            first = stats[0];
        last = stats[0];
        assert_true(stats[1] >= 0.0f && stats[1] <= 1.0f);
        assert_true(stats[2] > 0.0f);
        assert_float_equal(stats[3], 1e-3f, 1e-9f);
    }
    printf("# train: loss %.4f -> %.4f\n", first, last);
    assert_true(last < first);
    /* The stem and block 0 are frozen; block 1, ln_post, proj and the head moved. */
    for (int64_t i = 0; i < ps->n_params; i++) {
        bool same = memcmp(before + ps->offsets[i], ps->params[i].data,
                           (size_t)ps->params[i].n * sizeof(float)) == 0;
        bool frozen = strncmp(ps->names[i], "transformer.resblocks.1.", 24) != 0 &&
                      strncmp(ps->names[i], "ln_post", 7) != 0 &&
                      strcmp(ps->names[i], "proj") != 0 && strncmp(ps->names[i], "head.", 5) != 0;
        if (frozen != same)
            fail_msg("%s: %s", ps->names[i], same ? "did not change" : "changed while frozen");
    }

    /* A NaN weight: NUMERIC, nothing changed (parameters, optimizer, rng). */
    int64_t steps0 = 0, steps1 = 0;
    OK(gtl_optimizer_num_steps(opt, &steps0));
    gtl__tensor *hw = &ps->params[bb->head_w];
    hw->data[0] = NAN;
    memcpy(before, ps->data, (size_t)ps->n_total * sizeof(float));
    gtl__rng rng0 = bb->rng;
    assert_int_equal(gtl_backbone_train_step(bb, opt, x, n, labels, stats, 4),
                     GTL_STATUS_NUMERIC);
    assert_non_null(strstr(gtl_last_error(), "nothing changed"));
    assert_memory_equal(before, ps->data, (size_t)ps->n_total * sizeof(float));
    assert_memory_equal(&rng0, &bb->rng, sizeof rng0);
    OK(gtl_optimizer_num_steps(opt, &steps1));
    assert_int_equal(steps0, steps1);
    for (int i = 0; i < 4; i++)
        assert_true(stats[i] == 0.0f);
    free(before);
    free(x);
    gtl_optimizer_destroy(opt);
    gtl_backbone_destroy(bb);
}

/* ---- supervised contrastive loss ----------------------------------------------- */

/* The loss of backbone.h's gtl_backbone_loss in double from features f (n, F),
 * and the leave-one-out nearest-neighbour accuracy. */
static double supcon_ref(const float *f, int64_t n, int64_t d, const int64_t *y, double tau,
                         double *nn_acc)
{
    double *z = calloc((size_t)(n * d), sizeof(double));
    for (int64_t i = 0; i < n; i++) {
        double nr = 0.0;
        for (int64_t k = 0; k < d; k++)
            nr += (double)f[i * d + k] * f[i * d + k];
        nr = sqrt(nr);
        for (int64_t k = 0; k < d; k++)
            z[i * d + k] = f[i * d + k] / nr;
    }
    double total = 0.0;
    int64_t anchors = 0, correct = 0;
    for (int64_t i = 0; i < n; i++) {
        double lse = 0.0, best = -2.0;
        int64_t np = 0, arg = -1;
        double *sim = calloc((size_t)n, sizeof(double));
        for (int64_t j = 0; j < n; j++) {
            for (int64_t k = 0; k < d; k++)
                sim[j] += z[i * d + k] * z[j * d + k];
            if (j == i)
                continue;
            lse += exp(sim[j] / tau);
            if (sim[j] > best) {
                best = sim[j];
                arg = j;
            }
        }
        lse = log(lse);
        correct += y[arg] == y[i];
        double li = 0.0;
        for (int64_t j = 0; j < n; j++)
            if (j != i && y[j] == y[i]) {
                li += -(sim[j] / tau - lse);
                np++;
            }
        if (np > 0) {
            total += li / (double)np;
            anchors++;
        }
        free(sim);
    }
    free(z);
    *nn_acc = (double)correct / (double)n;
    return anchors > 0 ? total / (double)anchors : 0.0;
}

/* The loss and accuracy statistics of one step that changes nothing (SGD,
 * lr 0, no weight decay), and the gradient norm. */
static void probe(gtl_backbone *bb, gtl_optimizer *sgd, const float *x, int64_t n,
                  const int64_t *y, float lr, float stats[4])
{
    OK(gtl_optimizer_set_f32(sgd, GTL_OPTIM_PARAM_LR, lr));
    OK(gtl_backbone_train_step(bb, sgd, x, n, y, stats, 4));
}

static void test_train_supcon(void **state)
{
    gt_env *env = *state;
    int64_t s, f, n = 8;
    gtl_backbone *bb = tiny(&s, &f);
    /* settings */
    float v = 0.0f;
    OK(gtl_backbone_get_f32(bb, GTL_BACKBONE_TEMPERATURE, &v));
    assert_float_equal(v, 0.1f, 0.0f);
    OK(gtl_backbone_get_f32(bb, GTL_BACKBONE_SUPCON_WEIGHT, &v));
    assert_float_equal(v, 1.0f, 0.0f);
    int64_t iv = -1;
    OK(gtl_backbone_get_i64(bb, GTL_BACKBONE_LOSS, &iv));
    assert_int_equal(iv, GTL_BACKBONE_LOSS_CE);
    assert_int_equal(gtl_backbone_set_f32(bb, GTL_BACKBONE_TEMPERATURE, 0.0f),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_backbone_set_f32(bb, GTL_BACKBONE_TEMPERATURE, NAN),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_backbone_set_f32(bb, GTL_BACKBONE_SUPCON_WEIGHT, -1.0f),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_backbone_set_f32(bb, GTL_BACKBONE_LOSS, 1.0f), GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "integer"));
    assert_int_equal(gtl_backbone_set_i64(bb, GTL_BACKBONE_TEMPERATURE, 1),
                     GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "f32"));
    assert_int_equal(gtl_backbone_get_i64(bb, GTL_BACKBONE_TEMPERATURE, &iv),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_backbone_get_f32(bb, GTL_BACKBONE_LOSS, &v), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_backbone_get_f32(bb, (gtl_backbone_param)99, &v),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_backbone_get_f32(NULL, GTL_BACKBONE_TEMPERATURE, &v),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_backbone_set_i64(bb, GTL_BACKBONE_LOSS, 3), GTL_STATUS_INVALID_ARG);
    OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_LOSS, GTL_BACKBONE_LOSS_SUPCON));
    OK(gtl_backbone_set_f32(bb, GTL_BACKBONE_TEMPERATURE, 0.5f));
    OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_TRAINABLE_BLOCKS, 2));

    /* Labels are ids (no head, no NUM_CLASSES); 77 has no positive. */
    float *x = random_images(env, n, s);
    int64_t y[8] = {3, 3, 9, 9, 9, 0, 0, 77}, neg[8] = {3, 3, 9, 9, 9, 0, 0, -1};
    gtl_optimizer *sgd = NULL;
    OK(gtl_optimizer_create(GTL_OPTIM_SGD, &sgd));
    assert_int_equal(gtl_backbone_train_step(bb, sgd, x, n, neg, NULL, 0),
                     GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "negative"));

    /* The value against the reference on the same features (the ViT has no
     * batch statistics: training and inference features agree). */
    float *feat = malloc((size_t)(n * f) * sizeof(float));
    OK(gtl_backbone_embed(bb, x, n, feat, (size_t)(n * f)));
    double acc_ref = 0.0, ref = supcon_ref(feat, n, f, y, 0.5, &acc_ref);
    float st0[4], st1[4], st2[4];
    probe(bb, sgd, x, n, y, 0.0f, st0);
    printf("# supcon: loss %.6f (reference %.6f), nn accuracy %.3f, |g| %.4g\n", st0[0], ref,
           st0[1], st0[2]);
    assert_true(fabs(st0[0] - ref) <= 1e-4 * fabs(ref) + 1e-6);
    assert_float_equal(st0[1], acc_ref, 1e-6);
    assert_true(st0[2] > 0.0f);

    /* The gradient: one SGD step of lr eta along -g lowers the loss by
     * eta |g|^2 to first order (the whole composition, op by op). */
    double g2 = (double)st0[2] * st0[2], eta = 2e-3 / g2;
    probe(bb, sgd, x, n, y, (float)eta, st1);
    assert_float_equal(st1[0], st0[0], 1e-6); /* the loss before the update */
    probe(bb, sgd, x, n, y, 0.0f, st2);
    double slope = (st0[0] - st2[0]) / eta;
    printf("# supcon: directional derivative %.5g, |g|^2 %.5g\n", slope, g2);
    assert_true(fabs(slope - g2) <= 0.05 * g2);

    /* CE + w SupCon = CE + w * the contrastive term. */
    int64_t yc[8] = {0, 0, 1, 1, 1, 2, 2, 3};
    OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_NUM_CLASSES, 4));
    OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_LOSS, GTL_BACKBONE_LOSS_CE));
    probe(bb, sgd, x, n, yc, 0.0f, st0);
    OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_LOSS, GTL_BACKBONE_LOSS_CE_SUPCON));
    OK(gtl_backbone_set_f32(bb, GTL_BACKBONE_SUPCON_WEIGHT, 2.5f));
    probe(bb, sgd, x, n, yc, 0.0f, st1);
    OK(gtl_backbone_embed(bb, x, n, feat, (size_t)(n * f)));
    ref = supcon_ref(feat, n, f, yc, 0.5, &acc_ref);
    assert_true(fabs(st1[0] - (st0[0] + 2.5 * ref)) <= 1e-4 * fabs(st1[0]));
    assert_float_equal(st1[1], st0[1], 0.0f); /* the head's accuracy */

    /* The settings survive a checkpoint; files without them read the defaults. */
    char path[512];
    path_in(path, sizeof path, "supcon.gtlbb");
    OK(gtl_backbone_save(bb, path));
    gtl_backbone *bb2 = NULL;
    OK(gtl_backbone_load(path, &bb2));
    OK(gtl_backbone_get_i64(bb2, GTL_BACKBONE_LOSS, &iv));
    assert_int_equal(iv, GTL_BACKBONE_LOSS_CE_SUPCON);
    OK(gtl_backbone_get_f32(bb2, GTL_BACKBONE_TEMPERATURE, &v));
    assert_float_equal(v, 0.5f, 0.0f);
    OK(gtl_backbone_get_f32(bb2, GTL_BACKBONE_SUPCON_WEIGHT, &v));
    assert_float_equal(v, 2.5f, 0.0f);
    gtl_backbone_destroy(bb2);

    unlink(path);
    free(feat);
    free(x);
    gtl_optimizer_destroy(sgd);
    gtl_backbone_destroy(bb);
}

/* ---- checkpoints ----------------------------------------------------------------- */

static void read_all(const char *path, unsigned char **buf, size_t *n)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    *n = (size_t)ftell(fp);
    fseek(fp, 0, SEEK_SET);
    *buf = malloc(*n ? *n : 1);
    assert_int_equal(fread(*buf, 1, *n, fp), *n);
    fclose(fp);
}

static void write_all(const char *path, const void *buf, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, n, fp), n);
    fclose(fp);
}

static void test_save_load(void **state)
{
    gt_env *env = *state;
    int64_t s, f, n = 4;
    gtl_backbone *bb = tiny(&s, &f);
    OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_SEED, 11));
    OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_NUM_CLASSES, 3));
    OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_TRAINABLE_BLOCKS, 2));
    OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_FEATURE_PARTS, 2));
    OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_BATCH_SIZE, 3));
    OK(gtl_backbone_get_i64(bb, GTL_BACKBONE_FEATURE_DIM, &f));
    gtl_optimizer *opt = NULL;
    OK(gtl_optimizer_create(GTL_OPTIM_SGD, &opt));
    float *x = random_images(env, n, s);
    int64_t labels[4] = {2, 1, 0, 1};
    OK(gtl_backbone_train_step(bb, opt, x, n, labels, NULL, 0));
    char p1[512], p2[512];
    path_in(p1, sizeof p1, "a.gtlbb");
    path_in(p2, sizeof p2, "b.gtlbb");
    OK(gtl_backbone_save(bb, p1));
    gtl_backbone *bb2 = NULL;
    OK(gtl_backbone_load(p1, &bb2));
    OK(gtl_backbone_save(bb2, p2));
    unsigned char *b1, *b2;
    size_t n1, n2;
    read_all(p1, &b1, &n1);
    read_all(p2, &b2, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);
    assert_int_equal(bb->ps->n_total, bb2->ps->n_total);
    assert_memory_equal(bb->ps->data, bb2->ps->data, (size_t)bb->ps->n_total * sizeof(float));
    for (int k = 0; k < GTL__BB_NKEYS; k++) {
        int64_t v1, v2;
        float f1, f2;
        if (gtl_backbone_get_i64(bb, (gtl_backbone_param)k, &v1) == GTL_STATUS_OK) {
            OK(gtl_backbone_get_i64(bb2, (gtl_backbone_param)k, &v2));
            assert_int_equal(v1, v2);
        } else {
            OK(gtl_backbone_get_f32(bb, (gtl_backbone_param)k, &f1));
            OK(gtl_backbone_get_f32(bb2, (gtl_backbone_param)k, &f2));
            assert_float_equal(f1, f2, 0.0f);
        }
    }
    assert_memory_equal(gtl__bb_checksum(bb), gtl__bb_checksum(bb2), 32);
    float *f1 = malloc((size_t)(n * f) * sizeof(float)), *f2 = malloc((size_t)(n * f) * 4);
    OK(gtl_backbone_embed(bb, x, n, f1, (size_t)(n * f)));
    OK(gtl_backbone_embed(bb2, x, n, f2, (size_t)(n * f)));
    assert_memory_equal(f1, f2, (size_t)(n * f) * sizeof(float));

    /* Load errors. */
    gtl_backbone *bad = (gtl_backbone *)1;
    char p3[512];
    path_in(p3, sizeof p3, "missing.gtlbb");
    assert_int_equal(gtl_backbone_load(p3, &bad), GTL_STATUS_IO);
    assert_null(bad);
    path_in(p3, sizeof p3, "garbage.bin");
    write_all(p3, "0123456789abcdefghijkl", 22);
    assert_int_equal(gtl_backbone_load(p3, &bad), GTL_STATUS_FORMAT);
    assert_non_null(strstr(gtl_last_error(), "garbage.bin"));
    write_all(p3, "abc", 3);
    assert_int_equal(gtl_backbone_load(p3, &bad), GTL_STATUS_FORMAT);
    write_all(p3, b1, n1 / 2); /* truncated checkpoint */
    assert_int_equal(gtl_backbone_load(p3, &bad), GTL_STATUS_FORMAT);
    b1[n1 - 3] ^= 0x40;       /* a flipped payload bit: its CRC fails */
    write_all(p3, b1, n1);
    assert_int_equal(gtl_backbone_load(p3, &bad), GTL_STATUS_FORMAT);
    assert_null(bad);
    /* A model checkpoint is not a backbone. */
    gtl_model *m = NULL;
    OK(gtl_model_create(&m));
    OK(gtl_model_set_i64(m, GTL_MODEL_FEATURE_DIM, 8));
    OK(gtl_model_init(m));
    OK(gtl_model_save(m, NULL, p3));
    assert_int_equal(gtl_backbone_load(p3, &bad), GTL_STATUS_FORMAT);
    assert_non_null(strstr(gtl_last_error(), "libgtl-model"));
    gtl_model_destroy(m);
    assert_int_equal(gtl_backbone_load(NULL, &bad), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_backbone_save(NULL, p3), GTL_STATUS_INVALID_ARG);
    path_in(p3, sizeof p3, "no/such/dir/x.gtlbb");
    assert_int_equal(gtl_backbone_save(bb, p3), GTL_STATUS_IO);

    free(b1);
    free(b2);
    free(f1);
    free(f2);
    free(x);
    unlink(p1);
    unlink(p2);
    path_in(p3, sizeof p3, "garbage.bin");
    unlink(p3);
    gtl_optimizer_destroy(opt);
    gtl_backbone_destroy(bb);
    gtl_backbone_destroy(bb2);
}

/* ---- safetensors import ------------------------------------------------------------ */

typedef struct st_entry {
    char name[128];
    int nd;
    int64_t ne[4];
    float *data; /* owned */
} st_entry;

typedef struct st_file {
    st_entry e[256];
    int n;
    char meta[256]; /* JSON members of __metadata__, or "" */
} st_file;

static st_entry *st_add(st_file *sf, const char *name, int nd, const int64_t *ne,
                        const float *data)
{
    st_entry *e = &sf->e[sf->n++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->nd = nd;
    int64_t n = 1;
    for (int i = 0; i < nd; i++) {
        e->ne[i] = ne[i];
        n *= ne[i];
    }
    e->data = malloc((size_t)n * sizeof(float));
    memcpy(e->data, data, (size_t)n * sizeof(float));
    return e;
}

static int64_t st_numel(const st_entry *e)
{
    int64_t n = 1;
    for (int i = 0; i < e->nd; i++)
        n *= e->ne[i];
    return n;
}

static void st_write(st_file *sf, const char *path)
{
    char *h = malloc(65536);
    size_t k = 0;
    uint64_t off = 0;
    k += (size_t)snprintf(h + k, 65536 - k, "{\"__metadata__\":{%s}", sf->meta);
    for (int i = 0; i < sf->n; i++) {
        st_entry *e = &sf->e[i];
        k += (size_t)snprintf(h + k, 65536 - k, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[", e->name);
        for (int d = 0; d < e->nd; d++)
            k += (size_t)snprintf(h + k, 65536 - k, "%s%lld", d ? "," : "", (long long)e->ne[d]);
        uint64_t nb = (uint64_t)st_numel(e) * 4;
        k += (size_t)snprintf(h + k, 65536 - k, "],\"data_offsets\":[%llu,%llu]}",
                              (unsigned long long)off, (unsigned long long)(off + nb));
        off += nb;
    }
    k += (size_t)snprintf(h + k, 65536 - k, "}");
    FILE *fp = fopen(path, "wb");
    uint64_t hl = k;
    fwrite(&hl, 8, 1, fp);
    fwrite(h, 1, k, fp);
    for (int i = 0; i < sf->n; i++)
        fwrite(sf->e[i].data, 4, (size_t)st_numel(&sf->e[i]), fp);
    fclose(fp);
    free(h);
}

static void st_free(st_file *sf)
{
    for (int i = 0; i < sf->n; i++)
        free(sf->e[i].data);
    sf->n = 0;
}

static const gtl__tensor *param(gtl_backbone *bb, const char *name)
{
    int64_t i = gtl__paramset_find(bb->ps, name);
    if (i < 0)
        fail_msg("no parameter %s", name);
    return &bb->ps->params[i];
}

/* The backbone's weights in Hugging Face's naming. */
static void to_hf(gtl_backbone *bb, st_file *sf, int64_t layers)
{
    char src[128], dst[128];
    static const char *const plain[][2] = {
        {"conv1.weight", "vision_model.embeddings.patch_embedding.weight"},
        {"class_embedding", "vision_model.embeddings.class_embedding"},
        {"positional_embedding", "vision_model.embeddings.position_embedding.weight"},
        {"ln_pre.weight", "vision_model.pre_layrnorm.weight"},
        {"ln_pre.bias", "vision_model.pre_layrnorm.bias"},
        {"ln_post.weight", "vision_model.post_layernorm.weight"},
        {"ln_post.bias", "vision_model.post_layernorm.bias"},
    };
    for (size_t i = 0; i < sizeof plain / sizeof plain[0]; i++) {
        const gtl__tensor *t = param(bb, plain[i][0]);
        st_add(sf, plain[i][1], t->nd, t->ne, t->data);
    }
    static const char *const blk[][2] = {
        {"ln_1.weight", "layer_norm1.weight"},       {"ln_1.bias", "layer_norm1.bias"},
        {"ln_2.weight", "layer_norm2.weight"},       {"ln_2.bias", "layer_norm2.bias"},
        {"attn.out_proj.weight", "self_attn.out_proj.weight"},
        {"attn.out_proj.bias", "self_attn.out_proj.bias"},
        {"mlp.c_fc.weight", "mlp.fc1.weight"},       {"mlp.c_fc.bias", "mlp.fc1.bias"},
        {"mlp.c_proj.weight", "mlp.fc2.weight"},     {"mlp.c_proj.bias", "mlp.fc2.bias"},
    };
    for (int64_t l = 0; l < layers; l++) {
        for (size_t i = 0; i < sizeof blk / sizeof blk[0]; i++) {
            snprintf(src, sizeof src, "transformer.resblocks.%lld.%s", (long long)l, blk[i][0]);
            snprintf(dst, sizeof dst, "vision_model.encoder.layers.%lld.%s", (long long)l,
                     blk[i][1]);
            const gtl__tensor *t = param(bb, src);
            st_add(sf, dst, t->nd, t->ne, t->data);
        }
        snprintf(src, sizeof src, "transformer.resblocks.%lld.attn.in_proj_weight", (long long)l);
        const gtl__tensor *iw = param(bb, src);
        snprintf(src, sizeof src, "transformer.resblocks.%lld.attn.in_proj_bias", (long long)l);
        const gtl__tensor *ib = param(bb, src);
        int64_t w = iw->ne[1];
        int64_t ne2[2] = {w, w};
        static const char *const qkv[3] = {"q_proj", "k_proj", "v_proj"};
        for (int j = 0; j < 3; j++) {
            snprintf(dst, sizeof dst, "vision_model.encoder.layers.%lld.self_attn.%s.weight",
                     (long long)l, qkv[j]);
            st_add(sf, dst, 2, ne2, iw->data + j * w * w);
            snprintf(dst, sizeof dst, "vision_model.encoder.layers.%lld.self_attn.%s.bias",
                     (long long)l, qkv[j]);
            st_add(sf, dst, 1, &w, ib->data + j * w);
        }
    }
    const gtl__tensor *p = param(bb, "proj");
    int64_t w = p->ne[0], d = p->ne[1];
    float *tr = malloc((size_t)(w * d) * sizeof(float));
    for (int64_t i = 0; i < w; i++)
        for (int64_t j = 0; j < d; j++)
            tr[j * w + i] = p->data[i * d + j];
    int64_t ne[2] = {d, w};
    st_add(sf, "visual_projection.weight", 2, ne, tr);
    free(tr);
}

static st_entry *st_find(st_file *sf, const char *name)
{
    for (int i = 0; i < sf->n; i++)
        if (strcmp(sf->e[i].name, name) == 0)
            return &sf->e[i];
    fail_msg("no entry %s", name);
    return NULL;
}

/* Loads path and checks its features equal ref's bitwise. */
static void same_features(gtl_backbone *ref, const char *path, const float *x, int64_t n)
{
    gtl_backbone *bb = NULL;
    if (gtl_backbone_load(path, &bb) != GTL_STATUS_OK)
        fail_msg("loading %s: %s", path, gtl_last_error());
    int64_t f;
    OK(gtl_backbone_get_i64(bb, GTL_BACKBONE_FEATURE_DIM, &f));
    float *a = malloc((size_t)(n * f) * 4), *b = malloc((size_t)(n * f) * 4);
    OK(gtl_backbone_embed(ref, x, n, a, (size_t)(n * f)));
    OK(gtl_backbone_embed(bb, x, n, b, (size_t)(n * f)));
    assert_memory_equal(a, b, (size_t)(n * f) * 4);
    assert_memory_equal(gtl__bb_checksum(ref), gtl__bb_checksum(bb), 32);
    free(a);
    free(b);
    gtl_backbone_destroy(bb);
}

static void expect_format(const char *path, const char *needle)
{
    gtl_backbone *bb = NULL;
    gtl_status st = gtl_backbone_load(path, &bb);
    if (st != GTL_STATUS_FORMAT || strstr(gtl_last_error(), needle) == NULL)
        fail_msg("load gave %s (%s), expected FORMAT naming %s", gtl_strerror(st),
                 gtl_last_error(), needle);
    assert_null(bb);
}

static void test_import_safetensors(void **state)
{
    gt_env *env = *state;
    int64_t s, f;
    gtl_backbone *ref = tiny(&s, &f);
    OK(gtl_backbone_set_i64(ref, GTL_BACKBONE_SEED, 3));
    float *x = random_images(env, 2, s);
    char path[512];
    path_in(path, sizeof path, "hf.safetensors");
    static st_file sf;
    memset(&sf, 0, sizeof sf);

    /* Hugging Face names; heads from metadata (64 / 64 would give 1, the tiny ViT has 2). */
    to_hf(ref, &sf, 2);
    snprintf(sf.meta, sizeof sf.meta, "\"num_attention_heads\":\"2\"");
    st_write(&sf, path);
    same_features(ref, path, x, 2);
    /* Without the metadata the head count is W / 64 = 1: another network. */
    sf.meta[0] = '\0';
    st_write(&sf, path);
    gtl_backbone *one = NULL;
    OK(gtl_backbone_load(path, &one));
    assert_memory_not_equal(gtl__bb_checksum(one), gtl__bb_checksum(ref), 32);
    gtl_backbone_destroy(one);
    setenv("GTL_CLIP_HEADS", "2", 1);
    same_features(ref, path, x, 2);
    setenv("GTL_CLIP_HEADS", "3", 1);
    expect_format(path, "do not divide");
    unsetenv("GTL_CLIP_HEADS");
    snprintf(sf.meta, sizeof sf.meta, "\"num_attention_heads\":\"2\"");

    /* A mis-shaped q_proj and a missing fc2 bias are named. */
    st_entry *q = st_find(&sf, "vision_model.encoder.layers.1.self_attn.k_proj.weight");
    q->ne[0] = 32;
    q->ne[1] = 128;
    st_write(&sf, path);
    expect_format(path, "vision_model.encoder.layers.1.self_attn.k_proj.weight has shape "
                        "(32, 128), expected (64, 64)");
    q->ne[0] = 64;
    q->ne[1] = 64;
    snprintf(st_find(&sf, "vision_model.encoder.layers.0.mlp.fc2.bias")->name, 128, "renamed");
    st_write(&sf, path);
    expect_format(path, "vision_model.encoder.layers.0.mlp.fc2.bias is missing");
    st_free(&sf);

    /* OpenAI names, bare and behind "visual.", with extra tensors ignored. */
    for (int pfx = 0; pfx < 2; pfx++) {
        char name[160];
        for (int64_t i = 0; i < ref->n_net_params; i++) {
            snprintf(name, sizeof name, "%s%s", pfx ? "visual." : "", ref->ps->names[i]);
            st_add(&sf, name, ref->ps->params[i].nd, ref->ps->params[i].ne,
                   ref->ps->params[i].data);
        }
        float z = 1.0f;
        int64_t one_ne = 1;
        st_add(&sf, "logit_scale", 1, &one_ne, &z);
        snprintf(sf.meta, sizeof sf.meta, "\"heads\":\"2\"");
        st_write(&sf, path);
        same_features(ref, path, x, 2);
        snprintf(name, sizeof name, "%sproj", pfx ? "visual." : "");
        st_find(&sf, name)->ne[1] = 16;
        st_find(&sf, name)->ne[0] = 128;
        st_write(&sf, path);
        expect_format(path, name);
        st_free(&sf);
    }
    unlink(path);
    free(x);
    gtl_backbone_destroy(ref);
}

/* ---- files and the cache ------------------------------------------------------------ */

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void png_chunk(FILE *fp, const char *type, const unsigned char *data, uint32_t n)
{
    unsigned char b[8];
    put_be32(b, n);
    memcpy(b + 4, type, 4);
    fwrite(b, 1, 8, fp);
    if (n)
        fwrite(data, 1, n, fp);
    uLong crc = crc32(0, (const Bytef *)type, 4);
    if (n)
        crc = crc32(crc, data, n);
    put_be32(b, (uint32_t)crc);
    fwrite(b, 1, 4, fp);
}

/* A w x h RGB PNG with a seeded pattern. */
static void write_png(const char *path, int w, int h, int seed)
{
    size_t raw_n = (size_t)h * (size_t)(1 + 3 * w);
    unsigned char *raw = malloc(raw_n);
    for (int y = 0; y < h; y++) {
        unsigned char *row = raw + (size_t)y * (size_t)(1 + 3 * w);
        row[0] = 0;
        for (int x = 0; x < 3 * w; x++)
            row[1 + x] = (unsigned char)((x * (seed + 3) + y * (7 * seed + 1)) & 255);
    }
    uLongf zn = compressBound(raw_n);
    unsigned char *z = malloc(zn);
    assert_int_equal(compress(z, &zn, raw, raw_n), Z_OK);
    FILE *fp = fopen(path, "wb");
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    fwrite(sig, 1, 8, fp);
    unsigned char ihdr[13];
    put_be32(ihdr, (uint32_t)w);
    put_be32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 8;
    ihdr[9] = 2;
    ihdr[10] = ihdr[11] = ihdr[12] = 0;
    png_chunk(fp, "IHDR", ihdr, 13);
    png_chunk(fp, "IDAT", z, (uint32_t)zn);
    png_chunk(fp, "IEND", NULL, 0);
    fclose(fp);
    free(raw);
    free(z);
}

static int count_entries(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        n += l > 5 && strcmp(e->d_name + l - 5, ".feat") == 0;
    }
    closedir(d);
    return n;
}

static void rm_entries(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[1024];
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
        unlink(p);
    }
    if (d != NULL)
        closedir(d);
    rmdir(dir);
}

static void test_embed_files(void **state)
{
    gt_env *env = *state;
    (void)env;
    int64_t s, f;
    gtl_backbone *bb = tiny(&s, &f);
    OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_BATCH_SIZE, 2));
    enum { N = 6 };
    char names[N][512];
    const char *paths[N];
    path_in(names[0], 512, "a.png");
    path_in(names[1], 512, "b.png");
    path_in(names[2], 512, "bad.png");
    path_in(names[3], 512, "c.png");
    path_in(names[4], 512, "missing.png");
    path_in(names[5], 512, "d.png");
    write_png(names[0], 80, 70, 1);
    write_png(names[1], 40, 90, 2);
    write_all(names[2], "\x89PNG\r\n\x1a\nthis is not a png", 25);
    write_png(names[3], 64, 64, 3);
    write_png(names[5], 100, 30, 4);
    for (int i = 0; i < N; i++)
        paths[i] = names[i];
    float *got = malloc((size_t)(N * f) * sizeof(float));
    float *want = malloc((size_t)(N * f) * sizeof(float));
    float *img = malloc((size_t)(3 * s * s) * sizeof(float));
    memset(want, 0, (size_t)(N * f) * sizeof(float));
    for (int i = 0; i < N; i++) {
        if (i == 2 || i == 4)
            continue;
        OK(gtl_image_load(paths[i], (int32_t)s, img, (size_t)(3 * s * s)));
        OK(gtl_backbone_embed(bb, img, 1, want + i * f, (size_t)f));
    }
    gtl_status sts[N];
    memset(got, 0x55, (size_t)(N * f) * sizeof(float));
    assert_int_equal(gtl_backbone_embed_files(bb, paths, N, got, (size_t)(N * f), sts),
                     GTL_STATUS_FORMAT);
    assert_non_null(strstr(gtl_last_error(), "bad.png"));
    assert_non_null(strstr(gtl_last_error(), "2 of 6"));
    gtl_status want_st[N] = {GTL_STATUS_OK, GTL_STATUS_OK, GTL_STATUS_FORMAT, GTL_STATUS_OK,
                             GTL_STATUS_IO, GTL_STATUS_OK};
    for (int i = 0; i < N; i++)
        assert_int_equal(sts[i], want_st[i]);
    gt_assert_close(got, want, N * f, 1e-5, 1e-5, "embed_files vs image_load + embed");
    for (int64_t k = 0; k < f; k++)
        assert_true(got[2 * f + k] == 0.0f && got[4 * f + k] == 0.0f);

    /* The cache: filled by the first call, used by the second. */
    char cdir[512];
    path_in(cdir, sizeof cdir, "cache/sub");
    OK(gtl_backbone_set_cache_dir(bb, cdir));
    assert_int_equal(gtl_backbone_embed_files(bb, paths, N, got, (size_t)(N * f), NULL),
                     GTL_STATUS_FORMAT);
    assert_int_equal(count_entries(cdir), 4);
    float *again = malloc((size_t)(N * f) * sizeof(float));
    assert_int_equal(gtl_backbone_embed_files(bb, paths, N, again, (size_t)(N * f), NULL),
                     GTL_STATUS_FORMAT);
    assert_memory_equal(got, again, (size_t)(N * f) * sizeof(float));
    /* Hits really come from the cache: a forged entry (valid CRC) is returned. */
    const char *good[2] = {names[0], names[1]};
    uint8_t fh[32], key[32];
    unsigned char *bytes;
    size_t nb;
    read_all(names[0], &bytes, &nb);
    gtl__sha256_digest(bytes, nb, fh);
    free(bytes);
    {
        gtl__image_prep_opts prep;
        gtl__image_prep_opts_default(&prep);
        prep.size = s;
        static const char tag[] = "libgtl-feature-cache-v1";
        int64_t extra[3] = {s, 3, 0};
        gtl__sha256 hs;
        gtl__sha256_init(&hs);
        gtl__sha256_update(&hs, tag, sizeof tag);
        gtl__sha256_update(&hs, fh, 32);
        gtl__sha256_update(&hs, gtl__bb_checksum(bb), 32);
        gtl__sha256_update(&hs, extra, sizeof extra);
        gtl__sha256_update(&hs, prep.mean, sizeof prep.mean);
        gtl__sha256_update(&hs, prep.std, sizeof prep.std);
        gtl__sha256_final(&hs, key);
    }
    char entry[1024], hx[65];
    for (int i = 0; i < 32; i++)
        snprintf(hx + 2 * i, 3, "%02x", key[i]);
    snprintf(entry, sizeof entry, "%s/%s.feat", cdir, hx);
    unsigned char *eb;
    size_t en;
    read_all(entry, &eb, &en);
    assert_int_equal(en, 48 + 4 * (size_t)f + 4);
    float forged = 42.0f;
    memcpy(eb + 48, &forged, 4);
    uint32_t crc = (uint32_t)crc32(0, eb, (uInt)(en - 4));
    memcpy(eb + en - 4, &crc, 4);
    write_all(entry, eb, en);
    OK(gtl_backbone_embed_files(bb, good, 2, again, (size_t)(2 * f), NULL));
    assert_true(again[0] == 42.0f);
    /* A corrupt entry (bad CRC, then truncated) is ignored, recomputed and rewritten. */
    eb[60] ^= 1;
    write_all(entry, eb, en);
    OK(gtl_backbone_embed_files(bb, good, 2, again, (size_t)(2 * f), NULL));
    /* (a batch of one now, two before: equal up to rounding) */
    gt_assert_close(again, got, 2 * f, 1e-5, 1e-5, "recomputed after a bad CRC");
    write_all(entry, eb, en / 2);
    OK(gtl_backbone_embed_files(bb, good, 2, again, (size_t)(2 * f), NULL));
    gt_assert_close(again, got, 2 * f, 1e-5, 1e-5, "recomputed after truncation");
    free(eb);
    read_all(entry, &eb, &en);
    assert_int_equal(en, 48 + 4 * (size_t)f + 4);
    free(eb);
    /* Other preprocessing (feature parts) or other weights: other entries. */
    OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_FEATURE_PARTS, 1));
    OK(gtl_backbone_embed_files(bb, good, 2, again, (size_t)(2 * 64), NULL));
    assert_int_equal(count_entries(cdir), 6);
    OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_FEATURE_PARTS, 3));
    OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_NUM_CLASSES, 2));
    OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_TRAINABLE_BLOCKS, 1));
    gtl_optimizer *opt = NULL;
    OK(gtl_optimizer_create(GTL_OPTIM_SGD, &opt));
    float *x = malloc((size_t)(2 * 3 * s * s) * sizeof(float));
    OK(gtl_image_load(names[0], (int32_t)s, x, (size_t)(3 * s * s)));
    OK(gtl_image_load(names[1], (int32_t)s, x + 3 * s * s, (size_t)(3 * s * s)));
    int64_t labels[2] = {0, 1};
    OK(gtl_backbone_train_step(bb, opt, x, 2, labels, NULL, 0));
    OK(gtl_backbone_embed_files(bb, good, 2, again, (size_t)(2 * f), NULL));
    assert_int_equal(count_entries(cdir), 8);
    OK(gtl_backbone_embed(bb, x, 2, want, (size_t)(2 * f)));
    gt_assert_close(again, want, 2 * f, 1e-5, 1e-5, "after training");
    /* Clearing the cache directory; bad arguments. */
    OK(gtl_backbone_set_cache_dir(bb, NULL));
    assert_int_equal(gtl_backbone_set_cache_dir(NULL, cdir), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_backbone_set_cache_dir(bb, names[0]), GTL_STATUS_IO);
    assert_int_equal(gtl_backbone_embed_files(bb, good, 2, again, (size_t)(2 * f) - 1, NULL),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_backbone_embed_files(bb, good, 0, again, (size_t)(2 * f), NULL),
                     GTL_STATUS_INVALID_ARG);
    const char *nullp[2] = {names[0], NULL};
    assert_int_equal(gtl_backbone_embed_files(bb, nullp, 2, again, (size_t)(2 * f), NULL),
                     GTL_STATUS_INVALID_ARG);
    rm_entries(cdir);
    path_in(cdir, sizeof cdir, "cache");
    rmdir(cdir);
    for (int i = 0; i < N; i++)
        unlink(names[i]);
    gtl_optimizer_destroy(opt);
    free(x);
    free(got);
    free(want);
    free(again);
    free(img);
    gtl_backbone_destroy(bb);
}

/* ---- images ----------------------------------------------------------------------- */

static void test_images(void **state)
{
    (void)state;
    char p[512];
    path_in(p, sizeof p, "img.png");
    write_png(p, 50, 30, 5);
    float *a = malloc(3 * 16 * 16 * sizeof(float)), *b = malloc(3 * 16 * 16 * sizeof(float));
    if (gtl_image_load(p, 16, a, 3 * 16 * 16) != GTL_STATUS_OK)
        fail_msg("%s", gtl_last_error());
    /* The same pixels through gtl_image_preprocess. */
    unsigned char *px = malloc(50 * 30 * 3);
    for (int y = 0; y < 30; y++)
        for (int x = 0; x < 150; x++)
            px[y * 150 + x] = (unsigned char)((x * 8 + y * 36) & 255);
    OK(gtl_image_preprocess(px, 30, 50, 3, 16, b, 3 * 16 * 16));
    assert_memory_equal(a, b, 3 * 16 * 16 * sizeof(float));
    assert_int_equal(gtl_image_load(p, 16, a, 3 * 16 * 16 - 1), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_image_load(p, 0, a, 3 * 16 * 16), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_image_load(p, 4097, a, (size_t)-1), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_image_load(NULL, 16, a, 3 * 16 * 16), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_image_preprocess(px, 30, 50, 2, 16, b, 3 * 16 * 16),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_image_preprocess(px, 0, 50, 3, 16, b, 3 * 16 * 16),
                     GTL_STATUS_INVALID_ARG);
    path_in(p, sizeof p, "nope.png");
    assert_int_equal(gtl_image_load(p, 16, a, 3 * 16 * 16), GTL_STATUS_IO);
    assert_non_null(strstr(gtl_last_error(), "nope.png"));
    uint64_t rng = 1;
    assert_int_equal(gtl_image_augment(p, 1u << 10, &rng, 16, a, 3 * 16 * 16),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_image_augment(p, 0, NULL, 16, a, 3 * 16 * 16), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_image_augment(p, 0, &rng, 16, a, 3 * 16 * 16), GTL_STATUS_IO);
    assert_int_equal(rng, 1);
    /* No flag: the plain preprocessing, bit for bit; the state still advances. */
    path_in(p, sizeof p, "img.png");
    OK(gtl_image_augment(p, GTL_AUGMENT_NONE, &rng, 16, b, 3 * 16 * 16));
    OK(gtl_image_load(p, 16, a, 3 * 16 * 16));
    assert_memory_equal(a, b, 3 * 16 * 16 * sizeof(float));
    assert_true(rng != 1);
    /* A state replays its view; the returned state gives another one. */
    uint32_t fl = GTL_AUGMENT_RESIZED_CROP | GTL_AUGMENT_FLIP | GTL_AUGMENT_COLOR;
    uint64_t s1 = 99, s2 = 99;
    OK(gtl_image_augment(p, fl, &s1, 16, a, 3 * 16 * 16));
    OK(gtl_image_augment(p, fl, &s2, 16, b, 3 * 16 * 16));
    assert_memory_equal(a, b, 3 * 16 * 16 * sizeof(float));
    assert_int_equal(s1, s2);
    OK(gtl_image_augment(p, fl, &s2, 16, b, 3 * 16 * 16));
    assert_memory_not_equal(a, b, 3 * 16 * 16 * sizeof(float));
    OK(gtl_image_augment(p, GTL_AUGMENT_EDGES | GTL_AUGMENT_STROKE | GTL_AUGMENT_GRAY, &s2, 16,
                         b, 3 * 16 * 16));
    unlink(p);
    free(a);
    free(b);
    free(px);
}

/* ---- the CNN --------------------------------------------------------------------- */

static void test_cnn(void **state)
{
    gt_env *env = *state;
    gtl_backbone *bb = NULL;
    int64_t s, f, v, n = 3;
    OK(gtl_backbone_create(GTL_BACKBONE_RESNET_SMALL, &bb));
    OK(gtl_backbone_get_i64(bb, GTL_BACKBONE_IMAGE_SIZE, &s));
    OK(gtl_backbone_get_i64(bb, GTL_BACKBONE_FEATURE_DIM, &f));
    assert_int_equal(s, 64);
    assert_int_equal(f, 256);
    OK(gtl_backbone_get_i64(bb, GTL_BACKBONE_TRAINABLE_BLOCKS, &v));
    assert_int_equal(v, 4);
    OK(gtl_backbone_get_i64(bb, GTL_BACKBONE_FEATURE_PARTS, &v));
    assert_int_equal(v, 1);
    assert_int_equal(gtl_backbone_set_i64(bb, GTL_BACKBONE_FEATURE_PARTS, 2),
                     GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "does not apply"));
    assert_int_equal(gtl_backbone_set_i64(bb, GTL_BACKBONE_BF16, 1), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl_backbone_set_i64(bb, GTL_BACKBONE_TRAINABLE_BLOCKS, 5),
                     GTL_STATUS_INVALID_ARG);
    OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_BATCH_SIZE, 2));

    /* Inference: evaluation mode, one image's feature independent of its batch. */
    float *x = random_images(env, n, s);
    float *y = malloc((size_t)(n * f) * sizeof(float)), *one = malloc((size_t)f * sizeof(float));
    OK(gtl_backbone_embed(bb, x, n, y, (size_t)(n * f)));
    OK(gtl_backbone_embed(bb, x + 2 * 3 * s * s, 1, one, (size_t)f));
    gt_assert_close(one, y + 2 * f, f, 1e-5, 1e-5, "cnn single image");

    /* Training the last two stages: the stem and stages 0, 1 keep their weights
     * and statistics, the rest move; a NaN weight changes nothing. */
    OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_NUM_CLASSES, 3));
    OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_TRAINABLE_BLOCKS, 2));
    gtl__paramset *ps = bb->ps, *buf = bb->arch->buffers(bb->net);
    float *p0 = malloc((size_t)ps->n_total * sizeof(float));
    float *b0 = malloc((size_t)buf->n_total * sizeof(float));
    memcpy(p0, ps->data, (size_t)ps->n_total * sizeof(float));
    memcpy(b0, buf->data, (size_t)buf->n_total * sizeof(float));
    uint8_t sum0[32];
    memcpy(sum0, gtl__bb_checksum(bb), 32);
    gtl_optimizer *opt = NULL;
    OK(gtl_optimizer_create(GTL_OPTIM_SGD, &opt));
    OK(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_LR, 0.05f));
    int64_t labels[3] = {0, 2, 1};
    float stats[4];
    OK(gtl_backbone_train_step(bb, opt, x, n, labels, stats, 4));
    float first = stats[0];
    for (int i = 0; i < 4; i++)
        OK(gtl_backbone_train_step(bb, opt, x, n, labels, stats, 4));
    printf("# cnn train: loss %.4f -> %.4f\n", first, stats[0]);
    assert_true(stats[0] < first);
    for (int64_t i = 0; i < ps->n_params; i++) {
        bool same = memcmp(p0 + ps->offsets[i], ps->params[i].data,
                           (size_t)ps->params[i].n * sizeof(float)) == 0;
        bool frozen = strncmp(ps->names[i], "stem.", 5) == 0 ||
                      strncmp(ps->names[i], "stages.0.", 9) == 0 ||
                      strncmp(ps->names[i], "stages.1.", 9) == 0;
        if (frozen != same)
            fail_msg("%s: %s", ps->names[i], same ? "did not change" : "changed while frozen");
    }
    for (int64_t i = 0; i < buf->n_params; i++) {
        bool same = memcmp(b0 + buf->offsets[i], buf->params[i].data,
                           (size_t)buf->params[i].n * sizeof(float)) == 0;
        bool frozen = strncmp(buf->names[i], "stem.", 5) == 0 ||
                      strncmp(buf->names[i], "stages.0.", 9) == 0 ||
                      strncmp(buf->names[i], "stages.1.", 9) == 0;
        if (frozen != same)
            fail_msg("buffer %s: %s", buf->names[i], same ? "did not change" : "changed");
    }
    assert_memory_not_equal(sum0, gtl__bb_checksum(bb), 32);
    memcpy(p0, ps->data, (size_t)ps->n_total * sizeof(float));
    memcpy(b0, buf->data, (size_t)buf->n_total * sizeof(float));
    ps->params[bb->head_w].data[1] = NAN;
    p0[ps->offsets[bb->head_w] + 1] = NAN;
    assert_int_equal(gtl_backbone_train_step(bb, opt, x, n, labels, stats, 4),
                     GTL_STATUS_NUMERIC);
    assert_memory_equal(p0, ps->data, (size_t)ps->n_total * sizeof(float));
    assert_memory_equal(b0, buf->data, (size_t)buf->n_total * sizeof(float));
    ps->params[bb->head_w].data[1] = 0.0f;

    /* Checkpoint round trip: weights, statistics and settings, bitwise. */
    char p1[512];
    path_in(p1, sizeof p1, "cnn.gtlbb");
    OK(gtl_backbone_save(bb, p1));
    gtl_backbone *bb2 = NULL;
    OK(gtl_backbone_load(p1, &bb2));
    unlink(p1);
    gtl__paramset *buf2 = bb2->arch->buffers(bb2->net);
    assert_memory_equal(ps->data, bb2->ps->data, (size_t)ps->n_total * sizeof(float));
    assert_memory_equal(buf->data, buf2->data, (size_t)buf->n_total * sizeof(float));
    OK(gtl_backbone_get_i64(bb2, GTL_BACKBONE_TRAINABLE_BLOCKS, &v));
    assert_int_equal(v, 2);
    float *y2 = malloc((size_t)(n * f) * sizeof(float));
    OK(gtl_backbone_embed(bb, x, n, y, (size_t)(n * f)));
    OK(gtl_backbone_embed(bb2, x, n, y2, (size_t)(n * f)));
    assert_memory_equal(y, y2, (size_t)(n * f) * sizeof(float));
    free(y2);
    free(p0);
    free(b0);
    free(x);
    free(y);
    free(one);
    gtl_optimizer_destroy(opt);
    gtl_backbone_destroy(bb2);
    gtl_backbone_destroy(bb);
}

static int group_setup(void **state)
{
    (void)state;
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/gtl_backbone_XXXXXX", base && *base ? base : "/tmp");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int group_teardown(void **state)
{
    (void)state;
    rmdir(tmpdir);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_settings),
        cmocka_unit_test_setup_teardown(test_seed, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_embed, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_train_step, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_train_supcon, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_save_load, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_import_safetensors, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_embed_files, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_cnn, gt_setup, gt_teardown),
        cmocka_unit_test(test_images),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
