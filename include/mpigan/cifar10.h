/* CIFAR-10, binary version (cifar-10-binary.tar.gz), as its authors distribute it. The reader
 * checks sizes against the file before it allocates and reports a bad file in one line naming it
 * and the problem. Images come out channel-first (CIFAR-10's own order), pixels in [0, 1]. */
#ifndef MPIGAN_CIFAR10_H
#define MPIGAN_CIFAR10_H

#include <stdint.h>

#include "mpigan/dataset.h"
#include "mpigan/error.h"

/* ---- CIFAR-10, binary version: records of 3073 bytes (label, 1024 R, 1024 G, 1024 B) ---- */

/* Reads the records of `n_files` files in order (e.g. data_batch_1.bin ... data_batch_5.bin) into
 * ds (n, 3, 32, 32) and, if labels is not NULL, a new array of n labels (free()). A file whose size
 * is not a multiple of 3073 bytes is an error naming its size and the remainder; a label above 9
 * is an error naming the record. */
int mg_cifar10_read(mg_dataset *ds, uint8_t **labels, const char *const *files, int n_files,
                    mg_error *err);

#endif
