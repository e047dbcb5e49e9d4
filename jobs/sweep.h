/* sweep: a sweep file (INI) expanded into the runs it stands for, and the
 * runs.tsv table that lists them (docs/sweeps.md; the sweep directory
 * interface shared with slurm/sweep.sbatch and `fsnn report`).
 *
 * A sweep file has [sweep] (base config, seeds, dir, name, samples, seed),
 * [grid] (section.key = v1, v2, ... : a cross product), [random]
 * (section.key = uniform(lo, hi) | loguniform(lo, hi) | int(lo, hi) |
 * choice(a, b, ...) : `samples` points drawn from the counter RNG, crossed
 * with the grid), [set] (fixed overrides) and [slurm] (job options). Every
 * run is (grid point, random point, seed); its arguments are checked through
 * io/config exactly as `fsnn train BASE ARGS...` would read them, before
 * anything is written. Errors name FILE:LINE and what is wrong.
 *
 * Nothing here starts processes or writes files except sweep_tsv_write. */
#ifndef FSNN_SWEEP_H
#define FSNN_SWEEP_H

#include <stddef.h>
#include <stdint.h>

#define SWEEP_PATH_MAX 4096
#define SWEEP_NAME_MAX 64 /* [sweep] name, [A-Za-z0-9._+-] */
#define SWEEP_RUNS_MAX 100000

/* One run: `fsnn train config args[0] ... args[n_args-1]`. */
typedef struct {
    char *dir;    /* absolute run directory, SWEEP_DIR/runs/<run name> */
    char *config; /* absolute path of the base config */
    int n_args;
    char **args; /* "section.key=value", each one argv element; include
                    run.seed=S and run.dir=<dir> */
} sweep_run;

/* The runs of a sweep; run i has id i. Owns all strings. */
typedef struct {
    int n;
    sweep_run *runs;
} sweep_table;

/* [slurm]: what `fsnn sweep --submit` passes to sbatch. */
typedef struct {
    int ntasks;         /* ranks per run (default 1) */
    int cpus_per_task;  /* 0 = not given */
    int throttle;       /* most array tasks at once; 0 = no limit */
    int signal_seconds; /* SIGUSR1 this long before the time limit (default 300) */
    char time[32];      /* SLURM time limit, "" = not given */
    char partition[64]; /* "" = not given */
} sweep_slurm;

/* A sweep file, expanded. */
typedef struct {
    char name[SWEEP_NAME_MAX];
    char file[SWEEP_PATH_MAX]; /* the sweep file as given, for messages */
    char dir[SWEEP_PATH_MAX];  /* absolute sweep directory */
    char base[SWEEP_PATH_MAX]; /* absolute base config */
    int seeds;                 /* runs use run.seed = 1..seeds */
    int samples;               /* random points (0 without [random]) */
    int points;                /* grid points x random points */
    uint64_t seed;             /* seed of the random points */
    sweep_slurm slurm;
    sweep_table table;
    char *text; /* the file's bytes (for SWEEP_DIR/sweep.ini) */
    size_t text_len;
} sweep_plan;

/* Reads sweep file `path` and expands it. `cwd` is the absolute current
 * directory: a relative `path` and `dir` (default: the file's name without
 * .ini) are taken in it, a relative `base` in the sweep file's folder. Paths
 * are made absolute without resolving symbolic links. Every run's arguments are applied to
 * the base config with config_override and config_resolve, so a run that
 * `fsnn train` would refuse is refused here. On success the caller owns
 * *plan (sweep_plan_free); on failure *plan holds nothing to free. */
int sweep_load(const char *path, const char *cwd, sweep_plan *plan);

void sweep_plan_free(sweep_plan *plan);

/* runs.tsv as text: the header "id\tdir\tconfig\targs", then one line per
 * run. Fails if a field is empty or holds a byte other than printable ASCII.
 * *text is the caller's (free). */
int sweep_tsv_format(const sweep_table *t, char **text, size_t *len);

/* Writes runs.tsv atomically (io/fsutil). */
int sweep_tsv_write(const char *path, const sweep_table *t);

/* Parses runs.tsv text strictly: the exact header, ids 0..n-1 in order,
 * absolute dir and config, args of the form section.key=value with exactly
 * one run.seed and one run.dir equal to the dir column, no empty field, no
 * control or non-ASCII byte, LF line ends, a final LF. `name` stands for the
 * file in messages ("NAME:LINE: ..."). On success the caller owns *t
 * (sweep_table_free). */
int sweep_tsv_parse(const char *name, const char *text, size_t len, sweep_table *t);

/* Reads and parses the file `path` (at most 64 MiB). */
int sweep_tsv_read(const char *path, sweep_table *t);

void sweep_table_free(sweep_table *t);

/* The run's name: the last component of its dir. */
const char *sweep_run_name(const sweep_run *r);

#endif
