/* IDX files (http://yann.lecun.com/exdb/mnist/), the format of MNIST and Fashion-MNIST,
 * gzip-compressed or raw (told apart by content, not by name).
 *
 * Readers check every size against the file before they allocate, and report a bad file with one
 * line naming it and the problem. */
#ifndef MPIGAN_IDX_H
#define MPIGAN_IDX_H

#include <stdint.h>

#include "mpigan/dataset.h"
#include "mpigan/error.h"

/* Header of an IDX file: magic 0x0000TTNN with type TT and NN dimensions, then NN big-endian
 * 32-bit sizes, then the data. */
typedef struct {
    int type;        /* 0x08: unsigned byte, the only type MNIST and Fashion-MNIST use */
    int ndims;
    uint32_t dims[4];
} mg_idx_header;

/* Reads only the header of an IDX file. */
int mg_idx_read_header(mg_idx_header *hdr, const char *path, mg_error *err);

/* Reads examples [first, first + count) of an IDX image file (ndims 3: n, rows, cols; or 2: n,
 * dim) into ds, scaling bytes to [0, 1]. count < 0 means to the end. The whole file is
 * checked: a short or over-long file is an error, whichever examples are asked for. */
int mg_idx_read_images(mg_dataset *ds, const char *path, int first, int count, mg_error *err);
/* The same, the pixels kept as bytes in ds->bytes (ds->x NULL): 4 times less memory. */
int mg_idx_read_image_bytes(mg_dataset *ds, const char *path, int first, int count, mg_error *err);

/* Reads an IDX label file (ndims 1) into a new array of n bytes. */
int mg_idx_read_labels(uint8_t **labels, int *n, const char *path, mg_error *err);

#endif
