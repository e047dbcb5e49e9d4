/* sweep: sweep files (inih) expanded into runs, and runs.tsv.
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

#include "cfg.h"    // defines: fsnn_cfg
#include "config.h" // defines: config_defaults, config_load, config_set_key, config_override
#include "fsutil.h" // defines: fsutil_write_atomic, fsutil_is_file
#include "rng.h"    // defines: rng_uniform, RNG_SWEEP
#include "status.h" // defines: FAIL, CHECK, XCALLOC

#define SWEEP_FILE_MAX (1 << 20)
#define SWEEP_TSV_MAX (64L << 20)
#define SWEEP_LINE_MAX (INI_MAX_LINE - 3)
#define SWEEP_WHY_MAX 768
#define SWEEP_KEY_MAX 128
#define SWEEP_SEEDS_MAX 1000
#define SWEEP_SAMPLES_MAX 10000
/* A run name is one path component; file systems allow 255 bytes. */
#define SWEEP_RUN_NAME_MAX 200

typedef enum { SWEEP_GRID, SWEEP_RANDOM, SWEEP_SET } sweep_kind;
typedef enum { SWEEP_UNIFORM, SWEEP_LOGUNIFORM, SWEEP_INT, SWEEP_CHOICE } sweep_dist;

static const char *const sweep_kind_names[] = {"[grid]", "[random]", "[set]"};

/* One key of [grid], [random] or [set]. */
typedef struct {
    char key[SWEEP_KEY_MAX]; /* section.key of the config */
    int line;
    sweep_kind kind;
    sweep_dist dist;    /* [random] */
    double lo, hi;      /* uniform, loguniform */
    long long ilo, ihi; /* int */
    int n;              /* values: grid entries, choice items, 1 for [set] */
    char **values;      /* owned */
    const char *label;  /* in run names; points into key */
    char **drawn;       /* [random]: the value of each sample, owned */
} sweep_param;

/* The keys of [sweep] and [slurm]. */
typedef enum {
    SK_BASE,
    SK_SEEDS,
    SK_DIR,
    SK_SAMPLES,
    SK_NAME,
    SK_SEED,
    SK_NTASKS,
    SK_CPUS,
    SK_TIME,
    SK_PARTITION,
    SK_THROTTLE,
    SK_SIGNAL,
    SK_N
} sweep_key_id;

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

typedef struct {
    const char *file;     /* in messages */
    const char *abs_file; /* absolute, lexically normalised */
    const char *text;
    size_t len, pos;
    int line;     /* the line inih is handling */
    int err_line; /* the first error (0 = none) and its text */
    char err[SWEEP_WHY_MAX];
    sweep_plan *plan;
    sweep_param *params;
    int n_params, cap;
    int key_line[SK_N]; /* where each [sweep]/[slurm] key was set */
    char base[SWEEP_PATH_MAX], dir[SWEEP_PATH_MAX];
    fsnn_cfg scratch; /* checks single values */
} sweep_parse;

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
static void sweep_show_char(unsigned char c, char *buf, size_t size) {
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

/* [A-Za-z0-9._=+-]: the characters of run names (the sweep interface). */
static int sweep_name_char(unsigned char c) {
    return isalnum(c) || c == '.' || c == '_' || c == '=' || c == '+' || c == '-';
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

static void sweep_free_list(char **list, int n) {
    if (!list) return;
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

static char *sweep_strndup(const char *s, size_t len) {
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

/* A key of [sweep] or [slurm]. */
static int sweep_setting(sweep_parse *p, sweep_key_id k, const char *value) {
    sweep_plan *plan = p->plan;
    const char *key = sweep_keys[k].name;
    long long v = 0;
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
        break;
    }
    static const long long range[SK_N][2] = {
        [SK_SEEDS] = {1, SWEEP_SEEDS_MAX}, [SK_SAMPLES] = {1, SWEEP_SAMPLES_MAX},
        [SK_NTASKS] = {1, 100000},         [SK_CPUS] = {1, 100000},
        [SK_THROTTLE] = {1, 100000},       [SK_SIGNAL] = {1, 65535},
    };
    if (sweep_parse_int(value, range[k][0], range[k][1], &v)) {
        sweep_error(p, "[%s] key '%s': '%.80s' is not an integer in %lld..%lld",
                    sweep_keys[k].section, key, value, range[k][0], range[k][1]);
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

/* ---- expansion ---- */

/* A run name under construction; overflow is noted, not written. */
typedef struct {
    char text[SWEEP_RUN_NAME_MAX + 1];
    size_t len;
    int overflow;
} sweep_name;

static void sweep_name_put(sweep_name *nm, char c) {
    if (nm->len + 1 >= sizeof nm->text) {
        nm->overflow = 1;
        return;
    }
    nm->text[nm->len++] = c;
    nm->text[nm->len] = '\0';
}

static void sweep_name_puts(sweep_name *nm, const char *s) {
    for (; *s; s++)
        sweep_name_put(nm, *s);
}

/* Appends the name form of `value`: runs of characters outside
 * [A-Za-z0-9._=+-] become one '+', left out at either end; a value of
 * such characters only becomes "+". */
static void sweep_name_value(sweep_name *nm, const char *value) {
    size_t start = nm->len;
    int pending = 0;
    for (const char *c = value; *c; c++) {
        if (!sweep_name_char((unsigned char)*c)) {
            pending = 1;
            continue;
        }
        if (pending && nm->len > start) sweep_name_put(nm, '+');
        pending = 0;
        sweep_name_put(nm, *c);
    }
    if (nm->len == start && *value) sweep_name_put(nm, '+');
}

/* Draws sample k of [random] parameter q (the j-th [random] key). */
static int sweep_draw(const sweep_plan *plan, const sweep_param *q, int j, int k, char *out,
                      size_t size) {
    double u = rng_uniform(plan->seed, RNG_SWEEP, 0, (uint32_t)k, (uint64_t)j);
    switch (q->dist) {
    case SWEEP_UNIFORM:
        snprintf(out, size, "%.6g", q->lo + u * (q->hi - q->lo));
        return FSNN_OK;
    case SWEEP_LOGUNIFORM:
        snprintf(out, size, "%.6g", exp(log(q->lo) + u * (log(q->hi) - log(q->lo))));
        return FSNN_OK;
    case SWEEP_INT: {
        long long span = q->ihi - q->ilo + 1, off = (long long)(u * (double)span);
        snprintf(out, size, "%lld", q->ilo + (off < span ? off : span - 1));
        return FSNN_OK;
    }
    case SWEEP_CHOICE: {
        int i = (int)(u * q->n);
        snprintf(out, size, "%s", q->values[i < q->n ? i : q->n - 1]);
        return FSNN_OK;
    }
    }
    return FAIL("internal error: distribution %d", (int)q->dist);
}

static int sweep_draw_all(sweep_parse *p) {
    sweep_plan *plan = p->plan;
    int j = 0;
    for (int i = 0; i < p->n_params; i++) {
        sweep_param *q = &p->params[i];
        if (q->kind != SWEEP_RANDOM) continue;
        CHECK(XCALLOC(&q->drawn, (size_t)plan->samples));
        for (int k = 0; k < plan->samples; k++) {
            char value[128], why[SWEEP_WHY_MAX];
            CHECK(sweep_draw(plan, q, j, k, value, sizeof value));
            if (config_set_key(q->key, value, &p->scratch, why, sizeof why))
                return FAIL("%s:%d: [random] sample %d draws '%s': %s", p->file, q->line, k, value,
                            why);
            q->drawn[k] = sweep_strndup(value, strlen(value));
            if (!q->drawn[k]) return FAIL("out of memory");
        }
        j++;
    }
    return FSNN_OK;
}

/* Run names show a key by its name without the section ("leak"); the
 * config's key names differ without their sections. */
static void sweep_labels(sweep_parse *p) {
    for (int i = 0; i < p->n_params; i++) {
        const char *dot = strchr(p->params[i].key, '.');
        p->params[i].label = dot ? dot + 1 : p->params[i].key;
    }
}

static char *sweep_arg(const char *key, const char *value) {
    size_t len = strlen(key) + 1 + strlen(value);
    char *arg = malloc(len + 1);
    if (arg) snprintf(arg, len + 1, "%s=%s", key, value);
    return arg;
}

/* Builds the run of grid point idx[], random sample k and `seed`: its args
 * ([grid], [random], [set] values, run.seed, run.dir) and its name
 * ("<label>-<value>_..._seed-<seed>", from the [grid] and [random] values). */
static int sweep_make_run(sweep_parse *p, const int *idx, int k, int seed, sweep_run *r) {
    sweep_plan *plan = p->plan;
    sweep_name nm;
    memset(&nm, 0, sizeof nm);
    CHECK(XCALLOC(&r->args, (size_t)p->n_params + 2));
    int g = 0;
    for (int pass = SWEEP_GRID; pass <= SWEEP_SET; pass++)
        for (int i = 0; i < p->n_params; i++) {
            const sweep_param *q = &p->params[i];
            if ((int)q->kind != pass) continue;
            const char *value = q->kind == SWEEP_GRID     ? q->values[idx[g++]]
                                : q->kind == SWEEP_RANDOM ? q->drawn[k]
                                                          : q->values[0];
            if (q->kind != SWEEP_SET) {
                sweep_name_puts(&nm, q->label);
                sweep_name_put(&nm, '-');
                sweep_name_value(&nm, value);
                sweep_name_put(&nm, '_');
            }
            r->args[r->n_args] = sweep_arg(q->key, value);
            if (!r->args[r->n_args++]) return FAIL("out of memory");
        }
    char seed_text[16];
    snprintf(seed_text, sizeof seed_text, "%d", seed);
    sweep_name_puts(&nm, "seed-");
    sweep_name_puts(&nm, seed_text);
    if (nm.overflow)
        return FAIL("%s: the run name '%.60s...' is longer than %d characters; sweep fewer keys "
                    "or use shorter values",
                    p->file, nm.text, SWEEP_RUN_NAME_MAX);
    char dir[SWEEP_PATH_MAX + SWEEP_RUN_NAME_MAX + 8];
    if (snprintf(dir, sizeof dir, "%s/runs/%s", plan->dir, nm.text) >= (int)SWEEP_PATH_MAX)
        return FAIL("%s: the run directory %s/runs/%s is too long", p->file, plan->dir, nm.text);
    r->dir = sweep_strndup(dir, strlen(dir));
    r->config = sweep_strndup(plan->base, strlen(plan->base));
    r->args[r->n_args++] = sweep_arg("run.seed", seed_text);
    r->args[r->n_args++] = sweep_arg("run.dir", dir);
    if (!r->dir || !r->config || !r->args[r->n_args - 1] || !r->args[r->n_args - 2])
        return FAIL("out of memory");
    return FSNN_OK;
}

/* Applies run r's args to the base config as `fsnn train` would. */
static int sweep_check_run(const sweep_parse *p, const fsnn_cfg *base_cfg, int id,
                           const sweep_run *r) {
    fsnn_cfg c = *base_cfg;
    int rc = FSNN_OK;
    for (int i = 0; rc == 0 && i < r->n_args; i++)
        rc = config_override(r->args[i], &c);
    if (rc == 0) rc = config_resolve(r->dir, &c);
    if (rc == 0) return FSNN_OK;
    char msg[SWEEP_WHY_MAX];
    snprintf(msg, sizeof msg, "%s", status_message());
    status_clear();
    return FAIL("%s: run %d (%s): fsnn train would refuse its settings: %s", p->file, id,
                sweep_run_name(r), msg);
}

static int sweep_cmp_name(const void *a, const void *b) {
    const sweep_run *const *x = a, *const *y = b;
    return strcmp((*x)->dir, (*y)->dir);
}

/* Fails if two runs share a directory; `hint` ends the message. */
static int sweep_check_unique(const char *file, const sweep_table *t, const char *hint) {
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

static int sweep_expand(sweep_parse *p, const fsnn_cfg *base_cfg) {
    sweep_plan *plan = p->plan;
    int n_grid = 0;
    long long grid_points = 1;
    for (int i = 0; i < p->n_params; i++)
        if (p->params[i].kind == SWEEP_GRID) {
            n_grid++;
            grid_points *= p->params[i].n;
            if (grid_points > SWEEP_RUNS_MAX) break;
        }
    long long points = grid_points * (plan->samples ? plan->samples : 1);
    long long total = points * plan->seeds;
    if (grid_points > SWEEP_RUNS_MAX || total > SWEEP_RUNS_MAX)
        return FAIL("%s: the sweep has more than %d runs (grid points x samples x seeds); split "
                    "it",
                    p->file, SWEEP_RUNS_MAX);
    plan->points = (int)points;
    CHECK(sweep_draw_all(p));
    sweep_labels(p);
    sweep_table *t = &plan->table;
    CHECK(XCALLOC(&t->runs, (size_t)total));
    int *idx = NULL, *size = NULL;
    CHECK(XCALLOC(&idx, (size_t)n_grid + 1));
    int rc = XCALLOC(&size, (size_t)n_grid + 1);
    for (int i = 0, g = 0; rc == 0 && i < p->n_params; i++)
        if (p->params[i].kind == SWEEP_GRID) size[g++] = p->params[i].n;
    for (long long gp = 0; rc == 0 && gp < grid_points; gp++) {
        for (int k = 0; rc == 0 && k < (plan->samples ? plan->samples : 1); k++)
            for (int s = 1; rc == 0 && s <= plan->seeds; s++) {
                sweep_run *r = &t->runs[t->n++];
                rc = sweep_make_run(p, idx, k, s, r);
                if (rc == 0) rc = sweep_check_run(p, base_cfg, t->n - 1, r);
            }
        /* The next grid point: the last key moves fastest. */
        for (int g = n_grid - 1; g >= 0; g--) {
            if (++idx[g] < size[g]) break;
            idx[g] = 0;
        }
    }
    free(idx);
    free(size);
    CHECK(rc);
    CHECK(sweep_check_unique(p->file, t,
                             " (their values differ only in characters outside A-Z a-z 0-9 . _ "
                             "= + -, which names leave out); make them differ in those"));
    return FSNN_OK;
}

/* ---- loading ---- */

/* Reads file `path` (at most max bytes); `name` stands for it in messages. */
static int sweep_read_file(const char *path, const char *name, size_t max, char **text,
                           size_t *len) {
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
