/* Public evaluation functions (include/gtl/eval.h): argument checks around
 * the baselines, metrics, runners and reports of lib/eval/. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api/api_clone.h"
#include "api/api_model.h"
#include "eval/eval.h"

typedef struct keydef {
    const char *name;
    bool is_int;
    double lo, hi, def;
} keydef;

static const keydef keys[GTL__EVAL_NKEYS] = {
    [GTL_EVAL_N_WAY] = {"n_way", true, 1, 65536, 5},
    [GTL_EVAL_K_SHOT] = {"k_shot", true, 1, 65536, 1},
    [GTL_EVAL_Q_QUERY] = {"q_query", true, 1, 65536, 15},
    [GTL_EVAL_EPISODES] = {"episodes", true, 1, 1e7, 600},
    /* hi = 2^63, the double nearest INT64_MAX: every int64 >= 0 is a valid seed. */
    [GTL_EVAL_SEED] = {"seed", true, 0, 9223372036854775807.0, 0},
    [GTL_EVAL_SUPPORT_MODALITIES] = {"support_modalities", true, 1, 4294967295.0, 3},
    [GTL_EVAL_QUERY_MODALITIES] = {"query_modalities", true, 1, 4294967295.0, 4294967295.0},
    [GTL_EVAL_ALL_WAY_REPEATS] = {"all_way_repeats", true, 1, 1e6, 1},
    [GTL_EVAL_PROBE_ITERS] = {"probe_iters", true, 1, 1e6, 100},
    [GTL_EVAL_PROBE_L2] = {"probe_l2", false, 0, 1e6, 0.01},
};

const char *gtl__eval_key_name(int key, bool *is_int)
{
    if (key < 0 || key >= GTL__EVAL_NKEYS || keys[key].name == NULL)
        return NULL;
    *is_int = keys[key].is_int;
    return keys[key].name;
}

const char *gtl__eval_method_name(gtl_eval_method m)
{
    static const char *names[] = {"nearest_centroid", "centred_centroid", "linear_probe",
                                  "callback", "gtl"};
    return (int)m >= 0 && (int)m < 5 ? names[m] : "unknown";
}

/* ---- baselines and metrics ---- */

static gtl_status check_pair(const gtl_dataset *sup, const gtl_dataset *qry, const int64_t *pred,
                             size_t pred_cap, const float *out, size_t out_cap, const char *fn)
{
    if (sup == NULL || qry == NULL || pred == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: support, query and out_pred must not be "
                          "NULL", fn);
    if (sup->n < 1 || qry->n < 1)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: the %s set is empty", fn,
                          sup->n < 1 ? "support" : "query");
    if (sup->dim != qry->dim)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: feature sizes differ (support %lld, "
                          "query %lld)", fn, (long long)sup->dim, (long long)qry->dim);
    if (pred_cap < (size_t)qry->n)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: pred_capacity %zu < %lld query samples",
                          fn, pred_cap, (long long)qry->n);
    size_t need = (size_t)(qry->n * sup->n_cls);
    if (out != NULL && out_cap < need)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: score capacity %zu < %zu (queries x "
                          "classes)", fn, out_cap, need);
    return GTL_STATUS_OK;
}

gtl_status gtl_eval_nearest_centroid(const gtl_dataset *support, const gtl_dataset *query,
                                     int32_t centred, int64_t *out_pred, size_t pred_capacity,
                                     float *out_scores, size_t scores_capacity)
{
    const char *fn = "gtl_eval_nearest_centroid";
    gtl__clear_error();
    gtl_status st = check_pair(support, query, out_pred, pred_capacity, out_scores,
                               scores_capacity, fn);
    if (st != GTL_STATUS_OK)
        return st;
    if (centred != 0 && centred != 1)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: centred must be 0 or 1 (got %d)", fn,
                          (int)centred);
    st = gtl__eval_ncm(support, query, centred == 1, out_pred, out_scores);
    if (st != GTL_STATUS_OK)
        return st;
    for (int64_t i = 0; i < query->n; i++)
        out_pred[i] = support->cls_label[out_pred[i]];
    return GTL_STATUS_OK;
}

gtl_status gtl_eval_linear_probe(const gtl_dataset *support, const gtl_dataset *query,
                                 int64_t n_iters, float l2, int64_t *out_pred,
                                 size_t pred_capacity, float *out_probs, size_t probs_capacity)
{
    const char *fn = "gtl_eval_linear_probe";
    gtl__clear_error();
    gtl_status st = check_pair(support, query, out_pred, pred_capacity, out_probs,
                               probs_capacity, fn);
    if (st != GTL_STATUS_OK)
        return st;
    if (n_iters < 1 || n_iters > 1000000)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: n_iters must be in [1, 10^6] (got %lld)",
                          fn, (long long)n_iters);
    if (!(l2 >= 0 && l2 <= 1e6f))
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: l2 must be in [0, 10^6] (got %g)", fn,
                          (double)l2);
    st = gtl__eval_probe(support, query, n_iters, l2, out_pred, out_probs);
    if (st != GTL_STATUS_OK)
        return st;
    for (int64_t i = 0; i < query->n; i++)
        out_pred[i] = support->cls_label[out_pred[i]];
    return GTL_STATUS_OK;
}

gtl_status gtl_eval_accuracy(const gtl_dataset *query, const int64_t *pred, int64_t n_pred,
                             double *out_accuracy, double *out_modality_accuracy,
                             int64_t *out_modality_count, size_t modality_capacity)
{
    const char *fn = "gtl_eval_accuracy";
    gtl__clear_error();
    if (out_accuracy != NULL)
        *out_accuracy = 0;
    if (query == NULL || pred == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: query and pred must not be NULL", fn);
    if (query->n < 1 || n_pred != query->n)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: n_pred %lld must equal the query size "
                          "%lld (>= 1)", fn, (long long)n_pred, (long long)query->n);
    if ((out_modality_accuracy != NULL || out_modality_count != NULL) &&
        modality_capacity < GTL_EVAL_NUM_MODALITIES)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: modality_capacity %zu < %d", fn,
                          modality_capacity, GTL_EVAL_NUM_MODALITIES);
    double row[GTL__EVAL_COLS];
    int64_t cnt[GTL_EVAL_NUM_MODALITIES];
    gtl__eval_accuracy_row(query, pred, row, cnt);
    if (out_accuracy != NULL)
        *out_accuracy = row[0];
    if (out_modality_accuracy != NULL)
        memcpy(out_modality_accuracy, row + 1, GTL_EVAL_NUM_MODALITIES * sizeof(double));
    if (out_modality_count != NULL)
        memcpy(out_modality_count, cnt, sizeof cnt);
    return GTL_STATUS_OK;
}

gtl_status gtl_eval_mean_ci(const double *values, int64_t n, double *out_mean, double *out_ci95,
                            int64_t *out_n_used)
{
    const char *fn = "gtl_eval_mean_ci";
    gtl__clear_error();
    if (out_mean != NULL)
        *out_mean = 0;
    if (out_ci95 != NULL)
        *out_ci95 = 0;
    if (out_n_used != NULL)
        *out_n_used = 0;
    if (values == NULL || n < 1)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: need values and n >= 1", fn);
    for (int64_t i = 0; i < n; i++)
        if (isinf(values[i]))
            return gtl__error(GTL_STATUS_INVALID_ARG, "%s: value %lld is infinite", fn,
                              (long long)i);
    double mean, ci;
    int64_t used;
    gtl__eval_mean_ci(values, n, 1, &mean, &ci, &used);
    if (out_mean != NULL)
        *out_mean = mean;
    if (out_ci95 != NULL)
        *out_ci95 = ci;
    if (out_n_used != NULL)
        *out_n_used = used;
    return GTL_STATUS_OK;
}

gtl_status gtl_eval_confusion(const gtl_dataset *query, const int64_t *pred, int64_t n_pred,
                              int64_t n_classes, int64_t *out_matrix, size_t capacity)
{
    const char *fn = "gtl_eval_confusion";
    gtl__clear_error();
    if (query == NULL || pred == NULL || out_matrix == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: NULL argument", fn);
    if (n_pred != query->n)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: n_pred %lld != query size %lld", fn,
                          (long long)n_pred, (long long)query->n);
    if (n_classes < 1 || n_classes > 65536)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: n_classes must be in [1, 65536]", fn);
    if (capacity < (size_t)(n_classes * n_classes))
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: capacity %zu < %lld", fn, capacity,
                          (long long)(n_classes * n_classes));
    for (int64_t i = 0; i < query->n; i++)
        if (query->y[i] >= n_classes || pred[i] < 0 || pred[i] >= n_classes)
            return gtl__error(GTL_STATUS_INVALID_ARG, "%s: sample %lld: label %lld or prediction "
                              "%lld is outside [0, %lld)", fn, (long long)i,
                              (long long)query->y[i], (long long)pred[i], (long long)n_classes);
    memset(out_matrix, 0, (size_t)(n_classes * n_classes) * sizeof(int64_t));
    for (int64_t i = 0; i < query->n; i++)
        out_matrix[query->y[i] * n_classes + pred[i]]++;
    return GTL_STATUS_OK;
}

/* ---- evaluator ---- */

gtl_status gtl_evaluator_create(gtl_eval_method method, gtl_evaluator **out_evaluator)
{
    const char *fn = "gtl_evaluator_create";
    gtl__clear_error();
    if (out_evaluator == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: out_evaluator is NULL", fn);
    *out_evaluator = NULL;
    if ((int)method < GTL_EVAL_NEAREST_CENTROID || (int)method > GTL_EVAL_GTL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: unknown method %d", fn, (int)method);
    gtl_evaluator *ev = gtl__calloc(1, sizeof *ev);
    if (ev == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: out of memory", fn);
    ev->method = method;
    for (int k = 0; k < GTL__EVAL_NKEYS; k++) {
        if (keys[k].is_int)
            ev->iv[k] = (int64_t)keys[k].def;
        else
            ev->fv[k] = (float)keys[k].def;
    }
    ev->protocol = GTL__PROTO_NONE;
    *out_evaluator = ev;
    return GTL_STATUS_OK;
}

void gtl_evaluator_destroy(gtl_evaluator *evaluator)
{
    if (evaluator == NULL)
        return;
    gtl_model_destroy(evaluator->snapshot);
    gtl_model_destroy(evaluator->work);
    gtl__free(evaluator->pred);
    gtl__free(evaluator->acc);
    gtl__free(evaluator->list);
    gtl__free(evaluator);
}

static gtl_status check_key(const gtl_evaluator *ev, gtl_eval_param key, bool want_int,
                            const char *fn)
{
    if (ev == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: evaluator is NULL", fn);
    if ((int)key < 0 || (int)key >= GTL__EVAL_NKEYS || keys[key].name == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: unknown key %d", fn, (int)key);
    if (keys[key].is_int != want_int)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: %s is %s; use gtl_evaluator_%s_%s", fn,
                          keys[key].name, want_int ? "a float" : "an integer",
                          fn[strlen(fn) - 7] == 's' ? "set" : "get", want_int ? "f32" : "i64");
    return GTL_STATUS_OK;
}

gtl_status gtl_evaluator_set_i64(gtl_evaluator *evaluator, gtl_eval_param key, int64_t value)
{
    const char *fn = "gtl_evaluator_set_i64";
    gtl__clear_error();
    gtl_status st = check_key(evaluator, key, true, fn);
    if (st != GTL_STATUS_OK)
        return st;
    if (!((double)value >= keys[key].lo && (double)value <= keys[key].hi))
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: %s = %lld is outside [%.0f, %.0f]", fn,
                          keys[key].name, (long long)value, keys[key].lo, keys[key].hi);
    evaluator->iv[key] = value;
    return GTL_STATUS_OK;
}

gtl_status gtl_evaluator_get_i64(const gtl_evaluator *evaluator, gtl_eval_param key,
                                 int64_t *out_value)
{
    const char *fn = "gtl_evaluator_get_i64";
    gtl__clear_error();
    if (out_value != NULL)
        *out_value = 0;
    if (out_value == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: out_value is NULL", fn);
    gtl_status st = check_key(evaluator, key, true, fn);
    if (st == GTL_STATUS_OK)
        *out_value = evaluator->iv[key];
    return st;
}

gtl_status gtl_evaluator_set_f32(gtl_evaluator *evaluator, gtl_eval_param key, float value)
{
    const char *fn = "gtl_evaluator_set_f32";
    gtl__clear_error();
    gtl_status st = check_key(evaluator, key, false, fn);
    if (st != GTL_STATUS_OK)
        return st;
    if (!isfinite(value) || value < keys[key].lo || value > keys[key].hi)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: %s = %g is outside [%g, %g]", fn,
                          keys[key].name, (double)value, keys[key].lo, keys[key].hi);
    evaluator->fv[key] = value;
    return GTL_STATUS_OK;
}

gtl_status gtl_evaluator_get_f32(const gtl_evaluator *evaluator, gtl_eval_param key,
                                 float *out_value)
{
    const char *fn = "gtl_evaluator_get_f32";
    gtl__clear_error();
    if (out_value != NULL)
        *out_value = 0;
    if (out_value == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: out_value is NULL", fn);
    gtl_status st = check_key(evaluator, key, false, fn);
    if (st == GTL_STATUS_OK)
        *out_value = evaluator->fv[key];
    return st;
}

gtl_status gtl_evaluator_set_callback(gtl_evaluator *evaluator, gtl_eval_fn fn_,
                                      void *user_data)
{
    const char *fn = "gtl_evaluator_set_callback";
    gtl__clear_error();
    if (evaluator == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: evaluator is NULL", fn);
    if (evaluator->method != GTL_EVAL_CALLBACK)
        return gtl__error(GTL_STATUS_BAD_STATE, "%s: the evaluator's method is %s, not callback",
                          fn, gtl__eval_method_name(evaluator->method));
    evaluator->fn = fn_;
    evaluator->fn_ud = user_data;
    return GTL_STATUS_OK;
}

gtl_status gtl_evaluator_set_model(gtl_evaluator *evaluator, const gtl_model *model)
{
    const char *fn = "gtl_evaluator_set_model";
    gtl__clear_error();
    if (evaluator == NULL || model == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: evaluator and model must not be NULL", fn);
    if (evaluator->method != GTL_EVAL_GTL)
        return gtl__error(GTL_STATUS_BAD_STATE, "%s: the evaluator's method is %s, not gtl", fn,
                          gtl__eval_method_name(evaluator->method));
    /* Two copies: the snapshot every episode starts from, and the working
     * model that adapts (kept between episodes for its warm primitive cache). */
    gtl_model *snap = NULL, *work = NULL;
    gtl_status st = gtl_model_clone(model, &snap);
    if (st == GTL_STATUS_OK)
        st = gtl_model_clone(model, &work);
    if (st != GTL_STATUS_OK) {
        char msg[400];
        snprintf(msg, sizeof msg, "%s", gtl__error_message());
        gtl_model_destroy(snap);
        return gtl__error(st, "%s: %s", fn, msg);
    }
    gtl_model_destroy(evaluator->snapshot);
    gtl_model_destroy(evaluator->work);
    evaluator->snapshot = snap;
    evaluator->work = work;
    return GTL_STATUS_OK;
}

gtl_status gtl_evaluator_set_progress(gtl_evaluator *evaluator, gtl_eval_progress_fn fn_,
                                      void *user_data)
{
    gtl__clear_error();
    if (evaluator == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_evaluator_set_progress: evaluator is NULL");
    evaluator->progress = fn_;
    evaluator->progress_ud = user_data;
    return GTL_STATUS_OK;
}

/* The end of a successful run: a host callback may have left a message from a
 * failed call of its own, but a successful public call clears the message. */
static gtl_status run_done(gtl_status st)
{
    if (st == GTL_STATUS_OK)
        gtl__clear_error();
    return st;
}

/* Shared checks of the runners. */
static gtl_status check_run(gtl_evaluator *ev, const gtl_dataset *src, const char *fn)
{
    if (ev == NULL || src == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: evaluator and source must not be NULL",
                          fn);
    if (ev->method == GTL_EVAL_CALLBACK && ev->fn == NULL)
        return gtl__error(GTL_STATUS_BAD_STATE, "%s: no callback set "
                          "(gtl_evaluator_set_callback)", fn);
    if (ev->method == GTL_EVAL_GTL && ev->snapshot == NULL)
        return gtl__error(GTL_STATUS_BAD_STATE, "%s: no model set (gtl_evaluator_set_model)",
                          fn);
    if (ev->method == GTL_EVAL_GTL && ev->snapshot->iv[GTL_MODEL_FEATURE_DIM] != src->dim)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: the source's feature size %lld differs "
                          "from the model's %lld", fn, (long long)src->dim,
                          (long long)ev->snapshot->iv[GTL_MODEL_FEATURE_DIM]);
    return GTL_STATUS_OK;
}

gtl_status gtl_evaluator_run_episodic(gtl_evaluator *evaluator, const gtl_dataset *source)
{
    const char *fn = "gtl_evaluator_run_episodic";
    gtl__clear_error();
    gtl_status st = check_run(evaluator, source, fn);
    if (st != GTL_STATUS_OK)
        return st;
    return run_done(gtl__eval_run_episodic(evaluator, source, fn));
}

gtl_status gtl_evaluator_run_all_way(gtl_evaluator *evaluator, const gtl_dataset *source)
{
    const char *fn = "gtl_evaluator_run_all_way";
    gtl__clear_error();
    gtl_status st = check_run(evaluator, source, fn);
    if (st != GTL_STATUS_OK)
        return st;
    return run_done(gtl__eval_run_all_way(evaluator, source, fn));
}

gtl_status gtl_evaluator_run_episode_list(gtl_evaluator *evaluator, const gtl_dataset *source,
                                          const int64_t *list, size_t n)
{
    const char *fn = "gtl_evaluator_run_episode_list";
    gtl__clear_error();
    gtl_status st = check_run(evaluator, source, fn);
    if (st != GTL_STATUS_OK)
        return st;
    if (list == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: list is NULL", fn);
    return run_done(gtl__eval_run_list(evaluator, source, list, n, fn));
}

static gtl_status check_results(const gtl_evaluator *ev, int32_t modality, const char *fn)
{
    if (ev == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: evaluator is NULL", fn);
    if (modality < GTL_EVAL_TOTAL || modality >= GTL_EVAL_NUM_MODALITIES)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: modality %d is not -1 or 0..31", fn,
                          (int)modality);
    if (ev->protocol == GTL__PROTO_NONE || ev->n_ep == 0)
        return gtl__error(GTL_STATUS_BAD_STATE, "%s: no results (run the evaluator first)", fn);
    return GTL_STATUS_OK;
}

gtl_status gtl_evaluator_result(const gtl_evaluator *evaluator, int32_t modality,
                                double *out_mean, double *out_ci95, int64_t *out_n)
{
    gtl__clear_error();
    if (out_mean != NULL)
        *out_mean = 0;
    if (out_ci95 != NULL)
        *out_ci95 = 0;
    if (out_n != NULL)
        *out_n = 0;
    gtl_status st = check_results(evaluator, modality, "gtl_evaluator_result");
    if (st != GTL_STATUS_OK)
        return st;
    double mean, ci;
    int64_t n;
    gtl__eval_mean_ci(evaluator->acc + 1 + modality, evaluator->n_ep, GTL__EVAL_COLS, &mean, &ci,
                      &n);
    if (out_mean != NULL)
        *out_mean = mean;
    if (out_ci95 != NULL)
        *out_ci95 = ci;
    if (out_n != NULL)
        *out_n = n;
    return GTL_STATUS_OK;
}

gtl_status gtl_evaluator_accuracies(const gtl_evaluator *evaluator, int32_t modality,
                                    double *dst, size_t capacity, int64_t *out_n)
{
    const char *fn = "gtl_evaluator_accuracies";
    gtl__clear_error();
    if (out_n != NULL)
        *out_n = 0;
    if (out_n == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: out_n is NULL", fn);
    gtl_status st = check_results(evaluator, modality, fn);
    if (st != GTL_STATUS_OK)
        return st;
    if (dst != NULL && capacity < (size_t)evaluator->n_ep)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: capacity %zu < %lld episodes", fn,
                          capacity, (long long)evaluator->n_ep);
    if (dst != NULL)
        for (int64_t e = 0; e < evaluator->n_ep; e++)
            dst[e] = evaluator->acc[e * GTL__EVAL_COLS + 1 + modality];
    *out_n = evaluator->n_ep;
    return GTL_STATUS_OK;
}

gtl_status gtl_evaluator_episode_list(const gtl_evaluator *evaluator, int64_t *dst,
                                      size_t capacity, size_t *out_n)
{
    const char *fn = "gtl_evaluator_episode_list";
    gtl__clear_error();
    if (out_n != NULL)
        *out_n = 0;
    if (out_n == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: out_n is NULL", fn);
    gtl_status st = check_results(evaluator, GTL_EVAL_TOTAL, fn);
    if (st != GTL_STATUS_OK)
        return st;
    if (dst != NULL && capacity < (size_t)evaluator->n_list)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: capacity %zu < %lld", fn, capacity,
                          (long long)evaluator->n_list);
    if (dst != NULL)
        memcpy(dst, evaluator->list, (size_t)evaluator->n_list * sizeof(int64_t));
    *out_n = (size_t)evaluator->n_list;
    return GTL_STATUS_OK;
}

static gtl_status check_report(const gtl_evaluator *ev, gtl_eval_format format, uint32_t flags,
                               const char *fn)
{
    if (ev == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: evaluator is NULL", fn);
    if ((int)format != GTL_EVAL_FORMAT_JSON && (int)format != GTL_EVAL_FORMAT_MARKDOWN)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: unknown format %d", fn, (int)format);
    if (flags & ~(GTL_EVAL_REPORT_EPISODES | GTL_EVAL_REPORT_NO_HEADER))
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: unknown flags 0x%x", fn, (unsigned)flags);
    return check_results(ev, GTL_EVAL_TOTAL, fn);
}

gtl_status gtl_evaluator_report(const gtl_evaluator *evaluator, gtl_eval_format format,
                                uint32_t flags, char *dst, size_t capacity, size_t *out_len)
{
    const char *fn = "gtl_evaluator_report";
    gtl__clear_error();
    if (out_len != NULL)
        *out_len = 0;
    if (out_len == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: out_len is NULL", fn);
    gtl_status st = check_report(evaluator, format, flags, fn);
    if (st != GTL_STATUS_OK)
        return st;
    char *text = NULL;
    size_t len = 0;
    st = gtl__eval_report(evaluator, format, flags, &text, &len);
    if (st != GTL_STATUS_OK)
        return st;
    *out_len = len;
    if (dst != NULL && capacity < len + 1)
        st = gtl__error(GTL_STATUS_INVALID_ARG, "%s: capacity %zu < %zu (text and NUL)", fn,
                        capacity, len + 1);
    else if (dst != NULL)
        memcpy(dst, text, len + 1);
    gtl__free(text);
    return st;
}

gtl_status gtl_evaluator_write_file(const gtl_evaluator *evaluator, gtl_eval_format format,
                                    uint32_t flags, const char *path)
{
    const char *fn = "gtl_evaluator_write_file";
    gtl__clear_error();
    if (path == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: path is NULL", fn);
    gtl_status st = check_report(evaluator, format, flags, fn);
    if (st != GTL_STATUS_OK)
        return st;
    char *text = NULL;
    size_t len = 0;
    st = gtl__eval_report(evaluator, format, flags, &text, &len);
    if (st != GTL_STATUS_OK)
        return st;
    FILE *f = fopen(path, "wb");
    if (f == NULL) {
        st = gtl__error(GTL_STATUS_IO, "%s: cannot open %s: %s", fn, path, strerror(errno));
        goto out_free;
    }
    size_t w = fwrite(text, 1, len, f);
    int werr = errno;
    if (fclose(f) != 0 || w != len)
        st = gtl__error(GTL_STATUS_IO, "%s: cannot write %s: %s", fn, path,
                        strerror(w != len ? werr : errno));

out_free:
    gtl__free(text);
    return st;
}
