/* faults: a gradient made non-finite on one rank at one step. Every rank
 * must skip that same step (agreed by a reduction): the parameters stay as
 * they were, the skipped-step counter rises on every rank, and training goes
 * on with the next step. Non-finite gradients in train.max_bad_steps steps
 * in a row stop training on every rank with the same message. Run under
 * mpirun -np N; the last rank is the one whose gradient goes bad. */
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"
#include "check.h"
#include "config.h"
#include "model.h"
#include "optim.h"
#include "reducer.h"
#include "rng.h"
#include "status.h"
#include "trainer.h"

enum { NIN = 20, NH = 24, NOUT = 4, N_TRAIN = 160, N_TEST = 40, BATCH = 16, BAD_ITER = 3 };

typedef struct {
    int victim;     /* this rank injects */
    long first_bad; /* first step (ts->iter before it) whose gradient is spoilt */
    long last_bad;  /* last such step */
    size_t n_params;
    float *before;     /* parameters before the first spoilt step */
    int unchanged;     /* parameters after it equal `before` */
    int changed_after; /* the step after the last spoilt one changed them */
    long injected;
} faults_ctx;

static void faults_on_grads(void *ctx, const trainer_state *ts, fsnn_net *m) {
    faults_ctx *c = ctx;
    if (c->victim && ts->iter >= c->first_bad && ts->iter <= c->last_bad) {
        m->grads[c->injected % (long)m->n_params] = NAN;
        c->injected++;
    }
}

/* ts->iter counts finished steps: the hook after step k sees k + 1. */
static int faults_on_step(void *ctx, const trainer_state *ts, fsnn_net *m) {
    faults_ctx *c = ctx;
    if (ts->iter == c->first_bad) memcpy(c->before, m->params, sizeof(float) * c->n_params);
    if (ts->iter == c->first_bad + 1)
        c->unchanged = !memcmp(c->before, m->params, sizeof(float) * c->n_params);
    if (ts->iter == c->last_bad + 2)
        c->changed_after = memcmp(c->before, m->params, sizeof(float) * c->n_params) != 0;
    return TRAINER_GO;
}

static void faults_data(uint8_t *img, uint8_t *lab, long n, uint64_t seed) {
    float *u = malloc(sizeof(float) * (size_t)n * NIN);
    rng_uniform_fill(seed, RNG_TEST, 0, 0, u, (long)n * NIN);
    for (long i = 0; i < n * NIN; i++)
        img[i] = (uint8_t)(u[i] * 255.0f);
    for (long i = 0; i < n; i++)
        lab[i] = (uint8_t)((img[i * NIN] + img[i * NIN + 1]) % NOUT);
    free(u);
}

/* Bits of the parameters folded into one number, to compare ranks. */
static double faults_fingerprint(const fsnn_model *m) {
    uint64_t h = 1469598103934665603ull;
    const unsigned char *p = (const unsigned char *)m->params;
    for (size_t i = 0; i < sizeof(float) * m->n_params; i++)
        h = (h ^ p[i]) * 1099511628211ull;
    return (double)(h >> 12);
}

static int faults_run(const reduce_ops *red, int max_bad, long first_bad, long last_bad,
                      faults_ctx *c, trainer_state *ts, double *fp) {
    fsnn_cfg cfg;
    config_defaults(&cfg);
    cfg.model_hidden = NH;
    cfg.model_time_steps = 5;
    cfg.train_batch = BATCH;
    cfg.train_test_batch = BATCH;
    cfg.train_epochs = 1;
    cfg.train_max_bad_steps = max_bad;
    cfg.parallel_micro_batch = 4;
    cfg.run_progress = 0;
    blas_set_serial(cfg.parallel_deterministic);
    static uint8_t img[N_TRAIN * NIN], lab[N_TRAIN], timg[N_TEST * NIN], tlab[N_TEST];
    faults_data(img, lab, N_TRAIN, 5);
    faults_data(timg, tlab, N_TEST, 6);
    trainer_data train = {.images = img,
                          .labels = lab,
                          .n = N_TRAIN,
                          .dim = NIN,
                          .channels = 1,
                          .height = 1,
                          .width = NIN,
                          .mean = {0.5f},
                          .std = {0.3f}};
    trainer_data test = {.images = timg,
                         .labels = tlab,
                         .n = N_TEST,
                         .dim = NIN,
                         .channels = 1,
                         .height = 1,
                         .width = NIN,
                         .mean = {0.5f},
                         .std = {0.3f}};
    fsnn_model *m = NULL;
    memset(ts, 0, sizeof *ts);
    EXPECT_OK(model_create(&m, &cfg, 1, 1, NIN, NOUT));
    EXPECT_OK(optim_create(&ts->opt, &cfg, m->n_params));
    model_init(m, cfg.run_seed);
    memset(c, 0, sizeof *c);
    c->victim = red->rank == red->size - 1;
    c->first_bad = first_bad;
    c->last_bad = last_bad;
    c->n_params = m->n_params;
    c->before = malloc(sizeof(float) * m->n_params);
    trainer_hooks hooks = {.on_step = faults_on_step, .on_grads = faults_on_grads, .ctx = c};
    fsnn_net *net = NULL;
    EXPECT_OK(net_model_create(&net, m, &cfg, TRAINER_BMAX(&cfg)));
    int rc = trainer_fit(&cfg, net, ts, &train, &test, &hooks, red);
    *fp = faults_fingerprint(net->model);
    free(c->before);
    optim_destroy(&ts->opt);
    net_destroy(&net);
    return rc;
}

/* The same value on every rank. */
static int faults_same(double v) {
    double mx = v, mn = -v;
    MPI_Allreduce(MPI_IN_PLACE, &mx, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &mn, 1, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
    return mx == -mn;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    reduce_ops red;
    EXPECT_OK(reducer_world(&red));
    faults_ctx c;
    trainer_state ts;
    double fp = 0.0;

    /* One spoilt step among ten: skipped by all, training goes on. */
    int rc = faults_run(&red, 3, BAD_ITER, BAD_ITER, &c, &ts, &fp);
    EXPECT(rc == 0, "rank %d: training failed: %s", red.rank, status_message());
    status_clear();
    EXPECT(c.injected == (c.victim ? 1 : 0), "rank %d injected %ld times", red.rank, c.injected);
    EXPECT(ts.bad_steps == 1, "rank %d: %ld steps skipped, want 1", red.rank, ts.bad_steps);
    EXPECT(ts.bad_run == 0, "rank %d: %ld bad steps in a row at the end", red.rank, ts.bad_run);
    EXPECT(ts.iter == N_TRAIN / BATCH, "rank %d: %ld steps, want %d", red.rank, ts.iter,
           N_TRAIN / BATCH);
    EXPECT(c.unchanged, "rank %d: the skipped step changed the parameters", red.rank);
    EXPECT(c.changed_after, "rank %d: the step after the skipped one did not train", red.rank);
    EXPECT(faults_same(fp), "rank %d: parameters differ between ranks", red.rank);
    EXPECT(faults_same((double)ts.bad_steps), "skipped-step counters differ between ranks");

    /* Three spoilt steps in a row with train.max_bad_steps = 3: every rank stops. */
    rc = faults_run(&red, 3, 2, 100, &c, &ts, &fp);
    EXPECT(rc != 0, "rank %d: training went on after 3 bad steps in a row", red.rank);
    EXPECT(strstr(status_message(), "3 steps in a row") != NULL, "rank %d: message '%s'", red.rank,
           status_message());
    status_clear();
    EXPECT(ts.bad_steps == 3 && ts.bad_run == 3, "rank %d: %ld skipped, %ld in a row", red.rank,
           ts.bad_steps, ts.bad_run);
    EXPECT(ts.iter == 5, "rank %d: stopped after %ld steps, want 5", red.rank, ts.iter);
    EXPECT(c.unchanged, "rank %d: a skipped step changed the parameters", red.rank);
    EXPECT(faults_same(fp), "rank %d: parameters differ between ranks after the stop", red.rank);

    int fails = check_finish("faults");
    MPI_Allreduce(MPI_IN_PLACE, &fails, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    MPI_Finalize();
    return fails;
}
