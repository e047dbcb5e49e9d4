/* reduce: the reproducible sums of deterministic mode against independent
 * computations: each conversion equals llrint of the exact product, sums in
 * any order give the same bits, the result is within one rounding of the
 * exact sum (in long double), reduce_maxabs sees infinities and NaN, the
 * one-pass sum of several arrays equals their one-by-one sum, and the blocks
 * of the reduce-scatter cover a buffer. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "reduce.h"
#include "rng.h"

enum { N = 1000, TERMS = 64 };

static void test_fixed_conversion(void) {
    float x[N];
    rng_uniform_fill(3, RNG_TEST, 0, 0, x, N);
    for (int i = 0; i < N; i++) /* magnitudes from 2^-30 to 2^5, both signs */
        x[i] = (x[i] - 0.5f) * ldexpf(1.0f, (i % 36) - 30);
    x[0] = 0.0f, x[1] = -0.0f, x[2] = 0.5f / 0x1p40f, x[3] = 1.5f / 0x1p40f;
    double mx = reduce_maxabs(x, N), scale = reduce_scale(mx, TERMS);
    EXPECT(scale == ldexp(1.0, (int)log2(scale)), "scale %g is a power of two", scale);
    int64_t acc[N] = {0};
    reduce_fixed_add(acc, x, N, scale);
    int same = 0;
    for (int i = 0; i < N; i++)
        same += acc[i] == llrint((double)x[i] * scale);
    EXPECT(same == N, "%d of %d conversions equal llrint of the exact product", same, N);
    int64_t set[N];
    for (int i = 0; i < N; i++)
        set[i] = (int64_t)0x5a5a5a5a5a5a5a5a; /* reduce_fixed_set must not read it */
    reduce_fixed_set(set, x, N, scale);
    int same_set = 0;
    for (int i = 0; i < N; i++)
        same_set += set[i] == acc[i];
    EXPECT(same_set == N, "%d of %d reduce_fixed_set values equal reduce_fixed_add onto zeros",
           same_set, N);
    /* The largest value keeps its 24 bits: the scale leaves room for TERMS terms. */
    float back[N];
    reduce_fixed_get(back, acc, N, scale);
    int exact = 0;
    for (int i = 0; i < N; i++)
        exact += fabsf(x[i]) >= (float)mx / 0x1p14f ? back[i] == x[i] : 1;
    EXPECT(exact == N, "%d of %d large values come back exactly", exact, N);
}

static void test_order_independent(void) {
    static float x[TERMS][N];
    for (int t = 0; t < TERMS; t++) {
        rng_uniform_fill(5, RNG_TEST, (uint32_t)t, 0, x[t], N);
        for (int i = 0; i < N; i++)
            x[t][i] = (x[t][i] - 0.5f) * (1.0f + (float)(t % 7) * 1000.0f);
    }
    double mx = 0.0;
    for (int t = 0; t < TERMS; t++)
        mx = fmax(mx, reduce_maxabs(x[t], N));
    double scale = reduce_scale(mx, TERMS);
    static int64_t fwd[N], rev[N], odd[N];
    for (int t = 0; t < TERMS; t++) {
        reduce_fixed_add(fwd, x[t], N, scale);
        reduce_fixed_add(rev, x[TERMS - 1 - t], N, scale);
        reduce_fixed_add(odd, x[(t * 37) % TERMS], N, scale); /* 37 is prime to 64 */
    }
    EXPECT(memcmp(fwd, rev, sizeof fwd) == 0 && memcmp(fwd, odd, sizeof fwd) == 0,
           "sums in three orders differ");
    float got[N];
    reduce_fixed_get(got, fwd, N, scale);
    double worst = 0.0;
    for (int i = 0; i < N; i++) {
        long double exact = 0.0L;
        for (int t = 0; t < TERMS; t++)
            exact += (long double)x[t][i];
        /* One float rounding of the result plus TERMS half-units of 1/scale. */
        double err = fabs((double)((long double)got[i] - exact));
        double allow = fabs((double)exact) * 0x1p-24 + TERMS * 0.5 / scale;
        worst = fmax(worst, err / allow);
    }
    EXPECT(worst <= 1.0, "sum error %.3g of the allowed bound", worst);
}

static void test_maxabs(void) {
    float x[5] = {1.0f, -3.5f, 2.0f, -0.0f, 0.25f};
    EXPECT(reduce_maxabs(x, 5) == 3.5, "maxabs %g", reduce_maxabs(x, 5));
    EXPECT(reduce_maxabs(x, 0) == 0.0, "maxabs of nothing");
    x[4] = -INFINITY;
    EXPECT(isinf(reduce_maxabs(x, 5)), "-inf is seen");
    x[4] = NAN;
    EXPECT(isinf(reduce_maxabs(x, 5)), "NaN is seen as +inf");
    x[4] = -NAN;
    EXPECT(isinf(reduce_maxabs(x, 5)), "-NaN is seen as +inf");
    x[4] = 0x1p127f * 1.9f;
    EXPECT(reduce_maxabs(x, 5) == (double)(0x1p127f * 1.9f), "largest finite float");
    EXPECT(reduce_scale(INFINITY, 4) == 1.0 && reduce_scale(0.0, 4) == 1.0, "degenerate scales");
    /* A non-finite input leaves garbage but defined behaviour (UBSan watches). */
    int64_t acc[5] = {0};
    reduce_fixed_add(acc, x, 5, 0x1p40);
    EXPECT(acc[0] == (int64_t)0x1p40, "finite entries still convert: %lld", (long long)acc[0]);
}

/* reduce_fixed_set_sum against reduce_fixed_set and reduce_fixed_add one
 * array at a time, over lengths that end inside a piece and past several. */
static void test_set_sum(void) {
    enum { LEN = 2600, NX = 4 };
    static float x[NX][LEN];
    static int64_t want[LEN], got[LEN];
    for (int k = 0; k < NX; k++) {
        rng_uniform_fill(9, RNG_TEST, (uint32_t)k, 0, x[k], LEN);
        for (int i = 0; i < LEN; i++)
            x[k][i] = (x[k][i] - 0.5f) * ldexpf(1.0f, (i + k) % 20 - 10);
    }
    const float *xs[NX] = {x[0], x[1], x[2], x[3]};
    const double scale = reduce_scale(512.0, NX);
    const size_t lens[] = {1, 1023, 1024, 1025, LEN};
    for (int nx = 1; nx <= NX; nx++)
        for (size_t c = 0; c < sizeof lens / sizeof lens[0]; c++) {
            const size_t n = lens[c];
            reduce_fixed_set(want, x[0], n, scale);
            for (int k = 1; k < nx; k++)
                reduce_fixed_add(want, x[k], n, scale);
            for (size_t i = 0; i < n; i++)
                got[i] = (int64_t)0x5a5a5a5a5a5a5a5a; /* only written */
            reduce_fixed_set_sum(got, xs, nx, n, scale);
            size_t same = 0;
            for (size_t i = 0; i < n; i++)
                same += got[i] == want[i];
            EXPECT(same == n, "set_sum of %d arrays of %zu: %zu of %zu values equal", nx, n, same,
                   n);
        }
}

/* The blocks of every rank, in rank order, are contiguous, cover [0, count)
 * and differ in size by at most one. */
static void test_blocks(void) {
    const size_t counts[] = {0, 1, 5, 7, 478410};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++)
        for (int size = 1; size <= 5; size++) {
            size_t end = 0, small = (size_t)-1, large = 0;
            int ok = 1;
            for (int r = 0; r < size; r++) {
                size_t lo, hi;
                reduce_block(counts[c], r, size, &lo, &hi);
                ok &= lo == end && hi >= lo;
                end = hi;
                small = hi - lo < small ? hi - lo : small;
                large = hi - lo > large ? hi - lo : large;
            }
            EXPECT(ok && end == counts[c] && large - small <= 1,
                   "blocks of %zu values over %d ranks: contiguous %d, end %zu, sizes %zu..%zu",
                   counts[c], size, ok, end, small, large);
        }
}

int main(void) {
    test_set_sum();
    test_blocks();
    test_fixed_conversion();
    test_order_independent();
    test_maxabs();
    return check_finish("reduce");
}
