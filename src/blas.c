/* blas: thin wrapper so that call sites read like the maths. */
#include "blas.h"

#include <cblas.h>
#include <omp.h>
#include <unistd.h>

#include "clock.h"

static double blas_flops_total, blas_seconds_total;

void blas_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc) {
    if (M == 0 || N == 0) return;
    double t0 = clock_seconds();
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M,
                N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    blas_seconds_total += clock_seconds() - t0;
    blas_flops_total += 2.0 * M * N * K;
}

int blas_set_threads(int threads) {
    if (threads <= 0) {
        long cores = sysconf(_SC_NPROCESSORS_ONLN);
        threads = cores > 0 ? (int)cores : 1;
    }
    openblas_set_num_threads(threads);
    omp_set_num_threads(threads);
    return threads;
}

void blas_counters(double *flops, double *seconds) {
    *flops = blas_flops_total;
    *seconds = blas_seconds_total;
}

void blas_counters_reset(void) {
    blas_flops_total = 0.0;
    blas_seconds_total = 0.0;
}
