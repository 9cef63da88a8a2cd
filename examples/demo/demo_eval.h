/* demo_eval: the methods and protocols of the demo, on libgtl's evaluator
 * (include/gtl/eval.h). */
#ifndef GTL_DEMO_EVAL_H
#define GTL_DEMO_EVAL_H

#include "demo.h"
#include "demo_features.h"

/* Protocols (support -> query modalities). */
enum { DEMO_P_CFSL = 0, DEMO_P_R2S = 1, DEMO_P_S2R = 2, DEMO_N_PROTOCOLS = 3 };

typedef struct demo_protocol {
    const char *id;        /* "cfsl", "rgb2sketch", "sketch2rgb" */
    const char *name;      /* for tables */
    uint32_t support_mask; /* GTL_MODALITY_BIT()s */
    uint32_t query_mask;
    int64_t q_query;       /* queries per class in an episode */
} demo_protocol;

extern const demo_protocol demo_protocols[DEMO_N_PROTOCOLS];

/* One evaluation setting: protocol, shots, episodic or all-way. */
typedef struct demo_setting {
    int32_t protocol;
    int32_t shots;
    int32_t all_way;
} demo_setting;

/* Method kinds. */
typedef enum demo_kind {
    DEMO_M_NC = 0,        /* cosine nearest centroid */
    DEMO_M_NC_CENTRED,    /* centred cosine nearest centroid */
    DEMO_M_PROBE,         /* linear probe */
    DEMO_M_GTL,           /* gtl_adapt on a copy of the pretrained head, then predict */
    DEMO_M_GTL_ZC_NC,     /* nearest centroid on the head's z_c (after B1 only, no adapt) */
    DEMO_M_GTL_IMPRINT    /* N1, then N2 with the classifier imprinted from support centroids */
} demo_kind;

/* Overrides of the head's adapt settings for a GTL method (-1 / NaN: keep). */
typedef struct demo_gtl_cfg {
    int64_t n1_epochs, n2_epochs;
    float n1_lr, n2_lr;
    int64_t freeze_generator;
    int64_t cls_use_mean;
    float beta;                /* weight of |KL - C_t| (in N1: the model's setting) */
    float capacity_rate_novel; /* r of C_t in N1 */
    float capacity_start;      /* GTL_MODEL_CAPACITY_START_NOVEL */
    float rep_cls_weight;      /* GTL_MODEL_REP_CLS_WEIGHT (gamma in N1) */
} demo_gtl_cfg;

void demo_gtl_cfg_none(demo_gtl_cfg *c);

typedef struct demo_method {
    const char *id;          /* JSON key */
    const char *name;        /* table row */
    demo_kind kind;
    const demo_feats *feats; /* the features it works on */
    const gtl_dataset *src;  /* novel source set of those features (borrowed) */
    gtl_model *model;        /* pretrained head (GTL kinds; borrowed) */
    demo_gtl_cfg gtl;
    int64_t shots;           /* set per run: support views per image */
    double seconds;          /* time spent in the method, last run */
} demo_method;

/* Per method and setting: mean and CI overall and per query modality. */
typedef struct demo_result {
    int valid;
    double mean, ci;
    double mod_mean[2], mod_ci[2];  /* RGB, sketch (NaN when absent) */
    int64_t n_episodes;
    double seconds;
} demo_result;

/* The novel-class source set of a feature set: every original image of the
 * novel classes whose images could all be loaded (no row all zeros in f nor
 * in `also`, the other feature set, may be NULL), label = class index, modality,
 * pair id = image index (so the callbacks find the augmented views). Same
 * rows, in the same order, for both feature sets when each is the other's
 * `also`. */
gtl_dataset *demo_novel_source(const demo_data *d, const demo_feats *f, const demo_feats *also);
/* 1 if image i's row is all zeros in f (its file could not be loaded). */
int demo_feats_failed(const demo_feats *f, int64_t i);

/* Runs method m on setting s. *list / *list_n hold the episode list: when
 * *list is NULL the episodes are drawn (seeded) and the list is returned in
 * *list (caller frees); otherwise the list is replayed, by `workers` threads
 * with one compute thread each when workers >= 2 (only for methods that do
 * not use m->model other than through gtl_model_clone). 0 or -1. */
int demo_run(demo_method *m, const demo_setting *s, int64_t n_episodes, uint64_t seed,
             int64_t **list, size_t *list_n, demo_result *out, const char *label, int workers);

#endif /* GTL_DEMO_EVAL_H */
