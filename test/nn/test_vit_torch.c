/* nn/vit against PyTorch 1.13: CLIP's VisionTransformer (test/nn/vit_ref.py)
 * with seeded random weights, generated at test time into a temporary
 * directory (ViT-B/16 weights are 350 MB: not committed). The C side loads
 * the weights by CLIP name and compares both forward paths (tape and
 * inference) with torch's features: max abs diff <= 1e-4 in fp32, at the
 * small config (B = 2, QuickGELU and GELU) and at full ViT-B/16 (B = 1).
 * Skipped when /usr/bin/python3 has no torch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gtl_test.h"
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

/* ---- the weight file ("GTLW0001", see vit_ref.py) ---------------------------- */

typedef struct wrec {
    char name[160];
    int32_t nd;
    int64_t ne[GTL__MAX_DIMS];
    int64_t n;
    float *data;
} wrec;

typedef struct wfile {
    wrec *r;
    uint32_t n;
} wfile;

static void wfile_free(wfile *f)
{
    for (uint32_t i = 0; i < f->n; i++)
        free(f->r[i].data);
    free(f->r);
    memset(f, 0, sizeof *f);
}

static int wfile_read(const char *path, wfile *f)
{
    memset(f, 0, sizeof *f);
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return -1;
    char magic[8];
    uint32_t n;
    if (fread(magic, 1, 8, fp) != 8 || memcmp(magic, "GTLW0001", 8) != 0 ||
        fread(&n, 4, 1, fp) != 1 || n > 100000)
        goto fail;
    f->r = calloc(n, sizeof *f->r);
    for (uint32_t i = 0; i < n; i++) {
        wrec *r = &f->r[i];
        uint32_t len, nd;
        if (fread(&len, 4, 1, fp) != 1 || len >= sizeof r->name ||
            fread(r->name, 1, len, fp) != len || fread(&nd, 4, 1, fp) != 1 ||
            nd > GTL__MAX_DIMS)
            goto fail;
        r->nd = (int32_t)nd;
        r->n = 1;
        if (nd > 0 && fread(r->ne, 8, nd, fp) != nd)
            goto fail;
        for (uint32_t d = 0; d < nd; d++)
            r->n *= r->ne[d];
        r->data = malloc((size_t)(r->n ? r->n : 1) * sizeof(float));
        f->n = i + 1;
        if (fread(r->data, sizeof(float), (size_t)r->n, fp) != (size_t)r->n)
            goto fail;
    }
    fclose(fp);
    return 0;
fail:
    fclose(fp);
    wfile_free(f);
    return -1;
}

static const wrec *wfile_get(const wfile *f, const char *name)
{
    for (uint32_t i = 0; i < f->n; i++)
        if (strcmp(f->r[i].name, name) == 0)
            return &f->r[i];
    return NULL;
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
    snprintf(path, sizeof path, "%s/vit_%s_%s.bin", tmpdir, preset, act);
    snprintf(cmd, sizeof cmd, GTL_TORCH_PYTHON " " GTL_VIT_REF_PY
             " --preset %s --act %s --batch %lld --seed 7 --out %s", preset, act, (long long)nb,
             path);
    if (system(cmd) != 0)
        fail_msg("vit_ref.py failed: %s", cmd);
    wfile wf;
    if (wfile_read(path, &wf) != 0)
        fail_msg("cannot read %s", path);
    unlink(path);

    const wrec *cr = wfile_get(&wf, "config");
    assert_non_null(cr);
    assert_int_equal(cr->n, 8);
    gtl__vit_config c = {(int64_t)cr->data[0], (int64_t)cr->data[1], (int64_t)cr->data[2],
                         (int64_t)cr->data[3], (int64_t)cr->data[4], (int64_t)cr->data[5],
                         (int64_t)cr->data[6], (gtl__act)(int)cr->data[7]};
    gtl__paramset ps;
    gtl__vit vit;
    gtl__paramset_init(&ps);
    assert_int_equal(gtl__vit_init(&vit, &c, &ps, NULL), GTL_STATUS_OK);
    assert_int_equal(gtl__paramset_finalize(&ps), GTL_STATUS_OK);
    /* Every parameter comes from the file, by name and shape. */
    for (int64_t i = 0; i < ps.n_params; i++) {
        gtl__tensor *t = gtl__paramset_get(&ps, i);
        const wrec *r = wfile_get(&wf, ps.names[i]);
        if (r == NULL)
            fail_msg("%s: not in the PyTorch state dict", ps.names[i]);
        assert_int_equal(r->nd, t->nd);
        for (int32_t d = 0; d < t->nd; d++)
            assert_int_equal(r->ne[d], t->ne[d]);
        memcpy(t->data, r->data, (size_t)t->n * sizeof(float));
    }
    const wrec *in = wfile_get(&wf, "input"), *want = wfile_get(&wf, "feature");
    assert_non_null(in);
    assert_non_null(want);
    int64_t fd = gtl__vit_feature_dim(&c, GTL__VIT_FEAT_BOTH);
    assert_int_equal(want->n, nb * fd);
    assert_int_equal(wf.n, (uint32_t)ps.n_params + 3);

    /* Tape path (no grad). */
    gtl__tensor *x, *y;
    gtl__tape_reset(env->tape);
    env->tape->grad_enabled = false;
    assert_int_equal(gtl__tape_leaf(env->tape, 4, in->ne, in->data, false, &x), GTL_STATUS_OK);
    assert_int_equal(gtl__vit_forward(&vit, env->tape, x, GTL__VIT_FEAT_BOTH, &y),
                     GTL_STATUS_OK);
    double d_tape = max_abs_diff(y->data, want->data, want->n);
    gtl__tape_reset(env->tape);
    env->tape->grad_enabled = true;

    /* Inference path. */
    gtl__vit_infer *inf;
    assert_int_equal(gtl__vit_infer_create(&vit, env->ctx, false, &inf), GTL_STATUS_OK);
    float *got = malloc((size_t)want->n * sizeof(float));
    assert_int_equal(gtl__vit_infer_run(inf, in->data, nb, GTL__VIT_FEAT_BOTH, got),
                     GTL_STATUS_OK);
    double d_inf = max_abs_diff(got, want->data, want->n);
    double scale = max_abs_diff(want->data, got, 0);
    for (int64_t i = 0; i < want->n; i++)
        scale = fmax(scale, fabs((double)want->data[i]));
    printf("# torch parity %s %s B=%lld: max |feature| %.3g, max abs diff tape %.3g, "
           "inference %.3g\n", preset, act, (long long)nb, scale, d_tape, d_inf);
    if (!(d_tape <= 1e-4) || !(d_inf <= 1e-4))
        fail_msg("%s: PyTorch parity above 1e-4 (tape %.3g, inference %.3g)", preset, d_tape,
                 d_inf);
    free(got);
    gtl__vit_infer_destroy(inf);
    gtl__vit_fini(&vit);
    gtl__paramset_fini(&ps);
    wfile_free(&wf);
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
