/* nmnist: reader of N-MNIST (Orchard et al. 2015) in its original binary
 * format, and the binning of a sample's events into frames.
 *
 * Files: one file per sample, in dir/Train/<digit>/NAME.bin and
 * dir/Test/<digit>/NAME.bin (as Train.zip and Test.zip unpack); the label is the
 * digit folder's name, 0..9; files not ending in ".bin" are ignored. An event
 * is 5 bytes: byte 0 = x (0..33), byte 1 = y (0..33), bit 7 of byte 2 = the
 * polarity (1 = ON), and bits 6..0 of byte 2, byte 3 and byte 4 = a 23-bit
 * timestamp in microseconds, big-endian: ts = (b2 & 0x7f) << 16 | b3 << 8 | b4.
 * A file is accepted when its size is a non-zero multiple of 5, it holds at
 * most NMNIST_MAX_EVENTS events, every x and y is below 34 and the
 * timestamps never decrease (the sensor writes events in time order, so a
 * decrease means a damaged file). The timestamp-overflow marker records of
 * the ATIS tools (y = 240) never occur in N-MNIST, whose samples last about
 * 0.3 s of the 8.4 s that 23 bits hold, and are rejected like any y >= 34.
 *
 * Order and limits: a split's samples are taken digit by digit in turn
 * (the first file of 0, of 1, .., of 9, then the second of each, ...), each
 * digit's files sorted by name, so that the order does not depend on the
 * file system and the first N samples hold every class (about N/10 each).
 * A limit L > 0 reads only the first L files and fails when there are
 * fewer.
 *
 * In memory a sample stays as its file's checked 5-byte records (a few KB),
 * not as dense frames; nmnist_frames bins one sample on demand. */
#ifndef FSNN_NMNIST_H
#define FSNN_NMNIST_H

#include <stddef.h>
#include <stdint.h>

#define NMNIST_SIDE 34
#define NMNIST_FRAME (2 * NMNIST_SIDE * NMNIST_SIDE) /* inputs per time step: 2312 */
#define NMNIST_CLASSES 10
#define NMNIST_EVENT_BYTES 5
/* Far above the largest N-MNIST sample (a few ten thousand events) and far
 * below what a wrong file could hold. */
#define NMNIST_MAX_EVENTS 1000000L
/* The bin width of the reference preprocessing (TSSL-BP's converter run with
 * a 3,000 us window: the "2312_3000_stable" data the paper's code reads). */
#define NMNIST_WINDOW_US 3000u

typedef struct {
    int x, y;    /* 0..33 */
    int p;       /* polarity: 0 = OFF, 1 = ON */
    uint32_t ts; /* microseconds from the start of the recording */
} nmnist_event;

typedef struct {
    long n;           /* samples */
    long *start;      /* [n + 1], owned: sample i is events start[i] .. start[i+1]-1 */
    uint8_t *records; /* [start[n] x 5], owned: the files' records, checked */
} nmnist_set;

/* Decodes one 5-byte record (no checks). */
void nmnist_decode(const uint8_t rec[NMNIST_EVENT_BYTES], nmnist_event *ev);

/* Checks the bytes of one sample file (see above; `name` is used in
 * messages) and gives its event count. */
int nmnist_parse(const char *name, const uint8_t *bytes, size_t len, long *n_events);

/* Loads split `split` ("Train" or "Test") of the folder `dir` into *out and
 * its labels into *labels (both owned by the caller: nmnist_destroy,
 * free). limit: the first N samples in the order above, 0 = all. Fails,
 * naming the folder or file, on a missing folder, a folder without
 * samples, a bad file or a limit above the number of samples. */
int nmnist_load(const char *dir, const char *split, long limit, nmnist_set *out, uint8_t **labels);

/* How events become frames. */
typedef struct {
    int T;              /* frames */
    uint32_t window_us; /* > 0: frame k holds the events with k * window_us < ts <=
                           (k + 1) * window_us, timed from the recording's start (the
                           reference's ceil(ts / window) - 1; events at ts = 0 and
                           after T * window_us are left out). 0: the sample's own span
                           from its first to its last event is cut into T equal bins:
                           frame k = floor((ts - t0) * T / (t1 - t0 + 1)). */
    int stabilize;      /* 1: first undo the three saccades' motion (Orchard's
                           stabilize.m: x, y shifted along the saccade path at the
                           event's time, rounded half away from zero; events moved
                           off the 34x34 sensor dropped), as the reference does */
} nmnist_binning;

/* Fills frames[T x 2 x 34 x 34] (index ((k * 2 + p) * 34 + y) * 34 + x) for
 * the n_events records at `records` (checked by nmnist_parse): 1 where at
 * least one event of polarity p fell on pixel (x, y) in frame k, else 0.
 * Fails only on bad arguments (T < 1). Pure: no I/O, no allocation. */
int nmnist_frames(const uint8_t *records, long n_events, const nmnist_binning *b, float *frames);

/* Frees the set and zeroes it; safe on a zeroed struct. */
void nmnist_destroy(nmnist_set *s);

#endif
