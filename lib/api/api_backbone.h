/* The struct behind the public gtl_backbone handle and the small table of
 * functions through which it drives an architecture (the CLIP ViT in
 * api_backbone_vit.c, the residual CNN in api_backbone_cnn.c).
 *
 * Parameters: one paramset per backbone holds the network's parameters
 * (indices 0 .. n_net_params - 1, a prefix of the blob), then, once
 * GTL_BACKBONE_NUM_CLASSES >= 2, the supervised head "head.weight" (C, F) and
 * "head.bias" (C). Changing the class count rebuilds the paramset (a new
 * network of the same configuration, the network's values copied). State that
 * is not trained but changes the features (the CNN's batch-norm running
 * statistics) lives in the architecture's buffer paramset. */
#ifndef GTL__API_BACKBONE_H
#define GTL__API_BACKBONE_H

#include "core/rng.h"
#include "gtl/backbone.h"
#include "io/ckpt.h"
#include "io/safetensors.h"
#include "io/sha256.h"
#include "tape/tape.h"

#define GTL__BB_NKEYS 11

typedef struct gtl__bb_arch gtl__bb_arch;

struct gtl_backbone {
    const gtl__bb_arch *arch;
    void *net;                  /* the architecture's network, owned */
    gtl__paramset *ps;          /* owned: network parameters, then the head */
    int64_t n_net_params;       /* network tensors: paramset indices 0 .. n - 1 */
    int64_t head_w, head_b;     /* head indices, -1 without a head */
    int64_t iv[GTL__BB_NKEYS];  /* integer settings by gtl_backbone_param */
    float fv[GTL__BB_NKEYS];    /* f32 settings (TEMPERATURE, SUPCON_WEIGHT) */
    gtl__rng rng;               /* initialisation, augmentation, dropout */
    gtl__ctx *ctx;
    gtl__tape *tape;
    bool fresh;                 /* weights are still the initialisation of SEED */
    bool sum_valid;             /* checksum describes the current weights */
    uint8_t checksum[GTL__SHA256_SIZE];
    char *cache_dir;            /* owned, or NULL */
    uint64_t n_cache_writes;    /* makes temporary cache file names unique */
};

/* What the generic code needs from an architecture. `net` is the
 * architecture's own struct; every function that returns a status sets the
 * error message. */
struct gtl__bb_arch {
    const char *name;            /* stored in checkpoints ("vit", "cnn") */
    bool has_feature_parts;      /* GTL_BACKBONE_FEATURE_PARTS applies */
    bool has_bf16;               /* GTL_BACKBONE_BF16 applies */
    int64_t default_trainable;   /* -1: all blocks/stages; else that many */
    /* A network with the configuration of `like`, its parameters added to ps
     * (not finalized). */
    gtl_status (*create_like)(const void *like, gtl__paramset *ps, void **out_net);
    /* The network described by a checkpoint's metadata (FORMAT when it is
     * missing or invalid), parameters added to ps (not finalized). */
    gtl_status (*create_from_ckpt)(gtl__ckpt_reader *r, const char *path, gtl__paramset *ps,
                                   void **out_net);
    void (*destroy)(void *net);
    /* Fresh random weights (ps finalized). */
    gtl_status (*init_weights)(void *net, gtl__rng *rng);
    int64_t (*image_size)(const void *net);
    /* F for a FEATURE_PARTS value (ignored where it does not apply). */
    int64_t (*feature_dim)(const void *net, int64_t parts);
    /* Largest TRAINABLE_BLOCKS value. */
    int64_t (*max_trainable)(const void *net);
    /* The last k blocks or stages train, the rest is frozen. */
    gtl_status (*set_trainable)(void *net, int64_t k);
    /* Untrained state outside the paramset (finalized), or NULL. */
    gtl__paramset *(*buffers)(void *net);
    /* Features on bb->tape (training or inference mode as the caller set it):
     * images (B, 3, S, S) -> out (B, F). */
    gtl_status (*forward)(gtl_backbone *bb, gtl__tensor *images, gtl__tensor **out);
    /* Inference features of n preprocessed images into dst (n, F). */
    gtl_status (*infer)(gtl_backbone *bb, const float *images, int64_t n, float *dst);
    /* The parameters changed (training, loading, re-initialisation). */
    void (*params_changed)(void *net);
    /* The configuration as checkpoint metadata, and into a hash. */
    gtl_status (*save_config)(const void *net, gtl__ckpt_writer *w);
    void (*hash_config)(const void *net, gtl__sha256 *s);
};

extern const gtl__bb_arch gtl__bb_arch_vit;
extern const gtl__bb_arch *const gtl__bb_arch_cnn;

/* ---- shared by the api_backbone*.c files ---- */

/* A backbone shell: settings at their defaults, context and tape, no
 * network yet. */
gtl_status gtl__bb_alloc(gtl_backbone **out_bb);
/* Installs a network whose parameters are in ps (not finalized): adds the
 * head for n_classes >= 2, finalizes, and takes ownership of both. On
 * failure net and ps are destroyed. */
gtl_status gtl__bb_install(gtl_backbone *bb, const gtl__bb_arch *arch, void *net,
                           gtl__paramset *ps, int64_t n_classes);
/* An empty heap paramset, and its release (NULL is fine). */
gtl_status gtl__bb_new_paramset(gtl__paramset **out_ps);
void gtl__bb_paramset_free(gtl__paramset *ps);
/* The weights changed: drops the checksum and tells the architecture. */
void gtl__bb_params_changed(gtl_backbone *bb);
/* The backbone checksum: SHA-256 of the architecture, its configuration,
 * the network's parameters and buffers (not the head). Computed on demand. */
const uint8_t *gtl__bb_checksum(gtl_backbone *bb);
/* Inference of n >= 1 checked images in chunks of BATCH_SIZE. */
gtl_status gtl__bb_infer(gtl_backbone *bb, const float *images, int64_t n, float *dst);
int64_t gtl__bb_feature_dim(const gtl_backbone *bb);

/* Loads a CLIP vision tower from a safetensors file (Hugging Face or OpenAI
 * names, configuration inferred from the shapes) into bb (a shell). */
gtl_status gtl__bb_vit_load_safetensors(gtl_backbone *bb, gtl__safetensors *f,
                                        const char *path);
/* A ViT or CNN network from a preset into ps (not finalized). */
gtl_status gtl__bb_vit_create(gtl_backbone_preset preset, gtl__paramset *ps, void **out_net);
gtl_status gtl__bb_cnn_create(gtl_backbone_preset preset, gtl__paramset *ps, void **out_net);

#endif /* GTL__API_BACKBONE_H */
