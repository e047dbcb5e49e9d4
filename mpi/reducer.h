/* reducer: the reduce_ops of src/reduce.h over an MPI communicator. */
#ifndef FSNN_REDUCER_H
#define FSNN_REDUCER_H

#include <mpi.h>

#include "reduce.h"

/* Fills *ops with all-reduces over MPI_COMM_WORLD (the data-parallel group
 * when parallel.model_ranks = 1) and this process's rank and size. */
int reducer_world(reduce_ops *ops);

/* The same over `comm` (borrowed; it must outlive the reducer): with
 * parallel.model_ranks > 1 the data-parallel group is grid_env.data. The
 * process has one reducer at a time: a later call replaces the group. */
int reducer_comm(reduce_ops *ops, MPI_Comm comm);

#endif
