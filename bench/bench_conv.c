/* bench_conv: conv from binary spikes, im2col + sgemm against the event path
 * (adding each active input's kernel column to the outputs it reaches), over
 * spike densities. Prints microseconds per batch (the fastest of repeated
 * calls) and their ratio, side by side in one run, for the F64C5 feedback
 * conv (64 -> 64 channels, 14x14, k 5, pad 2) and for a 2x upscaling
 * transposed conv (96 -> 96 channels, 8x8 -> 16x16, k 3, stride 2). The
 * crossovers set CONV_EVENT_DENSITY and CONV_TRANSPOSE_EVENT_DENSITY
 * (src/conv.h).
 *
 *   bench_conv [B] [threads]     defaults: 128 1 */
#include <stdio.h>
#include <stdlib.h>

#include "blas.h"
#include "clock.h"
#include "conv.h"
#include "dnnconv.h"
#include "linop.h"
#include "rng.h"

static const double dens[] = {0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6};
#define N_DENS (sizeof dens / sizeof dens[0])

typedef struct {
    const conv_shape *s;
    const conv_transpose_shape *t;
    const float *sp, *W, *We;
    float *y, *ws;
    int B;
} bench_case;

static void bench_run(const bench_case *c, cfg_spike_product mode) {
    if (c->s)
        conv_spike_forward(c->s, c->sp, c->W, c->We, NULL, c->y, c->B, c->ws, mode);
    else
        conv_transpose_spike_forward(c->t, c->sp, c->W, c->We, NULL, c->y, c->B, c->ws, mode);
}

/* The fastest of at least 3 calls and 1 s: other processes on the node
 * only ever add time, so the minimum is the figure least disturbed. */
static double bench_time(const bench_case *c, cfg_spike_product mode) {
    double best = 1e30, t0 = clock_seconds();
    for (int reps = 0; reps < 3 || clock_seconds() - t0 < 1.0; reps++) {
        double t1 = clock_seconds();
        bench_run(c, mode);
        double el = clock_seconds() - t1;
        if (el < best) best = el;
    }
    return best;
}

/* Spikes at each density from the uniforms r, then the paths timed: dense
 * on im2col + sgemm, dense on oneDNN (the shape's dnn flag), dense on
 * oneDNN in bf16 (its bf16 flag: compute.sim_precision), event (float
 * weights; in bf16 the same kernel adds rounded ones). The speedups are the
 * event path's against oneDNN in float and in bf16. */
static void bench_table(bench_case *c, conv_shape *dnn, float *sp, const float *r, long n) {
    printf("%10s %11s %11s %11s %11s %8s %8s\n", "density", "im2col us", "oneDNN us", "bf16 us",
           "event us", "vs f32", "vs bf16");
    for (size_t q = 0; q < N_DENS; q++) {
        for (long k = 0; k < n; k++)
            sp[k] = r[k] < dens[q] ? 1.0f : 0.0f;
        dnn->dnn = 0;
        double ti = bench_time(c, SPIKE_DENSE) * 1e6;
        dnn->dnn = 1;
        double td = bench_time(c, SPIKE_DENSE) * 1e6;
        dnn->bf16 = 1;
        double tb = bench_time(c, SPIKE_DENSE) * 1e6;
        dnn->bf16 = 0;
        double te = bench_time(c, SPIKE_EVENT) * 1e6;
        printf("%10.3f %11.1f %11.1f %11.1f %11.1f %8.2f %8.2f\n", dens[q], ti, td, tb, te, td / te,
               tb / te);
    }
}

static long bench_max(long a, long b) {
    return a > b ? a : b;
}

static float *bench_alloc(long n) {
    float *p = malloc(sizeof(float) * (size_t)(n > 0 ? n : 1));
    if (!p) {
        fprintf(stderr, "bench_conv: out of memory\n");
        exit(1);
    }
    return p;
}

/* The adjoint product W^T (d ⊙ v) of the F64C5 feedback conv through a
 * mask d with a fraction `density` of entries 1/V_th (V_th = 2), the rest
 * 0: both paths of linop_masked_transpose (the dense one packs d ⊙ v and
 * calls sgemm + col2im; the event one adds the kernel taps of the listed
 * outputs). d, v [B x n]; idx, nnz the lists. */
typedef struct {
    const linop *op;
    const float *W, *Wa, *d, *v;
    const int *idx, *nnz;
    float *dx, *tmp, *ws;
    int B;
} bench_adj;

static double bench_adj_time(const bench_adj *a, cfg_spike_product mode) {
    double best = 1e30, t0 = clock_seconds();
    for (int reps = 0; reps < 3 || clock_seconds() - t0 < 1.0; reps++) {
        double t1 = clock_seconds();
        linop_masked_transpose(a->op, a->W, a->Wa, a->d, a->idx, a->nnz, NULL, a->B, a->v, a->dx,
                               a->tmp, mode, a->ws);
        double el = clock_seconds() - t1;
        if (el < best) best = el;
    }
    return best;
}

static void bench_adjoint(int B, const float *W, const float *r) {
    linop op;
    if (linop_conv(&op, 64, 14, 14, 64, 5, 1)) exit(1);
    const long n = (long)B * op.out;
    float *Wa = bench_alloc((long)linop_adjoint_size(&op)), *d = bench_alloc(n);
    float *v = bench_alloc(n), *dx = bench_alloc(n), *tmp = bench_alloc(n);
    float *ws = bench_alloc((long)linop_ws_size(&op));
    int *idx = malloc(sizeof(int) * (size_t)n), *nnz = malloc(sizeof(int) * (size_t)B);
    if (!idx || !nnz) exit(1);
    linop_adjoint_weights(&op, W, Wa);
    rng_uniform_fill(1, RNG_TEST, 0, 2, v, n);
    for (long k = 0; k < n; k++)
        v[k] = 2.0f * v[k] - 1.0f;
    printf("adjoint product W^T (m ⊙ v) of the F64C5 feedback conv: B = %d, mask density = "
           "fraction of non-zero m\n",
           B);
    printf("%10s %12s %12s %12s %8s\n", "density", "im2col us", "oneDNN us", "event us", "speedup");
    const double adens[] = {0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.6};
    for (size_t q = 0; q < sizeof adens / sizeof adens[0]; q++) {
        for (long k = 0; k < n; k++)
            d[k] = r[k] < adens[q] ? 0.5f : 0.0f;
        linop_mask_lists(d, B, op.out, idx, nnz);
        bench_adj a = {&op, W, Wa, d, v, idx, nnz, dx, tmp, ws, B};
        linop_use_onednn(&op, 0);
        double ti = bench_adj_time(&a, SPIKE_DENSE) * 1e6;
        linop_use_onednn(&op, 1);
        double td = bench_adj_time(&a, SPIKE_DENSE) * 1e6;
        double te = bench_adj_time(&a, SPIKE_EVENT) * 1e6;
        printf("%10.3f %12.1f %12.1f %12.1f %8.2f\n", adens[q], ti, td, te,
               (ti < td ? ti : td) / te);
    }
    printf("speedup > 1: the event path is faster (against the faster dense path). fsnn takes it "
           "per sample below density %.3f (im2col), %.3f (oneDNN)\n",
           CONV_ADJOINT_EVENT_DENSITY, CONV_ADJOINT_EVENT_DENSITY_DNN);
    free(Wa);
    free(d);
    free(v);
    free(dx);
    free(tmp);
    free(ws);
    free(idx);
    free(nnz);
}

int main(int argc, char **argv) {
    int B = argc > 1 ? atoi(argv[1]) : 128, threads = argc > 2 ? atoi(argv[2]) : 1;
    if (B <= 0 || threads < 0) {
        fprintf(stderr, "usage: bench_conv [B > 0] [threads >= 0]\n");
        return 2;
    }
    threads = blas_set_threads(threads);
    conv_shape s;
    conv_transpose_shape t;
    if (conv_shape_init(&s, 64, 14, 14, 64, 5, 1, 2) ||
        conv_transpose_shape_init(&t, 96, 8, 8, 96, 3, 2, 1, 1))
        return 1;
    /* One set of buffers serves both cases: each sized for the larger. */
    const long nx = bench_max((long)B * 64 * 14 * 14, (long)B * 96 * 8 * 8);
    const long ny = bench_max((long)B * 64 * 14 * 14, (long)B * 96 * 16 * 16);
    const long nw = bench_max(64L * 64 * 5 * 5, 96L * 96 * 3 * 3);
    const long wsn =
        bench_max((long)conv_workspace_size(&s), (long)conv_transpose_workspace_size(&t));
    float *W = bench_alloc(nw), *We = bench_alloc(nw), *sp = bench_alloc(nx);
    float *r = bench_alloc(nx), *y = bench_alloc(ny), *ws = bench_alloc(wsn);
    rng_uniform_fill(1, RNG_TEST, 0, 0, W, nw);
    for (long i = 0; i < nw; i++)
        W[i] = 2.0f * W[i] - 1.0f;
    rng_uniform_fill(1, RNG_TEST, 0, 1, r, nx);

    printf("conv from spikes for one batch: B = %d, 64 -> 64 channels, 14x14, k 5, pad 2 "
           "(F64C5), %d BLAS thread(s)\n",
           B, threads);
    conv_event_weights(&s, W, We);
    bench_case cc = {&s, NULL, sp, W, We, y, ws, B};
    bench_table(&cc, &s, sp, r, (long)B * 64 * 14 * 14);
    printf("speedup > 1: the event path is faster. fsnn switches below density %.3f "
           "(im2col), %.3f (oneDNN), %.3f (bf16)\n\n",
           CONV_EVENT_DENSITY, CONV_EVENT_DENSITY_DNN, CONV_EVENT_DENSITY_BF16);

    printf("transposed conv from spikes: B = %d, 96 -> 96 channels, 8x8 -> 16x16, k 3, "
           "stride 2, %d BLAS thread(s)\n",
           B, threads);
    conv_transpose_event_weights(&t, W, We);
    bench_case ct = {NULL, &t, sp, W, We, y, ws, B};
    bench_table(&ct, &t.conv, sp, r, (long)B * 96 * 8 * 8);
    printf("speedup > 1: the event path is faster. fsnn switches below density %.3f "
           "(im2col), %.3f (oneDNN), %.3f (bf16)\n\n",
           CONV_TRANSPOSE_EVENT_DENSITY, CONV_TRANSPOSE_EVENT_DENSITY_DNN,
           CONV_TRANSPOSE_EVENT_DENSITY_BF16);
    bench_adjoint(B, W, r);
    dnnconv_release();
    free(W);
    free(We);
    free(sp);
    free(r);
    free(y);
    free(ws);
    return 0;
}
