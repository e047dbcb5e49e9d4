/* cfg: the resolved settings of one run, as plain values.
 *
 * The numerics read this struct; io/config fills it from an INI file and
 * command-line overrides through one option table (io/config.c), which is also
 * what `fsnn --help-config` and docs/config.md print. Defaults are those of
 * SPEC §4-5 (the reference code's). */
#ifndef FSNN_CFG_H
#define FSNN_CFG_H

#include <stdint.h>

#define CFG_PATH_MAX 512
#define CFG_NET_MAX 128
#define CFG_MILESTONES_MAX 16

typedef enum {
    DATASET_FMNIST = 0,
    DATASET_MNIST = 1,
    DATASET_CIFAR10 = 2,
    DATASET_CIFAR100 = 3,
    DATASET_NMNIST = 4
} cfg_dataset;
/* SOLVER_HALVING: beta <- (J^T beta + dL/da) / 2, the reference's N-MNIST
 * iteration, which solves (2I - J^T) beta = dL/da: a biased gradient. */
typedef enum {
    SOLVER_BROYDEN = 0,
    SOLVER_FIXED_POINT,
    SOLVER_ANDERSON,
    SOLVER_EXACT,
    SOLVER_HALVING
} cfg_solver;
typedef enum { OPTIM_SGD = 0, OPTIM_ADAM = 1 } cfg_optim;
typedef enum { SPIKE_AUTO = 0, SPIKE_DENSE, SPIKE_EVENT } cfg_spike_product;
/* The dense convolutions: oneDNN's direct kernels or im2col + sgemm (conv.h). */
typedef enum { CONV_ONEDNN = 0, CONV_IM2COL } cfg_conv;
/* compute.sim_precision: the simulation's spike products in float, or in
 * bf16 with float sums (linop.h's linop_set_sim_bf16). */
typedef enum { SIM_FP32 = 0, SIM_BF16 } cfg_sim_precision;
/* model.fidelity (docs/fidelity.md): the authors' algorithm, quirks included,
 * or fsnn's own consistent variant. */
typedef enum { FIDELITY_REFERENCE = 0, FIDELITY_FSNN = 1 } cfg_fidelity;
/* model.spectral_norm: sigma(V) of the kernel reshaped to [dim 0, rest], or
 * the operator norm of the map (the same for FC). */
typedef enum { SPECTRAL_AUTO = -1, SPECTRAL_KERNEL = 0, SPECTRAL_OPERATOR = 1 } cfg_spectral;
/* model.loop_bn: BatchNorm in the loop of multi-layer nets (mlnet.h). */
typedef enum { LOOP_BN_AUTO = -1, LOOP_BN_REFERENCE = 0, LOOP_BN_CONSISTENT = 1 } cfg_loop_bn;
/* data.event_average: N-MNIST's input average as the reference computes it
 * (in place in the last frame) or the plain weighted average. */
typedef enum { EVENT_AVG_AUTO = -1, EVENT_AVG_INPLACE = 0, EVENT_AVG_CLEAN = 1 } cfg_event_avg;

typedef struct {
    /* [run] */
    char run_dir[CFG_PATH_MAX];
    uint64_t run_seed;
    int run_threads;  /* BLAS threads; 0 = one per core */
    int run_progress; /* -1 auto (bar on a terminal), 0 plain lines, 1 bar */
    /* [data] */
    cfg_dataset data_dataset;
    char data_path[CFG_PATH_MAX];
    long data_train_limit; /* first N samples; 0 = all */
    long data_test_limit;
    int data_augment; /* -1 auto (on for CIFAR), 0 off, 1 on: random crop and flip (SPEC §4) */
    long data_event_window_us; /* N-MNIST frame width in microseconds; 0 = the sample's span / T */
    int data_event_stabilize;  /* N-MNIST: undo the saccades' motion first (1) or not (0) */
    cfg_event_avg data_event_average; /* resolved: never AUTO */
    /* [model] */
    char model_net[CFG_NET_MAX];
    int model_hidden; /* N of a net "N (FN)" (config_resolve); 0 for the other nets */
    int model_time_steps;
    cfg_spike_product model_spike_product;
    cfg_conv model_conv;
    cfg_fidelity model_fidelity;
    cfg_spectral model_spectral_norm; /* resolved: never AUTO */
    cfg_loop_bn model_loop_bn;        /* resolved: never AUTO */
    int model_input_padding;          /* of layer 1's conv; -1 = k/2 */
    /* [compute] */
    cfg_sim_precision compute_sim_precision;
    /* [neuron] */
    float neuron_vth;
    float neuron_leak; /* 1 = IF */
    /* [solver] */
    cfg_solver solver_kind;
    int solver_max_iters;
    double solver_tol; /* stop when ||g_i|| < tol * sqrt(n) per sample (SPEC §3) */
    int solver_anderson_m;
    /* [train] */
    int train_epochs;
    int train_batch;
    int train_test_batch;
    double train_lr;
    double train_momentum;
    double train_weight_decay;
    cfg_optim train_optimizer;
    int train_lr_milestones[CFG_MILESTONES_MAX];
    int train_n_milestones;
    double train_lr_gamma;
    int train_warmup_iters;
    float train_dropout;
    int train_dropout_channel; /* 1: one draw per channel of a conv map (train.dropout_shape) */
    double train_adam_beta1;
    double train_adam_beta2;
    double train_adam_eps;
    int train_max_bad_steps; /* consecutive non-finite steps before the run stops */
    /* [checkpoint] */
    int checkpoint_every_steps; /* 0 = at epoch ends only */
    /* [parallel] */
    int parallel_deterministic;         /* 1: reproducible sums, same bits for any rank count */
    int parallel_micro_batch;           /* samples per micro-shard of a global batch */
    int parallel_overlap;               /* 1: bucketed gradient reductions overlap the sums */
    double parallel_collective_timeout; /* seconds before a stuck collective aborts */
    int parallel_model_ranks;           /* ranks sharing one model (tensor parallel, FC only) */
} fsnn_cfg;

#endif
