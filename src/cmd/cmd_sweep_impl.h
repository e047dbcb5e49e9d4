/* cmd_sweep_impl: what the files of `fsnn sweep` share and nothing else
 * includes (cmd.h declares the command). cmd_sweep.c reads the command
 * line, writes the sweep directory, picks the runs to start and reports
 * every run's state; cmd_sweep_slurm.c asks squeue what SLURM holds and
 * submits the runs through sbatch; cmd_sweep_local.c runs them on this
 * machine. */
#ifndef FSNN_CMD_SWEEP_IMPL_H
#define FSNN_CMD_SWEEP_IMPL_H

#include <stddef.h>
#include <stdio.h>

#include "runstate.h" // defines: runstate
#include "sweep.h"    // defines: sweep_plan, sweep_table
#include "sweepq.h"   // defines: sweepq_view, sweepq_queue, sweepq_history

/* The command's exit codes (cmd.h). */
enum { CMD_OK = 0, CMD_FAILED = 1, CMD_USAGE = 2, CMD_STOPPED = 3 };

#define CMD_PATH_MAX 4200

/* The runs to start and how many of the others are held elsewhere. */
typedef struct {
    int *ids; /* the runs to start, in id order */
    int n;
    int finished, running, queued;
} cmd_sweep_todo;

/* What SLURM knows about the jobs of a sweep. */
typedef struct {
    int asked;             /* 1: squeue answered; queue holds what it listed */
    char why[512];         /* asked == 0: why SLURM was not asked */
    char history_bad[512]; /* "" or what is wrong with submissions.tsv */
    long long *jobs;       /* the job ids asked about, ascending */
    int n_jobs;
    sweepq_queue queue;
    sweepq_history history;
} cmd_sweep_slurm;

/* ---- cmd_sweep.c ---- */

/* Prints argv on one line, each element quoted so that a POSIX shell reads
 * it back as one word. */
void cmd_sweep_print_argv(FILE *out, char *const *argv);

/* Local time "YYYY-MM-DD HH:MM:SS" of unix seconds `when`. */
void cmd_sweep_format_time(long long when, char *buf, size_t size);

/* Frees a NULL-terminated argv and its strings (NULL is nothing). */
void cmd_sweep_free_argv(char **argv);

/* The path of slurm/sweep.sbatch: in $FSNN_SLURM_DIR, else in the source
 * tree. */
void cmd_sweep_script(char *buf, size_t size);

/* ---- cmd_sweep_slurm.c ---- */

/* The state of every run of t: its files (*st_out), refined with SLURM's
 * queue when it can be asked and no_slurm is 0 (*v_out; s says whether
 * and why not). On success *st_out and *v_out are the caller's (free), as
 * is *s (cmd_sweep_slurm_free). */
int cmd_sweep_views(const char *sweep_dir, const sweep_table *t, int no_slurm, runstate **st_out,
                    sweepq_view **v_out, cmd_sweep_slurm *s);

void cmd_sweep_slurm_free(cmd_sweep_slurm *s);

/* The sbatch command of the sweep directory interface (docs/sweeps.md) for
 * the runs of todo: a NULL-terminated argv the caller frees with
 * cmd_sweep_free_argv. */
int cmd_sweep_sbatch_argv(const sweep_plan *plan, const cmd_sweep_todo *todo, const char *exe,
                          const char *script, char ***argv_out);

/* Submits the runs of todo as one array job and records it in
 * submissions.tsv; exe is the fsnn binary the tasks run. */
int cmd_sweep_submit(const sweep_plan *plan, const cmd_sweep_todo *todo, const char *exe);

/* ---- cmd_sweep_local.c ---- */

/* Runs the runs of todo here, `jobs` at a time, each as `fsnn train` in a
 * child process with its output in its train.log and its state in
 * job.state. SIGINT or SIGTERM stops them with a checkpoint. Returns the
 * command's exit code: CMD_OK when all finished, CMD_FAILED when one
 * failed, CMD_STOPPED when some were stopped or not started. */
int cmd_sweep_local(const sweep_plan *plan, const cmd_sweep_todo *todo, const char *exe, int jobs);

#endif
