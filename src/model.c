/* model: the feedback SNN ("N (FN)", "CCk[s] (FCkf)", multi-layer nets
 * through mlnet), its forward pass and implicit gradients. */
#include "model.h"

#include <float.h>
#include <math.h>
#ifdef _OPENMP
#include <omp.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "bn.h"
#include "bn2d.h"
#include "clock.h"
#include "dropout.h"
#include "equil.h"
#include "fc.h"
#include "linop.h"
#include "loss.h"
#include "mlnet.h"
#include "netspec.h"
#include "reduce.h"
#include "rng.h"
#include "specnorm.h"
#include "status.h"

/* The gradient sums in the order they are reduced, as [first, end) ranges
 * of model_sum_layout's tensors: with parallel.overlap each bucket's
 * reduction is started as soon as its sums are done and travels while the
 * next bucket's are computed; without, one bucket holds all. A range never
 * splits a weight from its bias (one pass computes both). A multi-layer
 * net's layers 2..L form a fourth bucket. */
enum { MODEL_N_BUCKETS = 4 };
static const int model_buckets[3][2] = {{2, 4}, {0, 2}, {4, 5}};

/* Sums: F, Fb, Wo, bo, dL/dW, then weight and bias of each layer l >= 2. */
enum { MODEL_SUMS_BASE = 5, MODEL_SUMS_MAX = MODEL_SUMS_BASE + 2 * (NETSPEC_LAYERS_MAX - 1) };

struct model_ws {
    int Bmax;
    float *x;              /* [B x n_in] input of the batch (borrowed view) */
    float *h, *xhat, *bny; /* [B x n] input branch before/inside BN */
    float *invstd;         /* [channels] */
    float *x1;             /* [B x n] input current */
    float *dropx, *drops;  /* [B x n] masks, NULL-equivalent when no dropout */
    int use_drop;
    float *a, *u, *s, *cur;
    int *idx;
    float *f, *mv, *jac, *res;
    int *jidx, *jnnz;        /* [B x n], [B]: the non-zero entries of jac (linop_mask_lists) */
    float *logits, *dlogits; /* [B x n_out] */
    float *ga, *beta, *dx1, *tmp;
    double *stats;   /* [4 x channels] BatchNorm statistics or VJP sums */
    int64_t *bn_acc; /* [2 x channels] fixed-point accumulators of BatchNorm sums */
    float *opws;     /* [max_shards x ws_len] linop work buffers, one per row group */
    size_t ws_len;
    /* Data-parallel layout of the current batch (model_ws_set_batch). */
    const reduce_ops *red;
    int deterministic;
    int overlap;       /* bucketed gradient reductions (parallel.overlap) */
    int has_layout;    /* model_ws_set_batch was called */
    long global_batch; /* samples in the batch over all ranks */
    int n_shards;      /* this rank's micro-shards of the batch */
    int *shard_len;    /* [max_shards] rows of each, in order */
    int *group_off;    /* [max_shards] first row of each row group (model_groups) */
    int max_shards;
    size_t n_sum; /* floats of one set of summed gradients (model_sum_layout) */
    float *gsum;  /* [max_shards x n_sum] per-shard gradient sums */
    /* Deterministic mode's tree sums (reduce.h), sized at the first step
     * of a rank count: every rank's pieces, their values' places, and
     * where the other ranks' blocks of them arrive. */
    reduce_node *tnode; /* [size x REDUCE_TREE_MAX] */
    int *tnp;           /* [size] pieces of each rank */
    float **tval;       /* [size x REDUCE_TREE_MAX] */
    int tsize;          /* ranks the arrays are for */
    float *trecv;       /* [trecv_cap] */
    size_t trecv_cap;
    reduce_node *tleaf;  /* [max_shards] the leaves of one piece */
    float **tleafval;    /* [max_shards] */
    solver_ws *solver;   /* whole-batch solves (fast mode) */
    solver_ws **gsolver; /* [max_shards] one per micro-shard (deterministic mode) */
    model_stats *gstats; /* [max_shards] statistics of each micro-shard */
    int micro;           /* samples per micro-shard */
    cfg_solver solver_kind;
    int max_iters;
    double tol;
    fsnn_model *m; /* the model whose operator `apply` uses */
    int training;  /* the last model_input's mode */
    int row0;      /* a view's first row in the whole workspace */
    int ml_rc;     /* status of the last multi-layer simulation (collective in training) */
    mlnet_ws *mlw; /* multi-layer nets: the layers' buffers */
    /* model.loop_bn = reference: the layers at the adjoint's point f(a[T]),
     * where J^T is taken, apart from mlw's at a[T], where the VJP is. */
    mlnet_ws *mlw2;
    float *res2; /* [Bmax] f's residuals at that point (unused) */
    int defer;   /* model_loss_rows leaves the adjoint to model_ml_adjoint */
    int n_sums;  /* gradient sums (model_sum_layout) */
    int nb;      /* buckets of the reduction (model_buckets) */
    int bucket[MODEL_N_BUCKETS][2];
    /* Event input (model_set_events): frames [B x T x n_in] (borrowed; NULL:
     * static input), their deviation from the average x of one step, the
     * step's input current, and BatchNorm's factor per channel. */
    const float *frames;
    int frames_T;
    float *evx;     /* [Bmax x n_in] */
    float *x1t;     /* [Bmax x n] */
    float *evscale; /* [channels] */
    /* The simulation's own base point (model_set_events): the frames'
     * average and its input current, from which each step's input deviates
     * (the reference in training: its own statistics; else x and x1). */
    const float *ev_x, *ev_x1;
    float *evxs;      /* [Bmax x n_in] the simulation's average (reference) */
    float *evx1s;     /* [Bmax x n] its current (reference) */
    int ev_last_base; /* the last step sees the average, not its frame */
};

static void model_point(model_tensors *t, float *base, const fsnn_model *m) {
    t->F = base + m->info[0].offset;
    t->Fb = base + m->info[1].offset;
    t->bn_w = base + m->info[2].offset;
    t->bn_b = base + m->info[3].offset;
    t->V = base + m->info[4].offset;
    t->g = base + m->info[5].offset;
    t->Wo = base + m->info[6].offset;
    t->bo = base + m->info[7].offset;
}

/* The feedback map of a multi-layer net: from the last layer's output
 * (shape `from`) onto the first layer's (netspec_infer has checked the
 * shapes). */
static int model_feedback(linop *op, const netspec_layer *f, netspec_shape from, int n1) {
    if (f->kind == NETSPEC_FC) {
        linop_fc(op, from.c * from.h * from.w, n1);
        return FSNN_OK;
    }
    if (f->kind == NETSPEC_DECONV)
        return linop_deconv(op, from.c, from.h, from.w, f->size, f->kernel);
    return linop_conv(op, from.c, from.h, from.w, f->size, f->kernel, f->stride);
}

/* The maps of the net: "N (FN)" from cfg->model_hidden, else cfg->model_net:
 * one conv layer with a stride-1 conv feedback, or a multi-layer net (its
 * layers 2..L into m->ml). */
static int model_maps(fsnn_model *m, const fsnn_cfg *cfg, int c, int h, int w, int n_out) {
    if (cfg->model_hidden > 0) {
        if (cfg->model_input_padding >= 0)
            return FAIL("model.input_padding = %d: '%s' is fully connected (padding is for "
                        "one-layer conv nets)",
                        cfg->model_input_padding, cfg->model_net);
        linop_fc(&m->in_op, c * h * w, cfg->model_hidden);
        linop_fc(&m->fb_op, cfg->model_hidden, cfg->model_hidden);
        return FSNN_OK;
    }
    netspec net;
    netspec_sizes sz;
    netspec_error err;
    if (netspec_parse(cfg->model_net, &net, &err) ||
        netspec_infer(&net, (netspec_shape){c, h, w, 0}, n_out, &sz, &err))
        return FAIL("model.net: %s", err.msg);
    const netspec_layer *l = &net.layer[0], *f = &net.feedback;
    if (cfg->model_input_padding >= 0 && (net.n_layers > 1 || l->kind != NETSPEC_CONV))
        return FAIL("model.input_padding = %d: only one-layer conv nets take another padding "
                    "than kernel / 2 (model.net '%s')",
                    cfg->model_input_padding, cfg->model_net);
    if (net.n_layers > 1) {
        CHECK(mlnet_create(&m->ml, &net, &sz, cfg));
        if (l->kind == NETSPEC_FC)
            linop_fc(&m->in_op, c * h * w, l->size);
        else
            CHECK(linop_conv(&m->in_op, c, h, w, l->size, l->kernel, l->stride));
        return model_feedback(&m->fb_op, f, sz.layer[net.n_layers - 1].out, m->in_op.out);
    }
    /* netspec_infer has checked that the feedback gives the layer's shape. */
    if (l->kind != NETSPEC_CONV || f->kind != NETSPEC_CONV || f->stride != 1)
        return FAIL("model.net '%s': one-layer nets are 'N (FN)', one fully connected "
                    "feedback layer (e.g. '400 (F400)'), or 'CCk[s] (FCk)', one convolutional "
                    "layer with a stride-1 convolutional feedback (e.g. '64C5s (F64C5)'); "
                    "`fsnn model` shows this net's layers",
                    cfg->model_net);
    const int pad = cfg->model_input_padding >= 0 ? cfg->model_input_padding : l->kernel / 2;
    CHECK(linop_conv_pad(&m->in_op, c, h, w, l->size, l->kernel, l->stride, pad));
    const conv_shape *o = &m->in_op.conv;
    return linop_conv(&m->fb_op, o->O, o->Ho, o->Wo, f->size, f->kernel, 1);
}

/* Appends a trainable tensor [d0 x d1] (rank 1: d1 ignored) after the
 * previous ones; its name is copied into the model. */
static void model_add_tensor(fsnn_model *m, const char *name, int rank, int d0, int d1) {
    model_tensor_info *ti = &m->info[m->n_tensors];
    char *store = m->names[m->n_tensors + m->n_state];
    snprintf(store, MODEL_NAME_MAX, "%s", name);
    ti->name = store;
    ti->rank = rank;
    ti->dims[0] = d0;
    ti->dims[1] = rank == 2 ? d1 : 1;
    ti->offset = m->n_params;
    ti->count = (size_t)ti->dims[0] * ti->dims[1];
    m->n_params += ti->count;
    m->n_tensors++;
}

/* Appends a saved array of the model's to the state list. */
static void model_add_state(fsnn_model *m, const char *name, float *data, size_t count) {
    char *store = m->names[m->n_tensors + m->n_state];
    snprintf(store, MODEL_NAME_MAX, "%s", name);
    m->state[m->n_state++] = (model_state_info){store, data, count};
}

int model_create(fsnn_model **out, const fsnn_cfg *cfg, int c, int h, int w, int n_out) {
    fsnn_model *m;
    CHECK(XCALLOC(&m, 1));
    *out = m;
    if (c <= 0 || h <= 0 || w <= 0 || n_out <= 0 || cfg->model_hidden < 0)
        return FAIL("model: bad sizes (input %dx%dx%d, hidden %d, classes %d)", c, h, w,
                    cfg->model_hidden, n_out);
    CHECK(model_maps(m, cfg, c, h, w, n_out));
    const linop *F = &m->in_op, *W = &m->fb_op;
    const int n = W->in; /* the state: layer 1's output, or layer L's */
    m->n_in = F->in;
    m->n = n;
    m->n_out = n_out;
    m->in_c = c;
    m->in_h = h;
    m->in_w = w;
    m->channels = F->channels;
    m->hw = F->hw;
    m->T = cfg->model_time_steps;
    m->vth = cfg->neuron_vth;
    m->leak = cfg->neuron_leak;
    m->dropout = cfg->train_dropout;
    m->dropout_channel = cfg->train_dropout_channel;
    m->spike_mode = cfg->model_spike_product;
    /* An unresolved "auto" follows model.fidelity, as config_resolve does. */
    m->ref = cfg->model_fidelity == FIDELITY_REFERENCE;
    m->sn_kernel = cfg->model_spectral_norm == SPECTRAL_KERNEL ||
                   (cfg->model_spectral_norm == SPECTRAL_AUTO && m->ref);
    m->loop_bn_ref =
        cfg->model_loop_bn == LOOP_BN_REFERENCE || (cfg->model_loop_bn == LOOP_BN_AUTO && m->ref);
    m->event_inplace = cfg->data_event_average == EVENT_AVG_INPLACE ||
                       (cfg->data_event_average == EVENT_AVG_AUTO && m->ref);
    m->n_spiking = m->ml ? m->ml->n_total : n;
    const int C = m->channels;
    const struct {
        const char *name;
        int rank, d0, d1;
    } layout[8] = {
        {"input.weight", 2, F->rows, F->cols}, {"input.bias", 1, C, 1},
        {"input.bn.weight", 1, C, 1},          {"input.bn.bias", 1, C, 1},
        {"feedback.V", 2, W->rows, W->cols},   {"feedback.g", 1, 1, 1},
        {"readout.weight", 2, n_out, n},       {"readout.bias", 1, n_out, 1},
    };
    for (int i = 0; i < 8; i++)
        model_add_tensor(m, layout[i].name, layout[i].rank, layout[i].d0, layout[i].d1);
    for (int l = 1; m->ml && l < m->ml->L; l++) {
        const mlnet_layer *ly = &m->ml->layer[l];
        if (ly->kind == NETSPEC_POOL) continue;
        static const char *const part[4] = {"weight", "bias", "bn.weight", "bn.bias"};
        for (int i = 0; i < 4; i++) {
            char name[MODEL_NAME_MAX];
            snprintf(name, sizeof name, "layer%d.%s", l + 1, part[i]);
            model_add_tensor(m, name, i == 0 ? 2 : 1, i == 0 ? ly->op.rows : ly->C,
                             i == 0 ? ly->op.cols : 1);
        }
    }
    const size_t off = m->n_params;
    CHECK(XCALLOC(&m->params, off));
    CHECK(XCALLOC(&m->grads, off));
    model_point(&m->p, m->params, m);
    model_point(&m->d, m->grads, m);
    const size_t nw = linop_weights(W);
    /* The power iteration's vectors: of V as a matrix, or of the map. */
    const int nu = m->sn_kernel ? W->rows : W->out, nv = m->sn_kernel ? W->cols : W->in;
    int wmax = W->in > W->out ? W->in : W->out;
    wmax = nu > wmax ? nu : (nv > wmax ? nv : wmax);
    CHECK(XCALLOC(&m->bn_mean, (size_t)C));
    CHECK(XCALLOC(&m->bn_var, (size_t)C));
    CHECK(XCALLOC(&m->sn_u, (size_t)nu));
    CHECK(XCALLOC(&m->sn_v, (size_t)nv));
    CHECK(XCALLOC(&m->ev_u, (size_t)nu));
    CHECK(XCALLOC(&m->ev_v, (size_t)nv));
    CHECK(XCALLOC(&m->W, nw));
    CHECK(XCALLOC(&m->Wt, linop_event_size(W)));
    CHECK(XCALLOC(&m->Wa, linop_adjoint_size(W)));
    CHECK(XCALLOC(&m->gW, nw));
    CHECK(XCALLOC(&m->work, (size_t)wmax));
    model_add_state(m, "bn_mean", m->bn_mean, (size_t)C);
    model_add_state(m, "bn_var", m->bn_var, (size_t)C);
    model_add_state(m, "sn_u", m->sn_u, (size_t)nu);
    model_add_state(m, "sn_v", m->sn_v, (size_t)nv);
    model_add_state(m, "sigma", &m->sigma, 1);
    for (int l = 1, t = 8; m->ml && l < m->ml->L; l++) {
        mlnet_layer *ly = &m->ml->layer[l];
        if (ly->kind == NETSPEC_POOL) continue;
        float **pv[4] = {&ly->F, &ly->b, &ly->gamma, &ly->beta};
        float **dv[4] = {&ly->dF, &ly->db, &ly->dgamma, &ly->dbeta};
        for (int i = 0; i < 4; i++, t++) {
            *pv[i] = m->params + m->info[t].offset;
            *dv[i] = m->grads + m->info[t].offset;
        }
        char name[MODEL_NAME_MAX];
        snprintf(name, sizeof name, "layer%d.bn_mean", l + 1);
        model_add_state(m, name, ly->run_mean, (size_t)ly->C);
        snprintf(name, sizeof name, "layer%d.bn_var", l + 1);
        model_add_state(m, name, ly->run_var, (size_t)ly->C);
    }
    CHECK(XCALLOC(&m->opws, linop_ws_size(W) + 1));
    if (W->kind != LINOP_FC) CHECK(XCALLOC(&m->sn_tmp, nw));
    return FSNN_OK;
}

void model_destroy(fsnn_model **pm) {
    fsnn_model *m = *pm;
    if (!m) return;
    free(m->params);
    free(m->grads);
    free(m->bn_mean);
    free(m->bn_var);
    free(m->sn_u);
    free(m->sn_v);
    free(m->ev_u);
    free(m->ev_v);
    free(m->W);
    free(m->Wt);
    free(m->Wa);
    free(m->gW);
    free(m->work);
    free(m->opws);
    free(m->sn_tmp);
    mlnet_destroy(&m->ml);
    free(m);
    *pm = NULL;
}

static void model_form_weights(fsnn_model *m, float sigma);

/* `iters` power iterations for sigma(V) (model.spectral_norm): of V as the
 * matrix [rows x cols], or of the feedback map. */
static float model_power(fsnn_model *m, int iters) {
    if (m->sn_kernel)
        return specnorm_power(m->p.V, m->fb_op.rows, m->fb_op.cols, m->sn_u, m->sn_v, iters,
                              m->work);
    return linop_power(&m->fb_op, m->p.V, m->sn_u, m->sn_v, iters, m->work, m->opws);
}

void model_init(fsnn_model *m, uint64_t seed) {
    memset(m->params, 0, sizeof(float) * m->n_params);
    /* SPEC §4: rows of an FC weight, output filters of a conv. */
    fc_init_rows(m->p.F, m->in_op.rows, m->in_op.cols, seed, 0);
    fc_init_rows(m->p.V, m->fb_op.rows, m->fb_op.cols, seed, 1);
    if (m->ref) { /* the linear layer's default: U(+-1/sqrt(fan_in)) */
        const float bound = 1.0f / sqrtf((float)m->n);
        fc_init_uniform(m->p.Wo, (long)m->n_out * m->n, bound, seed, 2);
        fc_init_uniform(m->p.bo, m->n_out, bound, seed, FC_TID_READOUT_BIAS);
    } else {
        fc_init_rows(m->p.Wo, m->n_out, m->n, seed, 2);
    }
    for (int j = 0; j < m->channels; j++) {
        m->p.bn_w[j] = 1.0f;
        m->bn_mean[j] = 0.0f;
        m->bn_var[j] = 1.0f;
    }
    for (int l = 1; m->ml && l < m->ml->L; l++) {
        mlnet_layer *ly = &m->ml->layer[l];
        if (ly->kind == NETSPEC_POOL) continue;
        fc_init_rows(ly->F, ly->op.rows, ly->op.cols, seed, 2 + (uint32_t)l);
        for (int j = 0; j < ly->C; j++)
            ly->gamma[j] = 1.0f;
    }
    if (m->ml) mlnet_init_state(m->ml);
    const int nu = m->sn_kernel ? m->fb_op.rows : m->fb_op.out;
    const int nv = m->sn_kernel ? m->fb_op.cols : m->fb_op.in;
    specnorm_init_vectors(m->sn_u, nu, m->sn_v, nv, seed);
    m->sigma = model_power(m, 10);
    m->p.g[0] = m->ref ? m->sigma : specnorm_clamp_g(m->sigma);
    model_prepare_weights(m, 0);
}

long model_neurons(const fsnn_model *m) {
    return (long)m->n_in + m->n_spiking + m->n_out;
}

void model_prepare_weights(fsnn_model *m, int power_iters) {
    m->sigma = model_power(m, power_iters);
    model_form_weights(m, m->sigma);
}

void model_prepare_eval(fsnn_model *m, int power_iters) {
    const int nu = m->sn_kernel ? m->fb_op.rows : m->fb_op.out;
    const int nv = m->sn_kernel ? m->fb_op.cols : m->fb_op.in;
    memcpy(m->ev_u, m->sn_u, sizeof(float) * (size_t)nu);
    memcpy(m->ev_v, m->sn_v, sizeof(float) * (size_t)nv);
    float *u = m->sn_u, *v = m->sn_v;
    m->sn_u = m->ev_u, m->sn_v = m->ev_v;
    const float sigma = model_power(m, power_iters);
    m->sn_u = u, m->sn_v = v;
    model_form_weights(m, sigma);
}

static void model_form_weights(fsnn_model *m, float sigma) {
    specnorm_weight(m->p.V, specnorm_clamp_g(m->p.g[0]), sigma, m->W,
                    (long)linop_weights(&m->fb_op));
    linop_event_weights(&m->fb_op, m->W, m->Wt);
    linop_adjoint_weights(&m->fb_op, m->W, m->Wa);
    if (m->ml) mlnet_prepare(m->ml);
}

void model_after_step(fsnn_model *m) {
    if (!m->ref) m->p.g[0] = specnorm_clamp_g(m->p.g[0]);
}

/* --- gradient sums over samples ---
 * The parameter gradients that are sums over samples: F, Fb, Wo, bo (in the
 * model's order), dL/dW (gW), then F^l and b^l of each layer l >= 2 with
 * weights, laid out one after the other. Returns their number. */
static int model_sum_layout(const fsnn_model *m, float **dest, size_t *count) {
    dest[0] = m->d.F, count[0] = linop_weights(&m->in_op);
    dest[1] = m->d.Fb, count[1] = (size_t)m->channels;
    dest[2] = m->d.Wo, count[2] = (size_t)m->n_out * m->n;
    dest[3] = m->d.bo, count[3] = (size_t)m->n_out;
    dest[4] = m->gW, count[4] = linop_weights(&m->fb_op);
    int k = MODEL_SUMS_BASE;
    for (int l = 1; m->ml && l < m->ml->L; l++) {
        const mlnet_layer *ly = &m->ml->layer[l];
        if (ly->kind == NETSPEC_POOL) continue;
        dest[k] = ly->dF, count[k++] = linop_weights(&ly->op);
        dest[k] = ly->db, count[k++] = (size_t)ly->C;
    }
    return k;
}

static size_t model_sum_count(const fsnn_model *m) {
    float *dest[MODEL_SUMS_MAX];
    size_t count[MODEL_SUMS_MAX], total = 0;
    int ns = model_sum_layout(m, dest, count);
    for (int i = 0; i < ns; i++)
        total += count[i];
    return total;
}

/* The index l (layer l + 1) whose weight or bias is gradient sum
 * t >= MODEL_SUMS_BASE. */
static int model_sum_layer(const fsnn_model *m, int t) {
    int k = MODEL_SUMS_BASE;
    for (int l = 1; l < m->ml->L; l++) {
        if (m->ml->layer[l].kind == NETSPEC_POOL) continue;
        if (k == t || k + 1 == t) return l;
        k += 2;
    }
    return 0;
}

/* --- the layer pipeline (mlnet.h) --- */

static int model_piped(const fsnn_model *m) {
    return m->ml && m->ml->pipe && m->ml->pipe->stages > 1;
}

/* The stage that computes gradient sum t: layer 1's tensors and the readout
 * on stage 0, a layer's own on its stage. */
static int model_sum_owner(const fsnn_model *m, int t) {
    return t < MODEL_SUMS_BASE ? 0 : mlnet_owner(m->ml, model_sum_layer(m, t));
}

/* The stage that computes trainable tensor i (model_tensors, then 4 per
 * layer with weights, in the order of the net). */
static int model_tensor_owner(const fsnn_model *m, int i) {
    if (i < 8) return 0;
    for (int l = 1, t = 8; l < m->ml->L; l++) {
        if (m->ml->layer[l].kind == NETSPEC_POOL) continue;
        if (i < t + 4) return mlnet_owner(m->ml, l);
        t += 4;
    }
    return 0;
}

int model_set_pipeline(fsnn_model *m, const mlnet_pipe *p) {
    if (!m->ml) return FAIL("model: a layer pipeline needs a net of two layers or more");
    mlnet_set_pipe(m->ml, p);
    return FSNN_OK;
}

/* Every stage's gradients from their owner: the tensors of a stage are
 * contiguous in the layout (stages hold consecutive layers), so one
 * broadcast per stage, bit for bit. Collective over the stages. */
static int model_pipe_grads(fsnn_model *m) {
    const mlnet_pipe *p = m->ml->pipe;
    for (int s = 0; s < p->stages; s++) {
        size_t begin = m->n_params, end = 0;
        for (int i = 0; i < m->n_tensors; i++) {
            if (model_tensor_owner(m, i) != s) continue;
            const size_t b = m->info[i].offset, e = b + m->info[i].count;
            begin = b < begin ? b : begin;
            end = e > end ? e : end;
        }
        if (end > begin)
            CHECK(p->bcast(p->ctx, m->grads + begin, sizeof(float) * (end - begin), s));
    }
    return FSNN_OK;
}

/* --- workspace --- */

/* out[r] = W^T (jac[rows[r]] ⊙ in[r]) (equil_jt over any map), per sample
 * dense or from the non-zero entries of jac listed before the solve. */
static void model_apply_jt(void *ctx, const int *rows, int nrows, const float *in, float *out) {
    model_ws *ws = ctx;
    const fsnn_model *m = ws->m;
    linop_masked_transpose(&m->fb_op, m->W, m->Wa, ws->jac, ws->jidx, ws->jnnz, rows, nrows, in,
                           out, ws->tmp, m->spike_mode, ws->opws);
}

/* Jt[r][c] = W[c][r] jac[c] (equil_jt_dense over any map); NaN when the
 * dense matrix cannot be made, which the exact solve reports. */
static void model_dense_jt(void *ctx, int b, double *Jt) {
    model_ws *ws = ctx;
    const int n = ws->m->n;
    const float *jac = ws->jac + (long)b * n;
    if (linop_dense(&ws->m->fb_op, ws->m->W, Jt) != 0) {
        for (long k = 0; k < (long)n * n; k++)
            Jt[k] = NAN;
        return;
    }
    for (int r = 0; r < n; r++)
        for (int c = r + 1; c < n; c++) {
            double t = Jt[(long)r * n + c];
            Jt[(long)r * n + c] = Jt[(long)c * n + r];
            Jt[(long)c * n + r] = t;
        }
    for (int r = 0; r < n; r++)
        for (int c = 0; c < n; c++)
            Jt[(long)r * n + c] *= jac[c];
}

/* Layer 1's inputs to the stack of a multi-layer net, rows of view v. */
static mlnet_first model_first(const fsnn_model *m, const model_ws *v) {
    return (mlnet_first){&m->fb_op, m->W, m->Wt, v->x1, v->use_drop ? v->drops : NULL};
}

/* J^T of a multi-layer net (mlnet_jt) for the rows of view v. */
static void model_ml_apply_jt(void *ctx, const int *rows, int nrows, const float *in, float *out) {
    model_ws *v = ctx;
    const fsnn_model *m = v->m;
    const long o = (long)v->row0 * m->ml->n_max;
    mlnet_first f1 = model_first(m, v);
    /* A failed exchange (the message is kept) shows as a non-finite solve. */
    if (mlnet_jt(m->ml, v->mlw, &f1, v->row0, rows, nrows, in, out, v->mlw->p0 + o, v->mlw->p1 + o,
                 v->opws) != FSNN_OK)
        for (long k = 0; k < (long)nrows * m->n; k++)
            out[k] = NAN;
}

/* J^T of a multi-layer net as a dense matrix for row b of view v: J^T
 * applied to the unit vectors (exact solves of small nets); NaN when out of
 * memory, which the exact solve reports. */
static void model_ml_dense_jt(void *ctx, int b, double *Jt) {
    model_ws *v = ctx;
    const int n = v->m->n;
    float *e = calloc((size_t)n + (size_t)n * n, sizeof(float));
    if (!e) {
        for (long k = 0; k < (long)n * n; k++)
            Jt[k] = NAN;
        return;
    }
    float *y = e + n;
    /* One unit vector at a time: the scratch of mlnet_jt holds one row per sample. */
    for (int c = 0; c < n; c++) {
        e[c] = 1.0f;
        model_ml_apply_jt(v, &b, 1, e, y + (long)c * n);
        e[c] = 0.0f;
    }
    for (int r = 0; r < n; r++)
        for (int c = 0; c < n; c++)
            Jt[(long)r * n + c] = y[(long)c * n + r];
    free(e);
}

int model_ws_create(model_ws **out, const fsnn_model *m, const fsnn_cfg *cfg, int Bmax) {
    model_ws *w;
    CHECK(XCALLOC(&w, 1));
    *out = w;
    w->Bmax = Bmax;
    /* One size for the buffers of layer 1 (n1 per row) and of the state (n);
     * tmp is also the scratch of statistics over any layer. */
    const size_t nb = (size_t)m->n > (size_t)m->in_op.out ? (size_t)m->n : (size_t)m->in_op.out;
    const size_t ntmp = m->ml && (size_t)m->ml->n_max > nb ? (size_t)m->ml->n_max : nb;
    const size_t bn = (size_t)Bmax * nb;
    const int Cmax = m->ml && m->ml->C_max > m->channels ? m->ml->C_max : m->channels;
    float **bufs[] = {&w->h, &w->xhat, &w->bny, &w->x1, &w->dropx, &w->drops, &w->a,    &w->u,
                      &w->s, &w->cur,  &w->f,   &w->mv, &w->jac,   &w->ga,    &w->beta, &w->dx1};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        CHECK(XCALLOC(bufs[i], bn));
    CHECK(XCALLOC(&w->tmp, (size_t)Bmax * ntmp));
    CHECK(XCALLOC(&w->invstd, (size_t)m->channels));
    CHECK(XCALLOC(&w->evscale, (size_t)m->channels));
    if (cfg->data_dataset == DATASET_NMNIST) {
        CHECK(XCALLOC(&w->evx, (size_t)Bmax * m->n_in));
        CHECK(XCALLOC(&w->x1t, bn));
        CHECK(XCALLOC(&w->evxs, (size_t)Bmax * m->n_in));
        CHECK(XCALLOC(&w->evx1s, bn));
    }
    CHECK(XCALLOC(&w->idx, bn));
    CHECK(XCALLOC(&w->jidx, bn));
    CHECK(XCALLOC(&w->jnnz, (size_t)Bmax));
    CHECK(XCALLOC(&w->res, (size_t)Bmax));
    CHECK(XCALLOC(&w->logits, (size_t)Bmax * m->n_out));
    CHECK(XCALLOC(&w->dlogits, (size_t)Bmax * m->n_out));
    CHECK(XCALLOC(&w->stats, 4 * (size_t)Cmax));
    CHECK(XCALLOC(&w->bn_acc, 2 * (size_t)Cmax)); /* 2C: model_ml_stats */
    /* Micro-shards hold at least one sample, so a rank has at most Bmax. */
    int micro = cfg->parallel_micro_batch > 0 ? cfg->parallel_micro_batch : Bmax;
    w->max_shards = cfg->parallel_deterministic ? (Bmax + micro - 1) / micro : 1;
    if (w->max_shards < 1) w->max_shards = 1;
    w->n_sum = model_sum_count(m);
    float *dest[MODEL_SUMS_MAX];
    size_t count[MODEL_SUMS_MAX];
    w->n_sums = model_sum_layout(m, dest, count);
    /* Buckets: model_buckets (and the layers 2..L) with parallel.overlap, else one. */
    w->nb = 1;
    w->bucket[0][0] = 0, w->bucket[0][1] = w->n_sums;
    if (cfg->parallel_overlap) {
        memcpy(w->bucket, model_buckets, sizeof model_buckets);
        w->nb = 3;
        if (w->n_sums > MODEL_SUMS_BASE)
            w->bucket[3][0] = MODEL_SUMS_BASE, w->bucket[3][1] = w->n_sums, w->nb = 4;
    }
    CHECK(XCALLOC(&w->shard_len, (size_t)w->max_shards));
    CHECK(XCALLOC(&w->group_off, (size_t)w->max_shards));
    CHECK(XCALLOC(&w->gsum, (size_t)w->max_shards * w->n_sum));
    CHECK(XCALLOC(&w->tleaf, (size_t)w->max_shards));
    CHECK(XCALLOC(&w->tleafval, (size_t)w->max_shards));
    size_t a = linop_ws_size(&m->in_op), b = linop_ws_size(&m->fb_op);
    w->ws_len = a > b ? a : b;
    if (m->ml && m->ml->ws_len > w->ws_len) w->ws_len = m->ml->ws_len;
    CHECK(XCALLOC(&w->opws, (size_t)w->max_shards * w->ws_len + 1));
    w->red = reduce_local();
    w->deterministic = cfg->parallel_deterministic;
    w->overlap = cfg->parallel_overlap;
    w->solver_kind = cfg->solver_kind;
    w->max_iters = cfg->solver_max_iters;
    w->tol = cfg->solver_tol;
    w->micro = micro;
    CHECK(XCALLOC(&w->gstats, (size_t)w->max_shards));
    if (m->ml) CHECK(mlnet_ws_create(&w->mlw, m->ml, Bmax, w->max_shards));
    if (m->ml && m->loop_bn_ref) {
        if (cfg->solver_kind != SOLVER_BROYDEN && cfg->solver_kind != SOLVER_HALVING)
            return FAIL("solver.kind = %s: with model.loop_bn = reference the loop's BatchNorm "
                        "couples the samples in J^T, whose one system over the batch is solved "
                        "by broyden (or halving); set solver.kind = broyden or model.loop_bn = "
                        "consistent",
                        solver_name(cfg->solver_kind));
        CHECK(mlnet_ws_create(&w->mlw2, m->ml, Bmax, w->max_shards));
        CHECK(XCALLOC(&w->res2, (size_t)Bmax));
    }
    if (w->deterministic && !w->mlw2) { /* per micro-shard solves */
        CHECK(XCALLOC(&w->gsolver, (size_t)w->max_shards));
        for (int g = 0; g < w->max_shards; g++)
            CHECK(solver_ws_create(&w->gsolver[g], cfg->solver_kind, micro, m->n,
                                   cfg->solver_max_iters, cfg->solver_anderson_m));
    }
    /* Fast mode's whole-batch solves, and the batch-wide one of
     * model.loop_bn = reference in either mode. */
    if (!w->deterministic || w->mlw2)
        CHECK(solver_ws_create(&w->solver, cfg->solver_kind, Bmax, m->n, cfg->solver_max_iters,
                               cfg->solver_anderson_m));
    return FSNN_OK;
}

void model_ws_destroy(model_ws **pw) {
    model_ws *w = *pw;
    if (!w) return;
    float *bufs[] = {w->h,    w->xhat, w->bny,     w->x1,     w->dropx, w->drops,  w->a,
                     w->u,    w->s,    w->cur,     w->f,      w->mv,    w->jac,    w->ga,
                     w->beta, w->dx1,  w->tmp,     w->invstd, w->res,   w->logits, w->dlogits,
                     w->gsum, w->opws, w->evscale, w->evx,    w->x1t,   w->evxs,   w->evx1s};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        free(bufs[i]);
    free(w->idx);
    free(w->jidx);
    free(w->jnnz);
    free(w->stats);
    free(w->bn_acc);
    free(w->shard_len);
    free(w->group_off);
    free(w->tnode);
    free(w->tnp);
    free(w->tval);
    free(w->trecv);
    free(w->tleaf);
    free(w->tleafval);
    solver_ws_destroy(&w->solver);
    if (w->gsolver)
        for (int g = 0; g < w->max_shards; g++)
            solver_ws_destroy(&w->gsolver[g]);
    free(w->gsolver);
    free(w->gstats);
    mlnet_ws_destroy(&w->mlw);
    mlnet_ws_destroy(&w->mlw2);
    free(w->res2);
    free(w);
    *pw = NULL;
}

float *model_ws_a(model_ws *ws) {
    return ws->a;
}
float *model_ws_x1(model_ws *ws) {
    return ws->x1;
}
float *model_ws_beta(model_ws *ws) {
    return ws->beta;
}
double model_ws_kink(const model_ws *ws) {
    return ws->mlw ? ws->mlw->kink : NAN;
}
float *model_ws_logits(model_ws *ws) {
    return ws->logits;
}
float *model_ws_jac(model_ws *ws) {
    return ws->jac;
}
float *model_ws_f(model_ws *ws) {
    return ws->f;
}
const float *model_ws_layer_acc(const model_ws *ws, int l) {
    return ws->mlw ? ws->mlw->acc[l] : NULL;
}
float *model_ws_ga(model_ws *ws) {
    return ws->ga;
}

/* --- passes --- */

/* A view of rows [r0, r0 + len) of the workspace, micro-shard g: the same
 * struct with every per-sample buffer offset and the shard's own solver, so
 * the batch functions run on one micro-shard, several at once. */
static model_ws model_ws_view(const model_ws *ws, const fsnn_model *m, int g, int r0) {
    model_ws v = *ws;
    if (ws->gsolver) v.solver = ws->gsolver[g];
    v.row0 = r0;
    /* Layer 1's rows hold n1 values, the state's n (the same for one layer). */
    const long o = (long)r0 * m->n, o1 = (long)r0 * m->in_op.out;
    float **rows1[] = {&v.h, &v.xhat, &v.bny, &v.x1, &v.dropx, &v.drops, &v.dx1, &v.tmp};
    float **rows[] = {&v.a, &v.u, &v.s, &v.cur, &v.f, &v.mv, &v.jac, &v.ga, &v.beta};
    for (size_t i = 0; i < sizeof rows1 / sizeof rows1[0]; i++)
        *rows1[i] += o1;
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        *rows[i] += o;
    v.idx += o;
    if (ws->x1t) v.x1t += o;
    if (ws->evx) v.evx += (long)r0 * m->n_in;
    if (ws->ev_x) v.ev_x += (long)r0 * m->n_in;
    if (ws->ev_x1) v.ev_x1 += o;
    if (ws->frames) v.frames += (long)r0 * ws->frames_T * m->n_in;
    v.jidx += o;
    v.jnnz += r0;
    v.opws += (size_t)g * ws->ws_len;
    v.res += r0;
    v.x += (long)r0 * m->n_in;
    v.logits += (long)r0 * m->n_out;
    v.dlogits += (long)r0 * m->n_out;
    return v;
}

/* The row groups that per-sample work runs in. Deterministic mode: the
 * micro-shards, several at once, each with single-threaded BLAS, because
 * OpenBLAS's result for a row depends on the other rows of the product and
 * on the thread count; fast mode: the whole local batch at once. Returns the
 * number of groups. */
static int model_groups(model_ws *ws, int B, const int **len, int *whole) {
    *whole = B;
    ws->group_off[0] = 0;
    if (ws->deterministic && ws->n_shards > 0) {
        for (int g = 1; g < ws->n_shards; g++)
            ws->group_off[g] = ws->group_off[g - 1] + ws->shard_len[g - 1];
        *len = ws->shard_len;
        return ws->n_shards;
    }
    *len = whole;
    return 1;
}

void model_stats_merge(model_stats *st, const model_stats *g) {
    st->loss += g->loss;
    st->correct += g->correct;
    st->samples += g->samples;
    st->fwd_res_sum += g->fwd_res_sum;
    st->fwd_res_max = g->fwd_res_max > st->fwd_res_max ? g->fwd_res_max : st->fwd_res_max;
    st->adj_iters_sum += g->adj_iters_sum;
    st->adj_res2_sum += g->adj_res2_sum;
    st->adj_samples += g->adj_samples;
    st->sim.spikes += g->sim.spikes;
    st->sim.dense_steps += g->sim.dense_steps;
    st->sim.event_steps += g->sim.event_steps;
    st->t_input += g->t_input;
    st->t_sim += g->t_sim;
    st->t_adj += g->t_adj;
    st->t_grad += g->t_grad;
}

void model_ws_set_batch(model_ws *ws, const reduce_ops *red, long global_batch, int n_shards,
                        const int *shard_len) {
    ws->red = red;
    ws->has_layout = 1;
    ws->global_batch = global_batch;
    ws->n_shards = n_shards;
    for (int i = 0; i < n_shards; i++)
        ws->shard_len[i] = shard_len[i];
}

/* Sums over the whole batch of each channel of x [B x C x hw] into out [C]
 * (double): local sums in fast mode, reproducible fixed-point sums in
 * deterministic mode (the same bits for any number of ranks). Collective. */
static int model_channel_sums(model_ws *ws, const float *x, int B, int C, int hw, double *out) {
    if (!ws->deterministic) {
        for (int j = 0; j < C; j++)
            out[j] = 0.0;
        for (int b = 0; b < B; b++)
            for (int j = 0; j < C; j++) {
                const float *xm = x + ((long)b * C + j) * hw;
                for (int p = 0; p < hw; p++)
                    out[j] += xm[p];
            }
        return ws->red->size > 1 ? ws->red->sum_f64(ws->red->ctx, out, (size_t)C) : FSNN_OK;
    }
    const long n = (long)C * hw;
    double mx = reduce_maxabs(x, (size_t)B * n);
    CHECK(ws->red->max_f64(ws->red->ctx, &mx, 1));
    if (!isfinite(mx)) { /* non-finite somewhere: the step will be skipped */
        for (int j = 0; j < C; j++)
            out[j] = NAN;
        return FSNN_OK;
    }
    double scale = reduce_scale(mx, ws->global_batch * hw);
    memset(ws->bn_acc, 0, sizeof(int64_t) * (size_t)C);
    for (int b = 0; b < B; b++) {
        if (hw == 1) {
            reduce_fixed_add(ws->bn_acc, x + (long)b * n, (size_t)C, scale);
            continue;
        }
        /* Integer sums: the order of the terms does not matter. */
        for (int j = 0; j < C; j++)
            ws->bn_acc[j] = (int64_t)((uint64_t)ws->bn_acc[j] +
                                      (uint64_t)reduce_fixed_sum(x + (long)b * n + (long)j * hw,
                                                                 (size_t)hw, scale));
    }
    CHECK(ws->red->sum_i64(ws->red->ctx, ws->bn_acc, (size_t)C));
    for (int j = 0; j < C; j++)
        out[j] = (double)ws->bn_acc[j] / scale;
    return FSNN_OK;
}

/* BatchNorm statistics per channel of the whole (possibly distributed)
 * batch: two passes, the mean then the mean squared deviation. Collective. */
static int model_bn_stats(model_ws *ws, const float *h, int B, int C, int hw, double *mean,
                          double *var) {
    if (!ws->deterministic && ws->red->size == 1) {
        bn2d_batch_stats(h, B, C, hw, mean, var);
        return FSNN_OK;
    }
    const double G = (double)ws->global_batch * hw;
    CHECK(model_channel_sums(ws, h, B, C, hw, mean));
    for (int j = 0; j < C; j++)
        mean[j] /= G;
    for (int b = 0; b < B; b++)
        for (int j = 0; j < C; j++)
            for (int p = 0; p < hw; p++) {
                const long k = ((long)b * C + j) * hw + p;
                float d = h[k] - (float)mean[j];
                ws->tmp[k] = d * d;
            }
    CHECK(model_channel_sums(ws, ws->tmp, B, C, hw, var));
    for (int j = 0; j < C; j++)
        var[j] /= G;
    return FSNN_OK;
}

int model_input(fsnn_model *m, model_ws *ws, const float *x, int B, int training,
                const long *sample_ids, uint32_t epoch, uint64_t seed) {
    const int n = m->in_op.out; /* layer 1's neurons */
    const long count = (long)B * n;
    ws->x = (float *)x;
    ws->training = training;
    ws->frames = NULL;
    if (!ws->has_layout || !training) {
        /* Evaluation, or one process without model_ws_set_batch: the rows in
         * micro-shards, which also spreads evaluation over the threads. */
        if (training) ws->global_batch = B;
        ws->n_shards = ws->deterministic ? (B + ws->micro - 1) / ws->micro : 1;
        for (int g = 0; g < ws->n_shards; g++)
            ws->shard_len[g] = B - g * ws->micro < ws->micro ? B - g * ws->micro : ws->micro;
    }
    const int *len;
    int whole, groups = model_groups(ws, B, &len, &whole);
    /* A parallel region only over several groups: an inactive region around
     * the one-group case would make the inner loops' teams nested ones,
     * whose idle threads spin against the outer pool (measured 2.5x slower). */
    if (groups == 1) {
        linop_forward(&m->in_op, m->p.F, m->p.Fb, x, ws->h, B, ws->opws);
    } else {
#pragma omp parallel for schedule(dynamic, 1)
        for (int g = 0; g < groups; g++) {
            const int r0 = ws->group_off[g];
            linop_forward(&m->in_op, m->p.F, m->p.Fb, x + (long)r0 * m->n_in, ws->h + (long)r0 * n,
                          len[g], ws->opws + (size_t)g * ws->ws_len);
        }
    }
    const int C = m->channels, hw = m->hw;
    if (training) {
        double *mean = ws->stats, *var = ws->stats + C;
        CHECK(model_bn_stats(ws, ws->h, B, C, hw, mean, var));
        bn2d_normalize_train(ws->h, m->p.bn_w, m->p.bn_b, mean, var, ws->global_batch * hw,
                             m->bn_mean, m->bn_var, ws->xhat, ws->invstd, ws->bny, B, C, hw);
        /* The reference evaluates the input branch in training mode twice a
         * step (simulation and f), each a running-statistics update; event
         * input's simulation uses its own statistics (model_set_events). */
        if (m->ref && !ws->evx)
            bn2d_update_running(mean, var, ws->global_batch * hw, m->bn_mean, m->bn_var, C);
        for (int j = 0; j < C; j++)
            ws->evscale[j] = m->p.bn_w[j] * ws->invstd[j];
    } else {
        bn2d_forward_eval(ws->h, m->p.bn_w, m->p.bn_b, m->bn_mean, m->bn_var, ws->bny, B, C, hw);
        for (int j = 0; j < C; j++) /* bn2d_forward_eval's scale */
            ws->evscale[j] = m->p.bn_w[j] / sqrtf(m->bn_var[j] + BN_EPS);
    }
    ws->use_drop = training && m->dropout > 0.0f;
    if (ws->use_drop) {
        /* Channel masks with hw = 1 are the neuron masks (dropout.h). */
        const int mc = m->dropout_channel ? C : n, mhw = m->dropout_channel ? hw : 1;
        dropout_mask_channel(ws->dropx, B, mc, mhw, m->dropout, seed, RNG_DROP_X, epoch,
                             sample_ids);
        dropout_mask_channel(ws->drops, B, mc, mhw, m->dropout, seed, RNG_DROP_S, epoch,
                             sample_ids);
        for (long k = 0; k < count; k++)
            ws->x1[k] = ws->dropx[k] * ws->bny[k];
    } else {
        memcpy(ws->x1, ws->bny, sizeof(float) * (size_t)count);
    }
    if (m->ml)
        mlnet_masks(m->ml, ws->mlw, B, ws->use_drop ? m->dropout : 0.0f, m->dropout_channel, seed,
                    epoch, sample_ids);
    if (ws->mlw2)
        mlnet_masks(m->ml, ws->mlw2, B, ws->use_drop ? m->dropout : 0.0f, m->dropout_channel, seed,
                    epoch, sample_ids);
    return FSNN_OK;
}

/* The statistics of BatchNorm in the loop (mlnet_stats_fn) in one pass:
 * per channel the sums of d = x - shift and of d^2 over the whole batch,
 * mean = shift + E[d], var = E[d^2] - E[d]^2 (with the shift near the mean
 * the difference loses little). Deterministic mode: the sums in fixed
 * point (the same bits for any number of ranks), one MAX all-reduce for
 * their scales and one SUM all-reduce of the 2C sums; fast mode: one SUM
 * all-reduce. Per time step this halves the reductions of model_bn_stats's
 * two passes. Collective. */
static int model_ml_stats(void *ctx, const float *x, int B, int C, int hw, const double *shift,
                          double *mean, double *var) {
    model_ws *ws = ctx;
    const long n = (long)C * hw;
    const double G = (double)ws->global_batch * hw;
    double *s = ws->stats; /* [2C]: the sums of d, then of d^2 */
    float *d = ws->tmp;    /* [B x C x hw] */
    for (int b = 0; b < B; b++)
        for (int j = 0; j < C; j++) {
            const long o = (long)b * n + (long)j * hw;
            const float k = (float)shift[j];
            for (int p = 0; p < hw; p++)
                d[o + p] = x[o + p] - k;
        }
    if (!ws->deterministic) {
        for (int j = 0; j < 2 * C; j++)
            s[j] = 0.0;
        for (int b = 0; b < B; b++)
            for (int j = 0; j < C; j++)
                for (int p = 0; p < hw; p++) {
                    const double v = d[(long)b * n + (long)j * hw + p];
                    s[j] += v;
                    s[C + j] += v * v;
                }
        if (ws->red->size > 1) CHECK(ws->red->sum_f64(ws->red->ctx, s, 2 * (size_t)C));
    } else {
        double mx = reduce_maxabs(d, (size_t)B * n);
        CHECK(ws->red->max_f64(ws->red->ctx, &mx, 1));
        if (!isfinite(mx)) { /* non-finite somewhere: the step will be skipped */
            for (int j = 0; j < C; j++)
                mean[j] = var[j] = NAN;
            return FSNN_OK;
        }
        const double sc[2] = {reduce_scale(mx, ws->global_batch * hw),
                              reduce_scale(mx * mx, ws->global_batch * hw)};
        int64_t *acc = ws->bn_acc; /* [2C] */
        memset(acc, 0, sizeof(int64_t) * 2 * (size_t)C);
        for (int pass = 0; pass < 2; pass++) {
            if (pass == 1) /* d^2 in place */
                for (long k = 0; k < (long)B * n; k++)
                    d[k] *= d[k];
            /* Integer sums: the order of the terms does not matter. */
            for (int b = 0; b < B; b++)
                for (int j = 0; j < C; j++) {
                    int64_t *a = acc + pass * C + j;
                    *a = (int64_t)((uint64_t)*a +
                                   (uint64_t)reduce_fixed_sum(d + (long)b * n + (long)j * hw,
                                                              (size_t)hw, sc[pass]));
                }
        }
        CHECK(ws->red->sum_i64(ws->red->ctx, acc, 2 * (size_t)C));
        for (int j = 0; j < 2 * C; j++)
            s[j] = (double)acc[j] / sc[j < C ? 0 : 1];
    }
    for (int j = 0; j < C; j++) {
        const double e1 = s[j] / G, v = s[C + j] / G - e1 * e1;
        mean[j] = shift[j] + e1;
        var[j] = v > 0.0 ? v : 0.0;
    }
    return FSNN_OK;
}

/* The row groups of ws (model_groups) as mlnet sees them; *whole is the
 * storage of the one group's length. */
static mlnet_groups model_ml_groups(model_ws *ws, int B, int *whole) {
    const int *len;
    int n = model_groups(ws, B, &len, whole);
    return (mlnet_groups){n, ws->group_off, len, ws->opws, ws->ws_len};
}

/* Whether BatchNorm in the loop takes the batch's statistics. */
static int model_ml_batch_bn(const fsnn_model *m, const model_ws *ws) {
    return ws->training && !m->loop_bn_running;
}

/* Whether the simulation's BatchNorm in the loop takes the batch's
 * statistics (model.loop_bn = consistent) or the running ones (reference:
 * the reference simulates with its loop BatchNorms in evaluation mode). */
static int model_ml_sim_batch_bn(const fsnn_model *m, const model_ws *ws) {
    return model_ml_batch_bn(m, ws) && !m->loop_bn_ref;
}

/* f of a multi-layer net at a [B x n] over all rows of ws (collective in
 * training): the layers into ws->mlw, f into ws->f, res into ws->res. */
static int model_ml_eval(const fsnn_model *m, model_ws *ws, const float *a, int B) {
    int whole;
    mlnet_groups g = model_ml_groups(ws, B, &whole);
    mlnet_first f1 = model_first(m, ws);
    CHECK(mlnet_eval_f(m->ml, ws->mlw, &f1, &g, B, a, model_ml_batch_bn(m, ws), model_ml_stats, ws,
                       ws->res));
    memcpy(ws->f, ws->mlw->a[m->ml->L - 1], sizeof(float) * (size_t)B * m->n);
    return FSNN_OK;
}

/* The weighted average sum_k lambda^k x[T-1-k] / norm(T) of sample b's
 * frames at input i (double). */
static double model_frames_avg(const fsnn_model *m, const float *frames, int T, int b, int i) {
    const int nin = m->n_in;
    double acc = 0.0, w = 1.0;
    for (int t = T; t >= 1; t--) {
        acc += w * frames[((long)b * T + (t - 1)) * nin + i];
        w *= m->leak;
    }
    return acc / neuron_rate_norm(T, m->leak);
}

void model_event_average(const fsnn_model *m, const float *frames, int T, int B, int training,
                         float *x) {
    const int nin = m->n_in;
    if (training && m->event_inplace && m->leak < 1.0f) {
        /* The reference's LIF average built in place in frame T-1: the
         * simulation's average xs is written there first, then summed again
         * with the earlier frames, the frame itself (now the running sum S)
         * included once more with weight lambda^T:
         *   x = (1 + lambda^T) S / norm(T + 1),  S = xs + sum_k>=1 lambda^k x[T-1-k]. */
        const double lT = pow(m->leak, T), norm1 = neuron_rate_norm(T + 1, m->leak);
        for (int b = 0; b < B; b++)
            for (int i = 0; i < nin; i++) {
                double s = (float)model_frames_avg(m, frames, T, b, i), w = 1.0;
                for (int t = T - 1; t >= 1; t--) {
                    w *= m->leak;
                    s += w * frames[((long)b * T + (t - 1)) * nin + i];
                }
                x[(long)b * nin + i] = (float)((1.0 + lT) * s / norm1);
            }
        return;
    }
    const double norm = neuron_rate_norm(T, m->leak);
    for (int b = 0; b < B; b++)
        for (int i = 0; i < nin; i++) {
            double acc = 0.0, w = 1.0;
            /* sum_t lambda^(T-t) x[t], from t = T down */
            for (int t = T; t >= 1; t--) {
                acc += w * frames[((long)b * T + (t - 1)) * nin + i];
                w *= m->leak;
            }
            x[(long)b * nin + i] = (float)(acc / norm);
        }
}

/* The reference's simulation input in training (docs/fidelity.md): the
 * frames' average xs (IF: the mean; LIF: the weighted average), and the
 * input BatchNorm with the statistics of F xs + b over the whole batch,
 * the variance unbiased and eps 1e-8, no running update; its scale per
 * channel into evscale. data.event_average = inplace, LIF: the last step
 * sees xs itself (the reference overwrote that frame). Collective. */
static int model_event_base(fsnn_model *m, model_ws *ws, const float *frames, int T) {
    const int nin = m->n_in, C = m->channels, hw = m->hw;
    int B = 0;
    for (int g = 0; g < ws->n_shards; g++)
        B += ws->shard_len[g];
    for (int b = 0; b < B; b++)
        for (int i = 0; i < nin; i++)
            ws->evxs[(long)b * nin + i] = (float)model_frames_avg(m, frames, T, b, i);
    linop_forward(&m->in_op, m->p.F, m->p.Fb, ws->evxs, ws->evx1s, B, ws->opws);
    double *mean = ws->stats, *var = ws->stats + C;
    CHECK(model_bn_stats(ws, ws->evx1s, B, C, hw, mean, var));
    const double cnt = (double)ws->global_batch * hw;
    for (int j = 0; j < C; j++) {
        const double unbiased = cnt > 1 ? var[j] * cnt / (cnt - 1) : var[j];
        ws->evscale[j] = (float)(m->p.bn_w[j] / sqrt(unbiased + 1e-8));
    }
    for (int b = 0; b < B; b++)
        for (int j = 0; j < C; j++)
            for (int p = 0; p < hw; p++) {
                const long k = ((long)b * C + j) * hw + p;
                float y = (float)((ws->evx1s[k] - mean[j]) * ws->evscale[j]) + m->p.bn_b[j];
                ws->evx1s[k] = ws->use_drop ? ws->dropx[k] * y : y;
            }
    ws->ev_x = ws->evxs;
    ws->ev_x1 = ws->evx1s;
    ws->ev_last_base = m->event_inplace && m->leak < 1.0f;
    return FSNN_OK;
}

int model_set_events(fsnn_model *m, model_ws *ws, const float *frames, int T) {
    if (m->ml)
        return FAIL("model: event input (N-MNIST) is trained with one-layer nets only; "
                    "a multi-layer net takes static input");
    if (!ws->evx)
        return FAIL("model: event input needs a workspace made for data.dataset = nmnist");
    if (T != m->T)
        return FAIL("model: event input has %d frames per sample, the model simulates %d steps", T,
                    m->T);
    ws->frames = frames;
    ws->frames_T = T;
    ws->ev_x = ws->x;
    ws->ev_x1 = ws->x1;
    ws->ev_last_base = 0;
    if (ws->training && m->ref) CHECK(model_event_base(m, ws, frames, T));
    return FSNN_OK;
}

/* Step t's input current of event input (neuron_product.input):
 *   x1[t] = x1 + drop_x ⊙ s ⊙ F (x[t] - x)
 * with x the frames' weighted average that model_input took and s
 * BatchNorm's factor per channel. BatchNorm is affine and F linear, so this
 * is drop_x(BN(F x[t] + b)) with the batch's statistics, and the x1[t]
 * average (weighted as the rate) to x1: the fixed point's input (SPEC §1).
 * Frames equal to their average give x1 itself, bit for bit. */
typedef struct {
    const fsnn_model *m;
    const model_ws *v;
    int B;
} model_event_ctx;

static void model_event_input(void *ctx, int t, float *x1t) {
    const model_event_ctx *c = ctx;
    const fsnn_model *m = c->m;
    const model_ws *v = c->v;
    const int nin = m->n_in, T = v->frames_T, C = m->channels, hw = m->hw;
    if (t == T && v->ev_last_base) {
        memcpy(x1t, v->ev_x1, sizeof(float) * (size_t)c->B * m->n);
        return;
    }
    for (int b = 0; b < c->B; b++) {
        const float *xt = v->frames + ((long)b * T + (t - 1)) * nin, *xa = v->ev_x + (long)b * nin;
        float *d = v->evx + (long)b * nin;
        for (int i = 0; i < nin; i++)
            d[i] = xt[i] - xa[i];
    }
    linop_forward(&m->in_op, m->p.F, NULL, v->evx, x1t, c->B, v->opws);
    for (int b = 0; b < c->B; b++)
        for (int j = 0; j < C; j++) {
            const long k0 = ((long)b * C + j) * hw;
            for (int p = 0; p < hw; p++) {
                const long k = k0 + p;
                const float dx = v->use_drop ? v->dropx[k] : 1.0f;
                x1t[k] = v->ev_x1[k] + dx * (v->evscale[j] * x1t[k]);
            }
        }
}

/* equil_eval at a [B x n] for the rows of v: f, mv, jac and res of v. */
static void model_eval_f(const fsnn_model *m, const model_ws *v, const float *a, int B) {
    if (m->ml) { /* the trace's and the fixed point's: all rows of ws */
        (void)model_ml_eval(m, (model_ws *)v, a, B);
        return;
    }
    linop_forward(&m->fb_op, m->W, NULL, a, v->f, B, v->opws);
    equil_clamp(a, v->x1, v->use_drop ? v->drops : NULL, B, m->n, m->vth, v->f, v->mv, v->jac,
                v->res);
}

int model_trace_create(model_trace **out, const fsnn_model *m, const model_ws *ws) {
    model_trace *tr;
    CHECK(XCALLOC(&tr, 1));
    *out = tr;
    if (m->T < 1) return FAIL("model_trace: %d time steps", m->T);
    tr->T = m->T;
    tr->max_groups = ws->max_shards;
    CHECK(XCALLOC(&tr->sums, (size_t)MODEL_TRACE_N * m->T));
    CHECK(XCALLOC(&tr->scratch, (size_t)tr->max_groups * MODEL_TRACE_N * m->T));
    double **views[MODEL_TRACE_N] = {&tr->res_sum, &tr->res_max, &tr->rel_sum, &tr->rel_max,
                                     &tr->delta_sum};
    for (int i = 0; i < MODEL_TRACE_N; i++)
        *views[i] = tr->sums + (size_t)i * m->T;
    return FSNN_OK;
}

void model_trace_destroy(model_trace **ptr) {
    model_trace *tr = *ptr;
    if (!tr) return;
    free(tr->sums);
    free(tr->scratch);
    free(tr);
    *ptr = NULL;
}

/* What the per-step hook of one row group needs: the model, the group's view
 * of the workspace and its rows of the trace scratch, in the order of
 * model_trace (res, res max, rel, rel max, delta; [T] each). */
typedef struct {
    const fsnn_model *m;
    const model_ws *v;
    int B;
    double *acc;
} model_trace_ctx;

/* The statistics of step t. In evaluation the gradient buffers ga and dx1
 * are free: ga holds a[t], dx1 a[t-1]; f, mv, jac and res are rewritten by
 * model_loss after the simulation. */
static void model_trace_step(void *ctx, int t, const float *acc) {
    const model_trace_ctx *c = ctx;
    const fsnn_model *m = c->m;
    const model_ws *v = c->v;
    const int n = m->n, T = m->T;
    float *at = v->ga, *prev = v->dx1;
    neuron_rates(acc, (long)c->B * n, t, m->leak, at);
    model_eval_f(m, v, at, c->B);
    double *res_sum = c->acc, *res_max = res_sum + T, *rel_sum = res_max + T;
    double *rel_max = rel_sum + T, *delta_sum = rel_max + T;
    for (int b = 0; b < c->B; b++) {
        const float *ab = at + (long)b * n, *pb = prev + (long)b * n;
        double na = 0.0, dd = 0.0;
        for (int i = 0; i < n; i++) {
            double d = t > 1 ? (double)ab[i] - pb[i] : ab[i];
            na += (double)ab[i] * ab[i];
            dd += d * d;
        }
        double res = v->res[b];
        double rel = na > 0.0 ? res / sqrt(na) : (res > 0.0 ? 1.0 : 0.0);
        res_sum[t - 1] += res;
        rel_sum[t - 1] += rel;
        delta_sum[t - 1] += sqrt(dd);
        if (res > res_max[t - 1]) res_max[t - 1] = res;
        if (rel > rel_max[t - 1]) rel_max[t - 1] = rel;
    }
    memcpy(prev, at, sizeof(float) * (size_t)c->B * n);
}

/* The simulation of B rows of the view v (one row group), with the per-step
 * hook when acc is set. */
/* The feedback product of one row group (neuron_product). */
typedef struct {
    const fsnn_model *m;
    const model_ws *v;
} model_spike_ctx;

static void model_spike_product(void *ctx, const float *s, float *cur, int B, int event) {
    const model_spike_ctx *c = ctx;
    linop_spike(&c->m->fb_op, c->m->W, c->m->Wt, s, cur, c->v->idx, B, event, c->v->opws);
}

static void model_simulate_rows(const fsnn_model *m, const model_ws *v, int B, neuron_stats *sim,
                                double *acc) {
    neuron_dims d = {B, m->n, m->T, m->vth, m->leak, m->spike_mode};
    model_trace_ctx c = {m, v, B, acc};
    model_spike_ctx sc = {m, v};
    model_event_ctx ec = {m, v, B};
    neuron_product p = {model_spike_product, &sc, linop_event_density(&m->fb_op), NULL, NULL, NULL};
    if (v->frames) {
        p.input = model_event_input;
        p.input_ctx = &ec;
        p.input_buf = v->x1t;
    }
    neuron_simulate_product(&d, v->x1, &p, v->use_drop ? v->drops : NULL, v->a, v->u, v->s, v->cur,
                            sim, acc ? model_trace_step : NULL, &c);
}

/* The simulation of a multi-layer net over all rows (mlnet_simulate),
 * collective in training; with acc, the trace's hook on all rows at once. */
static int model_ml_simulate(fsnn_model *m, model_ws *ws, int B, model_stats *st, double *acc) {
    int whole;
    mlnet_groups g = model_ml_groups(ws, B, &whole);
    model_ws v = model_ws_view(ws, m, 0, 0);
    model_trace_ctx c = {m, &v, B, acc};
    mlnet_first f1 = model_first(m, ws);
    return mlnet_simulate(m->ml, ws->mlw, &f1, &g, B, model_ml_sim_batch_bn(m, ws), model_ml_stats,
                          ws, ws->a, &st->sim, acc ? model_trace_step : NULL, &c);
}

static void model_simulate_run(fsnn_model *m, model_ws *ws, int B, model_stats *st,
                               model_trace *tr) {
    const int *len;
    int whole, groups = model_groups(ws, B, &len, &whole);
    const size_t per = (size_t)MODEL_TRACE_N * m->T;
    if (tr) memset(tr->scratch, 0, sizeof(double) * per * (size_t)groups);
    if (m->ml) {
        /* One trace row group: the hook sees all rows at once. */
        groups = 1;
        ws->ml_rc = model_ml_simulate(m, ws, B, st, tr ? tr->scratch : NULL);
    } else if (groups == 1) {
        model_simulate_rows(m, ws, B, &st->sim, tr ? tr->scratch : NULL);
    } else {
#pragma omp parallel for schedule(dynamic, 1)
        for (int g = 0; g < groups; g++) {
            model_ws v = model_ws_view(ws, m, g, ws->group_off[g]);
            memset(&ws->gstats[g], 0, sizeof ws->gstats[g]);
            model_simulate_rows(m, &v, len[g], &ws->gstats[g].sim,
                                tr ? tr->scratch + per * (size_t)g : NULL);
        }
        for (int g = 0; g < groups; g++)
            model_stats_merge(st, &ws->gstats[g]);
    }
    if (!tr) return;
    const int T = m->T;
    for (int g = 0; g < groups; g++) {
        const double *acc = tr->scratch + per * (size_t)g;
        for (int i = 0; i < MODEL_TRACE_N; i++) {
            const int is_max = i == 1 || i == 3; /* res_max, rel_max */
            for (int t = 0; t < T; t++) {
                double *to = &tr->sums[(size_t)i * T + t], x = acc[(size_t)i * T + t];
                *to = is_max ? (x > *to ? x : *to) : *to + x;
            }
        }
    }
    tr->samples += B;
}

void model_simulate(fsnn_model *m, model_ws *ws, int B, model_stats *st) {
    model_simulate_run(m, ws, B, st, NULL);
}

int model_simulate_trace(fsnn_model *m, model_ws *ws, int B, model_stats *st, model_trace *tr) {
    if (tr->T != m->T)
        return FAIL("model_trace: made for %d time steps, the model has %d", tr->T, m->T);
    const int *len;
    int whole, groups = model_groups(ws, B, &len, &whole);
    if (groups > tr->max_groups)
        return FAIL("model_trace: %d row groups exceed its %d", groups, tr->max_groups);
    model_simulate_run(m, ws, B, st, tr);
    return FSNN_OK;
}

void model_fixed_point(fsnn_model *m, model_ws *ws, int B, int iters) {
    const long count = (long)B * m->n;
    memset(ws->a, 0, sizeof(float) * (size_t)count);
    for (int it = 0; it < iters; it++) {
        model_eval_f(m, ws, ws->a, B);
        memcpy(ws->a, ws->f, sizeof(float) * (size_t)count);
    }
}

/* Offsets of model_sum_layout's tensors in one set of sums; off[n_sums]
 * is the total. Returns n_sums. */
static int model_sum_offsets(const fsnn_model *m, size_t *off, size_t *count) {
    float *dest[MODEL_SUMS_MAX];
    int ns = model_sum_layout(m, dest, count);
    off[0] = 0;
    for (int t = 0; t < ns; t++)
        off[t + 1] = off[t] + count[t];
    return ns;
}

/* out[i] = sum_b u[b][i] over u [len x cols], in the order b = 0, 1, ... */
static void model_row_sums(const float *u, int len, int cols, float *out) {
    for (int i = 0; i < cols; i++)
        out[i] = 0.0f;
    for (int b = 0; b < len; b++)
        for (int i = 0; i < cols; i++)
            out[i] += u[(long)b * cols + i];
}

/* The sample sums of tensors [t0, t1) over rows [r0, r0 + len) into G (laid
 * out as model_sum_layout; other tensors untouched): dF and dFb, the weight
 * gradient of the input map with dh, dWo = dlogits^T a, dbo = sum dlogits
 * and dL/dW, the weight gradient of the feedback map at a with beta ⊙ jac;
 * dh in ws->bny and beta ⊙ jac in ws->tmp. The products overwrite: no pass
 * clears G first. opws: the row group's linop work buffer. */
static void model_bucket_sums(const fsnn_model *m, const model_ws *ws, int t0, int t1, int r0,
                              int len, float *G, float *opws) {
    const int n = m->n, n1 = m->in_op.out, nin = m->n_in, no = m->n_out;
    size_t off[MODEL_SUMS_MAX + 1], count[MODEL_SUMS_MAX];
    model_sum_offsets(m, off, count);
    const float *a = ws->a + (long)r0 * n, *dh = ws->bny + (long)r0 * n1,
                *dl = ws->dlogits + (long)r0 * no;
    if (model_piped(m)) { /* another stage's tensors: +0 here, theirs later (model_pipe_grads) */
        const int me = m->ml->pipe->stage;
        for (int t = t0; t < t1; t++)
            if (model_sum_owner(m, t) != me) memset(G + off[t], 0, sizeof(float) * count[t]);
        if (model_sum_owner(m, 0) != me) t0 = t0 > MODEL_SUMS_BASE ? t0 : MODEL_SUMS_BASE;
    }
    if (t0 <= 0 && 0 < t1)
        linop_weight_grad(&m->in_op, ws->x + (long)r0 * nin, dh, G + off[0], G + off[1], len, opws);
    if (t0 <= 2 && 2 < t1) {
        blas_gemm(1, 0, no, n, len, 1.0f, dl, no, a, n, 0.0f, G + off[2], n);
        model_row_sums(dl, len, no, G + off[3]);
    }
    if (t0 <= 4 && 4 < t1)
        linop_weight_grad(&m->fb_op, a, ws->tmp + (long)r0 * n1, G + off[4], NULL, len, opws);
    /* Layers 2..L: F^l and b^l from a^{l-1} of f and dh (mlnet_backward). */
    for (int t = t0 > MODEL_SUMS_BASE ? t0 : MODEL_SUMS_BASE; t < t1; t += 2) {
        const int l = model_sum_layer(m, t);
        const mlnet_layer *ly = &m->ml->layer[l];
        if (model_piped(m) && model_sum_owner(m, t) != m->ml->pipe->stage) continue;
        linop_weight_grad(&ly->op, ws->mlw->a[l - 1] + (long)r0 * ly->in,
                          ws->mlw->u[l] + (long)r0 * ly->n, G + off[t], G + off[t + 1], len, opws);
    }
}

/* Lets started reductions advance between pieces of work. Open MPI moves a
 * non-blocking collective on only inside MPI calls, and only the thread
 * that initialised MPI (OpenMP's thread 0 here) may make them. */
static void model_progress(const reduce_ops *red) {
#ifdef _OPENMP
    if (omp_get_thread_num() != 0) return;
#endif
    red->progress(red->ctx);
}

/* Fast mode: each bucket summed over the local rows at once and, with
 * several ranks, all-reduced in float (rounding depends on the rank count). */
static int model_reduce_fast(fsnn_model *m, model_ws *ws, int B, const int (*bucket)[2], int nb) {
    const reduce_ops *red = ws->red;
    size_t off[MODEL_SUMS_MAX + 1], count[MODEL_SUMS_MAX];
    model_sum_offsets(m, off, count);
    reduce_req req[MODEL_N_BUCKETS];
    for (int k = 0; k < nb; k++) {
        const int t0 = bucket[k][0], t1 = bucket[k][1];
        model_bucket_sums(m, ws, t0, t1, 0, B, ws->gsum, ws->opws);
        req[k].slot = -1;
        if (red->size > 1)
            CHECK(red->start_sum_f32(red->ctx, ws->gsum + off[t0], off[t1] - off[t0], &req[k]));
    }
    for (int k = 0; k < nb; k++)
        CHECK(red->wait(red->ctx, &req[k]));
    return FSNN_OK;
}

/* The tree sums' arrays for `size` ranks, and room for `need` received
 * values. */
static int model_tree_room(model_ws *ws, int size, size_t need) {
    if (ws->tsize != size) {
        free(ws->tnode);
        free(ws->tnp);
        free(ws->tval);
        ws->tnode = NULL, ws->tnp = NULL, ws->tval = NULL, ws->tsize = 0;
        CHECK(XCALLOC(&ws->tnode, (size_t)size * REDUCE_TREE_MAX));
        CHECK(XCALLOC(&ws->tnp, (size_t)size));
        CHECK(XCALLOC(&ws->tval, (size_t)size * REDUCE_TREE_MAX));
        ws->tsize = size;
    }
    if (need > ws->trecv_cap) {
        free(ws->trecv);
        ws->trecv = NULL, ws->trecv_cap = 0;
        CHECK(XCALLOC(&ws->trecv, need));
        ws->trecv_cap = need;
    }
    return FSNN_OK;
}

/* Deterministic mode: one set of sums per micro-shard, added in the fixed
 * tree of reduce.h so that the bits do not depend on how the shards are
 * spread over ranks. Per bucket: the shards' sums, this rank's pieces (its
 * leaves summed up to the largest tree nodes they fill, in place in the
 * shards' buffers) and the reduce-scatter of the pieces, which travels
 * while the next bucket is computed; then each rank adds every rank's
 * pieces of its block in the tree's order (the same additions on any rank
 * count), and an all-gather gives every rank all of them. The sums land in
 * dest (model_sum_layout's tensors): directly when a bucket's tensors lie
 * one after the other there, else through ws->gsum (free by then). */
static int model_reduce_det(fsnn_model *m, model_ws *ws, int B, const int (*bucket)[2], int nb,
                            float *const *dest) {
    const reduce_ops *red = ws->red;
    const int size = red->size, me = red->rank;
    size_t off[MODEL_SUMS_MAX + 1], count[MODEL_SUMS_MAX];
    model_sum_offsets(m, off, count);
    const int *len;
    int one, shards = model_groups(ws, B, &len, &one);
    /* The global batch's micro-shards and this rank's block of them, dealt
     * out as the trainer does. */
    const long K = (ws->global_batch + ws->micro - 1) / ws->micro;
    size_t k0, k1;
    reduce_block((size_t)K, me, size, &k0, &k1);
    if (K < 1 || K > 0x7fffffff || ws->n_shards != (int)(k1 - k0))
        return FAIL("model: %d micro-shards here, where %zu of %ld belong to rank %d of %d",
                    ws->n_shards, k1 - k0, K, me, size);
    CHECK(model_tree_room(ws, size, 0));
    /* Every rank's pieces, in rank order: a partition of the root. */
    int nn = 0;
    for (int r = 0; r < size; r++) {
        size_t a, b;
        reduce_block((size_t)K, r, size, &a, &b);
        ws->tnp[r] = reduce_tree_cover((int)K, (int)a, (int)b, ws->tnode + nn);
        nn += ws->tnp[r];
    }
    /* Room for this rank's block of the other ranks' pieces, per bucket. */
    size_t need = 0, blo[MODEL_N_BUCKETS], bhi[MODEL_N_BUCKETS];
    for (int k = 0; k < nb; k++) {
        reduce_block(off[bucket[k][1]] - off[bucket[k][0]], me, size, &blo[k], &bhi[k]);
        need += (bhi[k] - blo[k]) * (size_t)(nn - ws->tnp[me]);
    }
    CHECK(model_tree_room(ws, size, need));
    int first = 0; /* this rank's first piece in tnode */
    for (int r = 0; r < me; r++)
        first += ws->tnp[r];
    const reduce_node *mine = ws->tnode + first;
    const int np = ws->tnp[me];
    /* Each piece sits in the buffer of its first shard. */
    float *piece[REDUCE_TREE_MAX], *pk[REDUCE_TREE_MAX];
    for (int p = 0; p < np; p++)
        piece[p] = ws->gsum + (size_t)(mine[p].lo - (long)k0) * ws->n_sum;
    reduce_req rsum[MODEL_N_BUCKETS], rgat[MODEL_N_BUCKETS];
    float *recv[MODEL_N_BUCKETS], *at = ws->trecv;
    for (int k = 0; k < nb; k++) {
        const int t0 = bucket[k][0], t1 = bucket[k][1];
        const size_t n = off[t1] - off[t0];
#pragma omp parallel for schedule(dynamic, 1) if (shards > 1)
        for (int s = 0; s < shards; s++) {
            model_bucket_sums(m, ws, t0, t1, ws->group_off[s], len[s],
                              ws->gsum + (size_t)s * ws->n_sum, ws->opws + (size_t)s * ws->ws_len);
            model_progress(red);
        }
        for (int p = 0; p < np; p++) {
            const int nl = mine[p].hi - mine[p].lo; /* the piece's shards, one leaf each */
            for (int j = 0; j < nl; j++) {
                ws->tleaf[j] = (reduce_node){mine[p].lo + j, mine[p].lo + j + 1};
                ws->tleafval[j] = piece[p] + (size_t)j * ws->n_sum + off[t0];
            }
            if (reduce_tree_sum(mine[p], ws->tleaf, nl, ws->tleafval, n) != 0)
                return FAIL("model: micro-shards %d to %d are not a node of the tree", mine[p].lo,
                            mine[p].hi - 1);
            pk[p] = piece[p] + off[t0];
        }
        recv[k] = at;
        CHECK(red->start_scatter_f32(red->ctx, pk, np, ws->tnp, n, at, &rsum[k]));
        at += (size_t)(nn - np) * (bhi[k] - blo[k]);
    }
    int staged[MODEL_N_BUCKETS];
    for (int k = 0; k < nb; k++) {
        const int t0 = bucket[k][0], t1 = bucket[k][1];
        const size_t lo = blo[k], hi = bhi[k];
        CHECK(red->wait(red->ctx, &rsum[k]));
        const float *from = recv[k];
        for (int i = 0, r = 0; r < size; r++)
            for (int p = 0; p < ws->tnp[r]; p++, i++) {
                ws->tval[i] = r == me ? piece[p] + off[t0] + lo : (float *)from;
                from += r == me ? 0 : hi - lo;
            }
        const int root =
            reduce_tree_sum((reduce_node){0, (int)K}, ws->tnode, nn, ws->tval, hi - lo);
        if (root < 0) return FAIL("model: the ranks' micro-shards do not partition the tree");
        staged[k] = 0;
        for (int t = t0 + 1; t < t1; t++)
            staged[k] |= dest[t] != dest[t0] + (off[t] - off[t0]);
        float *out = staged[k] ? ws->gsum + off[t0] : dest[t0];
        if (out + lo != ws->tval[root])
            memmove(out + lo, ws->tval[root], sizeof(float) * (hi - lo));
        CHECK(red->start_gather_f32(red->ctx, out, off[t1] - off[t0], &rgat[k]));
    }
    for (int k = 0; k < nb; k++) {
        CHECK(red->wait(red->ctx, &rgat[k]));
        for (int t = bucket[k][0]; staged[k] && t < bucket[k][1]; t++)
            memcpy(dest[t], ws->gsum + off[t], sizeof(float) * count[t]);
    }
    return FSNN_OK;
}

/* Sums the per-sample gradients over the whole batch (all ranks) into
 * m->grads and m->gW. Collective. */
static int model_reduce_sums(fsnn_model *m, model_ws *ws, int B) {
    const int(*bucket)[2] = (const int(*)[2])ws->bucket;
    const int nb = ws->nb;
    float *dest[MODEL_SUMS_MAX];
    size_t off[MODEL_SUMS_MAX + 1], count[MODEL_SUMS_MAX];
    const int ns = model_sum_layout(m, dest, count);
    if (ws->deterministic) return model_reduce_det(m, ws, B, bucket, nb, dest);
    CHECK(model_reduce_fast(m, ws, B, bucket, nb));
    model_sum_offsets(m, off, count);
    for (int t = 0; t < ns; t++)
        memcpy(dest[t], ws->gsum + off[t], sizeof(float) * count[t]);
    return FSNN_OK;
}

double model_loss_value(fsnn_model *m, model_ws *ws, const uint8_t *labels, int B) {
    long correct = 0;
    fc_forward(ws->a, m->p.Wo, m->p.bo, ws->logits, B, m->n, m->n_out);
    return loss_softmax_xent(ws->logits, labels, B, m->n_out, NULL, 1.0, &correct) / B;
}

/* The per-sample part of model_loss on one row group (a view): f and its
 * residual, readout, loss and, with grads, dL/da, the adjoint solve, and the
 * per-sample factors of the VJP (dx1 = beta ⊙ m / V_th ⊙ drop_x and
 * beta ⊙ jac). */
static int model_loss_rows(fsnn_model *m, model_ws *v, const uint8_t *labels, int B, double scale,
                           int grads, model_stats *st) {
    const int n = m->n;
    const long count = (long)B * n;
    if (!m->ml) model_eval_f(m, v, v->a, B); /* multi-layer: model_loss evaluated f */
    for (int b = 0; b < B; b++) {
        st->fwd_res_sum += v->res[b];
        if (v->res[b] > st->fwd_res_max) st->fwd_res_max = v->res[b];
    }
    fc_forward(v->a, m->p.Wo, m->p.bo, v->logits, B, n, m->n_out);
    st->loss += loss_softmax_xent(v->logits, labels, B, m->n_out, grads ? v->dlogits : NULL, scale,
                                  &st->correct);
    st->samples += B;
    if (!grads) return FSNN_OK;
    blas_gemm(0, 0, B, n, m->n_out, 1.0f, v->dlogits, m->n_out, m->p.Wo, n, 0.0f, v->ga, n);
    if (v->defer) return FSNN_OK; /* model_ml_adjoint: one solve over the batch */

    /* Adjoint equilibrium beta = J_f(a*)^T beta + dL/da* (SPEC §3 step 1). */
    v->m = m;
    solver_op op = {model_apply_jt, model_dense_jt, v, n};
    if (m->ml)
        op = (solver_op){model_ml_apply_jt, model_ml_dense_jt, v, n};
    else
        linop_mask_lists(v->jac, B, n, v->jidx, v->jnnz);
    solver_stats ss;
    CHECK(solver_solve(v->solver, &op, v->ga, v->beta, B, v->max_iters, v->tol, &ss));
    st->adj_iters_sum += ss.iters_mean * B;
    st->adj_res2_sum += ss.residual * ss.residual;
    st->adj_samples += B;
    if (m->ml) {
        /* Back through layers L..2; dx1 = dc1 ⊙ drop_x, dW's factor dc1 ⊙ drop_s. */
        const long o = (long)v->row0 * m->ml->n_max, c1 = (long)B * m->in_op.out;
        CHECK(mlnet_backward(m->ml, v->mlw, v->row0, B, v->beta, v->dx1, v->mlw->p0 + o,
                             v->mlw->p1 + o, v->opws));
        for (long k = 0; k < c1; k++) {
            v->tmp[k] = v->use_drop ? v->dx1[k] * v->drops[k] : v->dx1[k];
            v->dx1[k] = v->use_drop ? v->dx1[k] * v->dropx[k] : v->dx1[k];
        }
        return FSNN_OK;
    }
    for (long k = 0; k < count; k++) {
        v->dx1[k] = v->beta[k] * v->mv[k] * (v->use_drop ? v->dropx[k] : 1.0f);
        v->tmp[k] = v->beta[k] * v->jac[k];
    }
    return FSNN_OK;
}

/* Channel sums over the whole batch for mlnet's training-mode BatchNorm
 * backward (mlnet_sums_fn). Collective. */
static int model_ml_sums(void *ctx, const float *x, int B, int C, int hw, double *out) {
    return model_channel_sums(ctx, x, B, C, hw, out);
}

/* The sum of `count` values over the whole batch (solver_sum_fn):
 * deterministic mode's exact sums, so the solve stops at the same step for
 * any rank count. Collective. */
static int model_sum_values(void *ctx, const float *vals, int count, double *out) {
    return model_channel_sums(ctx, vals, count, 1, 1, out);
}

/* J^T at f(a[T]) of all rows (mlnet_jt_batch); a failed exchange shows as a
 * non-finite solve. */
static void model_ml_apply_jt_batch(void *ctx, const int *rows, int nrows, const float *in,
                                    float *out) {
    (void)rows;
    model_ws *ws = ctx;
    const fsnn_model *m = ws->m;
    int whole;
    mlnet_groups g = model_ml_groups(ws, nrows, &whole);
    mlnet_first f1 = model_first(m, ws);
    if (mlnet_jt_batch(m->ml, ws->mlw2, &f1, &g, nrows, ws->global_batch, in, out, model_ml_sums,
                       ws) != FSNN_OK)
        for (long k = 0; k < (long)nrows * m->n; k++)
            out[k] = NAN;
}

/* The reference's adjoint of a multi-layer net (model.loop_bn = reference,
 * docs/fidelity.md): f once more at f(a[T]) with the batch's statistics
 * (no running update), where J^T is taken in training mode; one solve over
 * the whole batch of all ranks; then the VJP at a[T] with the training-mode
 * BatchNorm backward; dx1 and tmp as model_loss_rows leaves them. Collective. */
static int model_ml_adjoint(fsnn_model *m, model_ws *ws, int B, model_stats *st) {
    int whole;
    mlnet_groups g = model_ml_groups(ws, B, &whole);
    mlnet_first f1 = model_first(m, ws);
    CHECK(mlnet_eval_f(m->ml, ws->mlw2, &f1, &g, B, ws->f, 1, model_ml_stats, ws, ws->res2));
    ws->m = m;
    solver_op op = {model_ml_apply_jt_batch, NULL, ws, m->n};
    solver_stats ss;
    CHECK(solver_solve_batch(ws->solver, &op, ws->ga, ws->beta, B, ws->max_iters, ws->tol,
                             ws->global_batch * m->n, model_sum_values, ws, &ss));
    st->adj_iters_sum += ss.iters_mean * B;
    /* The batch's residual, each rank's share of it (the trainer sums them). */
    st->adj_res2_sum += ss.residual * ss.residual * B / (double)ws->global_batch;
    st->adj_samples += B;
    CHECK(mlnet_backward_batch(m->ml, ws->mlw, &g, B, ws->global_batch, ws->beta, ws->dx1,
                               model_ml_sums, ws));
    const long c1 = (long)B * m->in_op.out;
    for (long k = 0; k < c1; k++) {
        ws->tmp[k] = ws->use_drop ? ws->dx1[k] * ws->drops[k] : ws->dx1[k];
        ws->dx1[k] = ws->use_drop ? ws->dx1[k] * ws->dropx[k] : ws->dx1[k];
    }
    return FSNN_OK;
}

/* The gradients of BatchNorm in the loop of a multi-layer net: dgamma =
 * sum dz ⊙ xhat, dbeta = sum dz per channel over the whole batch (the
 * factors mlnet_backward left in the layers' buffers). Collective. */
static int model_ml_bn_grads(fsnn_model *m, model_ws *ws, int B) {
    double *sum = ws->stats;
    for (int l = 1; l < m->ml->L; l++) {
        const mlnet_layer *ly = &m->ml->layer[l];
        /* Another stage's layer: its stage sums it (model_pipe_grads). */
        if (ly->kind == NETSPEC_POOL ||
            (model_piped(m) && mlnet_owner(m->ml, l) != m->ml->pipe->stage))
            continue;
        CHECK(model_channel_sums(ws, ws->mlw->hacc[l], B, ly->C, ly->hw, sum));
        for (int c = 0; c < ly->C; c++)
            ly->dgamma[c] = (float)sum[c];
        CHECK(model_channel_sums(ws, ws->mlw->s[l], B, ly->C, ly->hw, sum));
        for (int c = 0; c < ly->C; c++)
            ly->dbeta[c] = (float)sum[c];
    }
    return FSNN_OK;
}

/* dL/dV and dL/dg from dL/dW (m->gW) through W = clamp(g) V / sigma(V),
 * sigma = u^T V v with u, v constants; clamp's derivative is 1 on [-1, 1]
 * (inclusive, as torch's), else 0. */
static void model_sn_vjp(fsnn_model *m) {
    const float g = m->p.g[0], gc = specnorm_clamp_g(g);
    if (m->sn_kernel)
        specnorm_vjp(m->p.V, m->sn_u, m->sn_v, gc, m->sigma, m->gW, m->d.V, m->d.g, m->fb_op.rows,
                     m->fb_op.cols);
    else
        linop_sn_vjp(&m->fb_op, m->p.V, m->sn_u, m->sn_v, gc, m->sigma, m->gW, m->d.V, m->d.g,
                     m->sn_tmp, m->opws);
    if (g != gc) m->d.g[0] = 0.0f;
}

int model_loss(fsnn_model *m, model_ws *ws, const uint8_t *labels, int B, double scale, int grads,
               model_stats *st) {
    const int n = m->in_op.out; /* layer 1's neurons */
    const long count = (long)B * n;
    /* Phase times are wall time: micro-shards run side by side. */
    double t0 = clock_seconds();
    if (m->ml) {
        CHECK(ws->ml_rc); /* a failed collective in the simulation */
        /* f of the whole batch first: its BatchNorm statistics are the batch's. */
        CHECK(model_ml_eval(m, ws, ws->a, B));
        if (grads && model_ml_batch_bn(m, ws))
            CHECK(mlnet_update_running(m->ml, ws->mlw, ws->global_batch));
    }
    const int *len;
    int whole, groups = model_groups(ws, B, &len, &whole), failed = -1;
    ws->defer = grads && m->ml && m->loop_bn_ref;
    if (groups == 1) {
        model_ws v = model_ws_view(ws, m, 0, 0);
        CHECK(model_loss_rows(m, &v, labels, B, scale, grads, st));
    } else {
        /* A pipeline's J^T and VJP exchange between ranks: one group after
         * the other, in the same order on every stage. */
        const int serial = model_piped(m);
#pragma omp parallel for schedule(dynamic, 1) if (!serial)
        for (int g = 0; g < groups; g++) {
            const int r0 = ws->group_off[g];
            model_ws v = model_ws_view(ws, m, g, r0);
            memset(&ws->gstats[g], 0, sizeof ws->gstats[g]);
            if (model_loss_rows(m, &v, labels + r0, len[g], scale, grads, &ws->gstats[g]) != 0) {
#pragma omp critical(model_failed)
                failed = g;
            }
        }
        /* The failing thread's message stays with that thread. */
        if (failed >= 0) return FAIL("adjoint solve failed in micro-shard %d", failed);
        for (int g = 0; g < groups; g++)
            model_stats_merge(st, &ws->gstats[g]);
    }
    if (!grads) return FSNN_OK;
    if (ws->defer) CHECK(model_ml_adjoint(m, ws, B, st));
    double t1 = clock_seconds();
    st->t_adj += t1 - t0;

    /* VJP of f with beta (SPEC §3 step 2): BatchNorm needs sums over the
     * whole batch, then the sample sums give the parameter gradients. */
    memset(m->grads, 0, sizeof(float) * m->n_params);
    const int C = m->channels, hw = m->hw;
    double *sdy = ws->stats + 2 * C, *sdyx = ws->stats + 3 * C;
    if (ws->deterministic) {
        CHECK(model_channel_sums(ws, ws->dx1, B, C, hw, sdy));
        for (long k = 0; k < count; k++)
            ws->bny[k] = ws->dx1[k] * ws->xhat[k];
        CHECK(model_channel_sums(ws, ws->bny, B, C, hw, sdyx));
    } else {
        bn2d_grad_sums(ws->dx1, ws->xhat, B, C, hw, sdy, sdyx);
        if (ws->red->size > 1) CHECK(ws->red->sum_f64(ws->red->ctx, sdy, 2 * (size_t)C));
    }
    for (int j = 0; j < C; j++) {
        m->d.bn_w[j] = (float)sdyx[j];
        m->d.bn_b[j] = (float)sdy[j];
    }
    bn2d_vjp_apply(ws->dx1, ws->xhat, ws->invstd, m->p.bn_w, sdy, sdyx, ws->global_batch * hw,
                   ws->bny, B, C, hw);
    if (m->ml) CHECK(model_ml_bn_grads(m, ws, B));
    CHECK(model_reduce_sums(m, ws, B));
    model_sn_vjp(m);
    if (model_piped(m)) CHECK(model_pipe_grads(m));
    st->t_grad += clock_seconds() - t1;
    return FSNN_OK;
}

/* The conv and transposed-conv case of model_spectral_norm: linop_power
 * from fixed uniform starts, on copies of the vectors. */
static double model_spectral_norm_conv(const fsnn_model *m, int iters) {
    const int n = m->fb_op.out, nv = m->fb_op.in;
    float *u = malloc(sizeof(float) * ((size_t)n + nv + linop_ws_size(&m->fb_op)));
    if (!u) return NAN;
    float *v = u + n, *ws = v + nv;
    /* A conv's iteration starts from u, a transposed conv's from v. */
    for (int i = 0; i < n; i++)
        u[i] = 1.0f / sqrtf((float)n);
    for (int i = 0; i < nv; i++)
        v[i] = 1.0f / sqrtf((float)nv);
    double sigma = linop_power(&m->fb_op, m->W, u, v, iters, m->work, ws);
    free(u);
    return sigma;
}

double model_spectral_norm(const fsnn_model *m, int iters) {
    if (m->fb_op.kind != LINOP_FC) return model_spectral_norm_conv(m, iters);
    /* W [out x in]: square for one layer, not always for several. */
    const int n = m->fb_op.out, ni = m->fb_op.in;
    float *u = m->work;
    double sigma = 0.0;
    /* Power iteration on W^T W with a fixed start; work in a local copy of v. */
    float *v = malloc(sizeof(float) * (size_t)ni);
    if (!v) return NAN;
    for (int i = 0; i < ni; i++)
        v[i] = 1.0f / sqrtf((float)ni);
    for (int it = 0; it < iters; it++) {
        blas_gemm(0, 0, n, 1, ni, 1.0f, m->W, ni, v, 1, 0.0f, u, 1);
        double nu = 0.0;
        for (int i = 0; i < n; i++)
            nu += (double)u[i] * u[i];
        nu = sqrt(nu);
        sigma = nu;
        if (nu == 0.0) break;
        blas_gemm(1, 0, ni, 1, n, (float)(1.0 / nu), m->W, ni, u, 1, 0.0f, v, 1);
        double nv = 0.0;
        for (int i = 0; i < ni; i++)
            nv += (double)v[i] * v[i];
        nv = sqrt(nv);
        if (nv == 0.0) break;
        for (int i = 0; i < ni; i++)
            v[i] = (float)(v[i] / nv);
    }
    free(v);
    return sigma;
}
