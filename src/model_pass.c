/* model_pass: the passes of a batch: input branch, event input, the
 * spiking simulation and its trace, f, loss, the adjoint solve and the VJP
 * of f (SPEC §1-3), one micro-shard at a time or the whole batch at once. */
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
#include "dnn.h" // defines: dnn_hold_begin, dnn_hold_end
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

/* --- the adjoint's operators --- */

/* out[r] = W^T (jac[rows[r]] ⊙ in[r]) (equil_jt over any map), per sample
 * dense or from the non-zero entries of jac listed before the solve. */
static void model_apply_jt(void *ctx, const int *rows, int nrows, const float *in, float *out) {
    model_ws *ws = ctx;
    const fsnn_model *m = ws->m;
    linop_masked_transpose(&m->fb_op, m->W, m->Wa, ws->jac, ws->jidx, ws->jnnz, rows, nrows, in,
                           out, ws->tmp, m->spike_mode, ws->opws);
}

/* Jt[r][c] = W[c][r] jac[c] (equil_jt_dense over any map); NaN when the
 * dense matrix cannot be made, which the exact solve reports. */
static void model_dense_jt(void *ctx, int b, double *Jt) {
    model_ws *ws = ctx;
    const int n = ws->m->n;
    const float *jac = ws->jac + (long)b * n;
    if (linop_dense(&ws->m->fb_op, ws->m->W, Jt) != 0) {
        for (long k = 0; k < (long)n * n; k++)
            Jt[k] = NAN;
        return;
    }
    for (int r = 0; r < n; r++)
        for (int c = r + 1; c < n; c++) {
            double t = Jt[(long)r * n + c];
            Jt[(long)r * n + c] = Jt[(long)c * n + r];
            Jt[(long)c * n + r] = t;
        }
    for (int r = 0; r < n; r++)
        for (int c = 0; c < n; c++)
            Jt[(long)r * n + c] *= jac[c];
}

/* Layer 1's inputs to the stack of a multi-layer net, rows of view v. */
static mlnet_first model_first(const fsnn_model *m, const model_ws *v) {
    return (mlnet_first){&m->fb_op, m->W, m->Wt, v->x1, v->use_drop ? v->drops : NULL};
}

/* J^T of a multi-layer net (mlnet_jt) for the rows of view v. */
static void model_ml_apply_jt(void *ctx, const int *rows, int nrows, const float *in, float *out) {
    model_ws *v = ctx;
    const fsnn_model *m = v->m;
    const long o = (long)v->row0 * m->ml->n_max;
    mlnet_first f1 = model_first(m, v);
    /* A failed exchange (the message is kept) shows as a non-finite solve. */
    if (mlnet_jt(m->ml, v->mlw, &f1, v->row0, rows, nrows, in, out, v->mlw->p0 + o, v->mlw->p1 + o,
                 v->opws) != FSNN_OK)
        for (long k = 0; k < (long)nrows * m->n; k++)
            out[k] = NAN;
}

/* J^T of a multi-layer net as a dense matrix for row b of view v: J^T
 * applied to the unit vectors (exact solves of small nets); NaN when out of
 * memory, which the exact solve reports. */
static void model_ml_dense_jt(void *ctx, int b, double *Jt) {
    model_ws *v = ctx;
    const int n = v->m->n;
    float *e = calloc((size_t)n + (size_t)n * n, sizeof(float));
    if (!e) {
        for (long k = 0; k < (long)n * n; k++)
            Jt[k] = NAN;
        return;
    }
    float *y = e + n;
    /* One unit vector at a time: the scratch of mlnet_jt holds one row per sample. */
    for (int c = 0; c < n; c++) {
        e[c] = 1.0f;
        model_ml_apply_jt(v, &b, 1, e, y + (long)c * n);
        e[c] = 0.0f;
    }
    for (int r = 0; r < n; r++)
        for (int c = 0; c < n; c++)
            Jt[(long)r * n + c] = y[(long)c * n + r];
    free(e);
}

int model_input(fsnn_model *m, model_ws *ws, const float *x, int B, int training,
                const long *sample_ids, uint32_t epoch, uint64_t seed) {
    const int n = m->in_op.out; /* layer 1's neurons */
    ws->x = (float *)x;
    ws->training = training;
    ws->frames = NULL;
    if (!ws->has_layout || !training) {
        /* Evaluation, or one process without model_ws_set_batch: the rows in
         * micro-shards, which also spreads evaluation over the threads. */
        if (training) ws->global_batch = B;
        ws->n_shards = ws->deterministic ? (B + ws->micro - 1) / ws->micro : 1;
        for (int g = 0; g < ws->n_shards; g++)
            ws->shard_len[g] = B - g * ws->micro < ws->micro ? B - g * ws->micro : ws->micro;
    }
    const int *len;
    int whole, groups = model_groups(ws, B, &len, &whole);
    /* A parallel region only over several groups: an inactive region around
     * the one-group case would make the inner loops' teams nested ones,
     * whose idle threads spin against the outer pool (measured 2.5x slower). */
    if (groups == 1) {
        linop_forward(&m->in_op, m->p.F, m->p.Fb, x, ws->h, B, ws->opws);
    } else {
#pragma omp parallel for schedule(dynamic, 1)
        for (int g = 0; g < groups; g++) {
            const int r0 = ws->group_off[g];
            linop_forward(&m->in_op, m->p.F, m->p.Fb, x + (long)r0 * m->n_in, ws->h + (long)r0 * n,
                          len[g], ws->opws + (size_t)g * ws->ws_len);
        }
    }
    const int C = m->channels, hw = m->hw;
    if (training) {
        double *mean = ws->stats, *var = ws->stats + C;
        CHECK(model_bn_stats(ws, ws->h, B, C, hw, mean, var));
        bn2d_normalize_train(ws->h, m->p.bn_w, m->p.bn_b, mean, var, ws->global_batch * hw,
                             m->bn_mean, m->bn_var, ws->xhat, ws->invstd, ws->bny, B, C, hw);
        /* The reference evaluates the input branch in training mode twice a
         * step (simulation and f), each a running-statistics update; event
         * input's simulation uses its own statistics (model_set_events). */
        if (m->ref && !ws->evx)
            bn2d_update_running(mean, var, ws->global_batch * hw, m->bn_mean, m->bn_var, C);
        for (int j = 0; j < C; j++)
            ws->evscale[j] = m->p.bn_w[j] * ws->invstd[j];
    } else {
        bn2d_forward_eval(ws->h, m->p.bn_w, m->p.bn_b, m->bn_mean, m->bn_var, ws->bny, B, C, hw);
        for (int j = 0; j < C; j++) /* bn2d_forward_eval's scale */
            ws->evscale[j] = m->p.bn_w[j] / sqrtf(m->bn_var[j] + BN_EPS);
    }
    ws->use_drop = training && m->dropout > 0.0f;
    /* Channel masks with hw = 1 are the neuron masks (dropout.h). */
    const int mc = m->dropout_channel ? C : n, mhw = m->dropout_channel ? hw : 1;
    model_branch_dropout(ws->bny, B, mc, mhw, ws->use_drop ? m->dropout : 0.0f, seed, epoch,
                         sample_ids, ws->dropx, ws->drops, ws->x1);
    if (m->ml)
        mlnet_masks(m->ml, ws->mlw, B, ws->use_drop ? m->dropout : 0.0f, m->dropout_channel, seed,
                    epoch, sample_ids);
    if (ws->mlw2)
        mlnet_masks(m->ml, ws->mlw2, B, ws->use_drop ? m->dropout : 0.0f, m->dropout_channel, seed,
                    epoch, sample_ids);
    return FSNN_OK;
}

/* The row groups of ws (model_groups) as mlnet sees them; *whole is the
 * storage of the one group's length. */
static mlnet_groups model_ml_groups(model_ws *ws, int B, int *whole) {
    const int *len;
    int n = model_groups(ws, B, &len, whole);
    return (mlnet_groups){n, ws->group_off, len, ws->opws, ws->ws_len, ws->n_opws};
}

/* Whether BatchNorm in the loop takes the batch's statistics. */
static int model_ml_batch_bn(const fsnn_model *m, const model_ws *ws) {
    return ws->training && !m->loop_bn_running;
}

/* Whether the simulation's BatchNorm in the loop takes the batch's
 * statistics (model.loop_bn = consistent) or the running ones (reference:
 * the reference simulates with its loop BatchNorms in evaluation mode). */
static int model_ml_sim_batch_bn(const fsnn_model *m, const model_ws *ws) {
    return model_ml_batch_bn(m, ws) && !m->loop_bn_ref;
}

/* f of a multi-layer net at a [B x n] over all rows of ws (collective in
 * training): the layers into ws->mlw, f into ws->f, res into ws->res. */
static int model_ml_eval(const fsnn_model *m, model_ws *ws, const float *a, int B) {
    int whole;
    mlnet_groups g = model_ml_groups(ws, B, &whole);
    mlnet_first f1 = model_first(m, ws);
    CHECK(mlnet_eval_f(m->ml, ws->mlw, &f1, &g, B, a, model_ml_batch_bn(m, ws), model_ml_stats, ws,
                       ws->res));
    memcpy(ws->f, ws->mlw->a[m->ml->L - 1], sizeof(float) * (size_t)B * m->n);
    return FSNN_OK;
}

/* The weighted average sum_k lambda^k x[T-1-k] / norm(T) of sample b's
 * frames at input i (double). */
static double model_frames_avg(const fsnn_model *m, const float *frames, int T, int b, int i) {
    const int nin = m->n_in;
    double acc = 0.0, w = 1.0;
    for (int t = T; t >= 1; t--) {
        acc += w * frames[((long)b * T + (t - 1)) * nin + i];
        w *= m->leak;
    }
    return acc / neuron_rate_norm(T, m->leak);
}

void model_event_average(const fsnn_model *m, const float *frames, int T, int B, int training,
                         float *x) {
    const int nin = m->n_in;
    if (training && m->event_inplace && m->leak < 1.0f) {
        /* The reference's LIF average built in place in frame T-1: the
         * simulation's average xs is written there first, then summed again
         * with the earlier frames, the frame itself (now the running sum S)
         * included once more with weight lambda^T:
         *   x = (1 + lambda^T) S / norm(T + 1),  S = xs + sum_k>=1 lambda^k x[T-1-k]. */
        const double lT = pow(m->leak, T), norm1 = neuron_rate_norm(T + 1, m->leak);
        for (int b = 0; b < B; b++)
            for (int i = 0; i < nin; i++) {
                double s = (float)model_frames_avg(m, frames, T, b, i), w = 1.0;
                for (int t = T - 1; t >= 1; t--) {
                    w *= m->leak;
                    s += w * frames[((long)b * T + (t - 1)) * nin + i];
                }
                x[(long)b * nin + i] = (float)((1.0 + lT) * s / norm1);
            }
        return;
    }
    const double norm = neuron_rate_norm(T, m->leak);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < nin; i++) {
            double acc = 0.0, w = 1.0;
            /* sum_t lambda^(T-t) x[t], from t = T down */
            for (int t = T; t >= 1; t--) {
                acc += w * frames[((long)b * T + (t - 1)) * nin + i];
                w *= m->leak;
            }
            x[(long)b * nin + i] = (float)(acc / norm);
        }
}

/* The reference's simulation input in training (docs/fidelity.md): the
 * frames' average xs (IF: the mean; LIF: the weighted average), and the
 * input BatchNorm with the statistics of F xs + b over the whole batch,
 * the variance unbiased and eps 1e-8, no running update; its scale per
 * channel into evscale. data.event_average = inplace, LIF: the last step
 * sees xs itself (the reference overwrote that frame). Collective. */
static int model_event_base(fsnn_model *m, model_ws *ws, const float *frames, int T) {
    const int nin = m->n_in, C = m->channels, hw = m->hw;
    int B = 0;
    for (int g = 0; g < ws->n_shards; g++)
        B += ws->shard_len[g];
    for (int b = 0; b < B; b++)
        for (int i = 0; i < nin; i++)
            ws->evxs[(long)b * nin + i] = (float)model_frames_avg(m, frames, T, b, i);
    linop_forward(&m->in_op, m->p.F, m->p.Fb, ws->evxs, ws->evx1s, B, ws->opws);
    double *mean = ws->stats, *var = ws->stats + C;
    CHECK(model_bn_stats(ws, ws->evx1s, B, C, hw, mean, var));
    const double cnt = (double)ws->global_batch * hw;
    for (int j = 0; j < C; j++) {
        const double unbiased = cnt > 1 ? var[j] * cnt / (cnt - 1) : var[j];
        ws->evscale[j] = (float)(m->p.bn_w[j] / sqrt(unbiased + 1e-8));
    }
    for (int b = 0; b < B; b++)
        for (int j = 0; j < C; j++)
            for (int p = 0; p < hw; p++) {
                const long k = ((long)b * C + j) * hw + p;
                float y = (float)((ws->evx1s[k] - mean[j]) * ws->evscale[j]) + m->p.bn_b[j];
                ws->evx1s[k] = ws->use_drop ? ws->dropx[k] * y : y;
            }
    ws->ev_x = ws->evxs;
    ws->ev_x1 = ws->evx1s;
    ws->ev_last_base = m->event_inplace && m->leak < 1.0f;
    return FSNN_OK;
}

int model_set_events(fsnn_model *m, model_ws *ws, const float *frames, int T) {
    if (m->ml)
        return FAIL("model: event input (N-MNIST) is trained with one-layer nets only; "
                    "a multi-layer net takes static input");
    if (!ws->evx)
        return FAIL("model: event input needs a workspace made for data.dataset = nmnist");
    if (T != m->T)
        return FAIL("model: event input has %d frames per sample, the model simulates %d steps", T,
                    m->T);
    ws->frames = frames;
    ws->frames_T = T;
    ws->ev_x = ws->x;
    ws->ev_x1 = ws->x1;
    ws->ev_last_base = 0;
    if (ws->training && m->ref) CHECK(model_event_base(m, ws, frames, T));
    return FSNN_OK;
}

/* Step t's input current of event input (neuron_product.input):
 *   x1[t] = x1 + drop_x ⊙ s ⊙ F (x[t] - x)
 * with x the frames' weighted average that model_input took and s
 * BatchNorm's factor per channel. BatchNorm is affine and F linear, so this
 * is drop_x(BN(F x[t] + b)) with the batch's statistics, and the x1[t]
 * average (weighted as the rate) to x1: the fixed point's input (SPEC §1).
 * Frames equal to their average give x1 itself, bit for bit. */
typedef struct {
    const fsnn_model *m;
    const model_ws *v;
    int B;
} model_event_ctx;

static void model_event_input(void *ctx, int t, float *x1t) {
    const model_event_ctx *c = ctx;
    const fsnn_model *m = c->m;
    const model_ws *v = c->v;
    const int nin = m->n_in, T = v->frames_T, C = m->channels, hw = m->hw;
    if (t == T && v->ev_last_base) {
        memcpy(x1t, v->ev_x1, sizeof(float) * (size_t)c->B * m->n);
        return;
    }
    for (int b = 0; b < c->B; b++) {
        const float *xt = v->frames + ((long)b * T + (t - 1)) * nin, *xa = v->ev_x + (long)b * nin;
        float *d = v->evx + (long)b * nin;
        for (int i = 0; i < nin; i++)
            d[i] = xt[i] - xa[i];
    }
    linop_forward(&m->in_op, m->p.F, NULL, v->evx, x1t, c->B, v->opws);
    for (int b = 0; b < c->B; b++)
        for (int j = 0; j < C; j++) {
            const long k0 = ((long)b * C + j) * hw;
            for (int p = 0; p < hw; p++) {
                const long k = k0 + p;
                const float dx = v->use_drop ? v->dropx[k] : 1.0f;
                x1t[k] = v->ev_x1[k] + dx * (v->evscale[j] * x1t[k]);
            }
        }
}

/* equil_eval at a [B x n] for the rows of v: f, mv, jac and res of v. */
static void model_eval_f(const fsnn_model *m, const model_ws *v, const float *a, int B) {
    if (m->ml) { /* the trace's and the fixed point's: all rows of ws */
        (void)model_ml_eval(m, (model_ws *)v, a, B);
        return;
    }
    linop_forward(&m->fb_op, m->W, NULL, a, v->f, B, v->opws);
    equil_clamp(a, v->x1, v->use_drop ? v->drops : NULL, B, m->n, m->vth, v->f, v->mv, v->jac,
                v->res);
}

int model_trace_create(model_trace **out, const fsnn_model *m, const model_ws *ws) {
    model_trace *tr;
    CHECK(XCALLOC(&tr, 1));
    *out = tr;
    if (m->T < 1) return FAIL("model_trace: %d time steps", m->T);
    tr->T = m->T;
    tr->max_groups = ws->max_shards;
    CHECK(XCALLOC(&tr->sums, (size_t)MODEL_TRACE_N * m->T));
    CHECK(XCALLOC(&tr->scratch, (size_t)tr->max_groups * MODEL_TRACE_N * m->T));
    double **views[MODEL_TRACE_N] = {&tr->res_sum, &tr->res_max, &tr->rel_sum, &tr->rel_max,
                                     &tr->delta_sum};
    for (int i = 0; i < MODEL_TRACE_N; i++)
        *views[i] = tr->sums + (size_t)i * m->T;
    return FSNN_OK;
}

void model_trace_destroy(model_trace **ptr) {
    model_trace *tr = *ptr;
    if (!tr) return;
    free(tr->sums);
    free(tr->scratch);
    free(tr);
    *ptr = NULL;
}

/* What the per-step hook of one row group needs: the model, the group's view
 * of the workspace and its rows of the trace scratch, in the order of
 * model_trace (res, res max, rel, rel max, delta; [T] each). */
typedef struct {
    const fsnn_model *m;
    const model_ws *v;
    int B;
    double *acc;
} model_trace_ctx;

/* The statistics of step t. In evaluation the gradient buffers ga and dx1
 * are free: ga holds a[t], dx1 a[t-1]; f, mv, jac and res are rewritten by
 * model_loss after the simulation. */
static void model_trace_step(void *ctx, int t, const float *acc) {
    const model_trace_ctx *c = ctx;
    const fsnn_model *m = c->m;
    const model_ws *v = c->v;
    const int n = m->n, T = m->T;
    float *at = v->ga, *prev = v->dx1;
    neuron_rates(acc, (long)c->B * n, t, m->leak, at);
    model_eval_f(m, v, at, c->B);
    double *res_sum = c->acc, *res_max = res_sum + T, *rel_sum = res_max + T;
    double *rel_max = rel_sum + T, *delta_sum = rel_max + T;
    for (int b = 0; b < c->B; b++) {
        const float *ab = at + (long)b * n, *pb = prev + (long)b * n;
        double na = 0.0, dd = 0.0;
        for (int i = 0; i < n; i++) {
            double d = t > 1 ? (double)ab[i] - pb[i] : ab[i];
            na += (double)ab[i] * ab[i];
            dd += d * d;
        }
        double res = v->res[b];
        double rel = na > 0.0 ? res / sqrt(na) : (res > 0.0 ? 1.0 : 0.0);
        res_sum[t - 1] += res;
        rel_sum[t - 1] += rel;
        delta_sum[t - 1] += sqrt(dd);
        if (res > res_max[t - 1]) res_max[t - 1] = res;
        if (rel > rel_max[t - 1]) rel_max[t - 1] = rel;
    }
    memcpy(prev, at, sizeof(float) * (size_t)c->B * n);
}

/* The simulation of B rows of the view v (one row group), with the per-step
 * hook when acc is set. */
/* The feedback product of one row group (neuron_product). */
typedef struct {
    const fsnn_model *m;
    const model_ws *v;
} model_spike_ctx;

static void model_spike_product(void *ctx, const float *s, float *cur, int B, int event) {
    const model_spike_ctx *c = ctx;
    linop_spike(&c->m->fb_op, c->m->W, c->m->Wt, s, cur, c->v->idx, B, event, c->v->opws);
}

static void model_simulate_rows(const fsnn_model *m, const model_ws *v, int B, neuron_stats *sim,
                                double *acc) {
    neuron_dims d = {B, m->n, m->T, m->vth, m->leak, m->spike_mode};
    model_trace_ctx c = {m, v, B, acc};
    model_spike_ctx sc = {m, v};
    model_event_ctx ec = {m, v, B};
    neuron_product p = {model_spike_product, &sc, linop_event_density(&m->fb_op), NULL, NULL, NULL};
    if (v->frames) {
        p.input = model_event_input;
        p.input_ctx = &ec;
        p.input_buf = v->x1t;
    }
    neuron_simulate_product(&d, v->x1, &p, v->use_drop ? v->drops : NULL, v->a, v->u, v->s, v->cur,
                            sim, acc ? model_trace_step : NULL, &c);
}

/* The simulation of a multi-layer net over all rows (mlnet_simulate),
 * collective in training; with acc, the trace's hook on all rows at once. */
static int model_ml_simulate(fsnn_model *m, model_ws *ws, int B, model_stats *st, double *acc) {
    int whole;
    mlnet_groups g = model_ml_groups(ws, B, &whole);
    model_ws v = model_ws_view(ws, m, 0, 0);
    model_trace_ctx c = {m, &v, B, acc};
    mlnet_first f1 = model_first(m, ws);
    return mlnet_simulate(m->ml, ws->mlw, &f1, &g, B, model_ml_sim_batch_bn(m, ws), model_ml_stats,
                          ws, ws->a, &st->sim, acc ? model_trace_step : NULL, &c);
}

static void model_simulate_steps(fsnn_model *m, model_ws *ws, int B, model_stats *st,
                                 model_trace *tr) {
    const int *len;
    int whole, groups = model_groups(ws, B, &len, &whole);
    const size_t per = (size_t)MODEL_TRACE_N * m->T;
    if (tr) memset(tr->scratch, 0, sizeof(double) * per * (size_t)groups);
    if (m->ml) {
        /* One trace row group: the hook sees all rows at once. */
        groups = 1;
        ws->ml_rc = model_ml_simulate(m, ws, B, st, tr ? tr->scratch : NULL);
    } else if (groups == 1) {
        model_simulate_rows(m, ws, B, &st->sim, tr ? tr->scratch : NULL);
    } else {
#pragma omp parallel for schedule(dynamic, 1)
        for (int g = 0; g < groups; g++) {
            model_ws v = model_ws_view(ws, m, g, ws->group_off[g]);
            memset(&ws->gstats[g], 0, sizeof ws->gstats[g]);
            model_simulate_rows(m, &v, len[g], &ws->gstats[g].sim,
                                tr ? tr->scratch + per * (size_t)g : NULL);
        }
        for (int g = 0; g < groups; g++)
            model_stats_merge(st, &ws->gstats[g]);
    }
    if (!tr) return;
    const int T = m->T;
    for (int g = 0; g < groups; g++) {
        const double *acc = tr->scratch + per * (size_t)g;
        for (int i = 0; i < MODEL_TRACE_N; i++) {
            const int is_max = i == 1 || i == 3; /* res_max, rel_max */
            for (int t = 0; t < T; t++) {
                double *to = &tr->sums[(size_t)i * T + t], x = acc[(size_t)i * T + t];
                *to = is_max ? (x > *to ? x : *to) : *to + x;
            }
        }
    }
    tr->samples += B;
}

/* The weights do not change during the T steps: oneDNN's primitives keep
 * them in their own layout from the first step on (dnn.h's hold). */
static void model_simulate_run(fsnn_model *m, model_ws *ws, int B, model_stats *st,
                               model_trace *tr) {
    dnn_hold_begin();
    model_simulate_steps(m, ws, B, st, tr);
    dnn_hold_end();
}

void model_simulate(fsnn_model *m, model_ws *ws, int B, model_stats *st) {
    model_simulate_run(m, ws, B, st, NULL);
}

int model_simulate_trace(fsnn_model *m, model_ws *ws, int B, model_stats *st, model_trace *tr) {
    if (tr->T != m->T)
        return FAIL("model_trace: made for %d time steps, the model has %d", tr->T, m->T);
    const int *len;
    int whole, groups = model_groups(ws, B, &len, &whole);
    if (groups > tr->max_groups)
        return FAIL("model_trace: %d row groups exceed its %d", groups, tr->max_groups);
    model_simulate_run(m, ws, B, st, tr);
    return FSNN_OK;
}

void model_fixed_point(fsnn_model *m, model_ws *ws, int B, int iters) {
    const long count = (long)B * m->n;
    memset(ws->a, 0, sizeof(float) * (size_t)count);
    for (int it = 0; it < iters; it++) {
        model_eval_f(m, ws, ws->a, B);
        memcpy(ws->a, ws->f, sizeof(float) * (size_t)count);
    }
}

double model_loss_value(fsnn_model *m, model_ws *ws, const uint8_t *labels, int B) {
    long correct = 0;
    fc_forward(ws->a, m->p.Wo, m->p.bo, ws->logits, B, m->n, m->n_out);
    return loss_softmax_xent(ws->logits, labels, B, m->n_out, NULL, 1.0, &correct) / B;
}

/* The per-sample part of model_loss on one row group (a view): f and its
 * residual, readout, loss and, with grads, dL/da, the adjoint solve, and the
 * per-sample factors of the VJP (dx1 = beta ⊙ m / V_th ⊙ drop_x and
 * beta ⊙ jac). */
static int model_loss_rows(fsnn_model *m, model_ws *v, const uint8_t *labels, int B, double scale,
                           int grads, model_stats *st) {
    const int n = m->n;
    const long count = (long)B * n;
    if (!m->ml) model_eval_f(m, v, v->a, B); /* multi-layer: model_loss evaluated f */
    model_readout(v->a, v->res, m->p.Wo, m->p.bo, labels, B, n, m->n_out, scale, v->logits,
                  grads ? v->dlogits : NULL, v->ga, st);
    if (!grads) return FSNN_OK;
    if (v->defer) return FSNN_OK; /* model_ml_adjoint: one solve over the batch */

    /* Adjoint equilibrium beta = J_f(a*)^T beta + dL/da* (SPEC §3 step 1). */
    v->m = m;
    solver_op op = {model_apply_jt, model_dense_jt, v, n};
    if (m->ml)
        op = (solver_op){model_ml_apply_jt, model_ml_dense_jt, v, n};
    else
        linop_mask_lists(v->jac, B, n, v->jidx, v->jnnz);
    solver_stats ss;
    dnn_hold_begin(); /* as model_ml_adjoint's */
    int rc = solver_solve(v->solver, &op, v->ga, v->beta, B, v->max_iters, v->tol, &ss);
    dnn_hold_end();
    CHECK(rc);
    model_stats_adjoint(st, &ss, B);
    if (m->ml) {
        /* Back through layers L..2; dx1 = dc1 ⊙ drop_x, dW's factor dc1 ⊙ drop_s. */
        const long o = (long)v->row0 * m->ml->n_max, c1 = (long)B * m->in_op.out;
        CHECK(mlnet_backward(m->ml, v->mlw, v->row0, B, v->beta, v->dx1, v->mlw->p0 + o,
                             v->mlw->p1 + o, v->opws));
        for (long k = 0; k < c1; k++) {
            v->tmp[k] = v->use_drop ? v->dx1[k] * v->drops[k] : v->dx1[k];
            v->dx1[k] = v->use_drop ? v->dx1[k] * v->dropx[k] : v->dx1[k];
        }
        return FSNN_OK;
    }
    model_vjp_factors(v->beta, v->mv, v->jac, v->use_drop ? v->dropx : NULL, count, v->dx1, v->tmp);
    return FSNN_OK;
}

/* J^T at f(a[T]) of all rows (mlnet_jt_batch); a failed exchange shows as a
 * non-finite solve. */
static void model_ml_apply_jt_batch(void *ctx, const int *rows, int nrows, const float *in,
                                    float *out) {
    (void)rows;
    model_ws *ws = ctx;
    const fsnn_model *m = ws->m;
    int whole;
    mlnet_groups g = model_ml_groups(ws, nrows, &whole);
    mlnet_first f1 = model_first(m, ws);
    if (mlnet_jt_batch(m->ml, ws->mlw2, &f1, &g, nrows, ws->global_batch, in, out, model_ml_sums,
                       ws) != FSNN_OK)
        for (long k = 0; k < (long)nrows * m->n; k++)
            out[k] = NAN;
}

/* The reference's adjoint of a multi-layer net (model.loop_bn = reference,
 * docs/fidelity.md): f once more at f(a[T]) with the batch's statistics
 * (no running update), where J^T is taken in training mode; one solve over
 * the whole batch of all ranks; then the VJP at a[T] with the training-mode
 * BatchNorm backward; dx1 and tmp as model_loss_rows leaves them. Collective. */
static int model_ml_adjoint(fsnn_model *m, model_ws *ws, int B, model_stats *st) {
    int whole;
    mlnet_groups g = model_ml_groups(ws, B, &whole);
    mlnet_first f1 = model_first(m, ws);
    CHECK(mlnet_eval_f(m->ml, ws->mlw2, &f1, &g, B, ws->f, 1, model_ml_stats, ws, ws->res2));
    ws->m = m;
    solver_op op = {model_ml_apply_jt_batch, NULL, ws, m->n};
    solver_stats ss;
    /* Every iteration multiplies by the same weights (dnn.h's hold), and
     * the chain keeps oneDNN's layout where it can (mlnet_block). */
    dnn_hold_begin();
    mlnet_block(m->ml, ws->mlw2, &f1, B);
    int rc = solver_solve_batch(ws->solver, &op, ws->ga, ws->beta, B, ws->max_iters, ws->tol,
                                ws->global_batch * m->n, model_sum_values, ws, &ss);
    mlnet_unblock(m->ml, ws->mlw2, B);
    dnn_hold_end();
    CHECK(rc);
    st->adj_iters_sum += ss.iters_mean * B;
    /* The batch's residual, each rank's share of it (the trainer sums them). */
    st->adj_res2_sum += ss.residual * ss.residual * B / (double)ws->global_batch;
    st->adj_samples += B;
    CHECK(mlnet_backward_batch(m->ml, ws->mlw, &g, B, ws->global_batch, ws->beta, ws->dx1,
                               model_ml_sums, ws));
    const long c1 = (long)B * m->in_op.out;
    for (long k = 0; k < c1; k++) {
        ws->tmp[k] = ws->use_drop ? ws->dx1[k] * ws->drops[k] : ws->dx1[k];
        ws->dx1[k] = ws->use_drop ? ws->dx1[k] * ws->dropx[k] : ws->dx1[k];
    }
    return FSNN_OK;
}

int model_loss(fsnn_model *m, model_ws *ws, const uint8_t *labels, int B, double scale, int grads,
               model_stats *st) {
    const int n = m->in_op.out; /* layer 1's neurons */
    const long count = (long)B * n;
    /* Phase times are wall time: micro-shards run side by side. */
    double t0 = clock_seconds();
    if (m->ml) {
        CHECK(ws->ml_rc); /* a failed collective in the simulation */
        /* f of the whole batch first: its BatchNorm statistics are the batch's. */
        CHECK(model_ml_eval(m, ws, ws->a, B));
        if (grads && model_ml_batch_bn(m, ws))
            CHECK(mlnet_update_running(m->ml, ws->mlw, ws->global_batch));
    }
    const int *len;
    int whole, groups = model_groups(ws, B, &len, &whole), failed = -1;
    ws->defer = grads && m->ml && m->loop_bn_ref;
    if (groups == 1) {
        model_ws v = model_ws_view(ws, m, 0, 0);
        CHECK(model_loss_rows(m, &v, labels, B, scale, grads, st));
    } else {
        /* A pipeline's J^T and VJP exchange between ranks: one group after
         * the other, in the same order on every stage. */
        const int serial = model_piped(m);
#pragma omp parallel for schedule(dynamic, 1) if (!serial)
        for (int g = 0; g < groups; g++) {
            const int r0 = ws->group_off[g];
            model_ws v = model_ws_view(ws, m, g, r0);
            memset(&ws->gstats[g], 0, sizeof ws->gstats[g]);
            if (model_loss_rows(m, &v, labels + r0, len[g], scale, grads, &ws->gstats[g]) != 0) {
#pragma omp critical(model_failed)
                failed = g;
            }
        }
        /* The failing thread's message stays with that thread. */
        if (failed >= 0) return FAIL("adjoint solve failed in micro-shard %d", failed);
        for (int g = 0; g < groups; g++)
            model_stats_merge(st, &ws->gstats[g]);
    }
    if (!grads) return FSNN_OK;
    if (ws->defer) CHECK(model_ml_adjoint(m, ws, B, st));
    double t1 = clock_seconds();
    st->t_adj += t1 - t0;

    /* VJP of f with beta (SPEC §3 step 2): BatchNorm needs sums over the
     * whole batch, then the sample sums give the parameter gradients. */
    memset(m->grads, 0, sizeof(float) * m->n_params);
    const int C = m->channels, hw = m->hw;
    double *sdy = ws->stats + 2 * C, *sdyx = ws->stats + 3 * C;
    if (ws->deterministic) {
        CHECK(model_channel_sums(ws, ws->dx1, B, C, hw, sdy));
        for (long k = 0; k < count; k++)
            ws->bny[k] = ws->dx1[k] * ws->xhat[k];
        CHECK(model_channel_sums(ws, ws->bny, B, C, hw, sdyx));
    } else {
        bn2d_grad_sums(ws->dx1, ws->xhat, B, C, hw, sdy, sdyx);
        if (ws->red->size > 1) CHECK(ws->red->sum_f64(ws->red->ctx, sdy, 2 * (size_t)C));
    }
    for (int j = 0; j < C; j++) {
        m->d.bn_w[j] = (float)sdyx[j];
        m->d.bn_b[j] = (float)sdy[j];
    }
    bn2d_vjp_apply(ws->dx1, ws->xhat, ws->invstd, m->p.bn_w, sdy, sdyx, ws->global_batch * hw,
                   ws->bny, B, C, hw);
    if (m->ml) CHECK(model_ml_bn_grads(m, ws, B));
    CHECK(model_reduce_sums(m, ws, B));
    model_sn_vjp(m);
    if (model_piped(m)) CHECK(model_pipe_grads(m));
    st->t_grad += clock_seconds() - t1;
    return FSNN_OK;
}

void model_branch_dropout(const float *y, int B, int mc, int mhw, float p, uint64_t seed,
                          uint32_t epoch, const long *ids, float *dropx, float *drops, float *x1) {
    const long count = (long)B * mc * mhw;
    if (p <= 0.0f) {
        memcpy(x1, y, sizeof(float) * (size_t)count);
        return;
    }
    dropout_mask_channel(dropx, B, mc, mhw, p, seed, RNG_DROP_X, epoch, ids);
    dropout_mask_channel(drops, B, mc, mhw, p, seed, RNG_DROP_S, epoch, ids);
    for (long k = 0; k < count; k++)
        x1[k] = dropx[k] * y[k];
}

void model_readout(const float *a, const float *res, const float *Wo, const float *bo,
                   const uint8_t *labels, int B, int n, int n_out, double scale, float *logits,
                   float *dlogits, float *ga, model_stats *st) {
    for (int b = 0; b < B; b++) {
        st->fwd_res_sum += res[b];
        if (res[b] > st->fwd_res_max) st->fwd_res_max = res[b];
    }
    fc_forward(a, Wo, bo, logits, B, n, n_out);
    st->loss += loss_softmax_xent(logits, labels, B, n_out, dlogits, scale, &st->correct);
    st->samples += B;
    if (dlogits) blas_gemm(0, 0, B, n, n_out, 1.0f, dlogits, n_out, Wo, n, 0.0f, ga, n);
}

void model_vjp_factors(const float *beta, const float *mv, const float *jac, const float *dropx,
                       long count, float *dx1, float *tmp) {
    for (long k = 0; k < count; k++) {
        dx1[k] = beta[k] * mv[k] * (dropx ? dropx[k] : 1.0f);
        tmp[k] = beta[k] * jac[k];
    }
}

void model_stats_adjoint(model_stats *st, const solver_stats *ss, int B) {
    st->adj_iters_sum += ss->iters_mean * B;
    st->adj_res2_sum += ss->residual * ss->residual;
    st->adj_samples += B;
}
