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

#include "model.h"

typedef struct pipe_env pipe_env;

/* The transport over `model` (borrowed; it must outlive the pipe) for m's
 * layers: plans the stages, fills the mlnet_pipe and gives it to m
 * (model_set_pipeline). Fails with a message when the group has more
 * ranks than m has layers or m has one layer. Collective over `model`. */
int pipe_create(pipe_env **out, MPI_Comm model, fsnn_model *m);
void pipe_destroy(pipe_env **p);

/* The assignment as text, e.g. "stage 0: layers 1-3 (61%), stage 1: layers
 * 4-5 (39%)" with each stage's share of the estimated cost. */
void pipe_describe(const pipe_env *p, char *buf, size_t size);

/* The sums over the group of what its ranks sent so far, and of the seconds
 * they spent in the transport's calls: sec[0] posting sends (the copy and
 * MPI_Isend), sec[1] receiving, waiting for sends and broadcasting, which
 * includes the wait for the stage that produces the message. Collective. */
int pipe_totals(const pipe_env *p, mlnet_traffic *sum, double sec[2]);

#endif
