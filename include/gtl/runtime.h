/**
 * @file runtime.h
 * @brief Process-wide settings: allocator and log hooks, threads, build information.
 *
 * These settings are global to the process. Set the allocator before any other
 * libgtl call; the log callback and thread count may be changed at any time
 * from a thread that is not inside another libgtl call.
 *
 * Usage:
 * @code
 *   static void on_log(void *ud, gtl_log_level level, const char *msg) {
 *       fprintf(stderr, "[gtl %d] %s\n", (int)level, msg);
 *   }
 *   gtl_set_log_callback(on_log, NULL, GTL_LOG_INFO);
 *
 *   char info[512];
 *   size_t len = 0;
 *   if (gtl_build_info(info, sizeof info, &len) == GTL_STATUS_OK)
 *       puts(info);
 * @endcode
 */
#ifndef GTL_RUNTIME_H
#define GTL_RUNTIME_H

#include <stddef.h>
#include <stdint.h>

#include "gtl/export.h"
#include "gtl/status.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Allocator hooks                                                          */
/* ------------------------------------------------------------------------ */

/** Allocates @p size bytes aligned to at least 16; returns NULL on failure. */
typedef void *(*gtl_malloc_fn)(void *user_data, size_t size);
/** Resizes a block from the same allocator (C realloc semantics, @p ptr may be NULL). */
typedef void *(*gtl_realloc_fn)(void *user_data, void *ptr, size_t size);
/** Frees a block from the same allocator; @p ptr may be NULL. */
typedef void (*gtl_free_fn)(void *user_data, void *ptr);

/**
 * Routes every allocation libgtl makes itself through the given functions.
 *
 * All three functions must be given, or all three NULL to restore the C
 * library's malloc/realloc/free. Large buffers (tensors, parameter blobs) are
 * requested at 64-byte alignment by over-allocating, so the hooks need only
 * provide malloc's usual alignment.
 *
 * oneDNN's own internal objects (JIT code, primitive descriptors) are
 * allocated by oneDNN and do not pass through these hooks; the scratchpad
 * memory its primitives use does.
 *
 * @param[in] malloc_fn  allocation function, or NULL.
 * @param[in] realloc_fn reallocation function, or NULL.
 * @param[in] free_fn    release function, or NULL.
 * @param[in] user_data  passed unchanged to each function; may be NULL.
 * @retval ::GTL_STATUS_OK          the hooks are installed (or the C library's restored).
 * @retval ::GTL_STATUS_INVALID_ARG some but not all of the three functions are NULL.
 * @retval ::GTL_STATUS_BAD_STATE   libgtl still holds memory from the current allocator (objects
 *                                  not yet destroyed).
 *
 * Ownership: libgtl keeps the function pointers and @p user_data until the
 *   next call; @p user_data must stay valid until then.
 * Thread safety: not thread-safe. Call it before any other libgtl call, with
 *   no other thread inside libgtl.
 */
GTL_API gtl_status gtl_set_allocator(gtl_malloc_fn malloc_fn, gtl_realloc_fn realloc_fn,
                                     gtl_free_fn free_fn, void *user_data);

/**
 * Reports how much memory libgtl currently holds through its allocator.
 *
 * @param[out] out_bytes  bytes currently allocated (requested sizes).
 * @param[out] out_blocks number of live blocks.
 * @retval ::GTL_STATUS_OK          the counts were written.
 * @retval ::GTL_STATUS_INVALID_ARG an out pointer is NULL.
 *
 * Ownership: nothing is allocated.
 * Thread safety: safe from any thread; the counts are read atomically but
 *   may change concurrently.
 */
GTL_API gtl_status gtl_memory_in_use(uint64_t *out_bytes, uint64_t *out_blocks);

/* ------------------------------------------------------------------------ */
/* Logging                                                                  */
/* ------------------------------------------------------------------------ */

/** Message severity, most severe first. Values are append-only. */
typedef enum gtl_log_level {
    GTL_LOG_ERROR = 0, /**< an operation failed */
    GTL_LOG_WARN = 1,  /**< something works but slower or less precise than asked */
    GTL_LOG_INFO = 2,  /**< one-line summaries (which kernels run, what was loaded) */
    GTL_LOG_DEBUG = 3  /**< details for developers */
} gtl_log_level;

/** Receives one log message. @p message is one line without a trailing newline,
 *  valid only during the call. The callback must not call back into libgtl. */
typedef void (*gtl_log_fn)(void *user_data, gtl_log_level level, const char *message);

/**
 * Installs a log callback. libgtl is silent by default: without a callback,
 * nothing is ever printed.
 *
 * @param[in] fn        the callback, or NULL to silence logging again.
 * @param[in] user_data passed unchanged to @p fn; may be NULL.
 * @param[in] max_level messages more detailed than this level are dropped.
 * @retval ::GTL_STATUS_OK          the callback is installed (or logging silenced).
 * @retval ::GTL_STATUS_INVALID_ARG @p max_level is not a ::gtl_log_level value.
 *
 * Ownership: libgtl keeps @p fn and @p user_data until the next call.
 * Thread safety: the callback may be invoked from any thread that calls into
 *   libgtl, and concurrently from several; make it thread-safe. Installing a
 *   callback while other threads are inside libgtl is a race.
 */
GTL_API gtl_status gtl_set_log_callback(gtl_log_fn fn, void *user_data, gtl_log_level max_level);

/* ------------------------------------------------------------------------ */
/* Threads and build information                                            */
/* ------------------------------------------------------------------------ */

/**
 * Sets the number of threads libgtl's compute kernels use.
 *
 * libgtl runs its kernels on oneDNN's OpenMP runtime, whose thread count is
 * process-wide: this changes it for the calling thread's OpenMP region and
 * for libgtl's own loops. The default is OpenMP's default (OMP_NUM_THREADS,
 * else the number of cores).
 *
 * @param[in] n_threads number of threads, >= 1.
 * @retval ::GTL_STATUS_OK          the thread count is set.
 * @retval ::GTL_STATUS_INVALID_ARG @p n_threads < 1 or larger than 4096.
 *
 * Ownership: nothing is allocated.
 * Thread safety: affects OpenMP parallel regions started by the calling thread.
 */
GTL_API gtl_status gtl_set_num_threads(int32_t n_threads);

/**
 * Returns the number of threads libgtl's kernels will use from this thread.
 *
 * @param[out] out_n_threads the thread count.
 * @retval ::GTL_STATUS_OK          the count was written.
 * @retval ::GTL_STATUS_INVALID_ARG @p out_n_threads is NULL.
 *
 * Ownership: nothing is allocated.
 * Thread safety: safe from any thread.
 */
GTL_API gtl_status gtl_num_threads(int32_t *out_n_threads);

/**
 * Writes a one-line description of this build and machine, for bug reports:
 * libgtl version, oneDNN version and the CPU instruction set oneDNN uses,
 * whether bf16 kernels are available, and the thread count. For example:
 * "libgtl 0.1.0; oneDNN 2.6.3 (cpu omp); isa avx512_core_bf16; bf16 yes; threads 2".
 *
 * @param[out] dst          buffer for the NUL-terminated string.
 * @param[in]  dst_capacity size of @p dst in bytes.
 * @param[out] out_len      length of the full string without the NUL; may be NULL.
 * @retval ::GTL_STATUS_OK          the string was written.
 * @retval ::GTL_STATUS_INVALID_ARG @p dst is NULL, or @p dst_capacity is smaller than the string
 *                                  plus its NUL (nothing is written; 512 bytes always suffice).
 * @retval ::GTL_STATUS_INTERNAL    formatting the string failed (a libgtl bug).
 *
 * Ownership: the caller owns @p dst.
 * Thread safety: safe from any thread.
 */
GTL_API gtl_status gtl_build_info(char *dst, size_t dst_capacity, size_t *out_len);

/**
 * Tells whether this CPU runs bf16 matrix kernels natively (AVX512-BF16 or AMX).
 *
 * @param[out] out_supported 1 if it does, 0 if bf16 requests fall back to fp32.
 * @retval ::GTL_STATUS_OK          the answer was written.
 * @retval ::GTL_STATUS_INVALID_ARG @p out_supported is NULL.
 *
 * Ownership: nothing is allocated.
 * Thread safety: safe from any thread.
 */
GTL_API gtl_status gtl_cpu_has_bf16(int32_t *out_supported);

#ifdef __cplusplus
}
#endif

#endif /* GTL_RUNTIME_H */
