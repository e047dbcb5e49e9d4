/* model: the "N (FN)" feedback SNN, its forward pass and implicit gradients. */
#include "model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "bn.h"
#include "clock.h"
#include "dropout.h"
#include "equil.h"
#include "fc.h"
#include "loss.h"
#include "rng.h"
#include "specnorm.h"
#include "status.h"

struct model_ws {
    int Bmax;
    float *x;              /* [B x n_in] input of the batch (borrowed view) */
    float *h, *xhat, *bny; /* [B x n] input branch before/inside BN */
    float *invstd;         /* [n] */
    float *x1;             /* [B x n] input current */
    float *dropx, *drops;  /* [B x n] masks, NULL-equivalent when no dropout */
    int use_drop;
    float *a, *u, *s, *cur;
    int *idx;
    float *f, *mv, *jac, *res;
    float *logits, *dlogits; /* [B x n_out] */
    float *ga, *beta, *dx1, *tmp;
    solver_ws *solver;
    cfg_solver solver_kind;
    int max_iters;
    double tol;
    fsnn_model *m; /* the model whose operator `apply` uses */
};

static void model_point(model_tensors *t, float *base, const fsnn_model *m) {
    t->F = base + m->info[0].offset;
    t->Fb = base + m->info[1].offset;
    t->bn_w = base + m->info[2].offset;
    t->bn_b = base + m->info[3].offset;
    t->V = base + m->info[4].offset;
    t->g = base + m->info[5].offset;
    t->Wo = base + m->info[6].offset;
    t->bo = base + m->info[7].offset;
}

int model_create(fsnn_model **out, const fsnn_cfg *cfg, int n_in, int n_out) {
    fsnn_model *m;
    CHECK(XCALLOC(&m, 1));
    *out = m;
    const int n = cfg->model_hidden;
    if (n <= 0 || n_in <= 0 || n_out <= 0)
        return FAIL("model: bad sizes (inputs %d, hidden %d, classes %d)", n_in, n, n_out);
    m->n_in = n_in;
    m->n = n;
    m->n_out = n_out;
    m->T = cfg->model_time_steps;
    m->vth = cfg->neuron_vth;
    m->leak = cfg->neuron_leak;
    m->dropout = cfg->train_dropout;
    m->spike_mode = cfg->model_spike_product;
    const struct {
        const char *name;
        int rank, d0, d1;
    } layout[MODEL_N_TENSORS] = {
        {"input.weight", 2, n, n_in}, {"input.bias", 1, n, 1},   {"input.bn.weight", 1, n, 1},
        {"input.bn.bias", 1, n, 1},   {"feedback.V", 2, n, n},   {"feedback.g", 1, 1, 1},
        {"readout.weight", 2, n_out, n}, {"readout.bias", 1, n_out, 1},
    };
    size_t off = 0;
    for (int i = 0; i < MODEL_N_TENSORS; i++) {
        model_tensor_info *ti = &m->info[i];
        ti->name = layout[i].name;
        ti->rank = layout[i].rank;
        ti->dims[0] = layout[i].d0;
        ti->dims[1] = layout[i].rank == 2 ? layout[i].d1 : 1;
        ti->offset = off;
        ti->count = (size_t)ti->dims[0] * ti->dims[1];
        off += ti->count;
    }
    m->n_params = off;
    CHECK(XCALLOC(&m->params, off));
    CHECK(XCALLOC(&m->grads, off));
    model_point(&m->p, m->params, m);
    model_point(&m->d, m->grads, m);
    CHECK(XCALLOC(&m->bn_mean, (size_t)n));
    CHECK(XCALLOC(&m->bn_var, (size_t)n));
    CHECK(XCALLOC(&m->sn_u, (size_t)n));
    CHECK(XCALLOC(&m->sn_v, (size_t)n));
    CHECK(XCALLOC(&m->W, (size_t)n * n));
    CHECK(XCALLOC(&m->Wt, (size_t)n * n));
    CHECK(XCALLOC(&m->gW, (size_t)n * n));
    CHECK(XCALLOC(&m->work, (size_t)n));
    return FSNN_OK;
}

void model_destroy(fsnn_model **pm) {
    fsnn_model *m = *pm;
    if (!m) return;
    free(m->params);
    free(m->grads);
    free(m->bn_mean);
    free(m->bn_var);
    free(m->sn_u);
    free(m->sn_v);
    free(m->W);
    free(m->Wt);
    free(m->gW);
    free(m->work);
    free(m);
    *pm = NULL;
}

void model_init(fsnn_model *m, uint64_t seed) {
    memset(m->params, 0, sizeof(float) * m->n_params);
    fc_init_rows(m->p.F, m->n, m->n_in, seed, 0);
    fc_init_rows(m->p.V, m->n, m->n, seed, 1);
    fc_init_rows(m->p.Wo, m->n_out, m->n, seed, 2);
    for (int j = 0; j < m->n; j++) {
        m->p.bn_w[j] = 1.0f;
        m->bn_mean[j] = 0.0f;
        m->bn_var[j] = 1.0f;
    }
    specnorm_init_vectors(m->sn_u, m->n, m->sn_v, m->n, seed);
    m->sigma = specnorm_power(m->p.V, m->n, m->n, m->sn_u, m->sn_v, 10, m->work);
    m->p.g[0] = specnorm_clamp_g(m->sigma);
    model_prepare_weights(m, 0);
}

long model_neurons(const fsnn_model *m) {
    return (long)m->n_in + m->n + m->n_out;
}

void model_prepare_weights(fsnn_model *m, int power_iters) {
    const int n = m->n;
    m->sigma = specnorm_power(m->p.V, n, n, m->sn_u, m->sn_v, power_iters, m->work);
    specnorm_weight(m->p.V, m->p.g[0], m->sigma, m->W, (long)n * n);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++) m->Wt[(long)j * n + i] = m->W[(long)i * n + j];
}

void model_after_step(fsnn_model *m) {
    m->p.g[0] = specnorm_clamp_g(m->p.g[0]);
}

/* --- workspace --- */

static void model_apply_jt(void *ctx, const int *rows, int nrows, const float *in, float *out) {
    model_ws *ws = ctx;
    equil_jt(ws->m->W, ws->jac, rows, nrows, ws->m->n, in, out, ws->tmp);
}

static void model_dense_jt(void *ctx, int b, double *Jt) {
    model_ws *ws = ctx;
    equil_jt_dense(ws->m->W, ws->jac + (long)b * ws->m->n, ws->m->n, Jt);
}

int model_ws_create(model_ws **out, const fsnn_model *m, const fsnn_cfg *cfg, int Bmax) {
    model_ws *w;
    CHECK(XCALLOC(&w, 1));
    *out = w;
    w->Bmax = Bmax;
    const size_t bn = (size_t)Bmax * m->n;
    float **bufs[] = {&w->h,   &w->xhat, &w->bny, &w->x1,  &w->dropx, &w->drops, &w->a,
                      &w->u,   &w->s,    &w->cur, &w->f,   &w->mv,    &w->jac,   &w->ga,
                      &w->beta, &w->dx1, &w->tmp};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) CHECK(XCALLOC(bufs[i], bn));
    CHECK(XCALLOC(&w->invstd, (size_t)m->n));
    CHECK(XCALLOC(&w->idx, bn));
    CHECK(XCALLOC(&w->res, (size_t)Bmax));
    CHECK(XCALLOC(&w->logits, (size_t)Bmax * m->n_out));
    CHECK(XCALLOC(&w->dlogits, (size_t)Bmax * m->n_out));
    w->solver_kind = cfg->solver_kind;
    w->max_iters = cfg->solver_max_iters;
    w->tol = cfg->solver_tol;
    CHECK(solver_ws_create(&w->solver, cfg->solver_kind, Bmax, m->n, cfg->solver_max_iters,
                           cfg->solver_anderson_m));
    return FSNN_OK;
}

void model_ws_destroy(model_ws **pw) {
    model_ws *w = *pw;
    if (!w) return;
    float *bufs[] = {w->h,  w->xhat, w->bny, w->x1, w->dropx, w->drops, w->a,  w->u,   w->s,
                     w->cur, w->f,   w->mv,  w->jac, w->ga,   w->beta,  w->dx1, w->tmp, w->invstd,
                     w->res, w->logits, w->dlogits};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) free(bufs[i]);
    free(w->idx);
    solver_ws_destroy(&w->solver);
    free(w);
    *pw = NULL;
}

float *model_ws_a(model_ws *ws) {
    return ws->a;
}
float *model_ws_x1(model_ws *ws) {
    return ws->x1;
}
float *model_ws_beta(model_ws *ws) {
    return ws->beta;
}
float *model_ws_logits(model_ws *ws) {
    return ws->logits;
}

/* --- passes --- */

void model_input(fsnn_model *m, model_ws *ws, const float *x, int B, int training,
                 const long *sample_ids, uint32_t epoch, uint64_t seed) {
    const int n = m->n;
    const long count = (long)B * n;
    ws->x = (float *)x;
    fc_forward(x, m->p.F, m->p.Fb, ws->h, B, m->n_in, n);
    if (training)
        bn_forward_train(ws->h, m->p.bn_w, m->p.bn_b, m->bn_mean, m->bn_var, ws->xhat, ws->invstd,
                         ws->bny, B, n);
    else
        bn_forward_eval(ws->h, m->p.bn_w, m->p.bn_b, m->bn_mean, m->bn_var, ws->bny, B, n);
    ws->use_drop = training && m->dropout > 0.0f;
    if (ws->use_drop) {
        dropout_mask(ws->dropx, B, n, m->dropout, seed, RNG_DROP_X, epoch, sample_ids);
        dropout_mask(ws->drops, B, n, m->dropout, seed, RNG_DROP_S, epoch, sample_ids);
        for (long k = 0; k < count; k++) ws->x1[k] = ws->dropx[k] * ws->bny[k];
    } else {
        memcpy(ws->x1, ws->bny, sizeof(float) * (size_t)count);
    }
}

void model_simulate(fsnn_model *m, model_ws *ws, int B, model_stats *st) {
    neuron_dims d = {B, m->n, m->T, m->vth, m->leak, m->spike_mode};
    neuron_simulate(&d, ws->x1, m->W, m->Wt, ws->use_drop ? ws->drops : NULL, ws->a, ws->u, ws->s,
                    ws->cur, ws->idx, &st->sim);
}

void model_fixed_point(fsnn_model *m, model_ws *ws, int B, int iters) {
    const long count = (long)B * m->n;
    memset(ws->a, 0, sizeof(float) * (size_t)count);
    for (int it = 0; it < iters; it++) {
        equil_eval(ws->a, ws->x1, m->W, ws->use_drop ? ws->drops : NULL, B, m->n, m->vth, ws->f,
                   ws->mv, ws->jac, ws->res);
        memcpy(ws->a, ws->f, sizeof(float) * (size_t)count);
    }
}

double model_loss_value(fsnn_model *m, model_ws *ws, const uint8_t *labels, int B) {
    long correct = 0;
    fc_forward(ws->a, m->p.Wo, m->p.bo, ws->logits, B, m->n, m->n_out);
    return loss_softmax_xent(ws->logits, labels, B, m->n_out, NULL, 1.0, &correct) / B;
}

int model_loss(fsnn_model *m, model_ws *ws, const uint8_t *labels, int B, double scale, int grads,
               model_stats *st) {
    const int n = m->n;
    const long count = (long)B * n;
    double t0 = clock_seconds();
    equil_eval(ws->a, ws->x1, m->W, ws->use_drop ? ws->drops : NULL, B, n, m->vth, ws->f, ws->mv,
               ws->jac, ws->res);
    for (int b = 0; b < B; b++) {
        st->fwd_res_sum += ws->res[b];
        if (ws->res[b] > st->fwd_res_max) st->fwd_res_max = ws->res[b];
    }
    fc_forward(ws->a, m->p.Wo, m->p.bo, ws->logits, B, n, m->n_out);
    st->loss += loss_softmax_xent(ws->logits, labels, B, m->n_out, grads ? ws->dlogits : NULL,
                                  scale, &st->correct);
    st->samples += B;
    if (!grads) return FSNN_OK;

    memset(m->grads, 0, sizeof(float) * m->n_params);
    fc_vjp(ws->a, m->p.Wo, ws->dlogits, m->d.Wo, m->d.bo, ws->ga, B, n, m->n_out);
    double t1 = clock_seconds();

    /* Adjoint equilibrium beta = J_f(a*)^T beta + dL/da* (SPEC §3 step 1). */
    ws->m = m;
    solver_op op = {model_apply_jt, model_dense_jt, ws, n};
    solver_stats ss;
    CHECK(solver_solve(ws->solver, &op, ws->ga, ws->beta, B, ws->max_iters, ws->tol, &ss));
    st->adj_iters_sum += ss.iters_mean;
    st->adj_res_sum += ss.residual;
    st->batches++;
    double t2 = clock_seconds();

    /* VJP of f with beta (SPEC §3 step 2): through W to V and g, through x1 to
     * dropout, BatchNorm and the input layer. */
    memset(m->gW, 0, sizeof(float) * (size_t)n * n);
    equil_vjp_params(ws->beta, ws->a, ws->mv, ws->jac, B, n, ws->dx1, m->gW, ws->tmp);
    specnorm_vjp(m->p.V, m->sn_u, m->sn_v, m->p.g[0], m->sigma, m->gW, m->d.V, m->d.g, n, n);
    if (ws->use_drop)
        for (long k = 0; k < count; k++) ws->dx1[k] *= ws->dropx[k];
    bn_vjp(ws->dx1, ws->xhat, ws->invstd, m->p.bn_w, m->d.bn_w, m->d.bn_b, ws->tmp, B, n);
    fc_vjp(ws->x, m->p.F, ws->tmp, m->d.F, m->d.Fb, NULL, B, m->n_in, n);
    double t3 = clock_seconds();
    st->t_adj += t2 - t1;
    st->t_grad += (t1 - t0) + (t3 - t2);
    return FSNN_OK;
}

double model_spectral_norm(const fsnn_model *m, int iters) {
    const int n = m->n;
    float *u = m->work;
    double sigma = 0.0;
    /* Power iteration on W^T W with a fixed start; work in a local copy of v. */
    float *v = malloc(sizeof(float) * (size_t)n);
    if (!v) return NAN;
    for (int i = 0; i < n; i++) v[i] = 1.0f / sqrtf((float)n);
    for (int it = 0; it < iters; it++) {
        blas_gemm(0, 0, n, 1, n, 1.0f, m->W, n, v, 1, 0.0f, u, 1);
        double nu = 0.0;
        for (int i = 0; i < n; i++) nu += (double)u[i] * u[i];
        nu = sqrt(nu);
        sigma = nu;
        if (nu == 0.0) break;
        blas_gemm(1, 0, n, 1, n, (float)(1.0 / nu), m->W, n, u, 1, 0.0f, v, 1);
        double nv = 0.0;
        for (int i = 0; i < n; i++) nv += (double)v[i] * v[i];
        nv = sqrt(nv);
        if (nv == 0.0) break;
        for (int i = 0; i < n; i++) v[i] = (float)(v[i] / nv);
    }
    free(v);
    return sigma;
}
