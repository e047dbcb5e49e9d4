/* testutil: helpers shared by the test programs (not assertions: those are
 * in check.h). */
#ifndef FSNN_TESTUTIL_H
#define FSNN_TESTUTIL_H

/* Removes `dir` with everything below it (files and folders). */
void testutil_remove_tree(const char *dir);

/* ||A||_2 of a row-major rows x cols float matrix: the largest singular value
 * by LAPACK's dgesvd in double, an independent reference for the power
 * iteration. NAN if dgesvd fails. */
double testutil_spectral_norm(const float *A, int rows, int cols);

/* Fills W [n x n] with uniform entries in [-1, 1] (counter RNG, stream
 * RNG_TEST, key `seed`) scaled so that ||W||_2 = norm (by dgesvd). */
void testutil_scaled_matrix(float *W, int n, double norm, unsigned long long seed);

#endif
