/* sweepq: submissions.tsv, squeue's output, and a run's state on the
 * cluster. */
#include "sweepq.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h" // defines: fsutil_join, fsutil_write_atomic
#include "log.h"    // defines: log_warn
#include "status.h" // defines: CHECK, FAIL, XCALLOC

#define SWEEPQ_PATH_MAX 4200
#define SWEEPQ_FILE_MAX (64L << 20)
#define SWEEPQ_HEADER "job\ttime\truns\n"
#define SWEEPQ_WARN_MAX 5 /* warnings about bad squeue lines; the rest are counted */
#define SWEEPQ_ID_MAX 999999999LL

/* ---- run id lists ---- */

int sweepq_ids_format(const int *ids, int n, char **text) {
    size_t len = 0;
    FILE *mem = open_memstream(text, &len);
    if (!mem) return FAIL("out of memory");
    for (int i = 0; i < n;) {
        int j = i;
        while (j + 1 < n && ids[j + 1] == ids[j] + 1)
            j++;
        fprintf(mem, "%s%d", i ? "," : "", ids[i]);
        if (j > i) fprintf(mem, "-%d", ids[j]);
        i = j + 1;
    }
    if (fclose(mem) == 0) return FSNN_OK;
    free(*text);
    *text = NULL;
    return FAIL("out of memory");
}

/* A decimal number of at most 9 digits at *s; advances *s. -1 if none. */
static long long sweepq_number(const char **s) {
    const char *p = *s;
    long long v = 0;
    int digits = 0;
    while (isdigit((unsigned char)*p) && digits < 10) {
        v = v * 10 + (*p++ - '0');
        digits++;
    }
    if (digits == 0 || digits > 9 || (digits > 1 && **s == '0')) return -1;
    *s = p;
    return v;
}

int sweepq_ids_parse(const char *name, const char *text, int n_runs, int **ids, int *n) {
    int *out = NULL, count = 0, cap = 0;
    long long last = -1;
    const char *p = text;
    int rc = FSNN_OK;
    if (!*p) rc = FAIL("%s: no run ids", name);
    while (rc == 0 && *p) {
        long long a = sweepq_number(&p), b = a;
        if (a >= 0 && *p == '-') {
            p++;
            b = sweepq_number(&p);
            if (b >= 0 && b <= a) {
                rc = FAIL("%s: range %lld-%lld does not ascend", name, a, b);
                break;
            }
        }
        if (a < 0 || b < 0 || (*p && *p != ',') || (*p == ',' && !p[1])) {
            rc = FAIL("%s: '%.60s' is not a list of run ids such as 0-3,5", name, text);
            break;
        }
        if (a <= last) {
            rc = FAIL("%s: run id %lld is not above %lld (ids must ascend)", name, a, last);
            break;
        }
        if (b >= n_runs) {
            rc = FAIL("%s: run id %lld, but the sweep has %d runs", name, b, n_runs);
            break;
        }
        for (long long v = a; v <= b; v++) {
            if (count == cap) {
                cap = cap ? 2 * cap : 16;
                int *grown = realloc(out, (size_t)cap * sizeof *out);
                if (!grown) {
                    rc = FAIL("out of memory");
                    break;
                }
                out = grown;
            }
            out[count++] = (int)v;
        }
        last = b;
        if (*p == ',') p++;
    }
    if (rc != 0) {
        free(out);
        return rc;
    }
    *ids = out;
    *n = count;
    return FSNN_OK;
}

/* ---- submissions.tsv ---- */

void sweepq_history_free(sweepq_history *h) {
    for (int i = 0; h->subs && i < h->n; i++)
        free(h->subs[i].ids);
    free(h->subs);
    h->subs = NULL;
    h->n = 0;
}

/* One data line (NUL-terminated, no LF) into s. */
static int sweepq_history_line(const char *where, char *line, int n_runs, sweepq_submission *s) {
    char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
    if (!t2 || strchr(t2 + 1, '\t')) return FAIL("%s: not 3 fields job<TAB>time<TAB>runs", where);
    *t1 = *t2 = '\0';
    const char *f[3] = {line, t1 + 1, t2 + 1};
    const char *p = f[0];
    long long job = sweepq_number(&p);
    if (job <= 0 || *p) return FAIL("%s: job id '%.40s' is not a number 1..999999999", where, f[0]);
    p = f[1];
    long long when = 0;
    int digits = 0;
    while (isdigit((unsigned char)*p) && digits < 18)
        when = when * 10 + (*p++ - '0'), digits++;
    if (!digits || *p) return FAIL("%s: time '%.40s' is not unix seconds", where, f[1]);
    s->job = job;
    s->when = when;
    CHECK(sweepq_ids_parse(where, f[2], n_runs, &s->ids, &s->n_ids));
    return FSNN_OK;
}

int sweepq_history_parse(const char *name, const char *text, size_t len, int n_runs,
                         sweepq_history *h) {
    memset(h, 0, sizeof *h);
    size_t hl = strlen(SWEEPQ_HEADER);
    if (len < hl || memcmp(text, SWEEPQ_HEADER, hl))
        return FAIL("%s:1: not the header 'job<TAB>time<TAB>runs'", name);
    if (text[len - 1] != '\n')
        return FAIL("%s: the last line does not end with LF (cut off?)", name);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if ((c < 0x20 && c != '\t' && c != '\n') || c > 0x7e) {
            int line = 1;
            for (size_t j = 0; j < i; j++)
                line += text[j] == '\n';
            return FAIL("%s:%d: byte 0x%02x: only printable ASCII, TAB and LF", name, line, c);
        }
    }
    int lines = 0;
    for (size_t i = hl; i < len; i++)
        lines += text[i] == '\n';
    if (lines > 0 && XCALLOC(&h->subs, (size_t)lines)) return FSNN_ERR;
    size_t at = hl;
    int rc = FSNN_OK;
    for (int ln = 2; rc == 0 && at < len; ln++) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t ll = (size_t)(nl - (text + at));
        char *line = malloc(ll + 1), where[SWEEPQ_PATH_MAX + 16];
        if (!line) {
            rc = FAIL("out of memory");
            break;
        }
        memcpy(line, text + at, ll);
        line[ll] = '\0';
        snprintf(where, sizeof where, "%s:%d", name, ln);
        rc = sweepq_history_line(where, line, n_runs, &h->subs[h->n]);
        if (rc == 0) h->n++;
        free(line);
        at += ll + 1;
    }
    if (rc != 0) sweepq_history_free(h);
    return rc;
}

/* The whole file `path` (at most SWEEPQ_FILE_MAX bytes); *text NULL and
 * FSNN_OK when it does not exist. */
static int sweepq_slurp(const char *path, char **text, size_t *len) {
    *text = NULL;
    *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return FSNN_OK;
        return FAIL("%s: cannot open: %s", path, strerror(errno));
    }
    char *buf = malloc((size_t)SWEEPQ_FILE_MAX + 1);
    size_t n = buf ? fread(buf, 1, (size_t)SWEEPQ_FILE_MAX + 1, f) : 0;
    int err = !buf || ferror(f);
    fclose(f);
    if (err || n > (size_t)SWEEPQ_FILE_MAX) {
        free(buf);
        return err ? FAIL("%s: cannot read", path)
                   : FAIL("%s: larger than %ld bytes", path, SWEEPQ_FILE_MAX);
    }
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return FSNN_OK;
}

int sweepq_history_read(const char *sweep_dir, int n_runs, sweepq_history *h) {
    memset(h, 0, sizeof *h);
    char path[SWEEPQ_PATH_MAX], *text = NULL;
    size_t len = 0;
    CHECK(fsutil_join(path, sizeof path, sweep_dir, SWEEPQ_FILE));
    CHECK(sweepq_slurp(path, &text, &len));
    if (!text) return FSNN_OK;
    int rc = sweepq_history_parse(path, text, len, n_runs, h);
    free(text);
    return rc;
}

int sweepq_history_append(const char *sweep_dir, long long job, long long when, const int *ids,
                          int n) {
    char path[SWEEPQ_PATH_MAX], *old = NULL, *list = NULL;
    size_t old_len = 0;
    CHECK(fsutil_join(path, sizeof path, sweep_dir, SWEEPQ_FILE));
    CHECK(sweepq_slurp(path, &old, &old_len));
    int rc = sweepq_ids_format(ids, n, &list);
    char *text = NULL;
    size_t len = 0;
    FILE *mem = rc == 0 ? open_memstream(&text, &len) : NULL;
    if (rc == 0 && !mem) rc = FAIL("out of memory");
    if (mem) {
        if (old_len)
            fwrite(old, 1, old_len, mem);
        else
            fputs(SWEEPQ_HEADER, mem);
        fprintf(mem, "%lld\t%lld\t%s\n", job, when, list);
        if (fclose(mem) != 0) rc = FAIL("out of memory");
    }
    if (rc == 0) rc = fsutil_write_atomic(path, text, len);
    free(text);
    free(list);
    free(old);
    return rc;
}

/* ---- sbatch --parsable ---- */

int sweepq_parse_sbatch(const char *text, size_t len, long long *job) {
    char buf[64];
    size_t k = 0;
    for (size_t i = 0; i < len && k + 1 < sizeof buf; i++)
        buf[k++] = isprint((unsigned char)text[i]) ? text[i] : '?';
    buf[k] = '\0';
    int ok = len > 0 && len < sizeof buf && text[len - 1] == '\n' && !memchr(text, '\0', len);
    const char *p = buf;
    long long v = ok ? sweepq_number(&p) : -1;
    ok = v > 0;
    if (ok && *p == ';') { /* ";<cluster>" on a federation */
        const char *c = ++p;
        while (isalnum((unsigned char)*p) || *p == '_' || *p == '-')
            p++;
        ok = p > c;
    }
    /* The line end was shown as '?'. */
    ok = ok && p == buf + len - 1;
    if (!ok) return FAIL("sbatch --parsable printed '%s', not '<job id>' and a line end", buf);
    *job = v;
    return FSNN_OK;
}

/* ---- squeue ---- */

void sweepq_queue_free(sweepq_queue *q) {
    free(q->e);
    q->e = NULL;
    q->n = 0;
}

static sweepq_class sweepq_classify(const char *state) {
    static const char *const waiting[] = {"PENDING",      "REQUEUED",      "REQUEUE_FED",
                                          "REQUEUE_HOLD", "RESV_DEL_HOLD", "SPECIAL_EXIT"};
    static const char *const ended[] = {"BOOT_FAIL", "CANCELLED", "COMPLETED",     "DEADLINE",
                                        "FAILED",    "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
                                        "REVOKED",   "TIMEOUT"};
    for (size_t i = 0; i < sizeof waiting / sizeof waiting[0]; i++)
        if (!strcmp(state, waiting[i])) return SWEEPQ_WAITING;
    for (size_t i = 0; i < sizeof ended / sizeof ended[0]; i++)
        if (!strcmp(state, ended[i])) return SWEEPQ_ENDED;
    /* RUNNING, COMPLETING, SUSPENDED, ... and states of newer SLURM
     * versions: the job still holds the run, so it is not started twice. */
    return SWEEPQ_ACTIVE;
}

static int sweepq_push(sweepq_queue *q, int *cap, const sweepq_entry *e) {
    if (q->n == *cap) {
        int grown_cap = *cap ? 2 * *cap : 64;
        sweepq_entry *grown = realloc(q->e, (size_t)grown_cap * sizeof *grown);
        if (!grown) return FAIL("out of memory");
        q->e = grown;
        *cap = grown_cap;
    }
    q->e[q->n++] = *e;
    return FSNN_OK;
}

/* Parses the task list "5-7%2" or "1,3,5-7" (inside the brackets) into
 * entries like e; returns -1 when malformed. */
static int sweepq_tasks(const char *s, const char *end, const sweepq_entry *e, sweepq_queue *q,
                        int *cap, int *oom) {
    const char *p = s;
    int added = 0;
    while (p < end && *p != '%') {
        long long a = sweepq_number(&p), b = a;
        if (a >= 0 && p < end && *p == '-') {
            p++;
            b = sweepq_number(&p);
        }
        if (a < 0 || b < a || p > end) return -1;
        if (p < end && *p == ',') {
            p++;
            if (p == end || *p == '%') return -1;
        } else if (p < end && *p != '%') {
            return -1;
        }
        sweepq_entry r = *e;
        r.lo = (int)a;
        r.hi = (int)b;
        if (sweepq_push(q, cap, &r)) {
            *oom = 1;
            return -1;
        }
        added++;
    }
    if (p < end) { /* "%K": the throttle */
        p++;
        if (sweepq_number(&p) < 0 || p != end) return -1;
    }
    return added ? 0 : -1;
}

/* Parses one line; 0 ok, -1 not understood (why says what), 1 out of memory. */
static int sweepq_line(const char *line, size_t len, sweepq_queue *q, int *cap, const char **why) {
    const char *bar1 = memchr(line, '|', len);
    const char *bar2 = bar1 ? memchr(bar1 + 1, '|', len - (size_t)(bar1 + 1 - line)) : NULL;
    if (!bar2) return *why = "not '<job id>|<state>|<reason>'", -1;
    for (size_t i = 0; i < len; i++)
        if (!isprint((unsigned char)line[i])) return *why = "a control or non-ASCII byte", -1;
    sweepq_entry e;
    memset(&e, 0, sizeof e);
    size_t sl = (size_t)(bar2 - bar1 - 1);
    if (sl == 0 || sl >= sizeof e.state) return *why = "no SLURM state word", -1;
    for (size_t i = 0; i < sl; i++)
        if (!isupper((unsigned char)bar1[1 + i]) && bar1[1 + i] != '_')
            return *why = "the state is not an upper-case word", -1;
    memcpy(e.state, bar1 + 1, sl);
    e.cls = sweepq_classify(e.state);
    size_t rl = len - (size_t)(bar2 + 1 - line);
    if (rl >= sizeof e.reason) rl = sizeof e.reason - 1;
    memcpy(e.reason, bar2 + 1, rl);
    if (!strcmp(e.reason, "None") || !strcmp(e.reason, "(null)")) e.reason[0] = '\0';
    const char *p = line;
    e.job = sweepq_number(&p);
    if (e.job <= 0) return *why = "the job id is not a number", -1;
    if (p == bar1) {
        e.lo = e.hi = -1;
        return sweepq_push(q, cap, &e) ? 1 : 0;
    }
    if (*p++ != '_') return *why = "the job id is neither N, N_T nor N_[...]", -1;
    if (*p == '[') {
        if (bar1[-1] != ']') return *why = "'[' without ']' in the job id", -1;
        int oom = 0, n0 = q->n;
        if (sweepq_tasks(p + 1, bar1 - 1, &e, q, cap, &oom)) {
            q->n = n0;
            return oom ? 1 : (*why = "a malformed task list in the job id", -1);
        }
        return 0;
    }
    long long t = sweepq_number(&p);
    if (t < 0 || p != bar1) return *why = "the array task id is not a number", -1;
    e.lo = e.hi = (int)t;
    return sweepq_push(q, cap, &e) ? 1 : 0;
}

int sweepq_queue_parse(const char *text, size_t len, sweepq_queue *q) {
    memset(q, 0, sizeof *q);
    int cap = 0;
    size_t at = 0;
    for (int ln = 1; at < len; ln++) {
        const char *nl = memchr(text + at, '\n', len - at);
        size_t ll = nl ? (size_t)(nl - (text + at)) : len - at;
        const char *why = NULL;
        int r = ll ? sweepq_line(text + at, ll, q, &cap, &why) : 0;
        if (r > 0) {
            sweepq_queue_free(q);
            return FAIL("out of memory");
        }
        if (r < 0) {
            if (q->ignored++ < SWEEPQ_WARN_MAX) {
                char shown[84];
                size_t k = 0;
                for (size_t i = 0; i < ll && k + 1 < sizeof shown; i++)
                    shown[k++] = isprint((unsigned char)text[at + i]) ? text[at + i] : '?';
                shown[k] = '\0';
                log_warn("squeue output line %d '%s' ignored: %s", ln, shown, why);
            }
        }
        at += ll + 1;
    }
    if (q->ignored > SWEEPQ_WARN_MAX)
        log_warn("%d more squeue output lines ignored", q->ignored - SWEEPQ_WARN_MAX);
    return FSNN_OK;
}

int sweepq_job_id(const char *s, long long *job, int *task) {
    const char *p = s;
    long long j = sweepq_number(&p), t = -1;
    if (j <= 0) return 0;
    if (*p == '_') {
        p++;
        t = sweepq_number(&p);
        if (t < 0) return 0;
    }
    if (*p) return 0;
    *job = j;
    *task = (int)t;
    return 1;
}

/* ---- the state of a run on the cluster ---- */

/* The entry of squeue that holds task `task` of `job` (-1: a job outside an
 * array) and has not ended; NULL if none. */
static const sweepq_entry *sweepq_find(const sweepq_queue *q, long long job, int task) {
    for (int i = 0; i < q->n; i++) {
        const sweepq_entry *e = &q->e[i];
        if (e->job == job && e->cls != SWEEPQ_ENDED && e->lo <= task && task <= e->hi) return e;
    }
    return NULL;
}

static int sweepq_covers(const sweepq_submission *s, int id) {
    int lo = 0, hi = s->n_ids - 1;
    while (lo <= hi) {
        int mid = lo + (hi - lo) / 2;
        if (s->ids[mid] == id) return 1;
        if (s->ids[mid] < id)
            lo = mid + 1;
        else
            hi = mid - 1;
    }
    return 0;
}

static void sweepq_name(char *buf, size_t size, long long job, int task) {
    if (task >= 0)
        snprintf(buf, size, "%lld_%d", job, task);
    else
        snprintf(buf, size, "%lld", job);
}

void sweepq_refine(const runstate *st, int id, const sweepq_history *h, const sweepq_queue *q,
                   sweepq_view *v) {
    memset(v, 0, sizeof *v);
    v->kind = st->kind;
    v->start = st->kind != RUNSTATE_FINISHED && st->kind != RUNSTATE_RUNNING;
    if (!q || st->kind == RUNSTATE_FINISHED) return;
    long long fjob = 0, sjob = -1;
    int ftask = -1;
    int in_slurm = st->has_file && sweepq_job_id(st->job, &fjob, &ftask);
    const sweepq_entry *e = in_slurm ? sweepq_find(q, fjob, ftask) : NULL;
    int again = e != NULL; /* the job that last ran it is listed */
    char name[48];
    if (e) sweepq_name(name, sizeof name, fjob, ftask);
    for (int k = h ? h->n - 1 : -1; !e && k >= 0; k--) {
        if (!sweepq_covers(&h->subs[k], id)) continue;
        if (sjob < 0) sjob = h->subs[k].job;
        e = sweepq_find(q, h->subs[k].job, id);
        if (e) sweepq_name(name, sizeof name, h->subs[k].job, id);
    }
    if (e) {
        v->start = 0;
        v->replaces = 1;
        const char *why = *e->reason ? e->reason : e->state;
        if (e->cls == SWEEPQ_WAITING) {
            v->kind = RUNSTATE_QUEUED;
            if (again && (st->kind == RUNSTATE_RUNNING || st->kind == RUNSTATE_REQUEUED))
                snprintf(v->note, sizeof v->note,
                         "job %s is queued again (%s); it resumes from its checkpoint", name, why);
            else
                snprintf(v->note, sizeof v->note, "job %s waits in the queue (%s)", name, why);
        } else if (st->kind == RUNSTATE_RUNNING) {
            v->replaces = 0; /* the files' "job ... since ..." says it all */
        } else {
            v->kind = RUNSTATE_RUNNING;
            snprintf(v->note, sizeof v->note, "job %s is %s (job.state: %s)", name, e->state,
                     st->has_file ? runstate_name(st->kind) : "none yet");
        }
        return;
    }
    if (st->kind == RUNSTATE_RUNNING && in_slurm) {
        v->kind = RUNSTATE_LOST;
        v->start = 1;
        v->replaces = 1;
        sweepq_name(name, sizeof name, fjob, ftask);
        snprintf(v->note, sizeof v->note,
                 "job %s is not in the queue any more; resubmit the sweep to resume it from its "
                 "checkpoint",
                 name);
    } else if (st->kind == RUNSTATE_REQUEUED && in_slurm) {
        snprintf(v->note, sizeof v->note, "not in the queue: resubmit the sweep to resume it");
    } else if (st->kind == RUNSTATE_PENDING && sjob >= 0) {
        v->replaces = 1;
        sweepq_name(name, sizeof name, sjob, id);
        snprintf(v->note, sizeof v->note,
                 "job %s left the queue without starting it (see logs/%s.out)", name, name);
    }
}
