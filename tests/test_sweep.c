/* sweep and runstate: grid products and their order, random points
 * (reproducible, in range, crossed with the grid), run names, every
 * validation error with its FILE:LINE and reason, hostile bytes, the runs.tsv
 * round trip and its strict reader, job.state, the finished-by-metrics rule
 * and the last error line of train.log. The shipped sweeps of
 * configs/sweeps/ (folder given as the first argument) must load. Files are
 * written to a fresh folder under /tmp. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "rng.h"
#include "runstate.h"
#include "status.h"
#include "sweep.h"
#include "testutil.h"

static char tmp_dir[] = "/tmp/fsnn_test_sweep_XXXXXX";
static char base_path[600];

static const char *put_bytes(const char *name, const char *text, size_t len) {
    static char path[600];
    snprintf(path, sizeof path, "%s/%s", tmp_dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(text, 1, len, f) != len) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
    return path;
}

static const char *put(const char *name, const char *text) {
    return put_bytes(name, text, strlen(text));
}

/* Loads sweep text as tmp_dir/name, in cwd tmp_dir. */
static int load(const char *name, const char *text, sweep_plan *plan) {
    return sweep_load(put(name, text), tmp_dir, plan);
}

/* Loads text that must fail with every listed string in the message. */
#define LOAD_FAILS(name, text, ...)                                                                \
    do {                                                                                           \
        sweep_plan p_;                                                                             \
        EXPECT_FAILS(load(name, text, &p_), __VA_ARGS__);                                          \
    } while (0)

static int has_arg(const sweep_run *r, const char *arg) {
    for (int i = 0; i < r->n_args; i++)
        if (!strcmp(r->args[i], arg)) return 1;
    return 0;
}

/* The value of `key` among r's args, or NULL. */
static const char *arg_value(const sweep_run *r, const char *key) {
    size_t n = strlen(key);
    for (int i = 0; i < r->n_args; i++)
        if (!strncmp(r->args[i], key, n) && r->args[i][n] == '=') return r->args[i] + n + 1;
    return NULL;
}

static void test_grid(void) {
    sweep_plan p;
    EXPECT_OK(load("g.ini",
                   "; two keys crossed, two seeds\n"
                   "[sweep]\n"
                   "base = base.ini\n"
                   "seeds = 2\n"
                   "[grid]\n"
                   "neuron.leak = 1, 0.95\n"
                   "model.time_steps = 5,10 , 30\n"
                   "[set]\n"
                   "train.epochs = 2\n",
                   &p));
    EXPECT(p.table.n == 12, "runs %d", p.table.n);
    EXPECT(p.points == 6 && p.seeds == 2, "points %d seeds %d", p.points, p.seeds);
    EXPECT(!strcmp(p.name, "g"), "name %s", p.name);
    char want[700];
    snprintf(want, sizeof want, "%s/g", tmp_dir);
    EXPECT(!strcmp(p.dir, want), "dir %s", p.dir);
    EXPECT(!strcmp(p.base, base_path), "base %s", p.base);
    /* The last key moves fastest, seeds fastest of all. */
    static const char *const names[] = {
        "leak-1_time_steps-5_seed-1",     "leak-1_time_steps-5_seed-2",
        "leak-1_time_steps-10_seed-1",    "leak-1_time_steps-10_seed-2",
        "leak-1_time_steps-30_seed-1",    "leak-1_time_steps-30_seed-2",
        "leak-0.95_time_steps-5_seed-1",  "leak-0.95_time_steps-5_seed-2",
        "leak-0.95_time_steps-10_seed-1", "leak-0.95_time_steps-10_seed-2",
        "leak-0.95_time_steps-30_seed-1", "leak-0.95_time_steps-30_seed-2"};
    for (int i = 0; i < p.table.n && i < 12; i++) {
        const sweep_run *r = &p.table.runs[i];
        EXPECT(!strcmp(sweep_run_name(r), names[i]), "run %d: %s, want %s", i, sweep_run_name(r),
               names[i]);
        snprintf(want, sizeof want, "%s/g/runs/%s", tmp_dir, names[i]);
        EXPECT(!strcmp(r->dir, want), "run %d dir %s", i, r->dir);
        EXPECT(!strcmp(r->config, base_path), "run %d config %s", i, r->config);
        EXPECT(r->n_args == 5, "run %d: %d args", i, r->n_args);
        if (r->n_args != 5) continue;
        char run_dir[800], seed[32];
        snprintf(run_dir, sizeof run_dir, "run.dir=%s", want);
        snprintf(seed, sizeof seed, "run.seed=%d", i % 2 + 1);
        /* [grid] in file order, [set], run.seed, run.dir. */
        EXPECT(!strncmp(r->args[0], "neuron.leak=", 12) &&
                   !strncmp(r->args[1], "model.time_steps=", 17) &&
                   !strcmp(r->args[2], "train.epochs=2") && !strcmp(r->args[3], seed) &&
                   !strcmp(r->args[4], run_dir),
               "run %d args %s %s %s %s %s", i, r->args[0], r->args[1], r->args[2], r->args[3],
               r->args[4]);
    }
    EXPECT(has_arg(&p.table.runs[11], "neuron.leak=0.95") &&
               has_arg(&p.table.runs[11], "model.time_steps=30"),
           "last run's values");
    EXPECT(p.slurm.ntasks == 1 && p.slurm.signal_seconds == 300 && p.slurm.throttle == 0 &&
               !*p.slurm.time && !*p.slurm.partition && p.slurm.cpus_per_task == 0,
           "[slurm] defaults");
    /* The file's bytes are kept for SWEEP_DIR/sweep.ini. */
    EXPECT(p.text_len > 0 && !strncmp(p.text, "; two keys", 10), "text kept");
    sweep_plan_free(&p);

    /* No [grid]: one point; [sweep] dir, name and [slurm] given. */
    EXPECT_OK(load("s.ini",
                   "[sweep]\n"
                   "base = "
                   "base.ini\n"
                   "name = my.sweep-1\n"
                   "dir = out/../sweeps/./x\n"
                   "seeds = 3\n"
                   "[slurm]\n"
                   "ntasks = 4\n"
                   "cpus_per_task = 8\n"
                   "time = 1-12:00:00\n"
                   "partition = gpu,cpu\n"
                   "throttle = 2\n"
                   "signal_seconds = 600\n",
                   &p));
    EXPECT(p.table.n == 3 && p.points == 1, "runs %d", p.table.n);
    EXPECT(!strcmp(p.name, "my.sweep-1"), "name %s", p.name);
    snprintf(want, sizeof want, "%s/sweeps/x", tmp_dir);
    EXPECT(!strcmp(p.dir, want), "dir %s, want %s", p.dir, want);
    EXPECT(p.table.n == 3 && !strcmp(sweep_run_name(&p.table.runs[2]), "seed-3"), "names");
    EXPECT(p.slurm.ntasks == 4 && p.slurm.cpus_per_task == 8 && p.slurm.throttle == 2 &&
               p.slurm.signal_seconds == 600 && !strcmp(p.slurm.time, "1-12:00:00") &&
               !strcmp(p.slurm.partition, "gpu,cpu"),
           "[slurm] values");
    sweep_plan_free(&p);
}

static void test_names(void) {
    sweep_plan p;
    /* Characters outside [A-Za-z0-9._=+-] become one '+'; a value in
     * parentheses may hold commas; "()" is the empty list. */
    EXPECT_OK(load("n.ini",
                   "[sweep]\n"
                   "base = base.ini\n"
                   "[grid]\n"
                   "model.net = 400 (F400), 64(F64)\n"
                   "train.lr_milestones = (30, 60, 90), (), 50\n"
                   "data.path = /data/set A\n",
                   &p));
    EXPECT(p.table.n == 6, "runs %d", p.table.n);
    if (p.table.n == 6) {
        EXPECT(!strcmp(sweep_run_name(&p.table.runs[0]),
                       "net-400+F400_lr_milestones-30+60+90_path-data+set+A_seed-1"),
               "name %s", sweep_run_name(&p.table.runs[0]));
        EXPECT(!strcmp(sweep_run_name(&p.table.runs[1]),
                       "net-400+F400_lr_milestones-_path-data+set+A_seed-1"),
               "name %s", sweep_run_name(&p.table.runs[1]));
        EXPECT(!strcmp(sweep_run_name(&p.table.runs[5]),
                       "net-64+F64_lr_milestones-50_path-data+set+A_seed-1"),
               "name %s", sweep_run_name(&p.table.runs[5]));
        EXPECT(has_arg(&p.table.runs[0], "train.lr_milestones=30, 60, 90") &&
                   has_arg(&p.table.runs[0], "model.net=400 (F400)") &&
                   has_arg(&p.table.runs[0], "data.path=/data/set A"),
               "args keep the values verbatim");
        EXPECT(has_arg(&p.table.runs[1], "train.lr_milestones="), "empty list arg");
    }
    sweep_plan_free(&p);
    /* Two values with one name. */
    LOAD_FAILS("c.ini", "[sweep]\nbase = base.ini\n[grid]\ndata.path = a b, a+b\n",
               "c.ini:", "runs 0 and 1", "same directory name 'path-a+b_seed-1'");
    LOAD_FAILS("c2.ini", "[sweep]\nbase = base.ini\n[grid]\nmodel.net = 64 (F64), 64(F64)\n",
               "runs 0 and 1", "'net-64+F64_seed-1'");
}

static void test_random(void) {
    static const char text[] = "[sweep]\n"
                               "base = base.ini\n"
                               "samples = 6\n"
                               "%s"
                               "[grid]\n"
                               "model.time_steps = 5, 10\n"
                               "[random]\n"
                               "train.lr = loguniform(1e-3, 1e-1)\n"
                               "neuron.leak = uniform(0.9, 1)\n"
                               "train.batch = int(16, 20)\n"
                               "solver.kind = choice(broyden, anderson)\n";
    char buf[1024];
    sweep_plan a, b, c;
    snprintf(buf, sizeof buf, text, "");
    EXPECT_OK(load("r.ini", buf, &a));
    EXPECT_OK(load("r.ini", buf, &b));
    snprintf(buf, sizeof buf, text, "seed = 2\n");
    EXPECT_OK(load("r.ini", buf, &c));
    EXPECT(a.table.n == 12 && a.points == 12, "runs %d points %d", a.table.n, a.points);
    int same = a.table.n == b.table.n, differ = 0, batches[5] = {0};
    for (int i = 0; same && i < a.table.n; i++)
        for (int k = 0; k < a.table.runs[i].n_args; k++)
            same &= !strcmp(a.table.runs[i].args[k], b.table.runs[i].args[k]);
    EXPECT(same, "the same file gives the same runs");
    for (int i = 0; i < a.table.n && i < c.table.n; i++)
        differ += strcmp(arg_value(&a.table.runs[i], "train.lr"),
                         arg_value(&c.table.runs[i], "train.lr")) != 0;
    EXPECT(differ > 0, "another [sweep] seed gives other points");
    for (int i = 0; i < a.table.n; i++) {
        const sweep_run *r = &a.table.runs[i];
        double lr = atof(arg_value(r, "train.lr")), leak = atof(arg_value(r, "neuron.leak"));
        int batch = atoi(arg_value(r, "train.batch"));
        const char *kind = arg_value(r, "solver.kind");
        EXPECT(lr >= 1e-3 && lr <= 1e-1, "lr %g", lr);
        EXPECT(leak >= 0.9 && leak <= 1, "leak %g", leak);
        EXPECT(batch >= 16 && batch <= 20, "batch %d", batch);
        if (batch >= 16 && batch <= 20) batches[batch - 16]++;
        EXPECT(!strcmp(kind, "broyden") || !strcmp(kind, "anderson"), "kind %s", kind);
        /* Crossed with the grid: sample k is the same at both grid points. */
        if (i < 6) {
            const sweep_run *o = &a.table.runs[i + 6];
            EXPECT(!strcmp(arg_value(r, "train.lr"), arg_value(o, "train.lr")) &&
                       !strcmp(arg_value(r, "model.time_steps"), "5") &&
                       !strcmp(arg_value(o, "model.time_steps"), "10"),
                   "sample %d at both grid points", i);
        }
        char name[256];
        snprintf(name, sizeof name, "time_steps-%s_lr-%s_leak-%s_batch-%d_kind-%s_seed-1",
                 arg_value(r, "model.time_steps"), arg_value(r, "train.lr"),
                 arg_value(r, "neuron.leak"), batch, kind);
        EXPECT(!strcmp(sweep_run_name(r), name), "name %s, want %s", sweep_run_name(r), name);
    }
    int distinct = 0;
    for (int k = 0; k < 5; k++)
        distinct += batches[k] > 0;
    EXPECT(distinct >= 2, "int() draws more than one value: %d", distinct);
    sweep_plan_free(&a);
    sweep_plan_free(&b);
    sweep_plan_free(&c);
}

static void test_errors(void) {
    /* [sweep] */
    LOAD_FAILS("e1.ini", "[sweep]\nseeds = 2\n", "e1.ini:", "[sweep] base is missing");
    LOAD_FAILS("e2.ini", "[sweep]\nbase = nope.ini\n", "e2.ini:2:", "base 'nope.ini'",
               "no such file");
    put("bad_base.ini", "[train]\nlrr = 0.1\n");
    LOAD_FAILS("e3.ini", "[sweep]\nbase = bad_base.ini\n",
               "e3.ini:2:", "the base config is not valid",
               "bad_base.ini:2:", "did you mean 'train.lr'?");
    LOAD_FAILS("e4.ini", "[sweep]\nbase = base.ini\nseeds = 0\n",
               "e4.ini:3:", "'seeds': '0' is not an integer in 1..1000");
    LOAD_FAILS("e5.ini", "[sweep]\nbase = base.ini\nseeds = 2x\n", "e5.ini:3:", "'2x'");
    LOAD_FAILS("e6.ini", "[sweep]\nbase = base.ini\nbase = base.ini\n",
               "e6.ini:3:", "repeated (first set at line 2)");
    LOAD_FAILS("e7.ini", "[sweep]\nbase = base.ini\nseedz = 2\n",
               "e7.ini:3:", "'seedz': unknown key",
               "[sweep] has base, seeds, dir, samples, name, seed");
    LOAD_FAILS("e8.ini", "[sweep]\nbase = base.ini\nname = a/b\n",
               "e8.ini:3:", "'a/b' is not a sweep name");
    LOAD_FAILS("bad name.ini", "[sweep]\nbase = base.ini\n",
               "bad name.ini:", "the sweep name 'bad name' (from the file name)",
               "set [sweep] name");
    LOAD_FAILS("e9.ini", "[sweep]\nbase = base.ini\ndir = out%j\n", "e9.ini:3:", "'%' at character",
               "sbatch");
    LOAD_FAILS("e10.ini", "[sweep]\nbase = base.ini\nsamples = 3\n",
               "e10.ini:3:", "samples is set but there is no [random] section");
    LOAD_FAILS("e11.ini", "[sweep]\nbase = base.ini\n[random]\ntrain.lr = uniform(0.1, 0.2)\n",
               "e11.ini:4:", "[random] needs [sweep] samples");
    /* Sections and keys */
    LOAD_FAILS("s1.ini", "[sweep]\nbase = base.ini\n[train]\nepochs = 2\n",
               "s1.ini:4:", "unknown section [train]",
               "config keys go into [grid], [random] or [set]");
    LOAD_FAILS("s2.ini", "[sweep]\nbase = base.ini\n[gird]\nx.y = 2\n",
               "s2.ini:4:", "unknown section [gird]");
    LOAD_FAILS("s3.ini", "epochs = 2\n", "s3.ini:1:", "outside any [section]");
    LOAD_FAILS("s4.ini", "[sweep]\nbase = base.ini\n[grid]\ntrain.lrr = 0.1, 0.2\n",
               "s4.ini:4:", "[grid] key 'train.lrr': unknown key", "did you mean 'train.lr'?");
    LOAD_FAILS("s5.ini", "[sweep]\nbase = base.ini\n[set]\nepochs = 2\n",
               "s5.ini:4:", "expected section.key");
    LOAD_FAILS("s6.ini", "[sweep]\nbase = base.ini\n[set]\ntrain.seed = 2\n",
               "s6.ini:4:", "did you mean 'run.seed'?");
    LOAD_FAILS("s7.ini", "[sweep]\nbase = base.ini\n[grid]\nrun.seed = 1, 2\n",
               "s7.ini:4:", "'run.seed' is set by the sweep itself");
    LOAD_FAILS("s8.ini", "[sweep]\nbase = base.ini\n[set]\nrun.dir = x\n",
               "s8.ini:4:", "'run.dir' is set by the sweep itself");
    LOAD_FAILS("s9.ini",
               "[sweep]\nbase = base.ini\n[grid]\ntrain.lr = 0.1, 0.2\n[set]\ntrain.lr = 0.3\n",
               "s9.ini:6:", "'train.lr': repeated (first set at line 4 in [grid])");
    LOAD_FAILS("s10.ini", "[sweep]\nbase = base.ini\n[grid\n",
               "s10.ini:3:", "section header '[grid' has no closing ']'");
    LOAD_FAILS("s11.ini", "[sweep]\nbase = base.ini\njust words\n",
               "s11.ini:3:", "syntax error: 'just words'");
    /* Values */
    LOAD_FAILS("v1.ini", "[sweep]\nbase = base.ini\n[grid]\nmodel.time_steps = 5, x\n",
               "v1.ini:4:", "[grid] entry 2", "'x' is not an integer");
    LOAD_FAILS("v2.ini", "[sweep]\nbase = base.ini\n[grid]\nneuron.leak = 1, 1.5\n",
               "v2.ini:4:", "entry 2", "1.5 is out of range");
    LOAD_FAILS("v3.ini", "[sweep]\nbase = base.ini\n[grid]\ntrain.lr = 0.1, inf\n",
               "v3.ini:4:", "not a finite number");
    LOAD_FAILS("v4.ini", "[sweep]\nbase = base.ini\n[grid]\ntrain.lr = 0.1, , 0.2\n",
               "v4.ini:4:", "entry 2 is empty");
    LOAD_FAILS("v5.ini", "[sweep]\nbase = base.ini\n[grid]\ntrain.lr =\n",
               "v5.ini:4:", "no values");
    LOAD_FAILS("v6.ini", "[sweep]\nbase = base.ini\n[grid]\nmodel.net = 400 (F400\n",
               "v6.ini:4:", "no matching ')'");
    LOAD_FAILS("v7.ini", "[sweep]\nbase = base.ini\n[set]\nsolver.kind = newton\n",
               "v7.ini:4:", "unknown value 'newton'", "broyden");
    LOAD_FAILS("v8.ini", "[sweep]\nbase = base.ini\n[grid]\ntrain.lr_milestones = (60, 30)\n",
               "v8.ini:4:", "not increasing");
    /* [random] */
    static const struct {
        const char *value, *want;
    } dists[] = {
        {"gauss(0, 1)", "is not a distribution"},
        {"uniform(0.2, 0.1)", "lo must be below hi"},
        {"uniform(0.1)", "takes two numbers"},
        {"uniform(0.1, nan)", "finite numbers"},
        {"loguniform(0, 1)", "lo must be above 0"},
        {"int(1.5, 3)", "must be integers"},
        {"int(5, 3)", "lo is above hi"},
        {"choice(0.1, x)", "'x' is not a number"},
        {"uniform(0.1, 0.2", "is not a distribution"},
    };
    for (size_t i = 0; i < sizeof dists / sizeof dists[0]; i++) {
        char text[256];
        snprintf(text, sizeof text,
                 "[sweep]\nbase = base.ini\nsamples = 2\n[random]\ntrain.lr = %s\n",
                 dists[i].value);
        LOAD_FAILS("d.ini", text, "d.ini:5:", dists[i].want);
    }
    /* A draw the config refuses is reported with its sample. */
    LOAD_FAILS(
        "d2.ini",
        "[sweep]\nbase = base.ini\nsamples = 2\n[random]\nmodel.time_steps = uniform(1, 9)\n",
        "d2.ini:5:", "[random] sample 0 draws", "is not an integer");
    /* [slurm] */
    LOAD_FAILS("l1.ini", "[sweep]\nbase = base.ini\n[slurm]\nextra = --mem=4G\n",
               "l1.ini:4:", "free-form sbatch options are not allowed",
               "ntasks, cpus_per_task, time");
    LOAD_FAILS("l2.ini", "[sweep]\nbase = base.ini\n[slurm]\ntime = 1 hour\n",
               "l2.ini:4:", "not a SLURM time limit");
    LOAD_FAILS("l3.ini", "[sweep]\nbase = base.ini\n[slurm]\ntime = 1:2:3:4\n",
               "l3.ini:4:", "not a SLURM time limit");
    LOAD_FAILS("l4.ini", "[sweep]\nbase = base.ini\n[slurm]\npartition = a b\n",
               "l4.ini:4:", "not a partition name");
    LOAD_FAILS("l5.ini", "[sweep]\nbase = base.ini\n[slurm]\nthrottle = 0\n",
               "l5.ini:4:", "'throttle': '0' is not an integer in 1..100000");
    LOAD_FAILS("l6.ini", "[sweep]\nbase = base.ini\n[slurm]\nsignal_seconds = 70000\n",
               "l6.ini:4:", "1..65535");
    LOAD_FAILS("l7.ini", "[sweep]\nbase = base.ini\n[slurm]\nntask = 2\n",
               "l7.ini:4:", "[slurm] key 'ntask': unknown key");
    /* Sizes */
    LOAD_FAILS("z1.ini",
               "[sweep]\nbase = base.ini\nseeds = 1000\n[grid]\ntrain.lr = 0.1, 0.2, 0.3, 0.4, "
               "0.5, 0.6, 0.7, 0.8, 0.9, 1, 2\ntrain.batch = 1, 2, 3, 4, 5, 6, 7, 8, 9, 10\n",
               "z1.ini:", "more than 100000 runs");
    char long_line[400];
    snprintf(long_line, sizeof long_line, "[sweep]\nbase = base.ini\n[set]\ndata.path = %0300d\n",
             7);
    LOAD_FAILS("z2.ini", long_line, "z2.ini:4:", "line longer than");
    /* A setting the config refuses only for a whole run names the run:
     * here run.dir, below a long working directory. */
    char deep[700];
    snprintf(deep, sizeof deep, "/tmp/%0160d/%0160d/%0160d", 1, 2, 3);
    sweep_plan p;
    EXPECT_FAILS(sweep_load(put("z3.ini", "[sweep]\nbase = base.ini\n"), deep, &p),
                 "z3.ini: run 0 (seed-1)", "fsnn train would refuse", "'run.dir'");
}

/* Bytes that could change a command's meaning are refused with line and
 * column, wherever they are. */
static void test_hostile(void) {
    static const struct {
        const char *text;
        size_t len;
        const char *want[3];
    } cases[] = {
#define CASE(t, ...)                                                                               \
    {                                                                                              \
        t, sizeof t - 1, {                                                                         \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    }
        CASE("[sweep]\nbase = base.ini\nname = x'y\n", "h.ini:3:", "''' at column 9", "quotes"),
        CASE("[sweep]\nbase = base.ini\nname = \"x\"\n", "h.ini:3:", "'\"' at column 8"),
        CASE("[sweep]\nbase = base.ini\n[set]\ndata.path = a;touch canary\n",
             "h.ini:4:", "';' at column 14"),
        CASE("[sweep]\nbase = base.ini\n[set]\ndata.path = $(touch canary)\n",
             "h.ini:4:", "'$' at column 13"),
        CASE("[sweep]\nbase = base.ini\n[grid]\ndata.path = a, `touch canary`\n",
             "h.ini:4:", "'`' at column 16"),
        CASE("[sweep]\nbase = base.ini\n[set]\ndata.path = a\\b\n",
             "h.ini:4:", "'\\' at column 14"),
        CASE("[sweep]\nbase = base.ini\n[set]\ndata.path = a\tb\n", "h.ini:4:", "byte 0x09",
             "a tab"),
        CASE("[sweep]\nbase = base.ini\n[set]\ndata.path = a\x1b[2Jb\n", "h.ini:4:", "byte 0x1b",
             "control character"),
        CASE("[sweep]\nbase = base.ini\n[set]\ndata.path = a\rb\n", "h.ini:4:", "byte 0x0d"),
        CASE("[sweep]\nbase = base.ini\n[set]\ndata.path = a\0b\n", "h.ini:4:", "NUL byte"),
        CASE("[sweep]\nbase = base.ini\n[set]\ndata.path = caf\xc3\xa9\n", "h.ini:4:", "byte 0xc3",
             "non-ASCII"),
        CASE("[sweep]\nbase = base.ini\ndir = a\x7f\n", "h.ini:3:", "byte 0x7f"),
        CASE("[sweep]\nbase = base.ini\n[gr$id]\n", "h.ini:3:", "'$'"),
        /* A newline inside a value ends the line: the rest is not a key. */
        CASE("[sweep]\nbase = base.ini\n[set]\ndata.path = a\ntouch canary\n",
             "h.ini:5:", "syntax error"),
#undef CASE
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sweep_plan p;
        int rc = sweep_load(put_bytes("h.ini", cases[i].text, cases[i].len), tmp_dir, &p);
        EXPECT(rc != 0, "case %zu accepted", i);
        for (int k = 0; k < 3 && cases[i].want[k]; k++)
            EXPECT(strstr(status_message(), cases[i].want[k]) != NULL,
                   "case %zu: message \"%s\" lacks \"%s\"", i, status_message(), cases[i].want[k]);
        /* Messages never carry the raw byte. */
        for (const char *c = status_message(); *c; c++)
            EXPECT((unsigned char)*c >= 0x20 && (unsigned char)*c < 0x7f,
                   "case %zu: byte 0x%02x in the message", i, (unsigned char)*c);
        status_clear();
    }
    /* Comments may hold any printable text. */
    sweep_plan p;
    EXPECT_OK(load("ok.ini",
                   "; 90.07 \xc2\xb1 0.10 it's $x; `y`\n[sweep]\nbase = base.ini\r\n"
                   "# \"quoted\"\n",
                   &p));
    sweep_plan_free(&p);
}

/* Compares two tables field by field. */
static int same_table(const sweep_table *a, const sweep_table *b) {
    if (a->n != b->n) return 0;
    for (int i = 0; i < a->n; i++) {
        const sweep_run *x = &a->runs[i], *y = &b->runs[i];
        if (strcmp(x->dir, y->dir) || strcmp(x->config, y->config) || x->n_args != y->n_args)
            return 0;
        for (int k = 0; k < x->n_args; k++)
            if (strcmp(x->args[k], y->args[k])) return 0;
    }
    return 1;
}

static void test_tsv(void) {
    sweep_plan p;
    EXPECT_OK(load("t.ini",
                   "[sweep]\nbase = base.ini\nseeds = 2\n[grid]\nmodel.net = 400 (F400), 64 "
                   "(F64)\n[set]\ndata.path = /data/a b (c)\n",
                   &p));
    char *text = NULL;
    size_t len = 0;
    EXPECT_OK(sweep_tsv_format(&p.table, &text, &len));
    char want_head[64];
    snprintf(want_head, sizeof want_head, "id\tdir\tconfig\targs\n0\t%s/t/runs/", tmp_dir);
    EXPECT(text && !strncmp(text, want_head, strlen(want_head)), "runs.tsv starts %.60s", text);
    char line1[2048];
    snprintf(line1, sizeof line1,
             "\n0\t%s/t/runs/net-400+F400_seed-1\t%s\tmodel.net=400 (F400)\tdata.path=/data/a b "
             "(c)\trun.seed=1\trun.dir=%s/t/runs/net-400+F400_seed-1\n1\t",
             tmp_dir, base_path, tmp_dir);
    EXPECT(text && strstr(text, line1), "row 0 byte for byte:\n%s", text);
    sweep_table t;
    EXPECT_OK(sweep_tsv_parse("runs.tsv", text, len, &t));
    EXPECT(same_table(&p.table, &t), "round trip");
    char *again = NULL;
    size_t again_len = 0;
    EXPECT_OK(sweep_tsv_format(&t, &again, &again_len));
    EXPECT(again && again_len == len && !memcmp(text, again, len), "format(parse(x)) == x");
    /* Through the file. */
    char path[700];
    snprintf(path, sizeof path, "%s/runs.tsv", tmp_dir);
    EXPECT_OK(sweep_tsv_write(path, &p.table));
    sweep_table u;
    EXPECT_OK(sweep_tsv_read(path, &u));
    EXPECT(same_table(&p.table, &u), "file round trip");
    sweep_table_free(&u);
    free(again);
    sweep_table_free(&t);
    free(text);
    sweep_plan_free(&p);

    /* The strict reader. */
    static const char H[] = "id\tdir\tconfig\targs\n";
    static const char R0[] = "0\t/s/runs/a\t/c.ini\tx.y=1\trun.seed=1\trun.dir=/s/runs/a\n";
    static const struct {
        const char *text;
        size_t len;
        const char *want;
    } bad[] = {
#define BAD(t, w) {t, sizeof t - 1, w}
        BAD("", "empty"),
        BAD("id\tdir\tconfig\targs", "no line end"),
        BAD("id\tdir\tconfig\n0\t/a\t/c\tx.y=1\trun.seed=1\trun.dir=/a\n", "expected the header"),
        BAD("id\tdir\tconfig\targs\n", "no runs"),
        BAD("id\tdir\tconfig\targs\r\n0\t/a\t/c\trun.seed=1\trun.dir=/a\r\n", "CR"),
        BAD("id\tdir\tconfig\targs\n0\t/a\t/c\trun.seed=1\trun.dir=/a", "no line end"),
        BAD("id\tdir\tconfig\targs\n1\t/a\t/c\trun.seed=1\trun.dir=/a\n", "runs.tsv:2: id '1'"),
        BAD("id\tdir\tconfig\targs\n00\t/a\t/c\trun.seed=1\trun.dir=/a\n", "id '00'"),
        BAD("id\tdir\tconfig\targs\n0\ta\t/c\trun.seed=1\trun.dir=a\n", "not an absolute path"),
        BAD("id\tdir\tconfig\targs\n0\t/a\tc\trun.seed=1\trun.dir=/a\n", "the config 'c'"),
        BAD("id\tdir\tconfig\targs\n0\t/a\t/c\trun.seed=1\n", "4 fields"),
        BAD("id\tdir\tconfig\targs\n0\t/a\t/c\t\trun.seed=1\trun.dir=/a\n", "field 4 is empty"),
        BAD("id\tdir\tconfig\targs\n0\t/a\t/c\trun.seed=1\trun.dir=/a\t\n", "field 6 is empty"),
        BAD("id\tdir\tconfig\targs\n0\t/a\t/c\tx=1\trun.seed=1\trun.dir=/a\n",
            "argument 1 'x=1' is not section.key=value"),
        BAD("id\tdir\tconfig\targs\n0\t/a\t/c\tX.Y=1\trun.seed=1\trun.dir=/a\n",
            "is not section.key=value"),
        BAD("id\tdir\tconfig\targs\n0\t/a\t/c\trun.seed=1\trun.dir=/b\n",
            "run.dir=/b differs from the dir column /a"),
        BAD("id\tdir\tconfig\targs\n0\t/a\t/c\trun.seed=1\trun.seed=2\trun.dir=/a\n",
            "exactly one run.seed and one run.dir"),
        BAD("id\tdir\tconfig\targs\n0\t/a\t/c\tx.y=1\tx.z=2\n", "found 0 and 0"),
        BAD("id\tdir\tconfig\targs\n0\t/a\t/c\tx.y=a\0b\trun.seed=1\trun.dir=/a\n", "NUL"),
        BAD("id\tdir\tconfig\targs\n0\t/a\t/c\tx.y=\xc3\xa9\trun.seed=1\trun.dir=/a\n",
            "byte 0xc3"),
        BAD("id\tdir\tconfig\targs\n0\t/a\t/c\tx.y=\x1b\trun.seed=1\trun.dir=/a\n", "byte 0x1b"),
        BAD("id\tdir\tconfig\targs\n0\t/a\t/c\trun.seed=1\trun.dir=/a\n\n",
            "runs.tsv:3: empty line"),
        BAD("id\tdir\tconfig\targs\n0\t/a\t/c\trun.seed=1\trun.dir=/a\n"
            "1\t/a\t/c\trun.seed=2\trun.dir=/a\n",
            "runs 0 and 1 have the same directory name 'a'"),
#undef BAD
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sweep_table x;
        int rc = sweep_tsv_parse("runs.tsv", bad[i].text, bad[i].len, &x);
        EXPECT(rc != 0, "bad case %zu accepted", i);
        EXPECT(strstr(status_message(), bad[i].want) != NULL, "bad case %zu: \"%s\" lacks \"%s\"",
               i, status_message(), bad[i].want);
        EXPECT(x.n == 0 && x.runs == NULL, "bad case %zu left a table", i);
        status_clear();
    }
    char good[256];
    snprintf(good, sizeof good, "%s%s", H, R0);
    sweep_table x;
    EXPECT_OK(sweep_tsv_parse("runs.tsv", good, strlen(good), &x));
    EXPECT(x.n == 1 && x.runs[0].n_args == 3 && !strcmp(x.runs[0].args[0], "x.y=1"), "good row");
    sweep_table_free(&x);
    snprintf(path, sizeof path, "%s/none.tsv", tmp_dir);
    EXPECT_FAILS(sweep_tsv_read(path, &x), "none.tsv: cannot open");
}

static void put_run_file(const char *run, const char *file, const char *text) {
    char path[1500];
    snprintf(path, sizeof path, "%s/%s", run, file);
    FILE *f = fopen(path, "wb");
    if (!f || fputs(text, f) < 0) {
        fprintf(stderr, "cannot write %s\n", path);
        exit(1);
    }
    fclose(f);
}

static void test_runstate(void) {
    char run[700];
    snprintf(run, sizeof run, "%s/run1", tmp_dir);
    mkdir(run, 0755);
    runstate st;
    runstate_get(run, &st);
    EXPECT(st.kind == RUNSTATE_PENDING && !st.has_file && st.epochs_done == -1, "empty: pending");
    EXPECT_OK(runstate_write(run, RUNSTATE_RUNNING, 1700000000, "123_4", -1));
    runstate_get(run, &st);
    EXPECT(st.kind == RUNSTATE_RUNNING && st.when == 1700000000 && !strcmp(st.job, "123_4") &&
               st.exit_code == -1,
           "running: %d %lld %s %d", st.kind, st.when, st.job, st.exit_code);
    EXPECT_OK(runstate_write(run, RUNSTATE_REQUEUED, 1700000001, "local", 3));
    char path[800], buf[128] = "";
    snprintf(path, sizeof path, "%s/job.state", run);
    FILE *f = fopen(path, "rb");
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f) fclose(f);
    buf[n] = '\0';
    EXPECT(!strcmp(buf, "requeued 1700000001 local 3\n"), "job.state text '%s'", buf);
    EXPECT(runstate_of_exit(0) == RUNSTATE_FINISHED && runstate_of_exit(3) == RUNSTATE_REQUEUED &&
               runstate_of_exit(1) == RUNSTATE_FAILED && runstate_of_exit(137) == RUNSTATE_FAILED,
           "exit codes");
    EXPECT_FAILS(runstate_write(run, RUNSTATE_PENDING, 1, "local", -1), "cannot record");
    static const struct {
        const char *text, *want;
    } bad[] = {
        {"", "empty"},
        {"done 1 local\n", "not 4 fields"},
        {"done 1 local 0 x\n", "not 4 fields"},
        {"done  1 local 0\n", "not 4 fields"},
        {"finished 1 local 0\n", "unknown state 'finished'"},
        {"done -1 local 0\n", "time '-1'"},
        {"done 1x local 0\n", "time '1x'"},
        {"done 1 lo$cal 0\n", "job id 'lo$cal'"},
        {"done 1 local 256\n", "exit code '256'"},
        {"done 1 local -3\n", "exit code '-3'"},
        {"done 1 local 0\n\n", "byte 0x0a"},
        {"done\t1 local 0\n", "byte 0x09"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        runstate s;
        memset(&s, 0, sizeof s);
        int rc = runstate_parse("job.state", bad[i].text, strlen(bad[i].text), &s);
        EXPECT(rc != 0, "job.state case %zu accepted", i);
        EXPECT(strstr(status_message(), bad[i].want) != NULL,
               "job.state case %zu: \"%s\" lacks \"%s\"", i, status_message(), bad[i].want);
        status_clear();
        put_run_file(run, "job.state", bad[i].text);
        runstate_get(run, &s);
        EXPECT(s.kind == RUNSTATE_UNKNOWN && strstr(s.why, bad[i].want) != NULL,
               "job.state case %zu: state %d why %s", i, s.kind, s.why);
    }
    /* Finished by metrics: the last row reached train.epochs. */
    put_run_file(run, "job.state", "failed 5 77 1\n");
    put_run_file(run, "config.ini", "[train]\nepochs = 3\n");
    put_run_file(run, "metrics.csv",
                 "epoch,lr,train_loss,train_acc,test_loss,test_acc\n"
                 "1,0.05,2.0,50.0,1.9,55.5\n"
                 "2,0.05,1.0,70.0,1.2,72.25\n");
    runstate_get(run, &st);
    EXPECT(st.kind == RUNSTATE_FAILED && st.epochs_done == 2 && st.epochs == 3 &&
               st.test_acc == 72.25 && st.exit_code == 1 && !strcmp(st.job, "77"),
           "2 of 3 epochs: kind %d done %d of %d acc %g", st.kind, st.epochs_done, st.epochs,
           st.test_acc);
    /* A row being written (no line end yet) does not count. */
    put_run_file(run, "metrics.csv",
                 "epoch,lr,train_loss,train_acc,test_loss,test_acc\n"
                 "1,0.05,2.0,50.0,1.9,55.5\n"
                 "2,0.05,1.0,70.0,1.2,72.25\n"
                 "3,0.05");
    runstate_get(run, &st);
    EXPECT(st.kind == RUNSTATE_FAILED && st.epochs_done == 2, "partial row: %d", st.epochs_done);
    put_run_file(run, "metrics.csv",
                 "epoch,lr,train_loss,train_acc,test_loss,test_acc\n"
                 "1,0.05,2.0,50.0,1.9,55.5\n"
                 "2,0.05,1.0,70.0,1.2,72.25\n"
                 "3,0.005,0.9,75.0,1.1,80.5\n");
    runstate_get(run, &st);
    EXPECT(st.kind == RUNSTATE_FINISHED && st.epochs_done == 3 && st.test_acc == 80.5,
           "3 of 3 epochs: finished whatever job.state says (%d)", st.kind);
    put_run_file(run, "config.ini", "[train]\nepochs = zz\n");
    runstate_get(run, &st);
    EXPECT(st.kind == RUNSTATE_FAILED && st.epochs == -1, "unreadable config.ini: epochs unknown");
    EXPECT(!*status_message(), "runstate_get leaves no status: %s", status_message());
    /* The last error line, control characters replaced. */
    char line[64];
    EXPECT(!runstate_last_error(run, line, sizeof line), "no train.log");
    put_run_file(run, "train.log",
                 "error: first\nepoch 1/2\n  error: indented\n"
                 "error: second \x1b[31mred\nwarning: w\n");
    EXPECT(runstate_last_error(run, line, sizeof line) && !strcmp(line, "error: second ?[31mred"),
           "last error line '%s'", line);
    char small[8];
    EXPECT(runstate_last_error(run, small, sizeof small) && !strcmp(small, "error: "), "cut '%s'",
           small);
    EXPECT(!strcmp(runstate_name(RUNSTATE_FINISHED), "finished") &&
               !strcmp(runstate_name(RUNSTATE_PENDING), "pending"),
           "names");
}

/* Applies 1-4 random edits (replace, delete, insert a byte, often a TAB,
 * LF or NUL) to text[0..*len), which has room for 4 more bytes. */
static void mutate(char *text, size_t *len, uint32_t trial) {
    double u[13];
    for (int i = 0; i < 13; i++)
        u[i] = rng_uniform(7, RNG_TEST, 0, trial, (uint64_t)i);
    int edits = 1 + (int)(u[0] * 4);
    static const char special[] = "\t\n\0\r=.,()/$;'";
    for (int e = 0; e < edits; e++) {
        size_t pos = (size_t)(u[1 + 3 * e] * (double)*len);
        double kind = u[2 + 3 * e], pick = u[3 + 3 * e];
        char c = pick < 0.5 ? special[(int)(pick * 2 * (sizeof special - 1))]
                            : (char)(int)((pick - 0.5) * 2 * 256);
        if (kind < 0.4 && pos < *len) {
            text[pos] = c;
        } else if (kind < 0.7 && pos < *len) {
            memmove(text + pos, text + pos + 1, *len - pos - 1);
            (*len)--;
        } else {
            memmove(text + pos + 1, text + pos, *len - pos);
            text[pos] = c;
            (*len)++;
        }
    }
}

/* Damaged runs.tsv and sweep files: every one is refused with a message or,
 * if still valid, read consistently; never a crash (ASan build). A runs.tsv
 * that is accepted formats back to the same bytes. */
static void test_mutations(void) {
    sweep_plan p;
    EXPECT_OK(load("m.ini",
                   "[sweep]\nbase = base.ini\nseeds = 2\n[grid]\nneuron.leak = 1, 0.95\n"
                   "[set]\ndata.path = /d x\n",
                   &p));
    char *good = NULL;
    size_t good_len = 0;
    EXPECT_OK(sweep_tsv_format(&p.table, &good, &good_len));
    sweep_plan_free(&p);
    char *buf = malloc(good_len + 8);
    int accepted = 0, refused = 0, silent = 0, unstable = 0;
    for (uint32_t trial = 0; buf && good && trial < 3000; trial++) {
        size_t len = good_len;
        memcpy(buf, good, len);
        mutate(buf, &len, trial);
        sweep_table t;
        if (sweep_tsv_parse("m.tsv", buf, len, &t) == 0) {
            char *again = NULL;
            size_t again_len = 0;
            if (sweep_tsv_format(&t, &again, &again_len) != 0 || again_len != len ||
                memcmp(again, buf, len))
                unstable++;
            free(again);
            sweep_table_free(&t);
            accepted++;
        } else {
            silent += status_message()[0] == '\0';
            refused++;
        }
        status_clear();
    }
    printf("runs.tsv mutations: %d accepted, %d refused\n", accepted, refused);
    EXPECT(refused > 2000 && silent == 0 && unstable == 0,
           "runs.tsv mutations: %d accepted, %d refused, %d without a message, %d not "
           "formatting back",
           accepted, refused, silent, unstable);
    free(buf);
    free(good);

    static const char sweep_text[] = "; mutated\n[sweep]\nbase = base.ini\nseeds = 2\nsamples = 2\n"
                                     "[grid]\nmodel.net = 400 (F400), 64(F64)\n"
                                     "train.lr_milestones = (3, 6), ()\n"
                                     "[random]\ntrain.lr = loguniform(0.01, 0.1)\n"
                                     "[set]\ndata.path = /d x\n[slurm]\ntime = 1:00:00\n";
    char sbuf[sizeof sweep_text + 8];
    accepted = refused = silent = 0;
    int bad_tables = 0;
    for (uint32_t trial = 0; trial < 400; trial++) {
        size_t len = sizeof sweep_text - 1;
        memcpy(sbuf, sweep_text, len);
        mutate(sbuf, &len, 100000 + trial);
        if (sweep_load(put_bytes("m2.ini", sbuf, len), tmp_dir, &p) == 0) {
            char *tsv = NULL;
            size_t tsv_len = 0;
            sweep_table back;
            if (p.table.n < 1 || sweep_tsv_format(&p.table, &tsv, &tsv_len) != 0 ||
                sweep_tsv_parse("m2", tsv, tsv_len, &back) != 0)
                bad_tables++;
            else
                sweep_table_free(&back);
            free(tsv);
            sweep_plan_free(&p);
            accepted++;
        } else {
            silent += status_message()[0] == '\0';
            refused++;
        }
        status_clear();
    }
    printf("sweep file mutations: %d accepted, %d refused\n", accepted, refused);
    EXPECT(accepted > 0 && refused > 0 && silent == 0 && bad_tables == 0,
           "sweep file mutations: %d accepted, %d refused, %d without a message, %d accepted "
           "with a table runs.tsv cannot hold",
           accepted, refused, silent, bad_tables);
}

/* configs/sweeps/: the paper's sweeps and the tiny demo load. */
static void test_shipped(const char *sweeps_dir) {
    static const struct {
        const char *file;
        int runs;
        const char *args[4];
    } shipped[] = {
        {"fmnist_paper.ini", 10, {"neuron.leak=1", "run.seed=5", NULL}},
        {"mnist_paper.ini", 10, {"neuron.leak=1", "neuron.leak=0.95", "run.seed=5", NULL}},
        {"nmnist_paper.ini", 5, {"run.seed=1", "run.seed=5", NULL}},
        {"cifar10_paper.ini",
         10,
         {"model.net=96C3s-256C3-384C3s-384C3-256C3 (F96C3u)",
          "model.net=128C3s-256C3-512C3s-1024C3-512C3 (F128C3u)", NULL}},
        {"cifar100_paper.ini", 5, {"run.seed=3", NULL}},
        {"tiny.ini", 6, {"train.epochs=2", "neuron.leak=0.95", "run.seed=3", NULL}},
    };
    for (size_t i = 0; i < sizeof shipped / sizeof shipped[0]; i++) {
        char path[700];
        snprintf(path, sizeof path, "%s/%s", sweeps_dir, shipped[i].file);
        sweep_plan p;
        EXPECT_OK(sweep_load(path, tmp_dir, &p));
        EXPECT(p.table.n == shipped[i].runs, "%s: %d runs", path, p.table.n);
        for (int k = 0; shipped[i].args[k]; k++) {
            int found = 0;
            for (int r = 0; r < p.table.n; r++)
                found |= has_arg(&p.table.runs[r], shipped[i].args[k]);
            EXPECT(found, "%s: no run has %s", path, shipped[i].args[k]);
        }
        sweep_plan_free(&p);
    }
}

int main(int argc, char **argv) {
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(base_path, sizeof base_path, "%s/base.ini", tmp_dir);
    put("base.ini", "[run]\ndir = runs/x\n[train]\nepochs = 3\n");
    test_grid();
    test_names();
    test_random();
    test_errors();
    test_hostile();
    test_tsv();
    test_runstate();
    test_mutations();
    if (argc > 1)
        test_shipped(argv[1]);
    else
        EXPECT(argc > 1, "usage: test_sweep CONFIGS_SWEEPS_DIR");
    testutil_remove_tree(tmp_dir);
    return check_finish("test_sweep");
}
