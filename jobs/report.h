/* report: the results table of a sweep (`fsnn report`, docs/report.md).
 *
 * Reads SWEEP_DIR/runs.tsv (the sweep directory interface: header
 * "id<TAB>dir<TAB>config<TAB>args", then one run per line with its
 * `section.key=value` arguments), and for every run its directory's
 * config.ini (the resolved configuration `fsnn train` writes) and
 * metrics.csv. Runs are grouped by everything but the seed: the base config
 * and the arguments other than run.seed and run.dir. Each group gets the
 * statistics of the paper's Tables 1-3 over its seeds, from each run's last
 * finished epoch.
 *
 * Conventions (docs/report.md): accuracy is the test accuracy of the final
 * epoch (the last row of metrics.csv), not the best epoch; mean and the
 * sample standard deviation (n - 1) over the runs that finished at least one
 * epoch; "best" is the largest of those final accuracies. A run with no
 * finished epoch (no directory, no config.ini, no metrics.csv or only its
 * header) is missing: listed, never averaged. Below the table, apart, the
 * mean and std of each run's best epoch.
 *
 * The readers take outside bytes: a malformed runs.tsv, metrics.csv or
 * config.ini fails with a message naming the file, the line and what is
 * wrong; nothing is read past a buffer. Nothing here starts processes. */
#ifndef FSNN_REPORT_H
#define FSNN_REPORT_H

#include <stdint.h>
#include <stdio.h>

#include "cfg.h"
#include "model.h"

/* Larger runs.tsv and metrics.csv files are refused. */
#define REPORT_FILE_MAX (64L << 20)

/* The columns of metrics.csv the report uses, found by name (other columns,
 * also ones added later, are allowed and ignored). */
typedef struct {
    int rows;            /* finished epochs; row r holds epoch r + 1 */
    double *test_acc;    /* [rows] % */
    double *firing_rate; /* [rows] spikes per neuron per step */
    double *peak_rss_mb; /* [rows] */
    double *values;      /* owned: the three arrays in one allocation */
} report_metrics;

/* Reads metrics.csv at `path`. The header must be comma-separated names
 * ([a-z0-9_], unique) starting with "epoch" and holding test_acc,
 * firing_rate and peak_rss_mb; every row must have as many fields, each a
 * number (strtod, the whole field), the used ones finite and in range, and
 * epoch counting 1, 2, 3, ... On success the caller frees *m with
 * report_metrics_free; on failure *m holds nothing. */
int report_read_metrics(const char *path, report_metrics *m);
void report_metrics_free(report_metrics *m);

/* One line of runs.tsv and what its directory holds. */
typedef struct {
    int id;
    char *dir, *config; /* absolute paths */
    int n_args;
    char **args;   /* "section.key=value", as in runs.tsv */
    uint64_t seed; /* run.seed */
    int group;     /* index into report.groups */
    /* NULL if the run finished at least one epoch, else why it is missing */
    const char *missing;
    report_metrics metrics; /* rows = 0 when missing */
} report_run;

/* Runs with the same base config and the same arguments but the seed. */
typedef struct {
    char *label;    /* the arguments whose values differ between groups */
    int first;      /* index of the group's first run in runs.tsv order */
    int first_done; /* index of its first run with a finished epoch, -1 none */
    int runs;       /* runs in the group */
    int done;       /* of those, with at least one finished epoch */
    int have_cfg;   /* cfg known: from a run's config.ini, else the base config + args */
    fsnn_cfg cfg;
    long neurons, params; /* of cfg's net (netspec.h: neurons, weights); -1 unknown */
    /* over the done runs, from their final epochs; NAN when undefined
     * (no done run; std with fewer than two) */
    double acc_mean, acc_std, acc_best;
    /* the same over each run's best epoch (its largest test accuracy: the
     * epoch is chosen on the test set, which overstates; shown apart, for
     * figures reported that way) */
    double peak_mean, peak_std;
    double firing_mean;         /* mean of the final epochs' firing_rate */
    double peak_rss_mb;         /* the largest peak_rss_mb of any epoch of any run */
    int epochs_min, epochs_max; /* finished epochs over all runs (missing: 0) */
    /* test accuracy per epoch e (index e - 1) over the runs that have it */
    int curve_len;
    double *curve_mean, *curve_std; /* [curve_len], std NAN with one run */
    int *curve_n;                   /* [curve_len] */
} report_group;

typedef struct {
    int n_runs, n_groups;
    report_run *runs;
    report_group *groups; /* in the order of their first run */
    char *text;           /* owned: runs.tsv's bytes, which the runs' strings point into */
} report;

/* Reads runs.tsv at `path` into r->runs and r->text (r zeroed by the
 * caller, who frees it with report_free also on failure). Checks the
 * header, ids 0..N-1 in order, absolute dir and config, printable ASCII,
 * every arg of the form section.key=value with no key twice, run.seed an
 * unsigned integer and run.dir equal to the dir column, no dir twice. */
int report_read_runs(const char *path, report *r);

/* Frees what *r holds and zeroes it (report_destroy without the struct). */
void report_free(report *r);

/* Everything: runs.tsv of sweep_dir, each run's files, groups and their
 * statistics. On success the caller owns *out (report_destroy). */
int report_load(const char *sweep_dir, report **out);
void report_destroy(report **r);

/* The table as Markdown: a title line naming `title`, the table, the list
 * of missing runs and the conventions. */
int report_write_markdown(const report *r, const char *title, FILE *out);

/* The same table as CSV, one row per group, numbers in full precision and
 * empty fields where undefined. */
int report_write_csv(const report *r, FILE *out);

/* The neuron model as the table shows it: "IF" for leak 1, else "LIF 0.95". */
void report_neuron_name(float leak, char *buf, size_t size);

/* Writes a residual trace (model_trace; `fsnn eval --residual-trace`) as CSV
 * to `path`, atomically: t,residual_mean,residual_max,delta_mean,
 * abs_residual_mean,abs_residual_max, one row per step t = 1..T. */
int report_write_trace(const char *path, const model_trace *tr);

#endif
