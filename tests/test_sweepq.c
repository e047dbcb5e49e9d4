/* sweepq: run id lists, submissions.tsv (strict reader, append round
 * trip), sbatch --parsable's output, squeue's output (array ids 123_4,
 * 123_[5-7%2], 123_[1,3,5-7], malformed lines ignored and counted) and the
 * refinement of a run's state by the queue (lost, queued, queued again,
 * running, left the queue). Files are written to a fresh folder under /tmp. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "runstate.h"
#include "status.h"
#include "sweepq.h"

static char tmp_dir[] = "/tmp/fsnn_test_sweepq_XXXXXX";

static void test_ids(void) {
    static const struct {
        int ids[8], n;
        const char *text;
    } good[] = {
        {{0}, 1, "0"},
        {{0, 1, 2, 3}, 4, "0-3"},
        {{1, 3, 5, 6, 7}, 5, "1,3,5-7"},
        {{0, 2, 4}, 3, "0,2,4"},
        {{7, 8, 10, 11, 12, 20}, 6, "7-8,10-12,20"},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char *text = NULL;
        EXPECT_OK(sweepq_ids_format(good[i].ids, good[i].n, &text));
        EXPECT(text && !strcmp(text, good[i].text), "format %zu: got '%s' want '%s'", i,
               text ? text : "(null)", good[i].text);
        int *ids = NULL, n = -1;
        EXPECT_OK(sweepq_ids_parse("t", good[i].text, 21, &ids, &n));
        EXPECT(n == good[i].n && ids && !memcmp(ids, good[i].ids, (size_t)n * sizeof *ids),
               "parse '%s': %d ids", good[i].text, n);
        free(ids);
        free(text);
    }
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"", "no run ids"},
        {"3-3", "does not ascend"},
        {"5-2", "does not ascend"},
        {"3,2", "is not above"},
        {"1,1", "is not above"},
        {"0-3,", "not a list of run ids"},
        {",1", "not a list of run ids"},
        {"1,,2", "not a list of run ids"},
        {"a", "not a list of run ids"},
        {"05", "not a list of run ids"},
        {"1-", "not a list of run ids"},
        {"1 ", "not a list of run ids"},
        {"-1", "not a list of run ids"},
        {"1234567890", "not a list of run ids"},
        {"0-10", "run id 10, but the sweep has 10 runs"},
        {"10", "run id 10, but the sweep has 10 runs"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int *ids = NULL, n = 0;
        EXPECT_FAILS(sweepq_ids_parse("ids.txt", bad[i].text, 10, &ids, &n), "ids.txt",
                     bad[i].want);
    }
}

static void test_history(void) {
    sweepq_history h;
    const char *ok = "job\ttime\truns\n4242\t1764403200\t0-3,5\n4250\t1764403300\t1\n";
    EXPECT_OK(sweepq_history_parse("s.tsv", ok, strlen(ok), 6, &h));
    EXPECT(h.n == 2 && h.subs[0].job == 4242 && h.subs[0].when == 1764403200 &&
               h.subs[0].n_ids == 5 && h.subs[0].ids[4] == 5 && h.subs[1].job == 4250 &&
               h.subs[1].n_ids == 1 && h.subs[1].ids[0] == 1,
           "history: %d submissions", h.n);
    sweepq_history_free(&h);
    const char *header = "job\ttime\truns\n";
    EXPECT_OK(sweepq_history_parse("s.tsv", header, strlen(header), 6, &h));
    EXPECT(h.n == 0, "header only: %d submissions", h.n);
    sweepq_history_free(&h);
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"", "s.tsv:1: not the header"},
        {"id\ttime\truns\n", "s.tsv:1: not the header"},
        {"job\ttime\truns\n1\t2\t0", "does not end with LF"},
        {"job\ttime\truns\r\n", "s.tsv:1: not the header"},
        {"job\ttime\truns\n1\t2\t0\r\n", "s.tsv:2: byte 0x0d"},
        {"job\ttime\truns\n1\t2\t0\n\x80\n", "s.tsv:3: byte 0x80"},
        {"job\ttime\truns\n1\t2\n", "s.tsv:2: not 3 fields"},
        {"job\ttime\truns\n1\t2\t0\t4\n", "s.tsv:2: not 3 fields"},
        {"job\ttime\truns\n\n", "s.tsv:2: not 3 fields"},
        {"job\ttime\truns\nx\t2\t0\n", "s.tsv:2: job id 'x'"},
        {"job\ttime\truns\n0\t2\t0\n", "s.tsv:2: job id '0'"},
        {"job\ttime\truns\n1\t-2\t0\n", "s.tsv:2: time '-2'"},
        {"job\ttime\truns\n1\t2\t0-9\n", "s.tsv:2: run id 9, but the sweep has 6 runs"},
        {"job\ttime\truns\n1\t2\t0\n3\t4\t2,1\n", "s.tsv:3: run id 1 is not above 2"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        EXPECT_FAILS(sweepq_history_parse("s.tsv", bad[i].text, strlen(bad[i].text), 6, &h),
                     bad[i].want);

    /* Appends: the header once, then one line per submission. */
    EXPECT_OK(sweepq_history_read(tmp_dir, 6, &h));
    EXPECT(h.n == 0 && h.subs == NULL, "no file: %d submissions", h.n);
    int a[] = {0, 1, 2, 4}, b[] = {3};
    EXPECT_OK(sweepq_history_append(tmp_dir, 77, 1000, a, 4));
    EXPECT_OK(sweepq_history_append(tmp_dir, 78, 1001, b, 1));
    char path[300], text[256] = "";
    snprintf(path, sizeof path, "%s/%s", tmp_dir, SWEEPQ_FILE);
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(text, 1, sizeof text - 1, f) : 0;
    if (f) fclose(f);
    text[got] = '\0';
    EXPECT(!strcmp(text, "job\ttime\truns\n77\t1000\t0-2,4\n78\t1001\t3\n"), "file: '%s'", text);
    EXPECT_OK(sweepq_history_read(tmp_dir, 6, &h));
    EXPECT(h.n == 2 && h.subs[0].job == 77 && h.subs[0].n_ids == 4 && h.subs[1].ids[0] == 3,
           "read back: %d submissions", h.n);
    sweepq_history_free(&h);
    EXPECT_FAILS(sweepq_history_read(tmp_dir, 3, &h), SWEEPQ_FILE ":2: run id 4");
    unlink(path);
}

static void test_sbatch(void) {
    long long job = 0;
    EXPECT_OK(sweepq_parse_sbatch("123\n", 4, &job));
    EXPECT(job == 123, "job %lld", job);
    EXPECT_OK(sweepq_parse_sbatch("4567;cluster-a\n", 15, &job));
    EXPECT(job == 4567, "job %lld", job);
    static const char *const bad[] = {"",       "123",   "\n",           "abc\n",
                                      "0\n",    "12 \n", "123;\n",       "123;a b\n",
                                      "1\n2\n", "-5\n",  "1234567890\n", "Submitted batch job 5\n",
                                      "12\0\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t len = i == sizeof bad / sizeof bad[0] - 1 ? 4 : strlen(bad[i]);
        EXPECT_FAILS(sweepq_parse_sbatch(bad[i], len, &job), "sbatch --parsable printed");
    }
}

static const sweepq_entry *entry(const sweepq_queue *q, long long job, int lo, int hi) {
    for (int i = 0; i < q->n; i++)
        if (q->e[i].job == job && q->e[i].lo == lo && q->e[i].hi == hi) return &q->e[i];
    return NULL;
}

static void test_queue(void) {
    const char text[] = "123_4|RUNNING|None\n"
                        "123_[5-7%2]|PENDING|JobArrayTaskLimit\n"
                        "124_[1,3,9-10]|PENDING|Priority\n"
                        "\n"
                        "125|PENDING|ReqNodeNotAvail, UnavailableNodes:node[1-2]|x\n"
                        "126_0|CANCELLED|None\n"
                        "127_2|NEW_STATE|(null)\n"
                        "128_1|REQUEUE_HOLD|JobHeldAdmin\n"
                        /* malformed: each ignored with a warning */
                        "garbage\n"
                        "129+0|RUNNING|None\n"
                        "130.batch|RUNNING|None\n"
                        "131_|PENDING|x\n"
                        "132_[|PENDING|x\n"
                        "133_[]|PENDING|x\n"
                        "134_[5-3]|PENDING|x\n"
                        "135_[1,]|PENDING|x\n"
                        "136_4x|PENDING|x\n"
                        "|RUNNING|x\n"
                        "137|running|x\n"
                        "138_4|PENDING\n"
                        "139_1||x\n"
                        "140_1|PEND\x01ING|x\n"
                        "0|PENDING|x\n"
                        "141_[1-2%]|PENDING|x\n"
                        "142_2|COMPLETING|None"; /* no final LF */
    sweepq_queue q;
    EXPECT_OK(sweepq_queue_parse(text, sizeof text - 1, &q));
    EXPECT(q.n == 10, "%d entries, want 10", q.n);
    EXPECT(q.ignored == 16, "%d lines ignored, want 16", q.ignored);
    const sweepq_entry *e = entry(&q, 123, 4, 4);
    EXPECT(e && e->cls == SWEEPQ_ACTIVE && !strcmp(e->state, "RUNNING") && !*e->reason, "123_4: %s",
           e ? e->state : "missing");
    e = entry(&q, 123, 5, 7);
    EXPECT(e && e->cls == SWEEPQ_WAITING && !strcmp(e->reason, "JobArrayTaskLimit"),
           "123_[5-7%%2]: %s", e ? e->reason : "missing");
    EXPECT(entry(&q, 124, 1, 1) && entry(&q, 124, 3, 3) && entry(&q, 124, 9, 10),
           "124_[1,3,9-10] not split into 1, 3, 9-10");
    e = entry(&q, 125, -1, -1);
    EXPECT(e && e->cls == SWEEPQ_WAITING &&
               !strcmp(e->reason, "ReqNodeNotAvail, UnavailableNodes:node[1-2]|x"),
           "125: reason '%s'", e ? e->reason : "missing");
    e = entry(&q, 126, 0, 0);
    EXPECT(e && e->cls == SWEEPQ_ENDED, "126_0 CANCELLED is not ended");
    e = entry(&q, 127, 2, 2);
    EXPECT(e && e->cls == SWEEPQ_ACTIVE && !*e->reason, "127_2: an unknown state is active");
    e = entry(&q, 128, 1, 1);
    EXPECT(e && e->cls == SWEEPQ_WAITING, "128_1 REQUEUE_HOLD is waiting");
    e = entry(&q, 142, 2, 2);
    EXPECT(e && e->cls == SWEEPQ_ACTIVE, "142_2 (last line without LF)");
    sweepq_queue_free(&q);

    EXPECT_OK(sweepq_queue_parse("", 0, &q));
    EXPECT(q.n == 0 && q.ignored == 0, "empty output: %d entries", q.n);
    sweepq_queue_free(&q);

    long long job;
    int task;
    EXPECT(sweepq_job_id("123_4", &job, &task) && job == 123 && task == 4, "123_4");
    EXPECT(sweepq_job_id("99", &job, &task) && job == 99 && task == -1, "99");
    static const char *const not_ids[] = {"local", "", "12_", "_3", "123_4x", "0", "1_2_3", "a1"};
    for (size_t i = 0; i < sizeof not_ids / sizeof not_ids[0]; i++)
        EXPECT(!sweepq_job_id(not_ids[i], &job, &task), "'%s' taken as a job id", not_ids[i]);
}

static runstate state(runstate_kind kind, const char *job) {
    runstate st;
    memset(&st, 0, sizeof st);
    st.kind = kind;
    st.has_file = kind != RUNSTATE_PENDING;
    st.exit_code = -1;
    snprintf(st.job, sizeof st.job, "%s", job);
    return st;
}

static void test_refine(void) {
    const char out[] = "500_0|PENDING|Priority\n"
                       "500_1|RUNNING|None\n"
                       "600_[2-3]|PENDING|Resources\n"
                       "700_4|PENDING|BeginTime\n"
                       "800_5|CANCELLED|None\n";
    sweepq_queue q;
    EXPECT_OK(sweepq_queue_parse(out, sizeof out - 1, &q));
    /* Submission 500 covered 0-5, submission 600 covered 2-3. */
    const char hist[] = "job\ttime\truns\n500\t1\t0-5\n600\t2\t2-3\n";
    sweepq_history h;
    EXPECT_OK(sweepq_history_parse("h", hist, sizeof hist - 1, 8, &h));
    sweepq_view v;
    runstate st;

    /* Without SLURM: the files' state; running is not started. */
    st = state(RUNSTATE_RUNNING, "500_3");
    sweepq_refine(&st, 3, &h, NULL, &v);
    EXPECT(v.kind == RUNSTATE_RUNNING && !v.start && !*v.note, "no queue: running");
    st = state(RUNSTATE_REQUEUED, "500_3");
    sweepq_refine(&st, 3, NULL, NULL, &v);
    EXPECT(v.kind == RUNSTATE_REQUEUED && v.start, "no queue: requeued is started");

    /* Pending, its task waits in the queue. */
    st = state(RUNSTATE_PENDING, "");
    sweepq_refine(&st, 0, &h, &q, &v);
    EXPECT(v.kind == RUNSTATE_QUEUED && !v.start && v.replaces &&
               !strcmp(v.note, "job 500_0 waits in the queue (Priority)"),
           "pending, queued: %s '%s'", runstate_name(v.kind), v.note);
    /* The newest submission holding the run names it. */
    sweepq_refine(&st, 2, &h, &q, &v);
    EXPECT(v.kind == RUNSTATE_QUEUED && !strcmp(v.note, "job 600_2 waits in the queue (Resources)"),
           "queued in the later submission: '%s'", v.note);
    /* Pending, its job runs (job.state not written yet). */
    sweepq_refine(&st, 1, &h, &q, &v);
    EXPECT(v.kind == RUNSTATE_RUNNING && !v.start && strstr(v.note, "job 500_1 is RUNNING"),
           "pending, running: %s '%s'", runstate_name(v.kind), v.note);
    /* Pending, submitted, no longer listed (also when listed as ended). */
    sweepq_refine(&st, 5, &h, &q, &v);
    EXPECT(v.kind == RUNSTATE_PENDING && v.start &&
               !strcmp(v.note, "job 500_5 left the queue without starting it (see logs/500_5.out)"),
           "pending, left the queue: %s '%s'", runstate_name(v.kind), v.note);
    /* Pending, never submitted. */
    sweepq_refine(&st, 6, &h, &q, &v);
    EXPECT(v.kind == RUNSTATE_PENDING && v.start && !*v.note, "never submitted: '%s'", v.note);

    /* Running, its job runs: stays running, detail kept. */
    st = state(RUNSTATE_RUNNING, "500_1");
    sweepq_refine(&st, 1, &h, &q, &v);
    EXPECT(v.kind == RUNSTATE_RUNNING && !v.start && !v.replaces && !*v.note, "running, listed");
    /* Running, its job gone: lost, started again. */
    st = state(RUNSTATE_RUNNING, "800_5");
    sweepq_refine(&st, 5, &h, &q, &v);
    EXPECT(v.kind == RUNSTATE_LOST && v.start && v.replaces &&
               !strcmp(v.note, "job 800_5 is not in the queue any more; resubmit the sweep to "
                               "resume it from its checkpoint"),
           "running, gone: %s '%s'", runstate_name(v.kind), v.note);
    /* Running, its job pending again (requeued by SLURM). */
    st = state(RUNSTATE_RUNNING, "700_4");
    sweepq_refine(&st, 4, &h, &q, &v);
    EXPECT(v.kind == RUNSTATE_QUEUED && !v.start &&
               !strcmp(v.note,
                       "job 700_4 is queued again (BeginTime); it resumes from its checkpoint"),
           "running, requeued: %s '%s'", runstate_name(v.kind), v.note);
    /* Running on this machine (--local): SLURM cannot tell. */
    st = state(RUNSTATE_RUNNING, "local");
    sweepq_refine(&st, 7, &h, &q, &v);
    EXPECT(v.kind == RUNSTATE_RUNNING && !v.start, "local running: %s", runstate_name(v.kind));
    /* Running in a plain job (train.sbatch) that is gone. */
    st = state(RUNSTATE_RUNNING, "901");
    sweepq_refine(&st, 7, &h, &q, &v);
    EXPECT(v.kind == RUNSTATE_LOST && strstr(v.note, "job 901 is not"), "plain job: '%s'", v.note);

    /* Requeued: queued again, or gone (resubmit), or resubmitted. */
    st = state(RUNSTATE_REQUEUED, "700_4");
    sweepq_refine(&st, 4, &h, &q, &v);
    EXPECT(v.kind == RUNSTATE_QUEUED && !v.start && strstr(v.note, "is queued again (BeginTime)"),
           "requeued, queued again: %s '%s'", runstate_name(v.kind), v.note);
    st = state(RUNSTATE_REQUEUED, "800_5");
    sweepq_refine(&st, 5, &h, &q, &v);
    EXPECT(v.kind == RUNSTATE_REQUEUED && v.start && !v.replaces &&
               !strcmp(v.note, "not in the queue: resubmit the sweep to resume it"),
           "requeued, gone: %s '%s'", runstate_name(v.kind), v.note);
    st = state(RUNSTATE_REQUEUED, "450_2");
    sweepq_refine(&st, 2, &h, &q, &v);
    EXPECT(v.kind == RUNSTATE_QUEUED && !v.start && strstr(v.note, "job 600_2 waits"),
           "requeued, resubmitted: %s '%s'", runstate_name(v.kind), v.note);

    /* Failed and resubmitted: queued; failed alone: started. */
    st = state(RUNSTATE_FAILED, "450_0");
    sweepq_refine(&st, 0, &h, &q, &v);
    EXPECT(v.kind == RUNSTATE_QUEUED && !v.start, "failed, resubmitted: %s", runstate_name(v.kind));
    sweepq_refine(&st, 6, &h, &q, &v);
    EXPECT(v.kind == RUNSTATE_FAILED && v.start && !*v.note, "failed: %s", runstate_name(v.kind));

    /* Finished stays finished, whatever the queue says. */
    st = state(RUNSTATE_FINISHED, "500_0");
    sweepq_refine(&st, 0, &h, &q, &v);
    EXPECT(v.kind == RUNSTATE_FINISHED && !v.start, "finished: %s", runstate_name(v.kind));

    /* No history: only job.state's job counts. */
    st = state(RUNSTATE_PENDING, "");
    sweepq_refine(&st, 0, NULL, &q, &v);
    EXPECT(v.kind == RUNSTATE_PENDING && v.start, "no history: %s", runstate_name(v.kind));

    EXPECT(!strcmp(runstate_name(RUNSTATE_QUEUED), "queued") &&
               !strcmp(runstate_name(RUNSTATE_LOST), "lost"),
           "names of the new states");
    EXPECT_FAILS(runstate_write(tmp_dir, RUNSTATE_LOST, 1, "1_1", -1), "cannot record", "'lost'");
    sweepq_history_free(&h);
    sweepq_queue_free(&q);
}

int main(void) {
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_ids();
    test_history();
    test_sbatch();
    test_queue();
    test_refine();
    rmdir(tmp_dir);
    return check_finish("test_sweepq");
}
