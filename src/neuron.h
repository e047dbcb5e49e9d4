/* neuron: the IF/LIF simulation of one feedback layer (SPEC §1, Eq. 1-2).
 *
 *   u[1] = x1 ; s = (u >= V_th) ; u -= V_th s ; u *= lambda
 *   u[t] = u[t-1] + drop_s(W s[t-1]) + x1        (t = 2..T)
 *   a    = sum_t lambda^(T-t) s[t] / sum_t lambda^(T-t)
 *
 * lambda = 1 is IF (a is the plain firing rate). Spikes are 0/1, so W s is
 * the sum of the columns of W for the active neurons: the event path adds
 * rows of W^T for each spike instead of a dense product, and `mode` or the
 * measured spike density picks the path for each step. */
#ifndef FSNN_NEURON_H
#define FSNN_NEURON_H

#include "cfg.h"

/* Below this fraction of active neurons the event path is cheaper than sgemm
 * (crossover 0.2-0.25 measured by bench/bench_spike, docs/performance.md). */
#define NEURON_EVENT_DENSITY 0.15

typedef struct {
    double spikes;   /* total spikes over batch, neurons and steps */
    int dense_steps; /* steps whose W s ran as sgemm */
    int event_steps; /* steps whose W s ran event-driven */
} neuron_stats;

typedef struct {
    int B, n, T;
    float vth, leak;
    cfg_spike_product mode;
} neuron_dims;

/* Called after each step t = 1..T with acc [B x n], the weighted spike sums
 * so far, sum_{tau <= t} lambda^(t-tau) s[tau]: neuron_rates turns them into
 * a[t]. acc is the simulation's own buffer: read it, do not keep it. */
typedef void (*neuron_step_fn)(void *ctx, int t, const float *acc);

/* How a simulation computes cur = W s for 0/1 spikes s [B x n]: fn(ctx, s,
 * cur, B, event) with `event` the path chosen for this step (the fraction of
 * active neurons below event_density, or the mode). Lets the same dynamics
 * run over any linear map (linop.h). */
typedef struct {
    void (*fn)(void *ctx, const float *s, float *cur, int B, int event);
    void *ctx;
    double event_density;
    /* Event input (SPEC §1, N-MNIST): when set, input(input_ctx, t, x1t)
     * writes step t's input current [B x n] into x1t = input_buf (borrowed)
     * and step t uses it instead of the static x1. NULL: x1 at every step. */
    void (*input)(void *input_ctx, int t, float *x1t);
    void *input_ctx;
    float *input_buf;
} neuron_product;

/* The simulation: x1 [B x n] input current (or p's per-step input), p the
 * feedback product, drop
 * [B x n] feedback dropout mask or NULL. Writes a [B x n]. Work buffers u, s,
 * cur [B x n] are borrowed. Adds to *st. With step not NULL, calls step(ctx,
 * t, acc) after every step (the equilibrium residual per step, Figure 1);
 * a and everything else come out bit for bit as without. */
void neuron_simulate_product(const neuron_dims *d, const float *x1, const neuron_product *p,
                             const float *drop, float *a, float *u, float *s, float *cur,
                             neuron_stats *st, neuron_step_fn step, void *ctx);

/* a[k] = acc[k] / sum_{tau=1..t} lambda^(t-tau) for k < count: the (weighted)
 * rate after t steps, rounded exactly as neuron_simulate_product's a = a[T]. */
void neuron_rates(const float *acc, long count, int t, float leak, float *a);

/* cur [B x n] = s W^T for 0/1 spikes s [B x n]: sgemm with W, or (event != 0)
 * the sum of the rows of Wt = W^T of the active neurons. idx [B x n] borrowed. */
void neuron_spike_product(const float *s, const float *W, const float *Wt, float *cur, int *idx,
                          int B, int n, int event);

/* One step's threshold, reset by subtraction and leak of u [count], with
 * the spikes into s and the weighted spike sum acc = lambda acc + s (the
 * multi-layer simulation, mlnet.h, runs it layer by layer); returns the
 * number of spikes. */
long neuron_fire(float *u, float *s, float *acc, long count, float vth, float leak);

/* sum_{t=1..T} lambda^(T-t), the normaliser of the weighted rate. */
double neuron_rate_norm(int T, float leak);

#endif
