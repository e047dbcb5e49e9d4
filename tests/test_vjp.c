/* Vector-Jacobian products against central finite differences.
 *
 * - equil (SPEC §2-3): f(a) = clamp((drop ⊙ W a + x1) / V_th, 0, 1) is
 *   piecewise linear, so a central difference of the float equil_eval with
 *   eps = 1e-2 is exact up to float rounding (~1e-7 / 1e-2 = 1e-5) as long as
 *   no entry crosses a clamp kink; every perturbation whose mask m changes is
 *   skipped (and counted: most must be usable). Tolerance 1e-3 absolute +
 *   1e-3 relative.
 * - bn, fc, softmax cross-entropy: the code's forward is first compared with
 *   a double-precision forward written here (tolerance 1e-5 relative), then
 *   that double forward is differenced with eps = 1e-6 (truncation O(eps^2),
 *   rounding ~1e-10): the float VJPs must agree to 1e-4 relative + 1e-5
 *   absolute.
 * - specnorm: F(V, g) = <G, g V / (u^T V v)> with u, v held fixed, in double,
 *   eps = 1e-6, same tolerance. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bn.h"
#include "check.h"
#include "equil.h"
#include "fc.h"
#include "fcref.h"
#include "loss.h"
#include "rng.h"
#include "specnorm.h"

static void uniform(float *x, long n, uint32_t sample, float lo, float hi) {
    rng_uniform_fill(21, RNG_TEST, 0, sample, x, n);
    for (long i = 0; i < n; i++)
        x[i] = lo + (hi - lo) * x[i];
}

static double dot(const float *a, const float *b, long n) {
    double s = 0.0;
    for (long i = 0; i < n; i++)
        s += (double)a[i] * b[i];
    return s;
}

/* ---------- equil ---------- */

enum { EB = 3, EN = 12 };

typedef struct {
    float W[EN * EN], x1[EB * EN], drop[EB * EN], a[EB * EN];
    const float *dp; /* drop or NULL */
    float vth;
} eq_problem;

/* <v, f(a)> and the mask m of f at (a, x1, W). */
static double eq_value(const eq_problem *p, const float *a, const float *x1, const float *W,
                       const float *v, float *mv_out) {
    float f[EB * EN], mv[EB * EN], jac[EB * EN], res[EB];
    equil_eval(a, x1, W, p->dp, EB, EN, p->vth, f, mv, jac, res);
    if (mv_out) memcpy(mv_out, mv, sizeof mv);
    return dot(v, f, EB * EN);
}

static void test_equil(int with_drop) {
    const char *tag = with_drop ? "equil(drop)" : "equil";
    static eq_problem p;
    p.vth = 2.0f;
    uniform(p.W, EN * EN, 1, -0.35f, 0.35f);
    uniform(p.a, EB * EN, 2, 0.0f, 1.0f);
    uniform(p.x1, EB * EN, 3, -0.5f, 2.5f);
    uniform(p.drop, EB * EN, 4, 0.0f, 1.0f);
    for (int k = 0; k < EB * EN; k++)
        p.drop[k] = p.drop[k] < 0.2f ? 0.0f : 1.25f;
    p.dp = with_drop ? p.drop : NULL;

    float f[EB * EN], mv[EB * EN], jac[EB * EN], res[EB];
    equil_eval(p.a, p.x1, p.W, p.dp, EB, EN, p.vth, f, mv, jac, res);
    /* The forward itself, in double. */
    int inside = 0;
    for (int b = 0; b < EB; b++) {
        double r2 = 0.0;
        for (int i = 0; i < EN; i++) {
            double wa = 0.0;
            for (int j = 0; j < EN; j++)
                wa += (double)p.W[i * EN + j] * p.a[b * EN + j];
            double d = p.dp ? p.dp[b * EN + i] : 1.0;
            double z = (d * wa + p.x1[b * EN + i]) / p.vth;
            double fz = z < 0 ? 0 : (z > 1 ? 1 : z);
            int in = z > 0 && z < 1;
            inside += in;
            EXPECT_NEAR(f[b * EN + i], fz, 1e-6, 0.0, "equil_eval f");
            EXPECT(mv[b * EN + i] == (in ? 1.0f / p.vth : 0.0f), "%s mv[%d][%d] = %g (z = %g)", tag,
                   b, i, mv[b * EN + i], z);
            EXPECT_NEAR(jac[b * EN + i], in ? d / p.vth : 0.0, 1e-7, 0.0, "equil_eval jac");
            r2 += (fz - p.a[b * EN + i]) * (fz - p.a[b * EN + i]);
        }
        EXPECT_NEAR(res[b], sqrt(r2), 1e-6, 1e-5, "equil_eval residual");
    }
    EXPECT(inside > EB * EN / 3 && inside < EB * EN, "%s: %d of %d inside: want a mixed mask", tag,
           inside, EB * EN);

    const float eps = 1e-2f;
    float v[EB * EN];
    uniform(v, EB * EN, 5, -1.0f, 1.0f);

    /* J^T v for the rows {2, 0} in that order (compact buffers). */
    const int rows[2] = {2, 0};
    float vc[2 * EN], out[2 * EN], tmp[2 * EN];
    for (int r = 0; r < 2; r++)
        memcpy(vc + r * EN, v + rows[r] * EN, sizeof(float) * EN);
    equil_jt(p.W, jac, rows, 2, EN, vc, out, tmp);
    int used = 0, skipped = 0;
    for (int r = 0; r < 2; r++) {
        int b = rows[r];
        /* <v_b, f_b(a_b)>: the other samples' v is zero. */
        float vb[EB * EN] = {0};
        memcpy(vb + b * EN, v + b * EN, sizeof(float) * EN);
        double Jt[EN * EN];
        equil_jt_dense(p.W, jac + b * EN, EN, Jt);
        for (int j = 0; j < EN; j++) {
            double dense = 0.0;
            for (int c = 0; c < EN; c++)
                dense += Jt[j * EN + c] * v[b * EN + c];
            EXPECT_NEAR(dense, out[r * EN + j], 1e-5, 1e-5, "equil_jt_dense vs equil_jt");
            float ap[EB * EN], mp[EB * EN], mm[EB * EN];
            memcpy(ap, p.a, sizeof ap);
            ap[b * EN + j] = p.a[b * EN + j] + eps;
            double lp = eq_value(&p, ap, p.x1, p.W, vb, mp);
            ap[b * EN + j] = p.a[b * EN + j] - eps;
            double lm = eq_value(&p, ap, p.x1, p.W, vb, mm);
            if (memcmp(mp, mv, sizeof mp) || memcmp(mm, mv, sizeof mm)) {
                skipped++;
                continue;
            }
            used++;
            EXPECT_NEAR(out[r * EN + j], (lp - lm) / (2.0 * eps), 1e-3, 1e-3, "J^T v vs FD");
        }
    }
    EXPECT(used >= 3 * (used + skipped) / 4, "%s J^T: only %d of %d FD points away from kinks", tag,
           used, used + skipped);

    /* equil_vjp_params: dx1 = beta ⊙ mv, dW += (beta ⊙ jac)^T a. */
    float dx1[EB * EN], dW[EN * EN], tmp2[EB * EN];
    for (int k = 0; k < EN * EN; k++)
        dW[k] = 0.5f; /* accumulates */
    equil_vjp_params(v, p.a, mv, jac, EB, EN, dx1, dW, tmp2);
    used = skipped = 0;
    for (int k = 0; k < EB * EN; k++) {
        float xp[EB * EN], mp[EB * EN], mm[EB * EN];
        memcpy(xp, p.x1, sizeof xp);
        xp[k] = p.x1[k] + eps;
        double lp = eq_value(&p, p.a, xp, p.W, v, mp);
        xp[k] = p.x1[k] - eps;
        double lm = eq_value(&p, p.a, xp, p.W, v, mm);
        if (memcmp(mp, mv, sizeof mp) || memcmp(mm, mv, sizeof mm)) {
            skipped++;
            continue;
        }
        used++;
        EXPECT_NEAR(dx1[k], (lp - lm) / (2.0 * eps), 1e-3, 1e-3, "dx1 vs FD");
    }
    for (int k = 0; k < EN * EN; k++) {
        float Wp[EN * EN], mp[EB * EN], mm[EB * EN];
        memcpy(Wp, p.W, sizeof Wp);
        Wp[k] = p.W[k] + eps;
        double lp = eq_value(&p, p.a, p.x1, Wp, v, mp);
        Wp[k] = p.W[k] - eps;
        double lm = eq_value(&p, p.a, p.x1, Wp, v, mm);
        if (memcmp(mp, mv, sizeof mp) || memcmp(mm, mv, sizeof mm)) {
            skipped++;
            continue;
        }
        used++;
        EXPECT_NEAR(dW[k] - 0.5f, (lp - lm) / (2.0 * eps), 1e-3, 1e-3, "dW vs FD");
    }
    EXPECT(used >= 3 * (used + skipped) / 4, "%s params: only %d of %d FD points away from kinks",
           tag, used, used + skipped);
}

/* ---------- bn (training mode) ---------- */

enum { BB = 5, BNN = 4 };

static void bn_ref(const double *x, const double *gamma, const double *beta, double *y) {
    for (int j = 0; j < BNN; j++) {
        double mean = 0.0, var = 0.0;
        for (int i = 0; i < BB; i++)
            mean += x[i * BNN + j];
        mean /= BB;
        for (int i = 0; i < BB; i++)
            var += (x[i * BNN + j] - mean) * (x[i * BNN + j] - mean);
        var /= BB; /* biased, as torch normalises */
        for (int i = 0; i < BB; i++)
            y[i * BNN + j] = gamma[j] * (x[i * BNN + j] - mean) / sqrt(var + BN_EPS) + beta[j];
    }
}

static double bn_obj(const double *x, const double *gamma, const double *beta, const float *G) {
    double y[BB * BNN], s = 0.0;
    bn_ref(x, gamma, beta, y);
    for (int k = 0; k < BB * BNN; k++)
        s += G[k] * y[k];
    return s;
}

static void test_bn(void) {
    float x[BB * BNN], gamma[BNN], beta[BNN], G[BB * BNN];
    uniform(x, BB * BNN, 10, -2.0f, 3.0f);
    uniform(gamma, BNN, 11, 0.5f, 1.5f);
    uniform(beta, BNN, 12, -0.5f, 0.5f);
    uniform(G, BB * BNN, 13, -1.0f, 1.0f);
    /* Column 3 gets a small spread so BN_EPS matters in the derivative. */
    for (int i = 0; i < BB; i++)
        x[i * BNN + 3] = 0.5f + 0.002f * (float)i;
    float rm[BNN] = {0}, rv[BNN] = {1, 1, 1, 1}, xhat[BB * BNN], invstd[BNN], y[BB * BNN];
    double mean_b[BNN], var_b[BNN];
    bn_batch_stats(x, BB, BNN, mean_b, var_b);
    bn_normalize_train(x, gamma, beta, mean_b, var_b, BB, rm, rv, xhat, invstd, y, BB, BNN);
    double xd[BB * BNN], gd[BNN], bd[BNN], yd[BB * BNN];
    for (int k = 0; k < BB * BNN; k++)
        xd[k] = x[k];
    for (int j = 0; j < BNN; j++)
        gd[j] = gamma[j], bd[j] = beta[j];
    bn_ref(xd, gd, bd, yd);
    for (int k = 0; k < BB * BNN; k++)
        EXPECT_NEAR(y[k], yd[k], 1e-5, 1e-5, "bn forward");
    /* Running statistics: momentum 0.1, unbiased variance (torch). */
    for (int j = 0; j < BNN; j++) {
        double mean = 0.0, ss = 0.0;
        for (int i = 0; i < BB; i++)
            mean += xd[i * BNN + j];
        mean /= BB;
        for (int i = 0; i < BB; i++)
            ss += (xd[i * BNN + j] - mean) * (xd[i * BNN + j] - mean);
        EXPECT_NEAR(rm[j], 0.1 * mean, 1e-6, 1e-5, "bn running mean");
        EXPECT_NEAR(rv[j], 0.9 + 0.1 * ss / (BB - 1), 1e-6, 1e-5, "bn running var");
    }

    float dgamma[BNN], dbeta[BNN], dx[BB * BNN];
    for (int j = 0; j < BNN; j++)
        dgamma[j] = dbeta[j] = 0.25f; /* an offset, to check nothing else is added */
    double sdy[BNN], sdyx[BNN];
    bn_grad_sums(G, xhat, BB, BNN, sdy, sdyx);
    bn_vjp_apply(G, xhat, invstd, gamma, sdy, sdyx, BB, dx, BB, BNN);
    for (int j = 0; j < BNN; j++) {
        dgamma[j] += (float)sdyx[j];
        dbeta[j] += (float)sdy[j];
    }
    const double h = 1e-6;
    for (int k = 0; k < BB * BNN; k++) {
        double xp[BB * BNN];
        memcpy(xp, xd, sizeof xp);
        xp[k] = xd[k] + h;
        double lp = bn_obj(xp, gd, bd, G);
        xp[k] = xd[k] - h;
        double lm = bn_obj(xp, gd, bd, G);
        EXPECT_NEAR(dx[k], (lp - lm) / (2 * h), 1e-5, 1e-4, "bn dx vs FD");
    }
    for (int j = 0; j < BNN; j++) {
        double gp[BNN], bp[BNN];
        memcpy(gp, gd, sizeof gp);
        gp[j] = gd[j] + h;
        double lp = bn_obj(xd, gp, bd, G);
        gp[j] = gd[j] - h;
        double lm = bn_obj(xd, gp, bd, G);
        EXPECT_NEAR(dgamma[j] - 0.25f, (lp - lm) / (2 * h), 1e-5, 1e-4, "bn dgamma vs FD");
        memcpy(bp, bd, sizeof bp);
        bp[j] = bd[j] + h;
        lp = bn_obj(xd, gd, bp, G);
        bp[j] = bd[j] - h;
        lm = bn_obj(xd, gd, bp, G);
        EXPECT_NEAR(dbeta[j] - 0.25f, (lp - lm) / (2 * h), 1e-5, 1e-4, "bn dbeta vs FD");
    }
}

/* ---------- fc ---------- */

enum { FB = 3, FIN = 5, FOUT = 4 };

static double fc_obj(const double *x, const double *W, const double *b, const float *G) {
    double s = 0.0;
    for (int i = 0; i < FB; i++)
        for (int o = 0; o < FOUT; o++) {
            double y = b[o];
            for (int k = 0; k < FIN; k++)
                y += W[o * FIN + k] * x[i * FIN + k];
            s += G[i * FOUT + o] * y;
        }
    return s;
}

static void test_fc(void) {
    float x[FB * FIN], W[FOUT * FIN], b[FOUT], G[FB * FOUT], y[FB * FOUT];
    uniform(x, FB * FIN, 20, -1.0f, 1.0f);
    uniform(W, FOUT * FIN, 21, -1.0f, 1.0f);
    uniform(b, FOUT, 22, -1.0f, 1.0f);
    uniform(G, FB * FOUT, 23, -1.0f, 1.0f);
    fc_forward(x, W, b, y, FB, FIN, FOUT);
    double xd[FB * FIN], Wd[FOUT * FIN], bd[FOUT];
    for (int k = 0; k < FB * FIN; k++)
        xd[k] = x[k];
    for (int k = 0; k < FOUT * FIN; k++)
        Wd[k] = W[k];
    for (int k = 0; k < FOUT; k++)
        bd[k] = b[k];
    for (int i = 0; i < FB; i++)
        for (int o = 0; o < FOUT; o++) {
            double yy = bd[o];
            for (int k = 0; k < FIN; k++)
                yy += Wd[o * FIN + k] * xd[i * FIN + k];
            EXPECT_NEAR(y[i * FOUT + o], yy, 1e-6, 1e-5, "fc forward");
        }
    float dW[FOUT * FIN], db[FOUT], dx[FB * FIN];
    for (int k = 0; k < FOUT * FIN; k++)
        dW[k] = 1.0f; /* accumulates */
    for (int k = 0; k < FOUT; k++)
        db[k] = -1.0f;
    fc_vjp(x, W, G, dW, db, dx, FB, FIN, FOUT);
    const double h = 1e-6;
    for (int k = 0; k < FB * FIN; k++) {
        double p[FB * FIN];
        memcpy(p, xd, sizeof p);
        p[k] += h;
        double lp = fc_obj(p, Wd, bd, G);
        p[k] -= 2 * h;
        double lm = fc_obj(p, Wd, bd, G);
        EXPECT_NEAR(dx[k], (lp - lm) / (2 * h), 1e-5, 1e-4, "fc dx vs FD");
    }
    for (int k = 0; k < FOUT * FIN; k++) {
        double p[FOUT * FIN];
        memcpy(p, Wd, sizeof p);
        p[k] += h;
        double lp = fc_obj(xd, p, bd, G);
        p[k] -= 2 * h;
        double lm = fc_obj(xd, p, bd, G);
        EXPECT_NEAR(dW[k] - 1.0f, (lp - lm) / (2 * h), 1e-5, 1e-4, "fc dW vs FD");
    }
    for (int k = 0; k < FOUT; k++) {
        double p[FOUT];
        memcpy(p, bd, sizeof p);
        p[k] += h;
        double lp = fc_obj(xd, Wd, p, G);
        p[k] -= 2 * h;
        double lm = fc_obj(xd, Wd, p, G);
        EXPECT_NEAR(db[k] + 1.0f, (lp - lm) / (2 * h), 1e-5, 1e-4, "fc db vs FD");
    }
    /* dx is optional. */
    fc_vjp(x, W, G, dW, db, NULL, FB, FIN, FOUT);
}

/* ---------- softmax cross-entropy ---------- */

enum { LB = 4, LK = 6 };

static double xent_ref(const double *z, const uint8_t *labels) {
    double total = 0.0;
    for (int b = 0; b < LB; b++) {
        double mx = z[b * LK], s = 0.0;
        for (int k = 1; k < LK; k++)
            mx = fmax(mx, z[b * LK + k]);
        for (int k = 0; k < LK; k++)
            s += exp(z[b * LK + k] - mx);
        total += mx + log(s) - z[b * LK + labels[b]];
    }
    return total;
}

static void test_loss(void) {
    float z[LB * LK], dz[LB * LK];
    uniform(z, LB * LK, 30, -3.0f, 3.0f);
    z[LK + 2] = 60.0f; /* a large logit: stability of the log-sum-exp */
    const uint8_t labels[LB] = {1, 2, 5, 0};
    double zd[LB * LK];
    for (int k = 0; k < LB * LK; k++)
        zd[k] = z[k];
    long correct = 0;
    const double scale = 8.0; /* a global batch of 8 */
    double L = loss_softmax_xent(z, labels, LB, LK, dz, scale, &correct);
    EXPECT_NEAR(L, xent_ref(zd, labels), 1e-9, 1e-9, "xent value (summed)");
    EXPECT(isfinite(L), "xent not finite");
    /* correct: argmax equals the label. */
    long want_correct = 0;
    for (int b = 0; b < LB; b++) {
        int arg = 0;
        for (int k = 1; k < LK; k++)
            if (z[b * LK + k] > z[b * LK + arg]) arg = k;
        want_correct += arg == labels[b];
    }
    EXPECT(correct == want_correct && want_correct >= 1, "correct %ld, want %ld", correct,
           want_correct);
    /* d(L_sum / scale) / dz by central differences in double. */
    const double h = 1e-6;
    for (int k = 0; k < LB * LK; k++) {
        double p[LB * LK];
        memcpy(p, zd, sizeof p);
        p[k] += h;
        double lp = xent_ref(p, labels);
        p[k] -= 2 * h;
        double lm = xent_ref(p, labels);
        EXPECT_NEAR(dz[k], (lp - lm) / (2 * h) / scale, 1e-6, 1e-4, "dlogits vs FD");
    }
    /* Without dlogits: same value, still counts. */
    double L2 = loss_softmax_xent(z, labels, LB, LK, NULL, 1.0, &correct);
    EXPECT(L2 == L && correct == 2 * want_correct, "xent without dlogits: %g, correct %ld", L2,
           correct);
}

/* ---------- specnorm ---------- */

enum { SR = 5, SC = 4 };

static double sn_obj(const double *V, double g, const float *u, const float *v, const float *G) {
    double sigma = 0.0;
    for (int i = 0; i < SR; i++)
        for (int j = 0; j < SC; j++)
            sigma += u[i] * V[i * SC + j] * v[j];
    double s = 0.0;
    for (int k = 0; k < SR * SC; k++)
        s += G[k] * g * V[k] / sigma;
    return s;
}

static void test_specnorm(void) {
    float V[SR * SC], u[SR], v[SC], G[SR * SC], work[SR];
    uniform(V, SR * SC, 40, -1.0f, 1.0f);
    uniform(G, SR * SC, 41, -1.0f, 1.0f);
    specnorm_init_vectors(u, SR, v, SC, 5);
    float sigma = specnorm_power(V, SR, SC, u, v, 3, work);
    const float g = 0.7f;
    double Vd[SR * SC];
    for (int k = 0; k < SR * SC; k++)
        Vd[k] = V[k];
    /* sigma = u^T V v with the vectors after the iterations. */
    double sref = 0.0;
    for (int i = 0; i < SR; i++)
        for (int j = 0; j < SC; j++)
            sref += (double)u[i] * Vd[i * SC + j] * v[j];
    EXPECT_NEAR(sigma, sref, 1e-6, 1e-5, "sigma = u^T V v");
    float dV[SR * SC], dg = 0.125f;
    for (int k = 0; k < SR * SC; k++)
        dV[k] = 0.5f; /* accumulates */
    specnorm_vjp(V, u, v, g, sigma, G, dV, &dg, SR, SC);
    const double h = 1e-6;
    for (int k = 0; k < SR * SC; k++) {
        double p[SR * SC];
        memcpy(p, Vd, sizeof p);
        p[k] += h;
        double lp = sn_obj(p, g, u, v, G);
        p[k] -= 2 * h;
        double lm = sn_obj(p, g, u, v, G);
        EXPECT_NEAR(dV[k] - 0.5f, (lp - lm) / (2 * h), 1e-5, 1e-4, "specnorm dV vs FD");
    }
    double lp = sn_obj(Vd, g + h, u, v, G), lm = sn_obj(Vd, g - h, u, v, G);
    EXPECT_NEAR(dg - 0.125f, (lp - lm) / (2 * h), 1e-5, 1e-4, "specnorm dg vs FD");
}

int main(void) {
    test_equil(0);
    test_equil(1);
    test_bn();
    test_fc();
    test_loss();
    test_specnorm();
    return check_finish("vjp");
}
