/* solver: the adjoint equilibrium beta = J^T beta + g (SPEC §3, Eq. 3),
 * solved per sample. Each sample stops on its own when
 * ||J^T beta + g - beta|| < tol * sqrt(n), which implies the reference
 * stopping rule ||G|| < tol * sqrt(B n) for the whole batch while keeping a
 * sample's result independent of the other samples in its batch.
 *
 * Kinds: Broyden's good method with a limited-memory inverse (as the
 * reference's broyden(): B0 = -I, no line search, the lowest-residual
 * iterate is returned); the damped fixed-point iteration
 * beta <- (beta + J^T beta + g) / 2; Anderson acceleration (type II, history
 * m); an exact dense solve of (I - J^T) beta = g with LAPACK (dgesv, in
 * double) for verification and small networks; and the reference's N-MNIST
 * iteration beta <- (J^T beta + g) / 2 from beta = g, all max_iters of it,
 * which solves (2I - J^T) beta = g: a biased gradient (halving). */
#ifndef FSNN_SOLVER_H
#define FSNN_SOLVER_H

#include "cfg.h"

/* The operator: out[r] = J^T in[r] for the samples rows[0..nrows) (compact
 * buffers [nrows x n]); `dense` writes J^T of sample b as [n x n] doubles and
 * is needed only by the exact solver. */
typedef struct {
    void (*apply)(void *ctx, const int *rows, int nrows, const float *in, float *out);
    void (*dense)(void *ctx, int b, double *Jt);
    void *ctx;
    int n;
} solver_op;

typedef struct {
    double iters_mean; /* operator applications per sample */
    int iters_max;
    double residual; /* ||J^T beta + g - beta|| over the batch */
    int converged;   /* samples that met the tolerance */
} solver_stats;

typedef struct solver_ws solver_ws;

/* Workspace for batches of up to Bmax samples of size n. */
int solver_ws_create(solver_ws **ws, cfg_solver kind, int Bmax, int n, int max_iters,
                     int anderson_m);
void solver_ws_destroy(solver_ws **ws);

/* Solves for the B rows of g [B x n] into beta [B x n]. */
int solver_solve(solver_ws *ws, const solver_op *op, const float *g, float *beta, int B,
                 int max_iters, double tol, solver_stats *st);

/* Sums `count` local values into *out over every rank. Collective. */
typedef int (*solver_sum_fn)(void *ctx, const float *vals, int count, double *out);

/* The reference's batch-wide solve, for a J^T that couples the samples of
 * the batch (the multi-layer nets' BatchNorm in training mode, model.loop_bn
 * = reference): op->apply always gets all B rows. Broyden: each sample's
 * recurrence as solver_solve's, all in step, one stopping test on the
 * residual of the whole batch over all ranks, ||G|| < tol * sqrt(n_total)
 * (n_total: values over all ranks), and the iterate of the lowest such
 * residual returned, as the reference's broyden() does. Halving: as
 * solver_solve's. Other kinds are refused. Collective through `sum`. */
int solver_solve_batch(solver_ws *ws, const solver_op *op, const float *g, float *beta, int B,
                       int max_iters, double tol, long n_total, solver_sum_fn sum, void *sctx,
                       solver_stats *st);

const char *solver_name(cfg_solver kind);

#endif
