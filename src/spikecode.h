/* spikecode: one block of 0/1 spikes as bytes, for the layer pipeline's
 * exchange between ranks (docs/architecture.md, "Layer pipeline").
 *
 * A block of n spikes (one row group's [rows x neurons], 0.0f or 1.0f) is
 * sent as a bit mask of n bits or as the list of its spiking indices,
 * whichever is smaller for the block:
 *
 *   header  8 bytes: kind ('M' mask or 'I' index list), 3 zero bytes, and
 *           the number of spikes k as a little-endian uint32
 *   mask    ceil(n / 8) bytes, bit i of byte j = spike 8 j + i
 *   list    k little-endian uint32 indices, strictly increasing, < n
 *
 * A list is the smaller when k < n / 32 (density below 1/32). Blocks of a
 * message are concatenated; the receiver knows every block's n. */
#ifndef FSNN_SPIKECODE_H
#define FSNN_SPIKECODE_H

#include <stddef.h>
#include <stdint.h>

#define SPIKECODE_HEADER 8
#define SPIKECODE_MAX_N 0xffffffffL

/* Bytes of a block of n values as a mask, and of k spikes as a list. */
size_t spikecode_mask_bytes(long n);
size_t spikecode_list_bytes(long k);

/* The most bytes a block of n values takes (the mask's size). */
size_t spikecode_bound(long n);

/* Encodes s [n] into out (cap bytes): *used bytes, *spikes the spikes.
 * Fails on a value other than 0 or 1, n out of range or too small a cap. */
int spikecode_encode(const float *s, long n, uint8_t *out, size_t cap, size_t *used, long *spikes);

/* Decodes one block of n values from in (len bytes available) into s [n]:
 * *used bytes read, *spikes the spikes. Fails with a message naming what is
 * wrong on a bad kind, a truncated block, a mask with bits beyond n, or a
 * list index out of range or out of order; s is then unspecified. */
int spikecode_decode(const uint8_t *in, size_t len, float *s, long n, size_t *used, long *spikes);

#endif
