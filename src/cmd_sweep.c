/* cmd_sweep: `fsnn sweep`. Expands a sweep file into runs (io/sweep),
 * writes the sweep directory and starts the runs that are not finished: as
 * one SLURM array job (--submit), here K at a time (--local), or not at all
 * (--dry-run writes nothing; no option writes the directory only).
 * `fsnn sweep status` reports every run from the files alone.
 *
 * No shell is involved: sbatch and `fsnn train` are started with fork and
 * exec, each argument one argv element, exactly as runs.tsv lists it.
 *
 * Not an MPI program: main() dispatches here before MPI_Init. An Open MPI
 * singleton's MPI_Init would put PMIX_ and OMPI_ variables naming this
 * process's PMIx server into every child's environment. */
#include "cmd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"    // defines: clock_seconds
#include "fsutil.h"   // defines: fsutil_mkdirs, fsutil_join, fsutil_write_atomic
#include "log.h"      // defines: log_error, log_warn
#include "runstate.h" // defines: runstate_get, runstate_write, runstate_last_error
#include "status.h"   // defines: CHECK, FAIL, XCALLOC
#include "sweep.h"    // defines: sweep_load, sweep_tsv_read, sweep_tsv_write

#ifndef FSNN_SOURCE_DIR
#error "FSNN_SOURCE_DIR must name the source tree (CMakeLists.txt defines it)"
#endif

enum { CMD_OK = 0, CMD_FAILED = 1, CMD_USAGE = 2, CMD_STOPPED = 3 };

#define CMD_PATH_MAX 4200
#define CMD_JOBS_MAX 256

static const char cmd_sweep_usage[] =
    "usage:\n"
    "  fsnn sweep SWEEP.ini              write the sweep directory (sweep.ini, runs.tsv)\n"
    "  fsnn sweep SWEEP.ini --dry-run    print the runs and the sbatch command; write nothing\n"
    "  fsnn sweep SWEEP.ini --submit     submit the unfinished runs as one SLURM array job\n"
    "  fsnn sweep SWEEP.ini --local [-j K]   run the unfinished runs here, K at a time\n"
    "  fsnn sweep status SWEEP_DIR       state of every run\n"
    "docs/sweeps.md describes the sweep file. sbatch's script is slurm/sweep.sbatch of the\n"
    "source tree (" FSNN_SOURCE_DIR "), or of $FSNN_SLURM_DIR when set.\n";

typedef enum { CMD_PREPARE, CMD_DRY_RUN, CMD_SUBMIT, CMD_LOCAL } cmd_mode;

/* ---- small helpers ---- */

/* Prints s so that a POSIX shell reads it back as one word. */
static void cmd_quote(FILE *out, const char *s) {
    int plain = *s != '\0';
    for (const char *c = s; *c && plain; c++)
        plain = strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/=+,:@%-",
                       *c) != NULL;
    if (plain) {
        fputs(s, out);
        return;
    }
    fputc('\'', out);
    for (const char *c = s; *c; c++)
        if (*c == '\'')
            fputs("'\\''", out);
        else
            fputc(*c, out);
    fputc('\'', out);
}

static void cmd_print_argv(FILE *out, char *const *argv) {
    for (int i = 0; argv[i]; i++) {
        if (i) fputc(' ', out);
        cmd_quote(out, argv[i]);
    }
    fputc('\n', out);
}

/* 1 when started by an MPI launcher or as one of several tasks: the runs'
 * processes would inherit the launcher's environment. */
static int cmd_under_launcher(void) {
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++)
        if (getenv(vars[i])) return 1;
    const char *tasks = getenv("SLURM_STEP_NUM_TASKS");
    return tasks && atoi(tasks) > 1;
}

static int cmd_self_exe(char *buf, size_t size) {
    ssize_t n = readlink("/proc/self/exe", buf, size - 1);
    if (n < 0) return FAIL("cannot find the fsnn binary (/proc/self/exe): %s", strerror(errno));
    if ((size_t)n >= size - 1) return FAIL("the path of the fsnn binary is too long");
    buf[n] = '\0';
    return FSNN_OK;
}

/* slurm/sweep.sbatch of $FSNN_SLURM_DIR, else of the source tree. */
static void cmd_script(char *buf, size_t size) {
    const char *dir = getenv("FSNN_SLURM_DIR");
    if (dir && *dir)
        snprintf(buf, size, "%s/sweep.sbatch", dir);
    else
        snprintf(buf, size, "%s/slurm/sweep.sbatch", FSNN_SOURCE_DIR);
}

static void cmd_format_time(long long when, char *buf, size_t size) {
    time_t t = (time_t)when;
    struct tm tm;
    if (!localtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm))
        snprintf(buf, size, "%lld", when);
}

static void cmd_free_argv(char **argv) {
    if (!argv) return;
    for (int i = 0; argv[i]; i++)
        free(argv[i]);
    free(argv);
}

/* ---- which runs to start ---- */

typedef struct {
    int *ids; /* the runs to start, in id order */
    int n;
    int finished, running;
} cmd_todo;

/* Every run that is not finished and not running elsewhere: pending,
 * requeued, failed, or with an unreadable job.state. */
static int cmd_select(const sweep_table *t, cmd_todo *todo) {
    memset(todo, 0, sizeof *todo);
    CHECK(XCALLOC(&todo->ids, (size_t)t->n));
    for (int i = 0; i < t->n; i++) {
        runstate st;
        runstate_get(t->runs[i].dir, &st);
        if (st.kind == RUNSTATE_FINISHED) {
            todo->finished++;
        } else if (st.kind == RUNSTATE_RUNNING) {
            char when[32];
            cmd_format_time(st.when, when, sizeof when);
            log_warn("run %d %s is marked running (job %s since %s); left out. If that job is "
                     "gone, delete %s/%s to start it again",
                     i, sweep_run_name(&t->runs[i]), st.job, when, t->runs[i].dir, RUNSTATE_FILE);
            todo->running++;
        } else {
            if (st.kind == RUNSTATE_UNKNOWN) log_warn("run %d: %s; starting it again", i, st.why);
            todo->ids[todo->n++] = i;
        }
    }
    return FSNN_OK;
}

/* "0-9", "1,3,5-7", then "%K" with a throttle. */
static int cmd_array_spec(const cmd_todo *todo, int throttle, char **spec) {
    size_t len = 0;
    FILE *mem = open_memstream(spec, &len);
    if (!mem) return FAIL("out of memory");
    for (int i = 0; i < todo->n;) {
        int j = i;
        while (j + 1 < todo->n && todo->ids[j + 1] == todo->ids[j] + 1)
            j++;
        fprintf(mem, "%s%d", i ? "," : "", todo->ids[i]);
        if (j > i) fprintf(mem, "-%d", todo->ids[j]);
        i = j + 1;
    }
    if (throttle > 0) fprintf(mem, "%%%d", throttle);
    if (fclose(mem) == 0) return FSNN_OK;
    free(*spec);
    *spec = NULL;
    return FAIL("out of memory");
}

/* A new string formatted like printf; NULL when out of memory. */
static char *cmd_format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static char *cmd_format(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n < 0 ? NULL : malloc((size_t)n + 1);
    if (!s) return NULL;
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

/* The sbatch command of the sweep directory interface (docs/sweeps.md), a
 * NULL-terminated argv the caller frees with cmd_free_argv. */
static int cmd_sbatch_argv(const sweep_plan *plan, const cmd_todo *todo, const char *exe,
                           const char *script, char ***argv_out) {
    enum { MAX_ARGS = 16 };
    char *array = NULL, **argv = NULL;
    CHECK(cmd_array_spec(todo, plan->slurm.throttle, &array));
    int rc = XCALLOC(&argv, MAX_ARGS);
    const sweep_slurm *s = &plan->slurm;
    int n = 0;
    if (rc == 0) {
        argv[n++] = cmd_format("sbatch");
        argv[n++] = cmd_format("--array=%s", array);
        argv[n++] = cmd_format("--output=%s/logs/%%A_%%a.out", plan->dir);
        argv[n++] = cmd_format("--ntasks=%d", s->ntasks);
        if (s->cpus_per_task) argv[n++] = cmd_format("--cpus-per-task=%d", s->cpus_per_task);
        if (*s->time) argv[n++] = cmd_format("--time=%s", s->time);
        if (*s->partition) argv[n++] = cmd_format("--partition=%s", s->partition);
        argv[n++] = cmd_format("--signal=B:USR1@%d", s->signal_seconds);
        argv[n++] = cmd_format("--requeue");
        argv[n++] = cmd_format("--job-name=fsnn-%s", plan->name);
        argv[n++] = cmd_format("%s", script);
        argv[n++] = cmd_format("%s", exe);
        argv[n++] = cmd_format("%s", plan->dir);
        for (int i = 0; i < n; i++)
            if (!argv[i]) rc = FAIL("out of memory");
    }
    free(array);
    if (rc != 0) {
        for (int i = 0; argv && i < n; i++)
            free(argv[i]);
        free(argv);
        return rc;
    }
    *argv_out = argv;
    return FSNN_OK;
}

/* ---- the sweep directory ---- */

/* A folder holding only what an interrupted first write leaves. */
static int cmd_only_sweep_files(const char *dir) {
    DIR *d = opendir(dir);
    if (!d) return 1;
    int only = 1;
    struct dirent *e;
    while (only && (e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        only = !strcmp(n, ".") || !strcmp(n, "..") || !strcmp(n, "runs") || !strcmp(n, "logs") ||
               !strcmp(n, "sweep.ini") || !strcmp(n, "sweep.ini.tmp") || !strcmp(n, "runs.tsv.tmp");
    }
    closedir(d);
    return only;
}

/* Writes SWEEP_DIR/sweep.ini, runs.tsv, runs/ and logs/. An existing
 * runs.tsv must list the same runs: array tasks of an earlier submission
 * may still read it by id. */
static int cmd_prepare(const sweep_plan *plan) {
    char tsv[CMD_PATH_MAX], path[CMD_PATH_MAX];
    CHECK(fsutil_join(tsv, sizeof tsv, plan->dir, "runs.tsv"));
    char *text = NULL;
    size_t len = 0;
    CHECK(sweep_tsv_format(&plan->table, &text, &len));
    int rc = FSNN_OK;
    if (fsutil_is_file(tsv)) {
        FILE *f = fopen(tsv, "rb");
        char *old = malloc(len + 1);
        size_t got = (f && old) ? fread(old, 1, len + 1, f) : 0;
        if (!f || !old)
            rc = FAIL("%s: cannot read: %s", tsv, strerror(errno));
        else if (got != len || memcmp(old, text, len))
            rc = FAIL("%s lists other runs than %s gives now (was the sweep file changed?); "
                      "restore the sweep file, or set another [sweep] dir",
                      tsv, plan->file);
        if (f) fclose(f);
        free(old);
    } else if (!cmd_only_sweep_files(plan->dir)) {
        rc = FAIL("%s exists and is not a sweep directory (it has no runs.tsv); set another "
                  "[sweep] dir or move it away",
                  plan->dir);
    }
    if (rc == 0) rc = fsutil_mkdirs(plan->dir);
    if (rc == 0) rc = fsutil_join(path, sizeof path, plan->dir, "runs");
    if (rc == 0) rc = fsutil_mkdirs(path);
    if (rc == 0) rc = fsutil_join(path, sizeof path, plan->dir, "logs");
    if (rc == 0) rc = fsutil_mkdirs(path);
    if (rc == 0) rc = fsutil_join(path, sizeof path, plan->dir, "sweep.ini");
    if (rc == 0) rc = fsutil_write_atomic(path, plan->text, plan->text_len);
    if (rc == 0) rc = fsutil_write_atomic(tsv, text, len);
    free(text);
    CHECK(rc);
    return FSNN_OK;
}

static void cmd_print_plan(const sweep_plan *plan) {
    printf("sweep %s: %d run%s (%d point%s x %d seed%s) in %s\n", plan->name, plan->table.n,
           plan->table.n == 1 ? "" : "s", plan->points, plan->points == 1 ? "" : "s", plan->seeds,
           plan->seeds == 1 ? "" : "s", plan->dir);
}

static void cmd_print_table(const sweep_plan *plan) {
    printf("each run: fsnn train ");
    cmd_quote(stdout, plan->base);
    printf(" ARGS run.dir=");
    cmd_quote(stdout, plan->dir);
    printf("/runs/DIR\n");
    int width = 4;
    for (int i = 0; i < plan->table.n; i++) {
        int w = (int)strlen(sweep_run_name(&plan->table.runs[i]));
        if (w > width) width = w;
    }
    printf("%-4s  %-*s  %s\n", "id", width, "dir", "args");
    for (int i = 0; i < plan->table.n; i++) {
        const sweep_run *r = &plan->table.runs[i];
        printf("%-4d  %-*s ", i, width, sweep_run_name(r));
        for (int a = 0; a < r->n_args; a++) {
            if (!strncmp(r->args[a], "run.dir=", 8)) continue;
            fputc(' ', stdout);
            cmd_quote(stdout, r->args[a]);
        }
        fputc('\n', stdout);
    }
}

/* ---- --submit ---- */

/* Runs argv[0] from PATH with execvp and waits. A failed exec is reported
 * through a close-on-exec pipe, so "not found" is told apart from the
 * program's own failure. */
static int cmd_run(char *const *argv, int *exit_code) {
    int fds[2];
    if (pipe(fds) != 0) return FAIL("cannot create a pipe: %s", strerror(errno));
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    fflush(NULL);
    pid_t pid = fork();
    if (pid < 0) {
        close(fds[0]);
        close(fds[1]);
        return FAIL("cannot start %s: fork: %s", argv[0], strerror(errno));
    }
    if (pid == 0) {
        close(fds[0]);
        execvp(argv[0], argv);
        int err = errno;
        ssize_t w = write(fds[1], &err, sizeof err);
        (void)w;
        _exit(127);
    }
    close(fds[1]);
    int err = 0;
    ssize_t got;
    do
        got = read(fds[0], &err, sizeof err);
    while (got < 0 && errno == EINTR);
    close(fds[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (got == (ssize_t)sizeof err)
        return FAIL("cannot run %s: %s%s", argv[0], strerror(err),
                    err == ENOENT ? " (is SLURM installed here and sbatch on PATH?)" : "");
    *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return FSNN_OK;
}

static int cmd_submit(const sweep_plan *plan, const cmd_todo *todo, const char *exe) {
    char script[CMD_PATH_MAX];
    cmd_script(script, sizeof script);
    if (!fsutil_is_file(script))
        return FAIL("%s: no such batch script; set FSNN_SLURM_DIR to the folder holding "
                    "sweep.sbatch (default: the source tree's slurm/)",
                    script);
    char **argv = NULL;
    CHECK(cmd_sbatch_argv(plan, todo, exe, script, &argv));
    printf("submitting %d run%s: ", todo->n, todo->n == 1 ? "" : "s");
    cmd_print_argv(stdout, argv);
    int code = 0;
    int rc = cmd_run(argv, &code);
    cmd_free_argv(argv);
    CHECK(rc);
    if (code != 0) return FAIL("sbatch failed (exit code %d); its message is above", code);
    return FSNN_OK;
}

/* ---- --local ---- */

static volatile sig_atomic_t cmd_stop;
/* The children's pids (0 = free slot); changed only with signals blocked. */
static pid_t *cmd_children;
static int cmd_n_slots;

static void cmd_on_stop(int sig) {
    int saved = errno;
    cmd_stop = sig;
    for (int i = 0; i < cmd_n_slots; i++)
        if (cmd_children[i] > 0) kill(cmd_children[i], SIGTERM);
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
    cmd_format_time((long long)time(NULL), when, sizeof when);
    int n = snprintf(line, sizeof line, "fsnn sweep --local: %s: %s\n", when, what);
    if (n > 0) {
        ssize_t w = write(fd, line, (size_t)n < sizeof line ? (size_t)n : sizeof line - 1);
        (void)w;
    }
}

/* The decimal digits of v into buf (async-signal-safe). */
static size_t cmd_itoa(int v, char *buf) {
    char tmp[16];
    size_t n = 0, k = 0;
    unsigned u = v < 0 ? 0u : (unsigned)v;
    do
        tmp[n++] = (char)('0' + u % 10);
    while ((u /= 10) && n < sizeof tmp);
    while (n)
        buf[k++] = tmp[--n];
    return k;
}

/* In the child between fork and exec: only async-signal-safe calls. */
static _Noreturn void cmd_child(int log_fd, int null_fd, char *const *argv) {
    /* Its own process group: a Ctrl-C on the terminal reaches only the
     * sweep, which stops the runs with SIGTERM (checkpoint, exit 3). */
    setpgid(0, 0);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGINT, &sa, NULL); /* drops a pending terminal SIGINT */
    sa.sa_handler = SIG_DFL;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGCHLD, &sa, NULL);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (dup2(null_fd, 0) < 0 || dup2(log_fd, 1) < 0 || dup2(log_fd, 2) < 0) _exit(126);
    execv("/proc/self/exe", argv);
    char msg[64] = "error: cannot execute the fsnn binary: errno ";
    size_t n = strlen(msg);
    n += cmd_itoa(errno, msg + n);
    msg[n++] = '\n';
    ssize_t w = write(2, msg, n);
    (void)w;
    _exit(127);
}

typedef struct {
    const sweep_plan *plan;
    const char *exe;
    int null_fd;
    cmd_slot *slots; /* [cmd_n_slots], parallel to cmd_children */
    int running;
    int done, failed, requeued;
} cmd_local_run;

/* Starts run `id` in a free slot. Signals are blocked by the caller. */
static int cmd_start(cmd_local_run *L, int id) {
    const sweep_run *r = &L->plan->table.runs[id];
    char log_path[CMD_PATH_MAX], what[128];
    CHECK(fsutil_mkdirs(r->dir));
    CHECK(fsutil_join(log_path, sizeof log_path, r->dir, RUNSTATE_LOG));
    int log_fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (log_fd < 0) return FAIL("%s: cannot open: %s", log_path, strerror(errno));
    char **argv = NULL;
    int rc = XCALLOC(&argv, (size_t)r->n_args + 4);
    int n = 0;
    if (rc == 0) {
        argv[n++] = strdup(L->exe);
        argv[n++] = strdup("train");
        argv[n++] = strdup(r->config);
        for (int a = 0; a < r->n_args; a++)
            argv[n++] = strdup(r->args[a]);
        for (int i = 0; i < n; i++)
            if (!argv[i]) rc = FAIL("out of memory");
    }
    if (rc == 0) {
        snprintf(what, sizeof what, "start of run %d", id);
        cmd_log_line(log_fd, what);
        rc = runstate_write(r->dir, RUNSTATE_RUNNING, (long long)time(NULL), "local", -1);
    }
    pid_t pid = -1;
    if (rc == 0) {
        fflush(NULL);
        pid = fork();
        if (pid == 0) cmd_child(log_fd, L->null_fd, argv);
        if (pid < 0) {
            rc = FAIL("cannot start run %d: fork: %s", id, strerror(errno));
            runstate_write(r->dir, RUNSTATE_FAILED, (long long)time(NULL), "local", -1);
        }
    }
    close(log_fd);
    if (argv)
        for (int i = 0; i < n; i++)
            free(argv[i]);
    free(argv);
    CHECK(rc);
    setpgid(pid, pid); /* also here: whichever runs first */
    for (int i = 0; i < cmd_n_slots; i++)
        if (cmd_children[i] == 0) {
            cmd_children[i] = pid;
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
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
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

static int cmd_local(const sweep_plan *plan, const cmd_todo *todo, const char *exe, int jobs) {
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
    /* Signals arrive only inside sigsuspend: the children table never
     * changes under the handler's feet, and no SIGCHLD is missed. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGCHLD);
    sigprocmask(SIG_BLOCK, &block, &old);
    struct sigaction sa, old_int, old_term, old_chld;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = cmd_on_stop;
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    sa.sa_handler = cmd_on_child;
    sa.sa_flags = SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, &old_chld);
    cmd_stop = 0;
    int next = 0, announced = 0;
    sigset_t wait_mask = old;
    sigdelset(&wait_mask, SIGINT);
    sigdelset(&wait_mask, SIGTERM);
    sigdelset(&wait_mask, SIGCHLD);
    while (rc == 0 || L.running > 0) {
        while (rc == 0 && !cmd_stop && L.running < jobs && next < todo->n)
            rc = cmd_start(&L, todo->ids[next++]);
        if (rc != 0 && !announced) {
            log_error("%s", status_message());
            status_clear();
            cmd_stop = SIGTERM;
            for (int i = 0; i < cmd_n_slots; i++)
                if (cmd_children[i] > 0) kill(cmd_children[i], SIGTERM);
        }
        if (cmd_stop && !announced) {
            announced = 1;
            if (L.running > 0)
                printf("stopping: %d run%s asked to write a checkpoint and stop\n", L.running,
                       L.running == 1 ? "" : "s");
            fflush(stdout);
        }
        if (L.running == 0) break;
        int status = 0;
        pid_t pid = waitpid(-1, &status, WNOHANG);
        if (pid > 0) {
            for (int i = 0; i < cmd_n_slots; i++)
                if (cmd_children[i] == pid) cmd_finish(&L, i, status);
            continue;
        }
        if (pid < 0 && errno != EINTR) {
            rc = FAIL("waitpid: %s", strerror(errno));
            break;
        }
        sigsuspend(&wait_mask);
    }
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGCHLD, &old_chld, NULL);
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (L.null_fd >= 0) close(L.null_fd);
    free(L.slots);
    free(cmd_children);
    cmd_children = NULL;
    cmd_n_slots = 0;
    int left = todo->n - next;
    printf("sweep %s: %d done, %d failed, %d requeued, %d not started this time; %d finished "
           "before, %d running elsewhere\n",
           plan->name, L.done, L.failed, L.requeued, left, todo->finished, todo->running);
    if (rc != 0) return CMD_FAILED;
    if (L.failed) return CMD_FAILED;
    if (L.requeued || left) return CMD_STOPPED;
    return CMD_OK;
}

/* ---- status ---- */

static int cmd_status(const char *dir) {
    char tsv[CMD_PATH_MAX];
    sweep_table t;
    if (fsutil_join(tsv, sizeof tsv, dir, "runs.tsv") || sweep_tsv_read(tsv, &t)) {
        log_error("%s", status_message());
        return CMD_FAILED;
    }
    int count[RUNSTATE_UNKNOWN + 1] = {0}, width = 3;
    for (int i = 0; i < t.n; i++) {
        int w = (int)strlen(sweep_run_name(&t.runs[i]));
        if (w > width) width = w;
    }
    printf("%s: %d run%s\n", dir, t.n, t.n == 1 ? "" : "s");
    printf("%-4s  %-8s  %-7s  %-8s  %-*s  %s\n", "id", "state", "epochs", "test_acc", width, "run",
           "detail");
    for (int i = 0; i < t.n; i++) {
        const sweep_run *r = &t.runs[i];
        runstate st;
        runstate_get(r->dir, &st);
        count[st.kind]++;
        char epochs[32] = "-", acc[32] = "-", when[32] = "", detail[512] = "";
        if (st.epochs_done >= 0 && st.epochs >= 0)
            snprintf(epochs, sizeof epochs, "%d/%d", st.epochs_done, st.epochs);
        if (isfinite(st.test_acc)) snprintf(acc, sizeof acc, "%.2f", st.test_acc);
        if (st.has_file) cmd_format_time(st.when, when, sizeof when);
        if (st.kind == RUNSTATE_UNKNOWN) {
            snprintf(detail, sizeof detail, "%s", st.why);
        } else if (st.kind == RUNSTATE_FAILED) {
            char err[300] = "";
            if (!runstate_last_error(r->dir, err, sizeof err))
                snprintf(err, sizeof err, "no error line in %s", RUNSTATE_LOG);
            if (st.exit_code >= 0)
                snprintf(detail, sizeof detail, "exit %d: %s", st.exit_code, err);
            else
                snprintf(detail, sizeof detail, "%s", err);
        } else if (st.kind == RUNSTATE_RUNNING) {
            snprintf(detail, sizeof detail, "job %s since %s", st.job, when);
        } else if (st.kind == RUNSTATE_REQUEUED) {
            snprintf(detail, sizeof detail, "job %s stopped at %s with a checkpoint (exit %d)",
                     st.job, when, st.exit_code);
        }
        char row[1024];
        int len = snprintf(row, sizeof row, "%-4d  %-8s  %-7s  %-8s  %-*s  %s", i,
                           runstate_name(st.kind), epochs, acc, width, sweep_run_name(r), detail);
        while (len > 0 && (size_t)len < sizeof row && row[len - 1] == ' ')
            row[--len] = '\0';
        printf("%s\n", row);
    }
    printf("%d run%s: %d finished, %d running, %d requeued, %d failed, %d pending", t.n,
           t.n == 1 ? "" : "s", count[RUNSTATE_FINISHED], count[RUNSTATE_RUNNING],
           count[RUNSTATE_REQUEUED], count[RUNSTATE_FAILED], count[RUNSTATE_PENDING]);
    if (count[RUNSTATE_UNKNOWN]) printf(", %d unknown", count[RUNSTATE_UNKNOWN]);
    printf("\n");
    sweep_table_free(&t);
    return CMD_OK;
}

/* ---- the command ---- */

static int cmd_usage(const char *why) {
    if (why) fprintf(stderr, "fsnn sweep: %s\n", why);
    fputs(cmd_sweep_usage, stderr);
    return CMD_USAGE;
}

static int cmd_sweep_file(const char *file, cmd_mode mode, int jobs) {
    char cwd[CMD_PATH_MAX], exe[CMD_PATH_MAX];
    if (!getcwd(cwd, sizeof cwd)) {
        log_error("cannot read the current directory: %s", strerror(errno));
        return CMD_FAILED;
    }
    sweep_plan plan;
    if (cmd_self_exe(exe, sizeof exe) || sweep_load(file, cwd, &plan)) {
        log_error("%s", status_message());
        return CMD_FAILED;
    }
    cmd_print_plan(&plan);
    cmd_todo todo;
    int code = CMD_OK;
    if (cmd_select(&plan.table, &todo)) {
        log_error("%s", status_message());
        sweep_plan_free(&plan);
        return CMD_FAILED;
    }
    if (mode == CMD_DRY_RUN) {
        cmd_print_table(&plan);
        char script[CMD_PATH_MAX], **argv = NULL;
        cmd_script(script, sizeof script);
        if (todo.n == 0) {
            printf("all runs are finished or running: nothing to submit\n");
        } else if (cmd_sbatch_argv(&plan, &todo, exe, script, &argv) == 0) {
            printf("--submit would run (%d of %d runs; %d finished, %d running):\n", todo.n,
                   plan.table.n, todo.finished, todo.running);
            cmd_print_argv(stdout, argv);
            fflush(stdout);
            if (!fsutil_is_file(script))
                log_warn("%s does not exist (set FSNN_SLURM_DIR to the folder holding it)", script);
        } else {
            log_error("%s", status_message());
            code = CMD_FAILED;
        }
        cmd_free_argv(argv);
        printf("nothing written (--dry-run)\n");
    } else if (cmd_prepare(&plan) != 0) {
        log_error("%s", status_message());
        code = CMD_FAILED;
    } else if (mode == CMD_PREPARE) {
        printf("wrote %s/runs.tsv; start the runs with --submit (SLURM) or --local\n", plan.dir);
    } else if (todo.n == 0) {
        printf("nothing to start: %d finished, %d running\n", todo.finished, todo.running);
    } else if (mode == CMD_SUBMIT) {
        if (cmd_submit(&plan, &todo, exe) != 0) {
            log_error("%s", status_message());
            code = CMD_FAILED;
        }
    } else {
        code = cmd_local(&plan, &todo, exe, jobs);
    }
    free(todo.ids);
    sweep_plan_free(&plan);
    return code;
}

int cmd_sweep(int argc, char **argv) {
    if (cmd_under_launcher())
        return cmd_usage("runs as one process: start it without mpirun or srun (it starts the "
                         "runs itself)");
    if (argc >= 1 && !strcmp(argv[0], "status")) {
        if (argc != 2) return cmd_usage("status takes one SWEEP_DIR");
        return cmd_status(argv[1]);
    }
    const char *file = NULL;
    cmd_mode mode = CMD_PREPARE;
    int modes = 0, jobs = 1, jobs_given = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--dry-run")) {
            mode = CMD_DRY_RUN, modes++;
        } else if (!strcmp(a, "--submit")) {
            mode = CMD_SUBMIT, modes++;
        } else if (!strcmp(a, "--local")) {
            mode = CMD_LOCAL, modes++;
        } else if (!strncmp(a, "-j", 2)) {
            const char *v = a[2] ? a + 2 : (i + 1 < argc ? argv[++i] : "");
            char *end = NULL;
            long k = strtol(v, &end, 10);
            if (!*v || *end || k < 1 || k > CMD_JOBS_MAX) {
                char why[96];
                snprintf(why, sizeof why, "-j takes a number of runs at once, 1..%d", CMD_JOBS_MAX);
                return cmd_usage(why);
            }
            jobs = (int)k;
            jobs_given = 1;
        } else if (a[0] == '-' || file) {
            fprintf(stderr, "fsnn sweep: unexpected argument '%.80s'\n", a);
            return cmd_usage(NULL);
        } else {
            file = a;
        }
    }
    if (!file) return cmd_usage("no sweep file given");
    if (modes > 1) return cmd_usage("give one of --dry-run, --submit, --local");
    if (jobs_given && mode != CMD_LOCAL) return cmd_usage("-j goes with --local");
    return cmd_sweep_file(file, mode, jobs);
}
