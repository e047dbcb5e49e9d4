/* reduce: the reproducible sums of deterministic mode against independent
 * computations: each conversion equals llrint of the exact product, sums in
 * any order give the same bits, the result is within one rounding of the
 * exact sum (in long double), reduce_maxabs sees infinities and NaN, and the
 * blocks of the reduce-scatter cover a buffer; the tree sums against a
 * plain recursive sum of the leaves: their covers are the fewest tree nodes
 * and any split of the leaves over ranks gives the same bits. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

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

/* The tree's value of leaves [a, b) at element i, written out from the
 * definition in reduce.h: the sum of the halves split at a + (b - a) / 2. */
static float tree_ref(const float *leaf, size_t stride, size_t i, int a, int b) {
    if (b - a == 1) return leaf[(size_t)a * stride + i];
    const int m = a + (b - a) / 2;
    return tree_ref(leaf, stride, i, a, m) + tree_ref(leaf, stride, i, m, b);
}

/* Is [lo, hi) a node of the tree over [a, b)? */
static int tree_is_node(int a, int b, int lo, int hi) {
    if (a == lo && b == hi) return 1;
    if (b - a < 2 || lo < a || hi > b) return 0;
    const int m = a + (b - a) / 2;
    return tree_is_node(a, m, lo, hi) || tree_is_node(m, b, lo, hi);
}

/* Covers: for every range of every tree up to 40 leaves, the nodes are tree
 * nodes, in order, partition the range, and no two neighbours are the
 * halves of one node (so none could be merged: the fewest). */
static void test_tree_cover(void) {
    long ranges = 0, bad = 0;
    int most = 0;
    for (int K = 1; K <= 40; K++)
        for (int lo = 0; lo <= K; lo++)
            for (int hi = lo; hi <= K; hi++) {
                reduce_node c[REDUCE_TREE_MAX];
                const int n = reduce_tree_cover(K, lo, hi, c);
                int at = lo, ok = n >= 0 && n <= REDUCE_TREE_MAX;
                for (int i = 0; ok && i < n; i++) {
                    ok &=
                        c[i].lo == at && c[i].hi > c[i].lo && tree_is_node(0, K, c[i].lo, c[i].hi);
                    at = c[i].hi;
                    if (i > 0) ok &= !tree_is_node(0, K, c[i - 1].lo, c[i].hi);
                }
                ok &= at == hi;
                bad += !ok;
                ranges++;
                most = n > most ? n : most;
            }
    EXPECT(bad == 0, "%ld of %ld covers are not the fewest tree nodes partitioning the range", bad,
           ranges);
    EXPECT(most > 2 && most <= 2 * 6, "largest cover of trees up to 40 leaves: %d nodes", most);
    reduce_node c[REDUCE_TREE_MAX];
    EXPECT(reduce_tree_cover(0x7fffffff, 1, 0x7ffffffe, c) <= REDUCE_TREE_MAX,
           "cover of the largest tree fits REDUCE_TREE_MAX");
}

/* Tree sums: from the leaves, and from the pieces of every way of dealing
 * K leaves out to 1..5 ranks in blocks (reduce_block), the bits of the
 * recursive definition. Values of mixed magnitudes make the order visible:
 * a left-to-right sum differs from the tree's. A node list that does not
 * partition the root is refused. */
static void test_tree_sum(void) {
    enum { KMAX = 13, LEN = 257 };
    static float leaf[KMAX][LEN], work[KMAX][LEN];
    for (int k = 0; k < KMAX; k++) {
        rng_uniform_fill(11, RNG_TEST, (uint32_t)k, 0, leaf[k], LEN);
        for (int i = 0; i < LEN; i++)
            leaf[k][i] = (leaf[k][i] - 0.5f) * ldexpf(1.0f, (i * 7 + k * 5) % 40 - 20);
    }
    long cases = 0, wrong = 0, order_visible = 0;
    for (int K = 1; K <= KMAX; K++)
        for (int size = 1; size <= 5; size++) {
            /* Each rank sums its pieces from its leaves, as model.c does. */
            memcpy(work, leaf, sizeof work);
            reduce_node all[5 * REDUCE_TREE_MAX];
            float *val[5 * REDUCE_TREE_MAX];
            int nn = 0, ok = 1;
            for (int r = 0; r < size; r++) {
                size_t a, b;
                reduce_block((size_t)K, r, size, &a, &b);
                const int np = reduce_tree_cover(K, (int)a, (int)b, all + nn);
                for (int p = 0; p < np; p++) {
                    reduce_node lv[KMAX];
                    float *lp[KMAX];
                    const reduce_node piece = all[nn + p];
                    for (int j = piece.lo; j < piece.hi; j++) {
                        lv[j - piece.lo] = (reduce_node){j, j + 1};
                        lp[j - piece.lo] = work[j];
                    }
                    ok &= reduce_tree_sum(piece, lv, piece.hi - piece.lo, lp, LEN) == 0;
                    val[nn + p] = work[piece.lo];
                }
                nn += np;
            }
            const int root = reduce_tree_sum((reduce_node){0, K}, all, nn, val, LEN);
            ok &= root == 0;
            for (int i = 0; ok && i < LEN; i++) {
                float want = tree_ref(&leaf[0][0], LEN, (size_t)i, 0, K), plain = 0.0f;
                for (int k = 0; k < K; k++)
                    plain += leaf[k][i];
                ok &= memcmp(&val[root][i], &want, sizeof want) == 0;
                order_visible += plain != want;
            }
            wrong += !ok;
            cases++;
        }
    EXPECT(wrong == 0, "%ld of %ld tree sums differ from the recursive definition", wrong, cases);
    EXPECT(order_visible > 0, "the test values make the order of additions visible");
    /* Not partitions into tree nodes: a gap, a leaf given twice, a node
     * outside the root, and [0, 2) of the tree [0, 3) (split 0 | 1, 2). */
    float a[1] = {1.0f}, b[1] = {2.0f}, c[1] = {4.0f};
    float *v[3] = {a, b, c};
    const reduce_node gap[2] = {{0, 1}, {2, 3}}, twice[3] = {{0, 1}, {0, 1}, {1, 2}},
                      outside[2] = {{0, 1}, {1, 3}}, skew[2] = {{0, 2}, {2, 3}};
    EXPECT(reduce_tree_sum((reduce_node){0, 3}, gap, 2, v, 1) < 0, "a gap is refused");
    EXPECT(reduce_tree_sum((reduce_node){0, 2}, twice, 3, v, 1) < 0,
           "a twice-given leaf is refused");
    EXPECT(reduce_tree_sum((reduce_node){0, 2}, outside, 2, v, 1) < 0,
           "an outside node is refused");
    EXPECT(reduce_tree_sum((reduce_node){0, 3}, skew, 2, v, 1) < 0, "a non-node is refused");
    EXPECT(a[0] == 1.0f && b[0] == 2.0f && c[0] == 4.0f, "refused lists leave the values");
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
    test_tree_cover();
    test_tree_sum();
    test_blocks();
    test_fixed_conversion();
    test_order_independent();
    test_maxabs();
    return check_finish("reduce");
}
