/* cmd_data: the trainer's views of a loaded data set, shared by the
 * commands that train or evaluate. */
#include <string.h>

#include "cmd.h"

void cmd_data_views(const fsnn_cfg *cfg, const dataset *d, dataset_events ev[2],
                    trainer_data *train, trainer_data *test) {
    const dataset_split *s[2] = {&d->train, &d->test};
    trainer_data *t[2] = {train, test};
    for (int i = 0; i < 2; i++) {
        memset(t[i], 0, sizeof *t[i]);
        t[i]->images = s[i]->images;
        t[i]->labels = s[i]->labels;
        t[i]->n = s[i]->n;
        t[i]->channels = s[i]->channels;
        t[i]->height = s[i]->height;
        t[i]->width = s[i]->width;
        t[i]->dim = s[i]->channels * s[i]->height * s[i]->width;
        for (int c = 0; c < s[i]->channels && c < TRAINER_MAX_CHANNELS; c++) {
            t[i]->mean[c] = d->mean[c];
            t[i]->std[c] = d->std[c];
        }
        if (!s[i]->images) { /* events (N-MNIST): one frame per time step */
            ev[i].set = &s[i]->events;
            dataset_event_binning(cfg, &ev[i].bin);
            t[i]->frames = ev[i].bin.T;
            t[i]->frames_fn = dataset_frames;
            t[i]->frames_src = &ev[i];
        }
    }
    train->augment = cfg->data_augment < 0 ? d->augment : cfg->data_augment;
}
