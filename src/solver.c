/* solver: Broyden, fixed point, Anderson and exact adjoint solves. */
#include "solver.h"

#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "status.h"

struct solver_ws {
    cfg_solver kind;
    int Bmax, n, max_iters, m;
    float *x, *gx, *upd, *best; /* [Bmax x n] per-sample state */
    float *in, *out;            /* compact operator buffers [Bmax x n] */
    float *U, *Vt;              /* Broyden pairs [Bmax x max_iters x n] */
    float *hx, *hf;             /* Anderson history [Bmax x m x n] */
    double *H, *rhs;            /* Anderson normal equations [m x m], [m] */
    lapack_int *piv;
    double *A, *bvec; /* exact solve [n x n], [n] */
    float *lowest;    /* [Bmax] */
    int *rows, *iters, *nstep, *done;
};

const char *solver_name(cfg_solver kind) {
    static const char *const names[] = {"broyden", "fixed_point", "anderson", "exact", "halving"};
    return (unsigned)kind < 5 ? names[kind] : "?";
}

int solver_ws_create(solver_ws **out, cfg_solver kind, int Bmax, int n, int max_iters,
                     int anderson_m) {
    solver_ws *w;
    CHECK(XCALLOC(&w, 1));
    *out = w;
    w->kind = kind;
    w->Bmax = Bmax;
    w->n = n;
    w->max_iters = max_iters;
    w->m = anderson_m;
    size_t bn = (size_t)Bmax * n;
    CHECK(XCALLOC(&w->x, bn));
    CHECK(XCALLOC(&w->gx, bn));
    CHECK(XCALLOC(&w->upd, bn));
    CHECK(XCALLOC(&w->best, bn));
    CHECK(XCALLOC(&w->in, bn));
    CHECK(XCALLOC(&w->out, bn));
    CHECK(XCALLOC(&w->lowest, (size_t)Bmax));
    CHECK(XCALLOC(&w->rows, (size_t)Bmax));
    CHECK(XCALLOC(&w->iters, (size_t)Bmax));
    CHECK(XCALLOC(&w->nstep, (size_t)Bmax));
    CHECK(XCALLOC(&w->done, (size_t)Bmax));
    if (kind == SOLVER_BROYDEN) {
        CHECK(XCALLOC(&w->U, bn * (size_t)max_iters));
        CHECK(XCALLOC(&w->Vt, bn * (size_t)max_iters));
    } else if (kind == SOLVER_ANDERSON) {
        CHECK(XCALLOC(&w->hx, bn * (size_t)anderson_m));
        CHECK(XCALLOC(&w->hf, bn * (size_t)anderson_m));
        CHECK(XCALLOC(&w->H, (size_t)anderson_m * anderson_m));
        CHECK(XCALLOC(&w->rhs, (size_t)anderson_m));
        CHECK(XCALLOC(&w->piv, (size_t)(n > anderson_m ? n : anderson_m)));
    } else if (kind == SOLVER_EXACT) {
        CHECK(XCALLOC(&w->A, (size_t)n * n));
        CHECK(XCALLOC(&w->bvec, (size_t)n));
        CHECK(XCALLOC(&w->piv, (size_t)n));
    }
    return FSNN_OK;
}

void solver_ws_destroy(solver_ws **ws) {
    solver_ws *w = *ws;
    if (!w) return;
    free(w->x);
    free(w->gx);
    free(w->upd);
    free(w->best);
    free(w->in);
    free(w->out);
    free(w->U);
    free(w->Vt);
    free(w->hx);
    free(w->hf);
    free(w->H);
    free(w->rhs);
    free(w->piv);
    free(w->A);
    free(w->bvec);
    free(w->lowest);
    free(w->rows);
    free(w->iters);
    free(w->nstep);
    free(w->done);
    free(w);
    *ws = NULL;
}

/* Float sums vectorised through `omp simd` (the solver's tolerance is far
 * above their rounding). Plain loops rather than BLAS calls because they run
 * inside the per-sample parallel loop, where a threaded BLAS must not be
 * entered. */
static double solver_dot(const float *a, const float *b, int n) {
    float s = 0.0f;
#pragma omp simd reduction(+ : s)
    for (int i = 0; i < n; i++)
        s += a[i] * b[i];
    return s;
}

static double solver_norm(const float *a, int n) {
    return sqrt(solver_dot(a, a, n));
}

/* Gathers the samples not yet done into ws->rows; returns how many. */
static int solver_active(solver_ws *w, int B) {
    int nr = 0;
    for (int b = 0; b < B; b++)
        if (!w->done[b]) w->rows[nr++] = b;
    return nr;
}

/* Records the residual of sample b's iterate x: keeps the lowest one and
 * marks the sample done when it meets the tolerance. */
static void solver_track(solver_ws *w, int b, const float *x, double res, double thr) {
    const int n = w->n;
    if (res < w->lowest[b]) {
        w->lowest[b] = (float)res;
        memcpy(w->best + (long)b * n, x, sizeof(float) * (size_t)n);
    }
    if (res < thr) w->done[b] = 1;
}

static void solver_start(solver_ws *w, const float *g, int B, double thr) {
    const int n = w->n;
    memset(w->x, 0, sizeof(float) * (size_t)B * n);
    memset(w->best, 0, sizeof(float) * (size_t)B * n);
    memcpy(w->gx, g, sizeof(float) * (size_t)B * n);
    for (int b = 0; b < B; b++) {
        w->iters[b] = 0;
        w->nstep[b] = 0;
        w->done[b] = 0;
        w->lowest[b] = INFINITY;
        /* beta = 0 gives G = g: its residual is known without an application. */
        solver_track(w, b, w->x + (long)b * n, solver_norm(g + (long)b * n, n), thr);
    }
}

static void solver_broyden_update(solver_ws *w, int b, const float *dgx, int max_iters, float *tmp);

static void solver_broyden(solver_ws *w, const solver_op *op, const float *g, int B, int max_iters,
                           double thr) {
    const int n = w->n;
    memcpy(w->upd, g, sizeof(float) * (size_t)B * n);
    for (int it = 1; it <= max_iters; it++) {
        int nr = solver_active(w, B);
        if (nr == 0) break;
        for (int r = 0; r < nr; r++) {
            long o = (long)w->rows[r] * n;
            for (int j = 0; j < n; j++)
                w->in[(long)r * n + j] = w->x[o + j] + w->upd[o + j];
        }
        op->apply(op->ctx, w->rows, nr, w->in, w->out);
#pragma omp parallel for schedule(dynamic, 4) if ((long)nr * n > BLAS_PARALLEL_MIN)
        for (int r = 0; r < nr; r++) {
            int b = w->rows[r];
            long o = (long)b * n;
            float *x = w->x + o, *gx = w->gx + o;
            const float *xn = w->in + (long)r * n;
            float *gxn = w->out + (long)r * n; /* becomes G(xn), then dgx */
            for (int j = 0; j < n; j++)
                gxn[j] = gxn[j] + g[o + j] - xn[j];
            double res = solver_norm(gxn, n);
            w->iters[b]++;
            for (int j = 0; j < n; j++) {
                float t = gxn[j];
                gxn[j] = t - gx[j];
                gx[j] = t;
                x[j] = xn[j];
            }
            solver_track(w, b, x, res, thr);
            if (w->done[b] || it == max_iters) {
                w->done[b] = 1;
                continue;
            }
            solver_broyden_update(w, b, gxn, max_iters, w->in + (long)r * n); /* xn is spent */
        }
    }
}

/* Sample b's rank-one update of Broyden's low-rank inverse Jacobian
 * estimate B = -I + sum_i u_i vt_i^T (the reference's matvec; x^T B is its
 * rmatvec) and its next step: upd holds dx = x_new - x_old on entry and the
 * step -B gx on return; dgx is G(x_new) - G(x_old); tmp [n] is borrowed.
 *
 * The three products of the update, vt = dx^T B, u = B dgx and B gx, run
 * as one sweep over the k stored pairs, so each row of U and Vt comes from
 * memory once rather than three times (with n in the tens of thousands a
 * batch's pairs far exceed the caches). Each output still adds its terms in
 * the order i = 0 .. k, as three separate products would. */
static void solver_broyden_update(solver_ws *w, int b, const float *dgx, int max_iters,
                                  float *tmp) {
    const int n = w->n;
    const long o = (long)b * n;
    const float *gx = w->gx + o;
    float *upd = w->upd + o;
    const int k = w->nstep[b];
    float *U = w->U + o * max_iters, *Vt = w->Vt + o * max_iters;
    float *u = U + (long)k * n, *vt = Vt + (long)k * n;
    for (int j = 0; j < n; j++) {
        vt[j] = -upd[j];
        u[j] = -dgx[j];
        tmp[j] = -gx[j];
    }
    for (int i = 0; i < k; i++) {
        const float *ui = U + (long)i * n, *vi = Vt + (long)i * n;
        const float cu = (float)solver_dot(ui, upd, n);
        const float cd = (float)solver_dot(vi, dgx, n);
        const float cg = (float)solver_dot(vi, gx, n);
        for (int j = 0; j < n; j++) {
            vt[j] += cu * vi[j];
            u[j] += cd * ui[j];
            tmp[j] += cg * ui[j];
        }
    }
    double den = solver_dot(vt, dgx, n);
    if (den != 0.0 && isfinite(den)) {
        for (int j = 0; j < n; j++)
            u[j] = (float)((upd[j] - u[j]) / den);
        w->nstep[b] = k + 1;
        const float cg = (float)solver_dot(vt, gx, n);
        for (int j = 0; j < n; j++)
            tmp[j] += cg * u[j];
    }
    for (int j = 0; j < n; j++)
        upd[j] = -tmp[j];
}

static void solver_halving(solver_ws *w, const solver_op *op, const float *g, int B, int max_iters);

/* solver_solve_batch's Broyden: every sample's recurrence in step, one
 * residual over all samples of all ranks (w->lowest holds each sample's
 * squared residual for the sum). Returns the lowest global residual in
 * *best_res and the iterations in *iters. */
static int solver_broyden_batch(solver_ws *w, const solver_op *op, const float *g, int B,
                                int max_iters, double thr, solver_sum_fn sum, void *sctx,
                                double *best_res, int *iters) {
    const int n = w->n;
    const long count = (long)B * n;
    memset(w->x, 0, sizeof(float) * (size_t)count);
    memset(w->best, 0, sizeof(float) * (size_t)count);
    memcpy(w->gx, g, sizeof(float) * (size_t)count);
    memcpy(w->upd, g, sizeof(float) * (size_t)count);
    for (int b = 0; b < B; b++) {
        w->rows[b] = b;
        w->nstep[b] = 0;
        w->lowest[b] = (float)solver_dot(g + (long)b * n, g + (long)b * n, n);
    }
    double tot = 0.0;
    CHECK(sum(sctx, w->lowest, B, &tot));
    double lowest = sqrt(tot);
    *iters = 0;
    for (int it = 1; it <= max_iters && !(lowest < thr); it++) {
        for (long k = 0; k < count; k++)
            w->in[k] = w->x[k] + w->upd[k];
        op->apply(op->ctx, w->rows, B, w->in, w->out);
#pragma omp parallel for schedule(dynamic, 4) if (count > BLAS_PARALLEL_MIN)
        for (int b = 0; b < B; b++) {
            const long o = (long)b * n;
            float *x = w->x + o, *gx = w->gx + o;
            const float *xn = w->in + o;
            float *gxn = w->out + o; /* becomes G(xn), then dgx */
            for (int j = 0; j < n; j++)
                gxn[j] = gxn[j] + g[o + j] - xn[j];
            w->lowest[b] = (float)solver_dot(gxn, gxn, n);
            for (int j = 0; j < n; j++) {
                float t = gxn[j];
                gxn[j] = t - gx[j];
                gx[j] = t;
                x[j] = xn[j];
            }
        }
        CHECK(sum(sctx, w->lowest, B, &tot));
        const double res = sqrt(tot);
        *iters = it;
        if (res < lowest) {
            lowest = res;
            memcpy(w->best, w->x, sizeof(float) * (size_t)count);
        }
        if (res < thr || it == max_iters || !isfinite(res)) break;
#pragma omp parallel for schedule(dynamic, 4) if (count > BLAS_PARALLEL_MIN)
        for (int b = 0; b < B; b++)
            solver_broyden_update(w, b, w->out + (long)b * n, max_iters, w->in + (long)b * n);
    }
    *best_res = lowest;
    return FSNN_OK;
}

int solver_solve_batch(solver_ws *w, const solver_op *op, const float *g, float *beta, int B,
                       int max_iters, double tol, long n_total, solver_sum_fn sum, void *sctx,
                       solver_stats *st) {
    if (B > w->Bmax) return FAIL("solver: batch of %d exceeds the workspace's %d", B, w->Bmax);
    if (op->n != w->n) return FAIL("solver: operator size %d, workspace %d", op->n, w->n);
    if (w->kind != SOLVER_BROYDEN && w->kind != SOLVER_HALVING)
        return FAIL("solver '%s' cannot solve a batch whose samples J^T couples (BatchNorm in "
                    "training mode, model.loop_bn = reference): use broyden or halving",
                    solver_name(w->kind));
    if (max_iters > w->max_iters) max_iters = w->max_iters;
    const double thr = tol * sqrt((double)n_total);
    double res = 0.0;
    int iters = 0;
    if (w->kind == SOLVER_HALVING) {
        for (int b = 0; b < B; b++)
            w->iters[b] = 0;
        solver_halving(w, op, g, B, max_iters);
        for (int b = 0; b < B; b++)
            w->lowest[b] *= w->lowest[b];
        double tot = 0.0;
        CHECK(sum(sctx, w->lowest, B, &tot));
        res = sqrt(tot);
        iters = max_iters;
    } else {
        CHECK(solver_broyden_batch(w, op, g, B, max_iters, thr, sum, sctx, &res, &iters));
    }
    memcpy(beta, w->best, sizeof(float) * (size_t)B * w->n);
    st->iters_mean = iters;
    st->iters_max = iters;
    st->residual = res;
    st->converged = res < thr ? B : 0;
    return FSNN_OK;
}

static void solver_fixed_point(solver_ws *w, const solver_op *op, const float *g, int B,
                               int max_iters, double thr) {
    const int n = w->n;
    for (int it = 1; it <= max_iters; it++) {
        int nr = solver_active(w, B);
        if (nr == 0) break;
        /* x <- x + G(x)/2 with G(x) = J^T x + g - x from the last application. */
        for (int r = 0; r < nr; r++) {
            long o = (long)w->rows[r] * n;
            for (int j = 0; j < n; j++) {
                w->x[o + j] += 0.5f * w->gx[o + j];
                w->in[(long)r * n + j] = w->x[o + j];
            }
        }
        op->apply(op->ctx, w->rows, nr, w->in, w->out);
#pragma omp parallel for schedule(dynamic, 4) if ((long)nr * n > BLAS_PARALLEL_MIN)
        for (int r = 0; r < nr; r++) {
            int b = w->rows[r];
            long o = (long)b * n;
            for (int j = 0; j < n; j++)
                w->gx[o + j] = w->out[(long)r * n + j] + g[o + j] - w->x[o + j];
            w->iters[b]++;
            solver_track(w, b, w->x + o, solver_norm(w->gx + o, n), thr);
        }
    }
}

/* The reference's N-MNIST iteration: from beta = g, `max_iters` times
 * beta <- (J^T beta + g) / 2, always all of them, and the last iterate is
 * the result. Its fixed point solves (2I - J^T) beta = g, not the adjoint
 * equation; what is tracked (for the statistics only) is the adjoint
 * equation's residual of each iterate before its update. */
static void solver_halving(solver_ws *w, const solver_op *op, const float *g, int B,
                           int max_iters) {
    const int n = w->n;
    const long count = (long)B * n;
    memcpy(w->x, g, sizeof(float) * (size_t)count);
    for (int b = 0; b < B; b++) {
        w->rows[b] = b;
        w->done[b] = 0;
        w->lowest[b] = INFINITY;
    }
    for (int it = 1; it <= max_iters; it++) {
        memcpy(w->in, w->x, sizeof(float) * (size_t)count);
        op->apply(op->ctx, w->rows, B, w->in, w->out);
        for (int b = 0; b < B; b++) {
            const long o = (long)b * n;
            double r2 = 0.0;
            for (int j = 0; j < n; j++) {
                const float jt = w->out[o + j];
                const double d = (double)jt + g[o + j] - w->x[o + j];
                r2 += d * d;
                w->x[o + j] = (jt + g[o + j]) / 2.0f;
            }
            w->lowest[b] = (float)sqrt(r2);
            w->iters[b]++;
        }
    }
    memcpy(w->best, w->x, sizeof(float) * (size_t)count);
}

/* Type-II Anderson (Walker & Ni 2011) on F(x) = J^T x + g: x_{k+1} is the
 * combination of the last m values F(x_i) whose residuals' combination is
 * smallest, with the weights summing to one. */
static void solver_anderson(solver_ws *w, const solver_op *op, const float *g, int B, int max_iters,
                            double thr) {
    const int n = w->n, m = w->m;
    for (int it = 1; it <= max_iters; it++) {
        int nr = solver_active(w, B);
        if (nr == 0) break;
        for (int r = 0; r < nr; r++)
            memcpy(w->in + (long)r * n, w->x + (long)w->rows[r] * n, sizeof(float) * (size_t)n);
        op->apply(op->ctx, w->rows, nr, w->in, w->out);
        for (int r = 0; r < nr; r++) {
            int b = w->rows[r];
            long o = (long)b * n;
            float *x = w->x + o, *fx = w->out + (long)r * n;
            for (int j = 0; j < n; j++)
                fx[j] += g[o + j];
            int k = w->iters[b]++;
            int slot = k % m, mk = k + 1 < m ? k + 1 : m;
            float *hx = w->hx + o * m, *hf = w->hf + o * m;
            memcpy(hx + (long)slot * n, x, sizeof(float) * (size_t)n);
            memcpy(hf + (long)slot * n, fx, sizeof(float) * (size_t)n);
            double res2 = 0.0;
            for (int j = 0; j < n; j++)
                res2 += ((double)fx[j] - x[j]) * ((double)fx[j] - x[j]);
            solver_track(w, b, x, sqrt(res2), thr);
            if (w->done[b]) continue;
            double trace = 0.0;
            for (int i = 0; i < mk; i++)
                for (int q = 0; q <= i; q++) {
                    double s = 0.0;
                    const float *fi = hf + (long)i * n, *xi = hx + (long)i * n;
                    const float *fq = hf + (long)q * n, *xq = hx + (long)q * n;
                    for (int j = 0; j < n; j++)
                        s += ((double)fi[j] - xi[j]) * ((double)fq[j] - xq[j]);
                    w->H[i * mk + q] = w->H[q * mk + i] = s;
                    if (i == q) trace += s;
                }
            /* Tikhonov term keeps H invertible when residuals are colinear. */
            for (int i = 0; i < mk; i++) {
                w->H[i * mk + i] += 1e-10 * (trace > 0.0 ? trace : 1.0);
                w->rhs[i] = 1.0;
            }
            lapack_int info = LAPACKE_dgesv(LAPACK_ROW_MAJOR, mk, 1, w->H, mk, w->piv, w->rhs, 1);
            double sum = 0.0;
            for (int i = 0; i < mk; i++)
                sum += w->rhs[i];
            if (info != 0 || sum == 0.0 || !isfinite(sum)) {
                memcpy(x, fx, sizeof(float) * (size_t)n);
                continue;
            }
            for (int j = 0; j < n; j++) {
                double v = 0.0;
                for (int i = 0; i < mk; i++)
                    v += w->rhs[i] / sum * hf[(long)i * n + j];
                x[j] = (float)v;
            }
        }
    }
}

static int solver_exact(solver_ws *w, const solver_op *op, const float *g, int B, double thr) {
    const int n = w->n;
    if (!op->dense) return FAIL("solver 'exact' needs the dense Jacobian of the operator");
    for (int b = 0; b < B; b++) {
        op->dense(op->ctx, b, w->A);
        for (long k = 0; k < (long)n * n; k++)
            w->A[k] = -w->A[k];
        for (int i = 0; i < n; i++) {
            w->A[(long)i * n + i] += 1.0;
            w->bvec[i] = g[(long)b * n + i];
        }
        lapack_int info = LAPACKE_dgesv(LAPACK_ROW_MAJOR, n, 1, w->A, n, w->piv, w->bvec, 1);
        if (info != 0)
            return FAIL("exact adjoint solve: I - J^T is singular (dgesv info %d)", info);
        for (int i = 0; i < n; i++)
            w->x[(long)b * n + i] = (float)w->bvec[i];
        w->iters[b] = 1;
        w->rows[0] = b;
        /* Residual of the rounded solution, for the same report as the others. */
        op->apply(op->ctx, w->rows, 1, w->x + (long)b * n, w->out);
        double r2 = 0.0;
        for (int i = 0; i < n; i++) {
            double d = (double)w->out[i] + g[(long)b * n + i] - w->x[(long)b * n + i];
            r2 += d * d;
        }
        w->lowest[b] = (float)sqrt(r2);
        memcpy(w->best + (long)b * n, w->x + (long)b * n, sizeof(float) * (size_t)n);
        if (w->lowest[b] < thr) w->done[b] = 1;
    }
    return FSNN_OK;
}

int solver_solve(solver_ws *w, const solver_op *op, const float *g, float *beta, int B,
                 int max_iters, double tol, solver_stats *st) {
    if (B > w->Bmax) return FAIL("solver: batch of %d exceeds the workspace's %d", B, w->Bmax);
    if (op->n != w->n) return FAIL("solver: operator size %d, workspace %d", op->n, w->n);
    if (max_iters > w->max_iters) max_iters = w->max_iters;
    const int n = w->n;
    const double thr = tol * sqrt((double)n);
    solver_start(w, g, B, thr);
    switch (w->kind) {
    case SOLVER_BROYDEN:
        solver_broyden(w, op, g, B, max_iters, thr);
        break;
    case SOLVER_FIXED_POINT:
        solver_fixed_point(w, op, g, B, max_iters, thr);
        break;
    case SOLVER_ANDERSON:
        solver_anderson(w, op, g, B, max_iters, thr);
        break;
    case SOLVER_EXACT:
        CHECK(solver_exact(w, op, g, B, thr));
        break;
    case SOLVER_HALVING:
        solver_halving(w, op, g, B, max_iters);
        break;
    }
    memcpy(beta, w->best, sizeof(float) * (size_t)B * n);
    double it_sum = 0.0, r2 = 0.0;
    int it_max = 0, conv = 0;
    for (int b = 0; b < B; b++) {
        it_sum += w->iters[b];
        if (w->iters[b] > it_max) it_max = w->iters[b];
        r2 += (double)w->lowest[b] * w->lowest[b];
        conv += w->lowest[b] < thr;
    }
    st->iters_mean = B ? it_sum / B : 0.0;
    st->iters_max = it_max;
    st->residual = sqrt(r2);
    st->converged = conv;
    return FSNN_OK;
}
