/* The GTL head: parameters, module forwards, and the two losses. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "head/head.h"

void gtl__head_config_default(gtl__head_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->feat_dim = 1280;
    cfg->hidden = 256;
    cfg->concept_dim = 128;
    cfg->disturb_dim = 64;
    cfg->n_domains = 128;
    cfg->n_classes = 2;
    cfg->estimator = true;
    cfg->dropout = 0.5f;
    cfg->bn_momentum = 0.1f;
    cfg->bn_eps = 1e-5f;
    cfg->beta = 1.0f;
    cfg->c_max = 20.0f;
    cfg->c_iters = 5000.0f;
    cfg->triplet_margin = 0.3f;
    cfg->w_ce = 1.0f;
    cfg->w_triplet = 1.0f;
    cfg->w_center = 1.0f;
}

gtl_status gtl__head_config_check(const gtl__head_config *c)
{
    const int64_t lim = (int64_t)1 << 20;
    if (c->feat_dim < 1 || c->feat_dim > lim || c->hidden < 1 || c->hidden > lim ||
        c->concept_dim < 1 || c->concept_dim > lim || c->disturb_dim < 1 ||
        c->disturb_dim > lim || c->n_domains < 1 || c->n_domains > 65536 || c->n_classes < 1 ||
        c->n_classes > lim)
        return gtl__error(GTL_STATUS_INVALID_ARG,
                          "model config: sizes out of range (F %lld, H %lld, Nc %lld, Nm %lld, "
                          "d %lld, classes %lld)",
                          (long long)c->feat_dim, (long long)c->hidden,
                          (long long)c->concept_dim, (long long)c->disturb_dim,
                          (long long)c->n_domains, (long long)c->n_classes);
    /* The adapters alone hold d * Nm * F floats: refuse what cannot fit. */
    if ((double)c->n_domains * (double)c->disturb_dim * (double)c->feat_dim > 4e9)
        return gtl__error(GTL_STATUS_INVALID_ARG, "model config: d * Nm * F is too large");
    if (!(c->dropout >= 0.0f && c->dropout < 1.0f))
        return gtl__error(GTL_STATUS_INVALID_ARG, "model config: dropout must be in [0, 1)");
    return GTL_STATUS_OK;
}

/* ---- parameters ---- */

typedef struct pdef {
    const char *name;
    int32_t nd;
    int64_t ne[3];
} pdef;

static gtl_status add_all(gtl__paramset *ps, const pdef *defs, int n)
{
    for (int i = 0; i < n; i++) {
        int64_t idx;
        gtl_status st = gtl__paramset_add(ps, defs[i].name, defs[i].nd, defs[i].ne, &idx);
        if (st != GTL_STATUS_OK)
            return st;
        GTL_ASSERT(idx == i);
    }
    return gtl__paramset_finalize(ps);
}

static void init_uniform(gtl__rng *rng, gtl__tensor *t, int64_t fan_in)
{
    float b = 1.0f / sqrtf((float)(fan_in > 0 ? fan_in : 1));
    gtl__rng_fill_uniform(rng, t->data, t->n, -b, b);
}

static void init_const(gtl__tensor *t, float v)
{
    for (int64_t i = 0; i < t->n; i++)
        t->data[i] = v;
}

static gtl_status bn_stats_init(gtl__bn_stats *s, int64_t n)
{
    s->mean = gtl__malloc((size_t)n * 2 * sizeof(float));
    if (s->mean == NULL)
        return gtl__error(GTL_STATUS_OUT_OF_MEMORY, "batch-norm statistics: out of memory");
    s->var = s->mean + n;
    s->n = n;
    for (int64_t i = 0; i < n; i++) {
        s->mean[i] = 0.0f;
        s->var[i] = 1.0f;
    }
    return GTL_STATUS_OK;
}

static void bn_stats_fini(gtl__bn_stats *s)
{
    gtl__free(s->mean);
    memset(s, 0, sizeof *s);
}

static gtl_status cls_init(gtl__paramset *ps, gtl__bn_stats *bn, const gtl__head_config *c,
                           int64_t n_classes, gtl__rng *rng)
{
    int64_t F = c->feat_dim;
    const pdef defs[GTL__P_CLS_COUNT] = {
        {"classifier.proj.weight", 2, {F, c->concept_dim}},
        {"classifier.bn.weight", 1, {F}},
        {"classifier.bn.bias", 1, {F}},
        {"classifier.fc.weight", 2, {n_classes, F}},
        {"classifier.centers", 2, {n_classes, F}},
    };
    gtl__paramset_init(ps);
    gtl_status st = add_all(ps, defs, GTL__P_CLS_COUNT);
    if (st == GTL_STATUS_OK)
        st = bn_stats_init(bn, F);
    if (st != GTL_STATUS_OK) {
        gtl__paramset_fini(ps);
        return st;
    }
    gtl__tensor *p = ps->params;
    init_uniform(rng, &p[GTL__P_CLS_PROJ_W], c->concept_dim);
    init_const(&p[GTL__P_CLS_BN_W], 1.0f);
    init_const(&p[GTL__P_CLS_BN_B], 0.0f);
    gtl__rng_fill_normal(rng, p[GTL__P_CLS_FC_W].data, p[GTL__P_CLS_FC_W].n, 0.0f, 0.001f);
    gtl__rng_fill_normal(rng, p[GTL__P_CLS_CENTERS].data, p[GTL__P_CLS_CENTERS].n, 0.0f, 1.0f);
    return GTL_STATUS_OK;
}

gtl_status gtl__head_init(gtl__head *head, const gtl__head_config *cfg, gtl__rng *rng)
{
    memset(head, 0, sizeof *head);
    gtl_status st = gtl__head_config_check(cfg);
    if (st != GTL_STATUS_OK)
        return st;
    head->cfg = *cfg;
    const gtl__head_config *c = cfg;
    int64_t F = c->feat_dim, H = c->hidden, Z = c->concept_dim + c->disturb_dim,
            M = c->disturb_dim, D = c->n_domains;
    const pdef defs[GTL__P_BODY_COUNT] = {
        {"encoder.fc.weight", 2, {H, F}},
        {"encoder.fc.bias", 1, {H}},
        {"encoder.bn.weight", 1, {H}},
        {"encoder.bn.bias", 1, {H}},
        {"encoder.mu.weight", 2, {Z, H}},
        {"encoder.mu.bias", 1, {Z}},
        {"encoder.logvar.weight", 2, {Z, H}},
        {"encoder.logvar.bias", 1, {Z}},
        {"estimator.gate.weight", 2, {D, F}},
        {"estimator.gate.bias", 1, {D}},
        {"estimator.adapters.weight", 3, {D, M, F}},
        {"estimator.adapters.bias", 2, {D, M}},
        {"estimator.fuse.weight", 2, {M, 2 * M}},
        {"estimator.fuse.bias", 1, {M}},
        {"generator.fc1.weight", 2, {H, Z}},
        {"generator.fc1.bias", 1, {H}},
        {"generator.bn.weight", 1, {H}},
        {"generator.bn.bias", 1, {H}},
        {"generator.fc2.weight", 2, {F, H}},
        {"generator.fc2.bias", 1, {F}},
    };
    gtl__paramset_init(&head->body);
    st = add_all(&head->body, defs, GTL__P_BODY_COUNT);
    if (st != GTL_STATUS_OK)
        goto out_fini;
    /* One row per adapter: only adapters gated on get gradients, and the
     * optimizer skips those that never had one (docs/optimizers.md). */
    st = gtl__paramset_track_rows(&head->body, GTL__P_EST_AD_W, D);
    if (st == GTL_STATUS_OK)
        st = gtl__paramset_track_rows(&head->body, GTL__P_EST_AD_B, D);
    if (st != GTL_STATUS_OK)
        goto out_fini;
    st = bn_stats_init(&head->enc_bn, H);
    if (st != GTL_STATUS_OK)
        goto out_fini;
    st = bn_stats_init(&head->gen_bn, H);
    if (st != GTL_STATUS_OK)
        goto out_fini;
    gtl__tensor *p = head->body.params;
    init_uniform(rng, &p[GTL__P_ENC_FC_W], F);
    init_uniform(rng, &p[GTL__P_ENC_FC_B], F);
    init_const(&p[GTL__P_ENC_BN_W], 1.0f);
    init_const(&p[GTL__P_ENC_BN_B], 0.0f);
    init_uniform(rng, &p[GTL__P_ENC_MU_W], H);
    init_uniform(rng, &p[GTL__P_ENC_MU_B], H);
    init_uniform(rng, &p[GTL__P_ENC_LV_W], H);
    init_uniform(rng, &p[GTL__P_ENC_LV_B], H);
    init_uniform(rng, &p[GTL__P_EST_GATE_W], F);
    init_uniform(rng, &p[GTL__P_EST_GATE_B], F);
    init_uniform(rng, &p[GTL__P_EST_AD_W], F);
    init_uniform(rng, &p[GTL__P_EST_AD_B], F);
    init_uniform(rng, &p[GTL__P_EST_FUSE_W], 2 * M);
    init_uniform(rng, &p[GTL__P_EST_FUSE_B], 2 * M);
    init_uniform(rng, &p[GTL__P_GEN_FC1_W], Z);
    init_uniform(rng, &p[GTL__P_GEN_FC1_B], Z);
    init_const(&p[GTL__P_GEN_BN_W], 1.0f);
    init_const(&p[GTL__P_GEN_BN_B], 0.0f);
    init_uniform(rng, &p[GTL__P_GEN_FC2_W], H);
    init_uniform(rng, &p[GTL__P_GEN_FC2_B], H);
    st = cls_init(&head->cls, &head->cls_bn, c, c->n_classes, rng);
    if (st != GTL_STATUS_OK)
        goto out_fini;
    return GTL_STATUS_OK;

out_fini:
    gtl__head_fini(head);
    return st;
}

void gtl__head_fini(gtl__head *head)
{
    gtl__paramset_fini(&head->body);
    gtl__paramset_fini(&head->cls);
    bn_stats_fini(&head->enc_bn);
    bn_stats_fini(&head->gen_bn);
    bn_stats_fini(&head->cls_bn);
}

gtl_status gtl__head_reset_classifier(gtl__head *head, int64_t n_classes, gtl__rng *rng)
{
    if (n_classes < 1 || n_classes > ((int64_t)1 << 20))
        return gtl__error(GTL_STATUS_INVALID_ARG, "classifier: %lld classes is out of range",
                          (long long)n_classes);
    gtl__paramset ps;
    gtl__bn_stats bn = {0};
    gtl__rng r2 = *rng;
    gtl_status st = cls_init(&ps, &bn, &head->cfg, n_classes, &r2);
    if (st != GTL_STATUS_OK)
        return st;
    if (head->cls.grad != NULL) {
        st = gtl__paramset_alloc_grad(&ps);
        if (st != GTL_STATUS_OK) {
            gtl__paramset_fini(&ps);
            bn_stats_fini(&bn);
            return st;
        }
    }
    *rng = r2;
    gtl__paramset_fini(&head->cls);
    bn_stats_fini(&head->cls_bn);
    head->cls = ps;
    head->cls_bn = bn;
    head->cfg.n_classes = n_classes;
    gtl__head_set_frozen(head, GTL__MOD_CLASSIFIER, head->frozen[GTL__MOD_CLASSIFIER]);
    return GTL_STATUS_OK;
}

void gtl__head_set_frozen(gtl__head *head, gtl__module mod, bool frozen)
{
    head->frozen[mod] = frozen;
    int64_t lo = 0, hi = 0;
    gtl__paramset *ps = &head->body;
    switch (mod) {
    case GTL__MOD_ENCODER: lo = GTL__P_ENC_FC_W; hi = GTL__P_ENC_LV_B; break;
    case GTL__MOD_ESTIMATOR: lo = GTL__P_EST_GATE_W; hi = GTL__P_EST_FUSE_B; break;
    case GTL__MOD_GENERATOR: lo = GTL__P_GEN_FC1_W; hi = GTL__P_GEN_FC2_B; break;
    default: ps = &head->cls; lo = 0; hi = GTL__P_CLS_COUNT - 1; break;
    }
    for (int64_t i = lo; i <= hi; i++)
        gtl__paramset_set_frozen(ps, i, frozen);
}

/* ---- forward ---- */

/* A module trains only when the tape trains and the module is not frozen. */
static bool enter(gtl__head *head, gtl__tape *tape, gtl__module mod)
{
    bool saved = tape->training;
    tape->training = saved && !head->frozen[mod];
    return saved;
}

gtl_status gtl__head_encode(gtl__head *head, gtl__tape *tape, gtl__tensor *x, bool sample,
                            gtl__enc_out *out)
{
    memset(out, 0, sizeof *out);
    gtl__tensor *p = head->body.params;
    const gtl__head_config *c = &head->cfg;
    bool saved = enter(head, tape, GTL__MOD_ENCODER);
    gtl__tensor *h;
    gtl_status st = gtl__op_linear(tape, x, &p[GTL__P_ENC_FC_W], &p[GTL__P_ENC_FC_B],
                                   GTL__ACT_NONE, &h);
    if (st == GTL_STATUS_OK)
        st = gtl__op_batchnorm(tape, h, &p[GTL__P_ENC_BN_W], &p[GTL__P_ENC_BN_B],
                               head->enc_bn.mean, head->enc_bn.var, c->bn_momentum, c->bn_eps, &h);
    if (st == GTL_STATUS_OK)
        st = gtl__op_relu(tape, h, &h);
    if (st == GTL_STATUS_OK)
        st = gtl__op_dropout(tape, h, c->dropout, &h);
    if (st == GTL_STATUS_OK)
        st = gtl__op_linear(tape, h, &p[GTL__P_ENC_MU_W], &p[GTL__P_ENC_MU_B], GTL__ACT_NONE,
                            &out->mu);
    if (st == GTL_STATUS_OK)
        st = gtl__op_linear(tape, h, &p[GTL__P_ENC_LV_W], &p[GTL__P_ENC_LV_B], GTL__ACT_NONE,
                            &out->logvar);
    if (st == GTL_STATUS_OK) {
        /* Sampling follows the caller's mode, not the encoder's: a frozen
         * encoder (evaluation mode) can still feed noisy codes to a
         * classifier that trains. */
        if (sample && saved)
            st = gtl__op_reparam(tape, out->mu, out->logvar, NULL, &out->z);
        else
            out->z = out->mu;
    }
    if (st == GTL_STATUS_OK)
        st = gtl__op_slice(tape, out->z, 1, 0, c->concept_dim, &out->z_c);
    if (st == GTL_STATUS_OK)
        st = gtl__op_slice(tape, out->z, 1, c->concept_dim, c->disturb_dim, &out->z_m);
    tape->training = saved;
    return st;
}

gtl_status gtl__head_disturb(gtl__head *head, gtl__tape *tape, gtl__tensor *x,
                             gtl__tensor *z_m, gtl__tensor **out_zt, gtl__tensor **gate_out)
{
    if (gate_out != NULL)
        *gate_out = NULL;
    if (!head->cfg.estimator) {
        *out_zt = z_m;
        return GTL_STATUS_OK;
    }
    gtl__tensor *p = head->body.params;
    bool saved = enter(head, tape, GTL__MOD_ESTIMATOR);
    gtl__tensor *g, *u, *cat;
    gtl_status st = gtl__op_linear(tape, x, &p[GTL__P_EST_GATE_W], &p[GTL__P_EST_GATE_B],
                                   GTL__ACT_NONE, &g);
    if (st == GTL_STATUS_OK)
        st = gtl__op_sparsemax(tape, g, &g);
    if (st == GTL_STATUS_OK)
        st = gtl__op_gated_adapters(tape, x, g, &p[GTL__P_EST_AD_W], &p[GTL__P_EST_AD_B], &u);
    if (st == GTL_STATUS_OK) {
        gtl__tensor *parts[2] = {z_m, u};
        st = gtl__op_concat(tape, parts, 2, 1, &cat);
    }
    if (st == GTL_STATUS_OK)
        st = gtl__op_linear(tape, cat, &p[GTL__P_EST_FUSE_W], &p[GTL__P_EST_FUSE_B],
                            GTL__ACT_NONE, out_zt);
    if (st == GTL_STATUS_OK && gate_out != NULL)
        *gate_out = g;
    tape->training = saved;
    return st;
}

gtl_status gtl__head_generate(gtl__head *head, gtl__tape *tape, gtl__tensor *z_c,
                              gtl__tensor *zt_m, gtl__tensor **out_xhat)
{
    gtl__tensor *p = head->body.params;
    const gtl__head_config *c = &head->cfg;
    bool saved = enter(head, tape, GTL__MOD_GENERATOR);
    gtl__tensor *h, *parts[2] = {z_c, zt_m};
    gtl_status st = gtl__op_concat(tape, parts, 2, 1, &h);
    if (st == GTL_STATUS_OK)
        st = gtl__op_linear(tape, h, &p[GTL__P_GEN_FC1_W], &p[GTL__P_GEN_FC1_B], GTL__ACT_NONE,
                            &h);
    if (st == GTL_STATUS_OK)
        st = gtl__op_batchnorm(tape, h, &p[GTL__P_GEN_BN_W], &p[GTL__P_GEN_BN_B],
                               head->gen_bn.mean, head->gen_bn.var, c->bn_momentum, c->bn_eps, &h);
    if (st == GTL_STATUS_OK)
        st = gtl__op_relu(tape, h, &h);
    if (st == GTL_STATUS_OK)
        st = gtl__op_linear(tape, h, &p[GTL__P_GEN_FC2_W], &p[GTL__P_GEN_FC2_B], GTL__ACT_NONE,
                            out_xhat);
    tape->training = saved;
    return st;
}

gtl_status gtl__head_classify(gtl__head *head, gtl__tape *tape, gtl__tensor *z_c,
                              gtl__tensor **out_f, gtl__tensor **out_logits)
{
    gtl__tensor *p = head->cls.params;
    const gtl__head_config *c = &head->cfg;
    bool saved = enter(head, tape, GTL__MOD_CLASSIFIER);
    gtl__tensor *b;
    gtl_status st = gtl__op_linear(tape, z_c, &p[GTL__P_CLS_PROJ_W], NULL, GTL__ACT_NONE, out_f);
    if (st == GTL_STATUS_OK)
        st = gtl__op_batchnorm(tape, *out_f, &p[GTL__P_CLS_BN_W], &p[GTL__P_CLS_BN_B],
                               head->cls_bn.mean, head->cls_bn.var, c->bn_momentum, c->bn_eps, &b);
    if (st == GTL_STATUS_OK)
        st = gtl__op_linear(tape, b, &p[GTL__P_CLS_FC_W], NULL, GTL__ACT_NONE, out_logits);
    tape->training = saved;
    return st;
}

/* ---- losses ---- */

/* Accuracy of argmax(logits) against labels. */
static float batch_accuracy(const gtl__tensor *logits, const int64_t *labels)
{
    int64_t n = logits->ne[0], C = logits->ne[1], correct = 0;
    for (int64_t i = 0; i < n; i++) {
        const float *row = logits->data + i * C;
        int64_t best = 0;
        for (int64_t k = 1; k < C; k++)
            if (row[k] > row[best])
                best = k;
        correct += best == labels[i];
    }
    return n > 0 ? (float)correct / (float)n : 0.0f;
}

gtl_status gtl__head_rep_loss(gtl__head *head, gtl__tape *tape, gtl__tensor *x, double step,
                              float r, double c0, const int64_t *labels, float gamma,
                              gtl__tensor **out_loss, float *stats)
{
    const gtl__head_config *c = &head->cfg;
    gtl__enc_out e;
    gtl__tensor *zt, *xhat, *mse, *kl, *dev, *loss;
    *out_loss = NULL;
    gtl_status st = gtl__head_encode(head, tape, x, true, &e);
    if (st == GTL_STATUS_OK)
        st = gtl__head_disturb(head, tape, x, e.z_m, &zt, NULL);
    if (st == GTL_STATUS_OK)
        st = gtl__head_generate(head, tape, e.z_c, zt, &xhat);
    if (st == GTL_STATUS_OK)
        st = gtl__op_mse(tape, xhat, x, &mse);
    if (st == GTL_STATUS_OK)
        st = gtl__op_kl_normal(tape, e.mu, e.logvar, &kl);
    /* c0 = 0 adds an exact 0.0: B1 (and N1 with CAPACITY_START_NOVEL 0) is
     * bit-identical to the plain schedule. */
    double ct = fmin((double)c->c_max, c0 + (double)r * step / (double)c->c_iters);
    if (st == GTL_STATUS_OK)
        st = gtl__op_scale(tape, kl, 1.0f, (float)-ct, &dev);
    if (st == GTL_STATUS_OK)
        st = gtl__op_abs(tape, dev, &dev);
    if (st == GTL_STATUS_OK)
        st = gtl__op_scale(tape, dev, c->beta, 0.0f, &dev);
    if (st == GTL_STATUS_OK)
        st = gtl__op_add(tape, mse, dev, &loss);
    /* The reference code's classification term on the sampled z_c. */
    gtl__tensor *f, *logits = NULL, *ce = NULL, *wce;
    if (st == GTL_STATUS_OK && labels != NULL)
        st = gtl__head_classify(head, tape, e.z_c, &f, &logits);
    if (st == GTL_STATUS_OK && labels != NULL)
        st = gtl__op_cross_entropy(tape, logits, labels, &ce);
    if (st == GTL_STATUS_OK && labels != NULL)
        st = gtl__op_scale(tape, ce, gamma, 0.0f, &wce);
    if (st == GTL_STATUS_OK && labels != NULL)
        st = gtl__op_add(tape, loss, wce, &loss);
    if (st != GTL_STATUS_OK)
        return st;
    if (stats != NULL) {
        stats[GTL__STAT_LOSS] = loss->data[0];
        stats[GTL__STAT_MSE] = mse->data[0];
        stats[GTL__STAT_KL] = kl->data[0];
        stats[GTL__STAT_CAPACITY] = (float)ct;
        if (ce != NULL) {
            stats[GTL__STAT_CE] = ce->data[0];
            stats[GTL__STAT_ACCURACY] = batch_accuracy(logits, labels);
        }
    }
    *out_loss = loss;
    return GTL_STATUS_OK;
}

gtl_status gtl__head_cls_loss(gtl__head *head, gtl__tape *tape, gtl__tensor *x,
                              const int64_t *labels, bool sample_z, gtl__tensor **out_loss,
                              float *stats)
{
    const gtl__head_config *c = &head->cfg;
    gtl__enc_out e;
    gtl__tensor *f, *logits, *ce, *tri, *cen, *loss;
    *out_loss = NULL;
    gtl_status st = gtl__head_encode(head, tape, x, sample_z, &e);
    if (st == GTL_STATUS_OK)
        st = gtl__head_classify(head, tape, e.z_c, &f, &logits);
    if (st == GTL_STATUS_OK)
        st = gtl__op_cross_entropy(tape, logits, labels, &ce);
    if (st == GTL_STATUS_OK)
        st = gtl__op_triplet_hard(tape, f, labels, c->triplet_margin, &tri);
    if (st == GTL_STATUS_OK)
        st = gtl__op_center_loss(tape, f, &head->cls.params[GTL__P_CLS_CENTERS], labels, &cen);
    gtl__tensor *a, *b, *d;
    if (st == GTL_STATUS_OK)
        st = gtl__op_scale(tape, ce, c->w_ce, 0.0f, &a);
    if (st == GTL_STATUS_OK)
        st = gtl__op_scale(tape, tri, c->w_triplet, 0.0f, &b);
    if (st == GTL_STATUS_OK)
        st = gtl__op_scale(tape, cen, c->w_center, 0.0f, &d);
    if (st == GTL_STATUS_OK)
        st = gtl__op_add(tape, a, b, &loss);
    if (st == GTL_STATUS_OK)
        st = gtl__op_add(tape, loss, d, &loss);
    if (st != GTL_STATUS_OK)
        return st;
    if (stats != NULL) {
        stats[GTL__STAT_LOSS] = loss->data[0];
        stats[GTL__STAT_CE] = ce->data[0];
        stats[GTL__STAT_TRIPLET] = tri->data[0];
        stats[GTL__STAT_CENTER] = cen->data[0];
        stats[GTL__STAT_ACCURACY] = batch_accuracy(logits, labels);
    }
    *out_loss = loss;
    return GTL_STATUS_OK;
}

gtl_status gtl__head_predict(gtl__head *head, gtl__tape *tape, gtl__tensor *x,
                             gtl__tensor **out_probs)
{
    bool g0 = tape->grad_enabled, t0 = tape->training;
    tape->grad_enabled = false;
    tape->training = false;
    gtl__enc_out e;
    gtl__tensor *f, *logits;
    gtl_status st = gtl__head_encode(head, tape, x, false, &e);
    if (st == GTL_STATUS_OK)
        st = gtl__head_classify(head, tape, e.z_c, &f, &logits);
    if (st == GTL_STATUS_OK)
        st = gtl__op_softmax(tape, logits, out_probs);
    tape->grad_enabled = g0;
    tape->training = t0;
    return st;
}
