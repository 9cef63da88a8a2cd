/* eval: baselines (nearest centroid, linear probe), metrics, the protocol
 * runners and the report writer behind include/gtl/eval.h.
 *
 * Shapes: S support rows, Q query rows, F feature size, C classes (the
 * distinct support labels in increasing order, i.e. the support's class
 * index). Baselines predict class indices 0..C-1; callers map them to labels
 * with support->cls_label. */
#ifndef GTL__EVAL_H
#define GTL__EVAL_H

#include <stdbool.h>
#include <stdint.h>

#include "data/data.h"
#include "gtl/eval.h"

/* One accuracy row: column 0 is the total, column 1 + m modality m. */
#define GTL__EVAL_COLS (1 + GTL_EVAL_NUM_MODALITIES)
#define GTL__EVAL_NKEYS 10

/* Nearest centroid: pred (Q) class indices, scores (Q, C) or NULL. */
gtl_status gtl__eval_ncm(const gtl_dataset *sup, const gtl_dataset *qry, bool centred,
                         int64_t *pred, float *scores);
/* Linear probe by L-BFGS: pred (Q) class indices, probs (Q, C) or NULL. */
gtl_status gtl__eval_probe(const gtl_dataset *sup, const gtl_dataset *qry, int64_t n_iters,
                           double l2, int64_t *pred, float *probs);

/* Accuracy row (GTL__EVAL_COLS) and per-modality counts (may be NULL) of
 * predicted labels against qry's labels. */
void gtl__eval_accuracy_row(const gtl_dataset *qry, const int64_t *pred, double *row,
                            int64_t *counts);
/* Mean / ci95 / n over n values with stride, skipping NaN. */
void gtl__eval_mean_ci(const double *v, int64_t n, int64_t stride, double *mean, double *ci,
                       int64_t *n_used);

/* The protocol a result came from. */
enum { GTL__PROTO_NONE = -1, GTL__PROTO_EPISODIC = 0, GTL__PROTO_ALL_WAY = 1,
       GTL__PROTO_LIST = 2 };

struct gtl_evaluator {
    gtl_eval_method method;
    int64_t iv[GTL__EVAL_NKEYS];
    float fv[GTL__EVAL_NKEYS];
    gtl_eval_fn fn;
    void *fn_ud;
    gtl_eval_progress_fn progress;
    void *progress_ud;
    gtl_model *snapshot;   /* GTL method: the pretrained model (a copy) */
    gtl_model *work;       /* reset to snapshot before every episode */
    int64_t *pred;         /* scratch: predictions of one episode */
    int64_t cap_pred;
    /* Results of the last run. */
    int32_t protocol;      /* GTL__PROTO_* */
    int64_t n_ep;
    double *acc;           /* (n_ep, GTL__EVAL_COLS) */
    int64_t cap_ep;
    int64_t *list;         /* the episode list (gtl_evaluator_episode_list format) */
    int64_t n_list, cap_list;
};

/* The runners (fn names the public entry point in messages). Results are
 * replaced; they are kept on success and on cancellation, dropped otherwise. */
gtl_status gtl__eval_run_episodic(gtl_evaluator *ev, const gtl_dataset *src, const char *fn);
gtl_status gtl__eval_run_all_way(gtl_evaluator *ev, const gtl_dataset *src, const char *fn);
gtl_status gtl__eval_run_list(gtl_evaluator *ev, const gtl_dataset *src, const int64_t *list,
                              size_t n, const char *fn);

/* Setting names and types (NULL name: unused key). */
const char *gtl__eval_key_name(int key, bool *is_int);
const char *gtl__eval_method_name(gtl_eval_method m);
/* The report text in a gtl__malloc'ed NUL-terminated buffer. */
gtl_status gtl__eval_report(const gtl_evaluator *ev, gtl_eval_format format, uint32_t flags,
                            char **out, size_t *out_len);

#endif /* GTL__EVAL_H */
