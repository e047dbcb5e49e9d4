/* sweep_impl: what the files of the sweep module share and nothing else
 * includes (sweep.h is the interface). sweep.c reads a sweep file into a
 * sweep_parse, sweep_grid.c expands it into runs, sweep_tsv.c writes and
 * reads runs.tsv. */
#ifndef FSNN_SWEEP_IMPL_H
#define FSNN_SWEEP_IMPL_H

#include <stddef.h>

#include "cfg.h"   // defines: fsnn_cfg
#include "sweep.h" // defines: sweep_plan, sweep_table, SWEEP_PATH_MAX

#define SWEEP_WHY_MAX 768
#define SWEEP_KEY_MAX 128

typedef enum { SWEEP_GRID, SWEEP_RANDOM, SWEEP_SET } sweep_kind;
typedef enum { SWEEP_UNIFORM, SWEEP_LOGUNIFORM, SWEEP_INT, SWEEP_CHOICE } sweep_dist;

/* One key of [grid], [random] or [set]. */
typedef struct {
    char key[SWEEP_KEY_MAX]; /* section.key of the config */
    int line;
    sweep_kind kind;
    sweep_dist dist;    /* [random] */
    double lo, hi;      /* uniform, loguniform */
    long long ilo, ihi; /* int */
    int n;              /* values: grid entries, choice items, 1 for [set] */
    char **values;      /* owned */
    const char *label;  /* in run names; points into key */
    char **drawn;       /* [random]: the value of each sample, owned */
} sweep_param;

/* The keys of [sweep] and [slurm]. */
typedef enum {
    SK_BASE,
    SK_SEEDS,
    SK_DIR,
    SK_SAMPLES,
    SK_NAME,
    SK_SEED,
    SK_NTASKS,
    SK_CPUS,
    SK_TIME,
    SK_PARTITION,
    SK_THROTTLE,
    SK_SIGNAL,
    SK_N
} sweep_key_id;

/* A sweep file being read: inih's state, the first error, and what the
 * file has said so far. */
typedef struct {
    const char *file;     /* in messages */
    const char *abs_file; /* absolute, lexically normalised */
    const char *text;
    size_t len, pos;
    int line;     /* the line inih is handling */
    int err_line; /* the first error (0 = none) and its text */
    char err[SWEEP_WHY_MAX];
    sweep_plan *plan;
    sweep_param *params;
    int n_params, cap;
    int key_line[SK_N]; /* where each [sweep]/[slurm] key was set */
    char base[SWEEP_PATH_MAX], dir[SWEEP_PATH_MAX];
    fsnn_cfg scratch; /* checks single values */
} sweep_parse;

/* ---- sweep.c ---- */

/* A copy of s[0..len) with a NUL; NULL when out of memory. */
char *sweep_strndup(const char *s, size_t len);

/* Frees list[0..n) and list (NULL is nothing). */
void sweep_free_list(char **list, int n);

/* Describes byte c for a message without printing it raw. */
void sweep_show_char(unsigned char c, char *buf, size_t size);

/* Reads file `path` (at most max bytes) into *text (the caller's, free);
 * `name` stands for it in messages. */
int sweep_read_file(const char *path, const char *name, size_t max, char **text, size_t *len);

/* ---- sweep_grid.c ---- */

/* Fills p->plan->table with the runs of p (grid points x random samples x
 * seeds, the last grid key moving fastest) and checks each one against
 * base_cfg as `fsnn train` would. */
int sweep_expand(sweep_parse *p, const fsnn_cfg *base_cfg);

/* ---- sweep_tsv.c ---- */

/* Fails if two runs of t share a directory; `hint` ends the message. */
int sweep_check_unique(const char *file, const sweep_table *t, const char *hint);

#endif
