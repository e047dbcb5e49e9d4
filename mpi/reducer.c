/* reducer: MPI_Allreduce behind reduce_ops. */
#include "reducer.h"

#include <mpi.h>

#include "status.h"

static int reducer_call(int rc, const char *what, size_t count) {
    if (rc == MPI_SUCCESS) return FSNN_OK;
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return FAIL("MPI_Allreduce (%s of %zu values) failed: %s", what, count, msg);
}

static int reducer_sum_i64(void *ctx, int64_t *buf, size_t count) {
    (void)ctx;
    return reducer_call(
        MPI_Allreduce(MPI_IN_PLACE, buf, (int)count, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD),
        "int64 sum", count);
}

static int reducer_sum_f64(void *ctx, double *buf, size_t count) {
    (void)ctx;
    return reducer_call(
        MPI_Allreduce(MPI_IN_PLACE, buf, (int)count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD),
        "double sum", count);
}

static int reducer_sum_f32(void *ctx, float *buf, size_t count) {
    (void)ctx;
    return reducer_call(
        MPI_Allreduce(MPI_IN_PLACE, buf, (int)count, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD),
        "float sum", count);
}

static int reducer_max_f64(void *ctx, double *buf, size_t count) {
    (void)ctx;
    return reducer_call(
        MPI_Allreduce(MPI_IN_PLACE, buf, (int)count, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD),
        "double max", count);
}

int reducer_world(reduce_ops *ops) {
    if (MPI_Comm_rank(MPI_COMM_WORLD, &ops->rank) != MPI_SUCCESS ||
        MPI_Comm_size(MPI_COMM_WORLD, &ops->size) != MPI_SUCCESS)
        return FAIL("MPI_COMM_WORLD: cannot read rank and size");
    ops->sum_i64 = reducer_sum_i64;
    ops->sum_f64 = reducer_sum_f64;
    ops->sum_f32 = reducer_sum_f32;
    ops->max_f64 = reducer_max_f64;
    ops->ctx = NULL;
    return FSNN_OK;
}
