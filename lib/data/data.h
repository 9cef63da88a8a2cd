/* data: labelled feature sets, episodes and samplers (the structs behind the
 * public gtl_dataset and gtl_episode handles). */
#ifndef GTL__DATA_H
#define GTL__DATA_H

#include "core/rng.h"
#include "gtl/dataset.h"
#include "tensor/tensor.h"

struct gtl_dataset {
    int64_t dim;       /* feature size */
    int64_t n;         /* samples */
    int64_t cap;       /* allocated samples */
    float *x;          /* (cap, dim) */
    int64_t *y;        /* labels */
    int32_t *mod;      /* modality tags */
    int64_t *pair;     /* pair ids or GTL_NO_PAIR */
    /* Class index, rebuilt after every append: the classes in increasing
     * label order, and the sample indices of each (insertion order). */
    int64_t n_cls;
    int64_t *cls_label;  /* (n_cls) */
    int64_t *cls_start;  /* (n_cls + 1) into cls_idx */
    int64_t *cls_idx;    /* (n) */
};

struct gtl_episode {
    gtl_dataset *support;
    gtl_dataset *query;
    int64_t *class_label;  /* (n_way): original label of each episode class */
    int64_t n_way;
    /* Source index of every support and query row, so that an episode can
     * be saved and rebuilt with gtl_episode_from_indices(). */
    int64_t *src_support;  /* (support->n) */
    int64_t *src_query;    /* (query->n) */
};

gtl_status gtl__dataset_new(int64_t dim, gtl_dataset **out);
void gtl__dataset_free(gtl_dataset *ds);
/* Appends without validation (callers validated); rebuilds the class index. */
gtl_status gtl__dataset_append(gtl_dataset *ds, const float *x, int64_t n, const int64_t *y,
                               const int32_t *mod, const int64_t *pair);
gtl_status gtl__dataset_reindex(gtl_dataset *ds);
/* Builds an episode from rows of src: support row i is src row sup_idx[i]
 * with episode label sup_cls[i] (0..n_way-1), likewise for the query side
 * (n_qry may be 0). labels[c] is the source label of episode class c. The
 * indices are recorded. Callers validated everything; on failure the episode
 * is unchanged. */
gtl_status gtl__episode_build(gtl_episode *ep, const gtl_dataset *src, int64_t n_way,
                              const int64_t *labels, const int64_t *sup_idx,
                              const int64_t *sup_cls, int64_t n_sup, const int64_t *qry_idx,
                              const int64_t *qry_cls, int64_t n_qry);
/* Identity batch into out (p*k entries after capping p at n_cls). */
gtl_status gtl__dataset_identity_batch(const gtl_dataset *ds, gtl__rng *rng, int64_t p,
                                       int64_t k, int64_t *out, int64_t *out_n);

#endif /* GTL__DATA_H */
