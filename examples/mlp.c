/*
 * mlp.c - the seed documents' Keras example in C: Flatten, Dense 128 relu, Dense 10
 * softmax on Fashion-MNIST, Adam 1e-3, batch 32, 5 epochs, then the test accuracy.
 * Needs Debian's dataset-fashion-mnist (or the directory of the four IDX files as the
 * first argument).  Error checks are folded into CHECK to keep the model in view.
 */
#include <floe/keras.h>

#include <stdio.h>
#include <stdlib.h>

#define CHECK(call)                                                                     \
    do {                                                                                \
        if ((call) != FLOE_OK) {                                                        \
            fprintf(stderr, "mlp: %s: %s\n", #call, floe_keras_last_error());           \
            exit(1);                                                                    \
        }                                                                               \
    } while (0)

int main(int argc, char **argv) {
    const char *dir = argc > 1 ? argv[1] : NULL;
    floe_context *ctx;
    floe_dataset *train, *test;
    floe_model *model;
    double loss, accuracy;

    if (floe_context_new(NULL, &ctx) != FLOE_OK)
        return fprintf(stderr, "mlp: %s\n", floe_last_error()), 1;
    CHECK(floe_dataset_load_fashion_mnist(dir, 1, &train));
    CHECK(floe_dataset_load_fashion_mnist(dir, 0, &test));

    CHECK(floe_model_new(ctx, (int64_t[]){28, 28}, 2, &model));
    floe_model_add(model, floe_layer_flatten());
    floe_model_add(model, floe_layer_dense(128, "relu"));
    floe_model_add(model, floe_layer_dense(10, "softmax"));
    CHECK(floe_model_compile(model, "adam", 1e-3, "sparse_categorical_crossentropy", "accuracy"));
    CHECK(floe_model_fit(model, train, NULL, NULL, NULL));      /* 5 epochs, batch 32 */
    CHECK(floe_model_evaluate(model, test, 0, &loss, &accuracy));
    printf("Test accuracy: %.4f\n", accuracy);

    floe_model_free(model);
    floe_dataset_free(train);
    floe_dataset_free(test);
    floe_context_free(ctx);
    return 0;
}
