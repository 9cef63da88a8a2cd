/* io: safetensors reader with a small strict JSON parser restricted to the
 * safetensors header schema. See safetensors.h and docs/safetensors.md. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/io_bytes.h"
#include "io/safetensors.h"

struct st_meta {
    const char *key;
    const char *value;
};

struct gtl__safetensors {
    int fd;
    char *path;
    uint64_t file_size;
    uint64_t data_start;               /* 8 + N */
    uint64_t buf_len;                  /* file_size - data_start */
    char *header;                      /* N + 1 bytes; strings are decoded in place */
    gtl__safetensors_info *tensors;  /* sorted by name after open */
    int64_t n_tensors, cap_tensors;
    struct st_meta *meta;              /* sorted by key after open */
    int64_t n_meta, cap_meta;
};

static const struct {
    const char *name;
    gtl__safetensors_dtype dtype;
    size_t size;
} dtypes[] = {
    {"BOOL", GTL__ST_BOOL, 1},       {"U8", GTL__ST_U8, 1},   {"I8", GTL__ST_I8, 1},
    {"F8_E5M2", GTL__ST_F8_E5M2, 1}, {"F8_E4M3", GTL__ST_F8_E4M3, 1},
    {"I16", GTL__ST_I16, 2},         {"U16", GTL__ST_U16, 2}, {"F16", GTL__ST_F16, 2},
    {"BF16", GTL__ST_BF16, 2},       {"I32", GTL__ST_I32, 4}, {"U32", GTL__ST_U32, 4},
    {"F32", GTL__ST_F32, 4},         {"F64", GTL__ST_F64, 8}, {"I64", GTL__ST_I64, 8},
    {"U64", GTL__ST_U64, 8},
};

size_t gtl__safetensors_dtype_size(gtl__safetensors_dtype dtype)
{
    for (size_t i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++)
        if (dtypes[i].dtype == dtype)
            return dtypes[i].size;
    return 0;
}

static gtl__safetensors_dtype dtype_from_name(const char *s)
{
    for (size_t i = 0; i < sizeof(dtypes) / sizeof(dtypes[0]); i++)
        if (strcmp(dtypes[i].name, s) == 0)
            return dtypes[i].dtype;
    return GTL__ST_UNKNOWN;
}

/* ---- JSON header parser ------------------------------------------------- */

struct parser {
    gtl__safetensors *f;
    char *s;       /* the header bytes, NUL-terminated at n */
    size_t n;
    size_t pos;
};

static gtl_status bad(const struct parser *p, const char *what)
{
    return gtl__error(GTL_STATUS_FORMAT, "safetensors '%s': JSON header byte %zu: %s", p->f->path,
                      p->pos, what);
}

static void skip_ws(struct parser *p)
{
    while (p->pos < p->n) {
        char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
            break;
        p->pos++;
    }
}

/* Skips whitespace and consumes c; false if the next byte is not c. */
static bool eat(struct parser *p, char c)
{
    skip_ws(p);
    if (p->pos < p->n && p->s[p->pos] == c) {
        p->pos++;
        return true;
    }
    return false;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

static bool read_hex4(struct parser *p, uint32_t *out)
{
    if (p->n - p->pos < 4)
        return false;
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        int d = hex_digit(p->s[p->pos + (size_t)i]);
        if (d < 0)
            return false;
        v = (v << 4) | (uint32_t)d;
    }
    p->pos += 4;
    *out = v;
    return true;
}

/* Parses a JSON string and decodes it in place: the decoded bytes are
 * written from the opening quote onward, which never passes the read
 * position because every escape is at least as long as its UTF-8. The
 * result is NUL-terminated, valid UTF-8 without NUL; *out_len is its length. */
static gtl_status parse_string(struct parser *p, char **out, size_t *out_len)
{
    skip_ws(p);
    if (p->pos >= p->n || p->s[p->pos] != '"')
        return bad(p, "expected a string");
    char *start = p->s + p->pos;
    char *w = start;
    p->pos++;
    for (;;) {
        if (p->pos >= p->n)
            return bad(p, "unterminated string");
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c < 0x20)
            return bad(p, "control character in string");
        if (c != '\\') {
            *w++ = (char)c;
            p->pos++;
            continue;
        }
        p->pos++;
        if (p->pos >= p->n)
            return bad(p, "unterminated escape");
        char e = p->s[p->pos++];
        switch (e) {
        case '"': *w++ = '"'; break;
        case '\\': *w++ = '\\'; break;
        case '/': *w++ = '/'; break;
        case 'b': *w++ = '\b'; break;
        case 'f': *w++ = '\f'; break;
        case 'n': *w++ = '\n'; break;
        case 'r': *w++ = '\r'; break;
        case 't': *w++ = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (!read_hex4(p, &cp))
                return bad(p, "bad \\u escape");
            if (cp >= 0xdc00 && cp <= 0xdfff)
                return bad(p, "lone low surrogate in \\u escape");
            if (cp >= 0xd800 && cp <= 0xdbff) {
                uint32_t lo;
                if (p->n - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u')
                    return bad(p, "high surrogate without a low surrogate");
                p->pos += 2;
                if (!read_hex4(p, &lo) || lo < 0xdc00 || lo > 0xdfff)
                    return bad(p, "high surrogate without a low surrogate");
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            if (cp == 0)
                return bad(p, "\\u0000 in string");
            if (cp < 0x80) {
                *w++ = (char)cp;
            } else if (cp < 0x800) {
                *w++ = (char)(0xc0 | (cp >> 6));
                *w++ = (char)(0x80 | (cp & 0x3f));
            } else if (cp < 0x10000) {
                *w++ = (char)(0xe0 | (cp >> 12));
                *w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
                *w++ = (char)(0x80 | (cp & 0x3f));
            } else {
                *w++ = (char)(0xf0 | (cp >> 18));
                *w++ = (char)(0x80 | ((cp >> 12) & 0x3f));
                *w++ = (char)(0x80 | ((cp >> 6) & 0x3f));
                *w++ = (char)(0x80 | (cp & 0x3f));
            }
            break;
        }
        default:
            return bad(p, "unknown escape in string");
        }
    }
    *w = '\0';
    size_t len = (size_t)(w - start);
    if (!gtl__utf8_valid((const unsigned char *)start, len))
        return bad(p, "string is not valid UTF-8");
    *out = start;
    *out_len = len;
    return GTL_STATUS_OK;
}

/* A non-negative JSON integer without sign, fraction or exponent. */
static gtl_status parse_uint(struct parser *p, uint64_t *out)
{
    skip_ws(p);
    if (p->pos >= p->n)
        return bad(p, "expected an integer");
    if (p->s[p->pos] == '-')
        return bad(p, "negative integer");
    if (p->s[p->pos] < '0' || p->s[p->pos] > '9')
        return bad(p, "expected an integer");
    if (p->s[p->pos] == '0' && p->pos + 1 < p->n && p->s[p->pos + 1] >= '0' &&
        p->s[p->pos + 1] <= '9')
        return bad(p, "integer with a leading zero");
    uint64_t v = 0;
    while (p->pos < p->n && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
        uint64_t d = (uint64_t)(p->s[p->pos] - '0');
        if (v > (UINT64_MAX - d) / 10)
            return bad(p, "integer overflows 64 bits");
        v = v * 10 + d;
        p->pos++;
    }
    if (p->pos < p->n && (p->s[p->pos] == '.' || p->s[p->pos] == 'e' || p->s[p->pos] == 'E'))
        return bad(p, "not an integer");
    *out = v;
    return GTL_STATUS_OK;
}

/* [u, u, ...] with at most max values; what names the field. */
static gtl_status parse_uint_array(struct parser *p, uint64_t *vals, int32_t max, int32_t *count,
                                   const char *what)
{
    if (!eat(p, '['))
        return bad(p, what);
    *count = 0;
    if (eat(p, ']'))
        return GTL_STATUS_OK;
    for (;;) {
        if (*count == max)
            return bad(p, what);
        gtl_status st = parse_uint(p, &vals[*count]);
        if (st != GTL_STATUS_OK)
            return st;
        (*count)++;
        if (eat(p, ']'))
            return GTL_STATUS_OK;
        if (!eat(p, ','))
            return bad(p, "expected ',' or ']' in an array");
    }
}

/* {"dtype": "...", "shape": [...], "data_offsets": [b, e]}: each key
 * exactly once, no others. */
static gtl_status parse_tensor(struct parser *p, gtl__safetensors_info *t)
{
    bool have_dtype = false, have_shape = false, have_offsets = false;
    if (!eat(p, '{'))
        return bad(p, "expected '{' for a tensor entry");
    if (eat(p, '}'))
        return bad(p, "empty tensor entry");
    for (;;) {
        char *key, *val;
        size_t len;
        gtl_status st = parse_string(p, &key, &len);
        if (st != GTL_STATUS_OK)
            return st;
        if (!eat(p, ':'))
            return bad(p, "expected ':'");
        if (strcmp(key, "dtype") == 0) {
            if (have_dtype)
                return bad(p, "duplicate \"dtype\"");
            st = parse_string(p, &val, &len);
            if (st != GTL_STATUS_OK)
                return st;
            t->dtype_name = val;
            t->dtype = dtype_from_name(val);
            have_dtype = true;
        } else if (strcmp(key, "shape") == 0) {
            if (have_shape)
                return bad(p, "duplicate \"shape\"");
            uint64_t dims[GTL__SAFETENSORS_MAX_DIMS];
            st = parse_uint_array(p, dims, GTL__SAFETENSORS_MAX_DIMS, &t->nd,
                                  "\"shape\" must be an array of at most 8 integers");
            if (st != GTL_STATUS_OK)
                return st;
            uint64_t n = 1;
            for (int32_t d = 0; d < t->nd; d++) {
                if (dims[d] > (uint64_t)INT64_MAX ||
                    (dims[d] != 0 && n > (uint64_t)INT64_MAX / dims[d]))
                    return bad(p, "\"shape\" element count overflows");
                n *= dims[d];
                t->ne[d] = (int64_t)dims[d];
            }
            t->n_elems = (int64_t)n;
            have_shape = true;
        } else if (strcmp(key, "data_offsets") == 0) {
            if (have_offsets)
                return bad(p, "duplicate \"data_offsets\"");
            uint64_t off[2];
            int32_t cnt;
            st = parse_uint_array(p, off, 2, &cnt, "\"data_offsets\" must be [begin, end]");
            if (st != GTL_STATUS_OK)
                return st;
            if (cnt != 2)
                return bad(p, "\"data_offsets\" must be [begin, end]");
            t->begin = off[0];
            t->end = off[1];
            have_offsets = true;
        } else {
            return bad(p, "unknown key in a tensor entry");
        }
        if (eat(p, '}'))
            break;
        if (!eat(p, ','))
            return bad(p, "expected ',' or '}' in a tensor entry");
    }
    if (!have_dtype || !have_shape || !have_offsets)
        return bad(p, "tensor entry lacks \"dtype\", \"shape\" or \"data_offsets\"");
    return GTL_STATUS_OK;
}

static gtl_status parse_metadata(struct parser *p)
{
    gtl__safetensors *f = p->f;
    if (!eat(p, '{'))
        return bad(p, "\"__metadata__\" must be an object");
    if (eat(p, '}'))
        return GTL_STATUS_OK;
    for (;;) {
        char *key, *val;
        size_t len;
        gtl_status st = parse_string(p, &key, &len);
        if (st != GTL_STATUS_OK)
            return st;
        if (!eat(p, ':'))
            return bad(p, "expected ':'");
        st = parse_string(p, &val, &len);
        if (st != GTL_STATUS_OK)
            return bad(p, "\"__metadata__\" values must be strings");
        if (f->n_meta == f->cap_meta) {
            int64_t cap = f->cap_meta ? 2 * f->cap_meta : 8;
            struct st_meta *m = gtl__realloc(f->meta, (size_t)cap * sizeof(*m));
            if (m == NULL)
                return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "safetensors '%s': out of memory",
                                  f->path);
            f->meta = m;
            f->cap_meta = cap;
        }
        f->meta[f->n_meta].key = key;
        f->meta[f->n_meta].value = val;
        f->n_meta++;
        if (eat(p, '}'))
            return GTL_STATUS_OK;
        if (!eat(p, ','))
            return bad(p, "expected ',' or '}' in \"__metadata__\"");
    }
}

static gtl_status parse_header(struct parser *p)
{
    gtl__safetensors *f = p->f;
    bool have_meta = false;
    if (p->n == 0 || p->s[0] != '{')
        return bad(p, "the header must start with '{'");
    p->pos = 1;
    if (!eat(p, '}')) {
        for (;;) {
            char *key;
            size_t len;
            gtl_status st = parse_string(p, &key, &len);
            if (st != GTL_STATUS_OK)
                return st;
            if (!eat(p, ':'))
                return bad(p, "expected ':'");
            if (strcmp(key, "__metadata__") == 0) {
                if (have_meta)
                    return bad(p, "duplicate \"__metadata__\"");
                have_meta = true;
                st = parse_metadata(p);
                if (st != GTL_STATUS_OK)
                    return st;
            } else {
                if (len == 0 || len > GTL__SAFETENSORS_MAX_NAME)
                    return bad(p, "tensor name length not in [1, 1024]");
                if (f->n_tensors == f->cap_tensors) {
                    int64_t cap = f->cap_tensors ? 2 * f->cap_tensors : 64;
                    gtl__safetensors_info *t = gtl__realloc(f->tensors,
                                                              (size_t)cap * sizeof(*t));
                    if (t == NULL)
                        return gtl__error(GTL_STATUS_OUT_OF_MEMORY,
                                          "safetensors '%s': out of memory", f->path);
                    f->tensors = t;
                    f->cap_tensors = cap;
                }
                gtl__safetensors_info *t = &f->tensors[f->n_tensors];
                memset(t, 0, sizeof(*t));
                t->name = key;
                st = parse_tensor(p, t);
                if (st != GTL_STATUS_OK)
                    return st;
                f->n_tensors++;
            }
            if (eat(p, '}'))
                break;
            if (!eat(p, ','))
                return bad(p, "expected ',' or '}' at the top level");
        }
    }
    skip_ws(p);
    if (p->pos != p->n)
        return bad(p, "bytes after the JSON object");
    return GTL_STATUS_OK;
}

/* ---- validation --------------------------------------------------------- */

static int cmp_by_name(const void *a, const void *b)
{
    return strcmp(((const gtl__safetensors_info *)a)->name,
                  ((const gtl__safetensors_info *)b)->name);
}

static int cmp_meta(const void *a, const void *b)
{
    return strcmp(((const struct st_meta *)a)->key, ((const struct st_meta *)b)->key);
}

static int cmp_by_offset(const void *a, const void *b)
{
    const gtl__safetensors_info *x = *(const gtl__safetensors_info *const *)a;
    const gtl__safetensors_info *y = *(const gtl__safetensors_info *const *)b;
    if (x->begin != y->begin)
        return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end)
        return x->end < y->end ? -1 : 1;
    return 0;
}

static gtl_status validate(gtl__safetensors *f)
{
    const char *path = f->path;
    for (int64_t i = 0; i < f->n_tensors; i++) {
        const gtl__safetensors_info *t = &f->tensors[i];
        if (t->begin > t->end || t->end > f->buf_len)
            return gtl__error(GTL_STATUS_FORMAT, "safetensors '%s': tensor '%s': data_offsets "
                              "[%llu, %llu] not within the %llu-byte buffer", path, t->name,
                              (unsigned long long)t->begin, (unsigned long long)t->end,
                              (unsigned long long)f->buf_len);
        size_t elsize = gtl__safetensors_dtype_size(t->dtype);
        if (elsize == 0)
            continue; /* unknown dtype: size cannot be checked; reading it is UNSUPPORTED */
        uint64_t n = (uint64_t)t->n_elems;
        if (n > UINT64_MAX / elsize || n * elsize != t->end - t->begin)
            return gtl__error(GTL_STATUS_FORMAT, "safetensors '%s': tensor '%s': %llu bytes in "
                              "data_offsets, but %s x %llu elements needs %llu", path, t->name,
                              (unsigned long long)(t->end - t->begin), t->dtype_name,
                              (unsigned long long)n, (unsigned long long)(n * elsize));
        if (n * elsize > (uint64_t)SIZE_MAX)
            return gtl__error(GTL_STATUS_FORMAT, "safetensors '%s': tensor '%s' is too large",
                              path, t->name);
    }
    /* qsort and bsearch need a non-NULL base even for zero elements. */
    if (f->n_tensors > 1)
        qsort(f->tensors, (size_t)f->n_tensors, sizeof(*f->tensors), cmp_by_name);
    for (int64_t i = 1; i < f->n_tensors; i++)
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0)
            return gtl__error(GTL_STATUS_FORMAT, "safetensors '%s': duplicate tensor name '%s'",
                              path, f->tensors[i].name);
    if (f->n_meta > 1)
        qsort(f->meta, (size_t)f->n_meta, sizeof(*f->meta), cmp_meta);
    for (int64_t i = 1; i < f->n_meta; i++)
        if (strcmp(f->meta[i - 1].key, f->meta[i].key) == 0)
            return gtl__error(GTL_STATUS_FORMAT, "safetensors '%s': duplicate __metadata__ key "
                              "'%s'", path, f->meta[i].key);

    /* The tensors must tile the buffer: no holes, no overlaps. */
    const gtl__safetensors_info **order =
        gtl__calloc((size_t)f->n_tensors + 1, sizeof(*order));
    if (order == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "safetensors '%s': out of memory", path);
    for (int64_t i = 0; i < f->n_tensors; i++)
        order[i] = &f->tensors[i];
    if (f->n_tensors > 1)
        qsort(order, (size_t)f->n_tensors, sizeof(*order), cmp_by_offset);
    gtl_status st = GTL_STATUS_OK;
    uint64_t at = 0;
    for (int64_t i = 0; i < f->n_tensors; i++) {
        if (order[i]->begin != at) {
            st = gtl__error(GTL_STATUS_FORMAT, "safetensors '%s': tensor '%s': data_offsets "
                            "begin %llu, expected %llu (%s)", path, order[i]->name,
                            (unsigned long long)order[i]->begin, (unsigned long long)at,
                            order[i]->begin < at ? "overlaps the previous tensor"
                                                 : "hole in the buffer");
            break;
        }
        at = order[i]->end;
    }
    if (st == GTL_STATUS_OK && at != f->buf_len)
        st = gtl__error(GTL_STATUS_FORMAT, "safetensors '%s': tensors cover %llu bytes of the "
                        "%llu-byte buffer", path, (unsigned long long)at,
                        (unsigned long long)f->buf_len);
    gtl__free(order);
    return st;
}

/* ---- open / close ------------------------------------------------------- */

void gtl__safetensors_close(gtl__safetensors *f)
{
    if (f == NULL)
        return;
    if (f->fd >= 0)
        close(f->fd);
    gtl__free(f->path);
    gtl__free(f->header);
    gtl__free(f->tensors);
    gtl__free(f->meta);
    gtl__free(f);
}

static gtl_status read_error(const gtl__safetensors *f, const char *what)
{
    if (errno == 0)
        return gtl__error(GTL_STATUS_FORMAT, "safetensors '%s': %s: unexpected end of file",
                          f->path, what);
    return gtl__error(GTL_STATUS_IO, "safetensors '%s': reading %s: %s", f->path, what,
                      strerror(errno));
}

gtl_status gtl__safetensors_open(const char *path, gtl__safetensors **out)
{
    if (out == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl__safetensors_open: NULL out");
    *out = NULL;
    if (path == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl__safetensors_open: NULL path");
    gtl_status st;
    gtl__safetensors *f = gtl__calloc(1, sizeof(*f));
    if (f == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "gtl__safetensors_open: out of memory");
    f->fd = -1;
    size_t path_len = strlen(path);
    f->path = gtl__malloc(path_len + 1);
    if (f->path == NULL) {
        st = gtl__error(GTL_STATUS_OUT_OF_MEMORY, "gtl__safetensors_open: out of memory");
        goto out_fail;
    }
    memcpy(f->path, path, path_len + 1);
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (f->fd < 0) {
        st = gtl__error(GTL_STATUS_IO, "safetensors '%s': cannot open: %s", path,
                        strerror(errno));
        goto out_fail;
    }
    struct stat sb;
    if (fstat(f->fd, &sb) != 0) {
        st = gtl__error(GTL_STATUS_IO, "safetensors '%s': fstat: %s", path, strerror(errno));
        goto out_fail;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = gtl__error(GTL_STATUS_IO, "safetensors '%s': not a regular file", path);
        goto out_fail;
    }
    f->file_size = (uint64_t)sb.st_size;
    if (f->file_size < 8) {
        st = gtl__error(GTL_STATUS_FORMAT, "safetensors '%s': %llu bytes, shorter than the "
                        "8-byte header length", path, (unsigned long long)f->file_size);
        goto out_fail;
    }
    unsigned char len8[8];
    if (gtl__pread_full(f->fd, len8, 8, 0) != 0) {
        st = read_error(f, "header length");
        goto out_fail;
    }
    uint64_t n = gtl__le64(len8);
    if (n < 2 || n > GTL__SAFETENSORS_MAX_HEADER || n > f->file_size - 8) {
        st = gtl__error(GTL_STATUS_FORMAT, "safetensors '%s': header length %llu not in [2, "
                        "min(%llu, file size %llu - 8)]", path, (unsigned long long)n,
                        GTL__SAFETENSORS_MAX_HEADER, (unsigned long long)f->file_size);
        goto out_fail;
    }
    f->data_start = 8 + n;
    f->buf_len = f->file_size - f->data_start;
    /* n is bounded by both the 100 MB cap and the bytes on disk. */
    f->header = gtl__malloc((size_t)n + 1);
    if (f->header == NULL) {
        st = gtl__error(GTL_STATUS_OUT_OF_MEMORY, "safetensors '%s': out of memory for the "
                        "%llu-byte header", path, (unsigned long long)n);
        goto out_fail;
    }
    if (gtl__pread_full(f->fd, f->header, (size_t)n, 8) != 0) {
        st = read_error(f, "header");
        goto out_fail;
    }
    f->header[n] = '\0';
    struct parser p = {f, f->header, (size_t)n, 0};
    st = parse_header(&p);
    if (st != GTL_STATUS_OK)
        goto out_fail;
    st = validate(f);
    if (st != GTL_STATUS_OK)
        goto out_fail;
    *out = f;
    return GTL_STATUS_OK;

out_fail:
    gtl__safetensors_close(f);
    return st;
}

/* ---- queries and reads -------------------------------------------------- */

int64_t gtl__safetensors_num_tensors(const gtl__safetensors *f)
{
    return f != NULL ? f->n_tensors : 0;
}

const gtl__safetensors_info *gtl__safetensors_tensor(const gtl__safetensors *f, int64_t i)
{
    if (f == NULL || i < 0 || i >= f->n_tensors)
        return NULL;
    return &f->tensors[i];
}

const gtl__safetensors_info *gtl__safetensors_find(const gtl__safetensors *f,
                                                     const char *name)
{
    if (f == NULL || name == NULL || f->n_tensors == 0)
        return NULL;
    gtl__safetensors_info key = {.name = name};
    return bsearch(&key, f->tensors, (size_t)f->n_tensors, sizeof(*f->tensors), cmp_by_name);
}

int64_t gtl__safetensors_num_meta(const gtl__safetensors *f)
{
    return f != NULL ? f->n_meta : 0;
}

const char *gtl__safetensors_meta_key(const gtl__safetensors *f, int64_t i)
{
    if (f == NULL || i < 0 || i >= f->n_meta)
        return NULL;
    return f->meta[i].key;
}

const char *gtl__safetensors_meta(const gtl__safetensors *f, const char *key)
{
    if (f == NULL || key == NULL || f->n_meta == 0)
        return NULL;
    struct st_meta k = {.key = key};
    const struct st_meta *m =
        bsearch(&k, f->meta, (size_t)f->n_meta, sizeof(*f->meta), cmp_meta);
    return m != NULL ? m->value : NULL;
}

static gtl_status find_for_read(gtl__safetensors *f, const char *fn, const char *name,
                                const void *dst, const gtl__safetensors_info **out)
{
    if (f == NULL || name == NULL || dst == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: NULL argument", fn);
    *out = gtl__safetensors_find(f, name);
    if (*out == NULL)
        return gtl__error(GTL_STATUS_FORMAT, "safetensors '%s' has no tensor '%s'", f->path,
                          name);
    if ((*out)->dtype == GTL__ST_UNKNOWN)
        return gtl__error(GTL_STATUS_UNSUPPORTED, "safetensors '%s': tensor '%s' has dtype "
                          "\"%s\", which libgtl does not know", f->path, name,
                          (*out)->dtype_name);
    return GTL_STATUS_OK;
}

static gtl_status read_bytes(gtl__safetensors *f, const gtl__safetensors_info *t, void *dst)
{
    size_t len = (size_t)(t->end - t->begin);
    if (len > 0 && gtl__pread_full(f->fd, dst, len, f->data_start + t->begin) != 0)
        return read_error(f, t->name);
    return GTL_STATUS_OK;
}

gtl_status gtl__safetensors_read_raw(gtl__safetensors *f, const char *name, void *dst,
                                     size_t dst_capacity)
{
    const gtl__safetensors_info *t;
    gtl_status st = find_for_read(f, "gtl__safetensors_read_raw", name, dst, &t);
    if (st != GTL_STATUS_OK)
        return st;
    size_t len = (size_t)(t->end - t->begin);
    if (dst_capacity < len)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl__safetensors_read_raw: tensor '%s' "
                          "needs %zu bytes, buffer has %zu", name, len, dst_capacity);
    st = read_bytes(f, t, dst);
    size_t elsize = gtl__safetensors_dtype_size(t->dtype);
    if (st == GTL_STATUS_OK && !gtl__host_is_le() && elsize > 1)
        gtl__swap_elems(dst, (size_t)t->n_elems, elsize);
    return st;
}

gtl_status gtl__safetensors_read_f32(gtl__safetensors *f, const char *name, float *dst,
                                     int64_t dst_capacity)
{
    const gtl__safetensors_info *t;
    gtl_status st = find_for_read(f, "gtl__safetensors_read_f32", name, dst, &t);
    if (st != GTL_STATUS_OK)
        return st;
    if (t->dtype != GTL__ST_F32 && t->dtype != GTL__ST_F16 && t->dtype != GTL__ST_BF16)
        return gtl__error(GTL_STATUS_UNSUPPORTED, "safetensors '%s': tensor '%s' is %s; only "
                          "F32, F16 and BF16 convert to f32", f->path, name, t->dtype_name);
    const int64_t n = t->n_elems;
    if (dst_capacity < n)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl__safetensors_read_f32: tensor '%s' has "
                          "%lld elements, buffer holds %lld", name, (long long)n,
                          (long long)dst_capacity);
    if (t->dtype == GTL__ST_F32) {
        st = read_bytes(f, t, dst);
        if (st == GTL_STATUS_OK && !gtl__host_is_le())
            gtl__swap_elems(dst, (size_t)n, 4);
        return st;
    }
    /* 16-bit: read into the upper half of dst, widen in place front to back
     * (element i is read before the write of element i reaches it). */
    unsigned char *bytes = (unsigned char *)dst;
    unsigned char *src = bytes + 2 * (size_t)n;
    st = read_bytes(f, t, src);
    if (st != GTL_STATUS_OK)
        return st;
    const bool bf16 = t->dtype == GTL__ST_BF16;
    for (int64_t i = 0; i < n; i++) {
        uint16_t h = gtl__le16(src + 2 * i);
        float v = bf16 ? gtl__bf16_to_f32(h) : gtl__f16_to_f32(h);
        memcpy(bytes + 4 * i, &v, sizeof v);
    }
    return GTL_STATUS_OK;
}
