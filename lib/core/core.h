/* core: errors, allocation, logging, assertions. Every lib/ file may use it. */
#ifndef GTL__CORE_H
#define GTL__CORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gtl/runtime.h"
#include "gtl/status.h"

#if defined(__GNUC__)
#  define GTL__PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#  define GTL__PRINTF(a, b)
#endif

/* Records a detail message for gtl_last_error() and returns st, so error
 * paths read `return gtl__error(GTL_STATUS_INVALID_ARG, "...", ...);`. */
gtl_status gtl__error(gtl_status st, const char *fmt, ...) GTL__PRINTF(2, 3);
/* Clears the message; public entry points call it first. */
void gtl__clear_error(void);
/* The current message (for wrapping it with more context). */
const char *gtl__error_message(void);

/* Allocation through the user's hooks. Tracked: gtl_memory_in_use() reports
 * the totals. gtl__malloc_aligned returns 64-byte aligned memory that must be
 * released with gtl__free_aligned. */
void *gtl__malloc(size_t size);
void *gtl__calloc(size_t n, size_t size);
void *gtl__realloc(void *ptr, size_t size);
void gtl__free(void *ptr);
void *gtl__malloc_aligned(size_t size);
void *gtl__calloc_aligned(size_t size);
void gtl__free_aligned(void *ptr);
/* Allocation failure counts for tests (number of gtl__malloc-family calls). */
uint64_t gtl__alloc_count(void);

/* Logging: silent unless the host installed a callback. */
void gtl__log(gtl_log_level level, const char *fmt, ...) GTL__PRINTF(2, 3);
bool gtl__log_enabled(gtl_log_level level);

/* Internal invariants: checked in debug builds, gone in release builds. */
#ifdef NDEBUG
#  define GTL_ASSERT(x) ((void)0)
#else
void gtl__assert_fail(const char *expr, const char *file, int line);
#  define GTL_ASSERT(x) ((x) ? (void)0 : gtl__assert_fail(#x, __FILE__, __LINE__))
#endif
#define GTL_STATIC_ASSERT(x, msg) _Static_assert(x, msg)

/* Overflow-checked size arithmetic: false on overflow. */
static inline bool gtl__mul_size(size_t a, size_t b, size_t *out)
{
    if (a != 0 && b > SIZE_MAX / a)
        return false;
    *out = a * b;
    return true;
}

#endif /* GTL__CORE_H */
