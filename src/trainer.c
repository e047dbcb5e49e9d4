/* trainer: the epoch loop, batching, progress and per-epoch metrics, for
 * every kind of net (net.h). */
#include "trainer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "augment.h"
#include "blas.h"
#include "clock.h"
#include "log.h"
#include "optim.h"
#include "rng.h"
#include "status.h"

/* Buffers of one training or evaluation pass, sized once. */
typedef struct {
    float *x;
    uint8_t *labels;
    uint8_t *aug;  /* [bmax x dim] augmented training images */
    float *frames; /* [bmax x frames x dim] event data's frames */
    long *ids, *perm;
    int *shard_len;
} trainer_bufs;

/* The gather's assumptions about a data view (per-channel arrays, images in
 * memory); a view that breaks them is a caller's mistake, refused here. */
static int trainer_data_check(const trainer_data *d) {
    if (!d->images && !(d->frames > 0 && d->frames_fn))
        return FAIL("trainer: the data set has neither images in memory nor event frames");
    if (d->channels < 1 || d->channels > TRAINER_MAX_CHANNELS ||
        d->dim != d->channels * d->height * d->width)
        return FAIL("trainer: bad data shape (%d channels of %d x %d, %d inputs)", d->channels,
                    d->height, d->width, d->dim);
    return FSNN_OK;
}

/* Buffers for batches of `d` (n_train: samples to shuffle). */
static int trainer_bufs_create(trainer_bufs *tb, const fsnn_cfg *cfg, const fsnn_net *net,
                               long n_train, const trainer_data *d) {
    CHECK(trainer_data_check(d));
    const int dim = d->dim;
    if (dim != net->n_in)
        return FAIL("trainer: inputs of %d values, the model takes %d", dim, net->n_in);
    int bmax = TRAINER_BMAX(cfg);
    CHECK(XCALLOC(&tb->x, (size_t)bmax * dim));
    CHECK(XCALLOC(&tb->labels, (size_t)bmax));
    CHECK(XCALLOC(&tb->aug, (size_t)bmax * dim));
    if (d->frames > 0) {
        if (!net->events) return FAIL("trainer: the %s net does not take event data", net->kind);
        if (d->frames != net->T)
            return FAIL("trainer: event data has %d frames per sample, the model %d time steps",
                        d->frames, net->T);
        CHECK(XCALLOC(&tb->frames, (size_t)bmax * d->frames * dim));
    }
    CHECK(XCALLOC(&tb->ids, (size_t)bmax));
    CHECK(XCALLOC(&tb->perm, (size_t)(n_train > 0 ? n_train : 1)));
    CHECK(XCALLOC(&tb->shard_len, (size_t)bmax));
    return FSNN_OK;
}

static void trainer_bufs_destroy(trainer_bufs *tb) {
    free(tb->x);
    free(tb->labels);
    free(tb->aug);
    free(tb->frames);
    free(tb->ids);
    free(tb->perm);
    free(tb->shard_len);
    memset(tb, 0, sizeof *tb);
}

static void trainer_gather(const trainer_data *d, const long *ids, int B, float *x, uint8_t *labels,
                           uint8_t *aug, uint64_t seed, uint32_t epoch) {
    const int C = d->channels, plane = d->dim / d->channels;
    float scale[TRAINER_MAX_CHANNELS], shift[TRAINER_MAX_CHANNELS];
    for (int c = 0; c < C; c++) {
        scale[c] = 1.0f / (255.0f * d->std[c]);
        shift[c] = d->mean[c] / d->std[c];
    }
#pragma omp parallel for schedule(static) if ((long)B * d->dim > BLAS_PARALLEL_MIN)
    for (int b = 0; b < B; b++) {
        const uint8_t *img = d->images + (size_t)ids[b] * d->dim;
        if (aug) {
            uint8_t *dst = aug + (size_t)b * d->dim;
            augment_draw draw;
            augment_sample(seed, epoch, (uint32_t)ids[b], AUGMENT_PAD, &draw);
            augment_apply(img, C, d->height, d->width, AUGMENT_PAD, &draw, dst);
            img = dst;
        }
        float *xb = x + (size_t)b * d->dim;
        for (int c = 0; c < C; c++)
            for (int k = c * plane; k < (c + 1) * plane; k++)
                xb[k] = (float)img[k] * scale[c] - shift[c];
        labels[b] = d->labels[ids[b]];
    }
}

/* This rank's rows tb->ids[0..B) of d as a batch: gathered images
 * (trainer_gather) or event frames, and labels. */
static int trainer_batch(const trainer_data *d, trainer_bufs *tb, int B, uint8_t *aug,
                         uint64_t seed, uint32_t epoch, net_batch *b) {
    *b = (net_batch){.labels = tb->labels, .ids = tb->ids, .B = B, .epoch = epoch, .seed = seed};
    if (d->frames <= 0) {
        trainer_gather(d, tb->ids, B, tb->x, tb->labels, aug, seed, epoch);
        b->x = tb->x;
        return FSNN_OK;
    }
    const size_t per = (size_t)d->frames * d->dim;
    for (int i = 0; i < B; i++) {
        CHECK(d->frames_fn(d->frames_src, tb->ids[i], tb->frames + per * i));
        tb->labels[i] = d->labels[tb->ids[i]];
    }
    b->frames = tb->frames;
    return FSNN_OK;
}

typedef struct {
    int bar;
    double start, last_print;
    int last_decile;
} trainer_progress;

static void trainer_progress_start(trainer_progress *p, const fsnn_cfg *cfg) {
    p->bar = cfg->run_progress < 0 ? isatty(STDOUT_FILENO) : cfg->run_progress;
    p->start = clock_seconds();
    p->last_print = 0.0;
    p->last_decile = 0;
}

/* `done` counts samples over all ranks; the loss and accuracy shown are the
 * printing rank's share (the epoch line has the reduced figures). */
static void trainer_progress_show(trainer_progress *p, int epoch, int epochs, long done, long total,
                                  const model_stats *st) {
    if (!log_is_printer()) return;
    double now = clock_seconds(), el = now - p->start;
    double rate = el > 0 ? done / el : 0.0, eta = rate > 0 ? (total - done) / rate : 0.0;
    double loss = st->samples ? st->loss / st->samples : 0.0;
    double acc = st->samples ? 100.0 * st->correct / st->samples : 0.0;
    if (p->bar) {
        if (now - p->last_print < 0.2 && done < total) return;
        p->last_print = now;
        int width = 30, fill = (int)(width * (double)done / total);
        char bar[32];
        for (int i = 0; i < width; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[width] = '\0';
        printf("\repoch %d/%d [%s] %5.1f%% %7.0f samples/s loss %.4f acc %.2f%% ETA %4.0fs ", epoch,
               epochs, bar, 100.0 * done / total, rate, loss, acc, eta);
        if (done == total) printf("\n");
        fflush(stdout);
    } else {
        int decile = (int)(10 * done / total);
        if (decile == p->last_decile && done < total) return;
        p->last_decile = decile;
        if (done == total) return;
        printf("epoch %d/%d %3.0f%% %.0f samples/s loss %.4f acc %.2f%% ETA %.0fs\n", epoch, epochs,
               100.0 * done / total, rate, loss, acc, eta);
        fflush(stdout);
    }
}

/* Sums the per-rank statistics of a pass over all ranks (for reporting; the
 * rounding of these sums does not touch the weights); the maximum residual is
 * a maximum and the phase times stay this rank's. Collective. */
static int trainer_reduce_stats(const reduce_ops *red, model_stats *st) {
    if (red->size == 1) return FSNN_OK;
    enum { MAX_AT = 4 }; /* fwd_res_max in trainer_partial_pack's order */
    double v[TRAINER_PARTIAL_N];
    trainer_partial_pack(st, v);
    double mx = v[MAX_AT];
    v[MAX_AT] = 0.0;
    CHECK(red->sum_f64(red->ctx, v, TRAINER_PARTIAL_N));
    CHECK(red->max_f64(red->ctx, &mx, 1));
    v[MAX_AT] = mx;
    const model_stats local = *st;
    trainer_partial_unpack(v, st);
    st->t_input = local.t_input;
    st->t_sim = local.t_sim;
    st->t_adj = local.t_adj;
    st->t_grad = local.t_grad;
    return FSNN_OK;
}

/* Fills the row's phase times with their averages over ranks and logs
 * min/avg/max when there are several ranks: a rank much slower than the
 * others shows as a large max, and as the others' t_comm. Collective. */
static int trainer_phase_times(const reduce_ops *red, const model_stats *st, double t_comm,
                               trainer_epoch *row) {
    enum { N = 5 };
    static const char *const names[N] = {"input", "sim", "adjoint", "grad", "comm"};
    double sum[N] = {st->t_input, st->t_sim, st->t_adj, st->t_grad, t_comm}, mx[2 * N];
    for (int i = 0; i < N; i++) {
        mx[i] = sum[i];
        mx[N + i] = -sum[i];
    }
    CHECK(red->sum_f64(red->ctx, sum, N));
    CHECK(red->max_f64(red->ctx, mx, 2 * N));
    double *avg[N] = {&row->t_input, &row->t_sim, &row->t_adj, &row->t_grad, &row->t_comm};
    for (int i = 0; i < N; i++)
        *avg[i] = sum[i] / red->size;
    if (red->size == 1) return FSNN_OK;
    char line[512];
    size_t used = 0;
    for (int i = 0; i < N; i++)
        used += (size_t)snprintf(line + used, sizeof line - used, "%s %s %.2f/%.2f/%.2f",
                                 i ? "," : "", names[i], -mx[N + i], *avg[i], mx[i]);
    log_info("epoch %d phase seconds over %d ranks (min/avg/max):%s", row->epoch, red->size, line);
    return FSNN_OK;
}

/* This rank's part [lo, hi) of n items split in contiguous blocks: the
 * blocks of reduce_block, which the gradient's tree sums also assume for the
 * micro-shards. */
static void trainer_block(long n, const reduce_ops *red, long *lo, long *hi) {
    size_t a, b;
    reduce_block((size_t)n, red->rank, red->size, &a, &b);
    *lo = (long)a;
    *hi = (long)b;
}

/* Sums a trace's statistics over ranks: sums add, maxima take the largest.
 * Collective. */
static int trainer_reduce_trace(const reduce_ops *red, model_trace *tr) {
    if (red->size == 1) return FSNN_OK;
    const size_t T = (size_t)tr->T;
    CHECK(red->sum_f64(red->ctx, tr->res_sum, T));
    CHECK(red->sum_f64(red->ctx, tr->rel_sum, T));
    CHECK(red->sum_f64(red->ctx, tr->delta_sum, T));
    CHECK(red->max_f64(red->ctx, tr->res_max, T));
    CHECK(red->max_f64(red->ctx, tr->rel_max, T));
    double samples = (double)tr->samples;
    CHECK(red->sum_f64(red->ctx, &samples, 1));
    tr->samples = (long)samples;
    return FSNN_OK;
}

/* One pass over this rank's block of `data`; with tr, the simulation also
 * records its per-step trace. */
static int trainer_eval_pass(const fsnn_cfg *cfg, fsnn_net *net, const trainer_data *data,
                             trainer_bufs *tb, trainer_epoch *row, double *firing, model_trace *tr,
                             const reduce_ops *red) {
    model_stats st;
    memset(&st, 0, sizeof st);
    double t0 = clock_seconds();
    const int bs = cfg->train_test_batch;
    CHECK(net->ops.prepare_eval(net, (data->n + bs - 1) / bs));
    long lo, hi;
    trainer_block(data->n, red, &lo, &hi);
    for (long i = lo; i < hi; i += bs) {
        int B = (int)(hi - i < bs ? hi - i : bs);
        for (int k = 0; k < B; k++)
            tb->ids[k] = i + k;
        net_batch batch;
        CHECK(trainer_batch(data, tb, B, NULL, cfg->run_seed, 0, &batch));
        CHECK(net->ops.eval_batch(net, &batch, &st, tr));
    }
    CHECK(trainer_reduce_stats(red, &st));
    if (tr) CHECK(trainer_reduce_trace(red, tr));
    double el = clock_seconds() - t0;
    long n = st.samples > 0 ? st.samples : 1;
    row->test_loss = st.loss / n;
    row->test_acc = 100.0 * st.correct / n;
    row->test_fwd_residual = st.fwd_res_sum / n;
    row->test_samples_per_s = el > 0 ? st.samples / el : 0.0;
    if (firing) *firing = st.sim.spikes / ((double)n * net->n_spiking * net->T);
    return FSNN_OK;
}

int trainer_evaluate(const fsnn_cfg *cfg, fsnn_net *net, const trainer_data *data,
                     trainer_epoch *row, double *firing, const reduce_ops *red) {
    trainer_bufs tb;
    memset(&tb, 0, sizeof tb);
    int rc = trainer_bufs_create(&tb, cfg, net, 1, data);
    if (rc == 0) rc = trainer_eval_pass(cfg, net, data, &tb, row, firing, NULL, red);
    trainer_bufs_destroy(&tb);
    return rc;
}

int trainer_evaluate_trace(const fsnn_cfg *cfg, fsnn_net *net, const trainer_data *data,
                           trainer_epoch *row, double *firing, model_trace **trace,
                           const reduce_ops *red) {
    trainer_bufs tb;
    memset(&tb, 0, sizeof tb);
    int rc = trainer_bufs_create(&tb, cfg, net, 1, data);
    if (rc == 0) rc = net->ops.trace_create(net, trace);
    if (rc == 0) rc = trainer_eval_pass(cfg, net, data, &tb, row, firing, *trace, red);
    trainer_bufs_destroy(&tb);
    return rc;
}

/* This rank's rows of a global batch of Bg samples: in deterministic mode a
 * contiguous block of whole micro-shards (their lengths in lens), in fast mode
 * a contiguous block of samples. Returns the number of shards. */
static int trainer_shards(const fsnn_cfg *cfg, const fsnn_net *net, const reduce_ops *red, int Bg,
                          int *first, int *rows, int *lens) {
    long lo, hi;
    if (!cfg->parallel_deterministic || !net->micro_shards) {
        trainer_block(Bg, red, &lo, &hi);
        *first = (int)lo;
        *rows = (int)(hi - lo);
        lens[0] = *rows;
        return 1;
    }
    const int micro = cfg->parallel_micro_batch;
    trainer_block((Bg + micro - 1) / micro, red, &lo, &hi);
    *first = (int)lo * micro;
    *rows = 0;
    for (long sh = lo; sh < hi; sh++) {
        int len = Bg - (int)sh * micro < micro ? Bg - (int)sh * micro : micro;
        lens[sh - lo] = len;
        *rows += len;
    }
    return (int)(hi - lo);
}

/* One training step on global batch number ts->step of the epoch. Returns
 * 0, or an fsnn status; *bad is set when the loss or the gradient was not
 * finite on any rank (the step is then not applied). Collective. */
static int trainer_step(const fsnn_cfg *cfg, fsnn_net *net, trainer_state *ts,
                        const trainer_data *train, trainer_bufs *tb, const trainer_hooks *hooks,
                        const reduce_ops *red, long i, int Bg, int *bad) {
    int first = 0, B = 0;
    int shards = trainer_shards(cfg, net, red, Bg, &first, &B, tb->shard_len);
    memcpy(tb->ids, tb->perm + i + first, sizeof(long) * (size_t)B);
    net_batch batch;
    CHECK(trainer_batch(train, tb, B, train->augment ? tb->aug : NULL, cfg->run_seed,
                        (uint32_t)ts->epoch, &batch));
    batch.global = Bg;
    batch.n_shards = shards;
    batch.shard_len = tb->shard_len;
    model_stats st;
    memset(&st, 0, sizeof st);
    CHECK(net->ops.train_batch(net, &batch, red, &st));
    if (hooks && hooks->on_grads) hooks->on_grads(hooks->ctx, ts, net);
    int ok = 0;
    CHECK(net->ops.all_finite(net, st.loss, red, &ok));
    *bad = !ok;
    if (*bad) return FSNN_OK;
    optim_step(ts->opt, net->params, net->grads, optim_lr(cfg, ts->epoch, ts->iter));
    net->ops.after_step(net);
    model_stats_merge(&ts->partial, &st);
    return FSNN_OK;
}

static int trainer_count_step(const fsnn_cfg *cfg, trainer_state *ts, int bad) {
    ts->step++;
    ts->iter++;
    if (!bad) {
        ts->bad_run = 0;
        return FSNN_OK;
    }
    ts->bad_steps++;
    ts->bad_run++;
    log_warn("epoch %d step %ld: loss or gradient not finite; step skipped (%ld in a row)",
             ts->epoch + 1, ts->step, ts->bad_run);
    if (ts->bad_run >= cfg->train_max_bad_steps)
        return FAIL("%ld steps in a row had a non-finite loss or gradient "
                    "(train.max_bad_steps); lower train.lr",
                    ts->bad_run);
    return FSNN_OK;
}

/* The rest of the current epoch from batch ts->step on. */
static int trainer_epoch_run(const fsnn_cfg *cfg, fsnn_net *net, trainer_state *ts,
                             const trainer_data *train, trainer_bufs *tb,
                             const trainer_hooks *hooks, const reduce_ops *red) {
    const int bs = cfg->train_batch;
    trainer_progress prog;
    trainer_progress_start(&prog, cfg);
    rng_permutation(cfg->run_seed, (uint32_t)ts->epoch, tb->perm, train->n);
    for (long i = ts->step * (long)bs; i < train->n; i += bs) {
        int Bg = (int)(train->n - i < bs ? train->n - i : bs), bad = 0;
        CHECK(trainer_step(cfg, net, ts, train, tb, hooks, red, i, Bg, &bad));
        CHECK(trainer_count_step(cfg, ts, bad));
        trainer_progress_show(&prog, ts->epoch + 1, cfg->train_epochs, i + Bg, train->n,
                              &ts->partial);
        if (hooks && hooks->on_step) {
            int h = hooks->on_step(hooks->ctx, ts, net);
            if (h == TRAINER_STOP) return TRAINER_STOPPED;
            CHECK(h);
        }
    }
    return FSNN_OK;
}

/* The epoch's row from the reduced statistics st of training (t_train
 * seconds); the phase times averaged over ranks. Collective. */
static int trainer_row(const fsnn_cfg *cfg, const fsnn_net *net, const trainer_state *ts,
                       const model_stats *st, double t_train, double t_comm, const reduce_ops *red,
                       trainer_epoch *row) {
    long n = st->samples > 0 ? st->samples : 1;
    row->epoch = ts->epoch + 1;
    row->lr = optim_lr(cfg, ts->epoch, ts->iter - 1);
    row->train_loss = st->loss / n;
    row->train_acc = 100.0 * st->correct / n;
    row->fwd_residual = st->fwd_res_sum / n;
    row->fwd_residual_max = st->fwd_res_max;
    row->adj_iters = st->adj_samples ? st->adj_iters_sum / st->adj_samples : 0.0;
    row->adj_residual = st->adj_samples ? sqrt(st->adj_res2_sum / st->adj_samples) : 0.0;
    row->firing_rate = st->sim.spikes / ((double)n * net->n_spiking * net->T);
    row->train_samples_per_s = t_train > 0 ? st->samples / t_train : 0.0;
    CHECK(trainer_phase_times(red, st, t_comm, row));
    row->dense_steps = st->sim.dense_steps;
    row->event_steps = st->sim.event_steps;
    row->bad_steps = ts->bad_steps;
    return FSNN_OK;
}

/* One epoch from ts->step on, its evaluation and its row. Collective. */
static int trainer_run_epoch(const fsnn_cfg *cfg, fsnn_net *net, trainer_state *ts,
                             const trainer_data *train, const trainer_data *test, trainer_bufs *tb,
                             const trainer_hooks *hooks, const reduce_ops *red,
                             trainer_epoch *row) {
    double t0 = clock_seconds(), gflop = 0.0, gsec = 0.0;
    blas_counters_reset();
    double comm0 = red->seconds(red->ctx);
    CHECK(trainer_epoch_run(cfg, net, ts, train, tb, hooks, red));
    double t_comm = red->seconds(red->ctx) - comm0;
    model_stats st = ts->partial;
    CHECK(trainer_reduce_stats(red, &st));
    double t_train = clock_seconds() - t0;
    blas_counters(&gflop, &gsec);
    row->gemm_gflops = gsec > 0 ? gflop / gsec * 1e-9 : 0.0;
    CHECK(trainer_row(cfg, net, ts, &st, t_train, t_comm, red, row));
    CHECK(trainer_eval_pass(cfg, net, test, tb, row, NULL, NULL, red));
    CHECK(net->ops.spectral_norm(net, &row->spectral_norm, &row->spectral_norm_exact));
    row->peak_rss_mb = clock_peak_rss_mb();
    row->seconds = clock_seconds() - t0;
    char exact[48] = "";
    if (!isnan(row->spectral_norm_exact))
        snprintf(exact, sizeof exact, " (power) %.4f (exact)", row->spectral_norm_exact);
    log_info("epoch %d/%d: lr %.4g loss %.4f train %.2f%% test %.2f%% | residual %.3g adjoint "
             "%.1f it %.2g | rate %.4f ||W|| %.3f%s | %.0f samples/s %.0f MB %.1fs",
             row->epoch, cfg->train_epochs, row->lr, row->train_loss, row->train_acc, row->test_acc,
             row->fwd_residual, row->adj_iters, row->adj_residual, row->firing_rate,
             row->spectral_norm, exact, row->train_samples_per_s, row->peak_rss_mb, row->seconds);
    return FSNN_OK;
}

int trainer_fit(const fsnn_cfg *cfg, fsnn_net *net, trainer_state *ts, const trainer_data *train,
                const trainer_data *test, const trainer_hooks *hooks, const reduce_ops *red) {
    trainer_bufs tb;
    memset(&tb, 0, sizeof tb);
    int rc = trainer_data_check(test);
    if (rc == 0 && test->dim != net->n_in)
        rc = FAIL("trainer: test inputs of %d values, the model takes %d", test->dim, net->n_in);
    if (rc == 0) rc = trainer_bufs_create(&tb, cfg, net, train->n, train);
    while (rc == 0 && ts->epoch < cfg->train_epochs) {
        trainer_epoch row;
        memset(&row, 0, sizeof row);
        rc = trainer_run_epoch(cfg, net, ts, train, test, &tb, hooks, red, &row);
        if (rc) break;
        /* The epoch is over: the state the hook saves starts the next one. */
        ts->epoch++;
        ts->step = 0;
        memset(&ts->partial, 0, sizeof ts->partial);
        if (hooks && hooks->on_epoch) rc = hooks->on_epoch(hooks->ctx, &row, ts, net);
    }
    trainer_bufs_destroy(&tb);
    return rc;
}

int trainer_partial_reduced(const reduce_ops *red, const trainer_state *ts, double *v) {
    model_stats st = ts->partial;
    CHECK(trainer_reduce_stats(red, &st));
    trainer_partial_pack(&st, v);
    return FSNN_OK;
}

void trainer_partial_pack(const model_stats *st, double *v) {
    const double x[TRAINER_PARTIAL_N] = {st->loss,
                                         (double)st->correct,
                                         (double)st->samples,
                                         st->fwd_res_sum,
                                         st->fwd_res_max,
                                         st->adj_iters_sum,
                                         st->adj_res2_sum,
                                         (double)st->adj_samples,
                                         st->sim.spikes,
                                         (double)st->sim.dense_steps,
                                         (double)st->sim.event_steps,
                                         st->t_sim};
    for (int i = 0; i < TRAINER_PARTIAL_N; i++)
        v[i] = x[i];
}

void trainer_partial_unpack(const double *v, model_stats *st) {
    memset(st, 0, sizeof *st);
    st->loss = v[0];
    st->correct = (long)v[1];
    st->samples = (long)v[2];
    st->fwd_res_sum = v[3];
    st->fwd_res_max = v[4];
    st->adj_iters_sum = v[5];
    st->adj_res2_sum = v[6];
    st->adj_samples = (long)v[7];
    st->sim.spikes = v[8];
    st->sim.dense_steps = (int)v[9];
    st->sim.event_steps = (int)v[10];
    st->t_sim = v[11];
}
