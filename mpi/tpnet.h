/* tpnet: the net interface (src/net.h) of the tensor-parallel FC net
 * (parallel.model_ranks = M > 1 on "N (FN)"): tpfc.h's distributed net
 * over the M ranks of a model group, trained by src/trainer.h like every
 * other net.
 *
 * All M ranks of a group take the same rows of a batch, which the trainer
 * splits in contiguous blocks of samples over the groups (net.micro_shards
 * is 0: the sums are float sums, parallel.deterministic does not apply).
 * Each epoch's row has ||W||_2 by power iteration and exactly by psgesvd.
 * Checkpoints hold whole tensors in the one-process model's layout: the
 * ranks of group 0 write their blocks of F and V (and of their optimiser
 * state) into the file together (net_saved.shard, a ckptshard), world rank
 * 0 the rest; a resume reads the whole model and each rank keeps its
 * blocks, so any grid resumes any other's file. Only world rank 0 ever
 * holds the whole model. */
#ifndef FSNN_TPNET_H
#define FSNN_TPNET_H

#include "ckptshard.h"
#include "grid.h"
#include "net.h"
#include "tpfc.h"

/* The net for inputs of c x h x w values and n_out classes over the
 * group of `grid` (borrowed; it must outlive the net), F and V in blocks of
 * TPFC_BLOCK, batches of up to bmax rows. Collective over the group. */
int tpnet_create(fsnn_net **n, const fsnn_cfg *cfg, const grid_env *grid, int c, int h, int w,
                 int n_out, int bmax);

/* The layout of t's blocks of F and V and of their optimiser state m1, m2
 * (m2 NULL: none; t's local arrays) in a checkpoint, whose names and
 * places the whole model `full` gives (ckpt.h). */
void tpnet_shard_layout(const tpfc *t, const fsnn_model *full, const float *m1, const float *m2,
                        ckptshard *sh);

#endif
