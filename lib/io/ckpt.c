/* io: checkpoint writer and reader, format version 1.
 * Byte layout: docs/checkpoint-format.md (keep the two in step). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "io/ckpt.h"
#include "io/io_bytes.h"

#define HEADER_SIZE 64
#define HEADER_CRC_AT 60
#define CHUNK ((size_t)1 << 18)
#define MAX_DEFLATE_RATIO 1032
/* Smallest encodings: a metadata entry with a 1-byte key and an empty
 * string; a tensor entry with a 1-byte name and no dims. */
#define MIN_META_ENTRY (4 + 1 + 1 + 4)
#define MIN_TENSOR_ENTRY (4 + 1 + 4 + 8 + 8 + 8 + 4)

static const char magic[8] = {'G', 'T', 'L', 'C', 'K', 'P', 'T', '\0'};

size_t gtl__ckpt_dtype_size(int32_t dtype)
{
    switch (dtype) {
    case GTL__CKPT_F32: return 4;
    case GTL__CKPT_BF16: return 2;
    case GTL__CKPT_I64: return 8;
    case GTL__CKPT_U8: return 1;
    }
    return 0;
}

const char *gtl__ckpt_dtype_name(int32_t dtype)
{
    switch (dtype) {
    case GTL__CKPT_F32: return "f32";
    case GTL__CKPT_BF16: return "bf16";
    case GTL__CKPT_I64: return "i64";
    case GTL__CKPT_U8: return "u8";
    }
    return "unknown";
}

/* zlib allocates through libgtl's hooks so its memory is accounted and the
 * host's allocator (and the tests' failing allocator) sees it. */
static voidpf zlib_alloc(voidpf opaque, uInt items, uInt size)
{
    (void)opaque;
    return gtl__calloc(items, size);
}

static void zlib_free(voidpf opaque, voidpf p)
{
    (void)opaque;
    gtl__free(p);
}

/* ======================================================================== */
/* Writer                                                                   */
/* ======================================================================== */

struct wmeta {
    char *key;
    size_t key_len;
    gtl__ckpt_meta_type type;
    char *str;         /* STR only */
    size_t str_len;
    uint64_t bits;     /* I64 / F64 value bits */
};

struct wtensor {
    char *name;
    size_t name_len;
    gtl__ckpt_dtype dtype;
    uint8_t codec;     /* 0 stored, 1 zlib */
    int32_t nd;
    int64_t ne[GTL__CKPT_MAX_DIMS];
    uint64_t raw_size;
    uint64_t stored_size;
    uint32_t crc;
    unsigned char *stored;
};

struct gtl__ckpt_writer {
    int32_t level;
    struct wmeta *meta;
    int64_t n_meta, cap_meta;
    struct wtensor *tensors;
    int64_t n_tensors, cap_tensors;
    uint64_t table_size;
};

gtl_status gtl__ckpt_writer_create(int32_t level, gtl__ckpt_writer **out)
{
    if (out == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl__ckpt_writer_create: NULL out");
    *out = NULL;
    if (level < -1 || level > 9)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "gtl__ckpt_writer_create: level %d not in [-1, 9]", (int)level);
    gtl__ckpt_writer *w = gtl__calloc(1, sizeof(*w));
    if (w == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "gtl__ckpt_writer_create: out of memory");
    w->level = level;
    *out = w;
    return GTL_STATUS_OK;
}

void gtl__ckpt_writer_destroy(gtl__ckpt_writer *w)
{
    if (w == NULL)
        return;
    for (int64_t i = 0; i < w->n_meta; i++) {
        gtl__free(w->meta[i].key);
        gtl__free(w->meta[i].str);
    }
    for (int64_t i = 0; i < w->n_tensors; i++) {
        gtl__free(w->tensors[i].name);
        gtl__free(w->tensors[i].stored);
    }
    gtl__free(w->meta);
    gtl__free(w->tensors);
    gtl__free(w);
}

/* Checks a key or name: 1..max bytes of UTF-8 without NUL. */
static gtl_status check_string(const char *fn, const char *what, const char *s, size_t max,
                               bool allow_empty, size_t *out_len)
{
    if (s == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: NULL %s", fn, what);
    size_t n = strnlen(s, max + 1);
    if (n > max || (n == 0 && !allow_empty))
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: %s length must be in [%d, %zu]", fn,
                          what, allow_empty ? 0 : 1, max);
    if (!gtl__utf8_valid((const unsigned char *)s, n))
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: %s is not valid UTF-8", fn, what);
    *out_len = n;
    return GTL_STATUS_OK;
}

static char *dup_bytes(const char *s, size_t n)
{
    char *p = gtl__malloc(n + 1);
    if (p != NULL) {
        memcpy(p, s, n);
        p[n] = '\0';
    }
    return p;
}

static gtl_status add_meta(gtl__ckpt_writer *w, const char *fn, const char *key,
                           gtl__ckpt_meta_type type, const char *str, uint64_t bits)
{
    if (w == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: NULL writer", fn);
    size_t key_len, str_len = 0;
    gtl_status st = check_string(fn, "key", key, GTL__CKPT_MAX_NAME, false, &key_len);
    if (st != GTL_STATUS_OK)
        return st;
    if (type == GTL__CKPT_META_STR) {
        st = check_string(fn, "value", str, GTL__CKPT_MAX_STR, true, &str_len);
        if (st != GTL_STATUS_OK)
            return st;
    }
    for (int64_t i = 0; i < w->n_meta; i++)
        if (w->meta[i].key_len == key_len && memcmp(w->meta[i].key, key, key_len) == 0)
            return gtl__error(GTL_STATUS_INVALID_ARG, "%s: duplicate key '%s'", fn, key);
    if (w->n_meta >= (int64_t)GTL__CKPT_MAX_META)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: more than %u metadata entries", fn,
                          GTL__CKPT_MAX_META);
    uint64_t entry = 4 + key_len + 1 + (type == GTL__CKPT_META_STR ? 4 + str_len : 8);
    if (w->table_size + entry > GTL__CKPT_MAX_TABLE)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: table would exceed %llu bytes", fn,
                          (unsigned long long)GTL__CKPT_MAX_TABLE);

    if (w->n_meta == w->cap_meta) {
        int64_t cap = w->cap_meta ? 2 * w->cap_meta : 16;
        struct wmeta *m = gtl__realloc(w->meta, (size_t)cap * sizeof(*m));
        if (m == NULL)
            return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: out of memory", fn);
        w->meta = m;
        w->cap_meta = cap;
    }
    struct wmeta m = {.key_len = key_len, .type = type, .str_len = str_len, .bits = bits};
    m.key = dup_bytes(key, key_len);
    if (m.key == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: out of memory", fn);
    if (type == GTL__CKPT_META_STR) {
        m.str = dup_bytes(str, str_len);
        if (m.str == NULL) {
            gtl__free(m.key);
            return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: out of memory", fn);
        }
    }
    w->meta[w->n_meta++] = m;
    w->table_size += entry;
    return GTL_STATUS_OK;
}

gtl_status gtl__ckpt_add_meta_str(gtl__ckpt_writer *w, const char *key, const char *value)
{
    return add_meta(w, "gtl__ckpt_add_meta_str", key, GTL__CKPT_META_STR, value, 0);
}

gtl_status gtl__ckpt_add_meta_i64(gtl__ckpt_writer *w, const char *key, int64_t value)
{
    return add_meta(w, "gtl__ckpt_add_meta_i64", key, GTL__CKPT_META_I64, NULL,
                    (uint64_t)value);
}

gtl_status gtl__ckpt_add_meta_f64(gtl__ckpt_writer *w, const char *key, double value)
{
    uint64_t bits;
    GTL_STATIC_ASSERT(sizeof(double) == 8, "IEEE binary64 double expected");
    memcpy(&bits, &value, sizeof bits);
    return add_meta(w, "gtl__ckpt_add_meta_f64", key, GTL__CKPT_META_F64, NULL, bits);
}

/* Copies n bytes of host-order elements to dst in little-endian order. */
static void copy_le(unsigned char *dst, const unsigned char *src, size_t n, size_t elsize)
{
    memcpy(dst, src, n);
    if (!gtl__host_is_le() && elsize > 1)
        gtl__swap_elems(dst, n / elsize, elsize);
}

/* Stores the payload uncompressed. */
static gtl_status payload_stored(struct wtensor *t, const unsigned char *src, size_t elsize)
{
    t->codec = 0;
    t->stored_size = t->raw_size;
    t->crc = 0;
    gtl__free(t->stored);
    t->stored = NULL;
    if (t->raw_size == 0)
        return GTL_STATUS_OK;
    t->stored = gtl__malloc((size_t)t->raw_size);
    if (t->stored == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY,
                          "gtl__ckpt_add_tensor: out of memory (%llu bytes)",
                          (unsigned long long)t->raw_size);
    copy_le(t->stored, src, (size_t)t->raw_size, elsize);
    t->crc = (uint32_t)crc32_z(0, t->stored, (z_size_t)t->raw_size);
    return GTL_STATUS_OK;
}

/* Deflates the payload into a buffer that grows as needed. Falls back to
 * storing when the stream would not be smaller than the raw bytes, so
 * incompressible data never costs more than its own size. */
static gtl_status payload_deflate(struct wtensor *t, const unsigned char *src, size_t elsize,
                                  int32_t level)
{
    const size_t raw = (size_t)t->raw_size;
    const bool stage = !gtl__host_is_le() && elsize > 1;
    unsigned char *staging = NULL;
    unsigned char *out = NULL;
    size_t out_cap = raw < CHUNK ? raw : CHUNK;
    size_t in_pos = 0;
    uint32_t crc = 0;
    gtl_status st = GTL_STATUS_OK;
    z_stream zs;
    memset(&zs, 0, sizeof zs);
    zs.zalloc = zlib_alloc;
    zs.zfree = zlib_free;

    int zr = deflateInit(&zs, level);
    if (zr != Z_OK)
        return gtl__error(zr == Z_MEM_ERROR ? GTL_STATUS_OUT_OF_MEMORY : GTL_STATUS_INTERNAL,
                          "gtl__ckpt_add_tensor: deflateInit failed (%d)", zr);
    out = gtl__malloc(out_cap);
    if (out == NULL || (stage && (staging = gtl__malloc(CHUNK)) == NULL)) {
        st = gtl__error(GTL_STATUS_OUT_OF_MEMORY, "gtl__ckpt_add_tensor: out of memory");
        goto out_end;
    }
    zs.next_out = out;
    zs.avail_out = (uInt)out_cap;
    for (;;) {
        if (zs.avail_in == 0 && in_pos < raw) {
            size_t k = raw - in_pos < CHUNK ? raw - in_pos : CHUNK;
            const unsigned char *p = src + in_pos;
            if (stage) {
                copy_le(staging, p, k, elsize);
                p = staging;
            }
            crc = (uint32_t)crc32_z(crc, p, (z_size_t)k);
            zs.next_in = (Bytef *)p;
            zs.avail_in = (uInt)k;
            in_pos += k;
        }
        if (zs.avail_out == 0) {
            size_t used = (size_t)(zs.next_out - out);
            if (out_cap >= raw)
                break; /* not smaller than raw: store instead */
            size_t cap = out_cap > raw / 2 ? raw : 2 * out_cap;
            unsigned char *grown = gtl__realloc(out, cap);
            if (grown == NULL) {
                st = gtl__error(GTL_STATUS_OUT_OF_MEMORY, "gtl__ckpt_add_tensor: out of memory");
                goto out_end;
            }
            out = grown;
            out_cap = cap;
            zs.next_out = out + used;
            zs.avail_out = (uInt)(cap - used < UINT_MAX ? cap - used : UINT_MAX);
        }
        int flush = (in_pos == raw && zs.avail_in == 0) ? Z_FINISH : Z_NO_FLUSH;
        zr = deflate(&zs, flush);
        if (zr == Z_STREAM_END)
            break;
        if (zr != Z_OK && zr != Z_BUF_ERROR) {
            st = gtl__error(GTL_STATUS_INTERNAL, "gtl__ckpt_add_tensor: deflate failed (%d)", zr);
            goto out_end;
        }
    }
    size_t used = (size_t)(zs.next_out - out);
    if (zr != Z_STREAM_END || used >= raw) {
        st = payload_stored(t, src, elsize);
        goto out_end;
    }
    unsigned char *shrunk = gtl__realloc(out, used);
    if (shrunk != NULL)
        out = shrunk;
    gtl__free(t->stored);
    t->stored = out;
    out = NULL;
    t->stored_size = used;
    t->codec = 1;
    t->crc = crc;

out_end:
    deflateEnd(&zs);
    gtl__free(out);
    gtl__free(staging);
    return st;
}

gtl_status gtl__ckpt_add_tensor(gtl__ckpt_writer *w, const char *name, gtl__ckpt_dtype dtype,
                                int32_t nd, const int64_t *ne, const void *data)
{
    static const char fn[] = "gtl__ckpt_add_tensor";
    if (w == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: NULL writer", fn);
    size_t name_len;
    gtl_status st = check_string(fn, "name", name, GTL__CKPT_MAX_NAME, false, &name_len);
    if (st != GTL_STATUS_OK)
        return st;
    size_t elsize = gtl__ckpt_dtype_size(dtype);
    if (elsize == 0)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: '%s': unknown dtype %d", fn, name,
                          (int)dtype);
    if (nd < 0 || nd > GTL__CKPT_MAX_DIMS || (nd > 0 && ne == NULL))
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: '%s': nd %d not in [0, %d] or NULL ne",
                          fn, name, (int)nd, GTL__CKPT_MAX_DIMS);
    size_t n = 1;
    for (int32_t d = 0; d < nd; d++) {
        if (ne[d] < 0 || !gtl__mul_size(n, (size_t)ne[d], &n))
            return gtl__error(GTL_STATUS_INVALID_ARG, "%s: '%s': bad dim %d = %lld", fn, name,
                              (int)d, (long long)ne[d]);
    }
    size_t raw;
    if (!gtl__mul_size(n, elsize, &raw) || raw > (size_t)INT64_MAX)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: '%s': size overflows", fn, name);
    if (raw > 0 && data == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: '%s': NULL data", fn, name);
    for (int64_t i = 0; i < w->n_tensors; i++)
        if (w->tensors[i].name_len == name_len &&
            memcmp(w->tensors[i].name, name, name_len) == 0)
            return gtl__error(GTL_STATUS_INVALID_ARG, "%s: duplicate tensor name '%s'", fn, name);
    if (w->n_tensors >= (int64_t)GTL__CKPT_MAX_TENSORS)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: more than %u tensors", fn,
                          GTL__CKPT_MAX_TENSORS);
    uint64_t entry = 4 + name_len + 4 + 8 * (uint64_t)nd + 8 + 8 + 8 + 4;
    if (w->table_size + entry > GTL__CKPT_MAX_TABLE)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: table would exceed %llu bytes", fn,
                          (unsigned long long)GTL__CKPT_MAX_TABLE);

    if (w->n_tensors == w->cap_tensors) {
        int64_t cap = w->cap_tensors ? 2 * w->cap_tensors : 16;
        struct wtensor *g = gtl__realloc(w->tensors, (size_t)cap * sizeof(*g));
        if (g == NULL)
            return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: out of memory", fn);
        w->tensors = g;
        w->cap_tensors = cap;
    }
    struct wtensor t = {.name_len = name_len, .dtype = dtype, .nd = nd, .raw_size = raw};
    for (int32_t d = 0; d < nd; d++)
        t.ne[d] = ne[d];
    t.name = dup_bytes(name, name_len);
    if (t.name == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: out of memory", fn);
    if (w->level == 0 || raw == 0)
        st = payload_stored(&t, data, elsize);
    else
        st = payload_deflate(&t, data, elsize, w->level);
    if (st != GTL_STATUS_OK) {
        gtl__free(t.name);
        gtl__free(t.stored);
        return st;
    }
    w->tensors[w->n_tensors++] = t;
    w->table_size += entry;
    return GTL_STATUS_OK;
}

/* Serialises the header and table into one buffer of HEADER_SIZE +
 * table_size bytes. */
static unsigned char *serialise(const gtl__ckpt_writer *w, uint64_t *out_file_size)
{
    const uint64_t table_size = w->table_size;
    unsigned char *buf = gtl__malloc(HEADER_SIZE + (size_t)table_size);
    if (buf == NULL)
        return NULL;
    unsigned char *p = buf + HEADER_SIZE;
    for (int64_t i = 0; i < w->n_meta; i++) {
        const struct wmeta *m = &w->meta[i];
        gtl__put_le32(p, (uint32_t)m->key_len);
        memcpy(p + 4, m->key, m->key_len);
        p += 4 + m->key_len;
        *p++ = (unsigned char)m->type;
        if (m->type == GTL__CKPT_META_STR) {
            gtl__put_le32(p, (uint32_t)m->str_len);
            memcpy(p + 4, m->str, m->str_len);
            p += 4 + m->str_len;
        } else {
            gtl__put_le64(p, m->bits);
            p += 8;
        }
    }
    uint64_t offset = HEADER_SIZE + table_size;
    for (int64_t i = 0; i < w->n_tensors; i++) {
        const struct wtensor *t = &w->tensors[i];
        gtl__put_le32(p, (uint32_t)t->name_len);
        memcpy(p + 4, t->name, t->name_len);
        p += 4 + t->name_len;
        p[0] = (unsigned char)t->dtype;
        p[1] = t->codec;
        p[2] = (unsigned char)t->nd;
        p[3] = 0;
        p += 4;
        for (int32_t d = 0; d < t->nd; d++, p += 8)
            gtl__put_le64(p, (uint64_t)t->ne[d]);
        gtl__put_le64(p, offset);
        gtl__put_le64(p + 8, t->stored_size);
        gtl__put_le64(p + 16, t->raw_size);
        gtl__put_le32(p + 24, t->crc);
        p += 28;
        offset += t->stored_size;
    }
    GTL_ASSERT((uint64_t)(p - buf) == HEADER_SIZE + table_size);

    memcpy(buf, magic, 8);
    gtl__put_le32(buf + 8, GTL__CKPT_VERSION);
    gtl__put_le32(buf + 12, 0);
    gtl__put_le64(buf + 16, (uint64_t)w->n_meta);
    gtl__put_le64(buf + 24, (uint64_t)w->n_tensors);
    gtl__put_le64(buf + 32, table_size);
    gtl__put_le64(buf + 40, HEADER_SIZE + table_size);
    gtl__put_le64(buf + 48, offset);
    gtl__put_le32(buf + 56, (uint32_t)crc32_z(0, buf + HEADER_SIZE, (z_size_t)table_size));
    gtl__put_le32(buf + HEADER_CRC_AT, (uint32_t)crc32_z(0, buf, HEADER_CRC_AT));
    *out_file_size = offset;
    return buf;
}

/* fsync of the directory holding path, so the rename itself is durable.
 * Best effort: the new file is already in place when this runs. */
static void sync_parent_dir(const char *path, char *scratch)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL) {
        strcpy(scratch, ".");
    } else if (slash == path) {
        strcpy(scratch, "/");
    } else {
        memcpy(scratch, path, (size_t)(slash - path));
        scratch[slash - path] = '\0';
    }
    int fd = open(scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return;
    if (fsync(fd) != 0)
        gtl__log(GTL_LOG_DEBUG, "checkpoint: fsync of directory '%s' failed: %s", scratch,
                 strerror(errno));
    close(fd);
}

gtl_status gtl__ckpt_write(gtl__ckpt_writer *w, const char *path)
{
    static const char fn[] = "gtl__ckpt_write";
    if (w == NULL || path == NULL || path[0] == '\0')
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: NULL writer or empty path", fn);
    gtl_status st = GTL_STATUS_OK;
    uint64_t file_size;
    size_t path_len = strlen(path);
    char *tmp = gtl__malloc(path_len + 32);
    if (tmp == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: out of memory", fn);
    unsigned char *head = serialise(w, &file_size);
    if (head == NULL) {
        st = gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: out of memory", fn);
        goto out_free_tmp;
    }
    snprintf(tmp, path_len + 32, "%s.tmp.%ld", path, (long)getpid());

    /* From here on every failure removes the temporary file; path itself is
     * only ever touched by the final rename. */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        st = gtl__error(GTL_STATUS_IO, "checkpoint '%s': cannot create '%s': %s", path, tmp,
                        strerror(errno));
        goto out_free_head;
    }
    if (gtl__write_full(fd, head, HEADER_SIZE + (size_t)w->table_size) != 0)
        goto out_write_error;
    for (int64_t i = 0; i < w->n_tensors; i++) {
        const struct wtensor *t = &w->tensors[i];
        if (t->stored_size > 0 && gtl__write_full(fd, t->stored, (size_t)t->stored_size) != 0)
            goto out_write_error;
    }
    if (fsync(fd) != 0)
        goto out_write_error;
    int fd_closing = fd;
    fd = -1;
    if (close(fd_closing) != 0)
        goto out_write_error;
    if (rename(tmp, path) != 0) {
        st = gtl__error(GTL_STATUS_IO, "checkpoint '%s': cannot rename '%s' over it: %s", path,
                        tmp, strerror(errno));
        goto out_unlink;
    }
    sync_parent_dir(path, tmp);
    goto out_free_head;

out_write_error:
    st = gtl__error(GTL_STATUS_IO, "checkpoint '%s': writing '%s' failed: %s", path, tmp,
                    strerror(errno));
    if (fd >= 0)
        close(fd);
out_unlink:
    unlink(tmp);
out_free_head:
    gtl__free(head);
out_free_tmp:
    gtl__free(tmp);
    return st;
}

/* ======================================================================== */
/* Reader                                                                   */
/* ======================================================================== */

struct rmeta {
    const char *key;
    gtl__ckpt_meta_type type;
    const char *str;
    uint64_t bits;
};

struct rtensor {
    gtl__ckpt_tensor_info info;
    uint8_t codec;
    uint64_t offset;
    uint64_t stored_size;
    uint32_t crc;
};

struct gtl__ckpt_reader {
    int fd;
    char *path;
    uint32_t version;
    uint64_t file_size;
    char *strings;                      /* every key, name and string value */
    struct rmeta *meta;
    int64_t n_meta;
    const struct rmeta **meta_by_key;   /* sorted by key */
    struct rtensor *tensors;
    int64_t n_tensors;
    const struct rtensor **by_name;     /* sorted by name */
};

/* A bounds-checked cursor over the table bytes. */
struct cursor {
    const unsigned char *p;
    size_t n;
    size_t pos;
};

static const unsigned char *take(struct cursor *c, size_t k)
{
    if (c->n - c->pos < k)
        return NULL;
    const unsigned char *q = c->p + c->pos;
    c->pos += k;
    return q;
}

static int cmp_meta(const void *a, const void *b)
{
    return strcmp((*(const struct rmeta *const *)a)->key, (*(const struct rmeta *const *)b)->key);
}

static int cmp_tensor(const void *a, const void *b)
{
    return strcmp((*(const struct rtensor *const *)a)->info.name,
                  (*(const struct rtensor *const *)b)->info.name);
}

void gtl__ckpt_close(gtl__ckpt_reader *r)
{
    if (r == NULL)
        return;
    if (r->fd >= 0)
        close(r->fd);
    gtl__free(r->path);
    gtl__free(r->strings);
    gtl__free(r->meta);
    gtl__free(r->meta_by_key);
    gtl__free(r->tensors);
    gtl__free(r->by_name);
    gtl__free(r);
}

/* Reads a length-prefixed UTF-8 string from the table into the strings
 * area. what/index name the field in error messages. */
static gtl_status parse_string(gtl__ckpt_reader *r, struct cursor *c, char **sp, size_t min,
                               size_t max, const char *what, int64_t index, const char **out)
{
    const unsigned char *q = take(c, 4);
    if (q == NULL)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': %s %lld: length runs past the "
                          "end of the table", r->path, what, (long long)index);
    uint32_t len = gtl__le32(q);
    if (len < min || len > max)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': %s %lld: length %u not in "
                          "[%zu, %zu]", r->path, what, (long long)index, len, min, max);
    q = take(c, len);
    if (q == NULL)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': %s %lld: %u bytes run past the "
                          "end of the table", r->path, what, (long long)index, len);
    if (!gtl__utf8_valid(q, len))
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': %s %lld: not valid UTF-8 (or "
                          "contains NUL)", r->path, what, (long long)index);
    memcpy(*sp, q, len);
    (*sp)[len] = '\0';
    *out = *sp;
    *sp += len + 1;
    return GTL_STATUS_OK;
}

static gtl_status parse_meta(gtl__ckpt_reader *r, struct cursor *c, char **sp, int64_t i)
{
    struct rmeta *m = &r->meta[i];
    gtl_status st = parse_string(r, c, sp, 1, GTL__CKPT_MAX_NAME, "metadata key", i, &m->key);
    if (st != GTL_STATUS_OK)
        return st;
    const unsigned char *q = take(c, 1);
    if (q == NULL)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': metadata '%s': type runs past "
                          "the end of the table", r->path, m->key);
    m->type = (gtl__ckpt_meta_type)q[0];
    switch (q[0]) {
    case GTL__CKPT_META_STR:
        return parse_string(r, c, sp, 0, GTL__CKPT_MAX_STR, "metadata value", i, &m->str);
    case GTL__CKPT_META_I64:
    case GTL__CKPT_META_F64:
        q = take(c, 8);
        if (q == NULL)
            return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': metadata '%s': value runs "
                              "past the end of the table", r->path, m->key);
        m->bits = gtl__le64(q);
        return GTL_STATUS_OK;
    }
    return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': metadata '%s': unknown type %u",
                      r->path, m->key, (unsigned)q[0]);
}

/* *next_offset is where this tensor's payload must start (payloads are
 * contiguous in table order); it advances past the payload. */
static gtl_status parse_tensor(gtl__ckpt_reader *r, struct cursor *c, char **sp, int64_t i,
                               uint64_t *next_offset)
{
    struct rtensor *t = &r->tensors[i];
    gtl__ckpt_tensor_info *info = &t->info;
    gtl_status st = parse_string(r, c, sp, 1, GTL__CKPT_MAX_NAME, "tensor name", i, &info->name);
    if (st != GTL_STATUS_OK)
        return st;
    const char *nm = info->name;
    const unsigned char *q = take(c, 4);
    if (q == NULL)
        goto out_short;
    size_t elsize = gtl__ckpt_dtype_size(q[0]);
    if (elsize == 0)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': tensor '%s': unknown dtype %u",
                          r->path, nm, (unsigned)q[0]);
    if (q[1] > 1)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': tensor '%s': unknown codec %u",
                          r->path, nm, (unsigned)q[1]);
    if (q[2] > GTL__CKPT_MAX_DIMS)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': tensor '%s': ndim %u > %d",
                          r->path, nm, (unsigned)q[2], GTL__CKPT_MAX_DIMS);
    if (q[3] != 0)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': tensor '%s': reserved byte is "
                          "%u, not 0", r->path, nm, (unsigned)q[3]);
    info->dtype = (gtl__ckpt_dtype)q[0];
    t->codec = q[1];
    info->nd = q[2];
    uint64_t n = 1;
    for (int32_t d = 0; d < info->nd; d++) {
        q = take(c, 8);
        if (q == NULL)
            goto out_short;
        uint64_t v = gtl__le64(q);
        if (v > (uint64_t)INT64_MAX || (v != 0 && n > (uint64_t)INT64_MAX / v))
            return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': tensor '%s': dims[%d] = "
                              "%llu overflows the element count", r->path, nm, (int)d,
                              (unsigned long long)v);
        info->ne[d] = (int64_t)v;
        n *= v;
    }
    if (n > (uint64_t)INT64_MAX / elsize || n * elsize > (uint64_t)SIZE_MAX)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': tensor '%s': %llu elements "
                          "overflow the byte size", r->path, nm, (unsigned long long)n);
    info->n_elems = (int64_t)n;
    info->raw_size = (size_t)(n * elsize);
    q = take(c, 28);
    if (q == NULL)
        goto out_short;
    t->offset = gtl__le64(q);
    t->stored_size = gtl__le64(q + 8);
    uint64_t raw = gtl__le64(q + 16);
    t->crc = gtl__le32(q + 24);
    if (raw != info->raw_size)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': tensor '%s': raw size %llu, "
                          "but dtype %s x %llu elements is %zu bytes", r->path, nm,
                          (unsigned long long)raw, gtl__ckpt_dtype_name(info->dtype),
                          (unsigned long long)n, info->raw_size);
    if (t->codec == 0 && t->stored_size != raw)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': tensor '%s': stored payload "
                          "of %llu bytes, raw size %llu", r->path, nm,
                          (unsigned long long)t->stored_size, (unsigned long long)raw);
    if (t->codec == 1 && (t->stored_size == 0 || t->stored_size >= raw))
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': tensor '%s': compressed size "
                          "%llu not in [1, raw size %llu)", r->path, nm,
                          (unsigned long long)t->stored_size, (unsigned long long)raw);
    /* Deflate cannot expand more than 1032:1, so a larger raw size is a lie
     * (and would make callers allocate for it). */
    if (t->codec == 1 && raw / MAX_DEFLATE_RATIO > t->stored_size)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': tensor '%s': raw size %llu is "
                          "more than %d x the compressed size %llu", r->path, nm,
                          (unsigned long long)raw, MAX_DEFLATE_RATIO,
                          (unsigned long long)t->stored_size);
    if (t->offset != *next_offset)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': tensor '%s': offset %llu, "
                          "expected %llu (payloads are contiguous)", r->path, nm,
                          (unsigned long long)t->offset, (unsigned long long)*next_offset);
    if (t->stored_size > r->file_size - t->offset)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': tensor '%s': payload [%llu, "
                          "+%llu) runs past the end of the file (%llu bytes)", r->path, nm,
                          (unsigned long long)t->offset, (unsigned long long)t->stored_size,
                          (unsigned long long)r->file_size);
    *next_offset = t->offset + t->stored_size;
    return GTL_STATUS_OK;

out_short:
    return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': tensor '%s': entry runs past the "
                      "end of the table", r->path, nm);
}

/* Validates the 64-byte header against the real file size. */
static gtl_status parse_header(gtl__ckpt_reader *r, const unsigned char *h, uint64_t *n_meta,
                               uint64_t *n_tensors, uint64_t *table_size, uint32_t *table_crc)
{
    if (memcmp(h, magic, 8) != 0)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': bad magic (not a libgtl "
                          "checkpoint)", r->path);
    r->version = gtl__le32(h + 8);
    if (r->version != GTL__CKPT_VERSION)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': format version %u; this libgtl "
                          "reads version %d", r->path, r->version, GTL__CKPT_VERSION);
    uint32_t crc = gtl__le32(h + HEADER_CRC_AT);
    if ((uint32_t)crc32_z(0, h, HEADER_CRC_AT) != crc)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': header CRC mismatch", r->path);
    uint32_t flags = gtl__le32(h + 12);
    if (flags != 0)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': unknown flags 0x%x", r->path,
                          flags);
    *n_meta = gtl__le64(h + 16);
    *n_tensors = gtl__le64(h + 24);
    *table_size = gtl__le64(h + 32);
    uint64_t data_offset = gtl__le64(h + 40);
    uint64_t file_size = gtl__le64(h + 48);
    *table_crc = gtl__le32(h + 56);
    if (file_size != r->file_size)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': file_size field says %llu bytes "
                          "but the file has %llu (truncated or appended to?)", r->path,
                          (unsigned long long)file_size, (unsigned long long)r->file_size);
    if (*n_meta > GTL__CKPT_MAX_META)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': n_meta %llu > %u", r->path,
                          (unsigned long long)*n_meta, GTL__CKPT_MAX_META);
    if (*n_tensors > GTL__CKPT_MAX_TENSORS)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': n_tensors %llu > %u", r->path,
                          (unsigned long long)*n_tensors, GTL__CKPT_MAX_TENSORS);
    if (*table_size > GTL__CKPT_MAX_TABLE || *table_size > r->file_size - HEADER_SIZE)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': table_size %llu exceeds the "
                          "file or the %llu-byte limit", r->path, (unsigned long long)*table_size,
                          (unsigned long long)GTL__CKPT_MAX_TABLE);
    if (data_offset != HEADER_SIZE + *table_size)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': data_offset %llu, expected %llu",
                          r->path, (unsigned long long)data_offset,
                          (unsigned long long)(HEADER_SIZE + *table_size));
    /* Both counts are capped, so this cannot overflow. */
    if (*n_meta * MIN_META_ENTRY + *n_tensors * MIN_TENSOR_ENTRY > *table_size)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': %llu metadata entries and %llu "
                          "tensors cannot fit in a %llu-byte table", r->path,
                          (unsigned long long)*n_meta, (unsigned long long)*n_tensors,
                          (unsigned long long)*table_size);
    return GTL_STATUS_OK;
}

static gtl_status read_error(const gtl__ckpt_reader *r, const char *what)
{
    if (errno == 0)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': %s: unexpected end of file",
                          r->path, what);
    return gtl__error(GTL_STATUS_IO, "checkpoint '%s': reading %s: %s", r->path, what,
                      strerror(errno));
}

gtl_status gtl__ckpt_open(const char *path, gtl__ckpt_reader **out)
{
    if (out == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl__ckpt_open: NULL out");
    *out = NULL;
    if (path == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl__ckpt_open: NULL path");
    gtl_status st = GTL_STATUS_OK;
    unsigned char *table = NULL;
    gtl__ckpt_reader *r = gtl__calloc(1, sizeof(*r));
    if (r == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "gtl__ckpt_open: out of memory");
    r->fd = -1;
    r->path = dup_bytes(path, strlen(path));
    if (r->path == NULL) {
        st = gtl__error(GTL_STATUS_OUT_OF_MEMORY, "gtl__ckpt_open: out of memory");
        goto out_fail;
    }
    r->fd = open(path, O_RDONLY | O_CLOEXEC);
    if (r->fd < 0) {
        st = gtl__error(GTL_STATUS_IO, "checkpoint '%s': cannot open: %s", path, strerror(errno));
        goto out_fail;
    }
    struct stat sb;
    if (fstat(r->fd, &sb) != 0) {
        st = gtl__error(GTL_STATUS_IO, "checkpoint '%s': fstat: %s", path, strerror(errno));
        goto out_fail;
    }
    if (!S_ISREG(sb.st_mode)) {
        st = gtl__error(GTL_STATUS_IO, "checkpoint '%s': not a regular file", path);
        goto out_fail;
    }
    r->file_size = (uint64_t)sb.st_size;
    if (r->file_size < HEADER_SIZE) {
        st = gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': %llu bytes, shorter than the "
                        "%d-byte header", path, (unsigned long long)r->file_size, HEADER_SIZE);
        goto out_fail;
    }
    unsigned char head[HEADER_SIZE];
    if (gtl__pread_full(r->fd, head, HEADER_SIZE, 0) != 0) {
        st = read_error(r, "header");
        goto out_fail;
    }
    uint64_t n_meta = 0, n_tensors = 0, table_size = 0;
    uint32_t table_crc = 0;
    st = parse_header(r, head, &n_meta, &n_tensors, &table_size, &table_crc);
    if (st != GTL_STATUS_OK)
        goto out_fail;

    /* table_size is now known to be within the real file, so allocating it
     * is bounded by what is on disk. */
    table = gtl__malloc((size_t)table_size + 1);
    r->strings = gtl__malloc((size_t)table_size + 1);
    r->meta = gtl__calloc((size_t)n_meta + 1, sizeof(*r->meta));
    r->meta_by_key = gtl__calloc((size_t)n_meta + 1, sizeof(*r->meta_by_key));
    r->tensors = gtl__calloc((size_t)n_tensors + 1, sizeof(*r->tensors));
    r->by_name = gtl__calloc((size_t)n_tensors + 1, sizeof(*r->by_name));
    if (table == NULL || r->strings == NULL || r->meta == NULL || r->meta_by_key == NULL ||
        r->tensors == NULL || r->by_name == NULL) {
        st = gtl__error(GTL_STATUS_OUT_OF_MEMORY, "checkpoint '%s': out of memory for the "
                        "table (%llu bytes)", path, (unsigned long long)table_size);
        goto out_fail;
    }
    if (gtl__pread_full(r->fd, table, (size_t)table_size, HEADER_SIZE) != 0) {
        st = read_error(r, "table");
        goto out_fail;
    }
    if ((uint32_t)crc32_z(0, table, (z_size_t)table_size) != table_crc) {
        st = gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': table CRC mismatch", path);
        goto out_fail;
    }

    struct cursor c = {table, (size_t)table_size, 0};
    char *sp = r->strings;
    for (uint64_t i = 0; i < n_meta; i++) {
        st = parse_meta(r, &c, &sp, (int64_t)i);
        if (st != GTL_STATUS_OK)
            goto out_fail;
        r->meta_by_key[i] = &r->meta[i];
        r->n_meta = (int64_t)i + 1;
    }
    uint64_t next_offset = HEADER_SIZE + table_size;
    for (uint64_t i = 0; i < n_tensors; i++) {
        st = parse_tensor(r, &c, &sp, (int64_t)i, &next_offset);
        if (st != GTL_STATUS_OK)
            goto out_fail;
        r->by_name[i] = &r->tensors[i];
        r->n_tensors = (int64_t)i + 1;
    }
    if (c.pos != c.n) {
        st = gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': %zu unused bytes at the end of "
                        "the table", path, c.n - c.pos);
        goto out_fail;
    }
    if (next_offset != r->file_size) {
        st = gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': payloads end at %llu but the file "
                        "has %llu bytes", path, (unsigned long long)next_offset,
                        (unsigned long long)r->file_size);
        goto out_fail;
    }
    qsort(r->meta_by_key, (size_t)r->n_meta, sizeof(*r->meta_by_key), cmp_meta);
    for (int64_t i = 1; i < r->n_meta; i++)
        if (strcmp(r->meta_by_key[i - 1]->key, r->meta_by_key[i]->key) == 0) {
            st = gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': duplicate metadata key '%s'",
                            path, r->meta_by_key[i]->key);
            goto out_fail;
        }
    qsort(r->by_name, (size_t)r->n_tensors, sizeof(*r->by_name), cmp_tensor);
    for (int64_t i = 1; i < r->n_tensors; i++)
        if (strcmp(r->by_name[i - 1]->info.name, r->by_name[i]->info.name) == 0) {
            st = gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': duplicate tensor name '%s'",
                            path, r->by_name[i]->info.name);
            goto out_fail;
        }
    gtl__free(table);
    *out = r;
    return GTL_STATUS_OK;

out_fail:
    gtl__free(table);
    gtl__ckpt_close(r);
    return st;
}

uint32_t gtl__ckpt_version(const gtl__ckpt_reader *r)
{
    return r != NULL ? r->version : 0;
}

int64_t gtl__ckpt_num_tensors(const gtl__ckpt_reader *r)
{
    return r != NULL ? r->n_tensors : 0;
}

const gtl__ckpt_tensor_info *gtl__ckpt_tensor(const gtl__ckpt_reader *r, int64_t i)
{
    if (r == NULL || i < 0 || i >= r->n_tensors)
        return NULL;
    return &r->tensors[i].info;
}

static const struct rtensor *find_tensor(const gtl__ckpt_reader *r, const char *name)
{
    if (r == NULL || name == NULL)
        return NULL;
    int64_t lo = 0, hi = r->n_tensors;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(r->by_name[mid]->info.name, name);
        if (c == 0)
            return r->by_name[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

const gtl__ckpt_tensor_info *gtl__ckpt_find(const gtl__ckpt_reader *r, const char *name)
{
    const struct rtensor *t = find_tensor(r, name);
    return t != NULL ? &t->info : NULL;
}

/* Reads tensor t's raw little-endian bytes into dst (raw_size bytes),
 * checking the exact decompressed size and the CRC. */
static gtl_status read_payload(gtl__ckpt_reader *r, const struct rtensor *t, unsigned char *dst)
{
    const char *nm = t->info.name;
    const size_t raw = t->info.raw_size;
    gtl_status st = GTL_STATUS_OK;
    if (t->codec == 0) {
        if (raw > 0 && gtl__pread_full(r->fd, dst, raw, t->offset) != 0)
            return read_error(r, nm);
    } else {
        unsigned char *in = gtl__malloc(CHUNK);
        if (in == NULL)
            return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "checkpoint '%s': out of memory",
                              r->path);
        z_stream zs;
        memset(&zs, 0, sizeof zs);
        zs.zalloc = zlib_alloc;
        zs.zfree = zlib_free;
        int zr = inflateInit(&zs);
        if (zr != Z_OK) {
            gtl__free(in);
            return gtl__error(zr == Z_MEM_ERROR ? GTL_STATUS_OUT_OF_MEMORY : GTL_STATUS_INTERNAL,
                              "checkpoint '%s': inflateInit failed (%d)", r->path, zr);
        }
        uint64_t in_off = t->offset;
        uint64_t in_left = t->stored_size;
        /* One byte past raw_size: inflate writing into it means the stream
         * holds more data than the table says. */
        unsigned char extra;
        bool in_extra = false;
        zs.next_out = dst;
        for (;;) {
            if (zs.avail_in == 0 && in_left > 0) {
                size_t k = in_left < CHUNK ? (size_t)in_left : CHUNK;
                if (gtl__pread_full(r->fd, in, k, in_off) != 0) {
                    st = read_error(r, nm);
                    goto out_inflate;
                }
                zs.next_in = in;
                zs.avail_in = (uInt)k;
                in_off += k;
                in_left -= k;
            }
            if (!in_extra) {
                size_t done = (size_t)(zs.next_out - dst);
                if (done == raw) {
                    zs.next_out = &extra;
                    zs.avail_out = 1;
                    in_extra = true;
                } else {
                    size_t left = raw - done;
                    zs.avail_out = (uInt)(left < UINT_MAX ? left : UINT_MAX);
                }
            }
            zr = inflate(&zs, Z_NO_FLUSH);
            if (in_extra && zs.avail_out == 0) {
                st = gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': tensor '%s': payload "
                                "inflates to more than raw_size %zu", r->path, nm, raw);
                goto out_inflate;
            }
            if (zr == Z_STREAM_END)
                break;
            if (zr == Z_MEM_ERROR) {
                st = gtl__error(GTL_STATUS_OUT_OF_MEMORY, "checkpoint '%s': out of memory",
                                r->path);
                goto out_inflate;
            }
            if (zr == Z_OK)
                continue;
            if (zr == Z_BUF_ERROR && zs.avail_in == 0 && in_left == 0) {
                st = gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': tensor '%s': zlib stream "
                                "is truncated", r->path, nm);
                goto out_inflate;
            }
            st = gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': tensor '%s': corrupt zlib "
                            "stream (%s)", r->path, nm, zs.msg != NULL ? zs.msg : "no progress");
            goto out_inflate;
        }
        size_t done = in_extra ? raw : (size_t)(zs.next_out - dst);
        if (done != raw) {
            st = gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': tensor '%s': payload inflates "
                            "to %zu bytes, raw_size is %zu", r->path, nm, done, raw);
            goto out_inflate;
        }
        if (zs.avail_in != 0 || in_left != 0) {
            st = gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': tensor '%s': zlib stream ends "
                            "%llu bytes before the compressed size", r->path, nm,
                            (unsigned long long)(zs.avail_in + in_left));
            goto out_inflate;
        }
out_inflate:
        inflateEnd(&zs);
        gtl__free(in);
        if (st != GTL_STATUS_OK)
            return st;
    }
    if ((uint32_t)crc32_z(0, dst, (z_size_t)raw) != t->crc)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': tensor '%s': CRC mismatch",
                          r->path, nm);
    return GTL_STATUS_OK;
}

gtl_status gtl__ckpt_read(gtl__ckpt_reader *r, const char *name, void *dst, size_t dst_capacity)
{
    if (r == NULL || name == NULL || dst == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl__ckpt_read: NULL argument");
    const struct rtensor *t = find_tensor(r, name);
    if (t == NULL)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s' has no tensor '%s'", r->path, name);
    if (dst_capacity < t->info.raw_size)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl__ckpt_read: tensor '%s' needs %zu bytes, "
                          "buffer has %zu", name, t->info.raw_size, dst_capacity);
    gtl_status st = read_payload(r, t, dst);
    if (st != GTL_STATUS_OK)
        return st;
    size_t elsize = gtl__ckpt_dtype_size(t->info.dtype);
    if (!gtl__host_is_le() && elsize > 1)
        gtl__swap_elems(dst, (size_t)t->info.n_elems, elsize);
    return GTL_STATUS_OK;
}

gtl_status gtl__ckpt_read_f32(gtl__ckpt_reader *r, const char *name, float *dst,
                              int64_t dst_capacity)
{
    if (r == NULL || name == NULL || dst == NULL || dst_capacity < 0)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl__ckpt_read_f32: bad argument");
    const struct rtensor *t = find_tensor(r, name);
    if (t == NULL)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s' has no tensor '%s'", r->path, name);
    const int64_t n = t->info.n_elems;
    if (t->info.dtype != GTL__CKPT_F32 && t->info.dtype != GTL__CKPT_BF16)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl__ckpt_read_f32: tensor '%s' is %s, not "
                          "f32 or bf16", name, gtl__ckpt_dtype_name(t->info.dtype));
    if (dst_capacity < n)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl__ckpt_read_f32: tensor '%s' has %lld "
                          "elements, buffer holds %lld", name, (long long)n,
                          (long long)dst_capacity);
    if (t->info.dtype == GTL__CKPT_F32)
        return gtl__ckpt_read(r, name, dst, (size_t)n * sizeof(float));
    /* bf16: read the 2n raw bytes into the upper half of dst and widen in
     * place from the front; element i is read before the write of element i
     * reaches it, so no scratch buffer is needed. */
    unsigned char *bytes = (unsigned char *)dst;
    unsigned char *src = bytes + 2 * (size_t)n;
    gtl_status st = read_payload(r, t, src);
    if (st != GTL_STATUS_OK)
        return st;
    for (int64_t i = 0; i < n; i++) {
        float f = gtl__bf16_to_f32(gtl__le16(src + 2 * i));
        memcpy(bytes + 4 * i, &f, sizeof f);
    }
    return GTL_STATUS_OK;
}

int64_t gtl__ckpt_num_meta(const gtl__ckpt_reader *r)
{
    return r != NULL ? r->n_meta : 0;
}

const char *gtl__ckpt_meta_key(const gtl__ckpt_reader *r, int64_t i, gtl__ckpt_meta_type *type)
{
    if (r == NULL || i < 0 || i >= r->n_meta)
        return NULL;
    if (type != NULL)
        *type = r->meta[i].type;
    return r->meta[i].key;
}

static const struct rmeta *find_meta(const gtl__ckpt_reader *r, const char *key)
{
    if (r == NULL || key == NULL)
        return NULL;
    int64_t lo = 0, hi = r->n_meta;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        int c = strcmp(r->meta_by_key[mid]->key, key);
        if (c == 0)
            return r->meta_by_key[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

bool gtl__ckpt_has_meta(const gtl__ckpt_reader *r, const char *key,
                        gtl__ckpt_meta_type *out_type)
{
    const struct rmeta *m = find_meta(r, key);
    if (m != NULL && out_type != NULL)
        *out_type = m->type;
    return m != NULL;
}

static const char *meta_type_name(gtl__ckpt_meta_type t)
{
    return t == GTL__CKPT_META_STR ? "str" : t == GTL__CKPT_META_I64 ? "i64" : "f64";
}

static gtl_status get_meta(const gtl__ckpt_reader *r, const char *key, gtl__ckpt_meta_type type,
                           const struct rmeta **out)
{
    if (r == NULL || key == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl__ckpt_meta: NULL argument");
    const struct rmeta *m = find_meta(r, key);
    if (m == NULL)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': no metadata key '%s'", r->path,
                          key);
    if (m->type != type)
        return gtl__error(GTL_STATUS_FORMAT, "checkpoint '%s': metadata '%s' is %s, not %s",
                          r->path, key, meta_type_name(m->type), meta_type_name(type));
    *out = m;
    return GTL_STATUS_OK;
}

gtl_status gtl__ckpt_meta_str(const gtl__ckpt_reader *r, const char *key, const char **out)
{
    const struct rmeta *m = NULL;
    if (out != NULL)
        *out = NULL;
    gtl_status st = get_meta(r, key, GTL__CKPT_META_STR, &m);
    if (st == GTL_STATUS_OK && out != NULL)
        *out = m->str;
    return st;
}

gtl_status gtl__ckpt_meta_i64(const gtl__ckpt_reader *r, const char *key, int64_t *out)
{
    const struct rmeta *m = NULL;
    if (out != NULL)
        *out = 0;
    gtl_status st = get_meta(r, key, GTL__CKPT_META_I64, &m);
    if (st == GTL_STATUS_OK && out != NULL)
        *out = (int64_t)m->bits;
    return st;
}

gtl_status gtl__ckpt_meta_f64(const gtl__ckpt_reader *r, const char *key, double *out)
{
    const struct rmeta *m = NULL;
    if (out != NULL)
        *out = 0;
    gtl_status st = get_meta(r, key, GTL__CKPT_META_F64, &m);
    if (st == GTL_STATUS_OK && out != NULL)
        memcpy(out, &m->bits, sizeof(*out));
    return st;
}
