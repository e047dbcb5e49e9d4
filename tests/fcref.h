/* fcref: one fully connected feedback layer's equilibrium function, its
 * Jacobian products and the simulation, written directly with the matrices W
 * and Wt = W^T (SPEC §1-3). The model runs these through linop.h; the tests
 * keep these plain forms as the references they check against finite
 * differences, exact solves and hand-worked spike traces.
 *
 * Shapes: a, x1, drop, f [B x n]; W [n x n] row-major. */
#ifndef FSNN_TEST_FCREF_H
#define FSNN_TEST_FCREF_H

#include "equil.h"
#include "neuron.h"

/* Evaluates f at a. Writes f, mv = m / V_th and jac = drop ⊙ m / V_th (both
 * [B x n], the diagonal factors of the Jacobian), and res[b] = ||f(a_b) - a_b||.
 * drop may be NULL (no dropout). */
void equil_eval(const float *a, const float *x1, const float *W, const float *drop, int B, int n,
                float vth, float *f, float *mv, float *jac, float *res);

/* out[r] = J^T v[r] = W^T (jac[rows[r]] ⊙ v[r]) for r < nrows; v and out are
 * compact [nrows x n]; tmp [nrows x n] is borrowed. */
void equil_jt(const float *W, const float *jac, const int *rows, int nrows, int n, const float *v,
              float *out, float *tmp);

/* The J^T of one sample as a dense [n x n] matrix in double (exact solve). */
void equil_jt_dense(const float *W, const float *jac_row, int n, double *Jt);

/* VJP of f with respect to its parameters, given the adjoint beta [B x n]:
 * dx1 = beta ⊙ mv (written) and dW += (beta ⊙ jac)^T a (accumulated).
 * tmp [B x n] is borrowed. */
void equil_vjp_params(const float *beta, const float *a, const float *mv, const float *jac, int B,
                      int n, float *dx1, float *dW, float *tmp);

/* x1 [B x n] input current, W [n x n] and Wt = W^T (row-major), drop [B x n]
 * feedback dropout mask or NULL. Writes a [B x n]. Work buffers u, s, cur
 * [B x n] and idx [B x n] (ints) are borrowed. Adds to *st. */
void neuron_simulate(const neuron_dims *d, const float *x1, const float *W, const float *Wt,
                     const float *drop, float *a, float *u, float *s, float *cur, int *idx,
                     neuron_stats *st);

/* neuron_simulate that calls step(ctx, t, acc) after every step. */
void neuron_simulate_steps(const neuron_dims *d, const float *x1, const float *W, const float *Wt,
                           const float *drop, float *a, float *u, float *s, float *cur, int *idx,
                           neuron_stats *st, neuron_step_fn step, void *ctx);

#endif
