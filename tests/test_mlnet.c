/* mlnet: the multi-layer feedback SNN of Eq. 10 through the model.
 *
 * 1. Gradients (SPEC §3 check) on small nets, conv with a transposed-conv
 *    feedback, conv with pooling, FC, with BatchNorm in the loop on running
 *    statistics (model.h loop_bn_running: f is then a plain function of the
 *    parameters): the adjoint solved exactly (LAPACK, dense J^T built by
 *    applying J^T to unit vectors) agrees with Broyden; deterministic sums
 *    (two micro-shards) agree with float sums; every parameter's gradient
 *    agrees with central finite differences of L(a*(theta)), a* the fixed
 *    point of f found by iterating f (independent of the simulation).
 * 2. The simulation approaches the fixed point: ||f(a[T]) - a[T]|| falls
 *    as T grows, in evaluation and with BatchNorm on batch statistics in
 *    training (the rule of docs/multilayer.md); the trace's last step
 *    equals model_loss's residual.
 * 3. Dense and event-driven spike products give the same rates; a lone row
 *    group's event products on one thread and on three give the same bits.
 * 4. The adjoint's chain in oneDNN's blocked layout (mlnet_block): on a net
 *    whose maps all come in 16-channel blocks, BatchNorm in the loop as the
 *    reference's (its batch statistics' Jacobian, channel sums inside every
 *    J^T) and dropout, a training step's gradients are the same bits as
 *    with the chain in NCHW, in fast mode and in deterministic mode (two
 *    micro-shards, fixed-point sums). */
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "model.h"
#include "rng.h"
#include "status.h"
#include "testutil.h"

enum { MB = 4, PMAX = 4096 };

typedef struct {
    const char *net;
    int c, h, w;
    int x_stream; /* RNG stream of the input */
    float eps;    /* FD step */
} ml_net;

static const ml_net net_deconv = {"4C3-6C3s (F4C3u)", 1, 8, 8, 7, 5e-4f};
static const ml_net net_pool = {"4C3-P2-6C3 (F4C3u)", 1, 8, 8, 4, 5e-4f};
static const ml_net net_fc = {"12-10 (F12)", 1, 4, 4, 5, 1e-3f};
static const ml_net net_blocks = {"16C3-16C3s (F16C3u)", 1, 8, 8, 9, 5e-4f};

static const long sample_ids[MB] = {101, 7, 55, 3};
static const uint8_t labels[MB] = {0, 3, 1, 4};
enum { NOUT = 5, EPOCH = 2 };
static const uint64_t SEED = 17;

static void fill_cfg(fsnn_cfg *c, const ml_net *g, cfg_solver kind, float dropout, int T) {
    memset(c, 0, sizeof *c);
    testutil_cfg_variant(c, 0);
    c->run_seed = SEED;
    snprintf(c->model_net, sizeof c->model_net, "%s", g->net);
    c->model_time_steps = T;
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

/* Generic values for every tensor and the running statistics: nothing at
 * its initial value, g < 1 away from the clamp. */
static void move_params(fsnn_model *m) {
    float r[4096];
    rng_uniform_fill(41, RNG_TEST, 0, 0, r, 4096);
    int k = 0;
    for (int j = 0; j < m->channels; j++) {
        m->p.bn_w[j] = 0.7f + 0.6f * r[k++];
        m->p.bn_b[j] = 0.8f * r[k++];
        m->p.Fb[j] = r[k++] - 0.5f;
    }
    for (int j = 0; j < m->n_out; j++)
        m->p.bo[j] = r[k++] - 0.5f;
    m->p.g[0] = 0.9f;
    for (int l = 1; l < m->ml->L; l++) {
        mlnet_layer *ly = &m->ml->layer[l];
        if (ly->kind == NETSPEC_POOL) continue;
        for (int c = 0; c < ly->C; c++) {
            ly->gamma[c] = 0.7f + 0.6f * r[k++];
            ly->beta[c] = 0.8f * r[k++] - 0.2f;
            ly->b[c] = r[k++] - 0.5f;
            ly->run_mean[c] = 0.6f * r[k++] - 0.3f;
            ly->run_var[c] = 0.5f + r[k++];
        }
    }
}

/* Inputs uniform in [-2, 2]. */
static void make_input(const ml_net *g, float *x) {
    const int nin = g->c * g->h * g->w;
    rng_uniform_fill(41, RNG_TEST, 0, (uint32_t)g->x_stream, x, (long)MB * nin);
    for (int k = 0; k < MB * nin; k++)
        x[k] = 4.0f * x[k] - 2.0f;
}

static void forward(fsnn_model *m, model_ws *ws, const float *x) {
    model_prepare_weights(m, 0);
    EXPECT_OK(model_input(m, ws, x, MB, 1, sample_ids, EPOCH, SEED));
    model_fixed_point(m, ws, MB, 200);
}

static void test_grad(const ml_net *net, float dropout) {
    char tag[96];
    snprintf(tag, sizeof tag, "%s%s", net->net, dropout > 0.0f ? " (dropout)" : "");
    fsnn_cfg ce, cb;
    fill_cfg(&ce, net, SOLVER_EXACT, dropout, 8);
    fill_cfg(&cb, net, SOLVER_BROYDEN, dropout, 8);
    fsnn_model *m = NULL;
    model_ws *wse = NULL, *wsb = NULL;
    EXPECT_OK(model_create(&m, &ce, net->c, net->h, net->w, NOUT));
    if (!m || !m->ml || m->n_params > PMAX) {
        EXPECT(0, "%s: not a multi-layer model within the test's buffers", tag);
        model_destroy(&m);
        return;
    }
    EXPECT_OK(model_ws_create(&wse, m, &ce, MB));
    EXPECT_OK(model_ws_create(&wsb, m, &cb, MB));
    model_init(m, SEED);
    m->loop_bn_running = 1;
    move_params(m);
    static float x[MB * 1024];
    make_input(net, x);

    static float ge[PMAX], gb[PMAX], gd[PMAX];
    model_stats st;
    memset(&st, 0, sizeof st);
    forward(m, wse, x);
    EXPECT_OK(model_loss(m, wse, labels, MB, (double)MB, 1, &st));
    /* A parameter step of eps moves z by about eps: none may cross a kink. */
    double kink = model_ws_kink(wse);
    EXPECT(kink > 0.2 * net->eps, "%s: some z is %g from a clamp kink: move the test point", tag,
           kink);
    EXPECT(st.fwd_res_max < 1e-5, "%s: forward residual at a* = %g", tag, st.fwd_res_max);
    memcpy(ge, m->grads, sizeof(float) * m->n_params);
    const float *a = model_ws_a(wse);
    int inside = 0;
    for (int k = 0; k < MB * m->n; k++)
        inside += a[k] > 0.0f && a[k] < 1.0f;
    EXPECT(inside >= MB * m->n / 5, "%s: only %d of %d rates strictly inside (0, 1)", tag, inside,
           MB * m->n);
    double L0 = model_loss_value(m, wse, labels, MB);
    EXPECT_NEAR(st.loss / MB, L0, 1e-9, 1e-6, "model_loss vs model_loss_value");

    memset(&st, 0, sizeof st);
    forward(m, wsb, x);
    EXPECT_OK(model_loss(m, wsb, labels, MB, (double)MB, 1, &st));
    memcpy(gb, m->grads, sizeof(float) * m->n_params);
    EXPECT(st.adj_samples == MB && st.adj_iters_sum > 0.0 && st.adj_iters_sum <= 60.0 * MB,
           "%s: broyden iterations %g over %ld samples", tag, st.adj_iters_sum, st.adj_samples);
    double dmax = 0.0, gmax = 0.0;
    for (size_t k = 0; k < m->n_params; k++) {
        dmax = fmax(dmax, fabs(ge[k] - gb[k]));
        gmax = fmax(gmax, fabs(ge[k]));
    }
    EXPECT(dmax <= 1e-4 * gmax, "%s: exact vs broyden gradients differ by %g (max %g)", tag, dmax,
           gmax);

    /* Deterministic mode, two micro-shards, fixed-point sums: the float
     * sums' gradient up to their rounding. */
    fsnn_cfg cd = ce;
    cd.parallel_deterministic = 1;
    cd.parallel_micro_batch = MB / 2;
    model_ws *wsd = NULL;
    EXPECT_OK(model_ws_create(&wsd, m, &cd, MB));
    memset(&st, 0, sizeof st);
    forward(m, wsd, x);
    EXPECT_OK(model_loss(m, wsd, labels, MB, (double)MB, 1, &st));
    memcpy(gd, m->grads, sizeof(float) * m->n_params);
    int close = 0;
    for (size_t k = 0; k < m->n_params; k++)
        close += fabs((double)gd[k] - ge[k]) <= 1e-5 * fabs(ge[k]) + 1e-6 * gmax;
    EXPECT(close == (int)m->n_params,
           "%s: %d of %zu deterministic gradient values within float rounding", tag, close,
           m->n_params);
    model_ws_destroy(&wsd);

    /* Finite differences: every entry of tensors up to 200 values, a random
     * third of larger ones. */
    static double fd[PMAX];
    static unsigned char pick[PMAX];
    float u01[PMAX];
    rng_uniform_fill(41, RNG_TEST, 1, 0, u01, (long)m->n_params);
    for (int t = 0; t < m->n_tensors; t++) {
        const model_tensor_info *ti = &m->info[t];
        for (size_t k = ti->offset; k < ti->offset + ti->count; k++)
            pick[k] = ti->count <= 200 || u01[k] < 1.0f / 3.0f;
    }
    const float eps = net->eps;
    for (size_t k = 0; k < m->n_params; k++) {
        if (!pick[k]) continue;
        float p0 = m->params[k], pp = p0 + eps, pm = p0 - eps;
        m->params[k] = pp;
        forward(m, wse, x);
        double lp = model_loss_value(m, wse, labels, MB);
        m->params[k] = pm;
        forward(m, wse, x);
        double lm = model_loss_value(m, wse, labels, MB);
        m->params[k] = p0;
        fd[k] = (lp - lm) / ((double)pp - (double)pm);
    }
    /* The FD's float noise is about 1e-7 of the loss over the step (1e-4
     * here): only gradients well above it are compared as vectors. */
    EXPECT(testutil_grad_vs_fd(m, ge, fd, pick, tag, 1e-4, 1e-2) == 0,
           "%s: gradient against finite differences (messages above)", tag);
    model_ws_destroy(&wse);
    model_ws_destroy(&wsb);
    model_destroy(&m);
}

/* The mean forward residual per sample after a simulation of T steps, and
 * (eval only) the trace's residual at its last step. */
static double residual_at(const ml_net *net, int T, int training, double *trace_last) {
    fsnn_cfg c;
    fill_cfg(&c, net, SOLVER_BROYDEN, 0.0f, T);
    fsnn_model *m = NULL;
    model_ws *ws = NULL;
    model_trace *tr = NULL;
    double res = NAN;
    EXPECT_OK(model_create(&m, &c, net->c, net->h, net->w, NOUT));
    EXPECT_OK(model_ws_create(&ws, m, &c, MB));
    if (!m || !ws) return res;
    model_init(m, SEED);
    move_params(m);
    static float x[MB * 1024];
    make_input(net, x);
    model_prepare_weights(m, 0);
    EXPECT_OK(model_input(m, ws, x, MB, training, sample_ids, EPOCH, SEED));
    model_stats st;
    memset(&st, 0, sizeof st);
    if (trace_last) {
        EXPECT_OK(model_trace_create(&tr, m, ws));
        EXPECT_OK(model_simulate_trace(m, ws, MB, &st, tr));
        *trace_last = tr ? tr->res_sum[T - 1] / MB : NAN;
    } else {
        model_simulate(m, ws, MB, &st);
    }
    EXPECT_OK(model_loss(m, ws, labels, MB, (double)MB, 0, &st));
    res = st.fwd_res_sum / MB;
    model_trace_destroy(&tr);
    model_ws_destroy(&ws);
    model_destroy(&m);
    return res;
}

static void test_convergence(const ml_net *net) {
    for (int training = 0; training <= 1; training++) {
        double last = NAN, r[3];
        const int Ts[3] = {5, 25, 125};
        for (int i = 0; i < 3; i++)
            r[i] = residual_at(net, Ts[i], training, training ? NULL : &last);
        printf("%-26s %s: ||f(a[T]) - a[T]|| T=5 %.4g, T=25 %.4g, T=125 %.4g\n", net->net,
               training ? "training (batch BN)" : "evaluation", r[0], r[1], r[2]);
        /* The rates' error falls like 1/T (SPEC §2, Figure 1): a factor 5
         * in T gives at least a factor 2 in evaluation. In training the
         * statistics of the loop's BatchNorm settle with the rates, which
         * adds a log(T)/T term: a factor 25 gives at least 2. */
        if (training)
            EXPECT(r[1] < r[0] && r[2] < r[1] && r[2] < 0.5 * r[0],
                   "%s (training): residual does not fall with T", net->net);
        else
            EXPECT(r[1] < 0.5 * r[0] && r[2] < 0.5 * r[1],
                   "%s (evaluation): residual does not fall with T", net->net);
        if (!training)
            EXPECT_NEAR(last, r[2], 1e-6, 1e-5, "trace's last step vs model_loss's residual");
    }
}

/* A training simulation of the test's input, its figures into *st. */
static void simulate(fsnn_model *m, model_ws *ws, const ml_net *net, model_stats *st) {
    static float x[MB * 1024];
    make_input(net, x);
    model_prepare_weights(m, 0);
    EXPECT_OK(model_input(m, ws, x, MB, 1, sample_ids, EPOCH, SEED));
    memset(st, 0, sizeof *st);
    model_simulate(m, ws, MB, st);
}

/* a[T] with the spike products forced to one path; returns the steps of
 * each path through *dense, *event. */
static void rates_with(const ml_net *net, cfg_spike_product mode, float *a, int *dense,
                       int *event) {
    fsnn_cfg c;
    fill_cfg(&c, net, SOLVER_BROYDEN, 0.2f, 12);
    c.model_spike_product = mode;
    fsnn_model *m = NULL;
    model_ws *ws = NULL;
    EXPECT_OK(model_create(&m, &c, net->c, net->h, net->w, NOUT));
    EXPECT_OK(model_ws_create(&ws, m, &c, MB));
    if (!m || !ws) return;
    model_init(m, SEED);
    move_params(m);
    model_stats st;
    simulate(m, ws, net, &st);
    memcpy(a, model_ws_a(ws), sizeof(float) * MB * (size_t)m->n);
    *dense = st.sim.dense_steps;
    *event = st.sim.event_steps;
    model_ws_destroy(&ws);
    model_destroy(&m);
}

static void test_event(const ml_net *net) {
    static float ad[MB * 1024], ae[MB * 1024];
    int dd = 0, de = 0, ed = 0, ee = 0;
    rates_with(net, SPIKE_DENSE, ad, &dd, &de);
    rates_with(net, SPIKE_EVENT, ae, &ed, &ee);
    EXPECT(dd > 0 && de == 0 && ee > 0 && ed == 0,
           "%s: dense run %d/%d, event run %d/%d (dense/event products)", net->net, dd, de, ed, ee);
    /* The two paths add the same terms in other orders (conv.h): a spike
     * may flip only where a potential lies within rounding of V_th. */
    int differ = 0;
    for (int k = 0; k < MB * 1024; k++)
        differ += ad[k] != ae[k];
    printf("%-26s dense vs event: %d rates differ\n", net->net, differ);
    EXPECT(differ == 0, "%s: %d rates differ between dense and event products", net->net, differ);
}

/* A lone row group's event products share its samples among the threads
 * (mlnet.c): the same bits on one thread and on three (rows split 1, 1, 2). */
static void test_threads(const ml_net *net) {
    static float a1[MB * 1024], a3[MB * 1024];
    int d1 = 0, e1 = 0, d3 = 0, e3 = 0;
    const int team = omp_get_max_threads();
    omp_set_num_threads(1);
    rates_with(net, SPIKE_EVENT, a1, &d1, &e1);
    omp_set_num_threads(3);
    rates_with(net, SPIKE_EVENT, a3, &d3, &e3);
    omp_set_num_threads(team);
    EXPECT(e1 > 0 && e1 == e3, "%s: event steps %d on one thread, %d on three", net->net, e1, e3);
    EXPECT(memcmp(a1, a3, sizeof a1) == 0, "%s: rates differ between one thread and three",
           net->net);
}

/* A training step's gradients into g [m->n_params] (malloc'd), with the
 * adjoint's chain blocked where it can be (plain = 0) or in NCHW. */
static float *grads_with(const ml_net *net, int plain, int det, int *blockable, size_t *np) {
    fsnn_cfg c;
    fill_cfg(&c, net, SOLVER_BROYDEN, 0.2f, 8);
    c.model_conv = CONV_ONEDNN;
    c.model_loop_bn = LOOP_BN_REFERENCE;
    c.solver_max_iters = 20;
    c.parallel_deterministic = det;
    c.parallel_micro_batch = det ? MB / 2 : 0;
    fsnn_model *m = NULL;
    model_ws *ws = NULL;
    float *g = NULL;
    EXPECT_OK(model_create(&m, &c, net->c, net->h, net->w, NOUT));
    if (m) EXPECT_OK(model_ws_create(&ws, m, &c, MB));
    if (m && ws && m->ml && (g = malloc(sizeof(float) * m->n_params))) {
        model_init(m, SEED);
        move_params(m);
        m->ml->plain_chain = plain;
        *blockable = mlnet_blockable(m->ml, &m->fb_op);
        model_stats st;
        simulate(m, ws, net, &st);
        EXPECT_OK(model_loss(m, ws, labels, MB, (double)MB, 1, &st));
        memcpy(g, m->grads, sizeof(float) * m->n_params);
        *np = m->n_params;
    }
    EXPECT(g != NULL, "%s: no multi-layer model or no memory", net->net);
    model_ws_destroy(&ws);
    model_destroy(&m);
    return g;
}

static void test_blocked(const ml_net *net, int det) {
    int bb = 0, bp = 0;
    size_t nb = 0, np = 0;
    float *gb = grads_with(net, 0, det, &bb, &nb), *gp = grads_with(net, 1, det, &bp, &np);
    const char *mode = det ? "deterministic" : "fast";
    EXPECT(bb == 1 && bp == 0, "%s (%s): blocked chain %d, with plain_chain %d", net->net, mode, bb,
           bp);
    if (gb && gp && nb == np) {
        double gmax = 0.0;
        for (size_t k = 0; k < nb; k++)
            gmax = fmax(gmax, fabs(gb[k]));
        EXPECT(gmax > 0.0 && isfinite(gmax), "%s (%s): gradient max %g", net->net, mode, gmax);
        EXPECT_SAME_BITS(gb, gp, nb, "gradients with the chain blocked and in NCHW");
    }
    free(gb);
    free(gp);
}

int main(void) {
    test_grad(&net_deconv, 0.0f);
    test_grad(&net_deconv, 0.2f);
    test_grad(&net_pool, 0.0f);
    test_grad(&net_fc, 0.2f);
    test_convergence(&net_deconv);
    test_convergence(&net_fc);
    test_event(&net_pool);
    test_event(&net_fc);
    test_threads(&net_deconv);
    test_threads(&net_pool);
    test_blocked(&net_blocks, 0);
    test_blocked(&net_blocks, 1);
    return check_finish("mlnet");
}
