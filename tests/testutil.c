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

int testutil_grad_vs_fd(const fsnn_model *m, const float *ge, const double *fd,
                        const unsigned char *pick, const char *tag, double min_grad,
                        double cos_grad) {
    int fails = 0;
    for (int t = 0; t < m->n_tensors; t++) {
        const model_tensor_info *ti = &m->info[t];
        const float *an = ge + ti->offset;
        const double *num = fd + ti->offset;
        const unsigned char *pk = pick + ti->offset;
        double amax = 0.0, dot = 0.0, na = 0.0, nf = 0.0;
        for (size_t k = 0; k < ti->count; k++)
            amax = fmax(amax, fabs(an[k]));
        int bad = 0, used = 0;
        for (size_t k = 0; k < ti->count; k++) {
            if (!pk[k]) continue;
            used++;
            double tolk = 3e-2 * fabs(an[k]) + 2e-4 * amax + 1e-4;
            if (fabs(an[k] - num[k]) > tolk) {
                if (bad < 3)
                    fprintf(stderr, "  %s %s[%zu]: analytic %.6g, FD %.6g\n", tag, ti->name, k,
                            an[k], num[k]);
                bad++;
            }
            dot += an[k] * num[k];
            na += (double)an[k] * an[k];
            nf += num[k] * num[k];
        }
        printf("%-26s %-18s max|grad| %.3g  |grad| %.4g  |FD| %.4g  misses %d/%d\n", tag, ti->name,
               amax, sqrt(na), sqrt(nf), bad, used);
        if (t == 1) { /* BatchNorm on batch statistics subtracts the input bias */
            if (amax > 1e-6 || sqrt(nf) > 1e-3) {
                fprintf(stderr, "FAILED: %s: input.bias gradient should be 0: max %g, |FD| %g\n",
                        tag, amax, sqrt(nf));
                fails++;
            }
            continue;
        }
        if (amax <= min_grad) {
            fprintf(stderr, "FAILED: %s %s: gradient is (nearly) zero: max %g\n", tag, ti->name,
                    amax);
            fails++;
        }
        if (bad) {
            fprintf(stderr, "FAILED: %s %s: %d of %d entries differ from FD\n", tag, ti->name, bad,
                    used);
            fails++;
        }
        if (used < 8 || amax < cos_grad) continue;
        double cosv = dot / sqrt(na * nf + 1e-300), ratio = sqrt(na / nf);
        if (!(cosv > 0.999) || !(fabs(ratio - 1.0) < 0.03)) {
            fprintf(stderr, "FAILED: %s %s: cosine(analytic, FD) %.6f, |analytic| / |FD| %.4f\n",
                    tag, ti->name, cosv, ratio);
            fails++;
        }
    }
    return fails;
}

void testutil_cfg_variant(fsnn_cfg *c, int reference) {
    c->model_fidelity = reference ? FIDELITY_REFERENCE : FIDELITY_FSNN;
    c->model_spectral_norm = reference ? SPECTRAL_KERNEL : SPECTRAL_OPERATOR;
    c->model_loop_bn = reference ? LOOP_BN_REFERENCE : LOOP_BN_CONSISTENT;
    c->data_event_average = reference ? EVENT_AVG_INPLACE : EVENT_AVG_CLEAN;
    c->model_input_padding = -1;
}

long testutil_outside_sum_bound(const float *got, const float *want, const float *bound, long n,
                                long K, double *worst) {
    long bad = 0;
    *worst = 0.0;
    for (long i = 0; i < n; i++) {
        double tol = 2.0 * (K + 1) * ldexp(1.0, -23) * bound[i] + 1e-30;
        double r = fabs((double)got[i] - want[i]) / tol;
        if (r > *worst) *worst = r;
        if (r > 1.0) bad++;
    }
    return bad;
}
