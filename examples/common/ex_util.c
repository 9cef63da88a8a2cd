/* ex_util: host-side helpers of the example programs; see ex_util.h. */
#include "ex_util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void ex_die_status(const char *file, int line, const char *call, gtl_status st)
{
    fprintf(stderr, "\nfatal: %s:%d: %s: %s: %s\n", file, line, call, gtl_strerror(st),
            gtl_last_error());
    exit(1);
}

void ex_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("\nfatal: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

void *ex_malloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        ex_die("out of memory (%zu bytes)", n);
    return p;
}

void *ex_calloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        ex_die("out of memory (%zu x %zu bytes)", n, size);
    return p;
}

void *ex_realloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        ex_die("out of memory (%zu bytes)", n);
    return q;
}

char *ex_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = ex_malloc(n);
    memcpy(d, s, n);
    return d;
}

char *ex_fmt(const char *fmt, ...)
{
    va_list ap, aq;
    va_start(ap, fmt);
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = ex_malloc((size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, aq);
    va_end(aq);
    return s;
}

double ex_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- progress bar ---------------------------------------------------------- */

static void fmt_time(char *dst, size_t cap, double s)
{
    if (s < 0 || s > 1e7)
        snprintf(dst, cap, "--:--");
    else if (s >= 3600)
        snprintf(dst, cap, "%d:%02d:%02d", (int)(s / 3600), (int)(s / 60) % 60, (int)s % 60);
    else
        snprintf(dst, cap, "%02d:%02d", (int)(s / 60), (int)s % 60);
}

static void progress_draw(ex_progress *p, int final)
{
    double t = ex_now() - p->t_start;
    double frac = p->total > 0 ? (double)p->done / (double)p->total : 1.0;
    if (frac > 1.0)
        frac = 1.0;
    char el[16], eta[16];
    fmt_time(el, sizeof el, t);
    fmt_time(eta, sizeof eta, frac > 0 ? t / frac - t : -1);
    if (p->tty) {
        char bar[31];
        int fill = (int)(frac * 30.0 + 0.5);
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        fprintf(stderr, "\r%-22s [%s] %3d%% %lld/%lld %s<%s %s\033[K", p->label, bar,
                (int)(frac * 100.0), (long long)p->done, (long long)p->total, el,
                final ? "done" : eta, p->extra);
        if (final)
            fputc('\n', stderr);
    } else {
        fprintf(stderr, "%-22s %3d%% %lld/%lld %s%s%s %s\n", p->label, (int)(frac * 100.0),
                (long long)p->done, (long long)p->total, el, final ? "" : " eta ",
                final ? "" : eta, p->extra);
    }
    fflush(stderr);
}

void ex_progress_start(ex_progress *p, const char *label, int64_t total)
{
    memset(p, 0, sizeof *p);
    snprintf(p->label, sizeof p->label, "%s", label);
    p->total = total;
    p->t_start = ex_now();
    p->tty = isatty(fileno(stderr));
    p->last_decile = 0;
}

void ex_progress_update(ex_progress *p, int64_t done, const char *extra)
{
    p->done = done;
    if (extra)
        snprintf(p->extra, sizeof p->extra, "%s", extra);
    double t = ex_now();
    if (p->tty) {
        if (t - p->t_last >= 0.1 || done == p->total) {
            p->t_last = t;
            progress_draw(p, 0);
        }
    } else if (p->total > 0) {
        int decile = (int)(10 * done / p->total);
        if (decile > p->last_decile && done < p->total) {
            p->last_decile = decile;
            progress_draw(p, 0);
        }
    }
}

void ex_progress_end(ex_progress *p)
{
    progress_draw(p, 1);
}

/* ---- files ------------------------------------------------------------------ */

int ex_file_exists(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

int ex_is_dir(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 && S_ISDIR(sb.st_mode);
}

int ex_mkdirs(const char *path)
{
    char *p = ex_strdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/')
            continue;
        *s = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST) {
            fprintf(stderr, "error: cannot create %s: %s\n", p, strerror(errno));
            free(p);
            return -1;
        }
        *s = '/';
    }
    int rc = 0;
    if (mkdir(p, 0777) != 0 && errno != EEXIST) {
        fprintf(stderr, "error: cannot create %s: %s\n", p, strerror(errno));
        rc = -1;
    }
    free(p);
    return rc;
}

char *ex_read_file(const char *path, size_t *out_len, int quiet)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (!quiet)
            fprintf(stderr, "error: cannot open %s: %s\n", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 16, len = 0;
    char *buf = ex_malloc(cap);
    for (;;) {
        if (len + 1 >= cap) {
            cap *= 2;
            buf = ex_realloc(buf, cap);
        }
        size_t got = fread(buf + len, 1, cap - len - 1, f);
        len += got;
        if (got == 0)
            break;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        if (!quiet)
            fprintf(stderr, "error: cannot read %s\n", path);
        free(buf);
        return NULL;
    }
    buf[len] = '\0';
    if (out_len)
        *out_len = len;
    return buf;
}

int ex_write_file(const char *path, const char *text, size_t len)
{
    char *tmp = ex_fmt("%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        fprintf(stderr, "error: cannot write %s: %s\n", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    int ok = fwrite(text, 1, len, f) == len;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "error: cannot write %s: %s\n", path, strerror(errno));
        remove(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

uint64_t ex_fnv(uint64_t h, const void *buf, size_t n)
{
    const unsigned char *p = buf;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

uint64_t ex_fnv_file(uint64_t h, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return 0;
    unsigned char buf[1 << 15];
    size_t got;
    while ((got = fread(buf, 1, sizeof buf, f)) > 0)
        h = ex_fnv(h, buf, got);
    fclose(f);
    return h;
}

/* ---- matrices --------------------------------------------------------------- */

int ex_mat_write(const char *path, uint64_t key, const float *m, int64_t rows, int64_t cols)
{
    char *tmp = ex_fmt("%s.tmp%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        fprintf(stderr, "error: cannot write %s: %s\n", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    int ok = fwrite("GTLXMAT1", 1, 8, f) == 8 && fwrite(&key, 8, 1, f) == 1 &&
             fwrite(&rows, 8, 1, f) == 1 && fwrite(&cols, 8, 1, f) == 1 &&
             fwrite(m, sizeof(float), (size_t)(rows * cols), f) == (size_t)(rows * cols);
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        fprintf(stderr, "error: cannot write %s: %s\n", path, strerror(errno));
        remove(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}

float *ex_mat_read(const char *path, uint64_t key, int64_t *out_rows, int64_t *out_cols)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char magic[8];
    uint64_t k = 0;
    int64_t rows = 0, cols = 0;
    float *m = NULL;
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, "GTLXMAT1", 8) != 0 ||
        fread(&k, 8, 1, f) != 1 || k != key || fread(&rows, 8, 1, f) != 1 ||
        fread(&cols, 8, 1, f) != 1 || rows < 0 || cols < 1 || rows > (1ll << 26) ||
        cols > (1ll << 20))
        goto out;
    m = ex_malloc((size_t)(rows * cols) * sizeof(float) + 1);
    if (fread(m, sizeof(float), (size_t)(rows * cols), f) != (size_t)(rows * cols)) {
        free(m);
        m = NULL;
        goto out;
    }
    *out_rows = rows;
    *out_cols = cols;
out:
    fclose(f);
    return m;
}

/* ---- CSV -------------------------------------------------------------------- */

/* Splits one record starting at *pos in place; returns the number of cells
 * stored (up to max) and advances *pos past the line end. */
static int64_t csv_record(char **pos, char **cells, int64_t max)
{
    char *s = *pos;
    int64_t n = 0;
    for (;;) {
        char *dst = s, *start = s;
        if (*s == '"') {
            s++;
            start = dst = s;
            for (;;) {
                if (*s == '\0')
                    break;
                if (*s == '"' && s[1] == '"') {
                    *dst++ = '"';
                    s += 2;
                } else if (*s == '"') {
                    s++;
                    break;
                } else {
                    *dst++ = *s++;
                }
            }
            while (*s && *s != ',' && *s != '\n' && *s != '\r')
                s++;
        } else {
            while (*s && *s != ',' && *s != '\n' && *s != '\r')
                s++;
            dst = s;
        }
        char c = *s;
        *dst = '\0';
        if (n < max)
            cells[n] = start;
        n++;
        if (c == ',') {
            s++;
            continue;
        }
        if (c == '\r') {
            s++;
            c = *s;
        }
        if (c == '\n')
            s++;
        break;
    }
    *pos = s;
    return n < max ? n : max;
}

int ex_csv_read(const char *path, ex_csv *csv)
{
    memset(csv, 0, sizeof *csv);
    csv->text = ex_read_file(path, NULL, 0);
    if (!csv->text)
        return -1;
    char *pos = csv->text;
    if (!strncmp(pos, "\xef\xbb\xbf", 3))
        pos += 3;
    char *hdr[256];
    csv->n_cols = csv_record(&pos, hdr, 256);
    csv->header = ex_malloc(sizeof(char *) * (size_t)csv->n_cols);
    memcpy(csv->header, hdr, sizeof(char *) * (size_t)csv->n_cols);
    int64_t cap = 1024;
    csv->cells = ex_malloc(sizeof(char *) * (size_t)(cap * csv->n_cols));
    while (*pos) {
        if (*pos == '\n' || *pos == '\r') {
            pos++;
            continue;
        }
        if (csv->n_rows == cap) {
            cap *= 2;
            csv->cells = ex_realloc(csv->cells, sizeof(char *) * (size_t)(cap * csv->n_cols));
        }
        char **row = csv->cells + csv->n_rows * csv->n_cols;
        int64_t got = csv_record(&pos, row, csv->n_cols);
        for (int64_t i = got; i < csv->n_cols; i++)
            row[i] = (char *)"";
        csv->n_rows++;
    }
    return 0;
}

void ex_csv_free(ex_csv *csv)
{
    free(csv->text);
    free(csv->cells);
    free(csv->header);
    memset(csv, 0, sizeof *csv);
}

int64_t ex_csv_col(const ex_csv *csv, const char *name)
{
    for (int64_t i = 0; i < csv->n_cols; i++)
        if (!strcmp(csv->header[i], name))
            return i;
    return -1;
}

const char *ex_csv_get(const ex_csv *csv, int64_t row, int64_t col)
{
    if (row < 0 || row >= csv->n_rows || col < 0 || col >= csv->n_cols)
        return "";
    return csv->cells[row * csv->n_cols + col];
}

/* ---- text buffers ------------------------------------------------------------- */

void ex_buf_printf(ex_buf *b, const char *fmt, ...)
{
    va_list ap, aq;
    va_start(ap, fmt);
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (b->len + (size_t)n + 1 > b->cap) {
        b->cap = (b->len + (size_t)n + 1) * 2;
        b->s = ex_realloc(b->s, b->cap);
    }
    vsnprintf(b->s + b->len, (size_t)n + 1, fmt, aq);
    va_end(aq);
    b->len += (size_t)n;
}

void ex_buf_json_str(ex_buf *b, const char *s)
{
    ex_buf_printf(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            ex_buf_printf(b, "\\%c", c);
        else if (c < 0x20)
            ex_buf_printf(b, "\\u%04x", c);
        else
            ex_buf_printf(b, "%c", c);
    }
    ex_buf_printf(b, "\"");
}

void ex_buf_free(ex_buf *b)
{
    free(b->s);
    memset(b, 0, sizeof *b);
}

/* ---- paths and directories ----------------------------------------------------- */

char *ex_path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir);
    if (n == 0 || name[0] == '/')
        return ex_strdup(name);
    return ex_fmt("%s%s%s", dir, dir[n - 1] == '/' ? "" : "/", name);
}

const char *ex_path_ext(const char *path)
{
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(path, '.');
    if (!dot || (slash && dot < slash))
        return "";
    return dot + 1;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int ex_list_dir(const char *dir, char ***out_names, int64_t *out_n)
{
    *out_names = NULL;
    *out_n = 0;
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    int64_t n = 0, cap = 64;
    char **names = ex_malloc(sizeof(char *) * (size_t)cap);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (n == cap) {
            cap *= 2;
            names = ex_realloc(names, sizeof(char *) * (size_t)cap);
        }
        names[n++] = ex_strdup(e->d_name);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof(char *), cmp_str);
    *out_names = names;
    *out_n = n;
    return 0;
}

void ex_free_list(char **names, int64_t n)
{
    for (int64_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* ---- PNG writer ---------------------------------------------------------------- */

static uint32_t crc32_update(uint32_t crc, const unsigned char *p, size_t n)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void png_chunk(FILE *f, const char *type, const unsigned char *data, uint32_t n)
{
    unsigned char b[8];
    put_be32(b, n);
    memcpy(b + 4, type, 4);
    fwrite(b, 1, 8, f);
    if (n)
        fwrite(data, 1, n, f);
    put_be32(b, crc32_update(crc32_update(0, (const unsigned char *)type, 4), data, n));
    fwrite(b, 1, 4, f);
}

int ex_png_write(const char *path, int32_t w, int32_t h, int32_t channels, const uint8_t *px)
{
    size_t row = 1 + (size_t)channels * (size_t)w, raw_n = row * (size_t)h;
    unsigned char *raw = ex_malloc(raw_n);
    for (int32_t y = 0; y < h; y++) {
        raw[(size_t)y * row] = 0;
        memcpy(raw + (size_t)y * row + 1, px + (size_t)y * (size_t)w * (size_t)channels,
               (size_t)w * (size_t)channels);
    }
    size_t n_blocks = (raw_n + 65534) / 65535;
    size_t zn = 2 + raw_n + 5 * n_blocks + 4;
    unsigned char *z = ex_malloc(zn), *q = z;
    *q++ = 0x78;
    *q++ = 0x01;
    for (size_t off = 0; off < raw_n; off += 65535) {
        size_t len = raw_n - off < 65535 ? raw_n - off : 65535;
        *q++ = off + len == raw_n ? 1 : 0;
        *q++ = (unsigned char)(len & 0xff);
        *q++ = (unsigned char)(len >> 8);
        *q++ = (unsigned char)(~len & 0xff);
        *q++ = (unsigned char)((~len >> 8) & 0xff);
        memcpy(q, raw + off, len);
        q += len;
    }
    uint32_t a = 1, b = 0;
    for (size_t i = 0; i < raw_n; i++) {
        a = (a + raw[i]) % 65521u;
        b = (b + a) % 65521u;
    }
    put_be32(q, b << 16 | a);
    unsigned char ihdr[13] = {0};
    put_be32(ihdr, (uint32_t)w);
    put_be32(ihdr + 4, (uint32_t)h);
    ihdr[8] = 8;
    ihdr[9] = channels == 1 ? 0 : 2;
    FILE *f = fopen(path, "wb");
    int rc = -1;
    if (f) {
        static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
        fwrite(sig, 1, 8, f);
        png_chunk(f, "IHDR", ihdr, 13);
        png_chunk(f, "IDAT", z, (uint32_t)zn);
        png_chunk(f, "IEND", z, 0);
        rc = fclose(f) == 0 ? 0 : -1;
    }
    if (rc != 0)
        fprintf(stderr, "error: cannot write %s: %s\n", path, strerror(errno));
    free(raw);
    free(z);
    return rc;
}
