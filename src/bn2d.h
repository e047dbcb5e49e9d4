/* bn2d: BatchNorm2d (as torch.nn.BatchNorm2d): one mean and variance per
 * channel over the B H W values of the batch. Shapes: x, y [B x C x hw]
 * (NCHW with hw = H W); gamma, beta, running mean/var, invstd [C].
 * Training uses the batch statistics (biased variance for normalising,
 * unbiased for the running estimate, momentum BN_MOMENTUM, eps BN_EPS as
 * bn.h); evaluation uses the running statistics.
 *
 * A separate module rather than an `hw` argument to bn.h so that the 1d
 * layer and its callers stay as they are; with hw = 1 the results equal
 * bn.h's. The batch may be spread over ranks: every statistic is built from
 * per-channel sums over the local values, which the caller all-reduces, and
 * `count` is the global number of values per channel (B H W summed over
 * ranks). Two passes, as model.c does for the 1d layer:
 *   bn2d_sums -> all-reduce -> mean = sum / count
 *   bn2d_sqdev_sums(mean) -> all-reduce -> var = sqdev / count.
 * Nothing allocates; arrays are borrowed. */
#ifndef FSNN_BN2D_H
#define FSNN_BN2D_H

#include "bn.h"

/* sum[c] = the sum of channel c's B hw local values (double). */
void bn2d_sums(const float *x, int B, int C, int hw, double *sum);

/* sqdev[c] = sum of (x - mean[c])^2 over channel c's local values. */
void bn2d_sqdev_sums(const float *x, const double *mean, int B, int C, int hw, double *sqdev);

/* Mean and biased variance of each channel over the local values only (one
 * process): the two passes above divided by B hw. */
void bn2d_batch_stats(const float *x, int B, int C, int hw, double *mean, double *var);

/* Training forward with the statistics of `count` values per channel:
 * y = gamma xhat + beta. Saves xhat [B x C x hw] and invstd [C] for the VJP
 * and updates the running statistics once (SPEC §4). */
void bn2d_normalize_train(const float *x, const float *gamma, const float *beta, const double *mean,
                          const double *var, long count, float *run_mean, float *run_var,
                          float *xhat, float *invstd, float *y, int B, int C, int hw);

/* The running statistics' update of bn2d_normalize_train alone: momentum
 * BN_MOMENTUM towards mean and the unbiased variance of `count` values. */
void bn2d_update_running(const double *mean, const double *var, long count, float *run_mean,
                         float *run_var, int C);

void bn2d_forward_eval(const float *x, const float *gamma, const float *beta, const float *run_mean,
                       const float *run_var, float *y, int B, int C, int hw);

/* The VJP's local sums: sdy[c] = sum dy, sdyx[c] = sum dy xhat. They are the
 * parameter gradients (dgamma = sdyx, dbeta = sdy) once summed over ranks. */
void bn2d_grad_sums(const float *dy, const float *xhat, int B, int C, int hw, double *sdy,
                    double *sdyx);

/* dx [B x C x hw] from dy with the sums over all `count` values per channel. */
void bn2d_vjp_apply(const float *dy, const float *xhat, const float *invstd, const float *gamma,
                    const double *sdy, const double *sdyx, long count, float *dx, int B, int C,
                    int hw);

#endif
