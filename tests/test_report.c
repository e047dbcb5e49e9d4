/* report: the readers of runs.tsv and metrics.csv, grouping, statistics and
 * the table writers, on files written here by hand.
 *
 * References: means and standard deviations are recomputed here from the
 * values the test wrote, with the one-pass formula in long double
 * (var = (sum x^2 - (sum x)^2 / n) / (n - 1)), not the two-pass one of
 * io/report.c; tolerance 1e-9 relative. Neuron and parameter counts come
 * from the layout of SPEC §4 written out by hand. Every malformed file must
 * be refused with a message naming the file (and line) and what is wrong;
 * randomly damaged files must be refused or read, never crash (the
 * sanitizer build checks the memory). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "report.h"
#include "rng.h"
#include "testutil.h"

static char root[256];

static void write_file(const char *path, const char *text, size_t len) {
    FILE *f = fopen(path, "wb");
    EXPECT(f != NULL, "cannot create %s", path);
    if (!f) return;
    fwrite(text, 1, len, f);
    fclose(f);
}

static void write_text(const char *path, const char *text) {
    write_file(path, text, strlen(text));
}

static const char *in_root(const char *name) {
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", root, name);
    return path;
}

/* ---- metrics.csv ---- */

static const char metrics_ok[] =
    "epoch,lr,train_loss,test_acc,restarts,firing_rate,test_fwd_residual,peak_rss_mb,bad_steps\n"
    "1,0.05,nan,55.5,0,0.125,1.5,40.5,0\n"
    "2,0.05,1.2,61.25,1,0.0625,inf,52,0\n"
    "3,0.005,1.1,60,0,0.25,1.25,48.0,0\n";

static void test_metrics_good(void) {
    const char *p = in_root("metrics_ok.csv");
    write_text(p, metrics_ok);
    report_metrics m;
    EXPECT_OK(report_read_metrics(p, &m));
    EXPECT(m.rows == 3, "rows %d, want 3", m.rows);
    if (m.rows == 3) {
        EXPECT(m.test_acc[0] == 55.5 && m.test_acc[1] == 61.25 && m.test_acc[2] == 60.0,
               "test_acc %g %g %g", m.test_acc[0], m.test_acc[1], m.test_acc[2]);
        EXPECT(m.firing_rate[1] == 0.0625, "firing_rate[1] %g", m.firing_rate[1]);
        EXPECT(m.peak_rss_mb[1] == 52.0, "peak_rss_mb[1] %g", m.peak_rss_mb[1]);
    }
    report_metrics_free(&m);
    /* A header alone: no finished epoch, not an error. */
    write_text(p, "epoch,test_acc,firing_rate,peak_rss_mb\n");
    EXPECT_OK(report_read_metrics(p, &m));
    EXPECT(m.rows == 0, "header only: %d rows", m.rows);
    report_metrics_free(&m);
}

static void test_metrics_bad(void) {
    const char *p = in_root("metrics_bad.csv");
    static const struct {
        const char *text, *want1, *want2;
    } cases[] = {
        {"", "empty file", NULL},
        {"lr,epoch,test_acc,firing_rate,peak_rss_mb\n", ":1:", "expected 'epoch'"},
        {"epoch,firing_rate,peak_rss_mb\n", ":1:", "no column 'test_acc'"},
        {"epoch,test_acc,peak_rss_mb\n", ":1:", "no column 'firing_rate'"},
        {"epoch,test_acc,firing_rate\n", ":1:", "no column 'peak_rss_mb'"},
        {"epoch,test_acc,test_acc,firing_rate,peak_rss_mb\n", ":1:", "appears twice"},
        {"epoch,Test Acc,test_acc,firing_rate,peak_rss_mb\n", ":1:", "not a column name"},
        {"epoch,test_acc,,firing_rate,peak_rss_mb\n", ":1:", "not a column name"},
        {"epoch,test_acc,firing_rate,peak_rss_mb\n1,50,0.1\n", ":2:", "3 fields"},
        {"epoch,test_acc,firing_rate,peak_rss_mb\n1,50,0.1,3,4\n", ":2:", "more than 4 fields"},
        {"epoch,test_acc,firing_rate,peak_rss_mb\n1,fifty,0.1,3\n", ":2:", "not a number"},
        {"epoch,test_acc,firing_rate,peak_rss_mb\n1,50,0.1,\n", ":2:", "not a number"},
        {"epoch,test_acc,firing_rate,peak_rss_mb\n1, 50,0.1,3\n", ":2:", "not a number"},
        {"epoch,test_acc,firing_rate,peak_rss_mb\n1,50x,0.1,3\n", ":2:", "not a number"},
        {"epoch,test_acc,firing_rate,peak_rss_mb\n1,nan,0.1,3\n", ":2:", "not finite"},
        {"epoch,test_acc,firing_rate,peak_rss_mb\n1,50,inf,3\n", ":2:", "not finite"},
        {"epoch,test_acc,firing_rate,peak_rss_mb\n1,101,0.1,3\n", ":2:", "out of range"},
        {"epoch,test_acc,firing_rate,peak_rss_mb\n1,50,1.5,3\n", ":2:", "out of range"},
        {"epoch,test_acc,firing_rate,peak_rss_mb\n1,50,0.1,-3\n", ":2:", "out of range"},
        {"epoch,test_acc,firing_rate,peak_rss_mb\n2,50,0.1,3\n", ":2:", "expected 1"},
        {"epoch,test_acc,firing_rate,peak_rss_mb\n1,50,0.1,3\n1,50,0.1,3\n", ":3:", "expected 2"},
        {"epoch,test_acc,firing_rate,peak_rss_mb\n1.5,50,0.1,3\n", ":2:", "expected 1"},
        {"epoch,test_acc,firing_rate,peak_rss_mb\r\n", ":1:", "CR"},
        {"epoch,test_acc,firing_rate,peak_rss_mb\n1,50,0.1,3", ":2:", "no line end"},
        {"epoch,test_acc,firing_rate,peak_rss_mb\n1,50,0.1,3\n\n", ":3:", "1 fields"},
        {"epoch,test_acc,firing_rate,peak_rss_mb\n1,50\t,0.1,3\n", ":2:", "0x09"},
        {"epoch,test_acc,firing_rate,peak_rss_mb\n1,5\xc3\xa9,0.1,3\n", ":2:", "printable ASCII"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        write_text(p, cases[c].text);
        report_metrics m;
        int rc = report_read_metrics(p, &m);
        EXPECT(rc != 0, "case %zu accepted", c);
        const char *msg = status_message();
        EXPECT(strstr(msg, "metrics_bad.csv") != NULL, "case %zu: message lacks the file: %s", c,
               msg);
        EXPECT(strstr(msg, cases[c].want1) != NULL, "case %zu: message \"%s\" lacks \"%s\"", c, msg,
               cases[c].want1);
        if (cases[c].want2)
            EXPECT(strstr(msg, cases[c].want2) != NULL, "case %zu: message \"%s\" lacks \"%s\"", c,
                   msg, cases[c].want2);
        EXPECT(m.rows == 0 && m.values == NULL, "case %zu: failed read left data", c);
        status_clear();
    }
    /* A NUL byte inside a line. */
    static const char nul[] = "epoch,test_acc,firing_rate,peak_rss_mb\n1,5\0,0.1,3\n";
    write_file(p, nul, sizeof nul - 1);
    report_metrics m;
    EXPECT_FAILS(report_read_metrics(p, &m), "metrics_bad.csv:2:", "NUL");
    /* Larger than REPORT_FILE_MAX: refused before it is all in memory. */
    write_text(p, "epoch,test_acc,firing_rate,peak_rss_mb\n");
    EXPECT(truncate(p, REPORT_FILE_MAX + 1) == 0, "truncate failed");
    EXPECT_FAILS(report_read_metrics(p, &m), "metrics_bad.csv", "larger than");
    EXPECT_FAILS(report_read_metrics(in_root("no_such.csv"), &m), "no_such.csv", "cannot open");
}

/* ---- runs.tsv ---- */

static void test_runs_bad(void) {
    const char *p = in_root("runs_bad.tsv");
    static const struct {
        const char *text, *want1, *want2;
    } cases[] = {
        {"", "empty file", NULL},
        {"id\tdir\tconfig\n", ":1:", "header"},
        {"id dir config args\n", ":1:", "header"},
        {"id\tdir\tconfig\targs\n", "no runs", NULL},
        {"id\tdir\tconfig\targs\n1\t/r/a\t/c.ini\trun.seed=1\trun.dir=/r/a\n", ":2:", "expected 0"},
        {"id\tdir\tconfig\targs\nx\t/r/a\t/c.ini\trun.seed=1\trun.dir=/r/a\n", ":2:", "expected 0"},
        {"id\tdir\tconfig\targs\n0\tr/a\t/c.ini\trun.seed=1\trun.dir=r/a\n",
         ":2:", "not an absolute path"},
        {"id\tdir\tconfig\targs\n0\t/r/a\tc.ini\trun.seed=1\trun.dir=/r/a\n",
         ":2:", "not an absolute path"},
        {"id\tdir\tconfig\targs\n0\t/r/a\t/c.ini\trun.seed=1\trun.dir=/r/a\t\n",
         ":2:", "field 6 is empty"},
        {"id\tdir\tconfig\targs\n0\t/r/a\t\t/c.ini\trun.seed=1\trun.dir=/r/a\n",
         ":2:", "field 3 is empty"},
        {"id\tdir\tconfig\targs\n0\t/r/a\t/c.ini\trun.dir=/r/a\n", ":2:", "4 fields"},
        {"id\tdir\tconfig\targs\n0\t/r/a\t/c.ini\tx=1\trun.seed=1\trun.dir=/r/a\n",
         ":2:", "not section.key=value"},
        {"id\tdir\tconfig\targs\n0\t/r/a\t/c.ini\tmodel..net=1\trun.seed=1\trun.dir=/r/a\n",
         ":2:", "not section.key=value"},
        {"id\tdir\tconfig\targs\n0\t/r/a\t/c.ini\tModel.net=1\trun.seed=1\trun.dir=/r/a\n",
         ":2:", "not section.key=value"},
        {"id\tdir\tconfig\targs\n0\t/r/a\t/c.ini\ta.b=1\ta.b=2\trun.seed=1\trun.dir=/r/a\n",
         ":2:", "'a.b' is given twice"},
        {"id\tdir\tconfig\targs\n0\t/r/a\t/c.ini\ta.b=1\trun.dir=/r/a\n", ":2:", "lack run.seed"},
        {"id\tdir\tconfig\targs\n0\t/r/a\t/c.ini\ta.b=1\trun.seed=1\n", ":2:", "lack run.dir"},
        {"id\tdir\tconfig\targs\n0\t/r/a\t/c.ini\trun.seed=-1\trun.dir=/r/a\n",
         ":2:", "not an unsigned integer"},
        {"id\tdir\tconfig\targs\n0\t/r/a\t/c.ini\trun.seed=99999999999999999999\trun.dir=/r/a\n",
         ":2:", "not an unsigned integer"},
        {"id\tdir\tconfig\targs\n0\t/r/a\t/c.ini\trun.seed=1\trun.dir=/r/b\n",
         ":2:", "differs from the dir column"},
        {"id\tdir\tconfig\targs\n0\t/r/a\t/c.ini\trun.seed=1\trun.dir=/r/a\n"
         "1\t/r/a\t/c.ini\trun.seed=2\trun.dir=/r/a\n",
         ":3:", "also the dir of line 2"},
        {"id\tdir\tconfig\targs\n0\t/r/a\t/c.ini\trun.seed=1\trun.dir=/r/a", ":2:", "no line end"},
        {"id\tdir\tconfig\targs\r\n", ":1:", "CR"},
        {"id\tdir\tconfig\targs\n0\t/r/\x01\t/c.ini\trun.seed=1\trun.dir=/r/\x01\n", ":2:", "0x01"},
    };
    /* A line of 2000 fields: refused before any quadratic check. */
    char *many = malloc(64 * 1024);
    int at = sprintf(many, "id\tdir\tconfig\targs\n0\t/r/a\t/c.ini\trun.seed=1\trun.dir=/r/a");
    for (int k = 0; k < 2000; k++)
        at += sprintf(many + at, "\ta.k%d=1", k);
    sprintf(many + at, "\n");
    write_text(p, many);
    free(many);
    report rm;
    memset(&rm, 0, sizeof rm);
    EXPECT_FAILS(report_read_runs(p, &rm), "runs_bad.tsv:2:", "2005 fields; at most 1024");
    report_free(&rm);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        write_text(p, cases[c].text);
        report r;
        memset(&r, 0, sizeof r);
        int rc = report_read_runs(p, &r);
        EXPECT(rc != 0, "runs case %zu accepted", c);
        const char *msg = status_message();
        EXPECT(strstr(msg, "runs_bad.tsv") != NULL, "runs case %zu: message lacks the file: %s", c,
               msg);
        EXPECT(strstr(msg, cases[c].want1) != NULL, "runs case %zu: message \"%s\" lacks \"%s\"", c,
               msg, cases[c].want1);
        if (cases[c].want2)
            EXPECT(strstr(msg, cases[c].want2) != NULL,
                   "runs case %zu: message \"%s\" lacks \"%s\"", c, msg, cases[c].want2);
        status_clear();
        report_free(&r);
    }
}

/* ---- a sweep by hand ---- */

enum { HIDDEN = 20 };

/* Final accuracies etc. of the runs written below, for the reference. */
typedef struct {
    const char *args; /* the point's args, TAB-separated */
    int seed;
    int epochs; /* rows of metrics.csv; -1 no directory, -2 config only */
} run_spec;

static const run_spec specs[] = {
    {"neuron.leak=1\tmodel.time_steps=4", 1, 3},
    {"neuron.leak=1\tmodel.time_steps=4", 2, 3},
    {"neuron.leak=0.5\tmodel.time_steps=4", 1, 2},
    /* the same point with its arguments in another order: the same group */
    {"model.time_steps=4\tneuron.leak=1", 3, 2},
    {"neuron.leak=0.5\tmodel.time_steps=4", 2, -2},
    {"neuron.leak=0.5\tmodel.time_steps=4", 3, 0},
    {"neuron.leak=1\tmodel.time_steps=4", 4, -1},
    {"neuron.leak=0.5\tmodel.time_steps=8", 1, -1},
};
enum { N_SPECS = sizeof specs / sizeof specs[0] };

/* The value of epoch e of run i: any distinct numbers will do; the runs of
 * even i fall at epoch 3, so that their best epoch is not their last. */
static double acc_of(int i, int e) {
    return 40.0 + 7.25 * i + 3.5 * e + 0.125 * (i * e % 5) - (e == 2 && i % 2 == 0 ? 5.0 : 0.0);
}
static double rate_of(int i, int e) {
    return 0.01 * (i + 1) + 0.001 * e;
}
static double rss_of(int i, int e) {
    return 30.0 + i + 2.0 * e;
}

static char base_path[300];

static void write_sweep(const char *dir, const char *config_extra) {
    char path[700];
    snprintf(path, sizeof path, "%s/runs", dir);
    mkdir(dir, 0755);
    mkdir(path, 0755);
    snprintf(base_path, sizeof base_path, "%s/base.ini", dir);
    write_text(base_path, "[model]\nnet = 20 (F20)\n[train]\nepochs = 3\n");
    char *tsv = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&tsv, &len);
    fputs("id\tdir\tconfig\targs\n", f);
    for (int i = 0; i < N_SPECS; i++) {
        char run[512];
        snprintf(run, sizeof run, "%s/runs/r%d", dir, i);
        fprintf(f, "%d\t%s\t%s\t%s\trun.seed=%d\trun.dir=%s\n", i, run, base_path, specs[i].args,
                specs[i].seed, run);
        if (specs[i].epochs == -1) continue;
        mkdir(run, 0755);
        /* config.ini as fsnn train writes it: the point's values, the seed */
        char cfg[1024], leak[16] = "1", steps[16] = "4";
        const char *l = strstr(specs[i].args, "neuron.leak="), *s = strstr(specs[i].args, "steps=");
        sscanf(l + strlen("neuron.leak="), "%15[^\t]", leak);
        sscanf(s + strlen("steps="), "%15[^\t]", steps);
        snprintf(cfg, sizeof cfg,
                 "[run]\nseed = %d\ndir = %s\n[model]\nnet = %d (F%d)\ntime_steps = %s\n"
                 "[neuron]\nleak = %s\n[train]\nepochs = 3\n%s",
                 specs[i].seed, run, HIDDEN, HIDDEN, steps, leak, config_extra);
        snprintf(path, sizeof path, "%s/config.ini", run);
        write_text(path, cfg);
        if (specs[i].epochs == -2) continue;
        char *met = NULL;
        size_t mlen = 0;
        FILE *mf = open_memstream(&met, &mlen);
        fputs("epoch,lr,test_acc,restarts,firing_rate,peak_rss_mb\n", mf);
        for (int e = 0; e < specs[i].epochs; e++)
            fprintf(mf, "%d,0.05,%.4f,0,%.6g,%.1f\n", e + 1, acc_of(i, e), rate_of(i, e),
                    rss_of(i, e));
        fclose(mf);
        snprintf(path, sizeof path, "%s/metrics.csv", run);
        write_text(path, met);
        free(met);
    }
    fclose(f);
    snprintf(path, sizeof path, "%s/runs.tsv", dir);
    write_text(path, tsv);
    free(tsv);
}

/* The value as metrics.csv holds it (%.4f). */
static double as_written(double v) {
    char b[32];
    snprintf(b, sizeof b, "%.4f", v);
    return strtod(b, NULL);
}

/* One-pass mean and sample std in long double over the runs of a group. */
static void reference(const int *runs, int n, int epoch, double *mean, double *std, double *best) {
    long double s = 0, ss = 0;
    *best = -1;
    for (int k = 0; k < n; k++) {
        int e = epoch >= 0 ? epoch : specs[runs[k]].epochs - 1;
        double x = as_written(acc_of(runs[k], e));
        s += x;
        ss += (long double)x * x;
        *best = x > *best ? x : *best;
    }
    *mean = (double)(s / n);
    *std = n > 1 ? (double)sqrtl((ss - s * s / n) / (n - 1)) : NAN;
}

static void test_sweep(void) {
    char dir[512];
    snprintf(dir, sizeof dir, "%s/sweep", root);
    write_sweep(dir, "");
    report *r = NULL;
    EXPECT_OK(report_load(dir, &r));
    if (!r) return;
    EXPECT(r->n_runs == N_SPECS, "%d runs, want %d", r->n_runs, N_SPECS);
    /* Groups in the order of first appearance: leak 1 T 4 (runs 0,1,3,6),
     * leak 0.5 T 4 (2,4,5), leak 0.5 T 8 (7). */
    EXPECT(r->n_groups == 3, "%d groups, want 3", r->n_groups);
    if (r->n_groups != 3) {
        report_destroy(&r);
        return;
    }
    static const int members[3][4] = {{0, 1, 3, 6}, {2, 4, 5, -1}, {7, -1, -1, -1}};
    static const int n_members[3] = {4, 3, 1}, n_done[3] = {3, 1, 0};
    for (int g = 0; g < 3; g++) {
        const report_group *gr = &r->groups[g];
        EXPECT(gr->runs == n_members[g], "g%d: %d runs, want %d", g + 1, gr->runs, n_members[g]);
        EXPECT(gr->done == n_done[g], "g%d: %d done, want %d", g + 1, gr->done, n_done[g]);
        for (int k = 0; k < n_members[g]; k++)
            EXPECT(r->runs[members[g][k]].group == g, "run %d in group %d, want %d", members[g][k],
                   r->runs[members[g][k]].group, g);
        EXPECT(gr->first == members[g][0], "g%d first run %d", g + 1, gr->first);
    }
    /* Labels: the values that differ (both keys differ between groups). */
    EXPECT(!strcmp(r->groups[0].label, "neuron.leak=1 model.time_steps=4"), "label g1 '%s'",
           r->groups[0].label);
    EXPECT(!strcmp(r->groups[2].label, "neuron.leak=0.5 model.time_steps=8"), "label g3 '%s'",
           r->groups[2].label);
    /* Missing runs and why. */
    EXPECT(r->runs[6].missing && strstr(r->runs[6].missing, "no run directory"), "run 6: %s",
           r->runs[6].missing ? r->runs[6].missing : "(not missing)");
    EXPECT(r->runs[4].missing && strstr(r->runs[4].missing, "no metrics.csv"), "run 4: %s",
           r->runs[4].missing ? r->runs[4].missing : "(not missing)");
    EXPECT(r->runs[5].missing && strstr(r->runs[5].missing, "no finished epoch"), "run 5: %s",
           r->runs[5].missing ? r->runs[5].missing : "(not missing)");
    EXPECT(r->runs[0].missing == NULL, "run 0 missing: %s", r->runs[0].missing);

    /* Statistics of group 1 (runs 0, 1, 3 done; final epochs 3, 3, 2). */
    static const int done1[3] = {0, 1, 3};
    double mean, std, best;
    reference(done1, 3, -1, &mean, &std, &best);
    const report_group *g1 = &r->groups[0];
    EXPECT_NEAR(g1->acc_mean, mean, 0.0, 1e-9, "g1 mean");
    EXPECT_NEAR(g1->acc_std, std, 0.0, 1e-9, "g1 sample std");
    EXPECT(g1->acc_best == best, "g1 best %g, want %g", g1->acc_best, best);
    /* Over each run's best epoch instead. */
    double pk[3], ps = 0.0, pss = 0.0;
    for (int k = 0; k < 3; k++) {
        pk[k] = -1.0;
        for (int e = 0; e < specs[done1[k]].epochs; e++)
            pk[k] = fmax(pk[k], as_written(acc_of(done1[k], e)));
        ps += pk[k];
    }
    for (int k = 0; k < 3; k++)
        pss += (pk[k] - ps / 3) * (pk[k] - ps / 3);
    EXPECT_NEAR(g1->peak_mean, ps / 3, 0.0, 1e-9, "g1 best-epoch mean");
    EXPECT_NEAR(g1->peak_std, sqrt(pss / 2), 0.0, 1e-9, "g1 best-epoch std");
    EXPECT(g1->peak_mean > g1->acc_mean,
           "g1 best-epoch mean %g not above the final %g (run 0 "
           "falls at its last epoch)",
           g1->peak_mean, g1->acc_mean);
    double rate = (rate_of(0, 2) + rate_of(1, 2) + rate_of(3, 1)) / 3;
    EXPECT_NEAR(g1->firing_mean, rate, 1e-6, 0.0, "g1 firing rate");
    double peak = fmax(fmax(rss_of(0, 2), rss_of(1, 2)), rss_of(3, 1));
    EXPECT_NEAR(g1->peak_rss_mb, peak, 0.05, 0.0, "g1 peak memory");
    EXPECT(g1->epochs_min == 0 && g1->epochs_max == 3, "g1 epochs %d..%d, want 0..3 (run 6 has 0)",
           g1->epochs_min, g1->epochs_max);
    /* The curve: epoch 3 only from runs 0 and 1. */
    EXPECT(g1->curve_len == 3, "g1 curve length %d", g1->curve_len);
    if (g1->curve_len == 3) {
        EXPECT(g1->curve_n[0] == 3 && g1->curve_n[2] == 2, "g1 curve counts %d, %d", g1->curve_n[0],
               g1->curve_n[2]);
        static const int two[2] = {0, 1};
        reference(two, 2, 2, &mean, &std, &best);
        EXPECT_NEAR(g1->curve_mean[2], mean, 0.0, 1e-9, "g1 curve mean at epoch 3");
        EXPECT_NEAR(g1->curve_std[2], std, 0.0, 1e-9, "g1 curve std at epoch 3");
    }
    /* One done run: std undefined; none: everything undefined. */
    EXPECT(isnan(r->groups[1].acc_std) && !isnan(r->groups[1].acc_mean), "g2 mean %g std %g",
           r->groups[1].acc_mean, r->groups[1].acc_std);
    EXPECT(isnan(r->groups[2].acc_mean) && isnan(r->groups[2].acc_best), "g3 mean %g",
           r->groups[2].acc_mean);
    /* Sizes of 784-20 (F20) with 10 classes as the paper counts them:
     * neurons of input, layer and readout; weights of F, V and W_o. */
    long params = 784L * HIDDEN + (long)HIDDEN * HIDDEN + 10L * HIDDEN;
    for (int g = 0; g < 2; g++) {
        EXPECT(r->groups[g].neurons == 784 + HIDDEN + 10, "g%d neurons %ld", g + 1,
               r->groups[g].neurons);
        EXPECT(r->groups[g].params == params, "g%d params %ld, want %ld", g + 1,
               r->groups[g].params, params);
    }
    /* Group 3 has no run directory at all: its configuration is the base
     * config with its arguments (base.ini: 20 (F20), epochs 3). */
    EXPECT(r->groups[2].have_cfg && r->groups[2].cfg.model_time_steps == 8 &&
               r->groups[2].params == params,
           "g3 from the base config: have %d T %d params %ld", r->groups[2].have_cfg,
           r->groups[2].cfg.model_time_steps, r->groups[2].params);

    /* The writers. */
    char *md = NULL, *csv = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&md, &len);
    EXPECT_OK(report_write_markdown(r, "hand", f));
    fclose(f);
    f = open_memstream(&csv, &len);
    EXPECT_OK(report_write_csv(r, f));
    fclose(f);
    EXPECT(strstr(md, "| g1 | neuron.leak=1 model.time_steps=4 | 20 (F20) | IF | 4 |") != NULL,
           "markdown row g1 missing:\n%s", md);
    EXPECT(strstr(md, "| LIF 0.5 | 8 | - | - |") != NULL, "markdown row g3 (no data):\n%s", md);
    EXPECT(strstr(md, "| 0..3/3 | 3 (+1 missing) |") != NULL, "markdown g1 epochs/seeds:\n%s", md);
    EXPECT(strstr(md, "Missing runs (no finished epoch; not in the statistics): 4") != NULL,
           "markdown missing list:\n%s", md);
    EXPECT(strstr(md, "sample standard deviation (n − 1)") != NULL, "conventions missing");
    int lines = 0;
    for (const char *p = csv; *p; p++)
        lines += *p == '\n';
    EXPECT(lines == 4, "CSV has %d lines, want header + 3", lines);
    EXPECT(strstr(csv, "\ng3,neuron.leak=0.5 model.time_steps=8,20 (F20),LIF 0.5,0.5,8,,,,") !=
               NULL,
           "CSV row g3:\n%s", csv);
    free(md);
    free(csv);
    report_destroy(&r);
    EXPECT(r == NULL, "report_destroy leaves the pointer");
}

/* Labels with '|' and ',' are escaped in Markdown and quoted in CSV. */
static void test_escaping(void) {
    char dir[512], run[600], path[700];
    snprintf(dir, sizeof dir, "%s/esc", root);
    mkdir(dir, 0755);
    snprintf(run, sizeof run, "%s/r0", dir);
    snprintf(path, sizeof path, "%s/runs.tsv", dir);
    char tsv[2048];
    snprintf(tsv, sizeof tsv,
             "id\tdir\tconfig\targs\n0\t%s\t/nonexistent/base.ini\tdata.path=/a|b,\"c\"\t"
             "run.seed=1\trun.dir=%s\n",
             run, run);
    write_text(path, tsv);
    report *r = NULL;
    EXPECT_OK(report_load(dir, &r));
    if (!r) return;
    EXPECT(r->n_groups == 1 && !r->groups[0].have_cfg, "one group without a configuration");
    char *md = NULL, *csv = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&md, &len);
    EXPECT_OK(report_write_markdown(r, "esc", f));
    fclose(f);
    f = open_memstream(&csv, &len);
    EXPECT_OK(report_write_csv(r, f));
    fclose(f);
    EXPECT(strstr(md, "| data.path=/a\\|b,\"c\" | ? | ? | ? |") != NULL, "markdown escaping:\n%s",
           md);
    EXPECT(strstr(csv, "\ng1,\"data.path=/a|b,\"\"c\"\"\",?,?,,,") != NULL, "CSV quoting:\n%s",
           csv);
    free(md);
    free(csv);
    report_destroy(&r);
}

/* Run directories that contradict runs.tsv are errors naming the file. */
static void test_inconsistent(void) {
    char dir[512], path[700];
    snprintf(dir, sizeof dir, "%s/bad_seed", root);
    write_sweep(dir, "");
    /* run 0's config.ini says seed 1; make runs.tsv's line say 9 */
    snprintf(path, sizeof path, "%s/runs/r0/config.ini", dir);
    char cfg[1024];
    snprintf(cfg, sizeof cfg, "[run]\nseed = 9\n[model]\nnet = 20 (F20)\n");
    write_text(path, cfg);
    report *r = NULL;
    EXPECT_FAILS(report_load(dir, &r), "r0/config.ini", "run.seed is 9", "line 2 says 1");
    report_destroy(&r);
    /* metrics.csv without config.ini */
    snprintf(path, sizeof path, "%s/runs/r0/config.ini", dir);
    unlink(path);
    EXPECT_FAILS(report_load(dir, &r), "r0", "metrics.csv without config.ini");
    report_destroy(&r);
    /* a damaged metrics.csv of one run */
    snprintf(dir, sizeof dir, "%s/bad_metrics", root);
    write_sweep(dir, "");
    snprintf(path, sizeof path, "%s/runs/r1/metrics.csv", dir);
    write_text(path, "epoch,test_acc,firing_rate,peak_rss_mb\n1,50,0.1,3\n3,50,0.1,3\n");
    EXPECT_FAILS(report_load(dir, &r), "r1/metrics.csv:3:", "expected 2");
    report_destroy(&r);
    /* a config.ini fsnn would not read */
    snprintf(dir, sizeof dir, "%s/bad_config", root);
    write_sweep(dir, "[train]\nlrr = 3\n");
    EXPECT_FAILS(report_load(dir, &r), "r0/config.ini", "lrr");
    report_destroy(&r);
    EXPECT_FAILS(report_load(in_root("no_sweep"), &r), "no_sweep/runs.tsv", "cannot open");
    report_destroy(&r);
}

/* Damaged copies of good files: each byte changed, inserted or cut at
 * random positions. Every read must either succeed or fail with a message
 * naming the file; none may crash or leak. */
static void test_damage(void) {
    char dir[512], path[700];
    snprintf(dir, sizeof dir, "%s/damage", root);
    write_sweep(dir, "");
    snprintf(path, sizeof path, "%s/runs.tsv", dir);
    FILE *f = fopen(path, "rb");
    static char good_tsv[8192];
    size_t tsv_len = f ? fread(good_tsv, 1, sizeof good_tsv, f) : 0;
    if (f) fclose(f);
    const char *sources[2] = {metrics_ok, good_tsv};
    size_t lens[2] = {sizeof metrics_ok - 1, tsv_len};
    const char *targets[2] = {in_root("damaged.csv"), path};
    int refused[2] = {0, 0}, named[2] = {0, 0};
    enum { TRIALS = 400 };
    static char buf[8300];
    for (int kind = 0; kind < 2; kind++)
        for (int trial = 0; trial < TRIALS; trial++) {
            float u[4];
            rng_uniform_fill(21, RNG_TEST, (uint32_t)kind, (uint32_t)trial, u, 4);
            size_t len = lens[kind];
            memcpy(buf, sources[kind], len);
            size_t at = (size_t)(u[0] * (float)len) % len;
            int op = (int)(u[1] * 3.0f);
            char byte = (char)(int)(u[2] * 256.0f);
            if (op == 0) {
                buf[at] = byte;
            } else if (op == 1) {
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = byte;
                len++;
            } else {
                len = at;
            }
            write_file(targets[kind], buf, len);
            int rc;
            if (kind == 0) {
                report_metrics m;
                rc = report_read_metrics(targets[kind], &m);
                report_metrics_free(&m);
            } else {
                report *r = NULL;
                rc = report_load(dir, &r);
                report_destroy(&r);
            }
            if (rc != 0) {
                refused[kind]++;
                named[kind] += strstr(status_message(), root) != NULL;
            }
            status_clear();
        }
    /* Most damage must be seen (a changed digit is still a valid file). */
    for (int kind = 0; kind < 2; kind++) {
        EXPECT(refused[kind] > TRIALS / 3, "%s: only %d of %d damaged files refused",
               kind ? "runs.tsv" : "metrics.csv", refused[kind], TRIALS);
        EXPECT(named[kind] == refused[kind], "%s: %d of %d refusals name no file",
               kind ? "runs.tsv" : "metrics.csv", refused[kind] - named[kind], refused[kind]);
    }
}

int main(void) {
    snprintf(root, sizeof root, "/tmp/fsnn-test-report.XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 1;
    }
    test_metrics_good();
    test_metrics_bad();
    test_runs_bad();
    test_sweep();
    test_escaping();
    test_inconsistent();
    test_damage();
    testutil_remove_tree(root);
    return check_finish("report");
}
