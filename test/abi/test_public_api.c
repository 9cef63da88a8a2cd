/* The public API as a consumer sees it: only <gtl/gtl.h>, only the shared
 * library, strict C11 (-std=c11 -Wall -Wextra -pedantic -Werror).
 *
 * Every exported function is called here with valid and invalid arguments
 * (cmake/check_abi.cmake fails if an exported symbol is missing from this
 * file), and each function is assigned to a pointer of its exact documented
 * type, so a changed signature fails to compile. Plain C, no test framework:
 * the exit status is the number of failed checks. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <threads.h>

#include <gtl/gtl.h>

static int n_failed;

#define CHECK(cond)                                                          \
    do {                                                                     \
        if (!(cond)) {                                                       \
            fprintf(stderr, "%s:%d: check failed: %s (last error: %s)\n",    \
                    __FILE__, __LINE__, #cond, gtl_last_error());            \
            n_failed++;                                                      \
        }                                                                    \
    } while (0)

/* A call that must fail with status `want` and a message containing `needle`. */
#define CHECK_FAIL(call, want, needle)                                                   \
    do {                                                                                 \
        gtl_status st_ = (call);                                                         \
        if (st_ != (want) || strstr(gtl_last_error(), (needle)) == NULL) {              \
            fprintf(stderr, "%s:%d: %s gave \"%s\" (%s), expected \"%s\" naming %s\n", \
                    __FILE__, __LINE__, #call, gtl_strerror(st_), gtl_last_error(),      \
                    gtl_strerror(want), (needle));                                       \
            n_failed++;                                                                  \
        }                                                                                \
    } while (0)

/* A call that must succeed and leave the message empty. */
#define CHECK_OK(call)                                                                   \
    do {                                                                                 \
        gtl_status st_ = (call);                                                         \
        if (st_ != GTL_STATUS_OK || gtl_last_error()[0] != '\0') {                       \
            fprintf(stderr, "%s:%d: %s gave \"%s\" (%s)\n", __FILE__, __LINE__, #call,    \
                    gtl_strerror(st_), gtl_last_error());                                \
            n_failed++;                                                                  \
        }                                                                                \
    } while (0)

/* ---- compile-time ABI facts ------------------------------------------------ */

_Static_assert(GTL_STATUS_OK == 0, "status values are ABI");
_Static_assert(GTL_STATUS_INVALID_ARG == 1, "status values are ABI");
_Static_assert(GTL_STATUS_OUT_OF_MEMORY == 2, "status values are ABI");
_Static_assert(GTL_STATUS_BAD_STATE == 3, "status values are ABI");
_Static_assert(GTL_STATUS_IO == 4, "status values are ABI");
_Static_assert(GTL_STATUS_FORMAT == 5, "status values are ABI");
_Static_assert(GTL_STATUS_BACKEND == 6, "status values are ABI");
_Static_assert(GTL_STATUS_UNSUPPORTED == 7, "status values are ABI");
_Static_assert(GTL_STATUS_NUMERIC == 8, "status values are ABI");
_Static_assert(GTL_STATUS_CANCELLED == 9, "status values are ABI");
_Static_assert(GTL_STATUS_INTERNAL == 10, "status values are ABI");
_Static_assert(GTL_LOG_ERROR == 0 && GTL_LOG_WARN == 1 && GTL_LOG_INFO == 2 &&
                   GTL_LOG_DEBUG == 3,
               "log levels are ABI");
_Static_assert(GTL_VERSION_NUMBER ==
                   GTL_VERSION_MAJOR * 10000 + GTL_VERSION_MINOR * 100 + GTL_VERSION_PATCH,
               "version number formula");

/* Enum values stored in files, sent across processes or used as array
 * indices by hosts: append-only within a major version. */
_Static_assert(GTL_STAGE_B1 == 0 && GTL_STAGE_B2 == 1 && GTL_STAGE_N1 == 2 && GTL_STAGE_N2 == 3,
               "stages are ABI");
_Static_assert(GTL_STAT_LOSS == 0 && GTL_STAT_MSE == 1 && GTL_STAT_KL == 2 &&
                   GTL_STAT_CAPACITY == 3 && GTL_STAT_CE == 4 && GTL_STAT_TRIPLET == 5 &&
                   GTL_STAT_CENTER == 6 && GTL_STAT_ACCURACY == 7 && GTL_STAT_GRAD_NORM == 8 &&
                   GTL_STAT_LR == 9 && GTL_STAT_COUNT == 10,
               "statistics indices are ABI");
_Static_assert(GTL_MODALITY_RGB == 0 && GTL_MODALITY_SKETCH == 1 && GTL_MODALITY_INFRARED == 2 &&
                   GTL_MODALITY_DEPTH == 3 && GTL_MODALITY_USER == 16,
               "modalities are ABI");
_Static_assert(GTL_MODALITY_BIT(GTL_MODALITY_SKETCH) == 2u && GTL_MODALITY_BIT(31) == 0x80000000u &&
                   GTL_MODALITY_ALL == 0xffffffffu && GTL_NO_PAIR == -1,
               "modality masks and the no-pair id are ABI");
_Static_assert(GTL_LATENT_CONCEPT == 0 && GTL_LATENT_DISTURBANCE == 1 && GTL_LATENT_GATE == 2,
               "latent kinds are ABI");
_Static_assert(GTL_MODEL_FEATURE_DIM == 0 && GTL_MODEL_HIDDEN_DIM == 1 &&
                   GTL_MODEL_CONCEPT_DIM == 2 && GTL_MODEL_DISTURBANCE_DIM == 3 &&
                   GTL_MODEL_NUM_DOMAINS == 4 && GTL_MODEL_NUM_CLASSES == 5 &&
                   GTL_MODEL_ESTIMATOR == 6 && GTL_MODEL_SEED == 7 && GTL_MODEL_DROPOUT == 8 &&
                   GTL_MODEL_BETA == 9 && GTL_MODEL_CAPACITY_MAX == 10 &&
                   GTL_MODEL_CAPACITY_ITERS == 11 && GTL_MODEL_CAPACITY_RATE_BASE == 12 &&
                   GTL_MODEL_CAPACITY_RATE_NOVEL == 13 && GTL_MODEL_TRIPLET_MARGIN == 14,
               "model parameter keys are ABI");
_Static_assert(GTL_MODEL_CE_WEIGHT == 15 && GTL_MODEL_TRIPLET_WEIGHT == 16 &&
                   GTL_MODEL_CENTER_WEIGHT == 17 && GTL_MODEL_CENTER_LR == 18 &&
                   GTL_MODEL_FREEZE_GENERATOR == 19 && GTL_MODEL_BATCH_CLASSES == 20 &&
                   GTL_MODEL_BATCH_SAMPLES == 21 && GTL_MODEL_N1_EPOCHS == 22 &&
                   GTL_MODEL_N2_EPOCHS == 23 && GTL_MODEL_N1_LR == 24 && GTL_MODEL_N2_LR == 25 &&
                   GTL_MODEL_WEIGHT_DECAY == 26 && GTL_MODEL_WARMUP_EPOCHS == 27 &&
                   GTL_MODEL_CLIP_NORM == 28 && GTL_MODEL_CLS_USE_MEAN == 29 &&
                   GTL_MODEL_CAPACITY_START_NOVEL == 30 && GTL_MODEL_REP_CLS_WEIGHT == 31,
               "model parameter keys are ABI");
_Static_assert(GTL_OPTIM_ADAM == 0 && GTL_OPTIM_ADAMW == 1 && GTL_OPTIM_SGD == 2,
               "optimizer kinds are ABI");
_Static_assert(GTL_OPTIM_PARAM_LR == 0 && GTL_OPTIM_PARAM_BETA1 == 1 &&
                   GTL_OPTIM_PARAM_BETA2 == 2 && GTL_OPTIM_PARAM_EPS == 3 &&
                   GTL_OPTIM_PARAM_WEIGHT_DECAY == 4 && GTL_OPTIM_PARAM_MOMENTUM == 5 &&
                   GTL_OPTIM_PARAM_NESTEROV == 6 && GTL_OPTIM_PARAM_CLIP_NORM == 7 &&
                   GTL_OPTIM_PARAM_WARMUP_STEPS == 8 &&
                   GTL_OPTIM_PARAM_WARMUP_START_FACTOR == 9 && GTL_OPTIM_PARAM_DECAY_GAMMA == 10,
               "optimizer settings are ABI");
_Static_assert(GTL_OPTIM_MAX_MILESTONES == 64, "the milestone limit is ABI");
_Static_assert(GTL_BACKBONE_CLIP_VIT_B16 == 0 && GTL_BACKBONE_CLIP_VIT_B32 == 1 &&
                   GTL_BACKBONE_VIT_TINY == 2 && GTL_BACKBONE_RESNET_SMALL == 3,
               "backbone presets are ABI");
_Static_assert(GTL_BACKBONE_IMAGE_SIZE == 0 && GTL_BACKBONE_FEATURE_DIM == 1 &&
                   GTL_BACKBONE_FEATURE_PARTS == 2 && GTL_BACKBONE_BF16 == 3 &&
                   GTL_BACKBONE_SEED == 4 && GTL_BACKBONE_TRAINABLE_BLOCKS == 5 &&
                   GTL_BACKBONE_NUM_CLASSES == 6 && GTL_BACKBONE_BATCH_SIZE == 7,
               "backbone settings are ABI");
_Static_assert(GTL_AUGMENT_NONE == 0 && GTL_AUGMENT_RESIZED_CROP == 1 && GTL_AUGMENT_FLIP == 2 &&
                   GTL_AUGMENT_COLOR == 4 && GTL_AUGMENT_STROKE == 8 && GTL_AUGMENT_EDGES == 16 &&
                   GTL_AUGMENT_GRAY == 32,
               "augmentation flags are ABI");

/* The exact type of every exported function. */
static uint32_t (*const p_version_number)(void) = gtl_version_number;
static const char *(*const p_version_string)(void) = gtl_version_string;
static const char *(*const p_strerror)(gtl_status) = gtl_strerror;
static const char *(*const p_last_error)(void) = gtl_last_error;
static gtl_status (*const p_set_allocator)(gtl_malloc_fn, gtl_realloc_fn, gtl_free_fn,
                                           void *) = gtl_set_allocator;
static gtl_status (*const p_memory_in_use)(uint64_t *, uint64_t *) = gtl_memory_in_use;
static gtl_status (*const p_set_log_callback)(gtl_log_fn, void *,
                                              gtl_log_level) = gtl_set_log_callback;
static gtl_status (*const p_set_num_threads)(int32_t) = gtl_set_num_threads;
static gtl_status (*const p_num_threads)(int32_t *) = gtl_num_threads;
static gtl_status (*const p_build_info)(char *, size_t, size_t *) = gtl_build_info;
static gtl_status (*const p_cpu_has_bf16)(int32_t *) = gtl_cpu_has_bf16;

/* dataset.h */
static gtl_status (*const p_dataset_create)(int64_t, gtl_dataset **) = gtl_dataset_create;
static void (*const p_dataset_destroy)(gtl_dataset *) = gtl_dataset_destroy;
static gtl_status (*const p_dataset_add)(gtl_dataset *, const float *, int64_t, const int64_t *,
                                         const int32_t *, const int64_t *) = gtl_dataset_add;
static gtl_status (*const p_dataset_size)(const gtl_dataset *, int64_t *) = gtl_dataset_size;
static gtl_status (*const p_dataset_feature_dim)(const gtl_dataset *,
                                                 int64_t *) = gtl_dataset_feature_dim;
static gtl_status (*const p_dataset_num_classes)(const gtl_dataset *, int64_t *,
                                                 int64_t *) = gtl_dataset_num_classes;
static gtl_status (*const p_dataset_get)(const gtl_dataset *, int64_t, float *, size_t, int64_t *,
                                         int32_t *, int64_t *) = gtl_dataset_get;
static gtl_status (*const p_dataset_remap_labels)(gtl_dataset *, int64_t *, size_t,
                                                  int64_t *) = gtl_dataset_remap_labels;
static gtl_status (*const p_dataset_identity_batch)(const gtl_dataset *, uint64_t *, int64_t,
                                                    int64_t, int64_t *, size_t,
                                                    int64_t *) = gtl_dataset_identity_batch;
static gtl_status (*const p_episode_create)(gtl_episode **) = gtl_episode_create;
static void (*const p_episode_destroy)(gtl_episode *) = gtl_episode_destroy;
static gtl_status (*const p_episode_sample)(gtl_episode *, const gtl_dataset *, int64_t, int64_t,
                                            int64_t, uint32_t, uint32_t,
                                            uint64_t) = gtl_episode_sample;
static const gtl_dataset *(*const p_episode_support)(const gtl_episode *) = gtl_episode_support;
static const gtl_dataset *(*const p_episode_query)(const gtl_episode *) = gtl_episode_query;
static gtl_status (*const p_episode_class_label)(const gtl_episode *, int64_t,
                                                 int64_t *) = gtl_episode_class_label;

/* optim.h */
static gtl_status (*const p_optimizer_create)(gtl_optim_kind,
                                              gtl_optimizer **) = gtl_optimizer_create;
static void (*const p_optimizer_destroy)(gtl_optimizer *) = gtl_optimizer_destroy;
static gtl_status (*const p_optimizer_reset)(gtl_optimizer *) = gtl_optimizer_reset;
static gtl_status (*const p_optimizer_set_f32)(gtl_optimizer *, gtl_optim_param,
                                               float) = gtl_optimizer_set_f32;
static gtl_status (*const p_optimizer_get_f32)(const gtl_optimizer *, gtl_optim_param,
                                               float *) = gtl_optimizer_get_f32;
static gtl_status (*const p_optimizer_set_i64)(gtl_optimizer *, gtl_optim_param,
                                               int64_t) = gtl_optimizer_set_i64;
static gtl_status (*const p_optimizer_get_i64)(const gtl_optimizer *, gtl_optim_param,
                                               int64_t *) = gtl_optimizer_get_i64;
static gtl_status (*const p_optim_param_bounds)(gtl_optim_param, double *,
                                                double *) = gtl_optim_param_bounds;
static gtl_status (*const p_optimizer_set_milestones)(gtl_optimizer *, const int64_t *,
                                                      size_t) = gtl_optimizer_set_milestones;
static gtl_status (*const p_optimizer_get_milestones)(const gtl_optimizer *, int64_t *, size_t,
                                                      size_t *) = gtl_optimizer_get_milestones;
static gtl_status (*const p_optimizer_lr_at)(const gtl_optimizer *, int64_t,
                                             float *) = gtl_optimizer_lr_at;
static gtl_status (*const p_optimizer_num_steps)(const gtl_optimizer *,
                                                 int64_t *) = gtl_optimizer_num_steps;
static gtl_status (*const p_optimizer_kind)(const gtl_optimizer *,
                                            gtl_optim_kind *) = gtl_optimizer_kind;

/* model.h */
static gtl_status (*const p_model_create)(gtl_model **) = gtl_model_create;
static void (*const p_model_destroy)(gtl_model *) = gtl_model_destroy;
static gtl_status (*const p_model_set_i64)(gtl_model *, gtl_model_param,
                                           int64_t) = gtl_model_set_i64;
static gtl_status (*const p_model_get_i64)(const gtl_model *, gtl_model_param,
                                           int64_t *) = gtl_model_get_i64;
static gtl_status (*const p_model_set_f32)(gtl_model *, gtl_model_param,
                                           float) = gtl_model_set_f32;
static gtl_status (*const p_model_get_f32)(const gtl_model *, gtl_model_param,
                                           float *) = gtl_model_get_f32;
static gtl_status (*const p_model_param_bounds)(gtl_model_param, double *, double *,
                                                int32_t *) = gtl_model_param_bounds;
static gtl_status (*const p_model_init)(gtl_model *) = gtl_model_init;
static gtl_status (*const p_model_num_params)(const gtl_model *, int64_t *) = gtl_model_num_params;
static gtl_status (*const p_model_predict)(gtl_model *, const float *, int64_t, int64_t, int64_t *,
                                           float *, size_t) = gtl_model_predict;
static gtl_status (*const p_model_latent)(gtl_model *, gtl_latent, const float *, int64_t, int64_t,
                                          float *, size_t) = gtl_model_latent;
static gtl_status (*const p_model_num_tensors)(const gtl_model *,
                                               int64_t *) = gtl_model_num_tensors;
static gtl_status (*const p_model_tensor_info)(const gtl_model *, int64_t, char *, size_t,
                                               int64_t *, int32_t *) = gtl_model_tensor_info;
static gtl_status (*const p_model_tensor_get)(const gtl_model *, int64_t, int32_t, float *,
                                              size_t) = gtl_model_tensor_get;
static gtl_status (*const p_model_tensor_set)(gtl_model *, int64_t, const float *,
                                              size_t) = gtl_model_tensor_set;
static gtl_status (*const p_model_save)(const gtl_model *, const gtl_optimizer *,
                                        const char *) = gtl_model_save;
static gtl_status (*const p_model_load)(const char *, gtl_model **,
                                        gtl_optimizer **) = gtl_model_load;

/* train.h */
static gtl_status (*const p_model_set_stage)(gtl_model *, gtl_stage,
                                             int64_t) = gtl_model_set_stage;
static gtl_status (*const p_model_forward_backward)(gtl_model *, const float *, int64_t, int64_t,
                                                    const int64_t *, float *,
                                                    size_t) = gtl_model_forward_backward;
static gtl_status (*const p_model_apply)(gtl_model *, gtl_optimizer *, float *) = gtl_model_apply;
static gtl_status (*const p_model_train_step)(gtl_model *, gtl_optimizer *, const float *,
                                              int64_t, int64_t, const int64_t *, float *,
                                              size_t) = gtl_model_train_step;
static gtl_status (*const p_model_train_stage)(gtl_model *, gtl_optimizer *, gtl_stage,
                                               const gtl_dataset *, int64_t, gtl_progress_fn,
                                               void *) = gtl_model_train_stage;
static gtl_status (*const p_adapt)(gtl_model *, const gtl_dataset *, gtl_progress_fn,
                                   void *) = gtl_adapt;

/* backbone.h */
static gtl_status (*const p_backbone_create)(gtl_backbone_preset,
                                             gtl_backbone **) = gtl_backbone_create;
static gtl_status (*const p_backbone_load)(const char *, gtl_backbone **) = gtl_backbone_load;
static gtl_status (*const p_backbone_save)(const gtl_backbone *,
                                           const char *) = gtl_backbone_save;
static void (*const p_backbone_destroy)(gtl_backbone *) = gtl_backbone_destroy;
static gtl_status (*const p_backbone_set_i64)(gtl_backbone *, gtl_backbone_param,
                                              int64_t) = gtl_backbone_set_i64;
static gtl_status (*const p_backbone_get_i64)(const gtl_backbone *, gtl_backbone_param,
                                              int64_t *) = gtl_backbone_get_i64;
static gtl_status (*const p_backbone_set_f32)(gtl_backbone *, gtl_backbone_param,
                                              float) = gtl_backbone_set_f32;
static gtl_status (*const p_backbone_get_f32)(const gtl_backbone *, gtl_backbone_param,
                                              float *) = gtl_backbone_get_f32;
static gtl_status (*const p_backbone_embed)(gtl_backbone *, const float *, int64_t, float *,
                                            size_t) = gtl_backbone_embed;
static gtl_status (*const p_backbone_embed_files)(gtl_backbone *, const char *const *, int64_t,
                                                  float *, size_t,
                                                  gtl_status *) = gtl_backbone_embed_files;
static gtl_status (*const p_backbone_set_cache_dir)(gtl_backbone *,
                                                    const char *) = gtl_backbone_set_cache_dir;
static gtl_status (*const p_backbone_train_step)(gtl_backbone *, gtl_optimizer *, const float *,
                                                 int64_t, const int64_t *, float *,
                                                 size_t) = gtl_backbone_train_step;
static gtl_status (*const p_image_load)(const char *, int32_t, float *, size_t) = gtl_image_load;
static gtl_status (*const p_image_preprocess)(const uint8_t *, int32_t, int32_t, int32_t, int32_t,
                                              float *, size_t) = gtl_image_preprocess;
static gtl_status (*const p_image_augment)(const char *, uint32_t, uint64_t *, int32_t, float *,
                                           size_t) = gtl_image_augment;

/* The callback typedefs, matched by these definitions. */
typedef struct counts {
    int n_malloc, n_realloc, n_free;
} counts;

static void *my_malloc(void *ud, size_t size)
{
    ((counts *)ud)->n_malloc++;
    return malloc(size);
}

static void *my_realloc(void *ud, void *ptr, size_t size)
{
    ((counts *)ud)->n_realloc++;
    return realloc(ptr, size);
}

static void my_free(void *ud, void *ptr)
{
    ((counts *)ud)->n_free++;
    free(ptr);
}

typedef struct log_sink {
    int n;
    gtl_log_level last_level;
    char last[256];
} log_sink;

static void my_log(void *ud, gtl_log_level level, const char *message)
{
    log_sink *s = ud;
    s->n++;
    s->last_level = level;
    snprintf(s->last, sizeof s->last, "%s", message);
}

/* ---- runtime checks ---------------------------------------------------------- */

static void check_version(void)
{
    CHECK(gtl_version_number() == GTL_VERSION_NUMBER);
    CHECK(p_version_number() == GTL_VERSION_NUMBER);
    CHECK(strcmp(gtl_version_string(), GTL_VERSION_STRING) == 0);
    CHECK(strcmp(p_version_string(), GTL_VERSION_STRING) == 0);
    /* The check version.h recommends. */
    CHECK(gtl_version_number() / 100 == GTL_VERSION_NUMBER / 100);
}

static void check_status_names(void)
{
    for (int s = GTL_STATUS_OK; s <= GTL_STATUS_INTERNAL; s++) {
        const char *name = gtl_strerror((gtl_status)s);
        CHECK(name != NULL && name[0] != '\0');
        CHECK(strcmp(name, "unknown status") != 0);
    }
    CHECK(strcmp(gtl_strerror(GTL_STATUS_OK), "ok") == 0);
    CHECK(strcmp(p_strerror(GTL_STATUS_INVALID_ARG), "invalid argument") == 0);
    CHECK(strcmp(gtl_strerror((gtl_status)11), "unknown status") == 0);
    CHECK(strcmp(gtl_strerror((gtl_status)-1), "unknown status") == 0);
}

static int other_thread(void *arg)
{
    char *seen = arg;
    snprintf(seen, 256, "%s", gtl_last_error());
    return gtl_set_num_threads(-5) == GTL_STATUS_INVALID_ARG ? 0 : 1;
}

static void check_last_error(void)
{
    CHECK(gtl_last_error() != NULL);
    CHECK(gtl_set_num_threads(0) == GTL_STATUS_INVALID_ARG);
    CHECK(strstr(gtl_last_error(), "gtl_set_num_threads") != NULL);
    char mine[256];
    snprintf(mine, sizeof mine, "%s", p_last_error());

    /* Per thread: a new thread sees an empty message, and its error does not
     * replace ours. */
    char seen[256] = "x";
    thrd_t th;
    int rc = 1;
    CHECK(thrd_create(&th, other_thread, seen) == thrd_success);
    CHECK(thrd_join(th, &rc) == thrd_success);
    CHECK(rc == 0);
    CHECK(seen[0] == '\0');
    CHECK(strcmp(gtl_last_error(), mine) == 0);

    int32_t n = 0;
    CHECK(gtl_num_threads(&n) == GTL_STATUS_OK);
    CHECK(gtl_last_error()[0] == '\0');
}

static void check_allocator(void)
{
    counts c = {0, 0, 0};
    uint64_t bytes = 1, blocks = 1;
    CHECK(gtl_memory_in_use(&bytes, &blocks) == GTL_STATUS_OK);
    CHECK(bytes == 0 && blocks == 0);
    CHECK(p_memory_in_use(NULL, &blocks) == GTL_STATUS_INVALID_ARG);
    CHECK(gtl_memory_in_use(&bytes, NULL) == GTL_STATUS_INVALID_ARG);
    CHECK(bytes == 0);
    CHECK(gtl_memory_in_use(NULL, NULL) == GTL_STATUS_INVALID_ARG);

    CHECK(gtl_set_allocator(my_malloc, NULL, NULL, &c) == GTL_STATUS_INVALID_ARG);
    CHECK(gtl_set_allocator(NULL, my_realloc, my_free, &c) == GTL_STATUS_INVALID_ARG);
    CHECK(gtl_set_allocator(my_malloc, my_realloc, NULL, NULL) == GTL_STATUS_INVALID_ARG);
    CHECK(strstr(gtl_last_error(), "gtl_set_allocator") != NULL);
    CHECK(p_set_allocator(my_malloc, my_realloc, my_free, &c) == GTL_STATUS_OK);
    CHECK(gtl_last_error()[0] == '\0');
    /* The runtime calls allocate nothing. */
    char info[512];
    CHECK(gtl_build_info(info, sizeof info, NULL) == GTL_STATUS_OK);
    CHECK(c.n_malloc == 0 && c.n_realloc == 0 && c.n_free == 0);
    CHECK(gtl_set_allocator(NULL, NULL, NULL, NULL) == GTL_STATUS_OK);
}

static void check_logging(void)
{
    log_sink s;
    memset(&s, 0, sizeof s);
    CHECK(gtl_set_log_callback(my_log, &s, (gtl_log_level)4) == GTL_STATUS_INVALID_ARG);
    CHECK(gtl_set_log_callback(my_log, &s, (gtl_log_level)-1) == GTL_STATUS_INVALID_ARG);
    CHECK(strstr(gtl_last_error(), "gtl_set_log_callback") != NULL);
    CHECK(s.n == 0);
    /* Failures are reported at DEBUG: visible with DEBUG, filtered with WARN. */
    CHECK(p_set_log_callback(my_log, &s, GTL_LOG_DEBUG) == GTL_STATUS_OK);
    CHECK(gtl_set_num_threads(0) == GTL_STATUS_INVALID_ARG);
    CHECK(s.n == 1);
    CHECK(s.last_level == GTL_LOG_DEBUG);
    CHECK(strstr(s.last, "gtl_set_num_threads") != NULL);
    CHECK(gtl_set_log_callback(my_log, &s, GTL_LOG_WARN) == GTL_STATUS_OK);
    CHECK(gtl_set_num_threads(0) == GTL_STATUS_INVALID_ARG);
    CHECK(s.n == 1);
    CHECK(gtl_set_log_callback(NULL, NULL, GTL_LOG_DEBUG) == GTL_STATUS_OK);
    CHECK(gtl_set_num_threads(0) == GTL_STATUS_INVALID_ARG);
    CHECK(s.n == 1);
}

static void check_threads(void)
{
    int32_t n0 = 0;
    CHECK(gtl_num_threads(&n0) == GTL_STATUS_OK);
    CHECK(n0 >= 1);
    CHECK(p_num_threads(NULL) == GTL_STATUS_INVALID_ARG);
    CHECK(gtl_set_num_threads(0) == GTL_STATUS_INVALID_ARG);
    CHECK(gtl_set_num_threads(-1) == GTL_STATUS_INVALID_ARG);
    CHECK(gtl_set_num_threads(5000) == GTL_STATUS_INVALID_ARG);
    CHECK(p_set_num_threads(1) == GTL_STATUS_OK);
    int32_t n = 0;
    CHECK(gtl_num_threads(&n) == GTL_STATUS_OK);
    CHECK(n == 1);
    CHECK(gtl_set_num_threads(n0) == GTL_STATUS_OK);
}

static void check_build_info(void)
{
    char info[512];
    size_t len = 0;
    CHECK(gtl_build_info(info, sizeof info, &len) == GTL_STATUS_OK);
    CHECK(len == strlen(info));
    CHECK(strncmp(info, "libgtl " GTL_VERSION_STRING ";", strlen("libgtl " GTL_VERSION_STRING ";"))
          == 0);
    CHECK(strstr(info, "oneDNN ") != NULL);
    CHECK(strstr(info, "isa ") != NULL);
    CHECK(strstr(info, "threads ") != NULL);
    printf("# %s\n", info);

    char small[8];
    memset(small, 'X', sizeof small);
    size_t l2 = 99;
    CHECK(p_build_info(small, sizeof small, &l2) == GTL_STATUS_INVALID_ARG);
    CHECK(l2 == 0);
    for (size_t i = 0; i < sizeof small; i++)
        CHECK(small[i] == 'X');
    CHECK(gtl_build_info(NULL, sizeof info, &l2) == GTL_STATUS_INVALID_ARG);
    CHECK(gtl_build_info(info, len, NULL) == GTL_STATUS_INVALID_ARG);
    CHECK(gtl_build_info(info, len + 1, NULL) == GTL_STATUS_OK);

    int32_t bf16 = -1;
    CHECK(gtl_cpu_has_bf16(&bf16) == GTL_STATUS_OK);
    CHECK(bf16 == 0 || bf16 == 1);
    CHECK(strstr(info, bf16 ? "bf16 yes" : "bf16 no") != NULL);
    CHECK(p_cpu_has_bf16(NULL) == GTL_STATUS_INVALID_ARG);
}

/* ---- shared helpers for the handle APIs ---------------------------------------- */

/* A non-NULL value for out pointers, to see that failures reset them. */
static max_align_t sentinel_obj;
#define SENTINEL(T) ((T *)(void *)&sentinel_obj)

static double abs_d(double x)
{
    return x < 0 ? -x : x;
}

static int close_to(double a, double b, double rel)
{
    return abs_d(a - b) <= rel * abs_d(b) + 1e-30;
}

static void check_no_memory(const char *where)
{
    uint64_t bytes = 1, blocks = 1;
    CHECK(gtl_memory_in_use(&bytes, &blocks) == GTL_STATUS_OK);
    if (bytes != 0 || blocks != 0) {
        fprintf(stderr, "%s: libgtl still holds %llu bytes in %llu blocks\n", where,
                (unsigned long long)bytes, (unsigned long long)blocks);
        n_failed++;
    }
}

/* The base data: 4 classes (labels 10, 20, 30, 40) of 6 samples each: photos
 * 0..2 and sketches 3..5, photo k and sketch k + 3 sharing a pair id. Class c
 * lights up features j with j % 4 == c; sketches add 0.5 to the upper half. */
enum { FD = 16, N_BASE = 24, N_CLS = 4, PER_CLS = 6 };
static float base_x[N_BASE * FD];
static int64_t base_label[N_BASE];
static int64_t base_cls[N_BASE];
static int32_t base_mod[N_BASE];
static int64_t base_pair[N_BASE];

static void make_base_data(void)
{
    uint64_t s = 12345;
    for (int i = 0; i < N_BASE; i++) {
        int c = i / PER_CLS, k = i % PER_CLS;
        base_cls[i] = c;
        base_label[i] = 10 * (c + 1);
        base_mod[i] = k < 3 ? GTL_MODALITY_RGB : GTL_MODALITY_SKETCH;
        base_pair[i] = 100 * c + k % 3;
        for (int j = 0; j < FD; j++) {
            s = s * 6364136223846793005ull + 1442695040888963407ull;
            float u = (float)(s >> 40) / 16777216.0f - 0.5f;
            base_x[i * FD + j] = (j % N_CLS == c ? 2.0f : 0.0f) +
                                 (k >= 3 && j >= FD / 2 ? 0.5f : 0.0f) + 0.2f * u;
        }
    }
}

static gtl_dataset *make_base(void)
{
    gtl_dataset *ds = NULL;
    CHECK_OK(gtl_dataset_create(FD, &ds));
    CHECK_OK(gtl_dataset_add(ds, base_x, N_BASE, base_label, base_mod, base_pair));
    return ds;
}

/* The source sample with this pair id and modality, or -1. */
static int base_find(int64_t pair, int32_t mod)
{
    for (int i = 0; i < N_BASE; i++)
        if (base_pair[i] == pair && base_mod[i] == mod)
            return i;
    return -1;
}

/* ---- datasets ------------------------------------------------------------------ */

static void check_dataset_basics(void)
{
    gtl_dataset *ds = SENTINEL(gtl_dataset);
    CHECK_FAIL(gtl_dataset_create(FD, NULL), GTL_STATUS_INVALID_ARG, "gtl_dataset_create");
    CHECK_FAIL(p_dataset_create(0, &ds), GTL_STATUS_INVALID_ARG, "feature_dim");
    CHECK(ds == NULL);
    ds = SENTINEL(gtl_dataset);
    CHECK_FAIL(gtl_dataset_create(((int64_t)1 << 20) + 1, &ds), GTL_STATUS_INVALID_ARG,
               "gtl_dataset_create");
    CHECK(ds == NULL);
    CHECK_FAIL(gtl_dataset_create(-3, &ds), GTL_STATUS_INVALID_ARG, "gtl_dataset_create");
    gtl_dataset_destroy(NULL);
    p_dataset_destroy(NULL);

    CHECK_OK(gtl_dataset_create(FD, &ds));
    int64_t n = -1, n_cls = -1, end = -1;
    CHECK_OK(gtl_dataset_size(ds, &n));
    CHECK(n == 0);
    CHECK_OK(gtl_dataset_num_classes(ds, &n_cls, &end));
    CHECK(n_cls == 0 && end == 0);

    /* Every bad input is refused before anything is appended. */
    float x[2 * FD];
    memcpy(x, base_x, sizeof x);
    int64_t lab[2] = {7, 3};
    int32_t mod[2] = {GTL_MODALITY_DEPTH, GTL_MODALITY_USER + 15};
    int64_t pair[2] = {GTL_NO_PAIR, 5};
    CHECK_FAIL(p_dataset_add(NULL, x, 2, lab, mod, pair), GTL_STATUS_INVALID_ARG,
               "gtl_dataset_add");
    CHECK_FAIL(gtl_dataset_add(ds, NULL, 2, lab, mod, pair), GTL_STATUS_INVALID_ARG,
               "gtl_dataset_add");
    CHECK_FAIL(gtl_dataset_add(ds, x, 2, NULL, mod, pair), GTL_STATUS_INVALID_ARG,
               "gtl_dataset_add");
    CHECK_FAIL(gtl_dataset_add(ds, x, 0, lab, mod, pair), GTL_STATUS_INVALID_ARG, "n must be");
    CHECK_FAIL(gtl_dataset_add(ds, x, -1, lab, mod, pair), GTL_STATUS_INVALID_ARG, "n must be");
    lab[1] = -1;
    CHECK_FAIL(gtl_dataset_add(ds, x, 2, lab, mod, pair), GTL_STATUS_INVALID_ARG, "negative");
    lab[1] = 3;
    mod[1] = 32;
    CHECK_FAIL(gtl_dataset_add(ds, x, 2, lab, mod, pair), GTL_STATUS_INVALID_ARG, "modality");
    mod[1] = -1;
    CHECK_FAIL(gtl_dataset_add(ds, x, 2, lab, mod, pair), GTL_STATUS_INVALID_ARG, "modality");
    mod[1] = GTL_MODALITY_USER + 15;
    pair[1] = -2;
    CHECK_FAIL(gtl_dataset_add(ds, x, 2, lab, mod, pair), GTL_STATUS_INVALID_ARG, "pair id");
    pair[1] = 5;
    x[FD + 3] = NAN;
    CHECK_FAIL(gtl_dataset_add(ds, x, 2, lab, mod, pair), GTL_STATUS_INVALID_ARG, "NaN");
    x[FD + 3] = -INFINITY;
    CHECK_FAIL(gtl_dataset_add(ds, x, 2, lab, mod, pair), GTL_STATUS_INVALID_ARG, "infinite");
    x[FD + 3] = base_x[FD + 3];
    CHECK_OK(gtl_dataset_size(ds, &n));
    CHECK(n == 0);

    /* Valid rows, then rows with the defaults (RGB, no pair). */
    CHECK_OK(gtl_dataset_add(ds, x, 2, lab, mod, pair));
    CHECK_OK(gtl_dataset_add(ds, x, 1, lab, NULL, NULL));
    CHECK_OK(gtl_dataset_size(ds, &n));
    CHECK(n == 3);
    CHECK_OK(p_dataset_num_classes(ds, &n_cls, &end));
    CHECK(n_cls == 2 && end == 8);
    float row[FD];
    int64_t l = -1, pr = -9;
    int32_t md = -1;
    CHECK_OK(gtl_dataset_get(ds, 1, row, FD, &l, &md, &pr));
    CHECK(memcmp(row, x + FD, sizeof row) == 0);
    CHECK(l == 3 && md == GTL_MODALITY_USER + 15 && pr == 5);
    CHECK_OK(gtl_dataset_get(ds, 2, NULL, 0, &l, &md, &pr));
    CHECK(l == 7 && md == GTL_MODALITY_RGB && pr == GTL_NO_PAIR);
    gtl_dataset_destroy(ds);
    check_no_memory("dataset basics");
}

static void check_dataset_queries(void)
{
    gtl_dataset *ds = make_base();
    int64_t n = -1, dim = -1, n_cls = -1, end = -1;
    CHECK_OK(p_dataset_size(ds, &n));
    CHECK(n == N_BASE);
    CHECK_OK(p_dataset_feature_dim(ds, &dim));
    CHECK(dim == FD);
    CHECK_OK(gtl_dataset_num_classes(ds, &n_cls, &end));
    CHECK(n_cls == N_CLS && end == 41);
    CHECK_OK(gtl_dataset_num_classes(ds, &n_cls, NULL));

    n = dim = n_cls = end = 5;
    CHECK_FAIL(gtl_dataset_size(NULL, &n), GTL_STATUS_INVALID_ARG, "gtl_dataset_size");
    CHECK(n == 0);
    CHECK_FAIL(gtl_dataset_size(ds, NULL), GTL_STATUS_INVALID_ARG, "gtl_dataset_size");
    CHECK_FAIL(gtl_dataset_feature_dim(NULL, &dim), GTL_STATUS_INVALID_ARG,
               "gtl_dataset_feature_dim");
    CHECK(dim == 0);
    CHECK_FAIL(gtl_dataset_feature_dim(ds, NULL), GTL_STATUS_INVALID_ARG,
               "gtl_dataset_feature_dim");
    CHECK_FAIL(gtl_dataset_num_classes(NULL, &n_cls, &end), GTL_STATUS_INVALID_ARG,
               "gtl_dataset_num_classes");
    CHECK(n_cls == 0 && end == 0);
    end = 5;
    CHECK_FAIL(gtl_dataset_num_classes(ds, NULL, &end), GTL_STATUS_INVALID_ARG,
               "gtl_dataset_num_classes");
    CHECK(end == 0);

    /* get */
    float row[FD];
    int64_t l = -1, pr = -9;
    int32_t md = -1;
    for (int i = 0; i < N_BASE; i++) {
        CHECK_OK(p_dataset_get(ds, i, row, FD, &l, &md, &pr));
        CHECK(memcmp(row, base_x + i * FD, sizeof row) == 0);
        CHECK(l == base_label[i] && md == base_mod[i] && pr == base_pair[i]);
    }
    CHECK_OK(gtl_dataset_get(ds, 3, NULL, 0, NULL, NULL, NULL));
    for (int j = 0; j < FD; j++)
        row[j] = -7.0f;
    l = pr = 9;
    md = 9;
    CHECK_FAIL(gtl_dataset_get(ds, 0, row, FD - 1, &l, &md, &pr), GTL_STATUS_INVALID_ARG,
               "dst_capacity");
    CHECK(row[0] == -7.0f && row[FD - 1] == -7.0f);
    CHECK(l == 0 && md == 0 && pr == 0);
    l = pr = 9;
    md = 9;
    CHECK_FAIL(gtl_dataset_get(ds, N_BASE, row, FD, &l, &md, &pr), GTL_STATUS_INVALID_ARG,
               "out of range");
    CHECK(l == 0 && md == 0 && pr == 0);
    CHECK_FAIL(gtl_dataset_get(ds, -1, row, FD, &l, &md, &pr), GTL_STATUS_INVALID_ARG,
               "gtl_dataset_get");
    CHECK_FAIL(gtl_dataset_get(NULL, 0, row, FD, &l, &md, &pr), GTL_STATUS_INVALID_ARG,
               "gtl_dataset_get");
    CHECK(row[0] == -7.0f);

    /* identity batches */
    uint64_t rs = 99, rs0;
    int64_t idx[32], idx2[32], nb = -1;
    CHECK_FAIL(gtl_dataset_identity_batch(NULL, &rs, 2, 3, idx, 32, &nb), GTL_STATUS_INVALID_ARG,
               "gtl_dataset_identity_batch");
    CHECK(nb == 0);
    nb = -1;
    CHECK_FAIL(gtl_dataset_identity_batch(ds, NULL, 2, 3, idx, 32, &nb), GTL_STATUS_INVALID_ARG,
               "gtl_dataset_identity_batch");
    CHECK(nb == 0);
    CHECK_FAIL(gtl_dataset_identity_batch(ds, &rs, 2, 3, NULL, 32, &nb), GTL_STATUS_INVALID_ARG,
               "gtl_dataset_identity_batch");
    CHECK_FAIL(gtl_dataset_identity_batch(ds, &rs, 2, 3, idx, 32, NULL), GTL_STATUS_INVALID_ARG,
               "gtl_dataset_identity_batch");
    CHECK_FAIL(gtl_dataset_identity_batch(ds, &rs, 0, 3, idx, 32, &nb), GTL_STATUS_INVALID_ARG,
               "p_classes");
    CHECK_FAIL(gtl_dataset_identity_batch(ds, &rs, 2, 0, idx, 32, &nb), GTL_STATUS_INVALID_ARG,
               "k_samples");
    nb = -1;
    CHECK_FAIL(gtl_dataset_identity_batch(ds, &rs, 2, 3, idx, 5, &nb), GTL_STATUS_INVALID_ARG,
               "capacity");
    CHECK(nb == 0 && rs == 99);
    gtl_dataset *empty = NULL;
    CHECK_OK(gtl_dataset_create(FD, &empty));
    CHECK_FAIL(gtl_dataset_identity_batch(empty, &rs, 2, 3, idx, 32, &nb), GTL_STATUS_INVALID_ARG,
               "empty");
    gtl_dataset_destroy(empty);

    CHECK_OK(p_dataset_identity_batch(ds, &rs, 2, 3, idx, 32, &nb));
    CHECK(nb == 6 && rs != 99);
    for (int c = 0; c < 2; c++)
        for (int j = 0; j < 3; j++) {
            int64_t i = idx[c * 3 + j];
            CHECK(i >= 0 && i < N_BASE);
            if (i < 0 || i >= N_BASE)
                continue;
            CHECK(base_label[i] == base_label[idx[c * 3]]);
            for (int q = 0; q < j; q++)
                CHECK(idx[c * 3 + q] != i); /* without replacement: 6 per class */
        }
    CHECK(base_label[idx[0]] != base_label[idx[3]]);
    /* The state is the seed: the same state gives the same batch. */
    rs0 = 99;
    CHECK_OK(gtl_dataset_identity_batch(ds, &rs0, 2, 3, idx2, 32, &nb));
    CHECK(rs0 == rs && memcmp(idx, idx2, 6 * sizeof idx[0]) == 0);
    /* p capped at the number of classes; k beyond a class repeats samples. */
    CHECK_OK(gtl_dataset_identity_batch(ds, &rs, 10, 2, idx, 8, &nb));
    CHECK(nb == 8);
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < a; b++)
            CHECK(base_label[idx[2 * a]] != base_label[idx[2 * b]]);
    CHECK_OK(gtl_dataset_identity_batch(ds, &rs, 1, 8, idx, 8, &nb));
    CHECK(nb == 8);
    for (int j = 0; j < 8; j++)
        CHECK(base_label[idx[j]] == base_label[idx[0]]);
    for (int a = 0; a < PER_CLS; a++)
        for (int b = 0; b < a; b++)
            CHECK(idx[a] != idx[b]);

    /* remap_labels */
    int64_t map[4] = {-1, -1, -1, -1}, c = 9;
    CHECK_FAIL(gtl_dataset_remap_labels(NULL, map, 4, &c), GTL_STATUS_INVALID_ARG,
               "gtl_dataset_remap_labels");
    CHECK(c == 0);
    c = 9;
    CHECK_FAIL(gtl_dataset_remap_labels(ds, map, 3, &c), GTL_STATUS_INVALID_ARG, "map_capacity");
    CHECK(c == 0 && map[0] == -1);
    CHECK_OK(gtl_dataset_get(ds, 7, NULL, 0, &l, NULL, NULL));
    CHECK(l == 20);
    CHECK_OK(p_dataset_remap_labels(ds, map, 4, &c));
    CHECK(c == 4 && map[0] == 10 && map[1] == 20 && map[2] == 30 && map[3] == 40);
    CHECK_OK(gtl_dataset_num_classes(ds, &n_cls, &end));
    CHECK(n_cls == 4 && end == 4);
    for (int i = 0; i < N_BASE; i++) {
        CHECK_OK(gtl_dataset_get(ds, i, NULL, 0, &l, NULL, NULL));
        CHECK(l == base_cls[i]);
    }
    CHECK_OK(gtl_dataset_remap_labels(ds, NULL, 0, NULL));
    gtl_dataset_destroy(ds);
    check_no_memory("dataset queries");
}

/* ---- episodes ------------------------------------------------------------------ */

static void check_episodes(void)
{
    const uint32_t rgb = GTL_MODALITY_BIT(GTL_MODALITY_RGB);
    const uint32_t sketch = GTL_MODALITY_BIT(GTL_MODALITY_SKETCH);
    gtl_dataset *ds = make_base();
    gtl_episode *ep = SENTINEL(gtl_episode), *ep2 = NULL;
    CHECK_FAIL(p_episode_create(NULL), GTL_STATUS_INVALID_ARG, "gtl_episode_create");
    CHECK_OK(gtl_episode_create(&ep));
    CHECK_OK(gtl_episode_create(&ep2));
    CHECK(gtl_episode_support(ep) == NULL && gtl_episode_query(ep) == NULL);
    CHECK(p_episode_support(NULL) == NULL && p_episode_query(NULL) == NULL);
    int64_t lab = 9;
    CHECK_FAIL(gtl_episode_class_label(ep, 0, &lab), GTL_STATUS_BAD_STATE, "not sampled");
    CHECK(lab == 0);
    CHECK_FAIL(gtl_episode_class_label(NULL, 0, &lab), GTL_STATUS_INVALID_ARG,
               "gtl_episode_class_label");
    CHECK_FAIL(gtl_episode_class_label(ep, 0, NULL), GTL_STATUS_INVALID_ARG,
               "gtl_episode_class_label");

    CHECK_FAIL(gtl_episode_sample(NULL, ds, 3, 1, 1, rgb, rgb, 1), GTL_STATUS_INVALID_ARG,
               "gtl_episode_sample");
    CHECK_FAIL(gtl_episode_sample(ep, NULL, 3, 1, 1, rgb, rgb, 1), GTL_STATUS_INVALID_ARG,
               "gtl_episode_sample");
    CHECK_FAIL(gtl_episode_sample(ep, ds, 0, 1, 1, rgb, rgb, 1), GTL_STATUS_INVALID_ARG,
               "n_way");
    CHECK_FAIL(gtl_episode_sample(ep, ds, 3, 0, 1, rgb, rgb, 1), GTL_STATUS_INVALID_ARG,
               "k_shot");
    CHECK_FAIL(gtl_episode_sample(ep, ds, 3, 1, -1, rgb, rgb, 1), GTL_STATUS_INVALID_ARG,
               "q_query");
    CHECK_FAIL(gtl_episode_sample(ep, ds, 3, 1, 1, 0, rgb, 1), GTL_STATUS_INVALID_ARG,
               "support_modalities");
    CHECK(gtl_episode_support(ep) == NULL);

    /* 3-way, one photo and one sketch per class, one photo query per class. */
    CHECK_OK(p_episode_sample(ep, ds, 3, 1, 1, rgb | sketch, rgb, 42));
    const gtl_dataset *sup = gtl_episode_support(ep), *qry = gtl_episode_query(ep);
    CHECK(sup != NULL && qry != NULL);
    int64_t n = 0, dim = 0, n_cls = 0, end = 0;
    CHECK_OK(gtl_dataset_size(sup, &n));
    CHECK(n == 6);
    CHECK_OK(gtl_dataset_feature_dim(sup, &dim));
    CHECK(dim == FD);
    CHECK_OK(gtl_dataset_num_classes(sup, &n_cls, &end));
    CHECK(n_cls == 3 && end == 3);
    CHECK_OK(gtl_dataset_size(qry, &n));
    CHECK(n == 3);
    int64_t cls_label[3];
    for (int c = 0; c < 3; c++) {
        CHECK_OK(p_episode_class_label(ep, c, &cls_label[c]));
        CHECK(cls_label[c] >= 10 && cls_label[c] <= 40 && cls_label[c] % 10 == 0);
        for (int d = 0; d < c; d++)
            CHECK(cls_label[c] != cls_label[d]);
    }
    /* Each support/query row is a copy of a source row of the right class;
     * a query never shares a pair id with its class's support rows. */
    int n_rgb[3] = {0, 0, 0}, n_sketch[3] = {0, 0, 0};
    int64_t sup_pair[6], sup_lab[6];
    for (int i = 0; i < 6; i++) {
        float row[FD];
        int32_t md = -1;
        CHECK_OK(gtl_dataset_get(sup, i, row, FD, &sup_lab[i], &md, &sup_pair[i]));
        int src = base_find(sup_pair[i], md);
        CHECK(src >= 0 && sup_lab[i] >= 0 && sup_lab[i] < 3);
        if (src < 0 || sup_lab[i] < 0 || sup_lab[i] >= 3)
            continue;
        CHECK(memcmp(row, base_x + src * FD, sizeof row) == 0);
        CHECK(base_label[src] == cls_label[sup_lab[i]]);
        n_rgb[sup_lab[i]] += md == GTL_MODALITY_RGB;
        n_sketch[sup_lab[i]] += md == GTL_MODALITY_SKETCH;
    }
    for (int c = 0; c < 3; c++)
        CHECK(n_rgb[c] == 1 && n_sketch[c] == 1);
    for (int i = 0; i < 3; i++) {
        int64_t ql = -1, qp = -1;
        int32_t md = -1;
        CHECK_OK(gtl_dataset_get(qry, i, NULL, 0, &ql, &md, &qp));
        CHECK(md == GTL_MODALITY_RGB && ql >= 0 && ql < 3);
        for (int j = 0; j < 6; j++)
            CHECK(!(sup_lab[j] == ql && sup_pair[j] == qp));
    }
    /* The same seed gives the same episode. */
    CHECK_OK(gtl_episode_sample(ep2, ds, 3, 1, 1, rgb | sketch, rgb, 42));
    for (int c = 0; c < 3; c++) {
        CHECK_OK(gtl_episode_class_label(ep2, c, &lab));
        CHECK(lab == cls_label[c]);
    }
    for (int i = 0; i < 6; i++) {
        int64_t p2 = -1;
        CHECK_OK(gtl_dataset_get(gtl_episode_support(ep2), i, NULL, 0, NULL, NULL, &p2));
        CHECK(p2 == sup_pair[i]);
    }
    lab = 9;
    CHECK_FAIL(gtl_episode_class_label(ep, 3, &lab), GTL_STATUS_INVALID_ARG, "out of range");
    CHECK(lab == 0);
    CHECK_FAIL(gtl_episode_class_label(ep, -1, &lab), GTL_STATUS_INVALID_ARG, "out of range");

    /* Requests the data cannot satisfy: INVALID_ARG saying how many classes
     * can, and the episode keeps its previous contents. */
    CHECK_FAIL(gtl_episode_sample(ep, ds, 5, 1, 1, rgb, rgb, 1), GTL_STATUS_INVALID_ARG,
               "of 4 classes");
    CHECK_FAIL(gtl_episode_sample(ep, ds, 2, 4, 0, rgb, rgb, 1), GTL_STATUS_INVALID_ARG,
               "only 0 of 4 classes");
    CHECK_FAIL(gtl_episode_sample(ep, ds, 1, 1, 1, GTL_MODALITY_BIT(GTL_MODALITY_INFRARED), rgb,
                                  1),
               GTL_STATUS_INVALID_ARG, "only 0 of 4 classes");
    /* 3 sketches per class, but the one paired with the support photo is
     * not a valid query: only 2 can be drawn. */
    CHECK_FAIL(gtl_episode_sample(ep, ds, 1, 1, 3, rgb, sketch, 1), GTL_STATUS_INVALID_ARG,
               "only 0 of 4 classes");
    /* Sizes far beyond the data are refused the same way, without trying
     * to allocate for them. */
    CHECK_FAIL(gtl_episode_sample(ep, ds, 65536, 65536, 65536, GTL_MODALITY_ALL, rgb, 1),
               GTL_STATUS_INVALID_ARG, "of 4 classes");
    CHECK_FAIL(gtl_episode_sample(ep, ds, 4, 65536, 65536, GTL_MODALITY_ALL, rgb, 1),
               GTL_STATUS_INVALID_ARG, "of 4 classes");
    CHECK(gtl_episode_support(ep) == sup && gtl_episode_query(ep) == qry);
    CHECK_OK(gtl_dataset_size(sup, &n));
    CHECK(n == 6);
    CHECK_OK(gtl_episode_class_label(ep, 2, &lab));
    CHECK(lab == cls_label[2]);

    /* Two sketches can always be drawn: neither shares the photo's pair. */
    for (uint64_t seed = 0; seed < 8; seed++) {
        CHECK_OK(gtl_episode_sample(ep, ds, 2, 1, 2, rgb, sketch, seed));
        int64_t sp[2], sl[2];
        for (int i = 0; i < 2; i++)
            CHECK_OK(gtl_dataset_get(gtl_episode_support(ep), i, NULL, 0, &sl[i], NULL, &sp[i]));
        for (int i = 0; i < 4; i++) {
            int64_t ql = -1, qp = -1;
            CHECK_OK(gtl_dataset_get(gtl_episode_query(ep), i, NULL, 0, &ql, NULL, &qp));
            for (int j = 0; j < 2; j++)
                CHECK(!(sl[j] == ql && sp[j] == qp));
        }
    }
    gtl_episode_destroy(ep);
    p_episode_destroy(ep2);
    gtl_episode_destroy(NULL);
    gtl_dataset_destroy(ds);
    check_no_memory("episodes");
}

/* ---- optimizer ----------------------------------------------------------------- */

static void check_optimizer(void)
{
    gtl_optimizer *opt = SENTINEL(gtl_optimizer), *sgd = NULL, *adamw = NULL;
    CHECK_FAIL(gtl_optimizer_create(GTL_OPTIM_ADAM, NULL), GTL_STATUS_INVALID_ARG,
               "gtl_optimizer_create");
    CHECK_FAIL(p_optimizer_create((gtl_optim_kind)3, &opt), GTL_STATUS_INVALID_ARG,
               "gtl_optimizer_create");
    CHECK(opt == NULL);
    opt = SENTINEL(gtl_optimizer);
    CHECK_FAIL(gtl_optimizer_create((gtl_optim_kind)-1, &opt), GTL_STATUS_INVALID_ARG,
               "gtl_optim_kind");
    CHECK(opt == NULL);
    CHECK_OK(gtl_optimizer_create(GTL_OPTIM_ADAM, &opt));
    CHECK_OK(gtl_optimizer_create(GTL_OPTIM_SGD, &sgd));
    CHECK_OK(gtl_optimizer_create(GTL_OPTIM_ADAMW, &adamw));
    gtl_optimizer_destroy(NULL);
    p_optimizer_destroy(NULL);

    /* Defaults (PyTorch's). */
    static const struct {
        gtl_optim_param key;
        float adam, adamw;
    } fdef[] = {
        {GTL_OPTIM_PARAM_LR, 1e-3f, 1e-3f},
        {GTL_OPTIM_PARAM_BETA1, 0.9f, 0.9f},
        {GTL_OPTIM_PARAM_BETA2, 0.999f, 0.999f},
        {GTL_OPTIM_PARAM_EPS, 1e-8f, 1e-8f},
        {GTL_OPTIM_PARAM_WEIGHT_DECAY, 0.0f, 1e-2f},
        {GTL_OPTIM_PARAM_MOMENTUM, 0.0f, 0.0f},
        {GTL_OPTIM_PARAM_CLIP_NORM, 0.0f, 0.0f},
        {GTL_OPTIM_PARAM_WARMUP_START_FACTOR, 0.01f, 0.01f},
        {GTL_OPTIM_PARAM_DECAY_GAMMA, 0.1f, 0.1f},
    };
    for (size_t i = 0; i < sizeof fdef / sizeof fdef[0]; i++) {
        float v = -1.0f;
        CHECK_OK(p_optimizer_get_f32(opt, fdef[i].key, &v));
        CHECK(v == fdef[i].adam);
        CHECK_OK(gtl_optimizer_get_f32(adamw, fdef[i].key, &v));
        CHECK(v == fdef[i].adamw);
    }
    int64_t iv = -1;
    CHECK_OK(p_optimizer_get_i64(opt, GTL_OPTIM_PARAM_NESTEROV, &iv));
    CHECK(iv == 0);
    CHECK_OK(gtl_optimizer_get_i64(opt, GTL_OPTIM_PARAM_WARMUP_STEPS, &iv));
    CHECK(iv == 0);

    /* Getters: wrong type, unknown key, NULLs; the out value is zeroed. */
    float fv = 7.0f;
    CHECK_FAIL(gtl_optimizer_get_f32(opt, GTL_OPTIM_PARAM_NESTEROV, &fv), GTL_STATUS_INVALID_ARG,
               "NESTEROV");
    CHECK(fv == 0.0f);
    fv = 7.0f;
    CHECK_FAIL(gtl_optimizer_get_f32(opt, (gtl_optim_param)11, &fv), GTL_STATUS_INVALID_ARG,
               "gtl_optimizer_get_f32");
    CHECK(fv == 0.0f);
    fv = 7.0f;
    CHECK_FAIL(gtl_optimizer_get_f32(NULL, GTL_OPTIM_PARAM_LR, &fv), GTL_STATUS_INVALID_ARG,
               "gtl_optimizer_get_f32");
    CHECK(fv == 0.0f);
    CHECK_FAIL(gtl_optimizer_get_f32(opt, GTL_OPTIM_PARAM_LR, NULL), GTL_STATUS_INVALID_ARG,
               "gtl_optimizer_get_f32");
    iv = 7;
    CHECK_FAIL(gtl_optimizer_get_i64(opt, GTL_OPTIM_PARAM_LR, &iv), GTL_STATUS_INVALID_ARG,
               "LR");
    CHECK(iv == 0);
    iv = 7;
    CHECK_FAIL(gtl_optimizer_get_i64(opt, (gtl_optim_param)-1, &iv), GTL_STATUS_INVALID_ARG,
               "gtl_optimizer_get_i64");
    CHECK(iv == 0);
    CHECK_FAIL(gtl_optimizer_get_i64(NULL, GTL_OPTIM_PARAM_NESTEROV, &iv),
               GTL_STATUS_INVALID_ARG, "gtl_optimizer_get_i64");
    CHECK_FAIL(gtl_optimizer_get_i64(opt, GTL_OPTIM_PARAM_NESTEROV, NULL),
               GTL_STATUS_INVALID_ARG, "gtl_optimizer_get_i64");

    /* Setters: a refused value leaves the setting unchanged. */
    CHECK_OK(p_optimizer_set_f32(opt, GTL_OPTIM_PARAM_LR, 2e-3f));
    CHECK_FAIL(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_LR, -1.0f), GTL_STATUS_INVALID_ARG,
               "LR");
    CHECK_FAIL(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_LR, NAN), GTL_STATUS_INVALID_ARG,
               "gtl_optimizer_set_f32");
    CHECK_FAIL(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_LR, 1001.0f), GTL_STATUS_INVALID_ARG,
               "gtl_optimizer_set_f32");
    CHECK_OK(gtl_optimizer_get_f32(opt, GTL_OPTIM_PARAM_LR, &fv));
    CHECK(fv == 2e-3f);
    CHECK_FAIL(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_BETA1, 1.0f), GTL_STATUS_INVALID_ARG,
               "BETA1");
    CHECK_FAIL(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_EPS, 0.0f), GTL_STATUS_INVALID_ARG,
               "EPS");
    CHECK_FAIL(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_WARMUP_STEPS, 3.0f),
               GTL_STATUS_INVALID_ARG, "WARMUP_STEPS");
    CHECK_FAIL(gtl_optimizer_set_f32(opt, (gtl_optim_param)11, 0.5f), GTL_STATUS_INVALID_ARG,
               "gtl_optimizer_set_f32");
    CHECK_FAIL(gtl_optimizer_set_f32(NULL, GTL_OPTIM_PARAM_LR, 0.5f), GTL_STATUS_INVALID_ARG,
               "gtl_optimizer_set_f32");
    CHECK_OK(gtl_optimizer_set_f32(sgd, GTL_OPTIM_PARAM_MOMENTUM, 0.9f));
    CHECK_OK(p_optimizer_set_i64(sgd, GTL_OPTIM_PARAM_NESTEROV, 1));
    CHECK_OK(gtl_optimizer_get_i64(sgd, GTL_OPTIM_PARAM_NESTEROV, &iv));
    CHECK(iv == 1);
    CHECK_FAIL(gtl_optimizer_set_i64(sgd, GTL_OPTIM_PARAM_NESTEROV, 2), GTL_STATUS_INVALID_ARG,
               "NESTEROV");
    CHECK_FAIL(gtl_optimizer_set_i64(sgd, GTL_OPTIM_PARAM_WARMUP_STEPS, -1),
               GTL_STATUS_INVALID_ARG, "WARMUP_STEPS");
    CHECK_FAIL(gtl_optimizer_set_i64(sgd, GTL_OPTIM_PARAM_WARMUP_STEPS,
                                     ((int64_t)1 << 53) + 1),
               GTL_STATUS_INVALID_ARG, "WARMUP_STEPS");
    CHECK_FAIL(gtl_optimizer_set_i64(sgd, GTL_OPTIM_PARAM_MOMENTUM, 0), GTL_STATUS_INVALID_ARG,
               "MOMENTUM");
    CHECK_FAIL(gtl_optimizer_set_i64(sgd, (gtl_optim_param)-1, 0), GTL_STATUS_INVALID_ARG,
               "gtl_optimizer_set_i64");
    CHECK_FAIL(gtl_optimizer_set_i64(NULL, GTL_OPTIM_PARAM_NESTEROV, 0), GTL_STATUS_INVALID_ARG,
               "gtl_optimizer_set_i64");
    CHECK_OK(gtl_optimizer_get_i64(sgd, GTL_OPTIM_PARAM_NESTEROV, &iv));
    CHECK(iv == 1);

    /* Bounds of every key, and the refusals. */
    for (int k = GTL_OPTIM_PARAM_LR; k <= GTL_OPTIM_PARAM_DECAY_GAMMA; k++) {
        double lo = -5, hi = -5;
        CHECK_OK(p_optim_param_bounds((gtl_optim_param)k, &lo, &hi));
        CHECK(lo >= 0 && lo <= hi);
    }
    double lo = -5, hi = -5;
    CHECK_OK(gtl_optim_param_bounds(GTL_OPTIM_PARAM_LR, &lo, &hi));
    CHECK(lo == 0 && hi == 1000);
    CHECK_OK(gtl_optim_param_bounds(GTL_OPTIM_PARAM_BETA2, &lo, &hi));
    CHECK(lo == 0 && hi < 1.0 && hi > 0.9999999 && (float)hi == hi);
    CHECK_OK(gtl_optim_param_bounds(GTL_OPTIM_PARAM_WARMUP_STEPS, &lo, &hi));
    CHECK(lo == 0 && hi == 9007199254740992.0);
    lo = hi = -5;
    CHECK_FAIL(gtl_optim_param_bounds((gtl_optim_param)11, &lo, &hi), GTL_STATUS_INVALID_ARG,
               "gtl_optim_param_bounds");
    CHECK(lo == 0 && hi == 0);
    hi = -5;
    CHECK_FAIL(gtl_optim_param_bounds(GTL_OPTIM_PARAM_LR, NULL, &hi), GTL_STATUS_INVALID_ARG,
               "out_lo");
    CHECK(hi == 0);
    lo = -5;
    CHECK_FAIL(gtl_optim_param_bounds(GTL_OPTIM_PARAM_LR, &lo, NULL), GTL_STATUS_INVALID_ARG,
               "out_hi");
    CHECK(lo == 0);

    /* Milestones. */
    size_t nm = 9;
    int64_t ms[4] = {-1, -1, -1, -1};
    CHECK_OK(p_optimizer_get_milestones(opt, NULL, 0, &nm));
    CHECK(nm == 0);
    const int64_t steps[2] = {100, 200};
    CHECK_OK(p_optimizer_set_milestones(opt, steps, 2));
    CHECK_OK(gtl_optimizer_get_milestones(opt, ms, 4, &nm));
    CHECK(nm == 2 && ms[0] == 100 && ms[1] == 200 && ms[2] == -1);
    /* Too small a buffer: the count is still reported, nothing is written. */
    ms[0] = -1;
    nm = 9;
    CHECK_FAIL(gtl_optimizer_get_milestones(opt, ms, 1, &nm), GTL_STATUS_INVALID_ARG,
               "dst_capacity");
    CHECK(nm == 2 && ms[0] == -1);
    nm = 9;
    CHECK_FAIL(gtl_optimizer_get_milestones(opt, NULL, 0, &nm), GTL_STATUS_INVALID_ARG,
               "gtl_optimizer_get_milestones");
    CHECK(nm == 2);
    nm = 9;
    CHECK_FAIL(gtl_optimizer_get_milestones(opt, NULL, 4, &nm), GTL_STATUS_INVALID_ARG,
               "dst is NULL");
    CHECK(nm == 0);
    nm = 9;
    CHECK_FAIL(gtl_optimizer_get_milestones(NULL, ms, 4, &nm), GTL_STATUS_INVALID_ARG,
               "gtl_optimizer_get_milestones");
    CHECK(nm == 0);
    CHECK_FAIL(gtl_optimizer_get_milestones(opt, ms, 4, NULL), GTL_STATUS_INVALID_ARG,
               "out_n");
    const int64_t same[2] = {5, 5}, neg[1] = {-1};
    int64_t many[GTL_OPTIM_MAX_MILESTONES + 1];
    for (int i = 0; i <= GTL_OPTIM_MAX_MILESTONES; i++)
        many[i] = i;
    CHECK_FAIL(gtl_optimizer_set_milestones(opt, same, 2), GTL_STATUS_INVALID_ARG,
               "strictly increasing");
    CHECK_FAIL(gtl_optimizer_set_milestones(opt, neg, 1), GTL_STATUS_INVALID_ARG, "negative");
    CHECK_FAIL(gtl_optimizer_set_milestones(opt, NULL, 1), GTL_STATUS_INVALID_ARG,
               "gtl_optimizer_set_milestones");
    CHECK_FAIL(gtl_optimizer_set_milestones(opt, many, GTL_OPTIM_MAX_MILESTONES + 1),
               GTL_STATUS_INVALID_ARG, "gtl_optimizer_set_milestones");
    CHECK_FAIL(gtl_optimizer_set_milestones(NULL, steps, 2), GTL_STATUS_INVALID_ARG,
               "gtl_optimizer_set_milestones");
    CHECK_OK(gtl_optimizer_get_milestones(opt, ms, 4, &nm));
    CHECK(nm == 2 && ms[0] == 100 && ms[1] == 200);
    CHECK_OK(gtl_optimizer_set_milestones(sgd, many, GTL_OPTIM_MAX_MILESTONES));
    CHECK_OK(gtl_optimizer_set_milestones(sgd, NULL, 0));
    CHECK_OK(gtl_optimizer_get_milestones(sgd, NULL, 0, &nm));
    CHECK(nm == 0);

    /* The schedule: lr 1e-3, 10 warm-up steps from 0.01, x0.1 at 100 and 200. */
    CHECK_OK(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_LR, 1e-3f));
    CHECK_OK(gtl_optimizer_set_i64(opt, GTL_OPTIM_PARAM_WARMUP_STEPS, 10));
    static const struct {
        int64_t step;
        double lr;
    } sched[] = {{0, 1e-5}, {5, 5.05e-4}, {9, 9.01e-4}, {10, 1e-3},
                 {99, 1e-3}, {100, 1e-4}, {199, 1e-4}, {250, 1e-5}};
    for (size_t i = 0; i < sizeof sched / sizeof sched[0]; i++) {
        float lr = -1.0f;
        CHECK_OK(p_optimizer_lr_at(opt, sched[i].step, &lr));
        CHECK(close_to(lr, sched[i].lr, 1e-5));
    }
    fv = 7.0f;
    CHECK_FAIL(gtl_optimizer_lr_at(opt, -1, &fv), GTL_STATUS_INVALID_ARG, "step");
    CHECK(fv == 0.0f);
    fv = 7.0f;
    CHECK_FAIL(gtl_optimizer_lr_at(NULL, 0, &fv), GTL_STATUS_INVALID_ARG, "gtl_optimizer_lr_at");
    CHECK(fv == 0.0f);
    CHECK_FAIL(gtl_optimizer_lr_at(opt, 0, NULL), GTL_STATUS_INVALID_ARG, "gtl_optimizer_lr_at");

    /* Step count and reset (training steps are checked with the model). */
    iv = 7;
    CHECK_OK(p_optimizer_num_steps(opt, &iv));
    CHECK(iv == 0);
    iv = 7;
    CHECK_FAIL(gtl_optimizer_num_steps(NULL, &iv), GTL_STATUS_INVALID_ARG,
               "gtl_optimizer_num_steps");
    CHECK(iv == 0);
    CHECK_FAIL(gtl_optimizer_num_steps(opt, NULL), GTL_STATUS_INVALID_ARG,
               "gtl_optimizer_num_steps");
    {
        gtl_optim_kind kind = GTL_OPTIM_SGD;
        CHECK_OK(p_optimizer_kind(opt, &kind));
        CHECK(kind == GTL_OPTIM_ADAM);
        kind = GTL_OPTIM_SGD;
        CHECK_FAIL(gtl_optimizer_kind(NULL, &kind), GTL_STATUS_INVALID_ARG,
                   "gtl_optimizer_kind");
        CHECK(kind == GTL_OPTIM_ADAM);
        CHECK_FAIL(gtl_optimizer_kind(opt, NULL), GTL_STATUS_INVALID_ARG, "gtl_optimizer_kind");
    }
    CHECK_OK(p_optimizer_reset(opt));
    CHECK_FAIL(gtl_optimizer_reset(NULL), GTL_STATUS_INVALID_ARG, "gtl_optimizer_reset");
    /* Reset keeps the settings. */
    CHECK_OK(gtl_optimizer_get_i64(opt, GTL_OPTIM_PARAM_WARMUP_STEPS, &iv));
    CHECK(iv == 10);

    gtl_optimizer_destroy(opt);
    gtl_optimizer_destroy(sgd);
    gtl_optimizer_destroy(adamw);
    check_no_memory("optimizer");
}

/* ---- model --------------------------------------------------------------------- */

/* The tiny head of these tests: F = 16, H = 8, Nc = 4, Nm = 2, d = 4. */
enum { TH = 8, TNC = 4, TNM = 2, TD = 4 };

static gtl_model *tiny_model(int64_t seed)
{
    gtl_model *m = NULL;
    CHECK_OK(gtl_model_create(&m));
    CHECK_OK(gtl_model_set_i64(m, GTL_MODEL_FEATURE_DIM, FD));
    CHECK_OK(gtl_model_set_i64(m, GTL_MODEL_HIDDEN_DIM, TH));
    CHECK_OK(gtl_model_set_i64(m, GTL_MODEL_CONCEPT_DIM, TNC));
    CHECK_OK(gtl_model_set_i64(m, GTL_MODEL_DISTURBANCE_DIM, TNM));
    CHECK_OK(gtl_model_set_i64(m, GTL_MODEL_NUM_DOMAINS, TD));
    CHECK_OK(gtl_model_set_i64(m, GTL_MODEL_SEED, seed));
    CHECK_OK(gtl_model_set_i64(m, GTL_MODEL_BATCH_CLASSES, 4));
    CHECK_OK(gtl_model_set_i64(m, GTL_MODEL_BATCH_SAMPLES, 2));
    CHECK_OK(gtl_model_set_i64(m, GTL_MODEL_N1_EPOCHS, 1));
    CHECK_OK(gtl_model_set_i64(m, GTL_MODEL_N2_EPOCHS, 1));
    return m;
}

/* Trainable values of the head (docs/method.md), classifier for c classes. */
static int64_t head_params(int64_t c)
{
    const int64_t f = FD, h = TH, z = TNC + TNM, nm = TNM, d = TD;
    int64_t enc = h * f + h + 2 * h + 2 * (z * h + z);
    int64_t est = d * f + d + d * nm * f + d * nm + nm * 2 * nm + nm;
    int64_t gen = h * z + h + 2 * h + f * h + f;
    int64_t cls = f * TNC + 2 * f + 2 * c * f;
    return enc + est + gen + cls;
}

static int starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static void check_model_params(void)
{
    gtl_model *m = SENTINEL(gtl_model);
    CHECK_FAIL(p_model_create(NULL), GTL_STATUS_INVALID_ARG, "gtl_model_create");
    CHECK_OK(gtl_model_create(&m));
    gtl_model_destroy(NULL);
    p_model_destroy(NULL);

    /* Defaults: the method's sizes. */
    static const struct {
        gtl_model_param key;
        int64_t v;
    } idef[] = {{GTL_MODEL_FEATURE_DIM, 1280}, {GTL_MODEL_HIDDEN_DIM, 256},
                {GTL_MODEL_CONCEPT_DIM, 128},  {GTL_MODEL_DISTURBANCE_DIM, 64},
                {GTL_MODEL_NUM_DOMAINS, 128},  {GTL_MODEL_ESTIMATOR, 1},
                {GTL_MODEL_SEED, 0},           {GTL_MODEL_FREEZE_GENERATOR, 1},
                {GTL_MODEL_BATCH_CLASSES, 16}, {GTL_MODEL_BATCH_SAMPLES, 4},
                {GTL_MODEL_N1_EPOCHS, 60},     {GTL_MODEL_N2_EPOCHS, 60},
                {GTL_MODEL_WARMUP_EPOCHS, 5},  {GTL_MODEL_CLS_USE_MEAN, 1}};
    for (size_t i = 0; i < sizeof idef / sizeof idef[0]; i++) {
        int64_t v = -1;
        CHECK_OK(p_model_get_i64(m, idef[i].key, &v));
        CHECK(v == idef[i].v);
    }
    static const struct {
        gtl_model_param key;
        float v;
    } fdef[] = {{GTL_MODEL_DROPOUT, 0.5f},         {GTL_MODEL_BETA, 1.0f},
                {GTL_MODEL_CAPACITY_MAX, 20.0f},   {GTL_MODEL_CAPACITY_ITERS, 5000.0f},
                {GTL_MODEL_CAPACITY_RATE_BASE, 20.0f}, {GTL_MODEL_CAPACITY_RATE_NOVEL, 50.0f},
                {GTL_MODEL_TRIPLET_MARGIN, 0.3f},  {GTL_MODEL_CE_WEIGHT, 1.0f},
                {GTL_MODEL_TRIPLET_WEIGHT, 1.0f},  {GTL_MODEL_CENTER_WEIGHT, 1.0f},
                {GTL_MODEL_CENTER_LR, 0.5f},       {GTL_MODEL_N1_LR, 1e-3f},
                {GTL_MODEL_N2_LR, 1e-3f},          {GTL_MODEL_WEIGHT_DECAY, 1e-4f},
                {GTL_MODEL_CLIP_NORM, 2.0f},       {GTL_MODEL_CAPACITY_START_NOVEL, 1.0f},
                {GTL_MODEL_REP_CLS_WEIGHT, 1.0f}};
    for (size_t i = 0; i < sizeof fdef / sizeof fdef[0]; i++) {
        float v = -1.0f;
        CHECK_OK(p_model_get_f32(m, fdef[i].key, &v));
        CHECK(v == fdef[i].v);
    }

    /* Bounds of every key; the type they report matches the getters. */
    for (int k = GTL_MODEL_FEATURE_DIM; k <= GTL_MODEL_REP_CLS_WEIGHT; k++) {
        double lo = -5, hi = -5;
        int32_t is_int = -1;
        CHECK_OK(p_model_param_bounds((gtl_model_param)k, &lo, &hi, &is_int));
        CHECK(lo <= hi && (is_int == 0 || is_int == 1));
        int64_t iv;
        float fv;
        if (is_int) {
            CHECK_OK(gtl_model_get_i64(m, (gtl_model_param)k, &iv));
            CHECK(iv >= lo && iv <= hi);
        } else {
            CHECK_OK(gtl_model_get_f32(m, (gtl_model_param)k, &fv));
            CHECK(fv >= lo && fv <= hi);
        }
        CHECK_OK(gtl_model_param_bounds((gtl_model_param)k, &lo, &hi, NULL));
    }
    double lo = -5, hi = -5;
    int32_t is_int = -1;
    CHECK_OK(gtl_model_param_bounds(GTL_MODEL_DROPOUT, &lo, &hi, &is_int));
    CHECK(is_int == 0 && lo == 0 && hi < 1);
    lo = hi = -5;
    is_int = -1;
    CHECK_FAIL(gtl_model_param_bounds((gtl_model_param)32, &lo, &hi, &is_int),
               GTL_STATUS_INVALID_ARG, "gtl_model_param_bounds");
    CHECK(lo == 0 && hi == 0 && is_int == 0);
    CHECK_FAIL(gtl_model_param_bounds((gtl_model_param)-1, &lo, &hi, &is_int),
               GTL_STATUS_INVALID_ARG, "gtl_model_param_bounds");
    hi = -5;
    is_int = -1;
    CHECK_FAIL(gtl_model_param_bounds(GTL_MODEL_SEED, NULL, &hi, &is_int),
               GTL_STATUS_INVALID_ARG, "gtl_model_param_bounds");
    CHECK(hi == 0 && is_int == 0);
    lo = -5;
    CHECK_FAIL(gtl_model_param_bounds(GTL_MODEL_SEED, &lo, NULL, NULL), GTL_STATUS_INVALID_ARG,
               "gtl_model_param_bounds");
    CHECK(lo == 0);

    /* Getter and setter refusals; the out value is zeroed, the setting kept. */
    int64_t iv = 7;
    float fv = 7.0f;
    CHECK_FAIL(gtl_model_get_i64(m, GTL_MODEL_DROPOUT, &iv), GTL_STATUS_INVALID_ARG,
               "gtl_model_get_i64");
    CHECK(iv == 0);
    iv = 7;
    CHECK_FAIL(gtl_model_get_i64(m, (gtl_model_param)32, &iv), GTL_STATUS_INVALID_ARG,
               "gtl_model_get_i64");
    CHECK(iv == 0);
    iv = 7;
    CHECK_FAIL(gtl_model_get_i64(NULL, GTL_MODEL_SEED, &iv), GTL_STATUS_INVALID_ARG,
               "gtl_model_get_i64");
    CHECK(iv == 0);
    CHECK_FAIL(gtl_model_get_i64(m, GTL_MODEL_SEED, NULL), GTL_STATUS_INVALID_ARG,
               "gtl_model_get_i64");
    CHECK_FAIL(gtl_model_get_f32(m, GTL_MODEL_SEED, &fv), GTL_STATUS_INVALID_ARG,
               "gtl_model_get_f32");
    CHECK(fv == 0.0f);
    fv = 7.0f;
    CHECK_FAIL(gtl_model_get_f32(m, (gtl_model_param)-1, &fv), GTL_STATUS_INVALID_ARG,
               "gtl_model_get_f32");
    CHECK(fv == 0.0f);
    fv = 7.0f;
    CHECK_FAIL(gtl_model_get_f32(NULL, GTL_MODEL_BETA, &fv), GTL_STATUS_INVALID_ARG,
               "gtl_model_get_f32");
    CHECK(fv == 0.0f);
    CHECK_FAIL(gtl_model_get_f32(m, GTL_MODEL_BETA, NULL), GTL_STATUS_INVALID_ARG,
               "gtl_model_get_f32");

    CHECK_FAIL(gtl_model_set_i64(m, GTL_MODEL_NUM_CLASSES, 5), GTL_STATUS_INVALID_ARG,
               "read-only");
    CHECK_FAIL(gtl_model_set_i64(m, GTL_MODEL_FEATURE_DIM, 0), GTL_STATUS_INVALID_ARG,
               "FEATURE_DIM");
    CHECK_FAIL(gtl_model_set_i64(m, GTL_MODEL_ESTIMATOR, 2), GTL_STATUS_INVALID_ARG,
               "ESTIMATOR");
    CHECK_FAIL(gtl_model_set_i64(m, GTL_MODEL_BETA, 1), GTL_STATUS_INVALID_ARG,
               "gtl_model_set_f32");
    CHECK_FAIL(gtl_model_set_i64(m, (gtl_model_param)32, 1), GTL_STATUS_INVALID_ARG,
               "gtl_model_set_i64");
    CHECK_FAIL(p_model_set_i64(NULL, GTL_MODEL_SEED, 1), GTL_STATUS_INVALID_ARG,
               "gtl_model_set_i64");
    CHECK_OK(gtl_model_get_i64(m, GTL_MODEL_FEATURE_DIM, &iv));
    CHECK(iv == 1280);
    CHECK_FAIL(gtl_model_set_f32(m, GTL_MODEL_DROPOUT, 1.0f), GTL_STATUS_INVALID_ARG,
               "DROPOUT");
    CHECK_FAIL(gtl_model_set_f32(m, GTL_MODEL_BETA, NAN), GTL_STATUS_INVALID_ARG,
               "gtl_model_set_f32");
    CHECK_FAIL(gtl_model_set_f32(m, GTL_MODEL_BETA, INFINITY), GTL_STATUS_INVALID_ARG,
               "gtl_model_set_f32");
    CHECK_FAIL(gtl_model_set_f32(m, GTL_MODEL_BETA, -1.0f), GTL_STATUS_INVALID_ARG, "BETA");
    CHECK_FAIL(gtl_model_set_f32(m, GTL_MODEL_SEED, 1.0f), GTL_STATUS_INVALID_ARG,
               "gtl_model_set_i64");
    CHECK_FAIL(gtl_model_set_f32(m, (gtl_model_param)32, 1.0f), GTL_STATUS_INVALID_ARG,
               "gtl_model_set_f32");
    CHECK_FAIL(p_model_set_f32(NULL, GTL_MODEL_BETA, 1.0f), GTL_STATUS_INVALID_ARG,
               "gtl_model_set_f32");
    CHECK_OK(gtl_model_get_f32(m, GTL_MODEL_BETA, &fv));
    CHECK(fv == 1.0f);
    CHECK_OK(gtl_model_set_f32(m, GTL_MODEL_BETA, 2.5f));
    CHECK_OK(gtl_model_get_f32(m, GTL_MODEL_BETA, &fv));
    CHECK(fv == 2.5f);
    /* Never initialised (a 1280-feature head is not built here). */
    gtl_model_destroy(m);
    check_no_memory("model parameters");
}

static void check_model_tensors(void)
{
    gtl_model *m = tiny_model(7);
    int64_t n = 7;
    int32_t tr = 7;
    char name[64];
    float buf[256];
    /* Before initialisation. */
    CHECK_FAIL(gtl_model_num_params(m, &n), GTL_STATUS_BAD_STATE, "not initialised");
    CHECK(n == 0);
    n = 7;
    CHECK_FAIL(gtl_model_num_tensors(m, &n), GTL_STATUS_BAD_STATE, "not initialised");
    CHECK(n == 0);
    n = 7;
    CHECK_FAIL(gtl_model_tensor_info(m, 0, name, sizeof name, &n, &tr), GTL_STATUS_BAD_STATE,
               "gtl_model_tensor_info");
    CHECK(n == 0 && tr == 0);
    CHECK_FAIL(gtl_model_tensor_get(m, 0, 0, buf, 256), GTL_STATUS_BAD_STATE,
               "gtl_model_tensor_get");
    CHECK_FAIL(gtl_model_tensor_set(m, 0, buf, 128), GTL_STATUS_BAD_STATE,
               "gtl_model_tensor_set");
    CHECK_FAIL(gtl_model_save(m, NULL, "gtl_abi_never_written.ckpt"), GTL_STATUS_BAD_STATE,
               "gtl_model_save");
    CHECK_FAIL(gtl_model_init(NULL), GTL_STATUS_INVALID_ARG, "gtl_model_init");

    CHECK_OK(p_model_init(m));
    CHECK_FAIL(gtl_model_init(m), GTL_STATUS_BAD_STATE, "already");
    /* Structural keys are fixed now; loss weights are not. */
    CHECK_FAIL(gtl_model_set_i64(m, GTL_MODEL_HIDDEN_DIM, 16), GTL_STATUS_BAD_STATE,
               "structural");
    CHECK_FAIL(gtl_model_set_f32(m, GTL_MODEL_DROPOUT, 0.1f), GTL_STATUS_BAD_STATE,
               "structural");
    int64_t iv = 0;
    CHECK_OK(gtl_model_get_i64(m, GTL_MODEL_HIDDEN_DIM, &iv));
    CHECK(iv == TH);
    CHECK_OK(gtl_model_get_i64(m, GTL_MODEL_NUM_CLASSES, &iv));
    CHECK(iv == 2);
    CHECK_OK(gtl_model_set_f32(m, GTL_MODEL_TRIPLET_MARGIN, 0.2f));

    CHECK_OK(p_model_num_params(m, &n));
    CHECK(n == head_params(2));
    CHECK_FAIL(gtl_model_num_params(NULL, &n), GTL_STATUS_INVALID_ARG, "gtl_model_num_params");
    CHECK(n == 0);
    CHECK_FAIL(gtl_model_num_params(m, NULL), GTL_STATUS_INVALID_ARG, "gtl_model_num_params");
    int64_t nt = 0;
    CHECK_OK(p_model_num_tensors(m, &nt));
    CHECK(nt == 25);
    CHECK_FAIL(gtl_model_num_tensors(NULL, &n), GTL_STATUS_INVALID_ARG, "gtl_model_num_tensors");
    CHECK_FAIL(gtl_model_num_tensors(m, NULL), GTL_STATUS_INVALID_ARG, "gtl_model_num_tensors");

    /* Names, sizes, trainability (nothing trains before a stage is set). */
    int64_t total = 0;
    for (int64_t i = 0; i < nt; i++) {
        int64_t numel = -1;
        tr = -1;
        CHECK_OK(p_model_tensor_info(m, i, name, sizeof name, &numel, &tr));
        CHECK(starts_with(name, "encoder.") || starts_with(name, "estimator.") ||
              starts_with(name, "generator.") || starts_with(name, "classifier."));
        CHECK(numel >= 1 && tr == 0);
        total += numel;
    }
    CHECK(total == head_params(2));
    int64_t numel = -1;
    CHECK_OK(gtl_model_tensor_info(m, 0, name, sizeof name, &numel, NULL));
    CHECK(strcmp(name, "encoder.fc.weight") == 0 && numel == TH * FD);
    CHECK_OK(gtl_model_tensor_info(m, 0, NULL, 0, NULL, NULL));
    char small[4] = "abc";
    numel = 7;
    tr = 7;
    CHECK_FAIL(gtl_model_tensor_info(m, 0, small, sizeof small, &numel, &tr),
               GTL_STATUS_INVALID_ARG, "name_capacity");
    CHECK(strcmp(small, "abc") == 0 && numel == 0 && tr == 0);
    CHECK_FAIL(gtl_model_tensor_info(m, nt, name, sizeof name, &numel, &tr),
               GTL_STATUS_INVALID_ARG, "out of range");
    CHECK_FAIL(gtl_model_tensor_info(m, -1, name, sizeof name, &numel, &tr),
               GTL_STATUS_INVALID_ARG, "out of range");
    CHECK_FAIL(gtl_model_tensor_info(NULL, 0, name, sizeof name, &numel, &tr),
               GTL_STATUS_INVALID_ARG, "gtl_model_tensor_info");

    /* Values (PyTorch's Linear init: |w| <= 1/sqrt(F)), gradients (zero). */
    CHECK_OK(p_model_tensor_get(m, 0, 0, buf, 256));
    for (int i = 0; i < TH * FD; i++)
        CHECK(buf[i] >= -0.25f && buf[i] <= 0.25f);
    float grad[TH * FD];
    CHECK_OK(gtl_model_tensor_get(m, 0, 1, grad, TH * FD));
    for (int i = 0; i < TH * FD; i++)
        CHECK(grad[i] == 0.0f);
    grad[0] = -7.0f;
    CHECK_FAIL(gtl_model_tensor_get(m, 0, 0, grad, TH * FD - 1), GTL_STATUS_INVALID_ARG,
               "capacity");
    CHECK(grad[0] == -7.0f);
    CHECK_FAIL(gtl_model_tensor_get(m, nt, 0, grad, TH * FD), GTL_STATUS_INVALID_ARG,
               "out of range");
    CHECK_FAIL(gtl_model_tensor_get(m, 0, 0, NULL, TH * FD), GTL_STATUS_INVALID_ARG,
               "gtl_model_tensor_get");
    CHECK_FAIL(gtl_model_tensor_get(NULL, 0, 0, grad, TH * FD), GTL_STATUS_INVALID_ARG,
               "gtl_model_tensor_get");

    float src[TH * FD], back[TH * FD], kept[TH * FD];
    for (int i = 0; i < TH * FD; i++)
        src[i] = 0.01f * (float)(i % 17) - 0.08f;
    memcpy(kept, src, sizeof kept);
    CHECK_OK(p_model_tensor_set(m, 0, src, TH * FD));
    CHECK_OK(gtl_model_tensor_get(m, 0, 0, back, TH * FD));
    CHECK(memcmp(src, back, sizeof src) == 0);
    src[5] = NAN;
    CHECK_FAIL(gtl_model_tensor_set(m, 0, src, TH * FD), GTL_STATUS_INVALID_ARG, "not finite");
    src[5] = 0.0f;
    CHECK_FAIL(gtl_model_tensor_set(m, 0, src, TH * FD - 1), GTL_STATUS_INVALID_ARG,
               "gtl_model_tensor_set");
    CHECK_FAIL(gtl_model_tensor_set(m, nt, src, TH * FD), GTL_STATUS_INVALID_ARG,
               "out of range");
    CHECK_FAIL(gtl_model_tensor_set(m, 0, NULL, TH * FD), GTL_STATUS_INVALID_ARG,
               "gtl_model_tensor_set");
    CHECK_FAIL(gtl_model_tensor_set(NULL, 0, src, TH * FD), GTL_STATUS_INVALID_ARG,
               "gtl_model_tensor_set");
    CHECK_OK(gtl_model_tensor_get(m, 0, 0, back, TH * FD));
    CHECK(memcmp(back, kept, sizeof back) == 0); /* the refused writes changed nothing */
    gtl_model_destroy(m);
    check_no_memory("model tensors");
}

static void check_predict_latent(void)
{
    gtl_model *m = tiny_model(3), *m2 = tiny_model(3), *m3 = tiny_model(3);
    CHECK_OK(gtl_model_init(m));
    const int64_t n = 8;
    int64_t lab[8], lab2[8];
    float probs[16], probs2[16];
    CHECK_OK(p_model_predict(m, base_x, n, FD, lab, probs, 16));
    for (int i = 0; i < n; i++) {
        float s = probs[2 * i] + probs[2 * i + 1];
        CHECK(s > 0.999f && s < 1.001f);
        CHECK(lab[i] == (probs[2 * i + 1] > probs[2 * i] ? 1 : 0));
    }
    /* Deterministic, and an uninitialised model initialises on first use
     * from the same seed. */
    CHECK_OK(gtl_model_predict(m2, base_x, n, FD, lab2, probs2, 16));
    CHECK(memcmp(probs, probs2, sizeof probs) == 0 && memcmp(lab, lab2, sizeof lab) == 0);
    CHECK_FAIL(gtl_model_init(m2), GTL_STATUS_BAD_STATE, "gtl_model_init");
    CHECK_OK(gtl_model_predict(m, base_x, n, FD, NULL, probs2, 16));
    CHECK(memcmp(probs, probs2, sizeof probs) == 0);
    CHECK_OK(gtl_model_predict(m, base_x, n, FD, lab2, NULL, 0));
    CHECK(memcmp(lab, lab2, sizeof lab) == 0);
    CHECK_OK(gtl_model_predict(m, base_x, n, FD, NULL, NULL, 0));

    float x[8 * FD];
    memcpy(x, base_x, sizeof x);
    probs2[0] = -7.0f;
    lab2[0] = -7;
    CHECK_FAIL(gtl_model_predict(m, base_x, n, FD, lab2, probs2, 15), GTL_STATUS_INVALID_ARG,
               "probs_capacity");
    CHECK(probs2[0] == -7.0f && lab2[0] == -7);
    CHECK_FAIL(gtl_model_predict(m, base_x, n, FD - 1, lab2, probs2, 16), GTL_STATUS_INVALID_ARG,
               "feature_dim");
    CHECK_FAIL(gtl_model_predict(m, base_x, 0, FD, lab2, probs2, 16), GTL_STATUS_INVALID_ARG,
               "n must be");
    x[3 * FD + 2] = INFINITY;
    CHECK_FAIL(gtl_model_predict(m, x, n, FD, lab2, probs2, 16), GTL_STATUS_INVALID_ARG,
               "not finite");
    CHECK(probs2[0] == -7.0f && lab2[0] == -7);
    CHECK_FAIL(gtl_model_predict(m, NULL, n, FD, lab2, probs2, 16), GTL_STATUS_INVALID_ARG,
               "gtl_model_predict");
    CHECK_FAIL(gtl_model_predict(NULL, base_x, n, FD, lab2, probs2, 16), GTL_STATUS_INVALID_ARG,
               "gtl_model_predict");

    /* Latent codes: concept (Nc), disturbance (Nm), gate (d, a sparsemax:
     * non-negative, rows sum to 1). */
    float z[8 * TD];
    CHECK_OK(p_model_latent(m, GTL_LATENT_CONCEPT, base_x, n, FD, z, 8 * TNC));
    for (int i = 0; i < 8 * TNC; i++)
        CHECK(isfinite(z[i]));
    CHECK_OK(gtl_model_latent(m, GTL_LATENT_DISTURBANCE, base_x, n, FD, z, 8 * TNM));
    for (int i = 0; i < 8 * TNM; i++)
        CHECK(isfinite(z[i]));
    CHECK_OK(gtl_model_latent(m, GTL_LATENT_GATE, base_x, n, FD, z, 8 * TD));
    for (int i = 0; i < n; i++) {
        float s = 0.0f;
        for (int j = 0; j < TD; j++) {
            CHECK(z[i * TD + j] >= 0.0f);
            s += z[i * TD + j];
        }
        CHECK(s > 0.999f && s < 1.001f);
    }
    z[0] = -7.0f;
    CHECK_FAIL(gtl_model_latent(m, GTL_LATENT_GATE, base_x, n, FD, z, 8 * TD - 1),
               GTL_STATUS_INVALID_ARG, "capacity");
    CHECK(z[0] == -7.0f);
    CHECK_FAIL(gtl_model_latent(m, (gtl_latent)3, base_x, n, FD, z, 8 * TD),
               GTL_STATUS_INVALID_ARG, "unknown latent");
    CHECK_FAIL(gtl_model_latent(m, (gtl_latent)-1, base_x, n, FD, z, 8 * TD),
               GTL_STATUS_INVALID_ARG, "unknown latent");
    CHECK_FAIL(gtl_model_latent(m, GTL_LATENT_CONCEPT, base_x, n, FD + 1, z, 8 * TD),
               GTL_STATUS_INVALID_ARG, "feature_dim");
    CHECK_FAIL(gtl_model_latent(m, GTL_LATENT_CONCEPT, x, n, FD, z, 8 * TD),
               GTL_STATUS_INVALID_ARG, "not finite");
    CHECK_FAIL(gtl_model_latent(m, GTL_LATENT_CONCEPT, base_x, 0, FD, z, 8 * TD),
               GTL_STATUS_INVALID_ARG, "gtl_model_latent");
    CHECK_FAIL(gtl_model_latent(m, GTL_LATENT_CONCEPT, base_x, n, FD, NULL, 8 * TD),
               GTL_STATUS_INVALID_ARG, "gtl_model_latent");
    CHECK_FAIL(gtl_model_latent(m, GTL_LATENT_CONCEPT, NULL, n, FD, z, 8 * TD),
               GTL_STATUS_INVALID_ARG, "gtl_model_latent");
    CHECK_FAIL(gtl_model_latent(NULL, GTL_LATENT_CONCEPT, base_x, n, FD, z, 8 * TD),
               GTL_STATUS_INVALID_ARG, "gtl_model_latent");
    /* Latent calls leave the prediction alone. */
    CHECK_OK(gtl_model_predict(m, base_x, n, FD, NULL, probs2, 16));
    CHECK(memcmp(probs, probs2, sizeof probs) == 0);

    /* Estimator off (ablation): the gate reads 0. */
    CHECK_OK(gtl_model_set_i64(m3, GTL_MODEL_ESTIMATOR, 0));
    CHECK_OK(gtl_model_latent(m3, GTL_LATENT_GATE, base_x, n, FD, z, 8 * TD));
    for (int i = 0; i < 8 * TD; i++)
        CHECK(z[i] == 0.0f);
    gtl_model_destroy(m);
    gtl_model_destroy(m2);
    gtl_model_destroy(m3);
    check_no_memory("predict and latent");
}

/* ---- training ------------------------------------------------------------------ */

typedef struct progress_log {
    int n_calls;
    int cancel_at;     /* stop after this many calls; 0 = never */
    int n_stage_change;
    int bad;           /* calls with a step out of order or a non-finite loss */
    gtl_stage stage;
    int64_t last_step, n_steps;
} progress_log;

static int on_progress(void *user_data, gtl_stage stage, int64_t step, int64_t n_steps,
                       const float *stats)
{
    progress_log *p = user_data;
    if (p->n_calls == 0 || stage != p->stage) {
        p->n_stage_change += p->n_calls > 0;
        p->stage = stage;
        p->last_step = 0;
    }
    p->n_calls++;
    if (step != p->last_step + 1 || step > n_steps || stats == NULL ||
        !isfinite(stats[GTL_STAT_LOSS]))
        p->bad++;
    p->last_step = step;
    p->n_steps = n_steps;
    return p->cancel_at > 0 && p->n_calls >= p->cancel_at;
}

static int64_t opt_steps(const gtl_optimizer *opt)
{
    int64_t n = -1;
    CHECK_OK(gtl_optimizer_num_steps(opt, &n));
    return n;
}

static void fill(float *a, size_t n, float v)
{
    for (size_t i = 0; i < n; i++)
        a[i] = v;
}

/* Trainability of every tensor by module, as gtl_model_tensor_info reports it. */
static void check_trainable(const gtl_model *m, int body, int cls)
{
    int64_t nt = 0;
    CHECK_OK(gtl_model_num_tensors(m, &nt));
    for (int64_t i = 0; i < nt; i++) {
        char name[64];
        int32_t tr = -1;
        CHECK_OK(gtl_model_tensor_info(m, i, name, sizeof name, NULL, &tr));
        CHECK(tr == (starts_with(name, "classifier.") ? cls : body));
    }
}

static void check_steps(void)
{
    gtl_model *m = tiny_model(11);
    gtl_optimizer *opt = NULL;
    CHECK_OK(gtl_optimizer_create(GTL_OPTIM_ADAM, &opt));
    float stats[GTL_STAT_COUNT], gn = 7.0f;
    const int64_t n = 8;

    /* No stage yet. */
    fill(stats, GTL_STAT_COUNT, 7.0f);
    CHECK_FAIL(gtl_model_forward_backward(m, base_x, n, FD, NULL, stats, GTL_STAT_COUNT),
               GTL_STATUS_BAD_STATE, "no stage");
    CHECK(stats[0] == 0.0f && stats[GTL_STAT_COUNT - 1] == 0.0f);
    CHECK_FAIL(gtl_model_apply(m, opt, &gn), GTL_STATUS_BAD_STATE, "no gradients pending");
    CHECK(gn == 0.0f);
    gn = 7.0f;
    CHECK_FAIL(gtl_model_apply(m, NULL, &gn), GTL_STATUS_INVALID_ARG, "gtl_model_apply");
    CHECK(gn == 0.0f);
    CHECK_FAIL(gtl_model_apply(NULL, opt, NULL), GTL_STATUS_INVALID_ARG, "gtl_model_apply");

    CHECK_FAIL(gtl_model_set_stage(NULL, GTL_STAGE_B1, 0), GTL_STATUS_INVALID_ARG,
               "gtl_model_set_stage");
    CHECK_FAIL(gtl_model_set_stage(m, (gtl_stage)4, 0), GTL_STATUS_INVALID_ARG, "unknown stage");
    CHECK_FAIL(gtl_model_set_stage(m, (gtl_stage)-1, 0), GTL_STATUS_INVALID_ARG,
               "unknown stage");
    CHECK_FAIL(gtl_model_set_stage(m, GTL_STAGE_B2, 0), GTL_STATUS_INVALID_ARG, "n_classes");
    CHECK_FAIL(gtl_model_set_stage(m, GTL_STAGE_N2, -3), GTL_STATUS_INVALID_ARG, "n_classes");
    CHECK_OK(p_model_set_stage(m, GTL_STAGE_B1, 0));
    check_trainable(m, 1, 0);

    /* forward_backward refusals: stats zeroed, nothing pending. */
    float x[8 * FD];
    memcpy(x, base_x, sizeof x);
    fill(stats, GTL_STAT_COUNT, 7.0f);
    CHECK_FAIL(gtl_model_forward_backward(m, base_x, 1, FD, NULL, stats, GTL_STAT_COUNT),
               GTL_STATUS_INVALID_ARG, "batch size");
    CHECK(stats[0] == 0.0f);
    CHECK_FAIL(gtl_model_forward_backward(m, base_x, n, FD - 1, NULL, stats, GTL_STAT_COUNT),
               GTL_STATUS_INVALID_ARG, "feature_dim");
    x[5] = NAN;
    CHECK_FAIL(gtl_model_forward_backward(m, x, n, FD, NULL, stats, GTL_STAT_COUNT),
               GTL_STATUS_INVALID_ARG, "not finite");
    x[5] = base_x[5];
    CHECK_FAIL(gtl_model_forward_backward(m, NULL, n, FD, NULL, stats, GTL_STAT_COUNT),
               GTL_STATUS_INVALID_ARG, "gtl_model_forward_backward");
    CHECK_FAIL(gtl_model_forward_backward(NULL, x, n, FD, NULL, stats, GTL_STAT_COUNT),
               GTL_STATUS_INVALID_ARG, "gtl_model_forward_backward");
    CHECK_FAIL(gtl_model_apply(m, opt, NULL), GTL_STATUS_BAD_STATE, "no gradients pending");

    /* One B1 step by hand: forward_backward, read a gradient, apply. */
    fill(stats, GTL_STAT_COUNT, 7.0f);
    CHECK_OK(p_model_forward_backward(m, x, n, FD, NULL, stats, GTL_STAT_COUNT));
    CHECK(isfinite(stats[GTL_STAT_LOSS]) && stats[GTL_STAT_LOSS] > 0.0f);
    CHECK(stats[GTL_STAT_MSE] > 0.0f && stats[GTL_STAT_KL] >= 0.0f);
    CHECK(stats[GTL_STAT_CAPACITY] == 0.0f); /* C_t at t = 0 */
    CHECK(stats[GTL_STAT_CE] == 0.0f && stats[GTL_STAT_ACCURACY] == 0.0f);
    float g[TH * FD];
    CHECK_OK(gtl_model_tensor_get(m, 0, 1, g, TH * FD));
    int nonzero = 0;
    for (int i = 0; i < TH * FD; i++)
        nonzero += g[i] != 0.0f;
    CHECK(nonzero > 0);
    CHECK_FAIL(gtl_model_save(m, opt, "gtl_abi_never_written.ckpt"), GTL_STATUS_BAD_STATE,
               "pending");
    float w0[TH * FD], w1[TH * FD];
    CHECK_OK(gtl_model_tensor_get(m, 0, 0, w0, TH * FD));
    gn = -1.0f;
    CHECK_OK(p_model_apply(m, opt, &gn));
    CHECK(gn > 0.0f && isfinite(gn));
    CHECK_OK(gtl_model_tensor_get(m, 0, 0, w1, TH * FD));
    CHECK(memcmp(w0, w1, sizeof w0) != 0);
    CHECK(opt_steps(opt) == 1);
    CHECK_FAIL(gtl_model_apply(m, opt, &gn), GTL_STATUS_BAD_STATE, "no gradients pending");

    /* train_step: the statistics carry the gradient norm and the lr used. */
    float lr1 = 0.0f;
    CHECK_OK(gtl_optimizer_lr_at(opt, 1, &lr1));
    fill(stats, GTL_STAT_COUNT, 7.0f);
    CHECK_OK(p_model_train_step(m, opt, x, n, FD, NULL, stats, GTL_STAT_COUNT));
    CHECK(stats[GTL_STAT_LR] == lr1 && stats[GTL_STAT_GRAD_NORM] > 0.0f);
    CHECK(stats[GTL_STAT_CAPACITY] > 0.0f); /* t = 1 */
    CHECK(opt_steps(opt) == 2);
    /* Only n_stats entries are written. */
    fill(stats, GTL_STAT_COUNT, 7.0f);
    CHECK_OK(gtl_model_train_step(m, opt, x, n, FD, NULL, stats, 3));
    CHECK(stats[0] != 7.0f && stats[3] == 7.0f && stats[GTL_STAT_LR] == 7.0f);
    CHECK_OK(gtl_model_train_step(m, opt, x, n, FD, NULL, NULL, 0));
    CHECK(opt_steps(opt) == 4);
    fill(stats, GTL_STAT_COUNT, 7.0f);
    CHECK_FAIL(gtl_model_train_step(m, NULL, x, n, FD, NULL, stats, GTL_STAT_COUNT),
               GTL_STATUS_INVALID_ARG, "gtl_model_train_step");
    CHECK(stats[0] == 0.0f && stats[GTL_STAT_LR] == 0.0f);
    fill(stats, GTL_STAT_COUNT, 7.0f);
    CHECK_FAIL(gtl_model_train_step(m, opt, x, 1, FD, NULL, stats, GTL_STAT_COUNT),
               GTL_STATUS_INVALID_ARG, "batch size");
    CHECK(stats[0] == 0.0f && stats[GTL_STAT_LR] == 0.0f);
    CHECK_FAIL(gtl_model_train_step(NULL, opt, x, n, FD, NULL, stats, GTL_STAT_COUNT),
               GTL_STATUS_INVALID_ARG, "gtl_model_forward_backward");
    CHECK(opt_steps(opt) == 4);

    /* A non-finite loss: NUMERIC, and the model, its batch-norm statistics
     * and the optimizer are exactly as before. */
    float probs[16], probs2[16];
    CHECK_OK(gtl_model_predict(m, base_x, n, FD, NULL, probs, 16));
    float big[8 * FD];
    for (int i = 0; i < 8 * FD; i++)
        big[i] = (i % 2 ? 3e38f : -3e38f);
    fill(stats, GTL_STAT_COUNT, 7.0f);
    CHECK_FAIL(gtl_model_train_step(m, opt, big, n, FD, NULL, stats, GTL_STAT_COUNT),
               GTL_STATUS_NUMERIC, "gtl_model_forward_backward");
    CHECK(stats[0] == 0.0f);
    CHECK(opt_steps(opt) == 4);
    CHECK_FAIL(gtl_model_forward_backward(m, big, n, FD, NULL, NULL, 0), GTL_STATUS_NUMERIC,
               "not taken");
    CHECK_FAIL(gtl_model_apply(m, opt, NULL), GTL_STATUS_BAD_STATE, "no gradients pending");
    CHECK_OK(gtl_model_tensor_get(m, 0, 1, g, TH * FD));
    for (int i = 0; i < TH * FD; i++)
        CHECK(g[i] == 0.0f);
    CHECK_OK(gtl_model_predict(m, base_x, n, FD, NULL, probs2, 16));
    CHECK(memcmp(probs, probs2, sizeof probs) == 0);

    /* B2 with 4 classes: a new classifier, labels required and checked. */
    CHECK_OK(gtl_model_set_stage(m, GTL_STAGE_B2, 4));
    check_trainable(m, 0, 1);
    int64_t iv = 0;
    CHECK_OK(gtl_model_get_i64(m, GTL_MODEL_NUM_CLASSES, &iv));
    CHECK(iv == 4);
    CHECK_OK(gtl_model_num_params(m, &iv));
    CHECK(iv == head_params(4));
    int64_t y[8];
    for (int i = 0; i < 8; i++)
        y[i] = base_cls[i * 3]; /* rows 0, 3, ..., 21 of the base data */
    for (int i = 0; i < 8; i++)
        memcpy(x + i * FD, base_x + i * 3 * FD, FD * sizeof(float));
    CHECK_FAIL(gtl_model_forward_backward(m, x, n, FD, NULL, stats, GTL_STAT_COUNT),
               GTL_STATUS_INVALID_ARG, "needs labels");
    y[6] = 4;
    CHECK_FAIL(gtl_model_train_step(m, opt, x, n, FD, y, stats, GTL_STAT_COUNT),
               GTL_STATUS_INVALID_ARG, "label");
    y[6] = -1;
    CHECK_FAIL(gtl_model_forward_backward(m, x, n, FD, y, stats, GTL_STAT_COUNT),
               GTL_STATUS_INVALID_ARG, "label");
    y[6] = base_cls[18];
    CHECK_OK(gtl_model_train_step(m, opt, x, n, FD, y, stats, GTL_STAT_COUNT));
    CHECK(stats[GTL_STAT_CE] > 0.0f && stats[GTL_STAT_MSE] == 0.0f);
    CHECK(stats[GTL_STAT_ACCURACY] >= 0.0f && stats[GTL_STAT_ACCURACY] <= 1.0f);
    CHECK(stats[GTL_STAT_TRIPLET] >= 0.0f && stats[GTL_STAT_CENTER] > 0.0f);
    int64_t lab[8];
    float p4[8 * 4];
    CHECK_OK(gtl_model_predict(m, x, n, FD, lab, p4, 8 * 4));
    for (int i = 0; i < 8; i++)
        CHECK(lab[i] >= 0 && lab[i] < 4);

    /* reset: the step count returns to 0, the settings stay. */
    CHECK_OK(gtl_optimizer_reset(opt));
    CHECK(opt_steps(opt) == 0);
    gtl_optimizer_destroy(opt);
    gtl_model_destroy(m);
    check_no_memory("training steps");
}

static void check_stages(void)
{
    gtl_model *m = tiny_model(5);
    gtl_optimizer *opt = NULL;
    CHECK_OK(gtl_optimizer_create(GTL_OPTIM_ADAMW, &opt));
    gtl_dataset *ds = make_base(), *other = NULL, *one = NULL;
    CHECK_OK(gtl_dataset_create(FD / 2, &other));
    CHECK_OK(gtl_dataset_add(other, base_x, 4, base_cls, NULL, NULL));
    CHECK_OK(gtl_dataset_create(FD, &one));
    CHECK_OK(gtl_dataset_add(one, base_x, 1, base_cls, NULL, NULL));
    progress_log pl;
    memset(&pl, 0, sizeof pl);

    CHECK_FAIL(gtl_model_train_stage(NULL, opt, GTL_STAGE_B1, ds, 1, NULL, NULL),
               GTL_STATUS_INVALID_ARG, "gtl_model_train_stage");
    CHECK_FAIL(gtl_model_train_stage(m, NULL, GTL_STAGE_B1, ds, 1, NULL, NULL),
               GTL_STATUS_INVALID_ARG, "gtl_model_train_stage");
    CHECK_FAIL(gtl_model_train_stage(m, opt, GTL_STAGE_B1, NULL, 1, NULL, NULL),
               GTL_STATUS_INVALID_ARG, "gtl_model_train_stage");
    CHECK_FAIL(gtl_model_train_stage(m, opt, (gtl_stage)7, ds, 1, NULL, NULL),
               GTL_STATUS_INVALID_ARG, "unknown stage");
    CHECK_FAIL(gtl_model_train_stage(m, opt, GTL_STAGE_B1, ds, 0, NULL, NULL),
               GTL_STATUS_INVALID_ARG, "epochs");
    CHECK_FAIL(gtl_model_train_stage(m, opt, GTL_STAGE_B1, other, 1, NULL, NULL),
               GTL_STATUS_INVALID_ARG, "feature size");
    CHECK_FAIL(gtl_model_train_stage(m, opt, GTL_STAGE_B1, one, 1, NULL, NULL),
               GTL_STATUS_INVALID_ARG, "at least 2 samples");
    /* Labels 10..40 are not 0..C-1. */
    CHECK_FAIL(gtl_model_train_stage(m, opt, GTL_STAGE_B2, ds, 1, NULL, NULL),
               GTL_STATUS_INVALID_ARG, "gtl_dataset_remap_labels");
    CHECK(opt_steps(opt) == 0);

    /* B1, one epoch: 24 samples in batches of 4 x 2 = 3 steps. B1 does not
     * need the labels remapped. */
    CHECK_OK(p_model_train_stage(m, opt, GTL_STAGE_B1, ds, 1, on_progress, &pl));
    CHECK(pl.n_calls == 3 && pl.bad == 0 && pl.stage == GTL_STAGE_B1 && pl.n_steps == 3);
    CHECK(opt_steps(opt) == 3);
    CHECK_OK(gtl_model_train_stage(m, opt, GTL_STAGE_B1, ds, 1, NULL, NULL));
    CHECK(opt_steps(opt) == 6);

    /* A callback that stops after 2 of 6 steps: CANCELLED, both steps kept,
     * the model still usable. */
    memset(&pl, 0, sizeof pl);
    pl.cancel_at = 2;
    CHECK_FAIL(gtl_model_train_stage(m, opt, GTL_STAGE_B1, ds, 2, on_progress, &pl),
               GTL_STATUS_CANCELLED, "cancelled");
    CHECK(pl.n_calls == 2 && pl.n_steps == 6 && pl.bad == 0);
    CHECK(opt_steps(opt) == 8);
    /* B1's classification term (GTL_MODEL_REP_CLS_WEIGHT 1) trained a
     * classifier for the 4 classes. */
    float probs[8 * 4];
    CHECK_OK(gtl_model_predict(m, base_x, 8, FD, NULL, probs, 32));

    /* B2 after remapping. */
    CHECK_OK(gtl_dataset_remap_labels(ds, NULL, 0, NULL));
    memset(&pl, 0, sizeof pl);
    CHECK_OK(gtl_model_train_stage(m, opt, GTL_STAGE_B2, ds, 1, on_progress, &pl));
    CHECK(pl.n_calls == 3 && pl.bad == 0 && pl.stage == GTL_STAGE_B2);
    int64_t iv = 0;
    CHECK_OK(gtl_model_get_i64(m, GTL_MODEL_NUM_CLASSES, &iv));
    CHECK(iv == 4);
    memset(&pl, 0, sizeof pl);
    pl.cancel_at = 1;
    CHECK_FAIL(gtl_model_train_stage(m, opt, GTL_STAGE_B2, ds, 1, on_progress, &pl),
               GTL_STATUS_CANCELLED, "gtl_model_train_stage");
    CHECK(pl.n_calls == 1);

    gtl_dataset_destroy(ds);
    gtl_dataset_destroy(other);
    gtl_dataset_destroy(one);
    gtl_optimizer_destroy(opt);
    gtl_model_destroy(m);
    check_no_memory("training stages");
}

static void check_adapt(void)
{
    const uint32_t rgb = GTL_MODALITY_BIT(GTL_MODALITY_RGB);
    const uint32_t sketch = GTL_MODALITY_BIT(GTL_MODALITY_SKETCH);
    gtl_model *m = tiny_model(9);
    gtl_dataset *ds = make_base(), *other = NULL, *one = NULL;
    gtl_episode *ep = NULL;
    CHECK_OK(gtl_episode_create(&ep));
    CHECK_OK(gtl_episode_sample(ep, ds, 3, 1, 1, rgb | sketch, rgb, 5));
    const gtl_dataset *sup = gtl_episode_support(ep), *qry = gtl_episode_query(ep);
    CHECK_OK(gtl_dataset_create(FD / 2, &other));
    CHECK_OK(gtl_dataset_add(other, base_x, 4, base_cls, NULL, NULL));
    CHECK_OK(gtl_dataset_create(FD, &one));
    CHECK_OK(gtl_dataset_add(one, base_x, 1, base_cls, NULL, NULL));
    progress_log pl;
    memset(&pl, 0, sizeof pl);

    CHECK_FAIL(gtl_adapt(NULL, sup, NULL, NULL), GTL_STATUS_INVALID_ARG, "gtl_adapt");
    CHECK_FAIL(gtl_adapt(m, NULL, NULL, NULL), GTL_STATUS_INVALID_ARG, "gtl_adapt");
    CHECK_FAIL(gtl_adapt(m, other, NULL, NULL), GTL_STATUS_INVALID_ARG, "feature size");
    CHECK_FAIL(gtl_adapt(m, one, NULL, NULL), GTL_STATUS_INVALID_ARG, "at least 2 samples");
    CHECK_FAIL(gtl_adapt(m, ds, NULL, NULL), GTL_STATUS_INVALID_ARG,
               "gtl_dataset_remap_labels");

    /* Cancelled in N1. */
    pl.cancel_at = 1;
    CHECK_FAIL(p_adapt(m, sup, on_progress, &pl), GTL_STATUS_CANCELLED, "gtl_adapt");
    CHECK(pl.n_calls == 1 && pl.stage == GTL_STAGE_N1);

    /* N1 then N2, one epoch each (6 support rows, batches of 3 x 2). */
    memset(&pl, 0, sizeof pl);
    CHECK_OK(gtl_adapt(m, sup, on_progress, &pl));
    CHECK(pl.n_calls == 2 && pl.n_stage_change == 1 && pl.stage == GTL_STAGE_N2 && pl.bad == 0);
    int64_t iv = 0;
    CHECK_OK(gtl_model_get_i64(m, GTL_MODEL_NUM_CLASSES, &iv));
    CHECK(iv == 3);
    float q[3 * FD], probs[3 * 3];
    int64_t lab[3];
    for (int i = 0; i < 3; i++)
        CHECK_OK(gtl_dataset_get(qry, i, q + i * FD, FD, NULL, NULL, NULL));
    CHECK_OK(gtl_model_predict(m, q, 3, FD, lab, probs, 9));
    for (int i = 0; i < 3; i++)
        CHECK(lab[i] >= 0 && lab[i] < 3);

    /* No N2 epochs: the model still gets a classifier for the support's classes. */
    CHECK_OK(gtl_model_set_i64(m, GTL_MODEL_N2_EPOCHS, 0));
    CHECK_OK(gtl_episode_sample(ep, ds, 2, 1, 1, rgb | sketch, rgb, 6));
    memset(&pl, 0, sizeof pl);
    CHECK_OK(gtl_adapt(m, gtl_episode_support(ep), on_progress, &pl));
    CHECK(pl.n_calls == 1 && pl.stage == GTL_STAGE_N1);
    CHECK_OK(gtl_model_get_i64(m, GTL_MODEL_NUM_CLASSES, &iv));
    CHECK(iv == 2);

    gtl_episode_destroy(ep);
    gtl_dataset_destroy(ds);
    gtl_dataset_destroy(other);
    gtl_dataset_destroy(one);
    gtl_model_destroy(m);
    check_no_memory("adapt");
}

/* ---- checkpoints --------------------------------------------------------------- */

static long file_read(const char *path, unsigned char *buf, size_t cap)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return -1;
    size_t n = fread(buf, 1, cap, f);
    fclose(f);
    return (long)n;
}

static int file_write(const char *path, const unsigned char *buf, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    size_t w = fwrite(buf, 1, n, f);
    return fclose(f) == 0 && w == n ? 0 : -1;
}

static void check_checkpoints(void)
{
    const char *path = "gtl_abi_test.ckpt", *plain = "gtl_abi_plain.ckpt";
    const char *bad = "gtl_abi_corrupt.ckpt", *missing = "gtl_abi_no_such_file.ckpt";
    const char *no_dir = "gtl_abi_no_such_dir/x.ckpt";
    gtl_model *m = tiny_model(13);
    gtl_optimizer *opt = NULL;
    CHECK_OK(gtl_optimizer_create(GTL_OPTIM_SGD, &opt));
    CHECK_OK(gtl_optimizer_set_f32(opt, GTL_OPTIM_PARAM_MOMENTUM, 0.5f));
    const int64_t ms[2] = {3, 9};
    CHECK_OK(gtl_optimizer_set_milestones(opt, ms, 2));
    CHECK_OK(gtl_model_set_stage(m, GTL_STAGE_B2, 4));
    int64_t y[8];
    for (int i = 0; i < 8; i++)
        y[i] = i % 4;
    CHECK_OK(gtl_model_train_step(m, opt, base_x, 8, FD, y, NULL, 0));
    CHECK_OK(gtl_model_train_step(m, opt, base_x, 8, FD, y, NULL, 0));

    CHECK_FAIL(gtl_model_save(NULL, opt, path), GTL_STATUS_INVALID_ARG, "gtl_model_save");
    CHECK_FAIL(gtl_model_save(m, opt, NULL), GTL_STATUS_INVALID_ARG, "gtl_model_save");
    CHECK_FAIL(gtl_model_save(m, opt, no_dir), GTL_STATUS_IO, no_dir);
    CHECK_OK(p_model_save(m, opt, path));
    CHECK_OK(gtl_model_save(m, NULL, plain));

    /* Load: the same predictions, weights, settings and optimizer state. */
    gtl_model *m2 = SENTINEL(gtl_model);
    gtl_optimizer *o2 = SENTINEL(gtl_optimizer);
    CHECK_OK(p_model_load(path, &m2, &o2));
    CHECK(m2 != NULL && o2 != NULL);
    float p1[8 * 4], p2[8 * 4];
    CHECK_OK(gtl_model_predict(m, base_x, 8, FD, NULL, p1, 32));
    CHECK_OK(gtl_model_predict(m2, base_x, 8, FD, NULL, p2, 32));
    CHECK(memcmp(p1, p2, sizeof p1) == 0);
    int64_t nt = 0, nt2 = 0, iv = 0;
    CHECK_OK(gtl_model_num_tensors(m, &nt));
    CHECK_OK(gtl_model_num_tensors(m2, &nt2));
    CHECK(nt == nt2);
    for (int64_t i = 0; i < nt && i < nt2; i++) {
        float a[256], b[256];
        int64_t na = 0, nb = 0;
        int32_t ta = -1, tb = -1;
        CHECK_OK(gtl_model_tensor_info(m, i, NULL, 0, &na, &ta));
        CHECK_OK(gtl_model_tensor_info(m2, i, NULL, 0, &nb, &tb));
        CHECK(na == nb && ta == tb && na <= 256);
        if (na != nb || na > 256)
            continue;
        CHECK_OK(gtl_model_tensor_get(m, i, 0, a, 256));
        CHECK_OK(gtl_model_tensor_get(m2, i, 0, b, 256));
        CHECK(memcmp(a, b, (size_t)na * sizeof(float)) == 0);
    }
    CHECK_OK(gtl_model_get_i64(m2, GTL_MODEL_NUM_CLASSES, &iv));
    CHECK(iv == 4);
    CHECK_OK(gtl_model_get_i64(m2, GTL_MODEL_HIDDEN_DIM, &iv));
    CHECK(iv == TH);
    CHECK(opt_steps(o2) == 2);
    float fv = 0.0f;
    CHECK_OK(gtl_optimizer_get_f32(o2, GTL_OPTIM_PARAM_MOMENTUM, &fv));
    CHECK(fv == 0.5f);
    int64_t ms2[4];
    size_t nm = 0;
    CHECK_OK(gtl_optimizer_get_milestones(o2, ms2, 4, &nm));
    CHECK(nm == 2 && ms2[0] == 3 && ms2[1] == 9);
    /* Resuming continues identically: the same step on both. */
    float s1[GTL_STAT_COUNT], s2[GTL_STAT_COUNT];
    CHECK_OK(gtl_model_train_step(m, opt, base_x, 8, FD, y, s1, GTL_STAT_COUNT));
    CHECK_OK(gtl_model_train_step(m2, o2, base_x, 8, FD, y, s2, GTL_STAT_COUNT));
    CHECK(memcmp(s1, s2, sizeof s1) == 0);
    CHECK_OK(gtl_model_predict(m, base_x, 8, FD, NULL, p1, 32));
    CHECK_OK(gtl_model_predict(m2, base_x, 8, FD, NULL, p2, 32));
    CHECK(memcmp(p1, p2, sizeof p1) == 0);
    gtl_model_destroy(m2);
    gtl_optimizer_destroy(o2);

    /* Without an optimizer in the file, or without asking for it. */
    m2 = NULL;
    o2 = SENTINEL(gtl_optimizer);
    CHECK_OK(gtl_model_load(plain, &m2, &o2));
    CHECK(m2 != NULL && o2 == NULL);
    gtl_model_destroy(m2);
    m2 = NULL;
    CHECK_OK(gtl_model_load(path, &m2, NULL));
    CHECK(m2 != NULL);
    gtl_model_destroy(m2);

    /* Refusals: out pointers reset, the message names the file. */
    o2 = SENTINEL(gtl_optimizer);
    CHECK_FAIL(gtl_model_load(path, NULL, &o2), GTL_STATUS_INVALID_ARG, "gtl_model_load");
    CHECK(o2 == NULL);
    m2 = SENTINEL(gtl_model);
    CHECK_FAIL(gtl_model_load(NULL, &m2, NULL), GTL_STATUS_INVALID_ARG, "gtl_model_load");
    CHECK(m2 == NULL);
    m2 = SENTINEL(gtl_model);
    o2 = SENTINEL(gtl_optimizer);
    remove(missing);
    CHECK_FAIL(gtl_model_load(missing, &m2, &o2), GTL_STATUS_IO, missing);
    CHECK(m2 == NULL && o2 == NULL);

    static unsigned char bytes[1 << 16];
    long len = file_read(path, bytes, sizeof bytes);
    CHECK(len > 200 && len < (long)sizeof bytes);
    if (len > 200 && len < (long)sizeof bytes) {
        /* Not a checkpoint at all. */
        const char text[] = "this is not a libgtl checkpoint, just some text\n";
        CHECK(file_write(bad, (const unsigned char *)text, sizeof text - 1) == 0);
        m2 = SENTINEL(gtl_model);
        CHECK_FAIL(gtl_model_load(bad, &m2, NULL), GTL_STATUS_FORMAT, bad);
        CHECK(m2 == NULL);
        /* Truncated. */
        CHECK(file_write(bad, bytes, (size_t)len / 2) == 0);
        m2 = SENTINEL(gtl_model);
        o2 = SENTINEL(gtl_optimizer);
        CHECK_FAIL(gtl_model_load(bad, &m2, &o2), GTL_STATUS_FORMAT, bad);
        CHECK(m2 == NULL && o2 == NULL);
        /* One flipped byte in the header, the table or a payload. */
        const long at[4] = {20, 100, len / 2, len - 10};
        for (int i = 0; i < 4; i++) {
            bytes[at[i]] ^= 0x10;
            CHECK(file_write(bad, bytes, (size_t)len) == 0);
            bytes[at[i]] ^= 0x10;
            m2 = SENTINEL(gtl_model);
            o2 = SENTINEL(gtl_optimizer);
            gtl_status st = gtl_model_load(bad, &m2, &o2);
            if (st != GTL_STATUS_FORMAT || strstr(gtl_last_error(), bad) == NULL) {
                fprintf(stderr, "flipped byte %ld of %ld: %s (%s), expected FORMAT\n", at[i],
                        len, gtl_strerror(st), gtl_last_error());
                n_failed++;
            }
            if (st != GTL_STATUS_OK)
                CHECK(m2 == NULL && o2 == NULL);
            if (st == GTL_STATUS_OK) {
                gtl_model_destroy(m2);
                gtl_optimizer_destroy(o2);
            }
        }
    }
    remove(path);
    remove(plain);
    remove(bad);
    gtl_optimizer_destroy(opt);
    gtl_model_destroy(m);
    check_no_memory("checkpoints");
}

/* Every allocation of the handle APIs goes through the installed hooks, and
 * all of it is returned. */
/* ---- backbone.h ------------------------------------------------------------ */

/* CRC-32 (the PNG/zlib polynomial) and Adler-32, for the PNG written below. */
static uint32_t crc32_of(uint32_t crc, const unsigned char *p, size_t n)
{
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

static void be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static void png_chunk(FILE *f, const char *type, const unsigned char *data, uint32_t n)
{
    unsigned char b[8];
    be32(b, n);
    memcpy(b + 4, type, 4);
    fwrite(b, 1, 8, f);
    fwrite(data, 1, n, f);
    be32(b, crc32_of(crc32_of(0, (const unsigned char *)type, 4), data, n));
    fwrite(b, 1, 4, f);
}

/* A 20 x 12 RGB PNG (one stored deflate block: no zlib needed here). */
static int write_png(const char *path)
{
    enum { W = 20, H = 12, ROW = 1 + 3 * W, RAW = H * ROW };
    unsigned char raw[RAW], z[2 + 5 + RAW + 4], ihdr[13] = {0};
    for (int y = 0; y < H; y++) {
        raw[y * ROW] = 0;
        for (int x = 0; x < 3 * W; x++)
            raw[y * ROW + 1 + x] = (unsigned char)(x * 11 + y * 17);
    }
    z[0] = 0x78;
    z[1] = 0x01;
    z[2] = 1; /* final stored block */
    z[3] = RAW & 0xff;
    z[4] = RAW >> 8;
    z[5] = (unsigned char)~(RAW & 0xff);
    z[6] = (unsigned char)~(RAW >> 8);
    memcpy(z + 7, raw, RAW);
    uint32_t a = 1, b = 0;
    for (int i = 0; i < RAW; i++) {
        a = (a + raw[i]) % 65521u;
        b = (b + a) % 65521u;
    }
    be32(z + 7 + RAW, b << 16 | a);
    be32(ihdr, W);
    be32(ihdr + 4, H);
    ihdr[8] = 8;
    ihdr[9] = 2;
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    static const unsigned char sig[8] = {0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a};
    fwrite(sig, 1, 8, f);
    png_chunk(f, "IHDR", ihdr, 13);
    png_chunk(f, "IDAT", z, (uint32_t)sizeof z);
    png_chunk(f, "IEND", z, 0);
    return fclose(f) == 0 ? 0 : -1;
}

static void check_images(void)
{
    const char *png = "gtl_abi_image.png", *missing = "gtl_abi_no_such_image.png";
    CHECK(write_png(png) == 0);
    static float a[3 * 16 * 16], b[3 * 16 * 16];
    CHECK_OK(p_image_load(png, 16, a, 3 * 16 * 16));
    uint8_t px[12 * 20 * 3];
    for (int y = 0; y < 12; y++)
        for (int x = 0; x < 60; x++)
            px[y * 60 + x] = (uint8_t)(x * 11 + y * 17);
    CHECK_OK(p_image_preprocess(px, 12, 20, 3, 16, b, 3 * 16 * 16));
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK_OK(gtl_image_preprocess(px, 12, 20, 1, 16, b, 3 * 16 * 16));
    CHECK_FAIL(gtl_image_load(missing, 16, a, 3 * 16 * 16), GTL_STATUS_IO, missing);
    CHECK_FAIL(gtl_image_load(png, 16, a, 3 * 16 * 16 - 1), GTL_STATUS_INVALID_ARG,
               "gtl_image_load");
    CHECK_FAIL(gtl_image_load(NULL, 16, a, 3 * 16 * 16), GTL_STATUS_INVALID_ARG,
               "gtl_image_load");
    CHECK_FAIL(gtl_image_preprocess(px, 12, 20, 2, 16, b, 3 * 16 * 16), GTL_STATUS_INVALID_ARG,
               "channels");
    CHECK_FAIL(gtl_image_preprocess(px, 12, 20, 3, 0, b, 3 * 16 * 16), GTL_STATUS_INVALID_ARG,
               "size");
    uint64_t rng = 7;
    CHECK_OK(p_image_augment(png, GTL_AUGMENT_FLIP | GTL_AUGMENT_COLOR, &rng, 16, a,
                             3 * 16 * 16));
    CHECK(rng != 7);
    CHECK_OK(gtl_image_augment(png, GTL_AUGMENT_NONE, &rng, 16, a, 3 * 16 * 16));
    CHECK_OK(gtl_image_preprocess(px, 12, 20, 3, 16, b, 3 * 16 * 16));
    CHECK(memcmp(a, b, sizeof a) == 0);
    CHECK_FAIL(gtl_image_augment(png, 1u << 20, &rng, 16, a, 3 * 16 * 16),
               GTL_STATUS_INVALID_ARG, "flags");
    CHECK_FAIL(gtl_image_augment(png, 0, NULL, 16, a, 3 * 16 * 16), GTL_STATUS_INVALID_ARG,
               "rng_state");
    remove(png);
}

static void check_backbone(void)
{
    const char *png = "gtl_abi_bb.png", *saved = "gtl_abi_backbone.ckpt";
    const char *cache = "gtl_abi_backbone_cache";
    gtl_backbone *bb = NULL, *bb2 = NULL;
    CHECK_FAIL(p_backbone_create((gtl_backbone_preset)42, &bb), GTL_STATUS_INVALID_ARG,
               "gtl_backbone_create");
    CHECK(bb == NULL);
    CHECK_FAIL(gtl_backbone_create(GTL_BACKBONE_VIT_TINY, NULL), GTL_STATUS_INVALID_ARG,
               "out_backbone");
    CHECK_OK(gtl_backbone_create(GTL_BACKBONE_RESNET_SMALL, &bb));
    if (bb != NULL) {
        int64_t cf = 0;
        CHECK_OK(gtl_backbone_get_i64(bb, GTL_BACKBONE_FEATURE_DIM, &cf));
        CHECK(cf == 256);
        CHECK_FAIL(gtl_backbone_set_i64(bb, GTL_BACKBONE_BF16, 1), GTL_STATUS_INVALID_ARG,
                   "does not apply");
        static float cimg[3 * 64 * 64], cfeat[256];
        CHECK_OK(gtl_backbone_embed(bb, cimg, 1, cfeat, 256));
    }
    p_backbone_destroy(bb);
    bb = NULL;
    CHECK_OK(gtl_backbone_create(GTL_BACKBONE_VIT_TINY, &bb));
    if (bb == NULL)
        return;
    int64_t s = 0, f = 0, v = -1;
    CHECK_OK(p_backbone_get_i64(bb, GTL_BACKBONE_IMAGE_SIZE, &s));
    CHECK_OK(gtl_backbone_get_i64(bb, GTL_BACKBONE_FEATURE_DIM, &f));
    CHECK(s == 64 && f == 96);
    CHECK_FAIL(gtl_backbone_get_i64(bb, (gtl_backbone_param)77, &v), GTL_STATUS_INVALID_ARG,
               "key");
    CHECK(v == 0);
    CHECK_FAIL(gtl_backbone_get_i64(NULL, GTL_BACKBONE_SEED, &v), GTL_STATUS_INVALID_ARG,
               "gtl_backbone_get_i64");
    CHECK_OK(p_backbone_set_i64(bb, GTL_BACKBONE_SEED, 3));
    float tf = 0.0f;
    CHECK_OK(p_backbone_set_f32(bb, GTL_BACKBONE_TEMPERATURE, 0.2f));
    CHECK_OK(p_backbone_get_f32(bb, GTL_BACKBONE_TEMPERATURE, &tf));
    CHECK(tf == 0.2f);
    CHECK_FAIL(p_backbone_set_f32(bb, GTL_BACKBONE_SEED, 1.0f), GTL_STATUS_INVALID_ARG,
               "integer");
    CHECK_FAIL(p_backbone_get_f32(bb, GTL_BACKBONE_SEED, &tf), GTL_STATUS_INVALID_ARG,
               "integer");
    CHECK_OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_LOSS, GTL_BACKBONE_LOSS_CE_SUPCON));
    CHECK_OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_LOSS, GTL_BACKBONE_LOSS_CE));
    CHECK_OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_BATCH_SIZE, 2));
    CHECK_FAIL(gtl_backbone_set_i64(bb, GTL_BACKBONE_FEATURE_DIM, 5), GTL_STATUS_INVALID_ARG,
               "read-only");
    CHECK_FAIL(gtl_backbone_set_i64(bb, GTL_BACKBONE_FEATURE_PARTS, 0), GTL_STATUS_INVALID_ARG,
               "FEATURE_PARTS");
    CHECK_FAIL(gtl_backbone_set_i64(NULL, GTL_BACKBONE_SEED, 1), GTL_STATUS_INVALID_ARG,
               "gtl_backbone_set_i64");

    /* Inference on preprocessed images and on files (one missing). */
    enum { NI = 2 };
    float *img = calloc((size_t)(NI * 3 * s * s), sizeof(float));
    float *feat = calloc((size_t)(NI * f), sizeof(float));
    float *feat2 = calloc((size_t)(NI * f), sizeof(float));
    CHECK(write_png(png) == 0);
    CHECK_OK(gtl_image_load(png, (int32_t)s, img, (size_t)(3 * s * s)));
    CHECK_OK(p_backbone_embed(bb, img, NI, feat, (size_t)(NI * f)));
    CHECK_FAIL(gtl_backbone_embed(bb, img, NI, feat, (size_t)(NI * f - 1)),
               GTL_STATUS_INVALID_ARG, "capacity");
    CHECK_FAIL(gtl_backbone_embed(bb, NULL, NI, feat, (size_t)(NI * f)), GTL_STATUS_INVALID_ARG,
               "gtl_backbone_embed");
    const char *paths[NI] = {png, "gtl_abi_no_such_file.png"};
    gtl_status sts[NI] = {GTL_STATUS_INTERNAL, GTL_STATUS_INTERNAL};
    CHECK_OK(gtl_backbone_set_cache_dir(bb, NULL));
    CHECK_FAIL(p_backbone_embed_files(bb, paths, NI, feat2, (size_t)(NI * f), sts),
               GTL_STATUS_IO, "gtl_abi_no_such_file.png");
    CHECK(sts[0] == GTL_STATUS_OK && sts[1] == GTL_STATUS_IO);
    CHECK(fabsf(feat2[0] - feat[0]) < 1e-4f && feat2[f] == 0.0f);
    CHECK_OK(gtl_backbone_embed_files(bb, paths, 1, feat2, (size_t)f, NULL));
    CHECK_FAIL(gtl_backbone_embed_files(bb, paths, 0, feat2, (size_t)f, NULL),
               GTL_STATUS_INVALID_ARG, "gtl_backbone_embed_files");
    CHECK_OK(p_backbone_set_cache_dir(bb, cache));
    CHECK_OK(gtl_backbone_set_cache_dir(bb, NULL));
    CHECK(remove(cache) == 0);
    CHECK_FAIL(gtl_backbone_set_cache_dir(NULL, cache), GTL_STATUS_INVALID_ARG,
               "gtl_backbone_set_cache_dir");

    /* Supervised training of the last block. */
    gtl_optimizer *opt = NULL;
    CHECK_OK(gtl_optimizer_create(GTL_OPTIM_ADAM, &opt));
    int64_t labels[NI] = {0, 1};
    float stats[4] = {-1, -1, -1, -1};
    CHECK_FAIL(p_backbone_train_step(bb, opt, img, NI, labels, stats, 4), GTL_STATUS_BAD_STATE,
               "NUM_CLASSES");
    CHECK(stats[0] == 0.0f);
    CHECK_OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_NUM_CLASSES, 2));
    CHECK_OK(gtl_backbone_set_i64(bb, GTL_BACKBONE_TRAINABLE_BLOCKS, 1));
    CHECK_OK(gtl_backbone_train_step(bb, opt, img, NI, labels, stats, 4));
    CHECK(stats[0] > 0.0f && stats[2] > 0.0f);
    labels[1] = 2;
    CHECK_FAIL(gtl_backbone_train_step(bb, opt, img, NI, labels, stats, 4),
               GTL_STATUS_INVALID_ARG, "label");
    CHECK_FAIL(gtl_backbone_train_step(bb, NULL, img, NI, labels, stats, 4),
               GTL_STATUS_INVALID_ARG, "gtl_backbone_train_step");

    /* Checkpoint round trip. */
    CHECK_OK(p_backbone_save(bb, saved));
    CHECK_OK(p_backbone_load(saved, &bb2));
    if (bb2 != NULL) {
        CHECK_OK(gtl_backbone_embed(bb, img, NI, feat, (size_t)(NI * f)));
        CHECK_OK(gtl_backbone_embed(bb2, img, NI, feat2, (size_t)(NI * f)));
        CHECK(memcmp(feat, feat2, (size_t)(NI * f) * sizeof(float)) == 0);
    }
    CHECK_FAIL(gtl_backbone_save(bb, "gtl_abi_no_such_dir/x.ckpt"), GTL_STATUS_IO,
               "gtl_abi_no_such_dir");
    CHECK_FAIL(gtl_backbone_save(NULL, saved), GTL_STATUS_INVALID_ARG, "gtl_backbone_save");
    gtl_backbone *none = bb;
    CHECK_FAIL(gtl_backbone_load("gtl_abi_no_such_file.ckpt", &none), GTL_STATUS_IO,
               "gtl_abi_no_such_file.ckpt");
    CHECK(none == NULL);
    CHECK_FAIL(gtl_backbone_load(png, &none), GTL_STATUS_FORMAT, png);
    CHECK_FAIL(gtl_backbone_load(NULL, &none), GTL_STATUS_INVALID_ARG, "gtl_backbone_load");
    remove(saved);
    remove(png);
    free(img);
    free(feat);
    free(feat2);
    gtl_optimizer_destroy(opt);
    gtl_backbone_destroy(bb2);
    gtl_backbone_destroy(bb);
    gtl_backbone_destroy(NULL);
    check_no_memory("backbone");
}

static void check_handles_use_allocator(void)
{
    counts c = {0, 0, 0};
    CHECK_OK(gtl_set_allocator(my_malloc, my_realloc, my_free, &c));
    gtl_model *m = tiny_model(1);
    gtl_dataset *ds = make_base();
    gtl_optimizer *opt = NULL;
    CHECK_OK(gtl_optimizer_create(GTL_OPTIM_ADAM, &opt));
    CHECK_OK(gtl_model_set_i64(m, GTL_MODEL_BATCH_CLASSES, 2));
    CHECK_OK(gtl_model_train_stage(m, opt, GTL_STAGE_B1, ds, 1, NULL, NULL));
    uint64_t bytes = 0, blocks = 0;
    CHECK_OK(gtl_memory_in_use(&bytes, &blocks));
    CHECK(bytes > 0 && blocks > 0);
    /* Installing another allocator while libgtl holds memory is refused. */
    CHECK_FAIL(gtl_set_allocator(NULL, NULL, NULL, NULL), GTL_STATUS_BAD_STATE,
               "gtl_set_allocator");
    gtl_optimizer_destroy(opt);
    gtl_dataset_destroy(ds);
    gtl_model_destroy(m);
    check_no_memory("allocator hooks");
    CHECK(c.n_malloc > 0 && c.n_free > 0);
    CHECK_OK(gtl_set_allocator(NULL, NULL, NULL, NULL));
}

/* ==== evaluation ================================================================
 * eval.h, plus the functions that came with it: gtl_episode_from_indices and
 * gtl_episode_source_indices (dataset.h), gtl_model_clone (model.h). This
 * section is self-contained (enum values, pointer types, checks); main() calls
 * check_evaluation(). */

_Static_assert(GTL_EVAL_NEAREST_CENTROID == 0 && GTL_EVAL_CENTRED_CENTROID == 1 &&
                   GTL_EVAL_LINEAR_PROBE == 2 && GTL_EVAL_CALLBACK == 3 && GTL_EVAL_GTL == 4,
               "evaluation methods are ABI");
_Static_assert(GTL_EVAL_N_WAY == 0 && GTL_EVAL_K_SHOT == 1 && GTL_EVAL_Q_QUERY == 2 &&
                   GTL_EVAL_EPISODES == 3 && GTL_EVAL_SEED == 4 &&
                   GTL_EVAL_SUPPORT_MODALITIES == 5 && GTL_EVAL_QUERY_MODALITIES == 6 &&
                   GTL_EVAL_ALL_WAY_REPEATS == 7 && GTL_EVAL_PROBE_ITERS == 8 &&
                   GTL_EVAL_PROBE_L2 == 9,
               "evaluator settings are ABI");
_Static_assert(GTL_EVAL_FORMAT_JSON == 0 && GTL_EVAL_FORMAT_MARKDOWN == 1,
               "report formats are ABI");
_Static_assert(GTL_EVAL_TOTAL == -1 && GTL_EVAL_NUM_MODALITIES == 32 &&
                   GTL_EVAL_REPORT_EPISODES == 1u && GTL_EVAL_REPORT_NO_HEADER == 2u,
               "evaluation constants and report flags are ABI");

/* dataset.h (episode replay) and model.h (clone) */
static gtl_status (*const p_episode_from_indices)(gtl_episode *, const gtl_dataset *,
                                                  const int64_t *, int64_t, const int64_t *,
                                                  int64_t, const int64_t *,
                                                  int64_t) = gtl_episode_from_indices;
static gtl_status (*const p_episode_source_indices)(const gtl_episode *, int32_t, int64_t *,
                                                    size_t, int64_t *) = gtl_episode_source_indices;
static gtl_status (*const p_model_clone)(const gtl_model *, gtl_model **) = gtl_model_clone;

/* eval.h */
static gtl_status (*const p_eval_nearest_centroid)(const gtl_dataset *, const gtl_dataset *,
                                                   int32_t, int64_t *, size_t, float *,
                                                   size_t) = gtl_eval_nearest_centroid;
static gtl_status (*const p_eval_linear_probe)(const gtl_dataset *, const gtl_dataset *, int64_t,
                                               float, int64_t *, size_t, float *,
                                               size_t) = gtl_eval_linear_probe;
static gtl_status (*const p_eval_accuracy)(const gtl_dataset *, const int64_t *, int64_t,
                                           double *, double *, int64_t *,
                                           size_t) = gtl_eval_accuracy;
static gtl_status (*const p_eval_mean_ci)(const double *, int64_t, double *, double *,
                                          int64_t *) = gtl_eval_mean_ci;
static gtl_status (*const p_eval_confusion)(const gtl_dataset *, const int64_t *, int64_t,
                                            int64_t, int64_t *, size_t) = gtl_eval_confusion;
static gtl_status (*const p_evaluator_create)(gtl_eval_method,
                                              gtl_evaluator **) = gtl_evaluator_create;
static void (*const p_evaluator_destroy)(gtl_evaluator *) = gtl_evaluator_destroy;
static gtl_status (*const p_evaluator_set_i64)(gtl_evaluator *, gtl_eval_param,
                                               int64_t) = gtl_evaluator_set_i64;
static gtl_status (*const p_evaluator_get_i64)(const gtl_evaluator *, gtl_eval_param,
                                               int64_t *) = gtl_evaluator_get_i64;
static gtl_status (*const p_evaluator_set_f32)(gtl_evaluator *, gtl_eval_param,
                                               float) = gtl_evaluator_set_f32;
static gtl_status (*const p_evaluator_get_f32)(const gtl_evaluator *, gtl_eval_param,
                                               float *) = gtl_evaluator_get_f32;
static gtl_status (*const p_evaluator_set_callback)(gtl_evaluator *, gtl_eval_fn,
                                                    void *) = gtl_evaluator_set_callback;
static gtl_status (*const p_evaluator_set_model)(gtl_evaluator *,
                                                 const gtl_model *) = gtl_evaluator_set_model;
static gtl_status (*const p_evaluator_set_progress)(gtl_evaluator *, gtl_eval_progress_fn,
                                                    void *) = gtl_evaluator_set_progress;
static gtl_status (*const p_evaluator_run_episodic)(
    gtl_evaluator *, const gtl_dataset *) = gtl_evaluator_run_episodic;
static gtl_status (*const p_evaluator_run_all_way)(gtl_evaluator *,
                                                   const gtl_dataset *) = gtl_evaluator_run_all_way;
static gtl_status (*const p_evaluator_run_episode_list)(
    gtl_evaluator *, const gtl_dataset *, const int64_t *,
    size_t) = gtl_evaluator_run_episode_list;
static gtl_status (*const p_evaluator_result)(const gtl_evaluator *, int32_t, double *, double *,
                                              int64_t *) = gtl_evaluator_result;
static gtl_status (*const p_evaluator_accuracies)(const gtl_evaluator *, int32_t, double *,
                                                  size_t, int64_t *) = gtl_evaluator_accuracies;
static gtl_status (*const p_evaluator_episode_list)(const gtl_evaluator *, int64_t *, size_t,
                                                    size_t *) = gtl_evaluator_episode_list;
static gtl_status (*const p_evaluator_report)(const gtl_evaluator *, gtl_eval_format, uint32_t,
                                              char *, size_t, size_t *) = gtl_evaluator_report;
static gtl_status (*const p_evaluator_write_file)(
    const gtl_evaluator *, gtl_eval_format, uint32_t, const char *) = gtl_evaluator_write_file;

/* The callback typedefs, matched by these definitions (see eval_cb / eval_progress). */
typedef struct eval_cb_state {
    int mode;          /* 0: nearest centroid, 1: fail, 2: write nothing, 3: out of range,
                        * 4: nearest centroid, then a failed call whose error it ignores */
    int n_calls;
    int bad;           /* support labels outside 0..N-1, or out_pred not preset to -1 */
} eval_cb_state;

static gtl_status eval_cb(void *user_data, const gtl_dataset *support, const gtl_dataset *query,
                          int64_t *out_pred)
{
    eval_cb_state *s = user_data;
    s->n_calls++;
    int64_t nq = 0, n_cls = 0, end = 0;
    if (gtl_dataset_size(query, &nq) != GTL_STATUS_OK ||
        gtl_dataset_num_classes(support, &n_cls, &end) != GTL_STATUS_OK || n_cls != end)
        s->bad++;
    for (int64_t i = 0; i < nq; i++)
        if (out_pred[i] != -1)
            s->bad++;
    switch (s->mode) {
    case 0:
        /* Support labels are 0..N-1 here, so the predicted labels are episode labels. */
        return gtl_eval_nearest_centroid(support, query, 0, out_pred, (size_t)nq, NULL, 0);
    case 1:
        /* Sets its own message, which the runner keeps after its prefix. */
        return gtl_dataset_size(NULL, &nq);
    case 2:
        return GTL_STATUS_OK;
    case 4:
        if (gtl_eval_nearest_centroid(support, query, 0, out_pred, (size_t)nq, NULL, 0) !=
                GTL_STATUS_OK ||
            gtl_dataset_size(NULL, &nq) != GTL_STATUS_INVALID_ARG)
            s->bad++;
        return GTL_STATUS_OK;
    default:
        for (int64_t i = 0; i < nq; i++)
            out_pred[i] = n_cls;
        return GTL_STATUS_OK;
    }
}
static const gtl_eval_fn p_eval_cb = eval_cb;

typedef struct eval_progress_state {
    int n_calls, cancel_at, bad;
    int64_t n_episodes;
} eval_progress_state;

static int eval_progress(void *user_data, int64_t episode, int64_t n_episodes, double accuracy)
{
    eval_progress_state *s = user_data;
    s->n_calls++;
    if (episode != s->n_calls || !(accuracy >= 0.0 && accuracy <= 1.0))
        s->bad++;
    s->n_episodes = n_episodes;
    return s->cancel_at > 0 && s->n_calls >= s->cancel_at;
}
static const gtl_eval_progress_fn p_eval_progress = eval_progress;

/* Support: the first photo of each class (rows 0, 6, 12, 18). Query: the
 * other photos and all sketches of each class (20 rows), labels 10..40 or
 * (with cls_labels) 0..3. */
static gtl_dataset *eval_support(void)
{
    gtl_dataset *ds = NULL;
    CHECK_OK(gtl_dataset_create(FD, &ds));
    for (int c = 0; c < N_CLS; c++) {
        int i = c * PER_CLS;
        CHECK_OK(gtl_dataset_add(ds, base_x + i * FD, 1, base_label + i, base_mod + i,
                                 base_pair + i));
    }
    return ds;
}

static gtl_dataset *eval_query(int cls_labels, int64_t *rows)
{
    gtl_dataset *ds = NULL;
    CHECK_OK(gtl_dataset_create(FD, &ds));
    int n = 0;
    for (int i = 0; i < N_BASE; i++) {
        if (i % PER_CLS == 0)
            continue;
        CHECK_OK(gtl_dataset_add(ds, base_x + i * FD, 1, cls_labels ? base_cls + i : base_label + i,
                                 base_mod + i, base_pair + i));
        if (rows != NULL)
            rows[n] = i;
        n++;
    }
    return ds;
}

enum { EQ = N_BASE - N_CLS };   /* query rows of eval_query() */

static void check_eval_baselines(void)
{
    gtl_dataset *sup = eval_support(), *qry = eval_query(0, NULL), *empty = NULL,
                *half = NULL;
    int64_t rows[EQ];
    gtl_dataset_destroy(eval_query(0, rows));
    CHECK_OK(gtl_dataset_create(FD, &empty));
    CHECK_OK(gtl_dataset_create(FD / 2, &half));
    CHECK_OK(gtl_dataset_add(half, base_x, 2, base_label, NULL, NULL));
    int64_t pred[EQ];
    float scores[EQ * N_CLS];

    /* The classes are well separated: every query is classified right, by
     * label value; the score columns are the classes in increasing label order. */
    for (int32_t centred = 0; centred <= 1; centred++) {
        for (int i = 0; i < EQ; i++)
            pred[i] = -7;
        CHECK_OK(p_eval_nearest_centroid(sup, qry, centred, pred, EQ, scores, EQ * N_CLS));
        for (int i = 0; i < EQ; i++) {
            CHECK(pred[i] == base_label[rows[i]]);
            int best = 0;
            for (int c = 0; c < N_CLS; c++) {
                CHECK(scores[i * N_CLS + c] >= -1.0001f && scores[i * N_CLS + c] <= 1.0001f);
                if (scores[i * N_CLS + c] > scores[i * N_CLS + best])
                    best = c;
            }
            CHECK(10 * (best + 1) == pred[i]);
        }
        /* Scores are optional. */
        CHECK_OK(gtl_eval_nearest_centroid(sup, qry, centred, pred, EQ, NULL, 0));
    }
    float probs[EQ * N_CLS], probs2[EQ * N_CLS];
    CHECK_OK(p_eval_linear_probe(sup, qry, 50, 0.01f, pred, EQ, probs, EQ * N_CLS));
    for (int i = 0; i < EQ; i++) {
        CHECK(pred[i] == base_label[rows[i]]);
        double sum = 0;
        for (int c = 0; c < N_CLS; c++)
            sum += probs[i * N_CLS + c];
        CHECK(abs_d(sum - 1.0) < 1e-5);
    }
    /* Deterministic: the same bits again. */
    CHECK_OK(gtl_eval_linear_probe(sup, qry, 50, 0.01f, pred, EQ, probs2, EQ * N_CLS));
    CHECK(memcmp(probs, probs2, sizeof probs) == 0);
    CHECK_OK(gtl_eval_linear_probe(sup, qry, 1, 0.0f, pred, EQ, NULL, 0));

    /* Refusals write nothing. */
    for (int i = 0; i < EQ; i++)
        pred[i] = -7;
    CHECK_FAIL(gtl_eval_nearest_centroid(NULL, qry, 0, pred, EQ, NULL, 0),
               GTL_STATUS_INVALID_ARG, "gtl_eval_nearest_centroid");
    CHECK_FAIL(gtl_eval_nearest_centroid(sup, NULL, 0, pred, EQ, NULL, 0),
               GTL_STATUS_INVALID_ARG, "gtl_eval_nearest_centroid");
    CHECK_FAIL(gtl_eval_nearest_centroid(sup, qry, 0, NULL, EQ, NULL, 0),
               GTL_STATUS_INVALID_ARG, "gtl_eval_nearest_centroid");
    CHECK_FAIL(gtl_eval_nearest_centroid(empty, qry, 0, pred, EQ, NULL, 0),
               GTL_STATUS_INVALID_ARG, "empty");
    CHECK_FAIL(gtl_eval_nearest_centroid(sup, empty, 0, pred, EQ, NULL, 0),
               GTL_STATUS_INVALID_ARG, "empty");
    CHECK_FAIL(gtl_eval_nearest_centroid(sup, half, 0, pred, EQ, NULL, 0),
               GTL_STATUS_INVALID_ARG, "feature sizes differ");
    CHECK_FAIL(gtl_eval_nearest_centroid(sup, qry, 2, pred, EQ, NULL, 0),
               GTL_STATUS_INVALID_ARG, "centred");
    CHECK_FAIL(gtl_eval_nearest_centroid(sup, qry, -1, pred, EQ, NULL, 0),
               GTL_STATUS_INVALID_ARG, "centred");
    CHECK_FAIL(gtl_eval_nearest_centroid(sup, qry, 0, pred, EQ - 1, NULL, 0),
               GTL_STATUS_INVALID_ARG, "pred_capacity");
    CHECK_FAIL(gtl_eval_nearest_centroid(sup, qry, 0, pred, EQ, scores, EQ * N_CLS - 1),
               GTL_STATUS_INVALID_ARG, "capacity");
    CHECK_FAIL(gtl_eval_linear_probe(NULL, qry, 10, 0.01f, pred, EQ, NULL, 0),
               GTL_STATUS_INVALID_ARG, "gtl_eval_linear_probe");
    CHECK_FAIL(gtl_eval_linear_probe(sup, qry, 10, 0.01f, NULL, EQ, NULL, 0),
               GTL_STATUS_INVALID_ARG, "gtl_eval_linear_probe");
    CHECK_FAIL(gtl_eval_linear_probe(sup, half, 10, 0.01f, pred, EQ, NULL, 0),
               GTL_STATUS_INVALID_ARG, "feature sizes differ");
    CHECK_FAIL(gtl_eval_linear_probe(sup, qry, 0, 0.01f, pred, EQ, NULL, 0),
               GTL_STATUS_INVALID_ARG, "n_iters");
    CHECK_FAIL(gtl_eval_linear_probe(sup, qry, 1000001, 0.01f, pred, EQ, NULL, 0),
               GTL_STATUS_INVALID_ARG, "n_iters");
    CHECK_FAIL(gtl_eval_linear_probe(sup, qry, 10, -0.5f, pred, EQ, NULL, 0),
               GTL_STATUS_INVALID_ARG, "l2");
    CHECK_FAIL(gtl_eval_linear_probe(sup, qry, 10, NAN, pred, EQ, NULL, 0),
               GTL_STATUS_INVALID_ARG, "l2");
    CHECK_FAIL(gtl_eval_linear_probe(sup, qry, 10, INFINITY, pred, EQ, NULL, 0),
               GTL_STATUS_INVALID_ARG, "l2");
    CHECK_FAIL(gtl_eval_linear_probe(sup, qry, 10, 0.01f, pred, 3, NULL, 0),
               GTL_STATUS_INVALID_ARG, "pred_capacity");
    CHECK_FAIL(gtl_eval_linear_probe(sup, qry, 10, 0.01f, pred, EQ, probs, 4),
               GTL_STATUS_INVALID_ARG, "capacity");
    for (int i = 0; i < EQ; i++)
        CHECK(pred[i] == -7);

    gtl_dataset_destroy(sup);
    gtl_dataset_destroy(qry);
    gtl_dataset_destroy(empty);
    gtl_dataset_destroy(half);
    check_no_memory("evaluation baselines");
}

static void check_eval_metrics(void)
{
    int64_t rows[EQ];
    gtl_dataset *qry = eval_query(1, rows), *empty = NULL;
    CHECK_OK(gtl_dataset_create(FD, &empty));
    /* Predictions (class indices 0..3): right except query rows 0 (a photo)
     * and 3 (a sketch), which are predicted as the next class. */
    int64_t pred[EQ];
    for (int i = 0; i < EQ; i++)
        pred[i] = base_cls[rows[i]];
    pred[0] = (pred[0] + 1) % N_CLS;
    pred[3] = (pred[3] + 1) % N_CLS;
    CHECK(base_mod[rows[0]] == GTL_MODALITY_RGB && base_mod[rows[3]] == GTL_MODALITY_SKETCH);
    const int n_rgb = N_CLS * 2, n_sketch = N_CLS * 3;

    double acc = -1, macc[GTL_EVAL_NUM_MODALITIES];
    int64_t mcnt[GTL_EVAL_NUM_MODALITIES];
    CHECK_OK(p_eval_accuracy(qry, pred, EQ, &acc, macc, mcnt, GTL_EVAL_NUM_MODALITIES));
    CHECK(close_to(acc, (EQ - 2.0) / EQ, 1e-12));
    CHECK(close_to(macc[GTL_MODALITY_RGB], (n_rgb - 1.0) / n_rgb, 1e-12));
    CHECK(close_to(macc[GTL_MODALITY_SKETCH], (n_sketch - 1.0) / n_sketch, 1e-12));
    CHECK(mcnt[GTL_MODALITY_RGB] == n_rgb && mcnt[GTL_MODALITY_SKETCH] == n_sketch);
    for (int m = 2; m < GTL_EVAL_NUM_MODALITIES; m++)
        CHECK(isnan(macc[m]) && mcnt[m] == 0);
    CHECK_OK(gtl_eval_accuracy(qry, pred, EQ, NULL, NULL, NULL, 0));
    CHECK_OK(gtl_eval_accuracy(qry, pred, EQ, &acc, NULL, mcnt, GTL_EVAL_NUM_MODALITIES));

    CHECK_FAIL(gtl_eval_accuracy(NULL, pred, EQ, &acc, NULL, NULL, 0), GTL_STATUS_INVALID_ARG,
               "gtl_eval_accuracy");
    CHECK_FAIL(gtl_eval_accuracy(qry, NULL, EQ, &acc, NULL, NULL, 0), GTL_STATUS_INVALID_ARG,
               "gtl_eval_accuracy");
    CHECK_FAIL(gtl_eval_accuracy(qry, pred, EQ - 1, &acc, NULL, NULL, 0),
               GTL_STATUS_INVALID_ARG, "n_pred");
    CHECK_FAIL(gtl_eval_accuracy(empty, pred, 0, &acc, NULL, NULL, 0), GTL_STATUS_INVALID_ARG,
               "n_pred");
    mcnt[0] = -5;
    CHECK_FAIL(gtl_eval_accuracy(qry, pred, EQ, &acc, macc, mcnt, GTL_EVAL_NUM_MODALITIES - 1),
               GTL_STATUS_INVALID_ARG, "modality_capacity");
    CHECK(mcnt[0] == -5);

    /* Mean and 95% interval, NaN skipped: 0.5, 1, 0.75 -> 0.75, sd 0.25. */
    const double v[4] = {0.5, 1.0, NAN, 0.75};
    double mean = -1, ci = -1;
    int64_t used = -1;
    CHECK_OK(p_eval_mean_ci(v, 4, &mean, &ci, &used));
    CHECK(close_to(mean, 0.75, 1e-12) && used == 3);
    CHECK(close_to(ci, 1.96 * 0.25 / sqrt(3.0), 1e-12));
    CHECK_OK(gtl_eval_mean_ci(v, 1, &mean, &ci, &used));
    CHECK(mean == 0.5 && isnan(ci) && used == 1);
    CHECK_OK(gtl_eval_mean_ci(v + 2, 1, &mean, &ci, NULL));
    CHECK(isnan(mean) && isnan(ci));
    CHECK_OK(gtl_eval_mean_ci(v, 4, NULL, NULL, NULL));
    const double inf[2] = {0.5, INFINITY};
    CHECK_FAIL(gtl_eval_mean_ci(inf, 2, &mean, &ci, &used), GTL_STATUS_INVALID_ARG, "infinite");
    CHECK_FAIL(gtl_eval_mean_ci(NULL, 2, &mean, &ci, &used), GTL_STATUS_INVALID_ARG,
               "gtl_eval_mean_ci");
    CHECK_FAIL(gtl_eval_mean_ci(v, 0, &mean, &ci, &used), GTL_STATUS_INVALID_ARG,
               "gtl_eval_mean_ci");

    /* Confusion: the diagonal plus the two shifted predictions. */
    int64_t mat[N_CLS * N_CLS], want[N_CLS * N_CLS];
    memset(want, 0, sizeof want);
    for (int i = 0; i < EQ; i++)
        want[base_cls[rows[i]] * N_CLS + pred[i]]++;
    CHECK(want[0] + want[5] + want[10] + want[15] == EQ - 2);
    CHECK_OK(p_eval_confusion(qry, pred, EQ, N_CLS, mat, N_CLS * N_CLS));
    CHECK(memcmp(mat, want, sizeof mat) == 0);
    int64_t big[36];
    CHECK_OK(gtl_eval_confusion(qry, pred, EQ, 6, big, 36));
    for (int t = 0; t < 6; t++)
        for (int p = 0; p < 6; p++)
            CHECK(big[t * 6 + p] == (t < N_CLS && p < N_CLS ? want[t * N_CLS + p] : 0));
    memset(mat, 0x55, sizeof mat);
    CHECK_FAIL(gtl_eval_confusion(qry, pred, EQ, N_CLS, mat, N_CLS * N_CLS - 1),
               GTL_STATUS_INVALID_ARG, "capacity");
    CHECK_FAIL(gtl_eval_confusion(qry, pred, EQ, N_CLS - 1, mat, N_CLS * N_CLS),
               GTL_STATUS_INVALID_ARG, "outside");
    CHECK_FAIL(gtl_eval_confusion(qry, pred, EQ, 0, mat, N_CLS * N_CLS), GTL_STATUS_INVALID_ARG,
               "n_classes");
    CHECK_FAIL(gtl_eval_confusion(qry, pred, EQ, 65537, mat, N_CLS * N_CLS),
               GTL_STATUS_INVALID_ARG, "n_classes");
    CHECK_FAIL(gtl_eval_confusion(qry, pred, EQ - 1, N_CLS, mat, N_CLS * N_CLS),
               GTL_STATUS_INVALID_ARG, "n_pred");
    CHECK_FAIL(gtl_eval_confusion(qry, pred, EQ, N_CLS, NULL, N_CLS * N_CLS),
               GTL_STATUS_INVALID_ARG, "gtl_eval_confusion");
    CHECK_FAIL(gtl_eval_confusion(NULL, pred, EQ, N_CLS, mat, N_CLS * N_CLS),
               GTL_STATUS_INVALID_ARG, "gtl_eval_confusion");
    pred[5] = -1;
    CHECK_FAIL(gtl_eval_confusion(qry, pred, EQ, N_CLS, mat, N_CLS * N_CLS),
               GTL_STATUS_INVALID_ARG, "outside");
    for (int i = 0; i < N_CLS * N_CLS; i++)
        CHECK(mat[i] == 0x5555555555555555);

    gtl_dataset_destroy(qry);
    gtl_dataset_destroy(empty);
    check_no_memory("evaluation metrics");
}

/* Row i of a and row i of b are the same sample (features, label, modality, pair). */
static int same_rows(const gtl_dataset *a, const gtl_dataset *b)
{
    int64_t na = -1, nb = -2;
    CHECK_OK(gtl_dataset_size(a, &na));
    CHECK_OK(gtl_dataset_size(b, &nb));
    if (na != nb)
        return 0;
    for (int64_t i = 0; i < na; i++) {
        float xa[FD], xb[FD];
        int64_t la, lb, pa, pb;
        int32_t ma, mb;
        CHECK_OK(gtl_dataset_get(a, i, xa, FD, &la, &ma, &pa));
        CHECK_OK(gtl_dataset_get(b, i, xb, FD, &lb, &mb, &pb));
        if (memcmp(xa, xb, sizeof xa) != 0 || la != lb || ma != mb || pa != pb)
            return 0;
    }
    return 1;
}

static void check_episode_replay(void)
{
    const uint32_t rgb = GTL_MODALITY_BIT(GTL_MODALITY_RGB);
    const uint32_t sketch = GTL_MODALITY_BIT(GTL_MODALITY_SKETCH);
    gtl_dataset *ds = make_base();
    gtl_episode *ep = NULL, *ep2 = NULL;
    CHECK_OK(gtl_episode_create(&ep));
    CHECK_OK(gtl_episode_create(&ep2));
    int64_t idx[N_BASE], n = -1;

    CHECK_FAIL(p_episode_source_indices(ep, 0, NULL, 0, &n), GTL_STATUS_BAD_STATE, "not sampled");
    CHECK(n == 0);
    CHECK_FAIL(gtl_episode_source_indices(NULL, 0, NULL, 0, &n), GTL_STATUS_INVALID_ARG,
               "gtl_episode_source_indices");

    CHECK_OK(gtl_episode_sample(ep, ds, 3, 1, 2, rgb | sketch, rgb | sketch, 77));
    int64_t cls[3], sup_idx[6], qry_idx[6], n_sup = 0, n_qry = 0;
    for (int c = 0; c < 3; c++)
        CHECK_OK(gtl_episode_class_label(ep, c, &cls[c]));
    CHECK_OK(gtl_episode_source_indices(ep, 0, NULL, 0, &n_sup));
    CHECK_OK(gtl_episode_source_indices(ep, 1, NULL, 0, &n_qry));
    CHECK(n_sup == 6 && n_qry == 6);
    CHECK_OK(gtl_episode_source_indices(ep, 0, sup_idx, 6, &n));
    CHECK(n == 6);
    CHECK_OK(gtl_episode_source_indices(ep, 1, qry_idx, 6, &n));
    CHECK(n == 6);
    /* The recorded rows are the rows of the sets. */
    for (int i = 0; i < 6; i++) {
        int64_t lab = -1;
        CHECK(sup_idx[i] >= 0 && sup_idx[i] < N_BASE && qry_idx[i] >= 0 && qry_idx[i] < N_BASE);
        CHECK_OK(gtl_dataset_get(gtl_episode_support(ep), i, NULL, 0, &lab, NULL, NULL));
        CHECK(lab >= 0 && lab < 3 && base_label[sup_idx[i]] == cls[lab]);
    }
    CHECK_FAIL(gtl_episode_source_indices(ep, 2, idx, N_BASE, &n), GTL_STATUS_INVALID_ARG,
               "side");
    CHECK_FAIL(gtl_episode_source_indices(ep, -1, idx, N_BASE, &n), GTL_STATUS_INVALID_ARG,
               "side");
    idx[0] = -9;
    CHECK_FAIL(gtl_episode_source_indices(ep, 0, idx, 5, &n), GTL_STATUS_INVALID_ARG, "capacity");
    CHECK(idx[0] == -9 && n == 0);
    CHECK_FAIL(gtl_episode_source_indices(ep, 0, idx, 6, NULL), GTL_STATUS_INVALID_ARG,
               "gtl_episode_source_indices");

    /* Rebuilt from the indices: row-for-row the same episode. */
    CHECK_OK(p_episode_from_indices(ep2, ds, cls, 3, sup_idx, 6, qry_idx, 6));
    CHECK(same_rows(gtl_episode_support(ep), gtl_episode_support(ep2)));
    CHECK(same_rows(gtl_episode_query(ep), gtl_episode_query(ep2)));
    for (int c = 0; c < 3; c++) {
        int64_t lab = -1;
        CHECK_OK(gtl_episode_class_label(ep2, c, &lab));
        CHECK(lab == cls[c]);
    }
    CHECK_OK(gtl_episode_source_indices(ep2, 1, idx, N_BASE, &n));
    CHECK(n == 6 && memcmp(idx, qry_idx, sizeof qry_idx) == 0);

    /* A hand-made episode: labels follow the order of class_labels; no query set. */
    const int64_t two[2] = {40, 10}, rows2[3] = {0, 18, 19};
    CHECK_OK(gtl_episode_from_indices(ep2, ds, two, 2, rows2, 3, NULL, 0));
    int64_t l0 = -1, l1 = -1, l2 = -1;
    CHECK_OK(gtl_dataset_get(gtl_episode_support(ep2), 0, NULL, 0, &l0, NULL, NULL));
    CHECK_OK(gtl_dataset_get(gtl_episode_support(ep2), 1, NULL, 0, &l1, NULL, NULL));
    CHECK_OK(gtl_dataset_get(gtl_episode_support(ep2), 2, NULL, 0, &l2, NULL, NULL));
    CHECK(l0 == 1 && l1 == 0 && l2 == 0);
    CHECK_OK(gtl_dataset_size(gtl_episode_query(ep2), &n));
    CHECK(n == 0);

    /* Refusals leave the episode as it was. */
    const int64_t rep[2] = {10, 10}, bad_row[1] = {N_BASE}, neg_row[1] = {-1}, other[1] = {6};
    CHECK_FAIL(gtl_episode_from_indices(NULL, ds, cls, 3, sup_idx, 6, qry_idx, 6),
               GTL_STATUS_INVALID_ARG, "gtl_episode_from_indices");
    CHECK_FAIL(gtl_episode_from_indices(ep2, NULL, cls, 3, sup_idx, 6, qry_idx, 6),
               GTL_STATUS_INVALID_ARG, "gtl_episode_from_indices");
    CHECK_FAIL(gtl_episode_from_indices(ep2, ds, NULL, 3, sup_idx, 6, qry_idx, 6),
               GTL_STATUS_INVALID_ARG, "gtl_episode_from_indices");
    CHECK_FAIL(gtl_episode_from_indices(ep2, ds, cls, 3, NULL, 6, qry_idx, 6),
               GTL_STATUS_INVALID_ARG, "gtl_episode_from_indices");
    CHECK_FAIL(gtl_episode_from_indices(ep2, ds, cls, 3, sup_idx, 6, NULL, 6),
               GTL_STATUS_INVALID_ARG, "gtl_episode_from_indices");
    CHECK_FAIL(gtl_episode_from_indices(ep2, ds, cls, 0, sup_idx, 6, qry_idx, 6),
               GTL_STATUS_INVALID_ARG, "n_way");
    CHECK_FAIL(gtl_episode_from_indices(ep2, ds, cls, 3, sup_idx, 0, qry_idx, 6),
               GTL_STATUS_INVALID_ARG, "n_support");
    CHECK_FAIL(gtl_episode_from_indices(ep2, ds, cls, 3, sup_idx, N_BASE + 1, qry_idx, 6),
               GTL_STATUS_INVALID_ARG, "n_support");
    CHECK_FAIL(gtl_episode_from_indices(ep2, ds, cls, 3, sup_idx, 6, qry_idx, -1),
               GTL_STATUS_INVALID_ARG, "n_query");
    CHECK_FAIL(gtl_episode_from_indices(ep2, ds, rep, 2, rows2, 1, NULL, 0),
               GTL_STATUS_INVALID_ARG, "repeated");
    CHECK_FAIL(gtl_episode_from_indices(ep2, ds, two, 2, bad_row, 1, NULL, 0),
               GTL_STATUS_INVALID_ARG, "outside");
    CHECK_FAIL(gtl_episode_from_indices(ep2, ds, two, 2, rows2, 1, neg_row, 1),
               GTL_STATUS_INVALID_ARG, "outside");
    CHECK_FAIL(gtl_episode_from_indices(ep2, ds, two, 2, other, 1, NULL, 0),
               GTL_STATUS_INVALID_ARG, "not one of the episode's classes");
    CHECK_OK(gtl_dataset_size(gtl_episode_support(ep2), &n));
    CHECK(n == 3);
    CHECK_OK(gtl_episode_class_label(ep2, 0, &l0));
    CHECK(l0 == 40);

    gtl_episode_destroy(ep);
    gtl_episode_destroy(ep2);
    gtl_dataset_destroy(ds);
    check_no_memory("episode replay");
}

static void check_model_clone(void)
{
    gtl_model *m = tiny_model(21), *c = SENTINEL(gtl_model);
    CHECK_FAIL(p_model_clone(m, NULL), GTL_STATUS_INVALID_ARG, "gtl_model_clone");
    CHECK_FAIL(gtl_model_clone(NULL, &c), GTL_STATUS_INVALID_ARG, "gtl_model_clone");
    CHECK(c == NULL);
    c = SENTINEL(gtl_model);
    CHECK_FAIL(gtl_model_clone(m, &c), GTL_STATUS_BAD_STATE, "not initialised");
    CHECK(c == NULL);

    /* A trained model with a classifier: the copy predicts the same bits,
     * and the same training step on both (fresh optimizers) gives the same
     * statistics and predictions. */
    gtl_optimizer *opt = NULL, *opt2 = NULL;
    CHECK_OK(gtl_optimizer_create(GTL_OPTIM_ADAM, &opt));
    CHECK_OK(gtl_model_set_stage(m, GTL_STAGE_B2, N_CLS));
    float stats[GTL_STAT_COUNT], stats2[GTL_STAT_COUNT];
    CHECK_OK(gtl_model_train_step(m, opt, base_x, 8, FD, base_cls, stats, GTL_STAT_COUNT));
    CHECK_OK(p_model_clone(m, &c));
    CHECK(c != NULL && c != m);
    int64_t nc = 0;
    CHECK_OK(gtl_model_get_i64(c, GTL_MODEL_NUM_CLASSES, &nc));
    CHECK(nc == N_CLS);
    int64_t lab[N_BASE], lab2[N_BASE];
    float pr[N_BASE * N_CLS], pr2[N_BASE * N_CLS];
    CHECK_OK(gtl_model_predict(m, base_x, N_BASE, FD, lab, pr, N_BASE * N_CLS));
    CHECK_OK(gtl_model_predict(c, base_x, N_BASE, FD, lab2, pr2, N_BASE * N_CLS));
    CHECK(memcmp(lab, lab2, sizeof lab) == 0 && memcmp(pr, pr2, sizeof pr) == 0);
    gtl_optimizer_destroy(opt);
    CHECK_OK(gtl_optimizer_create(GTL_OPTIM_ADAM, &opt));
    CHECK_OK(gtl_optimizer_create(GTL_OPTIM_ADAM, &opt2));
    CHECK_OK(gtl_model_train_step(m, opt, base_x + 8 * FD, 8, FD, base_cls + 8, stats,
                                  GTL_STAT_COUNT));
    CHECK_OK(gtl_model_train_step(c, opt2, base_x + 8 * FD, 8, FD, base_cls + 8, stats2,
                                  GTL_STAT_COUNT));
    CHECK(memcmp(stats, stats2, sizeof stats) == 0);
    CHECK_OK(gtl_model_predict(m, base_x, N_BASE, FD, lab, pr, N_BASE * N_CLS));
    CHECK_OK(gtl_model_predict(c, base_x, N_BASE, FD, lab2, pr2, N_BASE * N_CLS));
    CHECK(memcmp(pr, pr2, sizeof pr) == 0);
    gtl_model_destroy(c);
    c = NULL;

    /* Gradients pending: refused. */
    CHECK_OK(gtl_model_forward_backward(m, base_x, 8, FD, base_cls, stats, GTL_STAT_COUNT));
    c = SENTINEL(gtl_model);
    CHECK_FAIL(gtl_model_clone(m, &c), GTL_STATUS_BAD_STATE, "pending");
    CHECK(c == NULL);
    float gn = 0;
    CHECK_OK(gtl_model_apply(m, opt, &gn));
    CHECK_OK(gtl_model_clone(m, &c));
    /* The copy is independent: destroying the original leaves it usable. */
    gtl_model_destroy(m);
    CHECK_OK(gtl_model_predict(c, base_x, N_BASE, FD, lab, pr, N_BASE * N_CLS));
    gtl_model_destroy(c);
    gtl_optimizer_destroy(opt);
    gtl_optimizer_destroy(opt2);
    check_no_memory("model clone");
}

/* The text of a report (NUL-terminated, caller frees with free()), or NULL. */
static char *eval_report_text(const gtl_evaluator *ev, gtl_eval_format format, uint32_t flags)
{
    size_t len = 0;
    CHECK_OK(gtl_evaluator_report(ev, format, flags, NULL, 0, &len));
    char *text = malloc(len + 1);
    if (text == NULL)
        return NULL;
    size_t len2 = 0;
    CHECK_OK(p_evaluator_report(ev, format, flags, text, len + 1, &len2));
    CHECK(len2 == len && strlen(text) == len);
    return text;
}

static void check_evaluator_settings(void)
{
    gtl_evaluator *ev = SENTINEL(gtl_evaluator);
    CHECK_FAIL(p_evaluator_create(GTL_EVAL_NEAREST_CENTROID, NULL), GTL_STATUS_INVALID_ARG,
               "gtl_evaluator_create");
    CHECK_FAIL(gtl_evaluator_create((gtl_eval_method)5, &ev), GTL_STATUS_INVALID_ARG,
               "unknown method");
    CHECK(ev == NULL);
    ev = SENTINEL(gtl_evaluator);
    CHECK_FAIL(gtl_evaluator_create((gtl_eval_method)-1, &ev), GTL_STATUS_INVALID_ARG,
               "unknown method");
    CHECK(ev == NULL);
    gtl_evaluator_destroy(NULL);
    p_evaluator_destroy(NULL);

    CHECK_OK(gtl_evaluator_create(GTL_EVAL_LINEAR_PROBE, &ev));
    /* The documented defaults. */
    const int64_t defaults[9] = {5, 1, 15, 600, 0, 3, 0xffffffff, 1, 100};
    for (int k = 0; k <= GTL_EVAL_PROBE_ITERS; k++) {
        int64_t v = -1;
        CHECK_OK(p_evaluator_get_i64(ev, (gtl_eval_param)k, &v));
        CHECK(v == defaults[k]);
    }
    float f = -1;
    CHECK_OK(p_evaluator_get_f32(ev, GTL_EVAL_PROBE_L2, &f));
    CHECK(f == 0.01f);

    /* Ranges (each refusal keeps the value). */
    int64_t v = -1;
    CHECK_OK(p_evaluator_set_i64(ev, GTL_EVAL_N_WAY, 65536));
    CHECK_OK(gtl_evaluator_set_i64(ev, GTL_EVAL_N_WAY, 1));
    CHECK_FAIL(gtl_evaluator_set_i64(ev, GTL_EVAL_N_WAY, 0), GTL_STATUS_INVALID_ARG, "n_way");
    CHECK_FAIL(gtl_evaluator_set_i64(ev, GTL_EVAL_N_WAY, 65537), GTL_STATUS_INVALID_ARG,
               "n_way");
    CHECK_FAIL(gtl_evaluator_set_i64(ev, GTL_EVAL_K_SHOT, 0), GTL_STATUS_INVALID_ARG, "k_shot");
    CHECK_FAIL(gtl_evaluator_set_i64(ev, GTL_EVAL_Q_QUERY, -1), GTL_STATUS_INVALID_ARG,
               "q_query");
    CHECK_FAIL(gtl_evaluator_set_i64(ev, GTL_EVAL_EPISODES, 0), GTL_STATUS_INVALID_ARG,
               "episodes");
    CHECK_FAIL(gtl_evaluator_set_i64(ev, GTL_EVAL_SEED, -1), GTL_STATUS_INVALID_ARG, "seed");
    /* Any seed >= 0 (eval.h), up to INT64_MAX. */
    CHECK_OK(gtl_evaluator_set_i64(ev, GTL_EVAL_SEED, INT64_MAX));
    CHECK_OK(gtl_evaluator_get_i64(ev, GTL_EVAL_SEED, &v));
    CHECK(v == INT64_MAX);
    CHECK_OK(gtl_evaluator_set_i64(ev, GTL_EVAL_SEED, 0));
    CHECK_FAIL(gtl_evaluator_set_i64(ev, GTL_EVAL_SUPPORT_MODALITIES, 0), GTL_STATUS_INVALID_ARG,
               "support_modalities");
    CHECK_FAIL(gtl_evaluator_set_i64(ev, GTL_EVAL_QUERY_MODALITIES, (int64_t)1 << 32),
               GTL_STATUS_INVALID_ARG, "query_modalities");
    CHECK_OK(gtl_evaluator_set_i64(ev, GTL_EVAL_QUERY_MODALITIES, 0xffffffff));
    CHECK_FAIL(gtl_evaluator_set_i64(ev, GTL_EVAL_ALL_WAY_REPEATS, 0), GTL_STATUS_INVALID_ARG,
               "all_way_repeats");
    CHECK_FAIL(gtl_evaluator_set_i64(ev, GTL_EVAL_PROBE_ITERS, 1000001), GTL_STATUS_INVALID_ARG,
               "probe_iters");
    CHECK_FAIL(gtl_evaluator_set_i64(ev, GTL_EVAL_PROBE_L2, 1), GTL_STATUS_INVALID_ARG,
               "gtl_evaluator_set_f32");
    CHECK_FAIL(gtl_evaluator_set_i64(ev, (gtl_eval_param)10, 1), GTL_STATUS_INVALID_ARG,
               "unknown key");
    CHECK_FAIL(gtl_evaluator_set_i64(ev, (gtl_eval_param)-1, 1), GTL_STATUS_INVALID_ARG,
               "unknown key");
    CHECK_FAIL(gtl_evaluator_set_i64(NULL, GTL_EVAL_N_WAY, 5), GTL_STATUS_INVALID_ARG,
               "gtl_evaluator_set_i64");
    v = -1;
    CHECK_OK(gtl_evaluator_get_i64(ev, GTL_EVAL_N_WAY, &v));
    CHECK(v == 1);
    CHECK_OK(gtl_evaluator_get_i64(ev, GTL_EVAL_PROBE_ITERS, &v));
    CHECK(v == 100);
    CHECK_FAIL(gtl_evaluator_get_i64(ev, GTL_EVAL_PROBE_L2, &v), GTL_STATUS_INVALID_ARG,
               "gtl_evaluator_get_f32");
    CHECK(v == 0);
    CHECK_FAIL(gtl_evaluator_get_i64(ev, GTL_EVAL_N_WAY, NULL), GTL_STATUS_INVALID_ARG,
               "gtl_evaluator_get_i64");
    CHECK_FAIL(gtl_evaluator_get_i64(NULL, GTL_EVAL_N_WAY, &v), GTL_STATUS_INVALID_ARG,
               "gtl_evaluator_get_i64");

    CHECK_OK(p_evaluator_set_f32(ev, GTL_EVAL_PROBE_L2, 0.0f));
    CHECK_OK(gtl_evaluator_set_f32(ev, GTL_EVAL_PROBE_L2, 0.25f));
    CHECK_FAIL(gtl_evaluator_set_f32(ev, GTL_EVAL_PROBE_L2, -0.5f), GTL_STATUS_INVALID_ARG,
               "probe_l2");
    CHECK_FAIL(gtl_evaluator_set_f32(ev, GTL_EVAL_PROBE_L2, 2e6f), GTL_STATUS_INVALID_ARG,
               "probe_l2");
    CHECK_FAIL(gtl_evaluator_set_f32(ev, GTL_EVAL_PROBE_L2, NAN), GTL_STATUS_INVALID_ARG,
               "probe_l2");
    CHECK_FAIL(gtl_evaluator_set_f32(ev, GTL_EVAL_PROBE_L2, INFINITY), GTL_STATUS_INVALID_ARG,
               "probe_l2");
    CHECK_FAIL(gtl_evaluator_set_f32(ev, GTL_EVAL_N_WAY, 3.0f), GTL_STATUS_INVALID_ARG,
               "gtl_evaluator_set_i64");
    CHECK_FAIL(gtl_evaluator_set_f32(NULL, GTL_EVAL_PROBE_L2, 0.1f), GTL_STATUS_INVALID_ARG,
               "gtl_evaluator_set_f32");
    CHECK_OK(gtl_evaluator_get_f32(ev, GTL_EVAL_PROBE_L2, &f));
    CHECK(f == 0.25f);
    CHECK_FAIL(gtl_evaluator_get_f32(ev, GTL_EVAL_SEED, &f), GTL_STATUS_INVALID_ARG,
               "gtl_evaluator_get_i64");
    CHECK(f == 0.0f);
    CHECK_FAIL(gtl_evaluator_get_f32(ev, GTL_EVAL_PROBE_L2, NULL), GTL_STATUS_INVALID_ARG,
               "gtl_evaluator_get_f32");

    /* Method-specific setters: BAD_STATE for the wrong method. */
    eval_cb_state cs;
    memset(&cs, 0, sizeof cs);
    gtl_model *m = tiny_model(3);
    CHECK_FAIL(p_evaluator_set_callback(ev, eval_cb, &cs), GTL_STATUS_BAD_STATE, "not callback");
    CHECK_FAIL(gtl_evaluator_set_callback(NULL, eval_cb, &cs), GTL_STATUS_INVALID_ARG,
               "gtl_evaluator_set_callback");
    CHECK_FAIL(p_evaluator_set_model(ev, m), GTL_STATUS_BAD_STATE, "not gtl");
    CHECK_FAIL(gtl_evaluator_set_model(NULL, m), GTL_STATUS_INVALID_ARG,
               "gtl_evaluator_set_model");
    CHECK_OK(p_evaluator_set_progress(ev, eval_progress, NULL));
    CHECK_OK(gtl_evaluator_set_progress(ev, NULL, NULL));
    CHECK_FAIL(gtl_evaluator_set_progress(NULL, eval_progress, NULL), GTL_STATUS_INVALID_ARG,
               "gtl_evaluator_set_progress");

    /* No results yet. */
    double mean = 7, ci = 7;
    int64_t n = 7;
    size_t sn = 7;
    CHECK_FAIL(p_evaluator_result(ev, GTL_EVAL_TOTAL, &mean, &ci, &n), GTL_STATUS_BAD_STATE,
               "no results");
    CHECK(mean == 0 && ci == 0 && n == 0);
    CHECK_FAIL(p_evaluator_accuracies(ev, GTL_EVAL_TOTAL, NULL, 0, &n), GTL_STATUS_BAD_STATE,
               "no results");
    CHECK_FAIL(p_evaluator_episode_list(ev, NULL, 0, &sn), GTL_STATUS_BAD_STATE, "no results");
    CHECK(sn == 0);
    CHECK_FAIL(gtl_evaluator_report(ev, GTL_EVAL_FORMAT_JSON, 0, NULL, 0, &sn),
               GTL_STATUS_BAD_STATE, "no results");
    CHECK_FAIL(p_evaluator_write_file(ev, GTL_EVAL_FORMAT_JSON, 0, "gtl_abi_eval_none.json"),
               GTL_STATUS_BAD_STATE, "no results");
    FILE *none = fopen("gtl_abi_eval_none.json", "rb");
    CHECK(none == NULL);
    if (none != NULL)
        fclose(none);

    /* The callback and GTL methods need their callback / model before a run. */
    gtl_dataset *ds = make_base();
    gtl_evaluator *cb = NULL, *g = NULL;
    CHECK_OK(gtl_evaluator_create(GTL_EVAL_CALLBACK, &cb));
    CHECK_FAIL(gtl_evaluator_run_episodic(cb, ds), GTL_STATUS_BAD_STATE, "no callback");
    CHECK_OK(gtl_evaluator_set_callback(cb, eval_cb, &cs));
    CHECK_OK(gtl_evaluator_set_callback(cb, NULL, NULL));
    CHECK_FAIL(gtl_evaluator_run_all_way(cb, ds), GTL_STATUS_BAD_STATE, "no callback");
    CHECK_OK(gtl_evaluator_create(GTL_EVAL_GTL, &g));
    CHECK_FAIL(gtl_evaluator_run_episodic(g, ds), GTL_STATUS_BAD_STATE, "no model");
    CHECK_FAIL(gtl_evaluator_set_model(g, NULL), GTL_STATUS_INVALID_ARG,
               "gtl_evaluator_set_model");
    CHECK_FAIL(gtl_evaluator_set_model(g, m), GTL_STATUS_BAD_STATE, "not initialised");
    CHECK_FAIL(gtl_evaluator_set_callback(g, eval_cb, &cs), GTL_STATUS_BAD_STATE, "not callback");

    gtl_evaluator_destroy(cb);
    gtl_evaluator_destroy(g);
    gtl_model_destroy(m);
    gtl_dataset_destroy(ds);
    p_evaluator_destroy(ev);
    check_no_memory("evaluator settings");
}

/* Episodic runs of nearest centroid, its replay, a callback doing the same,
 * progress and cancellation, results and reports. */
static void check_evaluator_runs(void)
{
    const uint32_t rgb = GTL_MODALITY_BIT(GTL_MODALITY_RGB);
    const uint32_t sketch = GTL_MODALITY_BIT(GTL_MODALITY_SKETCH);
    enum { NE = 12 };
    gtl_dataset *ds = make_base(), *half = NULL;
    CHECK_OK(gtl_dataset_create(FD / 2, &half));
    CHECK_OK(gtl_dataset_add(half, base_x, 4, base_label, NULL, NULL));
    gtl_evaluator *ev = NULL, *ev2 = NULL, *cb = NULL;
    CHECK_OK(gtl_evaluator_create(GTL_EVAL_NEAREST_CENTROID, &ev));
    /* 3-way, 1 photo + 1 sketch per class, 2 queries per class of either modality. */
    CHECK_OK(gtl_evaluator_set_i64(ev, GTL_EVAL_N_WAY, 3));
    CHECK_OK(gtl_evaluator_set_i64(ev, GTL_EVAL_Q_QUERY, 2));
    CHECK_OK(gtl_evaluator_set_i64(ev, GTL_EVAL_EPISODES, NE));
    CHECK_OK(gtl_evaluator_set_i64(ev, GTL_EVAL_SEED, 5));
    CHECK_OK(gtl_evaluator_set_i64(ev, GTL_EVAL_SUPPORT_MODALITIES, rgb | sketch));
    CHECK_OK(gtl_evaluator_set_i64(ev, GTL_EVAL_QUERY_MODALITIES, rgb | sketch));
    eval_progress_state ps;
    memset(&ps, 0, sizeof ps);
    CHECK_OK(gtl_evaluator_set_progress(ev, p_eval_progress, &ps));

    CHECK_FAIL(p_evaluator_run_episodic(NULL, ds), GTL_STATUS_INVALID_ARG,
               "gtl_evaluator_run_episodic");
    CHECK_FAIL(gtl_evaluator_run_episodic(ev, NULL), GTL_STATUS_INVALID_ARG,
               "gtl_evaluator_run_episodic");
    CHECK_OK(p_evaluator_run_episodic(ev, ds));
    CHECK(ps.n_calls == NE && ps.n_episodes == NE && ps.bad == 0);

    double mean = -1, ci = -1, acc[NE], acc2[NE];
    int64_t n = -1;
    CHECK_OK(p_evaluator_result(ev, GTL_EVAL_TOTAL, &mean, &ci, &n));
    CHECK(n == NE && mean >= 0.9 && mean <= 1.0 && ci >= 0.0);
    CHECK_OK(gtl_evaluator_result(ev, GTL_MODALITY_SKETCH, &mean, NULL, NULL));
    CHECK(mean >= 0.0 && mean <= 1.0);
    CHECK_OK(gtl_evaluator_result(ev, GTL_MODALITY_DEPTH, &mean, &ci, &n));
    CHECK(isnan(mean) && isnan(ci) && n == 0);
    CHECK_FAIL(gtl_evaluator_result(ev, 32, &mean, &ci, &n), GTL_STATUS_INVALID_ARG, "modality");
    CHECK_FAIL(gtl_evaluator_result(ev, -2, &mean, &ci, &n), GTL_STATUS_INVALID_ARG, "modality");
    CHECK_FAIL(gtl_evaluator_result(NULL, GTL_EVAL_TOTAL, &mean, &ci, &n),
               GTL_STATUS_INVALID_ARG, "gtl_evaluator_result");
    CHECK_OK(gtl_evaluator_accuracies(ev, GTL_EVAL_TOTAL, NULL, 0, &n));
    CHECK(n == NE);
    CHECK_OK(p_evaluator_accuracies(ev, GTL_EVAL_TOTAL, acc, NE, &n));
    double sum = 0;
    for (int e = 0; e < NE; e++) {
        CHECK(acc[e] >= 0.0 && acc[e] <= 1.0);
        sum += acc[e];
    }
    CHECK_OK(gtl_evaluator_result(ev, GTL_EVAL_TOTAL, &mean, NULL, NULL));
    CHECK(close_to(mean, sum / NE, 1e-12));
    acc2[0] = -3;
    CHECK_FAIL(gtl_evaluator_accuracies(ev, GTL_EVAL_TOTAL, acc2, NE - 1, &n),
               GTL_STATUS_INVALID_ARG, "capacity");
    CHECK(acc2[0] == -3 && n == 0);
    CHECK_FAIL(gtl_evaluator_accuracies(ev, GTL_EVAL_TOTAL, acc2, NE, NULL),
               GTL_STATUS_INVALID_ARG, "gtl_evaluator_accuracies");
    CHECK_FAIL(gtl_evaluator_accuracies(ev, 40, acc2, NE, &n), GTL_STATUS_INVALID_ARG,
               "modality");

    /* The episode list: 3 + 3 classes + 6 support + 6 query values per episode. */
    size_t len = 0;
    CHECK_OK(gtl_evaluator_episode_list(ev, NULL, 0, &len));
    CHECK(len == (size_t)NE * 18);
    int64_t list[NE * 18], list2[NE * 18];
    CHECK_OK(p_evaluator_episode_list(ev, list, NE * 18, &len));
    CHECK(list[0] == 3 && list[1] == 6 && list[2] == 6);
    CHECK_FAIL(gtl_evaluator_episode_list(ev, list2, NE * 18 - 1, &len), GTL_STATUS_INVALID_ARG,
               "capacity");
    CHECK_FAIL(gtl_evaluator_episode_list(ev, list2, NE * 18, NULL), GTL_STATUS_INVALID_ARG,
               "gtl_evaluator_episode_list");
    CHECK_FAIL(gtl_evaluator_episode_list(NULL, list2, NE * 18, &len), GTL_STATUS_INVALID_ARG,
               "gtl_evaluator_episode_list");
    /* Episode 0 is gtl_episode_sample() with the documented seed derivation. */
    {
        uint64_t z = 5 + 0x9E3779B97F4A7C15ull;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        gtl_episode *ep = NULL;
        CHECK_OK(gtl_episode_create(&ep));
        CHECK_OK(gtl_episode_sample(ep, ds, 3, 1, 2, rgb | sketch, rgb | sketch, z));
        int64_t si[6], qi[6], lab = -1;
        CHECK_OK(gtl_episode_source_indices(ep, 0, si, 6, &n));
        CHECK_OK(gtl_episode_source_indices(ep, 1, qi, 6, &n));
        CHECK(memcmp(si, list + 6, sizeof si) == 0 && memcmp(qi, list + 12, sizeof qi) == 0);
        CHECK_OK(gtl_episode_class_label(ep, 0, &lab));
        CHECK(lab == list[3]);
        gtl_episode_destroy(ep);
    }

    /* Replay on another evaluator: the same accuracies, the same list. */
    CHECK_OK(gtl_evaluator_create(GTL_EVAL_NEAREST_CENTROID, &ev2));
    CHECK_OK(p_evaluator_run_episode_list(ev2, ds, list, NE * 18));
    CHECK_OK(gtl_evaluator_accuracies(ev2, GTL_EVAL_TOTAL, acc2, NE, &n));
    CHECK(n == NE && memcmp(acc, acc2, sizeof acc) == 0);
    CHECK_OK(gtl_evaluator_episode_list(ev2, list2, NE * 18, &len));
    CHECK(len == NE * 18 && memcmp(list, list2, sizeof list) == 0);
    CHECK_FAIL(gtl_evaluator_run_episode_list(ev2, ds, list, NE * 18 - 1),
               GTL_STATUS_INVALID_ARG, "truncated");
    CHECK_FAIL(gtl_evaluator_accuracies(ev2, GTL_EVAL_TOTAL, NULL, 0, &n), GTL_STATUS_BAD_STATE,
               "no results");
    CHECK_FAIL(gtl_evaluator_run_episode_list(ev2, ds, list, 0), GTL_STATUS_INVALID_ARG, "empty");
    CHECK_FAIL(gtl_evaluator_run_episode_list(ev2, ds, NULL, 18), GTL_STATUS_INVALID_ARG,
               "list");
    CHECK_FAIL(gtl_evaluator_run_episode_list(NULL, ds, list, 18), GTL_STATUS_INVALID_ARG,
               "gtl_evaluator_run_episode_list");
    list2[0] = 0;
    CHECK_FAIL(gtl_evaluator_run_episode_list(ev2, ds, list2, 18), GTL_STATUS_INVALID_ARG,
               "out of range");
    memcpy(list2, list, 18 * sizeof(int64_t));
    list2[6] = N_BASE;   /* a support row outside the source */
    CHECK_FAIL(gtl_evaluator_run_episode_list(ev2, ds, list2, 18), GTL_STATUS_INVALID_ARG,
               "episode 0");

    /* A host callback doing nearest centroid: the same accuracies. */
    eval_cb_state cs;
    memset(&cs, 0, sizeof cs);
    CHECK_OK(gtl_evaluator_create(GTL_EVAL_CALLBACK, &cb));
    CHECK_OK(p_evaluator_set_callback(cb, p_eval_cb, &cs));
    CHECK_OK(gtl_evaluator_set_i64(cb, GTL_EVAL_N_WAY, 3));
    CHECK_OK(gtl_evaluator_set_i64(cb, GTL_EVAL_Q_QUERY, 2));
    CHECK_OK(gtl_evaluator_set_i64(cb, GTL_EVAL_EPISODES, NE));
    CHECK_OK(gtl_evaluator_set_i64(cb, GTL_EVAL_SEED, 5));
    CHECK_OK(gtl_evaluator_set_i64(cb, GTL_EVAL_QUERY_MODALITIES, rgb | sketch));
    CHECK_OK(gtl_evaluator_run_episodic(cb, ds));
    CHECK(cs.n_calls == NE && cs.bad == 0);
    CHECK_OK(gtl_evaluator_accuracies(cb, GTL_EVAL_TOTAL, acc2, NE, &n));
    CHECK(memcmp(acc, acc2, sizeof acc) == 0);
    /* A successful run clears the message, also one the callback left behind. */
    cs.mode = 4;
    CHECK_OK(gtl_evaluator_run_episodic(cb, ds));
    CHECK_OK(gtl_evaluator_accuracies(cb, GTL_EVAL_TOTAL, acc2, NE, &n));
    CHECK(memcmp(acc, acc2, sizeof acc) == 0);
    /* Callback failures stop the run, name the episode, drop the results. */
    cs.mode = 1;
    CHECK_FAIL(gtl_evaluator_run_episodic(cb, ds), GTL_STATUS_INVALID_ARG,
               "gtl_evaluator_run_episodic: episode 0: the callback returned");
    CHECK(strstr(gtl_last_error(), "gtl_dataset_size") != NULL);
    CHECK_FAIL(gtl_evaluator_result(cb, GTL_EVAL_TOTAL, &mean, &ci, &n), GTL_STATUS_BAD_STATE,
               "no results");
    cs.mode = 2;
    CHECK_FAIL(gtl_evaluator_run_all_way(cb, ds), GTL_STATUS_INVALID_ARG, "not written");
    cs.mode = 3;
    CHECK_FAIL(gtl_evaluator_run_episode_list(cb, ds, list, NE * 18), GTL_STATUS_INVALID_ARG,
               "outside");
    CHECK(cs.bad == 0);

    /* Cancellation keeps the completed episodes. */
    memset(&ps, 0, sizeof ps);
    ps.cancel_at = 4;
    CHECK_FAIL(gtl_evaluator_run_episodic(ev, ds), GTL_STATUS_CANCELLED, "cancelled");
    CHECK_OK(gtl_evaluator_result(ev, GTL_EVAL_TOTAL, &mean, &ci, &n));
    CHECK(n == 4 && ps.n_calls == 4);
    CHECK_OK(gtl_evaluator_accuracies(ev, GTL_EVAL_TOTAL, acc2, NE, &n));
    CHECK(n == 4 && memcmp(acc, acc2, 4 * sizeof(double)) == 0);
    CHECK_OK(gtl_evaluator_set_progress(ev, NULL, NULL));

    /* Runs that cannot be done: INVALID_ARG naming the episode, no results. */
    CHECK_OK(gtl_evaluator_set_i64(ev, GTL_EVAL_N_WAY, 5));
    CHECK_FAIL(gtl_evaluator_run_episodic(ev, ds), GTL_STATUS_INVALID_ARG, "episode 0");
    CHECK_FAIL(gtl_evaluator_result(ev, GTL_EVAL_TOTAL, &mean, &ci, &n), GTL_STATUS_BAD_STATE,
               "no results");
    CHECK_OK(gtl_evaluator_set_i64(ev, GTL_EVAL_N_WAY, 3));

    /* All-way: every class, one photo and one sketch each as support; the
     * rest of the class minus the support's pairs as test samples. */
    CHECK_FAIL(p_evaluator_run_all_way(ev, NULL), GTL_STATUS_INVALID_ARG,
               "gtl_evaluator_run_all_way");
    CHECK_FAIL(gtl_evaluator_run_all_way(NULL, ds), GTL_STATUS_INVALID_ARG,
               "gtl_evaluator_run_all_way");
    CHECK_OK(p_evaluator_run_all_way(ev, ds));
    CHECK_OK(gtl_evaluator_result(ev, GTL_EVAL_TOTAL, &mean, &ci, &n));
    CHECK(n == 1 && mean >= 0.9 && isnan(ci));
    CHECK_OK(gtl_evaluator_episode_list(ev, list2, NE * 18, &len));
    CHECK(list2[0] == N_CLS && list2[1] == 2 * N_CLS && list2[2] >= 2 * N_CLS &&
          list2[2] <= 4 * N_CLS && len == (size_t)(3 + N_CLS + list2[1] + list2[2]));
    CHECK_OK(gtl_evaluator_set_i64(ev, GTL_EVAL_ALL_WAY_REPEATS, 3));
    CHECK_OK(gtl_evaluator_run_all_way(ev, ds));
    CHECK_OK(gtl_evaluator_result(ev, GTL_EVAL_TOTAL, &mean, &ci, &n));
    CHECK(n == 3 && !isnan(ci));
    CHECK_OK(gtl_evaluator_set_i64(ev, GTL_EVAL_K_SHOT, 4));
    CHECK_FAIL(gtl_evaluator_run_all_way(ev, ds), GTL_STATUS_INVALID_ARG, "K_SHOT");
    CHECK_OK(gtl_evaluator_set_i64(ev, GTL_EVAL_K_SHOT, 1));

    /* Reports of the all-way run (3 draws). */
    CHECK_OK(gtl_evaluator_run_all_way(ev, ds));
    char *json = eval_report_text(ev, GTL_EVAL_FORMAT_JSON, GTL_EVAL_REPORT_EPISODES);
    CHECK(json != NULL && json[0] == '{' && strstr(json, "\"nearest_centroid\"") != NULL &&
          strstr(json, "\"all-way\"") != NULL && strstr(json, "\"episodes\": [") != NULL &&
          strstr(json, "\"sketch\"") != NULL && json[strlen(json) - 1] == '\n');
    char *md = eval_report_text(ev, GTL_EVAL_FORMAT_MARKDOWN, 0);
    CHECK(md != NULL && strncmp(md, "| method | protocol |", 21) == 0);
    char *row = eval_report_text(ev, GTL_EVAL_FORMAT_MARKDOWN, GTL_EVAL_REPORT_NO_HEADER);
    CHECK(row != NULL && strncmp(row, "| nearest_centroid | all-way |", 30) == 0 &&
          md != NULL && strstr(md, row) != NULL);
    char small[16];
    memset(small, 'X', sizeof small);
    size_t rl = 0;
    CHECK_FAIL(gtl_evaluator_report(ev, GTL_EVAL_FORMAT_JSON, 0, small, sizeof small, &rl),
               GTL_STATUS_INVALID_ARG, "capacity");
    CHECK(rl > sizeof small && small[0] == 'X');
    CHECK_FAIL(gtl_evaluator_report(ev, (gtl_eval_format)2, 0, NULL, 0, &rl),
               GTL_STATUS_INVALID_ARG, "unknown format");
    CHECK_FAIL(gtl_evaluator_report(ev, GTL_EVAL_FORMAT_JSON, 4u, NULL, 0, &rl),
               GTL_STATUS_INVALID_ARG, "unknown flags");
    CHECK_FAIL(gtl_evaluator_report(ev, GTL_EVAL_FORMAT_JSON, 0, NULL, 0, NULL),
               GTL_STATUS_INVALID_ARG, "gtl_evaluator_report");
    CHECK_FAIL(gtl_evaluator_report(NULL, GTL_EVAL_FORMAT_JSON, 0, NULL, 0, &rl),
               GTL_STATUS_INVALID_ARG, "gtl_evaluator_report");

    /* The file holds the report text. */
    const char *path = "gtl_abi_eval.json";
    CHECK_OK(p_evaluator_write_file(ev, GTL_EVAL_FORMAT_JSON, GTL_EVAL_REPORT_EPISODES, path));
    unsigned char buf[1 << 15];
    long got = file_read(path, buf, sizeof buf);
    CHECK(json != NULL && got == (long)strlen(json) && memcmp(buf, json, (size_t)got) == 0);
    remove(path);
    CHECK_FAIL(gtl_evaluator_write_file(ev, GTL_EVAL_FORMAT_JSON, 0,
                                        "gtl_abi_no_such_dir/eval.json"),
               GTL_STATUS_IO, "gtl_abi_no_such_dir");
    CHECK_FAIL(gtl_evaluator_write_file(ev, GTL_EVAL_FORMAT_MARKDOWN, 8u, path),
               GTL_STATUS_INVALID_ARG, "unknown flags");
    CHECK_FAIL(gtl_evaluator_write_file(ev, GTL_EVAL_FORMAT_JSON, 0, NULL),
               GTL_STATUS_INVALID_ARG, "gtl_evaluator_write_file");
    CHECK_FAIL(gtl_evaluator_write_file(NULL, GTL_EVAL_FORMAT_JSON, 0, path),
               GTL_STATUS_INVALID_ARG, "gtl_evaluator_write_file");
    free(json);
    free(md);
    free(row);

    /* The GTL method: a copy of a pretrained model adapted on each episode. */
    gtl_evaluator *g = NULL;
    gtl_model *m = tiny_model(4);
    CHECK_OK(gtl_model_init(m));
    CHECK_OK(gtl_evaluator_create(GTL_EVAL_GTL, &g));
    CHECK_OK(gtl_evaluator_set_model(g, m));
    gtl_model_destroy(m);     /* copied: the evaluator does not need it */
    CHECK_OK(gtl_evaluator_set_i64(g, GTL_EVAL_N_WAY, 3));
    CHECK_OK(gtl_evaluator_set_i64(g, GTL_EVAL_Q_QUERY, 2));
    CHECK_OK(gtl_evaluator_set_i64(g, GTL_EVAL_EPISODES, 2));
    CHECK_FAIL(gtl_evaluator_run_episodic(g, half), GTL_STATUS_INVALID_ARG, "feature size");
    CHECK_OK(gtl_evaluator_run_episodic(g, ds));
    CHECK_OK(gtl_evaluator_accuracies(g, GTL_EVAL_TOTAL, acc, NE, &n));
    CHECK(n == 2 && acc[0] >= 0.0 && acc[0] <= 1.0);
    /* Episodes are independent: a rerun gives the same bits. */
    CHECK_OK(gtl_evaluator_run_episodic(g, ds));
    CHECK_OK(gtl_evaluator_accuracies(g, GTL_EVAL_TOTAL, acc2, NE, &n));
    CHECK(n == 2 && memcmp(acc, acc2, 2 * sizeof(double)) == 0);
    gtl_evaluator_destroy(g);

    gtl_evaluator_destroy(ev);
    gtl_evaluator_destroy(ev2);
    gtl_evaluator_destroy(cb);
    gtl_dataset_destroy(ds);
    gtl_dataset_destroy(half);
    check_no_memory("evaluator runs");
}

static void check_evaluation(void)
{
    check_eval_baselines();
    check_eval_metrics();
    check_episode_replay();
    check_model_clone();
    check_evaluator_settings();
    check_evaluator_runs();
}

/* ==== end of the evaluation section ============================================= */

int main(void)
{
    check_version();
    check_status_names();
    check_last_error();
    check_allocator();
    check_logging();
    check_threads();
    check_build_info();
    make_base_data();
    check_dataset_basics();
    check_dataset_queries();
    check_episodes();
    check_optimizer();
    check_model_params();
    check_model_tensors();
    check_predict_latent();
    check_steps();
    check_stages();
    check_adapt();
    check_checkpoints();
    check_images();
    check_backbone();
    check_handles_use_allocator();
    check_evaluation();
    uint64_t bytes = 1, blocks = 1;
    CHECK(gtl_memory_in_use(&bytes, &blocks) == GTL_STATUS_OK && bytes == 0 && blocks == 0);
    printf("# public API: %d failed checks\n", n_failed);
    return n_failed == 0 ? 0 : 1;
}
