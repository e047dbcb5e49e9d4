/* status: per-thread record of the first failure and its trace. */
#include "status.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Thread_local char status_msg[1024];
static _Thread_local char status_trail[512];
static _Thread_local int status_set;

int status_fail(const char *file, int line, const char *fmt, ...) {
    if (!status_set) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(status_msg, sizeof status_msg, fmt, ap);
        va_end(ap);
        snprintf(status_trail, sizeof status_trail, "%s:%d", file, line);
        status_set = 1;
    }
    return FSNN_ERR;
}

void status_trace(const char *file, int line) {
    size_t used = strlen(status_trail);
    if (used + 4 < sizeof status_trail)
        snprintf(status_trail + used, sizeof status_trail - used, " <- %s:%d", file, line);
}

const char *status_message(void) {
    return status_msg;
}

const char *status_where(void) {
    return status_trail;
}

void status_clear(void) {
    status_msg[0] = '\0';
    status_trail[0] = '\0';
    status_set = 0;
}

int status_calloc(void *pptr, size_t count, size_t size, const char *file, int line) {
    void **out = (void **)pptr;
    *out = NULL;
    if (count == 0) count = 1;
    if (size != 0 && count > SIZE_MAX / size)
        return status_fail(file, line, "allocation of %zu x %zu bytes overflows", count, size);
    *out = calloc(count, size);
    if (!*out) return status_fail(file, line, "out of memory allocating %zu bytes", count * size);
    return FSNN_OK;
}
