/* bn: BatchNorm1d over the batch dimension (as torch.nn.BatchNorm1d).
 * Shapes: x, y [B x n]; gamma, beta, running mean/var [n]. Training uses the
 * batch statistics (biased variance for normalising, unbiased for the running
 * estimate); evaluation uses the running statistics. */
#ifndef FSNN_BN_H
#define FSNN_BN_H

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

/* Training forward: y = gamma * xhat + beta. Saves xhat [B x n] and invstd [n]
 * for the VJP and updates the running statistics once (SPEC §4). */
void bn_forward_train(const float *x, const float *gamma, const float *beta, float *run_mean,
                      float *run_var, float *xhat, float *invstd, float *y, int B, int n);

void bn_forward_eval(const float *x, const float *gamma, const float *beta, const float *run_mean,
                     const float *run_var, float *y, int B, int n);

/* Accumulates dgamma, dbeta and writes dx from dy, with xhat and invstd saved
 * by the training forward. */
void bn_vjp(const float *dy, const float *xhat, const float *invstd, const float *gamma,
            float *dgamma, float *dbeta, float *dx, int B, int n);

#endif
