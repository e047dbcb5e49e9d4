/* compute.sim_precision = bf16: the simulation's spike products in bf16.
 *
 * - linop_bf16_round against an independent rounding (frexp, rint to 8
 *   significant bits, ldexp: round to nearest, ties to even) on random
 *   values, exact ties and values that carry into the exponent.
 * - oneDNN's bf16 conv (forward, and the backward-data map that is a
 *   transposed conv's forward) of 0/1 spikes against im2col + sgemm in
 *   float with the weights rounded first: the same K terms per output (the
 *   products of exact spikes and bf16 weights are exact), so within
 *   2 (K + 1) 2^-23 sum |terms|; the same bits when called twice and on one
 *   thread and on two.
 * - dnnmm_spike against a double sum of the rounded weights of each
 *   sample's active inputs, within the same bound.
 * - linop_spike in bf16: the event path (linop_event_weights rounds) and
 *   the dense path give the same sums within the bound, for FC and conv.
 * - dnn.h's hold: the same bits with and without it, and the copy held.
 * - FSNN_NO_BF16 turns dnn_has_bf16 off, and model_create then refuses
 *   bf16 with a message naming the key.
 *
 * On a CPU without AVX512_BF16 the test says so and exits 77, which ctest
 * reports as skipped (never as passed). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "conv.h"
#include "dnn.h"
#include "dnnconv.h"
#include "dnnmm.h"
#include "linop.h"
#include "model.h"
#include "rng.h"
#include "testutil.h"

static uint32_t fill_id;

/* Uniform in [-1, 1]. */
static void uniform(float *x, long n) {
    rng_uniform_fill(11, RNG_TEST, fill_id++, 0, x, n);
    for (long i = 0; i < n; i++)
        x[i] = 2.0f * x[i] - 1.0f;
}

/* 0/1 spikes at the given density. */
static void spikes(float *x, long n, double density) {
    rng_uniform_fill(11, RNG_TEST, fill_id++, 0, x, n);
    for (long i = 0; i < n; i++)
        x[i] = x[i] < density ? 1.0f : 0.0f;
}

/* Nearest value with 8 significant bits, ties to even (rint's default
 * mode), by arithmetic rather than bit patterns. */
static float ref_round(float x) {
    if (x == 0.0f || !isfinite(x)) return x;
    int e;
    double m = frexp((double)x, &e); /* |m| in [0.5, 1) */
    return (float)ldexp(rint(m * 256.0) / 256.0, e);
}

static void round_all(const float *x, float *r, long n) {
    for (long i = 0; i < n; i++)
        r[i] = ref_round(x[i]);
}

static void test_round(void) {
    enum { N = 100000 };
    float *x = malloc(sizeof(float) * N);
    uniform(x, N);
    long bad = 0;
    for (int i = 0; i < N; i++) {
        float v = x[i] * (float)ldexp(1.0, i % 40 - 20);
        if (linop_bf16_round(v) != ref_round(v)) bad++;
    }
    EXPECT(bad == 0, "%ld of %d random values rounded differently", bad, N);
    /* 1 + 2^-8 lies half-way between 1 and 1 + 2^-7: ties to even give 1;
     * 1 + 3 2^-8 lies half-way to 1 + 2^-6 (even): up. */
    EXPECT(linop_bf16_round(1.0f + 0x1p-8f) == 1.0f, "tie rounds to even (down)");
    EXPECT(linop_bf16_round(1.0f + 3 * 0x1p-8f) == 1.0f + 0x1p-6f, "tie rounds to even (up)");
    EXPECT(linop_bf16_round(-(1.0f + 3 * 0x1p-8f)) == -(1.0f + 0x1p-6f), "negative tie");
    /* The largest float below 2 rounds up into the next binade. */
    EXPECT(linop_bf16_round(0x1.fffffep0f) == 2.0f, "carry into the exponent");
    EXPECT(isinf(linop_bf16_round(INFINITY)) && isnan(linop_bf16_round(NAN)), "inf and NaN stay");
    free(x);
}

/* The bf16 conv (forward: transposed = 0; backward data, i.e. a transposed
 * conv's forward: 1) of spikes against im2col in float on rounded weights. */
static void test_conv(int B, int C, int H, int W, int O, int k, int stride, int transposed) {
    conv_shape s;
    EXPECT_OK(conv_shape_init(&s, C, H, W, O, k, stride, k / 2));
    const long nx = (long)B * C * H * W, ny = (long)B * O * s.Ho * s.Wo, nw = (long)O * C * k * k;
    const long nin = transposed ? ny : nx, nout = transposed ? nx : ny;
    float *sp = malloc(sizeof(float) * nin), *w = malloc(sizeof(float) * nw);
    float *wr = malloc(sizeof(float) * nw), *aw = malloc(sizeof(float) * nw);
    float *want = malloc(sizeof(float) * nout), *bound = malloc(sizeof(float) * nout);
    float *got = malloc(sizeof(float) * nout), *again = malloc(sizeof(float) * nout);
    float *ws = calloc(conv_workspace_size(&s), sizeof(float));
    spikes(sp, nin, 0.3);
    uniform(w, nw);
    round_all(w, wr, nw);
    for (long i = 0; i < nw; i++)
        aw[i] = fabsf(wr[i]);
    char what[128];
    snprintf(what, sizeof what, "%s B %d, %dx%dx%d -> %d, k %d, stride %d",
             transposed ? "backward data" : "forward", B, C, H, W, O, k, stride);
    long K = transposed ? (long)O * k * k : (long)C * k * k;
    if (transposed) {
        conv_vjp(&s, NULL, wr, sp, NULL, NULL, want, B, ws);
        conv_vjp(&s, NULL, aw, sp, NULL, NULL, bound, B, ws);
        EXPECT_OK(dnnconv_backward_data_prec(&s, w, sp, got, B, 1));
        EXPECT_OK(dnnconv_backward_data_prec(&s, w, sp, again, B, 1));
    } else {
        conv_forward(&s, sp, wr, NULL, want, B, ws);
        conv_forward(&s, sp, aw, NULL, bound, B, ws);
        EXPECT_OK(dnnconv_forward_prec(&s, sp, w, NULL, got, B, 1));
        EXPECT_OK(dnnconv_forward_prec(&s, sp, w, NULL, again, B, 1));
    }
    EXPECT_SUM_BOUND(got, want, bound, nout, K, what);
    EXPECT_SAME_BITS(got, again, nout, "bf16 conv called twice");
    /* Float weights give other sums: the test sees the rounding. */
    if (!transposed) {
        conv_forward(&s, sp, w, NULL, want, B, ws);
        EXPECT(memcmp(got, want, sizeof(float) * (size_t)nout) != 0, "bf16 differs from float");
    }
    free(sp);
    free(w);
    free(wr);
    free(aw);
    free(want);
    free(bound);
    free(got);
    free(again);
    free(ws);
}

static void test_conv_threads(void) {
    conv_shape s;
    EXPECT_OK(conv_shape_init(&s, 64, 14, 14, 64, 5, 1, 2));
    const int B = 32;
    const long nx = (long)B * 64 * 196, nw = 64L * 64 * 25;
    float *sp = malloc(sizeof(float) * nx), *w = malloc(sizeof(float) * nw);
    float *y1 = malloc(sizeof(float) * nx), *y2 = malloc(sizeof(float) * nx);
    spikes(sp, nx, 0.14);
    uniform(w, nw);
    const int was = omp_get_max_threads();
    omp_set_num_threads(1);
    EXPECT_OK(dnnconv_forward_prec(&s, sp, w, NULL, y1, B, 1));
    omp_set_num_threads(2);
    EXPECT_OK(dnnconv_forward_prec(&s, sp, w, NULL, y2, B, 1));
    omp_set_num_threads(was);
    EXPECT_SAME_BITS(y1, y2, nx, "bf16 forward on 1 and 2 threads");
    free(sp);
    free(w);
    free(y1);
    free(y2);
}

/* dnnmm_spike against double sums of the rounded weights. */
static void test_matmul(int B, int in, int out) {
    const long ns = (long)B * in, nc = (long)B * out, nw = (long)out * in;
    float *sp = malloc(sizeof(float) * ns), *w = malloc(sizeof(float) * nw);
    float *want = malloc(sizeof(float) * nc), *bound = malloc(sizeof(float) * nc);
    float *got = malloc(sizeof(float) * nc), *again = malloc(sizeof(float) * nc);
    spikes(sp, ns, 0.2);
    uniform(w, nw);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < out; i++) {
            double a = 0.0, m = 0.0;
            for (int j = 0; j < in; j++)
                if (sp[(long)b * in + j] != 0.0f) {
                    a += ref_round(w[(long)i * in + j]);
                    m += fabs(ref_round(w[(long)i * in + j]));
                }
            want[(long)b * out + i] = (float)a;
            bound[(long)b * out + i] = (float)m;
        }
    EXPECT_OK(dnnmm_spike(sp, w, got, B, in, out));
    EXPECT_OK(dnnmm_spike(sp, w, again, B, in, out));
    char what[64];
    snprintf(what, sizeof what, "bf16 matmul B %d, %d -> %d", B, in, out);
    EXPECT_SUM_BOUND(got, want, bound, nc, in, what);
    EXPECT_SAME_BITS(got, again, nc, "bf16 matmul called twice");
    free(sp);
    free(w);
    free(want);
    free(bound);
    free(got);
    free(again);
}

/* linop_spike in bf16: event and dense paths agree within the bound. */
static void test_linop(linop *op, int B, const char *what) {
    linop_set_sim_bf16(op, 1);
    const long ns = (long)B * op->in, nc = (long)B * op->out, nw = (long)linop_weights(op);
    float *sp = malloc(sizeof(float) * ns), *w = malloc(sizeof(float) * nw);
    float *we = malloc(sizeof(float) * linop_event_size(op)), *aw = malloc(sizeof(float) * nw);
    float *dense = malloc(sizeof(float) * nc), *event = malloc(sizeof(float) * nc);
    float *bound = malloc(sizeof(float) * nc);
    float *ws = calloc(linop_ws_size(op) + 1, sizeof(float));
    int *idx = malloc(sizeof(int) * ns);
    spikes(sp, ns, 0.1);
    uniform(w, nw);
    linop_event_weights(op, w, we);
    long unrounded = 0;
    for (long i = 0; i < (long)linop_event_size(op); i++)
        unrounded += we[i] != ref_round(we[i]);
    EXPECT(unrounded == 0, "%s: %ld event weights not in bf16", what, unrounded);
    for (long i = 0; i < nw; i++)
        aw[i] = fabsf(ref_round(w[i]));
    linop_spike(op, w, we, sp, dense, idx, B, 0, ws);
    linop_spike(op, w, we, sp, event, idx, B, 1, ws);
    linop_set_sim_bf16(op, 0); /* the bound: float products of |rounded W| */
    linop_forward(op, aw, NULL, sp, bound, B, ws);
    EXPECT_SUM_BOUND(event, dense, bound, nc, op->in, what); /* op->in bounds the terms */
    free(sp);
    free(w);
    free(we);
    free(aw);
    free(dense);
    free(event);
    free(bound);
    free(ws);
    free(idx);
}

/* A hold keeps the weights' reordered copy: the same bits as without one,
 * and (the caller's promise broken on purpose) a change to the array
 * during the hold is not seen until the next hold. */
static void test_hold(void) {
    conv_shape s;
    EXPECT_OK(conv_shape_init(&s, 32, 8, 8, 48, 3, 1, 1));
    const int B = 4;
    const long nx = (long)B * 32 * 64, ny = (long)B * 48 * 64, nw = 48L * 32 * 9;
    float *sp = malloc(sizeof(float) * nx), *w = malloc(sizeof(float) * nw);
    float *y0 = malloc(sizeof(float) * ny), *y1 = malloc(sizeof(float) * ny);
    float *y2 = malloc(sizeof(float) * ny);
    spikes(sp, nx, 0.3);
    uniform(w, nw);
    for (int bf16 = 0; bf16 < 2; bf16++) {
        EXPECT_OK(dnnconv_forward_prec(&s, sp, w, NULL, y0, B, bf16));
        dnn_hold_begin();
        EXPECT_OK(dnnconv_forward_prec(&s, sp, w, NULL, y1, B, bf16));
        for (long i = 0; i < nw; i++)
            w[i] = -w[i];
        EXPECT_OK(dnnconv_forward_prec(&s, sp, w, NULL, y2, B, bf16));
        dnn_hold_end();
        EXPECT_SAME_BITS(y0, y1, ny, "forward in a hold");
        EXPECT_SAME_BITS(y0, y2, ny, "the held copy serves the hold's later calls");
        EXPECT_OK(dnnconv_forward_prec(&s, sp, w, NULL, y2, B, bf16));
        long flipped = 0;
        for (long i = 0; i < ny; i++)
            flipped += y2[i] == -y0[i];
        EXPECT(flipped == ny, "after the hold the new weights count (%ld of %ld)", flipped, ny);
        for (long i = 0; i < nw; i++)
            w[i] = -w[i];
    }
    free(sp);
    free(w);
    free(y0);
    free(y1);
    free(y2);
}

static void test_refusal(void) {
    setenv("FSNN_NO_BF16", "1", 1);
    EXPECT(!dnn_has_bf16(), "FSNN_NO_BF16 turns bf16 off");
    fsnn_cfg cfg;
    config_defaults(&cfg);
    cfg.compute_sim_precision = SIM_BF16;
    fsnn_model *m = NULL;
    int rc = model_create(&m, &cfg, 1, 28, 28, 10);
    EXPECT(rc != 0 && strstr(status_message(), "compute.sim_precision"),
           "model_create refuses bf16 without the instructions: '%s'", status_message());
    status_clear();
    model_destroy(&m);
    unsetenv("FSNN_NO_BF16");
    EXPECT(dnn_has_bf16(), "bf16 back on");
}

int main(void) {
    if (!dnn_has_bf16()) {
        fprintf(stderr, "bf16: this CPU has no AVX512_BF16; bf16 is refused here (skipped)\n");
        return 77;
    }
    test_round();
    test_conv(3, 3, 7, 9, 5, 3, 1, 0);
    test_conv(32, 64, 14, 14, 64, 5, 1, 0);
    test_conv(5, 24, 16, 16, 40, 3, 2, 0);
    test_conv(7, 16, 16, 16, 16, 3, 2, 1);
    test_conv(3, 8, 9, 7, 12, 5, 1, 1);
    test_conv_threads();
    test_matmul(1, 7, 5);
    test_matmul(37, 400, 400);
    test_matmul(128, 784, 400);
    linop fc, cv, dc;
    linop_fc(&fc, 400, 400);
    test_linop(&fc, 16, "FC 400 -> 400");
    EXPECT_OK(linop_conv(&cv, 16, 14, 14, 64, 5, 1));
    linop_use_onednn(&cv, 1);
    test_linop(&cv, 8, "conv 16 -> 64, k 5");
    EXPECT_OK(linop_deconv(&dc, 32, 8, 8, 16, 3));
    linop_use_onednn(&dc, 1);
    test_linop(&dc, 4, "transposed conv 32 -> 16, 8x8 -> 16x16");
    test_hold();
    test_refusal();
    dnnconv_release();
    dnnmm_release();
    return check_finish("bf16");
}
