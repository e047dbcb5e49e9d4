/* fsnn: the command. Reads like an outline: start the process environment,
 * read the configuration, load data, build the model, train or evaluate,
 * write the run directory, stop.
 *
 *   fsnn train CONFIG [section.key=value ...]
 *   fsnn eval RUN_DIR [--residual-trace [FILE]] [section.key=value ...]
 *   fsnn sweep SWEEP.ini [--submit | --local [-j K] | --dry-run] | status SWEEP_DIR
 *   fsnn report SWEEP_DIR [options]              (src/cmd_report.c)
 *   fsnn model NET --input CxHxW|DATASET [--classes K]   (src/cmd_model.c)
 *   fsnn --help | --help-config [--markdown] | --version
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"    // defines: blas_set_threads
#include "ckpt.h"    // defines: ckpt_write, ckpt_load_latest, ckpt_weights_sha256
#include "cmd.h"     // defines: cmd_sweep, cmd_report, cmd_model, cmd_model_summary
#include "config.h"  // defines: config_load, config_override, config_write, config_help
#include "cpuinfo.h" // defines: cpuinfo_report_blas
#include "dataset.h" // defines: dataset_load
#include "fsutil.h"  // defines: fsutil_mkdirs, fsutil_join, fsutil_write_atomic
#include "grid.h"    // defines: grid_create, grid_env
#include "log.h"     // defines: log_info, log_error
#include "metrics.h" // defines: metrics_create, metrics_append
#include "model.h"   // defines: fsnn_model
#include "netspec.h" // defines: netspec_parse, netspec_infer
#include "par.h"     // defines: par_init, par_finalize, par_all_ok, par_launcher_rank
#include "pipe.h"    // defines: pipe_create, pipe_describe, pipe_totals
#include "reducer.h" // defines: reducer_world
#include "report.h"  // defines: report_write_trace
#include "status.h"  // defines: CHECK, FAIL
#include "tpfc.h"    // defines: tpfc_create, tpfc_to_model, tpfc_full_from_local
#include "tptrain.h" // defines: tptrain_fit, tptrain_ckpt_shard
#include "trainer.h" // defines: trainer_fit, trainer_evaluate

#define FSNN_VERSION "0.1.0"

/* Exit codes (docs/user-guide.md). EXIT_RESUMABLE: stopped on a signal after
 * writing a checkpoint; the same command resumes. */
enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2, EXIT_RESUMABLE = TRAINER_STOPPED };

/* Set by SIGTERM or SIGUSR1 (SLURM's warning before a job's end). */
static volatile sig_atomic_t main_stop_signal;

static void main_on_signal(int sig) {
    main_stop_signal = sig;
}

static const char main_usage[] =
    "usage:\n"
    "  fsnn train CONFIG [section.key=value ...]   train; writes run.dir\n"
    "  fsnn eval RUN_DIR [section.key=value ...]   evaluate a trained run on its test set\n"
    "      [--residual-trace [FILE]]                 also the residual per time step (CSV)\n"
    "  fsnn report SWEEP_DIR [--csv FILE] [--markdown FILE] [--plots DIR]  table of a sweep\n"
    "  fsnn inspect CHECKPOINT.h5                  summary and weights_sha256 of a checkpoint\n"
    "  fsnn sweep SWEEP.ini [--submit | --local [-j K] | --dry-run]   seeds and grids of runs\n"
    "  fsnn sweep status SWEEP_DIR                 state of a sweep's runs (docs/sweeps.md)\n"
    "  fsnn model NET --input CxHxW|DATASET [--classes K]   layers, neurons and parameters of\n"
    "                                              a net in the paper's notation\n"
    "  fsnn --help-config [--markdown]             every configuration key\n"
    "  fsnn --version\n"
    "Run under mpirun/srun or alone. docs/user-guide.md explains the run directory.\n";

typedef struct {
    const fsnn_cfg *cfg;
    const reduce_ops *red; /* only rank 0 writes the run directory */
    char metrics[CFG_PATH_MAX + 32];
    char *config_text;
    double *history; /* [rows x METRICS_N_COLS], the rows of metrics.csv */
    int rows, cap;
    long restarts; /* SLURM_RESTART_COUNT, recorded in every row */
    int writer;    /* 1 on the rank that writes files (world rank 0) */
    int group;     /* this rank's data-parallel group (grid_env.group) */
    int world_size;
    /* Tensor-parallel runs (parallel.model_ranks > 1): the distributed net,
     * and the whole model and optimiser state gathered for checkpoints. */
    tpfc *tp;
    fsnn_model *full; /* owned, made at the first checkpoint or resume */
    optim *full_opt;  /* owned, likewise */
    /* Layer-pipeline runs (a multi-layer net, parallel.model_ranks > 1):
     * the transport over the group; the model is whole on every rank. */
    pipe_env *pipe;
    int in_c, in_h, in_w, classes;
} main_run;

static int main_config_text(const fsnn_cfg *cfg, char **text) {
    size_t len = 0;
    FILE *mem = open_memstream(text, &len);
    if (!mem) return FAIL("cannot buffer the configuration: %s", strerror(errno));
    int rc = config_write(cfg, mem);
    fclose(mem);
    return rc;
}

/* A failure on any rank stops every rank: the others would otherwise wait in
 * the next collective for ever. Collective. */
static int main_agree(int rc) {
    if (par_all_ok(rc == 0)) return FSNN_OK;
    return rc ? rc : FAIL("stopped because another rank failed (its message is above)");
}

/* The whole model and optimiser of a tensor-parallel run (run->full and
 * run->full_opt, made on first use), for a checkpoint or a resume. */
static int main_tp_full(main_run *run) {
    if (!run->full)
        CHECK(model_create(&run->full, run->cfg, run->in_c, run->in_h, run->in_w, run->classes));
    if (!run->full_opt) CHECK(optim_create(&run->full_opt, run->cfg, run->full->n_params));
    return FSNN_OK;
}

/* Gathers the distributed net and its optimiser state into run->full and
 * run->full_opt on the writing rank (the file holds whole tensors in the
 * layout of the one-process model). The ranks of group 0 send their blocks
 * to it; the other groups hold the same model and do nothing; only the
 * writer holds the whole model. Collective. */
static int main_tp_gather(main_run *run, const trainer_state *ts) {
    CHECK(main_agree(run->writer ? main_tp_full(run) : FSNN_OK));
    if (run->group != 0) return FSNN_OK;
    fsnn_model *full = run->full;
    optim *fo = run->full_opt;
    CHECK(tpfc_full_to_root(run->tp, full, run->tp->params, full ? full->params : NULL));
    CHECK(tpfc_full_to_root(run->tp, full, ts->opt->m1, fo ? fo->m1 : NULL));
    if (ts->opt->m2) CHECK(tpfc_full_to_root(run->tp, full, ts->opt->m2, fo ? fo->m2 : NULL));
    if (!run->writer) return FSNN_OK;
    tpfc_state_to_model(run->tp, full);
    fo->step = ts->opt->step;
    return FSNN_OK;
}

/* A tensor-parallel checkpoint: the ranks of group 0 write their blocks of
 * F, V and their optimiser state into the file together (parallel HDF5,
 * ckpt_write_sharded); world rank 0 writes the rest from a model whose F and
 * V it never fills (run->full's large arrays stay untouched, unbacked
 * memory). The other groups hold the same model and only agree. */
static int main_tp_checkpoint(main_run *run, const trainer_state *ts, ckpt_data *d) {
    int rc = run->group == 0 ? main_tp_full(run) : FSNN_OK;
    CHECK(main_agree(rc));
    if (run->group != 0) return FSNN_OK;
    const tpfc *t = run->tp;
    fsnn_model *full = run->full;
    optim *fo = run->full_opt, *lo = ts->opt;
    ckpt_shard sh;
    tptrain_ckpt_shard(t, full, lo->m1, lo->m2, &sh);
    trainer_state whole = *ts;
    if (run->writer) {
        tpfc_whole_to_full(t, full, t->params, full->params);
        tpfc_whole_to_full(t, full, lo->m1, fo->m1);
        if (lo->m2) tpfc_whole_to_full(t, full, lo->m2, fo->m2);
        tpfc_state_to_model(t, full);
        fo->step = lo->step;
        whole.opt = fo;
        d->m = full;
        d->ts = &whole;
    }
    return ckpt_write_sharded(run->cfg->run_dir, run->writer ? d : NULL, &sh);
}

/* Writes the checkpoint of the current state. Collective: the statistics of
 * the unfinished epoch are summed over ranks, rank 0 writes, all agree. A
 * tensor-parallel run writes in shards (m is NULL then). */
static int main_checkpoint(main_run *run, const trainer_state *ts, const fsnn_model *m) {
    ckpt_data d;
    memset(&d, 0, sizeof d);
    d.m = (fsnn_model *)m;
    d.ts = (trainer_state *)ts;
    d.history = run->history;
    d.history_rows = run->rows;
    d.config_text = run->config_text;
    d.world_size = run->world_size;
    int rc = trainer_partial_reduced(run->red, ts, d.partial);
    if (run->tp) {
        rc = main_agree(rc);
        if (rc == 0) rc = main_tp_checkpoint(run, ts, &d);
    } else if (rc == 0 && run->writer) {
        rc = ckpt_write(run->cfg->run_dir, &d);
    }
    return main_agree(rc);
}

static int main_on_step(void *ctx, const trainer_state *ts, const fsnn_model *m) {
    main_run *run = ctx;
    /* A signal on any rank stops all ranks at this same step. */
    double sig = (double)main_stop_signal;
    CHECK(run->red->max_f64(run->red->ctx, &sig, 1));
    /* With model ranks the reducer spans one rank per group only: the ranks
     * of the other places must learn of the signal too. */
    if (run->tp && !par_all_ok(sig == 0.0) && sig == 0.0) sig = SIGTERM;
    int every = run->cfg->checkpoint_every_steps;
    if (sig != 0.0 || (every > 0 && ts->iter % every == 0)) CHECK(main_checkpoint(run, ts, m));
    if (sig == 0.0) return TRAINER_GO;
    log_info("signal %d: checkpoint written at epoch %d step %ld; stopping (exit code %d, the "
             "same command resumes)",
             (int)sig, ts->epoch + 1, ts->step, EXIT_RESUMABLE);
    return TRAINER_STOP;
}

static int main_on_epoch(void *ctx, const trainer_epoch *row, const trainer_state *ts,
                         const fsnn_model *m) {
    main_run *run = ctx;
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
    CHECK(main_agree(rc));
    return main_checkpoint(run, ts, m);
}

/* How often SLURM has requeued this job (SLURM_RESTART_COUNT, docs/slurm.md);
 * 0 when the variable is not set. */
static int main_restarts(long *restarts) {
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

static int main_read_config(fsnn_cfg *cfg, const char *path, int stored, int argc, char **argv) {
    config_defaults(cfg);
    CHECK(stored ? config_load_run(path, cfg) : config_load(path, cfg));
    for (int i = 0; i < argc; i++)
        CHECK(config_override(argv[i], cfg));
    CHECK(config_resolve(path, cfg));
    par_set_collective_timeout(cfg->parallel_collective_timeout);
    return FSNN_OK;
}

/* Threads per process: run.threads, or the cores of the node shared among
 * the ranks on it. */
static void main_setup_blas(const fsnn_cfg *cfg) {
    int threads = cfg->run_threads;
    if (threads == 0) {
        int cores = blas_set_threads(0), local = par_local_ranks();
        threads = cores / local > 0 ? cores / local : 1;
    }
    blas_set_threads(threads);
    /* From initialisation on, so that every rank count computes the same. */
    blas_set_serial(cfg->parallel_deterministic);
    cpuinfo_report_blas();
}

/* Creates the run directory with the resolved config and an empty
 * metrics.csv. Refuses a directory that already holds a run. */
static int main_open_run(const fsnn_cfg *cfg, main_run *run) {
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

/* The algorithm's variant (docs/fidelity.md) a checkpoint's run was trained
 * with, from the configuration it stores; a checkpoint written before
 * model.fidelity existed was trained with fsnn's own variant. */
static int main_ckpt_mode(const char *path, fsnn_cfg *mode) {
    char *text = NULL;
    long n_params = 0;
    CHECK(ckpt_config(path, &text, &n_params));
    config_defaults(mode);
    int rc = config_load_run_string(path, text, mode);
    free(text);
    if (rc == 0) rc = config_resolve(path, mode);
    return rc;
}

/* Refuses to resume a run under another variant of the algorithm than its
 * checkpoint's: the weights, u and v of one mean something else in the
 * other. A checkpoint that cannot be read is left to main_resume, which
 * falls back to the previous one or says why. */
static int main_check_mode(const fsnn_cfg *cfg) {
    char path[CFG_PATH_MAX + 32];
    CHECK(fsutil_join(path, sizeof path, cfg->run_dir, CKPT_FILE));
    if (!fsutil_is_file(path)) CHECK(fsutil_join(path, sizeof path, cfg->run_dir, CKPT_PREV));
    fsnn_cfg mode;
    if (main_ckpt_mode(path, &mode) != 0) {
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

/* Resumes from the run directory's newest good checkpoint: model, optimiser,
 * position, history; metrics.csv is rewritten from the history, so rows of
 * epochs after the checkpoint disappear. Every rank reads the file. */
static int main_resume(main_run *run, fsnn_model *m, trainer_state *ts) {
    ckpt_data d;
    memset(&d, 0, sizeof d);
    d.m = m;
    d.ts = ts;
    char used[CFG_PATH_MAX + 64];
    CHECK(ckpt_load_latest(run->cfg->run_dir, &d, used, sizeof used));
    run->history = d.history;
    run->rows = run->cap = d.history_rows;
    d.history = NULL;
    free(d.config_text);
    /* The unfinished epoch's statistics are all ranks' sums: one rank carries them. */
    if (run->red->rank == 0) trainer_partial_unpack(d.partial, &ts->partial);
    int rc = FSNN_OK;
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

/* The net's layers, shapes and sizes (as `fsnn model` prints them) and the
 * neuron and solver settings; rank 0 prints. */
/* The variant of the algorithm (docs/fidelity.md), and a warning for the
 * reference's biased N-MNIST adjoint iteration. */
static void main_log_mode(const fsnn_cfg *cfg) {
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

static void main_log_model(const fsnn_cfg *cfg, const fsnn_model *m, int rank) {
    netspec net;
    netspec_sizes sz;
    netspec_error err;
    if (rank == 0 && !netspec_parse(cfg->model_net, &net, &err) &&
        !netspec_infer(&net, (netspec_shape){m->in_c, m->in_h, m->in_w, 0}, m->n_out, &sz, &err)) {
        cmd_model_summary(stdout, &net, &sz);
        fflush(stdout);
    }
    char name[CFG_NET_MAX + 64];
    if (m->fb_op.kind == LINOP_FC)
        snprintf(name, sizeof name, "%d-%d (F%d)", m->n_in, m->n, m->n);
    else
        snprintf(name, sizeof name, "%s on %dx%dx%d", cfg->model_net, m->in_c, m->in_h, m->in_w);
    log_info("model: %s %s, T=%d, V_th=%g, lambda=%g: %ld neurons, %zu parameters; adjoint solver "
             "%s (at most %d iterations)",
             name, m->leak == 1.0f ? "IF" : "LIF", m->T, m->vth, m->leak, model_neurons(m),
             m->n_params, solver_name(cfg->solver_kind), cfg->solver_max_iters);
    if (cfg->model_input_padding >= 0)
        log_info("model.input_padding = %d: layer 1's map is %d x %d x %d (the table's shapes "
                 "assume padding kernel / 2)",
                 cfg->model_input_padding, m->in_op.conv.O, m->in_op.conv.Ho, m->in_op.conv.Wo);
    main_log_mode(cfg);
}

/* Resumes a tensor-parallel run: the checkpoint holds whole tensors, read
 * into run->full and run->full_opt, of which each rank keeps its blocks; so
 * any grid resumes any other's file. */
static int main_tp_resume(main_run *run, trainer_state *ts) {
    CHECK(main_tp_full(run));
    trainer_state whole = *ts;
    whole.opt = run->full_opt;
    CHECK(main_resume(run, run->full, &whole));
    optim *local = ts->opt;
    *ts = whole;
    ts->opt = local;
    local->step = run->full_opt->step;
    CHECK(tpfc_from_model(run->tp, run->full));
    CHECK(tpfc_local_from_full(run->tp, run->full, run->full_opt->m1, local->m1));
    if (local->m2) CHECK(tpfc_local_from_full(run->tp, run->full, run->full_opt->m2, local->m2));
    /* Only the writer keeps a whole model (for checkpoints). */
    if (!run->writer) {
        model_destroy(&run->full);
        optim_destroy(&run->full_opt);
    }
    /* The blocks gathered back: the weights this grid now holds, by the
     * digest `fsnn inspect` prints for the file. */
    CHECK(main_tp_gather(run, ts));
    char hex[65];
    CHECK(main_agree(run->writer ? ckpt_weights_sha256(run->full, hex) : FSNN_OK));
    log_info("resharded onto %d groups of %d model ranks: weights_sha256 %s", run->red->size,
             run->tp->grid.nprow * run->tp->grid.npcol, run->writer ? hex : "");
    return FSNN_OK;
}

/* The layer pipeline's exchange over all stages of group 0 so far, and the
 * seconds per stage spent coding spikes and in the transport (world rank 0
 * logs). Collective. */
static int main_pipe_report(const pipe_env *p, int world_rank, int stages) {
    mlnet_traffic t;
    double sec[2];
    CHECK(pipe_totals(p, &t, sec));
    const double steps = t.steps > 0 ? (double)t.steps : 1.0;
    if (world_rank == 0)
        log_info("layer pipeline exchange (group 0, all stages): %ld spike messages, %.0f bytes "
                 "per message sent (bit masks only: %.0f, index lists only: %.0f); %.3g MB of "
                 "activations and adjoint vectors; per stage %.3f s coding spikes, %.3f s posting "
                 "sends, %.2f s receiving and waiting",
                 t.steps, t.spike_bytes / steps, t.mask_bytes / steps, t.list_bytes / steps,
                 t.float_bytes / 1e6, t.code_seconds / stages, sec[0] / stages, sec[1] / stages);
    return FSNN_OK;
}

/* The model of a run: the one-process model, or with parallel.model_ranks
 * > 1 the tensor-parallel FC net over the group (run->tp) or a multi-layer
 * net's layer pipeline over it (run->pipe); an optimiser of its (local)
 * size. */
static int main_make_model(main_run *run, const grid_env *grid, const trainer_data *train,
                           fsnn_model **m, trainer_state *ts) {
    const fsnn_cfg *cfg = run->cfg;
    if (grid->model_ranks == 1) {
        CHECK(model_create(m, cfg, train->channels, train->height, train->width, run->classes));
        return optim_create(&ts->opt, cfg, (*m)->n_params);
    }
    if (train->frames > 0)
        return FAIL("parallel.model_ranks = %d: model parallelism (the tensor-parallel net, the "
                    "layer pipeline) takes images, not event frames (data.dataset = %s; use "
                    "parallel.model_ranks = 1)",
                    grid->model_ranks, dataset_name(cfg->data_dataset));
    if (cfg->model_hidden <= 0) {
        CHECK(model_create(m, cfg, train->channels, train->height, train->width, run->classes));
        if (!(*m)->ml)
            return FAIL("parallel.model_ranks = %d: only fully connected nets 'N (FN)' (tensor "
                        "parallel) and nets of two layers or more (layer pipeline) can be split "
                        "over model ranks; model.net '%s' is neither (use parallel.model_ranks = "
                        "1)",
                        grid->model_ranks, cfg->model_net);
        CHECK(pipe_create(&run->pipe, grid->model, *m));
        return optim_create(&ts->opt, cfg, (*m)->n_params);
    }
    int bmax = cfg->train_batch > cfg->train_test_batch ? cfg->train_batch : cfg->train_test_batch;
    CHECK(tpfc_create(&run->tp, cfg, train->dim, run->classes, grid->model, TPFC_BLOCK, bmax));
    return optim_create(&ts->opt, cfg, run->tp->n_params);
}

/* Resumes the run directory's checkpoint, or creates the run and
 * initialises the model. Collective; rc the agreed status so far. */
static int main_start(main_run *run, fsnn_model *m, trainer_state *ts, int rc) {
    const fsnn_cfg *cfg = run->cfg;
    int resume = rc == 0 && ckpt_present(cfg->run_dir);
    if (resume) rc = main_agree(main_check_mode(cfg));
    if (rc == 0 && resume) return run->tp ? main_tp_resume(run, ts) : main_resume(run, m, ts);
    if (rc != 0) return rc;
    if (run->writer) rc = main_open_run(cfg, run);
    if (run->tp) {
        int r2 = tpfc_init(run->tp, cfg->run_seed);
        return rc ? rc : r2;
    }
    model_init(m, cfg->run_seed);
    return rc;
}

/* Logs the model and the parallel layout and trains to the last epoch.
 * Collective. */
static int main_fit(main_run *run, const grid_env *grid, fsnn_model *m, trainer_state *ts,
                    const trainer_data *train, const trainer_data *test) {
    const fsnn_cfg *cfg = run->cfg;
    const reduce_ops *red = run->red;
    trainer_hooks hooks = {.on_step = main_on_step, .on_epoch = main_on_epoch, .ctx = run};
    if (run->tp) {
        log_info("model: %d-%d (F%d) %s, T=%d, V_th=%g, lambda=%g; tensor parallel: %d groups "
                 "of %d model ranks, F and V in %dx%d blocks over a %d x %d grid "
                 "(%zu parameters per rank)",
                 train->dim, cfg->model_hidden, cfg->model_hidden,
                 cfg->neuron_leak == 1.0f ? "IF" : "LIF", cfg->model_time_steps, cfg->neuron_vth,
                 cfg->neuron_leak, grid->groups, grid->model_ranks, run->tp->grid.nb,
                 run->tp->grid.nb, run->tp->grid.nprow, run->tp->grid.npcol, run->tp->n_params);
        main_log_mode(cfg);
        return tptrain_fit(cfg, run->tp, ts, train, test, &hooks, red);
    }
    main_log_model(cfg, m, grid->world_rank);
    if (run->pipe) {
        char stages[512];
        pipe_describe(run->pipe, stages, sizeof stages);
        log_info("layer pipeline: %d group%s of %d stages, %s mode; %s", grid->groups,
                 grid->groups == 1 ? "" : "s", grid->model_ranks,
                 cfg->parallel_deterministic ? "deterministic" : "fast", stages);
    } else if (red->size > 1) {
        log_info("data parallel over %d ranks, %s mode (micro-shards of %d samples)", red->size,
                 cfg->parallel_deterministic ? "deterministic" : "fast", cfg->parallel_micro_batch);
    }
    CHECK(trainer_fit(cfg, m, ts, train, test, &hooks, red));
    return run->pipe ? main_pipe_report(run->pipe, grid->world_rank, grid->model_ranks) : FSNN_OK;
}

/* The last line of a finished run. */
static void main_done(const main_run *run) {
    if (run->rows > 0) {
        trainer_epoch last;
        metrics_unpack(run->history + (size_t)(run->rows - 1) * METRICS_N_COLS, &last);
        log_info("done: test accuracy %.2f%% after %d epochs; run directory: %s", last.test_acc,
                 last.epoch, run->cfg->run_dir);
    } else {
        log_info("done: no epochs requested; run directory: %s", run->cfg->run_dir);
    }
}

/* Everything that can be checked (config, data, model) is checked before the
 * run directory is created, so a bad input leaves nothing behind. A run
 * directory holding a checkpoint is resumed. */
static int main_train(const char *config_path, int argc, char **argv) {
    fsnn_cfg cfg;
    CHECK(main_read_config(&cfg, config_path, 0, argc, argv));
    main_setup_blas(&cfg);
    grid_env grid;
    CHECK(main_agree(grid_create(&grid, cfg.parallel_model_ranks)));
    reduce_ops red;
    CHECK(grid.model_ranks == 1 ? reducer_world(&red) : reducer_comm(&red, grid.data));
    main_run run;
    memset(&run, 0, sizeof run);
    run.cfg = &cfg;
    run.red = &red;
    run.writer = grid.world_rank == 0;
    run.group = grid.group;
    run.world_size = grid.world_size;
    CHECK(main_restarts(&run.restarts));
    CHECK(fsutil_join(run.metrics, sizeof run.metrics, cfg.run_dir, "metrics.csv"));
    CHECK(main_config_text(&cfg, &run.config_text));
    dataset data;
    memset(&data, 0, sizeof data);
    fsnn_model *m = NULL;
    trainer_state ts;
    memset(&ts, 0, sizeof ts);
    trainer_data train, test;
    dataset_events ev[2];
    int rc = dataset_load(cfg.data_dataset, cfg.data_path, cfg.data_train_limit,
                          cfg.data_test_limit, &data);
    if (rc == 0) {
        cmd_data_views(&cfg, &data, ev, &train, &test);
        log_info("data: %s from %s: %ld training and %ld test samples%s",
                 dataset_name(cfg.data_dataset), cfg.data_path, train.n, test.n,
                 train.augment ? "; training images randomly cropped and flipped" : "");
        run.in_c = train.channels;
        run.in_h = train.height;
        run.in_w = train.width;
        run.classes = data.classes;
        rc = main_make_model(&run, &grid, &train, &m, &ts);
    }
    /* Every rank of the group must take part in the collectives below. */
    rc = main_agree(main_start(&run, m, &ts, main_agree(rc)));
    if (rc == 0) rc = main_fit(&run, &grid, m, &ts, &train, &test);
    if (rc == 0) main_done(&run);
    optim_destroy(&ts.opt);
    model_destroy(&m);
    tpfc_destroy(&run.tp);
    pipe_destroy(&run.pipe);
    model_destroy(&run.full);
    optim_destroy(&run.full_opt);
    dataset_destroy(&data);
    free(run.config_text);
    free(run.history);
    grid_destroy(&grid);
    return rc;
}

/* A model with the sizes of cfg and an optimiser, loaded from the newest good
 * checkpoint of run_dir (eval, inspect). */
static int main_load_model(const fsnn_cfg *cfg, const char *run_dir, const trainer_data *data,
                           int n_out, fsnn_model **m, trainer_state *ts, char *used, size_t size) {
    CHECK(model_create(m, cfg, data->channels, data->height, data->width, n_out));
    CHECK(optim_create(&ts->opt, cfg, (*m)->n_params));
    ckpt_data d;
    memset(&d, 0, sizeof d);
    d.m = *m;
    d.ts = ts;
    int rc = ckpt_load_latest(run_dir, &d, used, size);
    ckpt_data_free(&d);
    return rc;
}

/* Takes "--residual-trace [FILE]" out of the eval arguments: FILE is the
 * next argument unless that is an override (has '=') or an option. */
static int main_trace_arg(const char *run_dir, int *argc, char **argv, char *path, size_t size) {
    *path = '\0';
    for (int i = 0; i < *argc; i++) {
        if (strcmp(argv[i], "--residual-trace") != 0) continue;
        int file = i + 1 < *argc && !strchr(argv[i + 1], '=') && argv[i + 1][0] != '-';
        if (file && strlen(argv[i + 1]) >= size)
            return FAIL("--residual-trace: path too long: %.80s...", argv[i + 1]);
        if (file)
            strcpy(path, argv[i + 1]);
        else
            CHECK(fsutil_join(path, size, run_dir, "residual_trace.csv"));
        int drop = 1 + file;
        for (int k = i; k + drop < *argc; k++)
            argv[k] = argv[k + drop];
        *argc -= drop;
        return FSNN_OK;
    }
    return FSNN_OK;
}

static int main_eval(const char *run_dir, int argc, char **argv) {
    char cfg_path[CFG_PATH_MAX + 32], used[CFG_PATH_MAX + 64], trace_path[CFG_PATH_MAX + 32];
    CHECK(fsutil_join(cfg_path, sizeof cfg_path, run_dir, "config.ini"));
    CHECK(main_trace_arg(run_dir, &argc, argv, trace_path, sizeof trace_path));
    fsnn_cfg cfg;
    CHECK(main_read_config(&cfg, cfg_path, 1, argc, argv));
    reduce_ops red;
    CHECK(reducer_world(&red));
    main_setup_blas(&cfg);
    dataset data;
    memset(&data, 0, sizeof data);
    fsnn_model *m = NULL;
    trainer_state ts;
    memset(&ts, 0, sizeof ts);
    dataset_events ev[2];
    int rc = dataset_load(cfg.data_dataset, cfg.data_path, 1, cfg.data_test_limit, &data);
    trainer_data train, test;
    if (rc == 0) {
        cmd_data_views(&cfg, &data, ev, &train, &test);
        rc = main_load_model(&cfg, run_dir, &test, data.classes, &m, &ts, used, sizeof used);
    }
    rc = main_agree(rc);
    trainer_epoch row;
    memset(&row, 0, sizeof row);
    double firing = 0.0;
    model_trace *trace = NULL;
    if (rc == 0 && *trace_path) {
        rc = trainer_evaluate_trace(&cfg, m, &test, &row, &firing, &trace, &red);
        if (rc == 0 && red.rank == 0) rc = report_write_trace(trace_path, trace);
        rc = main_agree(rc);
    } else if (rc == 0) {
        rc = trainer_evaluate(&cfg, m, &test, &row, &firing, &red);
    }
    if (rc == 0)
        log_info("eval %s (epoch %d): test accuracy %.2f%% loss %.4f on %ld samples; forward "
                 "residual %.4g; firing rate %.4f; %.0f samples/s",
                 used, ts.epoch, row.test_acc, row.test_loss, test.n, row.test_fwd_residual, firing,
                 row.test_samples_per_s);
    if (rc == 0 && trace)
        log_info("residual trace (%d steps, %ld samples): %s", trace->T, trace->samples,
                 trace_path);
    model_trace_destroy(&trace);
    optim_destroy(&ts.opt);
    model_destroy(&m);
    dataset_destroy(&data);
    return rc;
}

/* Prints what a checkpoint holds, ending with the line "weights_sha256
 * <hex>" (ckpt_weights_sha256), which tests and users compare across runs. */
/* The stored configuration of a checkpoint when it names a conv net (its
 * model comes from the net and the data set's shape); 0 with *conv = 0 for
 * an FC net or a file whose configuration cannot be read, which ckpt_sizes
 * then reads or rejects with its own message. */
static int main_inspect_conv(const char *path, fsnn_cfg *cfg, int *conv) {
    char *text = NULL;
    long np = 0;
    *conv = 0;
    if (ckpt_config(path, &text, &np) != 0) {
        status_clear();
        return FSNN_OK;
    }
    int rc = config_load_run_string(path, text, cfg);
    free(text);
    if (rc == 0) rc = config_resolve(path, cfg);
    if (rc != 0 || cfg->model_hidden > 0) {
        status_clear();
        return FSNN_OK;
    }
    int c, h, w, classes;
    CHECK(dataset_dims(cfg->data_dataset, &c, &h, &w, &classes));
    netspec net;
    netspec_sizes sz;
    netspec_error err;
    if (netspec_parse(cfg->model_net, &net, &err) ||
        netspec_infer(&net, (netspec_shape){c, h, w, 0}, classes, &sz, &err))
        return FAIL("%s: stored model.net: %s", path, err.msg);
    /* The weights are in the file: a net larger than it is not this file's. */
    if (sz.params > np)
        return FAIL("%s: the stored net '%s' has %lld parameters, the file %ld", path,
                    cfg->model_net, (long long)sz.params, np);
    *conv = 1;
    return FSNN_OK;
}

static int main_inspect(const char *path) {
    int n_in = 0, n = 0, n_out = 0, conv = 0, c = 1, h = 1, w = 1;
    fsnn_cfg cfg;
    config_defaults(&cfg);
    CHECK(main_inspect_conv(path, &cfg, &conv));
    if (conv) {
        CHECK(dataset_dims(cfg.data_dataset, &c, &h, &w, &n_out));
    } else {
        config_defaults(&cfg);
        CHECK(ckpt_sizes(path, &n_in, &n, &n_out, &cfg.train_optimizer));
        cfg.model_hidden = n;
        w = n_in;
    }
    fsnn_model *m = NULL;
    trainer_state ts;
    memset(&ts, 0, sizeof ts);
    ckpt_data d;
    memset(&d, 0, sizeof d);
    int rc = model_create(&m, &cfg, c, h, w, n_out);
    if (rc == 0) {
        n_in = m->n_in;
        n = m->n;
    }
    if (rc == 0) rc = optim_create(&ts.opt, &cfg, m->n_params);
    d.m = m;
    d.ts = &ts;
    if (rc == 0) rc = ckpt_read(path, &d);
    char hex[65];
    if (rc == 0) rc = ckpt_weights_sha256(m, hex);
    if (rc == 0) {
        model_prepare_weights(m, 0);
        printf("%s: fsnn checkpoint: epoch %d finished, step %ld of the next; %ld steps in all, "
               "%ld skipped; written by %d rank%s\n",
               path, ts.epoch, ts.step, ts.iter, ts.bad_steps, d.world_size,
               d.world_size == 1 ? "" : "s");
        if (conv)
            printf("  model %s on %dx%dx%d (%d neurons) -> %d classes, %zu parameters; optimizer "
                   "%s (step %ld)\n",
                   cfg.model_net, c, h, w, n, n_out, m->n_params,
                   ts.opt->kind == OPTIM_ADAM ? "adam" : "sgd", ts.opt->step);
        else
            printf("  model %d-%d (F%d) -> %d classes, %zu parameters; optimizer %s (step %ld)\n",
                   n_in, n, n, n_out, m->n_params, ts.opt->kind == OPTIM_ADAM ? "adam" : "sgd",
                   ts.opt->step);
        for (int i = 0; i < m->n_tensors; i++) {
            const model_tensor_info *ti = &m->info[i];
            double ss = 0.0, mx = 0.0;
            for (size_t k = 0; k < ti->count; k++) {
                double v = m->params[ti->offset + k];
                ss += v * v;
                mx = fabs(v) > mx ? fabs(v) : mx;
            }
            printf("  %-16s [%d x %d]  norm %.6g  max|.| %.6g\n", ti->name, ti->dims[0],
                   ti->dims[1], sqrt(ss), mx);
        }
        printf("  feedback: g %.6g, sigma(V) %.6g, ||W||_2 %.6g (power iteration)\n", m->p.g[0],
               m->sigma, model_spectral_norm(m, 100));
        fsnn_cfg mode;
        if (main_ckpt_mode(path, &mode) == 0)
            printf("  algorithm: model.fidelity = %s, spectral_norm = %s, loop_bn = %s\n",
                   mode.model_fidelity == FIDELITY_REFERENCE ? "reference" : "fsnn",
                   mode.model_spectral_norm == SPECTRAL_KERNEL ? "kernel" : "operator",
                   mode.model_loop_bn == LOOP_BN_REFERENCE ? "reference" : "consistent");
        status_clear();
        if (d.history_rows > 0) {
            trainer_epoch last;
            metrics_unpack(d.history + (size_t)(d.history_rows - 1) * METRICS_N_COLS, &last);
            printf("  last epoch: test accuracy %.2f%%, train loss %.4f\n", last.test_acc,
                   last.train_loss);
        }
        printf("weights_sha256 %s\n", hex);
    }
    ckpt_data_free(&d);
    optim_destroy(&ts.opt);
    model_destroy(&m);
    return rc;
}

int main(int argc, char **argv) {
    /* Before MPI_Init: the sweep starts sbatch and `fsnn train` processes,
     * which must not inherit an MPI singleton's environment. */
    if (argc > 1 && !strcmp(argv[1], "sweep")) return cmd_sweep(argc - 2, argv + 2);
    /* One process, no MPI: it starts gnuplot, which must not inherit MPI. */
    if (argc > 1 && !strcmp(argv[1], "report")) return cmd_report(argc - 2, argv + 2);
    /* Arithmetic on a net's notation: nothing to distribute. */
    if (argc > 1 && !strcmp(argv[1], "model")) return cmd_model(argc - 2, argv + 2);
    if (argc > 1 && !strcmp(argv[1], "fixture")) return cmd_fixture(argc - 2, argv + 2);
    /* Reading one file: nothing to distribute, and no MPI start-up to fail
     * or to wait for. */
    if (argc == 3 && !strcmp(argv[1], "inspect")) {
        if (par_launcher_rank() != 0) return EXIT_OK; /* rank 0 prints */
        if (main_inspect(argv[2]) == 0) return EXIT_OK;
        log_error("%s", status_message());
        return EXIT_FAILED;
    }
    /* Training stops on USR1/TERM at its next step, with a checkpoint. The
     * handlers go in before MPI_Init, which can take seconds under a
     * launcher, so that SLURM's warning then does not kill the rank. Other
     * commands keep the default: the signal ends them. */
    if (argc > 1 && !strcmp(argv[1], "train")) {
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_handler = main_on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGUSR1, &sa, NULL);
    }
    par_env env;
    if (par_init(&argc, &argv, &env) != 0) {
        fprintf(stderr, "fsnn: %s\n", status_message());
        return EXIT_FAILED;
    }
    log_set_printer(env.rank == 0);
    int code = EXIT_OK;
    if (par_check_launch(&env) != 0) {
        if (env.rank == 0) log_error("%s", status_message());
        par_finalize();
        return EXIT_USAGE;
    }
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        if (env.rank == 0) fputs(main_usage, stdout);
    } else if (!strcmp(cmd, "--version")) {
        if (env.rank == 0) printf("fsnn %s\n", FSNN_VERSION);
    } else if (!strcmp(cmd, "--help-config")) {
        int md = argc > 2 && !strcmp(argv[2], "--markdown");
        if (env.rank == 0) config_help(stdout, md);
    } else if ((!strcmp(cmd, "train") || !strcmp(cmd, "eval")) && argc >= 3) {
        int rc = !strcmp(cmd, "train") ? main_train(argv[2], argc - 3, argv + 3)
                                       : main_eval(argv[2], argc - 3, argv + 3);
        if (rc == TRAINER_STOPPED) {
            code = EXIT_RESUMABLE;
        } else if (rc != 0) {
            /* Every rank reports its own failure; agreement failures only on rank 0. */
            if (env.rank == 0)
                log_error("%s", status_message());
            else if (!strstr(status_message(), "another rank failed"))
                fprintf(stderr, "error: rank %d: %s\n", env.rank, status_message());
            log_debug("at %s", status_where());
            code = EXIT_FAILED;
        }
    } else {
        if (env.rank == 0) {
            if (*cmd) fprintf(stderr, "fsnn: unknown or incomplete command '%s'\n", cmd);
            fputs(main_usage, stderr);
        }
        code = EXIT_USAGE;
    }
    par_finalize();
    return code;
}
