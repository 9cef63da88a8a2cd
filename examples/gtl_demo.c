/* gtl-demo: cross-modal few-shot recognition on emoji artwork, end to end,
 * on libgtl's public API (docs/demo.md).
 *
 *   1. backbone: RESNET_SMALL trained from scratch on the base classes' RGB
 *      images (augmented; cross-style batches; edge-map views), or CLIP
 *      weights (--clip PATH), or a saved backbone (--backbone PATH); cached;
 *   2. features of every image (and augmented views of the novel images for
 *      K-shot supports), cached; raw 32x32 pixels for the floor baseline;
 *   3. the GTL head: stages B1 and B2 on the base classes' RGB features
 *      (with and without the disturbance estimator), cached;
 *   4. evaluation on the novel classes: 5-way 1- and 5-shot episodes and the
 *      all-way protocol, for CFSL, RGB->sketch and sketch->RGB; every method
 *      on the same episodes (lists saved);
 *   5. output: a table on stdout, results.json, results.md, PNG figures.
 *
 * Progress goes to stderr, the table to stdout. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "demo.h"
#include "demo_eval.h"
#include "demo_features.h"
#include "demo_report.h"

typedef struct opts {
    const char *data_dir;
    const char *out_dir;
    const char *clip;
    const char *backbone;
    int quick;
    demo_bb_opts bb;
    int64_t episodes;
    int64_t gtl_episodes;
    int64_t gtl_episodes5;
    int64_t views;
    int64_t b1_epochs, b2_epochs;
    int64_t max_base, max_novel;
    int64_t val_classes;
    demo_twins twins;
    uint64_t seed;
    int threads;
    int workers;
    int experiments;
    int all_way;
    int five_shot;
    int plots;
    int bb_only;
    int full;
} opts;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: gtl-demo [options]\n"
            "  --data DIR         prepared data (default data-cache; examples/data/prepare_emoji.py)\n"
            "  --out DIR          results and caches (default demo-out)\n"
            "  --quick            a small subset for CI (150 base / 60 novel classes, few steps)\n"
            "  --clip PATH        CLIP ViT weights (safetensors) instead of training a backbone\n"
            "  --backbone PATH    a saved libgtl backbone instead of training one\n"
            "  --steps N          backbone training steps (default %d)\n"
            "  --batch N          backbone batch size (default 64)\n"
            "  --lr X             backbone peak learning rate (default 1e-3 with Adam)\n"
            "  --sgd              train the backbone with SGD, Nesterov momentum 0.9 (lr 0.05\n"
            "                     unless --lr) instead of Adam\n"
            "  --loss L           backbone loss: supcon (supervised contrastive, default), ce,\n"
            "                     ce+supcon\n"
            "  --temperature T    of the contrastive loss (default 0.1)\n"
            "  --no-cross-style   batches of random images instead of 16 classes x 4 styles\n"
            "  --edge-prob P      probability of an edge-map view in training (default 0.25)\n"
            "  --bb-classes N     train the backbone on N of the base classes only (default 0 =\n"
            "                     all): more epochs per class within the step budget\n"
            "  --val-classes N    hold N base classes out of all training (lever selection)\n"
            "  --bb-eval-every N  nearest-centroid accuracy on those every N training steps\n"
            "  --episodes N       episodes per 5-way setting (default 600)\n"
            "  --gtl-episodes N   1-shot episodes for the GTL methods (default: --episodes; a\n"
            "                     prefix of the same list: GTL adapts a model per episode)\n"
            "  --gtl-episodes5 N  5-shot episodes for the GTL methods (default 100; --full: all)\n"
            "  --full             GTL methods on every episode and on all-way 5-shot too (slow)\n"
            "  --views N          augmented views per novel image (default 4; 5-shot needs 4)\n"
            "  --b1-epochs N      stage B1 epochs (default 120)  --b2-epochs N (default 60)\n"
            "  --twins POLICY     sketch twins among novel classes: keep-one (default), exclude, keep\n"
            "  --no-all-way       skip the all-way protocol   --no-5-shot  skip 5-shot\n"
            "  --experiments      also run the GTL variants of docs/demo.md (N2 only, imprinting, ...)\n"
            "  --no-plots         do not call gnuplot\n"
            "  --backbone-only    stop after training (or loading) the backbone\n"
            "  --threads N        compute threads (default: OpenMP's)\n"
            "  --workers N        GTL episodes adapted in parallel, one thread each (default:\n"
            "                     the number of CPUs)\n"
            "  --seed N           seed of the episodes (default 0)\n",
            DEMO_BB_STEPS);
}

static int64_t arg_i64(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "error: %s needs a value\n", argv[*i]);
        exit(2);
    }
    char *end = NULL;
    long long v = strtoll(argv[++*i], &end, 10);
    if (!end || *end || v < 0) {
        fprintf(stderr, "error: %s: not a non-negative integer: %s\n", argv[*i - 1], argv[*i]);
        exit(2);
    }
    return v;
}

static double arg_f(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "error: %s needs a value\n", argv[*i]);
        exit(2);
    }
    char *end = NULL;
    double v = strtod(argv[++*i], &end);
    if (!end || *end || !isfinite(v)) {
        fprintf(stderr, "error: %s: not a number: %s\n", argv[*i - 1], argv[*i]);
        exit(2);
    }
    return v;
}

static const char *arg_s(int argc, char **argv, int *i)
{
    if (*i + 1 >= argc) {
        fprintf(stderr, "error: %s needs a value\n", argv[*i]);
        exit(2);
    }
    return argv[++*i];
}

static void parse(int argc, char **argv, opts *o)
{
    memset(o, 0, sizeof *o);
    o->data_dir = "data-cache";
    o->out_dir = "demo-out";
    demo_bb_opts_default(&o->bb);
    o->episodes = 600;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    o->workers = cpus > 1 ? (int)(cpus < 64 ? cpus : 64) : 1;
    o->gtl_episodes = -1;
    o->gtl_episodes5 = -1;
    o->views = 4;
    o->b1_epochs = 120;
    o->b2_epochs = 60;
    o->twins = DEMO_TWINS_KEEP_ONE;
    o->all_way = 1;
    o->five_shot = 1;
    o->plots = 1;
    int lr_set = 0, steps_set = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--data") || !strcmp(a, "--cache")) {
            o->data_dir = arg_s(argc, argv, &i);
        } else if (!strcmp(a, "--out")) {
            o->out_dir = arg_s(argc, argv, &i);
        } else if (!strcmp(a, "--quick")) {
            o->quick = 1;
        } else if (!strcmp(a, "--clip")) {
            o->clip = arg_s(argc, argv, &i);
        } else if (!strcmp(a, "--backbone")) {
            o->backbone = arg_s(argc, argv, &i);
        } else if (!strcmp(a, "--steps")) {
            o->bb.steps = arg_i64(argc, argv, &i);
            steps_set = 1;
        } else if (!strcmp(a, "--batch")) {
            o->bb.batch = arg_i64(argc, argv, &i);
        } else if (!strcmp(a, "--lr")) {
            o->bb.lr = (float)arg_f(argc, argv, &i);
            lr_set = 1;
        } else if (!strcmp(a, "--adam")) {
            o->bb.optimizer = GTL_OPTIM_ADAM;
        } else if (!strcmp(a, "--sgd")) {
            o->bb.optimizer = GTL_OPTIM_SGD;
        } else if (!strcmp(a, "--loss")) {
            const char *t = arg_s(argc, argv, &i);
            if (!strcmp(t, "ce"))
                o->bb.loss = GTL_BACKBONE_LOSS_CE;
            else if (!strcmp(t, "supcon"))
                o->bb.loss = GTL_BACKBONE_LOSS_SUPCON;
            else if (!strcmp(t, "ce+supcon"))
                o->bb.loss = GTL_BACKBONE_LOSS_CE_SUPCON;
            else {
                fprintf(stderr, "error: --loss: ce, supcon or ce+supcon (got %s)\n", t);
                exit(2);
            }
        } else if (!strcmp(a, "--temperature")) {
            o->bb.temperature = (float)arg_f(argc, argv, &i);
        } else if (!strcmp(a, "--no-cross-style")) {
            o->bb.cross_style = 0;
        } else if (!strcmp(a, "--edge-prob")) {
            o->bb.edge_prob = (float)arg_f(argc, argv, &i);
        } else if (!strcmp(a, "--bb-classes")) {
            o->bb.max_classes = arg_i64(argc, argv, &i);
        } else if (!strcmp(a, "--val-classes")) {
            o->val_classes = arg_i64(argc, argv, &i);
        } else if (!strcmp(a, "--bb-eval-every")) {
            o->bb.eval_every = arg_i64(argc, argv, &i);
        } else if (!strcmp(a, "--episodes")) {
            o->episodes = arg_i64(argc, argv, &i);
        } else if (!strcmp(a, "--gtl-episodes")) {
            o->gtl_episodes = arg_i64(argc, argv, &i);
        } else if (!strcmp(a, "--gtl-episodes5")) {
            o->gtl_episodes5 = arg_i64(argc, argv, &i);
        } else if (!strcmp(a, "--views")) {
            o->views = arg_i64(argc, argv, &i);
        } else if (!strcmp(a, "--b1-epochs")) {
            o->b1_epochs = arg_i64(argc, argv, &i);
        } else if (!strcmp(a, "--b2-epochs")) {
            o->b2_epochs = arg_i64(argc, argv, &i);
        } else if (!strcmp(a, "--twins")) {
            const char *t = arg_s(argc, argv, &i);
            if (!strcmp(t, "keep-one"))
                o->twins = DEMO_TWINS_KEEP_ONE;
            else if (!strcmp(t, "exclude"))
                o->twins = DEMO_TWINS_EXCLUDE;
            else if (!strcmp(t, "keep"))
                o->twins = DEMO_TWINS_KEEP;
            else {
                fprintf(stderr, "error: --twins: keep-one, exclude or keep (got %s)\n", t);
                exit(2);
            }
        } else if (!strcmp(a, "--no-all-way")) {
            o->all_way = 0;
        } else if (!strcmp(a, "--no-5-shot")) {
            o->five_shot = 0;
        } else if (!strcmp(a, "--experiments")) {
            o->experiments = 1;
        } else if (!strcmp(a, "--full")) {
            o->full = 1;
        } else if (!strcmp(a, "--backbone-only")) {
            o->bb_only = 1;
        } else if (!strcmp(a, "--no-plots")) {
            o->plots = 0;
        } else if (!strcmp(a, "--threads")) {
            o->threads = (int)arg_i64(argc, argv, &i);
        } else if (!strcmp(a, "--workers")) {
            o->workers = (int)arg_i64(argc, argv, &i);
        } else if (!strcmp(a, "--seed")) {
            o->seed = (uint64_t)arg_i64(argc, argv, &i);
        } else {
            fprintf(stderr, "error: unknown option %s\n", a);
            usage(stderr);
            exit(2);
        }
    }
    if (o->bb.optimizer == GTL_OPTIM_SGD && !lr_set)
        o->bb.lr = 0.05f;
    if (o->quick) {
        o->max_base = 150;
        o->max_novel = 60;
        if (!steps_set)
            o->bb.steps = 60;
        if (o->episodes == 600)
            o->episodes = 100;
        o->b1_epochs = o->b1_epochs == 120 ? 10 : o->b1_epochs;
        o->b2_epochs = o->b2_epochs == 60 ? 10 : o->b2_epochs;
    }
    if (o->gtl_episodes < 0)
        o->gtl_episodes = o->quick ? 20 : o->episodes;
    if (o->gtl_episodes > o->episodes || o->full)
        o->gtl_episodes = o->episodes;
    if (o->gtl_episodes5 < 0)
        o->gtl_episodes5 = o->full ? o->episodes : o->quick ? 10 : 100;
    if (o->gtl_episodes5 > o->episodes || o->full)
        o->gtl_episodes5 = o->episodes;
    if (o->episodes < 2 || o->bb.batch < 2 || o->b1_epochs < 1 || o->b2_epochs < 1) {
        fprintf(stderr, "error: --episodes, --batch need >= 2, --b1/b2-epochs >= 1\n");
        exit(2);
    }
    if (o->five_shot && o->views < 4) {
        fprintf(stderr, "note: --views %lld < 4: 5-shot settings are skipped\n",
                (long long)o->views);
        o->five_shot = 0;
    }
}

/* ---- the GTL head: stages B1 and B2 ------------------------------------------ */

typedef struct stage_ud {
    ex_progress pr;
    int started;
    const char *label;
} stage_ud;

static int on_step(void *ud, gtl_stage stage, int64_t step, int64_t n_steps, const float *stats)
{
    stage_ud *s = ud;
    if (!s->started) {
        ex_progress_start(&s->pr, s->label, n_steps);
        s->started = 1;
    }
    char extra[96];
    if (stage == GTL_STAGE_B1)
        snprintf(extra, sizeof extra, "mse %.4f kl %.1f", (double)stats[GTL_STAT_MSE],
                 (double)stats[GTL_STAT_KL]);
    else
        snprintf(extra, sizeof extra, "ce %.3f acc %.2f", (double)stats[GTL_STAT_CE],
                 (double)stats[GTL_STAT_ACCURACY]);
    ex_progress_update(&s->pr, step, extra);
    if (step == n_steps)
        ex_progress_end(&s->pr);
    return 0;
}

static gtl_optimizer *stage_optimizer(int64_t epochs, int64_t per_epoch)
{
    gtl_optimizer *opt = NULL;
    EX_CHECK(gtl_optimizer_create(GTL_OPTIM_ADAM, &opt));
    EX_CHECK(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_LR, 1e-3f));
    EX_CHECK(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_WEIGHT_DECAY, 1e-4f));
    EX_CHECK(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_CLIP_NORM, 2.0f));
    int64_t n = epochs * per_epoch, warm = 5 * per_epoch < n / 4 ? 5 * per_epoch : n / 4;
    EX_CHECK(gtl_optimizer_set_i64(opt, GTL_OPTIM_PARAM_WARMUP_STEPS, warm));
    int64_t half = n / 2;
    if (half >= 1)
        EX_CHECK(gtl_optimizer_set_milestones(opt, &half, 1));
    return opt;
}

/* B1 (L_rep, 120 epochs, Adam 1e-3, x0.1 at half) then B2 (L_cls) on the base
 * classes' RGB features, as the method's reference schedule; cached. */
static gtl_model *train_head(const demo_data *d, const demo_feats *f, int estimator,
                             const opts *o, const char *cache_path, double *out_seconds)
{
    gtl_model *m = NULL;
    *out_seconds = 0;
    if (cache_path && ex_file_exists(cache_path) &&
        gtl_model_load(cache_path, &m, NULL) == GTL_STATUS_OK) {
        fprintf(stderr, "%-22s cached (%s)\n", estimator ? "GTL head B1+B2" : "head, no estimator",
                cache_path);
        return m;
    }
    double t0 = ex_now();
    gtl_dataset *base = NULL;
    EX_CHECK(gtl_dataset_create(f->dim, &base));
    for (int64_t i = 0; i < d->n_images; i++) {
        const demo_image *im = &d->images[i];
        if (d->classes[im->cls].split != DEMO_BASE || im->modality != GTL_MODALITY_RGB ||
            demo_feats_failed(f, i))
            continue;
        int64_t y = im->cls;
        int32_t mod = im->modality;
        EX_CHECK(gtl_dataset_add(base, f->x + f->dim * i, 1, &y, &mod, NULL));
    }
    int64_t n_cls = 0, n = 0;
    EX_CHECK(gtl_dataset_remap_labels(base, NULL, 0, &n_cls));
    EX_CHECK(gtl_dataset_size(base, &n));
    EX_CHECK(gtl_model_create(&m));
    EX_CHECK(gtl_model_set_i64(m, GTL_MODEL_FEATURE_DIM, f->dim));
    EX_CHECK(gtl_model_set_i64(m, GTL_MODEL_ESTIMATOR, estimator));
    EX_CHECK(gtl_model_init(m));
    int64_t per_epoch = (n + 63) / 64;
    stage_ud su = {.label = estimator ? "GTL B1" : "GTL B1 (no estimator)"};
    gtl_optimizer *opt = stage_optimizer(o->b1_epochs, per_epoch);
    EX_CHECK(gtl_model_train_stage(m, opt, GTL_STAGE_B1, base, o->b1_epochs, on_step, &su));
    gtl_optimizer_destroy(opt);
    su = (stage_ud){.label = estimator ? "GTL B2" : "GTL B2 (no estimator)"};
    opt = stage_optimizer(o->b2_epochs, per_epoch);
    EX_CHECK(gtl_model_train_stage(m, opt, GTL_STAGE_B2, base, o->b2_epochs, on_step, &su));
    gtl_optimizer_destroy(opt);
    gtl_dataset_destroy(base);
    if (cache_path && gtl_model_save(m, NULL, cache_path) != GTL_STATUS_OK)
        fprintf(stderr, "warning: cannot cache the head: %s\n", gtl_last_error());
    *out_seconds = ex_now() - t0;
    return m;
}

/* ---- episode lists ------------------------------------------------------------ */

/* Length of the first n episodes of a list (format: eval.h). */
static size_t list_prefix(const int64_t *list, size_t len, int64_t n)
{
    size_t pos = 0;
    for (int64_t e = 0; e < n && pos + 3 <= len; e++)
        pos += 3 + (size_t)(list[pos] + list[pos + 1] + list[pos + 2]);
    return pos < len ? pos : len;
}

static void save_list(const char *path, const int64_t *list, size_t n, const demo_data *d,
                      const gtl_dataset *src)
{
    /* JSON: episodes with class names and image paths, readable and replayable */
    ex_buf b = {0};
    ex_buf_printf(&b, "{\"format\": \"gtl_evaluator_episode_list: n_way, n_support, n_query, "
                      "class_labels, support rows, query rows (rows of the novel source set)\",\n"
                      " \"list\": [");
    for (size_t i = 0; i < n; i++)
        ex_buf_printf(&b, "%s%lld", i ? "," : "", (long long)list[i]);
    ex_buf_printf(&b, "],\n \"rows\": [");
    int64_t n_rows = 0;
    EX_CHECK(gtl_dataset_size(src, &n_rows));
    for (int64_t r = 0; r < n_rows; r++) {
        int64_t pair = 0;
        EX_CHECK(gtl_dataset_get(src, r, NULL, 0, NULL, NULL, &pair));
        const char *p = d->images[pair].path;
        size_t dl = strlen(d->dir);
        if (!strncmp(p, d->dir, dl) && p[dl] == '/')
            p += dl + 1;
        ex_buf_printf(&b, "%s", r ? ", " : "");
        ex_buf_json_str(&b, p);
    }
    ex_buf_printf(&b, "]}\n");
    ex_write_file(path, b.s, b.len);
    ex_buf_free(&b);
}

/* ---- main ------------------------------------------------------------------------ */

typedef struct method_def {
    const char *id;
    const char *name;
    demo_kind kind;
    int raw;        /* on raw pixels */
    int head;       /* 0 none, 1 default head, 2 head without estimator */
    demo_gtl_cfg cfg;
    int experiment; /* only with --experiments */
} method_def;

static void log_cb(void *ud, gtl_log_level level, const char *msg)
{
    (void)ud;
    if (level <= GTL_LOG_WARN)
        fprintf(stderr, "\n[gtl %s] %s\n", level == GTL_LOG_ERROR ? "error" : "warning", msg);
}

int main(int argc, char **argv)
{
    opts o;
    parse(argc, argv, &o);
    double t_start = ex_now();
    EX_CHECK(gtl_set_log_callback(log_cb, NULL, GTL_LOG_WARN));
    if (o.threads > 0)
        EX_CHECK(gtl_set_num_threads(o.threads));
    char info[512];
    EX_CHECK(gtl_build_info(info, sizeof info, NULL));
    fprintf(stderr, "%s\n", info);

    demo_data d;
    if (demo_data_load(o.data_dir, o.twins, o.max_base, o.max_novel, o.val_classes, &d) != 0)
        return 1;
    fprintf(stderr, "data: %lld images, %lld base classes, %lld novel classes (sketch twins: "
                    "%lld novel classes in twin groups, %lld dropped by policy %s)\n",
            (long long)d.n_images, (long long)d.n_base, (long long)d.n_novel,
            (long long)d.n_twin_classes, (long long)d.n_twin_dropped, demo_twins_name(o.twins));
    char *cache = ex_path_join(o.out_dir, "cache");
    if (ex_mkdirs(cache) != 0)
        return 1;

    /* 1. backbone */
    gtl_backbone *bb = NULL;
    double t_bb = 0;
    uint64_t bb_key = 0;
    const char *bb_desc = "";
    if (o.clip || o.backbone) {
        const char *p = o.clip ? o.clip : o.backbone;
        EX_CHECK(gtl_backbone_load(p, &bb));
        bb_key = ex_fnv_file(EX_FNV_INIT, p);
        bb_desc = o.clip ? "CLIP (imported)" : "loaded from --backbone";
        fprintf(stderr, "backbone: %s\n", p);
    } else {
        bb_key = demo_bb_opts_key(&o.bb, d.key);
        char *name = ex_fmt("backbone-%016llx.gtlbb", (unsigned long long)bb_key);
        char *path = ex_path_join(cache, name);
        free(name);
        if (ex_file_exists(path) && gtl_backbone_load(path, &bb) == GTL_STATUS_OK) {
            fprintf(stderr, "%-22s cached (%s)\n", "backbone", path);
            bb_desc = "RESNET_SMALL from scratch (cached)";
        } else {
            if (demo_backbone_train(&d, &o.bb, path, &bb, &t_bb) != 0)
                return 1;
            bb_desc = "RESNET_SMALL from scratch";
        }
        free(path);
    }

    if (o.bb_only) {
        gtl_backbone_destroy(bb);
        demo_data_free(&d);
        free(cache);
        fprintf(stderr, "total %.0f s\n", ex_now() - t_start);
        return 0;
    }

    /* 2. features */
    double t_feat = ex_now();
    demo_feats fb, fr;
    char *name = ex_fmt("features-%016llx.bin", (unsigned long long)(bb_key ^ d.key));
    char *path = ex_path_join(cache, name);
    free(name);
    if (demo_features_compute(&d, bb, 0, o.views, bb_key ^ d.key, path, "backbone features",
                              &fb) != 0)
        return 1;
    free(path);
    path = ex_path_join(cache, "features-raw32.bin");
    if (demo_features_compute(&d, NULL, 32, o.views, d.key, path, "raw-pixel features", &fr) != 0)
        return 1;
    free(path);
    t_feat = ex_now() - t_feat;

    /* 3. GTL heads */
    double t_head = 0, t_head2 = 0;
    /* "-cls": B1 with the classification term (the library default since
     * GTL_MODEL_REP_CLS_WEIGHT), so heads cached before it are not reused. */
    char *hname = ex_fmt("head-%016llx-%lld-%lld-cls.gtl", (unsigned long long)(bb_key ^ d.key),
                         (long long)o.b1_epochs, (long long)o.b2_epochs);
    char *hpath = ex_path_join(cache, hname);
    gtl_model *head = train_head(&d, &fb, 1, &o, hpath, &t_head);
    free(hname);
    free(hpath);
    hname = ex_fmt("head-noest-%016llx-%lld-%lld-cls.gtl", (unsigned long long)(bb_key ^ d.key),
                   (long long)o.b1_epochs, (long long)o.b2_epochs);
    hpath = ex_path_join(cache, hname);
    gtl_model *head_noest = train_head(&d, &fb, 0, &o, hpath, &t_head2);
    free(hname);
    free(hpath);

    /* 4. methods and settings */
    demo_gtl_cfg none, no_freeze, n2only, n1short, n1_low_lr, sample_cls, n1_nokl, n1_cmax;
    demo_gtl_cfg n1_c0, n1_nocls;
    demo_gtl_cfg_none(&none);
    n1_c0 = none;
    n1_c0.capacity_start = 0.0f; /* C_t annealed from 0 in N1, as before the fix */
    n1_nocls = none;
    n1_nocls.rep_cls_weight = 0.0f; /* N1 without the classification term */
    n1_nokl = none;
    n1_nokl.beta = 0; /* N1 without |KL - C_t|: only the frozen generator's reconstruction */
    n1_cmax = none;
    n1_cmax.capacity_rate_novel = 1e6f; /* C_t = C_max from N1's first step */
    no_freeze = none;
    no_freeze.freeze_generator = 0;
    n2only = none;
    n2only.n1_epochs = 0;
    n1short = none;
    n1short.n1_epochs = 10;
    n1_low_lr = none;
    n1_low_lr.n1_lr = 1e-4f;
    sample_cls = none;
    sample_cls.cls_use_mean = 0;
    const method_def defs[] = {
        {"raw_nc_centred", "raw pixels 32x32, centred NC", DEMO_M_NC_CENTRED, 1, 0, none, 0},
        {"nc", "backbone, NC (cosine)", DEMO_M_NC, 0, 0, none, 0},
        {"nc_centred", "backbone, centred NC", DEMO_M_NC_CENTRED, 0, 0, none, 0},
        {"probe", "backbone, linear probe", DEMO_M_PROBE, 0, 0, none, 0},
        {"gtl", "GTL (B1+B2, N1+N2)", DEMO_M_GTL, 0, 1, none, 0},
        {"gtl_no_estimator", "GTL without estimator", DEMO_M_GTL, 0, 2, none, 0},
        {"gtl_unfrozen_generator", "GTL, generator not frozen", DEMO_M_GTL, 0, 1, no_freeze, 0},
        {"gtl_n1_nokl", "GTL, N1 without KL (beta 0)", DEMO_M_GTL, 0, 1, n1_nokl, 1},
        {"gtl_n1_cmax", "GTL, N1 with C_t = C_max", DEMO_M_GTL, 0, 1, n1_cmax, 1},
        {"gtl_n1_c0", "GTL, N1 with C_t from 0", DEMO_M_GTL, 0, 1, n1_c0, 1},
        {"gtl_n1_nocls", "GTL, N1 without the CE term", DEMO_M_GTL, 0, 1, n1_nocls, 1},
        {"gtl_n2_only", "GTL N2 only (no N1)", DEMO_M_GTL, 0, 1, n2only, 1},
        {"gtl_n1_10", "GTL, N1 10 epochs", DEMO_M_GTL, 0, 1, n1short, 1},
        {"gtl_n1_lr1e-4", "GTL, N1 lr 1e-4", DEMO_M_GTL, 0, 1, n1_low_lr, 1},
        {"gtl_cls_sample", "GTL, CLS_USE_MEAN 0", DEMO_M_GTL, 0, 1, sample_cls, 1},
        {"gtl_imprint", "GTL, imprinted classifier", DEMO_M_GTL_IMPRINT, 0, 1, none, 1},
        {"gtl_imprint_n2", "GTL N2 only, imprinted", DEMO_M_GTL_IMPRINT, 0, 1, n2only, 1},
        {"gtl_zc_nc", "GTL z_c (B1), centred NC", DEMO_M_GTL_ZC_NC, 0, 1, none, 1},
    };
    int64_t n_defs = (int64_t)(sizeof defs / sizeof defs[0]);
    gtl_dataset *src_b = demo_novel_source(&d, &fb, &fr), *src_r = demo_novel_source(&d, &fr, &fb);
    demo_method *methods = ex_calloc((size_t)n_defs, sizeof(demo_method));
    const char **ids = ex_calloc((size_t)n_defs, sizeof(char *));
    const char **names = ex_calloc((size_t)n_defs, sizeof(char *));
    int64_t n_methods = 0;
    for (int64_t k = 0; k < n_defs; k++) {
        if (defs[k].experiment && !o.experiments)
            continue;
        demo_method *m = &methods[n_methods];
        m->id = defs[k].id;
        m->name = defs[k].name;
        m->kind = defs[k].kind;
        m->feats = defs[k].raw ? &fr : &fb;
        m->src = defs[k].raw ? src_r : src_b;
        m->model = defs[k].head == 1 ? head : defs[k].head == 2 ? head_noest : NULL;
        m->gtl = defs[k].cfg;
        ids[n_methods] = m->id;
        names[n_methods] = m->name;
        n_methods++;
    }
    demo_setting settings[12];
    int64_t n_settings = 0;
    for (int32_t shots = 1; shots <= 5; shots += 4) {
        if (shots == 5 && !o.five_shot)
            continue;
        for (int32_t p = 0; p < DEMO_N_PROTOCOLS; p++)
            settings[n_settings++] = (demo_setting){p, shots, 0};
    }
    for (int32_t shots = 1; o.all_way && shots <= 5; shots += 4) {
        if (shots == 5 && !o.five_shot)
            continue;
        for (int32_t p = 0; p < DEMO_N_PROTOCOLS; p++)
            settings[n_settings++] = (demo_setting){p, shots, 1};
    }
    demo_result *results = ex_calloc((size_t)(n_methods * n_settings), sizeof(demo_result));
    char *ep_dir = ex_path_join(o.out_dir, "episodes");
    ex_mkdirs(ep_dir);
    double t_eval = ex_now();
    for (int64_t s = 0; s < n_settings; s++) {
        const demo_setting *st = &settings[s];
        int64_t *list = NULL;
        size_t list_n = 0;
        char sname[96];
        demo_setting_name(st, sname, sizeof sname);
        for (int64_t k = 0; k < n_methods; k++) {
            demo_method *m = &methods[k];
            int is_gtl = m->kind == DEMO_M_GTL || m->kind == DEMO_M_GTL_IMPRINT;
            int64_t n_ep = !is_gtl || st->all_way ? o.episodes
                           : st->shots > 1           ? o.gtl_episodes5
                                                     : o.gtl_episodes;
            if (is_gtl && st->all_way && st->shots > 1 && !o.full)
                continue; /* one adaptation on every class x 5 shots x views: --full */
            int64_t *use = list;
            size_t use_n = list_n;
            if (list && !st->all_way && n_ep < o.episodes)
                use_n = list_prefix(list, list_n, n_ep);
            char label[160];
            snprintf(label, sizeof label, "%s | %s", sname, m->name);
            label[60] = '\0';
            demo_result *r = &results[k * n_settings + s];
            /* GTL adapts a clone per episode: episodes run in parallel, one
             * compute thread each (GTL_DEMO_NC_WORKERS: also the cheap methods,
             * to check that parallel and serial replays agree). */
            int workers = is_gtl || getenv("GTL_DEMO_NC_WORKERS") ? o.workers : 1;
            if (m->kind == DEMO_M_GTL_ZC_NC)
                workers = 1;
            if (demo_run(m, st, n_ep, o.seed, &use, &use_n, r, label, workers) != 0)
                return 1;
            if (!list) {
                list = use;
                list_n = use_n;
            }
        }
        char *fname = ex_fmt("%s%s-%dshot.json", st->all_way ? "allway-" : "",
                             demo_protocols[st->protocol].id, (int)st->shots);
        char *fpath = ex_path_join(ep_dir, fname);
        save_list(fpath, list, list_n, &d, src_b);
        free(fname);
        free(fpath);
        free(list);
    }
    t_eval = ex_now() - t_eval;

    /* 5. output */
    double t_total = ex_now() - t_start;
    ex_buf fj = {0}, fm = {0};
    ex_buf_printf(&fj, "  \"libgtl\": ");
    ex_buf_json_str(&fj, info);
    ex_buf_printf(&fj, ",\n  \"backbone\": ");
    ex_buf_json_str(&fj, bb_desc);
    ex_buf_printf(&fj, ",\n  \"data\": {\"images\": %lld, \"base_classes\": %lld, "
                       "\"novel_classes\": %lld, \"twin_policy\": \"%s\", "
                       "\"novel_twin_classes\": %lld, \"twin_classes_dropped\": %lld},\n",
                  (long long)d.n_images, (long long)d.n_base, (long long)d.n_novel,
                  demo_twins_name(o.twins), (long long)d.n_twin_classes,
                  (long long)d.n_twin_dropped);
    ex_buf_printf(&fj, "  \"settings\": {\"quick\": %s, \"backbone_steps\": %lld, "
                       "\"backbone_batch\": %lld, \"cross_style\": %d, \"edge_prob\": %.3f, "
                       "\"episodes\": %lld, \"gtl_episodes\": %lld, \"gtl_episodes_5shot\": %lld, "
                       "\"views\": %lld, "
                       "\"b1_epochs\": %lld, \"b2_epochs\": %lld, \"seed\": %llu},\n",
                  o.quick ? "true" : "false", (long long)o.bb.steps, (long long)o.bb.batch,
                  o.bb.cross_style, (double)o.bb.edge_prob, (long long)o.episodes,
                  (long long)o.gtl_episodes, (long long)o.gtl_episodes5, (long long)o.views,
                  (long long)o.b1_epochs,
                  (long long)o.b2_epochs, (unsigned long long)o.seed);
    ex_buf_printf(&fj, "  \"seconds\": {\"backbone_training\": %.1f, \"features\": %.1f, "
                       "\"heads\": %.1f, \"evaluation\": %.1f, \"total\": %.1f}",
                  t_bb, t_feat, t_head + t_head2, t_eval, t_total);
    ex_buf_printf(&fm, "- libgtl: %s\n- backbone: %s (%lld steps of %lld images)\n", info,
                  bb_desc, (long long)o.bb.steps, (long long)o.bb.batch);
    ex_buf_printf(&fm, "- data: %lld base classes, %lld novel classes; sketch twins: %s "
                       "(%lld of %lld novel twin classes dropped)\n",
                  (long long)d.n_base, (long long)d.n_novel, demo_twins_name(o.twins),
                  (long long)d.n_twin_dropped, (long long)d.n_twin_classes);
    ex_buf_printf(&fm, "- episodes: %lld per 5-way setting (GTL methods: the first %lld of "
                       "them at 1-shot, %lld at 5-shot%s)\n",
                  (long long)o.episodes, (long long)o.gtl_episodes, (long long)o.gtl_episodes5,
                  o.full ? "" : "; all-way 5-shot without GTL methods");
    ex_buf_printf(&fm, "- time: backbone %.0f s, features %.0f s, GTL heads %.0f s, "
                       "evaluation %.0f s, total %.0f s\n",
                  t_bb, t_feat, t_head + t_head2, t_eval, t_total);
    demo_report rep = {n_methods, ids, names, n_settings, settings, results, fj.s, fm.s};
    demo_report_print(&rep, stdout);
    char *jpath = ex_path_join(o.out_dir, "results.json");
    char *mpath = ex_path_join(o.out_dir, "results.md");
    demo_report_json(&rep, jpath);
    demo_report_markdown(&rep, mpath);
    fprintf(stderr, "\nwrote %s, %s, %s/\n", jpath, mpath, ep_dir);
    if (o.plots) {
        char *png = ex_path_join(o.out_dir, "accuracy.png");
        if (demo_plot_accuracy(&rep, png) == 0)
            fprintf(stderr, "wrote %s\n", png);
        else
            fprintf(stderr, "warning: no accuracy plot (is gnuplot installed? apt-get install "
                            "gnuplot-nox)\n");
        free(png);
        /* latents of every novel original under the default head */
        int64_t n_rows = 0, nc = 0, nm = 0;
        EX_CHECK(gtl_dataset_size(src_b, &n_rows));
        EX_CHECK(gtl_model_get_i64(head, GTL_MODEL_CONCEPT_DIM, &nc));
        EX_CHECK(gtl_model_get_i64(head, GTL_MODEL_DISTURBANCE_DIM, &nm));
        float *x = ex_malloc(sizeof(float) * (size_t)(n_rows * fb.dim));
        int32_t *mod = ex_malloc(sizeof(int32_t) * (size_t)n_rows);
        for (int64_t r = 0; r < n_rows; r++)
            EX_CHECK(gtl_dataset_get(src_b, r, x + fb.dim * r, (size_t)fb.dim, NULL, &mod[r],
                                     NULL));
        float *zc = ex_malloc(sizeof(float) * (size_t)(n_rows * nc));
        float *zm = ex_malloc(sizeof(float) * (size_t)(n_rows * nm));
        EX_CHECK(gtl_model_latent(head, GTL_LATENT_CONCEPT, x, n_rows, fb.dim, zc,
                                  (size_t)(n_rows * nc)));
        EX_CHECK(gtl_model_latent(head, GTL_LATENT_DISTURBANCE, x, n_rows, fb.dim, zm,
                                  (size_t)(n_rows * nm)));
        png = ex_path_join(o.out_dir, "latents.png");
        if (demo_plot_latents(zc, nc, zm, nm, mod, n_rows, png) == 0)
            fprintf(stderr, "wrote %s\n", png);
        free(png);
        free(x);
        free(mod);
        free(zc);
        free(zm);
    }
    fprintf(stderr, "total %.0f s\n", ex_now() - t_start);

    free(jpath);
    free(mpath);
    free(ep_dir);
    ex_buf_free(&fj);
    ex_buf_free(&fm);
    free(results);
    free(methods);
    free(ids);
    free(names);
    gtl_dataset_destroy(src_b);
    gtl_dataset_destroy(src_r);
    gtl_model_destroy(head);
    gtl_model_destroy(head_noest);
    demo_feats_free(&fb);
    demo_feats_free(&fr);
    gtl_backbone_destroy(bb);
    demo_data_free(&d);
    free(cache);
    return 0;
}
