/* runstate: the state of one run of a sweep, read from its run directory
 * (the sweep directory interface, docs/sweeps.md):
 *   job.state   "<state> <unix seconds> <job id or local> <exit code or ->",
 *               one line written atomically by the runner (slurm/sweep.sbatch
 *               or `fsnn sweep --local`); state is running, done, failed or
 *               requeued
 *   metrics.csv and config.ini, written by `fsnn train`: a run whose last
 *               row reached train.epochs is finished whatever job.state says
 *   train.log   the runner's log of `fsnn train`; its last line starting
 *               with "error" says why a run failed. */
#ifndef FSNN_RUNSTATE_H
#define FSNN_RUNSTATE_H

#include <stddef.h>

#define RUNSTATE_FILE "job.state"
#define RUNSTATE_LOG "train.log"

typedef enum {
    RUNSTATE_PENDING,  /* no job.state: never started */
    RUNSTATE_RUNNING,  /* job.state "running" */
    RUNSTATE_REQUEUED, /* "requeued": stopped with a checkpoint (exit 3), resumable */
    RUNSTATE_FAILED,   /* "failed" */
    RUNSTATE_FINISHED, /* "done", or metrics.csv shows every epoch */
    RUNSTATE_UNKNOWN,  /* job.state unreadable; why says what is wrong */
    /* Only from SLURM's queue (jobs/sweepq), never from the files alone: */
    RUNSTATE_QUEUED, /* its array task waits in SLURM's queue */
    RUNSTATE_LOST    /* job.state says running, but SLURM no longer knows its job */
} runstate_kind;

#define RUNSTATE_KINDS (RUNSTATE_LOST + 1)

typedef struct {
    runstate_kind kind;
    int has_file;    /* job.state present and valid */
    long long when;  /* its unix seconds */
    char job[64];    /* its job id, or "local" */
    int exit_code;   /* its exit code; -1 for "-" */
    int epochs_done; /* last epoch in metrics.csv; -1 if unknown */
    int epochs;      /* train.epochs of the run's config.ini; -1 if unknown */
    double test_acc; /* test accuracy of the last row; NAN if unknown */
    char why[256];   /* RUNSTATE_UNKNOWN: what is wrong with job.state */
} runstate;

/* "pending", "running", "requeued", "failed", "finished", "unknown",
 * "queued", "lost". */
const char *runstate_name(runstate_kind kind);

/* The state a runner records for an exit code of `fsnn train`: 0 finished
 * ("done"), 3 requeued (stopped with a checkpoint), anything else failed. */
runstate_kind runstate_of_exit(int code);

/* Replaces RUN_DIR/job.state atomically with "<word> <when> <job> <code>"
 * (word: running, done, requeued or failed for kind RUNNING, FINISHED,
 * REQUEUED, FAILED; code -1 is written "-"). */
int runstate_write(const char *run_dir, runstate_kind kind, long long when, const char *job,
                   int exit_code);

/* Parses job.state text strictly into st (kind, when, job, exit_code). */
int runstate_parse(const char *name, const char *text, size_t len, runstate *st);

/* The state of the run in run_dir from all of the files above. Never fails:
 * a damaged job.state gives RUNSTATE_UNKNOWN with the reason in st->why;
 * unreadable metrics leave the epoch fields unknown. */
void runstate_get(const char *run_dir, runstate *st);

/* The last line of RUN_DIR/train.log that starts with "error", control
 * characters replaced by '?', cut to size - 1 bytes. Returns 1 if found. */
int runstate_last_error(const char *run_dir, char *line, size_t size);

#endif
