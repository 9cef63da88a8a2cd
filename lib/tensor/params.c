/* Parameter sets: named tensors whose data (and gradients) are views into
 * one contiguous blob, so zero_grad is one memset, an optimizer is one flat
 * loop and a checkpoint is one write. */
#include <string.h>

#include "tensor/tensor.h"

void gtl__paramset_init(gtl__paramset *ps)
{
    memset(ps, 0, sizeof *ps);
}

static void rowtrack_free(gtl__rowtrack *rt)
{
    if (rt == NULL)
        return;
    gtl__free(rt->dirty);
    gtl__free(rt->is_dirty);
    gtl__free(rt);
}

void gtl__paramset_fini(gtl__paramset *ps)
{
    if (ps->params != NULL)
        for (int64_t i = 0; i < ps->n_params; i++)
            rowtrack_free(ps->params[i].rows);
    if (ps->names != NULL)
        for (int64_t i = 0; i < ps->n_params; i++)
            gtl__free(ps->names[i]);
    gtl__free(ps->names);
    gtl__free(ps->params);
    gtl__free(ps->frozen);
    gtl__free(ps->offsets);
    gtl__free_aligned(ps->data);
    gtl__free_aligned(ps->grad);
    memset(ps, 0, sizeof *ps);
}

static gtl_status grow(gtl__paramset *ps)
{
    int64_t cap = ps->cap_params ? 2 * ps->cap_params : 16;
    gtl__tensor *p = gtl__realloc(ps->params, (size_t)cap * sizeof *p);
    if (p == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "parameter table: out of memory");
    ps->params = p;
    char **nm = gtl__realloc(ps->names, (size_t)cap * sizeof *nm);
    if (nm == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "parameter table: out of memory");
    ps->names = nm;
    bool *fr = gtl__realloc(ps->frozen, (size_t)cap * sizeof *fr);
    if (fr == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "parameter table: out of memory");
    ps->frozen = fr;
    int64_t *off = gtl__realloc(ps->offsets, (size_t)cap * sizeof *off);
    if (off == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "parameter table: out of memory");
    ps->offsets = off;
    ps->cap_params = cap;
    return GTL_STATUS_OK;
}

gtl_status gtl__paramset_add(gtl__paramset *ps, const char *name, int32_t nd,
                             const int64_t *ne, int64_t *out_index)
{
    if (ps->finalized)
        return gtl__error(GTL_STATUS_BAD_STATE, "parameter set already finalized");
    gtl__tensor t;
    memset(&t, 0, sizeof t);
    if (!gtl__tensor_set_shape(&t, nd, ne))
        return gtl__error(GTL_STATUS_INVALID_ARG, "parameter %s: invalid shape", name);
    if (ps->n_params == ps->cap_params) {
        gtl_status st = grow(ps);
        if (st != GTL_STATUS_OK)
            return st;
    }
    size_t len = strlen(name);
    char *copy = gtl__malloc(len + 1);
    if (copy == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "parameter %s: out of memory", name);
    memcpy(copy, name, len + 1);
    int64_t i = ps->n_params++;
    ps->names[i] = copy;
    ps->frozen[i] = false;
    ps->offsets[i] = ps->n_total;
    /* Keep each tensor 64-byte aligned inside the blob: round to 16 floats. */
    ps->n_total += (t.n + 15) & ~(int64_t)15;
    t.name = copy;
    t.flags = GTL__TF_PARAM | GTL__TF_LEAF | GTL__TF_REQUIRES_GRAD;
    ps->params[i] = t;
    if (out_index != NULL)
        *out_index = i;
    return GTL_STATUS_OK;
}

gtl_status gtl__paramset_finalize(gtl__paramset *ps)
{
    if (ps->finalized)
        return gtl__error(GTL_STATUS_BAD_STATE, "parameter set already finalized");
    size_t bytes;
    if (!gtl__mul_size((size_t)(ps->n_total ? ps->n_total : 16), sizeof(float), &bytes))
        return gtl__error(GTL_STATUS_INVALID_ARG, "parameter set too large");
    ps->data = gtl__calloc_aligned(bytes);
    if (ps->data == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY,
                          "parameter blob of %zu bytes: out of memory", bytes);
    for (int64_t i = 0; i < ps->n_params; i++)
        ps->params[i].data = ps->data + ps->offsets[i];
    ps->finalized = true;
    return GTL_STATUS_OK;
}

gtl_status gtl__paramset_alloc_grad(gtl__paramset *ps)
{
    if (!ps->finalized)
        return gtl__error(GTL_STATUS_BAD_STATE, "parameter set not finalized");
    if (ps->grad == NULL) {
        size_t bytes = (size_t)(ps->n_total ? ps->n_total : 16) * sizeof(float);
        ps->grad = gtl__calloc_aligned(bytes);
        if (ps->grad == NULL)
            return gtl__error(GTL_STATUS_OUT_OF_MEMORY,
                              "gradient blob of %zu bytes: out of memory", bytes);
    }
    for (int64_t i = 0; i < ps->n_params; i++)
        ps->params[i].grad = ps->frozen[i] ? NULL : ps->grad + ps->offsets[i];
    return GTL_STATUS_OK;
}

void gtl__paramset_zero_grad(gtl__paramset *ps)
{
    if (ps->grad == NULL)
        return;
    /* Runs of dense parameters are one memset each; a tracked parameter
     * clears its marked rows only (its other rows are zero already). */
    int64_t run = 0; /* start of the pending dense run */
    for (int64_t i = 0; i < ps->n_params; i++) {
        gtl__rowtrack *rt = ps->params[i].rows;
        if (rt == NULL)
            continue;
        int64_t off = ps->offsets[i];
        if (off > run)
            memset(ps->grad + run, 0, (size_t)(off - run) * sizeof(float));
        for (int64_t k = 0; k < rt->n_dirty; k++) {
            int64_t r = rt->dirty[k];
            memset(ps->grad + off + r * rt->row_len, 0, (size_t)rt->row_len * sizeof(float));
            rt->is_dirty[r] = 0;
        }
        rt->n_dirty = 0;
        /* The blob padding after the tensor is never written: skip it too. */
        run = i + 1 < ps->n_params ? ps->offsets[i + 1] : ps->n_total;
    }
    if (ps->n_total > run)
        memset(ps->grad + run, 0, (size_t)(ps->n_total - run) * sizeof(float));
}

gtl_status gtl__paramset_track_rows(gtl__paramset *ps, int64_t index, int64_t n_rows)
{
    if (!ps->finalized || index < 0 || index >= ps->n_params)
        return gtl__error(GTL_STATUS_INVALID_ARG, "track_rows: no parameter %lld",
                          (long long)index);
    gtl__tensor *t = &ps->params[index];
    if (n_rows < 1 || t->n % n_rows != 0 || t->rows != NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "track_rows: %s (%lld values) cannot be split into %lld rows",
                          ps->names[index], (long long)t->n, (long long)n_rows);
    gtl__rowtrack *rt = gtl__calloc(1, sizeof *rt);
    if (rt != NULL) {
        rt->dirty = gtl__calloc((size_t)n_rows, sizeof *rt->dirty);
        rt->is_dirty = gtl__calloc((size_t)n_rows, sizeof *rt->is_dirty);
    }
    if (rt == NULL || rt->dirty == NULL || rt->is_dirty == NULL) {
        rowtrack_free(rt);
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "track_rows: out of memory");
    }
    rt->row_len = t->n / n_rows;
    rt->n_rows = n_rows;
    t->rows = rt;
    return GTL_STATUS_OK;
}

void gtl__paramset_set_frozen(gtl__paramset *ps, int64_t index, bool frozen)
{
    GTL_ASSERT(index >= 0 && index < ps->n_params);
    ps->frozen[index] = frozen;
    gtl__tensor *t = &ps->params[index];
    if (frozen) {
        t->flags &= ~(uint32_t)GTL__TF_REQUIRES_GRAD;
        t->grad = NULL;
    } else {
        t->flags |= GTL__TF_REQUIRES_GRAD;
        t->grad = ps->grad != NULL ? ps->grad + ps->offsets[index] : NULL;
    }
}

gtl__tensor *gtl__paramset_get(gtl__paramset *ps, int64_t index)
{
    if (index < 0 || index >= ps->n_params)
        return NULL;
    return &ps->params[index];
}

int64_t gtl__paramset_find(const gtl__paramset *ps, const char *name)
{
    for (int64_t i = 0; i < ps->n_params; i++)
        if (strcmp(ps->names[i], name) == 0)
            return i;
    return -1;
}
