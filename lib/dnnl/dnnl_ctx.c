/* oneDNN engine, per-context stream and primitive cache. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "dnnl/dnnl_ctx.h"

struct gtl__ctx {
    dnnl_stream_t stream;
    gtl__prim **table;      /* open addressing, cap entries, NULL = empty */
    int64_t cap;
    gtl__prim **list;       /* insertion order, for introspection */
    int64_t n;
    int64_t cap_list;
};

static pthread_mutex_t engine_lock = PTHREAD_MUTEX_INITIALIZER;
static dnnl_engine_t engine;

gtl_status gtl__status_from_dnnl(dnnl_status_t s)
{
    switch (s) {
    case dnnl_success:
        return GTL_STATUS_OK;
    case dnnl_out_of_memory:
        return GTL_STATUS_OUT_OF_MEMORY;
    case dnnl_invalid_arguments:
        return GTL_STATUS_INVALID_ARG;
    case dnnl_unimplemented:
        return GTL_STATUS_UNSUPPORTED;
    default:
        return GTL_STATUS_BACKEND;
    }
}

static const char *dnnl_status_name(dnnl_status_t s)
{
    switch (s) {
    case dnnl_success: return "success";
    case dnnl_out_of_memory: return "out of memory";
    case dnnl_invalid_arguments: return "invalid arguments";
    case dnnl_unimplemented: return "unimplemented";
    case dnnl_iterator_ends: return "iterator ends";
    case dnnl_runtime_error: return "runtime error";
    case dnnl_not_required: return "not required";
    default: return "unknown error";
    }
}

gtl_status gtl__dnnl_error(dnnl_status_t s, const char *what)
{
    return gtl__error(gtl__status_from_dnnl(s), "%s: oneDNN: %s", what, dnnl_status_name(s));
}

gtl_status gtl__dnnl_engine(dnnl_engine_t *out_engine)
{
    gtl_status st = GTL_STATUS_OK;
    pthread_mutex_lock(&engine_lock);
    if (engine == NULL) {
        dnnl_status_t s = dnnl_engine_create(&engine, dnnl_cpu, 0);
        if (s != dnnl_success) {
            engine = NULL;
            st = gtl__dnnl_error(s, "creating the CPU engine");
        }
    }
    *out_engine = engine;
    pthread_mutex_unlock(&engine_lock);
    return st;
}

gtl_status gtl__dnnl_attr_create(dnnl_primitive_attr_t *out_attr)
{
    *out_attr = NULL;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_status_t s = dnnl_primitive_attr_create(&attr);
    if (s != dnnl_success)
        return gtl__dnnl_error(s, "primitive attribute");
    s = dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    if (s != dnnl_success) {
        dnnl_primitive_attr_destroy(attr);
        return gtl__dnnl_error(s, "primitive attribute");
    }
    *out_attr = attr;
    return GTL_STATUS_OK;
}

gtl_status gtl__ctx_create(gtl__ctx **out_ctx)
{
    *out_ctx = NULL;
    dnnl_engine_t eng;
    gtl_status st = gtl__dnnl_engine(&eng);
    if (st != GTL_STATUS_OK)
        return st;
    gtl__ctx *ctx = gtl__calloc(1, sizeof *ctx);
    if (ctx == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "compute context: out of memory");
    ctx->cap = 64;
    ctx->table = gtl__calloc((size_t)ctx->cap, sizeof *ctx->table);
    if (ctx->table == NULL) {
        st = gtl__error(GTL_STATUS_OUT_OF_MEMORY, "compute context: out of memory");
        goto out_free_ctx;
    }
    dnnl_status_t s = dnnl_stream_create(&ctx->stream, eng, dnnl_stream_default_flags);
    if (s != dnnl_success) {
        st = gtl__dnnl_error(s, "creating a stream");
        goto out_free_table;
    }
    *out_ctx = ctx;
    return GTL_STATUS_OK;

out_free_table:
    gtl__free(ctx->table);
out_free_ctx:
    gtl__free(ctx);
    return st;
}

static void prim_destroy(gtl__prim *p)
{
    if (p == NULL)
        return;
    for (int32_t i = 0; i < GTL__PRIM_MAX_ARGS + 1; i++)
        if (p->args[i].memory != NULL)
            dnnl_memory_destroy(p->args[i].memory);
    if (p->prim != NULL)
        dnnl_primitive_destroy(p->prim);
    gtl__free_aligned(p->scratch);
    gtl__free(p);
}

void gtl__ctx_destroy(gtl__ctx *ctx)
{
    if (ctx == NULL)
        return;
    for (int64_t i = 0; i < ctx->n; i++)
        prim_destroy(ctx->list[i]);
    gtl__free(ctx->list);
    gtl__free(ctx->table);
    if (ctx->stream != NULL)
        dnnl_stream_destroy(ctx->stream);
    gtl__free(ctx);
}

static uint64_t key_hash(const int64_t *key, int32_t n_key)
{
    uint64_t h = 1469598103934665603ull;
    for (int32_t i = 0; i < n_key; i++) {
        uint64_t v = (uint64_t)key[i];
        for (int b = 0; b < 8; b++) {
            h ^= (v >> (8 * b)) & 0xff;
            h *= 1099511628211ull;
        }
    }
    return h;
}

static bool key_equal(const gtl__prim *p, const int64_t *key, int32_t n_key)
{
    return p->n_key == n_key && memcmp(p->key, key, (size_t)n_key * sizeof *key) == 0;
}

gtl__prim *gtl__prim_lookup(gtl__ctx *ctx, const int64_t *key, int32_t n_key)
{
    uint64_t mask = (uint64_t)ctx->cap - 1;
    for (uint64_t i = key_hash(key, n_key) & mask;; i = (i + 1) & mask) {
        gtl__prim *p = ctx->table[i];
        if (p == NULL)
            return NULL;
        if (key_equal(p, key, n_key))
            return p;
    }
}

static void table_put(gtl__prim **table, int64_t cap, gtl__prim *p)
{
    uint64_t mask = (uint64_t)cap - 1;
    uint64_t i = key_hash(p->key, p->n_key) & mask;
    while (table[i] != NULL)
        i = (i + 1) & mask;
    table[i] = p;
}

/* Makes room for one more entry in both the table and the list. */
static gtl_status reserve_one(gtl__ctx *ctx)
{
    if (ctx->n == ctx->cap_list) {
        int64_t cap = ctx->cap_list ? 2 * ctx->cap_list : 32;
        gtl__prim **l = gtl__realloc(ctx->list, (size_t)cap * sizeof *l);
        if (l == NULL)
            return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "primitive cache: out of memory");
        ctx->list = l;
        ctx->cap_list = cap;
    }
    if (2 * (ctx->n + 1) > ctx->cap) {
        int64_t cap = 2 * ctx->cap;
        gtl__prim **t = gtl__calloc((size_t)cap, sizeof *t);
        if (t == NULL)
            return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "primitive cache: out of memory");
        for (int64_t i = 0; i < ctx->n; i++)
            table_put(t, cap, ctx->list[i]);
        gtl__free(ctx->table);
        ctx->table = t;
        ctx->cap = cap;
    }
    return GTL_STATUS_OK;
}

gtl_status gtl__prim_create(gtl__ctx *ctx, const char *op_name, uint32_t flags,
                            const int64_t *key, int32_t n_key, dnnl_primitive_desc_t pd,
                            const int *arg_ids, int32_t n_args, gtl__prim **out_prim)
{
    *out_prim = NULL;
    gtl_status st = GTL_STATUS_OK;
    dnnl_status_t s;
    gtl__prim *p = NULL;
    dnnl_engine_t eng;
    char what[128];
    snprintf(what, sizeof what, "%s primitive", op_name);

    if (n_key > GTL__KEY_MAX || n_args > GTL__PRIM_MAX_ARGS) {
        st = gtl__error(GTL_STATUS_INTERNAL, "%s: key or argument list too long", what);
        goto out_destroy_pd;
    }
    st = gtl__dnnl_engine(&eng);
    if (st != GTL_STATUS_OK)
        goto out_destroy_pd;
    st = reserve_one(ctx);
    if (st != GTL_STATUS_OK)
        goto out_destroy_pd;
    p = gtl__calloc(1, sizeof *p);
    if (p == NULL) {
        st = gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: out of memory", what);
        goto out_destroy_pd;
    }
    memcpy(p->key, key, (size_t)n_key * sizeof *key);
    p->n_key = n_key;
    p->flags = flags;
    p->op_name = op_name;
    p->n_args = n_args;

    const char *impl = NULL;
    s = dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &impl);
    snprintf(p->impl, sizeof p->impl, "%s", (s == dnnl_success && impl) ? impl : "?");

    for (int32_t i = 0; i < n_args; i++) {
        const dnnl_memory_desc_t *md =
            dnnl_primitive_desc_query_md(pd, dnnl_query_exec_arg_md, arg_ids[i]);
        /* oneDNN answers an argument the primitive does not use with an empty
         * descriptor: catching it here names the wrong argument list at
         * creation instead of failing later with "invalid arguments". */
        if (md == NULL || md->ndims == 0) {
            st = gtl__error(GTL_STATUS_INTERNAL, "%s: the primitive has no argument %d", what,
                            arg_ids[i]);
            goto out_free_prim;
        }
        p->args[i].arg = arg_ids[i];
        s = dnnl_memory_create(&p->args[i].memory, md, eng, DNNL_MEMORY_NONE);
        if (s != dnnl_success) {
            st = gtl__dnnl_error(s, what);
            goto out_free_prim;
        }
    }
    const dnnl_memory_desc_t *smd = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t ssize = smd != NULL ? dnnl_memory_desc_get_size(smd) : 0;
    if (ssize > 0) {
        p->scratch = gtl__malloc_aligned(ssize);
        if (p->scratch == NULL) {
            st = gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: scratchpad of %zu bytes", what, ssize);
            goto out_free_prim;
        }
        p->args[n_args].arg = DNNL_ARG_SCRATCHPAD;
        s = dnnl_memory_create(&p->args[n_args].memory, smd, eng, p->scratch);
        if (s != dnnl_success) {
            st = gtl__dnnl_error(s, what);
            goto out_free_prim;
        }
    }
    s = dnnl_primitive_create(&p->prim, pd);
    if (s != dnnl_success) {
        st = gtl__dnnl_error(s, what);
        goto out_free_prim;
    }
    dnnl_primitive_desc_destroy(pd);

    if ((flags & GTL__PRIM_HOT) && strncmp(p->impl, "ref", 3) == 0)
        gtl__log(GTL_LOG_WARN, "%s runs on a reference kernel (%s): expect it to be slow",
                 what, p->impl);
    else
        gtl__log(GTL_LOG_DEBUG, "%s: %s", what, p->impl);

    table_put(ctx->table, ctx->cap, p);
    ctx->list[ctx->n++] = p;
    *out_prim = p;
    return GTL_STATUS_OK;

out_free_prim:
    prim_destroy(p);
out_destroy_pd:
    dnnl_primitive_desc_destroy(pd);
    return st;
}

gtl_status gtl__prim_exec(gtl__ctx *ctx, gtl__prim *p, void *const *ptrs)
{
    dnnl_status_t s;
    for (int32_t i = 0; i < p->n_args; i++) {
        s = dnnl_memory_set_data_handle_v2(p->args[i].memory, ptrs[i], ctx->stream);
        if (s != dnnl_success)
            return gtl__dnnl_error(s, p->op_name);
    }
    int32_t n = p->n_args + (p->scratch != NULL ? 1 : 0);
    s = dnnl_primitive_execute(p->prim, ctx->stream, n, p->args);
    if (s != dnnl_success)
        return gtl__dnnl_error(s, p->op_name);
    s = dnnl_stream_wait(ctx->stream);
    if (s != dnnl_success)
        return gtl__dnnl_error(s, p->op_name);
    p->n_exec++;
    return GTL_STATUS_OK;
}

gtl_status gtl__md_plain(dnnl_memory_desc_t *md, int32_t nd, const int64_t *dims,
                         dnnl_data_type_t dt)
{
    dnnl_dims_t d, strides;
    int64_t stride = 1;
    for (int32_t i = nd - 1; i >= 0; i--) {
        d[i] = dims[i];
        strides[i] = stride;
        stride *= dims[i] > 0 ? dims[i] : 1;
    }
    dnnl_status_t s = dnnl_memory_desc_init_by_strides(md, nd, d, dt, strides);
    return s == dnnl_success ? GTL_STATUS_OK : gtl__dnnl_error(s, "memory descriptor");
}

gtl_status gtl__md_strided(dnnl_memory_desc_t *md, int32_t nd, const int64_t *dims,
                           const int64_t *strides, dnnl_data_type_t dt)
{
    dnnl_dims_t d, st;
    for (int32_t i = 0; i < nd; i++) {
        d[i] = dims[i];
        st[i] = strides[i];
    }
    dnnl_status_t s = dnnl_memory_desc_init_by_strides(md, nd, d, dt, st);
    return s == dnnl_success ? GTL_STATUS_OK : gtl__dnnl_error(s, "memory descriptor");
}

int64_t gtl__ctx_num_prims(const gtl__ctx *ctx)
{
    return ctx->n;
}

void gtl__ctx_prim_info(const gtl__ctx *ctx, int64_t i, const char **out_op,
                        const char **out_impl, bool *out_hot, uint64_t *out_n_exec)
{
    const gtl__prim *p = ctx->list[i];
    if (out_op)
        *out_op = p->op_name;
    if (out_impl)
        *out_impl = p->impl;
    if (out_hot)
        *out_hot = (p->flags & GTL__PRIM_HOT) != 0;
    if (out_n_exec)
        *out_n_exec = p->n_exec;
}

int64_t gtl__ctx_num_hot_ref(const gtl__ctx *ctx)
{
    int64_t n = 0;
    for (int64_t i = 0; i < ctx->n; i++)
        if ((ctx->list[i]->flags & GTL__PRIM_HOT) && strncmp(ctx->list[i]->impl, "ref", 3) == 0)
            n++;
    return n;
}

gtl_status gtl__dnnl_version_string(char *dst, size_t cap)
{
    const dnnl_version_t *v = dnnl_version();
    snprintf(dst, cap, "%d.%d.%d (%s)", v->major, v->minor, v->patch,
             v->cpu_runtime == DNNL_RUNTIME_OMP ? "cpu omp"
             : v->cpu_runtime == DNNL_RUNTIME_SEQ ? "cpu seq"
             : v->cpu_runtime == DNNL_RUNTIME_TBB ? "cpu tbb" : "cpu other");
    return GTL_STATUS_OK;
}

const char *gtl__dnnl_isa_name(void)
{
    switch (dnnl_get_effective_cpu_isa()) {
    case dnnl_cpu_isa_sse41: return "sse41";
    case dnnl_cpu_isa_avx: return "avx";
    case dnnl_cpu_isa_avx2: return "avx2";
    case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
    case dnnl_cpu_isa_avx512_mic: return "avx512_mic";
    case dnnl_cpu_isa_avx512_mic_4ops: return "avx512_mic_4ops";
    case dnnl_cpu_isa_avx512_core: return "avx512_core";
    case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
    case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
    case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
    default: return "unknown";
    }
}

bool gtl__dnnl_has_bf16(void)
{
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return isa == dnnl_cpu_isa_avx512_core_bf16 || isa == dnnl_cpu_isa_avx512_core_amx;
}
