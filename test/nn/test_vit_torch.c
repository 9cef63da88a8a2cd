/* nn/vit against PyTorch 1.13: CLIP's VisionTransformer (test/nn/vit_ref.py)
 * with seeded random weights, generated at test time into a temporary
 * directory as safetensors (ViT-B/16 weights are 350 MB: not committed). The
 * C side loads them with gtl__vit_load_safetensors and compares both forward paths (tape and
 * inference) with torch's features: max abs diff <= 1e-4 in fp32, at the
 * small config (B = 2, QuickGELU and GELU) and at full ViT-B/16 (B = 1).
 * Skipped when /usr/bin/python3 has no torch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gtl_test.h"
#include "io/safetensors.h"
#include "nn/vit.h"

#ifndef GTL_TORCH_PYTHON
#  define GTL_TORCH_PYTHON "/usr/bin/python3"
#endif
#ifndef GTL_VIT_REF_PY
#  define GTL_VIT_REF_PY "vit_ref.py"
#endif

static char tmpdir[256];

static int have_torch(void)
{
    static int cached = -1;
    if (cached < 0)
        cached = system(GTL_TORCH_PYTHON " -c 'import torch, numpy' >/dev/null 2>&1") == 0;
    return cached;
}

/* Reads a whole F32 tensor of the file into a malloc'd buffer. */
static float *read_tensor(gtl__safetensors *f, const char *name, const gtl__safetensors_info **info)
{
    *info = gtl__safetensors_find(f, name);
    if (*info == NULL)
        fail_msg("%s missing from the reference file", name);
    float *d = malloc((size_t)(*info)->n_elems * sizeof(float));
    if (gtl__safetensors_read_f32(f, name, d, (*info)->n_elems) != GTL_STATUS_OK)
        fail_msg("reading %s: %s", name, gtl_last_error());
    return d;
}

/* ---- the comparison ---------------------------------------------------------- */

static double max_abs_diff(const float *a, const float *b, int64_t n)
{
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        m = (d > m || isnan(d)) ? d : m;
    }
    return m;
}

static void parity(gt_env *env, const char *preset, const char *act, int64_t nb)
{
    if (!have_torch())
        skip();
    char path[512], cmd[1024];
    snprintf(path, sizeof path, "%s/vit_%s_%s.safetensors", tmpdir, preset, act);
    snprintf(cmd, sizeof cmd, GTL_TORCH_PYTHON " " GTL_VIT_REF_PY
             " --preset %s --act %s --batch %lld --seed 7 --out %s", preset, act, (long long)nb,
             path);
    if (system(cmd) != 0)
        fail_msg("vit_ref.py failed: %s", cmd);
    gtl__safetensors *f;
    if (gtl__safetensors_open(path, &f) != GTL_STATUS_OK)
        fail_msg("cannot open %s: %s", path, gtl_last_error());
    unlink(path); /* the open handle keeps the data readable */

    const char *cs = gtl__safetensors_meta(f, "config");
    assert_non_null(cs);
    long long cv[8];
    assert_int_equal(sscanf(cs, "%lld,%lld,%lld,%lld,%lld,%lld,%lld,%lld", &cv[0], &cv[1], &cv[2],
                            &cv[3], &cv[4], &cv[5], &cv[6], &cv[7]), 8);
    gtl__vit_config c = {cv[0], cv[1], cv[2], cv[3], cv[4], cv[5], cv[6], (gtl__act)cv[7]};
    gtl__paramset ps;
    gtl__vit vit;
    gtl__paramset_init(&ps);
    /* A prefix on our side, none in the file: names are mapped, not compared. */
    assert_int_equal(gtl__vit_init(&vit, &c, &ps, "visual."), GTL_STATUS_OK);
    assert_int_equal(gtl__paramset_finalize(&ps), GTL_STATUS_OK);
    assert_int_equal(gtl__vit_load_safetensors(&vit, f, "x."), GTL_STATUS_FORMAT);
    assert_non_null(strstr(gtl_last_error(), "x.conv1.weight is missing"));
    if (gtl__vit_load_safetensors(&vit, f, NULL) != GTL_STATUS_OK)
        fail_msg("loading the weights: %s", gtl_last_error());
    /* Every parameter is in the file, plus input and feature. */
    assert_int_equal(gtl__safetensors_num_tensors(f), ps.n_params + 2);

    const gtl__safetensors_info *in_info, *want_info;
    float *in = read_tensor(f, "input", &in_info);
    float *want = read_tensor(f, "feature", &want_info);
    int64_t fd = gtl__vit_feature_dim(&c, GTL__VIT_FEAT_BOTH);
    int64_t n_want = want_info->n_elems;
    assert_int_equal(n_want, nb * fd);
    assert_int_equal(in_info->nd, 4);
    /* The infos belong to the reader: copy the input shape before closing it. */
    int64_t in_ne[4];
    memcpy(in_ne, in_info->ne, sizeof in_ne);
    gtl__safetensors_close(f);

    /* Tape path (no grad). */
    gtl__tensor *x, *y;
    gtl__tape_reset(env->tape);
    env->tape->grad_enabled = false;
    assert_int_equal(gtl__tape_leaf(env->tape, 4, in_ne, in, false, &x), GTL_STATUS_OK);
    assert_int_equal(gtl__vit_forward(&vit, env->tape, x, GTL__VIT_FEAT_BOTH, &y),
                     GTL_STATUS_OK);
    double d_tape = max_abs_diff(y->data, want, n_want);
    gtl__tape_reset(env->tape);
    env->tape->grad_enabled = true;

    /* Inference path. */
    gtl__vit_infer *inf;
    assert_int_equal(gtl__vit_infer_create(&vit, env->ctx, false, &inf), GTL_STATUS_OK);
    float *got = malloc((size_t)n_want * sizeof(float));
    assert_int_equal(gtl__vit_infer_run(inf, in, nb, GTL__VIT_FEAT_BOTH, got), GTL_STATUS_OK);
    double d_inf = max_abs_diff(got, want, n_want);
    double scale = 0.0;
    for (int64_t i = 0; i < n_want; i++)
        scale = fmax(scale, fabs((double)want[i]));
    printf("# torch parity %s %s B=%lld: max |feature| %.3g, max abs diff tape %.3g, "
           "inference %.3g\n", preset, act, (long long)nb, scale, d_tape, d_inf);
    if (!(d_tape <= 1e-4) || !(d_inf <= 1e-4))
        fail_msg("%s: PyTorch parity above 1e-4 (tape %.3g, inference %.3g)", preset, d_tape,
                 d_inf);
    free(got);
    gtl__vit_infer_destroy(inf);
    gtl__vit_fini(&vit);
    gtl__paramset_fini(&ps);
    free(in);
    free(want);
}

static void test_parity_small(void **state)
{
    parity(*state, "small", "quick_gelu", 2);
}

static void test_parity_small_gelu(void **state)
{
    parity(*state, "small", "gelu", 3);
}

static void test_parity_b16(void **state)
{
    parity(*state, "B16", "quick_gelu", 1);
}

static int group_setup(void **state)
{
    (void)state;
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/gtl_vit_torch_XXXXXX", base && *base ? base : "/tmp");
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
        cmocka_unit_test_setup_teardown(test_parity_small, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_parity_small_gelu, gt_setup, gt_teardown),
        cmocka_unit_test_setup_teardown(test_parity_b16, gt_setup, gt_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
