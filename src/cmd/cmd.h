/* cmd: the commands of `fsnn`, which main.c dispatches to. Each takes the
 * arguments after its name and returns the process exit code (0 done,
 * 1 failed, 2 usage, 3 stopped and resumable; docs/user-guide.md), or,
 * where its comment says so, an fsnn status that main.c turns into one. */
#ifndef FSNN_CMD_H
#define FSNN_CMD_H

#include <stdio.h>

#include "cfg.h"
#include "dataset.h"
#include "netspec.h"
#include "trainer.h"

/* Exit codes (docs/user-guide.md). CMD_EXIT_RESUMABLE: stopped on a signal
 * after writing a checkpoint; the same command resumes. */
enum {
    CMD_EXIT_OK = 0,
    CMD_EXIT_FAILED = 1,
    CMD_EXIT_USAGE = 2,
    CMD_EXIT_RESUMABLE = TRAINER_STOPPED
};

/* fsnn train CONFIG [section.key=value ...] (argv[0] is CONFIG): creates or
 * resumes the run directory run.dir and trains to train.epochs. Returns 0,
 * TRAINER_STOPPED after a signal (a checkpoint was written) or an fsnn
 * status. Collective over the world. */
int cmd_train(int argc, char **argv);

/* Makes SIGTERM and SIGUSR1 stop a training at its next step with a
 * checkpoint (before MPI_Init: a launcher's start-up can take seconds). */
void cmd_train_catch_signals(void);

/* fsnn eval RUN_DIR [--residual-trace [FILE]] [section.key=value ...]
 * (argv[0] is RUN_DIR): evaluates the run's newest good checkpoint on its
 * test set, data parallel over the world. Returns an fsnn status.
 * Collective over the world. */
int cmd_eval(int argc, char **argv);

/* fsnn inspect CHECKPOINT.h5: prints what the checkpoint holds, ending with
 * the line "weights_sha256 <hex>" (ckpt_weights_sha256), which tests and
 * users compare across runs. One process, no MPI. Returns an fsnn status. */
int cmd_inspect(const char *path);

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
