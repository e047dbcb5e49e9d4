/* model_simulate_trace and trainer_evaluate_trace (the per-step approach to
 * the equilibrium, Figure 1) against an independent computation.
 *
 * Reference: the simulation is causal, so a[t] of a T-step run is the a of a
 * t-step run (model_simulate with m->T = t, the code path training uses).
 * From that a[t] the test evaluates f in double by itself,
 *   f(a) = clamp((W a + x1) / V_th, 0, 1)     (SPEC §2, no dropout in evaluation)
 * and forms ||f(a[t]) - a[t]||, its ratio to ||a[t]|| and ||a[t] - a[t-1]||,
 * summed and maximised over the samples. The trace computes f in float
 * (equil_eval): tolerance 1e-5 absolute per sample (n = 16 terms of size <= 1
 * each, float rounding ~1e-7 each), scaled by the number of samples for sums.
 * At t = T the trace's residual must equal model_loss's exactly (the same
 * a[T], the same equil_eval, the same order of sums), and the final a must
 * equal model_simulate's bit for bit. Run in deterministic mode with five
 * micro-shards (row groups on several threads) and in fast mode. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "config.h"
#include "fcref.h"
#include "model.h"
#include "rng.h"
#include "trainer.h"

enum { N_IN = 20, N = 16, N_OUT = 4, T = 9, B = 37 };

static void cfg_make(fsnn_cfg *cfg, int deterministic, float leak) {
    config_defaults(cfg);
    cfg->model_hidden = N;
    cfg->model_time_steps = T;
    cfg->neuron_leak = leak;
    cfg->parallel_deterministic = deterministic;
    cfg->parallel_micro_batch = 8;
    cfg->train_batch = 64;
    cfg->train_test_batch = 64;
}

/* x [B x N_IN]: uniform in [-3, 3), so that x1 = F x (unit rows, evaluation
 * BatchNorm with mean 0, var 1) crosses V_th = 2 for some neurons only. */
static void inputs(float *x, int rows) {
    rng_uniform_fill(5, RNG_TEST, 0, 3, x, (long)rows * N_IN);
    for (long k = 0; k < (long)rows * N_IN; k++)
        x[k] = 6.0f * x[k] - 3.0f;
}

/* The a of a t-step simulation of the batch x, into a [B x N]; x1 too. */
static void simulate_t(fsnn_model *m, const fsnn_cfg *cfg, const float *x, int t, float *a,
                       float *x1) {
    model_ws *ws = NULL;
    model_stats st;
    memset(&st, 0, sizeof st);
    m->T = t;
    EXPECT_OK(model_ws_create(&ws, m, cfg, B));
    EXPECT_OK(model_input(m, ws, x, B, 0, NULL, 0, 1));
    model_simulate(m, ws, B, &st);
    memcpy(a, model_ws_a(ws), sizeof(float) * B * N);
    memcpy(x1, model_ws_x1(ws), sizeof(float) * B * N);
    model_ws_destroy(&ws);
    m->T = T;
}

static void check_model_trace(int deterministic, float leak) {
    char name[64];
    snprintf(name, sizeof name, "%s leak %g", deterministic ? "deterministic" : "fast", leak);
    fsnn_cfg cfg;
    cfg_make(&cfg, deterministic, leak);
    fsnn_model *m = NULL;
    EXPECT_OK(model_create(&m, &cfg, 1, 1, N_IN, N_OUT));
    model_init(m, 3);
    static float x[B * N_IN], a_t[B * N], a_prev[B * N], x1[B * N], a_trace[B * N];
    static uint8_t labels[B];
    inputs(x, B);
    for (int b = 0; b < B; b++)
        labels[b] = (uint8_t)(b % N_OUT);

    /* The trace, then model_loss at its a = a[T]. */
    model_ws *ws = NULL;
    model_trace *tr = NULL;
    model_stats st;
    memset(&st, 0, sizeof st);
    EXPECT_OK(model_ws_create(&ws, m, &cfg, B));
    EXPECT_OK(model_trace_create(&tr, m, ws));
    EXPECT_OK(model_input(m, ws, x, B, 0, NULL, 0, 1));
    EXPECT_OK(model_simulate_trace(m, ws, B, &st, tr));
    memcpy(a_trace, model_ws_a(ws), sizeof a_trace);
    EXPECT_OK(model_loss(m, ws, labels, B, (double)B, 0, &st));
    EXPECT(tr->samples == B, "%s: trace counted %ld samples, want %d", name, tr->samples, B);
    EXPECT(tr->res_sum[T - 1] == st.fwd_res_sum,
           "%s: residual at t = T %.17g, model_loss's %.17g (must be equal)", name,
           tr->res_sum[T - 1], st.fwd_res_sum);
    EXPECT(tr->res_max[T - 1] == st.fwd_res_max, "%s: max residual at T %.17g, model_loss's %.17g",
           name, tr->res_max[T - 1], st.fwd_res_max);

    /* The plain simulation gives the same a. */
    simulate_t(m, &cfg, x, T, a_t, x1);
    EXPECT(memcmp(a_t, a_trace, sizeof a_t) == 0, "%s: a after the trace differs from a[T]", name);

    /* Step by step against the reference. */
    memset(a_prev, 0, sizeof a_prev);
    int active_steps = 0;
    for (int t = 1; t <= T; t++) {
        simulate_t(m, &cfg, x, t, a_t, x1);
        double res_sum = 0, res_max = 0, rel_sum = 0, rel_max = 0, delta_sum = 0;
        for (int b = 0; b < B; b++) {
            const float *ab = a_t + b * N, *pb = a_prev + b * N;
            double r2 = 0, na2 = 0, d2 = 0;
            for (int i = 0; i < N; i++) {
                double z = x1[b * N + i];
                for (int j = 0; j < N; j++)
                    z += (double)m->W[i * N + j] * ab[j];
                z /= m->vth;
                double f = z < 0 ? 0 : (z > 1 ? 1 : z);
                r2 += (f - ab[i]) * (f - ab[i]);
                na2 += (double)ab[i] * ab[i];
                d2 += ((double)ab[i] - pb[i]) * ((double)ab[i] - pb[i]);
            }
            double res = sqrt(r2), rel = na2 > 0 ? res / sqrt(na2) : (res > 0 ? 1.0 : 0.0);
            res_sum += res;
            rel_sum += rel;
            delta_sum += sqrt(d2);
            res_max = fmax(res_max, res);
            rel_max = fmax(rel_max, rel);
            active_steps += na2 > 0;
        }
        char what[96];
        snprintf(what, sizeof what, "%s t=%d residual sum", name, t);
        EXPECT_NEAR(tr->res_sum[t - 1], res_sum, 1e-5 * B, 0.0, what);
        snprintf(what, sizeof what, "%s t=%d residual max", name, t);
        EXPECT_NEAR(tr->res_max[t - 1], res_max, 1e-5, 0.0, what);
        /* ||a|| >= 1/t where a != 0, so rel's error is at most t times res's. */
        snprintf(what, sizeof what, "%s t=%d relative sum", name, t);
        EXPECT_NEAR(tr->rel_sum[t - 1], rel_sum, 1e-5 * B * t, 0.0, what);
        snprintf(what, sizeof what, "%s t=%d relative max", name, t);
        EXPECT_NEAR(tr->rel_max[t - 1], rel_max, 1e-5 * t, 0.0, what);
        snprintf(what, sizeof what, "%s t=%d delta sum", name, t);
        EXPECT_NEAR(tr->delta_sum[t - 1], delta_sum, 1e-5 * B, 0.0, what);
        memcpy(a_prev, a_t, sizeof a_t);
    }
    /* A case where nothing fires would check little. */
    EXPECT(active_steps > B * T / 2, "%s: only %d of %d (sample, step) pairs have spikes", name,
           active_steps, B * T);

    /* The same batch again through the same workspace and trace (nothing
     * may carry over from the last batch, such as a[T] as its a[0]): the
     * sums double (up to the rounding of adding group sums: 1e-12
     * relative), the maxima stay. */
    double once[MODEL_TRACE_N * T];
    memcpy(once, tr->sums, sizeof once);
    EXPECT_OK(model_input(m, ws, x, B, 0, NULL, 0, 1));
    EXPECT_OK(model_simulate_trace(m, ws, B, &st, tr));
    int same = tr->samples == 2 * B;
    for (int i = 0; i < MODEL_TRACE_N; i++)
        for (int t = 0; t < T; t++) {
            double want = (i == 1 || i == 3) ? once[i * T + t] : 2 * once[i * T + t];
            same &= fabs(tr->sums[i * T + t] - want) <= 1e-12 * fabs(want);
        }
    EXPECT(same, "%s: a second identical batch does not double the sums", name);

    /* A trace made for other T is refused. */
    m->T = T + 1;
    EXPECT_FAILS(model_simulate_trace(m, ws, B, &st, tr), "time steps");
    m->T = T;
    model_trace_destroy(&tr);
    EXPECT(tr == NULL, "model_trace_destroy leaves the pointer set");
    model_ws_destroy(&ws);
    model_destroy(&m);
}

/* trainer_evaluate_trace over several batches: the same evaluation as
 * trainer_evaluate, and its residual at t = T averages to the evaluation's
 * test_fwd_residual (sums in another order: 1e-12 relative). */
static void check_trainer_trace(void) {
    enum { SAMPLES = 150 };
    fsnn_cfg cfg;
    cfg_make(&cfg, 1, 0.95f);
    fsnn_model *m = NULL;
    EXPECT_OK(model_create(&m, &cfg, 1, 1, N_IN, N_OUT));
    model_init(m, 4);
    static uint8_t images[SAMPLES * N_IN], labels[SAMPLES];
    for (int k = 0; k < SAMPLES * N_IN; k++)
        images[k] = (uint8_t)((k * 37 + k / 7) % 256);
    for (int k = 0; k < SAMPLES; k++)
        labels[k] = (uint8_t)(k % N_OUT);
    trainer_data data = {.images = images,
                         .labels = labels,
                         .n = SAMPLES,
                         .dim = N_IN,
                         .channels = 1,
                         .height = 1,
                         .width = N_IN,
                         .mean = {0.5f},
                         .std = {0.25f}};
    trainer_epoch plain, traced;
    memset(&plain, 0, sizeof plain);
    memset(&traced, 0, sizeof traced);
    double fire_plain = 0, fire_traced = 0;
    model_trace *tr = NULL;
    fsnn_net *net = NULL;
    EXPECT_OK(net_model_create(&net, m, &cfg, TRAINER_BMAX(&cfg)));
    EXPECT_OK(trainer_evaluate(&cfg, net, &data, &plain, &fire_plain, reduce_local()));
    EXPECT_OK(trainer_evaluate_trace(&cfg, net, &data, &traced, &fire_traced, &tr, reduce_local()));
    EXPECT(tr != NULL && tr->samples == SAMPLES, "trace counted %ld samples, want %d",
           tr ? tr->samples : -1L, SAMPLES);
    EXPECT(traced.test_acc == plain.test_acc && traced.test_loss == plain.test_loss,
           "evaluation with the trace differs: acc %g/%g, loss %g/%g", traced.test_acc,
           plain.test_acc, traced.test_loss, plain.test_loss);
    EXPECT(fire_traced == fire_plain, "firing rate with the trace %g, without %g", fire_traced,
           fire_plain);
    if (tr)
        EXPECT_NEAR(tr->res_sum[T - 1] / tr->samples, plain.test_fwd_residual, 0.0, 1e-12,
                    "trace residual at T against test_fwd_residual");
    EXPECT(plain.test_fwd_residual > 0, "test_fwd_residual %g", plain.test_fwd_residual);
    model_trace_destroy(&tr);
    net_destroy(&net);
}

int main(void) {
    check_model_trace(1, 1.0f);
    check_model_trace(1, 0.95f);
    check_model_trace(0, 0.95f);
    check_trainer_trace();
    return check_finish("trace");
}
