/* gtl_backbone_load of CLIP vision towers against PyTorch: a CLIP vision
 * tower in Hugging Face's module layout (test/nn/hf_ref.py, random seeded
 * weights) saved as HF-named safetensors, and the same weights as an
 * OpenAI-named state dict put through bindings/python/tools/convert_clip.py
 * (plain state dict; for the small config also a traced TorchScript archive
 * and an OpenCLIP training checkpoint). Every file must give torch's
 * features within 1e-4 (fp32) and the same backbone checksum (the same
 * weights, whatever the naming). Small config (B = 2 QuickGELU, B = 3 GELU,
 * head count and activation from metadata) and full ViT-B/16 (B = 1, no
 * metadata: heads = width / 64). Data is generated at test time in a
 * temporary directory; skipped when /usr/bin/python3 has no torch. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/api_backbone.h"
#include "gtl_test.h"

#ifndef GTL_TORCH_PYTHON
#  define GTL_TORCH_PYTHON "/usr/bin/python3"
#endif
#ifndef GTL_HF_REF_PY
#  define GTL_HF_REF_PY "hf_ref.py"
#endif
#ifndef GTL_CONVERT_CLIP_PY
#  define GTL_CONVERT_CLIP_PY "convert_clip.py"
#endif

static char tmpdir[256];

static int have_torch(void)
{
    static int cached = -1;
    if (cached < 0)
        cached = system(GTL_TORCH_PYTHON " -c 'import torch, numpy' >/dev/null 2>&1") == 0;
    return cached;
}

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

static double max_abs_diff(const float *a, const float *b, int64_t n)
{
    double m = 0.0;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        m = (d > m || isnan(d)) ? d : m;
    }
    return m;
}

static int generated = -1;

/* All cases in one Python process (importing torch costs seconds). */
static void generate(void)
{
    if (generated >= 0)
        return;
    char cmd[2048];
    snprintf(cmd, sizeof cmd, GTL_TORCH_PYTHON " " GTL_HF_REF_PY " --dir %s --converter "
             GTL_CONVERT_CLIP_PY " --case small:quick_gelu:2:meta,jit,cli --case small:gelu:3:meta "
             "--case B16:quick_gelu:1", tmpdir);
    generated = system(cmd) == 0;
    if (!generated)
        fail_msg("hf_ref.py failed: %s", cmd);
}

static void parity(const char *preset, const char *act, int64_t nb, bool jit)
{
    if (!have_torch())
        skip();
    generate();
    if (!generated)
        fail_msg("no reference data");
    char path[512], dir[400];
    snprintf(dir, sizeof dir, "%s/%s_%s", tmpdir, preset, act);
    snprintf(path, sizeof path, "%s/ref.safetensors", dir);
    gtl__safetensors *ref;
    if (gtl__safetensors_open(path, &ref) != GTL_STATUS_OK)
        fail_msg("cannot open %s: %s", path, gtl_last_error());
    unlink(path);
    const gtl__safetensors_info *in_info, *want_info;
    float *in = read_tensor(ref, "input", &in_info);
    float *want = read_tensor(ref, "feature", &want_info);
    int64_t n_want = want_info->n_elems, side = in_info->ne[2];
    gtl__safetensors_close(ref);

    const char *files[4] = {"hf", "openai", "openai_jit", "openclip"};
    uint8_t sum0[32];
    for (int i = 0; i < (jit ? 4 : 2); i++) {
        snprintf(path, sizeof path, "%s/%s.safetensors", dir, files[i]);
        gtl_backbone *bb = NULL;
        if (gtl_backbone_load(path, &bb) != GTL_STATUS_OK)
            fail_msg("gtl_backbone_load(%s): %s", path, gtl_last_error());
        unlink(path);
        int64_t s, f;
        assert_int_equal(gtl_backbone_get_i64(bb, GTL_BACKBONE_IMAGE_SIZE, &s), GTL_STATUS_OK);
        assert_int_equal(gtl_backbone_get_i64(bb, GTL_BACKBONE_FEATURE_DIM, &f), GTL_STATUS_OK);
        assert_int_equal(side, s);
        assert_int_equal(n_want, nb * f);
        float *got = malloc((size_t)n_want * sizeof(float));
        if (gtl_backbone_embed(bb, in, nb, got, (size_t)n_want) != GTL_STATUS_OK)
            fail_msg("embed: %s", gtl_last_error());
        double d = max_abs_diff(got, want, n_want), scale = 0.0;
        for (int64_t k = 0; k < n_want; k++)
            scale = fmax(scale, fabs((double)want[k]));
        printf("# torch parity %s %s B=%lld %s: max |feature| %.3g, max abs diff %.3g\n", preset,
               act, (long long)nb, files[i], scale, d);
        if (!(d <= 1e-4))
            fail_msg("%s %s: PyTorch parity %.3g above 1e-4", preset, files[i], d);
        if (i == 0)
            memcpy(sum0, gtl__bb_checksum(bb), 32);
        else if (memcmp(sum0, gtl__bb_checksum(bb), 32) != 0)
            fail_msg("%s: other weights than the HF file's", files[i]);
        free(got);
        gtl_backbone_destroy(bb);
    }
    rmdir(dir);
    free(in);
    free(want);
}

static void test_parity_small(void **state)
{
    (void)state;
    parity("small", "quick_gelu", 2, true);
}

static void test_parity_small_gelu(void **state)
{
    (void)state;
    parity("small", "gelu", 3, false);
}

static void test_parity_b16(void **state)
{
    (void)state;
    parity("B16", "quick_gelu", 1, false);
}

static int group_setup(void **state)
{
    (void)state;
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/gtl_backbone_hf_XXXXXX", base && *base ? base : "/tmp");
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
        cmocka_unit_test(test_parity_small),
        cmocka_unit_test(test_parity_small_gelu),
        cmocka_unit_test(test_parity_b16),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
