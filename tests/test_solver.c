/* solver: the adjoint equilibrium beta = J^T beta + g (SPEC §3), and the full
 * implicit gradient of the model against finite differences.
 *
 * Part 1 — each solver kind against an independent reference: (I - J^T) is
 * formed here per sample in double from W and the diagonal factor jac of
 * equil_eval (J^T[r][c] = W[c][r] jac[c]) and solved with LAPACKE_dgesv.
 * ||J^T||_2 <= ||W||_2 max(jac) = 0.95 * 1.25 / 2 < 0.6, so
 * ||beta - beta_ref|| <= residual / (1 - 0.6): with tol = 1e-5 (stopping at
 * ||G|| < tol sqrt(n) = 5.5e-5) the iterative solutions must agree to
 * 2.5 * 5.5e-5 + float rounding: tolerance 5e-4 absolute per entry. The exact
 * solve (dgesv in double, rounded to float) agrees to 1e-5 relative.
 *
 * Part 2 — model gradient (SPEC §3.3): for two small models, FC 12-16-5 and
 * conv 4C3s (F4C3) on 1x6x6 inputs with 5 classes (B = 4, IF, V_th = 2),
 * without and with dropout, the gradient of the batch-mean loss
 * L(a*(theta)) returned in m->grads by model_loss (exact and Broyden
 * adjoints) is compared with central differences of model_loss_value after
 * recomputing the whole forward (weights with the same u, v; input branch;
 * 50 fixed-point iterations to the exact a*, a contraction of factor
 * <= 1.25 / 2, so 0.625^50 < 1e-10, below float rounding). Entries: all of the small tensors, a
 * random third of F and V. The point is checked to be away from the clamp
 * kinks: every z = (drop_s ⊙ W a* + x1) / V_th that is not identically 0 is
 * at least 10 eps from 0 and 1, while a perturbation of eps (2e-3 FC, 5e-4
 * conv, whose 144 values of z need a smaller step to find such a point)
 * moves z by less than ~3 eps; f is then smooth along every FD segment.
 * The conv net's W a for the margin is computed here by the definition of
 * the convolution, independently of conv.c. Float forward
 * (a* and L carry ~1e-7 rounding, i.e. ~5e-5 in the FD quotient): tolerance
 * per entry 3e-2 |grad| + 2e-4 max|grad of the tensor| + 1e-4, every entry
 * must meet it; over the larger tensors the cosine between the analytic and
 * the FD gradient must also exceed 0.999 and their norm ratio be within 3%.
 * A sign error or a missing factor (e.g. 1/V_th) fails all of these.
 * The same Broyden gradients with the adjoint's products W^T (jac ⊙ v)
 * forced dense and forced event-driven (from the lists of neurons with
 * jac != 0, in two micro-shards) agree to 1e-5 max|grad| per entry: only
 * the order of the products' float terms differs (measured <= 3e-7). */
#include <lapacke.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "check.h"
#include "dropout.h"
#include "equil.h"
#include "fcref.h"
#include "model.h"
#include "rng.h"
#include "solver.h"
#include "status.h"
#include "testutil.h"

/* ---------- part 1 ---------- */

enum { SB = 4, SN = 30 };

typedef struct {
    const float *W, *jac;
    int n;
    float *tmp;
} jt_ctx;

static void op_apply(void *ctx, const int *rows, int nrows, const float *in, float *out) {
    jt_ctx *c = ctx;
    equil_jt(c->W, c->jac, rows, nrows, c->n, in, out, c->tmp);
}

static void op_dense(void *ctx, int b, double *Jt) {
    jt_ctx *c = ctx;
    equil_jt_dense(c->W, c->jac + (long)b * c->n, c->n, Jt);
}

/* ||J^T beta + g - beta|| of sample b, in double. */
static double residual(const float *W, const float *jac, const float *g, const float *beta, int b,
                       int n) {
    double r2 = 0.0;
    for (int r = 0; r < n; r++) {
        double v = g[b * n + r] - (double)beta[b * n + r];
        for (int c = 0; c < n; c++)
            v += (double)W[c * n + r] * jac[b * n + c] * beta[b * n + c];
        r2 += v * v;
    }
    return sqrt(r2);
}

static void test_solvers(void) {
    const float vth = 2.0f;
    static float W[SN * SN], a[SB * SN], x1[SB * SN], drop[SB * SN], f[SB * SN], mv[SB * SN],
        jac[SB * SN], res[SB], g[SB * SN], beta[SB * SN], tmp[SB * SN];
    static double ref[SB * SN];
    testutil_scaled_matrix(W, SN, 0.95, 31);
    EXPECT(testutil_spectral_norm(W, SN, SN) <= 0.95 + 1e-5, "||W||_2 = %g",
           testutil_spectral_norm(W, SN, SN));
    rng_uniform_fill(31, RNG_TEST, 0, 1, a, SB * SN);
    rng_uniform_fill(31, RNG_TEST, 0, 2, x1, SB * SN);
    rng_uniform_fill(31, RNG_TEST, 0, 3, drop, SB * SN);
    rng_uniform_fill(31, RNG_TEST, 0, 4, g, SB * SN);
    for (int k = 0; k < SB * SN; k++) {
        x1[k] = -1.0f + 3.5f * x1[k];
        drop[k] = drop[k] < 0.2f ? 0.0f : 1.25f;
        g[k] = 2.0f * g[k] - 1.0f;
    }
    equil_eval(a, x1, W, drop, SB, SN, vth, f, mv, jac, res);
    int zeros = 0;
    for (int k = 0; k < SB * SN; k++)
        zeros += jac[k] == 0.0f;
    EXPECT(zeros > SB * SN / 10 && zeros < SB * SN * 3 / 4,
           "jac should have a mixed zero pattern: %d zeros of %d", zeros, SB * SN);

    /* Reference: (I - J^T) beta = g per sample, dgesv in double. */
    for (int b = 0; b < SB; b++) {
        double A[SN * SN], rhs[SN];
        lapack_int piv[SN];
        for (int r = 0; r < SN; r++) {
            for (int c = 0; c < SN; c++)
                A[r * SN + c] = (r == c) - (double)W[c * SN + r] * jac[b * SN + c];
            rhs[r] = g[b * SN + r];
        }
        lapack_int info = LAPACKE_dgesv(LAPACK_ROW_MAJOR, SN, 1, A, SN, piv, rhs, 1);
        EXPECT(info == 0, "reference dgesv info %d", (int)info);
        for (int r = 0; r < SN; r++)
            ref[b * SN + r] = rhs[r];
    }

    jt_ctx ctx = {W, jac, SN, tmp};
    solver_op op = {op_apply, op_dense, &ctx, SN};
    const cfg_solver kinds[4] = {SOLVER_BROYDEN, SOLVER_FIXED_POINT, SOLVER_ANDERSON, SOLVER_EXACT};
    const int max_iters[4] = {60, 200, 100, 1};
    const double tol = 1e-5, thr = tol * sqrt((double)SN);
    for (int ki = 0; ki < 4; ki++) {
        const char *name = solver_name(kinds[ki]);
        solver_ws *ws = NULL;
        EXPECT_OK(solver_ws_create(&ws, kinds[ki], SB, SN, max_iters[ki], 5));
        solver_stats st;
        memset(&st, 0, sizeof st);
        for (int k = 0; k < SB * SN; k++)
            beta[k] = NAN;
        EXPECT_OK(solver_solve(ws, &op, g, beta, SB, max_iters[ki], tol, &st));
        double maxd = 0.0, r2 = 0.0;
        for (int k = 0; k < SB * SN; k++)
            maxd = fmax(maxd, fabs(beta[k] - ref[k]));
        for (int b = 0; b < SB; b++) {
            double rb = residual(W, jac, g, beta, b, SN);
            r2 += rb * rb;
        }
        printf("%-12s max|beta - ref| = %.3g  iters mean %.1f max %d  residual %.3g (own %.3g)  "
               "converged %d\n",
               name, maxd, st.iters_mean, st.iters_max, st.residual, sqrt(r2), st.converged);
        if (kinds[ki] == SOLVER_EXACT) {
            double maxr = 0.0;
            for (int k = 0; k < SB * SN; k++)
                maxr = fmax(maxr, fabs(beta[k] - ref[k]) / (1e-3 + fabs(ref[k])));
            EXPECT(maxr <= 1e-5, "exact: relative error to the reference %g", maxr);
            EXPECT(st.iters_max == 1, "exact: iters_max %d", st.iters_max);
        } else {
            EXPECT(maxd <= 5e-4, "%s: max |beta - ref| = %g > 5e-4", name, maxd);
            EXPECT(st.iters_max > 0 && st.iters_max <= max_iters[ki], "%s: iters_max %d", name,
                   st.iters_max);
        }
        EXPECT(st.iters_mean > 0.0 && st.iters_mean <= st.iters_max, "%s: iters_mean %g", name,
               st.iters_mean);
        EXPECT(st.converged == SB, "%s: %d of %d samples converged", name, st.converged, SB);
        /* The reported residual is that of the returned beta (up to float
         * rounding of the solver's own sums), and below the tolerance. */
        EXPECT(st.residual <= thr * sqrt((double)SB), "%s: reported residual %g", name,
               st.residual);
        EXPECT(fabs(st.residual - sqrt(r2)) <= 1e-5 + 0.1 * sqrt(r2),
               "%s: reported residual %g, recomputed %g", name, st.residual, sqrt(r2));

        /* A sample's solution does not depend on its batch: sample 2 alone. */
        if (kinds[ki] != SOLVER_EXACT) {
            jt_ctx c1 = {W, jac + 2 * SN, SN, tmp};
            solver_op op1 = {op_apply, op_dense, &c1, SN};
            float beta1[SN];
            solver_stats st1;
            EXPECT_OK(solver_solve(ws, &op1, g + 2 * SN, beta1, 1, max_iters[ki], tol, &st1));
            double d1 = 0.0;
            for (int j = 0; j < SN; j++)
                d1 = fmax(d1, fabs(beta1[j] - beta[2 * SN + j]));
            EXPECT(d1 <= 1e-5, "%s: sample 2 alone differs from its batch result by %g", name, d1);
        }
        /* Too few iterations: reported as not converged, counts capped. */
        if (kinds[ki] == SOLVER_FIXED_POINT) {
            EXPECT_OK(solver_solve(ws, &op, g, beta, SB, 3, tol, &st));
            EXPECT(st.iters_max == 3 && st.converged < SB,
                   "fixed_point capped at 3: iters_max %d, converged %d", st.iters_max,
                   st.converged);
            EXPECT(st.residual > thr, "fixed_point capped at 3: residual %g", st.residual);
        }
        solver_ws_destroy(&ws);
        EXPECT(ws == NULL, "solver_ws_destroy clears the pointer");
    }
}

/* ---------- part 2 ---------- */

enum { MB = 4, MIN = 12, MN = 16, MOUT = 5 };
enum { NMAX = 64, XMAX = 64 }; /* neurons and inputs per sample of the nets below */

/* The nets of part 2: FC 12-16-5 (input 1x1x12), and conv 4C3s (F4C3) on
 * 1x6x6 (4x3x3 = 36 neurons). */
typedef struct {
    const char *tag, *net;
    int hidden; /* cfg.model_hidden: N of "N (FN)", 0 for the conv net */
    int c, h, w;
    int x_stream; /* RNG stream of the input: a point away from the clamp kinks */
    float eps;    /* FD step; every z must be 10 eps from a kink */
} grad_net;

static const grad_net net_fc = {"model", "16 (F16)", MN, 1, 1, MIN, 27, 2e-3f};
static const grad_net net_conv = {"conv model", "4C3s (F4C3)", 0, 1, 6, 6, 44, 5e-4f};

static void fill_cfg(fsnn_cfg *c, const grad_net *g, cfg_solver kind, float dropout) {
    memset(c, 0, sizeof *c);
    testutil_cfg_variant(c, 0);
    c->run_seed = 17;
    snprintf(c->model_net, sizeof c->model_net, "%s", g->net);
    c->model_hidden = g->hidden;
    c->model_time_steps = 5;
    c->model_spike_product = SPIKE_AUTO;
    c->neuron_vth = 2.0f;
    c->neuron_leak = 1.0f;
    c->solver_kind = kind;
    c->solver_max_iters = 60;
    c->solver_tol = 1e-12;
    c->solver_anderson_m = 5;
    c->train_batch = MB;
    c->train_dropout = dropout;
}

static const long sample_ids[MB] = {101, 7, 55, 3};
static const uint8_t labels[MB] = {0, 3, 1, 4};
static const double ADJ_TOL = 1e-5; /* event vs dense adjoint, relative to max|grad| */
enum { EPOCH = 2 };
static const uint64_t SEED = 17;

/* out = W a for one sample, computed here from m->W: FC as a matrix [n x n],
 * conv 4C3 (stride 1, padding 1) by its definition. */
static void feedback_apply(const fsnn_model *m, const float *a, float *out) {
    const int n = m->n;
    if (m->channels == n) {
        for (int i = 0; i < n; i++) {
            double s = 0.0;
            for (int j = 0; j < n; j++)
                s += (double)m->W[i * n + j] * a[j];
            out[i] = (float)s;
        }
        return;
    }
    const int C = m->channels, H = m->fb_op.conv.H, Wd = m->fb_op.conv.W, k = 3;
    for (int co = 0; co < C; co++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < Wd; x++) {
                double s = 0.0;
                for (int ci = 0; ci < C; ci++)
                    for (int ky = 0; ky < k; ky++)
                        for (int kx = 0; kx < k; kx++) {
                            int yy = y + ky - 1, xx = x + kx - 1;
                            if (yy < 0 || yy >= H || xx < 0 || xx >= Wd) continue;
                            s += (double)m->W[((co * C + ci) * k + ky) * k + kx] *
                                 a[(ci * H + yy) * Wd + xx];
                        }
                out[(co * H + y) * Wd + x] = (float)s;
            }
}

static void forward(fsnn_model *m, model_ws *ws, const float *x) {
    model_prepare_weights(m, 0);
    model_input(m, ws, x, MB, 1, sample_ids, EPOCH, SEED);
    model_fixed_point(m, ws, MB, 50);
}

/* The distance of z = (drop_s ⊙ W a + x1) / V_th from the kinks 0 and 1 over
 * the entries where z is not identically 0 (both masks 0). The feedback mask
 * is that of dropout.h for (seed, RNG_DROP_S, epoch, sample id). */
static double kink_margin(const fsnn_model *m, model_ws *ws) {
    const int n = m->n;
    float ds[MB * NMAX], wa[MB * NMAX];
    const float *a = model_ws_a(ws), *x1 = model_ws_x1(ws);
    if (m->dropout > 0.0f)
        dropout_mask(ds, MB, n, m->dropout, SEED, RNG_DROP_S, EPOCH, sample_ids);
    else
        for (int k = 0; k < MB * n; k++)
            ds[k] = 1.0f;
    for (int b = 0; b < MB; b++)
        feedback_apply(m, a + b * n, wa + b * n);
    double mg = INFINITY;
    for (int k = 0; k < MB * n; k++) {
        if (ds[k] == 0.0f && x1[k] == 0.0f) continue;
        double z = ((double)ds[k] * wa[k] + x1[k]) / m->vth;
        mg = fmin(mg, fmin(fabs(z), fabs(z - 1.0)));
    }
    return mg;
}

static void test_model_grad(const grad_net *net, float dropout) {
    char tag[64];
    snprintf(tag, sizeof tag, "%s%s", net->tag, dropout > 0.0f ? "(dropout)" : "");
    fsnn_cfg ce, cb;
    fill_cfg(&ce, net, SOLVER_EXACT, dropout);
    fill_cfg(&cb, net, SOLVER_BROYDEN, dropout);
    fsnn_model *m = NULL;
    model_ws *wse = NULL, *wsb = NULL;
    EXPECT_OK(model_create(&m, &ce, net->c, net->h, net->w, MOUT));
    if (!m || m->n > NMAX || m->n_in > XMAX) {
        EXPECT(0, "%s: sizes beyond the test's buffers", tag);
        model_destroy(&m);
        return;
    }
    EXPECT_OK(model_ws_create(&wse, m, &ce, MB));
    EXPECT_OK(model_ws_create(&wsb, m, &cb, MB));
    if (!wse || !wsb) return;
    const int C = m->channels, nin = m->n_in, n = m->n;
    model_init(m, SEED);
    /* Move away from the initial state so every tensor has a generic value:
     * BN weights and biases, readout bias and g (< 1, so it is not at the
     * clamp) all non-trivial. */
    float r[64];
    rng_uniform_fill(41, RNG_TEST, 0, 0, r, 64);
    for (int j = 0; j < C; j++) {
        m->p.bn_w[j] = 0.7f + 0.6f * r[j];
        m->p.bn_b[j] = 0.8f * r[MN + j];
        m->p.Fb[j] = r[2 * MN + j] - 0.5f;
    }
    for (int k = 0; k < MOUT; k++)
        m->p.bo[k] = r[3 * MN + k] - 0.5f;
    m->p.g[0] = 0.9f;

    static float x[MB * XMAX];
    rng_uniform_fill(41, RNG_TEST, 0, (uint64_t)net->x_stream, x, MB * nin);
    for (int k = 0; k < MB * nin; k++)
        x[k] = 4.0f * x[k] - 2.0f;

    /* Analytic gradients, exact and Broyden adjoints. */
    static float ge[4096], gb[4096];
    EXPECT(m->n_params <= 4096, "n_params %zu", m->n_params);
    model_stats st;
    memset(&st, 0, sizeof st);
    forward(m, wse, x);
    EXPECT_OK(model_loss(m, wse, labels, MB, (double)MB, 1, &st));
    EXPECT(st.fwd_res_max < 1e-5, "%s: forward residual at a* = %g", tag, st.fwd_res_max);
    memcpy(ge, m->grads, sizeof(float) * m->n_params);
    float *a = model_ws_a(wse);
    int inside = 0;
    for (int k = 0; k < MB * n; k++)
        inside += a[k] > 0.0f && a[k] < 1.0f;
    EXPECT(inside >= MB * n / 4, "%s: only %d of %d rates strictly inside (0, 1)", tag, inside,
           MB * n);
    double margin = kink_margin(m, wse);
    EXPECT(margin > 10.0 * net->eps, "%s: some z is %g from a clamp kink: move the test point", tag,
           margin);
    double L0 = model_loss_value(m, wse, labels, MB);
    EXPECT_NEAR(st.loss / MB, L0, 1e-9, 1e-6, "model_loss vs model_loss_value");

    memset(&st, 0, sizeof st);
    forward(m, wsb, x);
    EXPECT_OK(model_loss(m, wsb, labels, MB, (double)MB, 1, &st));
    memcpy(gb, m->grads, sizeof(float) * m->n_params);
    EXPECT(st.adj_samples == MB && st.adj_iters_sum > 0.0 && st.adj_iters_sum <= 60.0 * MB,
           "%s: broyden iterations %g over %ld samples", tag, st.adj_iters_sum, st.adj_samples);

    /* Exact vs Broyden: the same solution up to the float residual. */
    double dmax = 0.0, gmax = 0.0;
    for (size_t k = 0; k < m->n_params; k++) {
        dmax = fmax(dmax, fabs(ge[k] - gb[k]));
        gmax = fmax(gmax, fabs(ge[k]));
    }
    EXPECT(dmax <= 1e-4 * gmax, "%s: exact vs broyden gradients differ by %g (max %g)", tag, dmax,
           gmax);

    /* The adjoint's products W^T (jac ⊙ v) dense and event-driven
     * (model.spike_product; the event path adds only the rows of W or the
     * kernel taps of the neurons with jac != 0): the same Broyden solve up
     * to the float rounding of the products, whose terms come in another
     * order. The event run is also cut into two micro-shards
     * (deterministic mode), so each shard solves from its own rows of the
     * active lists. Tolerance: ADJ_TOL max|grad| per entry. */
    {
        static float gden[4096], gev[4096];
        fsnn_cfg cv = cb;
        cv.parallel_deterministic = 1;
        cv.parallel_micro_batch = MB / 2;
        model_ws *wsv = NULL;
        EXPECT_OK(model_ws_create(&wsv, m, &cv, MB));
        for (int ev = 0; ev < 2; ev++) {
            m->spike_mode = ev ? SPIKE_EVENT : SPIKE_DENSE;
            memset(&st, 0, sizeof st);
            forward(m, ev ? wsv : wsb, x);
            EXPECT_OK(model_loss(m, ev ? wsv : wsb, labels, MB, (double)MB, 1, &st));
            memcpy(ev ? gev : gden, m->grads, sizeof(float) * m->n_params);
        }
        m->spike_mode = SPIKE_AUTO;
        double dd = 0.0;
        for (size_t k = 0; k < m->n_params; k++)
            dd = fmax(dd, fabs((double)gev[k] - gden[k]));
        printf("%-16s event vs dense adjoint: max |difference| %.3g (max |grad| %.3g)\n", tag, dd,
               gmax);
        EXPECT(dd <= ADJ_TOL * gmax, "%s: event and dense adjoint gradients differ by %g (max %g)",
               tag, dd, gmax);
        model_ws_destroy(&wsv);
    }

    /* Deterministic mode (two micro-shards, fixed-point sums scaled from
     * bounds on them) against the float sums: the same gradient up to the
     * rounding of float sums, element by element. */
    {
        fsnn_cfg cd = ce;
        cd.parallel_deterministic = 1;
        cd.parallel_micro_batch = MB / 2;
        model_ws *wsd = NULL;
        EXPECT_OK(model_ws_create(&wsd, m, &cd, MB));
        static float gd[4096];
        memset(&st, 0, sizeof st);
        forward(m, wsd, x);
        EXPECT_OK(model_loss(m, wsd, labels, MB, (double)MB, 1, &st));
        memcpy(gd, m->grads, sizeof(float) * m->n_params);
        int close = 0;
        for (size_t k = 0; k < m->n_params; k++)
            close += fabs((double)gd[k] - ge[k]) <= 1e-6 * fabs(ge[k]) + 1e-7 * gmax;
        EXPECT(close == (int)m->n_params,
               "%s: %d of %zu deterministic gradient values within float rounding of the "
               "float sums",
               tag, close, m->n_params);
        model_ws_destroy(&wsd);
    }

    /* Finite differences: every entry of the small tensors, a random third
     * of F and V. */
    static double fd[4096];
    static unsigned char pick[4096];
    float u01[4096];
    rng_uniform_fill(41, RNG_TEST, 1, 0, u01, (long)m->n_params);
    for (size_t k = 0; k < m->n_params; k++) {
        int big = (k >= m->info[0].offset && k < m->info[0].offset + m->info[0].count) ||
                  (k >= m->info[4].offset && k < m->info[4].offset + m->info[4].count);
        pick[k] = !big || u01[k] < 1.0f / 3.0f;
    }
    const float eps = net->eps;
    for (size_t k = 0; k < m->n_params; k++) {
        if (!pick[k]) continue;
        float p0 = m->params[k];
        float pp = p0 + eps, pm = p0 - eps;
        m->params[k] = pp;
        forward(m, wse, x);
        double lp = model_loss_value(m, wse, labels, MB);
        m->params[k] = pm;
        forward(m, wse, x);
        double lm = model_loss_value(m, wse, labels, MB);
        m->params[k] = p0;
        fd[k] = (lp - lm) / ((double)pp - (double)pm);
    }
    forward(m, wse, x);

    EXPECT(testutil_grad_vs_fd(m, ge, fd, pick, tag, 1e-3, 0.0) == 0,
           "%s: gradient against finite differences (messages above)", tag);
    model_ws_destroy(&wse);
    model_ws_destroy(&wsb);
    model_destroy(&m);
}

/* ---------- part 3: the batch-wide solves (solver_solve_batch) ----------
 * A J^T that couples the samples, as the multi-layer nets' training-mode
 * BatchNorm does: the whole batch is one vector of BB x BN values and J^T
 * one dense matrix M over it (uniform entries scaled so that ||M||_2 =
 * 0.6). Broyden's answer must solve (I - M) beta = g as LAPACK's dgesv
 * does in double (relative difference <= 1e-5; its stopping test on the
 * whole batch's residual, tol 2e-10 sqrt(BB BN), is at float rounding).
 * The halving iteration from beta = g, 30 times, must equal the same
 * recurrence run here in double (<= 1e-5 relative), and after 200 times
 * the solution of (2I - M) beta = g (dgesv; its contraction ||M / 2|| =
 * 0.3 leaves 0.3^200 of the start). */
enum { BB = 3, BN = 8 };

typedef struct {
    const float *M;  /* [BB BN x BB BN] */
    int calls_short; /* applications that did not get all rows */
} batch_ctx;

static void batch_apply(void *ctx, const int *rows, int nrows, const float *in, float *out) {
    batch_ctx *c = ctx;
    (void)rows;
    if (nrows != BB) c->calls_short++;
    const int N = BB * BN;
    for (int i = 0; i < N; i++) {
        double acc = 0.0;
        for (int j = 0; j < N; j++)
            acc += (double)c->M[(long)i * N + j] * in[j];
        out[i] = (float)acc;
    }
}

static int batch_sum(void *ctx, const float *vals, int count, double *out) {
    (void)ctx;
    *out = 0.0;
    for (int i = 0; i < count; i++)
        *out += vals[i];
    return FSNN_OK;
}

/* x [N] = (s I - M)^{-1} g by dgesv in double. */
static void batch_exact(const float *M, const float *g, double s, double *x) {
    const int N = BB * BN;
    double A[BB * BN * BB * BN];
    lapack_int piv[BB * BN];
    for (int i = 0; i < N; i++) {
        for (int j = 0; j < N; j++)
            A[i * N + j] = -(double)M[i * N + j];
        A[i * N + i] += s;
        x[i] = g[i];
    }
    EXPECT(LAPACKE_dgesv(LAPACK_ROW_MAJOR, N, 1, A, N, piv, x, 1) == 0, "dgesv");
}

static double batch_rel(const float *a, const double *b, int n) {
    double d = 0.0, r = 0.0;
    for (int i = 0; i < n; i++) {
        d += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        r += b[i] * b[i];
    }
    return sqrt(d / r);
}

static void test_batch_solves(void) {
    const int N = BB * BN;
    float M[BB * BN * BB * BN], g[BB * BN], beta[BB * BN];
    testutil_scaled_matrix(M, N, 0.6, 91);
    rng_uniform_fill(92, RNG_TEST, 0, 0, g, N);
    double x[BB * BN];
    batch_ctx c = {M, 0};
    solver_op op = {batch_apply, NULL, &c, BN};
    solver_stats st;

    solver_ws *ws = NULL;
    EXPECT_OK(solver_ws_create(&ws, SOLVER_BROYDEN, BB, BN, 30, 5));
    EXPECT_OK(solver_solve_batch(ws, &op, g, beta, BB, 30, 2e-10, (long)N, batch_sum, NULL, &st));
    batch_exact(M, g, 1.0, x);
    double rel = batch_rel(beta, x, N);
    printf("batch Broyden: %g iterations, residual %.3g, rel. difference to dgesv %.3g\n",
           st.iters_mean, st.residual, rel);
    EXPECT(rel <= 1e-5, "batch Broyden vs dgesv: %g", rel);
    EXPECT(c.calls_short == 0, "%d applications without every row", c.calls_short);
    solver_ws_destroy(&ws);

    EXPECT_OK(solver_ws_create(&ws, SOLVER_HALVING, BB, BN, 200, 5));
    EXPECT_OK(solver_solve_batch(ws, &op, g, beta, BB, 30, 2e-10, (long)N, batch_sum, NULL, &st));
    double y[BB * BN], t[BB * BN];
    for (int i = 0; i < N; i++)
        y[i] = g[i];
    for (int it = 0; it < 30; it++) {
        for (int i = 0; i < N; i++) {
            double acc = 0.0;
            for (int j = 0; j < N; j++)
                acc += (double)M[i * N + j] * y[j];
            t[i] = (acc + g[i]) / 2.0;
        }
        memcpy(y, t, sizeof y);
    }
    rel = batch_rel(beta, y, N);
    EXPECT(rel <= 1e-5, "halving, 30 steps, vs the recurrence in double: %g", rel);
    EXPECT(st.iters_mean == 30, "halving runs all its steps: %g", st.iters_mean);
    EXPECT_OK(solver_solve_batch(ws, &op, g, beta, BB, 200, 2e-10, (long)N, batch_sum, NULL, &st));
    batch_exact(M, g, 2.0, x);
    rel = batch_rel(beta, x, N);
    printf("halving, 200 steps: rel. difference to (2I - M)^-1 g %.3g\n", rel);
    EXPECT(rel <= 1e-5, "halving vs (2I - M)^-1 g: %g", rel);
    batch_exact(M, g, 1.0, x);
    EXPECT(batch_rel(beta, x, N) > 0.1, "halving must not solve the adjoint equation");
    solver_ws_destroy(&ws);

    EXPECT_OK(solver_ws_create(&ws, SOLVER_ANDERSON, BB, BN, 30, 5));
    status_clear();
    EXPECT(solver_solve_batch(ws, &op, g, beta, BB, 30, 2e-10, (long)N, batch_sum, NULL, &st) != 0,
           "anderson refused for a coupled batch");
    EXPECT(strstr(status_message(), "broyden") != NULL, "message names broyden: %s",
           status_message());
    status_clear();
    solver_ws_destroy(&ws);
}

int main(void) {
    test_solvers();
    test_batch_solves();
    test_model_grad(&net_fc, 0.0f);
    test_model_grad(&net_fc, 0.2f);
    test_model_grad(&net_conv, 0.0f);
    test_model_grad(&net_conv, 0.2f);
    return check_finish("solver");
}
