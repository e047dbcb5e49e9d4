/* log: levelled messages, printed by one process only. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>

static log_level log_min = LOG_INFO;
static bool log_printer = true;

void log_set_level(log_level min_level) {
    log_min = min_level;
}

void log_set_printer(bool prints) {
    log_printer = prints;
}

bool log_is_printer(void) {
    return log_printer;
}

void log_msg(log_level level, const char *fmt, ...) {
    static const char *const prefix[] = {"debug: ", "", "warning: ", "error: "};
    if (!log_printer || level < log_min) return;
    FILE *out = level >= LOG_WARN ? stderr : stdout;
    fputs(prefix[level], out);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fputc('\n', out);
    fflush(out);
}
