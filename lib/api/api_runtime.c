/* Public runtime functions: version, threads, build information. */
#include <omp.h>
#include <stdio.h>
#include <string.h>

#include "core/core.h"
#include "dnnl/ctx.h"
#include "gtl/version.h"

uint32_t gtl_version_number(void)
{
    return GTL_VERSION_NUMBER;
}

const char *gtl_version_string(void)
{
    return GTL_VERSION_STRING;
}

gtl_status gtl_set_num_threads(int32_t n_threads)
{
    gtl__clear_error();
    if (n_threads < 1 || n_threads > 4096)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "gtl_set_num_threads: n_threads must be in [1, 4096] (got %d)",
                          (int)n_threads);
    omp_set_num_threads(n_threads);
    return GTL_STATUS_OK;
}

gtl_status gtl_num_threads(int32_t *out_n_threads)
{
    gtl__clear_error();
    if (out_n_threads == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_num_threads: out_n_threads is NULL");
    *out_n_threads = (int32_t)omp_get_max_threads();
    return GTL_STATUS_OK;
}

gtl_status gtl_cpu_has_bf16(int32_t *out_supported)
{
    gtl__clear_error();
    if (out_supported == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_cpu_has_bf16: out_supported is NULL");
    *out_supported = gtl__dnnl_has_bf16() ? 1 : 0;
    return GTL_STATUS_OK;
}

gtl_status gtl_build_info(char *dst, size_t dst_capacity, size_t *out_len)
{
    gtl__clear_error();
    if (out_len != NULL)
        *out_len = 0;
    if (dst == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_build_info: dst is NULL");
    char dv[64];
    gtl__dnnl_version_string(dv, sizeof dv);
    char buf[512];
    int n = snprintf(buf, sizeof buf, "libgtl %s; oneDNN %s; isa %s; bf16 %s; threads %d",
                     GTL_VERSION_STRING, dv, gtl__dnnl_isa_name(),
                     gtl__dnnl_has_bf16() ? "yes" : "no", omp_get_max_threads());
    if (n < 0 || (size_t)n >= sizeof buf)
        return gtl__error(GTL_STATUS_INTERNAL, "gtl_build_info: formatting failed");
    if ((size_t)n + 1 > dst_capacity)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "gtl_build_info: dst_capacity %zu is too small (need %d)",
                          dst_capacity, n + 1);
    memcpy(dst, buf, (size_t)n + 1);
    if (out_len != NULL)
        *out_len = (size_t)n;
    return GTL_STATUS_OK;
}
