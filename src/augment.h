/* augment: the training augmentation of CIFAR (SPEC §4), as torchvision's
 * RandomCrop(32, padding=4) followed by RandomHorizontalFlip().
 *
 * The image is padded with zero pixels (black, before normalisation, as
 * torchvision pads the raw image), a window of the original size is cut at a
 * random offset, and the result is mirrored left to right with probability
 * 1/2. The draw is a pure function of (seed, epoch, sample index in the
 * training set) through the counter RNG (stream RNG_AUGMENT), so an image is
 * transformed the same way whatever the number of ranks or the batch split.
 * No I/O, no allocation. */
#ifndef FSNN_AUGMENT_H
#define FSNN_AUGMENT_H

#include <stdint.h>

#define AUGMENT_PAD 4 /* SPEC §4: random crop 32 with padding 4 */

typedef struct {
    int dx, dy; /* crop offset in the padded image, each 0 .. 2 * pad */
    int flip;   /* 1: mirror left to right after cropping */
} augment_draw;

/* The crop offset (uniform over the (2 pad + 1)^2 positions) and flip
 * (probability 1/2) of training sample `sample` in `epoch`. */
void augment_sample(uint64_t seed, uint32_t epoch, uint32_t sample, int pad, augment_draw *d);

/* dst[c][y][x] = src[c][y + dy - pad][x' + dx - pad] with x' = W - 1 - x when
 * d->flip, else x; 0 where that falls outside src. src and dst are
 * [C x H x W] and must not overlap. */
void augment_apply(const uint8_t *src, int C, int H, int W, int pad, const augment_draw *d,
                   uint8_t *dst);

#endif
