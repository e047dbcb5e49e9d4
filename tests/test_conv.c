/* conv: convolution, transposed convolution, their VJPs, the event-driven
 * paths from spikes and the conv power iteration.
 *
 * - Forward against a naive 7-loop conv in double (and the transposed conv
 *   against its scatter definition in double) on random shapes, non-square
 *   and odd sizes, stride 1 and 2, k 1, 3, 5: every output within
 *   (K + 1) 2^-23 sum |terms| (K terms per output: the recursive-summation
 *   bound for float sums).
 * - VJPs (dx, dW, db of conv with stride 1 and 2 and of the transposed conv)
 *   against central finite differences of the scalar L = sum(r ⊙ y), r
 *   random, computed by the double reference forward (checked against the
 *   float forward above): L is linear, so eps = 1e-3 leaves only double
 *   rounding; the float VJPs must agree entry by entry to 1e-4 relative +
 *   1e-5 absolute.
 * - Event vs dense from spikes at densities 0, 0.01, 0.1, 0.5, 1: with
 *   dyadic weights (multiples of 2^-6 in [-1, 1]) every partial sum is exact
 *   in float, so both paths must agree bit for bit; with general weights
 *   within the bound the header states, C k^2 2^-23 sum |terms|.
 * - The input-VJP from a sparse dy (conv_masked_vjp_event, the adjoint's
 *   event path) against conv_vjp's dense dx at the same densities: bit for
 *   bit with dyadic weights and values, else within O k^2 2^-23 sum |terms|.
 * - conv_power_iter after 500 iterations against the largest singular value
 *   (LAPACK dgesvd in double) of the conv operator written out as a dense
 *   matrix from the definition: 1e-3 relative, never above it (u^T A v <=
 *   sigma_1 for unit u, v), and A v = sigma u to 1e-3.
 * - Shape checks: bad arguments are refused with a message. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "conv.h"
#include "rng.h"
#include "specnorm.h"
#include "testutil.h"

static uint32_t fill_id;

static void uniform(float *x, long n, float lo, float hi) {
    rng_uniform_fill(31, RNG_TEST, 0, fill_id++, x, n);
    for (long i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * x[i];
}

static float *falloc(size_t n) {
    float *p = calloc(n ? n : 1, sizeof(float));
    if (!p) {
        fprintf(stderr, "test_conv: out of memory\n");
        exit(1);
    }
    return p;
}

static double *dalloc(size_t n) {
    double *p = calloc(n ? n : 1, sizeof(double));
    if (!p) {
        fprintf(stderr, "test_conv: out of memory\n");
        exit(1);
    }
    return p;
}

/* ---------- references in double ---------- */

/* y = conv(x, w) + b by the definition; yabs = sum |terms| per output. */
static void ref_conv(const conv_shape *s, int B, const double *x, const double *w, const double *b,
                     double *y, double *yabs) {
    const int k = s->k;
    for (int i = 0; i < B; i++)
        for (int o = 0; o < s->O; o++)
            for (int yo = 0; yo < s->Ho; yo++)
                for (int xo = 0; xo < s->Wo; xo++) {
                    double acc = b ? b[o] : 0.0, aa = b ? fabs(b[o]) : 0.0;
                    for (int c = 0; c < s->C; c++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                int yi = yo * s->stride - s->pad + ky;
                                int xi = xo * s->stride - s->pad + kx;
                                if (yi < 0 || yi >= s->H || xi < 0 || xi >= s->W) continue;
                                double t = w[((o * s->C + c) * k + ky) * k + kx] *
                                           x[(((long)i * s->C + c) * s->H + yi) * s->W + xi];
                                acc += t;
                                aa += fabs(t);
                            }
                    long q = (((long)i * s->O + o) * s->Ho + yo) * s->Wo + xo;
                    y[q] = acc;
                    if (yabs) yabs[q] = aa;
                }
}

/* torch's ConvTranspose2d by its definition: every input scatters
 * x[ci, yi, xi] w[ci, co, ky, kx] to output (yi stride - pad + ky, ...). */
static void ref_convt(const conv_transpose_shape *t, int B, const double *x, const double *w,
                      const double *b, double *y, double *yabs) {
    const int k = t->k;
    const long out = (long)t->Cout * t->Ho * t->Wo;
    for (int i = 0; i < B; i++)
        for (int co = 0; co < t->Cout; co++)
            for (int q = 0; q < t->Ho * t->Wo; q++) {
                y[i * out + co * t->Ho * t->Wo + q] = b ? b[co] : 0.0;
                yabs[i * out + co * t->Ho * t->Wo + q] = b ? fabs(b[co]) : 0.0;
            }
    for (int i = 0; i < B; i++)
        for (int ci = 0; ci < t->Cin; ci++)
            for (int yi = 0; yi < t->Hi; yi++)
                for (int xi = 0; xi < t->Wi; xi++)
                    for (int co = 0; co < t->Cout; co++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++) {
                                int yo = yi * t->stride - t->pad + ky;
                                int xo = xi * t->stride - t->pad + kx;
                                if (yo < 0 || yo >= t->Ho || xo < 0 || xo >= t->Wo) continue;
                                double v = x[(((long)i * t->Cin + ci) * t->Hi + yi) * t->Wi + xi] *
                                           w[((ci * t->Cout + co) * k + ky) * k + kx];
                                long q = (((long)i * t->Cout + co) * t->Ho + yo) * t->Wo + xo;
                                y[q] += v;
                                yabs[q] += fabs(v);
                            }
}

static void to_double(const float *a, double *d, long n) {
    for (long i = 0; i < n; i++)
        d[i] = a[i];
}

/* Every float output within (K + 1) 2^-23 sum |terms| of the double one. */
static void expect_close_sum(const float *got, const double *want, const double *wabs, long n,
                             int K, const char *what) {
    long bad = 0, first = -1;
    for (long q = 0; q < n; q++)
        if (fabs(got[q] - want[q]) > (K + 1) * 0x1p-23 * wabs[q] + 1e-30) {
            if (first < 0) first = q;
            bad++;
        }
    EXPECT(bad == 0, "%s: %ld of %ld outputs off (first %ld: %.9g vs %.9g)", what, bad, n, first,
           first >= 0 ? got[first] : 0.0, first >= 0 ? want[first] : 0.0);
}

/* The finite-difference problem: L(x, w, b) = sum r ⊙ y by a double
 * reference forward. */
typedef struct {
    int transposed;
    const conv_shape *s;
    const conv_transpose_shape *t;
    int B;
    long nx, nw, nb, ny;
    double *x, *w, *b, *r, *y, *yabs;
} fd_problem;

static double fd_loss(const fd_problem *p) {
    if (p->transposed)
        ref_convt(p->t, p->B, p->x, p->w, p->b, p->y, p->yabs);
    else
        ref_conv(p->s, p->B, p->x, p->w, p->b, p->y, p->yabs);
    double L = 0.0;
    for (long q = 0; q < p->ny; q++)
        L += p->r[q] * p->y[q];
    return L;
}

/* Central differences of L in every entry of v, against the float grad. */
static void fd_check(fd_problem *p, double *v, long n, const float *grad, const char *what) {
    const double eps = 1e-3;
    long bad = 0;
    double worst = 0.0;
    for (long i = 0; i < n; i++) {
        double keep = v[i];
        v[i] = keep + eps;
        double lp = fd_loss(p);
        v[i] = keep - eps;
        double lm = fd_loss(p);
        v[i] = keep;
        double fd = (lp - lm) / (2 * eps);
        double err = fabs(grad[i] - fd);
        if (err > 1e-5 + 1e-4 * fabs(fd)) bad++;
        if (err > worst) worst = err;
    }
    EXPECT(bad == 0, "%s: %ld of %ld entries differ from finite differences (worst %.3g)", what,
           bad, n, worst);
}

/* ---------- conv forward and VJP ---------- */

static void test_conv_case(int B, int C, int H, int W, int O, int k, int stride, int pad,
                           int check_vjp) {
    conv_shape s;
    EXPECT_OK(conv_shape_init(&s, C, H, W, O, k, stride, pad));
    char what[128];
    snprintf(what, sizeof what, "conv B%d C%d %dx%d -> O%d k%d s%d p%d", B, C, H, W, O, k, stride,
             pad);
    EXPECT(s.Ho == (H + 2 * pad - k) / stride + 1 && s.Wo == (W + 2 * pad - k) / stride + 1,
           "%s: output %dx%d", what, s.Ho, s.Wo);
    const long nx = (long)B * C * H * W, nw = (long)O * C * k * k, ny = (long)B * O * s.Ho * s.Wo;
    float *x = falloc(nx), *w = falloc(nw), *b = falloc(O), *y = falloc(ny), *r = falloc(ny);
    float *ws = falloc(conv_workspace_size(&s));
    uniform(x, nx, -1.0f, 1.0f);
    uniform(w, nw, -1.0f, 1.0f);
    uniform(b, O, -1.0f, 1.0f);
    uniform(r, ny, -1.0f, 1.0f);
    fd_problem p = {0,  &s,         NULL,       B,         nx,         nw,         O,
                    ny, dalloc(nx), dalloc(nw), dalloc(O), dalloc(ny), dalloc(ny), dalloc(ny)};
    to_double(x, p.x, nx);
    to_double(w, p.w, nw);
    to_double(b, p.b, O);
    to_double(r, p.r, ny);
    fd_loss(&p);
    conv_forward(&s, x, w, b, y, B, ws);
    expect_close_sum(y, p.y, p.yabs, ny, C * k * k, what);

    if (check_vjp) {
        float *dx = falloc(nx), *dW = falloc(nw), *db = falloc(O);
        /* dW and db accumulate: start from a known offset. */
        for (long i = 0; i < nw; i++)
            dW[i] = 0.5f;
        for (int o = 0; o < O; o++)
            db[o] = -0.25f;
        conv_vjp(&s, x, w, r, dW, db, dx, B, ws);
        for (long i = 0; i < nw; i++)
            dW[i] -= 0.5f;
        for (int o = 0; o < O; o++)
            db[o] += 0.25f;
        char tag[160];
        snprintf(tag, sizeof tag, "%s dx", what);
        fd_check(&p, p.x, nx, dx, tag);
        snprintf(tag, sizeof tag, "%s dW", what);
        fd_check(&p, p.w, nw, dW, tag);
        snprintf(tag, sizeof tag, "%s db", what);
        fd_check(&p, p.b, O, db, tag);
        /* NULL outputs are skipped; dx alone is the same dx. */
        float *dx2 = falloc(nx);
        conv_vjp(&s, x, w, r, NULL, NULL, dx2, B, ws);
        EXPECT(memcmp(dx, dx2, sizeof(float) * nx) == 0, "%s: dx alone differs", what);
        free(dx);
        free(dx2);
        free(dW);
        free(db);
    }
    free(x);
    free(w);
    free(b);
    free(y);
    free(r);
    free(ws);
    free(p.x);
    free(p.w);
    free(p.b);
    free(p.r);
    free(p.y);
    free(p.yabs);
}

/* ---------- transposed conv ---------- */

static void test_convt_case(int B, int Cin, int Hi, int Wi, int Cout, int k, int stride, int pad,
                            int out_pad) {
    conv_transpose_shape t;
    EXPECT_OK(conv_transpose_shape_init(&t, Cin, Hi, Wi, Cout, k, stride, pad, out_pad));
    char what[128];
    snprintf(what, sizeof what, "convT B%d Cin%d %dx%d -> Cout%d k%d s%d p%d op%d", B, Cin, Hi, Wi,
             Cout, k, stride, pad, out_pad);
    EXPECT(t.Ho == (Hi - 1) * stride - 2 * pad + k + out_pad, "%s: Ho %d", what, t.Ho);
    EXPECT(t.conv.Ho == Hi && t.conv.Wo == Wi, "%s: its conv maps back to %dx%d", what, t.conv.Ho,
           t.conv.Wo);
    const long nx = (long)B * Cin * Hi * Wi, nw = (long)Cin * Cout * k * k;
    const long ny = (long)B * Cout * t.Ho * t.Wo;
    float *x = falloc(nx), *w = falloc(nw), *b = falloc(Cout), *y = falloc(ny), *r = falloc(ny);
    float *ws = falloc(conv_transpose_workspace_size(&t));
    uniform(x, nx, -1.0f, 1.0f);
    uniform(w, nw, -1.0f, 1.0f);
    uniform(b, Cout, -1.0f, 1.0f);
    uniform(r, ny, -1.0f, 1.0f);
    fd_problem p = {1,          NULL,      &t,         B,          nx,           nw,
                    Cout,       ny,        dalloc(nx), dalloc(nw), dalloc(Cout), dalloc(ny),
                    dalloc(ny), dalloc(ny)};
    to_double(x, p.x, nx);
    to_double(w, p.w, nw);
    to_double(b, p.b, Cout);
    to_double(r, p.r, ny);
    fd_loss(&p);
    conv_transpose_forward(&t, x, w, b, y, B, ws);
    expect_close_sum(y, p.y, p.yabs, ny, Cin * k * k, what);

    float *dx = falloc(nx), *dW = falloc(nw), *db = falloc(Cout);
    conv_transpose_vjp(&t, x, w, r, dW, db, dx, B, ws);
    char tag[160];
    snprintf(tag, sizeof tag, "%s dx", what);
    fd_check(&p, p.x, nx, dx, tag);
    snprintf(tag, sizeof tag, "%s dW", what);
    fd_check(&p, p.w, nw, dW, tag);
    snprintf(tag, sizeof tag, "%s db", what);
    fd_check(&p, p.b, Cout, db, tag);
    free(dx);
    free(dW);
    free(db);
    free(x);
    free(w);
    free(b);
    free(y);
    free(r);
    free(ws);
    free(p.x);
    free(p.w);
    free(p.b);
    free(p.r);
    free(p.y);
    free(p.yabs);
}

/* ---------- event-driven against dense ---------- */

static void spikes(float *sp, long n, double density) {
    uniform(sp, n, 0.0f, 1.0f);
    for (long i = 0; i < n; i++)
        sp[i] = sp[i] < density ? 1.0f : 0.0f;
}

/* Weights that are multiples of 2^-6 in [-1, 1]: every sum of them exact. */
static void dyadic(float *w, long n) {
    uniform(w, n, -1.0f, 1.0f);
    for (long i = 0; i < n; i++)
        w[i] = roundf(w[i] * 64.0f) / 64.0f;
}

static const double densities[] = {0.0, 0.01, 0.1, 0.5, 1.0};

/* Compares the event and dense outputs: bit for bit when `exact`, else
 * within C k^2 2^-23 sum |terms|, with sum |terms| = the dense path on |w|. */
static void expect_event_matches(const float *ye, const float *yd, const float *yabs, long n, int K,
                                 int exact, const char *what) {
    long bad = 0;
    double worst = 0.0;
    for (long q = 0; q < n; q++) {
        double err = fabs((double)ye[q] - yd[q]);
        double tol = exact ? 0.0 : K * 0x1p-23 * yabs[q];
        if (err > tol) bad++;
        if (err > worst) worst = err;
    }
    EXPECT(bad == 0, "%s: %ld of %ld outputs differ (worst %.3g)", what, bad, n, worst);
}

static void test_event_conv(int B, int C, int H, int W, int O, int k, int stride, int pad) {
    conv_shape s;
    EXPECT_OK(conv_shape_init(&s, C, H, W, O, k, stride, pad));
    const long nx = (long)B * C * H * W, nw = (long)O * C * k * k, ny = (long)B * O * s.Ho * s.Wo;
    float *sp = falloc(nx), *w = falloc(nw), *wa = falloc(nw), *we = falloc(nw), *b = falloc(O);
    float *ba = falloc(O), *yd = falloc(ny), *ye = falloc(ny), *yabs = falloc(ny);
    float *ws = falloc(conv_workspace_size(&s));
    for (int exact = 1; exact >= 0; exact--) {
        if (exact) {
            dyadic(w, nw);
            dyadic(b, O);
        } else {
            uniform(w, nw, -1.0f, 1.0f);
            uniform(b, O, -1.0f, 1.0f);
        }
        for (long i = 0; i < nw; i++)
            wa[i] = fabsf(w[i]);
        for (int o = 0; o < O; o++)
            ba[o] = fabsf(b[o]);
        conv_event_weights(&s, w, we);
        for (size_t q = 0; q < sizeof densities / sizeof densities[0]; q++) {
            spikes(sp, nx, densities[q]);
            char what[160];
            snprintf(what, sizeof what, "event conv C%d %dx%d O%d k%d s%d, density %g, %s weights",
                     C, H, W, O, k, stride, densities[q], exact ? "dyadic" : "general");
            EXPECT(conv_spike_forward(&s, sp, w, we, b, yd, B, ws, SPIKE_DENSE) == 0,
                   "%s: dense mode ran the event path", what);
            EXPECT(conv_spike_forward(&s, sp, w, we, b, ye, B, ws, SPIKE_EVENT) == 1,
                   "%s: event mode ran sgemm", what);
            conv_forward(&s, sp, wa, ba, yabs, B, ws);
            expect_event_matches(ye, yd, yabs, ny, C * k * k, exact, what);
            /* SPIKE_AUTO picks by the measured density. */
            int want = densities[q] < CONV_EVENT_DENSITY;
            EXPECT(conv_spike_forward(&s, sp, w, we, b, ye, B, ws, SPIKE_AUTO) == want,
                   "%s: auto mode took the wrong path", what);
        }
    }
    free(sp);
    free(w);
    free(wa);
    free(we);
    free(b);
    free(ba);
    free(yd);
    free(ye);
    free(yabs);
    free(ws);
}

/* The input-VJP from a sparse dy = d ⊙ v: conv_masked_vjp_event from the
 * listed outputs against conv_vjp's dense dx. d is 0 or 1/V_th = 0.5 (and
 * 1.25/V_th with dropout in the general case) at the given density. With
 * dyadic weights and v, d = 0.5, every product is a multiple of 2^-13 of
 * size <= 0.5 and every partial sum of the <= O k^2 = 1600 terms below
 * 2^10: exact in float, so bit for bit; else within O k^2 2^-23 sum |terms|,
 * with sum |terms| the dense path on |w|, |d v|. */
static void test_event_adjoint(int B, int C, int H, int W, int O, int k, int stride, int pad) {
    conv_shape s;
    EXPECT_OK(conv_shape_init(&s, C, H, W, O, k, stride, pad));
    const long nx = (long)B * C * H * W, nw = (long)O * C * k * k, out = (long)O * s.Ho * s.Wo;
    const long ny = B * out;
    float *d = falloc(ny), *v = falloc(ny), *dy = falloc(ny), *dya = falloc(ny), *w = falloc(nw);
    float *wa = falloc(nw), *wadj = falloc(nw), *dxd = falloc(nx), *dxe = falloc(nx);
    float *dxa = falloc(nx), *r = falloc(ny), *ws = falloc(conv_workspace_size(&s));
    int *idx = calloc((size_t)out, sizeof(int));
    for (int exact = 1; exact >= 0; exact--) {
        if (exact) {
            dyadic(w, nw);
            dyadic(v, ny);
        } else {
            uniform(w, nw, -1.0f, 1.0f);
            uniform(v, ny, -1.0f, 1.0f);
        }
        for (long i = 0; i < nw; i++)
            wa[i] = fabsf(w[i]);
        conv_adjoint_weights(&s, w, wadj);
        for (size_t q = 0; q < sizeof densities / sizeof densities[0]; q++) {
            uniform(r, ny, 0.0f, 1.0f);
            for (long i = 0; i < ny; i++) {
                float on = exact || r[i] < 0.5f * densities[q] ? 0.5f : 0.625f;
                d[i] = r[i] < densities[q] ? on : 0.0f;
                dy[i] = d[i] * v[i];
                dya[i] = fabsf(dy[i]);
            }
            conv_vjp(&s, NULL, w, dy, NULL, NULL, dxd, B, ws);
            conv_vjp(&s, NULL, wa, dya, NULL, NULL, dxa, B, ws);
            for (int b = 0; b < B; b++) {
                int nnz = 0;
                for (long j = 0; j < out; j++)
                    if (d[b * out + j] != 0.0f) idx[nnz++] = (int)j;
                for (long i = 0; i < (long)C * H * W; i++) /* every input written */
                    dxe[b * (long)C * H * W + i] = NAN;
                conv_masked_vjp_event(&s, wadj, d + b * out, v + b * out, idx, nnz,
                                      dxe + b * (long)C * H * W, ws);
            }
            char what[160];
            snprintf(what, sizeof what,
                     "event adjoint C%d %dx%d O%d k%d s%d, density %g, %s weights", C, H, W, O, k,
                     stride, densities[q], exact ? "dyadic" : "general");
            expect_event_matches(dxe, dxd, dxa, nx, O * k * k, exact, what);
        }
    }
    free(d);
    free(v);
    free(dy);
    free(dya);
    free(w);
    free(wa);
    free(wadj);
    free(dxd);
    free(dxe);
    free(dxa);
    free(r);
    free(ws);
    free(idx);
}

static void test_event_convt(int B, int Cin, int Hi, int Wi, int Cout, int k, int stride, int pad,
                             int out_pad) {
    conv_transpose_shape t;
    EXPECT_OK(conv_transpose_shape_init(&t, Cin, Hi, Wi, Cout, k, stride, pad, out_pad));
    const long nx = (long)B * Cin * Hi * Wi, nw = (long)Cin * Cout * k * k;
    const long ny = (long)B * Cout * t.Ho * t.Wo;
    float *sp = falloc(nx), *w = falloc(nw), *wa = falloc(nw), *we = falloc(nw);
    float *b = falloc(Cout), *ba = falloc(Cout), *yd = falloc(ny), *ye = falloc(ny);
    float *yabs = falloc(ny), *ws = falloc(conv_transpose_workspace_size(&t));
    for (int exact = 1; exact >= 0; exact--) {
        if (exact) {
            dyadic(w, nw);
            dyadic(b, Cout);
        } else {
            uniform(w, nw, -1.0f, 1.0f);
            uniform(b, Cout, -1.0f, 1.0f);
        }
        for (long i = 0; i < nw; i++)
            wa[i] = fabsf(w[i]);
        for (int o = 0; o < Cout; o++)
            ba[o] = fabsf(b[o]);
        conv_transpose_event_weights(&t, w, we);
        for (size_t q = 0; q < sizeof densities / sizeof densities[0]; q++) {
            spikes(sp, nx, densities[q]);
            char what[160];
            snprintf(what, sizeof what,
                     "event convT Cin%d %dx%d Cout%d k%d s%d op%d, density %g, %s weights", Cin, Hi,
                     Wi, Cout, k, stride, out_pad, densities[q], exact ? "dyadic" : "general");
            EXPECT(conv_transpose_spike_forward(&t, sp, w, we, b, yd, B, ws, SPIKE_DENSE) == 0,
                   "%s: dense mode ran the event path", what);
            EXPECT(conv_transpose_spike_forward(&t, sp, w, we, b, ye, B, ws, SPIKE_EVENT) == 1,
                   "%s: event mode ran sgemm", what);
            conv_transpose_forward(&t, sp, wa, ba, yabs, B, ws);
            expect_event_matches(ye, yd, yabs, ny, Cin * k * k, exact, what);
            int want = densities[q] < CONV_TRANSPOSE_EVENT_DENSITY;
            EXPECT(conv_transpose_spike_forward(&t, sp, w, we, b, ye, B, ws, SPIKE_AUTO) == want,
                   "%s: auto mode took the wrong path", what);
        }
    }
    free(sp);
    free(w);
    free(wa);
    free(we);
    free(b);
    free(ba);
    free(yd);
    free(ye);
    free(yabs);
    free(ws);
}

/* ---------- power iteration ---------- */

static void test_power(int C, int H, int W, int O, int k, int stride, int pad) {
    conv_shape s;
    EXPECT_OK(conv_shape_init(&s, C, H, W, O, k, stride, pad));
    const int nv = C * H * W, nu = O * s.Ho * s.Wo;
    const long nw = (long)O * C * k * k;
    float *w = falloc(nw), *A = falloc((size_t)nu * nv), *u = falloc(nu), *v = falloc(nv);
    float *work = falloc(nu), *ws = falloc(conv_workspace_size(&s));
    uniform(w, nw, -1.0f, 1.0f);
    /* The operator as a dense matrix, from the definition: row (o, yo, xo),
     * column (c, yi, xi). */
    for (int o = 0; o < O; o++)
        for (int yo = 0; yo < s.Ho; yo++)
            for (int xo = 0; xo < s.Wo; xo++)
                for (int c = 0; c < C; c++)
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            int yi = yo * stride - pad + ky, xi = xo * stride - pad + kx;
                            if (yi < 0 || yi >= H || xi < 0 || xi >= W) continue;
                            long row = ((long)o * s.Ho + yo) * s.Wo + xo;
                            A[row * nv + ((long)c * H + yi) * W + xi] +=
                                w[((o * C + c) * k + ky) * k + kx];
                        }
    const double ref = testutil_spectral_norm(A, nu, nv);
    specnorm_init_vectors(u, nu, v, nv, 7);
    /* 0 iterations: u^T conv(v) for the vectors as they are. */
    double uav = 0.0;
    for (int i = 0; i < nu; i++)
        for (int j = 0; j < nv; j++)
            uav += (double)u[i] * A[(long)i * nv + j] * v[j];
    char what[128];
    snprintf(what, sizeof what, "power C%d %dx%d O%d k%d s%d", C, H, W, O, k, stride);
    EXPECT_NEAR(conv_power_iter(&s, w, u, v, 0, work, ws), uav, 1e-5, 1e-5, "iters 0: u^T conv v");
    float sigma = conv_power_iter(&s, w, u, v, 500, work, ws);
    EXPECT_NEAR(sigma, ref, 0.0, 1e-3, what);
    EXPECT(sigma <= ref * (1.0 + 1e-5), "%s: estimate %g above sigma_1 %g", what, sigma, ref);
    double r2 = 0.0;
    for (int i = 0; i < nu; i++) {
        double av = 0.0;
        for (int j = 0; j < nv; j++)
            av += (double)A[(long)i * nv + j] * v[j];
        r2 += (av - sigma * (double)u[i]) * (av - sigma * (double)u[i]);
    }
    EXPECT(sqrt(r2) <= 1e-3 * sigma, "%s: ||A v - sigma u|| = %g", what, sqrt(r2));
    printf("%s: sigma_1 %.6f (dgesvd), estimate %.6f\n", what, ref, sigma);
    free(w);
    free(A);
    free(u);
    free(v);
    free(work);
    free(ws);
}

/* ---------- shape checks ---------- */

static void test_shapes(void) {
    conv_shape s;
    conv_transpose_shape t;
    EXPECT_FAILS(conv_shape_init(&s, 3, 8, 8, 4, 4, 1, 1), "kernel size 4", "odd");
    EXPECT_FAILS(conv_shape_init(&s, 3, 8, 8, 4, 3, 3, 1), "stride 3");
    EXPECT_FAILS(conv_shape_init(&s, 3, 8, 8, 4, 3, 1, 3), "padding 3");
    EXPECT_FAILS(conv_shape_init(&s, 0, 8, 8, 4, 3, 1, 1), "C 0");
    EXPECT_FAILS(conv_shape_init(&s, 3, 2, 8, 4, 5, 1, 0), "2x8", "kernel 5");
    EXPECT_FAILS(conv_transpose_shape_init(&t, 3, 4, 4, 2, 3, 2, 1, 2), "output padding 2");
    EXPECT_FAILS(conv_transpose_shape_init(&t, 3, 0, 4, 2, 3, 2, 1, 1), "0x4");
    /* The nets' upscaling: k 3, stride 2, pad 1, out_pad 1 doubles the size. */
    EXPECT_OK(conv_transpose_shape_init(&t, 8, 7, 5, 4, 3, 2, 1, 1));
    EXPECT(t.Ho == 14 && t.Wo == 10, "2x upscaling of 7x5 gave %dx%d", t.Ho, t.Wo);
    /* p = k / 2 keeps the size at stride 1 and halves it (ceil) at stride 2. */
    EXPECT_OK(conv_shape_init(&s, 1, 14, 13, 1, 5, 1, 2));
    EXPECT(s.Ho == 14 && s.Wo == 13, "k5 p2 s1 on 14x13 gave %dx%d", s.Ho, s.Wo);
    EXPECT_OK(conv_shape_init(&s, 1, 28, 27, 1, 5, 2, 2));
    EXPECT(s.Ho == 14 && s.Wo == 14, "k5 p2 s2 on 28x27 gave %dx%d", s.Ho, s.Wo);
}

int main(void) {
    test_shapes();
    /* B, C, H, W, O, k, stride, pad, VJP too */
    test_conv_case(2, 3, 7, 5, 4, 3, 1, 1, 1);
    test_conv_case(2, 2, 9, 6, 3, 5, 2, 2, 1);
    test_conv_case(3, 2, 6, 7, 2, 3, 2, 1, 1);
    test_conv_case(2, 3, 5, 4, 2, 3, 2, 0, 1);
    test_conv_case(2, 4, 6, 11, 5, 1, 1, 0, 1);
    test_conv_case(1, 2, 1, 1, 3, 3, 1, 1, 1);
    test_conv_case(2, 5, 13, 8, 7, 5, 1, 2, 0);
    test_conv_case(1, 16, 14, 14, 8, 5, 1, 2, 0);
    test_conv_case(1, 1, 28, 28, 4, 5, 2, 2, 0);
    /* B, Cin, Hi, Wi, Cout, k, stride, pad, out_pad */
    test_convt_case(2, 3, 3, 4, 2, 3, 2, 1, 1);
    test_convt_case(2, 2, 5, 3, 3, 3, 1, 1, 0);
    test_convt_case(1, 2, 3, 2, 2, 5, 2, 2, 1);
    test_convt_case(2, 3, 4, 4, 2, 3, 2, 1, 0);
    /* Spikes: the F64C5 feedback conv, smaller and strided shapes. */
    test_event_conv(2, 64, 14, 14, 64, 5, 1, 2);
    test_event_conv(3, 3, 9, 7, 5, 3, 2, 1);
    test_event_conv(2, 4, 8, 11, 3, 5, 2, 2);
    /* More than 64 channels: several words of spike bits per position. */
    test_event_conv(2, 96, 6, 5, 8, 3, 1, 1);
    test_event_conv(1, 130, 4, 4, 64, 3, 2, 1);
    /* Adjoint products through a sparse mask, the same shapes. */
    test_event_adjoint(2, 64, 14, 14, 64, 5, 1, 2);
    test_event_adjoint(3, 3, 9, 7, 5, 3, 2, 1);
    test_event_adjoint(2, 4, 8, 11, 3, 5, 2, 2);
    test_event_adjoint(2, 3, 7, 6, 4, 1, 2, 0);
    test_event_convt(2, 16, 7, 7, 8, 3, 2, 1, 1);
    test_event_convt(3, 4, 5, 3, 3, 3, 1, 1, 0);
    test_event_convt(2, 3, 4, 6, 5, 5, 2, 2, 1);
    /* C, H, W, O, k, stride, pad */
    test_power(2, 5, 4, 3, 3, 1, 1);
    test_power(3, 6, 5, 2, 3, 2, 1);
    test_power(2, 7, 7, 2, 5, 1, 2);
    return check_finish("conv");
}
