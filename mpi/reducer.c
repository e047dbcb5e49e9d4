/* reducer: reduce_ops over an MPI communicator (MPI_COMM_WORLD by default).
 * Every reduction is an MPI_Iallreduce completed by the watchdog, so that a
 * rank that died or hangs ends the job (watchdog.h) and the time spent
 * waiting is counted. */
#include "reducer.h"

#include <mpi.h>
#include <stdio.h>

#include "status.h"
#include "watchdog.h"

/* The requests of started non-blocking reductions, with their names for
 * the watchdog's message. The program has one data-parallel group and one
 * thread calling MPI, so one table serves. */
typedef struct {
    MPI_Request req[REDUCE_MAX_PENDING];
    char what[REDUCE_MAX_PENDING][64];
} reducer_pending;

static reducer_pending reducer_table;

/* The group the reductions run over (reducer_world, reducer_comm). */
static MPI_Comm reducer_group = MPI_COMM_WORLD;

static int reducer_start(void *buf, size_t count, MPI_Datatype type, MPI_Op op, const char *kind,
                         reduce_req *out) {
    if (count > (size_t)0x7fffffff) return FAIL("reduction of %zu values is too large", count);
    int slot = 0;
    while (slot < REDUCE_MAX_PENDING && reducer_table.req[slot] != MPI_REQUEST_NULL)
        slot++;
    if (slot == REDUCE_MAX_PENDING)
        return FAIL("more than %d reductions pending at once", REDUCE_MAX_PENDING);
    snprintf(reducer_table.what[slot], sizeof reducer_table.what[slot], "%s of %zu values", kind,
             count);
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)count, type, op, reducer_group,
                            &reducer_table.req[slot]);
    if (rc != MPI_SUCCESS) {
        char msg[MPI_MAX_ERROR_STRING];
        int len = 0;
        MPI_Error_string(rc, msg, &len);
        reducer_table.req[slot] = MPI_REQUEST_NULL;
        return FAIL("MPI_Iallreduce (%s) failed: %s", reducer_table.what[slot], msg);
    }
    out->slot = slot;
    return FSNN_OK;
}

static int reducer_wait(void *ctx, reduce_req *req) {
    (void)ctx;
    if (req->slot < 0 || req->slot >= REDUCE_MAX_PENDING) return FSNN_OK;
    int rc = watchdog_wait(&reducer_table.req[req->slot], reducer_table.what[req->slot]);
    reducer_table.req[req->slot] = MPI_REQUEST_NULL;
    req->slot = -1;
    return rc;
}

static int reducer_blocking(void *buf, size_t count, MPI_Datatype type, MPI_Op op,
                            const char *kind) {
    reduce_req req;
    CHECK(reducer_start(buf, count, type, op, kind, &req));
    return reducer_wait(NULL, &req);
}

static int reducer_sum_i64(void *ctx, int64_t *buf, size_t count) {
    (void)ctx;
    return reducer_blocking(buf, count, MPI_INT64_T, MPI_SUM, "int64 sum");
}

static int reducer_sum_f64(void *ctx, double *buf, size_t count) {
    (void)ctx;
    return reducer_blocking(buf, count, MPI_DOUBLE, MPI_SUM, "double sum");
}

static int reducer_sum_f32(void *ctx, float *buf, size_t count) {
    (void)ctx;
    return reducer_blocking(buf, count, MPI_FLOAT, MPI_SUM, "float sum");
}

static int reducer_max_f64(void *ctx, double *buf, size_t count) {
    (void)ctx;
    return reducer_blocking(buf, count, MPI_DOUBLE, MPI_MAX, "double max");
}

static int reducer_start_sum_i64(void *ctx, int64_t *buf, size_t count, reduce_req *req) {
    (void)ctx;
    return reducer_start(buf, count, MPI_INT64_T, MPI_SUM, "int64 sum", req);
}

static int reducer_start_max_f64(void *ctx, double *buf, size_t count, reduce_req *req) {
    (void)ctx;
    return reducer_start(buf, count, MPI_DOUBLE, MPI_MAX, "double max", req);
}

static int reducer_start_sum_f32(void *ctx, float *buf, size_t count, reduce_req *req) {
    (void)ctx;
    return reducer_start(buf, count, MPI_FLOAT, MPI_SUM, "float sum", req);
}

/* MPI_Testall completes nothing unless all are done, but moves all on. */
static void reducer_progress(void *ctx) {
    (void)ctx;
    int done = 0;
    MPI_Testall(REDUCE_MAX_PENDING, reducer_table.req, &done, MPI_STATUSES_IGNORE);
}

static double reducer_seconds(void *ctx) {
    (void)ctx;
    return watchdog_seconds();
}

int reducer_world(reduce_ops *ops) {
    return reducer_comm(ops, MPI_COMM_WORLD);
}

int reducer_comm(reduce_ops *ops, MPI_Comm comm) {
    if (MPI_Comm_rank(comm, &ops->rank) != MPI_SUCCESS ||
        MPI_Comm_size(comm, &ops->size) != MPI_SUCCESS)
        return FAIL("reducer: cannot read the communicator's rank and size");
    reducer_group = comm;
    for (int i = 0; i < REDUCE_MAX_PENDING; i++)
        reducer_table.req[i] = MPI_REQUEST_NULL;
    ops->sum_i64 = reducer_sum_i64;
    ops->sum_f64 = reducer_sum_f64;
    ops->sum_f32 = reducer_sum_f32;
    ops->max_f64 = reducer_max_f64;
    ops->start_sum_i64 = reducer_start_sum_i64;
    ops->start_max_f64 = reducer_start_max_f64;
    ops->start_sum_f32 = reducer_start_sum_f32;
    ops->wait = reducer_wait;
    ops->progress = reducer_progress;
    ops->seconds = reducer_seconds;
    ops->ctx = NULL;
    return FSNN_OK;
}
