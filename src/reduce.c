/* reduce: the one-rank reducer and fixed-point conversions. */
#include "reduce.h"

#include <math.h>
#include <string.h>

#include "blas.h" // defines: BLAS_PARALLEL_MIN
#include "status.h"

static int reduce_nop_i64(void *ctx, int64_t *buf, size_t count) {
    (void)ctx, (void)buf, (void)count;
    return FSNN_OK;
}

static int reduce_nop_f64(void *ctx, double *buf, size_t count) {
    (void)ctx, (void)buf, (void)count;
    return FSNN_OK;
}

static int reduce_nop_f32(void *ctx, float *buf, size_t count) {
    (void)ctx, (void)buf, (void)count;
    return FSNN_OK;
}

static int reduce_nop_start_i64(void *ctx, int64_t *buf, size_t count, reduce_req *req) {
    (void)ctx, (void)buf, (void)count;
    req->slot = -1;
    return FSNN_OK;
}

static int reduce_nop_start_f64(void *ctx, double *buf, size_t count, reduce_req *req) {
    (void)ctx, (void)buf, (void)count;
    req->slot = -1;
    return FSNN_OK;
}

static int reduce_nop_start_f32(void *ctx, float *buf, size_t count, reduce_req *req) {
    (void)ctx, (void)buf, (void)count;
    req->slot = -1;
    return FSNN_OK;
}

static int reduce_nop_scatter_f32(void *ctx, float *const *piece, int np, const int *npieces,
                                  size_t count, float *recv, reduce_req *req) {
    (void)ctx, (void)piece, (void)np, (void)npieces, (void)count, (void)recv;
    req->slot = -1;
    return FSNN_OK;
}

static void reduce_nop_progress(void *ctx) {
    (void)ctx;
}

static int reduce_nop_wait(void *ctx, reduce_req *req) {
    (void)ctx;
    req->slot = -1;
    return FSNN_OK;
}

static double reduce_nop_seconds(void *ctx) {
    (void)ctx;
    return 0.0;
}

const reduce_ops *reduce_local(void) {
    static const reduce_ops local = {.rank = 0,
                                     .size = 1,
                                     .sum_i64 = reduce_nop_i64,
                                     .sum_f64 = reduce_nop_f64,
                                     .sum_f32 = reduce_nop_f32,
                                     .max_f64 = reduce_nop_f64,
                                     .start_sum_i64 = reduce_nop_start_i64,
                                     .start_max_f64 = reduce_nop_start_f64,
                                     .start_sum_f32 = reduce_nop_start_f32,
                                     .start_scatter_f32 = reduce_nop_scatter_f32,
                                     .start_gather_f32 = reduce_nop_start_f32,
                                     .wait = reduce_nop_wait,
                                     .progress = reduce_nop_progress,
                                     .seconds = reduce_nop_seconds,
                                     .ctx = NULL};
    return &local;
}

void reduce_block(size_t count, int rank, int size, size_t *lo, size_t *hi) {
    *lo = count * (size_t)rank / (size_t)size;
    *hi = count * (size_t)(rank + 1) / (size_t)size;
}

static void reduce_tree_cover_at(int a, int b, int lo, int hi, reduce_node *out, int *n) {
    if (b <= lo || a >= hi) return;
    if (a >= lo && b <= hi) {
        out[(*n)++] = (reduce_node){a, b};
        return;
    }
    const int m = a + (b - a) / 2;
    reduce_tree_cover_at(a, m, lo, hi, out, n);
    reduce_tree_cover_at(m, b, lo, hi, out, n);
}

int reduce_tree_cover(int K, int lo, int hi, reduce_node *out) {
    int n = 0;
    if (K > 0 && lo < hi) reduce_tree_cover_at(0, K, lo, hi, out, &n);
    return n;
}

static int reduce_tree_sum_at(reduce_node root, const reduce_node *node, int nn, float *const *val,
                              size_t n) {
    for (int i = 0; i < nn; i++)
        if (node[i].lo == root.lo && node[i].hi == root.hi) return i;
    if (root.hi - root.lo < 2) return -1; /* a leaf no node gives */
    const int m = root.lo + (root.hi - root.lo) / 2;
    const int l = reduce_tree_sum_at((reduce_node){root.lo, m}, node, nn, val, n);
    if (l < 0) return -1;
    const int r = reduce_tree_sum_at((reduce_node){m, root.hi}, node, nn, val, n);
    if (r < 0) return -1;
    float *x = val[l];
    const float *y = val[r];
    for (size_t i = 0; i < n; i++)
        x[i] += y[i];
    return l;
}

int reduce_tree_sum(reduce_node root, const reduce_node *node, int nn, float *const *val,
                    size_t n) {
    /* Nodes inside the root whose sizes add up to it: if the recursion then
     * finds nodes that partition the root, those are all of them, once. */
    long total = 0;
    for (int i = 0; i < nn; i++) {
        if (node[i].lo < root.lo || node[i].hi > root.hi || node[i].hi <= node[i].lo) return -1;
        total += node[i].hi - node[i].lo;
    }
    if (root.hi <= root.lo || total != root.hi - root.lo) return -1;
    return reduce_tree_sum_at(root, node, nn, val, n);
}

double reduce_scale(double maxabs, long terms) {
    if (!(maxabs > 0.0) || !isfinite(maxabs)) return 1.0;
    int e = 0, c = 0;
    frexp(maxabs, &e); /* maxabs < 2^e */
    while ((1L << c) < terms && c < 40)
        c++;
    return ldexp(1.0, 62 - c - e);
}

/* x * scale is exact (scale is a power of two), so rint rounds only
 * products below 2^23; the cast of its integral result is exact. With SSE4.1
 * the callers' loops have no calls and vectorize. A non-finite input (whose
 * sum the caller discards) must not make the conversion undefined: clamped. */
static inline uint64_t reduce_fixed(float x, double scale) {
    double v = rint((double)x * scale);
    v = v < 0x1p63 ? (v > -0x1p63 ? v : -0x1p63) : 0x1p62;
    return (uint64_t)(int64_t)v;
}

void reduce_fixed_add(int64_t *acc, const float *x, size_t n, double scale) {
    /* Unsigned addition, for the same reason as the clamp. */
    for (size_t i = 0; i < n; i++)
        acc[i] = (int64_t)((uint64_t)acc[i] + reduce_fixed(x[i], scale));
}

void reduce_fixed_add_rows(int64_t *acc, const float *x, size_t rows, size_t n, double scale) {
    for (size_t r = 0; r < rows; r++)
        for (size_t i = 0; i < n; i++)
            acc[i] = (int64_t)((uint64_t)acc[i] + reduce_fixed(x[r * n + i], scale));
}

int64_t reduce_fixed_sum(const float *x, size_t n, double scale) {
    uint64_t s = 0;
    for (size_t i = 0; i < n; i++)
        s += reduce_fixed(x[i], scale);
    return (int64_t)s;
}

void reduce_fixed_get(float *out, const int64_t *acc, size_t n, double scale) {
    const double inv = 1.0 / scale; /* exact: scale is a power of two */
    for (size_t i = 0; i < n; i++)
        out[i] = (float)((double)acc[i] * inv);
}

double reduce_maxabs(const float *x, size_t n) {
    /* On the bits without the sign, integer order is the order of |x|, and
     * infinity and NaN are above every finite value: an integer maximum
     * that vectorizes and sees non-finite values. */
    uint32_t m = 0;
    /* A maximum is the same in any order: the threads' parts give the
     * same bits as one pass. */
#pragma omp parallel for schedule(static) reduction(max : m) if (n > (size_t)BLAS_PARALLEL_MIN)
    for (size_t i = 0; i < n; i++) {
        uint32_t b;
        memcpy(&b, &x[i], sizeof b);
        b &= 0x7fffffffu;
        m = b > m ? b : m;
    }
    if (m >= 0x7f800000u) return INFINITY;
    float f;
    memcpy(&f, &m, sizeof f);
    return (double)f;
}
