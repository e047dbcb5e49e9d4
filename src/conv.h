/* conv: 2-d convolution and transposed convolution with their VJPs, dense
 * (im2col + sgemm) or event-driven from 0/1 spikes, and the power iteration
 * of a conv operator for the spectral restriction (SPEC §4).
 *
 * Layout: NCHW float32, row-major, batch B first. A conv maps
 * x [B x C x H x W] to y [B x O x Ho x Wo] with weights [O x C x k x k]
 * (as torch.nn.Conv2d), bias [O], zero padding `pad` on every side and
 * Ho = (H + 2 pad - k) / stride + 1 (floor), likewise Wo.
 *
 * A transposed conv (torch.nn.ConvTranspose2d) maps x [B x Cin x Hi x Wi] to
 * y [B x Cout x Ho x Wo], Ho = (Hi - 1) stride - 2 pad + k + out_pad, with
 * weights [Cin x Cout x k x k] (torch's layout) and bias [Cout]. Its forward
 * is the input-VJP of the conv Cout x Ho x Wo -> Cin x Hi x Wi with the same
 * weight array, and its input-VJP is that conv's forward; the nets' 2x
 * upscaling is k 3, stride 2, pad 1, out_pad 1 (Ho = 2 Hi).
 *
 * Every function borrows its arrays; nothing allocates. `ws` is a work buffer
 * of *_workspace_size floats for one call: calls that run at the same time
 * need distinct outputs and distinct work buffers, and are then thread-safe.
 * The dense paths use BLAS's threads; the event paths run on the calling
 * thread (callers parallelise over micro-shards). */
#ifndef FSNN_CONV_H
#define FSNN_CONV_H

#include <stddef.h>

#include "cfg.h"

/* Below these fractions of active inputs the event-driven conv is taken
 * instead of the dense one; conv_event_density picks the one of a shape's
 * dense path. bench/bench_conv on the F64C5 feedback conv (64 -> 64
 * channels, 14x14, k 5, batch 128, one thread: the simulation runs one
 * sample chunk per thread) measured, against im2col + sgemm, the event
 * path 2.5x faster at a density of 0.2, 1.28x at 0.4, 0.88x at 0.6; against
 * oneDNN, 1.5x at 0.1 and 0.92x at 0.2; against oneDNN in bf16 (twice as
 * fast as in float), 1.06x at 0.05 and 0.78x at 0.1 (docs/performance.md
 * has the tables). */
#define CONV_EVENT_DENSITY 0.3
#define CONV_EVENT_DENSITY_DNN 0.15
#define CONV_EVENT_DENSITY_BF16 0.05

/* The same for the transposed conv on a 2x upscaling (96 -> 96 channels,
 * 8x8 -> 16x16, k 3, stride 2, one thread): the crossover against im2col at
 * about 0.3 (event 1.44x faster at 0.2, 0.72x at 0.4), against oneDNN at
 * about 0.16 (1.4x at 0.1, 0.82x at 0.2), against oneDNN in bf16 at about
 * 0.065 (1.18x at 0.05, 0.74x at 0.1). */
#define CONV_TRANSPOSE_EVENT_DENSITY 0.2
#define CONV_TRANSPOSE_EVENT_DENSITY_DNN 0.15
#define CONV_TRANSPOSE_EVENT_DENSITY_BF16 0.06

/* Below this fraction of listed outputs a sample's input-VJP from a sparse
 * dy (conv_masked_vjp_event, the adjoint's event path) is taken instead of
 * the dense VJP. bench/bench_conv on the F64C5 feedback conv (batch 128,
 * one thread) measured the event path against sgemm + col2im 5.9x faster at
 * a density of 0.1, 1.7x at 0.4, 1.16x at 0.6; against oneDNN 1.6x at 0.1,
 * 1.27x at 0.15, 0.95x at 0.2 (docs/performance.md). */
#define CONV_ADJOINT_EVENT_DENSITY 0.5
#define CONV_ADJOINT_EVENT_DENSITY_DNN 0.2

typedef struct {
    int C, H, W;           /* input channels and size */
    int O, k, stride, pad; /* output channels, kernel (odd), stride (1, 2), padding */
    int Ho, Wo;            /* output size */
    /* 1: the dense maps (forward, VJPs, and the transposed conv's built on
     * them) run on oneDNN's direct convolutions (dnnconv.h) instead of im2col
     * + sgemm; conv_shape_init sets 0. The event paths and the power
     * iteration (one sample) keep conv.c's own code. */
    int dnn;
    /* 1: the dense path of conv_spike_forward (and of the transposed conv's
     * conv_transpose_spike_forward), the simulation's products, runs on
     * oneDNN in bf16: spikes exact, weights rounded, float sums
     * (compute.sim_precision; needs dnn). conv_shape_init sets 0. */
    int bf16;
} conv_shape;

/* Checks the arguments (positive sizes, odd k, stride 1 or 2, 0 <= pad < k,
 * an output of at least 1x1) and fills *s. */
int conv_shape_init(conv_shape *s, int C, int H, int W, int O, int k, int stride, int pad);

/* Floats of `ws` that conv_forward, conv_vjp, conv_spike_forward,
 * conv_masked_vjp_event and conv_power_iter need (one sample at a time). */
size_t conv_workspace_size(const conv_shape *s);

/* y [B x O x Ho x Wo] = conv(x [B x C x H x W], Wt [O x C x k x k]) + b [O];
 * b may be NULL (no bias). */
void conv_forward(const conv_shape *s, const float *x, const float *Wt, const float *b, float *y,
                  int B, float *ws);

/* Given dy [B x O x Ho x Wo]: dW [O x C x k x k] += dL/dWt, db [O] += dL/db,
 * dx [B x C x H x W] = dL/dx (overwritten). Any of dW, db, dx may be NULL. */
void conv_vjp(const conv_shape *s, const float *x, const float *Wt, const float *dy, float *dW,
              float *db, float *dx, int B, float *ws);

/* The weights of the event path: We [C x k x k x O], We[c,ky,k-1-kx,o] =
 * Wt[o,c,ky,kx]: one input's contributions to all output channels are
 * contiguous, and with kx reversed so are a kernel row's contributions to
 * adjacent outputs. Recompute whenever Wt changes. */
void conv_event_weights(const conv_shape *s, const float *Wt, float *We);

/* The crossover densities of s's dense path (dnn, bf16): the forward map's
 * CONV_EVENT_DENSITY*, the transposed conv's (s its underlying conv)
 * CONV_TRANSPOSE_EVENT_DENSITY*, the adjoint's CONV_ADJOINT_EVENT_DENSITY*. */
double conv_event_density(const conv_shape *s);
double conv_transpose_event_density(const conv_shape *s);
double conv_adjoint_density(const conv_shape *s);

/* y = conv(sp, Wt) + b for spikes sp in {0, 1} [B x C x H x W]: im2col +
 * sgemm (SPIKE_DENSE), or (SPIKE_EVENT) for each active input its kernel
 * taps from We added to the outputs they reach; SPIKE_AUTO takes the event
 * path when the fraction of non-zero sp is below conv_event_density(s).
 * The two paths add the same terms in different orders: for every output,
 * |event - dense| <= C k^2 2^-23 sum |terms| (the recursive-summation bound;
 * exact when the weights are dyadic with short mantissas). Returns 1 when the
 * event path ran, 0 for sgemm. */
int conv_spike_forward(const conv_shape *s, const float *sp, const float *Wt, const float *We,
                       const float *b, float *y, int B, float *ws, cfg_spike_product mode);

/* Power iteration for the operator norm of x -> conv(x, Wt) (no bias) on
 * the feature-map space, for W = g V / sigma(V) with a conv V (SPEC §4).
 * u [O x Ho x Wo], v [C x H x W] are the persistent vectors (start them with
 * specnorm_init_vectors(u, O Ho Wo, v, C H W, seed)). Runs `iters` times
 * v = conv^T(u) / ||.||, u = conv(v) / ||.|| and returns sigma = u^T conv(v);
 * iters = 0 only evaluates sigma. `work` [O x Ho x Wo]. The gradient of
 * sigma with u, v held fixed is conv_vjp(s, v, Wt, u, dsigma, NULL, NULL, 1,
 * ws): dsigma/dWt is the weight-VJP of the one-sample conv at x = v, dy = u. */
float conv_power_iter(const conv_shape *s, const float *Wt, float *u, float *v, int iters,
                      float *work, float *ws);

/* The weights of conv_masked_vjp_event: Wa [O x k x k x C], Wa[o,ky,kx,c] =
 * Wt[o,c,ky,kx]: one output's contributions to all input channels are
 * contiguous, and so are a kernel row's contributions to adjacent inputs.
 * Recompute whenever Wt changes. */
void conv_adjoint_weights(const conv_shape *s, const float *Wt, float *Wa);

/* One sample's input-VJP dx [C x H x W] = conv^T(dy) (as conv_vjp's dx) for
 * dy = d ⊙ v [O x Ho x Wo] that is zero outside the nnz outputs idx
 * (indices into O Ho Wo, each at most once): every listed output adds its
 * kernel taps from Wa, scaled by d[j] v[j], to the inputs it reads. The
 * cost is nnz C k^2 instead of O C k^2 Ho Wo. Against sgemm + col2im the
 * same terms are added in another order: |event - dense| <= O k^2 2^-23
 * sum |terms| for every input (exact for dyadic values with short
 * mantissas). Runs on the calling thread. */
void conv_masked_vjp_event(const conv_shape *s, const float *Wa, const float *d, const float *v,
                           const int *idx, int nnz, float *dx, float *ws);

typedef struct {
    int Cin, Hi, Wi;             /* input channels and size */
    int Cout, Ho, Wo;            /* output channels and size */
    int k, stride, pad, out_pad; /* out_pad < stride, as torch requires */
    conv_shape conv;             /* the conv Cout x Ho x Wo -> Cin x Hi x Wi */
} conv_transpose_shape;

/* Checks the arguments (as conv_shape_init, and 0 <= out_pad < stride) and
 * fills *t. */
int conv_transpose_shape_init(conv_transpose_shape *t, int Cin, int Hi, int Wi, int Cout, int k,
                              int stride, int pad, int out_pad);

/* Floats of `ws` for the conv_transpose_* functions. */
size_t conv_transpose_workspace_size(const conv_transpose_shape *t);

/* y [B x Cout x Ho x Wo] = convT(x [B x Cin x Hi x Wi], Wt [Cin x Cout x k x
 * k]) + b [Cout]; b may be NULL. */
void conv_transpose_forward(const conv_transpose_shape *t, const float *x, const float *Wt,
                            const float *b, float *y, int B, float *ws);

/* Given dy [B x Cout x Ho x Wo]: dW [Cin x Cout x k x k] += , db [Cout] += ,
 * dx [B x Cin x Hi x Wi] = (overwritten). Any of dW, db, dx may be NULL. */
void conv_transpose_vjp(const conv_transpose_shape *t, const float *x, const float *Wt,
                        const float *dy, float *dW, float *db, float *dx, int B, float *ws);

/* We [Cin x k x k x Cout], We[ci,ky,kx,co] = Wt[ci,co,ky,kx]. */
void conv_transpose_event_weights(const conv_transpose_shape *t, const float *Wt, float *We);

/* conv_transpose_forward for spikes sp in {0, 1} [B x Cin x Hi x Wi]: dense,
 * or for each active input the kernel We[ci,ky,kx,:] added at the outputs it
 * reaches; SPIKE_AUTO switches below conv_transpose_event_density. Same
 * tolerance as conv_spike_forward with Cin k^2 terms (at most Cin
 * ceil(k/stride)^2 reach one output). Returns 1 when the event path ran. */
int conv_transpose_spike_forward(const conv_transpose_shape *t, const float *sp, const float *Wt,
                                 const float *We, const float *b, float *y, int B, float *ws,
                                 cfg_spike_product mode);

#endif
