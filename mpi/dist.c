/* dist: BLACS grids, descriptors, psgemm and psgesvd from C. */
#include "dist.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

/* The Fortran and C symbols of Debian's ScaLAPACK (libscalapack-openmpi).
 * Fortran CHARACTER arguments carry hidden lengths after the others. */
int Csys2blacs_handle(MPI_Comm comm);
void Cfree_blacs_system_handle(int handle);
void Cblacs_gridinit(int *ctxt, const char *order, int nprow, int npcol);
void Cblacs_gridinfo(int ctxt, int *nprow, int *npcol, int *myrow, int *mycol);
void Cblacs_gridexit(int ctxt);
int numroc_(const int *n, const int *nb, const int *iproc, const int *isrcproc, const int *nprocs);
void descinit_(int *desc, const int *m, const int *n, const int *mb, const int *nb,
               const int *irsrc, const int *icsrc, const int *ictxt, const int *lld, int *info);
void psgemm_(const char *transa, const char *transb, const int *m, const int *n, const int *k,
             const float *alpha, const float *a, const int *ia, const int *ja, const int *desca,
             const float *b, const int *ib, const int *jb, const int *descb, const float *beta,
             float *c, const int *ic, const int *jc, const int *descc);
void psgesvd_(const char *jobu, const char *jobvt, const int *m, const int *n, float *a,
              const int *ia, const int *ja, const int *desca, float *s, float *u, const int *iu,
              const int *ju, const int *descu, float *vt, const int *ivt, const int *jvt,
              const int *descvt, float *work, const int *lwork, int *info, size_t ljobu,
              size_t ljobvt);

int dist_grid_create(dist_grid *g, MPI_Comm comm, int nb) {
    memset(g, 0, sizeof *g);
    int size = 0;
    if (MPI_Comm_size(comm, &size) != MPI_SUCCESS || size < 1)
        return FAIL("dist: cannot read the size of the model group");
    if (nb < 1) return FAIL("dist: block size %d", nb);
    int pr = 1;
    for (int d = 1; d * d <= size; d++)
        if (size % d == 0) pr = d;
    g->comm = comm;
    g->nb = nb;
    g->ctxt = Csys2blacs_handle(comm);
    Cblacs_gridinit(&g->ctxt, "Row", pr, size / pr);
    Cblacs_gridinfo(g->ctxt, &g->nprow, &g->npcol, &g->myrow, &g->mycol);
    if (g->nprow != pr || g->npcol != size / pr || g->myrow < 0)
        return FAIL("dist: BLACS made a %d x %d grid, asked for %d x %d", g->nprow, g->npcol, pr,
                    size / pr);
    return FSNN_OK;
}

void dist_grid_destroy(dist_grid *g) {
    if (g->nprow > 0) Cblacs_gridexit(g->ctxt);
    memset(g, 0, sizeof *g);
}

void dist_local_size(const dist_grid *g, int m, int n, int *lrows, int *lcols) {
    const int zero = 0;
    *lrows = numroc_(&m, &g->nb, &g->myrow, &zero, &g->nprow);
    *lcols = numroc_(&n, &g->nb, &g->mycol, &zero, &g->npcol);
}

int dist_mat_view(const dist_grid *g, int m, int n, float *buf, dist_mat *A) {
    memset(A, 0, sizeof *A);
    dist_local_size(g, m, n, &A->lrows, &A->lcols);
    A->m = m;
    A->n = n;
    A->a = buf;
    A->lld = A->lrows > 1 ? A->lrows : 1;
    const int zero = 0;
    int info = 0;
    descinit_(A->desc, &m, &n, &g->nb, &g->nb, &zero, &zero, &g->ctxt, &A->lld, &info);
    if (info != 0) return FAIL("dist: descinit of a %d x %d matrix: info %d", m, n, info);
    return FSNN_OK;
}

/* Block-cyclic index maps from process 0 (ScaLAPACK's INDXL2G). */
static int dist_l2g(int l, int nb, int p, int np) {
    return (l / nb * np + p) * nb + l % nb;
}

int dist_row_global(const dist_grid *g, int il) {
    return dist_l2g(il, g->nb, g->myrow, g->nprow);
}

int dist_col_global(const dist_grid *g, int jl) {
    return dist_l2g(jl, g->nb, g->mycol, g->npcol);
}

/* The grid of a matrix from its descriptor (A carries no dist_grid). */
static void dist_mat_grid(const dist_mat *A, dist_grid *g) {
    memset(g, 0, sizeof *g);
    g->ctxt = A->desc[1];
    g->nb = A->desc[4];
    Cblacs_gridinfo(g->ctxt, &g->nprow, &g->npcol, &g->myrow, &g->mycol);
}

void dist_scatter(const float *rep, int ld, dist_mat *A) {
    dist_grid g;
    dist_mat_grid(A, &g);
    for (int jl = 0; jl < A->lcols; jl++) {
        const float *col = rep + (long)dist_col_global(&g, jl) * ld;
        float *out = A->a + (long)jl * A->lld;
        /* Runs of nb consecutive rows. */
        for (int il = 0; il < A->lrows; il += g.nb) {
            int len = A->lrows - il < g.nb ? A->lrows - il : g.nb;
            memcpy(out + il, col + dist_row_global(&g, il), sizeof(float) * (size_t)len);
        }
    }
}

int dist_gather(const dist_grid *g, const dist_mat *A, float *rep, int ld) {
    for (int j = 0; j < A->n; j++)
        memset(rep + (long)j * ld, 0, sizeof(float) * (size_t)A->m);
    for (int jl = 0; jl < A->lcols; jl++) {
        float *col = rep + (long)dist_col_global(g, jl) * ld;
        const float *in = A->a + (long)jl * A->lld;
        for (int il = 0; il < A->lrows; il += g->nb) {
            int len = A->lrows - il < g->nb ? A->lrows - il : g->nb;
            memcpy(col + dist_row_global(g, il), in + il, sizeof(float) * (size_t)len);
        }
    }
    int size = 1;
    MPI_Comm_size(g->comm, &size);
    if (size == 1) return FSNN_OK;
    /* Entries of rep past the matrix's m rows (ld > m) are not the
     * matrix's: all-reduce only the m rows of every column. */
    if (ld == A->m) {
        long total = (long)A->m * A->n;
        for (long off = 0; off < total; off += 1L << 30) {
            int cnt = (int)(total - off < (1L << 30) ? total - off : (1L << 30));
            if (MPI_Allreduce(MPI_IN_PLACE, rep + off, cnt, MPI_FLOAT, MPI_SUM, g->comm) !=
                MPI_SUCCESS)
                return FAIL("dist: all-reduce of a %d x %d matrix failed", A->m, A->n);
        }
        return FSNN_OK;
    }
    for (int j = 0; j < A->n; j++)
        if (MPI_Allreduce(MPI_IN_PLACE, rep + (long)j * ld, A->m, MPI_FLOAT, MPI_SUM, g->comm) !=
            MPI_SUCCESS)
            return FAIL("dist: all-reduce of a %d x %d matrix failed", A->m, A->n);
    return FSNN_OK;
}

/* Copies the local array `in` (leading dimension lld) of the process at grid
 * coordinates (pr, pc) into its places of rep. */
static void dist_unpack(const dist_grid *g, const dist_mat *A, int pr, int pc, const float *in,
                        int lld, float *rep, int ld) {
    const int zero = 0;
    const int lr = numroc_(&A->m, &g->nb, &pr, &zero, &g->nprow);
    const int lc = numroc_(&A->n, &g->nb, &pc, &zero, &g->npcol);
    for (int jl = 0; jl < lc; jl++) {
        float *col = rep + (long)dist_l2g(jl, g->nb, pc, g->npcol) * ld;
        for (int il = 0; il < lr; il += g->nb) {
            int len = lr - il < g->nb ? lr - il : g->nb;
            memcpy(col + dist_l2g(il, g->nb, pr, g->nprow), in + (long)jl * lld + il,
                   sizeof(float) * (size_t)len);
        }
    }
}

int dist_gather_to(const dist_grid *g, const dist_mat *A, float *rep, int ld, int root) {
    int me = 0, size = 1;
    MPI_Comm_rank(g->comm, &me);
    MPI_Comm_size(g->comm, &size);
    const long local = (long)A->lld * A->lcols;
    if (local > 0x7fffffffL) return FAIL("dist: %ld local values are too many to send", local);
    if (me != root) {
        if (MPI_Send(A->a, (int)local, MPI_FLOAT, root, 0, g->comm) != MPI_SUCCESS)
            return FAIL("dist: sending the blocks of a %d x %d matrix failed", A->m, A->n);
        return FSNN_OK;
    }
    dist_unpack(g, A, g->myrow, g->mycol, A->a, A->lld, rep, ld);
    if (size == 1) return FSNN_OK;
    float *buf = NULL;
    int rc = FSNN_OK;
    for (int r = 0; rc == 0 && r < size; r++) {
        if (r == root) continue;
        /* "Row" order: rank r is grid process (r / npcol, r % npcol). */
        const int pr = r / g->npcol, pc = r % g->npcol, zero = 0;
        const int lr = numroc_(&A->m, &g->nb, &pr, &zero, &g->nprow);
        const int lc = numroc_(&A->n, &g->nb, &pc, &zero, &g->npcol);
        const int lld = lr > 1 ? lr : 1;
        const long count = (long)lld * lc;
        if (count == 0) {
            if (MPI_Recv(NULL, 0, MPI_FLOAT, r, 0, g->comm, MPI_STATUS_IGNORE) != MPI_SUCCESS)
                rc = FAIL("dist: receiving from rank %d failed", r);
            continue;
        }
        free(buf);
        buf = NULL;
        if ((rc = XCALLOC(&buf, (size_t)count)) != 0) break;
        if (MPI_Recv(buf, (int)count, MPI_FLOAT, r, 0, g->comm, MPI_STATUS_IGNORE) != MPI_SUCCESS)
            rc = FAIL("dist: receiving the blocks of rank %d failed", r);
        else
            dist_unpack(g, A, pr, pc, buf, lld, rep, ld);
    }
    free(buf);
    return rc;
}

int dist_gemm(char ta, char tb, float alpha, const dist_mat *A, const dist_mat *B, float beta,
              dist_mat *C) {
    const int m = C->m, n = C->n, k = ta == 'N' ? A->n : A->m;
    const int kb = tb == 'N' ? B->m : B->n;
    if ((ta == 'N' ? A->m : A->n) != m || (tb == 'N' ? B->n : B->m) != n || k != kb)
        return FAIL("dist_gemm: shapes %dx%d%s * %dx%d%s -> %dx%d do not fit", A->m, A->n,
                    ta == 'T' ? "^T" : "", B->m, B->n, tb == 'T' ? "^T" : "", m, n);
    if (m == 0 || n == 0) return FSNN_OK;
    const int one = 1;
    psgemm_(&ta, &tb, &m, &n, &k, &alpha, A->a, &one, &one, A->desc, B->a, &one, &one, B->desc,
            &beta, C->a, &one, &one, C->desc);
    return FSNN_OK;
}

int dist_sigma_max(const dist_grid *g, const dist_mat *A, double *sigma) {
    const int m = A->m, n = A->n, one = 1, query = -1;
    const size_t local = (size_t)A->lld * (A->lcols > 0 ? A->lcols : 1);
    const int mn = m < n ? m : n;
    float *copy = NULL, *s = NULL, *work = NULL, wq = 0.0f, unused[1] = {0.0f};
    int info = 0, rc = FSNN_OK;
    CHECK(XCALLOC(&copy, local));
    memcpy(copy, A->a, sizeof(float) * (size_t)A->lld * A->lcols);
    if ((rc = XCALLOC(&s, (size_t)mn)) != 0) goto done;
    /* U and VT are not referenced with jobu = jobvt = 'N'. */
    psgesvd_("N", "N", &m, &n, copy, &one, &one, A->desc, s, unused, &one, &one, A->desc, unused,
             &one, &one, A->desc, &wq, &query, &info, 1, 1);
    if (info != 0) {
        rc = FAIL("psgesvd workspace query: info %d", info);
        goto done;
    }
    int lwork = (int)wq + 1;
    if ((rc = XCALLOC(&work, (size_t)lwork)) != 0) goto done;
    psgesvd_("N", "N", &m, &n, copy, &one, &one, A->desc, s, unused, &one, &one, A->desc, unused,
             &one, &one, A->desc, work, &lwork, &info, 1, 1);
    if (info != 0) {
        rc = FAIL("psgesvd of a %d x %d matrix on a %d x %d grid: info %d", m, n, g->nprow,
                  g->npcol, info);
        goto done;
    }
    *sigma = mn > 0 ? s[0] : 0.0;
done:
    free(copy);
    free(s);
    free(work);
    return rc;
}
