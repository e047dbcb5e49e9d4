/* cmd_sweep: `fsnn sweep`. Expands a sweep file into runs (jobs/sweep),
 * writes the sweep directory and starts the runs that are not finished: as
 * one SLURM array job (--submit, cmd_sweep_slurm.c), here K at a time
 * (--local, cmd_sweep_local.c), or not at all (--dry-run writes nothing; no
 * option writes the directory only). `fsnn sweep status` reports every run
 * from its files, refined with what squeue says about the jobs of the sweep
 * (jobs/sweepq).
 *
 * No shell is involved: sbatch, squeue and `fsnn train` are started with
 * fork and exec (jobs/child), each argument one argv element, exactly as
 * runs.tsv lists it.
 *
 * Not an MPI program: main() dispatches here before MPI_Init. An Open MPI
 * singleton's MPI_Init would put PMIX_ and OMPI_ variables naming this
 * process's PMIx server into every child's environment. */
#include "cmd.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cmd_sweep_impl.h" // defines: cmd_sweep_todo, cmd_sweep_views, cmd_sweep_local
#include "fsutil.h"         // defines: fsutil_mkdirs, fsutil_write_atomic, fsutil_is_file
#include "log.h"            // defines: log_error, log_warn
#include "runstate.h"       // defines: runstate_name, runstate_last_error, RUNSTATE_FILE
#include "status.h"         // defines: CHECK, FAIL, XCALLOC
#include "sweep.h"          // defines: sweep_load, sweep_tsv_read, sweep_tsv_format
#include "sweepq.h"         // defines: sweepq_view

#ifndef FSNN_SOURCE_DIR
#error "FSNN_SOURCE_DIR must name the source tree (CMakeLists.txt defines it)"
#endif

#define CMD_JOBS_MAX 256
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

void cmd_sweep_print_argv(FILE *out, char *const *argv) {
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

void cmd_sweep_script(char *buf, size_t size) {
    const char *dir = getenv("FSNN_SLURM_DIR");
    if (dir && *dir)
        snprintf(buf, size, "%s/sweep.sbatch", dir);
    else
        snprintf(buf, size, "%s/slurm/sweep.sbatch", FSNN_SOURCE_DIR);
}

void cmd_sweep_format_time(long long when, char *buf, size_t size) {
    time_t t = (time_t)when;
    struct tm tm;
    if (!localtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm))
        snprintf(buf, size, "%lld", when);
}

void cmd_sweep_free_argv(char **argv) {
    if (!argv) return;
    for (int i = 0; argv[i]; i++)
        free(argv[i]);
    free(argv);
}

/* ---- which runs to start ---- */

/* Every run that is not finished and not held by a job: pending, requeued,
 * failed, lost, or with an unreadable job.state. Without SLURM's queue, a
 * run marked running is taken to be running. */
static int cmd_select(const sweep_table *t, const runstate *st, const sweepq_view *v,
                      const cmd_sweep_slurm *s, cmd_sweep_todo *todo) {
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
            cmd_sweep_format_time(st[i].when, when, sizeof when);
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

/* ---- status ---- */

/* One line on whether SLURM's queue went into the states. */
static void cmd_print_slurm(FILE *out, const cmd_sweep_slurm *s) {
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

/* The detail column of run r: what its files say about its state, and
 * what SLURM's queue adds to that or puts in its place. */
static void cmd_status_detail(const sweep_run *r, const runstate *st, const sweepq_view *v,
                              char *detail, size_t size) {
    char when[32] = "";
    if (st->has_file) cmd_sweep_format_time(st->when, when, sizeof when);
    detail[0] = '\0';
    if (st->kind == RUNSTATE_UNKNOWN) {
        snprintf(detail, size, "%s", st->why);
    } else if (st->kind == RUNSTATE_FAILED) {
        char err[300] = "";
        if (!runstate_last_error(r->dir, err, sizeof err))
            snprintf(err, sizeof err, "no error line in %s", RUNSTATE_LOG);
        if (st->exit_code >= 0)
            snprintf(detail, size, "exit %d: %s", st->exit_code, err);
        else
            snprintf(detail, size, "%s", err);
    } else if (st->kind == RUNSTATE_RUNNING) {
        snprintf(detail, size, "job %s since %s", st->job, when);
    } else if (st->kind == RUNSTATE_REQUEUED) {
        snprintf(detail, size, "job %s stopped at %s with a checkpoint (exit %d)", st->job, when,
                 st->exit_code);
    }
    if (v->replaces) {
        snprintf(detail, size, "%s", v->note);
    } else if (*v->note) {
        size_t dl = strlen(detail);
        snprintf(detail + dl, size - dl, "%s%s", dl ? "; " : "", v->note);
    }
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
    cmd_sweep_slurm slurm;
    if (cmd_sweep_views(dir, &t, no_slurm, &sts, &views, &slurm) != 0) {
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
        char epochs[32] = "-", acc[32] = "-", detail[1024];
        if (st->epochs_done >= 0 && st->epochs >= 0)
            snprintf(epochs, sizeof epochs, "%d/%d", st->epochs_done, st->epochs);
        if (isfinite(st->test_acc)) snprintf(acc, sizeof acc, "%.2f", st->test_acc);
        cmd_status_detail(r, st, v, detail, sizeof detail);
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
    cmd_sweep_slurm_free(&slurm);
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

/* The runs of plan to start (todo->ids the caller's, free), judged from
 * their files and, unless no_slurm or only the directory is written, from
 * SLURM's queue. Logs what is wrong; CMD_OK or CMD_FAILED. */
static int cmd_pick(const sweep_plan *plan, cmd_mode mode, int no_slurm, cmd_sweep_todo *todo) {
    runstate *sts = NULL;
    sweepq_view *views = NULL;
    cmd_sweep_slurm slurm;
    /* Writing the directory only needs no queue. */
    if (cmd_sweep_views(plan->dir, &plan->table, no_slurm || mode == CMD_PREPARE, &sts, &views,
                        &slurm)) {
        log_error("%s", status_message());
        return CMD_FAILED;
    }
    int code = CMD_OK;
    if (*slurm.history_bad && mode == CMD_SUBMIT) {
        log_error("%s; fix or delete it before submitting again", slurm.history_bad);
        code = CMD_FAILED;
    } else {
        if (*slurm.history_bad)
            log_warn("%s; the recorded submissions are left out", slurm.history_bad);
        if (mode != CMD_PREPARE && !slurm.asked && slurm.n_jobs > 0)
            log_warn("SLURM not asked (%s): runs are judged by job.state alone (a run marked "
                     "running is left out, a requeued one started)",
                     slurm.why);
        if (cmd_select(&plan->table, sts, views, &slurm, todo) != 0) {
            log_error("%s", status_message());
            code = CMD_FAILED;
        }
    }
    free(sts);
    free(views);
    cmd_sweep_slurm_free(&slurm);
    return code;
}

/* --dry-run: the runs, and the sbatch command --submit would run. */
static int cmd_dry_run(const sweep_plan *plan, const cmd_sweep_todo *todo, const char *exe) {
    cmd_print_table(plan);
    char script[CMD_PATH_MAX], **argv = NULL;
    cmd_sweep_script(script, sizeof script);
    int code = CMD_OK;
    if (todo->n == 0) {
        printf("all runs are finished or running: nothing to submit\n");
    } else if (cmd_sweep_sbatch_argv(plan, todo, exe, script, &argv) == 0) {
        printf("--submit would run (%d of %d runs; %d finished, %d running, %d queued):\n", todo->n,
               plan->table.n, todo->finished, todo->running, todo->queued);
        cmd_sweep_print_argv(stdout, argv);
        fflush(stdout);
        if (!fsutil_is_file(script))
            log_warn("%s does not exist (set FSNN_SLURM_DIR to the folder holding it)", script);
    } else {
        log_error("%s", status_message());
        code = CMD_FAILED;
    }
    cmd_sweep_free_argv(argv);
    printf("nothing written (--dry-run)\n");
    return code;
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
    cmd_sweep_todo todo;
    if (cmd_pick(&plan, mode, no_slurm, &todo) != CMD_OK) {
        sweep_plan_free(&plan);
        return CMD_FAILED;
    }
    int code = CMD_OK;
    if (mode == CMD_DRY_RUN) {
        code = cmd_dry_run(&plan, &todo, exe);
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
        if (cmd_sweep_submit(&plan, &todo, exe) != 0) {
            log_error("%s", status_message());
            code = CMD_FAILED;
        }
    } else {
        code = cmd_sweep_local(&plan, &todo, exe, jobs);
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
