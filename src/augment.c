/* augment: random crop with zero padding and horizontal flip. */
#include "augment.h"

#include <string.h>

#include "rng.h" // defines: rng_philox, RNG_AUGMENT

/* floor(w * n / 2^32): a draw in 0..n-1 from one 32-bit word. */
static int augment_below(uint32_t w, int n) {
    return (int)(((uint64_t)w * (uint64_t)n) >> 32);
}

void augment_sample(uint64_t seed, uint32_t epoch, uint32_t sample, int pad, augment_draw *d) {
    uint32_t w[4];
    rng_philox(seed, RNG_AUGMENT, epoch, sample, 0, w);
    d->dx = augment_below(w[0], 2 * pad + 1);
    d->dy = augment_below(w[1], 2 * pad + 1);
    d->flip = (int)(w[2] >> 31);
}

void augment_apply(const uint8_t *src, int C, int H, int W, int pad, const augment_draw *d,
                   uint8_t *dst) {
    const int ox = d->dx - pad, oy = d->dy - pad;
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++) {
            uint8_t *row = dst + ((long)c * H + y) * W;
            const int sy = y + oy;
            if (sy < 0 || sy >= H) {
                memset(row, 0, (size_t)W);
                continue;
            }
            const uint8_t *srow = src + ((long)c * H + sy) * W;
            for (int x = 0; x < W; x++) {
                const int sx = (d->flip ? W - 1 - x : x) + ox;
                row[x] = sx >= 0 && sx < W ? srow[sx] : 0;
            }
        }
}
