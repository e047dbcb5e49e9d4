/* specnorm: the spectral restriction of the feedback weight (SPEC §4):
 * W = g * V / sigma(V), g a learnt scalar kept in [-1, 1], sigma(V) estimated
 * by power iteration with persistent vectors u [rows], v [cols]; sigma is
 * u^T V v and its gradient flows through V with u, v held fixed (as
 * torch.nn.utils.spectral_norm does). With V_th = 2 this keeps
 * ||W||_2 <= 1 < V_th, the condition of Theorems 1-3. */
#ifndef FSNN_SPECNORM_H
#define FSNN_SPECNORM_H

#include <stdint.h>

/* Random unit start vectors for u and v. */
void specnorm_init_vectors(float *u, int rows, float *v, int cols, uint64_t seed);

/* Runs `iters` power iterations (v = V^T u / ||.||, u = V v / ||.||) and
 * returns sigma = u^T V v. iters = 0 only evaluates sigma. `work` [rows]. */
float specnorm_power(const float *V, int rows, int cols, float *u, float *v, int iters,
                     float *work);

/* W = g * V / sigma over `count` entries. */
void specnorm_weight(const float *V, float g, float sigma, float *W, long count);

/* Given dW = dL/dW, accumulates dV and *dg. */
void specnorm_vjp(const float *V, const float *u, const float *v, float g, float sigma,
                  const float *dW, float *dV, float *dg, int rows, int cols);

/* Keeps g in [-1, 1] after an optimiser step. */
float specnorm_clamp_g(float g);

#endif
