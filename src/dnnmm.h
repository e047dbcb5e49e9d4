/* dnnmm: the fully connected spike product cur = s W^T in bf16 through
 * oneDNN's matmul (Debian's libdnnl 2.6, its C API), for the simulation's
 * products of compute.sim_precision = bf16.
 *
 * The spikes s are 0 or 1 and exact in bf16; the weights are rounded to
 * bf16 (round to nearest even) and the products summed in float by the
 * CPU's AVX512_BF16 instructions (dnn_has_bf16), so the result is the float
 * sum of the bf16-rounded weights of each sample's active inputs, the terms
 * in another order. Primitives are cached per thread and per batch size
 * (batches run as power-of-two chunks, as in dnnconv.h) and run on the
 * threads of the calling context (dnn.h). */
#ifndef FSNN_DNNMM_H
#define FSNN_DNNMM_H

#include <stddef.h>

/* cur [B x out] = s [B x in] W^T, W [out x in] row-major (overwritten). */
int dnnmm_spike(const float *s, const float *W, float *cur, int B, int in, int out);

/* The name of the implementation oneDNN picks (e.g. "brg:avx512_core_bf16")
 * for batch B, into buf[size]. */
int dnnmm_impl(int B, int in, int out, char *buf, size_t size);

/* Frees the calling thread's primitives (tests, and before exit). */
void dnnmm_release(void);

#endif
