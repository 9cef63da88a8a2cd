/* Status names and the thread-local detail message. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"
#include "core/status_list.h"

/* The public enum and the X-macro list must agree value by value. */
#define GTL__CHECK_STATUS(name, value, msg) \
    GTL_STATIC_ASSERT(GTL_STATUS_##name == (value), "status list out of step: " #name);
GTL__STATUS_LIST(GTL__CHECK_STATUS)
#undef GTL__CHECK_STATUS

#define GTL__ERROR_CAP 512
static _Thread_local char error_message[GTL__ERROR_CAP];

const char *gtl_strerror(gtl_status status)
{
    switch (status) {
#define GTL__STATUS_CASE(name, value, msg) \
    case GTL_STATUS_##name:                \
        return msg;
        GTL__STATUS_LIST(GTL__STATUS_CASE)
#undef GTL__STATUS_CASE
    }
    return "unknown status";
}

const char *gtl_last_error(void)
{
    return error_message;
}

const char *gtl__error_message(void)
{
    return error_message;
}

void gtl__clear_error(void)
{
    error_message[0] = '\0';
}

gtl_status gtl__error(gtl_status st, const char *fmt, ...)
{
    /* Format into a scratch buffer first: fmt's arguments may point at the
     * current message (wrapping an inner error with context). */
    char tmp[GTL__ERROR_CAP];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    memcpy(error_message, tmp, sizeof tmp);
    if (gtl__log_enabled(GTL_LOG_DEBUG))
        gtl__log(GTL_LOG_DEBUG, "%s: %s", gtl_strerror(st), error_message);
    return st;
}

#ifndef NDEBUG
void gtl__assert_fail(const char *expr, const char *file, int line)
{
    /* Debug builds only: a failed invariant is a libgtl bug, and stopping at
     * it is what a developer wants. Release builds compile asserts out. */
    fprintf(stderr, "libgtl: assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}
#endif
