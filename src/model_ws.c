/* model_ws: the per-batch workspace of a model (model_impl.h's struct),
 * its views of one micro-shard's rows and the batch's layout over ranks. */
#include "model.h"

#include <float.h>
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "bn.h"
#include "bn2d.h"
#include "clock.h"
#include "dropout.h"
#include "equil.h"
#include "fc.h"
#include "linop.h"
#include "loss.h"
#include "mlnet.h"
#include "model_impl.h"
#include "netspec.h"
#include "reduce.h"
#include "rng.h"
#include "specnorm.h"
#include "status.h"
static const int model_buckets[3][2] = {{2, 4}, {0, 2}, {4, 5}};

/* The per-sample buffers of batches of up to Bmax rows. */
static int model_ws_rows(model_ws *w, const fsnn_model *m, const fsnn_cfg *cfg, int Bmax) {
    /* One size for the buffers of layer 1 (n1 per row) and of the state (n);
     * tmp is also the scratch of statistics over any layer. */
    const size_t nb = (size_t)m->n > (size_t)m->in_op.out ? (size_t)m->n : (size_t)m->in_op.out;
    const size_t ntmp = m->ml && (size_t)m->ml->n_max > nb ? (size_t)m->ml->n_max : nb;
    const size_t bn = (size_t)Bmax * nb;
    const int Cmax = m->ml && m->ml->C_max > m->channels ? m->ml->C_max : m->channels;
    float **bufs[] = {&w->h, &w->xhat, &w->bny, &w->x1, &w->dropx, &w->drops, &w->a,    &w->u,
                      &w->s, &w->cur,  &w->f,   &w->mv, &w->jac,   &w->ga,    &w->beta, &w->dx1};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        CHECK(XCALLOC(bufs[i], bn));
    CHECK(XCALLOC(&w->tmp, (size_t)Bmax * ntmp));
    CHECK(XCALLOC(&w->invstd, (size_t)m->channels));
    CHECK(XCALLOC(&w->evscale, (size_t)m->channels));
    if (cfg->data_dataset == DATASET_NMNIST) {
        CHECK(XCALLOC(&w->evx, (size_t)Bmax * m->n_in));
        CHECK(XCALLOC(&w->x1t, bn));
        CHECK(XCALLOC(&w->evxs, (size_t)Bmax * m->n_in));
        CHECK(XCALLOC(&w->evx1s, bn));
    }
    CHECK(XCALLOC(&w->idx, bn));
    CHECK(XCALLOC(&w->jidx, bn));
    CHECK(XCALLOC(&w->jnnz, (size_t)Bmax));
    CHECK(XCALLOC(&w->res, (size_t)Bmax));
    CHECK(XCALLOC(&w->logits, (size_t)Bmax * m->n_out));
    CHECK(XCALLOC(&w->dlogits, (size_t)Bmax * m->n_out));
    CHECK(XCALLOC(&w->stats, 4 * (size_t)Cmax));
    CHECK(XCALLOC(&w->bn_acc, 2 * (size_t)Cmax)); /* 2C: model_ml_stats */
    return FSNN_OK;
}

/* The micro-shards' buffers and the gradient sums' layout and buckets:
 * model_buckets (and the layers 2..L) with parallel.overlap, else one. */
static int model_ws_shards(model_ws *w, const fsnn_model *m, const fsnn_cfg *cfg) {
    w->n_sum = model_sum_count(m);
    float *dest[MODEL_SUMS_MAX];
    size_t count[MODEL_SUMS_MAX];
    w->n_sums = model_sum_layout(m, dest, count);
    w->nb = 1;
    w->bucket[0][0] = 0, w->bucket[0][1] = w->n_sums;
    if (cfg->parallel_overlap) {
        memcpy(w->bucket, model_buckets, sizeof model_buckets);
        w->nb = 3;
        if (w->n_sums > MODEL_SUMS_BASE)
            w->bucket[3][0] = MODEL_SUMS_BASE, w->bucket[3][1] = w->n_sums, w->nb = 4;
    }
    CHECK(XCALLOC(&w->shard_len, (size_t)w->max_shards));
    CHECK(XCALLOC(&w->group_off, (size_t)w->max_shards));
    CHECK(XCALLOC(&w->gsum, (size_t)w->max_shards * w->n_sum));
    CHECK(XCALLOC(&w->tleaf, (size_t)w->max_shards));
    CHECK(XCALLOC(&w->tleafval, (size_t)w->max_shards));
    size_t a = linop_ws_size(&m->in_op), b = linop_ws_size(&m->fb_op);
    w->ws_len = a > b ? a : b;
    if (m->ml && m->ml->ws_len > w->ws_len) w->ws_len = m->ml->ws_len;
    const int team = omp_get_max_threads();
    w->n_opws = w->max_shards > team ? w->max_shards : team;
    CHECK(XCALLOC(&w->opws, (size_t)w->n_opws * w->ws_len + 1));
    CHECK(XCALLOC(&w->gstats, (size_t)w->max_shards));
    return FSNN_OK;
}

/* The layers' buffers of a multi-layer net (two sets for model.loop_bn =
 * reference) and the adjoint's solvers: one per micro-shard in
 * deterministic mode, one for the whole batch in fast mode and for the
 * batch-wide solve of model.loop_bn = reference. */
static int model_ws_solvers(model_ws *w, const fsnn_model *m, const fsnn_cfg *cfg, int Bmax) {
    if (m->ml) CHECK(mlnet_ws_create(&w->mlw, m->ml, Bmax, w->max_shards));
    if (m->ml && m->loop_bn_ref) {
        if (cfg->solver_kind != SOLVER_BROYDEN && cfg->solver_kind != SOLVER_HALVING)
            return FAIL("solver.kind = %s: with model.loop_bn = reference the loop's BatchNorm "
                        "couples the samples in J^T, whose one system over the batch is solved "
                        "by broyden (or halving); set solver.kind = broyden or model.loop_bn = "
                        "consistent",
                        solver_name(cfg->solver_kind));
        CHECK(mlnet_ws_create(&w->mlw2, m->ml, Bmax, w->max_shards));
        CHECK(XCALLOC(&w->res2, (size_t)Bmax));
    }
    if (w->deterministic && !w->mlw2) {
        CHECK(XCALLOC(&w->gsolver, (size_t)w->max_shards));
        for (int g = 0; g < w->max_shards; g++)
            CHECK(solver_ws_create(&w->gsolver[g], cfg->solver_kind, w->micro, m->n,
                                   cfg->solver_max_iters, cfg->solver_anderson_m));
    }
    if (!w->deterministic || w->mlw2)
        CHECK(solver_ws_create(&w->solver, cfg->solver_kind, Bmax, m->n, cfg->solver_max_iters,
                               cfg->solver_anderson_m));
    return FSNN_OK;
}

int model_ws_create(model_ws **out, const fsnn_model *m, const fsnn_cfg *cfg, int Bmax) {
    model_ws *w;
    CHECK(XCALLOC(&w, 1));
    *out = w;
    w->Bmax = Bmax;
    /* Micro-shards hold at least one sample, so a rank has at most Bmax. */
    w->micro = cfg->parallel_micro_batch > 0 ? cfg->parallel_micro_batch : Bmax;
    w->max_shards = cfg->parallel_deterministic ? (Bmax + w->micro - 1) / w->micro : 1;
    if (w->max_shards < 1) w->max_shards = 1;
    w->red = reduce_local();
    w->deterministic = cfg->parallel_deterministic;
    w->overlap = cfg->parallel_overlap;
    w->solver_kind = cfg->solver_kind;
    w->max_iters = cfg->solver_max_iters;
    w->tol = cfg->solver_tol;
    CHECK(model_ws_rows(w, m, cfg, Bmax));
    CHECK(model_ws_shards(w, m, cfg));
    return model_ws_solvers(w, m, cfg, Bmax);
}

void model_ws_destroy(model_ws **pw) {
    model_ws *w = *pw;
    if (!w) return;
    float *bufs[] = {w->h,    w->xhat, w->bny,     w->x1,     w->dropx, w->drops,  w->a,
                     w->u,    w->s,    w->cur,     w->f,      w->mv,    w->jac,    w->ga,
                     w->beta, w->dx1,  w->tmp,     w->invstd, w->res,   w->logits, w->dlogits,
                     w->gsum, w->opws, w->evscale, w->evx,    w->x1t,   w->evxs,   w->evx1s};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    free(w->idx);
    free(w->jidx);
    free(w->jnnz);
    free(w->stats);
    free(w->bn_acc);
    free(w->shard_len);
    free(w->group_off);
    free(w->tnode);
    free(w->tnp);
    free(w->tval);
    free(w->trecv);
    free(w->tleaf);
    free(w->tleafval);
    solver_ws_destroy(&w->solver);
    if (w->gsolver)
        for (int g = 0; g < w->max_shards; g++)
            solver_ws_destroy(&w->gsolver[g]);
    free(w->gsolver);
    free(w->gstats);
    mlnet_ws_destroy(&w->mlw);
    mlnet_ws_destroy(&w->mlw2);
    free(w->res2);
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
double model_ws_kink(const model_ws *ws) {
    return ws->mlw ? ws->mlw->kink : NAN;
}
float *model_ws_logits(model_ws *ws) {
    return ws->logits;
}
float *model_ws_jac(model_ws *ws) {
    return ws->jac;
}
float *model_ws_f(model_ws *ws) {
    return ws->f;
}
const float *model_ws_layer_acc(const model_ws *ws, int l) {
    return ws->mlw ? ws->mlw->acc[l] : NULL;
}
float *model_ws_ga(model_ws *ws) {
    return ws->ga;
}

model_ws model_ws_view(const model_ws *ws, const fsnn_model *m, int g, int r0) {
    model_ws v = *ws;
    if (ws->gsolver) v.solver = ws->gsolver[g];
    v.row0 = r0;
    /* Layer 1's rows hold n1 values, the state's n (the same for one layer). */
    const long o = (long)r0 * m->n, o1 = (long)r0 * m->in_op.out;
    float **rows1[] = {&v.h, &v.xhat, &v.bny, &v.x1, &v.dropx, &v.drops, &v.dx1, &v.tmp};
    float **rows[] = {&v.a, &v.u, &v.s, &v.cur, &v.f, &v.mv, &v.jac, &v.ga, &v.beta};
    for (size_t i = 0; i < sizeof rows1 / sizeof rows1[0]; i++)
        *rows1[i] += o1;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        *rows[i] += o;
    v.idx += o;
    if (ws->x1t) v.x1t += o;
    if (ws->evx) v.evx += (long)r0 * m->n_in;
    if (ws->ev_x) v.ev_x += (long)r0 * m->n_in;
    if (ws->ev_x1) v.ev_x1 += o;
    if (ws->frames) v.frames += (long)r0 * ws->frames_T * m->n_in;
    v.jidx += o;
    v.jnnz += r0;
    v.opws += (size_t)g * ws->ws_len;
    v.res += r0;
    v.x += (long)r0 * m->n_in;
    v.logits += (long)r0 * m->n_out;
    v.dlogits += (long)r0 * m->n_out;
    return v;
}

int model_groups(model_ws *ws, int B, const int **len, int *whole) {
    *whole = B;
    ws->group_off[0] = 0;
    if (ws->deterministic && ws->n_shards > 0) {
        for (int g = 1; g < ws->n_shards; g++)
            ws->group_off[g] = ws->group_off[g - 1] + ws->shard_len[g - 1];
        *len = ws->shard_len;
        return ws->n_shards;
    }
    *len = whole;
    return 1;
}

void model_stats_merge(model_stats *st, const model_stats *g) {
    st->loss += g->loss;
    st->correct += g->correct;
    st->samples += g->samples;
    st->fwd_res_sum += g->fwd_res_sum;
    st->fwd_res_max = g->fwd_res_max > st->fwd_res_max ? g->fwd_res_max : st->fwd_res_max;
    st->adj_iters_sum += g->adj_iters_sum;
    st->adj_res2_sum += g->adj_res2_sum;
    st->adj_samples += g->adj_samples;
    st->sim.spikes += g->sim.spikes;
    st->sim.dense_steps += g->sim.dense_steps;
    st->sim.event_steps += g->sim.event_steps;
    st->t_input += g->t_input;
    st->t_sim += g->t_sim;
    st->t_adj += g->t_adj;
    st->t_grad += g->t_grad;
}

void model_ws_set_batch(model_ws *ws, const reduce_ops *red, long global_batch, int n_shards,
                        const int *shard_len) {
    ws->red = red;
    ws->has_layout = 1;
    ws->global_batch = global_batch;
    ws->n_shards = n_shards;
    for (int i = 0; i < n_shards; i++)
        ws->shard_len[i] = shard_len[i];
}
