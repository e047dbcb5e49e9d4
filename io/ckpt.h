/* ckpt: checkpoints, the HDF5 files a run resumes from exactly.
 *
 * RUN_DIR/checkpoint.h5 (format version 3) is an HDF5 file with a user block
 * of CKPT_HEADER_SIZE bytes, so h5dump and h5py read it as any HDF5 file.
 * The user block holds the fsnn header, ASCII text padded with NUL bytes:
 *   fsnn checkpoint\n
 *   format_version 3\n
 *   length <bytes of the whole file, decimal>\n
 *   sha256 <64 lowercase hex digits: SHA-256 of every byte after the user block>\n
 * The HDF5 part holds (readable with h5dump or h5py alone):
 *   /params/<tensor>   float32, the trainable tensors (model.h names)
 *   /state/bn_mean, bn_var [channels: n for FC], sn_u, sn_v [n], sigma [1]   float32
 *   /optim/m1 [n_params] (momentum or Adam's first moment), /optim/m2 (Adam)
 *   /run/history [epochs x METRICS_N_COLS] float64: the rows of metrics.csv;
 *            attribute "columns" names them, "units" gives their units
 *   /run/partial [TRAINER_PARTIAL_N] float64: the statistics of the unfinished epoch
 *   attributes on /: format "fsnn-checkpoint", format_version, n_in,
 *   n_hidden, n_out, n_params, epoch (finished), step (batches of the next
 *   epoch done), iter, optim_step, bad_steps, bad_run, optimizer, world_size,
 *   config (the resolved INI text) and checksum_sha256 over all of the above
 *   tensors, rows and counters.
 *
 * Reading checks the header (magic, version, length, digest) on the whole
 * file held in memory before HDF5 sees a byte of it, then hands HDF5 that
 * same verified image: a damaged or hostile file is refused before HDF5,
 * which can crash on crafted input, parses it. Then every attribute and
 * dataset is checked for name, type, shape and layout before it is read,
 * and the in-file checksum last.
 *
 * Writing is atomic: checkpoint.h5.tmp is written, its header filled in and
 * fsynced, the current file becomes checkpoint.prev.h5, the new one is
 * renamed in and the folder fsynced. A crash at any moment leaves at least
 * one good file. */
#ifndef FSNN_CKPT_H
#define FSNN_CKPT_H

#include <stddef.h>

#include "metrics.h"
#include "model.h"
#include "trainer.h"

/* 2: a whole-file header in the HDF5 user block; the history gained the
 * columns t_comm and restarts. 3: the history gained spectral_norm_exact. */
#define CKPT_VERSION 3
/* The oldest format still read: version 2 lacks the history column
 * spectral_norm_exact, which a resumed run fills with NaN. */
#define CKPT_VERSION_OLDEST 2
#define CKPT_HEADER_SIZE 512 /* the HDF5 user block holding the fsnn header */
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

/* ckpt_write in steps, for writers that fill some tensors of the file
 * themselves in place (mpi/ckptshard.h: the ranks of a tensor-parallel run,
 * none of which holds a whole tensor): ckpt_begin writes the temporary file
 * without those tensors' data, the caller writes their data into it (the
 * file ckpt_temp_path names; the datasets as described above, contiguous
 * and already allocated), and ckpt_commit sums, seals and renames it as
 * ckpt_write does. The file reads back as ckpt_write's would. */

/* The temporary file that ckpt_write and ckpt_begin write in dir, as
 * path[size]. */
int ckpt_temp_path(const char *dir, char *path, size_t size);

/* Writes dir's temporary file with everything of d but the data of the
 * tensors of /params named holes[0 .. n_holes-1] and their parts of
 * /optim/m1 and m2 (at the tensors' offsets in d->m->params): those parts
 * of d->m->params and of d->ts->opt's arrays are never read, so they may be
 * untouched memory. checksum_sha256 holds a placeholder of the digest's
 * length until ckpt_commit. On failure the temporary file may remain;
 * ckpt_commit with the failure removes it. */
int ckpt_begin(const char *dir, const ckpt_data *d, const char *const *holes, int n_holes);

/* Ends a write ckpt_begin started, once the holes are filled (rc == 0):
 * checksum_sha256 from the tensors as the file holds them, read back in
 * slices, and the other parts of d; then the header, fsync and renames of
 * ckpt_write. With rc != 0, the failure of an earlier step, removes the
 * temporary file and returns rc. d as given to ckpt_begin. */
int ckpt_commit(int rc, const char *dir, const ckpt_data *d);

/* Reads and validates `path` into d (d->m and d->ts->opt prepared by the
 * caller): the header and whole-file digest first, then every dataset's
 * name, type, shape and layout before it is read, then the checksum. The
 * file is held in memory while it is read. On failure d's contents are
 * unspecified (ckpt_data_free still frees them). */
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
 * model and optimiser of the right shape before ckpt_read. Verifies the
 * header and digest as ckpt_read does, and refuses sizes whose weights
 * could not fit in the file, so a hostile file cannot make the caller
 * allocate much more than the file's size. */
int ckpt_sizes(const char *path, int *n_in, int *n_hidden, int *n_out, cfg_optim *optimizer);

/* The resolved configuration text stored in a checkpoint (*text allocated,
 * the caller frees it) and its n_params attribute, which must be 1..the
 * floats the file can hold: a conv net's model is made from its
 * configuration, and the caller compares the net's size with n_params
 * before creating it. Verifies the header and digest as ckpt_read does. */
int ckpt_config(const char *path, char **text, long *n_params);

/* Fills in the header of `path`, an HDF5 file created with a user block of
 * CKPT_HEADER_SIZE bytes: the file's length and the SHA-256 of all bytes
 * after the user block (ckpthead.h). Does not fsync (ckpt_write does).
 * ckpt_write seals its temporary file the same way; tests and the fuzz
 * harness seal files of their own making to reach the checks behind the
 * header. */
int ckpt_seal(const char *path);

/* SHA-256 of all trainable tensors in the model's canonical order (model.h:
 * input.weight, input.bias, input.bn.weight, input.bn.bias, feedback.V,
 * feedback.g, readout.weight, readout.bias), each as little-endian float32
 * in row-major order, as 64 hex digits and a NUL. */
int ckpt_weights_sha256(const fsnn_model *m, char hex[65]);

#endif
