/* spikecode: bit masks or index lists of spikes, whichever is smaller. */
#include "spikecode.h"

#include <string.h>

#include "status.h" // defines: FAIL, FSNN_OK

enum { SPIKECODE_MASK = 'M', SPIKECODE_LIST = 'I' };

size_t spikecode_mask_bytes(long n) {
    return SPIKECODE_HEADER + (size_t)(n + 7) / 8;
}

size_t spikecode_list_bytes(long k) {
    return SPIKECODE_HEADER + 4 * (size_t)k;
}

size_t spikecode_bound(long n) {
    return spikecode_mask_bytes(n);
}

static void spikecode_put32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static uint32_t spikecode_get32(const uint8_t *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int spikecode_encode(const float *s, long n, uint8_t *out, size_t cap, size_t *used, long *spikes) {
    if (n < 0 || n > SPIKECODE_MAX_N)
        return FAIL("spikecode: a block of %ld values is out of range", n);
    long k = 0;
    for (long i = 0; i < n; i++) {
        if (s[i] != 0.0f && s[i] != 1.0f)
            return FAIL("spikecode: value %g at %ld is not a spike (0 or 1)", (double)s[i], i);
        k += s[i] != 0.0f;
    }
    const size_t mb = spikecode_mask_bytes(n), lb = spikecode_list_bytes(k);
    const int list = lb < mb;
    const size_t need = list ? lb : mb;
    if (need > cap)
        return FAIL("spikecode: a block needs %zu bytes, the buffer has %zu", need, cap);
    memset(out, 0, SPIKECODE_HEADER);
    out[0] = list ? SPIKECODE_LIST : SPIKECODE_MASK;
    spikecode_put32(out + 4, (uint32_t)k);
    uint8_t *p = out + SPIKECODE_HEADER;
    if (list) {
        for (long i = 0; i < n; i++)
            if (s[i] != 0.0f) {
                spikecode_put32(p, (uint32_t)i);
                p += 4;
            }
    } else {
        memset(p, 0, mb - SPIKECODE_HEADER);
        for (long i = 0; i < n; i++)
            if (s[i] != 0.0f) p[i >> 3] |= (uint8_t)(1u << (i & 7));
    }
    *used = need;
    *spikes = k;
    return FSNN_OK;
}

int spikecode_decode(const uint8_t *in, size_t len, float *s, long n, size_t *used, long *spikes) {
    if (n < 0 || n > SPIKECODE_MAX_N)
        return FAIL("spikecode: a block of %ld values is out of range", n);
    if (len < SPIKECODE_HEADER)
        return FAIL("spikecode: a block is truncated: %zu bytes, its header needs %d", len,
                    SPIKECODE_HEADER);
    if ((in[0] != SPIKECODE_MASK && in[0] != SPIKECODE_LIST) || in[1] || in[2] || in[3])
        return FAIL("spikecode: bad block header (kind byte %u)", (unsigned)in[0]);
    const long k = (long)spikecode_get32(in + 4);
    if (k > n) return FAIL("spikecode: a block of %ld values claims %ld spikes", n, k);
    const uint8_t *p = in + SPIKECODE_HEADER;
    if (in[0] == SPIKECODE_LIST) {
        const size_t need = spikecode_list_bytes(k);
        if (len < need)
            return FAIL("spikecode: an index list of %ld spikes is truncated: %zu of %zu bytes", k,
                        len, need);
        memset(s, 0, sizeof(float) * (size_t)n);
        long last = -1;
        for (long j = 0; j < k; j++) {
            const long i = (long)spikecode_get32(p + 4 * j);
            if (i <= last || i >= n)
                return FAIL("spikecode: index %ld (entry %ld) out of order or beyond %ld values", i,
                            j, n);
            s[i] = 1.0f;
            last = i;
        }
        *used = need;
    } else {
        const size_t need = spikecode_mask_bytes(n);
        if (len < need)
            return FAIL("spikecode: a mask of %ld values is truncated: %zu of %zu bytes", n, len,
                        need);
        long got = 0;
        for (long i = 0; i < n; i++) {
            const int bit = (p[i >> 3] >> (i & 7)) & 1;
            s[i] = bit ? 1.0f : 0.0f;
            got += bit;
        }
        if ((n & 7) && (p[n >> 3] >> (n & 7)))
            return FAIL("spikecode: a mask of %ld values has bits set beyond its end", n);
        if (got != k)
            return FAIL("spikecode: a mask holds %ld spikes, its header says %ld", got, k);
        *used = need;
    }
    *spikes = k;
    return FSNN_OK;
}
