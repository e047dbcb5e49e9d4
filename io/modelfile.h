/* modelfile: a trained model as an HDF5 file (model.h5 in the run
 * directory), readable with h5dump or h5py without fsnn:
 *
 *   /params/<tensor>   float32, the trainable tensors (model.h names)
 *   /state/bn_mean, /state/bn_var, /state/sn_u, /state/sn_v   float32 [n]
 *   attributes on /: format ("fsnn-model"), format_version, n_in, n_hidden,
 *   n_out, sigma, epoch, config (the resolved INI text)
 *
 * Written by one process, atomically: a temporary file in the same folder is
 * flushed, fsynced and renamed over the old one. */
#ifndef FSNN_MODELFILE_H
#define FSNN_MODELFILE_H

#include "model.h"

#define MODELFILE_VERSION 1

int modelfile_write(const char *path, const fsnn_model *m, int epoch, const char *config_text);

/* Reads the sizes and epoch stored in the attributes of `path`, so a model
 * of the right shape can be created before modelfile_read. */
int modelfile_sizes(const char *path, int *n_in, int *n_hidden, int *n_out, int *epoch);

/* SHA-256 of all trainable tensors in the model's canonical order (model.h:
 * input.weight, input.bias, input.bn.weight, input.bn.bias, feedback.V,
 * feedback.g, readout.weight, readout.bias), each as little-endian float32
 * in row-major order, as 64 hex digits and a NUL. */
int modelfile_weights_sha256(const fsnn_model *m, char hex[65]);

/* Loads tensors and state into *m, whose sizes must match the file: each
 * dataset's name, type and shape is checked before reading. */
int modelfile_read(const char *path, fsnn_model *m, int *epoch);

#endif
