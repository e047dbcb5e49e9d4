/* fc: dense layer over sgemm. */
#include "fc.h"

#include <math.h>

#include "blas.h"
#include "rng.h"

void fc_forward(const float *x, const float *W, const float *b, float *y, int B, int in, int out) {
    for (int i = 0; i < B; i++)
        for (int o = 0; o < out; o++)
            y[(long)i * out + o] = b ? b[o] : 0.0f;
    blas_gemm(0, 1, B, out, in, 1.0f, x, in, W, in, 1.0f, y, out);
}

void fc_vjp(const float *x, const float *W, const float *dy, float *dW, float *db, float *dx, int B,
            int in, int out) {
    blas_gemm(1, 0, out, in, B, 1.0f, dy, out, x, in, 1.0f, dW, in);
    if (db)
        for (int i = 0; i < B; i++)
            for (int o = 0; o < out; o++)
                db[o] += dy[(long)i * out + o];
    if (dx) blas_gemm(0, 0, B, in, out, 1.0f, dy, out, W, in, 0.0f, dx, in);
}

/* Scales a row of uniforms in [0, 1) to [-1, 1] and unit L2 norm. */
static void fc_norm_row(float *row, int cols) {
    double ss = 0.0;
    for (int c = 0; c < cols; c++) {
        row[c] = 2.0f * row[c] - 1.0f;
        ss += (double)row[c] * row[c];
    }
    float scale = ss > 0.0 ? (float)(1.0 / sqrt(ss)) : 0.0f;
    for (int c = 0; c < cols; c++)
        row[c] *= scale;
}

void fc_init_rows(float *W, int rows, int cols, unsigned long long seed, unsigned tid) {
    rng_uniform_fill(seed, RNG_INIT, 0, tid, W, (long)rows * cols);
    for (int r = 0; r < rows; r++)
        fc_norm_row(W + (long)r * cols, cols);
}

void fc_init_row(float *row, int r, int cols, unsigned long long seed, unsigned tid) {
    rng_uniform_fill_at(seed, RNG_INIT, 0, tid, (long)r * cols, row, cols);
    fc_norm_row(row, cols);
}

void fc_init_uniform(float *x, long count, float bound, unsigned long long seed, unsigned tid) {
    rng_uniform_fill(seed, RNG_INIT, 0, tid, x, count);
    for (long i = 0; i < count; i++)
        x[i] = bound * (2.0f * x[i] - 1.0f);
}

void fc_row_sums(const float *u, int len, int cols, float *out) {
    for (int i = 0; i < cols; i++)
        out[i] = 0.0f;
    for (int b = 0; b < len; b++)
        for (int i = 0; i < cols; i++)
            out[i] += u[(long)b * cols + i];
}
