/* blas: thin wrapper so that call sites read like the maths. */
#include "blas.h"

#include <cblas.h>
#include <omp.h>
#include <unistd.h>

#include "clock.h"

static double blas_flops_total, blas_seconds_total;
static int blas_serial;

/* The OpenMP build of OpenBLAS takes its thread count from OpenMP's default
 * team size at every call, so serial mode shrinks that to one around each
 * call and restores it for fsnn's own loops. */
static int blas_serial_begin(void) {
    if (!blas_serial) return 0;
    int team = omp_get_max_threads();
    omp_set_num_threads(1);
    return team;
}

static void blas_serial_end(int team) {
    if (team > 0) omp_set_num_threads(team);
}

void blas_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc) {
    if (M == 0 || N == 0) return;
    double t0 = clock_seconds();
    int team = blas_serial_begin();
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M, N,
                K, alpha, A, lda, B, ldb, beta, C, ldc);
    blas_serial_end(team);
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

void blas_set_serial(int on) {
    blas_serial = on;
}

int blas_is_serial(void) {
    return blas_serial;
}

void blas_gemv(int ta, int M, int N, float alpha, const float *A, int lda, const float *x,
               float beta, float *y) {
    int team = blas_serial_begin();
    cblas_sgemv(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, M, N, alpha, A, lda, x, 1, beta, y,
                1);
    blas_serial_end(team);
}

void blas_counters(double *flops, double *seconds) {
    *flops = blas_flops_total;
    *seconds = blas_seconds_total;
}

void blas_counters_reset(void) {
    blas_flops_total = 0.0;
    blas_seconds_total = 0.0;
}
