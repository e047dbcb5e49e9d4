/* neuron: IF/LIF spike trains and weighted rates (SPEC §1) against traces
 * worked by hand, in all three spike-product modes.
 *
 * All inputs and weights below are dyadic (multiples of 1/2^k with few bits),
 * so every membrane update is exact in float whatever the summation order:
 * the rates must equal the hand values up to the rounding of the final
 * division by the normaliser (tolerance 1e-6 absolute), and the three modes
 * must agree bit for bit.
 *
 * Convention (neuron.h): cur = s W^T, i.e. neuron i receives W[i][j] from a
 * spike of neuron j; u[1] = x1; u[t] = u[t-1] + drop ⊙ (W s[t-1]) + x1;
 * s = (u >= V_th); u -= V_th s; u *= lambda;
 * a = sum_t lambda^(T-t) s[t] / sum_t lambda^(T-t). */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "fcref.h"
#include "neuron.h"
#include "rng.h"

static const cfg_spike_product modes[3] = {SPIKE_DENSE, SPIKE_EVENT, SPIKE_AUTO};
static const char *const mode_names[3] = {"dense", "event", "auto"};

/* Runs neuron_simulate for one mode; returns its stats. */
static neuron_stats run(int B, int n, int T, float vth, float leak, cfg_spike_product mode,
                        const float *x1, const float *W, const float *drop, float *a) {
    float *Wt = malloc(sizeof(float) * (size_t)n * n);
    float *u = malloc(sizeof(float) * (size_t)B * n);
    float *s = malloc(sizeof(float) * (size_t)B * n);
    float *cur = malloc(sizeof(float) * (size_t)B * n);
    int *idx = malloc(sizeof(int) * (size_t)B * n);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            Wt[j * n + i] = W[i * n + j];
    neuron_dims d = {B, n, T, vth, leak, mode};
    neuron_stats st = {0.0, 0, 0};
    neuron_simulate(&d, x1, W, Wt, drop, a, u, s, cur, idx, &st);
    free(Wt);
    free(u);
    free(s);
    free(cur);
    free(idx);
    return st;
}

/* Checks a case in the three modes against the hand rates `want` [B x n]
 * and the hand spike total. */
static void check_case(const char *name, int B, int n, int T, float vth, float leak,
                       const float *x1, const float *W, const float *drop, const double *want,
                       double spikes_want) {
    float a[3][64];
    for (int mi = 0; mi < 3; mi++) {
        neuron_stats st = run(B, n, T, vth, leak, modes[mi], x1, W, drop, a[mi]);
        for (int k = 0; k < B * n; k++) {
            char what[96];
            snprintf(what, sizeof what, "%s %s a[%d][%d]", name, mode_names[mi], k / n, k % n);
            EXPECT_NEAR(a[mi][k], want[k], 1e-6, 0.0, what);
        }
        EXPECT(st.spikes == spikes_want, "%s %s: spikes %g, hand count %g", name, mode_names[mi],
               st.spikes, spikes_want);
        /* Steps 2..T each do one W s product, counted on exactly one path. */
        EXPECT(st.dense_steps + st.event_steps == T - 1,
               "%s %s: %d dense + %d event steps, T-1 = %d", name, mode_names[mi], st.dense_steps,
               st.event_steps, T - 1);
        if (modes[mi] == SPIKE_DENSE)
            EXPECT(st.dense_steps == T - 1 && st.event_steps == 0, "%s dense: %d dense, %d event",
                   name, st.dense_steps, st.event_steps);
        if (modes[mi] == SPIKE_EVENT)
            EXPECT(st.event_steps == T - 1 && st.dense_steps == 0, "%s event: %d dense, %d event",
                   name, st.dense_steps, st.event_steps);
    }
    EXPECT(memcmp(a[0], a[1], sizeof(float) * (size_t)(B * n)) == 0, "%s: dense and event differ",
           name);
    EXPECT(memcmp(a[0], a[2], sizeof(float) * (size_t)(B * n)) == 0, "%s: dense and auto differ",
           name);
}

/* Case A: IF (lambda = 1), n = 2, B = 2, V_th = 2, T = 5.
 *   W = [[0, 1/2], [-1, 0]]   (neuron 1 is inhibited by neuron 0's spikes)
 * sample 0, x1 = (3/2, 3/4):
 *   t=1 u=(3/2, 3/4)             s=(0,0)  -> (3/2, 3/4)   [u[1] = x1 only]
 *   t=2 u=(3/2+3/2, 3/4+3/4)=(3, 3/2)     s=(1,0) -> (1, 3/2)
 *   t=3 Ws=(0,-1): u=(1+3/2, 3/2-1+3/4)=(5/2, 5/4) s=(1,0) -> (1/2, 5/4)
 *   t=4 u=(1/2+3/2, 5/4-1+3/4)=(2, 1)     s=(1,0) [u = V_th fires] -> (0, 1)
 *   t=5 u=(0+3/2, 1-1+3/4)=(3/2, 3/4)     s=(0,0)
 *   a = (3/5, 0); 3 spikes.
 * sample 1, x1 = (5/2, 1/4):
 *   t=1 u=(5/2, 1/4)  s=(1,0) -> (1/2, 1/4)
 *   t=2 u=(1/2+5/2, 1/4-1+1/4)=(3, -1/2)   s=(1,0) -> (1, -1/2)
 *   t=3 u=(7/2, -5/4) s=(1,0); t=4 u=(4, -2) s=(1,0); t=5 u=(9/2, -11/4) s=(1,0)
 *   a = (1, 0); 5 spikes.  Total 8 spikes. */
static void case_a(void) {
    const float W[4] = {0.0f, 0.5f, -1.0f, 0.0f};
    const float x1[4] = {1.5f, 0.75f, 2.5f, 0.25f};
    const double want[4] = {0.6, 0.0, 1.0, 0.0};
    check_case("A(IF)", 2, 2, 5, 2.0f, 1.0f, x1, W, NULL, want, 8.0);

    /* T = 1: only u[1] = x1, no feedback at all: a = (x1 >= V_th). */
    const double want1[4] = {0.0, 0.0, 1.0, 0.0};
    check_case("A(IF,T=1)", 2, 2, 1, 2.0f, 1.0f, x1, W, NULL, want1, 1.0);

    /* T = 2 isolates the one-step delay. With W: sample 0 neuron 0 fires
     * first at t = 2 (u = 3), a = (1/2, 0); sample 1 neuron 0 fires at t = 1
     * and t = 2, neuron 1 stays below threshold: a = (1, 0). 3 spikes. */
    const double want2[4] = {0.5, 0.0, 1.0, 0.0};
    check_case("A(IF,T=2)", 2, 2, 2, 2.0f, 1.0f, x1, W, NULL, want2, 3.0);
    const float Wexc[4] = {0.0f, 0.5f, 1.5f, 0.0f};
    /* Excitatory W[1][0] = 3/2: sample 1 neuron 1 has u[1] = 1/4 (the spike of
     * neuron 0 at t = 1 is not seen yet) and u[2] = 1/4 + 3/2 + 1/4 = 2, so it
     * fires at t = 2 only: a = (1, 1/2). Sample 0: t=1 (3/2, 3/4) no spikes;
     * t=2 (3, 3/2) s = (1, 0): a = (1/2, 0). 4 spikes. */
    const double want3[4] = {0.5, 0.0, 1.0, 0.5};
    check_case("A(IF,T=2,exc)", 2, 2, 2, 2.0f, 1.0f, x1, Wexc, NULL, want3, 4.0);
}

/* Case B: LIF lambda = 1/2, n = 3, B = 2, V_th = 2, T = 6.
 *   W = [[0, 1/2, 1/4], [-1/2, 0, 1], [3/4, -1/4, 0]]
 * Normaliser sum_{t=1..6} (1/2)^(6-t) = 63/32.
 * sample 0, x1 = (5/4, 1/2, 7/4); u before threshold, s, u after reset*leak:
 *   t=1 u=(5/4, 1/2, 7/4)         s=(0,0,0) -> (5/8, 1/4, 7/8)
 *   t=2 u=(15/8, 3/4, 21/8)       s=(0,0,1) -> (15/16, 3/8, 5/16)
 *   t=3 Ws=(1/4,1,0): u=(39/16, 15/8, 33/16) s=(1,0,1) -> (7/32, 15/16, 1/32)
 *   t=4 Ws=(1/4,1/2,3/4): u=(55/32, 31/16, 81/32) s=(0,0,1) -> (55/64, 31/32, 17/64)
 *   t=5 Ws=(1/4,1,0): u=(151/64, 79/32, 129/64) s=(1,1,1) -> (23/128, 15/64, 1/128)
 *   t=6 Ws=(3/4,1/2,1/2): u=(279/128, 79/64, 289/128) s=(1,0,1)
 *   a0, weights (1/2)^(6-t) over 32/63:
 *     neuron 0 spikes at t=3,5,6: (1/8 + 1/2 + 1) * 32/63 = 52/63
 *     neuron 1 at t=5:            (1/2) * 32/63          = 16/63
 *     neuron 2 at t=2..6:         (1/16+1/8+1/4+1/2+1) * 32/63 = 62/63
 *   9 spikes.
 * sample 1, x1 = (3, 1, 1/4): neuron 0 fires every step; neuron 1 gets
 *   -1/2 from it from t = 2 on: u = 1, then 1/2 - 1/2 + 1 = 1 at every step;
 *   neuron 2 climbs 1/4, 9/8, 25/16, 57/32, 121/64, 249/128 < 2 (the leak keeps
 *   it below threshold; without the leak it would fire at t=3).
 *   a1 = (1, 0, 0); 6 spikes. Total 15. */
static void case_b(void) {
    const float W[9] = {0.0f, 0.5f, 0.25f, -0.5f, 0.0f, 1.0f, 0.75f, -0.25f, 0.0f};
    const float x1[6] = {1.25f, 0.5f, 1.75f, 3.0f, 1.0f, 0.25f};
    const double want[6] = {52.0 / 63, 16.0 / 63, 62.0 / 63, 1.0, 0.0, 0.0};
    check_case("B(LIF)", 2, 3, 6, 2.0f, 0.5f, x1, W, NULL, want, 15.0);
}

/* Case C: IF, the W of case B, T = 6, with a feedback dropout mask
 * (p = 0.2: entries 0 or 5/4), the same at every step:
 *   sample 0 x1 = (5/4, 1/2, 7/4), drop = (5/4, 0, 5/4)
 *   t=1 u=(5/4, 1/2, 7/4) s=(0,0,0)
 *   t=2 u=(5/2, 1, 7/2)   s=(1,0,1) -> (1/2, 1, 3/2)
 *   t=3 Ws=(1/4,1/2,3/4), masked (5/16, 0, 15/16): u=(33/16, 3/2, 67/16) s=(1,0,1)
 *        -> (1/16, 3/2, 35/16)
 *   t=4 masked (5/16,0,15/16): u=(13/8, 2, 39/8) s=(0,1,1) -> (13/8, 0, 23/8)
 *   t=5 Ws=(3/4,1,-1/4) masked (15/16, 0, -5/16): u=(61/16, 1/2, 69/16) s=(1,0,1)
 *        -> (29/16, 1/2, 37/16)
 *   t=6 masked (5/16,0,15/16): u=(27/8, 1, 5) s=(1,0,1)
 *   a0 = (4/6, 1/6, 5/6); 10 spikes. (Neuron 1's mask is 0: without the mask
 *   it would receive +1 at t=3 and fire more.)
 *   sample 1 x1 = (3, 1, 1/4), drop = (0, 5/4, 5/4)
 *   t=1 u=(3,1,1/4) s=(1,0,0) -> (1,1,1/4)
 *   t=2 Ws=(0,-1/2,3/4) masked (0,-5/8,15/16): u=(4, 11/8, 23/16) s=(1,0,0)
 *   t=3 u=(5, 7/4, 21/8) s=(1,0,1) -> (3, 7/4, 5/8)
 *   t=4 Ws=(1/4,1/2,3/4) masked (0,5/8,15/16): u=(6, 27/8, 29/16) s=(1,1,0)
 *        -> (4, 11/8, 29/16)
 *   t=5 Ws=(1/2,-1/2,1/2) masked (0,-5/8,5/8): u=(7, 7/4, 43/16) s=(1,0,1)
 *   t=6 masked (0,5/8,15/16): u=(8, 27/8, 15/8) s=(1,1,0)
 *   a1 = (1, 2/6, 2/6); 10 spikes. Total 20. */
static void case_c(void) {
    const float W[9] = {0.0f, 0.5f, 0.25f, -0.5f, 0.0f, 1.0f, 0.75f, -0.25f, 0.0f};
    const float x1[6] = {1.25f, 0.5f, 1.75f, 3.0f, 1.0f, 0.25f};
    const float drop[6] = {1.25f, 0.0f, 1.25f, 0.0f, 1.25f, 1.25f};
    const double want[6] = {4.0 / 6, 1.0 / 6, 5.0 / 6, 1.0, 2.0 / 6, 2.0 / 6};
    check_case("C(IF,drop)", 2, 3, 6, 2.0f, 1.0f, x1, W, drop, want, 20.0);
}

/* AUTO picks the path from the density of the previous step's spikes
 * (NEURON_EVENT_DENSITY = 0.15): no spikes at all -> every step event-driven;
 * every neuron firing every step -> every step dense. */
static void case_auto(void) {
    enum { B = 2, n = 4, T = 5 };
    float W[n * n], x1[B * n], a[B * n];
    for (int k = 0; k < n * n; k++)
        W[k] = (k % 3 == 0) ? 0.25f : -0.125f;
    for (int k = 0; k < B * n; k++)
        x1[k] = 0.0f;
    neuron_stats st = run(B, n, T, 2.0f, 1.0f, SPIKE_AUTO, x1, W, NULL, a);
    EXPECT(st.event_steps == T - 1 && st.dense_steps == 0,
           "auto, silent: %d event, %d dense steps (want all event)", st.event_steps,
           st.dense_steps);
    EXPECT(st.spikes == 0.0, "auto, silent: %g spikes", st.spikes);
    for (int k = 0; k < B * n; k++)
        EXPECT(a[k] == 0.0f, "silent a[%d] = %g", k, a[k]);
    /* x1 = 5 >= 2 V_th + max |W row sum|: every neuron fires every step. */
    for (int k = 0; k < B * n; k++)
        x1[k] = 5.0f;
    st = run(B, n, T, 2.0f, 1.0f, SPIKE_AUTO, x1, W, NULL, a);
    EXPECT(st.dense_steps == T - 1 && st.event_steps == 0,
           "auto, saturated: %d dense, %d event steps (want all dense)", st.dense_steps,
           st.event_steps);
    EXPECT(st.spikes == (double)B * n * T, "auto, saturated: %g spikes", st.spikes);
    for (int k = 0; k < B * n; k++)
        EXPECT_NEAR(a[k], 1.0, 1e-6, 0.0, "saturated a");
}

/* An independent simulation in double, for the random dyadic case. */
static void reference_sim(int B, int n, int T, double vth, double leak, const float *x1,
                          const float *W, const float *drop, double *a) {
    double *u = calloc((size_t)n, sizeof(double)), *s = calloc((size_t)n, sizeof(double));
    double *sn = calloc((size_t)n, sizeof(double));
    double norm = 0.0;
    for (int t = 1; t <= T; t++)
        norm += pow(leak, T - t);
    for (int b = 0; b < B; b++) {
        for (int i = 0; i < n; i++)
            a[b * n + i] = 0.0;
        for (int t = 1; t <= T; t++) {
            for (int i = 0; i < n; i++) {
                double in = x1[b * n + i];
                if (t > 1) {
                    double c = 0.0;
                    for (int j = 0; j < n; j++)
                        c += (double)W[i * n + j] * s[j];
                    in += (drop ? drop[b * n + i] : 1.0) * c;
                    u[i] += in;
                } else {
                    u[i] = in;
                }
            }
            for (int i = 0; i < n; i++) {
                sn[i] = u[i] >= vth ? 1.0 : 0.0;
                u[i] = (u[i] - vth * sn[i]) * leak;
                a[b * n + i] += pow(leak, T - t) * sn[i];
            }
            memcpy(s, sn, sizeof(double) * (size_t)n);
        }
        for (int i = 0; i < n; i++)
            a[b * n + i] /= norm;
    }
    free(u);
    free(s);
    free(sn);
}

/* Random case, n = 40, B = 3, IF (T = 20) and LIF 0.5 (T = 10), with and
 * without a mask: weights and inputs are multiples of 1/16 (|W| <= 5/16, x1
 * in [0, 2)), the mask 0 or 5/4, so every float sum is exact in any order
 * (IF: |u| < 2^9 with 6 fractional bits; LIF: |u| < 2^5 with 6 + 10
 * fractional bits, both within float's 24) and the three modes must match
 * the double reference exactly (tolerance 1e-6 for the final scaling). */
static void case_random(void) {
    enum { B = 3, n = 40 };
    static float W[n * n], x1[B * n], drop[B * n], a[B * n];
    static double want[B * n];
    rng_uniform_fill(7, RNG_TEST, 0, 0, W, n * n);
    rng_uniform_fill(7, RNG_TEST, 0, 1, x1, B * n);
    rng_uniform_fill(7, RNG_TEST, 0, 2, drop, B * n);
    for (int k = 0; k < n * n; k++)
        W[k] = floorf((W[k] * 2.0f - 1.0f) * 5.0f) / 16.0f;
    for (int k = 0; k < B * n; k++) {
        x1[k] = floorf(x1[k] * 32.0f) / 16.0f;
        drop[k] = drop[k] < 0.2f ? 0.0f : 1.25f;
    }
    const float leaks[2] = {1.0f, 0.5f};
    const int steps[2] = {20, 10};
    for (int li = 0; li < 2; li++)
        for (int di = 0; di < 2; di++) {
            const int T = steps[li];
            const float *dm = di ? drop : NULL;
            reference_sim(B, n, T, 2.0, leaks[li], x1, W, dm, want);
            double nspk = 0.0;
            for (int k = 0; k < B * n; k++)
                nspk += want[k];
            EXPECT(nspk > 0.05 * B * n && nspk < 0.95 * B * n,
                   "random case should have mixed activity (sum of rates %g)", nspk);
            for (int mi = 0; mi < 3; mi++) {
                neuron_stats st = run(B, n, T, 2.0f, leaks[li], modes[mi], x1, W, dm, a);
                double maxd = 0.0;
                for (int k = 0; k < B * n; k++)
                    maxd = fmax(maxd, fabs(a[k] - want[k]));
                EXPECT(maxd <= 1e-6, "random leak %g drop %d mode %s: max |a - ref| = %g",
                       leaks[li], di, mode_names[mi], maxd);
                EXPECT(st.dense_steps + st.event_steps == T - 1, "random: step counts %d + %d",
                       st.dense_steps, st.event_steps);
            }
        }
}

/* neuron_spike_product: s W^T both ways, against the double product, for a
 * small batch and a larger one (B = 64, n = 256, the sizes where a per-sample
 * loop runs on several threads: each sample must use its own list of active
 * neurons). */
static void product_case(int B, int n, int reps) {
    float *W = malloc(sizeof(float) * (size_t)n * n), *Wt = malloc(sizeof(float) * (size_t)n * n);
    float *s = malloc(sizeof(float) * (size_t)B * n), *cur = malloc(sizeof(float) * (size_t)B * n);
    int *idx = malloc(sizeof(int) * (size_t)B * n);
    rng_uniform_fill(8, RNG_TEST, 0, (uint32_t)n, W, (long)n * n);
    rng_uniform_fill(8, RNG_TEST, 1, (uint32_t)n, s, (long)B * n);
    for (long k = 0; k < (long)B * n; k++)
        s[k] = s[k] < 0.1f ? 1.0f : 0.0f;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            Wt[(long)j * n + i] = W[(long)i * n + j];
    double *ref = malloc(sizeof(double) * (size_t)B * n);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < n; i++) {
            double c = 0.0;
            for (int j = 0; j < n; j++)
                c += (double)W[(long)i * n + j] * s[(long)b * n + j];
            ref[(long)b * n + i] = c;
        }
    /* Repeated so that an ordering-dependent fault shows in one run. */
    for (int rep = 0; rep < 2 * reps; rep++) {
        int ev = rep % 2;
        for (long k = 0; k < (long)B * n; k++)
            cur[k] = 123.0f; /* must be overwritten */
        neuron_spike_product(s, W, Wt, cur, idx, B, n, ev);
        double maxd = 0.0;
        for (long k = 0; k < (long)B * n; k++)
            maxd = fmax(maxd, fabs(cur[k] - ref[k]));
        /* float sums of <= n terms in [0, 1), value <= n: 1e-6 * n absolute. */
        EXPECT(maxd < 1e-6 * n, "spike product B=%d n=%d (event %d): max error %g", B, n, ev, maxd);
    }
    free(ref);
    free(W);
    free(Wt);
    free(s);
    free(cur);
    free(idx);
}

static void case_product(void) {
    product_case(3, 17, 1);
    product_case(64, 256, 20);
}

/* neuron_rate_norm(T, lambda) = sum_{t=1..T} lambda^(T-t): by hand
 * T=5, IF: 5; T=6, 1/2: 1 + 1/2 + ... + 1/32 = 63/32; T=1: 1;
 * T=30, 0.95: (1 - 0.95^30) / 0.05 (geometric series), 1e-9 relative
 * (the float 0.95 is not 0.95: the reference uses the same float value). */
static void case_norm(void) {
    EXPECT_NEAR(neuron_rate_norm(5, 1.0f), 5.0, 1e-12, 0.0, "norm T=5 IF");
    EXPECT_NEAR(neuron_rate_norm(6, 0.5f), 63.0 / 32.0, 1e-12, 0.0, "norm T=6 lambda=1/2");
    EXPECT_NEAR(neuron_rate_norm(1, 0.7f), 1.0, 1e-12, 0.0, "norm T=1");
    double l = (double)0.95f;
    EXPECT_NEAR(neuron_rate_norm(30, 0.95f), (1.0 - pow(l, 30)) / (1.0 - l), 0.0, 1e-9,
                "norm T=30 lambda=0.95");
}

/* --- per-step rates (neuron_simulate_steps, neuron_rates) --- */

typedef struct {
    int B, n, T, calls;
    float leak;
    float *rates; /* [T x B x n]: a[t] as the hook saw it */
} steps_seen;

static void steps_record(void *ctx, int t, const float *acc) {
    steps_seen *c = ctx;
    const long count = (long)c->B * c->n;
    EXPECT(t == c->calls + 1, "hook called for t = %d after %d calls", t, c->calls);
    if (t < 1 || t > c->T) return;
    c->calls++;
    neuron_rates(acc, count, t, c->leak, c->rates + (long)(t - 1) * count);
}

/* Runs neuron_simulate_steps; writes the per-step rates [T x B x n] and the
 * final a; checks that a equals neuron_simulate's bit for bit. */
static void run_steps(int B, int n, int T, float leak, cfg_spike_product mode, const float *x1,
                      const float *W, const float *drop, float *rates, float *a) {
    const long count = (long)B * n;
    float *Wt = malloc(sizeof(float) * (size_t)n * n), *a_plain = malloc(sizeof(float) * count);
    float *u = malloc(sizeof(float) * count), *s = malloc(sizeof(float) * count);
    float *cur = malloc(sizeof(float) * count);
    int *idx = malloc(sizeof(int) * count);
    for (int i = 0; i < n; i++)
        for (int j = 0; j < n; j++)
            Wt[j * n + i] = W[i * n + j];
    neuron_dims d = {B, n, T, 2.0f, leak, mode};
    neuron_stats st = {0.0, 0, 0}, st_plain = {0.0, 0, 0};
    steps_seen c = {B, n, T, 0, leak, rates};
    neuron_simulate_steps(&d, x1, W, Wt, drop, a, u, s, cur, idx, &st, steps_record, &c);
    EXPECT(c.calls == T, "hook called %d times for T = %d", c.calls, T);
    neuron_simulate(&d, x1, W, Wt, drop, a_plain, u, s, cur, idx, &st_plain);
    EXPECT(memcmp(a, a_plain, sizeof(float) * count) == 0,
           "a with the hook differs from neuron_simulate's");
    EXPECT(st.spikes == st_plain.spikes, "spikes with the hook %g, without %g", st.spikes,
           st_plain.spikes);
    EXPECT(memcmp(rates + (T - 1) * count, a, sizeof(float) * count) == 0,
           "the rates of step T differ from a = a[T]");
    free(Wt);
    free(a_plain);
    free(u);
    free(s);
    free(cur);
    free(idx);
}

/* Case B's hand trace (LIF 1/2): the spikes of each step are written out
 * there; a[t]_i = sum_{tau<=t} (1/2)^(t-tau) s_i[tau] / sum_{tau<=t} (1/2)^(t-tau)
 * is computed here from that table alone, for every t (tolerance 1e-6). */
static void case_steps_hand(void) {
    const float W[9] = {0.0f, 0.5f, 0.25f, -0.5f, 0.0f, 1.0f, 0.75f, -0.25f, 0.0f};
    const float x1[6] = {1.25f, 0.5f, 1.75f, 3.0f, 1.0f, 0.25f};
    /* spikes[t-1][sample][neuron] from the trace above case_b */
    static const int spikes[6][2][3] = {
        {{0, 0, 0}, {1, 0, 0}}, {{0, 0, 1}, {1, 0, 0}}, {{1, 0, 1}, {1, 0, 0}},
        {{0, 0, 1}, {1, 0, 0}}, {{1, 1, 1}, {1, 0, 0}}, {{1, 0, 1}, {1, 0, 0}},
    };
    float rates[6 * 6], a[6];
    for (int mi = 0; mi < 3; mi++) {
        run_steps(2, 3, 6, 0.5f, modes[mi], x1, W, NULL, rates, a);
        for (int t = 1; t <= 6; t++)
            for (int b = 0; b < 2; b++)
                for (int i = 0; i < 3; i++) {
                    double num = 0.0, den = 0.0;
                    for (int tau = 1; tau <= t; tau++) {
                        num += ldexp(spikes[tau - 1][b][i], tau - t);
                        den += ldexp(1.0, tau - t);
                    }
                    char what[80];
                    snprintf(what, sizeof what, "steps %s a[%d] sample %d neuron %d",
                             mode_names[mi], t, b, i);
                    EXPECT_NEAR(rates[(t - 1) * 6 + b * 3 + i], num / den, 1e-6, 0.0, what);
                }
    }
}

/* The random dyadic case: the simulation is causal, so a[t] of a T-step run
 * is the result of a t-step run; the double reference gives it for every t
 * (IF and LIF 1/2, with and without a mask; exact up to the final scaling,
 * 1e-6). */
static void case_steps_random(void) {
    enum { B = 3, n = 40, T = 12 };
    static float W[n * n], x1[B * n], drop[B * n], a[B * n], rates[T * B * n];
    static double want[B * n];
    rng_uniform_fill(9, RNG_TEST, 0, 0, W, n * n);
    rng_uniform_fill(9, RNG_TEST, 0, 1, x1, B * n);
    rng_uniform_fill(9, RNG_TEST, 0, 2, drop, B * n);
    for (int k = 0; k < n * n; k++)
        W[k] = floorf((W[k] * 2.0f - 1.0f) * 5.0f) / 16.0f;
    for (int k = 0; k < B * n; k++) {
        x1[k] = floorf(x1[k] * 32.0f) / 16.0f;
        drop[k] = drop[k] < 0.2f ? 0.0f : 1.25f;
    }
    const float leaks[2] = {1.0f, 0.5f};
    for (int li = 0; li < 2; li++)
        for (int di = 0; di < 2; di++) {
            const float *dm = di ? drop : NULL;
            run_steps(B, n, T, leaks[li], SPIKE_AUTO, x1, W, dm, rates, a);
            double maxd = 0.0;
            for (int t = 1; t <= T; t++) {
                reference_sim(B, n, t, 2.0, leaks[li], x1, W, dm, want);
                for (int k = 0; k < B * n; k++)
                    maxd = fmax(maxd, fabs(rates[(t - 1) * B * n + k] - want[k]));
            }
            EXPECT(maxd <= 1e-6, "steps leak %g drop %d: max |a[t] - ref(t)| = %g", leaks[li], di,
                   maxd);
        }
}

int main(void) {
    case_steps_hand();
    case_steps_random();
    case_a();
    case_b();
    case_c();
    case_auto();
    case_random();
    case_product();
    case_norm();
    return check_finish("neuron");
}
