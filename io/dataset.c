/* dataset: the MNIST family from four IDX files, checked against each other;
 * CIFAR and N-MNIST through their readers. */
#include "dataset.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cifar.h"  // defines: cifar_load
#include "fsutil.h" // defines: fsutil_join, fsutil_is_file
#include "idx.h"    // defines: idx_read, idx_free
#include "status.h" // defines: FAIL, CHECK

#define DATASET_SIDE 28
#define DATASET_CLASSES 10
/* Far above the largest file (47 MB of training images) and far below what
 * a corrupt header could ask for. */
#define DATASET_MAX_BYTES ((size_t)200 << 20)
#define DATASET_PATH_MAX (CFG_PATH_MAX + 64)

/* SPEC §4: the same normalisation for MNIST and Fashion-MNIST. */
#define DATASET_MEAN 0.1307f
#define DATASET_STD 0.3081f
/* SPEC §4: CIFAR-10's per-channel statistics, used for CIFAR-100 as well. */
static const float dataset_cifar_mean[3] = {0.4914f, 0.4822f, 0.4465f};
static const float dataset_cifar_std[3] = {0.2023f, 0.1994f, 0.2010f};

/* Finds NAME or NAME.gz in dir. */
static int dataset_find(const char *dir, const char *name, char *path, size_t size) {
    CHECK(fsutil_join(path, size, dir, name));
    if (fsutil_is_file(path)) return FSNN_OK;
    size_t len = strlen(path);
    if (len + 4 > size) return FAIL("%s.gz: path too long", path);
    memcpy(path + len, ".gz", 4);
    if (fsutil_is_file(path)) return FSNN_OK;
    struct stat st;
    if (stat(dir, &st) != 0)
        return FAIL("data folder '%s' cannot be read (%s); set data.path to the folder with the "
                    "IDX files, or run jobs/setup.sh to fetch them into data/",
                    dir, strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return FAIL("data.path '%s' is not a folder; set it to the folder with the IDX files", dir);
    return FAIL("data folder '%s' has neither %s nor %s.gz; set data.path to the folder with "
                "the IDX files, or run jobs/setup.sh to fetch them into data/",
                dir, name, name);
}

static int dataset_split_load(const char *dir, const char *prefix, long limit, dataset_split *out) {
    if (limit < 0) return FAIL("sample limit for '%s' is %ld; it must be >= 0", prefix, limit);
    char img_path[DATASET_PATH_MAX], lab_path[DATASET_PATH_MAX], name[64];
    snprintf(name, sizeof name, "%s-images-idx3-ubyte", prefix);
    CHECK(dataset_find(dir, name, img_path, sizeof img_path));
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte", prefix);
    CHECK(dataset_find(dir, name, lab_path, sizeof lab_path));

    idx_array img, lab;
    memset(&lab, 0, sizeof lab);
    CHECK(idx_read(img_path, 3, DATASET_MAX_BYTES, (size_t)limit, &img));
    int rc = FSNN_OK;
    if (img.dims[1] != DATASET_SIDE || img.dims[2] != DATASET_SIDE)
        rc = FAIL("%s: images are %u x %u, expected %d x %d", img_path, img.dims[1], img.dims[2],
                  DATASET_SIDE, DATASET_SIDE);
    if (rc == 0) rc = idx_read(lab_path, 1, DATASET_MAX_BYTES, (size_t)limit, &lab);
    /* Compare the files' own counts: two files of different length would
     * otherwise pass whenever the limit is below both. */
    if (rc == 0 && img.file_items != lab.file_items)
        rc = FAIL("%s: %u labels, but %s has %u images (count mismatch)", lab_path, lab.file_items,
                  img_path, img.file_items);
    for (size_t i = 0; rc == 0 && i < lab.count; i++)
        if (lab.data[i] >= DATASET_CLASSES)
            rc = FAIL("%s: label %u at index %zu is out of range (classes are 0 to %d)", lab_path,
                      lab.data[i], i, DATASET_CLASSES - 1);
    if (rc != 0) {
        idx_free(&img);
        idx_free(&lab);
        return rc;
    }
    out->n = (long)img.dims[0];
    out->channels = 1;
    out->height = DATASET_SIDE;
    out->width = DATASET_SIDE;
    out->images = img.data;
    out->labels = lab.data;
    return FSNN_OK;
}

static int dataset_load_any(cfg_dataset kind, const char *dir, long train_limit, long test_limit,
                            dataset *out) {
    switch (kind) {
    case DATASET_FMNIST:
    case DATASET_MNIST:
        CHECK(dataset_split_load(dir, "train", train_limit, &out->train));
        CHECK(dataset_split_load(dir, "t10k", test_limit, &out->test));
        out->classes = DATASET_CLASSES;
        out->mean[0] = DATASET_MEAN;
        out->std[0] = DATASET_STD;
        return FSNN_OK;
    case DATASET_CIFAR10:
    case DATASET_CIFAR100:
        CHECK(cifar_load(kind == DATASET_CIFAR10 ? CIFAR_10 : CIFAR_100, dir, train_limit,
                         test_limit, &out->train, &out->test));
        out->classes = kind == DATASET_CIFAR10 ? 10 : 100;
        for (int c = 0; c < CIFAR_CHANNELS; c++) {
            out->mean[c] = dataset_cifar_mean[c];
            out->std[c] = dataset_cifar_std[c];
        }
        out->augment = 1;
        return FSNN_OK;
    case DATASET_NMNIST: {
        dataset_split *s[2] = {&out->train, &out->test};
        const char *name[2] = {"Train", "Test"};
        const long limit[2] = {train_limit, test_limit};
        for (int i = 0; i < 2; i++) {
            CHECK(nmnist_load(dir, name[i], limit[i], &s[i]->events, &s[i]->labels));
            s[i]->n = s[i]->events.n;
            s[i]->channels = 2;
            s[i]->height = s[i]->width = NMNIST_SIDE;
        }
        /* Event frames are 0/1 spikes, fed as they are. */
        out->classes = NMNIST_CLASSES;
        out->mean[0] = out->mean[1] = 0.0f;
        out->std[0] = out->std[1] = 1.0f;
        return FSNN_OK;
    }
    }
    return FAIL("unknown data set kind %d", (int)kind);
}

int dataset_load(cfg_dataset kind, const char *dir, long train_limit, long test_limit,
                 dataset *out) {
    memset(out, 0, sizeof *out);
    int rc = dataset_load_any(kind, dir, train_limit, test_limit, out);
    if (rc != 0) {
        status_trace(__FILE__, __LINE__);
        dataset_destroy(out);
    }
    return rc;
}

int dataset_dims(cfg_dataset kind, int *channels, int *height, int *width, int *classes) {
    switch (kind) {
    case DATASET_FMNIST:
    case DATASET_MNIST:
        *channels = 1, *height = *width = DATASET_SIDE;
        *classes = DATASET_CLASSES;
        return FSNN_OK;
    case DATASET_CIFAR10:
    case DATASET_CIFAR100:
        *channels = CIFAR_CHANNELS, *height = *width = CIFAR_SIDE;
        *classes = kind == DATASET_CIFAR10 ? 10 : 100;
        return FSNN_OK;
    case DATASET_NMNIST:
        *channels = 2, *height = *width = NMNIST_SIDE;
        *classes = NMNIST_CLASSES;
        return FSNN_OK;
    }
    return FAIL("unknown data set kind %d", (int)kind);
}

int dataset_shape(cfg_dataset kind, int *n_in, int *classes) {
    int c = 0, h = 0, w = 0;
    CHECK(dataset_dims(kind, &c, &h, &w, classes));
    *n_in = c * h * w;
    return FSNN_OK;
}

const char *dataset_name(cfg_dataset kind) {
    switch (kind) {
    case DATASET_FMNIST:
        return "fmnist";
    case DATASET_MNIST:
        return "mnist";
    case DATASET_CIFAR10:
        return "cifar10";
    case DATASET_CIFAR100:
        return "cifar100";
    case DATASET_NMNIST:
        return "nmnist";
    }
    return "unknown";
}

void dataset_event_binning(const fsnn_cfg *cfg, nmnist_binning *bin) {
    bin->T = cfg->model_time_steps;
    bin->window_us = (uint32_t)cfg->data_event_window_us;
    bin->stabilize = cfg->data_event_stabilize;
}

int dataset_frames(const void *src, long id, float *out) {
    const dataset_events *e = src;
    if (id < 0 || id >= e->set->n)
        return FAIL("dataset: event sample %ld out of range (%ld samples)", id, e->set->n);
    const long first = e->set->start[id];
    return nmnist_frames(e->set->records + (size_t)first * NMNIST_EVENT_BYTES,
                         e->set->start[id + 1] - first, &e->bin, out);
}

void dataset_destroy(dataset *d) {
    free(d->train.images);
    free(d->train.labels);
    free(d->test.images);
    free(d->test.labels);
    nmnist_destroy(&d->train.events);
    nmnist_destroy(&d->test.events);
    memset(d, 0, sizeof *d);
}
