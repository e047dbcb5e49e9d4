/* ckptshard: a tensor-parallel checkpoint written by the ranks together. */
#include "ckptshard.h"

#include <hdf5.h>
#include <stdio.h>

#include "status.h" // defines: CHECK, FAIL

/* Of the blocks nb wide dealt round-robin over P processes from 0, along an
 * extent of N: the full blocks of process p (*full) and the length of its
 * last, partial one (*rem, 0 when it has none). */
static void ckptshard_blocks(int N, int nb, int p, int P, hsize_t *full, hsize_t *rem) {
    const int whole = N / nb;
    *full = whole > p ? (hsize_t)((whole - p + P - 1) / P) : 0;
    *rem = (N % nb != 0 && whole % P == p) ? (hsize_t)(N % nb) : 0;
}

/* Adds to sel (1-D when dim < 0, else dimension dim of 2) the indices of
 * process p along an extent N from `base`: the full blocks as one regular
 * hyperslab, the partial one as another. other_* give the fixed range of the
 * other dimension for 2-D. Returns the count of indices along the extent. */
static hsize_t ckptshard_select_axis(hid_t sel, int *first, hsize_t base, int N, int nb, int p,
                                     int P, int dim, hsize_t other_start, hsize_t other_count) {
    hsize_t full, rem;
    ckptshard_blocks(N, nb, p, P, &full, &rem);
    const int r = dim < 0 ? 1 : 2, a = dim < 0 ? 0 : dim;
    hsize_t start[2], stride[2], count[2], block[2];
    if (r == 2) {
        start[1 - a] = other_start, stride[1 - a] = 1, count[1 - a] = 1, block[1 - a] = other_count;
    }
    if (full > 0) {
        start[a] = base + (hsize_t)p * nb, stride[a] = (hsize_t)nb * P, count[a] = full,
        block[a] = (hsize_t)nb;
        H5Sselect_hyperslab(sel, *first ? H5S_SELECT_SET : H5S_SELECT_OR, start, stride, count,
                            block);
        *first = 0;
    }
    if (rem > 0) {
        start[a] = base + (hsize_t)(N / nb) * nb, stride[a] = 1, count[a] = 1, block[a] = rem;
        H5Sselect_hyperslab(sel, *first ? H5S_SELECT_SET : H5S_SELECT_OR, start, stride, count,
                            block);
        *first = 0;
    }
    return full * nb + rem;
}

/* Writes this rank's blocks of tensor k of sh into the open 2-D dataset ds
 * (collective transfer). A tensor [rows x cols]: its rows are the local
 * columns (process column, npcol), its columns the local rows. */
static int ckptshard_write_blocks(hid_t ds, const ckptshard *sh, int k, const float *local,
                                  hid_t dxpl) {
    hid_t fs = H5Dget_space(ds);
    if (fs < 0) return -1;
    H5Sselect_none(fs);
    hsize_t rfull, rrem;
    ckptshard_blocks(sh->rows[k], sh->nb, sh->mycol, sh->npcol, &rfull, &rrem);
    const hsize_t nrows = rfull * sh->nb + rrem;
    int first = 1;
    hsize_t ncols = 0;
    /* Each range of rows the rank owns, crossed with all its columns. */
    if (rfull > 0) {
        for (hsize_t b = 0; b < rfull; b++) {
            const hsize_t r0 = ((hsize_t)sh->mycol + b * sh->npcol) * sh->nb;
            ncols = ckptshard_select_axis(fs, &first, 0, sh->cols[k], sh->nb, sh->myrow, sh->nprow,
                                          1, r0, (hsize_t)sh->nb);
        }
    }
    if (rrem > 0)
        ncols = ckptshard_select_axis(fs, &first, 0, sh->cols[k], sh->nb, sh->myrow, sh->nprow, 1,
                                      (hsize_t)(sh->rows[k] / sh->nb) * sh->nb, rrem);
    herr_t wr;
    if (first || ncols == 0) { /* nothing here; the transfer is still collective */
        H5Sselect_none(fs);
        hsize_t one = 1;
        hid_t ms = H5Screate_simple(1, &one, NULL);
        H5Sselect_none(ms);
        float dummy = 0.0f;
        wr = H5Dwrite(ds, H5T_NATIVE_FLOAT, ms, fs, dxpl, &dummy);
        H5Sclose(ms);
    } else {
        /* Local memory [lcols x lld]: the first lrows of each row. */
        hsize_t md[2] = {(hsize_t)sh->lcols[k], (hsize_t)sh->lld[k]};
        hsize_t ms0[2] = {0, 0}, mc[2] = {nrows, ncols};
        hid_t ms = H5Screate_simple(2, md, NULL);
        H5Sselect_hyperslab(ms, H5S_SELECT_SET, ms0, NULL, mc, NULL);
        wr = H5Dwrite(ds, H5T_NATIVE_FLOAT, ms, fs, dxpl, local);
        H5Sclose(ms);
    }
    H5Sclose(fs);
    return wr < 0 ? -1 : 0;
}

/* This rank's parts of tensor k in the flat optimiser array ds: row by row
 * (independent transfers; a row's columns are one selection). */
static int ckptshard_write_flat(hid_t ds, const ckptshard *sh, int k, const float *local) {
    hid_t fs = H5Dget_space(ds);
    if (fs < 0) return -1;
    int bad = 0;
    hsize_t lr = (hsize_t)sh->lrows[k];
    hid_t ms = H5Screate_simple(1, lr ? &lr : (hsize_t[]){1}, NULL);
    for (int jl = 0; !bad && jl < sh->lcols[k] && lr > 0; jl++) {
        const long j = (long)(jl / sh->nb * sh->npcol + sh->mycol) * sh->nb + jl % sh->nb;
        int first = 1;
        ckptshard_select_axis(fs, &first, sh->m_off[k] + (hsize_t)j * sh->cols[k], sh->cols[k],
                              sh->nb, sh->myrow, sh->nprow, -1, 0, 0);
        bad =
            H5Dwrite(ds, H5T_NATIVE_FLOAT, ms, fs, H5P_DEFAULT, local + (long)jl * sh->lld[k]) < 0;
    }
    H5Sclose(ms);
    H5Sclose(fs);
    return bad ? -1 : 0;
}

/* Step 2 of ckptshard_write: every rank writes its blocks into tmp through
 * MPI-IO. */
static int ckptshard_write_all(const char *tmp, const ckptshard *sh) {
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    hid_t f = fapl >= 0 && H5Pset_fapl_mpio(fapl, sh->comm, MPI_INFO_NULL) >= 0
                  ? H5Fopen(tmp, H5F_ACC_RDWR, fapl)
                  : -1;
    if (fapl >= 0) H5Pclose(fapl);
    if (f < 0) return FAIL("%s: cannot open for the ranks' blocks (MPI-IO)", tmp);
    hid_t dxpl = H5Pcreate(H5P_DATASET_XFER);
    int bad = dxpl < 0 || H5Pset_dxpl_mpio(dxpl, H5FD_MPIO_COLLECTIVE) < 0;
    char full[128];
    for (int k = 0; !bad && k < 2; k++) {
        snprintf(full, sizeof full, "/params/%s", sh->name[k]);
        hid_t ds = H5Dopen2(f, full, H5P_DEFAULT);
        bad = ds < 0 || ckptshard_write_blocks(ds, sh, k, sh->params[k], dxpl) != 0;
        if (ds >= 0) H5Dclose(ds);
    }
    const char *opt[2] = {"/optim/m1", "/optim/m2"};
    for (int o = 0; !bad && o < 2; o++) {
        const float *const *src = o == 0 ? sh->m1 : sh->m2;
        if (!src[0]) continue;
        hid_t ds = H5Dopen2(f, opt[o], H5P_DEFAULT);
        for (int k = 0; !bad && k < 2; k++)
            bad = ds < 0 || ckptshard_write_flat(ds, sh, k, src[k]) != 0;
        if (ds >= 0) H5Dclose(ds);
    }
    if (dxpl >= 0) H5Pclose(dxpl);
    if (H5Fclose(f) < 0) bad = 1;
    return bad ? FAIL("%s: writing this rank's blocks failed (MPI-IO)", tmp) : FSNN_OK;
}

/* rc of rank 0 on every rank of comm (failures elsewhere count as well). */
static int ckptshard_agree(MPI_Comm comm, int rc, const char *tmp) {
    int bad = rc != 0, any = 0;
    if (MPI_Allreduce(&bad, &any, 1, MPI_INT, MPI_MAX, comm) != MPI_SUCCESS)
        return FAIL("%s: the writing ranks cannot agree", tmp);
    if (rc) return rc;
    return any ? FAIL("%s: another writing rank failed", tmp) : FSNN_OK;
}

int ckptshard_write(const char *dir, const ckpt_data *d, const ckptshard *sh) {
    char tmp[4096];
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL); /* our messages replace HDF5's stack dumps */
    CHECK(ckpt_temp_path(dir, tmp, sizeof tmp));
    int me = 0;
    MPI_Comm_rank(sh->comm, &me);
    /* 1. Rank 0: the file with everything but the ranks' blocks. */
    int rc = me == 0 ? ckpt_begin(dir, d, sh->name, 2) : FSNN_OK;
    rc = ckptshard_agree(sh->comm, rc, tmp);
    /* 2. Every rank: its blocks, collectively. */
    if (rc == 0) rc = ckptshard_agree(sh->comm, ckptshard_write_all(tmp, sh), tmp);
    /* 3. Rank 0: the checksum over what is in the file, header, rename. */
    if (me == 0) rc = ckpt_commit(rc, dir, d);
    return ckptshard_agree(sh->comm, rc, tmp);
}
