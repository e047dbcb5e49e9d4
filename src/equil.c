/* equil: f once the feedback product is done: the clamp, the Jacobian's diagonal
 * factors and the residual. */
#include "equil.h"

#include <math.h>

#include "blas.h"

void equil_clamp(const float *a, const float *x1, const float *drop, int B, int n, float vth,
                 float *f, float *mv, float *jac, float *res) {
    const float inv = 1.0f / vth;
#pragma omp parallel for schedule(static) if ((long)B * n > BLAS_PARALLEL_MIN)
    for (int b = 0; b < B; b++) {
        double r2 = 0.0;
        for (int j = 0; j < n; j++) {
            long k = (long)b * n + j;
            float dk = drop ? drop[k] : 1.0f;
            float z = (dk * f[k] + x1[k]) * inv;
            int inside = z > 0.0f && z < 1.0f;
            float fz = z <= 0.0f ? 0.0f : (z >= 1.0f ? 1.0f : z);
            mv[k] = inside ? inv : 0.0f;
            jac[k] = inside ? dk * inv : 0.0f;
            f[k] = fz;
            double diff = (double)fz - a[k];
            r2 += diff * diff;
        }
        res[b] = (float)sqrt(r2);
    }
}
