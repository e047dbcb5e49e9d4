/* trainer: epochs of IDE training and evaluation on data held in memory;
 * the only epoch loop of fsnn, for every kind of net (net.h).
 *
 * The trainer sees plain arrays and a net; the program loads the data, and
 * writes metrics and model files through the hooks, so this module needs no
 * file or communicator. Progress goes to stdout through log.h: a bar on a
 * terminal, otherwise a plain line every 10% of an epoch. */
#ifndef FSNN_TRAINER_H
#define FSNN_TRAINER_H

#include <stdint.h>

#include "cfg.h"
#include "model.h"
#include "net.h"
#include "optim.h"
#include "reduce.h"

#define TRAINER_MAX_CHANNELS 3

/* Rows of the largest batch of a configuration (training or test): the
 * size of a net's buffers (net.h). */
#define TRAINER_BMAX(cfg)                                                                          \
    ((cfg)->train_batch > (cfg)->train_test_batch ? (cfg)->train_batch : (cfg)->train_test_batch)

typedef struct {
    const uint8_t *images; /* [n x channels x height x width] */
    const uint8_t *labels; /* [n] */
    long n;
    int dim; /* channels * height * width */
    int channels, height, width;
    /* Per channel: x = (pixel / 255 - mean) / std (SPEC §4). */
    float mean[TRAINER_MAX_CHANNELS], std[TRAINER_MAX_CHANNELS];
    int augment; /* 1: training batches are randomly cropped and flipped (augment.h) */
    /* Event data (N-MNIST; images NULL): each sample is `frames` frames of
     * dim values, which frames_fn(frames_src, id, out) writes to out
     * [frames x dim]; the simulation takes one per step (model_set_events),
     * the fixed point their weighted average. frames must equal the model's
     * time steps. */
    int frames;
    int (*frames_fn)(const void *src, long id, float *out);
    const void *frames_src;
} trainer_data;

/* One row of metrics.csv. */
typedef struct {
    int epoch; /* 1-based */
    double lr;
    double train_loss, train_acc, test_loss, test_acc;
    double fwd_residual, fwd_residual_max, test_fwd_residual;
    double adj_iters;           /* adjoint iterations per sample */
    double adj_residual;        /* root mean square of the per-sample adjoint residual */
    double firing_rate;         /* spikes per neuron per time step */
    double spectral_norm;       /* ||W||_2 by power iteration */
    double spectral_norm_exact; /* ||W||_2 exactly (psgesvd, tensor-parallel runs); NaN: not
                                   computed */
    double train_samples_per_s, test_samples_per_s;
    double peak_rss_mb, seconds;
    /* Seconds in each phase of training, averaged over ranks (the epoch's
     * log line gives min/avg/max): input and BatchNorm, simulation, adjoint
     * solves, gradient sums; t_comm is the part of all phases spent waiting
     * for reductions to complete. */
    double t_input, t_sim, t_adj, t_grad, t_comm;
    double gemm_gflops; /* rate of the dense products in training */
    long dense_steps, event_steps;
    long bad_steps; /* steps skipped for non-finite values since the run began */
    long restarts;  /* times the batch system had requeued the job when the epoch ended
                       (SLURM_RESTART_COUNT; set by the program, 0 outside SLURM) */
} trainer_epoch;

/* Where training is and what it carries between steps: everything besides the
 * model that a checkpoint must hold for an exact resume. */
typedef struct {
    int epoch;           /* epoch in progress, 0-based (= epochs finished) */
    long step;           /* batches of that epoch finished */
    long iter;           /* batches finished in all (the LR schedule's clock) */
    long bad_steps;      /* steps skipped for a non-finite loss or gradient, in all */
    long bad_run;        /* of those, how many in a row up to now */
    model_stats partial; /* this rank's statistics of the epoch so far (on a resume,
                            rank 0 carries those of all ranks before it) */
    optim *opt;          /* the optimiser, owned by the caller */
} trainer_state;

/* What a step hook asks for. */
enum { TRAINER_GO = 0, TRAINER_STOP = -1 };

typedef struct {
    /* After every step (all ranks, same arguments): return TRAINER_GO,
     * TRAINER_STOP to end training cleanly (trainer_fit returns
     * TRAINER_STOPPED), or an fsnn status. May be NULL. Collective. */
    int (*on_step)(void *ctx, const trainer_state *ts, fsnn_net *net);
    /* After the gradient of a step is computed and before the check that it
     * is finite: may change net->grads (fault-injection tests). May be NULL. */
    void (*on_grads)(void *ctx, const trainer_state *ts, fsnn_net *net);
    /* After every epoch with its row; a non-zero return stops training. */
    int (*on_epoch)(void *ctx, const trainer_epoch *row, const trainer_state *ts, fsnn_net *net);
    void *ctx;
} trainer_hooks;

/* trainer_fit's return when a hook asked to stop. */
#define TRAINER_STOPPED 3

/* Trains from ts (epoch, step; a fresh state is all zeros with ts->opt set)
 * to cfg->train_epochs epochs, evaluating on `test` after each. A step whose
 * loss or gradient is not finite on any rank is skipped by all (parameters
 * unchanged, ts->bad_steps rises); after train.max_bad_steps in a row
 * training fails.
 * Data parallel over the ranks of `red` (reduce_local() for one process):
 * every rank holds the whole data set and the same model (or, with model
 * ranks, the same part of it as the other groups); each global batch
 * of train.batch samples is split into micro-shards of
 * parallel.micro_batch samples (a net without micro_shards: into samples),
 * spread in contiguous blocks over the ranks, and the gradients are summed
 * over all of them, so every rank takes the same step. In deterministic mode the weights do not
 * depend on the number of ranks or threads when the caller has set blas_set_serial(1) before the
 * model was initialised. Training images of a view with `augment` are
 * cropped and flipped as drawn for (run.seed, epoch, sample index)
 * (augment.h), the same on any number of ranks. Hooks run on every rank;
 * rows are the same on all. Collective. */
int trainer_fit(const fsnn_cfg *cfg, fsnn_net *net, trainer_state *ts, const trainer_data *train,
                const trainer_data *test, const trainer_hooks *hooks, const reduce_ops *red);

/* Reduced statistics of the epoch so far as a flat vector (checkpoints), and
 * back. TRAINER_PARTIAL_N values. */
#define TRAINER_PARTIAL_N 12
void trainer_partial_pack(const model_stats *st, double *v);
/* The packed statistics of the epoch so far summed over ranks. Collective. */
int trainer_partial_reduced(const reduce_ops *red, const trainer_state *ts, double *v);
void trainer_partial_unpack(const double *v, model_stats *st);

/* Evaluates on `data`, split in contiguous blocks over the ranks of `red`:
 * fills test_loss, test_acc, test_fwd_residual and test_samples_per_s of
 * *row; `firing` receives spikes per neuron per step when not NULL.
 * Collective. */
int trainer_evaluate(const fsnn_cfg *cfg, fsnn_net *net, const trainer_data *data,
                     trainer_epoch *row, double *firing, const reduce_ops *red);

/* trainer_evaluate that also records how each sample's simulation approaches
 * the equilibrium step by step: *trace (created here, freed by the caller
 * with model_trace_destroy) holds the sums and maxima over all samples of
 * all ranks (model_trace). Collective. */
int trainer_evaluate_trace(const fsnn_cfg *cfg, fsnn_net *net, const trainer_data *data,
                           trainer_epoch *row, double *firing, model_trace **trace,
                           const reduce_ops *red);

#endif
