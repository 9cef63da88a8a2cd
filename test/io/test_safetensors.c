/* safetensors reader: files written here in C per the spec (all 65536 F16
 * patterns, BF16, F32, I64, empty and scalar tensors, escaped names, an
 * unknown dtype), a cross-check with an independent Python writer/checker
 * (test/io/gen_safetensors.py on Debian's /usr/bin/python3 + python3-torch;
 * skipped when unavailable), a table of malformed headers that must each be
 * FORMAT, a fuzz loop (truncations and byte flips), and allocation failures.
 * Nothing may leak on any path. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gtl_test.h"
#include "io/safetensors.h"

static int64_t fail_after = -1;

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

static char tmpdir[64];

static void path_in(char *dst, size_t cap, const char *name)
{
    snprintf(dst, cap, "%s/%s", tmpdir, name);
}

static void le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

/* Writes <n_header as u64 LE><header bytes><buf>. n_header < 0: the real
 * header length. */
static void write_st(const char *path, const char *header, size_t header_len, int64_t n_header,
                     const void *buf, size_t buf_len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    unsigned char n8[8];
    le64(n8, n_header < 0 ? header_len : (uint64_t)n_header);
    assert_int_equal(fwrite(n8, 1, 8, f), 8);
    assert_int_equal(fwrite(header, 1, header_len, f), header_len);
    if (buf_len > 0)
        assert_int_equal(fwrite(buf, 1, buf_len, f), buf_len);
    assert_int_equal(fclose(f), 0);
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

/* ---- a C writer following the spec --------------------------------------- */

typedef struct st_tensor {
    const char *json_name;   /* already JSON-escaped */
    const char *name;        /* decoded */
    const char *dtype;
    int nd;
    int64_t shape[4];
    const void *data;        /* little-endian bytes (this host is LE) */
    size_t nbytes;
} st_tensor;

static void build_file(const char *path, const st_tensor *t, int n, const char *meta_json)
{
    size_t cap = 1 << 16, len = 0;
    char *h = malloc(cap);
    size_t buf_len = 0;
    for (int i = 0; i < n; i++)
        buf_len += t[i].nbytes;
    unsigned char *buf = malloc(buf_len + 1);
    len += (size_t)snprintf(h + len, cap - len, "{");
    if (meta_json != NULL)
        len += (size_t)snprintf(h + len, cap - len, "\"__metadata__\":%s,", meta_json);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        len += (size_t)snprintf(h + len, cap - len,
                                "%s\n  \"%s\": {\"dtype\": \"%s\", \"shape\": [", i ? "," : "",
                                t[i].json_name, t[i].dtype);
        for (int d = 0; d < t[i].nd; d++)
            len += (size_t)snprintf(h + len, cap - len, "%s%lld", d ? ", " : "",
                                    (long long)t[i].shape[d]);
        len += (size_t)snprintf(h + len, cap - len, "], \"data_offsets\": [%zu, %zu]}", off,
                                off + t[i].nbytes);
        if (t[i].nbytes)
            memcpy(buf + off, t[i].data, t[i].nbytes);
        off += t[i].nbytes;
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    while (len % 8 != 0)
        h[len++] = ' '; /* spec: the header may be padded with spaces */
    assert_true(len < cap);
    write_st(path, h, len, -1, buf, buf_len);
    free(h);
    free(buf);
}

static float ref_f16(uint16_t h)
{
    int sign = h >> 15, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
    float v;
    if (exp == 0)
        v = ldexpf((float)man, -24);
    else if (exp == 31)
        v = man ? NAN : INFINITY;
    else
        v = ldexpf((float)(1024 + man), exp - 25);
    return sign ? -v : v;
}

#define N_F16 65536

static void test_roundtrip(void **state)
{
    (void)state;
    uint64_t mem0 = mem_in_use();
    gtl__rng rng;
    gtl__rng_seed(&rng, gt_base_seed());
    float w[12];
    gtl__rng_fill_normal(&rng, w, 12, 0.0f, 1.0f);
    uint16_t *halves = malloc(N_F16 * sizeof(uint16_t));
    for (int i = 0; i < N_F16; i++)
        halves[i] = (uint16_t)i;
    uint16_t bf[10];
    for (int i = 0; i < 10; i++)
        bf[i] = (uint16_t)gtl__rng_u64(&rng);
    bf[0] = 0x7f80; /* inf */
    bf[1] = 0x8000; /* -0 */
    int64_t ids[3] = {-1, 0, INT64_MAX};
    float one = 7.25f;
    unsigned char nibbles[5] = {1, 2, 3, 4, 5};
    const st_tensor t[] = {
        {"w", "w", "F32", 2, {3, 4}, w, sizeof w},
        {"h", "h", "F16", 1, {N_F16}, halves, N_F16 * 2},
        {"b", "b", "BF16", 2, {2, 5}, bf, sizeof bf},
        {"ids", "ids", "I64", 1, {3}, ids, sizeof ids},
        {"e", "e", "F32", 2, {0, 4}, NULL, 0},
        {"scalar", "scalar", "F32", 0, {0}, &one, 4},
        {"future", "future", "F4", 1, {10}, nibbles, 5},
        {"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\"\\\\\\/\\n\\t",
         "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\"\\/\n\t", "BF16", 1, {1}, bf, 2},
    };
    const int n_t = (int)(sizeof t / sizeof t[0]);
    char path[128];
    path_in(path, sizeof path, "rt.safetensors");
    build_file(path, t, n_t, "{\"format\": \"pt\", \"a\\u00e9\": \"x\\ny\"}");

    gtl__safetensors *f = NULL;
    gtl_status st = gtl__safetensors_open(path, &f);
    if (st != GTL_STATUS_OK)
        fail_msg("open: %s", gtl_last_error());
    assert_int_equal(gtl__safetensors_num_tensors(f), n_t);
    for (int64_t i = 1; i < n_t; i++)
        assert_true(strcmp(gtl__safetensors_tensor(f, i - 1)->name,
                           gtl__safetensors_tensor(f, i)->name) < 0);
    assert_null(gtl__safetensors_tensor(f, n_t));
    for (int i = 0; i < n_t; i++) {
        const gtl__safetensors_info *info = gtl__safetensors_find(f, t[i].name);
        if (info == NULL)
            fail_msg("tensor %d not found", i);
        assert_string_equal(info->dtype_name, t[i].dtype);
        assert_int_equal(info->nd, t[i].nd);
        for (int d = 0; d < t[i].nd; d++)
            assert_int_equal(info->ne[d], t[i].shape[d]);
    }
    assert_null(gtl__safetensors_find(f, "nope"));
    assert_int_equal(gtl__safetensors_num_meta(f), 2);
    assert_string_equal(gtl__safetensors_meta(f, "format"), "pt");
    assert_string_equal(gtl__safetensors_meta(f, "a\xc3\xa9"), "x\ny");
    assert_null(gtl__safetensors_meta(f, "nope"));
    assert_string_equal(gtl__safetensors_meta_key(f, 0), "a\xc3\xa9");

    float *out = malloc(N_F16 * sizeof(float));
    assert_int_equal(gtl__safetensors_read_f32(f, "w", out, 12), GTL_STATUS_OK);
    assert_memory_equal(out, w, sizeof w);
    assert_int_equal(gtl__safetensors_read_f32(f, "w", out, 11), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__safetensors_read_f32(f, "h", out, N_F16), GTL_STATUS_OK);
    for (int i = 0; i < N_F16; i++) {
        float r = ref_f16((uint16_t)i);
        if (isnan(r) ? !isnan(out[i]) : (memcmp(&r, &out[i], 4) != 0))
            fail_msg("f16 0x%04x: got %a, want %a", i, (double)out[i], (double)r);
    }
    assert_int_equal(gtl__safetensors_read_f32(f, "b", out, 10), GTL_STATUS_OK);
    for (int i = 0; i < 10; i++) {
        uint32_t u = (uint32_t)bf[i] << 16, got;
        memcpy(&got, &out[i], 4);
        assert_int_equal(got, u);
    }
    assert_int_equal(gtl__safetensors_read_f32(f, "e", out, 0), GTL_STATUS_OK);
    assert_int_equal(gtl__safetensors_read_f32(f, "scalar", out, 1), GTL_STATUS_OK);
    assert_true(out[0] == 7.25f);
    assert_int_equal(gtl__safetensors_read_f32(f, t[7].name, out, 1), GTL_STATUS_OK);
    assert_int_equal(gtl__safetensors_read_f32(f, "ids", out, 3), GTL_STATUS_UNSUPPORTED);
    int64_t ids_out[3];
    assert_int_equal(gtl__safetensors_read_raw(f, "ids", ids_out, sizeof ids_out), GTL_STATUS_OK);
    assert_memory_equal(ids_out, ids, sizeof ids);
    assert_int_equal(gtl__safetensors_read_raw(f, "ids", ids_out, 23), GTL_STATUS_INVALID_ARG);
    /* Unknown dtype: the file opens, that tensor is UNSUPPORTED. */
    assert_int_equal(gtl__safetensors_find(f, "future")->dtype, GTL__ST_UNKNOWN);
    assert_int_equal(gtl__safetensors_read_f32(f, "future", out, 10), GTL_STATUS_UNSUPPORTED);
    assert_non_null(strstr(gtl_last_error(), "F4"));
    assert_int_equal(gtl__safetensors_read_raw(f, "future", out, 40), GTL_STATUS_UNSUPPORTED);
    assert_int_equal(gtl__safetensors_read_f32(f, "nope", out, 10), GTL_STATUS_FORMAT);
    assert_non_null(strstr(gtl_last_error(), path));
    assert_int_equal(gtl__safetensors_read_f32(NULL, "w", out, 10), GTL_STATUS_INVALID_ARG);
    assert_int_equal(gtl__safetensors_read_f32(f, "w", NULL, 10), GTL_STATUS_INVALID_ARG);
    gtl__safetensors_close(f);
    gtl__safetensors_close(NULL);

    f = (gtl__safetensors *)1;
    assert_int_equal(gtl__safetensors_open("/nonexistent.safetensors", &f), GTL_STATUS_IO);
    assert_null(f);
    assert_non_null(strstr(gtl_last_error(), strerror(ENOENT)));
    assert_int_equal(gtl__safetensors_open(tmpdir, &f), GTL_STATUS_IO);
    assert_int_equal(gtl__safetensors_open(NULL, &f), GTL_STATUS_INVALID_ARG);
    free(out);
    free(halves);
    assert_int_equal(mem_in_use(), mem0);
}

/* ---- cross-check with the Python writer/checker -------------------------- */

static bool python_available(char *script, size_t cap)
{
    /* __FILE__ is the absolute source path under CMake. */
    snprintf(script, cap, "%s", __FILE__);
    char *slash = strrchr(script, '/');
    if (slash == NULL)
        return false;
    snprintf(slash + 1, cap - (size_t)(slash + 1 - script), "gen_safetensors.py");
    return access("/usr/bin/python3", X_OK) == 0 && access(script, R_OK) == 0;
}

static int run(const char *cmd)
{
    int rc = system(cmd);
    return rc != -1 && WIFEXITED(rc) ? WEXITSTATUS(rc) : -1;
}

static void test_python_crosscheck(void **state)
{
    (void)state;
    char script[512];
    if (!python_available(script, sizeof script)) {
        printf("# /usr/bin/python3 or %s missing: skipped\n", script);
        skip();
    }
    char cmd[2048], st_path[128], ref_path[128];
    path_in(st_path, sizeof st_path, "py.safetensors");
    path_in(ref_path, sizeof ref_path, "py.ref");
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' write '%s' '%s'", script, st_path,
             ref_path);
    if (run(cmd) != 0) {
        printf("# %s failed (no python3-torch?): skipped\n", cmd);
        skip();
    }
    uint64_t mem0 = mem_in_use();

    /* 1. Python wrote, C reads: values bitwise equal to torch's .float(). */
    gtl__safetensors *f = NULL;
    gtl_status st = gtl__safetensors_open(st_path, &f);
    if (st != GTL_STATUS_OK)
        fail_msg("open python file: %s", gtl_last_error());
    size_t ref_n;
    unsigned char *ref = slurp(ref_path, &ref_n);
    assert_non_null(ref);
    size_t pos = 0;
    int n_checked = 0;
    while (pos < ref_n) {
        uint32_t name_len;
        memcpy(&name_len, ref + pos, 4);
        char name[1100];
        memcpy(name, ref + pos + 4, name_len);
        name[name_len] = '\0';
        pos += 4 + name_len;
        uint64_t count;
        memcpy(&count, ref + pos, 8);
        pos += 8;
        const gtl__safetensors_info *info = gtl__safetensors_find(f, name);
        if (info == NULL)
            fail_msg("python tensor '%s' not found", name);
        assert_int_equal(info->n_elems, (int64_t)count);
        float *out = malloc(count * sizeof(float) + 4);
        assert_int_equal(gtl__safetensors_read_f32(f, name, out, (int64_t)count), GTL_STATUS_OK);
        if (memcmp(out, ref + pos, count * sizeof(float)) != 0)
            fail_msg("tensor '%s' differs from torch's conversion", name);
        free(out);
        pos += count * sizeof(float);
        n_checked++;
    }
    printf("# %d tensors of the Python-written file match torch bitwise\n", n_checked);
    assert_int_equal(n_checked, 6);
    assert_string_equal(gtl__safetensors_meta(f, "format"), "pt");
    assert_string_equal(gtl__safetensors_meta(f, "note"), "tab\there \xc3\xa9");
    int64_t pos_ids[8];
    assert_int_equal(gtl__safetensors_read_raw(f, "positions", pos_ids, sizeof pos_ids),
                     GTL_STATUS_OK);
    for (int i = 0; i < 8; i++)
        assert_true(pos_ids[i] == i - 2);
    assert_non_null(gtl__safetensors_find(f, "na\xc3\xafve/\xf0\x9f\x98\x80 \"q\"\\"));
    gtl__safetensors_close(f);
    free(ref);

    /* 2. C wrote, Python checks it against the C side's f32 values. */
    uint16_t halves[N_F16];
    float halves_f32[N_F16];
    for (int i = 0; i < N_F16; i++) {
        halves[i] = (uint16_t)i;
        halves_f32[i] = ref_f16((uint16_t)i);
        if (isnan(halves_f32[i])) {
            /* torch (like F16C) keeps the payload and sets the quiet bit. */
            uint32_t u = ((uint32_t)(i & 0x8000) << 16) | 0x7fc00000u |
                         ((uint32_t)(i & 0x3ff) << 13);
            memcpy(&halves_f32[i], &u, 4);
        }
    }
    float w[6] = {1.5f, -2.0f, 3.25f, 0.0f, -0.0f, 1e-30f};
    uint16_t bf[4] = {0x3f80, 0xc020, 0x0001, 0x7f80};
    float bf_f32[4];
    for (int i = 0; i < 4; i++) {
        uint32_t u = (uint32_t)bf[i] << 16;
        memcpy(&bf_f32[i], &u, 4);
    }
    int64_t idx[2] = {5, -7};
    const st_tensor t[] = {
        {"w", "w", "F32", 2, {2, 3}, w, sizeof w},
        {"h", "h", "F16", 1, {N_F16}, halves, sizeof halves},
        {"b\\u00e9", "b\xc3\xa9", "BF16", 2, {2, 2}, bf, sizeof bf},
        {"idx", "idx", "I64", 1, {2}, idx, sizeof idx},
    };
    char c_path[128], c_ref[128];
    path_in(c_path, sizeof c_path, "c.safetensors");
    path_in(c_ref, sizeof c_ref, "c.ref");
    build_file(c_path, t, 4, "{\"by\": \"libgtl test\"}");
    FILE *rf = fopen(c_ref, "wb");
    const struct {
        const char *name;
        const float *v;
        uint64_t n;
    } refs[] = {{"w", w, 6}, {"h", halves_f32, N_F16}, {"b\xc3\xa9", bf_f32, 4}};
    for (int i = 0; i < 3; i++) {
        uint32_t nl = (uint32_t)strlen(refs[i].name);
        fwrite(&nl, 4, 1, rf);
        fwrite(refs[i].name, 1, nl, rf);
        fwrite(&refs[i].n, 8, 1, rf);
        fwrite(refs[i].v, sizeof(float), refs[i].n, rf);
    }
    fclose(rf);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' check '%s' '%s'", script, c_path, c_ref);
    assert_int_equal(run(cmd), 0);
    assert_int_equal(mem_in_use(), mem0);
}

/* ---- malformed files ------------------------------------------------------ */

#define E_A "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}"

static void test_bad_headers(void **state)
{
    (void)state;
    uint64_t mem0 = mem_in_use();
    char long_name[1200];
    snprintf(long_name, sizeof long_name, "{\"%01025d\":{\"dtype\":\"U8\",\"shape\":[],"
             "\"data_offsets\":[0,1]}}", 0);
    static const struct {
        const char *header;
        size_t buf_len;
        int64_t n_override;
        const char *expect; /* in the message */
    } cases[] = {
        {"", 0, -1, "header length"},
        {"{", 0, -1, "header length"},
        {"{}", 0, 200000000, "header length"},
        {"{}", 0, 100, "header length"},
        {" {}", 0, -1, "start with '{'"},
        {"[]", 0, -1, "start with '{'"},
        {"{}", 4, -1, "cover 0 bytes of the 4"},
        {"{" E_A, 4, -1, "expected ',' or '}'"},
        {"{" E_A ",}", 4, -1, "expected a string"},
        {"{" E_A "} x", 4, -1, "bytes after the JSON object"},
        {"{" E_A "}{}", 4, -1, "bytes after the JSON object"},
        {"{\"a", 0, -1, "unterminated string"},
        {"{\"a\\q\":{}}", 0, -1, "unknown escape"},
        {"{\"a\\u12\":{}}", 0, -1, "bad \\u escape"},
        {"{\"\\udc00\":{}}", 0, -1, "lone low surrogate"},
        {"{\"\\ud800x\":{}}", 0, -1, "without a low surrogate"},
        {"{\"\\ud800\\u0041\":{}}", 0, -1, "without a low surrogate"},
        {"{\"a\\u0000\":{}}", 0, -1, "\\u0000"},
        {"{\"a\tb\":{}}", 0, -1, "control character"},
        {"{\"\xff\":{}}", 0, -1, "UTF-8"},
        {"{\"\xc0\x80\":{}}", 0, -1, "UTF-8"},
        {"{\"a\" {}}", 0, -1, "expected ':'"},
        {"{\"a\":3}", 0, -1, "expected '{'"},
        {"{\"a\":{}}", 0, -1, "empty tensor entry"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, -1, "lacks"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}", 4, -1,
         "leading zero"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 4, -1, "negative"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}", 4, -1,
         "not an integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1e0],\"data_offsets\":[0,4]}}", 4, -1,
         "not an integer"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}", 4,
         -1, "overflows 64 bits"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,4],\"data_offsets\":[0,4]}}",
         4, -1, "count overflows"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}}", 4,
         -1, "at most 8"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":3,\"data_offsets\":[0,4]}}", 4, -1, "shape"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1 2],\"data_offsets\":[0,4]}}", 4, -1,
         "expected ',' or ']'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1,],\"data_offsets\":[0,4]}}", 4, -1,
         "expected an integer"},
        {"{\"a\":{\"dtype\":1,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, -1, "expected a string"},
        {"{\"a\":{\"dtype\":{\"x\":1},\"shape\":[1],\"data_offsets\":[0,4]}}", 4, -1,
         "expected a string"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,4]}}", 4, -1,
         "[begin, end]"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4]}}", 4, -1, "[begin, end]"},
        {"{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
         -1, "duplicate \"dtype\""},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}", 4, -1,
         "unknown key"},
        {"{" E_A "," E_A "}", 8, -1, "duplicate tensor name"},
        {"{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, -1, "name length"},
        {"{\"__metadata__\":{\"a\":1}," E_A "}", 4, -1, "values must be strings"},
        {"{\"__metadata__\":[]," E_A "}", 4, -1, "must be an object"},
        {"{\"__metadata__\":{},\"__metadata__\":{}," E_A "}", 4, -1, "duplicate \"__metadata__\""},
        {"{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}," E_A "}", 4, -1, "duplicate __metadata__"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,8]}}", 4, -1,
         "not within"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, -1, "not within"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, -1, "needs 8"},
        {"{\"a\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,4]}}", 4, -1, "needs 6"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, -1, "overlaps"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, -1, "hole"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, -1, "hole"},
        {"{" E_A "}", 8, -1, "cover 4 bytes of the 8"},
        {"{\"a\":{\"dtype\":\"X9\",\"shape\":[1],\"data_offsets\":[0,4]}}", 5, -1, "cover 4"},
    };
    unsigned char zeros[16] = {0};
    char path[128];
    path_in(path, sizeof path, "bad.safetensors");
    size_t n_cases = sizeof cases / sizeof cases[0];
    for (size_t i = 0; i <= n_cases; i++) {
        const char *h = i < n_cases ? cases[i].header : long_name;
        size_t bl = i < n_cases ? cases[i].buf_len : 1;
        int64_t nov = i < n_cases ? cases[i].n_override : -1;
        const char *expect = i < n_cases ? cases[i].expect : "name length";
        write_st(path, h, strlen(h), nov, zeros, bl);
        gtl__safetensors *f = (gtl__safetensors *)1;
        gtl_status st = gtl__safetensors_open(path, &f);
        if (st != GTL_STATUS_FORMAT || strstr(gtl_last_error(), expect) == NULL ||
            strstr(gtl_last_error(), path) == NULL)
            fail_msg("case %zu '%s': status %d, message '%s', expected '%s'", i, h, (int)st,
                     gtl_last_error(), expect);
        assert_null(f);
        assert_int_equal(mem_in_use(), mem0);
    }
    /* Shorter than the 8-byte length. */
    FILE *fp = fopen(path, "wb");
    fwrite("\x02\0\0", 1, 3, fp);
    fclose(fp);
    gtl__safetensors *f = NULL;
    assert_int_equal(gtl__safetensors_open(path, &f), GTL_STATUS_FORMAT);
    assert_non_null(strstr(gtl_last_error(), "shorter than"));
    printf("# %zu malformed headers rejected\n", n_cases + 2);
    assert_int_equal(mem_in_use(), mem0);
}

/* ---- fuzz ---------------------------------------------------------------- */

/* Opens and reads every tensor; returns the open status. */
static gtl_status load_all(const char *path)
{
    gtl__safetensors *f = NULL;
    gtl_status st = gtl__safetensors_open(path, &f);
    if (st != GTL_STATUS_OK) {
        assert_null(f);
        return st;
    }
    for (int64_t i = 0; i < gtl__safetensors_num_tensors(f); i++) {
        const gtl__safetensors_info *t = gtl__safetensors_tensor(f, i);
        size_t bytes = (size_t)(t->end - t->begin);
        void *buf = malloc(bytes * 2 + 16);
        assert_non_null(buf);
        gtl_status rs;
        if (t->dtype == GTL__ST_F32 || t->dtype == GTL__ST_F16 || t->dtype == GTL__ST_BF16)
            rs = gtl__safetensors_read_f32(f, t->name, buf, t->n_elems);
        else
            rs = gtl__safetensors_read_raw(f, t->name, buf, bytes);
        if (rs != GTL_STATUS_OK && rs != GTL_STATUS_UNSUPPORTED)
            fail_msg("read '%s' of an open file: %d (%s)", t->name, (int)rs, gtl_last_error());
        free(buf);
    }
    gtl__safetensors_close(f);
    return st;
}

static void test_fuzz(void **state)
{
    (void)state;
    uint64_t mem0 = mem_in_use();
    float w[6] = {1, 2, 3, 4, 5, 6};
    uint16_t h[5] = {0x3c00, 0x8001, 0x7c00, 0x7e00, 0x0400};
    int64_t ids[2] = {1, 2};
    const st_tensor t[] = {
        {"w", "w", "F32", 2, {2, 3}, w, sizeof w},
        {"h\\u00e9", "h\xc3\xa9", "F16", 1, {5}, h, sizeof h},
        {"b", "b", "BF16", 1, {5}, h, sizeof h},
        {"ids", "ids", "I64", 1, {2}, ids, sizeof ids},
        {"e", "e", "U8", 2, {0, 3}, NULL, 0},
    };
    char good[128], path[128];
    path_in(good, sizeof good, "fuzz_good.safetensors");
    path_in(path, sizeof path, "fuzz.safetensors");
    build_file(good, t, 5, "{\"k\":\"v\"}");
    size_t n;
    unsigned char *orig = slurp(good, &n);
    unsigned char *buf = malloc(n);
    assert_int_equal(load_all(good), GTL_STATUS_OK);
    uint64_t hdr = 0;
    for (int i = 7; i >= 0; i--)
        hdr = (hdr << 8) | orig[i];

    for (size_t len = 0; len < n; len++) {
        FILE *fp = fopen(path, "wb");
        fwrite(orig, 1, len, fp);
        fclose(fp);
        gtl_status st = load_all(path);
        if (st != GTL_STATUS_FORMAT)
            fail_msg("truncated to %zu: status %d (%s)", len, (int)st, gtl_last_error());
        assert_int_equal(mem_in_use(), mem0);
    }
    gtl__rng rng;
    gtl__rng_seed(&rng, gt_base_seed() ^ 0x5afe);
    int n_ok = 0, n_format = 0;
    for (int trial = 0; trial < 3000; trial++) {
        memcpy(buf, orig, n);
        int n_flips = 1 + (int)gtl__rng_below(&rng, 3);
        for (int k = 0; k < n_flips; k++) {
            /* Mostly the length and the JSON; sometimes anywhere. */
            size_t at = trial % 4 ? (size_t)gtl__rng_below(&rng, 8 + hdr)
                                  : (size_t)gtl__rng_below(&rng, n);
            switch (gtl__rng_below(&rng, 3)) {
            case 0: buf[at] ^= (unsigned char)(1u << gtl__rng_below(&rng, 8)); break;
            case 1: buf[at] = (unsigned char)gtl__rng_u64(&rng); break;
            default:
                buf[at] = (unsigned char)"{}[]\",:\\u0123456789 eE.-"[gtl__rng_below(&rng, 25)];
            }
        }
        size_t len = trial % 5 == 0 ? (size_t)gtl__rng_below(&rng, n + 1) : n;
        FILE *fp = fopen(path, "wb");
        fwrite(buf, 1, len, fp);
        fclose(fp);
        gtl_status st = load_all(path);
        if (st == GTL_STATUS_OK)
            n_ok++;
        else if (st == GTL_STATUS_FORMAT)
            n_format++;
        else
            fail_msg("trial %d: status %d (%s)", trial, (int)st, gtl_last_error());
        assert_int_equal(mem_in_use(), mem0);
    }
    printf("# fuzz: %d FORMAT, %d opened (flips in values or harmless bytes)\n", n_format, n_ok);
    free(buf);
    free(orig);
}

static void test_oom(void **state)
{
    (void)state;
    uint64_t mem0 = mem_in_use();
    char path[128];
    path_in(path, sizeof path, "oom.safetensors");
    float w[2] = {1, 2};
    const st_tensor t[] = {
        {"a", "a", "F32", 1, {2}, w, sizeof w},
        {"b", "b", "F32", 1, {2}, w, sizeof w},
    };
    build_file(path, t, 2, "{\"a\":\"b\",\"c\":\"d\"}");
    int k;
    for (k = 0;; k++) {
        fail_after = k;
        gtl__safetensors *f = NULL;
        gtl_status st = gtl__safetensors_open(path, &f);
        fail_after = -1;
        gtl__safetensors_close(f);
        assert_int_equal(mem_in_use(), mem0);
        if (st == GTL_STATUS_OK)
            break;
        assert_int_equal(st, GTL_STATUS_OUT_OF_MEMORY);
    }
    printf("# open succeeded after %d failing allocations\n", k);
}

static int group_setup(void **state)
{
    (void)state;
    if (gtl_set_allocator(t_malloc, t_realloc, t_free, NULL) != GTL_STATUS_OK)
        return -1;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/gtl_st_XXXXXX");
    return mkdtemp(tmpdir) != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    static const char *names[] = {"rt.safetensors", "py.safetensors", "py.ref", "c.safetensors",
                                  "c.ref", "bad.safetensors", "fuzz_good.safetensors",
                                  "fuzz.safetensors", "oom.safetensors"};
    char p[256];
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        path_in(p, sizeof p, names[i]);
        unlink(p);
    }
    rmdir(tmpdir);
    return 0;
}

int main(void)
{
    gt_base_seed();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip), cmocka_unit_test(test_python_crosscheck),
        cmocka_unit_test(test_bad_headers), cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_oom),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
