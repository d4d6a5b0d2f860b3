/* Training data: images as rows of pixels in [0, 1].
 *
 * Readers check every size against the file before they allocate, and report a bad file with one
 * line naming it and the problem. */
#ifndef MPIGAN_DATA_H
#define MPIGAN_DATA_H

#include <stddef.h>
#include <stdint.h>

#include "mpigan/comm.h"
#include "mpigan/config.h"
#include "mpigan/error.h"
#include "mpigan/real.h"

typedef struct {
    int n;           /* examples */
    int channels, height, width;
    size_t dim;      /* channels * height * width */
    mg_real *x;      /* (n, dim) row-major; values in [0, 1] unless preprocessed (GCN); NULL
                        when the examples are kept as bytes */
    uint8_t *bytes;  /* (n, dim): every value is mg_byte_value(byte), 4 times smaller than x
                        (a training set of pixel bytes: mg_dataset_load_train); else NULL */
    struct mg_shared *shared; /* x or bytes live in a node's shared window */
} mg_dataset;

/* What every reader of pixel bytes stores: b / 255 rounded once to mg_real. */
static inline mg_real mg_byte_value(uint8_t b)
{
    return (mg_real)b / (mg_real)255;
}

/* Example i as values, into out (dim), whichever way ds keeps them. */
void mg_dataset_row(const mg_dataset *ds, size_t i, mg_real *out);

/* A private ds kept as bytes becomes one kept as values (x); nothing to do otherwise. */
int mg_dataset_widen(mg_dataset *ds, mg_error *err);

/* 1 if every value of x (n) is mg_byte_value of a byte, so bytes keep it exactly. */
int mg_values_are_bytes(const mg_real *x, size_t n);

/* Header of an IDX file (http://yann.lecun.com/exdb/mnist/): magic 0x0000TTNN with type TT and
 * NN dimensions, then NN big-endian 32-bit sizes, then the data. */
typedef struct {
    int type;        /* 0x08: unsigned byte, the only type MNIST and Fashion-MNIST use */
    int ndims;
    uint32_t dims[4];
} mg_idx_header;

/* Reads only the header of an IDX file, gzip-compressed or raw (by content, not by name). */
int mg_idx_read_header(mg_idx_header *hdr, const char *path, mg_error *err);

/* Reads examples [first, first + count) of an IDX image file (ndims 3: n, rows, cols; or 2: n,
 * dim) into ds, scaling bytes to [0, 1]. count < 0 means to the end. The whole file is
 * checked: a short or over-long file is an error, whichever examples are asked for. */
int mg_idx_read_images(mg_dataset *ds, const char *path, int first, int count, mg_error *err);
/* The same, the pixels kept as bytes in ds->bytes (ds->x NULL): 4 times less memory. */
int mg_idx_read_image_bytes(mg_dataset *ds, const char *path, int first, int count, mg_error *err);

/* Reads an IDX label file (ndims 1) into a new array of n bytes. */
int mg_idx_read_labels(uint8_t **labels, int *n, const char *path, mg_error *err);

/* Allocates an empty dataset of n examples of the given shape (x zeroed). */
int mg_dataset_alloc(mg_dataset *ds, int n, int channels, int height, int width, mg_error *err);
void mg_dataset_free(mg_dataset *ds);

/* The training split the configuration names, in any format (data.format), preprocessed: read
 * by rank 0 of comm and copied once into each node's shared memory, so that the ranks of a node
 * share one copy and every rank sees the same examples. Values that are all pixel bytes (not
 * GCN'd, not float input) are kept as bytes (ds->bytes, ds->x NULL): read rows with
 * mg_dataset_row. Collective; on an error every rank
 * returns -1, and err is set on rank 0. */
int mg_dataset_load_train(mg_dataset *ds, const mg_config *cfg, const mg_comm *comm,
                          mg_error *err);

/* Rank 0's part of it: the training split of cfg read into a private ds (no MPI). */
int mg_dataset_read_train(mg_dataset *ds, const mg_config *cfg, mg_error *err);

enum mg_split_kind { MG_SPLIT_VALID, MG_SPLIT_TEST };

/* The validation or test examples of cfg's data set, preprocessed like the training split, at
 * most max_count of them (<= 0: all), into a private ds (no MPI).
 * Validation: the last data.valid_count examples of the training source, or for TFD with
 * valid_count 0 the fold's valid split. Test: idx data.test_images; cifar10 test_batch.bin in
 * data.path; tfd the fold's test split; hdf5 data.test_path. */
int mg_dataset_read_split(mg_dataset *ds, const mg_config *cfg, enum mg_split_kind which,
                          int max_count, mg_error *err);

/* Mean of each pixel over the examples: (dim). */
void mg_dataset_pixel_mean(const mg_dataset *ds, double *mean);

#endif
