/* ex_util: small helpers shared by the example programs (gtl-demo, adapt,
 * predict). Not part of libgtl: the examples use only the public API
 * (<gtl/gtl.h>, <gtl/backbone.h>, <gtl/eval.h>); these are host-side
 * conveniences (progress bar, files, CSV, hashing, binary matrices).
 *
 * Errors: functions return 0 on success and -1 on failure after printing a
 * message to stderr that names the file. EX_CHECK aborts the program on a
 * failed libgtl call (examples may; the library never does). */
#ifndef EX_UTIL_H
#define EX_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "gtl/gtl.h"

/* Exits with a message naming the call when a libgtl call fails. */
#define EX_CHECK(call)                                                                 \
    do {                                                                               \
        gtl_status ex_st_ = (call);                                                    \
        if (ex_st_ != GTL_STATUS_OK)                                                   \
            ex_die_status(__FILE__, __LINE__, #call, ex_st_);                          \
    } while (0)

void ex_die_status(const char *file, int line, const char *call, gtl_status st);
/* Prints "fatal: <message>" and exits with status 1. */
void ex_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Allocation that exits on failure (examples only). */
void *ex_malloc(size_t n);
void *ex_calloc(size_t n, size_t size);
void *ex_realloc(void *p, size_t n);
char *ex_strdup(const char *s);
/* printf into a fresh string. */
char *ex_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Monotonic seconds. */
double ex_now(void);

/* ---- progress bar on stderr ------------------------------------------------
 * Drawn with \r when stderr is a terminal (at most ~10 redraws a second), and
 * as a few plain lines (every 10 %) otherwise, so CI logs stay short. */
typedef struct ex_progress {
    char label[48];
    int64_t total;
    int64_t done;
    double t_start;
    double t_last;
    int tty;
    int last_decile;
    char extra[96];
} ex_progress;

void ex_progress_start(ex_progress *p, const char *label, int64_t total);
/* Sets the count (and an optional short status text, e.g. "loss 1.23"). */
void ex_progress_update(ex_progress *p, int64_t done, const char *extra);
/* Final line with the elapsed time. */
void ex_progress_end(ex_progress *p);

/* ---- files ---------------------------------------------------------------- */
int ex_file_exists(const char *path);
int ex_is_dir(const char *path);
/* mkdir -p. */
int ex_mkdirs(const char *path);
/* Reads a whole file (NUL-terminated); NULL on failure (message printed
 * unless quiet). */
char *ex_read_file(const char *path, size_t *out_len, int quiet);
/* Writes text atomically (temporary file + rename). */
int ex_write_file(const char *path, const char *text, size_t len);
/* FNV-1a 64 of a buffer, chainable (seed with EX_FNV_INIT). */
#define EX_FNV_INIT 0xcbf29ce484222325ull
uint64_t ex_fnv(uint64_t h, const void *buf, size_t n);
/* FNV-1a 64 of a file's bytes, chained onto h; 0 on failure. */
uint64_t ex_fnv_file(uint64_t h, const char *path);

/* ---- binary float matrices with a cache key --------------------------------
 * File: "GTLXMAT1", u64 key, i64 rows, i64 cols, rows * cols f32 (little-endian
 * host order). ex_mat_read returns NULL (quietly) when the file is missing or
 * its key differs. */
int ex_mat_write(const char *path, uint64_t key, const float *m, int64_t rows, int64_t cols);
float *ex_mat_read(const char *path, uint64_t key, int64_t *out_rows, int64_t *out_cols);

/* ---- CSV ------------------------------------------------------------------
 * A minimal reader for the manifests: comma-separated, optional double quotes
 * ("" escapes a quote), one record per line, header in the first line. */
typedef struct ex_csv {
    char *text;
    int64_t n_rows;   /* data rows, header excluded */
    int64_t n_cols;   /* header columns */
    char **cells;     /* n_rows * n_cols, pointers into text; missing cells "" */
    char **header;    /* n_cols */
} ex_csv;

int ex_csv_read(const char *path, ex_csv *csv);
void ex_csv_free(ex_csv *csv);
/* Column index by header name, or -1. */
int64_t ex_csv_col(const ex_csv *csv, const char *name);
const char *ex_csv_get(const ex_csv *csv, int64_t row, int64_t col);

/* Appends a JSON string literal (with quotes and escapes) to a growing buffer. */
typedef struct ex_buf {
    char *s;
    size_t len, cap;
} ex_buf;
void ex_buf_printf(ex_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void ex_buf_json_str(ex_buf *b, const char *s);
void ex_buf_free(ex_buf *b);

/* The path of dir/name (fresh string). */
char *ex_path_join(const char *dir, const char *name);
/* Lower-cased extension without the dot ("" if none), pointing into path. */
const char *ex_path_ext(const char *path);
/* Sorted list of directory entries (not "." or ".."); -1 if dir cannot be read. */
int ex_list_dir(const char *dir, char ***out_names, int64_t *out_n);
void ex_free_list(char **names, int64_t n);

/* Writes an 8-bit PNG (channels 1 = gray, 3 = RGB) with stored deflate
 * blocks (no compression library needed): for generated test images. */
int ex_png_write(const char *path, int32_t w, int32_t h, int32_t channels, const uint8_t *px);

#endif /* EX_UTIL_H */
