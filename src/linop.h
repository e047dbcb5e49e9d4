/* linop: the two linear maps of a feedback layer (SPEC §1), fully connected
 * or convolutional behind one interface, so that model.c is written once:
 *
 *   input map     h = F x + b         FC [n x n_in], or conv Cin -> C, kernel k,
 *                                     stride 1 or 2, padding k/2
 *   feedback map  c = W s             FC [n x n], or conv C -> C, kernel kf,
 *                                     stride 1, padding kf/2, no bias
 *
 * A weight is always stored as a 2-D array [rows x cols]: FC [out x in],
 * conv [C_out x Cin k k] (torch's [O x C x k x k] flattened), which is also
 * its checkpoint shape. Per-sample vectors are `in` and `out` floats long
 * (conv: NCHW feature maps). The FC functions are the calls model.c made
 * before conv existed, in the same order, so FC results are unchanged bit
 * for bit.
 *
 * Nothing allocates except linop_dense; `ws` is a work buffer of
 * linop_ws_size floats for one call (calls that run at the same time need
 * their own). Arrays are borrowed. */
#ifndef FSNN_LINOP_H
#define FSNN_LINOP_H

#include <stddef.h>

#include "cfg.h"
#include "conv.h"

typedef enum { LINOP_FC = 0, LINOP_CONV, LINOP_DECONV } linop_kind;

typedef struct {
    linop_kind kind;
    int in, out;                /* values per sample */
    int rows, cols;             /* the weight as [rows x cols] */
    int channels;               /* output channels (FC: out) */
    int hw;                     /* output positions per channel (FC: 1) */
    conv_shape conv;            /* CONV only */
    conv_transpose_shape tconv; /* DECONV only: weight [Cin x Cout k k] */
    int bf16;                   /* linop_set_sim_bf16 */
} linop;

/* A transposed conv C x H x W -> O x 2H x 2W (kernel k, stride 2,
 * padding k/2, output padding 1: the feedback "u" of netspec.h). */
int linop_deconv(linop *op, int C, int H, int W, int O, int k);

/* An FC map in -> out. */
void linop_fc(linop *op, int in, int out);

/* A conv map (conv_shape_init's checks), padding k/2. */
int linop_conv(linop *op, int C, int H, int W, int O, int k, int stride);

/* The same with padding `pad` (the reference's N-MNIST input conv: 1). */
int linop_conv_pad(linop *op, int C, int H, int W, int O, int k, int stride, int pad);

/* A conv or transposed conv op's dense maps on oneDNN (on = 1, conv.h's
 * conv_shape.dnn) or on im2col + sgemm (0); FC ops are left as they are. */
void linop_use_onednn(linop *op, int on);

/* compute.sim_precision = bf16 (on = 1): linop_spike, the simulation's
 * products, multiplies bf16-rounded weights and exact spikes with float
 * sums (FC: dnnmm.h; conv and transposed conv: dnnconv.h, which needs
 * linop_use_onednn(op, 1)), and linop_event_weights rounds the event
 * path's weights the same way. Every other map stays float. */
void linop_set_sim_bf16(linop *op, int on);

/* x rounded to the nearest bf16 (ties to even), as a float. */
float linop_bf16_round(float x);

/* Floats of `ws` one call needs (0 for FC). */
size_t linop_ws_size(const linop *op);

/* Floats of the spike-product weights (linop_event_weights). */
size_t linop_event_size(const linop *op);

/* Weight count rows * cols. */
size_t linop_weights(const linop *op);

/* y [B x out] = op(x [B x in]) + b; b [channels] may be NULL. */
void linop_forward(const linop *op, const float *W, const float *b, const float *x, float *y, int B,
                   float *ws);

/* The weights of the event path of linop_spike: FC W^T, conv
 * conv_event_weights. We [linop_event_size]. */
void linop_event_weights(const linop *op, const float *W, float *We);

/* Fraction of active inputs below which linop_spike's event path is the
 * faster one for the op's dense path (NEURON_EVENT_DENSITY or, in bf16,
 * LINOP_FC_EVENT_DENSITY_BF16; conv_event_density). */
double linop_event_density(const linop *op);

/* cur [B x out] = op(s) for 0/1 spikes s [B x in]: dense, or (event) the
 * sum of each active input's weights. idx [B x in] ints (FC), ws (conv).
 * FC maps need not be square. */
void linop_spike(const linop *op, const float *W, const float *We, const float *s, float *cur,
                 int *idx, int B, int event, float *ws);

/* dx [B x in] = op^T(dy [B x out]) (overwritten). */
void linop_transpose(const linop *op, const float *W, const float *dy, float *dx, int B, float *ws);

/* 1 when op's transpose runs on oneDNN in the blocked layout (dnnconv.h):
 * a conv or transposed conv on oneDNN whose channels on both sides are
 * multiples of 16. */
int linop_blocked(const linop *op);

/* linop_transpose for linop_blocked(op): dy [B x out] blocked, dx [B x in]
 * blocked (dx_blocked = 1) or NCHW; the same bits as linop_transpose's on
 * the same values. Returns 0 or an fsnn status. */
int linop_transpose_blocked(const linop *op, const float *W, const float *dy, float *dx, int B,
                            int dx_blocked);

/* --- transpose products through a fixed sparse diagonal ---
 * The adjoint solve (SPEC §3) applies W^T (d ⊙ v) many times with the same
 * d = drop_s ⊙ m / V_th, which is zero for every neuron outside 0 < z < 1.
 * Where few entries of a sample's d are non-zero, only their rows of W (FC)
 * or kernel taps (conv) are needed. The lists of non-zero entries are built
 * once per solve (linop_mask_lists); each product then picks, per sample,
 * the dense path or the event path by that sample's density. */

/* FC in bf16: bench/bench_spike on F400 (n = 400, batch 128, one thread)
 * measured oneDNN's bf16 matmul 2.7x as fast as sgemm, and the event path
 * against it 1.34x faster at a density of 0.05, 0.82x at 0.1
 * (docs/performance.md). */
#define LINOP_FC_EVENT_DENSITY_BF16 0.08

/* FC: bench/bench_spike on F400 (n = 400, batch 128, one thread) measured
 * the event path 2.4x faster at a density of 0.1, 1.29x at 0.2, 0.89x at
 * 0.3 (docs/performance.md). */
#define LINOP_FC_ADJOINT_DENSITY 0.25

/* Below this fraction of non-zero entries of a sample's d the event path of
 * linop_masked_transpose is the faster one: LINOP_FC_ADJOINT_DENSITY or
 * CONV_ADJOINT_EVENT_DENSITY. */
double linop_adjoint_density(const linop *op);

/* Floats of the event path's weights (linop_adjoint_weights): 0 for FC,
 * whose rows of W serve as they are. */
size_t linop_adjoint_size(const linop *op);

/* Wa [linop_adjoint_size] from W (conv_adjoint_weights; nothing for FC).
 * Recompute whenever W changes. */
void linop_adjoint_weights(const linop *op, const float *W, float *Wa);

/* For each sample b of d [B x out]: idx[b out ..] lists the j with
 * d[b,j] != 0 in ascending order, nnz[b] their count. Returns the total
 * count. idx [B x out], nnz [B]. */
long linop_mask_lists(const float *d, int B, int out, int *idx, int *nnz);

/* dx[r] [in] = op^T(d[b] ⊙ v[r]) for r < nrows, with b = rows[r] (rows
 * NULL: b = r): v, dx [nrows x out], [nrows x in] compact; d, idx, nnz
 * [B x out], [B x out], [B] indexed by sample (linop_mask_lists of d).
 * Each sample takes the event path (the sum of its listed rows of W
 * scaled by d v, or conv_masked_vjp_event) when mode is SPIKE_EVENT, or
 * SPIKE_AUTO and nnz[b] < linop_adjoint_density * out; else the dense
 * linop_transpose of d ⊙ v, batched over the dense samples. The paths add
 * the same terms in different orders (conv.h states the bound). tmp
 * [nrows x out] is borrowed. A transposed conv always takes the dense path.
 * Returns the number of samples that took the event path. */
int linop_masked_transpose(const linop *op, const float *W, const float *Wa, const float *d,
                           const int *idx, const int *nnz, const int *rows, int nrows,
                           const float *v, float *dx, float *tmp, cfg_spike_product mode,
                           float *ws);

/* dW [rows x cols] = sum_b dy_b (d op / dW) x_b, db [channels] = the sums
 * of dy per channel (NULL: not computed); both overwritten. */
void linop_weight_grad(const linop *op, const float *x, const float *dy, float *dW, float *db,
                       int B, float *ws);

/* Power iteration for sigma(V) (specnorm_power, conv_power_iter; a
 * transposed conv has the norm of its conv): u [out], v [in], work
 * [max(in, out)]. */
float linop_power(const linop *op, const float *V, float *u, float *v, int iters, float *work,
                  float *ws);

/* The spectral restriction's VJP (specnorm_vjp): given dW, accumulates dV
 * and *dg. tmp [rows x cols] (conv only). */
void linop_sn_vjp(const linop *op, const float *V, const float *u, const float *v, float g,
                  float sigma, const float *dW, float *dV, float *dg, float *tmp, float *ws);

/* The map as a dense matrix M [out x in] in double (exact solves of small
 * nets). Conv allocates its scratch; returns non-zero when out of memory. */
int linop_dense(const linop *op, const float *W, double *M);

#endif
