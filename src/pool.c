/* pool: average pooling and its VJP. */
#include "pool.h"

#include <string.h>

void pool_avg2_forward(const float *x, float *y, long N, int H, int W) {
    const int Ho = H / 2, Wo = W / 2;
    for (long n = 0; n < N; n++) {
        const float *xm = x + n * H * W;
        float *ym = y + n * Ho * Wo;
        for (int yo = 0; yo < Ho; yo++) {
            const float *r0 = xm + (long)(2 * yo) * W, *r1 = r0 + W;
            for (int xo = 0; xo < Wo; xo++)
                ym[yo * Wo + xo] =
                    0.25f * ((r0[2 * xo] + r0[2 * xo + 1]) + (r1[2 * xo] + r1[2 * xo + 1]));
        }
    }
}

void pool_avg2_vjp(const float *dy, float *dx, long N, int H, int W) {
    const int Ho = H / 2, Wo = W / 2;
    memset(dx, 0, sizeof(float) * (size_t)N * H * W);
    for (long n = 0; n < N; n++) {
        const float *dm = dy + n * Ho * Wo;
        float *xm = dx + n * H * W;
        for (int yo = 0; yo < Ho; yo++) {
            float *r0 = xm + (long)(2 * yo) * W, *r1 = r0 + W;
            for (int xo = 0; xo < Wo; xo++) {
                float g = 0.25f * dm[yo * Wo + xo];
                r0[2 * xo] = g;
                r0[2 * xo + 1] = g;
                r1[2 * xo] = g;
                r1[2 * xo + 1] = g;
            }
        }
    }
}
