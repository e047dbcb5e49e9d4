/* rng and dropout: counter-based draws are pure functions of
 * (seed, stream, epoch, sample, index) (rng.h, dropout.h).
 *
 * Statistical tolerances for N = 1e5 uniforms: the mean has standard deviation
 * sqrt(1/12 / N) = 9.1e-4, so |mean - 0.5| < 0.01 is an 11-sigma bound; the
 * variance (1/12) within 0.005; each of 10 bins holds N/10 = 1e4 with sd ~95,
 * within 5% (5 sigma). Dropout: 40,000 entries at p = 0.2, fraction sd
 * 0.002, tolerance 0.01. Channel-wise dropout: with hw = 1 the same bytes as
 * dropout_mask; with hw > 1 each (sample, channel) map constant and equal to
 * dropout_mask's entry for that channel; 4 x 5000 channels at p = 0.2,
 * fraction sd 0.003, tolerance 0.015. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "dropout.h"
#include "rng.h"

static int same4(const uint32_t a[4], const uint32_t b[4]) {
    return memcmp(a, b, 4 * sizeof(uint32_t)) == 0;
}

static void test_philox(void) {
    uint32_t r0[4], r1[4];
    rng_philox(42, RNG_TEST, 3, 7, 11, r0);
    rng_philox(42, RNG_TEST, 3, 7, 11, r1);
    EXPECT(same4(r0, r1), "same key and counter give the same words");
    rng_philox(43, RNG_TEST, 3, 7, 11, r1);
    EXPECT(!same4(r0, r1), "seed changes the words");
    rng_philox(42, RNG_INIT, 3, 7, 11, r1);
    EXPECT(!same4(r0, r1), "stream changes the words");
    rng_philox(42, RNG_TEST, 4, 7, 11, r1);
    EXPECT(!same4(r0, r1), "epoch changes the words");
    rng_philox(42, RNG_TEST, 3, 8, 11, r1);
    EXPECT(!same4(r0, r1), "sample changes the words");
    rng_philox(42, RNG_TEST, 3, 7, 12, r1);
    EXPECT(!same4(r0, r1), "block changes the words");
    /* Seeds differing only in the high 32 bits are different keys. */
    rng_philox(42 + (1ull << 40), RNG_TEST, 3, 7, 11, r1);
    EXPECT(!same4(r0, r1), "high seed bits change the words");
    /* Swapping counter fields is not the same counter. */
    rng_philox(42, RNG_TEST, 7, 3, 11, r1);
    EXPECT(!same4(r0, r1), "epoch and sample are not interchangeable");
}

static void test_uniform(void) {
    enum { N = 100000 };
    float *x = malloc(sizeof(float) * N), *y = malloc(sizeof(float) * N);
    rng_uniform_fill(1, RNG_TEST, 0, 0, x, N);
    rng_uniform_fill(1, RNG_TEST, 0, 0, y, N);
    EXPECT(memcmp(x, y, sizeof(float) * N) == 0, "rng_uniform_fill is deterministic");
    /* Index-based: a shorter fill is a prefix of a longer one (also for a
     * length that is not a multiple of the block). */
    float z[7];
    rng_uniform_fill(1, RNG_TEST, 0, 0, z, 7);
    EXPECT(memcmp(x, z, sizeof z) == 0, "a fill of 7 is the prefix of a fill of N");
    double s = 0.0, ss = 0.0;
    long bins[10] = {0};
    int in_range = 1;
    for (long i = 0; i < N; i++) {
        if (!(x[i] >= 0.0f && x[i] < 1.0f)) in_range = 0;
        s += x[i];
        ss += (double)x[i] * x[i];
        int b = (int)(x[i] * 10.0f);
        if (b >= 0 && b < 10) bins[b]++;
    }
    EXPECT(in_range, "uniforms in [0, 1)");
    double mean = s / N, var = ss / N - mean * mean;
    EXPECT_NEAR(mean, 0.5, 0.01, 0.0, "uniform mean over 1e5 draws");
    EXPECT_NEAR(var, 1.0 / 12.0, 0.005, 0.0, "uniform variance over 1e5 draws");
    for (int b = 0; b < 10; b++)
        EXPECT_NEAR(bins[b], N / 10, 0.0, 0.05, "uniform histogram bin");
    /* Different stream, epoch or sample: different numbers. */
    int differ[3] = {0, 0, 0};
    rng_uniform_fill(1, RNG_INIT, 0, 0, y, 1000);
    for (int i = 0; i < 1000; i++)
        differ[0] += x[i] != y[i];
    rng_uniform_fill(1, RNG_TEST, 1, 0, y, 1000);
    for (int i = 0; i < 1000; i++)
        differ[1] += x[i] != y[i];
    rng_uniform_fill(1, RNG_TEST, 0, 1, y, 1000);
    for (int i = 0; i < 1000; i++)
        differ[2] += x[i] != y[i];
    EXPECT(differ[0] > 990, "other stream: only %d of 1000 differ", differ[0]);
    EXPECT(differ[1] > 990, "other epoch: only %d of 1000 differ", differ[1]);
    EXPECT(differ[2] > 990, "other sample: only %d of 1000 differ", differ[2]);
    /* Neighbouring samples are not correlated (|r| < 0.02, sd 0.003). */
    rng_uniform_fill(1, RNG_TEST, 0, 1, y, N);
    double sxy = 0.0, sy = 0.0, syy = 0.0;
    for (long i = 0; i < N; i++) {
        sxy += (double)x[i] * y[i];
        sy += y[i];
        syy += (double)y[i] * y[i];
    }
    double cov = sxy / N - mean * (sy / N), vy = syy / N - (sy / N) * (sy / N);
    EXPECT(fabs(cov / sqrt(var * vy)) < 0.02, "samples 0 and 1 correlate: r = %g",
           cov / sqrt(var * vy));

    /* rng_uniform (double): deterministic, in [0, 1), mean 0.5. */
    double sd = 0.0;
    int ok = 1;
    for (long i = 0; i < N; i++) {
        double u = rng_uniform(5, RNG_TEST, 2, 3, (uint64_t)i);
        if (!(u >= 0.0 && u < 1.0)) ok = 0;
        sd += u;
    }
    EXPECT(ok, "rng_uniform in [0, 1)");
    EXPECT_NEAR(sd / N, 0.5, 0.01, 0.0, "rng_uniform mean over 1e5 draws");
    EXPECT(rng_uniform(5, RNG_TEST, 2, 3, 17) == rng_uniform(5, RNG_TEST, 2, 3, 17),
           "rng_uniform is deterministic");
    EXPECT(rng_uniform(5, RNG_TEST, 2, 3, 17) != rng_uniform(5, RNG_TEST, 2, 3, 18),
           "rng_uniform depends on the index");
    EXPECT(rng_uniform(5, RNG_TEST, 2, 3, 17) != rng_uniform(5, RNG_TEST, 2, 4, 17),
           "rng_uniform depends on the sample");
    free(x);
    free(y);
}

static int is_permutation(const long *p, long n) {
    char *seen = calloc((size_t)n + 1, 1);
    int ok = 1;
    for (long i = 0; i < n; i++) {
        if (p[i] < 0 || p[i] >= n || seen[p[i]])
            ok = 0;
        else
            seen[p[i]] = 1;
    }
    free(seen);
    return ok;
}

static void test_permutation(void) {
    enum { N = 1000 };
    long p0[N], p1[N], q[N];
    rng_permutation(9, 0, p0, N);
    EXPECT(is_permutation(p0, N), "rng_permutation gives a permutation of 0..n-1");
    rng_permutation(9, 0, q, N);
    EXPECT(memcmp(p0, q, sizeof q) == 0, "same (seed, epoch): same order");
    rng_permutation(9, 1, p1, N);
    EXPECT(is_permutation(p1, N), "epoch 1 also a permutation");
    int diff = 0, fixed = 0;
    for (int i = 0; i < N; i++) {
        diff += p0[i] != p1[i];
        fixed += p0[i] == i;
    }
    EXPECT(diff > N * 9 / 10, "epochs 0 and 1 should give different orders (%d differ)", diff);
    /* A random permutation has ~1 fixed point; the identity has N. */
    EXPECT(fixed < 10, "order has %d fixed points: not shuffled", fixed);
    rng_permutation(10, 0, q, N);
    diff = 0;
    for (int i = 0; i < N; i++)
        diff += p0[i] != q[i];
    EXPECT(diff > N * 9 / 10, "seeds 9 and 10 should give different orders (%d differ)", diff);
    /* Uniformity: over 3000 shuffles of 3, each of the 6 orders ~500
     * (sd ~20; tolerance 20%). */
    long count[6] = {0};
    int all_perm = 1;
    for (uint32_t e = 0; e < 3000; e++) {
        long r[3];
        rng_permutation(3, e, r, 3);
        all_perm &= is_permutation(r, 3);
        int code = (int)(r[0] * 2 + (r[1] > r[2])); /* r[0] in 0..2, order of the rest */
        if (code >= 0 && code < 6) count[code]++;
    }
    EXPECT(all_perm, "n = 3: not always a permutation");
    for (int c = 0; c < 6; c++)
        EXPECT_NEAR(count[c], 500, 0.0, 0.2, "order frequency of n = 3");
    long one[1] = {-1};
    rng_permutation(9, 0, one, 1);
    EXPECT(one[0] == 0, "n = 1: (0)");
    rng_permutation(9, 0, one, 0); /* n = 0: nothing to do, no crash */
}

static void test_dropout(void) {
    enum { B = 4, N = 10000 };
    const float p = 0.2f, keep = 1.0f / (1.0f - p);
    static float m[B * N], m2[B * N];
    const long ids[B] = {5, 9, 2, 123456};
    dropout_mask(m, B, N, p, 77, RNG_DROP_S, 3, ids);
    long zeros = 0, others = 0;
    for (long k = 0; k < (long)B * N; k++) {
        if (m[k] == 0.0f)
            zeros++;
        else if (m[k] != keep)
            others++;
    }
    EXPECT(others == 0, "%ld mask entries neither 0 nor 1/(1-p)", others);
    EXPECT_NEAR((double)zeros / (B * N), p, 0.01, 0.0, "dropped fraction");
    /* Per row too: each sample's fraction near p (sd 0.004, tolerance 0.02). */
    for (int b = 0; b < B; b++) {
        long zb = 0;
        for (int j = 0; j < N; j++)
            zb += m[(long)b * N + j] == 0.0f;
        EXPECT_NEAR((double)zb / N, p, 0.02, 0.0, "dropped fraction of one sample");
    }
    /* Same (seed, epoch, id) -> same row, wherever the sample sits. */
    const long ids2[3] = {123456, 2, 5};
    dropout_mask(m2, 3, N, p, 77, RNG_DROP_S, 3, ids2);
    EXPECT(memcmp(m2 + 0L * N, m + 3L * N, sizeof(float) * N) == 0, "id 123456 row moved");
    EXPECT(memcmp(m2 + 1L * N, m + 2L * N, sizeof(float) * N) == 0, "id 2 row moved");
    EXPECT(memcmp(m2 + 2L * N, m + 0L * N, sizeof(float) * N) == 0, "id 5 row moved");
    /* Rows of different samples differ; epoch, stream and seed change a row. */
    long d01 = 0, de = 0, ds = 0, dseed = 0;
    for (int j = 0; j < N; j++)
        d01 += m[j] != m[N + j];
    dropout_mask(m2, 1, N, p, 77, RNG_DROP_S, 4, ids);
    for (int j = 0; j < N; j++)
        de += m[j] != m2[j];
    dropout_mask(m2, 1, N, p, 77, RNG_DROP_X, 3, ids);
    for (int j = 0; j < N; j++)
        ds += m[j] != m2[j];
    dropout_mask(m2, 1, N, p, 78, RNG_DROP_S, 3, ids);
    for (int j = 0; j < N; j++)
        dseed += m[j] != m2[j];
    /* Two independent masks differ in 2 p (1-p) = 32% of entries. */
    EXPECT(d01 > N / 4, "masks of samples 5 and 9 differ in only %ld entries", d01);
    EXPECT(de > N / 4, "epoch 3 and 4 masks differ in only %ld entries", de);
    EXPECT(ds > N / 4, "feedback and input masks differ in only %ld entries", ds);
    EXPECT(dseed > N / 4, "seeds 77 and 78 masks differ in only %ld entries", dseed);
    /* p = 0 keeps everything at scale 1. */
    dropout_mask(m2, 1, N, 0.0f, 77, RNG_DROP_S, 3, ids);
    long ones = 0;
    for (int j = 0; j < N; j++)
        ones += m2[j] == 1.0f;
    EXPECT(ones == N, "p = 0: %ld of %d entries are 1", ones, N);
    /* p = 0.5: scale 2. */
    dropout_mask(m2, 1, N, 0.5f, 77, RNG_DROP_S, 3, ids);
    zeros = others = 0;
    for (int j = 0; j < N; j++) {
        if (m2[j] == 0.0f)
            zeros++;
        else if (m2[j] != 2.0f)
            others++;
    }
    EXPECT(others == 0, "p = 0.5: %ld entries neither 0 nor 2", others);
    EXPECT_NEAR((double)zeros / N, 0.5, 0.02, 0.0, "p = 0.5 dropped fraction");
}

static void test_dropout_channel(void) {
    enum { B = 4, C = 5000, HW = 6 };
    const float p = 0.2f, keep = 1.0f / (1.0f - p);
    static float m[B * C * HW], row[B * C], m1[B * C];
    const long ids[B] = {7, 3, 99999, 12};
    dropout_mask_channel(m1, B, C, 1, p, 5, RNG_DROP_S, 2, ids);
    dropout_mask(row, B, C, p, 5, RNG_DROP_S, 2, ids);
    EXPECT(memcmp(m1, row, sizeof row) == 0, "hw = 1: channel mask differs from dropout_mask");
    dropout_mask_channel(m, B, C, HW, p, 5, RNG_DROP_S, 2, ids);
    long wrong = 0, zeros = 0, others = 0;
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            float want = row[(long)b * C + c];
            zeros += want == 0.0f;
            others += want != 0.0f && want != keep;
            for (int q = 0; q < HW; q++)
                wrong += m[((long)b * C + c) * HW + q] != want;
        }
    EXPECT(wrong == 0, "%ld entries differ from their channel's draw", wrong);
    EXPECT(others == 0, "%ld channel masks neither 0 nor 1/(1-p)", others);
    EXPECT_NEAR((double)zeros / (B * C), p, 0.015, 0.0, "dropped fraction of channels");
}

int main(void) {
    test_philox();
    test_uniform();
    test_permutation();
    test_dropout();
    test_dropout_channel();
    return check_finish("rng");
}
