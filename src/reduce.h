/* reduce: sums over the ranks of a data-parallel group, and sums that give
 * the same bits whatever the number of ranks (deterministic mode).
 *
 * src/ never calls MPI: the program hands the numerics a reduce_ops whose
 * functions do (mpi/reducer.c); reduce_local() is the one-rank version whose
 * collectives do nothing. Every function taking a reduce_ops is collective
 * over its group: all ranks call it in the same order with the same counts.
 *
 * Reproducible sums: float values are rounded to 64-bit fixed point with a
 * scale 2^k chosen from a global bound on |value| (a MAX reduction, which is
 * exact: of the values themselves, or of bounds the caller derives from the
 * factors of a product before computing it), added as integers (exact and associative, so the order
 * of ranks and of samples does not matter), and converted back. With at most 2^c terms per sum the
 * scale leaves 62 - c bits below the bound: values more than 2^(38 - c) times smaller than the
 * bound are rounded, alike on every rank count. The top bit stays spare, so values may exceed the
 * bound by a factor below 2 (a float product's rounding) without overflow. */
#ifndef FSNN_REDUCE_H
#define FSNN_REDUCE_H

#include <stddef.h>
#include <stdint.h>

#define REDUCE_MAX_PENDING 16

/* A started non-blocking reduction; completed by reduce_ops.wait. */
typedef struct {
    int slot; /* the reducer's own handle; -1 when already complete */
} reduce_req;

typedef struct {
    int rank, size; /* this process in the data-parallel group */
    /* In place over the group; return 0 or an fsnn status. */
    int (*sum_i64)(void *ctx, int64_t *buf, size_t count);
    int (*sum_f64)(void *ctx, double *buf, size_t count); /* order-dependent rounding */
    int (*sum_f32)(void *ctx, float *buf, size_t count);  /* order-dependent rounding */
    int (*max_f64)(void *ctx, double *buf, size_t count);
    /* Non-blocking versions: start the reduction and return; `buf` belongs
     * to it until wait(req) returns, so work that does not touch `buf` can
     * overlap the communication. At most REDUCE_MAX_PENDING at once. */
    int (*start_sum_i64)(void *ctx, int64_t *buf, size_t count, reduce_req *req);
    int (*start_max_f64)(void *ctx, double *buf, size_t count, reduce_req *req);
    int (*start_sum_f32)(void *ctx, float *buf, size_t count, reduce_req *req);
    /* Sums split over the ranks (reduce-scatter) and their pieces brought
     * together (all-gather), over the blocks of reduce_block(count, r, size)
     * [lo, hi): after wait, start_scatter_sum_i64 leaves in this rank's
     * block of buf the sum over ranks of that block, the rest of buf
     * unchanged; start_gather_f32 fills every other rank's block of buf with
     * that rank's. Each moves (size - 1) / size of buf in and out of a rank
     * instead of an all-reduce's whole buffer, and leaves the conversion of
     * the sums to each block's owner. */
    int (*start_scatter_sum_i64)(void *ctx, int64_t *buf, size_t count, reduce_req *req);
    int (*start_gather_f32)(void *ctx, float *buf, size_t count, reduce_req *req);
    int (*wait)(void *ctx, reduce_req *req);
    /* Lets started reductions advance (MPI moves them on only inside MPI
     * calls); call between pieces of work, from the thread that calls the
     * others. Errors surface in wait. */
    void (*progress)(void *ctx);
    /* Seconds this rank has spent waiting for reductions to complete. */
    double (*seconds)(void *ctx);
    void *ctx;
} reduce_ops;

/* The reducer of a single process: rank 0 of 1, collectives are no-ops. */
const reduce_ops *reduce_local(void);

/* Rank `rank`'s block [lo, hi) of `count` values split over `size` ranks in
 * contiguous blocks of sizes differing by at most one (the blocks of
 * start_scatter_sum_i64 and start_gather_f32). */
void reduce_block(size_t count, int rank, int size, size_t *lo, size_t *hi);

/* Scale 2^k for sums of at most `terms` values whose largest magnitude is
 * maxabs (1 when maxabs is 0 or not finite). */
double reduce_scale(double maxabs, long terms);

/* acc[i] += round(x[i] * scale) for i < n. Inputs must be finite for the
 * sum to mean anything (reduce_maxabs tells); others leave garbage, safely. */
void reduce_fixed_add(int64_t *acc, const float *x, size_t n, double scale);

/* reduce_fixed_add onto zeros: acc[i] = x[i] in fixed point (acc is only
 * written, which saves clearing it first). */
/* The fixed-point sum of x[0..n) as one term (integer addition wraps as
 * reduce_fixed_add's): adding it to an accumulator gives its bits exactly. */
int64_t reduce_fixed_sum(const float *x, size_t n, double scale);

void reduce_fixed_set(int64_t *acc, const float *x, size_t n, double scale);

/* acc[i] = the fixed-point sum of x[0][i], ..., x[nx - 1][i] (nx >= 1; acc
 * is only written): the bits of reduce_fixed_set then reduce_fixed_add of
 * each further x[k], in one pass over acc instead of nx, a piece at a time
 * so that the piece of acc stays in cache while the inputs stream by. */
void reduce_fixed_set_sum(int64_t *acc, const float *const *x, int nx, size_t n, double scale);

/* out[i] = acc[i] / scale, rounded to float. */
void reduce_fixed_get(float *out, const int64_t *acc, size_t n, double scale);

/* max |x[i]|; +infinity when any x[i] is NaN or infinite (infinity, unlike
 * NaN, survives a MAX reduction whatever the order of ranks). */
double reduce_maxabs(const float *x, size_t n);

#endif
