/* dataset: the image classification data sets fsnn trains on, held as bytes.
 *
 * Images stay uint8 in memory (60,000 x 784 bytes for the MNIST family) and
 * are normalised per batch by the trainer (SPEC §4), which keeps the resident
 * set small. */
#ifndef FSNN_DATASET_H
#define FSNN_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"

typedef struct {
    long n;       /* number of samples */
    int channels; /* 1 for the MNIST family */
    int height, width;
    uint8_t *images; /* [n x channels x height x width], owned */
    uint8_t *labels; /* [n], owned, each < classes */
} dataset_split;

typedef struct {
    dataset_split train, test;
    int classes;
    float mean, std; /* input normalisation (SPEC §4) */
} dataset;

/* Loads `kind` from folder `dir`: train-images-idx3-ubyte, train-labels-idx1-ubyte,
 * t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each optionally with .gz.
 * Keeps the first train_limit / test_limit samples (0 = all). Fails, naming
 * the file, on a missing file, bad IDX, image/label count mismatch, images
 * not 28x28, or a label >= 10. */
int dataset_load(cfg_dataset kind, const char *dir, long train_limit, long test_limit,
                 dataset *out);

/* Inputs per sample and classes of `kind`, as dataset_load would give them,
 * without reading a file (model sizes from a configuration alone). */
int dataset_shape(cfg_dataset kind, int *n_in, int *classes);

/* Frees both splits and zeroes *d; safe on a zeroed struct. */
void dataset_destroy(dataset *d);

#endif
