/* Allocation through the host's hooks, with live-byte accounting. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static void *default_malloc(void *ud, size_t size)
{
    (void)ud;
    return malloc(size);
}

static void *default_realloc(void *ud, void *ptr, size_t size)
{
    (void)ud;
    return realloc(ptr, size);
}

static void default_free(void *ud, void *ptr)
{
    (void)ud;
    free(ptr);
}

static gtl_malloc_fn hook_malloc = default_malloc;
static gtl_realloc_fn hook_realloc = default_realloc;
static gtl_free_fn hook_free = default_free;
static void *hook_ud;

static atomic_uint_least64_t live_bytes;
static atomic_uint_least64_t live_blocks;
static atomic_uint_least64_t n_calls;

/* Each block carries a 16-byte header with its size, so frees can be counted
 * and realloc can account the difference. */
#define HDR 16

gtl_status gtl_set_allocator(gtl_malloc_fn malloc_fn, gtl_realloc_fn realloc_fn,
                             gtl_free_fn free_fn, void *user_data)
{
    gtl__clear_error();
    int n_null = (malloc_fn == NULL) + (realloc_fn == NULL) + (free_fn == NULL);
    if (n_null != 0 && n_null != 3)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "gtl_set_allocator: give all three functions or none");
    if (atomic_load(&live_blocks) != 0)
        return gtl__error(GTL_STATUS_BAD_STATE,
                          "gtl_set_allocator: libgtl still holds %llu blocks from the "
                          "current allocator; destroy all objects first",
                          (unsigned long long)atomic_load(&live_blocks));
    if (n_null == 3) {
        hook_malloc = default_malloc;
        hook_realloc = default_realloc;
        hook_free = default_free;
        hook_ud = NULL;
    } else {
        hook_malloc = malloc_fn;
        hook_realloc = realloc_fn;
        hook_free = free_fn;
        hook_ud = user_data;
    }
    return GTL_STATUS_OK;
}

gtl_status gtl_memory_in_use(uint64_t *out_bytes, uint64_t *out_blocks)
{
    gtl__clear_error();
    if (out_bytes != NULL)
        *out_bytes = 0;
    if (out_blocks != NULL)
        *out_blocks = 0;
    if (out_bytes == NULL || out_blocks == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_memory_in_use: NULL out pointer");
    *out_bytes = atomic_load(&live_bytes);
    *out_blocks = atomic_load(&live_blocks);
    return GTL_STATUS_OK;
}

uint64_t gtl__alloc_count(void)
{
    return atomic_load(&n_calls);
}

void *gtl__malloc(size_t size)
{
    atomic_fetch_add(&n_calls, 1);
    if (size > SIZE_MAX - HDR)
        return NULL;
    unsigned char *p = hook_malloc(hook_ud, size + HDR);
    if (p == NULL)
        return NULL;
    memcpy(p, &size, sizeof size);
    atomic_fetch_add(&live_bytes, size);
    atomic_fetch_add(&live_blocks, 1);
    return p + HDR;
}

void *gtl__calloc(size_t n, size_t size)
{
    size_t total;
    if (!gtl__mul_size(n, size, &total))
        return NULL;
    void *p = gtl__malloc(total);
    if (p != NULL)
        memset(p, 0, total);
    return p;
}

void *gtl__realloc(void *ptr, size_t size)
{
    if (ptr == NULL)
        return gtl__malloc(size);
    atomic_fetch_add(&n_calls, 1);
    if (size > SIZE_MAX - HDR)
        return NULL;
    unsigned char *base = (unsigned char *)ptr - HDR;
    size_t old;
    memcpy(&old, base, sizeof old);
    unsigned char *p = hook_realloc(hook_ud, base, size + HDR);
    if (p == NULL)
        return NULL;
    memcpy(p, &size, sizeof size);
    atomic_fetch_sub(&live_bytes, old);
    atomic_fetch_add(&live_bytes, size);
    return p + HDR;
}

void gtl__free(void *ptr)
{
    if (ptr == NULL)
        return;
    unsigned char *base = (unsigned char *)ptr - HDR;
    size_t old;
    memcpy(&old, base, sizeof old);
    atomic_fetch_sub(&live_bytes, old);
    atomic_fetch_sub(&live_blocks, 1);
    hook_free(hook_ud, base);
}

/* Aligned blocks: over-allocate by 64 and keep the offset just before the
 * aligned pointer. */
void *gtl__malloc_aligned(size_t size)
{
    if (size > SIZE_MAX - 64)
        return NULL;
    unsigned char *raw = gtl__malloc(size + 64);
    if (raw == NULL)
        return NULL;
    uintptr_t a = ((uintptr_t)raw + 64) & ~(uintptr_t)63;
    unsigned char *p = (unsigned char *)a;
    p[-1] = (unsigned char)(p - raw);
    return p;
}

void *gtl__calloc_aligned(size_t size)
{
    void *p = gtl__malloc_aligned(size);
    if (p != NULL)
        memset(p, 0, size);
    return p;
}

void gtl__free_aligned(void *ptr)
{
    if (ptr == NULL)
        return;
    unsigned char *p = ptr;
    gtl__free(p - p[-1]);
}
