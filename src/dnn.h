/* dnn: what fsnn's oneDNN primitives (dnnconv.h, dnnmm.h) share — the
 * process's CPU engine, each thread's stream, arguments held in the
 * primitive's preferred layout, and the thread count a primitive runs on.
 *
 * Primitives and streams belong to the thread that made them (neither may
 * be used by two threads at once); the engine is the process's. Nothing
 * here is part of fsnn's numerics; it is the plumbing of the two modules
 * above, which are the interface the rest of fsnn calls. */
#ifndef FSNN_DNN_H
#define FSNN_DNN_H

#include <oneapi/dnnl/dnnl.h>
#include <stddef.h>

#include "status.h"

/* Fails with the call's text and oneDNN's status. */
#define DNN(call)                                                                                  \
    do {                                                                                           \
        dnnl_status_t st_ = (call);                                                                \
        if (st_ != dnnl_success) return FAIL("oneDNN: %s failed (status %d)", #call, (int)st_);    \
    } while (0)

/* The engine (made on first use by any thread) and the calling thread's
 * stream (made on its first use). */
int dnn_start(dnnl_engine_t *engine, dnnl_stream_t *stream);

/* Frees the calling thread's stream (dnnconv_release, dnnmm_release). */
void dnn_stream_release(void);

/* 64-byte aligned memory of at least `bytes`, freed with free(). */
void *dnn_alloc(size_t bytes);

/* One argument of a primitive: the caller's plain array (user), the
 * primitive's layout of it (mem, over buf when the layouts differ) and the
 * reorder between them (which also converts float to bf16 where the
 * primitive's layout is bf16). */
typedef struct {
    dnnl_memory_t user, mem;
    dnnl_primitive_t reorder; /* user -> mem for inputs, mem -> user for outputs; NULL: same */
    void *buf;                /* owned when reorder is set */
    const void *held;         /* the array reordered in during hold number held_serial */
    unsigned long held_serial;
} dnn_arg;

/* a for plain layout `user_md` as the primitive wants it (`md`): an input
 * (reorder in) or an output (reorder out). */
int dnn_arg_init(dnn_arg *a, const dnnl_memory_desc_t *user_md, const dnnl_memory_desc_t *md,
                 int input);

/* Points a at the caller's array and, for an input in another layout,
 * reorders it in. */
int dnn_arg_bind(dnn_arg *a, const void *user, int input);

/* Reorders an output out to the caller's array (no-op when the layouts
 * are the same). */
int dnn_arg_out(dnn_arg *a);

void dnn_arg_free(dnn_arg *a);

/* Weights in the primitive's layout kept across calls. A simulation's T
 * steps multiply by the same weights; between dnn_hold_begin and
 * dnn_hold_end a primitive reorders a weight array (dnn_arg_bind_weights)
 * at its first call only, and reuses its copy while the caller passes the
 * same array. The caller promises that no weight array changes during a
 * hold. Both calls belong outside parallel regions; inside one (micro-
 * shards side by side) they do nothing and every call reorders. */
void dnn_hold_begin(void);
void dnn_hold_end(void);

/* dnn_arg_bind of an input weight array, skipping the reorder under a hold
 * as above. */
int dnn_arg_bind_weights(dnn_arg *a, const void *user);

/* oneDNN runs a kernel on omp_get_max_threads() threads and sizes its
 * barriers by that count when the kernel is made. Inside a parallel region
 * (micro-shards side by side) only the calling thread runs it, so the count
 * must be 1 there, or the kernel waits for threads that never come. In
 * serial mode (deterministic training) it is 1 as for BLAS, so that results
 * do not depend on the team, unless the map is `invariant`: the direct
 * convolutions' forward and backward-data compute each output on one
 * thread in one order, and gave the same bits on 1 and 2 threads
 * (tests/test_dnnconv.c, tests/test_bf16.c), so a lone micro-shard (a batch
 * of 32 at the default parallel.micro_batch) still uses every core. Returns
 * the count to restore with dnn_team_end. */
int dnn_team_begin(int invariant);
void dnn_team_end(int team);

/* A primitive is made for one batch size, and callers pass whatever count
 * of samples they hold (the adjoint's dense samples vary from call to
 * call): a batch runs as chunks of power-of-two sizes, largest first, so at
 * most log2(B) + 1 primitives exist per shape and map. The size of the
 * first chunk of `left` samples. */
int dnn_chunk(int left);

/* The name of the implementation behind pd (e.g. "jit:avx512_core") into
 * buf[size]. */
int dnn_impl_name(const_dnnl_primitive_desc_t pd, char *buf, size_t size);

/* 1 when the CPU runs bf16 dot products natively (AVX512_BF16) and the
 * environment does not set FSNN_NO_BF16 (which tests use to see the
 * refusal on a machine that has it). */
int dnn_has_bf16(void);

#endif
