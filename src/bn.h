/* bn: BatchNorm1d over the batch dimension (as torch.nn.BatchNorm1d).
 * Shapes: x, y [B x n]; gamma, beta, running mean/var [n]. Training uses the
 * batch statistics (biased variance for normalising, unbiased for the running
 * estimate); evaluation uses the running statistics.
 *
 * The batch may be spread over ranks: the statistics and the VJP's sums are
 * then computed by the caller over the whole batch (model.c reduces them) and
 * passed in with `count`, the global number of samples (B for one process). */
#ifndef FSNN_BN_H
#define FSNN_BN_H

#define BN_EPS 1e-5f
#define BN_MOMENTUM 0.1f

/* Mean and biased variance of each feature over the B local samples. */
void bn_batch_stats(const float *x, int B, int n, double *mean, double *var);

/* Training forward with given statistics of `count` samples: y = gamma * xhat
 * + beta. Saves xhat [B x n] and invstd [n] for the VJP and updates the
 * running statistics once (SPEC §4). */
void bn_normalize_train(const float *x, const float *gamma, const float *beta, const double *mean,
                        const double *var, long count, float *run_mean, float *run_var, float *xhat,
                        float *invstd, float *y, int B, int n);

void bn_forward_eval(const float *x, const float *gamma, const float *beta, const float *run_mean,
                     const float *run_var, float *y, int B, int n);

/* The VJP's sums over the B local samples: sdy = sum dy, sdyx = sum dy xhat. */
void bn_grad_sums(const float *dy, const float *xhat, int B, int n, double *sdy, double *sdyx);

/* dx from dy with the sums over all `count` samples. The parameter gradients
 * are the sums themselves: dgamma = sdyx, dbeta = sdy. */
void bn_vjp_apply(const float *dy, const float *xhat, const float *invstd, const float *gamma,
                  const double *sdy, const double *sdyx, long count, float *dx, int B, int n);

#endif
