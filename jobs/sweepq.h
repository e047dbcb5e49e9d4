/* sweepq: what SLURM knows about the runs of a sweep (docs/sweeps.md).
 *
 *   SWEEP_DIR/submissions.tsv  one line per `fsnn sweep --submit`: the array
 *                              job id sbatch printed, the unix time, and the
 *                              run ids (= array task ids) it covers, e.g.
 *                              "job\ttime\truns" then "4242\t1764403200\t0-3,5"
 *   squeue's output            `squeue --noheader --array --format=%i|%T|%r`:
 *                              "<job id>|<STATE>|<reason>" per line
 *
 * From both, sweepq_refine turns the state a run's files give (jobs/runstate)
 * into what is true on the cluster: a run whose job.state says running but
 * whose job SLURM no longer lists is lost; a run whose array task waits in
 * the queue is queued. Nothing here starts processes: the caller runs squeue
 * and hands its output to sweepq_queue_parse. */
#ifndef FSNN_SWEEPQ_H
#define FSNN_SWEEPQ_H

#include <stddef.h>

#include "runstate.h" // defines: runstate, runstate_kind

#define SWEEPQ_FILE "submissions.tsv"

/* ---- run id lists: "0-3,5,7-9" ---- */

/* Formats ids (ascending, no repeats) as ranges; *text is the caller's
 * (free). */
int sweepq_ids_format(const int *ids, int n, char **text);

/* Parses a list written by sweepq_ids_format strictly: ascending ids below
 * n_runs, ranges a-b with a < b, no repeats, no empty item. On success the
 * caller owns *ids (free). `name` stands for the text in messages. */
int sweepq_ids_parse(const char *name, const char *text, int n_runs, int **ids, int *n);

/* ---- submissions.tsv ---- */

typedef struct {
    long long job;  /* the array job id */
    long long when; /* unix seconds of the submission */
    int *ids;       /* the runs it covers, ascending */
    int n_ids;
} sweepq_submission;

/* The submissions of a sweep, oldest first. Owns its arrays. */
typedef struct {
    sweepq_submission *subs;
    int n;
} sweepq_history;

/* Parses submissions.tsv text strictly ("NAME:LINE: ..." on any defect):
 * the header, then lines "<job><TAB><unix seconds><TAB><run ids>" with run
 * ids below n_runs, LF line ends. On success the caller owns *h. */
int sweepq_history_parse(const char *name, const char *text, size_t len, int n_runs,
                         sweepq_history *h);

/* Reads SWEEP_DIR/submissions.tsv; a missing file is an empty history. */
int sweepq_history_read(const char *sweep_dir, int n_runs, sweepq_history *h);

/* Adds the line of one submission to SWEEP_DIR/submissions.tsv: the old
 * content and the new line are written to a new file that replaces the old
 * one atomically (io/fsutil), so a crash leaves either the old or the new
 * list. */
int sweepq_history_append(const char *sweep_dir, long long job, long long when, const int *ids,
                          int n);

void sweepq_history_free(sweepq_history *h);

/* ---- sbatch --parsable ---- */

/* The job id of sbatch --parsable's output: "<id>" or "<id>;<cluster>" and
 * a line end; anything else is refused with the text in the message. */
int sweepq_parse_sbatch(const char *text, size_t len, long long *job);

/* ---- squeue ---- */

typedef enum {
    SWEEPQ_WAITING, /* PENDING, REQUEUED, REQUEUE_HOLD, ...: not started yet */
    SWEEPQ_ACTIVE,  /* RUNNING, COMPLETING, SUSPENDED, ..., or a state word not known here */
    SWEEPQ_ENDED    /* COMPLETED, CANCELLED, FAILED, TIMEOUT, NODE_FAIL, ...: out of the queue */
} sweepq_class;

/* One job, or a range of tasks of an array job, as squeue lists it. */
typedef struct {
    long long job; /* the array job id, or the job id of a job outside an array */
    int lo, hi;    /* its array task ids lo..hi; -1, -1 outside an array */
    sweepq_class cls;
    char state[24];   /* SLURM's word, e.g. PENDING */
    char reason[128]; /* e.g. Priority, Resources; "" for None */
} sweepq_entry;

typedef struct {
    sweepq_entry *e;
    int n;
    int ignored; /* lines that were not understood (each warned about) */
} sweepq_queue;

/* Parses squeue's output, lines "<id>|<STATE>|<reason>" with <id> one of
 * 123, 123_4, 123_[5-7%2], 123_[1,3,5-7]. A line that is not of this form
 * (a heterogeneous job 123+0, a step, control bytes, ...) is ignored with a
 * warning and counted in q->ignored; only running out of memory fails. The
 * caller owns *q (sweepq_queue_free). */
int sweepq_queue_parse(const char *text, size_t len, sweepq_queue *q);

void sweepq_queue_free(sweepq_queue *q);

/* A job id as job.state holds it: "123_4" (array job 123, task 4) or "123"
 * (task -1). Returns 0 for anything else ("local", ...). */
int sweepq_job_id(const char *s, long long *job, int *task);

/* ---- the state of a run on the cluster ---- */

typedef struct {
    runstate_kind kind; /* the refined state */
    int start;          /* 1: a submission should start it (it is in no job SLURM lists) */
    char note[320];     /* what SLURM adds to the detail; "" for nothing */
    int replaces;       /* 1: note replaces the detail of the files; 0: it is appended */
} sweepq_view;

/* Refines the state `st` of run `id` (read from its files) with the queue
 * `q` and the history `h` (both may be NULL: SLURM was not asked; then the
 * view is the files' state). Rules (docs/sweeps.md):
 *   finished stays finished;
 *   the job of job.state or an array task of a recorded submission listed
 *     as waiting -> queued; listed as running -> running;
 *   running, its SLURM job not listed -> lost;
 *   requeued, its job not listed -> requeued, with a note to resubmit;
 *   pending in a recorded submission no longer listed -> pending, noted.
 * start is 1 for pending, requeued, failed, unknown and lost. */
void sweepq_refine(const runstate *st, int id, const sweepq_history *h, const sweepq_queue *q,
                   sweepq_view *v);

#endif
