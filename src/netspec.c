/* netspec: the paper's network notation, shapes and sizes (netspec.h). */
#include "netspec.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "status.h" // defines: FSNN_OK, FSNN_ERR

/* Writes err: the text quoted, the 1-based position and what is found
 * there, `what`, then the text again with a caret under position `at`.
 * A tab is shown as a blank and other bytes that a terminal would not show
 * as '?', one column each, so that the caret stays under its character. */
static int netspec_fail(netspec_error *err, const char *text, size_t at, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int netspec_fail(netspec_error *err, const char *text, size_t at, const char *fmt, ...) {
    char shown[NETSPEC_TEXT_MAX], found[24], what[320];
    size_t len = strnlen(text, NETSPEC_TEXT_MAX - 1);
    for (size_t i = 0; i < len; i++)
        shown[i] = text[i] == '\t' ? ' ' : isprint((unsigned char)text[i]) ? text[i] : '?';
    shown[len] = '\0';
    unsigned char c = at < len ? (unsigned char)text[at] : 0;
    if (at >= len)
        snprintf(found, sizeof found, "end of text");
    else if (isprint(c))
        snprintf(found, sizeof found, "'%c'", c);
    else
        snprintf(found, sizeof found, "byte 0x%02x", c);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    err->at = at;
    size_t caret = at < len ? at : len;
    snprintf(err->msg, sizeof err->msg, "'%s': at character %zu (%s): %s\n    %s\n    %*s^", shown,
             at + 1, found, what, shown, (int)caret, "");
    return FSNN_ERR;
}

static size_t netspec_blanks(const char *s, size_t i) {
    while (s[i] == ' ' || s[i] == '\t')
        i++;
    return i;
}

/* Reads the decimal number at s[*i]; *v is capped just above max so that no
 * length of digits overflows. 0 if there are no digits. */
static int netspec_number(const char *s, size_t *i, long *v, long max) {
    if (!isdigit((unsigned char)s[*i])) return 0;
    *v = 0;
    while (isdigit((unsigned char)s[*i])) {
        if (*v <= max) *v = *v * 10 + (s[*i] - '0');
        (*i)++;
    }
    return 1;
}

/* Checks a number read from s[from..to) against 1..max. */
static int netspec_bound(const char *s, size_t from, size_t to, long v, long max, const char *name,
                         netspec_error *err) {
    if (v >= 1 && v <= max) return FSNN_OK;
    return netspec_fail(err, s, from, "the %s %.*s is out of range (1..%ld)", name,
                        (int)(to - from > 20 ? 20 : to - from), s + from, max);
}

/* Parses one layer at s[*i]: a feed-forward layer (ff) or the feedback
 * after its 'F'. The character after it must end the token. */
static int netspec_layer_parse(const char *s, size_t *i, int ff, netspec_layer *l,
                               netspec_error *err) {
    size_t start = *i, at = *i;
    long v = 0, k = 0;
    memset(l, 0, sizeof *l);
    l->pos = (int)start;
    l->stride = 1;
    const char *after = NULL; /* what the token's end was expected after */
    if (s[at] == 'P') {
        if (!ff) return netspec_fail(err, s, at, "pooling (P2) cannot be the feedback connection");
        at++;
        size_t from = at;
        if (!netspec_number(s, &at, &v, 2))
            return netspec_fail(err, s, at, "expected the pooling size after 'P' (only P2)");
        if (v != 2)
            return netspec_fail(err, s, from, "only P2 (2x2 average pooling, stride 2) exists");
        l->kind = NETSPEC_POOL;
        l->size = 2;
        l->stride = 2;
        after = "'P2'";
    } else if (isdigit((unsigned char)s[at])) {
        size_t from = at;
        netspec_number(s, &at, &v, NETSPEC_NEURONS_MAX);
        if (s[at] != 'C') {
            if (netspec_bound(s, from, at, v, NETSPEC_NEURONS_MAX,
                              ff ? "layer size" : "feedback size", err))
                return FSNN_ERR;
            l->kind = NETSPEC_FC;
            l->size = (int)v;
            after = ff ? "the layer size; expected 'C', '-', ' ' or '('"
                       : "the feedback size; expected 'C', ' ' or ')'";
        } else {
            if (netspec_bound(s, from, at, v, NETSPEC_CHANNELS_MAX, "channel count", err))
                return FSNN_ERR;
            size_t kfrom = ++at;
            if (!netspec_number(s, &at, &k, NETSPEC_KERNEL_MAX))
                return netspec_fail(err, s, at, "expected the kernel size after 'C'");
            if (netspec_bound(s, kfrom, at, k, NETSPEC_KERNEL_MAX, "kernel size", err))
                return FSNN_ERR;
            if (k % 2 == 0)
                return netspec_fail(err, s, kfrom,
                                    "the kernel size %ld is even; it must be odd (padding K/2 "
                                    "keeps the size)",
                                    k);
            l->kind = NETSPEC_CONV;
            l->size = (int)v;
            l->kernel = (int)k;
            after = ff ? "the kernel size; expected 's', '-', ' ' or '('"
                       : "the kernel size; expected 's', 'u', ' ' or ')'";
            if (s[at] == 's') {
                l->stride = 2;
                at++;
                after = ff ? "'s'; expected '-', ' ' or '('" : "'s'; expected ' ' or ')'";
            } else if (s[at] == 'u' && ff) {
                return netspec_fail(err, s, at,
                                    "'u' (transposed convolution, 2x upscaling) belongs to the "
                                    "feedback connection only, e.g. '(F96C3u)'");
            } else if (s[at] == 'u') {
                l->kind = NETSPEC_DECONV;
                l->stride = 2;
                at++;
                after = "'u'; expected ' ' or ')'";
            }
        }
    } else if (s[at] == 'C') {
        return netspec_fail(err, s, at, "expected the channel count before 'C' (e.g. 64C5)");
    } else {
        return netspec_fail(err, s, at,
                            ff ? "expected a layer: N (fully connected), <channels>C<kernel>[s] "
                                 "or P2"
                               : "expected the feedback layer after 'F': N or "
                                 "<channels>C<kernel>[s|u]");
    }
    char c = s[at];
    int ends = c == ' ' || c == '\t' || c == '\0' || (ff ? c == '-' || c == '(' : c == ')');
    if (!ends) return netspec_fail(err, s, at, "unexpected character after %s", after);
    l->len = (int)(at - start);
    *i = at;
    return FSNN_OK;
}

/* The checks that do not depend on the input shape. A net of fully connected
 * layers has the same shapes on any input, so its feedback is checked here
 * on a probe input. */
static int netspec_check(const netspec *net, netspec_error *err) {
    if (net->layer[0].kind == NETSPEC_POOL)
        return netspec_fail(err, net->text, (size_t)net->layer[0].pos,
                            "the first layer must have neurons (the feedback connection ends "
                            "there); pooling cannot come first");
    for (int i = 0; i < net->n_layers; i++)
        if (net->layer[i].kind != NETSPEC_FC) return FSNN_OK;
    netspec_sizes sizes;
    netspec_shape probe = {1, 1, 1, 0};
    return netspec_infer(net, probe, 1, &sizes, err);
}

int netspec_parse(const char *text, netspec *net, netspec_error *err) {
    memset(net, 0, sizeof *net);
    memset(err, 0, sizeof *err);
    size_t len = strnlen(text, NETSPEC_TEXT_MAX);
    if (len == NETSPEC_TEXT_MAX)
        return netspec_fail(err, text, NETSPEC_TEXT_MAX - 1,
                            "the text is longer than %d characters", NETSPEC_TEXT_MAX - 1);
    memcpy(net->text, text, len);
    const char *s = net->text;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return netspec_fail(err, s, i, "control character 0x%02x", c);
    }
    size_t i = netspec_blanks(s, 0);
    if (s[i] == '\0')
        return netspec_fail(err, s, i,
                            "the net is empty; expected e.g. '400 (F400)' or '64C5s "
                            "(F64C5)'");
    for (;;) {
        if (net->n_layers == NETSPEC_LAYERS_MAX)
            return netspec_fail(err, s, i, "more than %d layers before the feedback",
                                NETSPEC_LAYERS_MAX);
        if (netspec_layer_parse(s, &i, 1, &net->layer[net->n_layers], err)) return FSNN_ERR;
        net->n_layers++;
        i = netspec_blanks(s, i);
        if (s[i] == '(') break;
        if (s[i] != '-')
            return netspec_fail(err, s, i,
                                s[i] ? "expected '-' (next layer) or '(' (the feedback "
                                       "connection, e.g. '(F400)')"
                                     : "the feedback connection is missing; expected '-' or "
                                       "'(' as in '400 (F400)'");
        i = netspec_blanks(s, i + 1);
    }
    i = netspec_blanks(s, i + 1);
    if (s[i] != 'F') return netspec_fail(err, s, i, "expected 'F' (feedback) after '('");
    i++;
    if (netspec_layer_parse(s, &i, 0, &net->feedback, err)) return FSNN_ERR;
    i = netspec_blanks(s, i);
    if (s[i] != ')') return netspec_fail(err, s, i, "expected ')' after the feedback connection");
    i = netspec_blanks(s, i + 1);
    if (s[i] != '\0') return netspec_fail(err, s, i, "unexpected text after ')'");
    return netspec_check(net, err);
}

static int64_t netspec_volume(netspec_shape s) {
    return (int64_t)s.c * s.h * s.w;
}

/* The output of layer l on input `in` with its weights and biases;
 * `index` names the layer in messages (0: the feedback). */
static int netspec_apply(const netspec *net, const netspec_layer *l, int index, netspec_shape in,
                         netspec_size *out, netspec_error *err) {
    char tok[48], shape[48], who[80];
    netspec_token(net, l, tok, sizeof tok);
    netspec_shape_format(in, shape, sizeof shape);
    if (index)
        snprintf(who, sizeof who, "layer %d (%s)", index, tok);
    else
        snprintf(who, sizeof who, "the feedback %s", tok);
    memset(out, 0, sizeof *out);
    if (l->kind != NETSPEC_FC && in.flat)
        return netspec_fail(err, net->text, (size_t)l->pos,
                            "%s takes a CxHxW input but gets the %s values of a fully "
                            "connected layer",
                            who, shape);
    switch (l->kind) {
    case NETSPEC_FC:
        out->out = (netspec_shape){l->size, 1, 1, 1};
        out->weights = netspec_volume(in) * l->size;
        out->biases = l->size;
        break;
    case NETSPEC_CONV:
        out->out = (netspec_shape){l->size, in.h, in.w, 0};
        if (l->stride == 2) out->out.h = (in.h + 1) / 2, out->out.w = (in.w + 1) / 2;
        out->weights = (int64_t)in.c * l->size * l->kernel * l->kernel;
        out->biases = l->size;
        break;
    case NETSPEC_DECONV:
        out->out = (netspec_shape){l->size, 2 * in.h, 2 * in.w, 0};
        out->weights = (int64_t)in.c * l->size * l->kernel * l->kernel;
        break;
    case NETSPEC_POOL:
        if (in.h < 2 || in.w < 2)
            return netspec_fail(err, net->text, (size_t)l->pos, "%s needs at least 2x2 but gets %s",
                                who, shape);
        out->out = (netspec_shape){in.c, in.h / 2, in.w / 2, 0};
        break;
    }
    out->neurons = netspec_volume(out->out);
    if (!index) out->biases = out->neurons = 0;
    return FSNN_OK;
}

int netspec_infer(const netspec *net, netspec_shape input, int classes, netspec_sizes *out,
                  netspec_error *err) {
    memset(out, 0, sizeof *out);
    memset(err, 0, sizeof *err);
    if (net->n_layers < 1 || net->n_layers > NETSPEC_LAYERS_MAX)
        return netspec_fail(err, net->text, 0, "not a parsed net (%d layers)", net->n_layers);
    if (input.c < 1 || input.h < 1 || input.w < 1 || input.c > NETSPEC_INPUT_MAX ||
        input.h > NETSPEC_INPUT_MAX || input.w > NETSPEC_INPUT_MAX)
        return netspec_fail(err, net->text, 0, "the input %dx%dx%d is out of range (1..%d each)",
                            input.c, input.h, input.w, NETSPEC_INPUT_MAX);
    if (classes < 1 || classes > NETSPEC_CLASSES_MAX)
        return netspec_fail(err, net->text, 0, "%d classes is out of range (1..%d)", classes,
                            NETSPEC_CLASSES_MAX);
    input.flat = 0;
    out->input = input;
    out->classes = classes;
    netspec_shape cur = input;
    for (int i = 0; i < net->n_layers; i++) {
        if (netspec_apply(net, &net->layer[i], i + 1, cur, &out->layer[i], err)) return FSNN_ERR;
        cur = out->layer[i].out;
    }
    if (netspec_apply(net, &net->feedback, 0, cur, &out->feedback, err)) return FSNN_ERR;
    netspec_shape got = out->feedback.out, want = out->layer[0].out;
    if (got.c != want.c || got.h != want.h || got.w != want.w || got.flat != want.flat) {
        char tok[48], g[48], w[48];
        netspec_token(net, &net->feedback, tok, sizeof tok);
        netspec_shape_format(got, g, sizeof g);
        netspec_shape_format(want, w, sizeof w);
        return netspec_fail(err, net->text, (size_t)net->feedback.pos,
                            "feedback %s gives %s but layer 1 outputs %s", tok, g, w);
    }
    out->readout.out = (netspec_shape){classes, 1, 1, 1};
    out->readout.neurons = classes;
    out->readout.weights = netspec_volume(cur) * classes;
    out->readout.biases = classes;
    const netspec_size *all[NETSPEC_LAYERS_MAX + 2];
    int n = 0;
    for (int i = 0; i < net->n_layers; i++)
        all[n++] = &out->layer[i];
    all[n++] = &out->feedback;
    all[n++] = &out->readout;
    out->neurons = netspec_volume(input);
    for (int i = 0; i < n; i++) {
        out->neurons += all[i]->neurons;
        out->weights += all[i]->weights;
        out->params += all[i]->weights + all[i]->biases;
    }
    return FSNN_OK;
}

int netspec_single_fc(const netspec *net, int *n) {
    const netspec_layer *l = &net->layer[0], *f = &net->feedback;
    if (net->n_layers != 1 || l->kind != NETSPEC_FC || f->kind != NETSPEC_FC || f->size != l->size)
        return 0;
    *n = l->size;
    return 1;
}

void netspec_token(const netspec *net, const netspec_layer *l, char *buf, size_t size) {
    snprintf(buf, size, "%s%.*s", l == &net->feedback ? "F" : "", l->len, net->text + l->pos);
}

void netspec_shape_format(netspec_shape s, char *buf, size_t size) {
    if (s.flat)
        snprintf(buf, size, "%d", s.c);
    else
        snprintf(buf, size, "%dx%dx%d", s.c, s.h, s.w);
}

/* n / d rounded half up, for n >= 0: no intermediate sum that could overflow. */
static long long netspec_round(int64_t n, int64_t d) {
    return (long long)(n / d + (n % d >= d / 2));
}

void netspec_short(int64_t n, char *buf, size_t size) {
    long long t;
    if (n < 1000) {
        snprintf(buf, size, "%lld", (long long)n);
    } else if (n < 9950) {
        t = netspec_round(n, 100);
        snprintf(buf, size, "%lld.%lldK", t / 10, t % 10);
    } else if (n < 999500) {
        snprintf(buf, size, "%lldK", netspec_round(n, 1000));
    } else if (n < 999950000) {
        t = netspec_round(n, 100000);
        snprintf(buf, size, "%lld.%lldM", t / 10, t % 10);
    } else {
        t = netspec_round(n, 100000000);
        snprintf(buf, size, "%lld.%lldG", t / 10, t % 10);
    }
}
