/* metrics: the per-epoch table of a run, metrics.csv (one row per epoch). */
#ifndef FSNN_METRICS_H
#define FSNN_METRICS_H

#include "trainer.h"

/* Creates (truncates) `path` and writes the header line. */
int metrics_create(const char *path);

/* Appends one row and makes it durable (fflush + fsync), so a crash loses no
 * finished epoch. */
int metrics_append(const char *path, const trainer_epoch *row);

/* The header line, without newline (docs and tests). */
const char *metrics_header(void);

#endif
