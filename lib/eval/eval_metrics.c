/* Metrics: accuracy overall and per query modality, mean and 95% confidence
 * interval over episodes (1.96 * std / sqrt(n), std with n - 1). */
#include <math.h>

#include "eval/eval.h"

void gtl__eval_accuracy_row(const gtl_dataset *qry, const int64_t *pred, double *row,
                            int64_t *counts)
{
    int64_t hit[GTL__EVAL_COLS] = {0}, cnt[GTL__EVAL_COLS] = {0};
    for (int64_t i = 0; i < qry->n; i++) {
        int64_t ok = pred[i] == qry->y[i];
        int32_t m = qry->mod[i];
        hit[0] += ok;
        cnt[0]++;
        hit[1 + m] += ok;
        cnt[1 + m]++;
    }
    for (int k = 0; k < GTL__EVAL_COLS; k++) {
        row[k] = cnt[k] > 0 ? (double)hit[k] / (double)cnt[k] : NAN;
        if (counts != NULL && k > 0)
            counts[k - 1] = cnt[k];
    }
}

void gtl__eval_mean_ci(const double *v, int64_t n, int64_t stride, double *mean, double *ci,
                       int64_t *n_used)
{
    double s = 0;
    int64_t k = 0;
    for (int64_t i = 0; i < n; i++)
        if (!isnan(v[i * stride])) {
            s += v[i * stride];
            k++;
        }
    *n_used = k;
    *mean = k > 0 ? s / (double)k : NAN;
    *ci = NAN;
    if (k < 2)
        return;
    double ss = 0;
    for (int64_t i = 0; i < n; i++)
        if (!isnan(v[i * stride])) {
            double d = v[i * stride] - *mean;
            ss += d * d;
        }
    *ci = 1.96 * sqrt(ss / (double)(k - 1)) / sqrt((double)k);
}
