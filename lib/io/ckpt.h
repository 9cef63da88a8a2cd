/* io: libgtl's own checkpoint format (version 1), writer and reader.
 *
 * The byte layout is specified in docs/checkpoint-format.md. In short: a
 * 64-byte header (magic "GTLCKPT\0", version, flags, counts, sizes, CRCs), a
 * table (typed metadata entries, then one entry per tensor), then the tensor
 * payloads, each zlib-compressed (or stored when compression does not help)
 * and checked by a CRC32 of the raw bytes. Every integer is little-endian
 * whatever the host.
 *
 * Writer: collect metadata and tensors (each tensor is copied and compressed
 * when it is added, so the caller's buffer can be reused at once), then
 * gtl__ckpt_write() writes "<path>.tmp.<pid>", fsyncs it and renames it over
 * <path>. On any failure the temporary file is removed and an existing <path>
 * is left untouched.
 *
 * Reader: the file is untrusted. gtl__ckpt_open() reads and validates the
 * header and the whole table (every count, length, dim, size and offset; the
 * table CRC) and keeps the file open; payloads are read lazily, one tensor per
 * gtl__ckpt_read() call, streamed from the file straight into the caller's
 * buffer, and checked (exact decompressed size, CRC32) on every read.
 *
 * Errors: FORMAT for anything wrong in a file (the message names the file
 * and the field), IO for OS errors (with strerror), OUT_OF_MEMORY,
 * INVALID_ARG for bad arguments. Nothing leaks on any path.
 *
 * Thread safety: a writer or reader is used by one thread at a time;
 * separate handles are independent. */
#ifndef GTL__IO_CKPT_H
#define GTL__IO_CKPT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define GTL__CKPT_VERSION 1
#define GTL__CKPT_MAX_DIMS 6
#define GTL__CKPT_MAX_NAME 1024            /* bytes in a tensor name or metadata key */
#define GTL__CKPT_MAX_STR (16u << 20)      /* bytes in a metadata string value */
#define GTL__CKPT_MAX_META (1u << 20)      /* metadata entries per file */
#define GTL__CKPT_MAX_TENSORS (1u << 24)   /* tensors per file */
#define GTL__CKPT_MAX_TABLE (1ull << 30)   /* bytes of metadata + tensor table */

/* Stored element types; the values are the on-disk codes (append-only). */
typedef enum gtl__ckpt_dtype {
    GTL__CKPT_F32 = 1,
    GTL__CKPT_BF16 = 2,
    GTL__CKPT_I64 = 3,
    GTL__CKPT_U8 = 4
} gtl__ckpt_dtype;

/* Metadata value types; the values are the on-disk codes. */
typedef enum gtl__ckpt_meta_type {
    GTL__CKPT_META_STR = 1,
    GTL__CKPT_META_I64 = 2,
    GTL__CKPT_META_F64 = 3
} gtl__ckpt_meta_type;

/* Bytes per element of a dtype, 0 for an unknown code. */
size_t gtl__ckpt_dtype_size(int32_t dtype);
const char *gtl__ckpt_dtype_name(int32_t dtype);

/* ---- writer ------------------------------------------------------------ */

typedef struct gtl__ckpt_writer gtl__ckpt_writer;

/* level: zlib level 1..9, -1 for zlib's default, 0 to store payloads
 * uncompressed. *out is NULL on failure. */
gtl_status gtl__ckpt_writer_create(int32_t level, gtl__ckpt_writer **out);
void gtl__ckpt_writer_destroy(gtl__ckpt_writer *w);

/* Keys are 1..1024 bytes of UTF-8 without NUL, unique across the metadata;
 * string values are 0..16 MiB of UTF-8 without NUL. Strings are copied. */
gtl_status gtl__ckpt_add_meta_str(gtl__ckpt_writer *w, const char *key, const char *value);
gtl_status gtl__ckpt_add_meta_i64(gtl__ckpt_writer *w, const char *key, int64_t value);
gtl_status gtl__ckpt_add_meta_f64(gtl__ckpt_writer *w, const char *key, double value);

/* Adds a tensor of nd (0..6) dims ne[] (each >= 0, row-major, outermost
 * first) whose elements are host-order values of dtype at data (may be NULL
 * only when it has no elements). Names are 1..1024 bytes of UTF-8, unique.
 * The data is copied (compressed) now. */
gtl_status gtl__ckpt_add_tensor(gtl__ckpt_writer *w, const char *name, gtl__ckpt_dtype dtype,
                                int32_t nd, const int64_t *ne, const void *data);

/* Writes everything added so far to path atomically (temp file, fsync,
 * rename, fsync of the directory). The writer stays valid and can write
 * again. IO on OS errors (the old file, if any, is unchanged). The temp name
 * is per process, so one process must not write the same path from two
 * threads at once. If path is a symlink, the link itself is replaced. */
gtl_status gtl__ckpt_write(gtl__ckpt_writer *w, const char *path);

/* ---- reader ------------------------------------------------------------ */

typedef struct gtl__ckpt_reader gtl__ckpt_reader;

typedef struct gtl__ckpt_tensor_info {
    const char *name;       /* NUL-terminated, valid until close */
    gtl__ckpt_dtype dtype;
    int32_t nd;
    int64_t ne[GTL__CKPT_MAX_DIMS];
    int64_t n_elems;        /* product of ne (1 for nd = 0) */
    size_t raw_size;        /* n_elems * dtype size: the bytes gtl__ckpt_read() writes */
} gtl__ckpt_tensor_info;

/* Opens and validates path (see the top of this file). *out is NULL on
 * failure. */
gtl_status gtl__ckpt_open(const char *path, gtl__ckpt_reader **out);
void gtl__ckpt_close(gtl__ckpt_reader *r);

uint32_t gtl__ckpt_version(const gtl__ckpt_reader *r);

/* Tensors in file order (i in [0, n)), or by name (NULL when absent). The
 * returned info stays valid until close. */
int64_t gtl__ckpt_num_tensors(const gtl__ckpt_reader *r);
const gtl__ckpt_tensor_info *gtl__ckpt_tensor(const gtl__ckpt_reader *r, int64_t i);
const gtl__ckpt_tensor_info *gtl__ckpt_find(const gtl__ckpt_reader *r, const char *name);

/* Reads tensor name's elements, in host byte order, into dst of
 * dst_capacity bytes. FORMAT if there is no such tensor or its payload is
 * corrupt (dst may then hold partial data), INVALID_ARG if dst is too small
 * (nothing written). */
gtl_status gtl__ckpt_read(gtl__ckpt_reader *r, const char *name, void *dst,
                          size_t dst_capacity);
/* The same for an F32 or BF16 tensor, converted to f32; capacity counts
 * floats. Other dtypes: INVALID_ARG. */
gtl_status gtl__ckpt_read_f32(gtl__ckpt_reader *r, const char *name, float *dst,
                              int64_t dst_capacity);

/* Metadata in file order, or by key. A missing key or a value of another
 * type gives FORMAT naming the key and the file. Strings stay valid until
 * close. */
int64_t gtl__ckpt_num_meta(const gtl__ckpt_reader *r);
const char *gtl__ckpt_meta_key(const gtl__ckpt_reader *r, int64_t i, gtl__ckpt_meta_type *type);
bool gtl__ckpt_has_meta(const gtl__ckpt_reader *r, const char *key,
                        gtl__ckpt_meta_type *out_type);
gtl_status gtl__ckpt_meta_str(const gtl__ckpt_reader *r, const char *key, const char **out);
gtl_status gtl__ckpt_meta_i64(const gtl__ckpt_reader *r, const char *key, int64_t *out);
gtl_status gtl__ckpt_meta_f64(const gtl__ckpt_reader *r, const char *key, double *out);

#endif /* GTL__IO_CKPT_H */
