/* rng: counter-based random numbers (Philox4x32-10, Salmon et al. 2011).
 *
 * A draw is a pure function of (seed, stream, epoch, sample, index): a
 * sample's dropout mask or an epoch's order never depends on how many ranks
 * run or in which order batches are formed (docs/architecture.md). */
#ifndef FSNN_RNG_H
#define FSNN_RNG_H

#include <stdint.h>

/* Streams keep independent uses of one seed apart. */
typedef enum {
    RNG_INIT = 1,        /* weight initialisation; `sample` = tensor id, `index` = element */
    RNG_SHUFFLE = 2,     /* epoch order; `index` = position */
    RNG_DROP_X = 3,      /* dropout mask of the input branch */
    RNG_DROP_S = 4,      /* dropout mask of the feedback branch */
    RNG_SPECNORM = 5,    /* start vectors of the power iteration */
    RNG_SWEEP = 6,       /* random-search points of a sweep; `sample` = point, `index` = key */
    RNG_AUGMENT = 7,     /* crop offset and flip of a training image; `sample` = its index */
    RNG_DROP_LAYER = 64, /* + l: dropout mask of layer l >= 2 of a multi-layer net */
    RNG_TEST = 99        /* tests */
} rng_stream;

/* Four independent uniform 32-bit words for the counter (epoch, sample,
 * index_block) under key (seed, stream). */
void rng_philox(uint64_t seed, uint32_t stream, uint32_t epoch, uint32_t sample, uint32_t block,
                uint32_t out[4]);

/* Fills out[0..n) with uniforms in [0, 1) drawn at indices 0..n-1 of
 * (seed, stream, epoch, sample). */
void rng_uniform_fill(uint64_t seed, uint32_t stream, uint32_t epoch, uint32_t sample, float *out,
                      long n);

/* The same draws at indices first..first+n-1 into out[0..n): a slice of
 * rng_uniform_fill's sequence (a rank's rows of a distributed tensor). */
void rng_uniform_fill_at(uint64_t seed, uint32_t stream, uint32_t epoch, uint32_t sample,
                         long first, float *out, long n);

/* One uniform in [0, 1) at `index`. */
double rng_uniform(uint64_t seed, uint32_t stream, uint32_t epoch, uint32_t sample, uint64_t index);

/* A permutation of 0..n-1 for (seed, epoch), Fisher-Yates over counter draws. */
void rng_permutation(uint64_t seed, uint32_t epoch, long *perm, long n);

#endif
