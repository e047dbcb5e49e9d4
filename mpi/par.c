/* par: MPI start-up, collective error agreement, abort. */
#include "par.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "status.h"

int par_init(int *argc, char ***argv, par_env *env) {
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return FAIL("MPI_Init_thread failed");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &env->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &env->size);
    return FSNN_OK;
}

void par_finalize(void) {
    int done = 0;
    MPI_Finalized(&done);
    if (!done) MPI_Finalize();
}

void par_abort(const par_env *env, int code, const char *why) {
    fprintf(stderr, "fsnn: rank %d aborting the job: %s\n", env ? env->rank : -1, why);
    fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, code);
    exit(code);
}

int par_all_ok(int ok) {
    int in = ok ? 1 : 0, out = 0;
    if (MPI_Allreduce(&in, &out, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD) != MPI_SUCCESS) return 0;
    return out;
}

int par_local_ranks(void) {
    MPI_Comm node;
    int n = 1;
    if (MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, 0, MPI_INFO_NULL, &node) !=
        MPI_SUCCESS)
        return 1;
    MPI_Comm_size(node, &n);
    MPI_Comm_free(&node);
    return n > 0 ? n : 1;
}
