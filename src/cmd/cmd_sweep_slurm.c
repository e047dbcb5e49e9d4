/* cmd_sweep_slurm: `fsnn sweep` and SLURM. Asks squeue which jobs of a
 * sweep it still holds (so that `status` and the choice of runs to start
 * see queued and lost runs), and submits runs as one array job through
 * sbatch, recording it in submissions.tsv (jobs/sweepq). Both programs run
 * as child processes (jobs/child) whose output is read through pipes, with
 * a time limit on squeue. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "child.h"          // defines: child_start, child_wait, child_exit_code
#include "clock.h"          // defines: clock_seconds
#include "cmd_sweep_impl.h" // defines: cmd_sweep_slurm, cmd_sweep_todo, cmd_sweep_script
#include "fsutil.h"         // defines: fsutil_is_file
#include "runstate.h"       // defines: runstate_get, RUNSTATE_RUNNING
#include "status.h"         // defines: CHECK, FAIL, XCALLOC
#include "sweep.h"          // defines: sweep_plan, sweep_table
#include "sweepq.h"         // defines: sweepq_refine, sweepq_queue_parse, sweepq_history_append

#define CMD_CAPTURE_MAX ((size_t)64 << 20)
#define CMD_SQUEUE_TIMEOUT 30.0 /* seconds */

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

/* Reads the child's stdout (fd_out) into *out and its stderr (fd_err; -1:
 * not read) into *err until both end, or until `timeout` seconds (> 0)
 * have passed: then *timed_out is 1. `name` is the program's, for
 * messages. */
static int cmd_collect(const char *name, int fd_out, int fd_err, double timeout, char **out,
                       size_t *out_len, char **err, int *timed_out) {
    size_t cap_out = 0, cap_err = 0, err_len = 0;
    int open_out = 1, open_err = fd_err >= 0, rc = FSNN_OK;
    double deadline = clock_seconds() + timeout;
    *timed_out = 0;
    while (open_out || open_err) {
        struct pollfd p[2] = {{open_out ? fd_out : -1, POLLIN, 0},
                              {open_err ? fd_err : -1, POLLIN, 0}};
        int wait_ms = -1;
        if (timeout > 0) {
            double left = deadline - clock_seconds();
            if (left <= 0) {
                *timed_out = 1;
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
        if (open_out && p[0].revents && (r = cmd_drain(fd_out, out, out_len, &cap_out)) <= 0) {
            open_out = 0;
            if (r < 0) rc = FAIL("cannot read the output of %s: %s", name, strerror(errno));
        }
        if (open_err && p[1].revents && (r = cmd_drain(fd_err, err, &err_len, &cap_err)) <= 0)
            open_err = 0;
    }
    return rc;
}

/* Runs argv[0] from PATH (jobs/child, no shell) and waits. Its stdout goes
 * to *out (NUL-terminated; the caller frees it), its stderr to *err, or to
 * ours when err is NULL. With timeout > 0 the program is killed after that
 * many seconds, which fails. A program that cannot be executed ("not
 * found") fails, told apart from the program's own failure (*exit_code). */
static int cmd_capture(char *const *argv, double timeout, char **out, size_t *out_len, char **err,
                       int *exit_code) {
    int pout[2] = {-1, -1}, perr[2] = {-1, -1};
    *out = NULL;
    *out_len = 0;
    if (err) *err = NULL;
    if (cmd_pipe(pout) || (err && cmd_pipe(perr))) {
        int e = errno;
        for (int i = 0; i < 2; i++)
            if (pout[i] >= 0) close(pout[i]);
        return FAIL("cannot create a pipe: %s", strerror(e));
    }
    child_opts o = {.in = -1, .out = pout[1], .err = err ? perr[1] : -1};
    child c;
    int rc = child_start(argv, &o, &c);
    close(pout[1]);
    if (err) close(perr[1]);
    if (rc != 0) {
        close(pout[0]);
        if (err) close(perr[0]);
        return rc;
    }
    int timed_out = 0, status = 0;
    rc = cmd_collect(argv[0], pout[0], err ? perr[0] : -1, timeout, out, out_len, err, &timed_out);
    if (timed_out || rc != 0) kill(c.pid, SIGKILL);
    close(pout[0]);
    if (err) close(perr[0]);
    if (child_wait(&c, &status) != 0 && rc == 0) rc = FSNN_ERR;
    int e = c.exec_errno;
    if (rc == 0 && e)
        rc = FAIL("cannot run %s: %s%s%s%s", argv[0], strerror(e),
                  e == ENOENT ? " (is SLURM installed here and " : "", e == ENOENT ? argv[0] : "",
                  e == ENOENT ? " on PATH?)" : "");
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
    *exit_code = child_exit_code(status);
    return FSNN_OK;
}

/* ---- what SLURM knows ---- */

void cmd_sweep_slurm_free(cmd_sweep_slurm *s) {
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
static int cmd_slurm_jobs(const runstate *st, int n, cmd_sweep_slurm *s) {
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
static void cmd_squeue(cmd_sweep_slurm *s) {
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

int cmd_sweep_views(const char *sweep_dir, const sweep_table *t, int no_slurm, runstate **st_out,
                    sweepq_view **v_out, cmd_sweep_slurm *s) {
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

/* ---- --submit ---- */

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
static int cmd_array_spec(const cmd_sweep_todo *todo, int throttle, char **spec) {
    char *ids = NULL;
    CHECK(sweepq_ids_format(todo->ids, todo->n, &ids));
    *spec = throttle > 0 ? cmd_format("%s%%%d", ids, throttle) : cmd_format("%s", ids);
    free(ids);
    if (!*spec) return FAIL("out of memory");
    return FSNN_OK;
}

int cmd_sweep_sbatch_argv(const sweep_plan *plan, const cmd_sweep_todo *todo, const char *exe,
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

int cmd_sweep_submit(const sweep_plan *plan, const cmd_sweep_todo *todo, const char *exe) {
    char script[CMD_PATH_MAX];
    cmd_sweep_script(script, sizeof script);
    if (!fsutil_is_file(script))
        return FAIL("%s: no such batch script; set FSNN_SLURM_DIR to the folder holding "
                    "sweep.sbatch (default: the source tree's slurm/)",
                    script);
    char **argv = NULL, *out = NULL;
    size_t len = 0;
    CHECK(cmd_sweep_sbatch_argv(plan, todo, exe, script, &argv));
    printf("submitting %d run%s: ", todo->n, todo->n == 1 ? "" : "s");
    cmd_sweep_print_argv(stdout, argv);
    int code = 0;
    int rc = cmd_capture(argv, 0, &out, &len, NULL, &code);
    cmd_sweep_free_argv(argv);
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
