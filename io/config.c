/* config: everything derived from the option table (config_keys.c):
 * defaults, the INI reader (inih), command-line overrides, the resolved INI
 * text of a run and the key reference (`fsnn --help-config`,
 * docs/config.md).
 *
 * Values are parsed strictly: the whole value must be consumed, numbers must
 * be finite and inside the documented range, strings must fit their field,
 * and a value that config_write could not write back unchanged is refused. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h> // defines: ini_parse_stream, INI_MAX_LINE

#include "config_impl.h" // defines: config_opt, config_opts, CONFIG_N_OPTS
#include "netspec.h"     // defines: netspec_parse, netspec_single_fc
#include "status.h"      // defines: FAIL, CHECK

_Static_assert(sizeof(unsigned long long) == sizeof(uint64_t), "run.seed is parsed by strtoull");
/* Enum fields are read and written through int pointers. */
_Static_assert(sizeof(cfg_dataset) == sizeof(int), "cfg_dataset must be int-sized");
_Static_assert(sizeof(cfg_solver) == sizeof(int), "cfg_solver must be int-sized");
_Static_assert(sizeof(cfg_optim) == sizeof(int), "cfg_optim must be int-sized");
_Static_assert(sizeof(cfg_spike_product) == sizeof(int), "cfg_spike_product must be int-sized");
_Static_assert(sizeof(cfg_conv) == sizeof(int), "cfg_conv must be int-sized");
_Static_assert(sizeof(cfg_sim_precision) == sizeof(int), "cfg_sim_precision must be int-sized");
_Static_assert(sizeof(cfg_fidelity) == sizeof(int), "cfg_fidelity must be int-sized");
_Static_assert(sizeof(cfg_spectral) == sizeof(int), "cfg_spectral must be int-sized");
_Static_assert(sizeof(cfg_loop_bn) == sizeof(int), "cfg_loop_bn must be int-sized");
_Static_assert(sizeof(cfg_event_avg) == sizeof(int), "cfg_event_avg must be int-sized");

/* The longest line inih reads (its buffer keeps room for "\r\n\0"). */
#define CONFIG_LINE_MAX (INI_MAX_LINE - 3)
#define CONFIG_FILE_MAX (1 << 20)
#define CONFIG_VALUE_MAX 1024
#define CONFIG_KEY_MAX 256
#define CONFIG_WHY_MAX 640

static const char *const config_type_names[] = {
    [CONFIG_INT] = "int",     [CONFIG_LONG] = "int64",    [CONFIG_U64] = "uint64",
    [CONFIG_FLOAT] = "float", [CONFIG_DOUBLE] = "double", [CONFIG_STRING] = "string",
    [CONFIG_NET] = "net",     [CONFIG_ENUM] = "enum",     [CONFIG_LIST] = "int list"};

/* ---- table look-ups ---- */

static void *config_field(fsnn_cfg *cfg, size_t offset) {
    return (char *)cfg + offset;
}

static const void *config_cfield(const fsnn_cfg *cfg, size_t offset) {
    return (const char *)cfg + offset;
}

static const config_opt *config_find(const char *key) {
    for (size_t i = 0; i < CONFIG_N_OPTS; i++)
        if (!strcmp(config_opts[i].key, key)) return &config_opts[i];
    return NULL;
}

static const char *config_name_part(const char *key) {
    const char *dot = strchr(key, '.');
    return dot ? dot + 1 : key;
}

static size_t config_section_len(const char *key) {
    return (size_t)(config_name_part(key) - key - 1);
}

static int config_section_known(const char *section) {
    size_t len = strlen(section);
    for (size_t i = 0; i < CONFIG_N_OPTS; i++)
        if (config_section_len(config_opts[i].key) == len &&
            !strncmp(config_opts[i].key, section, len))
            return 1;
    return 0;
}

/* Levenshtein distance, for "did you mean"; long inputs are never close. */
static size_t config_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    enum { N = 64 };
    if (la >= N || lb >= N) return SIZE_MAX;
    size_t prev[N], cur[N];
    for (size_t j = 0; j <= lb; j++)
        prev[j] = j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            size_t del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, (lb + 1) * sizeof *prev);
    }
    return prev[lb];
}

/* The known key an unknown `key` most likely meant: the same name in another
 * section, the whole key written as a name, or a key within 2 edits. */
static const config_opt *config_suggest(const char *key, const char *name) {
    const config_opt *o = config_find(name);
    if (o) return o;
    for (size_t i = 0; i < CONFIG_N_OPTS; i++)
        if (!strcmp(config_name_part(config_opts[i].key), name)) return &config_opts[i];
    size_t best = 3, len = strlen(key);
    for (size_t i = 0; i < CONFIG_N_OPTS; i++) {
        size_t other = strlen(config_opts[i].key);
        if (len > other + 2 || other > len + 2) continue;
        size_t d = config_distance(key, config_opts[i].key);
        if (d < best) {
            best = d;
            o = &config_opts[i];
        }
    }
    return o;
}

/* Appends ", "-separated names to why[*used..size): the sections of the
 * table (section == NULL) or the names of one section's keys. */
static void config_list_names(char *why, size_t size, size_t *used, const char *section) {
    const char *prev = "";
    size_t prev_len = 0, n = 0;
    for (size_t i = 0; i < CONFIG_N_OPTS && *used < size; i++) {
        const char *key = config_opts[i].key;
        size_t len = config_section_len(key);
        const char *name = config_name_part(key);
        int w = 0;
        if (!section && (len != prev_len || strncmp(key, prev, len)))
            w = snprintf(why + *used, size - *used, "%s%.*s", n++ ? ", " : "", (int)len, key);
        else if (section && len == strlen(section) && !strncmp(key, section, len))
            w = snprintf(why + *used, size - *used, "%s%s", n++ ? ", " : "", name);
        *used += (size_t)w;
        prev = key;
        prev_len = len;
    }
}

/* "unknown key (did you mean 'x'?)" and the like, for key "section.name". */
static void config_unknown(char *why, size_t size, const char *section, const char *name) {
    char key[CONFIG_KEY_MAX];
    snprintf(key, sizeof key, "%s.%s", section, name);
    const config_opt *near = config_suggest(key, name);
    int known = *section && config_section_known(section);
    size_t used;
    if (!*section)
        used = (size_t)snprintf(why, size, "key '%s' is outside any [section]", name);
    else if (!known)
        used = (size_t)snprintf(why, size, "key '%s': unknown section [%s]", key, section);
    else
        used = (size_t)snprintf(why, size, "key '%s': unknown key", key);
    if (used >= size) return;
    if (near) {
        snprintf(why + used, size - used, " (did you mean '%s'?)", near->key);
    } else if (known) {
        used += (size_t)snprintf(why + used, size - used, "; [%s] has ", section);
        config_list_names(why, size, &used, section);
    } else {
        used += (size_t)snprintf(why + used, size - used, "; the sections are ");
        config_list_names(why, size, &used, NULL);
    }
}

/* ---- value parsing ---- */

/* The longest string value: it must fit the field and, written back as
 * "name = value", one INI line. */
static size_t config_string_max(const config_opt *o) {
    size_t line_room = CONFIG_LINE_MAX - 3 - strlen(config_name_part(o->key));
    return o->size - 1 < line_room ? o->size - 1 : line_room;
}

static void config_range_text(const config_opt *o, char *buf, size_t size) {
    size_t used = 0;
    switch (o->type) {
    case CONFIG_INT:
    case CONFIG_LONG:
        if (o->hi == HUGE_VAL)
            snprintf(buf, size, ">= %.0f", o->lo);
        else
            snprintf(buf, size, "%.0f..%.0f", o->lo, o->hi);
        break;
    case CONFIG_U64:
        snprintf(buf, size, "0..%" PRIu64, UINT64_MAX);
        break;
    case CONFIG_FLOAT:
    case CONFIG_DOUBLE:
        if (o->hi == HUGE_VAL)
            snprintf(buf, size, "%s %g", o->lo_open ? ">" : ">=", o->lo);
        else
            snprintf(buf, size, "%c%g, %g%c", o->lo_open ? '(' : '[', o->lo, o->hi,
                     o->hi_open ? ')' : ']');
        break;
    case CONFIG_STRING:
        snprintf(buf, size, "up to %zu characters", config_string_max(o));
        break;
    case CONFIG_NET:
        snprintf(buf, size, "the paper's notation, up to %zu characters", config_string_max(o));
        break;
    case CONFIG_ENUM:
        buf[0] = '\0';
        for (const config_choice *c = o->choices; c->name && used < size; c++)
            used += (size_t)snprintf(buf + used, size - used, "%s%s", used ? ", " : "", c->name);
        break;
    case CONFIG_LIST:
        snprintf(buf, size, "increasing integers >= %.0f, at most %zu", o->lo, o->size);
        break;
    }
}

/* Parses a whole decimal integer; 1 = not an integer, 2 = beyond long long. */
static int config_parse_ll(const char *s, long long *v) {
    if (!*s || isspace((unsigned char)*s)) return 1;
    char *end;
    errno = 0;
    *v = strtoll(s, &end, 10);
    if (end == s || *end) return 1;
    return errno == ERANGE ? 2 : 0;
}

static int config_in_range(const config_opt *o, double v) {
    int lo_ok = o->lo_open ? v > o->lo : v >= o->lo;
    int hi_ok = o->hi_open ? v < o->hi : v <= o->hi;
    return lo_ok && hi_ok;
}

static int config_set_integer(const config_opt *o, const char *value, void *field, char *why,
                              size_t size) {
    char range[64];
    config_range_text(o, range, sizeof range);
    if (o->type == CONFIG_U64) {
        /* strtoull would quietly wrap "-1" around to 2^64 - 1. */
        unsigned long long u = 0;
        char *end = NULL;
        errno = 0;
        if (isdigit((unsigned char)value[0])) u = strtoull(value, &end, 10);
        if (!end || *end) {
            snprintf(why, size, "'%.80s' is not an integer; expected an integer in %s", value,
                     range);
            return FSNN_ERR;
        }
        if (errno == ERANGE) {
            snprintf(why, size, "%.80s is out of range; expected an integer in %s", value, range);
            return FSNN_ERR;
        }
        *(uint64_t *)field = (uint64_t)u;
        return FSNN_OK;
    }
    long long v = 0;
    int bad = config_parse_ll(value, &v);
    long long tmin = o->type == CONFIG_INT ? INT_MIN : LONG_MIN;
    long long tmax = o->type == CONFIG_INT ? INT_MAX : LONG_MAX;
    if (bad == 1) {
        snprintf(why, size, "'%.80s' is not an integer; expected an integer %s%s", value,
                 o->hi == HUGE_VAL ? "" : "in ", range);
        return FSNN_ERR;
    }
    if (bad == 2 || v < tmin || v > tmax || !config_in_range(o, (double)v)) {
        snprintf(why, size, "%.80s is out of range; expected an integer %s%s", value,
                 o->hi == HUGE_VAL ? "" : "in ", range);
        return FSNN_ERR;
    }
    if (o->type == CONFIG_INT)
        *(int *)field = (int)v;
    else
        *(long *)field = (long)v;
    return FSNN_OK;
}

static int config_set_real(const config_opt *o, const char *value, void *field, char *why,
                           size_t size) {
    char range[64];
    config_range_text(o, range, sizeof range);
    const char *in = o->hi == HUGE_VAL ? "" : "in ";
    char *end = NULL;
    double v = 0.0;
    if (*value && !isspace((unsigned char)*value)) v = strtod(value, &end);
    if (!*value || isspace((unsigned char)*value) || end == value || *end) {
        snprintf(why, size, "'%.80s' is not a number; expected a number %s%s", value, in, range);
        return FSNN_ERR;
    }
    if (!isfinite(v)) {
        snprintf(why, size, "'%.80s' is not a finite number; expected a number %s%s", value, in,
                 range);
        return FSNN_ERR;
    }
    /* A float field is checked as the float it becomes: 1e40 overflows and
     * 1e-50 becomes 0. */
    double stored = o->type == CONFIG_FLOAT ? (double)(float)v : v;
    if (!isfinite(stored) || !config_in_range(o, stored)) {
        snprintf(why, size, "%.80s is out of range%s; expected a number %s%s", value,
                 isfinite(stored) && stored == v ? "" : " for a float", in, range);
        return FSNN_ERR;
    }
    if (o->type == CONFIG_FLOAT)
        *(float *)field = (float)v;
    else
        *(double *)field = v;
    return FSNN_OK;
}

/* A string must survive config_write and inih unchanged: one line, no
 * control characters, no ';' where inih would start a comment. Surrounding
 * blanks are gone already (inih and config_trim strip them). */
static int config_check_string(const config_opt *o, const char *value, char *why, size_t size) {
    size_t len = strlen(value), max = config_string_max(o);
    if (len == 0) {
        snprintf(why, size, "the value is empty");
        return FSNN_ERR;
    }
    if (len > max) {
        snprintf(why, size, "the value is %zu characters long; at most %zu fit", len, max);
        return FSNN_ERR;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)value[i];
        if (c < 0x20 || c == 0x7f) {
            snprintf(why, size, "control character 0x%02x at character %zu", c, i + 1);
            return FSNN_ERR;
        }
        /* config_write puts a space after '=', so a leading ';' would
         * become a comment as well. */
        if (c == ';' && (i == 0 || isspace((unsigned char)value[i - 1]))) {
            snprintf(why, size,
                     "';' at character %zu would start a comment in an INI file (at the start of "
                     "the value or after a space)",
                     i + 1);
            return FSNN_ERR;
        }
    }
    return FSNN_OK;
}

/* Parses model.net (src/netspec.h: the grammar, its limits and messages).
 * *hidden = N for a net "N (FN)"; 0 for any other valid net, which loads
 * (for `fsnn model` and sweeps) and which model_create builds from model.net
 * (one conv layer with a conv feedback) or refuses. */
static int config_net_parse(const char *net, int *hidden, char *why, size_t size) {
    netspec spec;
    netspec_error err;
    if (netspec_parse(net, &spec, &err)) {
        snprintf(why, size, "%.*s", (int)size - 1, err.msg);
        return FSNN_ERR;
    }
    if (!netspec_single_fc(&spec, hidden)) *hidden = 0;
    return FSNN_OK;
}

static int config_set_list(const config_opt *o, const char *value, fsnn_cfg *cfg, char *why,
                           size_t size) {
    int vals[CFG_MILESTONES_MAX];
    size_t n = 0;
    const char *p = value;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char entry[32];
        while (len > 0 && isspace((unsigned char)*p))
            p++, len--;
        while (len > 0 && isspace((unsigned char)p[len - 1]))
            len--;
        long long v = 0;
        int bad = len == 0 ? 1 : len >= sizeof entry ? 2 : 0;
        if (!bad) {
            memcpy(entry, p, len);
            entry[len] = '\0';
            bad = config_parse_ll(entry, &v);
        }
        if (n == o->size) {
            snprintf(why, size, "'%.80s' has more than %zu entries", value, o->size);
            return FSNN_ERR;
        }
        if (bad == 1) {
            snprintf(why, size,
                     "'%.80s': entry %zu is not an integer; expected a comma-separated "
                     "list of increasing integers >= %.0f",
                     value, n + 1, o->lo);
            return FSNN_ERR;
        }
        if (bad == 2 || v < o->lo || v > INT_MAX) {
            snprintf(why, size, "'%.80s': entry %zu is out of range; expected integers in %.0f..%d",
                     value, n + 1, o->lo, INT_MAX);
            return FSNN_ERR;
        }
        if (n > 0 && v <= vals[n - 1]) {
            snprintf(why, size, "'%.80s': not increasing: entry %zu (%lld) follows %d", value,
                     n + 1, v, vals[n - 1]);
            return FSNN_ERR;
        }
        vals[n++] = (int)v;
        if (!comma) break;
        p = comma + 1;
        if (!*p) {
            snprintf(why, size, "'%.80s': entry %zu is empty (a comma ends the list)", value,
                     n + 1);
            return FSNN_ERR;
        }
    }
    int *list = config_field(cfg, o->offset);
    memset(list, 0, o->size * sizeof *list);
    memcpy(list, vals, n * sizeof *vals);
    *(int *)config_field(cfg, o->aux) = (int)n;
    return FSNN_OK;
}

/* Stores a checked string; the zeroed tail keeps equal settings
 * byte-for-byte equal. */
static void config_copy_string(char *field, size_t size, const char *value) {
    memset(field, 0, size);
    memcpy(field, value, strlen(value));
}

/* Parses `value` (already trimmed) into the field of `o`. On failure the
 * field keeps its value and `why` says what is wrong. */
static int config_set(const config_opt *o, const char *value, fsnn_cfg *cfg, char *why,
                      size_t size) {
    void *field = config_field(cfg, o->offset);
    int hidden = 0;
    switch (o->type) {
    case CONFIG_INT:
    case CONFIG_LONG:
    case CONFIG_U64:
        return config_set_integer(o, value, field, why, size);
    case CONFIG_FLOAT:
    case CONFIG_DOUBLE:
        return config_set_real(o, value, field, why, size);
    case CONFIG_NET:
        if (config_check_string(o, value, why, size)) return FSNN_ERR;
        if (config_net_parse(value, &hidden, why, size)) return FSNN_ERR;
        *(int *)config_field(cfg, o->aux) = hidden;
        config_copy_string(field, o->size, value);
        return FSNN_OK;
    case CONFIG_STRING:
        if (config_check_string(o, value, why, size)) return FSNN_ERR;
        config_copy_string(field, o->size, value);
        return FSNN_OK;
    case CONFIG_ENUM:
        for (const config_choice *c = o->choices; c->name; c++)
            if (!strcmp(c->name, value)) {
                *(int *)field = c->value;
                return FSNN_OK;
            }
        char names[128];
        config_range_text(o, names, sizeof names);
        snprintf(why, size, "unknown value '%.80s'; expected one of %s", value, names);
        return FSNN_ERR;
    case CONFIG_LIST:
        return config_set_list(o, value, cfg, why, size);
    }
    snprintf(why, size, "internal error: option type %d", (int)o->type);
    return FSNN_ERR;
}

void config_defaults(fsnn_cfg *cfg) {
    memset(cfg, 0, sizeof *cfg);
    char why[CONFIG_WHY_MAX];
    /* The defaults go through the same parser as file values; test_config
     * checks that every one of them is accepted and has the documented value. */
    for (size_t i = 0; i < CONFIG_N_OPTS; i++)
        (void)config_set(&config_opts[i], config_opts[i].def, cfg, why, sizeof why);
}

/* ---- INI files (inih) ---- */

typedef struct {
    fsnn_cfg *cfg;
    const char *name; /* the file, in messages */
    const char *text;
    size_t len, pos;
    int line;     /* the line inih is handling */
    int err_line; /* the first error found here (0 = none) and its text */
    char err[CONFIG_WHY_MAX];
    int set_line[CONFIG_N_OPTS]; /* where each key was set, for repeats */
} config_parse;

static void config_error(config_parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void config_error(config_parse *p, const char *fmt, ...) {
    if (p->err_line) return;
    p->err_line = p->line;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(p->err, sizeof p->err, fmt, ap);
    va_end(ap);
}

/* inih's line reader. Counting lines here gives the handler its line
 * number. Leading blanks are dropped, so an indented key is an ordinary key
 * rather than inih's continuation of the previous value; a line too long
 * for inih's buffer is refused instead of being split. */
static char *config_reader(char *str, int num, void *stream) {
    config_parse *p = stream;
    if (p->pos >= p->len) return NULL;
    const char *start = p->text + p->pos;
    const char *nl = memchr(start, '\n', p->len - p->pos);
    size_t len = nl ? (size_t)(nl - start) : p->len - p->pos;
    p->pos += len + (nl != NULL);
    p->line++;
    size_t room = (size_t)num - 2 < CONFIG_LINE_MAX ? (size_t)num - 2 : CONFIG_LINE_MAX;
    str[0] = '\0';
    if (memchr(start, '\0', len)) {
        config_error(p, "NUL byte in the line");
        return str;
    }
    while (len > 0 && (*start == ' ' || *start == '\t'))
        start++, len--;
    if (len > room) {
        config_error(p, "line longer than %zu characters", room);
        return str;
    }
    memcpy(str, start, len);
    str[len] = '\0';
    return str;
}

static int config_handler(void *user, const char *section, const char *name, const char *value) {
    config_parse *p = user;
    /* Only the first error is reported, and the load fails anyway: the
     * lines after it need no work. */
    if (p->err_line) return 1;
    char key[CONFIG_KEY_MAX], why[CONFIG_WHY_MAX];
    snprintf(key, sizeof key, "%s.%s", section, name);
    const config_opt *o = *section ? config_find(key) : NULL;
    if (!o) {
        config_unknown(why, sizeof why, section, name);
        config_error(p, "%s", why);
        return 0;
    }
    size_t idx = (size_t)(o - config_opts);
    if (p->set_line[idx]) {
        config_error(p, "key '%s': repeated (first set at line %d)", key, p->set_line[idx]);
        return 0;
    }
    p->set_line[idx] = p->line;
    if (config_set(o, value, p->cfg, why, sizeof why)) {
        config_error(p, "key '%s': %s", key, why);
        return 0;
    }
    return 1;
}

void config_syntax_why(const char *text, size_t text_len, int line, char *why, size_t size) {
    const char *s = text, *end = text + text_len;
    for (int l = 1; l < line && s < end; l++) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        s = nl ? nl + 1 : end;
    }
    while (s < end && isspace((unsigned char)*s) && *s != '\n')
        s++;
    const char *nl = memchr(s, '\n', (size_t)(end - s));
    int len = (int)((nl ? nl : end) - s);
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    if (len > 60) len = 60;
    if (len > 0 && *s == '[')
        snprintf(why, size, "syntax error: section header '%.*s' has no closing ']'", len, s);
    else
        snprintf(why, size,
                 "syntax error: '%.*s' is neither 'key = value', '[section]' nor a "
                 "comment",
                 len, s);
}

static int config_load_text(const char *name, const char *text, size_t len, fsnn_cfg *cfg) {
    config_parse p;
    memset(&p, 0, sizeof p);
    p.cfg = cfg;
    p.name = name;
    p.text = text;
    p.len = len;
    int rc = ini_parse_stream(config_reader, &p, config_handler, &p);
    if (rc < 0) return FAIL("%s: out of memory while parsing", name);
    /* inih reports the first line it refused, including lines the handler
     * refused; the reader's refusals only p knows. */
    if (rc > 0 && (p.err_line == 0 || rc < p.err_line)) {
        char why[CONFIG_WHY_MAX];
        config_syntax_why(p.text, p.len, rc, why, sizeof why);
        return FAIL("%s:%d: %s", name, rc, why);
    }
    if (p.err_line) return FAIL("%s:%d: %s", name, p.err_line, p.err);
    return FSNN_OK;
}

int config_load(const char *path, fsnn_cfg *cfg) {
    FILE *f = fopen(path, "rb");
    if (!f) return FAIL("%s: cannot open: %s", path, strerror(errno));
    char *text = NULL;
    int rc = XCALLOC(&text, (size_t)CONFIG_FILE_MAX + 1);
    size_t len = rc ? 0 : fread(text, 1, (size_t)CONFIG_FILE_MAX + 1, f);
    if (rc == 0 && ferror(f)) rc = FAIL("%s: cannot read: %s", path, strerror(errno));
    if (rc == 0 && len > CONFIG_FILE_MAX)
        rc = FAIL("%s: larger than %d bytes; not a configuration file?", path, CONFIG_FILE_MAX);
    fclose(f);
    if (rc == 0) rc = config_load_text(path, text, len, cfg);
    free(text);
    if (rc != 0) status_trace(__FILE__, __LINE__);
    return rc;
}

int config_load_string(const char *name, const char *text, fsnn_cfg *cfg) {
    CHECK(config_load_text(name, text, strlen(text), cfg));
    return FSNN_OK;
}

/* A stored run configuration without model.fidelity was written before
 * the key existed, by a run of fsnn's own variant. */
static int config_stored(int rc, fsnn_cfg *cfg) {
    if (rc == 0 && (int)cfg->model_fidelity == -1) cfg->model_fidelity = FIDELITY_FSNN;
    return rc;
}

int config_load_run(const char *path, fsnn_cfg *cfg) {
    cfg->model_fidelity = (cfg_fidelity)-1;
    return config_stored(config_load(path, cfg), cfg);
}

int config_load_run_string(const char *name, const char *text, fsnn_cfg *cfg) {
    cfg->model_fidelity = (cfg_fidelity)-1;
    return config_stored(config_load_string(name, text, cfg), cfg);
}

/* Copies s[0..len) without surrounding blanks; fails if it does not fit. */
static int config_trim(char *out, size_t size, const char *s, size_t len) {
    while (len > 0 && isspace((unsigned char)*s))
        s++, len--;
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    if (len >= size) return FSNN_ERR;
    memcpy(out, s, len);
    out[len] = '\0';
    return FSNN_OK;
}

/* Messages quote at most this much of a command-line argument. */
#define CONFIG_QUOTE_MAX 100

int config_override(const char *arg, fsnn_cfg *cfg) {
    const char *eq = strchr(arg, '=');
    char key[CONFIG_KEY_MAX], value[CONFIG_VALUE_MAX], why[CONFIG_WHY_MAX];
    int q = CONFIG_QUOTE_MAX;
    const char *more = strlen(arg) > CONFIG_QUOTE_MAX ? "..." : "";
    if (!eq || config_trim(key, sizeof key, arg, (size_t)(eq - arg)) || !strchr(key, '.'))
        return FAIL("command line: '%.*s%s': expected section.key=value, e.g. train.epochs=5", q,
                    arg, more);
    if (config_trim(value, sizeof value, eq + 1, strlen(eq + 1)))
        return FAIL("command line: '%.*s%s': the value is longer than %d characters", q, arg, more,
                    CONFIG_VALUE_MAX - 1);
    const config_opt *o = config_find(key);
    if (!o) {
        char *dot = strchr(key, '.');
        *dot = '\0';
        config_unknown(why, sizeof why, key, dot + 1);
        return FAIL("command line: '%.*s%s': %s", q, arg, more, why);
    }
    if (config_set(o, value, cfg, why, sizeof why))
        return FAIL("command line: '%.*s%s': key '%s': %s", q, arg, more, o->key, why);
    return FSNN_OK;
}

int config_set_key(const char *key, const char *value, fsnn_cfg *cfg, char *why, size_t size) {
    const config_opt *o = config_find(key);
    if (!o) {
        char section[CONFIG_KEY_MAX];
        const char *dot = strchr(key, '.');
        if (!dot || (size_t)(dot - key) >= sizeof section) {
            snprintf(why, size, "key '%.80s': expected section.key, e.g. train.lr", key);
            return FSNN_ERR;
        }
        memcpy(section, key, (size_t)(dot - key));
        section[dot - key] = '\0';
        config_unknown(why, size, section, dot + 1);
        return FSNN_ERR;
    }
    if (!value) return FSNN_OK;
    char inner[CONFIG_WHY_MAX];
    if (config_set(o, value, cfg, inner, sizeof inner)) {
        snprintf(why, size, "key '%s': %s", o->key, inner);
        return FSNN_ERR;
    }
    return FSNN_OK;
}

int config_resolve(const char *origin, fsnn_cfg *cfg) {
    char why[CONFIG_WHY_MAX];
    int hidden = 0;
    if (memchr(cfg->model_net, '\0', sizeof cfg->model_net) == NULL)
        return FAIL("%s: key 'model.net': not a terminated string", origin);
    if (config_net_parse(cfg->model_net, &hidden, why, sizeof why))
        return FAIL("%s: key 'model.net': %s", origin, why);
    int n = cfg->train_n_milestones;
    if (n < 0 || n > CFG_MILESTONES_MAX)
        return FAIL("%s: key 'train.lr_milestones': %d entries (0 to %d allowed)", origin, n,
                    CFG_MILESTONES_MAX);
    for (int i = 0; i < n; i++) {
        if (cfg->train_lr_milestones[i] < 0)
            return FAIL("%s: key 'train.lr_milestones': entry %d (%d) is negative", origin, i + 1,
                        cfg->train_lr_milestones[i]);
        if (i > 0 && cfg->train_lr_milestones[i] <= cfg->train_lr_milestones[i - 1])
            return FAIL("%s: key 'train.lr_milestones': not increasing: entry %d (%d) follows %d",
                        origin, i + 1, cfg->train_lr_milestones[i],
                        cfg->train_lr_milestones[i - 1]);
    }
    cfg->model_hidden = hidden;
    const int ref = cfg->model_fidelity == FIDELITY_REFERENCE;
    if (cfg->model_spectral_norm == SPECTRAL_AUTO)
        cfg->model_spectral_norm = ref ? SPECTRAL_KERNEL : SPECTRAL_OPERATOR;
    if (cfg->model_loop_bn == LOOP_BN_AUTO)
        cfg->model_loop_bn = ref ? LOOP_BN_REFERENCE : LOOP_BN_CONSISTENT;
    if (cfg->data_event_average == EVENT_AVG_AUTO)
        cfg->data_event_average = ref ? EVENT_AVG_INPLACE : EVENT_AVG_CLEAN;
    if (cfg->compute_sim_precision == SIM_BF16 && cfg->model_conv == CONV_IM2COL)
        return FAIL("%s: key 'compute.sim_precision': bf16 runs on oneDNN; it needs "
                    "model.conv = onednn, not im2col",
                    origin);
    return FSNN_OK;
}

/* ---- writing ---- */

/* The shortest decimal that reads back to the same value. */
static void config_format_real(char *buf, size_t size, double v, int is_float) {
    for (int digits = is_float ? 6 : 15; digits <= 17; digits++) {
        snprintf(buf, size, "%.*g", digits, v);
        double back = strtod(buf, NULL);
        if (is_float ? (float)back == (float)v : back == v) return;
    }
}

static int config_format(const config_opt *o, const fsnn_cfg *cfg, char *buf, size_t size) {
    const void *field = config_cfield(cfg, o->offset);
    size_t used = 0;
    switch (o->type) {
    case CONFIG_INT:
        snprintf(buf, size, "%d", *(const int *)field);
        return FSNN_OK;
    case CONFIG_LONG:
        snprintf(buf, size, "%ld", *(const long *)field);
        return FSNN_OK;
    case CONFIG_U64:
        snprintf(buf, size, "%" PRIu64, *(const uint64_t *)field);
        return FSNN_OK;
    case CONFIG_FLOAT:
        config_format_real(buf, size, *(const float *)field, 1);
        return FSNN_OK;
    case CONFIG_DOUBLE:
        config_format_real(buf, size, *(const double *)field, 0);
        return FSNN_OK;
    case CONFIG_STRING:
    case CONFIG_NET:
        snprintf(buf, size, "%.*s", (int)o->size - 1, (const char *)field);
        return FSNN_OK;
    case CONFIG_ENUM:
        for (const config_choice *c = o->choices; c->name; c++)
            if (c->value == *(const int *)field) {
                snprintf(buf, size, "%s", c->name);
                return FSNN_OK;
            }
        return FAIL("key '%s': value %d has no name", o->key, *(const int *)field);
    case CONFIG_LIST:
        buf[0] = '\0';
        for (int i = 0; i < *(const int *)config_cfield(cfg, o->aux) && used < size; i++)
            used += (size_t)snprintf(buf + used, size - used, "%s%d", i ? ", " : "",
                                     ((const int *)field)[i]);
        return FSNN_OK;
    }
    return FAIL("key '%s': internal error: option type %d", o->key, (int)o->type);
}

int config_write(const fsnn_cfg *cfg, FILE *out) {
    fputs("; fsnn configuration: every key with the value used (`fsnn --help-config`).\n"
          "; `fsnn train` and `fsnn eval` read this file back to the same settings.\n",
          out);
    const char *prev = "";
    size_t prev_len = 0;
    for (size_t i = 0; i < CONFIG_N_OPTS; i++) {
        const config_opt *o = &config_opts[i];
        size_t len = config_section_len(o->key);
        if (len != prev_len || strncmp(o->key, prev, len)) {
            fprintf(out, "\n[%.*s]\n", (int)len, o->key);
            prev = o->key;
            prev_len = len;
        }
        char value[CONFIG_VALUE_MAX];
        CHECK(config_format(o, cfg, value, sizeof value));
        fprintf(out, "%s = %s\n", config_name_part(o->key), value);
    }
    if (fflush(out) != 0 || ferror(out))
        return FAIL("cannot write the configuration: %s", strerror(errno));
    return FSNN_OK;
}

/* ---- reference ---- */

enum { CONFIG_COLS = 5 };

static void config_row(const config_opt *o, char cells[CONFIG_COLS][160]) {
    snprintf(cells[0], 160, "%s", o->key);
    snprintf(cells[1], 160, "%s", config_type_names[o->type]);
    snprintf(cells[2], 160, "%s", o->def);
    config_range_text(o, cells[3], 160);
    snprintf(cells[4], 160, "%s", o->doc);
}

/* Markdown cell text: '|' would end the cell. */
static void config_md_cell(FILE *out, const char *s, int code) {
    fputs(code ? " `" : " ", out);
    for (; *s; s++) {
        if (*s == '|') fputc('\\', out);
        fputc(*s, out);
    }
    fputs(code ? "` |" : " |", out);
}

void config_help(FILE *out, int markdown) {
    static const char *const head[CONFIG_COLS] = {"key", "type", "default", "allowed", "meaning"};
    char cells[CONFIG_COLS][160];
    if (markdown) {
        fputs("# Configuration keys\n\n"
              "Generated by `fsnn --help-config --markdown` from the option table in\n"
              "`io/config_keys.c`. An INI file has `[section]` headers and `key = value` lines\n"
              "(`;` or `#` starts a comment line); every key can also be given on the command\n"
              "line as `section.key=value`. Unknown keys, repeated keys and values outside the\n"
              "allowed range are errors.\n\n"
              "| key | type | default | allowed | meaning |\n"
              "|---|---|---|---|---|\n",
              out);
        for (size_t i = 0; i < CONFIG_N_OPTS; i++) {
            config_row(&config_opts[i], cells);
            fputc('|', out);
            for (int c = 0; c < CONFIG_COLS; c++)
                config_md_cell(out, cells[c], c == 0 || c == 2);
            fputc('\n', out);
        }
        return;
    }
    int width[CONFIG_COLS];
    for (int c = 0; c < CONFIG_COLS; c++)
        width[c] = (int)strlen(head[c]);
    for (size_t i = 0; i < CONFIG_N_OPTS; i++) {
        config_row(&config_opts[i], cells);
        for (int c = 0; c < CONFIG_COLS; c++)
            if ((int)strlen(cells[c]) > width[c]) width[c] = (int)strlen(cells[c]);
    }
    fputs("fsnn configuration keys. In an INI file: [section] then key = value; on the command "
          "line: section.key=value.\n\n",
          out);
    fprintf(out, "%-*s  %-*s  %-*s  %-*s  %s\n", width[0], head[0], width[1], head[1], width[2],
            head[2], width[3], head[3], head[4]);
    for (size_t i = 0; i < CONFIG_N_OPTS; i++) {
        config_row(&config_opts[i], cells);
        fprintf(out, "%-*s  %-*s  %-*s  %-*s  %s\n", width[0], cells[0], width[1], cells[1],
                width[2], cells[2], width[3], cells[3], cells[4]);
    }
}
