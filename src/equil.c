/* equil: f, its Jacobian-transpose products and parameter VJPs. */
#include "equil.h"

#include <math.h>

#include "blas.h"

void equil_eval(const float *a, const float *x1, const float *W, const float *drop, int B, int n,
                float vth, float *f, float *mv, float *jac, float *res) {
    blas_gemm(0, 1, B, n, n, 1.0f, a, n, W, n, 0.0f, f, n);
    equil_clamp(a, x1, drop, B, n, vth, f, mv, jac, res);
}

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

void equil_jt(const float *W, const float *jac, const int *rows, int nrows, int n, const float *v,
              float *out, float *tmp) {
    for (int r = 0; r < nrows; r++) {
        const float *jr = jac + (long)rows[r] * n;
        const float *vr = v + (long)r * n;
        float *tr = tmp + (long)r * n;
        for (int j = 0; j < n; j++)
            tr[j] = jr[j] * vr[j];
    }
    blas_gemm(0, 0, nrows, n, n, 1.0f, tmp, n, W, n, 0.0f, out, n);
}

void equil_jt_dense(const float *W, const float *jac_row, int n, double *Jt) {
    for (int r = 0; r < n; r++)
        for (int c = 0; c < n; c++)
            Jt[(long)r * n + c] = (double)W[(long)c * n + r] * jac_row[c];
}

void equil_vjp_params(const float *beta, const float *a, const float *mv, const float *jac, int B,
                      int n, float *dx1, float *dW, float *tmp) {
    long count = (long)B * n;
    for (long k = 0; k < count; k++) {
        dx1[k] = beta[k] * mv[k];
        tmp[k] = beta[k] * jac[k];
    }
    blas_gemm(1, 0, n, n, B, 1.0f, tmp, n, a, n, 1.0f, dW, n);
}
