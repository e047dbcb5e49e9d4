/* netspec: the paper's network notation (`model.net`), its shapes and sizes.
 *
 * Grammar (blanks and tabs allowed between tokens, not inside one):
 *
 *   net      = layer { "-" layer } "(" "F" feedback ")"
 *   layer    = N                 fully connected, N neurons
 *            | CH "C" K [ "s" ]  convolution: CH output channels, K x K kernel
 *                                (K odd, "same" padding K/2), stride 1 or, with
 *                                "s", stride 2: H' = ceil(H/2)
 *            | "P2"              2x2 average pooling, stride 2: H' = floor(H/2)
 *   feedback = N | CH "C" K [ "s" | "u" ]
 *                                "u": transposed convolution, stride 2, padding
 *                                K/2, output padding 1: H' = 2H
 *
 * e.g. "400 (F400)", "64C5s (F64C5)", "96C3s-256C3-384C3s-384C3-256C3 (F96C3u)".
 * The feedback connection maps the last layer's output back onto the first
 * layer's output (SPEC §1, Eq. 10) and must give exactly its shape; the
 * readout is fully connected from the last layer's output to the classes.
 *
 * Counting (the paper's tables, Tables 1-3):
 * - neurons: the input's values + every layer's outputs + the classes
 *   (400 (F400) on 28x28 with 10 classes: 784 + 400 + 10 = 1194, "1.2K").
 *   A pooling layer's outputs count as neurons, as in the paper's figures
 *   for the pooled nets it cites (12C5-P2-64C5-P2 on 28x28: 784 + 9408 +
 *   2352 + 12544 + 3136 + 10 = 28K). One figure of the paper differs:
 *   CIFARNet-F on CIFAR-100 is 232,548 ("233K") here, 232K there, which
 *   is its count without the 100 classes (or that of CIFAR-10).
 * - weights: conv in*out*K*K (transposed conv the same), fully connected
 *   in*out. These alone are what the paper's parameter figures count.
 * - params: weights + biases. Feed-forward layers and the readout have one
 *   bias per output channel or neuron; the feedback connection has none
 *   (SPEC §1: u += W s). With biases 64C5s (F64C5) has 229,514 parameters,
 *   "230K", where the paper prints 229K: its figures are the weights'.
 * - BatchNorm (2 per channel of each feed-forward layer that has it) and the
 *   spectral scale g of the feedback are left out: whether a layer has BN is
 *   the engine's choice, and the paper's figures leave them out too.
 *
 * Pure computation: no allocation, no I/O. Errors fill a netspec_error
 * (position and message) and record no status, so that callers can name
 * their own source (a config file and key, a command line). */
#ifndef FSNN_NETSPEC_H
#define FSNN_NETSPEC_H

#include <stddef.h>
#include <stdint.h>

#define NETSPEC_TEXT_MAX 256      /* the text with its NUL */
#define NETSPEC_LAYERS_MAX 16     /* feed-forward layers */
#define NETSPEC_NEURONS_MAX 65536 /* neurons of a fully connected layer */
#define NETSPEC_CHANNELS_MAX 8192 /* output channels of a convolution */
#define NETSPEC_KERNEL_MAX 15     /* largest (odd) kernel size */
#define NETSPEC_INPUT_MAX 4096    /* largest input channels, height, width */
#define NETSPEC_CLASSES_MAX 65536
#define NETSPEC_MSG_MAX 1280 /* any message whole: the text thrice and a sentence */

typedef enum {
    NETSPEC_FC = 0, /* fully connected */
    NETSPEC_CONV,   /* convolution, stride 1 or 2 */
    NETSPEC_DECONV, /* transposed convolution, upscales 2x (feedback only) */
    NETSPEC_POOL    /* 2x2 average pooling (feed-forward only) */
} netspec_kind;

typedef struct {
    netspec_kind kind;
    int size;   /* FC: neurons; CONV, DECONV: output channels; POOL: 2 */
    int kernel; /* CONV, DECONV: odd kernel size; else 0 */
    int stride; /* 2 for "s", DECONV and POOL; else 1 */
    int pos;    /* 0-based index of the token in the text (after 'F' for the feedback) */
    int len;    /* the token's length in characters */
} netspec_layer;

typedef struct {
    char text[NETSPEC_TEXT_MAX]; /* the parsed text, for messages */
    int n_layers;
    netspec_layer layer[NETSPEC_LAYERS_MAX];
    netspec_layer feedback;
} netspec;

/* A tensor shape per sample. flat: the output of a fully connected layer
 * (c values, h = w = 1), which convolutions and pooling cannot take. */
typedef struct {
    int c, h, w;
    int flat;
} netspec_shape;

typedef struct {
    netspec_shape out;
    int64_t neurons; /* spiking neurons: c*h*w of the output */
    int64_t weights;
    int64_t biases;
} netspec_size;

typedef struct {
    netspec_shape input;
    int classes;
    netspec_size layer[NETSPEC_LAYERS_MAX];
    netspec_size feedback; /* neurons 0: it feeds layer 1's neurons */
    netspec_size readout;  /* neurons = classes */
    int64_t neurons;       /* input values + layers' neurons + classes */
    int64_t weights;       /* layers + feedback + readout */
    int64_t params;        /* weights + biases */
} netspec_sizes;

typedef struct {
    size_t at; /* 0-based index of the character at fault (the text's length: its end) */
    /* "'64C5x (F64C5)': at character 5 ('x'): expected ...", then a line
     * echoing the text and a line with '^' under the character. */
    char msg[NETSPEC_MSG_MAX];
} netspec_error;

/* Parses `text` into *net. On failure returns non-zero and fills *err. */
int netspec_parse(const char *text, netspec *net, netspec_error *err);

/* Shapes and sizes of a parsed net on input c x h x w (1..NETSPEC_INPUT_MAX
 * each) with `classes` classes (1..NETSPEC_CLASSES_MAX). On failure (a
 * convolution after a fully connected layer, pooling of less than 2x2, a
 * feedback that does not give the first layer's shape) returns non-zero
 * and fills *err, pointing at the layer's token. */
int netspec_infer(const netspec *net, netspec_shape input, int classes, netspec_sizes *out,
                  netspec_error *err);

/* 1 and *n = N when the net is "N (FN)": one fully connected layer with a
 * fully connected feedback of the same size; else 0. */
int netspec_single_fc(const netspec *net, int *n);

/* The token of a layer as written, e.g. "64C5s"; the feedback's with its
 * 'F' ("F64C5"). Truncated to size. */
void netspec_token(const netspec *net, const netspec_layer *l, char *buf, size_t size);

/* "64x14x14", or "400" for a flat shape. */
void netspec_shape_format(netspec_shape s, char *buf, size_t size);

/* The paper's short form of a count: exact below 1000; thousands with one
 * decimal below 9,950 ("1.2K"), whole thousands below 999,500 ("13K",
 * "229K"); then millions with one decimal ("3.7M", "11.8M"); from
 * 999,950,000 on billions ("1.2G"). Rounds half up. size >= 16 holds any. */
void netspec_short(int64_t n, char *buf, size_t size);

#endif
