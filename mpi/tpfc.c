/* tpfc: the FC feedback net with F and V distributed over a model group. */
#include "tpfc.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"     // defines: blas_gemm
#include "bn2d.h"     // defines: bn2d_sums, bn2d_normalize_train, bn2d_vjp_apply
#include "clock.h"    // defines: clock_seconds
#include "equil.h"    // defines: equil_clamp
#include "fc.h"       // defines: fc_row_sums, fc_init_row, fc_init_rows
#include "neuron.h"   // defines: neuron_simulate_product
#include "solver.h"   // defines: solver_solve
#include "specnorm.h" // defines: specnorm_init_vectors, specnorm_clamp_g
#include "status.h"

/* Per-batch buffers: the replicated [B x n] arrays of model.c's workspace,
 * and this rank's blocks of the n x B (n_in x B) matrices that psgemm
 * reads and writes. */
typedef struct tpfc_ws {
    int Bmax;
    float *h, *xhat, *bny, *x1, *dropx, *drops, *a, *u, *s, *cur, *f, *mv, *jac, *ga, *beta, *dx1,
        *tmp;
    float *res, *logits, *dlogits, *invstd;
    double *stats; /* [4 n]: mean, var; then sum dy, sum dy xhat */
    int use_drop;
    float *lin, *lout, *lx; /* local blocks: n x Bmax, n x Bmax, n_in x Bmax */
    solver_ws *solver;
    int max_iters;
    double tol;
    int failed; /* a product inside a callback failed (reported after it) */
} tpfc_ws;

static void tpfc_point(tpfc_tensors *v, float *base, const size_t *off) {
    float **t[TPFC_N_TENSORS] = {&v->F, &v->Fb, &v->bn_w, &v->bn_b, &v->V, &v->g, &v->Wo, &v->bo};
    for (int i = 0; i < TPFC_N_TENSORS; i++)
        *t[i] = base + off[i];
}

/* Floats of a distributed matrix's local array. */
static size_t tpfc_local(const dist_mat *A) {
    return (size_t)A->lld * (size_t)A->lcols;
}

static int tpfc_ws_create(tpfc *t, const fsnn_cfg *cfg, int Bmax) {
    tpfc_ws *w;
    CHECK(XCALLOC(&w, 1));
    t->ws = w;
    w->Bmax = Bmax;
    const size_t bn = (size_t)Bmax * t->n;
    float **bufs[] = {&w->h,   &w->xhat, &w->bny,  &w->x1,  &w->dropx, &w->drops,
                      &w->a,   &w->u,    &w->s,    &w->cur, &w->f,     &w->mv,
                      &w->jac, &w->ga,   &w->beta, &w->dx1, &w->tmp};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        CHECK(XCALLOC(bufs[i], bn));
    CHECK(XCALLOC(&w->res, (size_t)Bmax));
    CHECK(XCALLOC(&w->logits, (size_t)Bmax * t->n_out));
    CHECK(XCALLOC(&w->dlogits, (size_t)Bmax * t->n_out));
    CHECK(XCALLOC(&w->invstd, (size_t)t->n));
    CHECK(XCALLOC(&w->stats, 4 * (size_t)t->n));
    int lr, lc, xr, xc;
    dist_local_size(&t->grid, t->n, Bmax, &lr, &lc);
    dist_local_size(&t->grid, t->n_in, Bmax, &xr, &xc);
    const size_t ln = (size_t)(lr > 1 ? lr : 1) * (size_t)(lc > 1 ? lc : 1);
    CHECK(XCALLOC(&w->lin, ln));
    CHECK(XCALLOC(&w->lout, ln));
    CHECK(XCALLOC(&w->lx, (size_t)(xr > 1 ? xr : 1) * (size_t)(xc > 1 ? xc : 1)));
    CHECK(solver_ws_create(&w->solver, cfg->solver_kind, Bmax, t->n, cfg->solver_max_iters,
                           cfg->solver_anderson_m));
    w->max_iters = cfg->solver_max_iters;
    w->tol = cfg->solver_tol;
    return FSNN_OK;
}

static void tpfc_ws_destroy(tpfc_ws **pw) {
    tpfc_ws *w = *pw;
    if (!w) return;
    float *bufs[] = {w->h,   w->xhat, w->bny,    w->x1,      w->dropx,  w->drops, w->a,    w->u,
                     w->s,   w->cur,  w->f,      w->mv,      w->jac,    w->ga,    w->beta, w->dx1,
                     w->tmp, w->res,  w->logits, w->dlogits, w->invstd, w->lin,   w->lout, w->lx};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    free(w->stats);
    solver_ws_destroy(&w->solver);
    free(w);
    *pw = NULL;
}

int tpfc_create(tpfc **out, const fsnn_cfg *cfg, int n_in, int n_out, MPI_Comm comm, int block,
                int Bmax) {
    tpfc *t;
    CHECK(XCALLOC(&t, 1));
    *out = t;
    const int n = cfg->model_hidden;
    if (n <= 0 || n_in <= 0 || n_out <= 0 || Bmax <= 0)
        return FAIL("parallel.model_ranks > 1 shards only fully connected nets 'N (FN)'; "
                    "model.net '%s' is not one (input %d values, hidden %d, classes %d)",
                    cfg->model_net, n_in, n, n_out);
    if (cfg->solver_kind == SOLVER_EXACT)
        return FAIL("solver.kind = exact needs the whole feedback matrix on one rank; with "
                    "parallel.model_ranks > 1 use broyden, fixed_point or anderson");
    t->n_in = n_in;
    t->n = n;
    t->n_out = n_out;
    t->T = cfg->model_time_steps;
    t->vth = cfg->neuron_vth;
    t->leak = cfg->neuron_leak;
    t->dropout = cfg->train_dropout;
    t->ref = cfg->model_fidelity == FIDELITY_REFERENCE;
    CHECK(dist_grid_create(&t->grid, comm, block));
    /* Sizes first (views on NULL), then one allocation each for params and grads. */
    CHECK(dist_mat_view(&t->grid, n_in, n, NULL, &t->Fd));
    CHECK(dist_mat_view(&t->grid, n, n, NULL, &t->Vd));
    const size_t count[TPFC_N_TENSORS] = {tpfc_local(&t->Fd), (size_t)n,          (size_t)n,
                                          (size_t)n,          tpfc_local(&t->Vd), 1,
                                          (size_t)n_out * n,  (size_t)n_out};
    size_t off = 0;
    for (int i = 0; i < TPFC_N_TENSORS; i++) {
        t->off[i] = off;
        off += count[i];
    }
    t->n_params = off;
    CHECK(XCALLOC(&t->params, off));
    CHECK(XCALLOC(&t->grads, off));
    tpfc_point(&t->p, t->params, t->off);
    tpfc_point(&t->d, t->grads, t->off);
    t->Fd.a = t->p.F;
    t->Vd.a = t->p.V;
    t->dFd = t->Fd;
    t->dFd.a = t->d.F;
    t->dVd = t->Vd;
    t->dVd.a = t->d.V;
    CHECK(XCALLOC(&t->bn_mean, (size_t)n));
    CHECK(XCALLOC(&t->bn_var, (size_t)n));
    CHECK(XCALLOC(&t->sn_u, (size_t)n));
    CHECK(XCALLOC(&t->sn_v, (size_t)n));
    CHECK(XCALLOC(&t->ev_u, (size_t)n));
    CHECK(XCALLOC(&t->ev_v, (size_t)n));
    return tpfc_ws_create(t, cfg, Bmax);
}

void tpfc_destroy(tpfc **pt) {
    tpfc *t = *pt;
    if (!t) return;
    tpfc_ws_destroy(&t->ws);
    dist_grid_destroy(&t->grid);
    free(t->params);
    free(t->grads);
    free(t->ev_u);
    free(t->ev_v);
    free(t->bn_mean);
    free(t->bn_var);
    free(t->sn_u);
    free(t->sn_v);
    free(t);
    *pt = NULL;
}

/* The scale of W = clamp(g) V / sigma (specnorm_weight's). */
static float tpfc_wscale(const tpfc *t) {
    return t->sigma != 0.0f ? specnorm_clamp_g(t->p.g[0]) / t->sigma : 0.0f;
}

/* out [B x m] = alpha op(A) applied to each row of in [B x k], where A is a
 * distributed matrix of the model and op 'T' or 'N' on its stored (column-
 * major) form: rows of `in` are the columns of a k x B matrix. `lin` holds
 * the local blocks of in (n_in x B or n x B). Collective. */
static int tpfc_apply(tpfc *t, const dist_mat *A, char op, float alpha, const float *in, int k,
                      float *out, int m, int B, float *lin) {
    dist_mat X, Y;
    CHECK(dist_mat_view(&t->grid, k, B, lin, &X));
    CHECK(dist_mat_view(&t->grid, m, B, t->ws->lout, &Y));
    dist_scatter(in, k, &X);
    CHECK(dist_gemm(op, 'N', alpha, A, &X, 0.0f, &Y));
    return dist_gather(&t->grid, &Y, out, m);
}

/* out = W v for rows v of in [B x n] (V^T stored: op 'T'). */
static int tpfc_w(tpfc *t, const float *in, float *out, int B) {
    return tpfc_apply(t, &t->Vd, 'T', tpfc_wscale(t), in, t->n, out, t->n, B, t->ws->lin);
}

/* out = W^T v for rows v of in [B x n]. */
static int tpfc_wt(tpfc *t, const float *in, float *out, int B) {
    return tpfc_apply(t, &t->Vd, 'N', tpfc_wscale(t), in, t->n, out, t->n, B, t->ws->lin);
}

/* specnorm_normalise: a zero vector stays zero. */
static void tpfc_normalise(float *x, int n) {
    float nrm = cblas_snrm2(n, x, 1);
    if (nrm > 1e-12f) cblas_sscal(n, 1.0f / nrm, x, 1);
}

/* specnorm_power on the distributed V with the vectors u, v [n]:
 * v = V^T u, u = V v, sigma = u^T V v. */
static int tpfc_power(tpfc *t, float *u, float *v, int iters, float *sigma) {
    const int n = t->n;
    float *work = t->ws->f; /* [n] of a free buffer */
    for (int it = 0; it < iters; it++) {
        CHECK(tpfc_apply(t, &t->Vd, 'N', 1.0f, u, n, v, n, 1, t->ws->lin));
        tpfc_normalise(v, n);
        CHECK(tpfc_apply(t, &t->Vd, 'T', 1.0f, v, n, u, n, 1, t->ws->lin));
        tpfc_normalise(u, n);
    }
    CHECK(tpfc_apply(t, &t->Vd, 'T', 1.0f, v, n, work, n, 1, t->ws->lin));
    *sigma = cblas_sdot(n, u, 1, work, 1);
    return FSNN_OK;
}

int tpfc_prepare(tpfc *t, int power_iters) {
    return tpfc_power(t, t->sn_u, t->sn_v, power_iters, &t->sigma);
}

int tpfc_prepare_eval(tpfc *t, int power_iters) {
    memcpy(t->ev_u, t->sn_u, sizeof(float) * (size_t)t->n);
    memcpy(t->ev_v, t->sn_v, sizeof(float) * (size_t)t->n);
    return tpfc_power(t, t->ev_u, t->ev_v, power_iters, &t->sigma);
}

/* Local blocks of the stored transpose of a row-major [rows x cols] weight
 * drawn by fc_init_rows: each local column is one of its rows. */
static int tpfc_init_rows(const tpfc *t, dist_mat *A, uint64_t seed, unsigned tid) {
    float *row;
    CHECK(XCALLOC(&row, (size_t)A->m));
    for (int jl = 0; jl < A->lcols; jl++) {
        fc_init_row(row, dist_col_global(&t->grid, jl), A->m, seed, tid);
        for (int il = 0; il < A->lrows; il++)
            A->a[(long)jl * A->lld + il] = row[dist_row_global(&t->grid, il)];
    }
    free(row);
    return FSNN_OK;
}

int tpfc_init(tpfc *t, uint64_t seed) {
    memset(t->params, 0, sizeof(float) * t->n_params);
    CHECK(tpfc_init_rows(t, &t->Fd, seed, 0));
    CHECK(tpfc_init_rows(t, &t->Vd, seed, 1));
    if (t->ref) { /* model_init's readout */
        const float bound = 1.0f / sqrtf((float)t->n);
        fc_init_uniform(t->p.Wo, (long)t->n_out * t->n, bound, seed, 2);
        fc_init_uniform(t->p.bo, t->n_out, bound, seed, FC_TID_READOUT_BIAS);
    } else {
        fc_init_rows(t->p.Wo, t->n_out, t->n, seed, 2);
    }
    for (int j = 0; j < t->n; j++) {
        t->p.bn_w[j] = 1.0f;
        t->bn_mean[j] = 0.0f;
        t->bn_var[j] = 1.0f;
    }
    specnorm_init_vectors(t->sn_u, t->n, t->sn_v, t->n, seed);
    CHECK(tpfc_power(t, t->sn_u, t->sn_v, 10, &t->sigma));
    t->p.g[0] = t->ref ? t->sigma : specnorm_clamp_g(t->sigma);
    return tpfc_prepare(t, 0);
}

/* m is a one-process FC model of t's sizes. */
static int tpfc_check_sizes(const tpfc *t, const fsnn_model *m) {
    if (m->n_in != t->n_in || m->n != t->n || m->n_out != t->n_out || m->in_op.kind != LINOP_FC)
        return FAIL("tpfc: model %d-%d-%d does not match %d-%d-%d", m->n_in, m->n, m->n_out,
                    t->n_in, t->n, t->n_out);
    return FSNN_OK;
}

/* The distributed tensors (F, V) of one params-layout array as dist_mats
 * over base; the whole tensors are at the same offsets in every rank. */
static void tpfc_views(const tpfc *t, const float *base, dist_mat *F, dist_mat *V) {
    *F = t->Fd;
    F->a = (float *)base + t->off[0];
    *V = t->Vd;
    V->a = (float *)base + t->off[4];
}

/* The whole (replicated) tensors: indices of model.h's order. */
static const int tpfc_whole[6] = {1, 2, 3, 5, 6, 7};

int tpfc_local_from_full(const tpfc *t, const fsnn_model *m, const float *full, float *local) {
    CHECK(tpfc_check_sizes(t, m));
    dist_mat F, V;
    tpfc_views(t, local, &F, &V);
    /* A row-major [r x c] weight is its column-major transpose: F^T, V^T. */
    dist_scatter(full + m->info[0].offset, t->n_in, &F);
    dist_scatter(full + m->info[4].offset, t->n, &V);
    for (int k = 0; k < 6; k++) {
        const model_tensor_info *ti = &m->info[tpfc_whole[k]];
        memcpy(local + t->off[tpfc_whole[k]], full + ti->offset, sizeof(float) * ti->count);
    }
    return FSNN_OK;
}

int tpfc_full_from_local(const tpfc *t, const fsnn_model *m, const float *local, float *full) {
    CHECK(tpfc_check_sizes(t, m));
    dist_mat F, V;
    tpfc_views(t, local, &F, &V);
    CHECK(dist_gather(&t->grid, &F, full + m->info[0].offset, t->n_in));
    CHECK(dist_gather(&t->grid, &V, full + m->info[4].offset, t->n));
    for (int k = 0; k < 6; k++) {
        const model_tensor_info *ti = &m->info[tpfc_whole[k]];
        memcpy(full + ti->offset, local + t->off[tpfc_whole[k]], sizeof(float) * ti->count);
    }
    return FSNN_OK;
}

void tpfc_whole_to_full(const tpfc *t, const fsnn_model *m, const float *local, float *full) {
    for (int k = 0; k < 6; k++) {
        const model_tensor_info *ti = &m->info[tpfc_whole[k]];
        memcpy(full + ti->offset, local + t->off[tpfc_whole[k]], sizeof(float) * ti->count);
    }
}

int tpfc_full_to_root(const tpfc *t, const fsnn_model *m, const float *local, float *full) {
    dist_mat F, V;
    tpfc_views(t, local, &F, &V);
    const int root = t->grid.myrow == 0 && t->grid.mycol == 0;
    if (root) CHECK(tpfc_check_sizes(t, m));
    CHECK(dist_gather_to(&t->grid, &F, root ? full + m->info[0].offset : NULL, t->n_in, 0));
    CHECK(dist_gather_to(&t->grid, &V, root ? full + m->info[4].offset : NULL, t->n, 0));
    if (!root) return FSNN_OK;
    for (int k = 0; k < 6; k++) {
        const model_tensor_info *ti = &m->info[tpfc_whole[k]];
        memcpy(full + ti->offset, local + t->off[tpfc_whole[k]], sizeof(float) * ti->count);
    }
    return FSNN_OK;
}

int tpfc_from_model(tpfc *t, const fsnn_model *m) {
    CHECK(tpfc_local_from_full(t, m, m->params, t->params));
    const size_t n = (size_t)t->n;
    memcpy(t->bn_mean, m->bn_mean, sizeof(float) * n);
    memcpy(t->bn_var, m->bn_var, sizeof(float) * n);
    memcpy(t->sn_u, m->sn_u, sizeof(float) * n);
    memcpy(t->sn_v, m->sn_v, sizeof(float) * n);
    t->sigma = m->sigma;
    return FSNN_OK;
}

void tpfc_state_to_model(const tpfc *t, fsnn_model *m) {
    const size_t n = (size_t)t->n;
    memcpy(m->bn_mean, t->bn_mean, sizeof(float) * n);
    memcpy(m->bn_var, t->bn_var, sizeof(float) * n);
    memcpy(m->sn_u, t->sn_u, sizeof(float) * n);
    memcpy(m->sn_v, t->sn_v, sizeof(float) * n);
    m->sigma = t->sigma;
}

int tpfc_to_model(const tpfc *t, fsnn_model *m, int grads) {
    CHECK(tpfc_full_from_local(t, m, t->params, m->params));
    if (grads) CHECK(tpfc_full_from_local(t, m, t->grads, m->grads));
    tpfc_state_to_model(t, m);
    return FSNN_OK;
}

/* --- passes --- */

/* Input branch (model_input): h = F x + b, BatchNorm over the batch of all
 * groups in training, dropout masks; x1. Collective. */
static int tpfc_input(tpfc *t, const float *x, int B, long Bg, int training, const long *ids,
                      uint32_t epoch, uint64_t seed, const reduce_ops *red) {
    tpfc_ws *w = t->ws;
    const int n = t->n;
    CHECK(tpfc_apply(t, &t->Fd, 'T', 1.0f, x, t->n_in, w->h, n, B, w->lx));
    for (int b = 0; b < B; b++)
        for (int j = 0; j < n; j++)
            w->h[(long)b * n + j] += t->p.Fb[j];
    if (training) {
        double *mean = w->stats, *var = w->stats + n;
        bn2d_sums(w->h, B, n, 1, mean);
        CHECK(red->sum_f64(red->ctx, mean, (size_t)n));
        for (int j = 0; j < n; j++)
            mean[j] /= (double)Bg;
        bn2d_sqdev_sums(w->h, mean, B, n, 1, var);
        CHECK(red->sum_f64(red->ctx, var, (size_t)n));
        for (int j = 0; j < n; j++)
            var[j] /= (double)Bg;
        bn2d_normalize_train(w->h, t->p.bn_w, t->p.bn_b, mean, var, Bg, t->bn_mean, t->bn_var,
                             w->xhat, w->invstd, w->bny, B, n, 1);
        if (t->ref) bn2d_update_running(mean, var, Bg, t->bn_mean, t->bn_var, n); /* model_input */
    } else {
        bn2d_forward_eval(w->h, t->p.bn_w, t->p.bn_b, t->bn_mean, t->bn_var, w->bny, B, n, 1);
    }
    w->use_drop = training && t->dropout > 0.0f;
    model_branch_dropout(w->bny, B, n, 1, w->use_drop ? t->dropout : 0.0f, seed, epoch, ids,
                         w->dropx, w->drops, w->x1);
    return FSNN_OK;
}

/* neuron_product: cur = W s, always as psgemm (the event path would need
 * the rows of W^T on every rank). */
static void tpfc_spike(void *ctx, const float *s, float *cur, int B, int event) {
    (void)event;
    tpfc *t = ctx;
    if (tpfc_w(t, s, cur, B) != 0) t->ws->failed = 1;
}

/* solver_op.apply: out[r] = W^T (jac[rows[r]] ⊙ in[r]). */
static void tpfc_apply_jt(void *ctx, const int *rows, int nrows, const float *in, float *out) {
    tpfc *t = ctx;
    tpfc_ws *w = t->ws;
    const int n = t->n;
    for (int r = 0; r < nrows; r++) {
        const float *jr = w->jac + (long)rows[r] * n, *vr = in + (long)r * n;
        float *tr = w->tmp + (long)r * n;
        for (int j = 0; j < n; j++)
            tr[j] = jr[j] * vr[j];
    }
    if (tpfc_wt(t, w->tmp, out, nrows) != 0) w->failed = 1;
}

/* The spectral restriction's VJP (specnorm_vjp) on the local blocks: d.V
 * holds dL/dW on entry and dL/dV on return; d.g is set. Collective. */
static int tpfc_sn_vjp(tpfc *t) {
    const float g = specnorm_clamp_g(t->p.g[0]), sigma = t->sigma;
    t->d.g[0] = 0.0f;
    if (sigma == 0.0f) {
        memset(t->d.V, 0, sizeof(float) * tpfc_local(&t->Vd));
        return FSNN_OK;
    }
    const dist_mat *V = &t->Vd;
    double gv = 0.0;
    for (int jl = 0; jl < V->lcols; jl++)
        for (int il = 0; il < V->lrows; il++) {
            const long k = (long)jl * V->lld + il;
            gv += (double)t->d.V[k] * V->a[k];
        }
    if (MPI_Allreduce(MPI_IN_PLACE, &gv, 1, MPI_DOUBLE, MPI_SUM, t->grid.comm) != MPI_SUCCESS)
        return FAIL("tpfc: all-reduce of the restriction's sum failed");
    const float a = g / sigma, c = (float)(-(double)g * gv / ((double)sigma * sigma));
    /* Entry (i, j) of V^T is V[j][i]: dV[j][i] += c u[j] v[i]. */
    for (int jl = 0; jl < V->lcols; jl++) {
        const float uj = t->sn_u[dist_col_global(&t->grid, jl)];
        float *col = t->d.V + (long)jl * V->lld;
        for (int il = 0; il < V->lrows; il++)
            col[il] = a * col[il] + c * uj * t->sn_v[dist_row_global(&t->grid, il)];
    }
    /* clamp's derivative: 1 on [-1, 1], else 0 (model_sn_vjp). */
    t->d.g[0] = g == t->p.g[0] ? (float)(gv / sigma) : 0.0f;
    return FSNN_OK;
}

/* Gradients of the batch (model_loss after the adjoint solve): BatchNorm's
 * VJP, the sample sums of every weight, their sum over the groups, then the
 * restriction's VJP. Collective. */
static int tpfc_grads(tpfc *t, const float *x, int B, long Bg, const reduce_ops *red) {
    tpfc_ws *w = t->ws;
    const int n = t->n, no = t->n_out;
    memset(t->grads, 0, sizeof(float) * t->n_params);
    double *sdy = w->stats + 2 * (size_t)n, *sdyx = w->stats + 3 * (size_t)n;
    bn2d_grad_sums(w->dx1, w->xhat, B, n, 1, sdy, sdyx);
    CHECK(red->sum_f64(red->ctx, sdy, 2 * (size_t)n));
    bn2d_vjp_apply(w->dx1, w->xhat, w->invstd, t->p.bn_w, sdy, sdyx, Bg, w->bny, B, n, 1);
    /* dF^T = x^T dh and dW^T = a^T (beta ⊙ jac) as n_in x n and n x n
     * products of the batch's columns. */
    dist_mat X, D, A;
    CHECK(dist_mat_view(&t->grid, t->n_in, B, w->lx, &X));
    CHECK(dist_mat_view(&t->grid, n, B, w->lin, &D));
    CHECK(dist_mat_view(&t->grid, n, B, w->lout, &A));
    dist_scatter(x, t->n_in, &X);
    dist_scatter(w->bny, n, &D);
    CHECK(dist_gemm('N', 'T', 1.0f, &X, &D, 0.0f, &t->dFd));
    dist_scatter(w->tmp, n, &D);
    dist_scatter(w->a, n, &A);
    CHECK(dist_gemm('N', 'T', 1.0f, &A, &D, 0.0f, &t->dVd));
    fc_row_sums(w->bny, B, n, t->d.Fb);
    blas_gemm(1, 0, no, n, B, 1.0f, w->dlogits, no, w->a, n, 0.0f, t->d.Wo, n);
    fc_row_sums(w->dlogits, B, no, t->d.bo);
    /* Over the groups: each group's blocks meet the same blocks of the
     * others (the data reducer joins ranks of the same place). BatchNorm's
     * sums are already whole. */
    if (red->size > 1) CHECK(red->sum_f32(red->ctx, t->grads, t->n_params));
    for (int j = 0; j < n; j++) {
        t->d.bn_w[j] = (float)sdyx[j];
        t->d.bn_b[j] = (float)sdy[j];
    }
    return tpfc_sn_vjp(t);
}

int tpfc_batch(tpfc *t, const float *x, const uint8_t *labels, const long *ids, int B,
               long global_batch, int grads, uint32_t epoch, uint64_t seed, const reduce_ops *red,
               model_stats *st) {
    tpfc_ws *w = t->ws;
    const int n = t->n;
    const long count = (long)B * n;
    if (B > w->Bmax)
        return FAIL("tpfc: batch of %d samples exceeds the workspace's %d", B, w->Bmax);
    w->failed = 0;
    double t0 = clock_seconds();
    CHECK(tpfc_input(t, x, B, global_batch, grads, ids, epoch, seed, red));
    double t1 = clock_seconds();
    neuron_dims dims = {B, n, t->T, t->vth, t->leak, SPIKE_DENSE};
    neuron_product prod = {tpfc_spike, t, 0.0, NULL, NULL, NULL};
    neuron_simulate_product(&dims, w->x1, &prod, w->use_drop ? w->drops : NULL, w->a, w->u, w->s,
                            w->cur, &st->sim, NULL, NULL);
    if (w->failed) return FAIL("tpfc: a distributed product of the simulation failed");
    double t2 = clock_seconds();
    st->t_input += t1 - t0;
    st->t_sim += t2 - t1;
    /* f at a[T], its residual, the readout and the loss (model_loss_rows). */
    CHECK(tpfc_w(t, w->a, w->f, B));
    equil_clamp(w->a, w->x1, w->use_drop ? w->drops : NULL, B, n, t->vth, w->f, w->mv, w->jac,
                w->res);
    model_readout(w->a, w->res, t->p.Wo, t->p.bo, labels, B, n, t->n_out, (double)global_batch,
                  w->logits, grads ? w->dlogits : NULL, w->ga, st);
    if (!grads) return FSNN_OK;
    solver_op op = {tpfc_apply_jt, NULL, t, n};
    solver_stats ss;
    CHECK(solver_solve(w->solver, &op, w->ga, w->beta, B, w->max_iters, w->tol, &ss));
    if (w->failed) return FAIL("tpfc: a distributed product of the adjoint solve failed");
    model_stats_adjoint(st, &ss, B);
    model_vjp_factors(w->beta, w->mv, w->jac, w->use_drop ? w->dropx : NULL, count, w->dx1, w->tmp);
    double t3 = clock_seconds();
    st->t_adj += t3 - t2;
    CHECK(tpfc_grads(t, x, B, global_batch, red));
    st->t_grad += clock_seconds() - t3;
    return FSNN_OK;
}

int tpfc_all_finite(tpfc *t, double loss, const reduce_ops *red, int *ok) {
    double bad = (isfinite(loss) && isfinite(reduce_maxabs(t->grads, t->n_params))) ? 0.0 : 1.0;
    CHECK(red->max_f64(red->ctx, &bad, 1));
    if (MPI_Allreduce(MPI_IN_PLACE, &bad, 1, MPI_DOUBLE, MPI_MAX, t->grid.comm) != MPI_SUCCESS)
        return FAIL("tpfc: all-reduce of the finiteness flag failed");
    *ok = bad == 0.0;
    return FSNN_OK;
}

void tpfc_after_step(tpfc *t) {
    if (!t->ref) t->p.g[0] = specnorm_clamp_g(t->p.g[0]);
}

int tpfc_spectral_norm(tpfc *t, int iters, double *sigma) {
    const int n = t->n;
    float *u = t->ws->f, *v = t->ws->cur; /* [n] each of free buffers */
    for (int i = 0; i < n; i++)
        v[i] = 1.0f / sqrtf((float)n);
    *sigma = 0.0;
    for (int it = 0; it < iters; it++) {
        CHECK(tpfc_w(t, v, u, 1));
        double nu = 0.0;
        for (int i = 0; i < n; i++)
            nu += (double)u[i] * u[i];
        nu = sqrt(nu);
        *sigma = nu;
        if (nu == 0.0) break;
        CHECK(tpfc_wt(t, u, v, 1));
        double nv = 0.0;
        for (int i = 0; i < n; i++) {
            v[i] = (float)(v[i] / nu);
            nv += (double)v[i] * v[i];
        }
        nv = sqrt(nv);
        if (nv == 0.0) break;
        for (int i = 0; i < n; i++)
            v[i] = (float)(v[i] / nv);
    }
    return FSNN_OK;
}

int tpfc_spectral_norm_exact(tpfc *t, double *sigma) {
    double sv = 0.0;
    CHECK(dist_sigma_max(&t->grid, &t->Vd, &sv));
    *sigma = fabs((double)tpfc_wscale(t)) * sv;
    return FSNN_OK;
}

const float *tpfc_ws_a(const tpfc *t) {
    return t->ws->a;
}
