/* loss: softmax cross-entropy averaged over the batch. */
#ifndef FSNN_LOSS_H
#define FSNN_LOSS_H

#include <stdint.h>

/* logits [B x K], labels [B]. Returns the summed (not averaged) loss; writes
 * dlogits = (softmax - onehot) / scale when dlogits is not NULL (scale is the
 * global batch size), and adds correct predictions to *correct. */
double loss_softmax_xent(const float *logits, const uint8_t *labels, int B, int K, float *dlogits,
                         double scale, long *correct);

#endif
