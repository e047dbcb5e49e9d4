/* tpfc: the single-layer FC feedback net "N (FN)" (model.h, SPEC §1-4) with
 * its large tensors distributed over the M ranks of a model group
 * (tensor parallelism, parallel.model_ranks = M).
 *
 * The input weight F [n x n_in] and the feedback weight V [n x n] are held
 * block-cyclically over a BLACS grid of the group (dist.h), each as its
 * transpose (a row-major tensor is the column-major transpose), together with
 * their gradients and optimiser state: a rank holds about 1/M of them and
 * never a whole n x n matrix. W = g V / sigma(V) is not stored: products
 * with W are products with V scaled by g / sigma. The per-sample buffers
 * [B x n], the readout, the BatchNorm and the power-iteration vectors are
 * replicated: every rank of a group holds all of them and computes the same
 * values, so the per-sample code of the single-process model (neuron.h,
 * solver.h, equil.h, bn2d.h) runs unchanged and only the products with F and
 * V go through psgemm:
 *
 *   h = F x + b, W s, f(a) = clamp((W a + x1) / V_th), J^T v = W^T (m ⊙ v) / V_th,
 *   dL/dW = (beta ⊙ jac) a^T, dL/dF = dh x^T, the power iteration for sigma(V).
 *
 * All ranks of a group see the same samples; the groups split each global
 * batch and sum their gradients with the data-parallel reducer (reduce.h,
 * over grid_env.data). Sums are plain float sums (parallel.deterministic
 * does not apply): results equal the one-process model (model.h) within
 * float rounding. Functions marked collective are collective over the
 * group, and over the reducer's ranks when they take one. */
#ifndef FSNN_TPFC_H
#define FSNN_TPFC_H

#include <mpi.h>
#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "dist.h"
#include "model.h"
#include "reduce.h"

/* Block size of the distributed weights when the caller has no reason to
 * pick another (tests pick small ones so the layout is really cyclic). */
#define TPFC_BLOCK 64

/* The tensors of the one-layer FC net, in model.h's order (F, b, BN weight
 * and bias, V, g, W_o, b_o): the first entries of a one-layer model's
 * info. */
#define TPFC_N_TENSORS 8

typedef struct tpfc tpfc;

/* Local views of params or grads, in model.h's tensor order. F and V are
 * the local blocks of F^T [n_in x n] and V^T [n x n] (dist_mat); the others
 * are whole and replicated. */
typedef struct {
    float *F, *Fb, *bn_w, *bn_b, *V, *g, *Wo, *bo;
} tpfc_tensors;

struct tpfc {
    int n_in, n, n_out, T;
    float vth, leak, dropout;
    int ref; /* model.fidelity = reference (model.h) */
    dist_grid grid;
    dist_mat Fd, Vd; /* descriptors of F^T and V^T over params; dFd, dVd over grads */
    dist_mat dFd, dVd;
    size_t n_params;       /* local floats of params (and of grads) */
    float *params, *grads; /* owned */
    tpfc_tensors p, d;
    size_t off[TPFC_N_TENSORS]; /* offsets of the tensors in params */
    float *bn_mean, *bn_var;    /* [n] running statistics */
    float *sn_u, *sn_v;         /* [n] power-iteration vectors */
    float *ev_u, *ev_v;         /* [n] tpfc_prepare_eval's copies */
    float sigma;                /* last estimate of sigma(V) */
    struct tpfc_ws *ws;         /* per-batch buffers (owned) */
};

/* A model for inputs of n_in values, n = cfg->model_hidden neurons and n_out
 * classes over the ranks of `comm` (borrowed, the group's communicator),
 * block size `block`, batches of up to Bmax samples per group. Collective. */
int tpfc_create(tpfc **t, const fsnn_cfg *cfg, int n_in, int n_out, MPI_Comm comm, int block,
                int Bmax);
void tpfc_destroy(tpfc **t);

/* model_init's initialisation (SPEC §4), the same values: each rank draws
 * only the rows it holds. 10 power iterations; g = sigma (model.fidelity =
 * fsnn: clamp(sigma)). Collective. */
int tpfc_init(tpfc *t, uint64_t seed);

/* Takes every tensor and saved state from the one-process model m (same
 * sizes): this rank's blocks of F and V, the rest whole. */
int tpfc_from_model(tpfc *t, const fsnn_model *m);

/* Writes the whole model into m (same sizes) on every rank of the group,
 * params, saved state and, with grads, the gradients. Needs the whole
 * n x n matrix in memory: tests and checkpoints. Collective. */
int tpfc_to_model(const tpfc *t, fsnn_model *m, int grads);

/* Arrays in the layout of params (parameters, gradients, optimiser state):
 * full [layout->n_params] in model.h's layout of the one-process model
 * `layout` (same sizes), local [t->n_params] in this rank's. From full to
 * local takes this rank's blocks; from local to full gathers the whole array
 * on every rank of the group (collective). */
int tpfc_local_from_full(const tpfc *t, const fsnn_model *layout, const float *full, float *local);
int tpfc_full_from_local(const tpfc *t, const fsnn_model *layout, const float *local, float *full);

/* tpfc_full_from_local onto the group's rank 0 only (full is not touched
 * elsewhere and may be NULL there): the other ranks send their blocks, so
 * only rank 0 needs room for the whole array. Collective. */
int tpfc_full_to_root(const tpfc *t, const fsnn_model *layout, const float *local, float *full);

/* Only the whole (replicated) tensors of a params-layout array, from local
 * to full: no communication; F's and V's parts of full are not touched. */
void tpfc_whole_to_full(const tpfc *t, const fsnn_model *layout, const float *local, float *full);

/* The saved state that is not a parameter (running statistics, power-
 * iteration vectors, sigma) into m: replicated, no communication. */
void tpfc_state_to_model(const tpfc *t, fsnn_model *m);

/* sigma(V) by `iters` power iterations with the persistent u, v (model_prepare_weights).
 * Collective. */
int tpfc_prepare(tpfc *t, int power_iters);

/* The same on copies of u, v (model_prepare_eval): evaluation leaves the
 * training's vectors as they were. Collective. */
int tpfc_prepare_eval(tpfc *t, int power_iters);

/* One batch of B samples (this group's; `global_batch` over all groups of
 * `red`): input branch, simulation, loss and, when `grads` is set (training:
 * batch statistics, dropout of (seed, epoch, ids)), the adjoint solve and
 * all gradients summed over the groups into t->grads. Without grads it is
 * evaluation (running statistics, no dropout). Adds to *st. Collective. */
int tpfc_batch(tpfc *t, const float *x, const uint8_t *labels, const long *ids, int B,
               long global_batch, int grads, uint32_t epoch, uint64_t seed, const reduce_ops *red,
               model_stats *st);

/* 1 when the loss and every gradient are finite on every rank of the
 * group and of red. Collective. */
int tpfc_all_finite(tpfc *t, double loss, const reduce_ops *red, int *ok);

/* After an optimiser step: g back into [-1, 1]. */
void tpfc_after_step(tpfc *t);

/* ||W||_2 estimated by `iters` power iterations from a fixed start
 * (model_spectral_norm). Collective. */
int tpfc_spectral_norm(tpfc *t, int iters, double *sigma);

/* ||W||_2 exactly: the largest singular value of V by psgesvd, times
 * |g| / sigma(V). Collective. */
int tpfc_spectral_norm_exact(tpfc *t, double *sigma);

/* The replicated per-sample buffers of the last batch (tests): a [B x n]. */
const float *tpfc_ws_a(const tpfc *t);

#endif
