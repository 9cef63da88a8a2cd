/* OOM sweep of the backbone API (the machinery of test/fault/test_oom.c):
 * each path runs under a failing allocator whose failure point rises until
 * the path succeeds, in sticky and one-shot mode. Every run must give
 * GTL_STATUS_OUT_OF_MEMORY with a message (or, for embed_files, an
 * OUT_OF_MEMORY per-file status) and leave nothing allocated after the
 * destroy calls (a one-shot failure of a resize may also end in success: the
 * checkpoint writer tolerates a failed shrink). By default about 30 failure
 * points per path and mode (the test stays short); GTL_OOM_FULL=1 sweeps
 * every one (several minutes). Paths: create + a new head (paramset rebuild), inference
 * (the ViT engine), a training step, checkpoint and safetensors loading,
 * file embedding with the feature cache, and the CNN. */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "dnnl/dnnl_ctx.h"
#include "gtl/gtl.h"
#include "gtl_test.h"
#include "api/api_backbone.h"
#include "nn/cnn.h"
#include "nn/vit.h"

/* ---- the failing allocator ---------------------------------------------- */

typedef struct fault_alloc {
    int64_t fail_at;
    bool sticky;
    int64_t n_calls;
    int64_t n_failed;
    int64_t live;
    bool resize_failed;  /* a realloc of a live block was refused */
} fault_alloc;

static fault_alloc fa = {-1, true, 0, 0, 0, false};

static bool should_fail(void)
{
    int64_t i = fa.n_calls++;
    bool fail = fa.fail_at >= 0 && (fa.sticky ? i >= fa.fail_at : i == fa.fail_at);
    if (fail)
        fa.n_failed++;
    return fail;
}

static void *fault_malloc(void *ud, size_t size)
{
    (void)ud;
    if (should_fail())
        return NULL;
    void *p = malloc(size);
    if (p != NULL)
        fa.live++;
    return p;
}

static void *fault_realloc(void *ud, void *ptr, size_t size)
{
    (void)ud;
    if (should_fail()) {
        fa.resize_failed = fa.resize_failed || ptr != NULL;
        return NULL;
    }
    void *p = realloc(ptr, size);
    if (p != NULL && ptr == NULL)
        fa.live++;
    return p;
}

static void fault_free(void *ud, void *ptr)
{
    (void)ud;
    if (ptr != NULL)
        fa.live--;
    free(ptr);
}

static void arm(int64_t fail_at, bool sticky)
{
    fa.fail_at = fail_at;
    fa.sticky = sticky;
    fa.n_calls = 0;
    fa.n_failed = 0;
    fa.resize_failed = false;
}

/* ---- files the paths read --------------------------------------------------- */

static char tmpdir[256], ckpt_path[300], st_path[300], png_path[2][300], bad_path[300];
static char cache_dir[300];

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
    uLong crc = crc32(0, (const Bytef *)type, 4);
    if (n) {
        fwrite(data, 1, n, fp);
        crc = crc32(crc, data, n);
    }
    put_be32(b, (uint32_t)crc);
    fwrite(b, 1, 4, fp);
}

static void write_png(const char *path, int w, int h)
{
    size_t raw_n = (size_t)h * (size_t)(1 + 3 * w);
    unsigned char *raw = calloc(raw_n, 1);
    for (size_t i = 0; i < raw_n; i++)
        raw[i] = i % (size_t)(1 + 3 * w) == 0 ? 0 : (unsigned char)(i * 7);
    uLongf zn = compressBound(raw_n);
    unsigned char *z = malloc(zn);
    compress(z, &zn, raw, raw_n);
    FILE *fp = fopen(path, "wb");
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    fwrite(sig, 1, 8, fp);
    unsigned char ihdr[13] = {0};
    put_be32(ihdr, (uint32_t)w);
    put_be32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 8;
    ihdr[9] = 2;
    png_chunk(fp, "IHDR", ihdr, 13);
    png_chunk(fp, "IDAT", z, (uint32_t)zn);
    png_chunk(fp, "IEND", NULL, 0);
    fclose(fp);
    free(raw);
    free(z);
}

/* The tiny ViT as a checkpoint and as OpenAI-named safetensors. */
static int prepare_files(void)
{
    snprintf(ckpt_path, sizeof ckpt_path, "%s/bb.ckpt", tmpdir);
    snprintf(st_path, sizeof st_path, "%s/bb.safetensors", tmpdir);
    snprintf(png_path[0], sizeof png_path[0], "%s/a.png", tmpdir);
    snprintf(png_path[1], sizeof png_path[1], "%s/b.png", tmpdir);
    snprintf(bad_path, sizeof bad_path, "%s/bad.png", tmpdir);
    snprintf(cache_dir, sizeof cache_dir, "%s/cache", tmpdir);
    write_png(png_path[0], 70, 50);
    write_png(png_path[1], 30, 90);
    FILE *fp = fopen(bad_path, "wb");
    fputs("\x89PNG\r\n\x1a\ngarbage", fp);
    fclose(fp);
    gtl_backbone *bb = NULL;
    if (gtl_backbone_create(GTL_BACKBONE_VIT_TINY, &bb) != GTL_STATUS_OK ||
        gtl_backbone_set_i64(bb, GTL_BACKBONE_NUM_CLASSES, 3) != GTL_STATUS_OK ||
        gtl_backbone_save(bb, ckpt_path) != GTL_STATUS_OK)
        return -1;
    gtl_backbone_destroy(bb);
    /* Safetensors from the checkpoint's tensors, read back through libgtl's
     * own checkpoint reader is overkill: write them from a fresh tiny ViT. */
    gtl__paramset ps;
    gtl__vit vit;
    gtl__vit_config c = {64, 8, 64, 2, 2, 4, 32, GTL__ACT_QUICK_GELU};
    gtl__rng rng;
    gtl__rng_seed(&rng, 1);
    gtl__paramset_init(&ps);
    if (gtl__vit_init(&vit, &c, &ps, "visual.") != GTL_STATUS_OK ||
        gtl__paramset_finalize(&ps) != GTL_STATUS_OK ||
        gtl__vit_init_weights(&vit, &rng) != GTL_STATUS_OK)
        return -1;
    char *h = malloc(1 << 16);
    size_t k = (size_t)snprintf(h, 1 << 16, "{\"__metadata__\":{\"heads\":\"2\"}");
    uint64_t off = 0;
    for (int64_t i = 0; i < ps.n_params; i++) {
        const gtl__tensor *t = &ps.params[i];
        k += (size_t)snprintf(h + k, (1 << 16) - k, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[",
                              ps.names[i]);
        for (int d = 0; d < t->nd; d++)
            k += (size_t)snprintf(h + k, (1 << 16) - k, "%s%lld", d ? "," : "",
                                  (long long)t->ne[d]);
        k += (size_t)snprintf(h + k, (1 << 16) - k, "],\"data_offsets\":[%llu,%llu]}",
                              (unsigned long long)off,
                              (unsigned long long)(off + (uint64_t)t->n * 4));
        off += (uint64_t)t->n * 4;
    }
    k += (size_t)snprintf(h + k, (1 << 16) - k, "}");
    fp = fopen(st_path, "wb");
    uint64_t hl = k;
    fwrite(&hl, 8, 1, fp);
    fwrite(h, 1, k, fp);
    fwrite(ps.data, 4, (size_t)ps.n_total, fp);
    fclose(fp);
    free(h);
    gtl__vit_fini(&vit);
    gtl__paramset_fini(&ps);
    return 0;
}

static void clear_cache(void)
{
    DIR *d = opendir(cache_dir);
    struct dirent *e;
    char p[600];
    while (d != NULL && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.' && (e->d_name[1] == '\0' || e->d_name[1] == '.'))
            continue;
        snprintf(p, sizeof p, "%s/%s", cache_dir, e->d_name);
        unlink(p);
    }
    if (d != NULL)
        closedir(d);
}

/* ---- paths ------------------------------------------------------------------ */

static float images[2 * 3 * 64 * 64];

static gtl_status path_create(void)
{
    gtl_backbone *bb = NULL;
    gtl_status st = gtl_backbone_create(GTL_BACKBONE_VIT_TINY, &bb);
    if (st == GTL_STATUS_OK)
        st = gtl_backbone_set_i64(bb, GTL_BACKBONE_NUM_CLASSES, 3);
    if (st == GTL_STATUS_OK)
        st = gtl_backbone_set_i64(bb, GTL_BACKBONE_FEATURE_PARTS, 1);
    gtl_backbone_destroy(bb);
    return st;
}

static gtl_status path_embed(void)
{
    gtl_backbone *bb = NULL;
    float out[2 * 96];
    gtl_status st = gtl_backbone_create(GTL_BACKBONE_VIT_TINY, &bb);
    if (st == GTL_STATUS_OK)
        st = gtl_backbone_embed(bb, images, 2, out, 2 * 96);
    gtl_backbone_destroy(bb);
    return st;
}

static gtl_status path_train(void)
{
    gtl_backbone *bb = NULL;
    gtl_optimizer *opt = NULL;
    int64_t labels[2] = {0, 1};
    gtl_status st = gtl_backbone_create(GTL_BACKBONE_VIT_TINY, &bb);
    if (st == GTL_STATUS_OK)
        st = gtl_optimizer_create(GTL_OPTIM_ADAM, &opt);
    if (st == GTL_STATUS_OK)
        st = gtl_backbone_set_i64(bb, GTL_BACKBONE_NUM_CLASSES, 2);
    if (st == GTL_STATUS_OK)
        st = gtl_backbone_set_i64(bb, GTL_BACKBONE_TRAINABLE_BLOCKS, 1);
    if (st == GTL_STATUS_OK)
        st = gtl_backbone_train_step(bb, opt, images, 2, labels, NULL, 0);
    gtl_optimizer_destroy(opt);
    gtl_backbone_destroy(bb);
    return st;
}

static gtl_status path_load_ckpt(void)
{
    gtl_backbone *bb = (gtl_backbone *)1;
    gtl_status st = gtl_backbone_load(ckpt_path, &bb);
    if (st != GTL_STATUS_OK && bb != NULL)
        return GTL_STATUS_INTERNAL; /* out-parameter not zeroed */
    gtl_backbone_destroy(bb);
    return st;
}

static gtl_status path_load_safetensors(void)
{
    gtl_backbone *bb = NULL;
    gtl_status st = gtl_backbone_load(st_path, &bb);
    gtl_backbone_destroy(bb);
    return st;
}

static gtl_status path_files(void)
{
    clear_cache();
    gtl_backbone *bb = NULL;
    const char *paths[4] = {png_path[0], bad_path, png_path[1], png_path[0]};
    gtl_status sts[4];
    float out[4 * 96];
    gtl_status st = gtl_backbone_create(GTL_BACKBONE_VIT_TINY, &bb);
    if (st == GTL_STATUS_OK)
        st = gtl_backbone_set_i64(bb, GTL_BACKBONE_BATCH_SIZE, 2);
    if (st == GTL_STATUS_OK)
        st = gtl_backbone_set_cache_dir(bb, cache_dir);
    /* The corrupt file is expected: FORMAT there, the others OK or OOM. */
    for (int pass = 0; pass < 2 && st == GTL_STATUS_OK; pass++) {
        gtl_status all = gtl_backbone_embed_files(bb, paths, 4, out, 4 * 96, sts);
        for (int i = 0; i < 4 && st == GTL_STATUS_OK; i++)
            if (sts[i] == GTL_STATUS_OUT_OF_MEMORY)
                st = GTL_STATUS_OUT_OF_MEMORY;
        if (st == GTL_STATUS_OK && all == GTL_STATUS_OUT_OF_MEMORY)
            st = all;
        if (st == GTL_STATUS_OK && (sts[1] != GTL_STATUS_FORMAT || all != GTL_STATUS_FORMAT))
            return gtl__error(GTL_STATUS_INTERNAL, "embed_files: unexpected statuses");
        if (st == GTL_STATUS_OUT_OF_MEMORY)
            gtl__error(st, "a file failed with OUT_OF_MEMORY");
    }
    gtl_backbone_destroy(bb);
    return st;
}

/* The CNN architecture behind the API, at the "tiny" configuration (the
 * public RESNET_SMALL preset makes each run too slow for a sweep): built as
 * gtl_backbone_create builds it, then embed, save and load. */
static gtl_status path_cnn(void)
{
    gtl_backbone *bb = NULL, *bb2 = NULL;
    gtl__paramset *ps = NULL;
    void *net = NULL;
    float out[16];
    char p[320];
    snprintf(p, sizeof p, "%s/cnn.ckpt", tmpdir);
    gtl__cnn like;
    memset(&like, 0, sizeof like);
    gtl_status st = gtl__cnn_preset("tiny", &like.cfg);
    if (st == GTL_STATUS_OK)
        st = gtl__bb_alloc(&bb);
    if (st == GTL_STATUS_OK)
        st = gtl__bb_new_paramset(&ps);
    if (st == GTL_STATUS_OK) {
        st = gtl__bb_arch_cnn->create_like(&like, ps, &net);
        if (st != GTL_STATUS_OK)
            gtl__bb_paramset_free(ps);
    }
    if (st == GTL_STATUS_OK) {
        bb->iv[GTL_BACKBONE_FEATURE_PARTS] = 1;
        st = gtl__bb_install(bb, gtl__bb_arch_cnn, net, ps, 2);
    }
    if (st == GTL_STATUS_OK)
        st = bb->arch->init_weights(bb->net, &bb->rng);
    if (st == GTL_STATUS_OK)
        st = bb->arch->set_trainable(bb->net, 2);
    if (st == GTL_STATUS_OK)
        bb->iv[GTL_BACKBONE_TRAINABLE_BLOCKS] = 2;
    static float img[2 * 3 * 16 * 16];
    if (st == GTL_STATUS_OK)
        st = gtl_backbone_embed(bb, img, 1, out, 16);
    gtl_optimizer *opt = NULL;
    int64_t labels[2] = {0, 1};
    if (st == GTL_STATUS_OK)
        st = gtl_optimizer_create(GTL_OPTIM_SGD, &opt);
    if (st == GTL_STATUS_OK)
        st = gtl_backbone_train_step(bb, opt, img, 2, labels, NULL, 0);
    if (st == GTL_STATUS_OK)
        st = gtl_backbone_save(bb, p);
    if (st == GTL_STATUS_OK)
        st = gtl_backbone_load(p, &bb2);
    gtl_optimizer_destroy(opt);
    gtl_backbone_destroy(bb2);
    gtl_backbone_destroy(bb);
    return st;
}

typedef struct oom_path {
    const char *name;
    gtl_status (*run)(void);
} oom_path;

static const oom_path paths[] = {
    {"backbone_create_head", path_create},
    {"backbone_embed", path_embed},
    {"backbone_train_step", path_train},
    {"backbone_load_ckpt", path_load_ckpt},
    {"backbone_load_safetensors", path_load_safetensors},
    {"backbone_embed_files_cache", path_files},
    {"backbone_cnn_train_save_load", path_cnn},
};

/* ---- the sweep ----------------------------------------------------------------- */

static void assert_nothing_held(const oom_path *p, int64_t n, bool sticky)
{
    uint64_t bytes = 1, blocks = 1;
    assert_int_equal(gtl_memory_in_use(&bytes, &blocks), GTL_STATUS_OK);
    if (bytes != 0 || blocks != 0 || fa.live != 0)
        fail_msg("%s: failing allocation %lld (%s): leaked %llu bytes in %llu blocks "
                 "(allocator sees %lld live)",
                 p->name, (long long)n, sticky ? "sticky" : "one-shot",
                 (unsigned long long)bytes, (unsigned long long)blocks, (long long)fa.live);
}

static int64_t sweep(const oom_path *p, bool sticky)
{
    arm(-1, sticky);
    gtl_status st = p->run();
    if (st != GTL_STATUS_OK)
        fail_msg("%s: fails without injected faults: %s: %s", p->name, gtl_strerror(st),
                 gtl_last_error());
    int64_t total = fa.n_calls;
    assert_nothing_held(p, -1, sticky);
    /* Every allocation point with GTL_OOM_FULL=1 (minutes); by default about
     * 30 points spread over the path, always including the first ones. */
    const char *full = getenv("GTL_OOM_FULL");
    int64_t stride = full != NULL && full[0] == '1' ? 1 : total / 30 + 1;
    for (int64_t n = 0;; n += n < 8 ? 1 : stride) {
        if (n > total + 1000)
            fail_msg("%s: sweep does not terminate", p->name);
        arm(n, sticky);
        gtl__clear_error();
        st = p->run();
        fa.fail_at = -1;
        char msg[512];
        snprintf(msg, sizeof msg, "%s", gtl_last_error());
        assert_nothing_held(p, n, sticky);
        if (fa.n_failed == 0) {
            if (st != GTL_STATUS_OK)
                fail_msg("%s: no fault injected at %lld but got %s: %s", p->name,
                         (long long)n, gtl_strerror(st), msg);
            break;
        }
        /* A refused resize may be tolerated (the checkpoint writer keeps an
         * oversized buffer when shrinking it fails): success is fine then. */
        if (st == GTL_STATUS_OK && !sticky && fa.resize_failed)
            continue;
        if (st != GTL_STATUS_OUT_OF_MEMORY)
            fail_msg("%s: failing allocation %lld of %lld (%s) gave %s instead of out of "
                     "memory: %s",
                     p->name, (long long)n, (long long)total, sticky ? "sticky" : "one-shot",
                     gtl_strerror(st), msg);
        if (msg[0] == '\0')
            fail_msg("%s: failing allocation %lld (%s): no error message", p->name,
                     (long long)n, sticky ? "sticky" : "one-shot");
    }
    return total;
}

static void test_oom_sweep(void **state)
{
    const oom_path *p = *state;
    int64_t n_sticky = sweep(p, true);
    int64_t n_once = sweep(p, false);
    assert_int_equal(n_sticky, n_once);
    const char *full = getenv("GTL_OOM_FULL");
    printf("# %-30s %4lld allocation points, %s failed cleanly (sticky and one-shot)\n",
           p->name, (long long)n_sticky, full != NULL && full[0] == '1' ? "each" : "a spread");
}

static int install_fault_allocator(void **state)
{
    (void)state;
    arm(-1, true);
    fa.live = 0;
    return gtl_set_allocator(fault_malloc, fault_realloc, fault_free, NULL) == GTL_STATUS_OK
               ? 0
               : -1;
}

static int restore_allocator(void **state)
{
    (void)state;
    arm(-1, true);
    return gtl_set_allocator(NULL, NULL, NULL, NULL) == GTL_STATUS_OK ? 0 : -1;
}

int main(void)
{
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof tmpdir, "%s/gtl_backbone_oom_XXXXXX", base && *base ? base : "/tmp");
    if (mkdtemp(tmpdir) == NULL || prepare_files() != 0)
        return 1;
    for (size_t i = 0; i < sizeof images / sizeof images[0]; i++)
        images[i] = (float)((i * 37) % 101) / 50.0f - 1.0f;
    gtl__ctx *ctx = NULL;
    if (gtl__ctx_create(&ctx) != GTL_STATUS_OK)
        return 1;
    gtl__ctx_destroy(ctx);
    struct CMUnitTest tests[sizeof paths / sizeof paths[0]];
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
        memset(&tests[i], 0, sizeof tests[i]);
        tests[i].name = paths[i].name;
        tests[i].test_func = test_oom_sweep;
        tests[i].setup_func = install_fault_allocator;
        tests[i].teardown_func = restore_allocator;
        tests[i].initial_state = (void *)&paths[i];
    }
    int rc = _cmocka_run_group_tests("backbone_oom", tests, sizeof tests / sizeof tests[0], NULL,
                                     NULL);
    clear_cache();
    rmdir(cache_dir);
    const char *files[6] = {ckpt_path, st_path, png_path[0], png_path[1], bad_path, NULL};
    for (int i = 0; files[i] != NULL; i++)
        unlink(files[i]);
    char p[320];
    snprintf(p, sizeof p, "%s/cnn.ckpt", tmpdir);
    unlink(p);
    rmdir(tmpdir);
    return rc;
}
