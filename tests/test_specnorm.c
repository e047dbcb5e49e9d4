/* specnorm: the spectral restriction W = g V / sigma(V) (SPEC §4) against
 * LAPACK singular values.
 *
 * - sigma after enough power iterations (300) equals the largest singular
 *   value of V from LAPACKE_dgesvd (on the float V, in double) to 1e-3
 *   relative, for a square and two rectangular V; the vectors satisfy
 *   V v = sigma u to 1e-3 (the power iteration's own fixed point).
 * - specnorm_power with 0 iterations only evaluates sigma = u^T V v.
 * - W = g V / sigma: ||W||_2 (LAPACK) = |g| to 1e-3 relative, so with g = 1
 *   ||W||_2 <= 1 + 1e-3.
 * - specnorm_clamp_g clamps to [-1, 1] and leaves values inside alone.
 * - model_init: W = g V / sigma with 10 power iterations and g = clamp(sigma)
 *   = 1 (unit-norm rows make sigma >= 1): ||W||_2 from LAPACK must be <= 1 +
 *   2e-2 — ten iterations from a random start leave sigma slightly below
 *   sigma_1 when the two largest singular values are close, so the bound is
 *   approximate, but still far inside the condition ||W||_2 < V_th = 2. After
 *   further training-style forwards (one power iteration each) the estimate
 *   converges and the bound tightens to 1 + 1e-3. model_spectral_norm agrees
 *   with LAPACK to 1e-3 relative after 300 iterations. */
#include <lapacke.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model.h"
#include "rng.h"
#include "specnorm.h"
#include "status.h"
#include "testutil.h"

static void test_power(int rows, int cols, uint32_t sample) {
    float *V = malloc(sizeof(float) * (size_t)rows * cols);
    float *W = malloc(sizeof(float) * (size_t)rows * cols);
    float *u = malloc(sizeof(float) * (size_t)rows), *v = malloc(sizeof(float) * (size_t)cols);
    float *work = malloc(sizeof(float) * (size_t)rows);
    rng_uniform_fill(51, RNG_TEST, 0, sample, V, (long)rows * cols);
    for (long i = 0; i < (long)rows * cols; i++)
        V[i] = 2.0f * V[i] - 1.0f;
    specnorm_init_vectors(u, rows, v, cols, 99);
    double nu = 0.0, nv = 0.0;
    for (int i = 0; i < rows; i++)
        nu += (double)u[i] * u[i];
    for (int j = 0; j < cols; j++)
        nv += (double)v[j] * v[j];
    EXPECT_NEAR(sqrt(nu), 1.0, 1e-5, 0.0, "init u is a unit vector");
    EXPECT_NEAR(sqrt(nv), 1.0, 1e-5, 0.0, "init v is a unit vector");

    /* 0 iterations: sigma = u^T V v for the vectors as they are. */
    double uvv = 0.0;
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++)
            uvv += (double)u[i] * V[(long)i * cols + j] * v[j];
    float s0 = specnorm_power(V, rows, cols, u, v, 0, work);
    EXPECT_NEAR(s0, uvv, 1e-5, 1e-5, "specnorm_power(0) = u^T V v");

    const double ref = testutil_spectral_norm(V, rows, cols);
    float sigma = specnorm_power(V, rows, cols, u, v, 300, work);
    char what[96];
    snprintf(what, sizeof what, "sigma of %dx%d vs LAPACK", rows, cols);
    EXPECT_NEAR(sigma, ref, 0.0, 1e-3, what);
    /* V v = sigma u at the power iteration's fixed point. */
    double r2 = 0.0;
    for (int i = 0; i < rows; i++) {
        double s = 0.0;
        for (int j = 0; j < cols; j++)
            s += (double)V[(long)i * cols + j] * v[j];
        r2 += (s - sigma * (double)u[i]) * (s - sigma * (double)u[i]);
    }
    EXPECT(sqrt(r2) <= 1e-3 * sigma, "%dx%d: ||V v - sigma u|| = %g", rows, cols, sqrt(r2));

    /* W = g V / sigma: ||W||_2 = |g|. */
    const float gs[3] = {1.0f, 0.5f, -0.8f};
    for (int q = 0; q < 3; q++) {
        specnorm_weight(V, gs[q], sigma, W, (long)rows * cols);
        for (long i = 0; i < (long)rows * cols; i += 37)
            EXPECT_NEAR(W[i], gs[q] * V[i] / sigma, 1e-7, 1e-6, "W = g V / sigma entry");
        double wn = testutil_spectral_norm(W, rows, cols);
        snprintf(what, sizeof what, "||W||_2 of %dx%d with g = %g", rows, cols, gs[q]);
        EXPECT_NEAR(wn, fabs(gs[q]), 0.0, 1e-3, what);
        if (gs[q] == 1.0f)
            EXPECT(wn <= 1.0 + 1e-3, "%dx%d: ||W||_2 = %.6f > 1 + 1e-3", rows, cols, wn);
    }
    free(V);
    free(W);
    free(u);
    free(v);
    free(work);
}

static void test_clamp(void) {
    const float in[8] = {1.5f, -3.0f, 0.3f, 1.0f, -1.0f, 1.0001f, -1.0001f, 0.0f};
    const float want[8] = {1.0f, -1.0f, 0.3f, 1.0f, -1.0f, 1.0f, -1.0f, 0.0f};
    for (int i = 0; i < 8; i++)
        EXPECT(specnorm_clamp_g(in[i]) == want[i], "clamp_g(%g) = %g, want %g", in[i],
               specnorm_clamp_g(in[i]), want[i]);
}

/* The reference's readout (SPEC §4): weight and bias uniform in
 * +-1/sqrt(fan_in): every value inside, and the weights' mean and variance
 * those of the uniform law (0 and bound^2 / 3) within 4.5 standard errors. */
static void test_readout_init(const fsnn_model *m) {
    const double bound = 1.0 / sqrt((double)m->n);
    const long nw = (long)m->n_out * m->n;
    double sum = 0.0, sq = 0.0;
    int outside = 0, zero_bias = 0;
    for (long i = 0; i < nw; i++) {
        outside += fabs(m->p.Wo[i]) > bound;
        sum += m->p.Wo[i];
        sq += (double)m->p.Wo[i] * m->p.Wo[i];
    }
    for (int i = 0; i < m->n_out; i++) {
        outside += fabs(m->p.bo[i]) > bound;
        zero_bias += m->p.bo[i] == 0.0f;
    }
    EXPECT(outside == 0, "readout: %d values outside +-%g", outside, bound);
    EXPECT(zero_bias == 0, "readout: %d biases are zero", zero_bias);
    const double var = bound * bound / 3.0, mean = sum / nw, v = sq / nw - mean * mean;
    EXPECT(fabs(mean) < 4.5 * sqrt(var / nw), "readout mean %g for %ld draws of variance %g", mean,
           nw, var);
    /* The sample variance of a uniform law has standard error var sqrt(0.8 / n). */
    EXPECT(fabs(v - var) < 4.5 * var * sqrt(0.8 / nw), "readout variance %g, expected %g", v, var);
}

static void test_model_init(int n, int ref) {
    fsnn_cfg c;
    memset(&c, 0, sizeof c);
    testutil_cfg_variant(&c, ref);
    c.model_hidden = n;
    c.model_time_steps = 5;
    c.neuron_vth = 2.0f;
    c.neuron_leak = 1.0f;
    fsnn_model *m = NULL;
    EXPECT_OK(model_create(&m, &c, 1, 1, 8, 3));
    if (!m) return;
    model_init(m, 1234);
    double sv = testutil_spectral_norm(m->p.V, n, n);
    EXPECT(m->sigma <= sv * (1.0 + 1e-5), "n=%d: power estimate %g exceeds sigma_1 %g", n, m->sigma,
           sv);
    if (ref) {
        /* The reference's g is sigma(V_init) itself (SPEC §4), clamped only
         * where W is formed, and its readout the linear layer's default. */
        EXPECT(m->p.g[0] == m->sigma && m->sigma > 1.0f,
               "n=%d: reference g = sigma(V_init) = %g (> 1 for unit rows), got %g", n, m->sigma,
               m->p.g[0]);
        test_readout_init(m);
    } else {
        EXPECT(m->p.g[0] == 1.0f, "n=%d: g = clamp(sigma(V_init)) should be 1, got %g", n,
               m->p.g[0]);
    }
    double wn = testutil_spectral_norm(m->W, n, n);
    printf("n=%d: sigma_1(V) %.5f, estimate %.5f, ||W||_2 %.5f\n", n, sv, m->sigma, wn);
    EXPECT(wn <= 1.0 + 2e-2, "n=%d: after model_init ||W||_2 = %.5f > 1 + 2e-2", n, wn);
    EXPECT(wn < m->vth, "n=%d: ||W||_2 = %g >= V_th", n, wn);
    /* W^T is W transposed. */
    int bad = 0;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            bad += m->Wt[j * n + i] != m->W[i * n + j];
    EXPECT(bad == 0, "n=%d: %d entries of Wt differ from W^T", n, bad);
    /* Training forwards run one power iteration each: the estimate converges. */
    for (int it = 0; it < 300; it++)
        model_prepare_weights(m, 1);
    wn = testutil_spectral_norm(m->W, n, n);
    EXPECT(wn <= 1.0 + 1e-3, "n=%d: after 300 power iterations ||W||_2 = %.6f", n, wn);
    EXPECT_NEAR(m->sigma, sv, 0.0, 1e-3, "model sigma vs LAPACK after 300 iterations");
    EXPECT_NEAR(model_spectral_norm(m, 300), wn, 0.0, 1e-3, "model_spectral_norm vs LAPACK");
    model_destroy(&m);
    EXPECT(m == NULL, "model_destroy clears the pointer");
}

int main(void) {
    test_power(30, 30, 0);
    test_power(30, 20, 1);
    test_power(20, 30, 2);
    test_clamp();
    for (int ref = 0; ref < 2; ref++) {
        test_model_init(16, ref);
        test_model_init(40, ref);
    }
    return check_finish("specnorm");
}
