/* fsnn: the command. Reads like an outline: start the process environment,
 * read the configuration, load data, build the model, train or evaluate,
 * write the run directory, stop.
 *
 *   fsnn train CONFIG [section.key=value ...]
 *   fsnn eval RUN_DIR [section.key=value ...]
 *   fsnn --help | --help-config [--markdown] | --version
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"       // defines: blas_set_threads
#include "config.h"     // defines: config_load, config_override, config_write, config_help
#include "cpuinfo.h"    // defines: cpuinfo_report_blas
#include "dataset.h"    // defines: dataset_load
#include "fsutil.h"     // defines: fsutil_mkdirs, fsutil_join, fsutil_write_atomic
#include "log.h"        // defines: log_info, log_error
#include "metrics.h"    // defines: metrics_create, metrics_append
#include "model.h"      // defines: fsnn_model
#include "modelfile.h"  // defines: modelfile_write, modelfile_read
#include "par.h"        // defines: par_init, par_finalize, par_all_ok
#include "reducer.h"    // defines: reducer_world
#include "status.h"     // defines: CHECK, FAIL
#include "trainer.h"    // defines: trainer_fit, trainer_evaluate

#define FSNN_VERSION "0.1.0"

/* Exit codes (docs/user-guide.md). */
enum { EXIT_OK = 0, EXIT_FAILED = 1, EXIT_USAGE = 2 };

static const char main_usage[] =
    "usage:\n"
    "  fsnn train CONFIG [section.key=value ...]   train; writes run.dir\n"
    "  fsnn eval RUN_DIR [section.key=value ...]   evaluate a trained run on its test set\n"
    "  fsnn inspect MODEL.h5                       summary and weights_sha256 of a model file\n"
    "  fsnn --help-config [--markdown]             every configuration key\n"
    "  fsnn --version\n"
    "Run under mpirun/srun or alone. docs/user-guide.md explains the run directory.\n";

typedef struct {
    int rank; /* only rank 0 writes the run directory */
    char metrics[CFG_PATH_MAX + 32];
    char model[CFG_PATH_MAX + 32];
    char *config_text;
    trainer_epoch last;
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

static int main_on_epoch(void *ctx, const trainer_epoch *row, const fsnn_model *m) {
    main_run *run = ctx;
    run->last = *row;
    int rc = FSNN_OK;
    if (run->rank == 0) {
        rc = metrics_append(run->metrics, row);
        if (rc == 0) rc = modelfile_write(run->model, m, row->epoch, run->config_text);
    }
    return main_agree(rc);
}

static int main_read_config(fsnn_cfg *cfg, const char *path, int argc, char **argv) {
    config_defaults(cfg);
    CHECK(config_load(path, cfg));
    for (int i = 0; i < argc; i++) CHECK(config_override(argv[i], cfg));
    CHECK(config_resolve(path, cfg));
    return FSNN_OK;
}

static void main_data_views(const dataset *d, trainer_data *train, trainer_data *test) {
    const dataset_split *s[2] = {&d->train, &d->test};
    trainer_data *t[2] = {train, test};
    for (int i = 0; i < 2; i++) {
        t[i]->images = s[i]->images;
        t[i]->labels = s[i]->labels;
        t[i]->n = s[i]->n;
        t[i]->dim = s[i]->channels * s[i]->height * s[i]->width;
        t[i]->mean = d->mean;
        t[i]->std = d->std;
    }
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
    CHECK(fsutil_join(run->metrics, sizeof run->metrics, cfg->run_dir, "metrics.csv"));
    CHECK(fsutil_join(run->model, sizeof run->model, cfg->run_dir, "model.h5"));
    if (fsutil_is_file(run->metrics))
        return FAIL("%s already holds a run (metrics.csv); set another run.dir or move it away",
                    cfg->run_dir);
    CHECK(fsutil_mkdirs(cfg->run_dir));
    char cfg_path[CFG_PATH_MAX + 32];
    CHECK(fsutil_join(cfg_path, sizeof cfg_path, cfg->run_dir, "config.ini"));
    CHECK(main_config_text(cfg, &run->config_text));
    CHECK(fsutil_write_atomic(cfg_path, run->config_text, strlen(run->config_text)));
    CHECK(metrics_create(run->metrics));
    return FSNN_OK;
}

static void main_log_model(const fsnn_cfg *cfg, const fsnn_model *m) {
    log_info("model: %d-%d (F%d) %s, T=%d, V_th=%g, lambda=%g: %ld neurons, %zu parameters; "
             "adjoint solver %s (at most %d iterations)",
             m->n_in, m->n, m->n, m->leak == 1.0f ? "IF" : "LIF", m->T, m->vth, m->leak,
             model_neurons(m), m->n_params, solver_name(cfg->solver_kind), cfg->solver_max_iters);
}

/* Everything that can be checked (config, data, model) is checked before the
 * run directory is created, so a bad input leaves nothing behind. */
static int main_train(const char *config_path, int argc, char **argv) {
    fsnn_cfg cfg;
    CHECK(main_read_config(&cfg, config_path, argc, argv));
    main_setup_blas(&cfg);
    reduce_ops red;
    CHECK(reducer_world(&red));
    main_run run;
    memset(&run, 0, sizeof run);
    run.rank = red.rank;
    dataset data;
    memset(&data, 0, sizeof data);
    fsnn_model *m = NULL;
    trainer_data train, test;
    int rc = dataset_load(cfg.data_dataset, cfg.data_path, cfg.data_train_limit,
                          cfg.data_test_limit, &data);
    if (rc == 0) {
        main_data_views(&data, &train, &test);
        log_info("data: %s from %s: %ld training and %ld test samples",
                 cfg.data_dataset == DATASET_MNIST ? "mnist" : "fmnist", cfg.data_path, train.n,
                 test.n);
        rc = model_create(&m, &cfg, train.dim, data.classes);
    }
    if (rc == 0 && red.rank == 0) rc = main_open_run(&cfg, &run);
    rc = main_agree(rc);
    if (rc == 0) {
        model_init(m, cfg.run_seed);
        main_log_model(&cfg, m);
        trainer_hooks hooks = {main_on_epoch, &run};
        if (red.size > 1)
            log_info("data parallel over %d ranks, %s mode (micro-shards of %d samples)",
                     red.size, cfg.parallel_deterministic ? "deterministic" : "fast",
                     cfg.parallel_micro_batch);
        rc = trainer_fit(&cfg, m, &train, &test, &hooks, &red);
    }
    if (rc == 0 && run.last.epoch > 0)
        log_info("done: test accuracy %.2f%% after %d epochs; run directory: %s", run.last.test_acc,
                 run.last.epoch, cfg.run_dir);
    else if (rc == 0)
        log_info("done: no epochs requested; run directory: %s", cfg.run_dir);
    model_destroy(&m);
    dataset_destroy(&data);
    free(run.config_text);
    return rc;
}

static int main_eval(const char *run_dir, int argc, char **argv) {
    char cfg_path[CFG_PATH_MAX + 32], model_path[CFG_PATH_MAX + 32];
    CHECK(fsutil_join(cfg_path, sizeof cfg_path, run_dir, "config.ini"));
    CHECK(fsutil_join(model_path, sizeof model_path, run_dir, "model.h5"));
    fsnn_cfg cfg;
    CHECK(main_read_config(&cfg, cfg_path, argc, argv));
    reduce_ops red;
    CHECK(reducer_world(&red));
    main_setup_blas(&cfg);
    dataset data;
    memset(&data, 0, sizeof data);
    fsnn_model *m = NULL;
    int epoch = 0;
    int rc = dataset_load(cfg.data_dataset, cfg.data_path, 1, cfg.data_test_limit, &data);
    trainer_data train, test;
    if (rc == 0) {
        main_data_views(&data, &train, &test);
        rc = model_create(&m, &cfg, test.dim, data.classes);
    }
    if (rc == 0) rc = modelfile_read(model_path, m, &epoch);
    rc = main_agree(rc);
    trainer_epoch row;
    memset(&row, 0, sizeof row);
    double firing = 0.0;
    if (rc == 0) rc = trainer_evaluate(&cfg, m, &test, &row, &firing, &red);
    if (rc == 0)
        log_info("eval %s (epoch %d): test accuracy %.2f%% loss %.4f on %ld samples; forward "
                 "residual %.4g; firing rate %.4f; %.0f samples/s",
                 run_dir, epoch, row.test_acc, row.test_loss, test.n, row.test_fwd_residual, firing,
                 row.test_samples_per_s);
    model_destroy(&m);
    dataset_destroy(&data);
    return rc;
}

/* Prints what a model file holds, ending with the line
 * "weights_sha256 <hex>" (modelfile_weights_sha256), which tests and users
 * compare across runs. */
static int main_inspect(const char *path) {
    int n_in = 0, n = 0, n_out = 0, epoch = 0;
    CHECK(modelfile_sizes(path, &n_in, &n, &n_out, &epoch));
    fsnn_cfg cfg;
    config_defaults(&cfg);
    cfg.model_hidden = n;
    fsnn_model *m = NULL;
    int rc = model_create(&m, &cfg, n_in, n_out);
    if (rc == 0) rc = modelfile_read(path, m, NULL);
    char hex[65];
    if (rc == 0) rc = modelfile_weights_sha256(m, hex);
    if (rc == 0) {
        model_prepare_weights(m, 0);
        printf("%s: fsnn model after epoch %d: %d-%d (F%d) -> %d classes, %zu parameters\n", path,
               epoch, n_in, n, n, n_out, m->n_params);
        for (int i = 0; i < MODEL_N_TENSORS; i++) {
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
        printf("weights_sha256 %s\n", hex);
    }
    model_destroy(&m);
    return rc;
}

int main(int argc, char **argv) {
    par_env env;
    if (par_init(&argc, &argv, &env) != 0) {
        fprintf(stderr, "fsnn: %s\n", status_message());
        return EXIT_FAILED;
    }
    log_set_printer(env.rank == 0);
    int code = EXIT_OK;
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        if (env.rank == 0) fputs(main_usage, stdout);
    } else if (!strcmp(cmd, "--version")) {
        if (env.rank == 0) printf("fsnn %s\n", FSNN_VERSION);
    } else if (!strcmp(cmd, "--help-config")) {
        int md = argc > 2 && !strcmp(argv[2], "--markdown");
        if (env.rank == 0) config_help(stdout, md);
    } else if (!strcmp(cmd, "inspect") && argc == 3) {
        if (env.rank == 0 && main_inspect(argv[2]) != 0) {
            log_error("%s", status_message());
            code = EXIT_FAILED;
        }
    } else if ((!strcmp(cmd, "train") || !strcmp(cmd, "eval")) && argc >= 3) {
        int rc = !strcmp(cmd, "train") ? main_train(argv[2], argc - 3, argv + 3)
                                       : main_eval(argv[2], argc - 3, argv + 3);
        if (rc != 0) {
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
