/* specnorm: power iteration and its vector-Jacobian product. */
#include "specnorm.h"

#include <cblas.h>
#include <math.h>

#include "blas.h"
#include "rng.h"

static void specnorm_normalise(float *x, int n) {
    float nrm = cblas_snrm2(n, x, 1);
    /* A zero vector stays zero rather than becoming NaN; sigma is then 0 and
     * the caller's weights are left for the next iteration to repair. */
    if (nrm > 1e-12f) cblas_sscal(n, 1.0f / nrm, x, 1);
}

void specnorm_init_vectors(float *u, int rows, float *v, int cols, uint64_t seed) {
    rng_uniform_fill(seed, RNG_SPECNORM, 0, 0, u, rows);
    rng_uniform_fill(seed, RNG_SPECNORM, 0, 1, v, cols);
    for (int i = 0; i < rows; i++)
        u[i] = 2.0f * u[i] - 1.0f;
    for (int i = 0; i < cols; i++)
        v[i] = 2.0f * v[i] - 1.0f;
    specnorm_normalise(u, rows);
    specnorm_normalise(v, cols);
}

float specnorm_power(const float *V, int rows, int cols, float *u, float *v, int iters,
                     float *work) {
    for (int it = 0; it < iters; it++) {
        blas_gemv(1, rows, cols, 1.0f, V, cols, u, 0.0f, v);
        specnorm_normalise(v, cols);
        blas_gemv(0, rows, cols, 1.0f, V, cols, v, 0.0f, u);
        specnorm_normalise(u, rows);
    }
    blas_gemv(0, rows, cols, 1.0f, V, cols, v, 0.0f, work);
    return cblas_sdot(rows, u, 1, work, 1);
}

void specnorm_weight(const float *V, float g, float sigma, float *W, long count) {
    float scale = sigma != 0.0f ? g / sigma : 0.0f;
    for (long i = 0; i < count; i++)
        W[i] = scale * V[i];
}

void specnorm_vjp(const float *V, const float *u, const float *v, float g, float sigma,
                  const float *dW, float *dV, float *dg, int rows, int cols) {
    if (sigma == 0.0f) return;
    long count = (long)rows * cols;
    double gv = 0.0;
    for (long i = 0; i < count; i++)
        gv += (double)dW[i] * V[i];
    float a = g / sigma;
    float c = (float)(-(double)g * gv / ((double)sigma * sigma));
    cblas_saxpy((int)count, a, dW, 1, dV, 1);
    cblas_sger(CblasRowMajor, rows, cols, c, u, 1, v, 1, dV, cols);
    *dg += (float)(gv / sigma);
}

float specnorm_clamp_g(float g) {
    return g > 1.0f ? 1.0f : (g < -1.0f ? -1.0f : g);
}
