/* config_keys: the option table of fsnn (config_impl.h), one entry per key
 * with its type, default, range and one line of documentation. */
#include "config_impl.h"

#include <math.h>

#include "cfg.h" // defines: fsnn_cfg and the enums its keys take

static const config_choice config_progress_names[] = {
    {"auto", -1}, {"plain", 0}, {"bar", 1}, {NULL, 0}};
static const config_choice config_dataset_names[] = {
    {"fmnist", DATASET_FMNIST},     {"mnist", DATASET_MNIST},   {"cifar10", DATASET_CIFAR10},
    {"cifar100", DATASET_CIFAR100}, {"nmnist", DATASET_NMNIST}, {NULL, 0}};
static const config_choice config_spike_names[] = {
    {"auto", SPIKE_AUTO}, {"dense", SPIKE_DENSE}, {"event", SPIKE_EVENT}, {NULL, 0}};
static const config_choice config_conv_names[] = {
    {"onednn", CONV_ONEDNN}, {"im2col", CONV_IM2COL}, {NULL, 0}};
static const config_choice config_precision_names[] = {
    {"fp32", SIM_FP32}, {"bf16", SIM_BF16}, {NULL, 0}};
static const config_choice config_solver_names[] = {
    {"broyden", SOLVER_BROYDEN}, {"fixed_point", SOLVER_FIXED_POINT}, {"anderson", SOLVER_ANDERSON},
    {"exact", SOLVER_EXACT},     {"halving", SOLVER_HALVING},         {NULL, 0}};
static const config_choice config_fidelity_names[] = {
    {"reference", FIDELITY_REFERENCE}, {"fsnn", FIDELITY_FSNN}, {NULL, 0}};
static const config_choice config_spectral_names[] = {{"auto", SPECTRAL_AUTO},
                                                      {"kernel", SPECTRAL_KERNEL},
                                                      {"operator", SPECTRAL_OPERATOR},
                                                      {NULL, 0}};
static const config_choice config_loop_bn_names[] = {{"auto", LOOP_BN_AUTO},
                                                     {"reference", LOOP_BN_REFERENCE},
                                                     {"consistent", LOOP_BN_CONSISTENT},
                                                     {NULL, 0}};
static const config_choice config_event_avg_names[] = {{"auto", EVENT_AVG_AUTO},
                                                       {"inplace", EVENT_AVG_INPLACE},
                                                       {"clean", EVENT_AVG_CLEAN},
                                                       {NULL, 0}};
static const config_choice config_optim_names[] = {
    {"sgd", OPTIM_SGD}, {"adam", OPTIM_ADAM}, {NULL, 0}};
static const config_choice config_onoff_names[] = {{"on", 1}, {"off", 0}, {NULL, 0}};
static const config_choice config_dropout_shape_names[] = {
    {"neuron", 0}, {"channel", 1}, {NULL, 0}};
static const config_choice config_auto_onoff_names[] = {
    {"auto", -1}, {"on", 1}, {"off", 0}, {NULL, 0}};

#define CONFIG_AT(field) offsetof(fsnn_cfg, field)
#define CONFIG_SIZE(field) sizeof(((fsnn_cfg *)0)->field)
#define CONFIG_NUM(k, t, field, d, lo_, lo_open_, hi_, hi_open_, doc_)                             \
    {                                                                                              \
        .key = k, .type = t, .offset = CONFIG_AT(field), .def = d, .lo = lo_, .hi = hi_,           \
        .lo_open = lo_open_, .hi_open = hi_open_, .doc = doc_                                      \
    }
#define CONFIG_INTEGER(k, t, field, d, lo_, hi_, doc_)                                             \
    CONFIG_NUM(k, t, field, d, lo_, 0, hi_, 0, doc_)
#define CONFIG_STR(k, field, d, doc_)                                                              \
    {                                                                                              \
        .key = k, .type = CONFIG_STRING, .offset = CONFIG_AT(field), .size = CONFIG_SIZE(field),   \
        .def = d, .doc = doc_                                                                      \
    }
#define CONFIG_ENUMS(k, field, d, names, doc_)                                                     \
    {                                                                                              \
        .key = k, .type = CONFIG_ENUM, .offset = CONFIG_AT(field), .def = d, .choices = names,     \
        .doc = doc_                                                                                \
    }

/* Defaults: SPEC §4-5, the paper's Fashion-MNIST network and schedule. */
static const config_opt config_table[] = {
    CONFIG_STR("run.dir", run_dir, "runs/default",
               "run directory: config.ini, metrics.csv and checkpoint.h5 are written here"),
    CONFIG_INTEGER("run.seed", CONFIG_U64, run_seed, "1", 0, 0,
                   "seed of every random stream (initialisation, shuffling, dropout)"),
    CONFIG_INTEGER("run.threads", CONFIG_INT, run_threads, "0", 0, 256,
                   "threads per process (BLAS and per-sample loops); 0 = one per core"),
    CONFIG_ENUMS("run.progress", run_progress, "auto", config_progress_names,
                 "progress display: a bar on a terminal (auto), plain lines, or always a bar"),
    CONFIG_ENUMS("data.dataset", data_dataset, "fmnist", config_dataset_names,
                 "data set: Fashion-MNIST, MNIST, CIFAR-10, CIFAR-100 or N-MNIST (docs/data.md)"),
    CONFIG_STR("data.path", data_path, "data/fashion-mnist",
               "folder with the data set's files: the four IDX files (plain or .gz), the CIFAR "
               "binary batches, or N-MNIST's Train and Test folders"),
    CONFIG_INTEGER("data.train_limit", CONFIG_LONG, data_train_limit, "0", 0, HUGE_VAL,
                   "use the first N training samples; 0 = all"),
    CONFIG_INTEGER("data.test_limit", CONFIG_LONG, data_test_limit, "0", 0, HUGE_VAL,
                   "use the first N test samples; 0 = all"),
    CONFIG_ENUMS("data.augment", data_augment, "auto", config_auto_onoff_names,
                 "random crop (padding 4) and horizontal flip of training images; auto = on for "
                 "CIFAR"),
    CONFIG_INTEGER("data.event_window_us", CONFIG_LONG, data_event_window_us, "3000", 0, 8388607,
                   "N-MNIST: microseconds of events per frame, one frame per time step from the "
                   "recording's start; 0 = the sample's own span cut into model.time_steps frames"),
    CONFIG_ENUMS("data.event_stabilize", data_event_stabilize, "on", config_onoff_names,
                 "N-MNIST: undo the three saccades' motion before binning (the reference's "
                 "preprocessing)"),
    CONFIG_ENUMS("data.event_average", data_event_average, "auto", config_event_avg_names,
                 "N-MNIST: the input average of the training step; inplace = the reference's (its "
                 "last frame overwritten by the average, which the simulation's last step then "
                 "sees, and the fixed point's input scaled as docs/fidelity.md gives), clean = "
                 "the weighted average of the frames, untouched; auto = inplace under "
                 "model.fidelity = reference"),
    {.key = "model.net",
     .type = CONFIG_NET,
     .offset = CONFIG_AT(model_net),
     .size = CONFIG_SIZE(model_net),
     .aux = CONFIG_AT(model_hidden),
     .def = "400 (F400)",
     .doc = "network in the paper's notation, e.g. '400 (F400)', '64C5s (F64C5)' or "
            "'96C3s-256C3-384C3s-384C3-256C3 (F96C3u)' (docs/user-guide.md, "
            "docs/multilayer.md)"},
    CONFIG_INTEGER("model.time_steps", CONFIG_INT, model_time_steps, "5", 1, 10000,
                   "simulation time steps T"),
    CONFIG_ENUMS("model.spike_product", model_spike_product, "auto", config_spike_names,
                 "feedback products W s and the adjoint's W^T (m ⊙ v): sgemm (dense), sums "
                 "over spikes or active neurons (event), or by density"),
    CONFIG_ENUMS("model.conv", model_conv, "onednn", config_conv_names,
                 "the dense convolutions (forward, input- and weight-VJP, transposed conv): "
                 "oneDNN's direct kernels, or im2col + sgemm (docs/performance.md)"),
    CONFIG_ENUMS("model.fidelity", model_fidelity, "reference", config_fidelity_names,
                 "reference: the authors' algorithm, quirks included (raw scale g clamped where W "
                 "is formed, readout drawn as a linear layer's default, input BatchNorm's running "
                 "statistics moved twice a step, N-MNIST's BatchNorm during the simulation); "
                 "fsnn: g kept in [-1, 1], unit-norm readout rows, one update "
                 "(docs/fidelity.md)"),
    CONFIG_ENUMS("model.spectral_norm", model_spectral_norm, "auto", config_spectral_names,
                 "sigma(V) of the restriction W = clamp(g) V / sigma(V): kernel = of V reshaped to "
                 "[dim 0, rest] (the reference's), operator = of the convolution as a linear map "
                 "(what Theorems 1-3 need; 1.2-1.6x larger for conv kernels); FC nets: the same; "
                 "auto = kernel under model.fidelity = reference"),
    CONFIG_ENUMS("model.loop_bn", model_loop_bn, "auto", config_loop_bn_names,
                 "multi-layer nets' BatchNorm in the loop: reference = running statistics in the "
                 "simulation, batch statistics with their full Jacobian in f, J^T at f(a[T]) and "
                 "one adjoint solve over the whole batch; consistent = batch statistics of the "
                 "average current in the simulation, held constant in J^T and the VJP, J^T at "
                 "a[T]; auto = reference under model.fidelity = reference"),
    CONFIG_INTEGER("model.input_padding", CONFIG_INT, model_input_padding, "-1", -1, 64,
                   "zero padding of layer 1's input convolution; -1 = kernel / 2 (the reference's "
                   "N-MNIST net uses 1)"),
    CONFIG_ENUMS("compute.sim_precision", compute_sim_precision, "fp32", config_precision_names,
                 "the simulation's spike products (feedback and layer to layer): float, or bf16 "
                 "weights times exact spikes with float sums on CPUs with AVX512_BF16; the adjoint "
                 "and the gradients stay float (docs/performance.md)"),
    CONFIG_NUM("neuron.vth", CONFIG_FLOAT, neuron_vth, "2", 0, 1, HUGE_VAL, 0,
               "firing threshold V_th"),
    CONFIG_NUM("neuron.leak", CONFIG_FLOAT, neuron_leak, "1", 0, 1, 1, 0,
               "membrane leak lambda: 1 = IF, below 1 = LIF"),
    CONFIG_ENUMS("solver.kind", solver_kind, "broyden", config_solver_names,
                 "solver of the adjoint equilibrium"),
    CONFIG_INTEGER("solver.max_iters", CONFIG_INT, solver_max_iters, "30", 1, 1000,
                   "most iterations of the adjoint solver"),
    CONFIG_NUM("solver.tol", CONFIG_DOUBLE, solver_tol, "2e-10", 0, 1, HUGE_VAL, 0,
               "stop when norm(g) < tol * sqrt(n), per sample"),
    CONFIG_INTEGER("solver.anderson_m", CONFIG_INT, solver_anderson_m, "5", 1, 50,
                   "history length of Anderson acceleration"),
    CONFIG_INTEGER("train.epochs", CONFIG_INT, train_epochs, "100", 0, 100000,
                   "training epochs; 0 only writes the initial run directory"),
    CONFIG_INTEGER("train.batch", CONFIG_INT, train_batch, "128", 1, 65536, "training batch size"),
    CONFIG_INTEGER("train.test_batch", CONFIG_INT, train_test_batch, "200", 1, 65536,
                   "evaluation batch size"),
    CONFIG_NUM("train.lr", CONFIG_DOUBLE, train_lr, "0.05", 0, 1, HUGE_VAL, 0,
               "initial learning rate"),
    CONFIG_NUM("train.momentum", CONFIG_DOUBLE, train_momentum, "0.9", 0, 0, 1, 1, "SGD momentum"),
    CONFIG_NUM("train.weight_decay", CONFIG_DOUBLE, train_weight_decay, "5e-4", 0, 0, HUGE_VAL, 0,
               "L2 weight decay"),
    CONFIG_ENUMS("train.optimizer", train_optimizer, "sgd", config_optim_names, "optimizer"),
    {.key = "train.lr_milestones",
     .type = CONFIG_LIST,
     .offset = CONFIG_AT(train_lr_milestones),
     .size = CFG_MILESTONES_MAX,
     .aux = CONFIG_AT(train_n_milestones),
     .def = "30, 60, 90",
     .lo = 0,
     .hi = HUGE_VAL,
     .doc = "epochs at which the learning rate is multiplied by lr_gamma; may be empty"},
    CONFIG_NUM("train.lr_gamma", CONFIG_DOUBLE, train_lr_gamma, "0.1", 0, 1, HUGE_VAL, 0,
               "learning-rate factor at each milestone"),
    CONFIG_INTEGER("train.warmup_iters", CONFIG_INT, train_warmup_iters, "0", 0, HUGE_VAL,
                   "iterations of linear learning-rate warm-up; 0 = none"),
    CONFIG_NUM("train.dropout", CONFIG_FLOAT, train_dropout, "0.2", 0, 0, 1, 1,
               "variational dropout rate (one mask per sample for all time steps)"),
    CONFIG_ENUMS("train.dropout_shape", train_dropout_channel, "neuron", config_dropout_shape_names,
                 "dropout masks: one draw per neuron, or per channel of a conv layer's map (the "
                 "same over its positions; fully connected layers: per neuron either way)"),
    CONFIG_NUM("train.adam_beta1", CONFIG_DOUBLE, train_adam_beta1, "0.9", 0, 0, 1, 1,
               "Adam: decay of the first moment"),
    CONFIG_NUM("train.adam_beta2", CONFIG_DOUBLE, train_adam_beta2, "0.999", 0, 0, 1, 1,
               "Adam: decay of the second moment"),
    CONFIG_NUM("train.adam_eps", CONFIG_DOUBLE, train_adam_eps, "1e-8", 0, 1, HUGE_VAL, 0,
               "Adam: denominator offset"),
    CONFIG_INTEGER("train.max_bad_steps", CONFIG_INT, train_max_bad_steps, "10", 1, 1000000,
                   "steps in a row skipped for a non-finite loss or gradient before the run stops"),
    CONFIG_INTEGER("checkpoint.every_steps", CONFIG_INT, checkpoint_every_steps, "0", 0, 100000000,
                   "also write checkpoint.h5 every N steps; 0 = at the end of each epoch only"),
    CONFIG_ENUMS("parallel.deterministic", parallel_deterministic, "on", config_onoff_names,
                 "on: the same weights bit for bit for any number of ranks; off: faster sums"),
    CONFIG_INTEGER("parallel.micro_batch", CONFIG_INT, parallel_micro_batch, "32", 1, 65536,
                   "samples per micro-shard of a batch (deterministic mode's unit of work)"),
    CONFIG_ENUMS("parallel.overlap", parallel_overlap, "on", config_onoff_names,
                 "on: reduce the gradients in buckets, each started while the next is computed"),
    CONFIG_INTEGER("parallel.model_ranks", CONFIG_INT, parallel_model_ranks, "1", 1, 4096,
                   "ranks per data-parallel group that share one model (FC nets 'N (FN)': the "
                   "weights are distributed block-cyclically over them; nets of two layers or "
                   "more: a layer pipeline, each rank runs a contiguous range of layers, at most "
                   "one rank per layer); the world size must be a multiple"),
    CONFIG_NUM("parallel.collective_timeout", CONFIG_DOUBLE, parallel_collective_timeout, "600", 0,
               0, HUGE_VAL, 0,
               "seconds a rank waits in one collective before it aborts the job (0: for ever)"),
};

_Static_assert(sizeof config_table / sizeof config_table[0] == CONFIG_N_OPTS,
               "CONFIG_N_OPTS (config_impl.h) must be the number of keys");

const config_opt *const config_opts = config_table;
