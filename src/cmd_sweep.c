/* cmd_sweep: `fsnn sweep`. Expands a sweep file into runs (io/sweep),
 * writes the sweep directory and starts the runs that are not finished: as
 * one SLURM array job (--submit), here K at a time (--local), or not at all
 * (--dry-run writes nothing; no option writes the directory only).
 * `fsnn sweep status` reports every run from its files, refined with what
 * squeue says about the jobs of the sweep (io/sweepq).
 *
 * No shell is involved: sbatch, squeue and `fsnn train` are started with
 * fork and exec, each argument one argv element, exactly as runs.tsv lists
 * it.
 *
 * Not an MPI program: main() dispatches here before MPI_Init. An Open MPI
 * singleton's MPI_Init would put PMIX_ and OMPI_ variables naming this
 * process's PMIx server into every child's environment. */
#include "cmd.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
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
#include "sweepq.h"   // defines: sweepq_refine, sweepq_queue_parse, sweepq_history_append

#ifndef FSNN_SOURCE_DIR
#error "FSNN_SOURCE_DIR must name the source tree (CMakeLists.txt defines it)"
#endif

enum { CMD_OK = 0, CMD_FAILED = 1, CMD_USAGE = 2, CMD_STOPPED = 3 };

#define CMD_PATH_MAX 4200
#define CMD_JOBS_MAX 256
#define CMD_CAPTURE_MAX ((size_t)64 << 20)
#define CMD_SQUEUE_TIMEOUT 30.0 /* seconds */
#define CMD_QUEUED_SHOWN 10

static const char cmd_sweep_usage[] =
    "usage:\n"
    "  fsnn sweep SWEEP.ini              write the sweep directory (sweep.ini, runs.tsv)\n"
    "  fsnn sweep SWEEP.ini --dry-run    print the runs and the sbatch command; write nothing\n"
    "  fsnn sweep SWEEP.ini --submit     submit the unfinished runs as one SLURM array job\n"
    "  fsnn sweep SWEEP.ini --local [-j K]   run the unfinished runs here, K at a time\n"
    "  fsnn sweep status SWEEP_DIR [--no-slurm]   state of every run (asks squeue unless\n"
    "                                    --no-slurm)\n"
    "--submit, --dry-run and --local ask squeue which runs SLURM still holds (not with\n"
    "--no-slurm).\n"
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

/* ---- running sbatch and squeue ---- */

/* Appends what fd gives to *buf (at most CMD_CAPTURE_MAX bytes are kept;
 * more is read and dropped). Returns 0 at end of file, 1 after data, -1 on
 * error. */
static int cmd_drain(int fd, char **buf, size_t *len, size_t *cap) {
    char chunk[4096];
    ssize_t got = read(fd, chunk, sizeof chunk);
    if (got < 0) return errno == EINTR || errno == EAGAIN ? 1 : -1;
    if (got == 0) return 0;
    if (*len + (size_t)got + 1 > *cap && *len + (size_t)got + 1 <= CMD_CAPTURE_MAX) {
        size_t want = *cap ? *cap : 4096;
        while (want < *len + (size_t)got + 1)
            want *= 2;
        char *grown = realloc(*buf, want);
        if (!grown) return -1;
        *buf = grown;
        *cap = want;
    }
    if (*len + (size_t)got + 1 <= *cap) {
        memcpy(*buf + *len, chunk, (size_t)got);
        *len += (size_t)got;
        (*buf)[*len] = '\0';
    }
    return 1;
}

/* A pipe whose ends are closed on exec. */
static int cmd_pipe(int fds[2]) {
    if (pipe(fds) != 0) return -1;
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    return 0;
}

/* Runs argv[0] from PATH with execvp (no shell) and waits. Its stdout goes
 * to *out (NUL-terminated; the caller frees it), its stderr to *err, or to
 * ours when err is NULL. With timeout > 0 the program is killed after that
 * many seconds, which fails. A failed exec is reported through a
 * close-on-exec pipe, so "not found" is told apart from the program's own
 * failure. */
static int cmd_capture(char *const *argv, double timeout, char **out, size_t *out_len, char **err,
                       int *exit_code) {
    int fds[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
    *out = NULL;
    *out_len = 0;
    if (err) *err = NULL;
    if (cmd_pipe(fds) || cmd_pipe(pout) || (err && cmd_pipe(perr))) {
        int e = errno;
        for (int i = 0; i < 2; i++) {
            if (fds[i] >= 0) close(fds[i]);
            if (pout[i] >= 0) close(pout[i]);
        }
        return FAIL("cannot create a pipe: %s", strerror(e));
    }
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        if (dup2(pout[1], 1) < 0 || (err && dup2(perr[1], 2) < 0)) _exit(126);
        execvp(argv[0], argv);
        int e = errno;
        ssize_t w = write(fds[1], &e, sizeof e);
        (void)w;
        _exit(127);
    }
    int fork_errno = errno;
    close(fds[1]), close(pout[1]);
    if (err) close(perr[1]);
    if (pid < 0) {
        close(fds[0]), close(pout[0]);
        if (err) close(perr[0]);
        return FAIL("cannot start %s: fork: %s", argv[0], strerror(fork_errno));
    }
    size_t cap_out = 0, cap_err = 0, err_len = 0;
    int open_out = 1, open_err = err != NULL, timed_out = 0, rc = FSNN_OK;
    double deadline = clock_seconds() + timeout;
    while (open_out || open_err) {
        struct pollfd p[2] = {{open_out ? pout[0] : -1, POLLIN, 0},
                              {open_err ? perr[0] : -1, POLLIN, 0}};
        int wait_ms = -1;
        if (timeout > 0) {
            double left = deadline - clock_seconds();
            if (left <= 0) {
                timed_out = 1;
                break;
            }
            wait_ms = (int)(left * 1000) + 1;
        }
        int n = poll(p, 2, wait_ms);
        if (n < 0 && errno != EINTR) {
            rc = FAIL("poll: %s", strerror(errno));
            break;
        }
        if (n <= 0) continue;
        int r;
        if (open_out && p[0].revents && (r = cmd_drain(pout[0], out, out_len, &cap_out)) <= 0) {
            open_out = 0;
            if (r < 0) rc = FAIL("cannot read the output of %s: %s", argv[0], strerror(errno));
        }
        if (open_err && p[1].revents && (r = cmd_drain(perr[0], err, &err_len, &cap_err)) <= 0)
            open_err = 0;
    }
    if (timed_out || rc != 0) kill(pid, SIGKILL);
    close(pout[0]);
    if (err) close(perr[0]);
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    int exec_errno = 0;
    ssize_t got;
    do
        got = read(fds[0], &exec_errno, sizeof exec_errno);
    while (got < 0 && errno == EINTR);
    close(fds[0]);
    if (rc == 0 && got == (ssize_t)sizeof exec_errno)
        rc = FAIL("cannot run %s: %s%s%s%s", argv[0], strerror(exec_errno),
                  exec_errno == ENOENT ? " (is SLURM installed here and " : "",
                  exec_errno == ENOENT ? argv[0] : "", exec_errno == ENOENT ? " on PATH?)" : "");
    else if (rc == 0 && timed_out)
        rc = FAIL("%s did not finish within %.0f s", argv[0], timeout);
    if (rc == 0 && !*out && !(*out = calloc(1, 1))) rc = FAIL("out of memory");
    if (rc == 0 && err && !*err && !(*err = calloc(1, 1))) rc = FAIL("out of memory");
    if (rc != 0) {
        free(*out);
        *out = NULL;
        if (err) {
            free(*err);
            *err = NULL;
        }
        return rc;
    }
    *exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return FSNN_OK;
}

/* ---- what SLURM knows ---- */

typedef struct {
    int asked;             /* 1: squeue answered; queue holds what it listed */
    char why[512];         /* asked == 0: why SLURM was not asked */
    char history_bad[512]; /* "" or what is wrong with submissions.tsv */
    long long *jobs;       /* the job ids asked about, ascending */
    int n_jobs;
    sweepq_queue queue;
    sweepq_history history;
} cmd_slurm;

static void cmd_slurm_free(cmd_slurm *s) {
    free(s->jobs);
    sweepq_queue_free(&s->queue);
    sweepq_history_free(&s->history);
}

static int cmd_cmp_job(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* The jobs SLURM is asked about: those of runs marked running or requeued
 * (job.state) and those of recorded submissions. */
static int cmd_slurm_jobs(const runstate *st, int n, cmd_slurm *s) {
    CHECK(XCALLOC(&s->jobs, (size_t)n + (size_t)s->history.n + 1));
    for (int i = 0; i < n; i++) {
        long long job;
        int task;
        if ((st[i].kind == RUNSTATE_RUNNING || st[i].kind == RUNSTATE_REQUEUED) &&
            sweepq_job_id(st[i].job, &job, &task))
            s->jobs[s->n_jobs++] = job;
    }
    for (int k = 0; k < s->history.n; k++)
        s->jobs[s->n_jobs++] = s->history.subs[k].job;
    qsort(s->jobs, (size_t)s->n_jobs, sizeof *s->jobs, cmd_cmp_job);
    int m = 0;
    for (int i = 0; i < s->n_jobs; i++)
        if (m == 0 || s->jobs[i] != s->jobs[m - 1]) s->jobs[m++] = s->jobs[i];
    s->n_jobs = m;
    return FSNN_OK;
}

/* Asks squeue once about s->jobs. On failure s->why says why. */
static void cmd_squeue(cmd_slurm *s) {
    size_t len = 0;
    char *list = NULL, *out = NULL, *err = NULL;
    FILE *mem = open_memstream(&list, &len);
    if (!mem) {
        snprintf(s->why, sizeof s->why, "out of memory");
        return;
    }
    fputs("--jobs=", mem);
    for (int i = 0; i < s->n_jobs; i++)
        fprintf(mem, "%s%lld", i ? "," : "", s->jobs[i]);
    if (fclose(mem) != 0) {
        free(list);
        snprintf(s->why, sizeof s->why, "out of memory");
        return;
    }
    char *argv[] = {"squeue", "--noheader", "--array", "--format=%i|%T|%r", list, NULL};
    int code = 0;
    if (cmd_capture(argv, CMD_SQUEUE_TIMEOUT, &out, &len, &err, &code) != 0) {
        snprintf(s->why, sizeof s->why, "%s", status_message());
        status_clear();
    } else if (code != 0 && strstr(err, "Invalid job id specified")) {
        /* squeue asked about one job id fails when SLURM has forgotten it:
         * none of the jobs is in the queue. */
        s->asked = 1;
    } else if (code != 0) {
        char *nl = strchr(err, '\n');
        if (nl) *nl = '\0';
        for (char *c = err; *c; c++)
            if ((unsigned char)*c < 0x20 || (unsigned char)*c > 0x7e) *c = '?';
        snprintf(s->why, sizeof s->why, "squeue failed (exit code %d)%s%.300s", code,
                 *err ? ": " : "", err);
    } else if (sweepq_queue_parse(out, len, &s->queue) != 0) {
        snprintf(s->why, sizeof s->why, "%s", status_message());
        status_clear();
    } else {
        s->asked = 1;
    }
    free(list);
    free(out);
    free(err);
}

/* The state of every run: its files (st), refined with SLURM's queue when
 * it can be asked (v). st and v are the caller's (free), as is *s
 * (cmd_slurm_free). */
static int cmd_views(const char *sweep_dir, const sweep_table *t, int no_slurm, runstate **st_out,
                     sweepq_view **v_out, cmd_slurm *s) {
    memset(s, 0, sizeof *s);
    runstate *st = NULL;
    sweepq_view *v = NULL;
    CHECK(XCALLOC(&st, (size_t)t->n + 1));
    if (XCALLOC(&v, (size_t)t->n + 1)) {
        free(st);
        return FSNN_ERR;
    }
    for (int i = 0; i < t->n; i++)
        runstate_get(t->runs[i].dir, &st[i]);
    if (sweepq_history_read(sweep_dir, t->n, &s->history) != 0) {
        snprintf(s->history_bad, sizeof s->history_bad, "%s", status_message());
        status_clear();
    }
    if (no_slurm) {
        snprintf(s->why, sizeof s->why, "--no-slurm");
    } else if (cmd_slurm_jobs(st, t->n, s) != 0) {
        snprintf(s->why, sizeof s->why, "%s", status_message());
        status_clear();
    } else if (s->n_jobs == 0) {
        snprintf(s->why, sizeof s->why, "no run has a SLURM job (no job id in job.state, no %s)",
                 SWEEPQ_FILE);
    } else {
        cmd_squeue(s);
    }
    for (int i = 0; i < t->n; i++) {
        /* A job that ended between reading its files and asking squeue is
         * not lost: its runner wrote job.state by then. */
        if (s->asked && st[i].kind == RUNSTATE_RUNNING) runstate_get(t->runs[i].dir, &st[i]);
        sweepq_refine(&st[i], i, &s->history, s->asked ? &s->queue : NULL, &v[i]);
    }
    *st_out = st;
    *v_out = v;
    return FSNN_OK;
}

/* ---- which runs to start ---- */

typedef struct {
    int *ids; /* the runs to start, in id order */
    int n;
    int finished, running, queued;
} cmd_todo;

/* Every run that is not finished and not held by a job: pending, requeued,
 * failed, lost, or with an unreadable job.state. Without SLURM's queue, a
 * run marked running is taken to be running. */
static int cmd_select(const sweep_table *t, const runstate *st, const sweepq_view *v,
                      const cmd_slurm *s, cmd_todo *todo) {
    memset(todo, 0, sizeof *todo);
    CHECK(XCALLOC(&todo->ids, (size_t)t->n + 1));
    for (int i = 0; i < t->n; i++) {
        const char *name = sweep_run_name(&t->runs[i]);
        if (v[i].start) {
            if (v[i].kind == RUNSTATE_UNKNOWN)
                log_warn("run %d: %s; starting it again", i, st[i].why);
            if (v[i].kind == RUNSTATE_LOST)
                log_warn("run %d %s: job %s is not in the queue any more; starting it again", i,
                         name, st[i].job);
            todo->ids[todo->n++] = i;
        } else if (v[i].kind == RUNSTATE_FINISHED) {
            todo->finished++;
        } else if (v[i].kind == RUNSTATE_QUEUED) {
            /* A large sweep waiting in the queue: a few examples suffice. */
            if (todo->queued++ < CMD_QUEUED_SHOWN)
                log_warn("run %d %s: %s; left out", i, name, v[i].note);
        } else if (s->asked) {
            if (*v[i].note)
                log_warn("run %d %s: %s; left out", i, name, v[i].note);
            else
                log_warn("run %d %s is running in job %s; left out", i, name, st[i].job);
            todo->running++;
        } else {
            char when[32];
            cmd_format_time(st[i].when, when, sizeof when);
            log_warn("run %d %s is marked running (job %s since %s); left out. If that job is "
                     "gone, delete %s/%s to start it again",
                     i, name, st[i].job, when, t->runs[i].dir, RUNSTATE_FILE);
            todo->running++;
        }
    }
    if (todo->queued > CMD_QUEUED_SHOWN)
        log_warn("%d more runs wait in the queue; left out (fsnn sweep status lists them)",
                 todo->queued - CMD_QUEUED_SHOWN);
    return FSNN_OK;
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

/* "0-9", "1,3,5-7", then "%K" with a throttle. */
static int cmd_array_spec(const cmd_todo *todo, int throttle, char **spec) {
    char *ids = NULL;
    CHECK(sweepq_ids_format(todo->ids, todo->n, &ids));
    *spec = throttle > 0 ? cmd_format("%s%%%d", ids, throttle) : cmd_format("%s", ids);
    free(ids);
    if (!*spec) return FAIL("out of memory");
    return FSNN_OK;
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
        argv[n++] = cmd_format("--parsable");
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

/* Submits the runs of todo as one array job and records it in
 * submissions.tsv. */
static int cmd_submit(const sweep_plan *plan, const cmd_todo *todo, const char *exe) {
    char script[CMD_PATH_MAX];
    cmd_script(script, sizeof script);
    if (!fsutil_is_file(script))
        return FAIL("%s: no such batch script; set FSNN_SLURM_DIR to the folder holding "
                    "sweep.sbatch (default: the source tree's slurm/)",
                    script);
    char **argv = NULL, *out = NULL;
    size_t len = 0;
    CHECK(cmd_sbatch_argv(plan, todo, exe, script, &argv));
    printf("submitting %d run%s: ", todo->n, todo->n == 1 ? "" : "s");
    cmd_print_argv(stdout, argv);
    int code = 0;
    int rc = cmd_capture(argv, 0, &out, &len, NULL, &code);
    cmd_free_argv(argv);
    CHECK(rc);
    long long job = 0;
    if (code != 0) {
        fputs(out, stdout);
        rc = FAIL("sbatch failed (exit code %d); its message is above", code);
    } else if (sweepq_parse_sbatch(out, len, &job) != 0) {
        char why[300];
        snprintf(why, sizeof why, "%s", status_message());
        status_clear();
        rc = FAIL("%s; the runs may be queued (see squeue) but are not recorded in %s/%s", why,
                  plan->dir, SWEEPQ_FILE);
    } else {
        printf("Submitted batch job %lld\n", job);
        fflush(stdout);
        if (sweepq_history_append(plan->dir, job, (long long)time(NULL), todo->ids, todo->n)) {
            char why[600];
            snprintf(why, sizeof why, "%s", status_message());
            status_clear();
            rc = FAIL("job %lld is submitted, but not recorded: %s", job, why);
        }
    }
    free(out);
    return rc;
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
           plan->name, L.done, L.failed, L.requeued, left, todo->finished,
           todo->running + todo->queued);
    if (rc != 0) return CMD_FAILED;
    if (L.failed) return CMD_FAILED;
    if (L.requeued || left) return CMD_STOPPED;
    return CMD_OK;
}

/* ---- status ---- */

/* One line on whether SLURM's queue went into the states. */
static void cmd_print_slurm(FILE *out, const cmd_slurm *s) {
    if (!s->asked) {
        fprintf(out, "SLURM not asked: %s; the states come from the run directories' files alone\n",
                s->why);
        return;
    }
    int shown = s->n_jobs < 8 ? s->n_jobs : 8;
    fprintf(out, "SLURM asked: squeue lists %d entr%s of job%s ", s->queue.n,
            s->queue.n == 1 ? "y" : "ies", s->n_jobs == 1 ? "" : "s");
    for (int i = 0; i < shown; i++)
        fprintf(out, "%s%lld", i ? ", " : "", s->jobs[i]);
    if (shown < s->n_jobs) fprintf(out, " and %d more", s->n_jobs - shown);
    fputc('\n', out);
}

static int cmd_status(const char *dir, int no_slurm) {
    char tsv[CMD_PATH_MAX];
    sweep_table t;
    if (fsutil_join(tsv, sizeof tsv, dir, "runs.tsv") || sweep_tsv_read(tsv, &t)) {
        log_error("%s", status_message());
        return CMD_FAILED;
    }
    runstate *sts = NULL;
    sweepq_view *views = NULL;
    cmd_slurm slurm;
    if (cmd_views(dir, &t, no_slurm, &sts, &views, &slurm) != 0) {
        log_error("%s", status_message());
        sweep_table_free(&t);
        return CMD_FAILED;
    }
    if (*slurm.history_bad)
        log_warn("%s; the recorded submissions are left out", slurm.history_bad);
    int count[RUNSTATE_KINDS] = {0}, width = 3;
    for (int i = 0; i < t.n; i++) {
        int w = (int)strlen(sweep_run_name(&t.runs[i]));
        if (w > width) width = w;
    }
    printf("%s: %d run%s\n", dir, t.n, t.n == 1 ? "" : "s");
    printf("%-4s  %-8s  %-7s  %-8s  %-*s  %s\n", "id", "state", "epochs", "test_acc", width, "run",
           "detail");
    for (int i = 0; i < t.n; i++) {
        const sweep_run *r = &t.runs[i];
        const runstate *st = &sts[i];
        const sweepq_view *v = &views[i];
        count[v->kind]++;
        char epochs[32] = "-", acc[32] = "-", when[32] = "", detail[1024] = "";
        if (st->epochs_done >= 0 && st->epochs >= 0)
            snprintf(epochs, sizeof epochs, "%d/%d", st->epochs_done, st->epochs);
        if (isfinite(st->test_acc)) snprintf(acc, sizeof acc, "%.2f", st->test_acc);
        if (st->has_file) cmd_format_time(st->when, when, sizeof when);
        if (st->kind == RUNSTATE_UNKNOWN) {
            snprintf(detail, sizeof detail, "%s", st->why);
        } else if (st->kind == RUNSTATE_FAILED) {
            char err[300] = "";
            if (!runstate_last_error(r->dir, err, sizeof err))
                snprintf(err, sizeof err, "no error line in %s", RUNSTATE_LOG);
            if (st->exit_code >= 0)
                snprintf(detail, sizeof detail, "exit %d: %s", st->exit_code, err);
            else
                snprintf(detail, sizeof detail, "%s", err);
        } else if (st->kind == RUNSTATE_RUNNING) {
            snprintf(detail, sizeof detail, "job %s since %s", st->job, when);
        } else if (st->kind == RUNSTATE_REQUEUED) {
            snprintf(detail, sizeof detail, "job %s stopped at %s with a checkpoint (exit %d)",
                     st->job, when, st->exit_code);
        }
        if (v->replaces) {
            snprintf(detail, sizeof detail, "%s", v->note);
        } else if (*v->note) {
            size_t dl = strlen(detail);
            snprintf(detail + dl, sizeof detail - dl, "%s%s", dl ? "; " : "", v->note);
        }
        char row[1400];
        int len = snprintf(row, sizeof row, "%-4d  %-8s  %-7s  %-8s  %-*s  %s", i,
                           runstate_name(v->kind), epochs, acc, width, sweep_run_name(r), detail);
        while (len > 0 && (size_t)len < sizeof row && row[len - 1] == ' ')
            row[--len] = '\0';
        printf("%s\n", row);
    }
    printf("%d run%s: %d finished, %d running, %d requeued, %d failed, %d pending", t.n,
           t.n == 1 ? "" : "s", count[RUNSTATE_FINISHED], count[RUNSTATE_RUNNING],
           count[RUNSTATE_REQUEUED], count[RUNSTATE_FAILED], count[RUNSTATE_PENDING]);
    if (slurm.asked) printf(", %d queued, %d lost", count[RUNSTATE_QUEUED], count[RUNSTATE_LOST]);
    if (count[RUNSTATE_UNKNOWN]) printf(", %d unknown", count[RUNSTATE_UNKNOWN]);
    printf("\n");
    cmd_print_slurm(stdout, &slurm);
    cmd_slurm_free(&slurm);
    free(sts);
    free(views);
    sweep_table_free(&t);
    return CMD_OK;
}

/* ---- the command ---- */

static int cmd_usage(const char *why) {
    if (why) fprintf(stderr, "fsnn sweep: %s\n", why);
    fputs(cmd_sweep_usage, stderr);
    return CMD_USAGE;
}

static int cmd_sweep_file(const char *file, cmd_mode mode, int jobs, int no_slurm) {
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
    runstate *sts = NULL;
    sweepq_view *views = NULL;
    cmd_slurm slurm;
    /* Writing the directory only needs no queue. */
    if (cmd_views(plan.dir, &plan.table, no_slurm || mode == CMD_PREPARE, &sts, &views, &slurm)) {
        log_error("%s", status_message());
        sweep_plan_free(&plan);
        return CMD_FAILED;
    }
    if (*slurm.history_bad && mode == CMD_SUBMIT) {
        log_error("%s; fix or delete it before submitting again", slurm.history_bad);
        free(sts);
        free(views);
        cmd_slurm_free(&slurm);
        sweep_plan_free(&plan);
        return CMD_FAILED;
    }
    if (*slurm.history_bad)
        log_warn("%s; the recorded submissions are left out", slurm.history_bad);
    if (mode != CMD_PREPARE && !slurm.asked && slurm.n_jobs > 0)
        log_warn("SLURM not asked (%s): runs are judged by job.state alone (a run marked running "
                 "is left out, a requeued one started)",
                 slurm.why);
    int selected = cmd_select(&plan.table, sts, views, &slurm, &todo) == 0;
    free(sts);
    free(views);
    cmd_slurm_free(&slurm);
    if (!selected) {
        log_error("%s", status_message());
        sweep_plan_free(&plan);
        return CMD_FAILED;
    }
    int code = CMD_OK;
    if (mode == CMD_DRY_RUN) {
        cmd_print_table(&plan);
        char script[CMD_PATH_MAX], **argv = NULL;
        cmd_script(script, sizeof script);
        if (todo.n == 0) {
            printf("all runs are finished or running: nothing to submit\n");
        } else if (cmd_sbatch_argv(&plan, &todo, exe, script, &argv) == 0) {
            printf("--submit would run (%d of %d runs; %d finished, %d running, %d queued):\n",
                   todo.n, plan.table.n, todo.finished, todo.running, todo.queued);
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
        printf("nothing to start: %d finished, %d running", todo.finished, todo.running);
        if (todo.queued) printf(", %d queued", todo.queued);
        printf("\n");
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
        const char *dir = NULL;
        int no_slurm = 0;
        for (int i = 1; i < argc; i++) {
            if (!strcmp(argv[i], "--no-slurm")) {
                no_slurm = 1;
            } else if (argv[i][0] == '-' || dir) {
                fprintf(stderr, "fsnn sweep: unexpected argument '%.80s'\n", argv[i]);
                return cmd_usage("status takes one SWEEP_DIR and --no-slurm");
            } else {
                dir = argv[i];
            }
        }
        if (!dir) return cmd_usage("status takes one SWEEP_DIR");
        return cmd_status(dir, no_slurm);
    }
    const char *file = NULL;
    cmd_mode mode = CMD_PREPARE;
    int modes = 0, jobs = 1, jobs_given = 0, no_slurm = 0;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--dry-run")) {
            mode = CMD_DRY_RUN, modes++;
        } else if (!strcmp(a, "--submit")) {
            mode = CMD_SUBMIT, modes++;
        } else if (!strcmp(a, "--local")) {
            mode = CMD_LOCAL, modes++;
        } else if (!strcmp(a, "--no-slurm")) {
            no_slurm = 1;
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
    return cmd_sweep_file(file, mode, jobs, no_slurm);
}
