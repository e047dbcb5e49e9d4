/* dnnmm: bf16 spike products on oneDNN's matmul, cached per thread. */
#include "dnnmm.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnn.h"

enum { MM_SRC, MM_WEI, MM_DST, MM_N };

typedef struct {
    int B, in, out, nthr;
    dnnl_primitive_desc_t pd;
    dnnl_primitive_t prim;
    dnn_arg arg[MM_N];
    dnnl_memory_t scratch;
    void *scratch_buf;
} dnnmm_entry;

static _Thread_local dnnmm_entry *dnnmm_cache;
static _Thread_local int dnnmm_n, dnnmm_cap;

static void dnnmm_entry_free(dnnmm_entry *e) {
    for (int i = 0; i < MM_N; i++)
        dnn_arg_free(&e->arg[i]);
    if (e->scratch) dnnl_memory_destroy(e->scratch);
    if (e->prim) dnnl_primitive_destroy(e->prim);
    if (e->pd) dnnl_primitive_desc_destroy(e->pd);
    free(e->scratch_buf);
}

/* The primitive: bf16 s [B x in] times bf16 W^T [in x out] into float
 * [B x out]; the weights' layout is oneDNN's choice (reordered in from the
 * caller's [out x in], i.e. [in x out] with tag ba). */
static int dnnmm_make(dnnmm_entry *e, dnnl_engine_t eng) {
    const dnnl_dims_t src = {e->B, e->in}, wei = {e->in, e->out}, dst = {e->B, e->out};
    dnnl_memory_desc_t md[MM_N], plain[MM_N];
    DNN(dnnl_memory_desc_init_by_tag(&md[MM_SRC], 2, src, dnnl_bf16, dnnl_ab));
    DNN(dnnl_memory_desc_init_by_tag(&md[MM_WEI], 2, wei, dnnl_bf16, dnnl_format_tag_any));
    DNN(dnnl_memory_desc_init_by_tag(&md[MM_DST], 2, dst, dnnl_f32, dnnl_ab));
    DNN(dnnl_memory_desc_init_by_tag(&plain[MM_SRC], 2, src, dnnl_f32, dnnl_ab));
    DNN(dnnl_memory_desc_init_by_tag(&plain[MM_WEI], 2, wei, dnnl_f32, dnnl_ba));
    plain[MM_DST] = md[MM_DST];
    dnnl_matmul_desc_t mm;
    DNN(dnnl_matmul_desc_init(&mm, &md[MM_SRC], &md[MM_WEI], NULL, &md[MM_DST]));
    dnnl_primitive_attr_t attr;
    DNN(dnnl_primitive_attr_create(&attr));
    dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user);
    dnnl_status_t st = dnnl_primitive_desc_create(&e->pd, &mm, attr, eng, NULL);
    dnnl_primitive_attr_destroy(attr);
    if (st != dnnl_success)
        return FAIL("oneDNN: no bf16 matmul for %d x %d (status %d)", e->in, e->out, st);
    DNN(dnnl_primitive_create(&e->prim, e->pd));
    static const dnnl_query_t q[MM_N] = {dnnl_query_src_md, dnnl_query_weights_md,
                                         dnnl_query_dst_md};
    for (int i = 0; i < MM_N; i++) {
        const dnnl_memory_desc_t *pmd = dnnl_primitive_desc_query_md(e->pd, q[i], 0);
        if (!pmd) return FAIL("oneDNN: the matmul does not describe argument %d", i);
        CHECK(dnn_arg_init(&e->arg[i], &plain[i], pmd, i != MM_DST));
    }
    const dnnl_memory_desc_t *sp = dnnl_primitive_desc_query_md(e->pd, dnnl_query_scratchpad_md, 0);
    size_t bytes = sp ? dnnl_memory_desc_get_size(sp) : 0;
    if (bytes > 0) {
        e->scratch_buf = dnn_alloc(bytes);
        if (!e->scratch_buf) return FAIL("oneDNN: out of memory for a scratchpad");
        DNN(dnnl_memory_create(&e->scratch, sp, eng, e->scratch_buf));
    }
    return FSNN_OK;
}

/* The calling thread's primitive for (B, in, out), made at first use. */
static int dnnmm_get(int B, int in, int out, dnnmm_entry **res, dnnl_stream_t *stream) {
    dnnl_engine_t eng;
    CHECK(dnn_start(&eng, stream));
    const int nthr = omp_get_max_threads();
    for (int i = 0; i < dnnmm_n; i++) {
        dnnmm_entry *e = &dnnmm_cache[i];
        if (e->B == B && e->in == in && e->out == out && e->nthr == nthr) {
            *res = e;
            return FSNN_OK;
        }
    }
    if (dnnmm_n == dnnmm_cap) {
        int cap = dnnmm_cap ? 2 * dnnmm_cap : 8;
        dnnmm_entry *c = realloc(dnnmm_cache, sizeof *c * (size_t)cap);
        if (!c) return FAIL("oneDNN: out of memory for the matmul cache");
        dnnmm_cache = c;
        dnnmm_cap = cap;
    }
    dnnmm_entry *e = &dnnmm_cache[dnnmm_n];
    memset(e, 0, sizeof *e);
    *e = (dnnmm_entry){.B = B, .in = in, .out = out, .nthr = nthr};
    int rc = dnnmm_make(e, eng);
    if (rc) {
        dnnmm_entry_free(e);
        return rc;
    }
    dnnmm_n++;
    *res = e;
    return FSNN_OK;
}

static int dnnmm_run(const float *s, const float *W, float *cur, int B, int in, int out) {
    dnnmm_entry *e;
    dnnl_stream_t stream;
    CHECK(dnnmm_get(B, in, out, &e, &stream));
    CHECK(dnn_arg_bind(&e->arg[MM_SRC], s, 1));
    CHECK(dnn_arg_bind_weights(&e->arg[MM_WEI], W));
    CHECK(dnn_arg_bind(&e->arg[MM_DST], cur, 0));
    dnnl_exec_arg_t args[MM_N + 1] = {{DNNL_ARG_SRC, e->arg[MM_SRC].mem},
                                      {DNNL_ARG_WEIGHTS, e->arg[MM_WEI].mem},
                                      {DNNL_ARG_DST, e->arg[MM_DST].mem}};
    int n = MM_N;
    if (e->scratch) args[n++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, e->scratch};
    DNN(dnnl_primitive_execute(e->prim, stream, n, args));
    CHECK(dnn_arg_out(&e->arg[MM_DST]));
    DNN(dnnl_stream_wait(stream));
    return FSNN_OK;
}

int dnnmm_spike(const float *s, const float *W, float *cur, int B, int in, int out) {
    int team = dnn_team_begin(0), rc = FSNN_OK;
    for (int b0 = 0, c; rc == FSNN_OK && b0 < B; b0 += c) {
        c = dnn_chunk(B - b0);
        rc = dnnmm_run(s + (long)b0 * in, W, cur + (long)b0 * out, c, in, out);
    }
    dnn_team_end(team);
    return rc;
}

int dnnmm_impl(int B, int in, int out, char *buf, size_t size) {
    dnnmm_entry *e;
    dnnl_stream_t stream;
    int team = dnn_team_begin(0);
    int rc = dnnmm_get(dnn_chunk(B), in, out, &e, &stream);
    dnn_team_end(team);
    CHECK(rc);
    return dnn_impl_name(e->pd, buf, size);
}

void dnnmm_release(void) {
    for (int i = 0; i < dnnmm_n; i++)
        dnnmm_entry_free(&dnnmm_cache[i]);
    free(dnnmm_cache);
    dnnmm_cache = NULL;
    dnnmm_n = dnnmm_cap = 0;
    dnn_stream_release();
}
