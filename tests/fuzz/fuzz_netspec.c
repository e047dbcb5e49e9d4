/* fuzz_netspec: any text through netspec_parse, and a parsed net through
 * netspec_infer on an input taken from the text's first bytes, must give
 * either a message pointing inside the text (with its caret) or sizes that
 * add up. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "netspec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A message must say where, 1-based, and end with the caret line. */
static void fuzz_check_error(const netspec_error *err, size_t len) {
    char where[48];
    snprintf(where, sizeof where, "at character %zu ", err->at + 1);
    const char *caret = strrchr(err->msg, '\n');
    if (err->at > len || !strstr(err->msg, where) || !caret || caret[strlen(caret) - 1] != '^')
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    size_t len = strlen(text);
    netspec net;
    netspec_error err;
    if (netspec_parse(text, &net, &err)) {
        fuzz_check_error(&err, len);
        free(text);
        return 0;
    }
    if (net.n_layers < 1 || net.n_layers > NETSPEC_LAYERS_MAX) abort();
    netspec_shape in = {1 + (size > 0 ? data[0] % 4 : 0), 1 + (size > 1 ? data[1] : 27),
                        1 + (size > 2 ? data[2] : 27), 0};
    netspec_sizes s;
    if (netspec_infer(&net, in, 10, &s, &err)) {
        fuzz_check_error(&err, len);
    } else {
        int64_t neurons = (int64_t)in.c * in.h * in.w + s.readout.neurons, weights = 0, params = 0;
        for (int i = 0; i < net.n_layers; i++) {
            neurons += s.layer[i].neurons;
            weights += s.layer[i].weights;
            params += s.layer[i].weights + s.layer[i].biases;
        }
        weights += s.feedback.weights + s.readout.weights;
        params += s.feedback.weights + s.readout.weights + s.readout.biases;
        if (neurons != s.neurons || weights != s.weights || params != s.params || s.weights < 0)
            abort();
    }
    char buf[32];
    netspec_short(s.params, buf, sizeof buf);
    free(text);
    return 0;
}
