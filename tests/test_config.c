/* config: defaults, INI files, overrides, every kind of error with its
 * "FILE:LINE:" prefix, model.net resolution, and the write -> load round trip
 * (field by field and byte for byte). Files are written to a fresh folder
 * under /tmp. */
#include <dirent.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "config.h"
#include "status.h"
#include "testutil.h"

static char tmp_dir[] = "/tmp/fsnn_test_config_XXXXXX";

/* Writes `len` bytes to tmp_dir/name; returns the path (static buffer). */
static const char *put_bytes(const char *name, const char *text, size_t len) {
    static char path[512];
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

/* Loads `text` as file `name` over the defaults. */
static int load(const char *name, const char *text, fsnn_cfg *cfg) {
    config_defaults(cfg);
    return config_load(put(name, text), cfg);
}

static void test_defaults(void) {
    fsnn_cfg c;
    config_defaults(&c);
    EXPECT(!strcmp(c.run_dir, "runs/default"), "run.dir %s", c.run_dir);
    EXPECT(c.run_seed == 1, "run.seed");
    EXPECT(c.run_threads == 0, "run.threads");
    EXPECT(c.run_progress == -1, "run.progress %d", c.run_progress);
    EXPECT(c.data_dataset == DATASET_FMNIST, "data.dataset");
    EXPECT(!strcmp(c.data_path, "data/fashion-mnist"), "data.path %s", c.data_path);
    EXPECT(c.data_train_limit == 0 && c.data_test_limit == 0, "data limits");
    EXPECT(c.data_augment == -1, "data.augment %d (auto)", c.data_augment);
    static const char *const sets[] = {"fmnist", "mnist", "cifar10", "cifar100", "nmnist"};
    static const cfg_dataset kinds[] = {DATASET_FMNIST, DATASET_MNIST, DATASET_CIFAR10,
                                        DATASET_CIFAR100, DATASET_NMNIST};
    for (int i = 0; i < 5; i++) {
        char kv[64];
        snprintf(kv, sizeof kv, "data.dataset=%s", sets[i]);
        EXPECT_OK(config_override(kv, &c));
        EXPECT(c.data_dataset == kinds[i], "%s gave %d", kv, (int)c.data_dataset);
    }
    EXPECT_FAILS(config_override("data.dataset=cifar", &c), "data.dataset", "cifar10");
    EXPECT_OK(config_override("data.augment=on", &c));
    EXPECT(c.data_augment == 1, "data.augment=on gave %d", c.data_augment);
    config_defaults(&c);
    EXPECT(!strcmp(c.model_net, "400 (F400)"), "model.net %s", c.model_net);
    EXPECT(c.model_hidden == 400, "model_hidden %d", c.model_hidden);
    EXPECT(c.model_time_steps == 5, "model.time_steps");
    EXPECT(c.model_spike_product == SPIKE_AUTO, "model.spike_product");
    EXPECT(c.model_conv == CONV_ONEDNN, "model.conv");
    EXPECT(c.neuron_vth == 2.0f && c.neuron_leak == 1.0f, "neuron");
    EXPECT(c.solver_kind == SOLVER_BROYDEN, "solver.kind");
    EXPECT(c.solver_max_iters == 30, "solver.max_iters");
    EXPECT(c.solver_tol == 2e-10, "solver.tol %g", c.solver_tol);
    EXPECT(c.solver_anderson_m == 5, "solver.anderson_m");
    EXPECT(c.train_epochs == 100 && c.train_batch == 128 && c.train_test_batch == 200, "train");
    EXPECT(c.train_lr == 0.05 && c.train_momentum == 0.9 && c.train_weight_decay == 5e-4,
           "train.lr/momentum/weight_decay");
    EXPECT(c.train_optimizer == OPTIM_SGD, "train.optimizer");
    EXPECT(c.train_n_milestones == 3 && c.train_lr_milestones[0] == 30 &&
               c.train_lr_milestones[1] == 60 && c.train_lr_milestones[2] == 90,
           "train.lr_milestones");
    EXPECT(c.train_lr_gamma == 0.1 && c.train_warmup_iters == 0, "lr_gamma, warmup_iters");
    EXPECT(c.train_dropout == 0.2f, "train.dropout");
    EXPECT(c.train_adam_beta1 == 0.9 && c.train_adam_beta2 == 0.999 && c.train_adam_eps == 1e-8,
           "adam");
    EXPECT(c.parallel_deterministic == 1 && c.parallel_micro_batch == 32, "parallel");
    EXPECT(c.parallel_model_ranks == 1, "parallel.model_ranks %d", c.parallel_model_ranks);
    EXPECT_OK(config_resolve("defaults", &c));
    EXPECT(c.model_hidden == 400, "resolved hidden %d", c.model_hidden);
}

/* configs_dir: the repository's configs/ (first argument), or NULL. */
static void test_good_file(const char *configs_dir) {
    fsnn_cfg c;
    /* Comments, indentation, CRLF, an inline comment, ':' as separator. */
    EXPECT_OK(load("good.ini",
                   "; a comment\n"
                   "# another\n"
                   "[run]\n"
                   "dir = runs/x y\n"
                   "  seed = 42\n"
                   "progress = plain\r\n"
                   "[data]\n"
                   "dataset = mnist\n"
                   "train_limit = 2000 ; a quick run\n"
                   "[model]\n"
                   "\tnet = 64(F64)\n"
                   "[neuron]\n"
                   "leak: 0.95\n"
                   "[train]\n"
                   "lr_milestones =\n"
                   "optimizer = adam\n",
                   &c));
    EXPECT(!strcmp(c.run_dir, "runs/x y"), "run.dir '%s'", c.run_dir);
    EXPECT(c.run_seed == 42, "seed");
    EXPECT(c.run_progress == 0, "progress %d", c.run_progress);
    EXPECT(c.data_dataset == DATASET_MNIST, "dataset");
    EXPECT(c.data_train_limit == 2000, "train_limit %ld", c.data_train_limit);
    EXPECT(!strcmp(c.model_net, "64(F64)") && c.model_hidden == 64, "net %s", c.model_net);
    EXPECT(c.neuron_leak == 0.95f, "leak %g", c.neuron_leak);
    EXPECT(c.train_n_milestones == 0, "empty milestones: %d", c.train_n_milestones);
    EXPECT(c.train_optimizer == OPTIM_ADAM, "optimizer");
    EXPECT(c.train_epochs == 100, "untouched key keeps its default");
    EXPECT_OK(config_resolve("good.ini", &c));

    EXPECT_OK(load("bom.ini", "\xEF\xBB\xBF[train]\nlr = 0.5\n", &c));
    EXPECT(c.train_lr == 0.5, "lr after BOM %g", c.train_lr);

    config_defaults(&c);
    EXPECT_OK(config_load_string("inline", "[solver]\nkind = anderson\nanderson_m = 7\n", &c));
    EXPECT(c.solver_kind == SOLVER_ANDERSON && c.solver_anderson_m == 7, "solver from string");

    /* Every shipped experiment must load and resolve. */
    static const char *const shipped[] = {"demo.ini", "fmnist_fc_if.ini", "fmnist_fc_lif.ini",
                                          "mnist_fc_if.ini"};
    if (!configs_dir) {
        printf("note: no configs folder given as argument; the shipped configs are not checked\n");
        return;
    }
    for (int i = 0; i < 4; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", configs_dir, shipped[i]);
        config_defaults(&c);
        EXPECT_OK(config_load(path, &c));
        EXPECT_OK(config_resolve(path, &c));
    }
}

static void test_file_errors(void) {
    fsnn_cfg c;
    EXPECT_FAILS(load("k.ini", "[train]\nepochs = 1\nlrr = 0.1\n", &c), "k.ini:3:", "'train.lrr'",
                 "did you mean 'train.lr'?");
    EXPECT_FAILS(load("sec.ini", "[run]\nseed = 2\n\n[trian]\nepochs = 1\n", &c),
                 "sec.ini:5:", "unknown section [trian]", "did you mean 'train.epochs'?");
    EXPECT_FAILS(load("wrongsec.ini", "[train]\nseed = 3\n", &c),
                 "wrongsec.ini:2:", "did you mean 'run.seed'?");
    EXPECT_FAILS(load("far.ini", "[train]\nzzzzzz = 3\n", &c), "far.ini:2:", "unknown key",
                 "[train] has epochs, batch,", "adam_eps");
    EXPECT_FAILS(load("farsec.ini", "[zzzzzz]\nepochs = 3\n", &c),
                 "farsec.ini:2:", "did you mean 'train.epochs'?");
    EXPECT_FAILS(load("farsec2.ini", "[zzzzzz]\nqqqqqq = 3\n", &c),
                 "farsec2.ini:2:", "unknown section [zzzzzz]",
                 "the sections are run, data, model, compute, neuron, "
                 "solver, train");
    EXPECT_FAILS(load("nosec.ini", "epochs = 3\n", &c), "nosec.ini:1:", "outside any [section]",
                 "train.epochs");
    EXPECT_FAILS(load("int.ini", "[model]\ntime_steps = 12x\n", &c),
                 "int.ini:2:", "'model.time_steps'", "'12x' is not an integer");
    EXPECT_FAILS(load("range.ini", "[train]\nbatch = 0\n", &c), "range.ini:2:", "out of range",
                 "1..65536");
    EXPECT_FAILS(load("mr.ini", "[parallel]\nmodel_ranks = 0\n", &c),
                 "mr.ini:2:", "'parallel.model_ranks'", "out of range");
    EXPECT_FAILS(load("big.ini", "[train]\nepochs = 99999999999999999999\n", &c),
                 "big.ini:2:", "out of range");
    EXPECT_FAILS(load("neg.ini", "[data]\ntrain_limit = -5\n", &c), "neg.ini:2:", ">= 0");
    EXPECT_FAILS(load("threads.ini", "[run]\nthreads = 257\n", &c), "threads.ini:2:", "0..256");
    EXPECT_FAILS(load("enum.ini", "[solver]\nkind = newton\n", &c), "enum.ini:2:", "'newton'",
                 "broyden, fixed_point, anderson, exact");
    EXPECT_FAILS(load("case.ini", "[data]\ndataset = MNIST\n", &c), "case.ini:2:", "fmnist, mnist");
    EXPECT_FAILS(load("rep.ini", "[train]\nlr = 0.1\n; note\nlr = 0.2\n", &c),
                 "rep.ini:4:", "repeated", "line 2");
    EXPECT_FAILS(load("rep2.ini", "[train]\nlr = 1\n[run]\nseed = 1\n[train]\nlr = 2\n", &c),
                 "rep2.ini:6:", "repeated");
    EXPECT_FAILS(load("nan.ini", "[train]\nlr = nan\n", &c), "nan.ini:2:", "not a finite");
    EXPECT_FAILS(load("inf.ini", "[solver]\ntol = inf\n", &c), "inf.ini:2:", "not a finite");
    EXPECT_FAILS(load("ninf.ini", "[train]\nweight_decay = -inf\n", &c),
                 "ninf.ini:2:", "not a finite");
    EXPECT_FAILS(load("huge.ini", "[train]\nlr = 1e999\n", &c), "huge.ini:2:", "not a finite");
    EXPECT_FAILS(load("real.ini", "[train]\nlr = 0.05x\n", &c), "real.ini:2:", "not a number");
    EXPECT_FAILS(load("leak.ini", "[neuron]\nleak = 0\n", &c), "leak.ini:2:", "(0, 1]");
    EXPECT_FAILS(load("leak2.ini", "[neuron]\nleak = 1.01\n", &c), "leak2.ini:2:", "(0, 1]");
    EXPECT_FAILS(load("mom.ini", "[train]\nmomentum = 1\n", &c), "mom.ini:2:", "[0, 1)");
    EXPECT_FAILS(load("flt.ini", "[neuron]\nvth = 1e39\n", &c), "flt.ini:2:", "for a float");
    EXPECT_FAILS(load("tiny.ini", "[neuron]\nvth = 1e-50\n", &c), "tiny.ini:2:", "> 0");
    EXPECT_FAILS(load("seed.ini", "[run]\nseed = -1\n", &c), "seed.ini:2:", "not an integer");
    EXPECT_FAILS(load("seed2.ini", "[run]\nseed = 18446744073709551616\n", &c),
                 "seed2.ini:2:", "out of range");
    EXPECT_OK(load("seed3.ini", "[run]\nseed = 18446744073709551615\n", &c));
    EXPECT(c.run_seed == UINT64_MAX, "largest seed");
    EXPECT_FAILS(load("net.ini", "[model]\nnet = 400 (F300)\n", &c), "net.ini:2:", "'model.net'",
                 "character 7", "gives 300 but layer 1 outputs 400");
    /* Every net of the notation loads; only "N (FN)" has a hidden size. */
    EXPECT_OK(load("conv.ini", "[model]\nnet = 64C5s (F64C5)\n", &c));
    EXPECT(!strcmp(c.model_net, "64C5s (F64C5)") && c.model_hidden == 0, "conv net %s -> %d",
           c.model_net, c.model_hidden);
    EXPECT_OK(load("alex.ini", "[model]\nnet = 96C3s-256C3-384C3s-384C3-256C3 (F96C3u)\n", &c));
    EXPECT(c.model_hidden == 0, "AlexNet-F -> %d", c.model_hidden);
    EXPECT_FAILS(load("conv2.ini", "[model]\nnet = 64C5x (F64C5)\n", &c),
                 "conv2.ini:2:", "'model.net'", "character 5 ('x')", "after the kernel size");
    EXPECT_FAILS(load("net2.ini", "[model]\nnet = 400 (F400) x\n", &c),
                 "net2.ini:2:", "character 12");
    EXPECT_FAILS(load("net3.ini", "[model]\nnet = (F400)\n", &c), "net3.ini:2:", "character 1");
    EXPECT_FAILS(load("net4.ini", "[model]\nnet = 0 (F0)\n", &c), "net4.ini:2:", "character 1",
                 "out of range");
    EXPECT_FAILS(load("ms.ini", "[train]\nlr_milestones = 30, 20\n", &c),
                 "ms.ini:2:", "not increasing");
    EXPECT_FAILS(load("ms2.ini", "[train]\nlr_milestones = 30,,40\n", &c), "ms2.ini:2:", "entry 2");
    EXPECT_FAILS(load("ms3.ini", "[train]\nlr_milestones = 30, 60,\n", &c), "ms3.ini:2:", "empty");
    EXPECT_FAILS(load("ms4.ini", "[train]\nlr_milestones = -1\n", &c),
                 "ms4.ini:2:", "out of range");
    EXPECT_FAILS(
        load("ms5.ini", "[train]\nlr_milestones = 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17\n", &c),
        "ms5.ini:2:", "more than 16");
    EXPECT_FAILS(load("syn.ini", "[train\nepochs = 1\n", &c), "syn.ini:1:", "syntax error", "']'");
    EXPECT_FAILS(load("syn2.ini", "[train]\njust words\n", &c), "syn2.ini:2:", "syntax error",
                 "just words");
    EXPECT_FAILS(load("first.ini", "[train]\nlr = x\nbatch = y\n", &c), "first.ini:2:", "'x'");
    EXPECT_FAILS(load("first2.ini", "[oops\n[train]\nlr = x\n", &c),
                 "first2.ini:1:", "syntax error");
    char longline[400];
    snprintf(longline, sizeof longline, "[run]\ndir = %0250d\n", 7);
    EXPECT_FAILS(load("long.ini", longline, &c), "long.ini:2:", "longer than");
    EXPECT_FAILS(load("ctl.ini", "[run]\ndir = a\tb\n", &c), "ctl.ini:2:", "control character");
    /* Written back as "dir = ;x", this would read as an empty comment. */
    EXPECT_FAILS(load("semi.ini", "[run]\ndir =;x\n", &c), "semi.ini:2:", "comment");
    EXPECT_FAILS(load("empty.ini", "[run]\ndir =\n", &c), "empty.ini:2:", "empty");
    EXPECT_FAILS(load("netempty.ini", "[model]\nnet =\n", &c), "netempty.ini:2:", "empty");
    config_defaults(&c);
    EXPECT_FAILS(config_load(put_bytes("nul.ini", "[run]\nseed = 1\0\n", 16), &c),
                 "nul.ini:2:", "NUL");
    char missing[512];
    snprintf(missing, sizeof missing, "%s/no_such.ini", tmp_dir);
    EXPECT_FAILS(config_load(missing, &c), "no_such.ini", "cannot open");
    EXPECT_FAILS(config_load(tmp_dir, &c), tmp_dir, "cannot read");
    EXPECT_FAILS(config_load_string("text", "[train]\nlr = -1\n", &c), "text:2:", "> 0");
}

static void test_overrides(void) {
    fsnn_cfg c;
    config_defaults(&c);
    EXPECT_OK(config_override("train.lr=0.1", &c));
    EXPECT(c.train_lr == 0.1, "lr %g", c.train_lr);
    EXPECT_OK(config_override("  train.batch = 64  ", &c));
    EXPECT(c.train_batch == 64, "batch %d", c.train_batch);
    EXPECT_OK(config_override("train.lr=0.3", &c));
    EXPECT(c.train_lr == 0.3, "the last override wins: %g", c.train_lr);
    EXPECT_OK(config_override("model.net=12 (F12)", &c));
    EXPECT_OK(config_resolve("command line", &c));
    EXPECT(c.model_hidden == 12, "hidden %d", c.model_hidden);
    EXPECT_OK(config_override("model.net=800-400 (F800)", &c));
    EXPECT_OK(config_resolve("command line", &c));
    EXPECT(c.model_hidden == 0, "an FC chain has no single hidden size: %d", c.model_hidden);
    EXPECT_OK(config_override("model.net=12 (F12)", &c));
    EXPECT_OK(config_override("train.lr_milestones=", &c));
    EXPECT(c.train_n_milestones == 0, "milestones cleared");
    EXPECT_FAILS(config_override("epochs", &c), "command line: 'epochs'", "section.key=value");
    EXPECT_FAILS(config_override("epochs=5", &c), "command line: 'epochs=5'", "section.key=value");
    EXPECT_FAILS(config_override("train.epochs=many", &c), "command line: 'train.epochs=many'",
                 "not an integer");
    EXPECT_FAILS(config_override("train.lrr=1", &c), "command line: 'train.lrr=1'",
                 "did you mean 'train.lr'?");
    EXPECT_FAILS(config_override("foo.bar=1", &c), "command line", "unknown section [foo]");
    EXPECT_FAILS(config_override("run.dir=a ;b", &c), "command line", "comment");
    EXPECT_FAILS(config_override("train.epochs=", &c), "command line", "not an integer");
    char big[1200];
    memset(big, 'a', sizeof big);
    memcpy(big, "run.dir=", 8);
    big[sizeof big - 1] = '\0';
    EXPECT_FAILS(config_override(big, &c), "command line", "longer than");
    memcpy(big + 200, "\0", 1);
    EXPECT_FAILS(config_override(big, &c), "command line", "characters long");
}

static void test_resolve(void) {
    fsnn_cfg c;
    static const struct {
        const char *net;
        int hidden;
    } good[] = {{"400 (F400)", 400}, {"400(F400)", 400}, {"7 ( F7 )", 7}, {" 1 (F1) ", 1}};
    for (int i = 0; i < 4; i++) {
        config_defaults(&c);
        snprintf(c.model_net, sizeof c.model_net, "%s", good[i].net);
        EXPECT_OK(config_resolve("r.ini", &c));
        EXPECT(c.model_hidden == good[i].hidden, "'%s' -> %d", good[i].net, c.model_hidden);
    }
    config_defaults(&c);
    snprintf(c.model_net, sizeof c.model_net, "400 (F4000)");
    EXPECT_FAILS(config_resolve("r.ini", &c), "r.ini: key 'model.net'", "character 7");
    snprintf(c.model_net, sizeof c.model_net, "400 (F400");
    EXPECT_FAILS(config_resolve("r.ini", &c), "character 10", "end of text", "')'");
    snprintf(c.model_net, sizeof c.model_net, "64C5s (F64C5)\x01");
    EXPECT_FAILS(config_resolve("r.ini", &c), "r.ini: key 'model.net'", "character 14",
                 "control character 0x01");
    config_defaults(&c);
    c.train_lr_milestones[1] = 30;
    EXPECT_FAILS(config_resolve("r.ini", &c), "r.ini: key 'train.lr_milestones'", "not increasing");
    config_defaults(&c);
    c.train_n_milestones = CFG_MILESTONES_MAX + 1;
    EXPECT_FAILS(config_resolve("r.ini", &c), "r.ini", "entries");
}

/* Writes cfg as INI text into a malloc'ed string. */
static char *write_text(const fsnn_cfg *c) {
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    EXPECT(mem != NULL, "open_memstream");
    EXPECT_OK(config_write(c, mem));
    fclose(mem);
    return text;
}

static void expect_same(const fsnn_cfg *a, const fsnn_cfg *b) {
#define SAME(f) EXPECT(a->f == b->f, "field %s differs after the round trip", #f)
    EXPECT(!strcmp(a->run_dir, b->run_dir), "run_dir");
    SAME(run_seed);
    SAME(run_threads);
    SAME(run_progress);
    SAME(data_dataset);
    EXPECT(!strcmp(a->data_path, b->data_path), "data_path");
    SAME(data_train_limit);
    SAME(data_test_limit);
    EXPECT(!strcmp(a->model_net, b->model_net), "model_net");
    SAME(model_hidden);
    SAME(model_time_steps);
    SAME(model_spike_product);
    SAME(model_conv);
    SAME(neuron_vth);
    SAME(neuron_leak);
    SAME(solver_kind);
    SAME(solver_max_iters);
    SAME(solver_tol);
    SAME(solver_anderson_m);
    SAME(train_epochs);
    SAME(train_batch);
    SAME(train_test_batch);
    SAME(train_lr);
    SAME(train_momentum);
    SAME(train_weight_decay);
    SAME(train_optimizer);
    SAME(train_n_milestones);
    for (int i = 0; i < CFG_MILESTONES_MAX; i++)
        SAME(train_lr_milestones[i]);
    SAME(train_lr_gamma);
    SAME(train_warmup_iters);
    SAME(train_dropout);
    SAME(train_dropout_channel);
    SAME(train_adam_beta1);
    SAME(train_adam_beta2);
    SAME(train_adam_eps);
    SAME(train_max_bad_steps);
    SAME(checkpoint_every_steps);
    SAME(parallel_deterministic);
    SAME(parallel_micro_batch);
    SAME(parallel_model_ranks);
#undef SAME
    EXPECT(memcmp(a, b, sizeof *a) == 0, "the structs differ byte for byte");
}

static void round_trip(const fsnn_cfg *a) {
    char *text = write_text(a);
    fsnn_cfg b;
    config_defaults(&b);
    EXPECT_OK(config_load(put("round.ini", text), &b));
    EXPECT_OK(config_resolve("round.ini", &b));
    expect_same(a, &b);
    char *again = write_text(&b);
    EXPECT(!strcmp(text, again), "written text differs:\n%s\n---\n%s", text, again);
    free(text);
    free(again);
}

static void test_round_trip(void) {
    fsnn_cfg a;
    config_defaults(&a);
    EXPECT_OK(config_resolve("defaults", &a));
    round_trip(&a);

    /* A value other than the default for every key. */
    static const char *const set[] = {"run.dir=runs/round trip",
                                      "run.seed=18446744073709551615",
                                      "run.threads=3",
                                      "run.progress=bar",
                                      "data.dataset=cifar100",
                                      "data.path=/tmp/some data",
                                      "data.train_limit=1234567890123",
                                      "data.test_limit=7",
                                      "data.augment=off",
                                      "data.event_window_us=0",
                                      "data.event_stabilize=off",
                                      "model.net=64 ( F64 )",
                                      "model.time_steps=30",
                                      "model.spike_product=event",
                                      "model.conv=im2col",
                                      "model.fidelity=fsnn",
                                      "model.spectral_norm=kernel",
                                      "model.loop_bn=consistent",
                                      "model.input_padding=1",
                                      "compute.sim_precision=fp32",
                                      "data.event_average=clean",
                                      "neuron.vth=1.7",
                                      "neuron.leak=0.95",
                                      "solver.kind=anderson",
                                      "solver.max_iters=77",
                                      "solver.tol=1.2345678901234567e-9",
                                      "solver.anderson_m=7",
                                      "train.epochs=3",
                                      "train.batch=64",
                                      "train.test_batch=100",
                                      "train.lr=0.1",
                                      "train.momentum=0",
                                      "train.weight_decay=0",
                                      "train.optimizer=adam",
                                      "train.lr_milestones=1,2, 3,50",
                                      "train.lr_gamma=0.3333333333333333",
                                      "train.warmup_iters=400",
                                      "train.dropout=0.1",
                                      "train.dropout_shape=channel",
                                      "train.adam_beta1=0.85",
                                      "train.adam_beta2=0.9999",
                                      "train.adam_eps=1e-7",
                                      "train.max_bad_steps=3",
                                      "checkpoint.every_steps=50",
                                      "parallel.deterministic=off",
                                      "parallel.micro_batch=16",
                                      "parallel.overlap=off",
                                      "parallel.collective_timeout=30.5",
                                      "parallel.model_ranks=4"};
    size_t n_set = sizeof set / sizeof set[0];
    for (size_t i = 0; i < n_set; i++)
        EXPECT_OK(config_override(set[i], &a));
    EXPECT_OK(config_resolve("overrides", &a));
    round_trip(&a);

    /* bf16 runs on oneDNN: with im2col it is refused, naming both keys. */
    fsnn_cfg pc;
    config_defaults(&pc);
    EXPECT_OK(config_override("compute.sim_precision=bf16", &pc));
    EXPECT(pc.compute_sim_precision == SIM_BF16, "compute.sim_precision=bf16 read");
    EXPECT_OK(config_resolve("bf16", &pc));
    EXPECT_OK(config_override("model.conv=im2col", &pc));
    EXPECT(config_resolve("bf16+im2col", &pc) != 0 &&
               strstr(status_message(), "compute.sim_precision") &&
               strstr(status_message(), "model.conv = onednn"),
           "bf16 with im2col refused: '%s'", status_message());
    status_clear();
    EXPECT(config_override("compute.sim_precision=fp16", &pc) != 0, "fp16 is not a choice");
    status_clear();

    /* Every key of the table is written, once, and each was set above. */
    char *text = write_text(&a);
    size_t lines = 0;
    for (const char *p = strstr(text, " = "); p; p = strstr(p + 1, " = "))
        lines++;
    EXPECT(lines == n_set, "%zu keys written, %zu set by the test", lines, n_set);
    free(text);

    a.solver_kind = (cfg_solver)99;
    FILE *null = fopen("/dev/null", "w");
    EXPECT_FAILS(config_write(&a, null), "solver.kind", "99");
    fclose(null);
}

static void test_help(void) {
    for (int md = 0; md < 2; md++) {
        char *text = NULL;
        size_t len = 0;
        FILE *mem = open_memstream(&text, &len);
        config_help(mem, md);
        fclose(mem);
        EXPECT(strstr(text, "train.lr_milestones") && strstr(text, "30, 60, 90"),
               "help lists milestones");
        EXPECT(strstr(text, "broyden, fixed_point, anderson, exact") != NULL, "enum names");
        if (md) {
            EXPECT(strstr(text, "| key | type | default | allowed | meaning |\n|---|") != NULL,
                   "markdown table header");
            size_t rows = 0;
            for (const char *p = strstr(text, "\n| `"); p; p = strstr(p + 1, "\n| `"))
                rows++;
            EXPECT(rows == 49, "%zu markdown rows", rows);
        } else {
            EXPECT(strstr(text, "key ") && strstr(text, "meaning"), "plain header");
        }
        free(text);
    }
}

int main(int argc, char **argv) {
    if (!mkdtemp(tmp_dir)) {
        perror("mkdtemp");
        return 1;
    }
    test_defaults();
    test_good_file(argc > 1 ? argv[1] : NULL);
    test_file_errors();
    test_overrides();
    test_resolve();
    test_round_trip();
    test_help();
    testutil_remove_tree(tmp_dir);
    return check_finish("config");
}
