/* Datasets, their class index, the identity-batch sampler and the N-way
 * K-shot episode sampler. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "data/data.h"

gtl_status gtl__dataset_new(int64_t dim, gtl_dataset **out)
{
    *out = NULL;
    gtl_dataset *ds = gtl__calloc(1, sizeof *ds);
    if (ds == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "dataset: out of memory");
    ds->dim = dim;
    *out = ds;
    return GTL_STATUS_OK;
}

void gtl__dataset_free(gtl_dataset *ds)
{
    if (ds == NULL)
        return;
    gtl__free_aligned(ds->x);
    gtl__free(ds->y);
    gtl__free(ds->mod);
    gtl__free(ds->pair);
    gtl__free(ds->cls_label);
    gtl__free(ds->cls_start);
    gtl__free(ds->cls_idx);
    gtl__free(ds);
}

static gtl_status reserve(gtl_dataset *ds, int64_t need)
{
    if (need <= ds->cap)
        return GTL_STATUS_OK;
    int64_t cap = ds->cap ? ds->cap : 64;
    while (cap < need)
        cap *= 2;
    size_t fbytes;
    if (!gtl__mul_size((size_t)cap, (size_t)ds->dim * sizeof(float), &fbytes))
        return gtl__error(GTL_STATUS_INVALID_ARG, "dataset: too large");
    float *x = gtl__malloc_aligned(fbytes);
    int64_t *y = gtl__malloc((size_t)cap * sizeof *y);
    int32_t *mod = gtl__malloc((size_t)cap * sizeof *mod);
    int64_t *pair = gtl__malloc((size_t)cap * sizeof *pair);
    if (x == NULL || y == NULL || mod == NULL || pair == NULL) {
        gtl__free_aligned(x);
        gtl__free(y);
        gtl__free(mod);
        gtl__free(pair);
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "dataset: out of memory (%lld samples)",
                          (long long)cap);
    }
    if (ds->n > 0) {
        memcpy(x, ds->x, (size_t)ds->n * (size_t)ds->dim * sizeof(float));
        memcpy(y, ds->y, (size_t)ds->n * sizeof *y);
        memcpy(mod, ds->mod, (size_t)ds->n * sizeof *mod);
        memcpy(pair, ds->pair, (size_t)ds->n * sizeof *pair);
    }
    gtl__free_aligned(ds->x);
    gtl__free(ds->y);
    gtl__free(ds->mod);
    gtl__free(ds->pair);
    ds->x = x;
    ds->y = y;
    ds->mod = mod;
    ds->pair = pair;
    ds->cap = cap;
    return GTL_STATUS_OK;
}

/* Stable merge sort of sample indices by label (reentrant, unlike qsort with a global key). */
static void sort_idx(int64_t *a, int64_t *tmp, int64_t n, const int64_t *labels)
{
    if (n < 2)
        return;
    int64_t h = n / 2;
    sort_idx(a, tmp, h, labels);
    sort_idx(a + h, tmp, n - h, labels);
    int64_t i = 0, j = h, k = 0;
    while (i < h && j < n) {
        int64_t li = labels[a[i]], lj = labels[a[j]];
        if (li < lj || (li == lj && a[i] <= a[j]))
            tmp[k++] = a[i++];
        else
            tmp[k++] = a[j++];
    }
    while (i < h)
        tmp[k++] = a[i++];
    while (j < n)
        tmp[k++] = a[j++];
    memcpy(a, tmp, (size_t)n * sizeof *a);
}

gtl_status gtl__dataset_reindex(gtl_dataset *ds)
{
    int64_t n = ds->n;
    int64_t *idx = gtl__malloc((size_t)(n ? n : 1) * sizeof *idx);
    int64_t *tmp = gtl__malloc((size_t)(n ? n : 1) * sizeof *tmp);
    int64_t *lab = gtl__malloc((size_t)(n ? n : 1) * sizeof *lab);
    int64_t *start = gtl__malloc((size_t)(n + 1) * sizeof *start);
    if (idx == NULL || tmp == NULL || lab == NULL || start == NULL) {
        gtl__free(idx);
        gtl__free(tmp);
        gtl__free(lab);
        gtl__free(start);
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "dataset index: out of memory");
    }
    for (int64_t i = 0; i < n; i++)
        idx[i] = i;
    sort_idx(idx, tmp, n, ds->y);
    gtl__free(tmp);
    int64_t n_cls = 0;
    for (int64_t i = 0; i < n; i++) {
        if (i == 0 || ds->y[idx[i]] != ds->y[idx[i - 1]]) {
            lab[n_cls] = ds->y[idx[i]];
            start[n_cls] = i;
            n_cls++;
        }
    }
    start[n_cls] = n;
    gtl__free(ds->cls_idx);
    gtl__free(ds->cls_label);
    gtl__free(ds->cls_start);
    ds->cls_idx = idx;
    ds->cls_label = lab;
    ds->cls_start = start;
    ds->n_cls = n_cls;
    return GTL_STATUS_OK;
}

gtl_status gtl__dataset_append(gtl_dataset *ds, const float *x, int64_t n, const int64_t *y,
                               const int32_t *mod, const int64_t *pair)
{
    gtl_status st = reserve(ds, ds->n + n);
    if (st != GTL_STATUS_OK)
        return st;
    int64_t n0 = ds->n;
    memcpy(ds->x + n0 * ds->dim, x, (size_t)n * (size_t)ds->dim * sizeof(float));
    memcpy(ds->y + n0, y, (size_t)n * sizeof *y);
    for (int64_t i = 0; i < n; i++) {
        ds->mod[n0 + i] = mod ? mod[i] : GTL_MODALITY_RGB;
        ds->pair[n0 + i] = pair ? pair[i] : GTL_NO_PAIR;
    }
    ds->n += n;
    st = gtl__dataset_reindex(ds);
    if (st != GTL_STATUS_OK)
        ds->n = n0; /* the old index still describes the first n0 samples */
    return st;
}

gtl_status gtl__dataset_identity_batch(const gtl_dataset *ds, gtl__rng *rng, int64_t p,
                                       int64_t k, int64_t *out, int64_t *out_n)
{
    *out_n = 0;
    if (ds->n_cls == 0)
        return gtl__error(GTL_STATUS_INVALID_ARG, "identity batch: the dataset is empty");
    if (p > ds->n_cls)
        p = ds->n_cls;
    /* Distinct classes by rejection against those already drawn, and
     * distinct members by rejection too: p and k are small (16 x 4), and this
     * needs no scratch memory, so a training step allocates nothing. */
    int64_t n_out = 0;
    for (int64_t c = 0; c < p; c++) {
        int64_t cls;
        for (;;) {
            cls = (int64_t)gtl__rng_below(rng, (uint64_t)ds->n_cls);
            bool dup = false;
            for (int64_t j = 0; j < c && !dup; j++)
                dup = out[j * k] >= 0 && ds->y[out[j * k]] == ds->cls_label[cls];
            if (!dup)
                break;
        }
        int64_t s0 = ds->cls_start[cls], cnt = ds->cls_start[cls + 1] - s0;
        /* k draws without replacement while possible (partial shuffle of a
         * window of the class list, done on the output itself). */
        for (int64_t j = 0; j < k; j++) {
            int64_t pick;
            if (j < cnt) {
                /* choose uniformly among class members not yet chosen */
                for (;;) {
                    pick = ds->cls_idx[s0 + (int64_t)gtl__rng_below(rng, (uint64_t)cnt)];
                    bool used = false;
                    for (int64_t q = 0; q < j && !used; q++)
                        used = out[c * k + q] == pick;
                    if (!used)
                        break;
                }
            } else {
                pick = ds->cls_idx[s0 + (int64_t)gtl__rng_below(rng, (uint64_t)cnt)];
            }
            out[c * k + j] = pick;
            n_out++;
        }
    }
    *out_n = n_out;
    return GTL_STATUS_OK;
}
