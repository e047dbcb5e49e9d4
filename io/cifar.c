/* cifar: the CIFAR-10/100 binary version, checked record by record. */
#include "cifar.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fsutil.h" // defines: fsutil_join, fsutil_is_file
#include "status.h" // defines: FAIL, CHECK, XCALLOC

#define CIFAR_PATH_MAX (CFG_PATH_MAX + 64)
#define CIFAR_TRAIN_FILES_MAX 5

/* The file names and official record counts of one kind. */
typedef struct {
    const char *sub; /* folder the official tarball unpacks to */
    const char *train[CIFAR_TRAIN_FILES_MAX];
    int n_train_files;
    long train_per_file;
    const char *test;
    long test_records;
} cifar_layout;

static const cifar_layout cifar_layout_10 = {"cifar-10-batches-bin",
                                             {"data_batch_1.bin", "data_batch_2.bin",
                                              "data_batch_3.bin", "data_batch_4.bin",
                                              "data_batch_5.bin"},
                                             5,
                                             10000,
                                             "test_batch.bin",
                                             10000};
static const cifar_layout cifar_layout_100 = {"cifar-100-binary", {"train.bin"}, 1, 50000,
                                              "test.bin",         10000};

size_t cifar_record_size(cifar_kind kind) {
    return (kind == CIFAR_100 ? 2 : 1) + (size_t)CIFAR_PIXELS;
}

int cifar_parse(const char *name, const uint8_t *bytes, size_t len, cifar_kind kind, long n,
                uint8_t *images, uint8_t *labels) {
    if (kind != CIFAR_10 && kind != CIFAR_100) return FAIL("unknown CIFAR kind %d", (int)kind);
    const size_t rec = cifar_record_size(kind);
    const size_t head = rec - CIFAR_PIXELS;
    if (len == 0)
        return FAIL("%s: empty file (a CIFAR file holds records of %zu bytes)", name, rec);
    if (len % rec != 0)
        return FAIL("%s: size %zu bytes is not a whole number of %zu-byte records (%zu records and "
                    "%zu bytes left over; truncated or not a CIFAR-%d binary file?)",
                    name, len, rec, len / rec, len % rec, (int)kind);
    if (n < 0 || (size_t)n > len / rec)
        return FAIL("%s: holds %zu records, %ld wanted", name, len / rec, n);
    for (long i = 0; i < n; i++) {
        const uint8_t *r = bytes + (size_t)i * rec;
        if (kind == CIFAR_100 && r[0] >= 20)
            return FAIL("%s: coarse label %u of record %ld (byte offset %zu) is out of range "
                        "(0 to 19)",
                        name, r[0], i, (size_t)i * rec);
        const uint8_t label = r[head - 1];
        if (label >= (int)kind)
            return FAIL("%s: label %u of record %ld (byte offset %zu) is out of range (0 to %d)",
                        name, label, i, (size_t)i * rec + head - 1, (int)kind - 1);
        labels[i] = label;
        memcpy(images + (size_t)i * CIFAR_PIXELS, r + head, CIFAR_PIXELS);
    }
    return FSNN_OK;
}

/* The folder holding the files: dir, or the tarball's folder inside it. */
static int cifar_find_dir(const cifar_layout *lay, const char *dir, char *out, size_t size) {
    char path[CIFAR_PATH_MAX];
    CHECK(fsutil_join(path, sizeof path, dir, lay->train[0]));
    if (fsutil_is_file(path)) {
        if (strlen(dir) >= size) return FAIL("data.path too long: %.80s...", dir);
        strcpy(out, dir);
        return FSNN_OK;
    }
    CHECK(fsutil_join(out, size, dir, lay->sub));
    CHECK(fsutil_join(path, sizeof path, out, lay->train[0]));
    if (fsutil_is_file(path)) return FSNN_OK;
    struct stat st;
    if (stat(dir, &st) != 0)
        return FAIL("data folder '%s' cannot be read (%s); set data.path to the folder with the "
                    "CIFAR binary files (docs/data.md)",
                    dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return FAIL("data.path '%s' is not a folder; set it to the folder with the CIFAR binary "
                    "files (docs/data.md)",
                    dir);
    return FAIL("data folder '%s' has neither %s nor %s/%s; set data.path to the folder with the "
                "CIFAR binary files (docs/data.md)",
                dir, lay->train[0], lay->sub, lay->train[0]);
}

/* Records in file `path` (its size checked against the record size). */
static int cifar_count(const char *path, size_t rec, long *count) {
    struct stat st;
    if (stat(path, &st) != 0) return FAIL("%s: cannot be read (%s)", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return FAIL("%s: not a regular file", path);
    size_t len = (size_t)st.st_size;
    if (len == 0)
        return FAIL("%s: empty file (a CIFAR file holds records of %zu bytes)", path, rec);
    if (len % rec != 0)
        return FAIL("%s: size %zu bytes is not a whole number of %zu-byte records (%zu records and "
                    "%zu bytes left over; truncated or not a CIFAR binary file?)",
                    path, len, rec, len / rec, len % rec);
    *count = (long)(len / rec);
    return FSNN_OK;
}

/* Reads the first n records of `path` into images/labels. */
static int cifar_read(const char *path, cifar_kind kind, long n, uint8_t *images, uint8_t *labels) {
    const size_t len = (size_t)n * cifar_record_size(kind);
    uint8_t *buf = NULL;
    CHECK(XCALLOC(&buf, len));
    FILE *f = fopen(path, "rb");
    int rc = FSNN_OK;
    if (!f)
        rc = FAIL("%s: cannot open (%s)", path, strerror(errno));
    else if (fread(buf, 1, len, f) != len)
        rc = FAIL("%s: short read of the first %zu bytes (file changed while reading?)", path, len);
    if (f) fclose(f);
    if (rc == 0) rc = cifar_parse(path, buf, len, kind, n, images, labels);
    free(buf);
    return rc;
}

/* One split from files[0..nf) of `folder`; `official` records per file when
 * limit is 0. `what` names the limit's key in messages. */
static int cifar_split(cifar_kind kind, const char *folder, const char *const *files, int nf,
                       long official, long limit, const char *what, dataset_split *out) {
    if (limit < 0) return FAIL("%s is %ld; it must be >= 0", what, limit);
    const size_t rec = cifar_record_size(kind);
    char path[CIFAR_TRAIN_FILES_MAX][CIFAR_PATH_MAX];
    long count[CIFAR_TRAIN_FILES_MAX], total = 0;
    for (int i = 0; i < nf; i++) {
        CHECK(fsutil_join(path[i], sizeof path[i], folder, files[i]));
        CHECK(cifar_count(path[i], rec, &count[i]));
        if (limit == 0 && count[i] != official)
            return FAIL("%s: %ld records, the official file has %ld (set %s to use a shorter "
                        "file)",
                        path[i], count[i], official, what);
        total += count[i];
    }
    if (limit > total)
        return FAIL("%s: %s is %ld but %s holds only %ld records%s", folder, what, limit,
                    nf > 1 ? "the training files" : files[0], total, nf > 1 ? " in all" : "");
    const long n = limit > 0 ? limit : total;
    CHECK(XCALLOC(&out->images, (size_t)n * CIFAR_PIXELS));
    CHECK(XCALLOC(&out->labels, (size_t)n));
    out->n = n;
    out->channels = CIFAR_CHANNELS;
    out->height = out->width = CIFAR_SIDE;
    long done = 0;
    for (int i = 0; i < nf && done < n; i++) {
        long take = n - done < count[i] ? n - done : count[i];
        CHECK(cifar_read(path[i], kind, take, out->images + (size_t)done * CIFAR_PIXELS,
                         out->labels + done));
        done += take;
    }
    return FSNN_OK;
}

int cifar_load(cifar_kind kind, const char *dir, long train_limit, long test_limit,
               dataset_split *train, dataset_split *test) {
    if (kind != CIFAR_10 && kind != CIFAR_100) return FAIL("unknown CIFAR kind %d", (int)kind);
    const cifar_layout *lay = kind == CIFAR_10 ? &cifar_layout_10 : &cifar_layout_100;
    char folder[CIFAR_PATH_MAX];
    CHECK(cifar_find_dir(lay, dir, folder, sizeof folder));
    CHECK(cifar_split(kind, folder, lay->train, lay->n_train_files, lay->train_per_file,
                      train_limit, "data.train_limit", train));
    const char *const test_files[1] = {lay->test};
    CHECK(cifar_split(kind, folder, test_files, 1, lay->test_records, test_limit, "data.test_limit",
                      test));
    return FSNN_OK;
}
