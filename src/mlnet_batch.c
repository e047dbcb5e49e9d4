/* mlnet_batch: the reference's BatchNorm in the loop (model.loop_bn =
 * reference): the batch-wide J^T and VJP of mlnet.h, and the adjoint
 * chain's blocked layout (mlnet_block). */
#include <string.h>

#include "blas.h"    // defines: BLAS_PARALLEL_MIN
#include "dnnconv.h" // defines: dnnconv_block, dnnconv_unblock, DNNCONV_BLOCK
#include "mlnet.h"
#include "mlnet_impl.h" // defines: mlnet_piped, mlnet_range, mlnet_scale_rows
#include "pool.h"       // defines: pool_avg2_vjp
#include "status.h"     // defines: FAIL, CHECK

/* dx = op^T(dy) for every group's rows (a row's result does not depend on
 * the other groups: deterministic mode's bits). blocked: dy in the blocked
 * layout, and dx too when dx_blocked (linop_transpose_blocked). */
static int mlnet_transpose_groups(const linop *op, const float *W, const float *dy, float *dx,
                                  const mlnet_groups *g, int blocked, int dx_blocked) {
    if (g->n == 1) {
        if (blocked) return linop_transpose_blocked(op, W, dy, dx, g->len[0], dx_blocked);
        linop_transpose(op, W, dy, dx, g->len[0], g->opws);
        return FSNN_OK;
    }
    int failed = 0;
#pragma omp parallel for schedule(dynamic, 1)
    for (int gi = 0; gi < g->n; gi++) {
        const float *gy = dy + (long)g->off[gi] * op->out;
        float *gx = dx + (long)g->off[gi] * op->in;
        if (!blocked)
            linop_transpose(op, W, gy, gx, g->len[gi], g->opws + (size_t)gi * g->ws_len);
        else if (linop_transpose_blocked(op, W, gy, gx, g->len[gi], dx_blocked) != FSNN_OK) {
#pragma omp atomic write
            failed = 1;
        }
    }
    return failed ? FAIL("mlnet: a transpose in the blocked layout failed") : FSNN_OK;
}

/* Layer l's training-mode BatchNorm backward over all B rows (of count in
 * all): from gr = dL/d(layer output) to dh = gamma invstd (dz - mean(dz) -
 * xhat mean(dz xhat)) in w->u[l], with dz and dz xhat in w->s[l] and
 * w->hacc[l]; in the layout of w (mlnet_block). */
static int mlnet_bn_back(const mlnet_layer *ly, mlnet_ws *w, int l, int B, long count,
                         const float *gr, mlnet_sums_fn sums, void *sctx) {
    const int C = ly->C, hw = ly->hw, blk = w->blocked ? DNNCONV_BLOCK : 0;
    const long nl = (long)B * ly->n;
    float *dz = w->s[l], *dzx = w->hacc[l], *dh = w->u[l];
    const float *xh = w->xhat[l], *mv = w->mv[l];
    const float *drop = w->use_drop ? w->drop[l] : NULL;
    /* The element-wise loops run on every thread: the batch-wide adjoint
     * calls them once per iteration and layer. */
#pragma omp parallel for schedule(static) if (nl > BLAS_PARALLEL_MIN)
    for (long k = 0; k < nl; k++) {
        const float d = gr[k] * mv[k]; /* dL/d(pre_l) */
        dz[k] = drop ? d * drop[k] : d;
        dzx[k] = dz[k] * xh[k];
    }
    double *s1 = w->center, *s2 = w->bnsum;
    CHECK(sums(sctx, dz, B, C, hw, blk != 0, s1));
    CHECK(sums(sctx, dzx, B, C, hw, blk != 0, s2));
    const double N = (double)count * hw;
    float *gs = w->bnf, *m1 = w->bnf + C, *m2 = w->bnf + 2 * C;
    for (int c = 0; c < C; c++) {
        gs[c] = ly->gamma[c] * w->invstd[l][c];
        m1[c] = (float)(s1[c] / N);
        m2[c] = (float)(s2[c] / N);
    }
    if (blk) {
#pragma omp parallel for collapse(2) schedule(static) if (nl > BLAS_PARALLEL_MIN)
        for (int b = 0; b < B; b++)
            for (int j = 0; j < C / DNNCONV_BLOCK; j++) {
                const long k0 = ((long)b * C + (long)j * DNNCONV_BLOCK) * hw;
                const float *gj = gs + j * DNNCONV_BLOCK, *m1j = m1 + j * DNNCONV_BLOCK,
                            *m2j = m2 + j * DNNCONV_BLOCK;
                for (int q = 0; q < hw; q++)
                    for (int i = 0; i < DNNCONV_BLOCK; i++) {
                        const long k = k0 + (long)q * DNNCONV_BLOCK + i;
                        dh[k] = gj[i] * (dz[k] - m1j[i] - xh[k] * m2j[i]);
                    }
            }
        return FSNN_OK;
    }
#pragma omp parallel for collapse(2) schedule(static) if (nl > BLAS_PARALLEL_MIN)
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            const long k0 = ((long)b * C + c) * hw;
            for (int q = 0; q < hw; q++)
                dh[k0 + q] = gs[c] * (dz[k0 + q] - m1[c] - xh[k0 + q] * m2[c]);
        }
    return FSNN_OK;
}

/* Back through this stage's layers l >= 2 of all B rows, from the gradient
 * at the last one (in, or from the next stage) to the gradient at layer 1's
 * output, left in *g1 (p0 or p1; on stage 0 only). A BatchNorm layer's
 * backward is the training-mode one (mlnet_bn_back), the means per channel
 * over the whole batch (count rows in all, through `sums`). In the blocked
 * layout (mlnet_block) from `in` in NCHW to *g1 blocked. */
static int mlnet_back_batch(const mlnet *net, mlnet_ws *w, const mlnet_groups *g, int B, long count,
                            const float *in, mlnet_sums_fn sums, void *sctx, float **g1) {
    const int L = net->L;
    int lo, hi;
    mlnet_range(net, &lo, &hi);
    const mlnet_layer *top = &net->layer[L - 1];
    if (w->blocked)
        dnnconv_block(in, w->p0, B, top->C, top->hw);
    else if (mlnet_last_stage(net))
        memcpy(w->p0, in, sizeof(float) * (size_t)B * top->n);
    else
        CHECK(mlnet_recv_floats(net, net->pipe->stage + 1, w->p0, (long)B * net->layer[hi - 1].n));
    float *gr = w->p0, *o = w->p1;
    for (int l = hi - 1; l >= 1 && l >= lo; l--) {
        const mlnet_layer *ly = &net->layer[l];
        if (ly->kind == NETSPEC_POOL) {
            mlnet_scale_rows(gr, w->mv[l], 0, NULL, B, ly->n); /* dL/d(pre_l) */
            pool_avg2_vjp(gr, o, (long)B * ly->pc, ly->ph, ly->pw);
        } else {
            CHECK(mlnet_bn_back(ly, w, l, B, count, gr, sums, sctx));
            CHECK(mlnet_transpose_groups(&ly->op, ly->F, w->u[l], o, g, w->blocked, 1));
        }
        float *t = gr;
        gr = o;
        o = t;
    }
    *g1 = gr;
    if (lo == 0) return FSNN_OK;
    CHECK(mlnet_send_floats(net, net->pipe->stage - 1, gr, (long)B * net->layer[lo - 1].n));
    return net->pipe->flush(net->pipe->ctx);
}

int mlnet_jt_batch(const mlnet *net, mlnet_ws *w, const mlnet_first *f1, const mlnet_groups *g,
                   int B, long count, const float *in, float *out, mlnet_sums_fn sums, void *sctx) {
    float *g1 = NULL;
    CHECK(mlnet_back_batch(net, w, g, B, count, in, sums, sctx, &g1));
    int lo, hi;
    mlnet_range(net, &lo, &hi);
    if (lo == 0) {
        mlnet_scale_rows(g1, w->jac[0], 0, NULL, B, net->layer[0].n);
        CHECK(mlnet_transpose_groups(f1->fb, f1->W, g1, out, g, w->blocked, 0));
    }
    if (!mlnet_piped(net)) return FSNN_OK;
    return net->pipe->bcast(net->pipe->ctx, out,
                            sizeof(float) * (size_t)B * net->layer[net->L - 1].n, 0);
}

int mlnet_blockable(const mlnet *net, const linop *fb) {
    if (net->plain_chain || mlnet_piped(net) || !linop_blocked(fb)) return 0;
    for (int l = 1; l < net->L; l++)
        if (net->layer[l].kind != NETSPEC_CONV || !linop_blocked(&net->layer[l].op)) return 0;
    return 1;
}

/* x [B x C x hw] into the other layout by way of the spare buffer t: the
 * values land in t, and the two pointers swap (no copy back). */
static void mlnet_relayout(float **x, float **t, int B, int C, int hw, int to_blocked) {
    if (to_blocked)
        dnnconv_block(*x, *t, B, C, hw);
    else
        dnnconv_unblock(*x, *t, B, C, hw);
    float *s = *x;
    *x = *t;
    *t = s;
}

/* The factors of mlnet_block into (to_blocked) or out of the blocked
 * layout, through each layer's u (free outside the simulation and
 * mlnet_bn_back). */
static void mlnet_relayout_all(const mlnet *net, mlnet_ws *w, int B, int to_blocked) {
    const mlnet_layer *l0 = &net->layer[0];
    mlnet_relayout(&w->jac[0], &w->u[0], B, l0->C, l0->hw, to_blocked);
    for (int l = 1; l < net->L; l++) {
        const mlnet_layer *ly = &net->layer[l];
        mlnet_relayout(&w->mv[l], &w->u[l], B, ly->C, ly->hw, to_blocked);
        if (w->xhat[l]) mlnet_relayout(&w->xhat[l], &w->u[l], B, ly->C, ly->hw, to_blocked);
        if (w->use_drop) mlnet_relayout(&w->drop[l], &w->u[l], B, ly->C, ly->hw, to_blocked);
    }
    w->blocked = to_blocked;
}

void mlnet_block(const mlnet *net, mlnet_ws *w, const mlnet_first *f1, int B) {
    if (!w->blocked && mlnet_blockable(net, f1->fb)) mlnet_relayout_all(net, w, B, 1);
}

void mlnet_unblock(const mlnet *net, mlnet_ws *w, int B) {
    if (w->blocked) mlnet_relayout_all(net, w, B, 0);
}

int mlnet_backward_batch(const mlnet *net, mlnet_ws *w, const mlnet_groups *g, int B, long count,
                         const float *beta, float *dc1, mlnet_sums_fn sums, void *sctx) {
    float *g1 = NULL;
    CHECK(mlnet_back_batch(net, w, g, B, count, beta, sums, sctx, &g1));
    int lo, hi;
    mlnet_range(net, &lo, &hi);
    const long n1 = (long)B * net->layer[0].n;
    if (lo > 0) {
        memset(dc1, 0, sizeof(float) * (size_t)n1);
        return FSNN_OK;
    }
#pragma omp parallel for schedule(static) if (n1 > BLAS_PARALLEL_MIN)
    for (long k = 0; k < n1; k++)
        dc1[k] = g1[k] * w->mv[0][k];
    return FSNN_OK;
}
