/* cmd: commands of `fsnn` that live outside main.c. Each takes the
 * arguments after its name and returns the process exit code (0 done,
 * 1 failed, 2 usage, 3 stopped and resumable; docs/user-guide.md). */
#ifndef FSNN_CMD_H
#define FSNN_CMD_H

#include <stdio.h>

#include "cfg.h"
#include "dataset.h"
#include "netspec.h"
#include "trainer.h"

/* fsnn sweep SWEEP.ini [--submit | --local [-j K] | --dry-run]
 * fsnn sweep status SWEEP_DIR
 * Runs as one process without MPI (docs/sweeps.md). */
int cmd_sweep(int argc, char **argv);

/* fsnn report SWEEP_DIR [--csv FILE] [--markdown FILE] [--plots DIR]
 *                       [--no-plots] [--trace-samples N]
 * The results table and plots of a sweep directory (docs/report.md). Runs
 * as one process without MPI. */
int cmd_report(int argc, char **argv);

/* fsnn model NET --input CxHxW|DATASET [--classes K]
 * Prints the layers, output shapes, neurons and parameters of a net in the
 * paper's notation (src/netspec.h), with the totals exact and in the
 * paper's short form. One process, no MPI. */
int cmd_model(int argc, char **argv);

/* fsnn fixture FILE.h5 [KEY=VALUE ...]
 * Checks fsnn against one reference fixture of the authors' code
 * (docs/fidelity.md): exit 0 only when every quantity is within its bound.
 * One process, no MPI. */
int cmd_fixture(int argc, char **argv);

/* What `fsnn model` prints for a parsed and inferred net: one row per layer
 * (token, kind, output shape, neurons, weights, params) and the totals;
 * `fsnn train` prints it at start. */
void cmd_model_summary(FILE *out, const netspec *net, const netspec_sizes *s);

/* The trainer's views of the loaded data set d: its images, or for event
 * data (N-MNIST) its events binned as cfg says, through ev[0] (train) and
 * ev[1] (test), which the caller keeps as long as the views. data.augment
 * decides whether training images are cropped and flipped (auto: when the
 * set asks for it). */
void cmd_data_views(const fsnn_cfg *cfg, const dataset *d, dataset_events ev[2],
                    trainer_data *train, trainer_data *test);

#endif
