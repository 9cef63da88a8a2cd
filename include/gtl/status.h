/**
 * @file status.h
 * @brief Status codes, their names, and the per-thread detail message.
 *
 * Every fallible libgtl function returns a ::gtl_status. ::GTL_STATUS_OK is 0
 * and every error is a small positive value. When a call fails:
 *  - every `out_*` parameter is set to NULL or 0, so nothing needs cleaning up;
 *  - the objects the call was given are left as they were;
 *  - gtl_last_error() describes what went wrong, in one English sentence.
 *
 * The library never aborts, exits, or prints because of bad input.
 *
 * How the per-function lists read: the documentation of every function that
 * returns a ::gtl_status lists, one `@retval` per status, every status it can
 * return and when. They were checked against the implementation (lib/api and
 * what it calls); test/docs checks that no list is missing. Two conventions:
 *  - ::GTL_STATUS_INTERNAL is listed wherever a consistency check on the
 *    function's path exists; it always means a libgtl bug.
 *  - A few checks in lower layers guard against libgtl misusing its own
 *    objects (for example "parameter set already finalized") and report
 *    ::GTL_STATUS_BAD_STATE. Only a libgtl bug can trip them, so they are not
 *    listed per function: a status a function does not list is a bug to report.
 *  - ::GTL_STATUS_BACKEND and ::GTL_STATUS_UNSUPPORTED on compute calls come
 *    from oneDNN (an error, or no kernel for an operation on this CPU).
 *
 * Usage:
 * @code
 *   gtl_status st = gtl_set_num_threads(0);
 *   if (st != GTL_STATUS_OK)
 *       fprintf(stderr, "%s: %s\n", gtl_strerror(st), gtl_last_error());
 * @endcode
 */
#ifndef GTL_STATUS_H
#define GTL_STATUS_H

#include "gtl/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * The result of a libgtl call.
 *
 * Values are explicit and append-only: they never change within a major
 * version, so they may be stored or sent across process boundaries.
 */
typedef enum gtl_status {
    /** The call succeeded. */
    GTL_STATUS_OK = 0,
    /** An argument was invalid: NULL where an object is required, a size,
     *  shape or label out of range, a buffer too small, a NaN in input data. */
    GTL_STATUS_INVALID_ARG = 1,
    /** A memory allocation failed. Nothing was changed. */
    GTL_STATUS_OUT_OF_MEMORY = 2,
    /** The call is not valid in the object's current state (for example a
     *  backward pass before any forward pass). */
    GTL_STATUS_BAD_STATE = 3,
    /** A file could not be opened, read or written. */
    GTL_STATUS_IO = 4,
    /** A file or buffer is not in the expected format, is corrupt or truncated. */
    GTL_STATUS_FORMAT = 5,
    /** The compute backend (oneDNN) reported an error. */
    GTL_STATUS_BACKEND = 6,
    /** The request is valid but not supported by this build or this CPU. */
    GTL_STATUS_UNSUPPORTED = 7,
    /** A computation produced NaN or infinity; parameters were left unchanged. */
    GTL_STATUS_NUMERIC = 8,
    /** A callback asked the library to stop; the object is in a consistent state. */
    GTL_STATUS_CANCELLED = 9,
    /** A bug in libgtl: an internal invariant did not hold. Please report it. */
    GTL_STATUS_INTERNAL = 10
    /* New values are appended here; retired values stay as comments. */
} gtl_status;

/**
 * Returns the name of a status as a short English phrase, e.g. "invalid argument".
 *
 * @param[in] status any value; unknown values give "unknown status".
 * @return a static string; never NULL. This call cannot fail.
 *
 * Ownership: the string is static; do not free it.
 * Thread safety: safe from any thread at any time.
 */
GTL_API const char *gtl_strerror(gtl_status status);

/**
 * Returns the detail message of the last failed libgtl call on this thread.
 *
 * The message is one sentence naming the argument or file at fault, for
 * example "gtl_set_num_threads: n_threads must be in [1, 4096] (got 0)". Every
 * function that returns a ::gtl_status clears it on entry, so after such a call
 * succeeds it is the empty string. gtl_strerror(), gtl_last_error() and the
 * version functions leave it alone, so both may be passed to one printf in any
 * order. It is never NULL.
 *
 * @return a thread-local string; never NULL. This call cannot fail.
 *
 * Ownership: the library owns the storage. It stays valid until the next
 *   libgtl call on the same thread; copy it to keep it.
 * Thread safety: each thread has its own message.
 */
GTL_API const char *gtl_last_error(void);

#ifdef __cplusplus
}
#endif

#endif /* GTL_STATUS_H */
