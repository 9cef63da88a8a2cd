/* io/sha256: SHA-256 (FIPS 180-4), incremental. Used for content keys of the
 * backbone feature cache (image bytes, backbone weights); a strong hash so a
 * collision cannot silently return another image's features. */
#ifndef GTL__IO_SHA256_H
#define GTL__IO_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define GTL__SHA256_SIZE 32

typedef struct gtl__sha256 {
    uint32_t h[8];
    uint64_t n_bytes;     /* total bytes hashed so far */
    uint8_t buf[64];      /* pending partial block */
    size_t n_buf;
} gtl__sha256;

void gtl__sha256_init(gtl__sha256 *s);
void gtl__sha256_update(gtl__sha256 *s, const void *data, size_t n);
void gtl__sha256_final(gtl__sha256 *s, uint8_t out[GTL__SHA256_SIZE]);
/* One-shot digest of a buffer. */
void gtl__sha256_digest(const void *data, size_t n, uint8_t out[GTL__SHA256_SIZE]);

#endif /* GTL__IO_SHA256_H */
