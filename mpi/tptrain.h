/* tptrain: the epochs of tensor-parallel training (parallel.model_ranks > 1):
 * trainer_fit's schedule (trainer.h) for the distributed FC net of tpfc.h.
 *
 * Every global batch of train.batch samples is split in contiguous blocks
 * over the data-parallel groups (the ranks of `red`, grid_env.data); all M
 * ranks of a group take the same block. The epoch order, the dropout masks
 * and the learning-rate schedule are trainer_fit's. Each epoch ends with an
 * evaluation split over the groups, the power-iteration estimate of
 * ||W||_2 and its exact value by psgesvd (row.spectral_norm_exact). Hooks
 * receive m = NULL: the caller holds the tpfc. Collective over the world. */
#ifndef FSNN_TPTRAIN_H
#define FSNN_TPTRAIN_H

#include "ckpt.h"
#include "tpfc.h"
#include "trainer.h"

/* Trains t from ts (ts->opt sized t->n_params) to cfg->train_epochs as
 * trainer_fit does, with its return values (TRAINER_STOPPED when a hook
 * asked to stop). */
int tptrain_fit(const fsnn_cfg *cfg, tpfc *t, trainer_state *ts, const trainer_data *train,
                const trainer_data *test, const trainer_hooks *hooks, const reduce_ops *red);

/* Evaluation of t on `data` split over the groups of red: fills test_loss,
 * test_acc, test_fwd_residual, test_samples_per_s. Collective. */
/* The layout of this rank's blocks of F and V and of their optimiser state
 * m1, m2 (m2 NULL: none), t's local arrays, for ckpt_write_sharded; full is
 * the one-process model whose tensor list names and places them. */
void tptrain_ckpt_shard(const tpfc *t, const fsnn_model *full, const float *m1, const float *m2,
                        ckpt_shard *sh);

int tptrain_evaluate(const fsnn_cfg *cfg, tpfc *t, const trainer_data *data, trainer_epoch *row,
                     const reduce_ops *red);

#endif
