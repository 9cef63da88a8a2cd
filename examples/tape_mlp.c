/* tape_mlp: prints libgtl's build information, then trains a small MLP on
 * the autograd tape to classify a 3-arm spiral, and reports the loss and the
 * training accuracy.
 *
 * This is a developer demo of the internal tape (it links the internal static
 * library): linear -> ReLU -> linear -> ReLU -> linear -> cross-entropy, plain
 * SGD with momentum on the flat parameter blob. It exits non-zero if the final
 * loss is not low, so it doubles as a test.
 *
 * Usage: tape_mlp [steps]   (default 600) */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gtl/gtl.h"
#include "ops/ops.h"

#define N_CLASSES 3
#define N_PER_CLASS 100
#define N_SAMPLES (N_CLASSES * N_PER_CLASS)
#define HIDDEN 64

static void make_spiral(gtl__rng *rng, float *x, int64_t *y)
{
    for (int c = 0; c < N_CLASSES; c++)
        for (int i = 0; i < N_PER_CLASS; i++) {
            float r = (float)i / N_PER_CLASS;
            float t = 4.0f * c + 4.0f * r + 0.2f * gtl__rng_normal(rng);
            int k = c * N_PER_CLASS + i;
            x[2 * k] = r * sinf(t);
            x[2 * k + 1] = r * cosf(t);
            y[k] = c;
        }
}

int main(int argc, char **argv)
{
    int steps = argc > 1 ? atoi(argv[1]) : 600;
    if (steps < 1) {
        fprintf(stderr, "usage: tape_mlp [steps >= 1]\n");
        return 2;
    }
    char info[512];
    if (gtl_build_info(info, sizeof info, NULL) != GTL_STATUS_OK) {
        fprintf(stderr, "gtl_build_info: %s\n", gtl_last_error());
        return 1;
    }
    printf("%s\n", info);

    gtl__rng rng;
    gtl__rng_seed(&rng, 0);
    static float x[N_SAMPLES * 2];
    static int64_t y[N_SAMPLES];
    make_spiral(&rng, x, y);

    gtl__ctx *ctx = NULL;
    gtl__tape *tape = NULL;
    gtl__paramset ps;
    gtl__paramset_init(&ps);
    float *velocity = NULL;
    int rc = 1;
    gtl_status st;

    const int64_t shapes[6][2] = {{HIDDEN, 2}, {HIDDEN, 1}, {HIDDEN, HIDDEN},
                                  {HIDDEN, 1}, {N_CLASSES, HIDDEN}, {N_CLASSES, 1}};
    const char *names[6] = {"fc1.weight", "fc1.bias", "fc2.weight",
                            "fc2.bias", "fc3.weight", "fc3.bias"};
    for (int i = 0; i < 6; i++) {
        int32_t nd = shapes[i][1] == 1 ? 1 : 2;
        st = gtl__paramset_add(&ps, names[i], nd, shapes[i], NULL);
        if (st != GTL_STATUS_OK)
            goto out;
    }
    st = gtl__paramset_finalize(&ps);
    if (st == GTL_STATUS_OK)
        st = gtl__paramset_alloc_grad(&ps);
    if (st != GTL_STATUS_OK)
        goto out;
    /* He initialisation for weights, zero biases. */
    for (int i = 0; i < 6; i += 2) {
        gtl__tensor *w = gtl__paramset_get(&ps, i);
        gtl__rng_fill_normal(&rng, w->data, w->n, 0.0f, sqrtf(2.0f / (float)w->ne[1]));
    }
    velocity = calloc((size_t)ps.n_total, sizeof(float));
    if (velocity == NULL)
        goto out;

    st = gtl__ctx_create(&ctx);
    if (st == GTL_STATUS_OK)
        st = gtl__tape_create(ctx, &rng, &tape);
    if (st != GTL_STATUS_OK)
        goto out;

    const float lr = 0.1f, momentum = 0.9f;
    float loss_v = 0.0f;
    int64_t n_correct = 0;
    for (int step = 1; step <= steps; step++) {
        gtl__tape_reset(tape);
        gtl__paramset_zero_grad(&ps);
        int64_t xs[2] = {N_SAMPLES, 2};
        gtl__tensor *in, *h, *logits, *loss;
        st = gtl__tape_leaf(tape, 2, xs, x, false, &in);
        if (st == GTL_STATUS_OK)
            st = gtl__op_linear(tape, in, &ps.params[0], &ps.params[1], GTL__ACT_RELU, &h);
        if (st == GTL_STATUS_OK)
            st = gtl__op_linear(tape, h, &ps.params[2], &ps.params[3], GTL__ACT_RELU, &h);
        if (st == GTL_STATUS_OK)
            st = gtl__op_linear(tape, h, &ps.params[4], &ps.params[5], GTL__ACT_NONE, &logits);
        if (st == GTL_STATUS_OK)
            st = gtl__op_cross_entropy(tape, logits, y, &loss);
        if (st == GTL_STATUS_OK)
            st = gtl__tape_backward(tape, loss);
        if (st != GTL_STATUS_OK)
            goto out;
        for (int64_t i = 0; i < ps.n_total; i++) {
            velocity[i] = momentum * velocity[i] + ps.grad[i];
            ps.data[i] -= lr * velocity[i];
        }
        loss_v = loss->data[0];
        n_correct = 0;
        for (int64_t k = 0; k < N_SAMPLES; k++) {
            const float *row = logits->data + k * N_CLASSES;
            int64_t best = 0;
            for (int64_t c = 1; c < N_CLASSES; c++)
                if (row[c] > row[best])
                    best = c;
            n_correct += best == y[k];
        }
        if (step == 1 || step % 100 == 0 || step == steps)
            printf("step %4d  loss %.4f  train accuracy %5.1f %%\n", step, (double)loss_v,
                   100.0 * (double)n_correct / N_SAMPLES);
    }
    if (loss_v < 0.15f) {
        printf("trained: final loss %.4f < 0.15\n", (double)loss_v);
        rc = 0;
    } else {
        printf("did not train well enough: final loss %.4f >= 0.15\n", (double)loss_v);
    }

out:
    if (st != GTL_STATUS_OK)
        fprintf(stderr, "tape_mlp: %s: %s\n", gtl_strerror(st), gtl_last_error());
    free(velocity);
    gtl__tape_destroy(tape);
    gtl__ctx_destroy(ctx);
    gtl__paramset_fini(&ps);
    return rc;
}
