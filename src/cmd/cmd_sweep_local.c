/* cmd_sweep_local: `fsnn sweep --local`. Runs a sweep's runs on this
 * machine, K at a time, each as `fsnn train` in a child process of its own
 * process group (jobs/child) that writes its output to the run's train.log;
 * job.state records each start and end, as slurm/sweep.sbatch does on a
 * cluster. SIGINT or SIGTERM to the sweep asks every run to write a
 * checkpoint and stop (SIGTERM, exit 3), so that the same command resumes
 * them. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "child.h"          // defines: child_start, child_poll, child_exit_code
#include "clock.h"          // defines: clock_seconds
#include "cmd_sweep_impl.h" // defines: cmd_sweep_local, cmd_sweep_todo, cmd_sweep_format_time
#include "fsutil.h"         // defines: fsutil_mkdirs, fsutil_join
#include "log.h"            // defines: log_error
#include "runstate.h"       // defines: runstate_write, runstate_of_exit, runstate_last_error
#include "status.h"         // defines: CHECK, FAIL, XCALLOC
#include "sweep.h"          // defines: sweep_plan, sweep_run, sweep_run_name

static volatile sig_atomic_t cmd_stop;
/* The children's pids (0 = free slot); changed only with signals blocked. */
static pid_t *cmd_children;
static int cmd_n_slots;

/* SIGTERM to every run: fsnn train writes a checkpoint and exits with 3.
 * Also called by the signal handler: async-signal-safe. */
static void cmd_stop_runs(void) {
    for (int i = 0; i < cmd_n_slots; i++)
        if (cmd_children[i] > 0) kill(cmd_children[i], SIGTERM);
}

static void cmd_on_stop(int sig) {
    int saved = errno;
    cmd_stop = sig;
    cmd_stop_runs();
    errno = saved;
}

static void cmd_on_child(int sig) {
    (void)sig;
}

typedef struct {
    int id;
    double start;
} cmd_slot;

/* Appends a line to train.log, for the record of attempts. */
static void cmd_log_line(int fd, const char *what) {
    char when[32], line[256];
    cmd_sweep_format_time((long long)time(NULL), when, sizeof when);
    int n = snprintf(line, sizeof line, "fsnn sweep --local: %s: %s\n", when, what);
    if (n > 0) {
        ssize_t w = write(fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        (void)w;
    }
}

/* The error line of a run whose fsnn binary could not be executed: the
 * child exits with 127 and the run is recorded as failed, with this line
 * as the error `fsnn sweep status` shows. */
static void cmd_log_exec_error(int fd, int exec_errno) {
    dprintf(fd, "error: cannot execute the fsnn binary: errno %d\n", exec_errno);
}

typedef struct {
    const sweep_plan *plan;
    const char *exe;
    int null_fd;
    cmd_slot *slots; /* [cmd_n_slots], parallel to cmd_children */
    int running;
    int done, failed, requeued;
} cmd_local_run;

/* `exe train CONFIG ARGS...` of run r, a NULL-terminated argv the caller
 * frees with cmd_sweep_free_argv. */
static int cmd_train_argv(const char *exe, const sweep_run *r, char ***argv_out) {
    char **argv = NULL;
    CHECK(XCALLOC(&argv, (size_t)r->n_args + 4));
    int n = 0, rc = FSNN_OK;
    argv[n++] = strdup(exe);
    argv[n++] = strdup("train");
    argv[n++] = strdup(r->config);
    for (int a = 0; a < r->n_args; a++)
        argv[n++] = strdup(r->args[a]);
    for (int i = 0; i < n; i++)
        if (!argv[i]) rc = FAIL("out of memory");
    if (rc != 0) {
        for (int i = 0; i < n; i++)
            free(argv[i]);
        free(argv);
        return rc;
    }
    *argv_out = argv;
    return FSNN_OK;
}

/* Starts run `id` in a free slot. Signals are blocked by the caller. */
static int cmd_start(cmd_local_run *L, int id) {
    const sweep_run *r = &L->plan->table.runs[id];
    char log_path[CMD_PATH_MAX], what[128];
    CHECK(fsutil_mkdirs(r->dir));
    CHECK(fsutil_join(log_path, sizeof log_path, r->dir, RUNSTATE_LOG));
    int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) return FAIL("%s: cannot open: %s", log_path, strerror(errno));
    char **argv = NULL;
    int rc = cmd_train_argv(L->exe, r, &argv);
    if (rc == 0) {
        snprintf(what, sizeof what, "start of run %d", id);
        cmd_log_line(log_fd, what);
        rc = runstate_write(r->dir, RUNSTATE_RUNNING, (long long)time(NULL), "local", -1);
    }
    child c;
    if (rc == 0) {
        char name[32];
        snprintf(name, sizeof name, "run %d", id);
        /* Its own process group: a Ctrl-C on the terminal reaches only the
         * sweep, which stops the runs with SIGTERM (checkpoint, exit 3). */
        child_opts o = {.exe = "/proc/self/exe",
                        .name = name,
                        .in = L->null_fd,
                        .out = log_fd,
                        .err = log_fd,
                        .own_group = 1};
        rc = child_start(argv, &o, &c);
        if (rc != 0)
            runstate_write(r->dir, RUNSTATE_FAILED, (long long)time(NULL), "local", -1);
        else if (c.exec_errno)
            cmd_log_exec_error(log_fd, c.exec_errno);
    }
    close(log_fd);
    cmd_sweep_free_argv(argv);
    CHECK(rc);
    for (int i = 0; i < cmd_n_slots; i++)
        if (cmd_children[i] == 0) {
            cmd_children[i] = c.pid;
            L->slots[i].id = id;
            L->slots[i].start = clock_seconds();
            break;
        }
    L->running++;
    printf("run %d %s: started\n", id, sweep_run_name(r));
    fflush(stdout);
    return FSNN_OK;
}

/* Records how the child in slot i ended. Signals are blocked. */
static void cmd_finish(cmd_local_run *L, int i, int status) {
    int id = L->slots[i].id;
    const sweep_run *r = &L->plan->table.runs[id];
    double secs = clock_seconds() - L->slots[i].start;
    cmd_children[i] = 0;
    L->running--;
    int code = child_exit_code(status);
    runstate_kind kind = runstate_of_exit(code);
    /* Stopped by our SIGTERM before fsnn train could catch it: nothing of
     * the run is lost, it resumes from its last checkpoint. */
    if (WIFSIGNALED(status) && cmd_stop &&
        (WTERMSIG(status) == SIGTERM || WTERMSIG(status) == SIGINT))
        kind = RUNSTATE_REQUEUED;
    if (runstate_write(r->dir, kind, (long long)time(NULL), "local", code) != 0) {
        log_error("%s", status_message());
        status_clear();
    }
    char log_path[CMD_PATH_MAX], what[64];
    if (fsutil_join(log_path, sizeof log_path, r->dir, RUNSTATE_LOG) == 0) {
        int fd = open(log_path, O_WRONLY | O_APPEND | O_CLOEXEC);
        if (fd >= 0) {
            snprintf(what, sizeof what, "end of run %d: exit code %d", id, code);
            cmd_log_line(fd, what);
            close(fd);
        }
    }
    status_clear();
    char err[300] = "";
    if (kind == RUNSTATE_FAILED && !runstate_last_error(r->dir, err, sizeof err))
        snprintf(err, sizeof err, "no error line in %s/%s", r->dir, RUNSTATE_LOG);
    printf("run %d %s: %s (exit %d) after %.1f s%s%s\n", id, sweep_run_name(r),
           kind == RUNSTATE_FINISHED ? "done" : runstate_name(kind), code, secs,
           kind == RUNSTATE_FAILED     ? ": "
           : kind == RUNSTATE_REQUEUED ? ": stopped with a checkpoint; the same command resumes"
                                       : "",
           err);
    fflush(stdout);
    L->done += kind == RUNSTATE_FINISHED;
    L->failed += kind == RUNSTATE_FAILED;
    L->requeued += kind == RUNSTATE_REQUEUED;
}

/* SIGINT, SIGTERM and SIGCHLD caught, and the mask and handlers to restore. */
typedef struct {
    sigset_t old, wait_mask; /* wait_mask: what sigsuspend lets through */
    struct sigaction old_int, old_term, old_chld;
} cmd_signals;

/* Signals arrive only inside sigsuspend: the children table never changes
 * under the handler's feet, and no SIGCHLD is missed. */
static void cmd_signals_catch(cmd_signals *s) {
    sigset_t block;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &s->old);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = cmd_on_stop;
    sigaction(SIGINT, &sa, &s->old_int);
    sigaction(SIGTERM, &sa, &s->old_term);
    sa.sa_handler = cmd_on_child;
    sa.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, &s->old_chld);
    s->wait_mask = s->old;
    sigdelset(&s->wait_mask, SIGINT);
    sigdelset(&s->wait_mask, SIGTERM);
    sigdelset(&s->wait_mask, SIGCHLD);
}

static void cmd_signals_restore(const cmd_signals *s) {
    sigaction(SIGINT, &s->old_int, NULL);
    sigaction(SIGTERM, &s->old_term, NULL);
    sigaction(SIGCHLD, &s->old_chld, NULL);
    sigprocmask(SIG_SETMASK, &s->old, NULL);
}

/* Starts the runs of todo from *next on while slots are free and reaps
 * them as they end, until all ended. After a stop (a signal, or a run that
 * could not be started) it starts none and waits for the running ones;
 * *next is then the first run not started. */
static int cmd_loop(cmd_local_run *L, const cmd_sweep_todo *todo, int jobs,
                    const sigset_t *wait_mask, int *next) {
    int rc = FSNN_OK, announced = 0;
    while (rc == 0 || L->running > 0) {
        while (rc == 0 && !cmd_stop && L->running < jobs && *next < todo->n)
            rc = cmd_start(L, todo->ids[(*next)++]);
        if (rc != 0 && !announced) {
            log_error("%s", status_message());
            status_clear();
            cmd_stop = SIGTERM;
            cmd_stop_runs();
        }
        if (cmd_stop && !announced) {
            announced = 1;
            if (L->running > 0)
                printf("stopping: %d run%s asked to write a checkpoint and stop\n", L->running,
                       L->running == 1 ? "" : "s");
            fflush(stdout);
        }
        if (L->running == 0) break;
        pid_t pid = 0;
        int status = 0;
        if (child_poll(&pid, &status) != 0) {
            rc = FSNN_ERR;
            break;
        }
        if (pid > 0) {
            for (int i = 0; i < cmd_n_slots; i++)
                if (cmd_children[i] == pid) cmd_finish(L, i, status);
            continue;
        }
        sigsuspend(wait_mask);
    }
    return rc;
}

int cmd_sweep_local(const sweep_plan *plan, const cmd_sweep_todo *todo, const char *exe, int jobs) {
    cmd_local_run L;
    memset(&L, 0, sizeof L);
    L.plan = plan;
    L.exe = exe;
    if (jobs > todo->n) jobs = todo->n;
    CHECK(XCALLOC(&L.slots, (size_t)jobs));
    int rc = XCALLOC(&cmd_children, (size_t)jobs);
    cmd_n_slots = jobs;
    L.null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (rc == 0 && L.null_fd < 0) rc = FAIL("cannot open /dev/null: %s", strerror(errno));
    cmd_signals sig;
    cmd_signals_catch(&sig);
    cmd_stop = 0;
    int next = 0;
    if (rc == 0) rc = cmd_loop(&L, todo, jobs, &sig.wait_mask, &next);
    cmd_signals_restore(&sig);
    if (L.null_fd >= 0) close(L.null_fd);
    free(L.slots);
    free(cmd_children);
    cmd_children = NULL;
    cmd_n_slots = 0;
    int left = todo->n - next;
    printf("sweep %s: %d done, %d failed, %d requeued, %d not started this time; %d finished "
           "before, %d running elsewhere\n",
           plan->name, L.done, L.failed, L.requeued, left, todo->finished,
           todo->running + todo->queued);
    if (rc != 0) return CMD_FAILED;
    if (L.failed) return CMD_FAILED;
    if (L.requeued || left) return CMD_STOPPED;
    return CMD_OK;
}
