/* tpnet: the tensor-parallel FC net behind the net interface. */
#include "tpnet.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt.h" // defines: ckpt_weights_sha256
#include "log.h"  // defines: log_info
#include "par.h"  // defines: par_all_ok
#include "status.h"

typedef struct {
    tpfc *t;
    fsnn_cfg cfg;
    int c, h, w, n_out;
    int writer; /* world rank 0: writes checkpoints, keeps the whole model */
    int group;  /* data-parallel group: group 0 writes the blocks */
    int groups, model_ranks;
    /* The whole model and optimiser in the one-process layout: on the
     * writer (made at the first checkpoint or resume), and on every rank
     * while a resume reads the file. */
    fsnn_model *full;
    optim *full_opt;
    ckptshard shard;
} tpnet_impl;

/* A failure on any rank stops every rank. Collective over the world. */
static int tpnet_agree(int rc) {
    if (par_all_ok(rc == 0)) return FSNN_OK;
    return rc ? rc : FAIL("stopped because another rank failed (its message is above)");
}

static int tpnet_init(fsnn_net *n, uint64_t seed) {
    tpnet_impl *s = n->impl;
    return tpfc_init(s->t, seed);
}

static int tpnet_train_batch(fsnn_net *n, const net_batch *b, const reduce_ops *red,
                             model_stats *st) {
    tpnet_impl *s = n->impl;
    CHECK(tpfc_prepare(s->t, 1));
    return tpfc_batch(s->t, b->x, b->labels, b->ids, b->B, b->global, 1, b->epoch, b->seed, red,
                      st);
}

static int tpnet_prepare_eval(fsnn_net *n, long batches) {
    tpnet_impl *s = n->impl;
    /* net_model_prepare_eval's power iterations (docs/fidelity.md). */
    return tpfc_prepare_eval(s->t, s->t->ref ? (int)batches : 0);
}

static int tpnet_eval_batch(fsnn_net *n, const net_batch *b, model_stats *st, model_trace *tr) {
    tpnet_impl *s = n->impl;
    if (tr) return FAIL("the tensor-parallel net records no residual trace");
    /* Evaluation sums nothing over groups: the reducer is not used. */
    return tpfc_batch(s->t, b->x, b->labels, b->ids, b->B, b->B, 0, 0, b->seed, reduce_local(), st);
}

static int tpnet_trace_create(fsnn_net *n, model_trace **tr) {
    (void)n;
    *tr = NULL;
    return FAIL("the residual trace needs parallel.model_ranks = 1 for an FC net");
}

static int tpnet_all_finite(fsnn_net *n, double loss, const reduce_ops *red, int *ok) {
    tpnet_impl *s = n->impl;
    return tpfc_all_finite(s->t, loss, red, ok);
}

static void tpnet_after_step(fsnn_net *n) {
    tpnet_impl *s = n->impl;
    tpfc_after_step(s->t);
}

static int tpnet_spectral_norm(fsnn_net *n, double *power, double *exact) {
    tpnet_impl *s = n->impl;
    CHECK(tpfc_spectral_norm(s->t, 30, power));
    return tpfc_spectral_norm_exact(s->t, exact);
}

/* The whole model and optimiser (s->full, s->full_opt), made on first use. */
static int tpnet_full(tpnet_impl *s) {
    if (!s->full) CHECK(model_create(&s->full, &s->cfg, s->c, s->h, s->w, s->n_out));
    if (!s->full_opt) CHECK(optim_create(&s->full_opt, &s->cfg, s->full->n_params));
    return FSNN_OK;
}

static int tpnet_whole(fsnn_net *n, optim *opt, fsnn_model **m, optim **whole_opt) {
    (void)opt;
    tpnet_impl *s = n->impl;
    CHECK(tpnet_agree(tpnet_full(s)));
    *m = s->full;
    *whole_opt = s->full_opt;
    return FSNN_OK;
}

/* Gathers the distributed net and its optimiser state into s->full and
 * s->full_opt on the writer: the ranks of group 0 send their blocks to it;
 * the other groups hold the same model and do nothing. Collective. */
static int tpnet_gather(tpnet_impl *s, const optim *opt) {
    CHECK(tpnet_agree(s->writer ? tpnet_full(s) : FSNN_OK));
    if (s->group != 0) return FSNN_OK;
    fsnn_model *full = s->full;
    optim *fo = s->full_opt;
    CHECK(tpfc_full_to_root(s->t, full, s->t->params, full ? full->params : NULL));
    CHECK(tpfc_full_to_root(s->t, full, opt->m1, fo ? fo->m1 : NULL));
    if (opt->m2) CHECK(tpfc_full_to_root(s->t, full, opt->m2, fo ? fo->m2 : NULL));
    if (!s->writer) return FSNN_OK;
    tpfc_state_to_model(s->t, full);
    fo->step = opt->step;
    return FSNN_OK;
}

/* Each rank keeps its blocks of the whole model read from a checkpoint;
 * then the blocks gathered back give the weights this grid now holds, by
 * the digest `fsnn inspect` prints for the file. */
static int tpnet_load(fsnn_net *n, optim *opt) {
    tpnet_impl *s = n->impl;
    opt->step = s->full_opt->step;
    CHECK(tpfc_from_model(s->t, s->full));
    CHECK(tpfc_local_from_full(s->t, s->full, s->full_opt->m1, opt->m1));
    if (opt->m2) CHECK(tpfc_local_from_full(s->t, s->full, s->full_opt->m2, opt->m2));
    if (!s->writer) {
        model_destroy(&s->full);
        optim_destroy(&s->full_opt);
    }
    CHECK(tpnet_gather(s, opt));
    char hex[65];
    CHECK(tpnet_agree(s->writer ? ckpt_weights_sha256(s->full, hex) : FSNN_OK));
    log_info("resharded onto %d groups of %d model ranks: weights_sha256 %s", s->groups,
             s->t->grid.nprow * s->t->grid.npcol, s->writer ? hex : "");
    return FSNN_OK;
}

void tpnet_shard_layout(const tpfc *t, const fsnn_model *full, const float *m1, const float *m2,
                        ckptshard *sh) {
    const dist_mat *mats[2] = {&t->Fd, &t->Vd};
    const int which[2] = {0, 4}; /* input.weight, feedback.V in model.h's order */
    *sh = (ckptshard){.comm = t->grid.comm,
                      .nb = t->grid.nb,
                      .nprow = t->grid.nprow,
                      .npcol = t->grid.npcol,
                      .myrow = t->grid.myrow,
                      .mycol = t->grid.mycol};
    for (int k = 0; k < 2; k++) {
        const model_tensor_info *ti = &full->info[which[k]];
        const size_t off = t->off[which[k]];
        sh->name[k] = ti->name;
        sh->rows[k] = ti->dims[0];
        sh->cols[k] = ti->dims[1];
        sh->m_off[k] = ti->offset;
        sh->lrows[k] = mats[k]->lrows;
        sh->lcols[k] = mats[k]->lcols;
        sh->lld[k] = mats[k]->lld;
        sh->params[k] = t->params + off;
        sh->m1[k] = m1 + off;
        sh->m2[k] = m2 ? m2 + off : NULL;
    }
}

/* The ranks of group 0 write; the writer's whole model has the replicated
 * tensors and the state, never F and V (its large arrays stay untouched,
 * unbacked memory). */
static int tpnet_save(fsnn_net *n, const optim *opt, net_saved *out) {
    tpnet_impl *s = n->impl;
    *out = (net_saved){0};
    CHECK(tpnet_agree(s->group == 0 ? tpnet_full(s) : FSNN_OK));
    if (s->group != 0) return FSNN_OK;
    const tpfc *t = s->t;
    tpnet_shard_layout(t, s->full, opt->m1, opt->m2, &s->shard);
    out->writes = 1;
    out->shard = &s->shard;
    if (!s->writer) return FSNN_OK;
    optim *fo = s->full_opt;
    tpfc_whole_to_full(t, s->full, t->params, s->full->params);
    tpfc_whole_to_full(t, s->full, opt->m1, fo->m1);
    if (opt->m2) tpfc_whole_to_full(t, s->full, opt->m2, fo->m2);
    tpfc_state_to_model(t, s->full);
    fo->step = opt->step;
    out->model = s->full;
    out->opt = fo;
    return FSNN_OK;
}

static void tpnet_describe(const fsnn_net *n, const fsnn_cfg *cfg, int groups, char *buf,
                           size_t size) {
    (void)cfg;
    const tpnet_impl *s = n->impl;
    const tpfc *t = s->t;
    snprintf(buf, size,
             "tensor parallel: %d groups of %d model ranks, F and V in %dx%d blocks over a %d x "
             "%d grid (%zu parameters per rank)",
             groups, s->model_ranks, t->grid.nb, t->grid.nb, t->grid.nprow, t->grid.npcol,
             t->n_params);
}

static void tpnet_destroy(fsnn_net *n) {
    tpnet_impl *s = n->impl;
    if (!s) return;
    tpfc_destroy(&s->t);
    model_destroy(&s->full);
    optim_destroy(&s->full_opt);
    free(s);
}

static const net_ops tpnet_ops = {
    .init = tpnet_init,
    .train_batch = tpnet_train_batch,
    .prepare_eval = tpnet_prepare_eval,
    .eval_batch = tpnet_eval_batch,
    .trace_create = tpnet_trace_create,
    .all_finite = tpnet_all_finite,
    .after_step = tpnet_after_step,
    .spectral_norm = tpnet_spectral_norm,
    .whole = tpnet_whole,
    .load = tpnet_load,
    .save = tpnet_save,
    .describe = tpnet_describe,
    .finish = NULL,
    .destroy = tpnet_destroy,
};

int tpnet_create(fsnn_net **out, const fsnn_cfg *cfg, const grid_env *grid, int c, int h, int w,
                 int n_out, int bmax) {
    *out = NULL;
    /* tpfc's products are its own sgemm calls over weight blocks. */
    if (cfg->compute_sim_precision != SIM_FP32)
        return FAIL("compute.sim_precision = bf16 is not available with parallel.model_ranks > 1 "
                    "(tensor parallel); use fp32");
    fsnn_net *n = calloc(1, sizeof *n);
    tpnet_impl *s = calloc(1, sizeof *s);
    if (!n || !s) {
        free(n);
        free(s);
        return FAIL("out of memory for a net");
    }
    *s = (tpnet_impl){.cfg = *cfg,
                      .c = c,
                      .h = h,
                      .w = w,
                      .n_out = n_out,
                      .writer = grid->world_rank == 0,
                      .group = grid->group,
                      .groups = grid->groups,
                      .model_ranks = grid->model_ranks};
    n->ops = tpnet_ops;
    n->kind = "tensor parallel";
    n->impl = s;
    *out = n;
    int rc = tpfc_create(&s->t, cfg, c * h * w, n_out, grid->model, TPFC_BLOCK, bmax);
    if (rc) {
        net_destroy(out);
        return rc;
    }
    const tpfc *t = s->t;
    n->params = t->params;
    n->grads = t->grads;
    n->n_params = t->n_params;
    n->n_params_all =
        (size_t)t->n * (size_t)(t->n_in + t->n + 3) + 1 + (size_t)t->n_out * (size_t)(t->n + 1);
    n->n_in = t->n_in;
    n->T = t->T;
    n->n_spiking = t->n;
    n->neurons = (long)t->n_in + t->n + t->n_out;
    return FSNN_OK;
}
