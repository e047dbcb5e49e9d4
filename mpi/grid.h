/* grid: the process grid of model parallelism (parallel.model_ranks = M).
 *
 * The N ranks of the job form N / M data-parallel groups of M model ranks:
 * ranks g M .. g M + M - 1 are group g. Within a group the ranks share one
 * model (its large tensors distributed over them, tpfc.h) and see the same
 * samples; across groups the ranks with the same place in their group sum
 * their gradients (the data-parallel all-reduce, reducer_comm over `data`).
 * With M = 1 every rank is its own group and `data` is MPI_COMM_WORLD. */
#ifndef FSNN_GRID_H
#define FSNN_GRID_H

#include <mpi.h>

typedef struct {
    int world_rank, world_size;
    int model_ranks; /* M */
    int groups;      /* N / M */
    int group;       /* this rank's group, world_rank / M */
    int model_rank;  /* its place in the group, world_rank % M */
    MPI_Comm model;  /* the M ranks of this group (owned; MPI_COMM_SELF when M = 1) */
    MPI_Comm data;   /* the N / M ranks with this model_rank (owned; MPI_COMM_WORLD when M = 1) */
} grid_env;

/* Checks that a world of `world_size` ranks splits into groups of
 * model_ranks: fails with a message naming both values when it does not. */
int grid_check(int world_size, int model_ranks);

/* Splits MPI_COMM_WORLD as above (grid_check first). Collective. */
int grid_create(grid_env *g, int model_ranks);

/* Frees the communicators grid_create made. Collective. */
void grid_destroy(grid_env *g);

#endif
