/* train.dropout_shape: with "channel" every dropout mask of a conv map is one
 * draw per sample and channel, the same over the map's positions; with
 * "neuron" (the default) one draw per neuron. Checked on what the masks do:
 * the input current x1 = drop_x ⊙ BN(F x + b) of a conv net (a channel of a
 * sample is zero at all its positions or at none), and on the masks of
 * layer 2 of a multi-layer net (mlnet_masks). */
#include <string.h>

#include "check.h"
#include "config.h"
#include "mlnet.h"
#include "model.h"
#include "rng.h"

enum { B = 6 };

/* Over samples and channels of v [B x C x hw]: how many channels are zero at
 * some but not all positions (mixed), and how many at all (dropped). */
static void count(const float *v, int C, int hw, int *mixed, int *dropped) {
    *mixed = *dropped = 0;
    for (int b = 0; b < B; b++)
        for (int c = 0; c < C; c++) {
            int zeros = 0;
            for (int p = 0; p < hw; p++)
                zeros += v[((long)b * C + c) * hw + p] == 0.0f;
            *mixed += zeros > 0 && zeros < hw;
            *dropped += zeros == hw;
        }
}

static void check_shape(int channel) {
    const char *what = channel ? "channel" : "neuron";
    fsnn_cfg cfg;
    config_defaults(&cfg);
    snprintf(cfg.model_net, sizeof cfg.model_net, "4C3 (F4C3)");
    cfg.model_hidden = 0;
    cfg.train_dropout = 0.5f;
    cfg.train_dropout_channel = channel;
    cfg.train_batch = cfg.train_test_batch = B;
    fsnn_model *m = NULL;
    EXPECT_OK(model_create(&m, &cfg, 1, 8, 8, 3));
    model_init(m, 3);
    static float x[B * 64];
    rng_uniform_fill(4, RNG_TEST, 0, 1, x, B * 64);
    long ids[B] = {0, 1, 2, 3, 4, 5};
    model_ws *ws = NULL;
    EXPECT_OK(model_ws_create(&ws, m, &cfg, B));
    model_prepare_weights(m, 1);
    EXPECT_OK(model_input(m, ws, x, B, 1, ids, 0, 9));
    int mixed, dropped;
    count(model_ws_x1(ws), m->channels, m->hw, &mixed, &dropped);
    if (channel)
        EXPECT(mixed == 0 && dropped > 0, "%s x1: %d channels partly zero, %d dropped", what, mixed,
               dropped);
    else
        EXPECT(mixed > 0, "%s x1: no channel partly zero (%d dropped)", what, dropped);
    model_ws_destroy(&ws);
    model_destroy(&m);

    /* Layer 2 of a multi-layer net. */
    snprintf(cfg.model_net, sizeof cfg.model_net, "4C3-6C3 (F4C3)");
    EXPECT_OK(model_create(&m, &cfg, 1, 8, 8, 3));
    mlnet_ws *w = NULL;
    EXPECT_OK(mlnet_ws_create(&w, m->ml, B, 1));
    mlnet_masks(m->ml, w, B, 0.5f, channel, 9, 0, ids);
    const mlnet_layer *l2 = &m->ml->layer[1];
    count(w->drop[1], l2->C, l2->hw, &mixed, &dropped);
    if (channel)
        EXPECT(mixed == 0 && dropped > 0, "%s layer 2: %d channels partly zero, %d dropped", what,
               mixed, dropped);
    else
        EXPECT(mixed > 0, "%s layer 2: no channel partly zero (%d dropped)", what, dropped);
    mlnet_ws_destroy(&w);
    model_destroy(&m);
}

int main(void) {
    check_shape(0);
    check_shape(1);
    return check_finish("dropshape");
}
