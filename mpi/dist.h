/* dist: matrices distributed block-cyclically over a BLACS process grid, and
 * the PBLAS/ScaLAPACK calls fsnn makes on them (psgemm, psgesvd). The one
 * module that declares and calls the Fortran symbols of ScaLAPACK.
 *
 * Conventions are ScaLAPACK's: a distributed matrix is column-major, split
 * into mb x nb blocks dealt round-robin over the nprow x npcol grid from
 * process (0, 0). A row-major C array [r x c] is the column-major matrix
 * c x r, so fsnn's per-sample buffers [B x n] are n x B matrices here and a
 * row-major weight is distributed as its transpose (tpfc.h).
 *
 * Replicated arrays (every rank of the grid holds all of it) become
 * distributed ones by each rank copying its blocks (dist_scatter, no
 * communication) and come back by dist_gather (one all-reduce over the
 * grid's communicator of the disjoint blocks: each value has exactly one
 * non-zero contribution, so the result is exact and the same on every rank). */
#ifndef FSNN_DIST_H
#define FSNN_DIST_H

#include <mpi.h>
#include <stddef.h>

typedef struct {
    MPI_Comm comm; /* borrowed */
    int ctxt;      /* BLACS context */
    int nprow, npcol, myrow, mycol;
    int nb; /* block size of every matrix */
} dist_grid;

typedef struct {
    int desc[9];
    int m, n;         /* global size */
    int lrows, lcols; /* this rank's local block array, column-major, leading dimension lrows */
    float *a;         /* [lld x lcols]; owned or borrowed as the maker says */
    int lld;
} dist_mat;

/* A grid over the ranks of comm: nprow x npcol with nprow the largest
 * divisor of the size not above its square root (2 ranks: 1 x 2, 4: 2 x 2),
 * block size nb. Collective over comm. */
int dist_grid_create(dist_grid *g, MPI_Comm comm, int nb);
void dist_grid_destroy(dist_grid *g);

/* Local rows and columns of an m x n matrix on this rank. */
void dist_local_size(const dist_grid *g, int m, int n, int *lrows, int *lcols);

/* Describes an m x n matrix whose local blocks are at buf (borrowed; at
 * least dist_local_size's lrows * lcols floats). */
int dist_mat_view(const dist_grid *g, int m, int n, float *buf, dist_mat *A);

/* Global (i, j) of local (il, jl), 0-based. */
int dist_row_global(const dist_grid *g, int il);
int dist_col_global(const dist_grid *g, int jl);

/* A's local blocks from the replicated column-major rep (A's m x n, leading
 * dimension ld). */
void dist_scatter(const float *rep, int ld, dist_mat *A);

/* The whole of A into the replicated column-major rep (leading dimension
 * ld) on every rank of the grid. Collective. */
int dist_gather(const dist_grid *g, const dist_mat *A, float *rep, int ld);

/* The whole of A into rep (leading dimension ld) on the grid's rank `root`
 * only: every other rank sends its local array as it is, so only the root
 * needs room for the whole matrix (and for one other rank's blocks).
 * Collective. */
int dist_gather_to(const dist_grid *g, const dist_mat *A, float *rep, int ld, int root);

/* C = alpha op(A) op(B) + beta C, op 'N' or 'T' (psgemm). Collective. */
int dist_gemm(char ta, char tb, float alpha, const dist_mat *A, const dist_mat *B, float beta,
              dist_mat *C);

/* The largest singular value of the square or rectangular A (psgesvd,
 * values only), the same on every rank. A is left unchanged (the routine
 * works on a copy). Collective. */
int dist_sigma_max(const dist_grid *g, const dist_mat *A, double *sigma);

#endif
