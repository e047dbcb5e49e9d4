/* rng: Philox4x32-10 and what is built on it. */
#include "rng.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

static void rng_round(uint32_t c[4], const uint32_t k[2]) {
    uint64_t p0 = (uint64_t)PHILOX_M0 * c[0];
    uint64_t p1 = (uint64_t)PHILOX_M1 * c[2];
    uint32_t hi0 = (uint32_t)(p0 >> 32), lo0 = (uint32_t)p0;
    uint32_t hi1 = (uint32_t)(p1 >> 32), lo1 = (uint32_t)p1;
    c[0] = hi1 ^ c[1] ^ k[0];
    c[1] = lo1;
    c[2] = hi0 ^ c[3] ^ k[1];
    c[3] = lo0;
}

void rng_philox(uint64_t seed, uint32_t stream, uint32_t epoch, uint32_t sample, uint32_t block,
                uint32_t out[4]) {
    /* The stream is folded into the key so that streams never share counters. */
    uint64_t key64 = seed ^ ((uint64_t)stream * 0x9E3779B97F4A7C15ull);
    uint32_t k[2] = {(uint32_t)key64, (uint32_t)(key64 >> 32)};
    uint32_t c[4] = {block, sample, epoch, stream};
    for (int r = 0; r < 10; r++) {
        rng_round(c, k);
        k[0] += PHILOX_W0;
        k[1] += PHILOX_W1;
    }
    for (int i = 0; i < 4; i++)
        out[i] = c[i];
}

/* 24 random bits give every float in [0,1) on a uniform grid. */
static float rng_to_float(uint32_t w) {
    return (float)(w >> 8) * (1.0f / 16777216.0f);
}

void rng_uniform_fill(uint64_t seed, uint32_t stream, uint32_t epoch, uint32_t sample, float *out,
                      long n) {
    uint32_t w[4];
    for (long i = 0; i < n; i += 4) {
        rng_philox(seed, stream, epoch, sample, (uint32_t)(i / 4), w);
        for (long j = 0; j < 4 && i + j < n; j++)
            out[i + j] = rng_to_float(w[j]);
    }
}

void rng_uniform_fill_at(uint64_t seed, uint32_t stream, uint32_t epoch, uint32_t sample,
                         long first, float *out, long n) {
    uint32_t w[4];
    for (long k = 0; k < n;) {
        const long i = first + k;
        rng_philox(seed, stream, epoch, sample, (uint32_t)(i / 4), w);
        for (long j = i % 4; j < 4 && k < n; j++, k++)
            out[k] = rng_to_float(w[j]);
    }
}

double rng_uniform(uint64_t seed, uint32_t stream, uint32_t epoch, uint32_t sample,
                   uint64_t index) {
    uint32_t w[4];
    rng_philox(seed, stream, epoch, sample, (uint32_t)(index / 2), w);
    uint32_t hi = (index % 2) ? w[2] : w[0], lo = (index % 2) ? w[3] : w[1];
    uint64_t bits = ((uint64_t)hi << 21) ^ (lo >> 11);
    return (double)(bits & ((1ull << 53) - 1)) * (1.0 / 9007199254740992.0);
}

void rng_permutation(uint64_t seed, uint32_t epoch, long *perm, long n) {
    for (long i = 0; i < n; i++)
        perm[i] = i;
    for (long i = n - 1; i > 0; i--) {
        long j = (long)(rng_uniform(seed, RNG_SHUFFLE, epoch, 0, (uint64_t)i) * (double)(i + 1));
        if (j > i) j = i;
        long t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}
