/* ckpt: checkpoints, the HDF5 files a run resumes from exactly.
 *
 * RUN_DIR/checkpoint.h5 holds (readable with h5dump or h5py alone):
 *   /params/<tensor>   float32, the trainable tensors (model.h names)
 *   /state/bn_mean, bn_var, sn_u, sn_v [n], sigma [1]   float32
 *   /optim/m1 [n_params] (momentum or Adam's first moment), /optim/m2 (Adam)
 *   /history [epochs x METRICS_N_COLS (26)] float64: the rows of metrics.csv; attribute
 *            "columns" names them, "units" gives their units
 *   /partial [12] float64: the statistics of the unfinished epoch
 *   attributes on /: format "fsnn-checkpoint", format_version, n_in,
 *   n_hidden, n_out, n_params, epoch (finished), step (batches of the next
 *   epoch done), iter, optim_step, bad_steps, bad_run, optimizer, world_size,
 *   config (the resolved INI text) and checksum_sha256 over all of the above
 *   tensors, rows and counters.
 *
 * Writing is atomic: checkpoint.h5.tmp is written, flushed and fsynced, the
 * current file becomes checkpoint.prev.h5, the new one is renamed in and the
 * folder fsynced. A crash at any moment leaves at least one good file. */
#ifndef FSNN_CKPT_H
#define FSNN_CKPT_H

#include <stddef.h>

#include "metrics.h"
#include "model.h"
#include "trainer.h"

/* 2: the history gained the column restarts. */
#define CKPT_VERSION 2
#define CKPT_FILE "checkpoint.h5"
#define CKPT_PREV "checkpoint.prev.h5"

typedef struct {
    fsnn_model *m;     /* borrowed; its sizes must match the file's */
    trainer_state *ts; /* borrowed; ts->opt must exist */
    double *history;   /* [history_rows x METRICS_N_COLS]; ckpt_read allocates it */
    int history_rows;
    double partial[TRAINER_PARTIAL_N]; /* the unfinished epoch's statistics, all ranks */
    char *config_text;                 /* resolved config; ckpt_read allocates it */
    int world_size;                    /* ranks that wrote the file */
} ckpt_data;

/* Writes dir/checkpoint.h5 as described above. */
int ckpt_write(const char *dir, const ckpt_data *d);

/* Reads and validates `path` into d (d->m and d->ts->opt prepared by the
 * caller): every dataset's name, type and shape is checked before it is
 * read, then the checksum. On failure d's contents are unspecified. */
int ckpt_read(const char *path, ckpt_data *d);

/* Loads the newest good checkpoint of `dir`: checkpoint.h5, else
 * checkpoint.prev.h5 (saying why the first was skipped); writes the file used
 * into used[size]. */
int ckpt_load_latest(const char *dir, ckpt_data *d, char *used, size_t size);

/* 1 if dir holds checkpoint.h5 or checkpoint.prev.h5. */
int ckpt_present(const char *dir);

/* Frees what ckpt_read allocated (history, config text). */
void ckpt_data_free(ckpt_data *d);

/* The sizes and optimiser stored in a checkpoint's attributes, to create a
 * model and optimiser of the right shape before ckpt_read. */
int ckpt_sizes(const char *path, int *n_in, int *n_hidden, int *n_out, cfg_optim *optimizer);

/* SHA-256 of all trainable tensors in the model's canonical order (model.h:
 * input.weight, input.bias, input.bn.weight, input.bn.bias, feedback.V,
 * feedback.g, readout.weight, readout.bias), each as little-endian float32
 * in row-major order, as 64 hex digits and a NUL. */
int ckpt_weights_sha256(const fsnn_model *m, char hex[65]);

#endif
