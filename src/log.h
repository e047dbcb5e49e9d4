/* log: the one way fsnn talks to people. Human text goes to stderr/stdout;
 * machine-readable outputs (CSV, HDF5) are written elsewhere. Only the rank
 * that main() marks as the printer prints (log_set_printer). */
#ifndef FSNN_LOG_H
#define FSNN_LOG_H

#include <stdbool.h>

typedef enum { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3 } log_level;

void log_set_level(log_level min_level);
void log_set_printer(bool prints);
bool log_is_printer(void);

void log_msg(log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
