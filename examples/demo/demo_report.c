/* demo_report: results as a terminal table, Markdown and JSON, and figures
 * drawn by gnuplot (Debian gnuplot-nox, pngcairo terminal) from data files
 * written here. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "demo_report.h"

void demo_setting_name(const demo_setting *s, char *dst, size_t cap)
{
    snprintf(dst, cap, "%s%s %d-shot", s->all_way ? "all-way " : "",
             demo_protocols[s->protocol].name, (int)s->shots);
}

static const demo_result *res(const demo_report *r, int64_t m, int64_t s)
{
    return &r->results[m * r->n_settings + s];
}

static void cell(const demo_result *x, char *dst, size_t cap)
{
    if (!x->valid || isnan(x->mean))
        snprintf(dst, cap, "-");
    else if (isnan(x->ci))
        snprintf(dst, cap, "%.1f", 100.0 * x->mean);
    else
        snprintf(dst, cap, "%.1f ± %.1f", 100.0 * x->mean, 100.0 * x->ci);
}

/* Settings are printed in two groups: episodic (5-way) and all-way. */
static void print_group(const demo_report *r, FILE *f, int all_way, int md)
{
    int64_t cols[32], n_cols = 0;
    for (int64_t s = 0; s < r->n_settings && n_cols < 32; s++)
        if (r->settings[s].all_way == all_way)
            cols[n_cols++] = s;
    if (n_cols == 0)
        return;
    int w0 = 34, w = 20;
    char buf[96];
    if (md) {
        fprintf(f, "\n| %s |", all_way ? "all-way (every novel class)" : "5-way episodes");
        for (int64_t c = 0; c < n_cols; c++) {
            demo_setting_name(&r->settings[cols[c]], buf, sizeof buf);
            fprintf(f, " %s |", all_way ? buf + 8 : buf);
        }
        fprintf(f, "\n|---|");
        for (int64_t c = 0; c < n_cols; c++)
            fprintf(f, "---|");
        fputc('\n', f);
    } else {
        fprintf(f, "\n%-*s", w0, all_way ? "all-way (every novel class)" : "5-way episodes");
        for (int64_t c = 0; c < n_cols; c++) {
            demo_setting_name(&r->settings[cols[c]], buf, sizeof buf);
            fprintf(f, " %*s", w, all_way ? buf + 8 : buf);
        }
        fputc('\n', f);
        for (int i = 0; i < w0 + (w + 1) * (int)n_cols; i++)
            fputc('-', f);
        fputc('\n', f);
    }
    for (int64_t m = 0; m < r->n_methods; m++) {
        int any = 0;
        for (int64_t c = 0; c < n_cols; c++)
            any |= res(r, m, cols[c])->valid;
        if (!any)
            continue;
        if (md)
            fprintf(f, "| %s |", r->method_names[m]);
        else
            fprintf(f, "%-*.*s", w0, w0 - 1, r->method_names[m]);
        for (int64_t c = 0; c < n_cols; c++) {
            cell(res(r, m, cols[c]), buf, sizeof buf);
            if (md)
                fprintf(f, " %s |", buf);
            else
                fprintf(f, " %*s", w + 1, buf); /* "±" is 2 bytes */
        }
        fputc('\n', f);
    }
}

void demo_report_print(const demo_report *r, FILE *f)
{
    fprintf(f, "\nAccuracy in %% (mean ± 95 %% CI over episodes; all-way: one draw)\n");
    print_group(r, f, 0, 0);
    print_group(r, f, 1, 0);
    fflush(f);
}

int demo_report_markdown(const demo_report *r, const char *path)
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "error: cannot write %s\n", path);
        return -1;
    }
    fprintf(f, "# gtl-demo results\n\n");
    if (r->facts_md)
        fputs(r->facts_md, f);
    fprintf(f, "\nAccuracy in %% (mean ± 95 %% CI over episodes; all-way: one draw).\n");
    print_group(r, f, 0, 1);
    print_group(r, f, 1, 1);
    int rc = fclose(f) == 0 ? 0 : -1;
    return rc;
}

static void json_num(ex_buf *b, double v)
{
    if (isnan(v) || isinf(v))
        ex_buf_printf(b, "null");
    else
        ex_buf_printf(b, "%.6f", v);
}

int demo_report_json(const demo_report *r, const char *path)
{
    ex_buf b = {0};
    ex_buf_printf(&b, "{\n");
    if (r->facts_json)
        ex_buf_printf(&b, "%s,\n", r->facts_json);
    ex_buf_printf(&b, "  \"results\": [\n");
    int first = 1;
    for (int64_t m = 0; m < r->n_methods; m++)
        for (int64_t s = 0; s < r->n_settings; s++) {
            const demo_result *x = res(r, m, s);
            if (!x->valid)
                continue;
            const demo_setting *st = &r->settings[s];
            ex_buf_printf(&b, "%s    {\"method\": ", first ? "" : ",\n");
            first = 0;
            ex_buf_json_str(&b, r->method_ids[m]);
            ex_buf_printf(&b, ", \"name\": ");
            ex_buf_json_str(&b, r->method_names[m]);
            ex_buf_printf(&b, ", \"protocol\": \"%s\", \"shots\": %d, \"all_way\": %s, \"mean\": ",
                          demo_protocols[st->protocol].id, (int)st->shots,
                          st->all_way ? "true" : "false");
            json_num(&b, x->mean);
            ex_buf_printf(&b, ", \"ci95\": ");
            json_num(&b, x->ci);
            ex_buf_printf(&b, ", \"rgb\": ");
            json_num(&b, x->mod_mean[0]);
            ex_buf_printf(&b, ", \"sketch\": ");
            json_num(&b, x->mod_mean[1]);
            ex_buf_printf(&b, ", \"episodes\": %lld, \"seconds\": %.2f}", (long long)x->n_episodes,
                          x->seconds);
        }
    ex_buf_printf(&b, "\n  ]\n}\n");
    int rc = ex_write_file(path, b.s, b.len);
    ex_buf_free(&b);
    return rc;
}

static int run_gnuplot(const char *script)
{
    char *cmd = ex_fmt("gnuplot '%s' 2>&1", script);
    FILE *p = popen(cmd, "r");
    free(cmd);
    if (!p)
        return -1;
    char line[512];
    while (fgets(line, sizeof line, p))
        fprintf(stderr, "gnuplot: %s", line);
    int rc = pclose(p);
    return rc == 0 ? 0 : -1;
}

int demo_plot_accuracy(const demo_report *r, const char *png_path)
{
    char *dat = ex_fmt("%s.dat", png_path), *gp = ex_fmt("%s.gp", png_path);
    FILE *f = fopen(dat, "w");
    if (!f) {
        free(dat);
        free(gp);
        return -1;
    }
    /* rows: settings (episodic only); columns: per method mean, ci */
    int64_t n_rows = 0;
    for (int64_t s = 0; s < r->n_settings; s++) {
        if (r->settings[s].all_way)
            continue;
        char name[96];
        demo_setting_name(&r->settings[s], name, sizeof name);
        fprintf(f, "\"%s\"", name);
        for (int64_t m = 0; m < r->n_methods; m++) {
            const demo_result *x = res(r, m, s);
            if (x->valid)
                fprintf(f, " %.3f %.3f", 100 * x->mean, isnan(x->ci) ? 0.0 : 100 * x->ci);
            else
                fprintf(f, " NaN NaN");
        }
        fputc('\n', f);
        n_rows++;
    }
    fclose(f);
    f = fopen(gp, "w");
    if (!f) {
        free(dat);
        free(gp);
        return -1;
    }
    fprintf(f, "set terminal pngcairo size 1400,700 font ',10'\nset output '%s'\n", png_path);
    fprintf(f, "set title 'Novel classes, 5-way episodes: accuracy (%%) with 95%% CI'\n");
    fprintf(f, "set style data histogram\nset style histogram errorbars gap 2 lw 1\n");
    fprintf(f, "set style fill solid 0.8 border -1\nset boxwidth 0.9\nset yrange [0:100]\n");
    fprintf(f, "set ylabel 'accuracy (%%)'\nset grid ytics\nset key outside right top\n");
    fprintf(f, "set xtics rotate by -20\n");
    fprintf(f, "plot ");
    for (int64_t m = 0; m < r->n_methods; m++)
        fprintf(f, "%s'%s' using %lld:%lld:xtic(1) title '%s'", m ? ", \\\n     " : "", dat,
                (long long)(2 + 2 * m), (long long)(3 + 2 * m), r->method_names[m]);
    fprintf(f, "\n");
    fclose(f);
    int rc = n_rows > 0 ? run_gnuplot(gp) : -1;
    free(dat);
    free(gp);
    return rc;
}

/* Top-2 principal components of x (rows, dims) by power iteration on the
 * covariance, deflated; writes rows x 2 projections into out. */
static void pca2(const float *x, int64_t rows, int64_t dims, double *out)
{
    double *mean = ex_calloc((size_t)dims, sizeof(double));
    double *cov = ex_calloc((size_t)(dims * dims), sizeof(double));
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < dims; j++)
            mean[j] += x[i * dims + j] / (double)rows;
    for (int64_t i = 0; i < rows; i++)
        for (int64_t j = 0; j < dims; j++) {
            double a = x[i * dims + j] - mean[j];
            for (int64_t k = j; k < dims; k++)
                cov[j * dims + k] += a * (x[i * dims + k] - mean[k]);
        }
    for (int64_t j = 0; j < dims; j++)
        for (int64_t k = 0; k < j; k++)
            cov[j * dims + k] = cov[k * dims + j];
    double *v = ex_malloc(sizeof(double) * (size_t)dims), *w = ex_malloc(sizeof(double) * (size_t)dims);
    double *pcs = ex_calloc((size_t)(2 * dims), sizeof(double));
    for (int c = 0; c < 2; c++) {
        for (int64_t j = 0; j < dims; j++)
            v[j] = 1.0 + 0.01 * (double)((j * 7 + c * 3) % 11);
        double lambda = 0;
        for (int it = 0; it < 300; it++) {
            for (int64_t j = 0; j < dims; j++) {
                double a = 0;
                for (int64_t k = 0; k < dims; k++)
                    a += cov[j * dims + k] * v[k];
                w[j] = a;
            }
            double n = 0;
            for (int64_t j = 0; j < dims; j++)
                n += w[j] * w[j];
            n = sqrt(n);
            if (n < 1e-30)
                break;
            lambda = n;
            for (int64_t j = 0; j < dims; j++)
                v[j] = w[j] / n;
        }
        for (int64_t j = 0; j < dims; j++) {
            pcs[c * dims + j] = v[j];
            for (int64_t k = 0; k < dims; k++)
                cov[j * dims + k] -= lambda * v[j] * v[k];
        }
    }
    for (int64_t i = 0; i < rows; i++)
        for (int c = 0; c < 2; c++) {
            double a = 0;
            for (int64_t j = 0; j < dims; j++)
                a += (x[i * dims + j] - mean[j]) * pcs[c * dims + j];
            out[i * 2 + c] = a;
        }
    free(mean);
    free(cov);
    free(v);
    free(w);
    free(pcs);
}

int demo_plot_latents(const float *zc, int64_t nc, const float *zm, int64_t nm,
                      const int32_t *mod, int64_t rows, const char *png_path)
{
    double *pc = ex_malloc(sizeof(double) * (size_t)(2 * rows));
    double *pm = ex_malloc(sizeof(double) * (size_t)(2 * rows));
    pca2(zc, rows, nc, pc);
    pca2(zm, rows, nm, pm);
    char *dat = ex_fmt("%s.dat", png_path), *gp = ex_fmt("%s.gp", png_path);
    FILE *f = fopen(dat, "w");
    if (!f) {
        free(pc);
        free(pm);
        free(dat);
        free(gp);
        return -1;
    }
    /* two blocks per modality: index 0 RGB, 1 sketch */
    for (int32_t k = 0; k < 2; k++) {
        for (int64_t i = 0; i < rows; i++)
            if (mod[i] == k)
                fprintf(f, "%.5g %.5g %.5g %.5g\n", pc[2 * i], pc[2 * i + 1], pm[2 * i],
                        pm[2 * i + 1]);
        fprintf(f, "\n\n");
    }
    fclose(f);
    f = fopen(gp, "w");
    if (f) {
        fprintf(f, "set terminal pngcairo size 1400,650 font ',10'\nset output '%s'\n", png_path);
        fprintf(f, "set multiplot layout 1,2 title 'GTL latents of the novel images (PCA)'\n");
        fprintf(f, "set key top right\nset xlabel 'PC 1'\nset ylabel 'PC 2'\n");
        fprintf(f, "set title 'latent concept z_c (should mix the modalities)'\n");
        fprintf(f, "plot '%s' index 0 using 1:2 with points pt 7 ps 0.4 lc rgb '#d62728' "
                   "title 'RGB', '' index 1 using 1:2 with points pt 7 ps 0.4 lc rgb '#1f77b4' "
                   "title 'sketch'\n", dat);
        fprintf(f, "set title 'disturbance z~_m (should separate them)'\n");
        fprintf(f, "plot '%s' index 0 using 3:4 with points pt 7 ps 0.4 lc rgb '#d62728' "
                   "title 'RGB', '' index 1 using 3:4 with points pt 7 ps 0.4 lc rgb '#1f77b4' "
                   "title 'sketch'\n", dat);
        fprintf(f, "unset multiplot\n");
        fclose(f);
    }
    int rc = f ? run_gnuplot(gp) : -1;
    free(pc);
    free(pm);
    free(dat);
    free(gp);
    return rc;
}
