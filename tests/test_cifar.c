/* cifar: generated CIFAR-10 and CIFAR-100 binary files in fresh folders
 * under /tmp (the real ones cannot be had here, SPEC §6): every pixel and
 * label read back exactly, the tarball's folder layout, the sample limits,
 * and each malformed file (wrong size, truncated, label out of range,
 * missing, empty) failing with a message that names the file. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "cifar.h"
#include "dataset.h"
#include "status.h"
#include "testutil.h"

static char tmp_dir[] = "/tmp/fsnn_test_cifar_XXXXXX";

/* Pixel p of the record with global index g (over a split's files). */
static uint8_t pixel(long g, long p) {
    return (uint8_t)(g * 31 + p * 7 + p / 1024);
}
/* Fine label of global record g. */
static uint8_t fine(long g, int classes) {
    return (uint8_t)((g * 37 + 3) % classes);
}

/* Writes `n` records (global indices first .. first+n-1) of `kind` to
 * dir/name; `extra` bytes of junk are appended (negative: cut off). */
static void put_file(const char *dir, const char *name, cifar_kind kind, long first, long n,
                     long extra) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    const size_t rec = cifar_record_size(kind);
    size_t len = (size_t)((long)rec * n + extra);
    uint8_t *b = calloc(len + 1, 1);
    for (long i = 0; i < n; i++) {
        uint8_t *r = b + (size_t)i * rec;
        long g = first + i;
        if ((size_t)i * rec + rec > len) break;
        size_t head = rec - CIFAR_PIXELS;
        if (kind == CIFAR_100) r[0] = (uint8_t)(fine(g, 100) / 5);
        r[head - 1] = fine(g, (int)kind);
        for (long p = 0; p < CIFAR_PIXELS; p++)
            r[head + p] = pixel(g, p);
    }
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(b, 1, len, f) == len;
    ok = (f && fclose(f) == 0) && ok;
    free(b);
    if (!ok) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

static void put_byte(const char *dir, const char *name, long offset, uint8_t v) {
    char path[600];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "r+b");
    if (!f || fseek(f, offset, SEEK_SET) != 0 || fputc(v, f) == EOF || fclose(f) != 0) {
        fprintf(stderr, "cannot patch %s\n", path);
        exit(1);
    }
}

static const char *mkfolder(const char *name) {
    static char dir[8][600];
    static int next;
    char *d = dir[next++ % 8];
    snprintf(d, sizeof dir[0], "%s/%s", tmp_dir, name);
    if (mkdir(d, 0755) != 0) {
        perror(d);
        exit(1);
    }
    return d;
}

/* CIFAR-10 with `per` training records in each of the five batches and
 * `tests` test records. */
static const char *make_10(const char *name, long per, long tests) {
    const char *d = mkfolder(name);
    for (int k = 0; k < 5; k++) {
        char file[32];
        snprintf(file, sizeof file, "data_batch_%d.bin", k + 1);
        put_file(d, file, CIFAR_10, k * per, per, 0);
    }
    put_file(d, "test_batch.bin", CIFAR_10, 0, tests, 0);
    return d;
}

static const char *make_100(const char *name, long train, long tests) {
    const char *d = mkfolder(name);
    put_file(d, "train.bin", CIFAR_100, 0, train, 0);
    put_file(d, "test.bin", CIFAR_100, 0, tests, 0);
    return d;
}

/* Every pixel and label of a split against the generator. */
static void expect_split(const dataset_split *s, long n, int classes, const char *what) {
    EXPECT(s->n == n, "%s: %ld samples, want %ld", what, s->n, n);
    EXPECT(s->channels == 3 && s->height == 32 && s->width == 32, "%s: shape %d x %d x %d", what,
           s->channels, s->height, s->width);
    long bad_px = 0, bad_lab = 0;
    for (long g = 0; g < s->n && g < n; g++) {
        bad_lab += s->labels[g] != fine(g, classes);
        for (long p = 0; p < CIFAR_PIXELS; p++)
            bad_px += s->images[g * CIFAR_PIXELS + p] != pixel(g, p);
    }
    EXPECT(bad_px == 0 && bad_lab == 0, "%s: %ld pixels and %ld labels differ", what, bad_px,
           bad_lab);
}

static void test_good(void) {
    /* Five training files of 3 records: all 15, in file order. */
    const char *d = make_10("c10", 3, 4);
    dataset_split tr, te;
    memset(&tr, 0, sizeof tr);
    memset(&te, 0, sizeof te);
    EXPECT_OK(cifar_load(CIFAR_10, d, 15, 4, &tr, &te));
    expect_split(&tr, 15, 10, "cifar10 train");
    expect_split(&te, 4, 10, "cifar10 test");
    /* The channel-major layout: pixel (c, y, x) of record g is at c*1024 + y*32 + x. */
    EXPECT(tr.images[7 * CIFAR_PIXELS + 2 * 1024 + 5 * 32 + 9] == pixel(7, 2 * 1024 + 5 * 32 + 9),
           "blue plane pixel");
    dataset tmp = {.train = tr, .test = te};
    dataset_destroy(&tmp);

    /* A limit inside the second file: 3 records of the first, 1 of the second. */
    EXPECT_OK(cifar_load(CIFAR_10, d, 4, 2, &tr, &te));
    expect_split(&tr, 4, 10, "cifar10 train, limit 4");
    expect_split(&te, 2, 10, "cifar10 test, limit 2");
    tmp = (dataset){.train = tr, .test = te};
    dataset_destroy(&tmp);

    /* Through dataset_load: classes, per-channel normalisation, augmentation. */
    dataset ds;
    EXPECT_OK(dataset_load(DATASET_CIFAR10, d, 10, 3, &ds));
    EXPECT(ds.classes == 10 && ds.augment == 1, "classes %d augment %d", ds.classes, ds.augment);
    EXPECT(ds.mean[0] == 0.4914f && ds.mean[1] == 0.4822f && ds.mean[2] == 0.4465f, "mean");
    EXPECT(ds.std[0] == 0.2023f && ds.std[1] == 0.1994f && ds.std[2] == 0.2010f, "std");
    expect_split(&ds.train, 10, 10, "dataset_load cifar10");
    dataset_destroy(&ds);

    /* The official tarball's folder inside data.path. */
    const char *outer = mkfolder("outer10");
    char inner[700];
    snprintf(inner, sizeof inner, "%s/cifar-10-batches-bin", tmp_dir);
    EXPECT(rename(d, inner) == 0, "rename");
    char moved[700];
    snprintf(moved, sizeof moved, "%s/cifar-10-batches-bin", outer);
    EXPECT(rename(inner, moved) == 0, "rename");
    EXPECT_OK(dataset_load(DATASET_CIFAR10, outer, 15, 4, &ds));
    expect_split(&ds.train, 15, 10, "cifar10 in cifar-10-batches-bin");
    dataset_destroy(&ds);

    /* CIFAR-100: the fine label, 100 classes. */
    const char *h = make_100("c100", 230, 120);
    EXPECT_OK(dataset_load(DATASET_CIFAR100, h, 230, 120, &ds));
    EXPECT(ds.classes == 100 && ds.augment == 1, "cifar100 classes %d", ds.classes);
    expect_split(&ds.train, 230, 100, "cifar100 train");
    expect_split(&ds.test, 120, 100, "cifar100 test");
    int seen99 = 0;
    for (long i = 0; i < ds.train.n; i++)
        seen99 |= ds.train.labels[i] == 99;
    EXPECT(seen99, "fine label 99 read back");
    dataset_destroy(&ds);
    const char *outer100 = mkfolder("outer100");
    snprintf(moved, sizeof moved, "%s/cifar-100-binary", outer100);
    EXPECT(rename(h, moved) == 0, "rename");
    EXPECT_OK(dataset_load(DATASET_CIFAR100, outer100, 5, 5, &ds));
    expect_split(&ds.train, 5, 100, "cifar100 in cifar-100-binary");
    dataset_destroy(&ds);

    int n_in = 0, classes = 0;
    EXPECT_OK(dataset_shape(DATASET_CIFAR10, &n_in, &classes));
    EXPECT(n_in == 3072 && classes == 10, "cifar10 shape %d %d", n_in, classes);
    EXPECT_OK(dataset_shape(DATASET_CIFAR100, &n_in, &classes));
    EXPECT(n_in == 3072 && classes == 100, "cifar100 shape %d %d", n_in, classes);
}

static void test_bad(void) {
    dataset ds;
    /* Small files without a limit: the official counts are required. */
    const char *d = make_10("counts", 3, 4);
    EXPECT_FAILS(dataset_load(DATASET_CIFAR10, d, 0, 4, &ds), "data_batch_1.bin", "3 records",
                 "10000");
    EXPECT_FAILS(dataset_load(DATASET_CIFAR10, d, 15, 0, &ds), "test_batch.bin", "4 records",
                 "10000");
    /* A limit the files cannot meet. */
    EXPECT_FAILS(dataset_load(DATASET_CIFAR10, d, 16, 4, &ds), "data.train_limit", "16", "15");
    EXPECT_FAILS(dataset_load(DATASET_CIFAR10, d, 15, 5, &ds), "test_batch.bin", "only 4");

    /* Wrong size: one byte too many; truncated: the last record cut short. */
    d = make_10("extra", 2, 2);
    put_file(d, "data_batch_2.bin", CIFAR_10, 2, 2, 1);
    EXPECT_FAILS(dataset_load(DATASET_CIFAR10, d, 10, 2, &ds), "data_batch_2.bin", "6147",
                 "3073-byte records");
    EXPECT(ds.train.images == NULL && ds.train.n == 0, "nothing kept after a failure");
    d = make_10("cut", 2, 2);
    put_file(d, "test_batch.bin", CIFAR_10, 0, 2, -100);
    EXPECT_FAILS(dataset_load(DATASET_CIFAR10, d, 10, 1, &ds), "test_batch.bin", "6046",
                 "3073-byte records");

    /* Labels out of range: record index and byte offset in the message. */
    d = make_10("label", 3, 3);
    put_byte(d, "data_batch_4.bin", 2 * 3073, 10);
    EXPECT_FAILS(dataset_load(DATASET_CIFAR10, d, 15, 3, &ds), "data_batch_4.bin", "label 10",
                 "record 2", "byte offset 6146");
    /* Beyond the limit the record is not read. */
    EXPECT_OK(dataset_load(DATASET_CIFAR10, d, 11, 3, &ds));
    dataset_destroy(&ds);
    d = make_100("fine", 4, 2);
    put_byte(d, "test.bin", 1 * 3074 + 1, 100);
    EXPECT_FAILS(dataset_load(DATASET_CIFAR100, d, 4, 2, &ds), "test.bin", "label 100", "record 1",
                 "byte offset 3075", "0 to 99");
    d = make_100("coarse", 4, 2);
    put_byte(d, "train.bin", 3 * 3074, 20);
    EXPECT_FAILS(dataset_load(DATASET_CIFAR100, d, 4, 2, &ds), "train.bin", "coarse label 20",
                 "record 3");

    /* Missing and empty files, missing folder, a file given as the folder. */
    d = make_10("missing", 1, 1);
    char path[700];
    snprintf(path, sizeof path, "%s/data_batch_3.bin", d);
    unlink(path);
    EXPECT_FAILS(dataset_load(DATASET_CIFAR10, d, 5, 1, &ds), "data_batch_3.bin");
    d = make_10("empty", 1, 1);
    put_file(d, "data_batch_5.bin", CIFAR_10, 0, 0, 0);
    EXPECT_FAILS(dataset_load(DATASET_CIFAR10, d, 4, 1, &ds), "data_batch_5.bin", "empty");
    d = mkfolder("nothing");
    EXPECT_FAILS(dataset_load(DATASET_CIFAR10, d, 0, 0, &ds), "nothing", "data_batch_1.bin",
                 "cifar-10-batches-bin");
    EXPECT_FAILS(dataset_load(DATASET_CIFAR100, d, 0, 0, &ds), "nothing", "train.bin",
                 "cifar-100-binary");
    snprintf(path, sizeof path, "%s/no_such_folder", tmp_dir);
    EXPECT_FAILS(dataset_load(DATASET_CIFAR10, path, 0, 0, &ds), "no_such_folder");

    /* cifar_parse on bytes. */
    uint8_t rec[2 * 3074];
    memset(rec, 0, sizeof rec);
    uint8_t img[2 * 3072], lab[2];
    EXPECT_FAILS(cifar_parse("bytes", rec, 0, CIFAR_10, 0, img, lab), "bytes", "empty");
    EXPECT_FAILS(cifar_parse("bytes", rec, 3074, CIFAR_10, 1, img, lab), "bytes", "3074",
                 "3073-byte");
    EXPECT_FAILS(cifar_parse("bytes", rec, 3073, CIFAR_10, 2, img, lab), "bytes", "2 wanted");
    rec[3074 + 1] = 42;
    rec[3074 + 2] = 200;
    EXPECT_OK(cifar_parse("bytes", rec, 2 * 3074, CIFAR_100, 2, img, lab));
    EXPECT(lab[1] == 42 && img[3072] == 200, "second record: label %u pixel %u", lab[1], img[3072]);
}

int main(void) {
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_good();
    test_bad();
    testutil_remove_tree(tmp_dir);
    return check_finish("cifar");
}
