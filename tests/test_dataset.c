/* dataset: four generated IDX files (plain and gzip mixed) in a fresh folder
 * under /tmp, the sample limits, and every cross-file check, each failing
 * with a message naming the file or folder. Then, when it is installed, the
 * real Fashion-MNIST (Debian's dataset-fashion-mnist, SPEC §6): 60,000 + 10,000
 * images, 6,000 + 1,000 per class. */
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "check.h"
#include "dataset.h"
#include "status.h"
#include "testutil.h"

#define REAL_DIR "/usr/share/datasets/fashion-mnist"

static char tmp_dir[] = "/tmp/fsnn_test_dataset_XXXXXX";

/* Writes an IDX file: ndim 3 (n x h x w, pixel p of image i = (i + p) mod
 * 256) or ndim 1 (n labels, label i = i mod 10 unless bad_at == i, which
 * gets 10). */
static void put_idx(const char *dir, const char *name, int gz, int ndim, uint32_t n, uint32_t h,
                    uint32_t w, long bad_at) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s%s", dir, name, gz ? ".gz" : "");
    uint32_t dims[3] = {n, h, w};
    size_t item = ndim == 3 ? (size_t)h * w : 1, len = 4 + 4 * (size_t)ndim + n * item;
    uint8_t *b = calloc(len, 1);
    b[2] = 0x08;
    b[3] = (uint8_t)ndim;
    for (int i = 0; i < ndim; i++)
        for (int k = 0; k < 4; k++)
            b[4 + 4 * i + k] = (uint8_t)(dims[i] >> (24 - 8 * k));
    uint8_t *data = b + 4 + 4 * ndim;
    for (size_t i = 0; i < n; i++)
        for (size_t p = 0; p < item; p++)
            data[i * item + p] = ndim == 3 ? (uint8_t)(i + p) : (uint8_t)(i % 10);
    if (bad_at >= 0) data[bad_at] = 10;
    int ok;
    if (gz) {
        gzFile f = gzopen(path, "wb");
        ok = f && gzwrite(f, b, (unsigned)len) == (int)len;
        ok = (f && gzclose(f) == Z_OK) && ok;
    } else {
        FILE *f = fopen(path, "wb");
        ok = f && fwrite(b, 1, len, f) == len;
        ok = (f && fclose(f) == 0) && ok;
    }
    free(b);
    if (!ok) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
}

/* A folder `name` under tmp_dir with a good set: 5 training and 3 test
 * samples, training images gzip-compressed, the rest plain. */
static const char *make_set(const char *name) {
    static char dir[4][512];
    static int next;
    char *d = dir[next++ % 4];
    snprintf(d, sizeof dir[0], "%s/%s", tmp_dir, name);
    if (mkdir(d, 0755) != 0) {
        perror(d);
        exit(1);
    }
    put_idx(d, "train-images-idx3-ubyte", 1, 3, 5, 28, 28, -1);
    put_idx(d, "train-labels-idx1-ubyte", 0, 1, 5, 0, 0, -1);
    put_idx(d, "t10k-images-idx3-ubyte", 0, 3, 3, 28, 28, -1);
    put_idx(d, "t10k-labels-idx1-ubyte", 1, 1, 3, 0, 0, -1);
    return d;
}

static void remove_file(const char *dir, const char *name) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
}

static void test_good(void) {
    const char *dir = make_set("good");
    dataset d;
    EXPECT_OK(dataset_load(DATASET_FMNIST, dir, 0, 0, &d));
    EXPECT(d.train.n == 5 && d.test.n == 3, "n %ld %ld", d.train.n, d.test.n);
    EXPECT(d.train.channels == 1 && d.train.height == 28 && d.train.width == 28, "shape");
    EXPECT(d.classes == 10, "classes %d", d.classes);
    EXPECT(d.mean[0] == 0.1307f && d.std[0] == 0.3081f && !d.augment, "normalisation %g %g",
           d.mean[0], d.std[0]);
    int same = 1;
    for (long i = 0; i < 5; i++) {
        same &= d.train.labels[i] == i % 10;
        for (int p = 0; p < 784; p++)
            same &= d.train.images[i * 784 + p] == (uint8_t)(i + p);
    }
    for (long i = 0; i < 3; i++)
        same &= d.test.labels[i] == i % 10;
    EXPECT(same, "images and labels as written");
    dataset_destroy(&d);
    EXPECT(d.train.images == NULL && d.test.labels == NULL && d.train.n == 0, "destroy zeroes");
    dataset_destroy(&d);

    EXPECT_OK(dataset_load(DATASET_MNIST, dir, 2, 100, &d));
    EXPECT(d.train.n == 2 && d.test.n == 3, "limits 2 and 100 (above the count): %ld %ld",
           d.train.n, d.test.n);
    EXPECT(d.train.images[784] == 1 && d.train.labels[1] == 1, "first samples kept");
    dataset_destroy(&d);

    /* NAME is preferred over NAME.gz; a stale .gz next to it is ignored. */
    put_idx(dir, "t10k-labels-idx1-ubyte", 0, 1, 3, 0, 0, -1);
    put_idx(dir, "t10k-images-idx3-ubyte", 1, 3, 4, 28, 28, -1);
    EXPECT_OK(dataset_load(DATASET_FMNIST, dir, 0, 0, &d));
    EXPECT(d.test.n == 3, "plain file wins: %ld", d.test.n);
    dataset_destroy(&d);
}

static void test_bad(void) {
    dataset d;
    char missing[512];
    snprintf(missing, sizeof missing, "%s/no_such_folder", tmp_dir);
    EXPECT_FAILS(dataset_load(DATASET_FMNIST, missing, 0, 0, &d), missing, "data.path",
                 "jobs/setup.sh");
    EXPECT(d.train.images == NULL, "nothing kept after a failure");

    const char *dir = make_set("missing");
    remove_file(dir, "t10k-labels-idx1-ubyte.gz");
    EXPECT_FAILS(dataset_load(DATASET_FMNIST, dir, 0, 0, &d), dir, "t10k-labels-idx1-ubyte",
                 "data.path", "jobs/setup.sh");
    EXPECT(d.train.images == NULL && d.train.n == 0, "training split freed after a test failure");

    dir = make_set("badlabel");
    put_idx(dir, "train-labels-idx1-ubyte", 0, 1, 5, 0, 0, 3);
    EXPECT_FAILS(dataset_load(DATASET_FMNIST, dir, 0, 0, &d), "train-labels-idx1-ubyte",
                 "label 10 at index 3", "out of range");
    /* A bad label after the limit is outside the kept samples. */
    EXPECT_OK(dataset_load(DATASET_FMNIST, dir, 3, 0, &d));
    dataset_destroy(&d);

    dir = make_set("count");
    put_idx(dir, "t10k-labels-idx1-ubyte", 1, 1, 4, 0, 0, -1);
    EXPECT_FAILS(dataset_load(DATASET_FMNIST, dir, 0, 0, &d), "t10k-labels-idx1-ubyte.gz",
                 "count mismatch", "4 labels", "3 images");
    /* The files' own counts are compared, not the kept ones. */
    EXPECT_FAILS(dataset_load(DATASET_FMNIST, dir, 0, 2, &d), "count mismatch");

    dir = make_set("side");
    put_idx(dir, "train-images-idx3-ubyte", 1, 3, 5, 27, 28, -1);
    EXPECT_FAILS(dataset_load(DATASET_FMNIST, dir, 0, 0, &d), "train-images-idx3-ubyte.gz",
                 "27 x 28", "28 x 28");

    dir = make_set("ndim");
    put_idx(dir, "t10k-labels-idx1-ubyte", 1, 3, 3, 28, 28, -1);
    EXPECT_FAILS(dataset_load(DATASET_FMNIST, dir, 0, 0, &d), "t10k-labels-idx1-ubyte.gz",
                 "3 dimensions", "expected 1");

    dir = make_set("limit");
    EXPECT_FAILS(dataset_load(DATASET_FMNIST, dir, -1, 0, &d), "-1", ">= 0");
    EXPECT_FAILS(dataset_load((cfg_dataset)7, dir, 0, 0, &d), "kind 7");
}

static void test_real(void) {
    struct stat st;
    if (stat(REAL_DIR, &st) != 0) {
        printf("note: %s is absent (Debian package dataset-fashion-mnist not installed); only the "
               "generated files were checked\n",
               REAL_DIR);
        return;
    }
    dataset d;
    EXPECT_OK(dataset_load(DATASET_FMNIST, REAL_DIR, 0, 0, &d));
    EXPECT(d.train.n == 60000 && d.test.n == 10000, "Fashion-MNIST sizes %ld %ld", d.train.n,
           d.test.n);
    long count[2][10] = {{0}};
    for (long i = 0; i < d.train.n; i++)
        count[0][d.train.labels[i]]++;
    for (long i = 0; i < d.test.n; i++)
        count[1][d.test.labels[i]]++;
    for (int c = 0; c < 10; c++)
        EXPECT(count[0][c] == 6000 && count[1][c] == 1000, "class %d: %ld train, %ld test", c,
               count[0][c], count[1][c]);
    dataset_destroy(&d);
    EXPECT_OK(dataset_load(DATASET_FMNIST, REAL_DIR, 1000, 1, &d));
    EXPECT(d.train.n == 1000 && d.test.n == 1, "limited %ld %ld", d.train.n, d.test.n);
    dataset_destroy(&d);
}

int main(void) {
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_good();
    test_bad();
    test_real();
    testutil_remove_tree(tmp_dir);
    return check_finish("dataset");
}
