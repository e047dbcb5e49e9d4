/* tp: the tensor-parallel FC net (mpi/tpfc.h) against the one-process model
 * (src/model.h). Run as `mpirun -np N test_tp M`: the N ranks form N / M
 * groups of M model ranks (mpi/grid.h) on a 2-D grid where possible, with
 * blocks of 8 so that n = 64 is dealt cyclically (2 x 2 grid: 4 blocks per
 * process row and column).
 *
 * Checked on every rank:
 *   - the distributed initialisation draws the same F, V and readout as
 *     model_init, bit for bit, and the same sigma within float rounding;
 *   - from the same weights, the loss and every gradient of a global batch
 *     (split over the groups) agree with model.c within the stated
 *     tolerance: loss relative 1e-5, each gradient tensor max |difference|
 *     <= 1e-4 of its largest entry + 1e-8 (observed: 2e-7);
 *   - three SGD steps later the losses still agree (relative 1e-5) and the
 *     gathered weights differ by at most 1e-5 of their largest entry
 *     (observed: 1e-7);
 *   - gathering onto the group's rank 0 alone (point to point) gives the
 *     same whole arrays as the all-reduce gather;
 *   - a checkpoint written in shards by the ranks of group 0 with parallel
 *     HDF5 reads back (header, digest, checksum) to the same weights,
 *     optimiser state and counters as one written whole by one process;
 *   - psgesvd's largest singular value of W equals LAPACK's (dgesvd of the
 *     gathered W in double) within relative 1e-5;
 *   - a world size that M does not divide is refused with a message naming
 *     both numbers. */
#include <lapacke.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "ckpt.h"
#include "ckptshard.h"
#include "config.h"
#include "grid.h"
#include "model.h"
#include "optim.h"
#include "reducer.h"
#include "rng.h"
#include "status.h"
#include "testutil.h"
#include "tpfc.h"
#include "tpnet.h"

enum { NIN = 20, NH = 64, NOUT = 5, BG = 12, BLOCK = 8, STEPS = 3 };

static void tp_cfg(fsnn_cfg *c, int ref) {
    config_defaults(c);
    testutil_cfg_variant(c, ref);
    c->run_seed = 5;
    snprintf(c->model_net, sizeof c->model_net, "%d (F%d)", NH, NH);
    c->model_hidden = NH;
    c->model_spike_product = SPIKE_DENSE;
    c->neuron_leak = 0.95f;
    c->train_batch = BG;
    c->train_test_batch = BG;
    c->parallel_deterministic = 0;
    c->parallel_micro_batch = BG;
}

/* max |a - b| and max |b| over n values. */
static void tp_diff(const float *a, const float *b, size_t n, double *dmax, double *bmax) {
    *dmax = 0.0;
    *bmax = 0.0;
    for (size_t k = 0; k < n; k++) {
        *dmax = fmax(*dmax, fabs((double)a[k] - b[k]));
        *bmax = fmax(*bmax, fabs((double)b[k]));
    }
}

/* Every tensor of got against want (same layout): max |difference| <= rel
 * times its largest entry + 1e-8, the floor for the input bias, whose
 * gradient is zero up to rounding (BatchNorm follows it: about 1e-9). */
static void tp_expect_tensors(const fsnn_model *m, const float *got, const float *want, double rel,
                              const char *what, double *worst) {
    for (int i = 0; i < m->n_tensors; i++) {
        const model_tensor_info *ti = &m->info[i];
        double d, b;
        tp_diff(got + ti->offset, want + ti->offset, ti->count, &d, &b);
        if (b > 1e-6) *worst = fmax(*worst, d / b);
        EXPECT(d <= rel * b + 1e-8, "%s %s: max difference %g, largest entry %g", what, ti->name, d,
               b);
    }
}

/* The reference: one process, the whole global batch, fast mode. */
static double tp_ref_step(fsnn_model *m, model_ws *ws, const float *x, const uint8_t *y,
                          const long *ids, uint32_t epoch) {
    model_stats st;
    memset(&st, 0, sizeof st);
    model_prepare_weights(m, 1);
    EXPECT_OK(model_input(m, ws, x, BG, 1, ids, epoch, 5));
    model_simulate(m, ws, BG, &st);
    EXPECT_OK(model_loss(m, ws, y, BG, (double)BG, 1, &st));
    return st.loss;
}

/* This group's block of the batch through tpfc; returns the loss summed over all groups. */
static double tp_step(tpfc *t, const grid_env *g, const reduce_ops *red, const float *x,
                      const uint8_t *y, const long *ids, uint32_t epoch) {
    const int lo = BG * g->group / g->groups, hi = BG * (g->group + 1) / g->groups;
    model_stats st;
    memset(&st, 0, sizeof st);
    EXPECT_OK(tpfc_prepare(t, 1));
    EXPECT_OK(
        tpfc_batch(t, x + (long)lo * NIN, y + lo, ids + lo, hi - lo, BG, 1, epoch, 5, red, &st));
    double loss = st.loss;
    EXPECT_OK(red->sum_f64(red->ctx, &loss, 1));
    return loss;
}

/* The largest singular value of the row-major n x n matrix W by LAPACK in double. */
static double tp_lapack_sigma(const float *W, int n) {
    double *a = malloc(sizeof(double) * (size_t)n * n), *s = malloc(sizeof(double) * (size_t)n);
    double *sup = malloc(sizeof(double) * (size_t)n), sigma = NAN;
    for (long k = 0; k < (long)n * n; k++)
        a[k] = W[k];
    if (LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'N', n, n, a, n, s, NULL, 1, NULL, 1, sup) == 0)
        sigma = s[0];
    free(a);
    free(s);
    free(sup);
    return sigma;
}

/* Writes the checkpoint of t and its optimiser `o` twice: whole, gathered
 * onto one process (ckpt_write), and in shards by the ranks of group 0
 * (ckptshard_write); both must read back (header, digest and in-file
 * checksum verified) to the same tensors, optimiser state and counters. */
static void tp_ckpt(const grid_env *g, tpfc *t, optim *o, fsnn_model *got, const fsnn_cfg *cfg) {
    char dir[64] = "/tmp/fsnn-tp-ckpt.XXXXXX";
    if (g->world_rank == 0 && !mkdtemp(dir)) dir[0] = '\0';
    MPI_Bcast(dir, sizeof dir, MPI_CHAR, 0, MPI_COMM_WORLD);
    EXPECT(dir[0] != '\0', "mkdtemp failed");
    if (!dir[0]) return;
    optim *whole_opt = NULL;
    EXPECT_OK(optim_create(&whole_opt, cfg, got->n_params));
    EXPECT_OK(tpfc_to_model(t, got, 0));
    EXPECT_OK(tpfc_full_from_local(t, got, o->m1, whole_opt->m1));
    whole_opt->step = o->step;
    trainer_state ts;
    memset(&ts, 0, sizeof ts);
    ts.epoch = 1;
    ts.iter = STEPS;
    ts.opt = whole_opt;
    ckpt_data d;
    memset(&d, 0, sizeof d);
    d.m = got;
    d.ts = &ts;
    double history[METRICS_N_COLS]; /* one epoch finished: one row */
    for (int i = 0; i < METRICS_N_COLS; i++)
        history[i] = 0.25 * i;
    d.history = history;
    d.history_rows = 1;
    d.config_text = "[model]\nnet = 64 (F64)\n";
    d.world_size = g->world_size;
    for (int i = 0; i < TRAINER_PARTIAL_N; i++)
        d.partial[i] = i;
    char whole_dir[96], shard_dir[96];
    snprintf(whole_dir, sizeof whole_dir, "%s/whole", dir);
    snprintf(shard_dir, sizeof shard_dir, "%s/shard", dir);
    if (g->world_rank == 0) {
        mkdir(whole_dir, 0700);
        mkdir(shard_dir, 0700);
        EXPECT_OK(ckpt_write(whole_dir, &d));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (g->group == 0) {
        ckptshard sh;
        tpnet_shard_layout(t, got, o->m1, NULL, &sh);
        EXPECT_OK(ckptshard_write(shard_dir, g->model_rank == 0 ? &d : NULL, &sh));
    }
    MPI_Barrier(MPI_COMM_WORLD);
    if (g->world_rank == 0) {
        fsnn_model *a = NULL, *b = NULL;
        optim *oa = NULL, *ob = NULL;
        trainer_state ta, tb;
        memset(&ta, 0, sizeof ta);
        memset(&tb, 0, sizeof tb);
        EXPECT_OK(model_create(&a, cfg, 1, 1, NIN, NOUT));
        EXPECT_OK(model_create(&b, cfg, 1, 1, NIN, NOUT));
        EXPECT_OK(optim_create(&oa, cfg, got->n_params));
        EXPECT_OK(optim_create(&ob, cfg, got->n_params));
        ta.opt = oa;
        tb.opt = ob;
        ckpt_data ra = {.m = a, .ts = &ta}, rb = {.m = b, .ts = &tb};
        char pa[128], pb[128];
        snprintf(pa, sizeof pa, "%s/%s", whole_dir, CKPT_FILE);
        snprintf(pb, sizeof pb, "%s/%s", shard_dir, CKPT_FILE);
        EXPECT_OK(ckpt_read(pa, &ra));
        int rb_ok = ckpt_read(pb, &rb) == 0;
        EXPECT(rb_ok, "the sharded checkpoint does not read back: %s", status_message());
        if (a && b && oa && ob && rb_ok) {
            const size_t np = got->n_params;
            EXPECT(!memcmp(a->params, got->params, sizeof(float) * np) &&
                       !memcmp(b->params, got->params, sizeof(float) * np),
                   "M = %d: checkpointed weights differ from the model's",
                   t->grid.nprow * t->grid.npcol);
            EXPECT(!memcmp(oa->m1, ob->m1, sizeof(float) * np) &&
                       !memcmp(ob->m1, whole_opt->m1, sizeof(float) * np),
                   "sharded optimiser state differs");
            EXPECT(b->sigma == got->sigma && !memcmp(b->sn_u, got->sn_u, sizeof(float) * NH) &&
                       tb.iter == STEPS && ob->step == o->step,
                   "sharded state or counters differ");
        }
        ckpt_data_free(&ra);
        ckpt_data_free(&rb);
        optim_destroy(&oa);
        optim_destroy(&ob);
        model_destroy(&a);
        model_destroy(&b);
        char cmd[256];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        EXPECT(system(cmd) == 0, "cannot remove %s", dir);
    }
    optim_destroy(&whole_opt);
}

static void tp_case(int M, int ref) {
    grid_env g;
    EXPECT_OK(grid_create(&g, M));
    reduce_ops red;
    EXPECT_OK(reducer_comm(&red, g.data));
    fsnn_cfg cfg;
    tp_cfg(&cfg, ref);
    fsnn_model *m = NULL, *got = NULL;
    model_ws *ws = NULL;
    tpfc *t = NULL;
    EXPECT_OK(model_create(&m, &cfg, 1, 1, NIN, NOUT));
    EXPECT_OK(model_create(&got, &cfg, 1, 1, NIN, NOUT));
    EXPECT_OK(model_ws_create(&ws, m, &cfg, BG));
    EXPECT_OK(tpfc_create(&t, &cfg, NIN, NOUT, g.model, BLOCK, BG));
    model_init(m, cfg.run_seed);

    /* Initialisation: the same draws. */
    EXPECT_OK(tpfc_init(t, cfg.run_seed));
    EXPECT_OK(tpfc_to_model(t, got, 0));
    const int ti_F = 0, ti_V = 4, ti_Wo = 6;
    const int exact[3] = {ti_F, ti_V, ti_Wo};
    for (int k = 0; k < 3; k++) {
        const model_tensor_info *ti = &m->info[exact[k]];
        EXPECT(memcmp(got->params + ti->offset, m->params + ti->offset,
                      sizeof(float) * ti->count) == 0,
               "M = %d: initial %s differs from model_init's", M, ti->name);
    }
    EXPECT_NEAR(got->sigma, m->sigma, 0.0, 1e-5, "initial sigma(V)");
    EXPECT_NEAR(got->p.g[0], m->p.g[0], 0.0, 1e-5, "initial g");

    /* The same state, one batch: loss and gradients. */
    EXPECT_OK(tpfc_from_model(t, m));
    float x[BG * NIN];
    uint8_t y[BG];
    long ids[BG];
    rng_uniform_fill(13, RNG_TEST, 0, 0, x, BG * NIN);
    for (int i = 0; i < BG * NIN; i++)
        x[i] = 4.0f * x[i] - 1.0f;
    for (int b = 0; b < BG; b++)
        y[b] = (uint8_t)(b % NOUT), ids[b] = 40 + b;
    double worst = 0.0;
    optim *o_ref = NULL, *o_tp = NULL;
    EXPECT_OK(optim_create(&o_ref, &cfg, m->n_params));
    EXPECT_OK(optim_create(&o_tp, &cfg, t->n_params));
    for (int step = 0; step < STEPS; step++) {
        double lr = tp_ref_step(m, ws, x, y, ids, (uint32_t)step);
        double lt = tp_step(t, &g, &red, x, y, ids, (uint32_t)step);
        EXPECT_NEAR(lt, lr, 0.0, 1e-5, "loss of the global batch");
        if (step == 0) {
            EXPECT_OK(tpfc_to_model(t, got, 1));
            tp_expect_tensors(m, got->grads, m->grads, 1e-4, "gradient", &worst);
        }
        optim_step(o_ref, m->params, m->grads, cfg.train_lr);
        model_after_step(m);
        optim_step(o_tp, t->params, t->grads, cfg.train_lr);
        tpfc_after_step(t);
    }
    EXPECT_OK(tpfc_to_model(t, got, 0));
    /* Gathered onto the group's rank 0 alone: the same whole arrays. */
    const int root = t->grid.myrow == 0 && t->grid.mycol == 0;
    float *whole = root ? malloc(sizeof(float) * got->n_params) : NULL;
    EXPECT_OK(tpfc_full_to_root(t, root ? got : NULL, t->params, whole));
    if (root)
        EXPECT(whole && memcmp(whole, got->params, sizeof(float) * got->n_params) == 0,
               "M = %d: tpfc_full_to_root differs from tpfc_full_from_local", M);
    free(whole);
    double wworst = 0.0;
    tp_expect_tensors(m, got->params, m->params, 1e-5, "weights after steps", &wworst);

    tp_ckpt(&g, t, o_tp, got, &cfg);

    /* The exact ||W||_2: psgesvd against LAPACK on the gathered W. */
    EXPECT_OK(tpfc_prepare(t, 0));
    double exact_sigma = 0.0, power = 0.0;
    EXPECT_OK(tpfc_spectral_norm_exact(t, &exact_sigma));
    EXPECT_OK(tpfc_spectral_norm(t, 200, &power));
    EXPECT_OK(tpfc_to_model(t, got, 0));
    model_prepare_weights(got, 0);
    double want = tp_lapack_sigma(got->W, NH);
    EXPECT_NEAR(exact_sigma, want, 0.0, 1e-5, "psgesvd's sigma_max(W) against LAPACK's");
    EXPECT_NEAR(power, want, 0.0, 1e-2, "power-iteration estimate of ||W||_2");
    if (g.world_rank == 0)
        printf("M = %d, %d groups: gradients within %.2g of their largest entry, weights after "
               "%d steps within %.2g; sigma_max(W) %.6f (psgesvd) %.6f (LAPACK)\n",
               M, g.groups, worst, STEPS, wworst, exact_sigma, want);
    optim_destroy(&o_ref);
    optim_destroy(&o_tp);
    tpfc_destroy(&t);
    model_ws_destroy(&ws);
    model_destroy(&m);
    model_destroy(&got);
    grid_destroy(&g);
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int size = 1;
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    const int M = argc > 1 ? atoi(argv[1]) : 1;
    /* Bad grids: refused with both numbers named. */
    EXPECT(grid_check(3, 2) != 0 && strstr(status_message(), "parallel.model_ranks = 2") &&
               strstr(status_message(), "3 ranks"),
           "grid_check(3, 2): '%s'", status_message());
    status_clear();
    EXPECT(grid_check(4, 3) != 0 && strstr(status_message(), "4 ranks"), "grid_check(4, 3): '%s'",
           status_message());
    EXPECT(grid_check(4, 2) == 0 && grid_check(4, 4) == 0, "grid_check refused a good grid");
    status_clear();
    if (size % M != 0) {
        EXPECT(0, "test_tp %d run on %d ranks", M, size);
    } else {
        for (int ref = 0; ref < 2; ref++) /* both variants (docs/fidelity.md) */
            tp_case(M, ref);
    }
    int rc = check_finish("tp"), all = 0;
    MPI_Allreduce(&rc, &all, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return all;
}
