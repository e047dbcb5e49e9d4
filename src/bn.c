/* bn: batch normalisation, statistics in double for stability. */
#include "bn.h"

#include <math.h>

#include "blas.h"

void bn_batch_stats(const float *x, int B, int n, double *mean, double *var) {
#pragma omp parallel for schedule(static) if ((long)B * n > BLAS_PARALLEL_MIN)
    for (int j = 0; j < n; j++) {
        double s = 0.0, ss = 0.0;
        for (int i = 0; i < B; i++)
            s += x[(long)i * n + j];
        double mu = B > 0 ? s / B : 0.0;
        for (int i = 0; i < B; i++) {
            double d = x[(long)i * n + j] - mu;
            ss += d * d;
        }
        mean[j] = mu;
        var[j] = B > 0 ? ss / B : 0.0;
    }
}

void bn_normalize_train(const float *x, const float *gamma, const float *beta, const double *mean,
                        const double *var, long count, float *run_mean, float *run_var, float *xhat,
                        float *invstd, float *y, int B, int n) {
#pragma omp parallel for schedule(static) if ((long)B * n > BLAS_PARALLEL_MIN)
    for (int j = 0; j < n; j++) {
        float is = (float)(1.0 / sqrt(var[j] + BN_EPS));
        invstd[j] = is;
        for (int i = 0; i < B; i++) {
            long k = (long)i * n + j;
            xhat[k] = (float)((x[k] - mean[j]) * is);
            y[k] = gamma[j] * xhat[k] + beta[j];
        }
        double unbiased = count > 1 ? var[j] * count / (count - 1) : var[j];
        run_mean[j] = (1.0f - BN_MOMENTUM) * run_mean[j] + BN_MOMENTUM * (float)mean[j];
        run_var[j] = (1.0f - BN_MOMENTUM) * run_var[j] + BN_MOMENTUM * (float)unbiased;
    }
}

void bn_forward_eval(const float *x, const float *gamma, const float *beta, const float *run_mean,
                     const float *run_var, float *y, int B, int n) {
    for (int j = 0; j < n; j++) {
        float scale = gamma[j] / sqrtf(run_var[j] + BN_EPS);
        float shift = beta[j] - run_mean[j] * scale;
        for (int i = 0; i < B; i++)
            y[(long)i * n + j] = x[(long)i * n + j] * scale + shift;
    }
}

void bn_grad_sums(const float *dy, const float *xhat, int B, int n, double *sdy, double *sdyx) {
#pragma omp parallel for schedule(static) if ((long)B * n > BLAS_PARALLEL_MIN)
    for (int j = 0; j < n; j++) {
        double a = 0.0, b = 0.0;
        for (int i = 0; i < B; i++) {
            long k = (long)i * n + j;
            a += dy[k];
            b += (double)dy[k] * xhat[k];
        }
        sdy[j] = a;
        sdyx[j] = b;
    }
}

void bn_vjp_apply(const float *dy, const float *xhat, const float *invstd, const float *gamma,
                  const double *sdy, const double *sdyx, long count, float *dx, int B, int n) {
#pragma omp parallel for schedule(static) if ((long)B * n > BLAS_PARALLEL_MIN)
    for (int j = 0; j < n; j++) {
        double c = gamma[j] * invstd[j] / (double)count;
        for (int i = 0; i < B; i++) {
            long k = (long)i * n + j;
            dx[k] = (float)(c * ((double)count * dy[k] - sdy[j] - xhat[k] * sdyx[j]));
        }
    }
}
