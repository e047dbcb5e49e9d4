/* report_write: the writers of the report module (report.h): the table as
 * Markdown and as CSV, and a residual trace as CSV. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h" // defines: fsutil_write_atomic
#include "report.h" // defines: report, report_group, report_write_markdown
#include "status.h" // defines: FAIL

void report_neuron_name(float leak, char *buf, size_t size) {
    if (leak == 1.0f)
        snprintf(buf, size, "IF");
    else
        snprintf(buf, size, "LIF %g", (double)leak);
}

/* Markdown cell text: '|' would end the cell. */
static void report_md_cell(FILE *out, const char *s) {
    fputs("| ", out);
    for (; *s; s++) {
        if (*s == '|') fputc('\\', out);
        fputc(*s, out);
    }
    fputc(' ', out);
}

/* The group's fixed columns as text ("?" when unknown). */
typedef struct {
    char net[CFG_NET_MAX + 16], neuron[32], T[16], epochs_target[16];
} report_cfg_text;

static void report_cfg_texts(const report_group *g, report_cfg_text *t) {
    if (!g->have_cfg) {
        strcpy(t->net, "?");
        strcpy(t->neuron, "?");
        strcpy(t->T, "?");
        strcpy(t->epochs_target, "?");
        return;
    }
    snprintf(t->net, sizeof t->net, "%s", g->cfg.model_net);
    report_neuron_name(g->cfg.neuron_leak, t->neuron, sizeof t->neuron);
    snprintf(t->T, sizeof t->T, "%d", g->cfg.model_time_steps);
    snprintf(t->epochs_target, sizeof t->epochs_target, "%d", g->cfg.train_epochs);
}

/* v with `fmt`, or "-" when v is undefined (NAN). */
static void report_fmt(char *cell, size_t size, const char *fmt, double v) {
    if (isfinite(v))
        snprintf(cell, size, fmt, v);
    else
        snprintf(cell, size, "-");
}

/* A count, or "?" when unknown (negative). */
static const char *report_count(char *cell, size_t size, long v) {
    if (v < 0)
        snprintf(cell, size, "?");
    else
        snprintf(cell, size, "%ld", v);
    return cell;
}

/* The groups' statistics over each run's best epoch, apart from the table:
 * choosing the epoch on the test set overstates, but some published figures
 * are of that kind, and this tells them apart from a real difference. */
static void report_write_peaks(const report *r, FILE *out) {
    int any = 0;
    for (int gi = 0; gi < r->n_groups; gi++) {
        const report_group *g = &r->groups[gi];
        if (g->done == 0) continue;
        fputs(any ? ", "
                  : "\nBest epoch of each run instead of the final one (chosen on the test "
                    "set, so it overstates; for figures reported that way): ",
              out);
        if (g->done > 1)
            fprintf(out, "g%d %.2f ± %.2f", gi + 1, g->peak_mean, g->peak_std);
        else
            fprintf(out, "g%d %.2f ± -", gi + 1, g->peak_mean);
        any = 1;
    }
    if (any) fputs(".\n", out);
}

int report_write_markdown(const report *r, const char *title, FILE *out) {
    fprintf(out, "# fsnn report: %s\n\n", title);
    fputs("| # | group | network | neuron | T | test accuracy % (mean ± std) | best % | neurons "
          "| params | firing rate | peak MB | epochs | seeds |\n",
          out);
    fputs("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n", out);
    int missing = 0;
    for (int gi = 0; gi < r->n_groups; gi++) {
        const report_group *g = &r->groups[gi];
        report_cfg_text t;
        report_cfg_texts(g, &t);
        char cell[160];
        snprintf(cell, sizeof cell, "g%d", gi + 1);
        report_md_cell(out, cell);
        report_md_cell(out, g->label);
        report_md_cell(out, t.net);
        report_md_cell(out, t.neuron);
        report_md_cell(out, t.T);
        if (g->done < 2)
            report_fmt(cell, sizeof cell, "%.2f ± -", g->acc_mean);
        else
            snprintf(cell, sizeof cell, "%.2f ± %.2f", g->acc_mean, g->acc_std);
        report_md_cell(out, cell);
        report_fmt(cell, sizeof cell, "%.2f", g->acc_best);
        report_md_cell(out, cell);
        report_md_cell(out, report_count(cell, sizeof cell, g->neurons));
        report_md_cell(out, report_count(cell, sizeof cell, g->params));
        report_fmt(cell, sizeof cell, "%.4f", g->firing_mean);
        report_md_cell(out, cell);
        report_fmt(cell, sizeof cell, "%.0f", g->peak_rss_mb);
        report_md_cell(out, cell);
        if (g->epochs_min == g->epochs_max)
            snprintf(cell, sizeof cell, "%d/%s", g->epochs_max, t.epochs_target);
        else
            snprintf(cell, sizeof cell, "%d..%d/%s", g->epochs_min, g->epochs_max, t.epochs_target);
        report_md_cell(out, cell);
        if (g->done == g->runs)
            snprintf(cell, sizeof cell, "%d", g->done);
        else
            snprintf(cell, sizeof cell, "%d (+%d missing)", g->done, g->runs - g->done);
        report_md_cell(out, cell);
        fputs("|\n", out);
        missing += g->runs - g->done;
    }
    if (missing) {
        fprintf(out, "\nMissing runs (no finished epoch; not in the statistics): %d\n\n", missing);
        for (int i = 0; i < r->n_runs; i++) {
            const report_run *run = &r->runs[i];
            if (run->missing)
                fprintf(out, "- g%d run.seed=%llu (id %d): %s: %s\n", run->group + 1,
                        (unsigned long long)run->seed, run->id, run->missing, run->dir);
        }
    }
    report_write_peaks(r, out);
    fputs("\nTest accuracy of each run's final epoch (the last row of its metrics.csv, not its "
          "best epoch); mean ± sample standard deviation (n − 1) over the seeds that finished "
          "at least one epoch; best = the largest final accuracy of those seeds. Firing rate: "
          "mean of the final epochs' spikes per neuron per step (training). Peak MB: the "
          "largest peak resident memory of any epoch of any seed. Epochs: finished epochs "
          "(fewest..most over the seeds) / train.epochs. Neurons and params: the net of the "
          "configuration as the paper counts them (input, layer and output neurons; weights "
          "of the connections, without biases and BatchNorm). docs/report.md.\n",
          out);
    return ferror(out) ? FAIL("cannot write the Markdown table") : FSNN_OK;
}

/* A CSV field, quoted when it holds a comma or a quote. */
static void report_csv_text(FILE *out, const char *s, int last) {
    if (strpbrk(s, ",\"")) {
        fputc('"', out);
        for (; *s; s++) {
            if (*s == '"') fputc('"', out);
            fputc(*s, out);
        }
        fputc('"', out);
    } else {
        fputs(s, out);
    }
    fputc(last ? '\n' : ',', out);
}

static void report_csv_num(FILE *out, double v) {
    if (isfinite(v)) fprintf(out, "%.10g", v);
    fputc(',', out);
}

int report_write_csv(const report *r, FILE *out) {
    fputs("group_id,group,network,neuron,leak,time_steps,acc_mean,acc_std,acc_best,neurons,"
          "params,firing_rate,peak_rss_mb,epochs_min,epochs_max,epochs_target,seeds_done,"
          "seeds_missing,acc_best_epoch_mean,acc_best_epoch_std\n",
          out);
    for (int gi = 0; gi < r->n_groups; gi++) {
        const report_group *g = &r->groups[gi];
        report_cfg_text t;
        report_cfg_texts(g, &t);
        char id[16];
        snprintf(id, sizeof id, "g%d", gi + 1);
        report_csv_text(out, id, 0);
        report_csv_text(out, g->label, 0);
        report_csv_text(out, t.net, 0);
        report_csv_text(out, t.neuron, 0);
        /* float: 7 digits give back the value, not its binary tail */
        if (g->have_cfg) fprintf(out, "%.7g", (double)g->cfg.neuron_leak);
        fputc(',', out);
        report_csv_num(out, g->have_cfg ? g->cfg.model_time_steps : NAN);
        report_csv_num(out, g->acc_mean);
        report_csv_num(out, g->acc_std);
        report_csv_num(out, g->acc_best);
        report_csv_num(out, g->neurons >= 0 ? (double)g->neurons : NAN);
        report_csv_num(out, g->params >= 0 ? (double)g->params : NAN);
        report_csv_num(out, g->firing_mean);
        report_csv_num(out, g->peak_rss_mb);
        fprintf(out, "%d,%d,", g->epochs_min, g->epochs_max);
        report_csv_num(out, g->have_cfg ? g->cfg.train_epochs : NAN);
        fprintf(out, "%d,%d,", g->done, g->runs - g->done);
        report_csv_num(out, g->peak_mean);
        if (isfinite(g->peak_std)) fprintf(out, "%.10g", g->peak_std);
        fputc('\n', out);
    }
    return ferror(out) ? FAIL("cannot write the CSV table") : FSNN_OK;
}

int report_write_trace(const char *path, const model_trace *tr) {
    if (tr->samples <= 0) return FAIL("%s: the trace has no samples", path);
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem) return FAIL("%s: cannot buffer the trace: %s", path, strerror(errno));
    fputs("t,residual_mean,residual_max,delta_mean,abs_residual_mean,abs_residual_max\n", mem);
    const double n = (double)tr->samples;
    for (int t = 0; t < tr->T; t++)
        fprintf(mem, "%d,%.9g,%.9g,%.9g,%.9g,%.9g\n", t + 1, tr->rel_sum[t] / n, tr->rel_max[t],
                tr->delta_sum[t] / n, tr->res_sum[t] / n, tr->res_max[t]);
    int bad = ferror(mem);
    fclose(mem);
    int rc = bad ? FAIL("%s: cannot format the trace", path) : fsutil_write_atomic(path, text, len);
    free(text);
    return rc;
}
