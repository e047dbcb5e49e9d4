/* mlnet_impl: what mlnet.c and mlnet_batch.c (the batch-wide J^T and VJP
 * of model.loop_bn = reference) share; not part of mlnet's interface. */
#ifndef FSNN_MLNET_IMPL_H
#define FSNN_MLNET_IMPL_H

#include "mlnet.h"

/* 1 when the stack runs as a pipeline of several stages. */
int mlnet_piped(const mlnet *net);
/* This stage's layers [*lo, *hi). */
void mlnet_range(const mlnet *net, int *lo, int *hi);
/* 1 on the stage that runs the last layer (or without a pipeline). */
int mlnet_last_stage(const mlnet *net);
/* Floats [count] to or from a neighbouring stage, counted in the traffic. */
int mlnet_send_floats(const mlnet *net, int to, const float *x, long count);
int mlnet_recv_floats(const mlnet *net, int from, float *x, long count);
/* x[r] *= f[r0 + rows[r]] (rows NULL: r) for nrows rows of n values. */
void mlnet_scale_rows(float *x, const float *f, int r0, const int *rows, int nrows, int n);

#endif
