/* pool: 2x2 average pooling, stride 2.
 *
 * - Forward against the definition in double on even and odd sizes (an odd
 *   last row or column is dropped, as torch's AvgPool2d(2)): within 2^-22
 *   relative to the sum of the four |x| (four float additions and a scaling
 *   by 1/4, which is exact).
 * - VJP against central finite differences of L = sum(r ⊙ y), r random,
 *   computed by the double forward (linear, eps = 1e-3: double rounding
 *   only): every entry of dx to 1e-6 relative + 1e-7 absolute, and exactly 0
 *   in a dropped row or column. */
#include <math.h>
#include <stdlib.h>

#include "check.h"
#include "pool.h"
#include "rng.h"

static void ref_pool(const double *x, double *y, long N, int H, int W) {
    const int Ho = H / 2, Wo = W / 2;
    for (long n = 0; n < N; n++)
        for (int yo = 0; yo < Ho; yo++)
            for (int xo = 0; xo < Wo; xo++) {
                const double *p = x + (n * H + 2 * yo) * W + 2 * xo;
                y[(n * Ho + yo) * Wo + xo] = (p[0] + p[1] + p[W] + p[W + 1]) / 4.0;
            }
}

static void test_pool(long N, int H, int W, uint32_t id) {
    const int Ho = H / 2, Wo = W / 2;
    const long nx = N * H * W, ny = N * Ho * Wo;
    float *x = malloc(sizeof(float) * nx), *y = malloc(sizeof(float) * ny);
    float *r = malloc(sizeof(float) * ny), *dx = malloc(sizeof(float) * nx);
    double *xd = malloc(sizeof(double) * nx), *yd = malloc(sizeof(double) * ny);
    if (!x || !y || !r || !dx || !xd || !yd) exit(1);
    rng_uniform_fill(41, RNG_TEST, 0, id, x, nx);
    rng_uniform_fill(41, RNG_TEST, 1, id, r, ny);
    for (long i = 0; i < nx; i++) {
        x[i] = 4.0f * x[i] - 2.0f;
        xd[i] = x[i];
    }
    for (long i = 0; i < ny; i++)
        r[i] = 2.0f * r[i] - 1.0f;
    pool_avg2_forward(x, y, N, H, W);
    ref_pool(xd, yd, N, H, W);
    long bad = 0;
    for (long n = 0; n < N; n++)
        for (int yo = 0; yo < Ho; yo++)
            for (int xo = 0; xo < Wo; xo++) {
                const double *p = xd + (n * H + 2 * yo) * W + 2 * xo;
                double a = fabs(p[0]) + fabs(p[1]) + fabs(p[W]) + fabs(p[W + 1]);
                long q = (n * Ho + yo) * Wo + xo;
                bad += fabs(y[q] - yd[q]) > 0x1p-22 * a;
            }
    EXPECT(bad == 0, "pool %ldx%dx%d forward: %ld outputs off", N, H, W, bad);

    pool_avg2_vjp(r, dx, N, H, W);
    long badg = 0, dropped = 0;
    for (long i = 0; i < nx; i++) {
        const double eps = 1e-3, keep = xd[i];
        double lp = 0.0, lm = 0.0;
        xd[i] = keep + eps;
        ref_pool(xd, yd, N, H, W);
        for (long q = 0; q < ny; q++)
            lp += r[q] * yd[q];
        xd[i] = keep - eps;
        ref_pool(xd, yd, N, H, W);
        for (long q = 0; q < ny; q++)
            lm += r[q] * yd[q];
        xd[i] = keep;
        double fd = (lp - lm) / (2 * eps);
        badg += fabs(dx[i] - fd) > 1e-7 + 1e-6 * fabs(fd);
        int yi = (int)((i / W) % H), xi = (int)(i % W);
        if (yi >= 2 * Ho || xi >= 2 * Wo) dropped += dx[i] != 0.0f;
    }
    EXPECT(badg == 0, "pool %ldx%dx%d VJP: %ld of %ld entries differ from finite differences", N, H,
           W, badg, nx);
    EXPECT(dropped == 0, "pool %ldx%dx%d VJP: %ld dropped entries not 0", N, H, W, dropped);
    free(x);
    free(y);
    free(r);
    free(dx);
    free(xd);
    free(yd);
}

int main(void) {
    test_pool(6, 4, 4, 0);
    test_pool(3, 7, 5, 1);
    test_pool(2, 14, 9, 2);
    test_pool(4, 2, 3, 3);
    test_pool(1, 28, 28, 4);
    return check_finish("pool");
}
