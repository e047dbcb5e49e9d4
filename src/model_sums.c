/* model_sums: sums over the samples and ranks of a batch: BatchNorm
 * statistics and channel sums (exact fixed point in deterministic mode), and
 * the gradient sums reduced in buckets, fast or through the fixed tree of
 * micro-shards (docs/mpi.md). Collective where the header says so. */
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
#include "dnnconv.h"
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

int model_sum_layout(const fsnn_model *m, float **dest, size_t *count) {
    dest[0] = m->d.F, count[0] = linop_weights(&m->in_op);
    dest[1] = m->d.Fb, count[1] = (size_t)m->channels;
    dest[2] = m->d.Wo, count[2] = (size_t)m->n_out * m->n;
    dest[3] = m->d.bo, count[3] = (size_t)m->n_out;
    dest[4] = m->gW, count[4] = linop_weights(&m->fb_op);
    int k = MODEL_SUMS_BASE;
    for (int l = 1; m->ml && l < m->ml->L; l++) {
        const mlnet_layer *ly = &m->ml->layer[l];
        if (ly->kind == NETSPEC_POOL) continue;
        dest[k] = ly->dF, count[k++] = linop_weights(&ly->op);
        dest[k] = ly->db, count[k++] = (size_t)ly->C;
    }
    return k;
}

size_t model_sum_count(const fsnn_model *m) {
    float *dest[MODEL_SUMS_MAX];
    size_t count[MODEL_SUMS_MAX], total = 0;
    int ns = model_sum_layout(m, dest, count);
    for (int i = 0; i < ns; i++)
        total += count[i];
    return total;
}

int model_sum_layer(const fsnn_model *m, int t) {
    int k = MODEL_SUMS_BASE;
    for (int l = 1; l < m->ml->L; l++) {
        if (m->ml->layer[l].kind == NETSPEC_POOL) continue;
        if (k == t || k + 1 == t) return l;
        k += 2;
    }
    return 0;
}

int model_pipe_grads(fsnn_model *m) {
    const mlnet_pipe *p = m->ml->pipe;
    for (int s = 0; s < p->stages; s++) {
        size_t begin = m->n_params, end = 0;
        for (int i = 0; i < m->n_tensors; i++) {
            if (model_tensor_owner(m, i) != s) continue;
            const size_t b = m->info[i].offset, e = b + m->info[i].count;
            begin = b < begin ? b : begin;
            end = e > end ? e : end;
        }
        if (end > begin)
            CHECK(p->bcast(p->ctx, m->grads + begin, sizeof(float) * (end - begin), s));
    }
    return FSNN_OK;
}

/* Fast mode's channel sums, in double, each channel's terms sample after
 * sample and position after position in either layout (blocked: dnnconv.h's). */
static void model_float_sums(const float *x, int B, int C, int hw, int blocked, double *out) {
    const int par = hw > 1 && (long)B * C * hw > BLAS_PARALLEL_MIN;
    const long n = (long)C * hw;
    if (blocked) {
#pragma omp parallel for schedule(static) if (par)
        for (int j = 0; j < C / DNNCONV_BLOCK; j++) {
            double t[DNNCONV_BLOCK] = {0};
            for (int b = 0; b < B; b++) {
                const float *xt = x + (long)b * n + (long)j * DNNCONV_BLOCK * hw;
                for (int p = 0; p < hw; p++)
                    for (int i = 0; i < DNNCONV_BLOCK; i++)
                        t[i] += xt[(long)p * DNNCONV_BLOCK + i];
            }
            for (int i = 0; i < DNNCONV_BLOCK; i++)
                out[j * DNNCONV_BLOCK + i] = t[i];
        }
        return;
    }
#pragma omp parallel for schedule(static) if (par)
    for (int j = 0; j < C; j++) {
        double t = 0.0;
        for (int b = 0; b < B; b++) {
            const float *xm = x + (long)b * n + (long)j * hw;
            for (int p = 0; p < hw; p++)
                t += xm[p];
        }
        out[j] = t;
    }
}

/* Deterministic mode's channel sums in fixed point into acc [C]: integer
 * sums, so the order of the terms does not matter. */
static void model_fixed_sums(const float *x, int B, int C, int hw, int blocked, double scale,
                             int64_t *acc) {
    const int par = hw > 1 && (long)B * C * hw > BLAS_PARALLEL_MIN;
    const long n = (long)C * hw;
    memset(acc, 0, sizeof(int64_t) * (size_t)C);
    if (hw == 1) {
        for (int b = 0; b < B; b++)
            reduce_fixed_add(acc, x + (long)b * n, (size_t)C, scale);
    } else if (blocked) {
        const int blk = DNNCONV_BLOCK;
#pragma omp parallel for schedule(static) if (par)
        for (int j = 0; j < C / blk; j++)
            for (int b = 0; b < B; b++)
                reduce_fixed_add_rows(acc + (long)j * blk, x + (long)b * n + (long)j * hw * blk,
                                      (size_t)hw, (size_t)blk, scale);
    } else {
#pragma omp parallel for schedule(static) if (par)
        for (int j = 0; j < C; j++) {
            uint64_t t = 0;
            for (int b = 0; b < B; b++)
                t += (uint64_t)reduce_fixed_sum(x + (long)b * n + (long)j * hw, (size_t)hw, scale);
            acc[j] = (int64_t)t;
        }
    }
}

int model_channel_sums_in(model_ws *ws, const float *x, int B, int C, int hw, int blocked,
                          double *out) {
    /* Channel by channel on the threads, each channel's terms in one order:
     * the same bits on any team and in either layout. */
    if (!ws->deterministic) {
        model_float_sums(x, B, C, hw, blocked, out);
        return ws->red->size > 1 ? ws->red->sum_f64(ws->red->ctx, out, (size_t)C) : FSNN_OK;
    }
    double mx = reduce_maxabs(x, (size_t)B * C * hw);
    CHECK(ws->red->max_f64(ws->red->ctx, &mx, 1));
    if (!isfinite(mx)) { /* non-finite somewhere: the step will be skipped */
        for (int j = 0; j < C; j++)
            out[j] = NAN;
        return FSNN_OK;
    }
    double scale = reduce_scale(mx, ws->global_batch * hw);
    model_fixed_sums(x, B, C, hw, blocked, scale, ws->bn_acc);
    CHECK(ws->red->sum_i64(ws->red->ctx, ws->bn_acc, (size_t)C));
    for (int j = 0; j < C; j++)
        out[j] = (double)ws->bn_acc[j] / scale;
    return FSNN_OK;
}

int model_channel_sums(model_ws *ws, const float *x, int B, int C, int hw, double *out) {
    return model_channel_sums_in(ws, x, B, C, hw, 0, out);
}

int model_bn_stats(model_ws *ws, const float *h, int B, int C, int hw, double *mean, double *var) {
    if (!ws->deterministic && ws->red->size == 1) {
        bn2d_batch_stats(h, B, C, hw, mean, var);
        return FSNN_OK;
    }
    const double G = (double)ws->global_batch * hw;
    CHECK(model_channel_sums(ws, h, B, C, hw, mean));
    for (int j = 0; j < C; j++)
        mean[j] /= G;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < C; j++)
            for (int p = 0; p < hw; p++) {
                const long k = ((long)b * C + j) * hw + p;
                float d = h[k] - (float)mean[j];
                ws->tmp[k] = d * d;
            }
    CHECK(model_channel_sums(ws, ws->tmp, B, C, hw, var));
    for (int j = 0; j < C; j++)
        var[j] /= G;
    return FSNN_OK;
}

int model_ml_stats(void *ctx, const float *x, int B, int C, int hw, const double *shift,
                   double *mean, double *var) {
    model_ws *ws = ctx;
    const long n = (long)C * hw;
    const double G = (double)ws->global_batch * hw;
    double *s = ws->stats; /* [2C]: the sums of d, then of d^2 */
    float *d = ws->tmp;    /* [B x C x hw] */
    /* Every loop below runs on the threads element by element or channel by
     * channel, each channel's terms in one order: the same bits on any team. */
    const int par = (long)B * n > BLAS_PARALLEL_MIN;
#pragma omp parallel for collapse(2) schedule(static) if (par)
    for (int b = 0; b < B; b++)
        for (int j = 0; j < C; j++) {
            const long o = (long)b * n + (long)j * hw;
            const float k = (float)shift[j];
            for (int p = 0; p < hw; p++)
                d[o + p] = x[o + p] - k;
        }
    if (!ws->deterministic) {
#pragma omp parallel for schedule(static) if (par)
        for (int j = 0; j < C; j++) {
            double s1 = 0.0, s2 = 0.0;
            for (int b = 0; b < B; b++)
                for (int p = 0; p < hw; p++) {
                    const double v = d[(long)b * n + (long)j * hw + p];
                    s1 += v;
                    s2 += v * v;
                }
            s[j] = s1;
            s[C + j] = s2;
        }
        if (ws->red->size > 1) CHECK(ws->red->sum_f64(ws->red->ctx, s, 2 * (size_t)C));
    } else {
        double mx = reduce_maxabs(d, (size_t)B * n);
        CHECK(ws->red->max_f64(ws->red->ctx, &mx, 1));
        if (!isfinite(mx)) { /* non-finite somewhere: the step will be skipped */
            for (int j = 0; j < C; j++)
                mean[j] = var[j] = NAN;
            return FSNN_OK;
        }
        const double sc[2] = {reduce_scale(mx, ws->global_batch * hw),
                              reduce_scale(mx * mx, ws->global_batch * hw)};
        int64_t *acc = ws->bn_acc; /* [2C], integer sums: the order of the terms does not matter */
#pragma omp parallel for schedule(static) if (par)
        for (int j = 0; j < C; j++) {
            uint64_t a1 = 0, a2 = 0;
            for (int b = 0; b < B; b++) {
                float *dj = d + (long)b * n + (long)j * hw;
                a1 += (uint64_t)reduce_fixed_sum(dj, (size_t)hw, sc[0]);
                for (int p = 0; p < hw; p++) /* d^2 in place */
                    dj[p] *= dj[p];
                a2 += (uint64_t)reduce_fixed_sum(dj, (size_t)hw, sc[1]);
            }
            acc[j] = (int64_t)a1;
            acc[C + j] = (int64_t)a2;
        }
        CHECK(ws->red->sum_i64(ws->red->ctx, acc, 2 * (size_t)C));
        for (int j = 0; j < 2 * C; j++)
            s[j] = (double)acc[j] / sc[j < C ? 0 : 1];
    }
    for (int j = 0; j < C; j++) {
        const double e1 = s[j] / G, v = s[C + j] / G - e1 * e1;
        mean[j] = shift[j] + e1;
        var[j] = v > 0.0 ? v : 0.0;
    }
    return FSNN_OK;
}

/* Offsets of model_sum_layout's tensors in one set of sums; off[n_sums]
 * is the total. Returns n_sums. */
static int model_sum_offsets(const fsnn_model *m, size_t *off, size_t *count) {
    float *dest[MODEL_SUMS_MAX];
    int ns = model_sum_layout(m, dest, count);
    off[0] = 0;
    for (int t = 0; t < ns; t++)
        off[t + 1] = off[t] + count[t];
    return ns;
}

/* The sample sums of tensors [t0, t1) over rows [r0, r0 + len) into G (laid
 * out as model_sum_layout; other tensors untouched): dF and dFb, the weight
 * gradient of the input map with dh, dWo = dlogits^T a, dbo = sum dlogits
 * and dL/dW, the weight gradient of the feedback map at a with beta ⊙ jac;
 * dh in ws->bny and beta ⊙ jac in ws->tmp. The products overwrite: no pass
 * clears G first. opws: the row group's linop work buffer. */
static void model_bucket_sums(const fsnn_model *m, const model_ws *ws, int t0, int t1, int r0,
                              int len, float *G, float *opws) {
    const int n = m->n, n1 = m->in_op.out, nin = m->n_in, no = m->n_out;
    size_t off[MODEL_SUMS_MAX + 1], count[MODEL_SUMS_MAX];
    model_sum_offsets(m, off, count);
    const float *a = ws->a + (long)r0 * n, *dh = ws->bny + (long)r0 * n1,
                *dl = ws->dlogits + (long)r0 * no;
    if (model_piped(m)) { /* another stage's tensors: +0 here, theirs later (model_pipe_grads) */
        const int me = m->ml->pipe->stage;
        for (int t = t0; t < t1; t++)
            if (model_sum_owner(m, t) != me) memset(G + off[t], 0, sizeof(float) * count[t]);
        if (model_sum_owner(m, 0) != me) t0 = t0 > MODEL_SUMS_BASE ? t0 : MODEL_SUMS_BASE;
    }
    if (t0 <= 0 && 0 < t1)
        linop_weight_grad(&m->in_op, ws->x + (long)r0 * nin, dh, G + off[0], G + off[1], len, opws);
    if (t0 <= 2 && 2 < t1) {
        blas_gemm(1, 0, no, n, len, 1.0f, dl, no, a, n, 0.0f, G + off[2], n);
        fc_row_sums(dl, len, no, G + off[3]);
    }
    if (t0 <= 4 && 4 < t1)
        linop_weight_grad(&m->fb_op, a, ws->tmp + (long)r0 * n1, G + off[4], NULL, len, opws);
    /* Layers 2..L: F^l and b^l from a^{l-1} of f and dh (mlnet_backward). */
    for (int t = t0 > MODEL_SUMS_BASE ? t0 : MODEL_SUMS_BASE; t < t1; t += 2) {
        const int l = model_sum_layer(m, t);
        const mlnet_layer *ly = &m->ml->layer[l];
        if (model_piped(m) && model_sum_owner(m, t) != m->ml->pipe->stage) continue;
        linop_weight_grad(&ly->op, ws->mlw->a[l - 1] + (long)r0 * ly->in,
                          ws->mlw->u[l] + (long)r0 * ly->n, G + off[t], G + off[t + 1], len, opws);
    }
}

/* Lets started reductions advance between pieces of work. Open MPI moves a
 * non-blocking collective on only inside MPI calls, and only the thread
 * that initialised MPI (OpenMP's thread 0 here) may make them. */
static void model_progress(const reduce_ops *red) {
#ifdef _OPENMP
    if (omp_get_thread_num() != 0) return;
#endif
    red->progress(red->ctx);
}

/* Fast mode: each bucket summed over the local rows at once and, with
 * several ranks, all-reduced in float (rounding depends on the rank count). */
static int model_reduce_fast(fsnn_model *m, model_ws *ws, int B, const int (*bucket)[2], int nb) {
    const reduce_ops *red = ws->red;
    size_t off[MODEL_SUMS_MAX + 1], count[MODEL_SUMS_MAX];
    model_sum_offsets(m, off, count);
    reduce_req req[MODEL_N_BUCKETS];
    for (int k = 0; k < nb; k++) {
        const int t0 = bucket[k][0], t1 = bucket[k][1];
        model_bucket_sums(m, ws, t0, t1, 0, B, ws->gsum, ws->opws);
        req[k].slot = -1;
        if (red->size > 1)
            CHECK(red->start_sum_f32(red->ctx, ws->gsum + off[t0], off[t1] - off[t0], &req[k]));
    }
    for (int k = 0; k < nb; k++)
        CHECK(red->wait(red->ctx, &req[k]));
    return FSNN_OK;
}

/* The tree sums' arrays for `size` ranks, and room for `need` received
 * values. */
static int model_tree_room(model_ws *ws, int size, size_t need) {
    if (ws->tsize != size) {
        free(ws->tnode);
        free(ws->tnp);
        free(ws->tval);
        ws->tnode = NULL, ws->tnp = NULL, ws->tval = NULL, ws->tsize = 0;
        CHECK(XCALLOC(&ws->tnode, (size_t)size * REDUCE_TREE_MAX));
        CHECK(XCALLOC(&ws->tnp, (size_t)size));
        CHECK(XCALLOC(&ws->tval, (size_t)size * REDUCE_TREE_MAX));
        ws->tsize = size;
    }
    if (need > ws->trecv_cap) {
        free(ws->trecv);
        ws->trecv = NULL, ws->trecv_cap = 0;
        CHECK(XCALLOC(&ws->trecv, need));
        ws->trecv_cap = need;
    }
    return FSNN_OK;
}

/* model_reduce_det's state: the tree's pieces of every rank, this rank's
 * pieces and block of each bucket, and the pending exchanges. */
typedef struct {
    size_t off[MODEL_SUMS_MAX + 1], count[MODEL_SUMS_MAX];
    long K;    /* micro-shards of the global batch */
    size_t k0; /* this rank's first */
    int shards, whole, nn, np;
    const int *len;
    const reduce_node *mine; /* this rank's pieces */
    float *piece[REDUCE_TREE_MAX];
    size_t blo[MODEL_N_BUCKETS], bhi[MODEL_N_BUCKETS]; /* this rank's block of a bucket */
    reduce_req rsum[MODEL_N_BUCKETS], rgat[MODEL_N_BUCKETS];
    float *recv[MODEL_N_BUCKETS];
    int staged[MODEL_N_BUCKETS];
} model_tree;

/* The global batch's micro-shards and this rank's block of them, dealt out
 * as the trainer does; every rank's pieces, in rank order (a partition of
 * the root); room for this rank's block of the other ranks' pieces. */
static int model_tree_plan(const fsnn_model *m, model_ws *ws, int B, const int (*bucket)[2], int nb,
                           model_tree *t) {
    const reduce_ops *red = ws->red;
    const int size = red->size, me = red->rank;
    model_sum_offsets(m, t->off, t->count);
    t->shards = model_groups(ws, B, &t->len, &t->whole);
    t->K = (ws->global_batch + ws->micro - 1) / ws->micro;
    size_t k1;
    reduce_block((size_t)t->K, me, size, &t->k0, &k1);
    if (t->K < 1 || t->K > 0x7fffffff || ws->n_shards != (int)(k1 - t->k0))
        return FAIL("model: %d micro-shards here, where %zu of %ld belong to rank %d of %d",
                    ws->n_shards, k1 - t->k0, t->K, me, size);
    CHECK(model_tree_room(ws, size, 0));
    t->nn = 0;
    for (int r = 0; r < size; r++) {
        size_t a, b;
        reduce_block((size_t)t->K, r, size, &a, &b);
        ws->tnp[r] = reduce_tree_cover((int)t->K, (int)a, (int)b, ws->tnode + t->nn);
        t->nn += ws->tnp[r];
    }
    size_t need = 0;
    for (int k = 0; k < nb; k++) {
        reduce_block(t->off[bucket[k][1]] - t->off[bucket[k][0]], me, size, &t->blo[k], &t->bhi[k]);
        need += (t->bhi[k] - t->blo[k]) * (size_t)(t->nn - ws->tnp[me]);
    }
    CHECK(model_tree_room(ws, size, need));
    int first = 0; /* this rank's first piece in tnode */
    for (int r = 0; r < me; r++)
        first += ws->tnp[r];
    t->mine = ws->tnode + first;
    t->np = ws->tnp[me];
    /* Each piece sits in the buffer of its first shard. */
    for (int p = 0; p < t->np; p++)
        t->piece[p] = ws->gsum + (size_t)(t->mine[p].lo - (long)t->k0) * ws->n_sum;
    return FSNN_OK;
}

/* Per bucket: the micro-shards' sums, each piece summed up its subtree,
 * and the reduce-scatter of the pieces started. */
static int model_tree_start(fsnn_model *m, model_ws *ws, const int (*bucket)[2], int nb,
                            model_tree *t) {
    const reduce_ops *red = ws->red;
    float *pk[REDUCE_TREE_MAX], *at = ws->trecv;
    for (int k = 0; k < nb; k++) {
        const int t0 = bucket[k][0], t1 = bucket[k][1];
        const size_t n = t->off[t1] - t->off[t0];
#pragma omp parallel for schedule(dynamic, 1) if (t->shards > 1)
        for (int s = 0; s < t->shards; s++) {
            model_bucket_sums(m, ws, t0, t1, ws->group_off[s], t->len[s],
                              ws->gsum + (size_t)s * ws->n_sum, ws->opws + (size_t)s * ws->ws_len);
            model_progress(red);
        }
        for (int p = 0; p < t->np; p++) {
            const int nl = t->mine[p].hi - t->mine[p].lo; /* the piece's shards, one leaf each */
            for (int j = 0; j < nl; j++) {
                ws->tleaf[j] = (reduce_node){t->mine[p].lo + j, t->mine[p].lo + j + 1};
                ws->tleafval[j] = t->piece[p] + (size_t)j * ws->n_sum + t->off[t0];
            }
            if (reduce_tree_sum(t->mine[p], ws->tleaf, nl, ws->tleafval, n) != 0)
                return FAIL("model: micro-shards %d to %d are not a node of the tree",
                            t->mine[p].lo, t->mine[p].hi - 1);
            pk[p] = t->piece[p] + t->off[t0];
        }
        t->recv[k] = at;
        CHECK(red->start_scatter_f32(red->ctx, pk, t->np, ws->tnp, n, at, &t->rsum[k]));
        at += (size_t)(t->nn - t->np) * (t->bhi[k] - t->blo[k]);
    }
    return FSNN_OK;
}

/* Per bucket: this rank's block of every rank's pieces summed in the
 * tree's order, then the all-gather of the sums into dest. */
static int model_tree_finish(model_ws *ws, const int (*bucket)[2], int nb, float *const *dest,
                             model_tree *t) {
    const reduce_ops *red = ws->red;
    const int size = red->size, me = red->rank;
    for (int k = 0; k < nb; k++) {
        const int t0 = bucket[k][0], t1 = bucket[k][1];
        const size_t lo = t->blo[k], hi = t->bhi[k];
        CHECK(red->wait(red->ctx, &t->rsum[k]));
        const float *from = t->recv[k];
        for (int i = 0, r = 0; r < size; r++)
            for (int p = 0; p < ws->tnp[r]; p++, i++) {
                ws->tval[i] = r == me ? t->piece[p] + t->off[t0] + lo : (float *)from;
                from += r == me ? 0 : hi - lo;
            }
        const int root =
            reduce_tree_sum((reduce_node){0, (int)t->K}, ws->tnode, t->nn, ws->tval, hi - lo);
        if (root < 0) return FAIL("model: the ranks' micro-shards do not partition the tree");
        t->staged[k] = 0;
        for (int u = t0 + 1; u < t1; u++)
            t->staged[k] |= dest[u] != dest[t0] + (t->off[u] - t->off[t0]);
        float *out = t->staged[k] ? ws->gsum + t->off[t0] : dest[t0];
        if (out + lo != ws->tval[root])
            memmove(out + lo, ws->tval[root], sizeof(float) * (hi - lo));
        CHECK(red->start_gather_f32(red->ctx, out, t->off[t1] - t->off[t0], &t->rgat[k]));
    }
    for (int k = 0; k < nb; k++) {
        CHECK(red->wait(red->ctx, &t->rgat[k]));
        for (int u = bucket[k][0]; t->staged[k] && u < bucket[k][1]; u++)
            memcpy(dest[u], ws->gsum + t->off[u], sizeof(float) * t->count[u]);
    }
    return FSNN_OK;
}

/* Deterministic mode: one set of sums per micro-shard, added in the fixed
 * tree of reduce.h so that the bits do not depend on how the shards are
 * spread over ranks. Per bucket: the shards' sums, this rank's pieces (its
 * leaves summed up to the largest tree nodes they fill, in place in the
 * shards' buffers) and the reduce-scatter of the pieces, which travels
 * while the next bucket is computed; then each rank adds every rank's
 * pieces of its block in the tree's order (the same additions on any rank
 * count), and an all-gather gives every rank all of them. The sums land in
 * dest (model_sum_layout's tensors): directly when a bucket's tensors lie
 * one after the other there, else through ws->gsum (free by then). */
static int model_reduce_det(fsnn_model *m, model_ws *ws, int B, const int (*bucket)[2], int nb,
                            float *const *dest) {
    model_tree t;
    CHECK(model_tree_plan(m, ws, B, bucket, nb, &t));
    CHECK(model_tree_start(m, ws, bucket, nb, &t));
    return model_tree_finish(ws, bucket, nb, dest, &t);
}

int model_reduce_sums(fsnn_model *m, model_ws *ws, int B) {
    const int(*bucket)[2] = (const int(*)[2])ws->bucket;
    const int nb = ws->nb;
    float *dest[MODEL_SUMS_MAX];
    size_t off[MODEL_SUMS_MAX + 1], count[MODEL_SUMS_MAX];
    const int ns = model_sum_layout(m, dest, count);
    if (ws->deterministic) return model_reduce_det(m, ws, B, bucket, nb, dest);
    CHECK(model_reduce_fast(m, ws, B, bucket, nb));
    model_sum_offsets(m, off, count);
    for (int t = 0; t < ns; t++)
        memcpy(dest[t], ws->gsum + off[t], sizeof(float) * count[t]);
    return FSNN_OK;
}

int model_ml_sums(void *ctx, const float *x, int B, int C, int hw, int blocked, double *out) {
    return model_channel_sums_in(ctx, x, B, C, hw, blocked, out);
}

int model_sum_values(void *ctx, const float *vals, int count, double *out) {
    return model_channel_sums(ctx, vals, count, 1, 1, out);
}

int model_ml_bn_grads(fsnn_model *m, model_ws *ws, int B) {
    double *sum = ws->stats;
    for (int l = 1; l < m->ml->L; l++) {
        const mlnet_layer *ly = &m->ml->layer[l];
        /* Another stage's layer: its stage sums it (model_pipe_grads). */
        if (ly->kind == NETSPEC_POOL ||
            (model_piped(m) && mlnet_owner(m->ml, l) != m->ml->pipe->stage))
            continue;
        CHECK(model_channel_sums(ws, ws->mlw->hacc[l], B, ly->C, ly->hw, sum));
        for (int c = 0; c < ly->C; c++)
            ly->dgamma[c] = (float)sum[c];
        CHECK(model_channel_sums(ws, ws->mlw->s[l], B, ly->C, ly->hw, sum));
        for (int c = 0; c < ly->C; c++)
            ly->dbeta[c] = (float)sum[c];
    }
    return FSNN_OK;
}
