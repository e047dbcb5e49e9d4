/* fcref: the plain FC forms of f, J^T, the VJP and the simulation. */
#include "fcref.h"

#include <stddef.h>

#include "blas.h"

void equil_eval(const float *a, const float *x1, const float *W, const float *drop, int B, int n,
                float vth, float *f, float *mv, float *jac, float *res) {
    blas_gemm(0, 1, B, n, n, 1.0f, a, n, W, n, 0.0f, f, n);
    equil_clamp(a, x1, drop, B, n, vth, f, mv, jac, res);
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

void neuron_simulate(const neuron_dims *d, const float *x1, const float *W, const float *Wt,
                     const float *drop, float *a, float *u, float *s, float *cur, int *idx,
                     neuron_stats *st) {
    neuron_simulate_steps(d, x1, W, Wt, drop, a, u, s, cur, idx, st, NULL, NULL);
}

/* The product of neuron_simulate_steps: W and Wt of one batch. */
typedef struct {
    const float *W, *Wt;
    int *idx;
    int n;
} neuron_fc;

static void neuron_fc_product(void *ctx, const float *s, float *cur, int B, int event) {
    const neuron_fc *c = ctx;
    neuron_spike_product(s, c->W, c->Wt, cur, c->idx, B, c->n, event);
}

void neuron_simulate_steps(const neuron_dims *d, const float *x1, const float *W, const float *Wt,
                           const float *drop, float *a, float *u, float *s, float *cur, int *idx,
                           neuron_stats *st, neuron_step_fn step, void *ctx) {
    neuron_fc fc = {W, Wt, idx, d->n};
    neuron_product p = {neuron_fc_product, &fc, NEURON_EVENT_DENSITY, NULL, NULL, NULL};
    neuron_simulate_product(d, x1, &p, drop, a, u, s, cur, st, step, ctx);
}
