/* Protocol runners: episodic (N-way K-shot Q-query), all-way, and replay of a
 * saved episode list. Each episode runs the evaluator's method, records its
 * accuracies (total and per query modality) and its source indices. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api/api_clone.h"
#include "eval/eval.h"
#include "gtl/train.h"

/* splitmix64: the per-episode seed, so that episode e does not depend on how
 * many episodes run before it. */
static uint64_t episode_seed(uint64_t seed, int64_t e)
{
    uint64_t z = seed + (uint64_t)(e + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static void clear_results(gtl_evaluator *ev)
{
    ev->protocol = GTL__PROTO_NONE;
    ev->n_ep = 0;
    ev->n_list = 0;
}

static gtl_status grow_i64(int64_t **p, int64_t *cap, int64_t need)
{
    if (need <= *cap)
        return GTL_STATUS_OK;
    int64_t c = *cap ? *cap : 256;
    while (c < need)
        c *= 2;
    int64_t *q = gtl__realloc(*p, (size_t)c * sizeof(int64_t));
    if (q == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "evaluator: out of memory");
    *p = q;
    *cap = c;
    return GTL_STATUS_OK;
}

/* Appends one episode's results: its accuracy row and its list entry. */
static gtl_status record(gtl_evaluator *ev, const gtl_episode *ep, const int64_t *pred)
{
    if (ev->n_ep + 1 > ev->cap_ep) {
        int64_t c = ev->cap_ep ? 2 * ev->cap_ep : 64;
        double *a = gtl__realloc(ev->acc, (size_t)(c * GTL__EVAL_COLS) * sizeof(double));
        if (a == NULL)
            return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "evaluator: out of memory");
        ev->acc = a;
        ev->cap_ep = c;
    }
    int64_t ns = ep->support->n, nq = ep->query->n;
    gtl_status st = grow_i64(&ev->list, &ev->cap_list, ev->n_list + 3 + ep->n_way + ns + nq);
    if (st != GTL_STATUS_OK)
        return st;
    gtl__eval_accuracy_row(ep->query, pred, ev->acc + ev->n_ep * GTL__EVAL_COLS, NULL);
    int64_t *l = ev->list + ev->n_list;
    l[0] = ep->n_way;
    l[1] = ns;
    l[2] = nq;
    memcpy(l + 3, ep->class_label, (size_t)ep->n_way * sizeof(int64_t));
    memcpy(l + 3 + ep->n_way, ep->src_support, (size_t)ns * sizeof(int64_t));
    memcpy(l + 3 + ep->n_way + ns, ep->src_query, (size_t)nq * sizeof(int64_t));
    ev->n_list += 3 + ep->n_way + ns + nq;
    ev->n_ep++;
    return GTL_STATUS_OK;
}

/* Class indices of a baseline -> labels (support labels are 0..N-1 in a
 * sampled episode, but a replayed list may leave a class without support). */
static void to_labels(const gtl_dataset *sup, int64_t *pred, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        pred[i] = sup->cls_label[pred[i]];
}

/* Runs the method on one episode; pred gets one label per query row. */
static gtl_status run_method(gtl_evaluator *ev, const gtl_episode *ep, int64_t *pred)
{
    const gtl_dataset *sup = ep->support, *qry = ep->query;
    gtl_status st = GTL_STATUS_OK;
    char msg[400];
    switch (ev->method) {
    case GTL_EVAL_NEAREST_CENTROID:
    case GTL_EVAL_CENTRED_CENTROID:
        st = gtl__eval_ncm(sup, qry, ev->method == GTL_EVAL_CENTRED_CENTROID, pred, NULL);
        if (st == GTL_STATUS_OK)
            to_labels(sup, pred, qry->n);
        return st;
    case GTL_EVAL_LINEAR_PROBE:
        st = gtl__eval_probe(sup, qry, ev->iv[GTL_EVAL_PROBE_ITERS], ev->fv[GTL_EVAL_PROBE_L2],
                             pred, NULL);
        if (st == GTL_STATUS_OK)
            to_labels(sup, pred, qry->n);
        return st;
    case GTL_EVAL_CALLBACK:
        for (int64_t i = 0; i < qry->n; i++)
            pred[i] = -1;
        gtl__clear_error();
        st = ev->fn(ev->fn_ud, sup, qry, pred);
        if (st != GTL_STATUS_OK) {
            snprintf(msg, sizeof msg, "%s", gtl__error_message());
            return gtl__error(st, "the callback returned %d (%s)%s%s", (int)st,
                              gtl_strerror(st), msg[0] ? ": " : "", msg);
        }
        return GTL_STATUS_OK;
    case GTL_EVAL_GTL:
        st = gtl__model_copy_state(ev->work, ev->snapshot, "GTL method");
        if (st == GTL_STATUS_OK)
            st = gtl_adapt(ev->work, sup, NULL, NULL);
        if (st == GTL_STATUS_OK)
            st = gtl_model_predict(ev->work, qry->x, qry->n, qry->dim, pred, NULL, 0);
        return st;
    }
    return gtl__error(GTL_STATUS_INTERNAL, "unknown method %d", (int)ev->method);
}

/* Predictions must be episode labels 0..N-1 (a host callback could write anything). */
static gtl_status check_pred(const gtl_episode *ep, const int64_t *pred)
{
    for (int64_t i = 0; i < ep->query->n; i++) {
        if (pred[i] == -1)
            return gtl__error(GTL_STATUS_INVALID_ARG,
                              "the prediction of query %lld was not written (-1)", (long long)i);
        if (pred[i] < 0 || pred[i] >= ep->n_way)
            return gtl__error(GTL_STATUS_INVALID_ARG,
                              "the prediction of query %lld is %lld, outside [0, %lld)",
                              (long long)i, (long long)pred[i], (long long)ep->n_way);
    }
    return GTL_STATUS_OK;
}

/* One episode: method, checks, record, progress. */
static gtl_status run_episode(gtl_evaluator *ev, const gtl_episode *ep, int64_t e, int64_t n_ep,
                              const char *fn)
{
    gtl_status st = grow_i64(&ev->pred, &ev->cap_pred, ep->query->n);
    if (st == GTL_STATUS_OK)
        st = run_method(ev, ep, ev->pred);
    if (st == GTL_STATUS_OK)
        st = check_pred(ep, ev->pred);
    if (st == GTL_STATUS_OK)
        st = record(ev, ep, ev->pred);
    if (st != GTL_STATUS_OK) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", gtl__error_message());
        return gtl__error(st, "%s: episode %lld: %s", fn, (long long)e, msg);
    }
    if (ev->progress != NULL &&
        ev->progress(ev->progress_ud, e + 1, n_ep, ev->acc[(ev->n_ep - 1) * GTL__EVAL_COLS]))
        return gtl__error(GTL_STATUS_CANCELLED, "%s: cancelled after %lld of %lld episodes", fn,
                          (long long)(e + 1), (long long)n_ep);
    return GTL_STATUS_OK;
}

/* Ends a run: results stay on success and on cancellation, else are dropped. */
static gtl_status finish(gtl_evaluator *ev, gtl_episode *ep, int32_t proto, gtl_status st)
{
    gtl_episode_destroy(ep);
    if (st == GTL_STATUS_OK || st == GTL_STATUS_CANCELLED)
        ev->protocol = proto;
    else
        clear_results(ev);
    return st;
}

gtl_status gtl__eval_run_episodic(gtl_evaluator *ev, const gtl_dataset *src, const char *fn)
{
    clear_results(ev);
    gtl_episode *ep = NULL;
    gtl_status st = gtl_episode_create(&ep);
    if (st != GTL_STATUS_OK)
        return st;
    int64_t n_ep = ev->iv[GTL_EVAL_EPISODES];
    char msg[400];
    for (int64_t e = 0; e < n_ep && st == GTL_STATUS_OK; e++) {
        st = gtl_episode_sample(ep, src, ev->iv[GTL_EVAL_N_WAY], ev->iv[GTL_EVAL_K_SHOT],
                                ev->iv[GTL_EVAL_Q_QUERY],
                                (uint32_t)ev->iv[GTL_EVAL_SUPPORT_MODALITIES],
                                (uint32_t)ev->iv[GTL_EVAL_QUERY_MODALITIES],
                                episode_seed((uint64_t)ev->iv[GTL_EVAL_SEED], e));
        if (st != GTL_STATUS_OK) {
            snprintf(msg, sizeof msg, "%s", gtl__error_message());
            st = gtl__error(st, "%s: episode %lld: %s", fn, (long long)e, msg);
            break;
        }
        st = run_episode(ev, ep, e, n_ep, fn);
    }
    return finish(ev, ep, GTL__PROTO_EPISODIC, st);
}

/* The all-way split of draw r: K of each support modality per class, every
 * other eligible sample of the class as a test sample. */
static gtl_status all_way_split(gtl_evaluator *ev, const gtl_dataset *src, int64_t r,
                                gtl_episode *ep, const char *fn)
{
    int64_t k = ev->iv[GTL_EVAL_K_SHOT];
    uint32_t smask = (uint32_t)ev->iv[GTL_EVAL_SUPPORT_MODALITIES];
    uint32_t qmask = (uint32_t)ev->iv[GTL_EVAL_QUERY_MODALITIES];
    int64_t n_mod = 0, max_cls = 1;
    for (int m = 0; m < 32; m++)
        n_mod += (smask >> m) & 1;
    for (int64_t c = 0; c < src->n_cls; c++)
        if (src->cls_start[c + 1] - src->cls_start[c] > max_cls)
            max_cls = src->cls_start[c + 1] - src->cls_start[c];
    int64_t n_sup_max = src->n_cls * n_mod * k;
    int64_t *sup = gtl__malloc((size_t)n_sup_max * sizeof(int64_t));
    int64_t *sup_cls = gtl__malloc((size_t)n_sup_max * sizeof(int64_t));
    int64_t *qry = gtl__malloc((size_t)src->n * sizeof(int64_t));
    int64_t *qry_cls = gtl__malloc((size_t)src->n * sizeof(int64_t));
    int64_t *members = gtl__malloc((size_t)max_cls * sizeof(int64_t));
    gtl_status st = GTL_STATUS_OK;
    if (sup == NULL || sup_cls == NULL || qry == NULL || qry_cls == NULL || members == NULL) {
        st = gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: out of memory", fn);
        goto out_free;
    }
    gtl__rng rng;
    gtl__rng_seed(&rng, episode_seed((uint64_t)ev->iv[GTL_EVAL_SEED], r));
    int64_t ns = 0, nq = 0;
    for (int64_t c = 0; c < src->n_cls && st == GTL_STATUS_OK; c++) {
        int64_t s0 = src->cls_start[c], cnt = src->cls_start[c + 1] - s0, ns0 = ns;
        memcpy(members, src->cls_idx + s0, (size_t)cnt * sizeof(int64_t));
        gtl__rng_shuffle_i64(&rng, members, cnt);
        for (int m = 0; m < 32 && st == GTL_STATUS_OK; m++) {
            if (!(smask & (1u << m)))
                continue;
            int64_t got = 0;
            for (int64_t i = 0; i < cnt && got < k; i++)
                if (src->mod[members[i]] == m) {
                    sup_cls[ns] = c;
                    sup[ns++] = members[i];
                    got++;
                }
            if (got < k)
                st = gtl__error(GTL_STATUS_INVALID_ARG,
                                "%s: class %lld has %lld sample(s) of modality %d; K_SHOT is %lld",
                                fn, (long long)src->cls_label[c], (long long)got, m,
                                (long long)k);
        }
        /* Test samples in source order: not on the support side, no shared pair id. */
        for (int64_t i = s0; i < s0 + cnt && st == GTL_STATUS_OK; i++) {
            int64_t idx = src->cls_idx[i];
            if (!(qmask & (1u << src->mod[idx])))
                continue;
            bool used = false;
            for (int64_t j = ns0; j < ns && !used; j++)
                used = sup[j] == idx ||
                       (src->pair[idx] != GTL_NO_PAIR && src->pair[sup[j]] == src->pair[idx]);
            if (!used) {
                qry_cls[nq] = c;
                qry[nq++] = idx;
            }
        }
    }
    if (st == GTL_STATUS_OK && nq == 0)
        st = gtl__error(GTL_STATUS_INVALID_ARG, "%s: no test sample is left after the support "
                        "draw", fn);
    if (st == GTL_STATUS_OK)
        st = gtl__episode_build(ep, src, src->n_cls, src->cls_label, sup, sup_cls, ns, qry,
                                qry_cls, nq);

out_free:
    gtl__free(sup);
    gtl__free(sup_cls);
    gtl__free(qry);
    gtl__free(qry_cls);
    gtl__free(members);
    return st;
}

gtl_status gtl__eval_run_all_way(gtl_evaluator *ev, const gtl_dataset *src, const char *fn)
{
    clear_results(ev);
    if (src->n_cls < 1)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: the source dataset is empty", fn);
    gtl_episode *ep = NULL;
    gtl_status st = gtl_episode_create(&ep);
    if (st != GTL_STATUS_OK)
        return st;
    int64_t n_rep = ev->iv[GTL_EVAL_ALL_WAY_REPEATS];
    for (int64_t r = 0; r < n_rep && st == GTL_STATUS_OK; r++) {
        st = all_way_split(ev, src, r, ep, fn);
        if (st == GTL_STATUS_OK)
            st = run_episode(ev, ep, r, n_rep, fn);
    }
    return finish(ev, ep, GTL__PROTO_ALL_WAY, st);
}

gtl_status gtl__eval_run_list(gtl_evaluator *ev, const gtl_dataset *src, const int64_t *list,
                              size_t n, const char *fn)
{
    clear_results(ev);
    /* Validate the framing first, so that a truncated list fails before any work. */
    int64_t n_ep = 0;
    for (size_t pos = 0; pos < n; n_ep++) {
        if (n - pos < 3)
            return gtl__error(GTL_STATUS_INVALID_ARG, "%s: the list is truncated in the header of "
                              "episode %lld", fn, (long long)n_ep);
        int64_t nw = list[pos], ns = list[pos + 1], nq = list[pos + 2];
        if (nw < 1 || nw > 65536 || ns < 1 || ns > src->n || nq < 1 || nq > src->n)
            return gtl__error(GTL_STATUS_INVALID_ARG,
                              "%s: episode %lld: counts %lld, %lld, %lld out of range (need "
                              "n_way in [1, 65536], n_support and n_query in [1, %lld])",
                              fn, (long long)n_ep, (long long)nw, (long long)ns, (long long)nq,
                              (long long)src->n);
        if ((uint64_t)(n - pos - 3) < (uint64_t)(nw + ns + nq))
            return gtl__error(GTL_STATUS_INVALID_ARG, "%s: the list is truncated in episode %lld",
                              fn, (long long)n_ep);
        pos += (size_t)(3 + nw + ns + nq);
    }
    if (n_ep == 0)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: the list is empty", fn);
    gtl_episode *ep = NULL;
    gtl_status st = gtl_episode_create(&ep);
    if (st != GTL_STATUS_OK)
        return st;
    size_t pos = 0;
    char msg[400];
    for (int64_t e = 0; e < n_ep && st == GTL_STATUS_OK; e++) {
        int64_t nw = list[pos], ns = list[pos + 1], nq = list[pos + 2];
        const int64_t *lab = list + pos + 3;
        st = gtl_episode_from_indices(ep, src, lab, nw, lab + nw, ns, lab + nw + ns, nq);
        pos += (size_t)(3 + nw + ns + nq);
        if (st != GTL_STATUS_OK) {
            snprintf(msg, sizeof msg, "%s", gtl__error_message());
            st = gtl__error(st, "%s: episode %lld: %s", fn, (long long)e, msg);
            break;
        }
        st = run_episode(ev, ep, e, n_ep, fn);
    }
    return finish(ev, ep, GTL__PROTO_LIST, st);
}
