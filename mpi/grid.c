/* grid: MPI_Comm_split into model groups and data-parallel rows. */
#include "grid.h"

#include <string.h>

#include "status.h"

int grid_check(int world_size, int model_ranks) {
    if (model_ranks < 1) return FAIL("parallel.model_ranks = %d: must be at least 1", model_ranks);
    if (world_size % model_ranks != 0)
        return FAIL("parallel.model_ranks = %d does not divide the job's %d ranks: the ranks form "
                    "groups of model_ranks ranks each (start a multiple of %d ranks, or change "
                    "parallel.model_ranks)",
                    model_ranks, world_size, model_ranks);
    return FSNN_OK;
}

int grid_create(grid_env *g, int model_ranks) {
    memset(g, 0, sizeof *g);
    g->model = MPI_COMM_NULL;
    g->data = MPI_COMM_NULL;
    if (MPI_Comm_rank(MPI_COMM_WORLD, &g->world_rank) != MPI_SUCCESS ||
        MPI_Comm_size(MPI_COMM_WORLD, &g->world_size) != MPI_SUCCESS)
        return FAIL("MPI_COMM_WORLD: cannot read rank and size");
    CHECK(grid_check(g->world_size, model_ranks));
    g->model_ranks = model_ranks;
    g->groups = g->world_size / model_ranks;
    g->group = g->world_rank / model_ranks;
    g->model_rank = g->world_rank % model_ranks;
    if (model_ranks == 1) { /* data parallelism as without a grid */
        g->model = MPI_COMM_SELF;
        g->data = MPI_COMM_WORLD;
        return FSNN_OK;
    }
    if (MPI_Comm_split(MPI_COMM_WORLD, g->group, g->model_rank, &g->model) != MPI_SUCCESS ||
        MPI_Comm_split(MPI_COMM_WORLD, g->model_rank, g->group, &g->data) != MPI_SUCCESS)
        return FAIL("MPI_Comm_split into %d groups of %d model ranks failed", g->groups,
                    model_ranks);
    MPI_Comm_set_errhandler(g->model, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(g->data, MPI_ERRORS_RETURN);
    return FSNN_OK;
}

void grid_destroy(grid_env *g) {
    if (g->model_ranks > 1) {
        if (g->model != MPI_COMM_NULL) MPI_Comm_free(&g->model);
        if (g->data != MPI_COMM_NULL) MPI_Comm_free(&g->data);
    }
    g->model = MPI_COMM_NULL;
    g->data = MPI_COMM_NULL;
}
