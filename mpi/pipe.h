/* pipe: the layer pipeline's transport over a model group (grid_env.model):
 * the mlnet_pipe callbacks of src/mlnet.h with MPI point-to-point messages
 * and broadcasts, and the stage assignment of the model's layers.
 *
 * With parallel.model_ranks = M > 1 and a multi-layer net, rank s of the
 * group runs stage s (pipeplan.h over mlnet_costs). Sends are non-blocking
 * (MPI_Isend from a copy, so the caller's buffer is free at once); a few
 * copies are in flight at most, the oldest waited for before its slot is
 * reused. Every wait goes through the watchdog (parallel.collective_timeout),
 * so a stage that died or hangs ends the job, and its seconds count in the
 * run's t_comm. */
#ifndef FSNN_PIPE_H
#define FSNN_PIPE_H

#include <mpi.h>

#include "net.h"

/* The net (src/net.h) of the multi-layer model m (taken: net_destroy
 * frees it) run as stage `rank` of a layer pipeline over `model` (borrowed;
 * it must outlive the net): the model net (net_model_create) with this
 * transport, planned over the stages by the layers' costs. Its describe
 * gives the stages, its finish logs the exchange of group 0. Fails with a
 * message when m has one layer or fewer layers than the group has ranks.
 * Collective over `model`. */
int pipe_net_create(fsnn_net **n, MPI_Comm model, fsnn_model *m, const fsnn_cfg *cfg, int bmax);

#endif
