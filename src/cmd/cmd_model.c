/* fsnn model: the layers, shapes, neuron and parameter counts of a net in
 * the paper's notation (src/netspec.h), without building it.
 *
 *   fsnn model NET --input CxHxW|DATASET [--classes K]
 *   fsnn model --config FILE [section.key=value ...]   (model.net on data.dataset)
 *
 * Exit codes: 0 printed, 1 the net is malformed or does not fit the input,
 * 2 usage. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"     // defines: cmd_model
#include "config.h"  // defines: config_defaults, config_load, config_override, config_resolve
#include "dataset.h" // defines: dataset_dims, dataset_name
#include "log.h"     // defines: log_error
#include "netspec.h" // defines: netspec_parse, netspec_infer, netspec_short
#include "status.h"  // defines: status_message

static const char cmd_model_usage[] =
    "usage: fsnn model NET --input CxHxW|DATASET [--classes K]\n"
    "       fsnn model --config FILE [section.key=value ...]\n"
    "  NET               the net in the paper's notation, e.g. '64C5s (F64C5)'\n"
    "  --input CxHxW     the input's channels, height and width, e.g. 1x28x28, or a data\n"
    "                    set: mnist, fashion_mnist (fmnist), nmnist, cifar10, cifar100\n"
    "  --classes K       classes of the readout (default 10; cifar100: 100)\n"
    "  --config FILE     model.net of a configuration, on the input of its data.dataset\n";

/* What to describe: a net on an input, or a configuration's. */
typedef struct {
    const char *net;
    netspec_shape input;
    int classes;
    const char *config; /* --config FILE, or NULL */
    char **overrides;   /* section.key=value arguments after it (argv's) */
    int n_overrides;
    char net_buf[256]; /* model.net of the configuration */
} cmd_model_args;

/* A whole decimal number in 1..max, or 0. */
static long cmd_model_count(const char *s, long max) {
    char *end = NULL;
    if (*s < '0' || *s > '9' || strlen(s) > 9) return 0;
    long v = strtol(s, &end, 10);
    return *end == '\0' && v >= 1 && v <= max ? v : 0;
}

/* "CxHxW" with each part in 1..NETSPEC_INPUT_MAX. */
static int cmd_model_shape(const char *s, netspec_shape *shape) {
    char buf[64];
    if (strlen(s) >= sizeof buf) return 1;
    strcpy(buf, s);
    long v[3] = {0, 0, 0};
    char *part = buf;
    for (int i = 0; i < 3; i++) {
        char *x = strchr(part, 'x');
        if ((x != NULL) != (i < 2)) return 1;
        if (x) *x = '\0';
        v[i] = cmd_model_count(part, NETSPEC_INPUT_MAX);
        if (!v[i]) return 1;
        part = x + 1;
    }
    *shape = (netspec_shape){(int)v[0], (int)v[1], (int)v[2], 0};
    return 0;
}

static int cmd_model_bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Prints the message and the usage; returns 2. */
static int cmd_model_bad(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("fsnn model: ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", cmd_model_usage);
    return 2;
}

/* The input shape and classes of data set `kind` (dataset.h). */
static int cmd_model_kind_shape(cfg_dataset kind, netspec_shape *shape, int *classes) {
    int c = 0, h = 0, w = 0;
    CHECK(dataset_dims(kind, &c, &h, &w, classes));
    *shape = (netspec_shape){c, h, w, 0};
    return FSNN_OK;
}

/* The input shape and classes of the data set called `name` (data.dataset's
 * names, or fashion_mnist); 1 if there is none. */
static int cmd_model_dataset(const char *name, netspec_shape *shape, int *classes) {
    static const cfg_dataset kinds[] = {DATASET_FMNIST, DATASET_MNIST, DATASET_CIFAR10,
                                        DATASET_CIFAR100, DATASET_NMNIST};
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (!strcmp(name, dataset_name(kinds[i])) ||
            (kinds[i] == DATASET_FMNIST && !strcmp(name, "fashion_mnist")))
            return cmd_model_kind_shape(kinds[i], shape, classes) != 0;
    return 1;
}

/* 0, or 2 (usage) after a message. Overrides keep pointing into argv. */
static int cmd_model_parse(int argc, char **argv, cmd_model_args *a) {
    const char *in = NULL, *k = NULL;
    for (int i = 0; i < argc; i++) {
        int has_value = i + 1 < argc;
        if (!strcmp(argv[i], "--input") && has_value)
            in = argv[++i];
        else if (!strcmp(argv[i], "--classes") && has_value)
            k = argv[++i];
        else if (!strcmp(argv[i], "--config") && has_value)
            a->config = argv[++i];
        else if (argv[i][0] == '-' && argv[i][1] == '-')
            return cmd_model_bad("unexpected argument '%s' (or it lacks its value)", argv[i]);
        else if (a->config && strchr(argv[i], '='))
            a->overrides[a->n_overrides++] = argv[i];
        else if (a->net)
            return cmd_model_bad("unexpected argument '%s' (put the net in quotes)", argv[i]);
        else
            a->net = argv[i];
    }
    if (a->config) {
        if (a->net || in || k)
            return cmd_model_bad("--config takes the net, input and classes from the "
                                 "configuration: give no NET, --input or --classes with it");
        return 0;
    }
    if (a->n_overrides) return cmd_model_bad("section.key=value arguments need --config");
    if (!a->net) return cmd_model_bad("the net is missing");
    if (!in) return cmd_model_bad("--input is missing");
    a->classes = 10;
    if (cmd_model_dataset(in, &a->input, &a->classes) && cmd_model_shape(in, &a->input))
        return cmd_model_bad("--input '%s': expected CxHxW (each 1..%d, e.g. 3x32x32) or "
                             "mnist, fashion_mnist, fmnist, nmnist, cifar10, cifar100",
                             in, NETSPEC_INPUT_MAX);
    if (k) a->classes = (int)cmd_model_count(k, NETSPEC_CLASSES_MAX);
    if (k && !a->classes)
        return cmd_model_bad("--classes '%s': expected a count in 1..%d", k, NETSPEC_CLASSES_MAX);
    return 0;
}

/* The net and input of the configuration a->config with its overrides;
 * 0, or 1 after a message. */
static int cmd_model_config(cmd_model_args *a) {
    fsnn_cfg cfg;
    config_defaults(&cfg);
    int rc = config_load(a->config, &cfg);
    for (int i = 0; rc == 0 && i < a->n_overrides; i++)
        rc = config_override(a->overrides[i], &cfg);
    if (rc == 0) rc = config_resolve(a->config, &cfg);
    if (rc != 0) {
        log_error("%s", status_message());
        return 1;
    }
    if (cmd_model_kind_shape(cfg.data_dataset, &a->input, &a->classes)) {
        log_error("%s: %s", a->config, status_message());
        return 1;
    }
    snprintf(a->net_buf, sizeof a->net_buf, "%s", cfg.model_net);
    a->net = a->net_buf;
    return 0;
}

/* e.g. "conv 5x5 stride 2"; the feedback's with "feedback " before it. */
static void cmd_model_kind(const char *prefix, const netspec_layer *l, char *buf, size_t size) {
    switch (l->kind) {
    case NETSPEC_FC:
        snprintf(buf, size, "%sfc", prefix);
        break;
    case NETSPEC_CONV:
        snprintf(buf, size, "%sconv %dx%d%s", prefix, l->kernel, l->kernel,
                 l->stride == 2 ? " stride 2" : "");
        break;
    case NETSPEC_DECONV:
        snprintf(buf, size, "%stconv %dx%d up 2x", prefix, l->kernel, l->kernel);
        break;
    case NETSPEC_POOL:
        snprintf(buf, size, "%savgpool 2x2", prefix);
        break;
    }
}

static void cmd_model_row(FILE *out, const char *index, const char *token, const char *kind,
                          const netspec_size *sz) {
    char shape[48], neurons[24];
    netspec_shape_format(sz->out, shape, sizeof shape);
    snprintf(neurons, sizeof neurons, "%lld", (long long)sz->neurons);
    fprintf(out, "%-3s %-10s %-24s %-12s %10s %12lld %12lld\n", index, token, kind, shape,
            sz->neurons ? neurons : "-", (long long)sz->weights,
            (long long)(sz->weights + sz->biases));
}

void cmd_model_summary(FILE *out, const netspec *net, const netspec_sizes *s) {
    char in[48], index[16], token[48], kind[48], k[16], total[24];
    netspec_shape_format(s->input, in, sizeof in);
    fprintf(out, "net '%s' on %s inputs, %d classes\n\n", net->text, in, s->classes);
    fprintf(out, "%-3s %-10s %-24s %-12s %10s %12s %12s\n", "#", "token", "kind", "output",
            "neurons", "weights", "params");
    netspec_size input = {.out = s->input,
                          .neurons = (int64_t)s->input.c * s->input.h * s->input.w};
    cmd_model_row(out, "", "input", "input", &input);
    for (int i = 0; i < net->n_layers; i++) {
        snprintf(index, sizeof index, "%d", i + 1);
        netspec_token(net, &net->layer[i], token, sizeof token);
        cmd_model_kind("", &net->layer[i], kind, sizeof kind);
        cmd_model_row(out, index, token, kind, &s->layer[i]);
    }
    netspec_token(net, &net->feedback, token, sizeof token);
    cmd_model_kind("feedback ", &net->feedback, kind, sizeof kind);
    cmd_model_row(out, "F", token, kind, &s->feedback);
    snprintf(k, sizeof k, "%d", s->classes);
    cmd_model_row(out, "R", k, "readout fc", &s->readout);
    fprintf(out, "\n");
    netspec_short(s->neurons, total, sizeof total);
    fprintf(out, "neurons  %12lld  %s\n", (long long)s->neurons, total);
    netspec_short(s->weights, total, sizeof total);
    fprintf(out, "weights  %12lld  %s   (the paper's parameter figure)\n", (long long)s->weights,
            total);
    netspec_short(s->params, total, sizeof total);
    fprintf(out, "params   %12lld  %s   (weights and biases; no BatchNorm)\n", (long long)s->params,
            total);
}

int cmd_model(int argc, char **argv) {
    cmd_model_args a;
    memset(&a, 0, sizeof a);
    char *overrides[argc > 0 ? argc : 1];
    a.overrides = overrides;
    int usage = cmd_model_parse(argc, argv, &a);
    if (usage) return usage;
    if (a.config && cmd_model_config(&a)) return 1;
    netspec net;
    netspec_sizes sizes;
    netspec_error err;
    if (netspec_parse(a.net, &net, &err) || netspec_infer(&net, a.input, a.classes, &sizes, &err)) {
        log_error("%s%smodel.net %s", a.config ? a.config : "", a.config ? ": " : "", err.msg);
        return 1;
    }
    cmd_model_summary(stdout, &net, &sizes);
    return 0;
}
