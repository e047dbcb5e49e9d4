/* optim: SGD with momentum, Adam, step schedule with warm-up. */
#include "optim.h"

#include <math.h>
#include <stdlib.h>

#include "status.h"

int optim_create(optim **out, const fsnn_cfg *cfg, size_t n) {
    optim *o;
    CHECK(XCALLOC(&o, 1));
    *out = o;
    o->kind = cfg->train_optimizer;
    o->n = n;
    o->momentum = cfg->train_momentum;
    o->weight_decay = cfg->train_weight_decay;
    o->beta1 = cfg->train_adam_beta1;
    o->beta2 = cfg->train_adam_beta2;
    o->eps = cfg->train_adam_eps;
    CHECK(XCALLOC(&o->m1, n));
    if (o->kind == OPTIM_ADAM) CHECK(XCALLOC(&o->m2, n));
    return FSNN_OK;
}

void optim_destroy(optim **opt) {
    if (!*opt) return;
    free((*opt)->m1);
    free((*opt)->m2);
    free(*opt);
    *opt = NULL;
}

void optim_step(optim *o, float *p, const float *grad, double lr) {
    const float wd = (float)o->weight_decay, flr = (float)lr;
    if (o->kind == OPTIM_SGD) {
        const float mu = (float)o->momentum;
        const int first = o->step == 0;
        for (size_t i = 0; i < o->n; i++) {
            float d = grad[i] + wd * p[i];
            float b = first ? d : mu * o->m1[i] + d;
            o->m1[i] = b;
            p[i] -= flr * (mu != 0.0f ? b : d);
        }
    } else {
        const double t = (double)(o->step + 1);
        const float b1 = (float)o->beta1, b2 = (float)o->beta2;
        const float c1 = (float)(1.0 - pow(o->beta1, t)), c2 = (float)(1.0 - pow(o->beta2, t));
        const float eps = (float)o->eps;
        for (size_t i = 0; i < o->n; i++) {
            float d = grad[i] + wd * p[i];
            o->m1[i] = b1 * o->m1[i] + (1.0f - b1) * d;
            o->m2[i] = b2 * o->m2[i] + (1.0f - b2) * d * d;
            float mhat = o->m1[i] / c1, vhat = o->m2[i] / c2;
            p[i] -= flr * mhat / (sqrtf(vhat) + eps);
        }
    }
    o->step++;
}

double optim_lr(const fsnn_cfg *cfg, int epoch, long iter) {
    double lr = cfg->train_lr;
    for (int i = 0; i < cfg->train_n_milestones; i++)
        if (epoch >= cfg->train_lr_milestones[i]) lr *= cfg->train_lr_gamma;
    if (cfg->train_warmup_iters > 0 && iter < cfg->train_warmup_iters)
        lr *= (double)(iter + 1) / cfg->train_warmup_iters;
    return lr;
}
