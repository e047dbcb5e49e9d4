/* idx: validating IDX reader over one byte source, a zlib stream or memory. */
#include "idx.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "status.h" // defines: FAIL, CHECK, XCALLOC

#define IDX_TYPE_UBYTE 0x08

/* The bytes of one IDX file, counted as the uncompressed stream. */
typedef struct {
    const char *name;
    gzFile gz;          /* NULL when reading from memory */
    const uint8_t *mem; /* memory source */
    size_t mem_len;
    unsigned long long pos;    /* bytes consumed so far */
    unsigned long long expect; /* header + payload size, once the header is known */
} idx_src;

/* Reads up to n bytes; *got < n only at the end of the data. A gzip stream
 * that is corrupt or cut short fails here, since only zlib can tell. */
static int idx_src_read(idx_src *s, uint8_t *buf, size_t n, size_t *got) {
    *got = 0;
    if (!s->gz) {
        size_t left = s->mem_len - (size_t)s->pos;
        *got = n < left ? n : left;
        if (*got) memcpy(buf, s->mem + s->pos, *got);
        s->pos += *got;
        return FSNN_OK;
    }
    while (*got < n) {
        size_t want = n - *got;
        unsigned chunk = want > (size_t)INT_MAX ? (unsigned)INT_MAX : (unsigned)want;
        int r = gzread(s->gz, buf + *got, chunk);
        if (r > 0) {
            *got += (size_t)r;
            s->pos += (unsigned long long)r;
        }
        if (r == (int)chunk) continue;
        int zerr = Z_OK;
        const char *zmsg = gzerror(s->gz, &zerr);
        /* zlib starts its message with the path, which ours names already. */
        size_t name_len = strlen(s->name);
        if (!strncmp(zmsg, s->name, name_len) && !strncmp(zmsg + name_len, ": ", 2))
            zmsg += name_len + 2;
        if (zerr == Z_BUF_ERROR && s->pos >= s->expect)
            return FAIL("%s: truncated: the gzip stream ends without its trailer", s->name);
        if (zerr == Z_BUF_ERROR)
            return FAIL("%s: truncated: the gzip stream is cut short at byte %llu of %llu expected",
                        s->name, s->pos, s->expect);
        if (zerr == Z_ERRNO)
            return FAIL("%s: cannot read at byte %llu: %s", s->name, s->pos, strerror(errno));
        if (zerr != Z_OK) return FAIL("%s: gzip data corrupt: %s", s->name, zmsg);
        break;
    }
    return FSNN_OK;
}

/* Reads exactly n bytes; `part` names what they are in the message. */
static int idx_src_need(idx_src *s, uint8_t *buf, size_t n, const char *part) {
    size_t got = 0;
    CHECK(idx_src_read(s, buf, n, &got));
    if (got < n)
        return FAIL("%s: truncated: %s ends at byte %llu of %llu expected", s->name, part, s->pos,
                    s->expect);
    return FSNN_OK;
}

/* Consumes n bytes without keeping them (the part after max_items). */
static int idx_src_skip(idx_src *s, unsigned long long n) {
    uint8_t scratch[16384];
    while (n > 0) {
        size_t step = n < sizeof scratch ? (size_t)n : sizeof scratch;
        CHECK(idx_src_need(s, scratch, step, "payload"));
        n -= step;
    }
    return FSNN_OK;
}

static int idx_src_no_trailing(idx_src *s) {
    uint8_t scratch[16384];
    unsigned long long extra = 0;
    size_t got = 0;
    do {
        CHECK(idx_src_read(s, scratch, sizeof scratch, &got));
        extra += got;
    } while (got == sizeof scratch);
    if (extra)
        return FAIL("%s: %llu trailing bytes after the payload, which ends at byte %llu as the "
                    "header announces",
                    s->name, extra, s->expect);
    return FSNN_OK;
}

static uint32_t idx_be32(const uint8_t *b) {
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | (uint32_t)b[3];
}

static void idx_dims_text(char *buf, size_t size, const uint32_t *dims, int ndim) {
    size_t used = 0;
    buf[0] = '\0';
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%u", i ? " x " : "", dims[i]);
}

static int idx_parse_src(idx_src *s, int want_ndim, size_t max_bytes, size_t max_items,
                         idx_array *out) {
    if (want_ndim < 1 || want_ndim > IDX_MAX_DIMS)
        return FAIL("%s: cannot read IDX with %d dimensions (1 to %d supported)", s->name,
                    want_ndim, IDX_MAX_DIMS);
    uint8_t head[4 + 4 * IDX_MAX_DIMS];
    s->expect = 4;
    CHECK(idx_src_need(s, head, 4, "header"));
    if (head[0] != 0 || head[1] != 0)
        return FAIL("%s: bad magic: bytes 0-1 are 0x%02x 0x%02x, an IDX file starts with 0x00 "
                    "0x00",
                    s->name, head[0], head[1]);
    if (head[2] != IDX_TYPE_UBYTE)
        return FAIL("%s: unsupported IDX type 0x%02x at byte 2; only 0x08 (unsigned byte) is "
                    "read",
                    s->name, head[2]);
    if (head[3] != want_ndim)
        return FAIL("%s: the header gives %u dimensions (byte 3), expected %d", s->name, head[3],
                    want_ndim);
    s->expect = 4 + 4 * (unsigned long long)want_ndim;
    CHECK(idx_src_need(s, head + 4, 4 * (size_t)want_ndim, "header"));

    uint32_t dims[IDX_MAX_DIMS];
    unsigned long long total = 1, inner = 1;
    int overflow = 0;
    for (int i = 0; i < want_ndim; i++) {
        dims[i] = idx_be32(head + 4 + 4 * i);
        if (dims[i] == 0) return FAIL("%s: dimension %d is 0", s->name, i);
        /* Each factor is < 2^32, so testing before multiplying keeps the
         * product exact or flags it. */
        if (total > ULLONG_MAX / dims[i]) overflow = 1;
        if (!overflow) total *= dims[i];
        if (i > 0) inner *= dims[i];
    }
    if (overflow || total > max_bytes) {
        char text[96];
        idx_dims_text(text, sizeof text, dims, want_ndim);
        if (overflow)
            return FAIL("%s: oversized dimension: %s overflows 64 bits (limit %zu bytes)", s->name,
                        text, max_bytes);
        return FAIL("%s: oversized dimension: %s = %llu bytes exceeds the limit of %zu bytes",
                    s->name, text, total, max_bytes);
    }
    s->expect += total;

    uint32_t keep = dims[0];
    if (max_items > 0 && max_items < keep) keep = (uint32_t)max_items;
    size_t keep_bytes = (size_t)(keep * inner);
    uint8_t *data = NULL;
    CHECK(XCALLOC(&data, keep_bytes));
    int rc = idx_src_need(s, data, keep_bytes, "payload");
    if (rc == 0) rc = idx_src_skip(s, total - keep_bytes);
    if (rc == 0) rc = idx_src_no_trailing(s);
    if (rc != 0) {
        free(data);
        return rc;
    }
    out->ndim = want_ndim;
    for (int i = 0; i < want_ndim; i++)
        out->dims[i] = dims[i];
    out->dims[0] = keep;
    out->file_items = dims[0];
    out->count = keep_bytes;
    out->data = data;
    return FSNN_OK;
}

int idx_read(const char *path, int want_ndim, size_t max_bytes, size_t max_items, idx_array *out) {
    memset(out, 0, sizeof *out);
    errno = 0;
    gzFile gz = gzopen(path, "rb");
    if (!gz)
        return FAIL("%s: cannot open: %s", path, errno ? strerror(errno) : "zlib out of memory");
    /* Large reads dominate; a bigger buffer halves the number of syscalls. */
    gzbuffer(gz, 1 << 17);
    idx_src s = {.name = path, .gz = gz};
    int rc = idx_parse_src(&s, want_ndim, max_bytes, max_items, out);
    gzclose(gz);
    if (rc != 0) status_trace(__FILE__, __LINE__);
    return rc;
}

int idx_parse(const char *name, const uint8_t *bytes, size_t len, int want_ndim, size_t max_bytes,
              size_t max_items, idx_array *out) {
    memset(out, 0, sizeof *out);
    idx_src s = {.name = name, .mem = bytes, .mem_len = len};
    CHECK(idx_parse_src(&s, want_ndim, max_bytes, max_items, out));
    return FSNN_OK;
}

void idx_free(idx_array *a) {
    free(a->data);
    memset(a, 0, sizeof *a);
}
