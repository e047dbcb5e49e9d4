/* net_model: the net interface (net.h) over the one-process model, for nets
 * of one layer and of several; the layer pipeline (mpi/pipe.h) extends it. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h" // defines: clock_seconds
#include "net.h"
#include "status.h"

typedef struct {
    model_ws *ws;
    float *xev; /* [bmax x n_in] event data's average input */
} net_model_impl;

static int net_model_init(fsnn_net *n, uint64_t seed) {
    model_init(n->model, seed);
    return FSNN_OK;
}

/* The batch's input x, or for event data the frames' average, through the
 * input branch; then the frames drive the simulations. */
static int net_model_input(fsnn_net *n, const net_batch *b, int training) {
    net_model_impl *s = n->impl;
    fsnn_model *m = n->model;
    const float *x = b->x;
    if (b->frames) {
        model_event_average(m, b->frames, m->T, b->B, training, s->xev);
        x = s->xev;
    }
    CHECK(model_input(m, s->ws, x, b->B, training, b->ids, b->epoch, b->seed));
    return b->frames ? model_set_events(m, s->ws, b->frames, m->T) : FSNN_OK;
}

static int net_model_train_batch(fsnn_net *n, const net_batch *b, const reduce_ops *red,
                                 model_stats *st) {
    net_model_impl *s = n->impl;
    fsnn_model *m = n->model;
    double t0 = clock_seconds();
    model_prepare_weights(m, 1);
    model_ws_set_batch(s->ws, red, b->global, b->n_shards, b->shard_len);
    CHECK(net_model_input(n, b, 1));
    double t1 = clock_seconds();
    model_simulate(m, s->ws, b->B, st);
    st->t_input += t1 - t0;
    st->t_sim += clock_seconds() - t1;
    return model_loss(m, s->ws, b->labels, b->B, (double)b->global, 1, st);
}

static int net_model_prepare_eval(fsnn_net *n, long batches) {
    /* The reference's evaluation runs one power iteration per test batch
     * on the training's u, v; here as many on copies, the same on every
     * rank, and the last W serves every batch (docs/fidelity.md). */
    model_prepare_eval(n->model, n->model->ref ? (int)batches : 0);
    return FSNN_OK;
}

static int net_model_eval_batch(fsnn_net *n, const net_batch *b, model_stats *st, model_trace *tr) {
    net_model_impl *s = n->impl;
    CHECK(net_model_input(n, b, 0));
    if (tr)
        CHECK(model_simulate_trace(n->model, s->ws, b->B, st, tr));
    else
        model_simulate(n->model, s->ws, b->B, st);
    return model_loss(n->model, s->ws, b->labels, b->B, (double)b->B, 0, st);
}

static int net_model_trace_create(fsnn_net *n, model_trace **tr) {
    const net_model_impl *s = n->impl;
    return model_trace_create(tr, n->model, s->ws);
}

/* Gradients are the same on every rank; the loss is each rank's own. */
static int net_model_all_finite(fsnn_net *n, double loss, const reduce_ops *red, int *ok) {
    double flag = (isfinite(loss) && isfinite(reduce_maxabs(n->grads, n->n_params))) ? 0.0 : 1.0;
    CHECK(red->max_f64(red->ctx, &flag, 1));
    *ok = flag == 0.0;
    return FSNN_OK;
}

static void net_model_after_step(fsnn_net *n) {
    model_after_step(n->model);
}

static int net_model_spectral_norm(fsnn_net *n, double *power, double *exact) {
    *power = model_spectral_norm(n->model, 30);
    *exact = NAN; /* only the tensor-parallel net computes it (mpi/tpnet.h) */
    return FSNN_OK;
}

static int net_model_whole(fsnn_net *n, optim *opt, fsnn_model **m, optim **whole_opt) {
    *m = n->model;
    *whole_opt = opt;
    return FSNN_OK;
}

static int net_model_load(fsnn_net *n, optim *opt) {
    (void)n;
    (void)opt;
    return FSNN_OK; /* the checkpoint was read in place */
}

static int net_model_save(fsnn_net *n, const optim *opt, net_saved *s) {
    *s = (net_saved){.writes = 1, .model = n->model, .opt = opt, .shard = NULL};
    return FSNN_OK;
}

static void net_model_describe(const fsnn_net *n, const fsnn_cfg *cfg, int groups, char *buf,
                               size_t size) {
    (void)n;
    *buf = '\0';
    if (groups > 1)
        snprintf(buf, size, "data parallel over %d ranks, %s mode (micro-shards of %d samples)",
                 groups, cfg->parallel_deterministic ? "deterministic" : "fast",
                 cfg->parallel_micro_batch);
}

static void net_model_destroy(fsnn_net *n) {
    net_model_impl *s = n->impl;
    if (s) {
        model_ws_destroy(&s->ws);
        free(s->xev);
        free(s);
    }
    model_destroy(&n->model);
}

static const net_ops net_model_ops = {
    .init = net_model_init,
    .train_batch = net_model_train_batch,
    .prepare_eval = net_model_prepare_eval,
    .eval_batch = net_model_eval_batch,
    .trace_create = net_model_trace_create,
    .all_finite = net_model_all_finite,
    .after_step = net_model_after_step,
    .spectral_norm = net_model_spectral_norm,
    .whole = net_model_whole,
    .load = net_model_load,
    .save = net_model_save,
    .describe = net_model_describe,
    .finish = NULL,
    .destroy = net_model_destroy,
};

int net_model_create(fsnn_net **out, fsnn_model *m, const fsnn_cfg *cfg, int bmax) {
    *out = NULL;
    fsnn_net *n = calloc(1, sizeof *n);
    net_model_impl *s = calloc(1, sizeof *s);
    if (!n || !s) {
        free(n);
        free(s);
        model_destroy(&m);
        return FAIL("out of memory for a net");
    }
    n->ops = net_model_ops;
    n->kind = m->ml ? "multi-layer" : "single-layer";
    n->model = m;
    n->impl = s;
    n->params = m->params;
    n->grads = m->grads;
    n->n_params = m->n_params;
    n->n_params_all = m->n_params;
    n->neurons = model_neurons(m);
    n->n_in = m->n_in;
    n->T = m->T;
    n->n_spiking = m->n_spiking;
    n->micro_shards = 1;
    n->events = 1;
    *out = n;
    int rc = model_ws_create(&s->ws, m, cfg, bmax);
    if (rc == 0 && cfg->data_dataset == DATASET_NMNIST)
        rc = XCALLOC(&s->xev, (size_t)bmax * m->n_in);
    if (rc) net_destroy(out);
    return rc;
}

model_ws *net_model_ws(const fsnn_net *n) {
    return n->model ? ((const net_model_impl *)n->impl)->ws : NULL;
}

void net_destroy(fsnn_net **n) {
    if (!*n) return;
    (*n)->ops.destroy(*n);
    free(*n);
    *n = NULL;
}
