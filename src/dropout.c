/* dropout: masks from counter-based uniforms. */
#include "dropout.h"

#include "blas.h"
#include "rng.h"

void dropout_mask(float *mask, int B, int n, float p, uint64_t seed, uint32_t stream,
                  uint32_t epoch, const long *sample_ids) {
    float keep = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if ((long)B * n > BLAS_PARALLEL_MIN)
    for (int i = 0; i < B; i++) {
        float *row = mask + (long)i * n;
        rng_uniform_fill(seed, stream, epoch, (uint32_t)sample_ids[i], row, n);
        for (int j = 0; j < n; j++)
            row[j] = row[j] >= p ? keep : 0.0f;
    }
}

void dropout_mask_channel(float *mask, int B, int C, int hw, float p, uint64_t seed,
                          uint32_t stream, uint32_t epoch, const long *sample_ids) {
    float keep = 1.0f / (1.0f - p);
#pragma omp parallel for schedule(static) if ((long)B * C * hw > BLAS_PARALLEL_MIN)
    for (int i = 0; i < B; i++) {
        float *row = mask + (long)i * C * hw;
        /* The C draws go to the row's first C entries, then spread from the
         * last channel down: channel c's block starts at c hw >= c, past
         * every draw still to be read. */
        rng_uniform_fill(seed, stream, epoch, (uint32_t)sample_ids[i], row, C);
        for (int c = C - 1; c >= 0; c--) {
            float v = row[c] >= p ? keep : 0.0f;
            for (int q = 0; q < hw; q++)
                row[(long)c * hw + q] = v;
        }
    }
}
