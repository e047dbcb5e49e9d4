/* testutil: file-tree removal and a LAPACK reference for ||A||_2. */
#include "testutil.h"

#include <dirent.h>
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rng.h"

void testutil_remove_tree(const char *dir) {
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[1024];
    while (d && (e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
            testutil_remove_tree(path);
        else
            unlink(path);
    }
    if (d) closedir(d);
    rmdir(dir);
}

double testutil_spectral_norm(const float *A, int rows, int cols) {
    int k = rows < cols ? rows : cols;
    double *a = malloc(sizeof(double) * (size_t)rows * cols);
    double *sv = malloc(sizeof(double) * (size_t)k), *sup = malloc(sizeof(double) * (size_t)k);
    double s = NAN;
    if (a && sv && sup) {
        for (long i = 0; i < (long)rows * cols; i++)
            a[i] = A[i];
        lapack_int info = LAPACKE_dgesvd(LAPACK_ROW_MAJOR, 'N', 'N', rows, cols, a, cols, sv, NULL,
                                         1, NULL, 1, sup);
        if (info == 0) s = sv[0];
    }
    free(a);
    free(sv);
    free(sup);
    return s;
}

void testutil_scaled_matrix(float *W, int n, double norm, unsigned long long seed) {
    rng_uniform_fill(seed, RNG_TEST, 0, 0, W, (long)n * n);
    for (long k = 0; k < (long)n * n; k++)
        W[k] = 2.0f * W[k] - 1.0f;
    double s0 = testutil_spectral_norm(W, n, n);
    for (long k = 0; k < (long)n * n; k++)
        W[k] = (float)(W[k] * norm / s0);
}
