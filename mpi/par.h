/* par: the process environment. The only module of fsnn that calls MPI
 * directly; everything else receives ranks and sizes as plain values. */
#ifndef FSNN_PAR_H
#define FSNN_PAR_H

typedef struct {
    int rank;
    int size;
} par_env;

/* Initialises MPI (thread level FUNNELED) and fills *env. Collective. */
int par_init(int *argc, char ***argv, par_env *env);

/* The rank a launcher (mpirun, srun) gave this process, read from its
 * environment without MPI; 0 when started alone. For commands that run
 * without MPI but must print once. */
int par_launcher_rank(void);

/* Checks the world size against what the launcher promised: srun's
 * SLURM_STEP_NUM_TASKS, or SLURM_NTASKS for a batch step started without
 * srun or mpirun. A mismatch (e.g. a rank started alone inside an allocation
 * that expects four) fails with a message naming both numbers. */
int par_check_launch(const par_env *env);

/* Seconds a rank waits in one collective before it aborts the whole job
 * (watchdog.h); 0 waits for ever. */
void par_set_collective_timeout(double seconds);

/* Finalises MPI. Collective. */
void par_finalize(void);

/* Ends every rank of the job at once, after printing `why` with the rank. */
_Noreturn void par_abort(const par_env *env, int code, const char *why);

/* Ranks of this job on this node (MPI_COMM_TYPE_SHARED); 1 when alone. */
int par_local_ranks(void);

/* 1 if every rank passes ok != 0 (logical AND over ranks). Collective: used
 * so that errors found on one rank stop all ranks together. */
int par_all_ok(int ok);

#endif
