/* optim: parameter updates over one flat parameter array, and the learning
 * rate schedule.
 *
 * SGD follows torch.optim.SGD: d = grad + wd * p; buf = mu * buf + d (buf = d
 * at the first step); p -= lr * buf. Adam follows torch.optim.Adam with L2
 * weight decay added to the gradient. */
#ifndef FSNN_OPTIM_H
#define FSNN_OPTIM_H

#include <stddef.h>

#include "cfg.h"

typedef struct {
    cfg_optim kind;
    size_t n;
    double momentum, weight_decay, beta1, beta2, eps;
    long step; /* steps taken */
    float *m1; /* momentum buffer or Adam first moment [n], owned */
    float *m2; /* Adam second moment [n], owned (NULL for SGD) */
} optim;

int optim_create(optim **opt, const fsnn_cfg *cfg, size_t n);
void optim_destroy(optim **opt);

/* One update of params[n] with grads[n] at learning rate lr. */
void optim_step(optim *opt, float *params, const float *grads, double lr);

/* Learning rate at global iteration `iter` (0-based) inside epoch `epoch`
 * (0-based): base * gamma^(milestones <= epoch), times a linear warm-up
 * (iter + 1) / warmup_iters over the first warmup_iters iterations. */
double optim_lr(const fsnn_cfg *cfg, int epoch, long iter);

#endif
