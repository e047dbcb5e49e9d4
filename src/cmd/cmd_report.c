/* fsnn report: the results table and plots of a sweep directory.
 *
 *   fsnn report SWEEP_DIR [--csv FILE] [--markdown FILE] [--plots DIR]
 *                         [--no-plots] [--trace-samples N]
 *
 * Reads the sweep (jobs/report), draws the plots (jobs/plot) and writes the
 * table as Markdown (stdout and FILE, default SWEEP_DIR/report.md) and CSV
 * (default SWEEP_DIR/report.csv). The residual plot needs each group's first
 * finished run evaluated again with the per-step trace: that runs here, in
 * this one process, as `fsnn eval RUN_DIR --residual-trace` would. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"    // defines: blas_set_threads, blas_set_serial
#include "cmd.h"     // defines: cmd_report
#include "fsutil.h"  // defines: fsutil_join, fsutil_mkdirs, fsutil_write_atomic
#include "log.h"     // defines: log_warn, log_error
#include "model.h"   // defines: model_trace
#include "plot.h"    // defines: plot_accuracy, plot_firing, plot_residual
#include "report.h"  // defines: report_load, report_write_markdown, report_write_csv
#include "run.h"     // defines: run_read_config, run_open, run_ckpt_read, run_close
#include "status.h"  // defines: CHECK, FAIL
#include "trainer.h" // defines: trainer_evaluate_trace

#define CMD_REPORT_PATH 4096

static const char cmd_report_usage[] =
    "usage: fsnn report SWEEP_DIR [--csv FILE] [--markdown FILE] [--plots DIR] [--no-plots]\n"
    "                   [--trace-samples N]\n"
    "  --csv FILE          the table as CSV (default SWEEP_DIR/report.csv)\n"
    "  --markdown FILE     the table as Markdown, also printed (default SWEEP_DIR/report.md)\n"
    "  --plots DIR         PNG plots by gnuplot (default SWEEP_DIR/plots)\n"
    "  --no-plots          tables only\n"
    "  --trace-samples N   test samples for the residual plot (default 1000, 0 = all)\n";

typedef struct {
    const char *sweep;
    char csv[CMD_REPORT_PATH], md[CMD_REPORT_PATH], plots[CMD_REPORT_PATH];
    int no_plots;
    long trace_samples;
} cmd_report_args;

/* out = given, or sweep/dflt when not given. */
static int cmd_report_path(char *out, const char *given, const char *sweep, const char *dflt) {
    if (!given) return fsutil_join(out, CMD_REPORT_PATH, sweep, dflt);
    if (strlen(given) >= CMD_REPORT_PATH) return FAIL("path too long: %.80s...", given);
    strcpy(out, given);
    return FSNN_OK;
}

/* 0, or 2 (usage) after a message. */
static int cmd_report_parse(int argc, char **argv, cmd_report_args *a) {
    memset(a, 0, sizeof *a);
    a->trace_samples = 1000;
    const char *csv = NULL, *md = NULL, *plots = NULL;
    for (int i = 0; i < argc; i++) {
        const char *o = argv[i];
        int has_value = i + 1 < argc;
        if (!strcmp(o, "--csv") && has_value) {
            csv = argv[++i];
        } else if (!strcmp(o, "--markdown") && has_value) {
            md = argv[++i];
        } else if (!strcmp(o, "--plots") && has_value) {
            plots = argv[++i];
        } else if (!strcmp(o, "--no-plots")) {
            a->no_plots = 1;
        } else if (!strcmp(o, "--trace-samples") && has_value) {
            char *end = NULL;
            errno = 0;
            a->trace_samples = strtol(argv[++i], &end, 10);
            if (errno || end == argv[i] || *end || a->trace_samples < 0) {
                fprintf(stderr, "fsnn report: --trace-samples '%s': expected a count >= 0\n%s",
                        argv[i], cmd_report_usage);
                return 2;
            }
        } else if (o[0] == '-' || a->sweep) {
            fprintf(stderr, "fsnn report: unexpected argument '%s'\n%s", o, cmd_report_usage);
            return 2;
        } else {
            a->sweep = o;
        }
    }
    if (!a->sweep) {
        fputs(cmd_report_usage, stderr);
        return 2;
    }
    if (cmd_report_path(a->csv, csv, a->sweep, "report.csv") ||
        cmd_report_path(a->md, md, a->sweep, "report.md") ||
        cmd_report_path(a->plots, plots, a->sweep, "plots")) {
        fprintf(stderr, "fsnn report: %s\n", status_message());
        return 2;
    }
    return 0;
}

/* The trace of the run in run_dir on the first `samples` test samples (0 =
 * the run's test set): its config.ini, data and newest good checkpoint, as
 * `fsnn eval RUN_DIR --residual-trace` reads them, in one process. */
static int cmd_report_trace(const char *run_dir, long samples, model_trace **tr) {
    char cfg_path[CMD_REPORT_PATH], used[CMD_REPORT_PATH + 64];
    CHECK(fsutil_join(cfg_path, sizeof cfg_path, run_dir, "config.ini"));
    run_ctx r;
    memset(&r, 0, sizeof r);
    CHECK(run_read_config(&r.cfg, cfg_path, 1, 0, NULL));
    if (samples > 0 && (r.cfg.data_test_limit == 0 || r.cfg.data_test_limit > samples))
        r.cfg.data_test_limit = samples;
    r.cfg.parallel_model_ranks = 1;
    blas_set_threads(r.cfg.run_threads);
    blas_set_serial(r.cfg.parallel_deterministic);
    int rc = run_open(&r, NULL, 1, 0);
    ckpt_data d;
    memset(&d, 0, sizeof d);
    if (rc == 0) rc = run_ckpt_read(r.net, &r.ts, run_dir, &d, used, sizeof used);
    ckpt_data_free(&d);
    trainer_epoch row;
    memset(&row, 0, sizeof row);
    if (rc == 0)
        rc = trainer_evaluate_trace(&r.cfg, r.net, &r.test, &row, NULL, tr, reduce_local());
    run_close(&r);
    return rc;
}

/* Draws the three plots into a->plots; what was made or not goes to
 * `notes` (Markdown, for the report) and warnings to stderr. Returns 1 if a
 * plot failed although gnuplot is there, else 0. */
static int cmd_report_plots(const report *r, const cmd_report_args *a, FILE *notes) {
    if (!plot_have_gnuplot()) {
        log_warn("plots not made: gnuplot is not in PATH (Debian package gnuplot-nox); the "
                 "tables are complete");
        fputs("\nPlots not made: gnuplot is not in PATH (Debian package gnuplot-nox).\n", notes);
        return 0;
    }
    if (fsutil_mkdirs(a->plots) != 0) {
        log_error("plots not made: %s", status_message());
        fprintf(notes, "\nPlots not made: %s\n", status_message());
        status_clear();
        return 1;
    }
    model_trace **traces = calloc((size_t)r->n_groups, sizeof *traces);
    if (!traces) {
        log_error("plots not made: out of memory");
        return 1;
    }
    fprintf(notes, "\nPlots in %s:\n", a->plots);
    /* Traces for as many groups as the residual plot shows. */
    for (int g = 0, traced = 0; g < r->n_groups && traced < PLOT_MAX_CURVES; g++) {
        if (r->groups[g].first_done < 0) continue;
        traced++;
        const report_run *first = &r->runs[r->groups[g].first_done];
        if (cmd_report_trace(first->dir, a->trace_samples, &traces[g]) != 0) {
            log_warn("residual trace of g%d not made (%s): %s", g + 1, first->dir,
                     status_message());
            fprintf(notes, "- residual trace of g%d not made: %s\n", g + 1, status_message());
            status_clear();
            model_trace_destroy(&traces[g]);
        }
    }
    static const char *const names[3] = {"accuracy.png", "residual.png", "firing_rate.png"};
    int failed = 0;
    for (int k = 0; k < 3; k++) {
        int rc = k == 0   ? plot_accuracy(r, a->plots)
                 : k == 1 ? plot_residual(r, a->plots, (const model_trace *const *)traces)
                          : plot_firing(r, a->plots);
        if (rc == 0) {
            fprintf(notes, "- %s\n", names[k]);
        } else if (rc == PLOT_EMPTY) {
            log_warn("%s not made: nothing to draw (no finished run%s)", names[k],
                     k == 1 ? " with a trace" : "");
            fprintf(notes, "- %s not made: nothing to draw\n", names[k]);
        } else {
            log_error("%s not made: %s", names[k], status_message());
            fprintf(notes, "- %s not made: %s\n", names[k], status_message());
            status_clear();
            failed = 1;
        }
    }
    for (int g = 0; g < r->n_groups; g++)
        model_trace_destroy(&traces[g]);
    free(traces);
    return failed;
}

/* Formats with `write` into memory and writes the bytes to `path` atomically;
 * `echo` also gets them. */
static int cmd_report_save(const char *path, const report *r, const char *title, const char *notes,
                           int markdown, FILE *echo) {
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem) return FAIL("cannot buffer %s: %s", path, strerror(errno));
    int rc = markdown ? report_write_markdown(r, title, mem) : report_write_csv(r, mem);
    if (notes) fputs(notes, mem);
    fclose(mem);
    if (rc == 0) rc = fsutil_write_atomic(path, text, len);
    if (rc == 0 && echo) {
        fwrite(text, 1, len, echo);
        fflush(echo);
    }
    free(text);
    return rc;
}

int cmd_report(int argc, char **argv) {
    cmd_report_args a;
    int usage = cmd_report_parse(argc, argv, &a);
    if (usage) return usage;
    report *r = NULL;
    int rc = report_load(a.sweep, &r);
    char *notes = NULL;
    size_t notes_len = 0;
    int plots_failed = 0;
    if (rc == 0 && !a.no_plots) {
        FILE *nf = open_memstream(&notes, &notes_len);
        if (!nf) {
            rc = FAIL("cannot buffer the plot notes: %s", strerror(errno));
        } else {
            plots_failed = cmd_report_plots(r, &a, nf);
            fclose(nf);
        }
    }
    if (rc == 0) rc = cmd_report_save(a.md, r, a.sweep, notes, 1, stdout);
    if (rc == 0) rc = cmd_report_save(a.csv, r, a.sweep, NULL, 0, NULL);
    if (rc == 0) fprintf(stderr, "report: %s, %s\n", a.md, a.csv);
    free(notes);
    report_destroy(&r);
    if (rc != 0) {
        log_error("%s", status_message());
        return 1;
    }
    return plots_failed ? 1 : 0;
}
