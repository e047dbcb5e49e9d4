/* bench_adjoint: the adjoint solve's products on a real batch. Trains a net
 * for a few steps from a config (e.g. configs/mnist_conv_if.ini, MNIST
 * 64C5s (F64C5)), then takes the next training batch through the input
 * branch, the simulation and model_loss, and reports
 *   - the density of the adjoint's mask jac = drop_s ⊙ m / V_th (SPEC §3):
 *     over the batch, per sample (min, mean, max), and the share of samples
 *     below linop_adjoint_density (those take the event path in auto mode);
 *   - one product W^T (jac ⊙ beta) over the batch, dense and event-driven
 *     (linop_masked_transpose, the fastest of repeated calls);
 *   - the adjoint phase of model_loss (the solve with its 30 Broyden
 *     iterations and the loss; model_stats.t_adj, the fastest of three) with
 *     model.spike_product = dense, event, auto, and how far the event
 *     gradients lie from the dense ones.
 * Whole-batch work (no micro-shards), BLAS on the given threads.
 *
 *   bench_adjoint CONFIG [steps] [threads] [key=value ...]
 *   defaults: 40 steps of train.batch samples, 1 thread */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"    // defines: blas_set_threads, blas_set_serial
#include "clock.h"   // defines: clock_seconds
#include "config.h"  // defines: config_load, config_override, config_resolve
#include "dataset.h" // defines: dataset_load
#include "linop.h"   // defines: linop_masked_transpose, linop_mask_lists
#include "model.h"   // defines: model_*
#include "optim.h"   // defines: optim_create
#include "reduce.h"  // defines: reduce_local
#include "status.h"  // defines: status_message
#include "trainer.h" // defines: trainer_fit

static double bench_time(const fsnn_model *m, const float *jac, const int *idx, const int *nnz,
                         const float *beta, float *dx, float *tmp, float *ws, int B,
                         cfg_spike_product mode) {
    double best = 1e30, t0 = clock_seconds();
    for (int reps = 0; reps < 3 || clock_seconds() - t0 < 1.0; reps++) {
        double t1 = clock_seconds();
        linop_masked_transpose(&m->fb_op, m->W, m->Wa, jac, idx, nnz, NULL, B, beta, dx, tmp, mode,
                               ws);
        double el = clock_seconds() - t1;
        if (el < best) best = el;
    }
    return best;
}

static int bench_fail(const char *what) {
    fprintf(stderr, "bench_adjoint: %s: %s\n", what, status_message());
    return 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_adjoint CONFIG [steps] [threads] [key=value ...]\n");
        return 2;
    }
    int steps = argc > 2 ? atoi(argv[2]) : 40, threads = argc > 3 ? atoi(argv[3]) : 1;
    if (steps < 0 || threads < 0) {
        fprintf(stderr, "bench_adjoint: steps and threads must be >= 0\n");
        return 2;
    }
    fsnn_cfg cfg;
    config_defaults(&cfg);
    if (config_load(argv[1], &cfg)) return bench_fail(argv[1]);
    for (int i = 4; i < argc; i++)
        if (config_override(argv[i], &cfg)) return bench_fail(argv[i]);
    if (config_resolve(argv[1], &cfg)) return bench_fail(argv[1]);
    const int B = cfg.train_batch;
    cfg.train_epochs = 1;
    cfg.data_test_limit = cfg.train_test_batch;
    threads = blas_set_threads(threads);
    blas_set_serial(cfg.parallel_deterministic);

    /* steps batches to train on, then one to measure */
    dataset data;
    memset(&data, 0, sizeof data);
    if (dataset_load(cfg.data_dataset, cfg.data_path, (long)(steps + 1) * B, cfg.data_test_limit,
                     &data))
        return bench_fail(cfg.data_path);
    if (data.train.n < (long)(steps + 1) * B) {
        fprintf(stderr, "bench_adjoint: %ld training samples, %d steps of %d need %ld\n",
                data.train.n, steps, B, (long)(steps + 1) * B);
        return 1;
    }
    trainer_data train, test;
    const dataset_split *sp[2] = {&data.train, &data.test};
    trainer_data *tv[2] = {&train, &test};
    for (int i = 0; i < 2; i++) {
        memset(tv[i], 0, sizeof *tv[i]);
        tv[i]->images = sp[i]->images;
        tv[i]->labels = sp[i]->labels;
        tv[i]->n = sp[i]->n;
        tv[i]->channels = sp[i]->channels;
        tv[i]->height = sp[i]->height;
        tv[i]->width = sp[i]->width;
        tv[i]->dim = sp[i]->channels * sp[i]->height * sp[i]->width;
        for (int c = 0; c < sp[i]->channels && c < TRAINER_MAX_CHANNELS; c++) {
            tv[i]->mean[c] = data.mean[c];
            tv[i]->std[c] = data.std[c];
        }
    }
    train.n = (long)steps * B;

    fsnn_model *m = NULL;
    trainer_state ts;
    memset(&ts, 0, sizeof ts);
    if (model_create(&m, &cfg, train.channels, train.height, train.width, data.classes) ||
        optim_create(&ts.opt, &cfg, m->n_params))
        return bench_fail("model");
    model_init(m, cfg.run_seed);
    printf("net %s, T = %d, batch %d, %d BLAS thread(s); training %d steps\n", cfg.model_net, m->T,
           B, threads, steps);
    fsnn_net *net = NULL;
    if (net_model_create(&net, m, &cfg, TRAINER_BMAX(&cfg))) return bench_fail("net");
    if (steps > 0 && trainer_fit(&cfg, net, &ts, &train, &test, NULL, reduce_local()))
        return bench_fail("training");

    /* The next batch, normalised as the trainer does (SPEC §4). */
    const int n = m->n, dim = train.dim, hw = train.height * train.width;
    float *x = malloc(sizeof(float) * (size_t)B * dim);
    long *ids = malloc(sizeof(long) * (size_t)B);
    uint8_t *labels = malloc((size_t)B);
    model_ws *ws = NULL;
    if (!x || !ids || !labels || model_ws_create(&ws, m, &cfg, B)) return bench_fail("memory");
    for (int b = 0; b < B; b++) {
        long s = (long)steps * B + b;
        ids[b] = s;
        labels[b] = data.train.labels[s];
        for (int k = 0; k < dim; k++) {
            int c = k / hw;
            x[(long)b * dim + k] =
                (data.train.images[s * dim + k] / 255.0f - data.mean[c]) / data.std[c];
        }
    }
    model_prepare_weights(m, 1);
    if (model_input(m, ws, x, B, 1, ids, 1, cfg.run_seed)) return bench_fail("input");
    model_stats st;
    memset(&st, 0, sizeof st);
    model_simulate(m, ws, B, &st);
    printf("firing rate of the batch: %.4f spikes per neuron per step\n",
           st.sim.spikes / ((double)B * n * m->T));

    /* The adjoint phase with each mode; the dense gradients are the
     * reference of the event ones. */
    const cfg_spike_product modes[3] = {SPIKE_DENSE, SPIKE_EVENT, SPIKE_AUTO};
    const char *names[3] = {"dense", "event", "auto"};
    float *g0 = malloc(sizeof(float) * m->n_params);
    double t_adj[3], iters[3], gdiff = 0.0, gmax = 0.0;
    if (!g0) return bench_fail("memory");
    for (int k = 0; k < 3; k++) {
        m->spike_mode = modes[k];
        t_adj[k] = 1e30;
        for (int rep = 0; rep < 3; rep++) { /* the fastest of three */
            memset(&st, 0, sizeof st);
            if (model_loss(m, ws, labels, B, (double)B, 1, &st)) return bench_fail("model_loss");
            t_adj[k] = fmin(t_adj[k], st.t_adj);
        }
        iters[k] = st.adj_iters_sum / B;
        for (size_t i = 0; i < m->n_params; i++) {
            if (k == 0) {
                g0[i] = m->grads[i];
                gmax = fmax(gmax, fabs(g0[i]));
            } else if (k == 1) {
                gdiff = fmax(gdiff, fabs((double)m->grads[i] - g0[i]));
            }
        }
    }

    /* The mask of this batch and one product through it. */
    const float *jac = model_ws_jac(ws), *beta = model_ws_beta(ws);
    int *idx = malloc(sizeof(int) * (size_t)B * n), *nnz = malloc(sizeof(int) * (size_t)B);
    float *dx = malloc(sizeof(float) * (size_t)B * n), *tmp = malloc(sizeof(float) * (size_t)B * n);
    float *opws = malloc(sizeof(float) * (linop_ws_size(&m->fb_op) + 1));
    if (!idx || !nnz || !dx || !tmp || !opws) return bench_fail("memory");
    long total = linop_mask_lists(jac, B, n, idx, nnz);
    double dmin = 1.0, dmax = 0.0, lim = linop_adjoint_density(&m->fb_op);
    int below = 0;
    for (int b = 0; b < B; b++) {
        double d = (double)nnz[b] / n;
        dmin = fmin(dmin, d);
        dmax = fmax(dmax, d);
        below += d < lim;
    }
    printf("adjoint mask (drop_s ⊙ m != 0) over %d x %d neurons: density %.4f (per sample min "
           "%.4f, max %.4f); %d of %d samples below %.2f take the event path in auto mode\n",
           B, n, (double)total / ((double)B * n), dmin, dmax, below, B, lim);
    double td = bench_time(m, jac, idx, nnz, beta, dx, tmp, opws, B, SPIKE_DENSE) * 1e3;
    double te = bench_time(m, jac, idx, nnz, beta, dx, tmp, opws, B, SPIKE_EVENT) * 1e3;
    printf("one product W^T (jac ⊙ beta) over the batch: dense %.2f ms, event %.2f ms, speedup "
           "%.2f\n",
           td, te, td / te);
    for (int k = 0; k < 3; k++)
        printf("adjoint phase of model_loss, %-5s: %.3f s (%.1f iterations per sample)\n", names[k],
               t_adj[k], iters[k]);
    printf("speedup of the adjoint phase, event over dense: %.2f; max |grad event - grad dense| "
           "%.3g (max |grad| %.3g)\n",
           t_adj[0] / t_adj[1], gdiff, gmax);
    free(x);
    free(ids);
    free(labels);
    free(g0);
    free(idx);
    free(nnz);
    free(dx);
    free(tmp);
    free(opws);
    model_ws_destroy(&ws);
    optim_destroy(&ts.opt);
    net_destroy(&net);
    dataset_destroy(&data);
    return 0;
}
