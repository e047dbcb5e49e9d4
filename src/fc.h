/* fc: fully-connected layer with bias, y = x W^T + b.
 * Shapes: x [B x in], W [out x in] row-major, b [out], y [B x out]. */
#ifndef FSNN_FC_H
#define FSNN_FC_H

void fc_forward(const float *x, const float *W, const float *b, float *y, int B, int in, int out);

/* Accumulates dW += dy^T x and db += sum_b dy; writes dx = dy W when dx is
 * not NULL. */
void fc_vjp(const float *x, const float *W, const float *dy, float *dW, float *db, float *dx, int B,
            int in, int out);

/* out[i] = sum_b u[b][i] over u [len x cols], in the order b = 0, 1, ...
 * (a bias's gradient from its output's). */
void fc_row_sums(const float *u, int len, int cols, float *out);

/* SPEC §4: every row drawn uniform in [-1, 1] (counter RNG, tensor id `tid`)
 * and scaled to unit L2 norm. */
void fc_init_rows(float *W, int rows, int cols, unsigned long long seed, unsigned tid);

/* Row r of fc_init_rows's [rows x cols] tensor alone, the same bits, into
 * row [cols] (a rank's rows of a distributed weight). */
void fc_init_row(float *row, int r, int cols, unsigned long long seed, unsigned tid);

/* The random stream of the readout bias (fc_init_uniform); the readout
 * weight's is 2, the input map's 0 and the feedback's 1. */
enum { FC_TID_READOUT_BIAS = 1000 };

/* The common linear-layer default (SPEC §4, the readout): count values
 * uniform in [-bound, bound), drawn from stream tid. */
void fc_init_uniform(float *x, long count, float bound, unsigned long long seed, unsigned tid);

#endif
