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

/* f(a) once f holds W a (any linear map, linop.h): f is overwritten with
 * f(a); writes mv = m / V_th and jac = drop ⊙ m / V_th (both [B x n], the
 * diagonal factors of the Jacobian) and res[b] = ||f(a_b) - a_b||. drop may
 * be NULL (no dropout). */
void equil_clamp(const float *a, const float *x1, const float *drop, int B, int n, float vth,
                 float *f, float *mv, float *jac, float *res);

#endif
