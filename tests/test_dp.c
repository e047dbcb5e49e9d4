/* dp: the all-reduced gradient of a global batch spread over the ranks of
 * MPI_COMM_WORLD equals the gradient of the same batch computed by one
 * process alone (reduce_local): bit for bit in deterministic mode, within
 * float rounding (relative 1e-4 of the largest entry) in fast mode. Two
 * nets: FC 20-24-5 and conv 4C3s (F4C3) on 1x6x6 inputs (per-channel
 * BatchNorm sums and conv weight gradients in fixed point). Also the
 * reducer's reduce-scatter and all-gather against sums every rank computes
 * itself. Run under mpirun -np N; every rank checks. */
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "check.h"
#include "model.h"
#include "reducer.h"
#include "rng.h"
#include "status.h"
#include "testutil.h"

enum { NIN = 20, NH = 24, NOUT = 5, BG = 22, MICRO = 4, XMAX = 36 };

typedef struct {
    const char *net;
    int hidden; /* N of "N (FN)"; 0 for the conv net */
    int c, h, w;
} dp_net;

static const dp_net dp_nets[2] = {{"24 (F24)", NH, 1, 1, NIN}, {"4C3s (F4C3)", 0, 1, 6, 6}};

static void dp_cfg(fsnn_cfg *c, const dp_net *net, int deterministic, int ref) {
    memset(c, 0, sizeof *c);
    testutil_cfg_variant(c, ref);
    c->run_seed = 7;
    snprintf(c->model_net, sizeof c->model_net, "%s", net->net);
    c->model_hidden = net->hidden;
    c->model_time_steps = 5;
    c->model_spike_product = SPIKE_AUTO;
    c->neuron_vth = 2.0f;
    c->neuron_leak = 0.95f;
    c->solver_kind = SOLVER_BROYDEN;
    c->solver_max_iters = 30;
    c->solver_tol = 2e-10;
    c->solver_anderson_m = 5;
    c->train_batch = BG;
    c->train_test_batch = BG;
    c->train_dropout = 0.2f;
    c->parallel_deterministic = deterministic;
    c->parallel_micro_batch = MICRO;
}

/* Gradient of rows [first, first + B) of the batch, in n_shards shards. */
static void dp_grad(fsnn_model *m, model_ws *ws, const reduce_ops *red, const float *x,
                    const uint8_t *y, const long *ids, int first, int B, int n_shards,
                    const int *lens, float *out) {
    model_stats st;
    memset(&st, 0, sizeof st);
    model_prepare_weights(m, 0);
    model_ws_set_batch(ws, red, BG, n_shards, lens);
    EXPECT_OK(model_input(m, ws, x + (long)first * m->n_in, B, 1, ids + first, 3, 7));
    model_simulate(m, ws, B, &st);
    EXPECT_OK(model_loss(m, ws, y + first, B, (double)BG, 1, &st));
    memcpy(out, m->grads, sizeof(float) * m->n_params);
}

/* The reference is one process reducing all gradients at once
 * (parallel.overlap off); `overlap` is the setting of the ranks' run. */
static void dp_case(const reduce_ops *red, const dp_net *net, int deterministic, int overlap,
                    int variant) {
    fsnn_cfg cfg;
    dp_cfg(&cfg, net, deterministic, variant);
    blas_set_serial(deterministic);
    fsnn_model *m = NULL;
    model_ws *ws = NULL, *ws_ref = NULL;
    EXPECT_OK(model_create(&m, &cfg, net->c, net->h, net->w, NOUT));
    if (!m || m->n_in > XMAX) {
        EXPECT(0, "net %s: inputs beyond the test's buffer", net->net);
        model_destroy(&m);
        return;
    }
    const int nin = m->n_in;
    cfg.parallel_overlap = 0;
    EXPECT_OK(model_ws_create(&ws_ref, m, &cfg, BG));
    cfg.parallel_overlap = overlap;
    EXPECT_OK(model_ws_create(&ws, m, &cfg, BG));
    model_init(m, cfg.run_seed);
    float x[BG * XMAX], *ref = malloc(sizeof(float) * m->n_params);
    float *got = malloc(sizeof(float) * m->n_params);
    uint8_t y[BG];
    long ids[BG];
    rng_uniform_fill(11, RNG_TEST, 0, 0, x, BG * nin);
    for (int i = 0; i < BG * nin; i++)
        x[i] = 4.0f * x[i] - 1.0f;
    for (int b = 0; b < BG; b++)
        y[b] = (uint8_t)(b % NOUT), ids[b] = 100 + b;

    /* One process: every shard of the batch. */
    int lens[BG], nsh = deterministic ? (BG + MICRO - 1) / MICRO : 1;
    for (int s = 0; s < nsh; s++)
        lens[s] = deterministic ? (BG - s * MICRO < MICRO ? BG - s * MICRO : MICRO) : BG;
    dp_grad(m, ws_ref, reduce_local(), x, y, ids, 0, BG, nsh, lens, ref);

    /* This rank's block of shards (or of samples in fast mode), as trainer.c. */
    long units = deterministic ? nsh : BG;
    long lo = units * red->rank / red->size, hi = units * (red->rank + 1) / red->size;
    int first = deterministic ? (int)lo * MICRO : (int)lo, B = 0, mine = 0;
    int mylens[BG];
    for (long u = lo; u < hi; u++) {
        int len = deterministic ? lens[u] : 1;
        B += len;
        if (deterministic) mylens[mine++] = len;
    }
    if (!deterministic) mylens[mine++] = B;
    dp_grad(m, ws, red, x, y, ids, first, B, mine, mylens, got);

    double gmax = 0.0, dmax = 0.0;
    for (size_t k = 0; k < m->n_params; k++) {
        gmax = fmax(gmax, fabs(ref[k]));
        dmax = fmax(dmax, fabs((double)ref[k] - got[k]));
    }
    EXPECT(gmax > 0.0, "the reference gradient is zero");
    if (deterministic)
        EXPECT(memcmp(ref, got, sizeof(float) * m->n_params) == 0,
               "%s: rank %d of %d, overlap %d: deterministic gradient differs from one "
               "process's (max %g)",
               net->net, red->rank, red->size, overlap, dmax);
    else
        EXPECT(dmax <= 1e-4 * gmax,
               "%s: rank %d of %d, overlap %d: fast gradient differs by %g (max %g)", net->net,
               red->rank, red->size, overlap, dmax, gmax);
    free(ref);
    free(got);
    model_ws_destroy(&ws);
    model_ws_destroy(&ws_ref);
    model_destroy(&m);
}

/* Rank r has r % 3 pieces (none on some ranks), piece p holding
 * v[i] = i + 1000 (r + 1) + 0.5 p; after the reduce-scatter this rank's
 * recv holds, rank after rank (its own skipped) and piece after piece, its
 * block of those values, exactly. The all-gather of floats f[i] = i on the
 * owner (and -1 elsewhere before) gives every rank f[i] = i. Several
 * operations pending at once, of lengths smaller and larger than the ranks. */
static float dp_piece_value(int r, int p, size_t i) {
    return (float)i + 1000.0f * (float)(r + 1) + 0.5f * (float)p;
}

static void dp_scatter_gather(const reduce_ops *red) {
    enum { OPS = 3, MAXP = 2 };
    const size_t lens[OPS] = {(size_t)red->size > 1 ? (size_t)red->size - 1 : 1, 1000, 300007};
    const int np = red->rank % 3;
    int npieces[64];
    EXPECT(red->size <= 64, "at most 64 ranks in this test");
    for (int r = 0; r < red->size && r < 64; r++)
        npieces[r] = r % 3;
    float *v[OPS][MAXP], *recv[OPS], *f[OPS];
    reduce_req rs[OPS], ag[OPS];
    for (int k = 0; k < OPS; k++) {
        size_t lo, hi;
        reduce_block(lens[k], red->rank, red->size, &lo, &hi);
        recv[k] = malloc(sizeof(float) * (hi - lo) * MAXP * (size_t)red->size + 1);
        f[k] = malloc(sizeof(float) * lens[k]);
        EXPECT(recv[k] && f[k], "memory for %zu values", lens[k]);
        if (!recv[k] || !f[k]) return;
        for (int p = 0; p < np; p++) {
            v[k][p] = malloc(sizeof(float) * lens[k]);
            EXPECT(v[k][p] != NULL, "memory for %zu values", lens[k]);
            if (!v[k][p]) return;
            for (size_t i = 0; i < lens[k]; i++)
                v[k][p][i] = dp_piece_value(red->rank, p, i);
        }
        EXPECT_OK(red->start_scatter_f32(red->ctx, v[k], np, npieces, lens[k], recv[k], &rs[k]));
    }
    for (int k = 0; k < OPS; k++) {
        EXPECT_OK(red->wait(red->ctx, &rs[k]));
        size_t lo, hi, bad = 0, seen = 0;
        reduce_block(lens[k], red->rank, red->size, &lo, &hi);
        const float *at = recv[k];
        for (int r = 0; r < red->size; r++)
            for (int p = 0; r != red->rank && p < npieces[r]; p++, at += hi - lo)
                for (size_t i = lo; i < hi; i++, seen++)
                    bad += at[i - lo] != dp_piece_value(r, p, i);
        EXPECT(bad == 0, "reduce-scatter of %zu values over %d ranks: %zu of %zu wrong", lens[k],
               red->size, bad, seen);
        for (size_t i = 0; i < lens[k]; i++)
            f[k][i] = i >= lo && i < hi ? (float)i : -1.0f;
        EXPECT_OK(red->start_gather_f32(red->ctx, f[k], lens[k], &ag[k]));
    }
    for (int k = 0; k < OPS; k++) {
        EXPECT_OK(red->wait(red->ctx, &ag[k]));
        size_t bad = 0;
        for (size_t i = 0; i < lens[k]; i++)
            bad += f[k][i] != (float)i;
        EXPECT(bad == 0, "all-gather of %zu values over %d ranks: %zu wrong", lens[k], red->size,
               bad);
        for (int p = 0; p < np; p++)
            free(v[k][p]);
        free(recv[k]);
        free(f[k]);
    }
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    reduce_ops red;
    EXPECT_OK(reducer_world(&red));
    dp_scatter_gather(&red);
    dp_scatter_gather(reduce_local());
    /* Both variants of the algorithm (docs/fidelity.md). */
    for (int ref = 0; ref < 2; ref++)
        for (int k = 0; k < 2; k++)
            for (int overlap = 0; overlap < 2; overlap++) {
                dp_case(&red, &dp_nets[k], 1, overlap, ref);
                dp_case(&red, &dp_nets[k], 0, overlap, ref);
            }
    int rc = check_finish("dp");
    int all = 0;
    MPI_Allreduce(&rc, &all, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return all;
}
