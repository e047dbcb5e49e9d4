/* reduce: sums over the ranks of a data-parallel group, and sums that give
 * the same bits whatever the number of ranks (deterministic mode).
 *
 * src/ never calls MPI: the program hands the numerics a reduce_ops whose
 * functions do (mpi/reducer.c); reduce_local() is the one-rank version whose
 * collectives do nothing. Every function taking a reduce_ops is collective
 * over its group: all ranks call it in the same order with the same counts.
 *
 * Two kinds of sums give the same bits for any number of ranks:
 * - fixed point (BatchNorm statistics): float values are rounded to 64-bit
 *   fixed point with a scale 2^k chosen from a global bound on |value| (a MAX
 *   reduction, which is exact), added as integers (exact and associative, so
 *   the order of ranks and of samples does not matter), and converted back.
 *   With at most 2^c terms per sum the scale leaves 62 - c bits below the
 *   bound: values more than 2^(38 - c) times smaller than the bound are
 *   rounded, alike on every rank count. The top bit stays spare, so values
 *   may exceed the bound by a factor below 2 without overflow;
 * - tree sums (gradients): float additions in a fixed tree over the batch's
 *   micro-shards (reduce_tree_sum), which move half the bytes of int64 and
 *   need neither a bound nor a conversion. */
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
    /* The exchange of a tree sum (reduce_tree_sum) split over the ranks,
     * over the blocks of reduce_block(count, r, size) [lo, hi): every other
     * rank q receives q's block of each of this rank's np pieces piece[0..np)
     * (count values each), and recv receives this rank's block of the
     * npieces[r] pieces of every other rank r, rank after rank and piece
     * after piece, each hi - lo values. The pieces and recv belong to the
     * operation until wait; the caller adds the pieces in the tree's order. */
    int (*start_scatter_f32)(void *ctx, float *const *piece, int np, const int *npieces,
                             size_t count, float *recv, reduce_req *req);
    /* The pieces brought together (all-gather): after wait, every other
     * rank's block of buf holds that rank's. */
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
 * start_scatter_f32 and start_gather_f32, and of micro-shards over ranks). */
void reduce_block(size_t count, int rank, int size, size_t *lo, size_t *hi);

/* Tree sums: the sums of deterministic mode's gradients. The K micro-shards
 * of a global batch are the leaves 0..K-1 of a fixed binary tree whose root
 * is [0, K); a node [a, b) with b - a > 1 is the float sum left + right of
 * its halves [a, m) and [m, b), m = a + (b - a) / 2. A rank sums its own
 * leaves up to the largest nodes they fill (its pieces), and the pieces of
 * all ranks are added in the same tree, so every value is the same sequence
 * of float additions whatever the number of ranks. */
typedef struct {
    int lo, hi; /* leaves [lo, hi) */
} reduce_node;

/* Room for the cover of any range of a tree of up to 2^31 leaves. */
#define REDUCE_TREE_MAX 64

/* The fewest nodes of the tree over K leaves that partition [lo, hi)
 * (0 <= lo <= hi <= K), in leaf order, into out [REDUCE_TREE_MAX]; returns
 * their number (0 for an empty range). */
int reduce_tree_cover(int K, int lo, int hi, reduce_node *out);

/* The sum of tree node `root` from the values of nodes node[0..nn) that
 * partition it into tree nodes, node[i]'s n values at val[i]. Works in
 * place: each sum goes into the buffer of its left part, so the result is
 * in val[i] of the node that starts at root.lo; returns that i, or -1 when
 * node[] is not such a partition (the buffers are then unspecified). */
int reduce_tree_sum(reduce_node root, const reduce_node *node, int nn, float *const *val, size_t n);

/* Scale 2^k for sums of at most `terms` values whose largest magnitude is
 * maxabs (1 when maxabs is 0 or not finite). */
double reduce_scale(double maxabs, long terms);

/* acc[i] += round(x[i] * scale) for i < n. Inputs must be finite for the
 * sum to mean anything (reduce_maxabs tells); others leave garbage, safely. */
void reduce_fixed_add(int64_t *acc, const float *x, size_t n, double scale);

/* The same for each of `rows` rows of n values, x [rows x n]: acc[i] gets
 * every row's element i (a tile of a blocked layout's channels). */
void reduce_fixed_add_rows(int64_t *acc, const float *x, size_t rows, size_t n, double scale);

/* The fixed-point sum of x[0..n) as one term (integer addition wraps as
 * reduce_fixed_add's): adding it to an accumulator gives its bits exactly. */
int64_t reduce_fixed_sum(const float *x, size_t n, double scale);

/* out[i] = acc[i] / scale, rounded to float. */
void reduce_fixed_get(float *out, const int64_t *acc, size_t n, double scale);

/* max |x[i]|; +infinity when any x[i] is NaN or infinite (infinity, unlike
 * NaN, survives a MAX reduction whatever the order of ranks). */
double reduce_maxabs(const float *x, size_t n);

#endif
