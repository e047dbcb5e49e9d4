/* equil: the equilibrium function of one feedback layer and its derivatives
 * (SPEC §2-3):
 *
 *   z = (drop_s ⊙ (W a) + x1) / V_th ,   f(a) = clamp(z, 0, 1)
 *   m = 1[0 < z < 1]
 *   J_f(a)^T v = W^T (drop_s ⊙ m ⊙ v) / V_th
 *
 * Shapes: a, x1, drop, f [B x n]; W [n x n] row-major. */
#ifndef FSNN_EQUIL_H
#define FSNN_EQUIL_H

/* Evaluates f at a. Writes f, mv = m / V_th and jac = drop ⊙ m / V_th (both
 * [B x n], the diagonal factors of the Jacobian), and res[b] = ||f(a_b) - a_b||.
 * drop may be NULL (no dropout). */
void equil_eval(const float *a, const float *x1, const float *W, const float *drop, int B, int n,
                float vth, float *f, float *mv, float *jac, float *res);

/* The rest of equil_eval once f holds W a (any linear map, linop.h): f is
 * overwritten with f(a); mv, jac and res as equil_eval. */
void equil_clamp(const float *a, const float *x1, const float *drop, int B, int n, float vth,
                 float *f, float *mv, float *jac, float *res);

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

#endif
