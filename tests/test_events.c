/* Event input (N-MNIST, SPEC §1): the model takes step t's input current
 * from frame t and the fixed point the frames' weighted average.
 *
 * 1. Frames that all equal one image give that image as their average, bit
 *    for bit, and the simulation on them gives the a of the static input,
 *    bit for bit: training mode with both dropout masks, FC and conv, IF
 *    and LIF, deterministic (several micro-shards) and fast mode.
 * 2. Step t's current is BN(F x[t] + b), checked against a hand-written
 *    simulation fed with F x[t] computed by plain loops. The numbers are
 *    chosen so that every input current is exact in float: F in multiples
 *    of 1/8, 0/1 frames, T = 4 (IF weights 1/4), evaluation BatchNorm with
 *    scale exactly 1 (weight sqrtf(var + eps)) and shift 0; the feedback
 *    product is the model's own dense one. The model's a must then equal
 *    the reference's bit for bit; frames that change over time must also
 *    give another a than their average as static input (the per-step path
 *    is really taken).
 * 3. Misuse is refused: a workspace not made for event data, or frames of
 *    another length than the model's time steps. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bn.h"
#include "check.h"
#include "config.h"
#include "linop.h"
#include "model.h"
#include "rng.h"
#include "testutil.h"

enum { B = 13 };

static void cfg_make(fsnn_cfg *cfg, int deterministic, float leak, int T) {
    config_defaults(cfg);
    testutil_cfg_variant(cfg, 0); /* the clean average: frames equal to it give x1 itself */
    cfg->data_dataset = DATASET_NMNIST;
    cfg->model_time_steps = T;
    cfg->neuron_leak = leak;
    cfg->parallel_deterministic = deterministic;
    cfg->parallel_micro_batch = 4;
    cfg->train_batch = B;
    cfg->train_test_batch = B;
}

/* 1: identical frames against the static input. */
static void check_static_equivalence(const char *net, int deterministic, float leak) {
    enum { T = 6 };
    fsnn_cfg cfg;
    cfg_make(&cfg, deterministic, leak, T);
    snprintf(cfg.model_net, sizeof cfg.model_net, "%s", net);
    cfg.model_hidden = strchr(net, 'C') ? 0 : atoi(net);
    fsnn_model *m = NULL;
    EXPECT_OK(model_create(&m, &cfg, 2, 6, 6, 10));
    model_init(m, 7);
    const int nin = m->n_in, n = m->n;
    float *x = malloc(sizeof(float) * B * nin), *xbar = malloc(sizeof(float) * B * nin);
    float *frames = malloc(sizeof(float) * B * T * nin), *a0 = malloc(sizeof(float) * B * n);
    long ids[B];
    for (int b = 0; b < B; b++)
        ids[b] = 100 + b;
    rng_uniform_fill(11, RNG_TEST, 0, 1, x, (long)B * nin);
    for (long k = 0; k < (long)B * nin; k++)
        x[k] = 4.0f * x[k] - 1.0f;
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++)
            memcpy(frames + ((long)b * T + t) * nin, x + (long)b * nin, sizeof(float) * nin);
    model_event_average(m, frames, T, B, 0, xbar);
    EXPECT(memcmp(x, xbar, sizeof(float) * B * nin) == 0,
           "%s: the average of equal frames is not the frame", net);

    model_ws *ws = NULL;
    model_stats st;
    memset(&st, 0, sizeof st);
    EXPECT_OK(model_ws_create(&ws, m, &cfg, B));
    model_prepare_weights(m, 0);
    EXPECT_OK(model_input(m, ws, x, B, 1, ids, 3, 5));
    model_simulate(m, ws, B, &st);
    memcpy(a0, model_ws_a(ws), sizeof(float) * B * n);
    EXPECT_OK(model_input(m, ws, xbar, B, 1, ids, 3, 5));
    EXPECT_OK(model_set_events(m, ws, frames, T));
    model_simulate(m, ws, B, &st);
    long diff = 0, active = 0;
    for (long k = 0; k < (long)B * n; k++) {
        diff += memcmp(&a0[k], &model_ws_a(ws)[k], sizeof(float)) != 0;
        active += a0[k] > 0.0f;
    }
    EXPECT(diff == 0, "%s, %s, leak %g: %ld of %ld rates differ from the static input's", net,
           deterministic ? "deterministic" : "fast", leak, diff, (long)B * n);
    EXPECT(active > 0, "%s: no neuron fired: the comparison says nothing", net);
    model_ws_destroy(&ws);
    model_destroy(&m);
    free(x);
    free(xbar);
    free(frames);
    free(a0);
}

/* 2: per-step currents against a hand-written simulation. */
enum { NIN = 6, N = 5, TT = 4 };

static void check_step_currents(void) {
    fsnn_cfg cfg;
    cfg_make(&cfg, 1, 1.0f, TT);
    cfg.model_hidden = N;
    snprintf(cfg.model_net, sizeof cfg.model_net, "%d (F%d)", N, N);
    cfg.model_spike_product = SPIKE_DENSE;
    fsnn_model *m = NULL;
    EXPECT_OK(model_create(&m, &cfg, 1, 1, NIN, 3));
    model_init(m, 9);
    /* F in multiples of 1/8 in [-1, 1], b = 0; BatchNorm the identity. */
    for (int i = 0; i < N * NIN; i++)
        m->p.F[i] = (float)((i * 7 + 3) % 17 - 8) / 8.0f;
    for (int j = 0; j < N; j++) {
        m->p.Fb[j] = 0.0f;
        m->bn_mean[j] = 0.0f;
        m->bn_var[j] = 1.0f;
        m->p.bn_w[j] = sqrtf(m->bn_var[j] + BN_EPS);
        m->p.bn_b[j] = 0.0f;
    }
    model_prepare_weights(m, 0);
    static float frames[B * TT * NIN], xbar[B * NIN], cur[TT][B * N];
    for (int k = 0; k < B * TT * NIN; k++) /* 0/1, different in every frame */
        frames[k] = (float)(((unsigned)k * 2654435761u >> 7) & 1u);
    model_event_average(m, frames, TT, B, 0, xbar);
    for (int t = 0; t < TT; t++)
        for (int b = 0; b < B; b++)
            for (int j = 0; j < N; j++) {
                double s = 0.0;
                for (int i = 0; i < NIN; i++)
                    s += (double)m->p.F[j * NIN + i] * frames[((long)b * TT + t) * NIN + i];
                cur[t][b * N + j] = (float)s;
            }

    /* Reference: IF, reset by subtraction, u += W s[t-1] + x1[t]. */
    static float u[B * N], s[B * N], acc[B * N], ws_cur[B * N], ref[B * N];
    static int idx[B * N];
    memset(acc, 0, sizeof acc);
    for (int t = 0; t < TT; t++) {
        if (t == 0) {
            memcpy(u, cur[0], sizeof u);
        } else {
            linop_spike(&m->fb_op, m->W, m->Wt, s, ws_cur, idx, B, 0, NULL);
            for (int k = 0; k < B * N; k++)
                u[k] += ws_cur[k] + cur[t][k];
        }
        for (int k = 0; k < B * N; k++) {
            s[k] = u[k] >= m->vth ? 1.0f : 0.0f;
            u[k] -= m->vth * s[k];
            acc[k] += s[k];
        }
    }
    for (int k = 0; k < B * N; k++)
        ref[k] = acc[k] / (float)TT;

    model_ws *ws = NULL;
    model_stats st;
    memset(&st, 0, sizeof st);
    EXPECT_OK(model_ws_create(&ws, m, &cfg, B));
    EXPECT_OK(model_input(m, ws, xbar, B, 0, NULL, 0, 1));
    static float a_static[B * N];
    model_simulate(m, ws, B, &st);
    memcpy(a_static, model_ws_a(ws), sizeof a_static);
    EXPECT_OK(model_set_events(m, ws, frames, TT));
    model_simulate(m, ws, B, &st);
    const float *a = model_ws_a(ws);
    long diff = 0, moved = 0, fired = 0;
    for (int k = 0; k < B * N; k++) {
        diff += a[k] != ref[k];
        moved += a[k] != a_static[k];
        fired += ref[k] > 0.0f;
    }
    EXPECT(diff == 0, "event input: %ld of %d rates differ from the hand-written simulation", diff,
           B * N);
    EXPECT(fired > 0 && fired < B * N, "reference fired in %ld of %d neurons: a weak check", fired,
           B * N);
    EXPECT(moved > 0, "frames that change give the same a as their average: per-step input unused");

    /* 3: misuse. */
    EXPECT_FAILS(model_set_events(m, ws, frames, TT + 1), "5 frames per sample",
                 "simulates 4 steps");
    model_ws_destroy(&ws);
    fsnn_cfg plain = cfg;
    plain.data_dataset = DATASET_FMNIST;
    EXPECT_OK(model_ws_create(&ws, m, &plain, B));
    EXPECT_FAILS(model_set_events(m, ws, frames, TT), "data.dataset = nmnist");
    model_ws_destroy(&ws);
    model_destroy(&m);
}

int main(void) {
    check_static_equivalence("24 (F24)", 1, 1.0f);
    check_static_equivalence("24 (F24)", 0, 0.95f);
    check_static_equivalence("4C3s (F4C3)", 1, 0.95f);
    check_static_equivalence("4C3 (F4C3)", 0, 1.0f);
    check_step_currents();
    return check_finish("events");
}
