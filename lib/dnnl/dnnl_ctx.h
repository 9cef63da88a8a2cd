/* The oneDNN side of the compute context: the primitive cache. Included only
 * by lib/dnnl/ and by op files that call oneDNN.
 *
 * A primitive is created once per (op, shapes, flags) key and kept with one
 * memory object per argument, created without a data handle; executing it
 * sets the handles to the caller's pointers. Primitives use a user-managed
 * scratchpad allocated once through libgtl's allocator, so executing a cached
 * primitive allocates nothing. */
#ifndef GTL__DNNL_CTX_H
#define GTL__DNNL_CTX_H

#include <dnnl.h>

#include "dnnl/ctx.h"

#define GTL__PRIM_MAX_ARGS 12
#define GTL__KEY_MAX 40

enum {
    GTL__PRIM_HOT = 1u << 0 /* a hot-path primitive: a ref: kernel is a bug */
};

typedef struct gtl__prim {
    int64_t key[GTL__KEY_MAX];
    int32_t n_key;
    uint32_t flags;
    const char *op_name;            /* static string */
    dnnl_primitive_t prim;
    int32_t n_args;                 /* without the scratchpad */
    dnnl_exec_arg_t args[GTL__PRIM_MAX_ARGS + 1];
    void *scratch;
    char impl[96];
    uint64_t n_exec;
} gtl__prim;

/* Maps a oneDNN status to a gtl_status and records "what: oneDNN says ...". */
gtl_status gtl__dnnl_error(dnnl_status_t s, const char *what);
gtl_status gtl__status_from_dnnl(dnnl_status_t s);

/* The process-wide CPU engine (created on first use). */
gtl_status gtl__dnnl_engine(dnnl_engine_t *out_engine);

/* An attribute with the user scratchpad mode set; destroy with
 * dnnl_primitive_attr_destroy. */
gtl_status gtl__dnnl_attr_create(dnnl_primitive_attr_t *out_attr);

/* Returns the cached primitive for the key, or NULL. */
gtl__prim *gtl__prim_lookup(gtl__ctx *ctx, const int64_t *key, int32_t n_key);

/* Creates the primitive from pd and caches it under the key. arg_ids lists the
 * execution arguments in the order gtl__prim_exec will receive pointers.
 * pd is destroyed in every case. */
gtl_status gtl__prim_create(gtl__ctx *ctx, const char *op_name, uint32_t flags,
                            const int64_t *key, int32_t n_key, dnnl_primitive_desc_t pd,
                            const int *arg_ids, int32_t n_args, gtl__prim **out_prim);

/* Runs a cached primitive with ptrs[i] bound to arg_ids[i]; waits for it. */
gtl_status gtl__prim_exec(gtl__ctx *ctx, gtl__prim *p, void *const *ptrs);

/* Memory descriptor helpers (f32 unless stated). dims outermost first. */
gtl_status gtl__md_plain(dnnl_memory_desc_t *md, int32_t nd, const int64_t *dims,
                         dnnl_data_type_t dt);
gtl_status gtl__md_strided(dnnl_memory_desc_t *md, int32_t nd, const int64_t *dims,
                           const int64_t *strides, dnnl_data_type_t dt);

#endif /* GTL__DNNL_CTX_H */
