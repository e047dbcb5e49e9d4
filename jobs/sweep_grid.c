/* sweep_grid: a read sweep file expanded into its runs: the cross product
 * of the [grid] values, the points of [random] drawn from the counter RNG
 * (so the same file gives the same runs on any machine), the seeds, and
 * each run's name, arguments and check through io/config. */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"     // defines: config_set_key, config_override, config_resolve
#include "rng.h"        // defines: rng_uniform, RNG_SWEEP
#include "status.h"     // defines: FAIL, CHECK, XCALLOC
#include "sweep_impl.h" // defines: sweep_parse, sweep_param, sweep_expand, sweep_strndup

/* A run name is one path component; file systems allow 255 bytes. */
#define SWEEP_RUN_NAME_MAX 200

/* [A-Za-z0-9._=+-]: the characters of run names (the sweep interface). */
static int sweep_name_char(unsigned char c) {
    return isalnum(c) || c == '.' || c == '_' || c == '=' || c == '+' || c == '-';
}

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

int sweep_expand(sweep_parse *p, const fsnn_cfg *base_cfg) {
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
