/* dataset: the classification data sets fsnn trains on, held as bytes.
 *
 * Images stay uint8 in memory (60,000 x 784 bytes for the MNIST family,
 * 50,000 x 3072 for CIFAR) and are normalised per batch by the trainer
 * (SPEC §4), which keeps the resident set small. N-MNIST is held as events
 * (nmnist.h). Where each set's files come from and how they are laid out:
 * docs/data.md. */
#ifndef FSNN_DATASET_H
#define FSNN_DATASET_H

#include <stddef.h>
#include <stdint.h>

#include "cfg.h"
#include "nmnist.h" // defines: nmnist_set

#define DATASET_MAX_CHANNELS 3

typedef struct {
    long n;       /* number of samples */
    int channels; /* 1 for the MNIST family, 3 (R, G, B planes) for CIFAR, 2 polarities for
                     N-MNIST */
    int height, width;
    uint8_t *images;   /* [n x channels x height x width], owned; NULL for N-MNIST */
    uint8_t *labels;   /* [n], owned, each < classes */
    nmnist_set events; /* N-MNIST only: each sample's events (one frame of
                          channels x height x width per time step); zeroed otherwise */
} dataset_split;

typedef struct {
    dataset_split train, test;
    int classes;
    /* Input normalisation per channel (SPEC §4): x = (pixel / 255 - mean) / std. */
    float mean[DATASET_MAX_CHANNELS], std[DATASET_MAX_CHANNELS];
    int augment; /* 1: random crop and flip suit the training images (CIFAR; SPEC §4) */
} dataset;

/* Loads `kind` from folder `dir`. Keeps the first train_limit / test_limit
 * samples (0 = all).
 *  fmnist, mnist: train-images-idx3-ubyte, train-labels-idx1-ubyte,
 *    t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, each optionally with .gz.
 *    Fails, naming the file, on a missing file, bad IDX, image/label count
 *    mismatch, images not 28x28, or a label >= 10.
 *  cifar10, cifar100: the binary version's files (cifar.h).
 *  nmnist: dir/Train and dir/Test (nmnist.h). */
int dataset_load(cfg_dataset kind, const char *dir, long train_limit, long test_limit,
                 dataset *out);

/* Inputs per sample (per time step for nmnist: 2 x 34 x 34) and classes of
 * `kind`, as dataset_load would give them, without reading a file (model
 * sizes from a configuration alone). */
int dataset_shape(cfg_dataset kind, int *n_in, int *classes);

/* The same with the input's channels, height and width (nmnist: one time
 * step's frame, 2 x 34 x 34). */
int dataset_dims(cfg_dataset kind, int *channels, int *height, int *width, int *classes);

/* The name of `kind` in data.dataset ("fmnist", "cifar10", ...). */
const char *dataset_name(cfg_dataset kind);

/* Where event frames come from: one split's events and how they are binned
 * (data.event_window_us, data.event_stabilize; T = model.time_steps). */
typedef struct {
    const nmnist_set *set; /* borrowed */
    nmnist_binning bin;
} dataset_events;

/* The binning of cfg for its time steps. */
void dataset_event_binning(const fsnn_cfg *cfg, nmnist_binning *bin);

/* The frames [T x 2 x 34 x 34] of sample `id` of src (a dataset_events):
 * the shape of trainer_data's frames_fn. Fails on an id out of range. */
int dataset_frames(const void *src, long id, float *out);

/* Frees both splits and zeroes *d; safe on a zeroed struct. */
void dataset_destroy(dataset *d);

#endif
