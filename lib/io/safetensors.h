/* io: safetensors reader (weight import, e.g. the CLIP ViT-B/16 tower).
 *
 * Format (docs/safetensors.md): an 8-byte little-endian header length N,
 * N bytes of UTF-8 JSON
 *   {"name": {"dtype": "F32", "shape": [d0, ...], "data_offsets": [b, e]}, ...,
 *    "__metadata__": {"key": "value", ...}}
 * (optionally padded with spaces), then the byte buffer; offsets are
 * relative to the buffer's start.
 *
 * The file is untrusted. gtl__safetensors_open() reads only the header
 * (N <= 100,000,000 and N <= file size - 8), parses it with a small strict
 * parser restricted to this schema, and validates every entry: known dtypes
 * have (e - b) == product(shape) * size(dtype); every tensor lies inside the
 * buffer; the tensors tile the buffer exactly (sorted by offset they are
 * contiguous from 0 to the buffer's end, no holes and no overlaps, as the
 * format requires); names are unique, non-empty and at most 1024 bytes;
 * shapes have at most 8 dims. Anything else is FORMAT, naming the file and
 * the field. A dtype this reader does not know (e.g. a future sub-byte type)
 * is accepted at open; reading that tensor gives UNSUPPORTED.
 *
 * Payloads are read with pread, per tensor, directly into the caller's
 * buffer (F16/BF16 are widened in place), so a 350 MB file is never held in
 * memory by the reader: only the header is.
 *
 * Thread safety: one thread at a time per handle. */
#ifndef GTL__IO_SAFETENSORS_H
#define GTL__IO_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define GTL__SAFETENSORS_MAX_HEADER 100000000ull
#define GTL__SAFETENSORS_MAX_DIMS 8
#define GTL__SAFETENSORS_MAX_NAME 1024

/* The dtypes of the safetensors specification. */
typedef enum gtl__safetensors_dtype {
    GTL__ST_UNKNOWN = 0,
    GTL__ST_BOOL,
    GTL__ST_U8,
    GTL__ST_I8,
    GTL__ST_F8_E5M2,
    GTL__ST_F8_E4M3,
    GTL__ST_I16,
    GTL__ST_U16,
    GTL__ST_F16,
    GTL__ST_BF16,
    GTL__ST_I32,
    GTL__ST_U32,
    GTL__ST_F32,
    GTL__ST_F64,
    GTL__ST_I64,
    GTL__ST_U64
} gtl__safetensors_dtype;

typedef struct gtl__safetensors_info {
    const char *name;                   /* NUL-terminated, valid until close */
    const char *dtype_name;             /* as written in the file, e.g. "BF16" */
    gtl__safetensors_dtype dtype;       /* GTL__ST_UNKNOWN for unknown names */
    int32_t nd;
    int64_t ne[GTL__SAFETENSORS_MAX_DIMS];
    int64_t n_elems;
    uint64_t begin, end;                /* data_offsets, relative to the buffer */
} gtl__safetensors_info;

typedef struct gtl__safetensors gtl__safetensors;

/* *out is NULL on failure. FORMAT for a malformed file, IO for OS errors,
 * OUT_OF_MEMORY. */
gtl_status gtl__safetensors_open(const char *path, gtl__safetensors **out);
void gtl__safetensors_close(gtl__safetensors *f);

/* Tensors sorted by name, i in [0, n); or by name (NULL when absent). */
int64_t gtl__safetensors_num_tensors(const gtl__safetensors *f);
const gtl__safetensors_info *gtl__safetensors_tensor(const gtl__safetensors *f, int64_t i);
const gtl__safetensors_info *gtl__safetensors_find(const gtl__safetensors *f,
                                                     const char *name);

/* "__metadata__" entries, sorted by key; or a value by key (NULL if absent). */
int64_t gtl__safetensors_num_meta(const gtl__safetensors *f);
const char *gtl__safetensors_meta_key(const gtl__safetensors *f, int64_t i);
const char *gtl__safetensors_meta(const gtl__safetensors *f, const char *key);

/* Reads an F32, F16 or BF16 tensor converted to f32 into dst (capacity in
 * floats). FORMAT if there is no such tensor (or the file got shorter),
 * UNSUPPORTED for other or unknown dtypes, INVALID_ARG if dst is too small. */
gtl_status gtl__safetensors_read_f32(gtl__safetensors *f, const char *name, float *dst,
                                     int64_t dst_capacity);
/* Reads a known-dtype tensor's bytes, converted to host byte order, into dst
 * (capacity in bytes). UNSUPPORTED for unknown dtypes. */
gtl_status gtl__safetensors_read_raw(gtl__safetensors *f, const char *name, void *dst,
                                     size_t dst_capacity);

/* Bytes per element of a known dtype, 0 for GTL__ST_UNKNOWN. */
size_t gtl__safetensors_dtype_size(gtl__safetensors_dtype dtype);

#endif /* GTL__IO_SAFETENSORS_H */
