/* fuzz_ckpt: the checkpoint loader on arbitrary files, through the calls
 * `fsnn inspect` and a resume make: ckpt_sizes, a model and optimiser of
 * those sizes, ckpt_load_latest (ckpt_read). Every input must either load,
 * with a history of as many rows as finished epochs, or be refused with a
 * message naming the file; either way no HDF5 object may stay open. Built
 * twice (CMakeLists.txt):
 *   fuzz_ckpt_raw     the input is the whole file. HDF5 may see it only if
 *                     its header and digest are right, which a mutation
 *                     cannot arrange: this fuzzes the header checks.
 *   fuzz_ckpt_sealed  (FUZZ_CKPT_SEALED) the input is what follows the user
 *                     block; the harness writes a right header for it with
 *                     ckpt_seal, so mutations reach HDF5 and the attribute
 *                     and dataset checks.
 * With FUZZ_CKPT_SEEDS=DIR set, either one writes small real checkpoints in
 * its input form into DIR and exits: the seed corpus is made at fuzz time. */
#include <fcntl.h>
#include <hdf5.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ckpt.h"   // defines: ckpt_sizes, ckpt_load_latest, ckpt_write, ckpt_seal
#include "config.h" // defines: config_defaults
#include "status.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#ifdef FUZZ_CKPT_SEALED
#define FUZZ_SEALED 1
#else
#define FUZZ_SEALED 0
#endif

/* Each input goes through a file in a folder of its own under $TMPDIR
 * (default /tmp); run.sh points TMPDIR at a scratch folder in memory. */
static char fuzz_dir[4096];
static char fuzz_path[sizeof fuzz_dir + sizeof CKPT_FILE + 1];

static void fuzz_die(const char *what) {
    fprintf(stderr, "fuzz_ckpt: %s (status: '%s' at %s)\n", what, status_message(), status_where());
    abort();
}

static int fuzz_write_all(int fd, const void *data, size_t size) {
    const uint8_t *p = data;
    while (size > 0) {
        ssize_t w = write(fd, p, size);
        if (w <= 0) return -1;
        p += w;
        size -= (size_t)w;
    }
    return 0;
}

/* A model, optimiser and run state sized like the checkpoint's. */
typedef struct {
    fsnn_model *m;
    trainer_state ts;
    ckpt_data d;
} fuzz_state;

static int fuzz_create(fuzz_state *s, int n_in, int n, int n_out, cfg_optim optimizer) {
    memset(s, 0, sizeof *s);
    fsnn_cfg cfg;
    config_defaults(&cfg);
    cfg.model_hidden = n;
    cfg.train_optimizer = optimizer;
    CHECK(model_create(&s->m, &cfg, 1, 1, n_in, n_out));
    CHECK(optim_create(&s->ts.opt, &cfg, s->m->n_params));
    s->d.m = s->m;
    s->d.ts = &s->ts;
    return FSNN_OK;
}

static void fuzz_destroy(fuzz_state *s) {
    ckpt_data_free(&s->d);
    optim_destroy(&s->ts.opt);
    model_destroy(&s->m);
}

/* Writes a checkpoint of a small model with recognisable values into
 * fuzz_dir (checkpoint.h5). */
static void fuzz_seed_write(int n_in, int n, int n_out, cfg_optim optimizer, int rows,
                            const char *config) {
    fuzz_state s;
    if (fuzz_create(&s, n_in, n, n_out, optimizer) != 0) fuzz_die("seed model");
    for (size_t i = 0; i < s.m->n_params; i++)
        s.m->params[i] = (float)i * 0.125f - 1.0f;
    double history[4 * METRICS_N_COLS];
    for (int i = 0; i < rows * METRICS_N_COLS; i++)
        history[i] = i;
    s.ts.epoch = rows;
    s.ts.step = 1;
    s.ts.iter = 5;
    s.d.history = history;
    s.d.history_rows = rows;
    s.d.config_text = (char *)config;
    s.d.world_size = 1;
    if (ckpt_write(fuzz_dir, &s.d) != 0) fuzz_die("seed checkpoint not written");
    s.d.history = NULL;
    s.d.config_text = NULL;
    fuzz_destroy(&s);
}

/* Copies fuzz_path, without its header when sealed, to dir/name. */
static void fuzz_seed_copy(const char *dir, const char *name) {
    FILE *in = fopen(fuzz_path, "rb");
    char out_path[4096];
    snprintf(out_path, sizeof out_path, "%s/%s", dir, name);
    FILE *out = fopen(out_path, "wb");
    if (!in || !out) fuzz_die("cannot copy a seed");
    if (FUZZ_SEALED) fseek(in, CKPT_HEADER_SIZE, SEEK_SET);
    char buf[1 << 14];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) fuzz_die("cannot write a seed");
    fclose(in);
    if (fclose(out) != 0) fuzz_die("cannot write a seed");
}

static void fuzz_seeds(const char *dir) {
    static const struct {
        int n_in, n, n_out;
        cfg_optim optimizer;
        int rows;
        const char *config;
    } seeds[] = {
        {3, 2, 2, OPTIM_SGD, 0, ""},
        {4, 3, 2, OPTIM_ADAM, 2, "[model]\nnet = 3 (F3)\n[train]\noptimizer = adam\n"},
        {6, 4, 3, OPTIM_SGD, 1, "[model]\nnet = 4 (F4)\n"},
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        fuzz_seed_write(seeds[i].n_in, seeds[i].n, seeds[i].n_out, seeds[i].optimizer,
                        seeds[i].rows, seeds[i].config);
        char name[32];
        snprintf(name, sizeof name, "seed-%zu.h5", i);
        fuzz_seed_copy(dir, name);
    }
    char prev[sizeof fuzz_path];
    snprintf(prev, sizeof prev, "%s/%s", fuzz_dir, CKPT_PREV);
    unlink(prev);
}

static void fuzz_cleanup(void) {
    unlink(fuzz_path);
    rmdir(fuzz_dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    const char *tmp = getenv("TMPDIR");
    snprintf(fuzz_dir, sizeof fuzz_dir, "%s/fuzz_ckpt_XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (!mkdtemp(fuzz_dir)) fuzz_die("mkdtemp failed");
    snprintf(fuzz_path, sizeof fuzz_path, "%s/%s", fuzz_dir, CKPT_FILE);
    atexit(fuzz_cleanup);
    const char *seeds = getenv("FUZZ_CKPT_SEEDS");
    if (seeds) {
        fuzz_seeds(seeds);
        exit(0);
    }
    return 0;
}

/* A refusal must carry a message naming the file. */
static void fuzz_refused(const char *call) {
    if (!strstr(status_message(), fuzz_dir)) {
        fprintf(stderr, "fuzz_ckpt: %s refused the file without naming it\n", call);
        fuzz_die("unclear refusal");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    int fd = open(fuzz_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) fuzz_die("cannot create the input file");
    static const uint8_t user_block[CKPT_HEADER_SIZE];
    int wr = FUZZ_SEALED ? fuzz_write_all(fd, user_block, sizeof user_block) : 0;
    if (wr == 0) wr = fuzz_write_all(fd, data, size);
    if (close(fd) != 0 || wr != 0) fuzz_die("cannot write the input file");
    /* ckpt_seal refuses a file without HDF5's signature right after the user
     * block: such inputs are not what this harness is for. */
    if (FUZZ_SEALED && ckpt_seal(fuzz_path) != 0) {
        status_clear();
        return -1;
    }

    int n_in = 0, n = 0, n_out = 0;
    cfg_optim optimizer = OPTIM_SGD;
    int rc = ckpt_sizes(fuzz_path, &n_in, &n, &n_out, &optimizer);
    if (rc != 0) fuzz_refused("ckpt_sizes");
    fuzz_state s;
    memset(&s, 0, sizeof s);
    if (rc == 0 && fuzz_create(&s, n_in, n, n_out, optimizer) != 0)
        fuzz_die("model of sizes ckpt_sizes accepted not created");
    char used[sizeof fuzz_path];
    if (rc == 0) {
        rc = ckpt_load_latest(fuzz_dir, &s.d, used, sizeof used);
        if (rc != 0) fuzz_refused("ckpt_load_latest");
    }
    if (rc == 0) {
        if (strcmp(used, fuzz_path) != 0) fuzz_die("loaded another file");
        if (s.d.history_rows != s.ts.epoch || !s.d.history || !s.d.config_text)
            fuzz_die("loaded without its history or configuration");
        char hex[65];
        if (ckpt_weights_sha256(s.m, hex) != 0) fuzz_die("weights digest failed");
    }
    if (H5Fget_obj_count(H5F_OBJ_ALL, H5F_OBJ_ALL) != 0) fuzz_die("an HDF5 object stayed open");
    fuzz_destroy(&s);
    status_clear();
    return 0;
}
