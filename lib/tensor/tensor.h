/* tensor: the internal tensor, the per-step arena and parameter blobs.
 *
 * Tensors on the tape are dense, row-major f32. Shapes are listed outermost
 * first (ne[0] is the slowest dimension, ne[nd-1] the contiguous one).
 * Strided views exist only inside ops that build oneDNN descriptors (matmul,
 * attention); every tensor an op returns is contiguous.
 *
 * bf16 storage is a property of a weight copy owned by an op (see
 * ops/op_matmul.c), never of a tape tensor: gradients are always f32. */
#ifndef GTL__TENSOR_H
#define GTL__TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/core.h"

#define GTL__MAX_DIMS 6

typedef enum gtl__dtype {
    GTL__DTYPE_F32 = 0,
    GTL__DTYPE_BF16 = 1
} gtl__dtype;

/* Tensor flags. */
enum {
    GTL__TF_REQUIRES_GRAD = 1u << 0, /* a gradient flows into this tensor */
    GTL__TF_PARAM = 1u << 1,         /* data/grad live in a parameter blob */
    GTL__TF_LEAF = 1u << 2           /* not produced by an op on the tape */
};

/* Row-sparse gradient tracking, for a parameter whose gradient arrives one
 * row block at a time and mostly not at all (the gated adapters: a row is
 * one adapter, and only adapters with a non-zero gate get a gradient).
 * The op that writes such a gradient marks the rows it writes
 * (gtl__tensor_mark_row); every other row's gradient is exactly zero.
 * zero_grad then clears only the marked rows, the clipping norm reads only
 * them, and the optimizer skips rows that never had a gradient
 * (docs/optimizers.md, "Lazy rows"). A tracked parameter must receive
 * gradients only from ops that mark rows. */
typedef struct gtl__rowtrack {
    int64_t row_len;          /* floats per row */
    int64_t n_rows;
    int64_t n_dirty;          /* rows marked since the last zero_grad */
    int64_t *dirty;           /* (n_rows) the marked rows, in marking order */
    uint8_t *is_dirty;        /* (n_rows) 1 if marked */
} gtl__rowtrack;

typedef struct gtl__tensor {
    float *data;              /* (ne[0], ..., ne[nd-1]), row-major */
    float *grad;              /* same shape; NULL until a gradient exists */
    gtl__rowtrack *rows;      /* parameters only: row tracking, or NULL (dense) */
    int64_t ne[GTL__MAX_DIMS];
    int32_t nd;
    uint32_t flags;
    int64_t n;                /* number of elements */
    const char *name;         /* static or owned by a paramset; may be NULL */
} gtl__tensor;

static inline bool gtl__requires_grad(const gtl__tensor *t)
{
    return t != NULL && (t->flags & GTL__TF_REQUIRES_GRAD) != 0;
}

/* Records that row r of t's gradient is (about to be) written. No-op for an
 * untracked tensor. */
static inline void gtl__tensor_mark_row(gtl__tensor *t, int64_t r)
{
    gtl__rowtrack *rt = t->rows;
    if (rt != NULL && !rt->is_dirty[r]) {
        rt->is_dirty[r] = 1;
        rt->dirty[rt->n_dirty++] = r;
    }
}

/* Fills shape fields; false if nd is out of range or a dim is < 0 or the
 * element count overflows. */
bool gtl__tensor_set_shape(gtl__tensor *t, int32_t nd, const int64_t *ne);
bool gtl__same_shape(const gtl__tensor *a, const gtl__tensor *b);
/* Formats "(2, 3, 4)" into buf for error messages; returns buf. */
const char *gtl__shape_str(const gtl__tensor *t, char *buf, size_t cap);

/* bf16 conversion (round to nearest even; NaN stays NaN). */
uint16_t gtl__f32_to_bf16(float x);
float gtl__bf16_to_f32(uint16_t x);

/* ---- Arena: bump allocation for one step's activations -------------------
 * Blocks are 64-byte aligned. When a step overflows the first chunk, further
 * chunks are chained; the next reset frees them and the next allocation
 * makes one chunk of the high-water size, so a steady-state step performs no
 * allocation at all. */
typedef struct gtl__arena_chunk gtl__arena_chunk;

typedef struct gtl__arena {
    gtl__arena_chunk *head;   /* current chunk (newest first) */
    size_t used_total;        /* bytes handed out since the last reset */
    size_t high_water;        /* largest used_total seen */
    uint64_t n_chunk_allocs;  /* chunk allocations ever (for tests) */
} gtl__arena;

void gtl__arena_init(gtl__arena *a);
void gtl__arena_fini(gtl__arena *a);
void gtl__arena_reset(gtl__arena *a);
/* NULL on out of memory (no error message is set). */
void *gtl__arena_alloc(gtl__arena *a, size_t size);

/* ---- Parameter sets: one contiguous blob for data, one for gradients -----
 * Build phase: gtl__paramset_add() for each tensor; then _finalize() makes
 * the blob. Gradients are allocated on first need (_alloc_grad); frozen
 * parameters get neither a gradient view nor REQUIRES_GRAD. */
typedef struct gtl__paramset {
    gtl__tensor *params;       /* n_params tensors, views into data */
    char **names;
    bool *frozen;
    int64_t *offsets;          /* element offset of each tensor in the blob */
    int64_t n_params;
    int64_t cap_params;
    float *data;               /* n_total floats */
    float *grad;               /* n_total floats or NULL */
    int64_t n_total;
    bool finalized;
} gtl__paramset;

void gtl__paramset_init(gtl__paramset *ps);
void gtl__paramset_fini(gtl__paramset *ps);
/* Adds a parameter; returns its index through out_index. */
gtl_status gtl__paramset_add(gtl__paramset *ps, const char *name, int32_t nd,
                             const int64_t *ne, int64_t *out_index);
gtl_status gtl__paramset_finalize(gtl__paramset *ps);
gtl_status gtl__paramset_alloc_grad(gtl__paramset *ps);
/* Zeroes the gradients: dense parameters entirely, tracked ones only in the
 * rows marked since the last call (the others are zero already). */
void gtl__paramset_zero_grad(gtl__paramset *ps);
/* Tracks parameter `index` in n_rows row blocks of n / n_rows floats (n_rows
 * must divide its size). After finalize, before the first gradient.
 * INVALID_ARG, OUT_OF_MEMORY. */
gtl_status gtl__paramset_track_rows(gtl__paramset *ps, int64_t index, int64_t n_rows);
void gtl__paramset_set_frozen(gtl__paramset *ps, int64_t index, bool frozen);
gtl__tensor *gtl__paramset_get(gtl__paramset *ps, int64_t index);
int64_t gtl__paramset_find(const gtl__paramset *ps, const char *name);

#endif /* GTL__TENSOR_H */
