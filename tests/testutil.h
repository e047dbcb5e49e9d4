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

#endif
