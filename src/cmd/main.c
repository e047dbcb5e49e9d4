/* fsnn: the command. Starts the process environment and hands over to the
 * command named by the first argument (src/cmd/cmd.h); every command that
 * works on a run is an outline over src/cmd/run.h.
 *
 *   fsnn train CONFIG [section.key=value ...]                    (cmd_train.c)
 *   fsnn eval RUN_DIR [--residual-trace [FILE]] [section.key=value ...]
 *   fsnn inspect CHECKPOINT.h5                                   (cmd_eval.c)
 *   fsnn sweep SWEEP.ini [--submit | --local [-j K] | --dry-run] | status SWEEP_DIR
 *   fsnn report SWEEP_DIR [options]                              (cmd_report.c)
 *   fsnn model NET --input CxHxW|DATASET [--classes K]           (cmd_model.c)
 *   fsnn fixture FILE.h5 [KEY=VALUE ...]                         (cmd_fixture.c)
 *   fsnn --help | --help-config [--markdown] | --version
 */
#include <stdio.h>
#include <string.h>

#include "cmd.h"
#include "config.h" // defines: config_help
#include "log.h"    // defines: log_error, log_set_printer
#include "par.h"    // defines: par_init, par_finalize, par_launcher_rank
#include "status.h" // defines: status_message

#define FSNN_VERSION "0.1.0"

static const char main_usage[] =
    "usage:\n"
    "  fsnn train CONFIG [section.key=value ...]   train; writes run.dir\n"
    "  fsnn eval RUN_DIR [section.key=value ...]   evaluate a trained run on its test set\n"
    "      [--residual-trace [FILE]]                 also the residual per time step (CSV)\n"
    "  fsnn report SWEEP_DIR [--csv FILE] [--markdown FILE] [--plots DIR]  table of a sweep\n"
    "  fsnn inspect CHECKPOINT.h5                  summary and weights_sha256 of a checkpoint\n"
    "  fsnn sweep SWEEP.ini [--submit | --local [-j K] | --dry-run]   seeds and grids of runs\n"
    "  fsnn sweep status SWEEP_DIR                 state of a sweep's runs (docs/sweeps.md)\n"
    "  fsnn model NET --input CxHxW|DATASET [--classes K]   layers, neurons and parameters of\n"
    "                                              a net in the paper's notation\n"
    "  fsnn --help-config [--markdown]             every configuration key\n"
    "  fsnn --version\n"
    "Run under mpirun/srun or alone. docs/user-guide.md explains the run directory.\n";

/* Commands of one process that must not start MPI: sweep and report start
 * other processes (sbatch, fsnn train, gnuplot), which must not inherit an
 * MPI singleton's environment; model, fixture and inspect have nothing to
 * distribute, and no MPI start-up to fail or to wait for. -1: not one. */
static int main_without_mpi(int argc, char **argv) {
    const char *cmd = argc > 1 ? argv[1] : "";
    if (!strcmp(cmd, "sweep")) return cmd_sweep(argc - 2, argv + 2);
    if (!strcmp(cmd, "report")) return cmd_report(argc - 2, argv + 2);
    if (!strcmp(cmd, "model")) return cmd_model(argc - 2, argv + 2);
    if (!strcmp(cmd, "fixture")) return cmd_fixture(argc - 2, argv + 2);
    if (argc == 3 && !strcmp(cmd, "inspect")) {
        if (par_launcher_rank() != 0) return CMD_EXIT_OK; /* rank 0 prints */
        if (cmd_inspect(argv[2]) == 0) return CMD_EXIT_OK;
        log_error("%s", status_message());
        return CMD_EXIT_FAILED;
    }
    return -1;
}

/* train or eval under MPI: every rank reports its own failure, agreement
 * failures only on rank 0. */
static int main_run_command(const char *cmd, int argc, char **argv, int rank) {
    int rc = !strcmp(cmd, "train") ? cmd_train(argc, argv) : cmd_eval(argc, argv);
    if (rc == 0) return CMD_EXIT_OK;
    if (rc == TRAINER_STOPPED) return CMD_EXIT_RESUMABLE;
    if (rank == 0)
        log_error("%s", status_message());
    else if (!strstr(status_message(), "another rank failed"))
        fprintf(stderr, "error: rank %d: %s\n", rank, status_message());
    log_debug("at %s", status_where());
    return CMD_EXIT_FAILED;
}

int main(int argc, char **argv) {
    int code = main_without_mpi(argc, argv);
    if (code >= 0) return code;
    /* Training stops on USR1/TERM at its next step, with a checkpoint. The
     * handlers go in before MPI_Init, which can take seconds under a
     * launcher, so that SLURM's warning then does not kill the rank. Other
     * commands keep the default: the signal ends them. */
    if (argc > 1 && !strcmp(argv[1], "train")) cmd_train_catch_signals();
    par_env env;
    if (par_init(&argc, &argv, &env) != 0) {
        fprintf(stderr, "fsnn: %s\n", status_message());
        return CMD_EXIT_FAILED;
    }
    log_set_printer(env.rank == 0);
    if (par_check_launch(&env) != 0) {
        if (env.rank == 0) log_error("%s", status_message());
        par_finalize();
        return CMD_EXIT_USAGE;
    }
    const char *cmd = argc > 1 ? argv[1] : "";
    code = CMD_EXIT_OK;
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h")) {
        if (env.rank == 0) fputs(main_usage, stdout);
    } else if (!strcmp(cmd, "--version")) {
        if (env.rank == 0) printf("fsnn %s\n", FSNN_VERSION);
    } else if (!strcmp(cmd, "--help-config")) {
        int md = argc > 2 && !strcmp(argv[2], "--markdown");
        if (env.rank == 0) config_help(stdout, md);
    } else if ((!strcmp(cmd, "train") || !strcmp(cmd, "eval")) && argc >= 3) {
        code = main_run_command(cmd, argc - 2, argv + 2, env.rank);
    } else {
        if (env.rank == 0) {
            if (*cmd) fprintf(stderr, "fsnn: unknown or incomplete command '%s'\n", cmd);
            fputs(main_usage, stderr);
        }
        code = CMD_EXIT_USAGE;
    }
    par_finalize();
    return code;
}
