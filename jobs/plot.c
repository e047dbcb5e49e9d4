/* plot: data files, gnuplot scripts, and gnuplot as a child process. */
#include "plot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "child.h"  // defines: child_start, child_wait
#include "fsutil.h" // defines: fsutil_join, fsutil_write_atomic
#include "status.h" // defines: CHECK, FAIL

#define PLOT_PATH_MAX 4096

int plot_have_gnuplot(void) {
    const char *path = getenv("PATH");
    if (!path) return 0;
    for (const char *p = path;;) {
        const char *end = strchr(p, ':');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        char file[PLOT_PATH_MAX];
        /* An empty entry is the current folder (POSIX). */
        if (snprintf(file, sizeof file, "%.*s/gnuplot", len ? (int)len : 1, len ? p : ".") <
            (int)sizeof file) {
            struct stat st;
            if (stat(file, &st) == 0 && S_ISREG(st.st_mode) && access(file, X_OK) == 0) return 1;
        }
        if (!end) return 0;
        p = end + 1;
    }
}

/* A gnuplot string: single quotes, in which only '' is special. */
static void plot_quote(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

/* The legend of group g: "g<k>: <label>", cut to keep the legend readable. */
static void plot_title(FILE *f, const report *r, int g) {
    char t[112];
    snprintf(t, sizeof t, "g%d: %.80s%s", g + 1, r->groups[g].label,
             strlen(r->groups[g].label) > 80 ? "..." : "");
    plot_quote(f, t);
}

/* What a group has to draw in each plot. */
typedef enum { PLOT_CURVE, PLOT_BAR, PLOT_TRACE } plot_kind;

static int plot_has(const report *r, const model_trace *const *traces, plot_kind kind, int g) {
    if (kind == PLOT_CURVE) return r->groups[g].curve_len > 0;
    if (kind == PLOT_BAR) return r->groups[g].done > 0;
    return traces[g] != NULL;
}

/* The groups drawn: those with something to draw among groups [0, *end),
 * at most `max`; returns how many groups have something (maybe more). */
static int plot_cut(const report *r, const model_trace *const *traces, plot_kind kind, int max,
                    int *end) {
    int total = 0;
    *end = r->n_groups;
    for (int g = 0; g < r->n_groups; g++)
        if (plot_has(r, traces, kind, g) && ++total == max) *end = g + 1;
    return total;
}

/* " (the first 12 of 40 groups)" when not every group is drawn. */
static void plot_cut_note(FILE *f, int shown, int total) {
    if (total > shown) fprintf(f, " (the first %d of %d groups)", shown, total);
}

/* Opens an in-memory text that plot_save writes to dir/name. */
typedef struct {
    char *text;
    size_t len;
    FILE *f;
} plot_text;

static int plot_open(plot_text *t) {
    t->text = NULL;
    t->len = 0;
    t->f = open_memstream(&t->text, &t->len);
    return t->f ? FSNN_OK : FAIL("cannot buffer a plot file: %s", strerror(errno));
}

static int plot_save(plot_text *t, const char *dir, const char *name) {
    int bad = ferror(t->f);
    fclose(t->f);
    char path[PLOT_PATH_MAX];
    int rc = bad ? FAIL("cannot format %s", name) : fsutil_join(path, sizeof path, dir, name);
    if (rc == 0) rc = fsutil_write_atomic(path, t->text, t->len);
    free(t->text);
    t->text = NULL;
    return rc;
}

/* The start of every script: PNG output to <name>.png, plain-text labels. */
static void plot_preamble(FILE *f, const char *name, int width, int height) {
    fprintf(f, "set terminal pngcairo size %d,%d noenhanced font ',10'\n", width, height);
    fprintf(f, "set output '%s.png'\n", name);
    fputs("set grid\n", f);
}

/* An x axis of epochs or steps: one tic per value when there are few. */
static void plot_integer_tics(FILE *f, int count) {
    if (count <= 20) fputs("set xtics 1\n", f);
}

/* Runs `gnuplot <name>.gp` in dir (output to <name>.log) and checks that
 * <name>.png came out. */
static int plot_run(const char *dir, const char *name) {
    char script[64], log[64], png[PLOT_PATH_MAX];
    snprintf(script, sizeof script, "%s.gp", name);
    snprintf(log, sizeof log, "%s.log", name);
    char png_name[64];
    snprintf(png_name, sizeof png_name, "%s.png", name);
    CHECK(fsutil_join(png, sizeof png, dir, png_name));
    unlink(png);
    char *const argv[] = {"gnuplot", script, NULL};
    child_opts o = {.dir = dir, .out_path = log, .in = -1, .out = -1, .err = -1};
    child c;
    int status = 0;
    CHECK(child_start(argv, &o, &c));
    CHECK(child_wait(&c, &status));
    if (WIFSIGNALED(status))
        return FAIL("gnuplot on %s/%s ended by signal %d", dir, script, WTERMSIG(status));
    int code = WEXITSTATUS(status);
    /* 127 is also what a failed exec gives (c.exec_errno). */
    if (code == 127) return FAIL("gnuplot could not be started (not in PATH?)");
    if (code != 0)
        return FAIL("gnuplot failed on %s/%s (exit code %d); its messages are in %s/%s", dir,
                    script, code, dir, log);
    struct stat st;
    if (stat(png, &st) != 0 || st.st_size == 0)
        return FAIL("gnuplot made no %s (messages in %s/%s)", png, dir, log);
    return FSNN_OK;
}

int plot_accuracy(const report *r, const char *dir) {
    int end = 0, total = plot_cut(r, NULL, PLOT_CURVE, PLOT_MAX_CURVES, &end), epochs = 0;
    if (total == 0) return PLOT_EMPTY;
    plot_text dat, gp;
    CHECK(plot_open(&dat));
    for (int g = 0, b = 0; g < end; g++) {
        const report_group *gr = &r->groups[g];
        if (gr->curve_len == 0) continue;
        epochs = gr->curve_len > epochs ? gr->curve_len : epochs;
        /* gnuplot data blocks: separated by two blank lines, addressed by index */
        fprintf(dat.f, "%s# g%d\n# epoch mean std seeds\n", b++ ? "\n\n" : "", g + 1);
        for (int e = 0; e < gr->curve_len; e++)
            fprintf(dat.f, "%d %.10g %.10g %d\n", e + 1, gr->curve_mean[e],
                    isfinite(gr->curve_std[e]) ? gr->curve_std[e] : 0.0, gr->curve_n[e]);
    }
    CHECK(plot_save(&dat, dir, "accuracy.dat"));
    CHECK(plot_open(&gp));
    plot_preamble(gp.f, "accuracy", 1000, 650);
    plot_integer_tics(gp.f, epochs);
    fputs("set title 'Test accuracy per epoch: mean over seeds, band of +- one sample std", gp.f);
    plot_cut_note(gp.f, PLOT_MAX_CURVES, total);
    fputs("'\nset xlabel 'epoch'\nset ylabel 'test accuracy (%)'\nset key bottom right\n"
          "set style fill transparent solid 0.2 noborder\nplot ",
          gp.f);
    for (int g = 0, b = 0; g < end; g++) {
        if (r->groups[g].curve_len == 0) continue;
        fprintf(gp.f,
                "%s'accuracy.dat' index %d using 1:($2-$3):($2+$3) with filledcurves lc %d "
                "notitle, \\\n  'accuracy.dat' index %d using 1:2 with linespoints lc %d pt 7 "
                "title ",
                b ? ", \\\n  " : "", b, g + 1, b, g + 1);
        plot_title(gp.f, r, g);
        b++;
    }
    fputc('\n', gp.f);
    CHECK(plot_save(&gp, dir, "accuracy.gp"));
    return plot_run(dir, "accuracy");
}

int plot_firing(const report *r, const char *dir) {
    int end = 0, total = plot_cut(r, NULL, PLOT_BAR, PLOT_MAX_BARS, &end);
    if (total == 0) return PLOT_EMPTY;
    plot_text dat, gp;
    CHECK(plot_open(&dat));
    fputs("# group firing_rate (mean over seeds of the final epoch's)\n", dat.f);
    for (int g = 0; g < end; g++)
        if (r->groups[g].done > 0) fprintf(dat.f, "g%d %.10g\n", g + 1, r->groups[g].firing_mean);
    CHECK(plot_save(&dat, dir, "firing_rate.dat"));
    CHECK(plot_open(&gp));
    plot_preamble(gp.f, "firing_rate", 800, 500);
    fputs("set title 'Average firing rate of the feedback layer (final epoch, mean over seeds)",
          gp.f);
    plot_cut_note(gp.f, PLOT_MAX_BARS, total);
    fputs("'\nset ylabel 'spikes per neuron per time step'\nset xlabel 'group (see the table)'\n"
          "set yrange [0:*]\nset boxwidth 0.6\nset style fill solid 0.6 border -1\n"
          "plot 'firing_rate.dat' using 0:2:xtic(1) with boxes lc 1 title 'layer 1 (F)'\n",
          gp.f);
    CHECK(plot_save(&gp, dir, "firing_rate.gp"));
    return plot_run(dir, "firing_rate");
}

int plot_residual(const report *r, const char *dir, const model_trace *const *traces) {
    int end = 0, total = plot_cut(r, traces, PLOT_TRACE, PLOT_MAX_CURVES, &end);
    if (total == 0) return PLOT_EMPTY;
    int positive = 1, steps = 0;
    for (int g = 0; g < end; g++) {
        const model_trace *tr = traces[g];
        if (!tr) continue;
        char name[32], path[PLOT_PATH_MAX];
        snprintf(name, sizeof name, "residual_g%d.csv", g + 1);
        CHECK(fsutil_join(path, sizeof path, dir, name));
        CHECK(report_write_trace(path, tr));
        for (int t = 0; t < tr->T; t++)
            positive &= tr->rel_sum[t] > 0.0 && tr->res_sum[t] > 0.0;
        steps = tr->T > steps ? tr->T : steps;
    }
    plot_text gp;
    CHECK(plot_open(&gp));
    plot_preamble(gp.f, "residual", 1200, 550);
    plot_integer_tics(gp.f, steps);
    fputs("set datafile separator ','\nset xlabel 'time step t'\nset key top right\n", gp.f);
    if (positive) fputs("set logscale y\n", gp.f);
    fputs("set multiplot layout 1,2\n", gp.f);
    static const char *const what[2][3] = {
        {"||f(a[t]) - a[t]|| / ||a[t]|| (mean over test samples)", "relative residual", "2"},
        {"||f(a[t]) - a[t]|| (mean over test samples; the paper''s Figure 1)", "absolute residual",
         "5"}};
    for (int k = 0; k < 2; k++) {
        fprintf(gp.f, "set title '%s", what[k][0]);
        plot_cut_note(gp.f, PLOT_MAX_CURVES, total);
        fprintf(gp.f, "'\nset ylabel '%s'\nplot ", what[k][1]);
        for (int g = 0, c = 0; g < end; g++) {
            if (!traces[g]) continue;
            fprintf(gp.f,
                    "%s'residual_g%d.csv' skip 1 using 1:%s with linespoints lc %d pt 7 title ",
                    c++ ? ", \\\n  " : "", g + 1, what[k][2], g + 1);
            plot_title(gp.f, r, g);
        }
        fputc('\n', gp.f);
    }
    fputs("unset multiplot\n", gp.f);
    CHECK(plot_save(&gp, dir, "residual.gp"));
    return plot_run(dir, "residual");
}
