/* cmd_fixture: `fsnn fixture FILE.h5 [KEY=VALUE ...]` checks fsnn against
 * a reference fixture (shared/fixtures/reference/README.md: one training
 * step of the authors' code, every tensor before and after, every
 * gradient, then an evaluation forward). It builds the fixture's net from
 * its root attributes with model.fidelity = reference, loads every
 * parameter and buffer through one name map (fixture_names), runs one
 * training-mode forward and backward per adjoint solver the file holds and
 * one evaluation forward, and compares each quantity at a stated bound
 * (docs/fidelity.md):
 *
 *   weights W, logits, loss, f(a), dL/da, running statistics, u, v   rel 1e-5
 *   firing rates a[T] (spikes are exact)                             rel 1e-6
 *   beta and every gradient                                          rel 1e-5
 *   biases that feed a training-mode BatchNorm (zero in exact
 *   arithmetic): |fsnn - ref| <= 1e-5 max |grad of that BatchNorm's beta|
 *
 * rel = ||fsnn - ref||_2 / ||ref||_2 (||fsnn - ref||_2 when ref is zero).
 * One line per quantity: name, difference, bound, ok; then `fixture PASS`
 * or `fixture FAIL`. Exit 0 only on a pass. One process, no MPI. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blas.h"   // defines: blas_set_threads, blas_set_serial
#include "cmd.h"    // defines: cmd_fixture
#include "config.h" // defines: config_defaults, config_set_key, config_override, config_resolve
#include "h5in.h"   // defines: h5in_open, h5in_read_f32, h5in_attr_*
#include "log.h"    // defines: log_error
#include "model.h"  // defines: model_create, model_input, model_simulate, model_loss
#include "neuron.h" // defines: neuron_rates
#include "status.h" // defines: CHECK, FAIL, XCALLOC

#define FIXTURE_REL 1e-5
#define FIXTURE_RATE 1e-6
#define FIXTURE_BIAS_BN 1e-5
#define FIXTURE_TEXT 512

/* The reference's module paths and fsnn's tensor and state names, '#' a
 * layer number: the reference's network_sK (K = 1..L-1) is the map into
 * layer K+1, whose number `shift` adds. An empty fsnn name is a buffer
 * fsnn does not keep (BatchNorm's step counter: fsnn's momentum is fixed). */
static const struct {
    const char *ref, *fsnn;
    int shift;
} fixture_names[] = {
    {"network_x.fc.weight", "input.weight", 0},
    {"network_x.conv.weight", "input.weight", 0},
    {"network_x.fc.bias", "input.bias", 0},
    {"network_x.conv.bias", "input.bias", 0},
    {"network_x.bn.weight", "input.bn.weight", 0},
    {"network_x.bn.bias", "input.bn.bias", 0},
    {"network_x.bn.running_mean", "bn_mean", 0},
    {"network_x.bn.running_var", "bn_var", 0},
    {"network_x.bn.num_batches_tracked", "", 0},
    {"network_s.fc.weight_w", "feedback.V", 0},
    {"network_s.fc.weight_g", "feedback.g", 0},
    {"network_s.fc.weight_u", "sn_u", 0},
    {"network_s.fc.weight_v", "sn_v", 0},
    {"network_s.conv.weight_w", "feedback.V", 0},
    {"network_s.conv.weight_g", "feedback.g", 0},
    {"network_s.conv.weight_u", "sn_u", 0},
    {"network_s.conv.weight_v", "sn_v", 0},
    {"network_s#.convT.weight_w", "feedback.V", 0},
    {"network_s#.convT.weight_g", "feedback.g", 0},
    {"network_s#.convT.weight_u", "sn_u", 0},
    {"network_s#.convT.weight_v", "sn_v", 0},
    {"network_s#.conv.weight", "layer#.weight", 1},
    {"network_s#.conv.bias", "layer#.bias", 1},
    {"network_s#.bn.weight", "layer#.bn.weight", 1},
    {"network_s#.bn.bias", "layer#.bn.bias", 1},
    {"network_s#.bn.running_mean", "layer#.bn_mean", 1},
    {"network_s#.bn.running_var", "layer#.bn_var", 1},
    {"network_s#.bn.num_batches_tracked", "", 1},
    {"classifier.weight", "readout.weight", 0},
    {"classifier.bias", "readout.bias", 0},
};

/* Whether `name` matches `pat` ('#' = a decimal number, into *num). */
static int fixture_match(const char *pat, const char *name, int *num) {
    const char *hash = strchr(pat, '#');
    if (!hash) return strcmp(pat, name) == 0;
    const size_t pre = (size_t)(hash - pat);
    if (strncmp(pat, name, pre) != 0) return 0;
    const char *p = name + pre;
    int v = 0, digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 4) {
        v = v * 10 + (*p++ - '0');
        digits++;
    }
    if (digits == 0 || strcmp(hash + 1, p) != 0) return 0;
    *num = v;
    return 1;
}

/* fsnn's name of the reference's `ref` into out (empty: not kept). */
static int fixture_map(const char *file, const char *ref, char *out, size_t cap) {
    for (size_t i = 0; i < sizeof fixture_names / sizeof fixture_names[0]; i++) {
        int k = 0;
        if (!fixture_match(fixture_names[i].ref, ref, &k)) continue;
        const char *f = fixture_names[i].fsnn, *hash = strchr(f, '#');
        if (!hash)
            snprintf(out, cap, "%s", f);
        else
            snprintf(out, cap, "%.*s%d%s", (int)(hash - f), f, k + fixture_names[i].shift,
                     hash + 1);
        return FSNN_OK;
    }
    return FAIL("%s: parameter '%s' has no fsnn tensor in the name map (src/cmd_fixture.c)", file,
                ref);
}

/* The model's array named `name` (a trainable tensor or saved state): data
 * in params (grads: in grads) and its count. */
static int fixture_tensor(const char *file, fsnn_model *m, const char *name, int grads,
                          float **data, long *count) {
    for (int i = 0; i < m->n_tensors; i++)
        if (!strcmp(m->info[i].name, name)) {
            *data = (grads ? m->grads : m->params) + m->info[i].offset;
            *count = (long)m->info[i].count;
            return FSNN_OK;
        }
    for (int i = 0; i < m->n_state && !grads; i++)
        if (!strcmp(m->state[i].name, name)) {
            *data = m->state[i].data;
            *count = (long)m->state[i].count;
            return FSNN_OK;
        }
    return FAIL("%s: fsnn's net has no %s '%s'", file, grads ? "gradient" : "tensor", name);
}

typedef struct {
    h5in *f;
    const char *file;
    fsnn_model *m;
    int failed, compared;
} fixture_run;

/* Compares x [count] with dataset `path`: the relative L2 difference
 * against `bound` (abs: the largest absolute difference). Prints one line. */
static int fixture_compare(fixture_run *r, const char *label, const char *path, const float *x,
                           long count, double bound, int abs) {
    float *ref = NULL;
    long n = 0;
    CHECK(h5in_read_f32(r->f, path, &ref, &n));
    if (n != count) {
        free(ref);
        return FAIL("%s: dataset '%s' has %ld values, fsnn's %s has %ld", r->file, path, n, label,
                    count);
    }
    double d2 = 0.0, r2 = 0.0, dmax = 0.0;
    for (long i = 0; i < n; i++) {
        const double d = (double)x[i] - ref[i];
        d2 += d * d;
        r2 += (double)ref[i] * ref[i];
        dmax = fmax(dmax, fabs(d));
    }
    free(ref);
    const double shown = abs ? dmax : (r2 > 0.0 ? sqrt(d2 / r2) : sqrt(d2));
    const int ok = isfinite(shown) && shown <= bound;
    printf("%-58s %-4s %10.3e  bound %8.1e  %s\n", label, abs ? "abs" : "rel", shown, bound,
           ok ? "ok" : "FAIL");
    r->failed += !ok;
    r->compared++;
    return FSNN_OK;
}

/* The largest |x| of dataset `path`. */
static int fixture_maxabs(fixture_run *r, const char *path, double *out) {
    float *x = NULL;
    long n = 0;
    CHECK(h5in_read_f32(r->f, path, &x, &n));
    double mx = 0.0;
    for (long i = 0; i < n; i++)
        mx = fmax(mx, fabs((double)x[i]));
    free(x);
    *out = mx;
    return FSNN_OK;
}

typedef struct {
    fixture_run *r;
    int phase; /* 0 load init/, 1 compare a state group, 2 compare a gradient group */
    const char *group;
    const char *solver;
} fixture_walk;

/* Whether fsnn name `name` is a bias that feeds a training-mode BatchNorm,
 * and the reference's name of that BatchNorm's beta. */
static int fixture_pre_bn_bias(const char *name, char *beta, size_t cap) {
    if (!strcmp(name, "input.bias")) {
        snprintf(beta, cap, "network_x.bn.bias");
        return 1;
    }
    int l = 0, used = 0;
    if (sscanf(name, "layer%d.bias%n", &l, &used) == 1 && name[used] == '\0') {
        snprintf(beta, cap, "network_s%d.bn.bias", l - 1);
        return 1;
    }
    return 0;
}

static int fixture_visit(void *ctx, const char *ref) {
    fixture_walk *w = ctx;
    fixture_run *r = w->r;
    char name[96], path[H5IN_PATH_MAX], label[160];
    CHECK(fixture_map(r->file, ref, name, sizeof name));
    if (!name[0]) return FSNN_OK; /* not kept */
    snprintf(path, sizeof path, "%s/%s", w->group, ref);
    float *x = NULL;
    long count = 0;
    CHECK(fixture_tensor(r->file, r->m, name, w->phase == 2, &x, &count));
    /* The evaluation's u, v are model_prepare_eval's copies (fsnn's
     * evaluation leaves the training's as they were; docs/fidelity.md). */
    if (w->phase == 1 && !strcmp(w->group, "eval/state_after")) {
        if (!strcmp(name, "sn_u")) x = r->m->ev_u;
        if (!strcmp(name, "sn_v")) x = r->m->ev_v;
    }
    if (w->phase == 0) return h5in_read_f32_into(r->f, path, x, count);
    snprintf(label, sizeof label, "%s %s", w->phase == 2 ? w->solver : w->group, ref);
    char beta[96];
    if (w->phase == 2 && fixture_pre_bn_bias(name, beta, sizeof beta)) {
        char bpath[H5IN_PATH_MAX];
        double mx = 0.0;
        snprintf(bpath, sizeof bpath, "%s/%s", w->group, beta);
        CHECK(fixture_maxabs(r, bpath, &mx));
        return fixture_compare(r, label, path, x, count, FIXTURE_BIAS_BN * mx, 1);
    }
    return fixture_compare(r, label, path, x, count, FIXTURE_REL, 0);
}

/* Reads the fixture's root attributes into a configuration. */
static int fixture_config(h5in *f, const char *file, fsnn_cfg *cfg, int *c, int *h, int *w,
                          int *classes, int *B, int *events) {
    char net[FIXTURE_TEXT], kind[64], conv[64], why[256];
    double T, vth, leak, batch, drop, C, H, W, K;
    CHECK(h5in_attr_string(f, "/", "net", net, sizeof net));
    CHECK(h5in_attr_string(f, "/", "net_kind", kind, sizeof kind));
    const char *num[] = {"T",       "V_th",    "leak",    "batch",  "dropout",
                         "input_C", "input_H", "input_W", "classes"};
    double *val[] = {&T, &vth, &leak, &batch, &drop, &C, &H, &W, &K};
    for (size_t i = 0; i < sizeof num / sizeof num[0]; i++)
        CHECK(h5in_attr_double(f, "/", num[i], val[i]));
    if (!(T >= 1 && T <= 10000 && batch >= 1 && batch <= 65536 && C >= 1 && H >= 1 && W >= 1 &&
          C * H * W <= (1 << 24) && K >= 2 && K <= 1000))
        return FAIL("%s: root attributes out of range (T %g, batch %g, input %gx%gx%g, classes %g)",
                    file, T, batch, C, H, W, K);
    config_defaults(cfg);
    *events = !strcmp(kind, "nmnist");
    struct {
        const char *key;
        char value[FIXTURE_TEXT];
    } set[] = {{"model.net", ""},
               {"model.time_steps", ""},
               {"neuron.vth", ""},
               {"neuron.leak", ""},
               {"train.dropout", ""},
               {"train.batch", ""},
               {"parallel.micro_batch", ""},
               {"data.dataset", ""},
               {"model.fidelity", ""}};
    snprintf(set[0].value, sizeof set[0].value, "%s", net);
    snprintf(set[1].value, sizeof set[1].value, "%d", (int)T);
    snprintf(set[2].value, sizeof set[2].value, "%.9g", vth);
    snprintf(set[3].value, sizeof set[3].value, "%.9g", leak);
    snprintf(set[4].value, sizeof set[4].value, "%.9g", drop);
    snprintf(set[5].value, sizeof set[5].value, "%d", (int)batch);
    snprintf(set[6].value, sizeof set[6].value, "%d", (int)batch);
    snprintf(set[7].value, sizeof set[7].value, "%s", *events ? "nmnist" : "mnist");
    snprintf(set[8].value, sizeof set[8].value, "reference");
    for (size_t i = 0; i < sizeof set / sizeof set[0]; i++)
        if (config_set_key(set[i].key, set[i].value, cfg, why, sizeof why))
            return FAIL("%s: attribute for '%s' = '%s': %s", file, set[i].key, set[i].value, why);
    /* The input conv's padding, when it is not k/2 ("k5 s2 p1"). */
    if (h5in_attr_exists(f, "/", "input_conv")) {
        CHECK(h5in_attr_string(f, "/", "input_conv", conv, sizeof conv));
        int k = 0, s = 0, p = 0;
        if (sscanf(conv, "k%d s%d p%d", &k, &s, &p) != 3 || k < 1 || p < 0 || p > 64)
            return FAIL("%s: attribute 'input_conv' = '%s' is not 'kK sS pP'", file, conv);
        if (p != k / 2) cfg->model_input_padding = p;
    }
    *c = (int)C, *h = (int)H, *w = (int)W, *classes = (int)K, *B = (int)batch;
    return FSNN_OK;
}

/* Loads init/ into the model: every dataset of the group must map. */
static int fixture_load(fixture_run *r) {
    fixture_walk w = {r, 0, "init", NULL};
    return h5in_list(r->f, "init", fixture_visit, &w);
}

typedef struct {
    int B, events, T;
    float *x, *frames, *xin;
    uint8_t *labels;
    long *ids;
} fixture_batch;

/* input/x and input/y; event input [B, C, H, W, T] into frames [B x T x n]. */
static int fixture_input(fixture_run *r, fixture_batch *b) {
    const fsnn_model *m = r->m;
    const long n = m->n_in, want = (long)b->B * n * (b->events ? b->T : 1);
    CHECK(XCALLOC(&b->xin, (size_t)want));
    CHECK(h5in_read_f32_into(r->f, "input/x", b->xin, want));
    CHECK(XCALLOC(&b->x, (size_t)b->B * n));
    if (b->events) {
        CHECK(XCALLOC(&b->frames, (size_t)want));
        for (int s = 0; s < b->B; s++)
            for (long i = 0; i < n; i++)
                for (int t = 0; t < b->T; t++)
                    b->frames[((long)s * b->T + t) * n + i] = b->xin[((long)s * n + i) * b->T + t];
    } else {
        memcpy(b->x, b->xin, sizeof(float) * (size_t)b->B * n);
    }
    int32_t *y = NULL;
    long ny = 0;
    CHECK(h5in_read_i32(r->f, "input/y", &y, &ny));
    int bad = ny != b->B;
    if (XCALLOC(&b->labels, (size_t)b->B) || XCALLOC(&b->ids, (size_t)b->B)) {
        free(y);
        return FAIL("%s: out of memory for %d labels", r->file, b->B);
    }
    for (long i = 0; i < ny && !bad; i++) {
        if (y[i] < 0 || y[i] >= m->n_out) bad = 1;
        b->labels[i] = (uint8_t)y[i];
        b->ids[i] = i;
    }
    free(y);
    if (bad) return FAIL("%s: input/y must hold %d labels in [0, %d)", r->file, b->B, m->n_out);
    return FSNN_OK;
}

static void fixture_batch_free(fixture_batch *b) {
    free(b->x);
    free(b->frames);
    free(b->xin);
    free(b->labels);
    free(b->ids);
}

/* The forward of one batch in training (grads) or evaluation mode. */
static int fixture_forward(fixture_run *r, model_ws *ws, fixture_batch *b, int training,
                           model_stats *st) {
    fsnn_model *m = r->m;
    if (training)
        model_prepare_weights(m, 1);
    else
        model_prepare_eval(m, 1);
    if (b->events) model_event_average(m, b->frames, b->T, b->B, training, b->x);
    CHECK(model_input(m, ws, b->x, b->B, training, b->ids, 0, 1));
    if (b->events) CHECK(model_set_events(m, ws, b->frames, b->T));
    memset(st, 0, sizeof *st);
    model_simulate(m, ws, b->B, st);
    return model_loss(m, ws, b->labels, b->B, (double)b->B, training, st);
}

/* A multi-layer net's rates of layers 1..L-1 against <phase>/a_T/layerL. */
static int fixture_layer_rates(fixture_run *r, model_ws *ws, int B, const char *phase) {
    const fsnn_model *m = r->m;
    for (int l = 0; l + 1 < m->ml->L; l++) {
        const long count = (long)B * m->ml->layer[l].n;
        float *rate = NULL;
        CHECK(XCALLOC(&rate, (size_t)count));
        neuron_rates(model_ws_layer_acc(ws, l), count, m->T, m->leak, rate);
        char path[64], label[64];
        snprintf(path, sizeof path, "%s/a_T/layer%d", phase, l + 1);
        snprintf(label, sizeof label, "%s a_T layer%d", phase, l + 1);
        int rc = fixture_compare(r, label, path, rate, count, FIXTURE_RATE, 0);
        free(rate);
        CHECK(rc);
    }
    return FSNN_OK;
}

/* One training step with solver `kind`, compared with the groups the
 * fixture holds for it; the first also checks the forward and, after it,
 * the evaluation forward. */
static int fixture_step(fixture_run *r, fsnn_cfg *cfg, fixture_batch *b, cfg_solver kind,
                        const char *const *groups, int n_groups, const char *const *adjoints,
                        int first) {
    fsnn_model *m = r->m;
    cfg->solver_kind = kind;
    model_ws *ws = NULL;
    int rc = model_ws_create(&ws, m, cfg, b->B);
    model_stats st;
    if (rc == 0) rc = fixture_load(r);
    if (rc == 0) rc = fixture_forward(r, ws, b, 1, &st);
    const long na = (long)b->B * m->n;
    char label[96];
    if (rc == 0 && first) {
        char apath[64];
        snprintf(apath, sizeof apath, "train/a_T/layer%d", m->ml ? m->ml->L : 1);
        const float loss = (float)(st.loss / b->B);
        struct {
            const char *label, *path;
            const float *x;
            long n;
            double bound;
        } fw[] = {
            {"train W_feedback", "train/W_feedback", m->W, (long)linop_weights(&m->fb_op),
             FIXTURE_REL},
            {"train a_T", apath, model_ws_a(ws), na, FIXTURE_RATE},
            {"train logits", "train/logits", model_ws_logits(ws), (long)b->B * m->n_out,
             FIXTURE_REL},
            {"train loss", "train/loss", &loss, 1, FIXTURE_REL},
            {"train f_a", "train/f_a", model_ws_f(ws), na, FIXTURE_REL},
            {"train dL_da", "train/dL_da", model_ws_ga(ws), na, FIXTURE_REL},
        };
        for (size_t i = 0; rc == 0 && i < sizeof fw / sizeof fw[0]; i++)
            rc = fixture_compare(r, fw[i].label, fw[i].path, fw[i].x, fw[i].n, fw[i].bound, 0);
        if (rc == 0 && m->ml) rc = fixture_layer_rates(r, ws, b->B, "train");
        fixture_walk w = {r, 1, "train/state_after", NULL};
        if (rc == 0) rc = h5in_list(r->f, "train/state_after", fixture_visit, &w);
    }
    for (int i = 0; rc == 0 && i < n_groups; i++) {
        char bpath[64];
        snprintf(label, sizeof label, "%s", groups[i]);
        snprintf(bpath, sizeof bpath, "%s/beta", adjoints[i]);
        char bl[96];
        snprintf(bl, sizeof bl, "%s beta", adjoints[i]);
        rc = fixture_compare(r, bl, bpath, model_ws_beta(ws), na, FIXTURE_REL, 0);
        snprintf(bpath, sizeof bpath, "%s/dL_dW_feedback", adjoints[i]);
        snprintf(bl, sizeof bl, "%s dL_dW_feedback", adjoints[i]);
        if (rc == 0)
            rc = fixture_compare(r, bl, bpath, m->gW, (long)linop_weights(&m->fb_op), FIXTURE_REL,
                                 0);
        fixture_walk w = {r, 2, groups[i], label};
        if (rc == 0) rc = h5in_list(r->f, groups[i], fixture_visit, &w);
    }
    if (rc == 0 && first) { /* evaluation after the training forward, as the fixture's */
        rc = fixture_forward(r, ws, b, 0, &st);
        char apath[64];
        snprintf(apath, sizeof apath, "eval/a_T/layer%d", m->ml ? m->ml->L : 1);
        if (rc == 0)
            rc = fixture_compare(r, "eval W_feedback", "eval/W_feedback", m->W,
                                 (long)linop_weights(&m->fb_op), FIXTURE_REL, 0);
        if (rc == 0)
            rc = fixture_compare(r, "eval a_T", apath, model_ws_a(ws), na, FIXTURE_RATE, 0);
        if (rc == 0 && m->ml) rc = fixture_layer_rates(r, ws, b->B, "eval");
        if (rc == 0)
            rc = fixture_compare(r, "eval logits", "eval/logits", model_ws_logits(ws),
                                 (long)b->B * m->n_out, FIXTURE_REL, 0);
        fixture_walk w = {r, 1, "eval/state_after", NULL};
        if (rc == 0) rc = h5in_list(r->f, "eval/state_after", fixture_visit, &w);
    }
    model_ws_destroy(&ws);
    return rc;
}

static int fixture_check(const char *file, int argc, char **argv) {
    fixture_run r = {.file = file};
    fsnn_cfg cfg;
    fixture_batch b;
    memset(&b, 0, sizeof b);
    int c = 0, h = 0, w = 0, classes = 0;
    int rc = h5in_open(&r.f, file);
    if (rc == 0) rc = fixture_config(r.f, file, &cfg, &c, &h, &w, &classes, &b.B, &b.events);
    for (int i = 0; rc == 0 && i < argc; i++)
        rc = config_override(argv[i], &cfg);
    if (rc == 0) rc = config_resolve(file, &cfg);
    if (rc == 0) rc = model_create(&r.m, &cfg, c, h, w, classes);
    b.T = cfg.model_time_steps;
    if (rc == 0) rc = fixture_input(&r, &b);
    /* The solvers whose gradients the fixture holds: fsnn's Broyden against
     * the reference's and a converged solve, and the reference's N-MNIST
     * iteration against its own. */
    const char *bg[] = {"grad_broyden", "grad_converged"};
    const char *ba[] = {"adjoint_broyden", "adjoint_converged"};
    if (rc == 0) rc = fixture_step(&r, &cfg, &b, SOLVER_BROYDEN, bg, 2, ba, 1);
    const char *ig[] = {"grad_iter"}, *ia[] = {"adjoint_iter"};
    if (rc == 0 && h5in_exists(r.f, "grad_iter"))
        rc = fixture_step(&r, &cfg, &b, SOLVER_HALVING, ig, 1, ia, 0);
    fixture_batch_free(&b);
    model_destroy(&r.m);
    h5in_close(&r.f);
    if (rc != 0) {
        log_error("fixture %s: %s", file, status_message());
        printf("fixture FAIL\n");
        return 1;
    }
    printf("%d quantities compared, %d outside their bounds\n", r.compared, r.failed);
    printf("fixture %s\n", r.failed ? "FAIL" : "PASS");
    return r.failed ? 1 : 0;
}

int cmd_fixture(int argc, char **argv) {
    if (argc < 1 || !strcmp(argv[0], "--help") || !strcmp(argv[0], "-h")) {
        fprintf(argc < 1 ? stderr : stdout,
                "usage: fsnn fixture FILE.h5 [KEY=VALUE ...]\n"
                "  checks one reference fixture (docs/fidelity.md): one training step and one\n"
                "  evaluation forward against the authors' code's values; prints one line per\n"
                "  compared quantity and 'fixture PASS' or 'fixture FAIL'\n");
        return argc < 1 ? 2 : 0;
    }
    blas_set_threads(1);
    blas_set_serial(1);
    return fixture_check(argv[0], argc - 1, argv + 1);
}
