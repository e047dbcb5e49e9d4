/* nmnist: hand-written event files (the real data cannot be had here,
 * SPEC §6): every field decoded exactly, including the 23-bit timestamp's
 * top bits beside the polarity bit; binning into T = 3 frames worked by hand
 * for the fixed window and for the sample's own span; the saccade
 * stabilisation on events at the saccades' ends; the folder order, labels
 * and limits; and malformed files and folders failing with their names. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "dataset.h"
#include "nmnist.h"
#include "status.h"
#include "testutil.h"

static char tmp_dir[] = "/tmp/fsnn_test_nmnist_XXXXXX";

typedef struct {
    int x, y, p;
    uint32_t ts;
} ev_t;

static void encode(const ev_t *e, uint8_t *r) {
    r[0] = (uint8_t)e->x;
    r[1] = (uint8_t)e->y;
    r[2] = (uint8_t)((e->p << 7) | ((e->ts >> 16) & 0x7f));
    r[3] = (uint8_t)(e->ts >> 8);
    r[4] = (uint8_t)e->ts;
}

static void put_events(const char *path, const ev_t *ev, int n, int extra_bytes) {
    uint8_t *b = calloc((size_t)n * 5 + (size_t)extra_bytes + 1, 1);
    for (int i = 0; i < n; i++)
        encode(&ev[i], b + 5 * i);
    size_t len = (size_t)n * 5 + (size_t)extra_bytes;
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(b, 1, len, f) == len;
    ok = (f && fclose(f) == 0) && ok;
    free(b);
    if (!ok) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static float px(const float *fr, int k, int p, int y, int x) {
    return fr[((k * 2 + p) * 34 + y) * 34 + x];
}

static int ones(const float *fr, int T) {
    int n = 0;
    for (long i = 0; i < (long)T * NMNIST_FRAME; i++) {
        if (fr[i] != 0.0f && fr[i] != 1.0f) return -1;
        n += fr[i] == 1.0f;
    }
    return n;
}

static const ev_t sample_a[] = {{0, 0, 1, 0},    {33, 5, 0, 1},      {2, 3, 1, 3000},
                                {2, 3, 1, 3001}, {10, 20, 0, 6000},  {10, 20, 1, 9000},
                                {1, 1, 0, 9001}, {4, 4, 1, 0x7fffff}};
#define N_A ((int)(sizeof sample_a / sizeof sample_a[0]))

static void test_decode_and_bin(void) {
    uint8_t rec[N_A * 5];
    for (int i = 0; i < N_A; i++)
        encode(&sample_a[i], rec + 5 * i);
    /* The last record's byte 2 is 0xff: polarity 1 and the timestamp's top 7 bits. */
    EXPECT(rec[5 * 7 + 2] == 0xff && rec[5 * 7 + 3] == 0xff && rec[5 * 7 + 4] == 0xff,
           "encoding of the last event");
    long n = 0;
    EXPECT_OK(nmnist_parse("a.bin", rec, sizeof rec, &n));
    EXPECT(n == N_A, "%ld events", n);
    int bad = 0;
    for (int i = 0; i < N_A; i++) {
        nmnist_event e;
        nmnist_decode(rec + 5 * i, &e);
        bad += e.x != sample_a[i].x || e.y != sample_a[i].y || e.p != sample_a[i].p ||
               e.ts != sample_a[i].ts;
    }
    EXPECT(bad == 0, "%d events decoded wrongly", bad);
    /* A record written by hand, bytes as in the file: x 7, y 9, OFF, ts 0x012345. */
    const uint8_t raw[5] = {7, 9, 0x01, 0x23, 0x45};
    nmnist_event e;
    nmnist_decode(raw, &e);
    EXPECT(e.x == 7 && e.y == 9 && e.p == 0 && e.ts == 0x012345, "raw record: %d %d %d %u", e.x,
           e.y, e.p, e.ts);

    /* Fixed 3,000 us windows, T = 3 (worked by hand): ts 0 is dropped (ceil(0/w)
     * = 0), ts 1 and 3000 fall in frame 0, 3001 and 6000 in frame 1, 9000 in
     * frame 2, 9001 and later after the third window. */
    float fr[3 * NMNIST_FRAME];
    nmnist_binning b = {3, 3000, 0};
    EXPECT_OK(nmnist_frames(rec, n, &b, fr));
    EXPECT(px(fr, 0, 0, 5, 33) == 1 && px(fr, 0, 1, 3, 2) == 1, "frame 0");
    EXPECT(px(fr, 1, 1, 3, 2) == 1 && px(fr, 1, 0, 20, 10) == 1, "frame 1");
    EXPECT(px(fr, 2, 1, 20, 10) == 1, "frame 2");
    EXPECT(px(fr, 0, 1, 0, 0) == 0 && px(fr, 2, 0, 1, 1) == 0, "ts 0 and ts 9001 left out");
    EXPECT(ones(fr, 3) == 5, "%d pixels set, want 5 (and only 0 or 1)", ones(fr, 3));

    /* The sample's own span, T = 3: t0 = 100, t1 = 400, span 301 us; frame
     * floor((ts - 100) * 3 / 301): ts 200 -> 0 (300/301), 201 -> 1, 300 -> 1,
     * 301 -> 2, 400 -> 2. Two events on one pixel in a bin still give 1. */
    const ev_t span[] = {{1, 1, 0, 100}, {2, 2, 1, 200}, {2, 2, 1, 200}, {3, 3, 1, 201},
                         {4, 4, 0, 300}, {5, 5, 0, 301}, {6, 6, 1, 400}};
    uint8_t rs[7 * 5];
    for (int i = 0; i < 7; i++)
        encode(&span[i], rs + 5 * i);
    b = (nmnist_binning){3, 0, 0};
    EXPECT_OK(nmnist_frames(rs, 7, &b, fr));
    EXPECT(px(fr, 0, 0, 1, 1) == 1 && px(fr, 0, 1, 2, 2) == 1, "span frame 0");
    EXPECT(px(fr, 1, 1, 3, 3) == 1 && px(fr, 1, 0, 4, 4) == 1, "span frame 1");
    EXPECT(px(fr, 2, 0, 5, 5) == 1 && px(fr, 2, 1, 6, 6) == 1, "span frame 2");
    EXPECT(ones(fr, 3) == 6, "%d pixels set, want 6", ones(fr, 3));
    /* One event: its whole span is one bin, frame 0. */
    EXPECT_OK(nmnist_frames(rs + 5 * 3, 1, &b, fr));
    EXPECT(px(fr, 0, 1, 3, 3) == 1 && ones(fr, 3) == 1, "single event");

    /* Stabilisation (stabilize.m, 1-based x, y): at ts 105,000 (end of
     * saccade 1) x - 3.5 and y - 7; at 210,000 (end of 2) x - 7, y back; at
     * 315,000 (end of 3) both back. (10, 10) 0-based = (11, 11) 1-based:
     * 105 ms -> (7.5, 4) -> round half away -> (8, 4) -> 0-based (7, 3);
     * 210 ms -> (4, 11) -> (3, 10); 315 ms -> (10, 10). (10, 3) at 105 ms
     * goes to y = -3: dropped. */
    const ev_t st[] = {{10, 10, 0, 0},
                       {10, 10, 1, 105000},
                       {10, 3, 1, 105000},
                       {10, 10, 0, 210000},
                       {10, 10, 1, 315000}};
    uint8_t rst[5 * 5];
    for (int i = 0; i < 5; i++)
        encode(&st[i], rst + 5 * i);
    b = (nmnist_binning){1, 0, 1};
    EXPECT_OK(nmnist_frames(rst, 5, &b, fr));
    EXPECT(px(fr, 0, 0, 10, 10) == 1, "stabilised ts 0");
    EXPECT(px(fr, 0, 1, 3, 7) == 1, "stabilised 105 ms at (x 7, y 3)");
    EXPECT(px(fr, 0, 0, 10, 3) == 1, "stabilised 210 ms at (x 3, y 10)");
    EXPECT(px(fr, 0, 1, 10, 10) == 1, "stabilised 315 ms back at (10, 10)");
    EXPECT(ones(fr, 1) == 4, "%d pixels set, want 4 (one dropped)", ones(fr, 1));
    /* Without it, the same events stay where they are. */
    b.stabilize = 0;
    EXPECT_OK(nmnist_frames(rst, 5, &b, fr));
    EXPECT(px(fr, 0, 1, 3, 10) == 1 && ones(fr, 1) == 3, "unstabilised: 3 distinct pixels");

    b.T = 0;
    EXPECT_FAILS(nmnist_frames(rst, 5, &b, fr), "0 frames");
}

static void test_parse_bad(void) {
    uint8_t r[15];
    const ev_t ok[3] = {{1, 2, 0, 10}, {3, 4, 1, 20}, {5, 6, 0, 30}};
    for (int i = 0; i < 3; i++)
        encode(&ok[i], r + 5 * i);
    long n = 0;
    EXPECT_FAILS(nmnist_parse("x.bin", r, 0, &n), "x.bin", "empty");
    EXPECT_FAILS(nmnist_parse("x.bin", r, 14, &n), "x.bin", "14 bytes", "5-byte");
    r[5] = 34;
    EXPECT_FAILS(nmnist_parse("x.bin", r, 15, &n), "x.bin", "event 1", "byte offset 5", "x 34");
    r[5] = 3;
    r[11] = 240; /* an ATIS overflow marker */
    EXPECT_FAILS(nmnist_parse("x.bin", r, 15, &n), "x.bin", "event 2", "y 240");
    r[11] = 6;
    r[14] = 19; /* event 2 at 19 us after event 1 at 20 */
    EXPECT_FAILS(nmnist_parse("x.bin", r, 15, &n), "x.bin", "event 2", "19 us", "20 us");
    r[14] = 20; /* equal timestamps are fine */
    EXPECT_OK(nmnist_parse("x.bin", r, 15, &n));
    EXPECT(n == 3, "%ld events", n);
}

static void mkdir_or_die(const char *path) {
    if (mkdir(path, 0755) != 0) {
        perror(path);
        exit(1);
    }
}

/* dir/split/<d>/<name>: sample (d, k) holds 2 events, the first at x = d,
 * y = k, the second at (d + 1, k + 1). */
static void put_sample(const char *root, int d, int k, const char *name) {
    char path[800];
    snprintf(path, sizeof path, "%s/%d/%s", root, d, name);
    const ev_t ev[2] = {{d, k, 1, 100}, {d + 1, k + 1, 0, 5000}};
    put_events(path, ev, 2, 0);
}

/* A set in tmp_dir/name: Train with 2 files per digit (3 for digit 3) and a
 * text file that is ignored; Test with 1 per digit. */
static const char *make_set(const char *name) {
    static char dir[8][600];
    static int next;
    char *d = dir[next++ % 8];
    snprintf(d, sizeof dir[0], "%s/%s", tmp_dir, name);
    mkdir_or_die(d);
    const char *splits[2] = {"Train", "Test"};
    for (int s = 0; s < 2; s++) {
        char root[700], sub[720];
        snprintf(root, sizeof root, "%s/%s", d, splits[s]);
        mkdir_or_die(root);
        for (int digit = 0; digit < 10; digit++) {
            snprintf(sub, sizeof sub, "%s/%d", root, digit);
            mkdir_or_die(sub);
            /* Written in reverse order: the reader sorts by name. */
            if (s == 0 && digit == 3) put_sample(root, digit, 2, "c.bin");
            if (s == 0) put_sample(root, digit, 1, "b.bin");
            put_sample(root, digit, 0, "a.bin");
        }
        snprintf(sub, sizeof sub, "%s/7/notes.txt", root);
        FILE *f = fopen(sub, "w");
        if (f) fclose(f);
    }
    return d;
}

static void test_load(void) {
    const char *d = make_set("good");
    dataset ds;
    EXPECT_OK(dataset_load(DATASET_NMNIST, d, 0, 0, &ds));
    EXPECT(ds.train.n == 21 && ds.test.n == 10, "%ld + %ld samples", ds.train.n, ds.test.n);
    EXPECT(ds.classes == 10 && ds.train.channels == 2 && ds.train.height == 34 &&
               ds.train.width == 34 && ds.train.images == NULL && ds.augment == 0,
           "nmnist shape");
    /* Digit by digit in turn, each digit's files by name. */
    int bad = 0;
    for (long i = 0; i < ds.train.n; i++) {
        int want_d = i < 20 ? (int)(i % 10) : 3, want_k = i < 20 ? (int)(i / 10) : 2;
        const nmnist_set *s = &ds.train.events;
        nmnist_event e0, e1;
        nmnist_decode(s->records + 5 * s->start[i], &e0);
        nmnist_decode(s->records + 5 * (s->start[i] + 1), &e1);
        bad += ds.train.labels[i] != want_d || s->start[i + 1] - s->start[i] != 2 ||
               e0.x != want_d || e0.y != want_k || e0.p != 1 || e0.ts != 100 ||
               e1.x != want_d + 1 || e1.y != want_k + 1 || e1.p != 0 || e1.ts != 5000;
    }
    EXPECT(bad == 0, "%d training samples out of order or wrong", bad);
    EXPECT(ds.test.labels[9] == 9 && ds.test.events.start[10] == 20, "test split");
    dataset_destroy(&ds);

    /* A limit takes the first samples of that order: every class early. */
    EXPECT_OK(dataset_load(DATASET_NMNIST, d, 12, 3, &ds));
    EXPECT(ds.train.n == 12 && ds.test.n == 3 && ds.train.labels[10] == 0 &&
               ds.train.labels[11] == 1 && ds.train.events.start[12] == 24,
           "limited: %ld samples", ds.train.n);
    dataset_destroy(&ds);
    EXPECT_FAILS(dataset_load(DATASET_NMNIST, d, 22, 0, &ds), "Train", "22", "only 21");

    int n_in = 0, classes = 0;
    EXPECT_OK(dataset_shape(DATASET_NMNIST, &n_in, &classes));
    EXPECT(n_in == 2312 && classes == 10, "nmnist shape %d %d", n_in, classes);

    /* The trainer's frames source gives each sample's own binning. */
    EXPECT_OK(dataset_load(DATASET_NMNIST, d, 0, 0, &ds));
    dataset_events ev = {&ds.train.events, {4, 0, 0}};
    static float got[4 * NMNIST_FRAME], want[4 * NMNIST_FRAME];
    long bad_frames = 0;
    for (long id = 0; id < ds.train.n; id++) {
        const long first = ds.train.events.start[id];
        EXPECT_OK(dataset_frames(&ev, id, got));
        EXPECT_OK(nmnist_frames(ds.train.events.records + first * NMNIST_EVENT_BYTES,
                                ds.train.events.start[id + 1] - first, &ev.bin, want));
        bad_frames += memcmp(got, want, sizeof got) != 0;
    }
    EXPECT(bad_frames == 0, "%ld samples' frames differ from nmnist_frames", bad_frames);
    EXPECT_FAILS(dataset_frames(&ev, ds.train.n, got), "event sample 21 out of range");
    EXPECT_FAILS(dataset_frames(&ev, -1, got), "out of range");
    dataset_destroy(&ds);
}

static void test_load_bad(void) {
    dataset ds;
    char path[800];
    /* Bad files name themselves. */
    const char *d = make_set("size");
    snprintf(path, sizeof path, "%s/Train/4/b.bin", d);
    const ev_t one[1] = {{1, 1, 0, 5}};
    put_events(path, one, 1, 3);
    EXPECT_FAILS(dataset_load(DATASET_NMNIST, d, 0, 0, &ds), "Train/4/b.bin", "8 bytes");
    EXPECT(ds.train.n == 0 && ds.train.events.records == NULL, "nothing kept after a failure");
    d = make_set("xy");
    snprintf(path, sizeof path, "%s/Test/6/a.bin", d);
    const ev_t off[2] = {{1, 1, 0, 5}, {34, 1, 0, 6}};
    put_events(path, off, 2, 0);
    EXPECT_FAILS(dataset_load(DATASET_NMNIST, d, 0, 0, &ds), "Test/6/a.bin", "x 34");
    d = make_set("order");
    snprintf(path, sizeof path, "%s/Train/0/a.bin", d);
    const ev_t back[2] = {{1, 1, 0, 500}, {2, 2, 0, 499}};
    put_events(path, back, 2, 0);
    EXPECT_FAILS(dataset_load(DATASET_NMNIST, d, 1, 1, &ds), "Train/0/a.bin", "499 us");
    d = make_set("empty");
    snprintf(path, sizeof path, "%s/Train/9/a.bin", d);
    put_events(path, one, 0, 0);
    EXPECT_FAILS(dataset_load(DATASET_NMNIST, d, 0, 0, &ds), "Train/9/a.bin", "empty");
    /* More events than a sample can have: refused from the size alone. */
    d = make_set("huge");
    snprintf(path, sizeof path, "%s/Train/2/a.bin", d);
    EXPECT(truncate(path, 5 * (NMNIST_MAX_EVENTS + 1)) == 0, "truncate");
    EXPECT_FAILS(dataset_load(DATASET_NMNIST, d, 0, 0, &ds), "Train/2/a.bin", "more than");

    /* Missing folders. */
    d = make_set("nodigit");
    snprintf(path, sizeof path, "%s/Train/5", d);
    testutil_remove_tree(path);
    EXPECT_FAILS(dataset_load(DATASET_NMNIST, d, 0, 0, &ds), "Train/5", "folder");
    d = make_set("notest");
    snprintf(path, sizeof path, "%s/Test", d);
    testutil_remove_tree(path);
    EXPECT_FAILS(dataset_load(DATASET_NMNIST, d, 0, 0, &ds), "notest/Test", "data.path");
    /* Digit folders without samples. */
    snprintf(path, sizeof path, "%s/hollow", tmp_dir);
    mkdir_or_die(path);
    char sub[900];
    snprintf(sub, sizeof sub, "%s/Train", path);
    mkdir_or_die(sub);
    for (int k = 0; k < 10; k++) {
        snprintf(sub, sizeof sub, "%s/Train/%d", path, k);
        mkdir_or_die(sub);
    }
    EXPECT_FAILS(dataset_load(DATASET_NMNIST, path, 0, 0, &ds), "hollow/Train", "no sample");
}

int main(void) {
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_decode_and_bin();
    test_parse_bad();
    test_load();
    test_load_bad();
    testutil_remove_tree(tmp_dir);
    return check_finish("nmnist");
}
