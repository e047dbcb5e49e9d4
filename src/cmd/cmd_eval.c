/* cmd_eval: `fsnn eval RUN_DIR` (a trained run on its test set, optionally
 * with the residual per time step) and `fsnn inspect CHECKPOINT.h5`. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "config.h"  // defines: config_defaults, config_load_run_string, config_resolve
#include "fsutil.h"  // defines: fsutil_join
#include "log.h"     // defines: log_info
#include "metrics.h" // defines: metrics_unpack
#include "netspec.h" // defines: netspec_parse, netspec_infer
#include "reducer.h" // defines: reducer_world
#include "report.h"  // defines: report_write_trace
#include "run.h"
#include "status.h" // defines: CHECK, FAIL

/* Takes "--residual-trace [FILE]" out of the eval arguments: FILE is the
 * next argument unless that is an override (has '=') or an option. */
static int cmd_eval_trace_arg(const char *run_dir, int *argc, char **argv, char *path,
                              size_t size) {
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

/* Evaluates the loaded run r (and with trace_path its residual trace) and
 * logs the result. Collective. */
static int cmd_eval_run(run_ctx *r, const reduce_ops *red, const char *used,
                        const char *trace_path) {
    trainer_epoch row;
    memset(&row, 0, sizeof row);
    double firing = 0.0;
    model_trace *trace = NULL;
    int rc;
    if (*trace_path) {
        rc = trainer_evaluate_trace(&r->cfg, r->net, &r->test, &row, &firing, &trace, red);
        if (rc == 0 && red->rank == 0) rc = report_write_trace(trace_path, trace);
        rc = run_agree(rc);
    } else {
        rc = trainer_evaluate(&r->cfg, r->net, &r->test, &row, &firing, red);
    }
    if (rc == 0)
        log_info("eval %s (epoch %d): test accuracy %.2f%% loss %.4f on %ld samples; forward "
                 "residual %.4g; firing rate %.4f; %.0f samples/s",
                 used, r->ts.epoch, row.test_acc, row.test_loss, r->test.n, row.test_fwd_residual,
                 firing, row.test_samples_per_s);
    if (rc == 0 && trace)
        log_info("residual trace (%d steps, %ld samples): %s", trace->T, trace->samples,
                 trace_path);
    model_trace_destroy(&trace);
    return rc;
}

int cmd_eval(int argc, char **argv) {
    if (argc < 1) return FAIL("fsnn eval: a run directory is needed");
    const char *run_dir = argv[0];
    argc--;
    argv++;
    char cfg_path[CFG_PATH_MAX + 32], used[CFG_PATH_MAX + 64], trace_path[CFG_PATH_MAX + 32];
    CHECK(fsutil_join(cfg_path, sizeof cfg_path, run_dir, "config.ini"));
    CHECK(cmd_eval_trace_arg(run_dir, &argc, argv, trace_path, sizeof trace_path));
    run_ctx r;
    memset(&r, 0, sizeof r);
    CHECK(run_read_config(&r.cfg, cfg_path, 1, argc, argv));
    reduce_ops red;
    CHECK(reducer_world(&red));
    run_setup_blas(&r.cfg);
    /* Evaluation runs on one process's whole model per rank. */
    r.cfg.parallel_model_ranks = 1;
    int rc = run_open(&r, NULL, 1, 0);
    ckpt_data d;
    memset(&d, 0, sizeof d);
    if (rc == 0) rc = run_ckpt_read(r.net, &r.ts, run_dir, &d, used, sizeof used);
    ckpt_data_free(&d);
    rc = run_agree(rc);
    if (rc == 0) rc = cmd_eval_run(&r, &red, used, trace_path);
    run_close(&r);
    return rc;
}

/* The shape of the net stored in the checkpoint `path` and its
 * configuration: a conv net's from its stored model.net and the data set's
 * shape; an FC net's (or a file whose configuration cannot be read) from
 * the sizes in its attributes, which ckpt_sizes reads or rejects with its
 * own message. *conv tells which. */
static int cmd_inspect_shape(const char *path, fsnn_cfg *cfg, run_shape *sh, int *conv) {
    char *text = NULL;
    long np = 0;
    *conv = 0;
    int rc = ckpt_config(path, &text, &np);
    if (rc == 0) {
        config_defaults(cfg);
        rc = config_load_run_string(path, text, cfg);
        if (rc == 0) rc = config_resolve(path, cfg);
    }
    free(text);
    if (rc == 0 && cfg->model_hidden <= 0) {
        CHECK(dataset_dims(cfg->data_dataset, &sh->c, &sh->h, &sh->w, &sh->classes));
        netspec net;
        netspec_sizes sz;
        netspec_error err;
        if (netspec_parse(cfg->model_net, &net, &err) ||
            netspec_infer(&net, (netspec_shape){sh->c, sh->h, sh->w, 0}, sh->classes, &sz, &err))
            return FAIL("%s: stored model.net: %s", path, err.msg);
        /* The weights are in the file: a net larger than it is not this file's. */
        if (sz.params > np)
            return FAIL("%s: the stored net '%s' has %lld parameters, the file %ld", path,
                        cfg->model_net, (long long)sz.params, np);
        *conv = 1;
        return FSNN_OK;
    }
    status_clear();
    config_defaults(cfg);
    int n_in = 0, n = 0;
    CHECK(ckpt_sizes(path, &n_in, &n, &sh->classes, &cfg->train_optimizer));
    cfg->model_hidden = n;
    *sh = (run_shape){.c = 1, .h = 1, .w = n_in, .classes = sh->classes};
    return FSNN_OK;
}

/* The tensors of m, one line each: name, shape, norm and largest value. */
static void cmd_inspect_tensors(const fsnn_model *m) {
    for (int i = 0; i < m->n_tensors; i++) {
        const model_tensor_info *ti = &m->info[i];
        double ss = 0.0, mx = 0.0;
        for (size_t k = 0; k < ti->count; k++) {
            double v = m->params[ti->offset + k];
            ss += v * v;
            mx = fabs(v) > mx ? fabs(v) : mx;
        }
        printf("  %-16s [%d x %d]  norm %.6g  max|.| %.6g\n", ti->name, ti->dims[0], ti->dims[1],
               sqrt(ss), mx);
    }
}

/* What inspect prints of a checkpoint read into m and ts. */
static void cmd_inspect_print(const char *path, const fsnn_cfg *cfg, const run_shape *sh, int conv,
                              fsnn_model *m, const trainer_state *ts, const ckpt_data *d,
                              const char *hex) {
    model_prepare_weights(m, 0);
    printf("%s: fsnn checkpoint: epoch %d finished, step %ld of the next; %ld steps in all, "
           "%ld skipped; written by %d rank%s\n",
           path, ts->epoch, ts->step, ts->iter, ts->bad_steps, d->world_size,
           d->world_size == 1 ? "" : "s");
    const char *opt = ts->opt->kind == OPTIM_ADAM ? "adam" : "sgd";
    if (conv)
        printf("  model %s on %dx%dx%d (%d neurons) -> %d classes, %zu parameters; optimizer "
               "%s (step %ld)\n",
               cfg->model_net, sh->c, sh->h, sh->w, m->n, sh->classes, m->n_params, opt,
               ts->opt->step);
    else
        printf("  model %d-%d (F%d) -> %d classes, %zu parameters; optimizer %s (step %ld)\n",
               m->n_in, m->n, m->n, sh->classes, m->n_params, opt, ts->opt->step);
    cmd_inspect_tensors(m);
    printf("  feedback: g %.6g, sigma(V) %.6g, ||W||_2 %.6g (power iteration)\n", m->p.g[0],
           m->sigma, model_spectral_norm(m, 100));
    fsnn_cfg mode;
    if (run_ckpt_config(path, &mode) == 0)
        printf("  algorithm: model.fidelity = %s, spectral_norm = %s, loop_bn = %s\n",
               mode.model_fidelity == FIDELITY_REFERENCE ? "reference" : "fsnn",
               mode.model_spectral_norm == SPECTRAL_KERNEL ? "kernel" : "operator",
               mode.model_loop_bn == LOOP_BN_REFERENCE ? "reference" : "consistent");
    status_clear();
    if (d->history_rows > 0) {
        trainer_epoch last;
        metrics_unpack(d->history + (size_t)(d->history_rows - 1) * METRICS_N_COLS, &last);
        printf("  last epoch: test accuracy %.2f%%, train loss %.4f\n", last.test_acc,
               last.train_loss);
    }
    printf("weights_sha256 %s\n", hex);
}

int cmd_inspect(const char *path) {
    fsnn_cfg cfg;
    run_shape sh;
    memset(&sh, 0, sizeof sh);
    int conv = 0;
    CHECK(cmd_inspect_shape(path, &cfg, &sh, &conv));
    fsnn_net *net = NULL;
    trainer_state ts;
    memset(&ts, 0, sizeof ts);
    ckpt_data d;
    memset(&d, 0, sizeof d);
    char used[CFG_PATH_MAX + 64], hex[65];
    cfg.parallel_model_ranks = 1;
    int rc = run_net(&net, &ts.opt, &cfg, NULL, &sh);
    if (rc == 0) rc = run_ckpt_read(net, &ts, path, &d, used, sizeof used);
    if (rc == 0) rc = ckpt_weights_sha256(net->model, hex);
    if (rc == 0) cmd_inspect_print(path, &cfg, &sh, conv, net->model, &ts, &d, hex);
    ckpt_data_free(&d);
    optim_destroy(&ts.opt);
    net_destroy(&net);
    return rc;
}
