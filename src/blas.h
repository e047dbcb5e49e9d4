/* blas: row-major matrix products over OpenBLAS, and thread control.
 *
 * All matrices are row-major float32 with explicit leading dimensions.
 * C[M x N] = alpha * op(A) * op(B) + beta * C, op = transpose when t* != 0. */
#ifndef FSNN_BLAS_H
#define FSNN_BLAS_H

/* fsnn's own OpenMP loops over fewer elements than this run on one thread:
 * below it, waking the thread team costs more than the loop. */
#define BLAS_PARALLEL_MIN 16384L

void blas_gemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc);

/* Sets the number of BLAS threads and of the OpenMP threads of fsnn's own
 * per-sample loops (they never run at the same time); 0 = one per core.
 * Returns the number set. */
int blas_set_threads(int threads);

/* y = alpha op(A) x + beta y for row-major A [M x N], op = transpose when
 * ta != 0 (unit strides). */
void blas_gemv(int ta, int M, int N, float alpha, const float *A, int lda, const float *x,
               float beta, float *y);

/* Serial mode (deterministic training): every BLAS call runs on one thread,
 * because OpenBLAS's results depend on its thread count; fsnn's own OpenMP
 * loops keep their threads. */
void blas_set_serial(int on);

/* 1 in serial mode. */
int blas_is_serial(void);

/* Process-wide totals of the floating-point operations done by blas_gemm
 * and the wall time spent in it, for reporting GFLOP/s of the dense parts
 * (bench/). Counting costs one clock read per call. */
void blas_counters(double *flops, double *seconds);
void blas_counters_reset(void);

#endif
