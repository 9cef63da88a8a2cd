/* gtl: the GTL head (encoder, disturbance estimator, generator, classifier)
 * and its two losses, built from ops on the tape. See docs/method.md.
 *
 * Parameters live in two parameter sets:
 *   body: encoder.*, estimator.*, generator.*   (stages B1, N1)
 *   cls:  classifier.* and the center-loss centers (stages B2, N2; rebuilt
 *         with a new class count for each novel task)
 * Batch-norm running statistics are buffers beside them (saved in checkpoints).
 *
 * A frozen module runs in evaluation mode (dropout off, batch norm on running
 * statistics) and records nothing on the tape. */
#ifndef GTL__HEAD_H
#define GTL__HEAD_H

#include "core/rng.h"
#include "ops/ops.h"

typedef struct gtl__head_config {
    int64_t feat_dim;      /* F: backbone feature size */
    int64_t hidden;        /* H */
    int64_t concept_dim;   /* Nc */
    int64_t disturb_dim;   /* Nm */
    int64_t n_domains;     /* d */
    int64_t n_classes;     /* C of the current classifier */
    bool estimator;        /* false: ablation, z~_m = z_m */
    float dropout;         /* encoder dropout (0.5) */
    float bn_momentum;     /* 0.1, PyTorch convention */
    float bn_eps;          /* 1e-5 */
    float beta;            /* weight of |KL - C_t| (1) */
    float c_max;           /* capacity ceiling (20) */
    float c_iters;         /* T_c (5000) */
    float triplet_margin;  /* 0.3 */
    float w_ce, w_triplet, w_center; /* 1, 1, 1 */
} gtl__head_config;

void gtl__head_config_default(gtl__head_config *cfg);
/* INVALID_ARG with a message for out-of-range sizes. */
gtl_status gtl__head_config_check(const gtl__head_config *cfg);

/* Indices of the parameters in their sets. */
enum {
    GTL__P_ENC_FC_W, GTL__P_ENC_FC_B, GTL__P_ENC_BN_W, GTL__P_ENC_BN_B,
    GTL__P_ENC_MU_W, GTL__P_ENC_MU_B, GTL__P_ENC_LV_W, GTL__P_ENC_LV_B,
    GTL__P_EST_GATE_W, GTL__P_EST_GATE_B, GTL__P_EST_AD_W, GTL__P_EST_AD_B,
    GTL__P_EST_FUSE_W, GTL__P_EST_FUSE_B,
    GTL__P_GEN_FC1_W, GTL__P_GEN_FC1_B, GTL__P_GEN_BN_W, GTL__P_GEN_BN_B,
    GTL__P_GEN_FC2_W, GTL__P_GEN_FC2_B,
    GTL__P_BODY_COUNT
};
enum {
    GTL__P_CLS_PROJ_W, GTL__P_CLS_BN_W, GTL__P_CLS_BN_B, GTL__P_CLS_FC_W, GTL__P_CLS_CENTERS,
    GTL__P_CLS_COUNT
};
/* Module groups, for freezing. */
typedef enum gtl__module {
    GTL__MOD_ENCODER = 0,
    GTL__MOD_ESTIMATOR = 1,
    GTL__MOD_GENERATOR = 2,
    GTL__MOD_CLASSIFIER = 3,
    GTL__MOD_COUNT = 4
} gtl__module;

/* Batch-norm running statistics: mean then var, per BN layer. */
typedef struct gtl__bn_stats {
    float *mean;
    float *var;
    int64_t n;
} gtl__bn_stats;

typedef struct gtl__head {
    gtl__head_config cfg;
    gtl__paramset body;
    gtl__paramset cls;
    gtl__bn_stats enc_bn, gen_bn, cls_bn;
    bool frozen[GTL__MOD_COUNT];
} gtl__head;

/* Allocates and initialises every parameter (PyTorch's default Linear init:
 * U(-1/sqrt(in), 1/sqrt(in)) for weights and biases; BN weight 1, bias 0;
 * classifier weight N(0, 0.001); centers N(0, 1)). */
gtl_status gtl__head_init(gtl__head *head, const gtl__head_config *cfg, gtl__rng *rng);
void gtl__head_fini(gtl__head *head);
/* Replaces the classifier with a fresh one for n_classes classes. On failure
 * the old classifier is kept. */
gtl_status gtl__head_reset_classifier(gtl__head *head, int64_t n_classes, gtl__rng *rng);
/* Freezes or unfreezes a module (no gradients, evaluation mode). */
void gtl__head_set_frozen(gtl__head *head, gtl__module mod, bool frozen);

/* ---- forward pieces (all on the tape; `train` = training mode of that
 * module unless it is frozen) ---- */

typedef struct gtl__enc_out {
    gtl__tensor *mu, *logvar;  /* (N, Nc+Nm) */
    gtl__tensor *z;            /* sample (training) or mu */
    gtl__tensor *z_c, *z_m;    /* slices of z */
} gtl__enc_out;

gtl_status gtl__head_encode(gtl__head *head, gtl__tape *tape, gtl__tensor *x, bool sample,
                            gtl__enc_out *out);
/* z~_m from x and z_m (identity when the estimator is off). Also returns the
 * gate (N, d) when gate_out is not NULL (NULL when off). */
gtl_status gtl__head_disturb(gtl__head *head, gtl__tape *tape, gtl__tensor *x,
                             gtl__tensor *z_m, gtl__tensor **out_zt, gtl__tensor **gate_out);
gtl_status gtl__head_generate(gtl__head *head, gtl__tape *tape, gtl__tensor *z_c,
                              gtl__tensor *zt_m, gtl__tensor **out_xhat);
/* f = W_r z_c (N, F) and logits (N, C). */
gtl_status gtl__head_classify(gtl__head *head, gtl__tape *tape, gtl__tensor *z_c,
                              gtl__tensor **out_f, gtl__tensor **out_logits);

/* ---- losses ---- */

/* Statistics of a step, in this order (the public GTL_STAT_* indices). */
enum {
    GTL__STAT_LOSS = 0,
    GTL__STAT_MSE = 1,
    GTL__STAT_KL = 2,
    GTL__STAT_CAPACITY = 3,
    GTL__STAT_CE = 4,
    GTL__STAT_TRIPLET = 5,
    GTL__STAT_CENTER = 6,
    GTL__STAT_ACCURACY = 7,
    GTL__STAT_GRAD_NORM = 8,
    GTL__STAT_LR = 9,
    GTL__STAT_COUNT = 10
};

/* L_rep = MSE(x_hat, x) + beta |KL - C_t|, C_t = min(C_max, c0 + r t / T_c)
 * (c0 = 0 in B1; N1 may start higher, docs/method.md). With labels (not NULL)
 * the classification term gamma CE(classifier(z_c), y) is added, z_c the
 * sampled concept the generator reads (stats: CE and ACCURACY too). */
gtl_status gtl__head_rep_loss(gtl__head *head, gtl__tape *tape, gtl__tensor *x, double step,
                              float r, double c0, const int64_t *labels, float gamma,
                              gtl__tensor **out_loss, float *stats);
/* L_cls = w_ce CE + w_tri triplet(f) + w_center center(f); z_c = mu_c, or a
 * reparameterised sample when sample_z (and the encoder trains). */
gtl_status gtl__head_cls_loss(gtl__head *head, gtl__tape *tape, gtl__tensor *x,
                              const int64_t *labels, bool sample_z, gtl__tensor **out_loss,
                              float *stats);
/* Evaluation: probabilities (N, C) into dst. */
gtl_status gtl__head_predict(gtl__head *head, gtl__tape *tape, gtl__tensor *x,
                             gtl__tensor **out_probs);

#endif /* GTL__HEAD_H */
