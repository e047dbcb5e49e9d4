/* conv: im2col + sgemm per sample, col2im for the input-VJP, and scatter
 * loops for spikes. */
#include "conv.h"

#include <cblas.h>
#include <stdint.h>
#include <string.h>

#include "blas.h"
#include "dnnconv.h"
#include "log.h"
#include "status.h"

int conv_shape_init(conv_shape *s, int C, int H, int W, int O, int k, int stride, int pad) {
    if (C <= 0 || H <= 0 || W <= 0 || O <= 0)
        return FAIL("conv: channels and sizes must be positive (C %d, H %d, W %d, O %d)", C, H, W,
                    O);
    if (k <= 0 || k % 2 == 0) return FAIL("conv: kernel size %d must be odd and positive", k);
    if (stride != 1 && stride != 2) return FAIL("conv: stride %d must be 1 or 2", stride);
    if (pad < 0 || pad >= k) return FAIL("conv: padding %d must lie in [0, k = %d)", pad, k);
    if (H + 2 * pad < k || W + 2 * pad < k)
        return FAIL("conv: a %dx%d input with padding %d is smaller than the kernel %d", H, W, pad,
                    k);
    s->dnn = 0;
    s->bf16 = 0;
    s->C = C;
    s->H = H;
    s->W = W;
    s->O = O;
    s->k = k;
    s->stride = stride;
    s->pad = pad;
    s->Ho = (H + 2 * pad - k) / stride + 1;
    s->Wo = (W + 2 * pad - k) / stride + 1;
    return FSNN_OK;
}

static size_t conv_max(size_t a, size_t b) {
    return a > b ? a : b;
}

size_t conv_workspace_size(const conv_shape *s) {
    size_t hw = (size_t)s->Ho * s->Wo;
    size_t in = (size_t)s->C * s->H * s->W; /* conv_masked_vjp_event's accumulator */
    /* conv_event_one: its masks (one 64-bit word per 64 channels and
     * input position, from ws's first 8-byte boundary), its accumulator,
     * its lists and their bounds (ints in float slots) */
    const size_t hwi = (size_t)s->H * s->W;
    size_t event = 2 * hwi * (size_t)((s->C + 63) / 64) + 1 + hw * s->O + 2 * hwi + in;
    return conv_max(conv_max((size_t)s->C * s->k * s->k * hw, event), in);
}

/* col [C k k x Ho Wo]: row (c, ky, kx), column (yo, xo) holds
 * x[c, yo stride - pad + ky, xo stride - pad + kx], 0 outside. */
static void conv_im2col(const conv_shape *s, const float *x, float *col) {
    const int k = s->k, st = s->stride, Ho = s->Ho, Wo = s->Wo;
    for (int c = 0; c < s->C; c++) {
        const float *xc = x + (long)c * s->H * s->W;
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                float *row = col + ((long)(c * k + ky) * k + kx) * Ho * Wo;
                for (int yo = 0; yo < Ho; yo++) {
                    int yi = yo * st - s->pad + ky;
                    float *r = row + (long)yo * Wo;
                    if (yi < 0 || yi >= s->H) {
                        memset(r, 0, sizeof(float) * (size_t)Wo);
                        continue;
                    }
                    const float *xr = xc + (long)yi * s->W;
                    for (int xo = 0; xo < Wo; xo++) {
                        int xi = xo * st - s->pad + kx;
                        r[xo] = xi >= 0 && xi < s->W ? xr[xi] : 0.0f;
                    }
                }
            }
    }
}

/* The adjoint of conv_im2col: x [C x H x W] = 0, then every col entry added
 * to the input it was read from. */
static void conv_col2im(const conv_shape *s, const float *col, float *x) {
    const int k = s->k, st = s->stride, Ho = s->Ho, Wo = s->Wo;
    memset(x, 0, sizeof(float) * (size_t)s->C * s->H * s->W);
    for (int c = 0; c < s->C; c++) {
        float *xc = x + (long)c * s->H * s->W;
        for (int ky = 0; ky < k; ky++)
            for (int kx = 0; kx < k; kx++) {
                const float *row = col + ((long)(c * k + ky) * k + kx) * Ho * Wo;
                for (int yo = 0; yo < Ho; yo++) {
                    int yi = yo * st - s->pad + ky;
                    if (yi < 0 || yi >= s->H) continue;
                    const float *r = row + (long)yo * Wo;
                    float *xr = xc + (long)yi * s->W;
                    for (int xo = 0; xo < Wo; xo++) {
                        int xi = xo * st - s->pad + kx;
                        if (xi >= 0 && xi < s->W) xr[xi] += r[xo];
                    }
                }
            }
    }
}

/* Every map of y [n x hw] set to its bias, or 0. */
static void conv_fill_bias(float *y, const float *b, int n, int hw) {
    for (int o = 0; o < n; o++) {
        float v = b ? b[o] : 0.0f;
        float *yo = y + (long)o * hw;
        for (int q = 0; q < hw; q++)
            yo[q] = v;
    }
}

static void conv_bias_grad(const float *dy, float *db, int n, int hw) {
    for (int o = 0; o < n; o++) {
        const float *d = dy + (long)o * hw;
        double acc = 0.0;
        for (int q = 0; q < hw; q++)
            acc += d[q];
        db[o] += (float)acc;
    }
}

/* One sample: y [O x Ho Wo] = Wt [O x Ckk] col [Ckk x Ho Wo] + b. */
static void conv_forward_one(const conv_shape *s, const float *x, const float *Wt, const float *b,
                             float *y, float *col) {
    const int K = s->C * s->k * s->k, N = s->Ho * s->Wo;
    conv_im2col(s, x, col);
    conv_fill_bias(y, b, s->O, N);
    blas_gemm(0, 0, s->O, N, K, 1.0f, Wt, K, col, N, 1.0f, y, N);
}

/* oneDNN's map when s asks for it; 0 when it ran. A failure (no primitive
 * for the shape, no memory) is said once and falls back to im2col + sgemm,
 * whose results agree within float rounding. */
static int conv_dnn_failed(int rc) {
    static int said;
    if (rc == 0) return 0;
    if (!said) log_warn("conv: oneDNN failed (%s); im2col + sgemm instead", status_message());
    said = 1;
    status_clear();
    return 1;
}

/* conv_forward, in bf16 on oneDNN when bf16 = 1 (conv_shape's bf16). */
static void conv_forward_prec(const conv_shape *s, const float *x, const float *Wt, const float *b,
                              float *y, int B, float *ws, int bf16) {
    if (s->dnn && !conv_dnn_failed(dnnconv_forward_prec(s, x, Wt, b, y, B, bf16))) return;
    const long in = (long)s->C * s->H * s->W, out = (long)s->O * s->Ho * s->Wo;
    for (int i = 0; i < B; i++)
        conv_forward_one(s, x + i * in, Wt, b, y + i * out, ws);
}

void conv_forward(const conv_shape *s, const float *x, const float *Wt, const float *b, float *y,
                  int B, float *ws) {
    conv_forward_prec(s, x, Wt, b, y, B, ws, 0);
}

/* conv_vjp on oneDNN: 0 when it ran (else nothing was written). */
static int conv_vjp_dnn(const conv_shape *s, const float *x, const float *Wt, const float *dy,
                        float *dW, float *db, float *dx, int B) {
    if (dx && conv_dnn_failed(dnnconv_backward_data(s, Wt, dy, dx, B))) return 1;
    if (dW && conv_dnn_failed(dnnconv_backward_weights(s, x, dy, dW, db, B))) {
        /* dx is written already; the fallback writes it again, the same map. */
        return 1;
    }
    if (!dW && db)
        for (int i = 0; i < B; i++)
            conv_bias_grad(dy + (long)i * s->O * s->Ho * s->Wo, db, s->O, s->Ho * s->Wo);
    return 0;
}

/* One sample's input-VJP: dx [C x H x W] = col2im(Wt^T dy). */
static void conv_input_vjp_one(const conv_shape *s, const float *Wt, const float *dy, float *dx,
                               float *col) {
    const int K = s->C * s->k * s->k, N = s->Ho * s->Wo;
    blas_gemm(1, 0, K, N, s->O, 1.0f, Wt, K, dy, N, 0.0f, col, N);
    conv_col2im(s, col, dx);
}

void conv_vjp(const conv_shape *s, const float *x, const float *Wt, const float *dy, float *dW,
              float *db, float *dx, int B, float *ws) {
    if (s->dnn && conv_vjp_dnn(s, x, Wt, dy, dW, db, dx, B) == 0) return;
    const int K = s->C * s->k * s->k, N = s->Ho * s->Wo;
    const long in = (long)s->C * s->H * s->W, out = (long)s->O * N;
    for (int i = 0; i < B; i++) {
        const float *dyi = dy + i * out;
        if (dW) {
            conv_im2col(s, x + i * in, ws);
            blas_gemm(0, 1, s->O, K, N, 1.0f, dyi, N, ws, N, 1.0f, dW, K);
        }
        if (db) conv_bias_grad(dyi, db, s->O, N);
        if (dx) conv_input_vjp_one(s, Wt, dyi, dx + i * in, ws);
    }
}

/* The transpose of a [n_out x taps] block: We[j, o] = Wt[o, j]. */
static void conv_block_transpose(const float *Wt, float *We, int n_out, int taps) {
    for (int o = 0; o < n_out; o++)
        for (int j = 0; j < taps; j++)
            We[(long)j * n_out + o] = Wt[(long)o * taps + j];
}

void conv_event_weights(const conv_shape *s, const float *Wt, float *We) {
    const int k = s->k, O = s->O;
    for (int o = 0; o < O; o++)
        for (int c = 0; c < s->C; c++)
            for (int ky = 0; ky < k; ky++)
                for (int kx = 0; kx < k; kx++)
                    We[((long)(c * k + ky) * k + (k - 1 - kx)) * O + o] =
                        Wt[(((long)o * s->C + c) * k + ky) * k + kx];
}

double conv_event_density(const conv_shape *s) {
    if (!s->dnn) return CONV_EVENT_DENSITY;
    return s->bf16 ? CONV_EVENT_DENSITY_BF16 : CONV_EVENT_DENSITY_DNN;
}

double conv_transpose_event_density(const conv_shape *s) {
    if (!s->dnn) return CONV_TRANSPOSE_EVENT_DENSITY;
    return s->bf16 ? CONV_TRANSPOSE_EVENT_DENSITY_BF16 : CONV_TRANSPOSE_EVENT_DENSITY_DNN;
}

double conv_adjoint_density(const conv_shape *s) {
    return s->dnn ? CONV_ADJOINT_EVENT_DENSITY_DNN : CONV_ADJOINT_EVENT_DENSITY;
}

/* Fraction of non-zero entries. */
static double conv_density(const float *sp, long count) {
    long nnz = 0;
    for (long i = 0; i < count; i++)
        nnz += sp[i] != 0.0f;
    return count > 0 ? (double)nnz / (double)count : 0.0;
}

/* y [n x hw] = bias + acc^T for the channel-last accumulator acc [hw x n]. */
static void conv_store_acc(const float *acc, const float *b, float *y, int n, int hw) {
    for (int o = 0; o < n; o++) {
        float v = b ? b[o] : 0.0f;
        float *yo = y + (long)o * hw;
        for (int q = 0; q < hw; q++)
            yo[q] = v + acc[(long)q * n + o];
    }
}

/* The taps j in [0, k) of an input at position i that reach an output
 * o = (i + pad - j) / stride in [0, n): j from *lo to *hi in steps of the
 * stride, with (i + pad - j) divisible by it. */
static void conv_taps(int i, int pad, int k, int stride, int n, int *lo, int *hi) {
    int t = i + pad, l = t - stride * (n - 1);
    if (l < 0) l = 0;
    if ((t - l) % stride != 0) l++;
    *lo = l;
    *hi = t < k - 1 ? t : k - 1;
}

/* One sample of the event-driven conv by scatter (the faster form at low
 * densities, below CONV_GATHER_DENSITY): acc [Ho Wo x O] gathers, for every
 * active input (c, yi, xi) and tap (ky, kx) that reaches an output, the
 * kernel taps We[c,ky,k-1-kx,:] at that output (yo stride - pad + ky = yi,
 * likewise xo). The tap ranges are worked out per input so that the inner
 * loop is only a contiguous vector add. */
static void conv_event_scatter(const conv_shape *s, const float *sp, const float *We,
                               const float *b, float *y, float *acc) {
    const int k = s->k, st = s->stride, p = s->pad, O = s->O, Ho = s->Ho, Wo = s->Wo;
    const int sh = st - 1; /* division by the stride (1 or 2) as a shift */
    memset(acc, 0, sizeof(float) * (size_t)Ho * Wo * O);
    for (int c = 0; c < s->C; c++)
        for (int yi = 0; yi < s->H; yi++) {
            const float *sr = sp + ((long)c * s->H + yi) * s->W;
            int ky0, ky1;
            conv_taps(yi, p, k, st, Ho, &ky0, &ky1);
            for (int xi = 0; xi < s->W; xi++) {
                if (sr[xi] == 0.0f) continue;
                int kx0, kx1;
                conv_taps(xi, p, k, st, Wo, &kx0, &kx1);
                for (int ky = ky0; ky <= ky1; ky += st) {
                    const int yo = (yi + p - ky) >> sh;
                    const float *wrow = We + (long)(c * k + ky) * k * O;
                    if (st == 1) {
                        /* Taps kx1 down to kx0 reach the adjacent outputs
                         * xi + p - kx1 .. xi + p - kx0, and the kx-reversed
                         * kernel row holds them in that order: one add of
                         * (kx1 - kx0 + 1) O contiguous floats. */
                        const long n = (long)(kx1 - kx0 + 1) * O;
                        const float *restrict w = wrow + (long)(k - 1 - kx1) * O;
                        float *restrict a = acc + ((long)yo * Wo + xi + p - kx1) * O;
                        for (long j = 0; j < n; j++)
                            a[j] += w[j];
                        continue;
                    }
                    for (int kx = kx0; kx <= kx1; kx += st) {
                        const int xo = (xi + p - kx) >> sh;
                        const float *restrict w = wrow + (long)(k - 1 - kx) * O;
                        float *restrict a = acc + ((long)yo * Wo + xo) * O;
                        for (int o = 0; o < O; o++)
                            a[o] += w[o];
                    }
                }
            }
        }
    conv_store_acc(acc, b, y, O, Ho * Wo);
}

/* Below this fraction of active inputs a sample's event conv scatters each
 * input's taps (conv_event_scatter) rather than gathering each output's
 * (conv_event_one): bench/bench_conv on the F64C5 feedback conv (batch 128,
 * one thread) measured gather 0.6x the speed of scatter at 0.02 and 1.1x at
 * 0.1, 1.2x at 0.2, 1.4x at 0.4. */
#define CONV_GATHER_DENSITY 0.07

/* Sixteen floats as one vector (GCC's and clang's vector extension: one
 * AVX-512 register here, two AVX ones elsewhere); aligned(4) lets it load
 * from any float. */
typedef float conv_v16 __attribute__((vector_size(64), aligned(4)));
#define CONV_V 16

/* The channels that spiked at each input position q of one sample's
 * spikes sp [C x hw], as bits: bit c % 64 of m[(c / 64) hw + q], a row of
 * hw words per 64 channels. Returns how many spiked. A pass of vector
 * compares (the loop over positions vectorizes) rather than a scalar step
 * per value. */
static long conv_active_masks(const float *sp, int C, int hw, int nw, uint64_t *m) {
    memset(m, 0, sizeof(uint64_t) * (size_t)hw * nw);
    for (int c = 0; c < C; c++) {
        const uint64_t bit = 1ull << (c % 64);
        const float *row = sp + (long)c * hw;
        uint64_t *mc = m + (long)(c / 64) * hw;
        for (int q = 0; q < hw; q++)
            mc[q] |= row[q] != 0.0f ? bit : 0;
    }
    long nnz = 0;
    for (long i = 0; i < (long)hw * nw; i++)
        nnz += __builtin_popcountll(m[i]);
    return nnz;
}

/* The channels that spiked at position q in ascending order, as offsets
 * c * span of their rows of We, chan[start[q] .. end[q]), from the masks
 * of conv_active_masks: one step per spike. */
static void conv_active_lists(const uint64_t *m, int hw, int nw, int span, int *start, int *chan,
                              int *end) {
    int t = 0;
    for (int q = 0; q < hw; q++) {
        start[q] = t;
        for (int w = 0; w < nw; w++)
            for (uint64_t x = m[(long)w * hw + q]; x; x &= x - 1)
                chan[t++] = (w * 64 + __builtin_ctzll(x)) * span;
        end[q] = t;
    }
}

/* The kernel taps of output (yo, xo) that read an input: ky0..ky1 and
 * kx0..kx1, with input (yo st - p + ky, xo st - p + kx). */
typedef struct {
    int iy, ix; /* input read by tap (0, 0) */
    int ky0, ky1, kx0, kx1;
} conv_window;

static conv_window conv_window_at(const conv_shape *s, int yo, int xo) {
    conv_window w;
    w.iy = yo * s->stride - s->pad;
    w.ix = xo * s->stride - s->pad;
    w.ky0 = w.iy < 0 ? -w.iy : 0;
    w.ky1 = s->H - 1 - w.iy < s->k - 1 ? s->H - 1 - w.iy : s->k - 1;
    w.kx0 = w.ix < 0 ? -w.ix : 0;
    w.kx1 = s->W - 1 - w.ix < s->k - 1 ? s->W - 1 - w.ix : s->k - 1;
    return w;
}

/* a [4 x 16] = the sum, over the window's taps and the channels that spiked
 * at each tap's input, of We's rows (output channels o0 .. o0 + 63): the
 * accumulators stay in registers and only the weights are read. Out of
 * line: inlined into the loops over positions, its inner loop kept its
 * pointers on the stack (bench_conv: 5% slower). */
__attribute__((noinline)) static void conv_gather64(const conv_shape *s, const conv_window *w,
                                                    const int *start, const int *end,
                                                    const int *chan, const float *We, int o0,
                                                    float *a) {
    const int k = s->k, O = s->O;
    /* Two sets of accumulators, for alternate terms: an add waits for the
     * previous add into the same register, and one set alone would leave
     * the vector units idle most of the time. */
    conv_v16 a0 = {0}, a1 = {0}, a2 = {0}, a3 = {0}, b0 = {0}, b1 = {0}, b2 = {0}, b3 = {0};
    for (int ky = w->ky0; ky <= w->ky1; ky++)
        for (int kx = w->kx0; kx <= w->kx1; kx++) {
            const int q = (w->iy + ky) * s->W + w->ix + kx;
            const float *base = We + ((long)ky * k + k - 1 - kx) * O + o0;
            int t = start[q];
            for (; t + 1 < end[q]; t += 2) {
                const float *r = base + chan[t], *u = base + chan[t + 1];
                a0 += *(const conv_v16 *)r;
                a1 += *(const conv_v16 *)(r + CONV_V);
                a2 += *(const conv_v16 *)(r + 2 * CONV_V);
                a3 += *(const conv_v16 *)(r + 3 * CONV_V);
                b0 += *(const conv_v16 *)u;
                b1 += *(const conv_v16 *)(u + CONV_V);
                b2 += *(const conv_v16 *)(u + 2 * CONV_V);
                b3 += *(const conv_v16 *)(u + 3 * CONV_V);
            }
            if (t < end[q]) {
                const float *r = base + chan[t];
                a0 += *(const conv_v16 *)r;
                a1 += *(const conv_v16 *)(r + CONV_V);
                a2 += *(const conv_v16 *)(r + 2 * CONV_V);
                a3 += *(const conv_v16 *)(r + 3 * CONV_V);
            }
        }
    *(conv_v16 *)a = a0 + b0;
    *(conv_v16 *)(a + CONV_V) = a1 + b1;
    *(conv_v16 *)(a + 2 * CONV_V) = a2 + b2;
    *(conv_v16 *)(a + 3 * CONV_V) = a3 + b3;
}

/* The same for output channels o0 .. o1 - 1 (fewer than 64), one at a time
 * in the same order of terms. */
static void conv_gather_rest(const conv_shape *s, const conv_window *w, const int *start,
                             const int *end, const int *chan, const float *We, int o0, int o1,
                             float *a) {
    const int k = s->k, O = s->O;
    for (int o = o0; o < o1; o++)
        a[o - o0] = 0.0f;
    for (int ky = w->ky0; ky <= w->ky1; ky++)
        for (int kx = w->kx0; kx <= w->kx1; kx++) {
            const int q = (w->iy + ky) * s->W + w->ix + kx;
            const long tap = (long)ky * k + k - 1 - kx;
            for (int t = start[q]; t < end[q]; t++) {
                const float *r = We + chan[t] + tap * O;
                for (int o = o0; o < o1; o++)
                    a[o - o0] += r[o];
            }
        }
}

/* One sample of the event-driven conv: for every output position and block
 * of output channels, the sum of the kernel taps We[c,ky,k-1-kx,:] of the
 * inputs (c, yo st - p + ky, xo st - p + kx) that spiked, gathered in
 * registers from per-position lists of active channels; then y = bias +
 * acc^T. Blocks of 64 channels are the outer loop so that their slice of We
 * stays in cache while every output reads it. ws holds the masks (from
 * its first 8-byte boundary), acc [Ho Wo x O], then the lists and their
 * bounds (conv_workspace_size). */
static void conv_event_one(const conv_shape *s, const float *sp, const float *We, const float *b,
                           float *y, float *ws) {
    const int O = s->O, Ho = s->Ho, Wo = s->Wo, hw = s->H * s->W, nw = (s->C + 63) / 64;
    uint64_t *mask = (uint64_t *)(((uintptr_t)ws + 7) & ~(uintptr_t)7);
    float *acc = (float *)(mask + (long)hw * nw);
    int *start = (int *)(acc + (long)Ho * Wo * O), *end = start + hw, *chan = end + hw;
    long nnz = conv_active_masks(sp, s->C, hw, nw, mask);
    if (nnz < CONV_GATHER_DENSITY * s->C * hw) {
        conv_event_scatter(s, sp, We, b, y, ws);
        return;
    }
    conv_active_lists(mask, hw, nw, s->k * s->k * s->O, start, chan, end);
    for (int o0 = 0; o0 < O; o0 += 64)
        for (int yo = 0; yo < Ho; yo++)
            for (int xo = 0; xo < Wo; xo++) {
                const conv_window w = conv_window_at(s, yo, xo);
                float *a = acc + ((long)yo * Wo + xo) * O + o0;
                if (o0 + 64 <= O)
                    conv_gather64(s, &w, start, end, chan, We, o0, a);
                else
                    conv_gather_rest(s, &w, start, end, chan, We, o0, O, a);
            }
    conv_store_acc(acc, b, y, O, Ho * Wo);
}

int conv_spike_forward(const conv_shape *s, const float *sp, const float *Wt, const float *We,
                       const float *b, float *y, int B, float *ws, cfg_spike_product mode) {
    const long in = (long)s->C * s->H * s->W, out = (long)s->O * s->Ho * s->Wo;
    int event = mode == SPIKE_EVENT ||
                (mode == SPIKE_AUTO && conv_density(sp, B * in) < conv_event_density(s));
    if (!event) {
        conv_forward_prec(s, sp, Wt, b, y, B, ws, s->bf16);
        return 0;
    }
    for (int i = 0; i < B; i++)
        conv_event_one(s, sp + i * in, We, b, y + i * out, ws);
    return 1;
}

void conv_adjoint_weights(const conv_shape *s, const float *Wt, float *Wa) {
    const long block = (long)s->C * s->k * s->k;
    for (int o = 0; o < s->O; o++)
        conv_block_transpose(Wt + o * block, Wa + o * block, s->C, s->k * s->k);
}

void conv_masked_vjp_event(const conv_shape *s, const float *Wa, const float *d, const float *v,
                           const int *idx, int nnz, float *dx, float *ws) {
    const int k = s->k, st = s->stride, p = s->pad, C = s->C, H = s->H, W = s->W;
    const int hw = s->Ho * s->Wo;
    float *acc = ws; /* [H W x C] */
    memset(acc, 0, sizeof(float) * (size_t)H * W * C);
    for (int q = 0; q < nnz; q++) {
        const int j = idx[q];
        const float u = d[j] * v[j];
        if (u == 0.0f) continue;
        const int o = j / hw, yo = (j % hw) / s->Wo, xo = j % s->Wo;
        const int oy = yo * st - p, ox = xo * st - p; /* input read by tap (0, 0) */
        const int ky0 = oy < 0 ? -oy : 0, ky1 = H - 1 - oy < k - 1 ? H - 1 - oy : k - 1;
        const int kx0 = ox < 0 ? -ox : 0, kx1 = W - 1 - ox < k - 1 ? W - 1 - ox : k - 1;
        /* Taps kx0..kx1 read the adjacent inputs ox + kx0 .. ox + kx1 and
         * sit side by side in Wa's kernel row: one scaled add of
         * (kx1 - kx0 + 1) C contiguous floats per row. */
        const long n = (long)(kx1 - kx0 + 1) * C;
        for (int ky = ky0; ky <= ky1; ky++) {
            const float *restrict w = Wa + ((long)(o * k + ky) * k + kx0) * C;
            float *restrict a = acc + ((long)(oy + ky) * W + ox + kx0) * C;
            for (long i = 0; i < n; i++)
                a[i] += u * w[i];
        }
    }
    conv_store_acc(acc, NULL, dx, C, H * W);
}

static void conv_normalise(float *x, int n) {
    float nrm = cblas_snrm2(n, x, 1);
    /* A zero vector stays zero rather than becoming NaN (as specnorm.c). */
    if (nrm > 1e-12f) cblas_sscal(n, 1.0f / nrm, x, 1);
}

float conv_power_iter(const conv_shape *s, const float *Wt, float *u, float *v, int iters,
                      float *work, float *ws) {
    const int nu = s->O * s->Ho * s->Wo, nv = s->C * s->H * s->W;
    for (int it = 0; it < iters; it++) {
        conv_input_vjp_one(s, Wt, u, v, ws);
        conv_normalise(v, nv);
        conv_forward_one(s, v, Wt, NULL, u, ws);
        conv_normalise(u, nu);
    }
    conv_forward_one(s, v, Wt, NULL, work, ws);
    return cblas_sdot(nu, u, 1, work, 1);
}

int conv_transpose_shape_init(conv_transpose_shape *t, int Cin, int Hi, int Wi, int Cout, int k,
                              int stride, int pad, int out_pad) {
    if (Hi <= 0 || Wi <= 0)
        return FAIL("conv_transpose: input size %dx%d must be positive", Hi, Wi);
    if (out_pad < 0 || out_pad >= stride)
        return FAIL("conv_transpose: output padding %d must lie in [0, stride = %d)", out_pad,
                    stride);
    int Ho = (Hi - 1) * stride - 2 * pad + k + out_pad;
    int Wo = (Wi - 1) * stride - 2 * pad + k + out_pad;
    if (Ho <= 0 || Wo <= 0)
        return FAIL("conv_transpose: output size %dx%d from %dx%d (k %d, stride %d, pad %d) is "
                    "empty",
                    Ho, Wo, Hi, Wi, k, stride, pad);
    CHECK(conv_shape_init(&t->conv, Cout, Ho, Wo, Cin, k, stride, pad));
    /* out_pad < stride makes the conv's output size exactly Hi x Wi. */
    t->Cin = Cin;
    t->Hi = Hi;
    t->Wi = Wi;
    t->Cout = Cout;
    t->Ho = Ho;
    t->Wo = Wo;
    t->k = k;
    t->stride = stride;
    t->pad = pad;
    t->out_pad = out_pad;
    return FSNN_OK;
}

size_t conv_transpose_workspace_size(const conv_transpose_shape *t) {
    size_t col = (size_t)t->Cout * t->k * t->k * t->Hi * t->Wi;
    return conv_max(col, (size_t)t->Ho * t->Wo * t->Cout);
}

/* conv_transpose_forward, in bf16 on oneDNN when bf16 = 1. */
static void conv_transpose_prec(const conv_transpose_shape *t, const float *x, const float *Wt,
                                const float *b, float *y, int B, float *ws, int bf16) {
    const long in = (long)t->Cin * t->Hi * t->Wi, out = (long)t->Cout * t->Ho * t->Wo;
    const int hw = t->Ho * t->Wo;
    const int dnn =
        t->conv.dnn && !conv_dnn_failed(dnnconv_backward_data_prec(&t->conv, Wt, x, y, B, bf16));
    for (int i = 0; i < B; i++) {
        float *yi = y + i * out;
        if (!dnn) conv_input_vjp_one(&t->conv, Wt, x + i * in, yi, ws);
        if (b)
            for (int o = 0; o < t->Cout; o++)
                for (int q = 0; q < hw; q++)
                    yi[(long)o * hw + q] += b[o];
    }
}

void conv_transpose_forward(const conv_transpose_shape *t, const float *x, const float *Wt,
                            const float *b, float *y, int B, float *ws) {
    conv_transpose_prec(t, x, Wt, b, y, B, ws, 0);
}

void conv_transpose_vjp(const conv_transpose_shape *t, const float *x, const float *Wt,
                        const float *dy, float *dW, float *db, float *dx, int B, float *ws) {
    const conv_shape *c = &t->conv;
    const int K = t->Cout * t->k * t->k, N = t->Hi * t->Wi;
    const long in = (long)t->Cin * N, out = (long)t->Cout * t->Ho * t->Wo;
    /* On oneDNN: dx is the conv's forward of dy, dW its weight-VJP at dy. */
    if (c->dnn && (dx || dW)) {
        int failed = dx && conv_dnn_failed(dnnconv_forward(c, dy, Wt, NULL, dx, B));
        if (!failed && dW)
            failed = conv_dnn_failed(dnnconv_backward_weights(c, dy, x, dW, NULL, B));
        if (!failed) {
            dx = NULL;
            dW = NULL;
        }
    }
    for (int i = 0; i < B; i++) {
        const float *dyi = dy + i * out;
        if (db) conv_bias_grad(dyi, db, t->Cout, t->Ho * t->Wo);
        if (!dW && !dx) continue;
        /* The conv's forward and weight-VJP share the one im2col of dy. */
        conv_im2col(c, dyi, ws);
        if (dW) blas_gemm(0, 1, t->Cin, K, N, 1.0f, x + i * in, N, ws, N, 1.0f, dW, K);
        if (dx) blas_gemm(0, 0, t->Cin, N, K, 1.0f, Wt, K, ws, N, 0.0f, dx + i * in, N);
    }
}

void conv_transpose_event_weights(const conv_transpose_shape *t, const float *Wt, float *We) {
    const long block = (long)t->Cout * t->k * t->k;
    for (int c = 0; c < t->Cin; c++)
        conv_block_transpose(Wt + c * block, We + c * block, t->Cout, t->k * t->k);
}

/* One sample of the event-driven transposed conv: every active input
 * (ci, yi, xi) adds We[ci,ky,kx,:] at output (yi stride - pad + ky, ...),
 * for the taps that land inside the output. */
static void conv_transpose_event_one(const conv_transpose_shape *t, const float *sp,
                                     const float *We, const float *b, float *y, float *acc) {
    const int k = t->k, st = t->stride, p = t->pad, Co = t->Cout, Ho = t->Ho, Wo = t->Wo;
    memset(acc, 0, sizeof(float) * (size_t)Ho * Wo * Co);
    for (int c = 0; c < t->Cin; c++)
        for (int yi = 0; yi < t->Hi; yi++) {
            const float *sr = sp + ((long)c * t->Hi + yi) * t->Wi;
            const int oy = yi * st - p; /* output row of tap 0 */
            const int ky0 = oy < 0 ? -oy : 0, ky1 = Ho - 1 - oy < k - 1 ? Ho - 1 - oy : k - 1;
            for (int xi = 0; xi < t->Wi; xi++) {
                if (sr[xi] == 0.0f) continue;
                const int ox = xi * st - p;
                const int kx0 = ox < 0 ? -ox : 0, kx1 = Wo - 1 - ox < k - 1 ? Wo - 1 - ox : k - 1;
                /* Taps kx0..kx1 reach the adjacent outputs ox + kx0 ..
                 * ox + kx1 and sit side by side in the kernel row: one add
                 * of (kx1 - kx0 + 1) Cout contiguous floats per row. */
                const long n = (long)(kx1 - kx0 + 1) * Co;
                for (int ky = ky0; ky <= ky1; ky++) {
                    const float *restrict w = We + ((long)(c * k + ky) * k + kx0) * Co;
                    float *restrict a = acc + ((long)(oy + ky) * Wo + ox + kx0) * Co;
                    for (long j = 0; j < n; j++)
                        a[j] += w[j];
                }
            }
        }
    conv_store_acc(acc, b, y, Co, Ho * Wo);
}

int conv_transpose_spike_forward(const conv_transpose_shape *t, const float *sp, const float *Wt,
                                 const float *We, const float *b, float *y, int B, float *ws,
                                 cfg_spike_product mode) {
    const long in = (long)t->Cin * t->Hi * t->Wi, out = (long)t->Cout * t->Ho * t->Wo;
    int event =
        mode == SPIKE_EVENT ||
        (mode == SPIKE_AUTO && conv_density(sp, B * in) < conv_transpose_event_density(&t->conv));
    if (!event) {
        conv_transpose_prec(t, sp, Wt, b, y, B, ws, t->conv.bf16);
        return 0;
    }
    for (int i = 0; i < B; i++)
        conv_transpose_event_one(t, sp + i * in, We, b, y + i * out, ws);
    return 1;
}
