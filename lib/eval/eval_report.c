/* Result reports: JSON and Markdown text built in a growable buffer. Numbers
 * are written independently of the C locale (a ',' decimal separator is
 * turned back into '.'); NaN becomes JSON null. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "eval/eval.h"
#include "gtl/version.h"

typedef struct sbuf {
    char *p;
    size_t n, cap;
    bool oom;
} sbuf;

static void sb_printf(sbuf *b, const char *fmt, ...) GTL__PRINTF(2, 3);

static void sb_printf(sbuf *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
    va_end(ap);
    if (len < 0) {
        b->oom = true;
        return;
    }
    if (b->p == NULL || b->n + (size_t)len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->n + (size_t)len + 1)
            cap *= 2;
        char *q = gtl__realloc(b->p, cap);
        if (q == NULL) {
            b->oom = true;
            return;
        }
        b->p = q;
        b->cap = cap;
        va_start(ap, fmt);
        vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
    }
    b->n += (size_t)len;
}

/* A number with %.<prec>g (JSON: null for NaN), locale-independent. */
static void sb_num(sbuf *b, double v, int prec, const char *nan_text)
{
    if (isnan(v)) {
        sb_printf(b, "%s", nan_text);
        return;
    }
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%.*g", prec, v);
    for (char *c = tmp; *c; c++)
        if (*c == ',')
            *c = '.';
    sb_printf(b, "%s", tmp);
}

/* Percent with two decimals, locale-independent. */
static void sb_pct(sbuf *b, double v)
{
    char tmp[64];
    snprintf(tmp, sizeof tmp, "%.2f", 100.0 * v);
    for (char *c = tmp; *c; c++)
        if (*c == ',')
            *c = '.';
    sb_printf(b, "%s", tmp);
}

static const char *modality_name(int m, char *buf, size_t cap)
{
    static const char *names[4] = {"rgb", "sketch", "infrared", "depth"};
    if (m < 4)
        return names[m];
    snprintf(buf, cap, "modality_%d", m);
    return buf;
}

static const char *protocol_name(int32_t p)
{
    return p == GTL__PROTO_EPISODIC ? "episodic" : p == GTL__PROTO_ALL_WAY ? "all-way"
                                                                          : "episode-list";
}

/* Modalities with at least one episode that had queries of them. */
static bool modality_present(const gtl_evaluator *ev, int m)
{
    for (int64_t e = 0; e < ev->n_ep; e++)
        if (!isnan(ev->acc[e * GTL__EVAL_COLS + 1 + m]))
            return true;
    return false;
}

static void json_list(sbuf *b, const int64_t *v, int64_t n)
{
    sb_printf(b, "[");
    for (int64_t i = 0; i < n; i++)
        sb_printf(b, i ? ", %lld" : "%lld", (long long)v[i]);
    sb_printf(b, "]");
}

static void json_report(const gtl_evaluator *ev, uint32_t flags, sbuf *b)
{
    char nb[32];
    sb_printf(b, "{\n  \"libgtl\": \"%s\",\n  \"method\": \"%s\",\n  \"protocol\": \"%s\",\n",
              GTL_VERSION_STRING, gtl__eval_method_name(ev->method),
              protocol_name(ev->protocol));
    sb_printf(b, "  \"settings\": {");
    bool first = true;
    for (int k = 0; k < GTL__EVAL_NKEYS; k++) {
        bool is_int;
        const char *name = gtl__eval_key_name(k, &is_int);
        if (name == NULL)
            continue;
        sb_printf(b, "%s\"%s\": ", first ? "" : ", ", name);
        if (is_int)
            sb_printf(b, "%lld", (long long)ev->iv[k]);
        else
            sb_num(b, ev->fv[k], 7, "null");
        first = false;
    }
    sb_printf(b, "},\n  \"n_episodes\": %lld,\n  \"accuracy\": {\n", (long long)ev->n_ep);
    for (int m = -1; m < GTL_EVAL_NUM_MODALITIES; m++) {
        if (m >= 0 && !modality_present(ev, m))
            continue;
        double mean, ci;
        int64_t n;
        gtl__eval_mean_ci(ev->acc + 1 + m, ev->n_ep, GTL__EVAL_COLS, &mean, &ci, &n);
        sb_printf(b, "%s    \"%s\": {\"mean\": ", m < 0 ? "" : ",\n",
                  m < 0 ? "total" : modality_name(m, nb, sizeof nb));
        sb_num(b, mean, 9, "null");
        sb_printf(b, ", \"ci95\": ");
        sb_num(b, ci, 9, "null");
        sb_printf(b, ", \"n\": %lld}", (long long)n);
    }
    sb_printf(b, "\n  }");
    if (flags & GTL_EVAL_REPORT_EPISODES) {
        sb_printf(b, ",\n  \"episodes\": [");
        const int64_t *l = ev->list;
        for (int64_t e = 0; e < ev->n_ep; e++) {
            int64_t nw = l[0], ns = l[1], nq = l[2];
            sb_printf(b, "%s\n    {\"classes\": ", e ? "," : "");
            json_list(b, l + 3, nw);
            sb_printf(b, ", \"support\": ");
            json_list(b, l + 3 + nw, ns);
            sb_printf(b, ", \"query\": ");
            json_list(b, l + 3 + nw + ns, nq);
            sb_printf(b, ", \"accuracy\": {\"total\": ");
            const double *row = ev->acc + e * GTL__EVAL_COLS;
            sb_num(b, row[0], 9, "null");
            for (int m = 0; m < GTL_EVAL_NUM_MODALITIES; m++) {
                if (isnan(row[1 + m]))
                    continue;
                sb_printf(b, ", \"%s\": ", modality_name(m, nb, sizeof nb));
                sb_num(b, row[1 + m], 9, "null");
            }
            sb_printf(b, "}}");
            l += 3 + nw + ns + nq;
        }
        sb_printf(b, "\n  ]");
    }
    sb_printf(b, "\n}\n");
}

static void md_report(const gtl_evaluator *ev, uint32_t flags, sbuf *b)
{
    char nb[32];
    if (!(flags & GTL_EVAL_REPORT_NO_HEADER)) {
        sb_printf(b, "| method | protocol | setting | episodes | total |");
        for (int m = 0; m < GTL_EVAL_NUM_MODALITIES; m++)
            if (modality_present(ev, m))
                sb_printf(b, " %s |", modality_name(m, nb, sizeof nb));
        sb_printf(b, "\n|---|---|---|---:|---:|");
        for (int m = 0; m < GTL_EVAL_NUM_MODALITIES; m++)
            if (modality_present(ev, m))
                sb_printf(b, "---:|");
        sb_printf(b, "\n");
    }
    sb_printf(b, "| %s | %s | ", gtl__eval_method_name(ev->method), protocol_name(ev->protocol));
    int64_t n_way = ev->n_list > 0 ? ev->list[0] : 0;
    if (ev->protocol == GTL__PROTO_EPISODIC)
        sb_printf(b, "%lld-way %lld-shot %lld-query", (long long)ev->iv[GTL_EVAL_N_WAY],
                  (long long)ev->iv[GTL_EVAL_K_SHOT], (long long)ev->iv[GTL_EVAL_Q_QUERY]);
    else if (ev->protocol == GTL__PROTO_ALL_WAY)
        sb_printf(b, "%lld-way %lld-shot", (long long)n_way, (long long)ev->iv[GTL_EVAL_K_SHOT]);
    else
        sb_printf(b, "saved episodes");
    if (ev->protocol != GTL__PROTO_LIST) {
        sb_printf(b, ", support");
        const char *sep = " ";
        for (int m = 0; m < GTL_EVAL_NUM_MODALITIES; m++)
            if (ev->iv[GTL_EVAL_SUPPORT_MODALITIES] & ((int64_t)1 << m)) {
                sb_printf(b, "%s%s", sep, modality_name(m, nb, sizeof nb));
                sep = "+";
            }
    }
    sb_printf(b, " | %lld |", (long long)ev->n_ep);
    for (int m = -1; m < GTL_EVAL_NUM_MODALITIES; m++) {
        if (m >= 0 && !modality_present(ev, m))
            continue;
        double mean, ci;
        int64_t n;
        gtl__eval_mean_ci(ev->acc + 1 + m, ev->n_ep, GTL__EVAL_COLS, &mean, &ci, &n);
        sb_printf(b, " ");
        if (isnan(mean)) {
            sb_printf(b, "n/a");
        } else {
            sb_pct(b, mean);
            if (!isnan(ci)) {
                sb_printf(b, " ± ");
                sb_pct(b, ci);
            }
        }
        sb_printf(b, " |");
    }
    sb_printf(b, "\n");
}

gtl_status gtl__eval_report(const gtl_evaluator *ev, gtl_eval_format format, uint32_t flags,
                            char **out, size_t *out_len)
{
    sbuf b = {0};
    if (format == GTL_EVAL_FORMAT_JSON)
        json_report(ev, flags, &b);
    else
        md_report(ev, flags, &b);
    if (b.oom || b.p == NULL) {
        gtl__free(b.p);
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "evaluator report: out of memory");
    }
    *out = b.p;
    *out_len = b.n;
    return GTL_STATUS_OK;
}
