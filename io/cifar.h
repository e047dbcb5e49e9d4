/* cifar: reader of the CIFAR-10 and CIFAR-100 "binary version" files.
 *
 * Format (https://www.cs.toronto.edu/~kriz/cifar.html): a file is a plain
 * sequence of records with no header. A CIFAR-10 record is 1 label byte
 * (0..9) and 3072 pixel bytes; a CIFAR-100 record is a coarse label byte
 * (0..19), a fine label byte (0..99) and 3072 pixel bytes. The pixels are
 * channel-major: the 32x32 red plane, then green, then blue, each row-major.
 * fsnn trains CIFAR-100 on the fine label (100 classes).
 *
 * Files of a folder (cifar_load):
 *   CIFAR-10:  data_batch_1.bin .. data_batch_5.bin (training, in this
 *              order) and test_batch.bin, 10,000 records each;
 *   CIFAR-100: train.bin (50,000 records) and test.bin (10,000).
 * The folder is `dir` itself or, when `dir` does not hold the first file,
 * the folder the official tarball unpacks to inside it
 * (dir/cifar-10-batches-bin, dir/cifar-100-binary), so data.path may name
 * either.
 *
 * Record counts: with no sample limit (0) every file must hold exactly the
 * official number of records. With a limit L > 0 each file may hold any
 * whole, non-zero number of records, as long as the files of the split
 * together hold at least L (small files made for tests, or a shortened copy,
 * are accepted; a limit the files cannot meet is an error, not a silent
 * shortfall). Only the first L records are read and checked then.
 *
 * Every failure names the file: a missing or empty file, a size that is not
 * a whole number of records (size and record size given), a wrong record
 * count, a short read, and a label out of range (record index and byte
 * offset given). */
#ifndef FSNN_CIFAR_H
#define FSNN_CIFAR_H

#include <stddef.h>
#include <stdint.h>

#include "dataset.h" // defines: dataset_split

#define CIFAR_SIDE 32
#define CIFAR_CHANNELS 3
#define CIFAR_PIXELS (CIFAR_CHANNELS * CIFAR_SIDE * CIFAR_SIDE) /* 3072 */

typedef enum { CIFAR_10 = 10, CIFAR_100 = 100 } cifar_kind;

/* Bytes of one record: 3073 (CIFAR-10) or 3074 (CIFAR-100). */
size_t cifar_record_size(cifar_kind kind);

/* Checks the records held in bytes[0..len) (a whole file; `name` is used in
 * messages) and copies the first `n` of them: pixels to images[n x 3072],
 * the (fine) labels to labels[n]. Fails unless len is a whole, non-zero
 * number of records, at least n of them, and every copied label is below
 * the class count. The caller owns the output buffers. */
int cifar_parse(const char *name, const uint8_t *bytes, size_t len, cifar_kind kind, long n,
                uint8_t *images, uint8_t *labels);

/* Loads both splits of `kind` from `dir` (see above) into *train and *test
 * (owned by the caller, freed by dataset_destroy). train_limit / test_limit:
 * first N samples, 0 = all. */
int cifar_load(cifar_kind kind, const char *dir, long train_limit, long test_limit,
               dataset_split *train, dataset_split *test);

#endif
