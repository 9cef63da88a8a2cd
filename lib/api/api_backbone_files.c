/* gtl_backbone_embed_files() and the on-disk feature cache.
 *
 * Files are read once: the bytes are hashed (for the cache) and decoded from
 * memory, preprocessed CLIP-style into a batch buffer, and embedded
 * BATCH_SIZE at a time. A file that fails gets its own status and a zero row;
 * the call goes on with the others.
 *
 * Cache (docs/backbone.md): one small file per (image, backbone,
 * preprocessing), named by its key, "<dir>/<64 hex digits>.feat", where
 *   key = SHA-256("libgtl-feature-cache-v1\0" || SHA-256(file bytes) ||
 *                 backbone checksum || size, mean[3], std[3], FEATURE_PARTS, BF16)
 * and the backbone checksum is the SHA-256 of the architecture, its
 * configuration and every network parameter and buffer (gtl__bb_checksum,
 * recomputed lazily after training or loading). Entry layout, little-endian:
 *   0  "GTLFEAT\0"   8  u32 version (1)   12  u32 F   16  key (32 bytes)
 *   48 F f32 features   48 + 4F  u32 CRC-32 of bytes [0, 48 + 4F)
 * An entry is used only if its size, magic, version, F, key and CRC all
 * check out; anything else is ignored, recomputed and overwritten. Entries
 * are written to a temporary file in the same directory and renamed into
 * place, so readers never see a partial entry (without fsync: after a crash
 * an entry may be empty or torn, which the checks catch). Failing to write
 * an entry is logged, never an error of the call. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "api/api_backbone.h"
#include "io/image.h"

#define CACHE_MAGIC "GTLFEAT"
#define CACHE_VERSION 1u
#define CACHE_HEADER 48

static uint32_t get_le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static void hex(const uint8_t *k, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[k[i] >> 4];
        out[2 * i + 1] = digits[k[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Creates dir and its missing parents. */
static gtl_status make_dirs(const char *dir)
{
    size_t n = strlen(dir);
    char *p = gtl__malloc(n + 1);
    if (p == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "gtl_backbone_set_cache_dir: out of memory");
    memcpy(p, dir, n + 1);
    gtl_status st = GTL_STATUS_OK;
    for (size_t i = 1; i <= n && st == GTL_STATUS_OK; i++) {
        if (p[i] != '/' && p[i] != '\0')
            continue;
        char c = p[i];
        p[i] = '\0';
        if (mkdir(p, 0777) != 0 && errno != EEXIST)
            st = gtl__error(GTL_STATUS_IO, "gtl_backbone_set_cache_dir: cannot create %s: %s", p,
                            strerror(errno));
        p[i] = c;
    }
    gtl__free(p);
    if (st != GTL_STATUS_OK)
        return st;
    struct stat sb;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return gtl__error(GTL_STATUS_IO, "gtl_backbone_set_cache_dir: %s is not a directory",
                          dir);
    if (access(dir, W_OK | X_OK) != 0)
        return gtl__error(GTL_STATUS_IO, "gtl_backbone_set_cache_dir: %s is not writable: %s",
                          dir, strerror(errno));
    return GTL_STATUS_OK;
}

gtl_status gtl_backbone_set_cache_dir(gtl_backbone *backbone, const char *dir)
{
    gtl__clear_error();
    if (backbone == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_backbone_set_cache_dir: backbone is NULL");
    if (dir == NULL) {
        gtl__free(backbone->cache_dir);
        backbone->cache_dir = NULL;
        return GTL_STATUS_OK;
    }
    if (dir[0] == '\0')
        return gtl__error(GTL_STATUS_INVALID_ARG, "gtl_backbone_set_cache_dir: empty path");
    gtl_status st = make_dirs(dir);
    if (st != GTL_STATUS_OK)
        return st;
    size_t n = strlen(dir);
    char *copy = gtl__malloc(n + 1);
    if (copy == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "gtl_backbone_set_cache_dir: out of memory");
    memcpy(copy, dir, n + 1);
    gtl__free(backbone->cache_dir);
    backbone->cache_dir = copy;
    return GTL_STATUS_OK;
}

/* ---- cache entries ------------------------------------------------------- */

static void cache_key(gtl_backbone *bb, const uint8_t file_hash[32],
                      const gtl__image_prep_opts *prep, uint8_t key[32])
{
    static const char tag[] = "libgtl-feature-cache-v1";
    int64_t extra[3] = {prep->size, bb->iv[GTL_BACKBONE_FEATURE_PARTS], bb->iv[GTL_BACKBONE_BF16]};
    gtl__sha256 s;
    gtl__sha256_init(&s);
    gtl__sha256_update(&s, tag, sizeof tag);
    gtl__sha256_update(&s, file_hash, 32);
    gtl__sha256_update(&s, gtl__bb_checksum(bb), GTL__SHA256_SIZE);
    gtl__sha256_update(&s, extra, sizeof extra);
    gtl__sha256_update(&s, prep->mean, sizeof prep->mean);
    gtl__sha256_update(&s, prep->std, sizeof prep->std);
    gtl__sha256_final(&s, key);
}

static int entry_path(const char *dir, const uint8_t key[32], char *out, size_t cap)
{
    char h[65];
    hex(key, 32, h);
    return snprintf(out, cap, "%s/%s.feat", dir, h);
}

/* Fills row (f floats) from the entry for key; false when there is no
 * usable entry. */
static bool cache_get(const char *dir, const uint8_t key[32], int64_t f, float *row,
                      unsigned char *buf)
{
    char path[4096];
    int len = entry_path(dir, key, path, sizeof path);
    if (len < 0 || (size_t)len >= sizeof path)
        return false;
    FILE *fp = fopen(path, "rb");
    if (fp == NULL)
        return false;
    /* One byte more than an entry holds: a longer file is not an entry. */
    size_t size = CACHE_HEADER + 4 * (size_t)f + 4;
    bool ok = fread(buf, 1, size + 1, fp) == size;
    fclose(fp);
    ok = ok && memcmp(buf, CACHE_MAGIC, 8) == 0 && get_le32(buf + 8) == CACHE_VERSION &&
         get_le32(buf + 12) == (uint32_t)f && memcmp(buf + 16, key, 32) == 0 &&
         get_le32(buf + size - 4) == (uint32_t)crc32_z(0, buf, (z_size_t)(size - 4));
    if (!ok) {
        gtl__log(GTL_LOG_INFO, "backbone cache: %s is corrupt or stale; recomputing", path);
        return false;
    }
    for (int64_t i = 0; i < f; i++) {
        uint32_t u = get_le32(buf + CACHE_HEADER + 4 * i);
        memcpy(&row[i], &u, 4);
    }
    return true;
}

static void cache_put(gtl_backbone *bb, const uint8_t key[32], int64_t f, const float *row,
                      unsigned char *buf)
{
    char path[4096], tmp[4096 + 64];
    int len = entry_path(bb->cache_dir, key, path, sizeof path);
    if (len < 0 || (size_t)len >= sizeof path)
        return;
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld.%p.%llu", path, (long)getpid(), (void *)bb,
             (unsigned long long)bb->n_cache_writes++);
    size_t size = CACHE_HEADER + 4 * (size_t)f + 4;
    memcpy(buf, CACHE_MAGIC, 8);
    put_le32(buf + 8, CACHE_VERSION);
    put_le32(buf + 12, (uint32_t)f);
    memcpy(buf + 16, key, 32);
    for (int64_t i = 0; i < f; i++) {
        uint32_t u;
        memcpy(&u, &row[i], 4);
        put_le32(buf + CACHE_HEADER + 4 * i, u);
    }
    put_le32(buf + size - 4, (uint32_t)crc32_z(0, buf, (z_size_t)(size - 4)));
    FILE *fp = fopen(tmp, "wbx");
    bool ok = fp != NULL;
    if (ok) {
        ok = fwrite(buf, 1, size, fp) == size;
        ok = fclose(fp) == 0 && ok;
    }
    if (ok)
        ok = rename(tmp, path) == 0;
    if (!ok) {
        gtl__log(GTL_LOG_WARN, "backbone cache: cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
    }
}

/* ---- embed_files ------------------------------------------------------------ */

typedef struct files_job {
    gtl_backbone *bb;
    const char *const *paths;
    float *dst;
    gtl_status *status;           /* (n) per file */
    int64_t f, per;               /* F, floats per image */
    float *images;                /* (B, 3, S, S) batch being filled */
    float *out;                   /* (B, F) */
    int64_t *rows;                /* (B) file index of each batch slot */
    uint8_t (*keys)[32];          /* (B) cache keys */
    int64_t n_batch;
    unsigned char *entry;         /* one cache entry */
    gtl_status first;             /* status of the first failed file */
    char first_msg[1024];
    int64_t n_failed;
} files_job;

static void file_failed(files_job *j, int64_t i, gtl_status st)
{
    const char *path = j->paths[i];
    const char *msg = gtl__error_message();
    j->status[i] = st;
    memset(j->dst + i * j->f, 0, (size_t)j->f * sizeof(float));
    j->n_failed++;
    gtl__log(GTL_LOG_WARN, "gtl_backbone_embed_files: skipped %s: %s", path, msg);
    if (j->first != GTL_STATUS_OK)
        return;
    j->first = st;
    if (strstr(msg, path) != NULL)
        snprintf(j->first_msg, sizeof j->first_msg, "file %lld: %s", (long long)i, msg);
    else
        snprintf(j->first_msg, sizeof j->first_msg, "file %lld (%s): %s", (long long)i, path,
                 msg);
}

/* Embeds the images collected so far and hands out their rows. */
static void flush(files_job *j)
{
    if (j->n_batch == 0)
        return;
    gtl_status st = j->bb->arch->infer(j->bb, j->images, j->n_batch, j->out);
    for (int64_t k = 0; k < j->n_batch; k++) {
        int64_t i = j->rows[k];
        if (st != GTL_STATUS_OK) {
            file_failed(j, i, st);
            continue;
        }
        memcpy(j->dst + i * j->f, j->out + k * j->f, (size_t)j->f * sizeof(float));
        if (j->bb->cache_dir != NULL)
            cache_put(j->bb, j->keys[k], j->f, j->out + k * j->f, j->entry);
    }
    j->n_batch = 0;
}

/* One file: cache hit, or decoded and preprocessed into the next batch slot. */
static void add_file(files_job *j, int64_t i, const gtl__image_prep_opts *prep)
{
    uint8_t *bytes = NULL;
    size_t n_bytes = 0;
    gtl__image img = {0};
    gtl_status st = gtl__image_read_file(j->paths[i], &bytes, &n_bytes);
    if (st != GTL_STATUS_OK) {
        file_failed(j, i, st);
        return;
    }
    int64_t slot = j->n_batch;
    if (j->bb->cache_dir != NULL) {
        uint8_t file_hash[32];
        gtl__sha256_digest(bytes, n_bytes, file_hash);
        cache_key(j->bb, file_hash, prep, j->keys[slot]);
        if (cache_get(j->bb->cache_dir, j->keys[slot], j->f, j->dst + i * j->f, j->entry)) {
            gtl__free(bytes);
            return;
        }
    }
    st = gtl__image_decode_mem(bytes, n_bytes, j->paths[i], &img);
    gtl__free(bytes);
    if (st == GTL_STATUS_OK)
        st = gtl__image_preprocess(&img, prep, j->images + slot * j->per, j->per);
    gtl__image_fini(&img);
    if (st != GTL_STATUS_OK) {
        file_failed(j, i, st);
        return;
    }
    j->rows[slot] = i;
    j->n_batch++;
    if (j->n_batch == j->bb->iv[GTL_BACKBONE_BATCH_SIZE])
        flush(j);
}

gtl_status gtl_backbone_embed_files(gtl_backbone *backbone, const char *const *paths, int64_t n,
                                    float *dst, size_t capacity, gtl_status *out_status)
{
    const char *fn = "gtl_backbone_embed_files";
    gtl__clear_error();
    if (backbone == NULL || paths == NULL || dst == NULL)
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: NULL argument", fn);
    if (n < 1 || n > ((int64_t)1 << 31))
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: n must be >= 1 (got %lld)", fn,
                          (long long)n);
    for (int64_t i = 0; i < n; i++)
        if (paths[i] == NULL)
            return gtl__error(GTL_STATUS_INVALID_ARG, "%s: path %lld is NULL", fn, (long long)i);
    gtl_backbone *bb = backbone;
    files_job j = {0};
    j.bb = bb;
    j.paths = paths;
    j.dst = dst;
    j.f = gtl__bb_feature_dim(bb);
    if (capacity < (size_t)(n * j.f))
        return gtl__error(GTL_STATUS_INVALID_ARG, "%s: capacity %zu < n * F = %lld", fn,
                          capacity, (long long)(n * j.f));
    int64_t s = bb->arch->image_size(bb->net), bs = bb->iv[GTL_BACKBONE_BATCH_SIZE];
    j.per = 3 * s * s;
    gtl__image_prep_opts prep;
    gtl__image_prep_opts_default(&prep);
    prep.size = s;
    gtl_status st = GTL_STATUS_OK;
    j.status = out_status != NULL ? out_status : gtl__malloc((size_t)n * sizeof(gtl_status));
    j.images = gtl__malloc_aligned((size_t)(bs * j.per) * sizeof(float));
    j.out = gtl__malloc_aligned((size_t)(bs * j.f) * sizeof(float));
    j.rows = gtl__malloc((size_t)bs * sizeof(int64_t));
    j.keys = gtl__malloc((size_t)bs * sizeof *j.keys);
    j.entry = gtl__malloc(CACHE_HEADER + 4 * (size_t)j.f + 5); /* + 1: see cache_get */
    if (j.status == NULL || j.images == NULL || j.out == NULL || j.rows == NULL ||
        j.keys == NULL || j.entry == NULL) {
        st = gtl__error(GTL_STATUS_OUT_OF_MEMORY, "%s: out of memory", fn);
        goto out_free;
    }
    for (int64_t i = 0; i < n; i++)
        j.status[i] = GTL_STATUS_OK;
    for (int64_t i = 0; i < n; i++)
        add_file(&j, i, &prep);
    flush(&j);
    st = j.first;
    if (st != GTL_STATUS_OK)
        gtl__error(st, "%s: %lld of %lld files failed; the first: %s", fn,
                   (long long)j.n_failed, (long long)n, j.first_msg);
    else
        gtl__clear_error();
out_free:
    if (j.status != out_status)
        gtl__free(j.status);
    gtl__free_aligned(j.images);
    gtl__free_aligned(j.out);
    gtl__free(j.rows);
    gtl__free(j.keys);
    gtl__free(j.entry);
    return st;
}
