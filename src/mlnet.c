/* mlnet: the multi-layer stack's simulation, equilibrium, J^T and VJP,
 * group by group over linop. */
#include "mlnet.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"       // defines: BLAS_PARALLEL_MIN
#include "bn.h"         // defines: BN_EPS, BN_MOMENTUM
#include "clock.h"      // defines: clock_seconds
#include "dropout.h"    // defines: dropout_mask_channel
#include "mlnet_impl.h" // defines: mlnet_piped, mlnet_range, mlnet_scale_rows
#include "pipeplan.h"   // defines: pipeplan_stage
#include "pool.h"       // defines: pool_avg2_forward, pool_avg2_vjp
#include "rng.h"        // defines: RNG_DROP_LAYER
#include "spikecode.h"  // defines: spikecode_encode, spikecode_decode, spikecode_bound
#include "status.h"     // defines: FAIL, CHECK, XCALLOC

static int mlnet_has_bn(const mlnet_layer *ly) {
    return ly->kind != NETSPEC_POOL;
}

/* --- the pipeline's stages --- */

int mlnet_piped(const mlnet *net) {
    return net->pipe && net->pipe->stages > 1;
}

/* This stage's layers [*lo, *hi). */
void mlnet_range(const mlnet *net, int *lo, int *hi) {
    *lo = mlnet_piped(net) ? net->pipe->first[net->pipe->stage] : 0;
    *hi = mlnet_piped(net) ? net->pipe->first[net->pipe->stage + 1] : net->L;
}

int mlnet_last_stage(const mlnet *net) {
    return !mlnet_piped(net) || net->pipe->stage == net->pipe->stages - 1;
}

int mlnet_owner(const mlnet *net, int l) {
    return mlnet_piped(net) ? pipeplan_stage(net->pipe->first, net->pipe->stages, l) : 0;
}

void mlnet_set_pipe(mlnet *net, const mlnet_pipe *p) {
    net->pipe = p;
}

void mlnet_costs(const mlnet *net, const linop *fb, double *cost) {
    for (int l = 0; l < net->L; l++) {
        const mlnet_layer *ly = &net->layer[l];
        const linop *op = l == 0 ? fb : (mlnet_has_bn(ly) ? &ly->op : NULL);
        /* A transposed conv scatters each input value over its [cols] outputs. */
        double macs = !op                        ? (double)ly->in
                      : op->kind == LINOP_DECONV ? (double)op->cols * op->in
                                                 : (double)op->rows * op->cols * op->hw;
        cost[l] = macs + ly->n;
    }
}

/* Floats [count] to or from a neighbouring stage, counted. */
int mlnet_send_floats(const mlnet *net, int to, const float *x, long count) {
    const mlnet_pipe *p = net->pipe;
    p->traffic->float_bytes += (double)count * sizeof(float);
    return p->send(p->ctx, to, x, sizeof(float) * (size_t)count);
}

int mlnet_recv_floats(const mlnet *net, int from, float *x, long count) {
    const mlnet_pipe *p = net->pipe;
    size_t got = 0;
    CHECK(p->recv(p->ctx, from, x, sizeof(float) * (size_t)count, &got));
    if (got != sizeof(float) * (size_t)count)
        return FAIL("pipeline: stage %d sent %zu bytes, %zu expected", from, got,
                    sizeof(float) * (size_t)count);
    return FSNN_OK;
}

/* Layer l's spikes of this step, group by group, to stage `to`. */
static int mlnet_send_spikes(const mlnet *net, mlnet_ws *w, int l, const mlnet_groups *g, int to) {
    const mlnet_pipe *p = net->pipe;
    const int n = net->layer[l].n;
    const double t0 = clock_seconds();
    size_t off = 0;
    for (int gi = 0; gi < g->n; gi++) {
        const long count = (long)g->len[gi] * n;
        size_t used;
        long k;
        CHECK(spikecode_encode(w->s[l] + (long)g->off[gi] * n, count, w->xbuf + off, w->xcap - off,
                               &used, &k));
        off += used;
        p->traffic->mask_bytes += (double)spikecode_mask_bytes(count);
        p->traffic->list_bytes += (double)spikecode_list_bytes(k);
    }
    p->traffic->spike_bytes += (double)off;
    p->traffic->steps++;
    p->traffic->code_seconds += clock_seconds() - t0;
    return p->send(p->ctx, to, w->xbuf, off);
}

/* Layer l's spikes of this step from stage `from` into w->s[l], with their
 * counts per group. */
static int mlnet_recv_spikes(const mlnet *net, mlnet_ws *w, int l, const mlnet_groups *g,
                             int from) {
    const mlnet_pipe *p = net->pipe;
    const int n = net->layer[l].n;
    size_t got = 0, at = 0;
    CHECK(p->recv(p->ctx, from, w->xbuf, w->xcap, &got));
    const double t0 = clock_seconds();
    for (int gi = 0; gi < g->n; gi++) {
        size_t used;
        CHECK(spikecode_decode(w->xbuf + at, got - at, w->s[l] + (long)g->off[gi] * n,
                               (long)g->len[gi] * n, &used,
                               &w->gspk[(size_t)l * w->max_groups + gi]));
        at += used;
    }
    if (at != got)
        return FAIL("pipeline: layer %d's spikes from stage %d: %zu bytes left over", l + 1, from,
                    got - at);
    p->traffic->code_seconds += clock_seconds() - t0;
    return FSNN_OK;
}

int mlnet_create(mlnet **out, const netspec *net, const netspec_sizes *sz, const fsnn_cfg *cfg) {
    mlnet *m;
    CHECK(XCALLOC(&m, 1));
    *out = m;
    if (net->n_layers < 2)
        return FAIL("model.net '%s': a multi-layer net needs two layers or more", net->text);
    m->L = net->n_layers;
    m->T = cfg->model_time_steps;
    m->vth = cfg->neuron_vth;
    m->leak = cfg->neuron_leak;
    m->mode = cfg->model_spike_product;
    for (int l = 0; l < m->L; l++) {
        mlnet_layer *ly = &m->layer[l];
        const netspec_layer *sl = &net->layer[l];
        const netspec_shape o = sz->layer[l].out, i = l > 0 ? sz->layer[l - 1].out : sz->input;
        ly->kind = sl->kind;
        ly->n = o.c * o.h * o.w;
        ly->in = i.c * i.h * i.w;
        ly->C = o.flat ? ly->n : o.c;
        ly->hw = o.flat ? 1 : o.h * o.w;
        if (l > 0 && sl->kind == NETSPEC_FC) linop_fc(&ly->op, ly->in, ly->n);
        if (l > 0 && sl->kind == NETSPEC_CONV)
            CHECK(linop_conv(&ly->op, i.c, i.h, i.w, sl->size, sl->kernel, sl->stride));
        linop_use_onednn(&ly->op, cfg->model_conv == CONV_ONEDNN);
        if (l > 0) linop_set_sim_bf16(&ly->op, cfg->compute_sim_precision == SIM_BF16);
        if (sl->kind == NETSPEC_POOL) {
            ly->pc = i.c;
            ly->ph = i.h;
            ly->pw = i.w;
        }
        if (ly->n > m->n_max) m->n_max = ly->n;
        if (ly->C > m->C_max) m->C_max = ly->C;
        m->n_total += ly->n;
        if (l > 0 && mlnet_has_bn(ly)) {
            size_t ws = linop_ws_size(&ly->op);
            if (ws > m->ws_len) m->ws_len = ws;
            CHECK(XCALLOC(&ly->run_mean, (size_t)ly->C));
            CHECK(XCALLOC(&ly->run_var, (size_t)ly->C));
            CHECK(XCALLOC(&ly->We, linop_event_size(&ly->op)));
        }
    }
    return FSNN_OK;
}

void mlnet_destroy(mlnet **pm) {
    mlnet *m = *pm;
    if (!m) return;
    for (int l = 0; l < m->L; l++) {
        free(m->layer[l].run_mean);
        free(m->layer[l].run_var);
        free(m->layer[l].We);
    }
    free(m);
    *pm = NULL;
}

void mlnet_init_state(mlnet *net) {
    for (int l = 1; l < net->L; l++) {
        mlnet_layer *ly = &net->layer[l];
        if (!mlnet_has_bn(ly)) continue;
        for (int c = 0; c < ly->C; c++) {
            ly->run_mean[c] = 0.0f;
            ly->run_var[c] = 1.0f;
        }
    }
}

void mlnet_prepare(mlnet *net) {
    int lo, hi;
    mlnet_range(net, &lo, &hi);
    for (int l = lo > 1 ? lo : 1; l < hi; l++) {
        mlnet_layer *ly = &net->layer[l];
        if (mlnet_has_bn(ly)) linop_event_weights(&ly->op, ly->F, ly->We);
    }
}

int mlnet_ws_create(mlnet_ws **out, const mlnet *net, int Bmax, int max_groups) {
    mlnet_ws *w;
    CHECK(XCALLOC(&w, 1));
    *out = w;
    w->Bmax = Bmax;
    w->L = net->L;
    w->max_groups = max_groups;
    for (int l = 0; l < net->L; l++) {
        const mlnet_layer *ly = &net->layer[l];
        const size_t bn = (size_t)Bmax * ly->n;
        float **bufs[] = {&w->u[l], &w->s[l], &w->acc[l], &w->a[l], &w->mv[l], &w->jac[l]};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
            CHECK(XCALLOC(bufs[i], bn));
        if (l > 0) CHECK(XCALLOC(&w->drop[l], bn));
        if (l > 0 && mlnet_has_bn(ly)) {
            CHECK(XCALLOC(&w->hacc[l], bn));
            CHECK(XCALLOC(&w->xhat[l], bn));
            CHECK(XCALLOC(&w->mean[l], (size_t)ly->C));
            CHECK(XCALLOC(&w->var[l], (size_t)ly->C));
            CHECK(XCALLOC(&w->invstd[l], (size_t)ly->C));
        }
    }
    const size_t big = (size_t)Bmax * net->n_max;
    CHECK(XCALLOC(&w->cur, big));
    CHECK(XCALLOC(&w->p0, big));
    CHECK(XCALLOC(&w->p1, big));
    CHECK(XCALLOC(&w->idx, big));
    CHECK(XCALLOC(&w->gspk, (size_t)net->L * max_groups));
    CHECK(XCALLOC(&w->event, (size_t)max_groups));
    CHECK(XCALLOC(&w->scale, (size_t)net->C_max));
    CHECK(XCALLOC(&w->shift, (size_t)net->C_max));
    CHECK(XCALLOC(&w->center, (size_t)net->C_max));
    CHECK(XCALLOC(&w->bnsum, (size_t)net->C_max));
    CHECK(XCALLOC(&w->bnf, 3 * (size_t)net->C_max));
    if (mlnet_piped(net)) { /* a boundary's floats, or its spikes in the largest form */
        w->xcap = sizeof(float) * big + (size_t)max_groups * (SPIKECODE_HEADER + 1);
        CHECK(XCALLOC(&w->xbuf, w->xcap));
    }
    return FSNN_OK;
}

void mlnet_ws_destroy(mlnet_ws **pw) {
    mlnet_ws *w = *pw;
    if (!w) return;
    for (int l = 0; l < w->L; l++) {
        float *bufs[] = {w->u[l],   w->s[l],    w->acc[l],  w->a[l],    w->mv[l],
                         w->jac[l], w->drop[l], w->hacc[l], w->xhat[l], w->invstd[l]};
        for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
            free(bufs[i]);
        free(w->mean[l]);
        free(w->var[l]);
    }
    free(w->cur);
    free(w->p0);
    free(w->p1);
    free(w->idx);
    free(w->gspk);
    free(w->event);
    free(w->scale);
    free(w->shift);
    free(w->center);
    free(w->bnsum);
    free(w->bnf);
    free(w->xbuf);
    free(w);
    *pw = NULL;
}

void mlnet_masks(const mlnet *net, mlnet_ws *w, int B, float p, int channel, uint64_t seed,
                 uint32_t epoch, const long *sample_ids) {
    w->use_drop = p > 0.0f;
    if (!w->use_drop) return;
    int lo, hi;
    mlnet_range(net, &lo, &hi);
    for (int l = lo > 1 ? lo : 1; l < hi; l++) {
        const mlnet_layer *ly = &net->layer[l];
        if (!mlnet_has_bn(ly)) continue;
        /* Channel masks with hw = 1 are the neuron masks (dropout.h). */
        dropout_mask_channel(w->drop[l], B, channel ? ly->C : ly->n, channel ? ly->hw : 1, p, seed,
                             RNG_DROP_LAYER + (uint32_t)l + 1, epoch, sample_ids);
    }
}

/* --- the simulation --- */

/* cur = op(s) for the rows of group gi: event or dense by the group's spike
 * count of s (none: zero). Returns 1 for the event path. */
typedef struct {
    const linop *op;
    const float *W, *We, *s;
    float *cur;
    int *idx;
    const long *spk; /* [groups] spikes of s per group */
    int *event;      /* [groups] out: the path taken */
} mlnet_product;

static void mlnet_product_group(const mlnet *net, const mlnet_product *p, const mlnet_groups *g,
                                int gi) {
    const int r0 = g->off[gi], len = g->len[gi], in = p->op->in, out = p->op->out;
    float *cur = p->cur + (long)r0 * out;
    if (p->spk[gi] == 0) {
        memset(cur, 0, sizeof(float) * (size_t)len * out);
        p->event[gi] = -1;
        return;
    }
    double density = (double)p->spk[gi] / ((double)len * in);
    int event = net->mode == SPIKE_EVENT ||
                (net->mode == SPIKE_AUTO && density < linop_event_density(p->op));
    p->event[gi] = event;
    float *ws = g->opws + (size_t)gi * g->ws_len;
    /* A lone group's event product on every thread: each sample's current
     * is its own sum in one order, whatever the split. The dense path's
     * teams must start outside any region (mlnet_products). */
    int split = g->n == 1 && event && !omp_in_parallel() ? omp_get_max_threads() : 1;
    if (split > g->nws) split = g->nws;
    if (split > len) split = len;
    if (split < 2) {
        linop_spike(p->op, p->W, p->We, p->s + (long)r0 * in, cur, p->idx + (long)r0 * in, len,
                    event, ws);
        return;
    }
#pragma omp parallel for schedule(static) num_threads(split)
    for (int t = 0; t < split; t++) {
        const int a = (int)((long)len * t / split), e = (int)((long)len * (t + 1) / split);
        linop_spike(p->op, p->W, p->We, p->s + (long)(r0 + a) * in, cur + (long)a * out,
                    p->idx + (long)(r0 + a) * in, e - a, 1, ws + (size_t)t * g->ws_len);
    }
}

/* A parallel region only over several groups (model.c: an inactive region
 * around one group would nest the BLAS threads' teams). */
static void mlnet_products(const mlnet *net, const mlnet_product *p, const mlnet_groups *g,
                           neuron_stats *st) {
    if (g->n == 1) {
        mlnet_product_group(net, p, g, 0);
    } else {
#pragma omp parallel for schedule(dynamic, 1)
        for (int gi = 0; gi < g->n; gi++)
            mlnet_product_group(net, p, g, gi);
    }
    for (int gi = 0; gi < g->n; gi++) {
        if (p->event[gi] == 1) st->event_steps++;
        if (p->event[gi] == 0) st->dense_steps++;
    }
}

/* Fires layer l group by group; spikes per group into spk. Returns all. */
static long mlnet_fire(const mlnet *net, mlnet_ws *w, int l, const mlnet_groups *g, long *spk) {
    const int n = net->layer[l].n;
    long total = 0;
    for (int gi = 0; gi < g->n; gi++) {
        const long o = (long)g->off[gi] * n;
        spk[gi] = neuron_fire(w->u[l] + o, w->s[l] + o, w->acc[l] + o, (long)g->len[gi] * n,
                              net->vth, net->leak);
        total += spk[gi];
    }
    return total;
}

/* BatchNorm of layer l as a per-channel affine map y = scale h + shift,
 * from mean/var (double) or the running statistics. */
static void mlnet_affine(const mlnet_layer *ly, const double *mean, const double *var,
                         float *invstd, float *scale, float *shift) {
    for (int c = 0; c < ly->C; c++) {
        double mu = mean ? mean[c] : ly->run_mean[c], v = var ? var[c] : ly->run_var[c];
        invstd[c] = (float)(1.0 / sqrt(v + BN_EPS));
        scale[c] = ly->gamma[c] * invstd[c];
        shift[c] = ly->beta[c] - (float)mu * scale[c];
    }
}

/* Step t of layer l >= 2 with weights (mlnet_simulate): the current
 * F^l s^{l-1}[t] + b^l, normalised with the batch statistics of the
 * weighted average current so far (batch_bn) or the running ones, added to
 * the membrane with the layer's dropout mask. */
static int mlnet_layer_step(const mlnet *net, mlnet_ws *w, int l, const mlnet_groups *g, int B,
                            int t, int batch_bn, mlnet_stats_fn stats, void *sctx,
                            neuron_stats *st) {
    const mlnet_layer *ly = &net->layer[l];
    float *scale = w->scale, *shift = w->shift;
    const int G = w->max_groups;
    int *event = w->event;
    mlnet_product p = {
        &ly->op, ly->F, ly->We, w->s[l - 1], w->cur, w->idx, w->gspk + (size_t)(l - 1) * G, event};
    mlnet_products(net, &p, g, st);
    const int C = ly->C, hw = ly->hw;
    float *h = w->cur, *hacc = w->hacc[l];
    const int par = (long)B * ly->n > BLAS_PARALLEL_MIN;
#pragma omp parallel for collapse(2) schedule(static) if (par)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            const long o = ((long)b * C + c) * hw;
            for (int q = 0; q < hw; q++) {
                h[o + q] += ly->b[c];
                hacc[o + q] = hacc[o + q] * net->leak + h[o + q];
            }
        }
    /* Statistics of the average current so far, F^l a^{l-1}[t] + b^l. */
    if (batch_bn) {
        double *mean = w->mean[l], *var = w->var[l];
        const double norm = neuron_rate_norm(t, net->leak);
        /* The shift: the last step's mean (step 1: the running one). */
        for (int c = 0; c < C; c++)
            w->center[c] = (t == 1 ? ly->run_mean[c] : mean[c]) * norm;
        CHECK(stats(sctx, hacc, B, C, hw, w->center, mean, var));
        w->have_mean = 1;
        for (int c = 0; c < C; c++) {
            mean[c] /= norm;
            var[c] /= norm * norm;
        }
        mlnet_affine(ly, mean, var, w->invstd[l], scale, shift);
    } else {
        mlnet_affine(ly, NULL, NULL, w->invstd[l], scale, shift);
    }
    const float *drop = w->use_drop ? w->drop[l] : NULL;
#pragma omp parallel for collapse(2) schedule(static) if (par)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            const long o = ((long)b * C + c) * hw;
            for (int q = 0; q < hw; q++) {
                float z = h[o + q] * scale[c] + shift[c];
                w->u[l][o + q] += drop ? drop[o + q] * z : z;
            }
        }
    return FSNN_OK;
}

int mlnet_simulate(const mlnet *net, mlnet_ws *w, const mlnet_first *f1, const mlnet_groups *g,
                   int B, int batch_bn, mlnet_stats_fn stats, void *sctx, float *a,
                   neuron_stats *st, neuron_step_fn step, void *ctx) {
    const int L = net->L, G = w->max_groups, piped = mlnet_piped(net);
    if (g->n > G) return FAIL("mlnet: %d row groups exceed the workspace's %d", g->n, G);
    if (piped && step)
        return FAIL("mlnet: a per-step trace needs the whole net on one rank (a pipeline of %d "
                    "stages holds it in parts)",
                    net->pipe->stages);
    int lo, hi;
    mlnet_range(net, &lo, &hi);
    /* A pipeline's neighbours in the ring: spikes come from the previous
     * stage (stage 0: the last stage's, the feedback) and go to the next. */
    const int M = piped ? net->pipe->stages : 1, me = piped ? net->pipe->stage : 0;
    const int prev = (me + M - 1) % M, next = (me + 1) % M;
    int *event = w->event;
    double total = 0.0;
    const neuron_stats before = *st;
    for (int l = lo; l < hi; l++) {
        const size_t bn = (size_t)B * net->layer[l].n;
        memset(w->u[l], 0, sizeof(float) * bn);
        memset(w->acc[l], 0, sizeof(float) * bn);
        if (w->hacc[l]) memset(w->hacc[l], 0, sizeof(float) * bn);
    }
    const long n1 = (long)B * net->layer[0].n;
    for (int t = 1; t <= net->T; t++) {
        if (lo == 0 && t == 1) {
            memcpy(w->u[0], f1->x1, sizeof(float) * (size_t)n1);
        } else if (lo == 0) { /* the feedback of the last layer's previous spikes */
            if (piped) CHECK(mlnet_recv_spikes(net, w, L - 1, g, prev));
            mlnet_product p = {
                f1->fb, f1->W, f1->We, w->s[L - 1], w->cur, w->idx, w->gspk + (size_t)(L - 1) * G,
                event};
            mlnet_products(net, &p, g, st);
#pragma omp parallel for schedule(static) if (n1 > BLAS_PARALLEL_MIN)
            for (long k = 0; k < n1; k++)
                w->u[0][k] += (f1->drops ? f1->drops[k] * w->cur[k] : w->cur[k]) + f1->x1[k];
        }
        if (lo == 0) total += (double)mlnet_fire(net, w, 0, g, w->gspk);
        for (int l = lo > 1 ? lo : 1; l < hi; l++) {
            const mlnet_layer *ly = &net->layer[l];
            const long count = (long)B * ly->n;
            if (piped && l == lo) CHECK(mlnet_recv_spikes(net, w, l - 1, g, prev));
            if (ly->kind == NETSPEC_POOL) {
                pool_avg2_forward(w->s[l - 1], w->cur, (long)B * ly->pc, ly->ph, ly->pw);
#pragma omp parallel for schedule(static) if (count > BLAS_PARALLEL_MIN)
                for (long k = 0; k < count; k++)
                    w->u[l][k] += w->cur[k];
            } else {
                CHECK(mlnet_layer_step(net, w, l, g, B, t, batch_bn, stats, sctx, st));
            }
            total += (double)mlnet_fire(net, w, l, g, w->gspk + (size_t)l * G);
        }
        /* Non-blocking: the next stage's work (or this stage's next step)
         * proceeds while the spikes travel; the last stage's spikes of the
         * last step feed nothing. */
        if (piped && (hi < L || t < net->T)) CHECK(mlnet_send_spikes(net, w, hi - 1, g, next));
        if (step) step(ctx, t, w->acc[L - 1]);
    }
    if (mlnet_last_stage(net))
        neuron_rates(w->acc[L - 1], (long)B * net->layer[L - 1].n, net->T, net->leak, a);
    st->spikes += total;
    if (!piped) return FSNN_OK;
    const mlnet_pipe *pp = net->pipe;
    CHECK(pp->flush(pp->ctx));
    CHECK(pp->bcast(pp->ctx, a, sizeof(float) * (size_t)B * net->layer[L - 1].n, M - 1));
    /* The whole stack's figures on every stage. */
    double d[3] = {st->spikes - before.spikes, st->dense_steps - before.dense_steps,
                   st->event_steps - before.event_steps};
    CHECK(pp->sum_f64(pp->ctx, d, 3));
    st->spikes = before.spikes + d[0];
    st->dense_steps = before.dense_steps + (int)d[1];
    st->event_steps = before.event_steps + (int)d[2];
    return FSNN_OK;
}

/* --- the equilibrium function and its derivatives --- */

/* a = clamp(pre / V_th, 0, 1), mv = 1[0 < pre / V_th < 1] / V_th; lowers
 * *kink to the distance of any non-zero z from 0 and 1. */
static void mlnet_clamp(const float *pre, long count, float vth, float *a, float *mv,
                        double *kink) {
    const float inv = 1.0f / vth;
    double k0 = *kink;
    /* A minimum is the same in any order: the same bits on any team. */
#pragma omp parallel for schedule(static) reduction(min : k0) if (count > BLAS_PARALLEL_MIN)
    for (long k = 0; k < count; k++) {
        float z = pre[k] / vth;
        /* Comparisons rather than fmin calls: the loop vectorises (a NaN z
         * fails the test and leaves k0 as fmin would). */
        const double d0 = fabs((double)z), d1 = fabs((double)z - 1.0), m = d0 < d1 ? d0 : d1;
        if (z != 0.0f && m < k0) k0 = m;
        int in = z > 0.0f && z < 1.0f;
        a[k] = z <= 0.0f ? 0.0f : (z >= 1.0f ? 1.0f : z);
        mv[k] = in ? inv : 0.0f;
    }
    *kink = k0;
}

/* y = op(x) (+ b) for every group's rows. */
static void mlnet_forward(const linop *op, const float *W, const float *b, const float *x, float *y,
                          const mlnet_groups *g) {
    if (g->n == 1) {
        linop_forward(op, W, b, x, y, g->len[0], g->opws);
        return;
    }
#pragma omp parallel for schedule(dynamic, 1)
    for (int gi = 0; gi < g->n; gi++)
        linop_forward(op, W, b, x + (long)g->off[gi] * op->in, y + (long)g->off[gi] * op->out,
                      g->len[gi], g->opws + (size_t)gi * g->ws_len);
}

/* res[b] = |fa_b - a_b| of each of the B rows of n. */
static void mlnet_residuals(const float *fa, const float *a, int B, int n, float *res) {
#pragma omp parallel for schedule(static) if ((long)B * n > BLAS_PARALLEL_MIN)
    for (int b = 0; b < B; b++) {
        double r = 0.0;
        for (int i = 0; i < n; i++) {
            double d = (double)fa[(long)b * n + i] - a[(long)b * n + i];
            r += d * d;
        }
        res[b] = (float)sqrt(r);
    }
}

int mlnet_eval_f(const mlnet *net, mlnet_ws *w, const mlnet_first *f1, const mlnet_groups *g, int B,
                 const float *a, int batch_bn, mlnet_stats_fn stats, void *sctx, float *res) {
    const int L = net->L, piped = mlnet_piped(net);
    int lo, hi;
    mlnet_range(net, &lo, &hi);
    const long n1 = (long)B * net->layer[0].n;
    w->kink = INFINITY;
    if (lo == 0) {
        mlnet_forward(f1->fb, f1->W, NULL, a, w->cur, g);
#pragma omp parallel for schedule(static) if (n1 > BLAS_PARALLEL_MIN)
        for (long k = 0; k < n1; k++)
            w->cur[k] = (f1->drops ? f1->drops[k] * w->cur[k] : w->cur[k]) + f1->x1[k];
        mlnet_clamp(w->cur, n1, net->vth, w->a[0], w->mv[0], &w->kink);
#pragma omp parallel for schedule(static) if (n1 > BLAS_PARALLEL_MIN)
        for (long k = 0; k < n1; k++)
            w->jac[0][k] = f1->drops ? w->mv[0][k] * f1->drops[k] : w->mv[0][k];
    }
    for (int l = lo > 1 ? lo : 1; l < hi; l++) {
        const mlnet_layer *ly = &net->layer[l];
        const long count = (long)B * ly->n;
        if (piped && l == lo)
            CHECK(mlnet_recv_floats(net, net->pipe->stage - 1, w->a[l - 1],
                                    (long)B * net->layer[l - 1].n));
        if (ly->kind == NETSPEC_POOL) {
            pool_avg2_forward(w->a[l - 1], w->cur, (long)B * ly->pc, ly->ph, ly->pw);
            mlnet_clamp(w->cur, count, net->vth, w->a[l], w->mv[l], &w->kink);
            memcpy(w->jac[l], w->mv[l], sizeof(float) * (size_t)count);
            continue;
        }
        const int C = ly->C, hw = ly->hw;
        float *h = w->xhat[l], *scale = w->scale, *shift = w->shift;
        mlnet_forward(&ly->op, ly->F, ly->b, w->a[l - 1], h, g);
        if (batch_bn) {
            /* The shift: the last batch statistics' mean, or the running one. */
            for (int c = 0; c < C; c++)
                w->center[c] = w->have_mean ? w->mean[l][c] : ly->run_mean[c];
            CHECK(stats(sctx, h, B, C, hw, w->center, w->mean[l], w->var[l]));
            mlnet_affine(ly, w->mean[l], w->var[l], w->invstd[l], scale, shift);
        } else {
            mlnet_affine(ly, NULL, NULL, w->invstd[l], scale, shift);
        }
        const float *drop = w->use_drop ? w->drop[l] : NULL;
        const int par = count > BLAS_PARALLEL_MIN;
#pragma omp parallel for collapse(2) schedule(static) if (par)
        for (int b = 0; b < B; b++)
            for (int c = 0; c < C; c++) {
                const long o = ((long)b * C + c) * hw;
                const float mu = batch_bn ? (float)w->mean[l][c] : ly->run_mean[c];
                for (int q = 0; q < hw; q++) {
                    float z = h[o + q] * scale[c] + shift[c];
                    h[o + q] = (h[o + q] - mu) * w->invstd[l][c]; /* xhat, for dgamma */
                    w->cur[o + q] = drop ? drop[o + q] * z : z;
                }
            }
        mlnet_clamp(w->cur, count, net->vth, w->a[l], w->mv[l], &w->kink);
#pragma omp parallel for collapse(2) schedule(static) if (par)
        for (int b = 0; b < B; b++)
            for (int c = 0; c < C; c++) {
                const long o = ((long)b * C + c) * hw;
                for (int q = 0; q < hw; q++)
                    w->jac[l][o + q] = w->mv[l][o + q] * (drop ? drop[o + q] : 1.0f) * scale[c];
            }
    }
    const int nL = net->layer[L - 1].n;
    if (piped) { /* a^{hi-1} on to the next stage; f from the last to all */
        const mlnet_pipe *p = net->pipe;
        if (hi < L)
            CHECK(
                mlnet_send_floats(net, p->stage + 1, w->a[hi - 1], (long)B * net->layer[hi - 1].n));
        CHECK(p->flush(p->ctx));
        CHECK(p->bcast(p->ctx, w->a[L - 1], sizeof(float) * (size_t)B * nL, p->stages - 1));
    }
    mlnet_residuals(w->a[L - 1], a, B, nL, res);
    return FSNN_OK;
}

/* One layer's step of mlnet_update_running. */
static void mlnet_update_layer(mlnet_layer *ly, const mlnet_ws *w, int l, long count) {
    const long cnt = count * ly->hw;
    for (int c = 0; c < ly->C; c++) {
        double v = w->var[l][c], unbiased = cnt > 1 ? v * cnt / (cnt - 1) : v;
        ly->run_mean[c] =
            (1.0f - BN_MOMENTUM) * ly->run_mean[c] + BN_MOMENTUM * (float)w->mean[l][c];
        ly->run_var[c] = (1.0f - BN_MOMENTUM) * ly->run_var[c] + BN_MOMENTUM * (float)unbiased;
    }
}

int mlnet_update_running(mlnet *net, const mlnet_ws *w, long count) {
    for (int l = 1; l < net->L; l++) {
        mlnet_layer *ly = &net->layer[l];
        if (!mlnet_has_bn(ly)) continue;
        if (mlnet_piped(net)) { /* the owner's statistics, bit for bit */
            const mlnet_pipe *p = net->pipe;
            const int root = mlnet_owner(net, l);
            if (root == p->stage) mlnet_update_layer(ly, w, l, count);
            CHECK(p->bcast(p->ctx, ly->run_mean, sizeof(float) * (size_t)ly->C, root));
            CHECK(p->bcast(p->ctx, ly->run_var, sizeof(float) * (size_t)ly->C, root));
            continue;
        }
        mlnet_update_layer(ly, w, l, count);
    }
    return FSNN_OK;
}

/* x[r] *= f[r0 + rows[r]] (rows NULL: r) for nrows rows of n values. */
void mlnet_scale_rows(float *x, const float *f, int r0, const int *rows, int nrows, int n) {
    /* Element-wise: the same values on any number of threads. */
#pragma omp parallel for schedule(static) if ((long)nrows * n > BLAS_PARALLEL_MIN)
    for (int r = 0; r < nrows; r++) {
        const float *fr = f + (long)(r0 + (rows ? rows[r] : r)) * n;
        float *xr = x + (long)r * n;
        for (int i = 0; i < n; i++)
            xr[i] *= fr[i];
    }
}

/* dst = x of layer l's input space from the layer's output-side dy (the
 * transposed map or the pooling's VJP). */
static void mlnet_back_map(const mlnet_layer *ly, const float *dy, float *dx, int nrows,
                           float *opws) {
    if (ly->kind == NETSPEC_POOL)
        pool_avg2_vjp(dy, dx, (long)nrows * ly->pc, ly->ph, ly->pw);
    else
        linop_transpose(&ly->op, ly->F, dy, dx, nrows, opws);
}

int mlnet_jt(const mlnet *net, const mlnet_ws *w, const mlnet_first *f1, int r0, const int *rows,
             int nrows, const float *in, float *out, float *p0, float *p1, float *opws) {
    const int L = net->L, piped = mlnet_piped(net);
    const int nL = net->layer[L - 1].n;
    int lo, hi;
    mlnet_range(net, &lo, &hi);
    /* The adjoint's chain runs the loop backwards: from the last stage. */
    if (mlnet_last_stage(net))
        memcpy(p0, in, sizeof(float) * (size_t)nrows * nL);
    else
        CHECK(mlnet_recv_floats(net, net->pipe->stage + 1, p0, (long)nrows * net->layer[hi - 1].n));
    float *g = p0, *o = p1;
    for (int l = hi - 1; l >= 1 && l >= lo; l--) {
        const mlnet_layer *ly = &net->layer[l];
        mlnet_scale_rows(g, w->jac[l], r0, rows, nrows, ly->n);
        mlnet_back_map(ly, g, o, nrows, opws);
        float *t = g;
        g = o;
        o = t;
    }
    if (lo == 0) {
        mlnet_scale_rows(g, w->jac[0], r0, rows, nrows, net->layer[0].n);
        linop_transpose(f1->fb, f1->W, g, out, nrows, opws);
    } else {
        CHECK(mlnet_send_floats(net, net->pipe->stage - 1, g, (long)nrows * net->layer[lo - 1].n));
    }
    if (!piped) return FSNN_OK;
    CHECK(net->pipe->flush(net->pipe->ctx));
    return net->pipe->bcast(net->pipe->ctx, out, sizeof(float) * (size_t)nrows * nL, 0);
}

int mlnet_backward(const mlnet *net, mlnet_ws *w, int r0, int len, const float *beta, float *dc1,
                   float *p0, float *p1, float *opws) {
    const int L = net->L;
    int lo, hi;
    mlnet_range(net, &lo, &hi);
    if (mlnet_last_stage(net))
        memcpy(p0, beta, sizeof(float) * (size_t)len * net->layer[L - 1].n);
    else
        CHECK(mlnet_recv_floats(net, net->pipe->stage + 1, p0, (long)len * net->layer[hi - 1].n));
    float *g = p0, *o = p1;
    for (int l = hi - 1; l >= 1 && l >= lo; l--) {
        const mlnet_layer *ly = &net->layer[l];
        mlnet_scale_rows(g, w->mv[l], r0, NULL, len, ly->n); /* dL/d(pre_l) */
        if (ly->kind == NETSPEC_POOL) {
            mlnet_back_map(ly, g, o, len, opws);
        } else {
            const int C = ly->C, hw = ly->hw;
            const long base = (long)r0 * ly->n;
            float *dz = w->s[l] + base, *dzx = w->hacc[l] + base, *dh = w->u[l] + base;
            const float *xh = w->xhat[l] + base, *drop = w->use_drop ? w->drop[l] + base : NULL;
            for (int b = 0; b < len; b++)
                for (int c = 0; c < C; c++) {
                    const long k0 = ((long)b * C + c) * hw;
                    const float gs = ly->gamma[c] * w->invstd[l][c];
                    for (int q = 0; q < hw; q++) {
                        const long k = k0 + q;
                        dz[k] = drop ? g[k] * drop[k] : g[k];
                        dzx[k] = dz[k] * xh[k];
                        dh[k] = dz[k] * gs; /* the statistics are constants (mlnet.h) */
                    }
                }
            linop_transpose(&ly->op, ly->F, dh, o, len, opws);
        }
        float *t = g;
        g = o;
        o = t;
    }
    const long n1 = (long)len * net->layer[0].n;
    if (lo > 0) { /* layer 1's part belongs to stage 0 */
        memset(dc1, 0, sizeof(float) * (size_t)n1);
        CHECK(mlnet_send_floats(net, net->pipe->stage - 1, g, (long)len * net->layer[lo - 1].n));
        return net->pipe->flush(net->pipe->ctx);
    }
    const float *mv = w->mv[0] + (long)r0 * net->layer[0].n;
    for (long k = 0; k < n1; k++)
        dc1[k] = g[k] * mv[k];
    return FSNN_OK;
}
