/* The public API as a consumer sees it: only <gtl/gtl.h>, only the shared
 * library, strict C11 (-std=c11 -Wall -Wextra -pedantic -Werror).
 *
 * Every exported function is called here with valid and invalid arguments
 * (cmake/check_abi.cmake fails if an exported symbol is missing from this
 * file), and each function is assigned to a pointer of its exact documented
 * type, so a changed signature fails to compile. Plain C, no test framework:
 * the exit status is the number of failed checks. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>

#include <gtl/gtl.h>

static int n_failed;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s (last error: %s)\n",    \
                    __FILE__, __LINE__, #cond, gtl_last_error());            \
            n_failed++;                                                      \
        }                                                                    \
    } while (0)

/* ---- compile-time ABI facts ------------------------------------------------ */

_Static_assert(GTL_STATUS_OK == 0, "status values are ABI");
_Static_assert(GTL_STATUS_INVALID_ARG == 1, "status values are ABI");
_Static_assert(GTL_STATUS_OUT_OF_MEMORY == 2, "status values are ABI");
_Static_assert(GTL_STATUS_BAD_STATE == 3, "status values are ABI");
_Static_assert(GTL_STATUS_IO == 4, "status values are ABI");
_Static_assert(GTL_STATUS_FORMAT == 5, "status values are ABI");
_Static_assert(GTL_STATUS_BACKEND == 6, "status values are ABI");
_Static_assert(GTL_STATUS_UNSUPPORTED == 7, "status values are ABI");
_Static_assert(GTL_STATUS_NUMERIC == 8, "status values are ABI");
_Static_assert(GTL_STATUS_CANCELLED == 9, "status values are ABI");
_Static_assert(GTL_STATUS_INTERNAL == 10, "status values are ABI");
_Static_assert(GTL_LOG_ERROR == 0 && GTL_LOG_WARN == 1 && GTL_LOG_INFO == 2 &&
                   GTL_LOG_DEBUG == 3,
               "log levels are ABI");
_Static_assert(GTL_VERSION_NUMBER ==
                   GTL_VERSION_MAJOR * 10000 + GTL_VERSION_MINOR * 100 + GTL_VERSION_PATCH,
               "version number formula");

/* The exact type of every exported function. */
static uint32_t (*const p_version_number)(void) = gtl_version_number;
static const char *(*const p_version_string)(void) = gtl_version_string;
static const char *(*const p_strerror)(gtl_status) = gtl_strerror;
static const char *(*const p_last_error)(void) = gtl_last_error;
static gtl_status (*const p_set_allocator)(gtl_malloc_fn, gtl_realloc_fn, gtl_free_fn,
                                           void *) = gtl_set_allocator;
static gtl_status (*const p_memory_in_use)(uint64_t *, uint64_t *) = gtl_memory_in_use;
static gtl_status (*const p_set_log_callback)(gtl_log_fn, void *,
                                              gtl_log_level) = gtl_set_log_callback;
static gtl_status (*const p_set_num_threads)(int32_t) = gtl_set_num_threads;
static gtl_status (*const p_num_threads)(int32_t *) = gtl_num_threads;
static gtl_status (*const p_build_info)(char *, size_t, size_t *) = gtl_build_info;
static gtl_status (*const p_cpu_has_bf16)(int32_t *) = gtl_cpu_has_bf16;

/* The callback typedefs, matched by these definitions. */
typedef struct counts {
    int n_malloc, n_realloc, n_free;
} counts;

static void *my_malloc(void *ud, size_t size)
{
    ((counts *)ud)->n_malloc++;
    return malloc(size);
}

static void *my_realloc(void *ud, void *ptr, size_t size)
{
    ((counts *)ud)->n_realloc++;
    return realloc(ptr, size);
}

static void my_free(void *ud, void *ptr)
{
    ((counts *)ud)->n_free++;
    free(ptr);
}

typedef struct log_sink {
    int n;
    gtl_log_level last_level;
    char last[256];
} log_sink;

static void my_log(void *ud, gtl_log_level level, const char *message)
{
    log_sink *s = ud;
    s->n++;
    s->last_level = level;
    snprintf(s->last, sizeof s->last, "%s", message);
}

/* ---- runtime checks ---------------------------------------------------------- */

static void check_version(void)
{
    CHECK(gtl_version_number() == GTL_VERSION_NUMBER);
    CHECK(p_version_number() == GTL_VERSION_NUMBER);
    CHECK(strcmp(gtl_version_string(), GTL_VERSION_STRING) == 0);
    CHECK(strcmp(p_version_string(), GTL_VERSION_STRING) == 0);
    /* The check version.h recommends. */
    CHECK(gtl_version_number() / 100 == GTL_VERSION_NUMBER / 100);
}

static void check_status_names(void)
{
    for (int s = GTL_STATUS_OK; s <= GTL_STATUS_INTERNAL; s++) {
        const char *name = gtl_strerror((gtl_status)s);
        CHECK(name != NULL && name[0] != '\0');
        CHECK(strcmp(name, "unknown status") != 0);
    }
    CHECK(strcmp(gtl_strerror(GTL_STATUS_OK), "ok") == 0);
    CHECK(strcmp(p_strerror(GTL_STATUS_INVALID_ARG), "invalid argument") == 0);
    CHECK(strcmp(gtl_strerror((gtl_status)11), "unknown status") == 0);
    CHECK(strcmp(gtl_strerror((gtl_status)-1), "unknown status") == 0);
}

static int other_thread(void *arg)
{
    char *seen = arg;
    snprintf(seen, 256, "%s", gtl_last_error());
    return gtl_set_num_threads(-5) == GTL_STATUS_INVALID_ARG ? 0 : 1;
}

static void check_last_error(void)
{
    CHECK(gtl_last_error() != NULL);
    CHECK(gtl_set_num_threads(0) == GTL_STATUS_INVALID_ARG);
    CHECK(strstr(gtl_last_error(), "gtl_set_num_threads") != NULL);
    char mine[256];
    snprintf(mine, sizeof mine, "%s", p_last_error());

    /* Per thread: a new thread sees an empty message, and its error does not
     * replace ours. */
    char seen[256] = "x";
    thrd_t th;
    int rc = 1;
    CHECK(thrd_create(&th, other_thread, seen) == thrd_success);
    CHECK(thrd_join(th, &rc) == thrd_success);
    CHECK(rc == 0);
    CHECK(seen[0] == '\0');
    CHECK(strcmp(gtl_last_error(), mine) == 0);

    int32_t n = 0;
    CHECK(gtl_num_threads(&n) == GTL_STATUS_OK);
    CHECK(gtl_last_error()[0] == '\0');
}

static void check_allocator(void)
{
    counts c = {0, 0, 0};
    uint64_t bytes = 1, blocks = 1;
    CHECK(gtl_memory_in_use(&bytes, &blocks) == GTL_STATUS_OK);
    CHECK(bytes == 0 && blocks == 0);
    CHECK(p_memory_in_use(NULL, &blocks) == GTL_STATUS_INVALID_ARG);
    CHECK(gtl_memory_in_use(&bytes, NULL) == GTL_STATUS_INVALID_ARG);
    CHECK(bytes == 0);
    CHECK(gtl_memory_in_use(NULL, NULL) == GTL_STATUS_INVALID_ARG);

    CHECK(gtl_set_allocator(my_malloc, NULL, NULL, &c) == GTL_STATUS_INVALID_ARG);
    CHECK(gtl_set_allocator(NULL, my_realloc, my_free, &c) == GTL_STATUS_INVALID_ARG);
    CHECK(gtl_set_allocator(my_malloc, my_realloc, NULL, NULL) == GTL_STATUS_INVALID_ARG);
    CHECK(strstr(gtl_last_error(), "gtl_set_allocator") != NULL);
    CHECK(p_set_allocator(my_malloc, my_realloc, my_free, &c) == GTL_STATUS_OK);
    CHECK(gtl_last_error()[0] == '\0');
    /* The runtime calls allocate nothing. */
    char info[512];
    CHECK(gtl_build_info(info, sizeof info, NULL) == GTL_STATUS_OK);
    CHECK(c.n_malloc == 0 && c.n_realloc == 0 && c.n_free == 0);
    CHECK(gtl_set_allocator(NULL, NULL, NULL, NULL) == GTL_STATUS_OK);
}

static void check_logging(void)
{
    log_sink s;
    memset(&s, 0, sizeof s);
    CHECK(gtl_set_log_callback(my_log, &s, (gtl_log_level)4) == GTL_STATUS_INVALID_ARG);
    CHECK(gtl_set_log_callback(my_log, &s, (gtl_log_level)-1) == GTL_STATUS_INVALID_ARG);
    CHECK(strstr(gtl_last_error(), "gtl_set_log_callback") != NULL);
    CHECK(s.n == 0);
    /* Failures are reported at DEBUG: visible with DEBUG, filtered with WARN. */
    CHECK(p_set_log_callback(my_log, &s, GTL_LOG_DEBUG) == GTL_STATUS_OK);
    CHECK(gtl_set_num_threads(0) == GTL_STATUS_INVALID_ARG);
    CHECK(s.n == 1);
    CHECK(s.last_level == GTL_LOG_DEBUG);
    CHECK(strstr(s.last, "gtl_set_num_threads") != NULL);
    CHECK(gtl_set_log_callback(my_log, &s, GTL_LOG_WARN) == GTL_STATUS_OK);
    CHECK(gtl_set_num_threads(0) == GTL_STATUS_INVALID_ARG);
    CHECK(s.n == 1);
    CHECK(gtl_set_log_callback(NULL, NULL, GTL_LOG_DEBUG) == GTL_STATUS_OK);
    CHECK(gtl_set_num_threads(0) == GTL_STATUS_INVALID_ARG);
    CHECK(s.n == 1);
}

static void check_threads(void)
{
    int32_t n0 = 0;
    CHECK(gtl_num_threads(&n0) == GTL_STATUS_OK);
    CHECK(n0 >= 1);
    CHECK(p_num_threads(NULL) == GTL_STATUS_INVALID_ARG);
    CHECK(gtl_set_num_threads(0) == GTL_STATUS_INVALID_ARG);
    CHECK(gtl_set_num_threads(-1) == GTL_STATUS_INVALID_ARG);
    CHECK(gtl_set_num_threads(5000) == GTL_STATUS_INVALID_ARG);
    CHECK(p_set_num_threads(1) == GTL_STATUS_OK);
    int32_t n = 0;
    CHECK(gtl_num_threads(&n) == GTL_STATUS_OK);
    CHECK(n == 1);
    CHECK(gtl_set_num_threads(n0) == GTL_STATUS_OK);
}

static void check_build_info(void)
{
    char info[512];
    size_t len = 0;
    CHECK(gtl_build_info(info, sizeof info, &len) == GTL_STATUS_OK);
    CHECK(len == strlen(info));
    CHECK(strncmp(info, "libgtl " GTL_VERSION_STRING ";", strlen("libgtl " GTL_VERSION_STRING ";"))
          == 0);
    CHECK(strstr(info, "oneDNN ") != NULL);
    CHECK(strstr(info, "isa ") != NULL);
    CHECK(strstr(info, "threads ") != NULL);
    printf("# %s\n", info);

    char small[8];
    memset(small, 'X', sizeof small);
    size_t l2 = 99;
    CHECK(p_build_info(small, sizeof small, &l2) == GTL_STATUS_INVALID_ARG);
    CHECK(l2 == 0);
    for (size_t i = 0; i < sizeof small; i++)
        CHECK(small[i] == 'X');
    CHECK(gtl_build_info(NULL, sizeof info, &l2) == GTL_STATUS_INVALID_ARG);
    CHECK(gtl_build_info(info, len, NULL) == GTL_STATUS_INVALID_ARG);
    CHECK(gtl_build_info(info, len + 1, NULL) == GTL_STATUS_OK);

    int32_t bf16 = -1;
    CHECK(gtl_cpu_has_bf16(&bf16) == GTL_STATUS_OK);
    CHECK(bf16 == 0 || bf16 == 1);
    CHECK(strstr(info, bf16 ? "bf16 yes" : "bf16 no") != NULL);
    CHECK(p_cpu_has_bf16(NULL) == GTL_STATUS_INVALID_ARG);
}

int main(void)
{
    check_version();
    check_status_names();
    check_last_error();
    check_allocator();
    check_logging();
    check_threads();
    check_build_info();
    uint64_t bytes = 1, blocks = 1;
    CHECK(gtl_memory_in_use(&bytes, &blocks) == GTL_STATUS_OK && bytes == 0 && blocks == 0);
    printf("# public API: %d failed checks\n", n_failed);
    return n_failed == 0 ? 0 : 1;
}
