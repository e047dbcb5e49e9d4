/* reducer: reduce_ops over an MPI communicator (MPI_COMM_WORLD by default).
 * Every reduction is an MPI_Iallreduce, or for the reduce-scatter and
 * all-gather of large buffers point-to-point messages between every pair of
 * ranks, completed by the watchdog, so that a rank that died or hangs ends
 * the job (watchdog.h) and the time spent waiting is counted. */
#include "reducer.h"

#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

#include "status.h"
#include "watchdog.h"

/* One started operation: its requests. */
typedef struct {
    MPI_Request *req; /* [cap], owned, kept between uses; req[0..nreq) belong to the operation */
    int nreq;         /* 0: the slot is free */
    int cap;
    char what[64];
} reducer_slot;

/* The started operations, with their names for the watchdog's message. The
 * program has one data-parallel group and one thread calling MPI, so one
 * table serves. The reduce-scatter and all-gather post all of a rank's
 * messages at once (libnbc's collectives go in rounds, each started only
 * inside a later MPI call), and their caller adds the pieces of its block in
 * its fixed order before the all-gather. */
static reducer_slot reducer_table[REDUCE_MAX_PENDING];

/* The group the reductions run over (reducer_world, reducer_comm), and its
 * duplicate for the point-to-point messages, which must not meet any other
 * messages of the program. */
static MPI_Comm reducer_group = MPI_COMM_WORLD;
static MPI_Comm reducer_p2p = MPI_COMM_NULL;
static int reducer_rank, reducer_size = 1;

enum { REDUCER_TAG = 7 };

static int reducer_mpi_failed(int rc, const char *call, const char *what) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    return FAIL("%s (%s) failed: %s", call, what, msg);
}

/* A free slot named `kind` of `count` values with room for `nreq`
 * requests, or an fsnn status. */
static int reducer_slot_take(size_t count, int nreq, const char *kind, int *slot) {
    if (count > (size_t)0x7fffffff) return FAIL("reduction of %zu values is too large", count);
    int k = 0;
    while (k < REDUCE_MAX_PENDING && reducer_table[k].nreq != 0)
        k++;
    if (k == REDUCE_MAX_PENDING)
        return FAIL("more than %d reductions pending at once", REDUCE_MAX_PENDING);
    reducer_slot *s = &reducer_table[k];
    if (nreq > s->cap) {
        MPI_Request *r = realloc(s->req, sizeof(MPI_Request) * (size_t)nreq);
        if (!r) return FAIL("reducer: out of memory for %d requests", nreq);
        s->req = r;
        s->cap = nreq;
    }
    snprintf(s->what, sizeof s->what, "%s of %zu values", kind, count);
    *slot = k;
    return FSNN_OK;
}

static int reducer_start(void *buf, size_t count, MPI_Datatype type, MPI_Op op, const char *kind,
                         reduce_req *out) {
    int k = 0;
    CHECK(reducer_slot_take(count, 1, kind, &k));
    reducer_slot *s = &reducer_table[k];
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)count, type, op, reducer_group, &s->req[0]);
    if (rc != MPI_SUCCESS) return reducer_mpi_failed(rc, "MPI_Iallreduce", s->what);
    s->nreq = 1;
    out->slot = k;
    return FSNN_OK;
}

/* Posts the receive of `count` values of `type` from rank `from` into buf
 * as a request of slot s. */
static int reducer_recv(reducer_slot *s, void *buf, size_t count, int from, MPI_Datatype type) {
    int rc = MPI_Irecv(buf, (int)count, type, from, REDUCER_TAG, reducer_p2p, &s->req[s->nreq]);
    if (rc != MPI_SUCCESS) return reducer_mpi_failed(rc, "MPI_Irecv", s->what);
    s->nreq++;
    return FSNN_OK;
}

/* Posts the send of `count` values of `type` from src to rank `to`. */
static int reducer_send(reducer_slot *s, const void *src, size_t count, int to, MPI_Datatype type) {
    int rc = MPI_Isend(src, (int)count, type, to, REDUCER_TAG, reducer_p2p, &s->req[s->nreq]);
    if (rc != MPI_SUCCESS) return reducer_mpi_failed(rc, "MPI_Isend", s->what);
    s->nreq++;
    return FSNN_OK;
}

static int reducer_wait(void *ctx, reduce_req *req) {
    (void)ctx;
    if (req->slot < 0 || req->slot >= REDUCE_MAX_PENDING) return FSNN_OK;
    reducer_slot *s = &reducer_table[req->slot];
    int rc = watchdog_waitall(s->nreq, s->req, s->what);
    s->nreq = 0;
    req->slot = -1;
    return rc;
}

/* The pieces' exchange: every other rank's block of each piece goes to it,
 * and this rank's block of every other rank's pieces arrives in recv.
 * Messages between two ranks keep their order (MPI's non-overtaking rule),
 * so piece p of rank r lands in the p-th place of r's part of recv. Peers
 * in the order rank + 1, rank + 2, ... so that no rank is everyone's first. */
static int reducer_start_scatter_f32(void *ctx, float *const *piece, int np, const int *npieces,
                                     size_t count, float *recv, reduce_req *out) {
    (void)ctx;
    out->slot = -1;
    if (reducer_size == 1) return FSNN_OK;
    int nreq = np * (reducer_size - 1), k = 0;
    for (int r = 0; r < reducer_size; r++)
        nreq += r == reducer_rank ? 0 : npieces[r];
    CHECK(reducer_slot_take(count, nreq, "float reduce-scatter", &k));
    reducer_slot *s = &reducer_table[k];
    size_t lo, hi;
    reduce_block(count, reducer_rank, reducer_size, &lo, &hi);
    float *at = recv;
    for (int r = 0; r < reducer_size; r++)
        for (int p = 0; r != reducer_rank && p < npieces[r]; p++, at += hi - lo)
            CHECK(reducer_recv(s, at, hi - lo, r, MPI_FLOAT));
    for (int j = 1; j < reducer_size; j++) {
        const int to = (reducer_rank + j) % reducer_size;
        size_t tlo, thi;
        reduce_block(count, to, reducer_size, &tlo, &thi);
        for (int p = 0; p < np; p++)
            CHECK(reducer_send(s, piece[p] + tlo, thi - tlo, to, MPI_FLOAT));
    }
    out->slot = k;
    return FSNN_OK;
}

static int reducer_start_gather_f32(void *ctx, float *buf, size_t count, reduce_req *out) {
    (void)ctx;
    out->slot = -1;
    if (reducer_size == 1) return FSNN_OK;
    int k = 0;
    CHECK(reducer_slot_take(count, 2 * (reducer_size - 1), "float all-gather", &k));
    reducer_slot *s = &reducer_table[k];
    size_t lo, hi;
    reduce_block(count, reducer_rank, reducer_size, &lo, &hi);
    for (int j = 1; j < reducer_size; j++) {
        const int to = (reducer_rank + j) % reducer_size;
        const int from = (reducer_rank - j + reducer_size) % reducer_size;
        size_t flo, fhi;
        reduce_block(count, from, reducer_size, &flo, &fhi);
        CHECK(reducer_recv(s, buf + flo, fhi - flo, from, MPI_FLOAT));
        CHECK(reducer_send(s, buf + lo, hi - lo, to, MPI_FLOAT));
    }
    out->slot = k;
    return FSNN_OK;
}

static int reducer_blocking(void *buf, size_t count, MPI_Datatype type, MPI_Op op,
                            const char *kind) {
    reduce_req req = {.slot = -1};
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
    for (int k = 0; k < REDUCE_MAX_PENDING; k++) {
        int done = 0;
        if (reducer_table[k].nreq > 0)
            MPI_Testall(reducer_table[k].nreq, reducer_table[k].req, &done, MPI_STATUSES_IGNORE);
    }
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
    reducer_rank = ops->rank;
    reducer_size = ops->size;
    if (reducer_p2p != MPI_COMM_NULL) MPI_Comm_free(&reducer_p2p);
    if (MPI_Comm_dup(comm, &reducer_p2p) != MPI_SUCCESS)
        return FAIL("reducer: cannot duplicate the communicator");
    for (int i = 0; i < REDUCE_MAX_PENDING; i++) {
        reducer_slot *s = &reducer_table[i];
        free(s->req);
        s->req = NULL;
        s->nreq = 0;
        s->cap = 0;
    }
    ops->sum_i64 = reducer_sum_i64;
    ops->sum_f64 = reducer_sum_f64;
    ops->sum_f32 = reducer_sum_f32;
    ops->max_f64 = reducer_max_f64;
    ops->start_sum_i64 = reducer_start_sum_i64;
    ops->start_max_f64 = reducer_start_max_f64;
    ops->start_sum_f32 = reducer_start_sum_f32;
    ops->start_scatter_f32 = reducer_start_scatter_f32;
    ops->start_gather_f32 = reducer_start_gather_f32;
    ops->wait = reducer_wait;
    ops->progress = reducer_progress;
    ops->seconds = reducer_seconds;
    ops->ctx = NULL;
    return FSNN_OK;
}
