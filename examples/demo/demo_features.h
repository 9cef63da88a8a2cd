/* demo_features: backbone training, feature extraction and caching. */
#ifndef GTL_DEMO_FEATURES_H
#define GTL_DEMO_FEATURES_H

#include "demo.h"

/* Training of the RESNET_SMALL backbone from scratch on the base classes'
 * RGB images: by default the supervised contrastive loss on all base classes
 * (docs/demo.md, "The backbone levers"). */
#define DEMO_BB_STEPS 600
typedef struct demo_bb_opts {
    int64_t steps;        /* optimizer steps (the budget) */
    int64_t batch;        /* images per step */
    float lr;             /* peak learning rate */
    float weight_decay;
    int cross_style;      /* batches of 16 classes x 4 views drawn across the 3 RGB styles */
    float edge_prob;      /* probability that a view is replaced by its edge map */
    uint32_t aug_flags;   /* gtl_augment flags of every training view */
    uint64_t seed;
    gtl_optim_kind optimizer;
    gtl_backbone_loss loss; /* GTL_BACKBONE_LOSS: cross-entropy, supervised contrastive, both */
    float temperature;      /* of the contrastive loss */
    int64_t max_classes;  /* > 0: train on that many base classes only (more epochs per class
                             within the step budget); chosen by a hash of the names */
    int64_t eval_every;   /* > 0: nearest-centroid accuracy on the DEMO_VAL classes every
                             that many steps (and at the end); not part of the cache key */
} demo_bb_opts;

void demo_bb_opts_default(demo_bb_opts *o);
/* A hash of the options and the data: the name of the cached backbone. */
uint64_t demo_bb_opts_key(const demo_bb_opts *o, uint64_t data_key);
/* Trains a backbone; saves it to save_path (may be NULL). 0 or -1. */
int demo_backbone_train(const demo_data *d, const demo_bb_opts *o, const char *save_path,
                        gtl_backbone **out, double *out_seconds);

/* Features of every image (row i = image i, un-augmented) followed by
 * n_views augmented views of each novel image (rows view_row[i] ..
 * view_row[i] + n_views - 1; view_row[i] = -1 for other images). */
typedef struct demo_feats {
    int64_t dim;       /* F */
    int64_t n_rows;
    int64_t n_views;   /* V */
    float *x;          /* (n_rows, F) */
    int64_t *view_row; /* (N) */
    int cached;        /* loaded from the cache */
    double seconds;    /* extraction time when computed */
} demo_feats;

/* With bb: backbone features; without: raw pixels at raw_size (3 x raw_size^2
 * values, CLIP-normalised, as gtl_image_load gives them). key identifies the
 * backbone and data; cache_path (may be NULL) is read when its key matches
 * and written otherwise. 0 or -1. */
int demo_features_compute(const demo_data *d, gtl_backbone *bb, int32_t raw_size,
                          int64_t n_views, uint64_t key, const char *cache_path,
                          const char *label, demo_feats *out);
void demo_feats_free(demo_feats *f);

#endif /* GTL_DEMO_FEATURES_H */
