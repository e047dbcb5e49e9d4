/* status: how fsnn reports failure.
 *
 * Every function that can fail returns int: 0 on success, non-zero on failure.
 * The first failure records a human message with FAIL(); CHECK() propagates a
 * failure upward and appends file:line to a short trace. Only main() decides
 * to exit. The state is per thread, like errno.
 */
#ifndef FSNN_STATUS_H
#define FSNN_STATUS_H

#include <stddef.h>

#define FSNN_OK 0
#define FSNN_ERR 1

/* Records a formatted message (if none is recorded yet) with the place it came
 * from; returns FSNN_ERR so a caller can write `return FAIL("...")`. */
int status_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Appends "file:line" to the trace of the current failure. */
void status_trace(const char *file, int line);

/* The message of the first recorded failure ("" when none). */
const char *status_message(void);

/* The file:line trace of the current failure, innermost first. */
const char *status_where(void);

/* Forgets the current failure (used by code that recovers, e.g. a fallback). */
void status_clear(void);

#define FAIL(...) status_fail(__FILE__, __LINE__, __VA_ARGS__)

#define CHECK(call)                                                                                \
    do {                                                                                           \
        int check_rc_ = (call);                                                                    \
        if (check_rc_ != 0) {                                                                      \
            status_trace(__FILE__, __LINE__);                                                      \
            return check_rc_;                                                                      \
        }                                                                                          \
    } while (0)

/* Allocation that fails with a message instead of returning NULL silently.
 * Usage: CHECK(XCALLOC(&p, n)); the memory is zeroed. */
int status_calloc(void *pptr, size_t count, size_t size, const char *file, int line);
#define XCALLOC(pptr, count) status_calloc((pptr), (count), sizeof **(pptr), __FILE__, __LINE__)

#endif
