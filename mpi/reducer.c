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

/* One started operation: its requests and, for a reduce-scatter, where the
 * other ranks' pieces land and what they are added to once all arrived. */
typedef struct {
    MPI_Request *req; /* [2 (size - 1)], owned; req[0..nreq) belong to the operation */
    int nreq;         /* 0: the slot is free */
    int64_t *sum_into;
    size_t sum_len;
    int64_t *parts;   /* [(size - 1) x sum_len] received pieces, owned, kept between uses */
    size_t parts_cap; /* values parts holds */
    char what[64];
} reducer_slot;

/* The started operations, with their names for the watchdog's message. The
 * program has one data-parallel group and one thread calling MPI, so one
 * table serves. The reduce-scatter and all-gather post all of a rank's
 * messages at once (libnbc's collectives go in rounds, each started only
 * inside a later MPI call), and their caller converts the int64 sums of its
 * block to float before the all-gather, which then moves half the bytes of
 * an int64 all-reduce's second half. */
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

/* A free slot named `kind` of `count` values, or an fsnn status. */
static int reducer_slot_take(size_t count, const char *kind, int *slot) {
    if (count > (size_t)0x7fffffff) return FAIL("reduction of %zu values is too large", count);
    int k = 0;
    while (k < REDUCE_MAX_PENDING && reducer_table[k].nreq != 0)
        k++;
    if (k == REDUCE_MAX_PENDING)
        return FAIL("more than %d reductions pending at once", REDUCE_MAX_PENDING);
    reducer_slot *s = &reducer_table[k];
    snprintf(s->what, sizeof s->what, "%s of %zu values", kind, count);
    s->sum_into = NULL;
    s->sum_len = 0;
    *slot = k;
    return FSNN_OK;
}

static int reducer_start(void *buf, size_t count, MPI_Datatype type, MPI_Op op, const char *kind,
                         reduce_req *out) {
    int k = 0;
    CHECK(reducer_slot_take(count, kind, &k));
    reducer_slot *s = &reducer_table[k];
    int rc = MPI_Iallreduce(MPI_IN_PLACE, buf, (int)count, type, op, reducer_group, &s->req[0]);
    if (rc != MPI_SUCCESS) return reducer_mpi_failed(rc, "MPI_Iallreduce", s->what);
    s->nreq = 1;
    out->slot = k;
    return FSNN_OK;
}

/* Posts the receive of the piece of `count` values of `type` from rank
 * `from` into buf and the send of `len` values of `type` from src to rank
 * `to` as requests of slot s. */
static int reducer_exchange(reducer_slot *s, void *buf, size_t count, int from, const void *src,
                            size_t len, int to, MPI_Datatype type) {
    int rc = MPI_Irecv(buf, (int)count, type, from, REDUCER_TAG, reducer_p2p, &s->req[s->nreq]);
    if (rc != MPI_SUCCESS) return reducer_mpi_failed(rc, "MPI_Irecv", s->what);
    s->nreq++;
    rc = MPI_Isend(src, (int)len, type, to, REDUCER_TAG, reducer_p2p, &s->req[s->nreq]);
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
    if (rc != 0) return rc;
    /* Integer sums: the order of the pieces does not change the bits. */
    for (int q = 0; s->sum_into && q < reducer_size - 1; q++) {
        const int64_t *part = s->parts + (size_t)q * s->sum_len;
        for (size_t i = 0; i < s->sum_len; i++)
            s->sum_into[i] = (int64_t)((uint64_t)s->sum_into[i] + (uint64_t)part[i]);
    }
    return FSNN_OK;
}

/* The pairwise reduce-scatter: every other rank's block goes to it, and
 * this rank's block of every other rank arrives in parts. Peers in the
 * order rank + 1, rank + 2, ... so that no rank is everyone's first. */
static int reducer_start_scatter_sum_i64(void *ctx, int64_t *buf, size_t count, reduce_req *out) {
    (void)ctx;
    out->slot = -1;
    if (reducer_size == 1) return FSNN_OK;
    int k = 0;
    CHECK(reducer_slot_take(count, "int64 reduce-scatter", &k));
    reducer_slot *s = &reducer_table[k];
    size_t lo, hi;
    reduce_block(count, reducer_rank, reducer_size, &lo, &hi);
    const size_t need = (hi - lo) * (size_t)(reducer_size - 1);
    if (need > s->parts_cap) {
        int64_t *p = realloc(s->parts, sizeof(int64_t) * need);
        if (!p) return FAIL("reducer: out of memory for %zu values of a reduce-scatter", need);
        s->parts = p;
        s->parts_cap = need;
    }
    for (int j = 1; j < reducer_size; j++) {
        const int to = (reducer_rank + j) % reducer_size;
        const int from = (reducer_rank - j + reducer_size) % reducer_size;
        size_t tlo, thi;
        reduce_block(count, to, reducer_size, &tlo, &thi);
        CHECK(reducer_exchange(s, s->parts + (size_t)(j - 1) * (hi - lo), hi - lo, from, buf + tlo,
                               thi - tlo, to, MPI_INT64_T));
    }
    s->sum_into = buf + lo;
    s->sum_len = hi - lo;
    out->slot = k;
    return FSNN_OK;
}

static int reducer_start_gather_f32(void *ctx, float *buf, size_t count, reduce_req *out) {
    (void)ctx;
    out->slot = -1;
    if (reducer_size == 1) return FSNN_OK;
    int k = 0;
    CHECK(reducer_slot_take(count, "float all-gather", &k));
    reducer_slot *s = &reducer_table[k];
    size_t lo, hi;
    reduce_block(count, reducer_rank, reducer_size, &lo, &hi);
    for (int j = 1; j < reducer_size; j++) {
        const int to = (reducer_rank + j) % reducer_size;
        const int from = (reducer_rank - j + reducer_size) % reducer_size;
        size_t flo, fhi;
        reduce_block(count, from, reducer_size, &flo, &fhi);
        CHECK(reducer_exchange(s, buf + flo, fhi - flo, from, buf + lo, hi - lo, to, MPI_FLOAT));
    }
    out->slot = k;
    return FSNN_OK;
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
        s->nreq = 0;
        /* two requests (receive, send) per other rank */
        s->req = malloc(sizeof(MPI_Request) * 2 * (size_t)(ops->size > 1 ? ops->size - 1 : 1));
        if (!s->req) return FAIL("reducer: out of memory for the requests of %d ranks", ops->size);
    }
    ops->sum_i64 = reducer_sum_i64;
    ops->sum_f64 = reducer_sum_f64;
    ops->sum_f32 = reducer_sum_f32;
    ops->max_f64 = reducer_max_f64;
    ops->start_sum_i64 = reducer_start_sum_i64;
    ops->start_max_f64 = reducer_start_max_f64;
    ops->start_sum_f32 = reducer_start_sum_f32;
    ops->start_scatter_sum_i64 = reducer_start_scatter_sum_i64;
    ops->start_gather_f32 = reducer_start_gather_f32;
    ops->wait = reducer_wait;
    ops->progress = reducer_progress;
    ops->seconds = reducer_seconds;
    ops->ctx = NULL;
    return FSNN_OK;
}
