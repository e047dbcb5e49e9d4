/* cmd_train: `fsnn train CONFIG [section.key=value ...]` -- creates or
 * resumes a run directory and trains its net to the last epoch, writing
 * metrics.csv and checkpoints through the trainer's hooks. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"     // defines: cmd_model_summary
#include "config.h"  // defines: config_write
#include "fsutil.h"  // defines: fsutil_mkdirs, fsutil_join, fsutil_write_atomic
#include "log.h"     // defines: log_info, log_warn
#include "metrics.h" // defines: metrics_create, metrics_append, metrics_pack
#include "netspec.h" // defines: netspec_parse, netspec_infer
#include "par.h"     // defines: par_all_ok
#include "reducer.h" // defines: reducer_world, reducer_comm
#include "run.h"
#include "status.h" // defines: CHECK, FAIL

/* Set by SIGTERM or SIGUSR1 (SLURM's warning before a job's end). */
static volatile sig_atomic_t cmd_train_signal;

static void cmd_train_on_signal(int sig) {
    cmd_train_signal = sig;
}

void cmd_train_catch_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = cmd_train_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
}

/* What the hooks carry between steps and epochs. */
typedef struct {
    run_ctx r;
    const reduce_ops *red; /* the data-parallel group; only world rank 0 writes files */
    char metrics[CFG_PATH_MAX + 32];
    char *config_text;
    double *history; /* [rows x METRICS_N_COLS], the rows of metrics.csv */
    int rows, cap;
    long restarts; /* SLURM_RESTART_COUNT, recorded in every row */
    int writer;    /* 1 on the rank that writes files (world rank 0) */
    int split;     /* the net is split over model ranks */
    int world_size;
} train_run;

static int cmd_train_config_text(const fsnn_cfg *cfg, char **text) {
    size_t len = 0;
    FILE *mem = open_memstream(text, &len);
    if (!mem) return FAIL("cannot buffer the configuration: %s", strerror(errno));
    int rc = config_write(cfg, mem);
    fclose(mem);
    return rc;
}

/* Writes the checkpoint of the current state. Collective: the statistics of
 * the unfinished epoch are summed over ranks, all agree. */
static int cmd_train_checkpoint(train_run *run, const trainer_state *ts, fsnn_net *net) {
    ckpt_data d;
    memset(&d, 0, sizeof d);
    d.history = run->history;
    d.history_rows = run->rows;
    d.config_text = run->config_text;
    d.world_size = run->world_size;
    CHECK(run_agree(trainer_partial_reduced(run->red, ts, d.partial)));
    return run_ckpt_write(net, ts, run->r.cfg.run_dir, &d, run->writer);
}

static int cmd_train_on_step(void *ctx, const trainer_state *ts, fsnn_net *net) {
    train_run *run = ctx;
    /* A signal on any rank stops all ranks at this same step. */
    double sig = (double)cmd_train_signal;
    CHECK(run->red->max_f64(run->red->ctx, &sig, 1));
    /* With model ranks the reducer spans one rank per group only: the ranks
     * of the other places must learn of the signal too. */
    if (run->split && !par_all_ok(sig == 0.0) && sig == 0.0) sig = SIGTERM;
    int every = run->r.cfg.checkpoint_every_steps;
    if (sig != 0.0 || (every > 0 && ts->iter % every == 0))
        CHECK(cmd_train_checkpoint(run, ts, net));
    if (sig == 0.0) return TRAINER_GO;
    log_info("signal %d: checkpoint written at epoch %d step %ld; stopping (exit code %d, the "
             "same command resumes)",
             (int)sig, ts->epoch + 1, ts->step, TRAINER_STOPPED);
    return TRAINER_STOP;
}

static int cmd_train_on_epoch(void *ctx, const trainer_epoch *row, const trainer_state *ts,
                              fsnn_net *net) {
    train_run *run = ctx;
    if (run->rows == run->cap) {
        int cap = run->cap ? 2 * run->cap : 16;
        double *h = realloc(run->history, sizeof(double) * (size_t)cap * METRICS_N_COLS);
        if (!h) return FAIL("out of memory for the history of %d epochs", cap);
        run->history = h;
        run->cap = cap;
    }
    trainer_epoch with_restarts = *row;
    with_restarts.restarts = run->restarts;
    metrics_pack(&with_restarts, run->history + (size_t)run->rows * METRICS_N_COLS);
    run->rows++;
    int rc = run->writer ? metrics_append(run->metrics, &with_restarts) : FSNN_OK;
    CHECK(run_agree(rc));
    return cmd_train_checkpoint(run, ts, net);
}

/* How often SLURM has requeued this job (SLURM_RESTART_COUNT, docs/slurm.md);
 * 0 when the variable is not set. */
static int cmd_train_restarts(long *restarts) {
    const char *s = getenv("SLURM_RESTART_COUNT");
    *restarts = 0;
    if (!s) return FSNN_OK;
    char *end = NULL;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno != 0)
        return FAIL("environment variable SLURM_RESTART_COUNT='%.40s' is not a non-negative "
                    "integer",
                    s);
    *restarts = v;
    return FSNN_OK;
}

/* Creates the run directory with the resolved config and an empty
 * metrics.csv. Refuses a directory that already holds a run. */
static int cmd_train_open_dir(const train_run *run) {
    const fsnn_cfg *cfg = &run->r.cfg;
    if (fsutil_is_file(run->metrics))
        return FAIL("%s holds a run without a checkpoint (metrics.csv); set another run.dir or "
                    "move it away",
                    cfg->run_dir);
    CHECK(fsutil_mkdirs(cfg->run_dir));
    char cfg_path[CFG_PATH_MAX + 32];
    CHECK(fsutil_join(cfg_path, sizeof cfg_path, cfg->run_dir, "config.ini"));
    CHECK(fsutil_write_atomic(cfg_path, run->config_text, strlen(run->config_text)));
    CHECK(metrics_create(run->metrics));
    return FSNN_OK;
}

/* Refuses to resume a run under another variant of the algorithm than its
 * checkpoint's: the weights, u and v of one mean something else in the
 * other. A checkpoint that cannot be read is left to the resume, which
 * falls back to the previous one or says why. */
static int cmd_train_check_mode(const fsnn_cfg *cfg) {
    char path[CFG_PATH_MAX + 32];
    CHECK(fsutil_join(path, sizeof path, cfg->run_dir, CKPT_FILE));
    if (!fsutil_is_file(path)) CHECK(fsutil_join(path, sizeof path, cfg->run_dir, CKPT_PREV));
    fsnn_cfg mode;
    if (run_ckpt_config(path, &mode) != 0) {
        status_clear();
        return FSNN_OK;
    }
    static const char *const fid[] = {"reference", "fsnn"}, *const sn[] = {"kernel", "operator"},
                             *const bn[] = {"reference", "consistent"},
                             *const ev[] = {"inplace", "clean"};
    const struct {
        const char *key, *was, *now;
        int differ;
    } keys[] = {
        {"model.fidelity", fid[mode.model_fidelity], fid[cfg->model_fidelity],
         mode.model_fidelity != cfg->model_fidelity},
        {"model.spectral_norm", sn[mode.model_spectral_norm], sn[cfg->model_spectral_norm],
         mode.model_spectral_norm != cfg->model_spectral_norm},
        {"model.loop_bn", bn[mode.model_loop_bn], bn[cfg->model_loop_bn],
         mode.model_loop_bn != cfg->model_loop_bn},
        {"data.event_average", ev[mode.data_event_average], ev[cfg->data_event_average],
         mode.data_event_average != cfg->data_event_average},
    };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        if (keys[i].differ)
            return FAIL("%s was trained with %s = %s, this run says %s: a run resumes only under "
                        "the variant it was trained with (docs/fidelity.md); set %s = %s or "
                        "another run.dir",
                        path, keys[i].key, keys[i].was, keys[i].now, keys[i].key, keys[i].was);
    return FSNN_OK;
}

/* Resumes from the run directory's newest good checkpoint: net, optimiser,
 * position, history; metrics.csv is rewritten from the history, so rows of
 * epochs after the checkpoint disappear. Every rank reads the file. */
static int cmd_train_resume(train_run *run) {
    trainer_state *ts = &run->r.ts;
    ckpt_data d;
    char used[CFG_PATH_MAX + 64];
    int rc = run_ckpt_read(run->r.net, ts, run->r.cfg.run_dir, &d, used, sizeof used);
    run->history = d.history;
    run->rows = run->cap = d.history_rows;
    d.history = NULL;
    ckpt_data_free(&d);
    CHECK(rc);
    /* The unfinished epoch's statistics are all ranks' sums: one rank carries them. */
    if (run->red->rank == 0) trainer_partial_unpack(d.partial, &ts->partial);
    if (run->writer) {
        rc = metrics_create(run->metrics);
        for (int r = 0; rc == 0 && r < run->rows; r++) {
            trainer_epoch row;
            metrics_unpack(run->history + (size_t)r * METRICS_N_COLS, &row);
            rc = metrics_append(run->metrics, &row);
        }
    }
    log_info("resuming from %s: epoch %d, step %ld (written by %d rank%s, now %d)", used,
             ts->epoch + 1, ts->step, d.world_size, d.world_size == 1 ? "" : "s", run->world_size);
    return rc;
}

/* The variant of the algorithm (docs/fidelity.md), and a warning for the
 * reference's biased N-MNIST adjoint iteration. */
static void cmd_train_log_mode(const fsnn_cfg *cfg) {
    log_info("algorithm: model.fidelity = %s, spectral_norm = %s, loop_bn = %s%s",
             cfg->model_fidelity == FIDELITY_REFERENCE ? "reference" : "fsnn",
             cfg->model_spectral_norm == SPECTRAL_KERNEL ? "kernel" : "operator",
             cfg->model_loop_bn == LOOP_BN_REFERENCE ? "reference" : "consistent",
             cfg->data_dataset != DATASET_NMNIST
                 ? ""
                 : (cfg->data_event_average == EVENT_AVG_INPLACE ? ", event_average = inplace"
                                                                 : ", event_average = clean"));
    if (cfg->solver_kind == SOLVER_HALVING)
        log_warn("solver.kind = halving is the reference's N-MNIST iteration beta <- (J^T beta + "
                 "dL/da) / 2: it solves (2I - J^T) beta = dL/da, not the adjoint equation, so its "
                 "gradients are biased (about half); solver.kind = broyden solves the adjoint");
}

/* The net's layers, shapes and sizes (as `fsnn model` prints them), the
 * neuron and solver settings, the variant and the parallel layout; rank 0
 * prints. */
static void cmd_train_log_net(const train_run *run, int groups, int rank) {
    const fsnn_cfg *cfg = &run->r.cfg;
    const run_shape *sh = &run->r.shape;
    const fsnn_net *n = run->r.net;
    const fsnn_model *m = n->model;
    netspec net;
    netspec_sizes sz;
    netspec_error err;
    if (rank == 0 && !netspec_parse(cfg->model_net, &net, &err) &&
        !netspec_infer(&net, (netspec_shape){sh->c, sh->h, sh->w, 0}, sh->classes, &sz, &err)) {
        cmd_model_summary(stdout, &net, &sz);
        fflush(stdout);
    }
    char name[CFG_NET_MAX + 64];
    if (!m || m->fb_op.kind == LINOP_FC)
        snprintf(name, sizeof name, "%d-%ld (F%ld)", n->n_in, n->n_spiking, n->n_spiking);
    else
        snprintf(name, sizeof name, "%s on %dx%dx%d", cfg->model_net, sh->c, sh->h, sh->w);
    log_info("model: %s %s, T=%d, V_th=%g, lambda=%g: %ld neurons, %zu parameters; adjoint solver "
             "%s (at most %d iterations)",
             name, cfg->neuron_leak == 1.0f ? "IF" : "LIF", n->T, cfg->neuron_vth, cfg->neuron_leak,
             n->neurons, n->n_params_all, solver_name(cfg->solver_kind), cfg->solver_max_iters);
    if (m && cfg->model_input_padding >= 0)
        log_info("model.input_padding = %d: layer 1's map is %d x %d x %d (the table's shapes "
                 "assume padding kernel / 2)",
                 cfg->model_input_padding, m->in_op.conv.O, m->in_op.conv.Ho, m->in_op.conv.Wo);
    cmd_train_log_mode(cfg);
    char layout[768];
    n->ops.describe(n, cfg, groups, layout, sizeof layout);
    if (*layout) log_info("%s", layout);
}

/* Resumes the run directory's checkpoint, or creates the run and
 * initialises the net. Collective. */
static int cmd_train_start(train_run *run) {
    const fsnn_cfg *cfg = &run->r.cfg;
    if (ckpt_present(cfg->run_dir)) {
        CHECK(run_agree(cmd_train_check_mode(cfg)));
        return cmd_train_resume(run);
    }
    int rc = run->writer ? cmd_train_open_dir(run) : FSNN_OK;
    int r2 = run->r.net->ops.init(run->r.net, cfg->run_seed);
    return rc ? rc : r2;
}

/* The last line of a finished run. */
static void cmd_train_done(const train_run *run) {
    if (run->rows > 0) {
        trainer_epoch last;
        metrics_unpack(run->history + (size_t)(run->rows - 1) * METRICS_N_COLS, &last);
        log_info("done: test accuracy %.2f%% after %d epochs; run directory: %s", last.test_acc,
                 last.epoch, run->r.cfg.run_dir);
    } else {
        log_info("done: no epochs requested; run directory: %s", run->r.cfg.run_dir);
    }
}

/* Trains from the run's state to the last epoch. Collective. */
static int cmd_train_fit(train_run *run, const grid_env *grid) {
    run_ctx *r = &run->r;
    trainer_hooks hooks = {
        .on_step = cmd_train_on_step, .on_epoch = cmd_train_on_epoch, .ctx = run};
    cmd_train_log_net(run, grid->groups, grid->world_rank);
    CHECK(trainer_fit(&r->cfg, r->net, &r->ts, &r->train, &r->test, &hooks, run->red));
    return r->net->ops.finish ? r->net->ops.finish(r->net) : FSNN_OK;
}

/* Everything that can be checked (config, data, net) is checked before the
 * run directory is created, so a bad input leaves nothing behind. A run
 * directory holding a checkpoint is resumed. */
int cmd_train(int argc, char **argv) {
    if (argc < 1) return FAIL("fsnn train: a configuration file is needed");
    train_run run;
    memset(&run, 0, sizeof run);
    fsnn_cfg *cfg = &run.r.cfg;
    CHECK(run_read_config(cfg, argv[0], 0, argc - 1, argv + 1));
    run_setup_blas(cfg);
    grid_env grid;
    CHECK(run_agree(grid_create(&grid, cfg->parallel_model_ranks)));
    reduce_ops red;
    int rc = grid.model_ranks == 1 ? reducer_world(&red) : reducer_comm(&red, grid.data);
    run.red = &red;
    run.writer = grid.world_rank == 0;
    run.split = grid.model_ranks > 1;
    run.world_size = grid.world_size;
    if (rc == 0) rc = cmd_train_restarts(&run.restarts);
    if (rc == 0) rc = fsutil_join(run.metrics, sizeof run.metrics, cfg->run_dir, "metrics.csv");
    if (rc == 0) rc = cmd_train_config_text(cfg, &run.config_text);
    if (rc == 0) rc = run_open(&run.r, &grid, cfg->data_train_limit, 1);
    /* Every rank of the group must take part in the collectives below. */
    rc = run_agree(rc);
    if (rc == 0) rc = run_agree(cmd_train_start(&run));
    if (rc == 0) rc = cmd_train_fit(&run, &grid);
    if (rc == 0) cmd_train_done(&run);
    run_close(&run.r);
    free(run.config_text);
    free(run.history);
    grid_destroy(&grid);
    return rc;
}
