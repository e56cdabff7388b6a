/*
 * test_dist_train.c - Fashion-MNIST MLP trained by 2 parameter servers and 2 workers,
 * each a process, on loopback over TLS with a token: synchronous training reaches the
 * accuracy of the same model trained in one process (Keras API, same optimizer and
 * examples), asynchronous training converges, and a worker killed with SIGKILL
 * mid-run and restarted (or a parameter server, restarted on its port) lets the job
 * finish: the remaining workers neither hang nor fail.
 *
 * Exit 77 without openssl or Fashion-MNIST (apt-get install dataset-fashion-mnist).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "dist_harness.h"
#include <stdbool.h>
#include <floe/checkpoint.h>

#define STEPS 300

/* The same MLP in one process: Keras, Adam 1e-3, batch 128 (= 2 workers x 64) for
 * STEPS steps over the first STEPS * 128 examples; its test accuracy through a pipe. */
static double single_process_accuracy(void) {
    int fds[2];
    double acc = -1;
    pid_t pid;
    if (pipe(fds) != 0)
        return -1;
    fflush(NULL);
    if ((pid = fork()) == 0) {
        floe_context *ctx;
        floe_dataset *all, *train, *test;
        floe_model *m;
        floe_fit_options fo;
        double loss, a = -1;
        close(fds[0]);
        if (floe_context_new(NULL, &ctx) == FLOE_OK &&
            floe_dataset_load_fashion_mnist(NULL, 1, &all) == FLOE_OK &&
            floe_dataset_load_fashion_mnist(NULL, 0, &test) == FLOE_OK &&
            floe_dataset_slice(all, 0, STEPS * 128, &train) == FLOE_OK &&
            floe_model_new(ctx, (int64_t[]){28, 28}, 2, &m) == FLOE_OK) {
            floe_model_add(m, floe_layer_flatten());
            floe_model_add(m, floe_layer_dense(128, "relu"));
            floe_model_add(m, floe_layer_dense(10, "softmax"));
            floe_fit_options_init(&fo);
            fo.epochs = 1;
            fo.batch_size = 128;
            fo.verbose = 0;
            if (floe_model_compile(m, "adam", 1e-3, "sparse_categorical_crossentropy",
                                   "accuracy") != FLOE_OK ||
                floe_model_fit(m, train, NULL, &fo, NULL) != FLOE_OK ||
                floe_model_evaluate(m, test, 0, &loss, &a) != FLOE_OK)
                a = -1;
        }
        if (write(fds[1], &a, sizeof(a)) != sizeof(a))
            _exit(2);
        _exit(0);
    }
    close(fds[1]);
    if (read(fds[0], &acc, sizeof(acc)) != sizeof(acc))
        acc = -1;
    close(fds[0]);
    waitpid(pid, NULL, 0);
    return acc;
}

static harness *setup_job(int sync) {
    static harness h;
    memset(&h, 0, sizeof(h));
    h.nps = 2;
    h.nworkers = 2;
    h.sync = sync;
    h.steps = STEPS;
    if (h_make_ca(&h) != 0)
        fail_msg("make-test-ca.sh failed");
    return &h;
}

static void expect_worker_ok(harness *h, int task, worker_report *r) {
    if (h_wait_worker(h, task, 50, r) != 0 || r->status != FLOE_OK) {
        h_cleanup(h);
        fail_msg("worker %d: status %d: %s", task, r->status, r->error);
    }
}

static void dist_sync_2ps_2workers_reaches_single_process_accuracy(void **state) {
    harness *h = setup_job(1);
    worker_report r0, r1;
    double base;
    (void)state;
    assert_int_equal(h_start(h), 0);
    expect_worker_ok(h, 0, &r0);
    expect_worker_ok(h, 1, &r1);
    h_cleanup(h);
    base = single_process_accuracy();
    print_message("sync: accuracy %.4f (single process %.4f), %lld+%lld steps in %.1f s, "
                  "%lld retries\n", r0.res.accuracy, base, (long long)r0.res.steps,
                  (long long)r1.res.steps, r0.res.seconds, (long long)r0.res.retries);
    assert_int_equal(r0.res.global_step, STEPS);
    /* Synchronous: every step took one gradient of each worker. */
    assert_int_equal(r0.res.steps, STEPS);
    assert_int_equal(r1.res.steps, STEPS);
    assert_true(base > 0.7);
    assert_true(r0.res.accuracy >= base - 0.02);
}

static void dist_async_2ps_2workers_converges(void **state) {
    harness *h = setup_job(0);
    worker_report r0, r1;
    (void)state;
    assert_int_equal(h_start(h), 0);
    expect_worker_ok(h, 0, &r0);
    expect_worker_ok(h, 1, &r1);
    h_cleanup(h);
    print_message("async: accuracy %.4f, steps %lld + %lld = global %lld\n", r0.res.accuracy,
                  (long long)r0.res.steps, (long long)r1.res.steps,
                  (long long)r0.res.global_step);
    /* Every push is one update: the workers' steps add up to the global step. */
    assert_true(r0.res.steps + r1.res.steps >= STEPS);
    assert_true(r0.res.accuracy > 0.75);
}

/* Kills @victim (a worker task, or ps index when @ps) at a random moment, restarts it. */
static void kill_and_restart(int ps, int victim) {
    harness *h = setup_job(1);
    worker_report r0, r1;
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    int64_t at = 30 + rand_r(&seed) % (STEPS / 2), killed_at;
    assert_int_equal(h_start(h), 0);
    if (h_wait_progress(h, at, 40) != 0) {
        h_cleanup(h);
        fail_msg("the job did not reach step %lld", (long long)at);
    }
    killed_at = *h->progress;
    if (ps) {
        int port = h->ps_port[victim];
        h_kill(&h->ps[victim]);
        if (h_start_ps(h, victim, port) != 0) {
            h_cleanup(h);
            fail_msg("could not restart ps %d on port %d", victim, port);
        }
    } else {
        h_kill(&h->worker[victim]);
        close(h->result_fd[victim]);
        assert_int_equal(h_start_worker(h, victim), 0);
    }
    expect_worker_ok(h, 0, &r0);
    expect_worker_ok(h, 1, &r1);
    h_cleanup(h);
    print_message("%s %d killed at step %lld: accuracy %.4f, %lld retries (chief), %lld "
                  "(worker 1)\n", ps ? "ps" : "worker", victim, (long long)killed_at, r0.res.accuracy,
                  (long long)r0.res.retries, (long long)r1.res.retries);
    assert_int_equal(r0.res.global_step, STEPS);
    assert_true(killed_at < STEPS);   /* it was mid-run */
    assert_true(r0.res.accuracy > 0.7);
}

static void dist_worker_killed_mid_run_job_resumes(void **state) {
    (void)state;
    kill_and_restart(0, 1);
}

static void dist_chief_killed_mid_run_job_resumes(void **state) {
    (void)state;
    kill_and_restart(0, 0);
}

static void dist_ps_killed_mid_run_job_resumes(void **state) {
    (void)state;
    kill_and_restart(1, 1);
}

/* Every process killed at a random step; a new job (new processes, new ports) with the
 * same checkpoint directory resumes from the chief's last checkpoint. */
static void dist_whole_job_killed_resumes_from_checkpoint(void **state) {
    harness *h = setup_job(1);
    worker_report r0, r1;
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    int64_t at = 60 + rand_r(&seed) % (STEPS / 2), killed_at;
    char cmd[400];
    (void)state;
    snprintf(h->ckpt, sizeof(h->ckpt), "%s/ckpt", h->ca);
    assert_int_equal(h_start(h), 0);
    if (h_wait_progress(h, at, 40) != 0) {
        h_cleanup(h);
        fail_msg("the job did not reach step %lld", (long long)at);
    }
    killed_at = *h->progress;
    for (int i = 0; i < h->nworkers; i++) {
        h_kill(&h->worker[i]);
        close(h->result_fd[i]);
    }
    for (int i = 0; i < h->nps; i++)
        h_kill(&h->ps[i]);
    assert_int_equal(h_start(h), 0);
    expect_worker_ok(h, 0, &r0);
    expect_worker_ok(h, 1, &r1);
    /* (A kill between a save's pointer update and its clean-up may leave a 4th file.) */
    snprintf(cmd, sizeof(cmd), "ls '%s' | grep -q 'ckpt-[0-9]*[.]floeckpt$'", h->ckpt);
    if (system(cmd) != 0) {
        snprintf(cmd, sizeof(cmd), "ls -la '%s'", h->ckpt);
        if (system(cmd) != 0)
            print_message("no checkpoint directory\n");
        h_cleanup(h);
        fail_msg("no checkpoint kept");
    }
    h_cleanup(h);
    print_message("job killed at step %lld; the new job ran %lld steps to %lld, accuracy "
                  "%.4f\n", (long long)killed_at, (long long)r0.res.steps,
                  (long long)r0.res.global_step, r0.res.accuracy);
    assert_int_equal(r0.res.global_step, STEPS);
    /* It resumed: no more than the steps after the newest checkpoint (every 50), plus
     * the steps between the kill and the progress report. */
    assert_true(r0.res.steps < STEPS);
    assert_true(r0.res.steps <= STEPS - killed_at + 50 + 5);
    assert_true(r0.res.accuracy > 0.7);
}

/* Every Adam slot tensor of the newest checkpoint of @dir, in a fixed order, appended
 * to @out (f32 elements); asserts each is there and, with @nonzero, not all zero. */
static size_t read_slots(floe_context *ctx, const char *dir, float *out, size_t cap,
                         bool nonzero, char *path, size_t path_len) {
    static const char *const vars[4] = {"dense_0/kernel", "dense_0/bias", "dense_1/kernel",
                                        "dense_1/bias"};
    floe_checkpoint *c;
    size_t n = 0;
    char name[64];

    assert_int_equal(floe_checkpoint_latest(ctx, dir, path, path_len), FLOE_OK);
    if (floe_checkpoint_open(ctx, path, &c) != FLOE_OK)
        fail_msg("%s: %s", path, floe_keras_last_error());
    for (int i = 0; i < 8; i++) {
        floe_tensor *t;
        size_t cnt;
        const float *d;
        bool any = false;
        int k;
        snprintf(name, sizeof(name), "%s/%s", vars[i / 2], i % 2 ? "Adam_1" : "Adam");
        if ((k = floe_checkpoint_find(c, name)) < 0)
            fail_msg("%s: no tensor '%s'", path, name);
        assert_int_equal(floe_checkpoint_read_tensor(c, k, &t), FLOE_OK);
        assert_int_equal(floe_tensor_dtype(t), FLOE_DTYPE_F32);
        assert_int_equal(floe_checkpoint_find(c, vars[i / 2]) >= 0, 1);
        cnt = floe_tensor_nbytes(t) / sizeof(float);
        d = floe_tensor_data(t);
        assert_true(n + cnt <= cap);
        for (size_t j = 0; j < cnt; j++) {
            any |= d[j] != 0;
            if (i % 2)
                assert_true(d[j] >= 0);   /* v: a mean of squares */
        }
        if (nonzero && !any)
            fail_msg("%s: '%s' is all zero after training", path, name);
        memcpy(out + n, d, cnt * sizeof(float));
        n += cnt;
        floe_tensor_unref(t);
    }
    floe_checkpoint_close(c);
    return n;
}

/* The chief's checkpoint holds the servers' Adam slots ("<var>/Adam", "<var>/Adam_1",
 * assembled from the parts of the partitioned kernel), non-zero after training; a new
 * job (new servers) resumed from it starts with those slots: its first pull of them (at
 * the resumed step, before any update, saved by the chief's final checkpoint) equals
 * the checkpoint's, bit for bit. */
static void dist_checkpoint_keeps_adam_slots_across_restart(void **state) {
    harness *h = setup_job(1);
    worker_report r0, r1;
    floe_context *ctx;
    char path[1024], path2[1024];
    size_t cap = 2 * (784 * 128 + 128 + 128 * 10 + 10), n, n2;
    float *before = malloc(cap * sizeof(float)), *after = malloc(cap * sizeof(float));
    (void)state;
    assert_non_null(before);
    assert_non_null(after);
    h->steps = 60;
    snprintf(h->ckpt, sizeof(h->ckpt), "%s/ckpt", h->ca);
    assert_int_equal(h_start(h), 0);
    expect_worker_ok(h, 0, &r0);
    expect_worker_ok(h, 1, &r1);
    for (int i = 0; i < h->nps; i++)
        h_kill(&h->ps[i]);
    assert_int_equal(r0.res.global_step, 60);
    /* floe_checkpoint_* use no gRPC: forking after them stays safe. */
    assert_int_equal(floe_context_new(NULL, &ctx), FLOE_OK);
    n = read_slots(ctx, h->ckpt, before, cap, true, path, sizeof(path));
    assert_int_equal(n, cap);
    /* A new job with the steps already done: it restores, pulls, saves, trains nothing. */
    assert_int_equal(h_start(h), 0);
    expect_worker_ok(h, 0, &r0);
    expect_worker_ok(h, 1, &r1);
    for (int i = 0; i < h->nps; i++)
        h_kill(&h->ps[i]);   /* nothing outlives a failed assertion below */
    assert_int_equal(r0.res.steps, 0);
    assert_int_equal(r0.res.global_step, 60);
    n2 = read_slots(ctx, h->ckpt, after, cap, true, path2, sizeof(path2));
    h_cleanup(h);
    floe_context_free(ctx);
    assert_string_equal(path, path2);
    assert_int_equal(n2, n);
    assert_memory_equal(before, after, n * sizeof(float));
    free(before);
    free(after);
}

int main(int argc, char **argv) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(dist_sync_2ps_2workers_reaches_single_process_accuracy),
        cmocka_unit_test(dist_async_2ps_2workers_converges),
        cmocka_unit_test(dist_worker_killed_mid_run_job_resumes),
        cmocka_unit_test(dist_chief_killed_mid_run_job_resumes),
        cmocka_unit_test(dist_ps_killed_mid_run_job_resumes),
        cmocka_unit_test(dist_whole_job_killed_resumes_from_checkpoint),
        cmocka_unit_test(dist_checkpoint_keeps_adam_slots_across_restart),
    };
    if (access(FLOE_FASHION_MNIST_DIR "/train-images-idx3-ubyte.gz", R_OK) != 0) {
        printf("SKIP: Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)\n");
        return 77;
    }
    if (system("command -v openssl >/dev/null 2>&1") != 0) {
        printf("SKIP: needs openssl for the test CA\n");
        return 77;
    }
    if (argc > 1)   /* meson runs each case as its own test, to keep each under 60 s */
        cmocka_set_test_filter(argv[1]);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
