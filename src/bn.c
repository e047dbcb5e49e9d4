/* bn: batch normalisation, statistics in double for stability. */
#include "bn.h"

#include <math.h>

#include "blas.h"

void bn_forward_train(const float *x, const float *gamma, const float *beta, float *run_mean,
                      float *run_var, float *xhat, float *invstd, float *y, int B, int n) {
#pragma omp parallel for schedule(static) if ((long)B * n > BLAS_PARALLEL_MIN)
    for (int j = 0; j < n; j++) {
        double s = 0.0, ss = 0.0;
        for (int i = 0; i < B; i++) s += x[(long)i * n + j];
        double mean = s / B;
        for (int i = 0; i < B; i++) {
            double d = x[(long)i * n + j] - mean;
            ss += d * d;
        }
        double var = ss / B;
        float is = (float)(1.0 / sqrt(var + BN_EPS));
        invstd[j] = is;
        for (int i = 0; i < B; i++) {
            long k = (long)i * n + j;
            xhat[k] = (float)((x[k] - mean) * is);
            y[k] = gamma[j] * xhat[k] + beta[j];
        }
        double unbiased = B > 1 ? ss / (B - 1) : var;
        run_mean[j] = (1.0f - BN_MOMENTUM) * run_mean[j] + BN_MOMENTUM * (float)mean;
        run_var[j] = (1.0f - BN_MOMENTUM) * run_var[j] + BN_MOMENTUM * (float)unbiased;
    }
}

void bn_forward_eval(const float *x, const float *gamma, const float *beta, const float *run_mean,
                     const float *run_var, float *y, int B, int n) {
    for (int j = 0; j < n; j++) {
        float scale = gamma[j] / sqrtf(run_var[j] + BN_EPS);
        float shift = beta[j] - run_mean[j] * scale;
        for (int i = 0; i < B; i++) y[(long)i * n + j] = x[(long)i * n + j] * scale + shift;
    }
}

void bn_vjp(const float *dy, const float *xhat, const float *invstd, const float *gamma,
            float *dgamma, float *dbeta, float *dx, int B, int n) {
#pragma omp parallel for schedule(static) if ((long)B * n > BLAS_PARALLEL_MIN)
    for (int j = 0; j < n; j++) {
        double sdy = 0.0, sdyx = 0.0;
        for (int i = 0; i < B; i++) {
            long k = (long)i * n + j;
            sdy += dy[k];
            sdyx += (double)dy[k] * xhat[k];
        }
        dgamma[j] += (float)sdyx;
        dbeta[j] += (float)sdy;
        double c = gamma[j] * invstd[j] / B;
        for (int i = 0; i < B; i++) {
            long k = (long)i * n + j;
            dx[k] = (float)(c * (B * (double)dy[k] - sdy - xhat[k] * sdyx));
        }
    }
}
