/* tptrain: epochs, batches and per-epoch rows for the tensor-parallel net. */
#include "tptrain.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"  // defines: blas_counters
#include "clock.h" // defines: clock_seconds, clock_peak_rss_mb
#include "log.h"   // defines: log_info, log_warn
#include "optim.h" // defines: optim_step, optim_lr
#include "rng.h"   // defines: rng_permutation
#include "status.h"

typedef struct {
    float *x;
    uint8_t *labels, *aug;
    long *ids, *perm;
} tptrain_bufs;

static int tptrain_bufs_create(tptrain_bufs *b, const fsnn_cfg *cfg, const trainer_data *train) {
    const int bmax =
        cfg->train_batch > cfg->train_test_batch ? cfg->train_batch : cfg->train_test_batch;
    CHECK(XCALLOC(&b->x, (size_t)bmax * train->dim));
    CHECK(XCALLOC(&b->labels, (size_t)bmax));
    CHECK(XCALLOC(&b->aug, (size_t)bmax * train->dim));
    CHECK(XCALLOC(&b->ids, (size_t)bmax));
    CHECK(XCALLOC(&b->perm, (size_t)(train->n > 0 ? train->n : 1)));
    return FSNN_OK;
}

static void tptrain_bufs_destroy(tptrain_bufs *b) {
    free(b->x);
    free(b->labels);
    free(b->aug);
    free(b->ids);
    free(b->perm);
    memset(b, 0, sizeof *b);
}

/* This group's block [lo, hi) of n items. */
static void tptrain_block(long n, const reduce_ops *red, long *lo, long *hi) {
    *lo = n * red->rank / red->size;
    *hi = n * (red->rank + 1) / red->size;
}

/* The statistics of all groups: sums, and the largest residual. */
static int tptrain_reduce_stats(const reduce_ops *red, model_stats *st) {
    trainer_state ts;
    memset(&ts, 0, sizeof ts);
    ts.partial = *st;
    double v[TRAINER_PARTIAL_N];
    CHECK(trainer_partial_reduced(red, &ts, v));
    const model_stats local = *st;
    trainer_partial_unpack(v, st);
    st->t_input = local.t_input;
    st->t_sim = local.t_sim;
    st->t_adj = local.t_adj;
    st->t_grad = local.t_grad;
    return FSNN_OK;
}

int tptrain_evaluate(const fsnn_cfg *cfg, tpfc *t, const trainer_data *data, trainer_epoch *row,
                     const reduce_ops *red) {
    tptrain_bufs b;
    memset(&b, 0, sizeof b);
    int rc = tptrain_bufs_create(&b, cfg, data);
    model_stats st;
    memset(&st, 0, sizeof st);
    double t0 = clock_seconds();
    const int bs = cfg->train_test_batch;
    /* trainer_eval_pass's power iterations (docs/fidelity.md). */
    if (rc == 0) rc = tpfc_prepare_eval(t, t->ref ? (int)((data->n + bs - 1) / bs) : 0);
    for (long i = 0; rc == 0 && i < data->n; i += bs) {
        /* Every group runs every batch (its block may be empty), so the
         * group's collectives stay in step. */
        long Bg = data->n - i < bs ? data->n - i : bs, lo, hi;
        tptrain_block(Bg, red, &lo, &hi);
        const int B = (int)(hi - lo);
        for (int k = 0; k < B; k++)
            b.ids[k] = i + lo + k;
        trainer_gather(data, b.ids, B, b.x, b.labels, NULL, 0, 0);
        if (B > 0) rc = tpfc_batch(t, b.x, b.labels, b.ids, B, Bg, 0, 0, cfg->run_seed, red, &st);
    }
    if (rc == 0) rc = tptrain_reduce_stats(red, &st);
    tptrain_bufs_destroy(&b);
    CHECK(rc);
    const double el = clock_seconds() - t0;
    const long n = st.samples > 0 ? st.samples : 1;
    row->test_loss = st.loss / n;
    row->test_acc = 100.0 * st.correct / n;
    row->test_fwd_residual = st.fwd_res_sum / n;
    row->test_samples_per_s = el > 0 ? st.samples / el : 0.0;
    return FSNN_OK;
}

/* One training step on the global batch at position i of the epoch's order. */
static int tptrain_step(const fsnn_cfg *cfg, tpfc *t, trainer_state *ts, const trainer_data *train,
                        tptrain_bufs *b, const reduce_ops *red, long i, int Bg, int *bad) {
    long lo, hi;
    tptrain_block(Bg, red, &lo, &hi);
    const int B = (int)(hi - lo);
    memcpy(b->ids, b->perm + i + lo, sizeof(long) * (size_t)B);
    trainer_gather(train, b->ids, B, b->x, b->labels, train->augment ? b->aug : NULL, cfg->run_seed,
                   (uint32_t)ts->epoch);
    model_stats st;
    memset(&st, 0, sizeof st);
    CHECK(tpfc_prepare(t, 1));
    CHECK(tpfc_batch(t, b->x, b->labels, b->ids, B, Bg, 1, (uint32_t)ts->epoch, cfg->run_seed, red,
                     &st));
    int ok = 0;
    CHECK(tpfc_all_finite(t, st.loss, red, &ok));
    *bad = !ok;
    if (*bad) return FSNN_OK;
    optim_step(ts->opt, t->params, t->grads, optim_lr(cfg, ts->epoch, ts->iter));
    tpfc_after_step(t);
    model_stats_merge(&ts->partial, &st);
    return FSNN_OK;
}

/* The rest of the epoch from batch ts->step on; a plain line every 10%. */
static int tptrain_epoch_run(const fsnn_cfg *cfg, tpfc *t, trainer_state *ts,
                             const trainer_data *train, tptrain_bufs *b, const trainer_hooks *hooks,
                             const reduce_ops *red) {
    const int bs = cfg->train_batch;
    rng_permutation(cfg->run_seed, (uint32_t)ts->epoch, b->perm, train->n);
    double start = clock_seconds();
    int decile = 0;
    for (long i = ts->step * (long)bs; i < train->n; i += bs) {
        int Bg = (int)(train->n - i < bs ? train->n - i : bs), bad = 0;
        CHECK(tptrain_step(cfg, t, ts, train, b, red, i, Bg, &bad));
        CHECK(trainer_count_step(cfg, ts, bad));
        const long done = i + Bg;
        if ((int)(10 * done / train->n) != decile && done < train->n) {
            decile = (int)(10 * done / train->n);
            const double el = clock_seconds() - start;
            const model_stats *p = &ts->partial;
            log_info("epoch %d/%d %3d%% %.0f samples/s loss %.4f (this group's samples)",
                     ts->epoch + 1, cfg->train_epochs, 10 * decile, el > 0 ? done / el : 0.0,
                     p->samples ? p->loss / p->samples : 0.0);
        }
        if (hooks && hooks->on_step) {
            int h = hooks->on_step(hooks->ctx, ts, NULL);
            if (h == TRAINER_STOP) return TRAINER_STOPPED;
            CHECK(h);
        }
    }
    return FSNN_OK;
}

/* The epoch's row from the reduced statistics st of training. */
static void tptrain_row(const fsnn_cfg *cfg, const tpfc *t, const trainer_state *ts,
                        const model_stats *st, double t_train, trainer_epoch *row) {
    const long n = st->samples > 0 ? st->samples : 1;
    row->epoch = ts->epoch + 1;
    row->lr = optim_lr(cfg, ts->epoch, ts->iter - 1);
    row->train_loss = st->loss / n;
    row->train_acc = 100.0 * st->correct / n;
    row->fwd_residual = st->fwd_res_sum / n;
    row->fwd_residual_max = st->fwd_res_max;
    row->adj_iters = st->adj_samples ? st->adj_iters_sum / st->adj_samples : 0.0;
    row->adj_residual = st->adj_samples ? sqrt(st->adj_res2_sum / st->adj_samples) : 0.0;
    row->firing_rate = st->sim.spikes / ((double)n * t->n * t->T);
    row->train_samples_per_s = t_train > 0 ? st->samples / t_train : 0.0;
    row->t_input = st->t_input;
    row->t_sim = st->t_sim;
    row->t_adj = st->t_adj;
    row->t_grad = st->t_grad;
    row->dense_steps = st->sim.dense_steps;
    row->event_steps = st->sim.event_steps;
    row->bad_steps = ts->bad_steps;
}

int tptrain_fit(const fsnn_cfg *cfg, tpfc *t, trainer_state *ts, const trainer_data *train,
                const trainer_data *test, const trainer_hooks *hooks, const reduce_ops *red) {
    if (train->dim != t->n_in || test->dim != t->n_in)
        return FAIL("tptrain: inputs of %d values, the model takes %d", train->dim, t->n_in);
    tptrain_bufs b;
    memset(&b, 0, sizeof b);
    int rc = tptrain_bufs_create(&b, cfg, train);
    while (rc == 0 && ts->epoch < cfg->train_epochs) {
        trainer_epoch row;
        memset(&row, 0, sizeof row);
        double t0 = clock_seconds(), gflop = 0.0, gsec = 0.0;
        blas_counters_reset();
        double comm0 = red->seconds(red->ctx);
        rc = tptrain_epoch_run(cfg, t, ts, train, &b, hooks, red);
        if (rc) break;
        row.t_comm = red->seconds(red->ctx) - comm0;
        model_stats st = ts->partial;
        rc = tptrain_reduce_stats(red, &st);
        if (rc) break;
        blas_counters(&gflop, &gsec);
        row.gemm_gflops = gsec > 0 ? gflop / gsec * 1e-9 : 0.0;
        tptrain_row(cfg, t, ts, &st, clock_seconds() - t0, &row);
        rc = tptrain_evaluate(cfg, t, test, &row, red);
        if (rc == 0) rc = tpfc_spectral_norm(t, 30, &row.spectral_norm);
        if (rc == 0) rc = tpfc_spectral_norm_exact(t, &row.spectral_norm_exact);
        if (rc) break;
        row.peak_rss_mb = clock_peak_rss_mb();
        row.seconds = clock_seconds() - t0;
        log_info("epoch %d/%d: lr %.4g loss %.4f train %.2f%% test %.2f%% | residual %.3g adjoint "
                 "%.1f it %.2g | rate %.4f ||W|| %.4f (power) %.4f (exact) | %.0f samples/s "
                 "%.0f MB/rank %.1fs",
                 row.epoch, cfg->train_epochs, row.lr, row.train_loss, row.train_acc, row.test_acc,
                 row.fwd_residual, row.adj_iters, row.adj_residual, row.firing_rate,
                 row.spectral_norm, row.spectral_norm_exact, row.train_samples_per_s,
                 row.peak_rss_mb, row.seconds);
        ts->epoch++;
        ts->step = 0;
        memset(&ts->partial, 0, sizeof ts->partial);
        if (hooks && hooks->on_epoch) rc = hooks->on_epoch(hooks->ctx, &row, ts, NULL);
    }
    tptrain_bufs_destroy(&b);
    return rc;
}

void tptrain_ckpt_shard(const tpfc *t, const fsnn_model *full, const float *m1, const float *m2,
                        ckpt_shard *sh) {
    const dist_mat *mats[2] = {&t->Fd, &t->Vd};
    const int which[2] = {0, 4}; /* input.weight, feedback.V in model.h's order */
    *sh = (ckpt_shard){.comm = t->grid.comm,
                       .nb = t->grid.nb,
                       .nprow = t->grid.nprow,
                       .npcol = t->grid.npcol,
                       .myrow = t->grid.myrow,
                       .mycol = t->grid.mycol};
    for (int k = 0; k < 2; k++) {
        const model_tensor_info *ti = &full->info[which[k]];
        const size_t off = t->off[which[k]];
        sh->name[k] = ti->name;
        sh->rows[k] = ti->dims[0];
        sh->cols[k] = ti->dims[1];
        sh->m_off[k] = ti->offset;
        sh->lrows[k] = mats[k]->lrows;
        sh->lcols[k] = mats[k]->lcols;
        sh->lld[k] = mats[k]->lld;
        sh->params[k] = t->params + off;
        sh->m1[k] = m1 + off;
        sh->m2[k] = m2 ? m2 + off : NULL;
    }
}
