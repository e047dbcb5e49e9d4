/* testutil: helpers shared by the test programs (not assertions: those are
 * in check.h). */
#ifndef FSNN_TESTUTIL_H
#define FSNN_TESTUTIL_H

#include "model.h"

/* Sets every key of one variant of the algorithm (docs/fidelity.md):
 * reference != 0 the authors' (model.fidelity = reference, kernel
 * restriction, reference loop BatchNorm, in-place event average), else
 * fsnn's (fsnn, operator, consistent, clean); padding k/2 either way. For
 * configurations built field by field, whose zeroes would otherwise select
 * the reference's variant with padding 0. */
void testutil_cfg_variant(fsnn_cfg *c, int reference);

/* Removes `dir` with everything below it (files and folders). */
void testutil_remove_tree(const char *dir);

/* ||A||_2 of a row-major rows x cols float matrix: the largest singular value
 * by LAPACK's dgesvd in double, an independent reference for the power
 * iteration. NAN if dgesvd fails. */
double testutil_spectral_norm(const float *A, int rows, int cols);

/* Fills W [n x n] with uniform entries in [-1, 1] (counter RNG, stream
 * RNG_TEST, key `seed`) scaled so that ||W||_2 = norm (by dgesvd). */
void testutil_scaled_matrix(float *W, int n, double norm, unsigned long long seed);

/* The analytic gradient ge of model m against central differences fd, over
 * the entries with pick[k] != 0, tensor by tensor (one line printed per
 * tensor, prefixed by tag). Each picked entry must lie within
 * 3e-2 |g| + 2e-4 max|g| + 1e-4 of its difference, the tensor's largest
 * entry above min_grad, and where 8 or more entries are picked and max|g|
 * is at least cos_grad, the cosine of the two vectors above 0.999 and their
 * norms within 3%. Tensor 1 (the input bias, which BatchNorm on batch
 * statistics follows) must instead be 0 both ways. Returns the number of
 * failed conditions, each described on stderr. */
int testutil_grad_vs_fd(const fsnn_model *m, const float *ge, const double *fd,
                        const unsigned char *pick, const char *tag, double min_grad,
                        double cos_grad);

/* Entries of got [n] farther from want than 2 (K + 1) 2^-23 bound[i] (two
 * float sums of the same K terms in any order, bound the sum of |terms|);
 * *worst the largest |got - want| as a fraction of that. */
long testutil_outside_sum_bound(const float *got, const float *want, const float *bound, long n,
                                long K, double *worst);

/* The check.h expectation of the above: no entry outside the bound. */
#define EXPECT_SUM_BOUND(got, want, bound, n, K, what)                                             \
    do {                                                                                           \
        double worst_;                                                                             \
        long bad_ = testutil_outside_sum_bound((got), (want), (bound), (n), (K), &worst_);         \
        EXPECT(bad_ == 0, "%s: %ld of %ld entries outside the bound (worst %.3g of it)", (what),   \
               bad_, (long)(n), worst_);                                                           \
    } while (0)

/* The check.h expectation that two float arrays hold the same bits. */
#define EXPECT_SAME_BITS(a, b, n, what)                                                            \
    EXPECT(!memcmp((a), (b), sizeof(float) * (size_t)(n)), "%s: not the same bits", (what))

#endif
