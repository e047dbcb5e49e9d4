/* dnnconv: oneDNN's convolution primitives, cached per thread. */
#include "dnnconv.h"

#include <omp.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h" // defines: blas_is_serial
#include "status.h"

/* One argument of a primitive: the caller's plain array (user), the
 * primitive's layout of it (mem, over buf when the layouts differ) and the
 * reorder between them. */
typedef struct {
    dnnl_memory_t user, mem;
    dnnl_primitive_t reorder; /* user -> mem for inputs, mem -> user for outputs; NULL: same */
    float *buf;               /* owned when reorder is set */
} dnnconv_arg;

enum { ARG_SRC, ARG_WEI, ARG_DST, ARG_BIAS, ARG_N };

typedef struct {
    dnnconv_map map;
    conv_shape s;
    int B, bias;
    int nthr; /* the threads it was made for (dnnconv_team_begin) */
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    dnnconv_arg arg[ARG_N];
    dnnl_memory_t scratch;
    float *scratch_buf;
    float *acc; /* backward weights: dW and db of the call before they are added */
} dnnconv_entry;

/* The engine is the process's; streams and primitives are the thread's,
 * since neither may be used by two threads at once. */
static dnnl_engine_t dnnconv_engine;
static _Thread_local dnnl_stream_t dnnconv_stream;
static _Thread_local dnnconv_entry *dnnconv_cache;
static _Thread_local int dnnconv_n, dnnconv_cap;

#define DNN(call)                                                                                  \
    do {                                                                                           \
        dnnl_status_t st_ = (call);                                                                \
        if (st_ != dnnl_success) return FAIL("oneDNN: %s failed (status %d)", #call, (int)st_);    \
    } while (0)

static int dnnconv_start(void) {
    int rc = FSNN_OK;
#pragma omp critical(dnnconv_engine)
    if (!dnnconv_engine && dnnl_engine_create(&dnnconv_engine, dnnl_cpu, 0) != dnnl_success)
        rc = FAIL("oneDNN: cannot create a CPU engine");
    CHECK(rc);
    if (!dnnconv_stream)
        DNN(dnnl_stream_create(&dnnconv_stream, dnnconv_engine, dnnl_stream_default_flags));
    return FSNN_OK;
}

static float *dnnconv_alloc(size_t bytes) {
    return aligned_alloc(64, (bytes + 63) / 64 * 64);
}

/* The argument of plain layout `user_md` as the primitive wants it (`md`):
 * input (reorder in) or output (reorder out). */
static int dnnconv_arg_init(dnnconv_arg *a, const dnnl_memory_desc_t *user_md,
                            const dnnl_memory_desc_t *md, int input) {
    DNN(dnnl_memory_create(&a->user, user_md, dnnconv_engine, DNNL_MEMORY_NONE));
    if (dnnl_memory_desc_equal(user_md, md)) {
        a->mem = a->user;
        return FSNN_OK;
    }
    a->buf = dnnconv_alloc(dnnl_memory_desc_get_size(md));
    if (!a->buf) return FAIL("oneDNN: out of memory for a reordered argument");
    DNN(dnnl_memory_create(&a->mem, md, dnnconv_engine, a->buf));
    dnnl_primitive_desc_t rpd;
    DNN(input ? dnnl_reorder_primitive_desc_create(&rpd, user_md, dnnconv_engine, md,
                                                   dnnconv_engine, NULL)
              : dnnl_reorder_primitive_desc_create(&rpd, md, dnnconv_engine, user_md,
                                                   dnnconv_engine, NULL));
    dnnl_status_t st = dnnl_primitive_create(&a->reorder, rpd);
    dnnl_primitive_desc_destroy(rpd);
    DNN(st);
    return FSNN_OK;
}

static void dnnconv_arg_free(dnnconv_arg *a) {
    if (a->mem && a->mem != a->user) dnnl_memory_destroy(a->mem);
    if (a->user) dnnl_memory_destroy(a->user);
    if (a->reorder) dnnl_primitive_destroy(a->reorder);
    free(a->buf);
    memset(a, 0, sizeof *a);
}

static void dnnconv_entry_free(dnnconv_entry *e) {
    for (int i = 0; i < ARG_N; i++)
        dnnconv_arg_free(&e->arg[i]);
    if (e->scratch) dnnl_memory_destroy(e->scratch);
    if (e->prim) dnnl_primitive_destroy(e->prim);
    if (e->pd) dnnl_primitive_desc_destroy(e->pd);
    free(e->scratch_buf);
    free(e->acc);
}

/* The plain descriptors of the map's arrays: x (or dx), the weights, y (or
 * dy), the bias. */
static int dnnconv_plain(const conv_shape *s, int B, dnnl_memory_desc_t md[ARG_N]) {
    const dnnl_dims_t src = {B, s->C, s->H, s->W}, wei = {s->O, s->C, s->k, s->k},
                      dst = {B, s->O, s->Ho, s->Wo}, bias = {s->O};
    DNN(dnnl_memory_desc_init_by_tag(&md[ARG_SRC], 4, src, dnnl_f32, dnnl_nchw));
    DNN(dnnl_memory_desc_init_by_tag(&md[ARG_WEI], 4, wei, dnnl_f32, dnnl_oihw));
    DNN(dnnl_memory_desc_init_by_tag(&md[ARG_DST], 4, dst, dnnl_f32, dnnl_nchw));
    DNN(dnnl_memory_desc_init_by_tag(&md[ARG_BIAS], 1, bias, dnnl_f32, dnnl_a));
    return FSNN_OK;
}

/* The forward descriptor of s (also the hint of the backward maps). */
static int dnnconv_fwd_desc(const conv_shape *s, int B, int bias, dnnl_convolution_desc_t *cd) {
    dnnl_memory_desc_t any[ARG_N];
    const dnnl_dims_t src = {B, s->C, s->H, s->W}, wei = {s->O, s->C, s->k, s->k},
                      dst = {B, s->O, s->Ho, s->Wo}, b = {s->O};
    DNN(dnnl_memory_desc_init_by_tag(&any[ARG_SRC], 4, src, dnnl_f32, dnnl_format_tag_any));
    DNN(dnnl_memory_desc_init_by_tag(&any[ARG_WEI], 4, wei, dnnl_f32, dnnl_format_tag_any));
    DNN(dnnl_memory_desc_init_by_tag(&any[ARG_DST], 4, dst, dnnl_f32, dnnl_format_tag_any));
    DNN(dnnl_memory_desc_init_by_tag(&any[ARG_BIAS], 1, b, dnnl_f32, dnnl_format_tag_any));
    /* Padding on the right so that the output has Ho x Wo (floor division). */
    const dnnl_dims_t strides = {s->stride, s->stride}, pl = {s->pad, s->pad},
                      pr = {(s->Ho - 1) * s->stride + s->k - s->H - s->pad,
                            (s->Wo - 1) * s->stride + s->k - s->W - s->pad};
    DNN(dnnl_convolution_forward_desc_init(
        cd, dnnl_forward_training, dnnl_convolution_direct, &any[ARG_SRC], &any[ARG_WEI],
        bias ? &any[ARG_BIAS] : NULL, &any[ARG_DST], strides, pl, pr));
    return FSNN_OK;
}

/* The primitive descriptor of `map`: forward, or a backward map hinted by
 * the forward one. */
static int dnnconv_pd(const conv_shape *s, dnnconv_map map, int B, int bias,
                      dnnl_primitive_desc_t *pd) {
    dnnl_convolution_desc_t fwd;
    CHECK(dnnconv_fwd_desc(s, B, bias, &fwd));
    dnnl_primitive_attr_t attr;
    DNN(dnnl_primitive_attr_create(&attr));
    /* The scratchpad is the entry's own: primitives of different threads
     * never share one. */
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    dnnl_primitive_desc_t hint = NULL;
    dnnl_status_t st = dnnl_primitive_desc_create(map == DNNCONV_FORWARD ? pd : &hint, &fwd, attr,
                                                  dnnconv_engine, NULL);
    if (st == dnnl_success && map != DNNCONV_FORWARD) {
        dnnl_convolution_desc_t bwd;
        const dnnl_memory_desc_t *src = &fwd.src_desc, *wei = &fwd.weights_desc,
                                 *dst = &fwd.dst_desc;
        if (map == DNNCONV_BACKWARD_DATA)
            st = dnnl_convolution_backward_data_desc_init(&bwd, dnnl_convolution_direct, src, wei,
                                                          dst, fwd.strides, fwd.padding[0],
                                                          fwd.padding[1]);
        else
            st = dnnl_convolution_backward_weights_desc_init(
                &bwd, dnnl_convolution_direct, src, wei, bias ? &fwd.bias_desc : NULL, dst,
                fwd.strides, fwd.padding[0], fwd.padding[1]);
        if (st == dnnl_success)
            st = dnnl_primitive_desc_create(pd, &bwd, attr, dnnconv_engine, hint);
        dnnl_primitive_desc_destroy(hint);
    }
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success) return FAIL("oneDNN: no convolution for this shape (status %d)", st);
    return FSNN_OK;
}

/* The primitive's layouts of its arguments, which ones it reads, and the
 * queries that name them. */
static int dnnconv_args(dnnconv_entry *e) {
    dnnl_memory_desc_t plain[ARG_N];
    CHECK(dnnconv_plain(&e->s, e->B, plain));
    static const struct {
        dnnl_query_t q[3]; /* per map */
        int input[3];
    } roles[ARG_N] = {
        {{dnnl_query_src_md, dnnl_query_diff_src_md, dnnl_query_src_md}, {1, 0, 1}},
        {{dnnl_query_weights_md, dnnl_query_weights_md, dnnl_query_diff_weights_md}, {1, 1, 0}},
        {{dnnl_query_dst_md, dnnl_query_diff_dst_md, dnnl_query_diff_dst_md}, {0, 1, 1}},
        {{dnnl_query_weights_md, dnnl_query_undef, dnnl_query_diff_weights_md}, {1, 0, 0}},
    };
    for (int i = 0; i < ARG_N; i++) {
        if (i == ARG_BIAS && (!e->bias || e->map == DNNCONV_BACKWARD_DATA)) continue;
        const dnnl_memory_desc_t *md =
            dnnl_primitive_desc_query_md(e->pd, roles[i].q[e->map], i == ARG_BIAS ? 1 : 0);
        if (!md) return FAIL("oneDNN: the convolution does not describe argument %d", i);
        CHECK(dnnconv_arg_init(&e->arg[i], &plain[i], md, roles[i].input[e->map]));
    }
    const dnnl_memory_desc_t *sp = dnnl_primitive_desc_query_md(e->pd, dnnl_query_scratchpad_md, 0);
    size_t bytes = sp ? dnnl_memory_desc_get_size(sp) : 0;
    if (bytes > 0) {
        e->scratch_buf = dnnconv_alloc(bytes);
        if (!e->scratch_buf) return FAIL("oneDNN: out of memory for a scratchpad");
        DNN(dnnl_memory_create(&e->scratch, sp, dnnconv_engine, e->scratch_buf));
    }
    if (e->map == DNNCONV_BACKWARD_WEIGHTS) {
        size_t n = (size_t)e->s.O * e->s.C * e->s.k * e->s.k + (size_t)e->s.O;
        e->acc = dnnconv_alloc(sizeof(float) * n);
        if (!e->acc) return FAIL("oneDNN: out of memory for the weight gradient");
    }
    return FSNN_OK;
}

/* The calling thread's primitive for (map, s, B, bias), made at first use. */
static int dnnconv_get(const conv_shape *s, dnnconv_map map, int B, int bias, dnnconv_entry **out) {
    CHECK(dnnconv_start());
    const int nthr = omp_get_max_threads();
    for (int i = 0; i < dnnconv_n; i++) {
        dnnconv_entry *e = &dnnconv_cache[i];
        if (e->map == map && e->B == B && e->bias == bias && e->nthr == nthr &&
            !memcmp(&e->s, s, sizeof *s)) {
            *out = e;
            return FSNN_OK;
        }
    }
    if (dnnconv_n == dnnconv_cap) {
        int cap = dnnconv_cap ? 2 * dnnconv_cap : 8;
        dnnconv_entry *c = realloc(dnnconv_cache, sizeof *c * (size_t)cap);
        if (!c) return FAIL("oneDNN: out of memory for the primitive cache");
        dnnconv_cache = c;
        dnnconv_cap = cap;
    }
    dnnconv_entry *e = &dnnconv_cache[dnnconv_n];
    memset(e, 0, sizeof *e);
    e->map = map;
    e->s = *s;
    e->B = B;
    e->bias = bias;
    e->nthr = nthr;
    int rc = dnnconv_pd(s, map, B, bias, &e->pd);
    if (rc == 0 && dnnl_primitive_create(&e->prim, e->pd) != dnnl_success)
        rc = FAIL("oneDNN: cannot create the convolution primitive");
    if (rc == 0) rc = dnnconv_args(e);
    if (rc) {
        dnnconv_entry_free(e);
        return rc;
    }
    dnnconv_n++;
    *out = e;
    return FSNN_OK;
}

/* Points argument i at the caller's array and, for an input in another
 * layout, reorders it in. */
static int dnnconv_bind(dnnconv_entry *e, int i, const float *user, int input) {
    dnnconv_arg *a = &e->arg[i];
    DNN(dnnl_memory_set_data_handle(a->user, (void *)user));
    if (!input || !a->reorder) return FSNN_OK;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, a->user}, {DNNL_ARG_TO, a->mem}};
    DNN(dnnl_primitive_execute(a->reorder, dnnconv_stream, 2, args));
    return FSNN_OK;
}

/* Runs the primitive on its bound arguments, then reorders the outputs out. */
static int dnnconv_run(dnnconv_entry *e, const int tags[ARG_N], const int outputs[ARG_N]) {
    dnnl_exec_arg_t args[ARG_N + 1];
    int n = 0;
    for (int i = 0; i < ARG_N; i++)
        if (e->arg[i].mem) args[n++] = (dnnl_exec_arg_t){tags[i], e->arg[i].mem};
    if (e->scratch) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, e->scratch};
    DNN(dnnl_primitive_execute(e->prim, dnnconv_stream, n, args));
    for (int i = 0; i < ARG_N; i++) {
        dnnconv_arg *a = &e->arg[i];
        if (!outputs[i] || !a->reorder) continue;
        dnnl_exec_arg_t r[2] = {{DNNL_ARG_FROM, a->mem}, {DNNL_ARG_TO, a->user}};
        DNN(dnnl_primitive_execute(a->reorder, dnnconv_stream, 2, r));
    }
    DNN(dnnl_stream_wait(dnnconv_stream));
    return FSNN_OK;
}

static int dnnconv_forward_run(const conv_shape *s, const float *x, const float *Wt, const float *b,
                               float *y, int B) {
    dnnconv_entry *e;
    CHECK(dnnconv_get(s, DNNCONV_FORWARD, B, b != NULL, &e));
    CHECK(dnnconv_bind(e, ARG_SRC, x, 1));
    CHECK(dnnconv_bind(e, ARG_WEI, Wt, 1));
    CHECK(dnnconv_bind(e, ARG_DST, y, 0));
    if (b) CHECK(dnnconv_bind(e, ARG_BIAS, b, 1));
    static const int tags[ARG_N] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS};
    static const int outputs[ARG_N] = {0, 0, 1, 0};
    return dnnconv_run(e, tags, outputs);
}

static int dnnconv_backward_data_run(const conv_shape *s, const float *Wt, const float *dy,
                                     float *dx, int B) {
    dnnconv_entry *e;
    CHECK(dnnconv_get(s, DNNCONV_BACKWARD_DATA, B, 0, &e));
    CHECK(dnnconv_bind(e, ARG_SRC, dx, 0));
    CHECK(dnnconv_bind(e, ARG_WEI, Wt, 1));
    CHECK(dnnconv_bind(e, ARG_DST, dy, 1));
    static const int tags[ARG_N] = {DNNL_ARG_DIFF_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_DST, 0};
    static const int outputs[ARG_N] = {1, 0, 0, 0};
    return dnnconv_run(e, tags, outputs);
}

static int dnnconv_backward_weights_run(const conv_shape *s, const float *x, const float *dy,
                                        float *dW, float *db, int B) {
    dnnconv_entry *e;
    CHECK(dnnconv_get(s, DNNCONV_BACKWARD_WEIGHTS, B, db != NULL, &e));
    const size_t nw = (size_t)s->O * s->C * s->k * s->k;
    CHECK(dnnconv_bind(e, ARG_SRC, x, 1));
    CHECK(dnnconv_bind(e, ARG_WEI, e->acc, 0));
    CHECK(dnnconv_bind(e, ARG_DST, dy, 1));
    if (db) CHECK(dnnconv_bind(e, ARG_BIAS, e->acc + nw, 0));
    static const int tags[ARG_N] = {DNNL_ARG_SRC, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_DST,
                                    DNNL_ARG_DIFF_BIAS};
    static const int outputs[ARG_N] = {0, 1, 0, 1};
    CHECK(dnnconv_run(e, tags, outputs));
    /* oneDNN writes the gradient; conv_vjp's contract adds it. */
    for (size_t i = 0; i < nw; i++)
        dW[i] += e->acc[i];
    for (int o = 0; db && o < s->O; o++)
        db[o] += e->acc[nw + (size_t)o];
    return FSNN_OK;
}

/* oneDNN runs a kernel on omp_get_max_threads() threads and sizes its
 * barriers by that count when the kernel is made. Inside a parallel region
 * (micro-shards side by side) only the calling thread runs it, so the count
 * must be 1 there, or the kernel waits for threads that never come; in
 * serial mode (deterministic training) it is 1 as for BLAS, so that results
 * do not depend on the team. Returns the count to restore. */
static int dnnconv_team_begin(void) {
    int team = omp_get_max_threads();
    if (omp_in_parallel() || blas_is_serial()) omp_set_num_threads(1);
    return team;
}

static void dnnconv_team_end(int team) {
    if (omp_get_max_threads() != team) omp_set_num_threads(team);
}

int dnnconv_forward(const conv_shape *s, const float *x, const float *Wt, const float *b, float *y,
                    int B) {
    int team = dnnconv_team_begin();
    int rc = dnnconv_forward_run(s, x, Wt, b, y, B);
    dnnconv_team_end(team);
    return rc;
}

int dnnconv_backward_data(const conv_shape *s, const float *Wt, const float *dy, float *dx, int B) {
    int team = dnnconv_team_begin();
    int rc = dnnconv_backward_data_run(s, Wt, dy, dx, B);
    dnnconv_team_end(team);
    return rc;
}

int dnnconv_backward_weights(const conv_shape *s, const float *x, const float *dy, float *dW,
                             float *db, int B) {
    int team = dnnconv_team_begin();
    int rc = dnnconv_backward_weights_run(s, x, dy, dW, db, B);
    dnnconv_team_end(team);
    return rc;
}

int dnnconv_impl(const conv_shape *s, dnnconv_map map, int B, char *buf, size_t size) {
    dnnconv_entry *e;
    int team = dnnconv_team_begin();
    int rc = dnnconv_get(s, map, B, 0, &e);
    dnnconv_team_end(team);
    CHECK(rc);
    const char *name = NULL;
    DNN(dnnl_primitive_desc_query(e->pd, dnnl_query_impl_info_str, 0, &name));
    snprintf(buf, size, "%s", name ? name : "?");
    return FSNN_OK;
}

void dnnconv_release(void) {
    for (int i = 0; i < dnnconv_n; i++)
        dnnconv_entry_free(&dnnconv_cache[i]);
    free(dnnconv_cache);
    dnnconv_cache = NULL;
    dnnconv_n = dnnconv_cap = 0;
    if (dnnconv_stream) dnnl_stream_destroy(dnnconv_stream);
    dnnconv_stream = NULL;
}
