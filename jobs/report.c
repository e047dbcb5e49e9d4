/* report: runs.tsv and the run directories read, runs grouped by everything
 * but the seed, and each group's statistics; report_write.c writes the
 * table. */
#include "report.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "config.h"  // defines: config_defaults, config_load, config_override, config_resolve
#include "dataset.h" // defines: dataset_dims
#include "fsutil.h"  // defines: fsutil_join, fsutil_is_file
#include "netspec.h" // defines: netspec_parse, netspec_infer
#include "status.h"  // defines: CHECK, FAIL, XCALLOC

#define REPORT_PATH_MAX 4096
#define REPORT_METRICS_COLS_MAX 256
#define REPORT_FIELDS_MAX 1024 /* of a runs.tsv line: far more keys than fsnn has */

/* ---- reading text files ---- */

/* The whole file, NUL-terminated, at most REPORT_FILE_MAX bytes. */
static int report_slurp(const char *path, char **text, size_t *len) {
    *text = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return FAIL("%s: cannot open: %s", path, strerror(errno));
    size_t cap = 4096, used = 0;
    char *buf = malloc(cap);
    int rc = buf ? FSNN_OK : FAIL("%s: out of memory", path);
    while (rc == 0) {
        if (used + 1 == cap) {
            if (cap > (size_t)REPORT_FILE_MAX) {
                rc =
                    FAIL("%s: larger than %ld bytes; not a file fsnn wrote", path, REPORT_FILE_MAX);
                break;
            }
            char *more = realloc(buf, 2 * cap);
            if (!more) {
                rc = FAIL("%s: out of memory for %zu bytes", path, 2 * cap);
                break;
            }
            buf = more;
            cap *= 2;
        }
        size_t got = fread(buf + used, 1, cap - 1 - used, f);
        used += got;
        if (got == 0) {
            if (ferror(f)) rc = FAIL("%s: read error: %s", path, strerror(errno));
            break;
        }
    }
    fclose(f);
    if (rc == 0 && used > (size_t)REPORT_FILE_MAX)
        rc = FAIL("%s: larger than %ld bytes; not a file fsnn wrote", path, REPORT_FILE_MAX);
    if (rc != 0) {
        free(buf);
        return rc;
    }
    buf[used] = '\0';
    *text = buf;
    *len = used;
    return FSNN_OK;
}

/* Walks the lines of a slurped file, cutting each at its LF. */
typedef struct {
    const char *path;
    char *text;
    size_t len, pos;
    int line; /* 1-based number of the line last returned */
} report_lines;

/* The next line (NUL-terminated in place), or NULL at the end of the file.
 * Every byte must be printable ASCII, or TAB where allowed; the line must
 * end with LF. */
static int report_next_line(report_lines *ls, int allow_tab, char **line) {
    *line = NULL;
    if (ls->pos >= ls->len) return FSNN_OK;
    char *s = ls->text + ls->pos;
    ls->line++;
    size_t n = 0;
    for (; ls->pos + n < ls->len && s[n] != '\n'; n++) {
        unsigned char c = (unsigned char)s[n];
        if (c == '\t' && allow_tab) continue;
        if (c == '\0') return FAIL("%s:%d: NUL byte at column %zu", ls->path, ls->line, n + 1);
        if (c == '\r')
            return FAIL("%s:%d: CR at column %zu (line ends must be LF only)", ls->path, ls->line,
                        n + 1);
        if (c < 0x20 || c > 0x7e)
            return FAIL("%s:%d: byte 0x%02x at column %zu is not printable ASCII", ls->path,
                        ls->line, c, n + 1);
    }
    if (ls->pos + n == ls->len)
        return FAIL("%s:%d: the last line has no line end (a truncated file?)", ls->path, ls->line);
    s[n] = '\0';
    ls->pos += n + 1;
    *line = s;
    return FSNN_OK;
}

/* Splits `line` in place at `sep` into at most `max` fields; *n gets the
 * count (max + 1 means "more than max"). */
static void report_split(char *line, char sep, char **fields, int max, int *n) {
    int k = 0;
    char *p = line;
    for (;;) {
        if (k == max) {
            *n = max + 1;
            return;
        }
        fields[k++] = p;
        char *q = strchr(p, sep);
        if (!q) break;
        *q = '\0';
        p = q + 1;
    }
    *n = k;
}

/* ---- metrics.csv ---- */

static const char *const report_metrics_used[3] = {"test_acc", "firing_rate", "peak_rss_mb"};

static int report_is_name(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_')) return 0;
    return 1;
}

/* A number filling the whole field (strtod; no spaces). */
static int report_number(const char *field, double *v) {
    if (!*field || *field == ' ') return 0;
    errno = 0;
    char *end = NULL;
    *v = strtod(field, &end);
    return end != field && *end == '\0';
}

void report_metrics_free(report_metrics *m) {
    free(m->values);
    memset(m, 0, sizeof *m);
}

/* The header's column of each used name; checks the names. */
static int report_metrics_header(const char *path, char **names, int n, int *col) {
    if (n > REPORT_METRICS_COLS_MAX)
        return FAIL("%s:1: more than %d columns in the header", path, REPORT_METRICS_COLS_MAX);
    if (strcmp(names[0], "epoch") != 0)
        return FAIL("%s:1: the header starts with '%s', expected 'epoch' (not an fsnn "
                    "metrics.csv)",
                    path, names[0]);
    for (int c = 0; c < n; c++) {
        if (!report_is_name(names[c]))
            return FAIL("%s:1: column %d: '%s' is not a column name ([a-z0-9_])", path, c + 1,
                        names[c]);
        for (int d = 0; d < c; d++)
            if (!strcmp(names[c], names[d]))
                return FAIL("%s:1: column '%s' appears twice (columns %d and %d)", path, names[c],
                            d + 1, c + 1);
    }
    for (int u = 0; u < 3; u++) {
        col[u] = -1;
        for (int c = 0; c < n; c++)
            if (!strcmp(names[c], report_metrics_used[u])) col[u] = c;
        if (col[u] < 0)
            return FAIL("%s:1: the header has no column '%s'", path, report_metrics_used[u]);
    }
    return FSNN_OK;
}

/* Checks one data row (fields already split) and stores the used values. */
static int report_metrics_row(const char *path, int line, char **fields, int n, int n_cols,
                              char **names, const int *col, int row, report_metrics *m) {
    if (n != n_cols)
        return FAIL("%s:%d: %s%d fields, the header has %d", path, line,
                    n > n_cols ? "more than " : "", n > n_cols ? n_cols : n, n_cols);
    double v[REPORT_METRICS_COLS_MAX];
    for (int c = 0; c < n; c++)
        if (!report_number(fields[c], &v[c]))
            return FAIL("%s:%d: column '%s': '%.40s' is not a number", path, line, names[c],
                        fields[c]);
    if (v[0] != (double)(row + 1))
        return FAIL("%s:%d: epoch '%s', expected %d (epochs count 1, 2, 3, ...)", path, line,
                    fields[0], row + 1);
    static const double lo[3] = {0.0, 0.0, 0.0}, hi[3] = {100.0, 1.0, HUGE_VAL};
    for (int u = 0; u < 3; u++) {
        double x = v[col[u]];
        if (!isfinite(x))
            return FAIL("%s:%d: column '%s' is not finite (%s)", path, line, names[col[u]],
                        fields[col[u]]);
        if (x < lo[u] || x > hi[u])
            return FAIL("%s:%d: column '%s' = %s is out of range [%g, %g]", path, line,
                        names[col[u]], fields[col[u]], lo[u], hi[u]);
    }
    m->test_acc[row] = v[col[0]];
    m->firing_rate[row] = v[col[1]];
    m->peak_rss_mb[row] = v[col[2]];
    return FSNN_OK;
}

/* Room for `rows` rows in m (the three arrays in one block). */
static int report_metrics_reserve(const char *path, report_metrics *m, int rows, int *cap) {
    if (rows < *cap) return FSNN_OK;
    int more = *cap ? 2 * *cap : 64;
    double *v = malloc(sizeof(double) * 3 * (size_t)more);
    if (!v) return FAIL("%s: out of memory for %d rows", path, more);
    for (int k = 0; k < 3 && m->values; k++)
        memcpy(v + (size_t)k * more, m->values + (size_t)k * *cap, sizeof(double) * (size_t)rows);
    free(m->values);
    m->values = v;
    m->test_acc = v;
    m->firing_rate = v + more;
    m->peak_rss_mb = v + 2 * (size_t)more;
    *cap = more;
    return FSNN_OK;
}

int report_read_metrics(const char *path, report_metrics *m) {
    memset(m, 0, sizeof *m);
    report_lines ls = {path, NULL, 0, 0, 0};
    CHECK(report_slurp(path, &ls.text, &ls.len));
    char *names[REPORT_METRICS_COLS_MAX + 1], *fields[REPORT_METRICS_COLS_MAX + 1];
    int n_cols = 0, col[3] = {0, 0, 0}, cap = 0;
    char *line = NULL;
    int rc = report_next_line(&ls, 0, &line);
    if (rc == 0 && !line) rc = FAIL("%s: empty file: expected the header line", path);
    if (rc == 0) {
        report_split(line, ',', names, REPORT_METRICS_COLS_MAX, &n_cols);
        rc = report_metrics_header(path, names, n_cols, col);
    }
    while (rc == 0) {
        rc = report_next_line(&ls, 0, &line);
        if (rc != 0 || !line) break;
        int n = 0;
        report_split(line, ',', fields, REPORT_METRICS_COLS_MAX, &n);
        rc = report_metrics_reserve(path, m, m->rows, &cap);
        if (rc == 0)
            rc = report_metrics_row(path, ls.line, fields, n, n_cols, names, col, m->rows, m);
        if (rc == 0) m->rows++;
    }
    free(ls.text);
    if (rc != 0) report_metrics_free(m);
    return rc;
}

/* ---- runs.tsv ---- */

/* "section.key=value" with section and key of [a-z0-9_]+: the length of
 * "section.key", or 0 when the argument has another form. */
static size_t report_arg_key(const char *arg) {
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) return 0;
    int dots = 0;
    for (const char *p = arg; p < eq; p++) {
        if (*p == '.') {
            if (p == arg || p + 1 == eq || ++dots > 1) return 0;
        } else if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) {
            return 0;
        }
    }
    return dots == 1 ? (size_t)(eq - arg) : 0;
}

static int report_key_is(const char *arg, const char *key) {
    size_t k = strlen(key);
    return !strncmp(arg, key, k) && arg[k] == '=';
}

/* An unsigned decimal integer filling the string. */
static int report_u64(const char *s, uint64_t *v) {
    if (!*s) return 0;
    for (const char *p = s; *p; p++)
        if (*p < '0' || *p > '9') return 0;
    errno = 0;
    unsigned long long x = strtoull(s, NULL, 10);
    if (errno == ERANGE) return 0;
    *v = (uint64_t)x;
    return 1;
}

static int report_run_line(const char *path, int line, char *text, report_run *run, int id) {
    int n = 0, max = 1;
    for (const char *p = text; *p; p++)
        max += *p == '\t';
    if (max > REPORT_FIELDS_MAX)
        return FAIL("%s:%d: %d fields; at most %d", path, line, max, REPORT_FIELDS_MAX);
    char **f = NULL;
    CHECK(XCALLOC(&f, (size_t)max));
    report_split(text, '\t', f, max, &n);
    int rc = FSNN_OK;
    for (int k = 0; rc == 0 && k < n; k++)
        if (!*f[k]) rc = FAIL("%s:%d: field %d is empty", path, line, k + 1);
    if (rc == 0 && n < 5)
        rc = FAIL("%s:%d: %d fields; a run has id, dir, config and at least run.seed and "
                  "run.dir",
                  path, line, n);
    uint64_t v = 0;
    if (rc == 0 && (!report_u64(f[0], &v) || v != (uint64_t)id))
        rc = FAIL("%s:%d: id '%.40s', expected %d (ids count 0, 1, 2, ... in order)", path, line,
                  f[0], id);
    if (rc == 0 && f[1][0] != '/')
        rc = FAIL("%s:%d: dir '%.200s' is not an absolute path", path, line, f[1]);
    if (rc == 0 && f[2][0] != '/')
        rc = FAIL("%s:%d: config '%.200s' is not an absolute path", path, line, f[2]);
    if (rc == 0) {
        run->id = id;
        run->dir = f[1];
        run->config = f[2];
        run->n_args = n - 3;
        rc = XCALLOC(&run->args, (size_t)run->n_args);
    }
    int seed_at = -1, dir_at = -1;
    for (int a = 0; rc == 0 && a < run->n_args; a++) {
        const char *arg = run->args[a] = f[3 + a];
        size_t klen = report_arg_key(arg);
        if (!klen) {
            rc = FAIL("%s:%d: argument '%.200s' is not section.key=value", path, line, arg);
            break;
        }
        for (int b = 0; b < a && rc == 0; b++)
            if (!strncmp(run->args[b], arg, klen + 1))
                rc = FAIL("%s:%d: key '%.*s' is given twice", path, line, (int)klen, arg);
        if (report_key_is(arg, "run.seed")) seed_at = a;
        if (report_key_is(arg, "run.dir")) dir_at = a;
    }
    if (rc == 0 && (seed_at < 0 || dir_at < 0))
        rc = FAIL("%s:%d: the arguments lack %s", path, line, seed_at < 0 ? "run.seed" : "run.dir");
    if (rc == 0 && !report_u64(run->args[seed_at] + strlen("run.seed="), &run->seed))
        rc = FAIL("%s:%d: '%.60s': the seed is not an unsigned integer", path, line,
                  run->args[seed_at]);
    if (rc == 0 && strcmp(run->args[dir_at] + strlen("run.dir="), run->dir) != 0)
        rc = FAIL("%s:%d: '%.200s' differs from the dir column '%.200s'", path, line,
                  run->args[dir_at], run->dir);
    free(f);
    if (rc != 0) {
        free(run->args);
        run->args = NULL;
    }
    return rc;
}

static int report_cmp_dir(const void *a, const void *b) {
    const report_run *const *x = a, *const *y = b;
    int c = strcmp((*x)->dir, (*y)->dir);
    return c ? c : (*x)->id - (*y)->id;
}

/* No two runs share a directory (they would overwrite each other). */
static int report_unique_dirs(const char *path, report *r) {
    report_run **by = NULL;
    CHECK(XCALLOC(&by, (size_t)r->n_runs));
    for (int i = 0; i < r->n_runs; i++)
        by[i] = &r->runs[i];
    qsort(by, (size_t)r->n_runs, sizeof *by, report_cmp_dir);
    int rc = FSNN_OK;
    for (int i = 1; i < r->n_runs && rc == 0; i++)
        if (!strcmp(by[i]->dir, by[i - 1]->dir))
            rc = FAIL("%s:%d: dir '%.200s' is also the dir of line %d", path, by[i]->id + 2,
                      by[i]->dir, by[i - 1]->id + 2);
    free(by);
    return rc;
}

int report_read_runs(const char *path, report *r) {
    report_lines ls = {path, NULL, 0, 0, 0};
    CHECK(report_slurp(path, &ls.text, &ls.len));
    r->text = ls.text;
    char *line = NULL;
    CHECK(report_next_line(&ls, 1, &line));
    if (!line)
        return FAIL("%s: empty file: expected the header id<TAB>dir<TAB>config<TAB>args", path);
    if (strcmp(line, "id\tdir\tconfig\targs") != 0)
        return FAIL("%s:1: the header is not id<TAB>dir<TAB>config<TAB>args", path);
    int cap = 0;
    for (;;) {
        CHECK(report_next_line(&ls, 1, &line));
        if (!line) break;
        if (r->n_runs == cap) {
            cap = cap ? 2 * cap : 64;
            report_run *more = realloc(r->runs, sizeof *more * (size_t)cap);
            if (!more) return FAIL("%s: out of memory for %d runs", path, cap);
            r->runs = more;
        }
        memset(&r->runs[r->n_runs], 0, sizeof *r->runs);
        CHECK(report_run_line(path, ls.line, line, &r->runs[r->n_runs], r->n_runs));
        r->n_runs++;
    }
    if (r->n_runs == 0) return FAIL("%s: no runs listed after the header", path);
    return report_unique_dirs(path, r);
}

/* ---- grouping ---- */

static int report_is_seed_or_dir(const char *arg) {
    return report_key_is(arg, "run.seed") || report_key_is(arg, "run.dir");
}

static int report_cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The group key of a run: its base config, then its arguments other than
 * run.seed and run.dir in sorted order (the order of arguments on the
 * command line does not change the run), joined by LF. */
static int report_run_key(const report_run *run, char **key) {
    char **sorted = NULL;
    CHECK(XCALLOC(&sorted, (size_t)run->n_args));
    size_t len = strlen(run->config) + 1;
    int n = 0;
    for (int a = 0; a < run->n_args; a++)
        if (!report_is_seed_or_dir(run->args[a])) {
            sorted[n++] = run->args[a];
            len += strlen(run->args[a]) + 1;
        }
    qsort(sorted, (size_t)n, sizeof *sorted, report_cmp_str);
    int rc = XCALLOC(key, len + 1);
    if (rc == 0) {
        strcpy(*key, run->config);
        for (int a = 0; a < n; a++) {
            strcat(*key, "\n");
            strcat(*key, sorted[a]);
        }
    }
    free(sorted);
    return rc;
}

typedef struct {
    char *key;
    int run;
} report_keyed;

static int report_cmp_keyed(const void *a, const void *b) {
    const report_keyed *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : x->run - y->run;
}

/* Forms the groups (numbered in the order of their first run) and sets
 * run->group. */
static int report_group_runs(report *r) {
    const int n = r->n_runs;
    report_keyed *k = NULL;
    int *first = NULL, *count = NULL, *number = NULL;
    int rc = XCALLOC(&k, (size_t)n);
    if (rc == 0) rc = XCALLOC(&first, (size_t)n);
    if (rc == 0) rc = XCALLOC(&count, (size_t)n);
    if (rc == 0) rc = XCALLOC(&number, (size_t)n);
    for (int i = 0; i < n && rc == 0; i++) {
        k[i].run = i;
        rc = report_run_key(&r->runs[i], &k[i].key);
    }
    if (rc == 0) rc = XCALLOC(&r->groups, (size_t)n);
    if (rc == 0) {
        /* Equal keys are neighbours after sorting, each group's runs in order. */
        qsort(k, (size_t)n, sizeof *k, report_cmp_keyed);
        int groups = 0;
        for (int i = 0; i < n; i++) {
            if (i == 0 || strcmp(k[i].key, k[i - 1].key) != 0) first[groups++] = k[i].run;
            count[groups - 1]++;
            r->runs[k[i].run].group = groups - 1;
        }
        /* Renumber by first run: number[run] = 1 + sorted group starting there. */
        for (int g = 0; g < groups; g++)
            number[first[g]] = g + 1;
        int next = 0;
        for (int i = 0; i < n; i++)
            if (number[i]) {
                int g = number[i] - 1;
                r->groups[next].first = i;
                r->groups[next].runs = count[g];
                first[g] = next++; /* now: the new number of sorted group g */
            }
        for (int i = 0; i < n; i++)
            r->runs[i].group = first[r->runs[i].group];
        r->n_groups = groups;
    }
    for (int i = 0; k && i < n; i++)
        free(k[i].key);
    free(k);
    free(first);
    free(count);
    free(number);
    return rc;
}

static const char *report_basename(const char *path) {
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* The label of each group: the arguments whose values differ between
 * groups (and the base config's name when that differs); with one group,
 * all its arguments but the seed and the directory. An argument is common
 * when the first group has it and every group has it with the same value. */
static int report_label_groups(report *r) {
    const report_run *run0 = &r->runs[r->groups[0].first];
    int config_differs = 0, *common = NULL;
    CHECK(XCALLOC(&common, (size_t)run0->n_args));
    for (int a = 0; a < run0->n_args; a++) {
        common[a] = r->n_groups > 1 && !report_is_seed_or_dir(run0->args[a]);
        size_t klen = report_arg_key(run0->args[a]);
        for (int g = 1; g < r->n_groups && common[a]; g++) {
            const report_run *run = &r->runs[r->groups[g].first];
            int found = 0;
            for (int b = 0; b < run->n_args && !found; b++)
                found = !strncmp(run->args[b], run0->args[a], klen + 1) &&
                        !strcmp(run->args[b], run0->args[a]);
            common[a] = found;
        }
    }
    for (int g = 1; g < r->n_groups; g++)
        config_differs |= strcmp(r->runs[r->groups[g].first].config, run0->config) != 0;
    int rc = FSNN_OK;
    for (int g = 0; g < r->n_groups && rc == 0; g++) {
        const report_run *run = &r->runs[r->groups[g].first];
        size_t len = strlen(run->config) + 16;
        for (int a = 0; a < run->n_args; a++)
            len += strlen(run->args[a]) + 1;
        char *label = NULL;
        rc = XCALLOC(&label, len);
        if (rc != 0) break;
        r->groups[g].label = label;
        size_t used = 0;
        if (config_differs)
            used += (size_t)snprintf(label, len, "config=%s", report_basename(run->config));
        for (int a = 0; a < run->n_args; a++) {
            const char *arg = run->args[a];
            if (report_is_seed_or_dir(arg)) continue;
            size_t klen = report_arg_key(arg);
            int skip = 0;
            for (int b = 0; b < run0->n_args && !skip; b++)
                skip = common[b] && !strncmp(run0->args[b], arg, klen + 1);
            if (!skip)
                used += (size_t)snprintf(label + used, len - used, "%s%s", used ? " " : "", arg);
        }
        if (!used) snprintf(label, len, "%s", r->n_groups > 1 ? "(base config)" : "(all runs)");
    }
    free(common);
    return rc;
}

/* ---- each run's files and the statistics ---- */

static int report_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Reads a run's config.ini and metrics.csv; a run without them is missing
 * (not an error). The group takes the first configuration it sees. */
static int report_read_run(report *r, report_run *run) {
    char cfg_path[REPORT_PATH_MAX], met_path[REPORT_PATH_MAX];
    CHECK(fsutil_join(cfg_path, sizeof cfg_path, run->dir, "config.ini"));
    CHECK(fsutil_join(met_path, sizeof met_path, run->dir, "metrics.csv"));
    if (!report_is_dir(run->dir)) {
        run->missing = "not started (no run directory)";
        return FSNN_OK;
    }
    int has_cfg = fsutil_is_file(cfg_path), has_met = fsutil_is_file(met_path);
    if (!has_cfg && has_met)
        return FAIL("%s: metrics.csv without config.ini; not a run directory fsnn wrote", run->dir);
    if (!has_cfg) {
        run->missing = "not started (no config.ini)";
        return FSNN_OK;
    }
    fsnn_cfg cfg;
    config_defaults(&cfg);
    CHECK(config_load(cfg_path, &cfg));
    CHECK(config_resolve(cfg_path, &cfg));
    if (cfg.run_seed != run->seed)
        return FAIL("%s: run.seed is %llu but runs.tsv line %d says %llu", cfg_path,
                    (unsigned long long)cfg.run_seed, run->id + 2, (unsigned long long)run->seed);
    report_group *g = &r->groups[run->group];
    if (!g->have_cfg) {
        g->cfg = cfg;
        g->have_cfg = 1;
    }
    if (!has_met) {
        run->missing = "no metrics.csv";
        return FSNN_OK;
    }
    CHECK(report_read_metrics(met_path, &run->metrics));
    if (run->metrics.rows == 0) run->missing = "no finished epoch";
    return FSNN_OK;
}

/* A group none of whose runs has a config.ini: the configuration `fsnn
 * train` would build from the base config and the arguments, if it can. */
static void report_cfg_from_args(report_group *g, const report_run *run) {
    config_defaults(&g->cfg);
    int rc = config_load(run->config, &g->cfg);
    for (int a = 0; rc == 0 && a < run->n_args; a++)
        rc = config_override(run->args[a], &g->cfg);
    if (rc == 0) rc = config_resolve(run->config, &g->cfg);
    g->have_cfg = rc == 0;
    status_clear(); /* unknown: the table shows "?" */
}

/* Neurons and parameters of the group's net, from its notation on its data
 * set's input (netspec.h): the paper's counts, for every net the notation
 * describes, whether or not this build trains it. */
static int report_model_size(report_group *g) {
    g->neurons = g->params = -1;
    if (!g->have_cfg) return FSNN_OK;
    int c = 0, h = 0, w = 0, classes = 0;
    CHECK(dataset_dims(g->cfg.data_dataset, &c, &h, &w, &classes));
    netspec net;
    netspec_sizes sz;
    netspec_error err;
    if (netspec_parse(g->cfg.model_net, &net, &err) ||
        netspec_infer(&net, (netspec_shape){c, h, w, 0}, classes, &sz, &err))
        return FAIL("model.net %s", err.msg);
    g->neurons = (long)sz.neurons;
    g->params = (long)sz.weights;
    return FSNN_OK;
}

/* Mean and sample standard deviation (n - 1; NAN below two values). */
static void report_mean_std(const double *x, int n, double *mean, double *std) {
    double s = 0.0;
    for (int i = 0; i < n; i++)
        s += x[i];
    *mean = n > 0 ? s / n : NAN;
    double ss = 0.0;
    for (int i = 0; i < n; i++)
        ss += (x[i] - *mean) * (x[i] - *mean);
    *std = n > 1 ? sqrt(ss / (n - 1)) : NAN;
}

/* The statistics of group g from its runs members[0..g->runs) (in runs.tsv
 * order). */
static int report_aggregate(const report *r, report_group *g, const int *members) {
    double *fin = NULL, *rate = NULL, *peak = NULL;
    CHECK(XCALLOC(&fin, (size_t)g->runs));
    int rc = XCALLOC(&rate, (size_t)g->runs);
    if (rc == 0) rc = XCALLOC(&peak, (size_t)g->runs);
    g->epochs_min = INT_MAX;
    g->epochs_max = 0;
    g->acc_best = NAN;
    g->peak_rss_mb = NAN;
    g->first_done = -1;
    for (int k = 0; k < g->runs && rc == 0; k++) {
        const report_metrics *m = &r->runs[members[k]].metrics;
        g->epochs_min = m->rows < g->epochs_min ? m->rows : g->epochs_min;
        g->epochs_max = m->rows > g->epochs_max ? m->rows : g->epochs_max;
        g->curve_len = m->rows > g->curve_len ? m->rows : g->curve_len;
        if (m->rows == 0) continue;
        if (g->first_done < 0) g->first_done = members[k];
        fin[g->done] = m->test_acc[m->rows - 1];
        peak[g->done] = m->test_acc[0];
        for (int e = 1; e < m->rows; e++)
            peak[g->done] = m->test_acc[e] > peak[g->done] ? m->test_acc[e] : peak[g->done];
        rate[g->done] = m->firing_rate[m->rows - 1];
        if (!(fin[g->done] <= g->acc_best)) g->acc_best = fin[g->done];
        for (int e = 0; e < m->rows; e++)
            if (!(m->peak_rss_mb[e] <= g->peak_rss_mb)) g->peak_rss_mb = m->peak_rss_mb[e];
        g->done++;
    }
    double unused;
    report_mean_std(fin, g->done, &g->acc_mean, &g->acc_std);
    report_mean_std(peak, g->done, &g->peak_mean, &g->peak_std);
    report_mean_std(rate, g->done, &g->firing_mean, &unused);
    if (rc == 0 && g->curve_len > 0) {
        rc = XCALLOC(&g->curve_mean, (size_t)g->curve_len);
        if (rc == 0) rc = XCALLOC(&g->curve_std, (size_t)g->curve_len);
        if (rc == 0) rc = XCALLOC(&g->curve_n, (size_t)g->curve_len);
    }
    for (int e = 0; rc == 0 && e < g->curve_len; e++) {
        int n = 0;
        for (int k = 0; k < g->runs; k++) {
            const report_metrics *m = &r->runs[members[k]].metrics;
            if (m->rows > e) fin[n++] = m->test_acc[e];
        }
        g->curve_n[e] = n;
        report_mean_std(fin, n, &g->curve_mean[e], &g->curve_std[e]);
    }
    free(fin);
    free(rate);
    free(peak);
    return rc;
}

/* The runs of each group in runs.tsv order, one after the other: group g's
 * are members[start[g] .. start[g] + groups[g].runs). */
static int report_members(const report *r, int **members, int **start) {
    CHECK(XCALLOC(members, (size_t)r->n_runs));
    CHECK(XCALLOC(start, (size_t)r->n_groups + 1));
    for (int g = 0; g < r->n_groups; g++)
        (*start)[g + 1] = (*start)[g] + r->groups[g].runs;
    int *next = NULL;
    CHECK(XCALLOC(&next, (size_t)r->n_groups));
    memcpy(next, *start, sizeof(int) * (size_t)r->n_groups);
    for (int i = 0; i < r->n_runs; i++)
        (*members)[next[r->runs[i].group]++] = i;
    free(next);
    return FSNN_OK;
}

int report_load(const char *sweep_dir, report **out) {
    report *r = NULL;
    CHECK(XCALLOC(&r, 1));
    *out = r;
    char path[REPORT_PATH_MAX];
    CHECK(fsutil_join(path, sizeof path, sweep_dir, "runs.tsv"));
    CHECK(report_read_runs(path, r));
    CHECK(report_group_runs(r));
    CHECK(report_label_groups(r));
    for (int i = 0; i < r->n_runs; i++)
        CHECK(report_read_run(r, &r->runs[i]));
    int *members = NULL, *start = NULL;
    int rc = report_members(r, &members, &start);
    for (int g = 0; g < r->n_groups && rc == 0; g++) {
        report_group *gr = &r->groups[g];
        if (!gr->have_cfg) report_cfg_from_args(gr, &r->runs[gr->first]);
        rc = report_model_size(gr);
        if (rc == 0) rc = report_aggregate(r, gr, members + start[g]);
    }
    free(members);
    free(start);
    return rc;
}

void report_free(report *r) {
    for (int i = 0; i < r->n_runs; i++) {
        free(r->runs[i].args);
        report_metrics_free(&r->runs[i].metrics);
    }
    for (int g = 0; g < r->n_groups; g++) {
        free(r->groups[g].label);
        free(r->groups[g].curve_mean);
        free(r->groups[g].curve_std);
        free(r->groups[g].curve_n);
    }
    free(r->runs);
    free(r->groups);
    free(r->text);
    memset(r, 0, sizeof *r);
}

void report_destroy(report **pr) {
    if (!*pr) return;
    report_free(*pr);
    free(*pr);
    *pr = NULL;
}
