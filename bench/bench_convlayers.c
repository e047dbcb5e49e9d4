/* bench_convlayers: the dense convolutions of the paper's conv nets, im2col +
 * sgemm (conv.h) against oneDNN's direct convolutions (dnnconv.h), side by
 * side in one run: GFLOP/s of the forward, the input-VJP (backward data: the
 * adjoint's J^T and the input branch's VJP) and the weight-VJP (backward
 * weights) of every conv layer of AlexNet-F and CIFARNet-F (CIFAR-10 32x32,
 * batch 32) and of 64C5s (F64C5) (MNIST 28x28, batch 128), on the threads of
 * the process, and the forward of 0/1 spikes in bf16 (compute.sim_precision:
 * the simulation's products). The first line gives the roof: sgemm's rate
 * on a large square product (the machine's measured peak for these
 * kernels in float).
 *
 *   bench_convlayers [threads]     default: the machine's cores */
#include <stdio.h>
#include <stdlib.h>

#include "blas.h"
#include "clock.h"
#include "conv.h"
#include "dnnconv.h"
#include "rng.h"

typedef struct {
    const char *net, *name;
    int B, C, H, W, O, k, stride;
} layer;

static const layer layers[] = {
    {"AlexNet-F", "96C3s (layer 1)", 32, 3, 32, 32, 96, 3, 2},
    {"AlexNet-F", "256C3", 32, 96, 16, 16, 256, 3, 1},
    {"AlexNet-F", "384C3s", 32, 256, 16, 16, 384, 3, 2},
    {"AlexNet-F", "384C3", 32, 384, 8, 8, 384, 3, 1},
    {"AlexNet-F", "256C3", 32, 384, 8, 8, 256, 3, 1},
    {"CIFARNet-F", "128C3s (layer 1)", 32, 3, 32, 32, 128, 3, 2},
    {"CIFARNet-F", "256C3", 32, 128, 16, 16, 256, 3, 1},
    {"CIFARNet-F", "512C3s", 32, 256, 16, 16, 512, 3, 2},
    {"CIFARNet-F", "1024C3", 32, 512, 8, 8, 1024, 3, 1},
    {"CIFARNet-F", "512C3", 32, 1024, 8, 8, 512, 3, 1},
    {"F64C5", "64C5s (input)", 128, 1, 28, 28, 64, 5, 2},
    {"F64C5", "F64C5 (feedback)", 128, 64, 14, 14, 64, 5, 1},
};
#define N_LAYERS (sizeof layers / sizeof layers[0])

enum { FWD, BWD_DATA, BWD_WEIGHTS };

typedef struct {
    const conv_shape *s;
    int B;
    float *x, *w, *y, *dy, *dx, *dw, *ws;
} bench_case;

/* dnn: 0 im2col + sgemm, 1 oneDNN, 2 oneDNN in bf16 (the forward map of
 * spikes in the simulation, compute.sim_precision; x is then 0/1). */
static int bench_call(const bench_case *c, int op, int dnn) {
    if (!dnn) {
        if (op == FWD) conv_forward(c->s, c->x, c->w, NULL, c->y, c->B, c->ws);
        if (op == BWD_DATA) conv_vjp(c->s, c->x, c->w, c->dy, NULL, NULL, c->dx, c->B, c->ws);
        if (op == BWD_WEIGHTS) conv_vjp(c->s, c->x, c->w, c->dy, c->dw, NULL, NULL, c->B, c->ws);
        return 0;
    }
    if (op == FWD) return dnnconv_forward_prec(c->s, c->x, c->w, NULL, c->y, c->B, dnn == 2);
    if (op == BWD_DATA) return dnnconv_backward_data(c->s, c->w, c->dy, c->dx, c->B);
    return dnnconv_backward_weights(c->s, c->x, c->dy, c->dw, NULL, c->B);
}

/* The fastest of at least 3 calls and 0.5 s after one warm-up call (the
 * primitive's creation): other processes only ever add time. */
static double bench_time(const bench_case *c, int op, int dnn) {
    if (bench_call(c, op, dnn)) return -1.0;
    double best = 1e30, start = clock_seconds();
    for (int r = 0; r < 3 || clock_seconds() - start < 0.5; r++) {
        double t0 = clock_seconds();
        bench_call(c, op, dnn);
        double t = clock_seconds() - t0;
        if (t < best) best = t;
    }
    return best;
}

static float *bench_fill(long n, uint32_t id) {
    float *a = malloc(sizeof(float) * (size_t)n);
    if (a) rng_uniform_fill(1, RNG_TEST, id, 0, a, n);
    return a;
}

/* sgemm's rate on n x n x n (the fastest of 5). */
static double bench_sgemm_peak(int n) {
    float *a = bench_fill((long)n * n, 100), *b = bench_fill((long)n * n, 101),
          *c = bench_fill((long)n * n, 102);
    double best = 1e30;
    for (int r = 0; r < 5 && a && b && c; r++) {
        double t0 = clock_seconds();
        blas_gemm(0, 0, n, n, n, 1.0f, a, n, b, n, 0.0f, c, n);
        double t = clock_seconds() - t0;
        if (t < best) best = t;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * n * n * (double)n / best * 1e-9;
}

int main(int argc, char **argv) {
    int threads = blas_set_threads(argc > 1 ? atoi(argv[1]) : 0);
    printf("threads %d; roof: sgemm %dx%dx%d at %.0f GFLOP/s\n", threads, 2048, 2048, 2048,
           bench_sgemm_peak(2048));
    printf("%-10s %-18s %4s %-22s | %9s %9s %9s | %9s %9s | %9s %9s | %s\n", "net", "layer", "B",
           "shape", "fwd i2c", "fwd dnn", "fwd bf16", "bwd-d i2c", "bwd-d dnn", "bwd-w i2c",
           "bwd-w dnn", "oneDNN kernel (fwd; bf16)");
    for (size_t i = 0; i < N_LAYERS; i++) {
        const layer *l = &layers[i];
        conv_shape s;
        if (conv_shape_init(&s, l->C, l->H, l->W, l->O, l->k, l->stride, l->k / 2)) return 1;
        const long nx = (long)l->B * l->C * l->H * l->W, ny = (long)l->B * l->O * s.Ho * s.Wo,
                   nw = (long)l->O * l->C * l->k * l->k;
        bench_case c = {&s,
                        l->B,
                        bench_fill(nx, 1),
                        bench_fill(nw, 2),
                        bench_fill(ny, 3),
                        bench_fill(ny, 4),
                        bench_fill(nx, 5),
                        bench_fill(nw, 6),
                        bench_fill((long)conv_workspace_size(&s), 7)};
        if (!c.x || !c.w || !c.y || !c.dy || !c.dx || !c.dw || !c.ws) return 1;
        const double gflop = 2.0 * ny * l->C * l->k * l->k * 1e-9;
        double r[6];
        for (int op = 0; op < 3; op++)
            for (int dnn = 0; dnn < 2; dnn++) {
                double t = bench_time(&c, op, dnn);
                r[2 * op + dnn] = t > 0 ? gflop / t : 0.0;
            }
        for (long q = 0; q < nx; q++) /* spikes at a rate of 0.2 for the bf16 forward */
            c.x[q] = c.x[q] < 0.2f ? 1.0f : 0.0f;
        double tb = bench_time(&c, FWD, 2), rb = tb > 0 ? gflop / tb : 0.0;
        char shape[32], impl[64] = "?", implb[64] = "?";
        snprintf(shape, sizeof shape, "%dx%dx%d->%dx%dx%d", l->C, l->H, l->W, l->O, s.Ho, s.Wo);
        dnnconv_impl(&s, DNNCONV_FORWARD, l->B, 0, impl, sizeof impl);
        dnnconv_impl(&s, DNNCONV_FORWARD, l->B, 1, implb, sizeof implb);
        printf("%-10s %-18s %4d %-22s | %9.0f %9.0f %9.0f | %9.0f %9.0f | %9.0f %9.0f | %s; %s\n",
               l->net, l->name, l->B, shape, r[0], r[1], rb, r[2], r[3], r[4], r[5], impl, implb);
        free(c.x);
        free(c.w);
        free(c.y);
        free(c.dy);
        free(c.dx);
        free(c.dw);
        free(c.ws);
    }
    dnnconv_release();
    return 0;
}
