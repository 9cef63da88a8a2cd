/* demo_report: the results table (terminal, Markdown), JSON, gnuplot figures. */
#ifndef GTL_DEMO_REPORT_H
#define GTL_DEMO_REPORT_H

#include "demo_eval.h"

/* Everything a report needs: methods x settings results plus run facts. */
typedef struct demo_report {
    int64_t n_methods;
    const char **method_ids;
    const char **method_names;
    int64_t n_settings;
    const demo_setting *settings;
    const demo_result *results;   /* (n_methods, n_settings), row-major */
    const char *facts_json;       /* extra JSON members (no braces), may be NULL */
    const char *facts_md;         /* Markdown lines before the tables, may be NULL */
} demo_report;

/* Name of a setting's column, e.g. "CFSL 1-shot" or "all-way RGB->sketch 5-shot". */
void demo_setting_name(const demo_setting *s, char *dst, size_t cap);

/* Prints the tables (mean ± CI in %) to f. */
void demo_report_print(const demo_report *r, FILE *f);
/* Writes JSON / Markdown files; 0 or -1. */
int demo_report_json(const demo_report *r, const char *path);
int demo_report_markdown(const demo_report *r, const char *path);

/* Bar chart of the episodic results (one group per setting, one bar per
 * method, 95 % CI as error bars) with gnuplot. 0, or -1 when gnuplot is
 * missing or fails (the data and script stay next to the PNG). */
int demo_plot_accuracy(const demo_report *r, const char *png_path);

/* 2-D PCA projections of z_c and z~_m (rows x dims each) coloured by
 * modality (mod[i]: 0 RGB, 1 sketch), side by side in one PNG. 0 or -1. */
int demo_plot_latents(const float *zc, int64_t nc, const float *zm, int64_t nm,
                      const int32_t *mod, int64_t rows, const char *png_path);

#endif /* GTL_DEMO_REPORT_H */
