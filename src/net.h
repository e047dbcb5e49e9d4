/* net: one interface for every way fsnn runs a feedback net.
 *
 * The trainer (trainer.h) and the commands see a net only through this
 * table of functions; each execution mode implements it:
 *
 *   single- and multi-layer   net_model_create (here): the one-process model
 *                             of model.h, data parallel over the reducer's
 *                             ranks; the passes of a net of several layers
 *                             run its stack (mlnet.h)
 *   layer pipeline            mpi/pipe.h: the model's layers split over the
 *                             ranks of a model group
 *   tensor parallel           mpi/tpnet.h: the FC net's F and V distributed
 *                             over a model group (tpfc.h)
 *
 * As in PETSc's objects each net carries its own copy of the table, so a
 * mode that extends another (the pipeline extends the model net) overrides
 * the entries that differ. Functions marked collective are collective over
 * the ranks of the reducer they take and over the net's own group. */
#ifndef FSNN_NET_H
#define FSNN_NET_H

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "model.h"
#include "optim.h"
#include "reduce.h"

typedef struct fsnn_net fsnn_net;

/* This rank's rows of one batch. */
typedef struct {
    const float *x;        /* [B x n_in] normalised inputs (NULL with frames) */
    const float *frames;   /* event data: [B x T x n_in] frames, else NULL */
    const uint8_t *labels; /* [B] */
    const long *ids;       /* [B] sample ids: dropout masks of (seed, epoch, id) */
    int B;
    /* Training only: the batch's samples over all ranks, and this rank's
     * micro-shards (deterministic mode: n_shards of shard_len[i] rows). */
    long global;
    int n_shards;
    const int *shard_len;
    uint32_t epoch;
    uint64_t seed;
} net_batch;

/* What a checkpoint writes (net_ops.save). */
typedef struct {
    int writes;              /* this rank takes part in writing the file */
    const fsnn_model *model; /* on the rank that writes the attributes: the whole model
                              * (tensors in `shard` may be left unfilled) */
    const optim *opt;        /* its optimiser state, same layout */
    const void *shard;       /* NULL: the model is whole; else the implementation's layout
                              * of this rank's blocks (mpi/tpnet.h: a ckptshard) */
} net_saved;

typedef struct {
    /* Model initialisation of SPEC §4 from `seed`. Collective. */
    int (*init)(fsnn_net *n, uint64_t seed);
    /* One training step's computation on this rank's rows of a global
     * batch: weights, input branch, simulation, loss, adjoint and every
     * gradient summed over the ranks of red into n->grads (the same on all
     * ranks). Adds to *st, with the phase times. Collective. */
    int (*train_batch)(fsnn_net *n, const net_batch *b, const reduce_ops *red, model_stats *st);
    /* Before an evaluation of `batches` batches: the weights from power
     * iterations on copies (model_prepare_eval). Collective. */
    int (*prepare_eval)(fsnn_net *n, long batches);
    /* Evaluates a batch (running statistics, no dropout); with tr, the
     * simulation's per-step trace is added to it. Collective over the
     * net's group. */
    int (*eval_batch)(fsnn_net *n, const net_batch *b, model_stats *st, model_trace *tr);
    /* A trace for the net's batches (net_model: model_trace_create);
     * refused where the net cannot record one. */
    int (*trace_create)(fsnn_net *n, model_trace **tr);
    /* *ok = 1 when `loss` and the gradients are finite on every rank.
     * Collective. */
    int (*all_finite)(fsnn_net *n, double loss, const reduce_ops *red, int *ok);
    /* After an optimiser step (model_after_step). */
    void (*after_step)(fsnn_net *n);
    /* ||W||_2 by 30 power iterations, and exactly (NaN where not computed).
     * Collective. */
    int (*spectral_norm)(fsnn_net *n, double *power, double *exact);
    /* The model and optimiser in the one-process layout that a checkpoint
     * is read into: the net's own where it holds the model whole. `opt` is
     * the net's optimiser. Collective. */
    int (*whole)(fsnn_net *n, optim *opt, fsnn_model **m, optim **whole_opt);
    /* After a checkpoint was read into `whole`'s model and optimiser: this
     * rank takes its part of them into the net and into opt. Collective. */
    int (*load)(fsnn_net *n, optim *opt);
    /* What a checkpoint of the net and of `opt` writes. Collective. */
    int (*save)(fsnn_net *n, const optim *opt, net_saved *s);
    /* The parallel layout over `groups` data-parallel groups as one line
     * for the log; empty when there is nothing to say (one process). */
    void (*describe)(const fsnn_net *n, const fsnn_cfg *cfg, int groups, char *buf, size_t size);
    /* After training: the implementation's own report (may be NULL).
     * Collective. */
    int (*finish)(fsnn_net *n);
    /* Frees the implementation and everything the net owns. */
    void (*destroy)(fsnn_net *n);
} net_ops;

struct fsnn_net {
    net_ops ops;
    const char *kind; /* "single-layer", "multi-layer", "layer pipeline", "tensor parallel" */
    /* The trainable tensors of this rank, in the layout its optimiser sees
     * (model.h's; tensor parallel: its blocks), and their gradients. */
    float *params, *grads;
    size_t n_params;
    size_t n_params_all; /* the whole net's parameters (tensor parallel: over the group) */
    int n_in, T;
    long n_spiking; /* spiking neurons of one sample (firing rates) */
    long neurons;   /* input + hidden + readout, the paper's count */
    /* 1: in deterministic mode a rank's rows are whole micro-shards
     * (parallel.micro_batch), which the gradient's fixed tree needs; 0: a
     * contiguous block of samples. */
    int micro_shards;
    /* 1: the net takes event frames (net_batch.frames). */
    int events;
    fsnn_model *model; /* the whole one-process model where this rank holds it, else NULL */
    void *impl;        /* the implementation's state */
    void *ext;         /* the state a kind that extends another adds (the pipeline's transport) */
};

/* The net of the one-process model m (taken: net_destroy frees it), with
 * buffers for batches of up to bmax rows per rank. */
int net_model_create(fsnn_net **n, fsnn_model *m, const fsnn_cfg *cfg, int bmax);

/* net_model_create's workspace (tests, diagnostics: model_ws_a and the
 * other views of model.h); NULL for a net of another kind. */
model_ws *net_model_ws(const fsnn_net *n);

/* Calls n->ops.destroy and frees n; *n becomes NULL. */
void net_destroy(fsnn_net **n);

#endif
