/* par: MPI start-up, collective error agreement, abort. */
#include "par.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "status.h"
#include "watchdog.h"

int par_init(int *argc, char ***argv, par_env *env) {
    /* Open MPI's non-blocking allreduce takes a binomial tree for in-place
     * reductions on fewer than 4 ranks: the whole buffer travels up and back
     * down. Rabenseifner's reduce-scatter + allgather moves each half once
     * (3.8 MB of int64 on 2 ranks: 1.24 ms -> 0.71 ms, docs/mpi.md). Exact
     * integer sums do not depend on the algorithm; a user's setting wins. */
    setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "3", 0);
    /* Open MPI's shared-memory transport copies a large message in one
     * process_vm_readv (CMA) by default; on the reference machine its
     * copy-in/copy-out through shared buffers is faster for the gradient's
     * messages (2 ranks: 13,500-13,800 -> 14,000-14,400 training samples/s,
     * docs/mpi.md). Messages carry the same bytes either way; a user's or
     * site's setting wins. */
    setenv("OMPI_MCA_btl_vader_single_copy_mechanism", "none", 0);
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return FAIL("MPI_Init_thread failed");
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &env->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &env->size);
    return FSNN_OK;
}

void par_set_collective_timeout(double seconds) {
    watchdog_set_timeout(seconds);
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
    MPI_Request req;
    if (MPI_Iallreduce(&in, &out, 1, MPI_INT, MPI_LAND, MPI_COMM_WORLD, &req) != MPI_SUCCESS)
        return 0;
    if (watchdog_wait(&req, "agreement (logical and of 1 value)") != 0) return 0;
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

/* The number in environment variable `name`, or 0 when unset or not a number. */
static long par_env_long(const char *name) {
    const char *v = getenv(name);
    if (!v || !*v) return 0;
    char *end = NULL;
    long n = strtol(v, &end, 10);
    return (*end == '\0' && n > 0) ? n : 0;
}

int par_check_launch(const par_env *env) {
    long step = par_env_long("SLURM_STEP_NUM_TASKS");
    /* mpirun inside an allocation sets OMPI_COMM_WORLD_SIZE and may
     * legitimately start fewer ranks than SLURM_NTASKS. */
    long job = getenv("OMPI_COMM_WORLD_SIZE") ? 0 : par_env_long("SLURM_NTASKS");
    long want = step ? step : job;
    if (want && want != env->size)
        return FAIL("the launcher promised %ld ranks (%s) but MPI started %d: start fsnn with "
                    "srun or mpirun -np %ld",
                    want, step ? "SLURM_STEP_NUM_TASKS" : "SLURM_NTASKS", env->size, want);
    return FSNN_OK;
}

int par_launcher_rank(void) {
    long r = par_env_long("OMPI_COMM_WORLD_RANK");
    if (!r) r = par_env_long("PMIX_RANK");
    if (!r) r = par_env_long("SLURM_PROCID");
    return (int)r;
}
