/* spikecode: spikes as bit masks or index lists.
 *
 * - Round trips of random blocks at densities 0, 1/1000, 1/64, 1/32, 1/8,
 *   1/2 and 1, sizes 1..1000 (odd sizes: a partial last mask byte): the
 *   decoded block equals the encoded one, both report the same spike count
 *   and size, and the size is min(mask, list) (list exactly when
 *   k < n / 32).
 * - Several blocks concatenated decode one after the other.
 * - Bad input: a value that is not 0 or 1, too small a buffer, a truncated
 *   header, mask or list, an unknown kind, a list index out of range or out
 *   of order, mask bits beyond n, a count that disagrees with the mask. */
#include <stdlib.h>

#include "check.h"
#include "rng.h"
#include "spikecode.h"

static void fill(float *s, long n, double density, uint32_t id) {
    for (long i = 0; i < n; i++)
        s[i] = rng_uniform(7, id, 0, 0, (uint64_t)i) < density ? 1.0f : 0.0f;
}

static void round_trips(void) {
    const double dens[] = {0.0, 0.001, 1.0 / 64, 1.0 / 32, 1.0 / 8, 0.5, 1.0};
    const long sizes[] = {1, 7, 8, 9, 100, 257, 1000};
    float s[1000], back[1000];
    uint8_t buf[2000];
    int bad = 0, list_ok = 0, checked = 0;
    for (size_t d = 0; d < sizeof dens / sizeof dens[0]; d++)
        for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
            const long n = sizes[z];
            fill(s, n, dens[d], (uint32_t)(d * 16 + z));
            size_t used = 0, read = 0;
            long k = -1, k2 = -2;
            if (spikecode_encode(s, n, buf, spikecode_bound(n), &used, &k) != 0 ||
                spikecode_decode(buf, used, back, n, &read, &k2) != 0) {
                bad++;
                continue;
            }
            long want = 0;
            for (long i = 0; i < n; i++)
                want += s[i] != 0.0f;
            const size_t mb = spikecode_mask_bytes(n), lb = spikecode_list_bytes(want);
            bad += memcmp(s, back, sizeof(float) * (size_t)n) != 0 || k != want || k2 != want ||
                   read != used || used != (lb < mb ? lb : mb);
            list_ok += (buf[0] == 'I') == (4 * want < (n + 7) / 8);
            checked++;
        }
    EXPECT(bad == 0, "%d of %d round trips differ", bad, checked);
    EXPECT(list_ok == checked, "the list was chosen wrongly in %d of %d blocks", checked - list_ok,
           checked);
}

static void concatenated(void) {
    float s[3][300], back[300];
    uint8_t buf[3 * 300];
    size_t off = 0, used, read;
    long k;
    const double dens[3] = {0.9, 0.002, 0.3};
    for (int b = 0; b < 3; b++) {
        fill(s[b], 300, dens[b], 100 + (uint32_t)b);
        EXPECT_OK(spikecode_encode(s[b], 300, buf + off, sizeof buf - off, &used, &k));
        off += used;
    }
    EXPECT(buf[0] == 'M', "a dense block went as a list");
    size_t at = 0;
    for (int b = 0; b < 3; b++) {
        EXPECT_OK(spikecode_decode(buf + at, off - at, back, 300, &read, &k));
        EXPECT(memcmp(back, s[b], sizeof back) == 0, "block %d differs", b);
        at += read;
    }
    EXPECT(at == off, "read %zu of %zu bytes", at, off);
}

static void bad_input(void) {
    float s[64] = {0}, back[64];
    uint8_t buf[512];
    size_t used;
    long k;
    s[3] = 0.5f;
    EXPECT_FAILS(spikecode_encode(s, 64, buf, sizeof buf, &used, &k), "not a spike");
    s[3] = 1.0f;
    s[40] = 1.0f;
    EXPECT_FAILS(spikecode_encode(s, 64, buf, 4, &used, &k), "needs");
    /* 2 spikes of 64 values: a mask (16 bytes; the list would be no smaller) */
    EXPECT_OK(spikecode_encode(s, 64, buf, sizeof buf, &used, &k));
    EXPECT_FAILS(spikecode_decode(buf, 5, back, 64, &used, &k), "truncated", "header");
    EXPECT_FAILS(spikecode_decode(buf, SPIKECODE_HEADER + 3, back, 64, &used, &k), "truncated");
    uint8_t bad[16];
    memcpy(bad, buf, 16);
    bad[0] = 'X';
    EXPECT_FAILS(spikecode_decode(bad, 16, back, 64, &used, &k), "bad block header");
    /* one spike of 1000: a list */
    float t[1000] = {0};
    t[500] = 1.0f;
    t[900] = 1.0f;
    EXPECT_OK(spikecode_encode(t, 1000, buf, sizeof buf, &used, &k));
    EXPECT(buf[0] == 'I' && used == spikecode_list_bytes(2), "2 spikes of 1000 not a list");
    float tb[1000];
    EXPECT_FAILS(spikecode_decode(buf, used - 1, tb, 1000, &used, &k), "truncated");
    EXPECT_OK(spikecode_encode(t, 1000, buf, sizeof buf, &used, &k));
    EXPECT_FAILS(spikecode_decode(buf, used, tb, 800, &used, &k), "out of order or beyond");
    EXPECT_OK(spikecode_encode(t, 1000, buf, sizeof buf, &used, &k));
    uint8_t sw[4];
    memcpy(sw, buf + 8, 4);
    memcpy(buf + 8, buf + 12, 4);
    memcpy(buf + 12, sw, 4);
    EXPECT_FAILS(spikecode_decode(buf, used, tb, 1000, &used, &k), "out of order");
    buf[4] = 200; /* more spikes than values */
    EXPECT_FAILS(spikecode_decode(buf, sizeof buf, back, 64, &used, &k), "claims");
    /* a mask of 12 values with a bit beyond 12, and one whose count disagrees */
    float m[12] = {1, 0, 1, 1, 1, 1, 1, 1, 1, 0, 0, 1};
    EXPECT_OK(spikecode_encode(m, 12, buf, sizeof buf, &used, &k));
    EXPECT(buf[0] == 'M' && k == 9, "12 values: kind %c, %ld spikes", buf[0], k);
    buf[SPIKECODE_HEADER + 1] |= 0x80;
    EXPECT_FAILS(spikecode_decode(buf, used, back, 12, &used, &k), "beyond its end");
    EXPECT_OK(spikecode_encode(m, 12, buf, sizeof buf, &used, &k));
    buf[4] = 8;
    EXPECT_FAILS(spikecode_decode(buf, used, back, 12, &used, &k), "header says");
}

int main(void) {
    round_trips();
    concatenated();
    bad_input();
    return check_finish("spikecode");
}
