/* augment: crop and flip worked by hand on a 2 x 3 x 4 image; every offset
 * and flip against a plain reference that pads, crops and mirrors as
 * torchvision does (exact, on buffers of exactly the image's size so that
 * ASan sees any access out of bounds); the draw is a function of its key
 * alone; the flip rate and the offsets are uniform within stated bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "augment.h"
#include "check.h"

/* torchvision: pad with zeros, crop at (dx, dy), then mirror. */
static void reference(const uint8_t *src, int C, int H, int W, int pad, const augment_draw *d,
                      uint8_t *dst) {
    const int PH = H + 2 * pad, PW = W + 2 * pad;
    uint8_t *padded = calloc((size_t)C * PH * PW, 1);
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                padded[((size_t)c * PH + y + pad) * PW + x + pad] =
                    src[((size_t)c * H + y) * W + x];
    for (int c = 0; c < C; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++) {
                int cx = d->flip ? W - 1 - x : x;
                dst[((size_t)c * H + y) * W + x] =
                    padded[((size_t)c * PH + y + d->dy) * PW + cx + d->dx];
            }
    free(padded);
}

static void test_by_hand(void) {
    /* src[c][y][x] = 1 + 100 c + 10 y + x: nothing is 0, so 0 marks padding. */
    uint8_t src[2 * 3 * 4], dst[2 * 3 * 4];
    for (int c = 0; c < 2; c++)
        for (int y = 0; y < 3; y++)
            for (int x = 0; x < 4; x++)
                src[(c * 3 + y) * 4 + x] = (uint8_t)(1 + 100 * c + 10 * y + x);
    /* pad 1, offset (dx 0, dy 2): the window starts one left and one below. */
    augment_draw d = {0, 2, 0};
    augment_apply(src, 2, 3, 4, 1, &d, dst);
    static const uint8_t want1[24] = {0, 11,  12,  13,  0, 21,  22,  23,  0, 0, 0, 0,
                                      0, 111, 112, 113, 0, 121, 122, 123, 0, 0, 0, 0};
    EXPECT(memcmp(dst, want1, 24) == 0, "crop dx 0 dy 2: got %u %u %u %u / %u %u %u %u", dst[0],
           dst[1], dst[2], dst[3], dst[8], dst[9], dst[10], dst[11]);
    /* Offset (dx 2, dy 1) and a flip: the window starts one right, then mirrors. */
    d = (augment_draw){2, 1, 1};
    augment_apply(src, 2, 3, 4, 1, &d, dst);
    static const uint8_t want2[24] = {0, 4,   3,   2,   0, 14,  13,  12,  0, 24,  23,  22,
                                      0, 104, 103, 102, 0, 114, 113, 112, 0, 124, 123, 122};
    EXPECT(memcmp(dst, want2, 24) == 0, "crop dx 2 dy 1 flipped: got %u %u %u %u", dst[0], dst[1],
           dst[2], dst[3]);
    /* The centre without a flip is the image; with one, its mirror. */
    d = (augment_draw){1, 1, 0};
    augment_apply(src, 2, 3, 4, 1, &d, dst);
    EXPECT(memcmp(dst, src, 24) == 0, "centre crop is the identity");
    d.flip = 1;
    augment_apply(src, 2, 3, 4, 1, &d, dst);
    int mirrored = 1;
    for (int r = 0; r < 6; r++)
        for (int x = 0; x < 4; x++)
            mirrored &= dst[r * 4 + x] == src[r * 4 + 3 - x];
    EXPECT(mirrored, "centre crop flipped is the mirror image");
}

/* Every offset and flip of a 3 x 5 x 7 image with padding 4 (wider than
 * the image is high: whole rows and columns of padding) against the
 * reference, on heap buffers of exactly the image's size. */
static void test_against_reference(void) {
    const int C = 3, H = 5, W = 7, pad = 4;
    const size_t n = (size_t)C * H * W;
    uint8_t *src = malloc(n), *got = malloc(n), *want = malloc(n);
    for (size_t i = 0; i < n; i++)
        src[i] = (uint8_t)(i * 13 + 1);
    int bad = 0, cases = 0;
    for (int dy = 0; dy <= 2 * pad; dy++)
        for (int dx = 0; dx <= 2 * pad; dx++)
            for (int flip = 0; flip < 2; flip++) {
                augment_draw d = {dx, dy, flip};
                memset(got, 0xAB, n);
                augment_apply(src, C, H, W, pad, &d, got);
                reference(src, C, H, W, pad, &d, want);
                bad += memcmp(got, want, n) != 0;
                cases++;
            }
    EXPECT(bad == 0 && cases == 162, "%d of %d crops differ from the reference", bad, cases);
    free(src);
    free(got);
    free(want);
}

static void test_draws(void) {
    /* A function of the key: the same (seed, epoch, sample) gives the same draw. */
    augment_draw a, b;
    augment_sample(7, 3, 12345, AUGMENT_PAD, &a);
    augment_sample(7, 3, 12345, AUGMENT_PAD, &b);
    EXPECT(a.dx == b.dx && a.dy == b.dy && a.flip == b.flip, "same key, same draw");
    /* Other epochs and seeds draw afresh (9 x 9 x 2 outcomes: most differ). */
    int diff_epoch = 0, diff_seed = 0;
    for (uint32_t s = 0; s < 200; s++) {
        augment_sample(7, 0, s, AUGMENT_PAD, &a);
        augment_sample(7, 1, s, AUGMENT_PAD, &b);
        diff_epoch += a.dx != b.dx || a.dy != b.dy || a.flip != b.flip;
        augment_sample(8, 0, s, AUGMENT_PAD, &b);
        diff_seed += a.dx != b.dx || a.dy != b.dy || a.flip != b.flip;
    }
    /* Expected 200 * (1 - 1/162) = 198.8 of 200. */
    EXPECT(diff_epoch >= 190 && diff_seed >= 190, "draws differing: %d by epoch, %d by seed",
           diff_epoch, diff_seed);

    /* Rates over 20,000 samples: flips binomial (sd 0.0035), tolerance 0.02;
     * each of the 9 offsets expected 2,222 times (sd 44), tolerance 250. */
    enum { N = 20000 };
    long flips = 0, cx[9] = {0}, cy[9] = {0}, out_of_range = 0;
    for (uint32_t s = 0; s < N; s++) {
        augment_sample(1, 5, s, AUGMENT_PAD, &a);
        if (a.dx < 0 || a.dx > 8 || a.dy < 0 || a.dy > 8 || (a.flip != 0 && a.flip != 1)) {
            out_of_range++;
            continue;
        }
        flips += a.flip;
        cx[a.dx]++;
        cy[a.dy]++;
    }
    EXPECT(out_of_range == 0, "%ld draws out of range", out_of_range);
    EXPECT_NEAR((double)flips / N, 0.5, 0.02, 0, "flip rate");
    for (int k = 0; k < 9; k++) {
        EXPECT(labs(cx[k] - N / 9) < 250, "offset dx %d drawn %ld times of %d", k, cx[k], N);
        EXPECT(labs(cy[k] - N / 9) < 250, "offset dy %d drawn %ld times of %d", k, cy[k], N);
    }
}

int main(void) {
    test_by_hand();
    test_against_reference();
    test_draws();
    return check_finish("augment");
}
