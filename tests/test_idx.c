/* idx: good files (plain and gzip, from disk and memory, with max_items) and
 * every rejected case, each failing with a message that names the file and
 * what was wrong. Files are written to a fresh folder under /tmp. */
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "idx.h"
#include "status.h"
#include "testutil.h"

#define MAX_BYTES ((size_t)1 << 20)

static char tmp_dir[] = "/tmp/fsnn_test_idx_XXXXXX";

static const char *tmp_path(const char *name) {
    static char path[4][512];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", tmp_dir, name);
    return p;
}

/* An IDX image in memory: header for `dims` then `payload` bytes of the
 * pattern (i * 7 + 3) mod 256. */
typedef struct {
    uint8_t bytes[4096];
    size_t len;
} idx_image;

static idx_image make(uint8_t type, int ndim, const uint32_t *dims, size_t payload) {
    idx_image im;
    memset(&im, 0, sizeof im);
    im.bytes[2] = type;
    im.bytes[3] = (uint8_t)ndim;
    im.len = 4;
    for (int i = 0; i < ndim; i++) {
        im.bytes[im.len++] = (uint8_t)(dims[i] >> 24);
        im.bytes[im.len++] = (uint8_t)(dims[i] >> 16);
        im.bytes[im.len++] = (uint8_t)(dims[i] >> 8);
        im.bytes[im.len++] = (uint8_t)dims[i];
    }
    for (size_t i = 0; i < payload && im.len < sizeof im.bytes; i++)
        im.bytes[im.len++] = (uint8_t)(i * 7 + 3);
    return im;
}

static const char *put_plain(const char *name, const uint8_t *bytes, size_t len) {
    const char *path = tmp_path(name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(bytes, 1, len, f) != len) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
    return path;
}

static const char *put_gz(const char *name, const uint8_t *bytes, size_t len) {
    const char *path = tmp_path(name);
    gzFile gz = gzopen(path, "wb");
    if (!gz || gzwrite(gz, bytes, (unsigned)len) != (int)len || gzclose(gz) != Z_OK) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    return path;
}

/* The bytes of a file (static buffer). */
static size_t slurp(const char *path, uint8_t *buf, size_t size) {
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, size, f) : 0;
    if (f) fclose(f);
    return n;
}

static const uint32_t dims345[3] = {3, 4, 5};

static void expect_pattern(const idx_array *a, size_t count) {
    EXPECT(a->count == count, "count %zu, expected %zu", a->count, count);
    int same = a->data != NULL;
    for (size_t i = 0; same && i < count; i++)
        same = a->data[i] == (uint8_t)(i * 7 + 3);
    EXPECT(same, "data differs from what was written");
}

static void test_good(void) {
    idx_image im = make(0x08, 3, dims345, 60);
    idx_array a;
    const char *plain = put_plain("good-idx3", im.bytes, im.len);
    const char *gz = put_gz("good-idx3.gz", im.bytes, im.len);
    const char *paths[2] = {plain, gz};
    for (int k = 0; k < 2; k++) {
        EXPECT_OK(idx_read(paths[k], 3, MAX_BYTES, 0, &a));
        EXPECT(a.ndim == 3 && a.dims[0] == 3 && a.dims[1] == 4 && a.dims[2] == 5, "dims of %s",
               paths[k]);
        EXPECT(a.file_items == 3, "file_items %u", a.file_items);
        expect_pattern(&a, 60);
        idx_free(&a);
        EXPECT(a.data == NULL && a.count == 0, "idx_free zeroes");

        EXPECT_OK(idx_read(paths[k], 3, MAX_BYTES, 2, &a));
        EXPECT(a.dims[0] == 2 && a.file_items == 3, "max_items 2: dims[0] %u", a.dims[0]);
        expect_pattern(&a, 40);
        idx_free(&a);

        EXPECT_OK(idx_read(paths[k], 3, MAX_BYTES, 1000, &a));
        EXPECT(a.dims[0] == 3, "max_items above the count keeps all: %u", a.dims[0]);
        idx_free(&a);
    }
    /* Exactly at the limit is fine. */
    EXPECT_OK(idx_read(plain, 3, 60, 0, &a));
    idx_free(&a);

    const uint32_t d1[1] = {9};
    idx_image lab = make(0x08, 1, d1, 9);
    EXPECT_OK(idx_read(put_plain("labels-idx1", lab.bytes, lab.len), 1, MAX_BYTES, 0, &a));
    EXPECT(a.ndim == 1 && a.dims[0] == 9, "labels dims");
    expect_pattern(&a, 9);
    idx_free(&a);

    EXPECT_OK(idx_parse("mem", im.bytes, im.len, 3, MAX_BYTES, 0, &a));
    expect_pattern(&a, 60);
    idx_free(&a);
    EXPECT_OK(idx_parse("mem", im.bytes, im.len, 3, MAX_BYTES, 1, &a));
    EXPECT(a.dims[0] == 1, "idx_parse max_items");
    expect_pattern(&a, 20);
    idx_free(&a);

    idx_array zero;
    memset(&zero, 0, sizeof zero);
    idx_free(&zero);
    EXPECT(zero.data == NULL, "idx_free on a zeroed struct");
}

static void test_bad(void) {
    idx_array a;
    idx_image im = make(0x08, 3, dims345, 60);
    const char *p;

    p = put_plain("short-idx3", im.bytes, im.len - 10);
    EXPECT_FAILS(idx_read(p, 3, MAX_BYTES, 0, &a), p, "truncated",
                 "payload ends at byte 66 of 76 expected");
    EXPECT(a.data == NULL, "no data after a failure");
    /* Truncation after the kept items is still found. */
    EXPECT_FAILS(idx_read(p, 3, MAX_BYTES, 1, &a), p, "truncated");
    p = put_gz("short-gzdata-idx3.gz", im.bytes, im.len - 10);
    EXPECT_FAILS(idx_read(p, 3, MAX_BYTES, 0, &a), p, "truncated", "of 76 expected");
    p = put_plain("header-idx3", im.bytes, 9);
    EXPECT_FAILS(idx_read(p, 3, MAX_BYTES, 0, &a), p, "truncated", "header ends at byte 9 of 16");
    p = put_plain("tiny-idx3", im.bytes, 2);
    EXPECT_FAILS(idx_read(p, 3, MAX_BYTES, 0, &a), p, "truncated", "header ends at byte 2 of 4");
    p = put_plain("empty-idx3", im.bytes, 0);
    EXPECT_FAILS(idx_read(p, 3, MAX_BYTES, 0, &a), p, "truncated");

    /* A .gz cut in half: zlib notices the missing end of the stream. */
    uint8_t gzbytes[8192];
    size_t gzlen = slurp(put_gz("whole-idx3.gz", im.bytes, im.len), gzbytes, sizeof gzbytes);
    p = put_plain("cut-idx3.gz", gzbytes, gzlen / 2);
    EXPECT_FAILS(idx_read(p, 3, MAX_BYTES, 0, &a), p, "truncated");
    p = put_plain("cut-trailer-idx3.gz", gzbytes, gzlen - 4);
    EXPECT_FAILS(idx_read(p, 3, MAX_BYTES, 0, &a), p, "truncated", "gzip");

    /* Bytes flipped in the middle of the compressed stream. */
    const uint32_t big[3] = {10, 20, 20};
    idx_image large = make(0x08, 3, big, 4000);
    gzlen = slurp(put_gz("large-idx3.gz", large.bytes, large.len), gzbytes, sizeof gzbytes);
    EXPECT(gzlen > 40, "compressed size %zu", gzlen);
    for (size_t i = gzlen / 2 - 4; i < gzlen / 2 + 4; i++)
        gzbytes[i] ^= 0x5a;
    p = put_plain("corrupt-idx3.gz", gzbytes, gzlen);
    EXPECT_FAILS(idx_read(p, 3, MAX_BYTES, 0, &a), p, "gzip");

    idx_image bad = im;
    bad.bytes[0] = 0x01;
    p = put_plain("magic-idx3", bad.bytes, bad.len);
    EXPECT_FAILS(idx_read(p, 3, MAX_BYTES, 0, &a), p, "magic", "0x01 0x00");
    p = put_gz("magic-idx3.gz", bad.bytes, bad.len);
    EXPECT_FAILS(idx_read(p, 3, MAX_BYTES, 0, &a), p, "magic");

    bad = im;
    bad.bytes[2] = 0x0D;
    p = put_plain("type-idx3", bad.bytes, bad.len);
    EXPECT_FAILS(idx_read(p, 3, MAX_BYTES, 0, &a), p, "type 0x0d");

    p = put_plain("ndim-idx3", im.bytes, im.len);
    EXPECT_FAILS(idx_read(p, 1, MAX_BYTES, 0, &a), p, "3 dimensions", "expected 1");
    EXPECT_FAILS(idx_read(p, 7, MAX_BYTES, 0, &a), p, "7 dimensions");

    const uint32_t zero_dim[3] = {3, 0, 5};
    bad = make(0x08, 3, zero_dim, 0);
    p = put_plain("zero-idx3", bad.bytes, bad.len);
    EXPECT_FAILS(idx_read(p, 3, MAX_BYTES, 0, &a), p, "dimension 1 is 0");

    /* The header alone: any allocation or read of the payload would fail
     * differently (allocation failure, or "truncated"). */
    const uint32_t huge[3] = {0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFFu};
    bad = make(0x08, 3, huge, 0);
    p = put_plain("huge-idx3", bad.bytes, bad.len);
    EXPECT_FAILS(idx_read(p, 3, MAX_BYTES, 0, &a), p, "oversized", "overflows");
    const uint32_t over[3] = {60001, 28, 28};
    bad = make(0x08, 3, over, 0);
    p = put_gz("over-idx3.gz", bad.bytes, bad.len);
    EXPECT_FAILS(idx_read(p, 3, (size_t)60000 * 784, 0, &a), p, "oversized", "47040784 bytes");
    EXPECT_FAILS(idx_parse("mem-huge", bad.bytes, bad.len, 3, MAX_BYTES, 0, &a), "mem-huge",
                 "oversized");

    uint8_t longer[4096];
    memcpy(longer, im.bytes, im.len);
    memcpy(longer + im.len, "xyz", 3);
    p = put_plain("trail-idx3", longer, im.len + 3);
    EXPECT_FAILS(idx_read(p, 3, MAX_BYTES, 0, &a), p, "3 trailing bytes", "byte 76");
    EXPECT_FAILS(idx_read(p, 3, MAX_BYTES, 1, &a), p, "trailing");
    p = put_gz("trail-idx3.gz", longer, im.len + 3);
    EXPECT_FAILS(idx_read(p, 3, MAX_BYTES, 0, &a), p, "trailing");
    EXPECT_FAILS(idx_parse("mem-trail", longer, im.len + 3, 3, MAX_BYTES, 0, &a), "mem-trail",
                 "trailing");
    EXPECT_FAILS(idx_parse("mem-short", im.bytes, im.len - 1, 3, MAX_BYTES, 0, &a), "mem-short",
                 "truncated", "75 of 76");
    EXPECT_FAILS(idx_parse("mem-empty", im.bytes, 0, 3, MAX_BYTES, 0, &a), "mem-empty",
                 "truncated");

    p = tmp_path("no-such-idx3");
    EXPECT_FAILS(idx_read(p, 3, MAX_BYTES, 0, &a), p, "cannot open");
    EXPECT_FAILS(idx_read(tmp_dir, 3, MAX_BYTES, 0, &a), tmp_dir, "cannot read");
    EXPECT(a.data == NULL && a.count == 0, "out is zeroed after failures");
}

int main(void) {
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_good();
    test_bad();
    testutil_remove_tree(tmp_dir);
    return check_finish("idx");
}
