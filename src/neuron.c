/* neuron: membrane dynamics; no allocation inside the time loop. */
#include "neuron.h"

#include <string.h>

#include "blas.h"

double neuron_rate_norm(int T, float leak) {
    double norm = 0.0, w = 1.0;
    for (int t = 0; t < T; t++) {
        norm += w;
        w *= leak;
    }
    return norm;
}

long neuron_fire(float *u, float *s, float *acc, long count, float vth, float leak) {
    long spikes = 0;
#pragma omp parallel for reduction(+ : spikes) schedule(static) if (count > BLAS_PARALLEL_MIN)
    for (long k = 0; k < count; k++) {
        float sp = u[k] >= vth ? 1.0f : 0.0f;
        s[k] = sp;
        u[k] = (u[k] - vth * sp) * leak;
        acc[k] = acc[k] * leak + sp;
        spikes += (long)sp;
    }
    return spikes;
}

/* cur = s W^T by adding, for each sample, the rows of Wt of its active
 * neurons. Samples run in parallel, each with its own index list. */
static void neuron_event_product(const float *s, const float *Wt, float *cur, int *idx, int B,
                                 int n) {
#pragma omp parallel for schedule(static) if ((long)B * n > BLAS_PARALLEL_MIN)
    for (int b = 0; b < B; b++) {
        const float *sb = s + (long)b * n;
        float *cb = cur + (long)b * n;
        int *ib = idx + (long)b * n;
        int nnz = 0;
        for (int j = 0; j < n; j++)
            if (sb[j] != 0.0f) ib[nnz++] = j;
        memset(cb, 0, sizeof(float) * (size_t)n);
        for (int q = 0; q < nnz; q++) {
            const float *row = Wt + (long)ib[q] * n;
            for (int i = 0; i < n; i++)
                cb[i] += row[i];
        }
    }
}

void neuron_spike_product(const float *s, const float *W, const float *Wt, float *cur, int *idx,
                          int B, int n, int event) {
    if (event)
        neuron_event_product(s, Wt, cur, idx, B, n);
    else
        blas_gemm(0, 1, B, n, n, 1.0f, s, n, W, n, 0.0f, cur, n);
}

void neuron_rates(const float *acc, long count, int t, float leak, float *a) {
    float inv = (float)(1.0 / neuron_rate_norm(t, leak));
    for (long k = 0; k < count; k++)
        a[k] = acc[k] * inv;
}

void neuron_simulate_product(const neuron_dims *d, const float *x1, const neuron_product *p,
                             const float *drop, float *a, float *u, float *s, float *cur,
                             neuron_stats *st, neuron_step_fn step, void *ctx) {
    const int B = d->B, n = d->n;
    const long count = (long)B * n;
    if (p->input) {
        p->input(p->input_ctx, 1, p->input_buf);
        x1 = p->input_buf;
    }
    memcpy(u, x1, sizeof(float) * (size_t)count);
    memset(a, 0, sizeof(float) * (size_t)count);
    long spikes = neuron_fire(u, s, a, count, d->vth, d->leak);
    double total = (double)spikes;
    if (step) step(ctx, 1, a);
    for (int t = 2; t <= d->T; t++) {
        double density = (double)spikes / (double)count;
        int event = d->mode == SPIKE_EVENT || (d->mode == SPIKE_AUTO && density < p->event_density);
        if (spikes == 0) {
            memset(cur, 0, sizeof(float) * (size_t)count);
        } else {
            p->fn(p->ctx, s, cur, B, event);
        }
        if (event)
            st->event_steps++;
        else
            st->dense_steps++;
        if (p->input) p->input(p->input_ctx, t, p->input_buf);
        if (drop)
            for (long k = 0; k < count; k++)
                u[k] += drop[k] * cur[k] + x1[k];
        else
            for (long k = 0; k < count; k++)
                u[k] += cur[k] + x1[k];
        spikes = neuron_fire(u, s, a, count, d->vth, d->leak);
        total += (double)spikes;
        if (step) step(ctx, t, a);
    }
    neuron_rates(a, count, d->T, d->leak, a);
    st->spikes += total;
}
