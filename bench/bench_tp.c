/* bench_tp: per-rank peak memory and training speed of the FC FSNN
 * "n (Fn)" on 784 inputs and 10 classes (the Fashion-MNIST shapes, random
 * inputs) against the number of model ranks: run under
 * `mpirun -np M bench_tp n steps batch [model]`, one group of M model ranks
 * (mpi/tpfc.h), or with `model` (M = 1 only) the one-process model of
 * src/model.h. Each step is a training step as in `fsnn train` (power
 * iteration, input, simulation, adjoint solve, gradients, SGD). Prints the
 * largest peak RSS over the ranks and samples/s of the timed steps (the
 * first step is a warm-up and not timed).
 *
 *   mpirun -np 2 bench_tp 16384 2 128        defaults: 4096 2 128 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "clock.h"
#include "config.h"
#include "grid.h"
#include "model.h"
#include "optim.h"
#include "reducer.h"
#include "rng.h"
#include "status.h"
#include "tpfc.h"

enum { NIN = 784, NOUT = 10 };

/* The paper's F400 settings (config defaults) with n neurons, IF, dense
 * products and float sums, batches of B. */
static void bench_cfg(fsnn_cfg *c, int n, int B) {
    config_defaults(c);
    snprintf(c->model_net, sizeof c->model_net, "%d (F%d)", n, n);
    c->model_hidden = n;
    c->model_spike_product = SPIKE_DENSE;
    c->neuron_leak = 1.0f;
    c->train_batch = B;
    c->train_test_batch = B;
    c->parallel_deterministic = 0;
    c->parallel_micro_batch = B;
}

/* One training step of the one-process model or of the distributed one. */
static int bench_step(const fsnn_cfg *cfg, fsnn_model *m, model_ws *ws, tpfc *t, optim *o,
                      const float *x, const uint8_t *y, const long *ids, int B, int step,
                      const reduce_ops *red, double *loss) {
    model_stats st;
    memset(&st, 0, sizeof st);
    if (m) {
        model_prepare_weights(m, 1);
        CHECK(model_input(m, ws, x, B, 1, ids, (uint32_t)step, cfg->run_seed));
        model_simulate(m, ws, B, &st);
        CHECK(model_loss(m, ws, y, B, (double)B, 1, &st));
        optim_step(o, m->params, m->grads, cfg->train_lr);
        model_after_step(m);
    } else {
        CHECK(tpfc_prepare(t, 1));
        CHECK(tpfc_batch(t, x, y, ids, B, B, 1, (uint32_t)step, cfg->run_seed, red, &st));
        optim_step(o, t->params, t->grads, cfg->train_lr);
        tpfc_after_step(t);
    }
    *loss = st.loss / B;
    return FSNN_OK;
}

static int bench_run(int n, int steps, int B, int one_process) {
    int size = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    grid_env g;
    CHECK(grid_create(&g, size)); /* one group of all ranks */
    blas_set_threads(one_process || size == 1 ? 2 : 1);
    fsnn_cfg cfg;
    bench_cfg(&cfg, n, B);
    const reduce_ops *red = reduce_local();
    fsnn_model *m = NULL;
    model_ws *ws = NULL;
    tpfc *t = NULL;
    optim *o = NULL;
    if (one_process) {
        if (size != 1) return FAIL("bench_tp: the one-process model runs on 1 rank, not %d", size);
        CHECK(model_create(&m, &cfg, 1, 1, NIN, NOUT));
        CHECK(model_ws_create(&ws, m, &cfg, B));
        model_init(m, cfg.run_seed);
        CHECK(optim_create(&o, &cfg, m->n_params));
    } else {
        CHECK(tpfc_create(&t, &cfg, NIN, NOUT, g.model, TPFC_BLOCK, B));
        CHECK(tpfc_init(t, cfg.run_seed));
        CHECK(optim_create(&o, &cfg, t->n_params));
    }
    float *x = malloc(sizeof(float) * (size_t)B * NIN);
    uint8_t *y = malloc((size_t)B);
    long *ids = malloc(sizeof(long) * (size_t)B);
    if (!x || !y || !ids) return FAIL("bench_tp: out of memory");
    rng_uniform_fill(3, RNG_TEST, 0, 0, x, (long)B * NIN);
    for (long k = 0; k < (long)B * NIN; k++)
        x[k] = 3.0f * x[k] - 0.5f;
    for (int b = 0; b < B; b++)
        y[b] = (uint8_t)(b % NOUT), ids[b] = b;
    double loss = 0.0, t0 = 0.0;
    for (int s = 0; s <= steps; s++) {
        if (s == 1) {
            MPI_Barrier(MPI_COMM_WORLD);
            t0 = clock_seconds();
        }
        CHECK(bench_step(&cfg, m, ws, t, o, x, y, ids, B, s, red, &loss));
        if (g.world_rank == 0) printf("step %d: loss %.6f\n", s, loss);
    }
    MPI_Barrier(MPI_COMM_WORLD);
    double el = clock_seconds() - t0, rss = clock_peak_rss_mb();
    MPI_Allreduce(MPI_IN_PLACE, &rss, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    if (g.world_rank == 0)
        printf("n = %d, batch %d, %s, %d rank(s): peak RSS per rank %.0f MB, %.1f samples/s "
               "(%d timed steps, %.1f s)\n",
               n, B, one_process ? "one-process model (src/model.c)" : "tensor parallel (tpfc)",
               size, rss, steps * B / el, steps, el);
    free(x);
    free(y);
    free(ids);
    optim_destroy(&o);
    tpfc_destroy(&t);
    model_ws_destroy(&ws);
    model_destroy(&m);
    grid_destroy(&g);
    return FSNN_OK;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int n = argc > 1 ? atoi(argv[1]) : 4096, steps = argc > 2 ? atoi(argv[2]) : 2;
    int B = argc > 3 ? atoi(argv[3]) : 128, one = argc > 4 && !strcmp(argv[4], "model");
    int rc = 0;
    if (n <= 0 || steps <= 0 || B <= 0) {
        fprintf(stderr, "usage: bench_tp [n > 0] [steps > 0] [batch > 0] [model]\n");
        rc = 2;
    } else if (bench_run(n, steps, B, one) != 0) {
        fprintf(stderr, "bench_tp: %s\n", status_message());
        rc = 1;
    }
    MPI_Finalize();
    return rc;
}
