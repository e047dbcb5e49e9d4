/* metrics: the per-epoch table of a run: metrics.csv (one row per epoch) and
 * the same rows as numbers for the checkpoint's history. One column table
 * (metrics.c) gives the names, the CSV formats and the numeric layout. */
#ifndef FSNN_METRICS_H
#define FSNN_METRICS_H

#include "trainer.h"

#define METRICS_N_COLS 28

/* Creates (truncates) `path` and writes the header line. */
int metrics_create(const char *path);

/* Appends one row and makes it durable (fflush + fsync), so a crash loses no
 * finished epoch. */
int metrics_append(const char *path, const trainer_epoch *row);

/* The header line, without newline: the column names joined by commas. */
const char *metrics_header(void);

/* The index of column `name` in header order, or -1. */
int metrics_column(const char *name);

/* The row's columns as doubles, in header order, and back. */
void metrics_pack(const trainer_epoch *row, double *v);
void metrics_unpack(const double *v, trainer_epoch *row);

#endif
