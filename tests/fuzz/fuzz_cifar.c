/* fuzz_cifar: cifar_parse on arbitrary bytes, as CIFAR-10 and as CIFAR-100,
 * asking for no record, the first two and all of them, must either copy
 * records with labels in range or fail with a message; never crash or read
 * or write out of bounds (the output buffers are exactly as large as the
 * records asked for). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cifar.h"
#include "status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const cifar_kind kinds[2] = {CIFAR_10, CIFAR_100};
    for (int k = 0; k < 2; k++) {
        const long all = (long)(size / cifar_record_size(kinds[k]));
        const long wants[3] = {0, all < 2 ? all : 2, all};
        for (int w = 0; w < 3; w++) {
            const long n = wants[w];
            uint8_t *images = malloc((size_t)n * CIFAR_PIXELS + 1), *labels = malloc((size_t)n + 1);
            if (!images || !labels) abort();
            int rc = cifar_parse("fuzz", data, size, kinds[k], n, images, labels);
            if (rc == 0) {
                if (size == 0 || size % cifar_record_size(kinds[k]) != 0) abort();
                for (long i = 0; i < n; i++)
                    if (labels[i] >= (int)kinds[k]) abort();
                if (n > 0 && images[(size_t)n * CIFAR_PIXELS - 1] !=
                                 data[(size_t)n * cifar_record_size(kinds[k]) - 1])
                    abort();
            } else if (status_message()[0] == '\0' || !strstr(status_message(), "fuzz")) {
                abort();
            }
            status_clear();
            free(images);
            free(labels);
        }
    }
    return 0;
}
