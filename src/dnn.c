/* dnn: the engine, streams and arguments of fsnn's oneDNN primitives. */
#include "dnn.h"

#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

#include "blas.h" // defines: blas_is_serial

static dnnl_engine_t dnn_engine;
/* Written outside parallel regions only, read by the threads of the
 * regions that follow (the region's start orders the accesses). */
static unsigned long dnn_hold_serial;
static int dnn_hold_on;
static _Thread_local dnnl_stream_t dnn_stream;

int dnn_start(dnnl_engine_t *engine, dnnl_stream_t *stream) {
    int rc = FSNN_OK;
#pragma omp critical(dnn_engine)
    if (!dnn_engine && dnnl_engine_create(&dnn_engine, dnnl_cpu, 0) != dnnl_success)
        rc = FAIL("oneDNN: cannot create a CPU engine");
    CHECK(rc);
    if (!dnn_stream) DNN(dnnl_stream_create(&dnn_stream, dnn_engine, dnnl_stream_default_flags));
    *engine = dnn_engine;
    *stream = dnn_stream;
    return FSNN_OK;
}

void dnn_stream_release(void) {
    if (dnn_stream) dnnl_stream_destroy(dnn_stream);
    dnn_stream = NULL;
}

void *dnn_alloc(size_t bytes) {
    return aligned_alloc(64, (bytes + 63) / 64 * 64);
}

int dnn_arg_init(dnn_arg *a, const dnnl_memory_desc_t *user_md, const dnnl_memory_desc_t *md,
                 int input) {
    dnnl_engine_t eng;
    dnnl_stream_t str;
    CHECK(dnn_start(&eng, &str));
    DNN(dnnl_memory_create(&a->user, user_md, eng, DNNL_MEMORY_NONE));
    if (dnnl_memory_desc_equal(user_md, md)) {
        a->mem = a->user;
        return FSNN_OK;
    }
    a->buf = dnn_alloc(dnnl_memory_desc_get_size(md));
    if (!a->buf) return FAIL("oneDNN: out of memory for a reordered argument");
    DNN(dnnl_memory_create(&a->mem, md, eng, a->buf));
    dnnl_primitive_desc_t rpd;
    DNN(input ? dnnl_reorder_primitive_desc_create(&rpd, user_md, eng, md, eng, NULL)
              : dnnl_reorder_primitive_desc_create(&rpd, md, eng, user_md, eng, NULL));
    dnnl_status_t st = dnnl_primitive_create(&a->reorder, rpd);
    dnnl_primitive_desc_destroy(rpd);
    DNN(st);
    return FSNN_OK;
}

int dnn_arg_bind(dnn_arg *a, const void *user, int input) {
    DNN(dnnl_memory_set_data_handle(a->user, (void *)user));
    if (!input || !a->reorder) return FSNN_OK;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, a->user}, {DNNL_ARG_TO, a->mem}};
    DNN(dnnl_primitive_execute(a->reorder, dnn_stream, 2, args));
    return FSNN_OK;
}

int dnn_arg_out(dnn_arg *a) {
    if (!a->reorder) return FSNN_OK;
    dnnl_exec_arg_t args[2] = {{DNNL_ARG_FROM, a->mem}, {DNNL_ARG_TO, a->user}};
    DNN(dnnl_primitive_execute(a->reorder, dnn_stream, 2, args));
    return FSNN_OK;
}

void dnn_hold_begin(void) {
    if (omp_in_parallel()) return;
    dnn_hold_serial++;
    dnn_hold_on = 1;
}

void dnn_hold_end(void) {
    if (!omp_in_parallel()) dnn_hold_on = 0;
}

int dnn_arg_bind_weights(dnn_arg *a, const void *user) {
    if (dnn_hold_on && a->reorder && a->held == user && a->held_serial == dnn_hold_serial)
        return FSNN_OK;
    CHECK(dnn_arg_bind(a, user, 1));
    a->held = dnn_hold_on ? user : NULL;
    a->held_serial = dnn_hold_serial;
    return FSNN_OK;
}

void dnn_arg_free(dnn_arg *a) {
    if (a->mem && a->mem != a->user) dnnl_memory_destroy(a->mem);
    if (a->user) dnnl_memory_destroy(a->user);
    if (a->reorder) dnnl_primitive_destroy(a->reorder);
    free(a->buf);
    memset(a, 0, sizeof *a);
}

int dnn_team_begin(int invariant) {
    int team = omp_get_max_threads();
    if (omp_in_parallel() || (blas_is_serial() && !invariant)) omp_set_num_threads(1);
    return team;
}

void dnn_team_end(int team) {
    if (omp_get_max_threads() != team) omp_set_num_threads(team);
}

int dnn_chunk(int left) {
    int c = 1;
    while (c <= left / 2)
        c *= 2;
    return c;
}

int dnn_impl_name(const_dnnl_primitive_desc_t pd, char *buf, size_t size) {
    const char *name = NULL;
    DNN(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name));
    snprintf(buf, size, "%s", name ? name : "?");
    return FSNN_OK;
}

int dnn_has_bf16(void) {
    const char *off = getenv("FSNN_NO_BF16");
    if (off && *off && strcmp(off, "0") != 0) return 0;
#if defined(__x86_64__) || defined(__i386__)
    unsigned int eax, ebx, ecx, edx;
    /* Leaf 7, sub-leaf 1, EAX bit 5: AVX512_BF16 (VDPBF16PS). The OS must
     * also save the ZMM state, as for any AVX-512 code. */
    if (!__get_cpuid_count(7, 1, &eax, &ebx, &ecx, &edx) || !((eax >> 5) & 1)) return 0;
    unsigned int lo, hi;
    __asm__ __volatile__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 0xe6) == 0xe6;
#else
    return 0;
#endif
}
