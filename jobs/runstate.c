/* runstate: job.state, metrics.csv, config.ini and train.log of one run. */
#include "runstate.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg.h"    // defines: fsnn_cfg
#include "config.h" // defines: config_defaults, config_load
#include "fsutil.h" // defines: fsutil_join, fsutil_write_atomic
#include "status.h" // defines: FAIL, CHECK

#define RUNSTATE_PATH_MAX 4200
#define RUNSTATE_STATE_MAX 256
#define RUNSTATE_METRICS_MAX (16L << 20)

static const char *const runstate_words[] = {
    [RUNSTATE_RUNNING] = "running",
    [RUNSTATE_FINISHED] = "done",
    [RUNSTATE_REQUEUED] = "requeued",
    [RUNSTATE_FAILED] = "failed",
};

const char *runstate_name(runstate_kind kind) {
    static const char *const names[] = {"pending",  "running", "requeued", "failed",
                                        "finished", "unknown", "queued",   "lost"};
    return (unsigned)kind < sizeof names / sizeof names[0] ? names[kind] : "unknown";
}

runstate_kind runstate_of_exit(int code) {
    return code == 0 ? RUNSTATE_FINISHED : code == 3 ? RUNSTATE_REQUEUED : RUNSTATE_FAILED;
}

int runstate_write(const char *run_dir, runstate_kind kind, long long when, const char *job,
                   int exit_code) {
    if (kind != RUNSTATE_RUNNING && kind != RUNSTATE_FINISHED && kind != RUNSTATE_REQUEUED &&
        kind != RUNSTATE_FAILED)
        return FAIL("job.state cannot record the state '%s'", runstate_name(kind));
    char path[RUNSTATE_PATH_MAX], text[RUNSTATE_STATE_MAX], code[16];
    CHECK(fsutil_join(path, sizeof path, run_dir, RUNSTATE_FILE));
    if (exit_code < 0)
        snprintf(code, sizeof code, "-");
    else
        snprintf(code, sizeof code, "%d", exit_code);
    int len = snprintf(text, sizeof text, "%s %lld %s %s\n", runstate_words[kind], when, job, code);
    if (len < 0 || len >= (int)sizeof text) return FAIL("%s: job id too long", path);
    CHECK(fsutil_write_atomic(path, text, (size_t)len));
    return FSNN_OK;
}

/* Splits s at single spaces into at most n fields; returns the count, or -1
 * for empty fields (two spaces, a leading or trailing space). */
static int runstate_fields(char *s, char **f, int n) {
    int k = 0;
    for (;;) {
        if (k == n) return n + 1;
        f[k++] = s;
        char *sp = strchr(s, ' ');
        if (!sp) break;
        *sp = '\0';
        s = sp + 1;
    }
    for (int i = 0; i < k; i++)
        if (!*f[i]) return -1;
    return k;
}

int runstate_parse(const char *name, const char *text, size_t len, runstate *st) {
    static const char form[] = "expected one line '<state> <unix seconds> <job id or local> "
                               "<exit code or ->' with state running, done, failed or requeued";
    char buf[RUNSTATE_STATE_MAX];
    if (len > 0 && text[len - 1] == '\n') len--;
    if (len == 0) return FAIL("%s: empty; %s", name, form);
    if (len >= sizeof buf) return FAIL("%s: longer than %zu bytes; %s", name, sizeof buf, form);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] > 0x7e)
            return FAIL("%s: byte 0x%02x at character %zu; %s", name, (unsigned char)text[i], i + 1,
                        form);
    memcpy(buf, text, len);
    buf[len] = '\0';
    char *f[4];
    if (runstate_fields(buf, f, 4) != 4) return FAIL("%s: not 4 fields; %s", name, form);
    int kind = -1;
    for (int k = 0; k < (int)(sizeof runstate_words / sizeof runstate_words[0]); k++)
        if (runstate_words[k] && !strcmp(f[0], runstate_words[k])) kind = k;
    if (kind < 0) return FAIL("%s: unknown state '%.40s'; %s", name, f[0], form);
    char *end = NULL;
    errno = 0;
    long long when = isdigit((unsigned char)f[1][0]) ? strtoll(f[1], &end, 10) : -1;
    if (!end || *end || errno == ERANGE)
        return FAIL("%s: time '%.40s' is not unix seconds; %s", name, f[1], form);
    size_t jl = strlen(f[2]);
    if (jl >= sizeof st->job) return FAIL("%s: job id longer than %zu characters", name, jl);
    for (size_t i = 0; i < jl; i++)
        if (!isalnum((unsigned char)f[2][i]) && !strchr("._+-", f[2][i]))
            return FAIL("%s: job id '%.40s' has a character other than A-Z a-z 0-9 . _ + -", name,
                        f[2]);
    int code = -1;
    if (strcmp(f[3], "-")) {
        long v = -1;
        end = NULL;
        if (isdigit((unsigned char)f[3][0]) && strlen(f[3]) <= 3) v = strtol(f[3], &end, 10);
        if (!end || *end || v > 255)
            return FAIL("%s: exit code '%.40s' is neither 0..255 nor '-'", name, f[3]);
        code = (int)v;
    }
    st->kind = (runstate_kind)kind;
    st->has_file = 1;
    st->when = when;
    snprintf(st->job, sizeof st->job, "%s", f[2]);
    st->exit_code = code;
    return FSNN_OK;
}

/* Reads at most `max` bytes of `path` into a new NUL-terminated buffer;
 * returns NULL if the file cannot be read or is larger. */
static char *runstate_slurp(const char *path, long max, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    char *buf = malloc((size_t)max + 2);
    size_t n = buf ? fread(buf, 1, (size_t)max + 1, f) : 0;
    int bad = !buf || ferror(f) || n > (size_t)max;
    fclose(f);
    if (bad) {
        free(buf);
        return NULL;
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Index of column `name` in a CSV header line, or -1. */
static int runstate_column(const char *header, size_t len, const char *name) {
    size_t want = strlen(name);
    int col = 0;
    for (size_t i = 0; i <= len; col++) {
        size_t j = i;
        while (j < len && header[j] != ',')
            j++;
        if (j - i == want && !strncmp(header + i, name, want)) return col;
        i = j + 1;
    }
    return -1;
}

/* Field `col` of CSV line s[0..len) as a number; NAN if absent. */
static double runstate_field(const char *s, size_t len, int col) {
    size_t i = 0;
    for (int c = 0; c < col; c++) {
        while (i < len && s[i] != ',')
            i++;
        if (i++ >= len) return NAN;
    }
    char num[64];
    size_t j = i;
    while (j < len && s[j] != ',')
        j++;
    if (j == i || j - i >= sizeof num) return NAN;
    memcpy(num, s + i, j - i);
    num[j - i] = '\0';
    char *end;
    double v = strtod(num, &end);
    return *end ? NAN : v;
}

/* The last row of metrics.csv: its epoch and test accuracy. */
static void runstate_metrics(const char *run_dir, runstate *st) {
    char path[RUNSTATE_PATH_MAX];
    size_t len = 0;
    if (fsutil_join(path, sizeof path, run_dir, "metrics.csv")) {
        status_clear();
        return;
    }
    char *text = runstate_slurp(path, RUNSTATE_METRICS_MAX, &len);
    if (!text) return;
    const char *nl = memchr(text, '\n', len);
    size_t head = nl ? (size_t)(nl - text) : len;
    int c_epoch = runstate_column(text, head, "epoch");
    int c_acc = runstate_column(text, head, "test_acc");
    /* The last complete line (a row being written has no '\n' yet). */
    size_t end = len;
    while (end > 0 && text[end - 1] != '\n')
        end--;
    if (end > 0) end--;
    size_t start = end;
    while (start > 0 && text[start - 1] != '\n')
        start--;
    if (!nl || c_epoch < 0) {
        free(text);
        return;
    }
    if (start == 0) {
        st->epochs_done = 0; /* the header alone */
    } else {
        double e = runstate_field(text + start, end - start, c_epoch);
        if (isfinite(e) && e >= 0 && e <= 1e9 && e == floor(e)) {
            st->epochs_done = (int)e;
            if (c_acc >= 0) st->test_acc = runstate_field(text + start, end - start, c_acc);
        }
    }
    free(text);
}

/* train.epochs of the run's resolved config. */
static void runstate_epochs(const char *run_dir, runstate *st) {
    char path[RUNSTATE_PATH_MAX];
    fsnn_cfg *cfg = malloc(sizeof *cfg);
    if (cfg && fsutil_join(path, sizeof path, run_dir, "config.ini") == 0 && fsutil_is_file(path)) {
        config_defaults(cfg);
        if (config_load(path, cfg) == 0) st->epochs = cfg->train_epochs;
    }
    status_clear();
    free(cfg);
}

void runstate_get(const char *run_dir, runstate *st) {
    memset(st, 0, sizeof *st);
    st->kind = RUNSTATE_PENDING;
    st->exit_code = -1;
    st->epochs_done = st->epochs = -1;
    st->test_acc = NAN;
    char path[RUNSTATE_PATH_MAX];
    if (fsutil_join(path, sizeof path, run_dir, RUNSTATE_FILE) == 0) {
        size_t len = 0;
        errno = 0;
        char *text = runstate_slurp(path, RUNSTATE_STATE_MAX, &len);
        if (text) {
            if (runstate_parse(path, text, len, st)) {
                st->kind = RUNSTATE_UNKNOWN;
                snprintf(st->why, sizeof st->why, "%s", status_message());
            }
        } else if (errno != ENOENT) {
            st->kind = RUNSTATE_UNKNOWN;
            snprintf(st->why, sizeof st->why, "%.160s: cannot read it%s%s", path,
                     errno ? ": " : " (too large)", errno ? strerror(errno) : "");
        }
        free(text);
    }
    status_clear();
    runstate_metrics(run_dir, st);
    runstate_epochs(run_dir, st);
    if (st->epochs >= 0 && st->epochs_done >= st->epochs) st->kind = RUNSTATE_FINISHED;
}

int runstate_last_error(const char *run_dir, char *line, size_t size) {
    char path[RUNSTATE_PATH_MAX];
    line[0] = '\0';
    if (size == 0) return 0;
    if (fsutil_join(path, sizeof path, run_dir, RUNSTATE_LOG)) {
        status_clear();
        return 0;
    }
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    int found = 0;
    while ((n = getline(&buf, &cap, f)) > 0) {
        if (strncmp(buf, "error", 5)) continue;
        size_t k = 0;
        for (ssize_t i = 0; i < n && buf[i] != '\n' && k + 1 < size; i++) {
            unsigned char c = (unsigned char)buf[i];
            line[k++] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
        }
        line[k] = '\0';
        found = 1;
    }
    free(buf);
    fclose(f);
    return found;
}
