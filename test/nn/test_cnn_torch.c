/* nn/cnn against PyTorch 1.13: the same network written with torch.nn
 * (test/nn/cnn_ref.py), seeded random weights with perturbed BN parameters
 * and running statistics, generated at test time into a temporary directory
 * as safetensors. The C side loads them with gtl__cnn_load_safetensors and
 * compares
 *   - features in evaluation mode and in training mode: max abs diff <= 1e-4;
 *   - the gradient of sum(feat_train * r) w.r.t. every trainable parameter
 *     and the input: per tensor max |diff| / max |torch grad| <= 1e-4;
 *   - the running statistics after the training forward: <= 1e-5 abs;
 * at the tiny config (B = 4), a 3-stage config with the stem and stage 0
 * frozen, and resnet_small itself (64 px, B = 2).
 * Skipped when /usr/bin/python3 has no torch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gtl_test.h"
#include "io/safetensors.h"
#include "nn/cnn.h"

#ifndef GTL_TORCH_PYTHON
#  define GTL_TORCH_PYTHON "/usr/bin/python3"
#endif
#ifndef GTL_CNN_REF_PY
#  define GTL_CNN_REF_PY "cnn_ref.py"
#endif

static char tmpdir[256];

static int have_torch(void)
{
    static int cached = -1;
    if (cached < 0)
        cached = system(GTL_TORCH_PYTHON " -c 'import torch, numpy' >/dev/null 2>&1") == 0;
    return cached;
}

static float *read_tensor(gtl__safetensors *f, const char *name, int64_t *n)
{
    const gtl__safetensors_info *info = gtl__safetensors_find(f, name);
    if (info == NULL)
        fail_msg("%s missing from the reference file", name);
    float *d = malloc((size_t)info->n_elems * sizeof(float));
    if (gtl__safetensors_read_f32(f, name, d, info->n_elems) != GTL_STATUS_OK)
        fail_msg("reading %s: %s", name, gtl_last_error());
    *n = info->n_elems;
    return d;
}

/* The reference file of a config in the temporary directory. */
static void ref_path(char *dst, size_t cap, int64_t size, int64_t width, int64_t stages,
                     int64_t blocks, int64_t nb, int64_t freeze)
{
    snprintf(dst, cap, "%s/cnn_%lld_%lld_%lld_%lld_%lld_%lld.safetensors", tmpdir,
             (long long)size, (long long)width, (long long)stages, (long long)blocks,
             (long long)nb, (long long)freeze);
}

/* The fixed configs of the tests below: S, w, stages, blocks, B, freeze. */
static const int64_t configs[4][6] = {
    {16, 4, 2, 2, 4, 0}, {32, 8, 4, 2, 2, 0}, {20, 6, 3, 1, 3, 1}, {64, 32, 4, 2, 2, 0},
};

static double max_abs(const float *a, int64_t n)
{
    double m = 0.0;
    for (int64_t i = 0; i < n; i++)
        m = fmax(m, fabs((double)a[i]));
    return m;
}

static double max_abs_diff(const float *a, const float *b, int64_t n)
{
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        m = (d > m || isnan(d)) ? d : m;
    }
    return m;
}

static double rel_l2(const float *a, const float *b, int64_t n)
{
    double d = 0.0, s = 0.0;
    for (int64_t i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        s += (double)b[i] * b[i];
    }
    return sqrt(d) / fmax(sqrt(s), 1e-30);
}

/* strict: gradients within 1e-4 of torch's (max |diff| / max |g| per
 * tensor). Otherwise (full-size networks, millions of ReLUs) a few
 * pre-activations lie within float rounding of 0 and take the other side of
 * the kink than in torch, which moves the gradients upstream of them by up to
 * ~1 %: only the relative L2 error per tensor is bounded (1e-2). */
static void parity(gt_env *env, int64_t size, int64_t width, int64_t stages, int64_t blocks,
                   int64_t nb, int64_t freeze, int64_t stem, bool strict)
{
    if (!have_torch())
        skip();
    char path[512], cmd[1024];
    ref_path(path, sizeof path, size, width, stages, blocks, nb, freeze);
    if (stem != 1) /* not pre-generated: its own file */
        snprintf(path + strlen(path), sizeof path - strlen(path), ".s%lld", (long long)stem);
    if (access(path, R_OK) != 0) {
        snprintf(cmd, sizeof cmd, GTL_TORCH_PYTHON " " GTL_CNN_REF_PY " --seed 7 --stem-stride %lld"
                 " --job %lld,%lld,%lld,%lld,%lld,%lld,%s", (long long)stem, (long long)size,
                 (long long)width, (long long)stages, (long long)blocks, (long long)nb,
                 (long long)freeze, path);
        if (system(cmd) != 0)
            fail_msg("cnn_ref.py failed: %s", cmd);
    }
    gtl__safetensors *f;
    if (gtl__safetensors_open(path, &f) != GTL_STATUS_OK)
        fail_msg("cannot open %s: %s", path, gtl_last_error());
    unlink(path); /* the open handle keeps the data readable */

    gtl__cnn_config c = {size, width, stages, blocks, stem};
    gtl__paramset ps;
    gtl__cnn cnn;
    gtl__paramset_init(&ps);
    /* A prefix on our side, none in the file: names are mapped, not compared. */
    assert_int_equal(gtl__cnn_init(&cnn, &c, &ps, "backbone."), GTL_STATUS_OK);
    assert_int_equal(gtl__paramset_finalize(&ps), GTL_STATUS_OK);
    assert_int_equal(gtl__paramset_alloc_grad(&ps), GTL_STATUS_OK);
    assert_int_equal(gtl__cnn_load_safetensors(&cnn, f, "x."), GTL_STATUS_FORMAT);
    assert_non_null(strstr(gtl_last_error(), "x.stem.conv.weight is missing"));
    if (gtl__cnn_load_safetensors(&cnn, f, NULL) != GTL_STATUS_OK)
        fail_msg("loading the weights: %s", gtl_last_error());
    assert_int_equal(gtl__cnn_freeze_first(&cnn, freeze), GTL_STATUS_OK);

    int64_t n_in, n_r, n_fe, n_ft, n;
    float *in = read_tensor(f, "input", &n_in);
    float *r = read_tensor(f, "r", &n_r);
    float *fe = read_tensor(f, "feat_eval", &n_fe);
    float *ft = read_tensor(f, "feat_train", &n_ft);
    int64_t fd = gtl__cnn_feature_dim(&c);
    assert_int_equal(n_fe, nb * fd);
    int64_t ne[4] = {nb, 3, size, size};
    gtl__tensor *x, *y;

    /* Evaluation mode. */
    gtl__tape_reset(env->tape);
    env->tape->training = false;
    env->tape->grad_enabled = false;
    assert_int_equal(gtl__tape_leaf(env->tape, 4, ne, in, false, &x), GTL_STATUS_OK);
    assert_int_equal(gtl__cnn_forward(&cnn, env->tape, x, &y), GTL_STATUS_OK);
    double d_eval = max_abs_diff(y->data, fe, n_fe);

    /* Training mode with gradients. */
    gtl__tape_reset(env->tape);
    env->tape->training = true;
    env->tape->grad_enabled = true;
    gtl__paramset_zero_grad(&ps);
    assert_int_equal(gtl__tape_leaf(env->tape, 4, ne, in, true, &x), GTL_STATUS_OK);
    assert_int_equal(gtl__cnn_forward(&cnn, env->tape, x, &y), GTL_STATUS_OK);
    double d_train = max_abs_diff(y->data, ft, n_ft);
    assert_int_equal(gtl__tape_backward_seed(env->tape, y, r), GTL_STATUS_OK);

    char name[300];
    float *g = read_tensor(f, "grad.input", &n);
    assert_int_equal(n, x->n);
    double rel_in = max_abs_diff(x->grad, g, n) / max_abs(g, n), rel_p = 0.0, l2_p = 0.0;
    double l2_in = rel_l2(x->grad, g, n);
    const char *worst = "";
    free(g);
    int64_t n_trained = 0;
    for (int64_t i = 0; i < ps.n_params; i++) {
        const char *own = ps.names[i] + strlen("backbone.");
        snprintf(name, sizeof name, "grad.%s", own);
        if (ps.frozen[i]) {
            assert_null(gtl__safetensors_find(f, name));
            continue;
        }
        g = read_tensor(f, name, &n);
        assert_int_equal(n, ps.params[i].n);
        double rel = max_abs_diff(ps.grad + ps.offsets[i], g, n) / fmax(max_abs(g, n), 1e-12);
        if (getenv("GTL_CNN_PARITY_VERBOSE") != NULL)
            printf("#   %-40s rel %.3g (max |g| %.3g)\n", own, rel, max_abs(g, n));
        l2_p = fmax(l2_p, rel_l2(ps.grad + ps.offsets[i], g, n));
        if (rel > rel_p) {
            rel_p = rel;
            worst = own;
        }
        n_trained++;
        free(g);
    }
    double d_stats = 0.0;
    for (int64_t i = 0; i < cnn.buffers.n_params; i++) {
        snprintf(name, sizeof name, "after.%s", cnn.buffers.names[i] + strlen("backbone."));
        g = read_tensor(f, name, &n);
        d_stats = fmax(d_stats, max_abs_diff(cnn.buffers.params[i].data, g, n));
        free(g);
    }
    printf("# torch parity S=%lld w=%lld stages=%lld blocks=%lld B=%lld freeze=%lld: "
           "max |feat| %.3g; feature max abs diff eval %.3g, train %.3g; grad rel diff: "
           "params %.3g (worst %s, %lld tensors), input %.3g; rel L2 params %.3g, input %.3g; "
           "running stats %.3g\n",
           (long long)size, (long long)width, (long long)stages, (long long)blocks,
           (long long)nb, (long long)freeze, max_abs(fe, n_fe), d_eval, d_train, rel_p, worst,
           (long long)n_trained, rel_in, l2_p, l2_in, d_stats);
    if (!(d_eval <= 1e-4) || !(d_train <= 1e-4))
        fail_msg("feature parity above 1e-4 (eval %.3g, train %.3g)", d_eval, d_train);
    if (strict && (!(rel_p <= 1e-4) || !(rel_in <= 1e-4)))
        fail_msg("gradient parity above 1e-4 relative (params %.3g at %s, input %.3g)", rel_p,
                 worst, rel_in);
    if (!strict && (!(l2_p <= 1e-2) || !(l2_in <= 1e-2)))
        fail_msg("gradient parity: relative L2 error above 1e-2 (params %.3g, input %.3g)",
                 l2_p, l2_in);
    if (!(d_stats <= 1e-5))
        fail_msg("running statistics differ by %.3g", d_stats);
    gtl__tape_reset(env->tape);
    env->tape->training = false;
    gtl__safetensors_close(f);
    free(in);
    free(r);
    free(fe);
    free(ft);
    gtl__cnn_fini(&cnn);
    gtl__paramset_fini(&ps);
}

static void test_parity_tiny(void **state)
{
    const int64_t *c = configs[0];
    parity(*state, c[0], c[1], c[2], c[3], c[4], c[5], 1, true);
}

static void test_parity_4stages(void **state)
{
    const int64_t *c = configs[1];
    parity(*state, c[0], c[1], c[2], c[3], c[4], c[5], 1, true);
}

static void test_parity_frozen(void **state)
{
    const int64_t *c = configs[2];
    parity(*state, c[0], c[1], c[2], c[3], c[4], c[5], 1, true);
}

/* GTL_CNN_PARITY_CFG="S,w,stages,blocks,B,freeze" runs one more config. */
static void test_parity_env(void **state)
{
    const char *e = getenv("GTL_CNN_PARITY_CFG");
    long long v[6];
    if (e == NULL || sscanf(e, "%lld,%lld,%lld,%lld,%lld,%lld", &v[0], &v[1], &v[2], &v[3],
                            &v[4], &v[5]) != 6)
        skip();
    parity(*state, v[0], v[1], v[2], v[3], v[4], v[5], 1, getenv("GTL_CNN_PARITY_LOOSE") == NULL);
}

/* The stride-2 stem (the demo's resnet_small_s2) at a small width. */
static void test_parity_stem_stride2(void **state)
{
    parity(*state, 32, 8, 3, 1, 3, 0, 2, true);
}

static void test_parity_resnet_small(void **state)
{
    const int64_t *c = configs[3];
    parity(*state, c[0], c[1], c[2], c[3], c[4], c[5], 1, false);
}

/* Makes the temporary directory and, with one torch start-up, the reference
 * files of the fixed configs. */
static int group_setup(void **state)
{
    (void)state;
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/gtl_cnn_torch_XXXXXX", base && *base ? base : "/tmp");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    if (!have_torch())
        return 0;
    char cmd[4096], path[512];
    int n = snprintf(cmd, sizeof cmd, "%s", GTL_TORCH_PYTHON " " GTL_CNN_REF_PY " --seed 7");
    for (int i = 0; i < 4; i++) {
        const int64_t *c = configs[i];
        ref_path(path, sizeof path, c[0], c[1], c[2], c[3], c[4], c[5]);
        n += snprintf(cmd + n, sizeof cmd - (size_t)n, " --job %lld,%lld,%lld,%lld,%lld,%lld,%s",
                      (long long)c[0], (long long)c[1], (long long)c[2], (long long)c[3],
                      (long long)c[4], (long long)c[5], path);
    }
    /* A failure shows up in the tests (each makes its own file then). */
    if (system(cmd) != 0)
        fprintf(stderr, "cnn_ref.py failed: %s\n", cmd);
    return 0;
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
        cmocka_unit_test_setup_teardown(test_parity_tiny, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_parity_4stages, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_parity_frozen, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_parity_stem_stride2, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_parity_resnet_small, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_parity_env, gt_setup, gt_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
