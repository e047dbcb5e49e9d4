/* plot: the PNG figures of a sweep report, drawn by gnuplot (Debian package
 * gnuplot-nox, terminal pngcairo).
 *
 * Each figure NAME is three files in the plots folder: NAME.dat (or the
 * trace CSVs) with the numbers, NAME.gp the gnuplot script, NAME.png; what
 * gnuplot prints goes to NAME.log. gnuplot runs as a child process
 * (jobs/child: fork and exec, found in PATH as execvp would) on the script
 * file, inside the plots folder (no shell; group labels enter the script
 * only as single-quoted strings with every quote doubled, and as plain text:
 * `noenhanced`). */
#ifndef FSNN_PLOT_H
#define FSNN_PLOT_H

#include <stddef.h>

#include "model.h"
#include "report.h"

/* What a plot function returns when the report has nothing to draw (no
 * finished run, no trace); no message is recorded. Other non-zero returns
 * are failures with a message. */
#define PLOT_EMPTY 2

/* More curves or bars would be unreadable: the plots show the first groups
 * (in table order) that have something to draw, and say so in the title. */
#define PLOT_MAX_CURVES 12
#define PLOT_MAX_BARS 50

/* 1 if an executable `gnuplot` is in a folder of PATH. */
int plot_have_gnuplot(void);

/* accuracy.png: test accuracy against epoch, for each group with a finished
 * epoch the mean over its seeds with a band of ± one sample standard
 * deviation (no band where one seed has the epoch). */
int plot_accuracy(const report *r, const char *dir);

/* firing_rate.png: one bar per group with a finished epoch, the mean over
 * seeds of the final epoch's firing rate of the feedback layer (the FC nets
 * have one; the paper's Table 5 lists one bar per layer). */
int plot_firing(const report *r, const char *dir);

/* residual.png (the paper's Figure 1): for each group with a trace
 * (traces[g], NULL for none; the first PLOT_MAX_CURVES of them), the relative forward residual
 * ||f(a[t]) - a[t]|| / ||a[t]|| and the absolute ||f(a[t]) - a[t]||, means
 * over the traced samples, against the time step t. Writes each trace to
 * residual_g<k>.csv (report_write_trace) first. Logarithmic y axes when
 * every value is positive. */
int plot_residual(const report *r, const char *dir, const model_trace *const *traces);

#endif
