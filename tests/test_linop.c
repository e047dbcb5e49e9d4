/* linop: every product of an FC, a conv and a transposed-conv map against
 * the map's matrix M [out x in] built here from the weights by the
 * definition (FC: M = W; conv: M[(o,y,x), (c,yy,xx)] = W[o,c,ky,kx] where
 * yy = y s + ky - k/2, xx = x s + kx - k/2, zero padding; transposed conv
 * "u" (stride 2, padding k/2, output padding 1): M[(o,yo,xo), (c,y,x)] =
 * W[c,o,ky,kx] where yo = 2 y + ky - k/2, xo = 2 x + kx - k/2, inside the
 * 2H x 2W output), independently of conv.c:
 *   forward      y = M x + b (b per output channel)
 *   spike        M s for 0/1 spikes, dense and event-driven (FC in != out too)
 *   transpose    M^T dy
 *   masked       M^T (d ⊙ v) for a sparse diagonal d, dense and event-driven,
 *                per sample by density, for any order of samples
 *   weight_grad  dW = sum_b dy_b^T (dM/dW) x_b, db = per-channel sums of dy
 *   dense        linop_dense = M
 * Products are float sums of at most 75 terms of size <= 1: tolerance 1e-5
 * absolute plus 1e-5 relative (the references are summed in double). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "linop.h"
#include "rng.h"

enum { B = 3, MAXN = 256, MAXW = 512 };

typedef struct {
    const char *name;
    int fc;               /* 1: FC in -> out; 2: transposed conv C -> O, 2x upscaling */
    int C, H, W, O, k, s; /* conv */
    int in, out;          /* FC */
} lcase;

/* M of the case from the weights Wt (layout of linop.h). */
static void reference_matrix(const lcase *c, const linop *op, const float *Wt, double *M) {
    memset(M, 0, sizeof(double) * (size_t)op->out * op->in);
    if (c->fc == 1) {
        for (int i = 0; i < op->out * op->in; i++)
            M[i] = Wt[i];
        return;
    }
    if (c->fc == 2) {
        const int Ho = 2 * c->H, Wo = 2 * c->W;
        for (int ch = 0; ch < c->C; ch++)
            for (int y = 0; y < c->H; y++)
                for (int x = 0; x < c->W; x++)
                    for (int o = 0; o < c->O; o++)
                        for (int ky = 0; ky < c->k; ky++)
                            for (int kx = 0; kx < c->k; kx++) {
                                int yo = 2 * y + ky - c->k / 2, xo = 2 * x + kx - c->k / 2;
                                if (yo < 0 || yo >= Ho || xo < 0 || xo >= Wo) continue;
                                long r = ((long)o * Ho + yo) * Wo + xo;
                                long col = ((long)ch * c->H + y) * c->W + x;
                                M[r * op->in + col] +=
                                    Wt[((ch * c->O + o) * c->k + ky) * c->k + kx];
                            }
        return;
    }
    const int Ho = (c->H + 2 * (c->k / 2) - c->k) / c->s + 1;
    const int Wo = (c->W + 2 * (c->k / 2) - c->k) / c->s + 1;
    for (int o = 0; o < c->O; o++)
        for (int y = 0; y < Ho; y++)
            for (int x = 0; x < Wo; x++)
                for (int ch = 0; ch < c->C; ch++)
                    for (int ky = 0; ky < c->k; ky++)
                        for (int kx = 0; kx < c->k; kx++) {
                            int yy = y * c->s + ky - c->k / 2, xx = x * c->s + kx - c->k / 2;
                            if (yy < 0 || yy >= c->H || xx < 0 || xx >= c->W) continue;
                            long r = ((long)o * Ho + y) * Wo + x;
                            long col = ((long)ch * c->H + yy) * c->W + xx;
                            M[r * op->in + col] += Wt[((o * c->C + ch) * c->k + ky) * c->k + kx];
                        }
}

static void test_case(const lcase *c) {
    linop op;
    if (c->fc == 1)
        linop_fc(&op, c->in, c->out);
    else if (c->fc == 2)
        EXPECT_OK(linop_deconv(&op, c->C, c->H, c->W, c->O, c->k));
    else
        EXPECT_OK(linop_conv(&op, c->C, c->H, c->W, c->O, c->k, c->s));
    const int in = op.in, out = op.out;
    const size_t nw = linop_weights(&op);
    EXPECT(in <= MAXN && out <= MAXN && nw <= MAXW, "%s: sizes beyond the test's", c->name);
    if (in > MAXN || out > MAXN || nw > MAXW) return;
    static float Wt[MAXW], We[MAXW], bias[MAXN], x[B * MAXN], sp[B * MAXN], dy[B * MAXN];
    static float y[B * MAXN], dW[MAXW], db[MAXN];
    static double M[MAXN * MAXN], Md[MAXN * MAXN];
    int idx[B * MAXN];
    float *ws = calloc(linop_ws_size(&op) + 1, sizeof(float));
    rng_uniform_fill(5, RNG_TEST, 0, 0, Wt, (long)nw);
    rng_uniform_fill(5, RNG_TEST, 0, 1, x, (long)B * in);
    rng_uniform_fill(5, RNG_TEST, 0, 2, dy, (long)B * out);
    rng_uniform_fill(5, RNG_TEST, 0, 3, sp, (long)B * in);
    rng_uniform_fill(5, RNG_TEST, 0, 4, bias, op.channels);
    for (size_t i = 0; i < nw; i++)
        Wt[i] = 2.0f * Wt[i] - 1.0f;
    for (int i = 0; i < B * in; i++) {
        x[i] = 2.0f * x[i] - 1.0f;
        sp[i] = sp[i] < 0.3f ? 1.0f : 0.0f;
    }
    for (int i = 0; i < B * out; i++)
        dy[i] = 2.0f * dy[i] - 1.0f;
    reference_matrix(c, &op, Wt, M);
    const int hw = op.hw;

    /* forward with bias */
    linop_forward(&op, Wt, bias, x, y, B, ws);
    int bad = 0;
    for (int b = 0; b < B; b++)
        for (int r = 0; r < out; r++) {
            double s = bias[r / hw];
            for (int j = 0; j < in; j++)
                s += M[(long)r * in + j] * x[b * in + j];
            bad += fabs(y[b * out + r] - s) > 1e-5 + 1e-5 * fabs(s);
        }
    EXPECT(bad == 0, "%s: linop_forward: %d values differ from M x + b", c->name, bad);

    /* spikes, both paths */
    {
        linop_event_weights(&op, Wt, We);
        for (int event = 0; event < 2; event++) {
            linop_spike(&op, Wt, We, sp, y, idx, B, event, ws);
            bad = 0;
            for (int b = 0; b < B; b++)
                for (int r = 0; r < out; r++) {
                    double s = 0.0;
                    for (int j = 0; j < in; j++)
                        s += M[(long)r * in + j] * sp[b * in + j];
                    bad += fabs(y[b * out + r] - s) > 1e-5 + 1e-5 * fabs(s);
                }
            EXPECT(bad == 0, "%s: linop_spike (event %d): %d values differ from M s", c->name,
                   event, bad);
        }
    }

    /* transpose */
    static float dx[B * MAXN];
    linop_transpose(&op, Wt, dy, dx, B, ws);
    bad = 0;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < in; j++) {
            double s = 0.0;
            for (int r = 0; r < out; r++)
                s += M[(long)r * in + j] * dy[b * out + r];
            bad += fabs(dx[b * in + j] - s) > 1e-5 + 1e-5 * fabs(s);
        }
    EXPECT(bad == 0, "%s: linop_transpose: %d values differ from M^T dy", c->name, bad);

    /* transpose through a sparse diagonal d: sample 0 all zero, sample 1
     * every eighth entry non-zero (below both event densities), sample 2 all
     * non-zero; values 1/V_th and 1.25/V_th (dropout) as in the adjoint.
     * Every mode, every sample order (rows NULL and {1, 2, 0}: in auto
     * mode the dense sample 2 lies between event samples, so its packed
     * result must move). */
    {
        static float d[B * MAXN], u[B * MAXN];
        int nnz[B], lidx[B * MAXN];
        rng_uniform_fill(5, RNG_TEST, 0, 5, u, (long)B * out);
        for (int j = 0; j < out; j++) {
            d[j] = 0.0f;
            d[out + j] = j % 8 == 3 ? (u[j] < 0.5f ? 0.5f : 0.625f) : 0.0f;
            d[2 * out + j] = u[2 * out + j] < 0.5f ? 0.5f : 0.625f;
        }
        long total = linop_mask_lists(d, B, out, lidx, nnz);
        int listed = nnz[0] == 0 && nnz[2] == out && total == (long)nnz[1] + out;
        for (int b = 0; b < B; b++)
            for (int q = 0; q < nnz[b]; q++) {
                int j = lidx[b * out + q];
                listed &= d[b * out + j] != 0.0f && (q == 0 || j > lidx[b * out + q - 1]);
            }
        EXPECT(listed, "%s: linop_mask_lists: wrong lists (nnz %d %d %d)", c->name, nnz[0], nnz[1],
               nnz[2]);
        static float Wa[MAXW], v[B * MAXN], tmp[B * MAXN], got[B * MAXN];
        linop_adjoint_weights(&op, Wt, Wa);
        const int order[B] = {1, 2, 0};
        const cfg_spike_product modes[3] = {SPIKE_DENSE, SPIKE_EVENT, SPIKE_AUTO};
        for (int o = 0; o < 2; o++)
            for (int mo = 0; mo < 3; mo++) {
                const int *rows = o ? order : NULL;
                for (int r = 0; r < B; r++) /* v[r] is sample rows[r]'s */
                    memcpy(v + r * out, dy + (rows ? rows[r] : r) * out, sizeof(float) * out);
                for (int k = 0; k < B * in; k++) /* no result of an earlier call survives */
                    got[k] = NAN;
                int ev = linop_masked_transpose(&op, Wt, Wa, d, lidx, nnz, rows, B, v, got, tmp,
                                                modes[mo], ws);
                int want = 0; /* a transposed conv has no event path */
                for (int b = 0; b < B && c->fc != 2; b++)
                    want += modes[mo] == SPIKE_EVENT ||
                            (modes[mo] == SPIKE_AUTO && nnz[b] < linop_adjoint_density(&op) * out);
                EXPECT(ev == want, "%s: linop_masked_transpose (mode %d): %d event samples, not %d",
                       c->name, mo, ev, want);
                bad = 0;
                for (int r = 0; r < B; r++) {
                    const int b = rows ? rows[r] : r;
                    for (int j = 0; j < in; j++) {
                        double t = 0.0;
                        for (int i = 0; i < out; i++)
                            t += M[(long)i * in + j] * d[b * out + i] * dy[b * out + i];
                        bad += !(fabs(got[r * in + j] - t) <= 1e-5 + 1e-5 * fabs(t));
                    }
                }
                EXPECT(bad == 0,
                       "%s: linop_masked_transpose (mode %d, rows %s): %d values differ from "
                       "M^T (d ⊙ v)",
                       c->name, mo, rows ? "{1,2,0}" : "NULL", bad);
            }
    }

    /* weight gradient: d/dW_i of sum_b dy_b^T M(W) x_b, M linear in W, so
     * the derivative is sum_b dy_b^T M(e_i) x_b with M(e_i) the matrix of
     * the unit weight e_i. */
    linop_weight_grad(&op, x, dy, dW, db, B, ws);
    static float e[MAXW];
    static double Me[MAXN * MAXN];
    double gmax = 0.0, bmax = 0.0;
    bad = 0;
    memset(e, 0, sizeof e);
    for (size_t i = 0; i < nw; i++) {
        e[i] = 1.0f;
        reference_matrix(c, &op, e, Me);
        e[i] = 0.0f;
        double s = 0.0;
        for (int b = 0; b < B; b++)
            for (int r = 0; r < out; r++)
                for (int j = 0; j < in; j++)
                    s += dy[b * out + r] * Me[(long)r * in + j] * x[b * in + j];
        bad += fabs(dW[i] - s) > 1e-5 + 1e-5 * fabs(s);
        gmax = fmax(gmax, fabs(dW[i]));
    }
    EXPECT(bad == 0, "%s: linop_weight_grad: %d of %zu dW differ", c->name, bad, nw);
    bad = 0;
    for (int ch = 0; ch < op.channels; ch++) {
        double s = 0.0;
        for (int b = 0; b < B; b++)
            for (int p = 0; p < hw; p++)
                s += dy[b * out + ch * hw + p];
        bad += fabs(db[ch] - s) > 1e-5 + 1e-5 * fabs(s);
        bmax = fmax(bmax, fabs(db[ch]));
    }
    EXPECT(bad == 0, "%s: linop_weight_grad: %d db differ from the channel sums", c->name, bad);
    EXPECT(gmax > 0.0 && bmax > 0.0, "%s: the gradients are not zero (max|dW| %g, max|db| %g)",
           c->name, gmax, bmax);

    /* dense */
    EXPECT_OK(linop_dense(&op, Wt, Md));
    bad = 0;
    for (long i = 0; i < (long)out * in; i++)
        bad += fabs(Md[i] - M[i]) > 1e-6;
    EXPECT(bad == 0, "%s: linop_dense: %d entries differ from M", c->name, bad);
    free(ws);
}

int main(void) {
    const lcase cases[] = {
        {"fc 7x7", 1, 0, 0, 0, 0, 0, 0, 7, 7},
        {"fc 5->9", 1, 0, 0, 0, 0, 0, 0, 5, 9},
        {"conv 3x4x4 k3 s1", 0, 3, 4, 4, 3, 3, 1, 0, 0},
        {"conv 2x5x5->3 k3 s2", 0, 2, 5, 5, 3, 3, 2, 0, 0},
        {"conv 1x6x6->4 k5 s2", 0, 1, 6, 6, 4, 5, 2, 0, 0},
        {"deconv 3x3x3->2 k3 u", 2, 3, 3, 3, 2, 3, 2, 0, 0},
        {"deconv 2x2x3->3 k5 u", 2, 2, 2, 3, 3, 5, 2, 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        test_case(&cases[i]);
    return check_finish("linop");
}
