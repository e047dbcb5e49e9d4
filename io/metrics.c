/* metrics: CSV rows and numeric rows from one column table. */
#include "metrics.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "status.h"

typedef enum { METRICS_INT, METRICS_LONG, METRICS_DOUBLE } metrics_type;

typedef struct {
    const char *name;
    metrics_type type;
    size_t offset;
    const char *format; /* for METRICS_DOUBLE */
} metrics_col;

#define METRICS_D(name, fmt)                                                                       \
    { #name, METRICS_DOUBLE, offsetof(trainer_epoch, name), fmt }
#define METRICS_L(name)                                                                            \
    { #name, METRICS_LONG, offsetof(trainer_epoch, name), NULL }

static const metrics_col metrics_cols[METRICS_N_COLS] = {
    {"epoch", METRICS_INT, offsetof(trainer_epoch, epoch), NULL},
    METRICS_D(lr, "%.6g"),
    METRICS_D(train_loss, "%.6f"),
    METRICS_D(train_acc, "%.4f"),
    METRICS_D(test_loss, "%.6f"),
    METRICS_D(test_acc, "%.4f"),
    METRICS_D(fwd_residual, "%.6g"),
    METRICS_D(fwd_residual_max, "%.6g"),
    METRICS_D(test_fwd_residual, "%.6g"),
    METRICS_D(adj_iters, "%.3f"),
    METRICS_D(adj_residual, "%.6g"),
    METRICS_D(firing_rate, "%.6g"),
    METRICS_D(spectral_norm, "%.6f"),
    METRICS_D(spectral_norm_exact, "%.6f"),
    METRICS_D(train_samples_per_s, "%.1f"),
    METRICS_D(test_samples_per_s, "%.1f"),
    METRICS_D(peak_rss_mb, "%.1f"),
    METRICS_D(seconds, "%.3f"),
    METRICS_D(t_input, "%.3f"),
    METRICS_D(t_sim, "%.3f"),
    METRICS_D(t_adj, "%.3f"),
    METRICS_D(t_grad, "%.3f"),
    METRICS_D(t_comm, "%.3f"),
    METRICS_D(gemm_gflops, "%.2f"),
    METRICS_L(dense_steps),
    METRICS_L(event_steps),
    METRICS_L(bad_steps),
    METRICS_L(restarts),
};

const char *metrics_header(void) {
    static char header[1024];
    if (!header[0]) {
        size_t used = 0;
        for (int c = 0; c < METRICS_N_COLS; c++)
            used += (size_t)snprintf(header + used, sizeof header - used, "%s%s", c ? "," : "",
                                     metrics_cols[c].name);
    }
    return header;
}

int metrics_column(const char *name) {
    for (int c = 0; c < METRICS_N_COLS; c++)
        if (!strcmp(metrics_cols[c].name, name)) return c;
    return -1;
}

void metrics_pack(const trainer_epoch *row, double *v) {
    const char *base = (const char *)row;
    for (int c = 0; c < METRICS_N_COLS; c++) {
        const metrics_col *col = &metrics_cols[c];
        if (col->type == METRICS_INT) {
            v[c] = *(const int *)(base + col->offset);
        } else if (col->type == METRICS_LONG) {
            v[c] = (double)*(const long *)(base + col->offset);
        } else {
            v[c] = *(const double *)(base + col->offset);
        }
    }
}

void metrics_unpack(const double *v, trainer_epoch *row) {
    char *base = (char *)row;
    memset(row, 0, sizeof *row);
    for (int c = 0; c < METRICS_N_COLS; c++) {
        const metrics_col *col = &metrics_cols[c];
        if (col->type == METRICS_INT)
            *(int *)(base + col->offset) = (int)v[c];
        else if (col->type == METRICS_LONG)
            *(long *)(base + col->offset) = (long)v[c];
        else
            *(double *)(base + col->offset) = v[c];
    }
}

static int metrics_close(FILE *f, const char *path) {
    int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad) return FAIL("%s: cannot write: %s", path, strerror(errno));
    return FSNN_OK;
}

int metrics_create(const char *path) {
    FILE *f = fopen(path, "w");
    if (!f) return FAIL("%s: cannot create: %s", path, strerror(errno));
    fprintf(f, "%s\n", metrics_header());
    return metrics_close(f, path);
}

int metrics_append(const char *path, const trainer_epoch *r) {
    FILE *f = fopen(path, "a");
    if (!f) return FAIL("%s: cannot open for appending: %s", path, strerror(errno));
    const char *base = (const char *)r;
    for (int c = 0; c < METRICS_N_COLS; c++) {
        const metrics_col *col = &metrics_cols[c];
        if (c) fputc(',', f);
        if (col->type == METRICS_INT)
            fprintf(f, "%d", *(const int *)(base + col->offset));
        else if (col->type == METRICS_LONG)
            fprintf(f, "%ld", *(const long *)(base + col->offset));
        else
            fprintf(f, col->format, *(const double *)(base + col->offset));
    }
    fputc('\n', f);
    return metrics_close(f, path);
}
