/* fuzz_config: INI text through config_load_string and config_resolve must
 * either fail with a message or give a configuration that config_write
 * writes and config_load reads back to the same text. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *fuzz_write(const fsnn_cfg *cfg) {
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&text, &len);
    if (!mem || config_write(cfg, mem) != 0) abort();
    fclose(mem);
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return 0;
    memcpy(text, data, size);
    text[size] = '\0';
    fsnn_cfg cfg;
    config_defaults(&cfg);
    int rc = config_load_string("fuzz", text, &cfg);
    if (rc == 0) rc = config_resolve("fuzz", &cfg);
    if (rc != 0 && status_message()[0] == '\0') abort();
    status_clear();
    if (rc == 0) {
        char *first = fuzz_write(&cfg);
        fsnn_cfg again;
        config_defaults(&again);
        if (config_load_string("written", first, &again) != 0 ||
            config_resolve("written", &again) != 0) {
            fprintf(stderr, "written text does not load: %s\n%s", status_message(), first);
            abort();
        }
        char *second = fuzz_write(&again);
        if (strcmp(first, second) != 0) abort();
        free(first);
        free(second);
    }
    free(text);
    return 0;
}
