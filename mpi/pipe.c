/* pipe: MPI transport of the layer pipeline. */
#include "pipe.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"      // defines: log_info
#include "pipeplan.h" // defines: pipeplan_assign
#include "status.h"   // defines: FAIL, CHECK, XCALLOC
#include "watchdog.h" // defines: watchdog_wait, watchdog_wait_status

enum { PIPE_SLOTS = 4, PIPE_TAG = 7301 };

typedef struct pipe_env pipe_env;

struct pipe_env {
    MPI_Comm comm;
    mlnet_pipe pipe;
    mlnet_traffic traffic;
    double cost[NETSPEC_LAYERS_MAX];
    double send_seconds, wait_seconds;
    /* Send copies in flight, used round robin. */
    MPI_Request req[PIPE_SLOTS];
    void *buf[PIPE_SLOTS];
    size_t cap[PIPE_SLOTS];
    int next;
    void (*base_destroy)(fsnn_net *n); /* the model net's */
};

static int pipe_send(void *ctx, int to, const void *buf, size_t bytes) {
    pipe_env *p = ctx;
    const double t0 = MPI_Wtime();
    const int k = p->next;
    p->next = (k + 1) % PIPE_SLOTS;
    CHECK(watchdog_wait(&p->req[k], "pipeline: send to a stage"));
    if (bytes > (size_t)INT32_MAX)
        return FAIL("pipeline: a message of %zu bytes exceeds MPI's count", bytes);
    if (bytes > p->cap[k]) {
        void *nb = realloc(p->buf[k], bytes);
        if (!nb) return FAIL("pipeline: out of memory for a %zu-byte message", bytes);
        p->buf[k] = nb;
        p->cap[k] = bytes;
    }
    memcpy(p->buf[k], buf, bytes);
    int rc = MPI_Isend(p->buf[k], (int)bytes, MPI_BYTE, to, PIPE_TAG, p->comm, &p->req[k]);
    p->send_seconds += MPI_Wtime() - t0;
    return rc == MPI_SUCCESS
               ? FSNN_OK
               : FAIL("pipeline: MPI_Isend of %zu bytes to stage %d failed", bytes, to);
}

static int pipe_recv(void *ctx, int from, void *buf, size_t cap, size_t *got) {
    pipe_env *p = ctx;
    const double t0 = MPI_Wtime();
    MPI_Request req;
    MPI_Status st;
    int count = 0;
    const int c = cap > (size_t)INT32_MAX ? INT32_MAX : (int)cap;
    if (MPI_Irecv(buf, c, MPI_BYTE, from, PIPE_TAG, p->comm, &req) != MPI_SUCCESS)
        return FAIL("pipeline: cannot post a receive from stage %d", from);
    int rc = watchdog_wait_status(&req, &st, "pipeline: receive from a stage");
    p->wait_seconds += MPI_Wtime() - t0;
    if (rc != FSNN_OK)
        return FAIL("pipeline: receiving from stage %d failed (a message longer than %zu bytes?)",
                    from, cap);
    MPI_Get_count(&st, MPI_BYTE, &count);
    *got = (size_t)count;
    return FSNN_OK;
}

static int pipe_flush(void *ctx) {
    pipe_env *p = ctx;
    const double t0 = MPI_Wtime();
    int rc = FSNN_OK;
    for (int k = 0; k < PIPE_SLOTS && rc == FSNN_OK; k++)
        rc = watchdog_wait(&p->req[k], "pipeline: send to a stage");
    p->wait_seconds += MPI_Wtime() - t0;
    return rc;
}

static int pipe_bcast(void *ctx, void *buf, size_t bytes, int root) {
    pipe_env *p = ctx;
    const double t0 = MPI_Wtime();
    if (bytes > (size_t)INT32_MAX)
        return FAIL("pipeline: a broadcast of %zu bytes exceeds MPI's count", bytes);
    MPI_Request req;
    if (MPI_Ibcast(buf, (int)bytes, MPI_BYTE, root, p->comm, &req) != MPI_SUCCESS)
        return FAIL("pipeline: cannot start a broadcast of %zu bytes from stage %d", bytes, root);
    int rc = watchdog_wait(&req, "pipeline: broadcast from a stage");
    p->wait_seconds += MPI_Wtime() - t0;
    return rc;
}

/* An in-place double sum over the group, under the watchdog. */
static int pipe_allsum(const pipe_env *p, double *buf, int count) {
    MPI_Request req;
    if (MPI_Iallreduce(MPI_IN_PLACE, buf, count, MPI_DOUBLE, MPI_SUM, p->comm, &req) != MPI_SUCCESS)
        return FAIL("pipeline: cannot start a sum over the stages");
    return watchdog_wait(&req, "pipeline: sum over the stages");
}

static int pipe_sum_f64(void *ctx, double *buf, size_t count) {
    pipe_env *p = ctx;
    const double t0 = MPI_Wtime();
    int rc = pipe_allsum(p, buf, (int)count);
    p->wait_seconds += MPI_Wtime() - t0;
    return rc;
}

static int pipe_create(pipe_env **out, MPI_Comm model, fsnn_model *m) {
    pipe_env *p;
    CHECK(XCALLOC(&p, 1));
    *out = p;
    p->comm = model;
    for (int k = 0; k < PIPE_SLOTS; k++)
        p->req[k] = MPI_REQUEST_NULL;
    int rank, size;
    if (MPI_Comm_rank(model, &rank) != MPI_SUCCESS || MPI_Comm_size(model, &size) != MPI_SUCCESS)
        return FAIL("pipeline: cannot read the model group's rank and size");
    if (!m->ml)
        return FAIL("parallel.model_ranks = %d: a layer pipeline needs a net of two layers or "
                    "more",
                    size);
    mlnet_costs(m->ml, &m->fb_op, p->cost);
    mlnet_pipe *q = &p->pipe;
    CHECK(pipeplan_assign(p->cost, m->ml->L, size, q->first));
    q->stages = size;
    q->stage = rank;
    q->ctx = p;
    q->send = pipe_send;
    q->recv = pipe_recv;
    q->flush = pipe_flush;
    q->bcast = pipe_bcast;
    q->sum_f64 = pipe_sum_f64;
    q->traffic = &p->traffic;
    return model_set_pipeline(m, q);
}

static void pipe_destroy(pipe_env **pp) {
    pipe_env *p = *pp;
    if (!p) return;
    MPI_Waitall(PIPE_SLOTS, p->req, MPI_STATUSES_IGNORE);
    for (int k = 0; k < PIPE_SLOTS; k++)
        free(p->buf[k]);
    free(p);
    *pp = NULL;
}

/* The assignment as text, e.g. "stage 0: layers 1-3 (61%), stage 1: layers
 * 4-5 (39%)" with each stage's share of the estimated cost. */
static void pipe_stages(const pipe_env *p, char *buf, size_t size) {
    const mlnet_pipe *q = &p->pipe;
    double total = 0.0;
    for (int l = 0; l < q->first[q->stages]; l++)
        total += p->cost[l];
    size_t at = 0;
    buf[0] = '\0';
    for (int s = 0; s < q->stages && at < size; s++) {
        double c = 0.0;
        for (int l = q->first[s]; l < q->first[s + 1]; l++)
            c += p->cost[l];
        int n =
            q->first[s + 1] - q->first[s] == 1
                ? snprintf(buf + at, size - at, "%sstage %d: layer %d (%.0f%%)", s ? ", " : "", s,
                           q->first[s] + 1, 100.0 * c / total)
                : snprintf(buf + at, size - at, "%sstage %d: layers %d-%d (%.0f%%)", s ? ", " : "",
                           s, q->first[s] + 1, q->first[s + 1], 100.0 * c / total);
        if (n < 0) break;
        at += (size_t)n;
    }
}

/* The sums over the group of what its ranks sent so far, and of the seconds
 * they spent in the transport's calls: sec[0] posting sends (the copy and
 * MPI_Isend), sec[1] receiving, waiting for sends and broadcasting, which
 * includes the wait for the stage that produces the message. Collective. */
static int pipe_totals(const pipe_env *p, mlnet_traffic *sum, double sec[2]) {
    const mlnet_traffic *t = &p->traffic;
    double v[8] = {(double)t->steps, t->spike_bytes,  t->mask_bytes,   t->list_bytes,
                   t->float_bytes,   t->code_seconds, p->send_seconds, p->wait_seconds};
    CHECK(pipe_allsum(p, v, 8));
    *sum = (mlnet_traffic){(long)v[0], v[1], v[2], v[3], v[4], v[5]};
    sec[0] = v[6];
    sec[1] = v[7];
    return FSNN_OK;
}

static void pipe_net_describe(const fsnn_net *n, const fsnn_cfg *cfg, int groups, char *buf,
                              size_t size) {
    const pipe_env *p = n->ext;
    char stages[512];
    pipe_stages(p, stages, sizeof stages);
    snprintf(buf, size, "layer pipeline: %d group%s of %d stages, %s mode; %s", groups,
             groups == 1 ? "" : "s", p->pipe.stages,
             cfg->parallel_deterministic ? "deterministic" : "fast", stages);
}

/* The exchange over all stages of the group so far, and the seconds per
 * stage spent coding spikes and in the transport (world rank 0 logs, for
 * group 0). Collective. */
static int pipe_net_finish(fsnn_net *n) {
    const pipe_env *p = n->ext;
    mlnet_traffic t;
    double sec[2];
    CHECK(pipe_totals(p, &t, sec));
    const double steps = t.steps > 0 ? (double)t.steps : 1.0;
    const int stages = p->pipe.stages;
    log_info("layer pipeline exchange (group 0, all stages): %ld spike messages, %.0f bytes "
             "per message sent (bit masks only: %.0f, index lists only: %.0f); %.3g MB of "
             "activations and adjoint vectors; per stage %.3f s coding spikes, %.3f s posting "
             "sends, %.2f s receiving and waiting",
             t.steps, t.spike_bytes / steps, t.mask_bytes / steps, t.list_bytes / steps,
             t.float_bytes / 1e6, t.code_seconds / stages, sec[0] / stages, sec[1] / stages);
    return FSNN_OK;
}

static void pipe_net_destroy(fsnn_net *n) {
    pipe_env *p = n->ext;
    p->base_destroy(n);
    pipe_destroy(&p);
    n->ext = NULL;
}

int pipe_net_create(fsnn_net **out, MPI_Comm model, fsnn_model *m, const fsnn_cfg *cfg, int bmax) {
    *out = NULL;
    pipe_env *p = NULL;
    int rc = pipe_create(&p, model, m);
    if (rc == 0)
        rc = net_model_create(out, m, cfg, bmax);
    else
        model_destroy(&m);
    if (rc) {
        pipe_destroy(&p);
        return rc;
    }
    fsnn_net *n = *out;
    p->base_destroy = n->ops.destroy;
    n->ext = p;
    n->kind = "layer pipeline";
    n->ops.describe = pipe_net_describe;
    n->ops.finish = pipe_net_finish;
    n->ops.destroy = pipe_net_destroy;
    return FSNN_OK;
}
