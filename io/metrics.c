/* metrics: CSV rows from trainer_epoch. */
#include "metrics.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "status.h"

static const char metrics_cols[] =
    "epoch,lr,train_loss,train_acc,test_loss,test_acc,fwd_residual,fwd_residual_max,"
    "test_fwd_residual,adj_iters,adj_residual,firing_rate,spectral_norm,train_samples_per_s,"
    "test_samples_per_s,peak_rss_mb,seconds,t_input,t_sim,t_adj,t_grad,gemm_gflops,dense_steps,event_steps";

const char *metrics_header(void) {
    return metrics_cols;
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
    fprintf(f, "%s\n", metrics_cols);
    return metrics_close(f, path);
}

int metrics_append(const char *path, const trainer_epoch *r) {
    FILE *f = fopen(path, "a");
    if (!f) return FAIL("%s: cannot open for appending: %s", path, strerror(errno));
    fprintf(f,
            "%d,%.6g,%.6f,%.4f,%.6f,%.4f,%.6g,%.6g,%.6g,%.3f,%.6g,%.6g,%.6f,%.1f,%.1f,%.1f,%.3f,"
            "%.3f,%.3f,%.3f,%.3f,%.2f,%ld,%ld\n",
            r->epoch, r->lr, r->train_loss, r->train_acc, r->test_loss, r->test_acc,
            r->fwd_residual, r->fwd_residual_max, r->test_fwd_residual, r->adj_iters,
            r->adj_residual, r->firing_rate, r->spectral_norm, r->train_samples_per_s,
            r->test_samples_per_s, r->peak_rss_mb, r->seconds, r->t_input, r->t_sim, r->t_adj,
            r->t_grad, r->gemm_gflops, r->dense_steps, r->event_steps);
    return metrics_close(f, path);
}
