/* model: the feedback SNN ("N (FN)", "CCk[s] (FCkf)", multi-layer nets
 * through mlnet): creation, the tensor table, initialisation, the feedback
 * weight's restriction and the stages of a layer pipeline. The passes are
 * in model_pass.c, the workspace in model_ws.c, the gradient sums over
 * samples and ranks in model_sums.c; model_impl.h is what they share. */
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
#include "dnn.h" // defines: dnn_has_bf16
#include "dropout.h"
#include "equil.h"
#include "fc.h"
#include "linop.h"
#include "loss.h"
#include "mlnet.h"
#include "model_impl.h"
#include "netspec.h"
#include "reduce.h"
#include "rng.h"
#include "specnorm.h"
#include "status.h"

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
    if (pad >= l->kernel)
        return FAIL("model.input_padding = %d: must be below the input kernel's size %d (model.net "
                    "'%s')",
                    pad, l->kernel, cfg->model_net);
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

/* The settings of cfg that the model keeps. An unresolved "auto" follows
 * model.fidelity, as config_resolve does. */
static void model_settings(fsnn_model *m, const fsnn_cfg *cfg) {
    m->T = cfg->model_time_steps;
    m->vth = cfg->neuron_vth;
    m->leak = cfg->neuron_leak;
    m->dropout = cfg->train_dropout;
    m->dropout_channel = cfg->train_dropout_channel;
    m->spike_mode = cfg->model_spike_product;
    m->ref = cfg->model_fidelity == FIDELITY_REFERENCE;
    m->sn_kernel = cfg->model_spectral_norm == SPECTRAL_KERNEL ||
                   (cfg->model_spectral_norm == SPECTRAL_AUTO && m->ref);
    m->loop_bn_ref =
        cfg->model_loop_bn == LOOP_BN_REFERENCE || (cfg->model_loop_bn == LOOP_BN_AUTO && m->ref);
    m->event_inplace = cfg->data_event_average == EVENT_AVG_INPLACE ||
                       (cfg->data_event_average == EVENT_AVG_AUTO && m->ref);
}

/* The trainable tensors' table (model_tensors, then 4 per layer with
 * weights) and their one allocation each for params and grads, with the
 * views into it (the model's and the layers'). */
static int model_tensors_make(fsnn_model *m) {
    const linop *F = &m->in_op, *W = &m->fb_op;
    const int C = m->channels;
    const struct {
        const char *name;
        int rank, d0, d1;
    } layout[8] = {
        {"input.weight", 2, F->rows, F->cols}, {"input.bias", 1, C, 1},
        {"input.bn.weight", 1, C, 1},          {"input.bn.bias", 1, C, 1},
        {"feedback.V", 2, W->rows, W->cols},   {"feedback.g", 1, 1, 1},
        {"readout.weight", 2, m->n_out, m->n}, {"readout.bias", 1, m->n_out, 1},
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
    CHECK(XCALLOC(&m->params, m->n_params));
    CHECK(XCALLOC(&m->grads, m->n_params));
    model_point(&m->p, m->params, m);
    model_point(&m->d, m->grads, m);
    for (int l = 1, t = 8; m->ml && l < m->ml->L; l++) {
        mlnet_layer *ly = &m->ml->layer[l];
        if (ly->kind == NETSPEC_POOL) continue;
        float **pv[4] = {&ly->F, &ly->b, &ly->gamma, &ly->beta};
        float **dv[4] = {&ly->dF, &ly->db, &ly->dgamma, &ly->dbeta};
        for (int i = 0; i < 4; i++, t++) {
            *pv[i] = m->params + m->info[t].offset;
            *dv[i] = m->grads + m->info[t].offset;
        }
    }
    return FSNN_OK;
}

/* The saved state that is not trained (running statistics, the power
 * iteration's vectors: of V as a matrix or of the map, sigma) and the
 * buffers derived from V and g. */
static int model_state_make(fsnn_model *m) {
    const linop *W = &m->fb_op;
    const int C = m->channels;
    const size_t nw = linop_weights(W);
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
    CHECK(XCALLOC(&m->opws, linop_ws_size(W) + 1));
    if (W->kind != LINOP_FC) CHECK(XCALLOC(&m->sn_tmp, nw));
    model_add_state(m, "bn_mean", m->bn_mean, (size_t)C);
    model_add_state(m, "bn_var", m->bn_var, (size_t)C);
    model_add_state(m, "sn_u", m->sn_u, (size_t)nu);
    model_add_state(m, "sn_v", m->sn_v, (size_t)nv);
    model_add_state(m, "sigma", &m->sigma, 1);
    for (int l = 1; m->ml && l < m->ml->L; l++) {
        mlnet_layer *ly = &m->ml->layer[l];
        if (ly->kind == NETSPEC_POOL) continue;
        char name[MODEL_NAME_MAX];
        snprintf(name, sizeof name, "layer%d.bn_mean", l + 1);
        model_add_state(m, name, ly->run_mean, (size_t)ly->C);
        snprintf(name, sizeof name, "layer%d.bn_var", l + 1);
        model_add_state(m, name, ly->run_var, (size_t)ly->C);
    }
    return FSNN_OK;
}

int model_create(fsnn_model **out, const fsnn_cfg *cfg, int c, int h, int w, int n_out) {
    fsnn_model *m;
    CHECK(XCALLOC(&m, 1));
    *out = m;
    if (c <= 0 || h <= 0 || w <= 0 || n_out <= 0 || cfg->model_hidden < 0)
        return FAIL("model: bad sizes (input %dx%dx%d, hidden %d, classes %d)", c, h, w,
                    cfg->model_hidden, n_out);
    if (cfg->compute_sim_precision == SIM_BF16 && !dnn_has_bf16())
        return FAIL("compute.sim_precision = bf16: this CPU has no AVX512_BF16 instructions "
                    "(or FSNN_NO_BF16 is set); use fp32");
    CHECK(model_maps(m, cfg, c, h, w, n_out));
    linop_use_onednn(&m->in_op, cfg->model_conv == CONV_ONEDNN);
    linop_use_onednn(&m->fb_op, cfg->model_conv == CONV_ONEDNN);
    /* The feedback map's products are the simulation's (the input map's
     * are the data's, once per sample). */
    linop_set_sim_bf16(&m->fb_op, cfg->compute_sim_precision == SIM_BF16);
    m->n_in = m->in_op.in;
    m->n = m->fb_op.in; /* the state: layer 1's output, or layer L's */
    m->n_out = n_out;
    m->in_c = c;
    m->in_h = h;
    m->in_w = w;
    m->channels = m->in_op.channels;
    m->hw = m->in_op.hw;
    m->n_spiking = m->ml ? m->ml->n_total : m->n;
    model_settings(m, cfg);
    CHECK(model_tensors_make(m));
    return model_state_make(m);
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

/* `iters` power iterations on the vectors u, v for sigma(V)
 * (model.spectral_norm): of V as the matrix [rows x cols], or of the
 * feedback map. */
static float model_power(fsnn_model *m, float *u, float *v, int iters) {
    if (m->sn_kernel)
        return specnorm_power(m->p.V, m->fb_op.rows, m->fb_op.cols, u, v, iters, m->work);
    return linop_power(&m->fb_op, m->p.V, u, v, iters, m->work, m->opws);
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
    m->sigma = model_power(m, m->sn_u, m->sn_v, 10);
    m->p.g[0] = m->ref ? m->sigma : specnorm_clamp_g(m->sigma);
    model_prepare_weights(m, 0);
}

long model_neurons(const fsnn_model *m) {
    return (long)m->n_in + m->n_spiking + m->n_out;
}

void model_prepare_weights(fsnn_model *m, int power_iters) {
    m->sigma = model_power(m, m->sn_u, m->sn_v, power_iters);
    model_form_weights(m, m->sigma);
}

void model_prepare_eval(fsnn_model *m, int power_iters) {
    const int nu = m->sn_kernel ? m->fb_op.rows : m->fb_op.out;
    const int nv = m->sn_kernel ? m->fb_op.cols : m->fb_op.in;
    memcpy(m->ev_u, m->sn_u, sizeof(float) * (size_t)nu);
    memcpy(m->ev_v, m->sn_v, sizeof(float) * (size_t)nv);
    model_form_weights(m, model_power(m, m->ev_u, m->ev_v, power_iters));
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

/* --- the layer pipeline (mlnet.h) --- */

int model_piped(const fsnn_model *m) {
    return m->ml && m->ml->pipe && m->ml->pipe->stages > 1;
}

int model_sum_owner(const fsnn_model *m, int t) {
    return t < MODEL_SUMS_BASE ? 0 : mlnet_owner(m->ml, model_sum_layer(m, t));
}

int model_tensor_owner(const fsnn_model *m, int i) {
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

void model_sn_vjp(fsnn_model *m) {
    const float g = m->p.g[0], gc = specnorm_clamp_g(g);
    if (m->sn_kernel)
        specnorm_vjp(m->p.V, m->sn_u, m->sn_v, gc, m->sigma, m->gW, m->d.V, m->d.g, m->fb_op.rows,
                     m->fb_op.cols);
    else
        linop_sn_vjp(&m->fb_op, m->p.V, m->sn_u, m->sn_v, gc, m->sigma, m->gW, m->d.V, m->d.g,
                     m->sn_tmp, m->opws);
    if (g != gc) m->d.g[0] = 0.0f;
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
