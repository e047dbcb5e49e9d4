/* linop: FC over sgemm (the calls of fc.c, neuron.c, equil.c, specnorm.c),
 * conv over conv.h. */
#include "linop.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <stdint.h>

#include "blas.h"     // defines: blas_gemm, BLAS_PARALLEL_MIN
#include "dnnconv.h"  // defines: dnnconv_backward_data_blocked, dnnconv_forward_blocked
#include "dnnmm.h"    // defines: dnnmm_spike
#include "fc.h"       // defines: fc_forward
#include "log.h"      // defines: log_warn
#include "neuron.h"   // defines: neuron_spike_product, NEURON_EVENT_DENSITY
#include "specnorm.h" // defines: specnorm_power, specnorm_vjp
#include "status.h"   // defines: FAIL

void linop_fc(linop *op, int in, int out) {
    memset(op, 0, sizeof *op);
    op->kind = LINOP_FC;
    op->in = in;
    op->out = out;
    op->rows = out;
    op->cols = in;
    op->channels = out;
    op->hw = 1;
}

int linop_conv(linop *op, int C, int H, int W, int O, int k, int stride) {
    return linop_conv_pad(op, C, H, W, O, k, stride, k / 2);
}

int linop_conv_pad(linop *op, int C, int H, int W, int O, int k, int stride, int pad) {
    memset(op, 0, sizeof *op);
    op->kind = LINOP_CONV;
    CHECK(conv_shape_init(&op->conv, C, H, W, O, k, stride, pad));
    op->in = C * H * W;
    op->out = O * op->conv.Ho * op->conv.Wo;
    op->rows = O;
    op->cols = C * k * k;
    op->channels = O;
    op->hw = op->conv.Ho * op->conv.Wo;
    return FSNN_OK;
}

int linop_deconv(linop *op, int C, int H, int W, int O, int k) {
    memset(op, 0, sizeof *op);
    op->kind = LINOP_DECONV;
    CHECK(conv_transpose_shape_init(&op->tconv, C, H, W, O, k, 2, k / 2, 1));
    op->in = C * H * W;
    op->out = O * op->tconv.Ho * op->tconv.Wo;
    op->rows = C;
    op->cols = O * k * k;
    op->channels = O;
    op->hw = op->tconv.Ho * op->tconv.Wo;
    return FSNN_OK;
}

void linop_use_onednn(linop *op, int on) {
    op->conv.dnn = op->kind == LINOP_CONV && on;
    op->tconv.conv.dnn = op->kind == LINOP_DECONV && on;
}

void linop_set_sim_bf16(linop *op, int on) {
    op->bf16 = on != 0;
    op->conv.bf16 = op->kind == LINOP_CONV && on;
    op->tconv.conv.bf16 = op->kind == LINOP_DECONV && on;
}

float linop_bf16_round(float x) {
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    if ((u & 0x7f800000u) == 0x7f800000u) return x; /* inf and NaN stay */
    /* Round to nearest, ties to even, on the 16 bits that are dropped. */
    u = (u + 0x7fffu + ((u >> 16) & 1u)) & 0xffff0000u;
    memcpy(&x, &u, sizeof x);
    return x;
}

size_t linop_ws_size(const linop *op) {
    if (op->kind == LINOP_DECONV) { /* linop_power runs the underlying conv */
        size_t a = conv_transpose_workspace_size(&op->tconv),
               b = conv_workspace_size(&op->tconv.conv);
        return a > b ? a : b;
    }
    return op->kind == LINOP_CONV ? conv_workspace_size(&op->conv) : 0;
}

size_t linop_weights(const linop *op) {
    return (size_t)op->rows * op->cols;
}

size_t linop_event_size(const linop *op) {
    return linop_weights(op);
}

void linop_forward(const linop *op, const float *W, const float *b, const float *x, float *y, int B,
                   float *ws) {
    if (op->kind == LINOP_CONV)
        conv_forward(&op->conv, x, W, b, y, B, ws);
    else if (op->kind == LINOP_DECONV)
        conv_transpose_forward(&op->tconv, x, W, b, y, B, ws);
    else if (b)
        fc_forward(x, W, b, y, B, op->in, op->out);
    else
        blas_gemm(0, 1, B, op->out, op->in, 1.0f, x, op->in, W, op->in, 0.0f, y, op->out);
}

void linop_event_weights(const linop *op, const float *W, float *We) {
    if (op->kind == LINOP_CONV)
        conv_event_weights(&op->conv, W, We);
    else if (op->kind == LINOP_DECONV)
        conv_transpose_event_weights(&op->tconv, W, We);
    else
        for (int i = 0; i < op->rows; i++)
            for (int j = 0; j < op->cols; j++)
                We[(long)j * op->rows + i] = W[(long)i * op->cols + j];
    /* In bf16 the event path adds the same rounded weights as the dense
     * path multiplies, so that which path ran does not change the values
     * beyond the order of the sums. */
    if (op->bf16)
        for (size_t i = 0; i < linop_event_size(op); i++)
            We[i] = linop_bf16_round(We[i]);
}

double linop_event_density(const linop *op) {
    if (op->kind == LINOP_DECONV) return conv_transpose_event_density(&op->tconv.conv);
    if (op->kind == LINOP_CONV) return conv_event_density(&op->conv);
    return op->bf16 ? LINOP_FC_EVENT_DENSITY_BF16 : NEURON_EVENT_DENSITY;
}

/* cur = s W^T for an FC map in -> out with in != out: sgemm, or the sum of
 * the rows of Wt = W^T [in x out] of each sample's active inputs. */
static void linop_fc_spike(const linop *op, const float *W, const float *Wt, const float *s,
                           float *cur, int *idx, int B, int event) {
    const int in = op->in, out = op->out;
    if (!event) {
        blas_gemm(0, 1, B, out, in, 1.0f, s, in, W, in, 0.0f, cur, out);
        return;
    }
#pragma omp parallel for schedule(static) if ((long)B * out > BLAS_PARALLEL_MIN)
    for (int b = 0; b < B; b++) {
        const float *sb = s + (long)b * in;
        float *cb = cur + (long)b * out;
        int *ib = idx + (long)b * in, nnz = 0;
        for (int j = 0; j < in; j++)
            if (sb[j] != 0.0f) ib[nnz++] = j;
        memset(cb, 0, sizeof(float) * (size_t)out);
        for (int q = 0; q < nnz; q++) {
            const float *row = Wt + (long)ib[q] * out;
            for (int i = 0; i < out; i++)
                cb[i] += row[i];
        }
    }
}

/* cur = s W^T in bf16 on oneDNN (dnnmm.h): 1 when it ran; a failure is
 * said once, and the caller's float product runs instead. */
static int linop_fc_bf16(const linop *op, const float *W, const float *s, float *cur, int B) {
    static int said;
    if (dnnmm_spike(s, W, cur, B, op->in, op->out) == FSNN_OK) return 1;
    if (!said)
        log_warn("linop: oneDNN's bf16 matmul failed (%s); float sgemm instead", status_message());
    said = 1;
    status_clear();
    return 0;
}

void linop_spike(const linop *op, const float *W, const float *We, const float *s, float *cur,
                 int *idx, int B, int event, float *ws) {
    if (op->kind == LINOP_FC && op->bf16 && !event && linop_fc_bf16(op, W, s, cur, B)) return;
    if (op->kind == LINOP_CONV)
        conv_spike_forward(&op->conv, s, W, We, NULL, cur, B, ws,
                           event ? SPIKE_EVENT : SPIKE_DENSE);
    else if (op->kind == LINOP_DECONV)
        conv_transpose_spike_forward(&op->tconv, s, W, We, NULL, cur, B, ws,
                                     event ? SPIKE_EVENT : SPIKE_DENSE);
    else if (op->in == op->out) /* a feedback map: neuron.c's product, as before */
        neuron_spike_product(s, W, We, cur, idx, B, op->out, event);
    else
        linop_fc_spike(op, W, We, s, cur, idx, B, event);
}

void linop_transpose(const linop *op, const float *W, const float *dy, float *dx, int B,
                     float *ws) {
    if (op->kind == LINOP_CONV)
        conv_vjp(&op->conv, NULL, W, dy, NULL, NULL, dx, B, ws);
    else if (op->kind == LINOP_DECONV)
        conv_transpose_vjp(&op->tconv, NULL, W, dy, NULL, NULL, dx, B, ws);
    else
        blas_gemm(0, 0, B, op->in, op->out, 1.0f, dy, op->out, W, op->in, 0.0f, dx, op->in);
}

int linop_blocked(const linop *op) {
    const conv_shape *c = op->kind == LINOP_CONV     ? &op->conv
                          : op->kind == LINOP_DECONV ? &op->tconv.conv
                                                     : NULL;
    return c && c->dnn && dnnconv_blocks(c->C) && dnnconv_blocks(c->O);
}

int linop_transpose_blocked(const linop *op, const float *W, const float *dy, float *dx, int B,
                            int dx_blocked) {
    /* A transposed conv is conv_backward_data of its conv shape: its
     * transpose is that conv's forward map (conv_transpose_vjp). */
    if (op->kind == LINOP_CONV)
        return dnnconv_backward_data_blocked(&op->conv, W, dy, dx, B, dx_blocked);
    return dnnconv_forward_blocked(&op->tconv.conv, dy, W, dx, B, dx_blocked);
}

double linop_adjoint_density(const linop *op) {
    return op->kind == LINOP_CONV ? conv_adjoint_density(&op->conv) : LINOP_FC_ADJOINT_DENSITY;
}

size_t linop_adjoint_size(const linop *op) {
    return op->kind == LINOP_CONV ? linop_weights(op) : 0;
}

void linop_adjoint_weights(const linop *op, const float *W, float *Wa) {
    if (op->kind == LINOP_CONV) conv_adjoint_weights(&op->conv, W, Wa);
}

long linop_mask_lists(const float *d, int B, int out, int *idx, int *nnz) {
    long total = 0;
    for (int b = 0; b < B; b++) {
        const float *db = d + (long)b * out;
        int *ib = idx + (long)b * out, c = 0;
        for (int j = 0; j < out; j++)
            if (db[j] != 0.0f) ib[c++] = j;
        nnz[b] = c;
        total += c;
    }
    return total;
}

/* One sample's event path: dx [in] = op^T(d ⊙ v) from the listed entries. */
static void linop_masked_row(const linop *op, const float *W, const float *Wa, const float *d,
                             const int *idx, int nnz, const float *v, float *dx, float *ws) {
    if (op->kind == LINOP_CONV) {
        conv_masked_vjp_event(&op->conv, Wa, d, v, idx, nnz, dx, ws);
        return;
    }
    const int in = op->in;
    memset(dx, 0, sizeof(float) * (size_t)in);
    for (int q = 0; q < nnz; q++) {
        const int j = idx[q];
        const float u = d[j] * v[j];
        const float *restrict w = W + (long)j * in;
        float *restrict x = dx;
        for (int i = 0; i < in; i++)
            x[i] += u * w[i];
    }
}

/* Whether a sample with nnz listed entries takes the event path. */
static int linop_takes_event(cfg_spike_product mode, int nnz, double lim) {
    return mode == SPIKE_EVENT || (mode == SPIKE_AUTO && nnz < lim);
}

/* The rows of linop_masked_transpose that take the dense path. */
static int linop_dense_rows(cfg_spike_product mode, const int *nnz, const int *rows, int nrows,
                            double lim) {
    int nd = 0;
    for (int r = 0; r < nrows; r++)
        nd += !linop_takes_event(mode, nnz[rows ? rows[r] : r], lim);
    return nd;
}

int linop_masked_transpose(const linop *op, const float *W, const float *Wa, const float *d,
                           const int *idx, const int *nnz, const int *rows, int nrows,
                           const float *v, float *dx, float *tmp, cfg_spike_product mode,
                           float *ws) {
    const int in = op->in, out = op->out;
    const double lim = linop_adjoint_density(op) * out;
    /* A transposed conv (a multi-layer net's feedback) has no event path. */
    if (op->kind == LINOP_DECONV) mode = SPIKE_DENSE;
    /* Dense samples: d ⊙ v packed into the first rows of tmp, one product
     * into the first rows of dx, then each moved to its own row, last
     * first (the i-th dense row r_i >= i, so no packed row is overwritten
     * before it moves). Event rows are written after, over what is left. */
    if (op->kind == LINOP_CONV && op->conv.dnn && mode == SPIKE_AUTO &&
        2 * linop_dense_rows(mode, nnz, rows, nrows, lim) >= nrows)
        mode = SPIKE_DENSE;
    int nd = 0;
    for (int r = 0; r < nrows; r++) {
        const int b = rows ? rows[r] : r;
        if (linop_takes_event(mode, nnz[b], lim)) continue;
        const float *db = d + (long)b * out, *vr = v + (long)r * out;
        float *t = tmp + (long)nd++ * out;
        for (int j = 0; j < out; j++)
            t[j] = db[j] * vr[j];
    }
    if (nd > 0) linop_transpose(op, W, tmp, dx, nd, ws);
    for (int r = nrows - 1, i = nd - 1; r >= 0 && i >= 0; r--) {
        if (linop_takes_event(mode, nnz[rows ? rows[r] : r], lim)) continue;
        if (r != i) memcpy(dx + (long)r * in, dx + (long)i * in, sizeof(float) * (size_t)in);
        i--;
    }
    if (nd == nrows) return 0;
    /* FC rows need no work buffer and run on OpenMP's threads like the
     * event spike product; conv rows share ws and run on this thread
     * (callers parallelise over micro-shards). */
    const int par = op->kind != LINOP_CONV && (long)(nrows - nd) * out > BLAS_PARALLEL_MIN;
#pragma omp parallel for schedule(dynamic, 4) if (par)
    for (int r = 0; r < nrows; r++) {
        const int b = rows ? rows[r] : r;
        if (!linop_takes_event(mode, nnz[b], lim)) continue;
        linop_masked_row(op, W, Wa, d + (long)b * out, idx + (long)b * out, nnz[b],
                         v + (long)r * out, dx + (long)r * in, ws);
    }
    return nrows - nd;
}

void linop_weight_grad(const linop *op, const float *x, const float *dy, float *dW, float *db,
                       int B, float *ws) {
    if (op->kind == LINOP_CONV) {
        memset(dW, 0, sizeof(float) * linop_weights(op));
        if (db) memset(db, 0, sizeof(float) * (size_t)op->channels);
        conv_vjp(&op->conv, x, NULL, dy, dW, db, NULL, B, ws);
        return;
    }
    if (op->kind == LINOP_DECONV) {
        memset(dW, 0, sizeof(float) * linop_weights(op));
        if (db) memset(db, 0, sizeof(float) * (size_t)op->channels);
        conv_transpose_vjp(&op->tconv, x, NULL, dy, dW, db, NULL, B, ws);
        return;
    }
    blas_gemm(1, 0, op->out, op->in, B, 1.0f, dy, op->out, x, op->in, 0.0f, dW, op->in);
    if (!db) return;
    for (int i = 0; i < op->out; i++)
        db[i] = 0.0f;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < op->out; i++)
            db[i] += dy[(long)b * op->out + i];
}

float linop_power(const linop *op, const float *V, float *u, float *v, int iters, float *work,
                  float *ws) {
    if (op->kind == LINOP_CONV) return conv_power_iter(&op->conv, V, u, v, iters, work, ws);
    /* A transposed conv is the adjoint of tconv.conv: its output space is
     * that conv's input space. */
    if (op->kind == LINOP_DECONV) return conv_power_iter(&op->tconv.conv, V, v, u, iters, work, ws);
    return specnorm_power(V, op->rows, op->cols, u, v, iters, work);
}

void linop_sn_vjp(const linop *op, const float *V, const float *u, const float *v, float g,
                  float sigma, const float *dW, float *dV, float *dg, float *tmp, float *ws) {
    if (op->kind == LINOP_FC) {
        specnorm_vjp(V, u, v, g, sigma, dW, dV, dg, op->rows, op->cols);
        return;
    }
    /* As specnorm_vjp, with d sigma / dV = the weight-VJP of the one-sample
     * conv at x = v, dy = u (conv.h) instead of the outer product u v^T. */
    if (sigma == 0.0f) return;
    const long count = (long)linop_weights(op);
    double gv = 0.0;
    for (long i = 0; i < count; i++)
        gv += (double)dW[i] * V[i];
    float a = g / sigma;
    float c = (float)(-(double)g * gv / ((double)sigma * sigma));
    memset(tmp, 0, sizeof(float) * (size_t)count);
    if (op->kind == LINOP_CONV)
        conv_vjp(&op->conv, v, V, u, tmp, NULL, NULL, 1, ws);
    else
        conv_vjp(&op->tconv.conv, u, V, v, tmp, NULL, NULL, 1, ws);
    for (long i = 0; i < count; i++)
        dV[i] += a * dW[i] + c * tmp[i];
    *dg += (float)(gv / sigma);
}

int linop_dense(const linop *op, const float *W, double *M) {
    if (op->kind == LINOP_FC) {
        for (long i = 0; i < (long)op->rows * op->cols; i++)
            M[i] = W[i];
        return FSNN_OK;
    }
    const int in = op->in, out = op->out;
    float *e = calloc((size_t)in + out + linop_ws_size(op), sizeof(float));
    if (!e) return FAIL("linop: out of memory for the dense matrix of a %d x %d conv", out, in);
    float *y = e + in, *ws = y + out;
    for (int j = 0; j < in; j++) {
        e[j] = 1.0f;
        linop_forward(op, W, NULL, e, y, 1, ws);
        e[j] = 0.0f;
        for (int r = 0; r < out; r++)
            M[(long)r * in + j] = y[r];
    }
    free(e);
    return FSNN_OK;
}
