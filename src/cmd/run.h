/* run: what the commands that work on a run share -- reading its
 * configuration, building its net for any process grid, loading its data
 * and reading and writing its checkpoints through the net interface
 * (src/net.h). `fsnn train`, `fsnn eval` (and its residual trace) and
 * `fsnn inspect` are outlines over these functions. */
#ifndef FSNN_RUN_H
#define FSNN_RUN_H

#include <stddef.h>

#include "ckpt.h"
#include "dataset.h"
#include "grid.h"
#include "net.h"
#include "trainer.h"

/* A configuration: defaults, the file at `path` (stored: a run's or a
 * checkpoint's resolved config.ini), the overrides argv[0..argc), then
 * resolved. */
int run_read_config(fsnn_cfg *cfg, const char *path, int stored, int argc, char **argv);

/* The resolved configuration stored in the checkpoint `path`; a
 * checkpoint written before model.fidelity existed was trained with fsnn's
 * own variant. */
int run_ckpt_config(const char *path, fsnn_cfg *cfg);

/* Threads per process (run.threads, or the node's cores shared among its
 * ranks) and deterministic BLAS from initialisation on. */
void run_setup_blas(const fsnn_cfg *cfg);

/* The shape of a net's input and output. */
typedef struct {
    int c, h, w;
    int classes;
    int events; /* the data are event frames */
} run_shape;

/* The net of cfg for inputs and classes of `shape` on `grid` (NULL: one
 * process without MPI): the model net (one layer or several), or with
 * parallel.model_ranks > 1 the tensor-parallel FC net or a multi-layer
 * net's layer pipeline over the grid's model group; and an optimiser of
 * the net's (local) size in *opt. Collective over the grid. */
int run_net(fsnn_net **net, optim **opt, const fsnn_cfg *cfg, const grid_env *grid,
            const run_shape *shape);

/* A loaded run: the configuration, its data and net, and where training
 * stands (ts.opt is the net's optimiser). */
typedef struct {
    fsnn_cfg cfg;
    dataset data;
    dataset_events ev[2];
    trainer_data train, test;
    run_shape shape;
    fsnn_net *net;
    trainer_state ts;
} run_ctx;

/* Loads the data set of r->cfg (train_limit training samples at most: 1
 * when only the test set is needed) and builds the net on `grid`. Logs
 * what was loaded when `say`. Collective over the grid. */
int run_open(run_ctx *r, const grid_env *grid, long train_limit, int say);
void run_close(run_ctx *r);

/* Reads the newest good checkpoint of the run directory `dir` (or, with
 * dir a file, that file) into the net and ts: the net's whole model (net.h)
 * is read, then each rank takes its part. d receives the history and the
 * stored configuration (freed with ckpt_data_free); used the file read.
 * Collective. */
int run_ckpt_read(fsnn_net *net, trainer_state *ts, const char *dir, ckpt_data *d, char *used,
                  size_t size);

/* Writes the checkpoint of the net and ts into dir: d carries the history,
 * the configuration text, the world size and the epoch's partial
 * statistics (d->m and d->ts are set here, for the call). `writer`: this
 * is the rank that writes files (world rank 0). A net with distributed
 * tensors writes in shards. Every rank returns the same status. Collective
 * over the world. */
int run_ckpt_write(fsnn_net *net, const trainer_state *ts, const char *dir, ckpt_data *d,
                   int writer);

/* A failure on any rank stops every rank: the others would otherwise wait
 * in the next collective for ever. Collective over the world. */
int run_agree(int rc);

#endif
