/* Tensor shapes, bf16 conversion and the step arena. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "tensor/tensor.h"

bool gtl__tensor_set_shape(gtl__tensor *t, int32_t nd, const int64_t *ne)
{
    if (nd < 0 || nd > GTL__MAX_DIMS)
        return false;
    int64_t n = 1;
    for (int32_t i = 0; i < nd; i++) {
        if (ne[i] < 0)
            return false;
        if (ne[i] != 0 && n > INT64_MAX / 4 / ne[i])
            return false;
        n *= ne[i];
    }
    for (int32_t i = 0; i < GTL__MAX_DIMS; i++)
        t->ne[i] = i < nd ? ne[i] : 1;
    t->nd = nd;
    t->n = n;
    return true;
}

bool gtl__same_shape(const gtl__tensor *a, const gtl__tensor *b)
{
    if (a->nd != b->nd)
        return false;
    for (int32_t i = 0; i < a->nd; i++)
        if (a->ne[i] != b->ne[i])
            return false;
    return true;
}

const char *gtl__shape_str(const gtl__tensor *t, char *buf, size_t cap)
{
    size_t off = 0;
    off += (size_t)snprintf(buf + off, cap - off, "(");
    for (int32_t i = 0; i < t->nd && off < cap; i++)
        off += (size_t)snprintf(buf + off, cap - off, i ? ", %lld" : "%lld",
                                (long long)t->ne[i]);
    if (off < cap)
        snprintf(buf + off, cap - off, ")");
    return buf;
}

uint16_t gtl__f32_to_bf16(float x)
{
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if (isnan(x))
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fff + ((u >> 16) & 1);
    return (uint16_t)(u >> 16);
}

float gtl__bf16_to_f32(uint16_t x)
{
    uint32_t u = (uint32_t)x << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---- Arena ---- */

struct gtl__arena_chunk {
    gtl__arena_chunk *next;
    size_t cap;
    size_t used;
    /* 64-byte aligned payload follows at data_offset(). */
};

#define CHUNK_HDR 64
#define MIN_CHUNK ((size_t)1 << 16)

void gtl__arena_init(gtl__arena *a)
{
    memset(a, 0, sizeof *a);
}

static void free_chunks(gtl__arena_chunk *c)
{
    while (c != NULL) {
        gtl__arena_chunk *next = c->next;
        gtl__free_aligned(c);
        c = next;
    }
}

void gtl__arena_fini(gtl__arena *a)
{
    free_chunks(a->head);
    memset(a, 0, sizeof *a);
}

void gtl__arena_reset(gtl__arena *a)
{
    if (a->head != NULL && a->head->next != NULL) {
        /* The step outgrew one chunk: drop them all; the next allocation
         * makes a single chunk big enough for the high-water mark. */
        free_chunks(a->head);
        a->head = NULL;
    } else if (a->head != NULL) {
        a->head->used = 0;
    }
    a->used_total = 0;
}

void *gtl__arena_alloc(gtl__arena *a, size_t size)
{
    size_t need = (size + 63) & ~(size_t)63;
    if (need < size)
        return NULL;
    if (need == 0)
        need = 64;
    gtl__arena_chunk *c = a->head;
    if (c == NULL || c->cap - c->used < need) {
        size_t cap = a->high_water > MIN_CHUNK ? a->high_water : MIN_CHUNK;
        if (c != NULL && cap < 2 * c->cap)
            cap = 2 * c->cap;
        if (cap < need)
            cap = need;
        if (cap > SIZE_MAX - CHUNK_HDR)
            return NULL;
        gtl__arena_chunk *nc = gtl__malloc_aligned(CHUNK_HDR + cap);
        if (nc == NULL)
            return NULL;
        nc->next = c;
        nc->cap = cap;
        nc->used = 0;
        a->head = nc;
        a->n_chunk_allocs++;
        c = nc;
    }
    void *p = (unsigned char *)c + CHUNK_HDR + c->used;
    c->used += need;
    a->used_total += need;
    if (a->used_total > a->high_water)
        a->high_water = a->used_total;
    return p;
}
