/* ckptshard: the checkpoint of a tensor-parallel run (tpfc.h), written by
 * the ranks of one model group together. Every rank writes its blocks of the
 * two largest tensors (and of their optimiser state) into the same datasets
 * of the same file with parallel HDF5 (MPI-IO, collective transfers of
 * hyperslabs), so that no rank ever holds a whole one; one rank writes the
 * rest through ckpt.h's steps (ckpt_begin, ckpt_commit). The file reads back
 * with ckpt_read as the one ckpt_write makes of the whole model: the same
 * names, layout, checksum_sha256, header, temporary file, fsync and
 * rename. */
#ifndef FSNN_CKPTSHARD_H
#define FSNN_CKPTSHARD_H

#include <mpi.h>
#include <stddef.h>

#include "ckpt.h" // defines: ckpt_data

/* The blocks of a checkpoint's two largest tensors that this rank holds:
 * input.weight and feedback.V, each [rows x cols] row-major in the file, are
 * held as their transposes distributed block-cyclically (blocks nb x nb from
 * process (0, 0)) over an nprow x npcol grid: this rank's blocks of tensor k
 * are a row-major [lcols x lld] array whose row jl is the tensor's row
 * (jl / nb npcol + mycol) nb + jl % nb, restricted to the columns of its
 * process row in the same way (its first lrows entries). The same for the
 * optimiser's state, whose tensors lie at m_off[k] of /optim/m1 and m2.
 * Every pointer is borrowed. */
typedef struct {
    MPI_Comm comm; /* the ranks writing together; its rank 0 writes everything else */
    int nb, nprow, npcol, myrow, mycol;
    const char *name[2];  /* "input.weight", "feedback.V" */
    int rows[2], cols[2]; /* the tensors' shapes in the file */
    size_t m_off[2];      /* their offsets in /optim/m1 and m2 */
    int lrows[2], lcols[2], lld[2];
    const float *params[2]; /* local blocks (lld x lcols floats) */
    const float *m1[2];     /* optimiser state, same layout */
    const float *m2[2];     /* NULL without a second moment */
} ckptshard;

/* Writes dir/checkpoint.h5 as ckpt_write does, each rank of sh->comm its
 * blocks as sh describes. On rank 0 of sh->comm, d->m gives the sizes, the
 * other tensors and the state, and d->ts->opt the other tensors' optimiser
 * state (the two tensors' parts of d->m->params and of the optimiser's
 * arrays are neither read nor written, so they may be untouched memory);
 * other ranks pass d = NULL. Returns the same status on every rank of
 * sh->comm. Collective over sh->comm; dir must be equal on every rank. */
int ckptshard_write(const char *dir, const ckpt_data *d, const ckptshard *sh);

#endif
