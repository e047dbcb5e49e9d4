/* optim: SGD with momentum and weight decay, Adam, and the learning-rate
 * schedule, against values computed by hand (torch.optim semantics, optim.h).
 * Float updates: tolerance 1e-6 absolute + 1e-5 relative.
 *
 * Parameters p = (1, -2, 1/2); gradients g1 = (1/2, -1, 0),
 * g2 = (0.1, 0.2, -0.3), g3 = (0, 0, 1).
 *
 * SGD, lr 0.1, momentum 0.9, weight decay 0.01:
 *   d = g + wd p; buf = d (step 1) else 0.9 buf + d; p -= lr buf.
 *   step 1: d = (0.51, -1.02, 0.005) = buf; p = (0.949, -1.898, 0.4995)
 *   step 2: d = (0.1 + 0.00949, 0.2 - 0.01898, -0.3 + 0.004995)
 *             = (0.10949, 0.18102, -0.295005)
 *           buf = (0.459 + 0.10949, -0.918 + 0.18102, 0.0045 - 0.295005)
 *               = (0.56849, -0.73698, -0.290505)
 *           p = (0.892151, -1.824302, 0.5285505)
 *   step 3: d = (0.00892151, -0.01824302, 1.005285505)
 *           buf = (0.511641 + 0.00892151, -0.663282 - 0.01824302,
 *                  -0.2614545 + 1.005285505) = (0.52056251, -0.68152502, 0.743831005)
 *           p = (0.840094749, -1.756149498, 0.4541673995)
 * SGD without momentum, lr 0.1, wd 0: p -= 0.1 g:
 *   (0.95, -1.9, 0.5), (0.94, -1.92, 0.53), (0.94, -1.92, 0.43).
 *
 * Adam, lr 0.01, betas (0.9, 0.999), eps 1e-8, weight decay 0.01 (L2 added
 * to the gradient, d = g + wd p); m = b1 m + (1-b1) d, v = b2 v + (1-b2) d^2,
 * p -= lr (m / (1-b1^t)) / (sqrt(v / (1-b2^t)) + eps):
 *   step 1: d = (0.51, -1.02, 0.005); mhat = d, vhat = d^2, so
 *           p -= 0.01 d / (|d| + 1e-8): p = (0.99, -1.99, 0.49) (+2e-8 relative:
 *           0.9900000002, -1.9900000001, 0.49000002)
 *   step 2: d = (0.1099, 0.1801, -0.2951) (g2 + 0.01 p, p of step 1)
 *           m = 0.9 m + 0.1 d = (0.05689, -0.07379, -0.02906)
 *           v = 0.999 v + 0.001 d^2 = (2.719179e-4, 1.0717956e-3, 8.710898e-5)
 *           mhat = m / 0.19 = (0.2994211, -0.3883684, -0.1529474)
 *           vhat = v / 0.001999 = (0.1360270, 0.5361659, 0.0435763)
 *           p = (0.9818816, -1.9846961, 0.4973269)
 *   step 3: d = (0.0098188, -0.0198470, 1.0049733)
 *           m = (0.0521829, -0.0683957, 0.0743433); mhat = m / 0.271
 *           v = (2.717424e-4, 1.0711177e-3, 1.0969931e-3); vhat = v / 0.002997001
 *           p = (0.9754869, -1.9804744, 0.4927925)
 *
 * Schedule, base 0.05, milestones [2, 4], gamma 0.1, warm-up 3 iterations:
 *   lr = 0.05 * 0.1^(#milestones <= epoch) * ((iter + 1) / 3 if iter < 3). */
#include <string.h>

#include "check.h"
#include "optim.h"
#include "status.h"
#include "testutil.h"

static const float g_steps[3][3] = {{0.5f, -1.0f, 0.0f}, {0.1f, 0.2f, -0.3f}, {0.0f, 0.0f, 1.0f}};

static void base_cfg(fsnn_cfg *c) {
    memset(c, 0, sizeof *c);
    testutil_cfg_variant(c, 0);
    c->train_lr = 0.05;
    c->train_lr_gamma = 0.1;
    c->train_adam_beta1 = 0.9;
    c->train_adam_beta2 = 0.999;
    c->train_adam_eps = 1e-8;
}

static void run(const char *name, const fsnn_cfg *c, double lr, const double want[3][3]) {
    optim *o = NULL;
    EXPECT_OK(optim_create(&o, c, 3));
    if (!o) return;
    EXPECT(o->step == 0 && o->n == 3, "%s: fresh optimiser step %ld n %zu", name, o->step, o->n);
    float p[3] = {1.0f, -2.0f, 0.5f};
    for (int t = 0; t < 3; t++) {
        optim_step(o, p, g_steps[t], lr);
        for (int i = 0; i < 3; i++) {
            char what[64];
            snprintf(what, sizeof what, "%s step %d p[%d]", name, t + 1, i);
            EXPECT_NEAR(p[i], want[t][i], 1e-6, 1e-5, what);
        }
    }
    EXPECT(o->step == 3, "%s: step counter %ld", name, o->step);
    optim_destroy(&o);
    EXPECT(o == NULL, "optim_destroy clears the pointer");
}

int main(void) {
    fsnn_cfg c;

    base_cfg(&c);
    c.train_optimizer = OPTIM_SGD;
    c.train_momentum = 0.9;
    c.train_weight_decay = 0.01;
    const double sgd[3][3] = {{0.949, -1.898, 0.4995},
                              {0.892151, -1.824302, 0.5285505},
                              {0.840094749, -1.756149498, 0.4541673995}};
    run("sgd", &c, 0.1, sgd);

    c.train_momentum = 0.0;
    c.train_weight_decay = 0.0;
    const double plain[3][3] = {{0.95, -1.9, 0.5}, {0.94, -1.92, 0.53}, {0.94, -1.92, 0.43}};
    run("sgd(no momentum)", &c, 0.1, plain);

    base_cfg(&c);
    c.train_optimizer = OPTIM_ADAM;
    c.train_weight_decay = 0.01;
    const double adam[3][3] = {{0.9900000002, -1.9900000001, 0.49000002},
                               {0.9818816, -1.9846961, 0.4973269},
                               {0.9754869, -1.9804744, 0.4927925}};
    run("adam", &c, 0.01, adam);

    /* Schedule. */
    base_cfg(&c);
    c.train_n_milestones = 2;
    c.train_lr_milestones[0] = 2;
    c.train_lr_milestones[1] = 4;
    c.train_warmup_iters = 3;
    const struct {
        int epoch;
        long iter;
        double lr;
    } sched[] = {
        {0, 0, 0.05 / 3}, {0, 1, 0.1 / 3}, {0, 2, 0.05},   {0, 3, 0.05},   {1, 50, 0.05},
        {2, 100, 0.005},  {3, 150, 0.005}, {4, 200, 5e-4}, {7, 350, 5e-4}, {2, 1, 0.01 / 3},
    };
    for (size_t i = 0; i < sizeof sched / sizeof sched[0]; i++) {
        char what[64];
        snprintf(what, sizeof what, "lr(epoch %d, iter %ld)", sched[i].epoch, sched[i].iter);
        EXPECT_NEAR(optim_lr(&c, sched[i].epoch, sched[i].iter), sched[i].lr, 1e-12, 1e-9, what);
    }
    /* No warm-up: the first iteration runs at the full rate. */
    c.train_warmup_iters = 0;
    EXPECT_NEAR(optim_lr(&c, 0, 0), 0.05, 1e-12, 1e-9, "lr without warm-up");
    EXPECT_NEAR(optim_lr(&c, 4, 0), 5e-4, 1e-12, 1e-9, "lr without warm-up, epoch 4");
    return check_finish("optim");
}
