/* sweep_tsv: runs.tsv, the table of a sweep's runs that slurm/sweep.sbatch,
 * `fsnn sweep --local` and `fsnn sweep status` read back by run id: written
 * from a sweep_table, and parsed strictly, since a row becomes the argv of
 * `fsnn train`. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fsutil.h"     // defines: fsutil_write_atomic
#include "status.h"     // defines: FAIL, CHECK, XCALLOC
#include "sweep.h"      // defines: sweep_table, sweep_tsv_parse, sweep_tsv_read
#include "sweep_impl.h" // defines: sweep_strndup, sweep_free_list, sweep_show_char

#define SWEEP_TSV_MAX (64L << 20)

const char *sweep_run_name(const sweep_run *r) {
    const char *slash = strrchr(r->dir, '/');
    return slash ? slash + 1 : r->dir;
}

void sweep_table_free(sweep_table *t) {
    for (int i = 0; i < t->n; i++) {
        free(t->runs[i].dir);
        free(t->runs[i].config);
        sweep_free_list(t->runs[i].args, t->runs[i].n_args);
    }
    free(t->runs);
    t->runs = NULL;
    t->n = 0;
}

static int sweep_cmp_name(const void *a, const void *b) {
    const sweep_run *const *x = a, *const *y = b;
    return strcmp((*x)->dir, (*y)->dir);
}

int sweep_check_unique(const char *file, const sweep_table *t, const char *hint) {
    const sweep_run **sorted = NULL;
    CHECK(XCALLOC(&sorted, (size_t)t->n));
    for (int i = 0; i < t->n; i++)
        sorted[i] = &t->runs[i];
    qsort(sorted, (size_t)t->n, sizeof *sorted, sweep_cmp_name);
    for (int i = 1; i < t->n; i++)
        if (!strcmp(sorted[i - 1]->dir, sorted[i]->dir)) {
            int a = (int)(sorted[i - 1] - t->runs), b = (int)(sorted[i] - t->runs);
            int rc = FAIL("%s: runs %d and %d have the same directory name '%s'%s", file,
                          a < b ? a : b, a < b ? b : a, sweep_run_name(sorted[i]), hint);
            free(sorted);
            return rc;
        }
    free(sorted);
    return FSNN_OK;
}

/* ---- runs.tsv ---- */

static const char sweep_tsv_header[] = "id\tdir\tconfig\targs";

static int sweep_field_ok(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e) return 0;
    return 1;
}

int sweep_tsv_format(const sweep_table *t, char **text, size_t *len) {
    *text = NULL;
    *len = 0;
    FILE *mem = open_memstream(text, len);
    if (!mem) return FAIL("cannot buffer runs.tsv: %s", strerror(errno));
    fprintf(mem, "%s\n", sweep_tsv_header);
    int rc = FSNN_OK;
    for (int i = 0; rc == 0 && i < t->n; i++) {
        const sweep_run *r = &t->runs[i];
        if (!sweep_field_ok(r->dir) || !sweep_field_ok(r->config))
            rc = FAIL("runs.tsv: run %d: empty path or one with a byte outside printable ASCII", i);
        fprintf(mem, "%d\t%s\t%s", i, r->dir, r->config);
        for (int a = 0; rc == 0 && a < r->n_args; a++) {
            if (!sweep_field_ok(r->args[a]))
                rc = FAIL("runs.tsv: run %d: argument %d is empty or holds a byte outside "
                          "printable ASCII",
                          i, a + 1);
            fprintf(mem, "\t%s", r->args[a]);
        }
        fputc('\n', mem);
    }
    if (fclose(mem) != 0 && rc == 0) rc = FAIL("cannot buffer runs.tsv: %s", strerror(errno));
    if (rc != 0) {
        free(*text);
        *text = NULL;
        *len = 0;
    }
    return rc;
}

int sweep_tsv_write(const char *path, const sweep_table *t) {
    char *text = NULL;
    size_t len = 0;
    CHECK(sweep_tsv_format(t, &text, &len));
    int rc = fsutil_write_atomic(path, text, len);
    free(text);
    CHECK(rc);
    return FSNN_OK;
}

/* A run argument: section.key=value with a key of [a-z0-9_] words. */
static int sweep_arg_ok(const char *arg) {
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg) return 0;
    int dots = 0;
    for (const char *c = arg; c < eq; c++) {
        if (*c == '.') {
            if (c == arg || c[-1] == '.' || c + 1 == eq) return 0;
            dots++;
        } else if (!islower((unsigned char)*c) && !isdigit((unsigned char)*c) && *c != '_') {
            return 0;
        }
    }
    return dots == 1;
}

/* Parses one row (NUL-terminated, tabs intact) into r. */
static int sweep_tsv_row(const char *name, int line, int id, char *row, sweep_run *r) {
    int n_fields = 1;
    for (char *c = row; *c; c++)
        n_fields += *c == '\t';
    if (n_fields < 5)
        return FAIL("%s:%d: %d fields; a run has id, dir, config and at least the args run.seed "
                    "and run.dir",
                    name, line, n_fields);
    char **f = NULL;
    CHECK(XCALLOC(&f, (size_t)n_fields));
    int k = 0;
    for (char *s = row;; s++) {
        f[k++] = s;
        s = strchr(s, '\t');
        if (!s) break;
        *s = '\0';
    }
    int rc = FSNN_OK;
    for (int i = 0; rc == 0 && i < n_fields; i++)
        if (!*f[i]) rc = FAIL("%s:%d: field %d is empty", name, line, i + 1);
    char expect[16];
    snprintf(expect, sizeof expect, "%d", id);
    if (rc == 0 && strcmp(f[0], expect))
        rc = FAIL("%s:%d: id '%.20s' where %d was expected (ids are 0, 1, 2, ... in order)", name,
                  line, f[0], id);
    if (rc == 0 && (f[1][0] != '/' || f[2][0] != '/'))
        rc = FAIL("%s:%d: the %s '%.80s' is not an absolute path", name, line,
                  f[1][0] != '/' ? "dir" : "config", f[1][0] != '/' ? f[1] : f[2]);
    int seeds = 0, dirs = 0;
    for (int i = 3; rc == 0 && i < n_fields; i++) {
        if (!sweep_arg_ok(f[i]))
            rc = FAIL("%s:%d: argument %d '%.80s' is not section.key=value", name, line, i - 2,
                      f[i]);
        else if (!strncmp(f[i], "run.seed=", 9))
            seeds++;
        else if (!strncmp(f[i], "run.dir=", 8)) {
            dirs++;
            if (strcmp(f[i] + 8, f[1]))
                rc = FAIL("%s:%d: run.dir=%.80s differs from the dir column %.80s", name, line,
                          f[i] + 8, f[1]);
        }
    }
    if (rc == 0 && (seeds != 1 || dirs != 1))
        rc = FAIL("%s:%d: a run needs exactly one run.seed and one run.dir argument (found %d "
                  "and %d)",
                  name, line, seeds, dirs);
    if (rc == 0) {
        r->dir = sweep_strndup(f[1], strlen(f[1]));
        r->config = sweep_strndup(f[2], strlen(f[2]));
        rc = XCALLOC(&r->args, (size_t)n_fields - 3);
        for (int i = 3; rc == 0 && i < n_fields; i++) {
            r->args[r->n_args] = sweep_strndup(f[i], strlen(f[i]));
            if (!r->args[r->n_args++]) rc = FAIL("out of memory");
        }
        if (rc == 0 && (!r->dir || !r->config)) rc = FAIL("out of memory");
    }
    free(f);
    return rc;
}

int sweep_tsv_parse(const char *name, const char *text, size_t len, sweep_table *t) {
    memset(t, 0, sizeof *t);
    if (len == 0)
        return FAIL("%s: empty; expected the header line 'id<TAB>dir<TAB>config<TAB>args'", name);
    if (text[len - 1] != '\n')
        return FAIL("%s: the last line has no line end (a file cut short?)", name);
    int lines = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\n') {
            lines++;
            continue;
        }
        if (c == '\t' || (c >= 0x20 && c < 0x7f)) continue;
        char shown[16];
        sweep_show_char(c, shown, sizeof shown);
        return FAIL("%s:%d: %s%s: runs.tsv is printable ASCII, fields separated by tabs", name,
                    lines + 1, shown,
                    c == '\r' ? " (CR: a Windows line end?)"
                    : c == 0  ? " (NUL)"
                              : "");
    }
    size_t head = strlen(sweep_tsv_header);
    if (len < head + 1 || memcmp(text, sweep_tsv_header, head) || text[head] != '\n')
        return FAIL("%s:1: expected the header 'id<TAB>dir<TAB>config<TAB>args'", name);
    if (lines < 2) return FAIL("%s: no runs after the header", name);
    if (lines - 1 > SWEEP_RUNS_MAX) return FAIL("%s: more than %d runs", name, SWEEP_RUNS_MAX);
    CHECK(XCALLOC(&t->runs, (size_t)lines - 1));
    char *row = NULL;
    int rc = FSNN_OK;
    const char *s = text + head + 1, *end = text + len;
    for (int line = 2; rc == 0 && s < end; line++) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t n = (size_t)(nl - s);
        if (n == 0) {
            rc = FAIL("%s:%d: empty line", name, line);
            break;
        }
        free(row);
        row = sweep_strndup(s, n);
        if (!row) rc = FAIL("out of memory");
        if (rc == 0) rc = sweep_tsv_row(name, line, t->n, row, &t->runs[t->n]);
        t->n++;
        s = nl + 1;
    }
    free(row);
    if (rc == 0) {
        /* Two rows with one directory would train into each other. */
        rc = sweep_check_unique(name, t, "");
    }
    if (rc != 0) {
        status_trace(__FILE__, __LINE__);
        sweep_table_free(t);
    }
    return rc;
}

int sweep_tsv_read(const char *path, sweep_table *t) {
    char *text = NULL;
    size_t len = 0;
    memset(t, 0, sizeof *t);
    CHECK(sweep_read_file(path, path, (size_t)SWEEP_TSV_MAX, &text, &len));
    int rc = sweep_tsv_parse(path, text, len, t);
    free(text);
    CHECK(rc);
    return FSNN_OK;
}
