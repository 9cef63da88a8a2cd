/* Logging to the host's callback; silent by default. */
#include <stdarg.h>
#include <stdio.h>

#include "core/core.h"

static gtl_log_fn log_fn;
static void *log_ud;
static gtl_log_level log_max = GTL_LOG_WARN;

gtl_status gtl_set_log_callback(gtl_log_fn fn, void *user_data, gtl_log_level max_level)
{
    gtl__clear_error();
    if ((int)max_level < GTL_LOG_ERROR || (int)max_level > GTL_LOG_DEBUG)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "gtl_set_log_callback: max_level %d is not a gtl_log_level",
                          (int)max_level);
    log_fn = fn;
    log_ud = user_data;
    log_max = max_level;
    return GTL_STATUS_OK;
}

bool gtl__log_enabled(gtl_log_level level)
{
    return log_fn != NULL && level <= log_max;
}

void gtl__log(gtl_log_level level, const char *fmt, ...)
{
    gtl_log_fn fn = log_fn;
    if (fn == NULL || level > log_max)
        return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    fn(log_ud, level, buf);
}
