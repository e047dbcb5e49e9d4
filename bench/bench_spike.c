/* bench_spike: W s for binary spikes, dense sgemm against the event path
 * (adding the rows of W^T of active neurons), over spike densities; then
 * the adjoint product W^T (m ⊙ v) through a sparse mask m, dense against
 * the rows of W of the active neurons. Prints microseconds per product for
 * one batch and their ratio, side by side in one run. The crossovers set
 * NEURON_EVENT_DENSITY (src/neuron.h) and LINOP_FC_ADJOINT_DENSITY
 * (src/linop.h).
 *
 *   bench_spike [B] [n] [threads]     defaults: 128 400 1 (the F400 net) */
#include <stdio.h>
#include <stdlib.h>

#include "blas.h"
#include "clock.h"
#include "dnnmm.h"
#include "linop.h"
#include "neuron.h"
#include "rng.h"
#include "status.h"

static double bench_time(const float *s, const float *W, const float *Wt, float *cur, int *idx,
                         int B, int n, int event) {
    int reps = 0;
    double t0 = clock_seconds(), el = 0.0;
    do {
        neuron_spike_product(s, W, Wt, cur, idx, B, n, event);
        reps++;
        el = clock_seconds() - t0;
    } while (el < 0.2);
    return el / reps;
}

/* The same product in bf16 on oneDNN's matmul (compute.sim_precision). */
static double bench_bf16_time(const float *s, const float *W, float *cur, int B, int n) {
    int reps = 0;
    double t0 = clock_seconds(), el = 0.0;
    do {
        if (dnnmm_spike(s, W, cur, B, n, n)) {
            fprintf(stderr, "bench_spike: %s\n", status_message());
            exit(1);
        }
        reps++;
        el = clock_seconds() - t0;
    } while (el < 0.2);
    return el / reps;
}

static double bench_adj_time(const linop *op, const float *W, const float *d, const int *idx,
                             const int *nnz, const float *v, float *dx, float *tmp, int B,
                             cfg_spike_product mode) {
    int reps = 0;
    double t0 = clock_seconds(), el = 0.0;
    do {
        linop_masked_transpose(op, W, NULL, d, idx, nnz, NULL, B, v, dx, tmp, mode, NULL);
        reps++;
        el = clock_seconds() - t0;
    } while (el < 0.2);
    return el / reps;
}

/* The adjoint product W^T (d ⊙ v) through a mask d with a fraction
 * `density` of entries 1/V_th (V_th = 2): dense (d ⊙ v, then sgemm) against
 * the event path (the rows of W of the listed entries, scaled). */
static void bench_adjoint(const float *W, const float *r, int B, int n) {
    linop op;
    linop_fc(&op, n, n);
    const long bn = (long)B * n;
    float *d = malloc(sizeof(float) * bn), *v = malloc(sizeof(float) * bn);
    float *dx = malloc(sizeof(float) * bn), *tmp = malloc(sizeof(float) * bn);
    int *idx = malloc(sizeof(int) * bn), *nnz = malloc(sizeof(int) * B);
    if (!d || !v || !dx || !tmp || !idx || !nnz) exit(1);
    rng_uniform_fill(1, RNG_TEST, 0, 2, v, bn);
    for (long k = 0; k < bn; k++)
        v[k] = 2.0f * v[k] - 1.0f;
    printf("\nadjoint product W^T (m ⊙ v): B = %d, n = %d, mask density = fraction of non-zero "
           "m\n",
           B, n);
    printf("%10s %12s %12s %8s\n", "density", "dense us", "event us", "speedup");
    const double adens[] = {0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.6};
    for (size_t q = 0; q < sizeof adens / sizeof adens[0]; q++) {
        for (long k = 0; k < bn; k++)
            d[k] = r[k] < adens[q] ? 0.5f : 0.0f;
        linop_mask_lists(d, B, n, idx, nnz);
        double td = bench_adj_time(&op, W, d, idx, nnz, v, dx, tmp, B, SPIKE_DENSE) * 1e6;
        double te = bench_adj_time(&op, W, d, idx, nnz, v, dx, tmp, B, SPIKE_EVENT) * 1e6;
        printf("%10.3f %12.1f %12.1f %8.2f\n", adens[q], td, te, td / te);
    }
    printf("speedup > 1: the event path is faster. fsnn takes it per sample below density %.3f\n",
           LINOP_FC_ADJOINT_DENSITY);
    free(d);
    free(v);
    free(dx);
    free(tmp);
    free(idx);
    free(nnz);
}

int main(int argc, char **argv) {
    int B = argc > 1 ? atoi(argv[1]) : 128, n = argc > 2 ? atoi(argv[2]) : 400;
    int threads = argc > 3 ? atoi(argv[3]) : 1;
    if (B <= 0 || n <= 0 || threads < 0) {
        fprintf(stderr, "usage: bench_spike [B > 0] [n > 0] [threads >= 0]\n");
        return 2;
    }
    threads = blas_set_threads(threads);
    long bn = (long)B * n;
    float *W = malloc(sizeof(float) * n * n), *Wt = malloc(sizeof(float) * n * n);
    float *s = malloc(sizeof(float) * bn), *cur = malloc(sizeof(float) * bn);
    float *r = malloc(sizeof(float) * bn);
    int *idx = malloc(sizeof(int) * bn);
    if (!W || !Wt || !s || !cur || !r || !idx) return 1;
    rng_uniform_fill(1, RNG_TEST, 0, 0, W, (long)n * n);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            Wt[(long)j * n + i] = W[(long)i * n + j];
    rng_uniform_fill(1, RNG_TEST, 0, 1, r, bn);
    printf("W s for one batch: B = %d, n = %d, %d BLAS thread(s)\n", B, n, threads);
    printf("%10s %12s %12s %12s %8s %8s\n", "density", "sgemm us", "bf16 us", "event us",
           "vs sgemm", "vs bf16");
    const double dens[] = {0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4};
    for (size_t q = 0; q < sizeof dens / sizeof dens[0]; q++) {
        for (long k = 0; k < bn; k++)
            s[k] = r[k] < dens[q] ? 1.0f : 0.0f;
        double td = bench_time(s, W, Wt, cur, idx, B, n, 0) * 1e6;
        double tb = bench_bf16_time(s, W, cur, B, n) * 1e6;
        double te = bench_time(s, W, Wt, cur, idx, B, n, 1) * 1e6;
        printf("%10.3f %12.1f %12.1f %12.1f %8.2f %8.2f\n", dens[q], td, tb, te, td / te, tb / te);
    }
    printf("speedup > 1: the event path is faster. fsnn switches below density %.3f (float), "
           "%.3f (bf16: compute.sim_precision)\n",
           NEURON_EVENT_DENSITY, LINOP_FC_EVENT_DENSITY_BF16);
    bench_adjoint(W, r, B, n);
    dnnmm_release();
    free(W);
    free(Wt);
    free(s);
    free(cur);
    free(r);
    free(idx);
    return 0;
}
