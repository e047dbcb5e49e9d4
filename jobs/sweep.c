/* sweep: sweep files (inih) read and checked; sweep_grid.c expands them
 * into runs, sweep_tsv.c writes and reads runs.tsv.
 *
 * The sweep file is screened byte by byte before inih sees it: a value
 * travels into argv arrays, file names and SLURM's command line, so
 * everything that could change a command's meaning somewhere downstream
 * (quotes, ';', '$', '`', '\', control characters, non-ASCII bytes) is
 * refused with its line and column, even though no shell is involved. */
#include "sweep.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h> // defines: ini_parse_stream, INI_MAX_LINE

#include "config.h"     // defines: config_defaults, config_load, config_set_key, config_syntax_why
#include "fsutil.h"     // defines: fsutil_is_file
#include "status.h"     // defines: FAIL, CHECK, XCALLOC
#include "sweep_impl.h" // defines: sweep_parse, sweep_param, sweep_expand, sweep_check_unique

#define SWEEP_FILE_MAX (1 << 20)
#define SWEEP_LINE_MAX (INI_MAX_LINE - 3)
#define SWEEP_SEEDS_MAX 1000
#define SWEEP_SAMPLES_MAX 10000

static const char *const sweep_kind_names[] = {"[grid]", "[random]", "[set]"};

/* Where each key of [sweep] and [slurm] lives, and its name. */
static const struct {
    const char *section, *name;
} sweep_keys[SK_N] = {
    [SK_BASE] = {"sweep", "base"},         [SK_SEEDS] = {"sweep", "seeds"},
    [SK_DIR] = {"sweep", "dir"},           [SK_SAMPLES] = {"sweep", "samples"},
    [SK_NAME] = {"sweep", "name"},         [SK_SEED] = {"sweep", "seed"},
    [SK_NTASKS] = {"slurm", "ntasks"},     [SK_CPUS] = {"slurm", "cpus_per_task"},
    [SK_TIME] = {"slurm", "time"},         [SK_PARTITION] = {"slurm", "partition"},
    [SK_THROTTLE] = {"slurm", "throttle"}, [SK_SIGNAL] = {"slurm", "signal_seconds"},
};

static void sweep_error(sweep_parse *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void sweep_error(sweep_parse *p, const char *fmt, ...) {
    if (p->err_line) return;
    p->err_line = p->line;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof p->err, fmt, ap);
    va_end(ap);
}

/* ---- characters ---- */

/* Characters refused anywhere in a sweep file outside comment lines. */
static const char sweep_banned[] = "\"'`$;\\";

/* What is wrong with byte c in a value, or NULL: only printable ASCII
 * without sweep_banned. */
static const char *sweep_char_problem(unsigned char c) {
    if (c == '\t') return "a tab (use spaces)";
    if (c < 0x20 || c == 0x7f) return "a control character";
    if (c >= 0x80) return "a non-ASCII byte (sweep files and runs.tsv are ASCII)";
    if (strchr(sweep_banned, c))
        return "not allowed: quotes, ';', '$', '`' and '\\' could change the meaning of a "
               "command line";
    return NULL;
}

/* Describes byte c for a message without printing it raw. */
void sweep_show_char(unsigned char c, char *buf, size_t size) {
    if (c > 0x20 && c < 0x7f)
        snprintf(buf, size, "'%c'", c);
    else
        snprintf(buf, size, "byte 0x%02x", c);
}

/* Checks a path or value that goes into argv and runs.tsv; `what` names it. */
static int sweep_check_text(const char *what, const char *s, const char *extra_banned, char *why,
                            size_t size) {
    for (size_t i = 0; s[i]; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *problem = sweep_char_problem(c);
        if (!problem && extra_banned && strchr(extra_banned, c))
            problem = "not allowed here (sbatch reads '%' in file names as a pattern)";
        if (problem) {
            char shown[16];
            sweep_show_char(c, shown, sizeof shown);
            snprintf(why, size, "%s: %s at character %zu: %s", what, shown, i + 1, problem);
            return FSNN_ERR;
        }
    }
    return FSNN_OK;
}

/* ---- reading the file ---- */

/* inih's line reader: counts lines, screens bytes, drops leading blanks (so
 * an indented key is not inih's continuation of the previous value) and a
 * CR before the line end, and refuses lines too long for inih. */
static char *sweep_reader(char *str, int num, void *stream) {
    sweep_parse *p = stream;
    if (p->pos >= p->len) return NULL;
    const char *start = p->text + p->pos;
    const char *nl = memchr(start, '\n', p->len - p->pos);
    size_t len = nl ? (size_t)(nl - start) : p->len - p->pos;
    p->pos += len + (nl != NULL);
    p->line++;
    str[0] = '\0';
    if (len > 0 && start[len - 1] == '\r') len--;
    size_t lead = 0;
    while (lead < len && start[lead] == ' ')
        lead++;
    int comment = lead == len || start[lead] == ';' || start[lead] == '#';
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)start[i];
        if (c == '\0') {
            sweep_error(p, "NUL byte at column %zu", i + 1);
            return str;
        }
        /* Comments may hold any printable text (e.g. '±' in UTF-8). */
        if (comment && c >= 0x20 && c != 0x7f) continue;
        const char *problem = sweep_char_problem(c);
        if (problem) {
            char shown[16];
            sweep_show_char(c, shown, sizeof shown);
            sweep_error(p, "%s at column %zu: %s", shown, i + 1, problem);
            return str;
        }
    }
    len -= lead;
    start += lead;
    size_t room = (size_t)num - 2 < SWEEP_LINE_MAX ? (size_t)num - 2 : SWEEP_LINE_MAX;
    if (len > room) {
        sweep_error(p, "line longer than %zu characters", room);
        return str;
    }
    memcpy(str, start, len);
    str[len] = '\0';
    return str;
}

/* ---- values ---- */

/* Parses a whole decimal integer in [lo, hi]. */
static int sweep_parse_int(const char *s, long long lo, long long hi, long long *v) {
    if (!isdigit((unsigned char)s[0]) && !(s[0] == '-' && isdigit((unsigned char)s[1])))
        return FSNN_ERR;
    char *end;
    errno = 0;
    *v = strtoll(s, &end, 10);
    if (*end || errno == ERANGE || *v < lo || *v > hi) return FSNN_ERR;
    return FSNN_OK;
}

static int sweep_parse_real(const char *s, double *v) {
    if (!*s || isspace((unsigned char)*s)) return FSNN_ERR;
    char *end;
    *v = strtod(s, &end);
    return (*end || end == s || !isfinite(*v)) ? FSNN_ERR : FSNN_OK;
}

void sweep_free_list(char **list, int n) {
    if (!list) return;
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

char *sweep_strndup(const char *s, size_t len) {
    char *d = malloc(len + 1);
    if (!d) return NULL;
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

/* 1 if s[a..b) is one parenthesised group, "( ... )". */
static int sweep_wrapped(const char *s, size_t a, size_t b) {
    if (b < a + 2 || s[a] != '(' || s[b - 1] != ')') return 0;
    int depth = 0;
    for (size_t i = a; i < b - 1; i++) {
        depth += (s[i] == '(') - (s[i] == ')');
        if (depth == 0) return 0;
    }
    return 1;
}

static void sweep_trim(const char *s, size_t *a, size_t *b) {
    while (*a < *b && s[*a] == ' ')
        (*a)++;
    while (*b > *a && s[*b - 1] == ' ')
        (*b)--;
}

/* Splits `s` at the commas outside parentheses into trimmed entries; an
 * entry wrapped whole in parentheses loses them, so that a value holding
 * commas (a list) can be written "(30, 60, 90)", and "()" is empty. */
static int sweep_split(const char *s, char ***out, int *n, char *why, size_t size) {
    *out = NULL;
    *n = 0;
    size_t len = strlen(s);
    int depth = 0, count = 1;
    for (size_t i = 0; i < len; i++) {
        depth += (s[i] == '(') - (s[i] == ')');
        if (depth < 0) {
            snprintf(why, size, "')' at character %zu has no matching '('", i + 1);
            return FSNN_ERR;
        }
        count += s[i] == ',' && depth == 0;
    }
    if (depth != 0) {
        snprintf(why, size, "a '(' has no matching ')'");
        return FSNN_ERR;
    }
    char **list = calloc((size_t)count, sizeof *list);
    if (!list) {
        snprintf(why, size, "out of memory");
        return FSNN_ERR;
    }
    size_t begin = 0;
    for (int k = 0; k < count; k++) {
        size_t a = begin, b = begin;
        for (depth = 0; b < len && !(s[b] == ',' && depth == 0); b++)
            depth += (s[b] == '(') - (s[b] == ')');
        begin = b + 1;
        sweep_trim(s, &a, &b);
        if (a == b) {
            snprintf(why, size, "entry %d is empty", k + 1);
            sweep_free_list(list, k);
            return FSNN_ERR;
        }
        if (sweep_wrapped(s, a, b)) {
            a++, b--;
            sweep_trim(s, &a, &b);
        }
        list[k] = sweep_strndup(s + a, b - a);
        if (!list[k]) {
            snprintf(why, size, "out of memory");
            sweep_free_list(list, k);
            return FSNN_ERR;
        }
    }
    *out = list;
    *n = count;
    return FSNN_OK;
}

/* Parses a [random] value: uniform(lo, hi), loguniform(lo, hi), int(lo, hi)
 * or choice(a, b, ...). */
static int sweep_parse_dist(sweep_param *q, const char *value, char *why, size_t size) {
    static const char *const names[] = {"uniform", "loguniform", "int", "choice"};
    size_t len = strlen(value), name_len = 0;
    while (isalpha((unsigned char)value[name_len]))
        name_len++;
    const char *open = value + name_len;
    while (*open == ' ')
        open++;
    int dist = -1;
    for (int i = 0; i < 4; i++)
        if (name_len == strlen(names[i]) && !strncmp(value, names[i], name_len)) dist = i;
    if (dist < 0 || *open != '(' || len == 0 || value[len - 1] != ')') {
        snprintf(why, size,
                 "'%.80s' is not a distribution; expected uniform(lo, hi), loguniform(lo, hi), "
                 "int(lo, hi) or choice(a, b, ...)",
                 value);
        return FSNN_ERR;
    }
    q->dist = (sweep_dist)dist;
    char *inner = sweep_strndup(open + 1, (size_t)(value + len - 1 - (open + 1)));
    if (!inner) {
        snprintf(why, size, "out of memory");
        return FSNN_ERR;
    }
    char sub[SWEEP_WHY_MAX];
    int rc = sweep_split(inner, &q->values, &q->n, sub, sizeof sub);
    free(inner);
    if (rc) {
        snprintf(why, size, "%s(...): %.600s", names[dist], sub);
        return FSNN_ERR;
    }
    if (q->dist == SWEEP_CHOICE) return FSNN_OK;
    if (q->n != 2) {
        snprintf(why, size, "%s() takes two numbers, lo and hi; got %d", names[dist], q->n);
        return FSNN_ERR;
    }
    if (q->dist == SWEEP_INT) {
        /* Bounded so that hi - lo + 1 and the draw stay exact in a double. */
        const long long lim = 1LL << 52;
        if (sweep_parse_int(q->values[0], -lim, lim, &q->ilo) ||
            sweep_parse_int(q->values[1], -lim, lim, &q->ihi)) {
            snprintf(why, size, "int(%.40s, %.40s): lo and hi must be integers within +-2^52",
                     q->values[0], q->values[1]);
            return FSNN_ERR;
        }
        if (q->ilo > q->ihi) {
            snprintf(why, size, "int(%lld, %lld): lo is above hi", q->ilo, q->ihi);
            return FSNN_ERR;
        }
        return FSNN_OK;
    }
    if (sweep_parse_real(q->values[0], &q->lo) || sweep_parse_real(q->values[1], &q->hi)) {
        snprintf(why, size, "%s(%.40s, %.40s): lo and hi must be finite numbers", names[dist],
                 q->values[0], q->values[1]);
        return FSNN_ERR;
    }
    if (!(q->lo < q->hi)) {
        snprintf(why, size, "%s(%g, %g): lo must be below hi", names[dist], q->lo, q->hi);
        return FSNN_ERR;
    }
    if (q->dist == SWEEP_LOGUNIFORM && !(q->lo > 0)) {
        snprintf(why, size, "loguniform(%g, %g): lo must be above 0", q->lo, q->hi);
        return FSNN_ERR;
    }
    return FSNN_OK;
}

/* ---- the handler ---- */

static sweep_param *sweep_find_param(sweep_parse *p, const char *key) {
    for (int i = 0; i < p->n_params; i++)
        if (!strcmp(p->params[i].key, key)) return &p->params[i];
    return NULL;
}

/* A key of [grid], [random] or [set]: a config key with its values. */
static int sweep_param_line(sweep_parse *p, sweep_kind kind, const char *key, const char *value) {
    char why[SWEEP_WHY_MAX];
    if (strlen(key) >= SWEEP_KEY_MAX || config_set_key(key, NULL, &p->scratch, why, sizeof why)) {
        if (strlen(key) >= SWEEP_KEY_MAX) snprintf(why, sizeof why, "key too long");
        sweep_error(p, "%s %s", sweep_kind_names[kind], why);
        return 0;
    }
    if (!strcmp(key, "run.seed") || !strcmp(key, "run.dir")) {
        sweep_error(p,
                    "%s key '%s' is set by the sweep itself (run.seed = 1..seeds, run.dir = "
                    "SWEEP_DIR/runs/<run name>); leave it out",
                    sweep_kind_names[kind], key);
        return 0;
    }
    const sweep_param *prev = sweep_find_param(p, key);
    if (prev) {
        sweep_error(p, "key '%s': repeated (first set at line %d in %s)", key, prev->line,
                    sweep_kind_names[prev->kind]);
        return 0;
    }
    if (p->n_params == p->cap) {
        int cap = p->cap ? 2 * p->cap : 16;
        sweep_param *grown = realloc(p->params, (size_t)cap * sizeof *grown);
        if (!grown) {
            sweep_error(p, "out of memory");
            return 0;
        }
        p->params = grown;
        p->cap = cap;
    }
    sweep_param *q = &p->params[p->n_params++];
    memset(q, 0, sizeof *q);
    snprintf(q->key, sizeof q->key, "%s", key);
    q->line = p->line;
    q->kind = kind;
    int rc = FSNN_OK;
    if (kind == SWEEP_SET) {
        q->n = 1;
        q->values = calloc(1, sizeof *q->values);
        if (q->values) q->values[0] = sweep_strndup(value, strlen(value));
        if (!q->values || !q->values[0]) {
            sweep_error(p, "out of memory");
            return 0;
        }
    } else if (kind == SWEEP_GRID) {
        if (!*value) {
            sweep_error(p, "[grid] key '%s': no values; expected v1, v2, ...", key);
            return 0;
        }
        rc = sweep_split(value, &q->values, &q->n, why, sizeof why);
    } else {
        rc = sweep_parse_dist(q, value, why, sizeof why);
    }
    if (rc) {
        sweep_error(p, "%s key '%s': %s", sweep_kind_names[kind], key, why);
        return 0;
    }
    /* The values a [random] key draws are checked once they are drawn. */
    int check = kind != SWEEP_RANDOM || q->dist == SWEEP_CHOICE;
    for (int i = 0; check && i < q->n; i++)
        if (config_set_key(key, q->values[i], &p->scratch, why, sizeof why)) {
            if (q->n > 1)
                sweep_error(p, "%s entry %d: %s", sweep_kind_names[kind], i + 1, why);
            else
                sweep_error(p, "%s %s", sweep_kind_names[kind], why);
            return 0;
        }
    return 1;
}

/* SLURM's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S. */
static int sweep_slurm_time_ok(const char *s) {
    size_t i = 0;
    int groups = 0, day = 0;
    for (;;) {
        size_t d = 0;
        while (isdigit((unsigned char)s[i]))
            i++, d++;
        if (d == 0 || d > 6) return 0;
        groups++;
        if (s[i] == '-' && !day && groups == 1) {
            day = 1;
            groups = 0;
            i++;
            continue;
        }
        if (s[i] == ':') {
            i++;
            continue;
        }
        break;
    }
    return s[i] == '\0' && groups <= 3 && !(day && groups > 3);
}

static int sweep_word_ok(const char *s, const char *extra) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && !strchr(extra, *s)) return 0;
    return 1;
}

/* An integer key of [sweep] or [slurm]: seeds, samples, ntasks,
 * cpus_per_task, throttle, signal_seconds. */
static int sweep_setting_int(sweep_parse *p, sweep_key_id k, const char *value) {
    sweep_plan *plan = p->plan;
    static const long long range[SK_N][2] = {
        [SK_SEEDS] = {1, SWEEP_SEEDS_MAX}, [SK_SAMPLES] = {1, SWEEP_SAMPLES_MAX},
        [SK_NTASKS] = {1, 100000},         [SK_CPUS] = {1, 100000},
        [SK_THROTTLE] = {1, 100000},       [SK_SIGNAL] = {1, 65535},
    };
    long long v = 0;
    if (sweep_parse_int(value, range[k][0], range[k][1], &v)) {
        sweep_error(p, "[%s] key '%s': '%.80s' is not an integer in %lld..%lld",
                    sweep_keys[k].section, sweep_keys[k].name, value, range[k][0], range[k][1]);
        return 0;
    }
    int *field[SK_N] = {[SK_SEEDS] = &plan->seeds,
                        [SK_SAMPLES] = &plan->samples,
                        [SK_NTASKS] = &plan->slurm.ntasks,
                        [SK_CPUS] = &plan->slurm.cpus_per_task,
                        [SK_THROTTLE] = &plan->slurm.throttle,
                        [SK_SIGNAL] = &plan->slurm.signal_seconds};
    *field[k] = (int)v;
    return 1;
}

/* A key of [sweep] or [slurm]. */
static int sweep_setting(sweep_parse *p, sweep_key_id k, const char *value) {
    sweep_plan *plan = p->plan;
    const char *key = sweep_keys[k].name;
    if (p->key_line[k]) {
        sweep_error(p, "[%s] key '%s': repeated (first set at line %d)", sweep_keys[k].section, key,
                    p->key_line[k]);
        return 0;
    }
    p->key_line[k] = p->line;
    switch (k) {
    case SK_BASE:
    case SK_DIR: {
        char *dst = k == SK_BASE ? p->base : p->dir;
        if (!*value || strlen(value) >= SWEEP_PATH_MAX) {
            sweep_error(p, "[sweep] key '%s': %s", key, *value ? "path too long" : "empty");
            return 0;
        }
        snprintf(dst, SWEEP_PATH_MAX, "%s", value);
        return 1;
    }
    case SK_NAME:
        if (strlen(value) >= SWEEP_NAME_MAX || !isalnum((unsigned char)value[0]) ||
            !sweep_word_ok(value, "._+-")) {
            sweep_error(p,
                        "[sweep] key 'name': '%.80s' is not a sweep name: 1 to %d characters "
                        "of A-Z a-z 0-9 . _ + -, starting with a letter or digit",
                        value, SWEEP_NAME_MAX - 1);
            return 0;
        }
        snprintf(plan->name, sizeof plan->name, "%s", value);
        return 1;
    case SK_SEED: {
        char *end = NULL;
        errno = 0;
        unsigned long long u = isdigit((unsigned char)value[0]) ? strtoull(value, &end, 10) : 0;
        if (!end || *end || errno == ERANGE) {
            sweep_error(p, "[sweep] key 'seed': '%.80s' is not an integer in 0..2^64-1", value);
            return 0;
        }
        plan->seed = (uint64_t)u;
        return 1;
    }
    case SK_TIME:
        if (strlen(value) >= sizeof plan->slurm.time || !sweep_slurm_time_ok(value)) {
            sweep_error(p,
                        "[slurm] key 'time': '%.80s' is not a SLURM time limit; expected "
                        "minutes, M:S, H:M:S, D-H, D-H:M or D-H:M:S, e.g. 12:00:00",
                        value);
            return 0;
        }
        snprintf(plan->slurm.time, sizeof plan->slurm.time, "%s", value);
        return 1;
    case SK_PARTITION:
        if (strlen(value) >= sizeof plan->slurm.partition || !sweep_word_ok(value, "._,-")) {
            sweep_error(p,
                        "[slurm] key 'partition': '%.80s' is not a partition name; expected "
                        "A-Z a-z 0-9 . _ - (comma-separated for several), at most %zu characters",
                        value, sizeof plan->slurm.partition - 1);
            return 0;
        }
        snprintf(plan->slurm.partition, sizeof plan->slurm.partition, "%s", value);
        return 1;
    default:
        return sweep_setting_int(p, k, value);
    }
}

/* Lists the keys of [section] into why[*used..size). */
static void sweep_list_keys(const char *section, char *why, size_t size, size_t *used) {
    int n = 0;
    for (int k = 0; k < SK_N && *used < size; k++)
        if (!strcmp(sweep_keys[k].section, section))
            *used += (size_t)snprintf(why + *used, size - *used, "%s%s", n++ ? ", " : "",
                                      sweep_keys[k].name);
}

static int sweep_handler(void *user, const char *section, const char *name, const char *value) {
    sweep_parse *p = user;
    if (p->err_line) return 1;
    if (!strcmp(section, "grid")) return sweep_param_line(p, SWEEP_GRID, name, value);
    if (!strcmp(section, "random")) return sweep_param_line(p, SWEEP_RANDOM, name, value);
    if (!strcmp(section, "set")) return sweep_param_line(p, SWEEP_SET, name, value);
    if (!strcmp(section, "sweep") || !strcmp(section, "slurm")) {
        for (int k = 0; k < SK_N; k++)
            if (!strcmp(sweep_keys[k].section, section) && !strcmp(sweep_keys[k].name, name))
                return sweep_setting(p, (sweep_key_id)k, value);
        char why[SWEEP_WHY_MAX];
        size_t used = 0;
        if (!strcmp(section, "slurm") && !strcmp(name, "extra"))
            used = (size_t)snprintf(why, sizeof why,
                                    "[slurm] key 'extra': free-form sbatch options are not "
                                    "allowed; [slurm] has ");
        else
            used = (size_t)snprintf(why, sizeof why, "[%s] key '%.80s': unknown key; [%s] has ",
                                    section, name, section);
        sweep_list_keys(section, why, sizeof why, &used);
        sweep_error(p, "%s", why);
        return 0;
    }
    if (!*section) {
        sweep_error(p, "key '%.80s' is outside any [section]", name);
        return 0;
    }
    char why[SWEEP_WHY_MAX], key[2 * SWEEP_KEY_MAX];
    snprintf(key, sizeof key, "%s.%s", section, name);
    int is_config = config_set_key(key, NULL, &p->scratch, why, sizeof why) == 0;
    sweep_error(p,
                "unknown section [%.60s]; a sweep file has [sweep], [grid], [random], [set] "
                "and [slurm]%s",
                section,
                is_config ? " (config keys go into [grid], [random] or [set] as section.key, "
                            "e.g. [set] train.epochs = 2)"
                          : "");
    return 0;
}

/* ---- paths ---- */

/* cwd/path (or path when absolute) without "." and ".." components and
 * repeated '/', as a string; the path need not exist. */
static int sweep_abs_path(const char *cwd, const char *path, char *out, size_t size) {
    char joined[2 * SWEEP_PATH_MAX + 2];
    snprintf(joined, sizeof joined, "%s/%s", path[0] == '/' ? "" : cwd, path);
    size_t used = 0;
    out[0] = '\0';
    for (char *s = joined; *s;) {
        while (*s == '/')
            s++;
        size_t n = strcspn(s, "/");
        int dot = n == 1 && s[0] == '.', dotdot = n == 2 && s[0] == '.' && s[1] == '.';
        if (dotdot) {
            while (used > 0 && out[used - 1] != '/')
                used--;
            if (used > 0) used--;
            out[used] = '\0';
        } else if (n > 0 && !dot) {
            if (used + 1 + n >= size) return FAIL("path %.80s... is too long", joined);
            out[used++] = '/';
            memcpy(out + used, s, n);
            used += n;
            out[used] = '\0';
        }
        s += n;
    }
    if (used == 0) snprintf(out, size, "/");
    return FSNN_OK;
}

/* The file name of `path` without its folder and a final ".ini". */
static void sweep_stem(const char *path, char *out, size_t size) {
    const char *slash = strrchr(path, '/');
    const char *base = slash ? slash + 1 : path;
    size_t len = strlen(base);
    if (len > 4 && !strcmp(base + len - 4, ".ini")) len -= 4;
    snprintf(out, size, "%.*s", (int)len, base);
}

/* ---- loading ---- */

/* Reads file `path` (at most max bytes); `name` stands for it in messages. */
int sweep_read_file(const char *path, const char *name, size_t max, char **text, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return FAIL("%s: cannot open: %s", name, strerror(errno));
    int rc = XCALLOC(text, max + 2);
    *len = rc ? 0 : fread(*text, 1, max + 1, f);
    if (rc == 0 && ferror(f)) rc = FAIL("%s: cannot read: %s", name, strerror(errno));
    if (rc == 0 && *len > max) rc = FAIL("%s: larger than %zu bytes", name, max);
    fclose(f);
    if (rc != 0) {
        free(*text);
        *text = NULL;
    }
    return rc;
}

/* Loads the base config and checks the sweep's own settings. */
static int sweep_settle(sweep_parse *p, const char *cwd, fsnn_cfg *base_cfg) {
    sweep_plan *plan = p->plan;
    char why[SWEEP_WHY_MAX];
    if (!p->key_line[SK_BASE])
        return FAIL("%s: [sweep] base is missing: the config every run starts from, e.g. base = "
                    "../fmnist_fc_lif.ini",
                    p->file);
    int n_random = 0;
    for (int i = 0; i < p->n_params; i++)
        n_random += p->params[i].kind == SWEEP_RANDOM;
    if (n_random && !plan->samples)
        return FAIL("%s:%d: [random] needs [sweep] samples = K (the number of random points)",
                    p->file, p->params[0].line);
    if (!n_random && plan->samples)
        return FAIL("%s:%d: [sweep] samples is set but there is no [random] section", p->file,
                    p->key_line[SK_SAMPLES]);
    char stem[SWEEP_PATH_MAX];
    sweep_stem(p->file, stem, sizeof stem);
    if (!p->key_line[SK_NAME]) {
        if (strlen(stem) >= SWEEP_NAME_MAX || !isalnum((unsigned char)stem[0]) ||
            !sweep_word_ok(stem, "._+-"))
            return FAIL("%s: the sweep name '%.80s' (from the file name) is not a sweep name: 1 "
                        "to %d characters of A-Z a-z 0-9 . _ + -; set [sweep] name",
                        p->file, stem, SWEEP_NAME_MAX - 1);
        snprintf(plan->name, sizeof plan->name, "%.*s", SWEEP_NAME_MAX - 1, stem);
    }
    int dir_line = p->key_line[SK_DIR];
    CHECK(sweep_abs_path(cwd, dir_line ? p->dir : stem, plan->dir, sizeof plan->dir));
    if (sweep_check_text("the sweep directory", plan->dir, "%", why, sizeof why))
        return dir_line ? FAIL("%s:%d: %s (%s)", p->file, dir_line, why, plan->dir)
                        : FAIL("%s: %s (%s, in the current directory); set [sweep] dir", p->file,
                               why, plan->dir);
    /* The base config: relative to the sweep file's folder. */
    char folder[SWEEP_PATH_MAX], joined[2 * SWEEP_PATH_MAX + 2];
    const char *slash = strrchr(p->abs_file, '/');
    if (slash == p->abs_file)
        snprintf(folder, sizeof folder, "/");
    else
        snprintf(folder, sizeof folder, "%.*s", (int)(slash - p->abs_file), p->abs_file);
    if (p->base[0] == '/')
        snprintf(joined, sizeof joined, "%s", p->base);
    else
        snprintf(joined, sizeof joined, "%s/%s", folder, p->base);
    int line = p->key_line[SK_BASE];
    if (sweep_abs_path(cwd, joined, plan->base, sizeof plan->base) || !fsutil_is_file(plan->base))
        return FAIL("%s:%d: [sweep] base '%s': no such file %s (a relative base is taken in the "
                    "sweep file's folder)",
                    p->file, line, p->base, joined);
    if (sweep_check_text("the base config's path", plan->base, NULL, why, sizeof why))
        return FAIL("%s:%d: %s (%s)", p->file, line, why, plan->base);
    config_defaults(base_cfg);
    if (config_load(plan->base, base_cfg)) {
        char msg[SWEEP_WHY_MAX];
        snprintf(msg, sizeof msg, "%s", status_message());
        status_clear();
        return FAIL("%s:%d: the base config is not valid: %s", p->file, line, msg);
    }
    return FSNN_OK;
}

static void sweep_params_free(sweep_parse *p) {
    for (int i = 0; i < p->n_params; i++) {
        sweep_free_list(p->params[i].values, p->params[i].n);
        sweep_free_list(p->params[i].drawn, p->plan->samples);
    }
    free(p->params);
}

int sweep_load(const char *path, const char *cwd, sweep_plan *plan) {
    memset(plan, 0, sizeof *plan);
    plan->seeds = 1;
    plan->seed = 1;
    plan->slurm.ntasks = 1;
    plan->slurm.signal_seconds = 300;
    if (strlen(path) >= sizeof plan->file) return FAIL("%.80s...: path too long", path);
    snprintf(plan->file, sizeof plan->file, "%s", path);
    /* Relative paths are all taken in cwd: the file, its dir, its base. */
    char abs_file[SWEEP_PATH_MAX];
    CHECK(sweep_abs_path(cwd, path, abs_file, sizeof abs_file));
    CHECK(sweep_read_file(abs_file, path, SWEEP_FILE_MAX, &plan->text, &plan->text_len));
    sweep_parse *p = NULL;
    int rc = XCALLOC(&p, 1);
    if (rc == 0) {
        p->file = path;
        p->abs_file = abs_file;
        p->text = plan->text;
        p->len = plan->text_len;
        p->plan = plan;
        config_defaults(&p->scratch);
        int ini = ini_parse_stream(sweep_reader, p, sweep_handler, p);
        if (ini < 0) {
            rc = FAIL("%s: out of memory while parsing", path);
        } else if (ini > 0 && (p->err_line == 0 || ini < p->err_line)) {
            char why[SWEEP_WHY_MAX];
            config_syntax_why(p->text, p->len, ini, why, sizeof why);
            rc = FAIL("%s:%d: %s", path, ini, why);
        } else if (p->err_line) {
            rc = FAIL("%s:%d: %s", path, p->err_line, p->err);
        }
    }
    fsnn_cfg *base_cfg = NULL;
    if (rc == 0) rc = XCALLOC(&base_cfg, 1);
    if (rc == 0) rc = sweep_settle(p, cwd, base_cfg);
    if (rc == 0) rc = sweep_expand(p, base_cfg);
    free(base_cfg);
    if (p) sweep_params_free(p);
    free(p);
    if (rc != 0) {
        status_trace(__FILE__, __LINE__);
        sweep_plan_free(plan);
    }
    return rc;
}

void sweep_plan_free(sweep_plan *plan) {
    sweep_table_free(&plan->table);
    free(plan->text);
    plan->text = NULL;
    plan->text_len = 0;
}
