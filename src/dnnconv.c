/* dnnconv: oneDNN's convolution primitives, cached per thread. */
#include "dnnconv.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "dnn.h"

enum { ARG_SRC, ARG_WEI, ARG_DST, ARG_BIAS, ARG_N };

typedef struct {
    dnnconv_map map;
    conv_shape s;
    int B, bias;
    int bf16;       /* 1: source (spikes) and weights enter as bf16, the output leaves as float */
    int bsrc, bdst; /* the caller's x (dx) and y (dy) in the blocked layout (dnnconv.h) */
    int nthr;       /* the threads it was made for (dnnconv_team_begin) */
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    dnn_arg arg[ARG_N];
    dnnl_memory_t scratch;
    float *scratch_buf;
    float *acc; /* backward weights: dW and db of the call before they are added */
} dnnconv_entry;

static _Thread_local dnnl_engine_t dnnconv_engine;
static _Thread_local dnnl_stream_t dnnconv_stream;
static _Thread_local dnnconv_entry *dnnconv_cache;
static _Thread_local int dnnconv_n, dnnconv_cap;

static void dnnconv_entry_free(dnnconv_entry *e) {
    for (int i = 0; i < ARG_N; i++)
        dnn_arg_free(&e->arg[i]);
    if (e->scratch) dnnl_memory_destroy(e->scratch);
    if (e->prim) dnnl_primitive_destroy(e->prim);
    if (e->pd) dnnl_primitive_desc_destroy(e->pd);
    free(e->scratch_buf);
    free(e->acc);
}

/* The descriptors of the caller's arrays: x (or dx), the weights, y (or
 * dy), the bias; x and y NCHW, or blocked where bsrc, bdst say. */
static int dnnconv_plain(const conv_shape *s, int B, int bsrc, int bdst,
                         dnnl_memory_desc_t md[ARG_N]) {
    const dnnl_dims_t src = {B, s->C, s->H, s->W}, wei = {s->O, s->C, s->k, s->k},
                      dst = {B, s->O, s->Ho, s->Wo}, bias = {s->O};
    DNN(dnnl_memory_desc_init_by_tag(&md[ARG_SRC], 4, src, dnnl_f32,
                                     bsrc ? dnnl_nChw16c : dnnl_nchw));
    DNN(dnnl_memory_desc_init_by_tag(&md[ARG_WEI], 4, wei, dnnl_f32, dnnl_oihw));
    DNN(dnnl_memory_desc_init_by_tag(&md[ARG_DST], 4, dst, dnnl_f32,
                                     bdst ? dnnl_nChw16c : dnnl_nchw));
    DNN(dnnl_memory_desc_init_by_tag(&md[ARG_BIAS], 1, bias, dnnl_f32, dnnl_a));
    return FSNN_OK;
}

/* The forward descriptor of s (also the hint of the backward maps). bf16:
 * 0 all float; 1 bf16 source and weights, float output (the forward map of
 * spikes); 2 all bf16 (the hint of the backward-data map of spikes, whose
 * own output is then made float). */
static int dnnconv_fwd_desc(const conv_shape *s, int B, int bias, int bf16,
                            dnnl_convolution_desc_t *cd) {
    dnnl_memory_desc_t any[ARG_N];
    const dnnl_data_type_t in = bf16 ? dnnl_bf16 : dnnl_f32;
    const dnnl_dims_t src = {B, s->C, s->H, s->W}, wei = {s->O, s->C, s->k, s->k},
                      dst = {B, s->O, s->Ho, s->Wo}, b = {s->O};
    /* In bf16 the spikes and the weights are the inputs that are rounded:
     * the source of the forward map, the diff_dst of the backward-data map
     * (a transposed conv's input). */
    DNN(dnnl_memory_desc_init_by_tag(&any[ARG_SRC], 4, src, in, dnnl_format_tag_any));
    DNN(dnnl_memory_desc_init_by_tag(&any[ARG_WEI], 4, wei, in, dnnl_format_tag_any));
    DNN(dnnl_memory_desc_init_by_tag(&any[ARG_DST], 4, dst, bf16 == 1 ? dnnl_f32 : in,
                                     dnnl_format_tag_any));
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
static int dnnconv_pd(const conv_shape *s, dnnconv_map map, int B, int bias, int bf16,
                      dnnl_primitive_desc_t *pd) {
    dnnl_convolution_desc_t fwd;
    CHECK(dnnconv_fwd_desc(s, B, bias, bf16 && map == DNNCONV_BACKWARD_DATA ? 2 : bf16, &fwd));
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
        dnnl_memory_desc_t src32;
        if (bf16) { /* backward data of bf16 spikes: the result in float */
            const dnnl_dims_t d = {B, s->C, s->H, s->W};
            DNN(dnnl_memory_desc_init_by_tag(&src32, 4, d, dnnl_f32, dnnl_format_tag_any));
            src = &src32;
        }
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
    CHECK(dnnconv_plain(&e->s, e->B, e->bsrc, e->bdst, plain));
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
        CHECK(dnn_arg_init(&e->arg[i], &plain[i], md, roles[i].input[e->map]));
    }
    const dnnl_memory_desc_t *sp = dnnl_primitive_desc_query_md(e->pd, dnnl_query_scratchpad_md, 0);
    size_t bytes = sp ? dnnl_memory_desc_get_size(sp) : 0;
    if (bytes > 0) {
        e->scratch_buf = dnn_alloc(bytes);
        if (!e->scratch_buf) return FAIL("oneDNN: out of memory for a scratchpad");
        DNN(dnnl_memory_create(&e->scratch, sp, dnnconv_engine, e->scratch_buf));
    }
    if (e->map == DNNCONV_BACKWARD_WEIGHTS) {
        size_t n = (size_t)e->s.O * e->s.C * e->s.k * e->s.k + (size_t)e->s.O;
        e->acc = dnn_alloc(sizeof(float) * n);
        if (!e->acc) return FAIL("oneDNN: out of memory for the weight gradient");
    }
    return FSNN_OK;
}

/* The calling thread's primitive for (map, s, B, bias, bf16) with the
 * caller's arrays in the layouts lay (bit 0: x or dx blocked, bit 1: y or
 * dy), made at first use. */
static int dnnconv_get(const conv_shape *s, dnnconv_map map, int B, int bias, int bf16, int lay,
                       dnnconv_entry **out) {
    CHECK(dnn_start(&dnnconv_engine, &dnnconv_stream));
    const int nthr = omp_get_max_threads();
    for (int i = 0; i < dnnconv_n; i++) {
        dnnconv_entry *e = &dnnconv_cache[i];
        if (e->map == map && e->B == B && e->bias == bias && e->bf16 == bf16 && e->nthr == nthr &&
            e->bsrc == (lay & 1) && e->bdst == (lay >> 1 & 1) && !memcmp(&e->s, s, sizeof *s)) {
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
    e->bf16 = bf16;
    e->bsrc = lay & 1;
    e->bdst = lay >> 1 & 1;
    e->nthr = nthr;
    int rc = dnnconv_pd(s, map, B, bias, bf16, &e->pd);
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

/* Runs the primitive on its bound arguments, then reorders the outputs out. */
static int dnnconv_run(dnnconv_entry *e, const int tags[ARG_N], const int outputs[ARG_N]) {
    dnnl_exec_arg_t args[ARG_N + 1];
    int n = 0;
    for (int i = 0; i < ARG_N; i++)
        if (e->arg[i].mem) args[n++] = (dnnl_exec_arg_t){tags[i], e->arg[i].mem};
    if (e->scratch) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, e->scratch};
    DNN(dnnl_primitive_execute(e->prim, dnnconv_stream, n, args));
    for (int i = 0; i < ARG_N; i++)
        if (outputs[i]) CHECK(dnn_arg_out(&e->arg[i]));
    DNN(dnnl_stream_wait(dnnconv_stream));
    return FSNN_OK;
}

static int dnnconv_forward_run(const conv_shape *s, const float *x, const float *Wt, const float *b,
                               float *y, int B, int bf16, int lay) {
    dnnconv_entry *e;
    CHECK(dnnconv_get(s, DNNCONV_FORWARD, B, b != NULL, bf16, lay, &e));
    CHECK(dnn_arg_bind(&e->arg[ARG_SRC], x, 1));
    CHECK(dnn_arg_bind_weights(&e->arg[ARG_WEI], Wt));
    CHECK(dnn_arg_bind(&e->arg[ARG_DST], y, 0));
    if (b) CHECK(dnn_arg_bind(&e->arg[ARG_BIAS], b, 1));
    static const int tags[ARG_N] = {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST, DNNL_ARG_BIAS};
    static const int outputs[ARG_N] = {0, 0, 1, 0};
    return dnnconv_run(e, tags, outputs);
}

static int dnnconv_backward_data_run(const conv_shape *s, const float *Wt, const float *dy,
                                     float *dx, int B, int bf16, int lay) {
    dnnconv_entry *e;
    CHECK(dnnconv_get(s, DNNCONV_BACKWARD_DATA, B, 0, bf16, lay, &e));
    CHECK(dnn_arg_bind(&e->arg[ARG_SRC], dx, 0));
    CHECK(dnn_arg_bind_weights(&e->arg[ARG_WEI], Wt));
    CHECK(dnn_arg_bind(&e->arg[ARG_DST], dy, 1));
    static const int tags[ARG_N] = {DNNL_ARG_DIFF_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_DST, 0};
    static const int outputs[ARG_N] = {1, 0, 0, 0};
    return dnnconv_run(e, tags, outputs);
}

static int dnnconv_backward_weights_run(const conv_shape *s, const float *x, const float *dy,
                                        float *dW, float *db, int B) {
    dnnconv_entry *e;
    CHECK(dnnconv_get(s, DNNCONV_BACKWARD_WEIGHTS, B, db != NULL, 0, 0, &e));
    const size_t nw = (size_t)s->O * s->C * s->k * s->k;
    CHECK(dnn_arg_bind(&e->arg[ARG_SRC], x, 1));
    CHECK(dnn_arg_bind(&e->arg[ARG_WEI], e->acc, 0));
    CHECK(dnn_arg_bind(&e->arg[ARG_DST], dy, 1));
    if (db) CHECK(dnn_arg_bind(&e->arg[ARG_BIAS], e->acc + nw, 0));
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

/* Each map runs a batch as dnn_chunk's power-of-two chunks (the blocked
 * layout, like NCHW, holds sample after sample). */
static int dnnconv_forward_lay(const conv_shape *s, const float *x, const float *Wt, const float *b,
                               float *y, int B, int bf16, int lay) {
    const long in = (long)s->C * s->H * s->W, out = (long)s->O * s->Ho * s->Wo;
    int team = dnn_team_begin(1), rc = FSNN_OK;
    for (int b0 = 0, c; rc == FSNN_OK && b0 < B; b0 += c) {
        c = dnn_chunk(B - b0);
        rc = dnnconv_forward_run(s, x + b0 * in, Wt, b, y + b0 * out, c, bf16 != 0, lay);
    }
    dnn_team_end(team);
    return rc;
}

static int dnnconv_backward_data_lay(const conv_shape *s, const float *Wt, const float *dy,
                                     float *dx, int B, int bf16, int lay) {
    const long in = (long)s->C * s->H * s->W, out = (long)s->O * s->Ho * s->Wo;
    int team = dnn_team_begin(1), rc = FSNN_OK;
    for (int b0 = 0, c; rc == FSNN_OK && b0 < B; b0 += c) {
        c = dnn_chunk(B - b0);
        rc = dnnconv_backward_data_run(s, Wt, dy + b0 * out, dx + b0 * in, c, bf16 != 0, lay);
    }
    dnn_team_end(team);
    return rc;
}

int dnnconv_forward_prec(const conv_shape *s, const float *x, const float *Wt, const float *b,
                         float *y, int B, int bf16) {
    return dnnconv_forward_lay(s, x, Wt, b, y, B, bf16, 0);
}

int dnnconv_forward(const conv_shape *s, const float *x, const float *Wt, const float *b, float *y,
                    int B) {
    return dnnconv_forward_lay(s, x, Wt, b, y, B, 0, 0);
}

int dnnconv_backward_data_prec(const conv_shape *s, const float *Wt, const float *dy, float *dx,
                               int B, int bf16) {
    return dnnconv_backward_data_lay(s, Wt, dy, dx, B, bf16, 0);
}

int dnnconv_backward_data(const conv_shape *s, const float *Wt, const float *dy, float *dx, int B) {
    return dnnconv_backward_data_lay(s, Wt, dy, dx, B, 0, 0);
}

int dnnconv_blocks(int C) {
    return C % DNNCONV_BLOCK == 0;
}

int dnnconv_forward_blocked(const conv_shape *s, const float *x, const float *Wt, float *y, int B,
                            int y_blocked) {
    return dnnconv_forward_lay(s, x, Wt, NULL, y, B, 0, 1 | (y_blocked ? 2 : 0));
}

int dnnconv_backward_data_blocked(const conv_shape *s, const float *Wt, const float *dy, float *dx,
                                  int B, int dx_blocked) {
    return dnnconv_backward_data_lay(s, Wt, dy, dx, B, 0, 2 | (dx_blocked ? 1 : 0));
}

/* x in NCHW to y blocked (to_blocked), or x blocked to y in NCHW: tile
 * (b, j) of 16 channels is [16 x hw] in NCHW and [hw x 16] blocked. */
static void dnnconv_relayout(const float *x, float *y, int B, int C, int hw, int to_blocked) {
    const int nb = C / DNNCONV_BLOCK;
#pragma omp parallel for collapse(2) schedule(static) if ((long)B * C * hw > BLAS_PARALLEL_MIN)
    for (int b = 0; b < B; b++)
        for (int j = 0; j < nb; j++) {
            const long o = ((long)b * C + (long)j * DNNCONV_BLOCK) * hw;
            for (int q = 0; q < hw; q++)
                for (int i = 0; i < DNNCONV_BLOCK; i++) {
                    const long plain = o + (long)i * hw + q,
                               blocked = o + (long)q * DNNCONV_BLOCK + i;
                    if (to_blocked)
                        y[blocked] = x[plain];
                    else
                        y[plain] = x[blocked];
                }
        }
}

void dnnconv_block(const float *x, float *y, int B, int C, int hw) {
    dnnconv_relayout(x, y, B, C, hw, 1);
}

void dnnconv_unblock(const float *x, float *y, int B, int C, int hw) {
    dnnconv_relayout(x, y, B, C, hw, 0);
}

int dnnconv_backward_weights(const conv_shape *s, const float *x, const float *dy, float *dW,
                             float *db, int B) {
    const long in = (long)s->C * s->H * s->W, out = (long)s->O * s->Ho * s->Wo;
    int team = dnn_team_begin(0), rc = FSNN_OK;
    for (int b0 = 0, c; rc == FSNN_OK && b0 < B; b0 += c) {
        c = dnn_chunk(B - b0);
        rc = dnnconv_backward_weights_run(s, x + b0 * in, dy + b0 * out, dW, db, c);
    }
    dnn_team_end(team);
    return rc;
}

int dnnconv_impl(const conv_shape *s, dnnconv_map map, int B, int bf16, char *buf, size_t size) {
    dnnconv_entry *e;
    int team = dnn_team_begin(map != DNNCONV_BACKWARD_WEIGHTS);
    int rc = dnnconv_get(s, map, dnn_chunk(B), 0, bf16 != 0, 0, &e);
    dnn_team_end(team);
    CHECK(rc);
    return dnn_impl_name(e->pd, buf, size);
}

void dnnconv_release(void) {
    for (int i = 0; i < dnnconv_n; i++)
        dnnconv_entry_free(&dnnconv_cache[i]);
    free(dnnconv_cache);
    dnnconv_cache = NULL;
    dnnconv_n = dnnconv_cap = 0;
    dnn_stream_release();
    dnnconv_stream = NULL;
}
