/* model: the feedback SNN of the paper's experiments (SPEC §5): one layer,
 * "N (FN)" (fully connected, e.g. "400 (F400)") or "CCk[s] (FCkf)"
 * (convolutional, e.g. "64C5s (F64C5)"), or several (Eq. 10, e.g. AlexNet-F
 * "96C3s-256C3-384C3s-384C3-256C3 (F96C3u)"), whose layers 2..L are the
 * stack of mlnet.h. For one layer:
 *
 *   x1 = drop_x( BN( F x + b ) )                input branch, once per sample
 *   a  = simulate IF/LIF for T steps            (neuron.h), a* := a[T]
 *   o  = W_o a + b_o                            readout, fully connected
 *   W  = g V / sigma(V)                         spectral restriction (specnorm.h)
 *
 * F and W are linear maps (linop.h): FC matrices, or F a conv Cin -> C
 * (kernel k, stride 1 or 2, padding k/2) and W a stride-1 conv C -> C
 * without bias. BatchNorm is per channel (FC: per neuron); dropout masks are
 * per neuron on both branches.
 *
 * Training takes a[T] as the equilibrium of f (equil.h), solves the adjoint
 * equilibrium (solver.h) and takes the VJP of f: memory does not grow with T.
 * All trainable tensors live in one allocation (`params`), their gradients in
 * another of the same layout (`grads`), so optimisers and reductions see one
 * flat array. */
#ifndef FSNN_MODEL_H
#define FSNN_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "linop.h"
#include "mlnet.h"
#include "netspec.h"
#include "neuron.h"
#include "reduce.h"
#include "solver.h"

/* Pointers into params (or grads) in this fixed order; a multi-layer net's
 * layers 2..L follow (mlnet_layer's views). */
typedef struct {
    float *F;    /* input weight [rows x cols] of in_op: FC [n x n_in], conv [C x Cin k k] */
    float *Fb;   /* [channels] */
    float *bn_w; /* [channels] BatchNorm weight */
    float *bn_b; /* [channels] BatchNorm bias */
    float *V;    /* feedback weight before the restriction: FC [n x n], conv [C x C kf kf] */
    float *g;    /* [1] restriction scale: W uses clamp(g, -1, 1) (model.fidelity =
                  * reference: g itself is free; fsnn: kept in [-1, 1]) */
    float *Wo;   /* [n_out x n] readout */
    float *bo;   /* [n_out] */
} model_tensors;

/* Trainable tensors: the 8 above, then 4 per layer l >= 2 with weights
 * ("layer<l>.weight", ".bias", ".bn.weight", ".bn.bias"). */
#define MODEL_TENSORS_MAX (8 + 4 * (NETSPEC_LAYERS_MAX - 1))
/* Saved state that is not trained: bn_mean, bn_var, sn_u, sn_v, sigma, then
 * per layer l >= 2 with weights "layer<l>.bn_mean", "layer<l>.bn_var". */
#define MODEL_STATE_MAX (5 + 2 * (NETSPEC_LAYERS_MAX - 1))
#define MODEL_NAME_MAX 32

typedef struct {
    const char *name;
    int rank;
    int dims[2];
    size_t offset; /* into params */
    size_t count;
} model_tensor_info;

typedef struct {
    const char *name;
    float *data; /* the model's own array */
    size_t count;
} model_state_info;

typedef struct {
    int n_in, n, n_out, T; /* input values, neurons, classes, time steps */
    int in_c, in_h, in_w;  /* the input's shape (FC: any with n_in values) */
    int channels, hw;      /* hidden channels and positions per channel (FC: n, 1) */
    linop in_op, fb_op;    /* F (of layer 1) and W: fb_op maps n to in_op.out values */
    mlnet *ml;             /* layers 2..L of a multi-layer net, else NULL; owned */
    long n_spiking;        /* spiking neurons: n, or all layers' */
    int loop_bn_running;   /* multi-layer: BatchNorm in the loop with the running
                            * statistics in training too (tests: then f is a plain
                            * function of the parameters) */
    float vth, leak, dropout;
    int dropout_channel; /* train.dropout_shape = channel */
    /* docs/fidelity.md: the reference's algorithm or fsnn's variants */
    int ref;           /* model.fidelity = reference */
    int sn_kernel;     /* model.spectral_norm = kernel: sigma of V as [rows x cols] */
    int loop_bn_ref;   /* model.loop_bn = reference (multi-layer nets) */
    int event_inplace; /* data.event_average = inplace (N-MNIST) */
    cfg_spike_product spike_mode;
    size_t n_params;
    float *params, *grads; /* owned */
    model_tensors p, d;    /* views of params and grads */
    int n_tensors;
    model_tensor_info info[MODEL_TENSORS_MAX];
    int n_state;
    model_state_info state[MODEL_STATE_MAX]; /* what a checkpoint keeps besides params */
    char names[MODEL_TENSORS_MAX + MODEL_STATE_MAX][MODEL_NAME_MAX];
    /* state that is saved but not trained */
    float *bn_mean, *bn_var; /* [channels] running statistics */
    float *sn_u, *sn_v;      /* power-iteration vectors: kernel [fb_op.rows], [fb_op.cols];
                              * operator [fb_op.out], [fb_op.in] */
    float sigma;             /* last estimate of sigma(V) */
    float *ev_u, *ev_v;      /* model_prepare_eval's copies of sn_u, sn_v */
    /* derived from V and g before each forward */
    float *W;      /* as V */
    float *Wt;     /* the event path's weights (linop_event_weights; FC: W^T) */
    float *Wa;     /* the adjoint's event weights (linop_adjoint_weights; FC: none) */
    float *gW;     /* as V: dL/dW before the restriction's VJP */
    float *work;   /* [max(fb_op.in, fb_op.out)] */
    float *opws;   /* linop work buffer of the power iteration and its VJP */
    float *sn_tmp; /* as V: the restriction's VJP (conv) */
} fsnn_model;

typedef struct model_ws model_ws;

typedef struct {
    double loss; /* summed over samples */
    long correct;
    long samples;
    double fwd_res_sum; /* sum over samples of ||f(a[T]) - a[T]|| */
    double fwd_res_max;
    double adj_iters_sum; /* adjoint iterations summed over samples */
    double adj_res2_sum;  /* squared adjoint residuals summed over samples */
    long adj_samples;     /* samples that went through the adjoint solve */
    neuron_stats sim;
    double t_input, t_sim, t_adj, t_grad; /* seconds per phase */
} model_stats;

/* Adds the statistics g to st (sums; the larger maximum). */
void model_stats_merge(model_stats *st, const model_stats *g);

/* The per-sample steps of the passes that every net runs, whatever holds
 * its weights (the tensor-parallel net of mpi/tpfc.h too). */

/* The input branch's dropout: with p > 0 the masks of (seed, epoch, ids)
 * into dropx and drops [B x mc x mhw] (one draw per sample and channel of
 * mhw positions; neuron masks: mhw = 1) and x1 = dropx ⊙ y; with p = 0,
 * x1 = y. */
void model_branch_dropout(const float *y, int B, int mc, int mhw, float p, uint64_t seed,
                          uint32_t epoch, const long *ids, float *dropx, float *drops, float *x1);

/* At a = a[T] [B x n] with f's residuals res [B]: logits = W_o a + b_o, and
 * to st the residuals, the loss, the correct answers and the samples; with
 * dlogits (training) also the loss gradient over `scale` samples, and
 * dL/da = dlogits W_o into ga [B x n]. */
void model_readout(const float *a, const float *res, const float *Wo, const float *bo,
                   const uint8_t *labels, int B, int n, int n_out, double scale, float *logits,
                   float *dlogits, float *ga, model_stats *st);

/* The VJP's per-sample factors of one feedback layer after the adjoint
 * solve, over `count` entries: dx1 = beta ⊙ mv ⊙ dropx (dropx NULL: none)
 * and tmp = beta ⊙ jac; and the solve's statistics of B samples into st. */
void model_vjp_factors(const float *beta, const float *mv, const float *jac, const float *dropx,
                       long count, float *dx1, float *tmp);
void model_stats_adjoint(model_stats *st, const solver_stats *ss, int B);

/* Creates an uninitialised model for inputs of c x h x w values and n_out
 * classes with the net and neuron settings of cfg: cfg->model_hidden > 0
 * gives "N (FN)" with N = model_hidden; else cfg->model_net: one conv
 * layer with a stride-1 conv feedback of the same channels, or two layers
 * or more (FC, conv, P2; feedback FC, conv or transposed conv "u"). */
int model_create(fsnn_model **m, const fsnn_cfg *cfg, int c, int h, int w, int n_out);
void model_destroy(fsnn_model **m);

/* SPEC §4 initialisation from `seed`; 10 power iterations; g = sigma
 * (model.fidelity = fsnn: clamp(sigma) and unit-norm readout rows). */
void model_init(fsnn_model *m, uint64_t seed);

/* Neurons (input + hidden + readout, the paper's count) and parameters. */
long model_neurons(const fsnn_model *m);

/* Runs a multi-layer net as one stage of a layer pipeline (mlnet.h; p
 * borrowed, NULL: the whole net). Before model_ws_create. Then
 * model_simulate, model_loss and model_fixed_point are collective over the
 * pipeline's stages too, every stage holds a, f, the loss and (after
 * model_loss with grads) the whole gradient, each tensor computed by its
 * own stage; the per-step trace is refused. Fails for a net of one layer. */
int model_set_pipeline(fsnn_model *m, const mlnet_pipe *p);

/* Buffers for batches of up to Bmax samples, and the adjoint solver. */
int model_ws_create(model_ws **ws, const fsnn_model *m, const fsnn_cfg *cfg, int Bmax);
void model_ws_destroy(model_ws **ws);

/* Runs `power_iters` power iterations on u, v and computes
 * W = clamp(g) V / sigma (and W's event forms). */
void model_prepare_weights(fsnn_model *m, int power_iters);

/* For evaluation: W from `power_iters` power iterations on copies of u, v
 * (into ev_u, ev_v), so that evaluating leaves the training state as it
 * was and evaluating again gives the same W. */
void model_prepare_eval(fsnn_model *m, int power_iters);

/* Declares how the next training batch is spread over ranks: this rank holds
 * n_shards micro-shards of shard_len[i] consecutive rows (deterministic mode;
 * fast mode uses only the total), of a batch of global_batch samples over all
 * ranks of `red`. Without a call the batch is one process's alone. */
void model_ws_set_batch(model_ws *ws, const reduce_ops *red, long global_batch, int n_shards,
                        const int *shard_len);

/* Input branch: x [B x n_in] (normalised, NCHW) -> x1, with BatchNorm in training or
 * evaluation mode and, in training, the dropout masks of (seed, epoch,
 * sample_ids). In training BatchNorm uses the statistics of the whole batch:
 * collective over the ranks given to model_ws_set_batch. */
int model_input(fsnn_model *m, model_ws *ws, const float *x, int B, int training,
                const long *sample_ids, uint32_t epoch, uint64_t seed);

/* Event input (N-MNIST, SPEC §1). x [B x n_in] = the weighted average
 * sum_t lambda^(T-t) frames[t] / sum_t lambda^(T-t) of frames
 * [B x T x n_in], the input the fixed point and the gradients see: give it
 * to model_input. In training with data.event_average = inplace and
 * LIF, the reference's input of f instead (docs/fidelity.md). */
void model_event_average(const fsnn_model *m, const float *frames, int T, int B, int training,
                         float *x);

/* After model_input on the frames' average: the next simulations take step
 * t's input current from frames[t] (drop_x(BN(F x[t] + b)) with the
 * statistics of model_input), the fixed point and the gradients the
 * average's. frames are borrowed until the next model_input, which returns
 * to static input. Fails unless the workspace was made for nmnist and T
 * matches the model's. */
int model_set_events(fsnn_model *m, model_ws *ws, const float *frames, int T);

/* The spiking simulation: a = a[T]. Multi-layer nets in training: collective
 * (BatchNorm in the loop takes the batch's statistics at every step); a
 * failed reduction is returned by the next model_loss. */
void model_simulate(fsnn_model *m, model_ws *ws, int B, model_stats *st);

/* How the simulation approaches the equilibrium, step by step (the paper's
 * Figure 1), summed over the samples of the batches simulated so far. For
 * t = 1..T, at index t - 1, with a[t] the (weighted) rate after t steps and
 * f evaluated with the batch's feedback mask (none in evaluation):
 *   res   = ||f(a[t]) - a[t]||                  res_sum, res_max
 *   rel   = res / ||a[t]||                      rel_sum, rel_max (when
 *           a[t] = 0, which has no relative size: 1 if f(a[t]) != 0, else 0)
 *   delta = ||a[t] - a[t-1]||, a[0] = 0         delta_sum
 * At t = T, res is exactly what model_loss measures at a = a[T]. Memory is
 * [T] per statistic and per row group, never [T x samples]. */
typedef struct {
    int T;
    long samples;
    double *res_sum, *res_max, *rel_sum, *rel_max, *delta_sum; /* [T] each, views of sums */
    double *sums;                                              /* owned: [MODEL_TRACE_N x T] */
    double *scratch; /* owned: the same for each row group of one batch */
    int max_groups;
} model_trace;

#define MODEL_TRACE_N 5

/* A zeroed trace for m->T steps and batches of the workspace ws. */
int model_trace_create(model_trace **tr, const fsnn_model *m, const model_ws *ws);
void model_trace_destroy(model_trace **tr);

/* model_simulate (the same a, bit for bit) that also adds the batch's
 * per-step statistics to tr. Fails if m->T differs from the trace's T. */
int model_simulate_trace(fsnn_model *m, model_ws *ws, int B, model_stats *st, model_trace *tr);

/* Replaces a by `iters` iterations of a <- f(a) from a = 0 (tests: the exact
 * equilibrium, independently of the simulation). Multi-layer nets in
 * training with batch statistics in the loop: collective. */
void model_fixed_point(fsnn_model *m, model_ws *ws, int B, int iters);

/* At the current a: evaluates f (forward residual), the readout and the loss;
 * when `grads` is set also the adjoint solve and all parameter gradients of
 * the whole batch, written (not accumulated) into m->grads, identical on all
 * ranks (collective when grads is set). `scale` divides the loss gradient
 * (the global batch size). */
int model_loss(fsnn_model *m, model_ws *ws, const uint8_t *labels, int B, double scale, int grads,
               model_stats *st);

/* Loss of the current a only, averaged over the batch (tests). */
double model_loss_value(fsnn_model *m, model_ws *ws, const uint8_t *labels, int B);

/* Views into the workspace (tests, diagnostics): a [B x n], x1 [B x n],
 * beta [B x n] (the last adjoint), logits [B x n_out], jac [B x n] (the
 * adjoint's diagonal drop_s ⊙ m / V_th of the last model_loss). */
float *model_ws_a(model_ws *ws);
float *model_ws_x1(model_ws *ws);
float *model_ws_beta(model_ws *ws);
float *model_ws_logits(model_ws *ws);
float *model_ws_jac(model_ws *ws);
/* f(a) [B x n] of the last model_loss, and dL/da [B x n] of the last one
 * with gradients. */
float *model_ws_f(model_ws *ws);
/* Multi-layer nets: layer l's (0-based) weighted spike sums of the last
 * simulation, [B x its neurons] (neuron_rates makes them rates); NULL for
 * one layer. */
const float *model_ws_layer_acc(const model_ws *ws, int l);
float *model_ws_ga(model_ws *ws);

/* Multi-layer nets: the smallest distance of any non-zero z = pre / V_th of
 * the last evaluation of f from the clamp's kinks 0 and 1 (tests: finite
 * differences must not cross one); one layer: NAN. */
double model_ws_kink(const model_ws *ws);

/* Spectral norm ||W||_2 estimated by `iters` power iterations on W itself. */
double model_spectral_norm(const fsnn_model *m, int iters);

/* After an optimiser step: model.fidelity = fsnn keeps g in [-1, 1]. */
void model_after_step(fsnn_model *m);

#endif
