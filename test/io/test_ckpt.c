/* Checkpoint format: round trips (bitwise), the documented byte layout built
 * by hand, atomic replacement under write failures (missing directory,
 * rename onto a directory, file-size limit hit mid-write, allocation
 * failures), and a fuzz loop over truncations, raw byte flips and flips with
 * the CRCs recomputed (so the field checks, not only the CRCs, are hit).
 * Every failing load must return FORMAT or IO and leak nothing. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "gtl/version.h"
#include "gtl_test.h"
#include "io/ckpt.h"

/* ---- test allocator: counts down to a failure --------------------------- */

static int64_t fail_after = -1; /* allocations left before one fails; -1 = never */

static bool alloc_should_fail(void)
{
    if (fail_after < 0)
        return false;
    if (fail_after == 0)
        return true;
    fail_after--;
    return false;
}

static void *t_malloc(void *ud, size_t n)
{
    (void)ud;
    return alloc_should_fail() ? NULL : malloc(n);
}

static void *t_realloc(void *ud, void *p, size_t n)
{
    (void)ud;
    return alloc_should_fail() ? NULL : realloc(p, n);
}

static void t_free(void *ud, void *p)
{
    (void)ud;
    free(p);
}

static uint64_t mem_in_use(void)
{
    uint64_t bytes, blocks;
    assert_int_equal(gtl_memory_in_use(&bytes, &blocks), GTL_STATUS_OK);
    return blocks;
}

/* ---- files -------------------------------------------------------------- */

static char tmpdir[64];

static void path_in(char *dst, size_t cap, const char *name)
{
    snprintf(dst, cap, "%s/%s", tmpdir, name);
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return buf;
}

static void spit(const char *path, const unsigned char *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(buf, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Number of "<anything>.tmp.<pid>" leftovers in dir. */
static int count_tmp_files(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (strstr(e->d_name, ".tmp.") != NULL)
            n++;
    closedir(d);
    return n;
}

/* ---- a reference set of tensors ----------------------------------------- */

#define N_T 8

typedef struct ref_tensor {
    const char *name;
    gtl__ckpt_dtype dtype;
    int32_t nd;
    int64_t ne[GTL__CKPT_MAX_DIMS];
    void *data;
    size_t bytes;
} ref_tensor;

static void make_refs(ref_tensor *t, uint64_t seed)
{
    gtl__rng rng;
    gtl__rng_seed(&rng, seed);
    static const ref_tensor shapes[N_T] = {
        {"encoder.weight", GTL__CKPT_F32, 2, {37, 19}, NULL, 0},          /* random: stored */
        {"encoder.bias", GTL__CKPT_F32, 1, {300}, NULL, 0},               /* smooth: zlib */
        {"head.bf16", GTL__CKPT_BF16, 3, {4, 5, 6}, NULL, 0},
        {"labels", GTL__CKPT_I64, 1, {50}, NULL, 0},
        {"mask/\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80", GTL__CKPT_U8, 2, {9, 7}, NULL, 0},
        {"scalar", GTL__CKPT_F32, 0, {0}, NULL, 0},
        {"empty", GTL__CKPT_F32, 3, {2, 0, 5}, NULL, 0},
        {"six.dims", GTL__CKPT_F32, 6, {1, 2, 1, 3, 2, 2}, NULL, 0},
    };
    for (int i = 0; i < N_T; i++) {
        t[i] = shapes[i];
        size_t n = 1;
        for (int d = 0; d < t[i].nd; d++)
            n *= (size_t)t[i].ne[d];
        t[i].bytes = n * gtl__ckpt_dtype_size(t[i].dtype);
        t[i].data = malloc(t[i].bytes + 1);
        unsigned char *b = t[i].data;
        for (size_t k = 0; k < t[i].bytes; k++)
            b[k] = (unsigned char)gtl__rng_u64(&rng);
        if (i == 1)
            for (size_t k = 0; k < n; k++)
                ((float *)t[i].data)[k] = (float)(k / 10) * 0.5f;
        if (i == 3)
            for (size_t k = 0; k < n; k++)
                ((int64_t *)t[i].data)[k] = (int64_t)k - 25 + (k == 0 ? INT64_MIN + 25 : 0);
    }
}

static void free_refs(ref_tensor *t)
{
    for (int i = 0; i < N_T; i++)
        free(t[i].data);
}

static const char config_json[] =
    "{\"model\": \"ViT-B/16\", \"dim\": 512, \"name\": \"caf\xc3\xa9\"}";

static gtl__ckpt_writer *make_writer(const ref_tensor *t, int32_t level)
{
    gtl__ckpt_writer *w = NULL;
    gtl_status st = gtl__ckpt_writer_create(level, &w);
    if (st != GTL_STATUS_OK)
        return NULL;
    if (gtl__ckpt_add_meta_str(w, "config", config_json) != GTL_STATUS_OK ||
        gtl__ckpt_add_meta_str(w, "libgtl.version", gtl_version_string()) != GTL_STATUS_OK ||
        gtl__ckpt_add_meta_str(w, "empty", "") != GTL_STATUS_OK ||
        gtl__ckpt_add_meta_i64(w, "step", -1234567890123LL) != GTL_STATUS_OK ||
        gtl__ckpt_add_meta_i64(w, "min", INT64_MIN) != GTL_STATUS_OK ||
        gtl__ckpt_add_meta_f64(w, "lr", 3e-4) != GTL_STATUS_OK ||
        gtl__ckpt_add_meta_f64(w, "neg0", -0.0) != GTL_STATUS_OK) {
        gtl__ckpt_writer_destroy(w);
        return NULL;
    }
    for (int i = 0; i < N_T; i++)
        if (gtl__ckpt_add_tensor(w, t[i].name, t[i].dtype, t[i].nd, t[i].ne, t[i].data) !=
            GTL_STATUS_OK) {
            gtl__ckpt_writer_destroy(w);
            return NULL;
        }
    return w;
}

/* Opens path and checks everything against t bitwise. */
static void check_file(const char *path, const ref_tensor *t)
{
    gtl__ckpt_reader *r = NULL;
    gtl_status st = gtl__ckpt_open(path, &r);
    if (st != GTL_STATUS_OK)
        fail_msg("open %s: %s", path, gtl_last_error());
    assert_int_equal(gtl__ckpt_version(r), 1);
    assert_int_equal(gtl__ckpt_num_tensors(r), N_T);
    assert_int_equal(gtl__ckpt_num_meta(r), 7);
    for (int i = 0; i < N_T; i++) {
        const gtl__ckpt_tensor_info *info = gtl__ckpt_tensor(r, i);
        assert_non_null(info);
        assert_string_equal(info->name, t[i].name);
        assert_ptr_equal(gtl__ckpt_find(r, t[i].name), info);
        assert_int_equal(info->dtype, t[i].dtype);
        assert_int_equal(info->nd, t[i].nd);
        for (int d = 0; d < t[i].nd; d++)
            assert_int_equal(info->ne[d], t[i].ne[d]);
        assert_int_equal(info->raw_size, t[i].bytes);
        unsigned char *buf = malloc(t[i].bytes + 8);
        memset(buf, 0xa5, t[i].bytes + 8);
        st = gtl__ckpt_read(r, t[i].name, buf, t[i].bytes + 8);
        if (st != GTL_STATUS_OK)
            fail_msg("read %s: %s", t[i].name, gtl_last_error());
        assert_memory_equal(buf, t[i].data, t[i].bytes);
        for (int k = 0; k < 8; k++)
            assert_int_equal(buf[t[i].bytes + (size_t)k], 0xa5); /* nothing past raw_size */
        free(buf);
    }
    assert_null(gtl__ckpt_tensor(r, N_T));
    assert_null(gtl__ckpt_tensor(r, -1));
    assert_null(gtl__ckpt_find(r, "nope"));

    /* f32 view of the bf16 tensor: exact widening. */
    const ref_tensor *bt = &t[2];
    int64_t n = (int64_t)(bt->bytes / 2);
    float *f = malloc((size_t)n * sizeof(float));
    assert_int_equal(gtl__ckpt_read_f32(r, bt->name, f, n), GTL_STATUS_OK);
    for (int64_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, (unsigned char *)bt->data + 2 * i, 2);
        uint32_t u = (uint32_t)h << 16, got;
        memcpy(&got, &f[i], 4);
        assert_int_equal(got, u);
    }
    assert_int_equal(gtl__ckpt_read_f32(r, bt->name, f, n - 1), GTL_STATUS_INVALID_ARG);
    free(f);
    int64_t n0 = (int64_t)(t[0].bytes / 4);
    f = malloc((size_t)n0 * sizeof(float));
    assert_int_equal(gtl__ckpt_read_f32(r, t[0].name, f, n0), GTL_STATUS_OK);
    assert_memory_equal(f, t[0].data, t[0].bytes);
    assert_int_equal(gtl__ckpt_read_f32(r, "labels", f, n0), GTL_STATUS_INVALID_ARG);
    free(f);

    /* Errors on a valid file. */
    unsigned char small[4];
    assert_int_equal(gtl__ckpt_read(r, t[0].name, small, sizeof small), GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), t[0].name));
    assert_int_equal(gtl__ckpt_read(r, "missing", small, sizeof small), GTL_STATUS_FORMAT);
    assert_non_null(strstr(gtl_last_error(), "missing"));
    assert_non_null(strstr(gtl_last_error(), path));

    /* Metadata. */
    const char *s;
    int64_t i64;
    double f64;
    gtl__ckpt_meta_type type;
    assert_int_equal(gtl__ckpt_meta_str(r, "config", &s), GTL_STATUS_OK);
    assert_string_equal(s, config_json);
    assert_int_equal(gtl__ckpt_meta_str(r, "libgtl.version", &s), GTL_STATUS_OK);
    assert_string_equal(s, gtl_version_string());
    assert_int_equal(gtl__ckpt_meta_str(r, "empty", &s), GTL_STATUS_OK);
    assert_string_equal(s, "");
    assert_int_equal(gtl__ckpt_meta_i64(r, "step", &i64), GTL_STATUS_OK);
    assert_true(i64 == -1234567890123LL);
    assert_int_equal(gtl__ckpt_meta_i64(r, "min", &i64), GTL_STATUS_OK);
    assert_true(i64 == INT64_MIN);
    assert_int_equal(gtl__ckpt_meta_f64(r, "lr", &f64), GTL_STATUS_OK);
    assert_true(f64 == 3e-4);
    assert_int_equal(gtl__ckpt_meta_f64(r, "neg0", &f64), GTL_STATUS_OK);
    assert_true(f64 == 0.0 && signbit(f64));
    assert_true(gtl__ckpt_has_meta(r, "step", &type));
    assert_int_equal(type, GTL__CKPT_META_I64);
    assert_false(gtl__ckpt_has_meta(r, "nope", &type));
    assert_string_equal(gtl__ckpt_meta_key(r, 0, &type), "config");
    assert_int_equal(type, GTL__CKPT_META_STR);
    assert_int_equal(gtl__ckpt_meta_i64(r, "config", &i64), GTL_STATUS_FORMAT);
    assert_non_null(strstr(gtl_last_error(), "config"));
    assert_int_equal(gtl__ckpt_meta_f64(r, "nope", &f64), GTL_STATUS_FORMAT);
    assert_non_null(strstr(gtl_last_error(), "nope"));
    gtl__ckpt_close(r);
}

static void test_roundtrip(void **state)
{
    (void)state;
    uint64_t mem0 = mem_in_use();
    ref_tensor t[N_T];
    make_refs(t, gt_base_seed());
    static const int32_t levels[] = {-1, 0, 1, 9};
    for (size_t li = 0; li < sizeof levels / sizeof levels[0]; li++) {
        char path[128];
        path_in(path, sizeof path, "rt.ckpt");
        gtl__ckpt_writer *w = make_writer(t, levels[li]);
        if (w == NULL)
            fail_msg("writer: %s", gtl_last_error());
        assert_int_equal(gtl__ckpt_write(w, path), GTL_STATUS_OK);
        /* A writer can write again (e.g. to a second path). */
        char path2[128];
        path_in(path2, sizeof path2, "rt2.ckpt");
        assert_int_equal(gtl__ckpt_write(w, path2), GTL_STATUS_OK);
        gtl__ckpt_writer_destroy(w);
        check_file(path, t);
        check_file(path2, t);
        size_t n1, n2;
        unsigned char *a = slurp(path, &n1), *b = slurp(path2, &n2);
        assert_int_equal(n1, n2);
        assert_memory_equal(a, b, n1);
        printf("# level %d: %zu bytes\n", (int)levels[li], n1);
        free(a);
        free(b);
        assert_int_equal(count_tmp_files(tmpdir), 0);
    }
    free_refs(t);
    assert_int_equal(mem_in_use(), mem0);
}

/* The byte layout of docs/checkpoint-format.md, assembled by hand with
 * explicit little-endian stores: the writer must produce exactly these bytes
 * and the reader must decode them. Host byte order never enters, which is
 * what makes files portable between little- and big-endian hosts. */
static size_t put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
    return 4;
}

static size_t put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
    return 8;
}

static void test_layout_by_hand(void **state)
{
    (void)state;
    unsigned char f[256];
    memset(f, 0, sizeof f);
    size_t p = 64;
    /* metadata: "k" = i64 -2 */
    p += put32(f + p, 1);
    f[p++] = 'k';
    f[p++] = 2;
    p += put64(f + p, (uint64_t)-2);
    /* tensor "t": f32, stored, 1 dim of 2 */
    p += put32(f + p, 1);
    f[p++] = 't';
    f[p++] = 1; /* dtype f32 */
    f[p++] = 0; /* codec stored */
    f[p++] = 1; /* ndim */
    f[p++] = 0; /* reserved */
    p += put64(f + p, 2);
    size_t table_end = p + 28;
    p += put64(f + p, table_end);      /* offset */
    p += put64(f + p, 8);              /* stored size */
    p += put64(f + p, 8);              /* raw size */
    unsigned char payload[8];
    put32(payload, 0x3f800000u);       /* 1.0f */
    put32(payload + 4, 0xc0200000u);   /* -2.5f */
    p += put32(f + p, (uint32_t)crc32(0, payload, 8));
    assert_int_equal(p, table_end);
    memcpy(f + p, payload, 8);
    size_t file_size = p + 8;
    memcpy(f, "GTLCKPT", 8);
    put32(f + 8, 1);
    put32(f + 12, 0);
    put64(f + 16, 1);
    put64(f + 24, 1);
    put64(f + 32, table_end - 64);
    put64(f + 40, table_end);
    put64(f + 48, file_size);
    put32(f + 56, (uint32_t)crc32(0, f + 64, (uInt)(table_end - 64)));
    put32(f + 60, (uint32_t)crc32(0, f, 60));

    char path[128];
    path_in(path, sizeof path, "hand.ckpt");
    spit(path, f, file_size);
    gtl__ckpt_reader *r = NULL;
    assert_int_equal(gtl__ckpt_open(path, &r), GTL_STATUS_OK);
    float v[2];
    assert_int_equal(gtl__ckpt_read(r, "t", v, sizeof v), GTL_STATUS_OK);
    assert_true(v[0] == 1.0f && v[1] == -2.5f);
    int64_t k;
    assert_int_equal(gtl__ckpt_meta_i64(r, "k", &k), GTL_STATUS_OK);
    assert_true(k == -2);
    gtl__ckpt_close(r);

    gtl__ckpt_writer *w = NULL;
    assert_int_equal(gtl__ckpt_writer_create(0, &w), GTL_STATUS_OK);
    assert_int_equal(gtl__ckpt_add_meta_i64(w, "k", -2), GTL_STATUS_OK);
    int64_t ne[1] = {2};
    float src[2] = {1.0f, -2.5f};
    assert_int_equal(gtl__ckpt_add_tensor(w, "t", GTL__CKPT_F32, 1, ne, src), GTL_STATUS_OK);
    char path2[128];
    path_in(path2, sizeof path2, "hand2.ckpt");
    assert_int_equal(gtl__ckpt_write(w, path2), GTL_STATUS_OK);
    gtl__ckpt_writer_destroy(w);
    size_t n;
    unsigned char *got = slurp(path2, &n);
    assert_int_equal(n, file_size);
    assert_memory_equal(got, f, file_size);
    free(got);
}

static void test_writer_args(void **state)
{
    (void)state;
    uint64_t mem0 = mem_in_use();
    gtl__ckpt_writer *w = (gtl__ckpt_writer *)1;
    assert_int_equal(gtl__ckpt_writer_create(10, &w), GTL_STATUS_INVALID_ARG);
    assert_null(w);
    assert_int_equal(gtl__ckpt_writer_create(-1, NULL), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__ckpt_writer_create(-1, &w), GTL_STATUS_OK);
    char long_name[1100];
    memset(long_name, 'a', sizeof long_name);
    long_name[1025] = '\0';
    int64_t ne[7] = {2, 2, 1, 1, 1, 1, 1};
    float data[4] = {0};
    struct {
        const char *name;
        int32_t dtype, nd;
        const int64_t *ne;
        const void *data;
    } bad[] = {
        {NULL, GTL__CKPT_F32, 1, ne, data},
        {"", GTL__CKPT_F32, 1, ne, data},
        {long_name, GTL__CKPT_F32, 1, ne, data},
        {"bad\xff", GTL__CKPT_F32, 1, ne, data},
        {"overlong\xc0\x80", GTL__CKPT_F32, 1, ne, data},
        {"x", 0, 1, ne, data},
        {"x", 9, 1, ne, data},
        {"x", GTL__CKPT_F32, 7, ne, data},
        {"x", GTL__CKPT_F32, -1, ne, data},
        {"x", GTL__CKPT_F32, 1, NULL, data},
        {"x", GTL__CKPT_F32, 1, ne, NULL},
        {"x", GTL__CKPT_F32, 2, (const int64_t[]){-1, 2}, data},
        {"x", GTL__CKPT_F32, 2, (const int64_t[]){INT64_MAX, 4}, data},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gtl_status st = gtl__ckpt_add_tensor(w, bad[i].name, (gtl__ckpt_dtype)bad[i].dtype,
                                             bad[i].nd, bad[i].ne, bad[i].data);
        if (st != GTL_STATUS_INVALID_ARG)
            fail_msg("bad tensor case %zu: status %d", i, (int)st);
        assert_true(gtl_last_error()[0] != '\0');
    }
    assert_int_equal(gtl__ckpt_add_tensor(NULL, "x", GTL__CKPT_F32, 1, ne, data),
                     GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__ckpt_add_tensor(w, "x", GTL__CKPT_F32, 1, ne, data), GTL_STATUS_OK);
    assert_int_equal(gtl__ckpt_add_tensor(w, "x", GTL__CKPT_F32, 1, ne, data),
                     GTL_STATUS_INVALID_ARG);
    assert_non_null(strstr(gtl_last_error(), "duplicate"));
    /* A zero-element tensor needs no data. */
    int64_t zero[2] = {0, 3};
    assert_int_equal(gtl__ckpt_add_tensor(w, "z", GTL__CKPT_F32, 2, zero, NULL), GTL_STATUS_OK);

    assert_int_equal(gtl__ckpt_add_meta_str(w, "k", "v"), GTL_STATUS_OK);
    assert_int_equal(gtl__ckpt_add_meta_i64(w, "k", 1), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__ckpt_add_meta_str(w, "s", NULL), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__ckpt_add_meta_str(w, "s", "\xed\xa0\x80"), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__ckpt_add_meta_f64(w, "", 1.0), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__ckpt_add_meta_f64(w, long_name, 1.0), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__ckpt_add_meta_f64(NULL, "f", 1.0), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__ckpt_write(w, NULL), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__ckpt_write(w, ""), GTL_STATUS_INVALID_ARG);
    gtl__ckpt_writer_destroy(w);
    gtl__ckpt_writer_destroy(NULL);

    gtl__ckpt_reader *r = (gtl__ckpt_reader *)1;
    assert_int_equal(gtl__ckpt_open(NULL, &r), GTL_STATUS_INVALID_ARG);
    assert_null(r);
    assert_int_equal(gtl__ckpt_open("/nonexistent/x.ckpt", &r), GTL_STATUS_IO);
    assert_non_null(strstr(gtl_last_error(), "/nonexistent/x.ckpt"));
    assert_non_null(strstr(gtl_last_error(), strerror(ENOENT)));
    assert_int_equal(gtl__ckpt_open(tmpdir, &r), GTL_STATUS_IO); /* a directory */
    gtl__ckpt_close(NULL);
    assert_int_equal(mem_in_use(), mem0);
}

/* Writes that fail must leave the old file byte-identical and no temp file. */
static void test_atomic_write(void **state)
{
    (void)state;
    uint64_t mem0 = mem_in_use();
    ref_tensor t[N_T];
    make_refs(t, gt_base_seed() + 1);
    char path[128];
    path_in(path, sizeof path, "atomic.ckpt");
    gtl__ckpt_writer *w = make_writer(t, -1);
    assert_non_null(w);
    assert_int_equal(gtl__ckpt_write(w, path), GTL_STATUS_OK);
    gtl__ckpt_writer_destroy(w);
    size_t old_n;
    unsigned char *old = slurp(path, &old_n);

    /* A second, different checkpoint to attempt writing over it. */
    ref_tensor t2[N_T];
    make_refs(t2, gt_base_seed() + 2);
    gtl__ckpt_writer *w2 = make_writer(t2, 0);
    assert_non_null(w2);

    /* 1. Path in a missing directory. */
    char missing[160];
    snprintf(missing, sizeof missing, "%s/no/such/dir/x.ckpt", tmpdir);
    assert_int_equal(gtl__ckpt_write(w2, missing), GTL_STATUS_IO);
    assert_non_null(strstr(gtl_last_error(), "x.ckpt"));
    assert_non_null(strstr(gtl_last_error(), strerror(ENOENT)));

    /* 2. rename() fails: the target is a non-empty directory. */
    char dirpath[128], inner[160];
    path_in(dirpath, sizeof dirpath, "is_a_dir");
    assert_int_equal(mkdir(dirpath, 0755), 0);
    snprintf(inner, sizeof inner, "%s/keep", dirpath);
    spit(inner, (const unsigned char *)"x", 1);
    assert_int_equal(gtl__ckpt_write(w2, dirpath), GTL_STATUS_IO);
    assert_non_null(strstr(gtl_last_error(), "rename"));
    assert_int_equal(count_tmp_files(tmpdir), 0);
    struct stat sb;
    assert_int_equal(stat(inner, &sb), 0);
    unlink(inner);
    rmdir(dirpath);

    /* 3. The OS refuses the write part-way (file size limit, EFBIG), at many
     * points: header, table, payloads. */
    signal(SIGXFSZ, SIG_IGN);
    struct rlimit saved;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &saved), 0);
    char probe[128];
    path_in(probe, sizeof probe, "probe.ckpt");
    assert_int_equal(gtl__ckpt_write(w2, probe), GTL_STATUS_OK);
    size_t new_n;
    unsigned char *newb = slurp(probe, &new_n);
    free(newb);
    unlink(probe);
    int n_limits = 0;
    for (size_t lim = 0; lim < new_n; lim += (lim < 200 ? 13 : 397)) {
        struct rlimit rl = saved;
        rl.rlim_cur = lim;
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &rl), 0);
        gtl_status st = gtl__ckpt_write(w2, path);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &saved), 0);
        if (st != GTL_STATUS_IO)
            fail_msg("limit %zu: status %d (%s)", lim, (int)st, gtl_last_error());
        assert_non_null(strstr(gtl_last_error(), strerror(EFBIG)));
        size_t n;
        unsigned char *now = slurp(path, &n);
        assert_int_equal(n, old_n);
        assert_memory_equal(now, old, old_n);
        free(now);
        assert_int_equal(count_tmp_files(tmpdir), 0);
        n_limits++;
    }
    printf("# %d partial-write failures left the old file intact\n", n_limits);

    /* 4. Allocation failures at every point of a write. */
    int k;
    for (k = 0;; k++) {
        fail_after = k;
        gtl_status st = gtl__ckpt_write(w2, path);
        fail_after = -1;
        if (st == GTL_STATUS_OK)
            break;
        assert_int_equal(st, GTL_STATUS_OUT_OF_MEMORY);
        size_t n;
        unsigned char *now = slurp(path, &n);
        assert_int_equal(n, old_n);
        assert_memory_equal(now, old, old_n);
        free(now);
        assert_int_equal(count_tmp_files(tmpdir), 0);
    }
    printf("# write succeeded after %d failing allocations\n", k);
    check_file(path, t2);

    /* 5. A directory we may not write to (meaningless as root). */
    if (geteuid() != 0) {
        char ro[128], rofile[160];
        path_in(ro, sizeof ro, "readonly");
        assert_int_equal(mkdir(ro, 0500), 0);
        snprintf(rofile, sizeof rofile, "%s/x.ckpt", ro);
        assert_int_equal(gtl__ckpt_write(w2, rofile), GTL_STATUS_IO);
        rmdir(ro);
    }
    gtl__ckpt_writer_destroy(w2);
    free(old);
    free_refs(t);
    free_refs(t2);
    assert_int_equal(mem_in_use(), mem0);
}

/* Allocation failures at every point of open + read: OUT_OF_MEMORY, no leak. */
static void test_reader_oom(void **state)
{
    (void)state;
    uint64_t mem0 = mem_in_use();
    ref_tensor t[N_T];
    make_refs(t, gt_base_seed() + 3);
    char path[128];
    path_in(path, sizeof path, "oom.ckpt");
    gtl__ckpt_writer *w = make_writer(t, -1);
    assert_non_null(w);
    assert_int_equal(gtl__ckpt_write(w, path), GTL_STATUS_OK);
    gtl__ckpt_writer_destroy(w);

    int k;
    for (k = 0;; k++) {
        fail_after = k;
        gtl__ckpt_reader *r = NULL;
        gtl_status st = gtl__ckpt_open(path, &r);
        for (int i = 0; st == GTL_STATUS_OK && i < N_T; i++) {
            unsigned char *buf = malloc(t[i].bytes + 1);
            st = gtl__ckpt_read(r, t[i].name, buf, t[i].bytes);
            if (st == GTL_STATUS_OK)
                assert_memory_equal(buf, t[i].data, t[i].bytes);
            free(buf);
        }
        fail_after = -1;
        gtl__ckpt_close(r);
        assert_int_equal(mem_in_use(), mem0);
        if (st == GTL_STATUS_OK)
            break;
        assert_int_equal(st, GTL_STATUS_OUT_OF_MEMORY);
    }
    printf("# open+read succeeded after %d failing allocations\n", k);

    /* Allocation failures while building a writer. */
    for (k = 0;; k++) {
        fail_after = k;
        gtl__ckpt_writer *w2 = make_writer(t, -1);
        fail_after = -1;
        gtl__ckpt_writer_destroy(w2);
        assert_int_equal(mem_in_use(), mem0);
        if (w2 != NULL)
            break;
    }
    printf("# writer built after %d failing allocations\n", k);
    free_refs(t);
}

/* ---- fuzz --------------------------------------------------------------- */

/* Loads path and reads every tensor. Returns OK only if everything loaded;
 * then *same says whether all tensors equal the reference bitwise. */
static gtl_status load_all(const char *path, const ref_tensor *t, bool *same)
{
    gtl__ckpt_reader *r = NULL;
    *same = true;
    gtl_status st = gtl__ckpt_open(path, &r);
    if (st != GTL_STATUS_OK) {
        assert_null(r);
        return st;
    }
    for (int64_t i = 0; i < gtl__ckpt_num_tensors(r); i++) {
        const gtl__ckpt_tensor_info *info = gtl__ckpt_tensor(r, i);
        unsigned char *buf = malloc(info->raw_size + 1);
        gtl_status rs = gtl__ckpt_read(r, info->name, buf, info->raw_size);
        if (rs != GTL_STATUS_OK)
            st = rs;
        else if (t == NULL || i >= N_T || strcmp(info->name, t[i].name) != 0 ||
                 info->raw_size != t[i].bytes || memcmp(buf, t[i].data, t[i].bytes) != 0)
            *same = false;
        free(buf);
    }
    if (gtl__ckpt_num_tensors(r) != N_T)
        *same = false;
    gtl__ckpt_close(r);
    return st;
}

static void fix_crcs(unsigned char *f, size_t n)
{
    if (n < 64)
        return;
    uint64_t table_size = 0;
    for (int i = 7; i >= 0; i--)
        table_size = (table_size << 8) | f[32 + i];
    if (table_size <= n - 64)
        put32(f + 56, (uint32_t)crc32(0, f + 64, (uInt)table_size));
    put32(f + 60, (uint32_t)crc32(0, f, 60));
}

static void test_fuzz(void **state)
{
    (void)state;
    uint64_t mem0 = mem_in_use();
    ref_tensor t[N_T];
    make_refs(t, gt_base_seed() + 4);
    char good[128], path[128];
    path_in(good, sizeof good, "fuzz_good.ckpt");
    path_in(path, sizeof path, "fuzz.ckpt");
    gtl__ckpt_writer *w = make_writer(t, -1);
    assert_non_null(w);
    assert_int_equal(gtl__ckpt_write(w, good), GTL_STATUS_OK);
    gtl__ckpt_writer_destroy(w);
    size_t n;
    unsigned char *orig = slurp(good, &n);
    unsigned char *buf = malloc(n);
    bool same;
    assert_int_equal(load_all(good, t, &same), GTL_STATUS_OK);
    assert_true(same);
    uint64_t table_end = 64;
    for (int i = 7; i >= 0; i--)
        table_end = (table_end << 8) | orig[40 + i];
    printf("# fuzz file: %zu bytes, table ends at %llu\n", n, (unsigned long long)table_end);

    /* Every truncation. */
    for (size_t len = 0; len < n; len++) {
        spit(path, orig, len);
        gtl_status st = load_all(path, t, &same);
        if (st != GTL_STATUS_FORMAT)
            fail_msg("truncated to %zu: status %d (%s)", len, (int)st, gtl_last_error());
        assert_non_null(strstr(gtl_last_error(), path));
        assert_int_equal(mem_in_use(), mem0);
    }
    /* Appended bytes. */
    memcpy(buf, orig, n);
    FILE *fa = fopen(path, "wb");
    fwrite(buf, 1, n, fa);
    fputc(0, fa);
    fclose(fa);
    assert_int_equal(load_all(path, t, &same), GTL_STATUS_FORMAT);

    gtl__rng rng;
    gtl__rng_seed(&rng, gt_base_seed() ^ 0xf022);
    int counts[3][3] = {{0}}; /* [mode][FORMAT, OK-same, OK-different] */
    for (int trial = 0; trial < 1500; trial++) {
        /* mode 0: raw flips anywhere; 1: flips in header/table with the
         * CRCs recomputed (reaches the field checks); 2: the same, then
         * truncated at a random length. */
        int mode = trial % 3;
        memcpy(buf, orig, n);
        int n_flips = 1 + (int)gtl__rng_below(&rng, 4);
        for (int k = 0; k < n_flips; k++) {
            size_t at = mode == 0 ? (size_t)gtl__rng_below(&rng, n)
                                  : (size_t)gtl__rng_below(&rng, table_end);
            if (gtl__rng_below(&rng, 2))
                buf[at] ^= (unsigned char)(1u << gtl__rng_below(&rng, 8));
            else
                buf[at] = (unsigned char)gtl__rng_u64(&rng);
        }
        if (mode != 0)
            fix_crcs(buf, n);
        size_t len = mode == 2 ? (size_t)gtl__rng_below(&rng, n + 1) : n;
        if (mode == 2)
            fix_crcs(buf, len);
        spit(path, buf, len);
        gtl_status st = load_all(path, t, &same);
        if (st != GTL_STATUS_FORMAT && st != GTL_STATUS_OK && st != GTL_STATUS_IO)
            fail_msg("trial %d: status %d (%s)", trial, (int)st, gtl_last_error());
        if (st == GTL_STATUS_OK && mode == 0 && !same)
            fail_msg("trial %d: raw corruption went undetected", trial);
        counts[mode][st == GTL_STATUS_FORMAT ? 0 : same ? 1 : 2]++;
        assert_int_equal(mem_in_use(), mem0);
    }
    for (int m = 0; m < 3; m++)
        printf("# fuzz mode %d: %d FORMAT, %d OK unchanged, %d OK changed (e.g. a metadata "
               "value)\n", m, counts[m][0], counts[m][1], counts[m][2]);
    free(buf);
    free(orig);
    free_refs(t);
}

/* Targeted corruptions with valid CRCs: each must name its field. */
static void test_fields(void **state)
{
    (void)state;
    uint64_t mem0 = mem_in_use();
    gtl__ckpt_writer *w = NULL;
    assert_int_equal(gtl__ckpt_writer_create(0, &w), GTL_STATUS_OK);
    int64_t ne[2] = {2, 3};
    float data[6] = {1, 2, 3, 4, 5, 6};
    assert_int_equal(gtl__ckpt_add_tensor(w, "a", GTL__CKPT_F32, 2, ne, data), GTL_STATUS_OK);
    assert_int_equal(gtl__ckpt_add_tensor(w, "b", GTL__CKPT_F32, 2, ne, data), GTL_STATUS_OK);
    char good[128], path[128];
    path_in(good, sizeof good, "fields_good.ckpt");
    path_in(path, sizeof path, "fields.ckpt");
    assert_int_equal(gtl__ckpt_write(w, good), GTL_STATUS_OK);
    gtl__ckpt_writer_destroy(w);
    size_t n;
    unsigned char *orig = slurp(good, &n);
    unsigned char *f = malloc(n);
    /* Table layout: two entries of 4+1+4+16+28 = 53 bytes from offset 64.
     * Entry field offsets: name 68, dtype 69, codec 70, ndim 71, reserved 72,
     * dims 73..88, offset 89, stored 97, raw 105, crc 113. */
    const size_t e0 = 64, e1 = 64 + 53;
    struct {
        size_t at;
        int width;
        uint64_t value;
        const char *expect;
    } cases[] = {
        {0, 1, 'X', "magic"},
        {8, 4, 2, "version"},
        {12, 4, 1, "flags"},
        {16, 8, 1, "metadata value 0"}, /* tensor bytes parsed as metadata */
        {24, 8, 1u << 25, "n_tensors"},
        {24, 8, 3, "cannot fit"},
        {32, 8, 1ull << 40, "table_size"},
        {40, 8, 65, "data_offset"},
        {48, 8, 12345, "file_size"},
        {e0, 4, 0, "length"},
        {e0, 4, 1025, "length"},
        {e0, 4, 0xffffffffu, "length"},
        {e0 + 5, 1, 9, "dtype"},
        {e0 + 6, 1, 2, "codec"},
        {e0 + 6, 1, 1, "compressed size"},
        {e0 + 7, 1, 7, "ndim"},
        {e0 + 7, 1, 1, "raw size"},
        {e0 + 8, 1, 1, "reserved"},
        {e0 + 9, 8, 1ull << 62, "overflow"},
        {e0 + 9, 8, 3, "raw size"},
        {e0 + 25, 8, 0, "offset"},
        {e0 + 33, 8, 25, "stored payload"},
        {e0 + 41, 8, 25, "raw size"},
        {e0 + 49, 4, 0, "CRC"},
        {e1 + 4, 1, 'a', "duplicate tensor name"},
        {e1 + 25, 8, 1ull << 60, "offset"},
        {e1 + 4, 1, 0xff, "UTF-8"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memcpy(f, orig, n);
        for (int b = 0; b < cases[i].width; b++)
            f[cases[i].at + (size_t)b] = (unsigned char)(cases[i].value >> (8 * b));
        fix_crcs(f, n);
        spit(path, f, n);
        bool same;
        gtl_status st = load_all(path, NULL, &same);
        if (st != GTL_STATUS_FORMAT || strstr(gtl_last_error(), cases[i].expect) == NULL ||
            strstr(gtl_last_error(), path) == NULL)
            fail_msg("case %zu (byte %zu): status %d, message '%s', expected '%s'", i,
                     cases[i].at, (int)st, gtl_last_error(), cases[i].expect);
        assert_int_equal(mem_in_use(), mem0);
    }
    /* Header and table CRCs themselves. */
    memcpy(f, orig, n);
    f[61] ^= 1;
    spit(path, f, n);
    gtl__ckpt_reader *r = NULL;
    assert_int_equal(gtl__ckpt_open(path, &r), GTL_STATUS_FORMAT);
    assert_non_null(strstr(gtl_last_error(), "header CRC"));
    memcpy(f, orig, n);
    f[57] ^= 1;
    put32(f + 60, (uint32_t)crc32(0, f, 60));
    spit(path, f, n);
    assert_int_equal(gtl__ckpt_open(path, &r), GTL_STATUS_FORMAT);
    assert_non_null(strstr(gtl_last_error(), "table CRC"));
    /* A payload byte: open succeeds (payloads are lazy), the read fails. */
    memcpy(f, orig, n);
    f[n - 3] ^= 0x10;
    spit(path, f, n);
    assert_int_equal(gtl__ckpt_open(path, &r), GTL_STATUS_OK);
    float out[6];
    assert_int_equal(gtl__ckpt_read(r, "b", out, sizeof out), GTL_STATUS_FORMAT);
    assert_non_null(strstr(gtl_last_error(), "CRC mismatch"));
    assert_int_equal(gtl__ckpt_read(r, "a", out, sizeof out), GTL_STATUS_OK);
    gtl__ckpt_close(r);
    free(f);
    free(orig);
    assert_int_equal(mem_in_use(), mem0);
}

/* A compressed payload that inflates to more, or less, than raw_size. */
static void test_zlib_sizes(void **state)
{
    (void)state;
    uint64_t mem0 = mem_in_use();
    gtl__ckpt_writer *w = NULL;
    assert_int_equal(gtl__ckpt_writer_create(9, &w), GTL_STATUS_OK);
    int64_t ne[1] = {1000};
    float *zeros = calloc(1000, sizeof(float));
    assert_int_equal(gtl__ckpt_add_tensor(w, "z", GTL__CKPT_F32, 1, ne, zeros), GTL_STATUS_OK);
    char good[128], path[128];
    path_in(good, sizeof good, "zlib_good.ckpt");
    path_in(path, sizeof path, "zlib.ckpt");
    assert_int_equal(gtl__ckpt_write(w, good), GTL_STATUS_OK);
    gtl__ckpt_writer_destroy(w);
    size_t n;
    unsigned char *orig = slurp(good, &n);
    assert_int_equal(orig[64 + 4 + 1 + 1], 1); /* codec zlib */
    /* Entry: name at 68, dims at 73, raw size at 73+8+16 = 97. Claim one
     * element fewer (raw 3996): the stream now inflates to more. */
    unsigned char *f = malloc(n);
    for (int delta = -1; delta <= 1; delta += 2) {
        memcpy(f, orig, n);
        put64(f + 73, (uint64_t)(1000 + delta));
        put64(f + 97, (uint64_t)(4 * (1000 + delta)));
        fix_crcs(f, n);
        spit(path, f, n);
        gtl__ckpt_reader *r = NULL;
        assert_int_equal(gtl__ckpt_open(path, &r), GTL_STATUS_OK);
        float *out = calloc(1001, sizeof(float));
        assert_int_equal(gtl__ckpt_read(r, "z", out, 1001 * sizeof(float)), GTL_STATUS_FORMAT);
        assert_non_null(strstr(gtl_last_error(), "inflates to"));
        free(out);
        gtl__ckpt_close(r);
    }
    free(f);
    free(orig);
    free(zeros);
    assert_int_equal(mem_in_use(), mem0);
}

static int group_setup(void **state)
{
    (void)state;
    if (gtl_set_allocator(t_malloc, t_realloc, t_free, NULL) != GTL_STATUS_OK)
        return -1;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/gtl_ckpt_XXXXXX");
    return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    /* Subdirectories a failed test may have left behind. */
    char sub[256];
    snprintf(sub, sizeof sub, "%s/is_a_dir/keep", tmpdir);
    unlink(sub);
    snprintf(sub, sizeof sub, "%s/is_a_dir", tmpdir);
    rmdir(sub);
    snprintf(sub, sizeof sub, "%s/readonly", tmpdir);
    rmdir(sub);
    DIR *d = opendir(tmpdir);
    if (d != NULL) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof p, "%s/%s", tmpdir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(tmpdir);
    return 0;
}

int main(void)
{
    gt_base_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip),    cmocka_unit_test(test_layout_by_hand),
        cmocka_unit_test(test_writer_args),  cmocka_unit_test(test_atomic_write),
        cmocka_unit_test(test_reader_oom),   cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_fields),       cmocka_unit_test(test_zlib_sizes),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
