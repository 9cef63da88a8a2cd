/* quickstart: pretrain a GTL head on base-class features (stages B1, B2),
 * adapt it to a few labelled samples of new classes, classify queries.
 * Usage: quickstart BASE.csv SUPPORT.csv QUERY.csv, one sample per line:
 * label,f1,...,fF (labels 0..C-1 in each file). docs/quickstart.md. */
#include <stdio.h>
#include <stdlib.h>

#include <gtl/gtl.h>

#define F 64 /* the feature size: your backbone's (GTL_BACKBONE_FEATURE_DIM) */
#define CHECK(call)                                                                  \
    do {                                                                             \
        gtl_status st_ = (call);                                                     \
        if (st_ != GTL_STATUS_OK) {                                                  \
            fprintf(stderr, "%s: %s\n", gtl_strerror(st_), gtl_last_error());        \
            exit(1);                                                                 \
        }                                                                            \
    } while (0)

static gtl_dataset *load_csv(const char *path)
{
    gtl_dataset *ds = NULL;
    CHECK(gtl_dataset_create(F, &ds));
    FILE *f = fopen(path, "r");
    long long label;
    float x[F];
    while (f && fscanf(f, "%lld", &label) == 1) {
        for (int j = 0; j < F; j++)
            if (fscanf(f, ",%f", &x[j]) != 1)
                exit(1);
        int64_t y = label;
        CHECK(gtl_dataset_add(ds, x, 1, &y, NULL, NULL)); /* modality RGB, no pair id */
    }
    if (!f)
        exit(1);
    fclose(f);
    return ds;
}

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: quickstart BASE.csv SUPPORT.csv QUERY.csv\n");
        return 2;
    }
    gtl_dataset *base = load_csv(argv[1]), *support = load_csv(argv[2]);
    gtl_dataset *query = load_csv(argv[3]);

    /* Pretrain once (or load a pretrained head: gtl_model_load(path, &m, NULL)). */
    gtl_model *m = NULL;
    gtl_optimizer *opt = NULL;
    CHECK(gtl_model_create(&m));
    CHECK(gtl_model_set_i64(m, GTL_MODEL_FEATURE_DIM, F));
    CHECK(gtl_optimizer_create(GTL_OPTIM_ADAM, &opt));
    CHECK(gtl_model_train_stage(m, opt, GTL_STAGE_B1, base, 30, NULL, NULL));
    CHECK(gtl_optimizer_reset(opt));
    CHECK(gtl_model_train_stage(m, opt, GTL_STAGE_B2, base, 30, NULL, NULL));
    CHECK(gtl_model_save(m, NULL, "pretrained.gtl"));

    /* A new task: adapt (stages N1, N2) on the support set, then predict. */
    CHECK(gtl_adapt(m, support, NULL, NULL));
    int64_t n = 0, correct = 0;
    CHECK(gtl_dataset_size(query, &n));
    for (int64_t i = 0; i < n; i++) {
        float x[F];
        int64_t truth, pred;
        CHECK(gtl_dataset_get(query, i, x, F, &truth, NULL, NULL));
        CHECK(gtl_model_predict(m, x, 1, F, &pred, NULL, 0));
        correct += pred == truth;
    }
    printf("accuracy %.3f on %lld queries\n", (double)correct / (double)n, (long long)n);
    CHECK(gtl_model_save(m, NULL, "adapted.gtl"));
    gtl_optimizer_destroy(opt);
    gtl_model_destroy(m);
    gtl_dataset_destroy(base);
    gtl_dataset_destroy(support);
    gtl_dataset_destroy(query);
    return 0;
}
