/* fuzz_nmnist: nmnist_parse on arbitrary bytes must either accept them with
 * the right event count or fail with a message naming the input; accepted
 * or not, binning the whole records (fixed window with stabilisation, and
 * the sample's own span) must stay inside the frames and give only 0 and 1. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nmnist.h"
#include "status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_T 3

static void fuzz_bin(const uint8_t *data, long n, const nmnist_binning *b) {
    float *frames = malloc(sizeof(float) * FUZZ_T * NMNIST_FRAME);
    if (!frames || nmnist_frames(data, n, b, frames) != 0) abort();
    for (long i = 0; i < (long)FUZZ_T * NMNIST_FRAME; i++)
        if (frames[i] != 0.0f && frames[i] != 1.0f) abort();
    free(frames);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    long n = -1;
    int rc = nmnist_parse("fuzz", data, size, &n);
    if (rc == 0) {
        if (n != (long)(size / NMNIST_EVENT_BYTES) || size % NMNIST_EVENT_BYTES != 0) abort();
    } else if (!strstr(status_message(), "fuzz")) {
        abort();
    }
    status_clear();
    /* Unchecked records too: the binning must not trust them. */
    const long all = (long)(size / NMNIST_EVENT_BYTES);
    const nmnist_binning fixed = {FUZZ_T, 1000, 1}, span = {FUZZ_T, 0, 0};
    fuzz_bin(data, all, &fixed);
    fuzz_bin(data, all, &span);
    return 0;
}
