/* Public dataset and episode functions: argument checks and the episode sampler. */
#include <math.h>
#include <string.h>

#include "data/data.h"
#include "gtl/eval.h"

gtl_status gtl_dataset_create(int64_t feature_dim, gtl_dataset **out_dataset)
{
    gtl__clear_error();
    if (out_dataset == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_dataset_create: out_dataset is NULL");
    *out_dataset = NULL;
    if (feature_dim < 1 || feature_dim > ((int64_t)1 << 20))
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "gtl_dataset_create: feature_dim must be in [1, 2^20] (got %lld)",
                          (long long)feature_dim);
    return gtl__dataset_new(feature_dim, out_dataset);
}

void gtl_dataset_destroy(gtl_dataset *dataset)
{
    gtl__dataset_free(dataset);
}

gtl_status gtl_dataset_add(gtl_dataset *dataset, const float *features, int64_t n,
                           const int64_t *labels, const int32_t *modalities,
                           const int64_t *pair_ids)
{
    gtl__clear_error();
    if (dataset == NULL || features == NULL || labels == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "gtl_dataset_add: dataset, features and labels must not be NULL");
    if (n < 1 || n > ((int64_t)1 << 32))
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_dataset_add: n must be >= 1 (got %lld)",
                          (long long)n);
    for (int64_t i = 0; i < n; i++) {
        if (labels[i] < 0)
            return gtl__error(GTL_STATUS_INVALID_ARG,
                              "gtl_dataset_add: label %lld of sample %lld is negative",
                              (long long)labels[i], (long long)i);
        if (modalities != NULL && (modalities[i] < 0 || modalities[i] > 31))
            return gtl__error(GTL_STATUS_INVALID_ARG,
                              "gtl_dataset_add: modality %d of sample %lld is not in 0..31",
                              (int)modalities[i], (long long)i);
        if (pair_ids != NULL && pair_ids[i] < GTL_NO_PAIR)
            return gtl__error(GTL_STATUS_INVALID_ARG,
                              "gtl_dataset_add: pair id %lld of sample %lld is < -1",
                              (long long)pair_ids[i], (long long)i);
    }
    int64_t total = n * dataset->dim;
    for (int64_t i = 0; i < total; i++)
        if (!isfinite(features[i]))
            return gtl__error(GTL_STATUS_INVALID_ARG,
                              "gtl_dataset_add: feature %lld of sample %lld is %s",
                              (long long)(i % dataset->dim), (long long)(i / dataset->dim),
                              isnan(features[i]) ? "NaN" : "infinite");
    return gtl__dataset_append(dataset, features, n, labels, modalities, pair_ids);
}

gtl_status gtl_dataset_size(const gtl_dataset *dataset, int64_t *out_n)
{
    gtl__clear_error();
    if (out_n != NULL)
        *out_n = 0;
    if (dataset == NULL || out_n == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_dataset_size: NULL argument");
    *out_n = dataset->n;
    return GTL_STATUS_OK;
}

gtl_status gtl_dataset_feature_dim(const gtl_dataset *dataset, int64_t *out_feature_dim)
{
    gtl__clear_error();
    if (out_feature_dim != NULL)
        *out_feature_dim = 0;
    if (dataset == NULL || out_feature_dim == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_dataset_feature_dim: NULL argument");
    *out_feature_dim = dataset->dim;
    return GTL_STATUS_OK;
}

gtl_status gtl_dataset_num_classes(const gtl_dataset *dataset, int64_t *out_n_classes,
                                   int64_t *out_label_end)
{
    gtl__clear_error();
    if (out_n_classes != NULL)
        *out_n_classes = 0;
    if (out_label_end != NULL)
        *out_label_end = 0;
    if (dataset == NULL || out_n_classes == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_dataset_num_classes: NULL argument");
    *out_n_classes = dataset->n_cls;
    if (out_label_end != NULL)
        *out_label_end = dataset->n_cls ? dataset->cls_label[dataset->n_cls - 1] + 1 : 0;
    return GTL_STATUS_OK;
}

gtl_status gtl_dataset_get(const gtl_dataset *dataset, int64_t index, float *dst,
                           size_t dst_capacity, int64_t *out_label, int32_t *out_modality,
                           int64_t *out_pair_id)
{
    gtl__clear_error();
    if (out_label != NULL)
        *out_label = 0;
    if (out_modality != NULL)
        *out_modality = 0;
    if (out_pair_id != NULL)
        *out_pair_id = 0;
    if (dataset == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_dataset_get: dataset is NULL");
    if (index < 0 || index >= dataset->n)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "gtl_dataset_get: index %lld out of range [0, %lld)", (long long)index,
                          (long long)dataset->n);
    if (dst != NULL && dst_capacity < (size_t)dataset->dim)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "gtl_dataset_get: dst_capacity %zu < feature_dim %lld", dst_capacity,
                          (long long)dataset->dim);
    if (dst != NULL)
        memcpy(dst, dataset->x + index * dataset->dim, (size_t)dataset->dim * sizeof(float));
    if (out_label != NULL)
        *out_label = dataset->y[index];
    if (out_modality != NULL)
        *out_modality = dataset->mod[index];
    if (out_pair_id != NULL)
        *out_pair_id = dataset->pair[index];
    return GTL_STATUS_OK;
}

gtl_status gtl_dataset_remap_labels(gtl_dataset *dataset, int64_t *map, size_t map_capacity,
                                    int64_t *out_n_classes)
{
    gtl__clear_error();
    if (out_n_classes != NULL)
        *out_n_classes = 0;
    if (dataset == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_dataset_remap_labels: dataset is NULL");
    int64_t c = dataset->n_cls;
    if (map != NULL && map_capacity < (size_t)c)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "gtl_dataset_remap_labels: map_capacity %zu < %lld classes",
                          map_capacity, (long long)c);
    /* The class index is sorted by label: class j becomes label j. The index
     * itself stays valid (same order); only its labels change. */
    for (int64_t j = 0; j < c; j++) {
        if (map != NULL)
            map[j] = dataset->cls_label[j];
        for (int64_t i = dataset->cls_start[j]; i < dataset->cls_start[j + 1]; i++)
            dataset->y[dataset->cls_idx[i]] = j;
        dataset->cls_label[j] = j;
    }
    if (out_n_classes != NULL)
        *out_n_classes = c;
    return GTL_STATUS_OK;
}

gtl_status gtl_dataset_identity_batch(const gtl_dataset *dataset, uint64_t *rng_state,
                                      int64_t p_classes, int64_t k_samples, int64_t *out_indices,
                                      size_t capacity, int64_t *out_n)
{
    gtl__clear_error();
    if (out_n != NULL)
        *out_n = 0;
    if (dataset == NULL || rng_state == NULL || out_indices == NULL || out_n == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_dataset_identity_batch: NULL argument");
    if (p_classes < 1 || k_samples < 1 || p_classes > 65536 || k_samples > 65536)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "gtl_dataset_identity_batch: p_classes and k_samples must be in "
                          "[1, 65536]");
    if (dataset->n == 0)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_dataset_identity_batch: empty dataset");
    int64_t p = p_classes < dataset->n_cls ? p_classes : dataset->n_cls;
    if (capacity < (size_t)(p * k_samples))
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "gtl_dataset_identity_batch: capacity %zu < %lld", capacity,
                          (long long)(p * k_samples));
    gtl__rng rng;
    gtl__rng_seed(&rng, *rng_state);
    gtl_status st = gtl__dataset_identity_batch(dataset, &rng, p, k_samples, out_indices, out_n);
    if (st == GTL_STATUS_OK)
        *rng_state = gtl__rng_u64(&rng);
    return st;
}

/* ---- episodes ---- */

gtl_status gtl_episode_create(gtl_episode **out_episode)
{
    gtl__clear_error();
    if (out_episode == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_episode_create: out_episode is NULL");
    *out_episode = NULL;
    gtl_episode *ep = gtl__calloc(1, sizeof *ep);
    if (ep == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "gtl_episode_create: out of memory");
    *out_episode = ep;
    return GTL_STATUS_OK;
}

void gtl_episode_destroy(gtl_episode *episode)
{
    if (episode == NULL)
        return;
    gtl__dataset_free(episode->support);
    gtl__dataset_free(episode->query);
    gtl__free(episode->class_label);
    gtl__free(episode->src_support);
    gtl__free(episode->src_query);
    gtl__free(episode);
}

const gtl_dataset *gtl_episode_support(const gtl_episode *episode)
{
    return episode != NULL ? episode->support : NULL;
}

const gtl_dataset *gtl_episode_query(const gtl_episode *episode)
{
    return episode != NULL ? episode->query : NULL;
}

gtl_status gtl_episode_class_label(const gtl_episode *episode, int64_t cls, int64_t *out_label)
{
    gtl__clear_error();
    if (out_label != NULL)
        *out_label = 0;
    if (episode == NULL || out_label == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_episode_class_label: NULL argument");
    if (episode->class_label == NULL)
        return gtl__error(GTL_STATUS_BAD_STATE, "gtl_episode_class_label: episode not sampled");
    if (cls < 0 || cls >= episode->n_way)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "gtl_episode_class_label: class %lld out of range [0, %lld)",
                          (long long)cls, (long long)episode->n_way);
    *out_label = episode->class_label[cls];
    return GTL_STATUS_OK;
}

/* Scratch for sampling one episode. */
typedef struct ep_scratch {
    int64_t *order;     /* shuffled class ids */
    int64_t *members;   /* shuffled members of one class */
    int64_t *sup;       /* support picks of one class */
    int64_t *qry;       /* query picks of one class */
    int64_t *sup_all;   /* (n_way * n_mod * k) */
    int64_t *qry_all;   /* (n_way * q) */
    int64_t *sup_cls, *qry_cls;
} ep_scratch;

/* Tries to fill one class: K support samples of each support modality, then Q
 * queries of a query modality that share no pair id with the support picks.
 * False if the class cannot provide them. */
static bool draw_class(const gtl_dataset *ds, int64_t cls, gtl__rng *rng, int64_t k, int64_t q,
                       uint32_t smask, uint32_t qmask, ep_scratch *s, int64_t *n_sup)
{
    int64_t s0 = ds->cls_start[cls], cnt = ds->cls_start[cls + 1] - s0;
    memcpy(s->members, ds->cls_idx + s0, (size_t)cnt * sizeof(int64_t));
    gtl__rng_shuffle_i64(rng, s->members, cnt);
    int64_t ns = 0;
    for (int m = 0; m < 32; m++) {
        if (!(smask & (1u << m)))
            continue;
        int64_t got = 0;
        for (int64_t i = 0; i < cnt && got < k; i++)
            if (ds->mod[s->members[i]] == m) {
                s->sup[ns++] = s->members[i];
                got++;
            }
        if (got < k)
            return false;
    }
    /* Pair ids on the support side, then queries avoiding them. */
    int64_t nq = 0;
    for (int64_t i = 0; i < cnt && nq < q; i++) {
        int64_t idx = s->members[i];
        if (!(qmask & (1u << ds->mod[idx])))
            continue;
        bool in_sup = false;
        for (int64_t j = 0; j < ns && !in_sup; j++)
            in_sup = s->sup[j] == idx || (ds->pair[idx] != GTL_NO_PAIR &&
                                          ds->pair[s->sup[j]] == ds->pair[idx]);
        if (!in_sup)
            s->qry[nq++] = idx;
    }
    if (nq < q)
        return false;
    *n_sup = ns;
    return true;
}

gtl_status gtl__episode_build(gtl_episode *ep, const gtl_dataset *src, int64_t n_way,
                              const int64_t *labels, const int64_t *sup_idx,
                              const int64_t *sup_cls, int64_t n_sup, const int64_t *qry_idx,
                              const int64_t *qry_cls, int64_t n_qry)
{
    gtl_dataset *sup = NULL, *qry = NULL;
    int64_t *lab = gtl__malloc((size_t)n_way * sizeof(int64_t));
    int64_t *src_sup = gtl__malloc((size_t)(n_sup ? n_sup : 1) * sizeof(int64_t));
    int64_t *src_qry = gtl__malloc((size_t)(n_qry ? n_qry : 1) * sizeof(int64_t));
    int64_t n_max = (n_sup > n_qry ? n_sup : n_qry) + 1;
    float *x = gtl__malloc((size_t)n_max * (size_t)src->dim * sizeof(float));
    int32_t *mod = gtl__malloc((size_t)n_max * sizeof(int32_t));
    int64_t *pair = gtl__malloc((size_t)n_max * sizeof(int64_t));
    gtl_status st = GTL_STATUS_OUT_OF_MEMORY;
    if (lab == NULL || src_sup == NULL || src_qry == NULL || x == NULL || mod == NULL ||
        pair == NULL) {
        gtl__error(st, "episode: out of memory");
        goto out_free;
    }
    st = gtl__dataset_new(src->dim, &sup);
    if (st == GTL_STATUS_OK)
        st = gtl__dataset_new(src->dim, &qry);
    /* Gather rows (one append each side, so one reindex each). */
    for (int side = 0; side < 2 && st == GTL_STATUS_OK; side++) {
        const int64_t *idx = side == 0 ? sup_idx : qry_idx;
        const int64_t *cls = side == 0 ? sup_cls : qry_cls;
        int64_t n = side == 0 ? n_sup : n_qry;
        if (n == 0)
            continue;
        for (int64_t i = 0; i < n; i++) {
            memcpy(x + i * src->dim, src->x + idx[i] * src->dim,
                   (size_t)src->dim * sizeof(float));
            mod[i] = src->mod[idx[i]];
            pair[i] = src->pair[idx[i]];
        }
        st = gtl__dataset_append(side == 0 ? sup : qry, x, n, cls, mod, pair);
    }
    if (st != GTL_STATUS_OK)
        goto out_free;
    memcpy(lab, labels, (size_t)n_way * sizeof(int64_t));
    if (n_sup > 0)
        memcpy(src_sup, sup_idx, (size_t)n_sup * sizeof(int64_t));
    if (n_qry > 0)
        memcpy(src_qry, qry_idx, (size_t)n_qry * sizeof(int64_t));
    gtl__dataset_free(ep->support);
    gtl__dataset_free(ep->query);
    gtl__free(ep->class_label);
    gtl__free(ep->src_support);
    gtl__free(ep->src_query);
    ep->support = sup;
    ep->query = qry;
    ep->class_label = lab;
    ep->n_way = n_way;
    ep->src_support = src_sup;
    ep->src_query = src_qry;
    sup = qry = NULL;
    lab = src_sup = src_qry = NULL;

out_free:
    gtl__dataset_free(sup);
    gtl__dataset_free(qry);
    gtl__free(lab);
    gtl__free(src_sup);
    gtl__free(src_qry);
    gtl__free(x);
    gtl__free(mod);
    gtl__free(pair);
    return st;
}

gtl_status gtl_episode_sample(gtl_episode *episode, const gtl_dataset *source, int64_t n_way,
                              int64_t k_shot, int64_t q_query, uint32_t support_modalities,
                              uint32_t query_modalities, uint64_t seed)
{
    gtl__clear_error();
    if (episode == NULL || source == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_episode_sample: NULL argument");
    if (n_way < 1 || k_shot < 1 || q_query < 0 || n_way > 65536 || k_shot > 65536 ||
        q_query > 65536)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "gtl_episode_sample: need n_way >= 1, k_shot >= 1, q_query >= 0");
    if (support_modalities == 0)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "gtl_episode_sample: support_modalities selects no modality");
    int64_t n_mod = 0;
    for (int m = 0; m < 32; m++)
        n_mod += (support_modalities >> m) & 1;
    int64_t max_cls = 0;
    for (int64_t c = 0; c < source->n_cls; c++) {
        int64_t cnt = source->cls_start[c + 1] - source->cls_start[c];
        if (cnt > max_cls)
            max_cls = cnt;
    }
    int64_t per_sup = n_mod * k_shot;
    /* Requests no draw can satisfy are refused before the scratch below is
     * sized by them (n_way * per_sup entries: up to 2^37 for valid sizes). */
    if (n_way > source->n_cls || per_sup + q_query > max_cls)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "gtl_episode_sample: at most %lld of %lld classes can provide %lld "
                          "support sample(s) per modality and %lld query sample(s); %lld "
                          "requested",
                          (long long)(per_sup + q_query > max_cls ? 0 : source->n_cls),
                          (long long)source->n_cls, (long long)k_shot, (long long)q_query,
                          (long long)n_way);
    gtl_status st = GTL_STATUS_OUT_OF_MEMORY;
    ep_scratch s = {0};
    int64_t *labels = NULL;
    s.order = gtl__malloc((size_t)(source->n_cls ? source->n_cls : 1) * sizeof(int64_t));
    s.members = gtl__malloc((size_t)(max_cls ? max_cls : 1) * sizeof(int64_t));
    s.sup = gtl__malloc((size_t)per_sup * sizeof(int64_t));
    s.qry = gtl__malloc((size_t)(q_query ? q_query : 1) * sizeof(int64_t));
    s.sup_all = gtl__malloc((size_t)(n_way * per_sup) * sizeof(int64_t));
    s.qry_all = gtl__malloc((size_t)(n_way * (q_query ? q_query : 1)) * sizeof(int64_t));
    s.sup_cls = gtl__malloc((size_t)(n_way * per_sup) * sizeof(int64_t));
    s.qry_cls = gtl__malloc((size_t)(n_way * (q_query ? q_query : 1)) * sizeof(int64_t));
    labels = gtl__malloc((size_t)n_way * sizeof(int64_t));
    if (!s.order || !s.members || !s.sup || !s.qry || !s.sup_all || !s.qry_all || !s.sup_cls ||
        !s.qry_cls || !labels) {
        gtl__error(GTL_STATUS_OUT_OF_MEMORY, "gtl_episode_sample: out of memory");
        goto out_free;
    }
    gtl__rng rng;
    gtl__rng_seed(&rng, seed);
    for (int64_t c = 0; c < source->n_cls; c++)
        s.order[c] = c;
    gtl__rng_shuffle_i64(&rng, s.order, source->n_cls);
    int64_t got = 0, n_sup_all = 0, n_qry_all = 0;
    for (int64_t i = 0; i < source->n_cls && got < n_way; i++) {
        int64_t ns;
        if (!draw_class(source, s.order[i], &rng, k_shot, q_query, support_modalities,
                        query_modalities, &s, &ns))
            continue;
        for (int64_t j = 0; j < ns; j++) {
            s.sup_all[n_sup_all] = s.sup[j];
            s.sup_cls[n_sup_all++] = got;
        }
        for (int64_t j = 0; j < q_query; j++) {
            s.qry_all[n_qry_all] = s.qry[j];
            s.qry_cls[n_qry_all++] = got;
        }
        labels[got++] = source->cls_label[s.order[i]];
    }
    if (got < n_way) {
        st = gtl__error(GTL_STATUS_INVALID_ARG,
                        "gtl_episode_sample: only %lld of %lld classes can provide %lld support "
                        "sample(s) per modality and %lld query sample(s); %lld requested",
                        (long long)got, (long long)source->n_cls, (long long)k_shot,
                        (long long)q_query, (long long)n_way);
        goto out_free;
    }
    st = gtl__episode_build(episode, source, n_way, labels, s.sup_all, s.sup_cls, n_sup_all,
                            s.qry_all, s.qry_cls, n_qry_all);

out_free:
    gtl__free(labels);
    gtl__free(s.order);
    gtl__free(s.members);
    gtl__free(s.sup);
    gtl__free(s.qry);
    gtl__free(s.sup_all);
    gtl__free(s.qry_all);
    gtl__free(s.sup_cls);
    gtl__free(s.qry_cls);
    return st;
}

/* Episode class of source row idx: position of its label in labels, or -1. */
static int64_t class_of(const gtl_dataset *src, int64_t idx, const int64_t *labels,
                        int64_t n_way)
{
    for (int64_t c = 0; c < n_way; c++)
        if (labels[c] == src->y[idx])
            return c;
    return -1;
}

gtl_status gtl_episode_from_indices(gtl_episode *episode, const gtl_dataset *source,
                                    const int64_t *class_labels, int64_t n_way,
                                    const int64_t *support_indices, int64_t n_support,
                                    const int64_t *query_indices, int64_t n_query)
{
    const char *fn = "gtl_episode_from_indices";
    gtl__clear_error();
    if (episode == NULL || source == NULL || class_labels == NULL || support_indices == NULL ||
        (query_indices == NULL && n_query > 0))
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: NULL argument", fn);
    if (n_way < 1 || n_way > 65536 || n_support < 1 || n_support > source->n || n_query < 0 ||
        n_query > source->n)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "%s: need 1 <= n_way <= 65536, 1 <= n_support <= %lld and "
                          "0 <= n_query <= %lld (got %lld, %lld, %lld)",
                          fn, (long long)source->n, (long long)source->n, (long long)n_way,
                          (long long)n_support, (long long)n_query);
    for (int64_t c = 0; c < n_way; c++)
        for (int64_t d = 0; d < c; d++)
            if (class_labels[c] == class_labels[d])
                return gtl__error(GTL_STATUS_INVALID_ARG, "%s: class label %lld is repeated",
                                  fn, (long long)class_labels[c]);
    int64_t *cls = gtl__malloc((size_t)(n_support + n_query) * sizeof(int64_t));
    if (cls == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: out of memory", fn);
    gtl_status st = GTL_STATUS_OK;
    for (int64_t i = 0; i < n_support + n_query && st == GTL_STATUS_OK; i++) {
        bool is_sup = i < n_support;
        int64_t idx = is_sup ? support_indices[i] : query_indices[i - n_support];
        const char *side = is_sup ? "support" : "query";
        int64_t pos = is_sup ? i : i - n_support;
        if (idx < 0 || idx >= source->n) {
            st = gtl__error(GTL_STATUS_INVALID_ARG, "%s: %s index %lld is %lld, outside [0, %lld)",
                            fn, side, (long long)pos, (long long)idx, (long long)source->n);
            break;
        }
        cls[i] = class_of(source, idx, class_labels, n_way);
        if (cls[i] < 0)
            st = gtl__error(GTL_STATUS_INVALID_ARG,
                            "%s: %s sample %lld (source row %lld) has label %lld, which is not "
                            "one of the episode's classes",
                            fn, side, (long long)pos, (long long)idx, (long long)source->y[idx]);
    }
    if (st == GTL_STATUS_OK)
        st = gtl__episode_build(episode, source, n_way, class_labels, support_indices, cls,
                                n_support, query_indices, cls + n_support, n_query);
    gtl__free(cls);
    return st;
}

gtl_status gtl_episode_source_indices(const gtl_episode *episode, int32_t side, int64_t *dst,
                                      size_t capacity, int64_t *out_n)
{
    const char *fn = "gtl_episode_source_indices";
    gtl__clear_error();
    if (out_n != NULL)
        *out_n = 0;
    if (episode == NULL || out_n == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: NULL argument", fn);
    if (side != 0 && side != 1)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: side must be 0 (support) or 1 (query), "
                          "got %d", fn, (int)side);
    if (episode->class_label == NULL)
        return gtl__error(GTL_STATUS_BAD_STATE, "%s: episode not sampled", fn);
    const gtl_dataset *ds = side == 0 ? episode->support : episode->query;
    const int64_t *idx = side == 0 ? episode->src_support : episode->src_query;
    if (dst != NULL && capacity < (size_t)ds->n)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: capacity %zu < %lld", fn, capacity,
                          (long long)ds->n);
    if (dst != NULL && ds->n > 0)
        memcpy(dst, idx, (size_t)ds->n * sizeof(int64_t));
    *out_n = ds->n;
    return GTL_STATUS_OK;
}
