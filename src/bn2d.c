/* bn2d: per-channel batch normalisation, sums in double. Channels are
 * independent, so OpenMP splits them without changing any result. */
#include "bn2d.h"

#include <math.h>

#include "blas.h"

void bn2d_sums(const float *x, int B, int C, int hw, double *sum) {
#pragma omp parallel for schedule(static) if ((long)B * C * hw > BLAS_PARALLEL_MIN)
    for (int c = 0; c < C; c++) {
        double s = 0.0;
        for (int i = 0; i < B; i++) {
            const float *m = x + ((long)i * C + c) * hw;
            for (int q = 0; q < hw; q++)
                s += m[q];
        }
        sum[c] = s;
    }
}

void bn2d_sqdev_sums(const float *x, const double *mean, int B, int C, int hw, double *sqdev) {
#pragma omp parallel for schedule(static) if ((long)B * C * hw > BLAS_PARALLEL_MIN)
    for (int c = 0; c < C; c++) {
        double ss = 0.0, mu = mean[c];
        for (int i = 0; i < B; i++) {
            const float *m = x + ((long)i * C + c) * hw;
            for (int q = 0; q < hw; q++) {
                double d = m[q] - mu;
                ss += d * d;
            }
        }
        sqdev[c] = ss;
    }
}

void bn2d_batch_stats(const float *x, int B, int C, int hw, double *mean, double *var) {
    const double n = (double)B * hw;
    bn2d_sums(x, B, C, hw, mean);
    for (int c = 0; c < C; c++)
        mean[c] = n > 0 ? mean[c] / n : 0.0;
    bn2d_sqdev_sums(x, mean, B, C, hw, var);
    for (int c = 0; c < C; c++)
        var[c] = n > 0 ? var[c] / n : 0.0;
}

void bn2d_normalize_train(const float *x, const float *gamma, const float *beta, const double *mean,
                          const double *var, long count, float *run_mean, float *run_var,
                          float *xhat, float *invstd, float *y, int B, int C, int hw) {
#pragma omp parallel for schedule(static) if ((long)B * C * hw > BLAS_PARALLEL_MIN)
    for (int c = 0; c < C; c++) {
        float is = (float)(1.0 / sqrt(var[c] + BN_EPS));
        invstd[c] = is;
        for (int i = 0; i < B; i++) {
            long base = ((long)i * C + c) * hw;
            for (int q = 0; q < hw; q++) {
                long k = base + q;
                xhat[k] = (float)((x[k] - mean[c]) * is);
                y[k] = gamma[c] * xhat[k] + beta[c];
            }
        }
    }
    bn2d_update_running(mean, var, count, run_mean, run_var, C);
}

void bn2d_update_running(const double *mean, const double *var, long count, float *run_mean,
                         float *run_var, int C) {
    for (int c = 0; c < C; c++) {
        double unbiased = count > 1 ? var[c] * count / (count - 1) : var[c];
        run_mean[c] = (1.0f - BN_MOMENTUM) * run_mean[c] + BN_MOMENTUM * (float)mean[c];
        run_var[c] = (1.0f - BN_MOMENTUM) * run_var[c] + BN_MOMENTUM * (float)unbiased;
    }
}

void bn2d_forward_eval(const float *x, const float *gamma, const float *beta, const float *run_mean,
                       const float *run_var, float *y, int B, int C, int hw) {
    for (int c = 0; c < C; c++) {
        float scale = gamma[c] / sqrtf(run_var[c] + BN_EPS);
        float shift = beta[c] - run_mean[c] * scale;
        for (int i = 0; i < B; i++) {
            long base = ((long)i * C + c) * hw;
            for (int q = 0; q < hw; q++)
                y[base + q] = x[base + q] * scale + shift;
        }
    }
}

void bn2d_grad_sums(const float *dy, const float *xhat, int B, int C, int hw, double *sdy,
                    double *sdyx) {
#pragma omp parallel for schedule(static) if ((long)B * C * hw > BLAS_PARALLEL_MIN)
    for (int c = 0; c < C; c++) {
        double a = 0.0, b = 0.0;
        for (int i = 0; i < B; i++) {
            long base = ((long)i * C + c) * hw;
            for (int q = 0; q < hw; q++) {
                a += dy[base + q];
                b += (double)dy[base + q] * xhat[base + q];
            }
        }
        sdy[c] = a;
        sdyx[c] = b;
    }
}

void bn2d_vjp_apply(const float *dy, const float *xhat, const float *invstd, const float *gamma,
                    const double *sdy, const double *sdyx, long count, float *dx, int B, int C,
                    int hw) {
#pragma omp parallel for schedule(static) if ((long)B * C * hw > BLAS_PARALLEL_MIN)
    for (int c = 0; c < C; c++) {
        double g = gamma[c] * invstd[c] / (double)count;
        for (int i = 0; i < B; i++) {
            long base = ((long)i * C + c) * hw;
            for (int q = 0; q < hw; q++) {
                long k = base + q;
                dx[k] = (float)(g * ((double)count * dy[k] - sdy[c] - xhat[k] * sdyx[c]));
            }
        }
    }
}
