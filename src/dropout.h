/* dropout: variational dropout (SPEC §4): one mask per sample per forward,
 * the same at every time step, entries 0 or 1/(1-p). The mask of a sample
 * is keyed by (seed, stream, epoch, global sample index) so it does not depend
 * on batch composition or rank count. */
#ifndef FSNN_DROPOUT_H
#define FSNN_DROPOUT_H

#include <stdint.h>

/* mask [B x n]; sample_ids [B] are the samples' indices in the data set. */
void dropout_mask(float *mask, int B, int n, float p, uint64_t seed, uint32_t stream,
                  uint32_t epoch, const long *sample_ids);

/* The channel-wise variant for conv feature maps: one draw per sample per
 * channel, the same over the map's hw positions. mask [B x C x hw] (NCHW);
 * channel c of a sample takes the value dropout_mask gives entry c of that
 * sample's row of n = C, so with hw = 1 the two masks are identical. */
void dropout_mask_channel(float *mask, int B, int C, int hw, float p, uint64_t seed,
                          uint32_t stream, uint32_t epoch, const long *sample_ids);

#endif
