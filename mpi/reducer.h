/* reducer: the reduce_ops of src/reduce.h over an MPI communicator. */
#ifndef FSNN_REDUCER_H
#define FSNN_REDUCER_H

#include "reduce.h"

/* Fills *ops with all-reduces over MPI_COMM_WORLD (the data-parallel group of
 * this version) and this process's rank and size. */
int reducer_world(reduce_ops *ops);

#endif
