/* dnnconv: the dense convolutions of conv.h through oneDNN's primitives
 * (Debian's libdnnl 2.6, its C API).
 *
 * The same maps as conv_forward and conv_vjp, on the same NCHW float32
 * arrays and [O x C x k x k] weights: oneDNN's direct convolutions (JIT
 * kernels for the CPU's vector units) instead of im2col + sgemm. Each
 * calling thread keeps its own primitives, one per (map, shape, batch),
 * created at first use and reused; arrays enter and leave in the layout
 * the primitive prefers through reorders held with it. oneDNN runs on the
 * OpenMP threads of the calling context (inside a parallel region: the
 * caller's thread alone).
 *
 * A batch runs as chunks of power-of-two sizes (the primitives are made
 * per batch size and the callers' counts vary). In bf16 (the _prec calls
 * with bf16 = 1, the simulation's spike products of compute.sim_precision)
 * the input and the weights are rounded to bf16 (spikes are exact) and the
 * products are summed in float by the CPU's AVX512_BF16 instructions.
 *
 * Results equal conv.h's within float rounding: the same terms added in
 * another order. Whether they are the same bit for bit from one call to the
 * next depends on the implementation oneDNN picks (dnnconv_impl names it);
 * docs/performance.md gives what was measured. */
#ifndef FSNN_DNNCONV_H
#define FSNN_DNNCONV_H

#include "conv.h"

typedef enum { DNNCONV_FORWARD, DNNCONV_BACKWARD_DATA, DNNCONV_BACKWARD_WEIGHTS } dnnconv_map;

/* y [B x O x Ho x Wo] = conv(x, Wt) + b, as conv_forward; b may be NULL. */
int dnnconv_forward(const conv_shape *s, const float *x, const float *Wt, const float *b, float *y,
                    int B);

/* dx [B x C x H x W] = conv^T(dy), conv_vjp's dx (overwritten). */
int dnnconv_backward_data(const conv_shape *s, const float *Wt, const float *dy, float *dx, int B);

/* The same two maps with x (dy) and Wt rounded to bf16 when bf16 = 1 (the
 * output stays float; no bias in bf16). */
int dnnconv_forward_prec(const conv_shape *s, const float *x, const float *Wt, const float *b,
                         float *y, int B, int bf16);
int dnnconv_backward_data_prec(const conv_shape *s, const float *Wt, const float *dy, float *dx,
                               int B, int bf16);

/* --- the blocked layout ---
 * oneDNN's direct convolutions read and write feature maps with the
 * channels in blocks of 16: sample b, block j, position p, channel j 16 + i
 * at ((b C / 16 + j) hw + p) 16 + i (nChw16c). A chain of products that
 * keeps its maps in that layout (the adjoint's J^T through the layers)
 * saves the two reorders around every call. The results are the same
 * bits as the NCHW calls': the same primitive on the same values. */
#define DNNCONV_BLOCK 16
/* 1 when a map of C channels has the blocked layout (C a multiple of 16). */
int dnnconv_blocks(int C);
/* dnnconv_forward without bias from a blocked x, into y blocked
 * (y_blocked = 1) or NCHW. */
int dnnconv_forward_blocked(const conv_shape *s, const float *x, const float *Wt, float *y, int B,
                            int y_blocked);
/* dnnconv_backward_data from a blocked dy, into dx blocked (dx_blocked = 1)
 * or NCHW. */
int dnnconv_backward_data_blocked(const conv_shape *s, const float *Wt, const float *dy, float *dx,
                                  int B, int dx_blocked);
/* y = x [B x C x hw] from NCHW to blocked (dnnconv_block) and back
 * (dnnconv_unblock); dnnconv_blocks(C), x and y distinct. */
void dnnconv_block(const float *x, float *y, int B, int C, int hw);
void dnnconv_unblock(const float *x, float *y, int B, int C, int hw);
/* dW [O x C x k x k] += dL/dWt and, when db is not NULL, db [O] += dL/db,
 * as conv_vjp. */
int dnnconv_backward_weights(const conv_shape *s, const float *x, const float *dy, float *dW,
                             float *db, int B);

/* The name of the implementation oneDNN picks for `map` of s at batch B
 * (e.g. "jit:avx512_core"; bf16 = 1: the bf16 map), into buf[size]. */
int dnnconv_impl(const conv_shape *s, dnnconv_map map, int B, int bf16, char *buf, size_t size);

/* Frees the calling thread's primitives (tests, and before exit so that
 * leak checkers see nothing held). */
void dnnconv_release(void);

#endif
