/* mlnet: the layer stack of a multi-layer feedback SNN (SPEC §1, Eq. 10),
 * used by model.c for nets of two or more layers, e.g. AlexNet-F
 * "96C3s-256C3-384C3s-384C3-256C3 (F96C3u)":
 *
 *   layer 1      u1 += drop_s( W s^L[t-1] ) + x1      x1 and W belong to the model
 *   layer l > 1  u_l += drop_l( BN_l( F^l s^{l-1}[t] + b^l ) )   FC or conv
 *                u_l += avgpool( s^{l-1}[t] )                    P2 (no weights)
 *   every layer: IF/LIF with the same V_th and leak, reset by subtraction
 *
 * (one step of delay on the feedback, none between the layers). The
 * equilibrium is the composition f = f_L o ... o f_1 on the state a = a^L:
 *
 *   f_1(a)     = clamp( (drop_s ⊙ W a + x1) / V_th, 0, 1 )
 *   f_l(a^l-1) = clamp( drop_l ⊙ BN_l(F^l a^{l-1} + b^l) / V_th, 0, 1 )
 *
 * BatchNorm in the loop (docs/multilayer.md): the simulation normalises step
 * t with the batch statistics of the (weighted) average current up to t,
 * which is F^l a^{l-1}[t] + b^l, so the normalisation converges with the
 * rates; f uses the batch statistics of F^l a^{l-1} + b^l at the
 * equilibrium; J_f^T and the VJP take those statistics as constants;
 * evaluation (or bn_running) uses the running statistics.
 *
 * Rows of a batch are cut into row groups (the model's micro-shards): every
 * product runs on one group's rows at a time, so a row's result does not
 * depend on the other groups. Statistics over the batch come from the
 * caller's `mlnet_stats_fn`, which may be collective over ranks.
 *
 * layer[0] describes layer 1 only by its sizes: its input branch (F^1, BN,
 * drop_x) and the feedback W are the model's. */
#ifndef FSNN_MLNET_H
#define FSNN_MLNET_H

#include <stdint.h>

#include "cfg.h"
#include "linop.h"
#include "netspec.h"
#include "neuron.h"

typedef struct {
    netspec_kind kind; /* NETSPEC_FC or NETSPEC_CONV (F^l with BN), or NETSPEC_POOL */
    linop op;          /* FC, CONV: F^l */
    int in, n;         /* values in (the previous layer's neurons) and neurons */
    int C, hw;         /* output channels, positions per channel */
    int pc, ph, pw;    /* POOL: the input map's channels, height and width */
    /* FC, CONV: views of the model's parameters and gradients (model.c) */
    float *F, *b, *gamma, *beta;
    float *dF, *db, *dgamma, *dbeta;
    float *run_mean, *run_var; /* [C] running BatchNorm statistics, owned */
    float *We;                 /* event-path weights of F (linop_event_weights), owned */
} mlnet_layer;

/* The layer pipeline (parallel.model_ranks = M > 1, docs/architecture.md):
 * stage `stage` of `stages` runs the layers [first[stage], first[stage + 1])
 * (0-based; pipeplan.h) and holds their state; spikes, activations and
 * adjoint vectors that cross a stage boundary travel through the transport
 * (mpi/pipe.h). Every function below that takes part is collective over the
 * stages of the group, called in the same order on each with the same
 * arguments. What crossed is counted in *traffic. */
typedef struct {
    long steps;          /* simulation steps that sent spikes */
    double spike_bytes;  /* spike bytes sent, each block the smaller form (spikecode.h) */
    double mask_bytes;   /* the same blocks all as bit masks */
    double list_bytes;   /* the same blocks all as index lists */
    double float_bytes;  /* activations (f) and adjoint vectors (J^T, VJP) sent */
    double code_seconds; /* spent encoding and decoding spikes (spikecode) */
} mlnet_traffic;

typedef struct {
    int stages, stage;
    int first[NETSPEC_LAYERS_MAX + 1];
    void *ctx;
    /* Starts sending `bytes` bytes to stage `to`; the transport keeps a copy. */
    int (*send)(void *ctx, int to, const void *buf, size_t bytes);
    /* Receives the next message from stage `from` into buf (at most cap
     * bytes; fails on a longer one): *got bytes. */
    int (*recv)(void *ctx, int from, void *buf, size_t cap, size_t *got);
    /* Waits until every started send is complete. */
    int (*flush)(void *ctx);
    /* buf of every stage = buf of stage `root`. */
    int (*bcast)(void *ctx, void *buf, size_t bytes, int root);
    /* Sums buf over the stages. */
    int (*sum_f64)(void *ctx, double *buf, size_t count);
    mlnet_traffic *traffic;
} mlnet_pipe;

typedef struct {
    int L; /* layers, >= 2 */
    mlnet_layer layer[NETSPEC_LAYERS_MAX];
    int n_max, C_max; /* largest layer, most channels */
    long n_total;     /* neurons of all layers */
    size_t ws_len;    /* linop work floats of one call of any layer's map */
    int T;
    float vth, leak;
    cfg_spike_product mode;
    const mlnet_pipe *pipe; /* NULL or one stage: the whole stack here (borrowed) */
    int plain_chain;        /* 1: mlnet_block leaves the layout as it is (tests compare) */
} mlnet;

/* The row groups of a batch: n groups of len[i] rows from off[i], each with
 * its own linop work buffer opws + i * ws_len; nws >= n such buffers in
 * all (a lone group's event products share its rows among that many
 * threads). */
typedef struct {
    int n;
    const int *off, *len;
    float *opws;
    size_t ws_len;
    int nws;
} mlnet_groups;

/* Layer 1's inputs: the feedback map W (event weights We), the input
 * current x1 and the feedback dropout mask drop_s (NULL: none), [B x n_1]. */
typedef struct {
    const linop *fb;
    const float *W, *We;
    const float *x1, *drops;
} mlnet_first;

/* Mean and biased variance per channel of x [B x C x hw] over the whole
 * batch (all ranks). shift [C] is an estimate of the means, the same on
 * every rank, that the sums may subtract first (one pass instead of two). */
typedef int (*mlnet_stats_fn)(void *ctx, const float *x, int B, int C, int hw, const double *shift,
                              double *mean, double *var);

/* Per-batch buffers, [Bmax x n_l] per layer l (index 0 = layer 1); in a
 * pipeline only this stage's layers and the boundary before them are ever
 * written (the others stay untouched zero pages). After the
 * simulation u, s, acc and hacc are free: mlnet_backward leaves dh in u, dz
 * in s and dz ⊙ xhat in hacc (BN layers). */
typedef struct {
    int Bmax, L;
    float *u[NETSPEC_LAYERS_MAX], *s[NETSPEC_LAYERS_MAX], *acc[NETSPEC_LAYERS_MAX];
    float *hacc[NETSPEC_LAYERS_MAX]; /* BN layers: the weighted sum of currents */
    float *a[NETSPEC_LAYERS_MAX];    /* f's layer outputs; a[L-1] = f(a) */
    float *mv[NETSPEC_LAYERS_MAX];   /* 1[0 < z < 1] / V_th */
    float *jac[NETSPEC_LAYERS_MAX];  /* the Jacobian's diagonal factor of the layer */
    float *xhat[NETSPEC_LAYERS_MAX]; /* BN layers: normalised F^l a^{l-1} + b^l */
    float *drop[NETSPEC_LAYERS_MAX]; /* l >= 1: dropout masks */
    double *mean[NETSPEC_LAYERS_MAX], *var[NETSPEC_LAYERS_MAX]; /* [C] of the last f */
    float *invstd[NETSPEC_LAYERS_MAX];                          /* [C] */
    float *cur, *p0, *p1;                                       /* [Bmax x n_max] */
    int *idx;                                                   /* [Bmax x n_max] */
    long *gspk;           /* [L x max_groups] spikes of the last step per group */
    int *event;           /* [max_groups] the product path each group took */
    float *scale, *shift; /* [C_max] a BatchNorm as an affine map */
    double *center;       /* [C_max] the statistics' shift (mlnet_stats_fn) */
    double *bnsum;        /* [C_max] the training-mode backward's second sums */
    float *bnf;           /* [3 x C_max] its factors per channel */
    int have_mean;        /* mean[] holds batch statistics (the next shift) */
    int max_groups;
    int use_drop;
    int blocked;   /* mlnet_block: the factors of J^T are in the blocked layout */
    uint8_t *xbuf; /* pipeline: one boundary message (spikecode blocks) */
    size_t xcap;
    double kink; /* the smallest distance of a non-zero z = pre / V_th from the
                  * clamp's kinks 0 and 1 at the last mlnet_eval_f (finite
                  * differences need it above their step) */
} mlnet_ws;

/* The stack of `net` (netspec_infer's sizes sz) with the neuron settings of
 * cfg. Fails on a net of one layer. */
int mlnet_create(mlnet **out, const netspec *net, const netspec_sizes *sz, const fsnn_cfg *cfg);
void mlnet_destroy(mlnet **net);

/* The cost of each layer per sample and time step for the stage
 * assignment: the multiply-adds of its product (layer 1: the feedback map
 * fb's) plus its neurons. cost [L]. */
void mlnet_costs(const mlnet *net, const linop *fb, double *cost);

/* Runs the stack as stage p->stage of a pipeline (NULL: all layers here).
 * Before mlnet_ws_create. */
void mlnet_set_pipe(mlnet *net, const mlnet_pipe *p);

/* The stage that runs layer l (index 0 = layer 1): 0 without a pipeline. */
int mlnet_owner(const mlnet *net, int l);

/* Running statistics 0 and 1 (the weights are the model's to draw). */
void mlnet_init_state(mlnet *net);

/* Event weights from the current F^l. */
void mlnet_prepare(mlnet *net);

int mlnet_ws_create(mlnet_ws **out, const mlnet *net, int Bmax, int max_groups);
void mlnet_ws_destroy(mlnet_ws **w);

/* Dropout masks of layers 2..L for (seed, epoch, sample_ids), p > 0; or
 * none (p = 0). channel: one draw per channel of a conv layer's map. */
void mlnet_masks(const mlnet *net, mlnet_ws *w, int B, float p, int channel, uint64_t seed,
                 uint32_t epoch, const long *sample_ids);

/* The simulation of B rows: a [B x n_L] = the last layer's (weighted) rate
 * after T steps. batch_bn: BatchNorm with batch statistics (stats,
 * collective), else the running ones. step (may be NULL) is called after
 * each step t with the last layer's weighted spike sums (a pipeline of
 * several stages refuses it). Adds to *st (a pipeline: the whole stack's
 * figures, a on every stage). */
int mlnet_simulate(const mlnet *net, mlnet_ws *w, const mlnet_first *f1, const mlnet_groups *g,
                   int B, int batch_bn, mlnet_stats_fn stats, void *sctx, float *a,
                   neuron_stats *st, neuron_step_fn step, void *ctx);

/* f at a [B x n_L]: every layer's output, mask and Jacobian factor into w
 * (f = w->a[L-1], on every stage of a pipeline; the layers' factors on their
 * stages) and res[b] = ||f(a_b) - a_b||. batch_bn as above. */
int mlnet_eval_f(const mlnet *net, mlnet_ws *w, const mlnet_first *f1, const mlnet_groups *g, int B,
                 const float *a, int batch_bn, mlnet_stats_fn stats, void *sctx, float *res);

/* After a training mlnet_eval_f with batch statistics: the running
 * statistics move once towards them (momentum, unbiased variance over
 * `count` samples in all); a pipeline's stages then hold every layer's. */
int mlnet_update_running(mlnet *net, const mlnet_ws *w, long count);

/* out [nrows x n_L] = J_f(a)^T in for rows r0 + rows[r] of the last
 * mlnet_eval_f: back through the layers with their masks (a pipeline:
 * from the last stage to the first, out on every stage). p0, p1
 * [nrows x n_max] scratch, opws a linop work buffer. */
int mlnet_jt(const mlnet *net, const mlnet_ws *w, const mlnet_first *f1, int r0, const int *rows,
             int nrows, const float *in, float *out, float *p0, float *p1, float *opws);

/* VJP of f for rows [r0, r0 + len) with beta [len x n_L] down to layer 1:
 * dc1 [len x n_1] = dL/d(drop_s ⊙ W a + x1) (a pipeline: on stage 0, zero
 * on the others); the layers' factors stay in w (dh, dz, dz ⊙ xhat, see
 * mlnet_ws) on their stages. p0, p1 as mlnet_jt. */
int mlnet_backward(const mlnet *net, mlnet_ws *w, int r0, int len, const float *beta, float *dc1,
                   float *p0, float *p1, float *opws);

/* Sums per channel of x [B x C x hw] over the whole batch (all ranks):
 * out [C]; x in NCHW, or in dnnconv.h's blocked layout when blocked = 1.
 * Collective. */
typedef int (*mlnet_sums_fn)(void *ctx, const float *x, int B, int C, int hw, int blocked,
                             double *out);

/* model.loop_bn = reference (docs/fidelity.md): the loop's BatchNorms are
 * differentiated in training mode, their batch statistics' Jacobian
 * included, so a row's result depends on every row of the batch: these
 * take all B rows of this rank at once (of `count` rows over all ranks),
 * with the channel sums through `sums`, and run every product group by
 * group (g). After mlnet_eval_f with batch statistics at the point:
 *
 * mlnet_jt_batch: out [B x n_L] = J_f^T in, on every stage of a pipeline.
 * mlnet_backward_batch: the VJP of f with beta [B x n_L] down to layer 1,
 * dc1 as mlnet_backward's (and its factors left as mlnet_backward's).
 * Both collective (over the ranks of `sums` and the pipeline's stages). */
int mlnet_jt_batch(const mlnet *net, mlnet_ws *w, const mlnet_first *f1, const mlnet_groups *g,
                   int B, long count, const float *in, float *out, mlnet_sums_fn sums, void *sctx);
int mlnet_backward_batch(const mlnet *net, mlnet_ws *w, const mlnet_groups *g, int B, long count,
                         const float *beta, float *dc1, mlnet_sums_fn sums, void *sctx);

/* The adjoint's many mlnet_jt_batch calls in oneDNN's blocked layout
 * (dnnconv.h): between mlnet_block and mlnet_unblock the chain keeps its
 * maps blocked from the first product to the last, two reorders per call
 * instead of two per layer, with the same bits. mlnet_block permutes the
 * factors J^T reads (the masks, xhat, the dropout masks, layer 1's
 * Jacobian) of the last mlnet_eval_f of B rows into that layout, when every
 * product of the chain has it (conv layers on oneDNN with channels in
 * multiples of 16, no pipeline) and otherwise does nothing; mlnet_unblock
 * puts them back. Between the two, w serves mlnet_jt_batch only. */
void mlnet_block(const mlnet *net, mlnet_ws *w, const mlnet_first *f1, int B);
/* 1 when mlnet_block takes the blocked layout for net with layer 1's
 * feedback map fb. */
int mlnet_blockable(const mlnet *net, const linop *fb);
void mlnet_unblock(const mlnet *net, mlnet_ws *w, int B);

#endif
