/* test_netspec: the paper's network notation (src/netspec.h).
 *
 * Expected sizes are worked by hand from the formulae of netspec.h (conv
 * weights in*out*K*K, FC in*out, one bias per output channel or neuron of a
 * feed-forward layer and of the readout, none on the feedback) and compared
 * exactly; their short forms are the figures of the paper's Tables 1-3. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "check.h"
#include "netspec.h"

typedef struct {
    int c, h, w, flat;
    int64_t neurons, weights, biases;
} want_size;

static void expect_size(const char *what, int i, const netspec_size *got, const want_size *w) {
    EXPECT(got->out.c == w->c && got->out.h == w->h && got->out.w == w->w &&
               got->out.flat == w->flat,
           "%s %d: shape %dx%dx%d%s, want %dx%dx%d%s", what, i, got->out.c, got->out.h, got->out.w,
           got->out.flat ? " flat" : "", w->c, w->h, w->w, w->flat ? " flat" : "");
    EXPECT(got->neurons == w->neurons, "%s %d: neurons %lld, want %lld", what, i,
           (long long)got->neurons, (long long)w->neurons);
    EXPECT(got->weights == w->weights, "%s %d: weights %lld, want %lld", what, i,
           (long long)got->weights, (long long)w->weights);
    EXPECT(got->biases == w->biases, "%s %d: biases %lld, want %lld", what, i,
           (long long)got->biases, (long long)w->biases);
}

static void expect_short(int64_t n, const char *want) {
    char buf[32];
    netspec_short(n, buf, sizeof buf);
    EXPECT(!strcmp(buf, want), "short(%lld) = %s, want %s", (long long)n, buf, want);
}

typedef struct {
    const char *text;
    netspec_shape input;
    int classes;
    int n_layers;
    want_size layer[NETSPEC_LAYERS_MAX];
    want_size feedback, readout;
    int64_t neurons, weights, params;
    const char *short_neurons, *short_weights, *short_params;
} want_net;

static void expect_net(const want_net *w) {
    netspec net;
    netspec_sizes s;
    netspec_error err;
    int rc = netspec_parse(w->text, &net, &err);
    EXPECT(rc == 0, "parse '%s': %s", w->text, err.msg);
    if (rc) return;
    rc = netspec_infer(&net, w->input, w->classes, &s, &err);
    EXPECT(rc == 0, "infer '%s': %s", w->text, err.msg);
    if (rc) return;
    EXPECT(net.n_layers == w->n_layers, "'%s': %d layers, want %d", w->text, net.n_layers,
           w->n_layers);
    for (int i = 0; i < w->n_layers && i < net.n_layers; i++)
        expect_size(w->text, i + 1, &s.layer[i], &w->layer[i]);
    expect_size(w->text, 0, &s.feedback, &w->feedback);
    expect_size(w->text, -1, &s.readout, &w->readout);
    EXPECT(s.neurons == w->neurons, "'%s': neurons %lld, want %lld", w->text, (long long)s.neurons,
           (long long)w->neurons);
    EXPECT(s.weights == w->weights, "'%s': weights %lld, want %lld", w->text, (long long)s.weights,
           (long long)w->weights);
    EXPECT(s.params == w->params, "'%s': params %lld, want %lld", w->text, (long long)s.params,
           (long long)w->params);
    expect_short(s.neurons, w->short_neurons);
    expect_short(s.weights, w->short_weights);
    expect_short(s.params, w->short_params);
}

static const want_net paper_nets[] = {
    /* MNIST, Table 1: 13K neurons, 229K parameters. */
    {"64C5s (F64C5)",
     {1, 28, 28, 0},
     10,
     1,
     {{64, 14, 14, 0, 12544, 1 * 64 * 25, 64}},
     {64, 14, 14, 0, 0, 64 * 64 * 25, 0},
     {10, 1, 1, 1, 10, 12544 * 10, 10},
     784 + 12544 + 10,
     1600 + 102400 + 125440,
     1600 + 64 + 102400 + 125440 + 10,
     "13K",
     "229K",
     "230K"},
    /* N-MNIST, Table 2: 21K, 291K. */
    {"64C5s (F64C5)",
     {2, 34, 34, 0},
     10,
     1,
     {{64, 17, 17, 0, 18496, 2 * 64 * 25, 64}},
     {64, 17, 17, 0, 0, 102400, 0},
     {10, 1, 1, 1, 10, 184960, 10},
     2312 + 18496 + 10,
     3200 + 102400 + 184960,
     3200 + 64 + 102400 + 184960 + 10,
     "21K",
     "291K",
     "291K"},
    /* Fashion-MNIST, Table 1: 1.2K, 478K. */
    {"400 (F400)",
     {1, 28, 28, 0},
     10,
     1,
     {{400, 1, 1, 1, 400, 784 * 400, 400}},
     {400, 1, 1, 1, 0, 400 * 400, 0},
     {10, 1, 1, 1, 10, 4000, 10},
     1194,
     313600 + 160000 + 4000,
     313600 + 400 + 160000 + 4000 + 10,
     "1.2K",
     "478K",
     "478K"},
    /* CIFAR-10, Table 3: AlexNet-F 159K, 3.7M. */
    {"96C3s-256C3-384C3s-384C3-256C3 (F96C3u)",
     {3, 32, 32, 0},
     10,
     5,
     {{96, 16, 16, 0, 24576, 3 * 96 * 9, 96},
      {256, 16, 16, 0, 65536, 96 * 256 * 9, 256},
      {384, 8, 8, 0, 24576, 256 * 384 * 9, 384},
      {384, 8, 8, 0, 24576, 384 * 384 * 9, 384},
      {256, 8, 8, 0, 16384, 384 * 256 * 9, 256}},
     {96, 16, 16, 0, 0, 256 * 96 * 9, 0},
     {10, 1, 1, 1, 10, 16384 * 10, 10},
     158730,
     3705376,
     3705376 + 96 + 256 + 384 + 384 + 256 + 10,
     "159K",
     "3.7M",
     "3.7M"},
    /* CIFAR-10, Table 3: CIFARNet-F 232K, 11.8M. */
    {"128C3s-256C3-512C3s-1024C3-512C3 (F128C3u)",
     {3, 32, 32, 0},
     10,
     5,
     {{128, 16, 16, 0, 32768, 3 * 128 * 9, 128},
      {256, 16, 16, 0, 65536, 128 * 256 * 9, 256},
      {512, 8, 8, 0, 32768, 256 * 512 * 9, 512},
      {1024, 8, 8, 0, 65536, 512 * 1024 * 9, 1024},
      {512, 8, 8, 0, 32768, 1024 * 512 * 9, 512}},
     {128, 16, 16, 0, 0, 512 * 128 * 9, 0},
     {10, 1, 1, 1, 10, 32768 * 10, 10},
     232458,
     11832704,
     11832704 + 128 + 256 + 512 + 1024 + 512 + 10,
     "232K",
     "11.8M",
     "11.8M"},
    /* CIFAR-100, Table 3: CIFARNet-F 14.8M (the readout grows 10x). The
     * paper prints 232K neurons: its count without the 100 classes. */
    {"128C3s-256C3-512C3s-1024C3-512C3 (F128C3u)",
     {3, 32, 32, 0},
     100,
     5,
     {{128, 16, 16, 0, 32768, 3456, 128},
      {256, 16, 16, 0, 65536, 294912, 256},
      {512, 8, 8, 0, 32768, 1179648, 512},
      {1024, 8, 8, 0, 65536, 4718592, 1024},
      {512, 8, 8, 0, 32768, 4718592, 512}},
     {128, 16, 16, 0, 0, 589824, 0},
     {100, 1, 1, 1, 100, 3276800, 100},
     232548,
     11505024 + 3276800,
     11505024 + 3276800 + 2432 + 100,
     "233K",
     "14.8M",
     "14.8M"},
    /* Pooling: 64x28x28 -> P2 -> 64x14x14, upscaled back by the feedback. */
    {"64C5-P2 (F64C5u)",
     {1, 28, 28, 0},
     10,
     2,
     {{64, 28, 28, 0, 50176, 1600, 64}, {64, 14, 14, 0, 12544, 0, 0}},
     {64, 28, 28, 0, 0, 102400, 0},
     {10, 1, 1, 1, 10, 125440, 10},
     784 + 50176 + 12544 + 10,
     1600 + 102400 + 125440,
     1600 + 64 + 102400 + 125440 + 10,
     "64K",
     "229K",
     "230K"},
    /* A chain of fully connected layers: the feedback maps 400 back to 800. */
    {"800-400 (F800)",
     {1, 28, 28, 0},
     10,
     2,
     {{800, 1, 1, 1, 800, 784 * 800, 800}, {400, 1, 1, 1, 400, 800 * 400, 400}},
     {800, 1, 1, 1, 0, 400 * 800, 0},
     {10, 1, 1, 1, 10, 4000, 10},
     784 + 800 + 400 + 10,
     627200 + 320000 + 320000 + 4000,
     627200 + 800 + 320000 + 400 + 320000 + 4000 + 10,
     "2.0K",
     "1.3M",
     "1.3M"},
};

static void test_paper_nets(void) {
    for (size_t i = 0; i < sizeof paper_nets / sizeof *paper_nets; i++)
        expect_net(&paper_nets[i]);
}

/* Blanks and tabs around tokens change nothing; the tokens are kept. */
static void test_whitespace(void) {
    static const char *same[] = {
        "96C3s-256C3-384C3s-384C3-256C3 (F96C3u)",
        "96C3s-256C3-384C3s-384C3-256C3(F96C3u)",
        "  96C3s - 256C3 -\t384C3s-384C3-256C3 ( F96C3u )  ",
        "96C3s\t-256C3-   384C3s-384C3-256C3\t(\tF96C3u\t)",
    };
    for (size_t i = 0; i < sizeof same / sizeof *same; i++) {
        want_net w = paper_nets[3];
        w.text = same[i];
        expect_net(&w);
        netspec net;
        netspec_error err;
        if (netspec_parse(same[i], &net, &err)) continue;
        char tok[32];
        netspec_token(&net, &net.layer[2], tok, sizeof tok);
        EXPECT(!strcmp(tok, "384C3s"), "'%s': layer 3 token %s", same[i], tok);
        netspec_token(&net, &net.feedback, tok, sizeof tok);
        EXPECT(!strcmp(tok, "F96C3u"), "'%s': feedback token %s", same[i], tok);
    }
}

static void test_kinds(void) {
    netspec net;
    netspec_error err;
    EXPECT(netspec_parse("64C5s-P2-400 (F64C5)", &net, &err) == 0, "%s", err.msg);
    EXPECT(net.n_layers == 3 && net.layer[0].kind == NETSPEC_CONV && net.layer[0].stride == 2 &&
               net.layer[0].kernel == 5 && net.layer[0].size == 64,
           "conv layer");
    EXPECT(net.layer[1].kind == NETSPEC_POOL && net.layer[1].stride == 2, "pool layer");
    EXPECT(net.layer[2].kind == NETSPEC_FC && net.layer[2].size == 400, "fc layer");
    EXPECT(netspec_parse("128C3s (F128C3u)", &net, &err) == 0, "%s", err.msg);
    EXPECT(net.feedback.kind == NETSPEC_DECONV && net.feedback.stride == 2 &&
               net.feedback.kernel == 3 && net.feedback.size == 128,
           "transposed conv feedback");
    int n = 0;
    EXPECT(netspec_parse("400 (F400)", &net, &err) == 0 && netspec_single_fc(&net, &n) && n == 400,
           "400 (F400) is the single FC net: %d", n);
    EXPECT(netspec_parse("800-400 (F800)", &net, &err) == 0 && !netspec_single_fc(&net, &n),
           "800-400 (F800) is not");
    EXPECT(netspec_parse("64C5s (F64C5)", &net, &err) == 0 && !netspec_single_fc(&net, &n),
           "64C5s (F64C5) is not");
    /* The limits themselves are accepted. */
    EXPECT(netspec_parse("65536 (F65536)", &net, &err) == 0, "%s", err.msg);
    EXPECT(netspec_parse("8192C15 (F8192C15u)", &net, &err) == 0, "%s", err.msg);
    char chain[NETSPEC_TEXT_MAX] = "";
    for (int i = 0; i < NETSPEC_LAYERS_MAX; i++)
        strcat(chain, i ? "-8C3" : "8C3");
    strcat(chain, " (F8C3)");
    EXPECT(netspec_parse(chain, &net, &err) == 0 && net.n_layers == NETSPEC_LAYERS_MAX, "%s",
           err.msg);
}

/* Shapes that do not fit: the message names both and points at the token. */
static void test_shape_errors(void) {
    static const struct {
        const char *text;
        netspec_shape input;
        size_t at;
        const char *says;
    } bad[] = {
        {"64C5s-P2-32C3 (F64C3)",
         {1, 28, 28, 0},
         16,
         "feedback F64C3 gives 64x7x7 but layer 1 "
         "outputs 64x14x14"},
        {"64C5s (F64C5s)", {1, 28, 28, 0}, 8, "gives 64x7x7 but layer 1 outputs 64x14x14"},
        {"64C5s (F32C5)", {1, 28, 28, 0}, 8, "gives 32x14x14 but layer 1 outputs 64x14x14"},
        /* 30 -> 15 -> 8, upscaled to 16, not 15. */
        {"96C3s-256C3-384C3s-384C3-256C3 (F96C3u)",
         {3, 30, 30, 0},
         33,
         "gives 96x16x16 but layer 1 outputs 96x15x15"},
        {"400-64C3 (F400)", {1, 28, 28, 0}, 4, "layer 2 (64C3) takes a CxHxW input"},
        {"64C5s-400 (F64C5)", {1, 28, 28, 0}, 12, "the feedback F64C5 takes a CxHxW input"},
        {"64C5s-P2-P2-P2-P2 (F64C5)",
         {1, 28, 28, 0},
         15,
         "layer 5 (P2) needs at least 2x2 but "
         "gets 64x1x1"},
        {"64C5s (F64)", {1, 28, 28, 0}, 8, "feedback F64 gives 64 but layer 1 outputs 64x14x14"},
        /* 13 -> ceil 7 -> P2 floor 3 -> stride 2 ceil 2. */
        {"8C3s-P2 (F8C3s)", {1, 13, 13, 0}, 10, "gives 8x2x2 but layer 1 outputs 8x7x7"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        netspec net;
        netspec_sizes s;
        netspec_error err;
        int rc = netspec_parse(bad[i].text, &net, &err);
        EXPECT(rc == 0, "'%s' parses: %s", bad[i].text, err.msg);
        if (rc) continue;
        EXPECT(netspec_infer(&net, bad[i].input, 10, &s, &err) != 0, "'%s' fits", bad[i].text);
        EXPECT(err.at == bad[i].at, "'%s': at %zu, want %zu: %s", bad[i].text, err.at, bad[i].at,
               err.msg);
        EXPECT(strstr(err.msg, bad[i].says), "'%s': message %s", bad[i].text, err.msg);
    }
    netspec net;
    netspec_sizes s;
    netspec_error err;
    EXPECT(netspec_parse("64C5s (F64C5)", &net, &err) == 0, "%s", err.msg);
    EXPECT(netspec_infer(&net, (netspec_shape){0, 28, 28, 0}, 10, &s, &err) != 0 &&
               strstr(err.msg, "input 0x28x28 is out of range"),
           "input 0x28x28: %s", err.msg);
    EXPECT(netspec_infer(&net, (netspec_shape){1, 28, NETSPEC_INPUT_MAX + 1, 0}, 10, &s, &err) != 0,
           "input too wide");
    EXPECT(netspec_infer(&net, (netspec_shape){1, 28, 28, 0}, 0, &s, &err) != 0 &&
               strstr(err.msg, "0 classes"),
           "0 classes: %s", err.msg);
    EXPECT(netspec_infer(&net, (netspec_shape){1, 28, 28, 0}, NETSPEC_CLASSES_MAX + 1, &s, &err),
           "too many classes");
    /* The largest sizes stay exact in 64 bits. */
    EXPECT(netspec_parse("8192C15 (F8192C15)", &net, &err) == 0, "%s", err.msg);
    netspec_shape big = {NETSPEC_INPUT_MAX, NETSPEC_INPUT_MAX, NETSPEC_INPUT_MAX, 0};
    EXPECT(netspec_infer(&net, big, NETSPEC_CLASSES_MAX, &s, &err) == 0, "%s", err.msg);
    int64_t vol = (int64_t)8192 * 4096 * 4096;
    EXPECT(s.readout.weights == vol * 65536, "readout weights %lld", (long long)s.readout.weights);
    EXPECT(s.neurons == (int64_t)4096 * 4096 * 4096 + vol + 65536, "neurons %lld",
           (long long)s.neurons);
    EXPECT(s.weights == (int64_t)4096 * 8192 * 225 + (int64_t)8192 * 8192 * 225 + vol * 65536,
           "weights %lld", (long long)s.weights);
}

/* Malformed text: the 0-based index of the character at fault, and the
 * message says it 1-based with a caret under it. */
static void test_malformed(void) {
    static const struct {
        const char *text;
        size_t at;
        const char *says;
    } bad[] = {
        {"", 0, "empty"},
        {"   ", 3, "empty"},
        {"64C", 3, "expected the kernel size after 'C'"},
        {"C5", 0, "expected the channel count before 'C'"},
        {"64C5x (F64C5)", 4, "after the kernel size; expected 's', '-', ' ' or '('"},
        {"64C5s (F64C5", 12, "expected ')'"},
        {"64C5s F64C5)", 6, "expected '-' (next layer) or '('"},
        {"64C5s", 5, "the feedback connection is missing"},
        {"64C0 (F64C5)", 3, "the kernel size 0 is out of range (1..15)"},
        {"64C4s (F64C4)", 3, "the kernel size 4 is even"},
        {"64C17 (F64C5)", 3, "the kernel size 17 is out of range"},
        {"0C5 (F64C5)", 0, "the channel count 0 is out of range (1..8192)"},
        {"8193C3 (F8193C3)", 0, "the channel count 8193 is out of range"},
        {"64C5s (G64C5)", 7, "expected 'F'"},
        {"64C5s--32C3 (F64C5)", 6, "expected a layer"},
        {"64C5s- (F64C5)", 7, "expected a layer"},
        {"99999999999C3 (F64C3)", 0, "the channel count 99999999999 is out of range"},
        {"99999999999999999999999999 (F400)", 0, "the layer size 99999999999999999999 is out"},
        {"0 (F0)", 0, "the layer size 0 is out of range (1..65536)"},
        {"65537 (F65537)", 0, "out of range"},
        {"400 (F400) x", 11, "unexpected text after ')'"},
        {"64C5s (F64C5) extra", 14, "unexpected text after ')'"},
        {"64C5s (F64C5))", 13, "unexpected text after ')'"},
        {"64C5s\x01(F64C5)", 5, "control character 0x01"},
        {"64C5s (F64C5)\x7f", 13, "control character 0x7f"},
        {"64C5u (F64C5)", 4, "'u' (transposed convolution"},
        {"64C5s (F64C5uu)", 13, "after 'u'"},
        {"64C5ss (F64C5)", 5, "after 's'"},
        {"64C5s (FP2)", 8, "pooling (P2) cannot be the feedback"},
        {"P2-64C5 (F64C5)", 0, "pooling cannot come first"},
        {"64C5s-P3 (F64C5)", 7, "only P2"},
        {"64C5s-P (F64C5)", 7, "expected the pooling size"},
        {"64C5s ()", 7, "expected 'F'"},
        {"64C5s (F)", 8, "expected the feedback layer after 'F'"},
        {"64C5s (F 64C5)", 8, "expected the feedback layer after 'F'"},
        {"(F400)", 0, "expected a layer"},
        {"400 (F300)", 6, "feedback F300 gives 300 but layer 1 outputs 400"},
        {"400 (F400C3)", 6, "the feedback F400C3 takes a CxHxW input"},
        {"400x (F400)", 3, "after the layer size; expected 'C', '-', ' ' or '('"},
        {"400 (F400x)", 9, "after the feedback size"},
        {"64 C5 (F64C5)", 3, "expected '-' (next layer) or '('"},
        {"64C5s (F64C5\xc3\xa9)", 12, "unexpected character after the kernel size"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        netspec net;
        netspec_error err;
        EXPECT(netspec_parse(bad[i].text, &net, &err) != 0, "'%s' parsed", bad[i].text);
        EXPECT(err.at == bad[i].at, "'%s': at %zu, want %zu: %s", bad[i].text, err.at, bad[i].at,
               err.msg);
        EXPECT(strstr(err.msg, bad[i].says), "'%s': message %s", bad[i].text, err.msg);
        char where[32];
        snprintf(where, sizeof where, "at character %zu ", bad[i].at + 1);
        EXPECT(strstr(err.msg, where), "'%s': message lacks '%s': %s", bad[i].text, where, err.msg);
        /* The last line: four blanks, then one per character before the fault. */
        const char *caret = strrchr(err.msg, '\n');
        size_t len = strlen(bad[i].text);
        size_t col = bad[i].at < len ? bad[i].at : len;
        EXPECT(caret && strlen(caret + 1) == 4 + col + 1 && caret[1 + 4 + col] == '^' &&
                   strspn(caret + 1, " ") == 4 + col,
               "'%s': caret line '%s'", bad[i].text, caret ? caret + 1 : "(none)");
    }
    /* Too many layers: the 17th is pointed at. */
    char chain[NETSPEC_TEXT_MAX] = "";
    for (int i = 0; i <= NETSPEC_LAYERS_MAX; i++)
        strcat(chain, i ? "-8C3" : "8C3");
    strcat(chain, " (F8C3)");
    netspec net;
    netspec_error err;
    EXPECT(netspec_parse(chain, &net, &err) != 0 && err.at == 3 + 4 * NETSPEC_LAYERS_MAX - 3 &&
               strstr(err.msg, "more than 16 layers"),
           "17 layers: at %zu: %s", err.at, err.msg);
    /* Longer than the text limit. */
    char longer[NETSPEC_TEXT_MAX + 10];
    memset(longer, '1', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    EXPECT(netspec_parse(longer, &net, &err) != 0 && err.at == NETSPEC_TEXT_MAX - 1 &&
               strstr(err.msg, "longer than 255 characters"),
           "long text: at %zu: %s", err.at, err.msg);
    /* What a terminal would not show is echoed as '?'. */
    EXPECT(netspec_parse("64C5s\x01(F64C5)", &net, &err) != 0 &&
               strstr(err.msg, "'64C5s?(F64C5)'") && strstr(err.msg, "(byte 0x01)"),
           "control character shown: %s", err.msg);
    EXPECT(netspec_parse("64C5s\t(F64C5\t)x", &net, &err) != 0 && err.at == 14 &&
               strstr(err.msg, "'64C5s (F64C5 )x'") && strstr(err.msg, "\n    64C5s (F64C5 )x\n"),
           "tabs shown as blanks: %s", err.msg);
    EXPECT(netspec_parse("400 (F400", &net, &err) != 0 && strstr(err.msg, "(end of text)"),
           "end shown: %s", err.msg);
}

static void test_short(void) {
    static const struct {
        int64_t n;
        const char *want;
    } cases[] = {
        {0, "0"},
        {999, "999"},
        {1000, "1.0K"},
        {1194, "1.2K"},
        {1149, "1.1K"},
        {1150, "1.2K"},
        {9949, "9.9K"},
        {9950, "10K"},
        {13338, "13K"},
        {229440, "229K"},
        {229499, "229K"},
        {229500, "230K"},
        {999499, "999K"},
        {999500, "1.0M"},
        {3705376, "3.7M"},
        {11832704, "11.8M"},
        {14781824, "14.8M"},
        {999949999, "999.9M"},
        {999950000, "1.0G"},
        {INT64_MAX, "9223372036.9G"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        expect_short(cases[i].n, cases[i].want);
    char small[4];
    netspec_short(229440, small, sizeof small);
    EXPECT(!strcmp(small, "229"), "truncated to the buffer: %s", small);
}

int main(void) {
    test_paper_nets();
    test_whitespace();
    test_kinds();
    test_shape_errors();
    test_malformed();
    test_short();
    return check_finish("netspec");
}
