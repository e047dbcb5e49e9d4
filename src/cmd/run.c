/* run: configuration, net, data and checkpoints of a run, for the commands. */
#include "run.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"      // defines: blas_set_threads, blas_set_serial
#include "ckptshard.h" // defines: ckptshard_write
#include "cmd.h"       // defines: cmd_data_views
#include "config.h"    // defines: config_load, config_override, config_resolve
#include "cpuinfo.h"   // defines: cpuinfo_report_blas
#include "fsutil.h"    // defines: fsutil_is_file
#include "log.h"       // defines: log_info
#include "par.h"       // defines: par_all_ok, par_local_ranks, par_set_collective_timeout
#include "pipe.h"      // defines: pipe_net_create
#include "status.h"    // defines: CHECK, FAIL
#include "tpnet.h"     // defines: tpnet_create

int run_read_config(fsnn_cfg *cfg, const char *path, int stored, int argc, char **argv) {
    config_defaults(cfg);
    CHECK(stored ? config_load_run(path, cfg) : config_load(path, cfg));
    for (int i = 0; i < argc; i++)
        CHECK(config_override(argv[i], cfg));
    CHECK(config_resolve(path, cfg));
    par_set_collective_timeout(cfg->parallel_collective_timeout);
    return FSNN_OK;
}

int run_ckpt_config(const char *path, fsnn_cfg *cfg) {
    char *text = NULL;
    long n_params = 0;
    CHECK(ckpt_config(path, &text, &n_params));
    config_defaults(cfg);
    int rc = config_load_run_string(path, text, cfg);
    free(text);
    if (rc == 0) rc = config_resolve(path, cfg);
    return rc;
}

void run_setup_blas(const fsnn_cfg *cfg) {
    int threads = cfg->run_threads;
    if (threads == 0) {
        int cores = blas_set_threads(0), local = par_local_ranks();
        threads = cores / local > 0 ? cores / local : 1;
    }
    blas_set_threads(threads);
    /* From initialisation on, so that every rank count computes the same. */
    blas_set_serial(cfg->parallel_deterministic);
    cpuinfo_report_blas();
}

int run_agree(int rc) {
    if (par_all_ok(rc == 0)) return FSNN_OK;
    return rc ? rc : FAIL("stopped because another rank failed (its message is above)");
}

/* A net split over model ranks: only FC nets (tensor parallel) and nets of
 * two layers or more (layer pipeline) can be. */
static int run_net_split(fsnn_net **net, const fsnn_cfg *cfg, const grid_env *grid,
                         const run_shape *sh, int bmax) {
    if (sh->events)
        return FAIL("parallel.model_ranks = %d: model parallelism (the tensor-parallel net, the "
                    "layer pipeline) takes images, not event frames (data.dataset = %s; use "
                    "parallel.model_ranks = 1)",
                    grid->model_ranks, dataset_name(cfg->data_dataset));
    if (cfg->model_hidden > 0)
        return tpnet_create(net, cfg, grid, sh->c, sh->h, sh->w, sh->classes, bmax);
    fsnn_model *m = NULL;
    int rc = model_create(&m, cfg, sh->c, sh->h, sh->w, sh->classes);
    if (rc) {
        model_destroy(&m); /* what a failed creation made so far */
        return rc;
    }
    if (!m->ml) {
        model_destroy(&m);
        return FAIL("parallel.model_ranks = %d: only fully connected nets 'N (FN)' (tensor "
                    "parallel) and nets of two layers or more (layer pipeline) can be split "
                    "over model ranks; model.net '%s' is neither (use parallel.model_ranks = 1)",
                    grid->model_ranks, cfg->model_net);
    }
    return pipe_net_create(net, grid->model, m, cfg, bmax);
}

int run_net(fsnn_net **net, optim **opt, const fsnn_cfg *cfg, const grid_env *grid,
            const run_shape *sh) {
    const int bmax = TRAINER_BMAX(cfg);
    if (grid && grid->model_ranks > 1) {
        CHECK(run_net_split(net, cfg, grid, sh, bmax));
    } else {
        fsnn_model *m = NULL;
        int rc = model_create(&m, cfg, sh->c, sh->h, sh->w, sh->classes);
        if (rc) {
            model_destroy(&m); /* what a failed creation made so far */
            return rc;
        }
        CHECK(net_model_create(net, m, cfg, bmax));
    }
    return optim_create(opt, cfg, (*net)->n_params);
}

int run_open(run_ctx *r, const grid_env *grid, long train_limit, int say) {
    const fsnn_cfg *cfg = &r->cfg;
    CHECK(dataset_load(cfg->data_dataset, cfg->data_path, train_limit, cfg->data_test_limit,
                       &r->data));
    cmd_data_views(cfg, &r->data, r->ev, &r->train, &r->test);
    if (say)
        log_info("data: %s from %s: %ld training and %ld test samples%s",
                 dataset_name(cfg->data_dataset), cfg->data_path, r->train.n, r->test.n,
                 r->train.augment ? "; training images randomly cropped and flipped" : "");
    r->shape = (run_shape){.c = r->train.channels,
                           .h = r->train.height,
                           .w = r->train.width,
                           .classes = r->data.classes,
                           .events = r->train.frames > 0};
    return run_net(&r->net, &r->ts.opt, cfg, grid, &r->shape);
}

void run_close(run_ctx *r) {
    optim_destroy(&r->ts.opt);
    net_destroy(&r->net);
    dataset_destroy(&r->data);
}

int run_ckpt_read(fsnn_net *net, trainer_state *ts, const char *dir, ckpt_data *d, char *used,
                  size_t size) {
    fsnn_model *m = NULL;
    optim *o = NULL;
    CHECK(net->ops.whole(net, ts->opt, &m, &o));
    trainer_state whole = *ts;
    whole.opt = o;
    memset(d, 0, sizeof *d);
    d->m = m;
    d->ts = &whole;
    int rc = FSNN_OK;
    if (!fsutil_is_file(dir))
        rc = ckpt_load_latest(dir, d, used, size);
    else if (strlen(dir) >= size)
        rc = FAIL("checkpoint path too long: %.80s...", dir);
    else
        rc = ckpt_read(strcpy(used, dir), d);
    d->ts = ts; /* not the local copy, which ends here */
    CHECK(rc);
    optim *mine = ts->opt;
    *ts = whole;
    ts->opt = mine;
    return net->ops.load(net, mine);
}

int run_ckpt_write(fsnn_net *net, const trainer_state *ts, const char *dir, ckpt_data *d,
                   int writer) {
    net_saved s;
    CHECK(run_agree(net->ops.save(net, ts->opt, &s)));
    trainer_state whole = *ts;
    whole.opt = (optim *)s.opt;
    d->m = (fsnn_model *)s.model;
    d->ts = &whole;
    int rc = FSNN_OK;
    if (s.shard && s.writes)
        rc = ckptshard_write(dir, writer ? d : NULL, s.shard);
    else if (!s.shard && writer)
        rc = ckpt_write(dir, d);
    d->m = NULL;
    d->ts = NULL;
    return run_agree(rc);
}
