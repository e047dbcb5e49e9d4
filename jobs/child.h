/* child: programs started as child processes and waited for, without a
 * shell: fork, then exec of an argv whose every element reaches the program
 * as it is. `fsnn sweep` starts sbatch, squeue and its local runs of `fsnn
 * train` this way, the report's plots gnuplot.
 *
 * Between fork and exec the child makes only async-signal-safe calls, since
 * the parent may have threads by then (OpenMP's, after an evaluation): the
 * PATH lookup is execvp's, done with execv over a buffer on the stack (a
 * script without "#!" fails with ENOEXEC instead of going to /bin/sh). A
 * failed exec is reported to the parent through a close-on-exec pipe, so
 * child_start knows whether the program runs when it returns. Our buffered
 * output is flushed before the fork, so the child does not write it again.
 *
 * Errors are fsnn statuses (status.h). The caller owns the child: it reaps
 * it with child_wait or child_poll. */
#ifndef FSNN_CHILD_H
#define FSNN_CHILD_H

#include <sys/types.h>

/* How to start a child. Every field counts: in, out and err are -1 to
 * inherit ours (0 is a descriptor). */
typedef struct {
    const char *exe;      /* the program file: taken as it is when it holds a '/', else looked
                             up in PATH as execvp does (the child's working directory applies);
                             NULL: argv[0] */
    const char *name;     /* what messages call the child; NULL: argv[0] */
    const char *dir;      /* its working directory; NULL: ours */
    const char *out_path; /* NULL, or a file (relative to dir) created or truncated, mode 0644,
                             that becomes its stdout and stderr in place of out and err */
    int in, out, err;     /* descriptors that become its stdin, stdout and stderr; -1: ours */
    int own_group;        /* 1: its own process group, so that a Ctrl-C on the terminal reaches
                             only us; SIGINT (a pending one dropped), SIGTERM and SIGCHLD at their
                             default actions and no signal blocked, whatever ours are */
} child_opts;

/* A started child. */
typedef struct {
    pid_t pid;
    int exec_errno; /* 0: it runs the program (or ran it); else why exec failed (errno) */
    char name[64];  /* what messages call it */
} child;

/* Starts argv[0] (argv NULL-terminated, passed on as it is) as o says, and
 * returns once the child runs the program or has failed to. Neither a
 * failed exec (c->exec_errno; the child exits with code 127) nor a failed
 * chdir or redirection (the child exits with code 126) is a failure here:
 * the child exists and is the caller's to reap. Fails ("cannot start NAME:
 * fork: ...", or pipe) only when there is no child. argv and o are
 * borrowed. */
int child_start(char *const *argv, const child_opts *o, child *c);

/* Waits for c to end, again after a signal; *status is its wait status
 * (sys/wait.h). Fails ("waiting for NAME: ...") when waitpid does. */
int child_wait(const child *c, int *status);

/* Reaps one child of this process that has ended, without waiting: *pid is
 * its id and *status its wait status, or *pid is 0 when none has ended yet
 * or a signal interrupted the call. Fails ("waitpid: ...") when waitpid
 * does, e.g. when there is no child at all. */
int child_poll(pid_t *pid, int *status);

/* A wait status as a shell reports it: the exit code of a child that
 * exited, 128 + the signal number of one a signal ended. */
int child_exit_code(int status);

#endif
