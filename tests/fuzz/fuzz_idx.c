/* fuzz_idx: idx_parse on arbitrary bytes must either succeed with a
 * consistent array or fail with a message, never crash, read out of bounds
 * or allocate beyond its limit. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "idx.h"
#include "status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    /* Both reader shapes fsnn uses, whole and limited to 2 items. */
    static const int ndims[2] = {1, 3};
    for (int i = 0; i < 4; i++) {
        idx_array a;
        int rc =
            idx_parse("fuzz", data, size, ndims[i % 2], (size_t)1 << 20, (size_t)(i / 2) * 2, &a);
        if (rc == 0) {
            size_t count = 1;
            for (int d = 0; d < a.ndim; d++)
                count *= a.dims[d];
            if (count != a.count || !a.data || a.dims[0] > a.file_items) abort();
            volatile uint8_t sink = a.data[a.count - 1];
            (void)sink;
        } else if (status_message()[0] == '\0') {
            abort();
        }
        idx_free(&a);
        status_clear();
    }
    return 0;
}
