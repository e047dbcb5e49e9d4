/* model_impl: what the files of the model share and nothing else includes
 * (model.h is the interface): the workspace's layout and the functions one
 * file of the model calls in another. model.c creates the model, model_ws.c
 * its workspace, model_pass.c runs the passes, model_sums.c sums over the
 * batch and the ranks. */
#ifndef FSNN_MODEL_IMPL_H
#define FSNN_MODEL_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include "mlnet.h"
#include "model.h"
#include "reduce.h"
#include "solver.h"

/* The gradient sums in the order they are reduced, as [first, end) ranges
 * of model_sum_layout's tensors: with parallel.overlap each bucket's
 * reduction is started as soon as its sums are done and travels while the
 * next bucket's are computed; without, one bucket holds all. A range never
 * splits a weight from its bias (one pass computes both). A multi-layer
 * net's layers 2..L form a fourth bucket. */
enum { MODEL_N_BUCKETS = 4 };

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
    float *opws;     /* [n_opws x ws_len] linop work buffers: one per row group, */
    size_t ws_len;   /* at least one per thread (mlnet's lone group) */
    int n_opws;
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

/* --- model.c --- */

/* Whether the net runs as a layer pipeline of several stages (mlnet.h). */
int model_piped(const fsnn_model *m);
/* The stage that computes gradient sum t: layer 1's tensors and the readout
 * on stage 0, a layer's own on its stage. */
int model_sum_owner(const fsnn_model *m, int t);
/* The stage that computes trainable tensor i (model_tensors, then 4 per
 * layer with weights, in the order of the net). */
int model_tensor_owner(const fsnn_model *m, int i);
/* dL/dV and dL/dg from dL/dW (m->gW) through W = clamp(g) V / sigma(V),
 * sigma = u^T V v with u, v constants; clamp's derivative is 1 on [-1, 1]
 * (inclusive, as torch's), else 0. */
void model_sn_vjp(fsnn_model *m);

/* --- model_ws.c --- */

/* A view of rows [r0, r0 + len) of the workspace, micro-shard g: the same
 * struct with every per-sample buffer offset and the shard's own solver, so
 * the batch functions run on one micro-shard, several at once. */
model_ws model_ws_view(const model_ws *ws, const fsnn_model *m, int g, int r0);
/* The row groups that per-sample work runs in. Deterministic mode: the
 * micro-shards, several at once, each with single-threaded BLAS, because
 * OpenBLAS's result for a row depends on the other rows of the product and
 * on the thread count; fast mode: the whole local batch at once. Returns the
 * number of groups. */
int model_groups(model_ws *ws, int B, const int **len, int *whole);

/* --- model_sums.c --- */

/* The parameter gradients that are sums over samples: F, Fb, Wo, bo (in the
 * model's order), dL/dW (gW), then F^l and b^l of each layer l >= 2 with
 * weights, laid out one after the other. Returns their number. */
int model_sum_layout(const fsnn_model *m, float **dest, size_t *count);
/* The floats of one set of model_sum_layout's sums. */
size_t model_sum_count(const fsnn_model *m);
/* The index l (layer l + 1) whose weight or bias is gradient sum
 * t >= MODEL_SUMS_BASE. */
int model_sum_layer(const fsnn_model *m, int t);
/* Every stage's gradients from their owner: the tensors of a stage are
 * contiguous in the layout (stages hold consecutive layers), so one
 * broadcast per stage, bit for bit. Collective over the stages. */
int model_pipe_grads(fsnn_model *m);
/* Sums over the whole batch of each channel of x [B x C x hw] into out [C]
 * (double): local sums in fast mode, reproducible fixed-point sums in
 * deterministic mode (the same bits for any number of ranks). Collective. */
int model_channel_sums(model_ws *ws, const float *x, int B, int C, int hw, double *out);
/* The same with x in dnnconv.h's blocked layout (blocked = 1) or NCHW:
 * the same bits either way. */
int model_channel_sums_in(model_ws *ws, const float *x, int B, int C, int hw, int blocked,
                          double *out);
/* BatchNorm statistics per channel of the whole (possibly distributed)
 * batch: two passes, the mean then the mean squared deviation. Collective. */
int model_bn_stats(model_ws *ws, const float *h, int B, int C, int hw, double *mean, double *var);
/* The statistics of BatchNorm in the loop (mlnet_stats_fn) in one pass:
 * per channel the sums of d = x - shift and of d^2 over the whole batch,
 * mean = shift + E[d], var = E[d^2] - E[d]^2 (with the shift near the mean
 * the difference loses little). Deterministic mode: the sums in fixed
 * point (the same bits for any number of ranks), one MAX all-reduce for
 * their scales and one SUM all-reduce of the 2C sums; fast mode: one SUM
 * all-reduce. Per time step this halves the reductions of model_bn_stats's
 * two passes. Collective. */
int model_ml_stats(void *ctx, const float *x, int B, int C, int hw, const double *shift,
                   double *mean, double *var);
/* Sums the per-sample gradients over the whole batch (all ranks) into
 * m->grads and m->gW. Collective. */
int model_reduce_sums(fsnn_model *m, model_ws *ws, int B);
/* Channel sums over the whole batch for mlnet's training-mode BatchNorm
 * backward (mlnet_sums_fn). Collective. */
int model_ml_sums(void *ctx, const float *x, int B, int C, int hw, int blocked, double *out);
/* The sum of `count` values over the whole batch (solver_sum_fn):
 * deterministic mode's exact sums, so the solve stops at the same step for
 * any rank count. Collective. */
int model_sum_values(void *ctx, const float *vals, int count, double *out);
/* The gradients of BatchNorm in the loop of a multi-layer net: dgamma =
 * sum dz ⊙ xhat, dbeta = sum dz per channel over the whole batch (the
 * factors mlnet_backward left in the layers' buffers). Collective. */
int model_ml_bn_grads(fsnn_model *m, model_ws *ws, int B);

#endif
