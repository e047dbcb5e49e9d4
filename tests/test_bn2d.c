/* bn2d: BatchNorm2d, per channel over B H W values.
 *
 * - With hw = 1 every function equals bn.h's BatchNorm1d bit for bit.
 * - Training forward against a double forward written here (1e-5 relative
 *   + 1e-6 absolute); that double forward differenced with eps = 1e-6
 *   (truncation O(eps^2), rounding ~1e-10) gives dL/dx, dL/dgamma, dL/dbeta
 *   of L = sum(r ⊙ y), r random: the float VJP (bn2d_grad_sums +
 *   bn2d_vjp_apply) must agree to 1e-4 relative + 1e-5 absolute.
 * - A batch split into two halves (two "ranks"): the halves' sums added
 *   equal the whole batch's sums to 1e-12 relative (double sums in another
 *   order); normalising and the VJP of each half with the added sums and
 *   the global count give the whole batch's y, running statistics and dx
 *   to 1e-6 relative + 1e-7 absolute.
 * - Running statistics: momentum 0.1 and the unbiased variance
 *   (count / (count - 1)); evaluation uses them: 1e-6 relative. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bn.h"
#include "bn2d.h"
#include "check.h"
#include "rng.h"

enum { B = 6, C = 3, HW = 10 };
#define NX ((long)B * C * HW)

static void uniform(float *x, long n, uint32_t id, float lo, float hi) {
    rng_uniform_fill(61, RNG_TEST, 0, id, x, n);
    for (long i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * x[i];
}

/* L = sum r ⊙ BN_train(x) in double, batch statistics of all B hw values. */
static double ref_loss(const double *x, const double *g, const double *be, const float *r, int Bn,
                       int hw, double *y) {
    double L = 0.0;
    for (int c = 0; c < C; c++) {
        double s = 0.0, ss = 0.0, n = (double)Bn * hw;
        for (int i = 0; i < Bn; i++)
            for (int q = 0; q < hw; q++)
                s += x[((long)i * C + c) * hw + q];
        double mu = s / n;
        for (int i = 0; i < Bn; i++)
            for (int q = 0; q < hw; q++) {
                double d = x[((long)i * C + c) * hw + q] - mu;
                ss += d * d;
            }
        double is = 1.0 / sqrt(ss / n + BN_EPS);
        for (int i = 0; i < Bn; i++)
            for (int q = 0; q < hw; q++) {
                long k = ((long)i * C + c) * hw + q;
                double v = g[c] * (x[k] - mu) * is + be[c];
                if (y) y[k] = v;
                L += r[k] * v;
            }
    }
    return L;
}

static void test_same_as_1d(void) {
    float x[B * C], g[C], be[C], dy[B * C];
    uniform(x, B * C, 1, -2.0f, 3.0f);
    uniform(g, C, 2, 0.5f, 1.5f);
    uniform(be, C, 3, -0.5f, 0.5f);
    uniform(dy, B * C, 4, -1.0f, 1.0f);
    double m1[C], v1[C], m2[C], v2[C], a1[C], b1[C], a2[C], b2[C];
    bn_batch_stats(x, B, C, m1, v1);
    bn2d_batch_stats(x, B, C, 1, m2, v2);
    EXPECT(memcmp(m1, m2, sizeof m1) == 0 && memcmp(v1, v2, sizeof v1) == 0,
           "hw = 1: statistics differ from bn_batch_stats");
    float rm1[C] = {0.1f, 0.2f, 0.3f}, rv1[C] = {1.0f, 2.0f, 0.5f}, rm2[C], rv2[C];
    memcpy(rm2, rm1, sizeof rm1);
    memcpy(rv2, rv1, sizeof rv1);
    float xh1[B * C], xh2[B * C], is1[C], is2[C], y1[B * C], y2[B * C], dx1[B * C], dx2[B * C];
    bn_normalize_train(x, g, be, m1, v1, B, rm1, rv1, xh1, is1, y1, B, C);
    bn2d_normalize_train(x, g, be, m2, v2, B, rm2, rv2, xh2, is2, y2, B, C, 1);
    EXPECT(memcmp(y1, y2, sizeof y1) == 0 && memcmp(xh1, xh2, sizeof xh1) == 0 &&
               memcmp(is1, is2, sizeof is1) == 0,
           "hw = 1: training forward differs from bn_normalize_train");
    EXPECT(memcmp(rm1, rm2, sizeof rm1) == 0 && memcmp(rv1, rv2, sizeof rv1) == 0,
           "hw = 1: running statistics differ");
    bn_forward_eval(x, g, be, rm1, rv1, y1, B, C);
    bn2d_forward_eval(x, g, be, rm2, rv2, y2, B, C, 1);
    EXPECT(memcmp(y1, y2, sizeof y1) == 0, "hw = 1: evaluation differs from bn_forward_eval");
    bn_grad_sums(dy, xh1, B, C, a1, b1);
    bn2d_grad_sums(dy, xh2, B, C, 1, a2, b2);
    EXPECT(memcmp(a1, a2, sizeof a1) == 0 && memcmp(b1, b2, sizeof b1) == 0,
           "hw = 1: VJP sums differ from bn_grad_sums");
    bn_vjp_apply(dy, xh1, is1, g, a1, b1, B, dx1, B, C);
    bn2d_vjp_apply(dy, xh2, is2, g, a2, b2, B, dx2, B, C, 1);
    EXPECT(memcmp(dx1, dx2, sizeof dx1) == 0, "hw = 1: dx differs from bn_vjp_apply");
}

static void test_vjp(void) {
    static float x[NX], y[NX], xh[NX], r[NX], dx[NX];
    static double xd[NX], yd[NX];
    float g[C], be[C], is[C], rm[C] = {0}, rv[C] = {1, 1, 1};
    double gd[C], bd[C], mean[C], var[C], sdy[C], sdyx[C];
    uniform(x, NX, 11, -1.0f, 4.0f);
    uniform(r, NX, 12, -1.0f, 1.0f);
    uniform(g, C, 13, 0.5f, 2.0f);
    uniform(be, C, 14, -1.0f, 1.0f);
    for (long i = 0; i < NX; i++)
        xd[i] = x[i];
    for (int c = 0; c < C; c++) {
        gd[c] = g[c];
        bd[c] = be[c];
    }
    bn2d_batch_stats(x, B, C, HW, mean, var);
    bn2d_normalize_train(x, g, be, mean, var, (long)B * HW, rm, rv, xh, is, y, B, C, HW);
    ref_loss(xd, gd, bd, r, B, HW, yd);
    long bad = 0;
    for (long i = 0; i < NX; i++)
        bad += fabs(y[i] - yd[i]) > 1e-6 + 1e-5 * fabs(yd[i]);
    EXPECT(bad == 0, "training forward: %ld of %ld outputs differ from the double forward", bad,
           NX);
    bn2d_grad_sums(r, xh, B, C, HW, sdy, sdyx);
    bn2d_vjp_apply(r, xh, is, g, sdy, sdyx, (long)B * HW, dx, B, C, HW);
    const double eps = 1e-6;
    long badx = 0;
    for (long i = 0; i < NX; i++) {
        double keep = xd[i];
        xd[i] = keep + eps;
        double lp = ref_loss(xd, gd, bd, r, B, HW, NULL);
        xd[i] = keep - eps;
        double lm = ref_loss(xd, gd, bd, r, B, HW, NULL);
        xd[i] = keep;
        double fd = (lp - lm) / (2 * eps);
        badx += fabs(dx[i] - fd) > 1e-5 + 1e-4 * fabs(fd);
    }
    EXPECT(badx == 0, "dx: %ld of %ld entries differ from finite differences", badx, NX);
    for (int c = 0; c < C; c++) {
        double keep = gd[c];
        gd[c] = keep + eps;
        double lp = ref_loss(xd, gd, bd, r, B, HW, NULL);
        gd[c] = keep - eps;
        double lm = ref_loss(xd, gd, bd, r, B, HW, NULL);
        gd[c] = keep;
        EXPECT_NEAR(sdyx[c], (lp - lm) / (2 * eps), 1e-5, 1e-4, "dgamma = sum dy xhat");
        keep = bd[c];
        bd[c] = keep + eps;
        lp = ref_loss(xd, gd, bd, r, B, HW, NULL);
        bd[c] = keep - eps;
        lm = ref_loss(xd, gd, bd, r, B, HW, NULL);
        bd[c] = keep;
        EXPECT_NEAR(sdy[c], (lp - lm) / (2 * eps), 1e-5, 1e-4, "dbeta = sum dy");
    }
}

static void expect_close(const float *got, const float *want, long n, const char *what) {
    long bad = 0;
    for (long i = 0; i < n; i++)
        bad += fabsf(got[i] - want[i]) > 1e-7f + 1e-6f * fabsf(want[i]);
    EXPECT(bad == 0, "%s: %ld of %ld entries differ", what, bad, n);
}

static void test_halves(void) {
    static float x[NX], r[NX], y[NX], xh[NX], dx[NX], yh[NX], xhh[NX], dxh[NX];
    float g[C], be[C], is[C], ish[2][C];
    float rm[C] = {0.5f, -0.5f, 0.0f}, rv[C] = {1.0f, 2.0f, 3.0f}, rmh[2][C], rvh[2][C];
    uniform(x, NX, 21, -3.0f, 5.0f);
    uniform(r, NX, 22, -1.0f, 1.0f);
    uniform(g, C, 23, 0.5f, 2.0f);
    uniform(be, C, 24, -1.0f, 1.0f);
    const int Bh = B / 2;
    const long half = (long)Bh * C * HW, count = (long)B * HW;
    /* Whole batch in one process. */
    double mean[C], var[C], sdy[C], sdyx[C], rm0[C], rv0[C];
    for (int c = 0; c < C; c++) {
        rm0[c] = rm[c];
        rv0[c] = rv[c];
        for (int h = 0; h < 2; h++) {
            rmh[h][c] = rm[c];
            rvh[h][c] = rv[c];
        }
    }
    bn2d_batch_stats(x, B, C, HW, mean, var);
    bn2d_normalize_train(x, g, be, mean, var, count, rm, rv, xh, is, y, B, C, HW);
    bn2d_grad_sums(r, xh, B, C, HW, sdy, sdyx);
    bn2d_vjp_apply(r, xh, is, g, sdy, sdyx, count, dx, B, C, HW);
    /* Two halves: each sums its own values, the sums are added. */
    double s[2][C], gmean[C], sq[2][C], gvar[C], whole[C];
    bn2d_sums(x, Bh, C, HW, s[0]);
    bn2d_sums(x + half, Bh, C, HW, s[1]);
    bn2d_sums(x, B, C, HW, whole);
    for (int c = 0; c < C; c++) {
        EXPECT_NEAR(s[0][c] + s[1][c], whole[c], 1e-12, 1e-12, "halves' sums added");
        gmean[c] = (s[0][c] + s[1][c]) / (double)count;
        EXPECT_NEAR(gmean[c], mean[c], 1e-12, 1e-12, "mean from the halves");
    }
    bn2d_sqdev_sums(x, gmean, Bh, C, HW, sq[0]);
    bn2d_sqdev_sums(x + half, gmean, Bh, C, HW, sq[1]);
    for (int c = 0; c < C; c++) {
        gvar[c] = (sq[0][c] + sq[1][c]) / (double)count;
        EXPECT_NEAR(gvar[c], var[c], 1e-12, 1e-12, "variance from the halves");
    }
    double gs[2][C], gx[2][C], tsdy[C], tsdyx[C];
    for (int h = 0; h < 2; h++)
        bn2d_normalize_train(x + h * half, g, be, gmean, gvar, count, rmh[h], rvh[h],
                             xhh + h * half, ish[h], yh + h * half, Bh, C, HW);
    expect_close(yh, y, NX, "y of the halves");
    for (int h = 0; h < 2; h++) {
        expect_close(rmh[h], rm, C, "running mean of a half");
        expect_close(rvh[h], rv, C, "running variance of a half");
        bn2d_grad_sums(r + h * half, xhh + h * half, Bh, C, HW, gs[h], gx[h]);
    }
    for (int c = 0; c < C; c++) {
        tsdy[c] = gs[0][c] + gs[1][c];
        tsdyx[c] = gx[0][c] + gx[1][c];
        EXPECT_NEAR(tsdy[c], sdy[c], 1e-12, 1e-10, "sum dy of the halves");
        EXPECT_NEAR(tsdyx[c], sdyx[c], 1e-10, 1e-8, "sum dy xhat of the halves");
    }
    for (int h = 0; h < 2; h++)
        bn2d_vjp_apply(r + h * half, xhh + h * half, ish[h], g, tsdy, tsdyx, count, dxh + h * half,
                       Bh, C, HW);
    expect_close(dxh, dx, NX, "dx of the halves");
    /* Running statistics: momentum 0.1, unbiased variance. */
    for (int c = 0; c < C; c++) {
        EXPECT_NEAR(rm[c], 0.9 * rm0[c] + 0.1 * mean[c], 1e-6, 1e-6, "running mean");
        EXPECT_NEAR(rv[c], 0.9 * rv0[c] + 0.1 * var[c] * count / (count - 1), 1e-6, 1e-6,
                    "running variance (unbiased)");
    }
    /* Evaluation uses the running statistics. */
    bn2d_forward_eval(x, g, be, rm, rv, y, B, C, HW);
    long bad = 0;
    for (int i = 0; i < B; i++)
        for (int c = 0; c < C; c++)
            for (int q = 0; q < HW; q++) {
                long k = ((long)i * C + c) * HW + q;
                double want = g[c] * (x[k] - (double)rm[c]) / sqrt(rv[c] + (double)BN_EPS) + be[c];
                bad += fabs(y[k] - want) > 1e-6 + 1e-6 * fabs(want);
            }
    EXPECT(bad == 0, "evaluation: %ld of %ld outputs differ", bad, NX);
}

int main(void) {
    test_same_as_1d();
    test_vjp();
    test_halves();
    return check_finish("bn2d");
}
